/*
 * agents: the Agents service (see agents.h): agents, their presence and
 * the skill queues. Reads run on the worker's reader; writes follow the
 * rpc.h pattern; an agent who comes online or gains capacity takes the
 * tickets waiting in their queues in the same write. An agent who leaves
 * online gets a HW_TIMER_REASSIGN timer at now + --reassign-grace-ms
 * (cancelled when it is online again); when it fires, the agent's open
 * tickets move to others (hw_tickets_reassign_in). One skill at most is
 * the default (the fallback queue of classify.h), and a store with skills
 * always has one: PutSkill with is_default clears the mark elsewhere in the
 * same write; the first skill put while none is marked becomes the default
 * (its reply shows is_default); the default skill keeps its mark until
 * another skill takes it (FAILED_PRECONDITION otherwise).
 */
#include "server/domain/agents.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "server/domain/audit.h"
#include "server/domain/queues.h"
#include "server/domain/rpc.h"
#include "server/domain/schedule.h"
#include "server/domain/tickets.h"
#include "server/domain/timers.h"
#include "server/store/records.h"

#define MAX_NAME 256
#define MAX_EMAIL 254
#define MAX_SKILLS 64
#define MAX_KEYWORDS 200
#define MAX_KEYWORD 256
#define MAX_RETENTION_DAYS 36500u /* a hundred years */

typedef struct {
    hw_wctx h;
    Helpwire__V1__Agent agent;
    Helpwire__V1__Skill skill;
    Helpwire__V1__SetPresenceRequest presence;
    char **assigned;
    size_t n_assigned;
    Helpwire__V1__Agent *out;
    hw_audit_rec audit; /* the caller's part (PutAgent, PutSkill) */
} agent_ctx;

/* The audit entry of a PutAgent: skills and capacity decide what the
 * agent's tokens reach. */
static int audit_agent(hw_store_txn *w, agent_ctx *c, const Helpwire__V1__Agent *ag, bool created)
{
    hw_arena *a = hw_call_arena(c->h.call);
    size_t len = 1;
    for (size_t i = 0; i < ag->n_skills; i++)
        len += strlen(ag->skills[i]) + 1;
    char *skills = hw_arena_alloc(a, len);
    if (!skills)
        return HW_ENOMEM;
    skills[0] = '\0';
    for (size_t i = 0; i < ag->n_skills; i++) {
        if (i)
            strcat(skills, ",");
        strcat(skills, ag->skills[i]);
    }
    hw_audit_rec r = c->audit;
    r.action = "agent.put";
    r.target = ag->id;
    hw_audit_detail(&r, "change", created ? "created" : "updated");
    hw_audit_detail(&r, "skills", skills);
    hw_audit_detail(&r, "capacity", hw_arena_printf(a, "%u", ag->capacity));
    return hw_audit_append(w, hw_effects_now_ms(&c->h.fx), &r);
}

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
    ag->channel_load = rc == HW_OK ? old->channel_load : NULL;
    ag->n_channel_load = rc == HW_OK ? old->n_channel_load : 0;
    ag->presence_changed_unix_ms = rc == HW_OK ? old->presence_changed_unix_ms : hw_effects_now_ms(&c->h.fx);
    ag->version = rc == HW_OK ? old->version + 1 : 1;
    ag->updated_unix_ms = hw_effects_now_ms(&c->h.fx);
    bool created = rc == HW_ENOTFOUND;
    rc = hw_store_agent_put(w, ag, HW_PUT_UPSERT, 0);
    if (rc == HW_OK)
        rc = audit_agent(w, c, ag, created);
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
    uint32_t capacity = in->capacity ? in->capacity : 5;
    for (size_t i = 0; i < in->n_channel_capacities; i++) {
        const Helpwire__V1__ChannelCapacity *cc = in->channel_capacities[i];
        char field[64];
        snprintf(field, sizeof field, "agent.channel_capacities[%zu].channel", i);
        if (!hw_rpc_check_enum(call, field, &helpwire__v1__channel__descriptor, cc->channel, false))
            return;
        for (size_t j = 0; j < i; j++)
            if (in->channel_capacities[j]->channel == cc->channel) {
                hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
                             "agent.channel_capacities[%zu]: channel given twice (also [%zu])", i, j);
                return;
            }
        if (cc->capacity < 1 || cc->capacity > capacity) {
            hw_call_fail(
                call, GRPC_STATUS_INVALID_ARGUMENT,
                "agent.channel_capacities[%zu].capacity: %u is not within 1 to the agent's capacity %u", i,
                cc->capacity, capacity);
            return;
        }
    }
    agent_ctx *c = hw_rpc_ctx_new(call, app, sizeof *c);
    if (!c)
        return;
    c->agent = *in;
    if (!c->agent.capacity)
        c->agent.capacity = 5;
    hw_audit_from_call(&c->audit, call);
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
    Helpwire__V1__Presence was = ag->presence;
    int64_t now = hw_effects_now_ms(&c->h.fx);
    if (was != c->presence.presence)
        ag->presence_changed_unix_ms = now;
    ag->presence = c->presence.presence;
    ag->version++;
    ag->updated_unix_ms = hw_effects_now_ms(&c->h.fx);
    rc = hw_store_agent_put(w, ag, HW_PUT_REPLACE, 0);
    /* Online again: its tickets stay. Leaving online: they move to others
     * once the grace period passed (reassign_fire), unless it is back. */
    if (rc == HW_OK && ag->presence == HELPWIRE__V1__PRESENCE__PRESENCE_ONLINE)
        rc = hw_timers_cancel_in(w, HW_TIMER_REASSIGN, ag->id);
    else if (rc == HW_OK && was == HELPWIRE__V1__PRESENCE__PRESENCE_ONLINE)
        rc = hw_timers_set_in(w, &c->h.fx, HW_TIMER_REASSIGN, ag->id, 0, now + hw_queues_grace_ms(&c->h.fx));
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

/* Keeps one default skill whenever skills exist: with the mark, PutSkill
 * clears it elsewhere; without it, the skill becomes the default when no
 * other skill has the mark (the first skill of a store), and the default
 * skill cannot drop its mark (another skill must take it).
 * @return HW_OK; HW_EPRECONDITION (recorded on c); store codes. */
static int keep_one_default(hw_store_txn *w, agent_ctx *c, hw_arena *a)
{
    const char *name = c->skill.name;
    bool was_default = false, other_default = false;
    hw_store_cursor cur = {0};
    int rc;
    do {
        Helpwire__V1__Skill **sk;
        size_t n;
        rc = hw_store_skill_list(w, &cur, HW_STORE_LIST_MAX, a, &sk, &n);
        for (size_t i = 0; rc == HW_OK && i < n; i++) {
            if (!sk[i]->is_default)
                continue;
            if (strcmp(sk[i]->name, name) == 0) {
                was_default = true;
            } else if (c->skill.is_default) {
                sk[i]->is_default = 0; /* the mark moves here */
                rc = hw_store_skill_put(w, sk[i], HW_PUT_REPLACE);
            } else {
                other_default = true;
            }
        }
    } while (rc == HW_OK && cur.len);
    if (rc != HW_OK || c->skill.is_default || other_default)
        return rc;
    if (was_default)
        return hw_rpc_wfail(&c->h, HW_EPRECONDITION,
                            "skill.is_default: %s is the default skill (the queue of tickets that match no "
                            "skill); mark another skill is_default to move the mark",
                            name);
    c->skill.is_default = 1; /* no default yet: this one is */
    return HW_OK;
}

static int put_skill_fn(hw_store_txn *w, void *arg)
{
    agent_ctx *c = arg;
    int rc = keep_one_default(w, c, hw_call_arena(c->h.call));
    if (rc == HW_OK)
        rc = hw_store_skill_put(w, &c->skill, HW_PUT_UPSERT);
    if (rc == HW_OK) {
        /* The queue's settings that concern personal data (retention). */
        hw_arena *a = hw_call_arena(c->h.call);
        hw_audit_rec r = c->audit;
        r.action = "skill.put";
        r.target = c->skill.name;
        hw_audit_detail(&r, "retention_days", hw_arena_printf(a, "%u", c->skill.retention_days));
        const ProtobufCEnumValue *ra = protobuf_c_enum_descriptor_get_value(
            &helpwire__v1__retention_action__descriptor, c->skill.retention_action);
        hw_audit_detail(&r, "retention_action", ra ? ra->name : "");
        hw_audit_detail(&r, "is_default", c->skill.is_default ? "true" : "false");
        rc = hw_audit_append(w, hw_effects_now_ms(&c->h.fx), &r);
    }
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
                           in->default_priority, true) ||
        !hw_rpc_check_enum(call, "skill.assignment", &helpwire__v1__assignment_strategy__descriptor,
                           in->assignment, true) ||
        !hw_rpc_check_enum(call, "skill.retention_action", &helpwire__v1__retention_action__descriptor,
                           in->retention_action, true) ||
        !hw_schedule_check_hours(call, "skill.hours", in->hours))
        return;
    if (in->retention_days > MAX_RETENTION_DAYS) {
        hw_call_fail_field(call, "skill.retention_days", "skill.retention_days: %u is more than %u", in->retention_days, MAX_RETENTION_DAYS);
        return;
    }
    agent_ctx *c = hw_rpc_ctx_new(call, app, sizeof *c);
    if (!c)
        return;
    c->skill = *in;
    hw_audit_from_call(&c->audit, call);
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

/* ------------------------------------------------------------- timers */

static const char *presence_word(Helpwire__V1__Presence p)
{
    return p == HELPWIRE__V1__PRESENCE__PRESENCE_AWAY ? "away" : "offline";
}

/* HW_TIMER_REASSIGN fired for agent subject: unless it is online again,
 * its open tickets move to others. */
static int reassign_fire(void *arg, hw_store_txn *w, hw_effects *fx, hw_timer_kind kind, const char *subject,
                         uint32_t targ, int64_t due_ms, int64_t now_ms)
{
    (void)kind;
    (void)targ;
    if (!fx->app)
        fx->app = arg; /* the settings for the rules below */
    hw_arena *a = fx->arena ? fx->arena : hw_store_txn_arena(w);
    Helpwire__V1__Agent *ag;
    int rc = hw_store_agent_get(w, subject, a, &ag);
    if (rc == HW_ENOTFOUND)
        return HW_OK;
    if (rc != HW_OK || ag->presence == HELPWIRE__V1__PRESENCE__PRESENCE_ONLINE)
        return rc;
    /* Since it left online: the timer was set then, grace before due. */
    int64_t gone = now_ms - (due_ms - hw_queues_grace_ms(fx));
    long mins = (long)((gone > 0 ? gone : 0) + 30000) / 60000;
    const char *why =
        hw_arena_printf(a, "reassigned: agent %s %s for %ld min", ag->id, presence_word(ag->presence), mins);
    if (!why)
        return HW_ENOMEM;
    size_t moved;
    return hw_tickets_reassign_in(w, ag->id, why, a, fx, &moved);
}

int hw_agents_timers_register(hw_timers *t, hw_app *app)
{
    int rc = hw_timers_register(t, HW_TIMER_REASSIGN, reassign_fire, app);
    if (rc == HW_OK)
        rc = hw_timers_register(t, HW_TIMER_UNASSIGNED, hw_queues_unassigned_fire, app);
    return rc;
}
