/*
 * sla_test: the SLA clock rules (server/domain/sla.c) on made-up tickets,
 * in the business hours of a Shanghai team (Monday to Friday 09:00-18:00)
 * driven by a manual clock: a ticket created Friday 17:30 with a 60-minute
 * first reply target is due Monday 09:30 and warned at 80% (Monday 09:18);
 * PENDING pauses with the business time left and OPEN resumes with it; an
 * agent reply meets the reply clocks; the breach fires only at the due
 * time and a later reply ends the wait but keeps BREACHED; NEXT_REPLY
 * starts at a customer message only while no reply is due; RESOLVED ends
 * every clock as MET; a new policy counts the time already used; policy
 * validation names the field; a queue's hours inside a write come from the
 * app's hours cache (compiled once, not per ticket write).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "server/base/arena.h"
#include "server/base/clock.h"
#include "server/base/errors.h"
#include "server/domain/app.h"
#include "server/domain/hours.h"
#include "server/domain/sla.h"
#include "tests/unit/store_test_util.h"

#define TG(x) HELPWIRE__V1__SLA_TARGET__SLA_TARGET_##x
#define SS(x) HELPWIRE__V1__SLA_STATE__SLA_STATE_##x
#define ST(x) HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_##x
#define MK(x) HELPWIRE__V1__MESSAGE_KIND__MESSAGE_KIND_##x

#define MIN 60000LL
#define HOUR (60 * MIN)
/* Friday 2026-12-04 17:30 in Shanghai (UTC+8) = 09:30 UTC. */
#define FRI_1730 1796376600000LL
#define MON_0900 (FRI_1730 + 2 * 24 * HOUR + 15 * HOUR + 30 * MIN)

typedef Helpwire__V1__Ticket Ticket;

typedef struct fx {
    hw_arena *a;
    hw_hours *h;
    hw_clock *clock;
    Helpwire__V1__SlaPolicy p;
    Ticket t;
} fx;

static int setup(void **state)
{
    static fx f;
    memset(&f, 0, sizeof f);
    f.a = hw_arena_create(1 << 16);
    assert_non_null(f.a);
    static Helpwire__V1__TimeRange r = HELPWIRE__V1__TIME_RANGE__INIT;
    r.open_minute = 9 * 60;
    r.close_minute = 18 * 60;
    static Helpwire__V1__TimeRange *rs[] = {&r};
    static Helpwire__V1__DaySchedule days[5];
    static Helpwire__V1__DaySchedule *dp[5];
    for (int i = 0; i < 5; i++) {
        helpwire__v1__day_schedule__init(&days[i]);
        days[i].weekday = (uint32_t)i + 1;
        days[i].ranges = rs;
        days[i].n_ranges = 1;
        dp[i] = &days[i];
    }
    Helpwire__V1__BusinessHours bh = HELPWIRE__V1__BUSINESS_HOURS__INIT;
    bh.time_zone = "Asia/Shanghai";
    bh.days = dp;
    bh.n_days = 5;
    char err[256];
    assert_int_equal(hw_hours_compile(&bh, &f.h, err, sizeof err), HW_OK);
    assert_int_equal(hw_clock_create_manual(&f.clock, FRI_1730), HW_OK);
    helpwire__v1__sla_policy__init(&f.p);
    f.p.name = "urgent";
    f.p.priority = HELPWIRE__V1__PRIORITY__PRIORITY_URGENT;
    f.p.first_reply_minutes = 60;
    f.p.next_reply_minutes = 30;
    f.p.resolution_minutes = 8 * 60;
    f.p.warn_fraction = 0.8;
    helpwire__v1__ticket__init(&f.t);
    f.t.id = "t-1000";
    f.t.queue = "billing";
    f.t.status = ST(OPEN);
    f.t.priority = HELPWIRE__V1__PRIORITY__PRIORITY_URGENT;
    f.t.created_unix_ms = FRI_1730;
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    hw_hours_free(f->h);
    hw_clock_destroy(f->clock);
    hw_arena_destroy(f->a);
    return 0;
}

static int64_t now(fx *f)
{
    return hw_clock_now_ms(f->clock);
}

static Helpwire__V1__SlaClock *clock_of(Ticket *t, Helpwire__V1__SlaTarget target)
{
    for (size_t i = 0; i < t->n_sla; i++)
        if (t->sla[i]->target == target)
            return t->sla[i];
    return NULL;
}

static void start(fx *f)
{
    assert_int_equal(hw_sla_clocks_start(&f->t, &f->p, f->h, now(f), f->a), HW_OK);
}

/* Friday 17:30 + 60 business minutes = Monday 09:30; the warning at 80%
 * (48 minutes) is Monday 09:18; the resolution clock runs too. */
static void test_due_over_the_weekend(void **state)
{
    fx *f = *state;
    start(f);
    assert_string_equal(f->t.sla_policy, "urgent");
    assert_int_equal(f->t.n_sla, 2);
    Helpwire__V1__SlaClock *c = clock_of(&f->t, TG(FIRST_REPLY));
    assert_non_null(c);
    assert_int_equal(c->state, SS(RUNNING));
    assert_int_equal(c->started_unix_ms, FRI_1730);
    assert_int_equal(c->due_unix_ms, MON_0900 + 30 * MIN);
    assert_null(clock_of(&f->t, TG(NEXT_REPLY)));
    uint32_t arg;
    int64_t due;
    assert_true(hw_sla_clocks_next(&f->t, &f->p, f->h, now(f), &arg, &due));
    assert_int_equal(arg, (uint32_t)TG(FIRST_REPLY) << 8 | HW_SLA_WARN);
    assert_int_equal(due, MON_0900 + 18 * MIN);
    /* Before the warning's time, firing it does nothing to the breach. */
    hw_clock_set(f->clock, MON_0900 + 18 * MIN);
    assert_int_equal(hw_sla_clocks_fire(&f->t, arg, now(f), NULL), HW_SLA_FIRED_WARNING);
    assert_true(c->warned);
    assert_int_equal(hw_sla_clocks_fire(&f->t, arg, now(f), NULL), HW_SLA_FIRED_NOTHING); /* once */
    assert_true(hw_sla_clocks_next(&f->t, &f->p, f->h, now(f), &arg, &due));
    assert_int_equal(arg, (uint32_t)TG(FIRST_REPLY) << 8 | HW_SLA_BREACH);
    assert_int_equal(due, MON_0900 + 30 * MIN);
    /* A breach timer that fires early (a stale one) is ignored. */
    assert_int_equal(hw_sla_clocks_fire(&f->t, arg, now(f), NULL), HW_SLA_FIRED_NOTHING);
    hw_clock_set(f->clock, MON_0900 + 30 * MIN);
    assert_int_equal(hw_sla_clocks_fire(&f->t, arg, now(f), NULL), HW_SLA_FIRED_BREACH);
    assert_int_equal(c->state, SS(BREACHED));
    assert_int_equal(c->ended_unix_ms, 0);
    /* The reply comes late: the wait ends, the breach stays. */
    hw_clock_set(f->clock, MON_0900 + 45 * MIN);
    hw_sla_outcome out = {0};
    assert_int_equal(hw_sla_clocks_message(&f->t, &f->p, f->h, MK(AGENT_REPLY), now(f), f->a, &out), HW_OK);
    assert_int_equal(c->state, SS(BREACHED));
    assert_int_equal(c->ended_unix_ms, MON_0900 + 45 * MIN);
    assert_int_equal(out.n, 0);
    /* Only the resolution clock is left to fire: its warning. */
    assert_true(hw_sla_clocks_next(&f->t, &f->p, f->h, now(f), &arg, &due));
    assert_int_equal(arg >> 8, TG(RESOLUTION));
}

/* PENDING keeps the business time left; OPEN resumes with it. */
static void test_pending_pauses_open_resumes(void **state)
{
    fx *f = *state;
    hw_clock_set(f->clock, MON_0900);
    f->t.created_unix_ms = MON_0900;
    start(f);
    Helpwire__V1__SlaClock *c = clock_of(&f->t, TG(FIRST_REPLY));
    assert_int_equal(c->due_unix_ms, MON_0900 + HOUR);
    /* 20 minutes in, the ticket waits on the customer. */
    hw_clock_set(f->clock, MON_0900 + 20 * MIN);
    f->t.status = ST(PENDING);
    hw_sla_clocks_status(&f->t, ST(OPEN), f->h, now(f), NULL);
    assert_int_equal(c->state, SS(PAUSED));
    assert_int_equal(c->remaining_ms, 40 * MIN);
    assert_int_equal(c->due_unix_ms, 0);
    uint32_t arg;
    int64_t due;
    assert_false(hw_sla_clocks_next(&f->t, &f->p, f->h, now(f), &arg, &due)); /* nothing runs */
    /* Back at 17:50 the same day: 10 minutes today, 30 tomorrow. */
    hw_clock_set(f->clock, MON_0900 + 8 * HOUR + 50 * MIN);
    f->t.status = ST(OPEN);
    hw_sla_clocks_status(&f->t, ST(PENDING), f->h, now(f), NULL);
    assert_int_equal(c->state, SS(RUNNING));
    assert_int_equal(c->remaining_ms, 0);
    assert_int_equal(c->due_unix_ms, MON_0900 + 24 * HOUR + 30 * MIN);
    /* The warning comes when 12 minutes (20%) are left: Tuesday 09:18. */
    assert_true(hw_sla_clocks_next(&f->t, &f->p, f->h, now(f), &arg, &due));
    assert_int_equal(arg, (uint32_t)TG(FIRST_REPLY) << 8 | HW_SLA_WARN);
    assert_int_equal(due, MON_0900 + 24 * HOUR + 18 * MIN);
}

/* A reply in time meets the reply clocks; the next customer message starts
 * NEXT_REPLY; another message while it runs does not restart it. */
static void test_replies_and_next_reply(void **state)
{
    fx *f = *state;
    hw_clock_set(f->clock, MON_0900);
    f->t.created_unix_ms = MON_0900;
    start(f);
    hw_sla_outcome out = {0};
    /* A customer message while the first reply is due starts nothing. */
    hw_clock_set(f->clock, MON_0900 + 5 * MIN);
    assert_int_equal(hw_sla_clocks_message(&f->t, &f->p, f->h, MK(CUSTOMER), now(f), f->a, &out), HW_OK);
    assert_null(clock_of(&f->t, TG(NEXT_REPLY)));
    hw_clock_set(f->clock, MON_0900 + 10 * MIN);
    assert_int_equal(hw_sla_clocks_message(&f->t, &f->p, f->h, MK(AGENT_REPLY), now(f), f->a, &out), HW_OK);
    Helpwire__V1__SlaClock *first = clock_of(&f->t, TG(FIRST_REPLY));
    assert_int_equal(first->state, SS(MET));
    assert_int_equal(first->ended_unix_ms, MON_0900 + 10 * MIN);
    assert_int_equal(out.n, 1);
    assert_int_equal(out.ended[0].target, TG(FIRST_REPLY));
    assert_false(out.ended[0].breached);
    /* An internal note changes nothing. */
    assert_int_equal(hw_sla_clocks_message(&f->t, &f->p, f->h, MK(INTERNAL_NOTE), now(f), f->a, &out), HW_OK);
    assert_null(clock_of(&f->t, TG(NEXT_REPLY)));
    hw_clock_set(f->clock, MON_0900 + HOUR);
    assert_int_equal(hw_sla_clocks_message(&f->t, &f->p, f->h, MK(CUSTOMER), now(f), f->a, &out), HW_OK);
    Helpwire__V1__SlaClock *next = clock_of(&f->t, TG(NEXT_REPLY));
    assert_non_null(next);
    assert_int_equal(next->state, SS(RUNNING));
    assert_int_equal(next->started_unix_ms, MON_0900 + HOUR);
    assert_int_equal(next->due_unix_ms, MON_0900 + HOUR + 30 * MIN);
    hw_clock_set(f->clock, MON_0900 + HOUR + 10 * MIN);
    assert_int_equal(hw_sla_clocks_message(&f->t, &f->p, f->h, MK(CUSTOMER), now(f), f->a, &out), HW_OK);
    assert_int_equal(next->started_unix_ms, MON_0900 + HOUR); /* still the first unanswered message */
    /* Resolving ends every clock: NEXT_REPLY and RESOLUTION are MET. */
    out.n = 0;
    f->t.status = ST(RESOLVED);
    hw_sla_clocks_status(&f->t, ST(OPEN), f->h, now(f), &out);
    assert_int_equal(next->state, SS(MET));
    assert_int_equal(clock_of(&f->t, TG(RESOLUTION))->state, SS(MET));
    assert_int_equal(out.n, 2);
    uint32_t arg;
    int64_t due;
    assert_false(hw_sla_clocks_next(&f->t, &f->p, f->h, now(f), &arg, &due));
}

/* Another policy counts the business time already used: 40 of the 60
 * minutes used, a 45-minute target leaves 5; a target it lacks is dropped. */
static void test_repolicy_keeps_used_time(void **state)
{
    fx *f = *state;
    hw_clock_set(f->clock, MON_0900);
    f->t.created_unix_ms = MON_0900;
    start(f);
    hw_clock_set(f->clock, MON_0900 + 40 * MIN);
    Helpwire__V1__SlaPolicy q = HELPWIRE__V1__SLA_POLICY__INIT;
    q.name = "vip";
    q.priority = HELPWIRE__V1__PRIORITY__PRIORITY_URGENT;
    q.first_reply_minutes = 45;
    q.warn_fraction = 0.5;
    assert_int_equal(hw_sla_clocks_repolicy(&f->t, &f->p, f->h, &q, f->h, now(f), f->a), HW_OK);
    assert_string_equal(f->t.sla_policy, "vip");
    assert_int_equal(f->t.n_sla, 1);
    Helpwire__V1__SlaClock *c = clock_of(&f->t, TG(FIRST_REPLY));
    assert_int_equal(c->due_unix_ms, MON_0900 + 45 * MIN);
    assert_int_equal(c->started_unix_ms, MON_0900);
    /* Past the half already: the warning is due now. */
    uint32_t arg;
    int64_t due;
    assert_true(hw_sla_clocks_next(&f->t, &q, f->h, now(f), &arg, &due));
    assert_int_equal(arg, (uint32_t)TG(FIRST_REPLY) << 8 | HW_SLA_WARN);
    assert_int_equal(due, now(f));
    /* No policy any more: waiting clocks go. */
    assert_int_equal(hw_sla_clocks_repolicy(&f->t, &q, f->h, NULL, f->h, now(f), f->a), HW_OK);
    assert_string_equal(f->t.sla_policy, "");
    assert_int_equal(f->t.n_sla, 0);
}

/* No policy: no clocks. */
static void test_no_policy(void **state)
{
    fx *f = *state;
    assert_int_equal(hw_sla_clocks_start(&f->t, NULL, f->h, now(f), f->a), HW_OK);
    assert_string_equal(f->t.sla_policy, "");
    assert_int_equal(f->t.n_sla, 0);
}

static void expect_bad(const Helpwire__V1__SlaPolicy *p, const char *want)
{
    char err[256] = "";
    assert_int_equal(hw_sla_policy_check(p, err, sizeof err), HW_EINVALID);
    if (!strstr(err, want))
        fail_msg("error \"%s\" does not say \"%s\"", err, want);
}

static void test_policy_check_names_the_field(void **state)
{
    fx *f = *state;
    char err[256];
    assert_int_equal(hw_sla_policy_check(&f->p, err, sizeof err), HW_OK);
    Helpwire__V1__SlaPolicy p = f->p;
    p.name = "Bad Name";
    expect_bad(&p, "policy.name");
    p = f->p;
    p.priority = 0;
    expect_bad(&p, "policy.priority");
    p = f->p;
    p.first_reply_minutes = p.next_reply_minutes = p.resolution_minutes = 0;
    expect_bad(&p, "first_reply_minutes");
    p = f->p;
    p.resolution_minutes = 525601;
    expect_bad(&p, "policy.resolution_minutes: at most 525600");
    p = f->p;
    p.warn_fraction = 1.0;
    expect_bad(&p, "policy.warn_fraction");
    p = f->p;
    p.breach_action = 9;
    expect_bad(&p, "policy.breach_action");
    p = f->p;
    p.skill = "Billing!";
    expect_bad(&p, "policy.skill");
    expect_bad(NULL, "policy: required");
}

/* Puts skill "billing" with the fixture's hours and "plain" without. */
static int put_queues(hw_store_txn *w, void *arg)
{
    (void)arg;
    static Helpwire__V1__TimeRange r = HELPWIRE__V1__TIME_RANGE__INIT;
    r.open_minute = 9 * 60;
    r.close_minute = 18 * 60;
    static Helpwire__V1__TimeRange *rs[] = {&r};
    static Helpwire__V1__DaySchedule day = HELPWIRE__V1__DAY_SCHEDULE__INIT;
    day.weekday = 1;
    day.ranges = rs;
    day.n_ranges = 1;
    static Helpwire__V1__DaySchedule *dp[] = {&day};
    static Helpwire__V1__BusinessHours bh = HELPWIRE__V1__BUSINESS_HOURS__INIT;
    bh.time_zone = "Asia/Shanghai";
    bh.days = dp;
    bh.n_days = 1;
    Helpwire__V1__Skill sk = HELPWIRE__V1__SKILL__INIT;
    sk.name = "billing";
    sk.hours = &bh;
    int rc = hw_store_skill_put(w, &sk, HW_PUT_UPSERT);
    Helpwire__V1__Skill plain = HELPWIRE__V1__SKILL__INIT;
    plain.name = "plain";
    return rc == HW_OK ? hw_store_skill_put(w, &plain, HW_PUT_UPSERT) : rc;
}

static void test_queue_hours_come_from_the_app_cache(void **state)
{
    fx *f = *state;
    char dir[PATH_MAX];
    hw_store *s = hw_test_open(hw_test_dir(dir, sizeof dir, "sla-hours"), 1 << 20, 8);
    assert_non_null(s);
    assert_int_equal(hw_store_write(s, put_queues, NULL), HW_OK);
    hw_app app;
    memset(&app, 0, sizeof app);
    assert_int_equal(hw_hours_cache_create(&app.hours_cache), HW_OK);
    hw_effects with_app = {.app = &app}, without = {0};
    hw_store_reader *r;
    assert_int_equal(hw_store_reader_create(s, &r), HW_OK);
    hw_store_txn *t;
    assert_int_equal(hw_store_read_begin(r, &t), HW_OK);
    hw_hours *h1, *h2, *h3;
    /* Two ticket writes of the queue: one compiled hours, shared. */
    assert_int_equal(hw_sla_hours_in(t, &with_app, "billing", f->a, &h1), HW_OK);
    assert_int_equal(hw_sla_hours_in(t, &with_app, "billing", f->a, &h2), HW_OK);
    assert_non_null(h1);
    assert_ptr_equal(h1, h2);
    assert_false(hw_hours_is_open(h1, FRI_1730));
    assert_true(hw_hours_is_open(h1, MON_0900));
    /* Without an app (a tool's write): compiled in the call, same hours. */
    assert_int_equal(hw_sla_hours_in(t, &without, "billing", f->a, &h3), HW_OK);
    assert_non_null(h3);
    assert_ptr_not_equal(h1, h3);
    assert_true(hw_hours_is_open(h3, MON_0900));
    hw_hours_free(h1);
    hw_hours_free(h2);
    hw_hours_free(h3);
    /* Always open: no hours, an unknown queue, no queue. */
    assert_int_equal(hw_sla_hours_in(t, &with_app, "plain", f->a, &h1), HW_OK);
    assert_null(h1);
    assert_int_equal(hw_sla_hours_in(t, &with_app, "nosuch", f->a, &h1), HW_OK);
    assert_null(h1);
    assert_int_equal(hw_sla_hours_in(t, &with_app, "", f->a, &h1), HW_OK);
    assert_null(h1);
    hw_store_read_end(r);
    assert_int_equal(hw_test_check_and_close(s, r), 0);
    hw_hours_cache_destroy(app.hours_cache);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_due_over_the_weekend, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_pauses_open_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replies_and_next_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repolicy_keeps_used_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_check_names_the_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_hours_come_from_the_app_cache, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
