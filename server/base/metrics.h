/*
 * metrics: Prometheus text exposition of helpwired's counters, served on
 * their own port (--metrics ADDR) by libmicrohttpd's own thread.
 *
 * Per-RPC counts (calls started, handled by status code, messages received
 * and sent) and latency histograms are arrays of relaxed atomics indexed by
 * method-table row, one copy per worker thread (each on its own cache
 * lines), summed at scrape time: recording costs a few uncontended atomic
 * adds, no lock and no cache line shared between workers. Other modules
 * contribute gauges through a collect callback called at scrape time.
 *
 * Every exposition ends with the process families (server/base/process.h)
 * and helpwire_build_info.
 */
#ifndef HW_METRICS_H
#define HW_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct hw_metrics hw_metrics;

/* An RPC's kind, as grpc-ecosystem's metrics label it (grpc_type). */
typedef enum {
    HW_RPC_UNARY,         /* "unary" */
    HW_RPC_CLIENT_STREAM, /* "client_stream" */
    HW_RPC_SERVER_STREAM, /* "server_stream" */
    HW_RPC_BIDI_STREAM,   /* "bidi_stream" */
} hw_rpc_type;

/* One row of a server's method table, for hw_metrics_create_server. */
typedef struct hw_metrics_method {
    const char *path; /* "/helpwire.v1.Router/Route" (copied) */
    hw_rpc_type type;
} hw_metrics_method;

/* The label value of t ("unary", ...); "unknown" out of range. */
const char *hw_metrics_rpc_type_name(hw_rpc_type t);

/* The name grpc-go gives status code (codes.Code.String(): "OK",
 * "Canceled", "InvalidArgument", ...), as grpc-ecosystem's grpc_code label
 * carries it; "Unknown" for a code out of range. */
const char *hw_metrics_code_name(int code);

/* Creates a client's registry: n_methods RPCs named by paths[i] (copied),
 * one worker. It renders helpwire_rpc_* but not the grpc_server_*
 * families. Returns NULL when out of memory. */
hw_metrics *hw_metrics_create(const char *const *paths, size_t n_methods);

/* Creates a server's registry: methods[0..n_methods) (copied), counters
 * kept per worker for n_workers workers (>= 1). It also renders the
 * grpc-ecosystem families (grpc_server_started_total, ..._handled_total,
 * ..._msg_received_total, ..._msg_sent_total, ..._handling_seconds).
 * Returns NULL when out of memory or n_workers < 1. */
hw_metrics *hw_metrics_create_server(const hw_metrics_method *methods, size_t n_methods, int n_workers);

/* Stops the HTTP listener if started, then frees. NULL is a no-op. */
void hw_metrics_destroy(hw_metrics *m);

/* Recording. All thread-safe and lock-free, m NULL is a no-op. worker is
 * the recording worker's index (a counter written from another thread is
 * still right, merely shares that worker's cache line; out of range counts
 * on worker 0). method is the method-table row; (size_t)-1 or any row past
 * the table counts on the single "unknown method" row (a path the table
 * does not have: its labels are not taken from the client, so a client
 * cannot make new series). */

/* A call arrived (before any check: every call started is handled once). */
void hw_metrics_started(hw_metrics *m, int worker, size_t method);
/* A request message arrived (the unary request, or one of a stream's). */
void hw_metrics_msg_received(hw_metrics *m, int worker, size_t method);
/* A reply message went out (a unary reply, or one of a stream's). */
void hw_metrics_msg_sent(hw_metrics *m, int worker, size_t method);
/* A call ended with gRPC status code after duration_ns since it started. */
void hw_metrics_handled(hw_metrics *m, int worker, size_t method, int code, int64_t duration_ns);

/* hw_metrics_handled on worker 0 (clients: one thread records). */
void hw_metrics_rpc(hw_metrics *m, size_t method, int code, int64_t duration_ns);

/* Counts a call refused by the in-flight bound. Thread-safe. */
void hw_metrics_shed(hw_metrics *m);

/* Counts a request message refused for its size (--max-message-bytes).
 * Thread-safe. */
void hw_metrics_oversize(hw_metrics *m);

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
