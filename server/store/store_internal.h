/*
 * store_internal: what the engine (store.c) shares with the modules of the
 * store built on it (records.c, check.c, migrate.c, open.c) and nothing
 * else.
 *
 * The database table (one LMDB named database per record kind and per
 * index), the transaction view handed to record functions, thin wrappers
 * over mdb_get/mdb_put/mdb_del that map LMDB codes to HW_E* codes and
 * remember a full map so the writer can grow it and retry, and the schema
 * upgrade hook. Calls go one way: those modules call the engine; the
 * engine calls none of them, except the upgrade steps it is handed at open
 * (through function pointers). Not part of the public contract: other
 * modules include store.h and records.h only.
 */
#ifndef HW_STORE_INTERNAL_H
#define HW_STORE_INTERNAL_H

#include <lmdb.h>
#include <protobuf-c/protobuf-c.h>

#include "server/store/store.h"

/* Named databases. The order is the table in store.c (HW_DB_NAMES); adding a
 * database to an existing schema version is compatible (it is created at
 * open), removing or changing one's key layout needs a new version. */
enum hw_db {
    HW_DB_META,
    HW_DB_COUNTERS,
    HW_DB_KV,
    HW_DB_CUSTOMERS,
    HW_DB_IDENTITIES,
    HW_DB_AGENTS,
    HW_DB_AGENTS_BY_SKILL,
    HW_DB_SKILLS,
    HW_DB_TICKETS,
    HW_DB_TICKETS_BY_NUMBER,
    HW_DB_TICKETS_BY_STATUS,
    HW_DB_TICKETS_BY_QUEUE,
    HW_DB_TICKETS_BY_QUEUE_STATUS,
    HW_DB_TICKETS_BY_ASSIGNEE,
    HW_DB_TICKETS_BY_CUSTOMER,
    HW_DB_TICKETS_BY_PRIORITY,
    HW_DB_TICKET_EVENTS,   /* schema 1 only: emptied into HW_DB_TICKET_LOG at open */
    HW_DB_TICKET_MESSAGES, /* schema 1 only: likewise */
    HW_DB_ARTICLES,
    HW_DB_ARTICLES_BY_LOCALE,
    HW_DB_FAQS,
    HW_DB_FAQS_BY_LOCALE,
    HW_DB_SURVEYS,
    HW_DB_SURVEYS_BY_TOKEN,
    HW_DB_SURVEYS_BY_SENT,
    HW_DB_OUTBOX,
    HW_DB_DEDUPE,
    HW_DB_IDEMPOTENCY,
    HW_DB_TOKENS,
    HW_DB_TOKENS_BY_HASH,
    HW_DB_TICKET_LOG,            /* schema 2: a ticket's events and messages */
    HW_DB_OUTBOX_FAILED,         /* outbox messages acknowledged as FAILED */
    HW_DB_OUTBOX_FAILED_BY_TIME, /* their failure times, newest-first listings */
    HW_DB_TIMERS_BY_DUE,         /* durable timers in due order (timers.c) */
    HW_DB_TIMERS_BY_SUBJECT,     /* the same by (kind, subject): one per pair */
    HW_DB_SLA_POLICIES,          /* SLA policies by name */
    HW_DB_AUDIT,                 /* the audit log: be64 seq -> AuditEvent (audit_records.c) */
    HW_DB_WIPE,                  /* local scratch of hw_store_wipe_free: empty between wipes, never replicated */
    HW_DB_CHUNKS,                /* attachment pieces: SHA-256 (32 bytes) -> the bytes (attachment_records.c) */
    HW_DB_CHUNK_META,            /* the same key -> be64 touched ms, be32 size, be32 references */
    HW_DB_ATTACHMENTS,           /* attachment id -> AttachmentRecord */
    HW_DB_ATTACHMENT_REFS,       /* attachment id \0 ticket id \0 be64 message seq -> "" */
    HW_DB_BLOB_PENDING,          /* be64 touched ms + 'a'|'c' + key -> "": unreferenced, for the sweep */
    HW_DB_TICKET_WAL,            /* schema 3: be64 global seq -> a ticket log entry not yet in its log (ticket_wal.c) */
    HW_DB_TICKET_HEADS,          /* schema 3: ticket id -> where its log and its write-ahead chain end */
    HW_DB_COUNT
};

/* Why a write transaction must be retried in a fresh one. */
enum { HW_TXN_FITS = 0, HW_TXN_MAP_FULL = 1, HW_TXN_TOO_LARGE = 2 };

struct hw_store_txn {
    hw_store *store;
    MDB_txn *txn;
    const MDB_dbi *dbi; /* HW_DB_COUNT handles */
    int writable;
    int full;        /* HW_TXN_*: set by hw_store__err on MAP_FULL/TXN_FULL */
    hw_arena *arena; /* writer scratch, NULL for readers */
    struct hw_entry *cap; /* replicated: the group's change set (entry.h); else NULL */
    int wipe;             /* hw_store_txn_wipe: values are zeroed before they are replaced or deleted */
    int zeroing;          /* inside hw_store__zero */
};

/* Maps an LMDB return code to HW_E*, noting MDB_MAP_FULL / MDB_TXN_FULL in
 * t->full. 0 stays 0. */
int hw_store__err(hw_store_txn *t, int mdb_rc);

/* mdb_get; *v points into the map (valid until the txn ends or changes it).
 * HW_OK, HW_ENOTFOUND, HW_EINVALID (bad key), HW_EIO. */
int hw_store__get(hw_store_txn *t, int db, const void *k, size_t kl, MDB_val *v);

/* mdb_put (writer only). flags: MDB_NOOVERWRITE -> HW_EEXISTS when present. */
int hw_store__put(hw_store_txn *t, int db, const void *k, size_t kl, const void *v, size_t vl,
                  unsigned flags);

/* mdb_put with MDB_RESERVE (writer only): *v receives vl bytes in the map
 * to fill before the next change of the transaction. */
int hw_store__reserve(hw_store_txn *t, int db, const void *k, size_t kl, size_t vl, unsigned flags, void **v);

/* Packs m straight into the map with MDB_RESERVE (writer only). */
int hw_store__put_msg(hw_store_txn *t, int db, const void *k, size_t kl, const ProtobufCMessage *m,
                      unsigned flags);

/* mdb_del of the key (writer only); HW_ENOTFOUND when absent. */
int hw_store__del(hw_store_txn *t, int db, const void *k, size_t kl);

/* mdb_cursor_del of the cursor's current record (writer only), recorded in
 * the change set when replicated. */
int hw_store__cursor_del(hw_store_txn *t, int db, MDB_cursor *c);

/* Overwrites the value stored under k in db with zeros of its own length,
 * in place (writer only): LMDB rewrites a value of unchanged size where it
 * lies in the transaction's copy of the page, so a delete or resize that
 * follows leaves no copy of the old bytes in the page's free gap. Recorded
 * in the change set as a put, so replicas zero their copy the same way. A
 * value on overflow pages that are not yet dirty in the transaction is
 * moved to new pages instead (LMDB frees the old ones): see
 * hw_store_wipe_free. HW_ENOTFOUND when absent. */
int hw_store__zero(hw_store_txn *t, int db, const void *k, size_t kl);

/* hw_store__zero, then hw_store__del. */
int hw_store__wipe_del(hw_store_txn *t, int db, const void *k, size_t kl);

/* hw_store__zero, then the new value packed from m (hw_store__put_msg). */
int hw_store__wipe_put_msg(hw_store_txn *t, int db, const void *k, size_t kl, const ProtobufCMessage *m);

/* Opens a cursor on db. */
int hw_store__cursor(hw_store_txn *t, int db, MDB_cursor **c);

/* Entries in db (mdb_stat). */
int hw_store__count(hw_store_txn *t, int db, uint64_t *n);

/* ---- schema upgrades ------------------------------------------------------ */

/* One schema upgrade: the work a store written by an older helpwire needs
 * before it is used. The engine runs the steps it is given at open
 * (hw_store__open) and knows nothing else of them: the steps themselves
 * live in migrate.c, above the record layouts, and reach the store only
 * through the functions of this header, none of which call back into them.
 * Found by content, not by version, so an interrupted upgrade resumes at
 * the next open. */
typedef struct hw_store_upgrade {
    const char *what;    /* for the error message: "moving ticket histories" */
    unsigned to_version; /* the schema version the step belongs to */
    /* Sets *pending when the store holds work for the step. Runs in the
     * open's own transaction (t is read-only), before the writer starts. */
    int (*pending)(hw_store_txn *t, int *pending);
    /* Does a bounded part of the work as a write request (durable on its
     * own; re-runnable, store.h's write fn contract) and sets *done, to 1
     * once nothing is left. The engine repeats it until then. */
    int (*step)(hw_store_txn *w, int *done);
} hw_store_upgrade;

#define HW_STORE_UPGRADES_MAX 32u

/* hw_store_open (store.h) with the upgrade steps to run, oldest first
 * (n_upgrades at most HW_STORE_UPGRADES_MAX; the table must outlive the
 * call). After the schema record is checked (and, on an older store,
 * stamped with HW_STORE_SCHEMA_VERSION), each step whose pending says so
 * is run to its end before the store is handed out; a step's failure
 * closes the store and is returned, with "store DIR: WHAT to schema N:
 * ERROR" in err. hw_store_open (open.c) calls it with migrate.c's table. */
int hw_store__open(hw_store **out, const hw_store_options *opts, const hw_store_upgrade *upgrades,
                   size_t n_upgrades, char *err, size_t errlen);

/* Big-endian helpers for keys and values that sort numerically. */
static inline void hw_be64_put(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xffu);
        v >>= 8;
    }
}

static inline uint64_t hw_be64_get(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static inline void hw_be32_put(unsigned char *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xffu);
        v >>= 8;
    }
}

static inline uint32_t hw_be32_get(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

#endif
