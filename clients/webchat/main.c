/*
 * webchat-bridge: the web chat, served by this process, <-> helpwired.
 *
 * HTTP (libmicrohttpd, a thread per connection):
 *   GET  /                      a page that embeds the widget, open
 *   GET  /widget.js, /widget.css  the embeddable widget (widget.h; built
 *                               into the binary from clients/webchat/widget/)
 *   GET  /api/widget-config     the operator's colour, titles, greetings,
 *                               upload limits and business hours
 *                               (--hours-skill, Agents.GetSchedule)
 *   POST /api/upload            a visitor's file (body; ?session_id=&name=
 *                               &client_message_id=): uploaded to
 *                               helpwired (Attachments), then into the
 *                               history and routed like a message
 *   GET  /api/attachments/<id>  a file of the visitor's own history
 *                               (?session_id=), from helpwired
 *   POST /api/session           {"name"} -> {"session_id"}
 *   POST /api/messages          {"session_id","text","client_message_id"
 *                               [,"contact_email"]}
 *                               -> Router.Route -> {"ok","action",...}; or,
 *                               helpwired unavailable, spooled -> 202
 *                               {"ok","queued":true,"code":"queued","notice"}
 *   GET  /api/history           the whole conversation, oldest first, a page
 *                               at a time (?session_id=&after=&limit=) ->
 *                               {"events":[...],"last_event_id","more"}
 *   GET  /api/events            Server-Sent Events of the session's replies
 *                               (?session_id=; resumes after Last-Event-ID
 *                               or ?after=; &mine=1: the visitor's own
 *                               messages too, for their other tabs)
 *   GET  /api/poll              the same as a long poll (?session_id=&after=
 *                               &wait_s=&mine=) -> {"events":[...],"last_event_id"}
 *   GET  /survey/<token>        the rating page
 *   GET  /api/survey?token=     Surveys.GetSurvey -> {"ticket_number",...}
 *   POST /api/survey            {"token","rating","comment"} -> SubmitSurvey
 *   GET  /healthz               "ok"
 *
 * A visitor's session id (random, 144 bits) is its channel_user_id. The
 * message id given to Route is "<session>:<client_message_id>", so a
 * browser retrying a POST is answered once (helpwired dedupes).
 *
 * Other sites: the widget runs on the pages of the sites that embed it;
 * a request with an Origin header is served only from --allowed-origins
 * (default any) or the bridge's own origin, and its answers carry the CORS
 * headers (OPTIONS answers the preflight). docs/webchat.md has the rest.
 *
 * Typing: a TYPING signal from the outbox (seq 0, never acknowledged) is
 * a transient event of the visitor's live stream (hub.h), never history.
 *
 * Errors: every one is {"error": a short line in the visitor's language,
 * "code": a stable code, "retry": whether sending again later may work,
 * and for a bad field "field": its name}, with an HTTP status the page can
 * act on (503 and Retry-After while helpwired cannot take messages);
 * visitor.h has the lines and the language rule. The technical cause
 * (helpwired's status and message) goes to the log as event=visitor_error,
 * never to the page. A send waits for helpwired up to --rpc-timeout-ms
 * (the client waits for a connection), so a restart is not an error.
 *
 * Intake: a visitor's message goes to the history first (history.h, so
 * it keeps its place before the replies to it), then to Route when
 * nothing is spooled (spooled messages go first, so a visitor's messages
 * keep their order). When helpwired cannot take it now (UNAVAILABLE,
 * RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, ABORTED) it is written to the
 * spool in --state-dir (spool.h, synced) and the page is answered 202 with
 * a notice in the visitor's language that it was received and will be
 * answered; the drainer (drain.h) routes it once helpwired is back, with
 * the bridges' retry policy and dead letters. Only a full spool reads as
 * "try again later" (503); a message refused for good is taken back out of
 * the history and answered with its line.
 *
 * History: every visitor message taken and every message delivered to the
 * visitor is an entry of the durable history under an increasing id, the
 * event id of the streams: a page loads the whole conversation with
 * /api/history on load, then streams what comes after the last id it saw
 * (SSE or poll), across page reloads and bridge restarts. The last
 * --max-events entries per visitor are kept.
 *
 * Outbound: Outbox.Subscribe(WEBCHAT); each message is written to its
 * visitor's history (once per outbox sequence, so a redelivery is stored
 * once), then live readers are woken, then it is acknowledged. Route's
 * reply_text is not returned to the page: it arrives as an event from the
 * outbox like every other message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <grpc/grpc.h>
#include <grpc/status.h>
#include <jansson.h>

#include "clients/lib/attachments.h"
#include "clients/lib/client.h"
#include "clients/lib/config.h"
#include "clients/lib/drain.h"
#include "clients/lib/httpd.h"
#include "clients/lib/outbox.h"
#include "clients/lib/route.h"
#include "clients/lib/runtime.h"
#include "clients/lib/secure.h"
#include "clients/lib/spool.h"
#include "clients/lib/stop.h"
#include "clients/webchat/files.h"
#include "clients/webchat/history.h"
#include "clients/webchat/hub.h"
#include "clients/webchat/pages.h"
#include "clients/webchat/visitor.h"
#include "clients/webchat/widget.h"
#include "helpwire/v1/agents.pb-c.h"
#include "helpwire/v1/surveys.pb-c.h"
#include "server/base/log.h"

#define PROG "webchat-bridge"
#define SSE_BATCH 16
#define HISTORY_PAGE_DEFAULT 100
#define HISTORY_PAGE_MAX 200
#define MAX_TEXT_BYTES 16384
/* The largest body of a request other than an upload. */
#define MAX_JSON_BODY_BYTES (64 * 1024)
/* The largest attachment the bridge fetches for a visitor (an agent's file
 * may be larger than what visitors may send). */
#define MAX_SHOWN_BYTES ((size_t)20 * 1024 * 1024)
/* How long the widget shows "typing" after a TYPING signal. */
#define TYPING_SHOW_MS 6000

typedef struct wc_config {
    br_common common;
    const char *listen;
    const char *state_dir;
    int max_sessions;
    int max_events;
    int heartbeat_ms;
    br_spool_settings spool;
    wc_widget_settings widget;
    const char *hours_skill; /* NULL: the widget says nothing of hours */
    int max_upload_bytes;
} wc_config;

typedef struct wc_bridge {
    const wc_config *cfg;
    const hw_log *log;
    hw_client *rpc;
    wc_hub *hub;
    wc_history *history; /* the conversations */
    br_drain *drain;     /* the runtime's: spools the visitor messages taken */
} wc_bridge;

/* ------------------------------------------------------------- helpers */

/* The answer when not even an error can be built (out of memory). */
static const char oom_body[] = "{\"error\":\"Sorry, something went wrong on our side. Please try again "
                               "later.\",\"code\":\"internal\",\"retry\":true}";

static void respond_json(br_httpd_request *r, unsigned status, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s) {
        br_httpd_respond(r, 500, "application/json", oom_body, sizeof oom_body - 1);
        return;
    }
    br_httpd_respond(r, status, "application/json", s, strlen(s));
    free(s);
}

/* Seconds a page should wait before sending again after a 503. */
#define RETRY_AFTER_S "5"

/* The visitor's language for r; text is their message when there is one. */
static wc_lang lang_of(br_httpd_request *r, const char *text)
{
    return wc_visitor_lang(br_httpd_header(r, "Accept-Language"), text);
}

/* Answers r with error e in lang (HTTP status http; field names the bad
 * field, or NULL) and logs the technical cause. */
static void respond_visitor(wc_bridge *b, br_httpd_request *r, unsigned http, wc_visitor_error e,
                            wc_lang lang, const char *field, const char *cause)
{
    char q[600];
    hw_log_event(b->log, http >= 500 ? HW_LOG_WARN : HW_LOG_INFO, "visitor_error",
                 "method=%s path=%s http=%u code=%s field=%s cause=%s", r->method,
                 hw_log_quote(r->url, q, 200), http, wc_visitor_code(e), field ? field : "-",
                 hw_log_quote(cause, q + 200, sizeof q - 200));
    json_t *j = json_pack("{s:s, s:s, s:b}", "error", wc_visitor_line(e, lang), "code", wc_visitor_code(e),
                          "retry", wc_visitor_retry(e));
    if (j && field)
        json_object_set_new(j, "field", json_string(field));
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    struct MHD_Response *resp =
        s ? MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE) : NULL;
    if (!resp) {
        free(s);
        br_httpd_respond(r, 500, "application/json", oom_body, sizeof oom_body - 1);
        return;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json; charset=utf-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (http == 503)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, RETRY_AFTER_S);
    br_httpd_queue(r, http, resp);
}

/* A request the page would not send: 400, naming the field. */
static void respond_bad(wc_bridge *b, br_httpd_request *r, const char *field, const char *cause)
{
    respond_visitor(b, r, 400, WC_VISITOR_BAD_REQUEST, lang_of(r, NULL), field, cause);
}

/* The bridge's own failure: 500. */
static void respond_internal(wc_bridge *b, br_httpd_request *r, const char *cause)
{
    respond_visitor(b, r, 500, WC_VISITOR_OUR_FAULT, lang_of(r, NULL), NULL, cause);
}

/* A helpwired call that failed with st; text is the visitor's message, if
 * any (for the language). */
static void respond_status(wc_bridge *b, br_httpd_request *r, const hw_client_status *st, const char *text)
{
    unsigned http;
    wc_visitor_error e = wc_visitor_from_status(st->code, &http);
    char cause[600];
    snprintf(cause, sizeof cause, "%s: %s", hw_client_status_name(st->code), st->message);
    respond_visitor(b, r, http, e, lang_of(r, text), NULL, cause);
}

static json_t *parse_body(wc_bridge *b, br_httpd_request *r)
{
    json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        respond_bad(b, r, NULL, "the body is not a JSON object");
        return NULL;
    }
    return j;
}

static const char *const action_names[] = {"unspecified", "auto_reply", "new_ticket", "appended"};
static const char *const kind_names[] = {
    "unspecified", "auto_reply", "acknowledgement", "agent_reply", "survey_invitation", "typing", "read"};

static const char *name_of(const char *const *names, size_t n, int v)
{
    return v >= 0 && (size_t)v < n ? names[v] : "unknown";
}

/* An address the visitor typed: 3 to 254 bytes, one @ with text on both
 * sides, no spaces or control characters (helpwired checks it again). */
static bool valid_email(const char *s)
{
    size_t n = strlen(s);
    const char *at = strchr(s, '@');
    if (n < 3 || n > 254 || !at || at == s || !at[1] || strchr(at + 1, '@'))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == 127)
            return false;
    return true;
}

static bool valid_client_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n >= 1 && n <= 64 &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") == n;
}

/* ------------------------------------------------------------ handlers */

static void page_chat(wc_bridge *b, br_httpd_request *r)
{
    br_httpd_respond(r, 200, "text/html; charset=utf-8", wc_chat_page, strlen(wc_chat_page));
}

static void page_survey(wc_bridge *b, br_httpd_request *r)
{
    br_httpd_respond(r, 200, "text/html; charset=utf-8", wc_survey_page, strlen(wc_survey_page));
}

/* widget.js and widget.css: cached a short while (a new bridge version
 * reaches visitors within minutes). */
static void widget_file(wc_bridge *b, br_httpd_request *r)
{
    const char *type;
    const unsigned char *body;
    size_t len;
    if (!wc_widget_asset(r->url, &type, &body, &len)) {
        respond_visitor(b, r, 404, WC_VISITOR_NO_PAGE, lang_of(r, NULL), NULL, "no such widget file");
        return;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        respond_internal(b, r, "out of memory");
        return;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "public, max-age=300");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    br_httpd_queue(r, 200, resp);
}

/* The business hours of --hours-skill now, from Agents.GetSchedule; not
 * known (the widget says nothing of hours) without the flag or when
 * helpwired does not answer. *reply holds the time zone's text: free it
 * after use. */
static wc_widget_hours hours_now(wc_bridge *b, ProtobufCMessage **reply)
{
    wc_widget_hours h = {0};
    *reply = NULL;
    if (!b->cfg->hours_skill)
        return h;
    Helpwire__V1__GetScheduleRequest req = HELPWIRE__V1__GET_SCHEDULE_REQUEST__INIT;
    req.skill = (char *)b->cfg->hours_skill;
    req.days = 7;
    hw_client_status st;
    if (hw_client_unary(b->rpc, "/helpwire.v1.Agents/GetSchedule", &req.base,
                        &helpwire__v1__get_schedule_reply__descriptor, reply, b->cfg->common.rpc_timeout_ms,
                        &st) != 0) {
        char q[300];
        hw_log_event(b->log, HW_LOG_WARN, "schedule_unavailable", "skill=%s code=%s message=%s",
                     b->cfg->hours_skill, hw_client_status_name(st.code),
                     hw_log_quote(st.message, q, sizeof q));
        return h;
    }
    const Helpwire__V1__GetScheduleReply *s = (const Helpwire__V1__GetScheduleReply *)*reply;
    h.known = true;
    h.open = s->always_open || s->open;
    h.next_open_unix_ms = s->next_open_unix_ms;
    h.time_zone = s->time_zone;
    return h;
}

static void api_widget_config(wc_bridge *b, br_httpd_request *r)
{
    ProtobufCMessage *reply = NULL;
    wc_widget_hours h = hours_now(b, &reply);
    respond_json(r, 200, wc_widget_config_json(&b->cfg->widget, &h));
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
}

/* A CORS preflight for the API (the origin was checked by the handler). */
static void api_preflight(wc_bridge *b, br_httpd_request *r)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        respond_internal(b, r, "out of memory");
        return;
    }
    MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    MHD_add_response_header(resp, "Access-Control-Allow-Headers", "Content-Type, Last-Event-ID");
    MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
    br_httpd_queue(r, 204, resp);
}

static void healthz(wc_bridge *b, br_httpd_request *r)
{
    br_httpd_respond(r, 200, "text/plain", "ok\n", 3);
}

static void api_session(wc_bridge *b, br_httpd_request *r)
{
    json_t *j = r->body_len ? parse_body(b, r) : json_object();
    if (!j)
        return;
    const char *name = json_string_value(json_object_get(j, "name"));
    char id[64];
    if (wc_hub_create_session(b->hub, name && strlen(name) <= 256 ? name : NULL, id, sizeof id) != 0) {
        json_decref(j);
        respond_internal(b, r, "cannot create a session (out of memory or randomness)");
        return;
    }
    json_decref(j);
    hw_log_event(b->log, HW_LOG_INFO, "session_created", NULL);
    respond_json(r, 200, json_pack("{s:s}", "session_id", id));
}

static void route_taken(wc_bridge *b, br_httpd_request *r, const br_inbound *in, uint64_t hid, bool fresh);

static void api_messages(wc_bridge *b, br_httpd_request *r)
{
    json_t *j = parse_body(b, r);
    if (!j)
        return;
    const char *sid = json_string_value(json_object_get(j, "session_id"));
    const char *text = json_string_value(json_object_get(j, "text"));
    const char *cmid = json_string_value(json_object_get(j, "client_message_id"));
    char name[257] = "", message_id[160], generated[32];
    if (!sid || wc_hub_touch(b->hub, sid, name, sizeof name) != 0) {
        respond_bad(b, r, "session_id",
                    "session_id: missing or malformed (create one with POST /api/session)");
        goto out;
    }
    if (!text || !*text) {
        respond_bad(b, r, "text", "text: required");
        goto out;
    }
    if (strlen(text) > MAX_TEXT_BYTES) {
        respond_visitor(b, r, 413, WC_VISITOR_TOO_LONG, lang_of(r, text), "text", "text: over 16384 bytes");
        goto out;
    }
    if (cmid && !valid_client_id(cmid)) {
        respond_bad(b, r, "client_message_id", "client_message_id: 1 to 64 characters of [A-Za-z0-9._-]");
        goto out;
    }
    const char *email = json_string_value(json_object_get(j, "contact_email"));
    if (email && !*email)
        email = NULL;
    if (email && !valid_email(email)) {
        respond_visitor(b, r, 400, WC_VISITOR_BAD_EMAIL, lang_of(r, text), "contact_email",
                        "contact_email: at most 254 bytes with an @, no spaces");
        goto out;
    }
    if (!cmid) {
        if (br_random_token(generated, sizeof generated, 12) != 0) {
            respond_internal(b, r, "no randomness");
            goto out;
        }
        cmid = generated;
    }
    snprintf(message_id, sizeof message_id, "%s:%s", sid, cmid);
    br_inbound in = {.channel = HELPWIRE__V1__CHANNEL__CHANNEL_WEBCHAT,
                     .channel_user_id = sid,
                     .display_name = name,
                     .text = text,
                     .message_id = message_id,
                     .contact_email = email};
    /* In the history first, so that it comes before the replies to it. */
    char key[200], err[600];
    snprintf(key, sizeof key, "msg:%s", message_id);
    json_t *entry = json_pack("{s:s, s:s, s:s, s:I}", "kind", "visitor", "text", text, "client_message_id",
                              cmid, "created_unix_ms", (json_int_t)br_route_now_ms());
    uint64_t hid = 0;
    int hrc = entry ? wc_history_append(b->history, sid, key, false, entry, &hid, err, sizeof err) : -1;
    json_decref(entry);
    if (hrc < 0) {
        respond_internal(b, r, entry ? err : "out of memory");
        goto out;
    }
    if (hrc == 0)
        wc_hub_notify(b->hub, sid);        /* the visitor's other tabs (?mine=1) */
    route_taken(b, r, &in, hid, hrc == 0); /* hrc 1: a retried POST of a message already taken */
out:
    json_decref(j);
}

/* Routes the visitor's message in (already in the history as entry hid;
 * fresh: not a retried POST) and answers the page: 200 when routed, 202
 * when spooled, the visitor's line when refused (the entry taken back). */
static void route_taken(wc_bridge *b, br_httpd_request *r, const br_inbound *in, uint64_t hid, bool fresh)
{
    char err[600];
    hw_client_status st = {0};
    const char *text = in->text;
    if (br_drain_idle(b->drain)) {
        Helpwire__V1__RouteReply *reply = NULL;
        br_route_result rr = br_route(b->rpc, b->log, in, b->cfg->common.rpc_timeout_ms, &reply, &st);
        if (rr == BR_ROUTE_OK) {
            respond_json(r, 200,
                         json_pack("{s:b, s:s, s:I, s:s, s:b, s:I}", "ok", 1, "action",
                                   name_of(action_names, 4, (int)reply->action), "ticket_number",
                                   (json_int_t)reply->ticket_number, "queue",
                                   reply->queue ? reply->queue : "", "duplicate", reply->duplicate,
                                   "history_id", (json_int_t)hid));
            protobuf_c_message_free_unpacked(&reply->base, NULL);
            return;
        }
        if (rr != BR_ROUTE_RETRY) {
            if (fresh && wc_history_remove(b->history, in->channel_user_id, hid, err, sizeof err) != 0)
                hw_log_event(b->log, HW_LOG_ERROR, "history_remove_failed", "error=\"%s\"", err);
            respond_status(b, r, &st, text);
            return;
        }
    }
    /* helpwired cannot take it now, or older messages wait: keep it. */
    int rc = br_drain_spool(b->drain, in, NULL, 1, err, sizeof err);
    if (rc != BR_SPOOL_OK) {
        if (fresh) {
            char err2[600];
            if (wc_history_remove(b->history, in->channel_user_id, hid, err2, sizeof err2) != 0)
                hw_log_event(b->log, HW_LOG_ERROR, "history_remove_failed", "error=\"%s\"", err2);
        }
        respond_visitor(b, r, 503, WC_VISITOR_TRY_LATER, lang_of(r, text), NULL, err);
        return;
    }
    char cause[700];
    snprintf(cause, sizeof cause, "%s: %s", st.code ? hw_client_status_name(st.code) : "waiting",
             st.code ? st.message : "older messages are spooled");
    char q[800];
    hw_log_event(b->log, HW_LOG_INFO, "spooled", "message_id=%s cause=%s",
                 hw_log_quote(in->message_id, q, 200), hw_log_quote(cause, q + 200, sizeof q - 200));
    wc_lang lang = lang_of(r, text);
    respond_json(r, 202,
                 json_pack("{s:b, s:b, s:s, s:s, s:I}", "ok", 1, "queued", 1, "code",
                           wc_visitor_notice_code(WC_VISITOR_QUEUED), "notice",
                           wc_visitor_notice_line(WC_VISITOR_QUEUED, lang), "history_id", (json_int_t)hid));
}

/* POST /api/upload?session_id=&client_message_id=&name=[&contact_email=]
 * with the file as the body and its type as Content-Type: the file goes
 * to helpwired (Attachments), then into the history and to Route as a
 * message without text. */
static void api_upload(wc_bridge *b, br_httpd_request *r)
{
    const char *sid = br_httpd_query(r, "session_id");
    const char *cmid = br_httpd_query(r, "client_message_id");
    const char *email = br_httpd_query(r, "contact_email");
    const char *type = br_httpd_header(r, "Content-Type");
    char name[257] = "", file_name[256], mime[129], message_id[160], generated[32], err[600];
    wc_lang lang = lang_of(r, NULL);
    if (!sid || wc_hub_touch(b->hub, sid, name, sizeof name) != 0) {
        respond_bad(b, r, "session_id",
                    "session_id: missing or malformed (create one with POST /api/session)");
        return;
    }
    if (cmid && !valid_client_id(cmid)) {
        respond_bad(b, r, "client_message_id", "client_message_id: 1 to 64 characters of [A-Za-z0-9._-]");
        return;
    }
    if (email && *email && !valid_email(email)) {
        respond_visitor(b, r, 400, WC_VISITOR_BAD_EMAIL, lang, "contact_email",
                        "contact_email: at most 254 bytes with an @, no spaces");
        return;
    }
    if (r->body_len == 0) {
        respond_visitor(b, r, 400, WC_VISITOR_FILE_EMPTY, lang, "file", "the body (the file) is empty");
        return;
    }
    if (r->body_len > (size_t)b->cfg->max_upload_bytes) {
        snprintf(err, sizeof err, "%zu bytes, over --max-upload-bytes %d", r->body_len,
                 b->cfg->max_upload_bytes);
        respond_visitor(b, r, 413, WC_VISITOR_FILE_TOO_BIG, lang, "file", err);
        return;
    }
    snprintf(mime, sizeof mime, "%.*s", (int)(type ? strcspn(type, "; \t") : 0), type ? type : "");
    if (!*mime)
        snprintf(mime, sizeof mime, "application/octet-stream");
    if (!wc_widget_type_allowed(&b->cfg->widget, mime)) {
        snprintf(err, sizeof err, "type %.128s is not in --upload-types", mime);
        respond_visitor(b, r, 415, WC_VISITOR_FILE_TYPE, lang, "file", err);
        return;
    }
    if (!wc_files_content_matches(mime, r->body, r->body_len)) {
        snprintf(err, sizeof err, "the bytes are not a %.128s", mime);
        respond_visitor(b, r, 415, WC_VISITOR_FILE_TYPE, lang, "file", err);
        return;
    }
    if (!cmid) {
        if (br_random_token(generated, sizeof generated, 12) != 0) {
            respond_internal(b, r, "no randomness");
            return;
        }
        cmid = generated;
    }
    wc_files_clean_name(br_httpd_query(r, "name"), file_name);
    Helpwire__V1__AttachmentKind kind = hw_att_kind_for_mime(mime);
    hw_att_ref ref;
    hw_client_status st = {0};
    if (hw_att_upload(b->rpc, r->body, r->body_len, kind, mime, file_name, &ref, &st) != 0) {
        respond_status(b, r, &st, NULL);
        return;
    }
    hw_log_event(b->log, HW_LOG_INFO, "upload", "attachment=%s size_bytes=%llu mime_type=%s", ref.id,
                 (unsigned long long)ref.size_bytes, mime);
    Helpwire__V1__Attachment att = HELPWIRE__V1__ATTACHMENT__INIT;
    att.id = ref.id;
    att.kind = kind;
    att.mime_type = mime;
    att.name = file_name;
    att.size_bytes = ref.size_bytes;
    att.sha256 = ref.sha256;
    Helpwire__V1__Attachment *atts[1] = {&att};
    json_t *files = wc_files_json(atts, 1);
    char *media = files ? json_dumps(files, JSON_COMPACT) : NULL;
    snprintf(message_id, sizeof message_id, "%s:%s", sid, cmid);
    char key[200];
    snprintf(key, sizeof key, "msg:%s", message_id);
    json_t *entry =
        files ? json_pack("{s:s, s:s, s:s, s:I, s:O}", "kind", "visitor", "text", "", "client_message_id",
                          cmid, "created_unix_ms", (json_int_t)br_route_now_ms(), "attachments", files)
              : NULL;
    json_decref(files);
    uint64_t hid = 0;
    int hrc =
        entry && media ? wc_history_append(b->history, sid, key, false, entry, &hid, err, sizeof err) : -1;
    json_decref(entry);
    if (hrc < 0) {
        respond_internal(b, r, entry && media ? err : "out of memory");
        free(media);
        return;
    }
    br_inbound in = {.channel = HELPWIRE__V1__CHANNEL__CHANNEL_WEBCHAT,
                     .channel_user_id = sid,
                     .display_name = name,
                     .text = "",
                     .message_id = message_id,
                     .media = media,
                     .attachments = atts,
                     .n_attachments = 1,
                     .contact_email = email && *email ? email : NULL};
    if (hrc == 0)
        wc_hub_notify(b->hub, sid); /* the visitor's other tabs (?mine=1) */
    route_taken(b, r, &in, hid, hrc == 0);
    free(media);
}

/* GET /api/attachments/<id>?session_id=: a file of the visitor's own
 * conversation (an agent's image, their own upload), from helpwired. */
static void api_attachment(wc_bridge *b, br_httpd_request *r)
{
    const char *sid = br_httpd_query(r, "session_id");
    const char *id = r->url + strlen("/api/attachments/");
    wc_lang lang = lang_of(r, NULL);
    if (!sid || wc_hub_touch(b->hub, sid, NULL, 0) != 0) {
        respond_bad(b, r, "session_id", "session_id: missing or malformed");
        return;
    }
    if (strlen(id) > 64 || strspn(id, "a-0123456789abcdef") != strlen(id) ||
        !wc_files_in_history(b->history, sid, id)) {
        respond_visitor(b, r, 404, WC_VISITOR_NO_FILE, lang, NULL,
                        "not an attachment of this visitor's history");
        return;
    }
    size_t max = (size_t)b->cfg->max_upload_bytes > MAX_SHOWN_BYTES ? (size_t)b->cfg->max_upload_bytes
                                                                    : MAX_SHOWN_BYTES;
    hw_att_file f;
    hw_client_status st = {0};
    if (hw_att_download(b->rpc, id, max, &f, &st) != 0) {
        unsigned http;
        wc_visitor_error e = wc_visitor_from_status(st.code, &http);
        if (st.code == GRPC_STATUS_NOT_FOUND)
            e = WC_VISITOR_NO_FILE;
        char cause[600];
        snprintf(cause, sizeof cause, "%s: %s", hw_client_status_name(st.code), st.message);
        respond_visitor(b, r, http, e, lang, NULL, cause);
        return;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(f.size, f.data, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        hw_att_file_free(&f);
        respond_internal(b, r, "out of memory");
        return;
    }
    f.data = NULL; /* the response's now */
    bool image = strncasecmp(f.mime_type, "image/", 6) == 0 && strcasecmp(f.mime_type, "image/svg+xml") != 0;
    char disposition[400];
    /* The name goes in quoted, without the characters that would end it. */
    char safe[257];
    size_t k = 0;
    for (const char *p = f.name; *p && k < sizeof safe - 1; p++)
        safe[k++] = *p == '"' || *p == '\\' || (unsigned char)*p < 0x20 ? '_' : *p;
    safe[k] = '\0';
    snprintf(disposition, sizeof disposition, "%s; filename=\"%s\"", image ? "inline" : "attachment",
             *safe ? safe : "file");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            *f.mime_type ? f.mime_type : "application/octet-stream");
    MHD_add_response_header(resp, "Content-Disposition", disposition);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Content-Security-Policy", "default-src 'none'; sandbox");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "private, max-age=3600");
    MHD_add_response_header(resp, "Cross-Origin-Resource-Policy", "cross-origin");
    hw_att_file_free(&f);
    br_httpd_queue(r, 200, resp);
}

/* The drainer's prepare step for a visitor's spooled file: its media is
 * the attachments' JSON (already uploaded), nothing to fetch. */
static int prepare_spooled(void *arg, const br_inbound *in, bool last_try, br_prepared *out, char *err,
                           size_t errlen)
{
    (void)arg;
    (void)last_try;
    Helpwire__V1__Attachment **a = NULL;
    size_t n = 0;
    if (wc_files_from_json(in->media, BR_ROUTE_MAX_ATTACHMENTS, &a, &n) != 0) {
        snprintf(err, errlen, "the spooled attachments do not parse: routed with the text alone");
        return BR_PREPARE_OK;
    }
    out->attachments = a;
    out->n_attachments = n;
    out->owner = a;
    return BR_PREPARE_OK;
}

static void prepare_done(void *arg, br_prepared *p)
{
    (void)arg;
    wc_files_free(p->attachments, p->n_attachments);
}

static uint64_t parse_u64(const char *s)
{
    return s ? strtoull(s, NULL, 10) : 0;
}

/* A typing indicator to pass on: who, and for how long more. */
typedef struct typing_state {
    bool now; /* a new one since the reader's last */
    char author[129];
    int left_ms;
} typing_state;

/* Waits up to timeout_ms for messages to session sid after history id
 * after: returns how many were copied into out (at most max; free each
 * .json), 0 on timeout, -1 when the session is gone or the bridge stops.
 * With typing_seen (the reader's last typing serial, may be NULL), a new
 * TYPING signal also ends the wait (0 entries, typing->now set). */
/* Whether the query parameter name is "1" or "true". */
static bool query_flag(br_httpd_request *r, const char *name)
{
    const char *v = br_httpd_query(r, name);
    return v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0);
}

static int wait_replies(wc_bridge *b, const char *sid, uint64_t after, bool mine, wc_entry *out, int max,
                        int timeout_ms, uint64_t *typing_seen, typing_state *typing)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    int64_t until = (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000 + timeout_ms;
    for (;;) {
        uint64_t version = 0;
        if (wc_hub_version(b->hub, sid, &version) != 0)
            return -1;
        int n = wc_history_list(b->history, sid, after, !mine, out, max, NULL);
        if (n != 0)
            return n; /* entries, or -1 (logged by the caller's answer) */
        if (typing_seen) {
            uint64_t serial = 0;
            if (wc_hub_typing_get(b->hub, sid, &serial, typing->author, sizeof typing->author,
                                  &typing->left_ms) == 0 &&
                serial != *typing_seen) {
                *typing_seen = serial;
                if (typing->left_ms > 0) {
                    typing->now = true;
                    return 0;
                }
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        int64_t left = until - ((int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000);
        if (left <= 0)
            return 0;
        if (wc_hub_wait(b->hub, sid, version, (int)left) < 0)
            return -1;
    }
}

/* The SSE body: a MHD content reader that blocks (thread per connection)
 * until events arrive, sending a comment line as heartbeat meanwhile. */
typedef struct sse_stream {
    wc_bridge *b;
    char sid[65];
    uint64_t last;
    uint64_t typing_seen; /* the last TYPING serial passed on */
    bool mine;            /* the visitor's own messages too (?mine=1) */
    char *pending;
    size_t len, off;
    bool started;
} sse_stream;

/* The SSE event of a typing indicator (malloc'd), or NULL. */
static char *typing_event(const typing_state *t)
{
    json_t *j = json_pack("{s:s, s:i}", "author_name", t->author, "duration_ms", t->left_ms);
    char *data = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!data)
        return NULL;
    size_t n = strlen(data) + 32;
    char *ev = malloc(n);
    if (ev)
        snprintf(ev, n, "event: typing\ndata: %s\n\n", data);
    free(data);
    return ev;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    sse_stream *s = cls;
    if (s->off >= s->len) {
        free(s->pending);
        s->pending = NULL;
        s->len = s->off = 0;
        if (!s->started) {
            s->started = true;
            s->pending = strdup("retry: 2000\n\n");
        } else {
            wc_entry ev[SSE_BATCH];
            typing_state typing = {0};
            int n = wait_replies(s->b, s->sid, s->last, s->mine, ev, SSE_BATCH, s->b->cfg->heartbeat_ms,
                                 &s->typing_seen, &typing);
            if (n < 0)
                return MHD_CONTENT_READER_END_OF_STREAM;
            if (n == 0 && typing.now) {
                s->pending = typing_event(&typing);
            } else if (n == 0) {
                s->pending = strdup(": keepalive\n\n");
            } else {
                size_t cap = 0;
                for (int i = 0; i < n; i++)
                    cap += strlen(ev[i].json) + 48;
                s->pending = malloc(cap + 1);
                size_t o = 0;
                for (int i = 0; i < n; i++) {
                    if (s->pending)
                        o += (size_t)snprintf(s->pending + o, cap + 1 - o, "id: %llu\ndata: %s\n\n",
                                              (unsigned long long)ev[i].id, ev[i].json);
                    s->last = ev[i].id;
                    free(ev[i].json);
                }
            }
        }
        if (!s->pending)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        s->len = strlen(s->pending);
    }
    size_t k = s->len - s->off < max ? s->len - s->off : max;
    memcpy(buf, s->pending + s->off, k);
    s->off += k;
    return (ssize_t)k;
}

static void sse_free(void *cls)
{
    sse_stream *s = cls;
    free(s->pending);
    free(s);
}

static void api_events(wc_bridge *b, br_httpd_request *r)
{
    const char *sid = br_httpd_query(r, "session_id");
    if (!sid || wc_hub_touch(b->hub, sid, NULL, 0) != 0) {
        respond_bad(b, r, "session_id", "session_id: missing or malformed");
        return;
    }
    sse_stream *s = calloc(1, sizeof *s);
    if (!s) {
        respond_internal(b, r, "out of memory");
        return;
    }
    s->b = b;
    snprintf(s->sid, sizeof s->sid, "%s", sid);
    const char *last_id = br_httpd_header(r, "Last-Event-ID");
    s->last = parse_u64(last_id ? last_id : br_httpd_query(r, "after"));
    s->mine = query_flag(r, "mine");
    int left_ms = 0;
    if (wc_hub_typing_get(b->hub, sid, &s->typing_seen, NULL, 0, &left_ms) == 0 && left_ms > 0)
        s->typing_seen--; /* an agent typing now is shown to a stream that just connected */
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, s, sse_free);
    if (!resp) {
        free(s);
        respond_internal(b, r, "out of memory");
        return;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    br_httpd_queue(r, 200, resp);
}

/* The n history entries as the JSON array the page reads; frees their
 * text. *last becomes the last one's id (unchanged when n is 0). */
static json_t *take_events(wc_entry *ev, int n, uint64_t *last)
{
    json_t *events = json_array();
    for (int i = 0; i < n; i++) {
        json_array_append_new(events, json_loads(ev[i].json, 0, NULL));
        *last = ev[i].id;
        free(ev[i].json);
    }
    return events;
}

static void api_poll(wc_bridge *b, br_httpd_request *r)
{
    const char *sid = br_httpd_query(r, "session_id");
    if (!sid || wc_hub_touch(b->hub, sid, NULL, 0) != 0) {
        respond_bad(b, r, "session_id", "session_id: missing or malformed");
        return;
    }
    uint64_t after = parse_u64(br_httpd_query(r, "after"));
    const char *w = br_httpd_query(r, "wait_s");
    int wait_s = w ? atoi(w) : 25;
    if (wait_s < 0)
        wait_s = 0;
    if (wait_s > 55)
        wait_s = 55;
    /* typing_seen: the serial of the last typing indicator this reader
     * showed (the reply's typing_serial), so each is shown once. */
    const char *ts = br_httpd_query(r, "typing_seen");
    uint64_t typing_seen = 0;
    int left_ms = 0;
    if (ts)
        typing_seen = parse_u64(ts);
    else if (wc_hub_typing_get(b->hub, sid, &typing_seen, NULL, 0, &left_ms) != 0)
        typing_seen = 0;
    typing_state typing = {0};
    wc_entry ev[SSE_BATCH];
    int n = wait_replies(b, sid, after, query_flag(r, "mine"), ev, SSE_BATCH, wait_s * 1000, &typing_seen,
                         &typing);
    if (n < 0) {
        respond_visitor(b, r, 503, WC_VISITOR_TRY_LATER, lang_of(r, NULL), NULL,
                        "the bridge is shutting down");
        return;
    }
    json_t *events = take_events(ev, n, &after);
    json_t *out = json_pack("{s:o, s:I, s:I}", "events", events, "last_event_id", (json_int_t)after,
                            "typing_serial", (json_int_t)typing_seen);
    if (out && typing.now)
        json_object_set_new(
            out, "typing",
            json_pack("{s:s, s:i}", "author_name", typing.author, "duration_ms", typing.left_ms));
    respond_json(r, 200, out);
}

static void api_history(wc_bridge *b, br_httpd_request *r)
{
    const char *sid = br_httpd_query(r, "session_id");
    if (!sid || wc_hub_touch(b->hub, sid, NULL, 0) != 0) {
        respond_bad(b, r, "session_id", "session_id: missing or malformed");
        return;
    }
    const char *after_s = br_httpd_query(r, "after");
    const char *limit_s = br_httpd_query(r, "limit");
    char *end = NULL;
    uint64_t after = 0;
    if (after_s) {
        after = strtoull(after_s, &end, 10);
        if (!*after_s || *end || *after_s == '-') {
            respond_bad(b, r, "after", "after: not an entry id");
            return;
        }
    }
    long limit = HISTORY_PAGE_DEFAULT;
    if (limit_s) {
        limit = strtol(limit_s, &end, 10);
        if (!*limit_s || *end || limit < 1 || limit > HISTORY_PAGE_MAX) {
            respond_bad(b, r, "limit", "limit: 1 to 200");
            return;
        }
    }
    wc_entry ev[HISTORY_PAGE_MAX];
    bool more = false;
    int n = wc_history_list(b->history, sid, after, false, ev, (int)limit, &more);
    if (n < 0) {
        respond_internal(b, r, "the history cannot be read");
        return;
    }
    json_t *events = take_events(ev, n, &after);
    respond_json(
        r, 200,
        json_pack("{s:o, s:I, s:b}", "events", events, "last_event_id", (json_int_t)after, "more", more));
}

static json_t *survey_json(const Helpwire__V1__Survey *s)
{
    return json_pack("{s:I, s:i, s:b, s:I}", "ticket_number", (json_int_t)s->ticket_number, "rating",
                     (int)s->rating, "answered", s->rating > 0, "expires_unix_ms",
                     (json_int_t)s->expires_unix_ms);
}

static void api_survey_get(wc_bridge *b, br_httpd_request *r)
{
    const char *token = br_httpd_query(r, "token");
    if (!token || !*token || strlen(token) > 256) {
        respond_visitor(b, r, 404, WC_VISITOR_LINK_INVALID, lang_of(r, NULL), "token", "token: required");
        return;
    }
    Helpwire__V1__GetSurveyRequest req = HELPWIRE__V1__GET_SURVEY_REQUEST__INIT;
    req.token = (char *)token;
    ProtobufCMessage *reply = NULL;
    hw_client_status st;
    if (hw_client_unary(b->rpc, "/helpwire.v1.Surveys/GetSurvey", &req.base,
                        &helpwire__v1__survey__descriptor, &reply, b->cfg->common.rpc_timeout_ms, &st) != 0) {
        respond_status(b, r, &st, NULL);
        return;
    }
    respond_json(r, 200, survey_json((Helpwire__V1__Survey *)reply));
    protobuf_c_message_free_unpacked(reply, NULL);
}

static void api_survey_post(wc_bridge *b, br_httpd_request *r)
{
    json_t *j = parse_body(b, r);
    if (!j)
        return;
    const char *token = json_string_value(json_object_get(j, "token"));
    json_t *rating = json_object_get(j, "rating");
    const char *comment = json_string_value(json_object_get(j, "comment"));
    wc_lang lang = lang_of(r, comment);
    if (!token || !*token || strlen(token) > 256) {
        respond_visitor(b, r, 404, WC_VISITOR_LINK_INVALID, lang, "token", "token: required");
    } else if (!json_is_integer(rating) || json_integer_value(rating) < 1 || json_integer_value(rating) > 5) {
        respond_visitor(b, r, 400, WC_VISITOR_BAD_RATING, lang, "rating", "rating: 1 to 5");
    } else if (comment && strlen(comment) > 2000) {
        respond_visitor(b, r, 413, WC_VISITOR_TOO_LONG, lang, "comment", "comment: over 2000 bytes");
    } else {
        Helpwire__V1__SubmitSurveyRequest req = HELPWIRE__V1__SUBMIT_SURVEY_REQUEST__INIT;
        req.token = (char *)token;
        req.rating = (uint32_t)json_integer_value(rating);
        req.comment = (char *)(comment ? comment : "");
        ProtobufCMessage *reply = NULL;
        hw_client_status st;
        if (hw_client_unary(b->rpc, "/helpwire.v1.Surveys/SubmitSurvey", &req.base,
                            &helpwire__v1__survey__descriptor, &reply, b->cfg->common.rpc_timeout_ms,
                            &st) != 0) {
            char q[300];
            hw_log_event(b->log, HW_LOG_INFO, "survey_refused", "code=%s message=%s",
                         hw_client_status_name(st.code), hw_log_quote(st.message, q, sizeof q));
            respond_status(b, r, &st, comment);
        } else {
            hw_log_event(b->log, HW_LOG_INFO, "survey_submitted", "rating=%d",
                         (int)((Helpwire__V1__Survey *)reply)->rating);
            json_t *out = survey_json((Helpwire__V1__Survey *)reply);
            json_object_set_new(out, "ok", json_true());
            respond_json(r, 200, out);
            protobuf_c_message_free_unpacked(reply, NULL);
        }
    }
    json_decref(j);
}

/* The route table: method, path, whether path is a prefix, handler. */
static const struct {
    const char *method;
    const char *path;
    bool prefix;
    void (*fn)(wc_bridge *, br_httpd_request *);
} routes[] = {
    {"GET", "/", false, page_chat},
    {"GET", "/widget.js", false, widget_file},
    {"GET", "/widget.css", false, widget_file},
    {"GET", "/api/widget-config", false, api_widget_config},
    {"POST", "/api/upload", false, api_upload},
    {"GET", "/api/attachments/", true, api_attachment},
    {"OPTIONS", "/api/", true, api_preflight},
    {"GET", "/survey/", true, page_survey},
    {"GET", "/healthz", false, healthz},
    {"POST", "/api/session", false, api_session},
    {"POST", "/api/messages", false, api_messages},
    {"GET", "/api/events", false, api_events},
    {"GET", "/api/poll", false, api_poll},
    {"GET", "/api/history", false, api_history},
    {"GET", "/api/survey", false, api_survey_get},
    {"POST", "/api/survey", false, api_survey_post},
};

static void handler(void *arg, br_httpd_request *r)
{
    wc_bridge *b = arg;
    bool path_known = false;
    /* Another site's page (the widget embedded there): only from the
     * allowed origins, and then its answers say so (CORS). */
    const char *origin = br_httpd_header(r, "Origin");
    if (origin) {
        if (!wc_widget_origin_allowed(b->cfg->widget.allowed_origins, origin, br_httpd_header(r, "Host"))) {
            char cause[300];
            snprintf(cause, sizeof cause, "origin %.200s is not in --allowed-origins", origin);
            respond_visitor(b, r, 403, WC_VISITOR_ORIGIN, lang_of(r, NULL), NULL, cause);
            return;
        }
        r->allow_origin = origin;
    }
    if (r->body_len > MAX_JSON_BODY_BYTES && strcmp(r->url, "/api/upload") != 0) {
        respond_visitor(b, r, 413, WC_VISITOR_TOO_LONG, lang_of(r, NULL), NULL, "body over 65536 bytes");
        return;
    }
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        size_t n = strlen(routes[i].path);
        bool match = routes[i].prefix ? strncmp(r->url, routes[i].path, n) == 0 && r->url[n] != '\0'
                                      : strcmp(r->url, routes[i].path) == 0;
        if (!match)
            continue;
        path_known = true;
        if (strcmp(r->method, routes[i].method) == 0 ||
            (strcmp(r->method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0)) {
            routes[i].fn(b, r);
            return;
        }
    }
    respond_visitor(b, r, path_known ? 405 : 404, WC_VISITOR_NO_PAGE, lang_of(r, NULL), NULL,
                    path_known ? "method not allowed" : "no such path");
}

/* ------------------------------------------------------------ outbound */

/* A courtesy signal from the outbox: TYPING shows the visitor that an
 * agent writes (a transient event of the live stream, never in the
 * history); READ has no meaning in the web chat. */
static void on_signal(void *arg, const Helpwire__V1__OutboundMessage *m)
{
    wc_bridge *b = arg;
    if (m->kind != HELPWIRE__V1__OUTBOUND_KIND__OUTBOUND_KIND_TYPING || !wc_hub_valid_id(m->channel_user_id))
        return;
    wc_hub_typing(b->hub, m->channel_user_id, m->author_name, TYPING_SHOW_MS);
}

/* Writes m to its visitor's history (once per outbox sequence), then
 * wakes the visitor's readers. */
static int deliver(void *arg, const Helpwire__V1__OutboundMessage *m, br_delivery *d)
{
    wc_bridge *b = arg;
    if (!wc_hub_valid_id(m->channel_user_id)) {
        snprintf(d->reason, sizeof d->reason, "not a web-chat session id");
        hw_log_event(b->log, HW_LOG_ERROR, "delivery_rejected",
                     "seq=%llu reason=\"not a web-chat session id\"", (unsigned long long)m->seq);
        return BR_OUTBOX_FAILED;
    }
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "kind", name_of(kind_names, 7, (int)m->kind),
                           "text", m->text ? m->text : "", "survey_url", m->survey_url ? m->survey_url : "",
                           "ticket_id", m->ticket_id ? m->ticket_id : "", "created_unix_ms",
                           (json_int_t)m->created_unix_ms, "seq", (json_int_t)m->seq);
    if (ev && m->author_name && *m->author_name)
        json_object_set_new(ev, "author_name", json_string(m->author_name));
    if (ev && m->locale && *m->locale)
        json_object_set_new(ev, "locale", json_string(m->locale));
    if (ev && m->n_attachments) {
        json_t *atts = wc_files_json(m->attachments, m->n_attachments);
        if (!atts) {
            json_decref(ev);
            ev = NULL;
        } else {
            json_object_set_new(ev, "attachments", atts);
        }
    }
    char key[40], err[600];
    snprintf(key, sizeof key, "seq:%llu", (unsigned long long)m->seq);
    uint64_t id = 0;
    int rc = ev ? wc_history_append(b->history, m->channel_user_id, key, true, ev, &id, err, sizeof err) : -1;
    json_decref(ev);
    if (rc < 0) {
        hw_log_event(b->log, HW_LOG_ERROR, "history_write_failed", "seq=%llu error=\"%s\"",
                     (unsigned long long)m->seq, ev ? err : "out of memory");
        snprintf(d->reason, sizeof d->reason, "history: %.400s", ev ? err : "out of memory");
        return BR_OUTBOX_RETRY;
    }
    wc_hub_notify(b->hub, m->channel_user_id);
    snprintf(d->upstream_id, sizeof d->upstream_id, "%llu", (unsigned long long)id);
    return BR_OUTBOX_DELIVERED;
}

/* ---------------------------------------------------------------- main */

static const br_bridge bridge = {PROG, "webchat", HELPWIRE__V1__CHANNEL__CHANNEL_WEBCHAT, false};

static const char about[] =
    "Serves the web chat (a chat page, its JSON API and live replies over Server-Sent Events or long poll, "
    "and "
    "the survey rating page) and bridges it to helpwired: visitors' messages go to Router.Route; messages "
    "queued for the web chat in helpwired's outbox are written to the visitor's durable history (with the "
    "visitor's own messages), streamed live, and acknowledged; a message helpwired cannot take now is kept "
    "in "
    "the bridge's durable spool and routed once it is back; Route's reply_text reaches the visitor through "
    "the outbox, "
    "never directly. Exits cleanly on SIGTERM or SIGINT.";

int main(int argc, char **argv)
{
    wc_config cfg;
    memset(&cfg, 0, sizeof cfg);
    br_common_defaults(&cfg.common);
    cfg.listen = "127.0.0.1:8080";
    cfg.max_sessions = 10000;
    cfg.max_events = 1000;
    br_spool_settings_defaults(&cfg.spool);
    cfg.heartbeat_ms = 15000;
    cfg.widget.allowed_origins = "*";
    cfg.widget.color = "#2563eb";
    cfg.widget.position = "right";
    cfg.widget.title_en = "Chat with us";
    cfg.widget.title_zh = "\xe5\x9c\xa8\xe7\xba\xbf\xe5\xae\xa2\xe6\x9c\x8d"; /* 在线客服 */
    cfg.widget.greeting_en = "Hi! Ask us anything: we usually answer within minutes.";
    cfg.widget.greeting_zh =
        "\xe6\x82\xa8\xe5\xa5\xbd\xef\xbc\x81\xe6\x9c\x89\xe4\xbb\x80\xe4\xb9\x88"
        "\xe5\x8f\xaf\xe4\xbb\xa5\xe5\xb8\xae\xe6\x82\xa8\xef\xbc\x9f"; /* 您好！有什么可以帮您？ */
    cfg.widget.away_greeting_en = "Hi! Leave us a message and we'll answer as soon as we're back.";
    /* 您好！请留言，我们回来后会尽快回复您。 */
    cfg.widget.away_greeting_zh =
        "\xe6\x82\xa8\xe5\xa5\xbd\xef\xbc\x81\xe8\xaf\xb7\xe7\x95\x99\xe8\xa8\x80\xef\xbc\x8c\xe6\x88\x91"
        "\xe4\xbb\xac\xe5\x9b\x9e\xe6\x9d\xa5\xe5\x90\x8e\xe4\xbc\x9a\xe5\xb0\xbd\xe5\xbf\xab\xe5\x9b\x9e"
        "\xe5\xa4\x8d\xe6\x82\xa8\xe3\x80\x82";
    cfg.widget.upload_types = "image/*,application/pdf,text/plain";
    cfg.max_upload_bytes = 10 * 1024 * 1024;
    const br_option opts[] = {
        BR_COMMON_OPTIONS(&cfg.common),
        {"listen", "WEBCHAT_LISTEN", BR_OPT_STRING, &cfg.listen, 0, 0, "ADDR",
         "Address of the chat server, host:port (port 0 picks one). Default 127.0.0.1:8080. helpwired's "
         "--survey-base-url should be http(s)://<this server>/survey/."},
        {"max-sessions", NULL, BR_OPT_INT, &cfg.max_sessions, 1, 10000000, "N",
         "Visitors kept in memory; the least recently active is dropped beyond it. Default 10000."},
        {"state-dir", "WEBCHAT_STATE_DIR", BR_OPT_REQUIRED, &cfg.state_dir, 0, 0, "DIR",
         "Directory for the visitors' history (webchat.history), the spool of messages taken while "
         "helpwired was unavailable (webchat.spool), the dead letters (webchat.deadletter.jsonl) and the "
         "record of messages delivered (webchat.sent.mdb), so a message helpwired streams again is not "
         "shown twice; created if missing. Required."},
        {"max-events", NULL, BR_OPT_INT, &cfg.max_events, 1, 100000, "N",
         "History entries kept per visitor (their messages and the replies), the oldest dropped first. "
         "Default 1000."},
        BR_SPOOL_OPTIONS(
            &cfg.spool,
            "Visitor messages taken while helpwired is unavailable, kept until routed; beyond it the page is "
            "asked to send again later (503). Default 10000.",
            "The most message data the spool holds. Default 67108864 (64 MiB).",
            "On SIGTERM, how long to keep routing spooled messages; what is left stays in the spool for the "
            "next start. Default 10000."),
        {"heartbeat-ms", NULL, BR_OPT_INT, &cfg.heartbeat_ms, 100, 600000, "MS",
         "Interval of SSE keepalive comments on an idle stream. Default 15000."},
        {"allowed-origins", "WEBCHAT_ALLOWED_ORIGINS", BR_OPT_STRING, &cfg.widget.allowed_origins, 0, 0,
         "LIST",
         "The sites that may embed the widget: * (any, the default) or a comma-separated list of "
         "scheme://host[:port], e.g. https://shop.example.com,https://www.example.com. A request from "
         "another "
         "site's page is refused (403)."},
        {"widget-color", NULL, BR_OPT_STRING, &cfg.widget.color, 0, 0, "#RRGGBB",
         "The widget's launcher and header colour. Default #2563eb."},
        {"widget-position", NULL, BR_OPT_STRING, &cfg.widget.position, 0, 0, "SIDE",
         "right or left: the corner of the launcher. Default right."},
        {"widget-title", NULL, BR_OPT_STRING, &cfg.widget.title_en, 0, 0, "TEXT",
         "The panel's title in English. Default \"Chat with us\"."},
        {"widget-title-zh", NULL, BR_OPT_STRING, &cfg.widget.title_zh, 0, 0, "TEXT",
         "The panel's title in Chinese. Default \"\xe5\x9c\xa8\xe7\xba\xbf\xe5\xae\xa2\xe6\x9c\x8d\"."},
        {"widget-greeting", NULL, BR_OPT_STRING, &cfg.widget.greeting_en, 0, 0, "TEXT",
         "The first line of every conversation, in English (not stored). Default \"Hi! Ask us anything: we "
         "usually answer within minutes.\""},
        {"widget-greeting-zh", NULL, BR_OPT_STRING, &cfg.widget.greeting_zh, 0, 0, "TEXT",
         "The same in Chinese."},
        {"widget-away-greeting", NULL, BR_OPT_STRING, &cfg.widget.away_greeting_en, 0, 0, "TEXT",
         "The first line instead of --widget-greeting outside business hours (--hours-skill). Default \"Hi! "
         "Leave us a message and we'll answer as soon as we're back.\""},
        {"widget-away-greeting-zh", NULL, BR_OPT_STRING, &cfg.widget.away_greeting_zh, 0, 0, "TEXT",
         "The same in Chinese."},
        {"hours-skill", NULL, BR_OPT_STRING, &cfg.hours_skill, 0, 0, "NAME",
         "The skill whose business hours the widget follows (Agents.GetSchedule): outside them it says when "
         "the team is back and asks for an email. Default: none (no hours shown)."},
        {"max-upload-bytes", NULL, BR_OPT_INT, &cfg.max_upload_bytes, 1, 1073741824, "N",
         "The largest file a visitor may send (413 beyond it). Default 10485760 (10 MiB); helpwired's "
         "--attachment-max-bytes must be at least as large."},
        {"upload-types", NULL, BR_OPT_STRING, &cfg.widget.upload_types, 0, 0, "LIST",
         "The file types a visitor may send, comma-separated MIME types, type/* for a family (415 "
         "otherwise). "
         "Default image/*,application/pdf,text/plain; empty allows every type."},
    };
    const size_t n_opts = sizeof opts / sizeof opts[0];
    br_runtime rt = {0};
    wc_bridge b;
    memset(&b, 0, sizeof b);

    int rc = br_config_main(opts, n_opts, argc, argv, PROG, about);
    if (rc >= 0)
        return rc;
    char err[600];
    cfg.widget.max_upload_bytes = (uint64_t)cfg.max_upload_bytes;
    if (wc_widget_check(&cfg.widget, err, sizeof err) != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        return 2;
    }
    if ((rc = br_runtime_start(&rt, &bridge, &cfg.common)) != 0)
        goto out;
    rc = 1;
    b.hub = wc_hub_create((size_t)cfg.max_sessions);
    if (!b.hub) {
        fprintf(stderr, PROG ": out of memory\n");
        goto out;
    }
    b.cfg = &cfg;
    b.log = rt.log;
    b.rpc = rt.rpc;
    if (wc_history_open(&b.history, cfg.state_dir, (size_t)cfg.max_events, err, sizeof err) != 0) {
        fprintf(stderr, PROG ": --state-dir: %s\n", err);
        goto out;
    }
    rt.prepare = prepare_spooled;
    rt.prepare_done = prepare_done;
    rt.prepare_arg = &b;
    if (br_runtime_inbound(&rt, cfg.state_dir) != 0 || br_runtime_spool(&rt, cfg.state_dir, &cfg.spool) != 0)
        goto out;
    b.drain = rt.drain;
    rt.on_signal = on_signal;
    rt.signal_arg = &b;
    if (br_runtime_subscribe(&rt, cfg.state_dir, deliver, &b) != 0 ||
        br_runtime_listen(&rt, cfg.listen, (size_t)cfg.max_upload_bytes + MAX_JSON_BODY_BYTES, handler, &b) !=
            0)
        goto out;
    br_runtime_serve(&rt, cfg.listen);
    rc = 0;
out:
    br_runtime_quiesce(&rt);
    if (b.hub)
        wc_hub_close(b.hub); /* ends live streams so their threads can finish */
    /* The drainer (routing on for up to --drain-timeout-ms) and the outbox
     * thread, which writes the history, end here. */
    br_runtime_finish(&rt, rc);
    wc_history_close(b.history);
    wc_hub_destroy(b.hub);
    return rc;
}
