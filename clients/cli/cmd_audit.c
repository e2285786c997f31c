/*
 * cmd_audit: `helpwire audit list` (Admin.ListAuditEvents): the server's
 * audit log newest first, filtered by action (exact or a prefix ending in
 * '.'), actor, target and time, following pages up to --limit. Needs an
 * admin token. With --json one AuditEvent per line (protobuf's JSON
 * mapping); the table shows the details as key=value.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clients/cli/cli.h"
#include "clients/cli/fmt.h"
#include "server/base/pbjson.h"
#include "clients/cli/table.h"
#include "helpwire/v1/admin.pb-c.h"

enum { AUDIT_DEFAULT_LIMIT = 100, AUDIT_MAX_PAGE = 1000, AUDIT_MAX_EMPTY_PAGES = 10000 };
enum { DETAILS_MAX_WIDTH = 60 };

static const char *const audit_headers[] = {"SEQ",    "AT",      "ACTOR", "ACTION",
                                            "TARGET", "OUTCOME", "PEER",  "DETAILS"};
enum { AUDIT_COLS = sizeof audit_headers / sizeof audit_headers[0] };

static const char *outcome_name(Helpwire__V1__AuditOutcome o)
{
    switch (o) {
    case HELPWIRE__V1__AUDIT_OUTCOME__AUDIT_OUTCOME_OK:
        return "OK";
    case HELPWIRE__V1__AUDIT_OUTCOME__AUDIT_OUTCOME_DENIED:
        return "DENIED";
    case HELPWIRE__V1__AUDIT_OUTCOME__AUDIT_OUTCOME_FAILED:
        return "FAILED";
    default:
        return "-";
    }
}

static int add_audit_row(cli_table *t, const Helpwire__V1__AuditEvent *e)
{
    char seq[24], at[32], details[1024] = "";
    snprintf(seq, sizeof seq, "%llu", (unsigned long long)e->seq);
    size_t off = 0;
    for (size_t i = 0; i < e->n_details && off < sizeof details; i++) {
        int n = snprintf(details + off, sizeof details - off, "%s%s=%s", i ? " " : "", e->details[i]->key,
                         e->details[i]->value);
        if (n < 0)
            break;
        off += (size_t)n;
    }
    const char *cells[AUDIT_COLS] = {
        seq,
        cli_fmt_time(e->at_unix_ms, at, sizeof at),
        e->actor,
        e->action,
        *e->target ? e->target : "-",
        outcome_name(e->outcome),
        *e->peer ? e->peer : "-",
        details,
    };
    return cli_table_add(t, cells);
}

/* An entry as JSON, its details as one object (protobuf's JSON mapping of
 * a map; pbjson writes the entries as an array). */
static int emit_audit(cli_ctx *ctx, const Helpwire__V1__AuditEvent *e)
{
    json_t *obj = hw_pbjson_from_message(&e->base);
    if (obj) {
        json_t *details = json_object();
        for (size_t i = 0; details && i < e->n_details; i++)
            json_object_set_new(details, e->details[i]->key, json_string(e->details[i]->value));
        if (details)
            json_object_set_new(obj, "details", details);
    }
    return cli_emit_json(ctx, obj);
}

/* "YYYY-MM-DD" (midnight UTC) or "YYYY-MM-DDTHH:MM[:SS](Z|+HH:MM|-HH:MM)"
 * into unix ms. Returns 0, or -1 when it is neither. */
static int parse_when(const char *s, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int y, mo, d, hh = 0, mm = 0, ss = 0, n = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
        return -1;
    const char *p = s + 10;
    int offset_min = 0;
    if (*p) {
        int k = 0;
        if ((*p != 'T' && *p != 't' && *p != ' ') || sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &k) != 2 || k != 5)
            return -1;
        p += 6;
        if (*p == ':') {
            if (sscanf(p + 1, "%2d%n", &ss, &k) != 1 || k != 2)
                return -1;
            p += 3;
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int oh, om;
            if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &k) != 2 || k != 5)
                return -1;
            offset_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
            p += 6;
        } else {
            return -1;
        }
        if (*p)
            return -1;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60 || hh < 0 || mm < 0 || ss < 0)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
    time_t t = timegm(&tm);
    if (tm.tm_mday != d || t < 0)
        return -1;
    *out = ((int64_t)t - offset_min * 60) * 1000;
    return 0;
}

static int run_audit_list(cli_ctx *ctx)
{
    enum { OPT_ACTION, OPT_ACTOR, OPT_TARGET, OPT_SINCE, OPT_UNTIL, OPT_LIMIT };
    Helpwire__V1__ListAuditEventsRequest req = HELPWIRE__V1__LIST_AUDIT_EVENTS_REQUEST__INIT;
    req.action = (char *)(ctx->opt[OPT_ACTION] ? ctx->opt[OPT_ACTION] : "");
    req.actor = (char *)(ctx->opt[OPT_ACTOR] ? ctx->opt[OPT_ACTOR] : "");
    req.target = (char *)(ctx->opt[OPT_TARGET] ? ctx->opt[OPT_TARGET] : "");
    if (ctx->opt[OPT_SINCE] && parse_when(ctx->opt[OPT_SINCE], &req.from_unix_ms) != 0)
        return cli_usage_error(ctx, "--since must be a date (YYYY-MM-DD) or an RFC 3339 time, not \"%s\"",
                               ctx->opt[OPT_SINCE]);
    if (ctx->opt[OPT_UNTIL] && parse_when(ctx->opt[OPT_UNTIL], &req.to_unix_ms) != 0)
        return cli_usage_error(ctx, "--until must be a date (YYYY-MM-DD) or an RFC 3339 time, not \"%s\"",
                               ctx->opt[OPT_UNTIL]);
    long long limit = AUDIT_DEFAULT_LIMIT;
    if (ctx->opt[OPT_LIMIT] && cli_args_parse_int(ctx->opt[OPT_LIMIT], 0, 1000000000, &limit) != 0)
        return cli_usage_error(ctx, "--limit must be a number (0 for no limit)");
    cli_table *table = NULL;
    if (!ctx->json) {
        if (!(table = cli_table_new(AUDIT_COLS, audit_headers)))
            return cli_fail(ctx, "out of memory");
        cli_table_set_max_width(table, AUDIT_COLS - 1, DETAILS_MAX_WIDTH);
    }
    /* Pages by hand: with a narrow filter over a long log the server may
     * answer a page without events but with a next_page_token. */
    int rc = CLI_EXIT_OK;
    long long listed = 0;
    char *token = NULL;
    for (int pages = 0; rc == CLI_EXIT_OK && pages < AUDIT_MAX_EMPTY_PAGES; pages++) {
        long long want = limit ? limit - listed : AUDIT_MAX_PAGE;
        req.page_size = (uint32_t)(want < AUDIT_MAX_PAGE ? want : AUDIT_MAX_PAGE);
        req.page_token = token ? token : (char *)"";
        Helpwire__V1__ListAuditEventsReply *r = NULL;
        rc = cli_call(ctx, "/helpwire.v1.Admin/ListAuditEvents", &req.base,
                      &helpwire__v1__list_audit_events_reply__descriptor, (ProtobufCMessage **)&r);
        if (rc != CLI_EXIT_OK)
            break;
        for (size_t i = 0; i < r->n_events && (!limit || listed < limit) && rc == CLI_EXIT_OK;
             i++, listed++) {
            if (!table)
                rc = emit_audit(ctx, r->events[i]);
            else if (add_audit_row(table, r->events[i]) != 0)
                rc = cli_fail(ctx, "out of memory");
        }
        free(token);
        token = NULL;
        if (r->next_page_token[0] && (!limit || listed < limit))
            token = strdup(r->next_page_token);
        protobuf_c_message_free_unpacked(&r->base, NULL);
        if (!token)
            break;
    }
    free(token);
    if (rc == CLI_EXIT_OK && table)
        cli_table_print(table, ctx->out);
    cli_table_free(table);
    return rc;
}

static const cli_opt list_opts[] = {
    {"action", "A",
     "Only action A (\"token.create\"), or actions starting with A when it ends in '.' (\"token.\")."},
    {"actor", "X", "Only actor X (\"token:tok-3\", \"system\")."},
    {"target", "T", "Only target T (\"tok-12\", \"c-7\", a directory)."},
    {"since", "WHEN", "Only entries at or after WHEN: YYYY-MM-DD (UTC) or an RFC 3339 time."},
    {"until", "WHEN", "Only entries before WHEN: YYYY-MM-DD (UTC) or an RFC 3339 time."},
    {"limit", "N", "Stop after N entries (newest first); 0 for all. Default 100."},
};

const cli_command cli_audit_commands[] = {
    {"audit", "list", "[--action A] [--actor X] [--target T] [--since WHEN] [--until WHEN] [--limit N]",
     "List the audit log, newest first",
     "Lists the server's audit log newest first: tokens created and revoked, backups, restores,\n"
     "settings changed at start, admin calls refused for want of a role, agents and queues changed,\n"
     "customers exported and erased. Entries cannot be changed or removed through the API.",
     list_opts, sizeof list_opts / sizeof list_opts[0], 0, 0, run_audit_list},
};
const size_t cli_audit_ncommands = sizeof cli_audit_commands / sizeof cli_audit_commands[0];
