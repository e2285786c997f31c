/*
 * router: Router.Route, the front door of every customer message. In
 * order: a repeated (channel, message_id) gets its first reply back
 * (duplicate set) and changes nothing; the customer is found or created by
 * channel identity; an open ticket of theirs takes the message; else a
 * greeting, thanks or start command ("/start") gets a friendly reply
 * (SMALL_TALK), a request for a person ("转人工", "human") opens a ticket
 * straight away, a bare rating ("5", "⭐⭐⭐⭐") answers the customer's
 * pending survey (SURVEY_ANSWERED); else a confident FAQ/knowledge answer
 * is an auto-reply; else a ticket opens in the skill queue whose keywords
 * fit best, with a priority and an agent.
 * Whatever the customer should read goes to the outbox in the same
 * transaction, and the reply is remembered for dedupe there too.
 */
#ifndef HW_ROUTER_H
#define HW_ROUTER_H

#include "server/net/net.h"

void hw_router_route(hw_call *call, const ProtobufCMessage *request, void *app);

#endif
