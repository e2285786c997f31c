/*
 * knowledge: the helpwire.v1.Knowledge service. Articles and FAQs live in
 * the store; every committed change is then applied to the in-memory search
 * index by the indexer thread (app->indexer, server/search/indexer.h), not
 * by the store's writer, and a Put or Delete is answered only when the
 * change is searchable: Search and Answer see it when the write is
 * acknowledged. The handlers need app->index and app->indexer set (main
 * starts the indexer after hw_knowledge_build_index and stops it after the
 * server has answered its last call).
 */
#ifndef HW_KNOWLEDGE_H
#define HW_KNOWLEDGE_H

#include "helpwire/v1/common.pb-c.h"
#include "server/domain/app.h"
#include "server/domain/effects.h"
#include "server/net/net.h"
#include "server/search/indexer.h"
#include "server/store/store.h"

/* Loads every article and FAQ from the store into the index (start-up).
 * Returns 0 or a negative HW_E* code; *docs receives the count. */
int hw_knowledge_build_index(hw_app *app, uint64_t *docs, char *err, size_t errlen);

/* API hits from index hits (strings shared), allocated in a; NULL when
 * out of memory. */
struct hw_hit;
Helpwire__V1__Hit **hw_knowledge_convert_hits(hw_arena *a, const struct hw_hit *hits, size_t n);

/* ---- replication ---- */

/* The knowledge sink of another replica (one that did not make the write;
 * notes.h calls it after applying the entry): hands the indexer the
 * article or FAQ id as the store holds it now (deleted false; when the
 * store no longer has it, a delete) or its deletion. reader is the
 * caller's own store reader (used here for one read, by one thread at a
 * time). The change is queued, not applied: Search sees it once the
 * indexer has published it; a failure of the index is logged there.
 * Never called on the replica that made the write: its handlers submit
 * their own changes (and answer once they are searchable). Any thread;
 * does not wait for index work.
 * @return HW_OK; HW_EINVALID (kind, empty id); HW_ECLOSED (no indexer
 *   yet or any more: the index is rebuilt from the store at the next
 *   start); HW_ENOMEM; store codes. */
int hw_knowledge_replicated_change(hw_app *app, hw_store_reader *reader, Helpwire__V1__DocKind kind,
                                   const char *id, bool deleted);

/* Inside a write fn: records on fx a put of every article and FAQ that w
 * holds (for a bulk load into an empty store, e.g. the demo seed: the
 * other replicas then index what it wrote). Writer thread.
 * @return HW_OK; HW_ENOMEM; store codes. */
int hw_knowledge_record_all_in(hw_store_txn *w, hw_effects *fx);

/* ---- changes made by other modules' writes ---- */

/* Most alternate questions an article or FAQ holds. */
#define HW_KNOWLEDGE_MAX_ALT 16

/* A document another module's write changed (ApproveSuggestion), to be
 * indexed once the write has committed. Filled by
 * hw_knowledge_add_alternate_in; everything it points to lives in the
 * arena given there, which must outlive the indexing (the call's). */
typedef struct hw_knowledge_doc_change {
    Helpwire__V1__DocKind kind;
    const char *id;
    ProtobufCMessage *doc; /* the new version: an Article or a Faq */
    /* hw_knowledge_index_change's own: */
    hw_index_change index;
    hw_app *app;
    hw_index_done_fn done;
    void *arg;
} hw_knowledge_doc_change;

/* Inside a write fn: appends question (copied into a) to the alternate
 * questions of the article or FAQ (kind, id) through the same path as a
 * Put: version + 1, updated time from fx, the record replaced, and the
 * knowledge effect recorded on fx for the other replicas' indexes.
 * Does not compare question with the ones held (the caller does).
 * @param[out] out  the change, for hw_knowledge_index_change after the
 *   commit (allocated in a).
 * @return HW_OK; HW_ENOTFOUND (no such document); HW_EPRECONDITION (it
 *   holds HW_KNOWLEDGE_MAX_ALT alternate questions already); HW_EINVALID
 *   (kind); HW_ENOMEM; store codes. Writer thread. */
int hw_knowledge_add_alternate_in(hw_store_txn *w, hw_effects *fx, Helpwire__V1__DocKind kind, const char *id,
                                  const char *question, hw_arena *a, hw_knowledge_doc_change *out);

/* After the commit of the write that filled c (writer thread, in a done
 * callback): hands the new version to this replica's indexer; done(change,
 * rc, st) runs on the indexer thread once it is searchable, with
 * change->arg == c (arg is in c->arg). A failure of the index is logged
 * here before done runs.
 * @return HW_OK; HW_ECLOSED (the indexer has stopped: the change is
 *   saved and searchable after the next start; done is not called). */
int hw_knowledge_index_change(hw_app *app, hw_knowledge_doc_change *c, hw_index_done_fn done, void *arg);

void hw_knowledge_search(hw_call *call, const ProtobufCMessage *req, void *app);
void hw_knowledge_answer(hw_call *call, const ProtobufCMessage *req, void *app);
void hw_knowledge_put_article(hw_call *call, const ProtobufCMessage *req, void *app);
void hw_knowledge_get_article(hw_call *call, const ProtobufCMessage *req, void *app);
void hw_knowledge_delete_article(hw_call *call, const ProtobufCMessage *req, void *app);
void hw_knowledge_list_articles(hw_call *call, const ProtobufCMessage *req, void *app);
void hw_knowledge_put_faq(hw_call *call, const ProtobufCMessage *req, void *app);
void hw_knowledge_delete_faq(hw_call *call, const ProtobufCMessage *req, void *app);
void hw_knowledge_list_faqs(hw_call *call, const ProtobufCMessage *req, void *app);

#endif
