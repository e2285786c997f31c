/*
 * fuzz cursor: page tokens and resume cursors, as a client may send them
 * back. The input, cut at its first NUL, is
 * - decoded as a listing's page token (hw_store_cursor_decode): accepted
 *   only when encoding the result gives the token back;
 * - read as a WatchTickets cursor, purely (hw_eventlog_cursor_seq) and
 *   against the store (hw_eventlog_cursor_decode): what the store accepts
 *   has the sequence the pure reading gives;
 * - sent as the page token or cursor of every method whose request has one
 *   (a string field named *page_token or after: found in the descriptors,
 *   so a new listing is covered without a change here), through the
 *   handler as in the rpc harness (fuzz_app.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/base/errors.h"
#include "server/store/eventlog.h"
#include "server/store/records.h"
#include "server/store/store.h"
#include "tests/fuzz/fuzz_app.h"

static bool is_token_field(const ProtobufCFieldDescriptor *f)
{
    size_t n = strlen(f->name);
    if (f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
        return false;
    if (strncmp(f->name, "next_", 5) == 0)
        return false;
    return strcmp(f->name, "after") == 0 || (n >= 10 && strcmp(f->name + n - 10, "page_token") == 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_app();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hw_app *app = fz_app();
    char *token = malloc(size + 1);
    if (!token)
        abort();
    memcpy(token, data, size);
    token[size] = '\0';

    hw_store_cursor c;
    if (hw_store_cursor_decode(token, &c) == HW_OK) {
        char back[2 * HW_STORE_CURSOR_MAX + 1];
        if (hw_store_cursor_encode(&c, back, sizeof back) != HW_OK || strcmp(back, token) != 0)
            abort();
    }

    uint64_t pure = hw_eventlog_cursor_seq(token), seq = 0;
    hw_store_txn *t;
    if (hw_store_read_begin(app->workers[0].reader, &t) != HW_OK)
        abort();
    int rc = hw_eventlog_cursor_decode(t, token, &seq);
    hw_store_read_end(app->workers[0].reader);
    if (rc == HW_OK && seq != pure)
        abort();

    size_t n;
    const hw_method *methods = fz_methods(&n);
    for (size_t i = 0; i < n; i++) {
        const ProtobufCMessageDescriptor *d = methods[i].request;
        for (unsigned f = 0; f < d->n_fields; f++) {
            if (!is_token_field(&d->fields[f]))
                continue;
            ProtobufCMessage *req = calloc(1, d->sizeof_message);
            if (!req)
                abort();
            d->message_init(req);
            *(char **)((char *)req + d->fields[f].offset) = token;
            fz_run(&methods[i], req, fz_principal(false));
            free(req);
        }
    }
    free(token);
    return 0;
}
