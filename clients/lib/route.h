/*
 * route: one inbound customer message to helpwired's Router.Route, the
 * step every bridge shares, with the outcome logged as one structured line
 * (event=routed, or event=route_failed with the status). The customer's
 * text is never logged, only its length.
 *
 * Route's reply_text is not sent by bridges: helpwired also queues it in
 * the outbox (AUTO_REPLY / ACKNOWLEDGEMENT), and the outbox stream is the
 * one path by which text reaches customers (see outbox.h).
 */
#ifndef BR_ROUTE_H
#define BR_ROUTE_H

#include "clients/lib/client.h"
#include "helpwire/v1/router.pb-c.h"
#include "server/base/log.h"

/* An inbound message as a bridge extracted it from its channel. */
typedef struct br_inbound {
    Helpwire__V1__Channel channel;
    const char *channel_user_id; /* required */
    const char *display_name;    /* may be NULL */
    const char *text;            /* required */
    const char *message_id;      /* the channel's id, required */
    const char *locale;          /* may be NULL */
} br_inbound;

/* Outcomes of br_route. */
typedef enum {
    BR_ROUTE_OK = 0,     /* routed (or a duplicate of a routed message) */
    BR_ROUTE_RETRY = 1,  /* helpwired could not take it now: try again later */
    BR_ROUTE_REFUSED = 2 /* refused for good (invalid, forbidden): do not retry */
} br_route_result;

/* Calls Router.Route for in and logs the outcome. When reply is not NULL
 * and the result is BR_ROUTE_OK, *reply receives the reply (free with
 * protobuf_c_message_free_unpacked(&(*reply)->base, NULL)). st (may be
 * NULL) receives the status. Thread-safe. */
br_route_result br_route(hw_client *rpc, const hw_log *log, const br_inbound *in, int timeout_ms,
                         Helpwire__V1__RouteReply **reply, hw_client_status *st);

#endif
