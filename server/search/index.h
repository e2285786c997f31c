/*
 * index: the in-memory knowledge-search index (articles and FAQs), BM25
 * ranked, read lock-free under RCU while a writer keeps it current.
 *
 * Design
 * - Documents are tokenized with hw_tokenize() (NFKC, case fold, English
 *   stems, CJK bigrams). Scoring is BM25 (k1 1.2, b 0.75) over one
 *   BM25F-style virtual field: a title occurrence counts title_boost times,
 *   a body occurrence once (also in the document length).
 * - The searchable state is an immutable snapshot: a large "main" segment,
 *   delta segments holding documents put since main was built (levels, see
 *   below), and a bitset of main and delta documents deleted or replaced
 *   since. The segments hold consecutive doc-id ranges. A segment has an
 *   xxHash-keyed open-addressing term dictionary and compact postings:
 *   varint doc-id deltas with title/body term frequencies, in blocks of 64
 *   with a skip table (last doc id, end offset, block max per block).
 * - Each change (or each batch) publishes a new snapshot with one atomic
 *   pointer store; the writer then waits for an RCU grace period
 *   (liburcu, memb flavour) before freeing what no newer snapshot holds
 *   (snapshots share segments). Readers never lock or wait.
 * - Delta levels, so that a change's cost does not grow with the changes
 *   since main was built: only the small "active" delta is rebuilt per
 *   change (the pending documents, at most delta_active_docs, default 256);
 *   once it holds that many it is frozen as it was built, an immutable
 *   segment later snapshots share. Four frozen deltas of one size are
 *   merged by the writer (a build of at most delta_merge_docs, default
 *   1024 documents, dead ones kept so that doc ids stay), the others wait
 *   for the next main build. When the deltas hold more than
 *   delta_max_docs (default 1024), main is rebuilt from all live documents
 *   on a background thread (about a second for 64k articles, a minute for
 *   1M) while changes go on in new deltas; the thread installs the new
 *   main under the writer mutex, with the documents deleted or replaced
 *   meanwhile dead in it: the deltas it holds go, those frozen since it
 *   started stay. At most 48 frozen deltas: past that (about 12,000 changes
 *   during one main build) the active delta grows. The first main, and a
 *   batch bringing more new documents than main holds, are built in the
 *   calling thread. Main builds compute the documents' terms on up to 4
 *   threads.
 * - Top-k uses MaxScore dynamic pruning: one cursor per query term reading
 *   its lists in every segment one after the other (doc-id order), sorted
 *   by their score upper bound; terms whose cumulated bounds cannot beat
 *   the current k-th score are only probed (with block skipping) for
 *   documents found through the others. Block-max bounds (each skip block
 *   of 64 postings keeps its largest term score) let the essential lists
 *   step over blocks that cannot reach the k-th score and bound a
 *   candidate's other lists by the blocks holding it.
 * - Snippets of search hits: one pass over each hit's text tokenizes only
 *   the ASCII words that start like a query term and looks CJK bigrams up
 *   by their bytes (texts in other scripts are tokenized whole); the
 *   passage is the window with the most matches. Scores are summed in one fixed
 *   term order, so pruned and exhaustive results are bit-identical
 *   (HW_SEARCH_EXHAUSTIVE exists to prove that in tests and benchmarks).
 * - Statistics: N is the number of live documents; df counts the live
 *   documents holding the term: the segments' document frequencies, less
 *   the deleted or replaced main and frozen-delta documents holding it
 *   (counted when they die, a main document's text tokenized again, and
 *   published with the deleted bitset in tables frozen like deltas, so a
 *   publish copies a bounded table); idf = ln(1 + (N - df + 0.5) /
 *   (df + 0.5)); the average length is the one main was built with.
 *
 * Not done here: persistence (the caller's store feeds documents at start
 * and on every change), phrase queries, per-locale stemming.
 *
 * Threads: writer calls (put, delete, batch, publish) are serialized by an
 * internal mutex and may come from any thread; a background main build
 * (see above) publishes from its own thread, so a registered reader is
 * needed even in a program whose only writer is its reader. Readers (search, answer)
 * run concurrently with everything except hw_index_destroy(); each reader
 * thread must be registered once with hw_index_reader_register(), and
 * uses its own hw_searcher (tokenizer + scratch), one thread at a time.
 */
#ifndef HW_SEARCH_INDEX_H
#define HW_SEARCH_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "server/base/arena.h"
#include "server/search/status.h"
#include "server/search/tokenize.h"

/* Limits (bytes), matching knowledge.proto. */
#define HW_INDEX_MAX_QUERY 4096
#define HW_INDEX_MAX_ID 128 /* article and FAQ ids; see hw_index_id_char */
#define HW_INDEX_MAX_TITLE 1024 /* article title 512, FAQ question 1024 */
#define HW_INDEX_MAX_BODY (256 * 1024)
#define HW_INDEX_MAX_ALT 16 /* alternate questions per FAQ */
#define HW_INDEX_MAX_TOP_K 100
#define HW_INDEX_MAX_QUERY_TERMS 256 /* distinct terms kept (highest idf) */

/* Same numbers as helpwire.v1.DocKind. */
typedef enum hw_doc_kind {
    HW_DOC_ANY = 0,
    HW_DOC_ARTICLE = 1,
    HW_DOC_FAQ = 2,
} hw_doc_kind;

typedef struct hw_index hw_index;
typedef struct hw_searcher hw_searcher;

typedef struct hw_index_options {
    double title_boost;         /* weight of a title term; 0 = 2.0 */
    double k1;                  /* 0 = 1.2 */
    double b;                   /* 0 = 0.75 (use a tiny value for ~0) */
    uint32_t delta_max_docs;    /* documents in deltas before main is rebuilt; 0 = 1024 */
    uint32_t delta_active_docs; /* active delta bound before it is frozen; 0 = 256 */
    uint32_t delta_merge_docs;  /* largest merge of frozen deltas; 0 = 4 x
                                   delta_active_docs; below 2 x that: no merges */
    double answer_threshold;    /* default confidence for hw_index_answer; 0 = 0.88 */
    double faq_near_similarity; /* question similarity that wins outright; 0 = 0.8 */
    double alt_boost;           /* weight of an alternate-question term; 0 = 1.5 */
    /* Bodies of at least this many bytes are kept compressed (zstd) and
     * decompressed when read (a snippet, an answer, a main build): half
     * the memory of a large help center's text for a few microseconds per
     * hit read. 0 = 768; UINT32_MAX = never. */
    uint32_t compress_min_bytes;
} hw_index_options;

/* A document to put. Strings are NUL-terminated UTF-8 and are copied.
 * For an FAQ, title is the question, body the answer. alt_questions (FAQs
 * and articles) are other phrasings of the questions the document answers:
 * indexed with the options' alt_boost and compared with a customer's
 * question like an FAQ's question. */
typedef struct hw_doc {
    hw_doc_kind kind;                 /* HW_DOC_ARTICLE or HW_DOC_FAQ */
    const char *id;                   /* 1..HW_INDEX_MAX_ID bytes, hw_index_id_char */
    const char *title;                /* required, <= HW_INDEX_MAX_TITLE bytes */
    const char *body;                 /* required, <= HW_INDEX_MAX_BODY bytes */
    const char *locale;               /* NULL or "" means "en"; <= 15 bytes */
    const char *const *alt_questions; /* may be NULL */
    size_t n_alt_questions;           /* <= HW_INDEX_MAX_ALT */
} hw_doc;

/* Whether c may appear in an article or FAQ id: printable ASCII that a URL
 * path segment holds as written (RFC 3986 pchar without '%'): letters,
 * digits and - . _ ~ ! $ & ' ( ) * + , ; = : @. Refused: space, controls,
 * non-ASCII and " # % / < > ? [ \ ] ^ ` { | }, which a link
 * ".../articles/<id>" or a resource name "articles/<id>" could only hold
 * escaped. The one definition the index, the services and links use. */
static inline int hw_index_id_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~' || c == '!' || c == '$' || c == '&' || c == '\'' || c == '(' || c == ')' ||
           c == '*' || c == '+' || c == ',' || c == ';' || c == '=' || c == ':' || c == '@';
}

/* Creates an empty index. opts may be NULL (all defaults).
 * Returns 0, HW_EINVALID (bad option, message in st) or HW_ENOMEM.
 * Ownership: the caller owns *out and frees it with hw_index_destroy().
 * Does not register the calling thread as an RCU reader. */
int hw_index_create(hw_index **out, const hw_index_options *opts, hw_status *st);

/* Frees the index. No other thread may use it (or a searcher on it)
 * during or after the call. NULL is a no-op. */
void hw_index_destroy(hw_index *idx);

/* Registers / unregisters the calling thread as an RCU reader. Call
 * register once per thread before its first search (it is
 * urcu_memb_register_thread(); a thread already registered with liburcu's
 * memb flavour must not call it again) and unregister before the thread
 * exits. Writers need not register. */
void hw_index_reader_register(void);
void hw_index_reader_unregister(void);

/* Creates or replaces the document (kind, id) and, unless a batch is open,
 * publishes it: when the call returns, searches see the new version.
 * Costs: tokenizing the document plus rebuilding the active delta (at
 * most delta_active_docs documents), at times a merge of frozen deltas (at
 * most delta_merge_docs documents; when the deltas are full, main is
 * rebuilt in the background), plus an RCU grace period.
 * Returns 0, HW_EINVALID (bad kind, id, UTF-8, locale, missing title or
 * body; st names the field), HW_ETOOBIG (field over its limit), HW_ENOMEM.
 * Validation errors leave the index unchanged; if only publishing fails
 * (HW_ENOMEM) the change is kept and published by the next successful
 * write or commit. Inside a batch the document is only validated and
 * stored (tokenized at commit). Thread-safe (writers serialized). */
int hw_index_put(hw_index *idx, const hw_doc *doc, hw_status *st);

/* Removes (kind, id); published like hw_index_put. Returns 0,
 * HW_ENOTFOUND, HW_EINVALID (bad kind), HW_ENOMEM. Thread-safe. */
int hw_index_delete(hw_index *idx, hw_doc_kind kind, const char *id, hw_status *st);

/* Bulk path (start-up): between begin and commit, puts and deletes are
 * applied but not published; commit publishes everything at once,
 * building main directly when the batch is large (64k articles: about a
 * second). The batch is held by the calling thread; other writers wait
 * (the internal writer mutex is held from begin to commit/abort).
 * Searches meanwhile see the last published snapshot.
 * hw_index_batch_commit returns 0 or HW_ENOMEM (then nothing new is
 * published but the batch's changes stay pending for the next publish).
 * Calling begin twice from one thread deadlocks. */
void hw_index_batch_begin(hw_index *idx);
int hw_index_batch_commit(hw_index *idx, hw_status *st);

/* Waits until a background main build (see Design) has been installed,
 * so that searches see the statistics of a freshly built main. For tests
 * and benchmarks; changes are visible without it. Takes the writer mutex
 * (not from inside a batch). */
void hw_index_flush(hw_index *idx);

/* Whether a main build ends with malloc_trim(0) (on by default). It gives
 * the build's transient heap back to the system, which is worth it after
 * the start-up build; but it walks and locks every malloc arena, the
 * request threads' too, and on a running server those stalls show in
 * request latency, so the indexer turns it off (a later rebuild reuses the
 * heap). Writer side: takes the writer mutex. */
void hw_index_set_trim(hw_index *idx, int on);

/* Synonym sets, applied at query time by search and answer. A set is 2..
 * HW_INDEX_MAX_SYN_TERMS terms (words or phrases); a query whose tokens
 * hold one term's tokens contiguously also matches the set's other terms:
 * their tokens join the query (scored with the weight of the term they
 * stand for, split over their tokens), and for confidence the matched span
 * counts as covered by a document holding any one of the terms. locale ""
 * or NULL applies a set to every query; else only to queries whose locale
 * (search: the filter; answer: the locale argument) has the same primary
 * language ("zh" covers "zh-CN"), and to queries without a locale.
 * Replaces every set given before, atomically: the next query uses the new
 * sets (RCU, no rebuild). Terms are copied. Returns 0, HW_EINVALID (a set
 * with fewer than 2 or more than HW_INDEX_MAX_SYN_TERMS terms, a term
 * empty, over 64 bytes, invalid UTF-8 or without a searchable token; st
 * names set and term), HW_ETOOBIG (more than HW_INDEX_MAX_SYN_SETS sets),
 * HW_ENOMEM; on error the previous sets stay. Thread-safe (writers
 * serialized). */
#define HW_INDEX_MAX_SYN_TERMS 32
#define HW_INDEX_MAX_SYN_SETS 100000
typedef struct hw_synonym_set {
    const char *locale;
    const char *const *terms;
    size_t n_terms;
} hw_synonym_set;
int hw_index_set_synonyms(hw_index *idx, const hw_synonym_set *sets, size_t n, hw_status *st);

/* Statistics of the published snapshot plus the writer's tables. Call from
 * a writer-side thread (takes the writer mutex; waits for a batch). */
typedef struct hw_index_stats {
    uint64_t docs;      /* live documents */
    uint64_t main_docs; /* documents in main (incl. deleted) */
    uint64_t delta_docs;     /* in the frozen and active deltas (incl. deleted) */
    uint64_t delta_segments; /* frozen deltas + the active one (when not empty) */
    uint64_t terms;          /* distinct terms in main + delta */
    uint64_t postings_bytes; /* encoded postings + skip tables */
    uint64_t index_bytes;    /* everything allocated for search: stored
                                documents, dictionaries, postings, norms */
    uint64_t text_bytes;     /* raw text: sum of title, body, alt questions */
    double last_main_build_ms;
    double last_publish_ms;
    double last_install_ms; /* writer mutex held installing a background main build */
} hw_index_stats;
void hw_index_stats_get(hw_index *idx, hw_index_stats *out);

/* --- Reading -------------------------------------------------------- */

/* Creates a searcher: a tokenizer and scratch buffers for one reader
 * thread at a time (libstemmer is not thread-safe). Returns 0 or
 * HW_ENOMEM. The caller owns *out; free it with hw_searcher_destroy()
 * before the index is destroyed. */
int hw_searcher_create(hw_index *idx, hw_searcher **out, hw_status *st);
void hw_searcher_destroy(hw_searcher *s);

/* Search flags. */
enum {
    HW_SEARCH_NO_SNIPPETS = 1u << 0,   /* leave hw_hit.snippet NULL */
    HW_SEARCH_COUNT_MATCHED = 1u << 1, /* exact `matched` (visits every posting) */
    HW_SEARCH_EXHAUSTIVE = 1u << 2,    /* score every match, no pruning (tests) */
    HW_SEARCH_NO_BLOCK_MAX = 1u << 4,  /* plain MaxScore, no block-max bounds (same
                                          results; tests, benchmarks) */
    HW_SEARCH_FORCE_BLOCK_MAX = 1u << 5, /* block-max bounds even for short lists
                                            (by default only when the query's
                                            lists hold 200,000 postings; tests) */
    HW_SEARCH_FULL_SNIPPETS = 1u << 3, /* tokenize every hit's whole text for its
                                          snippet, not only the candidate words
                                          (same snippets; tests, benchmarks) */
};

typedef struct hw_search_query {
    const char *text; /* UTF-8, 1..HW_INDEX_MAX_QUERY bytes; terms OR-ed */
    size_t len;
    uint32_t top_k;     /* 0 = 10; clamped to HW_INDEX_MAX_TOP_K */
    const char *locale; /* NULL or "" = every locale */
    hw_doc_kind kind;   /* HW_DOC_ANY = both */
    unsigned flags;     /* HW_SEARCH_* */
} hw_search_query;

typedef struct hw_hit {
    hw_doc_kind kind;
    const char *id;
    const char *title;   /* article title or FAQ question */
    const char *snippet; /* <= ~200 chars, matches wrapped in U+0002/U+0003 */
    const char *locale;
    double score; /* BM25; comparable within one result only */
} hw_hit;

typedef struct hw_search_result {
    hw_hit *hits; /* best first */
    size_t n_hits;
    uint64_t matched;  /* documents matching >= 1 term (see matched_exact) */
    int matched_exact; /* 0: matched is an estimate from document
                          frequencies (exact with HW_SEARCH_COUNT_MATCHED) */
    size_t n_terms;    /* distinct query terms used */
} hw_search_result;

/* Top-k search. Hits and every string they point to are allocated in
 * arena (valid until its reset); *out is filled by the call.
 * Returns 0 (possibly zero hits: e.g. a query of stop words only),
 * HW_EINVALID (empty query, invalid UTF-8; message in st), HW_ETOOBIG
 * (query over 4096 bytes), HW_ENOMEM (arena or scratch exhausted).
 * Thread-safe given a registered thread and its own searcher; lock-free
 * (never waits for writers). */
int hw_index_search(hw_searcher *s, const hw_search_query *q, hw_arena *arena, hw_search_result *out,
                    hw_status *st);

/* What the confidence of an answer was computed from (AnswerSignals). */
typedef enum hw_match_field {
    HW_MATCH_NONE = 0,
    HW_MATCH_QUESTION = 1, /* FAQ question or an alternate question */
    HW_MATCH_TITLE = 2,
    HW_MATCH_BODY = 3,
} hw_match_field;

typedef struct hw_answer_signals {
    double coverage;            /* idf-weighted share of query terms in the doc */
    double question_similarity; /* to the title or closest question */
    double margin;              /* (s1 - s2) / s1; 1 with one hit */
    double phrase;              /* share of adjacent query pairs adjacent in title/questions */
    hw_match_field field;
    uint32_t terms, known_terms;
    uint32_t synonyms_applied;
    double head_coverage; /* coverage by the title and alternate questions only */
    double locale_match;  /* 1: the document's language is the question's; 0: another; 0.5: no locale */
    double question_containment; /* best share of one of its questions' terms found in the question */
} hw_answer_signals;

typedef struct hw_answer {
    int transfer;            /* 1: confidence below threshold: hand to an agent */
    const char *answer;      /* FAQ answer or the article's best passage;
                                "" when transfer */
    double confidence;       /* in [0, 1] */
    hw_doc_kind source_kind; /* HW_DOC_ANY when there is no candidate */
    const char *source_id;   /* "" when there is no candidate */
    int faq_exact;           /* 1: an FAQ question matched (near-)exactly */
    hw_hit *hits;            /* ranked candidates, at most 5 */
    size_t n_hits;
    hw_answer_signals signals; /* of the best candidate (zero when none) */
} hw_answer;

/* The best reply to a customer's question. Each of the top BM25
 * candidates gets a confidence from a logistic model over measured
 * features (hw_answer_signals): coverage (the idf-weighted share of the
 * question's terms the document holds; a word unknown to the index weighs
 * half the mean known idf, an unknown CJK bigram a quarter, a term a
 * synonym stands for is covered by any alternative), the same counting
 * only the title and alternate questions, question similarity (the mean
 * of Dice similarity and the share of a question's terms found, best
 * over the title/FAQ question and the alternate questions, the synonyms
 * substituted), the BM25 margin over the other candidates, the share of
 * adjacent term pairs found adjacent in a question, and the share of the
 * question's terms the index knows. A candidate with a question of
 * near-equal terms (Dice >= faq_near_similarity) is at least 0.9
 * confident (1 for the same terms). The most confident candidate is the answer.
 * transfer = confidence < threshold (threshold <= 0: the index's
 * answer_threshold). locale does not filter: documents of another locale
 * stay candidates (a Chinese FAQ answers an English question through its
 * English alternate questions); it selects the synonym sets that apply
 * and breaks ties between equally confident candidates. NULL or "" is
 * allowed.
 * Strings and hits are allocated in arena. Errors as hw_index_search.
 * Thread-safe like hw_index_search. */
int hw_index_answer(hw_searcher *s, const char *question, size_t len, const char *locale, double threshold,
                    hw_arena *arena, hw_answer *out, hw_status *st);

/* hw_index_answer for a question already tokenized: toks[0..n) are what
 * hw_tokenize gave for question[0..len) with any tokenizer, and stay valid
 * (that tokenizer unused) until this returns. For a caller that also
 * classifies the text, so it is tokenized once. */
int hw_index_answer_tokens(hw_searcher *s, const char *question, size_t len, const hw_token *toks, size_t n,
                           const char *locale, double threshold, hw_arena *arena, hw_answer *out,
                           hw_status *st);

#endif
