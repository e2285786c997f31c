/*
 * sla: SLA policies (the Sla service) and the SLA clocks of a ticket.
 *
 * A policy names a priority (and optionally a queue) and targets in
 * business minutes: first reply, next reply, resolution. The policy of a
 * ticket is chosen when it is created and again when its priority or
 * queue changes: a policy of the ticket's priority naming its queue wins
 * over one naming no queue; none: the ticket has no policy and no clocks.
 * Two policies may not cover the same (priority, queue), so the choice is
 * never ambiguous.
 *
 * Clocks (Ticket.sla, one per target of the policy) count in the business
 * hours of the ticket's queue (hours.h; a queue without hours is always
 * open):
 *   - FIRST_REPLY and RESOLUTION start when the ticket is created;
 *     NEXT_REPLY starts at a customer message while no reply clock is
 *     waiting (the first reply is still due, or a next reply is).
 *   - An agent reply meets FIRST_REPLY and NEXT_REPLY (a reply after the
 *     breach ends the wait: ended_unix_ms is set, the state stays
 *     BREACHED).
 *   - PENDING pauses the running clocks (the business time left is kept in
 *     remaining_ms); leaving PENDING for OPEN or ESCALATED resumes them
 *     (due = now + remaining in business time).
 *   - RESOLVED and CLOSED end every clock: running or paused ones are MET
 *     (the ticket no longer waits on the team). A reopened ticket keeps its
 *     ended clocks; its next customer message starts NEXT_REPLY.
 *   - A priority or queue change chooses the policy again. With another
 *     policy, clocks still waiting keep the business time they have used
 *     and count it against the new policy's target (in the new queue's
 *     hours): due = now + (new target - used), at once when already past;
 *     a clock whose target the new policy lacks is removed; ended clocks
 *     stay as they are; RESOLUTION starts (from the ticket's creation) if
 *     the new policy has it and the ticket had none. With no policy,
 *     waiting clocks are removed.
 *   - A clock is BREACHED when its due time passes while it waits (the
 *     HW_TIMER_SLA timer, see sla_breach.h); ended_unix_ms is then 0 until
 *     the target is finally reached.
 *   - A deleted or changed policy does not touch tickets' due times; the
 *     warning and the breach action are read from the policy as it is when
 *     they fire (deleted: no warning, the breach only notifies).
 *
 * Each ticket has at most one SLA timer (timers.h keys them by kind and
 * ticket): the earliest pending warning or breach of its running clocks,
 * set again after every change.
 *
 * Attainment is counted in the store (in the write that ends a clock), so
 * the metrics survive restarts and never count a rolled-back change:
 * helpwire_sla_clocks_total{queue,priority,target,result="met|breached"}
 * and the gauge helpwire_sla_breached_now{target} (breached clocks still
 * waiting).
 *
 * Threads: the _in functions run inside a write fn (writer thread); the
 * pure clock functions anywhere; the handlers are method-table handlers.
 */
#ifndef HW_SLA_H
#define HW_SLA_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "helpwire/v1/sla.pb-c.h"
#include "helpwire/v1/tickets.pb-c.h"
#include "server/base/arena.h"
#include "server/domain/effects.h"
#include "server/domain/hours.h"
#include "server/net/net.h"
#include "server/store/store.h"

/* The timer argument: target << 8 | HW_SLA_WARN or HW_SLA_BREACH. */
#define HW_SLA_WARN 0u
#define HW_SLA_BREACH 1u

/* ---- pure clock rules (no store): unit-tested on their own ----------- */

/* What a clock change means for the attainment counters. */
typedef struct hw_sla_ended {
    Helpwire__V1__SlaTarget target;
    bool breached;
} hw_sla_ended;

typedef struct hw_sla_outcome {
    size_t n;
    hw_sla_ended ended[8];
} hw_sla_outcome;

/* The target's minutes in p (0: none); p NULL: 0. */
uint32_t hw_sla_target_minutes(const Helpwire__V1__SlaPolicy *p, Helpwire__V1__SlaTarget target);

/* Starts the clocks of a new ticket t under p (NULL: none) at now, in
 * hours h (NULL: always open): sets t->sla_policy and t->sla, allocated in
 * a. @return HW_OK or HW_ENOMEM. */
int hw_sla_clocks_start(Helpwire__V1__Ticket *t, const Helpwire__V1__SlaPolicy *p, const hw_hours *h,
                        int64_t now, hw_arena *a);

/* A message of kind was added to t at now. Met clocks go to out. */
int hw_sla_clocks_message(Helpwire__V1__Ticket *t, const Helpwire__V1__SlaPolicy *p, const hw_hours *h,
                          Helpwire__V1__MessageKind kind, int64_t now, hw_arena *a, hw_sla_outcome *out);

/* t's status went from prev to t->status at now (pause, resume, end). */
void hw_sla_clocks_status(Helpwire__V1__Ticket *t, Helpwire__V1__TicketStatus prev, const hw_hours *h,
                          int64_t now, hw_sla_outcome *out);

/* t's policy is chosen again: from old (NULL: none or deleted) in hours
 * old_h to p (NULL: none) in hours h, at now (see the top comment). */
int hw_sla_clocks_repolicy(Helpwire__V1__Ticket *t, const Helpwire__V1__SlaPolicy *old, const hw_hours *old_h,
                           const Helpwire__V1__SlaPolicy *p, const hw_hours *h, int64_t now, hw_arena *a);

/* The next warning or breach of t's running clocks after (or at) now:
 * true with *arg (target << 8 | HW_SLA_WARN/BREACH) and *due; false when
 * nothing is pending. p gives the targets and warn_fraction (NULL: no
 * warnings). */
bool hw_sla_clocks_next(const Helpwire__V1__Ticket *t, const Helpwire__V1__SlaPolicy *p, const hw_hours *h,
                        int64_t now, uint32_t *arg, int64_t *due);

/* What firing timer arg at now did to t's clocks. */
typedef enum hw_sla_fired {
    HW_SLA_FIRED_NOTHING = 0, /* stale: the clock is not running, or not due yet */
    HW_SLA_FIRED_WARNING,
    HW_SLA_FIRED_BREACH,
} hw_sla_fired;

/* Applies timer arg at now: sets warned, or BREACHED (ended_unix_ms 0);
 * *clock (may be NULL) gets the clock concerned. */
hw_sla_fired hw_sla_clocks_fire(Helpwire__V1__Ticket *t, uint32_t arg, int64_t now,
                                Helpwire__V1__SlaClock **clock);

/* "FIRST_REPLY", "NEXT_REPLY", "RESOLUTION". */
const char *hw_sla_target_name(Helpwire__V1__SlaTarget target);

/* Checks a policy as PutSlaPolicy takes it; on error writes a message
 * naming the field ("policy.warn_fraction: must be in (0, 1), got 1.5")
 * to err and returns HW_EINVALID. */
int hw_sla_policy_check(const Helpwire__V1__SlaPolicy *p, char *err, size_t errlen);

/* ---- inside write fns (writer thread) ------------------------------- */

/* The policy for priority in queue, or *out NULL; in a. */
int hw_sla_choose_in(hw_store_txn *t, const char *queue, Helpwire__V1__Priority priority, hw_arena *a,
                     Helpwire__V1__SlaPolicy **out);

/* The business hours of queue (NULL: always open, also for a queue with no
 * skill record), from the app's hours cache (fx->app; compiled in the call
 * when fx or its app is NULL); the caller drops the reference with
 * hw_hours_free. */
int hw_sla_hours_in(hw_store_txn *t, const hw_effects *fx, const char *queue, hw_arena *a, hw_hours **out);

/* The new ticket t (created_unix_ms set, not stored yet): chooses its
 * policy, starts its clocks, sets its timer. */
int hw_sla_ticket_opened_in(hw_store_txn *w, hw_effects *fx, Helpwire__V1__Ticket *t, hw_arena *a);

/* What a ticket was before a change. */
typedef struct hw_sla_before {
    Helpwire__V1__TicketStatus status;
    Helpwire__V1__Priority priority;
    const char *queue;
} hw_sla_before;

/* A message of kind was added to t at t->updated_unix_ms; t's status
 * may have moved from before->status too. Before t is stored. */
int hw_sla_message_in(hw_store_txn *w, hw_effects *fx, Helpwire__V1__Ticket *t,
                      Helpwire__V1__MessageKind kind, const hw_sla_before *before, hw_arena *a);

/* t changed at t->updated_unix_ms (status, priority, queue, compared with
 * before): pauses, resumes, ends or re-chooses. Before t is stored. */
int hw_sla_ticket_changed_in(hw_store_txn *w, hw_effects *fx, Helpwire__V1__Ticket *t,
                             const hw_sla_before *before, hw_arena *a);

/* Sets (or cancels) t's SLA timer from its clocks at now (the hooks above
 * do it themselves; the timer's handler calls it after its change). */
int hw_sla_reschedule_in(hw_store_txn *w, hw_effects *fx, const Helpwire__V1__Ticket *t, int64_t now,
                         hw_arena *a);

/* The policy t names, or *out NULL (none, or deleted since). */
int hw_sla_policy_of_in(hw_store_txn *w, const Helpwire__V1__Ticket *t, hw_arena *a,
                        Helpwire__V1__SlaPolicy **out);

/* Counts a met or breached clock of t for the metrics; a breach is also
 * "breached now" until the target is reached (a later hook clears it). */
int hw_sla_count_in(hw_store_txn *w, const Helpwire__V1__Ticket *t, Helpwire__V1__SlaTarget target,
                    bool breached);

/* ---- metrics (any thread, on a read transaction) --------------------- */

/* Appends helpwire_sla_clocks_total and helpwire_sla_breached_now. */
void hw_sla_metrics(hw_store_txn *t, FILE *out);

/* ---- the Sla service ------------------------------------------------ */

void hw_sla_put_policy(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_sla_list_policies(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_sla_delete_policy(hw_call *call, const ProtobufCMessage *request, void *app);

#endif
