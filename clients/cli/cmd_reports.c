/*
 * cmd_reports: `helpwire reports csat` and `helpwire reports sla`
 * (Reports.GetCsatReport, GetSlaReport): satisfaction and SLA attainment
 * over a time range, by agent, queue, channel or period.
 *
 * --from and --to take a date (YYYY-MM-DD, midnight in --tz; a --to date
 * counts that whole day) or an RFC 3339 time ("2026-03-02T09:30:00+08:00",
 * exact). Dates are turned into instants here with the C library's zone
 * handling (TZ set for the conversion only: the CLI is single-threaded),
 * from the same tzdata the server reads. The table ends with a TOTAL row
 * (three for SLA, one per target); with --json every row is a line with
 * "total": false, the total's lines come last with "total": true.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clients/cli/cli.h"
#include "clients/cli/fmt.h"
#include "server/base/pbjson.h"
#include "clients/cli/table.h"
#include "helpwire/v1/reports.pb-c.h"

enum { OPT_FROM, OPT_TO, OPT_BY, OPT_PERIOD, OPT_TZ, OPT_QUEUE, OPT_AGENT, OPT_CHANNEL, OPT_PRIORITY };

/* mktime of tm in zone tz ("" = UTC); TZ is restored afterwards. */
static time_t mktime_in(struct tm *tm, const char *tz)
{
    const char *old = getenv("TZ");
    char *saved = old ? strdup(old) : NULL;
    char zone[128];
    snprintf(zone, sizeof zone, ":%s", tz && tz[0] ? tz : "UTC");
    setenv("TZ", zone, 1);
    tzset();
    time_t t = mktime(tm);
    if (saved) {
        setenv("TZ", saved, 1);
        free(saved);
    } else {
        unsetenv("TZ");
    }
    tzset();
    return t;
}

static bool digits(const char *s, int n)
{
    for (int i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static int num(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

/* A date (midnight in tz, or the next midnight when end_of_day) or an
 * RFC 3339 time, as unix ms. Returns 0, or -1 when s is neither. */
static int parse_when(const char *s, const char *tz, bool end_of_day, int64_t *out)
{
    size_t len = strlen(s);
    if (len < 10 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' || !digits(s + 8, 2))
        return -1;
    int y = num(s, 4), mo = num(s + 5, 2), d = num(s + 8, 2);
    if (mo < 1 || mo > 12 || d < 1 || d > 31)
        return -1;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_isdst = -1};
    if (len == 10) {
        struct tm check = tm;
        if (mktime_in(&check, tz) == (time_t)-1 || check.tm_mday != d) /* 2026-02-30 */
            return -1;
        if (end_of_day)
            tm.tm_mday++;
        tm.tm_isdst = -1;
        time_t t = mktime_in(&tm, tz);
        *out = (int64_t)t * 1000;
        return 0;
    }
    /* YYYY-MM-DDTHH:MM[:SS[.fff]](Z|+HH:MM|-HH:MM) */
    const char *p = s + 10;
    if ((*p != 'T' && *p != 't' && *p != ' ') || !digits(p + 1, 2) || p[3] != ':' || !digits(p + 4, 2))
        return -1;
    int hh = num(p + 1, 2), mm = num(p + 4, 2), ss = 0, ms = 0;
    p += 6;
    if (*p == ':') {
        if (!digits(p + 1, 2))
            return -1;
        ss = num(p + 1, 2);
        p += 3;
        if (*p == '.') {
            p++;
            int scale = 100, n = 0;
            while (*p >= '0' && *p <= '9') {
                ms += (*p - '0') * scale;
                scale /= 10;
                p++;
                n++;
            }
            if (n == 0)
                return -1;
        }
    }
    if (hh > 23 || mm > 59 || ss > 60)
        return -1;
    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && digits(p + 1, 2) && p[3] == ':' && digits(p + 4, 2)) {
        offset_min = (num(p + 1, 2) * 60 + num(p + 4, 2)) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
    time_t t = timegm(&tm);
    if (tm.tm_mday != d)
        return -1;
    *out = ((int64_t)t - offset_min * 60) * 1000 + ms;
    return 0;
}

/* Fills req from the flags; a usage error's exit code, or CLI_EXIT_OK. */
static int build_request(cli_ctx *ctx, bool sla, Helpwire__V1__ReportRequest *req)
{
    char choices[128];
    int v;
    const char *tz = ctx->opt[OPT_TZ] ? ctx->opt[OPT_TZ] : "";
    req->time_zone = (char *)tz;
    if (!ctx->opt[OPT_FROM])
        return cli_usage_error(ctx, "--from is required (YYYY-MM-DD or an RFC 3339 time)");
    if (parse_when(ctx->opt[OPT_FROM], tz, false, &req->from_unix_ms) != 0)
        return cli_usage_error(ctx, "--from must be a date (YYYY-MM-DD) or an RFC 3339 time, not \"%s\"",
                               ctx->opt[OPT_FROM]);
    if (!ctx->opt[OPT_TO]) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        req->to_unix_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    } else if (parse_when(ctx->opt[OPT_TO], tz, true, &req->to_unix_ms) != 0) {
        return cli_usage_error(ctx, "--to must be a date (YYYY-MM-DD) or an RFC 3339 time, not \"%s\"",
                               ctx->opt[OPT_TO]);
    }
    if (ctx->opt[OPT_BY]) {
        if (cli_parse_enum(&helpwire__v1__report_grouping__descriptor, ctx->opt[OPT_BY], &v) != 0)
            return cli_usage_error(
                ctx, "--by must be one of %s",
                cli_fmt_enum_choices(&helpwire__v1__report_grouping__descriptor, choices, sizeof choices));
        req->group_by = (Helpwire__V1__ReportGrouping)v;
    }
    if (ctx->opt[OPT_PERIOD]) {
        if (req->group_by != HELPWIRE__V1__REPORT_GROUPING__REPORT_GROUPING_PERIOD)
            return cli_usage_error(ctx, "--period needs --by period");
        if (cli_parse_enum(&helpwire__v1__report_period__descriptor, ctx->opt[OPT_PERIOD], &v) != 0)
            return cli_usage_error(
                ctx, "--period must be one of %s",
                cli_fmt_enum_choices(&helpwire__v1__report_period__descriptor, choices, sizeof choices));
        req->period = (Helpwire__V1__ReportPeriod)v;
    }
    if (ctx->opt[OPT_CHANNEL]) {
        if (cli_parse_enum(&helpwire__v1__channel__descriptor, ctx->opt[OPT_CHANNEL], &v) != 0)
            return cli_usage_error(
                ctx, "--channel must be one of %s",
                cli_fmt_enum_choices(&helpwire__v1__channel__descriptor, choices, sizeof choices));
        req->channel = (Helpwire__V1__Channel)v;
    }
    if (ctx->opt[OPT_PRIORITY]) {
        if (!sla)
            return cli_usage_error(ctx, "--priority applies to `reports sla` only");
        if (cli_parse_enum(&helpwire__v1__priority__descriptor, ctx->opt[OPT_PRIORITY], &v) != 0)
            return cli_usage_error(
                ctx, "--priority must be one of %s",
                cli_fmt_enum_choices(&helpwire__v1__priority__descriptor, choices, sizeof choices));
        req->priority = (Helpwire__V1__Priority)v;
    }
    if (ctx->opt[OPT_QUEUE])
        req->queue = (char *)ctx->opt[OPT_QUEUE];
    if (ctx->opt[OPT_AGENT])
        req->agent_id = (char *)ctx->opt[OPT_AGENT];
    return CLI_EXIT_OK;
}

/* Fills req from the flags and calls method; the reply (freed by the caller
 * with protobuf_c_message_free_unpacked) in *rep. A usage error's exit code,
 * CLI_EXIT_FAILED, or CLI_EXIT_OK. */
static int fetch_report(cli_ctx *ctx, bool sla, const char *method, const ProtobufCMessageDescriptor *desc,
                        Helpwire__V1__ReportRequest *req, ProtobufCMessage **rep)
{
    int rc = build_request(ctx, sla, req);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (cli_call(ctx, method, &req->base, desc, rep) != CLI_EXIT_OK)
        return CLI_EXIT_FAILED;
    return CLI_EXIT_OK;
}

/* Prints t if all its rows were added (ok), else fails; frees t either way. */
static int finish_table(cli_ctx *ctx, cli_table *t, bool ok)
{
    int rc = CLI_EXIT_OK;
    if (ok)
        cli_table_print(t, ctx->out);
    else
        rc = cli_fail(ctx, "out of memory");
    cli_table_free(t);
    return rc;
}

/* The key column's header. */
static const char *key_header(Helpwire__V1__ReportGrouping g)
{
    switch (g) {
    case HELPWIRE__V1__REPORT_GROUPING__REPORT_GROUPING_AGENT:
        return "AGENT";
    case HELPWIRE__V1__REPORT_GROUPING__REPORT_GROUPING_QUEUE:
        return "QUEUE";
    case HELPWIRE__V1__REPORT_GROUPING__REPORT_GROUPING_CHANNEL:
        return "CHANNEL";
    case HELPWIRE__V1__REPORT_GROUPING__REPORT_GROUPING_PERIOD:
        return "PERIOD";
    default:
        return "";
    }
}

/* One JSON line for a row, marked as part of the total or not. */
static int emit_row(cli_ctx *ctx, const ProtobufCMessage *row, bool total)
{
    json_t *o = hw_pbjson_from_message(row);
    if (o && json_object_set_new(o, "total", json_boolean(total)) != 0) {
        json_decref(o);
        o = NULL;
    }
    return cli_emit_json(ctx, o);
}

static int csat_add(cli_table *t, const Helpwire__V1__CsatRow *r, const char *key)
{
    char v[10][32];
    snprintf(v[0], sizeof v[0], "%llu", (unsigned long long)r->sent);
    snprintf(v[1], sizeof v[1], "%llu", (unsigned long long)r->answered);
    snprintf(v[2], sizeof v[2], "%.1f%%", 100 * r->response_rate);
    snprintf(v[3], sizeof v[3], "%.1f%%", 100 * r->csat);
    snprintf(v[4], sizeof v[4], "%.2f", r->average_rating);
    for (size_t i = 0; i < 5; i++)
        snprintf(v[5 + i], sizeof v[5 + i], "%llu",
                 (unsigned long long)(i < r->n_distribution ? r->distribution[i] : 0));
    const char *cells[11] = {key, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]};
    return cli_table_add(t, cells);
}

static int run_csat(cli_ctx *ctx)
{
    Helpwire__V1__ReportRequest req = HELPWIRE__V1__REPORT_REQUEST__INIT;
    int rc;
    Helpwire__V1__CsatReport *rep = NULL;
    rc = fetch_report(ctx, false, "/helpwire.v1.Reports/GetCsatReport", &helpwire__v1__csat_report__descriptor,
                      &req, (ProtobufCMessage **)&rep);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (ctx->json) {
        for (size_t i = 0; i < rep->n_rows && rc == CLI_EXIT_OK; i++)
            rc = emit_row(ctx, &rep->rows[i]->base, false);
        if (rc == CLI_EXIT_OK && rep->total)
            rc = emit_row(ctx, &rep->total->base, true);
    } else {
        const char *headers[] = {
            key_header(req.group_by), "SENT", "ANSWERED", "RESPONSE", "CSAT", "AVG", "1", "2", "3", "4", "5"};
        if (!req.group_by)
            headers[0] = "";
        cli_table *t = cli_table_new(11, headers);
        bool ok = t != NULL;
        for (size_t i = 0; ok && i < rep->n_rows; i++)
            ok = csat_add(t, rep->rows[i], rep->rows[i]->key) == 0;
        if (ok && rep->total)
            ok = csat_add(t, rep->total, "TOTAL") == 0;
        rc = finish_table(ctx, t, ok);
    }
    protobuf_c_message_free_unpacked(&rep->base, NULL);
    return rc;
}

static int sla_add(cli_table *t, const Helpwire__V1__SlaRow *r, const char *key)
{
    char target[48], v[4][32];
    cli_fmt_enum(&helpwire__v1__sla_target__descriptor, r->target, target, sizeof target);
    snprintf(v[0], sizeof v[0], "%llu", (unsigned long long)r->met);
    snprintf(v[1], sizeof v[1], "%llu", (unsigned long long)r->breached);
    snprintf(v[2], sizeof v[2], "%llu", (unsigned long long)r->open);
    snprintf(v[3], sizeof v[3], "%.1f%%", 100 * r->attainment);
    const char *cells[6] = {key, target, v[0], v[1], v[2], v[3]};
    return cli_table_add(t, cells);
}

static int run_sla(cli_ctx *ctx)
{
    Helpwire__V1__ReportRequest req = HELPWIRE__V1__REPORT_REQUEST__INIT;
    int rc;
    Helpwire__V1__SlaReport *rep = NULL;
    rc = fetch_report(ctx, true, "/helpwire.v1.Reports/GetSlaReport", &helpwire__v1__sla_report__descriptor, &req,
                      (ProtobufCMessage **)&rep);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (ctx->json) {
        for (size_t i = 0; i < rep->n_rows && rc == CLI_EXIT_OK; i++)
            rc = emit_row(ctx, &rep->rows[i]->base, false);
        for (size_t i = 0; i < rep->n_total && rc == CLI_EXIT_OK; i++)
            rc = emit_row(ctx, &rep->total[i]->base, true);
    } else {
        const char *headers[] = {key_header(req.group_by), "TARGET", "MET", "BREACHED", "OPEN", "ATTAINMENT"};
        cli_table *t = cli_table_new(6, headers);
        bool ok = t != NULL;
        for (size_t i = 0; ok && i < rep->n_rows; i++)
            ok = sla_add(t, rep->rows[i], rep->rows[i]->key) == 0;
        for (size_t i = 0; ok && i < rep->n_total; i++)
            ok = sla_add(t, rep->total[i], "TOTAL") == 0;
        rc = finish_table(ctx, t, ok);
    }
    protobuf_c_message_free_unpacked(&rep->base, NULL);
    return rc;
}

static const cli_opt report_opts[] = {
    [OPT_FROM] = {"from", "WHEN", "Start: YYYY-MM-DD (midnight in --tz) or an RFC 3339 time. Required."},
    [OPT_TO] = {"to", "WHEN",
                "End: YYYY-MM-DD (that day included) or an RFC 3339 time (excluded). Default now. "
                "At most 366 days after --from."},
    [OPT_BY] = {"by", "G", "Rows by agent, queue, channel or period (default: only the total)."},
    [OPT_PERIOD] = {"period", "P", "With --by period: day (default), week (ISO, from Monday) or month."},
    [OPT_TZ] = {"tz", "ZONE", "IANA zone for dates and periods, e.g. Asia/Shanghai. Default UTC."},
    [OPT_QUEUE] = {"queue", "Q", "Only tickets of this skill queue."},
    [OPT_AGENT] = {"agent", "ID", "Only tickets of this agent."},
    [OPT_CHANNEL] = {"channel", "C", "Only this channel: whatsapp, telegram or webchat."},
    [OPT_PRIORITY] = {"priority", "P", "`reports sla` only: only tickets of this priority."},
};

#define REPORT_SYNOPSIS                                                                                      \
    "--from WHEN [--to WHEN] [--by agent|queue|channel|period] [--period day|week|month] [--tz ZONE] "       \
    "[--queue Q] [--agent ID] [--channel C]"

const cli_command cli_reports_commands[] = {
    {"reports", "csat", REPORT_SYNOPSIS, "Satisfaction (CSAT) report",
     "Surveys of tickets closed in the range: sent, answered, response rate, CSAT (share of ratings 4-5), "
     "average rating and the count of each rating, per row and in total.",
     report_opts, sizeof report_opts / sizeof report_opts[0], 0, 0, run_csat},
    {"reports", "sla", REPORT_SYNOPSIS " [--priority P]", "SLA attainment report",
     "SLA clocks of tickets created in the range, per target (first_reply, next_reply, resolution): met, "
     "breached, still open, and attainment = met / (met + breached).",
     report_opts, sizeof report_opts / sizeof report_opts[0], 0, 0, run_sla},
};
const size_t cli_reports_ncommands = sizeof cli_reports_commands / sizeof cli_reports_commands[0];
