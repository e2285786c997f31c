/*
 * agents: the Agents service. Agents serve skill queues up to their
 * capacity; a skill is data: its keywords (any language) and default
 * priority.
 */
#ifndef HW_AGENTS_H
#define HW_AGENTS_H

#include "helpwire/v1/agents.pb-c.h"
#include "server/net/net.h"

/* Handlers for the method table; app is a hw_app. */
void hw_agents_put(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_agents_get(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_agents_list(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_agents_set_presence(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_agents_put_skill(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_agents_list_skills(hw_call *call, const ProtobufCMessage *request, void *app);

#endif
