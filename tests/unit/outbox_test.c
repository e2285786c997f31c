/*
 * outbox_test: hw_outbox_append_in on a real store (sequence assignment,
 * defaults, refusal of incomplete messages, a rolled-back append leaving
 * nothing behind), the channel limits and hw_outbox_append_parts_in (a
 * long text queued as ordered parts), and the hub's lifecycle (create,
 * wake with nobody subscribed, destroy). Streaming to subscribers needs the gRPC server and
 * is covered by tests/integration/outbox_surveys_test.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/domain/outbox.h"
#include "server/store/records.h"
#include "tests/unit/text_util.h"
#include "tests/unit/store_test_util.h"

typedef hw_test_store fx;

static int setup(void **state)
{
    return hw_test_store_setup(state, "outbox");
}

static int teardown(void **state)
{
    return hw_test_store_teardown(state);
}

static Helpwire__V1__OutboundMessage message(Helpwire__V1__Channel ch, const char *user, const char *text)
{
    Helpwire__V1__OutboundMessage m = HELPWIRE__V1__OUTBOUND_MESSAGE__INIT;
    m.channel = ch;
    m.channel_user_id = (char *)user;
    m.customer_id = "c-1";
    m.kind = HELPWIRE__V1__OUTBOUND_KIND__OUTBOUND_KIND_AGENT_REPLY;
    m.text = (char *)text;
    return m;
}

typedef struct {
    Helpwire__V1__OutboundMessage *msgs;
    size_t n;
    int fail_after; /* non-zero: return this code after appending */
    int rc;         /* the first append's result */
} append_ctx;

static int append_fn(hw_store_txn *w, void *arg)
{
    append_ctx *c = arg;
    hw_effects fx;
    hw_effects_begin(&fx, NULL); /* records channel bits only */
    for (size_t i = 0; i < c->n; i++) {
        int rc = hw_outbox_append_in(w, &fx, &c->msgs[i]);
        if (i == 0)
            c->rc = rc;
        if (rc != HW_OK)
            return rc;
    }
    return c->fail_after;
}

static Helpwire__V1__OutboundMessage **list(fx *f, Helpwire__V1__Channel ch, size_t *n)
{
    hw_store_txn *t;
    Helpwire__V1__OutboundMessage **out = NULL;
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    assert_int_equal(hw_store_outbox_list(t, ch, 0, 100, f->a, &out, n), HW_OK);
    hw_store_read_end(f->r);
    return out;
}

static void append_assigns_sequences_per_channel_and_defaults(void **state)
{
    fx *f = *state;
    Helpwire__V1__OutboundMessage ms[3] = {
        message(HELPWIRE__V1__CHANNEL__CHANNEL_WEBCHAT, "u-1", "first"),
        message(HELPWIRE__V1__CHANNEL__CHANNEL_WEBCHAT, "u-2", "second"),
        message(HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, "42", "other channel"),
    };
    ms[1].created_unix_ms = 1234;
    ms[1].attempt = 7; /* reset by append */
    ms[2].seq = 99;    /* ignored: the queue assigns */
    append_ctx c = {.msgs = ms, .n = 3};
    assert_int_equal(hw_store_write(f->s, append_fn, &c), HW_OK);
    assert_int_equal(ms[0].seq, 1);
    assert_int_equal(ms[1].seq, 2);
    assert_int_equal(ms[2].seq, 1);
    assert_true(ms[0].created_unix_ms > 1600000000000LL);
    assert_int_equal(ms[1].created_unix_ms, 1234);

    size_t n = 0;
    Helpwire__V1__OutboundMessage **out = list(f, HELPWIRE__V1__CHANNEL__CHANNEL_WEBCHAT, &n);
    assert_int_equal(n, 2);
    assert_string_equal(out[0]->text, "first");
    assert_string_equal(out[1]->text, "second");
    assert_string_equal(out[1]->channel_user_id, "u-2");
    assert_int_equal(out[1]->attempt, 0);
    assert_int_equal(out[1]->created_unix_ms, 1234);
    out = list(f, HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, &n);
    assert_int_equal(n, 1);
    assert_int_equal(out[0]->seq, 1);
}

static void append_refuses_incomplete_messages(void **state)
{
    fx *f = *state;
    Helpwire__V1__OutboundMessage bad[4] = {
        message(HELPWIRE__V1__CHANNEL__CHANNEL_UNSPECIFIED, "u-1", "no channel"),
        message(HELPWIRE__V1__CHANNEL__CHANNEL_WEBCHAT, "", "no user"),
        message(HELPWIRE__V1__CHANNEL__CHANNEL_WEBCHAT, "u-1", ""),
        message(HELPWIRE__V1__CHANNEL__CHANNEL_WEBCHAT, "u-1", "no kind"),
    };
    bad[3].kind = HELPWIRE__V1__OUTBOUND_KIND__OUTBOUND_KIND_UNSPECIFIED;
    for (size_t i = 0; i < 4; i++) {
        append_ctx c = {.msgs = &bad[i], .n = 1};
        assert_int_equal(hw_store_write(f->s, append_fn, &c), HW_EINVALID);
        assert_int_equal(c.rc, HW_EINVALID);
    }
    size_t n = 1;
    list(f, HELPWIRE__V1__CHANNEL__CHANNEL_WEBCHAT, &n);
    assert_int_equal(n, 0);
}

static void rolled_back_append_leaves_nothing_and_rerun_gets_fresh_sequence(void **state)
{
    fx *f = *state;
    Helpwire__V1__OutboundMessage m = message(HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP, "+4915", "hello");
    append_ctx c = {.msgs = &m, .n = 1, .fail_after = HW_EPRECONDITION};
    assert_int_equal(hw_store_write(f->s, append_fn, &c), HW_EPRECONDITION);
    size_t n = 1;
    list(f, HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP, &n);
    assert_int_equal(n, 0);
    /* The same message struct again (its seq field still holds the
     * rolled-back number): it is appended, not refused as a duplicate. */
    c.fail_after = HW_OK;
    assert_int_equal(hw_store_write(f->s, append_fn, &c), HW_OK);
    Helpwire__V1__OutboundMessage **out = list(f, HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP, &n);
    assert_int_equal(n, 1);
    assert_int_equal(out[0]->seq, m.seq);
}

/* ------------------------------------------------------ channel limits */

static void channel_limits_are_the_channels_own(void **state)
{
    (void)state;
    hw_split_limit tg = hw_outbox_channel_limit(HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM);
    hw_split_limit wa = hw_outbox_channel_limit(HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP);
    hw_split_limit wc = hw_outbox_channel_limit(HELPWIRE__V1__CHANNEL__CHANNEL_WEBCHAT);
    assert_int_equal(tg.unit, HW_SPLIT_UTF16_UNITS);
    assert_int_equal(tg.max_units, 4096);
    assert_int_equal(wa.unit, HW_SPLIT_CODE_POINTS);
    assert_int_equal(wa.max_units, 4096);
    assert_int_equal(wc.max_units, 0);
    assert_int_equal(hw_outbox_channel_limit((Helpwire__V1__Channel)99).max_units, 0);
}

typedef struct {
    Helpwire__V1__OutboundMessage *m;
    hw_arena *a;
    hw_outbox_parts sent;
    hw_effects fx;
} parts_ctx;

static int parts_fn(hw_store_txn *w, void *arg)
{
    parts_ctx *c = arg;
    hw_effects_begin(&c->fx, NULL);
    return hw_outbox_append_parts_in(w, &c->fx, c->m, c->a, &c->sent);
}

static void long_text_is_queued_as_ordered_parts_within_the_limit(void **state)
{
    fx *f = *state;
    /* 5000 UTF-16 units of words: Telegram takes 4096. */
    char *text = repeat("word ", 1000);
    Helpwire__V1__OutboundMessage m = message(HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, "42", text);
    m.survey_url = "https://x/s/1";
    parts_ctx c = {.m = &m, .a = f->a};
    assert_int_equal(hw_store_write(f->s, parts_fn, &c), HW_OK);
    assert_int_equal(c.sent.n, 2);
    assert_int_equal(c.sent.seqs[0], 1);
    assert_int_equal(c.sent.seqs[1], 2);
    assert_int_equal(m.seq, 1);
    assert_int_equal(c.fx.outbox_appended, 1u << HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM);
    size_t n = 0;
    Helpwire__V1__OutboundMessage **out = list(f, HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, &n);
    assert_int_equal(n, 2);
    size_t l0 = strlen(out[0]->text), l1 = strlen(out[1]->text);
    assert_true(l0 <= 4096 && l1 <= 4096);
    /* The parts and the one space dropped at the cut are the text. */
    assert_int_equal(l0 + 1 + l1, strlen(text));
    assert_memory_equal(out[0]->text, text, l0);
    assert_string_equal(out[1]->text, text + l0 + 1);
    assert_int_equal(out[0]->part, 1);
    assert_int_equal(out[1]->part, 2);
    assert_int_equal(out[0]->parts, 2);
    assert_int_equal(out[1]->parts, 2);
    assert_string_equal(out[0]->survey_url, "");
    assert_string_equal(out[1]->survey_url, "https://x/s/1");
    assert_string_equal(out[1]->channel_user_id, "42");
    assert_int_equal(out[0]->created_unix_ms, out[1]->created_unix_ms);
    free(text);
}

static void text_within_the_limit_is_one_entry_unchanged(void **state)
{
    fx *f = *state;
    /* 4096 code points, but 8192 UTF-16 units: one WhatsApp message. */
    char *text = repeat("😀", 4096);
    Helpwire__V1__OutboundMessage m = message(HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP, "+49", text);
    parts_ctx c = {.m = &m, .a = f->a};
    assert_int_equal(hw_store_write(f->s, parts_fn, &c), HW_OK);
    assert_int_equal(c.sent.n, 1);
    size_t n = 0;
    Helpwire__V1__OutboundMessage **out = list(f, HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP, &n);
    assert_int_equal(n, 1);
    assert_string_equal(out[0]->text, text);
    assert_int_equal(out[0]->part, 1);
    assert_int_equal(out[0]->parts, 1);
    /* The same on Telegram is two. */
    m = message(HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, "42", text);
    assert_int_equal(hw_store_write(f->s, parts_fn, &c), HW_OK);
    assert_int_equal(c.sent.n, 2);
    /* The web chat takes any length. */
    char *big = repeat("x", 20000);
    m = message(HELPWIRE__V1__CHANNEL__CHANNEL_WEBCHAT, "u-1", big);
    assert_int_equal(hw_store_write(f->s, parts_fn, &c), HW_OK);
    assert_int_equal(c.sent.n, 1);
    free(big);
    free(text);
}

static void whitespace_only_beyond_the_limit_queues_nothing(void **state)
{
    fx *f = *state;
    char *text = repeat("\n", 5000);
    Helpwire__V1__OutboundMessage m = message(HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, "42", text);
    parts_ctx c = {.m = &m, .a = f->a};
    assert_int_equal(hw_store_write(f->s, parts_fn, &c), HW_OK);
    assert_int_equal(c.sent.n, 0);
    assert_int_equal(m.seq, 0);
    assert_int_equal(c.fx.outbox_appended, 0);
    size_t n = 1;
    list(f, HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, &n);
    assert_int_equal(n, 0);
    free(text);
}

static void invalid_utf8_or_incomplete_messages_are_refused(void **state)
{
    fx *f = *state;
    Helpwire__V1__OutboundMessage m = message(HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, "42", "bad \xff");
    parts_ctx c = {.m = &m, .a = f->a};
    assert_int_equal(hw_store_write(f->s, parts_fn, &c), HW_EINVALID);
    m = message(HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, "", "no user");
    assert_int_equal(hw_store_write(f->s, parts_fn, &c), HW_EINVALID);
    c.a = NULL; /* seqs wanted, no arena */
    m = message(HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, "42", "fine");
    assert_int_equal(hw_store_write(f->s, parts_fn, &c), HW_EINVALID);
    size_t n = 1;
    list(f, HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, &n);
    assert_int_equal(n, 0);
}

static void hub_starts_wakes_and_stops_without_subscribers(void **state)
{
    fx *f = *state;
    hw_app app = {.store = f->s};
    hw_outbox *ob = NULL;
    assert_int_equal(hw_outbox_create(&ob, &app), HW_OK);
    assert_non_null(ob);
    app.outbox = ob;
    Helpwire__V1__OutboundMessage m = message(HELPWIRE__V1__CHANNEL__CHANNEL_WEBCHAT, "u-1", "live");
    append_ctx c = {.msgs = &m, .n = 1};
    assert_int_equal(hw_store_write(f->s, append_fn, &c), HW_OK);
    for (int i = 0; i < 100; i++)
        hw_outbox_committed(ob, HELPWIRE__V1__CHANNEL__CHANNEL_WEBCHAT);
    hw_outbox_committed(ob, (Helpwire__V1__Channel)1000); /* out of range: ignored */
    hw_outbox_committed(NULL, HELPWIRE__V1__CHANNEL__CHANNEL_WEBCHAT);
    hw_outbox_destroy(ob);
    hw_outbox_destroy(NULL);
    /* The hub never deletes: the message waits for a bridge's ack. */
    size_t n = 0;
    list(f, HELPWIRE__V1__CHANNEL__CHANNEL_WEBCHAT, &n);
    assert_int_equal(n, 1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(append_assigns_sequences_per_channel_and_defaults),
        T(append_refuses_incomplete_messages),
        T(rolled_back_append_leaves_nothing_and_rerun_gets_fresh_sequence),
        cmocka_unit_test(channel_limits_are_the_channels_own),
        T(long_text_is_queued_as_ordered_parts_within_the_limit),
        T(text_within_the_limit_is_one_entry_unchanged),
        T(whitespace_only_beyond_the_limit_queues_nothing),
        T(invalid_utf8_or_incomplete_messages_are_refused),
        T(hub_starts_wakes_and_stops_without_subscribers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
