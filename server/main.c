/*
 * helpwired: parses the settings, opens the data directory, starts the
 * gRPC worker pool, reports SERVING, and waits for SIGTERM/SIGINT to drain.
 * Signals are blocked in every thread and taken here with sigwait, so no
 * handler runs in signal context.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "server/app.h"
#include "server/config.h"
#include "server/health.h"
#include "server/log.h"
#include "server/methods.h"
#include "server/metrics.h"
#include "server/net.h"

/* mkdir -p for the data directory, then checks it is a writable directory.
 * Returns 0 or -1 with err. */
static int prepare_data_dir(const char *dir, char *err, size_t errlen)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) {
        snprintf(err, errlen, "data directory path is too long");
        return -1;
    }
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create data directory %s: %s", path, strerror(errno));
            return -1;
        }
        *p = '/';
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create data directory %s: %s", dir, strerror(errno));
        return -1;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "data directory %s is not a directory", dir);
        return -1;
    }
    if (access(dir, R_OK | W_OK | X_OK) != 0) {
        snprintf(err, errlen, "data directory %s is not writable: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* Reads a whole (small) file into a NUL-terminated malloc'd string, or
 * returns NULL with err. */
static char *read_text_file(const char *flag, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    if (!f) {
        snprintf(err, errlen, "%s %s: %s", flag, path, strerror(errno));
        return NULL;
    }
    buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    if (buf && ferror(f)) {
        snprintf(err, errlen, "%s %s: %s", flag, path, strerror(errno));
        free(buf);
        buf = NULL;
    } else if (buf) {
        buf[n] = '\0';
    } else {
        snprintf(err, errlen, "out of memory");
    }
    fclose(f);
    return buf;
}

static int64_t in_flight_of(void *net) { return hw_net_calls_in_flight(net); }

static int default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

int main(int argc, char **argv)
{
    char err[512];
    int rc = 1;
    hw_config cfg;
    hw_log *log = NULL;
    hw_health *health = NULL;
    hw_net *net = NULL;
    hw_metrics *metrics = NULL;
    char *tls_cert = NULL, *tls_key = NULL, *tls_ca = NULL;
    hw_app app = {0};

    hw_config_defaults(&cfg);
    int parsed = hw_config_parse(&cfg, argc, argv, stdout, err, sizeof err);
    if (parsed == 1)
        return 0;
    if (parsed < 0) {
        fprintf(stderr, "helpwired: %s\n", err);
        hw_config_free(&cfg);
        return 2;
    }
    if (prepare_data_dir(cfg.data_dir, err, sizeof err) != 0) {
        fprintf(stderr, "helpwired: %s\n", err);
        hw_config_free(&cfg);
        return 1;
    }

    /* Block the signals we wait for before any thread (gRPC's too) starts. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    log = hw_log_create(STDERR_FILENO, (hw_log_level)hw_log_level_parse(cfg.log_level), cfg.access_log);
    size_t n_methods;
    const hw_method *methods = hw_methods(&n_methods);
    health = hw_health_create(methods, n_methods);
    if (!log || !health) {
        fprintf(stderr, "helpwired: out of memory\n");
        goto out;
    }
    app.log = log;
    app.health = health;

    const char *paths[256];
    for (size_t i = 0; i < n_methods && i < 256; i++)
        paths[i] = methods[i].path;
    metrics = hw_metrics_create(paths, n_methods < 256 ? n_methods : 256);
    if (!metrics) {
        fprintf(stderr, "helpwired: out of memory\n");
        goto out;
    }
    if (cfg.tls_cert && (!(tls_cert = read_text_file("--tls-cert", cfg.tls_cert, err, sizeof err)) ||
                         !(tls_key = read_text_file("--tls-key", cfg.tls_key, err, sizeof err)) ||
                         (cfg.tls_client_ca &&
                          !(tls_ca = read_text_file("--tls-client-ca", cfg.tls_client_ca, err, sizeof err))))) {
        fprintf(stderr, "helpwired: %s\n", err);
        goto out;
    }

    int threads = cfg.threads > 0 ? (int)cfg.threads : default_threads();
    hw_net_options no = {
        .listen = cfg.listen,
        .n_listen = cfg.n_listen,
        .tls_listen = cfg.tls_listen,
        .n_tls_listen = cfg.n_tls_listen,
        .tls_cert_pem = tls_cert,
        .tls_key_pem = tls_key,
        .tls_client_ca_pem = tls_ca,
        .max_in_flight = (int)cfg.max_in_flight,
        .metrics = metrics,
        .threads = threads,
        .calls_per_method = (int)cfg.calls_per_method,
        .max_message_bytes = (int)cfg.max_message_bytes,
        .max_concurrent_streams = (int)cfg.max_concurrent_streams,
        .keepalive_time_ms = (int)cfg.keepalive_time_ms,
        .keepalive_timeout_ms = (int)cfg.keepalive_timeout_ms,
        .min_ping_interval_ms = (int)cfg.min_ping_interval_ms,
        .methods = methods,
        .n_methods = n_methods,
        .app = &app,
        .log = log,
    };
    if (hw_net_create(&net, &no, err, sizeof err) != 0) {
        fprintf(stderr, "helpwired: %s\n", err);
        goto out;
    }
    app.net = net;
    hw_metrics_set_in_flight(metrics, in_flight_of, net);
    if (cfg.metrics_addr) {
        int port;
        if (hw_metrics_listen(metrics, cfg.metrics_addr, &port, err, sizeof err) != 0) {
            fprintf(stderr, "helpwired: %s\n", err);
            goto out;
        }
        const char *colon = strrchr(cfg.metrics_addr, ':');
        printf("helpwired metrics on http://%.*s:%d/metrics\n", (int)(colon - cfg.metrics_addr), cfg.metrics_addr,
               port);
        hw_log_event(log, HW_LOG_INFO, "metrics", "addr=%.*s:%d", (int)(colon - cfg.metrics_addr), cfg.metrics_addr,
                     port);
    }
    if (hw_net_start(net, err, sizeof err) != 0) {
        fprintf(stderr, "helpwired: %s\n", err);
        goto out;
    }
    hw_health_set(health, NULL, HW_HEALTH_SERVING);
    for (size_t i = 0; i < cfg.n_listen + cfg.n_tls_listen; i++) {
        const char *addr = hw_net_bound_address(net, i);
        bool tls = i >= cfg.n_listen;
        hw_log_event(log, HW_LOG_INFO, "listening", "addr=%s tls=%s threads=%d data=%s", addr,
                     tls ? "true" : "false", threads, cfg.data_dir);
        printf("helpwired listening on %s%s\n", addr, tls ? " (tls)" : "");
    }
    printf("try: /usr/bin/python3 tests/integration/hwcall.py %s grpc.health.v1.Health/Check '{}'\n",
           hw_net_bound_address(net, 0));
    fflush(stdout);

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0) {
    }
    hw_log_event(log, HW_LOG_INFO, "draining", "signal=%s in_flight=%lld grace_ms=%lld timeout_ms=%lld",
                 sig == SIGTERM ? "SIGTERM" : "SIGINT", (long long)hw_net_calls_in_flight(net),
                 (long long)cfg.drain_grace_ms, (long long)cfg.drain_timeout_ms);
    hw_net_begin_drain(net);
    hw_health_set(health, NULL, HW_HEALTH_NOT_SERVING);
    if (cfg.drain_grace_ms > 0) {
        struct timespec ts = {cfg.drain_grace_ms / 1000, (cfg.drain_grace_ms % 1000) * 1000000};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
    }
    int cancelled = hw_net_shutdown(net, cfg.drain_timeout_ms);
    hw_log_event(log, HW_LOG_INFO, "stopped", "cancelled_calls=%s", cancelled ? "true" : "false");
    rc = 0;
out:
    hw_net_destroy(net);
    hw_metrics_destroy(metrics);
    free(tls_cert);
    free(tls_key);
    free(tls_ca);
    hw_health_destroy(health);
    hw_log_destroy(log);
    hw_config_free(&cfg);
    return rc;
}
