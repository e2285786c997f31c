/*
 * synonyms: a compiled, immutable table of synonym sets for the index's
 * query expansion (index.h, hw_index_set_synonyms). Each term of each set
 * is tokenized once, with the index's own tokenizer, so a term matches a
 * query exactly when its tokens appear contiguously among the query's.
 * A table is built by the index writer and read by any number of
 * searchers; it never changes after hw_syn_table_build returns.
 */
#ifndef HW_SEARCH_SYNONYMS_H
#define HW_SEARCH_SYNONYMS_H

#include <stddef.h>
#include <stdint.h>

#include "server/search/index.h"
#include "server/search/status.h"
#include "server/search/tokenize.h"

typedef struct hw_syn_table hw_syn_table;

/* One token of a term: its hash and text (in the table). */
typedef struct hw_syn_tok {
    uint64_t hash;
    const char *text;
    uint32_t len;
    uint32_t flags; /* HW_TOKEN_* */
} hw_syn_tok;

/* A place where a set's term occurs in a query: tokens [pos, pos + n) of
 * the query are term `term` of set `set`. */
typedef struct hw_syn_match {
    uint32_t set, term, pos, n;
} hw_syn_match;

/* Validates and compiles sets[0..n) (see hw_index_set_synonyms for the
 * rules and errors) with tok. On success *out is a new table the caller
 * owns (free with hw_syn_table_free); n == 0 gives a table matching
 * nothing. */
int hw_syn_table_build(hw_tokenizer *tok, const hw_synonym_set *sets, size_t n, hw_syn_table **out,
                       hw_status *st);

void hw_syn_table_free(hw_syn_table *t);

/* Bytes the table holds (for statistics). */
size_t hw_syn_table_bytes(const hw_syn_table *t);

/* Finds the sets whose terms occur in toks[0..nt), at most one match per
 * set (its longest term, the first occurrence), at most max matches, in
 * query order. A set applies when its locale is empty, when lang is NULL
 * or empty, or when both have the same primary language ("zh-CN" and
 * "zh"). Returns the number of matches written to out. Thread-safe. */
size_t hw_syn_table_match(const hw_syn_table *t, const hw_token *toks, size_t nt, const char *lang,
                          hw_syn_match *out, size_t max);

/* Number of terms of set `set`, and the index of its first term (terms of
 * one set are numbered consecutively). */
uint32_t hw_syn_set_terms(const hw_syn_table *t, uint32_t set, uint32_t *first);

/* The tokens of term `term`: *n of them. */
const hw_syn_tok *hw_syn_term_tokens(const hw_syn_table *t, uint32_t term, uint32_t *n);

#endif
