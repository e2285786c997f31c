/*
 * outbox: a bridge's subscription to helpwired's Outbox for its channel.
 * A thread holds one Outbox.Subscribe server stream open; for every
 * OutboundMessage it calls the bridge's deliver function (which sends it on
 * the channel) and, only when delivery succeeded, acknowledges the sequence
 * with Outbox.Ack. A message not delivered is not acknowledged, so
 * helpwired sends it again after redeliver_after_ms; one the channel
 * refused for good (the deliver function says which) is acknowledged as
 * FAILED with the upstream's reason, and a warning event=delivery_failed
 * is logged.
 *
 * The Subscribe call waits for a connection (wait-for-ready, with no
 * deadline: a stream has none), so while helpwired is away the stream is
 * simply pending, and it starts as soon as the client's channel is
 * connected again (within its reconnect schedule, channel.h); the thread
 * logs outbox_waiting every rpc_timeout_ms meanwhile. When the stream ends
 * or is refused (helpwired restarting, draining, or not yet offering
 * Outbox), the thread subscribes again after an exponential backoff with
 * jitter, reset once a stream has stayed up or delivered; after
 * UNAVAILABLE (a restart, a drain) the wait is at most reconnect_max_ms,
 * so the stream resumes promptly once helpwired is back; other refusals
 * (a revoked token, UNIMPLEMENTED) back off up to backoff_max_ms. A
 * message delivered whose Ack was lost comes back; the sequences delivered
 * recently are remembered (br_dedupe) so it is acknowledged again without
 * being sent twice.
 *
 * Customer-facing text reaches the channel only through here: Route's
 * reply_text is also queued in the outbox (AUTO_REPLY / ACKNOWLEDGEMENT),
 * so bridges never send reply_text themselves.
 */
#ifndef BR_OUTBOX_H
#define BR_OUTBOX_H

#include "clients/lib/client.h"
#include "clients/lib/stop.h"
#include "helpwire/v1/outbox.pb-c.h"
#include "server/base/log.h"

typedef struct br_outbox br_outbox;

/* What a deliver function returns. */
enum {
    BR_OUTBOX_DELIVERED = 0, /* the channel accepted it: acknowledged */
    BR_OUTBOX_RETRY = -1,    /* a transient failure: redelivered later */
    BR_OUTBOX_FAILED = 1,    /* refused for good: acknowledged as FAILED with the reason */
};

/* Sends m on the channel and returns one of the BR_OUTBOX_* values above.
 * With BR_OUTBOX_FAILED it writes the upstream's reason into
 * reason[0..reason_size) (NUL-terminated, e.g. "telegram 403: Forbidden:
 * bot was blocked by the user"). Called on the outbox thread only, one
 * message at a time, in stream order. */
typedef int (*br_outbox_deliver_fn)(void *arg, const Helpwire__V1__OutboundMessage *m, char *reason,
                                    size_t reason_size);

typedef struct br_outbox_options {
    hw_client *rpc; /* outlives the subscription */
    Helpwire__V1__Channel channel;
    int redeliver_after_ms; /* passed to Subscribe */
    int rpc_timeout_ms;     /* Ack deadline; also how often a stream waiting for helpwired logs */
    int backoff_initial_ms, backoff_max_ms;
    int reconnect_max_ms; /* the longest wait after UNAVAILABLE; 0: backoff_max_ms */
    br_outbox_deliver_fn deliver;
    void *deliver_arg;
    const hw_log *log;
    br_stop *stop; /* checked between messages; may be NULL */
} br_outbox_options;

/* Starts the subscription thread. Returns 0, or -1 (out of memory, thread
 * creation failed). */
int br_outbox_start(br_outbox **out, const br_outbox_options *o);

/* Cancels the stream, waits for the thread (a delivery in progress
 * finishes or aborts first), and frees ob. NULL is ignored. */
void br_outbox_stop(br_outbox *ob);

/* Counters for logs and tests; thread-safe. */
typedef struct br_outbox_stats {
    unsigned long connects;  /* streams started */
    unsigned long delivered; /* messages the channel accepted */
    unsigned long acked;     /* sequences acknowledged */
    unsigned long failed;    /* deliveries that failed (to be retried) */
    unsigned long refused;   /* refused for good, acknowledged as FAILED */
} br_outbox_stats;

void br_outbox_get_stats(br_outbox *ob, br_outbox_stats *st);

#endif
