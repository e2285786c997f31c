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
 *
 * Conversations: a pass walks the queues (skills) that have a retention
 * period, in name order, and each one's CLOSED tickets through the
 * (queue, status) index, a page at a time, scrubbing those closed longer
 * ago than the period and not yet redacted. A batch visits at most `batch`
 * tickets and scrubs at most CONV_SCRUBS_MAX (a scrub rewrites every
 * message of a ticket, so the writer is held for a bounded time). The
 * position (queue, cursor) lives in memory; a finished pass waits until
 * conversations_pass_ms after its start (by the store's clock) before the
 * next one begins, so an idle store is not rescanned five times a second.
 *
 * The audit log's last-denied records (one per token and method refused,
 * records.h) are visited `batch` at a time from where the last batch
 * stopped, like the dedupe records, and those not written for a day go:
 * they only space access.denied entries a minute apart.
 *
 * Attachments and pieces that no message refers to (an upload never sent,
 * records.h) go unused_attachments_ms after they were stored, at most
 * ATTACH_SWEEP_MAX pending entries per batch (each may free up to 1 MiB
 * per piece, which the batch zeroes). A batch that removed conversations
 * or files asks the store to wipe its free pages afterwards.
 */
#include "server/ops/retention.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/store/eventlog.h"
#include "server/store/records.h"

/* Scrubs per batch at most, and the page size of a queue's walk. */
#define CONV_SCRUBS_MAX 64u
#define CONV_PAGE 64u
#define ATTACH_SWEEP_MAX 64u
#define DAY_MS (24 * 3600 * 1000LL)

/* Where the conversation pass stands. */
typedef struct conv_pos {
    char queue[HW_STORE_ID_MAX]; /* the queue being walked; "" between passes */
    hw_store_cursor cursor;      /* within it */
    int64_t pass_started_ms;     /* 0: never */
} conv_pos;

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
    conv_pos conv; /* the thread's own */
    atomic_uint_fast64_t conv_redacted, conv_deleted, conv_messages;
    atomic_uint_fast64_t audit_expired;
    hw_audit_denied_pos denied; /* the thread's own */
    atomic_uint_fast64_t denied_expired;
    atomic_uint_fast64_t attachments_expired, chunks_expired;
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
    int conversations;
    int64_t conv_pass_ms;
    conv_pos conv_start, conv_end;
    size_t conv_redacted, conv_deleted, conv_messages;
    int64_t audit_cutoff; /* 0: none */
    size_t audit_deleted;
    hw_audit_denied_pos denied_start, denied_end;
    size_t denied_deleted;
    int64_t attach_cutoff; /* 0: none */
    hw_attachment_sweep_counts attach;
} batch_ctx;

/* The first queue after `after` (by name; "" = from the start) with a
 * retention period, into q: *found 0 when none. */
static int next_retained_queue(hw_store_txn *w, const char *after, char *q, size_t qlen, int *found)
{
    hw_arena *a = hw_store_txn_arena(w);
    hw_store_cursor cur = {0};
    *found = 0;
    do {
        Helpwire__V1__Skill **sk;
        size_t n;
        int rc = hw_store_skill_list(w, &cur, 256, a, &sk, &n);
        if (rc != HW_OK)
            return rc;
        for (size_t i = 0; i < n; i++) {
            if (sk[i]->retention_days == 0 || strcmp(sk[i]->name, after) <= 0)
                continue;
            if (!*found || strcmp(sk[i]->name, q) < 0) {
                snprintf(q, qlen, "%s", sk[i]->name);
                *found = 1;
            }
        }
    } while (cur.len != 0);
    return HW_OK;
}

/* An audit entry "retention.apply" (actor system) for n conversations of
 * queue scrubbed in this batch's page: the audit log records every action
 * on personal data, the sweep's too. Written with the store's records
 * (ops is below the domain's audit module). */
static int audit_scrubs(hw_store_txn *w, const batch_ctx *b, const char *queue, const Helpwire__V1__Skill *sk,
                        size_t n)
{
    if (n == 0)
        return HW_OK;
    char days[24], count[24];
    snprintf(days, sizeof days, "%u", sk->retention_days);
    snprintf(count, sizeof count, "%zu", n);
    Helpwire__V1__AuditEvent__DetailsEntry kv[3];
    Helpwire__V1__AuditEvent__DetailsEntry *ptrs[3];
    const char *keys[3] = {"retention_days", "action", "tickets"};
    const char *vals[3] = {days,
                           sk->retention_action == HELPWIRE__V1__RETENTION_ACTION__RETENTION_ACTION_DELETE
                               ? "delete"
                               : "redact",
                           count};
    for (int i = 0; i < 3; i++) {
        helpwire__v1__audit_event__details_entry__init(&kv[i]);
        kv[i].key = (char *)keys[i];
        kv[i].value = (char *)vals[i];
        ptrs[i] = &kv[i];
    }
    Helpwire__V1__AuditEvent e = HELPWIRE__V1__AUDIT_EVENT__INIT;
    e.at_unix_ms = b->now;
    e.actor = (char *)"system";
    e.action = (char *)"retention.apply";
    e.target = (char *)queue;
    e.outcome = HELPWIRE__V1__AUDIT_OUTCOME__AUDIT_OUTCOME_OK;
    e.n_details = 3;
    e.details = ptrs;
    return hw_store_audit_append(w, &e);
}

/* One batch of the conversation pass, from b->conv_end (a copy of where the
 * last committed batch stopped). */
static int sweep_conversations(hw_store_txn *w, batch_ctx *b)
{
    conv_pos *p = &b->conv_end;
    hw_arena *a = hw_store_txn_arena(w);
    int rc, found;
    if (p->queue[0] == '\0') {
        if (p->pass_started_ms != 0 && b->now < p->pass_started_ms + b->conv_pass_ms &&
            b->now >= p->pass_started_ms)
            return HW_OK; /* the last pass was recent */
        if ((rc = next_retained_queue(w, "", p->queue, sizeof p->queue, &found)) != HW_OK)
            return rc;
        p->pass_started_ms = b->now;
        memset(&p->cursor, 0, sizeof p->cursor);
        if (!found)
            return HW_OK;
    }
    size_t visited = 0, scrubbed = 0;
    while (visited < b->batch && scrubbed < CONV_SCRUBS_MAX) {
        Helpwire__V1__Skill *sk;
        rc = hw_store_skill_get(w, p->queue, a, &sk);
        if (rc != HW_OK && rc != HW_ENOTFOUND)
            return rc;
        if (rc == HW_OK && sk->retention_days > 0) {
            int64_t cutoff = b->now - (int64_t)sk->retention_days * DAY_MS;
            int del = sk->retention_action == HELPWIRE__V1__RETENTION_ACTION__RETENTION_ACTION_DELETE;
            hw_ticket_filter f = {.status = HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_CLOSED, .queue = p->queue};
            Helpwire__V1__Ticket **tk;
            size_t n;
            if ((rc = hw_store_ticket_list(w, &f, &p->cursor, CONV_PAGE, a, &tk, &n)) != HW_OK)
                return rc;
            visited += n;
            size_t before = scrubbed;
            for (size_t i = 0; i < n; i++) {
                if (tk[i]->redacted_unix_ms != 0 || tk[i]->closed_unix_ms <= 0 || tk[i]->closed_unix_ms >= cutoff)
                    continue;
                size_t msgs = 0;
                rc = hw_store_ticket_scrub(w, tk[i]->id, del ? HW_SCRUB_DELETE : HW_SCRUB_REDACT, b->now, &msgs);
                if (rc != HW_OK)
                    return rc;
                scrubbed++;
                b->conv_messages += msgs;
                if (del)
                    b->conv_deleted++;
                else
                    b->conv_redacted++;
            }
            if ((rc = audit_scrubs(w, b, p->queue, sk, scrubbed - before)) != HW_OK)
                return rc;
            if (p->cursor.len != 0)
                continue; /* more of this queue */
        } else {
            visited++; /* a queue removed or without retention now: skip it */
        }
        char next[HW_STORE_ID_MAX];
        if ((rc = next_retained_queue(w, p->queue, next, sizeof next, &found)) != HW_OK)
            return rc;
        memset(&p->cursor, 0, sizeof p->cursor);
        if (!found) {
            p->queue[0] = '\0'; /* the pass is over */
            break;
        }
        memcpy(p->queue, next, sizeof next);
    }
    return HW_OK;
}

static int sweep_fn(hw_store_txn *w, void *arg)
{
    batch_ctx *b = arg;
    b->end = b->start;
    b->deleted = b->failed_deleted = b->events_deleted = 0;
    b->conv_end = b->conv_start;
    b->conv_redacted = b->conv_deleted = b->conv_messages = 0;
    int rc = HW_OK;
    if (b->cutoff > 0)
        rc = hw_store_dedupe_sweep(w, &b->end, b->batch, b->cutoff, b->now, &b->deleted);
    if (rc == HW_OK && b->failed_cutoff > 0)
        rc = hw_store_failed_prune(w, b->failed_cutoff, b->batch, &b->failed_deleted);
    if (rc == HW_OK && (b->events_cutoff > 0 || b->events_max_keep > 0))
        rc = hw_eventlog_trim(w, b->events_cutoff, b->events_max_keep, b->batch, &b->events_deleted);
    if (rc == HW_OK && b->conversations)
        rc = sweep_conversations(w, b);
    /* The audit log: in time order, the oldest go first. */
    b->audit_deleted = 0;
    if (rc == HW_OK && b->audit_cutoff > 0)
        rc = hw_store_audit_prune(w, b->audit_cutoff, b->batch, &b->audit_deleted);
    b->denied_end = b->denied_start;
    b->denied_deleted = 0;
    if (rc == HW_OK)
        rc = hw_store_audit_denied_prune(w, &b->denied_end, b->now - DAY_MS,
                                         b->batch < HW_STORE_LIST_MAX ? b->batch : HW_STORE_LIST_MAX,
                                         &b->denied_deleted);
    memset(&b->attach, 0, sizeof b->attach);
    if (rc == HW_OK && b->attach_cutoff > 0)
        rc = hw_store_attachment_sweep(w, b->attach_cutoff, ATTACH_SWEEP_MAX, &b->attach);
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
                       .conversations = r->o.conversations,
                       .conv_pass_ms = r->o.conversations_pass_ms,
                       .conv_start = r->conv,
                       .now = now};
        b.audit_cutoff = r->o.audit_retention_ms ? now - r->o.audit_retention_ms : 0;
        b.denied_start = r->denied;
        b.attach_cutoff = r->o.unused_attachments_ms ? now - r->o.unused_attachments_ms : 0;
        int rc = hw_store_write(r->o.store, sweep_fn, &b);
        if (rc == HW_OK) {
            r->sweep = b.end;
            atomic_fetch_add(&r->expired, b.deleted);
            atomic_fetch_add(&r->failed_expired, b.failed_deleted);
            atomic_fetch_add(&r->events_expired, b.events_deleted);
            r->conv = b.conv_end;
            atomic_fetch_add(&r->conv_redacted, b.conv_redacted);
            atomic_fetch_add(&r->conv_deleted, b.conv_deleted);
            atomic_fetch_add(&r->conv_messages, b.conv_messages);
            if (b.conv_redacted + b.conv_deleted > 0)
                hw_log_event(r->o.log, HW_LOG_INFO, "retention_conversations",
                             "redacted=%zu deleted=%zu messages=%zu", b.conv_redacted, b.conv_deleted,
                             b.conv_messages);
            atomic_fetch_add(&r->audit_expired, b.audit_deleted);
            r->denied = b.denied_end;
            atomic_fetch_add(&r->denied_expired, b.denied_deleted);
            atomic_fetch_add(&r->attachments_expired, b.attach.attachments);
            atomic_fetch_add(&r->chunks_expired, b.attach.chunks);
            if (b.attach.attachments + b.attach.chunks > 0)
                hw_log_event(r->o.log, HW_LOG_INFO, "attachments_swept", "attachments=%zu chunks=%zu",
                             b.attach.attachments, b.attach.chunks);
            if (b.conv_redacted + b.conv_deleted + b.attach.chunks > 0)
                hw_store_wipe_free(r->o.store); /* the removed bytes' old pages */
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
        o->conversations_pass_ms < 0 || o->unused_attachments_ms < 0 ||
        (o->dedupe_retention_ms == 0 && o->failed_retention_ms == 0 && o->events_retention_ms == 0 &&
         o->events_max_keep == 0 && !o->conversations && o->audit_retention_ms == 0))
        return HW_EINVALID;
    if (o->audit_retention_ms < 0)
        return HW_EINVALID;
    hw_retention *r = calloc(1, sizeof *r);
    if (!r)
        return HW_ENOMEM;
    r->o = *o;
    if (r->o.interval_ms <= 0)
        r->o.interval_ms = 200;
    if (r->o.conversations_pass_ms == 0)
        r->o.conversations_pass_ms = 60000;
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

uint64_t hw_retention_conversations_redacted(const hw_retention *r)
{
    return r ? atomic_load(&((hw_retention *)r)->conv_redacted) : 0;
}

uint64_t hw_retention_conversations_deleted(const hw_retention *r)
{
    return r ? atomic_load(&((hw_retention *)r)->conv_deleted) : 0;
}

uint64_t hw_retention_conversation_messages(const hw_retention *r)
{
    return r ? atomic_load(&((hw_retention *)r)->conv_messages) : 0;
}

uint64_t hw_retention_audit_expired(const hw_retention *r)
{
    return r ? atomic_load(&((hw_retention *)r)->audit_expired) : 0;
}

uint64_t hw_retention_denied_expired(const hw_retention *r)
{
    return r ? atomic_load(&((hw_retention *)r)->denied_expired) : 0;
}

uint64_t hw_retention_attachments_expired(const hw_retention *r)
{
    return r ? atomic_load(&((hw_retention *)r)->attachments_expired) : 0;
}

uint64_t hw_retention_chunks_expired(const hw_retention *r)
{
    return r ? atomic_load(&((hw_retention *)r)->chunks_expired) : 0;
}
