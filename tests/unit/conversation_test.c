/*
 * conversation_test: what hw_conversation_scan reads from a ticket's
 * messages (server/domain/conversation.c): the newest customer message
 * (time and channel message id, for the WhatsApp window and read
 * receipts), the language of the newest customer message that tells one,
 * agent messages and events between them ignored, and its bound: a scan
 * looks at no more than HW_CONVERSATION_SCAN_MAX messages, so a reply to a
 * very long conversation costs the writer what a short one does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/domain/conversation.h"
#include "tests/unit/store_test_util.h"

typedef hw_test_store fx;

static int setup(void **state)
{
    return hw_test_store_setup(state, "conv");
}

static int teardown(void **state)
{
    return hw_test_store_teardown(state);
}

/* Messages to append: kind 'c' (customer) or 'a' (agent), text, id, time. */
typedef struct msg {
    char kind;
    const char *text;
    const char *channel_message_id;
    int64_t at;
} msg;

typedef struct batch {
    const char *ticket;
    const msg *m;
    size_t n;
    size_t repeat_agent; /* then this many agent messages */
} batch;

static int append_fn(hw_store_txn *w, void *arg)
{
    const batch *b = arg;
    int rc = HW_OK;
    char id[32];
    size_t k = 0;
    for (size_t i = 0; rc == HW_OK && i < b->n + b->repeat_agent; i++) {
        Helpwire__V1__TicketMessage m = HELPWIRE__V1__TICKET_MESSAGE__INIT;
        snprintf(id, sizeof id, "m-%zu", k++);
        m.id = id;
        m.ticket_id = (char *)b->ticket;
        if (i < b->n) {
            m.kind = b->m[i].kind == 'c' ? HELPWIRE__V1__MESSAGE_KIND__MESSAGE_KIND_CUSTOMER
                                         : HELPWIRE__V1__MESSAGE_KIND__MESSAGE_KIND_AGENT_REPLY;
            m.text = (char *)b->m[i].text;
            m.channel_message_id = (char *)(b->m[i].channel_message_id ? b->m[i].channel_message_id : "");
            m.created_unix_ms = b->m[i].at;
        } else {
            m.kind = HELPWIRE__V1__MESSAGE_KIND__MESSAGE_KIND_AGENT_REPLY;
            m.text = "We are looking into it for you right now.";
            m.created_unix_ms = 9000000 + (int64_t)i;
        }
        rc = hw_store_ticket_message_append(w, &m, NULL);
        if (rc == HW_OK) { /* events between messages, as the log holds them */
            Helpwire__V1__TicketEvent ev = HELPWIRE__V1__TICKET_EVENT__INIT;
            ev.ticket_id = (char *)b->ticket;
            ev.kind = HELPWIRE__V1__TICKET_EVENT_KIND__TICKET_EVENT_KIND_MESSAGE;
            rc = hw_store_ticket_event_append(w, &ev);
        }
    }
    return rc;
}

static void scan(fx *f, const char *ticket, hw_conversation *c)
{
    hw_store_txn *t;
    hw_arena_reset(f->a);
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    assert_int_equal(hw_conversation_scan(t, ticket, f->a, c), HW_OK);
    hw_store_read_end(f->r);
}

static void test_newest_customer_message_and_language(void **state)
{
    fx *f = *state;
    static const msg m[] = {
        {'c', "The app shows error 4411 when I log in", "wa-1", 1000},
        {'c', "我的订单还没有发货，请帮我查一下", "wa-2", 2000},
        {'a', "Please send your order number so we can check it", NULL, 3000},
        {'c', "ok", "wa-3", 4000},
        {'c', "👍", "wa-4", 5000},
        {'a', "Thanks, we found it and it ships today", NULL, 6000},
    };
    batch b = {"t-1000", m, sizeof m / sizeof m[0], 0};
    assert_int_equal(hw_store_write(f->s, append_fn, &b), HW_OK);
    hw_conversation c;
    scan(f, "t-1000", &c);
    assert_true(c.has_customer_message);
    assert_int_equal(c.last_customer_unix_ms, 5000);
    assert_string_equal(c.last_customer_channel_message_id, "wa-4");
    /* "ok" and the emoji tell nothing: the Chinese message before them does. */
    assert_non_null(c.locale);
    assert_string_equal(c.locale, "zh");

    /* The customer now writes a whole English sentence: newest wins. */
    static const msg more[] = {{'c', "Can you change the delivery address please", "wa-5", 7000}};
    batch b2 = {"t-1000", more, 1, 0};
    assert_int_equal(hw_store_write(f->s, append_fn, &b2), HW_OK);
    scan(f, "t-1000", &c);
    assert_int_equal(c.last_customer_unix_ms, 7000);
    assert_string_equal(c.last_customer_channel_message_id, "wa-5");
    assert_string_equal(c.locale, "en");
}

static void test_no_messages_and_no_language(void **state)
{
    fx *f = *state;
    hw_conversation c;
    scan(f, "t-4040", &c); /* no such ticket: nothing, not an error */
    assert_false(c.has_customer_message);
    assert_int_equal(c.last_customer_unix_ms, 0);
    assert_string_equal(c.last_customer_channel_message_id, "");
    assert_null(c.locale);

    static const msg m[] = {{'c', "5", "tg-9", 100}, {'c', "thx", NULL, 200}};
    batch b = {"t-1001", m, 2, 0};
    assert_int_equal(hw_store_write(f->s, append_fn, &b), HW_OK);
    scan(f, "t-1001", &c);
    assert_true(c.has_customer_message);
    assert_int_equal(c.last_customer_unix_ms, 200);
    assert_string_equal(c.last_customer_channel_message_id, "");
    assert_null(c.locale); /* the customer's own locale will decide */
}

/* A long conversation: the scan stops at the newest customer message that
 * tells a language, and never looks further back than its bound. */
static void test_bounded_on_long_conversations(void **state)
{
    fx *f = *state;
    static const msg m[] = {{'c', "我想退货，这个尺码不合适", "wa-1", 1000}};
    /* Within the bound: found behind HW_CONVERSATION_SCAN_MAX - 1 agent messages. */
    batch b = {"t-1002", m, 1, HW_CONVERSATION_SCAN_MAX - 1};
    assert_int_equal(hw_store_write(f->s, append_fn, &b), HW_OK);
    hw_conversation c;
    scan(f, "t-1002", &c);
    assert_true(c.has_customer_message);
    assert_string_equal(c.locale, "zh");
    /* Beyond it: one more agent message hides the customer's. */
    batch b2 = {"t-1002", NULL, 0, 1};
    assert_int_equal(hw_store_write(f->s, append_fn, &b2), HW_OK);
    scan(f, "t-1002", &c);
    assert_false(c.has_customer_message);
    assert_null(c.locale);
}

static int stop_after_two(void *arg, const Helpwire__V1__TicketMessage *m)
{
    char *seen = arg;
    strcat(seen, m->id);
    strcat(seen, " ");
    return strlen(seen) >= 8 ? HW_STOP : HW_OK;
}

static void test_foreach_newest_order_and_stop(void **state)
{
    fx *f = *state;
    static const msg m[] = {{'c', "a", NULL, 1}, {'a', "b", NULL, 2}, {'c', "c", NULL, 3}};
    batch b = {"t-1003", m, 3, 0};
    assert_int_equal(hw_store_write(f->s, append_fn, &b), HW_OK);
    /* A neighbour whose id extends this one's must not be read with it. */
    batch other = {"t-10030", m, 1, 0};
    assert_int_equal(hw_store_write(f->s, append_fn, &other), HW_OK);
    hw_store_txn *t;
    char seen[64] = "";
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    assert_int_equal(hw_store_ticket_message_foreach_newest(t, "t-1003", f->a, stop_after_two, seen), HW_OK);
    assert_string_equal(seen, "m-2 m-1 ");
    assert_int_equal(hw_store_ticket_message_foreach_newest(t, "", f->a, stop_after_two, seen), HW_EINVALID);
    hw_store_read_end(f->r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_newest_customer_message_and_language, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_messages_and_no_language, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounded_on_long_conversations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreach_newest_order_and_stop, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
