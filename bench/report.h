/*
 * report: what helpwire-bench prints at the end of a run: a human summary
 * (throughput, latency percentiles, errors by status code, one line per
 * RPC) and the same figures as JSON for scripts (bench/run.sh reads it).
 *
 * JSON layout (latencies in microseconds, of calls that ended OK):
 *   { "tool": "helpwire-bench", "target", "mode": "closed"|"open",
 *     "connections", "concurrency", "threads", "rate", "warmup_s",
 *     "duration_s", "requests_target", "mix", "interrupted",
 *     "elapsed_s", "requests", "ok", "errors", "throughput_rps",
 *     "latency_us": {"min","mean","p50","p90","p99","p999","max"},
 *     "errors_by_status": {"UNAVAILABLE": n, ...},
 *     "warmup_requests", "late_sends",
 *     "rpcs": {"Route": {"requests","ok","errors","throughput_rps",
 *              "latency_us": {...}, "errors_by_status": {...},
 *              "bytes_sent", "bytes_received"}, ...} }
 *
 * Stateless functions; safe from any thread on results nobody changes.
 */
#ifndef HW_REPORT_H
#define HW_REPORT_H

#include <stdio.h>

#include "bench/driver.h"

/* What the run was asked to do, for the headers of both outputs. */
typedef struct hw_report_info {
    const char *target;
    const char *mix; /* formatted mix */
    unsigned connections, concurrency, threads;
    double rate, warmup_s, duration_s;
    uint64_t requests_target;
} hw_report_info;

/* Prints the human summary to out. */
void hw_report_print(FILE *out, const hw_report_info *info, const hw_results *r);

/* Writes the JSON document to path ("-" for stdout). 0, or -errno / -ENOMEM
 * when it cannot be built or written. */
int hw_report_write_json(const char *path, const hw_report_info *info, const hw_results *r);

#endif
