/*
 * index_concurrent_test: searches stay correct while a writer puts,
 * replaces and deletes documents, freezes and merges deltas and rebuilds
 * main (readers never block; run under ThreadSanitizer with --config=tsan).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "server/base/arena.h"
#include "server/search/index.h"

#define READERS 2
#define WRITES 600

typedef struct shared {
    hw_index *idx;
    int done; /* set by the writer, read with atomics */
    int failures;
    long searches;
} shared;

static void *writer_main(void *arg)
{
    shared *sh = arg;
    char id[32], body[256];
    uint64_t r = 42;
    for (int i = 0; i < WRITES; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        snprintf(id, sizeof id, "churn-%d", (int)(r >> 33) % 80);
        if ((r >> 20) % 4 == 0) {
            hw_index_delete(sh->idx, HW_DOC_ARTICLE, id, NULL);
            continue;
        }
        snprintf(body, sizeof body, "churn text w%u w%u w%u 重置密码 refund policy v%d.%d",
                 (unsigned)(r >> 40) % 50, (unsigned)(r >> 45) % 50, (unsigned)(r >> 50) % 50, i % 7, i % 3);
        hw_doc d = {HW_DOC_ARTICLE, id, "churn article", body, i % 2 ? "en" : "zh", NULL, 0};
        if (hw_index_put(sh->idx, &d, NULL) != 0)
            __atomic_add_fetch(&sh->failures, 1, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&sh->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void *reader_main(void *arg)
{
    shared *sh = arg;
    hw_index_reader_register();
    hw_searcher *s;
    hw_arena *arena = hw_arena_create(0);
    if (hw_searcher_create(sh->idx, &s, NULL) != 0 || !arena) {
        __atomic_add_fetch(&sh->failures, 1, __ATOMIC_RELAXED);
        hw_index_reader_unregister();
        return NULL;
    }
    static const char *const queries[] = {"w1 w2 w3", "重置密码", "refund", "v3.1 churn", "w7"};
    long n = 0;
    while (!__atomic_load_n(&sh->done, __ATOMIC_ACQUIRE) || n < 50) {
        /* the stable article is always found first for its own words */
        hw_search_query q = {"lighthouse keeper", 17, 5, NULL, HW_DOC_ANY, 0};
        hw_search_result res;
        if (hw_index_search(s, &q, arena, &res, NULL) != 0 || res.n_hits < 1 ||
            strcmp(res.hits[0].id, "stable-1") != 0)
            __atomic_add_fetch(&sh->failures, 1, __ATOMIC_RELAXED);
        const char *t = queries[n % 5];
        hw_search_query q2 = {t, strlen(t), 10, n % 3 ? NULL : "zh", HW_DOC_ANY, 0};
        if (hw_index_search(s, &q2, arena, &res, NULL) != 0) {
            __atomic_add_fetch(&sh->failures, 1, __ATOMIC_RELAXED);
        } else {
            for (size_t i = 0; i < res.n_hits; i++) {
                if (strncmp(res.hits[i].id, "churn-", 6) != 0 && strncmp(res.hits[i].id, "stable-", 7) != 0)
                    __atomic_add_fetch(&sh->failures, 1, __ATOMIC_RELAXED);
                if (i > 0 && res.hits[i - 1].score < res.hits[i].score)
                    __atomic_add_fetch(&sh->failures, 1, __ATOMIC_RELAXED);
                if (q2.locale && strcmp(res.hits[i].locale, "zh") != 0)
                    __atomic_add_fetch(&sh->failures, 1, __ATOMIC_RELAXED);
            }
        }
        hw_answer a;
        if (hw_index_answer(s, "lighthouse keeper", 17, NULL, 0, arena, &a, NULL) != 0 ||
            strcmp(a.source_id, "stable-1") != 0)
            __atomic_add_fetch(&sh->failures, 1, __ATOMIC_RELAXED);
        hw_arena_reset(arena);
        n++;
    }
    __atomic_add_fetch(&sh->searches, n, __ATOMIC_RELAXED);
    hw_searcher_destroy(s);
    hw_arena_destroy(arena);
    hw_index_reader_unregister();
    return NULL;
}

static void run_churn(const hw_index_options *opts)
{
    shared sh = {0};
    hw_index_options o = *opts;
    assert_int_equal(hw_index_create(&sh.idx, &o, NULL), 0);
    hw_doc stable = {
        HW_DOC_ARTICLE, "stable-1", "The lighthouse keeper", "A lighthouse keeper tends the light.", "en",
        NULL,           0};
    assert_int_equal(hw_index_put(sh.idx, &stable, NULL), 0);
    pthread_t w, r[READERS];
    for (int i = 0; i < READERS; i++)
        assert_int_equal(pthread_create(&r[i], NULL, reader_main, &sh), 0);
    assert_int_equal(pthread_create(&w, NULL, writer_main, &sh), 0);
    pthread_join(w, NULL);
    for (int i = 0; i < READERS; i++)
        pthread_join(r[i], NULL);
    assert_int_equal(sh.failures, 0);
    assert_true(sh.searches >= READERS * 50);
    hw_index_stats st;
    hw_index_stats_get(sh.idx, &st);
    assert_true(st.docs >= 1 && st.docs <= 81);
    hw_index_destroy(sh.idx);
}

static void test_searches_are_correct_while_articles_change(void **state)
{
    (void)state;
    hw_index_options o = {0};
    o.delta_max_docs = 16; /* force main rebuilds during the run */
    run_churn(&o);
}

/* Small deltas: the active one is frozen every 3 changes, frozen ones are
 * merged by fours, main builds in the background keep the deltas frozen
 * since they started. */
static void test_searches_are_correct_while_deltas_freeze_and_merge(void **state)
{
    (void)state;
    hw_index_options o = {0};
    o.delta_max_docs = 60;
    o.delta_active_docs = 3;
    run_churn(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_searches_are_correct_while_articles_change),
        cmocka_unit_test(test_searches_are_correct_while_deltas_freeze_and_merge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
