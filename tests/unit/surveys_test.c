/*
 * surveys_test: hw_surveys_create_in inside a real store write: the token
 * in the link is unguessable URL-safe base64 and only its SHA-256 finds the
 * survey; the survey copies the ticket's channel, queue, agent and number
 * and expires after the configured time; the invitation is queued on the
 * ticket's channel with the link, in the customer's language; SURVEY_SENT
 * is on the ticket's history; a failing create leaves nothing behind; the
 * latest survey is its customer's pending one until answered (once), and
 * not once expired or replaced. The RPCs (SubmitSurvey,
 * GetSurvey, GetSurveyStats) are covered by the integration test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "server/store/records.h"
#include "server/domain/surveys.h"
#include "tests/unit/store_test_util.h"

#define BASE "https://chat.example.com/survey/"

typedef struct fx {
    hw_test_store st; /* first: the store, its reader and arena */
    hw_app app;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    if (hw_test_store_open(&f->st, "surveys") != 0)
        return -1;
    f->app.store = f->st.s;
    f->app.settings.survey_base_url = BASE;
    f->app.settings.survey_ttl_ms = 7LL * 24 * 3600 * 1000;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    int rc = hw_test_store_close(&f->st);
    free(f);
    return rc;
}

static Helpwire__V1__Ticket ticket(void)
{
    Helpwire__V1__Ticket t = HELPWIRE__V1__TICKET__INIT;
    t.id = "t-1042";
    t.number = 1042;
    t.customer_id = "c-7";
    t.channel = HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM;
    t.subject = "Cannot log in";
    t.status = HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_CLOSED;
    t.queue = "technical";
    t.assignee_agent_id = "ag-anna";
    return t;
}

typedef struct {
    fx *f;
    const Helpwire__V1__Ticket *t;
    const char *user;
    int fail_after;
    char *id, *url;
    uint64_t seq;
} create_ctx;

static int create_fn(hw_store_txn *w, void *arg)
{
    create_ctx *c = arg;
    hw_effects fx;
    hw_effects_begin(&fx, c->f->st.a);
    int rc = hw_surveys_create_in(w, &c->f->app, c->t, c->user, c->f->st.a, &fx, &c->id, &c->url, &c->seq);
    if (rc == HW_OK && (fx.n_events != 1 ||
                        fx.events[0]->kind != HELPWIRE__V1__TICKET_EVENT_KIND__TICKET_EVENT_KIND_SURVEY_SENT))
        return HW_EINVALID; /* the SURVEY_SENT event must be kept for watchers */
    if (rc == HW_OK && fx.outbox_appended != 1u << c->t->channel)
        return HW_EINVALID; /* the invitation's channel must be woken */
    return rc != HW_OK ? rc : c->fail_after;
}

static const char *token_of(const char *url)
{
    assert_true(strncmp(url, BASE, strlen(BASE)) == 0);
    return url + strlen(BASE);
}

static void sha256(const char *s, unsigned char out[32])
{
    unsigned int len = 0;
    assert_int_equal(EVP_Digest(s, strlen(s), out, &len, EVP_sha256(), NULL), 1);
    assert_int_equal(len, 32);
}

static hw_store_txn *rd(fx *f)
{
    hw_store_txn *t;
    assert_int_equal(hw_store_read_begin(f->st.r, &t), HW_OK);
    return t;
}

static void create_stores_survey_found_only_by_token_hash(void **state)
{
    fx *f = *state;
    Helpwire__V1__Ticket t = ticket();
    create_ctx c = {.f = f, .t = &t, .user = "tg-555"};
    assert_int_equal(hw_store_write(f->st.s, create_fn, &c), HW_OK);
    assert_non_null(c.id);
    assert_true(strncmp(c.id, "sv-", 3) == 0);

    const char *token = token_of(c.url);
    assert_int_equal(strlen(token), 32); /* 24 random bytes, no padding */
    for (const char *p = token; *p; p++)
        assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p));

    unsigned char hash[32];
    sha256(token, hash);
    hw_store_txn *tx = rd(f);
    Helpwire__V1__Survey *sv = NULL;
    assert_int_equal(hw_store_survey_get_by_token(tx, hash, sizeof hash, f->st.a, &sv), HW_OK);
    assert_string_equal(sv->id, c.id);
    assert_string_equal(sv->ticket_id, "t-1042");
    assert_string_equal(sv->customer_id, "c-7");
    assert_int_equal(sv->channel, HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM);
    assert_string_equal(sv->queue, "technical");
    assert_string_equal(sv->agent_id, "ag-anna");
    assert_int_equal(sv->ticket_number, 1042);
    assert_int_equal(sv->rating, 0);
    assert_true(sv->sent_unix_ms > 1600000000000LL);
    assert_int_equal(sv->expires_unix_ms - sv->sent_unix_ms, f->app.settings.survey_ttl_ms);

    /* The token itself is not a key: hashing something else finds nothing,
     * and the raw token bytes are not the stored hash. */
    unsigned char other[32];
    sha256("not-the-token-at-all-xxxxxxxxxxxx", other);
    assert_int_equal(hw_store_survey_get_by_token(tx, other, sizeof other, f->st.a, &sv), HW_ENOTFOUND);
    assert_int_equal(hw_store_survey_get_by_token(tx, token, 32, f->st.a, &sv), HW_ENOTFOUND);
    hw_store_read_end(f->st.r);
}

static void create_queues_invitation_and_records_event(void **state)
{
    fx *f = *state;
    Helpwire__V1__Ticket t = ticket();
    create_ctx c = {.f = f, .t = &t, .user = "tg-555"};
    assert_int_equal(hw_store_write(f->st.s, create_fn, &c), HW_OK);
    assert_int_equal(c.seq, 1);

    hw_store_txn *tx = rd(f);
    Helpwire__V1__OutboundMessage *m = NULL;
    assert_int_equal(hw_store_outbox_get(tx, HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, c.seq, f->st.a, &m),
                     HW_OK);
    assert_int_equal(m->kind, HELPWIRE__V1__OUTBOUND_KIND__OUTBOUND_KIND_SURVEY_INVITATION);
    assert_string_equal(m->channel_user_id, "tg-555");
    assert_string_equal(m->ticket_id, "t-1042");
    assert_string_equal(m->customer_id, "c-7");
    assert_string_equal(m->survey_url, c.url);
    /* No customer record (no locale): the English text, which invites a
     * bare number as the answer (Route takes it) or the link. */
    char want[512];
    snprintf(want, sizeof want,
             "Reply with a number from 1 to 5 to rate our help (5 = excellent), or open: %s", c.url);
    assert_string_equal(m->text, want);

    hw_store_cursor cur = {0};
    Helpwire__V1__TicketEvent **evs = NULL;
    size_t n = 0;
    assert_int_equal(hw_store_ticket_event_list(tx, "t-1042", &cur, 10, f->st.a, &evs, &n), HW_OK);
    assert_int_equal(n, 1);
    assert_int_equal(evs[0]->kind, HELPWIRE__V1__TICKET_EVENT_KIND__TICKET_EVENT_KIND_SURVEY_SENT);
    assert_string_equal(evs[0]->actor, "system");
    assert_non_null(strstr(evs[0]->detail, c.id));
    hw_store_read_end(f->st.r);
}

static void two_surveys_get_different_tokens(void **state)
{
    fx *f = *state;
    Helpwire__V1__Ticket t = ticket();
    create_ctx a = {.f = f, .t = &t, .user = "tg-555"}, b = a;
    assert_int_equal(hw_store_write(f->st.s, create_fn, &a), HW_OK);
    assert_int_equal(hw_store_write(f->st.s, create_fn, &b), HW_OK);
    assert_string_not_equal(a.id, b.id);
    assert_string_not_equal(a.url, b.url);
    assert_int_equal(b.seq, a.seq + 1);
}

static void zero_ttl_means_no_expiry(void **state)
{
    fx *f = *state;
    f->app.settings.survey_ttl_ms = 0;
    Helpwire__V1__Ticket t = ticket();
    create_ctx c = {.f = f, .t = &t, .user = "tg-555"};
    assert_int_equal(hw_store_write(f->st.s, create_fn, &c), HW_OK);
    hw_store_txn *tx = rd(f);
    Helpwire__V1__Survey *sv = NULL;
    assert_int_equal(hw_store_survey_get(tx, c.id, f->st.a, &sv), HW_OK);
    assert_int_equal(sv->expires_unix_ms, 0);
    hw_store_read_end(f->st.r);
}

static void failed_close_leaves_no_survey_invitation_or_event(void **state)
{
    fx *f = *state;
    Helpwire__V1__Ticket t = ticket();
    create_ctx c = {.f = f, .t = &t, .user = "tg-555", .fail_after = HW_ECONFLICT};
    assert_int_equal(hw_store_write(f->st.s, create_fn, &c), HW_ECONFLICT);
    hw_store_txn *tx = rd(f);
    hw_store_counts counts;
    assert_int_equal(hw_store_counts_get(tx, &counts), HW_OK);
    assert_int_equal(counts.surveys, 0);
    assert_int_equal(counts.outbox_backlog, 0);
    hw_store_cursor cur = {0};
    Helpwire__V1__TicketEvent **evs = NULL;
    size_t n = 1;
    assert_int_equal(hw_store_ticket_event_list(tx, "t-1042", &cur, 10, f->st.a, &evs, &n), HW_OK);
    assert_int_equal(n, 0);
    hw_store_read_end(f->st.r);
}

static void create_refuses_ticket_without_channel_or_user(void **state)
{
    fx *f = *state;
    Helpwire__V1__Ticket t = ticket();
    create_ctx c = {.f = f, .t = &t, .user = ""};
    assert_int_equal(hw_store_write(f->st.s, create_fn, &c), HW_EINVALID);
    t.channel = HELPWIRE__V1__CHANNEL__CHANNEL_UNSPECIFIED;
    c.user = "tg-555";
    assert_int_equal(hw_store_write(f->st.s, create_fn, &c), HW_EINVALID);
}

typedef struct {
    const char *id, *locale;
} customer_ctx;

static int customer_fn(hw_store_txn *w, void *arg)
{
    customer_ctx *c = arg;
    Helpwire__V1__Customer cu = HELPWIRE__V1__CUSTOMER__INIT;
    cu.id = (char *)c->id;
    cu.name = "小王";
    cu.locale = (char *)c->locale;
    cu.version = 1;
    return hw_store_customer_put(w, &cu, HW_PUT_CREATE, 0);
}

static void invitation_is_in_a_chinese_customers_language(void **state)
{
    fx *f = *state;
    assert_int_equal(hw_store_write(f->st.s, customer_fn, &(customer_ctx){"c-7", "zh-CN"}), HW_OK);
    Helpwire__V1__Ticket t = ticket();
    create_ctx c = {.f = f, .t = &t, .user = "tg-555"};
    assert_int_equal(hw_store_write(f->st.s, create_fn, &c), HW_OK);
    hw_store_txn *tx = rd(f);
    Helpwire__V1__OutboundMessage *m = NULL;
    assert_int_equal(hw_store_outbox_get(tx, HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, c.seq, f->st.a, &m),
                     HW_OK);
    char want[512];
    snprintf(want, sizeof want, "请回复 1–5 为本次服务打分（5 为非常满意），或打开链接：%s", c.url);
    assert_string_equal(m->text, want);
    hw_store_read_end(f->st.r);
}

/* One step on the pending survey of a customer, in a write at now_ms. */
typedef struct {
    fx *f;
    const char *customer;
    Helpwire__V1__Channel channel;
    int64_t now_ms;
    const char *answer_id; /* answer this survey by id instead of the pending one */
    uint32_t rating;       /* 0: only look */
    char *pending_id;      /* out: the pending survey's id, or NULL */
    int pending_rc, answer_rc;
    size_t n_events;
} pending_ctx;

static int pending_fn(hw_store_txn *w, void *arg)
{
    pending_ctx *c = arg;
    hw_effects fx;
    hw_effects_begin(&fx, c->f->st.a);
    hw_effects_set_now(&fx, c->now_ms);
    Helpwire__V1__Survey *sv = NULL;
    c->pending_rc = hw_surveys_pending_in(w, c->customer, c->channel, c->now_ms, c->f->st.a, &sv);
    c->pending_id = c->pending_rc == HW_OK ? sv->id : NULL;
    c->answer_rc = HW_OK;
    if (c->answer_id) {
        int rc = hw_store_survey_get(w, c->answer_id, c->f->st.a, &sv);
        if (rc != HW_OK)
            return rc;
    }
    if (c->rating && sv)
        c->answer_rc = hw_surveys_answer_in(w, &fx, sv, c->rating, NULL, c->f->st.a);
    c->n_events = fx.n_events;
    return HW_OK;
}

static pending_ctx step(fx *f, const char *customer, int64_t now_ms, uint32_t rating)
{
    pending_ctx c = {.f = f,
                     .customer = customer,
                     .channel = HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM,
                     .now_ms = now_ms,
                     .rating = rating};
    assert_int_equal(hw_store_write(f->st.s, pending_fn, &c), HW_OK);
    return c;
}

static Helpwire__V1__Survey *stored(fx *f, const char *id)
{
    hw_store_txn *tx = rd(f);
    Helpwire__V1__Survey *sv = NULL;
    assert_int_equal(hw_store_survey_get(tx, id, f->st.a, &sv), HW_OK);
    hw_store_read_end(f->st.r);
    return sv;
}

static void latest_survey_is_pending_until_answered_once(void **state)
{
    fx *f = *state;
    Helpwire__V1__Ticket t = ticket();
    create_ctx c = {.f = f, .t = &t, .user = "tg-555"};
    assert_int_equal(hw_store_write(f->st.s, create_fn, &c), HW_OK);
    int64_t now = stored(f, c.id)->sent_unix_ms + 1000;

    /* Another customer, or the customer on another channel: nothing. */
    assert_int_equal(step(f, "c-8", now, 5).pending_rc, HW_ENOTFOUND);
    pending_ctx other = {.f = f,
                         .customer = "c-7",
                         .channel = HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP,
                         .now_ms = now,
                         .rating = 5};
    assert_int_equal(hw_store_write(f->st.s, pending_fn, &other), HW_OK);
    assert_int_equal(other.pending_rc, HW_ENOTFOUND);
    assert_int_equal(stored(f, c.id)->rating, 0);

    pending_ctx p = step(f, "c-7", now, 4);
    assert_int_equal(p.pending_rc, HW_OK);
    assert_string_equal(p.pending_id, c.id);
    assert_int_equal(p.answer_rc, HW_OK);
    assert_int_equal(p.n_events, 1); /* SURVEY_ANSWERED, as SubmitSurvey records it */
    Helpwire__V1__Survey *sv = stored(f, c.id);
    assert_int_equal(sv->rating, 4);
    assert_string_equal(sv->comment, "");
    assert_int_equal(sv->answered_unix_ms, now);

    /* Answered: no longer pending, and never answered twice. */
    assert_int_equal(step(f, "c-7", now + 1, 1).pending_rc, HW_ENOTFOUND);
    pending_ctx again = {.f = f,
                         .customer = "c-7",
                         .channel = HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM,
                         .now_ms = now + 2,
                         .answer_id = c.id,
                         .rating = 2};
    assert_int_equal(hw_store_write(f->st.s, pending_fn, &again), HW_OK);
    assert_int_equal(again.answer_rc, HW_EEXISTS);
    assert_int_equal(stored(f, c.id)->rating, 4);
}

static void expired_or_replaced_survey_is_not_pending(void **state)
{
    fx *f = *state;
    Helpwire__V1__Ticket t = ticket();
    create_ctx first = {.f = f, .t = &t, .user = "tg-555"}, second = first;
    assert_int_equal(hw_store_write(f->st.s, create_fn, &first), HW_OK);
    assert_int_equal(hw_store_write(f->st.s, create_fn, &second), HW_OK);
    Helpwire__V1__Survey *sv = stored(f, second.id);

    /* The newer survey is the pending one; answering the older one by its
     * link leaves it so. */
    pending_ctx old = {.f = f,
                       .customer = "c-7",
                       .channel = HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM,
                       .now_ms = sv->sent_unix_ms,
                       .answer_id = first.id,
                       .rating = 3};
    assert_int_equal(hw_store_write(f->st.s, pending_fn, &old), HW_OK);
    assert_string_equal(old.pending_id, second.id);
    assert_int_equal(old.answer_rc, HW_OK);
    assert_string_equal(step(f, "c-7", sv->sent_unix_ms, 0).pending_id, second.id);

    /* At its expiry it is no longer pending, and an answer is refused. */
    assert_int_equal(step(f, "c-7", sv->expires_unix_ms, 5).pending_rc, HW_ENOTFOUND);
    pending_ctx late = {.f = f,
                        .customer = "c-7",
                        .channel = HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM,
                        .now_ms = sv->expires_unix_ms,
                        .answer_id = second.id,
                        .rating = 5};
    assert_int_equal(hw_store_write(f->st.s, pending_fn, &late), HW_OK);
    assert_int_equal(late.answer_rc, HW_EPRECONDITION);
    assert_int_equal(stored(f, second.id)->rating, 0);
    /* A rating out of range is refused. */
    pending_ctx bad = late;
    bad.now_ms = sv->sent_unix_ms;
    bad.rating = 6;
    assert_int_equal(hw_store_write(f->st.s, pending_fn, &bad), HW_OK);
    assert_int_equal(bad.answer_rc, HW_EINVALID);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(create_stores_survey_found_only_by_token_hash),
        T(create_queues_invitation_and_records_event),
        T(two_surveys_get_different_tokens),
        T(zero_ttl_means_no_expiry),
        T(failed_close_leaves_no_survey_invitation_or_event),
        T(create_refuses_ticket_without_channel_or_user),
        T(invitation_is_in_a_chinese_customers_language),
        T(latest_survey_is_pending_until_answered_once),
        T(expired_or_replaced_survey_is_not_pending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
