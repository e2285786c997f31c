/*
 * timers: the hw-timers thread and the write-side helpers (see timers.h
 * for the guarantees).
 *
 * The thread keeps next_due, the earliest due time it knows of (INT64_MAX:
 * none), under a mutex; hw_timers_committed lowers it and signals. A round
 * resets it, fires what is due, then reads the earliest pending timer from
 * the store, so a wake-up lost between the read and the reset is made good
 * by the read. Each round's requests share one arena (their effects'
 * events live in it); the writer thread fills it while the timer thread
 * waits for every done callback, and only then is it reset.
 *
 * Leader only: with replication every replica holds the timers (they are
 * records), but only the leader (hw_store_is_leader) fires them. Another
 * replica's thread looks at the leadership every LEADER_POLL_MS (the
 * timer_set effects of applied entries wake it too, and it goes back to
 * sleep) and logs each change once; when it comes to lead it looks at the
 * store at once, so what came due meanwhile fires then. A firing refused
 * with HW_ENOTLEADER (the leadership went during the round) is neither a
 * failure nor logged: the timer is still in the store for the new leader.
 */
#include "server/domain/timers.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/base/clock.h"
#include "server/base/errors.h"
#include "server/base/log.h"
#include "server/store/records.h"

#define ROUND_MAX 256
#define POLL_MS_TEST_CLOCK 10
#define MAX_SLEEP_MS 60000
#define RETRY_MS_REAL 1000
#define RETRY_MS_TEST 100
#define LEADER_POLL_MS 500

typedef struct handler {
    hw_timer_fire_fn fn;
    void *arg;
} handler;

struct hw_timers {
    hw_app *app;
    handler handlers[HW_TIMER_KINDS];
    hw_store_reader *reader; /* the thread's */
    hw_arena *arena;         /* one round's timers, requests and events */
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    /* Under mu. */
    bool stopping;
    int64_t next_due;   /* app clock ms; INT64_MAX: none known */
    bool leading;       /* as of the last look (thread only) */
    size_t outstanding; /* requests of the round not yet done */
    _Atomic uint64_t fired, failed, rounds;
};

typedef struct fire_req {
    hw_timers *t;
    hw_store_timer tm;
    int64_t now_ms;
    hw_effects fx;
    bool fired; /* by the last run of the fn: the timer was there and due */
    int status;
} fire_req;

static bool kind_ok(hw_timer_kind kind)
{
    return kind >= HW_TIMER_UNASSIGNED && kind < HW_TIMER_KINDS;
}

int hw_timers_set_in(hw_store_txn *w, hw_effects *fx, hw_timer_kind kind, const char *subject, uint32_t arg,
                     int64_t due_ms)
{
    if (!kind_ok(kind))
        return HW_EINVALID;
    int rc = hw_store_timer_put(w, (unsigned)kind, subject, arg, due_ms);
    if (rc == HW_OK && fx)
        hw_effects_timer_set(fx, due_ms);
    return rc;
}

int hw_timers_cancel_in(hw_store_txn *w, hw_timer_kind kind, const char *subject)
{
    if (!kind_ok(kind))
        return HW_EINVALID;
    int rc = hw_store_timer_delete(w, (unsigned)kind, subject);
    return rc == HW_ENOTFOUND ? HW_OK : rc;
}

int hw_timers_get_in(hw_store_txn *t, hw_timer_kind kind, const char *subject, uint32_t *arg, int64_t *due_ms)
{
    if (!kind_ok(kind))
        return HW_EINVALID;
    return hw_store_timer_get(t, (unsigned)kind, subject, arg, due_ms);
}

int hw_timers_pending(hw_store_txn *t, uint64_t *n)
{
    return hw_store_timer_count(t, n);
}

/* ------------------------------------------------------------- firing */

static int fire_fn(hw_store_txn *w, void *arg)
{
    fire_req *r = arg;
    hw_timers *t = r->t;
    hw_effects_begin(&r->fx, t->arena);
    hw_effects_set_now(&r->fx, r->now_ms);
    r->fx.app = t->app; /* handlers read the settings and the hours cache */
    r->fired = false;
    uint32_t targ = 0;
    int64_t due = 0;
    int rc = hw_store_timer_get(w, r->tm.kind, r->tm.subject, &targ, &due);
    if (rc == HW_ENOTFOUND)
        return HW_OK; /* cancelled (or fired) since it was read */
    if (rc != HW_OK)
        return rc;
    if (due > r->now_ms)
        return HW_OK; /* replaced by a later one */
    if ((rc = hw_store_timer_delete(w, r->tm.kind, r->tm.subject)) != HW_OK)
        return rc;
    const handler *h = &t->handlers[r->tm.kind < HW_TIMER_KINDS ? r->tm.kind : 0];
    if (h->fn)
        rc = h->fn(h->arg, w, &r->fx, (hw_timer_kind)r->tm.kind, r->tm.subject, targ, due, r->now_ms);
    if (rc == HW_OK) /* the other replicas run the firing's effects too */
        rc = hw_effects_note_in(&r->fx, w);
    if (rc == HW_OK)
        r->fired = true;
    return rc;
}

static void fire_done(void *arg, int status)
{
    fire_req *r = arg;
    hw_timers *t = r->t;
    hw_effects_run(&r->fx, &t->app->after_commit, status);
    r->status = status;
    pthread_mutex_lock(&t->mu);
    t->outstanding--;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

/* One round at now: fires the timers due (up to ROUND_MAX), then reads the
 * earliest pending one into *earliest (INT64_MAX: none). *full when more
 * may be due; *failures counts firings rolled back. */
static int run_round(hw_timers *t, int64_t now, int64_t *earliest, bool *full, size_t *failures)
{
    hw_app *app = t->app;
    *earliest = INT64_MAX;
    *full = false;
    *failures = 0;
    hw_arena_reset(t->arena);
    atomic_fetch_add(&t->rounds, 1);
    hw_store_txn *txn;
    hw_store_timer *due = NULL;
    size_t n = 0;
    int rc = hw_store_read_begin(t->reader, &txn);
    if (rc != HW_OK)
        return rc;
    rc = hw_store_timers_due(txn, now, ROUND_MAX, t->arena, &due, &n);
    hw_store_read_end(t->reader);
    if (rc != HW_OK)
        return rc;
    fire_req *reqs = n ? hw_arena_calloc(t->arena, n, sizeof *reqs) : NULL;
    if (n && !reqs)
        return HW_ENOMEM;
    size_t submitted = 0;
    for (size_t i = 0; i < n; i++) {
        reqs[i] = (fire_req){.t = t, .tm = due[i], .now_ms = now};
        if (reqs[i].tm.kind >= HW_TIMER_KINDS || !t->handlers[reqs[i].tm.kind].fn)
            hw_log_event(app->log, HW_LOG_WARN, "timer_without_handler", "kind=%u subject=%s effect=deleted",
                         reqs[i].tm.kind, reqs[i].tm.subject);
        pthread_mutex_lock(&t->mu);
        t->outstanding++;
        pthread_mutex_unlock(&t->mu);
        if ((rc = hw_store_submit(app->store, fire_fn, fire_done, &reqs[i])) != HW_OK) {
            pthread_mutex_lock(&t->mu);
            t->outstanding--;
            pthread_mutex_unlock(&t->mu);
            break;
        }
        submitted++;
    }
    pthread_mutex_lock(&t->mu);
    while (t->outstanding > 0)
        pthread_cond_wait(&t->cv, &t->mu);
    pthread_mutex_unlock(&t->mu);
    for (size_t i = 0; i < submitted; i++) {
        if (reqs[i].status == HW_ENOTLEADER) {
            /* not a failure: the timer stays for the new leader */
        } else if (reqs[i].status != HW_OK) {
            (*failures)++;
            atomic_fetch_add(&t->failed, 1);
            hw_log_event(app->log, HW_LOG_WARN, "timer_failed", "kind=%u subject=%s due_ms=%lld error=%s",
                         reqs[i].tm.kind, reqs[i].tm.subject, (long long)reqs[i].tm.due_ms,
                         hw_strerror(reqs[i].status));
        } else if (reqs[i].fired)
            atomic_fetch_add(&t->fired, 1);
    }
    if (rc != HW_OK)
        return rc;
    *full = n == ROUND_MAX;
    if ((rc = hw_store_read_begin(t->reader, &txn)) != HW_OK)
        return rc;
    int64_t e;
    rc = hw_store_timer_earliest(txn, &e);
    hw_store_read_end(t->reader);
    if (rc == HW_OK)
        *earliest = e;
    return rc == HW_ENOTFOUND ? HW_OK : rc;
}

static struct timespec mono_after(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    return ts;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *timers_main(void *arg)
{
    hw_timers *t = arg;
    hw_clock *clock = t->app->clock;
    bool real = hw_clock_is_real(clock);
    int64_t retry_mono = 0; /* no round before this (after failures) */
    pthread_mutex_lock(&t->mu);
    while (!t->stopping) {
        bool leads = hw_store_is_leader(t->app->store);
        if (leads != t->leading) {
            hw_log_event(t->app->log, HW_LOG_INFO, leads ? "timers_active" : "timers_standby",
                         "reason=\"%s\"",
                         leads ? "this replica leads: it fires the durable timers"
                               : "not the leader of the replicas: the leader fires the timers");
            t->leading = leads;
            if (leads) { /* what came due meanwhile fires now */
                t->next_due = 0;
                retry_mono = 0;
            }
        }
        if (!leads) {
            struct timespec deadline = mono_after(LEADER_POLL_MS);
            pthread_cond_timedwait(&t->cv, &t->mu, &deadline);
            continue;
        }
        int64_t now = hw_clock_now_ms(clock);
        if (t->next_due <= now && mono_ms() >= retry_mono) {
            t->next_due = INT64_MAX; /* what commits during the round lower it again */
            pthread_mutex_unlock(&t->mu);
            int64_t earliest;
            bool full;
            size_t failures;
            int rc = run_round(t, now, &earliest, &full, &failures);
            if (rc != HW_OK)
                hw_log_event(t->app->log, HW_LOG_ERROR, "timers_round_failed", "error=%s", hw_strerror(rc));
            pthread_mutex_lock(&t->mu);
            if (rc != HW_OK || failures) {
                retry_mono = mono_ms() + (real ? RETRY_MS_REAL : RETRY_MS_TEST);
                if (rc != HW_OK)
                    earliest = now; /* unknown: look again after the pause */
            }
            if (full)
                earliest = now;
            if (earliest < t->next_due)
                t->next_due = earliest;
            continue;
        }
        int64_t wait_ms = POLL_MS_TEST_CLOCK;
        if (real) {
            wait_ms = t->next_due == INT64_MAX ? MAX_SLEEP_MS : t->next_due - now;
            if (wait_ms > MAX_SLEEP_MS)
                wait_ms = MAX_SLEEP_MS;
        }
        int64_t until_retry = retry_mono - mono_ms();
        if (t->next_due <= now && until_retry > 0)
            wait_ms = until_retry;
        if (wait_ms < 1)
            wait_ms = 1;
        struct timespec deadline = mono_after(wait_ms);
        pthread_cond_timedwait(&t->cv, &t->mu, &deadline);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

/* ---------------------------------------------------------- lifecycle */

int hw_timers_create(hw_timers **out, hw_app *app)
{
    hw_timers *t = calloc(1, sizeof *t);
    if (!t)
        return HW_ENOMEM;
    t->app = app;
    t->next_due = 0;    /* look at the store at once: a restart may find due timers */
    t->leading = true;  /* a single node leads; a replica that does not says so once */
    int rc = hw_store_reader_create(app->store, &t->reader);
    if (rc == HW_OK && !(t->arena = hw_arena_create(64 * 1024)))
        rc = HW_ENOMEM;
    if (rc != HW_OK) {
        hw_store_reader_destroy(t->reader);
        free(t);
        return rc;
    }
    pthread_mutex_init(&t->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cv, &ca);
    pthread_condattr_destroy(&ca);
    *out = t;
    return HW_OK;
}

int hw_timers_register(hw_timers *t, hw_timer_kind kind, hw_timer_fire_fn fn, void *arg)
{
    if (!t || !kind_ok(kind) || t->started)
        return HW_EINVALID;
    t->handlers[kind] = (handler){fn, arg};
    return HW_OK;
}

int hw_timers_start(hw_timers *t)
{
    if (!t || t->started)
        return HW_EINVALID;
    if (pthread_create(&t->thread, NULL, timers_main, t) != 0)
        return HW_ENOMEM;
    pthread_setname_np(t->thread, "hw-timers");
    t->started = true;
    return HW_OK;
}

void hw_timers_destroy(hw_timers *t)
{
    if (!t)
        return;
    if (t->started) {
        pthread_mutex_lock(&t->mu);
        t->stopping = true;
        pthread_cond_broadcast(&t->cv);
        pthread_mutex_unlock(&t->mu);
        pthread_join(t->thread, NULL);
    }
    hw_store_reader_destroy(t->reader);
    hw_arena_destroy(t->arena);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

void hw_timers_committed(hw_timers *t, int64_t earliest_due_ms)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    if (earliest_due_ms < t->next_due) {
        t->next_due = earliest_due_ms;
        pthread_cond_broadcast(&t->cv);
    }
    pthread_mutex_unlock(&t->mu);
}

void hw_timers_stats_get(const hw_timers *t, hw_timers_stats *out)
{
    hw_timers *m = (hw_timers *)t;
    out->fired = atomic_load(&m->fired);
    out->failed = atomic_load(&m->failed);
    out->rounds = atomic_load(&m->rounds);
}
