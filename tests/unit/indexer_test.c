/*
 * indexer_test: the hw-indexer thread (server/search/indexer.h). A change
 * is searchable when its done callback runs (on a thread below the
 * request threads' priority); changes from several threads
 * all land, in submission order per thread; a change the index refuses
 * fails alone; stop answers every change still queued. Concurrent: run
 * under ThreadSanitizer with --config=tsan.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "server/base/arena.h"
#include "server/search/index.h"
#include "server/search/indexer.h"

/* Counts done callbacks; a test waits on it for a number of them. */
typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, failed;
    int last_rc;
} waiter;

static void waiter_init(waiter *w)
{
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
}

static void waiter_wait(waiter *w, int n)
{
    pthread_mutex_lock(&w->mu);
    while (w->done < n)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

static void waiter_destroy(waiter *w)
{
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
}

/* A change with its own text buffers. */
typedef struct test_change {
    hw_index_change c;
    waiter *w;
    char id[32], title[64], body[4096];
    int rc;
    int nice; /* of the thread that ran done */
} test_change;

static void on_done(hw_index_change *c, int rc, const hw_status *st)
{
    (void)st;
    test_change *t = c->arg;
    t->rc = rc;
    t->nice = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
    pthread_mutex_lock(&t->w->mu);
    t->w->done++;
    t->w->last_rc = rc;
    if (rc != 0)
        t->w->failed++;
    pthread_cond_broadcast(&t->w->cv);
    pthread_mutex_unlock(&t->w->mu);
}

static void make_put(test_change *t, waiter *w, const char *id, const char *words)
{
    memset(t, 0, sizeof *t);
    t->w = w;
    snprintf(t->id, sizeof t->id, "%s", id);
    snprintf(t->title, sizeof t->title, "article %s", id);
    snprintf(t->body, sizeof t->body, "%s", words);
    t->c.op = HW_INDEX_OP_PUT;
    t->c.doc = (hw_doc){HW_DOC_ARTICLE, t->id, t->title, t->body, "en", NULL, 0};
    t->c.done = on_done;
    t->c.arg = t;
}

static void make_delete(test_change *t, waiter *w, const char *id)
{
    memset(t, 0, sizeof *t);
    t->w = w;
    snprintf(t->id, sizeof t->id, "%s", id);
    t->c.op = HW_INDEX_OP_DELETE;
    t->c.doc = (hw_doc){.kind = HW_DOC_ARTICLE, .id = t->id};
    t->c.done = on_done;
    t->c.arg = t;
}

typedef struct fixture {
    hw_index *idx;
    hw_indexer *ix;
    hw_searcher *s;
    hw_arena *arena;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    hw_index_options o = {.delta_max_docs = 8}; /* main rebuilds during the tests */
    if (!f || hw_index_create(&f->idx, &o, NULL) != 0 || hw_indexer_start(f->idx, &f->ix) != 0 ||
        hw_searcher_create(f->idx, &f->s, NULL) != 0 || !(f->arena = hw_arena_create(0)))
        return -1;
    hw_index_reader_register();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    hw_indexer_stop(f->ix);
    hw_searcher_destroy(f->s);
    hw_index_destroy(f->idx);
    hw_arena_destroy(f->arena);
    hw_index_reader_unregister();
    free(f);
    return 0;
}

/* The id of the best hit for text, or "" when nothing matches. */
static const char *best(fixture *f, const char *text)
{
    hw_arena_reset(f->arena);
    hw_search_query q = {text, strlen(text), 5, NULL, HW_DOC_ANY, 0};
    hw_search_result res;
    assert_int_equal(hw_index_search(f->s, &q, f->arena, &res, NULL), 0);
    return res.n_hits ? res.hits[0].id : "";
}

static void test_change_is_searchable_when_done_runs(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 40; i++) {
        waiter w;
        waiter_init(&w);
        test_change t;
        char id[32], words[64];
        snprintf(id, sizeof id, "a-%d", i);
        snprintf(words, sizeof words, "lighthouse keeper marker%d", i);
        make_put(&t, &w, id, words);
        assert_int_equal(hw_indexer_submit(f->ix, &t.c), 0);
        waiter_wait(&w, 1);
        assert_int_equal(t.rc, 0);
        assert_int_equal(t.nice, HW_INDEXER_NICE); /* below the request threads */
        snprintf(words, sizeof words, "marker%d", i);
        assert_string_equal(best(f, words), id);
        waiter_destroy(&w);
    }
    hw_indexer_stats st;
    hw_indexer_stats_get(f->ix, &st);
    assert_int_equal(st.changes, 40);
    assert_int_equal(st.queued, 0);
}

#define SUBMITTERS 4
#define PER_SUBMITTER 150

typedef struct submitter {
    hw_indexer *ix;
    waiter *w;
    int k;
    test_change *changes; /* [PER_SUBMITTER * 2]: put, then maybe delete */
    int submitted;
    int refused;
} submitter;

static void *submitter_main(void *arg)
{
    submitter *s = arg;
    for (int i = 0; i < PER_SUBMITTER; i++) {
        char id[32], words[64];
        snprintf(id, sizeof id, "s%d-%d", s->k, i);
        snprintf(words, sizeof words, "tok%dx%d shared words", s->k, i);
        make_put(&s->changes[s->submitted], s->w, id, words);
        if (hw_indexer_submit(s->ix, &s->changes[s->submitted].c) != 0)
            s->refused++;
        s->submitted++;
        if (i % 5 == 0) { /* deleted right after: it must end up gone */
            make_delete(&s->changes[s->submitted], s->w, id);
            if (hw_indexer_submit(s->ix, &s->changes[s->submitted].c) != 0)
                s->refused++;
            s->submitted++;
        }
    }
    return NULL;
}

static void test_concurrent_submitters_all_land(void **state)
{
    fixture *f = *state;
    waiter w;
    waiter_init(&w);
    submitter s[SUBMITTERS];
    pthread_t th[SUBMITTERS];
    int total = 0;
    for (int k = 0; k < SUBMITTERS; k++) {
        s[k] = (submitter){.ix = f->ix, .w = &w, .k = k};
        s[k].changes = calloc(PER_SUBMITTER * 2, sizeof *s[k].changes);
        assert_non_null(s[k].changes);
        assert_int_equal(pthread_create(&th[k], NULL, submitter_main, &s[k]), 0);
    }
    for (int k = 0; k < SUBMITTERS; k++) {
        pthread_join(th[k], NULL);
        assert_int_equal(s[k].refused, 0);
        total += s[k].submitted;
    }
    waiter_wait(&w, total);
    assert_int_equal(w.failed, 0);
    for (int k = 0; k < SUBMITTERS; k++)
        for (int i = 0; i < PER_SUBMITTER; i++) {
            char id[32], words[32];
            snprintf(id, sizeof id, "s%d-%d", k, i);
            snprintf(words, sizeof words, "tok%dx%d", k, i);
            assert_string_equal(best(f, words), i % 5 == 0 ? "" : id);
        }
    hw_index_stats is;
    hw_index_stats_get(f->idx, &is);
    assert_int_equal(is.docs, SUBMITTERS * (PER_SUBMITTER - PER_SUBMITTER / 5));
    hw_indexer_stats st;
    hw_indexer_stats_get(f->ix, &st);
    assert_int_equal(st.changes, (uint64_t)total);
    assert_true(st.batches >= 1 && st.batches <= st.changes);
    assert_int_equal(st.queued, 0);
    for (int k = 0; k < SUBMITTERS; k++)
        free(s[k].changes);
    waiter_destroy(&w);
}

static void test_later_version_wins(void **state)
{
    fixture *f = *state;
    waiter w;
    waiter_init(&w);
    test_change t[4];
    make_put(&t[0], &w, "v-1", "zeppelin first version");
    make_put(&t[1], &w, "v-1", "dirigible second version");
    make_delete(&t[2], &w, "v-2");
    make_put(&t[3], &w, "v-2", "blimp only version");
    for (int i = 0; i < 4; i++)
        assert_int_equal(hw_indexer_submit(f->ix, &t[i].c), 0);
    waiter_wait(&w, 4);
    assert_int_equal(t[0].rc, 0);
    assert_int_equal(t[1].rc, 0);
    assert_int_equal(t[2].rc, HW_ENOTFOUND); /* v-2 did not exist yet */
    assert_int_equal(t[3].rc, 0);
    assert_string_equal(best(f, "zeppelin"), "");
    assert_string_equal(best(f, "dirigible"), "v-1");
    assert_string_equal(best(f, "blimp"), "v-2");
    waiter_destroy(&w);
}

static void test_refused_change_fails_alone(void **state)
{
    fixture *f = *state;
    waiter w;
    waiter_init(&w);
    test_change t[3];
    make_put(&t[0], &w, "ok-1", "harbour crane");
    make_put(&t[1], &w, "bad-1", "anything");
    t[1].title[0] = '\0'; /* the index requires a title */
    make_put(&t[2], &w, "ok-2", "harbour tugboat");
    for (int i = 0; i < 3; i++)
        assert_int_equal(hw_indexer_submit(f->ix, &t[i].c), 0);
    waiter_wait(&w, 3);
    assert_int_equal(t[0].rc, 0);
    assert_int_equal(t[1].rc, HW_EINVALID);
    assert_int_equal(t[2].rc, 0);
    assert_string_equal(best(f, "crane"), "ok-1");
    assert_string_equal(best(f, "tugboat"), "ok-2");
    waiter_destroy(&w);
}

static void test_submit_rejects_a_change_without_callback(void **state)
{
    fixture *f = *state;
    test_change t;
    make_put(&t, NULL, "x-1", "words");
    t.c.done = NULL;
    assert_int_equal(hw_indexer_submit(f->ix, &t.c), HW_EINVALID);
    t.c.done = on_done;
    t.c.op = 0;
    assert_int_equal(hw_indexer_submit(f->ix, &t.c), HW_EINVALID);
}

/* A run change: called on the indexer thread (at its nice value), after
 * the puts queued before it in the same batch are published and outside
 * the batch (it can take the index's writer mutex: stats here), and its
 * return value reaches done. */
typedef struct run_probe {
    test_change t;
    uint64_t docs_seen;
    int nice;
    int result;
} run_probe;

static int probe_run(hw_index_change *c, hw_index *idx, hw_status *st)
{
    (void)st;
    run_probe *p = (run_probe *)((test_change *)c->arg);
    hw_index_stats is;
    hw_index_stats_get(idx, &is); /* would deadlock inside a batch */
    p->docs_seen = is.docs;
    p->nice = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
    return p->result;
}

static void test_run_change_follows_the_batch_publish(void **state)
{
    fixture *f = *state;
    waiter w;
    waiter_init(&w);
    test_change puts[3];
    run_probe probe[2];
    make_put(&puts[0], &w, "r-1", "caravel");
    make_put(&puts[1], &w, "r-2", "galleon");
    make_put(&puts[2], &w, "r-3", "frigate");
    for (int i = 0; i < 2; i++) {
        memset(&probe[i], 0, sizeof probe[i]);
        probe[i].t.w = &w;
        probe[i].t.c.op = HW_INDEX_OP_RUN;
        probe[i].t.c.run = probe_run;
        probe[i].t.c.done = on_done;
        probe[i].t.c.arg = &probe[i].t;
    }
    probe[1].result = HW_ENOMEM;
    assert_int_equal(hw_indexer_submit(f->ix, &puts[0].c), 0);
    assert_int_equal(hw_indexer_submit(f->ix, &puts[1].c), 0);
    assert_int_equal(hw_indexer_submit(f->ix, &probe[0].t.c), 0);
    assert_int_equal(hw_indexer_submit(f->ix, &puts[2].c), 0);
    assert_int_equal(hw_indexer_submit(f->ix, &probe[1].t.c), 0);
    waiter_wait(&w, 5);
    assert_true(probe[0].docs_seen >= 2); /* r-1 and r-2 were published before it ran */
    assert_int_equal(probe[1].docs_seen, 3);
    assert_int_equal(probe[0].nice, HW_INDEXER_NICE);
    assert_int_equal(probe[0].t.rc, 0);
    assert_int_equal(probe[1].t.rc, HW_ENOMEM); /* what run returned */
    assert_string_equal(best(f, "frigate"), "r-3");
    /* a run change needs its function */
    probe[0].t.c.run = NULL;
    assert_int_equal(hw_indexer_submit(f->ix, &probe[0].t.c), HW_EINVALID);
    waiter_destroy(&w);
}

/* Stop with changes queued: every one is applied and answered before stop
 * returns (no submitter is left waiting), and the thread exits. */
static void test_stop_answers_queued_changes(void **state)
{
    (void)state;
    enum { N = 300 };
    hw_index *idx;
    hw_indexer *ix;
    assert_int_equal(hw_index_create(&idx, NULL, NULL), 0);
    assert_int_equal(hw_indexer_start(idx, &ix), 0);
    waiter w;
    waiter_init(&w);
    test_change *t = calloc(N, sizeof *t);
    assert_non_null(t);
    for (int i = 0; i < N; i++) {
        char id[32], words[4096];
        int n = snprintf(words, sizeof words, "queued change %d", i);
        for (int j = 0; n < (int)sizeof words - 16; j++) /* a body worth indexing */
            n += snprintf(words + n, sizeof words - (size_t)n, " w%d", (i * 31 + j) % 997);
        snprintf(id, sizeof id, "q-%d", i);
        make_put(&t[i], &w, id, words);
        assert_int_equal(hw_indexer_submit(ix, &t[i].c), 0);
    }
    hw_indexer_stop(ix);
    assert_int_equal(w.done, N);
    assert_int_equal(w.failed, 0);
    hw_index_stats is;
    hw_index_stats_get(idx, &is);
    assert_int_equal(is.docs, N);
    hw_indexer_stop(NULL); /* a no-op */
    free(t);
    waiter_destroy(&w);
    hw_index_destroy(idx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_change_is_searchable_when_done_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_submitters_all_land, setup, teardown),
        cmocka_unit_test_setup_teardown(test_later_version_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_change_fails_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submit_rejects_a_change_without_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_change_follows_the_batch_publish, setup, teardown),
        cmocka_unit_test(test_stop_answers_queued_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
