/*
 * cmd_admin: `helpwire tokens create|list|revoke`, `helpwire stats` and
 * `helpwire backup DIR` (the Admin service). tokens create is the one
 * place the CLI prints a secret: the new token, once, alone on stdout (so
 * `T=$(helpwire tokens create ...)` captures just it), with what it is on
 * stderr. backup's DIR is a path on the server's machine, passed through
 * unchanged.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clients/cli/cli.h"
#include "clients/cli/fmt.h"
#include "clients/cli/table.h"
#include "helpwire/v1/admin.pb-c.h"

static int run_tokens_create(cli_ctx *ctx)
{
    enum { OPT_ROLE, OPT_AGENT, OPT_DESCRIPTION };
    int role;
    char choices[64];
    if (!ctx->opt[OPT_ROLE] ||
        cli_parse_enum(&helpwire__v1__role__descriptor, ctx->opt[OPT_ROLE], &role) != 0)
        return cli_usage_error(
            ctx, "--role must be one of %s",
            cli_fmt_enum_choices(&helpwire__v1__role__descriptor, choices, sizeof choices));
    if (role == HELPWIRE__V1__ROLE__ROLE_AGENT && !ctx->opt[OPT_AGENT])
        return cli_usage_error(ctx, "--role agent needs --agent ID");
    Helpwire__V1__CreateTokenRequest req = HELPWIRE__V1__CREATE_TOKEN_REQUEST__INIT;
    Helpwire__V1__CreateTokenReply *reply = NULL;
    req.role = (Helpwire__V1__Role)role;
    if (ctx->opt[OPT_AGENT])
        req.agent_id = (char *)ctx->opt[OPT_AGENT];
    if (ctx->opt[OPT_DESCRIPTION])
        req.description = (char *)ctx->opt[OPT_DESCRIPTION];
    if (cli_call(ctx, "/helpwire.v1.Admin/CreateToken", &req.base,
                 &helpwire__v1__create_token_reply__descriptor, (ProtobufCMessage **)&reply) != CLI_EXIT_OK)
        return CLI_EXIT_FAILED;
    int rc = CLI_EXIT_OK;
    if (ctx->json) {
        rc = cli_emit_message(ctx, &reply->base);
    } else {
        char name[32];
        const Helpwire__V1__TokenInfo *info = reply->info;
        fprintf(
            ctx->err, "created token %s (role %s%s%s); its secret is shown only now:\n",
            info ? info->id : "?",
            cli_fmt_enum(&helpwire__v1__role__descriptor, info ? (int)info->role : role, name, sizeof name),
            info && *info->agent_id ? ", agent " : "", info && *info->agent_id ? info->agent_id : "");
        fprintf(ctx->out, "%s\n", reply->token);
    }
    fflush(ctx->out);
    explicit_bzero(reply->token, strlen(reply->token));
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return rc;
}

static const char *const token_headers[] = {"ID", "ROLE", "AGENT", "CREATED", "REVOKED", "DESCRIPTION"};
enum { TOKEN_COLS = sizeof token_headers / sizeof token_headers[0] };

static int add_token_row(cli_table *t, const Helpwire__V1__TokenInfo *info)
{
    char role[32], created[32], revoked[32];
    const char *cells[TOKEN_COLS] = {
        info->id,
        cli_fmt_enum(&helpwire__v1__role__descriptor, info->role, role, sizeof role),
        *info->agent_id ? info->agent_id : "-",
        cli_fmt_time(info->created_unix_ms, created, sizeof created),
        cli_fmt_time(info->revoked_unix_ms, revoked, sizeof revoked),
        info->description,
    };
    return cli_table_add(t, cells);
}

static int run_tokens_list(cli_ctx *ctx)
{
    Helpwire__V1__ListTokensRequest req = HELPWIRE__V1__LIST_TOKENS_REQUEST__INIT;
    Helpwire__V1__ListTokensReply *reply = NULL;
    if (cli_call(ctx, "/helpwire.v1.Admin/ListTokens", &req.base,
                 &helpwire__v1__list_tokens_reply__descriptor, (ProtobufCMessage **)&reply) != CLI_EXIT_OK)
        return CLI_EXIT_FAILED;
    int rc = CLI_EXIT_OK;
    cli_table *t = NULL;
    if (ctx->json) {
        for (size_t i = 0; i < reply->n_tokens && rc == CLI_EXIT_OK; i++)
            rc = cli_emit_message(ctx, &reply->tokens[i]->base);
        goto out;
    }
    if (!(t = cli_table_new(TOKEN_COLS, token_headers))) {
        rc = cli_fail(ctx, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < reply->n_tokens; i++)
        if (add_token_row(t, reply->tokens[i]) != 0) {
            rc = cli_fail(ctx, "out of memory");
            goto out;
        }
    cli_table_print(t, ctx->out);
out:
    cli_table_free(t);
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return rc;
}

static int run_tokens_revoke(cli_ctx *ctx)
{
    Helpwire__V1__RevokeTokenRequest req = HELPWIRE__V1__REVOKE_TOKEN_REQUEST__INIT;
    Helpwire__V1__RevokeTokenReply *reply = NULL;
    req.id = (char *)ctx->pos[0];
    if (cli_call(ctx, "/helpwire.v1.Admin/RevokeToken", &req.base,
                 &helpwire__v1__revoke_token_reply__descriptor, (ProtobufCMessage **)&reply) != CLI_EXIT_OK)
        return CLI_EXIT_FAILED;
    int rc = CLI_EXIT_OK;
    if (ctx->json)
        rc = cli_emit_message(ctx, reply->info ? &reply->info->base : &reply->base);
    else
        fprintf(ctx->out, "revoked %s\n", reply->info ? reply->info->id : req.id);
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return rc;
}

static int run_stats(cli_ctx *ctx)
{
    Helpwire__V1__GetStatsRequest req = HELPWIRE__V1__GET_STATS_REQUEST__INIT;
    Helpwire__V1__ServerStats *s = NULL;
    if (cli_call(ctx, "/helpwire.v1.Admin/GetStats", &req.base, &helpwire__v1__server_stats__descriptor,
                 (ProtobufCMessage **)&s) != CLI_EXIT_OK)
        return CLI_EXIT_FAILED;
    if (ctx->json) {
        int rc = cli_emit_message(ctx, &s->base);
        protobuf_c_message_free_unpacked(&s->base, NULL);
        return rc;
    }
    char map[64], size[24], used[24], num[8][24], started[32], uptime[24], since[80];
    snprintf(map, sizeof map, "%s of %s (%.0f%%)", cli_fmt_bytes(s->map_used_bytes, used, sizeof used),
             cli_fmt_bytes(s->map_size_bytes, size, sizeof size),
             s->map_size_bytes ? 100.0 * (double)s->map_used_bytes / (double)s->map_size_bytes : 0.0);
    const uint64_t counts[8] = {s->customers, s->tickets,     s->open_tickets,   s->articles,
                                s->faqs,      s->index_terms, s->outbox_backlog, s->calls_in_flight};
    for (int i = 0; i < 8; i++)
        snprintf(num[i], sizeof num[i], "%llu", (unsigned long long)counts[i]);
    double up_s = s->started_unix_ms ? (double)time(NULL) - (double)s->started_unix_ms / 1000.0 : 0;
    snprintf(since, sizeof since, "%s (up %s)", cli_fmt_time(s->started_unix_ms, started, sizeof started),
             cli_fmt_duration(up_s, uptime, sizeof uptime));
    const char *rows[][2] = {
        {"store", map},           {"customers", num[0]},      {"tickets", num[1]},
        {"open tickets", num[2]}, {"articles", num[3]},       {"faqs", num[4]},
        {"index terms", num[5]},  {"outbox backlog", num[6]}, {"calls in flight", num[7]},
        {"started", since},
    };
    int rc = CLI_EXIT_OK;
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
    protobuf_c_message_free_unpacked(&s->base, NULL);
    return rc;
}

static int run_backup(cli_ctx *ctx)
{
    Helpwire__V1__BackupRequest req = HELPWIRE__V1__BACKUP_REQUEST__INIT;
    Helpwire__V1__BackupReply *reply = NULL;
    req.directory = (char *)ctx->pos[0];
    if (cli_call(ctx, "/helpwire.v1.Admin/Backup", &req.base, &helpwire__v1__backup_reply__descriptor,
                 (ProtobufCMessage **)&reply) != CLI_EXIT_OK)
        return CLI_EXIT_FAILED;
    int rc = CLI_EXIT_OK;
    if (ctx->json) {
        json_t *obj = json_pack("{s:s, s:I, s:I}", "directory", req.directory, "size_bytes",
                                (json_int_t)reply->size_bytes, "took_ms", (json_int_t)reply->took_ms);
        rc = cli_emit_json(ctx, obj);
    } else {
        char size[24];
        fprintf(ctx->out, "backup of %s written to %s/data.mdb on the server in %llu ms\n",
                cli_fmt_bytes(reply->size_bytes, size, sizeof size), req.directory,
                (unsigned long long)reply->took_ms);
    }
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return rc;
}

static const cli_opt create_opts[] = {
    {"role", "R", "bridge, agent or admin (required)."},
    {"agent", "ID", "For --role agent: the agent the token acts as (required then)."},
    {"description", "D", "Free text, e.g. \"telegram bridge on host 3\"."},
};

const cli_command cli_admin_commands[] = {
    {"tokens", "create", "--role bridge|agent|admin [--agent ID] [--description D]", "Create an API token",
     "Creates a token and prints its secret once on stdout; only its hash is stored.", create_opts,
     sizeof create_opts / sizeof create_opts[0], 0, 0, run_tokens_create},
    {"tokens", "list", "", "List tokens (never their secrets)", "Lists every token with its role and state.",
     NULL, 0, 0, 0, run_tokens_list},
    {"tokens", "revoke", "ID", "Revoke a token",
     "Revokes token ID (e.g. tok-12); it is refused from the next call.", NULL, 0, 1, 1, run_tokens_revoke},
    {"stats", NULL, "", "Show server statistics", "Shows store size, record counts and load.", NULL, 0, 0, 0,
     run_stats},
    {"backup", NULL, "DIR", "Write an online backup on the server",
     "Writes a consistent, compacted copy of the store as DIR/data.mdb (mode 0600) on the server's\n"
     "machine, an absolute path there. DIR is made (mode 0700) when missing, its parent must exist;\n"
     "an existing DIR must not hold a data.mdb. The server keeps serving meanwhile.",
     NULL, 0, 1, 1, run_backup},
};
const size_t cli_admin_ncommands = sizeof cli_admin_commands / sizeof cli_admin_commands[0];
