/*
 * outbox: the Subscribe stream on the C core (see outbox.h).
 *
 * One call per subscription on a private completion queue: batch 1
 * sends metadata (wait-for-ready), the request and half-close and receives
 * the initial metadata, which helpwired sends as it accepts the stream; a
 * RECV_STATUS_ON_CLIENT op stays pending for the life of the call; then one
 * RECV_MESSAGE at a time. While batch 1 waits for a connection, this
 * thread's grpc_completion_queue_next is what polls the channel's
 * connection attempts, so their outcome is seen at once (a client with no
 * call waiting learns of a connect only from the core's backup poller,
 * every 5 s). A NULL message means the server
 * ended the stream, whose status then arrives. br_outbox_stop cancels the
 * call from another thread (grpc_call_cancel is thread-safe), which
 * completes the pending ops.
 *
 * The stream thread only queues: each message goes to its recipient's
 * FIFO under mu, and the workers (work_cv) take a recipient whose head is
 * ready, remove the head, deliver it unlocked, and put it back at the head
 * with a later ready time when it is to be retried. First attempts go
 * before retries, and retries hold at most a quarter of the workers
 * (pick). The recipients are one list, moved to its tail when taken, so
 * the workers go round them. A
 * stream that ends bumps gen: the queues are emptied, and a message being
 * delivered then is not put back.
 */
#include "clients/lib/outbox.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "clients/lib/backoff.h"
#include "clients/lib/dedupe.h"

/* A stream that lived this long counts as healthy: the next reconnect
 * starts from the initial backoff again. */
#define HEALTHY_STREAM_MS 5000

#define MAX_WORKERS 64

/* One queued message. */
typedef struct item {
    struct item *next;
    Helpwire__V1__OutboundMessage *m;
    unsigned gen;   /* the stream it came on */
    int attempts;   /* made by this bridge */
    int64_t first_ms; /* wall clock of the first attempt */
} item;

/* One recipient's FIFO. */
typedef struct recip {
    struct recip *next;
    char *id;
    item *head, *tail;
    uint64_t current; /* the sequence a worker is delivering, 0 for none */
    bool restreamed;  /* current came again on a newer stream: keep it on a retry */
    bool busy;
    bool retrying;    /* busy with a retry (counted in retry_busy) */
    int64_t ready_at; /* monotonic ms: the head not before */
    br_backoff bo;
} recip;

struct br_outbox {
    br_outbox_options o;
    char instance[160];
    pthread_t thread;
    pthread_t workers[MAX_WORKERS];
    int n_workers;
    pthread_mutex_t mu;
    pthread_cond_t cv, work_cv;
    bool stopping, workers_stop;
    grpc_call *call; /* the live call, guarded by mu */
    br_dedupe *delivered; /* without a sent record */
    br_backoff backoff;
    /* guarded by mu */
    recip *recips, *recips_tail;
    int retry_busy; /* workers on a retry now, at most max_retry_busy */
    int max_retry_busy;
    unsigned gen;
    int64_t channel_ready_at;
    br_backoff channel_bo;
    uint64_t rng;
    atomic_bool lease;
    atomic_ulong connects, n_delivered, acked, failed, refused, queued;
};

typedef enum { TAG_START = 1, TAG_RECV, TAG_STATUS } tag_id;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool stopping(br_outbox *ob)
{
    pthread_mutex_lock(&ob->mu);
    bool s = ob->stopping;
    pthread_mutex_unlock(&ob->mu);
    return s || (ob->o.stop && br_stop_requested(ob->o.stop));
}

/* Waits ms or until stopped; true when stopped. Wakes at least every
 * 100 ms to notice a stop requested by a signal through o.stop. */
static bool sleep_ms(br_outbox *ob, int ms)
{
    int64_t end = now_ms() + ms;
    pthread_mutex_lock(&ob->mu);
    while (!ob->stopping && !(ob->o.stop && br_stop_requested(ob->o.stop))) {
        int64_t left = end - now_ms();
        if (left <= 0)
            break;
        if (left > 100)
            left = 100;
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        t.tv_nsec += (long)left * 1000000;
        if (t.tv_nsec >= 1000000000) {
            t.tv_sec++;
            t.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&ob->cv, &ob->mu, &t);
    }
    bool s = ob->stopping;
    pthread_mutex_unlock(&ob->mu);
    return s || (ob->o.stop && br_stop_requested(ob->o.stop));
}

/* Acknowledges seq (as FAILED with failed_reason when given, carrying
 * late, the message as delivered, when given); logs a failure (the message
 * then comes back and is acknowledged again without being resent).
 * Returns 0 or -1. */
static int ack_msg(br_outbox *ob, uint64_t seq, const char *failed_reason,
                   const Helpwire__V1__OutboundMessage *late)
{
    int rc = -1;
    Helpwire__V1__AckRequest req = HELPWIRE__V1__ACK_REQUEST__INIT;
    Helpwire__V1__FailedDelivery f = HELPWIRE__V1__FAILED_DELIVERY__INIT;
    Helpwire__V1__FailedDelivery *fp = &f;
    req.channel = ob->o.channel;
    if (failed_reason) {
        f.seq = seq;
        f.reason = (char *)failed_reason;
        f.message = (Helpwire__V1__OutboundMessage *)late;
        req.n_failed = 1;
        req.failed = &fp;
    } else {
        req.n_seqs = 1;
        req.seqs = &seq;
    }
    ProtobufCMessage *reply = NULL;
    hw_client_status st;
    if (hw_client_unary(ob->o.rpc, "/helpwire.v1.Outbox/Ack", &req.base, &helpwire__v1__ack_reply__descriptor,
                        &reply, ob->o.rpc_timeout_ms, &st) == 0) {
        atomic_fetch_add(&ob->acked, 1);
        rc = 0;
        hw_log_event(ob->o.log, HW_LOG_DEBUG, "outbox_acked", "seq=%llu", (unsigned long long)seq);
    } else {
        char q[300];
        hw_log_event(ob->o.log, HW_LOG_WARN, "outbox_ack_failed", "seq=%llu code=%s message=%s",
                     (unsigned long long)seq, hw_client_status_name(st.code),
                     hw_log_quote(st.message, q, sizeof q));
    }
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    return rc;
}

static void ack(br_outbox *ob, uint64_t seq, const char *failed_reason)
{
    ack_msg(ob, seq, failed_reason, NULL);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Records the lease state; logs it (always with a reason, else on a
 * change or a control message: log) and tells the bridge of a change. */
static void set_lease(br_outbox *ob, bool active, bool log, const char *why)
{
    bool was = atomic_exchange(&ob->lease, active);
    if (log || was != active)
        hw_log_event(ob->o.log, HW_LOG_INFO, "outbox_lease", "state=%s instance=%s%s%s",
                     active ? "active" : "standby", ob->instance, why ? " reason=" : "", why ? why : "");
    if (was != active && ob->o.on_lease)
        ob->o.on_lease(ob->o.lease_arg, active);
}

static void item_free(item *it)
{
    if (it->m)
        protobuf_c_message_free_unpacked(&it->m->base, NULL);
    free(it);
}

/* mu held: the recipient named id, or NULL. */
static recip *find_recip(br_outbox *ob, const char *id)
{
    for (recip *r = ob->recips; r; r = r->next)
        if (strcmp(r->id, id) == 0)
            return r;
    return NULL;
}

/* mu held: unlinks r from the list (prev is its predecessor or NULL). */
static void unlink_recip(br_outbox *ob, recip *r)
{
    recip *prev = NULL;
    for (recip *x = ob->recips; x && x != r; x = x->next)
        prev = x;
    if (prev)
        prev->next = r->next;
    else
        ob->recips = r->next;
    if (ob->recips_tail == r)
        ob->recips_tail = prev;
    r->next = NULL;
}

static void append_recip(br_outbox *ob, recip *r)
{
    r->next = NULL;
    if (ob->recips_tail)
        ob->recips_tail->next = r;
    else
        ob->recips = r;
    ob->recips_tail = r;
}

/* mu held: frees r when nothing of it is left. */
static void maybe_free_recip(br_outbox *ob, recip *r)
{
    if (r->busy || r->head)
        return;
    unlink_recip(ob, r);
    free(r->id);
    free(r);
}

/* Queues m (taking it) in its recipient's FIFO, unless it is queued or
 * being delivered already. */
static void enqueue(br_outbox *ob, Helpwire__V1__OutboundMessage *m)
{
    const char *id = m->channel_user_id ? m->channel_user_id : "";
    pthread_mutex_lock(&ob->mu);
    recip *r = find_recip(ob, id);
    if (r) {
        bool dup = r->current == m->seq;
        if (dup)
            r->restreamed = true;
        for (item *it = r->head; it && !dup; it = it->next)
            dup = it->m->seq == m->seq;
        if (dup) {
            pthread_mutex_unlock(&ob->mu);
            hw_log_event(ob->o.log, HW_LOG_DEBUG, "outbox_redelivered_in_progress", "seq=%llu attempt=%u",
                         (unsigned long long)m->seq, m->attempt);
            protobuf_c_message_free_unpacked(&m->base, NULL);
            return;
        }
    }
    item *it = calloc(1, sizeof *it);
    if (!r) {
        r = calloc(1, sizeof *r);
        if (r && !(r->id = strdup(id))) {
            free(r);
            r = NULL;
        }
        if (r) {
            ob->rng = ob->rng * 6364136223846793005ull + 1442695040888963407ull;
            br_backoff_init(&r->bo, ob->o.backoff_initial_ms, ob->o.backoff_max_ms, ob->rng);
            append_recip(ob, r);
        }
    }
    if (!it || !r) {
        pthread_mutex_unlock(&ob->mu);
        free(it);
        hw_log_event(ob->o.log, HW_LOG_ERROR, "outbox_queue_failed", "seq=%llu reason=\"out of memory\"",
                     (unsigned long long)m->seq);
        protobuf_c_message_free_unpacked(&m->base, NULL);
        return;
    }
    it->m = m;
    it->gen = ob->gen;
    if (r->tail)
        r->tail->next = it;
    else
        r->head = it;
    r->tail = it;
    atomic_fetch_add(&ob->queued, 1);
    pthread_cond_signal(&ob->work_cv);
    pthread_mutex_unlock(&ob->mu);
}

/* The stream ended: drops every queued message not being delivered
 * (helpwired streams them again), and what is being delivered is not put
 * back. */
static void drop_queued(br_outbox *ob)
{
    unsigned long dropped = 0;
    pthread_mutex_lock(&ob->mu);
    ob->gen++;
    for (recip *r = ob->recips, *next; r; r = next) {
        next = r->next;
        for (item *it = r->head, *n; it; it = n) {
            n = it->next;
            item_free(it);
            dropped++;
        }
        r->head = r->tail = NULL;
        maybe_free_recip(ob, r);
    }
    ob->channel_ready_at = 0;
    pthread_mutex_unlock(&ob->mu);
    atomic_fetch_sub(&ob->queued, dropped);
    if (dropped)
        hw_log_event(ob->o.log, HW_LOG_INFO, "outbox_queue_dropped", "messages=%lu", dropped);
}

/* The stream thread's handling of one streamed message. */
static void handle_message(br_outbox *ob, grpc_byte_buffer *bb)
{
    Helpwire__V1__OutboundMessage *m =
        (Helpwire__V1__OutboundMessage *)hw_client_unpack(bb, &helpwire__v1__outbound_message__descriptor);
    if (!m) {
        hw_log_event(ob->o.log, HW_LOG_ERROR, "outbox_bad_message", "reason=\"does not parse\"");
        return;
    }
    if (m->seq == 0 && (m->kind == HELPWIRE__V1__OUTBOUND_KIND__OUTBOUND_KIND_TYPING ||
                        m->kind == HELPWIRE__V1__OUTBOUND_KIND__OUTBOUND_KIND_READ)) {
        /* A courtesy signal: handed over as it is, never queued, recorded
         * or acknowledged. */
        if (ob->o.on_signal)
            ob->o.on_signal(ob->o.signal_arg, m);
        else
            hw_log_event(ob->o.log, HW_LOG_DEBUG, "signal_ignored", "kind=%d", (int)m->kind);
        protobuf_c_message_free_unpacked(&m->base, NULL);
        return;
    }
    if (m->seq == 0) {
        if (m->lease == HELPWIRE__V1__LEASE_STATE__LEASE_STATE_ACTIVE)
            set_lease(ob, true, true, NULL);
        else if (m->lease == HELPWIRE__V1__LEASE_STATE__LEASE_STATE_STANDBY)
            set_lease(ob, false, true, NULL);
        else
            hw_log_event(ob->o.log, HW_LOG_WARN, "outbox_bad_message", "reason=\"seq 0 without a lease\"");
        protobuf_c_message_free_unpacked(&m->base, NULL);
        return;
    }
    if (!atomic_load(&ob->lease))
        set_lease(ob, true, true, "no_control_message");
    enqueue(ob, m);
}

/* Whether seq was delivered already (the sent record, or the recent set). */
static bool already_sent(br_outbox *ob, uint64_t seq)
{
    if (ob->o.sent)
        return br_sent_get(ob->o.sent, seq, NULL) == 1;
    char key[32];
    snprintf(key, sizeof key, "%llu", (unsigned long long)seq);
    return br_dedupe_contains(ob->delivered, key);
}

static void record_sent(br_outbox *ob, const Helpwire__V1__OutboundMessage *m, const char *upstream_id)
{
    if (ob->o.sent) {
        char err[300];
        if (br_sent_put(ob->o.sent, m, upstream_id, wall_ms(), err, sizeof err) != 0) {
            char q[400];
            hw_log_event(ob->o.log, HW_LOG_ERROR, "sent_record_failed", "seq=%llu error=%s",
                         (unsigned long long)m->seq, hw_log_quote(err, q, sizeof q));
        }
        return;
    }
    char key[32];
    snprintf(key, sizeof key, "%llu", (unsigned long long)m->seq);
    br_dedupe_add(ob->delivered, key);
}

/* A message that ended FAILED has no sent record to prune its steps
 * with (sent.h): its steps go now. Best effort: a leftover step is only
 * a few bytes, and a retried copy has a new sequence. */
static void forget_steps(br_outbox *ob, uint64_t seq)
{
    if (ob->o.sent && br_sent_steps_clear(ob->o.sent, seq) != 0)
        hw_log_event(ob->o.log, HW_LOG_WARN, "sent_steps_clear_failed", "seq=%llu", (unsigned long long)seq);
}

/* One attempt at it (taken from r by the caller). Returns the delay
 * before the next attempt, or -1 when it is done with. *channel_wide
 * says the delay is the whole channel's. */
static int attempt(br_outbox *ob, item *it, bool *channel_wide, br_backoff *rbo)
{
    const Helpwire__V1__OutboundMessage *m = it->m;
    char q[700];
    *channel_wide = false;
    if (already_sent(ob, m->seq)) {
        hw_log_event(ob->o.log, HW_LOG_INFO, "outbox_redelivered_already_sent", "seq=%llu attempt=%u",
                     (unsigned long long)m->seq, m->attempt);
        ack(ob, m->seq, NULL);
        return -1;
    }
    br_delivery d;
    memset(&d, 0, sizeof d);
    if (!it->attempts)
        it->first_ms = wall_ms();
    it->attempts++;
    int r = ob->o.deliver(ob->o.deliver_arg, m, &d);
    d.reason[sizeof d.reason - 1] = '\0';
    d.upstream_id[sizeof d.upstream_id - 1] = '\0';
    if (r == BR_OUTBOX_DELIVERED) {
        atomic_fetch_add(&ob->n_delivered, 1);
        record_sent(ob, m, d.upstream_id);
        hw_log_event(ob->o.log, HW_LOG_INFO, "outbox_delivered",
                     "seq=%llu kind=%d attempt=%u attempts=%d upstream_id=%s", (unsigned long long)m->seq,
                     (int)m->kind, m->attempt, it->attempts, hw_log_quote(d.upstream_id, q, sizeof q));
        ack(ob, m->seq, NULL);
        br_backoff_reset(rbo);
        pthread_mutex_lock(&ob->mu);
        br_backoff_reset(&ob->channel_bo);
        pthread_mutex_unlock(&ob->mu);
        return -1;
    }
    if (r == BR_OUTBOX_FAILED) {
        atomic_fetch_add(&ob->refused, 1);
        if (!d.reason[0])
            snprintf(d.reason, sizeof d.reason, "refused by the channel");
        hw_log_event(ob->o.log, HW_LOG_WARN, "delivery_failed", "seq=%llu kind=%d attempt=%u reason=%s",
                     (unsigned long long)m->seq, (int)m->kind, m->attempt,
                     hw_log_quote(d.reason, q, sizeof q));
        forget_steps(ob, m->seq);
        ack(ob, m->seq, d.reason);
        return -1;
    }
    atomic_fetch_add(&ob->failed, 1);
    if (!d.reason[0])
        snprintf(d.reason, sizeof d.reason, "no answer from the channel");
    int delay;
    if (d.scope == BR_SCOPE_CHANNEL) {
        *channel_wide = true;
        pthread_mutex_lock(&ob->mu);
        delay = br_backoff_next_ms(&ob->channel_bo);
        pthread_mutex_unlock(&ob->mu);
    } else {
        delay = br_backoff_next_ms(rbo);
    }
    if (d.retry_after_ms > delay)
        delay = d.retry_after_ms;
    int64_t now = wall_ms();
    int64_t born = m->created_unix_ms > 0 ? m->created_unix_ms : it->first_ms;
    if (now + delay > born + ob->o.max_delivery_age_ms) {
        char reason[700];
        snprintf(reason, sizeof reason, "gave up after %d attempts in %lld s: %s", it->attempts,
                 (long long)((now - born) / 1000), d.reason);
        atomic_fetch_add(&ob->refused, 1);
        hw_log_event(ob->o.log, HW_LOG_WARN, "delivery_failed", "seq=%llu kind=%d attempt=%u reason=%s",
                     (unsigned long long)m->seq, (int)m->kind, m->attempt, hw_log_quote(reason, q, sizeof q));
        forget_steps(ob, m->seq);
        ack(ob, m->seq, reason);
        return -1;
    }
    hw_log_event(ob->o.log, HW_LOG_WARN, "outbox_delivery_failed",
                 "seq=%llu kind=%d attempts=%d delay_ms=%d scope=%s reason=%s", (unsigned long long)m->seq,
                 (int)m->kind, it->attempts, delay, *channel_wide ? "channel" : "recipient",
                 hw_log_quote(d.reason, q, sizeof q));
    return delay;
}

static bool workers_stopping(br_outbox *ob)
{
    return ob->workers_stop || ob->stopping || (ob->o.stop && br_stop_requested(ob->o.stop));
}

/* mu held: a recipient whose head may go now (moved to the list's tail),
 * or NULL with *wake the monotonic time worth waking at. A head not yet
 * attempted goes before any retry, and retries take at most
 * max_retry_busy workers (a quarter, at least 1): a retry may wait as long as the upstream takes
 * to refuse it again (a stalled recipient), and the workers left free
 * keep a healthy recipient's first attempt from waiting behind them. */
static recip *pick(br_outbox *ob, int64_t now, int64_t *wake)
{
    *wake = now + 100;
    if (ob->channel_ready_at > now) {
        if (ob->channel_ready_at < *wake)
            *wake = ob->channel_ready_at;
        return NULL;
    }
    recip *got = NULL;
    bool retry_ok = ob->retry_busy < ob->max_retry_busy;
    for (recip *r = ob->recips; r; r = r->next) {
        if (r->busy || !r->head)
            continue;
        if (r->ready_at > now) {
            if (r->ready_at < *wake)
                *wake = r->ready_at;
            continue;
        }
        if (r->head->attempts == 0) {
            got = r;
            break;
        }
        if (retry_ok && !got)
            got = r;
    }
    if (got) {
        unlink_recip(ob, got);
        append_recip(ob, got);
    }
    return got;
}

static void *worker_thread(void *arg)
{
    br_outbox *ob = arg;
    pthread_mutex_lock(&ob->mu);
    while (!workers_stopping(ob)) {
        int64_t now = now_ms(), wake;
        recip *r = pick(ob, now, &wake);
        if (!r) {
            struct timespec t;
            clock_gettime(CLOCK_MONOTONIC, &t);
            int64_t left = wake - now;
            if (left < 1)
                left = 1;
            t.tv_sec += left / 1000;
            t.tv_nsec += (long)(left % 1000) * 1000000;
            if (t.tv_nsec >= 1000000000) {
                t.tv_sec++;
                t.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&ob->work_cv, &ob->mu, &t);
            continue;
        }
        item *it = r->head;
        r->head = it->next;
        if (!r->head)
            r->tail = NULL;
        it->next = NULL;
        r->busy = true;
        r->retrying = it->attempts > 0;
        if (r->retrying)
            ob->retry_busy++;
        r->current = it->m->seq;
        r->restreamed = false;
        br_backoff rbo = r->bo;
        pthread_mutex_unlock(&ob->mu);

        bool channel_wide = false;
        int delay = attempt(ob, it, &channel_wide, &rbo);

        pthread_mutex_lock(&ob->mu);
        r->bo = rbo;
        r->busy = false;
        if (r->retrying)
            ob->retry_busy--;
        r->retrying = false;
        r->current = 0;
        bool restreamed = r->restreamed;
        r->restreamed = false;
        if (delay >= 0 && (it->gen == ob->gen || restreamed) && !workers_stopping(ob)) {
            it->gen = ob->gen;
            it->next = r->head;
            r->head = it;
            if (!r->tail)
                r->tail = it;
            /* + 1: now_ms() truncates, and a channel's retry_after is a
             * minimum (Telegram answers 429 again to an early retry). */
            int64_t at = now_ms() + delay + 1;
            if (channel_wide)
                ob->channel_ready_at = at > ob->channel_ready_at ? at : ob->channel_ready_at;
            else
                r->ready_at = at;
        } else {
            item_free(it);
            atomic_fetch_sub(&ob->queued, 1);
            if (delay < 0)
                r->ready_at = 0;
        }
        maybe_free_recip(ob, r);
        /* This worker picks again itself; one other is woken in case
         * more than one recipient became ready (waking every idle worker
         * of a large pool on each delivery cost throughput). */
        pthread_cond_signal(&ob->work_cv);
    }
    pthread_mutex_unlock(&ob->mu);
    return NULL;
}

int br_outbox_late_failure(br_outbox *ob, const Helpwire__V1__OutboundMessage *m, const char *reason)
{
    char q[700];
    atomic_fetch_add(&ob->refused, 1);
    hw_log_event(ob->o.log, HW_LOG_WARN, "delivery_failed", "seq=%llu kind=%d late=true reason=%s",
                 (unsigned long long)m->seq, (int)m->kind, hw_log_quote(reason, q, sizeof q));
    Helpwire__V1__OutboundMessage copy = *m;
    copy.channel = ob->o.channel;
    return ack_msg(ob, m->seq, reason, &copy);
}

bool br_outbox_lease_active(br_outbox *ob)
{
    return atomic_load(&ob->lease);
}
/* Waits for the completion of tag on cq; other tags seen meanwhile are
 * recorded in done[]. Returns the event's success. */
static int wait_tag(grpc_completion_queue *cq, tag_id tag, bool done[4], int ok[4])
{
    while (!done[tag]) {
        grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type != GRPC_OP_COMPLETE)
            return 0;
        tag_id t = (tag_id)(intptr_t)ev.tag;
        done[t] = true;
        ok[t] = ev.success;
    }
    return ok[tag];
}

/* Waits for batch 1 (TAG_START) of call: as long as it takes helpwired to
 * be reachable, logging every rpc_timeout_ms meanwhile. Returns the
 * batch's success. */
static int wait_started(br_outbox *ob, grpc_completion_queue *cq, bool done[4], int ok[4])
{
    int64_t since = now_ms();
    while (!done[TAG_START]) {
        gpr_timespec until = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                          gpr_time_from_millis(ob->o.rpc_timeout_ms, GPR_TIMESPAN));
        grpc_event ev = grpc_completion_queue_next(cq, until, NULL);
        if (ev.type == GRPC_QUEUE_TIMEOUT) {
            hw_log_event(ob->o.log, HW_LOG_WARN, "outbox_waiting",
                         "waited_ms=%lld reason=\"no connection to helpwired\"",
                         (long long)(now_ms() - since));
            continue;
        }
        if (ev.type != GRPC_OP_COMPLETE)
            return 0;
        tag_id t = (tag_id)(intptr_t)ev.tag;
        done[t] = true;
        ok[t] = ev.success;
    }
    return ok[TAG_START];
}

/* One stream from start to end. Returns whether it was healthy (lived
 * long or delivered something); *code is its final status. */
static bool run_stream(br_outbox *ob, grpc_status_code *code)
{
    bool healthy = false;
    int64_t started = 0;
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    size_t n_md;
    const grpc_metadata *md = hw_client_metadata(ob->o.rpc, &n_md);
    hw_client_call rpc;
    hw_client_call_init(&rpc);
    rpc.wait_for_ready = true;
    bool done[4] = {false, false, false, false};
    int ok[4] = {0, 0, 0, 0};
    bool status_pending = false, start_pending = false;

    Helpwire__V1__SubscribeRequest req = HELPWIRE__V1__SUBSCRIBE_REQUEST__INIT;
    req.channel = ob->o.channel;
    req.redeliver_after_ms = (uint32_t)ob->o.redeliver_after_ms;
    req.max_in_flight_per_recipient = (uint32_t)ob->o.max_in_flight_per_recipient;
    req.instance = ob->instance;
    grpc_byte_buffer *send_bb = hw_client_pack(&req.base);

    grpc_call *call =
        grpc_channel_create_call(hw_client_channel(ob->o.rpc), NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                 grpc_slice_from_static_string("/helpwire.v1.Outbox/Subscribe"), NULL,
                                 gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (!call) {
        hw_log_event(ob->o.log, HW_LOG_ERROR, "outbox_call_failed", "reason=\"cannot create call\"");
        if (send_bb)
            grpc_byte_buffer_destroy(send_bb);
        goto out;
    }
    pthread_mutex_lock(&ob->mu);
    bool cancelled = ob->stopping;
    ob->call = call;
    pthread_mutex_unlock(&ob->mu);
    if (cancelled)
        grpc_call_cancel(call, NULL);

    /* rpc owns call and send_bb from here, started or not. */
    if (hw_client_stream_start(&rpc, call, md, n_md, send_bb, (void *)(intptr_t)TAG_START) != GRPC_CALL_OK)
        goto out;
    start_pending = true;
    if (hw_client_stream_recv_status(&rpc, (void *)(intptr_t)TAG_STATUS) != GRPC_CALL_OK)
        goto out;
    status_pending = true;
    atomic_fetch_add(&ob->connects, 1);
    if (wait_started(ob, cq, done, ok)) {
        start_pending = false;
        started = now_ms();
        for (;;) {
            done[TAG_RECV] = false;
            if (hw_client_stream_recv(&rpc, (void *)(intptr_t)TAG_RECV) != GRPC_CALL_OK)
                break;
            if (!wait_tag(cq, TAG_RECV, done, ok) || !rpc.reply)
                break;
            if (!healthy)
                hw_log_event(ob->o.log, HW_LOG_INFO, "outbox_streaming", "channel=%d", (int)ob->o.channel);
            healthy = true;
            handle_message(ob, rpc.reply);
            grpc_byte_buffer_destroy(rpc.reply);
            rpc.reply = NULL;
            if (stopping(ob))
                grpc_call_cancel(call, NULL);
        }
    }
    start_pending = false;
    drop_queued(ob);
    if (atomic_load(&ob->lease))
        set_lease(ob, false, false, "stream_ended");
    if (!done[TAG_STATUS] && stopping(ob))
        grpc_call_cancel(call, NULL);
    wait_tag(cq, TAG_STATUS, done, ok);
    status_pending = false;
    *code = rpc.status;
    if (!stopping(ob)) {
        char q[300];
        hw_client_status st;
        hw_client_status_set(&st, rpc.status, rpc.details);
        hw_log_event(ob->o.log, rpc.status == GRPC_STATUS_UNIMPLEMENTED ? HW_LOG_WARN : HW_LOG_INFO,
                     "outbox_stream_ended", "code=%s message=%s", hw_client_status_name(st.code),
                     hw_log_quote(st.message, q, sizeof q));
    }
    if (started && now_ms() - started >= HEALTHY_STREAM_MS)
        healthy = true;
out:
    if (call) {
        pthread_mutex_lock(&ob->mu);
        ob->call = NULL;
        pthread_mutex_unlock(&ob->mu);
        if (status_pending || start_pending) {
            grpc_call_cancel(call, NULL);
            if (status_pending)
                wait_tag(cq, TAG_STATUS, done, ok);
            if (start_pending)
                wait_tag(cq, TAG_START, done, ok);
        }
    }
    hw_client_call_fini(&rpc); /* the call, its request and what it received */
    hw_client_cq_destroy(cq);
    return healthy;
}

static void *outbox_thread(void *arg)
{
    br_outbox *ob = arg;
    int fast_max_ms = ob->o.reconnect_max_ms > 0 ? ob->o.reconnect_max_ms : ob->o.backoff_max_ms;
    while (!stopping(ob)) {
        grpc_status_code code = GRPC_STATUS_UNKNOWN;
        if (run_stream(ob, &code))
            br_backoff_reset(&ob->backoff);
        if (stopping(ob))
            break;
        int delay = br_backoff_next_ms(&ob->backoff);
        /* helpwired restarting or draining: the next one may be up at any
         * moment, and a refused Subscribe costs it next to nothing. */
        if (code == GRPC_STATUS_UNAVAILABLE && delay > fast_max_ms)
            delay = fast_max_ms;
        hw_log_event(ob->o.log, HW_LOG_INFO, "outbox_reconnect", "delay_ms=%d", delay);
        if (sleep_ms(ob, delay))
            break;
    }
    return NULL;
}

/* Tells the delivery workers to end, and joins them. */
static void join_workers(br_outbox *ob)
{
    pthread_mutex_lock(&ob->mu);
    ob->workers_stop = true;
    pthread_cond_broadcast(&ob->work_cv);
    pthread_mutex_unlock(&ob->mu);
    for (int i = 0; i < ob->n_workers; i++)
        pthread_join(ob->workers[i], NULL);
}

/* Frees ob and what is still queued; no thread of it may be running. */
static void destroy(br_outbox *ob)
{
    drop_queued(ob);
    br_dedupe_destroy(ob->delivered);
    pthread_cond_destroy(&ob->work_cv);
    pthread_cond_destroy(&ob->cv);
    pthread_mutex_destroy(&ob->mu);
    free(ob);
}

int br_outbox_start(br_outbox **out, const br_outbox_options *o)
{
    br_outbox *ob = calloc(1, sizeof *ob);
    if (!ob)
        return -1;
    ob->o = *o;
    if (ob->o.workers <= 0)
        ob->o.workers = 4;
    if (ob->o.workers > MAX_WORKERS)
        ob->o.workers = MAX_WORKERS;
    ob->max_retry_busy = ob->o.workers >= 4 ? ob->o.workers / 4 : 1; /* see pick */
    if (ob->o.max_delivery_age_ms <= 0)
        ob->o.max_delivery_age_ms = 86400000;
    if (ob->o.max_in_flight_per_recipient <= 0)
        ob->o.max_in_flight_per_recipient = 8;
    if (o->instance && *o->instance) {
        snprintf(ob->instance, sizeof ob->instance, "%s", o->instance);
    } else {
        char host[128] = "";
        gethostname(host, sizeof host - 1);
        snprintf(ob->instance, sizeof ob->instance, "%s:%d", host[0] ? host : "localhost", (int)getpid());
    }
    ob->o.instance = ob->instance;
    atomic_init(&ob->lease, false);
    ob->delivered = br_dedupe_create(4096);
    if (!ob->delivered) {
        free(ob);
        return -1;
    }
    pthread_mutex_init(&ob->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ob->cv, &ca);
    pthread_cond_init(&ob->work_cv, &ca);
    pthread_condattr_destroy(&ca);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ob->rng = (uint64_t)ts.tv_nsec ^ ((uint64_t)(uintptr_t)ob << 16) ^ (uint64_t)getpid();
    br_backoff_init(&ob->backoff, o->backoff_initial_ms, o->backoff_max_ms, ob->rng);
    br_backoff_init(&ob->channel_bo, o->backoff_initial_ms, o->backoff_max_ms, ob->rng ^ 0x5bd1e995);
    for (int i = 0; i < ob->o.workers; i++) {
        if (pthread_create(&ob->workers[i], NULL, worker_thread, ob) != 0)
            break;
        ob->n_workers++;
    }
    if (ob->n_workers == 0 || pthread_create(&ob->thread, NULL, outbox_thread, ob) != 0) {
        join_workers(ob);
        destroy(ob);
        return -1;
    }
    *out = ob;
    return 0;
}

void br_outbox_stop(br_outbox *ob)
{
    if (!ob)
        return;
    pthread_mutex_lock(&ob->mu);
    ob->stopping = true;
    if (ob->call)
        grpc_call_cancel(ob->call, NULL);
    pthread_cond_broadcast(&ob->cv);
    pthread_mutex_unlock(&ob->mu);
    pthread_join(ob->thread, NULL);
    join_workers(ob);
    destroy(ob);
}

void br_outbox_get_stats(br_outbox *ob, br_outbox_stats *st)
{
    st->connects = atomic_load(&ob->connects);
    st->delivered = atomic_load(&ob->n_delivered);
    st->acked = atomic_load(&ob->acked);
    st->refused = atomic_load(&ob->refused);
    st->failed = atomic_load(&ob->failed);
    st->queued = atomic_load(&ob->queued);
    st->lease_active = atomic_load(&ob->lease);
}
