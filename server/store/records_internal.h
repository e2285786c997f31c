/*
 * records_internal: what records.c shares with the modules built on its
 * record layouts (check.c, migrate.c) and nothing else.
 *
 * Key building, the kind tables (a kind's databases, descriptor and index
 * keys), decoding, range scans, and the per-ticket log's layout. Not part
 * of the public contract: other modules include records.h. The functions
 * follow records.h's common rules (t any transaction, w a write one).
 *
 * Direction: records.c uses only the engine (store_internal.h); check.c and
 * migrate.c use this header and the engine; nothing here calls back into
 * them.
 */
#ifndef HW_STORE_RECORDS_INTERNAL_H
#define HW_STORE_RECORDS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "server/store/records.h"
#include "server/store/store_internal.h"

/* ---- key building ------------------------------------------------------ */

/* A key under construction: components are appended; one that does not fit
 * LMDB's 511-byte key sets overflow (checked by the caller). */
typedef struct hw_kb {
    unsigned char b[511];
    size_t n;
    int overflow;
} hw_kb;

/* Starts an empty key (does not clear the 511-byte buffer: keys are built
 * per index entry on the writer's hot path). */
#define HW_KB_INIT(k) ((k)->n = 0, (k)->overflow = 0)

static inline void hw_kb_bytes(hw_kb *k, const void *p, size_t len)
{
    if (k->overflow || len > sizeof(k->b) - k->n) {
        k->overflow = 1;
        return;
    }
    if (len)
        memcpy(k->b + k->n, p, len);
    k->n += len;
}

static inline void hw_kb_str(hw_kb *k, const char *s)
{
    hw_kb_bytes(k, s ? s : "", s ? strlen(s) : 0);
}

/* A string component followed by NUL: sorts before any longer string. */
static inline void hw_kb_str0(hw_kb *k, const char *s)
{
    hw_kb_str(k, s);
    hw_kb_bytes(k, "", 1);
}

static inline void hw_kb_u8(hw_kb *k, unsigned v)
{
    unsigned char c = (unsigned char)v;
    hw_kb_bytes(k, &c, 1);
}

static inline void hw_kb_be64(hw_kb *k, uint64_t v)
{
    unsigned char b[8];
    hw_be64_put(b, v);
    hw_kb_bytes(k, b, 8);
}

/* Whether key k starts with the pl bytes at p (pl 0: always). */
static inline int hw_has_prefix(const MDB_val *k, const unsigned char *p, size_t pl)
{
    return k->mv_size >= pl && (pl == 0 || memcmp(k->mv_data, p, pl) == 0);
}

/* ---- index keys and the kind tables -------------------------------------- */

/* One index entry: key in db, value = the record's id. */
typedef struct hw_ikey {
    int db;
    int unique;
    size_t len;
    unsigned char *data;
} hw_ikey;

/* A record's index entries, gathered in arena a; err is the first failure
 * (a key too long, too many keys, out of memory). */
typedef struct hw_ikeys {
    hw_ikey *k;
    size_t n, cap;
    hw_arena *a;
    int err;
} hw_ikeys;

/* An empty set of index keys allocating from a. @return HW_OK. */
int hw_ikeys_init(hw_ikeys *ks, hw_arena *a);

/* A versioned, id-keyed record kind (customers, agents, skills, tickets,
 * articles, FAQs): its primary database and how to read a record. */
typedef struct hw_kind {
    const char *name;
    int db;
    const ProtobufCMessageDescriptor *desc;
    const char *(*id)(const ProtobufCMessage *m);
    uint64_t (*version)(const ProtobufCMessage *m);         /* NULL: unversioned */
    void (*keys)(const ProtobufCMessage *m, hw_ikeys *out); /* NULL: no index */
    int (*check)(const ProtobufCMessage *m);                /* extra validation, NULL = none */
} hw_kind;

#define HW_KIND_COUNT 7
extern const hw_kind HW_KINDS[HW_KIND_COUNT];

/* A kind stored in a wrapper with the hash of its secret (surveys, tokens):
 * the hash is a unique index -> id; extra_db is the sent-time index or -1. */
typedef struct hw_hashed_kind {
    int db, hash_db, extra_db;
    const ProtobufCMessageDescriptor *desc;
} hw_hashed_kind;

extern const hw_hashed_kind HW_SURVEYS, HW_TOKENS;

/* Unpacks v as a d message into a. @return HW_OK; HW_ECORRUPT. */
int hw_records__unpack(const ProtobufCMessageDescriptor *d, hw_arena *a, const MDB_val *v,
                       ProtobufCMessage **out);

/* Splits a hashed kind's stored wrapper into the message bytes and the
 * hash (both pointing into a). @return HW_OK; HW_ECORRUPT. */
int hw_records__wrapper_unpack(hw_arena *a, const MDB_val *v, ProtobufCBinaryData *msg,
                               ProtobufCBinaryData *hash);

/* Adds the index keys of m (a hk record whose secret hashes to hash). */
void hw_records__hashed_keys(const hw_hashed_kind *hk, const ProtobufCMessage *m, const void *hash,
                             size_t hash_len, hw_ikeys *out);

/* ---- range scans ----------------------------------------------------------- */

/* Visits one entry: returns 1 if it was taken (counts toward the limit), 0
 * if skipped, HW_STOP to end the scan there (the scan returns HW_OK, as at
 * the end of the range), or a negative error, which the scan returns. */
typedef int (*hw_records_visit_fn)(hw_store_txn *t, void *arg, const MDB_val *k, const MDB_val *v);

/* Scans db over keys starting with prefix, ascending or (reverse)
 * descending, resuming after cursor when it is set (a cursor of another
 * db or prefix: HW_EINVALID). limit 0: no limit and no cursor. */
int hw_records__scan(hw_store_txn *t, int db, const unsigned char *prefix, size_t pl, int reverse,
                     hw_store_cursor *cur, size_t limit, hw_records_visit_fn fn, void *arg);

/* Deletes every entry of db whose key starts with prefix (writer only). */
int hw_records__delete_prefix(hw_store_txn *w, int db, const hw_kb *prefix);

/* ---- the per-ticket log (HW_DB_TICKET_LOG) --------------------------------- */

/* Key: ticket id \0 be64 position (from 1, shared by both kinds). Value:
 * HW_TLOG_HDR bytes of header (the kind, then be64 of the entry's sequence
 * within its kind, from 1) and the protobuf record. */
#define HW_TLOG_HDR 9
#define HW_TLOG_EVENT 'e'
#define HW_TLOG_MESSAGE 'm'

/* The ticket's (prefix: its id \0) last position and the last sequence of
 * kind, both 0 when none. */
int hw_records__log_tail(hw_store_txn *w, const hw_kb *prefix, int kind, uint64_t *last_pos,
                         uint64_t *last_seq);

/* Reserves the entry at position pos of the ticket (prefix: its id \0)
 * with its header written; *body receives the body_len bytes after it, to
 * fill before the next change of w. HW_EEXISTS when pos is taken. */
int hw_records__log_reserve(hw_store_txn *w, const hw_kb *prefix, uint64_t pos, int kind, uint64_t seq,
                            size_t body_len, unsigned char **body);

/* ---- the ticket log's write-ahead part (ticket_wal.c) ---------------------- */

/* Appends per ticket before its pending entries are copied into its log. */
#define HW_TWAL_FLUSH 32
/* A ticket without a head whose log holds fewer entries is appended to
 * its log directly (a ticket being opened). */
#define HW_TWAL_DIRECT 4
/* Most pending entries a ticket can have (a corrupt head says more). */
#define HW_TWAL_PENDING_MAX HW_TWAL_FLUSH
/* Entries the write-ahead database keeps before trimming its oldest. */
#define HW_TWAL_KEEP 65536u

/* A write-ahead entry, pointing into the map (valid until the next change
 * of the transaction). */
typedef struct hw_twal_entry {
    uint64_t gseq, pos, prev;
    const char *id; /* not NUL-terminated */
    size_t idl;
    const unsigned char *val; /* the ticket log's value: HW_TLOG_HDR header and the record */
    size_t vl;
} hw_twal_entry;

/* Appends m (of kind HW_TLOG_MESSAGE or HW_TLOG_EVENT) to the ticket's
 * log; *seq_field (may be NULL) is set to the entry's kind sequence before
 * m is packed; *seq_out (may be NULL) receives the sequence. Writer
 * only. */
int hw_twal_append(hw_store_txn *w, const char *ticket_id, int kind, const ProtobufCMessage *m,
                   uint64_t *seq_field, uint64_t *seq_out);

/* The ticket's entries not yet in its log, oldest first (*out allocated in
 * a; entries point into the map). Any transaction. */
int hw_twal_pending(hw_store_txn *t, const char *ticket_id, hw_arena *a, hw_twal_entry **out, size_t *n);

/* The ticket's fields an append changed (version, message count, update
 * time) laid over tk as read from its record, when its head holds newer
 * ones. Any transaction. */
int hw_twal_ticket_overlay(hw_store_txn *t, Helpwire__V1__Ticket *tk);
void hw_twal_overlay_apply(Helpwire__V1__Ticket *tk, uint64_t version, uint64_t count, uint64_t updated);

/* Whether the ticket has a head (entries went through the write-ahead
 * part and it was not settled or trimmed since). Any transaction. */
int hw_twal_has_head(hw_store_txn *t, const char *ticket_id, bool *has);

/* Stores tk's version, message count and update time in its head instead
 * of its record; *done false (nothing written) when the ticket has no head
 * (the caller then writes the record). The caller has checked that nothing
 * else of tk differs from the stored record. Writer only. */
int hw_twal_ticket_touch(hw_store_txn *w, const Helpwire__V1__Ticket *tk, bool *done);

/* The ticket's record was written whole: its head's ticket fields, if
 * any, are stale and cleared. Writer only. */
int hw_twal_ticket_stored(hw_store_txn *w, const char *ticket_id);

/* Makes the ticket's log its only copy: pending entries copied into it,
 * the ticket's write-ahead entries removed (zeroed first when wipe), its
 * head removed. Before erasing, scrubbing or deleting a ticket's log. */
int hw_twal_settle(hw_store_txn *w, const char *ticket_id, int wipe);

/* ---- attachments (attachment_records.c) ------------------------------------ */

/* Adds ticket message (ticket_id, message_id)'s reference to attachment id;
 * HW_ENOTFOUND when the attachment is not stored. Writer only. */
int hw_records__attachment_ref(hw_store_txn *w, const char *id, const char *ticket_id, const char *message_id);

/* Drops the references of a message's attachments (those with an id);
 * missing references are ignored. Writer only. */
int hw_records__message_unref(hw_store_txn *w, const Helpwire__V1__TicketMessage *m);

#endif
