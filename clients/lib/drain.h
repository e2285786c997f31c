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
 * holds the ones behind it until it is routed or given up on. Except for
 * helpwired's per-sender limit (RESOURCE_EXHAUSTED, RATE_LIMITED with
 * RetryInfo): then only that sender is held, for the delay helpwired
 * named; the drainer routes the other senders' messages behind it (passing
 * over the held sender's later ones, which keep their order) and comes
 * back to the oldest when the hold ends. A held message is not a dead
 * letter for the limit (only, as any, once older than --max-retry-age-ms).
 *
 * On stop (br_drain_stop) the drainer goes on routing what is spooled for
 * up to a drain timeout (quick while helpwired answers), then leaves the
 * rest in the spool for the next start: no message is turned into a dead
 * letter because the bridge stopped.
 *
 * Media: a bridge whose channel sends files gives each such message a
 * description of them (br_inbound.media, JSON of its own), spooled with
 * it; the webhook or poll is answered as soon as that is durable, and the
 * drainer, before routing the entry, calls the bridge's prepare step,
 * which fetches the files from the platform, uploads them to helpwired and
 * says what to route (the attachments, and a text in place of the
 * entry's, e.g. a notice naming a file that could not be fetched). A
 * prepare step that answers BR_PREPARE_RETRY (the platform or helpwired
 * unreachable, a 5xx, a 429) is called again after the same backoff as
 * Route, until the message is --max-retry-age-ms old; then it is called a
 * last time with last_try set and must not ask again (route what it has,
 * with a notice), so a message is never lost or held for ever because its
 * file cannot be had. A crash between the fetch and the Route fetches
 * again on the next start (helpwired stores the same bytes once).
 *
 * Entries are JSON objects (the br_inbound fields, the media description
 * and the arrival time), readable with mdb_dump when an operator needs to
 * look.
 */
#ifndef BR_DRAIN_H
#define BR_DRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "clients/lib/route.h"
#include "clients/lib/spool.h"
#include "server/base/log.h"

typedef struct br_drain br_drain;

/* What a prepare step made of an entry's media. */
typedef struct br_prepared {
    Helpwire__V1__Attachment **attachments; /* the prepare step's; released by its done step */
    size_t n_attachments;                   /* at most BR_ROUTE_MAX_ATTACHMENTS */
    const char *text;                       /* NULL: route the entry's own text */
    void *owner;                            /* the prepare step's, for its done step */
} br_prepared;

/* Outcomes of a prepare step. */
enum { BR_PREPARE_OK = 0, BR_PREPARE_RETRY = 1 };

/* Fetches and uploads what in->media describes into *out (zeroed before
 * the call). Returns BR_PREPARE_OK, or BR_PREPARE_RETRY with the reason in
 * err (logged) when it may work later; never BR_PREPARE_RETRY when
 * last_try. Called on the drainer thread only. */
typedef int (*br_drain_prepare_fn)(void *arg, const br_inbound *in, bool last_try, br_prepared *out, char *err,
                                   size_t errlen);

/* Releases what a prepare step put in *p (after the entry was routed). */
typedef void (*br_drain_prepare_done_fn)(void *arg, br_prepared *p);

typedef struct br_drain_options {
    br_spool *spool;              /* borrowed; outlives the drainer */
    const br_route_policy *route; /* borrowed; its dead-letter file is required */
    const hw_log *log;
    /* May be NULL (entries with media are then routed with their text
     * alone); both set or neither. */
    br_drain_prepare_fn prepare;
    br_drain_prepare_done_fn prepare_done;
    void *prepare_arg;
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
