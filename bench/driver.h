/*
 * driver: the load engine of helpwire-bench, on the gRPC C core.
 *
 * Shape: T worker threads, each with its own completion queue; C channels
 * (one TCP connection each: a local subchannel pool per channel keeps gRPC
 * from sharing connections) spread over the workers; each channel carries
 * M call slots. A slot holds one unary call at a time, sent as a single
 * batch (metadata, message, half-close, and the three receives), so a call
 * costs one completion.
 *
 * Closed loop: a slot starts its next call as soon as the previous one
 * completes (C x M calls outstanding). Open loop (rate > 0): each worker
 * sends on a fixed schedule (its share of the rate); a call that finds no
 * free slot waits for one, and its latency is measured from the time the
 * schedule said it should have been sent, so a slow server cannot hide its
 * queueing (no coordinated omission).
 *
 * Phases: calls started during the warm-up are sent but not counted. Then
 * either a duration (calls started before its end are counted, including
 * the ones that complete after it) or a request count (exactly that many
 * calls are counted, claimed from one atomic counter). Latency is recorded
 * for calls that end with status OK; every call is counted by its status.
 * Throughput = counted calls / (last counted completion - end of warm-up).
 *
 * Threading: hw_drv_create, hw_drv_start, hw_drv_wait (with timeout 0 or
 * more), hw_drv_results and hw_drv_destroy are for one controlling thread;
 * hw_drv_stop and hw_drv_progress may be called from any thread while the
 * workers run.
 */
#ifndef HW_DRIVER_H
#define HW_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/slice.h>

#include "bench/corpus.h"
#include "bench/histogram.h"
#include "bench/mix.h"
#include "bench/requests.h"

/* Status slots: the 17 gRPC codes, then calls the client could not start. */
#define HW_STATUS_CLIENT_ERROR 17
#define HW_STATUS_SLOTS 18

/* "OK", "CANCELLED", ... "UNAUTHENTICATED", "CLIENT_ERROR"; "?" beyond. */
const char *hw_status_name(int slot);

typedef struct hw_drv_config {
    const char *target;   /* "host:port"; not owned */
    unsigned connections; /* C >= 1 */
    unsigned concurrency; /* M >= 1 outstanding calls per connection */
    unsigned threads;     /* T >= 1; more than C is clamped to C */
    double warmup_s;      /* >= 0 */
    double duration_s;    /* > 0 unless requests > 0 */
    uint64_t requests;    /* > 0: count exactly this many calls instead */
    double rate;          /* > 0: open loop at this many calls/s in total */
    unsigned timeout_ms;  /* per-call deadline, > 0 */
    unsigned connect_timeout_ms;
    const hw_mix *mix;           /* not owned */
    const hw_corpus *corpus;     /* not owned */
    const hw_ids *ids;           /* not owned; may be NULL */
    const char *run_id;          /* not owned; prefix of unique ids */
    uint32_t users;              /* Route channel_user_id pool */
    const char *token;           /* not owned; NULL: no authorization */
    const char *tls_ca_file;     /* not owned; non-NULL: TLS trusting these PEM roots */
    const char *tls_server_name; /* not owned; NULL: the target's host */
    const grpc_slice *fixed;     /* not owned; non-NULL: send these bytes as
                                    every request (of hw_mix_first(mix)) */
} hw_drv_config;

typedef struct hw_rpc_stats {
    uint64_t calls;                      /* counted calls, any status */
    uint64_t by_status[HW_STATUS_SLOTS]; /* calls per final status */
    uint64_t bytes_sent;                 /* request message bytes */
    uint64_t bytes_received;             /* reply message bytes */
    hw_hist *latency_ns;                 /* OK calls only; owned */
} hw_rpc_stats;

typedef struct hw_results {
    hw_rpc_stats rpc[HW_RPC_COUNT];
    hw_rpc_stats total;
    double elapsed_s;      /* end of warm-up to the last counted completion */
    uint64_t warmup_calls; /* completed during warm-up, not counted */
    uint64_t late_sends;   /* open loop: sends more than 1 ms behind schedule */
    bool interrupted;      /* hw_drv_stop was called before the end */
} hw_results;

typedef struct hw_drv_progress {
    double since_start_s; /* wall time since hw_drv_start */
    bool warming_up;
    uint64_t counted; /* counted calls completed so far */
    uint64_t errors;  /* counted calls with a status other than OK */
} hw_drv_progress;

typedef struct hw_drv hw_drv;

/* Creates the channels and waits (up to connect_timeout_ms) until every one
 * is connected. Returns 0 with *out set, -EINVAL for a bad config,
 * -ECONNREFUSED when a channel does not become ready, -ENOMEM; on error
 * err (errlen > 0) says why. gRPC must be initialized (grpc_init). */
int hw_drv_create(const hw_drv_config *cfg, hw_drv **out, char *err, size_t errlen);

/* Starts the workers; the warm-up begins now. 0 or -errno. */
int hw_drv_start(hw_drv *d);

/* Asks the workers to stop sending and to cancel calls in flight (the run
 * then counts as interrupted). Thread-safe; async-signal-unsafe. */
void hw_drv_stop(hw_drv *d);

/* A snapshot of the counters, for a progress line. Thread-safe. */
void hw_drv_progress_get(hw_drv *d, hw_drv_progress *out);

/* Waits up to timeout_ms for every worker to finish; true when they have
 * (then joined). */
bool hw_drv_wait(hw_drv *d, unsigned timeout_ms);

/* After hw_drv_wait returned true: merges every worker's statistics into
 * *out (which the caller releases with hw_results_clear). 0 or -ENOMEM. */
int hw_drv_results(hw_drv *d, hw_results *out);

/* Frees the histograms inside results and zeroes it. */
void hw_results_clear(hw_results *r);

/* Stops (if running), joins, and frees everything, channels included. */
void hw_drv_destroy(hw_drv *d);

#endif
