/*
 * histogram: a log-linear latency histogram for the benchmarks.
 *
 * Values (nanoseconds in practice, but any uint64) fall into buckets whose
 * width doubles every octave while each octave is split into a fixed number
 * of linear sub-buckets (2^HW_HIST_SUB_BITS). Values below 2^HW_HIST_SUB_BITS
 * are counted exactly; above that a bucket's width is at most
 * 2^-HW_HIST_SUB_BITS of its lower bound, so every percentile is known to
 * within that relative error without storing or sorting the samples.
 * Recording is one shift, one add and one increment: cheap enough for every
 * completed call. Values beyond HW_HIST_MAX_VALUE land in the top bucket;
 * the exact maximum is still kept.
 *
 * Design choice: one histogram per thread, merged at the end (no atomics,
 * no locks on the hot path). Not thread-safe: a histogram belongs to one
 * thread at a time.
 */
#ifndef HW_HIST_H
#define HW_HIST_H

#include <stddef.h>
#include <stdint.h>

/* Linear sub-buckets per octave, as a power of two: 2^7 = 128 gives a
 * bucket width of at most 1/128 (0.79%) of the value. */
#define HW_HIST_SUB_BITS 7

/* Largest value with its own bucket (2^40 - 1 ns is about 18 minutes). */
#define HW_HIST_MAX_VALUE ((UINT64_C(1) << 40) - 1)

typedef struct hw_hist hw_hist;

/* Creates an empty histogram. Returns NULL when out of memory. The caller
 * owns it; free with hw_hist_destroy(). */
hw_hist *hw_hist_create(void);

/* Frees a histogram. NULL is a no-op. */
void hw_hist_destroy(hw_hist *h);

/* Empties the histogram (count, min, max and sum back to zero). */
void hw_hist_reset(hw_hist *h);

/* Counts one value. Values above HW_HIST_MAX_VALUE are counted in the top
 * bucket (percentiles saturate there) but still set the exact max. */
void hw_hist_record(hw_hist *h, uint64_t value);

/* Adds every count of src into dst. src is unchanged. */
void hw_hist_merge(hw_hist *dst, const hw_hist *src);

/* Number of values recorded. */
uint64_t hw_hist_count(const hw_hist *h);

/* Exact smallest and largest values recorded; 0 when empty. */
uint64_t hw_hist_min(const hw_hist *h);
uint64_t hw_hist_max(const hw_hist *h);

/* Exact arithmetic mean of the values recorded; 0 when empty. */
double hw_hist_mean(const hw_hist *h);

/* The value at percentile p (0..100): the smallest bucket holding at least
 * ceil(p/100 * count) values, reported as the bucket's midpoint clamped to
 * [min, max]. So the result is within half a bucket width, at most
 * hw_hist_relative_error() of the true order statistic. p <= 0 gives min,
 * p >= 100 gives max (exact). 0 when empty. */
uint64_t hw_hist_percentile(const hw_hist *h, double p);

/* The guaranteed relative error of hw_hist_percentile() for values at or
 * above 2^HW_HIST_SUB_BITS (values below are exact): half a bucket's width
 * over its lower bound, 2^-(HW_HIST_SUB_BITS+1). */
double hw_hist_relative_error(void);

/* Number of buckets (for tests and for sizing). */
size_t hw_hist_bucket_count(void);

/* The bucket index of a value and the [lower, upper] value range of a
 * bucket (inclusive). Exposed for tests. */
size_t hw_hist_bucket_of(uint64_t value);
void hw_hist_bucket_range(size_t index, uint64_t *lower, uint64_t *upper);

#endif
