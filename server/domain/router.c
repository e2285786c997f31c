/*
 * router: Route (see router.h). The search and classification run on the
 * worker (they need its searcher and tokenizer); everything that decides
 * and changes state runs in one write on the store's writer thread, where
 * writes are serialized, so two messages of one customer racing each other
 * cannot both open a ticket.
 *
 * The API takes texts up to MAX_TEXT bytes, the search a query of at most
 * HW_INDEX_MAX_QUERY: the classifier and the search see a prefix of the
 * text (query_len), the ticket and the outbox keep all of it. A customer
 * who writes a long message says what it is about near its start, and a
 * bounded query keeps Route's cost bounded whatever the text's length.
 *
 * Small talk (smalltalk.h) is told apart on the worker too, before the
 * search, which greetings, thanks, start commands and requests for a
 * person skip: they need no knowledge answer. A bare rating is searched
 * like any message, since only the write can tell whether a survey waits
 * for it (hw_surveys_pending_in); without one it routes as before. An open
 * ticket still takes every message, small talk included.
 *
 * The per-sender and new-customer limits (limits.h) are decided on the
 * worker after the dedupe look-up and before the search: a retry of a
 * routed message is answered whatever the limits say, and a refused
 * message costs neither a search nor the writer's time.
 */
#include "server/domain/router.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "helpwire/v1/outbox.pb-c.h"
#include "helpwire/v1/router.pb-c.h"
#include "server/domain/attachments.h"
#include "server/domain/classify.h"
#include "server/domain/conversation.h"
#include "server/domain/knowledge.h"
#include "server/domain/customers.h"
#include "server/domain/limits.h"
#include "server/domain/outbox.h"
#include "server/domain/rpc.h"
#include "server/domain/schedule.h"
#include "server/domain/smalltalk.h"
#include "server/domain/surveys.h"
#include "server/search/index.h"
#include "server/search/tokenize.h"
#include "server/store/records.h"
#include "server/domain/tickets.h"

#define MAX_TEXT 16384
#define MAX_ID 128
#define MAX_NAME 256
#define MAX_LOCALE 15
#define MAX_EMAIL 254
#define DEFAULT_ROUTE_HITS 3

#define ACTION(x) HELPWIRE__V1__ROUTE_ACTION__ROUTE_ACTION_##x

typedef struct {
    hw_wctx h;
    const Helpwire__V1__RouteRequest *req;
    const char *locale;
    const char *queue;
    hw_answer ans;
    const char *reply_locale; /* the language the reply is written in; NULL = locale */
    hw_smalltalk_kind talk; /* what the message is when it is no question */
    uint32_t rating;        /* talk == HW_SMALLTALK_RATING: 1..5 */
    Helpwire__V1__RouteReply reply;
    const uint8_t *packed; /* the reply as route_fn packed it for the dedupe record (arena), or NULL */
    size_t packed_len;
    bool duplicate;
    bool files; /* the message carries attachments: it always reaches a ticket */
} route_ctx;

/* The acknowledgement of a new ticket, in the customer's language; back,
 * when the ticket's queue is closed now, says when its team is back
 * (hw_schedule_back_text). */
static const char *ack_text(hw_arena *a, const char *locale, uint64_t number, const char *back)
{
    if (strncmp(locale, "zh", 2) == 0) {
        if (back)
            return hw_arena_printf(a, "您好，我们已收到您的消息并创建工单 #%llu。%s届时客服会在这里回复您。",
                                   (unsigned long long)number, back);
        return hw_arena_printf(a, "您好，我们已收到您的消息并创建工单 #%llu，客服会尽快在这里回复您。",
                               (unsigned long long)number);
    }
    if (back)
        return hw_arena_printf(a, "Thanks for your message. We opened ticket #%llu. %s An agent will reply here then.",
                               (unsigned long long)number, back);
    return hw_arena_printf(
        a, "Thanks for your message. We opened ticket #%llu and an agent will reply here soon.",
        (unsigned long long)number);
}

/* When the ticket's queue is closed now: when its team is back; else NULL. */
static const char *back_text(hw_store_txn *w, route_ctx *c, const Helpwire__V1__Ticket *t, hw_arena *a)
{
    Helpwire__V1__Skill *sk = NULL;
    if (!t->queue || !*t->queue || hw_store_skill_get(w, t->queue, a, &sk) != HW_OK)
        return NULL; /* no such skill (the fallback queue): always open */
    return hw_schedule_back_text(c->h.app, sk, hw_effects_now_ms(&c->h.fx), c->locale, a);
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r';
}

/* The length of the prefix of text[0..len) (valid UTF-8) that is searched
 * and classified: all of it when it fits in max bytes, else cut at a
 * character boundary, and at the last whitespace when one falls in the
 * second half of the room, so no word is cut in two. Never 0 for len > 0. */
static size_t query_len(const char *text, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t cut = max;
    while (cut > 0 && ((unsigned char)text[cut] & 0xC0) == 0x80)
        cut--; /* text[cut] continues a character: the cut would split it */
    size_t n = cut;
    while (n > max / 2 && !is_space(text[n]))
        n--;
    if (n > max / 2) /* text[n] is a space: end the query on the word before it */
        while (n > 0 && is_space(text[n - 1]))
            n--;
    else
        n = cut; /* no space in reach (Chinese, a long token): the character boundary */
    return n > 0 ? n : cut;
}

static void set_ticket(Helpwire__V1__RouteReply *r, const Helpwire__V1__Ticket *t)
{
    r->ticket_id = t->id;
    r->ticket_number = t->number;
    r->queue = t->queue;
    r->priority = t->priority;
    r->assignee_agent_id = t->assignee_agent_id;
}

/* Unpacks a remembered reply into the call's arena. */
static int load_duplicate(hw_store_txn *t, route_ctx *c, bool *found)
{
    hw_arena *a = hw_call_arena(c->h.call);
    void *bytes;
    size_t len;
    *found = false;
    int rc = hw_store_dedupe_get(t, c->req->channel, c->req->message_id, a, &bytes, &len);
    if (rc == HW_ENOTFOUND)
        return HW_OK;
    if (rc != HW_OK)
        return rc;
    Helpwire__V1__RouteReply *r = helpwire__v1__route_reply__unpack(hw_arena_allocator(a), len, bytes);
    if (!r)
        return HW_ECORRUPT;
    c->reply = *r;
    c->reply.duplicate = 1;
    *found = true;
    return HW_OK;
}

/* Queues the reply's text to the customer (in parts past the channel's
 * limit) and notes every part's sequence in the reply. */
static int send_reply(hw_store_txn *w, route_ctx *c, const Helpwire__V1__Customer *cust,
                      const char *ticket_id, Helpwire__V1__OutboundKind kind)
{
    Helpwire__V1__RouteReply *r = &c->reply;
    hw_outbox_parts sent = {0};
    hw_outbox_extra x = {.locale = hw_conversation_short_locale(c->reply_locale ? c->reply_locale : c->locale)};
    int rc = hw_outbox_send_parts_to_customer_ex_in(w, &c->h.fx, cust, c->req->channel, ticket_id, kind,
                                                    r->reply_text, &x, hw_call_arena(c->h.call), &sent);
    if (rc == HW_OK && sent.n > 0) {
        r->outbox_seq = sent.seqs[0];
        r->outbox_seqs = sent.seqs;
        r->n_outbox_seqs = sent.n;
    }
    return rc;
}

/* Whether a message of this kind says nothing of the customer's language
 * ("/start", "5", "⭐⭐⭐⭐"). */
static bool mute(hw_smalltalk_kind talk)
{
    return talk == HW_SMALLTALK_START || talk == HW_SMALLTALK_RATING;
}

/* Opens a ticket for the message and acknowledges it; reason (may be
 * empty) says why no answer was tried. */
static int open_ticket(hw_store_txn *w, route_ctx *c, const Helpwire__V1__Customer *cust, const char *reason)
{
    hw_arena *a = hw_call_arena(c->h.call);
    Helpwire__V1__RouteReply *r = &c->reply;
    hw_ticket_open o = {.customer = cust,
                        .channel = c->req->channel,
                        .text = c->req->text,
                        .queue = c->queue,
                        .actor = hw_arena_printf(a, "customer:%s", cust->id),
                        .attachments = c->req->attachments,
                        .n_attachments = c->req->n_attachments,
                        .channel_message_id = c->req->message_id};
    if (!*c->req->text && c->req->n_attachments > 0)
        o.subject = hw_attachments_subject(c->req->attachments[0], c->locale, a);
    const char *why = "";
    Helpwire__V1__Ticket *t;
    int rc = hw_tickets_open_in(w, &o, a, &c->h.fx, &t, &why);
    if (rc != HW_OK)
        return rc;
    r->action = ACTION(NEW_TICKET);
    r->priority_reason = (char *)why;
    r->reason = (char *)reason;
    r->reply_text = (char *)ack_text(a, c->locale, t->number, back_text(w, c, t, a));
    set_ticket(r, t);
    return send_reply(w, c, cust, t->id, HELPWIRE__V1__OUTBOUND_KIND__OUTBOUND_KIND_ACKNOWLEDGEMENT);
}

/* A reply that tried no knowledge answer: no hits, no candidate. */
static void clear_answer(Helpwire__V1__RouteReply *r)
{
    r->hits = NULL;
    r->n_hits = 0;
    r->confidence = 0;
    r->answer_source_kind = HELPWIRE__V1__DOC_KIND__DOC_KIND_UNSPECIFIED;
    r->answer_source_id = "";
}

/* Answers a message of a customer without an open ticket: small talk is
 * answered, a request for a person opens a ticket whatever the knowledge
 * says, a bare rating goes on the customer's pending survey (when there
 * is one; else it is routed as any other message), and the rest is an
 * auto-reply when the answer is confident, else a new ticket. */
static int route_no_ticket(hw_store_txn *w, route_ctx *c, const Helpwire__V1__Customer *cust)
{
    Helpwire__V1__RouteReply *r = &c->reply;
    hw_arena *a = hw_call_arena(c->h.call);
    /* "/start" and "⭐⭐⭐⭐" say nothing of the customer's language: unless
     * the channel told it, the customer's own is a better guess. */
    const char *talk_locale = c->locale;
    if (mute(c->talk) && !c->req->locale[0] && cust->locale && cust->locale[0])
        talk_locale = cust->locale;
    c->reply_locale = talk_locale;
    if (c->files) {
        /* A photo, a voice note, a place: for a person to see, never
         * answered from the knowledge base nor as small talk. */
        clear_answer(r);
        return open_ticket(w, c, cust, "attachments");
    }
    switch (c->talk) {
    case HW_SMALLTALK_GREETING:
    case HW_SMALLTALK_THANKS:
    case HW_SMALLTALK_START:
        clear_answer(r);
        r->action = ACTION(SMALL_TALK);
        r->reply_text = (char *)hw_smalltalk_reply(c->talk, talk_locale);
        r->priority_reason = "";
        r->reason = hw_arena_printf(a, "small-talk:%s", hw_smalltalk_name(c->talk));
        if (!r->reason)
            return HW_ENOMEM;
        return send_reply(w, c, cust, NULL, HELPWIRE__V1__OUTBOUND_KIND__OUTBOUND_KIND_AUTO_REPLY);
    case HW_SMALLTALK_HUMAN:
        clear_answer(r);
        return open_ticket(w, c, cust, "asked-for-human");
    case HW_SMALLTALK_RATING: {
        Helpwire__V1__Survey *sv;
        int rc = hw_surveys_pending_in(w, cust->id, c->req->channel, hw_effects_now_ms(&c->h.fx), a, &sv);
        if (rc == HW_ENOTFOUND)
            break; /* no survey waits for this customer: an ordinary message */
        if (rc == HW_OK)
            rc = hw_surveys_answer_in(w, &c->h.fx, sv, c->rating, "", a);
        if (rc != HW_OK)
            return rc;
        clear_answer(r);
        r->action = ACTION(SURVEY_ANSWERED);
        r->survey_id = sv->id;
        r->reply_text = (char *)hw_smalltalk_reply(c->talk, talk_locale);
        r->priority_reason = "";
        r->reason = "survey-rating";
        return send_reply(w, c, cust, NULL, HELPWIRE__V1__OUTBOUND_KIND__OUTBOUND_KIND_AUTO_REPLY);
    }
    default:
        break;
    }
    if (c->ans.transfer)
        return open_ticket(w, c, cust, "");
    r->action = ACTION(AUTO_REPLY);
    r->reply_text = (char *)c->ans.answer;
    r->priority_reason = "";
    return send_reply(w, c, cust, NULL, HELPWIRE__V1__OUTBOUND_KIND__OUTBOUND_KIND_AUTO_REPLY);
}

/* The email the customer left (RouteRequest.contact_email), kept when the
 * customer has none yet; an email already set is not replaced. */
static int set_contact_email(hw_store_txn *w, route_ctx *c, Helpwire__V1__Customer *cust)
{
    if (!*c->req->contact_email || (cust->email && *cust->email))
        return HW_OK;
    cust->email = c->req->contact_email;
    cust->version++;
    cust->updated_unix_ms = hw_effects_now_ms(&c->h.fx);
    return hw_store_customer_put(w, cust, HW_PUT_REPLACE, 0);
}

static int route_fn(hw_store_txn *w, void *arg)
{
    route_ctx *c = arg;
    const Helpwire__V1__RouteRequest *q = c->req;
    hw_arena *a = hw_call_arena(c->h.call);
    Helpwire__V1__RouteReply *r = &c->reply;
    helpwire__v1__route_reply__init(r);
    c->packed = NULL;
    bool dup;
    int rc = load_duplicate(w, c, &dup);
    if (rc != HW_OK || dup) {
        c->duplicate = dup;
        return rc;
    }
    c->duplicate = false;
    if ((rc = hw_attachments_resolve_in(w, &c->h, "attachments", q->attachments, q->n_attachments, a)) != HW_OK)
        return rc;

    Helpwire__V1__Customer *cust;
    bool created;
    /* A command, a rating or a file without words carries no language:
     * the guess from it is not remembered as the customer's. */
    const char *remember = *q->locale || (!mute(c->talk) && *q->text) ? c->locale : "";
    rc = hw_customers_resolve_in(w, q->channel, q->channel_user_id, q->display_name, remember,
                                 hw_effects_now_ms(&c->h.fx), a, &cust, &created);
    if (rc != HW_OK)
        return rc;
    if (!*q->locale && !*q->text && cust->locale && *cust->locale)
        c->locale = cust->locale; /* the words helpwired adds, in the customer's language */
    if ((rc = set_contact_email(w, c, cust)) != HW_OK)
        return rc;
    r->customer_id = cust->id;
    r->confidence = c->ans.confidence;
    size_t max_hits = c->h.app->settings.route_hits ? c->h.app->settings.route_hits : DEFAULT_ROUTE_HITS;
    size_t n_hits = c->ans.n_hits < max_hits ? c->ans.n_hits : max_hits;
    r->hits = hw_knowledge_convert_hits(a, c->ans.hits, n_hits);
    r->n_hits = r->hits ? n_hits : 0;
    r->answer_source_kind = (Helpwire__V1__DocKind)c->ans.source_kind;
    r->answer_source_id = (char *)(c->ans.source_id ? c->ans.source_id : "");

    Helpwire__V1__Ticket *t;
    rc = hw_tickets_find_open_in(w, cust->id, a, &t);
    if (rc == HW_OK) {
        /* The open ticket takes the message; its agent and watchers hear of it. */
        hw_message_extra x = {.attachments = q->attachments,
                              .n_attachments = q->n_attachments,
                              .channel_message_id = q->message_id};
        rc = hw_tickets_add_message_ex_in(w, t, HELPWIRE__V1__MESSAGE_KIND__MESSAGE_KIND_CUSTOMER,
                                          hw_arena_printf(a, "customer:%s", cust->id), q->text, &x, a,
                                          &c->h.fx, NULL, NULL);
        r->action = ACTION(APPENDED);
        r->reply_text = "";
        r->priority_reason = "";
        set_ticket(r, t);
    } else if (rc == HW_ENOTFOUND) {
        rc = route_no_ticket(w, c, cust);
    }
    if (rc != HW_OK)
        return rc;
    size_t len = helpwire__v1__route_reply__get_packed_size(r);
    uint8_t *bytes = hw_arena_alloc(a, len);
    if (!bytes)
        return HW_ENOMEM;
    helpwire__v1__route_reply__pack(r, bytes);
    rc = hw_store_dedupe_put(w, q->channel, q->message_id, bytes, len, hw_effects_now_ms(&c->h.fx));
    if (rc == HW_OK) { /* the reply goes out as remembered: packed once */
        c->packed = bytes;
        c->packed_len = len;
    }
    return rc;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Refuses the call when the sender, or the channel's new customers, are
 * over their limit: RESOURCE_EXHAUSTED, reason RATE_LIMITED, RetryInfo the
 * time until a token is back. is_new: the sender has no customer yet.
 * Returns true when the call may go on. */
static bool within_limits(hw_call *call, hw_app *app, const Helpwire__V1__RouteRequest *req, bool is_new)
{
    int64_t retry_ms = 0;
    hw_route_limit lim = hw_route_limits_check(app->route_limits, (int)req->channel, req->channel_user_id,
                                               is_new, mono_ms(), &retry_ms);
    if (lim == HW_ROUTE_LIMIT_OK)
        return true;
    hw_error_hint hint = {.reason = "RATE_LIMITED", .retry_delay_ms = retry_ms};
    if (lim == HW_ROUTE_LIMIT_SENDER)
        hw_call_fail_ex(call, GRPC_STATUS_RESOURCE_EXHAUSTED, &hint,
                        "too many messages from this sender: retry in %lld ms", (long long)retry_ms);
    else
        hw_call_fail_ex(call, GRPC_STATUS_RESOURCE_EXHAUSTED, &hint,
                        "too many new customers on this channel: retry in %lld ms", (long long)retry_ms);
    return false;
}

static void route_done(void *arg, int status)
{
    route_ctx *c = arg;
    if (hw_rpc_write_failed(&c->h, status))
        return;
    /* Packed and sent by the call's worker, not here on the writer; the
     * reply lives in the call's arena (route_ctx). */
    if (c->packed && !c->duplicate)
        hw_call_reply_packed(c->h.call, c->packed, c->packed_len);
    else
        hw_call_reply_kept(c->h.call, &c->reply.base);
}

void hw_router_route(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    hw_app *app = appv;
    const Helpwire__V1__RouteRequest *req = (const void *)request;
    if (!hw_rpc_check_enum(call, "channel", &helpwire__v1__channel__descriptor, req->channel, false) ||
        !hw_rpc_check_text(call, "channel_user_id", req->channel_user_id, 1, MAX_ID) ||
        !hw_rpc_check_text(call, "display_name", req->display_name, 0, MAX_NAME) ||
        !hw_rpc_check_text(call, "text", req->text, req->n_attachments ? 0 : 1, MAX_TEXT) ||
        !hw_rpc_check_text(call, "message_id", req->message_id, 1, MAX_ID) ||
        !hw_rpc_check_text(call, "locale", req->locale, 0, MAX_LOCALE) ||
        !hw_attachments_check(call, "attachments", req->attachments, req->n_attachments) ||
        !hw_rpc_check_text(call, "contact_email", req->contact_email, 0, MAX_EMAIL))
        return;
    if (*req->contact_email && !strchr(req->contact_email, '@')) {
        hw_call_fail_field(call, "contact_email", "contact_email: must be an email address (contain '@')");
        return;
    }
    route_ctx *c = hw_arena_calloc(hw_call_arena(call), 1, sizeof *c);
    if (!c) {
        hw_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of memory");
        return;
    }
    c->h.call = call;
    c->h.app = app;
    c->req = req;
    c->files = req->n_attachments > 0;
    c->locale = *req->locale ? req->locale : hw_classify_locale(req->text);
    hw_arena *a = hw_call_arena(call);

    /* A retry of a message already routed is answered from the store
     * without searching again. */
    hw_store_txn *t = hw_rpc_read(call, app);
    if (!t)
        return;
    bool dup = false;
    int rc = load_duplicate(t, c, &dup);
    bool is_new = false;
    if (rc == HW_OK && !dup && hw_route_limits_new_customers_on(app->route_limits)) {
        /* A sender without a customer yet counts against the channel's
         * new customers. Two first messages racing both count: the
         * limit is a bound, not a census. */
        Helpwire__V1__Customer *known;
        rc = hw_store_customer_lookup(t, req->channel, req->channel_user_id, a, &known);
        is_new = rc == HW_ENOTFOUND;
        if (is_new)
            rc = HW_OK;
    }
    hw_rpc_read_end(call, app);
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, "reading the store failed: %s", hw_strerror(rc));
        return;
    }
    if (dup) {
        hw_call_reply(call, &c->reply.base);
        return;
    }
    if (!within_limits(call, app, req, is_new))
        return;
    /* The searched prefix is tokenized once, for the classifier and the
     * search. */
    const hw_classify_model *model = hw_classify_skill_model(call, app);
    if (!model)
        return;
    hw_worker_ctx *wk = &app->workers[hw_call_worker(call)];
    hw_status st = {0};
    const hw_token *toks;
    size_t n_toks;
    size_t len = query_len(req->text, strlen(req->text), HW_INDEX_MAX_QUERY);
    if (len == 0) { /* a file without words: the default queue */
        toks = NULL;
        n_toks = 0;
    } else if ((rc = hw_tokenize(wk->tokenizer, req->text, len, &toks, &n_toks, &st)) != HW_OK) {
        hw_rpc_fail(call, rc, "text: %s", st.msg[0] ? st.msg : hw_strerror(rc));
        return;
    }
    double score;
    c->queue = hw_arena_strdup(a, hw_classify_tokens(model, toks, n_toks, &score));
    if (!c->queue) {
        hw_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of memory");
        return;
    }
    /* Small talk and requests for a person need no knowledge answer: no
     * search. A bare rating may (when no survey waits for it). */
    c->talk = c->files ? HW_SMALLTALK_NONE : hw_smalltalk_classify(req->text, strlen(req->text), &c->rating);
    if (len > 0 && (c->talk == HW_SMALLTALK_NONE || c->talk == HW_SMALLTALK_RATING)) {
        rc = hw_index_answer_tokens(wk->searcher, req->text, len, toks, n_toks, c->locale,
                                    app->settings.answer_threshold, a, &c->ans, &st);
        if (rc != HW_OK) {
            hw_rpc_fail(call, rc, "text: %s", st.msg[0] ? st.msg : hw_strerror(rc));
            return;
        }
    }
    hw_rpc_write(&c->h, route_fn, route_done);
}
