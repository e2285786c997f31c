/*
 * store: helpwire's durable state in one LMDB environment.
 *
 * Design (see store.c for the reasoning):
 * - One environment under the data directory, one named database per record
 *   kind and per secondary index, a schema record checked at open: a foreign
 *   or newer file is refused with a message and never written to.
 * - Exactly one writer thread. Any thread hands it a write request with
 *   hw_store_submit() (a wait-free liburcu queue, no lock); the writer takes
 *   every waiting request (up to max_group_size), runs them in one
 *   transaction (a group with a failing request is run again with a nested
 *   transaction per request, so the failing one is rolled back alone),
 *   commits the group once with fsync, and only then calls each request's
 *   done callback.
 *   "Acknowledged" therefore always means "on disk".
 * - Reads never wait for the writer: each worker thread owns an
 *   hw_store_reader whose MDB_NOTLS read transaction is renewed per request
 *   and reset afterwards.
 * - The map grows by itself when full; stale reader slots left by dead
 *   processes are cleared at open; hw_store_backup() writes a compacted,
 *   consistent copy while the store runs.
 *
 * Record kinds with their indexes live in records.h; this header is the
 * engine: lifecycle, the writer queue, readers, sequences, a small generic
 * key-value space and statistics.
 *
 * Not done here: validation of API input (the domain layer does it) and any
 * knowledge of gRPC.
 */
#ifndef HW_STORE_H
#define HW_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/base/arena.h"
#include "server/base/errors.h"

/* The store: one LMDB environment and its writer thread. Opaque. */
typedef struct hw_store hw_store;

/* A transaction as seen by record functions: either a request's nested write
 * transaction (inside a hw_store_write_fn, on the writer thread) or a
 * reader's read transaction (between hw_store_read_begin/_end). Write
 * functions given a read transaction return HW_EINVALID. Used by one thread
 * only; never stored beyond the call that handed it out. */
typedef struct hw_store_txn hw_store_txn;

/* A worker thread's read handle. Opaque. */
typedef struct hw_store_reader hw_store_reader;

/* Current schema version written into new stores and accepted at open. A
 * store of version 1 is migrated at open (its ticket events and messages
 * move into one database, migrate.h; the record says 2 before the first
 * entry moves, so an older build refuses the store from then on). Version
 * 3 adds the ticket log's write-ahead part (records_internal.h): nothing
 * moves, but a build of version 2 would append to a ticket's log without
 * seeing its pending entries, so the record says 3 at the first open and
 * older builds refuse the store. */
#define HW_STORE_SCHEMA_VERSION 3u

typedef struct hw_store_options {
    /* Directory holding data.mdb and lock.mdb; created (one level) when
     * missing. Required. */
    const char *data_dir;
    /* Map size for a new store, and the minimum for an existing one.
     * 0 = 64 MiB. The map doubles by itself when full. */
    size_t initial_map_size_bytes;
    /* Ceiling for automatic growth; 0 = 1 TiB. Writes fail with HW_EFULL
     * once the map would have to exceed it. */
    size_t max_map_size_bytes;
    /* LMDB reader slots: readers + concurrent backups + a few. 0 = 126. */
    unsigned max_readers;
    /* Most requests applied in one transaction / one fsync. 0 = 1024.
     * 1 = one durable commit per request (the benchmark's baseline). */
    unsigned max_group_size;
    /* A measuring aid, off (0) in service: after every write group, find
     * the leaf page of each record the group put and count the distinct
     * pages per database; every page_census_every groups, write the totals
     * so far to stderr ("store census: ..."), per request. It costs a read
     * of every record written. */
    unsigned page_census_every;
} hw_store_options;

/* Opens (or creates) the store and starts its writer thread; a store of
 * an older schema is upgraded before it is returned (migrate.h).
 * @param[out] out    the store on success, NULL on failure.
 * @param[in]  opts   options; only read during the call.
 * @param[out] err    a NUL-terminated explanation on failure (may be NULL).
 * @param[in]  errlen size of err.
 * @return HW_OK; HW_EINVALID (bad options, not a directory);
 *   HW_EBUSY (another process has the store open);
 *   HW_ESCHEMA (the data file is not an LMDB file, belongs to another
 *   program, or has a newer schema: the file is left untouched);
 *   HW_ENOMEM; HW_EIO.
 * Stale reader slots of dead processes are cleared (mdb_reader_check).
 * Thread-safe with respect to other stores; each open store is independent. */
int hw_store_open(hw_store **out, const hw_store_options *opts, char *err, size_t errlen);

/* Drains and closes: new submissions fail with HW_ECLOSED from now on,
 * every request already submitted is applied and its done callback called,
 * then the writer thread stops and the environment is closed and freed.
 * Every hw_store_reader must have been destroyed before; no other thread may
 * use s once close has begun, except submitters racing with it (they get
 * HW_ECLOSED). Must not be called from the writer thread (a done callback).
 * NULL is a no-op. */
void hw_store_close(hw_store *s);

/* ------------------------------------------------------------------------
 * Writes
 * ---------------------------------------------------------------------- */

/* A write request's body. Runs on the writer thread in transaction w (the
 * group's, or a nested one), valid only during the call. Returns HW_OK to
 * keep its changes or a negative HW_E* code to roll them back (the other
 * requests of the group are unaffected).
 * It may run more than once for one submission: when another request of its
 * group failed, or the map had to grow under it, its changes are rolled
 * back and it is called again in a new
 * transaction. It must therefore act only through w and, if it writes
 * results into ctx, overwrite them on every run. It must not block on other
 * store operations (no hw_store_write, no hw_store_close). */
typedef int (*hw_store_write_fn)(hw_store_txn *w, void *ctx);

/* Called on the writer thread once the request's outcome is final: status is
 * HW_OK only after the group holding the request is durably committed;
 * otherwise the fn's code, or HW_EIO, HW_EFULL or HW_ENOSPACE (the disk is
 * full) when the commit failed. Must be
 * cheap and must not block (it delays the whole next group); it may call
 * hw_store_submit. ctx is the caller's; the store never touches it again. */
typedef void (*hw_store_done_fn)(void *ctx, int status);

/* Queues a write request; never blocks (wait-free enqueue plus, when the
 * writer sleeps, one futex wake). Thread-safe; any thread, including the
 * writer thread itself (from a done callback).
 * @param fn    the request body (required).
 * @param done  completion callback (may be NULL).
 * @param ctx   passed to both.
 * @return HW_OK: fn will run and done will be called exactly once;
 *   HW_ECLOSED (closing) or HW_ENOMEM or HW_EINVALID (fn NULL): nothing
 *   will be called. */
int hw_store_submit(hw_store *s, hw_store_write_fn fn, hw_store_done_fn done, void *ctx);

/* Submits and waits for the durable outcome; returns the done status, or the
 * submit error. For tests, tools and admin paths; a gRPC worker should use
 * hw_store_submit. Must not be called on the writer thread nor while the
 * calling thread has a read transaction open (the writer may be waiting for
 * it to end before growing the map). Thread-safe. */
int hw_store_write(hw_store *s, hw_store_write_fn fn, void *ctx);

/* Returns the next value of the named sequence, durable and never repeated:
 * the counter is updated in w, so a number exists only if its request
 * commits, and a committed number is never handed out again, also after a
 * crash. The first value of a new sequence is first (0 is treated as 1).
 * name: 1 to 200 bytes. Writer only.
 * @return HW_OK; HW_EINVALID (read txn, bad name); HW_EFULL; HW_EIO. */
int hw_store_next_seq(hw_store_txn *w, const char *name, uint64_t first, uint64_t *out);

/* Reads a sequence's last handed-out value (0 when never used).
 * @return HW_OK; HW_EINVALID; HW_EIO. Any transaction. */
int hw_store_peek_seq(hw_store_txn *t, const char *name, uint64_t *out);

/* The writer arena of the current request: reset before each run of a
 * write fn; handy for temporary decoding in the fn. NULL for a read txn. */
hw_arena *hw_store_txn_arena(hw_store_txn *w);

/* Wipe mode for the rest of the write w (a no-op on a read one): every
 * value a put replaces or a delete removes, through any record function,
 * is first overwritten in place with zeros of its own length (recorded in
 * the change set, so replicas do the same), leaving no copy of the old
 * bytes in the page's free gap. For erasures; old page versions are
 * cleared by hw_store_wipe_free after the commit. */
void hw_store_txn_wipe(hw_store_txn *w, bool on);

/* Non-zero for a write transaction. */
int hw_store_txn_writable(const hw_store_txn *t);

/* ------------------------------------------------------------------------
 * Reads
 * ---------------------------------------------------------------------- */

/* Creates a reader for the calling worker thread (it may later be used from
 * another thread, but by one thread at a time). Takes an LMDB reader slot
 * for its lifetime. Thread-safe (registration takes a mutex; do it once per
 * worker, not per request).
 * @return HW_OK; HW_EFULL (no reader slot left, see max_readers);
 *   HW_ENOMEM; HW_EIO. */
int hw_store_reader_create(hw_store *s, hw_store_reader **out);

/* Frees a reader (its read transaction must be ended). NULL is a no-op. */
void hw_store_reader_destroy(hw_store_reader *r);

/* Starts a read transaction on the latest committed state; *txn is valid
 * until hw_store_read_end. Lock-free: never waits for the writer, except for
 * the few microseconds of a map growth. Keep reads short: a map growth waits
 * for every open read to end.
 * @return HW_OK; HW_EINVALID (already begun); HW_EIO. */
int hw_store_read_begin(hw_store_reader *r, hw_store_txn **txn);

/* Ends the read transaction (mdb_txn_reset); pointers obtained from it into
 * the map become invalid. Records unpacked into an arena stay valid. */
void hw_store_read_end(hw_store_reader *r);

/* ------------------------------------------------------------------------
 * Generic key-value space (small durable state of other modules, e.g. the
 * notifier's pending alerts or a bridge cursor). Keys are (ns, key) with ns
 * 1..64 bytes without NUL and key 1..400 bytes.
 * ---------------------------------------------------------------------- */

/* Stores val (may be empty). Writer only.
 * @return HW_OK; HW_EINVALID; HW_EFULL; HW_EIO. */
int hw_store_kv_put(hw_store_txn *w, const char *ns, const void *key, size_t key_len, const void *val,
                    size_t val_len);

/* Copies the value into a (NUL appended, not counted in *len).
 * @return HW_OK; HW_ENOTFOUND; HW_EINVALID; HW_ENOMEM. Any transaction. */
int hw_store_kv_get(hw_store_txn *t, const char *ns, const void *key, size_t key_len, hw_arena *a, void **val,
                    size_t *len);

/* @return HW_OK; HW_ENOTFOUND; HW_EINVALID; HW_EIO. Writer only. */
int hw_store_kv_delete(hw_store_txn *w, const char *ns, const void *key, size_t key_len);

/* Calls fn for each key of ns in key order. fn returns 0 to go on,
 * HW_STOP to stop (kv_foreach then returns HW_OK), or any other value to
 * stop and have it returned. Pointers are valid during the call only.
 * @return HW_OK, fn's value, HW_EINVALID or HW_EIO. Any transaction. */
int hw_store_kv_foreach(hw_store_txn *t, const char *ns,
                        int (*fn)(void *arg, const void *key, size_t key_len, const void *val,
                                  size_t val_len),
                        void *arg);

/* hw_store_kv_foreach from the first key of ns after `after` (bytewise
 * greater, shorter first on a common prefix): a consumer that remembers
 * the last key it saw reads only what came since, at the cost of one seek
 * and not of the keys before. after_len 0 (after may be NULL): from the
 * first key. after need not exist.
 * @return as hw_store_kv_foreach; HW_EINVALID also for after_len > 400. */
int hw_store_kv_foreach_after(hw_store_txn *t, const char *ns, const void *after, size_t after_len,
                              int (*fn)(void *arg, const void *key, size_t key_len, const void *val,
                                        size_t val_len),
                              void *arg);

/* ------------------------------------------------------------------------
 * Operations
 * ---------------------------------------------------------------------- */

/* Writes a consistent, compacted copy (mdb_env_copyfd2 with
 * MDB_CP_COMPACT) into dir/data.mdb, mode 0600 like the live store. dir is
 * made (mode 0700) when missing, its parent must exist; an existing dir
 * must hold no data.mdb and keeps its own mode. The copy is written under
 * a temporary name in dir and named data.mdb (never replacing one) when
 * complete. Returns once the copy, its name and dir's name are fsynced; a
 * failure leaves no partial copy (nor a directory it made). Runs on the calling thread while writes
 * continue; a map growth waits for it. Thread-safe.
 * @param[out] size_bytes size of the copy (may be NULL).
 * @param[out] why on failure, what went wrong ("it holds a data.mdb
 *   already", "cannot create the directory: No such file or directory").
 * @return HW_OK; HW_EINVALID (dir unusable, see why); HW_EFULL (no reader
 *   slot); HW_ENOSPACE (the backup's disk is full); HW_EIO. */
int hw_store_backup(hw_store *s, const char *dir, uint64_t *size_bytes, char *why, size_t whylen);

/* A kv record (as hw_store_kv_put's: ns 1..64 bytes, key 1..400) that
 * hw_store_backup_marked writes into the copy. Borrowed. */
typedef struct hw_store_backup_mark {
    const char *ns;
    const void *key;
    size_t key_len;
    const void *val;
    size_t val_len;
} hw_store_backup_mark;

/* hw_store_backup, and mark (NULL: none) put into the copy's kv space
 * before the copy takes its name: a dir/data.mdb is always whole and
 * marked (the copy is written under a temporary name in dir, which a
 * crash may leave behind: .data.mdb.XXXXXX). The live store is not
 * changed. Same results as hw_store_backup; a bad mark is HW_EINVALID. */
int hw_store_backup_marked(hw_store *s, const char *dir, const hw_store_backup_mark *mark,
                           uint64_t *size_bytes, char *why, size_t whylen);

/* Asks the writer to overwrite with zeros the free pages of the data file
 * (old versions of pages, which keep the bytes of records since changed or
 * deleted until LMDB reuses them): once no write is waiting, it runs a few
 * local transactions that take each reusable free page for a zero-filled
 * scratch value and release it (store.c). Returns at once; the wipe is done
 * when hw_store_stats.wipes has grown. Pages freed by the latest writes or
 * held by an open read transaction (a running backup) are left for a later
 * wipe. Call it after a write that erased personal data has committed.
 * Best effort: pages LMDB writes later may still carry stale bytes in
 * their unused gaps (its page buffers are reused without clearing), so
 * the live file is not guaranteed clean; a compacting backup is. Local:
 * its transactions are not in any change set (replicas do not wipe).
 * Thread-safe (also from a done callback). */
void hw_store_wipe_free(hw_store *s);

#define HW_STORE_GROUP_BUCKETS 11

typedef struct hw_store_stats {
    uint64_t map_size_bytes;  /* current map size */
    uint64_t map_used_bytes;  /* pages in use up to the last page */
    uint64_t commits;         /* durable group commits */
    uint64_t requests;        /* requests completed (any status) */
    uint64_t requests_failed; /* ... with a non-zero status */
    uint64_t largest_group;   /* most requests in one commit */
    uint64_t map_grows;       /* automatic map growths */
    uint64_t commit_failures; /* group commits that failed (disk full, I/O error): nothing of them kept */
    uint64_t stale_readers_cleared; /* by mdb_reader_check at open */
    uint64_t queued;                /* submitted and not yet completed */
    /* Group commits by size: [i] counts groups of at most 2^i requests
     * (1, 2, 4, ... 1024), not cumulative. */
    uint64_t group_sizes[HW_STORE_GROUP_BUCKETS];
    uint64_t committed_requests; /* requests in those group commits */
    uint64_t wipes;              /* hw_store_wipe_free runs completed */
    uint64_t pages_wiped;        /* free pages they filled with zeros */
    /* The write path's cost: CPU time of the thread that ran write groups
     * (the write functions, the commit's system calls and the done
     * callbacks), of which the done callbacks, and the wall time spent in
     * commits (writing pages and waiting for the disk). Nanoseconds. */
    uint64_t write_cpu_ns;
    uint64_t done_cpu_ns;
    uint64_t commit_wall_ns;
} hw_store_stats;

/* Fills *st. Counters are read without locks (each value is exact, the set
 * is not a snapshot). Thread-safe. */
void hw_store_get_stats(hw_store *s, hw_store_stats *st);

/* In a done callback on the writer: how many requests the group being
 * completed holds (how busy the writer is); 0 on any other thread. */
size_t hw_store_completing(const hw_store *s);

/* The data directory given at open (owned by the store). */
const char *hw_store_data_dir(const hw_store *s);

/* ------------------------------------------------------------------------
 * Replication (a replicated helpwired; see server/repl/repl.h)
 *
 * With a replicator set, the writer still runs every write group in one
 * transaction, but records what the group changes: every put and delete
 * (database, key, value) and the notes its requests add. Before the
 * commit, that change set is one entry handed to the replicator, which
 * returns once a majority of the replicas hold it; only then does the
 * writer commit the transaction (with the entry's index stored in it) and
 * complete the requests. Ids, numbers and times are therefore decided
 * once, here, and the other replicas apply the same bytes.
 *
 * The other replicas' writers apply committed entries with hw_store_apply:
 * the puts and deletes in one transaction that also stores the index, then
 * each note to the note handler (after the commit). An entry whose index is
 * not above the stored one is skipped, so a log replayed after a restart
 * changes nothing twice.
 *
 * Without a replicator (a single node) nothing is recorded and nothing of
 * this costs anything.
 * ---------------------------------------------------------------------- */

typedef struct hw_store_replicator {
    void *ctx;
    /* Writer thread, before it runs a group. HW_OK: this replica may write
     * now on a store holding every entry of the log (*ticket identifies
     * that state, for propose); HW_EAGAIN: not yet (a new leader applying
     * the entries of earlier terms): the writer applies what arrives and
     * asks again within a few milliseconds; HW_ENOTLEADER: the group fails
     * with it (the handlers answer UNAVAILABLE). Must not block. */
    int (*prepare)(void *ctx, uint64_t *ticket);
    /* Writer thread: proposes entry[0..len) computed on the state of ticket
     * and blocks until it is committed by a majority (HW_OK, *index set) or
     * cannot be (HW_ENOTLEADER: the leadership changed; the entry may
     * still commit under the next leader, and then comes back through
     * hw_store_apply like any other entry). entry is borrowed for the
     * call. Any other code fails the group with it. */
    int (*propose)(void *ctx, uint64_t ticket, const void *entry, size_t len, uint64_t *index);
    /* Any thread: whether this replica leads now (hw_store_is_leader). */
    bool (*is_leader)(void *ctx);
} hw_store_replicator;

/* Sets the replicator before the first write (right after hw_store_open);
 * r is copied. From then on hw_store_applied_index is the replicated
 * index, and commits skip the second fsync of LMDB's meta page
 * (MDB_NOMETASYNC): the raft log holds every committed entry, and a crash
 * that undoes the last commits is repaired by replaying it; before raft
 * drops entries from its log it calls hw_store_sync. HW_EINVALID after a
 * write or with a NULL function. */
int hw_store_set_replicator(hw_store *s, const hw_store_replicator *r);

/* Hands a committed entry of another replica (or of this one's earlier
 * leadership) to the writer, which applies it in order. entry is copied;
 * returns at once. Entries must be given in index order. Thread-safe.
 * @return HW_OK; HW_ENOMEM; HW_ECLOSED; HW_ECORRUPT (not an entry: the
 *   writer would refuse it; nothing is queued). */
int hw_store_apply(hw_store *s, uint64_t index, const void *entry, size_t len);

/* The index of the last entry in the store (committed by this writer or
 * applied): stored in the same transactions, so it survives restarts.
 * 0 on a single node that never replicated. Thread-safe (atomic load). */
uint64_t hw_store_applied_index(hw_store *s);

/* Calls cb(arg) once the applied index is at least index: at once on the
 * calling thread when it already is, else later on the writer thread right
 * after the commit that reaches it (or with ok false when the store
 * closes). cb must be cheap and must not block. Thread-safe.
 * @return HW_OK; HW_ENOMEM (cb is not called). */
typedef void (*hw_store_applied_fn)(void *arg, bool ok);
int hw_store_when_applied(hw_store *s, uint64_t index, hw_store_applied_fn cb, void *arg);

/* Notes: opaque bytes a write adds to its entry (the domain's effects, so
 * that every replica can tell its watchers). On a single node a no-op that
 * returns HW_OK. Writer only; dropped with the write's changes when it
 * rolls back. @return HW_OK; HW_ENOMEM; HW_ETOOBIG (over 16 MiB). */
int hw_store_txn_note(hw_store_txn *w, const void *note, size_t len);

/* True when w's changes are being replicated (notes are kept). */
bool hw_store_txn_replicated(const hw_store_txn *w);

/* Called on the writer thread for each note of an entry applied with
 * hw_store_apply, after its commit, in the order they were added; note is
 * borrowed for the call. Not called for this replica's own writes (their
 * requests' done callbacks run instead). Set before the first
 * hw_store_apply; set to NULL before ctx goes away: when it returns no note
 * is running and none will. Thread-safe. */
typedef void (*hw_store_note_fn)(void *ctx, uint64_t index, const void *note, size_t len);
void hw_store_set_note_handler(hw_store *s, hw_store_note_fn fn, void *ctx);

/* Flushes every commit to disk (mdb_env_sync, forced). Any thread.
 * HW_OK; HW_EIO. */
int hw_store_sync(hw_store *s);

/* Whether writes submitted here can succeed now: always on a single node;
 * with a replicator, whether its prepare would not say HW_ENOTLEADER.
 * Background work that acts outside the store before it writes (sending a
 * webhook, firing a timer) checks it so that only the leader acts.
 * Thread-safe. */
bool hw_store_is_leader(hw_store *s);

#endif
