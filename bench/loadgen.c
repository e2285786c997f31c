/*
 * helpwire-bench: load generator for helpwired on the gRPC C core.
 *
 * This file is the command line: flags, seeding the ids a mix needs
 * (seed.c), running the load (driver.c), the progress line, and the
 * summary and JSON (report.c). It also writes and reads gRPC-framed
 * request files, so an independent tool (h2load) can send byte-for-byte
 * the request helpwire-bench sends, for the cross-check in bench/run.sh.
 *
 * Exit status: 0 when the run completed (errors are reported, not fatal),
 * 2 for bad usage, 3 when the target cannot be reached, 1 otherwise.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <grpc/grpc.h>

#include "bench/corpus.h"
#include "bench/driver.h"
#include "bench/mix.h"
#include "bench/report.h"
#include "bench/requests.h"
#include "bench/seed.h"
#include "server/base/grpc_runtime.h"

#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3

/* Set by SIGINT/SIGTERM; the main loop turns it into hw_drv_stop(). */
static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

typedef struct options {
    const char *target;
    unsigned connections, concurrency, threads;
    double duration_s, warmup_s, rate;
    uint64_t requests;
    unsigned timeout_ms, connect_timeout_ms;
    const char *mix;
    const char *corpus;
    uint32_t users;
    const char *token;
    const char *tls_ca_file, *tls_server_name;
    const char *json;
    const char *run_id;
    const char *dump_request;
    const char *request_file;
    bool progress;
    bool no_seed;
    hw_ids ids; /* from --customer-id / --ticket-id */
} options;

static void usage(FILE *out)
{
    fprintf(out, "usage: helpwire-bench --target HOST:PORT [options]\n"
                 "  --connections C       TCP connections (channels), default 4\n"
                 "  --concurrency M       outstanding calls per connection, default 16\n"
                 "  --threads T           worker threads (one completion queue each), default min(C, cores)\n"
                 "  --duration S          measure for S seconds (default 10)\n"
                 "  --requests N          measure exactly N calls instead of a duration\n"
                 "  --warmup S            seconds of unmeasured load first, default 1\n"
                 "  --rate R              open loop: R calls/s in total (default: closed loop)\n"
                 "  --mix SPEC            e.g. \"Route=70,GetTicket=20,CreateTicket=10\" (default Route)\n"
                 "                        RPCs: Route, Search, CreateTicket, GetTicket\n"
                 "  --corpus FILE         one text per line (Route text, Search query, ticket text)\n"
                 "  --users N             Route channel_user_id pool size, default 1000\n"
                 "  --token T             send \"authorization: Bearer T\"\n"
                 "  --tls-ca FILE         TLS, trusting the PEM roots in FILE (default: plaintext)\n"
                 "  --tls-server-name N   the name the server's certificate must carry\n"
                 "  --customer-id ID      customer for CreateTicket (repeatable; else seeded via Route)\n"
                 "  --ticket-id ID        ticket for GetTicket (repeatable; else seeded via CreateTicket)\n"
                 "  --no-seed             do not call the target before the run to learn ids\n"
                 "  --timeout-ms MS       per-call deadline, default 5000\n"
                 "  --connect-timeout-ms MS  default 5000\n"
                 "  --json FILE           write the results as JSON (\"-\": stdout, summary to stderr)\n"
                 "  --progress            a progress line every second on stderr\n"
                 "  --run-id ID           prefix of unique message ids and idempotency keys\n"
                 "  --dump-request FILE   write one gRPC-framed request of the mix's main RPC and exit\n"
                 "  --request-file FILE   send this gRPC-framed request as every call (mix's main RPC)\n");
}

static int parse_uint(const char *name, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end || errno || s[0] == '-' || v < min || v > max) {
        fprintf(stderr, "helpwire-bench: %s wants an integer in %" PRIu64 "..%" PRIu64 ", got \"%s\"\n", name,
                min, max, s);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int parse_seconds(const char *name, const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !(v >= 0) || v > 86400 * 7) {
        fprintf(stderr, "helpwire-bench: %s wants a number >= 0, got \"%s\"\n", name, s);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

enum {
    OPT_TARGET = 256,
    OPT_CONNECTIONS,
    OPT_CONCURRENCY,
    OPT_THREADS,
    OPT_DURATION,
    OPT_REQUESTS,
    OPT_WARMUP,
    OPT_RATE,
    OPT_MIX,
    OPT_CORPUS,
    OPT_USERS,
    OPT_TOKEN,
    OPT_TLS_CA,
    OPT_TLS_SERVER_NAME,
    OPT_CUSTOMER,
    OPT_TICKET,
    OPT_NO_SEED,
    OPT_TIMEOUT,
    OPT_CONNECT_TIMEOUT,
    OPT_JSON,
    OPT_PROGRESS,
    OPT_RUN_ID,
    OPT_DUMP,
    OPT_REQUEST_FILE,
    OPT_HELP,
};

static int parse_options(int argc, char **argv, options *o)
{
    static const struct option longopts[] = {
        {"target", required_argument, NULL, OPT_TARGET},
        {"connections", required_argument, NULL, OPT_CONNECTIONS},
        {"concurrency", required_argument, NULL, OPT_CONCURRENCY},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"requests", required_argument, NULL, OPT_REQUESTS},
        {"warmup", required_argument, NULL, OPT_WARMUP},
        {"rate", required_argument, NULL, OPT_RATE},
        {"mix", required_argument, NULL, OPT_MIX},
        {"corpus", required_argument, NULL, OPT_CORPUS},
        {"users", required_argument, NULL, OPT_USERS},
        {"token", required_argument, NULL, OPT_TOKEN},
        {"tls-ca", required_argument, NULL, OPT_TLS_CA},
        {"tls-server-name", required_argument, NULL, OPT_TLS_SERVER_NAME},
        {"customer-id", required_argument, NULL, OPT_CUSTOMER},
        {"ticket-id", required_argument, NULL, OPT_TICKET},
        {"no-seed", no_argument, NULL, OPT_NO_SEED},
        {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
        {"connect-timeout-ms", required_argument, NULL, OPT_CONNECT_TIMEOUT},
        {"json", required_argument, NULL, OPT_JSON},
        {"progress", no_argument, NULL, OPT_PROGRESS},
        {"run-id", required_argument, NULL, OPT_RUN_ID},
        {"dump-request", required_argument, NULL, OPT_DUMP},
        {"request-file", required_argument, NULL, OPT_REQUEST_FILE},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    uint64_t v;
    int rc = 0;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    o->connections = 4;
    o->concurrency = 16;
    o->warmup_s = 1;
    o->timeout_ms = 5000;
    o->connect_timeout_ms = 5000;
    o->mix = "Route";
    o->users = 1000;
    int c;
    while (rc == 0 && (c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_TARGET:
            o->target = optarg;
            break;
        case OPT_CONNECTIONS:
            if ((rc = parse_uint("--connections", optarg, 1, 4096, &v)) == 0)
                o->connections = (unsigned)v;
            break;
        case OPT_CONCURRENCY:
            if ((rc = parse_uint("--concurrency", optarg, 1, 65536, &v)) == 0)
                o->concurrency = (unsigned)v;
            break;
        case OPT_THREADS:
            if ((rc = parse_uint("--threads", optarg, 1, 1024, &v)) == 0)
                o->threads = (unsigned)v;
            break;
        case OPT_DURATION:
            rc = parse_seconds("--duration", optarg, &o->duration_s);
            break;
        case OPT_REQUESTS:
            rc = parse_uint("--requests", optarg, 1, UINT64_C(1) << 40, &o->requests);
            break;
        case OPT_WARMUP:
            rc = parse_seconds("--warmup", optarg, &o->warmup_s);
            break;
        case OPT_RATE:
            rc = parse_seconds("--rate", optarg, &o->rate);
            break;
        case OPT_MIX:
            o->mix = optarg;
            break;
        case OPT_CORPUS:
            o->corpus = optarg;
            break;
        case OPT_USERS:
            if ((rc = parse_uint("--users", optarg, 1, UINT32_MAX, &v)) == 0)
                o->users = (uint32_t)v;
            break;
        case OPT_TOKEN:
            o->token = optarg;
            break;
        case OPT_TLS_CA:
            o->tls_ca_file = optarg;
            break;
        case OPT_TLS_SERVER_NAME:
            o->tls_server_name = optarg;
            break;
        case OPT_CUSTOMER:
            if ((rc = hw_ids_add_customer(&o->ids, optarg)) != 0)
                fprintf(stderr, "helpwire-bench: bad --customer-id \"%s\"\n", optarg);
            break;
        case OPT_TICKET:
            if ((rc = hw_ids_add_ticket(&o->ids, optarg)) != 0)
                fprintf(stderr, "helpwire-bench: bad --ticket-id \"%s\"\n", optarg);
            break;
        case OPT_NO_SEED:
            o->no_seed = true;
            break;
        case OPT_TIMEOUT:
            if ((rc = parse_uint("--timeout-ms", optarg, 1, 3600000, &v)) == 0)
                o->timeout_ms = (unsigned)v;
            break;
        case OPT_CONNECT_TIMEOUT:
            if ((rc = parse_uint("--connect-timeout-ms", optarg, 1, 3600000, &v)) == 0)
                o->connect_timeout_ms = (unsigned)v;
            break;
        case OPT_JSON:
            o->json = optarg;
            break;
        case OPT_PROGRESS:
            o->progress = true;
            break;
        case OPT_RUN_ID:
            o->run_id = optarg;
            break;
        case OPT_DUMP:
            o->dump_request = optarg;
            break;
        case OPT_REQUEST_FILE:
            o->request_file = optarg;
            break;
        case 'h':
        case OPT_HELP:
            usage(stdout);
            exit(0);
        default:
            rc = -EINVAL;
            break;
        }
    }
    if (rc != 0)
        return rc;
    if (optind < argc) {
        fprintf(stderr, "helpwire-bench: unexpected argument \"%s\"\n", argv[optind]);
        return -EINVAL;
    }
    if (!o->target && !o->dump_request) {
        fprintf(stderr, "helpwire-bench: --target HOST:PORT is required\n");
        return -EINVAL;
    }
    if (o->requests == 0 && o->duration_s == 0)
        o->duration_s = 10;
    if (o->threads == 0)
        o->threads = (unsigned)(cores > 0 ? cores : 1);
    if (o->threads > o->connections)
        o->threads = o->connections;
    if (o->run_id && (strlen(o->run_id) == 0 || strlen(o->run_id) > 24)) {
        fprintf(stderr, "helpwire-bench: --run-id wants 1 to 24 characters\n");
        return -EINVAL;
    }
    return 0;
}

/* Writes one request of kind, gRPC-framed (flag byte 0, big-endian length,
 * message), to path. */
static int dump_request(const char *path, const hw_corpus *corpus, const hw_ids *ids, const char *run_id,
                        uint32_t users, hw_rpc_kind kind)
{
    int rc = 0;
    grpc_slice body;
    hw_req_ctx *ctx = malloc(sizeof(*ctx));
    if (!ctx)
        return -ENOMEM;
    hw_req_init(ctx, corpus, ids, run_id, 0, users, 1);
    rc = hw_req_build(ctx, kind, &body);
    free(ctx);
    if (rc != 0)
        return rc;
    size_t len = GRPC_SLICE_LENGTH(body);
    uint8_t prefix[5] = {0, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
    FILE *f = fopen(path, "wb");
    if (!f) {
        rc = -errno;
        goto out;
    }
    if (fwrite(prefix, 1, 5, f) != 5 || fwrite(GRPC_SLICE_START_PTR(body), 1, len, f) != len)
        rc = -EIO;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
out:
    grpc_slice_unref(body);
    return rc;
}

/* Reads a gRPC-framed request file into *out (the message, unframed). */
static int read_request_file(const char *path, grpc_slice *out)
{
    int rc = 0;
    uint8_t prefix[5];
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    if (fread(prefix, 1, 5, f) != 5 || prefix[0] != 0) {
        rc = -EBADMSG;
        goto out;
    }
    size_t len = ((size_t)prefix[1] << 24) | ((size_t)prefix[2] << 16) | ((size_t)prefix[3] << 8) | prefix[4];
    if (len > (4u << 20)) {
        rc = -EBADMSG;
        goto out;
    }
    grpc_slice s = grpc_slice_malloc(len);
    if (len && fread(GRPC_SLICE_START_PTR(s), 1, len, f) != len) {
        grpc_slice_unref(s);
        rc = -EBADMSG;
        goto out;
    }
    *out = s;
out:
    fclose(f);
    return rc;
}

static void print_progress(hw_drv *d, const options *o, uint64_t *last_counted, double *last_s)
{
    hw_drv_progress p;
    hw_drv_progress_get(d, &p);
    double dt = p.since_start_s - *last_s;
    double rate = dt > 0 ? (double)(p.counted - *last_counted) / dt : 0;
    fprintf(stderr, "%s[%6.1fs] %-8s %9.0f req/s  counted %10" PRIu64 "  errors %" PRIu64 "%s",
            isatty(STDERR_FILENO) ? "\r" : "", p.since_start_s, p.warming_up ? "warm-up" : "measure", rate,
            p.counted, p.errors, isatty(STDERR_FILENO) ? "   " : "\n");
    fflush(stderr);
    *last_counted = p.counted;
    *last_s = p.since_start_s;
    (void)o;
}

int main(int argc, char **argv)
{
    int status = 1;
    options o;
    hw_mix mix;
    hw_corpus *corpus = NULL;
    hw_drv *drv = NULL;
    hw_results results;
    bool have_results = false, grpc_up = false, have_fixed = false;
    grpc_slice fixed;
    char err[256] = "", run_id[32], mix_text[160];
    memset(&o, 0, sizeof(o));
    memset(&results, 0, sizeof(results));

    if (parse_options(argc, argv, &o) != 0) {
        usage(stderr);
        status = EXIT_USAGE;
        goto out;
    }
    if (hw_mix_parse(o.mix, &mix, err, sizeof(err)) != 0) {
        fprintf(stderr, "helpwire-bench: %s\n", err);
        status = EXIT_USAGE;
        goto out;
    }
    hw_mix_format(&mix, mix_text, sizeof(mix_text));
    int rc = hw_corpus_load(o.corpus, &corpus);
    if (rc != 0) {
        fprintf(stderr, "helpwire-bench: corpus %s: %s\n", o.corpus, strerror(-rc));
        status = EXIT_USAGE;
        goto out;
    }
    if (o.run_id)
        snprintf(run_id, sizeof(run_id), "%s", o.run_id);
    else
        snprintf(run_id, sizeof(run_id), "b%08lx",
                 (unsigned long)((uint64_t)time(NULL) * 2654435761u ^ getpid()));

    hw_grpc_runtime_prepare();
    grpc_init();
    grpc_up = true;
    if (o.dump_request) {
        rc = dump_request(o.dump_request, corpus, &o.ids, run_id, o.users, hw_mix_first(&mix));
        if (rc != 0)
            fprintf(stderr, "helpwire-bench: %s: %s\n", o.dump_request, strerror(-rc));
        status = rc == 0 ? 0 : 1;
        goto out;
    }
    if (o.request_file) {
        rc = read_request_file(o.request_file, &fixed);
        if (rc != 0) {
            fprintf(stderr, "helpwire-bench: %s: %s\n", o.request_file,
                    rc == -EBADMSG ? "not a gRPC-framed message" : strerror(-rc));
            status = EXIT_USAGE;
            goto out;
        }
        have_fixed = true;
    }

    if (!o.no_seed && !have_fixed) {
        hw_seed_config sc = {
            .target = o.target,
            .token = o.token,
            .tls_ca_file = o.tls_ca_file,
            .tls_server_name = o.tls_server_name,
            .corpus = corpus,
            .run_id = run_id,
            .users = o.users,
            .want_customers = (mix.weight[HW_RPC_CREATE_TICKET] || mix.weight[HW_RPC_GET_TICKET]) ? 16 : 0,
            .want_tickets = mix.weight[HW_RPC_GET_TICKET] ? 32 : 0,
            .timeout_ms = o.timeout_ms,
        };
        char note[512];
        if (hw_seed_ids(&sc, &o.ids, note, sizeof(note)) != 0) {
            fprintf(stderr, "helpwire-bench: out of memory while seeding\n");
            goto out;
        }
        if (note[0])
            fprintf(stderr, "helpwire-bench: %s\n", note);
    }

    hw_drv_config cfg = {
        .target = o.target,
        .connections = o.connections,
        .concurrency = o.concurrency,
        .threads = o.threads,
        .warmup_s = o.warmup_s,
        .duration_s = o.requests ? 0 : o.duration_s,
        .requests = o.requests,
        .rate = o.rate,
        .timeout_ms = o.timeout_ms,
        .connect_timeout_ms = o.connect_timeout_ms,
        .mix = &mix,
        .corpus = corpus,
        .ids = &o.ids,
        .run_id = run_id,
        .users = o.users,
        .token = o.token,
        .tls_ca_file = o.tls_ca_file,
        .tls_server_name = o.tls_server_name,
        .fixed = have_fixed ? &fixed : NULL,
    };
    rc = hw_drv_create(&cfg, &drv, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "helpwire-bench: %s\n", err[0] ? err : strerror(-rc));
        status = rc == -ECONNREFUSED ? EXIT_UNREACHABLE : (rc == -EINVAL ? EXIT_USAGE : 1);
        goto out;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    rc = hw_drv_start(drv);
    if (rc != 0) {
        fprintf(stderr, "helpwire-bench: cannot start workers: %s\n", strerror(-rc));
        goto out;
    }
    uint64_t last_counted = 0;
    double last_s = 0, next_progress_s = 1.0, stopped_at_s = 0;
    bool stopped = false;
    while (!hw_drv_wait(drv, 100)) {
        hw_drv_progress p;
        hw_drv_progress_get(drv, &p);
        if (stop_signal && !stopped) {
            hw_drv_stop(drv);
            stopped = true;
            stopped_at_s = p.since_start_s;
        }
        /* Cancelled calls finish at once; if some do not, do not hang. */
        if (stopped && p.since_start_s - stopped_at_s > 5.0) {
            fprintf(stderr, "helpwire-bench: calls did not finish 5 s after the stop; giving up\n");
            _exit(1);
        }
        if (o.progress) {
            if (p.since_start_s >= next_progress_s) {
                print_progress(drv, &o, &last_counted, &last_s);
                next_progress_s += 1.0;
            }
        }
    }
    if (o.progress && isatty(STDERR_FILENO))
        fprintf(stderr, "\n");
    rc = hw_drv_results(drv, &results);
    if (rc != 0) {
        fprintf(stderr, "helpwire-bench: out of memory\n");
        goto out;
    }
    have_results = true;

    hw_report_info info = {
        .target = o.target,
        .mix = mix_text,
        .connections = o.connections,
        .concurrency = o.concurrency,
        .threads = o.threads,
        .rate = o.rate,
        .warmup_s = o.warmup_s,
        .duration_s = o.requests ? 0 : o.duration_s,
        .requests_target = o.requests,
    };
    bool json_to_stdout = o.json && strcmp(o.json, "-") == 0;
    hw_report_print(json_to_stdout ? stderr : stdout, &info, &results);
    status = 0;
    if (o.json) {
        rc = hw_report_write_json(o.json, &info, &results);
        if (rc != 0) {
            fprintf(stderr, "helpwire-bench: cannot write %s: %s\n", o.json, strerror(-rc));
            status = 1;
        }
    }
    if (results.interrupted)
        status = 1;
out:
    if (have_results)
        hw_results_clear(&results);
    hw_drv_destroy(drv);
    if (have_fixed)
        grpc_slice_unref(fixed);
    hw_ids_clear(&o.ids);
    hw_corpus_destroy(corpus);
    if (grpc_up)
        grpc_shutdown();
    return status;
}
