/*
 * whatsapp-bridge: WhatsApp Cloud API <-> helpwired.
 *
 * Inbound: a webhook server. GET on the webhook path is Meta's verification
 * handshake (hub.mode=subscribe and hub.verify_token equal to
 * WHATSAPP_VERIFY_TOKEN: echo hub.challenge). A POST is accepted only when
 * X-Hub-Signature-256 is "sha256=" + the hex HMAC-SHA256 of the raw body
 * under WHATSAPP_APP_SECRET (compared in constant time); it is then queued
 * and answered 200 at once, as Meta expects, and a worker thread routes its
 * text messages with Router.Route. Status callbacks (sent, delivered,
 * read) and non-text messages are logged and ignored. A full queue answers
 * 503 so Meta retries later.
 *
 * No loss, no repeats: message ids (wamid) routed recently are remembered,
 * and helpwired dedupes by (channel, message_id) in any case, so Meta's
 * retries are answered once. A message helpwired cannot take now
 * (UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, ABORTED, CANCELLED) is retried
 * with backoff, in order, for up to --max-retry-age-ms from its timestamp;
 * one refused for good (any other status) or still failing past that age
 * is written to the dead-letter file in --state-dir (deadletter.h) and the
 * worker moves on to the next. On SIGTERM the server stops taking requests
 * and the worker drains what was accepted (for up to --drain-timeout-ms if
 * helpwired is unreachable; what is left then is a dead letter too, with
 * reason shutdown, as Meta was already answered 200).
 *
 * Outbound: Outbox.Subscribe(WHATSAPP); each message is sent with
 * POST /{phone-number-id}/messages (bearer WHATSAPP_ACCESS_TOKEN) and
 * acknowledged after the Graph API accepted it. Route's reply_text is not
 * sent directly (it is in the outbox too).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <grpc/grpc.h>
#include <jansson.h>

#include "clients/lib/backoff.h"
#include "clients/lib/client.h"
#include "clients/lib/config.h"
#include "clients/lib/dedupe.h"
#include "clients/lib/http.h"
#include "clients/lib/httpd.h"
#include "clients/lib/outbox.h"
#include "clients/lib/refusal.h"
#include "clients/lib/route.h"
#include "clients/lib/runtime.h"
#include "clients/lib/secure.h"
#include "clients/lib/stop.h"
#include "server/base/log.h"

#define PROG "whatsapp-bridge"

typedef struct wa_config {
    br_common common;
    const char *listen;
    const char *state_dir;
    const char *webhook_path;
    const char *api_base;
    const char *phone_number_id;
    const char *access_token;
    const char *app_secret;
    const char *verify_token;
    int queue_size;
    int drain_timeout_ms;
    int http_timeout_ms;
    int send_attempts;
} wa_config;

typedef struct queued {
    struct queued *next;
    size_t len;
    char body[];
} queued;

typedef struct wa_bridge {
    const wa_config *cfg;
    const br_route_policy *route;
    const hw_log *log;
    br_stop *stop;
    br_dedupe *seen; /* wamids routed recently */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    queued *head, *tail;
    int queued_n;
    bool closing; /* no more pushes; drain then exit */
    struct timespec drain_until;
} wa_bridge;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------- webhook */

static void respond_json(br_httpd_request *r, unsigned status, const char *json)
{
    br_httpd_respond(r, status, "application/json", json, strlen(json));
}

/* GET: Meta's subscription check. */
static void verify(wa_bridge *b, br_httpd_request *r)
{
    const char *mode = br_httpd_query(r, "hub.mode");
    const char *token = br_httpd_query(r, "hub.verify_token");
    const char *challenge = br_httpd_query(r, "hub.challenge");
    if (!mode || strcmp(mode, "subscribe") != 0 || !challenge ||
        !br_streq_const_time(token, b->cfg->verify_token)) {
        hw_log_event(b->log, HW_LOG_WARN, "verification_refused", "mode_ok=%s challenge=%s",
                     mode && strcmp(mode, "subscribe") == 0 ? "true" : "false",
                     challenge ? "present" : "missing");
        respond_json(r, 403, "{\"error\":\"verification failed\"}");
        return;
    }
    hw_log_event(b->log, HW_LOG_INFO, "verified", NULL);
    br_httpd_respond(r, 200, "text/plain", challenge, strlen(challenge));
}

static bool signature_ok(const wa_bridge *b, const br_httpd_request *r)
{
    const char *sig = br_httpd_header(r, "X-Hub-Signature-256");
    if (!sig || strncmp(sig, "sha256=", 7) != 0)
        return false;
    char hex[65];
    if (br_hmac_sha256_hex(b->cfg->app_secret, strlen(b->cfg->app_secret), r->body, r->body_len, hex) != 0)
        return false;
    /* Meta sends lowercase hex; accept uppercase too. */
    char given[65];
    size_t n = strlen(sig + 7);
    if (n != 64)
        return false;
    for (size_t i = 0; i < 64; i++) {
        char c = sig[7 + i];
        given[i] = (c >= 'A' && c <= 'F') ? (char)(c - 'A' + 'a') : c;
    }
    given[64] = '\0';
    return br_equal_const_time(given, 64, hex, 64);
}

static void handler(void *arg, br_httpd_request *r)
{
    wa_bridge *b = arg;
    if (strcmp(r->url, b->cfg->webhook_path) != 0) {
        respond_json(r, 404, "{\"error\":\"not found\"}");
        return;
    }
    if (strcmp(r->method, "GET") == 0) {
        verify(b, r);
        return;
    }
    if (strcmp(r->method, "POST") != 0) {
        respond_json(r, 405, "{\"error\":\"GET or POST\"}");
        return;
    }
    if (!signature_ok(b, r)) {
        hw_log_event(b->log, HW_LOG_WARN, "webhook_refused", "reason=bad_signature bytes=%zu", r->body_len);
        respond_json(r, 401, "{\"error\":\"bad signature\"}");
        return;
    }
    queued *q = malloc(sizeof *q + r->body_len + 1);
    if (!q) {
        respond_json(r, 503, "{\"error\":\"busy\"}");
        return;
    }
    q->next = NULL;
    q->len = r->body_len;
    memcpy(q->body, r->body, r->body_len);
    q->body[r->body_len] = '\0';
    pthread_mutex_lock(&b->mu);
    bool full = b->queued_n >= b->cfg->queue_size || b->closing;
    if (!full) {
        if (b->tail)
            b->tail->next = q;
        else
            b->head = q;
        b->tail = q;
        b->queued_n++;
        pthread_cond_broadcast(&b->cv);
    }
    pthread_mutex_unlock(&b->mu);
    if (full) {
        free(q);
        hw_log_event(b->log, HW_LOG_WARN, "webhook_deferred", "reason=queue_full");
        respond_json(r, 503, "{\"error\":\"busy, retry later\"}");
        return;
    }
    respond_json(r, 200, "{\"ok\":true}");
}

/* -------------------------------------------------------------- worker */

/* Waits up to ms on the queue's condition (woken early by pushes and by
 * closing). */
static void worker_wait(wa_bridge *b, int ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000;
    if (t.tv_nsec >= 1000000000) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&b->mu);
    pthread_cond_timedwait(&b->cv, &b->mu, &t);
    pthread_mutex_unlock(&b->mu);
}

/* Between two attempts: waits, and returns true once closing and past the
 * drain deadline. */
static bool wait_or_drained(void *arg, int ms)
{
    wa_bridge *b = arg;
    pthread_mutex_lock(&b->mu);
    bool closing = b->closing;
    int64_t left = closing
                       ? (int64_t)b->drain_until.tv_sec * 1000 + b->drain_until.tv_nsec / 1000000 - mono_ms()
                       : INT64_MAX;
    pthread_mutex_unlock(&b->mu);
    if (left <= 0)
        return true;
    worker_wait(b, ms > left ? (int)left : ms);
    return false;
}

/* Routes one text message per the retry policy (see route.h); a message
 * still not routed at the drain deadline is a dead letter. */
static void route_message(wa_bridge *b, json_t *m, json_t *contacts)
{
    const char *id = json_string_value(json_object_get(m, "id"));
    const char *from = json_string_value(json_object_get(m, "from"));
    const char *type = json_string_value(json_object_get(m, "type"));
    const char *text = json_string_value(json_object_get(json_object_get(m, "text"), "body"));
    char q[300];
    if (!id || !from) {
        hw_log_event(b->log, HW_LOG_WARN, "message_skipped", "reason=no_id_or_sender");
        return;
    }
    if (!type || strcmp(type, "text") != 0 || !text) {
        hw_log_event(b->log, HW_LOG_INFO, "message_skipped", "message_id=%s type=%s",
                     hw_log_quote(id, q, sizeof q), type ? type : "none");
        return;
    }
    if (br_dedupe_contains(b->seen, id)) {
        hw_log_event(b->log, HW_LOG_INFO, "message_duplicate", "message_id=%s",
                     hw_log_quote(id, q, sizeof q));
        return;
    }
    const char *name = NULL;
    size_t i;
    json_t *c;
    json_array_foreach(contacts, i, c)
    {
        const char *wa_id = json_string_value(json_object_get(c, "wa_id"));
        if (wa_id && strcmp(wa_id, from) == 0)
            name = json_string_value(json_object_get(json_object_get(c, "profile"), "name"));
    }
    br_inbound in = {HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP, from, name, text, id, NULL};
    const char *ts = json_string_value(json_object_get(m, "timestamp"));
    int64_t received_ms = ts ? strtoll(ts, NULL, 10) * 1000 : 0;
    br_route_trace tr;
    if (br_route_deliver(b->route, &in, received_ms, wait_or_drained, b, &tr) == BR_ROUTE_RETRY &&
        br_route_dead_letter(b->route, &in, BR_DEAD_SHUTDOWN, &tr.last, tr.attempts, tr.received_ms,
                             tr.first_ms, tr.last_ms) != 0)
        return; /* logged: nothing more can be done for it */
    br_dedupe_add(b->seen, id);
}

static void process_body(wa_bridge *b, const queued *item)
{
    json_error_t je;
    json_t *root = json_loadb(item->body, item->len, 0, &je);
    if (!json_is_object(root)) {
        hw_log_event(b->log, HW_LOG_WARN, "webhook_unparsed", "reason=not_json bytes=%zu", item->len);
        json_decref(root);
        return;
    }
    size_t i, j, k;
    json_t *entry, *change, *x;
    json_array_foreach(json_object_get(root, "entry"), i, entry)
    {
        json_array_foreach(json_object_get(entry, "changes"), j, change)
        {
            json_t *value = json_object_get(change, "value");
            const char *pnid =
                json_string_value(json_object_get(json_object_get(value, "metadata"), "phone_number_id"));
            if (pnid && strcmp(pnid, b->cfg->phone_number_id) != 0) {
                hw_log_event(b->log, HW_LOG_WARN, "change_skipped", "reason=other_phone_number_id");
                continue;
            }
            json_array_foreach(json_object_get(value, "statuses"), k, x)
            {
                const char *st = json_string_value(json_object_get(x, "status"));
                hw_log_event(b->log, HW_LOG_DEBUG, "status_ignored", "status=%s", st ? st : "none");
            }
            json_t *contacts = json_object_get(value, "contacts");
            json_array_foreach(json_object_get(value, "messages"), k, x)
            {
                route_message(b, x, contacts);
            }
        }
    }
    json_decref(root);
}

static void *worker(void *arg)
{
    wa_bridge *b = arg;
    for (;;) {
        pthread_mutex_lock(&b->mu);
        while (!b->head && !b->closing)
            pthread_cond_wait(&b->cv, &b->mu);
        queued *item = b->head;
        if (item) {
            b->head = item->next;
            if (!b->head)
                b->tail = NULL;
            b->queued_n--;
        }
        pthread_mutex_unlock(&b->mu);
        if (!item)
            break; /* closing and drained */
        process_body(b, item);
        free(item);
    }
    return NULL;
}

/* ------------------------------------------------------------ outbound */

/* Sends m with POST /messages. A permanent refusal (refusal.h: 131026,
 * 131047, 131051, 100) is BR_OUTBOX_FAILED with the error's message and
 * details as the reason. */
static int deliver(void *arg, const Helpwire__V1__OutboundMessage *m, char *reason, size_t reason_size)
{
    wa_bridge *b = arg;
    char url[2048];
    br_http_url(url, sizeof url, b->cfg->api_base, "/%s/messages", b->cfg->phone_number_id);
    json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:{s:b, s:s}}", "messaging_product", "whatsapp",
                             "recipient_type", "individual", "to", m->channel_user_id, "type", "text", "text",
                             "preview_url", m->survey_url && *m->survey_url, "body", m->text);
    char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!payload)
        return BR_OUTBOX_RETRY;
    br_http_request req = {.method = "POST",
                           .url = url,
                           .bearer = b->cfg->access_token,
                           .content_type = "application/json",
                           .body = payload,
                           .body_len = strlen(payload),
                           .timeout_ms = b->cfg->http_timeout_ms,
                           .stop = b->stop};
    br_http_response resp;
    br_backoff bo;
    br_backoff_init(&bo, b->cfg->common.backoff_initial_ms, b->cfg->common.backoff_max_ms, m->seq);
    int rc = br_http_do_retry(&req, &resp, b->cfg->send_attempts, &bo, NULL, NULL, b->log, "messages");
    free(payload);
    int result = BR_OUTBOX_RETRY;
    char q[300];
    if (rc == BR_HTTP_OK && resp.status >= 200 && resp.status < 300) {
        json_t *j = json_loadb(resp.body ? resp.body : "", resp.body_len, 0, NULL);
        const char *wamid =
            json_string_value(json_object_get(json_array_get(json_object_get(j, "messages"), 0), "id"));
        hw_log_event(b->log, HW_LOG_DEBUG, "sent", "seq=%llu wamid=%s", (unsigned long long)m->seq,
                     hw_log_quote(wamid ? wamid : "", q, sizeof q));
        json_decref(j);
        result = BR_OUTBOX_DELIVERED;
    } else if (rc == BR_HTTP_OK) {
        json_t *j = json_loadb(resp.body ? resp.body : "", resp.body_len, 0, NULL);
        json_t *err = json_object_get(j, "error");
        const char *msg = json_string_value(json_object_get(err, "message"));
        const char *details =
            json_string_value(json_object_get(json_object_get(err, "error_data"), "details"));
        json_t *code = json_object_get(err, "code");
        hw_log_event(b->log, resp.status >= 500 || resp.status == 429 ? HW_LOG_WARN : HW_LOG_ERROR,
                     "delivery_rejected", "seq=%llu status=%ld error=%s", (unsigned long long)m->seq,
                     resp.status, hw_log_quote(msg ? msg : "", q, sizeof q));
        if (json_is_integer(code) &&
            br_refusal_whatsapp((long)json_integer_value(code)) == BR_REFUSAL_PERMANENT) {
            snprintf(reason, reason_size, "whatsapp %lld: %s%s%s", (long long)json_integer_value(code),
                     msg ? msg : "(no message)", details ? ": " : "", details ? details : "");
            result = BR_OUTBOX_FAILED;
        }
        json_decref(j);
    } else if (rc == BR_HTTP_ETRANSPORT) {
        hw_log_event(b->log, HW_LOG_WARN, "whatsapp_unreachable", "seq=%llu error=%s",
                     (unsigned long long)m->seq, hw_log_quote(resp.error, q, sizeof q));
    }
    br_http_response_free(&resp);
    return result;
}

/* ---------------------------------------------------------------- main */

static const br_bridge bridge = {PROG, "whatsapp", HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP, true};

static const char about[] =
    "Bridges the WhatsApp Cloud API to helpwired. Serves Meta's webhook: verification by GET, signed POSTs "
    "(X-Hub-Signature-256) answered 200 at once and routed to Router.Route afterwards; status callbacks are "
    "ignored. Messages queued for WhatsApp in helpwired's outbox are sent with POST "
    "/{phone-number-id}/messages "
    "and acknowledged once the Graph API accepted them; Route's reply_text reaches the customer through the "
    "outbox, never directly. Exits cleanly on SIGTERM or SIGINT, draining accepted webhooks first.";

int main(int argc, char **argv)
{
    wa_config cfg;
    memset(&cfg, 0, sizeof cfg);
    br_common_defaults(&cfg.common);
    cfg.listen = "127.0.0.1:8081";
    cfg.webhook_path = "/whatsapp/webhook";
    cfg.api_base = "https://graph.facebook.com/v19.0";
    cfg.queue_size = 1000;
    cfg.drain_timeout_ms = 10000;
    cfg.http_timeout_ms = 15000;
    cfg.send_attempts = 5;
    const br_option opts[] = {
        BR_COMMON_OPTIONS(&cfg.common),
        {"listen", "WHATSAPP_LISTEN", BR_OPT_STRING, &cfg.listen, 0, 0, "ADDR",
         "Webhook server address, host:port (port 0 picks one). Default 127.0.0.1:8081 (terminate TLS in "
         "front)."},
        {"state-dir", "WHATSAPP_STATE_DIR", BR_OPT_REQUIRED, &cfg.state_dir, 0, 0, "DIR",
         "Directory for the dead letters (whatsapp.deadletter.jsonl: messages refused by helpwired, or not "
         "routed within --max-retry-age-ms); created if missing. Required."},
        {"webhook-path", NULL, BR_OPT_PATH, &cfg.webhook_path, 0, 0, "PATH",
         "Path of the webhook (callback URL path). Default /whatsapp/webhook."},
        {"api-base", "WHATSAPP_API_BASE", BR_OPT_STRING, &cfg.api_base, 0, 0, "URL",
         "Graph API base URL including the version (tests point it at a local fake). Default "
         "https://graph.facebook.com/v19.0."},
        {"phone-number-id", "WHATSAPP_PHONE_NUMBER_ID", BR_OPT_REQUIRED, &cfg.phone_number_id, 0, 0, "ID",
         "The business phone number id that sends replies; webhook changes for other numbers are skipped. "
         "Required."},
        {"queue-size", NULL, BR_OPT_INT, &cfg.queue_size, 1, 1000000, "N",
         "Webhook bodies accepted but not yet routed; beyond it POSTs get 503 and Meta retries. Default "
         "1000."},
        {"drain-timeout-ms", NULL, BR_OPT_INT, &cfg.drain_timeout_ms, 0, 3600000, "MS",
         "On SIGTERM, how long to keep retrying accepted messages while helpwired is unreachable. Default "
         "10000."},
        {"http-timeout-ms", NULL, BR_OPT_INT, &cfg.http_timeout_ms, 100, 600000, "MS",
         "Timeout of each Graph API request. Default 15000."},
        {"send-attempts", NULL, BR_OPT_INT, &cfg.send_attempts, 1, 100, "N",
         "Attempts of one send on transport errors, 429 and 5xx before leaving the message to be "
         "redelivered. "
         "Default 5."},
        {NULL, "WHATSAPP_ACCESS_TOKEN", BR_OPT_REQUIRED, &cfg.access_token, 0, 0, "TOKEN",
         "Graph API access token (system user), sent as a bearer token. Required."},
        {NULL, "WHATSAPP_APP_SECRET", BR_OPT_REQUIRED, &cfg.app_secret, 0, 0, "SECRET",
         "The Meta app secret that signs webhook POSTs. Required."},
        {NULL, "WHATSAPP_VERIFY_TOKEN", BR_OPT_REQUIRED, &cfg.verify_token, 0, 0, "TOKEN",
         "The verify token configured for the webhook subscription. Required."},
    };
    const size_t n_opts = sizeof opts / sizeof opts[0];
    br_runtime rt = {0};
    bool worker_up = false;
    pthread_t worker_thread;

    int rc = br_config_main(opts, n_opts, argc, argv, PROG, about);
    if (rc >= 0)
        return rc;
    wa_bridge b;
    memset(&b, 0, sizeof b);
    pthread_mutex_init(&b.mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b.cv, &ca);
    pthread_condattr_destroy(&ca);

    if ((rc = br_runtime_start(&rt, &bridge, &cfg.common)) != 0)
        goto out;
    rc = 1;
    b.seen = br_dedupe_create(10000);
    if (!b.seen) {
        fprintf(stderr, PROG ": out of memory\n");
        goto out;
    }
    b.cfg = &cfg;
    b.log = rt.log;
    b.stop = rt.stop;
    if (br_runtime_inbound(&rt, cfg.state_dir) != 0)
        goto out;
    b.route = &rt.route;
    if (pthread_create(&worker_thread, NULL, worker, &b) != 0) {
        fprintf(stderr, PROG ": cannot start the worker thread\n");
        goto out;
    }
    worker_up = true;
    if (br_runtime_subscribe(&rt, deliver, &b) != 0 ||
        br_runtime_listen(&rt, cfg.listen, 0, handler, &b) != 0)
        goto out;
    br_runtime_serve(&rt, cfg.listen);
    rc = 0;
out:
    /* No request is in progress once the server is down, so everything
     * accepted is in the queue the worker drains. */
    br_runtime_close_http(&rt);
    if (worker_up) {
        pthread_mutex_lock(&b.mu);
        b.closing = true;
        clock_gettime(CLOCK_MONOTONIC, &b.drain_until);
        b.drain_until.tv_sec += cfg.drain_timeout_ms / 1000;
        b.drain_until.tv_nsec += (long)(cfg.drain_timeout_ms % 1000) * 1000000;
        if (b.drain_until.tv_nsec >= 1000000000) {
            b.drain_until.tv_sec++;
            b.drain_until.tv_nsec -= 1000000000;
        }
        pthread_cond_broadcast(&b.cv);
        pthread_mutex_unlock(&b.mu);
        pthread_join(worker_thread, NULL);
    }
    br_runtime_finish(&rt, rc);
    for (queued *qd = b.head, *n; qd; qd = n) {
        n = qd->next;
        free(qd);
    }
    br_dedupe_destroy(b.seen);
    pthread_cond_destroy(&b.cv);
    pthread_mutex_destroy(&b.mu);
    return rc;
}
