/*
 * fuzz webchat: the web chat bridge's HTTP API (clients/webchat/main.c,
 * included here with its main renamed): every route of its table with
 * the visitor's query, headers and JSON body. The first byte picks the
 * route (modulo the table's length plus one: an unknown path) and, with
 * bit 7, whether the spool is empty (then a message is routed first, and
 * helpwired is down: fake_bridge.h). The rest is four lines: the query
 * (a=b&c=d), Accept-Language, Last-Event-ID, then the body. "@SID@" in
 * the query or body stands for a live session's id. A long poll's wait_s
 * is forced to 0 (the harness does not wait for replies). Every request
 * gets exactly one answer, whose JSON parses.
 */
#define main webchat_bridge_main
#include "clients/webchat/main.c"
#undef main

#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

#include "tests/fuzz/fake_bridge.h"
#include "tests/fuzz/fuzz_tmp.h"

static wc_config g_cfg;
static wc_bridge g_b;
static char g_sid[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[512];
    br_common_defaults(&g_cfg.common);
    g_cfg.max_sessions = 1000;
    g_cfg.max_events = 100;
    g_cfg.heartbeat_ms = 1000;
    const char *dir = fz_tmp_dir("webchat");
    g_b.cfg = &g_cfg;
    g_b.log = hw_log_create(open("/dev/null", O_WRONLY | O_CLOEXEC), HW_LOG_DEBUG, false);
    g_b.hub = wc_hub_create((size_t)g_cfg.max_sessions);
    g_b.drain = (br_drain *)&g_b; /* the fake drain does not look at it */
    if (!g_b.hub || wc_history_open(&g_b.history, dir, 1000, err, sizeof err) != 0 ||
        wc_hub_create_session(g_b.hub, "Ana", g_sid, sizeof g_sid) != 0) {
        fprintf(stderr, "fuzz webchat: setup: %s\n", err);
        abort();
    }
    return 0;
}

/* s with every "@SID@" replaced by the live session's id; malloc'd. */
static char *with_sid(const char *s, size_t len, size_t *out_len)
{
    size_t cap = len + 1, n = 0;
    for (const char *p = s; (p = memmem(p, len - (size_t)(p - s), "@SID@", 5)) != NULL; p += 5)
        cap += strlen(g_sid);
    char *out = malloc(cap);
    if (!out)
        abort();
    for (size_t i = 0; i < len;) {
        if (len - i >= 5 && memcmp(s + i, "@SID@", 5) == 0) {
            memcpy(out + n, g_sid, strlen(g_sid));
            n += strlen(g_sid);
            i += 5;
        } else {
            out[n++] = s[i++];
        }
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (!g_b.cfg)
        LLVMFuzzerInitialize(NULL, NULL);
    size_t n_routes = sizeof routes / sizeof routes[0];
    size_t pick = (data[0] & 0x7f) % (n_routes + 1);
    fz_drain_set_idle(data[0] & 0x80);
    size_t len;
    char *in = with_sid((const char *)data + 1, size - 1, &len);
    /* Four parts: query, Accept-Language, Last-Event-ID, body. */
    char *part[4] = {in, NULL, NULL, NULL};
    size_t used = 0;
    for (int i = 1; i < 4; i++) {
        char *nl = memchr(part[i - 1], '\n', len - (size_t)(part[i - 1] - in));
        if (!nl)
            break;
        *nl = '\0';
        part[i] = nl + 1;
    }
    const char *body = part[3] ? part[3] : "";
    used = part[3] ? len - (size_t)(part[3] - in) : 0;
    const char *method = pick < n_routes ? routes[pick].method : "GET";
    char url[64];
    if (pick == n_routes)
        snprintf(url, sizeof url, "/no/such/page");
    else if (routes[pick].prefix)
        snprintf(url, sizeof url, "%s%s", routes[pick].path, "tok");
    else
        snprintf(url, sizeof url, "%s", routes[pick].path);
    fz_http_request q;
    fz_http_init(&q, method, url, body, used);
    /* The query: a=b pairs split at '&' (up to the fake's limit, one
     * pair left for wait_s). */
    for (char *save = NULL, *kv = strtok_r(part[0], "&", &save); kv && q.n_query < FZ_HTTP_MAX_PAIRS - 1;
         kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq)
            continue;
        *eq = '\0';
        q.query[q.n_query][0] = kv;
        q.query[q.n_query++][1] = strcmp(kv, "wait_s") == 0 ? "0" : eq + 1;
    }
    if (part[1]) {
        q.headers[q.n_headers][0] = "Accept-Language";
        q.headers[q.n_headers++][1] = part[1];
    }
    if (part[2]) {
        q.headers[q.n_headers][0] = "Last-Event-ID";
        q.headers[q.n_headers++][1] = part[2];
    }
    if (pick < n_routes && strcmp(routes[pick].path, "/api/poll") == 0) {
        bool has_wait = false;
        for (size_t i = 0; i < q.n_query; i++)
            has_wait |= strcmp(q.query[i][0], "wait_s") == 0;
        if (!has_wait) {
            q.query[q.n_query][0] = "wait_s";
            q.query[q.n_query++][1] = "0";
        }
    }
    handler(&g_b, &q.r);
    fz_http_check_and_free(&q);
    free(in);
    return 0;
}
