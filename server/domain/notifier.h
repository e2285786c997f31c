/*
 * notifier: supervisor alerts for escalated tickets, for tickets nobody
 * can take (UNASSIGNABLE, queues.h) and for SLA breaches (sla_breach.h). EscalateTicket queues
 * an alert durably in its own write transaction (hw_notifier_queue_in); the
 * notifier's thread POSTs it as JSON to the configured webhook with
 * libcurl (timeouts, retries with exponential backoff), keeps it in the
 * store until delivered (so it survives restarts), and records each
 * delivery attempt on the ticket's history (ALERT_DELIVERED /
 * ALERT_FAILED events). Each POST carries helpwire-webhook-id (stable
 * across retries), helpwire-webhook-timestamp and, when
 * settings.webhook_keys is set, helpwire-signature (webhook_sign.h).
 * Alerts not delivered within
 * settings.alert_retention_ms of being raised are dropped (0: kept until
 * delivered).
 */
#ifndef HW_NOTIFIER_H
#define HW_NOTIFIER_H

#include "helpwire/v1/tickets.pb-c.h"
#include "server/domain/app.h"
#include "server/domain/effects.h"
#include "server/store/store.h"

typedef struct hw_notifier hw_notifier;

/* Starts the notifier thread; pending alerts from before a restart are
 * delivered again. With no webhook configured, alerts stay queued in the
 * store (not in memory) until a start with one, or until they are older
 * than settings.alert_retention_ms. Returns 0 or a negative HW_E* code. */
int hw_notifier_create(hw_notifier **out, hw_app *app);

/* Stops the thread (an attempt in progress finishes or times out) and
 * frees. Alerts not yet delivered stay in the store. */
void hw_notifier_destroy(hw_notifier *n);

/* Inside a write fn: queues an alert for ticket t (escalated by actor with
 * reason) and records it on fx, so that the notifier is woken after the
 * commit. Writer thread only.
 * @return HW_OK; HW_EINVALID (t has no id, or a field is not UTF-8);
 *   HW_ENOMEM; store codes. */
int hw_notifier_queue_in(hw_store_txn *w, hw_effects *fx, const Helpwire__V1__Ticket *t, const char *reason,
                         const char *actor);

/* What an alert is about: its body's "kind" ("escalated", with
 * escalated_unix_ms; "unassignable", with at_unix_ms; "sla_breached", with
 * at_unix_ms, sla_target, due_unix_ms, sla_policy and action). The body's
 * fields are listed in docs/operations.md. */
typedef enum hw_alert_kind {
    HW_ALERT_ESCALATED = 0,
    HW_ALERT_UNASSIGNABLE = 1,
    HW_ALERT_SLA_BREACHED = 2
} hw_alert_kind;

/* hw_notifier_queue_in for an alert of kind ESCALATED or UNASSIGNABLE
 * (reason: why). SLA_BREACHED needs its facts: hw_notifier_queue_sla_in. */
int hw_notifier_queue_kind_in(hw_store_txn *w, hw_effects *fx, const Helpwire__V1__Ticket *t,
                              hw_alert_kind kind, const char *reason, const char *actor);

/* The facts of an SLA breach alert; the strings are borrowed for the call. */
typedef struct hw_alert_sla {
    const char *target;  /* "FIRST_REPLY", "NEXT_REPLY", "RESOLUTION" */
    int64_t due_unix_ms; /* when the target was due */
    const char *policy;  /* the ticket's policy name */
    const char *action;  /* what the breach did: "escalated", "reassigned to bob", ... */
} hw_alert_sla;

/* Inside a write fn: queues a "sla_breached" alert for t (actor "system",
 * reason: the breach in words). Same returns as hw_notifier_queue_in. */
int hw_notifier_queue_sla_in(hw_store_txn *w, hw_effects *fx, const Helpwire__V1__Ticket *t,
                             const hw_alert_sla *sla, const char *reason);

/* Delivery attempts that failed and will be retried, since start; and
 * alerts waiting for delivery now. Thread-safe. */
uint64_t hw_notifier_retries(hw_notifier *n);
uint64_t hw_notifier_pending(hw_notifier *n);

/* Alerts dropped undelivered after settings.alert_retention_ms, since
 * start. Thread-safe; n may be NULL. */
uint64_t hw_notifier_expired(hw_notifier *n);

/* Alert records the thread has read from the store to find new alerts,
 * since start: each wake-up reads only those queued since the previous one
 * (for tests). Thread-safe; n may be NULL. */
uint64_t hw_notifier_scanned(hw_notifier *n);

/* After the commit of a write that queued an alert: wakes the thread (the
 * alert_queued sink of effects.h). Any thread, never blocks; n may be
 * NULL. */
void hw_notifier_wake(hw_notifier *n);

/* After the commit of a write that removed alerts from the store
 * (Customers.EraseCustomer): wakes the thread, which drops them from
 * memory (with a webhook) or, without one, counts the alerts still stored
 * again, so the pending gauge no longer counts the removed ones. Any
 * thread, never blocks; n may be NULL. */
void hw_notifier_removed(hw_notifier *n);

#endif
