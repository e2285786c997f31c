/*
 * indexer: the thread ("hw-indexer") that keeps the search index current,
 * so that the store's writer thread only applies write groups.
 *
 * A caller whose change to articles or FAQs has committed hands it over
 * with hw_indexer_submit() and returns at once (the submit is a pointer
 * link under a mutex held for a few instructions). The indexer thread
 * takes everything waiting, applies it to the index as one batch (delta
 * rebuild, or a main rebuild when the delta outgrows its bound; one RCU
 * publish for the lot), and only then calls each change's done callback:
 * when done runs, hw_index_search on any thread sees the change. Changes
 * are applied in submission order, so two versions of one document end as
 * the later one. Under a stream of changes the batch grows by itself
 * (everything that arrived during the last publish), as the store's group
 * commit does, so the publish cost per change falls with the rate.
 *
 * Not here: the store (the caller commits first and submits after), the
 * gRPC call (done answers it, in the domain layer), the index's own rules
 * (index.h).
 */
#ifndef HW_SEARCH_INDEXER_H
#define HW_SEARCH_INDEXER_H

#include "server/search/index.h"
#include "server/search/status.h"

typedef struct hw_indexer hw_indexer;

/* The indexer thread's nice value: below the gRPC workers, so that request
 * handling preempts index maintenance on a busy machine. */
#define HW_INDEXER_NICE 10

typedef enum hw_index_op {
    HW_INDEX_OP_PUT = 1,    /* hw_index_put(doc) */
    HW_INDEX_OP_DELETE = 2, /* hw_index_delete(doc.kind, doc.id) */
    HW_INDEX_OP_RUN = 3,    /* run(change, idx, st): other index work, e.g. synonyms */
} hw_index_op;

typedef struct hw_index_change hw_index_change;

/* For HW_INDEX_OP_RUN: index work other than a document (replacing the
 * synonym sets, hw_index_set_synonyms), done on the indexer thread so that
 * it is serialized with the documents' batches and the store's writer
 * thread never does it. Runs outside a batch (after the batch's puts and
 * deletes are published), in submission order among the batch's runs;
 * returns what done then receives as rc (st its message). It may read the
 * store with a reader of its own; it must not submit and wait. */
typedef int (*hw_index_run_fn)(hw_index_change *change, hw_index *idx, hw_status *st);

/* Runs on the indexer thread once the change is applied and published
 * (or refused by the index). rc is what hw_index_put / hw_index_delete
 * (or run) returned for it (HW_ENOTFOUND for a delete of an unknown document), or
 * the batch's publish error (HW_ENOMEM: the change is applied and will be
 * published with the next batch); st carries its message. The change and
 * everything it points to may be freed from here on. done must not block
 * for long: the next batch waits for it. */
typedef void (*hw_index_done_fn)(hw_index_change *change, int rc, const hw_status *st);

/* One change, owned by the caller (e.g. in a call's arena) from submit
 * until its done callback returns; the indexer keeps no copy. */
struct hw_index_change {
    hw_index_op op;
    hw_doc doc;          /* put: the document (strings borrowed until done);
                            delete: only kind and id are read; run: unused */
    hw_index_run_fn run; /* HW_INDEX_OP_RUN only */
    hw_index_done_fn done;
    void *arg; /* for the caller: done's context */
    /* the indexer's own: */
    hw_index_change *next;
    int rc;
    hw_status st;
};

typedef struct hw_indexer_stats {
    uint64_t changes; /* applied since start */
    uint64_t batches; /* publishes they took */
    uint64_t queued;  /* submitted, not yet done */
} hw_indexer_stats;

/* Starts the thread that applies changes to idx, and turns the index's
 * malloc_trim off (hw_index_set_trim: the server is live from now on).
 * idx must outlive the indexer (stop it before hw_index_destroy). Other writers of idx (a
 * start-up build) may still write; the index serializes them.
 * Returns 0 or HW_ENOMEM (no thread could be started). The caller owns
 * *out and ends it with hw_indexer_stop(). */
int hw_indexer_start(hw_index *idx, hw_indexer **out);

/* Queues change; its done callback runs later on the indexer thread, never
 * from inside this call. Any thread; never waits for index work.
 * Returns 0, HW_EINVALID (no done callback, unknown op, or HW_INDEX_OP_RUN
 * without run; nothing queued)
 * or HW_ECLOSED (hw_indexer_stop has begun; nothing queued: the caller
 * answers for the change itself). */
int hw_indexer_submit(hw_indexer *ix, hw_index_change *change);

/* Counters, for metrics and tests. Any thread. */
void hw_indexer_stats_get(hw_indexer *ix, hw_indexer_stats *out);

/* Stops taking changes, applies every change already queued (their done
 * callbacks run as usual, so no submitter waits forever), joins the thread
 * and frees the indexer. A submit racing with stop is either applied or
 * refused with HW_ECLOSED; none may start after stop returns (in helpwired:
 * stop after the server's calls are all answered). Call once. NULL is a
 * no-op. */
void hw_indexer_stop(hw_indexer *ix);

#endif
