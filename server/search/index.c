/*
 * index: in-memory BM25 knowledge index (see index.h for the contract).
 *
 * Layout of this file:
 *   documents   doc_rec: one malloc holding a document's stored fields;
 *               immutable once published, reference-counted by the writer
 *               (writer-only fields are never read by readers). A body of
 *               at least compress_min_bytes is kept zstd-compressed (each
 *               on its own: any one is read alone, for a snippet) and read
 *               through rec_body.
 *   writer map  (kind, id) -> doc_rec, open addressing, writer-only.
 *   segments    immutable term dictionary + postings + skips + norms,
 *               built from a list of documents in two passes (count, then
 *               encode into exactly sized arrays: no per-term malloc).
 *   snapshots   main + frozen deltas + the active delta + deleted bitset +
 *               dead_df tables; published with a release store; segments
 *               and frozen tables are shared by consecutive snapshots and
 *               freed with the first snapshot replaced by one without them,
 *               after urcu_memb_synchronize_rcu().
 *   publishing  the active delta rebuilt, frozen when full, frozen deltas
 *               merged by fours (see "Delta levels"); main rebuilt on a
 *               background thread when the deltas are full.
 *   search      MaxScore over one cursor per term chaining its lists in
 *               every segment (doc-id order), heap top-k.
 *   snippets    best window of the body by distinct matched terms.
 *   answer      FAQ near-exact match, else confidence of the best hit.
 *
 * Why release/acquire builtins rather than rcu_dereference(): liburcu 0.13
 * implements them with volatile accesses that ThreadSanitizer cannot see;
 * the __atomic builtins give the same ordering and are visible to it. The
 * grace period itself is modelled for TSan with a release at the end of
 * every read-side section and an acquire after each synchronize_rcu().
 * Reference counts change only under the writer mutex, so they need no
 * atomics; a background build frees, after it unlocks, only memory that
 * nothing points to any more (the old main's arrays, its term lists).
 */
#include "server/search/index.h"

#include <assert.h>
#include <malloc.h>
#include <sys/mman.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <urcu/urcu-memb.h>
#include <xxhash.h>
#include <zstd.h>

#include "server/search/synonyms.h"
#include "server/search/tokenize.h"

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
#define TSAN_ACQUIRE(p) __tsan_acquire(p)
#define TSAN_RELEASE(p) __tsan_release(p)
#else
#define TSAN_ACQUIRE(p) ((void)0)
#define TSAN_RELEASE(p) ((void)0)
#endif

#define BLOCK 64 /* postings per skip block */
#define BLOCK_MAX_MIN_POSTINGS 200000 /* see run_topk */
#define MAX_LOCALES 255
#define MAX_LOCALE_LEN 15
#define SNIPPET_CHARS 200
#define SNIPPET_SCAN_BYTES (64 * 1024)
#define ANSWER_HITS 5  /* hits an answer lists */
#define ANSWER_POOL 10 /* candidates an answer weighs */
#define DOC_NONE UINT32_MAX
/* Head fields (title and alternate questions) share the posting's title
 * frequency, counted in units: an occurrence in the title adds
 * TITLE_UNITS, one in an alternate question a number of units that gives
 * it alt_boost's weight (at least 1); a unit weighs title_boost /
 * TITLE_UNITS. */
#define TITLE_UNITS 4

/* ---------------------------------------------------------------------- */
/* Documents                                                               */

typedef struct dt_entry {
    uint64_t hash;
    uint32_t off; /* of the term text in doc_terms.text */
    uint16_t len;
    uint16_t tf_title;
    uint32_t tf_body;
} dt_entry;

/* A document's distinct terms, computed by the writer at put time and kept
 * until the document is in main (writer-only). */
typedef struct doc_terms {
    uint32_t n;
    uint32_t title_len, body_len; /* head units, body tokens */
    int in_bump;                  /* allocated in a main build's bump */
    size_t bytes;
    dt_entry *e;
    char *text;
} doc_terms;

typedef struct doc_rec {
    /* immutable, read by searchers */
    uint8_t kind;
    uint8_t locale_id;
    uint16_t n_alts;
    uint32_t text_bytes;
    uint32_t body_len;  /* bytes of the body's text */
    uint32_t body_zlen; /* bytes of body when compressed; 0: body is the text */
    const char *id, *title, *body, *locale; /* body: see rec_body */
    const char **alts;
    const uint64_t *qsets;    /* sorted term-hash sets: title/question, then alternates */
    const uint32_t *qset_off; /* n_alts + 2 offsets into qsets */
    const uint64_t *pairs;    /* sorted hashes of adjacent token pairs of the questions */
    uint32_t n_pairs;
    /* writer-only */
    uint32_t refs;
    int32_t docid; /* global id in main or a frozen delta; -1 in the active delta */
    uint8_t live;
    size_t alloc_bytes;
    doc_terms *terms;
} doc_rec;

/* ---------------------------------------------------------------------- */
/* Segments and snapshots                                                  */

typedef struct term_info {
    uint64_t hash;
    uint64_t post_off;
    uint32_t post_len;
    uint32_t df;
    uint32_t skip_off;
    uint32_t str_off;
    uint16_t str_len;
    float max_tfn; /* max over postings of wtf*(k1+1)/(wtf+K), rounded up */
} term_info;

typedef struct skip_entry {
    uint32_t last_doc; /* local doc id of the block's last posting */
    uint32_t end_off;  /* byte offset (from the term's start) after it */
    float max_tfn;     /* the block's largest tfn, rounded up (block-max) */
} skip_entry;

typedef struct segment {
    uint32_t n_docs;
    doc_rec **docs;
    float *norm; /* K = k1 * (1 - b + b * dl / avgdl) */
    uint32_t n_terms;
    term_info *terms;
    uint32_t *table; /* term index + 1; 0 = empty */
    uint32_t mask;
    uint8_t *post;
    uint64_t post_bytes;
    skip_entry *skips;
    uint32_t n_skips;
    char *pool;
    size_t bytes;
    /* writer-only: when set, the references of the documents were moved to
     * the main that replaced this one, but for those of these bits (the
     * documents dead when its build started), released by segment_free */
    uint64_t *unref_only;
    /* writer-only: segment_free releases the references but leaves the
     * memory (and sets released) to the build thread, which frees it
     * outside the writer mutex (hundreds of MB at 1M documents) */
    uint8_t retire, released;
} segment;

/* Per term (by hash), how many dead main documents hold it: subtracted
 * from main's document frequencies so that deleted and replaced documents
 * leave the statistics at once, not at the next main build. Open
 * addressing, hash 0 = empty slot. */
typedef struct dead_df_slot {
    uint64_t hash;
    uint32_t n;
} dead_df_slot;

typedef struct dead_df {
    uint32_t mask, used;
    dead_df_slot *slot;
} dead_df;

/* An immutable dead_df table as snapshots hold it. The writer's mutable
 * table is copied into one at each publish; once it holds DDF_FREEZE
 * terms that copy is frozen (shared by the next snapshots, never copied
 * again) and the writer starts an empty table, so that a publish copies a
 * bounded table however many documents died since main was built. Frozen
 * tables of similar size are merged (DDF_LEVELS_MAX bounds their number). */
typedef struct ddf_tab {
    uint32_t mask, used;
    dead_df_slot slot[];
} ddf_tab;

#define DDF_FREEZE 4096
#define DDF_LEVELS_MAX 24

/* Delta levels. Documents put since main was built are in delta segments:
 * the active delta, rebuilt from the pending documents at every publish,
 * and frozen deltas: once the active one holds delta_active_docs documents
 * it is frozen as it was built (no copy) and the next change starts a new
 * one. So a change costs a build of at most delta_active_docs documents,
 * not of every document put since main was built. Frozen deltas of
 * similar size are merged by the writer up to delta_merge_docs documents
 * (a merge keeps dead documents and so every global doc id), the rest are
 * folded into the next main build. FROZEN_MAX bounds their number: past
 * it the active delta grows (the cost before levels). */
#define FROZEN_MAX 48
#define MERGE_FANIN 4
#define SEGS_MAX (FROZEN_MAX + 2)

/* Segments in doc-id order: main (when there is one), the frozen deltas
 * oldest first, the active delta (when it holds documents). A global doc
 * id d is local doc d - base[k] of seg[k]; base[n_segs] is the total. */
typedef struct snapshot {
    uint32_t n_segs;
    segment *seg[SEGS_MAX];
    uint32_t base[SEGS_MAX + 1];
    uint32_t n_main;     /* documents in main (0: no main) */
    uint32_t n_deadable; /* main + frozen documents: what dead covers */
    uint64_t *dead;      /* bitset over main + frozen docs; NULL = none dead */
    uint32_t n_ddf;
    const ddf_tab *ddf[DDF_LEVELS_MAX + 1]; /* summed; frozen tables shared */
    uint32_t n_live;
    uint32_t n_locales;
} snapshot;

typedef struct map_slot {
    uint64_t hash;
    doc_rec *rec; /* NULL = empty, TOMBSTONE = deleted */
} map_slot;

static doc_rec tombstone_rec;
#define TOMBSTONE (&tombstone_rec)

struct hw_index {
    hw_index_options opt;
    pthread_mutex_t wlock; /* recursive: held across a batch */
    snapshot *current;     /* published with release, read with acquire */
    hw_syn_table *syn;     /* synonym sets; published like current; NULL = none */
    int tsan_sync;         /* address used to model grace periods for TSan */
    /* writer-only below */
    int in_batch;
    int trim; /* malloc_trim after a main build (hw_index_set_trim) */
    uint32_t alt_units; /* head units of an alternate-question occurrence */
    hw_tokenizer *wtok;
    struct term_scratch *ws; /* the writer's scratch of rec_compute_terms */
    map_slot *map;
    size_t map_cap, map_used, map_live;
    doc_rec **pending;
    size_t n_pending, cap_pending;
    uint64_t *dead; /* over main + frozen docs */
    size_t dead_words;
    dead_df ddf;                         /* dead main and frozen documents' terms (see dead_df) */
    ddf_tab *ddf_frozen[DDF_LEVELS_MAX]; /* shared with the current snapshot */
    uint32_t n_ddf_frozen;
    struct main_build *bg; /* a background main build; NULL = none */
    pthread_t bg_thread;
    int bg_done; /* the build thread has installed (or failed) and may be joined */
    uint32_t bg_frozen;    /* frozen deltas [0, bg_frozen) are in the running build */
    uint32_t bg_docid_end; /* and the documents of global ids below this */
    segment *main;
    segment *frozen[FROZEN_MAX]; /* frozen deltas, as in the current snapshot */
    uint32_t n_frozen;
    uint32_t frozen_docs; /* documents in them, dead ones included */
    segment *active;      /* the current snapshot's active delta (pending) */
    double avgdl;
    char *locales[MAX_LOCALES]; /* append-only; entries immutable */
    uint32_t n_locales;
    uint64_t text_bytes, doc_bytes;
    double last_main_build_ms, last_publish_ms, last_install_ms;
    ZSTD_CCtx *cctx; /* compresses bodies; created at the first */
    char *zbuf;      /* its output */
    size_t zbuf_cap;
};

/* ---------------------------------------------------------------------- */
/* Helpers                                                                 */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static inline size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline uint8_t *varint_put(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static inline const uint8_t *varint_get(const uint8_t *p, uint32_t *out)
{
    uint32_t v = *p & 0x7f;
    unsigned shift = 7;
    while (*p++ & 0x80) {
        v |= (uint32_t)(*p & 0x7f) << shift;
        shift += 7;
    }
    *out = v;
    return p;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q)
        return HW_ENOMEM;
    *p = q;
    *cap = c;
    return 0;
}

/* The text of r's body: r->body itself, or the body decompressed into
 * *buf (grown; *dctx created when NULL; valid until the next call with
 * the same buffer). NULL when out of memory, or when the bytes do not give
 * the recorded length back (never for a record made here). */
static const char *rec_body(const doc_rec *r, ZSTD_DCtx **dctx, char **buf, size_t *cap)
{
    if (r->body_zlen == 0)
        return r->body;
    if (!*dctx && !(*dctx = ZSTD_createDCtx()))
        return NULL;
    if (grow((void **)buf, cap, (size_t)r->body_len + 1, 1) != 0)
        return NULL;
    size_t n = ZSTD_decompressDCtx(*dctx, *buf, r->body_len, r->body, r->body_zlen);
    if (ZSTD_isError(n) || n != r->body_len)
        return NULL;
    (*buf)[n] = '\0';
    return *buf;
}

/* Compresses the body text (n bytes) into *zbuf (grown; *cctx created
 * when NULL); *zlen its length, or 0 when compressing saves less than an
 * eighth or fails (kept as text then). Returns 0, or HW_ENOMEM when the
 * buffers cannot be had. Each body is a frame of its own (no dictionary):
 * any one is read alone. */
static int compress_body(ZSTD_CCtx **cctx, char **zbuf, size_t *zcap, const char *text, size_t n, size_t *zlen)
{
    *zlen = 0;
    if (!*cctx) {
        if (!(*cctx = ZSTD_createCCtx()))
            return HW_ENOMEM;
        /* level 1: the fastest of the ratios measured (bench/RESULTS.md) */
        ZSTD_CCtx_setParameter(*cctx, ZSTD_c_compressionLevel, 1);
        ZSTD_CCtx_setParameter(*cctx, ZSTD_c_contentSizeFlag, 0); /* the record has it */
    }
    size_t bound = ZSTD_compressBound(n);
    if (grow((void **)zbuf, zcap, bound, 1) != 0)
        return HW_ENOMEM;
    size_t z = ZSTD_compress2(*cctx, *zbuf, bound, text, n);
    if (ZSTD_isError(z))
        return 0; /* kept as text */
    if (z < n - n / 8)
        *zlen = z;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Sorts and dedupes v[0..n); returns the new length. */
static size_t sort_unique_u64(uint64_t *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_u64);
    size_t m = 1;
    for (size_t i = 1; i < n; i++)
        if (v[i] != v[m - 1])
            v[m++] = v[i];
    return m;
}

/* Dice similarity of two sorted unique hash sets. */
static double dice(const uint64_t *a, size_t na, const uint64_t *b, size_t nb)
{
    if (na + nb == 0)
        return 0;
    size_t i = 0, j = 0, common = 0;
    while (i < na && j < nb) {
        if (a[i] == b[j]) {
            common++;
            i++;
            j++;
        } else if (a[i] < b[j]) {
            i++;
        } else {
            j++;
        }
    }
    return 2.0 * (double)common / (double)(na + nb);
}

static double tfn(double k1, double wtf, double K)
{
    return wtf * (k1 + 1.0) / (wtf + K);
}

/* ---------------------------------------------------------------------- */
/* Document records                                                        */

static void rec_unref(doc_rec *r)
{
    if (!r)
        return;
    assert(r->refs > 0);
    if (--r->refs > 0)
        return;
    if (r->terms && !r->terms->in_bump)
        free(r->terms);
    free(r);
}

static void rec_drop_terms(doc_rec *r)
{
    if (r->terms && !r->terms->in_bump)
        free(r->terms);
    r->terms = NULL;
}

static uint32_t dead_df_get(const dead_df_slot *slot, uint32_t mask, uint64_t h)
{
    if (!slot)
        return 0;
    h |= !h; /* 0 marks an empty slot */
    for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
        if (slot[i].hash == h)
            return slot[i].n;
        if (!slot[i].hash)
            return 0;
    }
}

/* Dead documents holding term h, summed over a snapshot's tables. */
static uint32_t snap_dead_df(const snapshot *sn, uint64_t h)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < sn->n_ddf; i++)
        n += dead_df_get(sn->ddf[i]->slot, sn->ddf[i]->mask, h);
    return n;
}

/* An immutable copy of the writer's table; NULL when out of memory. */
static ddf_tab *ddf_tab_copy(const dead_df *t)
{
    size_t slots = (size_t)t->mask + 1;
    ddf_tab *c = malloc(sizeof *c + slots * sizeof c->slot[0]);
    if (!c)
        return NULL;
    c->mask = t->mask;
    c->used = t->used;
    memcpy(c->slot, t->slot, slots * sizeof c->slot[0]);
    return c;
}

/* A table holding the sums of a's and b's counts; NULL when out of memory. */
static ddf_tab *ddf_tab_merge(const ddf_tab *a, const ddf_tab *b)
{
    uint32_t cap = 1024;
    while (cap < 2 * (a->used + b->used))
        cap *= 2;
    ddf_tab *m = calloc(1, sizeof *m + (size_t)cap * sizeof m->slot[0]);
    if (!m)
        return NULL;
    m->mask = cap - 1;
    const ddf_tab *src[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        for (uint32_t i = 0; i <= src[k]->mask; i++) {
            const dead_df_slot *e = &src[k]->slot[i];
            if (!e->hash)
                continue;
            uint32_t j = (uint32_t)e->hash & m->mask;
            while (m->slot[j].hash && m->slot[j].hash != e->hash)
                j = (j + 1) & m->mask;
            if (!m->slot[j].hash) {
                m->slot[j].hash = e->hash;
                m->used++;
            }
            m->slot[j].n += e->n;
        }
    }
    return m;
}

static int dead_df_add(dead_df *t, uint64_t h)
{
    h |= !h;
    if (!t->slot || (t->used + 1) * 2 > t->mask + 1) {
        uint32_t cap = t->slot ? (t->mask + 1) * 2 : 1024;
        dead_df_slot *ns = calloc(cap, sizeof *ns);
        if (!ns)
            return HW_ENOMEM;
        for (uint32_t i = 0; t->slot && i <= t->mask; i++) {
            if (!t->slot[i].hash)
                continue;
            uint32_t j = (uint32_t)t->slot[i].hash & (cap - 1);
            while (ns[j].hash)
                j = (j + 1) & (cap - 1);
            ns[j] = t->slot[i];
        }
        free(t->slot);
        t->slot = ns;
        t->mask = cap - 1;
    }
    uint32_t i = (uint32_t)h & t->mask;
    while (t->slot[i].hash && t->slot[i].hash != h)
        i = (i + 1) & t->mask;
    if (!t->slot[i].hash) {
        t->slot[i].hash = h;
        t->used++;
    }
    t->slot[i].n++;
    return 0;
}

struct term_acc;
typedef struct term_acc {
    uint64_t hash;
    uint32_t off;
    uint16_t len;
    uint16_t tf_title;
    uint32_t tf_body;
} term_acc;

/* What rec_compute_terms works in: the writer has one; a main build gives
 * each of its threads one. */
typedef struct term_scratch {
    hw_tokenizer *tok;
    term_acc *acc;
    size_t acc_cap;
    uint32_t *tab;
    size_t tab_cap;
    char *text;
    size_t text_cap;
    char *body; /* a compressed body, decompressed (rec_body) */
    size_t body_cap;
    ZSTD_DCtx *dctx; /* created at the first compressed body */
} term_scratch;

/* Frees what a scratch holds but its tokenizer (whose owner varies). */
static void ws_release(term_scratch *ws)
{
    free(ws->acc);
    free(ws->tab);
    free(ws->text);
    free(ws->body);
    ZSTD_freeDCtx(ws->dctx);
}


/* Bump allocator for the term lists of a main build: one mapping per
 * 32 MiB, unmapped as a whole after the build, so that building does not
 * leave the heap fragmented around the long-lived document records. */
typedef struct bump_chunk {
    struct bump_chunk *next;
    size_t size, used;
} bump_chunk;

typedef struct bump {
    bump_chunk *head;
} bump;

static void *bump_alloc(bump *b, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    bump_chunk *c = b->head;
    size_t hdr = (sizeof(bump_chunk) + 15) & ~(size_t)15;
    if (!c || c->used + n > c->size) {
        size_t size = n + hdr > (32u << 20) ? n + hdr : (32u << 20);
        void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return NULL;
        c = m;
        c->next = b->head;
        c->size = size;
        c->used = hdr;
        b->head = c;
    }
    void *p = (char *)c + c->used;
    c->used += n;
    return p;
}

static void bump_free(bump *b)
{
    while (b->head) {
        bump_chunk *c = b->head;
        b->head = c->next;
        munmap(c, c->size);
    }
}

/* Moves every chunk of from onto to (from is left empty). */
static void bump_adopt(bump *to, bump *from)
{
    while (from->head) {
        bump_chunk *c = from->head;
        from->head = c->next;
        c->next = to->head;
        to->head = c;
    }
}

/* Computes r->terms by tokenizing its title (and alternate questions) and
 * body, into the bump allocator when given (main builds), else malloc.
 * Uses the scratch ws (grow-only; the writer's, or a build thread's). */
static int rec_compute_terms(const hw_index *idx, term_scratch *ws, doc_rec *r, bump *bp, hw_status *st)
{
    const hw_token *tk;
    size_t nt, n_acc = 0, text_len = 0, tsz = 0;
    int rc;
    uint32_t title_len = 0, body_len = 0;

    const char *body = rec_body(r, &ws->dctx, &ws->body, &ws->body_cap);
    if (!body)
        return st ? hw_status_set(st, HW_ENOMEM, "index: out of memory") : HW_ENOMEM;
    for (int field = 0; field < 2 + r->n_alts; field++) {
        const char *src = field == 0 ? r->title : field == 1 ? body : r->alts[field - 2];
        int is_title = field != 1;
        uint32_t units = field == 0 ? TITLE_UNITS : idx->alt_units;
        if ((rc = hw_tokenize(ws->tok, src, strlen(src), &tk, &nt, st)) != 0)
            return rc;
        if (is_title)
            title_len += (uint32_t)nt * units;
        else
            body_len += (uint32_t)nt;
        size_t need = 16;
        while (need < 2 * (n_acc + nt))
            need *= 2;
        if (need > tsz) { /* (re)build the table at the new size */
            if (grow((void **)&ws->tab, &ws->tab_cap, need, sizeof *ws->tab))
                goto nomem;
            tsz = need;
            memset(ws->tab, 0, tsz * sizeof *ws->tab);
            for (size_t i = 0; i < n_acc; i++) {
                size_t h = ws->acc[i].hash & (tsz - 1);
                while (ws->tab[h])
                    h = (h + 1) & (tsz - 1);
                ws->tab[h] = (uint32_t)i + 1;
            }
        }
        uint32_t *tab = ws->tab;
        for (size_t k = 0; k < nt; k++) {
            size_t h = tk[k].hash & (tsz - 1);
            term_acc *a = NULL;
            while (tab[h]) {
                term_acc *c = &ws->acc[tab[h] - 1];
                if (c->hash == tk[k].hash && c->len == tk[k].len &&
                    memcmp(ws->text + c->off, tk[k].text, c->len) == 0) {
                    a = c;
                    break;
                }
                h = (h + 1) & (tsz - 1);
            }
            if (!a) {
                if (grow((void **)&ws->acc, &ws->acc_cap, n_acc + 1, sizeof *ws->acc) ||
                    grow((void **)&ws->text, &ws->text_cap, text_len + tk[k].len, 1))
                    goto nomem;
                a = &ws->acc[n_acc++];
                tab[h] = (uint32_t)n_acc;
                a->hash = tk[k].hash;
                a->off = (uint32_t)text_len;
                a->len = (uint16_t)tk[k].len;
                a->tf_title = 0;
                a->tf_body = 0;
                memcpy(ws->text + text_len, tk[k].text, tk[k].len);
                text_len += tk[k].len;
            }
            if (is_title) {
                a->tf_title = a->tf_title > UINT16_MAX - units ? UINT16_MAX : (uint16_t)(a->tf_title + units);
            } else {
                a->tf_body++;
            }
        }
    }
    size_t bytes = sizeof(doc_terms) + n_acc * sizeof(dt_entry) + text_len;
    doc_terms *d = bp ? bump_alloc(bp, bytes) : malloc(bytes);
    if (!d)
        goto nomem;
    d->n = (uint32_t)n_acc;
    d->title_len = title_len;
    d->body_len = body_len;
    d->bytes = bytes;
    d->in_bump = bp != NULL;
    d->e = (dt_entry *)(d + 1);
    d->text = (char *)(d->e + n_acc);
    for (size_t i = 0; i < n_acc; i++) {
        const term_acc *a = &ws->acc[i];
        d->e[i] = (dt_entry){a->hash, a->off, a->len, a->tf_title, a->tf_body};
    }
    if (text_len)
        memcpy(d->text, ws->text, text_len);
    r->terms = d;
    return 0;
nomem:
    return hw_status_set(st, HW_ENOMEM, "index: out of memory while tokenizing");
}

/* ---------------------------------------------------------------------- */
/* Writer map                                                              */

static uint64_t key_hash(hw_doc_kind kind, const char *id, size_t len)
{
    return XXH3_64bits_withSeed(id, len, (uint64_t)kind);
}

static map_slot *map_find(hw_index *idx, uint64_t h, hw_doc_kind kind, const char *id)
{
    if (!idx->map_cap)
        return NULL;
    size_t i = h & (idx->map_cap - 1);
    while (idx->map[i].rec) {
        doc_rec *r = idx->map[i].rec;
        if (r != TOMBSTONE && idx->map[i].hash == h && r->kind == kind && strcmp(r->id, id) == 0)
            return &idx->map[i];
        i = (i + 1) & (idx->map_cap - 1);
    }
    return NULL;
}

static int map_reserve(hw_index *idx)
{
    if ((idx->map_used + 1) * 2 <= idx->map_cap)
        return 0;
    size_t cap = idx->map_cap ? idx->map_cap : 64;
    while ((idx->map_live + 1) * 4 > cap)
        cap *= 2;
    map_slot *m = calloc(cap, sizeof *m);
    if (!m)
        return HW_ENOMEM;
    for (size_t i = 0; i < idx->map_cap; i++) {
        doc_rec *r = idx->map[i].rec;
        if (!r || r == TOMBSTONE)
            continue;
        size_t j = idx->map[i].hash & (cap - 1);
        while (m[j].rec)
            j = (j + 1) & (cap - 1);
        m[j] = idx->map[i];
    }
    free(idx->map);
    idx->map = m;
    idx->map_cap = cap;
    idx->map_used = idx->map_live;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Segment build                                                           */

/* The memory of a segment whose references are released. */
static void segment_free_memory(segment *s)
{
    free(s->docs);
    free(s->norm);
    free(s->terms);
    free(s->table);
    free(s->post);
    free(s->skips);
    free(s->pool);
    free(s);
}

static void segment_free(segment *s)
{
    if (!s)
        return;
    if (s->unref_only) {
        for (uint32_t w = 0; w < (s->n_docs + 63) / 64; w++)
            for (uint64_t x = s->unref_only[w]; x; x &= x - 1)
                rec_unref(s->docs[w * 64 + (uint32_t)__builtin_ctzll(x)]);
        free(s->unref_only);
        s->unref_only = NULL;
    } else {
        for (uint32_t i = 0; i < s->n_docs; i++)
            rec_unref(s->docs[i]);
    }
    if (s->retire) {
        s->released = 1;
        return;
    }
    segment_free_memory(s);
}

static const term_info *segment_lookup(const segment *s, uint64_t h, const char *text, uint32_t len)
{
    if (!s || !s->n_terms)
        return NULL;
    uint32_t i = (uint32_t)h & s->mask;
    while (s->table[i]) {
        const term_info *t = &s->terms[s->table[i] - 1];
        if (t->hash == h && t->str_len == len && memcmp(s->pool + t->str_off, text, len) == 0)
            return t;
        i = (i + 1) & s->mask;
    }
    return NULL;
}

static inline uint32_t enc_tf(uint32_t tf_title, uint32_t tf_body, uint8_t **p)
{
    /* v = body << 2 | min(title, 3); title >= 3 adds varint(title - 3) */
    uint32_t t3 = tf_title < 3 ? tf_title : 3;
    uint64_t v = ((uint64_t)tf_body << 2) | t3;
    uint32_t n = (uint32_t)varint_len(v) + (tf_title >= 3 ? (uint32_t)varint_len(tf_title - 3) : 0);
    if (p) {
        *p = varint_put(*p, v);
        if (tf_title >= 3)
            *p = varint_put(*p, tf_title - 3);
    }
    return n;
}

/* Builds a segment over docs[0..n) (each with terms computed), taking a
 * reference on each document. */
static int segment_build(const hw_index *idx, doc_rec **docs, uint32_t n, double avgdl, int take_refs,
                         segment **out)
{
    const double k1 = idx->opt.k1, b = idx->opt.b, boost = idx->opt.title_boost / TITLE_UNITS;
    segment *s = calloc(1, sizeof *s);
    uint32_t *tids = NULL, *last = NULL, *count = NULL;
    uint64_t *pos = NULL;
    float *bmax = NULL; /* per term: the open block's max tfn */
    size_t cap_terms = 0, pool_cap = 0, pool_len = 0, total = 0;
    int rc = HW_ENOMEM;
    if (!s)
        return HW_ENOMEM;
    s->n_docs = 0; /* counts the references taken, for the error path */
    s->docs = malloc((n ? n : 1) * sizeof *s->docs);
    s->norm = malloc((n ? n : 1) * sizeof *s->norm);
    if (!s->docs || !s->norm)
        goto out;
    for (uint32_t d = 0; d < n; d++)
        total += docs[d]->terms->n;
    tids = malloc((total ? total : 1) * sizeof *tids);
    if (!tids)
        goto out;
    uint32_t tab_cap = 1024;
    s->table = calloc(tab_cap, sizeof *s->table);
    if (!s->table)
        goto out;
    s->mask = tab_cap - 1;

    /* pass 1: dictionary, df, postings sizes */
    size_t k = 0;
    for (uint32_t d = 0; d < n; d++) {
        doc_rec *r = docs[d];
        const doc_terms *dt = r->terms;
        s->docs[d] = r;
        if (take_refs) { /* else the installer takes them (writer-only field) */
            r->refs++;
            s->n_docs = d + 1;
        }
        double dl = boost * dt->title_len + dt->body_len;
        s->norm[d] = (float)(k1 * (1.0 - b + b * dl / avgdl));
        for (uint32_t e = 0; e < dt->n; e++, k++) {
            const dt_entry *de = &dt->e[e];
            const char *txt = dt->text + de->off;
            uint32_t i = (uint32_t)de->hash & s->mask, tid = 0;
            while (s->table[i]) {
                term_info *t = &s->terms[s->table[i] - 1];
                if (t->hash == de->hash && t->str_len == de->len &&
                    memcmp(s->pool + t->str_off, txt, de->len) == 0) {
                    tid = s->table[i];
                    break;
                }
                i = (i + 1) & s->mask;
            }
            if (!tid) {
                if (grow((void **)&s->terms, &cap_terms, s->n_terms + 1, sizeof *s->terms))
                    goto out;
                if (grow((void **)&s->pool, &pool_cap, pool_len + de->len, 1))
                    goto out;
                term_info *t = &s->terms[s->n_terms];
                memset(t, 0, sizeof *t);
                t->hash = de->hash;
                t->str_off = (uint32_t)pool_len;
                t->str_len = de->len;
                memcpy(s->pool + pool_len, txt, de->len);
                pool_len += de->len;
                tid = ++s->n_terms;
                s->table[i] = tid;
                if ((size_t)s->n_terms * 2 > tab_cap) {
                    uint32_t nc = tab_cap * 2;
                    uint32_t *nt = calloc(nc, sizeof *nt);
                    if (!nt)
                        goto out;
                    for (uint32_t j = 0; j < s->n_terms; j++) {
                        uint32_t h = (uint32_t)s->terms[j].hash & (nc - 1);
                        while (nt[h])
                            h = (h + 1) & (nc - 1);
                        nt[h] = j + 1;
                    }
                    free(s->table);
                    s->table = nt;
                    tab_cap = nc;
                    s->mask = nc - 1;
                }
            }
            term_info *t = &s->terms[tid - 1];
            /* post_len accumulates sizes; last doc kept in skip_off for now */
            uint32_t prev1 = t->df ? t->skip_off + 1 : 0;
            t->post_len += (uint32_t)varint_len(d + 1 - prev1) + enc_tf(de->tf_title, de->tf_body, NULL);
            t->skip_off = d;
            t->df++;
            tids[k] = tid - 1;
        }
    }

    /* offsets */
    uint64_t post_total = 0;
    uint32_t skip_total = 0;
    for (uint32_t t = 0; t < s->n_terms; t++) {
        term_info *ti = &s->terms[t];
        ti->post_off = post_total;
        post_total += ti->post_len;
        ti->skip_off = skip_total;
        if (ti->df > BLOCK)
            skip_total += (ti->df + BLOCK - 1) / BLOCK;
        ti->max_tfn = 0;
    }
    s->post = malloc(post_total ? post_total : 1);
    s->skips = malloc((skip_total ? skip_total : 1) * sizeof *s->skips);
    pos = malloc((s->n_terms ? s->n_terms : 1) * sizeof *pos);
    last = malloc((s->n_terms ? s->n_terms : 1) * sizeof *last);
    count = calloc(s->n_terms ? s->n_terms : 1, sizeof *count);
    bmax = calloc(s->n_terms ? s->n_terms : 1, sizeof *bmax);
    if (!s->post || !s->skips || !pos || !last || !count || !bmax)
        goto out;
    s->post_bytes = post_total;
    s->n_skips = skip_total;
    for (uint32_t t = 0; t < s->n_terms; t++) {
        pos[t] = s->terms[t].post_off;
        last[t] = 0; /* prev1 */
    }

    /* pass 2: encode */
    k = 0;
    for (uint32_t d = 0; d < n; d++) {
        const doc_terms *dt = docs[d]->terms;
        double K = s->norm[d];
        for (uint32_t e = 0; e < dt->n; e++, k++) {
            uint32_t t = tids[k];
            term_info *ti = &s->terms[t];
            const dt_entry *de = &dt->e[e];
            uint8_t *p = s->post + pos[t];
            p = varint_put(p, d + 1 - last[t]);
            enc_tf(de->tf_title, de->tf_body, &p);
            pos[t] = (uint64_t)(p - s->post);
            last[t] = d + 1;
            double x = tfn(k1, boost * de->tf_title + de->tf_body, K);
            float xf = (float)x;
            if ((double)xf < x)
                xf = nextafterf(xf, INFINITY);
            if (xf > ti->max_tfn)
                ti->max_tfn = xf;
            if (xf > bmax[t])
                bmax[t] = xf;
            count[t]++;
            if (ti->df > BLOCK && (count[t] % BLOCK == 0 || count[t] == ti->df)) {
                skip_entry *se = &s->skips[ti->skip_off + (count[t] - 1) / BLOCK];
                se->last_doc = d;
                se->end_off = (uint32_t)(pos[t] - ti->post_off);
                se->max_tfn = bmax[t];
                bmax[t] = 0;
            }
        }
    }
    s->n_docs = n;
    s->bytes = sizeof *s + n * (sizeof *s->docs + sizeof *s->norm) + (size_t)s->n_terms * sizeof *s->terms +
               (size_t)tab_cap * sizeof *s->table + post_total + skip_total * sizeof *s->skips + pool_len;
    *out = s;
    s = NULL;
    rc = 0;
out:
    segment_free(s);
    free(tids);
    free(last);
    free(count);
    free(pos);
    free(bmax);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Publishing                                                              */

/* Segments and dead_df tables are shared by consecutive snapshots: one
 * belongs to the snapshots holding it, and is freed with the first one
 * replaced by a snapshot without it (none is ever taken back). */
static int snap_has_seg(const snapshot *sn, const segment *g)
{
    for (uint32_t k = 0; k < sn->n_segs; k++)
        if (sn->seg[k] == g)
            return 1;
    return 0;
}

static int snap_has_ddf(const snapshot *sn, const ddf_tab *t)
{
    for (uint32_t k = 0; k < sn->n_ddf; k++)
        if (sn->ddf[k] == t)
            return 1;
    return 0;
}

/* Frees sn and what of it keep (NULL: nothing) does not hold. */
static void snapshot_free(snapshot *sn, const snapshot *keep)
{
    if (!sn)
        return;
    for (uint32_t k = 0; k < sn->n_segs; k++)
        if (!keep || !snap_has_seg(keep, sn->seg[k]))
            segment_free(sn->seg[k]);
    for (uint32_t k = 0; k < sn->n_ddf; k++)
        if (!keep || !snap_has_ddf(keep, sn->ddf[k]))
            free((void *)sn->ddf[k]);
    free(sn->dead);
    free(sn);
}

/* Installs sn, waits for readers of the previous snapshot, frees it. */
static void install(hw_index *idx, snapshot *sn)
{
    snapshot *old = idx->current;
    __atomic_store_n(&idx->current, sn, __ATOMIC_RELEASE);
    if (old) {
        urcu_memb_synchronize_rcu();
        TSAN_ACQUIRE(&idx->tsan_sync);
        snapshot_free(old, sn);
    }
}

/* A snapshot of the writer's state with these frozen deltas and dead_df
 * tables (the writer's, or what a publish replaces them with) and active
 * (NULL: none); the dead bitset is copied. NULL when out of memory. */
static snapshot *snapshot_make(const hw_index *idx, segment *const *frozen, uint32_t nf, segment *active,
                               ddf_tab *const *ddf, uint32_t nd)
{
    snapshot *sn = calloc(1, sizeof *sn);
    if (!sn)
        return NULL;
    uint32_t n = 0, at = 0;
    if (idx->main) {
        sn->seg[n] = idx->main;
        sn->base[n++] = 0;
        at = idx->main->n_docs;
    }
    sn->n_main = at;
    for (uint32_t i = 0; i < nf; i++) {
        sn->seg[n] = frozen[i];
        sn->base[n++] = at;
        at += frozen[i]->n_docs;
    }
    sn->n_deadable = at;
    if (active) {
        sn->seg[n] = active;
        sn->base[n++] = at;
        at += active->n_docs;
    }
    sn->base[n] = at;
    sn->n_segs = n;
    size_t words = ((size_t)sn->n_deadable + 63) / 64;
    assert(words <= idx->dead_words || words == 0);
    int any_dead = 0;
    for (size_t i = 0; i < words && !any_dead; i++)
        any_dead = idx->dead[i] != 0;
    if (any_dead) {
        sn->dead = malloc(words * sizeof *sn->dead);
        if (!sn->dead) {
            free(sn);
            return NULL;
        }
        memcpy(sn->dead, idx->dead, words * sizeof *sn->dead);
    }
    for (uint32_t i = 0; i < nd; i++)
        sn->ddf[sn->n_ddf++] = ddf[i];
    sn->n_live = (uint32_t)idx->map_live;
    sn->n_locales = idx->n_locales;
    return sn;
}

/* Terms of docs[0..n) that lack them, in the threads a main build uses:
 * up to 4 (the online CPUs), each with its own tokenizer, scratch and bump
 * over an equal share of the documents; the calling thread takes the first
 * share. Memory goes to *bp (the other threads' bumps are chained onto
 * it). Returns 0 or the first error. */
#define BUILD_THREADS_MAX 4
#define BUILD_DOCS_PER_THREAD 4096 /* smaller builds stay on one thread */

typedef struct terms_job {
    const hw_index *idx;
    term_scratch ws;
    doc_rec **docs;
    size_t n;
    bump mem;
    int rc;
    hw_status st;
} terms_job;

static void *terms_job_run(void *arg)
{
    terms_job *j = arg;
    pthread_setname_np(pthread_self(), "hw-index-terms");
    for (size_t i = 0; i < j->n && j->rc == 0; i++)
        if (!j->docs[i]->terms)
            j->rc = rec_compute_terms(j->idx, &j->ws, j->docs[i], &j->mem, &j->st);
    return NULL;
}

static int compute_terms_parallel(const hw_index *idx, term_scratch *ws0, doc_rec **docs, size_t n, bump *bp,
                                  hw_status *st)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t t = cpus > 1 ? (size_t)cpus : 1;
    if (t > BUILD_THREADS_MAX)
        t = BUILD_THREADS_MAX;
    if (t > n / BUILD_DOCS_PER_THREAD)
        t = n / BUILD_DOCS_PER_THREAD;
    if (t < 2) {
        for (size_t i = 0; i < n; i++) {
            int rc;
            if (!docs[i]->terms && (rc = rec_compute_terms(idx, ws0, docs[i], bp, st)) != 0)
                return rc;
        }
        return 0;
    }
    terms_job jobs[BUILD_THREADS_MAX];
    pthread_t th[BUILD_THREADS_MAX];
    int started[BUILD_THREADS_MAX] = {0};
    memset(jobs, 0, sizeof jobs);
    size_t per = (n + t - 1) / t;
    int rc = 0;
    for (size_t i = 0; i < t; i++) {
        terms_job *j = &jobs[i];
        j->idx = idx;
        j->docs = docs + i * per;
        j->n = i * per >= n ? 0 : (n - i * per < per ? n - i * per : per);
        if (i == 0) {
            j->ws = *ws0;
            continue;
        }
        if (hw_tokenizer_create(&j->ws.tok, &j->st) != 0) {
            rc = hw_status_set(st, HW_ENOMEM, "index: out of memory building main");
            break;
        }
        if (pthread_create(&th[i], NULL, terms_job_run, j) != 0) {
            rc = hw_status_set(st, HW_ENOMEM, "index: cannot start a build thread");
            break;
        }
        started[i] = 1;
    }
    if (rc == 0) {
        jobs[0].mem = *bp;
        terms_job_run(&jobs[0]);
        *bp = jobs[0].mem;
        *ws0 = jobs[0].ws; /* its scratch may have grown */
        if (jobs[0].rc && !rc)
            rc = hw_status_set(st, jobs[0].rc, "%s", jobs[0].st.msg);
    }
    for (size_t i = 1; i < t; i++) {
        terms_job *j = &jobs[i];
        if (started[i]) {
            pthread_join(th[i], NULL);
            if (j->rc && !rc)
                rc = hw_status_set(st, j->rc, "%s", j->st.msg);
        }
        bump_adopt(bp, &j->mem);
        hw_tokenizer_destroy(j->ws.tok);
        ws_release(&j->ws);
    }
    return rc;
}

static void bg_reap(hw_index *idx, int wait);

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return (x > y) - (x < y);
}

/* A main's documents in address order: the passes over every document
 * record that installing and freeing a main make (under the writer mutex)
 * then walk memory forward instead of jumping at random. */
static void sort_docs_by_address(doc_rec **docs, size_t n)
{
    qsort(docs, n, sizeof *docs, cmp_ptr);
}

static int rebuild_main(hw_index *idx, hw_status *st)
{
    double t0 = now_ms();
    size_t n = idx->map_live, k = 0;
    doc_rec **docs = malloc((n ? n : 1) * sizeof *docs);
    snapshot *sn = calloc(1, sizeof *sn);
    segment *seg = NULL;
    bump terms_mem = {0};
    int rc;
    if (!docs || !sn) {
        rc = hw_status_set(st, HW_ENOMEM, "index: out of memory building main");
        goto fail;
    }
    uint64_t total_len = 0;
    for (size_t i = 0; i < idx->map_cap; i++) {
        doc_rec *r = idx->map[i].rec;
        if (r && r != TOMBSTONE)
            docs[k++] = r;
    }
    sort_docs_by_address(docs, k);
    if ((rc = compute_terms_parallel(idx, idx->ws, docs, k, &terms_mem, st)) != 0)
        goto fail;
    for (size_t i = 0; i < k; i++)
        total_len +=
            (uint64_t)(idx->opt.title_boost / TITLE_UNITS * docs[i]->terms->title_len) + docs[i]->terms->body_len;
    double avgdl = k ? (double)total_len / (double)k : 1.0;
    if (avgdl <= 0)
        avgdl = 1.0;
    if ((rc = segment_build(idx, docs, (uint32_t)k, avgdl, 1, &seg)) != 0) {
        hw_status_set(st, rc, "index: out of memory building main");
        goto fail;
    }
    size_t words = (k + 63) / 64;
    uint64_t *dead = calloc(words ? words : 1, sizeof *dead);
    if (!dead) {
        rc = hw_status_set(st, HW_ENOMEM, "index: out of memory building main");
        goto fail;
    }
    sn->seg[0] = seg;
    sn->base[0] = 0;
    sn->base[1] = (uint32_t)k;
    sn->n_segs = 1;
    sn->n_main = sn->n_deadable = (uint32_t)k;
    sn->n_live = (uint32_t)idx->map_live;
    sn->n_locales = idx->n_locales;
    install(idx, sn); /* frees the deltas and dead_df tables */
    free(idx->dead);
    idx->dead = dead;
    idx->dead_words = words;
    free(idx->ddf.slot);
    idx->ddf = (dead_df){0};
    idx->n_ddf_frozen = 0;
    idx->main = seg;
    idx->n_frozen = 0;
    idx->frozen_docs = 0;
    idx->active = NULL;
    idx->avgdl = avgdl;
    for (size_t i = 0; i < k; i++) {
        docs[i]->docid = (int32_t)i;
        rec_drop_terms(docs[i]);
    }
    for (size_t i = 0; i < idx->n_pending; i++)
        rec_unref(idx->pending[i]);
    idx->n_pending = 0;
    free(docs);
    bump_free(&terms_mem);
#ifdef __GLIBC__
    if (idx->trim)
        malloc_trim(0); /* return the build's transient heap memory */
#endif
    idx->last_main_build_ms = now_ms() - t0;
    return 0;
fail:
    for (size_t i = 0; i < idx->map_cap; i++) {
        doc_rec *r = idx->map[i].rec;
        if (r && r != TOMBSTONE && r->terms && r->terms->in_bump)
            r->terms = NULL;
    }
    bump_free(&terms_mem);
    segment_free(seg);
    free(sn);
    free(docs);
    return rc;
}

static int publish_delta(hw_index *idx, hw_status *st);
static int start_bg_build(hw_index *idx);
static int freeze_active(hw_index *idx);

static int publish(hw_index *idx, hw_status *st)
{
    double t0 = now_ms();
    bg_reap(idx, 0);
    /* drop replaced/deleted documents from pending */
    size_t m = 0;
    for (size_t i = 0; i < idx->n_pending; i++) {
        if (idx->pending[i]->live)
            idx->pending[m++] = idx->pending[i];
        else
            rec_unref(idx->pending[i]);
    }
    idx->n_pending = m;
    int rc;
    if ((m > 0 && !idx->main) ||
        (idx->main && idx->frozen_docs + m > idx->opt.delta_max_docs && !idx->bg && m > idx->main->n_docs)) {
        /* the first main, or more new documents than main holds: built here */
        rc = rebuild_main(idx, st);
        idx->last_publish_ms = now_ms() - t0;
        return rc;
    }
    rc = publish_delta(idx, st);
    if (rc == 0 && idx->main && !idx->bg && idx->frozen_docs + idx->n_pending > idx->opt.delta_max_docs) {
        /* main is rebuilt in the background from every live document
         * while the next changes are published in new deltas. The active
         * delta is frozen first, so that each delta is wholly in the build
         * (dropped when it installs) or wholly out of it (kept). A build
         * that cannot start (a thread, memory, no room for one more
         * frozen delta) is done here. */
        if ((idx->n_pending > 0 && freeze_active(idx) != 0) || start_bg_build(idx) != 0)
            rc = rebuild_main(idx, st);
    }
    idx->last_publish_ms = now_ms() - t0;
    return rc;
}

/* Freezes the active delta (the current snapshot's, built from exactly
 * the pending documents) as the newest frozen delta: its documents get
 * their global ids and leave pending. The current snapshot stays right as
 * it is (the same segments in the same order). Returns 0, or HW_ENOMEM
 * (no room for one more: nothing changes). */
static int freeze_active(hw_index *idx)
{
    segment *a = idx->active;
    if (!a || idx->n_frozen >= FROZEN_MAX)
        return HW_ENOMEM;
    assert(a->n_docs == idx->n_pending);
    uint32_t base = (idx->main ? idx->main->n_docs : 0) + idx->frozen_docs;
    size_t words = ((size_t)base + a->n_docs + 63) / 64;
    if (words > idx->dead_words) {
        size_t cap = words + words / 4 + 16;
        uint64_t *d = realloc(idx->dead, cap * sizeof *d);
        if (!d)
            return HW_ENOMEM;
        memset(d + idx->dead_words, 0, (cap - idx->dead_words) * sizeof *d);
        idx->dead = d;
        idx->dead_words = cap;
    }
    for (uint32_t i = 0; i < a->n_docs; i++) {
        assert(a->docs[i] == idx->pending[i] && idx->pending[i]->live);
        idx->pending[i]->docid = (int32_t)(base + i);
        rec_unref(idx->pending[i]); /* pending's reference; the segment has its own */
    }
    idx->n_pending = 0;
    idx->frozen[idx->n_frozen++] = a;
    idx->frozen_docs += a->n_docs;
    idx->active = NULL;
    return 0;
}

/* Where a merge of the newest frozen deltas starts: MERGE_FANIN deltas
 * of one size class (the largest at most twice the smallest) at the end
 * of the list, together at most delta_merge_docs documents, none of them
 * held by a running main build. Returns the first one's index, or
 * n_frozen when there is nothing to merge. */
static uint32_t merge_start(const hw_index *idx)
{
    uint32_t lo = idx->bg_frozen, n = idx->n_frozen;
    if (n < lo + MERGE_FANIN)
        return n;
    uint32_t from = n - MERGE_FANIN, lo_docs = UINT32_MAX, hi_docs = 0;
    uint64_t total = 0;
    for (uint32_t i = from; i < n; i++) {
        uint32_t d = idx->frozen[i]->n_docs;
        lo_docs = d < lo_docs ? d : lo_docs;
        hi_docs = d > hi_docs ? d : hi_docs;
        total += d;
    }
    if (hi_docs > 2 * (uint64_t)lo_docs || total > idx->opt.delta_merge_docs)
        return n;
    return from;
}

/* Merges frozen[from..n_frozen) into one segment over the same documents
 * in the same order (dead ones too: every global id, dead bit and dead_df
 * count stays right). Their documents still hold their terms (only main
 * drops them). */
static int merge_frozen(const hw_index *idx, uint32_t from, segment **out)
{
    uint32_t n = 0;
    for (uint32_t i = from; i < idx->n_frozen; i++)
        n += idx->frozen[i]->n_docs;
    doc_rec **docs = malloc((n ? n : 1) * sizeof *docs);
    if (!docs)
        return HW_ENOMEM;
    n = 0;
    for (uint32_t i = from; i < idx->n_frozen; i++) {
        const segment *g = idx->frozen[i];
        memcpy(docs + n, g->docs, g->n_docs * sizeof *docs);
        n += g->n_docs;
    }
    int rc = segment_build(idx, docs, n, idx->main ? idx->avgdl : 1.0, 1, out);
    free(docs);
    return rc;
}

/* Publishes main (as is), the frozen deltas (the newest merged when
 * merge_start says so), the pending documents as the active delta, the
 * deleted bitset, the dead_df tables (a copy of the writer's, the frozen
 * ones shared) and counts; then freezes the active delta when it holds
 * delta_active_docs documents, and the copy of the dead_df table when it
 * holds DDF_FREEZE terms. What one publish builds is bounded: the active
 * delta, at most one merge of delta_merge_docs documents, a dead_df table
 * of DDF_FREEZE terms (or one merge of two tables). */
static int publish_delta(hw_index *idx, hw_status *st)
{
    size_t m = idx->n_pending;
    int rc = HW_ENOMEM;
    segment *frozen[FROZEN_MAX], *merged = NULL, *active = NULL;
    ddf_tab *ddf[DDF_LEVELS_MAX + 1], *dmerged = NULL, *dcur = NULL;
    uint32_t nf = idx->n_frozen, nd = idx->n_ddf_frozen;
    snapshot *sn = NULL;
    memcpy(frozen, idx->frozen, nf * sizeof *frozen);
    memcpy(ddf, idx->ddf_frozen, nd * sizeof *ddf);
    for (size_t i = 0; i < m; i++) {
        if (!idx->pending[i]->terms && (rc = rec_compute_terms(idx, idx->ws, idx->pending[i], NULL, st)) != 0)
            return rc;
    }
    uint32_t from = merge_start(idx);
    if (from < nf) {
        if (merge_frozen(idx, from, &merged) != 0)
            goto nomem;
        frozen[from] = merged;
        nf = from + 1;
    }
    if (m > 0 && segment_build(idx, idx->pending, (uint32_t)m, idx->main ? idx->avgdl : 1.0, 1, &active) != 0)
        goto nomem;
    if (nd >= 2 && (nd == DDF_LEVELS_MAX || ddf[nd - 2]->used <= 2 * ddf[nd - 1]->used)) {
        if (!(dmerged = ddf_tab_merge(ddf[nd - 2], ddf[nd - 1])))
            goto nomem;
        ddf[nd - 2] = dmerged;
        nd--;
    }
    if (idx->ddf.used && !(dcur = ddf_tab_copy(&idx->ddf)))
        goto nomem;
    if (dcur)
        ddf[nd] = dcur;
    if (!(sn = snapshot_make(idx, frozen, nf, active, ddf, nd + (dcur != NULL))))
        goto nomem;
    install(idx, sn);
    memcpy(idx->frozen, frozen, nf * sizeof *frozen);
    idx->n_frozen = nf;
    memcpy(idx->ddf_frozen, ddf, nd * sizeof *ddf);
    idx->n_ddf_frozen = nd;
    idx->active = active;
    if (dcur && idx->ddf.used >= DDF_FREEZE && nd < DDF_LEVELS_MAX) {
        idx->ddf_frozen[idx->n_ddf_frozen++] = dcur;
        free(idx->ddf.slot);
        idx->ddf = (dead_df){0};
    }
    if (m >= idx->opt.delta_active_docs)
        (void)freeze_active(idx); /* no room: the active delta grows */
    return 0;
nomem:
    segment_free(merged);
    segment_free(active);
    free(dmerged);
    free(dcur);
    return hw_status_set(st, HW_ENOMEM, "index: out of memory publishing");
}

/* ---------------------------------------------------------------------- */
/* Background main builds                                                  */

/* A main rebuild that a single change triggers runs on its own thread:
 * it takes the live documents under the writer lock (from main and the
 * frozen deltas, the active one frozen first), then computes their terms
 * and builds the segment without it, while changes go on being published
 * in new deltas; then, under the lock again, it installs the new main:
 * documents deleted or replaced meanwhile are dead in it, the deltas
 * frozen meanwhile stay. So a change is visible in the time of a delta
 * build, not of a main build. The build takes no reference on its
 * documents and marks none: main and the frozen deltas it reads hold
 * them until it installs (nothing else replaces them), so starting costs
 * a copy of pointers, and installing one pass over the records, in
 * address order (the old main's references move to the new one). */
typedef struct main_build {
    hw_index *idx;
    doc_rec **docs;
    size_t k;
    term_scratch ws;
    bump mem;
    segment *seg;
    segment *old_main;       /* main when the build started (it holds until the install) */
    uint64_t *dead_at_start; /* its dead bits then: the documents not in the build */
    double avgdl, t0;
    int rc;
    int installed;
} main_build;

/* Under the writer lock, when the build did not install: the terms it
 * computed (in its bump) leave the documents. */
static void bg_release(main_build *b)
{
    if (b->installed)
        return;
    for (size_t i = 0; i < b->k; i++) {
        doc_rec *r = b->docs[i];
        if (r->terms && r->terms->in_bump)
            r->terms = NULL;
    }
}

/* Whether live document r is in the running main build, whose thread
 * writes the terms of the main documents (r->terms is then not to read). */
static int in_build(const hw_index *idx, const doc_rec *r)
{
    return idx->bg && !idx->bg_done && r->docid >= 0 && (uint32_t)r->docid < idx->bg_docid_end;
}

/* Under the writer lock: the built main replaces the old one and the
 * frozen deltas it holds; the deltas frozen since it started stay, after
 * it (their documents' global ids shift). */
static void bg_install(hw_index *idx, main_build *b)
{
    size_t k = b->k, kept_docs = 0;
    for (uint32_t i = idx->bg_frozen; i < idx->n_frozen; i++)
        kept_docs += idx->frozen[i]->n_docs;
    size_t words = (k + kept_docs + 63) / 64;
    uint64_t *dead = calloc(words ? words : 1, sizeof *dead);
    if (!dead) {
        b->seg->n_docs = 0; /* it took no references */
        segment_free(b->seg);
        b->seg = NULL;
        return;
    }
    free(idx->ddf.slot);
    idx->ddf = (dead_df){0};
    idx->n_ddf_frozen = 0; /* the tables go with the next snapshot */
    /* one pass over main's records: its reference, global id, dead bit,
     * and the terms main does not keep. The old main's references move to
     * the new main (the old one releases only those of its documents dead
     * when the build started, not in it): no pass over the old main's
     * records when it is freed. */
    uint32_t old_nm = b->old_main ? b->old_main->n_docs : 0;
    if (b->old_main) {
        b->old_main->unref_only = b->dead_at_start;
        b->dead_at_start = NULL;
        b->old_main->retire = 1; /* its memory: see bg_run */
    }
    for (size_t i = 0; i < k; i++) {
        doc_rec *r = b->docs[i];
        int from_main = r->docid >= 0 && (uint32_t)r->docid < old_nm;
        if (!from_main)
            r->refs++; /* from a frozen delta: the new main's own reference */
        r->docid = (int32_t)i;
        if (!r->live) {
            dead[i / 64] |= 1ull << (i % 64);
            for (uint32_t j = 0; j < r->terms->n; j++)
                if (dead_df_add(&idx->ddf, r->terms->e[j].hash) != 0)
                    break;
        }
        /* without reading the terms (a second cache miss per document):
         * a main document's were computed by the build, in its bump (main
         * keeps none); a frozen delta's are its own */
        assert(r->terms && r->terms->in_bump == from_main);
        if (from_main)
            r->terms = NULL;
        else
            rec_drop_terms(r);
    }
    b->installed = 1;
    /* the kept frozen deltas: documents put since the build started, with
     * their terms (not in main) */
    uint32_t nf = 0;
    size_t base = k;
    for (uint32_t i = idx->bg_frozen; i < idx->n_frozen; i++) {
        segment *g = idx->frozen[i];
        for (uint32_t j = 0; j < g->n_docs; j++) {
            doc_rec *r = g->docs[j];
            r->docid = (int32_t)(base + j);
            if (!r->live) {
                dead[(base + j) / 64] |= 1ull << ((base + j) % 64);
                for (uint32_t t = 0; t < r->terms->n; t++)
                    if (dead_df_add(&idx->ddf, r->terms->e[t].hash) != 0)
                        break;
            }
        }
        base += g->n_docs;
        idx->frozen[nf++] = g;
    }
    idx->n_frozen = nf;
    idx->frozen_docs = (uint32_t)kept_docs;
    idx->bg_frozen = 0;
    idx->bg_docid_end = 0;
    /* pending: documents put since the build started (the active delta
     * was frozen when it started) */
    size_t m = 0;
    for (size_t i = 0; i < idx->n_pending; i++) {
        doc_rec *r = idx->pending[i];
        if (!r->live)
            rec_unref(r);
        else
            idx->pending[m++] = r;
    }
    idx->n_pending = m;
    free(idx->dead);
    idx->dead = dead;
    idx->dead_words = words ? words : 1;
    idx->main = b->seg;
    idx->active = NULL; /* publish_delta builds it again */
    idx->avgdl = b->avgdl;
    b->seg = NULL;
    hw_status st;
    if (publish_delta(idx, &st) != 0) {
        /* the next change publishes; searches keep the last snapshot */
    }
    idx->last_main_build_ms = now_ms() - b->t0;
}

static void *bg_run(void *arg)
{
    main_build *b = arg;
    hw_index *idx = b->idx;
    hw_status st;
    pthread_setname_np(pthread_self(), "hw-index-build");
    sort_docs_by_address(b->docs, b->k);
    b->rc = compute_terms_parallel(idx, &b->ws, b->docs, b->k, &b->mem, &st);
    uint64_t total_len = 0;
    for (size_t i = 0; b->rc == 0 && i < b->k; i++)
        total_len += (uint64_t)(idx->opt.title_boost / TITLE_UNITS * b->docs[i]->terms->title_len) +
                     b->docs[i]->terms->body_len;
    b->avgdl = b->k && total_len ? (double)total_len / (double)b->k : 1.0;
    if (b->rc == 0)
        b->rc = segment_build(idx, b->docs, (uint32_t)b->k, b->avgdl, 0, &b->seg);
    pthread_mutex_lock(&idx->wlock);
    double t_lock = now_ms();
    if (b->rc == 0)
        bg_install(idx, b);
    idx->bg_frozen = 0; /* installed, or the deltas stay as they are */
    idx->bg_docid_end = 0;
    bg_release(b);
    segment *old = b->old_main && b->old_main->released ? b->old_main : NULL;
    if (b->old_main && !old)
        b->old_main->retire = 0; /* still published (out of memory): freed as usual */
    idx->last_install_ms = now_ms() - t_lock;
    pthread_mutex_unlock(&idx->wlock);
    /* what only this thread holds now, freed without the writer mutex:
     * the old main's memory and the documents' terms (every pointer to
     * them was cleared under the mutex) */
    if (old)
        segment_free_memory(old);
    bump_free(&b->mem);
    pthread_mutex_lock(&idx->wlock);
    idx->bg_done = 1;
    pthread_mutex_unlock(&idx->wlock);
    return NULL;
}

/* Joins a finished build thread (writer lock held) or, with wait, any
 * (writer lock not held). */
static void bg_reap(hw_index *idx, int wait)
{
    main_build *b = idx->bg;
    if (!b || (!wait && !idx->bg_done))
        return;
    pthread_join(idx->bg_thread, NULL);
    segment_free(b->seg);
    bump_free(&b->mem);
    hw_tokenizer_destroy(b->ws.tok);
    ws_release(&b->ws);
    free(b->docs);
    free(b->dead_at_start);
    free(b);
    idx->bg = NULL;
    idx->bg_done = 0;
}

/* Starts a background main build of the live documents. Returns 0 or
 * HW_ENOMEM (nothing started). */
static int start_bg_build(hw_index *idx)
{
    main_build *b = calloc(1, sizeof *b);
    if (!b)
        return HW_ENOMEM;
    b->idx = idx;
    b->t0 = now_ms();
    b->docs = malloc((idx->map_live ? idx->map_live : 1) * sizeof *b->docs);
    if (!b->docs || hw_tokenizer_create(&b->ws.tok, NULL) != 0) {
        free(b->docs);
        free(b);
        return HW_ENOMEM;
    }
    /* the live documents: main's and the frozen deltas' without a dead
     * bit (the caller froze the active delta) */
    assert(idx->n_pending == 0);
    const segment *segs[FROZEN_MAX + 1];
    uint32_t n_segs = 0, g0 = 0;
    if (idx->main)
        segs[n_segs++] = idx->main;
    for (uint32_t i = 0; i < idx->n_frozen; i++)
        segs[n_segs++] = idx->frozen[i];
    for (uint32_t i = 0; i < n_segs; i++) {
        for (uint32_t j = 0; j < segs[i]->n_docs; j++) {
            uint32_t d = g0 + j;
            if (!(idx->dead[d / 64] >> (d % 64) & 1))
                b->docs[b->k++] = segs[i]->docs[j];
        }
        g0 += segs[i]->n_docs;
    }
    assert(b->k == idx->map_live);
    if (idx->main) {
        size_t words = ((size_t)idx->main->n_docs + 63) / 64;
        b->dead_at_start = malloc((words ? words : 1) * sizeof *b->dead_at_start);
        if (!b->dead_at_start) {
            hw_tokenizer_destroy(b->ws.tok);
            free(b->docs);
            free(b);
            return HW_ENOMEM;
        }
        memcpy(b->dead_at_start, idx->dead, words * sizeof *b->dead_at_start);
        if (idx->main->n_docs % 64) /* bits past main's documents are frozen deltas' */
            b->dead_at_start[words - 1] &= (1ull << (idx->main->n_docs % 64)) - 1;
        b->old_main = idx->main;
    }
    idx->bg_frozen = idx->n_frozen;
    idx->bg_docid_end = g0;
    idx->bg = b;
    idx->bg_done = 0;
    if (pthread_create(&idx->bg_thread, NULL, bg_run, b) != 0) {
        hw_tokenizer_destroy(b->ws.tok);
        free(b->docs);
        free(b->dead_at_start);
        free(b);
        idx->bg = NULL;
        idx->bg_frozen = 0;
        idx->bg_docid_end = 0;
        return HW_ENOMEM;
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Index lifecycle and writes                                              */

int hw_index_create(hw_index **out, const hw_index_options *opts, hw_status *st)
{
    *out = NULL;
    hw_index_options o = opts ? *opts : (hw_index_options){0};
    if (o.title_boost == 0)
        o.title_boost = 2.0;
    if (o.k1 == 0)
        o.k1 = 1.2;
    if (o.b == 0)
        o.b = 0.75;
    if (o.delta_max_docs == 0)
        o.delta_max_docs = 1024;
    if (o.delta_active_docs == 0)
        o.delta_active_docs = 256;
    if (o.delta_merge_docs == 0)
        o.delta_merge_docs = MERGE_FANIN * o.delta_active_docs;
    if (o.answer_threshold == 0)
        o.answer_threshold = 0.88;
    if (o.faq_near_similarity == 0)
        o.faq_near_similarity = 0.8;
    if (o.alt_boost == 0)
        o.alt_boost = 1.5;
    if (o.compress_min_bytes == 0)
        o.compress_min_bytes = 768;
    if (!(o.title_boost > 0 && o.title_boost <= 100) || !(o.k1 > 0 && o.k1 <= 10) || !(o.b > 0 && o.b <= 1) ||
        !(o.answer_threshold > 0 && o.answer_threshold <= 1) ||
        !(o.faq_near_similarity > 0 && o.faq_near_similarity <= 1) || !(o.alt_boost > 0 && o.alt_boost <= 100))
        return hw_status_set(st, HW_EINVALID, "index options out of range");
    hw_index *idx = calloc(1, sizeof *idx);
    if (!idx)
        return hw_status_set(st, HW_ENOMEM, "index: out of memory");
    idx->opt = o;
    idx->trim = 1;
    double units = o.alt_boost / o.title_boost * TITLE_UNITS;
    idx->alt_units = units < 1 ? 1 : units > 1000 ? 1000 : (uint32_t)(units + 0.5);
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&idx->wlock, &a);
    pthread_mutexattr_destroy(&a);
    int rc = hw_tokenizer_create(&idx->wtok, st);
    snapshot *sn = calloc(1, sizeof *sn);
    idx->ws = calloc(1, sizeof *idx->ws);
    if (idx->ws)
        idx->ws->tok = idx->wtok;
    if (rc != 0 || !sn || !idx->ws) {
        free(sn);
        hw_index_destroy(idx);
        return rc ? rc : hw_status_set(st, HW_ENOMEM, "index: out of memory");
    }
    idx->current = sn;
    *out = idx;
    return 0;
}

void hw_index_destroy(hw_index *idx)
{
    if (!idx)
        return;
    bg_reap(idx, 1);
    if (idx->current)
        snapshot_free(idx->current, NULL); /* main, deltas, dead_df tables */
    for (size_t i = 0; i < idx->n_pending; i++)
        rec_unref(idx->pending[i]);
    for (size_t i = 0; i < idx->map_cap; i++)
        if (idx->map[i].rec && idx->map[i].rec != TOMBSTONE)
            rec_unref(idx->map[i].rec);
    for (uint32_t i = 0; i < idx->n_locales; i++)
        free(idx->locales[i]);
    free(idx->map);
    free(idx->pending);
    free(idx->dead);
    free(idx->ddf.slot);
    hw_tokenizer_destroy(idx->wtok);
    hw_syn_table_free(idx->syn);
    if (idx->ws) {
        ws_release(idx->ws);
        free(idx->ws);
    }
    ZSTD_freeCCtx(idx->cctx);
    free(idx->zbuf);
    pthread_mutex_destroy(&idx->wlock);
    free(idx);
}

void hw_index_reader_register(void)
{
    urcu_memb_register_thread();
}
void hw_index_reader_unregister(void)
{
    urcu_memb_unregister_thread();
}

/* Marks document r of main or a frozen delta dead and counts its terms in
 * idx->ddf. A main document's terms are computed again (main dropped
 * them; a tokenization of one document); a frozen delta's still has them.
 * Out of memory leaves the statistics counting it, as before this
 * existed; the document is dead either way. */
static void mark_dead(hw_index *idx, doc_rec *r)
{
    idx->dead[r->docid / 64] |= 1ull << (r->docid % 64);
    const doc_terms *dt = in_build(idx, r) ? NULL : r->terms;
    doc_rec tmp = {0}; /* the fields rec_compute_terms reads, so that a build
                          thread writing r->terms is not raced */
    if (!dt) {
        tmp.title = r->title;
        tmp.body = r->body;
        tmp.body_len = r->body_len;
        tmp.body_zlen = r->body_zlen;
        tmp.alts = r->alts;
        tmp.n_alts = r->n_alts;
        if (rec_compute_terms(idx, idx->ws, &tmp, NULL, NULL) != 0)
            return;
        dt = tmp.terms;
    }
    for (uint32_t i = 0; i < dt->n; i++)
        if (dead_df_add(&idx->ddf, dt->e[i].hash) != 0)
            break;
    free(tmp.terms);
}

static int valid_id(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > HW_INDEX_MAX_ID)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!hw_index_id_char((unsigned char)id[i]))
            return 0;
    return 1;
}

static int check_text(const char *field, const char *s, size_t max, int required, hw_status *st)
{
    if (!s)
        return hw_status_set(st, HW_EINVALID, "%s: missing", field);
    size_t n = strlen(s);
    if (required && n == 0)
        return hw_status_set(st, HW_EINVALID, "%s: empty", field);
    if (n > max)
        return hw_status_set(st, HW_ETOOBIG, "%s: %zu bytes, limit %zu", field, n, max);
    hw_status vs;
    if (hw_utf8_validate(s, n, &vs) != 0)
        return hw_status_set(st, HW_EINVALID, "%s: %s", field, vs.msg);
    return 0;
}

/* Returns the locale id, interning it; -1 when the table is full. */
static int intern_locale(hw_index *idx, const char *loc)
{
    for (uint32_t i = 0; i < idx->n_locales; i++)
        if (strcmp(idx->locales[i], loc) == 0)
            return (int)i;
    if (idx->n_locales >= MAX_LOCALES)
        return -1;
    char *c = strdup(loc);
    if (!c)
        return -2;
    idx->locales[idx->n_locales] = c;
    return (int)idx->n_locales++;
}

static int find_locale(const char *const *locales, uint32_t n, const char *loc)
{
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(locales[i], loc) == 0)
            return (int)i;
    return -1;
}

/* The hash of the token pair (a, b), in this order. */
static uint64_t pair_hash(uint64_t a, uint64_t b)
{
    return (a * 0x9E3779B97F4A7C15ull) ^ (b + 0x632BE59BD9B4E019ull + (a << 6) + (a >> 2));
}

/* Sorted unique term-hash sets of a document's questions (an FAQ's
 * question or an article's title, then the alternate questions), for
 * question similarity: *sets (malloc) and *off (n_alts + 2 offsets). */
static int question_sets(hw_index *idx, const hw_doc *doc, size_t n_alts, uint64_t **sets_out, uint32_t **off_out,
                    size_t *total_out, size_t *pairs_out, hw_status *st)
{
    const hw_token *tk;
    size_t nt, total = 0, cap = 0;
    uint64_t *sets = NULL;
    uint32_t *off = malloc((n_alts + 2) * sizeof *off);
    int rc = off ? 0 : HW_ENOMEM;
    for (size_t q = 0; rc == 0 && q < n_alts + 1; q++) {
        const char *src = q == 0 ? doc->title : doc->alt_questions[q - 1];
        off[q] = (uint32_t)total;
        if ((rc = hw_tokenize(idx->wtok, src, strlen(src), &tk, &nt, st)) != 0)
            break;
        if ((rc = grow((void **)&sets, &cap, total + nt + 1, sizeof *sets)) != 0)
            break;
        for (size_t i = 0; i < nt; i++)
            sets[total + i] = tk[i].hash;
        total += sort_unique_u64(sets + total, nt);
    }
    /* then the adjacent pairs of every question, one sorted set */
    size_t pairs = 0;
    for (size_t q = 0; rc == 0 && q < n_alts + 1; q++) {
        const char *src = q == 0 ? doc->title : doc->alt_questions[q - 1];
        if ((rc = hw_tokenize(idx->wtok, src, strlen(src), &tk, &nt, st)) != 0)
            break;
        if ((rc = grow((void **)&sets, &cap, total + pairs + nt + 1, sizeof *sets)) != 0)
            break;
        for (size_t i = 0; i + 1 < nt; i++)
            sets[total + pairs++] = pair_hash(tk[i].hash, tk[i + 1].hash);
    }
    if (rc == 0)
        pairs = sort_unique_u64(sets + total, pairs);
    if (rc != 0) {
        free(off);
        free(sets);
        return rc == HW_ENOMEM ? hw_status_set(st, rc, "index: out of memory") : rc;
    }
    off[n_alts + 1] = (uint32_t)total;
    *sets_out = sets;
    *off_out = off;
    *total_out = total;
    *pairs_out = pairs;
    return 0;
}

/* Creates a record holding copies of doc's fields (one allocation), its
 * FAQ question sets and its terms (a second allocation, writer-only). */
static int rec_create(hw_index *idx, const hw_doc *doc, int locale_id, doc_rec **out, hw_status *st)
{
    size_t n_alts = doc->n_alt_questions;
    size_t id_len = strlen(doc->id), tl = strlen(doc->title), bl = strlen(doc->body);
    size_t alt_bytes = 0, n_sets = 0, n_pairs = 0;
    uint64_t *sets = NULL;
    uint32_t *off = NULL;
    int rc;
    for (size_t i = 0; i < n_alts; i++)
        alt_bytes += strlen(doc->alt_questions[i]) + 1;
    if ((rc = question_sets(idx, doc, n_alts, &sets, &off, &n_sets, &n_pairs, st)) != 0)
        return rc;
    n_sets += n_pairs; /* the pairs follow the question sets */
    /* the body as kept: compressed when long enough and it pays */
    const char *body = doc->body;
    size_t body_bytes = bl + 1, zlen = 0;
    /* Compressed here, on the writer, even in a batch: compressing on the
     * build's threads instead left the plain copies' holes in the heap
     * (resident memory +56% at 1M articles, bench/RESULTS.md). */
    if (bl >= idx->opt.compress_min_bytes)
        rc = compress_body(&idx->cctx, &idx->zbuf, &idx->zbuf_cap, doc->body, bl, &zlen);
    if (rc != 0) {
        free(sets);
        free(off);
        return hw_status_set(st, rc, "index: out of memory");
    }
    if (zlen) {
        body = idx->zbuf;
        body_bytes = zlen;
    }
    /* layout: rec | qsets (u64) | alt pointers | qset offsets (u32) | strings */
    size_t n_off = n_alts + 2;
    size_t bytes = sizeof(doc_rec) + n_sets * sizeof(uint64_t) + (n_alts + 1) * sizeof(char *) +
                   n_off * sizeof(uint32_t) + id_len + tl + body_bytes + 2 + alt_bytes;
    doc_rec *r = calloc(1, bytes);
    if (!r) {
        free(sets);
        free(off);
        return hw_status_set(st, HW_ENOMEM, "index: out of memory");
    }
    uint64_t *qs = (uint64_t *)(r + 1);
    char **alts = (char **)(qs + n_sets);
    uint32_t *qo = (uint32_t *)(alts + n_alts + 1);
    char *p = (char *)(qo + n_off);
    if (n_sets)
        memcpy(qs, sets, n_sets * sizeof *qs);
    if (n_off)
        memcpy(qo, off, n_off * sizeof *qo);
    free(sets);
    free(off);
    r->qsets = qs;
    r->qset_off = n_off ? qo : NULL;
    r->pairs = qs + (n_sets - n_pairs);
    r->n_pairs = (uint32_t)n_pairs;
    r->id = memcpy(p, doc->id, id_len + 1), p += id_len + 1;
    r->title = memcpy(p, doc->title, tl + 1), p += tl + 1;
    r->body = memcpy(p, body, body_bytes), p += body_bytes;
    r->body_len = (uint32_t)bl;
    r->body_zlen = (uint32_t)zlen;
    for (size_t i = 0; i < n_alts; i++) {
        size_t l = strlen(doc->alt_questions[i]);
        alts[i] = memcpy(p, doc->alt_questions[i], l + 1);
        p += l + 1;
    }
    r->alts = (const char **)alts;
    r->n_alts = (uint16_t)n_alts;
    r->kind = (uint8_t)doc->kind;
    r->locale_id = (uint8_t)locale_id;
    r->locale = idx->locales[locale_id];
    r->text_bytes = (uint32_t)(tl + bl + alt_bytes);
    r->docid = -1;
    r->refs = 1;
    r->alloc_bytes = bytes;
    /* in a batch the terms are computed at commit, in bulk */
    if (!idx->in_batch && (rc = rec_compute_terms(idx, idx->ws, r, NULL, st)) != 0) {
        free(r);
        return rc;
    }
    *out = r;
    return 0;
}

int hw_index_set_synonyms(hw_index *idx, const hw_synonym_set *sets, size_t n, hw_status *st)
{
    pthread_mutex_lock(&idx->wlock);
    hw_syn_table *t;
    int rc = hw_syn_table_build(idx->wtok, sets, n, &t, st);
    if (rc == 0) {
        hw_syn_table *old = idx->syn;
        __atomic_store_n(&idx->syn, t, __ATOMIC_RELEASE);
        if (old) {
            urcu_memb_synchronize_rcu();
            TSAN_ACQUIRE(&idx->tsan_sync);
            hw_syn_table_free(old);
        }
    }
    pthread_mutex_unlock(&idx->wlock);
    return rc;
}

int hw_index_put(hw_index *idx, const hw_doc *doc, hw_status *st)
{
    int rc;
    if (!doc || (doc->kind != HW_DOC_ARTICLE && doc->kind != HW_DOC_FAQ))
        return hw_status_set(st, HW_EINVALID, "kind: must be article or FAQ");
    if (!valid_id(doc->id))
        return hw_status_set(st, HW_EINVALID, "id: 1 to 128 bytes of letters, digits and - . _ ~ ! $ & ' ( ) * + , ; = : @");
    size_t tmax = doc->kind == HW_DOC_FAQ ? 1024 : 512;
    size_t bmax = doc->kind == HW_DOC_FAQ ? 16 * 1024 : HW_INDEX_MAX_BODY;
    if ((rc = check_text(doc->kind == HW_DOC_FAQ ? "question" : "title", doc->title, tmax, 1, st)) ||
        (rc = check_text(doc->kind == HW_DOC_FAQ ? "answer" : "body", doc->body, bmax, 1, st)))
        return rc;
    {
        if (doc->n_alt_questions > HW_INDEX_MAX_ALT)
            return hw_status_set(st, HW_ETOOBIG, "alternate_questions: more than %d", HW_INDEX_MAX_ALT);
        if (doc->n_alt_questions && !doc->alt_questions)
            return hw_status_set(st, HW_EINVALID, "alternate_questions: missing");
        for (size_t i = 0; i < doc->n_alt_questions; i++)
            if ((rc = check_text("alternate_questions", doc->alt_questions[i], 1024, 1, st)))
                return rc;
    }
    const char *loc = doc->locale && doc->locale[0] ? doc->locale : "en";
    if (strlen(loc) > MAX_LOCALE_LEN || hw_utf8_validate(loc, strlen(loc), NULL) != 0)
        return hw_status_set(st, HW_EINVALID, "locale: at most %d bytes of UTF-8", MAX_LOCALE_LEN);

    pthread_mutex_lock(&idx->wlock);
    int lid = intern_locale(idx, loc);
    doc_rec *r = NULL;
    if (lid < 0) {
        rc = lid == -1 ? hw_status_set(st, HW_EINVALID, "locale: more than %d distinct locales", MAX_LOCALES)
                       : hw_status_set(st, HW_ENOMEM, "index: out of memory");
        goto out;
    }
    if ((rc = rec_create(idx, doc, lid, &r, st)) != 0)
        goto out;
    if (map_reserve(idx) != 0 ||
        grow((void **)&idx->pending, &idx->cap_pending, idx->n_pending + 1, sizeof *idx->pending)) {
        rec_unref(r);
        rc = hw_status_set(st, HW_ENOMEM, "index: out of memory");
        goto out;
    }
    uint64_t h = key_hash(doc->kind, doc->id, strlen(doc->id));
    map_slot *slot = map_find(idx, h, doc->kind, doc->id);
    if (slot) {
        doc_rec *old = slot->rec;
        old->live = 0;
        if (old->docid >= 0)
            mark_dead(idx, old);
        idx->text_bytes -= old->text_bytes;
        idx->doc_bytes -= old->alloc_bytes;
        rec_unref(old);
        slot->rec = r;
    } else {
        size_t i = h & (idx->map_cap - 1);
        while (idx->map[i].rec && idx->map[i].rec != TOMBSTONE)
            i = (i + 1) & (idx->map_cap - 1);
        if (!idx->map[i].rec)
            idx->map_used++;
        idx->map[i].hash = h;
        idx->map[i].rec = r;
        idx->map_live++;
    }
    r->live = 1;
    idx->text_bytes += r->text_bytes;
    idx->doc_bytes += r->alloc_bytes;
    r->refs++;
    idx->pending[idx->n_pending++] = r;
    if (!idx->in_batch)
        rc = publish(idx, st);
out:
    pthread_mutex_unlock(&idx->wlock);
    return rc;
}

int hw_index_delete(hw_index *idx, hw_doc_kind kind, const char *id, hw_status *st)
{
    if (kind != HW_DOC_ARTICLE && kind != HW_DOC_FAQ)
        return hw_status_set(st, HW_EINVALID, "kind: must be article or FAQ");
    if (!id)
        return hw_status_set(st, HW_EINVALID, "id: missing");
    int rc = 0;
    pthread_mutex_lock(&idx->wlock);
    map_slot *slot = map_find(idx, key_hash(kind, id, strlen(id)), kind, id);
    if (!slot) {
        rc = hw_status_set(st, HW_ENOTFOUND, "%s %s: not found", kind == HW_DOC_FAQ ? "FAQ" : "article", id);
        goto out;
    }
    doc_rec *old = slot->rec;
    old->live = 0;
    if (old->docid >= 0)
        mark_dead(idx, old);
    idx->text_bytes -= old->text_bytes;
    idx->doc_bytes -= old->alloc_bytes;
    slot->rec = TOMBSTONE;
    idx->map_live--;
    rec_unref(old);
    if (!idx->in_batch)
        rc = publish(idx, st);
out:
    pthread_mutex_unlock(&idx->wlock);
    return rc;
}

void hw_index_flush(hw_index *idx)
{
    pthread_mutex_lock(&idx->wlock);
    while (idx->bg && !idx->bg_done) {
        pthread_mutex_unlock(&idx->wlock);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&idx->wlock);
    }
    bg_reap(idx, 0);
    pthread_mutex_unlock(&idx->wlock);
}

void hw_index_set_trim(hw_index *idx, int on)
{
    pthread_mutex_lock(&idx->wlock);
    idx->trim = on != 0;
    pthread_mutex_unlock(&idx->wlock);
}

void hw_index_batch_begin(hw_index *idx)
{
    pthread_mutex_lock(&idx->wlock);
    idx->in_batch = 1;
}

int hw_index_batch_commit(hw_index *idx, hw_status *st)
{
    idx->in_batch = 0;
    int rc = publish(idx, st);
    pthread_mutex_unlock(&idx->wlock);
    return rc;
}

void hw_index_stats_get(hw_index *idx, hw_index_stats *o)
{
    memset(o, 0, sizeof *o);
    pthread_mutex_lock(&idx->wlock);
    snapshot *sn = idx->current;
    o->docs = idx->map_live;
    o->main_docs = sn->n_main;
    o->delta_docs = sn->base[sn->n_segs] - sn->n_main;
    o->delta_segments = sn->n_segs - (sn->n_segs && sn->seg[0] == idx->main ? 1 : 0);
    uint64_t seg_bytes = 0, terms_cache = 0;
    for (uint32_t k = 0; k < sn->n_segs; k++) {
        const segment *g = sn->seg[k];
        o->terms += g->n_terms;
        o->postings_bytes += g->post_bytes + g->n_skips * sizeof(skip_entry);
        seg_bytes += g->bytes;
        for (uint32_t d = 0; g != idx->main && d < g->n_docs; d++) /* deltas' documents keep their terms */
            if (g->docs[d]->terms && !g->docs[d]->terms->in_bump)
                terms_cache += g->docs[d]->terms->bytes;
    }
    for (uint32_t k = 0; k < sn->n_ddf; k++)
        seg_bytes += sizeof *sn->ddf[k] + ((size_t)sn->ddf[k]->mask + 1) * sizeof(dead_df_slot);
    o->index_bytes = sizeof *idx + idx->doc_bytes + terms_cache + idx->map_cap * sizeof(map_slot) +
                     idx->cap_pending * sizeof(doc_rec *) + idx->dead_words * 8 + seg_bytes;
    o->text_bytes = idx->text_bytes;
    o->last_main_build_ms = idx->last_main_build_ms;
    o->last_publish_ms = idx->last_publish_ms;
    o->last_install_ms = idx->last_install_ms;
    pthread_mutex_unlock(&idx->wlock);
}

/* ---------------------------------------------------------------------- */
/* Searching                                                               */

/* A term's postings over every segment of a snapshot, in global doc-id
 * order: the segments hold consecutive id ranges, so the term's lists,
 * one after the other, are one list (one cursor per term however many
 * deltas there are). */
typedef struct cursor {
    const snapshot *sn;
    const term_info *const *tis; /* per segment; NULL: not in it */
    uint32_t segi;               /* the segment read now */
    uint32_t base, seg_end;      /* its global id range */
    const segment *seg;
    const term_info *ti;
    uint64_t df; /* postings over every segment */
    const uint8_t *p, *start, *end;
    const skip_entry *skips;
    uint32_t n_blocks, blk;
    uint32_t sblk;  /* block-max probe: the block holding the last probed doc */
    uint32_t prev1; /* local doc + 1 of the current posting */
    uint32_t doc;   /* global doc id, DOC_NONE when exhausted */
    uint32_t tf_title, tf_body;
    uint32_t qterm;
    double idf, ub;
} cursor;

typedef struct qterm {
    uint64_t hash;
    const char *text; /* in the tokenizer's buffer during the search */
    uint32_t len;
    uint32_t flags; /* HW_TOKEN_* */
    uint32_t df;
    double idf;
    double w;     /* query weight: 1 for the query's own terms; a synonym's
                     tokens share the weight of the term they stand for */
    uint8_t orig; /* one of the query's own terms (not a synonym's) */
    uint32_t ti_at; /* its term_info per segment: searcher qti[ti_at..+n_segs) */
} qterm;

/* A synonym set applied to the query: the query's tokens [pos, pos + n)
 * (hashes in span) stand for the set's term; every other term of the set
 * is an alternative, its tokens the qterms altq[alt_off..alt_off+n_alt)
 * grouped by alt_len. */
#define MAX_SYN_MATCHES 16
#define MAX_SYN_QTERMS 128
typedef struct syn_alt {
    uint32_t q_off, n; /* into searcher altq */
} syn_alt;

typedef struct scored {
    double score;
    uint32_t doc;
} scored;

struct hw_searcher {
    hw_index *idx;
    hw_tokenizer *tok;
    qterm *q;
    size_t n_q, cap_q;
    const term_info **qti; /* per query term and segment (qterm.ti_at) */
    size_t n_qti, cap_qti;
    uint64_t *qhash; /* sorted hashes of all query terms (known or not) */
    size_t n_qhash, cap_qhash;
    cursor *cur;
    size_t cap_cur;
    double *cum, *contrib, *bcum;
    size_t cap_cum, cap_contrib, cap_bcum;
    scored *heap;
    size_t cap_heap;
    scored *all; /* exhaustive mode */
    size_t cap_all;
    uint64_t *bits; /* matched counting */
    size_t cap_bits;
    struct {
        uint32_t s, e;   /* byte offsets */
        uint32_t cs, ce; /* the same in code points */
    } * marks;
    size_t cap_marks;
    char *buf; /* snippet assembly */
    size_t cap_buf;
    /* a search's snippet pass (snip_prepare): what the query's terms look
     * like in raw text, for the scan that tokenizes candidates only */
    uint64_t qbloom[16];     /* 1024-bit filter over qhash */
    uint64_t pre2[64];       /* 4096-bit filter of ASCII terms' first bytes */
    uint64_t cjk_keys[256];  /* open addressing: CJK terms' raw bytes, 0 empty */
    uint64_t cjk_first[64];  /* 4096-bit set of their first characters */
    int snip_fast;           /* 0: every snippet tokenizes its whole text */
    /* synonyms applied to the current query */
    size_t n_orig; /* s->q[0..n_orig) are the query's own terms */
    hw_syn_match m[MAX_SYN_MATCHES];
    size_t n_m;
    uint32_t m_alt_off[MAX_SYN_MATCHES + 1]; /* alternatives of match i: alts[off[i]..off[i+1]) */
    syn_alt *alts;
    size_t n_alts, cap_alts;
    uint32_t *altq;
    size_t n_altq, cap_altq;
    /* answer scratch */
    uint8_t *pres; /* per qterm: 0 absent, 1 body only, 2 head */
    size_t cap_pres;
    uint64_t *qv; /* a variant of the query's hash set */
    size_t cap_qv;
    uint8_t *lvq; /* per query term: its level in the current candidate */
    double *wq;   /* per query term: its coverage weight, -1 unknown */
    size_t cap_lvq, cap_wq;
    struct cjk_char {
        int32_t q[2]; /* the query terms (bigrams) holding the character, -1 none */
    } * cj;           /* the question's CJK characters, in order */
    size_t n_cj, cap_cj;
    /* a compressed body read (rec_body) */
    char *body;
    size_t cap_body;
    ZSTD_DCtx *dctx;
};

int hw_searcher_create(hw_index *idx, hw_searcher **out, hw_status *st)
{
    *out = NULL;
    hw_searcher *s = calloc(1, sizeof *s);
    if (!s)
        return hw_status_set(st, HW_ENOMEM, "searcher: out of memory");
    s->idx = idx;
    int rc = hw_tokenizer_create(&s->tok, st);
    if (rc != 0) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void hw_searcher_destroy(hw_searcher *s)
{
    if (!s)
        return;
    hw_tokenizer_destroy(s->tok);
    free(s->q);
    free(s->qti);
    free(s->qhash);
    free(s->bcum);
    free(s->cur);
    free(s->cum);
    free(s->contrib);
    free(s->heap);
    free(s->all);
    free(s->bits);
    free(s->marks);
    free(s->buf);
    free(s->alts);
    free(s->altq);
    free(s->pres);
    free(s->qv);
    free(s->lvq);
    free(s->wq);
    free(s->cj);
    free(s->body);
    ZSTD_freeDCtx(s->dctx);
    free(s);
}

static inline void cur_decode(cursor *c)
{
    uint32_t gap, v, extra;
    c->p = varint_get(c->p, &gap);
    c->p = varint_get(c->p, &v);
    c->prev1 += gap;
    c->tf_body = v >> 2;
    c->tf_title = v & 3;
    if (c->tf_title == 3) {
        c->p = varint_get(c->p, &extra);
        c->tf_title += extra;
    }
    c->doc = c->base + c->prev1 - 1;
}

/* Positions c on the first posting of segment k's list. */
static void cur_load(cursor *c, uint32_t k)
{
    const segment *seg = c->sn->seg[k];
    const term_info *ti = c->tis[k];
    c->segi = k;
    c->seg = seg;
    c->ti = ti;
    c->base = c->sn->base[k];
    c->seg_end = c->sn->base[k + 1];
    c->start = c->p = seg->post + ti->post_off;
    c->end = c->start + ti->post_len;
    c->n_blocks = ti->df > BLOCK ? (ti->df + BLOCK - 1) / BLOCK : 0;
    c->skips = seg->skips + ti->skip_off;
    c->blk = 0;
    c->sblk = 0;
    c->prev1 = 0;
    cur_decode(c);
}

/* Past the end of a segment's list: the next segment holding the term, or
 * DOC_NONE. The first segment whose range ends after target (0: any). */
static void cur_next_seg(cursor *c, uint32_t target)
{
    for (uint32_t k = c->segi + 1; k < c->sn->n_segs; k++) {
        if (c->tis[k] && c->sn->base[k + 1] > target) {
            cur_load(c, k);
            return;
        }
    }
    c->doc = DOC_NONE;
}

static inline void cur_next(cursor *c)
{
    if (c->p >= c->end) {
        cur_next_seg(c, 0);
        return;
    }
    if (c->n_blocks && (uint32_t)(c->p - c->start) == c->skips[c->blk].end_off)
        c->blk++;
    cur_decode(c);
}

/* Moves to the first posting with global doc >= target. */
static inline void cur_advance(cursor *c, uint32_t target)
{
    if (c->doc >= target)
        return;
    if (target >= c->seg_end) { /* in a later segment */
        cur_next_seg(c, target);
        if (c->doc >= target)
            return;
    }
    uint32_t local = target - c->base;
    if (c->n_blocks && c->skips[c->blk].last_doc < local) {
        uint32_t b = c->blk + 1;
        while (b < c->n_blocks && c->skips[b].last_doc < local)
            b++;
        if (b == c->n_blocks) {
            cur_next_seg(c, target);
            return;
        }
        c->blk = b;
        c->p = c->start + c->skips[b - 1].end_off;
        c->prev1 = c->skips[b - 1].last_doc + 1;
        cur_decode(c);
    }
    while (c->doc < target) {
        cur_next(c);
        if (c->doc == DOC_NONE)
            return;
    }
}

/* A cursor over term tis (per segment of sn; one at least non-NULL). */
static void cur_init(cursor *c, const snapshot *sn, const term_info *const *tis, uint32_t qterm, double idf)
{
    float max_tfn = 0;
    uint32_t first = UINT32_MAX;
    c->sn = sn;
    c->tis = tis;
    c->df = 0;
    for (uint32_t k = 0; k < sn->n_segs; k++) {
        if (!tis[k])
            continue;
        if (first == UINT32_MAX)
            first = k;
        c->df += tis[k]->df;
        if (tis[k]->max_tfn > max_tfn)
            max_tfn = tis[k]->max_tfn;
    }
    assert(first != UINT32_MAX);
    c->qterm = qterm;
    c->idf = idf;
    c->ub = idf * (double)max_tfn;
    cur_load(c, first);
}

/* Upper bound of the cursor's score contribution for global doc d (d
 * ascending over calls): its block's max when the list has blocks (0
 * past its end), else the list's. Moves no posting. */
static inline double cur_block_ub(cursor *c, uint32_t d)
{
    if (d < c->base)
        return 0; /* the cursor is past d: no posting there */
    if (d >= c->seg_end)
        return c->doc == DOC_NONE ? 0 : c->ub; /* in a later segment */
    if (!c->n_blocks)
        return c->ub;
    uint32_t local = d - c->base;
    uint32_t b = c->sblk > c->blk ? c->sblk : c->blk;
    while (b < c->n_blocks && c->skips[b].last_doc < local)
        b++;
    c->sblk = b;
    return b < c->n_blocks ? c->idf * (double)c->skips[b].max_tfn : 0;
}

/* The current block's bound and last doc (global; UINT32_MAX - 1 when the
 * list has no blocks). */
static inline double cur_cur_block(const cursor *c, uint32_t *last)
{
    if (!c->n_blocks) {
        *last = UINT32_MAX - 1;
        return c->ub;
    }
    *last = c->base + c->skips[c->blk].last_doc;
    return c->idf * (double)c->skips[c->blk].max_tfn;
}

/* The segment holding global doc d. */
static inline uint32_t snap_seg_of(const snapshot *sn, uint32_t d)
{
    uint32_t k = sn->n_segs - 1;
    while (sn->base[k] > d)
        k--;
    return k;
}

static const doc_rec *snap_doc(const snapshot *sn, uint32_t d)
{
    if (d < sn->n_main)
        return sn->seg[0]->docs[d];
    uint32_t k = snap_seg_of(sn, d);
    return sn->seg[k]->docs[d - sn->base[k]];
}

typedef struct filter {
    int kind;      /* 0 = any */
    int locale_id; /* -1 = any */
} filter;

static inline int doc_ok(const snapshot *sn, uint32_t d, const filter *f)
{
    if (d < sn->n_deadable && sn->dead && (sn->dead[d / 64] >> (d % 64) & 1))
        return 0;
    if (!f->kind && f->locale_id < 0)
        return 1; /* no filter: no need to read the record */
    const doc_rec *r = snap_doc(sn, d);
    return (!f->kind || r->kind == f->kind) && (f->locale_id < 0 || r->locale_id == f->locale_id);
}

static int cmp_cursor(const void *a, const void *b)
{
    const cursor *x = a, *y = b;
    if (x->ub != y->ub)
        return x->ub < y->ub ? -1 : 1;
    return (x->qterm > y->qterm) - (x->qterm < y->qterm);
}

static int cmp_qterm_idf(const void *a, const void *b)
{
    const qterm *x = a, *y = b;
    if (x->idf != y->idf)
        return x->idf > y->idf ? -1 : 1;
    return x->hash < y->hash ? -1 : x->hash > y->hash;
}

/* "a ranks better than b": higher score, then lower doc id. */
static inline int better(const scored *a, const scored *b)
{
    return a->score > b->score || (a->score == b->score && a->doc < b->doc);
}

static void heap_sift_down(scored *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && better(&h[w], &h[l]))
            w = l;
        if (r < n && better(&h[w], &h[r]))
            w = r;
        if (w == i)
            return;
        scored t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static void heap_push(scored *h, size_t *n, scored x)
{
    size_t i = (*n)++;
    h[i] = x;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!better(&h[p], &h[i]))
            break;
        scored t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

static int cmp_scored(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    if (better(x, y))
        return -1;
    if (better(y, x))
        return 1;
    return 0;
}

/* The limits every query text is held to. */
static int check_query(const char *text, size_t len, hw_status *st)
{
    if (!text || len == 0)
        return hw_status_set(st, HW_EINVALID, "query: empty");
    if (len > HW_INDEX_MAX_QUERY)
        return hw_status_set(st, HW_ETOOBIG, "query: %zu bytes, limit %d", len, HW_INDEX_MAX_QUERY);
    return 0;
}

/* Whether a and b (bytes) are one edit apart: a substitution, an
 * insertion, a deletion or two adjacent letters swapped (Damerau). */
static int one_edit(const char *a, size_t na, const char *b, size_t nb)
{
    if (na > nb + 1 || nb > na + 1)
        return 0;
    size_t i = 0;
    while (i < na && i < nb && a[i] == b[i])
        i++;
    if (i == na && i == nb)
        return 0; /* equal */
    if (na == nb) {
        if (memcmp(a + i + 1, b + i + 1, na - i - 1) == 0)
            return 1; /* substitution */
        return i + 1 < na && a[i] == b[i + 1] && a[i + 1] == b[i] && memcmp(a + i + 2, b + i + 2, na - i - 2) == 0;
    }
    if (na > nb)
        return memcmp(a + i + 1, b + i, na - i - 1) == 0;
    return memcmp(a + i, b + i + 1, nb - i - 1) == 0;
}

/* Looks a term up in sn's segments: its postings, df and idf. Returns 0 or
 * HW_ENOMEM. */
static int resolve_term(hw_searcher *s, qterm *q, const snapshot *sn, double N)
{
    if (grow((void **)&s->qti, &s->cap_qti, s->n_qti + sn->n_segs + 1, sizeof *s->qti))
        return HW_ENOMEM;
    q->ti_at = (uint32_t)s->n_qti;
    const term_info **tis = s->qti + s->n_qti;
    s->n_qti += sn->n_segs;
    uint64_t df = 0;
    for (uint32_t k = 0; k < sn->n_segs; k++) {
        tis[k] = segment_lookup(sn->seg[k], q->hash, q->text, q->len);
        df += tis[k] ? tis[k]->df : 0;
    }
    /* dead documents of main and the frozen deltas holding it */
    uint32_t gone = df ? snap_dead_df(sn, q->hash) : 0;
    q->df = gone < df ? (uint32_t)(df - gone) : 0;
    double dfd = q->df;
    q->idf = log(1.0 + (N - dfd + 0.5) / (dfd + 0.5));
    if (q->idf < 0)
        q->idf = 0;
    return 0;
}

/* Resolves the query's terms tk[0..nt) against sn. */
static int resolve_query(hw_searcher *s, const snapshot *sn, const hw_token *tk, size_t nt, hw_status *st)
{
    s->n_q = 0;
    s->n_qhash = 0;
    s->n_qti = 0;
    if (grow((void **)&s->qhash, &s->cap_qhash, nt + 1, sizeof *s->qhash) ||
        grow((void **)&s->q, &s->cap_q, nt + 1, sizeof *s->q))
        return hw_status_set(st, HW_ENOMEM, "search: out of memory");
    for (size_t i = 0; i < nt; i++)
        s->qhash[i] = tk[i].hash;
    s->n_qhash = sort_unique_u64(s->qhash, nt);
    memset(s->qbloom, 0, sizeof s->qbloom);
    for (size_t i = 0; i < s->n_qhash; i++)
        s->qbloom[(s->qhash[i] >> 6) & 15] |= 1ull << (s->qhash[i] & 63);
    s->snip_fast = 0;
    double N = sn->n_live ? sn->n_live : 1;
    for (size_t i = 0; i < nt; i++) {
        int dup = 0;
        for (size_t j = 0; j < s->n_q && !dup; j++)
            dup = s->q[j].hash == tk[i].hash && s->q[j].len == tk[i].len &&
                  memcmp(s->q[j].text, tk[i].text, tk[i].len) == 0;
        if (dup)
            continue;
        qterm *q = &s->q[s->n_q++];
        q->hash = tk[i].hash;
        q->text = tk[i].text;
        q->len = tk[i].len;
        q->flags = tk[i].flags;
        q->w = 1;
        q->orig = 1;
        if (resolve_term(s, q, sn, N) != 0)
            return hw_status_set(st, HW_ENOMEM, "search: out of memory");
    }
    s->n_orig = s->n_q;
    s->n_m = 0;
    s->n_alts = 0;
    s->n_altq = 0;
    s->m_alt_off[0] = 0;
    return 0;
}

/* The qterm of (hash, text), adding it (as a synonym's token of weight w)
 * when the query lacks it; its index in *at. */
static int add_syn_qterm(hw_searcher *s, const snapshot *sn, const hw_syn_tok *t, double w, uint32_t *at)
{
    for (size_t j = 0; j < s->n_q; j++)
        if (s->q[j].hash == t->hash && s->q[j].len == t->len && memcmp(s->q[j].text, t->text, t->len) == 0) {
            if (!s->q[j].orig && w > s->q[j].w)
                s->q[j].w = w;
            *at = (uint32_t)j;
            return 0;
        }
    if (s->n_q - s->n_orig >= MAX_SYN_QTERMS)
        return 1; /* enough alternatives: ignore the rest */
    if (grow((void **)&s->q, &s->cap_q, s->n_q + 1, sizeof *s->q))
        return HW_ENOMEM;
    qterm *q = &s->q[s->n_q];
    *q = (qterm){.hash = t->hash, .text = t->text, .len = t->len, .flags = t->flags, .w = w, .orig = 0};
    if (resolve_term(s, q, sn, sn->n_live ? sn->n_live : 1) != 0)
        return HW_ENOMEM;
    *at = (uint32_t)s->n_q++;
    return 0;
}

/* Spelling: a word of the question the index does not know (at least
 * MIN_TYPO_BYTES long, letters only) stands for the index's most frequent
 * term one edit away ("refnud" -> refund, "pasword" -> password), added
 * like a synonym's alternative. Costs a scan of the term dictionaries, so
 * only answers use it, for at most MAX_TYPO_WORDS words. */
#define MIN_TYPO_BYTES 4
#define MAX_TYPO_WORDS 3
static int correct_typos(hw_searcher *s, const snapshot *sn, const hw_token *tk, size_t nt)
{
    size_t words = 0;
    for (size_t pos = 0; pos < nt && words < MAX_TYPO_WORDS && s->n_m < MAX_SYN_MATCHES; pos++) {
        const hw_token *t = &tk[pos];
        if (!(t->flags & HW_TOKEN_WORD) || (t->flags & HW_TOKEN_NUMERIC) || t->len < MIN_TYPO_BYTES)
            continue;
        size_t qi = 0;
        while (qi < s->n_orig && s->q[qi].hash != t->hash)
            qi++;
        if (qi == s->n_orig || s->q[qi].df > 0)
            continue;
        int dup = 0; /* the same word earlier in the question */
        for (size_t m = 0; m < s->n_m && !dup; m++)
            dup = s->m[m].n == 1 && tk[s->m[m].pos].hash == t->hash;
        if (dup)
            continue;
        words++;
        const segment *best_seg = NULL;
        const term_info *best = NULL;
        uint32_t best_df = 0;
        for (uint32_t k = 0; k < sn->n_segs; k++) {
            const segment *seg = sn->seg[k];
            for (uint32_t i = 0; i < seg->n_terms; i++) {
                const term_info *ti = &seg->terms[i];
                if ((uint32_t)ti->str_len + 1 < t->len || ti->str_len > t->len + 1)
                    continue;
                if (one_edit(t->text, t->len, seg->pool + ti->str_off, ti->str_len) && ti->df > best_df) {
                    best_seg = seg;
                    best = ti;
                    best_df = ti->df;
                }
            }
        }
        if (!best)
            continue;
        hw_syn_tok fix = {best->hash, best_seg->pool + best->str_off, best->str_len, HW_TOKEN_WORD};
        if (grow((void **)&s->alts, &s->cap_alts, s->n_alts + 1, sizeof *s->alts) ||
            grow((void **)&s->altq, &s->cap_altq, s->n_altq + 1, sizeof *s->altq))
            return HW_ENOMEM;
        int rc = add_syn_qterm(s, sn, &fix, 1.0, &s->altq[s->n_altq]);
        if (rc == HW_ENOMEM)
            return rc;
        if (rc != 0)
            break;
        s->alts[s->n_alts++] = (syn_alt){(uint32_t)s->n_altq++, 1};
        s->m[s->n_m] = (hw_syn_match){UINT32_MAX, UINT32_MAX, (uint32_t)pos, 1};
        s->m_alt_off[++s->n_m] = (uint32_t)s->n_alts;
    }
    return 0;
}

/* Applies the synonym sets (syn, read under the caller's RCU read lock)
 * to the resolved query tk[0..nt): each other term of a matched set joins
 * the query, its tokens sharing the weight of the matched span. */
static int expand_synonyms(hw_searcher *s, const snapshot *sn, const hw_syn_table *syn, const hw_token *tk,
                           size_t nt, const char *lang)
{
    s->n_m = syn ? hw_syn_table_match(syn, tk, nt, lang, s->m, MAX_SYN_MATCHES) : 0;
    for (size_t i = 0; i < s->n_m; i++) {
        const hw_syn_match *m = &s->m[i];
        uint32_t first, n_terms = hw_syn_set_terms(syn, m->set, &first);
        for (uint32_t t = first; t < first + n_terms; t++) {
            if (t == m->term)
                continue;
            uint32_t nk;
            const hw_syn_tok *toks = hw_syn_term_tokens(syn, t, &nk);
            if (grow((void **)&s->alts, &s->cap_alts, s->n_alts + 1, sizeof *s->alts) ||
                grow((void **)&s->altq, &s->cap_altq, s->n_altq + nk, sizeof *s->altq))
                return HW_ENOMEM;
            syn_alt *a = &s->alts[s->n_alts];
            a->q_off = (uint32_t)s->n_altq;
            a->n = 0;
            int full = 0;
            for (uint32_t k = 0; k < nk && !full; k++) {
                int rc = add_syn_qterm(s, sn, &toks[k], (double)m->n / (double)nk, &s->altq[s->n_altq]);
                if (rc == HW_ENOMEM)
                    return rc;
                full = rc != 0;
                if (!full) {
                    s->n_altq++;
                    a->n++;
                }
            }
            if (full) { /* an alternative cut short would match too much */
                s->n_altq = a->q_off;
                continue;
            }
            s->n_alts++;
        }
        s->m_alt_off[i + 1] = (uint32_t)s->n_alts;
    }
    return 0;
}

/* Tokenizes the query and resolves its terms against sn, with the synonym
 * sets syn of language lang. */
static int prepare_query(hw_searcher *s, const snapshot *sn, const hw_syn_table *syn, const char *lang,
                         const char *text, size_t len, hw_status *st)
{
    int rc = check_query(text, len, st);
    if (rc != 0)
        return rc;
    const hw_token *tk;
    size_t nt;
    hw_status ts;
    if ((rc = hw_tokenize(s->tok, text, len, &tk, &nt, &ts)) != 0)
        return hw_status_set(st, rc, "query: %s", ts.msg);
    if ((rc = resolve_query(s, sn, tk, nt, st)) != 0)
        return rc;
    if (expand_synonyms(s, sn, syn, tk, nt, lang) != 0)
        return hw_status_set(st, HW_ENOMEM, "search: out of memory");
    return 0;
}

/* Top-k over the prepared query; fills s->heap (sorted best first) and
 * *n_top. Returns 0 or HW_ENOMEM. */
static int run_topk(hw_searcher *s, const snapshot *sn, const filter *f, size_t k, unsigned flags,
                    size_t *n_top, uint64_t *matched, int *matched_exact)
{
    const hw_index_options *o = &s->idx->opt;
    *n_top = 0;
    *matched = 0;
    *matched_exact = 1;
    /* known terms only, at most HW_INDEX_MAX_QUERY_TERMS (highest idf) */
    size_t nk = 0;
    for (size_t i = 0; i < s->n_q; i++)
        if (s->q[i].df > 0)
            nk++;
    if (nk == 0)
        return 0;
    qterm *known = malloc(nk * sizeof *known);
    if (!known)
        return HW_ENOMEM;
    nk = 0;
    for (size_t i = 0; i < s->n_q; i++)
        if (s->q[i].df > 0)
            known[nk++] = s->q[i];
    if (nk > HW_INDEX_MAX_QUERY_TERMS) {
        qsort(known, nk, sizeof *known, cmp_qterm_idf);
        nk = HW_INDEX_MAX_QUERY_TERMS;
    }
    size_t nc = 0;
    if (grow((void **)&s->cur, &s->cap_cur, 2 * nk, sizeof *s->cur) ||
        grow((void **)&s->cum, &s->cap_cum, 2 * nk, sizeof *s->cum) ||
        grow((void **)&s->contrib, &s->cap_contrib, 2 * nk, sizeof *s->contrib) ||
        grow((void **)&s->bcum, &s->cap_bcum, 2 * nk, sizeof *s->bcum) ||
        grow((void **)&s->heap, &s->cap_heap, k + 1, sizeof *s->heap)) {
        free(known);
        return HW_ENOMEM;
    }
    for (size_t i = 0; i < nk; i++)
        cur_init(&s->cur[nc++], sn, s->qti + known[i].ti_at, (uint32_t)i, known[i].idf * known[i].w);
    free(known);
    cursor *c = s->cur;
    qsort(c, nc, sizeof *c, cmp_cursor);
    double acc = 0;
    for (size_t i = 0; i < nc; i++) {
        acc += c[i].ub;
        s->cum[i] = acc;
    }
    const double k1 = o->k1, boost = o->title_boost / TITLE_UNITS;
    double *contrib = s->contrib;
    int exhaustive = (flags & HW_SEARCH_EXHAUSTIVE) != 0;

    if (flags & HW_SEARCH_COUNT_MATCHED) {
        uint32_t nd = sn->base[sn->n_segs];
        size_t words = (nd + 63) / 64 + 1;
        if (grow((void **)&s->bits, &s->cap_bits, words, sizeof *s->bits))
            return HW_ENOMEM;
        memset(s->bits, 0, words * sizeof *s->bits);
        for (size_t i = 0; i < nc; i++) {
            cursor t = c[i];
            for (; t.doc != DOC_NONE; cur_next(&t))
                if (doc_ok(sn, t.doc, f))
                    s->bits[t.doc / 64] |= 1ull << (t.doc % 64);
        }
        uint64_t m = 0;
        for (size_t i = 0; i < words; i++)
            m += (uint64_t)__builtin_popcountll(s->bits[i]);
        *matched = m;
    } else {
        /* independence estimate from document frequencies */
        double N = sn->n_live ? sn->n_live : 1, miss = 1, maxdf = 0;
        for (size_t i = 0; i < s->n_q; i++) {
            double df = s->q[i].df > N ? N : s->q[i].df;
            miss *= 1.0 - df / N;
            if (df > maxdf)
                maxdf = df;
        }
        double est = N * (1.0 - miss);
        *matched = (uint64_t)(est < maxdf ? maxdf : est + 0.5);
        *matched_exact = 0;
    }

    size_t n_heap = 0, n_all = 0;
    double theta = -INFINITY;
    size_t fe = 0; /* cursors [0, fe) are non-essential */
    /* Block-max: each skip block knows its largest term score, so once the
     * heap is full, whole blocks of the essential lists whose bounds (plus
     * the non-essential lists' maxima) cannot reach the k-th score are
     * stepped over undecoded, and a candidate's non-essential lists are
     * bounded by the blocks holding it rather than by their maxima. Only
     * documents that cannot enter the top k are skipped: results are the
     * same as without (HW_SEARCH_NO_BLOCK_MAX) and as exhaustive. */
    /* ... but its bookkeeping costs more than it saves on short lists
     * (Debian 64k: p50 +10%; 1M Zipf: p99 -20%): used when the query's
     * lists hold BLOCK_MAX_MIN_POSTINGS postings or more */
    uint64_t postings = 0;
    for (size_t i = 0; i < nc; i++)
        postings += c[i].df;
    int bm = !exhaustive && !(flags & HW_SEARCH_NO_BLOCK_MAX) && (postings >= BLOCK_MAX_MIN_POSTINGS || (flags & HW_SEARCH_FORCE_BLOCK_MAX));
    uint32_t win_end = 0; /* docs up to here passed the block-max window test */
    int win_open = 0;
    double *bcum = s->bcum;
    for (;;) {
        uint32_t d = DOC_NONE;
        for (size_t i = fe; i < nc; i++)
            if (c[i].doc < d)
                d = c[i].doc;
        if (d == DOC_NONE)
            break;
        if (bm && n_heap == k && (!win_open || d > win_end)) {
            uint32_t w = UINT32_MAX - 1, last;
            double bound = fe ? s->cum[fe - 1] : 0;
            for (size_t i = fe; i < nc; i++) {
                if (c[i].doc == DOC_NONE)
                    continue;
                bound += cur_cur_block(&c[i], &last);
                if (last < w)
                    w = last;
            }
            if (bound < theta - 1e-9 * (1.0 + fabs(theta))) {
                if (w == UINT32_MAX - 1)
                    break; /* no list has blocks: nothing left can enter */
                for (size_t i = fe; i < nc; i++)
                    cur_advance(&c[i], w + 1);
                continue;
            }
            win_end = w;
            win_open = 1;
        }
        if (!doc_ok(sn, d, f)) {
            for (size_t i = fe; i < nc; i++)
                if (c[i].doc == d)
                    cur_next(&c[i]);
            continue;
        }
        double partial = 0;
        for (size_t i = fe; i < nc; i++) {
            if (c[i].doc == d) {
                double wtf = boost * c[i].tf_title + c[i].tf_body;
                contrib[i] = c[i].idf * tfn(k1, wtf, c[i].seg->norm[d - c[i].base]);
                partial += contrib[i];
                cur_next(&c[i]);
            } else {
                contrib[i] = 0;
            }
        }
        int pruned = 0;
        double eps = 1e-9 * (1.0 + fabs(theta));
        const double *bound = s->cum;
        if (bm && fe && n_heap == k && partial + s->cum[fe - 1] >= theta - eps) {
            double acc_b = 0;
            for (size_t i = 0; i < fe; i++) {
                acc_b += cur_block_ub(&c[i], d);
                bcum[i] = acc_b;
            }
            bound = bcum;
        }
        for (size_t i = fe; i-- > 0;) {
            if (partial + bound[i] < theta - eps) {
                pruned = 1;
                break;
            }
            cur_advance(&c[i], d);
            if (c[i].doc == d) {
                double wtf = boost * c[i].tf_title + c[i].tf_body;
                contrib[i] = c[i].idf * tfn(k1, wtf, c[i].seg->norm[d - c[i].base]);
                partial += contrib[i];
            } else {
                contrib[i] = 0;
            }
        }
        if (pruned)
            continue;
        double score = 0;
        for (size_t i = 0; i < nc; i++)
            score += contrib[i];
        scored x = {score, d};
        if (exhaustive) {
            if (grow((void **)&s->all, &s->cap_all, n_all + 1, sizeof *s->all))
                return HW_ENOMEM;
            s->all[n_all++] = x;
            continue;
        }
        if (n_heap < k) {
            heap_push(s->heap, &n_heap, x);
        } else if (better(&x, &s->heap[0])) {
            s->heap[0] = x;
            heap_sift_down(s->heap, n_heap, 0);
        } else {
            continue;
        }
        if (n_heap == k) {
            theta = s->heap[0].score;
            double e2 = 1e-9 * (1.0 + fabs(theta));
            while (fe < nc && s->cum[fe] < theta - e2)
                fe++;
        }
    }
    if (exhaustive) {
        qsort(s->all, n_all, sizeof *s->all, cmp_scored);
        n_heap = n_all < k ? n_all : k;
        memcpy(s->heap, s->all, n_heap * sizeof *s->heap);
    } else {
        qsort(s->heap, n_heap, sizeof *s->heap, cmp_scored);
    }
    *n_top = n_heap;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Snippets                                                                */

static inline int qbloom_has(const hw_searcher *s, uint64_t h)
{
    return (s->qbloom[(h >> 6) & 15] >> (h & 63)) & 1;
}

static int qhash_has(const hw_searcher *s, uint64_t h)
{
    if (!qbloom_has(s, h))
        return 0;
    size_t lo = 0, hi = s->n_qhash;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->qhash[mid] == h)
            return 1;
        if (s->qhash[mid] < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* UTF-8 lead bytes (code points) among the 8 bytes at p. */
static inline unsigned leads8(const char *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    /* continuation bytes are 10xxxxxx: bit 7 set, bit 6 clear */
    uint64_t cont = (x & ~(x << 1)) & 0x8080808080808080ull;
    /* count the set bits 7 of each byte without a popcount instruction */
    return 8u - (unsigned)(((cont >> 7) * 0x0101010101010101ull) >> 56);
}

/* Code points in t[0..n). */
static size_t count_chars(const char *t, size_t n)
{
    size_t c = 0, i = 0;
    for (; i + 8 <= n; i += 8)
        c += leads8(t + i);
    for (; i < n; i++)
        c += ((unsigned char)t[i] & 0xC0) != 0x80;
    return c;
}

/* Byte offset reached from `from` (a character's start) after n code
 * points (or len): where the (n+1)th lead byte from there is. */
static size_t skip_chars(const char *t, size_t len, size_t from, size_t n)
{
    size_t i = from, k = n + 1;
    while (i + 8 <= len) {
        unsigned c = leads8(t + i);
        if (c >= k)
            break;
        k -= c;
        i += 8;
    }
    for (; i < len; i++)
        if (((unsigned char)t[i] & 0xC0) != 0x80 && --k == 0)
            return i;
    return len;
}

/* Copies n bytes of text, newlines and tabs as spaces; returns the end. */
static char *copy_flat(char *o, const char *src, size_t n)
{
    memcpy(o, src, n);
    for (char *p = o, *e = o + n; (p = memchr(p, '\n', (size_t)(e - p))); p++)
        *p = ' ';
    for (char *p = o, *e = o + n; (p = memchr(p, '\t', (size_t)(e - p))); p++)
        *p = ' ';
    return o + n;
}

/* Byte offset reached going back n code points from `from`: the nth lead
 * byte before it (or 0). */
static size_t back_chars(const char *t, size_t from, size_t n)
{
    size_t i = from, k = n;
    while (i >= 8 && k > 0) {
        unsigned c = leads8(t + i - 8);
        if (c >= k)
            break;
        k -= c;
        i -= 8;
    }
    while (i > 0 && k > 0) {
        i--;
        if (((unsigned char)t[i] & 0xC0) != 0x80)
            k--;
    }
    return i;
}

/* Snippet marks without tokenizing the whole text.
 *
 * A search's hits are shown with a passage each; tokenizing every hit's
 * body to find the query's terms cost more than the ranking (2x-6x a
 * query's time). Most text is plain ASCII words and CJK ideographs, whose
 * terms can be recognized in the raw bytes: an ASCII term (lowercase,
 * stemmed) starts with the same two bytes as the word it came from (the
 * English stemmer only changes endings; "dying", "lying", "tying" are
 * handled apart), and a bigram of CJK unified ideographs (U+4E00-9FFF, which
 * NFKC leaves alone) is its two characters' bytes. So one pass over the text
 * finds the ASCII words (maximal runs of [A-Za-z0-9._], which the tokenizer
 * never splits differently in context) whose first two bytes some query
 * term has, and tokenizes only those; and it looks CJK character pairs up in
 * a small table of the query's bigrams. Any other non-ASCII character
 * (accents, kana, full-width letters...) sends the text to the full
 * tokenization (snip_marks returns -1). The marks are the full pass's:
 * tests compare the two (HW_SEARCH_FULL_SNIPPETS). */

/* Filter slot of a term's first three bytes (n = 3) or of a term of one
 * or two bytes (n = 1, 2; b = 0 for one). */
static inline unsigned pre_key(unsigned n, unsigned char a, unsigned char b, unsigned char c)
{
    uint32_t k = (uint32_t)n << 18 | ((uint32_t)(a | 32) & 63) << 12 | ((uint32_t)(b | 32) & 63) << 6 |
                 ((uint32_t)(c | 32) & 63);
    return (unsigned)((k * 0x9E3779B1u) >> 20);
}

static inline void pre_add(hw_searcher *s, unsigned k)
{
    s->pre2[k >> 6] |= 1ull << (k & 63);
}

static inline int pre_has(const hw_searcher *s, unsigned k)
{
    return (int)((s->pre2[k >> 6] >> (k & 63)) & 1);
}

/* A character of U+4E00-9FFF (3 bytes) by its last two bytes' 12 bits. */
static inline unsigned cjk_first_key(const unsigned char *p)
{
    return (unsigned)(p[1] & 63) << 6 | (p[2] & 63);
}

static inline uint64_t cjk_key(const char *p, size_t n)
{
    uint64_t k = (uint64_t)n << 56;
    memcpy(&k, p, n < 7 ? n : 7);
    return k | (uint64_t)n << 56;
}

static inline size_t cjk_slot(uint64_t k)
{
    return (size_t)((k * 0x9E3779B97F4A7C15ull) >> 56);
}

static int cjk_has(const hw_searcher *s, uint64_t k)
{
    for (size_t i = cjk_slot(k);; i = (i + 1) & 255) {
        if (s->cjk_keys[i] == k)
            return 1;
        if (!s->cjk_keys[i])
            return 0;
    }
}

/* Builds the tables from the query's own terms s->q[0..n_orig) (their texts
 * still in the tokenizer's buffer). */
static void snip_prepare(hw_searcher *s)
{
    memset(s->pre2, 0, sizeof s->pre2);
    memset(s->cjk_keys, 0, sizeof s->cjk_keys);
    memset(s->cjk_first, 0, sizeof s->cjk_first);
    size_t n_cjk = 0;
    s->snip_fast = 1;
    for (size_t i = 0; i < s->n_orig; i++) {
        const qterm *q = &s->q[i];
        const unsigned char *t = (const unsigned char *)q->text;
        if (q->flags & HW_TOKEN_CJK) {
            /* one or two characters of U+4E00-9FFF (3 bytes each, E4-E9) */
            int ok = (q->len == 3 || q->len == 6) && n_cjk < 128;
            for (size_t j = 0; ok && j < q->len; j += 3)
                ok = t[j] >= 0xE4 && t[j] <= 0xE9;
            if (ok) {
                uint64_t k = cjk_key(q->text, q->len);
                size_t h = cjk_slot(k);
                while (s->cjk_keys[h] && s->cjk_keys[h] != k)
                    h = (h + 1) & 255;
                s->cjk_keys[h] = k;
                n_cjk++;
                unsigned f = cjk_first_key(t);
                s->cjk_first[f >> 6] |= 1ull << (f & 63);
            }
            continue; /* other CJK terms cannot be in text the fast scan accepts */
        }
        if (q->len == 0 || t[0] >= 0x80)
            continue; /* a non-ASCII word: only in text the fast scan refuses */
        if (q->len < 3) {
            pre_add(s, pre_key(q->len, t[0], q->len > 1 ? t[1] : 0, 0));
            continue;
        }
        /* a stem keeps its word's first three bytes, but for y/i and a
         * short stem's added e: "cri" from "cry", "sky" from "skies",
         * "die" from "dying", "use" from "using" */
        pre_add(s, pre_key(3, t[0], t[1], t[2]));
        if (t[2] == 'i')
            pre_add(s, pre_key(3, t[0], t[1], 'y'));
        if (t[2] == 'y')
            pre_add(s, pre_key(3, t[0], t[1], 'i'));
        if (q->len == 3 && t[2] == 'e')
            pre_add(s, pre_key(3, t[0], t[1], 'i')); /* "use" from "using" */
        if (q->len == 3 && t[1] == 'i' && t[2] == 'e' && (t[0] == 'd' || t[0] == 'l' || t[0] == 't'))
            pre_add(s, pre_key(3, t[0], 'y', 'i'));
    }
}

static inline int is_word_byte(unsigned char c)
{
    return (unsigned)((c | 32) - 'a') < 26u || (unsigned)(c - '0') < 10u || c == '.' || c == '_';
}

static inline int is_alnum_byte(unsigned char c)
{
    return (unsigned)((c | 32) - 'a') < 26u || (unsigned)(c - '0') < 10u;
}

/* Non-ASCII characters the tokenizer treats as separators whatever their
 * normalization: CJK and full-width punctuation, general punctuation. */
static inline int is_sep_cp(uint32_t cp)
{
    return (cp >= 0x3000 && cp <= 0x3004) || (cp >= 0x3008 && cp <= 0x3011) || (cp >= 0x3014 && cp <= 0x301F) ||
           (cp >= 0xFF01 && cp <= 0xFF0F) || (cp >= 0xFF1A && cp <= 0xFF20) || (cp >= 0xFF3B && cp <= 0xFF40) ||
           (cp >= 0xFF5B && cp <= 0xFF65) || (cp >= 0x2010 && cp <= 0x2027) || (cp >= 0x2030 && cp <= 0x205E) ||
           cp == 0x00A0 || cp == 0x00B7;
}

static inline int add_mark(hw_searcher *s, size_t *nm, uint32_t st, uint32_t en)
{
    if (*nm && st <= s->marks[*nm - 1].e) {
        if (en > s->marks[*nm - 1].e)
            s->marks[*nm - 1].e = en;
    } else {
        s->marks[*nm].s = st;
        s->marks[*nm].e = en;
        (*nm)++;
    }
    return 0;
}

/* Fills s->marks for text[0..len) as the full tokenization would; returns
 * the number of marks, or -1 when the text needs the full tokenization
 * (or memory ran out). */
static long snip_marks(hw_searcher *s, const char *text, size_t len)
{
    const unsigned char *u = (const unsigned char *)text;
    size_t nm = 0;
    size_t i = 0;
    size_t run_start = 0, run_n = 0; /* current run of CJK ideographs */
    while (i < len) {
        unsigned char c = u[i];
        if (c < 0x80) {
            run_n = 0;
            if (!is_alnum_byte(c)) {
                i++;
                continue;
            }
            /* the word run [i, e): candidate when one of its sub-words
             * (after '.' or '_') starts like a query term */
            size_t e = i;
            int cand = 0;
            while (e < len && is_word_byte(u[e])) {
                if (!cand && is_alnum_byte(u[e]) && (e == i || !is_alnum_byte(u[e - 1]))) {
                    /* its token is 1, 2 or >= 3 bytes from here */
                    int w1 = e + 1 < len && is_word_byte(u[e + 1]);
                    int w2 = w1 && e + 2 < len && is_word_byte(u[e + 2]);
                    cand = pre_has(s, pre_key(1, u[e], 0, 0)) ||
                           (w1 && pre_has(s, pre_key(2, u[e], u[e + 1], 0))) ||
                           (w2 && pre_has(s, pre_key(3, u[e], u[e + 1], u[e + 2])));
                }
                e++;
            }
            if (cand) {
                const hw_token *tk;
                size_t nt;
                if (hw_tokenize(s->tok, text + i, e - i, &tk, &nt, NULL) != 0)
                    return -1;
                if (grow((void **)&s->marks, &s->cap_marks, nm + nt + 1, sizeof *s->marks))
                    return -1;
                for (size_t j = 0; j < nt; j++)
                    if (qhash_has(s, tk[j].hash))
                        add_mark(s, &nm, (uint32_t)(i + tk[j].start), (uint32_t)(i + tk[j].end));
            }
            i = e;
            continue;
        }
        /* a 3-byte sequence? decode it (the text is valid UTF-8) */
        if (c < 0xE0 || c >= 0xF0 || i + 2 >= len) {
            if (c == 0xC2 && i + 1 < len && (u[i + 1] == 0xA0 || u[i + 1] == 0xB7)) {
                run_n = 0;
                i += 2;
                continue;
            }
            return -1;
        }
        uint32_t cp = (uint32_t)(c & 0x0F) << 12 | (uint32_t)(u[i + 1] & 0x3F) << 6 | (u[i + 2] & 0x3F);
        if (cp >= 0x4E00 && cp <= 0x9FFF) {
            if (run_n == 0)
                run_start = i;
            run_n++;
            if (run_n >= 2) {
                /* the bigram ending here: [i - 3, i + 3) */
                unsigned f = cjk_first_key(u + i - 3);
                if (((s->cjk_first[f >> 6] >> (f & 63)) & 1) && cjk_has(s, cjk_key(text + i - 3, 6))) {
                    if (grow((void **)&s->marks, &s->cap_marks, nm + 2, sizeof *s->marks))
                        return -1;
                    add_mark(s, &nm, (uint32_t)(i - 3), (uint32_t)(i + 3));
                }
            }
            i += 3;
            /* a lone ideograph is a term of its own */
            if (run_n == 1 && (i + 2 >= len || u[i] < 0xE4 || u[i] > 0xE9 ||
                               ((uint32_t)(u[i] & 0x0F) << 12 | (uint32_t)(u[i + 1] & 0x3F) << 6 |
                                (u[i + 2] & 0x3F)) < 0x4E00) &&
                cjk_has(s, cjk_key(text + run_start, 3))) {
                if (grow((void **)&s->marks, &s->cap_marks, nm + 2, sizeof *s->marks))
                    return -1;
                add_mark(s, &nm, (uint32_t)run_start, (uint32_t)i);
            }
            continue;
        }
        if (!is_sep_cp(cp))
            return -1;
        run_n = 0;
        i += 3;
    }
    return (long)nm;
}

/* Builds the best passage of text (about SNIPPET_CHARS code points) in the
 * arena; matches are wrapped in \x02..\x03 when mark is set. */
static char *make_snippet(hw_searcher *s, const char *text, hw_arena *arena, int mark)
{
    size_t len = strlen(text);
    if (len > SNIPPET_SCAN_BYTES) {
        len = SNIPPET_SCAN_BYTES;
        while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80)
            len--;
    }
    const hw_token *tk = NULL;
    size_t nt = 0, nm = 0;
    long fast = s->snip_fast ? snip_marks(s, text, len) : -1;
    if (fast >= 0) {
        nm = (size_t)fast;
    } else {
        if (hw_tokenize(s->tok, text, len, &tk, &nt, NULL) != 0)
            nt = 0;
        if (grow((void **)&s->marks, &s->cap_marks, nt + 1, sizeof *s->marks))
            nt = 0;
    }
    /* matched source ranges, merged when overlapping or touching */
    for (size_t i = 0; i < nt; i++) {
        if (!qhash_has(s, tk[i].hash))
            continue;
        if (nm && tk[i].start <= s->marks[nm - 1].e) {
            if (tk[i].end > s->marks[nm - 1].e)
                s->marks[nm - 1].e = tk[i].end;
        } else {
            s->marks[nm].s = tk[i].start;
            s->marks[nm].e = tk[i].end;
            nm++;
        }
    }
    /* window start: the mark maximizing distinct matched text in the
     * window (approximated by the number of marks it covers). One pass
     * gives every mark's bounds in code points (marks are sorted and
     * disjoint), then a sliding window counts the marks each start covers:
     * linear, where walking the window's characters from every start cost
     * up to 256 x 180 steps (most of a snippet's time on CJK text). */
    size_t best_i = 0, best_n = 0;
    size_t limit = nm < 256 ? nm : 256;
    {
        size_t pos = 0, cp = 0;
        for (size_t m = 0; m < nm; m++) {
            cp += count_chars(text + pos, s->marks[m].s - pos);
            s->marks[m].cs = (uint32_t)cp;
            cp += count_chars(text + s->marks[m].s, s->marks[m].e - s->marks[m].s);
            pos = s->marks[m].e;
            s->marks[m].ce = (uint32_t)cp;
        }
    }
    for (size_t i = 0, j = 0; i < limit; i++) {
        uint64_t wend_cp = (uint64_t)s->marks[i].cs + (SNIPPET_CHARS - 20);
        if (j < i)
            j = i;
        while (j < nm && s->marks[j].ce <= wend_cp)
            j++;
        if (j - i > best_n) {
            best_n = j - i;
            best_i = i;
        }
    }
    size_t ws = 0;
    if (nm) {
        ws = back_chars(text, s->marks[best_i].s, 20);
        /* start at a word boundary when one is near */
        for (size_t i = ws; i < s->marks[best_i].s && ws > 0; i++)
            if (text[i] == ' ' || text[i] == '\n') {
                ws = i + 1;
                break;
            }
    }
    size_t we = skip_chars(text, len, ws, SNIPPET_CHARS);
    if (we >= len && ws > 0) { /* near the end: use the full window */
        size_t ws2 = back_chars(text, len, SNIPPET_CHARS);
        if (ws2 < ws) {
            ws = ws2;
            for (size_t i = ws; ws > 0 && i < ws2 + 20 && i < len; i++)
                if (text[i] == ' ' || text[i] == '\n') {
                    ws = i + 1;
                    break;
                }
        }
    }
    if (we < len) {
        for (size_t i = we; i > ws + SNIPPET_CHARS / 2; i--)
            if (text[i] == ' ' || text[i] == '\n') {
                we = i;
                break;
            }
    }
    size_t need = (we - ws) + 2 * nm + 8;
    char *out = hw_arena_alloc(arena, need);
    if (!out)
        return NULL;
    char *o = out;
    if (ws > 0) {
        memcpy(o, "\xe2\x80\xa6", 3); /* … */
        o += 3;
    }
    size_t m = 0;
    while (m < nm && s->marks[m].e <= ws)
        m++;
    /* plain text up to the next mark in one copy, then the mark wrapped; a
     * mark the window begins inside is not wrapped */
    for (size_t i = ws; i < we;) {
        while (mark && m < nm && s->marks[m].s < i)
            m++;
        size_t next = (mark && m < nm && s->marks[m].s < we) ? s->marks[m].s : we;
        o = copy_flat(o, text + i, next - i);
        i = next;
        if (i < we) {
            size_t e = s->marks[m].e < we ? s->marks[m].e : we;
            *o++ = '\x02';
            o = copy_flat(o, text + i, e - i);
            *o++ = '\x03';
            i = e;
            m++;
        }
    }
    if (we < len) {
        memcpy(o, "\xe2\x80\xa6", 3);
        o += 3;
    }
    *o = 0;
    return out;
}

/* ---------------------------------------------------------------------- */
/* Public search and answer                                                */

static int resolve_filter(const hw_index *idx, const snapshot *sn, const char *locale, int kind, filter *f)
{
    f->kind = kind;
    f->locale_id = -1;
    if (locale && locale[0]) {
        f->locale_id = find_locale((const char *const *)idx->locales, sn->n_locales, locale);
        if (f->locale_id < 0)
            return 0; /* unknown locale: nothing can match */
    }
    return 1;
}

/* snippets: 0 none; 1 from candidate words (snip_marks), tables built
 * here; 2 from whole texts tokenized; 3 as 1, tables already built. */
static int fill_hits(hw_searcher *s, const snapshot *sn, size_t n, hw_arena *arena, int snippets,
                     hw_hit **out)
{
    if (snippets == 1 && n)
        snip_prepare(s);
    if (snippets == 2)
        s->snip_fast = 0;
    hw_hit *hits = hw_arena_calloc(arena, n ? n : 1, sizeof *hits);
    if (!hits)
        return HW_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const doc_rec *r = snap_doc(sn, s->heap[i].doc);
        hw_hit *h = &hits[i];
        h->kind = (hw_doc_kind)r->kind;
        h->score = s->heap[i].score;
        h->id = hw_arena_strdup(arena, r->id);
        h->title = hw_arena_strdup(arena, r->title);
        h->locale = hw_arena_strdup(arena, r->locale);
        if (!h->id || !h->title || !h->locale)
            return HW_ENOMEM;
        if (snippets) {
            const char *body = rec_body(r, &s->dctx, &s->body, &s->cap_body);
            if (!body || !(h->snippet = make_snippet(s, body, arena, 1)))
                return HW_ENOMEM;
        }
    }
    *out = hits;
    return 0;
}

int hw_index_search(hw_searcher *s, const hw_search_query *q, hw_arena *arena, hw_search_result *out,
                    hw_status *st)
{
    memset(out, 0, sizeof *out);
    if (!q)
        return hw_status_set(st, HW_EINVALID, "query: missing");
    size_t k = q->top_k ? q->top_k : 10;
    if (k > HW_INDEX_MAX_TOP_K)
        k = HW_INDEX_MAX_TOP_K;
    if (q->kind != HW_DOC_ANY && q->kind != HW_DOC_ARTICLE && q->kind != HW_DOC_FAQ)
        return hw_status_set(st, HW_EINVALID, "kind: unknown");
    hw_index *idx = s->idx;
    int rc;
    urcu_memb_read_lock();
    const snapshot *sn = __atomic_load_n(&idx->current, __ATOMIC_ACQUIRE);
    const hw_syn_table *syn = __atomic_load_n(&idx->syn, __ATOMIC_ACQUIRE);
    if ((rc = prepare_query(s, sn, syn, q->locale, q->text, q->len, st)) != 0)
        goto out;
    filter f;
    size_t n = 0;
    out->n_terms = s->n_orig;
    out->matched_exact = 1;
    if (resolve_filter(idx, sn, q->locale, q->kind, &f)) {
        rc = run_topk(s, sn, &f, k, q->flags, &n, &out->matched, &out->matched_exact);
        if (rc != 0) {
            hw_status_set(st, rc, "search: out of memory");
            goto out;
        }
    }
    int snippets = (q->flags & HW_SEARCH_NO_SNIPPETS) ? 0 : (q->flags & HW_SEARCH_FULL_SNIPPETS) ? 2 : 1;
    if ((rc = fill_hits(s, sn, n, arena, snippets, &out->hits)) != 0) {
        hw_status_set(st, rc, "search: arena exhausted");
        goto out;
    }
    out->n_hits = n;
out:
    TSAN_RELEASE(&idx->tsan_sync);
    urcu_memb_read_unlock();
    if (rc != 0)
        memset(out, 0, sizeof *out);
    return rc;
}

static int has_hash(const uint64_t *v, size_t n, uint64_t h)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v[mid] == h)
            return 1;
        if (v[mid] < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* Share of set b's elements present in sorted set a. */
static double containment(const uint64_t *a, size_t na, const uint64_t *b, size_t nb)
{
    if (nb == 0)
        return 0;
    size_t c = 0;
    for (size_t i = 0; i < nb; i++)
        c += (size_t)has_hash(a, na, b[i]);
    return (double)c / (double)nb;
}

/* Where a term's postings place document doc (global id): 0 absent, 1 in
 * the body only, 2 in the title or an alternate question. */
static uint8_t term_presence(const hw_searcher *s, const snapshot *sn, const qterm *q, uint32_t doc)
{
    const term_info *const *tis = s->qti + q->ti_at;
    uint32_t k = doc < sn->base[sn->n_segs] ? snap_seg_of(sn, doc) : 0;
    if (doc >= sn->base[sn->n_segs] || !tis[k])
        return 0;
    cursor c = {.sn = sn, .tis = tis};
    cur_load(&c, k);
    cur_advance(&c, doc);
    return c.doc == doc ? (c.tf_title ? 2 : 1) : 0;
}

/* The best presence (as term_presence) at which one alternative of
 * synonym match i is wholly in the document (s->pres filled). */
static uint8_t match_presence(const hw_searcher *s, size_t i)
{
    uint8_t best = 0;
    for (uint32_t a = s->m_alt_off[i]; a < s->m_alt_off[i + 1]; a++) {
        uint8_t lv = 2;
        for (uint32_t k = 0; k < s->alts[a].n; k++) {
            uint8_t p = s->pres[s->altq[s->alts[a].q_off + k]];
            if (p < lv)
                lv = p;
        }
        if (lv > best)
            best = lv;
    }
    return best;
}

static int in_span(const hw_token *tk, const hw_syn_match *m, uint64_t h)
{
    for (uint32_t k = m->pos; k < m->pos + m->n; k++)
        if (tk[k].hash == h)
            return 1;
    return 0;
}

/* The question's hash set as it reads against one question set qs[0..nq)
 * of a document: where a matched synonym's alternative is wholly in qs,
 * the span it stands for is replaced by it. Into s->qv; returns its size. */
static size_t query_variant(hw_searcher *s, const hw_token *tk, const uint64_t *qs, size_t nq)
{
    int sub[MAX_SYN_MATCHES];
    for (size_t i = 0; i < s->n_m; i++) {
        sub[i] = -1;
        for (uint32_t a = s->m_alt_off[i]; a < s->m_alt_off[i + 1] && sub[i] < 0; a++) {
            uint32_t k = 0;
            while (k < s->alts[a].n && has_hash(qs, nq, s->q[s->altq[s->alts[a].q_off + k]].hash))
                k++;
            if (k == s->alts[a].n)
                sub[i] = (int)a;
        }
    }
    size_t n = 0;
    for (size_t j = 0; j < s->n_qhash; j++) {
        int drop = 0;
        for (size_t i = 0; i < s->n_m && !drop; i++)
            drop = sub[i] >= 0 && in_span(tk, &s->m[i], s->qhash[j]);
        if (!drop)
            s->qv[n++] = s->qhash[j];
    }
    for (size_t i = 0; i < s->n_m; i++)
        if (sub[i] >= 0)
            for (uint32_t k = 0; k < s->alts[sub[i]].n; k++)
                s->qv[n++] = s->q[s->altq[s->alts[sub[i]].q_off + k]].hash;
    return sort_unique_u64(s->qv, n);
}

/* The question's CJK characters and the bigrams holding each (s->cj):
 * bigrams of one run overlap by a character; a lone character is its own
 * token. */
static int cjk_chars(hw_searcher *s, const hw_token *tk, size_t nt)
{
    s->n_cj = 0;
    if (grow((void **)&s->cj, &s->cap_cj, 2 * nt + 1, sizeof *s->cj))
        return HW_ENOMEM;
    const hw_token *prev = NULL;
    for (size_t k = 0; k < nt; k++) {
        const hw_token *t = &tk[k];
        if (!(t->flags & HW_TOKEN_CJK)) {
            prev = NULL;
            continue;
        }
        int32_t qi = -1;
        for (size_t i = 0; i < s->n_orig && qi < 0; i++)
            if (s->q[i].hash == t->hash)
                qi = (int32_t)i;
        int bigram = t->end - t->start >= 6; /* two characters of 3 or 4 bytes */
        if (prev && t->start < prev->end && s->n_cj > 0) {
            s->cj[s->n_cj - 1].q[1] = qi; /* the character it shares with the previous */
        } else {
            s->cj[s->n_cj++] = (struct cjk_char){{qi, -1}};
        }
        if (bigram)
            s->cj[s->n_cj++] = (struct cjk_char){{qi, -1}};
        prev = t;
    }
    return 0;
}

/* What a candidate's confidence is computed from (hw_answer_signals plus
 * what only the model uses). */
typedef struct features {
    hw_answer_signals sig;
    double dice; /* best Dice similarity to one of its questions */
} features;

static void doc_features(hw_searcher *s, const snapshot *sn, const hw_token *tk, size_t nt, uint32_t doc,
                         const doc_rec *r, double score, double other, features *f)
{
    memset(f, 0, sizeof *f);
    for (size_t i = 0; i < s->n_q; i++)
        s->pres[i] = s->q[i].df ? term_presence(s, sn, &s->q[i], doc) : 0;
    uint8_t mp[MAX_SYN_MATCHES];
    for (size_t i = 0; i < s->n_m; i++)
        mp[i] = match_presence(s, i);
    /* coverage: the question's own terms, idf-weighted. A word unknown to
     * the index is content it cannot answer (half the mean known idf); an
     * unknown CJK bigram is often only a pair straddling two words (a
     * quarter); a term a synonym stands for weighs the mean and is covered
     * by any of its alternatives. */
    double known = 0, total = 0, cov = 0, head = 0;
    uint32_t n_known = 0;
    for (size_t i = 0; i < s->n_orig; i++)
        if (s->q[i].df) {
            known += s->q[i].idf;
            n_known++;
        }
    double mean = n_known ? known / n_known : 1.0;
    /* each term's level in the document (its own, or a synonym's) and weight */
    for (size_t i = 0; i < s->n_orig; i++) {
        const qterm *q = &s->q[i];
        uint8_t lv = s->pres[i];
        int spanned = 0;
        for (size_t m = 0; m < s->n_m; m++)
            if (in_span(tk, &s->m[m], q->hash)) {
                spanned = 1;
                if (mp[m] > lv)
                    lv = mp[m];
            }
        s->lvq[i] = lv;
        s->wq[i] = q->df ? q->idf : spanned ? mean : -1; /* -1: unknown */
        if (q->flags & HW_TOKEN_CJK)
            continue; /* counted by character below */
        double w = s->wq[i] >= 0 ? s->wq[i] : 0.5 * mean;
        total += w;
        cov += lv >= 1 ? w : 0;
        head += lv >= 2 ? w : 0;
    }
    /* CJK by character: a bigram straddling two words (的退, 问你) is not
     * content, so a character weighs half the idf of the best known bigram
     * holding it (a quarter of the mean known idf when none is known), and
     * is covered when a bigram holding it is in the document */
    for (size_t c = 0; c < s->n_cj; c++) {
        double w = -1;
        uint8_t lv = 0;
        for (int k = 0; k < 2; k++) {
            int32_t qi = s->cj[c].q[k];
            if (qi < 0)
                continue;
            if (s->wq[qi] >= 0 && 0.5 * s->wq[qi] > w)
                w = 0.5 * s->wq[qi];
            if (s->lvq[qi] > lv)
                lv = s->lvq[qi];
        }
        if (w < 0)
            w = 0.25 * mean;
        total += w;
        cov += lv >= 1 ? w : 0;
        head += lv >= 2 ? w : 0;
    }
    f->sig.coverage = total > 0 ? cov / total : 0;
    f->sig.head_coverage = total > 0 ? head / total : 0;
    f->sig.terms = (uint32_t)s->n_orig;
    f->sig.known_terms = n_known;
    f->sig.synonyms_applied = (uint32_t)s->n_m;
    /* question similarity: the closest of its questions (title or FAQ
     * question, alternates), read through the synonyms */
    int best_q = 0;
    for (uint32_t q = 0; q < (uint32_t)r->n_alts + 1; q++) {
        const uint64_t *set = r->qsets + r->qset_off[q];
        size_t n = r->qset_off[q + 1] - r->qset_off[q];
        size_t nv = query_variant(s, tk, set, n);
        double d = dice(s->qv, nv, set, n), ct = containment(s->qv, nv, set, n);
        double sim = 0.5 * (d + ct);
        if (ct > f->sig.question_containment)
            f->sig.question_containment = ct;
        if (sim > f->sig.question_similarity) {
            f->sig.question_similarity = sim;
            best_q = (int)q;
        }
        if (d > f->dice)
            f->dice = d;
    }
    /* phrase: the question's adjacent token pairs found adjacent in a question */
    size_t pairs = 0, found = 0;
    for (size_t i = 0; i + 1 < nt; i++) {
        pairs++;
        found += (size_t)has_hash(r->pairs, r->n_pairs, pair_hash(tk[i].hash, tk[i + 1].hash));
    }
    f->sig.phrase = pairs ? (double)found / (double)pairs : f->sig.head_coverage;
    double mg = score > 0 ? (score - other) / score : 0;
    f->sig.margin = mg < 0 ? 0 : mg > 1 ? 1 : mg;
    if (f->sig.head_coverage < 0.5)
        f->sig.field = HW_MATCH_BODY;
    else if (r->kind == HW_DOC_FAQ || best_q > 0)
        f->sig.field = HW_MATCH_QUESTION;
    else
        f->sig.field = HW_MATCH_TITLE;
}

/* Whether two locales share their primary language ("zh-CN", "zh"). */
static int same_language(const char *a, const char *b)
{
    size_t i = 0;
    for (; a[i] && a[i] != '-' && a[i] != '_'; i++)
        if ((a[i] | 0x20) != (b[i] | 0x20))
            return 0;
    return !b[i] || b[i] == '-' || b[i] == '_';
}

/* The confidence model: a logistic regression over the features, fitted
 * on the development half of the evaluation set (bench/answers/, see
 * bench/answers_fit.py, which prints this table). */
static const struct {
    double bias, coverage, head_coverage, question_similarity, question_containment, margin, phrase, locale_match,
        known_share, log_terms;
} model = {-4.572, 1.883, 0.412, 1.201, 1.078, 2.335, -0.287, 1.170, 0.717, 0.408};

static double model_confidence(const features *f)
{
    double known = f->sig.terms ? (double)f->sig.known_terms / f->sig.terms : 0;
    double z = model.bias + model.coverage * f->sig.coverage + model.head_coverage * f->sig.head_coverage +
               model.question_similarity * f->sig.question_similarity + model.margin * f->sig.margin +
               model.phrase * f->sig.phrase + model.known_share * known + model.locale_match * f->sig.locale_match +
               model.question_containment * f->sig.question_containment +
               model.log_terms * log(1.0 + f->sig.terms);
    double c = 1.0 / (1.0 + exp(-z));
    if (f->sig.coverage <= 0)
        c = 0; /* nothing of the question is in the document */
    return c;
}

/* The argument checks of both answer entry points, in this order; a
 * threshold <= 0 becomes the index's. */
static int check_answer(const hw_index *idx, double *threshold, const char *question, size_t len,
                        hw_status *st)
{
    if (*threshold <= 0)
        *threshold = idx->opt.answer_threshold;
    if (*threshold > 1)
        return hw_status_set(st, HW_EINVALID, "min_confidence: must be in (0, 1]");
    return check_query(question, len, st);
}

/* Answers from the question's tokens; the caller checked the arguments.
 * Every candidate of the top ANSWER_POOL gets a confidence; the most
 * confident is the answer (a near-exact question match counts its Dice
 * similarity when higher; ties go to the question's locale, then rank). */
static int answer(hw_searcher *s, const hw_token *toks, size_t n_toks, const char *locale, double threshold,
                  hw_arena *arena, hw_answer *out, hw_status *st)
{
    hw_index *idx = s->idx;
    int rc;
    urcu_memb_read_lock();
    const snapshot *sn = __atomic_load_n(&idx->current, __ATOMIC_ACQUIRE);
    const hw_syn_table *syn = __atomic_load_n(&idx->syn, __ATOMIC_ACQUIRE);
    if ((rc = resolve_query(s, sn, toks, n_toks, st)) != 0)
        goto out;
    if (expand_synonyms(s, sn, syn, toks, n_toks, locale) != 0 || correct_typos(s, sn, toks, n_toks) != 0 ||
        grow((void **)&s->pres, &s->cap_pres, s->n_q + 1, 1) ||
        grow((void **)&s->qv, &s->cap_qv, s->n_qhash + s->n_altq + 1, sizeof *s->qv) ||
        grow((void **)&s->lvq, &s->cap_lvq, s->n_q + 1, 1) || grow((void **)&s->wq, &s->cap_wq, s->n_q + 1, sizeof *s->wq) ||
        cjk_chars(s, toks, n_toks) != 0) {
        rc = hw_status_set(st, HW_ENOMEM, "answer: out of memory");
        goto out;
    }
    /* the query's term texts are still valid here (toks may be in s->tok,
     * which the passage and the snippets below tokenize with) */
    snip_prepare(s);
    filter f = {0, -1};
    size_t n = 0;
    uint64_t matched;
    int exact;
    if ((rc = run_topk(s, sn, &f, ANSWER_POOL, 0, &n, &matched, &exact)) != 0) {
        hw_status_set(st, rc, "answer: out of memory");
        goto out;
    }
    int lid =
        locale && locale[0] ? find_locale((const char *const *)idx->locales, sn->n_locales, locale) : -1;
    const doc_rec *best = NULL;
    double best_conf = -1;
    int best_exact = 0;
    features best_f;
    for (size_t i = 0; i < n; i++) {
        const doc_rec *r = snap_doc(sn, s->heap[i].doc);
        double other = 0;
        for (size_t j = 0; j < n; j++)
            if (j != i && s->heap[j].score > other)
                other = s->heap[j].score;
        features fe;
        doc_features(s, sn, toks, n_toks, s->heap[i].doc, r, s->heap[i].score, other, &fe);
        fe.sig.locale_match = lid < 0 ? 0.5 : same_language(r->locale, locale) ? 1 : 0;
        double conf = model_confidence(&fe);
        /* near-exact: at least 0.9, up to 1 for the same terms */
        int ex = fe.dice >= idx->opt.faq_near_similarity;
        double span = 1.0 - idx->opt.faq_near_similarity;
        double near = span > 0 ? 0.9 + 0.1 * (fe.dice - idx->opt.faq_near_similarity) / span : 1.0;
        if (ex && near > conf)
            conf = near;
        if (conf > best_conf || (conf == best_conf && best && best->locale_id != lid && r->locale_id == lid)) {
            best = r;
            best_conf = conf;
            best_exact = ex;
            best_f = fe;
        }
    }
    out->answer = "";
    out->source_id = "";
    out->source_kind = HW_DOC_ANY;
    if (best) {
        out->faq_exact = best_exact;
        out->confidence = best_conf < 0 ? 0 : best_conf > 1 ? 1 : best_conf;
        out->signals = best_f.sig;
        out->source_kind = (hw_doc_kind)best->kind;
        out->source_id = hw_arena_strdup(arena, best->id);
        if (!out->source_id)
            goto nomem;
    }
    out->transfer = !best || out->confidence < threshold;
    if (best && !out->transfer) {
        const char *body = rec_body(best, &s->dctx, &s->body, &s->cap_body);
        if (!body)
            goto nomem;
        out->answer = best->kind == HW_DOC_FAQ ? hw_arena_strdup(arena, body) : make_snippet(s, body, arena, 0);
        if (!out->answer)
            goto nomem;
    }
    if (n > ANSWER_HITS)
        n = ANSWER_HITS;
    if ((rc = fill_hits(s, sn, n, arena, 3, &out->hits)) != 0)
        goto nomem;
    out->n_hits = n;
    goto out;
nomem:
    rc = hw_status_set(st, HW_ENOMEM, "answer: arena exhausted");
out:
    TSAN_RELEASE(&idx->tsan_sync);
    urcu_memb_read_unlock();
    if (rc != 0)
        memset(out, 0, sizeof *out);
    return rc;
}

int hw_index_answer(hw_searcher *s, const char *question, size_t len, const char *locale, double threshold,
                    hw_arena *arena, hw_answer *out, hw_status *st)
{
    memset(out, 0, sizeof *out);
    int rc = check_answer(s->idx, &threshold, question, len, st);
    if (rc != 0)
        return rc;
    const hw_token *tk;
    size_t nt;
    hw_status ts;
    if ((rc = hw_tokenize(s->tok, question, len, &tk, &nt, &ts)) != 0)
        return hw_status_set(st, rc, "query: %s", ts.msg);
    return answer(s, tk, nt, locale, threshold, arena, out, st);
}

int hw_index_answer_tokens(hw_searcher *s, const char *question, size_t len, const hw_token *toks, size_t n,
                           const char *locale, double threshold, hw_arena *arena, hw_answer *out,
                           hw_status *st)
{
    memset(out, 0, sizeof *out);
    int rc = check_answer(s->idx, &threshold, question, len, st);
    if (rc != 0)
        return rc;
    return answer(s, toks, toks ? n : 0, locale, threshold, arena, out, st);
}
