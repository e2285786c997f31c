/*
 * telegram-bridge: Telegram Bot API <-> helpwired.
 *
 * Inbound, by long polling (default): getUpdates with offset = last
 * update_id + 1 and a long-poll timeout. The messages of each batch
 * of updates are written to the bridge's spool in --state-dir (spool.h:
 * LMDB, synced; all of the batch in one transaction) and only then is the
 * offset moved past them and written to --state-dir (atomically), so an
 * update is confirmed to Telegram only once it is durably taken: a crash
 * or kill -9 at any point loses nothing (a crash between the spool and
 * the offset write spools the batch again on the next poll; helpwired
 * answers those as duplicates, it dedupes by (channel, message_id)). The
 * drainer (drain.h) routes the spool oldest first, one message at a time,
 * so each chat's messages keep their order: a message helpwired cannot
 * take now (UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, ABORTED,
 * CANCELLED) is retried with backoff for up to --max-retry-age-ms from
 * the message's date; one it refuses for good (any other status), or one
 * still failing past that age, is written to the dead-letter file in
 * --state-dir (deadletter.h) and the next is routed. A refusal by
 * helpwired's per-sender limit (RATE_LIMITED with RetryInfo) holds back
 * only that chat, for the delay named, while the other chats' messages
 * behind it are routed at once: one flooding sender never holds up the
 * others (the reason polled updates go through the spool: routing them in
 * the poll loop before moving the offset would stall every update behind
 * a held one). A full spool (--spool-max-entries, --spool-max-bytes)
 * takes as many of the batch as fit, in order, and the poll backs off:
 * the rest stay at Telegram until there is room. HTTP 429 waits
 * retry_after. The cost over routing directly is one synced LMDB commit
 * per batch and one per message routed (its removal).
 *
 * Media in: a photo (the largest size within --max-media-bytes), a
 * document, an animation, a voice note, an audio file, a video, a video
 * note or a sticker is spooled with a description of its file (file_id,
 * kind, MIME type, name, size: tg_message.media) and its caption as the
 * text ("" without one; a sticker's emoji when it has no caption); a
 * location or a venue with its coordinates (and name and address). The
 * spool keeps all the drainer needs, so an update is still confirmed only
 * once it is durably spooled. Before routing such an entry the drainer
 * calls tg_prepare: getFile, then GET <api-base>/file/bot<token>/<path>,
 * then hw_att_upload to helpwired, and routes the caption with the
 * attachment (a place needs no fetch). A file over --max-media-bytes (by
 * the update's file_size, getFile's, or getFile's "Bad Request: file is
 * too big"), one Telegram no longer has (400, 404), or one helpwired
 * refuses for good, is routed without it, the caption followed by a notice
 * in the customer's language ("[file too large to receive: report.zip, 48
 * MB]", "[文件过大，无法接收：...]", "[file could not be received: ...]"),
 * so the agent knows something came; the network, a 5xx, a 429 or an
 * unreachable helpwired are tried again with the drain's backoff until the
 * message is --max-retry-age-ms old, then it is routed with the notice. A
 * contact, a poll, a dice, a game, a story or a payment message is routed
 * as a one-line description ("[contact: Bea, +49...]"); only a chat's
 * service messages (members joining, a title changed), which no customer
 * writes, are passed over (event=update_skipped reason=service_message).
 *
 * Inbound, by webhook (--mode webhook): POSTs on --webhook-path carrying
 * X-Telegram-Bot-Api-Secret-Token equal to TELEGRAM_WEBHOOK_SECRET
 * (constant-time check); a text message is written to the same spool
 * before the POST is answered 200, and routed from there by the drainer
 * as in polling. A full spool answers 503, so Telegram delivers it again
 * later. Registering the webhook URL with setWebhook is left to the
 * operator.
 *
 * Polling needs the channel's outbox lease (outbox.h): the bridge calls
 * getUpdates only while its Outbox stream is ACTIVE, so two bridges on one
 * bot (a rolling restart, on one --state-dir) never poll at once; a
 * standby waits, a bridge that loses the stream aborts its long poll, and
 * the offset is read afresh each time the lease is taken. The drainer
 * does not need the lease: two bridges on one --state-dir share the spool
 * (spool.h), and a message both route is a duplicate helpwired recognizes.
 *
 * Outbound: Outbox.Subscribe(TELEGRAM), delivered per chat by the outbox's
 * workers; each message goes out with one sendMessage, is recorded in the
 * sent record with its message_id, and is acknowledged only after Telegram
 * answered ok; a 429 holds back that chat for retry_after. Route's
 * reply_text is never sent directly (it is in the outbox too). A message's
 * attachments follow its text: each file is downloaded from helpwired
 * (hw_att_download, at most the 50 MB a bot may send) and uploaded as
 * multipart/form-data with sendPhoto (an image over Telegram's 10 MB photo
 * limit with sendDocument), sendDocument, sendVoice, sendAudio, sendVideo
 * or sendSticker; a place with sendLocation (sendVenue with a name and an
 * address). Each call made is recorded as a step of the message in the
 * sent record (sent.h), so a retry or a redelivery after a crash sends
 * only what is left (a crash between Telegram's answer and the step's
 * record sends that one call again). Telegram's 400, 403 and 413 (Request
 * Entity Too Large) end the message FAILED with Telegram's words; 429 and
 * 5xx are retried.
 *
 * Signals: a TYPING signal (seq 0) becomes sendChatAction "typing", sent
 * once from a thread of its own, never retried or acknowledged; READ is
 * ignored (Telegram has no read receipts for bots).
 *
 * The bot token appears only in request URLs, which are never logged.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <errno.h>

#include <curl/curl.h>
#include <grpc/grpc.h>
#include <jansson.h>
#include <openssl/crypto.h>

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
#include "clients/lib/sent.h"
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
    int max_media_bytes;
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
    br_outbox *ob; /* set before the poll loop starts; its lease gates polling */
    char *bot_token;
    char offset_path[4096];
    br_drain *drain; /* the runtime's: spools the updates taken, routes them */
    hw_client *rpc;  /* the runtime's: attachments up and down */
    br_sent *sent;   /* the runtime's: the steps of a message sent in several calls */
    struct tg_signals *signals; /* typing indicators, sent off the stream thread */
} tg_bridge;

/* The Bot API's own limits: a bot downloads files of at most 20 MB
 * (getFile), uploads at most 50 MB by multipart, and a photo of at most
 * 10 MB (a larger image goes as a document). */
#define TG_GETFILE_MAX_BYTES (20u << 20)
#define TG_UPLOAD_MAX_BYTES (50u << 20)
#define TG_PHOTO_MAX_BYTES (10u << 20)

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

/* The outcome of a Bot API answer (resp, a response that arrived): as
 * bot_call says. A 413 (the file too large, answered by the API's front
 * end without JSON) is named "Request Entity Too Large". */
static tg_result interpret(tg_bridge *b, const char *method, const br_http_response *resp, json_t **result,
                           int *wait_ms, char *refusal, size_t refusal_size)
{
    tg_result res;
    json_t *j = json_loadb(resp->body ? resp->body : "", resp->body_len, 0, NULL);
    if (resp->status == 200 && json_is_true(json_object_get(j, "ok"))) {
        res = TG_OK;
        if (result)
            *result = json_incref(json_object_get(j, "result"));
    } else {
        const char *desc = json_string_value(json_object_get(j, "description"));
        if (!desc && resp->status == 413)
            desc = "Request Entity Too Large";
        char q[300];
        hw_log_event(b->log, HW_LOG_WARN, "telegram_error", "method=%s status=%ld description=%s", method,
                     resp->status, hw_log_quote(desc ? desc : "", q, sizeof q));
        if (resp->status == 429) {
            int ms = retry_after_ms(resp, NULL);
            *wait_ms = ms >= 0 ? ms : 1000;
            res = TG_RATE_LIMITED;
        } else if (resp->status >= 500 || resp->status == 408 || resp->status == 0) {
            res = TG_RETRY;
        } else {
            res = TG_REJECTED;
        }
        json_t *code = json_object_get(j, "error_code");
        long status = json_is_integer(code) ? (long)json_integer_value(code) : resp->status;
        if (refusal)
            snprintf(refusal, refusal_size, "telegram %ld: %s", status, desc ? desc : "(no description)");
        if (res != TG_RATE_LIMITED && refusal && br_refusal_telegram(status) == BR_REFUSAL_PERMANENT)
            res = TG_REFUSED;
    }
    json_decref(j);
    return res;
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
    if (result)
        *result = NULL;
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
    if (rc == BR_HTTP_ESTOPPED) {
        br_http_response_free(&resp);
        return TG_STOPPED;
    }
    if (rc != BR_HTTP_OK) {
        char q[300];
        hw_log_event(b->log, HW_LOG_WARN, "telegram_unreachable", "method=%s error=%s", method,
                     hw_log_quote(resp.error, q, sizeof q));
        if (refusal)
            snprintf(refusal, refusal_size, "telegram unreachable: %s", resp.error);
        br_http_response_free(&resp);
        return TG_RETRY;
    }
    tg_result res = interpret(b, method, &resp, result, wait_ms, refusal, refusal_size);
    br_http_response_free(&resp);
    return res;
}

/* A body's size for a notice: "48 MB", "900 KB", "12 bytes". */
static void human_size(uint64_t n, char *out, size_t len)
{
    if (n >= 1000000)
        snprintf(out, len, "%llu MB", (unsigned long long)((n + 500000) / 1000000));
    else if (n >= 1000)
        snprintf(out, len, "%llu KB", (unsigned long long)((n + 500) / 1000));
    else
        snprintf(out, len, "%llu bytes", (unsigned long long)n);
}

/* ------------------------------------------------------------- inbound */

/* An update's message as Route takes it, with the buffers its strings
 * live in (the rest are borrowed from the update's JSON). */
typedef struct tg_message {
    br_inbound in;
    int64_t received_ms; /* the message's date, 0 when it has none */
    char user[32], key[64], name[300];
    char text[600];    /* a description routed as the text (a contact, a poll, ...) */
    char media[3072];  /* in.media: what the drainer fetches (tg_media_*), JSON */
} tg_message;

/* The spooled description of a message's file or place (tg_message.media),
 * all the drainer's prepare step needs without the update: "k" the
 * AttachmentKind; for a file "fid" (file_id), "mime", "name" (may be ""),
 * "size" (0 when Telegram did not say) and "what" (the kind of file in a
 * notice: photo, voice, ...); for a place "lat", "lon" and optionally
 * "title" and "addr". */

/* The MIME type a file of kind has when Telegram names none. */
/* Writes d (taken: freed here; NULL when it could not be made) into
 * m->media as compact JSON. False when it does not fit. */
static bool set_media(tg_message *m, json_t *d)
{
    size_t n = d ? json_dumpb(d, m->media, sizeof m->media - 1, JSON_COMPACT) : 0;
    json_decref(d);
    if (n == 0 || n >= sizeof m->media - 1)
        return false;
    m->media[n] = '\0';
    return true;
}

static const char *default_mime(int kind, const char *what)
{
    switch (kind) {
    case HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_IMAGE:
        return "image/jpeg";
    case HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_VOICE:
        return "audio/ogg";
    case HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_AUDIO:
        return "audio/mpeg";
    case HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_VIDEO:
        return "video/mp4";
    case HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_STICKER:
        return "image/webp";
    default:
        return "application/octet-stream";
    }
}

/* Writes the description of file f (a Telegram File object: file_id,
 * file_size, file_name, mime_type) as kind into m->media. Returns false
 * when f has no file_id or the description does not fit. */
static bool describe_file(tg_message *m, json_t *f, int kind, const char *what, const char *mime)
{
    const char *fid = json_string_value(json_object_get(f, "file_id"));
    if (!fid || !*fid)
        return false;
    json_t *sz = json_object_get(f, "file_size");
    json_int_t size = json_is_integer(sz) && json_integer_value(sz) > 0 ? json_integer_value(sz) : 0;
    const char *name = json_string_value(json_object_get(f, "file_name"));
    const char *fmime = json_string_value(json_object_get(f, "mime_type"));
    if (!mime)
        mime = fmime && *fmime ? fmime : default_mime(kind, what);
    json_t *d = json_pack("{s:i, s:s, s:s, s:s, s:I, s:s}", "k", kind, "fid", fid, "mime", mime, "name",
                          name ? name : "", "size", size, "what", what);
    return set_media(m, d);
}

/* The largest size of a photo (an array of PhotoSize) within max_bytes;
 * the smallest when none is (its size then says it is too large). */
static json_t *pick_photo(json_t *sizes, size_t max_bytes)
{
    json_t *best = NULL, *smallest = NULL, *p;
    json_int_t best_area = -1, small_size = 0;
    size_t i;
    json_array_foreach(sizes, i, p)
    {
        json_int_t size = json_integer_value(json_object_get(p, "file_size"));
        json_int_t area = json_integer_value(json_object_get(p, "width")) *
                          json_integer_value(json_object_get(p, "height"));
        if (!smallest || size < small_size) {
            smallest = p;
            small_size = size;
        }
        if ((size <= 0 || (uint64_t)size <= max_bytes) && area > best_area) {
            best = p;
            best_area = area;
        }
    }
    return best ? best : smallest;
}

/* A message with neither text nor a file Telegram lets a bot fetch: a
 * short description for the agent in m->text, or false for the service
 * messages of a chat (a member joined, a title changed, ...), which no
 * customer wrote. */
static bool describe_other(json_t *msg, tg_message *m)
{
    json_t *x;
    if ((x = json_object_get(msg, "contact"))) {
        const char *first = json_string_value(json_object_get(x, "first_name"));
        const char *last = json_string_value(json_object_get(x, "last_name"));
        const char *phone = json_string_value(json_object_get(x, "phone_number"));
        snprintf(m->text, sizeof m->text, "[contact: %s%s%s%s%s]", first ? first : "", last ? " " : "",
                 last ? last : "", phone ? ", " : "", phone ? phone : "");
    } else if ((x = json_object_get(msg, "poll"))) {
        const char *question = json_string_value(json_object_get(x, "question"));
        snprintf(m->text, sizeof m->text, "[poll: %s]", question ? question : "");
    } else if ((x = json_object_get(msg, "dice"))) {
        const char *emoji = json_string_value(json_object_get(x, "emoji"));
        snprintf(m->text, sizeof m->text, "[dice: %s %lld]", emoji ? emoji : "",
                 (long long)json_integer_value(json_object_get(x, "value")));
    } else if ((x = json_object_get(msg, "game"))) {
        const char *title = json_string_value(json_object_get(x, "title"));
        snprintf(m->text, sizeof m->text, "[game: %s]", title ? title : "");
    } else if (json_object_get(msg, "story")) {
        snprintf(m->text, sizeof m->text, "[a forwarded story]");
    } else if (json_object_get(msg, "invoice") || json_object_get(msg, "successful_payment")) {
        snprintf(m->text, sizeof m->text, "[a payment message]");
    } else {
        return false;
    }
    return true;
}

/* Fills m->media (and the sticker's emoji as the text) for msg's file or
 * place. Returns true when msg has one. */
static bool extract_media(tg_bridge *b, json_t *msg, tg_message *m, const char **text)
{
    size_t max = (size_t)b->cfg->max_media_bytes;
    json_t *x;
    if ((x = json_object_get(msg, "photo")) && json_is_array(x) && json_array_size(x) > 0)
        return describe_file(m, pick_photo(x, max), HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_IMAGE, "photo",
                             "image/jpeg");
    if ((x = json_object_get(msg, "animation")) && json_is_object(x))
        return describe_file(m, x, HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_VIDEO, "animation", NULL);
    if ((x = json_object_get(msg, "document")) && json_is_object(x))
        return describe_file(m, x, HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_DOCUMENT, "document", NULL);
    if ((x = json_object_get(msg, "voice")) && json_is_object(x))
        return describe_file(m, x, HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_VOICE, "voice", NULL);
    if ((x = json_object_get(msg, "audio")) && json_is_object(x))
        return describe_file(m, x, HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_AUDIO, "audio", NULL);
    if ((x = json_object_get(msg, "video")) && json_is_object(x))
        return describe_file(m, x, HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_VIDEO, "video", NULL);
    if ((x = json_object_get(msg, "video_note")) && json_is_object(x))
        return describe_file(m, x, HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_VIDEO, "video_note",
                             "video/mp4");
    if ((x = json_object_get(msg, "sticker")) && json_is_object(x)) {
        const char *emoji = json_string_value(json_object_get(x, "emoji"));
        if (emoji && !**text)
            *text = emoji; /* a sticker says what its emoji says */
        const char *mime = json_is_true(json_object_get(x, "is_animated")) ? "application/x-tgsticker"
                           : json_is_true(json_object_get(x, "is_video")) ? "video/webm"
                                                                           : "image/webp";
        return describe_file(m, x, HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_STICKER, "sticker", mime);
    }
    json_t *loc = json_object_get(msg, "location");
    json_t *venue = json_object_get(msg, "venue");
    if (json_is_object(venue) && !json_is_object(loc))
        loc = json_object_get(venue, "location");
    if (json_is_object(loc)) {
        json_t *lat = json_object_get(loc, "latitude"), *lon = json_object_get(loc, "longitude");
        if (!json_is_number(lat) || !json_is_number(lon))
            return false;
        json_t *d = json_pack("{s:i, s:f, s:f}", "k", HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_LOCATION,
                              "lat", json_number_value(lat), "lon", json_number_value(lon));
        const char *title = json_string_value(json_object_get(venue, "title"));
        const char *addr = json_string_value(json_object_get(venue, "address"));
        if (d && title)
            json_object_set_new(d, "title", json_string(title));
        if (d && addr)
            json_object_set_new(d, "addr", json_string(addr));
        return set_media(m, d);
    }
    return false;
}

/* Extracts update's message into m: its text, or a file or place (with
 * its caption as the text, "" when none; the drainer fetches the file), or
 * a description of what else it is. Returns false when there is nothing
 * to route (not a message, a chat's service message; logged). */
static bool extract_update(tg_bridge *b, json_t *update, tg_message *m)
{
    json_int_t update_id = json_integer_value(json_object_get(update, "update_id"));
    json_t *msg = json_object_get(update, "message");
    json_t *chat = json_object_get(msg, "chat");
    json_t *from = json_object_get(msg, "from");
    const char *text = json_string_value(json_object_get(msg, "text"));
    json_t *chat_id = json_object_get(chat, "id");
    json_t *message_id = json_object_get(msg, "message_id");
    const char *media = NULL;
    m->text[0] = m->media[0] = '\0';
    if (!text && json_is_object(msg)) {
        const char *caption = json_string_value(json_object_get(msg, "caption"));
        text = caption ? caption : "";
        if (extract_media(b, msg, m, &text))
            media = m->media;
        else if (describe_other(msg, m))
            text = m->text;
        else
            text = NULL;
    }
    if (!text || !json_is_integer(chat_id) || !json_is_integer(message_id)) {
        hw_log_event(b->log, HW_LOG_INFO, "update_skipped", "update_id=%lld reason=%s", (long long)update_id,
                     !msg ? "not_a_message" : !text ? "service_message" : "no_chat");
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
                         json_string_value(json_object_get(from, "language_code")),
                         media,
                         NULL,
                         0,
                         NULL};
    /* A date that is no Unix time in milliseconds (negative, or too big to
     * multiply) counts as none: the message is aged from now. */
    json_int_t date = json_integer_value(json_object_get(msg, "date"));
    m->received_ms = date > 0 && date <= INT64_MAX / 1000 ? (int64_t)date * 1000 : 0;
    return true;
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

/* One update of a getUpdates batch: its id, and its text message when it
 * has one to route. */
typedef struct tg_polled {
    uint64_t id;
    bool has_message;
    tg_message m;
} tg_polled;

/* Takes a getUpdates batch: spools its text messages (one synced
 * transaction; when the spool is full, one by one in order as far as
 * there is room), then moves *offset past the updates taken and writes
 * it. Updates below *offset (an API that sends one again) are passed
 * over. Returns 0 when all were taken, 1 when some (or none) were left
 * for the next poll (the spool full or failing, logged
 * event=poll_deferred), -1 when the offset could not be written (the
 * updates are spooled: *offset still moved). */
static int take_updates(tg_bridge *b, json_t *updates, uint64_t *offset)
{
    size_t cap = json_array_size(updates), n = 0, n_msg = 0, taken = 0, i;
    tg_polled *p = calloc(cap ? cap : 1, sizeof *p);
    br_inbound *in = calloc(cap ? cap : 1, sizeof *in);
    int64_t *at = calloc(cap ? cap : 1, sizeof *at);
    char err[600] = "out of memory";
    int rc = BR_SPOOL_ERR, ret = 1;
    json_t *u;
    if (!p || !in || !at) {
        n = cap;
        goto deferred;
    }
    json_array_foreach(updates, i, u)
    {
        json_t *idj = json_object_get(u, "update_id");
        if (!json_is_integer(idj) || json_integer_value(idj) < 0)
            continue;
        uint64_t id = (uint64_t)json_integer_value(idj);
        if (id < *offset) {
            /* Already taken: Telegram confirms by offset, so an older
             * update can only come back from a misbehaving API. */
            hw_log_event(b->log, HW_LOG_INFO, "update_duplicate", "update_id=%" PRIu64, id);
            continue;
        }
        p[n].id = id;
        p[n].has_message = extract_update(b, u, &p[n].m);
        if (p[n].has_message) {
            in[n_msg] = p[n].m.in; /* its strings live in p[n] and updates */
            at[n_msg++] = p[n].m.received_ms;
        }
        n++;
    }
    rc = br_drain_spool(b->drain, in, at, n_msg, err, sizeof err);
    if (rc == BR_SPOOL_OK) {
        taken = n;
    } else if (rc == BR_SPOOL_FULL && n_msg > 1) {
        /* Not all fit: as many as do, in order. */
        for (; taken < n; taken++)
            if (p[taken].has_message &&
                (rc = br_drain_spool(b->drain, &p[taken].m.in, &p[taken].m.received_ms, 1, err,
                                     sizeof err)) != BR_SPOOL_OK)
                break;
    }
    if (taken > 0) {
        *offset = p[taken - 1].id + 1;
        hw_log_event(b->log, HW_LOG_DEBUG, "updates_taken", "updates=%zu offset=%" PRIu64, taken, *offset);
        if (save_offset(b, *offset) != 0) {
            ret = -1;
            goto out;
        }
    }
    if (taken == n) {
        ret = 0;
        goto out;
    }
deferred:
    hw_log_event(b->log, rc == BR_SPOOL_FULL ? HW_LOG_WARN : HW_LOG_ERROR, "poll_deferred",
                 "reason=%s updates_left=%zu error=\"%s\"",
                 rc == BR_SPOOL_FULL ? "spool_full" : "spool_error", n - taken, err);
out:
    free(p);
    free(in);
    free(at);
    return ret;
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
        int t = take_updates(b, updates, &offset);
        json_decref(updates);
        if (t == 0) {
            br_backoff_reset(&bo);
        } else {
            /* The spool full or failing, or the offset not written: wait
             * a little, then poll again (Telegram gives back what is left). */
            int delay = br_backoff_next_ms(&bo);
            hw_log_event(b->log, HW_LOG_INFO, "poll_backoff", "delay_ms=%d", delay);
            if (br_stop_sleep_ms(b->stop, delay))
                break;
        }
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

/* -------------------------------------------------- inbound: the files */

/* What the prepare step made of one message: its attachment and, when a
 * file could not be had, the text with a notice. */
typedef struct tg_prep {
    Helpwire__V1__Attachment att;
    Helpwire__V1__Location loc;
    Helpwire__V1__Attachment *list[1];
    char id[48], mime[129], name[257], title[257], addr[1025];
    char *text; /* malloc'd, or NULL */
} tg_prep;

static bool lang_zh(const char *locale)
{
    return locale && (locale[0] == 'z' || locale[0] == 'Z') && (locale[1] == 'h' || locale[1] == 'H');
}

/* The words of a notice for a file of this kind ("what" in the media
 * description), in the customer's language. */
static const char *what_word(const char *what, bool zh)
{
    static const char *const words[][3] = {
        {"photo", "photo", "图片"},         {"animation", "animation", "动图"}, {"document", "file", "文件"},
        {"voice", "voice message", "语音"}, {"audio", "audio file", "音频"},   {"video", "video", "视频"},
        {"video_note", "video message", "视频消息"}, {"sticker", "sticker", "贴纸"},
    };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (what && strcmp(what, words[i][0]) == 0)
            return words[i][zh ? 2 : 1];
    return zh ? "文件" : "file";
}

/* Routes the caption with a notice that the file could not be received
 * (too_big: over the limit, size bytes when known), so that the agent
 * knows something was sent. */
static int prep_notice(tg_prep *p, const br_inbound *in, json_t *md, bool too_big, uint64_t size,
                       br_prepared *out)
{
    bool zh = lang_zh(in->locale);
    const char *name = json_string_value(json_object_get(md, "name"));
    const char *label = name && *name ? name : what_word(json_string_value(json_object_get(md, "what")), zh);
    char notice[700], sz[32] = "";
    if (too_big && size)
        human_size(size, sz, sizeof sz);
    if (too_big && zh)
        snprintf(notice, sizeof notice, "[文件过大，无法接收：%s%s%s]", label, sz[0] ? "，" : "", sz);
    else if (too_big)
        snprintf(notice, sizeof notice, "[file too large to receive: %s%s%s]", label, sz[0] ? ", " : "", sz);
    else if (zh)
        snprintf(notice, sizeof notice, "[无法接收文件：%s]", label);
    else
        snprintf(notice, sizeof notice, "[file could not be received: %s]", label);
    const char *caption = in->text ? in->text : "";
    size_t n = strlen(caption) + strlen(notice) + 2;
    if (!(p->text = malloc(n)))
        return BR_PREPARE_OK; /* out of memory: the caption alone */
    snprintf(p->text, n, "%s%s%s", caption, *caption ? "\n" : "", notice);
    out->text = p->text;
    return BR_PREPARE_OK;
}

/* A name as Attachment.name takes it: no '/', '\\' or control characters
 * (each becomes '_'), at most 256 bytes cut at a character boundary. */
static void clean_name(const char *in, char *out, size_t len)
{
    size_t n = 0;
    for (; in && in[n] && n < len - 1; n++) {
        unsigned char c = (unsigned char)in[n];
        out[n] = c < 0x20 || c == 0x7f || c == '/' || c == '\\' ? '_' : (char)c;
    }
    while (n > 0 && in[n] && ((unsigned char)in[n] & 0xC0) == 0x80)
        n--; /* cut inside a character: drop its first bytes too */
    out[n] = '\0';
}

/* A MIME type as Attachment.mime_type takes it: "type/subtype" of
 * printable ASCII, at most 128 bytes; application/octet-stream otherwise. */
static void clean_mime(const char *in, char *out, size_t len)
{
    bool ok = in && strchr(in, '/') && strlen(in) < len && strlen(in) <= 128;
    for (const char *c = in; ok && *c; c++)
        ok = *c > 0x20 && *c < 0x7f;
    snprintf(out, len, "%s", ok ? in : "application/octet-stream");
}

/* The drainer's prepare step (drain.h): gets the file of in->media from
 * Telegram (getFile, then the file's URL), uploads it to helpwired and
 * routes it as the message's attachment. A file over --max-media-bytes
 * (by the update's size, getFile's, or getFile's "file is too big"), one
 * Telegram no longer has, or one helpwired refuses, is routed as a notice
 * instead; the network, a 5xx, a 429 and an unreachable helpwired are
 * tried again (BR_PREPARE_RETRY) until last_try. */
static int tg_prepare(void *arg, const br_inbound *in, bool last_try, br_prepared *out, char *err, size_t errlen)
{
    tg_bridge *b = arg;
    int rc = BR_PREPARE_OK;
    char q[300], q2[160];
    json_t *md = json_loads(in->media, 0, NULL);
    tg_prep *p = calloc(1, sizeof *p);
    br_http_response resp = {0};
    char url[2048] = "";
    if (!p) {
        snprintf(err, errlen, "out of memory");
        rc = last_try ? BR_PREPARE_OK : BR_PREPARE_RETRY;
        goto out;
    }
    out->owner = p;
    if (!json_is_object(md)) {
        hw_log_event(b->log, HW_LOG_ERROR, "media_unreadable", "message_id=%s",
                     hw_log_quote(in->message_id, q2, sizeof q2));
        goto out; /* route the text alone */
    }
    int kind = (int)json_integer_value(json_object_get(md, "k"));
    helpwire__v1__attachment__init(&p->att);
    p->list[0] = &p->att;
    p->att.kind = (Helpwire__V1__AttachmentKind)kind;
    p->att.id = p->id;
    p->att.mime_type = p->mime;
    p->att.name = p->name;
    if (kind == HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_LOCATION) {
        helpwire__v1__location__init(&p->loc);
        p->loc.latitude = json_number_value(json_object_get(md, "lat"));
        p->loc.longitude = json_number_value(json_object_get(md, "lon"));
        snprintf(p->title, sizeof p->title, "%s", json_string_value(json_object_get(md, "title")) ?: "");
        snprintf(p->addr, sizeof p->addr, "%s", json_string_value(json_object_get(md, "addr")) ?: "");
        p->loc.name = p->title;
        p->loc.address = p->addr;
        p->att.location = &p->loc;
        out->attachments = p->list;
        out->n_attachments = 1;
        goto out;
    }
    const char *fid = json_string_value(json_object_get(md, "fid"));
    uint64_t size = (uint64_t)json_integer_value(json_object_get(md, "size"));
    uint64_t max = (uint64_t)b->cfg->max_media_bytes;
    if (!fid) {
        rc = prep_notice(p, in, md, false, 0, out);
        goto out;
    }
    if (size > max) {
        hw_log_event(b->log, HW_LOG_INFO, "media_too_large", "message_id=%s size=%llu max=%llu",
                     hw_log_quote(in->message_id, q2, sizeof q2), (unsigned long long)size,
                     (unsigned long long)max);
        rc = prep_notice(p, in, md, true, size, out);
        goto out;
    }
    /* getFile: where the file is */
    json_t *body = json_pack("{s:s}", "file_id", fid);
    json_t *result = NULL;
    int wait_ms = 0;
    char why[512] = "";
    tg_result r = bot_call(b, "getFile", body, b->cfg->http_timeout_ms, 1, false, &result, &wait_ms, why,
                           sizeof why);
    json_decref(body);
    const char *path = json_string_value(json_object_get(result, "file_path"));
    json_int_t fsize = json_integer_value(json_object_get(result, "file_size"));
    uint64_t known = 0; /* the size getFile gave: the update's may be wrong when getFile refuses */
    if (r == TG_OK && path && fsize > 0 && (uint64_t)fsize > max) {
        known = (uint64_t)fsize;
        r = TG_REFUSED;
        snprintf(why, sizeof why, "file is too big: %lld bytes", (long long)fsize);
    }
    if (r != TG_OK || !path) {
        bool too_big = strstr(why, "file is too big") != NULL;
        if ((r == TG_RETRY || r == TG_RATE_LIMITED || r == TG_STOPPED) && !last_try) {
            snprintf(err, errlen, "getFile: %s", why[0] ? why : "no answer");
            rc = BR_PREPARE_RETRY;
        } else {
            hw_log_event(b->log, HW_LOG_WARN, "media_not_received", "message_id=%s step=getFile reason=%s",
                         hw_log_quote(in->message_id, q2, sizeof q2),
                         hw_log_quote(r == TG_OK ? "no file_path" : why, q, sizeof q));
            rc = prep_notice(p, in, md, too_big, too_big ? known : 0, out);
        }
        json_decref(result);
        goto out;
    }
    /* the file itself */
    br_http_url(url, sizeof url, b->cfg->api_base, "/file/bot%s/%s", b->bot_token, path);
    json_decref(result);
    br_http_request req = {.method = "GET",
                           .url = url,
                           .timeout_ms = b->cfg->http_timeout_ms * 4,
                           .max_response_bytes = (size_t)max,
                           .stop = b->stop};
    int hr = br_http_do(&req, &resp);
    OPENSSL_cleanse(url, sizeof url);
    if (hr != BR_HTTP_OK || resp.status != 200) {
        bool too_big = hr == BR_HTTP_ETRANSPORT && strcmp(resp.error, "response too large") == 0;
        bool transient = !too_big && (hr != BR_HTTP_OK || resp.status >= 500 || resp.status == 429 ||
                                      resp.status == 408);
        char what[300];
        if (hr == BR_HTTP_OK)
            snprintf(what, sizeof what, "HTTP %ld", resp.status);
        else
            snprintf(what, sizeof what, "%s", resp.error);
        if (transient && !last_try) {
            snprintf(err, errlen, "file download: %s", what);
            rc = BR_PREPARE_RETRY;
        } else {
            hw_log_event(b->log, HW_LOG_WARN, "media_not_received", "message_id=%s step=download reason=%s",
                         hw_log_quote(in->message_id, q2, sizeof q2), hw_log_quote(what, q, sizeof q));
            rc = prep_notice(p, in, md, too_big, too_big ? max + 1 : 0, out);
        }
        goto out;
    }
    if (resp.body_len == 0) {
        rc = prep_notice(p, in, md, false, 0, out);
        goto out;
    }
    /* to helpwired */
    clean_mime(json_string_value(json_object_get(md, "mime")), p->mime, sizeof p->mime);
    clean_name(json_string_value(json_object_get(md, "name")), p->name, sizeof p->name);
    hw_att_ref ref;
    hw_client_status st;
    if (hw_att_upload(b->rpc, resp.body, resp.body_len, (Helpwire__V1__AttachmentKind)kind, p->mime, p->name, &ref,
                      &st) != 0) {
        /* RESOURCE_EXHAUSTED without a rate limit: over helpwired's
         * --attachment-max-bytes, the same however often it is sent */
        bool over = st.code == GRPC_STATUS_RESOURCE_EXHAUSTED && strcmp(st.reason, "RATE_LIMITED") != 0 &&
                    st.retry_delay_ms < 0;
        if (hw_client_status_retryable(st.code) && !over && !last_try) {
            snprintf(err, errlen, "upload to helpwired: %s: %s", hw_client_status_name(st.code), st.message);
            rc = BR_PREPARE_RETRY;
        } else {
            hw_log_event(b->log, HW_LOG_WARN, "media_not_received",
                         "message_id=%s step=upload code=%s message=%s",
                         hw_log_quote(in->message_id, q2, sizeof q2), hw_client_status_name(st.code),
                         hw_log_quote(st.message, q, sizeof q));
            rc = prep_notice(p, in, md, over, over ? resp.body_len : 0, out);
        }
        goto out;
    }
    snprintf(p->id, sizeof p->id, "%s", ref.id);
    out->attachments = p->list;
    out->n_attachments = 1;
    hw_log_event(b->log, HW_LOG_INFO, "media_received", "message_id=%s kind=%d bytes=%zu attachment=%s",
                 hw_log_quote(in->message_id, q2, sizeof q2), kind, resp.body_len, ref.id);
out:
    br_http_response_free(&resp);
    json_decref(md);
    return rc;
}

static void tg_prepare_done(void *arg, br_prepared *prep)
{
    tg_prep *p = prep->owner;
    if (p) {
        free(p->text);
        free(p);
    }
    memset(prep, 0, sizeof *prep);
}

/* ------------------------------------------------------------ outbound */

/* The chat_id of a message to user: a number when it is one. */
static json_t *chat_value(const char *user)
{
    char *end = NULL;
    long long chat = strtoll(user, &end, 10);
    if (end && *end == '\0' && end != user)
        return json_integer(chat);
    return json_string(user);
}

/* One delivery step's outcome as the outbox takes it: OK goes on, a
 * permanent refusal is BR_OUTBOX_FAILED, the rest is retried (a 429 after
 * retry_after, for this chat only). */
static int step_outcome(tg_result r, int wait_ms, br_delivery *d)
{
    if (r == TG_OK)
        return BR_OUTBOX_DELIVERED;
    if (r == TG_RATE_LIMITED)
        d->retry_after_ms = wait_ms;
    d->scope = BR_SCOPE_RECIPIENT;
    return r == TG_REFUSED ? BR_OUTBOX_FAILED : BR_OUTBOX_RETRY;
}

typedef struct {
    char *buf;
    size_t len, max;
    bool overflow;
} tg_sink;

static size_t sink_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
    tg_sink *s = arg;
    size_t n = size * nmemb;
    if (s->len + n > s->max) {
        s->overflow = true;
        return 0;
    }
    char *nb = realloc(s->buf, s->len + n + 1);
    if (!nb)
        return 0;
    memcpy(nb + s->len, ptr, n);
    s->len += n;
    nb[s->len] = '\0';
    s->buf = nb;
    return n;
}

/* Uploads a file to Bot API method (sendPhoto, sendDocument, ...) as
 * multipart/form-data: chat_id, and the file in field with filename and
 * mime. One attempt; the answer as bot_call gives it. */
static tg_result upload_file(tg_bridge *b, const char *method, const char *chat, const char *field,
                             const uint8_t *data, size_t len, const char *filename, const char *mime,
                             json_t **result, int *wait_ms, char *refusal, size_t refusal_size)
{
    char url[2048], errbuf[CURL_ERROR_SIZE] = "";
    tg_result res = TG_RETRY;
    tg_sink sink = {NULL, 0, 1 << 20, false};
    br_http_response resp = {0};
    struct curl_slist *hdrs = NULL;
    *result = NULL;
    build_url(b, method, url, sizeof url);
    CURL *c = curl_easy_init();
    curl_mime *form = c ? curl_mime_init(c) : NULL;
    if (!form) {
        snprintf(refusal, refusal_size, "out of memory");
        goto out;
    }
    curl_mimepart *part = curl_mime_addpart(form);
    curl_mime_name(part, "chat_id");
    curl_mime_data(part, chat, CURL_ZERO_TERMINATED);
    part = curl_mime_addpart(form);
    curl_mime_name(part, field);
    curl_mime_data(part, (const char *)data, len);
    curl_mime_filename(part, filename);
    curl_mime_type(part, mime);
    /* the whole body at once, without waiting for "100 Continue" */
    hdrs = curl_slist_append(NULL, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_MIMEPOST, form);
    /* a file takes longer than a text: the timeout grows with its size
     * (1 s a MB on top) */
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)b->cfg->http_timeout_ms + (long)(len / 1000));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode cr = curl_easy_perform(c);
    OPENSSL_cleanse(url, sizeof url);
    if (cr != CURLE_OK) {
        char q[300];
        const char *e = sink.overflow ? "response too large" : errbuf[0] ? errbuf : curl_easy_strerror(cr);
        hw_log_event(b->log, HW_LOG_WARN, "telegram_unreachable", "method=%s error=%s", method,
                     hw_log_quote(e, q, sizeof q));
        snprintf(refusal, refusal_size, "telegram unreachable: %s", e);
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
    resp.body = sink.buf;
    resp.body_len = sink.len;
    resp.retry_after_s = -1;
    res = interpret(b, method, &resp, result, wait_ms, refusal, refusal_size);
out:
    curl_mime_free(form);
    curl_slist_free_all(hdrs);
    if (c)
        curl_easy_cleanup(c);
    free(sink.buf);
    return res;
}

/* How the Bot API takes a file of each kind: the method, its file field,
 * and the name sent when the file has none. Any other kind goes as a
 * document. */
typedef struct tg_send_as {
    Helpwire__V1__AttachmentKind kind;
    const char *method, *field, *default_name;
} tg_send_as;

static const tg_send_as SEND_AS[] = {
    {HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_IMAGE, "sendPhoto", "photo", "photo.jpg"},
    {HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_STICKER, "sendSticker", "sticker", "sticker.webp"},
    {HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_VOICE, "sendVoice", "voice", "voice.ogg"},
    {HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_AUDIO, "sendAudio", "audio", "audio.mp3"},
    {HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_VIDEO, "sendVideo", "video", "video.mp4"},
};
static const tg_send_as SEND_AS_DOCUMENT = {HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_DOCUMENT, "sendDocument",
                                            "document", "file"};

static const tg_send_as *send_as(Helpwire__V1__AttachmentKind kind)
{
    for (size_t i = 0; i < sizeof SEND_AS / sizeof SEND_AS[0]; i++)
        if (SEND_AS[i].kind == kind)
            return &SEND_AS[i];
    return &SEND_AS_DOCUMENT;
}

/* Sends attachment a of m (number i of n) to chat: a place with
 * sendLocation (sendVenue when it has a name and an address), a file
 * fetched from helpwired with the method of its kind (a photo over 10 MB
 * as a document, as Telegram takes no larger photo). */
static int send_attachment(tg_bridge *b, const Helpwire__V1__OutboundMessage *m, const Helpwire__V1__Attachment *a,
                           size_t i, size_t n, br_delivery *d, char *id, size_t idlen)
{
    json_t *result = NULL;
    int wait_ms = 0, rc;
    tg_result r;
    char why[400] = "";
    if (a->kind == HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_LOCATION) {
        if (!a->location) {
            snprintf(d->reason, sizeof d->reason, "attachment %zu of %zu: a location without coordinates", i, n);
            return BR_OUTBOX_FAILED;
        }
        bool venue = a->location->name && *a->location->name && a->location->address && *a->location->address;
        json_t *body = json_pack("{s:o, s:f, s:f}", "chat_id", chat_value(m->channel_user_id), "latitude",
                                 a->location->latitude, "longitude", a->location->longitude);
        if (venue) {
            json_object_set_new(body, "title", json_string(a->location->name));
            json_object_set_new(body, "address", json_string(a->location->address));
        }
        r = bot_call(b, venue ? "sendVenue" : "sendLocation", body, b->cfg->http_timeout_ms, 1, false, &result,
                     &wait_ms, why, sizeof why);
        json_decref(body);
    } else {
        hw_att_file f;
        hw_client_status st;
        if (hw_att_download(b->rpc, a->id, TG_UPLOAD_MAX_BYTES, &f, &st) != 0) {
            snprintf(d->reason, sizeof d->reason, "attachment %zu of %zu (%.48s) from helpwired: %s: %.400s", i, n,
                     a->id ? a->id : "", hw_client_status_name(st.code), st.message);
            d->scope = BR_SCOPE_RECIPIENT;
            if (st.code == GRPC_STATUS_RESOURCE_EXHAUSTED && strstr(st.message, "over the limit")) {
                snprintf(d->reason, sizeof d->reason,
                         "attachment %zu of %zu (%s): over the 50 MB a Telegram bot may send", i, n,
                         a->name && *a->name ? a->name : a->id);
                return BR_OUTBOX_FAILED;
            }
            return hw_client_status_retryable(st.code) ? BR_OUTBOX_RETRY : BR_OUTBOX_FAILED;
        }
        Helpwire__V1__AttachmentKind kind = a->kind ? a->kind : f.kind;
        const tg_send_as *as = send_as(kind);
        const char *method = as->method, *field = as->field, *dflt = as->default_name;
        if (kind == HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_IMAGE && f.size > TG_PHOTO_MAX_BYTES)
            method = "sendDocument", field = "document"; /* too large for a photo: sent as a file */
        const char *name = a->name && *a->name ? a->name : f.name[0] ? f.name : dflt;
        const char *mime = f.mime_type[0] ? f.mime_type : "application/octet-stream";
        char chat[64];
        snprintf(chat, sizeof chat, "%s", m->channel_user_id);
        r = upload_file(b, method, chat, field, f.data, f.size, name, mime, &result, &wait_ms, why, sizeof why);
        hw_log_event(b->log, r == TG_OK ? HW_LOG_DEBUG : HW_LOG_WARN, "media_sent",
                     "seq=%llu method=%s bytes=%zu ok=%s", (unsigned long long)m->seq, method, f.size,
                     r == TG_OK ? "true" : "false");
        hw_att_file_free(&f);
    }
    json_t *mid = json_object_get(result, "message_id");
    if (json_is_integer(mid))
        snprintf(id, idlen, "%lld", (long long)json_integer_value(mid));
    json_decref(result);
    rc = step_outcome(r, wait_ms, d);
    if (rc != BR_OUTBOX_DELIVERED)
        snprintf(d->reason, sizeof d->reason, "attachment %zu of %zu: %s", i, n, why);
    return rc;
}

/* Whether step of m was sent already (a redelivery after a crash or a
 * lost Ack): then its upstream id is the delivery's when it has none. */
static bool step_done(tg_bridge *b, uint64_t seq, uint32_t step, br_delivery *d)
{
    char id[sizeof d->upstream_id];
    if (!b->sent || br_sent_get_step(b->sent, seq, step, id, sizeof id) != 1)
        return false;
    if (!d->upstream_id[0])
        snprintf(d->upstream_id, sizeof d->upstream_id, "%s", id);
    return true;
}

static void step_record(tg_bridge *b, uint64_t seq, uint32_t step, const char *id)
{
    char err[300], q[400];
    if (b->sent && br_sent_put_step(b->sent, seq, step, id, err, sizeof err) != 0)
        hw_log_event(b->log, HW_LOG_ERROR, "sent_step_failed", "seq=%llu step=%u error=%s",
                     (unsigned long long)seq, step, hw_log_quote(err, q, sizeof q));
}

/* Sends m: its text with sendMessage, then each attachment, in order. A
 * message with attachments records each step sent in the sent record, so
 * a redelivery sends only what is left. A permanent refusal (refusal.h:
 * 400, 403, 413) is BR_OUTBOX_FAILED with Telegram's description as the
 * reason; a 429 waits parameters.retry_after for this chat only; the
 * message_id of the first message sent is the upstream id. */
static int deliver(void *arg, const Helpwire__V1__OutboundMessage *m, br_delivery *d)
{
    tg_bridge *b = arg;
    bool steps = m->n_attachments > 0;
    if (m->text && *m->text && !(steps && step_done(b, m->seq, 0, d))) {
        json_t *body = json_object();
        json_object_set_new(body, "chat_id", chat_value(m->channel_user_id));
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
        int rc = step_outcome(r, wait_ms, d);
        if (rc != BR_OUTBOX_DELIVERED)
            return rc;
        if (steps)
            step_record(b, m->seq, 0, d->upstream_id);
    }
    for (size_t i = 0; i < m->n_attachments; i++) {
        if (step_done(b, m->seq, (uint32_t)i + 1, d))
            continue;
        char mine[64] = "";
        int rc = send_attachment(b, m, m->attachments[i], i + 1, m->n_attachments, d, mine, sizeof mine);
        if (rc != BR_OUTBOX_DELIVERED)
            return rc;
        if (!d->upstream_id[0])
            snprintf(d->upstream_id, sizeof d->upstream_id, "%s", mine);
        step_record(b, m->seq, (uint32_t)i + 1, mine);
    }
    return BR_OUTBOX_DELIVERED;
}

/* ------------------------------------------------------------- signals */

/* Typing indicators: the outbox's stream thread hands them here
 * (tg_on_signal must not block), one thread sends sendChatAction, once,
 * never retried. A chat already waiting is not queued twice; beyond
 * TG_SIGNALS_MAX waiting chats a signal is dropped (a courtesy). */
#define TG_SIGNALS_MAX 64

typedef struct tg_signals {
    tg_bridge *b;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char chats[TG_SIGNALS_MAX][32];
    int n;
    bool stop, started;
} tg_signals;

static void tg_on_signal(void *arg, const Helpwire__V1__OutboundMessage *m)
{
    tg_bridge *b = arg;
    tg_signals *s = b->signals;
    if (m->kind != HELPWIRE__V1__OUTBOUND_KIND__OUTBOUND_KIND_TYPING) {
        hw_log_event(b->log, HW_LOG_DEBUG, "signal_ignored", "kind=%d reason=\"Telegram bots send no read receipts\"",
                     (int)m->kind);
        return;
    }
    if (!s || !m->channel_user_id || !*m->channel_user_id || strlen(m->channel_user_id) >= sizeof s->chats[0])
        return;
    pthread_mutex_lock(&s->mu);
    bool queued = false;
    for (int i = 0; i < s->n && !queued; i++)
        queued = strcmp(s->chats[i], m->channel_user_id) == 0;
    if (!queued && s->n < TG_SIGNALS_MAX) {
        snprintf(s->chats[s->n++], sizeof s->chats[0], "%s", m->channel_user_id);
        pthread_cond_signal(&s->cv);
    } else if (!queued) {
        hw_log_event(b->log, HW_LOG_DEBUG, "signal_dropped", "reason=\"too many waiting\"");
    }
    pthread_mutex_unlock(&s->mu);
}

static void *signals_main(void *arg)
{
    tg_signals *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        if (s->n == 0) {
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        char chat[32];
        snprintf(chat, sizeof chat, "%s", s->chats[0]);
        memmove(s->chats[0], s->chats[1], (size_t)(s->n - 1) * sizeof s->chats[0]);
        s->n--;
        pthread_mutex_unlock(&s->mu);
        json_t *body = json_object();
        json_object_set_new(body, "chat_id", chat_value(chat));
        json_object_set_new(body, "action", json_string("typing"));
        int wait_ms = 0;
        int timeout = s->b->cfg->http_timeout_ms < 5000 ? s->b->cfg->http_timeout_ms : 5000;
        tg_result r = bot_call(s->b, "sendChatAction", body, timeout, 1, false, NULL, &wait_ms, NULL, 0);
        json_decref(body);
        hw_log_event(s->b->log, r == TG_OK ? HW_LOG_DEBUG : HW_LOG_INFO, "typing_sent", "chat=%s ok=%s", chat,
                     r == TG_OK ? "true" : "false");
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static int signals_start(tg_signals *s, tg_bridge *b)
{
    memset(s, 0, sizeof *s);
    s->b = b;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (pthread_create(&s->thread, NULL, signals_main, s) != 0)
        return -1;
    s->started = true;
    return 0;
}

/* Ends the thread; a signal handed over later waits in the queue for
 * nothing (the mutex and condition stay valid until main returns). */
static void signals_stop(tg_signals *s)
{
    if (!s->started)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    s->started = false;
}

/* ---------------------------------------------------------------- main */

static const br_bridge bridge = {PROG, "telegram", HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, true};

static const char about[] =
    "Bridges a Telegram bot to helpwired. Customer messages (long-polled with getUpdates, or taken by "
    "webhook) "
    "go to Router.Route; messages queued for Telegram in helpwired's outbox (answers, acknowledgements, "
    "agent "
    "replies, survey invitations) go out with sendMessage and are acknowledged once Telegram accepted them. "
    "Route's reply_text is not sent directly: it reaches the customer through the outbox. Photos, files, voice "
    "notes, videos, stickers and places are fetched from Telegram (within --max-media-bytes) and kept with the "
    "ticket; agents' files go out with sendPhoto, sendDocument and the like, and typing with sendChatAction. "
    "Exits cleanly on SIGTERM or SIGINT.";

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
    cfg.max_media_bytes = 20 << 20;
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
         "Directory for the persisted getUpdates offset (file telegram.offset), the spool of messages "
         "taken but not yet routed (telegram.spool), the dead letters (telegram.deadletter.jsonl) and the "
         "record of messages sent (telegram.sent.mdb); created if "
         "missing. Two bridges may share it during a rolling restart. Required."},
        {"poll-timeout-s", NULL, BR_OPT_INT, &cfg.poll_timeout_s, 0, 50, "S",
         "Long-poll timeout of getUpdates. Default 30."},
        {"http-timeout-ms", NULL, BR_OPT_INT, &cfg.http_timeout_ms, 100, 600000, "MS",
         "Timeout of each Bot API request (added to the long-poll timeout for getUpdates). Default 15000."},
        {"send-attempts", NULL, BR_OPT_INT, &cfg.send_attempts, 1, 100, "N",
         "Unused, accepted for old command lines: each sendMessage is one attempt, and its retries are "
         "scheduled per chat (retry_after honoured) up to --max-delivery-age-ms."},
        {"max-media-bytes", "TELEGRAM_MAX_MEDIA_BYTES", BR_OPT_INT, &cfg.max_media_bytes, 1, 1 << 30, "BYTES",
         "The largest file a customer sends that is fetched from Telegram and kept with the ticket; a "
         "larger one (or one Telegram will not hand out: the Bot API gives bots files of at most 20 MB) is "
         "routed as a notice naming it. Default 20971520 (20 MiB). helpwired's --attachment-max-bytes "
         "must allow as much."},
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
            "Messages taken but not yet routed, kept in the spool (<state-dir>/telegram.spool); beyond it "
            "webhook POSTs are answered 503 (Telegram delivers them again later) and polling leaves the "
            "updates at Telegram until there is room. Default 10000.",
            "The most message data the spool holds; beyond it webhook POSTs are answered 503 and polling "
            "waits. Default 67108864 (64 MiB).",
            "On SIGTERM, how long to keep routing spooled messages; what is left stays in the spool for the "
            "next start. Default 10000."),
    };
    const size_t n_opts = sizeof opts / sizeof opts[0];
    char err[512];
    br_runtime rt = {0};
    tg_bridge b;
    tg_signals signals;
    memset(&b, 0, sizeof b);
    memset(&signals, 0, sizeof signals);

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
    b.cfg = &cfg;
    b.log = rt.log;
    b.stop = rt.stop;
    b.rpc = rt.rpc;
    if (signals_start(&signals, &b) != 0) {
        fprintf(stderr, PROG ": cannot start the typing thread\n");
        goto out;
    }
    b.signals = &signals;
    rt.on_signal = tg_on_signal;
    rt.signal_arg = &b;
    if (br_runtime_open_sent(&rt, cfg.state_dir) != 0)
        goto out;
    b.sent = rt.sent; /* before deliver runs on the outbox's threads */
    if (br_runtime_subscribe(&rt, cfg.state_dir, deliver, &b) != 0)
        goto out;
    b.ob = rt.ob;
    char q[300];
    hw_log_event(rt.log, HW_LOG_INFO, "started", "mode=%s helpwire=%s tls=%s token=%s", cfg.mode,
                 hw_log_quote(cfg.common.helpwire, q, sizeof q), cfg.common.tls_ca ? "true" : "false",
                 cfg.common.token ? "set" : "unset");
    /* Both modes take updates into the spool; its drainer fetches their
     * files (tg_prepare) and routes them. */
    rt.prepare = tg_prepare;
    rt.prepare_done = tg_prepare_done;
    rt.prepare_arg = &b;
    if (br_runtime_spool(&rt, cfg.state_dir, &cfg.spool) != 0)
        goto out;
    b.drain = rt.drain;
    if (webhook) {
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
    signals_stop(&signals); /* before the log and curl go */
    br_runtime_finish(&rt, rc); /* the drainer routes on for up to --drain-timeout-ms */
    if (b.signals) {
        pthread_cond_destroy(&signals.cv);
        pthread_mutex_destroy(&signals.mu);
    }
    hw_client_secret_free(&b.bot_token);
    return rc;
}
