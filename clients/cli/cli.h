/*
 * cli: what the helpwire CLI's commands share. A command is a row of a
 * table (cli_command): its words ("tickets" "list"), its flags (an args.h
 * table), how many positional arguments it takes and the function that
 * runs it. main parses the global flags and the command's, connects, and
 * calls run with a cli_ctx; run talks to helpwired through ctx->rpc and
 * prints through the helpers below, which keep the output contract in one
 * place:
 *   - results on stdout: aligned tables, or with --json one JSON object per
 *     result per line (JSON Lines);
 *   - failures on stderr as "helpwire: <STATUS_NAME>: <message>", exit 1;
 *   - usage errors as "helpwire: <message>" plus a hint, exit 2.
 * Bearer tokens are never printed, except the secret of `tokens create`.
 *
 * Each cmd_*.c file exports one command array; main.c lists the arrays.
 */
#ifndef CLI_CLI_H
#define CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "clients/cli/args.h"
#include "clients/lib/client.h"

enum { CLI_EXIT_OK = 0, CLI_EXIT_FAILED = 1, CLI_EXIT_USAGE = 2 };

/* CLI_MAX_POS: `outbox retry` takes up to 1000 sequences. */
enum { CLI_MAX_OPTS = 16, CLI_MAX_POS = 1000 };

typedef struct cli_command cli_command;

/* One run of one command. */
typedef struct cli_ctx {
    hw_client *rpc;
    const cli_command *cmd;
    bool json;
    FILE *out;              /* results */
    FILE *err;              /* diagnostics, progress */
    const char *const *opt; /* values of cmd->opts by index; NULL when not given */
    const char *const *pos; /* positional arguments */
    size_t npos;
    /* The command's own arguments as given (after its words), for flags
     * that may be repeated (cli_opt_all). */
    char **argv;
    int argc;
} cli_ctx;

/* Runs the command; returns a CLI_EXIT_* code. */
typedef int (*cli_run_fn)(cli_ctx *ctx);

struct cli_command {
    const char *group;    /* first word, e.g. "tickets" */
    const char *name;     /* second word, e.g. "list"; NULL for one-word commands */
    const char *synopsis; /* what follows the words, e.g. "ID --resolution TEXT" */
    const char *summary;  /* one line for the command list */
    const char *about;    /* a paragraph for --help */
    const cli_opt *opts;
    size_t nopts; /* at most CLI_MAX_OPTS */
    size_t min_pos, max_pos;
    cli_run_fn run;
};

/* The command arrays of the cmd_*.c modules. */
extern const cli_command cli_import_commands[];
extern const size_t cli_import_ncommands;
extern const cli_command cli_tickets_commands[];
extern const size_t cli_tickets_ncommands;
extern const cli_command cli_agents_commands[];
extern const size_t cli_agents_ncommands;
extern const cli_command cli_admin_commands[];
extern const size_t cli_admin_ncommands;
extern const cli_command cli_query_commands[];
extern const size_t cli_query_ncommands;
extern const cli_command cli_outbox_commands[];
extern const size_t cli_outbox_ncommands;
extern const cli_command cli_reports_commands[];
extern const size_t cli_reports_ncommands;
extern const cli_command cli_sla_commands[];
extern const size_t cli_sla_ncommands;
extern const cli_command cli_cluster_commands[];
extern const size_t cli_cluster_ncommands;
extern const cli_command cli_suggestions_commands[];
extern const size_t cli_suggestions_ncommands;
extern const cli_command cli_customers_commands[];
extern const size_t cli_customers_ncommands;
extern const cli_command cli_synonyms_commands[];
extern const size_t cli_synonyms_ncommands;
extern const cli_command cli_audit_commands[];
extern const size_t cli_audit_ncommands;

/* Every value of a flag that may be given more than once (`--attach A
 * --attach B`), in order, into out[0..max); returns how many (the parser
 * itself keeps the last). Values point into argv. */
size_t cli_opt_all(const cli_ctx *ctx, const char *name, const char **out, size_t max);

/* Reads the whole file path into a malloc'd buffer (*len bytes); at most
 * max_bytes. Returns 0, or -1 after printing why (cli_fail). */
int cli_read_file(cli_ctx *ctx, const char *path, size_t max_bytes, unsigned char **data, size_t *len);

/* The commands of cmd_attachments.c. */
extern const struct cli_command cli_attachments_commands[];
extern const size_t cli_attachments_ncommands;

/* Prints "helpwire: <STATUS_NAME>: <message>" to ctx->err. Returns
 * CLI_EXIT_FAILED. */
int cli_fail_status(cli_ctx *ctx, const hw_client_status *st);

/* Prints "helpwire: <message>" to ctx->err. Returns CLI_EXIT_FAILED. */
int cli_fail(cli_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints "helpwire: <message>" and a pointer to the command's --help to
 * ctx->err. Returns CLI_EXIT_USAGE. */
int cli_usage_error(cli_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Calls method; on failure prints it (cli_fail_status) and returns
 * CLI_EXIT_FAILED with *reply NULL; on success returns CLI_EXIT_OK and
 * *reply is the caller's (protobuf_c_message_free_unpacked(*reply, NULL)). */
int cli_call(cli_ctx *ctx, const char *method, const ProtobufCMessage *request,
             const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **reply);

/* A paginated list call, page after page: every reply goes to on_page,
 * which sets *n_items to the items it held and returns CLI_EXIT_OK to go
 * on, CLI_PAGES_DONE to stop there, or another code after reporting a
 * failure; it may change the request (e.g. its page_size) for the next
 * page. Ends after the page without a next_page_token or without items.
 * The request's page_token and the reply's next_page_token are found by
 * name in the descriptors; request's page_token is "" on return. Returns a
 * CLI_EXIT_* code. */
enum { CLI_PAGES_DONE = -1 };
typedef int (*cli_page_fn)(cli_ctx *ctx, const ProtobufCMessage *reply, size_t *n_items, void *arg);
int cli_call_pages(cli_ctx *ctx, const char *method, ProtobufCMessage *request,
                   const ProtobufCMessageDescriptor *reply_desc, cli_page_fn on_page, void *arg);

/* Writes obj as one compact line to ctx->out and releases it (steals the
 * reference). NULL (out of memory) is reported. Returns a CLI_EXIT_* code. */
int cli_emit_json(cli_ctx *ctx, json_t *obj);

/* cli_emit_json of msg converted by pbjson. */
int cli_emit_message(cli_ctx *ctx, const ProtobufCMessage *msg);

/* Splits a comma-separated list into a malloc'd array of malloc'd items
 * (empty items dropped). Returns 0, or -1 when out of memory. Free with
 * cli_free_list. */
int cli_split_list(const char *s, char ***items, size_t *n);

void cli_free_list(char **items, size_t n);

#endif
