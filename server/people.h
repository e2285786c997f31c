/*
 * people: the Customers and Agents services. Customers are found by their
 * channel identities ((channel, channel_user_id) is unique) and may carry
 * several (LinkIdentity joins them, merging two customers when needed,
 * with their tickets). Agents serve skill queues up to their capacity; a
 * skill is data: its keywords (any language) and default priority.
 */
#ifndef HW_PEOPLE_H
#define HW_PEOPLE_H

#include <stdbool.h>

#include "helpwire/v1/agents.pb-c.h"
#include "helpwire/v1/customers.pb-c.h"
#include "server/net.h"
#include "server/store/store.h"

/* Inside a write fn: the customer owning (channel, channel_user_id), created
 * ("c-<n>", tier STANDARD) with that identity and display name on first
 * contact (*created set). locale, when non-empty, is remembered. *out is in
 * a. @return HW_OK or a store code. */
int hw_customers_resolve_in(hw_store_txn *w, Helpwire__V1__Channel channel, const char *channel_user_id,
                            const char *display_name, const char *locale, hw_arena *a,
                            Helpwire__V1__Customer **out, bool *created);

void hw_customers_get(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_customers_lookup(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_customers_update(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_customers_link(hw_call *call, const ProtobufCMessage *request, void *app);

void hw_agents_put(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_agents_get(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_agents_list(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_agents_set_presence(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_agents_put_skill(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_agents_list_skills(hw_call *call, const ProtobufCMessage *request, void *app);

#endif
