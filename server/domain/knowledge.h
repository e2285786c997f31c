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
#include "server/net/net.h"

/* Loads every article and FAQ from the store into the index (start-up).
 * Returns 0 or a negative HW_E* code; *docs receives the count. */
int hw_knowledge_build_index(hw_app *app, uint64_t *docs, char *err, size_t errlen);

/* API hits from index hits (strings shared), allocated in a; NULL when
 * out of memory. */
struct hw_hit;
Helpwire__V1__Hit **hw_knowledge_convert_hits(hw_arena *a, const struct hw_hit *hits, size_t n);

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
