/*
 * telegram-bridge: Telegram Bot API <-> helpwired.
 *
 * Inbound, by long polling (default): getUpdates with offset = last
 * update_id + 1 and a long-poll timeout. The offset is written to
 * --state-dir (atomically) after each update has been routed, so a restart
 * resumes exactly after the last routed update: nothing is lost, and the
 * one update that may be routed twice (a crash between Route and the write)
 * is answered as a duplicate by helpwired, which dedupes by (channel,
 * message_id). An update that helpwired cannot take now (UNAVAILABLE,
 * RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, ABORTED, CANCELLED) holds the offset and is
 * retried with backoff for up to --max-retry-age-ms from the message's
 * date; one it refuses for good (any other status), or one still failing
 * past that age, is written to the dead-letter file in --state-dir
 * (deadletter.h) and the offset moves past it, so the next customer is
 * routed. HTTP 429 waits retry_after.
 *
 * Inbound, by webhook (--mode webhook): POSTs on --webhook-path carrying
 * X-Telegram-Bot-Api-Secret-Token equal to TELEGRAM_WEBHOOK_SECRET
 * (constant-time check); a text message is written to the bridge's spool
 * in --state-dir (spool.h: LMDB, synced) before the POST is answered 200,
 * and routed from there in order by the drainer (drain.h) with the same
 * policy as polling (retried while helpwired cannot take it, up to
 * --max-retry-age-ms from the message's date; a dead letter when refused
 * for good or too old). A full spool (--spool-max-entries,
 * --spool-max-bytes) answers 503, so Telegram delivers it again later; a
 * crash or kill -9 loses nothing spooled. Registering the webhook URL with
 * setWebhook is left to the operator.
 *
 * Polling needs the channel's outbox lease (outbox.h): the bridge calls
 * getUpdates only while its Outbox stream is ACTIVE, so two bridges on one
 * bot (a rolling restart, on one --state-dir) never poll at once; a
 * standby waits, a bridge that loses the stream aborts its long poll, and
 * the offset is read afresh each time the lease is taken.
 *
 * Outbound: Outbox.Subscribe(TELEGRAM), delivered per chat by the outbox's
 * workers; each message goes out with one sendMessage, is recorded in the
 * sent record with its message_id, and is acknowledged only after Telegram
 * answered ok; a 429 holds back that chat for retry_after. Route's
 * reply_text is never sent directly (it is in the outbox too).
 *
 * The bot token appears only in request URLs, which are never logged.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <errno.h>

#include <curl/curl.h>
#include <grpc/grpc.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "clients/lib/backoff.h"
#include "clients/lib/client.h"
#include "clients/lib/config.h"
#include "clients/lib/dedupe.h"
#include "clients/lib/drain.h"
#include "clients/lib/http.h"
#include "clients/lib/httpd.h"
#include "clients/lib/outbox.h"
#include "clients/lib/refusal.h"
#include "clients/lib/route.h"
#include "clients/lib/runtime.h"
#include "clients/lib/secure.h"
#include "clients/lib/spool.h"
#include "clients/lib/state.h"
#include "clients/lib/stop.h"
#include "server/base/log.h"

#define PROG "telegram-bridge"

typedef struct tg_config {
    br_common common;
    const char *api_base;
    const char *bot_token_env;
    const char *bot_token_file;
    const char *mode;
    const char *state_dir;
    int poll_timeout_s;
    int http_timeout_ms;
    int send_attempts;
    const char *webhook_listen;
    const char *webhook_path;
    const char *webhook_secret;
    br_spool_settings spool;
} tg_config;

typedef struct tg_bridge {
    const tg_config *cfg;
    const br_route_policy *route;
    const hw_log *log;
    br_stop *stop;
    br_dedupe *seen; /* chat:message ids routed recently */
    br_outbox *ob;   /* set before the poll loop starts; its lease gates polling */
    char *bot_token;
    char offset_path[4096];
    br_drain *drain; /* webhook mode, the runtime's: spools the updates taken */
} tg_bridge;

/* Outcome of one Bot API call. */
typedef enum { TG_OK = 0, TG_RATE_LIMITED, TG_RETRY, TG_REJECTED, TG_REFUSED, TG_STOPPED } tg_result;

static void build_url(const tg_bridge *b, const char *method, char *url, size_t n)
{
    br_http_url(url, n, b->cfg->api_base, "/bot%s/%s", b->bot_token, method);
}

/* Telegram puts the 429 delay in the body: parameters.retry_after. */
static int retry_after_ms(const br_http_response *resp, void *arg)
{
    json_t *j = resp->body ? json_loadb(resp->body, resp->body_len, 0, NULL) : NULL;
    int ms = -1;
    json_t *ra = json_object_get(json_object_get(j, "parameters"), "retry_after");
    if (json_is_integer(ra) && json_integer_value(ra) >= 0 && json_integer_value(ra) < 3600)
        ms = (int)json_integer_value(ra) * 1000;
    json_decref(j);
    return ms;
}

/* Whether the long poll must end now: this bridge lost its channel's
 * outbox lease (another bridge polls). */
static bool lease_lost(void *arg)
{
    tg_bridge *b = arg;
    return b->ob && !br_outbox_lease_active(b->ob);
}

/* POSTs body to Bot API method. On TG_OK *result (may be NULL) holds the
 * "result" member (decref it). TG_RATE_LIMITED sets *wait_ms. With refusal
 * (may be NULL), an error answer writes "telegram <code>: <description>"
 * there, and one refusal.h calls permanent is TG_REFUSED; without, such an
 * answer is TG_REJECTED like any other 4xx. attempts > 1
 * retries transport errors, 429 and 5xx inside. abortable: a stop, or the
 * lease lost, aborts the request in flight (a long poll); sends are let
 * finish so that their outcome, and so the Ack, is known. */
static tg_result bot_call(tg_bridge *b, const char *method, json_t *body, int timeout_ms, int attempts,
                          bool abortable, json_t **result, int *wait_ms, char *refusal, size_t refusal_size)
{
    char url[2048];
    build_url(b, method, url, sizeof url);
    char *payload = json_dumps(body, JSON_COMPACT);
    if (!payload)
        return TG_RETRY;
    br_http_request req = {.method = "POST",
                           .url = url,
                           .content_type = "application/json",
                           .body = payload,
                           .body_len = strlen(payload),
                           .timeout_ms = timeout_ms,
                           .stop = b->stop,
                           .abort_on_stop = abortable,
                           .abort_fn = lease_lost,
                           .abort_arg = b};
    br_http_response resp;
    br_backoff bo;
    br_backoff_init(&bo, b->cfg->common.backoff_initial_ms, b->cfg->common.backoff_max_ms, (uintptr_t)&bo);
    int rc = br_http_do_retry(&req, &resp, attempts, &bo, retry_after_ms, NULL, b->log, method);
    OPENSSL_cleanse(url, sizeof url);
    free(payload);
    if (result)
        *result = NULL;
    if (rc == BR_HTTP_ESTOPPED)
        return TG_STOPPED;
    if (rc != BR_HTTP_OK) {
        char q[300];
        hw_log_event(b->log, HW_LOG_WARN, "telegram_unreachable", "method=%s error=%s", method,
                     hw_log_quote(resp.error, q, sizeof q));
        if (refusal)
            snprintf(refusal, refusal_size, "telegram unreachable: %s", resp.error);
        br_http_response_free(&resp);
        return TG_RETRY;
    }
    tg_result res;
    json_t *j = json_loadb(resp.body ? resp.body : "", resp.body_len, 0, NULL);
    if (resp.status == 200 && json_is_true(json_object_get(j, "ok"))) {
        res = TG_OK;
        if (result)
            *result = json_incref(json_object_get(j, "result"));
    } else {
        const char *desc = json_string_value(json_object_get(j, "description"));
        char q[300];
        hw_log_event(b->log, HW_LOG_WARN, "telegram_error", "method=%s status=%ld description=%s", method,
                     resp.status, hw_log_quote(desc ? desc : "", q, sizeof q));
        if (resp.status == 429) {
            int ms = retry_after_ms(&resp, NULL);
            *wait_ms = ms >= 0 ? ms : 1000;
            res = TG_RATE_LIMITED;
        } else if (resp.status >= 500 || resp.status == 408 || resp.status == 0) {
            res = TG_RETRY;
        } else {
            res = TG_REJECTED;
        }
        json_t *code = json_object_get(j, "error_code");
        long status = json_is_integer(code) ? (long)json_integer_value(code) : resp.status;
        if (refusal)
            snprintf(refusal, refusal_size, "telegram %ld: %s", status, desc ? desc : "(no description)");
        if (res != TG_RATE_LIMITED && refusal && br_refusal_telegram(status) == BR_REFUSAL_PERMANENT)
            res = TG_REFUSED;
    }
    json_decref(j);
    br_http_response_free(&resp);
    return res;
}

/* ------------------------------------------------------------- inbound */

/* Between two attempts of the poll loop: true when stopping. */
static bool wait_or_stop(void *arg, int ms)
{
    tg_bridge *b = arg;
    return br_stop_sleep_ms(b->stop, ms);
}

/* An update's message as Route takes it, with the buffers its strings
 * live in (the rest are borrowed from the update's JSON). */
typedef struct tg_message {
    br_inbound in;
    int64_t received_ms; /* the message's date, 0 when it has none */
    char user[32], key[64], name[300];
} tg_message;

/* Extracts update's text message into m. Returns false when there is
 * nothing to route (not a text message; logged). */
static bool extract_update(tg_bridge *b, json_t *update, tg_message *m)
{
    json_int_t update_id = json_integer_value(json_object_get(update, "update_id"));
    json_t *msg = json_object_get(update, "message");
    json_t *chat = json_object_get(msg, "chat");
    json_t *from = json_object_get(msg, "from");
    const char *text = json_string_value(json_object_get(msg, "text"));
    json_t *chat_id = json_object_get(chat, "id");
    json_t *message_id = json_object_get(msg, "message_id");
    if (!text || !json_is_integer(chat_id) || !json_is_integer(message_id)) {
        hw_log_event(b->log, HW_LOG_INFO, "update_skipped", "update_id=%lld reason=%s", (long long)update_id,
                     msg ? "not_text" : "not_a_message");
        return false;
    }
    snprintf(m->user, sizeof m->user, "%lld", (long long)json_integer_value(chat_id));
    snprintf(m->key, sizeof m->key, "%s:%lld", m->user, (long long)json_integer_value(message_id));
    const char *first = json_string_value(json_object_get(from, "first_name"));
    const char *last = json_string_value(json_object_get(from, "last_name"));
    const char *username = json_string_value(json_object_get(from, "username"));
    if (first)
        snprintf(m->name, sizeof m->name, "%s%s%s", first, last ? " " : "", last ? last : "");
    else
        snprintf(m->name, sizeof m->name, "%s", username ? username : "");
    m->in = (br_inbound){HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM,
                         m->user,
                         m->name,
                         text,
                         m->key,
                         json_string_value(json_object_get(from, "language_code"))};
    json_t *date = json_object_get(msg, "date");
    m->received_ms = json_is_integer(date) ? (int64_t)json_integer_value(date) * 1000 : 0;
    return true;
}

/* Routes one update: retrying per the policy in the poll loop (once is
 * false), or one attempt. Returns BR_ROUTE_OK when it is done with
 * (routed, duplicate, or nothing to route), BR_ROUTE_DEAD when it was
 * recorded as a dead letter, BR_ROUTE_RETRY when it must be tried again
 * (stopping). */
static br_route_result handle_update(tg_bridge *b, json_t *update, bool once)
{
    tg_message m;
    if (!extract_update(b, update, &m))
        return BR_ROUTE_OK;
    if (br_dedupe_contains(b->seen, m.key)) {
        hw_log_event(b->log, HW_LOG_INFO, "update_duplicate", "update_id=%lld message_id=%s",
                     (long long)json_integer_value(json_object_get(update, "update_id")), m.key);
        return BR_ROUTE_OK;
    }
    br_route_result r = br_route_deliver(b->route, &m.in, m.received_ms, once ? NULL : wait_or_stop, b, NULL);
    if (r != BR_ROUTE_RETRY)
        br_dedupe_add(b->seen, m.key);
    return r;
}

static int save_offset(tg_bridge *b, uint64_t offset)
{
    char err[512];
    if (br_state_write_u64(b->offset_path, offset, err, sizeof err) != 0) {
        hw_log_event(b->log, HW_LOG_ERROR, "offset_write_failed", "error=\"%s\"", err);
        return -1;
    }
    return 0;
}

/* Waits until this bridge holds the outbox lease (only the holder polls:
 * Telegram answers 409 Conflict to overlapping getUpdates), then reads the
 * offset afresh (another bridge on the same state directory may have
 * moved it). Returns 0, 1 when stopping, or -1 when the offset cannot be
 * read. */
static int wait_for_lease(tg_bridge *b, uint64_t *offset)
{
    char err[512];
    bool logged = false;
    while (lease_lost(b)) {
        if (!logged)
            hw_log_event(b->log, HW_LOG_INFO, "poll_paused", "reason=\"no outbox lease\"");
        logged = true;
        if (br_stop_sleep_ms(b->stop, 50))
            return 1;
    }
    if (br_stop_requested(b->stop))
        return 1;
    if (br_state_read_u64(b->offset_path, offset, err, sizeof err) < 0) {
        hw_log_event(b->log, HW_LOG_ERROR, "offset_read_failed", "error=\"%s\"", err);
        return -1;
    }
    hw_log_event(b->log, HW_LOG_INFO, "polling", "offset=%" PRIu64 " timeout_s=%d", *offset,
                 b->cfg->poll_timeout_s);
    return 0;
}

/* The long-poll loop, while this bridge holds the lease; returns when a
 * stop is requested. */
static int poll_loop(tg_bridge *b)
{
    uint64_t offset = 0;
    int w = wait_for_lease(b, &offset);
    if (w != 0)
        return w < 0 ? -1 : 0;
    br_backoff bo;
    br_backoff_init(&bo, b->cfg->common.backoff_initial_ms, b->cfg->common.backoff_max_ms,
                    (uintptr_t)b ^ offset);
    while (!br_stop_requested(b->stop)) {
        if (lease_lost(b)) {
            if ((w = wait_for_lease(b, &offset)) != 0)
                return w < 0 ? -1 : 0;
            continue;
        }
        json_t *body = json_object();
        if (offset > 0)
            json_object_set_new(body, "offset", json_integer((json_int_t)offset));
        json_object_set_new(body, "timeout", json_integer(b->cfg->poll_timeout_s));
        json_t *allowed = json_array();
        json_array_append_new(allowed, json_string("message"));
        json_object_set_new(body, "allowed_updates", allowed);
        json_t *updates = NULL;
        int wait_ms = 0;
        tg_result r = bot_call(b, "getUpdates", body, b->cfg->poll_timeout_s * 1000 + b->cfg->http_timeout_ms,
                               1, true, &updates, &wait_ms, NULL, 0);
        json_decref(body);
        if (r == TG_STOPPED && br_stop_requested(b->stop))
            break;
        if (r == TG_STOPPED)
            continue; /* the lease lost: wait for it */
        if (r != TG_OK || !json_is_array(updates)) {
            json_decref(updates);
            int delay = r == TG_RATE_LIMITED ? wait_ms : br_backoff_next_ms(&bo);
            hw_log_event(b->log, HW_LOG_INFO, "poll_backoff", "delay_ms=%d", delay);
            if (br_stop_sleep_ms(b->stop, delay))
                break;
            continue;
        }
        br_backoff_reset(&bo);
        size_t i;
        json_t *u;
        json_array_foreach(updates, i, u)
        {
            json_t *idj = json_object_get(u, "update_id");
            if (!json_is_integer(idj) || json_integer_value(idj) < 0)
                continue;
            uint64_t id = (uint64_t)json_integer_value(idj);
            if (id < offset) {
                /* Already routed: Telegram confirms by offset, so an older
                 * update can only come back from a misbehaving API. */
                hw_log_event(b->log, HW_LOG_INFO, "update_duplicate", "update_id=%" PRIu64, id);
                continue;
            }
            br_route_result rr = handle_update(b, u, false);
            if (rr == BR_ROUTE_RETRY)
                break; /* stopping, or no dead letter written: the offset stays before this update */
            offset = id + 1;
            if (save_offset(b, offset) != 0) {
                br_stop_sleep_ms(b->stop, br_backoff_next_ms(&bo));
                break;
            }
        }
        json_decref(updates);
    }
    return 0;
}

/* Webhook: one update per POST, spooled before the answer 200. */
static void webhook_handler(void *arg, br_httpd_request *r)
{
    tg_bridge *b = arg;
    static const char ok[] = "{\"ok\":true}";
    if (strcmp(r->url, b->cfg->webhook_path) != 0) {
        br_httpd_respond(r, 404, "application/json", "{\"error\":\"not found\"}", 21);
        return;
    }
    if (strcmp(r->method, "POST") != 0) {
        br_httpd_respond(r, 405, "application/json", "{\"error\":\"POST only\"}", 21);
        return;
    }
    if (!br_streq_const_time(br_httpd_header(r, "X-Telegram-Bot-Api-Secret-Token"), b->cfg->webhook_secret)) {
        hw_log_event(b->log, HW_LOG_WARN, "webhook_refused", "reason=bad_secret_token");
        br_httpd_respond(r, 401, "application/json", "{\"error\":\"bad secret token\"}", 28);
        return;
    }
    json_t *u = json_loadb(r->body, r->body_len, 0, NULL);
    if (!json_is_object(u)) {
        json_decref(u);
        br_httpd_respond(r, 400, "application/json", "{\"error\":\"not JSON\"}", 20);
        return;
    }
    tg_message m;
    char err[600];
    int rc = extract_update(b, u, &m) ? br_drain_spool(b->drain, &m.in, &m.received_ms, 1, err, sizeof err)
                                      : BR_SPOOL_OK;
    json_decref(u); /* after the spool: m borrows its strings */
    if (rc != BR_SPOOL_OK) {
        hw_log_event(b->log, rc == BR_SPOOL_FULL ? HW_LOG_WARN : HW_LOG_ERROR, "webhook_deferred",
                     "reason=%s error=\"%s\"", rc == BR_SPOOL_FULL ? "spool_full" : "spool_error", err);
        br_httpd_respond(r, 503, "application/json", "{\"error\":\"try again\"}", 21);
    } else {
        br_httpd_respond(r, 200, "application/json", ok, sizeof ok - 1);
    }
}

/* ------------------------------------------------------------ outbound */

/* Sends m with sendMessage, once. A permanent refusal (refusal.h: 400,
 * 403) is BR_OUTBOX_FAILED with Telegram's description as the reason; a
 * 429 waits parameters.retry_after for this chat only; the message_id of
 * the sent message is the upstream id. */
static int deliver(void *arg, const Helpwire__V1__OutboundMessage *m, br_delivery *d)
{
    tg_bridge *b = arg;
    json_t *body = json_object();
    char *end = NULL;
    long long chat = strtoll(m->channel_user_id, &end, 10);
    if (end && *end == '\0' && end != m->channel_user_id)
        json_object_set_new(body, "chat_id", json_integer(chat));
    else
        json_object_set_new(body, "chat_id", json_string(m->channel_user_id));
    json_object_set_new(body, "text", json_string(m->text));
    int wait_ms = 0;
    json_t *result = NULL;
    tg_result r = bot_call(b, "sendMessage", body, b->cfg->http_timeout_ms, 1, false, &result, &wait_ms,
                           d->reason, sizeof d->reason);
    json_decref(body);
    if (r == TG_REJECTED)
        hw_log_event(b->log, HW_LOG_ERROR, "delivery_rejected", "seq=%llu chat=%s",
                     (unsigned long long)m->seq, m->channel_user_id);
    json_t *mid = json_object_get(result, "message_id");
    if (json_is_integer(mid))
        snprintf(d->upstream_id, sizeof d->upstream_id, "%lld", (long long)json_integer_value(mid));
    json_decref(result);
    if (r == TG_OK)
        return BR_OUTBOX_DELIVERED;
    if (r == TG_RATE_LIMITED)
        d->retry_after_ms = wait_ms;
    d->scope = BR_SCOPE_RECIPIENT;
    return r == TG_REFUSED ? BR_OUTBOX_FAILED : BR_OUTBOX_RETRY;
}

/* ---------------------------------------------------------------- main */

static const br_bridge bridge = {PROG, "telegram", HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, true};

static const char about[] =
    "Bridges a Telegram bot to helpwired. Customer messages (long-polled with getUpdates, or taken by "
    "webhook) "
    "go to Router.Route; messages queued for Telegram in helpwired's outbox (answers, acknowledgements, "
    "agent "
    "replies, survey invitations) go out with sendMessage and are acknowledged once Telegram accepted them. "
    "Route's reply_text is not sent directly: it reaches the customer through the outbox. Exits cleanly on "
    "SIGTERM or SIGINT.";

int main(int argc, char **argv)
{
    tg_config cfg;
    memset(&cfg, 0, sizeof cfg);
    br_common_defaults(&cfg.common);
    cfg.api_base = "https://api.telegram.org";
    cfg.mode = "poll";
    cfg.poll_timeout_s = 30;
    cfg.http_timeout_ms = 15000;
    cfg.send_attempts = 5;
    cfg.webhook_listen = "127.0.0.1:8443";
    cfg.webhook_path = "/telegram/webhook";
    br_spool_settings_defaults(&cfg.spool);
    const br_option opts[] = {
        BR_COMMON_OPTIONS(&cfg.common),
        {"api-base", "TELEGRAM_API_BASE", BR_OPT_STRING, &cfg.api_base, 0, 0, "URL",
         "Bot API base URL (tests point it at a local fake). Default https://api.telegram.org."},
        {NULL, "TELEGRAM_BOT_TOKEN", BR_OPT_STRING, &cfg.bot_token_env, 0, 0, "TOKEN",
         "The bot's token from @BotFather. Required unless --bot-token-file is given."},
        {"bot-token-file", "TELEGRAM_BOT_TOKEN_FILE", BR_OPT_STRING, &cfg.bot_token_file, 0, 0, "FILE",
         "Read the bot token from FILE instead of TELEGRAM_BOT_TOKEN."},
        {"mode", "TELEGRAM_MODE", BR_OPT_STRING, &cfg.mode, 0, 0, "MODE",
         "poll (getUpdates long polling) or webhook. Default poll."},
        {"state-dir", "TELEGRAM_STATE_DIR", BR_OPT_REQUIRED, &cfg.state_dir, 0, 0, "DIR",
         "Directory for the persisted getUpdates offset (file telegram.offset), the dead letters "
         "(telegram.deadletter.jsonl) and the record of messages sent (telegram.sent.mdb); created if "
         "missing. Two bridges may share it during a rolling restart. Required."},
        {"poll-timeout-s", NULL, BR_OPT_INT, &cfg.poll_timeout_s, 0, 50, "S",
         "Long-poll timeout of getUpdates. Default 30."},
        {"http-timeout-ms", NULL, BR_OPT_INT, &cfg.http_timeout_ms, 100, 600000, "MS",
         "Timeout of each Bot API request (added to the long-poll timeout for getUpdates). Default 15000."},
        {"send-attempts", NULL, BR_OPT_INT, &cfg.send_attempts, 1, 100, "N",
         "Unused, accepted for old command lines: each sendMessage is one attempt, and its retries are "
         "scheduled per chat (retry_after honoured) up to --max-delivery-age-ms."},
        {"webhook-listen", "TELEGRAM_WEBHOOK_LISTEN", BR_OPT_STRING, &cfg.webhook_listen, 0, 0, "ADDR",
         "Webhook mode: address to serve on, host:port (port 0 picks one). Default 127.0.0.1:8443 "
         "(terminate TLS in front)."},
        {"webhook-path", NULL, BR_OPT_PATH, &cfg.webhook_path, 0, 0, "PATH",
         "Webhook mode: the path Telegram posts to. Default /telegram/webhook."},
        {NULL, "TELEGRAM_WEBHOOK_SECRET", BR_OPT_STRING, &cfg.webhook_secret, 0, 0, "SECRET",
         "Webhook mode: the secret_token given to setWebhook; POSTs without it in "
         "X-Telegram-Bot-Api-Secret-Token are refused. Required in webhook mode."},
        BR_SPOOL_OPTIONS(
            &cfg.spool,
            "Webhook mode: messages taken but not yet routed, kept in the spool "
            "(<state-dir>/telegram.spool); "
            "beyond it POSTs are answered 503 and Telegram delivers them again later. Default 10000.",
            "Webhook mode: the most message data the spool holds; beyond it POSTs are answered 503. Default "
            "67108864 (64 MiB).",
            "Webhook mode: on SIGTERM, how long to keep routing spooled messages; what is left stays in the "
            "spool for the next start. Default 10000."),
    };
    const size_t n_opts = sizeof opts / sizeof opts[0];
    char err[512];
    br_runtime rt = {0};
    tg_bridge b;
    memset(&b, 0, sizeof b);

    int rc = br_config_main(opts, n_opts, argc, argv, PROG, about);
    if (rc >= 0)
        return rc;
    bool webhook = strcmp(cfg.mode, "webhook") == 0;
    if (!webhook && strcmp(cfg.mode, "poll") != 0) {
        fprintf(stderr, PROG ": --mode: expected poll or webhook\n");
        return 2;
    }
    if (webhook && (!cfg.webhook_secret || !*cfg.webhook_secret)) {
        fprintf(stderr, PROG ": TELEGRAM_WEBHOOK_SECRET is required in webhook mode\n");
        return 2;
    }
    rc = 2;
    if (hw_client_secret_load(cfg.bot_token_file, cfg.bot_token_env, "bot-token-file", &b.bot_token, err,
                              sizeof err) != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        goto out;
    }
    if (!b.bot_token) {
        fprintf(stderr, PROG ": TELEGRAM_BOT_TOKEN (or --bot-token-file) is required\n");
        goto out;
    }
    if (mkdir(cfg.state_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, PROG ": --state-dir %s: %s\n", cfg.state_dir, strerror(errno));
        goto out;
    }
    snprintf(b.offset_path, sizeof b.offset_path, "%s/telegram.offset", cfg.state_dir);
    if ((rc = br_runtime_start(&rt, &bridge, &cfg.common)) != 0)
        goto out;
    rc = 1;
    if (br_runtime_inbound(&rt, cfg.state_dir) != 0)
        goto out;
    b.route = &rt.route;
    b.seen = br_dedupe_create(10000);
    if (!b.seen) {
        fprintf(stderr, PROG ": out of memory\n");
        goto out;
    }
    b.cfg = &cfg;
    b.log = rt.log;
    b.stop = rt.stop;
    if (br_runtime_subscribe(&rt, cfg.state_dir, deliver, &b) != 0)
        goto out;
    b.ob = rt.ob;
    char q[300];
    hw_log_event(rt.log, HW_LOG_INFO, "started", "mode=%s helpwire=%s tls=%s token=%s", cfg.mode,
                 hw_log_quote(cfg.common.helpwire, q, sizeof q), cfg.common.tls_ca ? "true" : "false",
                 cfg.common.token ? "set" : "unset");
    if (webhook) {
        if (br_runtime_spool(&rt, cfg.state_dir, &cfg.spool) != 0)
            goto out;
        b.drain = rt.drain;
        if (br_runtime_listen(&rt, cfg.webhook_listen, 0, webhook_handler, &b) != 0)
            goto out;
        printf(PROG " webhook on %s:%u\n", cfg.webhook_listen[0] == '[' ? "[::1]" : "127.0.0.1",
               br_httpd_port(rt.httpd));
        fflush(stdout);
        br_runtime_wait(&rt);
    } else {
        printf(PROG " polling\n");
        fflush(stdout);
        if (poll_loop(&b) != 0)
            goto out;
    }
    rc = 0;
out:
    br_runtime_finish(&rt, rc); /* webhook mode: the drainer routes on for up to --drain-timeout-ms */
    br_dedupe_destroy(b.seen);
    hw_client_secret_free(&b.bot_token);
    return rc;
}
