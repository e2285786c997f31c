/*
 * spool: a bridge's durable intake queue, so that a channel is answered
 * "taken" (a webhook's 2xx, the web chat's "received") only once its
 * message is safe on disk, whether or not helpwired can take it now. The
 * drainer (drain.h) routes what is spooled, oldest first, and removes an
 * entry only after it was routed or recorded as a dead letter.
 *
 * Design: an LMDB environment, the directory <state-dir>/<name>.spool
 * (created 0700; data.mdb and lock.mdb inside, 0600), opened as the
 * bridges' other stores are (lmdb_env.h). Entries are opaque
 * byte strings under an increasing 64-bit sequence (big-endian keys, so
 * the B-tree's order is the arrival order); a small meta table holds the
 * next sequence and the total bytes. Why LMDB: a commit is synced to disk
 * before it returns (the environment is opened without MDB_NOSYNC), a
 * crash or kill -9 at any point leaves the last committed state, and its
 * lock file lets two processes (a bridge and its replacement during a
 * deploy, or an operator's mdb_stat) open the same spool: writers are
 * serialized by LMDB, and readers never block. Two drainers on one spool
 * may route the same oldest entry twice; helpwired answers the second as
 * a duplicate (it dedupes by channel and message id).
 *
 * Bounded: at most max_entries entries and max_bytes bytes of entry data;
 * an append past either is refused with BR_SPOOL_FULL (a webhook then
 * answers 503, so the platform delivers it again later), and nothing of
 * it is written.
 *
 * Thread-safe: every call opens its own LMDB transaction (MDB_NOTLS), so
 * any thread may call any function, concurrently.
 */
#ifndef BR_SPOOL_H
#define BR_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct br_spool br_spool;

/* Statuses: 0 is success. */
#define BR_SPOOL_OK 0
#define BR_SPOOL_EMPTY 1 /* br_spool_peek: nothing spooled */
#define BR_SPOOL_ERR -1  /* an I/O or LMDB error, described in err */
#define BR_SPOOL_FULL -2 /* over max_entries or max_bytes: nothing was written */

/* Limits of one spool. */
typedef struct br_spool_limits {
    uint64_t max_entries; /* >= 1 */
    uint64_t max_bytes;   /* >= 1: the sum of the entries' sizes */
} br_spool_limits;

/* One entry to append: len bytes at data (borrowed). */
typedef struct br_spool_item {
    const void *data;
    size_t len;
} br_spool_item;

/**
 * Opens (creating when missing) the spool <dir>/<name>.spool; dir is
 * created 0700 when missing. Stale reader slots of a process that died
 * (kill -9) are cleared.
 * @param[out] out  the spool; free with br_spool_close
 * @param[in]  lim  its bounds (copied)
 * @return 0, or BR_SPOOL_ERR with err ("<path>: <why>")
 */
int br_spool_open(br_spool **out, const char *dir, const char *name, const br_spool_limits *lim, char *err,
                  size_t errlen);

/* Closes and frees; no other thread may be using s. NULL is a no-op. */
void br_spool_close(br_spool *s);

/* The spool's directory (owned by s). */
const char *br_spool_path(const br_spool *s);

/**
 * Appends the n items, in order, in one transaction synced to disk
 * before it returns: either all are spooled or none. n == 0 is a no-op.
 * @param[out] first_seq  may be NULL: the sequence of the first item
 * @return 0 once durable; BR_SPOOL_FULL when the items would pass the
 *         limits (err says which); BR_SPOOL_ERR with err
 */
int br_spool_append(br_spool *s, const br_spool_item *items, size_t n, uint64_t *first_seq, char *err,
                    size_t errlen);

/**
 * The oldest entry.
 * @param[out] seq   its sequence
 * @param[out] data  a malloc'd copy (the caller frees it), NUL-terminated
 *                   after len bytes
 * @param[out] len   its length
 * @return 0, BR_SPOOL_EMPTY, or BR_SPOOL_ERR with err
 */
int br_spool_peek(br_spool *s, uint64_t *seq, char **data, size_t *len, char *err, size_t errlen);

/* The first entry after sequence after (br_spool_peek is after 0: the
 * sequences start at 1), as br_spool_peek returns it; BR_SPOOL_EMPTY when
 * there is none. Lets a reader go past entries it must hold back. */
int br_spool_next(br_spool *s, uint64_t after, uint64_t *seq, char **data, size_t *len, char *err,
                  size_t errlen);

/**
 * Removes entry seq, durably. An entry already gone (removed by another
 * process) is not an error.
 * @return 0, or BR_SPOOL_ERR with err
 */
int br_spool_remove(br_spool *s, uint64_t seq, char *err, size_t errlen);

/* The number of entries now, or 0 when it cannot be read. */
uint64_t br_spool_count(br_spool *s);

/* Appends the gauge helpwire_bridge_spool_entries{bridge} (Prometheus
 * text) to out; bridge is the label value. Thread-safe. */
void br_spool_render(br_spool *s, const char *bridge, FILE *out);

#endif
