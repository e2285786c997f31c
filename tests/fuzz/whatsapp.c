/*
 * fuzz whatsapp: the WhatsApp bridge's webhook (clients/whatsapp/main.c,
 * included here with its main renamed): Meta's GET subscription check and
 * the signed POST of messages and status callbacks. The first byte says
 * how: bit 0 GET (the rest is hub.mode, hub.verify_token and
 * hub.challenge, one per line) else POST (the rest is the body); bit 1
 * signs the body with the bridge's app secret (X-Hub-Signature-256), bit 2
 * in uppercase hex; bit 3 sends it to another path. An unsigned POST must
 * be refused 401 without spooling anything; every request gets exactly one
 * answer, whose JSON parses (fake_bridge.h).
 */
#define main whatsapp_bridge_main
#include "clients/whatsapp/main.c"
#undef main

#include <ctype.h>
#include <stdint.h>
#include <unistd.h>
#include <fcntl.h>

#include "clients/lib/secure.h"
#include "tests/fuzz/fake_bridge.h"

static wa_config g_cfg;
static wa_bridge g_b;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    br_common_defaults(&g_cfg.common);
    g_cfg.webhook_path = "/whatsapp/webhook";
    g_cfg.phone_number_id = "pn-1";
    g_cfg.app_secret = "fuzz-app-secret";
    g_cfg.verify_token = "fuzz-verify-token";
    g_b.cfg = &g_cfg;
    g_b.log = hw_log_create(open("/dev/null", O_WRONLY | O_CLOEXEC), HW_LOG_DEBUG, false);
    g_b.drain = (br_drain *)&g_b; /* the fake drain does not look at it */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (!g_b.cfg)
        LLVMFuzzerInitialize(NULL, NULL);
    unsigned flags = data[0];
    const char *rest = (const char *)data + 1;
    size_t len = size - 1;
    const char *path = flags & 8 ? "/other" : g_cfg.webhook_path;
    fz_http_request q;
    char *lines = NULL;
    if (flags & 1) {
        fz_http_init(&q, "GET", path, "", 0);
        lines = strndup(rest, len);
        if (!lines)
            abort();
        static const char *const names[] = {"hub.mode", "hub.verify_token", "hub.challenge"};
        char *save = NULL, *l = strtok_r(lines, "\n", &save);
        for (int i = 0; i < 3 && l; i++, l = strtok_r(NULL, "\n", &save)) {
            q.query[q.n_query][0] = names[i];
            q.query[q.n_query++][1] = l;
        }
    } else {
        fz_http_init(&q, "POST", path, rest, len);
    }
    char sig[80] = "sha256=";
    if (flags & 2) {
        if (br_hmac_sha256_hex(g_cfg.app_secret, strlen(g_cfg.app_secret), rest, len, sig + 7) != 0)
            abort();
        if (flags & 4)
            for (char *p = sig + 7; *p; p++)
                *p = (char)toupper((unsigned char)*p);
        q.headers[q.n_headers][0] = "X-Hub-Signature-256";
        q.headers[q.n_headers++][1] = sig;
    }
    size_t before = fz_drain_spooled();
    handler(&g_b, &q.r);
    if (!(flags & 9) && !(flags & 2) && (q.status != 401 || fz_drain_spooled() != before))
        abort(); /* unsigned: refused, nothing taken */
    fz_http_check_and_free(&q);
    free(lines);
    return 0;
}
