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
 * delivered, read) are logged and ignored.
 *
 * Message types: text; image, video, document (with its filename), audio
 * (a voice note when "voice" is true), sticker: the caption routes as the
 * text ("" without one) and the file as an attachment; location: a
 * LOCATION attachment (latitude, longitude, name, address); interactive
 * replies (button_reply, list_reply) and the legacy quick-reply "button":
 * the title routes as the text, the reply's id or payload is logged. No
 * media message is skipped. Other types (reactions, contacts, unsupported)
 * are logged and skipped. The webhook spools a media message with its
 * media id; the drainer, before routing it (drain.h's prepare step), asks
 * GET /<media-id> for its URL, size and SHA-256, downloads the URL with
 * the bearer token (--max-media-bytes at most, checked against the size
 * given before the download and against the bytes received), checks the
 * SHA-256, and uploads the bytes to helpwired (attachments.h). Fetches
 * that may work later (a 5xx, 429, the network, an access token refused,
 * helpwired unreachable) are retried with the drain's backoff up to
 * --max-retry-age-ms; a file over the limit, expired (404, or the media
 * id unknown), damaged (a SHA-256 mismatch), or still failing at that age
 * is not attached: the message routes with a short notice naming the file
 * after its caption, in the customer's language (Chinese for numbers of
 * China, Hong Kong, Macau and Taiwan, else English), so a customer's
 * message is never dropped.
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
 * outbox's workers; a message is sent as POST /{phone-number-id}/messages
 * calls (bearer WHATSAPP_ACCESS_TOKEN): its text (type text), or the
 * approved template when the message names one (outside the 24-hour
 * window: type template, the text, cut to 1024 characters, as the body's
 * one parameter), then each attachment in order: downloaded from
 * helpwired (attachments.h), uploaded with POST /{phone-number-id}/media
 * (multipart: messaging_product, type, file) and sent as type image,
 * video, audio, sticker or document (with its filename) naming the media
 * id; a LOCATION as type location. Each call the Graph API accepted is
 * recorded at once in the sent record as a step of the message (sent.h),
 * so a message streamed again after a crash sends only what is left; the
 * message is recorded with its first wamid and acknowledged once all are
 * sent. Errors: 130429 pauses the whole channel, 131056 that recipient,
 * 401 / 190 (the token) is retried with an error line; 131047 (the
 * customer's last message is over 24 hours old, WhatsApp's clock
 * disagreeing with helpwired's) fails the message with a reason saying
 * the window is closed and a template is needed; 131053 (media upload
 * error) fails that file, the others still go, and the message ends
 * FAILED naming it; 131026, 131051 and 100 are permanent. Route's
 * reply_text is not sent directly (it is in the outbox too).
 *
 * Signals: READ (Tickets.SendChannelSignal) marks the customer's message
 * read with POST /messages {"status":"read","message_id":<wamid>}, once,
 * best effort, on a thread of its own (never acknowledged or retried; a
 * full queue of 64 drops the newest). TYPING has no WhatsApp equivalent
 * and is ignored.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <grpc/grpc.h>
#include <grpc/status.h>
#include <jansson.h>
#include <openssl/rand.h>

#include "clients/lib/attachments.h"
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
    int max_media_bytes;
} wa_config;

/* Read receipts waiting for the signal thread: wamids, a bounded ring. */
#define WA_SIGNAL_QUEUE 64
typedef struct wa_signals {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool started, stopping;
    char wamid[WA_SIGNAL_QUEUE][256];
    size_t head, n;
} wa_signals;

typedef struct wa_bridge {
    const wa_config *cfg;
    const hw_log *log;
    br_stop *stop;
    br_drain *drain; /* the runtime's: spools the messages taken from webhooks */
    br_outbox *ob;   /* set before the server listens: late failures are acknowledged on it */
    br_sent *sent;   /* the sent record: wamid -> message */
    hw_client *rpc;  /* the runtime's: attachments to and from helpwired */
    wa_signals sig;  /* read receipts */
} wa_bridge;

/* The text messages of one webhook body, to spool together. */
#define WA_MAX_BATCH 256
typedef struct wa_batch {
    br_inbound in[WA_MAX_BATCH];
    int64_t received_ms[WA_MAX_BATCH];
    char *media[WA_MAX_BATCH]; /* owned: the media descriptions of in[] */
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

/* The WhatsApp message types that carry a file, and the kind each is. */
static const struct {
    const char *type;
    Helpwire__V1__AttachmentKind kind;
} media_types[] = {
    {"image", HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_IMAGE},
    {"video", HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_VIDEO},
    {"document", HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_DOCUMENT},
    {"audio", HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_AUDIO},
    {"sticker", HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_STICKER},
};

static const char *str_or(json_t *o, const char *key, const char *dflt)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : dflt;
}

/* What m carries beyond text: *text (borrowed from m) and *media (a
 * malloc'd description for the prepare step, or NULL). Returns false for
 * a type the bridge does not take (logged by the caller). */
static bool extract_content(wa_bridge *b, json_t *m, const char *type, const char **text, char **media)
{
    char q[300];
    *text = NULL;
    *media = NULL;
    if (strcmp(type, "text") == 0) {
        *text = json_string_value(json_object_get(json_object_get(m, "text"), "body"));
        return *text != NULL;
    }
    if (strcmp(type, "interactive") == 0) {
        /* A tap on a reply button or a list row: its title is what the
         * customer saw themselves say. */
        json_t *it = json_object_get(m, "interactive");
        const char *itype = str_or(it, "type", "");
        json_t *r = json_object_get(it, itype);
        *text = json_string_value(json_object_get(r, "title"));
        if (*text)
            hw_log_event(b->log, HW_LOG_INFO, "interactive_reply", "message_id=%s type=%s reply_id=%s",
                         hw_log_quote(str_or(m, "id", ""), q, sizeof q), itype[0] ? itype : "none",
                         str_or(r, "id", ""));
        return *text != NULL;
    }
    if (strcmp(type, "button") == 0) {
        /* The legacy quick-reply button of a template. */
        json_t *btn = json_object_get(m, "button");
        *text = json_string_value(json_object_get(btn, "text"));
        if (*text)
            hw_log_event(b->log, HW_LOG_INFO, "interactive_reply", "message_id=%s type=button payload=%s",
                         hw_log_quote(str_or(m, "id", ""), q, sizeof q), str_or(btn, "payload", ""));
        return *text != NULL;
    }
    json_t *d = NULL;
    if (strcmp(type, "location") == 0) {
        json_t *loc = json_object_get(m, "location");
        json_t *lat = json_object_get(loc, "latitude"), *lon = json_object_get(loc, "longitude");
        if (!json_is_number(lat) || !json_is_number(lon))
            return false;
        d = json_pack("{s:i, s:f, s:f, s:s, s:s}", "kind", (int)HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_LOCATION,
                      "latitude", json_number_value(lat), "longitude", json_number_value(lon), "name",
                      str_or(loc, "name", ""), "address", str_or(loc, "address", ""));
        *text = "";
    } else {
        for (size_t i = 0; i < sizeof media_types / sizeof *media_types; i++) {
            if (strcmp(type, media_types[i].type) != 0)
                continue;
            json_t *o = json_object_get(m, type);
            const char *id = json_string_value(json_object_get(o, "id"));
            if (!id || !*id)
                return false;
            Helpwire__V1__AttachmentKind kind = media_types[i].kind;
            if (kind == HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_AUDIO &&
                json_is_true(json_object_get(o, "voice")))
                kind = HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_VOICE;
            d = json_pack("{s:i, s:s, s:s, s:s, s:s}", "kind", (int)kind, "media_id", id, "mime_type",
                          str_or(o, "mime_type", ""), "sha256", str_or(o, "sha256", ""), "name",
                          str_or(o, "filename", ""));
            *text = str_or(o, "caption", "");
            break;
        }
    }
    if (!d)
        return false;
    *media = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    return *media != NULL;
}

/* Adds one message to the batch: text, media, a location or an
 * interactive reply; any other type is logged and skipped. Its strings
 * are borrowed from the webhook's JSON, except the media description
 * (batch->media, freed after the spool). */
static void collect_message(wa_bridge *b, json_t *m, json_t *contacts, wa_batch *batch)
{
    const char *id = json_string_value(json_object_get(m, "id"));
    const char *from = json_string_value(json_object_get(m, "from"));
    const char *type = json_string_value(json_object_get(m, "type"));
    const char *text = NULL;
    char *media = NULL;
    char q[300];
    if (!id || !*id || !from || !*from) {
        hw_log_event(b->log, HW_LOG_WARN, "message_skipped", "reason=no_id_or_sender");
        return;
    }
    if (!type || !extract_content(b, m, type, &text, &media) || !text) {
        hw_log_event(b->log, HW_LOG_INFO, "message_skipped", "message_id=%s type=%s",
                     hw_log_quote(id, q, sizeof q), type ? type : "none");
        free(media);
        return;
    }
    if (batch->n == WA_MAX_BATCH) {
        batch->dropped++;
        free(media);
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
    batch->in[batch->n] =
        (br_inbound){HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP, from, name, text, id, NULL, media, NULL, 0, NULL};
    batch->media[batch->n] = media;
    /* A timestamp that is no Unix time in milliseconds (negative, or too big
     * to multiply) counts as none: the message is aged from now. */
    long long secs = ts ? strtoll(ts, NULL, 10) : 0;
    batch->received_ms[batch->n] = secs > 0 && secs <= INT64_MAX / 1000 ? (int64_t)secs * 1000 : 0;
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

static void batch_free(wa_batch *batch)
{
    for (size_t i = 0; i < batch->n; i++)
        free(batch->media[i]);
    free(batch);
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
        batch_free(batch);
        json_decref(root);
        hw_log_event(b->log, HW_LOG_WARN, "webhook_deferred", "reason=late_failure_not_acknowledged");
        respond_json(r, 503, "{\"error\":\"busy, retry later\"}");
        return;
    }
    char err[600];
    int rc = br_drain_spool(b->drain, batch->in, batch->received_ms, batch->n, err, sizeof err);
    size_t n = batch->n;
    batch_free(batch);
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

/* ------------------------------------------------------------ media in */

/* What the prepare step made of one message (br_prepared.owner). */
typedef struct wa_prepared {
    Helpwire__V1__Attachment att;
    Helpwire__V1__Location loc;
    Helpwire__V1__Attachment *list[1];
    char id[48], mime[129], name[257];
    char *text; /* malloc'd: the caption and the notice */
} wa_prepared;

/* How fetching a file from WhatsApp ended. */
typedef enum {
    FETCH_OK = 0,
    FETCH_RETRY,   /* may work later: a 5xx, 429, the network, the token */
    FETCH_TOO_BIG, /* over --max-media-bytes */
    FETCH_EXPIRED, /* the media id or its URL is gone (404) */
    FETCH_DAMAGED, /* the bytes' SHA-256 is not the one WhatsApp gave */
    FETCH_FAILED,  /* refused otherwise, for good */
} wa_fetch;

/* Numbers of China, Hong Kong, Macau and Taiwan get their notices in
 * Chinese; WhatsApp tells nothing else of the customer's language. */
static bool chinese_number(const char *wa_id)
{
    static const char *const prefixes[] = {"86", "852", "853", "886"};
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
        if (strncmp(wa_id, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return false;
}

static const char *kind_word(Helpwire__V1__AttachmentKind k, bool zh)
{
    switch (k) {
    case HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_IMAGE:
        return zh ? "图片" : "photo";
    case HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_VIDEO:
        return zh ? "视频" : "video";
    case HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_AUDIO:
        return zh ? "音频" : "audio file";
    case HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_VOICE:
        return zh ? "语音消息" : "voice message";
    case HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_STICKER:
        return zh ? "贴纸" : "sticker";
    default:
        return zh ? "文件" : "file";
    }
}

/* The notice routed in place of a file that was not attached. */
static void notice_text(char *out, size_t n, wa_fetch why, bool zh, const char *label, int max_bytes)
{
    char limit[32];
    if (max_bytes % (1 << 20) == 0)
        snprintf(limit, sizeof limit, "%d MiB", max_bytes >> 20);
    else
        snprintf(limit, sizeof limit, "%d bytes", max_bytes);
    switch (why) {
    case FETCH_TOO_BIG:
        snprintf(out, n, zh ? "[未收到文件：“%s”超过 %s 的大小限制。]" : "[File not received: \"%s\" is larger than %s, the limit here.]",
                 label, limit);
        break;
    case FETCH_EXPIRED:
        snprintf(out, n, zh ? "[未收到文件：“%s”在 WhatsApp 上已过期，请重新发送。]"
                            : "[File not received: \"%s\" has expired on WhatsApp; please send it again.]",
                 label);
        break;
    case FETCH_DAMAGED:
        snprintf(out, n, zh ? "[未收到文件：“%s”传输中损坏（校验和不符），请重新发送。]"
                            : "[File not received: \"%s\" arrived damaged (checksum mismatch); please send it again.]",
                 label);
        break;
    default:
        snprintf(out, n, zh ? "[未收到文件：“%s”无法获取，请重新发送。]"
                            : "[File not received: \"%s\" could not be fetched; please send it again.]",
                 label);
    }
}

/* What a Graph API answer to a media request means. */
static wa_fetch classify(wa_bridge *b, int rc, const br_http_response *resp, const char *what, char *err,
                         size_t errlen)
{
    if (rc != BR_HTTP_OK) {
        if (strcmp(resp->error, "response too large") == 0)
            return FETCH_TOO_BIG;
        snprintf(err, errlen, "%s: whatsapp unreachable: %s", what, resp->error);
        return FETCH_RETRY;
    }
    json_t *j = json_loadb(resp->body ? resp->body : "", resp->body_len, 0, NULL);
    json_t *code = json_object_get(json_object_get(j, "error"), "code");
    long c = json_is_integer(code) ? (long)json_integer_value(code) : 0;
    const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    snprintf(err, errlen, "%s: whatsapp HTTP %ld%s%s", what, resp->status, msg ? ": " : "", msg ? msg : "");
    json_decref(j);
    if (resp->status == 401 || c == 190) {
        hw_log_event(b->log, HW_LOG_ERROR, "token_rejected", "what=%s status=%ld code=%ld", what, resp->status, c);
        return FETCH_RETRY;
    }
    if (resp->status == 429 || resp->status >= 500 || resp->status == 408)
        return FETCH_RETRY;
    if (resp->status == 404 || resp->status == 410 || (resp->status == 400 && c == 100))
        return FETCH_EXPIRED;
    return FETCH_FAILED;
}

/* Fetches media_id's bytes: GET /<media-id> for its URL, size and SHA-256,
 * then the URL, both with the bearer token. *data is malloc'd. */
static wa_fetch fetch_media(wa_bridge *b, const char *media_id, uint8_t **data, size_t *len, char *mime,
                            size_t mime_len, char *err, size_t errlen)
{
    char url[2048];
    br_http_url(url, sizeof url, b->cfg->api_base, "/%s", media_id);
    br_http_request req = {.method = "GET",
                           .url = url,
                           .bearer = b->cfg->access_token,
                           .timeout_ms = b->cfg->http_timeout_ms,
                           .stop = b->stop};
    br_http_response resp;
    int rc = br_http_do(&req, &resp);
    wa_fetch f = FETCH_OK;
    json_t *meta = NULL;
    if (rc != BR_HTTP_OK || resp.status != 200) {
        f = classify(b, rc, &resp, "media info", err, errlen);
        goto out;
    }
    meta = json_loadb(resp.body ? resp.body : "", resp.body_len, 0, NULL);
    const char *dl = json_string_value(json_object_get(meta, "url"));
    const char *sha = json_string_value(json_object_get(meta, "sha256"));
    json_t *size = json_object_get(meta, "file_size");
    snprintf(mime, mime_len, "%s", str_or(meta, "mime_type", ""));
    if (!dl || !*dl) {
        snprintf(err, errlen, "media info: no url in WhatsApp's answer");
        f = FETCH_FAILED;
        goto out;
    }
    if (json_is_integer(size) && json_integer_value(size) > b->cfg->max_media_bytes) {
        snprintf(err, errlen, "media of %lld bytes over --max-media-bytes %d", (long long)json_integer_value(size),
                 b->cfg->max_media_bytes);
        f = FETCH_TOO_BIG;
        goto out;
    }
    br_http_response_free(&resp);
    req.url = dl;
    req.max_response_bytes = (size_t)b->cfg->max_media_bytes;
    req.timeout_ms = b->cfg->http_timeout_ms * 4; /* a file, not a call */
    rc = br_http_do(&req, &resp);
    if (rc != BR_HTTP_OK || resp.status != 200) {
        f = classify(b, rc, &resp, "media download", err, errlen);
        if (f == FETCH_TOO_BIG)
            snprintf(err, errlen, "media over --max-media-bytes %d", b->cfg->max_media_bytes);
        goto out;
    }
    char hex[65];
    if (sha && *sha && (hw_att_sha256_hex(resp.body, resp.body_len, hex) != 0 || strcasecmp(hex, sha) != 0)) {
        snprintf(err, errlen, "media of %zu bytes: SHA-256 %s, WhatsApp gave %.64s", resp.body_len, hex, sha);
        f = FETCH_DAMAGED;
        goto out;
    }
    if (resp.body_len == 0) {
        snprintf(err, errlen, "media download: an empty file");
        f = FETCH_FAILED;
        goto out;
    }
    *data = (uint8_t *)resp.body;
    *len = resp.body_len;
    resp.body = NULL;
out:
    json_decref(meta);
    br_http_response_free(&resp);
    return f;
}

static void wa_prepare_done(void *arg, br_prepared *p)
{
    (void)arg;
    wa_prepared *w = p->owner;
    if (w) {
        free(w->text);
        free(w);
    }
    memset(p, 0, sizeof *p);
}

/* The drainer's prepare step (drain.h): the message's file fetched and
 * uploaded to helpwired, or its place, as the attachment to route; a
 * notice after the caption when the file cannot be had. */
static int wa_prepare(void *arg, const br_inbound *in, bool last_try, br_prepared *out, char *err, size_t errlen)
{
    wa_bridge *b = arg;
    char q[160], q2[300];
    json_t *d = json_loads(in->media, 0, NULL);
    wa_prepared *p = calloc(1, sizeof *p);
    int result = BR_PREPARE_OK;
    uint8_t *data = NULL;
    size_t len = 0;
    if (!p) {
        snprintf(err, errlen, "out of memory");
        result = last_try ? BR_PREPARE_OK : BR_PREPARE_RETRY;
        goto out;
    }
    out->owner = p;
    helpwire__v1__attachment__init(&p->att);
    helpwire__v1__location__init(&p->loc);
    p->list[0] = &p->att;
    Helpwire__V1__AttachmentKind kind = (Helpwire__V1__AttachmentKind)json_integer_value(json_object_get(d, "kind"));
    snprintf(p->name, sizeof p->name, "%s", str_or(d, "name", ""));
    p->att.kind = kind;
    p->att.name = p->name;
    p->att.mime_type = p->mime;
    p->att.id = p->id;
    if (kind == HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_LOCATION) {
        p->loc.latitude = json_number_value(json_object_get(d, "latitude"));
        p->loc.longitude = json_number_value(json_object_get(d, "longitude"));
        p->loc.name = (char *)str_or(d, "name", "");
        p->loc.address = (char *)str_or(d, "address", "");
        /* d is freed below: copy the strings into the prepared record. */
        snprintf(p->name, sizeof p->name, "%s", p->loc.name);
        p->loc.name = p->name;
        p->text = strdup(p->loc.address);
        p->loc.address = p->text ? p->text : (char *)"";
        p->att.name = (char *)"";
        p->att.location = &p->loc;
        out->attachments = p->list;
        out->n_attachments = 1;
        goto out;
    }
    wa_fetch f = FETCH_FAILED;
    const char *media_id = json_string_value(json_object_get(d, "media_id"));
    char fetched_mime[129] = "";
    if (media_id && kind != HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_UNSPECIFIED)
        f = fetch_media(b, media_id, &data, &len, fetched_mime, sizeof fetched_mime, err, errlen);
    else
        snprintf(err, errlen, "the spooled media description does not parse");
    const char *mime = str_or(d, "mime_type", "");
    snprintf(p->mime, sizeof p->mime, "%s", *mime ? mime : *fetched_mime ? fetched_mime : "application/octet-stream");
    char *semi = strchr(p->mime, ';'); /* "audio/ogg; codecs=opus": the type alone */
    if (semi)
        *semi = '\0';
    if (f == FETCH_OK) {
        hw_att_ref ref;
        hw_client_status st = {0};
        if (hw_att_upload(b->rpc, data, len, kind, p->mime, p->name, &ref, &st) == 0) {
            snprintf(p->id, sizeof p->id, "%s", ref.id);
            out->attachments = p->list;
            out->n_attachments = 1;
            hw_log_event(b->log, HW_LOG_INFO, "media_stored", "message_id=%s kind=%d bytes=%zu attachment=%s",
                         hw_log_quote(in->message_id, q, sizeof q), (int)kind, len, ref.id);
            goto out;
        }
        snprintf(err, errlen, "helpwired: %s: %s", hw_client_status_name(st.code), st.message);
        bool too_big = st.code == GRPC_STATUS_RESOURCE_EXHAUSTED && strcmp(st.reason, "RATE_LIMITED") != 0;
        f = too_big ? FETCH_TOO_BIG : hw_client_status_retryable(st.code) ? FETCH_RETRY : FETCH_FAILED;
    }
    if (f == FETCH_RETRY && !last_try) {
        result = BR_PREPARE_RETRY;
        goto out;
    }
    /* Routed without the file, with a notice naming it. */
    bool zh = chinese_number(in->channel_user_id);
    char label[300], notice[700];
    snprintf(label, sizeof label, "%s", p->name[0] ? p->name : kind_word(kind, zh));
    notice_text(notice, sizeof notice, f, zh, label, b->cfg->max_media_bytes);
    size_t tl = strlen(in->text);
    p->text = malloc(tl + 1 + strlen(notice) + 1);
    if (p->text) {
        sprintf(p->text, "%s%s%s", in->text, tl ? "\n" : "", notice);
        out->text = p->text;
    }
    hw_log_event(b->log, HW_LOG_WARN, "media_not_attached", "message_id=%s kind=%d reason=%s error=%s",
                 hw_log_quote(in->message_id, q, sizeof q), (int)kind,
                 f == FETCH_TOO_BIG   ? "too_big"
                 : f == FETCH_EXPIRED ? "expired"
                 : f == FETCH_DAMAGED ? "checksum_mismatch"
                 : f == FETCH_RETRY   ? "gave_up"
                                      : "refused",
                 hw_log_quote(err, q2, sizeof q2));
out:
    free(data);
    json_decref(d);
    return result;
}

/* ------------------------------------------------------------ outbound */

/* The reason a 131047 is given to the agent (the ticket's DELIVERY_FAILED). */
#define WA_WINDOW_REASON                                                                                      \
    "whatsapp 131047: the 24-hour window is closed (the customer's last message is more than 24 hours "   \
    "old): only an approved template can reach them now; configure helpwired's --whatsapp-template"

/* POSTs body (a JSON object, stolen) to path under the phone number id
 * once and maps the answer: BR_OUTBOX_DELIVERED with the response's
 * messages[0].id or id in *id; a permanent refusal (refusal.h, and 131053
 * for media) BR_OUTBOX_FAILED with the reason in d; else BR_OUTBOX_RETRY
 * with d's reason, scope and retry_after. */
static int graph_post(wa_bridge *b, const Helpwire__V1__OutboundMessage *m, const char *path, const char *ctype,
                      const char *payload, size_t payload_len, char *id, size_t idlen, br_delivery *d)
{
    char url[2048];
    br_http_url(url, sizeof url, b->cfg->api_base, "/%s/%s", b->cfg->phone_number_id, path);
    br_http_request req = {.method = "POST",
                           .url = url,
                           .bearer = b->cfg->access_token,
                           .content_type = ctype,
                           .body = payload,
                           .body_len = payload_len,
                           .timeout_ms = b->cfg->http_timeout_ms,
                           .stop = b->stop};
    br_http_response resp;
    int rc = br_http_do(&req, &resp);
    int result = BR_OUTBOX_RETRY;
    char q[300];
    if (rc == BR_HTTP_OK && resp.status >= 200 && resp.status < 300) {
        json_t *j = json_loadb(resp.body ? resp.body : "", resp.body_len, 0, NULL);
        const char *got = json_string_value(json_object_get(json_array_get(json_object_get(j, "messages"), 0), "id"));
        if (!got)
            got = json_string_value(json_object_get(j, "id"));
        snprintf(id, idlen, "%s", got ? got : "");
        json_decref(j);
        result = BR_OUTBOX_DELIVERED;
    } else if (rc == BR_HTTP_OK) {
        json_t *j = json_loadb(resp.body ? resp.body : "", resp.body_len, 0, NULL);
        json_t *err = json_object_get(j, "error");
        const char *msg = json_string_value(json_object_get(err, "message"));
        const char *details = json_string_value(json_object_get(json_object_get(err, "error_data"), "details"));
        json_t *code = json_object_get(err, "code");
        long c = json_is_integer(code) ? (long)json_integer_value(code) : 0;
        bool token = resp.status == 401 || c == 190;
        hw_log_event(b->log, token || !(resp.status >= 500 || resp.status == 429) ? HW_LOG_ERROR : HW_LOG_WARN,
                     token ? "token_rejected" : "delivery_rejected", "seq=%llu call=%s status=%ld code=%ld error=%s",
                     (unsigned long long)m->seq, path, resp.status, c, hw_log_quote(msg ? msg : "", q, sizeof q));
        if (c == 131047)
            snprintf(d->reason, sizeof d->reason, "%s", WA_WINDOW_REASON);
        else if (json_is_integer(code))
            snprintf(d->reason, sizeof d->reason, "whatsapp %ld: %s%s%s", c, msg ? msg : "(no message)",
                     details ? ": " : "", details ? details : "");
        else
            snprintf(d->reason, sizeof d->reason, "whatsapp HTTP %ld", resp.status);
        if (json_is_integer(code) && (br_refusal_whatsapp(c) == BR_REFUSAL_PERMANENT || c == 131053))
            result = BR_OUTBOX_FAILED;
        d->scope = c == 130429 ? BR_SCOPE_CHANNEL : BR_SCOPE_RECIPIENT;
        if (resp.retry_after_s > 0)
            d->retry_after_ms = resp.retry_after_s * 1000;
        json_decref(j);
    } else {
        hw_log_event(b->log, HW_LOG_WARN, "whatsapp_unreachable", "seq=%llu call=%s error=%s",
                     (unsigned long long)m->seq, path, hw_log_quote(resp.error, q, sizeof q));
        snprintf(d->reason, sizeof d->reason, "whatsapp unreachable: %s", resp.error);
    }
    br_http_response_free(&resp);
    return result;
}

/* Sends one message object (stolen) with POST /messages. */
static int send_message(wa_bridge *b, const Helpwire__V1__OutboundMessage *m, json_t *body, char *wamid,
                        size_t wamid_len, br_delivery *d)
{
    char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!payload) {
        snprintf(d->reason, sizeof d->reason, "out of memory");
        return BR_OUTBOX_RETRY;
    }
    int r = graph_post(b, m, "messages", "application/json", payload, strlen(payload), wamid, wamid_len, d);
    free(payload);
    return r;
}

/* The first max code points of the UTF-8 text s, malloc'd. */
static char *cut_code_points(const char *s, size_t max)
{
    size_t i = 0, cps = 0;
    while (s[i] && cps < max) {
        i++;
        while (((unsigned char)s[i] & 0xC0) == 0x80)
            i++;
        cps++;
    }
    return strndup(s, i);
}

/* The text step: a free-form text, or the template outside the window. */
static json_t *text_body(const Helpwire__V1__OutboundMessage *m)
{
    if (m->template_name && *m->template_name) {
        /* A body parameter takes at most 1024 characters. */
        char *param = cut_code_points(m->text && *m->text ? m->text : "-", 1024);
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:{s:s}, s:[{s:s, s:[{s:s, s:s}]}]}}",
                              "messaging_product", "whatsapp", "recipient_type", "individual", "to", m->channel_user_id,
                              "type", "template", "template", "name", m->template_name, "language", "code",
                              m->template_language && *m->template_language ? m->template_language : "en", "components",
                              "type", "body", "parameters", "type", "text", "text", param ? param : "-");
        free(param);
        return j;
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:{s:b, s:s}}", "messaging_product", "whatsapp", "recipient_type",
                     "individual", "to", m->channel_user_id, "type", "text", "text", "preview_url",
                     m->survey_url && *m->survey_url, "body", m->text);
}

/* The message type a file of kind is sent as. */
static const char *send_type(Helpwire__V1__AttachmentKind k)
{
    switch (k) {
    case HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_IMAGE:
        return "image";
    case HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_VIDEO:
        return "video";
    case HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_AUDIO:
    case HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_VOICE:
        return "audio";
    case HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_STICKER:
        return "sticker";
    default:
        return "document";
    }
}

/* Uploads f with POST /media (multipart: messaging_product, type, file);
 * the media id in mid. */
static int upload_media(wa_bridge *b, const Helpwire__V1__OutboundMessage *m, const hw_att_file *f,
                        const char *name, char *mid, size_t mid_len, br_delivery *d)
{
    unsigned char rnd[12];
    char boundary[64], fname[257], ctype[128];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        memset(rnd, 0x5a, sizeof rnd);
    int n = snprintf(boundary, sizeof boundary, "helpwire-");
    for (size_t i = 0; i < sizeof rnd; i++)
        n += snprintf(boundary + n, sizeof boundary - (size_t)n, "%02x", rnd[i]);
    snprintf(fname, sizeof fname, "%s", name && *name ? name : "file");
    for (char *c = fname; *c; c++)
        if (*c == '"' || (unsigned char)*c < 0x20)
            *c = '_';
    const char *mime = f->mime_type[0] ? f->mime_type : "application/octet-stream";
    char head[1400], tail[80];
    int hl = snprintf(head, sizeof head,
                      "--%s\r\nContent-Disposition: form-data; name=\"messaging_product\"\r\n\r\nwhatsapp\r\n"
                      "--%s\r\nContent-Disposition: form-data; name=\"type\"\r\n\r\n%s\r\n"
                      "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
                      "Content-Type: %s\r\n\r\n",
                      boundary, boundary, mime, boundary, fname, mime);
    int tl = snprintf(tail, sizeof tail, "\r\n--%s--\r\n", boundary);
    size_t total = (size_t)hl + f->size + (size_t)tl;
    char *body = malloc(total);
    if (!body) {
        snprintf(d->reason, sizeof d->reason, "out of memory");
        return BR_OUTBOX_RETRY;
    }
    memcpy(body, head, (size_t)hl);
    memcpy(body + hl, f->data, f->size);
    memcpy(body + hl + f->size, tail, (size_t)tl);
    snprintf(ctype, sizeof ctype, "multipart/form-data; boundary=%s", boundary);
    int r = graph_post(b, m, "media", ctype, body, total, mid, mid_len, d);
    free(body);
    if (r == BR_OUTBOX_DELIVERED && !*mid) {
        snprintf(d->reason, sizeof d->reason, "whatsapp media upload: no id in the answer");
        return BR_OUTBOX_RETRY;
    }
    return r;
}

/* One attachment of m: its message (after the upload, for a file). */
static int send_attachment(wa_bridge *b, const Helpwire__V1__OutboundMessage *m, const Helpwire__V1__Attachment *a,
                           char *wamid, size_t wamid_len, br_delivery *d)
{
    char q[160];
    if (a->kind == HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_LOCATION) {
        const Helpwire__V1__Location *l = a->location;
        if (!l) {
            snprintf(d->reason, sizeof d->reason, "a location attachment without its place");
            return BR_OUTBOX_FAILED;
        }
        json_t *loc = json_pack("{s:f, s:f}", "latitude", l->latitude, "longitude", l->longitude);
        if (loc && l->name && *l->name)
            json_object_set_new(loc, "name", json_string(l->name));
        if (loc && l->address && *l->address)
            json_object_set_new(loc, "address", json_string(l->address));
        json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:o}", "messaging_product", "whatsapp", "recipient_type",
                                 "individual", "to", m->channel_user_id, "type", "location", "location", loc);
        return send_message(b, m, body, wamid, wamid_len, d);
    }
    hw_att_file f;
    hw_client_status st = {0};
    if (hw_att_download(b->rpc, a->id, (size_t)b->cfg->max_media_bytes, &f, &st) != 0) {
        snprintf(d->reason, sizeof d->reason, "attachment %.48s from helpwired: %s: %.300s", a->id,
                 hw_client_status_name(st.code), st.message);
        hw_log_event(b->log, HW_LOG_WARN, "attachment_unavailable", "seq=%llu attachment=%s code=%s",
                     (unsigned long long)m->seq, hw_log_quote(a->id, q, sizeof q), hw_client_status_name(st.code));
        bool retry = hw_client_status_retryable(st.code) && st.code != GRPC_STATUS_RESOURCE_EXHAUSTED;
        return retry ? BR_OUTBOX_RETRY : BR_OUTBOX_FAILED;
    }
    const char *name = a->name && *a->name ? a->name : f.name;
    char mid[256] = "";
    int r = upload_media(b, m, &f, name, mid, sizeof mid, d);
    hw_att_file_free(&f);
    if (r != BR_OUTBOX_DELIVERED) {
        size_t rl = strlen(d->reason);
        snprintf(d->reason + rl, sizeof d->reason - rl, " (file %s)", name && *name ? name : a->id);
        return r;
    }
    const char *type = send_type(a->kind);
    json_t *media = json_pack("{s:s}", "id", mid);
    if (media && strcmp(type, "document") == 0 && name && *name)
        json_object_set_new(media, "filename", json_string(name));
    json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:o}", "messaging_product", "whatsapp", "recipient_type",
                             "individual", "to", m->channel_user_id, "type", type, type, media);
    return send_message(b, m, body, wamid, wamid_len, d);
}

/* Sends m: its text (or template), then each attachment, each step once
 * (the sent record's steps); see the top comment. */
static int deliver(void *arg, const Helpwire__V1__OutboundMessage *m, br_delivery *d)
{
    wa_bridge *b = arg;
    char wamid[256], err[300], first_fail[sizeof d->reason] = "";
    bool has_text = (m->text && *m->text) || (m->template_name && *m->template_name);
    for (size_t step = has_text ? 0 : 1; step <= m->n_attachments; step++) {
        wamid[0] = '\0';
        if (b->sent && br_sent_get_step(b->sent, m->seq, (uint32_t)step, wamid, sizeof wamid) == 1) {
            if (!d->upstream_id[0])
                snprintf(d->upstream_id, sizeof d->upstream_id, "%.127s", wamid);
            continue; /* sent before a crash or a retry */
        }
        int r = step == 0 ? send_message(b, m, text_body(m), wamid, sizeof wamid, d)
                          : send_attachment(b, m, m->attachments[step - 1], wamid, sizeof wamid, d);
        if (r == BR_OUTBOX_RETRY)
            return r;
        if (r == BR_OUTBOX_FAILED) {
            if (strncmp(d->reason, "whatsapp 131047", 15) == 0 || step == 0)
                return r; /* nothing more can reach them */
            if (!first_fail[0])
                snprintf(first_fail, sizeof first_fail, "%s", d->reason);
        } else if (!d->upstream_id[0]) {
            snprintf(d->upstream_id, sizeof d->upstream_id, "%.127s", wamid);
        }
        d->reason[0] = '\0';
        if (b->sent && br_sent_put_step(b->sent, m->seq, (uint32_t)step, r == BR_OUTBOX_DELIVERED ? wamid : "", err,
                                        sizeof err) != 0)
            hw_log_event(b->log, HW_LOG_ERROR, "sent_step_failed", "seq=%llu step=%zu error=\"%s\"",
                         (unsigned long long)m->seq, step, err);
        hw_log_event(b->log, HW_LOG_DEBUG, "sent", "seq=%llu step=%zu wamid=%s", (unsigned long long)m->seq, step,
                     wamid);
    }
    if (first_fail[0]) {
        snprintf(d->reason, sizeof d->reason, "%s", first_fail);
        return BR_OUTBOX_FAILED;
    }
    return BR_OUTBOX_DELIVERED;
}

/* ------------------------------------------------------------- signals */

/* The outbox's signal callback (stream thread): a READ is queued for the
 * signal thread; TYPING has no WhatsApp equivalent. */
static void on_signal(void *arg, const Helpwire__V1__OutboundMessage *m)
{
    wa_bridge *b = arg;
    char q[300];
    if (m->kind != HELPWIRE__V1__OUTBOUND_KIND__OUTBOUND_KIND_READ || !m->channel_message_id ||
        !*m->channel_message_id || strlen(m->channel_message_id) >= sizeof b->sig.wamid[0]) {
        hw_log_event(b->log, HW_LOG_DEBUG, "signal_ignored", "kind=%d", (int)m->kind);
        return;
    }
    pthread_mutex_lock(&b->sig.mu);
    bool queued = !b->sig.stopping && b->sig.n < WA_SIGNAL_QUEUE;
    if (queued) {
        snprintf(b->sig.wamid[(b->sig.head + b->sig.n) % WA_SIGNAL_QUEUE], sizeof b->sig.wamid[0], "%s",
                 m->channel_message_id);
        b->sig.n++;
        pthread_cond_signal(&b->sig.cv);
    }
    pthread_mutex_unlock(&b->sig.mu);
    if (!queued)
        hw_log_event(b->log, HW_LOG_WARN, "read_receipt_dropped", "wamid=%s",
                     hw_log_quote(m->channel_message_id, q, sizeof q));
}

/* The signal thread: each queued read receipt, once. */
static void *signal_main(void *arg)
{
    wa_bridge *b = arg;
    char wamid[256], q[300];
    for (;;) {
        pthread_mutex_lock(&b->sig.mu);
        while (!b->sig.stopping && b->sig.n == 0)
            pthread_cond_wait(&b->sig.cv, &b->sig.mu);
        if (b->sig.stopping) {
            pthread_mutex_unlock(&b->sig.mu);
            return NULL;
        }
        snprintf(wamid, sizeof wamid, "%s", b->sig.wamid[b->sig.head]);
        b->sig.head = (b->sig.head + 1) % WA_SIGNAL_QUEUE;
        b->sig.n--;
        pthread_mutex_unlock(&b->sig.mu);
        json_t *body = json_pack("{s:s, s:s, s:s}", "messaging_product", "whatsapp", "status", "read",
                                 "message_id", wamid);
        char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
        json_decref(body);
        if (!payload)
            continue;
        Helpwire__V1__OutboundMessage none = HELPWIRE__V1__OUTBOUND_MESSAGE__INIT;
        br_delivery d;
        memset(&d, 0, sizeof d);
        char ignored[64];
        int r = graph_post(b, &none, "messages", "application/json", payload, strlen(payload), ignored,
                           sizeof ignored, &d);
        free(payload);
        hw_log_event(b->log, r == BR_OUTBOX_DELIVERED ? HW_LOG_INFO : HW_LOG_WARN, "read_receipt",
                     "wamid=%s sent=%s reason=\"%s\"", hw_log_quote(wamid, q, sizeof q),
                     r == BR_OUTBOX_DELIVERED ? "true" : "false", d.reason);
    }
}

static int signals_start(wa_bridge *b)
{
    pthread_mutex_init(&b->sig.mu, NULL);
    pthread_cond_init(&b->sig.cv, NULL);
    if (pthread_create(&b->sig.thread, NULL, signal_main, b) != 0)
        return -1;
    b->sig.started = true;
    return 0;
}

static void signals_stop(wa_bridge *b)
{
    if (!b->sig.started)
        return;
    pthread_mutex_lock(&b->sig.mu);
    b->sig.stopping = true;
    pthread_cond_broadcast(&b->sig.cv);
    pthread_mutex_unlock(&b->sig.mu);
    pthread_join(b->sig.thread, NULL);
    b->sig.started = false;
}

/* ---------------------------------------------------------------- main */

static const br_bridge bridge = {PROG, "whatsapp", HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP, true};

static const char about[] =
    "Bridges the WhatsApp Cloud API to helpwired. Serves Meta's webhook: verification by GET, signed POSTs "
    "(X-Hub-Signature-256) answered 200 once their messages are in the bridge's durable spool, and routed to "
    "Router.Route from there, in order, with their photos, videos, documents, voice notes, stickers and "
    "places (files fetched from the Graph API and stored in helpwired first; one over --max-media-bytes or "
    "gone routes as a notice naming it); button and list replies route their title; a failed status "
    "callback marks its message FAILED. Messages queued for WhatsApp in helpwired's outbox are sent with "
    "POST /{phone-number-id}/messages (files uploaded with POST /{phone-number-id}/media first; an approved "
    "template outside the 24-hour window) and acknowledged once the Graph API accepted them; an agent's "
    "READ signal marks the customer's message read; Route's reply_text reaches the customer through the "
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
    cfg.max_media_bytes = 20 << 20;
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
        {"max-media-bytes", "WHATSAPP_MAX_MEDIA_BYTES", BR_OPT_INT, &cfg.max_media_bytes, 1024, 100 << 20, "BYTES",
         "The largest file taken from a customer (checked against the size WhatsApp gives, then the bytes "
         "received) or sent to one; a larger one is routed as a notice naming it (inbound) or fails its "
         "message (outbound). WhatsApp allows up to 100 MB documents; helpwired stores at most its "
         "--attachment-max-bytes. Default 20971520 (20 MiB)."},
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
    b.rpc = rt.rpc;
    if (signals_start(&b) != 0) {
        fprintf(stderr, "%s: cannot start the read receipt thread\n", PROG);
        goto out;
    }
    rt.prepare = wa_prepare;
    rt.prepare_done = wa_prepare_done;
    rt.prepare_arg = &b;
    rt.on_signal = on_signal;
    rt.signal_arg = &b;
    if (br_runtime_inbound(&rt, cfg.state_dir) != 0 || br_runtime_spool(&rt, cfg.state_dir, &cfg.spool) != 0)
        goto out;
    b.drain = rt.drain;
    if (br_runtime_open_sent(&rt, cfg.state_dir) != 0)
        goto out;
    b.sent = rt.sent; /* before deliver runs on the outbox's threads */
    if (br_runtime_subscribe(&rt, cfg.state_dir, deliver, &b) != 0)
        goto out;
    b.ob = rt.ob;
    if (br_runtime_listen(&rt, cfg.listen, 0, handler, &b) != 0)
        goto out;
    br_runtime_serve(&rt, cfg.listen);
    rc = 0;
out:
    br_runtime_close_http(&rt);
    signals_stop(&b); /* signals that come later are dropped */
    br_runtime_finish(&rt, rc); /* the drainer routes on for up to --drain-timeout-ms */
    return rc;
}
