/*
 * watch: ticket events for the WatchTickets streams, the live inbox.
 *
 * A store write that changes a ticket records each event it causes with
 * hw_watch_record (inside its write fn): the event goes into the ticket's
 * history and a copy, with a snapshot of the ticket after it, onto the
 * write's effects (effects.h). After the commit, the effects' ticket_events
 * sink hands them to hw_watch_publish, which sends each event to every
 * watcher whose filter (queue, assignee) matches the snapshot. Tickets,
 * surveys and the alert notifier all record through here, so every history
 * event is also a live event, and only a committed one.
 *
 * Each event also goes into the global event log (server/store/eventlog.h)
 * in the same transaction, and carries its cursor there and on the live
 * stream: a watch resumed after a cursor (hw_watch_resume) replays the
 * matching events since from the log, then continues live, each event
 * once and in log order. Replayed events are filtered by the queue and
 * assignee their ticket had right after the event, as a live watcher saw
 * them then; the ticket they carry is the ticket as it is now (only its
 * id when it was deleted since).
 */
#ifndef HW_WATCH_H
#define HW_WATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "helpwire/v1/tickets.pb-c.h"
#include "server/domain/app.h"
#include "server/domain/effects.h"
#include "server/net/net.h"
#include "server/store/store.h"

/* Appends an event about ticket t to its history and to the event log (in
 * w) and records a copy, with its cursor and a snapshot of t, on fx for
 * the watchers (both allocated in
 * fx's arena). actor and detail are borrowed and must live as long as fx's
 * arena; detail may be NULL. Writer thread (inside a write fn).
 * @return HW_OK; HW_ENOMEM; store codes. */
int hw_watch_record(hw_store_txn *w, hw_effects *fx, const Helpwire__V1__Ticket *t,
                    Helpwire__V1__TicketEventKind kind, const char *actor, const char *detail);

/* hw_watch_record for the ticket with this id, read in w, for writers that
 * hold only the id (surveys, alerts). A ticket not in this store (a seeded
 * or restored reference) still gets its history event; the copy carries
 * only the id, so only unfiltered watchers see it. */
int hw_watch_record_id(hw_store_txn *w, hw_effects *fx, const char *ticket_id,
                       Helpwire__V1__TicketEventKind kind, const char *actor, const char *detail);

/* The hub of open WatchTickets streams. Opaque; thread-safe. */
typedef struct hw_watch hw_watch;

int hw_watch_create(hw_watch **out);

/* Waits until no resumed watch reads the store any more (their replays
 * end once their streams do): after the server's streams ended, before
 * the store closes. NULL is a no-op. */
void hw_watch_stop(hw_watch *w);

/* After every watcher's stream has ended (hw_watch_stop first). NULL is a
 * no-op. */
void hw_watch_destroy(hw_watch *w);

/* Adds the stream call as a watcher of the events whose ticket is in queue
 * and assigned to assignee ("" matches any; both copied). The watcher is
 * removed when the stream ends.
 * @return HW_OK; HW_ENOMEM (nothing added). */
int hw_watch_add(hw_watch *w, hw_call *call, const char *queue, const char *assignee);

/* WatchTickets with after: checks the cursor in a read on the calling
 * worker, then adds the stream call as a watcher (as hw_watch_add) that
 * first catches up from app->store's event log on a thread of its own
 * (flow-controlled: it sends as the client reads) and then goes live.
 * Fails the call with INVALID_ARGUMENT (a cursor this store did not make),
 * OUT_OF_RANGE (retention deleted events after it, also when that happens
 * while catching up), RESOURCE_EXHAUSTED (too many watches catching up at
 * once, out of memory) or UNAVAILABLE. Worker thread (the handler). */
void hw_watch_resume(hw_app *app, hw_call *call, const char *queue, const char *assignee, const char *after);

/* Sends each of events[0..n) to the watchers whose filter matches its
 * snapshot, in order (the ticket_events sink of effects.h). w may be NULL.
 * Never blocks on a stream; any thread. */
void hw_watch_publish(hw_watch *w, Helpwire__V1__TicketEvent *const *events, size_t n);

#endif
