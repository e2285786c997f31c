/*
 * watch: ticket events for the WatchTickets streams, the live inbox.
 *
 * A store write that changes a ticket records each event it causes with
 * hw_watch_record (inside its write fn): the event goes into the ticket's
 * history and a copy, with a snapshot of the ticket after it, into the
 * write's hw_event_list. After the commit, the write's done callback hands
 * the list to hw_watch_publish, which sends each event to every watcher
 * whose filter (queue, assignee) matches the snapshot. Tickets, surveys and
 * the alert notifier all record through here, so every history event is
 * also a live event.
 */
#ifndef HW_WATCH_H
#define HW_WATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "helpwire/v1/tickets.pb-c.h"
#include "server/base/arena.h"
#include "server/net/net.h"
#include "server/store/store.h"

/* Events caused by one write, with the ticket as it was after each. The
 * events live in the arena given to hw_watch_record. */
typedef struct hw_event_list {
    Helpwire__V1__TicketEvent **items;
    size_t n, cap;
    bool outbox[4]; /* channels (by Channel value) that got outbox messages */
    bool alert;     /* a supervisor alert was queued */
} hw_event_list;

/* Empties the list (at the start of every run of a write fn, which may run
 * more than once). */
void hw_event_list_reset(hw_event_list *l);

/* Appends an event about ticket t to its history (in w) and keeps a copy,
 * with a snapshot of t, in l (both allocated in a, which must outlive the
 * publication). actor and detail are borrowed; detail may be NULL.
 * @return HW_OK; HW_ENOMEM; store codes. */
int hw_watch_record(hw_store_txn *w, hw_event_list *l, hw_arena *a, const Helpwire__V1__Ticket *t,
                    Helpwire__V1__TicketEventKind kind, const char *actor, const char *detail);

/* hw_watch_record for the ticket with this id, read in w, for writers that
 * hold only the id (surveys, alerts). A ticket not in this store (a seeded
 * or restored reference) still gets its history event; the copy carries
 * only the id, so only unfiltered watchers see it. */
int hw_watch_record_id(hw_store_txn *w, hw_event_list *l, hw_arena *a, const char *ticket_id,
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

/* Sends every event of l to the watchers that match it. w may be NULL. */
void hw_watch_publish(hw_watch *w, const hw_event_list *l);

#endif
