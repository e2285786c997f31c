/*
 * history: the web chat's conversations on disk, so that a page reload or
 * a bridge restart shows a visitor the whole conversation: their own
 * messages and every message delivered to them from helpwired's outbox,
 * in the order the bridge took them.
 *
 * Design: an LMDB environment, the directory <state-dir>/webchat.history
 * (0700), opened as the bridges' other stores are (clients/lib/lmdb_env.h:
 * synced commits, stale readers cleared, any thread). Each entry is a JSON object (the event the page receives) under
 * an id from one counter for the whole history, so ids increase in the
 * order entries were written and are never reused, across restarts; the
 * id doubles as the SSE event id and the ?after= of the poll and history
 * APIs. Entries are keyed (visitor, id), so a visitor's entries are one
 * range of the B-tree read in order. An entry may carry a dedupe key (the
 * outbox sequence of a delivery, the message id of a visitor's message):
 * a second append with the same key returns the first one's id, so an
 * outbox redelivery or a browser's retried POST is stored once. Commits
 * are synced: an entry appended is there after a crash.
 *
 * Bounded: each visitor keeps their last max_per_visitor entries; older
 * ones are removed as new ones come (with their dedupe keys). The map is
 * WC_HISTORY_MAP_BYTES at most; a full map fails appends (logged by the
 * caller), it never loses what is stored.
 *
 * Thread-safe: every call runs its own LMDB transaction (MDB_NOTLS), so
 * the HTTP handlers (a thread per connection) and the outbox thread call
 * it concurrently; LMDB serializes the writers.
 */
#ifndef WC_HISTORY_H
#define WC_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* The largest the history database may grow. */
#define WC_HISTORY_MAP_BYTES ((size_t)4 << 30)

typedef struct wc_history wc_history;

/* An entry as listed: its id and its JSON text (malloc'd, the caller frees
 * it), which includes "id". */
typedef struct wc_entry {
    uint64_t id;
    char *json;
} wc_entry;

/**
 * Opens (creating when missing) <dir>/webchat.history; dir is created 0700
 * when missing.
 * @param[in] max_per_visitor  entries kept per visitor, >= 1
 * @return 0 and *out (free with wc_history_close), or -1 with err
 */
int wc_history_open(wc_history **out, const char *dir, size_t max_per_visitor, char *err, size_t errlen);

/* Closes and frees; no thread may be using h. NULL is a no-op. */
void wc_history_close(wc_history *h);

/**
 * Appends entry (a JSON object, borrowed: its "id" member is set to the
 * new id) to visitor's history.
 * @param[in] key    the dedupe key, or NULL for none
 * @param[in] reply  true for a message to the visitor (streamed by
 *                   wc_history_list with replies_only), false for the
 *                   visitor's own
 * @param[out] id    the entry's id (the earlier entry's when key was held)
 * @return 0 when appended, 1 when key was already held (nothing written),
 *         -1 with err (nothing written)
 */
int wc_history_append(wc_history *h, const char *visitor, const char *key, bool reply, json_t *entry,
                      uint64_t *id, char *err, size_t errlen);

/**
 * Removes visitor's entry id and its dedupe key (a message taken back:
 * helpwired refused it, or it could not be spooled). A missing entry is
 * not an error.
 * @return 0, or -1 with err
 */
int wc_history_remove(wc_history *h, const char *visitor, uint64_t id, char *err, size_t errlen);

/**
 * Visitor's entries with an id above after, oldest first: at most max of
 * them into out (each .json to free). With replies_only, only the
 * messages to the visitor.
 * @param[out] more  may be NULL: whether further entries follow
 * @return the number of entries, or -1 (an LMDB error or out of memory)
 */
int wc_history_list(wc_history *h, const char *visitor, uint64_t after, bool replies_only, wc_entry *out,
                    int max, bool *more);

#endif
