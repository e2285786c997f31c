/*
 * synonyms: synonym sets in the store and in the index (contract:
 * synonyms.h).
 *
 * A Put or Delete goes through three threads, like a knowledge put
 * (knowledge.c): the handler (a worker) validates, with its own tokenizer,
 * so that the index can never refuse what the store accepted; the write
 * runs on the store's writer thread, whose done callback only bumps
 * `committed` and hands a reload (HW_INDEX_OP_RUN) to the indexer thread;
 * the reload reads every set back from the store with this module's
 * reader, calls hw_index_set_synonyms, and the change's done callback
 * answers the call.
 *
 * Coalescing. `committed` counts changes whose commit is over (bumped after
 * the commit, before the reload is queued); `loaded` is the value of
 * `committed` read just before the last successful reload began its read
 * transaction. Every change counted in `loaded` committed before that
 * transaction began, so the reload saw it; a queued reload that finds
 * committed == loaded has nothing new to read and returns at once. Both
 * are touched by the indexer thread only, except `committed`, which the
 * writer thread bumps (an atomic).
 *
 * Listing pages by id: the page token is a store cursor whose key is
 * LIST_CURSOR_TAG followed by the last id returned, so a token of another
 * listing (whose first byte is a database number) is refused.
 */
#include "server/domain/synonyms.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "server/base/log.h"
#include "server/domain/rpc.h"
#include "server/search/index.h"
#include "server/search/indexer.h"
#include "server/search/tokenize.h"

#define ID_SEQ "synonym_set"
#define ID_PREFIX "syn"
#define LIST_CURSOR_TAG 0xfeu

struct hw_synonyms {
    hw_app *app;
    hw_store_reader *reader;        /* the loading thread's: main, then hw-indexer */
    atomic_uint_fast64_t committed; /* changes committed so far (see the top comment) */
    uint64_t loaded;                /* `committed` as of the last successful load; indexer only */
    bool loaded_once;               /* indexer only (main before the indexer starts) */
    atomic_size_t n_sets;           /* sets in the index */
};

int hw_synonyms_create(hw_synonyms **out, hw_app *app)
{
    *out = NULL;
    hw_synonyms *s = calloc(1, sizeof *s);
    if (!s)
        return HW_ENOMEM;
    s->app = app;
    int rc = hw_store_reader_create(app->store, &s->reader);
    if (rc != HW_OK) {
        free(s);
        return rc;
    }
    *out = s;
    return HW_OK;
}

void hw_synonyms_destroy(hw_synonyms *s)
{
    if (!s)
        return;
    hw_store_reader_destroy(s->reader);
    free(s);
}

size_t hw_synonyms_count(const hw_synonyms *s)
{
    return s ? atomic_load(&((hw_synonyms *)s)->n_sets) : 0;
}

/* ------------------------------------------------------------ validation */

/* The byte offset of the first invalid UTF-8 sequence (-1: none), and
 * whether a letter or digit occurs. */
static long scan_utf8(const char *s, size_t len, bool *alnum)
{
    *alnum = false;
    size_t i = 0;
    while (i < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n =
            utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &cp);
        if (n <= 0)
            return (long)i;
        switch (utf8proc_category(cp)) {
        case UTF8PROC_CATEGORY_LU:
        case UTF8PROC_CATEGORY_LL:
        case UTF8PROC_CATEGORY_LT:
        case UTF8PROC_CATEGORY_LM:
        case UTF8PROC_CATEGORY_LO:
        case UTF8PROC_CATEGORY_ND:
        case UTF8PROC_CATEGORY_NL:
        case UTF8PROC_CATEGORY_NO:
            *alnum = true;
            break;
        default:
            break;
        }
        i += (size_t)n;
    }
    return -1;
}

static bool locale_ok(const char *s)
{
    size_t n = strlen(s);
    if (n > HW_SYNONYMS_MAX_LOCALE)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_'))
            return false;
    }
    return true;
}

static bool id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n > HW_SYNONYMS_MAX_ID)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

/* What a term matches: its tokens in order, as one hash (0 is never one). */
static uint64_t term_signature(const hw_token *toks, size_t n)
{
    uint64_t h[HW_SYNONYMS_MAX_TERM + 1];
    size_t k = 0;
    for (size_t i = 0; i < n && k < HW_SYNONYMS_MAX_TERM; i++)
        h[k++] = toks[i].hash;
    h[k++] = (uint64_t)n;
    uint64_t sig = hw_term_hash((const char *)h, k * sizeof h[0]);
    return sig ? sig : 1;
}

int hw_synonyms_check(hw_tokenizer *tok, const Helpwire__V1__SynonymSet *set, char *msg, size_t msglen)
{
    msg[0] = '\0';
    if (!set) {
        snprintf(msg, msglen, "set: required");
        return HW_EINVALID;
    }
    if (!id_ok(set->id)) {
        snprintf(msg, msglen, "set.id: at most %d bytes of letters, digits and . _ : -", HW_SYNONYMS_MAX_ID);
        return HW_EINVALID;
    }
    if (!locale_ok(set->locale)) {
        snprintf(msg, msglen, "set.locale: at most %d bytes of letters, digits, - and _ (\"zh\", \"en-GB\")",
                 HW_SYNONYMS_MAX_LOCALE);
        return HW_EINVALID;
    }
    if (set->n_terms < HW_SYNONYMS_MIN_TERMS || set->n_terms > HW_SYNONYMS_MAX_TERMS) {
        snprintf(msg, msglen, "set.terms: %zu given, %d to %d needed", set->n_terms, HW_SYNONYMS_MIN_TERMS,
                 HW_SYNONYMS_MAX_TERMS);
        return HW_EINVALID;
    }
    uint64_t sig[HW_SYNONYMS_MAX_TERMS];
    for (size_t i = 0; i < set->n_terms; i++) {
        const char *t = set->terms[i];
        size_t len = strlen(t);
        bool alnum;
        long bad;
        if (len == 0) {
            snprintf(msg, msglen, "set.terms[%zu]: empty", i);
            return HW_EINVALID;
        }
        if (len > HW_SYNONYMS_MAX_TERM) {
            snprintf(msg, msglen, "set.terms[%zu]: %zu bytes, at most %d allowed", i, len,
                     HW_SYNONYMS_MAX_TERM);
            return HW_EINVALID;
        }
        if ((bad = scan_utf8(t, len, &alnum)) >= 0) {
            snprintf(msg, msglen, "set.terms[%zu]: invalid UTF-8 at byte %ld", i, bad);
            return HW_EINVALID;
        }
        if (!alnum) {
            snprintf(msg, msglen, "set.terms[%zu]: needs a letter or digit", i);
            return HW_EINVALID;
        }
        const hw_token *toks;
        size_t n;
        hw_status st = {0};
        int rc = hw_tokenize(tok, t, len, &toks, &n, &st);
        if (rc != HW_OK) {
            snprintf(msg, msglen, "set.terms[%zu]: %s", i, st.msg[0] ? st.msg : hw_strerror(rc));
            return rc == HW_ENOMEM ? HW_ENOMEM : HW_EINVALID;
        }
        if (n == 0) {
            snprintf(msg, msglen, "set.terms[%zu]: only words search ignores (like \"the\", \"and\")", i);
            return HW_EINVALID;
        }
        sig[i] = term_signature(toks, n);
        for (size_t j = 0; j < i; j++)
            if (sig[j] == sig[i]) {
                snprintf(msg, msglen, "set.terms[%zu]: the same as set.terms[%zu] once normalized", i, j);
                return HW_EINVALID;
            }
    }
    return HW_OK;
}

/* ---------------------------------------------------------------- storage */

static int get_set(hw_store_txn *t, const char *id, hw_arena *a, Helpwire__V1__SynonymSet **out)
{
    void *val;
    size_t len;
    *out = NULL;
    int rc = hw_store_kv_get(t, HW_SYNONYMS_NS, id, strlen(id), a, &val, &len);
    if (rc != HW_OK)
        return rc;
    *out = helpwire__v1__synonym_set__unpack(hw_arena_allocator(a), len, val);
    return *out ? HW_OK : HW_ECORRUPT;
}

static int store_set(hw_store_txn *w, const Helpwire__V1__SynonymSet *set)
{
    size_t len = helpwire__v1__synonym_set__get_packed_size(set);
    uint8_t *buf = hw_arena_alloc(hw_store_txn_arena(w), len ? len : 1);
    if (!buf)
        return HW_ENOMEM;
    helpwire__v1__synonym_set__pack(set, buf);
    return hw_store_kv_put(w, HW_SYNONYMS_NS, set->id, strlen(set->id), buf, len);
}

/* The stored version of id, 0 when there is none. */
static int stored_version(hw_store_txn *w, const char *id, uint64_t *version)
{
    Helpwire__V1__SynonymSet *old;
    *version = 0;
    int rc = get_set(w, id, hw_store_txn_arena(w), &old);
    if (rc == HW_OK)
        *version = old->version;
    return rc == HW_ENOTFOUND ? HW_OK : rc;
}

int hw_synonyms_put_in(hw_store_txn *w, Helpwire__V1__SynonymSet *set, int64_t now_ms)
{
    if (!set || !set->id || !set->id[0])
        return HW_EINVALID;
    uint64_t old;
    int rc = stored_version(w, set->id, &old);
    if (rc != HW_OK)
        return rc;
    set->version = old + 1;
    set->updated_unix_ms = now_ms;
    return store_set(w, set);
}

/* ------------------------------------------------------------- (re)load */

typedef struct collect_ctx {
    hw_arena *a;
    hw_synonym_set *sets;
    size_t n, cap;
    size_t skipped; /* records that do not decode */
    const hw_log *log;
} collect_ctx;

static int collect_one(void *arg, const void *key, size_t key_len, const void *val, size_t val_len)
{
    collect_ctx *c = arg;
    Helpwire__V1__SynonymSet *set = helpwire__v1__synonym_set__unpack(hw_arena_allocator(c->a), val_len, val);
    if (!set) {
        c->skipped++;
        hw_log_event(c->log, HW_LOG_ERROR, "synonym_set_unreadable", "id=%.*s bytes=%zu",
                     (int)(key_len < 64 ? key_len : 64), (const char *)key, val_len);
        return HW_OK;
    }
    if (c->n == HW_SYNONYMS_MAX_SETS)
        return HW_ETOOBIG;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        hw_synonym_set *sets = hw_arena_alloc(c->a, cap * sizeof *sets);
        if (!sets)
            return HW_ENOMEM;
        if (c->n)
            memcpy(sets, c->sets, c->n * sizeof *sets);
        c->sets = sets;
        c->cap = cap;
    }
    c->sets[c->n++] = (hw_synonym_set){
        .locale = set->locale, .terms = (const char *const *)set->terms, .n_terms = set->n_terms};
    return HW_OK;
}

/* Reads every set and replaces the index's. Main thread at start, then the
 * indexer thread only. */
static int reload(hw_synonyms *s, hw_index *idx, hw_status *st)
{
    uint64_t gen = atomic_load(&s->committed);
    if (s->loaded_once && gen == s->loaded)
        return HW_OK; /* a reload that began after this change's commit covered it */
    hw_arena *a = hw_arena_create(64 * 1024);
    if (!a)
        return HW_ENOMEM;
    collect_ctx c = {.a = a, .log = s->app->log};
    hw_store_txn *t = NULL;
    int rc = hw_store_read_begin(s->reader, &t);
    if (rc == HW_OK) {
        rc = hw_store_kv_foreach(t, HW_SYNONYMS_NS, collect_one, &c);
        hw_store_read_end(s->reader);
    }
    if (rc == HW_ETOOBIG)
        snprintf(st->msg, sizeof st->msg, "more than %d synonym sets stored", HW_SYNONYMS_MAX_SETS);
    if (rc == HW_OK)
        rc = hw_index_set_synonyms(idx, c.sets, c.n, st);
    if (rc == HW_OK) {
        s->loaded = gen;
        s->loaded_once = true;
        atomic_store(&s->n_sets, c.n);
    }
    hw_arena_destroy(a);
    return rc;
}

int hw_synonyms_load(hw_synonyms *s, size_t *n_sets, char *err, size_t errlen)
{
    hw_status st = {0};
    s->loaded_once = false;
    int rc = reload(s, s->app->index, &st);
    *n_sets = hw_synonyms_count(s);
    if (rc != HW_OK)
        snprintf(err, errlen, "loading the synonym sets: %s%s%s", hw_strerror(rc), st.msg[0] ? ": " : "",
                 st.msg);
    return rc;
}

/* A reload handed to the indexer: the change first, so that reload_run
 * finds the module from the change. arg is the done callback's. */
typedef struct reload_change {
    hw_index_change ch;
    hw_synonyms *s;
} reload_change;

static int reload_run(hw_index_change *ch, hw_index *idx, hw_status *st)
{
    return reload(((reload_change *)ch)->s, idx, st);
}

/* Bumps `committed` (the change's commit is over) and queues a reload whose
 * done is done(arg). Writer thread or the note handler's. */
static int queue_reload(hw_synonyms *s, reload_change *r, hw_index_done_fn done, void *arg)
{
    if (!s->app->indexer)
        return HW_ECLOSED;
    atomic_fetch_add(&s->committed, 1);
    *r = (reload_change){.ch = {.op = HW_INDEX_OP_RUN, .run = reload_run, .done = done, .arg = arg}, .s = s};
    return hw_indexer_submit(s->app->indexer, &r->ch);
}

static void log_reload_failure(hw_app *app, int rc, const hw_status *st)
{
    char q[400];
    if (rc != HW_OK)
        hw_log_event(app->log, HW_LOG_ERROR, "synonyms_not_applied",
                     "error=%s detail=%s effect=\"the index keeps its previous synonym sets\"",
                     hw_strerror(rc), hw_log_quote(st->msg, q, sizeof q));
}

/* A reload queued by another replica's note: owns itself (malloc). */
static void replica_reload_done(hw_index_change *ch, int rc, const hw_status *st)
{
    reload_change *r = (reload_change *)ch;
    log_reload_failure(r->s->app, rc, st);
    free(r);
}

int hw_synonyms_replicated_change(hw_synonyms *s)
{
    if (!s)
        return HW_EINVALID;
    reload_change *r = malloc(sizeof *r);
    if (!r)
        return HW_ENOMEM;
    int rc = queue_reload(s, r, replica_reload_done, r);
    if (rc != HW_OK)
        free(r);
    return rc;
}

/* ---------------------------------------------------------------- handlers */

static hw_synonyms *module_of(hw_call *call, hw_app *app)
{
    if (!app->synonyms)
        hw_call_fail(call, GRPC_STATUS_UNAVAILABLE, "synonym sets are not available on this server yet");
    return app->synonyms;
}

/* The reply when the reload behind a Put or Delete failed: the store has
 * the change, the index does not. */
static void fail_not_applied(hw_call *call, int rc, const hw_status *st, const char *id)
{
    hw_rpc_fail(call, rc,
                "synonym set %s is saved but not applied yet (%s%s%s); the next change or restart applies it",
                id, hw_strerror(rc), st->msg[0] ? ": " : "", st->msg);
}

typedef struct put_ctx {
    hw_wctx h;
    Helpwire__V1__SynonymSet *set; /* the new version, in the call's arena; its id buffer is ours */
    uint64_t expected_version;
    bool id_assigned; /* the write took a number for the id */
    reload_change reload;
} put_ctx;

/* Takes the next free "syn-<n>" into id (HW_STORE_ID_MAX bytes); numbers a
 * caller chose by hand are skipped. */
static int assign_id(hw_store_txn *w, char *id)
{
    for (int tries = 0; tries < 1000; tries++) {
        uint64_t n;
        void *val;
        size_t len;
        int rc = hw_store_next_seq(w, ID_SEQ, 1, &n);
        if (rc != HW_OK)
            return rc;
        snprintf(id, HW_STORE_ID_MAX, "%s-%llu", ID_PREFIX, (unsigned long long)n);
        rc = hw_store_kv_get(w, HW_SYNONYMS_NS, id, strlen(id), hw_store_txn_arena(w), &val, &len);
        if (rc == HW_ENOTFOUND)
            return HW_OK;
        if (rc != HW_OK)
            return rc;
    }
    return HW_EEXISTS;
}

static int put_fn(hw_store_txn *w, void *arg)
{
    put_ctx *c = arg;
    Helpwire__V1__SynonymSet *set = c->set;
    if (c->id_assigned) /* a rerun: the number taken before was rolled back */
        set->id[0] = '\0';
    if (set->id[0] == '\0') {
        int rc = assign_id(w, set->id);
        if (rc != HW_OK)
            return rc;
        c->id_assigned = true;
    }
    uint64_t old;
    int rc = stored_version(w, set->id, &old);
    if (rc != HW_OK)
        return rc;
    if (c->expected_version && old != c->expected_version)
        return hw_rpc_wfail_on(&c->h, HW_ECONFLICT, "synonymSets", set->id,
                               "synonym set %s is at version %llu, not %llu", set->id,
                               (unsigned long long)old, (unsigned long long)c->expected_version);
    if (old == 0 && hw_synonyms_count(c->h.app->synonyms) >= HW_SYNONYMS_MAX_SETS)
        return hw_rpc_wfail(&c->h, HW_EPRECONDITION, "there are %d synonym sets already, the most allowed",
                            HW_SYNONYMS_MAX_SETS);
    rc = hw_synonyms_put_in(w, set, hw_effects_now_ms(&c->h.fx));
    if (rc == HW_OK) /* for the other replicas' indexes (notes.h); ours is reloaded by put_done */
        hw_effects_synonyms_changed(&c->h.fx);
    return rc;
}

/* On the indexer thread: the sets are reloaded; answer. */
static void put_applied(hw_index_change *ch, int rc, const hw_status *st)
{
    put_ctx *c = ch->arg;
    log_reload_failure(c->h.app, rc, st);
    if (rc != HW_OK)
        fail_not_applied(c->h.call, rc, st, c->set->id);
    else
        hw_call_reply(c->h.call, &c->set->base);
}

/* On the writer thread, after the commit: hand the reload to the indexer. */
static void put_done(void *arg, int status)
{
    put_ctx *c = arg;
    if (hw_rpc_write_failed(&c->h, status))
        return;
    if (queue_reload(c->h.app->synonyms, &c->reload, put_applied, c) != HW_OK)
        hw_call_fail(c->h.call, GRPC_STATUS_UNAVAILABLE,
                     "synonym set %s is saved, but the server is stopping: it applies after the restart",
                     c->set->id);
}

void hw_synonyms_put(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    hw_app *app = appv;
    const Helpwire__V1__PutSynonymSetRequest *req = (const void *)request;
    if (!module_of(call, app))
        return;
    char msg[256];
    int rc = hw_synonyms_check(app->workers[hw_call_worker(call)].tokenizer, req->set, msg, sizeof msg);
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, "%s", msg);
        return;
    }
    put_ctx *c = hw_rpc_ctx_new(call, app, sizeof *c);
    if (!c)
        return;
    hw_arena *a = hw_call_arena(call);
    c->set = hw_arena_alloc(a, sizeof *c->set);
    char *id = hw_arena_alloc(a, HW_STORE_ID_MAX);
    if (!c->set || !id) {
        hw_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of memory");
        return;
    }
    *c->set = *req->set;
    snprintf(id, HW_STORE_ID_MAX, "%s", req->set->id);
    c->set->id = id;
    c->expected_version = req->expected_version;
    hw_rpc_write(&c->h, put_fn, put_done);
}

typedef struct delete_ctx {
    hw_wctx h;
    const char *id;
    reload_change reload;
} delete_ctx;

static int delete_fn(hw_store_txn *w, void *arg)
{
    delete_ctx *c = arg;
    int rc = hw_store_kv_delete(w, HW_SYNONYMS_NS, c->id, strlen(c->id));
    if (rc == HW_ENOTFOUND)
        return hw_rpc_wfail(&c->h, rc, "no synonym set with id %s", c->id);
    if (rc == HW_OK)
        hw_effects_synonyms_changed(&c->h.fx);
    return rc;
}

static void delete_applied(hw_index_change *ch, int rc, const hw_status *st)
{
    delete_ctx *c = ch->arg;
    log_reload_failure(c->h.app, rc, st);
    if (rc != HW_OK) {
        fail_not_applied(c->h.call, rc, st, c->id);
        return;
    }
    Helpwire__V1__DeleteSynonymSetReply r = HELPWIRE__V1__DELETE_SYNONYM_SET_REPLY__INIT;
    hw_call_reply(c->h.call, &r.base);
}

static void delete_done(void *arg, int status)
{
    delete_ctx *c = arg;
    if (hw_rpc_write_failed(&c->h, status))
        return;
    if (queue_reload(c->h.app->synonyms, &c->reload, delete_applied, c) != HW_OK)
        hw_call_fail(
            c->h.call, GRPC_STATUS_UNAVAILABLE,
            "synonym set %s is deleted, but the server is stopping: it stops applying after the restart",
            c->id);
}

void hw_synonyms_delete(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    hw_app *app = appv;
    const Helpwire__V1__DeleteSynonymSetRequest *req = (const void *)request;
    if (!module_of(call, app) || !hw_rpc_check_id(call, "id", req->id, HW_SYNONYMS_MAX_ID, false))
        return;
    delete_ctx *c = hw_rpc_ctx_new(call, app, sizeof *c);
    if (!c)
        return;
    c->id = req->id;
    hw_rpc_write(&c->h, delete_fn, delete_done);
}

typedef struct list_ctx {
    hw_arena *a;
    const char *locale; /* NULL: every locale */
    size_t limit;
    Helpwire__V1__SynonymSet **sets; /* [limit] */
    size_t n;
    bool more; /* a matching set follows the page */
} list_ctx;

static int list_one(void *arg, const void *key, size_t key_len, const void *val, size_t val_len)
{
    (void)key;
    (void)key_len;
    list_ctx *c = arg;
    Helpwire__V1__SynonymSet *set = helpwire__v1__synonym_set__unpack(hw_arena_allocator(c->a), val_len, val);
    if (!set)
        return HW_OK; /* logged by the loads; a listing shows what it can */
    if (c->locale && strcmp(set->locale, c->locale) != 0)
        return HW_OK;
    if (c->n == c->limit) {
        c->more = true;
        return HW_STOP;
    }
    c->sets[c->n++] = set;
    return HW_OK;
}

void hw_synonyms_list(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    hw_app *app = appv;
    const Helpwire__V1__ListSynonymSetsRequest *req = (const void *)request;
    hw_store_cursor cur;
    if (!hw_rpc_check_text(call, "locale", req->locale, 0, HW_SYNONYMS_MAX_LOCALE) ||
        !hw_rpc_page_token(call, "page_token", req->page_token, &cur))
        return;
    if (cur.len && (cur.key[0] != LIST_CURSOR_TAG || cur.len < 2 || cur.len - 1 > HW_SYNONYMS_MAX_ID)) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "page_token: not a token from this listing");
        return;
    }
    list_ctx c = {.a = hw_call_arena(call),
                  .locale = req->locale[0] ? req->locale : NULL,
                  .limit = hw_rpc_page_size(req->page_size, 50, 1000)};
    if (!(c.sets = hw_arena_calloc(c.a, c.limit, sizeof *c.sets))) {
        hw_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of memory");
        return;
    }
    hw_store_txn *t = hw_rpc_read(call, app);
    if (!t)
        return;
    int rc = hw_store_kv_foreach_after(t, HW_SYNONYMS_NS, cur.len ? cur.key + 1 : NULL,
                                       cur.len ? cur.len - 1 : 0, list_one, &c);
    hw_rpc_read_end(call, app);
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, "listing synonym sets failed: %s", hw_strerror(rc));
        return;
    }
    Helpwire__V1__ListSynonymSetsReply reply = HELPWIRE__V1__LIST_SYNONYM_SETS_REPLY__INIT;
    reply.sets = c.sets;
    reply.n_sets = c.n;
    memset(&cur, 0, sizeof cur);
    if (c.more) {
        const char *last = c.sets[c.n - 1]->id;
        size_t n = strlen(last);
        cur.key[0] = LIST_CURSOR_TAG;
        memcpy(cur.key + 1, last, n);
        cur.len = n + 1;
    }
    reply.next_page_token = hw_rpc_next_token(call, &cur);
    hw_call_reply(call, &reply.base);
}
