/*
 * limits_test: server/domain/limits.c. The bucket math on a driven clock
 * (a burst, then one token per 60000/rate ms, the delay a refusal names),
 * what a full table forgets (idle buckets first, a drained sender's never
 * while fuller ones exist), Route's policy (sender, then new customers,
 * counted per channel; a refusal for new customers gives the sender's
 * token back), the flag checks, and many threads on one table (under
 * TSan: bazel test --config=tsan).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/base/errors.h"
#include "server/domain/limits.h"

static hw_limits *make(double rate, uint32_t burst, size_t capacity)
{
    hw_limits *l = NULL;
    hw_limits_options o = {.rate_per_min = rate, .burst = burst, .capacity = capacity, .seed = 42};
    assert_int_equal(hw_limits_create(&l, &o), HW_OK);
    assert_non_null(l);
    return l;
}

static bool take(hw_limits *l, const char *key, int64_t now, int64_t *retry)
{
    return hw_limits_take(l, key, strlen(key), now, retry);
}

static void burst_then_one_token_per_interval(void **state)
{
    (void)state;
    hw_limits *l = make(30, 5, 1024); /* one token per 2000 ms */
    int64_t retry = 0;
    for (int i = 0; i < 5; i++)
        assert_true(take(l, "alice", 1000, &retry));
    assert_false(take(l, "alice", 1000, &retry));
    assert_int_equal(retry, 2000);
    assert_false(take(l, "alice", 2500, &retry)); /* 0.75 of a token back */
    assert_int_equal(retry, 500);
    assert_true(take(l, "alice", 3000, &retry));
    assert_false(take(l, "alice", 3000, &retry));
    /* another key is untouched */
    assert_true(take(l, "bob", 3000, &retry));
    /* a long pause refills to the burst, not beyond */
    for (int i = 0; i < 5; i++)
        assert_true(take(l, "alice", 1000000, &retry));
    assert_false(take(l, "alice", 1000000, &retry));
    hw_limits_destroy(l);
}

static void time_going_back_adds_nothing(void **state)
{
    (void)state;
    hw_limits *l = make(60, 1, 64);
    int64_t retry = 0;
    assert_true(take(l, "k", 10000, &retry));
    assert_false(take(l, "k", 5000, &retry));
    assert_int_equal(retry, 1000);
    assert_false(take(l, "k", 10999, &retry));
    assert_int_equal(retry, 1);
    assert_true(take(l, "k", 11000, &retry));
    hw_limits_destroy(l);
}

static void give_back_returns_one_token_up_to_the_burst(void **state)
{
    (void)state;
    hw_limits *l = make(1, 2, 64);
    assert_true(take(l, "k", 0, NULL));
    assert_true(take(l, "k", 0, NULL));
    assert_false(take(l, "k", 0, NULL));
    hw_limits_give_back(l, "k", 1, 0);
    assert_true(take(l, "k", 0, NULL));
    assert_false(take(l, "k", 0, NULL));
    /* giving back to a full or unknown bucket adds nothing past the burst */
    hw_limits_give_back(l, "never", 5, 0);
    hw_limits_give_back(l, "never", 5, 0);
    assert_true(take(l, "never", 0, NULL));
    assert_true(take(l, "never", 0, NULL));
    assert_false(take(l, "never", 0, NULL));
    hw_limits_destroy(l);
}

static void bad_options_are_refused(void **state)
{
    (void)state;
    hw_limits *l = NULL;
    hw_limits_options o = {.rate_per_min = 0, .burst = 1, .capacity = 8};
    assert_int_equal(hw_limits_create(&l, &o), HW_EINVALID);
    o = (hw_limits_options){.rate_per_min = 10, .burst = 0, .capacity = 8};
    assert_int_equal(hw_limits_create(&l, &o), HW_EINVALID);
    o = (hw_limits_options){.rate_per_min = HW_LIMITS_MAX_RATE_PER_MIN + 1.0, .burst = 1, .capacity = 8};
    assert_int_equal(hw_limits_create(&l, &o), HW_EINVALID);
    assert_null(l);
}

/* With one set of 8 buckets: 8 keys fill it; a 9th takes an idle
 * (refilled) bucket when there is one, and never the drained sender's
 * while a fuller bucket exists. */
static void a_full_table_forgets_idle_buckets_first(void **state)
{
    (void)state;
    hw_limits *l = make(60, 3, HW_LIMITS_WAYS); /* one token per second */
    char key[16];
    /* the flooder drains its bucket */
    for (int i = 0; i < 3; i++)
        assert_true(take(l, "flooder", 0, NULL));
    for (int i = 1; i < HW_LIMITS_WAYS; i++) {
        snprintf(key, sizeof key, "k%d", i);
        assert_true(take(l, key, 0, NULL));
    }
    hw_limits_stats st;
    hw_limits_stats_get(l, &st);
    assert_int_equal(st.keys, HW_LIMITS_WAYS);
    assert_int_equal(st.evicted_idle + st.evicted_busy, 0);
    /* many new senders while nobody has refilled: the busy ones with the
     * most tokens go, the flooder stays remembered and limited */
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof key, "new%d", i);
        assert_true(take(l, key, 0, NULL));
    }
    hw_limits_stats_get(l, &st);
    assert_int_equal(st.keys, HW_LIMITS_WAYS);
    assert_int_equal(st.evicted_busy, 50);
    int64_t retry = 0;
    assert_false(take(l, "flooder", 0, &retry));
    assert_int_equal(retry, 1000);
    /* later every bucket has refilled: the next new sender takes an idle one */
    assert_true(take(l, "late", 60000, NULL));
    hw_limits_stats_get(l, &st);
    assert_int_equal(st.evicted_idle, 1);
    assert_int_equal(st.evicted_busy, 50);
    hw_limits_destroy(l);
}

/* A large table keeps many senders apart: each of 10000 gets exactly its
 * burst. */
static void many_senders_each_get_their_own_burst(void **state)
{
    (void)state;
    hw_limits *l = make(1, 2, 65536);
    char key[32];
    int refused_early = 0, granted_third = 0;
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof key, "user-%d", i);
        refused_early += !take(l, key, 0, NULL);
        refused_early += !take(l, key, 0, NULL);
        granted_third += take(l, key, 0, NULL);
    }
    /* a sender whose set overflowed might get a fresh bucket; with 8192
     * sets of 8 for 10000 keys that is rare, not zero in theory */
    assert_int_equal(refused_early, 0);
    assert_true(granted_third <= 5);
    hw_limits_destroy(l);
}

typedef struct {
    hw_limits *l;
    int id;
    int shared_granted;
    int own_granted;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *w = p;
    char own[32];
    snprintf(own, sizeof own, "own-%d", w->id);
    for (int i = 0; i < 2000; i++) {
        w->shared_granted += take(w->l, "shared", 0, NULL);
        w->own_granted += take(w->l, own, 0, NULL);
        char other[32];
        snprintf(other, sizeof other, "other-%d-%d", w->id, i);
        (void)take(w->l, other, i, NULL);
    }
    return NULL;
}

/* Threads racing on one key get exactly its burst between them; each
 * thread's own key its own burst. The table holds every key the threads
 * use (4 x 2,000 others and 5 more): with fewer slots a full table
 * forgets the idlest buckets, and the drained own and shared ones, last
 * used at time 0, were those, coming back with a fresh burst (a 101st
 * token under ASan's slower interleavings). */
static void concurrent_takes_never_exceed_the_burst(void **state)
{
    (void)state;
    hw_limits *l = make(1, 100, (size_t)1 << 18);
    enum { N = 4 };
    pthread_t t[N];
    worker_arg w[N];
    for (int i = 0; i < N; i++) {
        w[i] = (worker_arg){.l = l, .id = i};
        assert_int_equal(pthread_create(&t[i], NULL, worker, &w[i]), 0);
    }
    int shared = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        shared += w[i].shared_granted;
        assert_int_equal(w[i].own_granted, 100);
    }
    assert_int_equal(shared, 100);
    hw_limits_destroy(l);
}

static void route_policy_limits_senders_and_new_customers_per_channel(void **state)
{
    (void)state;
    hw_route_limits *l = NULL;
    hw_route_limits_options o = {.sender_rate_per_min = 60,
                                 .sender_burst = 2,
                                 .new_customers_rate_per_min = 6,
                                 .new_customers_burst = 3};
    assert_int_equal(hw_route_limits_create(&l, &o), HW_OK);
    assert_non_null(l);
    assert_true(hw_route_limits_new_customers_on(l));
    int64_t retry = 0;
    /* a known customer: only its own bucket */
    assert_int_equal(hw_route_limits_check(l, 2, "42", false, 0, &retry), HW_ROUTE_LIMIT_OK);
    assert_int_equal(hw_route_limits_check(l, 2, "42", false, 0, &retry), HW_ROUTE_LIMIT_OK);
    assert_int_equal(hw_route_limits_check(l, 2, "42", false, 0, &retry), HW_ROUTE_LIMIT_SENDER);
    assert_int_equal(retry, 1000);
    /* the same id on another channel is another sender */
    assert_int_equal(hw_route_limits_check(l, 1, "42", false, 0, &retry), HW_ROUTE_LIMIT_OK);
    /* new customers: three per channel at once, then one per 10 s */
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof id, "n%d", i);
        assert_int_equal(hw_route_limits_check(l, 2, id, true, 0, &retry), HW_ROUTE_LIMIT_OK);
    }
    assert_int_equal(hw_route_limits_check(l, 2, "n3", true, 0, &retry), HW_ROUTE_LIMIT_NEW_CUSTOMERS);
    assert_int_equal(retry, 10000);
    /* another channel's new customers are not affected */
    assert_int_equal(hw_route_limits_check(l, 3, "n3", true, 0, &retry), HW_ROUTE_LIMIT_OK);
    /* n3's sender token came back: its two messages pass once the channel
     * has room again */
    assert_int_equal(hw_route_limits_check(l, 2, "n3", true, 20000, &retry), HW_ROUTE_LIMIT_OK);
    assert_int_equal(hw_route_limits_refused(l, 2, HW_ROUTE_LIMIT_SENDER), 1);
    assert_int_equal(hw_route_limits_refused(l, 2, HW_ROUTE_LIMIT_NEW_CUSTOMERS), 1);
    assert_int_equal(hw_route_limits_refused(l, 3, HW_ROUTE_LIMIT_SENDER), 0);

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    hw_route_limits_collect(l, f);
    fclose(f);
    assert_non_null(strstr(buf, "helpwire_route_limited_total{channel=\"telegram\",kind=\"sender\"} 1\n"));
    assert_non_null(
        strstr(buf, "helpwire_route_limited_total{channel=\"telegram\",kind=\"new_customers\"} 1\n"));
    assert_non_null(strstr(buf, "helpwire_route_limited_total{channel=\"webchat\",kind=\"sender\"} 0\n"));
    free(buf);
    hw_route_limits_destroy(l);
}

static void route_policy_off_allows_everything(void **state)
{
    (void)state;
    hw_route_limits *l = (hw_route_limits *)1;
    hw_route_limits_options o = {0};
    assert_int_equal(hw_route_limits_create(&l, &o), HW_OK);
    assert_null(l);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(hw_route_limits_check(NULL, 2, "42", true, 0, NULL), HW_ROUTE_LIMIT_OK);
    /* only the new-customer limit on */
    o.new_customers_rate_per_min = 1;
    o.new_customers_burst = 1;
    assert_int_equal(hw_route_limits_create(&l, &o), HW_OK);
    for (int i = 0; i < 100; i++)
        assert_int_equal(hw_route_limits_check(l, 2, "42", false, 0, NULL), HW_ROUTE_LIMIT_OK);
    assert_int_equal(hw_route_limits_check(l, 2, "a", true, 0, NULL), HW_ROUTE_LIMIT_OK);
    assert_int_equal(hw_route_limits_check(l, 2, "b", true, 0, NULL), HW_ROUTE_LIMIT_NEW_CUSTOMERS);
    hw_route_limits_destroy(l);
}

static void bad_flags_name_the_flag(void **state)
{
    (void)state;
    char err[256];
    hw_route_limits_options o = {.sender_rate_per_min = 30, .sender_burst = 0};
    assert_int_equal(hw_route_limits_validate(&o, err, sizeof err), HW_EINVALID);
    assert_non_null(strstr(err, "--sender-burst must be at least 1"));
    o = (hw_route_limits_options){.sender_rate_per_min = -1, .sender_burst = 1};
    assert_int_equal(hw_route_limits_validate(&o, err, sizeof err), HW_EINVALID);
    assert_non_null(strstr(err, "--sender-rate"));
    o = (hw_route_limits_options){.new_customers_rate_per_min = 600, .new_customers_burst = 0};
    assert_int_equal(hw_route_limits_validate(&o, err, sizeof err), HW_EINVALID);
    assert_non_null(strstr(err, "--new-customers-burst"));
    o = (hw_route_limits_options){.sender_rate_per_min = 0, .sender_burst = 0};
    assert_int_equal(hw_route_limits_validate(&o, err, sizeof err), HW_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(burst_then_one_token_per_interval),
        cmocka_unit_test(time_going_back_adds_nothing),
        cmocka_unit_test(give_back_returns_one_token_up_to_the_burst),
        cmocka_unit_test(bad_options_are_refused),
        cmocka_unit_test(a_full_table_forgets_idle_buckets_first),
        cmocka_unit_test(many_senders_each_get_their_own_burst),
        cmocka_unit_test(concurrent_takes_never_exceed_the_burst),
        cmocka_unit_test(route_policy_limits_senders_and_new_customers_per_channel),
        cmocka_unit_test(route_policy_off_allows_everything),
        cmocka_unit_test(bad_flags_name_the_flag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
