/*
 * drain: a bridge's intake path. The channel's handler spools the inbound
 * messages it extracted (br_drain_spool: durable before it returns, so the
 * handler may then answer the channel 2xx), and one drainer thread routes
 * the spool's entries oldest first with the shared retry policy
 * (route.h: only UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED and
 * ABORTED are retried, with backoff, up to --max-retry-age-ms counted from
 * the message's arrival; anything else, or a message too old, is a dead
 * letter). An entry is removed only after it was routed or recorded as a
 * dead letter, so a crash (kill -9 included) at any point loses nothing:
 * the next start routes what is left, in order; the one entry that may be
 * routed twice is answered as a duplicate by helpwired.
 *
 * One message at a time, in order: a customer's messages reach helpwired
 * in the order the channel gave them, and a message helpwired cannot take
 * holds the ones behind it until it is routed or given up on.
 *
 * On stop (br_drain_stop) the drainer goes on routing what is spooled for
 * up to a drain timeout (quick while helpwired answers), then leaves the
 * rest in the spool for the next start: no message is turned into a dead
 * letter because the bridge stopped.
 *
 * Entries are JSON objects (the br_inbound fields and the arrival time),
 * readable with mdb_dump when an operator needs to look.
 */
#ifndef BR_DRAIN_H
#define BR_DRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "clients/lib/route.h"
#include "clients/lib/spool.h"
#include "server/base/log.h"

typedef struct br_drain br_drain;

typedef struct br_drain_options {
    br_spool *spool;              /* borrowed; outlives the drainer */
    const br_route_policy *route; /* borrowed; its dead-letter file is required */
    const hw_log *log;
} br_drain_options;

/**
 * Starts the drainer thread, which at once routes what an earlier run
 * left in the spool.
 * @return 0 and *out, or -1 (out of memory, no thread)
 */
int br_drain_start(br_drain **out, const br_drain_options *o);

/**
 * Spools n messages in one synced transaction (all or none) and wakes the
 * drainer. received_ms[i] is message i's arrival on the wall clock (the
 * channel's own date when it has one; 0 for now); received_ms may be NULL
 * (all now). Thread-safe.
 * @return 0 once durable; BR_SPOOL_FULL (answer the channel "later"), or
 *         BR_SPOOL_ERR, with err
 */
int br_drain_spool(br_drain *d, const br_inbound *in, const int64_t *received_ms, size_t n, char *err,
                   size_t errlen);

/* Whether the spool is empty (nothing waits to be routed). A channel that
 * may route directly must not overtake what is spooled. Thread-safe. */
bool br_drain_idle(br_drain *d);

/* Wakes the drainer (after an append by other means). Thread-safe. */
void br_drain_wake(br_drain *d);

/**
 * Stops: the drainer routes on for up to drain_timeout_ms (waiting no
 * longer between attempts), then ends with what is left still spooled.
 * Joins the thread and frees d. NULL is a no-op. Call once, after the
 * handlers that spool have ended.
 */
void br_drain_stop(br_drain *d, int drain_timeout_ms);

/* The spool entry for in (malloc'd JSON text, *len bytes), or NULL when
 * out of memory. For tests and tools. */
char *br_drain_encode(const br_inbound *in, int64_t received_ms, size_t *len);

#endif
