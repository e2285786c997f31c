/*
 * retention: the sweeping thread (see retention.h). Each batch is one
 * store write (it joins a group commit like any other), visiting at most
 * `batch` dedupe records from where the last one stopped, so the writer is
 * never held for long and a full pass over N records takes about
 * N / batch * interval. The position lives only in memory: after a
 * restart the sweep starts over from the first record.
 *
 * Failed outbox entries need no position: their time index is read oldest
 * first, so the same batch deletes up to `batch` of those past their
 * period and stops at the first younger one. The ticket event log is in
 * sequence order, which is time order, and is trimmed the same way (also
 * beyond its length bound).
 */
#include "server/ops/retention.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "server/store/eventlog.h"
#include "server/store/records.h"

struct hw_retention {
    hw_retention_options o;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    bool stop;
    hw_dedupe_sweep sweep; /* the thread's own */
    atomic_uint_fast64_t expired;
    atomic_uint_fast64_t failed_expired;
    atomic_uint_fast64_t events_expired;
};

typedef struct {
    hw_dedupe_sweep start; /* where the batch begins (the write fn may run again) */
    hw_dedupe_sweep end;   /* where it ended; kept only when the batch commits */
    size_t batch;
    int64_t cutoff, now;
    int64_t failed_cutoff; /* 0: none */
    int64_t events_cutoff; /* 0: none */
    uint64_t events_max_keep;
    size_t deleted, failed_deleted, events_deleted;
} batch_ctx;

static int sweep_fn(hw_store_txn *w, void *arg)
{
    batch_ctx *b = arg;
    b->end = b->start;
    b->deleted = b->failed_deleted = b->events_deleted = 0;
    int rc = HW_OK;
    if (b->cutoff > 0)
        rc = hw_store_dedupe_sweep(w, &b->end, b->batch, b->cutoff, b->now, &b->deleted);
    if (rc == HW_OK && b->failed_cutoff > 0)
        rc = hw_store_failed_prune(w, b->failed_cutoff, b->batch, &b->failed_deleted);
    if (rc == HW_OK && (b->events_cutoff > 0 || b->events_max_keep > 0))
        rc = hw_eventlog_trim(w, b->events_cutoff, b->events_max_keep, b->batch, &b->events_deleted);
    return rc;
}

static void *retention_main(void *arg)
{
    hw_retention *r = arg;
    bool leading = true; /* a single node leads; a replica that does not says so once */
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += (long)(r->o.interval_ms % 1000) * 1000000L;
        until.tv_sec += r->o.interval_ms / 1000 + until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        while (!r->stop && pthread_cond_timedwait(&r->cv, &r->mu, &until) != ETIMEDOUT) {
        }
        if (r->stop)
            break;
        pthread_mutex_unlock(&r->mu);
        bool leads = hw_store_is_leader(r->o.store);
        if (leads != leading) {
            hw_log_event(r->o.log, HW_LOG_INFO, leads ? "retention_active" : "retention_standby",
                         "reason=\"%s\"",
                         leads ? "this replica leads: it sweeps" : "not the leader of the replicas: the leader sweeps");
            leading = leads;
        }
        if (!leads) {
            pthread_mutex_lock(&r->mu);
            continue;
        }
        int64_t now = hw_clock_now_ms(r->o.clock);
        batch_ctx b = {.start = r->sweep,
                       .batch = r->o.batch,
                       .cutoff = r->o.dedupe_retention_ms ? now - r->o.dedupe_retention_ms : 0,
                       .failed_cutoff = r->o.failed_retention_ms ? now - r->o.failed_retention_ms : 0,
                       .events_cutoff = r->o.events_retention_ms ? now - r->o.events_retention_ms : 0,
                       .events_max_keep = r->o.events_max_keep,
                       .now = now};
        int rc = hw_store_write(r->o.store, sweep_fn, &b);
        if (rc == HW_OK) {
            r->sweep = b.end;
            atomic_fetch_add(&r->expired, b.deleted);
            atomic_fetch_add(&r->failed_expired, b.failed_deleted);
            atomic_fetch_add(&r->events_expired, b.events_deleted);
        } else if (rc != HW_ECLOSED && rc != HW_ENOTLEADER) {
            hw_log_event(r->o.log, HW_LOG_WARN, "dedupe_sweep_failed", "error=%s", hw_strerror(rc));
        }
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

int hw_retention_start(const hw_retention_options *o, hw_retention **out)
{
    *out = NULL;
    if (!o->store || o->dedupe_retention_ms < 0 || o->failed_retention_ms < 0 || o->events_retention_ms < 0 ||
        (o->dedupe_retention_ms == 0 && o->failed_retention_ms == 0 && o->events_retention_ms == 0 &&
         o->events_max_keep == 0))
        return HW_EINVALID;
    hw_retention *r = calloc(1, sizeof *r);
    if (!r)
        return HW_ENOMEM;
    r->o = *o;
    if (r->o.interval_ms <= 0)
        r->o.interval_ms = 200;
    if (r->o.batch == 0 || r->o.batch > HW_STORE_LIST_MAX)
        r->o.batch = 1000;
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&r->thread, NULL, retention_main, r) != 0) {
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        free(r);
        return HW_ENOMEM;
    }
    pthread_setname_np(r->thread, "hw-retention");
    *out = r;
    return HW_OK;
}

void hw_retention_stop(hw_retention *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

uint64_t hw_retention_dedupe_expired(const hw_retention *r)
{
    return r ? atomic_load(&((hw_retention *)r)->expired) : 0;
}

uint64_t hw_retention_failed_expired(const hw_retention *r)
{
    return r ? atomic_load(&((hw_retention *)r)->failed_expired) : 0;
}

uint64_t hw_retention_events_expired(const hw_retention *r)
{
    return r ? atomic_load(&((hw_retention *)r)->events_expired) : 0;
}
