/*
 * records: typed access to every helpwire record kind and its indexes.
 *
 * Records are the helpwire.v1 API messages themselves, packed with
 * protobuf-c (a survey and a token are wrapped in storage records of
 * helpwire/store/v1/records.proto that add the hash of their secret).
 * Each secondary index is a named database whose keys sort the way the
 * SPEC's list queries read them, so a listing is a range scan:
 *   tickets   by number, status, queue, queue+status, assignee, customer,
 *             priority: <field>[\0] + big-endian ticket number -> id
 *             (newest first = descending number)
 *   customers identity (channel byte + channel_user_id) -> id (unique)
 *   agents    skill\0id -> id
 *   articles, FAQs  locale\0id -> id
 *   surveys   token hash -> id (unique); sent time (be64) + id -> id
 *   tokens    secret hash -> id (unique)
 *   SLA policies  by name only (no index)
 *   outbox    channel byte + be64 sequence -> message
 *   failed outbox messages  channel byte + be64 sequence -> FailedEntry
 *             (or a retirement marker); by time: scope byte (0 = every
 *             channel, else the channel; 0xff markers) + be64 ms + channel
 *             byte + be64 sequence -> "" (two entries per listed record;
 *             newest first = descending keys)
 *   events, messages  ticket id\0 + be64 sequence -> record
 * Every put/delete updates the record and its index entries in the same
 * transaction, after checking unique indexes first, so a failed put leaves
 * nothing half-written.
 *
 * Common rules (not repeated per function):
 * - t is any transaction (hw_store_txn from a write fn or a reader);
 *   w must be a write transaction (else HW_EINVALID). Single-threaded use
 *   of a transaction, see store.h.
 * - Records returned are unpacked into the caller's arena a and stay valid
 *   until the arena is reset, also after the transaction ends. Arrays
 *   returned (*out) live in a too.
 * - Ids are 1..256 bytes (HW_EINVALID otherwise). Missing record:
 *   HW_ENOTFOUND. A record that does not decode: HW_ECORRUPT. Storage
 *   failures: HW_EFULL, HW_EIO, HW_ENOMEM.
 * - Put modes: HW_PUT_UPSERT (create or replace), HW_PUT_CREATE
 *   (HW_EEXISTS if present), HW_PUT_REPLACE (HW_ENOTFOUND if absent).
 *   expected_version != 0: HW_ECONFLICT unless the stored record's version
 *   equals it (HW_ENOTFOUND when there is none). The store stores versions
 *   as given; incrementing them is the caller's job.
 * - Listings take an hw_store_cursor: zeroed for the first page; on return
 *   it holds the position after the last record returned, or len 0 when the
 *   scan reached the end. It is key-based: records added or changed between
 *   pages never make a record appear twice in one listing. Encode it into a
 *   page token with hw_store_cursor_encode. A cursor from another listing
 *   is rejected with HW_EINVALID. limit 1..10000.
 */
#ifndef HW_STORE_RECORDS_H
#define HW_STORE_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "helpwire/v1/admin.pb-c.h"
#include "helpwire/v1/agents.pb-c.h"
#include "helpwire/v1/customers.pb-c.h"
#include "helpwire/v1/knowledge.pb-c.h"
#include "helpwire/v1/outbox.pb-c.h"
#include "helpwire/v1/sla.pb-c.h"
#include "helpwire/v1/surveys.pb-c.h"
#include "helpwire/v1/tickets.pb-c.h"
#include "server/base/arena.h"
#include "server/store/check.h" /* hw_store_check: callers of records.h find it here too */
#include "server/store/store.h"

enum { HW_PUT_UPSERT = 0, HW_PUT_CREATE = 1, HW_PUT_REPLACE = 2 };

#define HW_STORE_ID_MAX 256u
#define HW_STORE_LIST_MAX 10000u
#define HW_STORE_CURSOR_MAX 512u

typedef struct hw_store_cursor {
    size_t len; /* 0: start (before a call) / end (after a call) */
    unsigned char key[HW_STORE_CURSOR_MAX];
} hw_store_cursor;

/* Writes the cursor as lowercase hex into out (NUL-terminated; "" when
 * len == 0). @return HW_OK; HW_EINVALID when outlen < 2 * len + 1. */
int hw_store_cursor_encode(const hw_store_cursor *c, char *out, size_t outlen);

/* Parses a token from hw_store_cursor_encode ("" gives len 0).
 * @return HW_OK; HW_EINVALID for anything else. */
int hw_store_cursor_decode(const char *token, hw_store_cursor *c);

/* ---- customers and identities ----------------------------------------- */

/* Stores c under c->id; each of c->identities is indexed (channel,
 * channel_user_id) -> c->id. HW_EEXISTS when an identity belongs to another
 * customer (move it first: put the other customer without it in the same
 * write fn). Identities removed from c are unindexed. */
int hw_store_customer_put(hw_store_txn *w, const Helpwire__V1__Customer *c, int mode,
                          uint64_t expected_version);
int hw_store_customer_get(hw_store_txn *t, const char *id, hw_arena *a, Helpwire__V1__Customer **out);
/* The customer owning (channel, channel_user_id); HW_ENOTFOUND if none. */
int hw_store_customer_lookup(hw_store_txn *t, Helpwire__V1__Channel channel, const char *channel_user_id,
                             hw_arena *a, Helpwire__V1__Customer **out);
/* Deletes the customer and its identity index entries (not its tickets). */
int hw_store_customer_delete(hw_store_txn *w, const char *id);

/* ---- agents and skills ------------------------------------------------- */

int hw_store_agent_put(hw_store_txn *w, const Helpwire__V1__Agent *ag, int mode, uint64_t expected_version);
int hw_store_agent_get(hw_store_txn *t, const char *id, hw_arena *a, Helpwire__V1__Agent **out);
int hw_store_agent_delete(hw_store_txn *w, const char *id);
/* Agents in id order; skill (NULL/"" = all) is a range scan of the skill
 * index, presence (0 = any) a filter. */
int hw_store_agent_list(hw_store_txn *t, const char *skill, Helpwire__V1__Presence presence,
                        hw_store_cursor *cursor, size_t limit, hw_arena *a, Helpwire__V1__Agent ***out,
                        size_t *n);

/* Skills are keyed by name; no version. */
int hw_store_skill_put(hw_store_txn *w, const Helpwire__V1__Skill *sk, int mode);
int hw_store_skill_get(hw_store_txn *t, const char *name, hw_arena *a, Helpwire__V1__Skill **out);
int hw_store_skill_delete(hw_store_txn *w, const char *name);
int hw_store_skill_list(hw_store_txn *t, hw_store_cursor *cursor, size_t limit, hw_arena *a,
                        Helpwire__V1__Skill ***out, size_t *n);

/* ---- SLA policies ------------------------------------------------------- */

/* Policies are keyed by name (no index); versioned like the other kinds. */
int hw_store_sla_policy_put(hw_store_txn *w, const Helpwire__V1__SlaPolicy *p, int mode,
                            uint64_t expected_version);
int hw_store_sla_policy_get(hw_store_txn *t, const char *name, hw_arena *a, Helpwire__V1__SlaPolicy **out);
int hw_store_sla_policy_delete(hw_store_txn *w, const char *name);
/* Policies in name order. */
int hw_store_sla_policy_list(hw_store_txn *t, hw_store_cursor *cursor, size_t limit, hw_arena *a,
                             Helpwire__V1__SlaPolicy ***out, size_t *n);

/* ---- tickets, their events and messages --------------------------------- */

/* Stores tk under tk->id with all its index entries. tk->number must be
 * non-zero and unique (HW_EEXISTS when another ticket has it); take it from
 * hw_store_next_seq(w, "ticket", 1000, ...). */
int hw_store_ticket_put(hw_store_txn *w, const Helpwire__V1__Ticket *tk, int mode, uint64_t expected_version);
int hw_store_ticket_get(hw_store_txn *t, const char *id, hw_arena *a, Helpwire__V1__Ticket **out);
int hw_store_ticket_get_by_number(hw_store_txn *t, uint64_t number, hw_arena *a, Helpwire__V1__Ticket **out);
/* Deletes the ticket, its index entries, events and messages (dropping
 * the messages' attachment references, see "attachments"). */
int hw_store_ticket_delete(hw_store_txn *w, const char *id);

enum { HW_SCRUB_REDACT = 1, HW_SCRUB_DELETE = 2 };
/* Removes the personal text of ticket_id's conversation in the write w: its
 * messages' texts and channel ids are emptied and their
 * attachments dropped (REDACT; id, kind, author, time and parts stay) or the messages
 * are removed (DELETE), either way with their attachment references (a
 * file no other message refers to leaves the store, zeroed first); each event's detail is
 * emptied and its ticket snapshot cleared (events stay: the history of
 * statuses and times); the ticket's subject, resolution and
 * escalation_reason are emptied and redacted_unix_ms set to now_ms (kept
 * when already set). Each replaced or removed value is first overwritten in
 * place with zeros of its own length, so the old bytes do not survive in
 * the page's free space. *messages (may be NULL) receives how many messages
 * were redacted or removed. @return HW_OK; HW_ENOTFOUND (unknown ticket);
 * store codes. Running it again changes nothing more (REDACT after DELETE
 * finds no messages). */
int hw_store_ticket_scrub(hw_store_txn *w, const char *ticket_id, int how, int64_t now_ms, size_t *messages);

/* ListTickets filters; zero / NULL / "" fields match anything. */
typedef struct hw_ticket_filter {
    Helpwire__V1__TicketStatus status;
    const char *queue;
    const char *assignee_agent_id;
    int unassigned_only; /* only tickets with no assignee */
    const char *customer_id;
    Helpwire__V1__Priority priority;
} hw_ticket_filter;

/* Tickets newest first (descending number). The scan uses the most
 * selective index for the filter (customer, assignee, queue+status, queue,
 * status, priority, else all) and checks the other fields on each record,
 * so a page may hold fewer than limit records while the cursor is not at
 * the end. */
int hw_store_ticket_list(hw_store_txn *t, const hw_ticket_filter *f, hw_store_cursor *cursor, size_t limit,
                         hw_arena *a, Helpwire__V1__Ticket ***out, size_t *n);

/* Calls fn for each ticket created in [from_unix_ms, to_unix_ms) in number
 * order, unpacked into a, which is reset after each call (fn as in
 * hw_store_survey_foreach_sent). Numbers are handed out by the one writer
 * in the write that stamps created_unix_ms, so they follow creation time:
 * the start is found by a binary search over the number index (O(log n)
 * seeks) and the scan stops at the first ticket created at or after
 * to_unix_ms + slack_ms. slack_ms (>= 0) tolerates a clock that stepped
 * back by that much; tickets out of order by more may be missed. */
int hw_store_ticket_foreach_created(hw_store_txn *t, int64_t from_unix_ms, int64_t to_unix_ms,
                                    int64_t slack_ms, hw_arena *a,
                                    int (*fn)(void *arg, const Helpwire__V1__Ticket *tk), void *arg);

/* Appends ev to its ticket's history (ev->ticket_id required): the next
 * sequence (from 1) is assigned and written back into ev->seq, which must
 * be 0 on entry (else HW_EINVALID). ev->ticket is stored as given (clear it
 * to save space). */
int hw_store_ticket_event_append(hw_store_txn *w, Helpwire__V1__TicketEvent *ev);
/* A ticket's events in seq order. */
int hw_store_ticket_event_list(hw_store_txn *t, const char *ticket_id, hw_store_cursor *cursor, size_t limit,
                               hw_arena *a, Helpwire__V1__TicketEvent ***out, size_t *n);

/* Appends m to its ticket's conversation (m->ticket_id required); *pos_out
 * (may be NULL) receives its position (from 1). Each of m's attachments
 * with an id gains a reference from the message (HW_ENOTFOUND when one is
 * not stored; nothing is appended then). */
int hw_store_ticket_message_append(hw_store_txn *w, const Helpwire__V1__TicketMessage *m, uint64_t *pos_out);
/* A ticket's messages in order. */
int hw_store_ticket_message_list(hw_store_txn *t, const char *ticket_id, hw_store_cursor *cursor,
                                 size_t limit, hw_arena *a, Helpwire__V1__TicketMessage ***out, size_t *n);
/* Calls fn for each of the ticket's messages, newest first, each unpacked
 * into a (reset before each: copy what must outlive the call). fn returns
 * HW_OK to go on, HW_STOP to stop (the call then returns HW_OK), or another
 * code to stop and have it returned. Reads from the end of the ticket's
 * log, so finding the newest messages costs what they take, not the
 * conversation's length. Any transaction. */
int hw_store_ticket_message_foreach_newest(hw_store_txn *t, const char *ticket_id, hw_arena *a,
                                           int (*fn)(void *arg, const Helpwire__V1__TicketMessage *m),
                                           void *arg);

/* ---- knowledge ---------------------------------------------------------- */

int hw_store_article_put(hw_store_txn *w, const Helpwire__V1__Article *ar, int mode,
                         uint64_t expected_version);
int hw_store_article_get(hw_store_txn *t, const char *id, hw_arena *a, Helpwire__V1__Article **out);
int hw_store_article_delete(hw_store_txn *w, const char *id);
/* Articles in id order; locale (NULL = all) is a range scan. */
int hw_store_article_list(hw_store_txn *t, const char *locale, hw_store_cursor *cursor, size_t limit,
                          hw_arena *a, Helpwire__V1__Article ***out, size_t *n);
/* Calls fn for every article in id order, each unpacked into a; a is reset
 * after each call (copy what must outlive it). fn returns 0 to go on,
 * HW_STOP to stop (the call then returns HW_OK), or any other value to stop
 * and have it returned. For building the search index at start. */
int hw_store_article_foreach(hw_store_txn *t, hw_arena *a,
                             int (*fn)(void *arg, const Helpwire__V1__Article *ar), void *arg);

int hw_store_faq_put(hw_store_txn *w, const Helpwire__V1__Faq *fq, int mode, uint64_t expected_version);
int hw_store_faq_get(hw_store_txn *t, const char *id, hw_arena *a, Helpwire__V1__Faq **out);
int hw_store_faq_delete(hw_store_txn *w, const char *id);
int hw_store_faq_list(hw_store_txn *t, const char *locale, hw_store_cursor *cursor, size_t limit, hw_arena *a,
                      Helpwire__V1__Faq ***out, size_t *n);
/* As hw_store_article_foreach, for FAQs. */
int hw_store_faq_foreach(hw_store_txn *t, hw_arena *a, int (*fn)(void *arg, const Helpwire__V1__Faq *fq),
                         void *arg);

/* ---- surveys ------------------------------------------------------------ */

/* Stores sv under sv->id, indexed by the hash of its link token (1..64
 * bytes; required when the survey is new, NULL keeps the stored hash) and
 * by sent_unix_ms. HW_EEXISTS when another survey has the token hash. */
int hw_store_survey_put(hw_store_txn *w, const Helpwire__V1__Survey *sv, const void *token_hash,
                        size_t hash_len, int mode);
int hw_store_survey_get(hw_store_txn *t, const char *id, hw_arena *a, Helpwire__V1__Survey **out);
int hw_store_survey_get_by_token(hw_store_txn *t, const void *token_hash, size_t hash_len, hw_arena *a,
                                 Helpwire__V1__Survey **out);
int hw_store_survey_delete(hw_store_txn *w, const char *id);
/* Calls fn for each survey sent in [from_unix_ms, to_unix_ms) (0 = open
 * bound) in sent order, unpacked into a, which is reset after each call.
 * fn returns 0 to go on, HW_STOP to stop (the call then returns HW_OK), or
 * any other value to stop and have it returned. */
int hw_store_survey_foreach_sent(hw_store_txn *t, int64_t from_unix_ms, int64_t to_unix_ms, hw_arena *a,
                                 int (*fn)(void *arg, const Helpwire__V1__Survey *sv), void *arg);

/* ---- API tokens --------------------------------------------------------- */

/* Stores info under info->id with the hash of its secret (1..64 bytes;
 * required when new, NULL keeps the stored one). HW_EEXISTS when another
 * token has the hash. */
int hw_store_token_put(hw_store_txn *w, const Helpwire__V1__TokenInfo *info, const void *secret_hash,
                       size_t hash_len, int mode);
int hw_store_token_get(hw_store_txn *t, const char *id, hw_arena *a, Helpwire__V1__TokenInfo **out);
/* The token whose secret hashes to hash (authentication). */
int hw_store_token_get_by_hash(hw_store_txn *t, const void *hash, size_t hash_len, hw_arena *a,
                               Helpwire__V1__TokenInfo **out);
int hw_store_token_delete(hw_store_txn *w, const char *id);
int hw_store_token_list(hw_store_txn *t, hw_store_cursor *cursor, size_t limit, hw_arena *a,
                        Helpwire__V1__TokenInfo ***out, size_t *n);

/* ---- outbox ------------------------------------------------------------- */

/* Queues m on its channel (m->channel required). m->seq 0: the channel's
 * next sequence (durable, never reused) is assigned and written back into
 * m; otherwise that sequence must be free (HW_EEXISTS). */
int hw_store_outbox_append(hw_store_txn *w, Helpwire__V1__OutboundMessage *m);
/* Up to limit messages of channel with seq > after_seq, oldest first. */
int hw_store_outbox_list(hw_store_txn *t, Helpwire__V1__Channel channel, uint64_t after_seq, size_t limit,
                         hw_arena *a, Helpwire__V1__OutboundMessage ***out, size_t *n);
int hw_store_outbox_get(hw_store_txn *t, Helpwire__V1__Channel channel, uint64_t seq, hw_arena *a,
                        Helpwire__V1__OutboundMessage **out);
/* Stores m again at its sequence (e.g. a new attempt count);
 * HW_ENOTFOUND when it was acknowledged meanwhile. */
int hw_store_outbox_update(hw_store_txn *w, const Helpwire__V1__OutboundMessage *m);
/* Acknowledges (deletes) one message; HW_ENOTFOUND when unknown or already
 * acknowledged (the Ack RPC ignores those). */
int hw_store_outbox_ack(hw_store_txn *w, Helpwire__V1__Channel channel, uint64_t seq);
/* Unacknowledged messages of channel (0 = all channels). */
int hw_store_outbox_backlog(hw_store_txn *t, Helpwire__V1__Channel channel, uint64_t *n);
/* The last sequence handed out on channel (0 when none yet): every
 * sequence ever queued there is at most this. */
int hw_store_outbox_last_seq(hw_store_txn *t, Helpwire__V1__Channel channel, uint64_t *out);

/* ---- failed outbox messages --------------------------------------------- */

/* Stores e in the failed list under (e->message->channel, e->message->seq),
 * both required (HW_EINVALID), indexed by e->failed_unix_ms (a negative
 * time counts as 0). HW_EEXISTS when that sequence is already in the list
 * or was retired from it (hw_store_failed_retire) and its marker is not
 * pruned yet: nothing written. */
int hw_store_failed_put(hw_store_txn *w, const Helpwire__V1__FailedEntry *e);
/* HW_ENOTFOUND also for a retired sequence. */
int hw_store_failed_get(hw_store_txn *t, Helpwire__V1__Channel channel, uint64_t seq, hw_arena *a,
                        Helpwire__V1__FailedEntry **out);
/* Removes one entry and its index entries, leaving nothing behind;
 * HW_ENOTFOUND when not in the list. */
int hw_store_failed_delete(hw_store_txn *w, Helpwire__V1__Channel channel, uint64_t seq);
/* Takes one entry off the list because it was queued again: it is no
 * longer got, listed or counted, but a marker with retired_unix_ms stays
 * under its sequence so that a late report of the same failure
 * (hw_store_failed_put) is refused until hw_store_failed_prune removes the
 * marker. HW_ENOTFOUND when not in the list. */
int hw_store_failed_retire(hw_store_txn *w, Helpwire__V1__Channel channel, uint64_t seq,
                           int64_t retired_unix_ms);
/* Failed entries newest first (failed_unix_ms descending; equal times by
 * channel, then sequence, descending); channel 0 lists every channel. A
 * range scan of the time index in both cases, so pages are always full
 * until the end. */
int hw_store_failed_list(hw_store_txn *t, Helpwire__V1__Channel channel, hw_store_cursor *cursor,
                         size_t limit, hw_arena *a, Helpwire__V1__FailedEntry ***out, size_t *n);
/* Entries in the failed list of channel (0 = all channels); a scan. */
int hw_store_failed_count(hw_store_txn *t, Helpwire__V1__Channel channel, uint64_t *n);
/* Deletes up to max_delete (1..HW_STORE_LIST_MAX) entries that failed
 * before cutoff_unix_ms, oldest first, then, within the same bound,
 * retirement markers older than the cutoff. *deleted (may be NULL)
 * receives how many entries went (markers are not counted). */
int hw_store_failed_prune(hw_store_txn *w, int64_t cutoff_unix_ms, size_t max_delete, size_t *deleted);

/* ---- dedupe and idempotency --------------------------------------------- */

/* Remembers the reply bytes of the first routing of (channel, message_id),
 * routed at created_unix_ms; HW_EEXISTS when already there (the stored
 * reply is kept). message_id 1..256 bytes; reply may be empty. */
int hw_store_dedupe_put(hw_store_txn *w, Helpwire__V1__Channel channel, const char *message_id,
                        const void *reply, size_t reply_len, int64_t created_unix_ms);
/* Copies the stored reply into a. */
int hw_store_dedupe_get(hw_store_txn *t, Helpwire__V1__Channel channel, const char *message_id, hw_arena *a,
                        void **reply, size_t *reply_len);

/* Removes every dedupe record whose stored reply match(arg, reply,
 * reply_len) says is to go (1; 0 keeps it, a negative code stops and is
 * returned), overwriting each with zeros first; *removed (may be NULL)
 * receives how many. A full scan (there is no index by customer): for
 * erasures. @return HW_OK; store codes. */
int hw_store_dedupe_erase(hw_store_txn *w, int (*match)(void *arg, const void *reply, size_t reply_len),
                          void *arg, size_t *removed);

/* Where a sweep of the dedupe records stopped (the caller keeps it between
 * sweeps; zero-initialize it to start from the first record). */
typedef struct hw_dedupe_sweep {
    unsigned char key[512];
    size_t key_len;
    int started;
    uint64_t passes; /* complete passes over the records so far */
} hw_dedupe_sweep;

/* Visits up to max_visit dedupe records after the sweep's position (from
 * the first again after the last) and deletes those routed before
 * cutoff_unix_ms; *deleted (may be NULL) receives how many. Records written
 * before routing times were stored get now_unix_ms as theirs (rewritten
 * once), so they expire a retention period after the first sweep. The
 * sweep position is updated only when the transaction commits: pass a copy
 * and keep it on success.
 * @return HW_OK; store codes. */
int hw_store_dedupe_sweep(hw_store_txn *w, hw_dedupe_sweep *sw, size_t max_visit, int64_t cutoff_unix_ms,
                          int64_t now_unix_ms, size_t *deleted);

/* Binds an idempotency key (1..256 bytes) to a ticket id; HW_EEXISTS when
 * the key is bound (to anything). */
int hw_store_idempotency_put(hw_store_txn *w, const char *key, const char *ticket_id);
/* The ticket id bound to key, copied into a. */
int hw_store_idempotency_get(hw_store_txn *t, const char *key, hw_arena *a, char **ticket_id);

/* ---- durable timers (server/domain/timers.h) ----------------------------
 * Two databases kept together: by due time (be64 due ms + kind byte +
 * subject -> be32 arg) for the timer thread's scan in due order, and by
 * (kind byte + subject -> be64 due + be32 arg) so that setting the same
 * (kind, subject) again replaces it. kind 1..255, subject 1..256 bytes
 * (HW_EINVALID otherwise); due times below 0 are stored as 0. */

typedef struct hw_store_timer {
    int64_t due_ms;
    unsigned kind;
    char *subject; /* in the caller's arena */
    uint32_t arg;
} hw_store_timer;

/* Sets (kind, subject) to fire at due_ms with arg, replacing any. */
int hw_store_timer_put(hw_store_txn *w, unsigned kind, const char *subject, uint32_t arg, int64_t due_ms);
/* The timer of (kind, subject): HW_ENOTFOUND when there is none. */
int hw_store_timer_get(hw_store_txn *t, unsigned kind, const char *subject, uint32_t *arg, int64_t *due_ms);
/* Removes it: HW_ENOTFOUND when there is none. */
int hw_store_timer_delete(hw_store_txn *w, unsigned kind, const char *subject);
/* Timers due at or before until_ms, earliest first (ties by kind, then
 * subject), at most limit (1..10000), into an array in a. */
int hw_store_timers_due(hw_store_txn *t, int64_t until_ms, size_t limit, hw_arena *a, hw_store_timer **out,
                        size_t *n);
/* The earliest due time: HW_ENOTFOUND when no timer is set. */
int hw_store_timer_earliest(hw_store_txn *t, int64_t *due_ms);
/* Timers set. */
int hw_store_timer_count(hw_store_txn *t, uint64_t *n);

/* ---- the audit log (server/domain/audit.h) --------------------------------
 * HW_DB_AUDIT: be64 seq -> packed helpwire.v1.AuditEvent. Numbers come from
 * the sequence "audit" (store.h: never reused, also after a prune), so
 * they follow commit order. Entries are appended and pruned (oldest first),
 * never changed. at_unix_ms never goes backwards: an entry appended while
 * the clock reads earlier than the last entry's time gets that time, so a
 * newest-first listing is also in time order and a from bound ends it. */

typedef struct hw_audit_filter {
    const char *action; /* exact, or a prefix when it ends in '.'; NULL/"": any */
    const char *actor;  /* exact; NULL/"": any */
    const char *target; /* exact; NULL/"": any */
    int64_t from_unix_ms; /* at >= from; 0: unbounded */
    int64_t to_unix_ms;   /* at < to; 0: unbounded */
} hw_audit_filter;

/* Appends e as the next entry: sets e->seq (the next "audit" number) and
 * raises e->at_unix_ms to the last entry's time when it is earlier.
 * e->action is required (1..256 bytes, HW_EINVALID); the packed entry at
 * most 64 KiB (HW_EINVALID). */
int hw_store_audit_append(hw_store_txn *w, Helpwire__V1__AuditEvent *e);

/* Entries newest first (descending seq) that pass f (NULL: all), at most
 * limit (1..HW_STORE_LIST_MAX). At most max_scan entries (0: no bound) are
 * read per call: a page may hold fewer than limit entries (even none) with
 * the cursor set to go on where it stopped; the cursor is len 0 only when
 * no older entry is left. */
int hw_store_audit_list(hw_store_txn *t, const hw_audit_filter *f, hw_store_cursor *cursor, size_t limit,
                        size_t max_scan, hw_arena *a, Helpwire__V1__AuditEvent ***out, size_t *n);

/* The entry numbered seq: HW_ENOTFOUND when there is none (any more). */
int hw_store_audit_get(hw_store_txn *t, uint64_t seq, hw_arena *a, Helpwire__V1__AuditEvent **out);

/* Entries kept. */
int hw_store_audit_count(hw_store_txn *t, uint64_t *n);

/* Deletes up to max_delete (1..HW_STORE_LIST_MAX) of the oldest entries
 * dated before cutoff_unix_ms (<= 0: none); *deleted (may be NULL) receives
 * how many went. */
int hw_store_audit_prune(hw_store_txn *w, int64_t cutoff_unix_ms, size_t max_delete, size_t *deleted);

/* The per-(token, method) records that space access.denied entries out
 * (server/domain/auth.c): kv namespace HW_STORE_AUDIT_DENIED_NS, key the
 * token id, a NUL and the method, value the be64 unix ms of the last entry.
 * They only matter for a minute; the retention sweep drops old ones. */
#define HW_STORE_AUDIT_DENIED_NS "audit.denied"
#define HW_STORE_AUDIT_DENIED_KEY_MAX 400

/* Where a pass over the denied records stands: the last key visited (len 0:
 * from the first). The caller's, kept between batches. */
typedef struct hw_audit_denied_pos {
    unsigned char key[HW_STORE_AUDIT_DENIED_KEY_MAX];
    size_t len;
} hw_audit_denied_pos;

/* Visits up to max_visit (1..HW_STORE_LIST_MAX) denied records after *pos
 * and deletes those written before cutoff_unix_ms (and any whose value is
 * not 8 bytes); *pos moves on, back to the start (len 0) when the end was
 * reached. cutoff <= 0: nothing. *deleted (may be NULL) receives how many
 * went. Writer only. */
int hw_store_audit_denied_prune(hw_store_txn *w, hw_audit_denied_pos *pos, int64_t cutoff_unix_ms,
                                size_t max_visit, size_t *deleted);

/* ---- attachments (attachment_records.c) ----------------------------------
 * Content-addressed files in the store itself, in pieces of at most 1 MiB
 * (LMDB keeps each on its own overflow pages, so the B-tree pages stay
 * small and a piece is read by pointer without a copy):
 *   chunks           SHA-256 (32 bytes) -> the piece's bytes
 *   chunk_meta       the same key -> be64 touched ms, be32 size, be32
 *                    references (occurrences in attachments' piece lists)
 *   attachments      id -> helpwire.store.v1.AttachmentRecord
 *   attachment_refs  id \0 ticket id \0 message id -> "": the ticket
 *                    messages that carry the attachment
 *   blob_pending     be64 touched ms + 'c' (piece) or 'a' (attachment) +
 *                    key -> "": stored and not (yet) referred to, for the
 *                    sweep of what no message ever used
 * Every change is an ordinary put or delete of the write, so replicas get
 * the same bytes. A ticket message appended with attachments refers to
 * each (hw_store_ticket_message_append); scrubbing or deleting the message
 * drops its references, and an attachment no message refers to any more
 * is removed at once, its pieces with it when no other attachment uses
 * them (their bytes zeroed first: they are personal data). */

#define HW_STORE_SHA256_LEN 32u
#define HW_STORE_CHUNK_MAX (1u << 20)
#define HW_STORE_ATTACHMENT_CHUNKS_MAX 20480u
#define HW_STORE_ATTACHMENT_ID_LEN 42u /* "a-" + 40 hex digits */

/* Stores a piece (len 1..HW_STORE_CHUNK_MAX, HW_EINVALID otherwise) under
 * digest, which must be the SHA-256 of data (the caller computes it, off
 * the writer thread). *existed (may be NULL) says it was stored already:
 * then nothing is rewritten, except that an unreferenced piece has its
 * touched time renewed (an upload in progress is not swept under it). */
int hw_store_chunk_put(hw_store_txn *w, const unsigned char *digest, const void *data, size_t len,
                       int64_t now_ms, bool *existed);
/* A piece's size and references; HW_ENOTFOUND when not stored. */
int hw_store_chunk_stat(hw_store_txn *t, const unsigned char *digest, uint32_t *size, uint32_t *refs);
/* *data points into the map: valid until the transaction ends. */
int hw_store_chunk_read(hw_store_txn *t, const unsigned char *digest, const void **data, size_t *len);

/* An attachment as stored; every pointer in the caller's arena. */
typedef struct hw_store_attachment {
    Helpwire__V1__Attachment *info; /* id, kind, mime_type, size_bytes, name, sha256 */
    size_t n_chunks;
    const unsigned char **chunks; /* [n_chunks] digests of HW_STORE_SHA256_LEN bytes */
    uint32_t *chunk_sizes;        /* [n_chunks] */
    int64_t created_unix_ms;
    int64_t touched_unix_ms;
} hw_store_attachment;

/* Creates the attachment info->id (HW_STORE_ATTACHMENT_ID_LEN bytes; info
 * complete: size_bytes and sha256 the content's) from the pieces
 * chunks[0..n) (n * HW_STORE_SHA256_LEN bytes, n 1..
 * HW_STORE_ATTACHMENT_CHUNKS_MAX), each of which must be stored
 * (HW_ENOTFOUND, *missing receives its index) and whose sizes must add up
 * to info->size_bytes (HW_EINVALID). Each piece gains one reference per
 * occurrence. When the id exists already, *existed (may be NULL) is set
 * and the stored record is kept (kind, mime type and name as first
 * committed; an unreferenced one has its touched time renewed). */
int hw_store_attachment_put(hw_store_txn *w, const Helpwire__V1__Attachment *info,
                            const unsigned char *chunks, size_t n, int64_t now_ms, bool *existed,
                            size_t *missing);
int hw_store_attachment_get(hw_store_txn *t, const char *id, hw_arena *a, hw_store_attachment *out);
/* How many ticket messages refer to the attachment. */
int hw_store_attachment_refs(hw_store_txn *t, const char *id, uint64_t *n);
/* Drops message (ticket_id, message_id)'s reference to id (HW_ENOTFOUND when it
 * had none); the last one removes the attachment as described above.
 * *removed (may be NULL) says it did. */
int hw_store_attachment_unref(hw_store_txn *w, const char *id, const char *ticket_id, const char *message_id,
                              bool *removed);

typedef struct hw_attachment_sweep_counts {
    size_t visited, attachments, chunks; /* pending entries seen; removed */
} hw_attachment_sweep_counts;

/* Removes, oldest first, pieces and attachments stored (or last touched)
 * before cutoff_ms that nothing refers to, visiting at most max_visit
 * pending entries (1..HW_STORE_LIST_MAX). Entries of things referred to
 * meanwhile are dropped on the way. *c (may be NULL) is filled. */
int hw_store_attachment_sweep(hw_store_txn *w, int64_t cutoff_ms, size_t max_visit,
                              hw_attachment_sweep_counts *c);

typedef struct hw_store_blob_counts {
    uint64_t attachments, chunks, chunk_bytes, refs, pending;
} hw_store_blob_counts;
/* Counts (chunk_bytes sums the pieces' sizes: a scan of chunk_meta). */
int hw_store_blob_counts_get(hw_store_txn *t, hw_store_blob_counts *c);

/* ---- statistics ---------------------------------------------------------- */

typedef struct hw_store_counts {
    uint64_t customers, agents, tickets, open_tickets, articles, faqs, surveys, outbox_backlog;
} hw_store_counts;

/* Record counts (open_tickets = status not RESOLVED nor CLOSED; counted by
 * range scans of the status index). */
int hw_store_counts_get(hw_store_txn *t, hw_store_counts *c);

#endif
