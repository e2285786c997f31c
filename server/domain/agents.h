/*
 * agents: the Agents service. Agents serve skill queues up to their
 * capacity; a skill is data: its keywords (any language) and default
 * priority.
 */
#ifndef HW_AGENTS_H
#define HW_AGENTS_H

#include "helpwire/v1/agents.pb-c.h"
#include "server/domain/app.h"
#include "server/net/net.h"

/* Handlers for the method table; app is a hw_app. */
void hw_agents_put(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_agents_get(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_agents_list(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_agents_set_presence(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_agents_put_skill(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_agents_list_skills(hw_call *call, const ProtobufCMessage *request, void *app);

/* Registers the queues' timer handlers (HW_TIMER_REASSIGN: an away or
 * offline agent's tickets move; HW_TIMER_UNASSIGNED: UNASSIGNABLE after
 * waiting) with t, before it starts. @return HW_OK or timers' codes. */
int hw_agents_timers_register(hw_timers *t, hw_app *app);

#endif
