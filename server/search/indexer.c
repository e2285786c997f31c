/*
 * indexer: the "hw-indexer" thread between committed knowledge changes and
 * the search index (contract: indexer.h).
 *
 * Why a thread of its own: applying a change costs a delta rebuild, an RCU
 * grace period (urcu_memb_synchronize_rcu waits for every reader) and, when
 * the delta outgrows its bound, a main rebuild of every live document
 * (about a second at 64k articles). Done on the store's writer thread, as
 * it once was, that stalled every write queued behind it (Route, tickets)
 * for as long; here only knowledge calls wait, and only for their own
 * change.
 *
 * Queue. Submitters push onto a singly linked LIFO list under `mu`; the
 * thread takes the whole list (a pointer swap under `mu`), reverses it into
 * submission order, and applies it between hw_index_batch_begin and
 * hw_index_batch_commit, so N waiting changes cost one publish. A mutex
 * rather than a wait-free queue: its holders do a few stores each, the
 * submitter is the store's writer thread (one thread, one change per
 * commit), and a condition variable gives the sleep for free.
 *
 * Priority. The thread runs at nice HW_INDEXER_NICE (Linux nice is per
 * thread): on a machine with as many busy threads as cores, the workers
 * answering Route and Search preempt index maintenance instead of sharing
 * the core with it evenly; an import then takes a little longer, and
 * customers do not wait for it. The weight is still ~10% of a worker's, so
 * the indexer is never starved. What a preempted indexer must not hold is
 * a lock the workers need: it turns malloc_trim off for the index's main
 * rebuilds (trim locks every malloc arena in turn; measured, a nice
 * indexer trimming made Route's p99 worse, not better), and it takes `mu`
 * only for a pointer swap.
 *
 * Other work. A change may instead be a function to run on this thread
 * (HW_INDEX_OP_RUN: the synonym sets are replaced that way); runs follow
 * the batch's publish, because hw_index_set_synonyms and the like take the
 * index's writer mutex, which a batch holds from begin to commit.
 *
 * Stop. `stopping` is set under `mu`; from then on submit refuses, and the
 * thread exits only when it has seen stopping with an empty list, so every
 * accepted change has had its done callback when hw_indexer_stop returns.
 */
#include "server/search/indexer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "server/base/errors.h"

struct hw_indexer {
    hw_index *idx;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    hw_index_change *head; /* newest first; guarded by mu */
    bool stopping;         /* guarded by mu */
    atomic_uint_fast64_t changes, batches, queued;
};

/* Reverses the newest-first list taken from the queue. */
static hw_index_change *reverse(hw_index_change *c)
{
    hw_index_change *out = NULL;
    while (c) {
        hw_index_change *next = c->next;
        c->next = out;
        out = c;
        c = next;
    }
    return out;
}

/* Applies the changes of one batch (oldest first), publishes them, then
 * answers each. Runs (HW_INDEX_OP_RUN) come after the publish: they take
 * the index's writer mutex themselves, which the batch holds. */
static void apply_batch(hw_indexer *ix, hw_index_change *list)
{
    hw_status st = {0};
    uint64_t n = 0, docs = 0;
    for (hw_index_change *c = list; c; c = c->next) {
        c->st.code = 0;
        c->st.msg[0] = '\0';
        c->rc = 0;
        docs += c->op != HW_INDEX_OP_RUN;
    }
    int crc = 0;
    if (docs) {
        hw_index_batch_begin(ix->idx);
        for (hw_index_change *c = list; c; c = c->next) {
            if (c->op == HW_INDEX_OP_PUT)
                c->rc = hw_index_put(ix->idx, &c->doc, &c->st);
            else if (c->op == HW_INDEX_OP_DELETE)
                c->rc = hw_index_delete(ix->idx, c->doc.kind, c->doc.id, &c->st);
        }
        crc = hw_index_batch_commit(ix->idx, &st);
    }
    for (hw_index_change *c = list; c; c = c->next, n++)
        if (c->op == HW_INDEX_OP_RUN)
            c->rc = c->run(c, ix->idx, &c->st);
    atomic_fetch_add(&ix->changes, n);
    atomic_fetch_add(&ix->batches, 1);
    while (list) {
        hw_index_change *c = list;
        list = c->next; /* read before done: it may free c */
        if (c->rc == 0 && crc != 0 && c->op != HW_INDEX_OP_RUN) {
            c->rc = crc;
            c->st = st;
        }
        atomic_fetch_sub(&ix->queued, 1);
        c->done(c, c->rc, &c->st);
    }
}

static void *indexer_main(void *arg)
{
    hw_indexer *ix = arg;
    /* Best effort: a thread may always lower its own priority. */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), HW_INDEXER_NICE);
    for (;;) {
        pthread_mutex_lock(&ix->mu);
        while (!ix->head && !ix->stopping)
            pthread_cond_wait(&ix->cv, &ix->mu);
        hw_index_change *list = ix->head;
        ix->head = NULL;
        bool stop = ix->stopping;
        pthread_mutex_unlock(&ix->mu);
        if (list)
            apply_batch(ix, reverse(list));
        else if (stop)
            break; /* stopping and nothing left: every change answered */
    }
    return NULL;
}

int hw_indexer_start(hw_index *idx, hw_indexer **out)
{
    *out = NULL;
    hw_indexer *ix = calloc(1, sizeof *ix);
    if (!ix)
        return HW_ENOMEM;
    ix->idx = idx;
    hw_index_set_trim(idx, 0); /* see hw_index_set_trim and "Priority" above */
    pthread_mutex_init(&ix->mu, NULL);
    pthread_cond_init(&ix->cv, NULL);
    if (pthread_create(&ix->thread, NULL, indexer_main, ix) != 0) {
        pthread_cond_destroy(&ix->cv);
        pthread_mutex_destroy(&ix->mu);
        free(ix);
        return HW_ENOMEM;
    }
    pthread_setname_np(ix->thread, "hw-indexer");
    *out = ix;
    return HW_OK;
}

int hw_indexer_submit(hw_indexer *ix, hw_index_change *c)
{
    if (!c->done || (c->op != HW_INDEX_OP_PUT && c->op != HW_INDEX_OP_DELETE && c->op != HW_INDEX_OP_RUN) ||
        (c->op == HW_INDEX_OP_RUN && !c->run))
        return HW_EINVALID;
    int rc = HW_OK;
    pthread_mutex_lock(&ix->mu);
    if (ix->stopping) {
        rc = HW_ECLOSED;
    } else {
        atomic_fetch_add(&ix->queued, 1);
        c->next = ix->head;
        ix->head = c;
        pthread_cond_signal(&ix->cv);
    }
    pthread_mutex_unlock(&ix->mu);
    return rc;
}

void hw_indexer_stats_get(hw_indexer *ix, hw_indexer_stats *out)
{
    out->changes = atomic_load(&ix->changes);
    out->batches = atomic_load(&ix->batches);
    out->queued = atomic_load(&ix->queued);
}

void hw_indexer_stop(hw_indexer *ix)
{
    if (!ix)
        return;
    pthread_mutex_lock(&ix->mu);
    ix->stopping = true;
    pthread_cond_signal(&ix->cv);
    pthread_mutex_unlock(&ix->mu);
    pthread_join(ix->thread, NULL);
    pthread_cond_destroy(&ix->cv);
    pthread_mutex_destroy(&ix->mu);
    free(ix);
}
