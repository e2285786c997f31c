/*
 * sla_breach: the SLA timer's warning and breach (see sla_breach.h).
 */
#include "server/domain/sla_breach.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server/domain/notifier.h"
#include "server/domain/queues.h"
#include "server/domain/sla.h"
#include "server/domain/tickets.h"
#include "server/domain/watch.h"
#include "server/store/records.h"

typedef Helpwire__V1__Ticket Ticket;
#define ST(x) HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_##x
#define EV(x) HELPWIRE__V1__TICKET_EVENT_KIND__TICKET_EVENT_KIND_##x
#define ACT(x) HELPWIRE__V1__SLA_BREACH_ACTION__SLA_BREACH_ACTION_##x

/* "2026-12-07T01:30:00Z" in a. */
static char *rfc3339(hw_arena *a, int64_t ms)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    char buf[32];
    if (!gmtime_r(&s, &tm) || !strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm))
        return hw_arena_printf(a, "%lld ms", (long long)ms);
    return hw_arena_strdup(a, buf);
}

static int store_plain(hw_store_txn *w, Ticket *t, int64_t now)
{
    t->version++;
    t->updated_unix_ms = now;
    return hw_store_ticket_put(w, t, HW_PUT_REPLACE, 0);
}

/* The breach action of p on t (other: the agent REASSIGN hands it to, or
 * NULL). ESCALATE escalates an OPEN or PENDING ticket, which queues the
 * escalation alert as EscalateTicket does; the caller queues the
 * "sla_breached" alert for every action. */
static int act(hw_store_txn *w, hw_effects *fx, Ticket *t, const Helpwire__V1__SlaPolicy *p,
               const Helpwire__V1__Agent *other, const char *reason, int64_t now, hw_arena *a)
{
    int action = p ? (int)p->breach_action : ACT(NOTIFY);
    const char *why = NULL;
    if ((action == ACT(UNSPECIFIED) || action == ACT(ESCALATE)) &&
        (t->status == ST(OPEN) || t->status == ST(PENDING)))
        return hw_tickets_escalate_in(w, t, reason, "system", a, fx, &why);
    if (action == ACT(BUMP_PRIORITY) && t->priority < HELPWIRE__V1__PRIORITY__PRIORITY_URGENT) {
        hw_ticket_change ch = {.set_priority = true, .priority = t->priority + 1};
        return hw_tickets_update_in(w, t, &ch, "system", a, fx, &why);
    }
    if (action == ACT(REASSIGN) && other) {
        hw_ticket_change ch = {.set_assignee = true, .assignee_agent_id = other->id};
        return hw_tickets_update_in(w, t, &ch, "system", a, fx, &why);
    }
    return store_plain(w, t, now);
}

static const char *action_text(const Helpwire__V1__SlaPolicy *p, const Ticket *t, hw_arena *a)
{
    int action = p ? (int)p->breach_action : ACT(NOTIFY);
    if (action == ACT(UNSPECIFIED) || action == ACT(ESCALATE))
        return t->status == ST(OPEN) || t->status == ST(PENDING) ? "escalated" : "already escalated; alerted";
    if (action == ACT(BUMP_PRIORITY))
        return t->priority < HELPWIRE__V1__PRIORITY__PRIORITY_URGENT ? "priority raised"
                                                                     : "already URGENT; alerted";
    if (action == ACT(REASSIGN))
        return "reassigned";
    (void)a;
    return "alerted";
}

int hw_sla_breach_fire(void *arg, hw_store_txn *w, hw_effects *fx, hw_timer_kind kind, const char *subject,
                       uint32_t targ, int64_t due_ms, int64_t now_ms)
{
    (void)arg;
    (void)kind;
    (void)due_ms;
    hw_arena *a = fx->arena ? fx->arena : hw_store_txn_arena(w);
    Ticket *t;
    int rc = hw_store_ticket_get(w, subject, a, &t);
    if (rc == HW_ENOTFOUND)
        return HW_OK; /* the ticket is gone, and so is its timer */
    if (rc != HW_OK)
        return rc;
    if (t->status == ST(CLOSED) || t->status == ST(RESOLVED))
        return HW_OK;
    Helpwire__V1__SlaPolicy *p;
    rc = hw_sla_policy_of_in(w, t, a, &p);
    if (rc != HW_OK)
        return rc;
    if ((targ & 0xff) == HW_SLA_WARN && !p) /* a deleted policy warns no more */
        return hw_sla_reschedule_in(w, fx, t, now_ms, a);
    Helpwire__V1__SlaClock *c;
    hw_sla_fired fired = hw_sla_clocks_fire(t, targ, now_ms, &c);
    if (fired == HW_SLA_FIRED_NOTHING)
        return hw_sla_reschedule_in(w, fx, t, now_ms, a);
    const char *target = hw_sla_target_name(c->target);
    const char *due = rfc3339(a, c->due_unix_ms);
    if (fired == HW_SLA_FIRED_WARNING) {
        rc = store_plain(w, t, now_ms);
        if (rc == HW_OK)
            rc = hw_watch_record(w, fx, t, EV(SLA_WARNING), "system",
                                 hw_arena_printf(a, "%s due %s", target, due));
        if (rc == HW_OK)
            rc = hw_sla_reschedule_in(w, fx, t, now_ms, a);
        return rc;
    }
    rc = hw_sla_count_in(w, t, c->target, true);
    if (rc != HW_OK)
        return rc;
    const char *what = action_text(p, t, a);
    Helpwire__V1__Agent *other = NULL;
    if (p && p->breach_action == ACT(REASSIGN)) {
        /* The queues' rule (capacity per channel, the skill's strategy),
         * never the agent it has now. */
        rc = hw_queues_pick_in(w, t->queue, t->channel, t->assignee_agent_id, a, &other);
        if (rc != HW_OK)
            return rc;
        what = other ? hw_arena_printf(a, "reassigned to %s", other->id) : "no other agent free; alerted";
    }
    int64_t due_ms_of = c->due_unix_ms;
    const char *policy = t->sla_policy;
    const char *detail = hw_arena_printf(a, "%s due %s: %s", target, due, what);
    const char *reason = hw_arena_printf(a, "SLA breached: %s due %s (policy %s%s)", target, due,
                                         t->sla_policy, p ? "" : ", deleted");
    if (!detail || !reason)
        return HW_ENOMEM;
    rc = hw_watch_record(w, fx, t, EV(SLA_BREACHED), "system", detail);
    if (rc == HW_OK)
        rc = act(w, fx, t, p, other, reason, now_ms, a);
    if (rc == HW_OK) {
        /* After the action: the alert shows the ticket as it is now. */
        hw_alert_sla al = {.target = target, .due_unix_ms = due_ms_of, .policy = policy, .action = what};
        rc = hw_notifier_queue_sla_in(w, fx, t, &al, reason);
    }
    if (rc == HW_OK)
        rc = hw_sla_reschedule_in(w, fx, t, now_ms, a);
    /* The events above carry the ticket as it was before the action. */
    hw_effects_refresh_ticket(fx, t);
    return rc;
}
