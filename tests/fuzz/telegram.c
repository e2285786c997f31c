/*
 * fuzz telegram: the Telegram bridge's inbound parsing
 * (clients/telegram/main.c, included here with its main renamed): the
 * webhook POST (secret token header, then one update) and extract_update,
 * which the long-poll loop runs on each update of getUpdates too. Bit 0 of
 * the first byte sends the right X-Telegram-Bot-Api-Secret-Token, the rest
 * is the body. Without it the answer is 401 and nothing is spooled; every
 * request gets exactly one answer (fake_bridge.h).
 */
#define main telegram_bridge_main
#include "clients/telegram/main.c"
#undef main

#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

#include "tests/fuzz/fake_bridge.h"

static tg_config g_cfg;
static tg_bridge g_b;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    br_common_defaults(&g_cfg.common);
    g_cfg.webhook_path = "/telegram/webhook";
    g_cfg.webhook_secret = "fuzz-secret-token";
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
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    fz_http_request q;
    fz_http_init(&q, "POST", g_cfg.webhook_path, body, len);
    if (data[0] & 1) {
        q.headers[0][0] = "X-Telegram-Bot-Api-Secret-Token";
        q.headers[0][1] = g_cfg.webhook_secret;
        q.n_headers = 1;
    }
    size_t before = fz_drain_spooled();
    webhook_handler(&g_b, &q.r);
    if (!(data[0] & 1) && (q.status != 401 || fz_drain_spooled() != before))
        abort();
    fz_http_check_and_free(&q);

    /* The poll loop's reading of the same update. */
    json_t *u = json_loadb(body, len, 0, NULL);
    if (json_is_object(u)) {
        tg_message m;
        if (extract_update(&g_b, u, &m) && (!m.in.channel_user_id[0] || !m.in.text || !m.in.message_id[0]))
            abort();
    }
    json_decref(u);
    return 0;
}
