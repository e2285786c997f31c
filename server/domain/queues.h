/*
 * queues: the rules that keep a ticket from being stranded in a skill
 * queue. Which agent takes a ticket (capacity per channel, the skill's
 * strategy: least loaded or round robin), the order in which waiting
 * tickets are taken (priority, then SLA due, then number), and the
 * UNASSIGNABLE alert: raised at once when a ticket lands in a queue no
 * agent has the skill for, or when it has waited unassigned past the
 * queue's limit (the durable HW_TIMER_UNASSIGNED timer), once per wait,
 * as a history event, a supervisor webhook alert and a metric.
 *
 * The pure functions (hw_queues_can_take ... hw_queues_choose) are the
 * rules themselves, unit-tested; the _in functions apply them inside a
 * store write fn (writer thread, transaction w), like tickets.h's.
 * Ticket storage and agent load accounting stay in tickets.c, which calls
 * here.
 */
#ifndef HW_QUEUES_H
#define HW_QUEUES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "helpwire/v1/agents.pb-c.h"
#include "helpwire/v1/tickets.pb-c.h"
#include "server/base/arena.h"
#include "server/domain/effects.h"
#include "server/domain/timers.h"
#include "server/store/store.h"

/* Server defaults when the write has no settings (tools, unit tests). */
#define HW_QUEUES_UNASSIGNED_ALERT_AFTER_MS 600000
#define HW_QUEUES_REASSIGN_GRACE_MS 300000

/* ---- pure rules (any thread) ---- */

/* Whether agent ag may take one more ticket of channel ch now: ONLINE,
 * open_tickets below capacity, and below its capacity for ch when it has
 * one (channel_capacities). */
bool hw_queues_can_take(const Helpwire__V1__Agent *ag, Helpwire__V1__Channel ch);

/* ag's open tickets of channel ch (its channel_load entry; 0 when none). */
uint32_t hw_queues_channel_load(const Helpwire__V1__Agent *ag, Helpwire__V1__Channel ch);

/* Moves ag's channel_load for ch by delta (never below 0); a new entry is
 * allocated in a. @return HW_OK; HW_ENOMEM. */
int hw_queues_channel_load_add(Helpwire__V1__Agent *ag, Helpwire__V1__Channel ch, int delta, hw_arena *a);

/* The earliest due time of t's RUNNING SLA clocks; 0 when none runs. */
int64_t hw_queues_sla_due(const Helpwire__V1__Ticket *t);

/* qsort order of waiting tickets (pointers to Ticket *): priority
 * descending, then the earliest RUNNING SLA due ascending (none last),
 * then number ascending. */
int hw_queues_waiting_cmp(const void *x, const void *y);

/* Chooses among agents[0..n) (those with the skill) the one to take a
 * ticket of channel ch, or -1 when none can (hw_queues_can_take):
 * LEAST_LOADED (and UNSPECIFIED): fewest open tickets of ch when the agent
 * has a capacity for ch, else fewest open tickets; ties to the one whose
 * presence changed longest ago (idle longest), then id order.
 * ROUND_ROBIN: the first that can take, in id order, after rr_last (the
 * agent chosen last time in this skill; "" or NULL: from the start),
 * wrapping around. agents must be in id order. */
long hw_queues_choose(Helpwire__V1__Agent *const *agents, size_t n, Helpwire__V1__Channel ch,
                      Helpwire__V1__AssignmentStrategy strategy, const char *rr_last);

/* ---- inside a write fn (writer thread) ---- */

/* The settings the write runs with (hw_settings; defaults when fx has no
 * app). */
int64_t hw_queues_alert_after_ms(const hw_effects *fx, const Helpwire__V1__Skill *skill);
int64_t hw_queues_grace_ms(const hw_effects *fx);

/* The agent to take a ticket of queue (a skill name) and channel now, or
 * *out NULL; skip (may be NULL) is never chosen. For ROUND_ROBIN the
 * skill's position is stored in w (durable across restarts). *out is
 * allocated in a. @return HW_OK; store codes. */
int hw_queues_pick_in(hw_store_txn *w, const char *queue, Helpwire__V1__Channel channel, const char *skip,
                      hw_arena *a, Helpwire__V1__Agent **out);

/* Ticket t (stored, open) now waits unassigned in its queue: when no agent
 * at all has the skill (or t is in no queue) raises UNASSIGNABLE at once;
 * otherwise sets HW_TIMER_UNASSIGNED at now + the queue's limit (replacing
 * an earlier one). Call after storing t. @return HW_OK; store codes. */
int hw_queues_waiting_in(hw_store_txn *w, hw_effects *fx, const Helpwire__V1__Ticket *t, hw_arena *a);

/* Ticket t was assigned (or left the open statuses): its wait ends, the
 * timer is cancelled. @return HW_OK; store codes. */
int hw_queues_wait_over_in(hw_store_txn *w, const Helpwire__V1__Ticket *t);

/* Raises UNASSIGNABLE for t: the history event (detail why), the
 * supervisor webhook alert (kind "unassignable") and the per-queue counter
 * (durable, for helpwire_tickets_unassignable_total). @return HW_OK;
 * store codes. */
int hw_queues_unassignable_in(hw_store_txn *w, hw_effects *fx, const Helpwire__V1__Ticket *t,
                              const char *why);

/* The HW_TIMER_UNASSIGNED handler (timers.h): the ticket subject, still
 * open and unassigned, raises UNASSIGNABLE ("waited unassigned in queue
 * billing for more than 10 min (no agent free)"); once per wait, since the
 * timer is set only when a wait begins. arg is the hw_app (its settings
 * when fx has none). */
int hw_queues_unassigned_fire(void *arg, hw_store_txn *w, hw_effects *fx, hw_timer_kind kind,
                              const char *subject, uint32_t targ, int64_t due_ms, int64_t now_ms);

/* Metrics at scrape time, read in t: helpwire_tickets_unassignable_total
 * and helpwire_queue_waiting per queue. */
void hw_queues_metrics(hw_store_txn *t, hw_arena *a, FILE *out);

#endif
