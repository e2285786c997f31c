/*
 * fuzz jsonl: the CLI's JSON Lines import (clients/cli/jsonl.c), one line
 * as `helpwire import articles|faqs|synonyms` reads it. The first byte
 * picks the kind (modulo 3), the rest is the line. A whitespace-only line
 * is BLANK whatever the kind; a refused one says why; a record is a
 * message protobuf-c accepts (no NULL strings: it is packed as the import
 * sends it) and decodes again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clients/cli/jsonl.h"

static void check_record(ProtobufCMessage *m)
{
    if (!protobuf_c_message_check(m))
        abort();
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf || protobuf_c_message_pack(m, buf) != n)
        abort();
    ProtobufCMessage *back = protobuf_c_message_unpack(m->descriptor, NULL, n, buf);
    if (!back)
        abort();
    protobuf_c_message_free_unpacked(back, NULL);
    free(buf);
    protobuf_c_message_free_unpacked(m, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* An exact copy, so that a read past the line is seen. */
    size_t len = size - 1;
    char *line = malloc(len ? len : 1);
    if (!line)
        abort();
    memcpy(line, data + 1, len);
    char err[256] = "";
    int rc;
    ProtobufCMessage *m = NULL;
    switch (data[0] % 3) {
    case 0: {
        Helpwire__V1__Article *a = NULL;
        rc = cli_jsonl_parse_article(line, len, &a, err, sizeof err);
        m = a ? &a->base : NULL;
        break;
    }
    case 1: {
        Helpwire__V1__Faq *f = NULL;
        rc = cli_jsonl_parse_faq(line, len, &f, err, sizeof err);
        m = f ? &f->base : NULL;
        break;
    }
    default: {
        Helpwire__V1__SynonymSet *s = NULL;
        rc = cli_jsonl_parse_synonym_set(line, len, &s, err, sizeof err);
        m = s ? &s->base : NULL;
        break;
    }
    }
    if (cli_jsonl_is_blank(line, len) != (rc == CLI_JSONL_BLANK))
        abort();
    if ((rc == CLI_JSONL_RECORD) != (m != NULL))
        abort();
    if (rc == CLI_JSONL_BAD && !err[0])
        abort();
    if (m)
        check_record(m);
    free(line);
    return 0;
}
