/*
 * tokenize: turns UTF-8 text into search terms, the same way for documents,
 * queries, FAQ matching and skill classification.
 *
 * Pipeline, one pass over the input:
 *   1. UTF-8 is validated (utf8proc_iterate); invalid input is HW_EINVALID
 *      with the byte offset, never a crash.
 *   2. Code points are classified: letters/digits/marks form words, Han,
 *      kana and Hangul form CJK runs, everything else separates. A '.'
 *      between an alphanumeric and a digit stays inside the word, so
 *      "v2.3" and "3.14" are single terms.
 *   3. Each word is NFKC-normalized and case-folded (utf8proc; pure ASCII
 *      words take a fast path with the same result). Words without digits
 *      are English stop-word filtered and stemmed (libstemmer "english");
 *      words with a digit ("e1234", "v2.3", "x86_64") are kept whole.
 *   4. A CJK run of n characters yields its n-1 overlapping bigrams
 *      ("重置密码" -> 重置 置密 密码), a lone character yields itself, so
 *      "怎么重置密码" shares 重置/置密/密码 with "重置密码".
 *
 * Stemming is language-agnostic on purpose: queries often carry no reliable
 * locale, and documents and queries must be tokenized identically.
 *
 * A tokenizer owns a libstemmer instance (not thread-safe) and scratch
 * buffers, so it is used by one thread at a time; create one per thread.
 * Not done here: phrase/proximity handling, languages other than
 * English stemming, dictionary-based Chinese word segmentation.
 */
#ifndef HW_SEARCH_TOKENIZE_H
#define HW_SEARCH_TOKENIZE_H

#include <stddef.h>
#include <stdint.h>

#include "server/search/status.h"

/* Longest term kept, in bytes after normalization; longer words (hashes,
 * base64 blobs) are dropped. */
#define HW_TOKEN_MAX_BYTES 64

/* hw_token.flags */
enum {
    HW_TOKEN_WORD = 1u << 0,    /* Latin (or other alphabetic) word */
    HW_TOKEN_NUMERIC = 1u << 1, /* word containing a digit, kept whole */
    HW_TOKEN_CJK = 1u << 2,     /* CJK bigram or lone CJK character */
    HW_TOKEN_STEMMED = 1u << 3, /* text is a stem (differs from the word) */
};

/* One term. `text` is normalized (NFKC, case-folded, stemmed) and NOT
 * NUL-terminated; it points into the tokenizer's buffer. [start, end) is
 * the byte range of the term's source in the input, for snippets. */
typedef struct hw_token {
    const char *text;
    uint32_t len;
    uint32_t flags;
    uint32_t start;
    uint32_t end;
    uint64_t hash; /* XXH3-64 of text[0..len), for dictionaries and sets */
} hw_token;

typedef struct hw_tokenizer hw_tokenizer;

/* Creates a tokenizer in *out.
 * Returns 0, or HW_ENOMEM (st says which allocation failed).
 * Ownership: the caller owns *out; free it with hw_tokenizer_destroy().
 * Thread-safety: the tokenizer may be used by one thread at a time. */
int hw_tokenizer_create(hw_tokenizer **out, hw_status *st);

/* Frees the tokenizer and invalidates every token it returned. NULL is a
 * no-op. */
void hw_tokenizer_destroy(hw_tokenizer *t);

/* Tokenizes text[0..len) (need not be NUL-terminated; embedded NULs are
 * separators). On success sets *tokens to an array of *n_tokens terms in
 * input order (duplicates kept) and returns 0; zero terms is a success.
 * Returns HW_EINVALID for invalid UTF-8 (st gives the byte offset),
 * HW_ETOOBIG when len exceeds 64 MiB, HW_ENOMEM.
 * Ownership: the array and the token texts belong to the tokenizer and
 * stay valid until its next hw_tokenize() call or its destruction.
 * Thread-safety: not re-entrant for one tokenizer; distinct tokenizers may
 * run concurrently. */
int hw_tokenize(hw_tokenizer *t, const char *text, size_t len, const hw_token **tokens, size_t *n_tokens,
                hw_status *st);

/* Checks that text[0..len) is valid UTF-8. Returns 0 or HW_EINVALID with
 * the offending byte offset in st. Thread-safe. */
int hw_utf8_validate(const char *text, size_t len, hw_status *st);

/* Hash used for terms everywhere in the search modules (XXH3-64).
 * Thread-safe. */
uint64_t hw_term_hash(const char *text, size_t len);

#endif
