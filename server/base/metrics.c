/*
 * metrics: fixed-bucket histograms (the Prometheus convention: cumulative
 * `le` buckets, _sum, _count) over relaxed atomics; text rendered into a
 * memory stream per scrape. libmicrohttpd runs the listener on its own
 * thread.
 */
#include "server/base/metrics.h"

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/base/listen.h"

#define N_CODES 17
#define N_COLLECTORS 8

static const double bucket_seconds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                        0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
#define N_BUCKETS (sizeof bucket_seconds / sizeof bucket_seconds[0])

static const char *const code_names[N_CODES] = {
    "OK",        "CANCELLED",       "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS",  "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",    "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED",
};

typedef struct {
    char *path;
    atomic_uint_fast64_t codes[N_CODES];
    atomic_uint_fast64_t buckets[N_BUCKETS + 1]; /* non-cumulative; last = +Inf */
    atomic_uint_fast64_t sum_ns;
} method_stats;

struct hw_metrics {
    method_stats *methods; /* n + 1: the last row is "unknown method" */
    size_t n;
    atomic_uint_fast64_t shed;
    int64_t (*in_flight)(void *);
    void *in_flight_arg;
    struct {
        void (*fn)(void *, FILE *);
        void *arg;
    } collectors[N_COLLECTORS];
    size_t n_collectors;
    struct MHD_Daemon *httpd[HW_LISTEN_MAX]; /* one per address the listener stands for */
};

hw_metrics *hw_metrics_create(const char *const *paths, size_t n)
{
    hw_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->methods = calloc(n + 1, sizeof *m->methods);
    if (!m->methods)
        goto fail;
    m->n = n;
    for (size_t i = 0; i <= n; i++) {
        m->methods[i].path = strdup(i < n ? paths[i] : "unknown");
        if (!m->methods[i].path)
            goto fail;
    }
    return m;
fail:
    hw_metrics_destroy(m);
    return NULL;
}

void hw_metrics_destroy(hw_metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < HW_LISTEN_MAX; i++)
        if (m->httpd[i])
            MHD_stop_daemon(m->httpd[i]);
    if (m->methods)
        for (size_t i = 0; i <= m->n; i++)
            free(m->methods[i].path);
    free(m->methods);
    free(m);
}

void hw_metrics_rpc(hw_metrics *m, size_t method, int code, int64_t duration_ns)
{
    if (!m)
        return;
    method_stats *s = &m->methods[method < m->n ? method : m->n];
    atomic_fetch_add_explicit(&s->codes[(unsigned)code < N_CODES ? code : 2], 1, memory_order_relaxed);
    double secs = (double)duration_ns / 1e9;
    size_t b = 0;
    while (b < N_BUCKETS && secs > bucket_seconds[b])
        b++;
    atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->sum_ns, (uint64_t)(duration_ns > 0 ? duration_ns : 0),
                              memory_order_relaxed);
}

void hw_metrics_shed(hw_metrics *m)
{
    if (m)
        atomic_fetch_add_explicit(&m->shed, 1, memory_order_relaxed);
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

/* "/helpwire.v1.Router/Route" -> service "helpwire.v1.Router", method "Route". */
static void split_path(const char *path, char *svc, size_t ns, char *meth, size_t nm)
{
    const char *p = path[0] == '/' ? path + 1 : path;
    const char *slash = strchr(p, '/');
    if (!slash) {
        snprintf(svc, ns, "%s", p);
        snprintf(meth, nm, "%s", "");
        return;
    }
    snprintf(svc, ns, "%.*s", (int)(slash - p), p);
    snprintf(meth, nm, "%s", slash + 1);
}

void hw_metrics_render(hw_metrics *m, FILE *out)
{
    char svc[200], meth[100];
    fprintf(out, "# HELP helpwire_rpc_requests_total RPCs handled, by method and gRPC status code.\n"
                 "# TYPE helpwire_rpc_requests_total counter\n");
    for (size_t i = 0; i <= m->n; i++) {
        split_path(m->methods[i].path, svc, sizeof svc, meth, sizeof meth);
        for (int c = 0; c < N_CODES; c++) {
            uint64_t v = atomic_load_explicit(&m->methods[i].codes[c], memory_order_relaxed);
            if (v)
                fprintf(out, "helpwire_rpc_requests_total{service=\"%s\",method=\"%s\",code=\"%s\"} %llu\n",
                        svc, meth, code_names[c], (unsigned long long)v);
        }
    }
    fprintf(out, "# HELP helpwire_rpc_duration_seconds Time from a call's arrival to its status.\n"
                 "# TYPE helpwire_rpc_duration_seconds histogram\n");
    for (size_t i = 0; i <= m->n; i++) {
        method_stats *s = &m->methods[i];
        uint64_t cum = 0, counts[N_BUCKETS + 1];
        for (size_t b = 0; b <= N_BUCKETS; b++)
            counts[b] = atomic_load_explicit(&s->buckets[b], memory_order_relaxed);
        uint64_t total = 0;
        for (size_t b = 0; b <= N_BUCKETS; b++)
            total += counts[b];
        if (!total)
            continue;
        split_path(s->path, svc, sizeof svc, meth, sizeof meth);
        for (size_t b = 0; b < N_BUCKETS; b++) {
            cum += counts[b];
            fprintf(out,
                    "helpwire_rpc_duration_seconds_bucket{service=\"%s\",method=\"%s\",le=\"%g\"} %llu\n",
                    svc, meth, bucket_seconds[b], (unsigned long long)cum);
        }
        fprintf(out, "helpwire_rpc_duration_seconds_bucket{service=\"%s\",method=\"%s\",le=\"+Inf\"} %llu\n",
                svc, meth, (unsigned long long)total);
        fprintf(out, "helpwire_rpc_duration_seconds_sum{service=\"%s\",method=\"%s\"} %.9f\n", svc, meth,
                (double)atomic_load_explicit(&s->sum_ns, memory_order_relaxed) / 1e9);
        fprintf(out, "helpwire_rpc_duration_seconds_count{service=\"%s\",method=\"%s\"} %llu\n", svc, meth,
                (unsigned long long)total);
    }
    fprintf(out,
            "# HELP helpwire_calls_shed_total Calls refused with RESOURCE_EXHAUSTED by the in-flight bound.\n"
            "# TYPE helpwire_calls_shed_total counter\n"
            "helpwire_calls_shed_total %llu\n",
            (unsigned long long)atomic_load_explicit(&m->shed, memory_order_relaxed));
    if (m->in_flight)
        fprintf(out,
                "# HELP helpwire_calls_in_flight Calls accepted and not yet finished.\n"
                "# TYPE helpwire_calls_in_flight gauge\n"
                "helpwire_calls_in_flight %lld\n",
                (long long)m->in_flight(m->in_flight_arg));
    for (size_t i = 0; i < m->n_collectors; i++)
        m->collectors[i].fn(m->collectors[i].arg, out);
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
