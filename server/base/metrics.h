/*
 * metrics: Prometheus text exposition of helpwired's counters, served on
 * their own port (--metrics ADDR) by libmicrohttpd's own thread.
 *
 * Per-RPC counts by status code and latency histograms are fixed arrays of
 * relaxed atomics indexed by method-table row, so recording costs a few
 * uncontended atomic adds and no lock. Other modules contribute gauges
 * through a collect callback called at scrape time.
 */
#ifndef HW_METRICS_H
#define HW_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct hw_metrics hw_metrics;

/* Creates the registry for n_methods RPCs named by paths[i] (copied).
 * Returns NULL when out of memory. */
hw_metrics *hw_metrics_create(const char *const *paths, size_t n_methods);

/* Stops the HTTP listener if started, then frees. NULL is a no-op. */
void hw_metrics_destroy(hw_metrics *m);

/* Records one finished RPC: method row, gRPC status code, duration.
 * Thread-safe, lock-free. method may be (size_t)-1 for unknown methods. */
void hw_metrics_rpc(hw_metrics *m, size_t method, int code, int64_t duration_ns);

/* Counts a call refused by the in-flight bound. Thread-safe. */
void hw_metrics_shed(hw_metrics *m);

/* Sets the gauge of calls in flight source: fn(arg) is read at scrape. */
void hw_metrics_set_in_flight(hw_metrics *m, int64_t (*fn)(void *arg), void *arg);

/* Adds a collector called at scrape time to append further metric families
 * (text format, with # HELP and # TYPE lines) to out. At most 8. Returns 0
 * or -1 when full. Set before hw_metrics_listen. */
int hw_metrics_add_collector(hw_metrics *m, void (*fn)(void *arg, FILE *out), void *arg);

/* Writes the whole exposition to out. Thread-safe. */
void hw_metrics_render(hw_metrics *m, FILE *out);

/* Serves GET /metrics on addr (as listen.h takes it: "host:port",
 * "[v6]:port", a host name serves every address it stands for; port 0
 * picks one). Returns 0 and the bound port in *port, or -1 with err (a
 * port in use is refused). Call once. */
int hw_metrics_listen(hw_metrics *m, const char *addr, int *port, char *err, size_t errlen);

#endif
