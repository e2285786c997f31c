/*
 * whatsapp-bridge: WhatsApp Cloud API <-> helpwired.
 *
 * Inbound: a webhook server. GET on the webhook path is Meta's verification
 * handshake (hub.mode=subscribe and hub.verify_token equal to
 * WHATSAPP_VERIFY_TOKEN: echo hub.challenge). A POST is accepted only when
 * X-Hub-Signature-256 is "sha256=" + the hex HMAC-SHA256 of the raw body
 * under WHATSAPP_APP_SECRET (compared in constant time); its text messages
 * are then written to the bridge's spool in --state-dir (spool.h: LMDB,
 * synced) and only then is Meta answered 200; a full spool, or one that
 * cannot be written, answers 503 so Meta delivers the webhook again later.
 * A "failed" status callback for a wamid in the sent record is
 * acknowledged to helpwired as a late failure (the ticket gets
 * DELIVERY_FAILED) before the answer; when that Ack fails the webhook is
 * answered 503, so Meta delivers it again (its messages, spooled again,
 * are answered as duplicates by helpwired). Other statuses (sent,
 * delivered, read) and non-text messages are logged and ignored.
 *
 * Routing happens from the spool (drain.h), one message at a time in
 * arrival order: a message helpwired cannot take now (UNAVAILABLE,
 * RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, ABORTED, CANCELLED) is retried with backoff
 * for up to --max-retry-age-ms from its timestamp; one refused for good
 * (any other status) or still failing past that age is written to the
 * dead-letter file in --state-dir (deadletter.h) and the drainer moves on.
 * No loss, no repeats: an entry leaves the spool only once routed or
 * dead-lettered, so a crash or kill -9 loses nothing (the next start
 * routes what is left), and helpwired dedupes by (channel, message_id), so
 * Meta's retries and the one message a crash may route twice are answered
 * once. On SIGTERM the server stops taking requests and the drainer goes
 * on routing for up to --drain-timeout-ms; what is left stays spooled.
 *
 * Outbound: Outbox.Subscribe(WHATSAPP), delivered per recipient by the
 * outbox's workers; each message is sent with one POST
 * /{phone-number-id}/messages (bearer WHATSAPP_ACCESS_TOKEN), recorded
 * with its wamid, and acknowledged after the Graph API accepted it; 130429
 * pauses the whole channel, 131056 that recipient. Route's reply_text is not
 * sent directly (it is in the outbox too).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <grpc/grpc.h>
#include <jansson.h>

#include "clients/lib/backoff.h"
#include "clients/lib/client.h"
#include "clients/lib/config.h"
#include "clients/lib/drain.h"
#include "clients/lib/http.h"
#include "clients/lib/httpd.h"
#include "clients/lib/outbox.h"
#include "clients/lib/refusal.h"
#include "clients/lib/route.h"
#include "clients/lib/runtime.h"
#include "clients/lib/secure.h"
#include "clients/lib/spool.h"
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
    br_spool_settings spool;
    int http_timeout_ms;
    int send_attempts;
} wa_config;

typedef struct wa_bridge {
    const wa_config *cfg;
    const hw_log *log;
    br_stop *stop;
    br_drain *drain; /* the runtime's: spools the messages taken from webhooks */
    br_outbox *ob;   /* set before the server listens: late failures are acknowledged on it */
    br_sent *sent;   /* the sent record: wamid -> message */
} wa_bridge;

/* The text messages of one webhook body, to spool together. */
#define WA_MAX_BATCH 256
typedef struct wa_batch {
    br_inbound in[WA_MAX_BATCH];
    int64_t received_ms[WA_MAX_BATCH];
    size_t n;
    size_t dropped; /* beyond WA_MAX_BATCH (Meta sends one or a few) */
} wa_batch;

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

/* Adds one text message to the batch; anything else is logged and
 * skipped. Its strings are borrowed from the webhook's JSON. */
static void collect_message(wa_bridge *b, json_t *m, json_t *contacts, wa_batch *batch)
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
    if (batch->n == WA_MAX_BATCH) {
        batch->dropped++;
        hw_log_event(b->log, HW_LOG_ERROR, "message_skipped", "message_id=%s reason=batch_over_%d",
                     hw_log_quote(id, q, sizeof q), WA_MAX_BATCH);
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
    const char *ts = json_string_value(json_object_get(m, "timestamp"));
    batch->in[batch->n] = (br_inbound){HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP, from, name, text, id, NULL};
    batch->received_ms[batch->n] = ts ? strtoll(ts, NULL, 10) * 1000 : 0;
    batch->n++;
}

/* A status callback. "failed" for a wamid in the sent record: the message
 * is acknowledged as FAILED late (FailedDelivery.message), with reason
 * "whatsapp <code>: <title>: <details>"; for an unknown wamid a warning.
 * Other statuses (sent, delivered, read) are only logged at debug.
 * Returns -1 when the late failure could not be acknowledged (the webhook
 * is then answered 503, so Meta sends it again), else 0. */
static int handle_status(wa_bridge *b, json_t *x)
{
    const char *st = json_string_value(json_object_get(x, "status"));
    const char *wamid = json_string_value(json_object_get(x, "id"));
    char q[300], q2[300];
    if (!st || strcmp(st, "failed") != 0) {
        hw_log_event(b->log, HW_LOG_DEBUG, "status_ignored", "status=%s", st ? st : "none");
        return 0;
    }
    json_t *e = json_array_get(json_object_get(x, "errors"), 0);
    json_t *code = json_object_get(e, "code");
    const char *title = json_string_value(json_object_get(e, "title"));
    if (!title)
        title = json_string_value(json_object_get(e, "message"));
    const char *details = json_string_value(json_object_get(json_object_get(e, "error_data"), "details"));
    char reason[1024];
    snprintf(reason, sizeof reason, "whatsapp %lld: %s%s%s", json_is_integer(code) ? (long long)json_integer_value(code) : 0LL,
             title ? title : "(no title)", details ? ": " : "", details ? details : "");
    br_sent_record rec;
    int found = b->sent && wamid ? br_sent_find_upstream(b->sent, wamid, &rec) : 0;
    if (found != 1 || !rec.message) {
        if (found == 1)
            br_sent_record_free(&rec);
        hw_log_event(b->log, HW_LOG_WARN, "status_failed_unknown", "wamid=%s reason=%s",
                     hw_log_quote(wamid ? wamid : "", q, sizeof q), hw_log_quote(reason, q2, sizeof q2));
        return 0;
    }
    int rc = b->ob ? br_outbox_late_failure(b->ob, rec.message, reason) : -1;
    br_sent_record_free(&rec);
    return rc;
}

/* One signed webhook body: its text messages into batch, in order, and
 * its status callbacks handled. Returns -1 when a late failure could not
 * be acknowledged, else 0. */
static int process_body(wa_bridge *b, json_t *root, wa_batch *batch)
{
    int rc = 0;
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
                if (handle_status(b, x) != 0)
                    rc = -1;
            }
            json_t *contacts = json_object_get(value, "contacts");
            json_array_foreach(json_object_get(value, "messages"), k, x)
            {
                collect_message(b, x, contacts, batch);
            }
        }
    }
    return rc;
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
    json_error_t je;
    json_t *root = json_loadb(r->body, r->body_len, 0, &je);
    if (!json_is_object(root)) {
        /* Signed by Meta, yet not JSON: sending it again would not help. */
        hw_log_event(b->log, HW_LOG_WARN, "webhook_unparsed", "reason=not_json bytes=%zu", r->body_len);
        json_decref(root);
        respond_json(r, 200, "{\"ok\":true}");
        return;
    }
    wa_batch *batch = calloc(1, sizeof *batch);
    if (!batch) {
        json_decref(root);
        respond_json(r, 503, "{\"error\":\"busy, retry later\"}");
        return;
    }
    if (process_body(b, root, batch) != 0) {
        /* Nothing of it spooled yet: Meta sends the whole body again. */
        free(batch);
        json_decref(root);
        hw_log_event(b->log, HW_LOG_WARN, "webhook_deferred", "reason=late_failure_not_acknowledged");
        respond_json(r, 503, "{\"error\":\"busy, retry later\"}");
        return;
    }
    char err[600];
    int rc = br_drain_spool(b->drain, batch->in, batch->received_ms, batch->n, err, sizeof err);
    size_t n = batch->n;
    free(batch);
    json_decref(root); /* after the spool: the batch borrows its strings */
    if (rc != BR_SPOOL_OK) {
        hw_log_event(b->log, rc == BR_SPOOL_FULL ? HW_LOG_WARN : HW_LOG_ERROR, "webhook_deferred",
                     "reason=%s messages=%zu error=\"%s\"",
                     rc == BR_SPOOL_FULL ? "spool_full" : "spool_error", n, err);
        respond_json(r, 503, "{\"error\":\"busy, retry later\"}");
        return;
    }
    if (n)
        hw_log_event(b->log, HW_LOG_DEBUG, "spooled", "messages=%zu", n);
    respond_json(r, 200, "{\"ok\":true}");
}

/* ------------------------------------------------------------ outbound */

/* Sends m with POST /messages, once. A permanent refusal (refusal.h:
 * 131026, 131047, 131051, 100) is BR_OUTBOX_FAILED with the error's
 * message and details as the reason; 130429 (throughput) pauses the whole
 * channel, 131056 (pair rate limit) this recipient; the wamid is the
 * upstream id. */
static int deliver(void *arg, const Helpwire__V1__OutboundMessage *m, br_delivery *d)
{
    wa_bridge *b = arg;
    char url[2048];
    br_http_url(url, sizeof url, b->cfg->api_base, "/%s/messages", b->cfg->phone_number_id);
    json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:{s:b, s:s}}", "messaging_product", "whatsapp",
                             "recipient_type", "individual", "to", m->channel_user_id, "type", "text", "text",
                             "preview_url", m->survey_url && *m->survey_url, "body", m->text);
    char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!payload) {
        snprintf(d->reason, sizeof d->reason, "out of memory");
        return BR_OUTBOX_RETRY;
    }
    br_http_request req = {.method = "POST",
                           .url = url,
                           .bearer = b->cfg->access_token,
                           .content_type = "application/json",
                           .body = payload,
                           .body_len = strlen(payload),
                           .timeout_ms = b->cfg->http_timeout_ms,
                           .stop = b->stop};
    br_http_response resp;
    int rc = br_http_do(&req, &resp);
    free(payload);
    int result = BR_OUTBOX_RETRY;
    char q[300];
    if (rc == BR_HTTP_OK && resp.status >= 200 && resp.status < 300) {
        json_t *j = json_loadb(resp.body ? resp.body : "", resp.body_len, 0, NULL);
        const char *wamid =
            json_string_value(json_object_get(json_array_get(json_object_get(j, "messages"), 0), "id"));
        hw_log_event(b->log, HW_LOG_DEBUG, "sent", "seq=%llu wamid=%s", (unsigned long long)m->seq,
                     hw_log_quote(wamid ? wamid : "", q, sizeof q));
        snprintf(d->upstream_id, sizeof d->upstream_id, "%s", wamid ? wamid : "");
        json_decref(j);
        result = BR_OUTBOX_DELIVERED;
    } else if (rc == BR_HTTP_OK) {
        json_t *j = json_loadb(resp.body ? resp.body : "", resp.body_len, 0, NULL);
        json_t *err = json_object_get(j, "error");
        const char *msg = json_string_value(json_object_get(err, "message"));
        const char *details =
            json_string_value(json_object_get(json_object_get(err, "error_data"), "details"));
        json_t *code = json_object_get(err, "code");
        long c = json_is_integer(code) ? (long)json_integer_value(code) : 0;
        hw_log_event(b->log, resp.status >= 500 || resp.status == 429 ? HW_LOG_WARN : HW_LOG_ERROR,
                     "delivery_rejected", "seq=%llu status=%ld code=%ld error=%s", (unsigned long long)m->seq,
                     resp.status, c, hw_log_quote(msg ? msg : "", q, sizeof q));
        if (json_is_integer(code))
            snprintf(d->reason, sizeof d->reason, "whatsapp %ld: %s%s%s", c, msg ? msg : "(no message)",
                     details ? ": " : "", details ? details : "");
        else
            snprintf(d->reason, sizeof d->reason, "whatsapp HTTP %ld", resp.status);
        if (json_is_integer(code) && br_refusal_whatsapp(c) == BR_REFUSAL_PERMANENT)
            result = BR_OUTBOX_FAILED;
        d->scope = c == 130429 ? BR_SCOPE_CHANNEL : BR_SCOPE_RECIPIENT;
        if (resp.retry_after_s > 0)
            d->retry_after_ms = resp.retry_after_s * 1000;
        json_decref(j);
    } else {
        hw_log_event(b->log, HW_LOG_WARN, "whatsapp_unreachable", "seq=%llu error=%s",
                     (unsigned long long)m->seq, hw_log_quote(resp.error, q, sizeof q));
        snprintf(d->reason, sizeof d->reason, "whatsapp unreachable: %s", resp.error);
    }
    br_http_response_free(&resp);
    return result;
}

/* ---------------------------------------------------------------- main */

static const br_bridge bridge = {PROG, "whatsapp", HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP, true};

static const char about[] =
    "Bridges the WhatsApp Cloud API to helpwired. Serves Meta's webhook: verification by GET, signed POSTs "
    "(X-Hub-Signature-256) answered 200 once their messages are in the bridge's durable spool, and routed to "
    "Router.Route from there, in order; a failed status callback marks its message FAILED. Messages queued "
    "for WhatsApp in helpwired's outbox are sent with POST "
    "/{phone-number-id}/messages "
    "and acknowledged once the Graph API accepted them; Route's reply_text reaches the customer through the "
    "outbox, never directly. Exits cleanly on SIGTERM or SIGINT, routing what is spooled first (the rest "
    "waits in the spool for the next start).";

int main(int argc, char **argv)
{
    wa_config cfg;
    memset(&cfg, 0, sizeof cfg);
    br_common_defaults(&cfg.common);
    cfg.listen = "127.0.0.1:8081";
    cfg.webhook_path = "/whatsapp/webhook";
    cfg.api_base = "https://graph.facebook.com/v19.0";
    br_spool_settings_defaults(&cfg.spool);
    cfg.http_timeout_ms = 15000;
    cfg.send_attempts = 5;
    const br_option opts[] = {
        BR_COMMON_OPTIONS(&cfg.common),
        {"listen", "WHATSAPP_LISTEN", BR_OPT_STRING, &cfg.listen, 0, 0, "ADDR",
         "Webhook server address, host:port (port 0 picks one). Default 127.0.0.1:8081 (terminate TLS in "
         "front)."},
        {"state-dir", "WHATSAPP_STATE_DIR", BR_OPT_REQUIRED, &cfg.state_dir, 0, 0, "DIR",
         "Directory for the dead letters (whatsapp.deadletter.jsonl: messages refused by helpwired, or not "
         "routed within --max-retry-age-ms) and the record of messages sent (whatsapp.sent.mdb, which also "
         "matches \"failed\" status callbacks to their message); created if missing. Required."},
        {"webhook-path", NULL, BR_OPT_PATH, &cfg.webhook_path, 0, 0, "PATH",
         "Path of the webhook (callback URL path). Default /whatsapp/webhook."},
        {"api-base", "WHATSAPP_API_BASE", BR_OPT_STRING, &cfg.api_base, 0, 0, "URL",
         "Graph API base URL including the version (tests point it at a local fake). Default "
         "https://graph.facebook.com/v19.0."},
        {"phone-number-id", "WHATSAPP_PHONE_NUMBER_ID", BR_OPT_REQUIRED, &cfg.phone_number_id, 0, 0, "ID",
         "The business phone number id that sends replies; webhook changes for other numbers are skipped. "
         "Required."},
        BR_SPOOL_OPTIONS(
            &cfg.spool,
            "Messages taken from webhooks but not yet routed, kept in the spool "
            "(<state-dir>/whatsapp.spool); "
            "beyond it webhooks are answered 503 and Meta delivers them again later. Default 10000.",
            "The most message data the spool holds; beyond it webhooks are answered 503. Default 67108864 "
            "(64 MiB).",
            "On SIGTERM, how long to keep routing spooled messages (and retrying while helpwired is "
            "unreachable); what is left stays in the spool for the next start. Default 10000."),
        {"http-timeout-ms", NULL, BR_OPT_INT, &cfg.http_timeout_ms, 100, 600000, "MS",
         "Timeout of each Graph API request. Default 15000."},
        {"send-attempts", NULL, BR_OPT_INT, &cfg.send_attempts, 1, 100, "N",
         "Unused, accepted for old command lines: each send is one attempt, and its retries are scheduled "
         "per recipient (the whole channel on 130429) up to --max-delivery-age-ms."},
        {NULL, "WHATSAPP_ACCESS_TOKEN", BR_OPT_REQUIRED, &cfg.access_token, 0, 0, "TOKEN",
         "Graph API access token (system user), sent as a bearer token. Required."},
        {NULL, "WHATSAPP_APP_SECRET", BR_OPT_REQUIRED, &cfg.app_secret, 0, 0, "SECRET",
         "The Meta app secret that signs webhook POSTs. Required."},
        {NULL, "WHATSAPP_VERIFY_TOKEN", BR_OPT_REQUIRED, &cfg.verify_token, 0, 0, "TOKEN",
         "The verify token configured for the webhook subscription. Required."},
    };
    const size_t n_opts = sizeof opts / sizeof opts[0];
    br_runtime rt = {0};

    int rc = br_config_main(opts, n_opts, argc, argv, PROG, about);
    if (rc >= 0)
        return rc;
    wa_bridge b;
    memset(&b, 0, sizeof b);

    if ((rc = br_runtime_start(&rt, &bridge, &cfg.common)) != 0)
        goto out;
    rc = 1;
    b.cfg = &cfg;
    b.log = rt.log;
    b.stop = rt.stop;
    if (br_runtime_inbound(&rt, cfg.state_dir) != 0 || br_runtime_spool(&rt, cfg.state_dir, &cfg.spool) != 0)
        goto out;
    b.drain = rt.drain;
    if (br_runtime_subscribe(&rt, cfg.state_dir, deliver, &b) != 0)
        goto out;
    b.ob = rt.ob;
    b.sent = rt.sent;
    if (br_runtime_listen(&rt, cfg.listen, 0, handler, &b) != 0)
        goto out;
    br_runtime_serve(&rt, cfg.listen);
    rc = 0;
out:
    br_runtime_finish(&rt, rc); /* the drainer routes on for up to --drain-timeout-ms */
    return rc;
}
