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
 */
#ifndef HW_WATCH_H
#define HW_WATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "helpwire/v1/tickets.pb-c.h"
#include "server/domain/effects.h"
#include "server/net/net.h"
#include "server/store/store.h"

/* Appends an event about ticket t to its history (in w) and records a
 * copy, with a snapshot of t, on fx for the watchers (both allocated in
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

/* After every watcher's stream has ended. NULL is a no-op. */
void hw_watch_destroy(hw_watch *w);

/* Adds the stream call as a watcher of the events whose ticket is in queue
 * and assigned to assignee ("" matches any; both copied). The watcher is
 * removed when the stream ends.
 * @return HW_OK; HW_ENOMEM (nothing added). */
int hw_watch_add(hw_watch *w, hw_call *call, const char *queue, const char *assignee);

/* Sends each of events[0..n) to the watchers whose filter matches its
 * snapshot, in order (the ticket_events sink of effects.h). w may be NULL.
 * Never blocks on a stream; any thread. */
void hw_watch_publish(hw_watch *w, Helpwire__V1__TicketEvent *const *events, size_t n);

#endif
