/*
 * entry: the change set of one write group, as the store replicates it.
 *
 * While a replicated writer runs a group, every put and delete it makes
 * (database, key, value) and every note its requests add are appended to an
 * hw_entry; the bytes are the raft command the other replicas apply. The
 * format, all integers little-endian:
 *
 *   "HWE1"                                   magic and version
 *   then ops, each: u8 kind (1 put, 2 delete, 3 note), u8 database,
 *                   u16 key length, u32 value length, key, value
 *
 * (a delete has no value, a note no key and database 0); up to 7 zero
 * bytes may follow the last op (the raft log pads entries to 8 bytes). A value written
 * with MDB_RESERVE is filled by its caller after the put: it is copied in
 * by hw_entry_flush, which the store calls before the next change of the
 * transaction and before the entry is used.
 *
 * Internal to the store (store.c); not thread-safe: the writer's own.
 */
#ifndef HW_STORE_ENTRY_H
#define HW_STORE_ENTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { HW_ENTRY_PUT = 1, HW_ENTRY_DEL = 2, HW_ENTRY_NOTE = 3 };

#define HW_ENTRY_MAX_NOTE (16u << 20)

typedef struct hw_entry {
    unsigned char *buf;
    size_t len, cap;
    /* A reserved value not yet copied: its op header is at reserve_at. */
    const void *reserve_ptr;
    size_t reserve_at, reserve_len;
    size_t n_ops;
    bool failed; /* out of memory at some append: the entry is unusable */
} hw_entry;

/* Empties e (keeps its buffer), writing the magic. */
void hw_entry_reset(hw_entry *e);
void hw_entry_free(hw_entry *e);

/* Appends one op; a put's value is copied now (v non-NULL) or, with v NULL,
 * later from reserved (hw_entry_flush). Sets e->failed on ENOMEM. */
void hw_entry_add(hw_entry *e, int kind, int db, const void *k, size_t kl, const void *v, size_t vl);
void hw_entry_add_reserved(hw_entry *e, int db, const void *k, size_t kl, const void *reserved, size_t vl);

/* Copies a pending reserved value in. */
void hw_entry_flush(hw_entry *e);

/* Length so far, for rolling a failed request back: hw_entry_truncate(e,
 * mark) forgets everything appended after hw_entry_mark(e). */
size_t hw_entry_mark(hw_entry *e);
void hw_entry_truncate(hw_entry *e, size_t mark);

/* True when e holds no op. */
bool hw_entry_empty(const hw_entry *e);

/* Walks buf[0..len): calls fn for each op in order; stops at the first
 * non-zero return and returns it. Returns HW_ECORRUPT (without calling fn
 * for anything) when buf is not a well-formed entry, checked whole first.
 * db_count bounds the database numbers. */
typedef int (*hw_entry_op_fn)(void *ctx, int kind, int db, const void *k, size_t kl, const void *v, size_t vl);
int hw_entry_check(const void *buf, size_t len, int db_count);
int hw_entry_walk(const void *buf, size_t len, int db_count, hw_entry_op_fn fn, void *ctx);

#endif
