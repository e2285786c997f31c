/*
 * cmd_outbox: `helpwire outbox failed` and `helpwire outbox retry` (the
 * Outbox service's failed list). failed lists the messages the channels
 * refused for good, newest first, following pages up to --limit; retry
 * queues chosen ones again by their sequence and prints the new sequence
 * of each. Both need an admin token. A message's survey_url (it embeds the
 * survey's secret token) is left out of the JSON output, as `tickets close`
 * does; the table shows the start of the text only.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clients/cli/cli.h"
#include "clients/cli/fmt.h"
#include "server/base/pbjson.h"
#include "clients/cli/table.h"
#include "helpwire/v1/outbox.pb-c.h"

enum { FAILED_DEFAULT_LIMIT = 100, FAILED_MAX_PAGE = 1000, RETRY_MAX_SEQS = 1000 };
enum { REASON_MAX_WIDTH = 60, TEXT_MAX_WIDTH = 40 };

static const char *const failed_headers[] = {"CHANNEL", "SEQ",    "FAILED", "ATTEMPTS",
                                             "TO",      "TICKET", "REASON", "TEXT"};
enum { FAILED_COLS = sizeof failed_headers / sizeof failed_headers[0] };

static int add_failed_row(cli_table *t, const Helpwire__V1__FailedEntry *e)
{
    static const Helpwire__V1__OutboundMessage empty = HELPWIRE__V1__OUTBOUND_MESSAGE__INIT;
    const Helpwire__V1__OutboundMessage *m = e->message ? e->message : &empty;
    char channel[32], seq[24], failed[32], attempts[16];
    snprintf(seq, sizeof seq, "%llu", (unsigned long long)m->seq);
    snprintf(attempts, sizeof attempts, "%u", m->attempt);
    const char *cells[FAILED_COLS] = {
        cli_fmt_enum(&helpwire__v1__channel__descriptor, m->channel, channel, sizeof channel),
        seq,
        cli_fmt_time(e->failed_unix_ms, failed, sizeof failed),
        attempts,
        m->channel_user_id,
        *m->ticket_id ? m->ticket_id : "-",
        e->reason,
        m->text,
    };
    return cli_table_add(t, cells);
}

/* An entry as JSON, without the survey link's secret. */
static int emit_failed(cli_ctx *ctx, const Helpwire__V1__FailedEntry *e)
{
    json_t *obj = hw_pbjson_from_message(&e->base);
    json_t *m = obj ? json_object_get(obj, "message") : NULL;
    if (json_is_object(m))
        json_object_del(m, "survey_url");
    return cli_emit_json(ctx, obj);
}

/* The state of an outbox failed listing across pages. */
typedef struct {
    Helpwire__V1__ListFailedRequest *req;
    cli_table *table; /* NULL: JSON lines */
    long long limit, listed;
} failed_pages;

static void set_failed_page_size(failed_pages *fp)
{
    long long want = fp->limit ? fp->limit - fp->listed : FAILED_MAX_PAGE;
    fp->req->page_size = (uint32_t)(want < FAILED_MAX_PAGE ? want : FAILED_MAX_PAGE);
}

static int failed_page(cli_ctx *ctx, const ProtobufCMessage *reply, size_t *n_items, void *arg)
{
    failed_pages *fp = arg;
    const Helpwire__V1__ListFailedReply *r = (const void *)reply;
    *n_items = r->n_entries;
    for (size_t i = 0; i < r->n_entries && (!fp->limit || fp->listed < fp->limit); i++, fp->listed++) {
        if (!fp->table) {
            int rc = emit_failed(ctx, r->entries[i]);
            if (rc != CLI_EXIT_OK)
                return rc;
        } else if (add_failed_row(fp->table, r->entries[i]) != 0) {
            return cli_fail(ctx, "out of memory");
        }
    }
    if (fp->limit && fp->listed >= fp->limit)
        return CLI_PAGES_DONE;
    set_failed_page_size(fp);
    return CLI_EXIT_OK;
}

/* --channel C into *channel; a usage error (returned) when unknown. */
static int parse_channel(cli_ctx *ctx, const char *text, Helpwire__V1__Channel *channel)
{
    char choices[64];
    int v;
    if (cli_parse_enum(&helpwire__v1__channel__descriptor, text, &v) != 0)
        return cli_usage_error(
            ctx, "--channel must be one of %s",
            cli_fmt_enum_choices(&helpwire__v1__channel__descriptor, choices, sizeof choices));
    *channel = (Helpwire__V1__Channel)v;
    return CLI_EXIT_OK;
}

static int run_outbox_failed(cli_ctx *ctx)
{
    enum { OPT_CHANNEL, OPT_LIMIT };
    Helpwire__V1__ListFailedRequest req = HELPWIRE__V1__LIST_FAILED_REQUEST__INIT;
    if (ctx->opt[OPT_CHANNEL]) {
        int rc = parse_channel(ctx, ctx->opt[OPT_CHANNEL], &req.channel);
        if (rc != CLI_EXIT_OK)
            return rc;
    }
    long long limit = FAILED_DEFAULT_LIMIT;
    if (ctx->opt[OPT_LIMIT] && cli_args_parse_int(ctx->opt[OPT_LIMIT], 0, 1000000000, &limit) != 0)
        return cli_usage_error(ctx, "--limit must be a number (0 for no limit)");
    cli_table *table = NULL;
    if (!ctx->json) {
        if (!(table = cli_table_new(FAILED_COLS, failed_headers)))
            return cli_fail(ctx, "out of memory");
        cli_table_set_max_width(table, FAILED_COLS - 2, REASON_MAX_WIDTH);
        cli_table_set_max_width(table, FAILED_COLS - 1, TEXT_MAX_WIDTH);
    }
    failed_pages fp = {.req = &req, .table = table, .limit = limit};
    set_failed_page_size(&fp);
    int rc = cli_call_pages(ctx, "/helpwire.v1.Outbox/ListFailed", &req.base,
                            &helpwire__v1__list_failed_reply__descriptor, failed_page, &fp);
    if (rc == CLI_EXIT_OK && table)
        cli_table_print(table, ctx->out);
    cli_table_free(table);
    return rc;
}

static int run_outbox_retry(cli_ctx *ctx)
{
    enum { OPT_CHANNEL };
    Helpwire__V1__RetryFailedRequest req = HELPWIRE__V1__RETRY_FAILED_REQUEST__INIT;
    Helpwire__V1__RetryFailedReply *reply = NULL;
    if (!ctx->opt[OPT_CHANNEL])
        return cli_usage_error(ctx, "--channel C is required");
    int rc = parse_channel(ctx, ctx->opt[OPT_CHANNEL], &req.channel);
    if (rc != CLI_EXIT_OK)
        return rc;
    uint64_t seqs[RETRY_MAX_SEQS];
    for (size_t i = 0; i < ctx->npos; i++) {
        long long v;
        if (cli_args_parse_int(ctx->pos[i], 1, INT64_MAX, &v) != 0)
            return cli_usage_error(ctx, "'%s' is not a sequence (a number from `helpwire outbox failed`)",
                                   ctx->pos[i]);
        seqs[i] = (uint64_t)v;
    }
    req.seqs = seqs;
    req.n_seqs = ctx->npos;
    if (cli_call(ctx, "/helpwire.v1.Outbox/RetryFailed", &req.base,
                 &helpwire__v1__retry_failed_reply__descriptor, (ProtobufCMessage **)&reply) != CLI_EXIT_OK)
        return CLI_EXIT_FAILED;
    char channel[32];
    cli_fmt_enum(&helpwire__v1__channel__descriptor, req.channel, channel, sizeof channel);
    for (size_t i = 0; i < reply->n_seqs && i < req.n_seqs && rc == CLI_EXIT_OK; i++) {
        if (ctx->json)
            rc = cli_emit_json(ctx, json_pack("{s:s, s:I, s:I}", "channel", channel, "seq",
                                              (json_int_t)seqs[i], "new_seq", (json_int_t)reply->seqs[i]));
        else
            fprintf(ctx->out, "%s seq %llu queued again as %llu\n", channel, (unsigned long long)seqs[i],
                    (unsigned long long)reply->seqs[i]);
    }
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return rc;
}

static const cli_opt failed_opts[] = {
    {"channel", "C", "Only channel C: whatsapp, telegram or webchat. Default every channel."},
    {"limit", "N", "Stop after N entries (newest first); 0 for all. Default 100."},
};
static const cli_opt retry_opts[] = {
    {"channel", "C", "The channel of the sequences: whatsapp, telegram or webchat (required)."},
};

const cli_command cli_outbox_commands[] = {
    {"outbox", "failed", "[--channel C] [--limit N]", "List messages the channels refused, newest first",
     "Lists the outbox messages a bridge acknowledged as FAILED (the channel refused them for good),\n"
     "newest first, with the channel's reason and the attempts made; SEQ is what `outbox retry` takes.",
     failed_opts, sizeof failed_opts / sizeof failed_opts[0], 0, 0, run_outbox_failed},
    {"outbox", "retry", "--channel C SEQ...", "Queue failed messages again",
     "Queues the failed messages SEQ... of channel C again, each under a new sequence, and takes them\n"
     "off the failed list; their tickets' histories say so. All or nothing: one sequence not in the\n"
     "list (NOT_FOUND) queues none. Up to 1000 sequences.",
     retry_opts, sizeof retry_opts / sizeof retry_opts[0], 1, RETRY_MAX_SEQS, run_outbox_retry},
};
const size_t cli_outbox_ncommands = sizeof cli_outbox_commands / sizeof cli_outbox_commands[0];
