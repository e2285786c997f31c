/*
 * cmd_query: `helpwire search QUERY` (Knowledge.Search, as an agent sees
 * it) and `helpwire surveys stats` (Surveys.GetSurveyStats: CSAT by time
 * range, channel, queue and agent).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clients/cli/cli.h"
#include "clients/cli/fmt.h"
#include "clients/cli/table.h"
#include "helpwire/v1/knowledge.pb-c.h"
#include "helpwire/v1/surveys.pb-c.h"

/* Parses a whole non-negative number; -1 if s is not one. */
static long long parse_count(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    return (*s && !*end && v >= 0) ? v : -1;
}

/* Drops the U+0002/U+0003 match markers of a snippet for plain output. */
static void strip_marks(char *s)
{
    char *o = s;
    for (; *s; s++)
        if (*s != '\x02' && *s != '\x03')
            *o++ = *s;
    *o = '\0';
}

static int run_search(cli_ctx *ctx)
{
    enum { OPT_TOP_K, OPT_LOCALE };
    Helpwire__V1__SearchRequest req = HELPWIRE__V1__SEARCH_REQUEST__INIT;
    Helpwire__V1__SearchReply *reply = NULL;
    req.query = (char *)ctx->pos[0];
    if (ctx->opt[OPT_TOP_K]) {
        long long k = parse_count(ctx->opt[OPT_TOP_K]);
        if (k < 1 || k > 100)
            return cli_usage_error(ctx, "--top-k must be a number from 1 to 100");
        req.top_k = (uint32_t)k;
    }
    if (ctx->opt[OPT_LOCALE])
        req.locale = (char *)ctx->opt[OPT_LOCALE];
    if (cli_call(ctx, "/helpwire.v1.Knowledge/Search", &req.base, &helpwire__v1__search_reply__descriptor,
                 (ProtobufCMessage **)&reply) != CLI_EXIT_OK)
        return CLI_EXIT_FAILED;
    int rc = CLI_EXIT_OK;
    if (ctx->json) {
        for (size_t i = 0; i < reply->n_hits && rc == CLI_EXIT_OK; i++)
            rc = cli_emit_message(ctx, &reply->hits[i]->base);
    } else {
        static const char *const headers[] = {"SCORE", "KIND", "ID", "TITLE", "SNIPPET"};
        cli_table *t = cli_table_new(5, headers);
        for (size_t i = 0; t && i < reply->n_hits; i++) {
            const Helpwire__V1__Hit *h = reply->hits[i];
            char score[24];
            snprintf(score, sizeof score, "%.2f", h->score);
            strip_marks(h->snippet);
            const char *cells[5] = {score,
                                    h->kind == HELPWIRE__V1__DOC_KIND__DOC_KIND_FAQ ? "faq" : "article",
                                    h->id, h->title, h->snippet};
            if (cli_table_add(t, cells) != 0) {
                cli_table_free(t);
                t = NULL;
            }
        }
        if (t)
            cli_table_print(t, ctx->out);
        else
            rc = cli_fail(ctx, "out of memory");
        cli_table_free(t);
        fprintf(ctx->err, "%zu hits of %llu matching, %llu us on the server\n", reply->n_hits,
                (unsigned long long)reply->matched, (unsigned long long)reply->took_us);
    }
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return rc;
}

static int run_survey_stats(cli_ctx *ctx)
{
    enum { OPT_DAYS, OPT_CHANNEL, OPT_QUEUE, OPT_AGENT };
    Helpwire__V1__GetSurveyStatsRequest req = HELPWIRE__V1__GET_SURVEY_STATS_REQUEST__INIT;
    Helpwire__V1__SurveyStats *s = NULL;
    if (ctx->opt[OPT_DAYS]) {
        long long d = parse_count(ctx->opt[OPT_DAYS]);
        if (d < 1 || d > 3650)
            return cli_usage_error(ctx, "--days must be a number from 1 to 3650");
        req.from_unix_ms = ((int64_t)time(NULL) - d * 86400) * 1000;
    }
    if (ctx->opt[OPT_CHANNEL]) {
        int ch;
        char choices[96];
        if (cli_parse_enum(&helpwire__v1__channel__descriptor, ctx->opt[OPT_CHANNEL], &ch) != 0)
            return cli_usage_error(
                ctx, "--channel must be one of %s",
                cli_fmt_enum_choices(&helpwire__v1__channel__descriptor, choices, sizeof choices));
        req.channel = (Helpwire__V1__Channel)ch;
    }
    if (ctx->opt[OPT_QUEUE])
        req.queue = (char *)ctx->opt[OPT_QUEUE];
    if (ctx->opt[OPT_AGENT])
        req.agent_id = (char *)ctx->opt[OPT_AGENT];
    if (cli_call(ctx, "/helpwire.v1.Surveys/GetSurveyStats", &req.base,
                 &helpwire__v1__survey_stats__descriptor, (ProtobufCMessage **)&s) != CLI_EXIT_OK)
        return CLI_EXIT_FAILED;
    int rc = CLI_EXIT_OK;
    if (ctx->json) {
        rc = cli_emit_message(ctx, &s->base);
    } else {
        char v[8][48];
        snprintf(v[0], sizeof v[0], "%llu", (unsigned long long)s->sent);
        snprintf(v[1], sizeof v[1], "%llu", (unsigned long long)s->answered);
        snprintf(v[2], sizeof v[2], "%.1f%%", 100 * s->response_rate);
        snprintf(v[3], sizeof v[3], "%.1f%%", 100 * s->csat);
        snprintf(v[4], sizeof v[4], "%.2f", s->average_rating);
        v[5][0] = '\0';
        for (size_t i = 0; i < s->n_distribution && i < 5; i++) {
            size_t used = strlen(v[5]);
            snprintf(v[5] + used, sizeof v[5] - used, "%s%zu:%llu", i ? "  " : "", i + 1,
                     (unsigned long long)s->distribution[i]);
        }
        const char *rows[][2] = {{"sent", v[0]},       {"answered", v[1]}, {"response rate", v[2]},
                                 {"CSAT (4-5)", v[3]}, {"average", v[4]},  {"ratings", v[5]}};
        cli_table *t = cli_table_new(2, NULL);
        for (size_t i = 0; t && i < sizeof rows / sizeof rows[0]; i++)
            if (cli_table_add(t, rows[i]) != 0) {
                cli_table_free(t);
                t = NULL;
            }
        if (t)
            cli_table_print(t, ctx->out);
        else
            rc = cli_fail(ctx, "out of memory");
        cli_table_free(t);
    }
    protobuf_c_message_free_unpacked(&s->base, NULL);
    return rc;
}

static const cli_opt search_opts[] = {
    {"top-k", "N", "Number of hits, 1 to 100 (default 10)."},
    {"locale", "L", "Only documents of this locale, e.g. zh or en."},
};

static const cli_opt stats_opts[] = {
    {"days", "D", "Only surveys sent in the last D days (default: all)."},
    {"channel", "C", "Only this channel: whatsapp, telegram or webchat."},
    {"queue", "Q", "Only tickets of this skill queue."},
    {"agent", "ID", "Only tickets this agent held when they closed."},
};

const cli_command cli_query_commands[] = {
    {"search", NULL, "QUERY [--top-k N] [--locale L]", "Search the knowledge base",
     "Ranks articles and FAQs for QUERY (BM25, Chinese and English) and prints the best hits.", search_opts,
     sizeof search_opts / sizeof search_opts[0], 1, 1, run_search},
    {"surveys", "stats", "[--days D] [--channel C] [--queue Q] [--agent ID]",
     "Show satisfaction (CSAT) figures",
     "Sent and answered surveys, response rate, CSAT (share of ratings 4-5), average and distribution.",
     stats_opts, sizeof stats_opts / sizeof stats_opts[0], 0, 0, run_survey_stats},
};
const size_t cli_query_ncommands = sizeof cli_query_commands / sizeof cli_query_commands[0];
