/*
 * helpwire: the admin CLI of helpwired. `helpwire [global flags] COMMAND
 * [flags] [args]`: the command table below lists every command (each
 * cmd_*.c module contributes its array), so usage, dispatch and --help
 * come from one place. main parses the global flags (accepted before and
 * after the command words), finds the command, parses its flags, loads the
 * token, connects, and runs it; everything else is in the modules.
 *
 * Exit status: 0 success, 1 a failed call or local error (printed as
 * "helpwire: <STATUS_NAME>: <message>" or "helpwire: <message>"), 2 a
 * usage error. The bearer token comes from --token-file, --token or
 * $HELPWIRE_TOKEN (in that order), is never printed, and is wiped from
 * memory at exit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc.h>

#include "clients/cli/args.h"
#include "clients/cli/cli.h"
#include "clients/lib/client.h"
#include "server/base/grpc_runtime.h"

enum { DEFAULT_TIMEOUT_MS = 30000 };

/* The global flags; values by index. */
enum { G_SERVER, G_TOKEN, G_TOKEN_FILE, G_TLS_CA, G_TLS_SERVER_NAME, G_TIMEOUT_MS, G_JSON, G_COUNT };
static const cli_opt global_opts[G_COUNT] = {
    [G_SERVER] =
        {"server", "ADDR",
         "helpwired's address, host:port, or several replicas' IP addresses, comma-separated (the first "
         "that answers is used). Default $HELPWIRE_ADDR (or $HELPWIRE_SERVER) or 127.0.0.1:50051."},
    [G_TOKEN] = {"token", "T", "Bearer token. Default $HELPWIRE_TOKEN."},
    [G_TOKEN_FILE] = {"token-file", "F", "Read the bearer token from file F (keeps it out of `ps`)."},
    [G_TLS_CA] = {"tls-ca", "FILE", "Talk TLS, trusting the PEM roots in FILE. Default plaintext."},
    [G_TLS_SERVER_NAME] = {"tls-server-name", "NAME", "Expect NAME in the server's certificate."},
    [G_TIMEOUT_MS] = {"timeout-ms", "MS", "Deadline of each call. Default 30000."},
    [G_JSON] = {"json", NULL, "Machine output: one JSON object per result per line."},
};

/* Every command module; adding one is one line here. */
typedef struct command_module {
    const cli_command *commands;
    const size_t *n;
} command_module;

static const command_module modules[] = {
    {cli_import_commands, &cli_import_ncommands},   {cli_tickets_commands, &cli_tickets_ncommands},
    {cli_agents_commands, &cli_agents_ncommands},   {cli_admin_commands, &cli_admin_ncommands},
    {cli_query_commands, &cli_query_ncommands},     {cli_outbox_commands, &cli_outbox_ncommands},
    {cli_sla_commands, &cli_sla_ncommands},         {cli_reports_commands, &cli_reports_ncommands},
    {cli_cluster_commands, &cli_cluster_ncommands},   {cli_suggestions_commands, &cli_suggestions_ncommands},
    {cli_synonyms_commands, &cli_synonyms_ncommands}, {cli_audit_commands, &cli_audit_ncommands},
    {cli_customers_commands, &cli_customers_ncommands},
    {cli_attachments_commands, &cli_attachments_ncommands},
};
enum { MODULE_COUNT = sizeof modules / sizeof modules[0] };

/* The command named group [name]; name NULL finds any command of group. */
static const cli_command *find_command(const char *group, const char *name)
{
    for (size_t m = 0; m < MODULE_COUNT; m++)
        for (size_t i = 0; i < *modules[m].n; i++) {
            const cli_command *c = &modules[m].commands[i];
            if (strcmp(c->group, group) != 0)
                continue;
            if (!name || (c->name && strcmp(c->name, name) == 0))
                return c;
        }
    return NULL;
}

static void print_command_line(FILE *f, const cli_command *c)
{
    char words[64];
    snprintf(words, sizeof words, "%s%s%s", c->group, c->name ? " " : "", c->name ? c->name : "");
    fprintf(f, "  %-19s %s\n", words, c->summary);
}

/* Lists the commands (of group only, when not NULL). */
static void print_usage(FILE *f, const char *group)
{
    if (group) {
        fprintf(f, "usage: helpwire [global flags] %s COMMAND [flags] [args]\n\ncommands:\n", group);
    } else {
        fprintf(f, "usage: helpwire [global flags] COMMAND [flags] [args]\n\n"
                   "The admin CLI of helpwired.\n\ncommands:\n");
    }
    for (size_t m = 0; m < MODULE_COUNT; m++)
        for (size_t i = 0; i < *modules[m].n; i++)
            if (!group || strcmp(modules[m].commands[i].group, group) == 0)
                print_command_line(f, &modules[m].commands[i]);
    fprintf(f, "\nglobal flags:\n");
    cli_args_print_options(f, global_opts, G_COUNT);
    fprintf(f,
            "\nRun 'helpwire COMMAND --help' for a command's flags. Exit status: 0 ok, 1 failed, 2 usage.\n");
}

static void print_command_help(FILE *f, const cli_command *c)
{
    fprintf(f, "usage: helpwire %s%s%s %s\n\n%s\n", c->group, c->name ? " " : "", c->name ? c->name : "",
            c->synopsis, c->about);
    if (c->nopts) {
        fprintf(f, "\nflags:\n");
        cli_args_print_options(f, c->opts, c->nopts);
    }
    fprintf(f, "\nglobal flags:\n");
    cli_args_print_options(f, global_opts, G_COUNT);
}

int main(int argc, char **argv)
{
    const char *gval[G_COUNT] = {0};
    const char *cval[CLI_MAX_OPTS] = {0};
    const char *pos[CLI_MAX_POS] = {0};
    size_t npos = 0;
    int consumed = 0, rc = CLI_EXIT_USAGE;
    char err[512];
    char *token = NULL;
    hw_client *rpc = NULL;
    bool grpc_started = false;
    cli_ctx ctx = {.out = stdout, .err = stderr};

    /* The global flags before the command words. */
    cli_optset gset = {global_opts, G_COUNT, gval};
    int pr = cli_args_parse(&gset, 1, argc - 1, argv + 1, true, pos, 0, &npos, &consumed, err, sizeof err);
    if (pr == CLI_ARGS_HELP) {
        print_usage(stdout, NULL);
        return CLI_EXIT_OK;
    }
    if (pr == CLI_ARGS_ERROR) {
        rc = cli_usage_error(&ctx, "%s", err);
        goto out;
    }
    int next = 1 + consumed;
    if (next >= argc) {
        print_usage(stderr, NULL);
        goto out;
    }
    const char *group = argv[next++];
    const cli_command *cmd = find_command(group, NULL);
    if (!cmd) {
        rc = cli_usage_error(&ctx, "unknown command '%s'", group);
        goto out;
    }
    if (cmd->name) {
        if (next >= argc) {
            print_usage(stderr, group);
            goto out;
        }
        const char *name = argv[next++];
        if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
            print_usage(stdout, group);
            return CLI_EXIT_OK;
        }
        if (!(cmd = find_command(group, name))) {
            rc = cli_usage_error(&ctx, "unknown command '%s %s'", group, name);
            goto out;
        }
    }
    ctx.cmd = cmd;

    /* The command's flags, global flags again, and its arguments. */
    cli_optset sets[2] = {{global_opts, G_COUNT, gval}, {cmd->opts, cmd->nopts, cval}};
    pr = cli_args_parse(sets, 2, argc - next, argv + next, false, pos, CLI_MAX_POS, &npos, &consumed, err,
                        sizeof err);
    if (pr == CLI_ARGS_HELP) {
        print_command_help(stdout, cmd);
        return CLI_EXIT_OK;
    }
    if (pr == CLI_ARGS_ERROR) {
        rc = cli_usage_error(&ctx, "%s", err);
        goto out;
    }
    if (npos < cmd->min_pos || npos > cmd->max_pos) {
        rc = cli_usage_error(&ctx, "expected: %s%s%s %s", cmd->group, cmd->name ? " " : "",
                             cmd->name ? cmd->name : "", cmd->synopsis);
        goto out;
    }
    ctx.opt = cval;
    ctx.pos = pos;
    ctx.npos = npos;
    ctx.argv = argv + next;
    ctx.argc = argc - next;
    ctx.json = gval[G_JSON] != NULL;

    long long timeout_ms = DEFAULT_TIMEOUT_MS;
    if (gval[G_TIMEOUT_MS] &&
        cli_args_parse_int(gval[G_TIMEOUT_MS], 1, 24LL * 3600 * 1000, &timeout_ms) != 0) {
        rc = cli_usage_error(&ctx, "--timeout-ms must be a number of milliseconds");
        goto out;
    }
    if (gval[G_TOKEN] && gval[G_TOKEN_FILE]) {
        rc = cli_usage_error(&ctx, "give --token or --token-file, not both");
        goto out;
    }
    const char *server = gval[G_SERVER];
    if (!server)
        server = getenv("HELPWIRE_ADDR");
    if (!server)
        server = getenv("HELPWIRE_SERVER");
    if (!server || !*server)
        server = "127.0.0.1:50051";
    {
        /* A bad address list is a usage error, named before connecting. */
        char target[HW_CHANNEL_MAX_TARGET_BYTES], authority[HW_CHANNEL_MAX_TARGET_BYTES];
        if (hw_channel_target(server, target, sizeof target, authority, sizeof authority, err, sizeof err) !=
            0) {
            rc = cli_usage_error(&ctx, "--server: %s", err);
            goto out;
        }
    }
    if (hw_client_secret_load(gval[G_TOKEN_FILE], gval[G_TOKEN] ? gval[G_TOKEN] : getenv("HELPWIRE_TOKEN"),
                              "token-file", &token, err, sizeof err) != 0) {
        rc = cli_fail(&ctx, "%s", err);
        goto out;
    }

    hw_grpc_runtime_prepare();
    grpc_init();
    grpc_started = true;
    hw_client_options ro = {
        .target = server,
        .token = token,
        .tls_ca_file = gval[G_TLS_CA],
        .tls_server_name = gval[G_TLS_SERVER_NAME],
        .timeout_ms = (int)timeout_ms,
        /* Replies may be large (a page of 500 tickets, a long conversation). */
        .max_receive_bytes = 64 << 20,
    };
    if (hw_client_create(&rpc, &ro, err, sizeof err) != 0) {
        rc = cli_fail(&ctx, "%s", err);
        goto out;
    }
    ctx.rpc = rpc;
    rc = cmd->run(&ctx);
out:
    hw_client_destroy(rpc);
    if (grpc_started)
        grpc_shutdown();
    hw_client_secret_free(&token);
    if (fflush(stdout) != 0 && rc == CLI_EXIT_OK)
        rc = CLI_EXIT_FAILED;
    return rc;
}
