/*
 * histogram_test: the log-linear histogram (bench/histogram.c) reports
 * percentiles of known distributions within its stated bucket error, keeps
 * exact min/max/mean, merges, and maps values to contiguous buckets.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "bench/histogram.h"

/* |got - want| within the histogram's relative error of want (exact below
 * 2^HW_HIST_SUB_BITS). */
static void assert_close(uint64_t got, uint64_t want)
{
    double tol = want < (1u << HW_HIST_SUB_BITS) ? 0.0 : hw_hist_relative_error() * (double)want + 1.0;
    double diff = fabs((double)got - (double)want);
    if (diff > tol)
        fail_msg("got %llu, want %llu (tolerance %.1f)", (unsigned long long)got, (unsigned long long)want,
                 tol);
}

static void test_buckets_are_contiguous_and_bounded(void **state)
{
    (void)state;
    uint64_t prev_upper = 0;
    for (size_t i = 0; i < hw_hist_bucket_count(); i++) {
        uint64_t lo, hi;
        hw_hist_bucket_range(i, &lo, &hi);
        if (i > 0)
            assert_int_equal(lo, prev_upper + 1);
        assert_true(hi >= lo);
        /* width <= 2^-SUB_BITS of the lower bound, or exact */
        if (lo >= (1u << HW_HIST_SUB_BITS))
            assert_true((double)(hi - lo + 1) <= (double)lo / (1u << HW_HIST_SUB_BITS) + 1e-9);
        assert_int_equal(hw_hist_bucket_of(lo), i);
        assert_int_equal(hw_hist_bucket_of(hi), i);
        prev_upper = hi;
    }
    assert_int_equal(prev_upper, HW_HIST_MAX_VALUE);
}

static void test_empty_histogram_reports_zero(void **state)
{
    (void)state;
    hw_hist *h = hw_hist_create();
    assert_non_null(h);
    assert_int_equal(hw_hist_count(h), 0);
    assert_int_equal(hw_hist_percentile(h, 50), 0);
    assert_int_equal(hw_hist_max(h), 0);
    assert_true(hw_hist_mean(h) == 0.0);
    hw_hist_destroy(h);
}

static void test_small_values_are_exact(void **state)
{
    (void)state;
    hw_hist *h = hw_hist_create();
    for (uint64_t v = 1; v <= 100; v++)
        hw_hist_record(h, v);
    assert_int_equal(hw_hist_percentile(h, 50), 50);
    assert_int_equal(hw_hist_percentile(h, 90), 90);
    assert_int_equal(hw_hist_percentile(h, 99), 99);
    assert_int_equal(hw_hist_percentile(h, 100), 100);
    assert_int_equal(hw_hist_min(h), 1);
    assert_true(fabs(hw_hist_mean(h) - 50.5) < 1e-9);
    hw_hist_destroy(h);
}

static void test_uniform_percentiles_within_bucket_error(void **state)
{
    (void)state;
    hw_hist *h = hw_hist_create();
    /* every value 1000..1000999 once: order statistic k is 999 + k */
    for (uint64_t v = 1000; v < 1001000; v++)
        hw_hist_record(h, v);
    const double ps[] = {10, 50, 90, 99, 99.9};
    for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
        uint64_t rank = (uint64_t)ceil(ps[i] / 100.0 * 1000000.0);
        assert_close(hw_hist_percentile(h, ps[i]), 999 + rank);
    }
    assert_int_equal(hw_hist_max(h), 1000999);
    assert_int_equal(hw_hist_min(h), 1000);
    hw_hist_destroy(h);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_exponential_latencies_match_sorted_samples(void **state)
{
    (void)state;
    enum { N = 200000 };
    uint64_t *v = malloc(N * sizeof(*v));
    assert_non_null(v);
    hw_hist *h = hw_hist_create();
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < N; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double u = ((double)(x >> 11) + 0.5) / 9007199254740992.0;
        v[i] = 50000 + (uint64_t)(-log(u) * 800000.0); /* ns: 50 us + exp(mean 0.8 ms) */
        hw_hist_record(h, v[i]);
    }
    qsort(v, N, sizeof(*v), cmp_u64);
    const double ps[] = {50, 90, 99, 99.9};
    for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
        size_t rank = (size_t)ceil(ps[i] / 100.0 * N);
        assert_close(hw_hist_percentile(h, ps[i]), v[rank - 1]);
    }
    assert_int_equal(hw_hist_max(h), v[N - 1]);
    assert_int_equal(hw_hist_percentile(h, 100), v[N - 1]);
    free(v);
    hw_hist_destroy(h);
}

static void test_bimodal_tail_is_found(void **state)
{
    (void)state;
    hw_hist *h = hw_hist_create();
    for (int i = 0; i < 9900; i++)
        hw_hist_record(h, 200000); /* 0.2 ms */
    for (int i = 0; i < 100; i++)
        hw_hist_record(h, 40000000); /* 40 ms */
    assert_close(hw_hist_percentile(h, 50), 200000);
    assert_close(hw_hist_percentile(h, 99), 200000);
    assert_close(hw_hist_percentile(h, 99.5), 40000000);
    assert_close(hw_hist_percentile(h, 99.9), 40000000);
    hw_hist_destroy(h);
}

static void test_merge_equals_recording_everything_in_one(void **state)
{
    (void)state;
    hw_hist *a = hw_hist_create(), *b = hw_hist_create(), *all = hw_hist_create();
    for (uint64_t v = 1; v < 50000; v += 7) {
        hw_hist_record(v % 2 ? a : b, v * 31);
        hw_hist_record(all, v * 31);
    }
    hw_hist_merge(a, b);
    assert_int_equal(hw_hist_count(a), hw_hist_count(all));
    assert_int_equal(hw_hist_min(a), hw_hist_min(all));
    assert_int_equal(hw_hist_max(a), hw_hist_max(all));
    for (double p = 1; p < 100; p += 7.5)
        assert_int_equal(hw_hist_percentile(a, p), hw_hist_percentile(all, p));
    assert_true(fabs(hw_hist_mean(a) - hw_hist_mean(all)) < 1e-6);
    hw_hist_destroy(a);
    hw_hist_destroy(b);
    hw_hist_destroy(all);
}

static void test_huge_values_saturate_but_keep_exact_max(void **state)
{
    (void)state;
    hw_hist *h = hw_hist_create();
    hw_hist_record(h, UINT64_MAX);
    hw_hist_record(h, 5);
    assert_int_equal(hw_hist_max(h), UINT64_MAX);
    assert_int_equal(hw_hist_percentile(h, 100), UINT64_MAX);
    assert_true(hw_hist_percentile(h, 99) <= UINT64_MAX);
    assert_int_equal(hw_hist_percentile(h, 50), 5);
    hw_hist_reset(h);
    assert_int_equal(hw_hist_count(h), 0);
    hw_hist_destroy(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets_are_contiguous_and_bounded),
        cmocka_unit_test(test_empty_histogram_reports_zero),
        cmocka_unit_test(test_small_values_are_exact),
        cmocka_unit_test(test_uniform_percentiles_within_bucket_error),
        cmocka_unit_test(test_exponential_latencies_match_sorted_samples),
        cmocka_unit_test(test_bimodal_tail_is_found),
        cmocka_unit_test(test_merge_equals_recording_everything_in_one),
        cmocka_unit_test(test_huge_values_saturate_but_keep_exact_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
