/*
 * timers_test: durable timers (server/domain/timers.c) on a real store,
 * driven by a manual clock: a timer fires once, in due order, not before
 * its time; replaced and cancelled timers do not fire; a failing handler
 * leaves its timer (and none of its writes) for a retry; timers survive a
 * store close and reopen (a restart); a handler may set the next timer;
 * with the real clock a commit wakes the sleeping thread; the pending
 * count; bad input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/base/clock.h"
#include "server/domain/app.h"
#include "server/domain/timers.h"
#include "store_test_util.h"

#define T0 1767225600000LL /* 2026-01-01 00:00 UTC */
#define KV_NS "timers_test"

typedef struct firing {
    hw_timer_kind kind;
    char subject[64];
    uint32_t arg;
    int64_t due_ms, now_ms;
} firing;

typedef struct fixture {
    char dir[512];
    hw_store *store;
    hw_clock *clock;
    hw_app app;
    hw_timers *timers;
    pthread_mutex_t mu;
    firing fired[64];
    size_t n_fired;     /* handler runs that returned HW_OK (reruns included) */
    atomic_int failing; /* the handler fails while set */
    atomic_int chain;   /* REASSIGN handler sets an SLA timer 100 ms later */
} fixture;

static void sink_timer_set(void *ctx, int64_t due)
{
    fixture *f = ctx;
    hw_timers_committed(f->timers, due);
}

static int handler(void *arg, hw_store_txn *w, hw_effects *fx, hw_timer_kind kind, const char *subject,
                   uint32_t targ, int64_t due_ms, int64_t now_ms)
{
    fixture *f = arg;
    /* A write of the handler: it must commit with the firing, or not at all. */
    int rc = hw_store_kv_put(w, KV_NS, subject, strlen(subject), "x", 1);
    if (rc != HW_OK)
        return rc;
    if (atomic_load(&f->failing))
        return HW_EIO;
    if (kind == HW_TIMER_REASSIGN && atomic_load(&f->chain)) {
        char next[80];
        snprintf(next, sizeof next, "%s-next", subject);
        if ((rc = hw_timers_set_in(w, fx, HW_TIMER_SLA, next, targ + 1, now_ms + 100)) != HW_OK)
            return rc;
    }
    pthread_mutex_lock(&f->mu);
    if (f->n_fired < 64) {
        firing *x = &f->fired[f->n_fired++];
        x->kind = kind;
        snprintf(x->subject, sizeof x->subject, "%s", subject);
        x->arg = targ;
        x->due_ms = due_ms;
        x->now_ms = now_ms;
    }
    pthread_mutex_unlock(&f->mu);
    return HW_OK;
}

static int start_timers(fixture *f)
{
    f->app.store = f->store;
    f->app.clock = f->clock;
    f->app.after_commit = (hw_effects_sinks){.ctx = f, .timer_set = sink_timer_set};
    if (hw_timers_create(&f->timers, &f->app) != HW_OK)
        return -1;
    for (int k = HW_TIMER_UNASSIGNED; k < HW_TIMER_KINDS; k++)
        hw_timers_register(f->timers, (hw_timer_kind)k, handler, f);
    return hw_timers_start(f->timers) == HW_OK ? 0 : -1;
}

static int setup_with(void **state, bool real)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    pthread_mutex_init(&f->mu, NULL);
    hw_test_dir(f->dir, sizeof f->dir, "timers");
    f->store = hw_test_open(f->dir, 1 << 20, 64);
    int rc = real ? hw_clock_create_real(&f->clock) : hw_clock_create_manual(&f->clock, T0);
    if (!f->store || rc != HW_OK || start_timers(f) != 0)
        return -1;
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, false);
}

static int setup_real(void **state)
{
    return setup_with(state, true);
}

static int teardown(void **state)
{
    fixture *f = *state;
    hw_timers_destroy(f->timers);
    hw_store_reader *r = NULL;
    int rc = hw_store_reader_create(f->store, &r) == HW_OK ? hw_test_check_and_close(f->store, r) : -1;
    hw_clock_destroy(f->clock);
    pthread_mutex_destroy(&f->mu);
    free(f);
    return rc;
}

typedef struct set_ctx {
    hw_effects fx;
    hw_timer_kind kind;
    const char *subject;
    uint32_t arg;
    int64_t due;
    bool cancel;
} set_ctx;

static int set_fn(hw_store_txn *w, void *arg)
{
    set_ctx *c = arg;
    hw_effects_begin(&c->fx, NULL);
    if (c->cancel)
        return hw_timers_cancel_in(w, c->kind, c->subject);
    return hw_timers_set_in(w, &c->fx, c->kind, c->subject, c->arg, c->due);
}

/* Sets (or cancels) a timer in its own write, then runs the effects as a
 * handler's write does after its commit. */
static int write_timer(fixture *f, hw_timer_kind kind, const char *subject, uint32_t arg, int64_t due,
                       bool cancel)
{
    set_ctx c = {.kind = kind, .subject = subject, .arg = arg, .due = due, .cancel = cancel};
    int rc = hw_store_write(f->store, set_fn, &c);
    hw_effects_run(&c.fx, &f->app.after_commit, rc);
    return rc;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static size_t n_fired(fixture *f)
{
    pthread_mutex_lock(&f->mu);
    size_t n = f->n_fired;
    pthread_mutex_unlock(&f->mu);
    return n;
}

static uint64_t n_committed(fixture *f)
{
    hw_timers_stats st;
    hw_timers_stats_get(f->timers, &st);
    return st.fired;
}

/* Waits up to 5 s for at least n firings, committed (the handler records a
 * firing before its commit). */
static void wait_fired(fixture *f, size_t n)
{
    for (int i = 0; i < 1000 && (n_fired(f) < n || n_committed(f) < n); i++)
        sleep_ms(5);
    assert_true(n_fired(f) >= n);
    assert_true(n_committed(f) >= n);
}

static uint64_t pending(fixture *f)
{
    hw_store_reader *r;
    assert_int_equal(hw_store_reader_create(f->store, &r), HW_OK);
    hw_store_txn *t;
    uint64_t n = 0;
    assert_int_equal(hw_store_read_begin(r, &t), HW_OK);
    assert_int_equal(hw_timers_pending(t, &n), HW_OK);
    hw_store_read_end(r);
    hw_store_reader_destroy(r);
    return n;
}

static bool kv_has(fixture *f, const char *subject)
{
    hw_store_reader *r;
    assert_int_equal(hw_store_reader_create(f->store, &r), HW_OK);
    hw_store_txn *t;
    hw_arena *a = hw_arena_create(0);
    void *v;
    size_t len;
    assert_int_equal(hw_store_read_begin(r, &t), HW_OK);
    int rc = hw_store_kv_get(t, KV_NS, subject, strlen(subject), a, &v, &len);
    hw_store_read_end(r);
    hw_store_reader_destroy(r);
    hw_arena_destroy(a);
    return rc == HW_OK;
}

static void test_fires_once_in_due_order(void **state)
{
    fixture *f = *state;
    assert_int_equal(write_timer(f, HW_TIMER_SLA, "t-a", (2u << 8) | 1, T0 + 300, false), HW_OK);
    assert_int_equal(write_timer(f, HW_TIMER_UNASSIGNED, "t-b", 0, T0 + 100, false), HW_OK);
    assert_int_equal(write_timer(f, HW_TIMER_SLA, "t-c", 7, T0 + 200, false), HW_OK);
    assert_int_equal(pending(f), 3);
    sleep_ms(60);
    assert_int_equal(n_fired(f), 0); /* not before its time */
    hw_clock_set(f->clock, T0 + 99);
    sleep_ms(60);
    assert_int_equal(n_fired(f), 0);
    hw_clock_set(f->clock, T0 + 150);
    wait_fired(f, 1);
    assert_string_equal(f->fired[0].subject, "t-b");
    assert_int_equal(f->fired[0].kind, HW_TIMER_UNASSIGNED);
    assert_int_equal(f->fired[0].due_ms, T0 + 100);
    assert_int_equal(f->fired[0].now_ms, T0 + 150);
    hw_clock_set(f->clock, T0 + 1000); /* the other two at once: in due order */
    wait_fired(f, 3);
    assert_string_equal(f->fired[1].subject, "t-c");
    assert_int_equal(f->fired[1].arg, 7);
    assert_string_equal(f->fired[2].subject, "t-a");
    assert_int_equal(f->fired[2].arg, (2u << 8) | 1);
    assert_int_equal(f->fired[2].kind, HW_TIMER_SLA);
    sleep_ms(100);
    assert_int_equal(n_fired(f), 3); /* once */
    assert_int_equal(pending(f), 0);
    assert_true(kv_has(f, "t-a"));
    hw_timers_stats st;
    hw_timers_stats_get(f->timers, &st);
    assert_int_equal(st.fired, 3);
    assert_int_equal(st.failed, 0);
}

static void test_replaced_and_cancelled_do_not_fire(void **state)
{
    fixture *f = *state;
    assert_int_equal(write_timer(f, HW_TIMER_SLA, "t-x", 1, T0 + 100, false), HW_OK);
    assert_int_equal(write_timer(f, HW_TIMER_SLA, "t-x", 2, T0 + 500, false), HW_OK);        /* replaces */
    assert_int_equal(write_timer(f, HW_TIMER_UNASSIGNED, "t-x", 3, T0 + 100, false), HW_OK); /* other kind */
    assert_int_equal(write_timer(f, HW_TIMER_SLA, "t-y", 4, T0 + 100, false), HW_OK);
    assert_int_equal(write_timer(f, HW_TIMER_SLA, "t-y", 0, 0, true), HW_OK);         /* cancelled */
    assert_int_equal(write_timer(f, HW_TIMER_SLA, "t-never-set", 0, 0, true), HW_OK); /* cancel: OK */
    assert_int_equal(pending(f), 2);
    hw_clock_set(f->clock, T0 + 200);
    wait_fired(f, 1);
    sleep_ms(60);
    assert_int_equal(n_fired(f), 1);
    assert_int_equal(f->fired[0].kind, HW_TIMER_UNASSIGNED);
    assert_int_equal(f->fired[0].arg, 3);
    hw_clock_set(f->clock, T0 + 600);
    wait_fired(f, 2);
    sleep_ms(60);
    assert_int_equal(n_fired(f), 2);
    assert_string_equal(f->fired[1].subject, "t-x");
    assert_int_equal(f->fired[1].arg, 2);
    assert_int_equal(f->fired[1].due_ms, T0 + 500);
    assert_false(kv_has(f, "t-y"));
    assert_int_equal(pending(f), 0);
}

static void test_failing_handler_retries(void **state)
{
    fixture *f = *state;
    atomic_store(&f->failing, 1);
    assert_int_equal(write_timer(f, HW_TIMER_SLA, "t-fail", 9, T0 + 100, false), HW_OK);
    assert_int_equal(write_timer(f, HW_TIMER_UNASSIGNED, "t-ok", 0, T0 + 100, false), HW_OK);
    hw_clock_set(f->clock, T0 + 200);
    hw_timers_stats st = {0};
    for (int i = 0; i < 400 && st.failed < 4; i++) {
        sleep_ms(5);
        hw_timers_stats_get(f->timers, &st);
    }
    assert_true(st.failed >= 4);       /* tried, and tried again after the pause */
    assert_int_equal(pending(f), 2);   /* both stay: the handler failed for both */
    assert_false(kv_has(f, "t-fail")); /* and its writes were rolled back */
    assert_int_equal(n_fired(f), 0);
    atomic_store(&f->failing, 0);
    wait_fired(f, 2);
    assert_int_equal(pending(f), 0);
    assert_true(kv_has(f, "t-fail"));
    assert_int_equal(f->fired[0].due_ms, T0 + 100);
    assert_int_equal(f->fired[1].due_ms, T0 + 100);
}

static void test_survives_restart(void **state)
{
    fixture *f = *state;
    assert_int_equal(write_timer(f, HW_TIMER_SLA, "t-1", 1, T0 + 100, false), HW_OK);
    assert_int_equal(write_timer(f, HW_TIMER_REASSIGN, "agent-1", 2, T0 + 5000, false), HW_OK);
    /* Stop everything, as a shutdown does, and start again on the same data. */
    hw_timers_destroy(f->timers);
    f->timers = NULL;
    hw_store_close(f->store);
    hw_clock_set(f->clock, T0 + 1000); /* the first came due while down */
    f->store = hw_test_open(f->dir, 1 << 20, 64);
    assert_non_null(f->store);
    assert_int_equal(pending(f), 2);
    assert_int_equal(start_timers(f), 0);
    wait_fired(f, 1); /* at once after the start */
    assert_string_equal(f->fired[0].subject, "t-1");
    assert_int_equal(f->fired[0].now_ms, T0 + 1000);
    hw_clock_set(f->clock, T0 + 5000);
    wait_fired(f, 2);
    assert_string_equal(f->fired[1].subject, "agent-1");
    assert_int_equal(f->fired[1].kind, HW_TIMER_REASSIGN);
    assert_int_equal(pending(f), 0);
}

/* A handler that sets the next timer: it is pending after the firing
 * commits and fires in turn. */
static void test_handler_sets_next(void **state)
{
    fixture *f = *state;
    atomic_store(&f->chain, 1);
    assert_int_equal(write_timer(f, HW_TIMER_REASSIGN, "a-7", 10, T0 + 100, false), HW_OK);
    hw_clock_set(f->clock, T0 + 100);
    wait_fired(f, 1);
    for (int i = 0; i < 200 && pending(f) != 1; i++)
        sleep_ms(5);
    assert_int_equal(pending(f), 1);
    hw_clock_set(f->clock, T0 + 200);
    wait_fired(f, 2);
    assert_string_equal(f->fired[1].subject, "a-7-next");
    assert_int_equal(f->fired[1].arg, 11);
    assert_int_equal(f->fired[1].due_ms, T0 + 200);
}

/* With the real clock the thread sleeps up to a minute; the commit of an
 * earlier timer wakes it. */
static void test_real_clock_commit_wakes(void **state)
{
    fixture *f = *state;
    sleep_ms(50); /* the thread is asleep with nothing due */
    int64_t now = hw_clock_now_ms(f->clock);
    assert_int_equal(write_timer(f, HW_TIMER_SLA, "t-soon", 0, now + 100, false), HW_OK);
    wait_fired(f, 1);
    assert_true(f->fired[0].now_ms >= now + 100);
    assert_true(f->fired[0].now_ms < now + 3000);
}

static void test_bad_input(void **state)
{
    fixture *f = *state;
    assert_int_equal(write_timer(f, (hw_timer_kind)0, "s", 0, T0, false), HW_EINVALID);
    assert_int_equal(write_timer(f, HW_TIMER_KINDS, "s", 0, T0, false), HW_EINVALID);
    assert_int_equal(write_timer(f, HW_TIMER_SLA, "", 0, T0, false), HW_EINVALID);
    char big[300];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(write_timer(f, HW_TIMER_SLA, big, 0, T0, false), HW_EINVALID);
    big[256] = '\0';
    assert_int_equal(write_timer(f, HW_TIMER_SLA, big, 0, T0 + 1000000, false), HW_OK); /* 256 bytes: fine */
    assert_int_equal(hw_timers_register(f->timers, HW_TIMER_SLA, handler, f), HW_EINVALID); /* started */
    assert_int_equal(pending(f), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fires_once_in_due_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replaced_and_cancelled_do_not_fire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_handler_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_survives_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handler_sets_next, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_clock_commit_wakes, setup_real, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
