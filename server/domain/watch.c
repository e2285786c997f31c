/*
 * watch: the WatchTickets hub and the ticket events writes record (see
 * watch.h). Watchers are a mutex-guarded list: publishing is a walk that
 * queues one message per matching stream (hw_call_stream_send never
 * blocks; a watcher that falls too far behind is ended by the stream's
 * bounded queue), and watchers come and go rarely.
 */
#include "server/domain/watch.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "server/domain/rpc.h"
#include "server/store/records.h"

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

typedef struct watcher {
    struct watcher *next;
    hw_call *call;
    char *queue, *assignee;
} watcher;

struct hw_watch {
    pthread_mutex_t mu;
    watcher *list;
};

int hw_watch_create(hw_watch **out)
{
    hw_watch *w = calloc(1, sizeof *w);
    if (!w)
        return HW_ENOMEM;
    pthread_mutex_init(&w->mu, NULL);
    *out = w;
    return HW_OK;
}

void hw_watch_destroy(hw_watch *w)
{
    if (!w)
        return;
    pthread_mutex_destroy(&w->mu);
    free(w);
}

static bool matches(const watcher *wt, const Helpwire__V1__Ticket *t)
{
    if (!t)
        return !*wt->queue && !*wt->assignee;
    return (!*wt->queue || strcmp(wt->queue, t->queue) == 0) &&
           (!*wt->assignee || strcmp(wt->assignee, t->assignee_agent_id) == 0);
}

void hw_watch_publish(hw_watch *w, Helpwire__V1__TicketEvent *const *events, size_t n)
{
    if (!w || !n)
        return;
    pthread_mutex_lock(&w->mu);
    for (watcher *wt = w->list; wt; wt = wt->next)
        for (size_t i = 0; i < n; i++)
            if (matches(wt, events[i]->ticket))
                hw_call_stream_send(wt->call, &events[i]->base);
    pthread_mutex_unlock(&w->mu);
}

static void on_closed(hw_call *call, void *arg)
{
    hw_watch *hub = arg;
    watcher *gone = NULL;
    pthread_mutex_lock(&hub->mu);
    for (watcher **p = &hub->list; *p; p = &(*p)->next)
        if ((*p)->call == call) {
            gone = *p;
            *p = gone->next;
            break;
        }
    pthread_mutex_unlock(&hub->mu);
    if (gone) {
        hw_call_unref(call);
        free(gone);
    }
}

int hw_watch_add(hw_watch *w, hw_call *call, const char *queue, const char *assignee)
{
    /* The watcher and its filter strings in one allocation. */
    size_t lq = strlen(queue) + 1, la = strlen(assignee) + 1;
    watcher *wt = calloc(1, sizeof *wt + lq + la);
    if (!wt)
        return HW_ENOMEM;
    wt->queue = (char *)(wt + 1);
    wt->assignee = wt->queue + lq;
    memcpy(wt->queue, queue, lq);
    memcpy(wt->assignee, assignee, la);
    wt->call = call;
    hw_call_ref(call);
    hw_call_on_close(call, on_closed, w);
    pthread_mutex_lock(&w->mu);
    wt->next = w->list;
    w->list = wt;
    pthread_mutex_unlock(&w->mu);
    return HW_OK;
}
