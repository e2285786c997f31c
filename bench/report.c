/*
 * report: human summary with fprintf, JSON with jansson (see report.h).
 */
#include "bench/report.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include <jansson.h>

static uint64_t errors_of(const hw_rpc_stats *s)
{
    return s->calls - s->by_status[0];
}

static double throughput(const hw_rpc_stats *s, const hw_results *r)
{
    return r->elapsed_s > 0 ? (double)s->calls / r->elapsed_s : 0.0;
}

/* Milliseconds with a precision that suits the magnitude. */
static void fmt_ms(char *buf, size_t len, uint64_t ns)
{
    double ms = (double)ns / 1e6;
    if (ms < 10)
        snprintf(buf, len, "%.3f ms", ms);
    else if (ms < 1000)
        snprintf(buf, len, "%.1f ms", ms);
    else
        snprintf(buf, len, "%.0f ms", ms);
}

static void print_errors(FILE *out, const hw_rpc_stats *s)
{
    bool any = false;
    for (int i = 1; i < HW_STATUS_SLOTS; i++) {
        if (s->by_status[i] == 0)
            continue;
        fprintf(out, "%s%s %" PRIu64, any ? ", " : "", hw_status_name(i), s->by_status[i]);
        any = true;
    }
    if (!any)
        fprintf(out, "none");
}

void hw_report_print(FILE *out, const hw_report_info *info, const hw_results *r)
{
    const hw_rpc_stats *t = &r->total;
    const hw_hist *h = t->latency_ns;
    char p50[32], p90[32], p99[32], p999[32], max[32];

    fprintf(out, "helpwire-bench  %s  mix %s\n", info->target, info->mix);
    if (info->rate > 0)
        fprintf(out, "  open loop at %.0f req/s, %u connections x %u slots, %u threads\n", info->rate,
                info->connections, info->concurrency, info->threads);
    else
        fprintf(out, "  closed loop, %u connections x %u outstanding calls, %u threads\n", info->connections,
                info->concurrency, info->threads);
    fprintf(out, "  measured %.2f s after %.1f s warm-up (%" PRIu64 " warm-up calls)%s\n", r->elapsed_s,
            info->warmup_s, r->warmup_calls, r->interrupted ? "  [INTERRUPTED]" : "");
    fprintf(out, "  requests %" PRIu64 "  ok %" PRIu64 "  errors %" PRIu64 "\n", t->calls, t->by_status[0],
            errors_of(t));
    fprintf(out, "  throughput %.1f req/s\n", throughput(t, r));
    fmt_ms(p50, sizeof(p50), hw_hist_percentile(h, 50));
    fmt_ms(p90, sizeof(p90), hw_hist_percentile(h, 90));
    fmt_ms(p99, sizeof(p99), hw_hist_percentile(h, 99));
    fmt_ms(p999, sizeof(p999), hw_hist_percentile(h, 99.9));
    fmt_ms(max, sizeof(max), hw_hist_max(h));
    fprintf(out, "  latency  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n", p50, p90, p99, p999, max);
    if (info->rate > 0)
        fprintf(out, "  sends more than 1 ms behind schedule: %" PRIu64 "\n", r->late_sends);
    fprintf(out, "  errors by status: ");
    print_errors(out, t);
    fprintf(out, "\n");

    fprintf(out, "  %-13s %10s %11s %11s %11s %11s  %s\n", "RPC", "requests", "req/s", "p50", "p99", "max",
            "errors");
    for (int k = 0; k < HW_RPC_COUNT; k++) {
        const hw_rpc_stats *s = &r->rpc[k];
        if (s->calls == 0)
            continue;
        fmt_ms(p50, sizeof(p50), hw_hist_percentile(s->latency_ns, 50));
        fmt_ms(p99, sizeof(p99), hw_hist_percentile(s->latency_ns, 99));
        fmt_ms(max, sizeof(max), hw_hist_max(s->latency_ns));
        fprintf(out, "  %-13s %10" PRIu64 " %11.1f %11s %11s %11s  ", hw_rpc_info_of((hw_rpc_kind)k)->name,
                s->calls, throughput(s, r), p50, p99, max);
        print_errors(out, s);
        fprintf(out, "\n");
    }
}

static double us(uint64_t ns)
{
    return (double)ns / 1e3;
}

static json_t *latency_json(const hw_hist *h)
{
    return json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "min", us(hw_hist_min(h)), "mean",
                     hw_hist_mean(h) / 1e3, "p50", us(hw_hist_percentile(h, 50)), "p90",
                     us(hw_hist_percentile(h, 90)), "p99", us(hw_hist_percentile(h, 99)), "p999",
                     us(hw_hist_percentile(h, 99.9)), "max", us(hw_hist_max(h)));
}

static json_t *errors_json(const hw_rpc_stats *s)
{
    json_t *o = json_object();
    for (int i = 1; o && i < HW_STATUS_SLOTS; i++) {
        if (s->by_status[i] &&
            json_object_set_new(o, hw_status_name(i), json_integer((json_int_t)s->by_status[i])))
            goto fail;
    }
    return o;
fail:
    json_decref(o);
    return NULL;
}

int hw_report_write_json(const char *path, const hw_report_info *info, const hw_results *r)
{
    int rc = 0;
    const hw_rpc_stats *t = &r->total;
    json_t *rpcs = json_object();
    json_t *doc = NULL;
    if (!rpcs) {
        rc = -ENOMEM;
        goto out;
    }
    for (int k = 0; k < HW_RPC_COUNT; k++) {
        const hw_rpc_stats *s = &r->rpc[k];
        if (s->calls == 0)
            continue;
        json_t *one = json_pack("{s:I, s:I, s:I, s:f, s:o*, s:o*, s:I, s:I}", "requests",
                                (json_int_t)s->calls, "ok", (json_int_t)s->by_status[0], "errors",
                                (json_int_t)errors_of(s), "throughput_rps", throughput(s, r), "latency_us",
                                latency_json(s->latency_ns), "errors_by_status", errors_json(s), "bytes_sent",
                                (json_int_t)s->bytes_sent, "bytes_received", (json_int_t)s->bytes_received);
        if (!one || json_object_set_new(rpcs, hw_rpc_info_of((hw_rpc_kind)k)->name, one)) {
            rc = -ENOMEM;
            goto out;
        }
    }
    doc = json_pack(
        "{s:s, s:s, s:s, s:i, s:i, s:i, s:f, s:f, s:f, s:I, s:s, s:b, s:f, s:I, s:I, s:I, s:f, s:o*, "
        "s:o*, s:I, s:I, s:O}",
        "tool", "helpwire-bench", "target", info->target, "mode", info->rate > 0 ? "open" : "closed",
        "connections", (int)info->connections, "concurrency", (int)info->concurrency, "threads",
        (int)info->threads, "rate", info->rate, "warmup_s", info->warmup_s, "duration_s", info->duration_s,
        "requests_target", (json_int_t)info->requests_target, "mix", info->mix, "interrupted", r->interrupted,
        "elapsed_s", r->elapsed_s, "requests", (json_int_t)t->calls, "ok", (json_int_t)t->by_status[0],
        "errors", (json_int_t)errors_of(t), "throughput_rps", throughput(t, r), "latency_us",
        latency_json(t->latency_ns), "errors_by_status", errors_json(t), "warmup_requests",
        (json_int_t)r->warmup_calls, "late_sends", (json_int_t)r->late_sends, "rpcs", rpcs);
    if (!doc) {
        rc = -ENOMEM;
        goto out;
    }
    int flags = JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10);
    if (strcmp(path, "-") == 0) {
        if (json_dumpf(doc, stdout, flags) != 0 || fputc('\n', stdout) == EOF)
            rc = -EIO;
    } else if (json_dump_file(doc, path, flags) != 0) {
        rc = errno ? -errno : -EIO;
    }
out:
    json_decref(rpcs);
    json_decref(doc);
    return rc;
}
