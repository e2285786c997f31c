/*
 * retention: forgets what is kept only for a while: Route's dedupe records
 * (the first reply to each (channel, message_id), kept so a bridge's retry
 * is answered the same), the outbox's failed list (messages a channel
 * refused for good, kept for an admin to look at and retry) and the
 * ticket event log that WatchTickets resumes from (eventlog.h), and the
 * audit log when it has a retention period (audit.h). A thread
 * sweeps them in small batches and deletes those older than their
 * retention period, so the store does not grow with every message ever
 * received or refused.
 *
 * The same thread applies each queue's retention of closed tickets'
 * conversations (Skill.retention_days and retention_action): a ticket
 * CLOSED longer ago than its queue's period has its conversation redacted
 * or its messages deleted (hw_store_ticket_scrub), so personal text is
 * kept no longer than the operator decided.
 */
#ifndef HW_RETENTION_H
#define HW_RETENTION_H

#include <stddef.h>
#include <stdint.h>

#include "server/base/clock.h"
#include "server/base/log.h"
#include "server/store/store.h"

typedef struct hw_retention_options {
    hw_store *store;             /* borrowed; outlives the retention thread */
    const hw_log *log;           /* borrowed */
    hw_clock *clock;             /* borrowed: the time records are aged by; NULL = the system's */
    int64_t dedupe_retention_ms; /* 0: keep dedupe records forever */
    int64_t failed_retention_ms; /* 0: keep failed outbox entries forever */
    int64_t events_retention_ms; /* 0: keep the event log's entries forever (by age) */
    uint64_t events_max_keep;    /* 0: no bound on the event log's length */
    int conversations;           /* non-zero: apply the queues' conversation retention */
    int64_t conversations_pass_ms; /* least time between two starts of a pass over the
                                    * queues' closed tickets (by the clock); 0 = 60000 */
    int64_t audit_retention_ms;  /* 0: keep audit log entries forever (records.h's hw_store_audit_prune) */
    /* Attachments and pieces no message refers to are removed this long
     * after they were stored (records.h, hw_store_attachment_sweep); 0:
     * kept. helpwired passes 24 hours. */
    int64_t unused_attachments_ms;
    int interval_ms;             /* between batches; 0 = 200 */
    size_t batch;                /* records visited per batch; 0 = 1000 */
} hw_retention_options;

/* The sweeping thread. Opaque. */
typedef struct hw_retention hw_retention;

/* Starts the thread. @return HW_OK; HW_EINVALID (no store, a negative
 * period, or nothing to do: every period and bound 0, conversations 0);
 * HW_ENOMEM. */
int hw_retention_start(const hw_retention_options *o, hw_retention **out);

/* Stops and joins the thread (a batch under way finishes first), frees r.
 * Before the store is closed. NULL is a no-op. */
void hw_retention_stop(hw_retention *r);

/* Dedupe records deleted so far. Any thread. */
uint64_t hw_retention_dedupe_expired(const hw_retention *r);

/* Failed outbox entries deleted so far. Any thread. */
uint64_t hw_retention_failed_expired(const hw_retention *r);

/* Event log entries deleted so far. Any thread. */
uint64_t hw_retention_events_expired(const hw_retention *r);

/* Closed tickets whose conversation the queues' retention redacted (action
 * REDACT) or whose messages it deleted (DELETE) so far, and the messages
 * concerned. Any thread. */
uint64_t hw_retention_conversations_redacted(const hw_retention *r);
uint64_t hw_retention_conversations_deleted(const hw_retention *r);
uint64_t hw_retention_conversation_messages(const hw_retention *r);
/* Audit log entries deleted so far. Any thread. */
uint64_t hw_retention_audit_expired(const hw_retention *r);
/* The audit log's last-denied records (records.h) deleted so far: those
 * not written for a day, swept whenever the thread runs. Any thread. */
uint64_t hw_retention_denied_expired(const hw_retention *r);
/* Attachments and pieces never referred to, removed after
 * unused_attachments_ms so far. Any thread. */
uint64_t hw_retention_attachments_expired(const hw_retention *r);
uint64_t hw_retention_chunks_expired(const hw_retention *r);

#endif
