/*
 * agents: the Agents service (see agents.h): agents, their presence and
 * the skill queues. Reads run on the worker's reader; writes follow the
 * rpc.h pattern; an agent who comes online or gains capacity takes the
 * tickets waiting in their queues in the same write.
 */
#include "server/domain/agents.h"

#include <stdio.h>
#include <string.h>

#include "server/domain/rpc.h"
#include "server/domain/tickets.h"
#include "server/store/records.h"

#define MAX_NAME 256
#define MAX_EMAIL 254
#define MAX_SKILLS 64
#define MAX_KEYWORDS 200
#define MAX_KEYWORD 256

typedef struct {
    hw_wctx h;
    Helpwire__V1__Agent agent;
    Helpwire__V1__Skill skill;
    Helpwire__V1__SetPresenceRequest presence;
    char **assigned;
    size_t n_assigned;
    Helpwire__V1__Agent *out;
} agent_ctx;

static int put_agent_fn(hw_store_txn *w, void *arg)
{
    agent_ctx *c = arg;
    hw_arena *a = hw_call_arena(c->h.call);
    for (size_t i = 0; i < c->agent.n_skills; i++) {
        Helpwire__V1__Skill *sk;
        int rc = hw_store_skill_get(w, c->agent.skills[i], a, &sk);
        if (rc == HW_ENOTFOUND)
            return hw_rpc_wfail(&c->h, rc, "agent.skills[%zu]: no skill named %s (PutSkill first)", i,
                                c->agent.skills[i]);
        if (rc != HW_OK)
            return rc;
    }
    Helpwire__V1__Agent *old;
    int rc = hw_store_agent_get(w, c->agent.id, a, &old);
    if (rc != HW_OK && rc != HW_ENOTFOUND)
        return rc;
    Helpwire__V1__Agent *ag = hw_arena_alloc(a, sizeof *ag);
    if (!ag)
        return HW_ENOMEM;
    *ag = c->agent;
    ag->presence = rc == HW_OK ? old->presence : HELPWIRE__V1__PRESENCE__PRESENCE_OFFLINE;
    ag->open_tickets = rc == HW_OK ? old->open_tickets : 0;
    ag->version = rc == HW_OK ? old->version + 1 : 1;
    ag->updated_unix_ms = hw_effects_now_ms(&c->h.fx);
    rc = hw_store_agent_put(w, ag, HW_PUT_UPSERT, 0);
    /* More skills or capacity may let it take waiting tickets. */
    if (rc == HW_OK)
        rc = hw_tickets_assign_waiting_in(w, ag->id, a, &c->h.fx, NULL, NULL);
    if (rc == HW_OK)
        rc = hw_store_agent_get(w, ag->id, a, &c->out);
    return rc;
}

static void agent_done(void *arg, int status)
{
    agent_ctx *c = arg;
    if (hw_rpc_write_failed(&c->h, status))
        return;
    hw_call_reply(c->h.call, &c->out->base);
}

void hw_agents_put(hw_call *call, const ProtobufCMessage *request, void *app)
{
    const Helpwire__V1__PutAgentRequest *req = (const void *)request;
    const Helpwire__V1__Agent *in = req->agent;
    if (!in) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "agent: required");
        return;
    }
    if (!hw_rpc_check_id(call, "agent.id", in->id, 64, false) ||
        !hw_rpc_check_text(call, "agent.name", in->name, 1, MAX_NAME) ||
        !hw_rpc_check_text(call, "agent.email", in->email, 0, MAX_EMAIL) ||
        !hw_rpc_check_list(call, "agent.skills", in->skills, in->n_skills, MAX_SKILLS, 64))
        return;
    if (in->capacity > 1000) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "agent.capacity: 1 to 1000 (0 means 5)");
        return;
    }
    agent_ctx *c = hw_rpc_ctx_new(call, app, sizeof *c);
    if (!c)
        return;
    c->agent = *in;
    if (!c->agent.capacity)
        c->agent.capacity = 5;
    hw_rpc_write(&c->h, put_agent_fn, agent_done);
}

void hw_agents_get(hw_call *call, const ProtobufCMessage *request, void *app)
{
    const Helpwire__V1__GetAgentRequest *req = (const void *)request;
    if (!hw_rpc_check_id(call, "agent_id", req->agent_id, 64, false))
        return;
    hw_store_txn *t = hw_rpc_read(call, app);
    if (!t)
        return;
    Helpwire__V1__Agent *ag;
    int rc = hw_store_agent_get(t, req->agent_id, hw_call_arena(call), &ag);
    hw_rpc_read_end(call, app);
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, rc == HW_ENOTFOUND ? "no agent with id %s" : NULL, req->agent_id);
        return;
    }
    hw_call_reply(call, &ag->base);
}

void hw_agents_list(hw_call *call, const ProtobufCMessage *request, void *app)
{
    const Helpwire__V1__ListAgentsRequest *req = (const void *)request;
    hw_store_cursor cur;
    if (!hw_rpc_check_id(call, "skill", req->skill, 64, true) ||
        !hw_rpc_check_enum(call, "presence", &helpwire__v1__presence__descriptor, req->presence, true) ||
        !hw_rpc_page_token(call, "page_token", req->page_token, &cur))
        return;
    hw_store_txn *t = hw_rpc_read(call, app);
    if (!t)
        return;
    Helpwire__V1__ListAgentsReply r = HELPWIRE__V1__LIST_AGENTS_REPLY__INIT;
    int rc =
        hw_store_agent_list(t, req->skill, req->presence, &cur, hw_rpc_page_size(req->page_size, 50, 1000),
                            hw_call_arena(call), &r.agents, &r.n_agents);
    hw_rpc_read_end(call, app);
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, rc == HW_EINVALID ? "page_token: not a token from this listing" : NULL);
        return;
    }
    r.next_page_token = hw_rpc_next_token(call, &cur);
    hw_call_reply(call, &r.base);
}

static int presence_fn(hw_store_txn *w, void *arg)
{
    agent_ctx *c = arg;
    hw_arena *a = hw_call_arena(c->h.call);
    c->n_assigned = 0;
    Helpwire__V1__Agent *ag;
    int rc = hw_store_agent_get(w, c->presence.agent_id, a, &ag);
    if (rc == HW_ENOTFOUND)
        return hw_rpc_wfail(&c->h, rc, "no agent with id %s", c->presence.agent_id);
    if (rc != HW_OK)
        return rc;
    ag->presence = c->presence.presence;
    ag->version++;
    ag->updated_unix_ms = hw_effects_now_ms(&c->h.fx);
    rc = hw_store_agent_put(w, ag, HW_PUT_REPLACE, 0);
    if (rc == HW_OK)
        rc = hw_tickets_assign_waiting_in(w, ag->id, a, &c->h.fx, &c->assigned, &c->n_assigned);
    if (rc == HW_OK)
        rc = hw_store_agent_get(w, ag->id, a, &c->out);
    return rc;
}

static void presence_done(void *arg, int status)
{
    agent_ctx *c = arg;
    if (hw_rpc_write_failed(&c->h, status))
        return;
    Helpwire__V1__SetPresenceReply r = HELPWIRE__V1__SET_PRESENCE_REPLY__INIT;
    r.agent = c->out;
    r.assigned_ticket_ids = c->assigned;
    r.n_assigned_ticket_ids = c->n_assigned;
    hw_call_reply(c->h.call, &r.base);
}

void hw_agents_set_presence(hw_call *call, const ProtobufCMessage *request, void *app)
{
    const Helpwire__V1__SetPresenceRequest *req = (const void *)request;
    if (!hw_rpc_check_id(call, "agent_id", req->agent_id, 64, false) ||
        !hw_rpc_check_enum(call, "presence", &helpwire__v1__presence__descriptor, req->presence, false))
        return;
    const char *me = hw_rpc_agent(call);
    if (me && strcmp(me, req->agent_id) != 0) {
        hw_call_fail(call, GRPC_STATUS_PERMISSION_DENIED, "an agent token may only set its own presence (%s)",
                     me);
        return;
    }
    agent_ctx *c = hw_rpc_ctx_new(call, app, sizeof *c);
    if (!c)
        return;
    c->presence = *req;
    hw_rpc_write(&c->h, presence_fn, presence_done);
}

static bool skill_name_ok(hw_call *call, const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "skill.name: 1 to 64 characters of [a-z0-9_-]");
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-')) {
            hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "skill.name: only [a-z0-9_-] allowed (byte %zu)",
                         i);
            return false;
        }
    return true;
}

static int put_skill_fn(hw_store_txn *w, void *arg)
{
    agent_ctx *c = arg;
    int rc = hw_store_skill_put(w, &c->skill, HW_PUT_UPSERT);
    if (rc == HW_OK)
        hw_effects_skills_changed(&c->h.fx); /* workers reload their skill model */
    return rc;
}

static void skill_done(void *arg, int status)
{
    agent_ctx *c = arg;
    if (hw_rpc_write_failed(&c->h, status))
        return;
    hw_call_reply(c->h.call, &c->skill.base);
}

void hw_agents_put_skill(hw_call *call, const ProtobufCMessage *request, void *app)
{
    const Helpwire__V1__PutSkillRequest *req = (const void *)request;
    const Helpwire__V1__Skill *in = req->skill;
    if (!in) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "skill: required");
        return;
    }
    if (!skill_name_ok(call, in->name) ||
        !hw_rpc_check_text(call, "skill.description", in->description, 0, 1024) ||
        !hw_rpc_check_list(call, "skill.keywords", in->keywords, in->n_keywords, MAX_KEYWORDS, MAX_KEYWORD) ||
        !hw_rpc_check_enum(call, "skill.default_priority", &helpwire__v1__priority__descriptor,
                           in->default_priority, true))
        return;
    agent_ctx *c = hw_rpc_ctx_new(call, app, sizeof *c);
    if (!c)
        return;
    c->skill = *in;
    hw_rpc_write(&c->h, put_skill_fn, skill_done);
}

void hw_agents_list_skills(hw_call *call, const ProtobufCMessage *request, void *app)
{
    (void)request;
    hw_store_txn *t = hw_rpc_read(call, app);
    if (!t)
        return;
    hw_store_cursor cur = {0};
    Helpwire__V1__ListSkillsReply r = HELPWIRE__V1__LIST_SKILLS_REPLY__INIT;
    int rc = hw_store_skill_list(t, &cur, HW_STORE_LIST_MAX, hw_call_arena(call), &r.skills, &r.n_skills);
    hw_rpc_read_end(call, app);
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, NULL);
        return;
    }
    hw_call_reply(call, &r.base);
}
