/*
 * waits: a wait for the applied index that the call's deadline bounds.
 *
 * Each wait is an entry with two references: one held by the cluster's
 * when_applied callback, one by the timer list. An atomic `claimed` flag
 * decides which of the two ends the wait; whoever loses only drops its
 * reference. The list is kept sorted by deadline under one mutex, and the
 * timer thread sleeps on a condition variable (CLOCK_MONOTONIC) until the
 * earliest deadline or until a new entry goes in front. done callbacks run
 * outside the mutex. Replicas have a handful of waits at a time (forwarded
 * writes, reads behind the client's index), so a sorted list is enough.
 */
#include "server/net/waits.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

typedef struct wait_entry {
    struct wait_entry *prev, *next; /* the list, under ws->mu */
    bool listed;                    /* under ws->mu */
    hw_waits *ws;                   /* touched only by whoever claims */
    int64_t deadline_ns;
    atomic_bool claimed;
    atomic_int refs;
    void (*done)(void *arg, hw_wait_outcome outcome);
    void *arg;
} wait_entry;

struct hw_waits {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    wait_entry head; /* sentinel; sorted by deadline, earliest first */
    bool stop;
    pthread_t thread;
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void entry_unref(wait_entry *e)
{
    if (atomic_fetch_sub(&e->refs, 1) == 1)
        free(e);
}

/* Caller holds ws->mu. */
static void unlink_locked(wait_entry *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->listed = false;
}

static bool claim(wait_entry *e)
{
    return !atomic_exchange(&e->claimed, true);
}

/* The when_applied callback. */
static void on_applied(void *arg, bool ok)
{
    wait_entry *e = arg;
    if (claim(e)) {
        hw_waits *ws = e->ws;
        pthread_mutex_lock(&ws->mu);
        bool was = e->listed;
        if (was)
            unlink_locked(e);
        pthread_mutex_unlock(&ws->mu);
        if (was)
            entry_unref(e); /* the list's reference */
        e->done(e->arg, ok ? HW_WAIT_APPLIED : HW_WAIT_STOPPED);
    }
    entry_unref(e); /* the callback's reference */
}

/* Takes entries off the list: those due by now_ns (all when now_ns is
 * INT64_MAX), ending the unclaimed ones with outcome. */
static void end_due(hw_waits *ws, int64_t now_ns, hw_wait_outcome outcome)
{
    wait_entry *due = NULL;
    pthread_mutex_lock(&ws->mu);
    while (ws->head.next != &ws->head && ws->head.next->deadline_ns <= now_ns) {
        wait_entry *e = ws->head.next;
        unlink_locked(e);
        e->next = due; /* off the list now: next is free for the chain */
        due = e;
    }
    pthread_mutex_unlock(&ws->mu);
    while (due) {
        wait_entry *e = due;
        due = e->next;
        if (claim(e))
            e->done(e->arg, outcome);
        entry_unref(e);
    }
}

static void *timer_main(void *arg)
{
    hw_waits *ws = arg;
    pthread_mutex_lock(&ws->mu);
    while (!ws->stop) {
        int64_t now = mono_ns();
        if (ws->head.next != &ws->head && ws->head.next->deadline_ns <= now) {
            pthread_mutex_unlock(&ws->mu);
            end_due(ws, now, HW_WAIT_EXPIRED);
            pthread_mutex_lock(&ws->mu);
            continue;
        }
        if (ws->head.next == &ws->head || ws->head.next->deadline_ns == INT64_MAX) {
            pthread_cond_wait(&ws->cv, &ws->mu);
        } else {
            int64_t d = ws->head.next->deadline_ns;
            struct timespec ts = {d / 1000000000, d % 1000000000};
            pthread_cond_timedwait(&ws->cv, &ws->mu, &ts);
        }
    }
    pthread_mutex_unlock(&ws->mu);
    return NULL;
}

int hw_waits_create(hw_waits **out)
{
    *out = NULL;
    hw_waits *ws = calloc(1, sizeof *ws);
    if (!ws)
        return -1;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ws->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&ws->mu, NULL);
    ws->head.next = ws->head.prev = &ws->head;
    if (pthread_create(&ws->thread, NULL, timer_main, ws) != 0) {
        pthread_cond_destroy(&ws->cv);
        pthread_mutex_destroy(&ws->mu);
        free(ws);
        return -1;
    }
    pthread_setname_np(ws->thread, "hw-net-waits");
    *out = ws;
    return 0;
}

int hw_waits_add(hw_waits *ws, hw_when_applied_fn when_applied, void *app, uint64_t index,
                 int64_t deadline_ns, void (*done)(void *arg, hw_wait_outcome outcome), void *arg)
{
    wait_entry *e = calloc(1, sizeof *e);
    if (!e)
        return -1;
    e->ws = ws;
    e->deadline_ns = deadline_ns;
    e->done = done;
    e->arg = arg;
    atomic_init(&e->claimed, false);
    atomic_init(&e->refs, 2);
    pthread_mutex_lock(&ws->mu);
    wait_entry *at = ws->head.next;
    while (at != &ws->head && at->deadline_ns <= deadline_ns)
        at = at->next;
    e->next = at;
    e->prev = at->prev;
    at->prev->next = e;
    at->prev = e;
    e->listed = true;
    if (ws->head.next == e)
        pthread_cond_signal(&ws->cv);
    pthread_mutex_unlock(&ws->mu);
    when_applied(app, index, on_applied, e);
    return 0;
}

void hw_waits_cancel_all(hw_waits *ws)
{
    end_due(ws, INT64_MAX, HW_WAIT_CANCELLED);
}

void hw_waits_destroy(hw_waits *ws)
{
    if (!ws)
        return;
    hw_waits_cancel_all(ws);
    pthread_mutex_lock(&ws->mu);
    ws->stop = true;
    pthread_cond_signal(&ws->cv);
    pthread_mutex_unlock(&ws->mu);
    pthread_join(ws->thread, NULL);
    pthread_cond_destroy(&ws->cv);
    pthread_mutex_destroy(&ws->mu);
    free(ws);
}
