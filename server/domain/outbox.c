/*
 * outbox: the durable per-channel queue of messages to customers, and the
 * hub that streams it to bridges (see outbox.h for the contract).
 *
 * Design:
 * - The queue is the store's outbox database (channel + sequence ->
 *   message); a message leaves it only when a bridge acknowledges it. The
 *   hub keeps no copy of messages, only, per subscriber, the sequences it
 *   has sent and not yet seen acknowledged (its "flight"), with the time
 *   each is due for redelivery.
 * - One hub thread does every store read and every send. Other threads only
 *   bump a per-channel generation counter (hw_outbox_committed after a
 *   commit that appended, hw_outbox_acked after one that acknowledged: the
 *   effects' sinks) and signal the thread, so neither
 *   the writer thread nor a worker ever waits for the hub. The thread
 *   compares each counter with the value it saw last: a commit that lands
 *   after the thread read the counter bumps it again, so nothing is missed.
 * - Exclusive lease: one subscriber per channel delivers. The hub thread
 *   alone decides (assign_leases_locked, each pass): a channel without an
 *   active subscriber gives the lease to the one that joined first among
 *   those left, the others are standbys. Every stream's first message is a
 *   control message (seq 0, lease); a standby gets nothing else until it is
 *   promoted, then a control message ACTIVE and the backlog from cursor 0,
 *   like a new subscriber. The end of the active stream (on_close: client
 *   cancel, peer gone, drain) wakes the hub. Several active subscribers
 *   used to each receive every message, so a rolling restart delivered
 *   twice; the lease makes the second bridge a hot spare instead.
 * - The active subscriber starts with its cursor at 0, so its first scan
 *   sends the channel's backlog oldest first (in pages); later scans,
 *   triggered by commits, go on after the cursor: the live part.
 * - Windows per recipient (channel_user_id): at most per_recipient
 *   messages in flight per recipient, and HW_OUTBOX_MAX_IN_FLIGHT over
 *   all, so one chat that never acknowledges (a blocked bot) holds back
 *   only its own messages; a single window per subscriber let 256
 *   unacknowledged messages to one chat stall the channel. The scan streams
 *   a message whose recipient has room and holds back the others (their
 *   sequences only, in seq order, at most HW_OUTBOX_MAX_HELD); when an
 *   acknowledgement frees a recipient's place, its oldest held message goes
 *   first. A recipient with held messages gets no newer message before
 *   them, so each recipient's messages are streamed in sequence order.
 *   When the total or the held set is full the scan pauses with the cursor
 *   in place, which bounds the hub's memory per subscriber whatever the
 *   backlog. Recipients are counted in a small hand-written hash table
 *   (see "recipients" below for why).
 * - A recipient whose messages are not acknowledged gets only redeliveries
 *   of its in-flight ones until an acknowledgement frees a place.
 * - Redelivery: an entry past its due time is looked up again; if it is
 *   still queued it is sent with attempt + 1 and due again redeliver_after_ms
 *   later; if it is gone (acknowledged) it leaves the flight and frees its
 *   recipient's place.
 * - Attempt counts live in the hub (the stored count is the base), so a new
 *   subscription starts again at stored attempt + 1. Persisting every send
 *   would double the write load for a hint.
 *
 * Locking: hub->mu guards the subscriber list and each subscriber's
 * membership (closed, pinned) and lease (written by the hub thread, read
 * by on_close); everything else about a subscriber is owned
 * by the hub thread. The hub thread pins the subscribers it serves, works
 * without the lock, and frees a subscriber that closed meanwhile when it
 * unpins it. Nothing here is on the path of unary reads.
 */
#include "server/domain/outbox.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xxhash.h>

#include "server/domain/conversation.h"
#include "server/domain/outbox_failed.h"
#include "server/domain/rpc.h"
#include "server/store/records.h"

#define HW_OUTBOX_MAX_IN_FLIGHT 4096u /* messages in flight per subscriber, all recipients */
#define HW_OUTBOX_MAX_HELD 4096u      /* messages held back per subscriber (recipients at their limit) */
#define HW_OUTBOX_DEFAULT_PER_RECIPIENT 8u
#define HW_OUTBOX_MAX_PER_RECIPIENT 256u
#define HW_OUTBOX_PAGE 256u  /* messages per store listing */
#define HW_OUTBOX_CHANNELS 8 /* > every Channel value */
#define HW_OUTBOX_DEFAULT_REDELIVER_MS 30000u
#define HW_OUTBOX_MIN_REDELIVER_MS 1000u
#define HW_OUTBOX_MAX_ACK 1000u
#define HW_OUTBOX_MAX_INSTANCE 128u /* bytes of SubscribeRequest.instance */

/* A recipient: the hash of its channel_user_id (never 0). */
typedef uint64_t recipient_key;

typedef struct flight {
    uint64_t seq;
    recipient_key who;
    int64_t due_ms; /* monotonic */
    uint32_t attempt;
} flight;

/* A message found by the scan while its recipient was at its limit. */
typedef struct held {
    uint64_t seq;
    recipient_key who;
} held;

/* A recipient with messages in flight or held back; who 0: a free slot. */
typedef struct recipient {
    recipient_key who;
    uint32_t in_flight, held;
} recipient;

typedef struct sub {
    struct sub *next;
    hw_call *call; /* we hold a reference until the sub is freed */
    Helpwire__V1__Channel channel;
    int64_t redeliver_ms;
    uint32_t per_recipient;                    /* max_in_flight_per_recipient */
    char instance[HW_OUTBOX_MAX_INSTANCE + 1]; /* SubscribeRequest.instance, for the logs */
    uint64_t joined;                           /* arrival order: the longest waiting is promoted */
    /* Guarded by hub->mu. */
    bool closed;
    int pinned;
    Helpwire__V1__LeaseState lease; /* UNSPECIFIED until the hub decides; written by the hub thread */
    bool live; /* ACTIVE and its control message sent: signals may follow (hw_outbox_signal) */
    /* Hub thread only (set before the sub is listed). */
    bool announce;   /* the control message for lease is still to send */
    uint64_t cursor; /* highest sequence sent for the first time */
    bool want_scan;  /* there may be messages after cursor */
    bool check_acks; /* acknowledgements happened on the channel */
    flight *fl;      /* in the order sent (not seq order: held ones go later) */
    size_t n_fl, cap_fl;
    held *hd; /* in seq order */
    size_t n_hd, cap_hd;
    recipient *rt; /* open addressing on who, linear probing; cap_rt a power of 2 */
    size_t n_rt, cap_rt;
} sub;

struct hw_outbox {
    hw_app *app;
    hw_store_reader *reader; /* hub thread only */
    hw_arena *arena;         /* hub thread only */
    pthread_t thread;
    bool thread_started;

    pthread_mutex_t mu;
    sub *subs;
    uint64_t joined; /* subscriptions so far (guarded by mu) */

    pthread_mutex_t wake_mu;
    pthread_cond_t wake_cv; /* CLOCK_MONOTONIC */
    bool wake, stop;

    atomic_uint_fast64_t commit_gen[HW_OUTBOX_CHANNELS];
    atomic_uint_fast64_t ack_gen[HW_OUTBOX_CHANNELS];
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void hub_wake(hw_outbox *ob)
{
    pthread_mutex_lock(&ob->wake_mu);
    ob->wake = true;
    pthread_cond_signal(&ob->wake_cv);
    pthread_mutex_unlock(&ob->wake_mu);
}

static void sub_free(sub *s)
{
    free(s->fl);
    free(s->hd);
    free(s->rt);
    free(s);
}

/* ------------------------------------------------------------ hub thread */

/* ---- recipients: how many messages each has in flight and held back ----
 * A table of its own rather than a library's: the keys are already hashes
 * (XXH3 of channel_user_id), there is one table per subscriber touched by
 * the hub thread alone, and it needs find, insert and delete of small
 * counters, which is forty lines of linear probing. Two recipients whose
 * hashes collide (1 in 2^64) would share a window: stricter, never wrong. */

static recipient_key recipient_of(const Helpwire__V1__OutboundMessage *m)
{
    const char *id = m->channel_user_id ? m->channel_user_id : "";
    recipient_key k = XXH3_64bits(id, strlen(id));
    return k ? k : 1;
}

static recipient *recipient_find(sub *s, recipient_key who)
{
    if (s->cap_rt == 0)
        return NULL;
    size_t mask = s->cap_rt - 1;
    for (size_t i = (size_t)who & mask;; i = (i + 1) & mask) {
        if (s->rt[i].who == who)
            return &s->rt[i];
        if (s->rt[i].who == 0)
            return NULL;
    }
}

/* Finds or adds who (counters 0). The pointer lasts until the next add or
 * drop. */
static int recipient_add(sub *s, recipient_key who, recipient **out)
{
    *out = recipient_find(s, who);
    if (*out)
        return HW_OK;
    if ((s->n_rt + 1) * 2 > s->cap_rt) { /* at most half full: probes stay short */
        size_t cap = s->cap_rt ? s->cap_rt * 2 : 64;
        recipient *rt = calloc(cap, sizeof *rt);
        if (!rt)
            return HW_ENOMEM;
        for (size_t j = 0; j < s->cap_rt; j++) {
            if (s->rt[j].who == 0)
                continue;
            size_t i = (size_t)s->rt[j].who & (cap - 1);
            while (rt[i].who)
                i = (i + 1) & (cap - 1);
            rt[i] = s->rt[j];
        }
        free(s->rt);
        s->rt = rt;
        s->cap_rt = cap;
    }
    size_t mask = s->cap_rt - 1, i = (size_t)who & mask;
    while (s->rt[i].who)
        i = (i + 1) & mask;
    s->rt[i] = (recipient){.who = who};
    s->n_rt++;
    *out = &s->rt[i];
    return HW_OK;
}

/* Removes r when it has nothing in flight or held back, shifting back the
 * entries after it so that no probe sequence has a hole. */
static void recipient_drop_if_idle(sub *s, recipient *r)
{
    if (!r || r->in_flight || r->held)
        return;
    size_t mask = s->cap_rt - 1, hole = (size_t)(r - s->rt);
    for (size_t i = (hole + 1) & mask; s->rt[i].who; i = (i + 1) & mask) {
        size_t home = (size_t)s->rt[i].who & mask;
        /* Entry i may fill the hole if its home is not within (hole, i]. */
        bool stays = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
        if (!stays) {
            s->rt[hole] = s->rt[i];
            hole = i;
        }
    }
    s->rt[hole].who = 0;
    s->n_rt--;
}

static int flight_push(sub *s, uint64_t seq, recipient_key who, int64_t due_ms, uint32_t attempt)
{
    if (s->n_fl == s->cap_fl) {
        size_t cap = s->cap_fl ? s->cap_fl * 2 : 64;
        flight *fl = realloc(s->fl, cap * sizeof *fl);
        if (!fl)
            return HW_ENOMEM;
        s->fl = fl;
        s->cap_fl = cap;
    }
    s->fl[s->n_fl++] = (flight){.seq = seq, .who = who, .due_ms = due_ms, .attempt = attempt};
    return HW_OK;
}

static int held_push(sub *s, uint64_t seq, recipient_key who)
{
    if (s->n_hd == s->cap_hd) {
        size_t cap = s->cap_hd ? s->cap_hd * 2 : 64;
        held *hd = realloc(s->hd, cap * sizeof *hd);
        if (!hd)
            return HW_ENOMEM;
        s->hd = hd;
        s->cap_hd = cap;
    }
    s->hd[s->n_hd++] = (held){.seq = seq, .who = who};
    return HW_OK;
}

/* Whether a message to r may be streamed now: r has room and nothing held
 * back (which would come first), and the subscriber's total has room. */
static bool may_stream(const sub *s, const recipient *r)
{
    return r->held == 0 && r->in_flight < s->per_recipient && s->n_fl < HW_OUTBOX_MAX_IN_FLIGHT;
}

/* Streams m (attempt already set) and records it in flight for r. */
static int stream_now(sub *s, recipient *r, Helpwire__V1__OutboundMessage *m, int64_t now)
{
    int rc = flight_push(s, m->seq, r->who, now + s->redeliver_ms, m->attempt);
    if (rc != HW_OK)
        return rc;
    r->in_flight++;
    hw_call_stream_send(s->call, &m->base);
    return HW_OK;
}

/* Drops acknowledged entries (when check_acks) and redelivers due ones. */
static int serve_flight(hw_outbox *ob, sub *s, hw_store_txn *txn, int64_t now)
{
    size_t keep = 0;
    int rc = HW_OK;
    for (size_t i = 0; i < s->n_fl; i++) {
        flight f = s->fl[i];
        if (rc == HW_OK && (s->check_acks || f.due_ms <= now)) {
            Helpwire__V1__OutboundMessage *m = NULL;
            int grc = hw_store_outbox_get(txn, s->channel, f.seq, ob->arena, &m);
            if (grc == HW_ENOTFOUND) { /* acknowledged: a place is free */
                recipient *r = recipient_find(s, f.who);
                assert(r && r->in_flight > 0);
                r->in_flight--;
                recipient_drop_if_idle(s, r);
                continue;
            }
            if (grc != HW_OK) {
                rc = grc;
            } else if (f.due_ms <= now) {
                f.attempt++;
                m->attempt = f.attempt;
                f.due_ms = now + s->redeliver_ms;
                hw_call_stream_send(s->call, &m->base);
            }
        }
        s->fl[keep++] = f;
    }
    s->n_fl = keep;
    if (rc == HW_OK)
        s->check_acks = false;
    return rc;
}

/* Streams the held-back messages whose recipients have room again, each
 * recipient's oldest first. A held message acknowledged meanwhile (a bridge
 * may acknowledge what an earlier subscription streamed) is dropped. */
static int serve_held(hw_outbox *ob, sub *s, hw_store_txn *txn, int64_t now)
{
    size_t keep = 0;
    int rc = HW_OK;
    for (size_t i = 0; i < s->n_hd; i++) {
        held h = s->hd[i];
        recipient *r = recipient_find(s, h.who);
        assert(r && r->held > 0);
        if (rc == HW_OK && r->in_flight < s->per_recipient && s->n_fl < HW_OUTBOX_MAX_IN_FLIGHT) {
            Helpwire__V1__OutboundMessage *m = NULL;
            int grc = hw_store_outbox_get(txn, s->channel, h.seq, ob->arena, &m);
            if (grc == HW_OK) {
                m->attempt = m->attempt + 1;
                grc = stream_now(s, r, m, now);
            }
            if (grc == HW_OK || grc == HW_ENOTFOUND) {
                r->held--;
                recipient_drop_if_idle(s, r);
                continue;
            }
            rc = grc; /* kept, in its place: tried again on a later pass */
        }
        s->hd[keep++] = h;
    }
    s->n_hd = keep;
    return rc;
}

/* Scans what follows the cursor, oldest first: streams each message whose
 * recipient has room, holds back the others. Pauses (want_scan stays set,
 * the cursor before the next message) when the subscriber's total window
 * or the held set is full. */
static int serve_new(hw_outbox *ob, sub *s, hw_store_txn *txn, int64_t now)
{
    int rc = HW_OK;
    while (rc == HW_OK && s->want_scan && s->n_fl < HW_OUTBOX_MAX_IN_FLIGHT && s->n_hd < HW_OUTBOX_MAX_HELD) {
        Helpwire__V1__OutboundMessage **ms = NULL;
        size_t n = 0, i = 0;
        rc = hw_store_outbox_list(txn, s->channel, s->cursor, HW_OUTBOX_PAGE, ob->arena, &ms, &n);
        for (; rc == HW_OK && i < n; i++) {
            Helpwire__V1__OutboundMessage *m = ms[i];
            recipient *r = NULL;
            if (s->n_fl >= HW_OUTBOX_MAX_IN_FLIGHT || s->n_hd >= HW_OUTBOX_MAX_HELD)
                break; /* paused: the rest waits for acknowledgements */
            rc = recipient_add(s, recipient_of(m), &r);
            if (rc != HW_OK)
                break;
            if (may_stream(s, r)) {
                m->attempt = m->attempt + 1;
                rc = stream_now(s, r, m, now);
            } else {
                rc = held_push(s, m->seq, r->who);
                if (rc == HW_OK)
                    r->held++;
            }
            if (rc != HW_OK) {
                recipient_drop_if_idle(s, r);
                break; /* the cursor stays before m: seen on a later pass */
            }
            s->cursor = m->seq;
        }
        if (rc == HW_OK && i == n && n < HW_OUTBOX_PAGE)
            s->want_scan = false; /* reached the end of the queue */
        hw_arena_reset(ob->arena);
    }
    return rc;
}

static const char *channel_name(Helpwire__V1__Channel channel)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&helpwire__v1__channel__descriptor, channel);
    return v ? v->name : "CHANNEL_UNKNOWN";
}

static void log_lease(hw_outbox *ob, const sub *s, const char *state)
{
    char q[2 * HW_OUTBOX_MAX_INSTANCE + 8];
    hw_log_event(ob->app->log, HW_LOG_INFO, "outbox_lease", "channel=%s instance=%s state=%s",
                 channel_name(s->channel), hw_log_quote(s->instance, q, sizeof q), state);
}

/* Sends the control message saying s's lease (seq 0, nothing to deliver). */
static void announce_lease(hw_outbox *ob, sub *s)
{
    Helpwire__V1__OutboundMessage m = HELPWIRE__V1__OUTBOUND_MESSAGE__INIT;
    m.channel = s->channel;
    m.lease = s->lease;
    s->announce = false;
    log_lease(ob, s, s->lease == HELPWIRE__V1__LEASE_STATE__LEASE_STATE_ACTIVE ? "active" : "standby");
    hw_call_stream_send(s->call, &m.base);
}

static void serve(hw_outbox *ob, sub *s)
{
    if (s->announce) {
        announce_lease(ob, s);
        if (s->lease == HELPWIRE__V1__LEASE_STATE__LEASE_STATE_ACTIVE) {
            pthread_mutex_lock(&ob->mu);
            s->live = true; /* signals go out behind the control message */
            pthread_mutex_unlock(&ob->mu);
        }
    }
    if (s->lease != HELPWIRE__V1__LEASE_STATE__LEASE_STATE_ACTIVE)
        return; /* a standby receives nothing until it is promoted */
    hw_store_txn *txn = NULL;
    int rc = hw_store_read_begin(ob->reader, &txn);
    if (rc == HW_OK) {
        int64_t now = mono_ms();
        rc = serve_flight(ob, s, txn, now);
        if (rc == HW_OK)
            rc = serve_held(ob, s, txn, now);
        if (rc == HW_OK)
            rc = serve_new(ob, s, txn, now);
        hw_store_read_end(ob->reader);
    }
    hw_arena_reset(ob->arena);
    if (rc != HW_OK)
        hw_log_event(ob->app->log, HW_LOG_ERROR, "outbox_read_failed", "channel=%d error=%s", (int)s->channel,
                     hw_strerror(rc));
}

static bool sub_has_work(const sub *s, int64_t now)
{
    if (s->announce)
        return true;
    if (s->lease != HELPWIRE__V1__LEASE_STATE__LEASE_STATE_ACTIVE)
        return false;
    if (s->want_scan && s->n_fl < HW_OUTBOX_MAX_IN_FLIGHT && s->n_hd < HW_OUTBOX_MAX_HELD)
        return true;
    if (s->check_acks && s->n_fl > 0)
        return true;
    for (size_t i = 0; i < s->n_fl; i++)
        if (s->fl[i].due_ms <= now)
            return true;
    return false;
}

/* The earliest redelivery due time over every subscriber, or INT64_MAX.
 * Caller holds ob->mu. */
static int64_t next_due_locked(hw_outbox *ob)
{
    int64_t due = INT64_MAX;
    for (sub *s = ob->subs; s; s = s->next)
        for (size_t i = 0; i < s->n_fl; i++)
            if (s->fl[i].due_ms < due)
                due = s->fl[i].due_ms;
    return due;
}

/* The lease decisions, made by the hub thread alone: a channel whose
 * active subscriber is gone (or that never had one) gives the lease to its
 * subscriber that waited longest, which then starts from the backlog like a
 * new subscriber; every other new subscriber becomes a standby. Nobody is
 * promoted while the server drains (every stream is ending). Caller holds
 * ob->mu. */
static void assign_leases_locked(hw_outbox *ob)
{
    sub *active[HW_OUTBOX_CHANNELS] = {0}, *oldest[HW_OUTBOX_CHANNELS] = {0};
    for (sub *s = ob->subs; s; s = s->next) {
        if (s->lease == HELPWIRE__V1__LEASE_STATE__LEASE_STATE_ACTIVE)
            active[s->channel] = s;
        else if (!oldest[s->channel] || s->joined < oldest[s->channel]->joined)
            oldest[s->channel] = s;
    }
    for (sub *s = ob->subs; s; s = s->next) {
        /* app->net is read only once a subscriber exists: main set it before
         * any call could subscribe (and the sub was listed under ob->mu). */
        if (!active[s->channel] && s == oldest[s->channel] && !hw_net_draining(ob->app->net)) {
            s->lease = HELPWIRE__V1__LEASE_STATE__LEASE_STATE_ACTIVE;
            s->announce = true;
            s->cursor = 0;
            s->want_scan = true; /* the backlog, from the start */
        } else if (s->lease == HELPWIRE__V1__LEASE_STATE__LEASE_STATE_UNSPECIFIED) {
            s->lease = HELPWIRE__V1__LEASE_STATE__LEASE_STATE_STANDBY;
            s->announce = true;
        }
    }
}

/* Waits for a wake-up or until due_ms (monotonic). Returns false to stop. */
static bool hub_wait(hw_outbox *ob, int64_t due_ms)
{
    pthread_mutex_lock(&ob->wake_mu);
    while (!ob->wake && !ob->stop) {
        if (due_ms == INT64_MAX) {
            pthread_cond_wait(&ob->wake_cv, &ob->wake_mu);
            continue;
        }
        struct timespec ts = {.tv_sec = due_ms / 1000, .tv_nsec = (due_ms % 1000) * 1000000};
        if (pthread_cond_timedwait(&ob->wake_cv, &ob->wake_mu, &ts) == ETIMEDOUT)
            break;
    }
    ob->wake = false;
    bool go_on = !ob->stop;
    pthread_mutex_unlock(&ob->wake_mu);
    return go_on;
}

static void *hub_main(void *arg)
{
    hw_outbox *ob = arg;
    uint_fast64_t seen_commit[HW_OUTBOX_CHANNELS] = {0}, seen_ack[HW_OUTBOX_CHANNELS] = {0};
    sub **work = NULL;
    size_t cap_work = 0;
    int64_t due = INT64_MAX;
    while (hub_wait(ob, due)) {
        unsigned committed = 0, acked = 0;
        for (int ch = 0; ch < HW_OUTBOX_CHANNELS; ch++) {
            uint_fast64_t g = atomic_load(&ob->commit_gen[ch]);
            if (g != seen_commit[ch]) {
                seen_commit[ch] = g;
                committed |= 1u << ch;
            }
            g = atomic_load(&ob->ack_gen[ch]);
            if (g != seen_ack[ch]) {
                seen_ack[ch] = g;
                acked |= 1u << ch;
            }
        }

        /* Pick and pin the subscribers with something to do. */
        size_t n_work = 0;
        bool truncated = false;
        int64_t now = mono_ms();
        pthread_mutex_lock(&ob->mu);
        assign_leases_locked(ob);
        for (sub *s = ob->subs; s; s = s->next) {
            if (committed & (1u << s->channel))
                s->want_scan = true;
            if (acked & (1u << s->channel))
                s->check_acks = true;
            if (!sub_has_work(s, now))
                continue;
            if (n_work == cap_work) {
                size_t cap = cap_work ? cap_work * 2 : 16;
                sub **w = realloc(work, cap * sizeof *w);
                if (!w) {
                    truncated = true; /* the rest waits for the next pass */
                    break;
                }
                work = w;
                cap_work = cap;
            }
            s->pinned++;
            work[n_work++] = s;
        }
        pthread_mutex_unlock(&ob->mu);

        for (size_t i = 0; i < n_work; i++)
            serve(ob, work[i]);

        /* Unpin; free the subscribers whose streams closed meanwhile. */
        sub *gone = NULL;
        pthread_mutex_lock(&ob->mu);
        for (size_t i = 0; i < n_work; i++) {
            sub *s = work[i];
            if (--s->pinned == 0 && s->closed) {
                s->next = gone;
                gone = s;
            }
        }
        due = next_due_locked(ob);
        pthread_mutex_unlock(&ob->mu);
        /* A pass that could not allocate its work list retries soon. */
        if (truncated && due > mono_ms() + 100)
            due = mono_ms() + 100;
        while (gone) {
            sub *next = gone->next;
            hw_call_unref(gone->call);
            sub_free(gone);
            gone = next;
        }
    }
    free(work);
    return NULL;
}

/* ------------------------------------------------------------ lifecycle */

int hw_outbox_create(hw_outbox **out, hw_app *app)
{
    *out = NULL;
    hw_outbox *ob = calloc(1, sizeof *ob);
    if (!ob)
        return HW_ENOMEM;
    ob->app = app;
    pthread_mutex_init(&ob->mu, NULL);
    pthread_mutex_init(&ob->wake_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ob->wake_cv, &ca);
    pthread_condattr_destroy(&ca);
    for (int i = 0; i < HW_OUTBOX_CHANNELS; i++) {
        atomic_init(&ob->commit_gen[i], 0);
        atomic_init(&ob->ack_gen[i], 0);
    }
    int rc = HW_ENOMEM;
    ob->arena = hw_arena_create(1 << 16);
    if (!ob->arena)
        goto fail;
    rc = hw_store_reader_create(app->store, &ob->reader);
    if (rc != HW_OK)
        goto fail;
    if (pthread_create(&ob->thread, NULL, hub_main, ob) != 0) {
        rc = HW_ENOMEM;
        goto fail;
    }
    ob->thread_started = true;
    pthread_setname_np(ob->thread, "hw-outbox");
    *out = ob;
    return HW_OK;
fail:
    hw_outbox_destroy(ob);
    return rc;
}

void hw_outbox_destroy(hw_outbox *ob)
{
    if (!ob)
        return;
    if (ob->thread_started) {
        pthread_mutex_lock(&ob->wake_mu);
        ob->stop = true;
        pthread_cond_signal(&ob->wake_cv);
        pthread_mutex_unlock(&ob->wake_mu);
        pthread_join(ob->thread, NULL);
    }
    /* After hw_net_shutdown every stream has closed and left the list (its
     * on_close ran and dropped our reference); a leftover here would mean a
     * call outliving the server, so only our memory is released. */
    for (sub *s = ob->subs, *next; s; s = next) {
        next = s->next;
        sub_free(s);
    }
    hw_store_reader_destroy(ob->reader);
    hw_arena_destroy(ob->arena);
    pthread_cond_destroy(&ob->wake_cv);
    pthread_mutex_destroy(&ob->wake_mu);
    pthread_mutex_destroy(&ob->mu);
    free(ob);
}

/* ---------------------------------------------------------------- queue */

/* Whether m has every field a bridge needs. */
static bool complete(const Helpwire__V1__OutboundMessage *m)
{
    return m && m->channel != HELPWIRE__V1__CHANNEL__CHANNEL_UNSPECIFIED && m->channel_user_id &&
           m->channel_user_id[0] && m->kind != HELPWIRE__V1__OUTBOUND_KIND__OUTBOUND_KIND_UNSPECIFIED &&
           m->text && (m->text[0] || m->n_attachments > 0);
}

int hw_outbox_append_in(hw_store_txn *w, hw_effects *fx, Helpwire__V1__OutboundMessage *m)
{
    if (!complete(m))
        return HW_EINVALID;
    m->seq = 0; /* a rerun of the write fn must not reuse the rolled-back number */
    m->attempt = 0;
    if (m->created_unix_ms == 0)
        m->created_unix_ms = hw_effects_now_ms(fx);
    int rc = hw_store_outbox_append(w, m);
    if (rc == HW_OK)
        hw_effects_outbox_appended(fx, m->channel);
    return rc;
}

/* What each channel's API takes in one text message. Data, not code: a new
 * channel is a row. */
static const struct {
    Helpwire__V1__Channel channel;
    hw_split_limit limit;
} channel_limits[] = {
    /* Bot API sendMessage: 1-4096 characters after entity parsing, counted
     * in UTF-16 code units (the bridge sends plain text, no entities). */
    {HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, {HW_SPLIT_UTF16_UNITS, 4096}},
    /* Cloud API text message: body up to 4096 characters. */
    {HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP, {HW_SPLIT_CODE_POINTS, 4096}},
    /* The web chat page shows any length; AddMessage bounds texts. */
    {HELPWIRE__V1__CHANNEL__CHANNEL_WEBCHAT, {HW_SPLIT_BYTES, 0}},
};

hw_split_limit hw_outbox_channel_limit(Helpwire__V1__Channel channel)
{
    for (size_t i = 0; i < sizeof channel_limits / sizeof *channel_limits; i++)
        if (channel_limits[i].channel == channel)
            return channel_limits[i].limit;
    return (hw_split_limit){HW_SPLIT_BYTES, 0};
}

int hw_outbox_append_parts_in(hw_store_txn *w, hw_effects *fx, Helpwire__V1__OutboundMessage *m, hw_arena *a,
                              hw_outbox_parts *sent)
{
    if (sent)
        *sent = (hw_outbox_parts){0};
    if (!complete(m) || (sent && !a))
        return HW_EINVALID;
    const char *text = m->text;
    size_t len = strlen(text), n_parts = 0;
    hw_split_limit limit = hw_outbox_channel_limit(m->channel);
    int rc = hw_split_count(text, len, &limit, &n_parts);
    if (rc != HW_OK)
        return rc;
    m->seq = 0;
    if (n_parts == 0 && m->n_attachments > 0) {
        /* Files without words (or with whitespace only): one message,
         * its text empty. */
        Helpwire__V1__OutboundMessage only = *m;
        only.text = (char *)"";
        if ((rc = hw_outbox_append_in(w, fx, &only)) != HW_OK)
            return rc;
        m->seq = only.seq;
        m->created_unix_ms = only.created_unix_ms;
        m->attempt = 0;
        if (sent) {
            if (!(sent->seqs = hw_arena_alloc(a, sizeof *sent->seqs)))
                return HW_ENOMEM;
            sent->seqs[0] = only.seq;
            sent->n = 1;
        }
        return HW_OK;
    }
    if (n_parts == 0)
        return HW_OK;
    uint64_t *seqs = NULL;
    if (sent) {
        seqs = hw_arena_alloc(a, n_parts * sizeof *seqs);
        if (!seqs)
            return HW_ENOMEM;
    }
    char *buf = n_parts > 1 ? malloc(len + 1) : NULL; /* the part being appended, NUL-terminated */
    if (n_parts > 1 && !buf)
        return HW_ENOMEM;
    uint64_t first = 0;
    size_t pos = 0, i = 0;
    hw_split_part p;
    while (rc == HW_OK && i < n_parts && hw_split_next(text, len, &limit, &pos, &p) == 1) {
        Helpwire__V1__OutboundMessage part = *m;
        if (buf) {
            memcpy(buf, text + p.offset, p.len_bytes);
            buf[p.len_bytes] = '\0';
            part.text = buf;
        }
        part.part = (uint32_t)(i + 1);
        part.parts = (uint32_t)n_parts;
        if (i + 1 < n_parts) {
            part.survey_url = (char *)""; /* the link ends the text: the last part carries it */
            part.n_attachments = 0;        /* files follow the text: on its last part */
            part.attachments = NULL;
        }
        rc = hw_outbox_append_in(w, fx, &part);
        if (rc == HW_OK) {
            if (i == 0) {
                first = part.seq;
                m->created_unix_ms = part.created_unix_ms; /* every part the same time */
            }
            if (seqs)
                seqs[i] = part.seq;
            i++;
        }
    }
    free(buf);
    if (rc != HW_OK)
        return rc;
    assert(i == n_parts);
    m->seq = first;
    m->attempt = 0;
    if (sent) {
        sent->seqs = seqs;
        sent->n = n_parts;
    }
    return HW_OK;
}

int hw_outbox_send_parts_to_customer_in(hw_store_txn *w, hw_effects *fx, const Helpwire__V1__Customer *c,
                                        Helpwire__V1__Channel channel, const char *ticket_id,
                                        Helpwire__V1__OutboundKind kind, const char *text, hw_arena *a,
                                        hw_outbox_parts *sent)
{
    return hw_outbox_send_parts_to_customer_ex_in(w, fx, c, channel, ticket_id, kind, text, NULL, a, sent);
}

static char *given(const char *s)
{
    return (char *)(s ? s : "");
}

void hw_outbox_extra_apply(Helpwire__V1__OutboundMessage *m, const hw_outbox_extra *x)
{
    if (!x)
        return;
    m->locale = given(x->locale);
    m->author_name = given(x->author_name);
    m->template_name = given(x->template_name);
    m->template_language = given(x->template_language);
}

int hw_outbox_send_parts_to_customer_ex_in(hw_store_txn *w, hw_effects *fx, const Helpwire__V1__Customer *c,
                                           Helpwire__V1__Channel channel, const char *ticket_id,
                                           Helpwire__V1__OutboundKind kind, const char *text,
                                           const hw_outbox_extra *x, hw_arena *a, hw_outbox_parts *sent)
{
    Helpwire__V1__OutboundMessage m = HELPWIRE__V1__OUTBOUND_MESSAGE__INIT;
    m.ticket_id = given(ticket_id);
    m.kind = kind;
    m.text = (char *)text;
    hw_outbox_extra_apply(&m, x);
    return hw_outbox_send_message_to_customer_in(w, fx, c, channel, &m, a, sent);
}

int hw_outbox_send_message_to_customer_in(hw_store_txn *w, hw_effects *fx, const Helpwire__V1__Customer *c,
                                          Helpwire__V1__Channel channel, Helpwire__V1__OutboundMessage *m,
                                          hw_arena *a, hw_outbox_parts *sent)
{
    if (sent)
        *sent = (hw_outbox_parts){0};
    const Helpwire__V1__Identity *to = NULL;
    for (size_t i = 0; i < c->n_identities; i++)
        if (c->identities[i]->channel == channel) {
            to = c->identities[i];
            break;
        }
    if (!to && c->n_identities)
        to = c->identities[0];
    if (!to)
        return HW_OK; /* a customer created through the API with no channel: nothing to deliver to */
    m->channel = to->channel;
    m->channel_user_id = to->channel_user_id;
    m->customer_id = c->id;
    if (!m->ticket_id)
        m->ticket_id = (char *)"";
    if (!m->locale || !m->locale[0])
        m->locale = (char *)hw_conversation_short_locale(c->locale);
    return hw_outbox_append_parts_in(w, fx, m, a, sent);
}

void hw_outbox_committed(hw_outbox *ob, Helpwire__V1__Channel channel)
{
    if (!ob || (unsigned)channel >= HW_OUTBOX_CHANNELS)
        return;
    atomic_fetch_add(&ob->commit_gen[channel], 1);
    hub_wake(ob);
}

void hw_outbox_acked(hw_outbox *ob, Helpwire__V1__Channel channel)
{
    if (!ob || (unsigned)channel >= HW_OUTBOX_CHANNELS)
        return;
    atomic_fetch_add(&ob->ack_gen[channel], 1);
    hub_wake(ob);
}

/* -------------------------------------------------------------- signals */

int hw_outbox_signal(hw_outbox *ob, const Helpwire__V1__OutboundMessage *m)
{
    if (!ob || !m || (unsigned)m->channel >= HW_OUTBOX_CHANNELS || m->seq != 0)
        return HW_EINVALID;
    hw_call *call = NULL;
    pthread_mutex_lock(&ob->mu);
    for (sub *s = ob->subs; s && !call; s = s->next)
        if (s->channel == m->channel && s->live && !s->closed) {
            call = s->call;
            hw_call_ref(call); /* the stream may end meanwhile: the call stays valid */
        }
    pthread_mutex_unlock(&ob->mu);
    if (!call)
        return HW_ENOTFOUND;
    /* Sent from the caller's thread, not the hub's: a signal is never
     * stored or redelivered, so the hub has nothing to track, and a send
     * queues without waiting. */
    int sent = hw_call_stream_send(call, &m->base);
    hw_call_unref(call);
    return sent == 0 ? HW_OK : HW_ENOTFOUND;
}

/* ------------------------------------------------------------ Subscribe */

static void on_subscriber_closed(hw_call *call, void *arg)
{
    hw_outbox *ob = arg;
    sub *gone = NULL;
    bool released = false;
    pthread_mutex_lock(&ob->mu);
    for (sub **p = &ob->subs; *p; p = &(*p)->next)
        if ((*p)->call == call) {
            sub *s = *p;
            *p = s->next;
            s->closed = true;
            released = s->lease == HELPWIRE__V1__LEASE_STATE__LEASE_STATE_ACTIVE;
            if (released)
                log_lease(ob, s, "released");
            if (s->pinned == 0)
                gone = s; /* else the hub thread frees it when it unpins */
            break;
        }
    pthread_mutex_unlock(&ob->mu);
    if (released)
        hub_wake(ob); /* a standby takes over */
    if (gone) {
        hw_call_unref(call);
        sub_free(gone);
    }
}

void hw_outbox_subscribe(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    hw_app *app = appv;
    hw_outbox *ob = app->outbox;
    const Helpwire__V1__SubscribeRequest *req = (const void *)request;
    if (!hw_rpc_check_enum(call, "channel", &helpwire__v1__channel__descriptor, req->channel, false))
        return;
    uint32_t redeliver = req->redeliver_after_ms ? req->redeliver_after_ms : HW_OUTBOX_DEFAULT_REDELIVER_MS;
    if (redeliver < HW_OUTBOX_MIN_REDELIVER_MS) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "redeliver_after_ms: at least %u (0 means %u)",
                     HW_OUTBOX_MIN_REDELIVER_MS, HW_OUTBOX_DEFAULT_REDELIVER_MS);
        return;
    }
    uint32_t per_recipient =
        req->max_in_flight_per_recipient ? req->max_in_flight_per_recipient : HW_OUTBOX_DEFAULT_PER_RECIPIENT;
    if (per_recipient > HW_OUTBOX_MAX_PER_RECIPIENT) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
                     "max_in_flight_per_recipient: %u, at most %u allowed (0 means %u)",
                     req->max_in_flight_per_recipient, HW_OUTBOX_MAX_PER_RECIPIENT,
                     HW_OUTBOX_DEFAULT_PER_RECIPIENT);
        return;
    }
    const char *instance = req->instance ? req->instance : "";
    if (!hw_rpc_check_text(call, "instance", instance, 0, HW_OUTBOX_MAX_INSTANCE))
        return;
    if (!ob) {
        hw_call_fail(call, GRPC_STATUS_UNAVAILABLE, "the outbox is not running");
        return;
    }
    sub *s = calloc(1, sizeof *s);
    if (!s) {
        hw_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of memory");
        return;
    }
    s->call = call;
    s->channel = req->channel;
    s->redeliver_ms = redeliver;
    s->per_recipient = per_recipient;
    memcpy(s->instance, instance, strlen(instance) + 1);
    hw_call_ref(call);
    hw_call_on_close(call, on_subscriber_closed, ob);
    pthread_mutex_lock(&ob->mu);
    s->joined = ++ob->joined;
    s->next = ob->subs;
    ob->subs = s;
    pthread_mutex_unlock(&ob->mu);
    hub_wake(ob);
}

/* ------------------------------------------------------------------ Ack */

typedef struct {
    hw_wctx h;
    Helpwire__V1__Channel channel;
    const uint64_t *seqs;
    size_t n;
    Helpwire__V1__FailedDelivery *const *failed;
    size_t n_failed;
    uint32_t acked, acked_failed;
} ack_ctx;

/* Acknowledges failed[i] as FAILED: a queued message leaves the queue like
 * a delivered one (it is never streamed again and leaves every flight) for
 * the failed list, with DELIVERY_FAILED on its ticket (outbox_failed.h).
 * A sequence no longer queued is recorded from the failure's message when
 * it carries one (a late failure). HW_ENOTFOUND: unknown or already
 * acknowledged, without a message; HW_EEXISTS: already in the failed
 * list. Both are ignored. */
static int ack_failed_in(hw_store_txn *w, ack_ctx *c, size_t i)
{
    const Helpwire__V1__FailedDelivery *f = c->failed[i];
    Helpwire__V1__OutboundMessage *m = NULL;
    int rc = hw_store_outbox_get(w, c->channel, f->seq, hw_call_arena(c->h.call), &m);
    if (rc == HW_ENOTFOUND && f->message)
        return hw_outbox_failed_late_in(w, &c->h, i, f, c->channel);
    if (rc != HW_OK)
        return rc;
    rc = hw_store_outbox_ack(w, c->channel, f->seq);
    if (rc != HW_OK)
        return rc;
    /* The hub counts deliveries in memory; the bridge may know more. */
    if (f->message && f->message->seq == f->seq && f->message->attempt > m->attempt)
        m->attempt = f->message->attempt;
    return hw_outbox_failed_record_in(w, &c->h.fx, m, f->reason, false);
}

static int ack_fn(hw_store_txn *w, void *arg)
{
    ack_ctx *c = arg;
    c->acked = 0;
    c->acked_failed = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (c->seqs[i] == 0)
            continue;
        int rc = hw_store_outbox_ack(w, c->channel, c->seqs[i]);
        if (rc == HW_OK)
            c->acked++;
        else if (rc != HW_ENOTFOUND)
            return rc;
    }
    for (size_t i = 0; i < c->n_failed; i++) {
        if (c->failed[i]->seq == 0)
            continue;
        int rc = ack_failed_in(w, c, i);
        if (rc == HW_OK) {
            c->acked++;
            c->acked_failed++;
        } else if (rc != HW_ENOTFOUND && rc != HW_EEXISTS) {
            return rc;
        }
    }
    if (c->acked)
        hw_effects_outbox_acked(&c->h.fx, c->channel);
    return HW_OK;
}

static void ack_done(void *arg, int status)
{
    ack_ctx *c = arg;
    if (hw_rpc_write_failed(&c->h, status))
        return;
    Helpwire__V1__AckReply r = HELPWIRE__V1__ACK_REPLY__INIT;
    r.acked = c->acked;
    r.failed = c->acked_failed;
    hw_call_reply(c->h.call, &r.base);
}

void hw_outbox_ack(hw_call *call, const ProtobufCMessage *request, void *app)
{
    const Helpwire__V1__AckRequest *req = (const void *)request;
    if (!hw_rpc_check_enum(call, "channel", &helpwire__v1__channel__descriptor, req->channel, false))
        return;
    if (req->n_seqs + req->n_failed > HW_OUTBOX_MAX_ACK) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "seqs and failed: %zu items, at most %u allowed",
                     req->n_seqs + req->n_failed, HW_OUTBOX_MAX_ACK);
        return;
    }
    for (size_t i = 0; i < req->n_failed; i++) {
        if (!req->failed[i]->reason || !req->failed[i]->reason[0]) {
            hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "failed[%zu].reason: required", i);
            return;
        }
        if (req->failed[i]->message && !hw_outbox_failed_check_late(call, i, req->failed[i], req->channel,
                                                                    hw_outbox_channel_limit(req->channel)))
            return;
    }
    if (req->n_seqs == 0 && req->n_failed == 0) {
        Helpwire__V1__AckReply r = HELPWIRE__V1__ACK_REPLY__INIT;
        hw_call_reply(call, &r.base);
        return;
    }
    ack_ctx *c = hw_arena_calloc(hw_call_arena(call), 1, sizeof *c);
    if (!c) {
        hw_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of memory");
        return;
    }
    c->h.call = call;
    c->h.app = app;
    c->channel = req->channel;
    c->seqs = req->seqs;
    c->n = req->n_seqs;
    c->failed = req->failed;
    c->n_failed = req->n_failed;
    hw_rpc_write(&c->h, ack_fn, ack_done);
}
