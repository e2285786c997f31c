/*
 * metrics: fixed-bucket histograms (the Prometheus convention: cumulative
 * `le` buckets, _sum, _count) over relaxed atomics, one set per worker
 * summed at scrape; text rendered into a memory stream per scrape. The
 * helpwire_rpc_* and grpc_server_* families are two views of the same
 * counts, so a call costs the same whichever is read. libmicrohttpd runs
 * the listener on its own thread.
 */
#include "server/base/metrics.h"

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/base/build_info.h"
#include "server/base/listen.h"
#include "server/base/process.h"

#define N_CODES 17
#define N_COLLECTORS 8
#define CACHE_LINE 64

/* helpwire_rpc_duration_seconds' buckets. The grpc-ecosystem histogram's
 * (Prometheus' default buckets, .005 to 10) are these from
 * index ECO_FIRST on: it is rendered from the same counts, its first bucket
 * (cumulative, as every bucket) taking in the finer ones below it. */
static const double bucket_seconds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                        0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
#define N_BUCKETS (sizeof bucket_seconds / sizeof bucket_seconds[0])
#define ECO_FIRST 5 /* index of 0.005 */

static const char *const code_names[N_CODES] = {
    "OK",        "CANCELLED",       "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS",  "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",    "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED",
};

/* grpc-go's codes.Code.String(), which go-grpc-prometheus puts in grpc_code. */
static const char *const go_code_names[N_CODES] = {
    "OK",       "Canceled",        "Unknown",          "InvalidArgument",   "DeadlineExceeded",
    "NotFound", "AlreadyExists",   "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
    "Aborted",  "OutOfRange",      "Unimplemented",    "Internal",          "Unavailable",
    "DataLoss", "Unauthenticated",
};

static const char *const type_names[] = {"unary", "client_stream", "server_stream", "bidi_stream"};

/* One method's counters on one worker. */
typedef struct {
    atomic_uint_fast64_t started, received, sent;
    atomic_uint_fast64_t codes[N_CODES];
    atomic_uint_fast64_t buckets[N_BUCKETS + 1]; /* non-cumulative; last = +Inf */
    atomic_uint_fast64_t sum_ns;
} method_stats;

/* A method's counters summed over the workers. */
typedef struct {
    uint64_t started, received, sent, codes[N_CODES], buckets[N_BUCKETS + 1], sum_ns;
} method_sums;

typedef struct {
    char *path;
    char *service; /* "helpwire.v1.Router" */
    char *method;  /* "Route" */
    hw_rpc_type type;
} method_info;

struct hw_metrics {
    method_info *info; /* n + 1: the last row is "unknown method" */
    size_t n;
    bool server; /* renders the grpc_server_* families */
    /* shards[w] is worker w's n + 1 rows, cache-line aligned so that no
     * line is shared between workers. */
    method_stats **shards;
    int n_shards;
    atomic_uint_fast64_t shed, oversize;
    int64_t (*in_flight)(void *);
    void *in_flight_arg;
    struct {
        void (*fn)(void *, FILE *);
        void *arg;
    } collectors[N_COLLECTORS];
    size_t n_collectors;
    struct MHD_Daemon *httpd[HW_LISTEN_MAX]; /* one per address the listener stands for */
};

const char *hw_metrics_rpc_type_name(hw_rpc_type t)
{
    return (unsigned)t < sizeof type_names / sizeof type_names[0] ? type_names[t] : "unknown";
}

const char *hw_metrics_code_name(int code)
{
    return (unsigned)code < N_CODES ? go_code_names[code] : "Unknown";
}

/* "/helpwire.v1.Router/Route" -> service "helpwire.v1.Router", method "Route". */
static int split_path(method_info *mi)
{
    const char *p = mi->path[0] == '/' ? mi->path + 1 : mi->path;
    const char *slash = strchr(p, '/');
    mi->service = slash ? strndup(p, (size_t)(slash - p)) : strdup(p);
    mi->method = strdup(slash ? slash + 1 : "");
    return mi->service && mi->method ? 0 : -1;
}

static hw_metrics *create(const hw_metrics_method *methods, const char *const *paths, size_t n, int n_workers,
                          bool server)
{
    if (n_workers < 1)
        return NULL;
    hw_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->n = n;
    m->server = server;
    m->info = calloc(n + 1, sizeof *m->info);
    m->shards = calloc((size_t)n_workers, sizeof *m->shards);
    if (!m->info || !m->shards)
        goto fail;
    for (size_t i = 0; i <= n; i++) {
        method_info *mi = &m->info[i];
        if (i < n) {
            mi->path = strdup(methods ? methods[i].path : paths[i]);
            mi->type = methods ? methods[i].type : HW_RPC_UNARY;
        } else {
            mi->path = strdup("unknown");
            mi->type = (hw_rpc_type)-1; /* renders "unknown" */
        }
        if (!mi->path)
            goto fail;
        if (i == n) {
            mi->service = strdup("unknown");
            mi->method = strdup("unknown");
            if (!mi->service || !mi->method)
                goto fail;
        } else if (split_path(mi) != 0) {
            goto fail;
        }
    }
    size_t bytes = (n + 1) * sizeof(method_stats);
    bytes = (bytes + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
    for (int w = 0; w < n_workers; w++) {
        m->shards[w] = aligned_alloc(CACHE_LINE, bytes);
        if (!m->shards[w])
            goto fail;
        m->n_shards = w + 1;
        memset(m->shards[w], 0, bytes); /* all-zero bits are a zero atomic on every target we build for */
    }
    return m;
fail:
    hw_metrics_destroy(m);
    return NULL;
}

hw_metrics *hw_metrics_create(const char *const *paths, size_t n)
{
    return create(NULL, paths, n, 1, false);
}

hw_metrics *hw_metrics_create_server(const hw_metrics_method *methods, size_t n, int n_workers)
{
    return create(methods, NULL, n, n_workers, true);
}

void hw_metrics_destroy(hw_metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < HW_LISTEN_MAX; i++)
        if (m->httpd[i])
            MHD_stop_daemon(m->httpd[i]);
    if (m->info)
        for (size_t i = 0; i <= m->n; i++) {
            free(m->info[i].path);
            free(m->info[i].service);
            free(m->info[i].method);
        }
    free(m->info);
    if (m->shards)
        for (int w = 0; w < m->n_shards; w++)
            free(m->shards[w]);
    free(m->shards);
    free(m);
}

static method_stats *row(hw_metrics *m, int worker, size_t method)
{
    return &m->shards[(unsigned)worker < (unsigned)m->n_shards ? worker : 0][method < m->n ? method : m->n];
}

static void bump(atomic_uint_fast64_t *c, uint64_t by)
{
    atomic_fetch_add_explicit(c, by, memory_order_relaxed);
}

void hw_metrics_started(hw_metrics *m, int worker, size_t method)
{
    if (m)
        bump(&row(m, worker, method)->started, 1);
}

void hw_metrics_msg_received(hw_metrics *m, int worker, size_t method)
{
    if (m)
        bump(&row(m, worker, method)->received, 1);
}

void hw_metrics_msg_sent(hw_metrics *m, int worker, size_t method)
{
    if (m)
        bump(&row(m, worker, method)->sent, 1);
}

void hw_metrics_handled(hw_metrics *m, int worker, size_t method, int code, int64_t duration_ns)
{
    if (!m)
        return;
    method_stats *s = row(m, worker, method);
    bump(&s->codes[(unsigned)code < N_CODES ? code : 2], 1);
    double secs = (double)duration_ns / 1e9;
    size_t b = 0;
    while (b < N_BUCKETS && secs > bucket_seconds[b])
        b++;
    bump(&s->buckets[b], 1);
    bump(&s->sum_ns, (uint64_t)(duration_ns > 0 ? duration_ns : 0));
}

void hw_metrics_rpc(hw_metrics *m, size_t method, int code, int64_t duration_ns)
{
    hw_metrics_handled(m, 0, method, code, duration_ns);
}

void hw_metrics_shed(hw_metrics *m)
{
    if (m)
        bump(&m->shed, 1);
}

void hw_metrics_oversize(hw_metrics *m)
{
    if (m)
        bump(&m->oversize, 1);
}

void hw_metrics_set_in_flight(hw_metrics *m, int64_t (*fn)(void *), void *arg)
{
    m->in_flight = fn;
    m->in_flight_arg = arg;
}

int hw_metrics_add_collector(hw_metrics *m, void (*fn)(void *, FILE *), void *arg)
{
    if (m->n_collectors == N_COLLECTORS)
        return -1;
    m->collectors[m->n_collectors].fn = fn;
    m->collectors[m->n_collectors].arg = arg;
    m->n_collectors++;
    return 0;
}

static uint64_t load(atomic_uint_fast64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* Sums method i over the workers. Not a snapshot: a scrape racing with
 * calls may count a call's start and not yet its end. */
static void sum_method(hw_metrics *m, size_t i, method_sums *out)
{
    memset(out, 0, sizeof *out);
    for (int w = 0; w < m->n_shards; w++) {
        method_stats *s = &m->shards[w][i];
        out->started += load(&s->started);
        out->received += load(&s->received);
        out->sent += load(&s->sent);
        for (int c = 0; c < N_CODES; c++)
            out->codes[c] += load(&s->codes[c]);
        for (size_t b = 0; b <= N_BUCKETS; b++)
            out->buckets[b] += load(&s->buckets[b]);
        out->sum_ns += load(&s->sum_ns);
    }
}

static uint64_t handled_of(const method_sums *s)
{
    uint64_t t = 0;
    for (size_t b = 0; b <= N_BUCKETS; b++)
        t += s->buckets[b];
    return t;
}

static void render_helpwire_rpc(hw_metrics *m, const method_sums *sums, FILE *out)
{
    fprintf(out, "# HELP helpwire_rpc_requests_total RPCs handled, by method and gRPC status code.\n"
                 "# TYPE helpwire_rpc_requests_total counter\n");
    for (size_t i = 0; i <= m->n; i++) {
        const char *svc = m->info[i].service, *meth = i < m->n ? m->info[i].method : "";
        for (int c = 0; c < N_CODES; c++)
            if (sums[i].codes[c])
                fprintf(out, "helpwire_rpc_requests_total{service=\"%s\",method=\"%s\",code=\"%s\"} %llu\n",
                        svc, meth, code_names[c], (unsigned long long)sums[i].codes[c]);
    }
    fprintf(out, "# HELP helpwire_rpc_duration_seconds Time from a call's arrival to its status.\n"
                 "# TYPE helpwire_rpc_duration_seconds histogram\n");
    for (size_t i = 0; i <= m->n; i++) {
        const method_sums *s = &sums[i];
        uint64_t total = handled_of(s), cum = 0;
        if (!total)
            continue;
        const char *svc = m->info[i].service, *meth = i < m->n ? m->info[i].method : "";
        for (size_t b = 0; b < N_BUCKETS; b++) {
            cum += s->buckets[b];
            fprintf(out,
                    "helpwire_rpc_duration_seconds_bucket{service=\"%s\",method=\"%s\",le=\"%g\"} %llu\n",
                    svc, meth, bucket_seconds[b], (unsigned long long)cum);
        }
        fprintf(out, "helpwire_rpc_duration_seconds_bucket{service=\"%s\",method=\"%s\",le=\"+Inf\"} %llu\n",
                svc, meth, (unsigned long long)total);
        fprintf(out, "helpwire_rpc_duration_seconds_sum{service=\"%s\",method=\"%s\"} %.9f\n", svc, meth,
                (double)s->sum_ns / 1e9);
        fprintf(out, "helpwire_rpc_duration_seconds_count{service=\"%s\",method=\"%s\"} %llu\n", svc, meth,
                (unsigned long long)total);
    }
}

/* The grpc-ecosystem families, as go-grpc-prometheus names and explains
 * them. Every method of the table has its started and message counters
 * (0 included, so rates exist from the first scrape); handled and the
 * histogram appear once a method has ended a call; the unknown-method row
 * once a call came for one. */
static void render_grpc_server(hw_metrics *m, const method_sums *sums, FILE *out)
{
    static const struct {
        const char *name, *help;
        size_t offset;
    } counters[] = {
        {"grpc_server_started_total", "Total number of RPCs started on the server.",
         offsetof(method_sums, started)},
        {"grpc_server_msg_received_total", "Total number of RPC stream messages received on the server.",
         offsetof(method_sums, received)},
        {"grpc_server_msg_sent_total", "Total number of gRPC stream messages sent by the server.",
         offsetof(method_sums, sent)},
    };
    for (size_t k = 0; k < sizeof counters / sizeof counters[0]; k++) {
        fprintf(out, "# HELP %s %s\n# TYPE %s counter\n", counters[k].name, counters[k].help,
                counters[k].name);
        for (size_t i = 0; i <= m->n; i++) {
            uint64_t v = *(const uint64_t *)((const char *)&sums[i] + counters[k].offset);
            if (i == m->n && !sums[i].started)
                continue;
            fprintf(out, "%s{grpc_service=\"%s\",grpc_method=\"%s\",grpc_type=\"%s\"} %llu\n",
                    counters[k].name, m->info[i].service, m->info[i].method,
                    hw_metrics_rpc_type_name(m->info[i].type), (unsigned long long)v);
        }
    }
    fprintf(out,
            "# HELP grpc_server_handled_total Total number of RPCs completed on the server, regardless of "
            "success or failure.\n"
            "# TYPE grpc_server_handled_total counter\n");
    for (size_t i = 0; i <= m->n; i++)
        for (int c = 0; c < N_CODES; c++)
            if (sums[i].codes[c])
                fprintf(out,
                        "grpc_server_handled_total{grpc_service=\"%s\",grpc_method=\"%s\",grpc_type=\"%s\","
                        "grpc_code=\"%s\"} %llu\n",
                        m->info[i].service, m->info[i].method, hw_metrics_rpc_type_name(m->info[i].type),
                        go_code_names[c], (unsigned long long)sums[i].codes[c]);
    fprintf(out,
            "# HELP grpc_server_handling_seconds Histogram of response latency (seconds) of gRPC that had "
            "been application-level handled by the server.\n"
            "# TYPE grpc_server_handling_seconds histogram\n");
    for (size_t i = 0; i <= m->n; i++) {
        const method_sums *s = &sums[i];
        uint64_t total = handled_of(s), cum = 0;
        if (!total)
            continue;
        const method_info *mi = &m->info[i];
        const char *type = hw_metrics_rpc_type_name(mi->type);
        for (size_t b = 0; b < N_BUCKETS; b++) {
            cum += s->buckets[b];
            if (b >= ECO_FIRST)
                fprintf(out,
                        "grpc_server_handling_seconds_bucket{grpc_service=\"%s\",grpc_method=\"%s\","
                        "grpc_type=\"%s\",le=\"%g\"} %llu\n",
                        mi->service, mi->method, type, bucket_seconds[b], (unsigned long long)cum);
        }
        fprintf(out,
                "grpc_server_handling_seconds_bucket{grpc_service=\"%s\",grpc_method=\"%s\",grpc_type=\"%s\","
                "le=\"+Inf\"} %llu\n",
                mi->service, mi->method, type, (unsigned long long)total);
        fprintf(out,
                "grpc_server_handling_seconds_sum{grpc_service=\"%s\",grpc_method=\"%s\",grpc_type=\"%s\"} "
                "%.9f\n",
                mi->service, mi->method, type, (double)s->sum_ns / 1e9);
        fprintf(out,
                "grpc_server_handling_seconds_count{grpc_service=\"%s\",grpc_method=\"%s\",grpc_type=\"%s\"} "
                "%llu\n",
                mi->service, mi->method, type, (unsigned long long)total);
    }
}

void hw_metrics_render(hw_metrics *m, FILE *out)
{
    method_sums *sums = calloc(m->n + 1, sizeof *sums);
    if (sums) {
        for (size_t i = 0; i <= m->n; i++)
            sum_method(m, i, &sums[i]);
        render_helpwire_rpc(m, sums, out);
        if (m->server)
            render_grpc_server(m, sums, out);
        free(sums);
    }
    fprintf(out,
            "# HELP helpwire_calls_shed_total Calls refused with RESOURCE_EXHAUSTED by the in-flight bound.\n"
            "# TYPE helpwire_calls_shed_total counter\n"
            "helpwire_calls_shed_total %llu\n",
            (unsigned long long)load(&m->shed));
    if (m->server)
        fprintf(
            out,
            "# HELP helpwire_requests_oversize_total Request messages refused with RESOURCE_EXHAUSTED for "
            "exceeding --max-message-bytes.\n"
            "# TYPE helpwire_requests_oversize_total counter\n"
            "helpwire_requests_oversize_total %llu\n",
            (unsigned long long)load(&m->oversize));
    if (m->in_flight)
        fprintf(out,
                "# HELP helpwire_calls_in_flight Calls accepted and not yet finished.\n"
                "# TYPE helpwire_calls_in_flight gauge\n"
                "helpwire_calls_in_flight %lld\n",
                (long long)m->in_flight(m->in_flight_arg));
    for (size_t i = 0; i < m->n_collectors; i++)
        m->collectors[i].fn(m->collectors[i].arg, out);
    hw_process_render(out);
    hw_build_info_render(out);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size,
                                  void **con_cls)
{
    hw_metrics *m = cls;
    struct MHD_Response *resp;
    enum MHD_Result ret;
    if (strcmp(method, "GET") != 0 || (strcmp(url, "/metrics") != 0 && strcmp(url, "/") != 0)) {
        static const char msg[] = "not found: GET /metrics\n";
        resp = MHD_create_response_from_buffer(sizeof msg - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
        ret = MHD_queue_response(conn, MHD_HTTP_NOT_FOUND, resp);
        MHD_destroy_response(resp);
        return ret;
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (!out)
        return MHD_NO;
    hw_metrics_render(m, out);
    fclose(out);
    resp = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

int hw_metrics_listen(hw_metrics *m, const char *addr, int *port, char *err, size_t errlen)
{
    hw_listen_set set;
    char why[300];
    if (hw_listen_open(addr, &set, why, sizeof why) != 0) {
        snprintf(err, errlen, "--metrics: %s", why);
        return -1;
    }
    for (size_t i = 0; i < set.n; i++) {
        /* The daemon owns its socket from here (MHD_stop_daemon closes it). */
        m->httpd[i] =
            MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request,
                             m, MHD_OPTION_LISTEN_SOCKET, set.fds[i], MHD_OPTION_CONNECTION_LIMIT, 64U,
                             MHD_OPTION_CONNECTION_TIMEOUT, 10U, MHD_OPTION_END);
        if (!m->httpd[i]) {
            for (size_t k = i; k < set.n; k++)
                close(set.fds[k]);
            snprintf(err, errlen, "--metrics: cannot serve metrics on %s: the HTTP server did not start",
                     addr);
            return -1;
        }
    }
    *port = set.port;
    return 0;
}
