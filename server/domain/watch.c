/*
 * watch: the WatchTickets hub and the ticket events writes record (see
 * watch.h). Watchers are a mutex-guarded list: publishing is a walk that
 * queues one message per matching stream (hw_call_stream_send never
 * blocks; a watcher that falls too far behind is ended by the stream's
 * bounded queue), and watchers come and go rarely.
 *
 * Resuming (WatchTicketsRequest.after): the watcher joins the list first,
 * in the replaying state, where publishing only keeps a packed copy of each
 * matching event (at most PENDING_MAX; past that it keeps none and notes
 * the overflow). A thread of its own then reads the global event log
 * (server/store/eventlog.h) after the cursor in short read transactions
 * and sends what matches, waiting for the stream to drain to REPLAY_WINDOW
 * messages before each send (hw_call_stream_wait), so a large gap costs
 * time, not memory, and a slow client is not cut off. When a read finds
 * the end of the log, under the hub's mutex: after an overflow the copies
 * are dropped and the log is read again (every event published is in the
 * log, committed before it was published); otherwise the copies with a
 * sequence above the last one read from the log are sent and the watcher
 * turns live, dropping from then on the events at or below that sequence.
 * Every event published after the watcher joined is thus either read from
 * the log or copied, never lost; the sequence comparison sends each once.
 */
#include "server/domain/watch.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "server/domain/rpc.h"
#include "server/store/eventlog.h"
#include "server/store/records.h"

#define REPLAY_BATCH 64  /* log entries per read transaction */
#define REPLAY_WINDOW 32 /* messages queued or in flight while replaying */
#define PENDING_MAX 512  /* live events kept while replaying (fits the send queue) */
#define MAX_REPLAYS 16   /* resuming watches at once (each holds a store reader) */

int hw_watch_record(hw_store_txn *w, hw_effects *fx, const Helpwire__V1__Ticket *t,
                    Helpwire__V1__TicketEventKind kind, const char *actor, const char *detail)
{
    hw_arena *a = fx->arena;
    Helpwire__V1__TicketEvent *e = hw_arena_alloc(a, sizeof *e);
    Helpwire__V1__Ticket *snap = hw_arena_alloc(a, sizeof *snap);
    if (!e || !snap)
        return HW_ENOMEM;
    helpwire__v1__ticket_event__init(e);
    e->ticket_id = t->id;
    e->kind = kind;
    e->actor = (char *)actor;
    e->detail = (char *)(detail ? detail : "");
    e->at_unix_ms = hw_effects_now_ms(fx);
    int rc = hw_store_ticket_event_append(w, e);
    if (rc != HW_OK)
        return rc;
    char *cursor = hw_arena_alloc(a, HW_EVENTLOG_CURSOR_MAX);
    if (!cursor)
        return HW_ENOMEM;
    if ((rc = hw_eventlog_append(w, e, t->queue, t->assignee_agent_id, cursor, NULL)) != HW_OK)
        return rc;
    e->cursor = cursor;
    *snap = *t;
    e->ticket = snap;
    return hw_effects_ticket_event(fx, e);
}

int hw_watch_record_id(hw_store_txn *w, hw_effects *fx, const char *ticket_id,
                       Helpwire__V1__TicketEventKind kind, const char *actor, const char *detail)
{
    hw_arena *a = fx->arena;
    Helpwire__V1__Ticket *t;
    int rc = hw_store_ticket_get(w, ticket_id, a, &t);
    if (rc == HW_ENOTFOUND) {
        if (!(t = hw_arena_alloc(a, sizeof *t)))
            return HW_ENOMEM;
        helpwire__v1__ticket__init(t);
        t->id = (char *)ticket_id;
    } else if (rc != HW_OK) {
        return rc;
    }
    return hw_watch_record(w, fx, t, kind, actor, detail);
}

/* A live event kept while its watcher replays. */
typedef struct pending {
    struct pending *next;
    uint64_t seq; /* 0: the event had no cursor */
    size_t len;
    uint8_t data[]; /* the packed TicketEvent */
} pending;

typedef struct watcher {
    struct watcher *next;
    hw_call *call;
    char *queue, *assignee;
    /* Under the hub's mutex: */
    uint64_t after; /* live: events up to this sequence are not sent (replayed) */
    bool replaying; /* events go to pending, not to the stream */
    bool overflow;  /* pending overflowed: the replay reads the log again */
    bool closed;    /* the stream ended (unlinked from the list) */
    bool thread;    /* a replay thread uses the watcher: it frees it */
    pending *ph, *pt;
    size_t np;
} watcher;

struct hw_watch {
    pthread_mutex_t mu;
    pthread_cond_t idle; /* replays dropped to 0 */
    watcher *list;
    int replays;
};

int hw_watch_create(hw_watch **out)
{
    hw_watch *w = calloc(1, sizeof *w);
    if (!w)
        return HW_ENOMEM;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->idle, NULL);
    *out = w;
    return HW_OK;
}

void hw_watch_stop(hw_watch *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    while (w->replays > 0)
        pthread_cond_wait(&w->idle, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

void hw_watch_destroy(hw_watch *w)
{
    if (!w)
        return;
    hw_watch_stop(w);
    pthread_cond_destroy(&w->idle);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

static bool matches_fields(const watcher *wt, const char *queue, const char *assignee)
{
    return (!*wt->queue || strcmp(wt->queue, queue) == 0) && (!*wt->assignee || strcmp(wt->assignee, assignee) == 0);
}

static bool matches(const watcher *wt, const Helpwire__V1__Ticket *t)
{
    if (!t)
        return !*wt->queue && !*wt->assignee;
    return matches_fields(wt, t->queue, t->assignee_agent_id);
}

static void pending_free(watcher *wt)
{
    for (pending *p = wt->ph, *n; p; p = n) {
        n = p->next;
        free(p);
    }
    wt->ph = wt->pt = NULL;
    wt->np = 0;
}

/* Keeps a packed copy of e for a replaying watcher. Under the mutex. */
static void pending_add(watcher *wt, const Helpwire__V1__TicketEvent *e)
{
    if (wt->overflow)
        return;
    size_t len = protobuf_c_message_get_packed_size(&e->base);
    pending *p = wt->np < PENDING_MAX ? malloc(sizeof *p + len) : NULL;
    if (!p) { /* the log has it: the replay reads it from there */
        pending_free(wt);
        wt->overflow = true;
        return;
    }
    p->next = NULL;
    p->seq = hw_eventlog_cursor_seq(e->cursor);
    p->len = protobuf_c_message_pack(&e->base, p->data);
    if (wt->pt)
        wt->pt->next = p;
    else
        wt->ph = p;
    wt->pt = p;
    wt->np++;
}

void hw_watch_publish(hw_watch *w, Helpwire__V1__TicketEvent *const *events, size_t n)
{
    if (!w || !n)
        return;
    pthread_mutex_lock(&w->mu);
    for (watcher *wt = w->list; wt; wt = wt->next)
        for (size_t i = 0; i < n; i++) {
            if (!matches(wt, events[i]->ticket))
                continue;
            if (wt->replaying) {
                pending_add(wt, events[i]);
                continue;
            }
            if (wt->after) {
                uint64_t seq = hw_eventlog_cursor_seq(events[i]->cursor);
                if (seq && seq <= wt->after)
                    continue; /* replayed already */
            }
            hw_call_stream_send(wt->call, &events[i]->base);
        }
    pthread_mutex_unlock(&w->mu);
}

static void on_closed(hw_call *call, void *arg)
{
    hw_watch *hub = arg;
    watcher *gone = NULL;
    bool free_it = false;
    pthread_mutex_lock(&hub->mu);
    for (watcher **p = &hub->list; *p; p = &(*p)->next)
        if ((*p)->call == call) {
            gone = *p;
            *p = gone->next;
            gone->closed = true;
            free_it = !gone->thread;
            if (free_it)
                pending_free(gone);
            break;
        }
    pthread_mutex_unlock(&hub->mu);
    if (gone) {
        hw_call_unref(call);
        if (free_it)
            free(gone);
    }
}

/* A watcher of call for queue and assignee, linked into the hub (with the
 * hub's reference to call and the close hook), in the replaying state
 * when replaying. NULL when out of memory. */
static watcher *watcher_add(hw_watch *w, hw_call *call, const char *queue, const char *assignee, bool replaying,
                            uint64_t after)
{
    /* The watcher and its filter strings in one allocation. */
    size_t lq = strlen(queue) + 1, la = strlen(assignee) + 1;
    watcher *wt = calloc(1, sizeof *wt + lq + la);
    if (!wt)
        return NULL;
    wt->queue = (char *)(wt + 1);
    wt->assignee = wt->queue + lq;
    memcpy(wt->queue, queue, lq);
    memcpy(wt->assignee, assignee, la);
    wt->call = call;
    wt->replaying = replaying;
    wt->thread = replaying;
    wt->after = after;
    hw_call_ref(call);
    hw_call_on_close(call, on_closed, w);
    pthread_mutex_lock(&w->mu);
    wt->next = w->list;
    w->list = wt;
    pthread_mutex_unlock(&w->mu);
    return wt;
}

int hw_watch_add(hw_watch *w, hw_call *call, const char *queue, const char *assignee)
{
    return watcher_add(w, call, queue, assignee, false, 0) ? HW_OK : HW_ENOMEM;
}

/* ---- resuming ---- */

typedef struct replay {
    hw_watch *hub;
    watcher *wt;
    hw_call *call;
    hw_store *store;
    uint64_t after; /* the cursor's sequence */
} replay;

/* Sends the pending copies above last and turns the watcher live, unless
 * pending overflowed (then clears it and returns false: read the log
 * again). true also when the stream ended. */
static bool go_live(replay *r, uint64_t last)
{
    watcher *wt = r->wt;
    bool done = true;
    pthread_mutex_lock(&r->hub->mu);
    if (wt->closed) {
        /* nothing to send to */
    } else if (wt->overflow) {
        wt->overflow = false;
        done = false;
    } else {
        for (pending *p = wt->ph; p; p = p->next) {
            if (p->seq && p->seq <= last)
                continue; /* read from the log already */
            ProtobufCMessage *m =
                protobuf_c_message_unpack(&helpwire__v1__ticket_event__descriptor, NULL, p->len, p->data);
            if (m) {
                hw_call_stream_send(r->call, m);
                protobuf_c_message_free_unpacked(m, NULL);
            }
        }
        wt->after = last;
        wt->replaying = false;
    }
    pending_free(wt);
    pthread_mutex_unlock(&r->hub->mu);
    return done;
}

/* Replays the log after r->after to the stream, then turns the watcher
 * live; on a failure ends the stream with it. */
static void replay_run(replay *r, hw_store_reader *reader, hw_arena *a)
{
    uint64_t last = r->after;
    for (;;) {
        hw_store_txn *t;
        int rc = hw_store_read_begin(reader, &t);
        if (rc != HW_OK) {
            hw_rpc_fail(r->call, rc, "cannot read the event history");
            return;
        }
        uint64_t trimmed = 0;
        hw_eventlog_entry *es = NULL;
        size_t n = 0;
        rc = hw_eventlog_bounds(t, &trimmed, NULL);
        if (rc == HW_OK && trimmed > last) {
            hw_store_read_end(reader);
            hw_call_fail(r->call, GRPC_STATUS_OUT_OF_RANGE,
                         "after: the event history no longer reaches back to this cursor (its retention "
                         "passed while catching up); list the tickets again and watch without after");
            return;
        }
        if (rc == HW_OK)
            rc = hw_eventlog_read(t, last, REPLAY_BATCH, a, &es, &n);
        /* The tickets as they are now, for the events that match. */
        for (size_t i = 0; rc == HW_OK && i < n; i++) {
            if (!matches_fields(r->wt, es[i].queue, es[i].assignee))
                continue;
            Helpwire__V1__Ticket *tk;
            rc = hw_store_ticket_get(t, es[i].event->ticket_id, a, &tk);
            if (rc == HW_ENOTFOUND) { /* deleted since: the id only */
                rc = (tk = hw_arena_alloc(a, sizeof *tk)) ? HW_OK : HW_ENOMEM;
                if (tk) {
                    helpwire__v1__ticket__init(tk);
                    tk->id = es[i].event->ticket_id;
                }
            }
            if (rc == HW_OK)
                es[i].event->ticket = tk;
        }
        hw_store_read_end(reader);
        if (rc != HW_OK) {
            hw_rpc_fail(r->call, rc, "cannot read the event history");
            return;
        }
        for (size_t i = 0; i < n; i++) {
            last = es[i].seq;
            if (!es[i].event->ticket)
                continue; /* filtered out */
            if (hw_call_stream_wait(r->call, REPLAY_WINDOW - 1) != 0 ||
                hw_call_stream_send(r->call, &es[i].event->base) != 0)
                return; /* the stream ended */
        }
        hw_arena_reset(a);
        if (n < REPLAY_BATCH) {
            /* The end of the log as the last read saw it: make room for the
             * copies, then switch. */
            if (hw_call_stream_wait(r->call, REPLAY_WINDOW - 1) != 0)
                return;
            if (go_live(r, last))
                return;
        }
    }
}

static void *replay_main(void *arg)
{
    replay *r = arg;
    pthread_setname_np(pthread_self(), "hw-watch-replay");
    hw_store_reader *reader = NULL;
    hw_arena *a = hw_arena_create(0);
    int rc = a ? hw_store_reader_create(r->store, &reader) : HW_ENOMEM;
    if (rc == HW_OK)
        replay_run(r, reader, a);
    else
        hw_call_fail(r->call, rc == HW_ENOMEM ? GRPC_STATUS_RESOURCE_EXHAUSTED : GRPC_STATUS_UNAVAILABLE,
                     "cannot read the event history now: %s; retry", hw_strerror(rc));
    hw_store_reader_destroy(reader);
    hw_arena_destroy(a);
    hw_watch *hub = r->hub;
    watcher *wt = r->wt;
    hw_call *call = r->call;
    free(r);
    pthread_mutex_lock(&hub->mu);
    wt->thread = false;
    bool free_it = wt->closed;
    if (free_it)
        pending_free(wt);
    pthread_mutex_unlock(&hub->mu);
    if (free_it)
        free(wt);
    hw_call_unref(call);
    /* Last: hw_watch_stop may return (and the store close) once this is 0. */
    pthread_mutex_lock(&hub->mu);
    if (--hub->replays == 0)
        pthread_cond_broadcast(&hub->idle);
    pthread_mutex_unlock(&hub->mu);
    return NULL;
}

void hw_watch_resume(hw_app *app, hw_call *call, const char *queue, const char *assignee, const char *after)
{
    hw_watch *hub = app->watch;
    hw_store_txn *t = hw_rpc_read(call, app);
    if (!t)
        return;
    uint64_t seq = 0, trimmed = 0;
    int rc = hw_eventlog_cursor_decode(t, after, &seq);
    if (rc == HW_OK)
        rc = hw_eventlog_bounds(t, &trimmed, NULL);
    hw_rpc_read_end(call, app);
    if (rc == HW_EINVALID) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
                     "after: not a WatchTickets cursor of this server (use a TicketEvent.cursor it sent)");
        return;
    }
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, "cannot read the event history");
        return;
    }
    if (seq < trimmed) {
        hw_call_fail(call, GRPC_STATUS_OUT_OF_RANGE,
                     "after: the event history no longer reaches back to this cursor (events up to %llu "
                     "passed their retention); list the tickets again and watch without after",
                     (unsigned long long)trimmed);
        return;
    }
    replay *r = calloc(1, sizeof *r);
    pthread_mutex_lock(&hub->mu);
    bool room = hub->replays < MAX_REPLAYS;
    if (room && r)
        hub->replays++;
    pthread_mutex_unlock(&hub->mu);
    if (!r || !room) {
        free(r);
        hw_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                     r ? "too many watches are catching up at once (%d); retry shortly" : "server out of memory",
                     MAX_REPLAYS);
        return;
    }
    r->hub = hub;
    r->call = call;
    r->store = app->store;
    r->after = seq;
    /* Joined before the log is read: nothing published from here on is
     * missed. */
    if (!(r->wt = watcher_add(hub, call, queue, assignee, true, seq)))
        goto fail;
    hw_call_ref(call); /* the thread's */
    pthread_t th;
    pthread_attr_t attr;
    bool started = pthread_attr_init(&attr) == 0;
    if (started) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        started = pthread_create(&th, &attr, replay_main, r) == 0;
        pthread_attr_destroy(&attr);
    }
    if (started)
        return;
    /* No thread: the watcher is the hub's alone again; end the stream. */
    pthread_mutex_lock(&hub->mu);
    watcher *wt = r->wt;
    wt->thread = false;
    wt->replaying = false;
    bool free_it = wt->closed;
    pthread_mutex_unlock(&hub->mu);
    if (free_it)
        free(wt);
    hw_call_unref(call);
fail:
    free(r);
    pthread_mutex_lock(&hub->mu);
    if (--hub->replays == 0)
        pthread_cond_broadcast(&hub->idle);
    pthread_mutex_unlock(&hub->mu);
    hw_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of memory");
}
