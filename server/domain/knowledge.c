/*
 * knowledge: Knowledge RPCs over the store (records) and the search index.
 *
 * A put or delete goes through three threads. The handler (a worker)
 * validates and queues a store write. The write commits on the store's
 * writer thread, whose done callback only hands the change, with the call,
 * to the indexer (hw-indexer, server/search/indexer.h): a pointer link, so
 * the writer goes on with the next group at once, and Route or ticket
 * writes never wait behind index work. The indexer applies the change with
 * whatever else is waiting (delta rebuild, RCU publish, now and then a main
 * rebuild) and then answers the call: a client that got its answer finds
 * the change in Search and Answer at once (read-your-writes), as when the
 * index was updated on the writer thread.
 *
 * The change lives in the call's arena, which lives until the call is
 * answered, so the indexer borrows the document without a copy. When the
 * indexer has stopped (only after the server answered every call, so in
 * practice never) the call fails with UNAVAILABLE saying the change is
 * saved and will be searchable after the restart (the index is rebuilt
 * from the store at every start).
 *
 * Replication: each put and delete also records a knowledge effect, which
 * reaches the other replicas in the write's note; there notes.h calls
 * hw_knowledge_replicated_change, which reads the document back from the
 * store and submits it to that replica's indexer. Here the leader's done
 * callbacks submit as before, so nothing is indexed twice.
 */
#include "server/domain/knowledge.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "helpwire/v1/knowledge.pb-c.h"
#include "server/domain/classify.h"
#include "server/domain/rpc.h"
#include "server/search/index.h"
#include "server/search/indexer.h"

#define MAX_TITLE 512
#define MAX_BODY (256 * 1024)
#define MAX_QUESTION 1024
#define MAX_ANSWER (16 * 1024)
#define MAX_LOCALE 15
#define MAX_TAGS 32
#define MAX_TAG 64
#define MAX_ALT 16

/* ------------------------------------------------------------ the index */

/* The index's view of a stored document (strings borrowed). */
static hw_doc article_doc(const Helpwire__V1__Article *ar)
{
    return (hw_doc){.kind = HW_DOC_ARTICLE,
                    .id = ar->id,
                    .title = ar->title,
                    .body = ar->body,
                    .locale = ar->locale,
                    .alt_questions = (const char *const *)ar->alternate_questions,
                    .n_alt_questions = ar->n_alternate_questions};
}

static hw_doc faq_doc(const Helpwire__V1__Faq *fq)
{
    return (hw_doc){.kind = HW_DOC_FAQ,
                    .id = fq->id,
                    .title = fq->question,
                    .body = fq->answer,
                    .locale = fq->locale,
                    .alt_questions = (const char *const *)fq->alternate_questions,
                    .n_alt_questions = fq->n_alternate_questions};
}

static int index_article(hw_index *idx, const Helpwire__V1__Article *ar, hw_status *st)
{
    hw_doc d = article_doc(ar);
    return hw_index_put(idx, &d, st);
}

static int index_faq(hw_index *idx, const Helpwire__V1__Faq *fq, hw_status *st)
{
    hw_doc d = faq_doc(fq);
    return hw_index_put(idx, &d, st);
}

/* Hands a committed change to the indexer; its done callback answers the
 * call. On refusal (the indexer stopped) the call is failed here. Runs on
 * the writer thread: no index work. */
static void submit_change(hw_wctx *h, hw_index_change *ch, const char *what, const char *id)
{
    int rc = hw_indexer_submit(h->app->indexer, ch);
    if (rc != HW_OK)
        hw_call_fail(h->call, GRPC_STATUS_UNAVAILABLE,
                     "%s %s is saved, but the server is stopping: it will be searchable after the restart",
                     what, id);
}

/* Logs a change the index refused or could not publish yet; the store has
 * it, so the reply still goes out (the next start indexes it). */
static void log_index_failure(hw_app *app, const char *what, const char *id, int rc, const hw_status *st)
{
    char q[400];
    if (rc != HW_OK)
        hw_log_event(app->log, HW_LOG_ERROR, "index_update_failed", "kind=%s id=%s error=%s detail=%s", what,
                     id, hw_strerror(rc), hw_log_quote(st->msg, q, sizeof q));
}

typedef struct {
    hw_index *idx;
    uint64_t n;
    hw_status st;
} build_ctx;

static int build_article(void *arg, const Helpwire__V1__Article *ar)
{
    build_ctx *b = arg;
    b->n++;
    return index_article(b->idx, ar, &b->st);
}

static int build_faq(void *arg, const Helpwire__V1__Faq *fq)
{
    build_ctx *b = arg;
    b->n++;
    return index_faq(b->idx, fq, &b->st);
}

int hw_knowledge_build_index(hw_app *app, uint64_t *docs, char *err, size_t errlen)
{
    hw_store_reader *r = NULL;
    hw_store_txn *txn = NULL;
    hw_arena *a = hw_arena_create(1 << 16);
    build_ctx b = {.idx = app->index};
    int rc = a ? hw_store_reader_create(app->store, &r) : HW_ENOMEM;
    if (rc != HW_OK)
        goto out;
    rc = hw_store_read_begin(r, &txn);
    if (rc != HW_OK)
        goto out;
    hw_index_batch_begin(app->index);
    rc = hw_store_article_foreach(txn, a, build_article, &b);
    if (rc == HW_OK)
        rc = hw_store_faq_foreach(txn, a, build_faq, &b);
    int crc = hw_index_batch_commit(app->index, &b.st);
    if (rc == HW_OK)
        rc = crc;
    hw_store_read_end(r);
out:
    if (rc != HW_OK)
        snprintf(err, errlen, "building the search index: %s%s%s", hw_strerror(rc), b.st.msg[0] ? ": " : "",
                 b.st.msg);
    *docs = b.n;
    hw_store_reader_destroy(r);
    hw_arena_destroy(a);
    return rc;
}

/* ------------------------------------------------------- search, answer */

Helpwire__V1__Hit **hw_knowledge_convert_hits(hw_arena *a, const hw_hit *hits, size_t n)
{
    Helpwire__V1__Hit **out = hw_arena_calloc(a, n ? n : 1, sizeof *out);
    Helpwire__V1__Hit *h = hw_arena_calloc(a, n ? n : 1, sizeof *h);
    if (!out || !h)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        helpwire__v1__hit__init(&h[i]);
        h[i].kind = (Helpwire__V1__DocKind)hits[i].kind;
        h[i].id = (char *)hits[i].id;
        h[i].title = (char *)hits[i].title;
        h[i].snippet = (char *)(hits[i].snippet ? hits[i].snippet : "");
        h[i].score = hits[i].score;
        h[i].locale = (char *)(hits[i].locale ? hits[i].locale : "");
        out[i] = &h[i];
    }
    return out;
}

static hw_searcher *searcher_of(hw_call *call, hw_app *app)
{
    return app->workers[hw_call_worker(call)].searcher;
}

void hw_knowledge_search(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    hw_app *app = appv;
    const Helpwire__V1__SearchRequest *req = (const void *)request;
    if (!hw_rpc_check_text(call, "query", req->query, 1, HW_INDEX_MAX_QUERY) ||
        !hw_rpc_check_text(call, "locale", req->locale, 0, MAX_LOCALE) ||
        !hw_rpc_check_enum(call, "kind", &helpwire__v1__doc_kind__descriptor, req->kind, true))
        return;
    if (req->top_k > HW_INDEX_MAX_TOP_K) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "top_k: at most %d", HW_INDEX_MAX_TOP_K);
        return;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    hw_search_query q = {.text = req->query,
                         .len = strlen(req->query),
                         .top_k = req->top_k,
                         .locale = req->locale,
                         .kind = (hw_doc_kind)req->kind};
    hw_search_result res;
    hw_status st = {0};
    hw_arena *a = hw_call_arena(call);
    int rc = hw_index_search(searcher_of(call, app), &q, a, &res, &st);
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, "%s", st.msg[0] ? st.msg : hw_strerror(rc));
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    Helpwire__V1__SearchReply reply = HELPWIRE__V1__SEARCH_REPLY__INIT;
    reply.hits = hw_knowledge_convert_hits(a, res.hits, res.n_hits);
    reply.n_hits = reply.hits ? res.n_hits : 0;
    reply.matched = res.matched;
    reply.took_us = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000);
    hw_call_reply(call, &reply.base);
}

void hw_knowledge_answer(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    hw_app *app = appv;
    const Helpwire__V1__AnswerRequest *req = (const void *)request;
    if (!hw_rpc_check_text(call, "question", req->question, 1, HW_INDEX_MAX_QUERY) ||
        !hw_rpc_check_text(call, "locale", req->locale, 0, MAX_LOCALE))
        return;
    if (!(req->min_confidence >= 0 && req->min_confidence <= 1)) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "min_confidence: must be within [0, 1]");
        return;
    }
    double threshold = req->min_confidence > 0 ? req->min_confidence : app->settings.answer_threshold;
    hw_answer ans;
    hw_status st = {0};
    hw_arena *a = hw_call_arena(call);
    /* without a locale, the one Route would guess from the text */
    const char *locale = *req->locale ? req->locale : hw_classify_locale(req->question);
    int rc = hw_index_answer(searcher_of(call, app), req->question, strlen(req->question), locale, threshold,
                             a, &ans, &st);
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, "%s", st.msg[0] ? st.msg : hw_strerror(rc));
        return;
    }
    Helpwire__V1__AnswerReply reply = HELPWIRE__V1__ANSWER_REPLY__INIT;
    reply.transfer = ans.transfer;
    reply.answer = (char *)(ans.transfer ? "" : ans.answer);
    reply.confidence = ans.confidence;
    reply.hits = hw_knowledge_convert_hits(a, ans.hits, ans.n_hits);
    reply.n_hits = reply.hits ? ans.n_hits : 0;
    reply.source_kind = (Helpwire__V1__DocKind)ans.source_kind;
    reply.source_id = (char *)(ans.source_id ? ans.source_id : "");
    static const char *const fields[] = {"", "question", "title", "body"};
    Helpwire__V1__AnswerSignals sig = HELPWIRE__V1__ANSWER_SIGNALS__INIT;
    sig.coverage = ans.signals.coverage;
    sig.question_similarity = ans.signals.question_similarity;
    sig.margin = ans.signals.margin;
    sig.phrase = ans.signals.phrase;
    sig.field = (char *)fields[ans.signals.field <= HW_MATCH_BODY ? ans.signals.field : 0];
    sig.terms = ans.signals.terms;
    sig.known_terms = ans.signals.known_terms;
    sig.synonyms_applied = ans.signals.synonyms_applied;
    sig.head_coverage = ans.signals.head_coverage;
    sig.locale_match = ans.signals.locale_match;
    sig.question_containment = ans.signals.question_containment;
    reply.signals = &sig;
    hw_call_reply(call, &reply.base);
}

/* ------------------------------------------------------------- articles */

/* Articles and FAQs are put the same way; a doc_kind says how each is
 * read, stored and indexed. */
typedef struct doc_kind {
    const char *what;       /* for messages: "article", "FAQ" */
    const char *collection; /* for error details' subjects: "articles", "faqs" */
    const char *seq;        /* sequence of server-assigned ids */
    const char *prefix;     /* of server-assigned ids: "a", "f" */
    /* The stored version of id (HW_ENOTFOUND when none). */
    int (*stored_version)(hw_store_txn *w, const char *id, uint64_t *version);
    int (*put)(hw_store_txn *w, const ProtobufCMessage *doc);
    hw_doc (*index_doc)(const ProtobufCMessage *doc); /* what the index takes */
    hw_doc_kind index_kind;                           /* same numbers as DocKind */
} doc_kind;

typedef struct {
    hw_wctx h;
    const doc_kind *kind;
    ProtobufCMessage *doc; /* the new version, filled by the write */
    char *id;              /* the doc's id field (HW_STORE_ID_MAX bytes) */
    uint64_t *version;     /* the doc's version field */
    int64_t *updated_unix_ms;
    uint64_t expected_version;
    bool id_assigned;      /* the write took a number for the id */
    hw_index_change index; /* handed to the indexer after the commit */
} put_doc_ctx;

/* Takes the next free "<prefix>-<n>" id of the kind's sequence into id. A
 * caller may have chosen such an id by hand, so taken numbers are skipped. */
static int assign_id(hw_store_txn *w, const doc_kind *k, char *id)
{
    for (int tries = 0; tries < 1000; tries++) {
        uint64_t n, v;
        int rc = hw_store_next_seq(w, k->seq, 1, &n);
        if (rc != HW_OK)
            return rc;
        snprintf(id, HW_STORE_ID_MAX, "%s-%llu", k->prefix, (unsigned long long)n);
        rc = k->stored_version(w, id, &v);
        if (rc == HW_ENOTFOUND)
            return HW_OK;
        if (rc != HW_OK)
            return rc;
    }
    return HW_EEXISTS;
}

static int put_doc_fn(hw_store_txn *w, void *arg)
{
    put_doc_ctx *c = arg;
    if (c->id_assigned) /* a rerun: the number taken before was rolled back */
        c->id[0] = '\0';
    if (c->id[0] == '\0') {
        int rc = assign_id(w, c->kind, c->id);
        if (rc != HW_OK)
            return rc;
        c->id_assigned = true;
    }
    uint64_t old = 0;
    int rc = c->kind->stored_version(w, c->id, &old);
    if (rc != HW_OK && rc != HW_ENOTFOUND)
        return rc;
    if (c->expected_version && old != c->expected_version)
        return hw_rpc_wfail_on(&c->h, HW_ECONFLICT, c->kind->collection, c->id,
                               "%s %s is at version %llu, not %llu", c->kind->what, c->id,
                               (unsigned long long)old, (unsigned long long)c->expected_version);
    *c->version = old + 1;
    *c->updated_unix_ms = hw_effects_now_ms(&c->h.fx);
    rc = c->kind->put(w, c->doc);
    if (rc == HW_OK) /* for the other replicas' indexes (notes.h); ours is fed by put_doc_done */
        rc = hw_effects_knowledge_changed(&c->h.fx, (Helpwire__V1__DocKind)c->kind->index_kind, c->id, false);
    return rc;
}

/* On the indexer thread: the new version is searchable; answer. */
static void put_doc_indexed(hw_index_change *ch, int rc, const hw_status *st)
{
    put_doc_ctx *c = ch->arg;
    log_index_failure(c->h.app, c->kind->what, c->id, rc, st);
    hw_call_reply(c->h.call, c->doc);
}

/* On the writer thread, after the commit: hand over to the indexer. */
static void put_doc_done(void *arg, int status)
{
    put_doc_ctx *c = arg;
    if (hw_rpc_write_failed(&c->h, status))
        return;
    c->index = (hw_index_change){
        .op = HW_INDEX_OP_PUT, .doc = c->kind->index_doc(c->doc), .done = put_doc_indexed, .arg = c};
    submit_change(&c->h, &c->index, c->kind->what, c->id);
}

/* Starts the write of doc (a copy in the call's arena, id copied into a
 * buffer the write may fill). */
static void put_doc(hw_call *call, void *app, const doc_kind *k, ProtobufCMessage *doc, char **id_field,
                    uint64_t *version, int64_t *updated, uint64_t expected_version)
{
    put_doc_ctx *c = hw_rpc_ctx_new(call, app, sizeof *c);
    char *id = c ? hw_arena_alloc(hw_call_arena(call), HW_STORE_ID_MAX) : NULL;
    if (!id) {
        if (c)
            hw_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of memory");
        return;
    }
    snprintf(id, HW_STORE_ID_MAX, "%s", *id_field);
    *id_field = id;
    c->kind = k;
    c->doc = doc;
    c->id = id;
    c->version = version;
    c->updated_unix_ms = updated;
    c->expected_version = expected_version;
    hw_rpc_write(&c->h, put_doc_fn, put_doc_done);
}

static int article_version(hw_store_txn *w, const char *id, uint64_t *version)
{
    Helpwire__V1__Article *ar;
    int rc = hw_store_article_get(w, id, hw_store_txn_arena(w), &ar);
    if (rc == HW_OK)
        *version = ar->version;
    return rc;
}

static int article_put(hw_store_txn *w, const ProtobufCMessage *doc)
{
    return hw_store_article_put(w, (const Helpwire__V1__Article *)doc, HW_PUT_UPSERT, 0);
}

static hw_doc article_index_doc(const ProtobufCMessage *doc)
{
    return article_doc((const Helpwire__V1__Article *)doc);
}

static const doc_kind article_kind = {.what = "article",
                                      .collection = "articles",
                                      .seq = "article",
                                      .prefix = "a",
                                      .stored_version = article_version,
                                      .put = article_put,
                                      .index_doc = article_index_doc,
                                      .index_kind = HW_DOC_ARTICLE};

static int faq_version(hw_store_txn *w, const char *id, uint64_t *version)
{
    Helpwire__V1__Faq *fq;
    int rc = hw_store_faq_get(w, id, hw_store_txn_arena(w), &fq);
    if (rc == HW_OK)
        *version = fq->version;
    return rc;
}

static int faq_put(hw_store_txn *w, const ProtobufCMessage *doc)
{
    return hw_store_faq_put(w, (const Helpwire__V1__Faq *)doc, HW_PUT_UPSERT, 0);
}

static hw_doc faq_index_doc(const ProtobufCMessage *doc)
{
    return faq_doc((const Helpwire__V1__Faq *)doc);
}

static const doc_kind faq_kind = {.what = "FAQ",
                                  .collection = "faqs",
                                  .seq = "faq",
                                  .prefix = "f",
                                  .stored_version = faq_version,
                                  .put = faq_put,
                                  .index_doc = faq_index_doc,
                                  .index_kind = HW_DOC_FAQ};

static bool check_tags(hw_call *call, char **tags, size_t n)
{
    return hw_rpc_check_list(call, "article.tags", tags, n, MAX_TAGS, MAX_TAG);
}

void hw_knowledge_put_article(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    const Helpwire__V1__PutArticleRequest *req = (const void *)request;
    const Helpwire__V1__Article *in = req->article;
    if (!in) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "article: required");
        return;
    }
    if (!hw_rpc_check_doc_id(call, "article.id", in->id, true) ||
        !hw_rpc_check_text(call, "article.title", in->title, 1, MAX_TITLE) ||
        !hw_rpc_check_text(call, "article.body", in->body, 1, MAX_BODY) ||
        !hw_rpc_check_text(call, "article.locale", in->locale, 0, MAX_LOCALE) ||
        !check_tags(call, in->tags, in->n_tags) ||
        !hw_rpc_check_list(call, "article.alternate_questions", in->alternate_questions,
                           in->n_alternate_questions, MAX_ALT, MAX_QUESTION))
        return;
    Helpwire__V1__Article *ar = hw_arena_alloc(hw_call_arena(call), sizeof *ar);
    if (!ar) {
        hw_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of memory");
        return;
    }
    *ar = *in;
    ar->locale = in->locale[0] ? in->locale : "en";
    put_doc(call, appv, &article_kind, &ar->base, &ar->id, &ar->version, &ar->updated_unix_ms,
            req->expected_version);
}

void hw_knowledge_get_article(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    hw_app *app = appv;
    const Helpwire__V1__GetArticleRequest *req = (const void *)request;
    if (!hw_rpc_check_doc_id(call, "id", req->id, false))
        return;
    hw_store_txn *t = hw_rpc_read(call, app);
    if (!t)
        return;
    Helpwire__V1__Article *ar = NULL;
    int rc = hw_store_article_get(t, req->id, hw_call_arena(call), &ar);
    hw_rpc_read_end(call, app);
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, rc == HW_ENOTFOUND ? "no article with id %s" : "reading article %s failed",
                    req->id);
        return;
    }
    hw_call_reply(call, &ar->base);
}

static const char *kind_name(hw_doc_kind kind)
{
    return kind == HW_DOC_ARTICLE ? "article" : "FAQ";
}

typedef struct {
    hw_wctx h;
    hw_doc_kind kind;
    const char *id;
    hw_index_change index; /* handed to the indexer after the commit */
} delete_ctx;

static int delete_fn(hw_store_txn *w, void *arg)
{
    delete_ctx *c = arg;
    int rc = c->kind == HW_DOC_ARTICLE ? hw_store_article_delete(w, c->id) : hw_store_faq_delete(w, c->id);
    if (rc == HW_ENOTFOUND)
        return hw_rpc_wfail(&c->h, rc, "no %s with id %s", kind_name(c->kind), c->id);
    if (rc == HW_OK) /* for the other replicas' indexes (notes.h); ours is fed by delete_done */
        rc = hw_effects_knowledge_changed(&c->h.fx, (Helpwire__V1__DocKind)c->kind, c->id, true);
    return rc;
}

/* On the indexer thread: the document is gone from search; answer. */
static void delete_indexed(hw_index_change *ch, int rc, const hw_status *st)
{
    delete_ctx *c = ch->arg;
    if (rc != HW_ENOTFOUND) /* never indexed (the index refused it): nothing to remove */
        log_index_failure(c->h.app, kind_name(c->kind), c->id, rc, st);
    if (c->kind == HW_DOC_ARTICLE) {
        Helpwire__V1__DeleteArticleReply r = HELPWIRE__V1__DELETE_ARTICLE_REPLY__INIT;
        hw_call_reply(c->h.call, &r.base);
    } else {
        Helpwire__V1__DeleteFaqReply r = HELPWIRE__V1__DELETE_FAQ_REPLY__INIT;
        hw_call_reply(c->h.call, &r.base);
    }
}

/* On the writer thread, after the commit: hand over to the indexer. */
static void delete_done(void *arg, int status)
{
    delete_ctx *c = arg;
    if (hw_rpc_write_failed(&c->h, status))
        return;
    c->index = (hw_index_change){
        .op = HW_INDEX_OP_DELETE, .doc = {.kind = c->kind, .id = c->id}, .done = delete_indexed, .arg = c};
    submit_change(&c->h, &c->index, kind_name(c->kind), c->id);
}

static void delete_doc(hw_call *call, hw_app *app, hw_doc_kind kind, const char *id)
{
    if (!hw_rpc_check_doc_id(call, "id", id, false))
        return;
    delete_ctx *c = hw_arena_calloc(hw_call_arena(call), 1, sizeof *c);
    if (!c) {
        hw_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of memory");
        return;
    }
    c->h.call = call;
    c->h.app = app;
    c->kind = kind;
    c->id = id;
    hw_rpc_write(&c->h, delete_fn, delete_done);
}

void hw_knowledge_delete_article(hw_call *call, const ProtobufCMessage *request, void *app)
{
    delete_doc(call, app, HW_DOC_ARTICLE, ((const Helpwire__V1__DeleteArticleRequest *)request)->id);
}

void hw_knowledge_delete_faq(hw_call *call, const ProtobufCMessage *request, void *app)
{
    delete_doc(call, app, HW_DOC_FAQ, ((const Helpwire__V1__DeleteFaqRequest *)request)->id);
}

void hw_knowledge_list_articles(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    hw_app *app = appv;
    const Helpwire__V1__ListArticlesRequest *req = (const void *)request;
    hw_store_cursor cur;
    if (!hw_rpc_check_text(call, "locale", req->locale, 0, MAX_LOCALE) ||
        !hw_rpc_page_token(call, "page_token", req->page_token, &cur))
        return;
    hw_store_txn *t = hw_rpc_read(call, app);
    if (!t)
        return;
    Helpwire__V1__ListArticlesReply reply = HELPWIRE__V1__LIST_ARTICLES_REPLY__INIT;
    int rc = hw_store_article_list(t, req->locale[0] ? req->locale : NULL, &cur,
                                   hw_rpc_page_size(req->page_size, 50, 1000), hw_call_arena(call),
                                   &reply.articles, &reply.n_articles);
    hw_rpc_read_end(call, app);
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, rc == HW_EINVALID ? "page_token: not a token from this listing" : NULL);
        return;
    }
    reply.next_page_token = hw_rpc_next_token(call, &cur);
    hw_call_reply(call, &reply.base);
}

/* ----------------------------------------------------------------- FAQs */

void hw_knowledge_put_faq(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    const Helpwire__V1__PutFaqRequest *req = (const void *)request;
    const Helpwire__V1__Faq *in = req->faq;
    if (!in) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "faq: required");
        return;
    }
    if (!hw_rpc_check_doc_id(call, "faq.id", in->id, true) ||
        !hw_rpc_check_text(call, "faq.question", in->question, 1, MAX_QUESTION) ||
        !hw_rpc_check_text(call, "faq.answer", in->answer, 1, MAX_ANSWER) ||
        !hw_rpc_check_text(call, "faq.locale", in->locale, 0, MAX_LOCALE) ||
        !hw_rpc_check_list(call, "faq.alternate_questions", in->alternate_questions,
                           in->n_alternate_questions, MAX_ALT, MAX_QUESTION))
        return;
    Helpwire__V1__Faq *fq = hw_arena_alloc(hw_call_arena(call), sizeof *fq);
    if (!fq) {
        hw_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of memory");
        return;
    }
    *fq = *in;
    fq->locale = in->locale[0] ? in->locale : "en";
    put_doc(call, appv, &faq_kind, &fq->base, &fq->id, &fq->version, &fq->updated_unix_ms,
            req->expected_version);
}

void hw_knowledge_list_faqs(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    hw_app *app = appv;
    const Helpwire__V1__ListFaqsRequest *req = (const void *)request;
    hw_store_cursor cur;
    if (!hw_rpc_check_text(call, "locale", req->locale, 0, MAX_LOCALE) ||
        !hw_rpc_page_token(call, "page_token", req->page_token, &cur))
        return;
    hw_store_txn *t = hw_rpc_read(call, app);
    if (!t)
        return;
    Helpwire__V1__ListFaqsReply reply = HELPWIRE__V1__LIST_FAQS_REPLY__INIT;
    int rc = hw_store_faq_list(t, req->locale[0] ? req->locale : NULL, &cur,
                               hw_rpc_page_size(req->page_size, 50, 1000), hw_call_arena(call), &reply.faqs,
                               &reply.n_faqs);
    hw_rpc_read_end(call, app);
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, rc == HW_EINVALID ? "page_token: not a token from this listing" : NULL);
        return;
    }
    reply.next_page_token = hw_rpc_next_token(call, &cur);
    hw_call_reply(call, &reply.base);
}

/* ------------------------------------------------ the other replicas */

/* A change read from the store for the indexer: owns its arena, freed by
 * its done callback (or when the submit is refused). */
typedef struct replica_change {
    hw_index_change ch;
    hw_arena *a;
    hw_app *app;
    const char *what;
    char *id;
} replica_change;

static void replica_change_free(replica_change *rc)
{
    if (rc)
        hw_arena_destroy(rc->a);
}

static void replica_change_indexed(hw_index_change *ch, int rc, const hw_status *st)
{
    replica_change *r = ch->arg;
    if (!(ch->op == HW_INDEX_OP_DELETE && rc == HW_ENOTFOUND))
        log_index_failure(r->app, r->what, r->id, rc, st);
    replica_change_free(r);
}

int hw_knowledge_replicated_change(hw_app *app, hw_store_reader *reader, Helpwire__V1__DocKind kind,
                                   const char *id, bool deleted)
{
    if ((kind != HELPWIRE__V1__DOC_KIND__DOC_KIND_ARTICLE && kind != HELPWIRE__V1__DOC_KIND__DOC_KIND_FAQ) ||
        !id || !*id)
        return HW_EINVALID;
    if (!app->indexer)
        return HW_ECLOSED;
    hw_arena *a = hw_arena_create(4096);
    replica_change *r = a ? hw_arena_calloc(a, 1, sizeof *r) : NULL;
    if (!r) {
        hw_arena_destroy(a);
        return HW_ENOMEM;
    }
    r->a = a;
    r->app = app;
    r->what = kind_name((hw_doc_kind)kind);
    r->id = hw_arena_printf(a, "%s", id);
    int rc = r->id ? HW_OK : HW_ENOMEM;
    bool found = false;
    if (rc == HW_OK && !deleted) {
        hw_store_txn *t = NULL;
        rc = hw_store_read_begin(reader, &t);
        if (rc == HW_OK) {
            if (kind == HELPWIRE__V1__DOC_KIND__DOC_KIND_ARTICLE) {
                Helpwire__V1__Article *ar = NULL;
                rc = hw_store_article_get(t, r->id, a, &ar);
                if (rc == HW_OK)
                    r->ch.doc = article_doc(ar);
            } else {
                Helpwire__V1__Faq *fq = NULL;
                rc = hw_store_faq_get(t, r->id, a, &fq);
                if (rc == HW_OK)
                    r->ch.doc = faq_doc(fq);
            }
            hw_store_read_end(reader);
        }
        found = rc == HW_OK;
        if (rc == HW_ENOTFOUND) /* deleted by a later entry already: remove it */
            rc = HW_OK;
    }
    if (rc != HW_OK) {
        replica_change_free(r);
        return rc;
    }
    r->ch.op = found ? HW_INDEX_OP_PUT : HW_INDEX_OP_DELETE;
    if (!found)
        r->ch.doc = (hw_doc){.kind = (hw_doc_kind)kind, .id = r->id};
    r->ch.done = replica_change_indexed;
    r->ch.arg = r;
    rc = hw_indexer_submit(app->indexer, &r->ch);
    if (rc != HW_OK)
        replica_change_free(r);
    return rc;
}

static int record_article(void *arg, const Helpwire__V1__Article *ar)
{
    return hw_effects_knowledge_changed(arg, HELPWIRE__V1__DOC_KIND__DOC_KIND_ARTICLE, ar->id, false);
}

static int record_faq(void *arg, const Helpwire__V1__Faq *fq)
{
    return hw_effects_knowledge_changed(arg, HELPWIRE__V1__DOC_KIND__DOC_KIND_FAQ, fq->id, false);
}

int hw_knowledge_record_all_in(hw_store_txn *w, hw_effects *fx)
{
    /* The scan resets its arena after each record: it must not be fx's,
     * which keeps the ids recorded. */
    hw_arena *a = hw_arena_create(16 * 1024);
    if (!a)
        return HW_ENOMEM;
    int rc = hw_store_article_foreach(w, a, record_article, fx);
    if (rc == HW_OK)
        rc = hw_store_faq_foreach(w, a, record_faq, fx);
    hw_arena_destroy(a);
    return rc;
}

/* ------------------------------------- changes of other modules' writes */

int hw_knowledge_add_alternate_in(hw_store_txn *w, hw_effects *fx, Helpwire__V1__DocKind kind, const char *id,
                                  const char *question, hw_arena *a, hw_knowledge_doc_change *out)
{
    memset(out, 0, sizeof *out);
    const doc_kind *k = kind == HELPWIRE__V1__DOC_KIND__DOC_KIND_ARTICLE ? &article_kind
                        : kind == HELPWIRE__V1__DOC_KIND__DOC_KIND_FAQ   ? &faq_kind
                                                                         : NULL;
    if (!k || !id || !*id || !question)
        return HW_EINVALID;
    char ***alts;
    size_t *n_alts;
    uint64_t *version;
    int64_t *updated;
    int rc;
    if (k == &article_kind) {
        Helpwire__V1__Article *ar;
        if ((rc = hw_store_article_get(w, id, a, &ar)) != HW_OK)
            return rc;
        out->doc = &ar->base;
        out->id = ar->id;
        alts = &ar->alternate_questions, n_alts = &ar->n_alternate_questions;
        version = &ar->version, updated = &ar->updated_unix_ms;
    } else {
        Helpwire__V1__Faq *fq;
        if ((rc = hw_store_faq_get(w, id, a, &fq)) != HW_OK)
            return rc;
        out->doc = &fq->base;
        out->id = fq->id;
        alts = &fq->alternate_questions, n_alts = &fq->n_alternate_questions;
        version = &fq->version, updated = &fq->updated_unix_ms;
    }
    if (*n_alts >= HW_KNOWLEDGE_MAX_ALT)
        return HW_EPRECONDITION;
    char **grown = hw_arena_alloc(a, (*n_alts + 1) * sizeof *grown);
    char *q = hw_arena_strdup(a, question);
    if (!grown || !q)
        return HW_ENOMEM;
    if (*n_alts)
        memcpy(grown, *alts, *n_alts * sizeof *grown);
    grown[(*n_alts)++] = q;
    *alts = grown;
    /* As put_doc_fn does for a Put. */
    (*version)++;
    *updated = hw_effects_now_ms(fx);
    out->kind = kind;
    rc = k->put(w, out->doc);
    if (rc == HW_OK)
        rc = hw_effects_knowledge_changed(fx, kind, out->id, false);
    return rc;
}

/* On the indexer thread: log a failure, then the caller's done. */
static void doc_change_indexed(hw_index_change *ch, int rc, const hw_status *st)
{
    hw_knowledge_doc_change *c = ch->arg;
    log_index_failure(c->app, kind_name((hw_doc_kind)c->kind), c->id, rc, st);
    c->done(&c->index, rc, st);
}

int hw_knowledge_index_change(hw_app *app, hw_knowledge_doc_change *c, hw_index_done_fn done, void *arg)
{
    const doc_kind *k = c->kind == HELPWIRE__V1__DOC_KIND__DOC_KIND_ARTICLE ? &article_kind : &faq_kind;
    c->app = app;
    c->done = done;
    c->arg = arg;
    c->index = (hw_index_change){.op = HW_INDEX_OP_PUT, .doc = k->index_doc(c->doc), .done = doc_change_indexed, .arg = c};
    return app->indexer ? hw_indexer_submit(app->indexer, &c->index) : HW_ECLOSED;
}
