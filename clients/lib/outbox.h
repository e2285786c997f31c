/*
 * outbox: a bridge's subscription to helpwired's Outbox for its channel.
 * A thread holds one Outbox.Subscribe server stream open (sending the
 * bridge's instance name, "<host>:<pid>", and max_in_flight_per_recipient)
 * and puts every OutboundMessage in its recipient's FIFO
 * (channel_user_id); a pool of delivery workers takes recipients whose
 * head is ready, so one recipient's messages go out in sequence order
 * while a slow, blocked or throttled recipient holds up nobody else: a
 * message not yet attempted goes before any retry, and retries occupy at
 * most a quarter of the workers (at least one), so the attempts a stalled
 * upstream holds for long never take every worker. A
 * message that comes again while it is queued or being delivered
 * (helpwired's redelivery) is ignored.
 *
 * The bridge's deliver function makes one attempt and says what happened
 * (br_delivery). Delivered: the message is recorded in the durable sent
 * record (sent.h) and only then acknowledged with Outbox.Ack; a message
 * that comes again whose sequence is recorded is acknowledged without
 * being sent. Refused for good: acknowledged as FAILED with the
 * upstream's reason at once (warning event=delivery_failed). Transient:
 * retried here, with exponential backoff and jitter (or after the
 * upstream's retry_after when longer), for that recipient only or, with
 * scope channel, for the whole channel (a throughput limit); a message
 * still failing max_delivery_age_ms after its created_unix_ms is
 * acknowledged as FAILED with "gave up after N attempts in S s: <last
 * reason>". When the stream ends, queued messages not being delivered are
 * dropped (helpwired streams them again); those being delivered finish,
 * are recorded, and are acknowledged.
 *
 * Lease: the first message of every stream is a control message (seq 0)
 * saying whether this subscriber holds the channel's lease (ACTIVE) or
 * waits (STANDBY); a stream that ends loses it. The state is logged
 * (event=outbox_lease state=active|standby), readable with
 * br_outbox_lease_active, and reported to an optional callback, so that
 * the Telegram bridge polls getUpdates only while ACTIVE. A stream whose
 * first message is not a control message (a helpwired without leases)
 * counts as ACTIVE.
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
 * (a revoked token, UNIMPLEMENTED) back off up to backoff_max_ms.
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

#include "clients/lib/sent.h"

typedef struct br_outbox br_outbox;

/* What a deliver function returns. */
enum {
    BR_OUTBOX_DELIVERED = 0, /* the channel accepted it: recorded, acknowledged */
    BR_OUTBOX_RETRY = -1,    /* a transient failure: retried here later */
    BR_OUTBOX_FAILED = 1,    /* refused for good: acknowledged as FAILED with the reason */
};

/* Who a transient failure holds back. */
typedef enum {
    BR_SCOPE_RECIPIENT = 0, /* that recipient (a per-chat 429, a pair rate limit) */
    BR_SCOPE_CHANNEL,       /* the whole channel (WhatsApp's throughput limit) */
} br_delivery_scope;

/* One attempt's outcome beyond the return value, filled by the deliver
 * function (zeroed before the call). */
typedef struct br_delivery {
    char reason[512];        /* the upstream's words, e.g. "telegram 403: Forbidden: bot was blocked
                              * by the user"; for FAILED required, for RETRY the last reason given up with */
    int retry_after_ms;      /* RETRY: the upstream's wait (0: the library's backoff alone) */
    br_delivery_scope scope; /* RETRY: who waits */
    char upstream_id[128];   /* DELIVERED: Telegram message_id, WhatsApp wamid; may stay empty */
} br_delivery;

/* Sends m on the channel once and returns one of the BR_OUTBOX_* values,
 * with the details in *d. Called on the delivery workers, several at once
 * for different recipients; never twice at once for one recipient. */
typedef int (*br_outbox_deliver_fn)(void *arg, const Helpwire__V1__OutboundMessage *m, br_delivery *d);

/* Told of every change of the lease: active true once a control message
 * says ACTIVE, false on STANDBY and when the stream ends. Called on the
 * stream thread; must not block. */
typedef void (*br_outbox_lease_fn)(void *arg, bool active);

/* Told of a courtesy signal (seq 0, kind TYPING or READ): m is borrowed
 * for the call. Called on the stream thread; must not block (hand slow
 * work to a thread of the bridge's). Signals are never retried or
 * acknowledged. */
typedef void (*br_outbox_signal_fn)(void *arg, const Helpwire__V1__OutboundMessage *m);

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
    br_stop *stop;                   /* checked between messages; may be NULL */
    int workers;                     /* delivery workers, 1..64 (0: 4); retries take at most a
                                      * quarter (at least 1), first attempts go first */
    int max_delivery_age_ms;         /* from created_unix_ms (0: 86400000) */
    int max_in_flight_per_recipient; /* passed to Subscribe (0: 8) */
    const char *instance;            /* passed to Subscribe; NULL: "<host>:<pid>" */
    br_sent *sent;                   /* the durable sent record; outlives the subscription; NULL:
                                      * an in-memory set of recent sequences */
    br_outbox_lease_fn on_lease;     /* may be NULL */
    void *lease_arg;
    br_outbox_signal_fn on_signal;   /* may be NULL: signals are logged at debug and dropped */
    void *signal_arg;
} br_outbox_options;

/* Starts the subscription thread and the delivery workers. Returns 0, or
 * -1 (out of memory, thread creation failed). */
int br_outbox_start(br_outbox **out, const br_outbox_options *o);

/* Cancels the stream, waits for the threads (a delivery in progress
 * finishes and is recorded and acknowledged first), and frees ob. NULL is
 * ignored. */
void br_outbox_stop(br_outbox *ob);

/* Whether this subscriber holds the lease now. Thread-safe. */
bool br_outbox_lease_active(br_outbox *ob);

/* Acknowledges as FAILED a message the channel reported failed after it
 * was acknowledged as delivered (FailedDelivery.message set to m, the
 * message as recorded). Returns 0, or -1 when the Ack failed (logged). */
int br_outbox_late_failure(br_outbox *ob, const Helpwire__V1__OutboundMessage *m, const char *reason);

/* Counters for logs and tests; thread-safe. */
typedef struct br_outbox_stats {
    unsigned long connects;  /* streams started */
    unsigned long delivered; /* messages the channel accepted */
    unsigned long acked;     /* sequences acknowledged */
    unsigned long failed;    /* attempts that failed transiently (retried) */
    unsigned long refused;   /* acknowledged as FAILED (refused for good, or given up on) */
    unsigned long queued;    /* messages queued or being delivered now */
    bool lease_active;
} br_outbox_stats;

void br_outbox_get_stats(br_outbox *ob, br_outbox_stats *st);

#endif
