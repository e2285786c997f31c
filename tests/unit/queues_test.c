/*
 * queues_test: the pure assignment rules of server/domain/queues.c: who
 * can take a ticket (capacity overall and per channel, presence), the
 * channel load bookkeeping, LEAST_LOADED (per-channel load when the agent
 * has a capacity for the channel, ties to the one idle longest) and
 * ROUND_ROBIN (in id order after the last one chosen, skipping the full
 * and the absent), and the waiting order (priority, then the earliest
 * RUNNING SLA due with none last, then number).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "server/domain/queues.h"

#define ONLINE HELPWIRE__V1__PRESENCE__PRESENCE_ONLINE
#define AWAY HELPWIRE__V1__PRESENCE__PRESENCE_AWAY
#define WA HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP
#define TG HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM
#define WEB HELPWIRE__V1__CHANNEL__CHANNEL_WEBCHAT
#define LEAST HELPWIRE__V1__ASSIGNMENT_STRATEGY__ASSIGNMENT_STRATEGY_LEAST_LOADED
#define RR HELPWIRE__V1__ASSIGNMENT_STRATEGY__ASSIGNMENT_STRATEGY_ROUND_ROBIN

typedef struct {
    Helpwire__V1__Agent ag;
    Helpwire__V1__ChannelCapacity cc[3];
    Helpwire__V1__ChannelCapacity *ccp[3];
} agent_fx;

static void agent(agent_fx *f, const char *id, uint32_t cap, uint32_t open, int64_t since)
{
    helpwire__v1__agent__init(&f->ag);
    f->ag.id = (char *)id;
    f->ag.capacity = cap;
    f->ag.open_tickets = open;
    f->ag.presence = ONLINE;
    f->ag.presence_changed_unix_ms = since;
}

static void channel_cap(agent_fx *f, Helpwire__V1__Channel ch, uint32_t cap)
{
    size_t i = f->ag.n_channel_capacities++;
    helpwire__v1__channel_capacity__init(&f->cc[i]);
    f->cc[i].channel = ch;
    f->cc[i].capacity = cap;
    f->ccp[i] = &f->cc[i];
    f->ag.channel_capacities = f->ccp;
}

static void test_can_take_and_channel_load(void **state)
{
    (void)state;
    hw_arena *a = hw_arena_create(4096);
    assert_non_null(a);
    agent_fx f;
    agent(&f, "alice", 3, 0, 0);
    channel_cap(&f, WA, 1);
    assert_true(hw_queues_can_take(&f.ag, WA));
    assert_int_equal(hw_queues_channel_load_add(&f.ag, WA, +1, a), HW_OK);
    f.ag.open_tickets = 1;
    assert_int_equal(hw_queues_channel_load(&f.ag, WA), 1);
    assert_false(hw_queues_can_take(&f.ag, WA)); /* WhatsApp full at 1 */
    assert_true(hw_queues_can_take(&f.ag, TG));  /* no limit for Telegram but the total */
    assert_int_equal(hw_queues_channel_load_add(&f.ag, TG, +2, a), HW_OK);
    f.ag.open_tickets = 3;
    assert_false(hw_queues_can_take(&f.ag, TG)); /* total capacity 3 reached */
    assert_false(hw_queues_can_take(&f.ag, WEB));
    assert_int_equal(hw_queues_channel_load_add(&f.ag, WA, -1, a), HW_OK);
    f.ag.open_tickets = 2;
    assert_int_equal(hw_queues_channel_load(&f.ag, WA), 0);
    assert_true(hw_queues_can_take(&f.ag, WA));
    assert_int_equal(hw_queues_channel_load_add(&f.ag, WA, -5, a), HW_OK); /* never below 0 */
    assert_int_equal(hw_queues_channel_load(&f.ag, WA), 0);
    assert_int_equal(hw_queues_channel_load(&f.ag, TG), 2);
    f.ag.presence = AWAY;
    assert_false(hw_queues_can_take(&f.ag, WA));
    hw_arena_destroy(a);
}

static void test_least_loaded(void **state)
{
    (void)state;
    agent_fx x, y, z;
    agent(&x, "a1", 5, 2, 300);
    agent(&y, "a2", 5, 1, 200);
    agent(&z, "a3", 5, 1, 100); /* idle longest among the least loaded */
    Helpwire__V1__Agent *ags[] = {&x.ag, &y.ag, &z.ag};
    assert_int_equal(hw_queues_choose(ags, 3, WA, LEAST, NULL), 2);
    /* UNSPECIFIED means LEAST_LOADED */
    assert_int_equal(hw_queues_choose(ags, 3, WA, 0, NULL), 2);
    z.ag.presence = AWAY;
    assert_int_equal(hw_queues_choose(ags, 3, WA, LEAST, NULL), 1);
    /* a per-channel capacity makes the channel's load count: a1 has no
     * WhatsApp ticket, a2 has one and is full for WhatsApp */
    channel_cap(&x, WA, 2);
    channel_cap(&y, WA, 1);
    hw_arena *a = hw_arena_create(1024);
    assert_int_equal(hw_queues_channel_load_add(&y.ag, WA, +1, a), HW_OK);
    assert_int_equal(hw_queues_choose(ags, 3, WA, LEAST, NULL), 0);
    assert_int_equal(hw_queues_choose(ags, 3, TG, LEAST, NULL), 1); /* Telegram: total load */
    x.ag.open_tickets = 5;                                          /* full */
    assert_int_equal(hw_queues_choose(ags, 3, WA, LEAST, NULL), -1);
    assert_int_equal(hw_queues_choose(ags, 0, WA, LEAST, NULL), -1);
    hw_arena_destroy(a);
}

static void test_round_robin(void **state)
{
    (void)state;
    agent_fx x, y, z;
    agent(&x, "a1", 5, 4, 0);
    agent(&y, "a2", 5, 0, 0);
    agent(&z, "a3", 5, 0, 0);
    Helpwire__V1__Agent *ags[] = {&x.ag, &y.ag, &z.ag};
    assert_int_equal(hw_queues_choose(ags, 3, WA, RR, NULL), 0); /* from the start, load does not matter */
    assert_int_equal(hw_queues_choose(ags, 3, WA, RR, ""), 0);
    assert_int_equal(hw_queues_choose(ags, 3, WA, RR, "a1"), 1);
    assert_int_equal(hw_queues_choose(ags, 3, WA, RR, "a2"), 2);
    assert_int_equal(hw_queues_choose(ags, 3, WA, RR, "a3"), 0); /* wraps */
    /* the last one may be gone: the next id after it */
    assert_int_equal(hw_queues_choose(ags, 3, WA, RR, "a15"), 1);
    assert_int_equal(hw_queues_choose(ags, 3, WA, RR, "zz"), 0);
    /* the full and the absent are skipped */
    x.ag.open_tickets = 5;
    y.ag.presence = AWAY;
    assert_int_equal(hw_queues_choose(ags, 3, WA, RR, "a3"), 2);
    z.ag.open_tickets = 5;
    assert_int_equal(hw_queues_choose(ags, 3, WA, RR, "a3"), -1);
}

static Helpwire__V1__SlaClock clock_of(Helpwire__V1__SlaState st, int64_t due)
{
    Helpwire__V1__SlaClock c = HELPWIRE__V1__SLA_CLOCK__INIT;
    c.state = st;
    c.due_unix_ms = due;
    return c;
}

static void test_waiting_order(void **state)
{
    (void)state;
    Helpwire__V1__Ticket t[6];
    for (int i = 0; i < 6; i++) {
        helpwire__v1__ticket__init(&t[i]);
        t[i].number = 1000 + (uint64_t)i;
        t[i].priority = HELPWIRE__V1__PRIORITY__PRIORITY_NORMAL;
    }
    t[5].priority = HELPWIRE__V1__PRIORITY__PRIORITY_URGENT;
    /* t1 due at 500 (running), t2 due at 300 (running) and a met clock at
     * 100 that does not count, t3 paused only: no due, t0 none */
    Helpwire__V1__SlaClock c1 = clock_of(HELPWIRE__V1__SLA_STATE__SLA_STATE_RUNNING, 500);
    Helpwire__V1__SlaClock c2a = clock_of(HELPWIRE__V1__SLA_STATE__SLA_STATE_MET, 100);
    Helpwire__V1__SlaClock c2b = clock_of(HELPWIRE__V1__SLA_STATE__SLA_STATE_RUNNING, 300);
    Helpwire__V1__SlaClock c3 = clock_of(HELPWIRE__V1__SLA_STATE__SLA_STATE_PAUSED, 0);
    Helpwire__V1__SlaClock *s1[] = {&c1}, *s2[] = {&c2a, &c2b}, *s3[] = {&c3};
    t[1].sla = s1;
    t[1].n_sla = 1;
    t[2].sla = s2;
    t[2].n_sla = 2;
    t[3].sla = s3;
    t[3].n_sla = 1;
    assert_int_equal(hw_queues_sla_due(&t[2]), 300);
    assert_int_equal(hw_queues_sla_due(&t[3]), 0);
    Helpwire__V1__Ticket *v[] = {&t[0], &t[1], &t[2], &t[3], &t[4], &t[5]};
    qsort(v, 6, sizeof *v, hw_queues_waiting_cmp);
    /* urgent first; then SLA due ascending; then no due by number */
    uint64_t want[] = {1005, 1002, 1001, 1000, 1003, 1004};
    for (int i = 0; i < 6; i++)
        assert_int_equal(v[i]->number, want[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_can_take_and_channel_load),
        cmocka_unit_test(test_least_loaded),
        cmocka_unit_test(test_round_robin),
        cmocka_unit_test(test_waiting_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
