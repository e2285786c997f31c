/*
 * synonyms: operator-managed synonym sets (helpwire.v1.Knowledge's
 * PutSynonymSet, DeleteSynonymSet, ListSynonymSets) and keeping the search
 * index's copy of them current (hw_index_set_synonyms, index.h).
 *
 * A set is words or phrases that mean one thing to customers of a language
 * (上班 / 工作时间, refund / "money back"); Search, Answer and Route expand
 * a question holding one term with the others, at query time: nothing is
 * reindexed when a set changes.
 *
 * Storage: each set is a packed helpwire.v1.SynonymSet in the store's
 * generic key-value space (namespace HW_SYNONYMS_NS, key = the set's id), so
 * it is replicated like any other write. Ids are caller-chosen
 * ([A-Za-z0-9._:-], at most 64 bytes) or server-assigned "syn-" + a number
 * from the store sequence "synonym_set" (taken numbers skipped, as for
 * articles' "a-" ids).
 *
 * The index's sets are always the whole stored list: hw_index_set_synonyms
 * replaces every set at once, and there are few sets (at most
 * HW_INDEX_MAX_SYN_SETS), so after any change the list is read back from
 * the store and handed over whole. That reload runs on the indexer thread
 * (an HW_INDEX_OP_RUN change, indexer.h), never on the store's writer, and
 * a Put or Delete is answered only after it: a client that got its reply
 * finds the change applied (read-your-writes). Reloads coalesce: a reload
 * that began reading after a change committed covers it, so a burst of
 * changes (an import) costs a few reloads, not one per change.
 *
 * Replication: a Put or Delete records a synonyms effect (effects.h); the
 * other replicas' note handler calls hw_synonyms_replicated_change, which
 * queues the same reload on their indexer.
 *
 * Not done here: the expansion itself (index.c), and checking terms against
 * other sets (one term may sit in two sets; the index handles overlaps).
 */
#ifndef HW_SYNONYMS_H
#define HW_SYNONYMS_H

#include <stddef.h>
#include <stdint.h>

#include "helpwire/v1/knowledge.pb-c.h"
#include "server/domain/app.h"
#include "server/net/net.h"
#include "server/store/store.h"

/* The key-value namespace of the stored sets. */
#define HW_SYNONYMS_NS "synonym_sets"
/* Limits of helpwire.v1.SynonymSet (knowledge.proto). */
#define HW_SYNONYMS_MIN_TERMS 2
#define HW_SYNONYMS_MAX_TERMS 32 /* = HW_INDEX_MAX_SYN_TERMS */
#define HW_SYNONYMS_MAX_TERM 64  /* bytes */
#define HW_SYNONYMS_MAX_LOCALE 15
#define HW_SYNONYMS_MAX_ID 64
#define HW_SYNONYMS_MAX_SETS 100000 /* = HW_INDEX_MAX_SYN_SETS */

typedef struct hw_synonyms hw_synonyms;
typedef struct hw_tokenizer hw_tokenizer;

/* Creates the module's state for app (app->store open; app->index and
 * app->indexer may be set later, before the first load or change). Takes a
 * store reader of its own, used by the thread that loads (main at start,
 * then the indexer thread). app must outlive it; main stores it in
 * app->synonyms.
 * @return HW_OK; HW_ENOMEM; store codes (the reader). */
int hw_synonyms_create(hw_synonyms **out, hw_app *app);

/* Frees s, after the indexer has stopped (no reload may be queued) and
 * before the store is closed. NULL is a no-op. */
void hw_synonyms_destroy(hw_synonyms *s);

/* Start-up: reads every stored set and hands them to app->index. Call
 * after the index is created and before the indexer starts (the main
 * thread). *n_sets receives the number of sets applied. A stored set that
 * does not decode is skipped and logged.
 * @return HW_OK; store codes; hw_index_set_synonyms's codes (HW_EINVALID,
 *   HW_ETOOBIG, HW_ENOMEM) with its message in err: the index then has no
 *   sets. */
int hw_synonyms_load(hw_synonyms *s, size_t *n_sets, char *err, size_t errlen);

/* Checks set as PutSynonymSet does: id empty or [A-Za-z0-9._:-] up to 64
 * bytes; locale up to 15 bytes of [A-Za-z0-9_-]; 2..32 terms, each 1..64
 * bytes of valid UTF-8 holding a letter or digit and at least one word the
 * search tokenizer keeps (not only stop words like "the"); no two terms the
 * same once normalized (case, width, English stems: "Refund" and "refunds"
 * are one term). tok is the caller's tokenizer (used, not kept).
 * @return HW_OK; HW_EINVALID with msg naming the field ("set.terms[3]: the
 *   same as set.terms[1]"); HW_ENOMEM. Any thread owning tok. */
int hw_synonyms_check(hw_tokenizer *tok, const Helpwire__V1__SynonymSet *set, char *msg, size_t msglen);

/* Inside a write fn (writer thread): stores set (id required; checked by
 * the caller) with version = the stored version + 1 and updated_unix_ms =
 * now_ms; set->version and set->updated_unix_ms are overwritten. For bulk
 * loads such as the demo seed; the caller records the synonyms effect and
 * the index is loaded at start (or reloaded by the caller).
 * @return HW_OK; HW_EINVALID (no id); HW_ENOMEM; store codes. */
int hw_synonyms_put_in(hw_store_txn *w, Helpwire__V1__SynonymSet *set, int64_t now_ms);

/* The synonyms sink of another replica (notes.h calls it after applying an
 * entry that changed sets): queues a reload of every set on the indexer.
 * Does not wait. Any thread.
 * @return HW_OK; HW_ECLOSED (no indexer yet or any more: the next start
 *   loads the sets); HW_EINVALID (s NULL); HW_ENOMEM. */
int hw_synonyms_replicated_change(hw_synonyms *s);

/* The number of sets the index holds since the last successful (re)load.
 * Any thread. */
size_t hw_synonyms_count(const hw_synonyms *s);

/* Handlers (app is the hw_app; app->synonyms must be set). */
void hw_synonyms_put(hw_call *call, const ProtobufCMessage *req, void *app);
void hw_synonyms_delete(hw_call *call, const ProtobufCMessage *req, void *app);
void hw_synonyms_list(hw_call *call, const ProtobufCMessage *req, void *app);

#endif
