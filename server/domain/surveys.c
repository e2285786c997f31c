/*
 * surveys: satisfaction surveys (see surveys.h for the contract).
 *
 * The link token is the only secret: 24 random bytes from getrandom(2)
 * (192 bits), written as URL-safe base64 without padding (32 characters).
 * Only its SHA-256 is stored (the store indexes surveys by that hash), so
 * a copy of the data file does not let anyone answer surveys; a lookup
 * hashes the presented token and finds the survey by the hash.
 *
 * Creating a survey happens inside the caller's write (CloseTicket), so
 * the survey, its outbox invitation and the SURVEY_SENT history event
 * commit together or not at all. The same write remembers the survey as
 * its customer's latest (a kv entry, customer id -> survey id), which is
 * how Route finds the survey a bare "5" answers without a token; answering
 * forgets the entry, and a newer survey replaces it. SubmitSurvey is its
 * own write and Route's rating is inside Route's: both answer through
 * hw_surveys_answer_in, whose once-only and expiry checks run on the
 * writer thread, so two answers racing for one survey cannot both succeed.
 *
 * GetSurveyStats scans the surveys sent in the range (the store's sent-time
 * index) and filters in memory: O(surveys in range), no stored aggregates,
 * so the figures are always exact. Its tally (hw_survey_tally) is also
 * each row of the Reports service's CSAT report.
 */
#include "server/domain/surveys.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/evp.h>

#include "server/domain/conversation.h"
#include "server/domain/outbox.h"
#include "server/domain/rpc.h"
#include "server/domain/watch.h"
#include "server/store/records.h"

#define TOKEN_BYTES 24
#define TOKEN_MIN_CHARS 22
#define TOKEN_MAX_CHARS 128
#define HASH_BYTES 32
#define MAX_COMMENT 2000
#define MAX_ID 64
/* kv namespace: customer id -> id of the latest survey sent to them, until
 * it is answered (hw_surveys_pending_in). */
#define LATEST_NS "survey-latest"

/* ------------------------------------------------------------- tokens */

/* Fills buf with len random bytes. Returns HW_OK or HW_EIO. */
static int random_bytes(unsigned char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom(buf + got, len - got, 0);
        if (n < 0)
            return HW_EIO;
        got += (size_t)n;
    }
    return HW_OK;
}

/* URL-safe base64 of raw without padding, into out (>= 4 * ceil(len/3) + 1). */
static void base64url(const unsigned char *raw, size_t len, char *out)
{
    int n = EVP_EncodeBlock((unsigned char *)out, raw, (int)len);
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = '\0';
    for (int i = 0; i < n; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
}

static int hash_token(const char *token, unsigned char hash[HASH_BYTES])
{
    unsigned int len = 0;
    if (EVP_Digest(token, strlen(token), hash, &len, EVP_sha256(), NULL) != 1 || len != HASH_BYTES)
        return HW_EIO;
    return HW_OK;
}

/* A token as we hand them out: 22..128 characters of URL-safe base64.
 * Fails the call naming the field otherwise. */
static bool check_token(hw_call *call, const char *token)
{
    size_t len = strlen(token);
    if (len == 0) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "token: required");
        return false;
    }
    bool ok = len >= TOKEN_MIN_CHARS && len <= TOKEN_MAX_CHARS;
    for (size_t i = 0; ok && i < len; i++) {
        char c = token[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
             c == '_';
    }
    if (!ok)
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
                     "token: expected %d to %d characters of URL-safe base64", TOKEN_MIN_CHARS,
                     TOKEN_MAX_CHARS);
    return ok;
}

static const char *channel_name(Helpwire__V1__Channel ch)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&helpwire__v1__channel__descriptor, ch);
    return v ? v->name : "CHANNEL_UNKNOWN";
}

/* ------------------------------------------------------------- create */

int hw_surveys_create_in(hw_store_txn *w, hw_app *app, const Helpwire__V1__Ticket *t,
                         const char *channel_user_id, hw_arena *a, hw_effects *fx, char **survey_id,
                         char **survey_url, uint64_t *outbox_seq)
{
    if (!t || !t->id || !t->id[0] || t->channel == HELPWIRE__V1__CHANNEL__CHANNEL_UNSPECIFIED ||
        !channel_user_id || !channel_user_id[0])
        return HW_EINVALID;
    unsigned char raw[TOKEN_BYTES], hash[HASH_BYTES];
    char token[(TOKEN_BYTES + 2) / 3 * 4 + 1];
    int rc = random_bytes(raw, sizeof raw);
    if (rc != HW_OK)
        return rc;
    base64url(raw, sizeof raw, token);
    rc = hash_token(token, hash);
    if (rc != HW_OK)
        return rc;

    int64_t now = hw_effects_now_ms(fx);
    const char *base = app->settings.survey_base_url ? app->settings.survey_base_url : "";
    char *id = hw_rpc_new_id(a, "sv-");
    char *url = hw_arena_printf(a, "%s%s", base, token);
    Helpwire__V1__Customer *cust = NULL;
    rc = t->customer_id && t->customer_id[0] ? hw_store_customer_get(w, t->customer_id, a, &cust)
                                             : HW_ENOTFOUND;
    if (rc != HW_OK && rc != HW_ENOTFOUND)
        return rc;
    /* In the conversation's language: a Chinese conversation that ends with
     * "OK" is still Chinese (conversation.h). */
    hw_conversation conv;
    rc = hw_conversation_scan(w, t->id, a, &conv);
    if (rc != HW_OK)
        return rc;
    const char *locale = hw_conversation_locale(&conv, cust);
    bool zh = strcmp(locale, "zh") == 0;
    char *text =
        zh ? hw_arena_printf(a, "请回复 1–5 为本次服务打分（5 为非常满意），或打开链接：%s", url ? url : "")
           : hw_arena_printf(a,
                             "Reply with a number from 1 to 5 to rate our help (5 = excellent), or open: %s",
                             url ? url : "");
    char *detail = hw_arena_printf(a, "survey %s sent on %s", id ? id : "", channel_name(t->channel));
    if (!id || !url || !text || !detail)
        return HW_ENOMEM;

    Helpwire__V1__Survey sv = HELPWIRE__V1__SURVEY__INIT;
    sv.id = id;
    sv.ticket_id = t->id;
    sv.customer_id = t->customer_id ? t->customer_id : "";
    sv.channel = t->channel;
    sv.queue = t->queue ? t->queue : "";
    sv.agent_id = t->assignee_agent_id ? t->assignee_agent_id : "";
    sv.sent_unix_ms = now;
    sv.expires_unix_ms = app->settings.survey_ttl_ms > 0 ? now + app->settings.survey_ttl_ms : 0;
    sv.ticket_number = t->number;
    rc = hw_store_survey_put(w, &sv, hash, sizeof hash, HW_PUT_CREATE);
    if (rc == HW_OK && sv.customer_id[0]) /* the customer's pending survey now */
        rc = hw_store_kv_put(w, LATEST_NS, sv.customer_id, strlen(sv.customer_id), id, strlen(id));
    if (rc != HW_OK)
        return rc;

    Helpwire__V1__OutboundMessage m = HELPWIRE__V1__OUTBOUND_MESSAGE__INIT;
    m.channel = t->channel;
    m.channel_user_id = (char *)channel_user_id;
    m.customer_id = sv.customer_id;
    m.ticket_id = t->id;
    m.kind = HELPWIRE__V1__OUTBOUND_KIND__OUTBOUND_KIND_SURVEY_INVITATION;
    m.text = text;
    m.survey_url = url;
    m.locale = (char *)locale;
    m.created_unix_ms = now;
    rc = hw_outbox_append_parts_in(w, fx, &m, NULL, NULL); /* split at the channel's limit */
    if (rc != HW_OK)
        return rc;

    rc = hw_watch_record(w, fx, t, HELPWIRE__V1__TICKET_EVENT_KIND__TICKET_EVENT_KIND_SURVEY_SENT, "system",
                         detail);
    if (rc != HW_OK)
        return rc;

    *survey_id = id;
    *survey_url = url;
    *outbox_seq = m.seq;
    return HW_OK;
}

/* ------------------------------------------------------------- answer */

/* Forgets that sv is the customer's pending survey, unless a newer one
 * took its place. */
static int forget_latest(hw_store_txn *w, const Helpwire__V1__Survey *sv)
{
    if (!sv->customer_id || !sv->customer_id[0])
        return HW_OK;
    void *v;
    size_t vn;
    int rc = hw_store_kv_get(w, LATEST_NS, sv->customer_id, strlen(sv->customer_id), hw_store_txn_arena(w),
                             &v, &vn);
    if (rc == HW_ENOTFOUND)
        return HW_OK;
    if (rc != HW_OK)
        return rc;
    if (vn != strlen(sv->id) || memcmp(v, sv->id, vn) != 0)
        return HW_OK;
    return hw_store_kv_delete(w, LATEST_NS, sv->customer_id, strlen(sv->customer_id));
}

int hw_surveys_answer_in(hw_store_txn *w, hw_effects *fx, Helpwire__V1__Survey *sv, uint32_t rating,
                         const char *comment, hw_arena *a)
{
    if (!sv || rating < 1 || rating > 5)
        return HW_EINVALID;
    if (!comment)
        comment = "";
    if (sv->rating != 0)
        return HW_EEXISTS;
    int64_t now = hw_effects_now_ms(fx);
    if (sv->expires_unix_ms != 0 && now >= sv->expires_unix_ms)
        return HW_EPRECONDITION;
    sv->rating = rating;
    sv->comment = (char *)comment;
    sv->answered_unix_ms = now;
    int rc = hw_store_survey_put(w, sv, NULL, 0, HW_PUT_REPLACE);
    if (rc == HW_OK)
        rc = forget_latest(w, sv);
    if (rc != HW_OK)
        return rc;
    const char *actor = sv->customer_id[0] ? hw_arena_printf(a, "customer:%s", sv->customer_id) : "system";
    const char *detail = hw_arena_printf(a, "rated %u/5%s", rating, comment[0] ? " with a comment" : "");
    if (!actor || !detail)
        return HW_ENOMEM;
    return hw_watch_record_id(w, fx, sv->ticket_id,
                              HELPWIRE__V1__TICKET_EVENT_KIND__TICKET_EVENT_KIND_SURVEY_ANSWERED, actor,
                              detail);
}

int hw_surveys_pending_in(hw_store_txn *w, const char *customer_id, Helpwire__V1__Channel channel,
                          int64_t now_ms, hw_arena *a, Helpwire__V1__Survey **out)
{
    *out = NULL;
    if (!customer_id || !customer_id[0])
        return HW_ENOTFOUND;
    void *v;
    size_t vn;
    int rc = hw_store_kv_get(w, LATEST_NS, customer_id, strlen(customer_id), a, &v, &vn);
    if (rc != HW_OK)
        return rc;
    char *id = hw_arena_alloc(a, vn + 1);
    if (!id)
        return HW_ENOMEM;
    memcpy(id, v, vn);
    id[vn] = '\0';
    Helpwire__V1__Survey *sv = NULL;
    rc = vn ? hw_store_survey_get(w, id, a, &sv) : HW_ENOTFOUND;
    if (rc != HW_OK && rc != HW_ENOTFOUND)
        return rc;
    bool pending = rc == HW_OK && sv->rating == 0 &&
                   (sv->expires_unix_ms == 0 || now_ms < sv->expires_unix_ms) &&
                   strcmp(sv->customer_id, customer_id) == 0;
    if (!pending) {
        /* Gone, answered or expired: the entry is of no more use. */
        rc = hw_store_kv_delete(w, LATEST_NS, customer_id, strlen(customer_id));
        return rc == HW_OK ? HW_ENOTFOUND : rc;
    }
    if (sv->channel != channel)
        return HW_ENOTFOUND; /* sent on another conversation of the customer */
    *out = sv;
    return HW_OK;
}

/* ------------------------------------------------------------- submit */

typedef struct {
    hw_wctx h;
    unsigned char hash[HASH_BYTES];
    uint32_t rating;
    const char *comment;
    Helpwire__V1__Survey *survey; /* the answered survey, in the call's arena */
} submit_ctx;

static int submit_fn(hw_store_txn *w, void *arg)
{
    submit_ctx *c = arg;
    Helpwire__V1__Survey *sv = NULL;
    /* The call's arena: the result must outlive this request's txn arena,
     * and the worker no longer touches the call's arena once it submitted.
     * The event outlives the transaction too (SURVEY_ANSWERED goes to
     * watchers after the commit): the call's arena is the effects' too. */
    hw_arena *a = hw_call_arena(c->h.call);
    int rc = hw_store_survey_get_by_token(w, c->hash, sizeof c->hash, a, &sv);
    if (rc == HW_ENOTFOUND)
        return hw_rpc_wfail(&c->h, rc, "no survey with this token");
    if (rc != HW_OK)
        return rc;
    rc = hw_surveys_answer_in(w, &c->h.fx, sv, c->rating, c->comment, a);
    if (rc == HW_EEXISTS)
        return hw_rpc_wfail(&c->h, HW_EEXISTS, "survey %s was already answered", sv->id);
    if (rc == HW_EPRECONDITION)
        return hw_rpc_wfail(&c->h, HW_EPRECONDITION, "survey %s expired at %lld (unix ms)", sv->id,
                            (long long)sv->expires_unix_ms);
    if (rc != HW_OK)
        return rc;
    c->survey = sv;
    return HW_OK;
}

static void submit_done(void *arg, int status)
{
    submit_ctx *c = arg;
    if (hw_rpc_write_failed(&c->h, status))
        return;
    hw_call_reply(c->h.call, &c->survey->base);
}

void hw_surveys_submit(hw_call *call, const ProtobufCMessage *request, void *app)
{
    const Helpwire__V1__SubmitSurveyRequest *req = (const void *)request;
    if (!check_token(call, req->token))
        return;
    if (req->rating < 1 || req->rating > 5) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "rating: must be 1 to 5, not %u", req->rating);
        return;
    }
    if (!hw_rpc_check_text(call, "comment", req->comment, 0, MAX_COMMENT))
        return;
    submit_ctx *c = hw_arena_calloc(hw_call_arena(call), 1, sizeof *c);
    if (!c) {
        hw_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of memory");
        return;
    }
    if (hash_token(req->token, c->hash) != HW_OK) {
        hw_call_fail(call, GRPC_STATUS_INTERNAL, "cannot hash the token");
        return;
    }
    c->h.call = call;
    c->h.app = app;
    c->rating = req->rating;
    c->comment = req->comment;
    hw_rpc_write(&c->h, submit_fn, submit_done);
}

/* ---------------------------------------------------------------- get */

void hw_surveys_get(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    hw_app *app = appv;
    const Helpwire__V1__GetSurveyRequest *req = (const void *)request;
    bool by_token = req->token[0] != '\0', by_id = req->survey_id[0] != '\0';
    if (by_token == by_id) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "token, survey_id: give exactly one of the two");
        return;
    }
    unsigned char hash[HASH_BYTES];
    if (by_token) {
        if (!check_token(call, req->token))
            return;
        if (hash_token(req->token, hash) != HW_OK) {
            hw_call_fail(call, GRPC_STATUS_INTERNAL, "cannot hash the token");
            return;
        }
    } else if (!hw_rpc_check_id(call, "survey_id", req->survey_id, MAX_ID, false)) {
        return;
    }
    hw_store_txn *t = hw_rpc_read(call, app);
    if (!t)
        return;
    Helpwire__V1__Survey *sv = NULL;
    hw_arena *a = hw_call_arena(call);
    int rc = by_token ? hw_store_survey_get_by_token(t, hash, sizeof hash, a, &sv)
                      : hw_store_survey_get(t, req->survey_id, a, &sv);
    hw_rpc_read_end(call, app);
    if (rc != HW_OK) {
        if (rc == HW_ENOTFOUND && by_token)
            hw_rpc_fail(call, rc, "no survey with this token");
        else if (rc == HW_ENOTFOUND)
            hw_rpc_fail(call, rc, "no survey with id %s", req->survey_id);
        else
            hw_rpc_fail(call, rc, "reading the survey failed: %s", hw_strerror(rc));
        return;
    }
    hw_call_reply(call, &sv->base);
}

/* -------------------------------------------------------------- stats */

void hw_survey_tally_add(hw_survey_tally *t, const Helpwire__V1__Survey *sv)
{
    t->sent++;
    if (sv->rating >= 1 && sv->rating <= 5) {
        t->answered++;
        t->rating_sum += sv->rating;
        t->dist[sv->rating - 1]++;
    }
}

void hw_survey_tally_merge(hw_survey_tally *into, const hw_survey_tally *from)
{
    into->sent += from->sent;
    into->answered += from->answered;
    into->rating_sum += from->rating_sum;
    for (int i = 0; i < 5; i++)
        into->dist[i] += from->dist[i];
}

double hw_survey_tally_response_rate(const hw_survey_tally *t)
{
    return t->sent ? (double)t->answered / (double)t->sent : 0;
}

double hw_survey_tally_csat(const hw_survey_tally *t)
{
    return t->answered ? (double)(t->dist[3] + t->dist[4]) / (double)t->answered : 0;
}

double hw_survey_tally_average(const hw_survey_tally *t)
{
    return t->answered ? (double)t->rating_sum / (double)t->answered : 0;
}

bool hw_survey_matches(const Helpwire__V1__Survey *sv, Helpwire__V1__Channel channel, const char *queue,
                       const char *agent_id)
{
    return !(channel && sv->channel != channel) && !(queue && queue[0] && strcmp(sv->queue, queue) != 0) &&
           !(agent_id && agent_id[0] && strcmp(sv->agent_id, agent_id) != 0);
}

typedef struct {
    const Helpwire__V1__GetSurveyStatsRequest *req;
    hw_survey_tally tally;
} stats_acc;

static int stats_add(void *arg, const Helpwire__V1__Survey *sv)
{
    stats_acc *s = arg;
    if (hw_survey_matches(sv, s->req->channel, s->req->queue, s->req->agent_id))
        hw_survey_tally_add(&s->tally, sv);
    return 0;
}

void hw_surveys_stats(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    hw_app *app = appv;
    const Helpwire__V1__GetSurveyStatsRequest *req = (const void *)request;
    if (req->from_unix_ms < 0) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "from_unix_ms: must not be negative");
        return;
    }
    if (req->to_unix_ms < 0 || (req->to_unix_ms != 0 && req->to_unix_ms < req->from_unix_ms)) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
                     "to_unix_ms: must be 0 (open) or not before from_unix_ms");
        return;
    }
    if (!hw_rpc_check_enum(call, "channel", &helpwire__v1__channel__descriptor, req->channel, true) ||
        !hw_rpc_check_id(call, "queue", req->queue, MAX_ID, true) ||
        !hw_rpc_check_id(call, "agent_id", req->agent_id, MAX_ID, true))
        return;
    /* foreach_sent resets its arena after each survey: never the call's. */
    hw_arena *scratch = hw_arena_create(1 << 14);
    if (!scratch) {
        hw_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of memory");
        return;
    }
    hw_store_txn *t = hw_rpc_read(call, app);
    if (!t) {
        hw_arena_destroy(scratch);
        return;
    }
    stats_acc acc = {.req = req};
    int rc = hw_store_survey_foreach_sent(t, req->from_unix_ms, req->to_unix_ms, scratch, stats_add, &acc);
    hw_rpc_read_end(call, app);
    hw_arena_destroy(scratch);
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, "reading surveys failed: %s", hw_strerror(rc));
        return;
    }
    Helpwire__V1__SurveyStats st = HELPWIRE__V1__SURVEY_STATS__INIT;
    st.sent = acc.tally.sent;
    st.answered = acc.tally.answered;
    st.response_rate = hw_survey_tally_response_rate(&acc.tally);
    st.csat = hw_survey_tally_csat(&acc.tally);
    st.average_rating = hw_survey_tally_average(&acc.tally);
    st.distribution = acc.tally.dist;
    st.n_distribution = 5;
    hw_call_reply(call, &st.base);
}
