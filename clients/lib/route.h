/*
 * route: one inbound customer message to helpwired's Router.Route, the
 * step every bridge shares, with the outcome logged as one structured line
 * (event=routed, or event=route_failed with the status). The customer's
 * text is never logged, only its length.
 *
 * Route's reply_text is not sent by bridges: helpwired also queues it in
 * the outbox (AUTO_REPLY / ACKNOWLEDGEMENT), and the outbox stream is the
 * one path by which text reaches customers (see outbox.h).
 *
 * The retry policy every inbound loop follows (br_route_deliver): only the
 * statuses that can succeed later are retried (br_route_retryable:
 * UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, ABORTED, CANCELLED), with the
 * exponential backoff of --backoff-initial-ms/--backoff-max-ms, and only
 * while the message is younger than --max-retry-age-ms. Anything else
 * (INVALID_ARGUMENT, PERMISSION_DENIED, INTERNAL, ...), or a message too
 * old, goes to the dead-letter file (deadletter.h) with one warning line
 * event=dead_letter, and the channel moves on to its next message: one
 * message helpwired cannot take never stalls the customers behind it.
 */
#ifndef BR_ROUTE_H
#define BR_ROUTE_H

#include <stdbool.h>
#include <stdint.h>

#include "clients/lib/client.h"
#include "clients/lib/deadletter.h"
#include "helpwire/v1/router.pb-c.h"
#include "server/base/log.h"
#include "server/base/metrics.h"

/* Route's limits on what a channel may give longer (helpwired's router.c). */
#define BR_ROUTE_MAX_NAME 256
#define BR_ROUTE_MAX_LOCALE 15

/* An inbound message as a bridge extracted it from its channel. */
typedef struct br_inbound {
    Helpwire__V1__Channel channel;
    const char *channel_user_id; /* required */
    const char *display_name;    /* may be NULL; cut to BR_ROUTE_MAX_NAME bytes */
    const char *text;            /* required; "" for a file or place without a caption */
    const char *message_id;      /* the channel's id, required */
    const char *locale;          /* may be NULL; left out when over BR_ROUTE_MAX_LOCALE */
    /* May be NULL: the bridge's own description (JSON text) of the files to
     * fetch from its platform before the message is routed; spooled with
     * the message and handed to the drainer's prepare step (drain.h). */
    const char *media;
    /* Files and places routed with the message (RouteRequest.attachments,
     * at most BR_ROUTE_MAX_ATTACHMENTS), borrowed; n_attachments 0: none. */
    Helpwire__V1__Attachment *const *attachments;
    size_t n_attachments;
    const char *contact_email;   /* may be NULL: RouteRequest.contact_email (the web chat's form) */
} br_inbound;

/* RouteRequest.attachments' limit. */
#define BR_ROUTE_MAX_ATTACHMENTS 10

/* Outcomes of br_route. */
typedef enum {
    BR_ROUTE_OK = 0,      /* routed (or a duplicate of a routed message) */
    BR_ROUTE_RETRY = 1,   /* helpwired could not take it now: try again later */
    BR_ROUTE_REFUSED = 2, /* refused for good (invalid, forbidden): do not retry */
    BR_ROUTE_DEAD = 3,    /* given up on and recorded as a dead letter (br_route_deliver) */
    /* br_route_deliver with hold_rate_limited: helpwired's per-sender limit
     * refused it (RESOURCE_EXHAUSTED, RATE_LIMITED); trace->last says how
     * long to hold this sender's messages (retry_delay_ms). Not a dead
     * letter: route it again after the delay. */
    BR_ROUTE_LIMITED = 4
} br_route_result;

/* Whether a failed Route may succeed if sent again later: UNAVAILABLE,
 * RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, ABORTED, and CANCELLED (a call
 * that reached helpwired as it was shutting down). Every other status,
 * INTERNAL and UNKNOWN included, is the same however often the message is
 * sent (a server fault that a retry storm would not mend). */
bool br_route_retryable(int code);

/* Whether st is a refusal by helpwired's per-sender limits: RESOURCE_EXHAUSTED
 * with ErrorInfo RATE_LIMITED and a RetryInfo delay (st->retry_delay_ms). */
bool br_route_rate_limited(const hw_client_status *st);

/* Calls Router.Route for in and logs the outcome. When reply is not NULL
 * and the result is BR_ROUTE_OK, *reply receives the reply (free with
 * protobuf_c_message_free_unpacked(&(*reply)->base, NULL)). st (may be
 * NULL) receives the status. Thread-safe. */
br_route_result br_route(hw_client *rpc, const hw_log *log, const br_inbound *in, int timeout_ms,
                         Helpwire__V1__RouteReply **reply, hw_client_status *st);

/* What br_route_deliver needs: the call, the policy, where dead letters go. */
typedef struct br_route_policy {
    hw_client *rpc;
    const hw_log *log;
    int rpc_timeout_ms;
    int backoff_initial_ms, backoff_max_ms;
    int max_retry_age_ms;     /* a retryable failure past this age is a dead letter */
    br_deadletter *dead;      /* required */
    hw_metrics *metrics;      /* may be NULL: each Route call is counted there, as method row 0 */
    const char *channel_name; /* "telegram": the dead letter's channel */
    /* A refusal by helpwired's per-sender limit (RATE_LIMITED with
     * RetryInfo) returns BR_ROUTE_LIMITED at once, for a caller that holds
     * that sender back and goes on with others (the drainer); false: the
     * wait before the next attempt is the RetryInfo delay. */
    bool hold_rate_limited;
} br_route_policy;

/* Waits ms before the next attempt. Returns true when the caller is
 * stopping and the message must be left as it is (not routed, not a dead
 * letter: the channel will deliver it again), false to go on. */
typedef bool (*br_route_wait_fn)(void *arg, int ms);

/* What br_route_deliver did, for a caller that records the message itself
 * after a BR_ROUTE_RETRY (e.g. as a BR_DEAD_SHUTDOWN dead letter). */
typedef struct br_route_trace {
    int attempts;
    int64_t received_ms, first_ms, last_ms; /* wall clock */
    hw_client_status last;                  /* the last attempt's status */
} br_route_trace;

/* Routes in by br_route, retrying per the policy (see the top comment),
 * calling wait(arg, delay) between attempts. With wait NULL, makes one
 * attempt and returns BR_ROUTE_RETRY where it would have waited, for a
 * channel that delivers again by itself (a webhook answered 503). received_ms is the wall-clock
 * time the message arrived (the channel's own date when it has one): the
 * age is counted from it; the first attempt is always made. Each attempt
 * waits for a connection to helpwired (wait-for-ready) until its deadline:
 * p->rpc_timeout_ms, shortened to the time left before the age limit (at
 * least 1 s). A retryable failure is a dead letter (too old) when the
 * attempt began past the age limit, or, with wait, when it ended past it;
 * a single attempt (wait NULL) that began in time returns BR_ROUTE_RETRY,
 * so the channel delivers it again and the next delivery decides. Returns
 * BR_ROUTE_OK (routed or a duplicate), BR_ROUTE_DEAD (recorded in
 * p->dead, logged, counted: move on), or BR_ROUTE_RETRY when wait asked
 * to stop, or when the dead letter could not be written (logged
 * event=dead_letter_failed; the message must not be confirmed, try it
 * again later). trace (may be NULL) receives what was done. Thread-safe
 * as far as p->dead is. */
br_route_result br_route_deliver(const br_route_policy *p, const br_inbound *in, int64_t received_ms,
                                 br_route_wait_fn wait, void *arg, br_route_trace *trace);

/* Records in as a dead letter for reason (e.g. BR_DEAD_SHUTDOWN) with the
 * last status st after attempts, logging the event=dead_letter line.
 * Returns 0, or -1 (logged) when the record could not be written. */
int br_route_dead_letter(const br_route_policy *p, const br_inbound *in, int reason,
                         const hw_client_status *st, int attempts, int64_t received_ms, int64_t first_ms,
                         int64_t last_ms);

/* Wall-clock ms since the epoch. */
int64_t br_route_now_ms(void);

#endif
