/*
 * store: the LMDB engine under every helpwire record (contract: store.h).
 *
 * Why it is built this way:
 *
 * One writer, group commit. LMDB allows one write transaction at a time and
 * a durable commit costs an fsync (two, data then meta page). Instead of
 * every handler taking the write lock and paying the fsync, handlers
 * enqueue requests on a liburcu wait-free queue (cds_wfcq: enqueue is one
 * xchg, so a gRPC worker never blocks) and one writer thread drains it. The
 * writer opens one transaction and runs the waiting requests directly in
 * it; if one fails, the group is thrown away and run again with each
 * request in a nested child transaction (mdb_txn_begin with the group as
 * parent), committed on success or aborted on error, so a request that
 * fails a constraint disappears alone (see run_group). Then one mdb_txn_commit makes the whole group
 * durable, and only then are the done callbacks called. Under load the
 * group grows by itself (everything that arrived during the last fsync), so
 * the fsync cost per request falls with concurrency.
 *
 * Writer sleep. When the queue is empty the writer sleeps on a futex word
 * (wake_seq). A submitter bumps wake_seq after its enqueue and calls
 * FUTEX_WAKE only when the writer announced it sleeps; because the writer
 * samples wake_seq before looking at the queue, a request that arrives
 * between its last look and its sleep changes the word and FUTEX_WAIT
 * returns at once: no lost wake-ups, no lock.
 *
 * Closing. close sets `closing`; submitters announce themselves in
 * `submitters` before they test `closing`, so once the writer has seen
 * closing, submitters == 0 and an empty queue, nothing more can arrive: every
 * accepted request has been completed when the thread exits.
 *
 * Map growth. mdb_env_set_mapsize remaps the file, so no transaction of the
 * process may hold pointers into the map while it runs (LMDB's rule: "no
 * transactions active"). A reset MDB_NOTLS read transaction holds none; a
 * renewed one does. The writer grows only between groups (its own
 * transaction aborted or committed), and excludes readers with a gate
 * instead of a lock on the read path: each reader owns an `active` flag on
 * its own cache line, set (seq_cst) before mdb_txn_renew and cleared after
 * mdb_txn_reset; the writer sets `grow_pending` (seq_cst), then waits for
 * every registered reader's flag to drop. A reader that sees grow_pending
 * after raising its flag lowers it and sleeps on the futex until the growth
 * is over. This is Dekker's handshake: either the reader sees the growth or
 * the writer sees the reader. Cost on the read path: one seq_cst store and
 * one load per read. Growth doubles the map (up to max_map_size_bytes), and
 * the requests that met MDB_MAP_FULL are rolled back and run again (their
 * write fn is documented as re-runnable).
 *
 * Durability: default LMDB sync mode (no MDB_NOSYNC/NOMETASYNC), so a
 * returned mdb_txn_commit is on disk and a kill -9 at any moment leaves the
 * last committed state. Stale reader slots of killed processes are released
 * with mdb_reader_check at open. An flock on helpwire.lock keeps a second
 * process from opening the same store (its map growth would surprise ours).
 *
 * Schema upgrades. The engine owns the schema record: it refuses a foreign
 * or newer file and stamps an older one with the current version before
 * anything moves. The upgrade work itself needs the record layouts, which
 * live above the engine, so it is handed in at open as a table of steps
 * (hw_store__open, store_internal.h; the table is migrate.c's, given by
 * hw_store_open in open.c): the engine asks each step whether it has work,
 * in the open's transaction, and runs it as ordinary write requests once
 * the writer is up. Calls thus go one way, migrate.c -> the engine.
 *
 * Not here: record layouts (records.c), schema upgrades (migrate.c), the
 * consistency check (check.c), input validation (domain layer).
 */
#include "server/store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <urcu/wfcqueue.h>

#include "helpwire/store/v1/records.pb-c.h"
#include "server/base/files.h"
#include "server/store/entry.h"
#include "server/store/store_internal.h"

/* ThreadSanitizer cannot see the ordering liburcu's queue provides (its
 * atomics live in an uninstrumented library), so the hand-over of a request
 * is announced to it explicitly. */
#if defined(__SANITIZE_THREAD__)
#define HW_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HW_TSAN 1
#endif
#endif
#ifdef HW_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define HW_HANDOFF_RELEASE(p) __tsan_release(p)
#define HW_HANDOFF_ACQUIRE(p) __tsan_acquire(p)
#else
#define HW_HANDOFF_RELEASE(p) ((void)(p))
#define HW_HANDOFF_ACQUIRE(p) ((void)(p))
#endif

#define HW_DEFAULT_MAP_BYTES ((size_t)64 << 20)
#define HW_DEFAULT_MAX_MAP_BYTES ((size_t)1 << 40)
#define HW_DEFAULT_MAX_READERS 126u
#define HW_DEFAULT_MAX_GROUP 1024u
#define HW_SCHEMA_MAGIC "helpwire.store"
#define HW_KV_NS_MAX 64u
#define HW_KV_KEY_MAX 400u
#define HW_SEQ_NAME_MAX 200u

/* The named databases; index = enum hw_db. */
static const char *const HW_DB_NAMES[HW_DB_COUNT] = {
    [HW_DB_META] = "meta",
    [HW_DB_COUNTERS] = "counters",
    [HW_DB_KV] = "kv",
    [HW_DB_CUSTOMERS] = "customers",
    [HW_DB_IDENTITIES] = "identities",
    [HW_DB_AGENTS] = "agents",
    [HW_DB_AGENTS_BY_SKILL] = "agents_by_skill",
    [HW_DB_SKILLS] = "skills",
    [HW_DB_TICKETS] = "tickets",
    [HW_DB_TICKETS_BY_NUMBER] = "tickets_by_number",
    [HW_DB_TICKETS_BY_STATUS] = "tickets_by_status",
    [HW_DB_TICKETS_BY_QUEUE] = "tickets_by_queue",
    [HW_DB_TICKETS_BY_QUEUE_STATUS] = "tickets_by_queue_status",
    [HW_DB_TICKETS_BY_ASSIGNEE] = "tickets_by_assignee",
    [HW_DB_TICKETS_BY_CUSTOMER] = "tickets_by_customer",
    [HW_DB_TICKETS_BY_PRIORITY] = "tickets_by_priority",
    [HW_DB_TICKET_EVENTS] = "ticket_events",
    [HW_DB_TICKET_MESSAGES] = "ticket_messages",
    [HW_DB_ARTICLES] = "articles",
    [HW_DB_ARTICLES_BY_LOCALE] = "articles_by_locale",
    [HW_DB_FAQS] = "faqs",
    [HW_DB_FAQS_BY_LOCALE] = "faqs_by_locale",
    [HW_DB_SURVEYS] = "surveys",
    [HW_DB_SURVEYS_BY_TOKEN] = "surveys_by_token",
    [HW_DB_SURVEYS_BY_SENT] = "surveys_by_sent",
    [HW_DB_OUTBOX] = "outbox",
    [HW_DB_DEDUPE] = "dedupe",
    [HW_DB_IDEMPOTENCY] = "idempotency",
    [HW_DB_TOKENS] = "tokens",
    [HW_DB_TOKENS_BY_HASH] = "tokens_by_hash",
    [HW_DB_TICKET_LOG] = "ticket_log",
    [HW_DB_OUTBOX_FAILED] = "outbox_failed",
    [HW_DB_OUTBOX_FAILED_BY_TIME] = "outbox_failed_by_time",
    [HW_DB_TIMERS_BY_DUE] = "timers_by_due",
    [HW_DB_TIMERS_BY_SUBJECT] = "timers_by_subject",
    [HW_DB_SLA_POLICIES] = "sla_policies",
    [HW_DB_AUDIT] = "audit",
    [HW_DB_WIPE] = "wipe_scratch",
    [HW_DB_CHUNKS] = "chunks",
    [HW_DB_CHUNK_META] = "chunk_meta",
    [HW_DB_ATTACHMENTS] = "attachments",
    [HW_DB_ATTACHMENT_REFS] = "attachment_refs",
    [HW_DB_BLOB_PENDING] = "blob_pending",
    [HW_DB_TICKET_WAL] = "ticket_wal",
    [HW_DB_TICKET_HEADS] = "ticket_heads",
};

typedef struct hw_store_req {
    struct cds_wfcq_node node;
    hw_store_write_fn fn;
    hw_store_done_fn done;
    void *ctx;
    int status;
    /* hw_store_write only: the waiter sleeps on `state` (REQ_PENDING ->
     * REQ_SLEEPING -> REQ_DONE) instead of a mutex and condvar, so the
     * writer wakes it with one FUTEX_WAKE, and only if it sleeps. Both
     * sides hold a reference; the last one frees the request. */
    int sync;
    atomic_int state;
    atomic_int refs;
} hw_store_req;

enum { REQ_PENDING = 0, REQ_SLEEPING = 1, REQ_DONE = 2 };

struct hw_store_reader {
    _Alignas(64) atomic_int active; /* the gate flag; own cache line */
    hw_store *store;
    MDB_txn *txn; /* NULL for a gate-only participant (backup) */
    hw_store_txn view;
    int open;
    hw_store_reader *prev, *next;
};

typedef struct hw_census hw_census;

struct hw_store {
    MDB_env *env;
    MDB_dbi dbi[HW_DB_COUNT];
    char *data_dir;
    int lock_fd;
    size_t max_map_bytes;
    unsigned max_group;
    const hw_store_upgrade *upgrades; /* given at open (hw_store__open) */
    size_t n_upgrades;
    uint32_t upgrades_due; /* bit i: upgrades[i] has work (set at open) */

    /* Submission side, touched by every submitter. */
    _Alignas(64) struct __cds_wfcq_head qhead;
    struct cds_wfcq_tail qtail;
    _Alignas(64) atomic_int wake_seq;
    atomic_int writer_sleeping;
    atomic_int closing;
    atomic_int submitters;
    atomic_int wipe_due; /* hw_store_wipe_free asked for: the writer wipes when idle */

    /* Writer thread's own state. */
    _Alignas(64) pthread_t writer;
    int writer_started;
    hw_store_req **batch;
    hw_arena *scratch;

    /* Reader gate for map growth. */
    _Alignas(64) atomic_int grow_pending;
    pthread_mutex_t readers_mu;
    hw_store_reader *readers;

    /* Requests of the group whose done callbacks run now (writer only;
     * hw_store_completing). */
    size_t completing;

    /* Page census (hw_store_options.page_census_every; writer only). */
    unsigned census_every;
    hw_census *census;

    /* Statistics. */
    atomic_uint_least64_t commits, requests, requests_failed, largest_group, map_grows, commit_failures;
    atomic_uint_least64_t submitted, committed_requests;
    atomic_uint_least64_t wipes, pages_wiped;
    /* The write path's own cost (hw_store_stats): CPU of the thread running
     * groups, of which done callbacks, and the wall time of the commits. */
    atomic_uint_least64_t write_cpu_ns, done_cpu_ns, commit_wall_ns;
    atomic_uint_least64_t group_sizes[HW_STORE_GROUP_BUCKETS];
    uint64_t stale_readers_cleared;

    /* Replication (store.h): set before the first write, then read-only. */
    _Atomic bool replicated; /* read by the writer from its next loop on */
    hw_store_replicator repl;
    pthread_mutex_t note_mu; /* note_fn, note_ctx; held while notes run */
    hw_store_note_fn note_fn;
    void *note_ctx;
    hw_entry cap;                  /* the writer's change set of the group */
    uint64_t proposed_index;       /* the index propose gave the group's entry */
    bool apply_instead;            /* the group's transaction is full: apply the entry instead */
    _Alignas(64) atomic_uint_least64_t applied; /* last entry in the store */
    pthread_mutex_t apply_mu;      /* jobs and waiters */
    struct apply_job *jobs_head, *jobs_tail;
    struct applied_waiter *waiters;
    size_t n_waiters, cap_waiters;
};

typedef struct apply_job {
    struct apply_job *next;
    uint64_t index;
    size_t len;
    unsigned char bytes[];
} apply_job;

typedef struct applied_waiter {
    uint64_t index;
    hw_store_applied_fn cb;
    void *arg;
} applied_waiter;

/* The meta key holding the applied index (8 bytes, big-endian). */
static const char APPLIED_KEY[] = "repl_applied_index";

/* ------------------------------------------------------------------------
 * Small helpers
 * ---------------------------------------------------------------------- */

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void futex_wait(atomic_int *addr, int expected, const struct timespec *timeout)
{
    syscall(SYS_futex, (int *)addr, FUTEX_WAIT_PRIVATE, expected, timeout, NULL, 0);
}

static void futex_wake(atomic_int *addr, int n)
{
    syscall(SYS_futex, (int *)addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

static int lmdb_to_hw(int rc)
{
    switch (rc) {
    case 0:
        return HW_OK;
    case MDB_NOTFOUND:
        return HW_ENOTFOUND;
    case MDB_KEYEXIST:
        return HW_EEXISTS;
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
    case MDB_READERS_FULL:
    case MDB_DBS_FULL:
        return HW_EFULL;
    case ENOMEM:
        return HW_ENOMEM;
    case ENOSPC:
    case EDQUOT:
        return HW_ENOSPACE;
    case EINVAL:
    case MDB_BAD_VALSIZE:
    case MDB_BAD_DBI:
        return HW_EINVALID;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
        return HW_ECORRUPT;
    default:
        return HW_EIO;
    }
}

int hw_store__err(hw_store_txn *t, int mdb_rc)
{
    if (mdb_rc == MDB_MAP_FULL)
        t->full = HW_TXN_MAP_FULL;
    else if (mdb_rc == MDB_TXN_FULL && t->full == HW_TXN_FITS)
        t->full = HW_TXN_TOO_LARGE;
    return lmdb_to_hw(mdb_rc);
}

int hw_store__get(hw_store_txn *t, int db, const void *k, size_t kl, MDB_val *v)
{
    if (kl == 0 || kl > 511)
        return HW_EINVALID;
    MDB_val key = {.mv_size = kl, .mv_data = (void *)k};
    return hw_store__err(t, mdb_get(t->txn, t->dbi[db], &key, v));
}

/* ---- page census (a measuring aid) ------------------------------------------
 *
 * What a write group costs in bytes is the number of distinct pages it
 * dirties. The census notes (database, key) of every put of a group and,
 * after the commit, reads each record back: LMDB returns a pointer into
 * the map, so (pointer - map address) / page size is the record's leaf
 * page (or first overflow page). Branch pages, the free list and the meta
 * page are not seen: the census tells which databases' leaves a request
 * dirties, the rest is the difference to the bytes written. */
#define CENSUS_KEYS 65536

struct hw_census {
    hw_arena *keys; /* the group's keys */
    struct census_key {
        int db;
        const void *k;
        size_t kl;
    } *list;
    size_t n;
    uint64_t groups, requests;
    uint64_t records[HW_DB_COUNT], pages[HW_DB_COUNT];
    uint64_t *seen; /* the group's pages, for counting distinct ones */
};

static void census_note(hw_store *s, int db, const void *k, size_t kl)
{
    hw_census *c = s->census;
    if (!c || c->n == CENSUS_KEYS)
        return;
    void *copy = hw_arena_alloc(c->keys, kl);
    if (!copy)
        return;
    memcpy(copy, k, kl);
    c->list[c->n++] = (struct census_key){db, copy, kl};
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* After a successful commit of `requests` requests: count, maybe print. */
static void census_count(hw_store *s, size_t requests)
{
    hw_census *c = s->census;
    MDB_txn *txn;
    MDB_envinfo info;
    MDB_stat est;
    if (mdb_env_info(s->env, &info) != 0 || mdb_env_stat(s->env, &est) != 0 ||
        mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
        goto reset;
    for (int db = 0; db < HW_DB_COUNT; db++) {
        size_t m = 0;
        for (size_t i = 0; i < c->n; i++) {
            if (c->list[i].db != db)
                continue;
            MDB_val k = {.mv_size = c->list[i].kl, .mv_data = (void *)c->list[i].k}, v;
            if (mdb_get(txn, s->dbi[db], &k, &v) != 0)
                continue; /* deleted again in the same group */
            c->seen[m++] = (uint64_t)((const char *)v.mv_data - (const char *)info.me_mapaddr) / est.ms_psize;
            c->records[db]++;
        }
        qsort(c->seen, m, sizeof *c->seen, cmp_u64);
        for (size_t i = 0; i < m; i++)
            if (i == 0 || c->seen[i] != c->seen[i - 1])
                c->pages[db]++;
    }
    mdb_txn_abort(txn);
    c->groups++;
    c->requests += requests;
    if (c->groups == s->census_every) {
        char line[2048];
        int len = snprintf(line, sizeof line, "store census: %llu groups, %.1f requests per group; per request "
                                              "(databases with records):",
                           (unsigned long long)c->groups, (double)c->requests / (double)c->groups);
        double total = 0;
        for (int db = 0; db < HW_DB_COUNT; db++) {
            if (!c->pages[db] || len >= (int)sizeof line)
                continue;
            double pp = (double)c->pages[db] / (double)c->requests;
            total += pp;
            len += snprintf(line + len, sizeof line - (size_t)len, " %s %.3f pages (%.2f records)",
                            HW_DB_NAMES[db], pp, (double)c->records[db] / (double)c->requests);
        }
        if (len < (int)sizeof line)
            snprintf(line + len, sizeof line - (size_t)len, "; leaves %.3f pages = %.0f bytes", total,
                     total * est.ms_psize);
        fprintf(stderr, "%s\n", line);
        /* Each line tells about its own groups. */
        c->groups = c->requests = 0;
        memset(c->records, 0, sizeof c->records);
        memset(c->pages, 0, sizeof c->pages);
    }
reset:
    c->n = 0;
    hw_arena_reset(c->keys);
}

static void census_drop(hw_store *s)
{
    if (s->census) {
        s->census->n = 0;
        hw_arena_reset(s->census->keys);
    }
}

static void census_free(hw_census *c)
{
    if (!c)
        return;
    hw_arena_destroy(c->keys);
    free(c->list);
    free(c->seen);
    free(c);
}

static hw_census *census_new(void)
{
    hw_census *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->keys = hw_arena_create(1 << 20);
    c->list = calloc(CENSUS_KEYS, sizeof *c->list);
    c->seen = calloc(CENSUS_KEYS, sizeof *c->seen);
    if (!c->keys || !c->list || !c->seen) {
        census_free(c);
        return NULL;
    }
    return c;
}

int hw_store__put(hw_store_txn *t, int db, const void *k, size_t kl, const void *v, size_t vl, unsigned flags)
{
    if (!t->writable || kl == 0 || kl > 511)
        return HW_EINVALID;
    if (t->wipe && !t->zeroing) {
        int zrc = hw_store__zero(t, db, k, kl);
        if (zrc != HW_OK && zrc != HW_ENOTFOUND)
            return zrc;
    }
    MDB_val key = {.mv_size = kl, .mv_data = (void *)k};
    MDB_val val = {.mv_size = vl, .mv_data = (void *)v};
    if (t->cap)
        hw_entry_flush(t->cap);
    int rc = mdb_put(t->txn, t->dbi[db], &key, &val, flags);
    if (rc == 0 && t->cap)
        hw_entry_add(t->cap, HW_ENTRY_PUT, db, k, kl, v, vl);
    if (rc == 0 && t->store && t->store->census)
        census_note(t->store, db, k, kl);
    return hw_store__err(t, rc);
}

int hw_store__reserve(hw_store_txn *t, int db, const void *k, size_t kl, size_t vl, unsigned flags, void **v)
{
    if (!t->writable || kl == 0 || kl > 511)
        return HW_EINVALID;
    if (t->wipe && !t->zeroing) {
        int zrc = hw_store__zero(t, db, k, kl);
        if (zrc != HW_OK && zrc != HW_ENOTFOUND)
            return zrc;
    }
    MDB_val key = {.mv_size = kl, .mv_data = (void *)k};
    MDB_val val = {.mv_size = vl, .mv_data = NULL};
    if (t->cap)
        hw_entry_flush(t->cap);
    int rc = mdb_put(t->txn, t->dbi[db], &key, &val, flags | MDB_RESERVE);
    if (rc != 0)
        return hw_store__err(t, rc);
    *v = val.mv_data;
    if (t->cap)
        hw_entry_add_reserved(t->cap, db, k, kl, val.mv_data, vl);
    if (t->store && t->store->census)
        census_note(t->store, db, k, kl);
    return HW_OK;
}

int hw_store__put_msg(hw_store_txn *t, int db, const void *k, size_t kl, const ProtobufCMessage *m,
                      unsigned flags)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    void *v;
    int rc = hw_store__reserve(t, db, k, kl, n, flags, &v);
    if (rc != HW_OK)
        return rc;
    return protobuf_c_message_pack(m, v) == n ? HW_OK : HW_EIO;
}

int hw_store__del(hw_store_txn *t, int db, const void *k, size_t kl)
{
    if (!t->writable || kl == 0 || kl > 511)
        return HW_EINVALID;
    if (t->wipe && !t->zeroing) {
        int zrc = hw_store__zero(t, db, k, kl);
        if (zrc != HW_OK && zrc != HW_ENOTFOUND)
            return zrc;
    }
    MDB_val key = {.mv_size = kl, .mv_data = (void *)k};
    if (t->cap)
        hw_entry_flush(t->cap);
    int rc = mdb_del(t->txn, t->dbi[db], &key, NULL);
    if (rc == 0 && t->cap)
        hw_entry_add(t->cap, HW_ENTRY_DEL, db, k, kl, NULL, 0);
    return hw_store__err(t, rc);
}

int hw_store__cursor_del(hw_store_txn *t, int db, MDB_cursor *c)
{
    if (!t->writable)
        return HW_EINVALID;
    MDB_val k, v;
    if (t->wipe) {
        int rc = mdb_cursor_get(c, &k, &v, MDB_GET_CURRENT);
        if (rc != 0)
            return hw_store__err(t, rc);
        if (v.mv_size > 0) {
            MDB_val z = {.mv_size = v.mv_size, .mv_data = NULL};
            if (t->cap)
                hw_entry_flush(t->cap);
            if ((rc = mdb_cursor_put(c, &k, &z, MDB_CURRENT | MDB_RESERVE)) != 0)
                return hw_store__err(t, rc);
            memset(z.mv_data, 0, v.mv_size);
            if (t->cap)
                hw_entry_add_reserved(t->cap, db, k.mv_data, k.mv_size, z.mv_data, v.mv_size);
        }
    }
    if (t->cap) {
        hw_entry_flush(t->cap);
        int rc = mdb_cursor_get(c, &k, &v, MDB_GET_CURRENT);
        if (rc != 0)
            return hw_store__err(t, rc);
        hw_entry_add(t->cap, HW_ENTRY_DEL, db, k.mv_data, k.mv_size, NULL, 0);
    }
    return hw_store__err(t, mdb_cursor_del(c, 0));
}

int hw_store__zero(hw_store_txn *t, int db, const void *k, size_t kl)
{
    MDB_val old;
    int rc = hw_store__get(t, db, k, kl, &old);
    if (rc != HW_OK)
        return rc;
    if (old.mv_size == 0)
        return HW_OK;
    void *v;
    t->zeroing = 1;
    rc = hw_store__reserve(t, db, k, kl, old.mv_size, 0, &v);
    t->zeroing = 0;
    if (rc != HW_OK)
        return rc;
    memset(v, 0, old.mv_size);
    return HW_OK;
}

int hw_store__wipe_del(hw_store_txn *t, int db, const void *k, size_t kl)
{
    int rc = hw_store__zero(t, db, k, kl);
    return rc != HW_OK ? rc : hw_store__del(t, db, k, kl);
}

int hw_store__wipe_put_msg(hw_store_txn *t, int db, const void *k, size_t kl, const ProtobufCMessage *m)
{
    int rc = hw_store__zero(t, db, k, kl);
    if (rc != HW_OK && rc != HW_ENOTFOUND)
        return rc;
    return hw_store__put_msg(t, db, k, kl, m, 0);
}

int hw_store__cursor(hw_store_txn *t, int db, MDB_cursor **c)
{
    return hw_store__err(t, mdb_cursor_open(t->txn, t->dbi[db], c));
}

int hw_store__count(hw_store_txn *t, int db, uint64_t *n)
{
    MDB_stat st;
    int rc = mdb_stat(t->txn, t->dbi[db], &st);
    if (rc != 0)
        return hw_store__err(t, rc);
    *n = st.ms_entries;
    return HW_OK;
}

static uint64_t now_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void stat_max(atomic_uint_least64_t *a, uint64_t v)
{
    uint64_t cur = atomic_load_explicit(a, memory_order_relaxed);
    while (cur < v &&
           !atomic_compare_exchange_weak_explicit(a, &cur, v, memory_order_relaxed, memory_order_relaxed))
        ;
}

/* ------------------------------------------------------------------------
 * Reader gate (see the top comment: map growth)
 * ---------------------------------------------------------------------- */

static void gate_enter(hw_store_reader *r)
{
    hw_store *s = r->store;
    for (;;) {
        atomic_store(&r->active, 1);
        if (!atomic_load(&s->grow_pending))
            return;
        atomic_store(&r->active, 0);
        while (atomic_load(&s->grow_pending))
            futex_wait(&s->grow_pending, 1, NULL);
    }
}

static void gate_leave(hw_store_reader *r)
{
    atomic_store(&r->active, 0);
}

static void wait_reader_idle(hw_store_reader *r)
{
    unsigned spins = 0;
    while (atomic_load(&r->active)) {
        if (++spins < 64) {
            sched_yield();
        } else {
            struct timespec ts = {0, 100 * 1000};
            nanosleep(&ts, NULL);
        }
    }
}

/* Doubles the map (capped). Writer thread only, with no write transaction
 * open. Returns HW_OK or HW_EFULL / HW_EIO. */
static int grow_map(hw_store *s)
{
    MDB_envinfo info;
    int rc = mdb_env_info(s->env, &info);
    if (rc != 0)
        return lmdb_to_hw(rc);
    size_t cur = info.me_mapsize;
    if (cur >= s->max_map_bytes)
        return HW_EFULL;
    size_t next = cur > s->max_map_bytes / 2 ? s->max_map_bytes : cur * 2;

    atomic_store(&s->grow_pending, 1);
    pthread_mutex_lock(&s->readers_mu);
    for (hw_store_reader *r = s->readers; r; r = r->next)
        wait_reader_idle(r);
    rc = mdb_env_set_mapsize(s->env, next);
    pthread_mutex_unlock(&s->readers_mu);
    atomic_store(&s->grow_pending, 0);
    futex_wake(&s->grow_pending, INT_MAX);
    if (rc != 0)
        return lmdb_to_hw(rc);
    atomic_fetch_add_explicit(&s->map_grows, 1, memory_order_relaxed);
    return HW_OK;
}

/* ------------------------------------------------------------------------
 * Writer thread
 * ---------------------------------------------------------------------- */

/* CPU time of the calling thread, or wall time, in nanoseconds. */
static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void complete_each(hw_store *s, hw_store_req **reqs, size_t n);

static void complete(hw_store *s, hw_store_req **reqs, size_t n)
{
    uint64_t t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    s->completing = n;
    complete_each(s, reqs, n);
    s->completing = 0;
    atomic_fetch_add_explicit(&s->done_cpu_ns, clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0, memory_order_relaxed);
}

static void complete_each(hw_store *s, hw_store_req **reqs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        hw_store_req *r = reqs[i];
        if (r->status != HW_OK)
            atomic_fetch_add_explicit(&s->requests_failed, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->requests, 1, memory_order_relaxed);
        if (r->sync) {
            if (atomic_exchange(&r->state, REQ_DONE) == REQ_SLEEPING)
                futex_wake(&r->state, 1);
            if (atomic_fetch_sub(&r->refs, 1) == 1)
                free(r);
            continue;
        }
        if (r->done)
            r->done(r->ctx, r->status);
        free(r);
    }
}

static int run_one_in(hw_store *s, MDB_txn *parent, hw_store_req *r, int *full, hw_store_txn *wp);

/* Runs one request in a child of parent. Returns its status; *full tells
 * whether it must be retried in a fresh (and perhaps larger) transaction. */
static int run_one(hw_store *s, MDB_txn *parent, hw_store_req *r, int *full)
{
    hw_store_txn w = {.store = s, .dbi = s->dbi, .writable = 1, .arena = s->scratch,
                      .cap = s->replicated ? &s->cap : NULL};
    size_t mark = s->replicated ? hw_entry_mark(&s->cap) : 0;
    int st = run_one_in(s, parent, r, full, &w);
    if (st != HW_OK && s->replicated)
        hw_entry_truncate(&s->cap, mark);
    return st;
}

static int run_one_in(hw_store *s, MDB_txn *parent, hw_store_req *r, int *full, hw_store_txn *wp)
{
    hw_store_txn w = *wp;
    int rc = mdb_txn_begin(s->env, parent, 0, &w.txn);
    if (rc != 0) {
        int st = hw_store__err(&w, rc);
        *full = w.full;
        return st;
    }
    hw_arena_reset(s->scratch);
    int st = r->fn(&w, r->ctx);
    if (st > 0)
        st = HW_EINVALID;
    if (w.full != HW_TXN_FITS) {
        mdb_txn_abort(w.txn);
        *full = w.full;
        return HW_EFULL;
    }
    if (st != HW_OK) {
        mdb_txn_abort(w.txn);
        return st;
    }
    rc = mdb_txn_commit(w.txn); /* into the parent: no I/O */
    if (rc != 0) {
        st = hw_store__err(&w, rc);
        *full = w.full;
    }
    return st;
}

/* Runs one request directly in the group transaction (no child). Returns
 * its status; on anything but HW_OK with *full == HW_TXN_FITS the group
 * transaction may hold part of its changes and must be thrown away. */
static int run_direct(hw_store *s, MDB_txn *txn, hw_store_req *r, int *full)
{
    hw_store_txn w = {.store = s, .dbi = s->dbi, .writable = 1, .arena = s->scratch, .txn = txn,
                      .cap = s->replicated ? &s->cap : NULL};
    hw_arena_reset(s->scratch);
    int st = r->fn(&w, r->ctx);
    *full = w.full;
    return st > 0 ? HW_EINVALID : st;
}

/* ---- replication on the writer ------------------------------------------ */

static void put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

static int put_applied(hw_store *s, MDB_txn *txn, uint64_t index)
{
    unsigned char b[8];
    put_be64(b, index);
    MDB_val k = {.mv_size = sizeof APPLIED_KEY - 1, .mv_data = (void *)APPLIED_KEY};
    MDB_val v = {.mv_size = 8, .mv_data = b};
    return mdb_put(txn, s->dbi[HW_DB_META], &k, &v, 0);
}

/* Calls the waiters whose index is reached (writer thread, after a commit). */
static void fire_waiters(hw_store *s)
{
    uint64_t now = atomic_load(&s->applied);
    for (;;) {
        applied_waiter w = {0};
        bool found = false;
        pthread_mutex_lock(&s->apply_mu);
        for (size_t i = 0; i < s->n_waiters; i++) {
            if (s->waiters[i].index <= now) {
                w = s->waiters[i];
                s->waiters[i] = s->waiters[--s->n_waiters];
                found = true;
                break;
            }
        }
        pthread_mutex_unlock(&s->apply_mu);
        if (!found)
            return;
        w.cb(w.arg, true);
    }
}

typedef struct apply_run {
    hw_store *s;
    MDB_txn *txn;
    bool collect_notes;
    const void **notes;
    size_t *note_lens;
    size_t n_notes, cap_notes;
} apply_run;

static int apply_op(void *ctx, int kind, int db, const void *k, size_t kl, const void *v, size_t vl)
{
    apply_run *a = ctx;
    MDB_val key = {.mv_size = kl, .mv_data = (void *)k};
    MDB_val val = {.mv_size = vl, .mv_data = (void *)v};
    int rc = 0;
    switch (kind) {
    case HW_ENTRY_PUT:
        rc = mdb_put(a->txn, a->s->dbi[db], &key, &val, 0);
        break;
    case HW_ENTRY_DEL:
        rc = mdb_del(a->txn, a->s->dbi[db], &key, NULL);
        if (rc == MDB_NOTFOUND)
            rc = 0;
        break;
    case HW_ENTRY_NOTE:
        if (!a->collect_notes)
            break;
        if (a->n_notes == a->cap_notes) {
            size_t cap = a->cap_notes ? 2 * a->cap_notes : 8;
            const void **n = realloc(a->notes, cap * sizeof *n);
            size_t *l = n ? realloc(a->note_lens, cap * sizeof *l) : NULL;
            if (n)
                a->notes = n;
            if (!n || !l)
                return ENOMEM;
            a->note_lens = l;
            a->cap_notes = cap;
        }
        a->notes[a->n_notes] = v;
        a->note_lens[a->n_notes++] = vl;
        break;
    }
    return rc;
}

/* Applies entry bytes at index in one transaction (growing the map as
 * needed), then, with notes, hands the notes to the note handler. Returns
 * 0 or an LMDB / errno code. Writer thread. */
static int apply_entry(hw_store *s, uint64_t index, const void *buf, size_t len, bool notes)
{
    apply_run a = {.s = s, .collect_notes = notes};
    int rc;
    for (;;) {
        a.n_notes = 0;
        rc = mdb_txn_begin(s->env, NULL, 0, &a.txn);
        if (rc != 0)
            break;
        rc = hw_entry_walk(buf, len, HW_DB_COUNT, apply_op, &a);
        if (rc == 0)
            rc = put_applied(s, a.txn, index);
        if (rc == 0) {
            rc = mdb_txn_commit(a.txn);
        } else {
            mdb_txn_abort(a.txn);
        }
        if ((rc == MDB_MAP_FULL || rc == MDB_TXN_FULL) && grow_map(s) == HW_OK)
            continue;
        break;
    }
    if (rc == 0) {
        atomic_store(&s->applied, index);
        atomic_fetch_add_explicit(&s->commits, 1, memory_order_relaxed);
        pthread_mutex_lock(&s->note_mu);
        for (size_t i = 0; s->note_fn && i < a.n_notes; i++)
            s->note_fn(s->note_ctx, index, a.notes[i], a.note_lens[i]);
        pthread_mutex_unlock(&s->note_mu);
        fire_waiters(s);
    }
    free(a.notes);
    free(a.note_lens);
    return rc;
}

/* Applies the entries waiting (hw_store_apply), in order. A failure to
 * apply a committed entry leaves this replica unable to follow: it stops
 * (the next start applies the entry from the log again). */
static void run_jobs(hw_store *s)
{
    for (;;) {
        pthread_mutex_lock(&s->apply_mu);
        apply_job *j = s->jobs_head;
        if (j) {
            s->jobs_head = j->next;
            if (!s->jobs_head)
                s->jobs_tail = NULL;
        }
        pthread_mutex_unlock(&s->apply_mu);
        if (!j)
            return;
        if (j->index > atomic_load(&s->applied)) {
            int rc = apply_entry(s, j->index, j->bytes, j->len, true);
            if (rc != 0) {
                fprintf(stderr, "store: cannot apply replicated entry %llu (%s); stopping\n",
                        (unsigned long long)j->index, rc > 0 ? mdb_strerror(rc) : hw_strerror(rc));
                abort();
            }
        }
        free(j);
    }
}

static bool jobs_waiting(hw_store *s)
{
    pthread_mutex_lock(&s->apply_mu);
    bool any = s->jobs_head != NULL;
    pthread_mutex_unlock(&s->apply_mu);
    return any;
}

/* Until the replicator lets this replica write: applies what arrives. */
static int repl_prepare(hw_store *s, uint64_t *ticket)
{
    for (int tries = 0;; tries++) {
        run_jobs(s);
        int rc = s->repl.prepare(s->repl.ctx, ticket);
        if (rc == HW_OK && jobs_waiting(s))
            continue; /* the ticket must stand for a store with every job */
        if (rc != HW_EAGAIN)
            return rc;
        if (tries >= 5000) /* about 10 s: the client's deadline is long gone */
            return HW_ENOTLEADER;
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* Proposes the group's change set; on HW_OK the index is stored in txn. */
static int repl_propose(hw_store *s, MDB_txn *txn, uint64_t ticket)
{
    hw_entry_flush(&s->cap);
    if (s->cap.failed)
        return HW_ENOMEM;
    if (hw_entry_empty(&s->cap))
        return HW_OK; /* nothing changed: nothing to replicate */
    uint64_t index = 0;
    s->proposed_index = 0;
    int rc = s->repl.propose(s->repl.ctx, ticket, s->cap.buf, s->cap.len, &index);
    if (rc != HW_OK)
        return rc;
    s->proposed_index = index;
    int mrc = put_applied(s, txn, index);
    if (mrc == MDB_MAP_FULL || mrc == MDB_TXN_FULL) {
        /* No room left for the index in this transaction: the caller
         * throws it away and applies the entry's bytes in a grown map. */
        s->apply_instead = true;
    } else if (mrc != 0) {
        fprintf(stderr, "store: cannot record replicated entry %llu (%s); stopping\n", (unsigned long long)index,
                mdb_strerror(mrc));
        abort();
    }
    return HW_OK;
}

/* Applies batch[0..n) in as few durable commits as the map allows.
 *
 * Optimistic first: every request runs directly in the group transaction,
 * which costs nothing per request. LMDB's nested transactions, which let a
 * failing request roll back alone, cost a dirty-page list and a copy of
 * every page touched per request; so they are used only when needed: at
 * the first request of a group that fails (or finds the map full), the
 * group transaction is thrown away and the whole group runs again with a
 * child transaction per request. Requests may run twice; the write fn
 * contract allows it (store.h), and a failing request fails again the same
 * way on the same state. */
static void run_group(hw_store *s, hw_store_req **batch, size_t n)
{
    size_t i = 0;
    bool nested = false;
    while (i < n) {
        size_t start = i;
        int full = HW_TXN_FITS;
        MDB_txn *txn = NULL;
        uint64_t ticket = 0;
        if (s->replicated) {
            int prc = repl_prepare(s, &ticket);
            if (prc != HW_OK) {
                for (size_t j = i; j < n; j++)
                    batch[j]->status = prc;
                complete(s, batch + i, n - i);
                return;
            }
            hw_entry_reset(&s->cap);
        }
        census_drop(s); /* a group run again notes its keys again */
        int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
        if (rc != 0) {
            for (size_t j = i; j < n; j++)
                batch[j]->status = lmdb_to_hw(rc);
            complete(s, batch + i, n - i);
            return;
        }
        bool rerun = false;
        for (; i < n; i++) {
            if (!nested) {
                int st = run_direct(s, txn, batch[i], &full);
                if (st == HW_OK && full == HW_TXN_FITS) {
                    batch[i]->status = HW_OK;
                    continue;
                }
                rerun = true;
                break;
            }
            batch[i]->status = run_one(s, txn, batch[i], &full);
            if (full != HW_TXN_FITS)
                break;
        }
        if (rerun) {
            mdb_txn_abort(txn);
            nested = true;
            i = start;
            continue;
        }
        if (i == start) {
            mdb_txn_abort(txn);
        } else {
            if (s->replicated) {
                int prc = repl_propose(s, txn, ticket);
                if (prc != HW_OK) {
                    mdb_txn_abort(txn);
                    for (size_t j = start; j < i; j++)
                        if (batch[j]->status == HW_OK)
                            batch[j]->status = prc;
                    complete(s, batch + start, i - start);
                    continue;
                }
            }
            if (s->apply_instead) {
                s->apply_instead = false;
                mdb_txn_abort(txn);
                rc = grow_map(s) == HW_OK ? apply_entry(s, s->proposed_index, s->cap.buf, s->cap.len, false)
                                          : MDB_MAP_FULL;
            } else {
                uint64_t c0 = clock_ns(CLOCK_MONOTONIC);
                rc = mdb_txn_commit(txn); /* the fsync */
                atomic_fetch_add_explicit(&s->commit_wall_ns, clock_ns(CLOCK_MONOTONIC) - c0, memory_order_relaxed);
            }
            if (rc == MDB_MAP_FULL && s->replicated && !hw_entry_empty(&s->cap)) {
                /* The entry is committed by the replicas already: apply
                 * the same bytes in a grown map rather than run the group
                 * again (which could make different ones). */
                rc = grow_map(s) == HW_OK ? apply_entry(s, s->proposed_index, s->cap.buf, s->cap.len, false) : rc;
            }
            if (rc == MDB_MAP_FULL) {
                /* Freelist bookkeeping at commit needed a page: nothing of
                 * the group is on disk. Grow, then run the group again. */
                if (grow_map(s) == HW_OK) {
                    i = start;
                    continue;
                }
            }
            if (rc != 0 && s->replicated) {
                /* A majority holds the entry: this replica cannot go on
                 * without it. Stop; at the next start it applies the entry
                 * from the log. */
                fprintf(stderr, "store: commit of a replicated entry failed (%s); stopping\n", mdb_strerror(rc));
                abort();
            }
            if (rc != 0) {
                atomic_fetch_add_explicit(&s->commit_failures, 1, memory_order_relaxed);
                for (size_t j = start; j < i; j++)
                    if (batch[j]->status == HW_OK)
                        batch[j]->status = rc == MDB_MAP_FULL ? HW_EFULL : lmdb_to_hw(rc);
            } else {
                atomic_fetch_add_explicit(&s->commits, 1, memory_order_relaxed);
                stat_max(&s->largest_group, i - start);
                unsigned b = 0;
                while (b + 1 < HW_STORE_GROUP_BUCKETS && ((size_t)1 << b) < i - start)
                    b++;
                atomic_fetch_add_explicit(&s->group_sizes[b], 1, memory_order_relaxed);
                atomic_fetch_add_explicit(&s->committed_requests, i - start, memory_order_relaxed);
                if (s->census)
                    census_count(s, i - start);
                if (s->replicated && s->proposed_index > atomic_load(&s->applied)) {
                    atomic_store(&s->applied, s->proposed_index);
                    fire_waiters(s);
                }
            }
            complete(s, batch + start, i - start);
        }
        if (full == HW_TXN_MAP_FULL) {
            if (grow_map(s) != HW_OK) {
                batch[i]->status = HW_EFULL;
                complete(s, batch + i, 1);
                i++;
            }
        } else if (full == HW_TXN_TOO_LARGE && i == start) {
            /* Too large even alone in a transaction. */
            batch[i]->status = HW_EFULL;
            complete(s, batch + i, 1);
            i++;
        }
    }
}

/* ---- wiping free pages ------------------------------------------------------
 *
 * LMDB never writes a page in place: a transaction changes a copy, and the
 * page's old version goes to the free list, where it keeps the bytes of the
 * records since changed or deleted until a later write reuses the page. A
 * compacted backup leaves free pages out, but the live data.mdb holds them.
 * To erase a record for good (Customers.EraseCustomer, retention), the
 * writer fills every free page it may reuse with zeros: it stores, in the
 * local scratch database HW_DB_WIPE, one zero-filled value per free page
 * (each on an overflow page of its own, which LMDB takes from the free
 * list), commits, and deletes them again. Pages freed by the last two
 * transactions, or held by an open read transaction (a running backup),
 * cannot be reused yet: so a wipe is three such rounds, and a page pinned
 * by a long read keeps its bytes until the next wipe. These transactions
 * are this replica's own: they change nothing but the scratch database,
 * which is empty again after each round, and are not replicated (each
 * replica wipes its own file when told so). */

#define WIPE_ROUNDS 3
#define WIPE_MAX_PAGES 16384u /* per round: 64 MiB of 4 KiB pages */

/* Free pages the next write transaction may reuse: records of the free
 * list older than the last committed transaction (LMDB lets a write
 * transaction reuse what transactions before the previous one freed; open
 * readers are not looked at). The free list can be read only in a read
 * transaction: the writer thread is the only one that writes, so none
 * commits between it and the next write. */
static int wipe_count(hw_store *s, size_t *out)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0)
        return rc;
    size_t last = mdb_txn_id(txn);
    MDB_cursor *c;
    if ((rc = mdb_cursor_open(txn, 0 /* FREE_DBI */, &c)) != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    MDB_val k, v;
    size_t n = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        size_t id, cnt;
        if (k.mv_size != sizeof id || v.mv_size < sizeof cnt)
            break;
        memcpy(&id, k.mv_data, sizeof id);
        if (id >= last)
            break;
        memcpy(&cnt, v.mv_data, sizeof cnt);
        n += cnt;
    }
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    *out = n;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : rc;
}

/* One round: up to max pages filled with zeros, then released. */
static int wipe_round(hw_store *s, const void *zeros, size_t vsize, size_t *wiped)
{
    MDB_txn *txn;
    *wiped = 0;
    size_t n = 0;
    int rc = wipe_count(s, &n);
    if (rc != 0 || (rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
        return rc;
    if (n > WIPE_MAX_PAGES)
        n = WIPE_MAX_PAGES;
    MDB_dbi dbi = s->dbi[HW_DB_WIPE];
    for (size_t i = 0; i < n && rc == 0; i++) {
        unsigned char kb[8];
        hw_be64_put(kb, i);
        MDB_val k = {.mv_size = sizeof kb, .mv_data = kb}, v = {.mv_size = vsize, .mv_data = (void *)zeros};
        rc = mdb_put(txn, dbi, &k, &v, 0);
    }
    if (rc == 0)
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    if (rc != 0)
        return rc;
    *wiped = n;
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
        return rc;
    rc = mdb_drop(txn, dbi, 0);
    if (rc == 0)
        return mdb_txn_commit(txn);
    mdb_txn_abort(txn);
    return rc;
}

/* Writer thread, between groups. Best effort: a failure (the map full) is
 * logged and ends the wipe; the next one starts afresh. */
static void wipe_free(hw_store *s)
{
    MDB_stat st;
    if (mdb_env_stat(s->env, &st) != 0 || st.ms_psize <= 64)
        return;
    size_t vsize = st.ms_psize - 16; /* the page header: one overflow page per value */
    void *zeros = calloc(1, vsize);
    if (!zeros)
        return;
    uint64_t total = 0;
    for (int r = 0; r < WIPE_ROUNDS; r++) {
        size_t n;
        int rc = wipe_round(s, zeros, vsize, &n);
        if (rc != 0) {
            fprintf(stderr, "store: wiping free pages: %s\n", mdb_strerror(rc));
            break;
        }
        total += n;
    }
    free(zeros);
    atomic_fetch_add_explicit(&s->pages_wiped, total, memory_order_relaxed);
    atomic_fetch_add(&s->wipes, 1);
}

void hw_store_wipe_free(hw_store *s)
{
    atomic_store(&s->wipe_due, 1);
    atomic_fetch_add(&s->wake_seq, 1);
    if (atomic_load(&s->writer_sleeping))
        futex_wake(&s->wake_seq, 1);
}

static void *writer_main(void *arg)
{
    hw_store *s = arg;
    for (;;) {
        int seen = atomic_load(&s->wake_seq);
        if (s->replicated)
            run_jobs(s);
        size_t n = 0;
        struct cds_wfcq_node *node;
        while (n < s->max_group && (node = __cds_wfcq_dequeue_blocking(&s->qhead, &s->qtail)) != NULL) {
            hw_store_req *r = caa_container_of(node, hw_store_req, node);
            HW_HANDOFF_ACQUIRE(r);
            s->batch[n++] = r;
        }
        if (n > 0) {
            uint64_t t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
            run_group(s, s->batch, n);
            atomic_fetch_add_explicit(&s->write_cpu_ns, clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0,
                                      memory_order_relaxed);
            continue;
        }
        if (atomic_exchange(&s->wipe_due, 0)) {
            wipe_free(s);
            continue;
        }
        if (atomic_load(&s->closing)) {
            if (atomic_load(&s->submitters) == 0 && cds_wfcq_empty(&s->qhead, &s->qtail))
                break;
            /* A submitter is between its check and its enqueue: poll. */
            struct timespec ts = {0, 1000 * 1000};
            futex_wait(&s->wake_seq, seen, &ts);
            continue;
        }
        atomic_store(&s->writer_sleeping, 1);
        if (cds_wfcq_empty(&s->qhead, &s->qtail) && !(s->replicated && jobs_waiting(s)))
            futex_wait(&s->wake_seq, seen, NULL);
        atomic_store(&s->writer_sleeping, 0);
    }
    return NULL;
}

static hw_store_req *req_new(hw_store_write_fn fn, hw_store_done_fn done, void *ctx, int sync)
{
    hw_store_req *r = malloc(sizeof(*r));
    if (!r)
        return NULL;
    r->fn = fn;
    r->done = done;
    r->ctx = ctx;
    r->status = HW_OK;
    r->sync = sync;
    atomic_init(&r->state, REQ_PENDING);
    atomic_init(&r->refs, sync ? 2 : 1);
    cds_wfcq_node_init(&r->node);
    return r;
}

/* Hands r to the writer, or returns HW_ECLOSED (r untouched). */
static int enqueue(hw_store *s, hw_store_req *r)
{
    atomic_fetch_add(&s->submitters, 1);
    if (atomic_load(&s->closing)) {
        atomic_fetch_sub(&s->submitters, 1);
        return HW_ECLOSED;
    }
    HW_HANDOFF_RELEASE(r);
    atomic_fetch_add_explicit(&s->submitted, 1, memory_order_relaxed);
    cds_wfcq_enqueue(&s->qhead, &s->qtail, &r->node);
    atomic_fetch_add(&s->wake_seq, 1);
    if (atomic_load(&s->writer_sleeping))
        futex_wake(&s->wake_seq, 1);
    atomic_fetch_sub(&s->submitters, 1); /* last touch of s: close may free it */
    return HW_OK;
}

int hw_store_submit(hw_store *s, hw_store_write_fn fn, hw_store_done_fn done, void *ctx)
{
    if (!s || !fn)
        return HW_EINVALID;
    hw_store_req *r = req_new(fn, done, ctx, 0);
    if (!r)
        return HW_ENOMEM;
    int rc = enqueue(s, r);
    if (rc != HW_OK)
        free(r);
    return rc;
}

int hw_store_write(hw_store *s, hw_store_write_fn fn, void *ctx)
{
    if (!s || !fn)
        return HW_EINVALID;
    if (s->writer_started && pthread_equal(pthread_self(), s->writer))
        return HW_EINVALID;
    hw_store_req *r = req_new(fn, NULL, ctx, 1);
    if (!r)
        return HW_ENOMEM;
    int rc = enqueue(s, r);
    if (rc != HW_OK) {
        free(r);
        return rc;
    }
    for (;;) {
        int st = atomic_load(&r->state);
        if (st == REQ_DONE)
            break;
        if (st == REQ_PENDING && !atomic_compare_exchange_strong(&r->state, &st, REQ_SLEEPING))
            continue; /* became DONE meanwhile */
        futex_wait(&r->state, REQ_SLEEPING, NULL);
    }
    rc = r->status; /* written before the writer's exchange to REQ_DONE */
    if (atomic_fetch_sub(&r->refs, 1) == 1)
        free(r);
    return rc;
}

/* ------------------------------------------------------------------------
 * Sequences and the generic key-value space
 * ---------------------------------------------------------------------- */

static int seq_name_ok(const char *name)
{
    if (!name)
        return 0;
    size_t n = strlen(name);
    return n > 0 && n <= HW_SEQ_NAME_MAX;
}

int hw_store_next_seq(hw_store_txn *w, const char *name, uint64_t first, uint64_t *out)
{
    if (!w->writable || !seq_name_ok(name) || !out)
        return HW_EINVALID;
    MDB_val v;
    uint64_t next;
    int rc = hw_store__get(w, HW_DB_COUNTERS, name, strlen(name), &v);
    if (rc == HW_ENOTFOUND) {
        next = first ? first : 1;
    } else if (rc != HW_OK) {
        return rc;
    } else if (v.mv_size != 8) {
        return HW_ECORRUPT;
    } else {
        uint64_t last = hw_be64_get(v.mv_data);
        if (last == UINT64_MAX)
            return HW_EFULL;
        next = last + 1;
        if (next < first)
            next = first;
    }
    unsigned char buf[8];
    hw_be64_put(buf, next);
    rc = hw_store__put(w, HW_DB_COUNTERS, name, strlen(name), buf, sizeof(buf), 0);
    if (rc == HW_OK)
        *out = next;
    return rc;
}

int hw_store_peek_seq(hw_store_txn *t, const char *name, uint64_t *out)
{
    if (!seq_name_ok(name) || !out)
        return HW_EINVALID;
    MDB_val v;
    int rc = hw_store__get(t, HW_DB_COUNTERS, name, strlen(name), &v);
    if (rc == HW_ENOTFOUND) {
        *out = 0;
        return HW_OK;
    }
    if (rc != HW_OK)
        return rc;
    if (v.mv_size != 8)
        return HW_ECORRUPT;
    *out = hw_be64_get(v.mv_data);
    return HW_OK;
}

hw_arena *hw_store_txn_arena(hw_store_txn *w)
{
    return w->writable ? w->arena : NULL;
}

void hw_store_txn_wipe(hw_store_txn *w, bool on)
{
    if (w && w->writable)
        w->wipe = on ? 1 : 0;
}

int hw_store_txn_writable(const hw_store_txn *t)
{
    return t->writable;
}

/* kv key: ns, NUL, key. Returns the length or 0 when invalid. */
static size_t kv_key(unsigned char *buf, const char *ns, const void *key, size_t key_len)
{
    if (!ns || !key)
        return 0;
    size_t nl = strlen(ns);
    if (nl == 0 || nl > HW_KV_NS_MAX || key_len == 0 || key_len > HW_KV_KEY_MAX)
        return 0;
    memcpy(buf, ns, nl);
    buf[nl] = '\0';
    memcpy(buf + nl + 1, key, key_len);
    return nl + 1 + key_len;
}

int hw_store_kv_put(hw_store_txn *w, const char *ns, const void *key, size_t key_len, const void *val,
                    size_t val_len)
{
    unsigned char k[HW_KV_NS_MAX + 1 + HW_KV_KEY_MAX];
    size_t kl = kv_key(k, ns, key, key_len);
    if (kl == 0 || (!val && val_len))
        return HW_EINVALID;
    return hw_store__put(w, HW_DB_KV, k, kl, val_len ? val : "", val_len, 0);
}

int hw_store_kv_get(hw_store_txn *t, const char *ns, const void *key, size_t key_len, hw_arena *a, void **val,
                    size_t *len)
{
    unsigned char k[HW_KV_NS_MAX + 1 + HW_KV_KEY_MAX];
    size_t kl = kv_key(k, ns, key, key_len);
    if (kl == 0 || !a || !val)
        return HW_EINVALID;
    MDB_val v;
    int rc = hw_store__get(t, HW_DB_KV, k, kl, &v);
    if (rc != HW_OK)
        return rc;
    char *copy = hw_arena_strndup(a, v.mv_data, v.mv_size);
    if (!copy)
        return HW_ENOMEM;
    *val = copy;
    if (len)
        *len = v.mv_size;
    return HW_OK;
}

int hw_store_kv_delete(hw_store_txn *w, const char *ns, const void *key, size_t key_len)
{
    unsigned char k[HW_KV_NS_MAX + 1 + HW_KV_KEY_MAX];
    size_t kl = kv_key(k, ns, key, key_len);
    if (kl == 0)
        return HW_EINVALID;
    return hw_store__del(w, HW_DB_KV, k, kl);
}

int hw_store_kv_foreach(hw_store_txn *t, const char *ns,
                        int (*fn)(void *arg, const void *key, size_t key_len, const void *val,
                                  size_t val_len),
                        void *arg)
{
    return hw_store_kv_foreach_after(t, ns, NULL, 0, fn, arg);
}

int hw_store_kv_foreach_after(hw_store_txn *t, const char *ns, const void *after, size_t after_len,
                              int (*fn)(void *arg, const void *key, size_t key_len, const void *val,
                                        size_t val_len),
                              void *arg)
{
    if (!ns || !fn || (after_len && !after) || after_len > HW_KV_KEY_MAX)
        return HW_EINVALID;
    size_t nl = strlen(ns);
    if (nl == 0 || nl > HW_KV_NS_MAX)
        return HW_EINVALID;
    MDB_cursor *c = NULL;
    int rc = hw_store__cursor(t, HW_DB_KV, &c);
    if (rc != HW_OK)
        return rc;
    /* Seek to ns + its NUL + after (one B-tree descent), then skip after
     * itself when it is there. */
    unsigned char sk[HW_KV_NS_MAX + 1 + HW_KV_KEY_MAX];
    memcpy(sk, ns, nl + 1);
    if (after_len)
        memcpy(sk + nl + 1, after, after_len);
    MDB_val k = {.mv_size = nl + 1 + after_len, .mv_data = sk};
    MDB_val v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    if (mrc == 0 && after_len && k.mv_size == nl + 1 + after_len && memcmp(k.mv_data, sk, k.mv_size) == 0)
        mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    while (mrc == 0) {
        if (k.mv_size <= nl + 1 || memcmp(k.mv_data, ns, nl + 1) != 0)
            break;
        rc = fn(arg, (const unsigned char *)k.mv_data + nl + 1, k.mv_size - nl - 1, v.mv_data, v.mv_size);
        if (rc != 0) {
            if (rc == HW_STOP) /* the visitor is done: not an error */
                rc = HW_OK;
            goto out;
        }
        mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    rc = mrc == 0 || mrc == MDB_NOTFOUND ? HW_OK : lmdb_to_hw(mrc);
out:
    mdb_cursor_close(c);
    return rc;
}

/* ------------------------------------------------------------------------
 * Readers
 * ---------------------------------------------------------------------- */

static int reader_new(hw_store *s, int with_txn, hw_store_reader **out)
{
    hw_store_reader *r = NULL;
    if (posix_memalign((void **)&r, 64, sizeof(*r)) != 0)
        return HW_ENOMEM;
    memset(r, 0, sizeof(*r));
    atomic_init(&r->active, 0);
    r->store = s;
    int rc = 0;
    pthread_mutex_lock(&s->readers_mu); /* excludes a map growth */
    if (with_txn) {
        rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &r->txn);
        if (rc == 0)
            mdb_txn_reset(r->txn);
    }
    if (rc == 0) {
        r->next = s->readers;
        if (s->readers)
            s->readers->prev = r;
        s->readers = r;
    }
    pthread_mutex_unlock(&s->readers_mu);
    if (rc != 0) {
        free(r);
        return lmdb_to_hw(rc);
    }
    *out = r;
    return HW_OK;
}

int hw_store_reader_create(hw_store *s, hw_store_reader **out)
{
    if (!s || !out)
        return HW_EINVALID;
    return reader_new(s, 1, out);
}

void hw_store_reader_destroy(hw_store_reader *r)
{
    if (!r)
        return;
    hw_store_read_end(r);
    hw_store *s = r->store;
    pthread_mutex_lock(&s->readers_mu);
    if (r->prev)
        r->prev->next = r->next;
    else
        s->readers = r->next;
    if (r->next)
        r->next->prev = r->prev;
    if (r->txn)
        mdb_txn_abort(r->txn);
    pthread_mutex_unlock(&s->readers_mu);
    free(r);
}

int hw_store_read_begin(hw_store_reader *r, hw_store_txn **txn)
{
    if (!r || !txn || r->open || !r->txn)
        return HW_EINVALID;
    gate_enter(r);
    int rc = mdb_txn_renew(r->txn);
    if (rc != 0) {
        gate_leave(r);
        return lmdb_to_hw(rc);
    }
    r->open = 1;
    r->view = (hw_store_txn){.store = r->store, .txn = r->txn, .dbi = r->store->dbi};
    *txn = &r->view;
    return HW_OK;
}

void hw_store_read_end(hw_store_reader *r)
{
    if (!r || !r->open)
        return;
    mdb_txn_reset(r->txn);
    r->open = 0;
    gate_leave(r);
}

/* ------------------------------------------------------------------------
 * Backup and statistics
 * ---------------------------------------------------------------------- */

/* Puts mark into the kv space of the copy in file (nobody else has it
 * open: no lock file). LMDB's commit makes it durable. */
static int mark_copy(const char *file, const hw_store_backup_mark *mark, char *why, size_t whylen)
{
    unsigned char k[HW_KV_NS_MAX + 1 + HW_KV_KEY_MAX];
    size_t kl = kv_key(k, mark->ns, mark->key, mark->key_len);
    if (kl == 0 || (!mark->val && mark->val_len)) {
        snprintf(why, whylen, "a bad mark");
        return HW_EINVALID;
    }
    struct stat st;
    if (stat(file, &st) != 0) {
        snprintf(why, whylen, "cannot mark the copy: %s", strerror(errno));
        return HW_EIO;
    }
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    MDB_val key = {.mv_size = kl, .mv_data = k};
    MDB_val val = {.mv_size = mark->val_len, .mv_data = (void *)(mark->val_len ? mark->val : "")};
    int mrc = mdb_env_create(&env);
    if (mrc == 0)
        mrc = mdb_env_set_maxdbs(env, HW_DB_COUNT + 1);
    if (mrc == 0) /* room for the mark's pages beyond the compacted copy */
        mrc = mdb_env_set_mapsize(env, (size_t)st.st_size + ((size_t)16 << 20));
    if (mrc == 0)
        mrc = mdb_env_open(env, file, MDB_NOSUBDIR | MDB_NOLOCK | MDB_NORDAHEAD | MDB_NOTLS, 0600);
    if (mrc == 0)
        mrc = mdb_txn_begin(env, NULL, 0, &txn);
    if (mrc == 0)
        mrc = mdb_dbi_open(txn, HW_DB_NAMES[HW_DB_KV], 0, &dbi);
    if (mrc == 0)
        mrc = mdb_put(txn, dbi, &key, &val, 0);
    if (mrc == 0) {
        mrc = mdb_txn_commit(txn);
        txn = NULL;
    }
    if (txn)
        mdb_txn_abort(txn);
    if (env)
        mdb_env_close(env);
    if (mrc != 0) {
        int rc = lmdb_to_hw(mrc);
        snprintf(why, whylen, "cannot mark the copy: %s", mdb_strerror(mrc));
        return rc == HW_OK ? HW_EIO : rc;
    }
    return HW_OK;
}

/* Gives tmp the name path unless path exists (EEXIST): never replaces. */
static int rename_noreplace(const char *tmp, const char *path)
{
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    /* A file system without RENAME_NOREPLACE: link refuses an existing name too. */
    if (link(tmp, path) == 0) {
        unlink(tmp);
        return 0;
    }
    if (errno != EPERM && errno != ENOTSUP && errno != EOPNOTSUPP && errno != EMLINK)
        return -1;
    /* Nor hard links (FUSE, FAT): a plain rename after a check; the backup's
     * directory is the caller's, refused up front when it holds a data.mdb,
     * so only another writer of the same directory could slip in between. */
    struct stat st;
    if (lstat(path, &st) == 0) {
        errno = EEXIST;
        return -1;
    }
    if (errno != ENOENT)
        return -1;
    return rename(tmp, path);
}

int hw_store_backup(hw_store *s, const char *dir, uint64_t *size_bytes, char *why, size_t whylen)
{
    return hw_store_backup_marked(s, dir, NULL, size_bytes, why, whylen);
}

int hw_store_backup_marked(hw_store *s, const char *dir, const hw_store_backup_mark *mark,
                           uint64_t *size_bytes, char *why, size_t whylen)
{
    if (!s || !dir || !*dir)
        return HW_EINVALID;
    char path[PATH_MAX], tmp[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/data.mdb", dir) >= (int)sizeof(path) ||
        snprintf(tmp, sizeof(tmp), "%s/.data.mdb.XXXXXX", dir) >= (int)sizeof(tmp)) {
        snprintf(why, whylen, "the path is too long");
        return HW_EINVALID;
    }
    /* A missing directory is made (its parent must exist), owner-only: the
     * copy holds token hashes and customers' messages. */
    bool made_dir = false;
    struct stat st;
    if (mkdir(dir, 0700) == 0) {
        made_dir = true;
    } else if (errno != EEXIST) {
        int e = errno;
        if (e == ENOSPC) {
            snprintf(why, whylen, "%s", hw_strerror(HW_ENOSPACE));
            return HW_ENOSPACE;
        }
        snprintf(why, whylen, "cannot create the directory: %s", strerror(e));
        return e == ENOENT || e == ENOTDIR || e == EACCES ? HW_EINVALID : HW_EIO;
    } else if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(why, whylen, "it exists and is not a directory");
        return HW_EINVALID;
    }
    if (lstat(path, &st) == 0) {
        snprintf(why, whylen, "it holds a data.mdb already");
        return HW_EINVALID;
    }
    /* The copy is written (and marked) under a temporary name, mode 0600
     * as the live store, and takes the name data.mdb only when complete:
     * a dir/data.mdb is never a partial or an unmarked copy. An earlier
     * backup there is never overwritten, not even by a second backup
     * racing this one (the final rename refuses an existing name). */
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOSPC)
            snprintf(why, whylen, "%s", hw_strerror(HW_ENOSPACE));
        else
            snprintf(why, whylen, "cannot create data.mdb: %s", strerror(e));
        if (made_dir)
            rmdir(dir);
        return e == EACCES ? HW_EINVALID : e == ENOSPC ? HW_ENOSPACE : HW_EIO;
    }

    hw_store_reader *gate = NULL;
    int rc = reader_new(s, 0, &gate);
    if (rc == HW_OK) {
        gate_enter(gate);
        int mrc = mdb_env_copyfd2(s->env, fd, MDB_CP_COMPACT);
        gate_leave(gate);
        hw_store_reader_destroy(gate);
        if (mrc != 0) {
            rc = lmdb_to_hw(mrc);
            snprintf(why, whylen, "%s", hw_strerror(rc));
        }
    } else {
        snprintf(why, whylen, "%s", hw_strerror(rc));
    }
    if (rc == HW_OK && fsync(fd) != 0) {
        rc = errno == ENOSPC ? HW_ENOSPACE : HW_EIO;
        snprintf(why, whylen, "%s", hw_strerror(rc));
    }
    close(fd);
    if (rc == HW_OK && mark)
        rc = mark_copy(tmp, mark, why, whylen);
    if (rc == HW_OK && stat(tmp, &st) != 0) {
        rc = HW_EIO;
        snprintf(why, whylen, "%s", hw_strerror(rc));
    }
    if (rc == HW_OK && rename_noreplace(tmp, path) != 0) {
        int e = errno;
        rc = e == EEXIST ? HW_EINVALID : e == ENOSPC ? HW_ENOSPACE : HW_EIO;
        if (e == EEXIST)
            snprintf(why, whylen, "it holds a data.mdb already");
        else
            snprintf(why, whylen, "cannot name the copy data.mdb: %s", strerror(e));
    }
    /* Done means durable: the copy, its name, and the directory's own name
     * (a directory made just before, by us or an operator, is not durable
     * until its parent is fsynced) survive a power cut. */
    if (rc == HW_OK && (hw_fsync_path(dir) != 0 || hw_fsync_parent(dir) != 0)) {
        rc = HW_EIO;
        snprintf(why, whylen, "%s", hw_strerror(rc));
        unlink(path);
    }
    if (rc != HW_OK) {
        unlink(tmp);
        if (made_dir)
            rmdir(dir);
        return rc;
    }
    if (size_bytes)
        *size_bytes = (uint64_t)st.st_size;
    return HW_OK;
}

void hw_store_get_stats(hw_store *s, hw_store_stats *st)
{
    memset(st, 0, sizeof(*st));
    MDB_envinfo info;
    MDB_stat est;
    if (mdb_env_info(s->env, &info) == 0 && mdb_env_stat(s->env, &est) == 0) {
        st->map_size_bytes = info.me_mapsize;
        st->map_used_bytes = (uint64_t)(info.me_last_pgno + 1) * est.ms_psize;
    }
    st->commits = atomic_load_explicit(&s->commits, memory_order_relaxed);
    st->requests = atomic_load_explicit(&s->requests, memory_order_relaxed);
    st->requests_failed = atomic_load_explicit(&s->requests_failed, memory_order_relaxed);
    st->largest_group = atomic_load_explicit(&s->largest_group, memory_order_relaxed);
    uint64_t submitted = atomic_load_explicit(&s->submitted, memory_order_relaxed);
    st->queued = submitted > st->requests ? submitted - st->requests : 0;
    for (unsigned b = 0; b < HW_STORE_GROUP_BUCKETS; b++)
        st->group_sizes[b] = atomic_load_explicit(&s->group_sizes[b], memory_order_relaxed);
    st->committed_requests = atomic_load_explicit(&s->committed_requests, memory_order_relaxed);
    st->wipes = atomic_load(&s->wipes);
    st->pages_wiped = atomic_load_explicit(&s->pages_wiped, memory_order_relaxed);
    st->map_grows = atomic_load_explicit(&s->map_grows, memory_order_relaxed);
    st->commit_failures = atomic_load_explicit(&s->commit_failures, memory_order_relaxed);
    st->stale_readers_cleared = s->stale_readers_cleared;
    st->write_cpu_ns = atomic_load_explicit(&s->write_cpu_ns, memory_order_relaxed);
    st->done_cpu_ns = atomic_load_explicit(&s->done_cpu_ns, memory_order_relaxed);
    st->commit_wall_ns = atomic_load_explicit(&s->commit_wall_ns, memory_order_relaxed);
}

size_t hw_store_completing(const hw_store *s)
{
    return s->writer_started && pthread_equal(pthread_self(), s->writer) ? s->completing : 0;
}

const char *hw_store_data_dir(const hw_store *s)
{
    return s->data_dir;
}

/* ------------------------------------------------------------------------
 * Open and close
 * ---------------------------------------------------------------------- */

/* Opens every named database, creating the schema in a new environment and
 * checking it in an existing one. A foreign or newer file is refused before
 * anything is written (the write transaction is aborted). */
/* Writes the schema record (an LMDB code). */
static int schema_put(MDB_txn *txn, MDB_dbi meta, const Helpwire__Store__V1__SchemaRecord *r)
{
    MDB_val k = {.mv_size = 6, .mv_data = "schema"};
    MDB_val v = {.mv_size = helpwire__store__v1__schema_record__get_packed_size(r), .mv_data = NULL};
    int rc = mdb_put(txn, meta, &k, &v, MDB_RESERVE);
    if (rc == 0)
        helpwire__store__v1__schema_record__pack(r, v.mv_data);
    return rc;
}

static int open_schema(hw_store *s, char *err, size_t errlen)
{
    MDB_txn *txn = NULL;
    MDB_dbi main_dbi, meta;
    Helpwire__Store__V1__SchemaRecord *rec = NULL;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc != 0) {
        set_err(err, errlen, "store %s: cannot begin: %s", s->data_dir, mdb_strerror(rc));
        return lmdb_to_hw(rc);
    }
    rc = mdb_dbi_open(txn, HW_DB_NAMES[HW_DB_META], 0, &meta);
    if (rc == MDB_NOTFOUND) {
        MDB_stat st;
        rc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
        if (rc == 0)
            rc = mdb_stat(txn, main_dbi, &st);
        if (rc != 0) {
            set_err(err, errlen, "store %s: %s", s->data_dir, mdb_strerror(rc));
            rc = lmdb_to_hw(rc);
            goto out;
        }
        if (st.ms_entries != 0) {
            set_err(err, errlen,
                    "store %s: data.mdb is an LMDB file of another program (no helpwire "
                    "schema record); refusing to use it",
                    s->data_dir);
            rc = HW_ESCHEMA;
            goto out;
        }
        /* A new store: write the schema record. */
        rc = mdb_dbi_open(txn, HW_DB_NAMES[HW_DB_META], MDB_CREATE, &meta);
        if (rc == 0) {
            Helpwire__Store__V1__SchemaRecord r = HELPWIRE__STORE__V1__SCHEMA_RECORD__INIT;
            r.magic = (char *)HW_SCHEMA_MAGIC;
            r.version = HW_STORE_SCHEMA_VERSION;
            r.created_unix_ms = (int64_t)now_unix_ms();
            rc = schema_put(txn, meta, &r);
        }
    } else if (rc == MDB_INCOMPATIBLE) {
        set_err(err, errlen, "store %s: data.mdb is an LMDB file of another program; refusing to use it",
                s->data_dir);
        rc = HW_ESCHEMA;
        goto out;
    } else if (rc == 0) {
        MDB_val k = {.mv_size = 6, .mv_data = "schema"};
        MDB_val v;
        rc = mdb_get(txn, meta, &k, &v);
        if (rc == 0)
            rec = helpwire__store__v1__schema_record__unpack(NULL, v.mv_size, v.mv_data);
        if (!rec || !rec->magic || strcmp(rec->magic, HW_SCHEMA_MAGIC) != 0) {
            set_err(err, errlen,
                    "store %s: data.mdb has a \"meta\" database but no helpwire schema "
                    "record; refusing to use it",
                    s->data_dir);
            rc = HW_ESCHEMA;
            goto out;
        }
        if (rec->version > HW_STORE_SCHEMA_VERSION) {
            set_err(err, errlen,
                    "store %s: data.mdb was written by a newer helpwire (schema version %u, "
                    "this build reads up to %u); refusing to open it",
                    s->data_dir, rec->version, HW_STORE_SCHEMA_VERSION);
            rc = HW_ESCHEMA;
            goto out;
        }
        if (rec->version < 1) {
            set_err(err, errlen, "store %s: invalid schema version %u", s->data_dir, rec->version);
            rc = HW_ESCHEMA;
            goto out;
        }
        if (rec->version < HW_STORE_SCHEMA_VERSION) {
            /* Say the new version before anything moves (see store.h); the
             * migration itself runs once the writer is up. */
            rec->version = HW_STORE_SCHEMA_VERSION;
            rc = schema_put(txn, meta, rec);
        }
    }
    if (rc != 0) {
        set_err(err, errlen, "store %s: schema: %s", s->data_dir, mdb_strerror(rc));
        rc = lmdb_to_hw(rc);
        goto out;
    }
    for (int i = 0; i < HW_DB_COUNT; i++) {
        rc = mdb_dbi_open(txn, HW_DB_NAMES[i], MDB_CREATE, &s->dbi[i]);
        if (rc != 0) {
            set_err(err, errlen, "store %s: database %s: %s", s->data_dir, HW_DB_NAMES[i], mdb_strerror(rc));
            rc = lmdb_to_hw(rc);
            goto out;
        }
    }
    /* Which upgrade steps have work, read in this transaction; they run
     * once the writer is up (run_upgrades). */
    hw_store_txn view = {.store = s, .txn = txn, .dbi = s->dbi};
    for (size_t i = 0; i < s->n_upgrades; i++) {
        int due = 0;
        int hrc = s->upgrades[i].pending(&view, &due);
        if (hrc != HW_OK) {
            set_err(err, errlen, "store %s: %s to schema %u: %s", s->data_dir, s->upgrades[i].what,
                    s->upgrades[i].to_version, hw_strerror(hrc));
            rc = hrc;
            goto out;
        }
        if (due)
            s->upgrades_due |= (uint32_t)1 << i;
    }
    rc = mdb_txn_commit(txn); /* writes nothing when nothing changed */
    txn = NULL;
    if (rc != 0) {
        set_err(err, errlen, "store %s: commit schema: %s", s->data_dir, mdb_strerror(rc));
        rc = lmdb_to_hw(rc);
    }
out:
    if (rec)
        helpwire__store__v1__schema_record__free_unpacked(rec, NULL);
    if (txn)
        mdb_txn_abort(txn);
    return rc;
}

static void store_free(hw_store *s)
{
    if (s->env)
        mdb_env_close(s->env);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    hw_arena_destroy(s->scratch);
    census_free(s->census);
    free(s->batch);
    free(s->data_dir);
    pthread_mutex_destroy(&s->readers_mu);
    free(s);
}

typedef struct upgrade_run {
    const hw_store_upgrade *up;
    int done;
} upgrade_run;

static int upgrade_step(hw_store_txn *w, void *arg)
{
    upgrade_run *u = arg;
    return u->up->step(w, &u->done);
}

/* Runs each due upgrade step to its end, one durable write per call of its
 * step (nothing to do, and no write, on an up-to-date or new store). The
 * engine knows the steps only through the table it was given. */
static int run_upgrades(hw_store *s, char *err, size_t errlen)
{
    for (size_t i = 0; i < s->n_upgrades; i++) {
        upgrade_run u = {.up = &s->upgrades[i], .done = !(s->upgrades_due & ((uint32_t)1 << i))};
        while (!u.done) {
            int rc = hw_store_write(s, upgrade_step, &u);
            if (rc != HW_OK) {
                set_err(err, errlen, "store %s: %s to schema %u: %s", s->data_dir, u.up->what,
                        u.up->to_version, hw_strerror(rc));
                return rc;
            }
        }
    }
    return HW_OK;
}

int hw_store__open(hw_store **out, const hw_store_options *opts, const hw_store_upgrade *upgrades,
                   size_t n_upgrades, char *err, size_t errlen)
{
    hw_store *s = NULL;
    int rc = HW_OK;
    if (out)
        *out = NULL;
    if (!out || !opts || !opts->data_dir || !*opts->data_dir) {
        set_err(err, errlen, "store: data_dir is required");
        return HW_EINVALID;
    }
    if (n_upgrades > HW_STORE_UPGRADES_MAX || (n_upgrades && !upgrades)) {
        set_err(err, errlen, "store: bad upgrade table");
        return HW_EINVALID;
    }
    *out = NULL;
    const char *dir = opts->data_dir;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        set_err(err, errlen, "store %s: mkdir: %s", dir, strerror(errno));
        return HW_EIO;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        set_err(err, errlen, "store %s: not a directory", dir);
        return HW_EINVALID;
    }

    if (posix_memalign((void **)&s, 64, sizeof(*s)) != 0) {
        set_err(err, errlen, "store: out of memory");
        return HW_ENOMEM;
    }
    memset(s, 0, sizeof(*s));
    s->lock_fd = -1;
    s->upgrades = upgrades;
    s->n_upgrades = n_upgrades;
    pthread_mutex_init(&s->readers_mu, NULL);
    pthread_mutex_init(&s->apply_mu, NULL);
    pthread_mutex_init(&s->note_mu, NULL);
    __cds_wfcq_init(&s->qhead, &s->qtail);
    s->max_group = opts->max_group_size ? opts->max_group_size : HW_DEFAULT_MAX_GROUP;
    if (opts->page_census_every) {
        s->census_every = opts->page_census_every;
        if (!(s->census = census_new())) {
            rc = HW_ENOMEM;
            goto fail;
        }
    }
    s->max_map_bytes = opts->max_map_size_bytes ? opts->max_map_size_bytes : HW_DEFAULT_MAX_MAP_BYTES;
    size_t map_bytes = opts->initial_map_size_bytes ? opts->initial_map_size_bytes : HW_DEFAULT_MAP_BYTES;
    if (map_bytes > s->max_map_bytes)
        map_bytes = s->max_map_bytes;
    s->data_dir = strdup(dir);
    s->batch = calloc(s->max_group, sizeof(*s->batch));
    s->scratch = hw_arena_create(64 * 1024);
    if (!s->data_dir || !s->batch || !s->scratch) {
        set_err(err, errlen, "store: out of memory");
        rc = HW_ENOMEM;
        goto fail;
    }

    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/helpwire.lock", dir) >= (int)sizeof(path)) {
        set_err(err, errlen, "store %s: path too long", dir);
        rc = HW_EINVALID;
        goto fail;
    }
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0) {
        set_err(err, errlen, "store %s: %s: %s", dir, path, strerror(errno));
        rc = HW_EIO;
        goto fail;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        set_err(err, errlen, "store %s: in use by another process", dir);
        rc = errno == EWOULDBLOCK ? HW_EBUSY : HW_EIO;
        goto fail;
    }

    int mrc = mdb_env_create(&s->env);
    if (mrc == 0)
        mrc = mdb_env_set_maxdbs(s->env, HW_DB_COUNT + 8);
    if (mrc == 0)
        mrc = mdb_env_set_maxreaders(s->env, opts->max_readers ? opts->max_readers : HW_DEFAULT_MAX_READERS);
    if (mrc == 0)
        mrc = mdb_env_set_mapsize(s->env, map_bytes);
    if (mrc != 0) {
        set_err(err, errlen, "store %s: %s", dir, mdb_strerror(mrc));
        rc = lmdb_to_hw(mrc);
        goto fail;
    }
    mrc = mdb_env_open(s->env, dir, MDB_NOTLS | MDB_NORDAHEAD, 0600);
    if (mrc != 0) {
        if (mrc == MDB_INVALID || mrc == MDB_VERSION_MISMATCH) {
            set_err(err, errlen,
                    "store %s: data.mdb is not a usable LMDB file (%s); "
                    "refusing to touch it",
                    dir, mdb_strerror(mrc));
            rc = HW_ESCHEMA;
        } else {
            set_err(err, errlen, "store %s: open: %s", dir, mdb_strerror(mrc));
            rc = lmdb_to_hw(mrc);
        }
        goto fail;
    }
    /* The files' names are durable too (a new store's data.mdb, lock.mdb),
     * before the first commit relies on them. */
    if (snprintf(path, sizeof(path), "%s/data.mdb", dir) < (int)sizeof(path) && hw_fsync_parent(path) != 0) {
        set_err(err, errlen, "store %s: fsync of the directory: %s", dir, strerror(errno));
        rc = HW_EIO;
        goto fail;
    }
    int dead = 0;
    mdb_reader_check(s->env, &dead);
    s->stale_readers_cleared = dead > 0 ? (uint64_t)dead : 0;

    rc = open_schema(s, err, errlen);
    if (rc != HW_OK)
        goto fail;

    if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
        set_err(err, errlen, "store %s: cannot start the writer thread", dir);
        rc = HW_ENOMEM;
        goto fail;
    }
    s->writer_started = 1;
    pthread_setname_np(s->writer, "hw-writer");
    if ((rc = run_upgrades(s, err, errlen)) != HW_OK) {
        hw_store_close(s);
        return rc;
    }
    *out = s;
    return HW_OK;
fail:
    store_free(s);
    return rc;
}

void hw_store_close(hw_store *s)
{
    if (!s)
        return;
    atomic_store(&s->closing, 1);
    atomic_fetch_add(&s->wake_seq, 1);
    futex_wake(&s->wake_seq, INT_MAX);
    if (s->writer_started)
        pthread_join(s->writer, NULL);
    for (size_t i = 0; i < s->n_waiters; i++)
        s->waiters[i].cb(s->waiters[i].arg, false);
    free(s->waiters);
    for (apply_job *j = s->jobs_head, *next; j; j = next) {
        next = j->next;
        free(j);
    }
    hw_entry_free(&s->cap);
    store_free(s);
}

/* ------------------------------------------------------------------------
 * Replication
 * ---------------------------------------------------------------------- */

bool hw_store_is_leader(hw_store *s)
{
    return !s->replicated || s->repl.is_leader(s->repl.ctx);
}

bool hw_store_txn_replicated(const hw_store_txn *w)
{
    return w->cap != NULL;
}

int hw_store_txn_note(hw_store_txn *w, const void *note, size_t len)
{
    if (!w->writable)
        return HW_EINVALID;
    if (!w->cap)
        return HW_OK;
    if (len > HW_ENTRY_MAX_NOTE)
        return HW_ETOOBIG;
    hw_entry_add(w->cap, HW_ENTRY_NOTE, 0, NULL, 0, note, len);
    return w->cap->failed ? HW_ENOMEM : HW_OK;
}

static uint64_t read_applied(hw_store *s)
{
    MDB_txn *txn;
    uint64_t v = 0;
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
        return 0;
    MDB_val k = {.mv_size = sizeof APPLIED_KEY - 1, .mv_data = (void *)APPLIED_KEY}, val;
    if (mdb_get(txn, s->dbi[HW_DB_META], &k, &val) == 0 && val.mv_size == 8)
        for (int i = 0; i < 8; i++)
            v = v << 8 | ((const unsigned char *)val.mv_data)[i];
    mdb_txn_abort(txn);
    return v;
}

int hw_store_set_replicator(hw_store *s, const hw_store_replicator *r)
{
    if (!s || !r || !r->prepare || !r->propose || !r->is_leader || s->replicated)
        return HW_EINVALID;
    if (atomic_load(&s->submitted) != 0)
        return HW_EINVALID;
    s->repl = *r;
    hw_entry_reset(&s->cap);
    if (s->cap.failed)
        return HW_ENOMEM;
    atomic_store(&s->applied, read_applied(s));
    /* The raft log is the durability point of a replicated store: one
     * fsync per commit instead of two (data, then meta page). LMDB keeps
     * its integrity; a crash may undo the last commits, which raft replays
     * (hw_store_sync makes the store durable before raft drops them). */
    int mrc = mdb_env_set_flags(s->env, MDB_NOMETASYNC, 1);
    if (mrc != 0)
        return lmdb_to_hw(mrc);
    /* The writer reads `replicated` from its next group on: nothing was
     * submitted yet, and the enqueue of the first request publishes it. */
    s->replicated = true;
    return HW_OK;
}

uint64_t hw_store_applied_index(hw_store *s)
{
    if (s->replicated)
        return atomic_load(&s->applied);
    return read_applied(s);
}

void hw_store_set_note_handler(hw_store *s, hw_store_note_fn fn, void *ctx)
{
    pthread_mutex_lock(&s->note_mu);
    s->note_fn = fn;
    s->note_ctx = ctx;
    pthread_mutex_unlock(&s->note_mu);
}

int hw_store_apply(hw_store *s, uint64_t index, const void *entry, size_t len)
{
    if (atomic_load(&s->closing))
        return HW_ECLOSED;
    if (hw_entry_check(entry, len, HW_DB_COUNT) != HW_OK)
        return HW_ECORRUPT;
    apply_job *j = malloc(sizeof *j + len);
    if (!j)
        return HW_ENOMEM;
    j->next = NULL;
    j->index = index;
    j->len = len;
    memcpy(j->bytes, entry, len);
    pthread_mutex_lock(&s->apply_mu);
    if (s->jobs_tail)
        s->jobs_tail->next = j;
    else
        s->jobs_head = j;
    s->jobs_tail = j;
    pthread_mutex_unlock(&s->apply_mu);
    atomic_fetch_add(&s->wake_seq, 1);
    if (atomic_load(&s->writer_sleeping))
        futex_wake(&s->wake_seq, 1);
    return HW_OK;
}

int hw_store_when_applied(hw_store *s, uint64_t index, hw_store_applied_fn cb, void *arg)
{
    pthread_mutex_lock(&s->apply_mu);
    if (atomic_load(&s->applied) >= index) {
        pthread_mutex_unlock(&s->apply_mu);
        cb(arg, true);
        return HW_OK;
    }
    if (s->n_waiters == s->cap_waiters) {
        size_t cap = s->cap_waiters ? 2 * s->cap_waiters : 16;
        applied_waiter *w = realloc(s->waiters, cap * sizeof *w);
        if (!w) {
            pthread_mutex_unlock(&s->apply_mu);
            return HW_ENOMEM;
        }
        s->waiters = w;
        s->cap_waiters = cap;
    }
    s->waiters[s->n_waiters++] = (applied_waiter){index, cb, arg};
    pthread_mutex_unlock(&s->apply_mu);
    return HW_OK;
}

int hw_store_sync(hw_store *s)
{
    int rc = mdb_env_sync(s->env, 1);
    return rc == 0 ? HW_OK : lmdb_to_hw(rc);
}
