/*
 * xapian_peer: Xapian 1.4 (Debian's libxapian) as a peer of the knowledge
 * index in bench/search_bench.c, behind a small C interface. Documents are
 * given as already-tokenized terms (hw_tokenize's output), so both engines
 * index the same terms; ranking is Xapian's BM25Weight over one field in
 * which a title occurrence weighs title_boost (wdf), like hw_index's
 * BM25F-style virtual field. The database is a glass database in a
 * temporary directory (Xapian's production backend; it stays in the page
 * cache), removed by xp_destroy.
 *
 * Ownership: xp_create returns a handle the caller frees with xp_destroy.
 * Term arrays are read during the call only. One thread.
 */
#ifndef HW_BENCH_XAPIAN_PEER_H
#define HW_BENCH_XAPIAN_PEER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xp_db xp_db;

/* A term: bytes text[0..len). */
typedef struct xp_term {
    const char *text;
    size_t len;
} xp_term;

/* Creates an empty database. Returns NULL (message on stderr) on error. */
xp_db *xp_create(double k1, double b, unsigned title_boost);

/* Adds a document; its Xapian docid is the order of addition, from 1. */
int xp_add(xp_db *db, const xp_term *title, size_t nt, const xp_term *body, size_t nb);

/* Commits and reopens for reading. Returns 0 or -1. */
int xp_commit(xp_db *db);

/* Bytes the database takes on disk (its files). */
uint64_t xp_disk_bytes(xp_db *db);

/* OR of terms[0..n), BM25, top k: writes up to k docids (from 1), best
 * first, into out and returns how many (-1 on error). */
int xp_search(xp_db *db, const xp_term *terms, size_t n, unsigned k, uint32_t *out);

void xp_destroy(xp_db *db);

#ifdef __cplusplus
}
#endif
#endif
