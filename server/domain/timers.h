/*
 * timers: durable one-shot timers for the domain: "raise UNASSIGNABLE if
 * this ticket still waits at 10:32", "warn when this SLA target is near".
 *
 * A timer is a store record (records.h, "durable timers"), written in the
 * same transaction as the change that sets it, so it exists exactly when
 * that change committed, survives restarts, and will be replicated like
 * any write. It is named by (kind, subject): setting the same pair again
 * replaces it (one pending timer per ticket and purpose), and it carries a
 * 32-bit arg for the handler.
 *
 * One thread (hw-timers) sleeps until the earliest due time; commits that
 * set an earlier one wake it through the write's effects
 * (hw_effects_timer_set -> the after-commit sink -> hw_timers_committed).
 * With a clock that is not the real one (tests: --clock-file or a manual
 * clock) time can jump, so it looks again every 10 ms instead. When timers
 * are due it reads up to 256 of them and submits one write request per
 * timer, all at once so the store commits them as one group: in its
 * request a timer is checked (still there, still due: a concurrent write
 * may have replaced or cancelled it), deleted, and its kind's handler runs
 * in the same transaction. A timer therefore fires once: its deletion and
 * its handler's writes commit together or not at all, also across crashes.
 * A handler that fails rolls back its own request only (the store runs a
 * group with a failing request again, one nested transaction per request):
 * that timer stays and is tried again after a pause (1 s; 100 ms with a
 * test clock), the others fire. Like any write fn, a handler may run more
 * than once for one firing (store.h) and must act only through w and fx.
 *
 * Times are the app's clock (app->clock), so tests drive timers with a
 * manual or file clock. Due times are milliseconds since the epoch; a timer
 * fires at the first look at or after its due time, not before.
 *
 * Not done here: what a timer means (the queues and SLA modules register
 * handlers), and periodic timers (a handler sets its next one).
 */
#ifndef HW_TIMERS_H
#define HW_TIMERS_H

#include <stdbool.h>
#include <stdint.h>

#include "server/domain/app.h"
#include "server/domain/effects.h"
#include "server/store/store.h"

typedef enum hw_timer_kind {
    HW_TIMER_UNASSIGNED = 1, /* subject ticket id: waited unassigned too long (queues) */
    HW_TIMER_REASSIGN = 2,   /* subject agent id: away/offline past the grace period (queues) */
    HW_TIMER_SLA = 3,        /* subject ticket id, arg = SlaTarget<<8 | 0 warn / 1 breach (sla) */
    HW_TIMER_KINDS
} hw_timer_kind;

/* Inside a write fn: schedules (kind, subject) at due_ms with arg,
 * replacing the one of the same kind and subject, and records the due time
 * on fx so the timer thread wakes after the commit. subject 1..256 bytes.
 * @return HW_OK; HW_EINVALID (kind out of range, bad subject); store codes. */
int hw_timers_set_in(hw_store_txn *w, hw_effects *fx, hw_timer_kind kind, const char *subject, uint32_t arg,
                     int64_t due_ms);

/* Inside a write fn: removes (kind, subject); HW_OK also when there is none.
 * @return HW_OK; HW_EINVALID; store codes. */
int hw_timers_cancel_in(hw_store_txn *w, hw_timer_kind kind, const char *subject);

/* Inside a write fn or a read: the pending timer of (kind, subject).
 * @return HW_OK; HW_ENOTFOUND; HW_EINVALID; store codes. */
int hw_timers_get_in(hw_store_txn *t, hw_timer_kind kind, const char *subject, uint32_t *arg,
                     int64_t *due_ms);

/* Runs inside the write transaction that fires the timer (already
 * deleted); may write, set timers (also its own again), and record
 * effects (events, outbox, webhook alerts) on fx, whose now is now_ms.
 * Return HW_OK, or an error to roll this firing back (the timer stays and
 * is retried later). Called on the store's writer thread: must not block. */
typedef int (*hw_timer_fire_fn)(void *arg, hw_store_txn *w, hw_effects *fx, hw_timer_kind kind,
                                const char *subject, uint32_t targ, int64_t due_ms, int64_t now_ms);

typedef struct hw_timers hw_timers;

/* Creates the timer thread's state (not started). app's store, clock,
 * after_commit sinks and log are used; app must outlive it.
 * @return HW_OK; HW_ENOMEM; store codes (its reader). */
int hw_timers_create(hw_timers **out, hw_app *app);

/* Sets the handler of kind (replacing one). Before hw_timers_start only.
 * A due timer of a kind without handler is deleted when it fires (logged).
 * @return HW_OK; HW_EINVALID (kind out of range, or already started). */
int hw_timers_register(hw_timers *t, hw_timer_kind kind, hw_timer_fire_fn fn, void *arg);

/* Starts hw-timers; timers already due (a restart) fire at once.
 * @return HW_OK; HW_ENOMEM (no thread). */
int hw_timers_start(hw_timers *t);

/* Stops the thread (a firing in progress completes first) and frees t.
 * Call before the store closes. NULL is fine. */
void hw_timers_destroy(hw_timers *t);

/* The after-commit sink: a committed write set a timer due at
 * earliest_due_ms; wakes the thread when that is before its next look.
 * Any thread; cheap. t NULL: nothing. */
void hw_timers_committed(hw_timers *t, int64_t earliest_due_ms);

/* Counters since create, for metrics and tests. Any thread. */
typedef struct hw_timers_stats {
    uint64_t fired;  /* timers whose firing committed */
    uint64_t failed; /* firings rolled back (handler or store error) */
    uint64_t rounds; /* looks at due timers */
} hw_timers_stats;
void hw_timers_stats_get(const hw_timers *t, hw_timers_stats *out);

/* Timers pending in the store, read in t (any transaction).
 * @return HW_OK; store codes. */
int hw_timers_pending(hw_store_txn *t, uint64_t *n);

#endif
