/*
 * waits: net's waits for the replica's applied index, bounded by a call's
 * deadline. A wait registers with the cluster's when_applied hook and with
 * a small timer thread (one per server, started only on a replica); the
 * first of the two to fire claims the wait and runs its done callback,
 * the other one finds it claimed and only lets go of its reference. So
 * done runs exactly once, on the hook's thread (APPLIED, STOPPED), on the
 * timer thread (EXPIRED) or on the thread calling hw_waits_cancel_all
 * (CANCELLED).
 *
 * Internal to net (the forwarding and read-your-writes code of net.c);
 * knows nothing of calls.
 */
#ifndef HW_NET_WAITS_H
#define HW_NET_WAITS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct hw_waits hw_waits;

typedef enum {
    HW_WAIT_APPLIED,   /* applied_index reached the index */
    HW_WAIT_STOPPED,   /* when_applied said the replica stops first */
    HW_WAIT_EXPIRED,   /* the deadline came first */
    HW_WAIT_CANCELLED, /* hw_waits_cancel_all (server shutdown) */
} hw_wait_outcome;

/* The cluster's when_applied hook, as in hw_net_cluster. */
typedef void (*hw_when_applied_fn)(void *app, uint64_t index, void (*cb)(void *arg, bool ok), void *arg);

/* Creates the waits and starts their timer thread. Returns 0, or -1 (out
 * of memory, no thread). */
int hw_waits_create(hw_waits **out);

/* Waits until index is applied (when_applied(app, index, ...)) or until
 * deadline_ns (CLOCK_MONOTONIC; INT64_MAX = none), then calls
 * done(arg, outcome) once. done may run before this returns (when_applied
 * may answer at once). Thread-safe. Returns 0, or -1 when out of memory
 * (done is then not called). */
int hw_waits_add(hw_waits *ws, hw_when_applied_fn when_applied, void *app, uint64_t index,
                 int64_t deadline_ns, void (*done)(void *arg, hw_wait_outcome outcome), void *arg);

/* Ends every pending wait now with HW_WAIT_CANCELLED (on this thread).
 * Thread-safe. */
void hw_waits_cancel_all(hw_waits *ws);

/* Cancels what is pending, stops the timer thread and frees ws. A late
 * when_applied callback of a wait ended here touches only its own entry,
 * which it frees. NULL is fine. */
void hw_waits_destroy(hw_waits *ws);

#endif
