/*
 * sla_breach: what the HW_TIMER_SLA timer does when it fires (timers.h):
 * at the warning the clock is marked warned and SLA_WARNING is recorded;
 * at the due time the clock is BREACHED, SLA_BREACHED is recorded (detail
 * "<target> due <RFC 3339 time>: <action taken>"), the breach is counted,
 * and the policy's breach action runs:
 *   ESCALATE       the ticket becomes ESCALATED with the breach as its
 *                  reason (already ESCALATED: only the alert);
 *   BUMP_PRIORITY  priority one step up, at most URGENT (which chooses the
 *                  policy again, sla.h);
 *   REASSIGN       to the agent the queues' rule picks (hw_queues_pick_in:
 *                  online, capacity and per-channel capacity, the skill's
 *                  strategy), never the assignee; none: the ticket stays
 *                  where it is;
 *   NOTIFY         nothing more;
 * and, for every action, the supervisor webhook gets a "sla_breached"
 * alert (target, due time, policy, the action taken; notifier.h) with the
 * reason "SLA breached: ..."; ESCALATE's escalation also sends the
 * "escalated" alert, as EscalateTicket does. A deleted policy's breach
 * only notifies.
 * Then the ticket's next SLA timer is set.
 *
 * It sits above sla.h and tickets.h (the ticket rules call sla.h; the
 * actions call the ticket rules), so neither depends on the other twice.
 * Runs inside the timer thread's write transaction: the timer was deleted
 * in it, so a warning or a breach happens once, also across restarts.
 */
#ifndef HW_SLA_BREACH_H
#define HW_SLA_BREACH_H

#include <stdint.h>

#include "server/domain/effects.h"
#include "server/domain/timers.h"
#include "server/store/store.h"

/* An hw_timer_fire_fn for HW_TIMER_SLA; arg is unused (may be NULL).
 * @return HW_OK (also for a ticket gone or a stale timer); store codes. */
int hw_sla_breach_fire(void *arg, hw_store_txn *w, hw_effects *fx, hw_timer_kind kind, const char *subject,
                       uint32_t targ, int64_t due_ms, int64_t now_ms);

#endif
