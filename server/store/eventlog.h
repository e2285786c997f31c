/*
 * eventlog: the global, ordered log of ticket events that makes
 * WatchTickets resumable (WatchTicketsRequest.after).
 *
 * Every ticket event appended to a ticket's history (records.h) is also
 * appended here, in the same write transaction, under a global sequence
 * (1, 2, ... never reused) handed out by the one writer, so the log's
 * order is commit order and a replica, which applies the leader's writes
 * as they are, holds the same log with the same sequences. An entry keeps
 * a copy of the event (without the ticket snapshot) and the queue and
 * assignee the ticket had right after it, so a resumed watch filters the
 * replayed events exactly as a live watcher filtered them then.
 *
 * Layout, in the store's generic key-value space (store.h), so that no new
 * database or schema version is needed:
 *   ns "eventlog"       be64 sequence -> entry (see eventlog.c)
 *   ns "eventlog_meta"  "salt"    -> 8 random bytes made with the first
 *                                    entry (the cursors' check)
 *                       "trimmed" -> be64: every entry up to this sequence
 *                                    was deleted by retention
 *
 * A cursor (TicketEvent.cursor) is "c1" + base64url(be64 sequence + an
 * 8-byte check mixing the sequence with the salt): opaque and versioned.
 * The check is no secret: it only tells this store's cursors (and its
 * replicas' and backups') from anything else, e.g. a cursor of another
 * server or a hand-made one.
 *
 * Common rules: t is any transaction, w a write one (store.h); storage
 * failures return the store's codes.
 */
#ifndef HW_STORE_EVENTLOG_H
#define HW_STORE_EVENTLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "helpwire/v1/tickets.pb-c.h"
#include "server/base/arena.h"
#include "server/store/store.h"

/* A cursor's length, NUL included: "c1" + 22 base64url characters. */
#define HW_EVENTLOG_CURSOR_MAX 32u

/* One entry read back. Everything lives in the reader's arena. */
typedef struct hw_eventlog_entry {
    uint64_t seq;
    const char *queue;    /* of the ticket right after the event ("" none) */
    const char *assignee; /* likewise */
    Helpwire__V1__TicketEvent *event; /* ticket NULL; cursor set */
} hw_eventlog_entry;

/* Appends ev (ev->ticket_id required; ev->ticket is not stored) with the
 * ticket's queue and assignee after it (NULL = ""). The sequence is taken
 * from w, so it exists only if w commits. cursor receives the entry's
 * cursor (NUL-terminated); *seq_out (may be NULL) its sequence. Writer.
 * @return HW_OK; HW_EINVALID (read txn, no ticket id); store codes. */
int hw_eventlog_append(hw_store_txn *w, const Helpwire__V1__TicketEvent *ev, const char *queue,
                       const char *assignee, char cursor[HW_EVENTLOG_CURSOR_MAX], uint64_t *seq_out);

/* The sequence in a cursor made by hw_eventlog_append, without checking it
 * against the store (for the live path, which only compares). 0 when the
 * token is not shaped like a cursor. Pure. */
uint64_t hw_eventlog_cursor_seq(const char *token);

/* Checks token against this store's salt and gives its sequence.
 * @return HW_OK; HW_EINVALID when it is malformed, of another version or
 *   not made by this store (a store with no entry yet made none); store
 *   codes. */
int hw_eventlog_cursor_decode(hw_store_txn *t, const char *token, uint64_t *seq);

/* *trimmed: every entry up to it was deleted (0: none ever was); *last:
 * the last sequence handed out (0: none yet). Entries in (trimmed, last]
 * are all there. Either pointer may be NULL. */
int hw_eventlog_bounds(hw_store_txn *t, uint64_t *trimmed, uint64_t *last);

/* Up to limit (1..10000) entries with sequence > after, in order, into an
 * array in a. *n < limit means the end of the log as t sees it.
 * @return HW_OK; HW_EINVALID (limit); HW_ECORRUPT (an entry that does not
 *   decode); store codes. */
int hw_eventlog_read(hw_store_txn *t, uint64_t after, size_t limit, hw_arena *a, hw_eventlog_entry **out,
                     size_t *n);

/* Deletes, oldest first and at most max_delete (1..10000), the entries
 * made before cutoff_unix_ms (0: no age limit) or more than max_keep
 * entries behind the last one (0: no count limit), and stops at the first
 * entry that is neither. Raises the trimmed mark to the last deleted one.
 * *deleted (may be NULL) receives how many went. Writer.
 * @return HW_OK; HW_EINVALID; store codes. */
int hw_eventlog_trim(hw_store_txn *w, int64_t cutoff_unix_ms, uint64_t max_keep, size_t max_delete,
                     size_t *deleted);

/* Empties the detail of every entry whose ticket match(arg, ticket_id)
 * names (erasure: a detail may quote the customer), rewriting it in w;
 * *redacted (may be NULL) receives how many changed. Entries already
 * empty are left alone, so a second run changes nothing. A full scan of the
 * log (it has no index by ticket). Old values are zeroed in place when w
 * is in wipe mode (hw_store_txn_wipe). Writer.
 * @return HW_OK; HW_EINVALID; store codes. */
int hw_eventlog_redact(hw_store_txn *w, bool (*match)(void *arg, const char *ticket_id), void *arg,
                       size_t *redacted);

#endif
