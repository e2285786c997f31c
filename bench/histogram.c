/*
 * histogram: log-linear buckets (see histogram.h for the contract).
 *
 * Index of a value v, with S = HW_HIST_SUB_BITS:
 *   v < 2^S            -> v                       (exact buckets)
 *   otherwise          -> shift * 2^S + (v >> shift), shift = msb(v) - S
 * (v >> shift) lies in [2^S, 2^(S+1)), so consecutive octaves follow each
 * other without gaps and each octave has 2^S buckets of width 2^shift.
 */
#include "bench/histogram.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define SUB_COUNT (UINT64_C(1) << HW_HIST_SUB_BITS)
/* (msb of HW_HIST_MAX_VALUE) - S + 2 octaves of SUB_COUNT buckets. */
#define BUCKET_COUNT ((size_t)((40 - HW_HIST_SUB_BITS + 1) * SUB_COUNT))

struct hw_hist {
    uint64_t count;
    uint64_t min;
    uint64_t max;
    long double sum;
    uint64_t buckets[BUCKET_COUNT];
};

size_t hw_hist_bucket_count(void)
{
    return BUCKET_COUNT;
}

double hw_hist_relative_error(void)
{
    return 1.0 / (double)(SUB_COUNT * 2);
}

size_t hw_hist_bucket_of(uint64_t value)
{
    if (value > HW_HIST_MAX_VALUE)
        value = HW_HIST_MAX_VALUE;
    if (value < SUB_COUNT)
        return (size_t)value;
    unsigned msb = 63u - (unsigned)__builtin_clzll(value);
    unsigned shift = msb - HW_HIST_SUB_BITS;
    size_t index = (size_t)shift * SUB_COUNT + (size_t)(value >> shift);
    assert(index < BUCKET_COUNT);
    return index;
}

void hw_hist_bucket_range(size_t index, uint64_t *lower, uint64_t *upper)
{
    assert(index < BUCKET_COUNT);
    if (index < SUB_COUNT) {
        *lower = *upper = index;
        return;
    }
    unsigned shift = (unsigned)(index >> HW_HIST_SUB_BITS) - 1u;
    uint64_t mantissa = (uint64_t)index - (uint64_t)shift * SUB_COUNT;
    *lower = mantissa << shift;
    *upper = *lower + ((UINT64_C(1) << shift) - 1);
}

hw_hist *hw_hist_create(void)
{
    hw_hist *h = calloc(1, sizeof(*h));
    return h;
}

void hw_hist_destroy(hw_hist *h)
{
    free(h);
}

void hw_hist_reset(hw_hist *h)
{
    memset(h, 0, sizeof(*h));
}

void hw_hist_record(hw_hist *h, uint64_t value)
{
    if (h->count == 0 || value < h->min)
        h->min = value;
    if (value > h->max)
        h->max = value;
    h->count++;
    h->sum += (long double)value;
    h->buckets[hw_hist_bucket_of(value)]++;
}

void hw_hist_merge(hw_hist *dst, const hw_hist *src)
{
    if (src->count == 0)
        return;
    if (dst->count == 0 || src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    dst->count += src->count;
    dst->sum += src->sum;
    for (size_t i = 0; i < BUCKET_COUNT; i++)
        dst->buckets[i] += src->buckets[i];
}

uint64_t hw_hist_count(const hw_hist *h)
{
    return h->count;
}

uint64_t hw_hist_min(const hw_hist *h)
{
    return h->count ? h->min : 0;
}

uint64_t hw_hist_max(const hw_hist *h)
{
    return h->count ? h->max : 0;
}

double hw_hist_mean(const hw_hist *h)
{
    return h->count ? (double)(h->sum / (long double)h->count) : 0.0;
}

uint64_t hw_hist_percentile(const hw_hist *h, double p)
{
    if (h->count == 0)
        return 0;
    if (p <= 0.0)
        return h->min;
    if (p >= 100.0)
        return h->max;
    /* rank = ceil(p/100 * count), at least 1 */
    double exact = p / 100.0 * (double)h->count;
    uint64_t rank = (uint64_t)exact;
    if ((double)rank < exact)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < BUCKET_COUNT; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t lower, upper;
            hw_hist_bucket_range(i, &lower, &upper);
            uint64_t mid = lower + (upper - lower) / 2;
            if (mid < h->min)
                mid = h->min;
            if (mid > h->max)
                mid = h->max;
            return mid;
        }
    }
    return h->max; /* unreachable while counts add up */
}
