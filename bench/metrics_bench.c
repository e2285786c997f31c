/*
 * metrics_bench: what the net layer's per-call metrics cost, measured
 * outside the server so the figure is not lost in a call's own noise. Each
 * thread records N unary calls on its own worker the way net.c does
 * (started, message received, message sent, handled with a duration) and
 * the time per call is printed, beside the handled-only recording that
 * was all a call cost before the grpc-ecosystem families, and with every
 * thread on worker 0 (one shared set of counters, as before per-worker
 * counters). A scrape runs every 10 ms meanwhile.
 *
 *   bazel run -c opt //bench:metrics_bench -- [threads] [calls per thread]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "server/base/metrics.h"

#define N_METHODS 64

typedef struct {
    hw_metrics *m;
    int worker;
    long calls;
    int mode; /* 0: full recording, 1: handled only */
} job;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *run(void *arg)
{
    job *j = arg;
    for (long i = 0; i < j->calls; i++) {
        size_t method = (size_t)(i % N_METHODS);
        if (j->mode == 0) {
            hw_metrics_started(j->m, j->worker, method);
            hw_metrics_msg_received(j->m, j->worker, method);
            hw_metrics_msg_sent(j->m, j->worker, method);
        }
        hw_metrics_handled(j->m, j->worker, method, 0, 40000 + (int64_t)(i & 1023) * 100);
    }
    return NULL;
}

static atomic_bool stop;

static void *scraper(void *arg)
{
    hw_metrics *m = arg;
    FILE *null = fopen("/dev/null", "w");
    while (!atomic_load(&stop) && null) {
        hw_metrics_render(m, null);
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (null)
        fclose(null);
    return NULL;
}

static double measure(int threads, long calls, int mode, int shared)
{
    hw_metrics_method rows[N_METHODS];
    char names[N_METHODS][48];
    for (int i = 0; i < N_METHODS; i++) {
        snprintf(names[i], sizeof names[i], "/bench.v1.Svc/Method%d", i);
        rows[i] = (hw_metrics_method){names[i], HW_RPC_UNARY};
    }
    hw_metrics *m = hw_metrics_create_server(rows, N_METHODS, threads);
    if (!m) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    pthread_t th[64], scr;
    job jobs[64];
    atomic_store(&stop, false);
    pthread_create(&scr, NULL, scraper, m);
    int64_t t0 = now_ns();
    for (int i = 0; i < threads; i++) {
        jobs[i] = (job){m, shared ? 0 : i, calls, mode};
        pthread_create(&th[i], NULL, run, &jobs[i]);
    }
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    int64_t dt = now_ns() - t0;
    atomic_store(&stop, true);
    pthread_join(scr, NULL);
    hw_metrics_destroy(m);
    return (double)dt / (double)calls; /* wall time per call on each thread */
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    long calls = argc > 2 ? atol(argv[2]) : 5000000;
    if (threads < 1 || threads > 64 || calls < 1) {
        fprintf(stderr, "usage: metrics_bench [threads 1..64] [calls per thread]\n");
        return 2;
    }
    /* The best of 5 rounds of each, interleaved: the machine may be busy. */
    static const char *const names[] = {"handled only (before)", "full, per-worker counters",
                                        "full, one shared set of counters"};
    double best[3] = {1e18, 1e18, 1e18};
    for (int round = 0; round < 5; round++)
        for (int k = 0; k < 3; k++) {
            double ns = measure(threads, calls, k == 0 ? 1 : 0, k == 2);
            if (ns < best[k])
                best[k] = ns;
        }
    printf("threads=%d calls_per_thread=%ld (best of 5)\n", threads, calls);
    for (int k = 0; k < 3; k++)
        printf("%-34s %6.1f ns/call\n", names[k], best[k]);
    return 0;
}
