/*
 * cmd_import: `helpwire import articles|faqs|synonyms FILE`, bulk loading
 * of the knowledge base from JSON Lines. Lines are parsed here (jsonl.h)
 * and sent as PutArticle/PutFaq/PutSynonymSet calls with up to --parallel calls in flight on one
 * completion queue (client.h pipes), so throughput is not one round trip per
 * record. A bad line (unparseable, or refused by the server) is reported
 * with its line number and skipped; the import goes on and exits 1 at the
 * end. A failure that no later line can escape (the token is refused, the
 * server is unreachable) stops the import at once instead of reporting
 * every remaining line.
 *
 * The total for the progress bar comes from a first counting pass over
 * the file; with FILE "-" (stdin) the total is unknown and the bar shows
 * the count and rate only. Re-running an import is safe: records carry
 * their ids, and Put replaces.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <grpc/status.h>

#include "clients/cli/cli.h"
#include "clients/cli/jsonl.h"
#include "clients/cli/progress.h"
#include "clients/cli/table.h"
#include "helpwire/v1/knowledge.pb-c.h"

enum { IMPORT_DEFAULT_PARALLEL = 16, IMPORT_MAX_PARALLEL = 256 };

/* What a kind of record needs: its names, its method, how a line becomes
 * a request. */
typedef struct import_kind {
    const char *plural; /* "articles" */
    const char *method;
    const ProtobufCMessageDescriptor *reply_desc;
    /* Parses line into a new request message (owned by the caller). */
    int (*parse)(const char *line, size_t len, ProtobufCMessage **request, char *err, size_t errlen);
} import_kind;

typedef struct import_state {
    cli_ctx *ctx;
    const char *path;
    cli_progress progress;
    uint64_t records; /* lines holding a record (or a bad one) seen so far */
    uint64_t finished;
    uint64_t imported;
    uint64_t failed;
    bool stopped;           /* a fatal status was seen: send nothing more */
    hw_client_status fatal; /* that status */
} import_state;

static int parse_article_request(const char *line, size_t len, ProtobufCMessage **request, char *err,
                                 size_t errlen)
{
    Helpwire__V1__Article *a = NULL;
    int rc = cli_jsonl_parse_article(line, len, &a, err, errlen);
    if (rc != CLI_JSONL_RECORD)
        return rc;
    Helpwire__V1__PutArticleRequest *req = malloc(sizeof *req);
    if (!req) {
        protobuf_c_message_free_unpacked(&a->base, NULL);
        snprintf(err, errlen, "out of memory");
        return CLI_JSONL_BAD;
    }
    helpwire__v1__put_article_request__init(req);
    req->article = a;
    *request = &req->base;
    return CLI_JSONL_RECORD;
}

static int parse_faq_request(const char *line, size_t len, ProtobufCMessage **request, char *err,
                             size_t errlen)
{
    Helpwire__V1__Faq *f = NULL;
    int rc = cli_jsonl_parse_faq(line, len, &f, err, errlen);
    if (rc != CLI_JSONL_RECORD)
        return rc;
    Helpwire__V1__PutFaqRequest *req = malloc(sizeof *req);
    if (!req) {
        protobuf_c_message_free_unpacked(&f->base, NULL);
        snprintf(err, errlen, "out of memory");
        return CLI_JSONL_BAD;
    }
    helpwire__v1__put_faq_request__init(req);
    req->faq = f;
    *request = &req->base;
    return CLI_JSONL_RECORD;
}

static int parse_synonym_set_request(const char *line, size_t len, ProtobufCMessage **request, char *err,
                                     size_t errlen)
{
    Helpwire__V1__SynonymSet *set = NULL;
    int rc = cli_jsonl_parse_synonym_set(line, len, &set, err, errlen);
    if (rc != CLI_JSONL_RECORD)
        return rc;
    Helpwire__V1__PutSynonymSetRequest *req = malloc(sizeof *req);
    if (!req) {
        protobuf_c_message_free_unpacked(&set->base, NULL);
        snprintf(err, errlen, "out of memory");
        return CLI_JSONL_BAD;
    }
    helpwire__v1__put_synonym_set_request__init(req);
    req->set = set;
    *request = &req->base;
    return CLI_JSONL_RECORD;
}

static const import_kind import_articles = {"articles", "/helpwire.v1.Knowledge/PutArticle",
                                            &helpwire__v1__article__descriptor, parse_article_request};
static const import_kind import_faqs = {"faqs", "/helpwire.v1.Knowledge/PutFaq",
                                        &helpwire__v1__faq__descriptor, parse_faq_request};
static const import_kind import_synonyms = {"synonyms", "/helpwire.v1.Knowledge/PutSynonymSet",
                                            &helpwire__v1__synonym_set__descriptor, parse_synonym_set_request};

/* Statuses after which every further call would fail the same way. */
static bool status_is_fatal(int code)
{
    return code == GRPC_STATUS_UNAUTHENTICATED || code == GRPC_STATUS_PERMISSION_DENIED ||
           code == GRPC_STATUS_UNAVAILABLE || code == GRPC_STATUS_UNIMPLEMENTED;
}

/* Reports a bad line on stderr without garbling the progress bar. what
 * is a status name for a refused call, NULL for a line that does not
 * parse; message may come from the server and is cleaned. */
static void report_line(import_state *s, uint64_t line, const char *what, const char *message)
{
    char *clean = cli_text_clean(message, false, 0);
    cli_progress_clear(&s->progress);
    fprintf(s->ctx->err, "helpwire: %s:%llu: %s%s%s\n", s->path, (unsigned long long)line, what ? what : "",
            what ? ": " : "", clean ? clean : "");
    free(clean);
}

static void on_put_done(void *arg, uint64_t line, const hw_client_status *st, ProtobufCMessage *reply)
{
    import_state *s = arg;
    s->finished++;
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    if (st->code == GRPC_STATUS_OK) {
        s->imported++;
    } else {
        s->failed++;
        if (status_is_fatal(st->code)) {
            if (!s->stopped) {
                s->stopped = true;
                s->fatal = *st;
            }
        } else {
            report_line(s, line, hw_client_status_name(st->code), st->message);
        }
    }
    cli_progress_update(&s->progress, s->finished);
}

/* Counts the lines of f that are not blank, then rewinds it. Returns the
 * count, or 0 when f cannot be rewound (a pipe). */
static uint64_t count_records(FILE *f)
{
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode))
        return 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    uint64_t count = 0;
    while ((n = getline(&line, &cap, f)) >= 0)
        count += !cli_jsonl_is_blank(line, (size_t)n);
    free(line);
    rewind(f);
    return count;
}

static int run_import(cli_ctx *ctx, const import_kind *kind)
{
    enum { OPT_PARALLEL };
    int rc = CLI_EXIT_FAILED;
    FILE *f = NULL;
    char *line = NULL;
    size_t cap = 0;
    hw_client_pipe *pipe = NULL;
    import_state s = {.ctx = ctx, .path = ctx->pos[0]};

    long long parallel = IMPORT_DEFAULT_PARALLEL;
    if (ctx->opt[OPT_PARALLEL] &&
        cli_args_parse_int(ctx->opt[OPT_PARALLEL], 1, IMPORT_MAX_PARALLEL, &parallel) != 0)
        return cli_usage_error(ctx, "--parallel must be a number from 1 to %d", IMPORT_MAX_PARALLEL);

    if (strcmp(s.path, "-") == 0) {
        f = stdin;
        s.path = "<stdin>";
    } else if (!(f = fopen(s.path, "r"))) {
        rc = cli_fail(ctx, "%s: %s", s.path, strerror(errno));
        goto out;
    }
    uint64_t total = count_records(f);
    if (hw_client_pipe_create(&pipe, ctx->rpc, kind->method, kind->reply_desc, (int)parallel, on_put_done,
                              &s) != 0) {
        rc = cli_fail(ctx, "out of memory");
        goto out;
    }
    cli_progress_start(&s.progress, ctx->err, kind->plural, total);

    ssize_t n;
    uint64_t lineno = 0;
    while (!s.stopped && (n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        char why[256];
        ProtobufCMessage *request = NULL;
        int parsed = kind->parse(line, (size_t)n, &request, why, sizeof why);
        if (parsed == CLI_JSONL_BLANK)
            continue;
        s.records++;
        if (parsed != CLI_JSONL_RECORD) {
            s.failed++;
            s.finished++;
            report_line(&s, lineno, NULL, why);
            cli_progress_update(&s.progress, s.finished);
            continue;
        }
        hw_client_pipe_submit(pipe, request, lineno);
        protobuf_c_message_free_unpacked(request, NULL);
    }
    if (ferror(f) && !s.stopped) {
        hw_client_pipe_finish(pipe);
        cli_progress_end(&s.progress);
        rc = cli_fail(ctx, "%s: read error after line %llu", s.path, (unsigned long long)lineno);
        goto out;
    }
    hw_client_pipe_finish(pipe);
    cli_progress_end(&s.progress);
    double elapsed = cli_progress_elapsed(&s.progress);
    if (s.stopped)
        cli_fail_status(ctx, &s.fatal);

    if (ctx->json) {
        json_t *summary =
            json_pack("{s:s, s:s, s:I, s:I, s:I, s:b, s:I}", "kind", kind->plural, "file", s.path, "records",
                      (json_int_t)s.records, "imported", (json_int_t)s.imported, "failed",
                      (json_int_t)s.failed, "stopped", s.stopped, "elapsed_ms", (json_int_t)(elapsed * 1000));
        if (cli_emit_json(ctx, summary) != CLI_EXIT_OK)
            goto out;
    } else {
        fprintf(ctx->out, "imported %llu of %llu %s in %.1fs (%.0f/s)", (unsigned long long)s.imported,
                (unsigned long long)(s.stopped && total ? total : s.records), kind->plural, elapsed,
                elapsed > 0 ? (double)s.imported / elapsed : 0.0);
        if (s.failed)
            fprintf(ctx->out, "; %llu failed", (unsigned long long)s.failed);
        if (s.stopped)
            fprintf(ctx->out, "; stopped early");
        fputc('\n', ctx->out);
    }
    rc = s.failed || s.stopped ? CLI_EXIT_FAILED : CLI_EXIT_OK;
out:
    hw_client_pipe_destroy(pipe);
    free(line);
    if (f && f != stdin)
        fclose(f);
    return rc;
}

static int run_import_articles(cli_ctx *ctx)
{
    return run_import(ctx, &import_articles);
}

static int run_import_faqs(cli_ctx *ctx)
{
    return run_import(ctx, &import_faqs);
}

static int run_import_synonyms(cli_ctx *ctx)
{
    return run_import(ctx, &import_synonyms);
}

static const cli_opt import_opts[] = {
    {"parallel", "N", "Calls in flight at once, 1 to 256. Default 16; lower it if the server sheds load."},
};

const cli_command cli_import_commands[] = {
    {"import", "articles", "FILE", "Create or replace knowledge articles from a JSON Lines file",
     "Each line of FILE (\"-\" for stdin) is one article: {\"id\", \"title\", \"body\", \"locale\", "
     "\"tags\"};\n"
     "title and body are required, an empty id lets the server assign one. Bad lines are\n"
     "reported with their line number and skipped; the exit status is 1 if any failed.",
     import_opts, sizeof import_opts / sizeof import_opts[0], 1, 1, run_import_articles},
    {"import", "faqs", "FILE", "Create or replace FAQ entries from a JSON Lines file",
     "Each line of FILE (\"-\" for stdin) is one FAQ entry: {\"id\", \"question\", \"answer\",\n"
     "\"locale\", \"alternate_questions\"}; question and answer are required. Bad lines are\n"
     "reported with their line number and skipped; the exit status is 1 if any failed.",
     import_opts, sizeof import_opts / sizeof import_opts[0], 1, 1, run_import_faqs},
    {"import", "synonyms", "FILE", "Create or replace synonym sets from a JSON Lines file",
     "Each line of FILE (\"-\" for stdin) is one synonym set: {\"id\", \"locale\", \"terms\"};\n"
     "terms (2 to 32 words or phrases, each up to 64 bytes) is required, an empty id lets the\n"
     "server assign one, an empty locale applies the set to every language. Sets apply to\n"
     "Search, Answer and Route at once. docs/synonyms-starter.jsonl is a starter list. Bad\n"
     "lines are reported with their line number and skipped; the exit status is 1 if any failed.",
     import_opts, sizeof import_opts / sizeof import_opts[0], 1, 1, run_import_synonyms},
};
const size_t cli_import_ncommands = sizeof cli_import_commands / sizeof cli_import_commands[0];
