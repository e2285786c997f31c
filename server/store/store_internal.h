/*
 * store_internal: what store.c shares with records.c and nothing else.
 *
 * The database table (one LMDB named database per record kind and per
 * index), the transaction view handed to record functions, and thin
 * wrappers over mdb_get/mdb_put/mdb_del that map LMDB codes to HW_E* codes
 * and remember a full map so the writer can grow it and retry. Not part of
 * the public contract: other modules include store.h and records.h only.
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
    HW_DB_TICKET_LOG, /* schema 2: a ticket's events and messages */
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

/* Opens a cursor on db. */
int hw_store__cursor(hw_store_txn *t, int db, MDB_cursor **c);

/* Moves schema 1's per-ticket event and message databases into the ticket
 * log, whole tickets at a time, until about max_entries have moved; *done
 * is set once both are empty (writer only; records.c). */
int hw_store__migrate_ticket_logs(hw_store_txn *w, size_t max_entries, int *done);

/* Entries in db (mdb_stat). */
int hw_store__count(hw_store_txn *t, int db, uint64_t *n);

/* Big-endian 64-bit helpers for keys that sort numerically. */
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

#endif
