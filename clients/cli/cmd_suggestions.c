/*
 * cmd_suggestions: `helpwire suggestions list|approve|reject`, the admin's
 * review of the phrasings helpwired learnt from answered tickets
 * (Knowledge.ListSuggestions and friends). list follows page tokens until
 * --limit suggestions, newest first; approve adds the question (or the
 * edited one) to its document's alternate questions, effective for the
 * next customer question. The customer's words are cleaned by table.h
 * before they are printed.
 */
#include <stdlib.h>
#include <string.h>

#include "clients/cli/cli.h"
#include "clients/cli/fmt.h"
#include "clients/cli/table.h"
#include "helpwire/v1/knowledge.pb-c.h"

enum { SUGG_DEFAULT_LIMIT = 100, SUGG_MAX_PAGE = 1000, QUESTION_MAX_WIDTH = 60 };

static const char *const sugg_headers[] = {"ID",     "STATUS", "DOC",     "COUNT",
                                           "TICKET", "AGENT",  "CREATED", "QUESTION"};
enum { SUGG_COLS = sizeof sugg_headers / sizeof sugg_headers[0] };

static int add_sugg_row(cli_table *t, const Helpwire__V1__PhrasingSuggestion *s)
{
    char status[32], doc[96], count[16], created[32];
    snprintf(count, sizeof count, "%u", s->count);
    const char *cells[SUGG_COLS] = {
        s->id,
        cli_fmt_enum(&helpwire__v1__suggestion_status__descriptor, s->status, status, sizeof status),
        cli_fmt_doc_ref(s->doc ? s->doc->kind : 0, s->doc ? s->doc->id : "", doc, sizeof doc),
        count,
        *s->ticket_id ? s->ticket_id : "-",
        *s->agent_id ? s->agent_id : "-",
        cli_fmt_time(s->created_unix_ms, created, sizeof created),
        s->question,
    };
    return cli_table_add(t, cells);
}

typedef struct {
    Helpwire__V1__ListSuggestionsRequest *req;
    cli_table *table; /* NULL: JSON lines */
    long long limit, listed;
} sugg_pages;

static void set_page_size(sugg_pages *sp)
{
    long long want = sp->limit ? sp->limit - sp->listed : SUGG_MAX_PAGE;
    sp->req->page_size = (uint32_t)(want < SUGG_MAX_PAGE ? want : SUGG_MAX_PAGE);
}

static int sugg_page(cli_ctx *ctx, const ProtobufCMessage *reply, size_t *n_items, void *arg)
{
    sugg_pages *sp = arg;
    const Helpwire__V1__ListSuggestionsReply *r = (const void *)reply;
    *n_items = r->n_suggestions;
    for (size_t i = 0; i < r->n_suggestions && (!sp->limit || sp->listed < sp->limit); i++, sp->listed++) {
        if (!sp->table) {
            int rc = cli_emit_message(ctx, &r->suggestions[i]->base);
            if (rc != CLI_EXIT_OK)
                return rc;
        } else if (add_sugg_row(sp->table, r->suggestions[i]) != 0) {
            return cli_fail(ctx, "out of memory");
        }
    }
    if (sp->limit && sp->listed >= sp->limit)
        return CLI_PAGES_DONE;
    set_page_size(sp);
    return CLI_EXIT_OK;
}

static int run_list(cli_ctx *ctx)
{
    enum { OPT_STATUS, OPT_DOC, OPT_LIMIT };
    Helpwire__V1__ListSuggestionsRequest req = HELPWIRE__V1__LIST_SUGGESTIONS_REQUEST__INIT;
    Helpwire__V1__DocRef doc = HELPWIRE__V1__DOC_REF__INIT;
    char choices[128];
    int v;
    if (ctx->opt[OPT_STATUS]) {
        if (cli_parse_enum(&helpwire__v1__suggestion_status__descriptor, ctx->opt[OPT_STATUS], &v) != 0)
            return cli_usage_error(
                ctx, "--status must be one of %s",
                cli_fmt_enum_choices(&helpwire__v1__suggestion_status__descriptor, choices, sizeof choices));
        req.status = (Helpwire__V1__SuggestionStatus)v;
    }
    if (ctx->opt[OPT_DOC]) {
        const char *id;
        if (cli_parse_doc_ref(ctx->opt[OPT_DOC], &v, &id) != 0)
            return cli_usage_error(ctx, "--doc must be faq:ID or article:ID");
        doc.kind = (Helpwire__V1__DocKind)v;
        doc.id = (char *)id;
        req.doc = &doc;
    }
    long long limit = SUGG_DEFAULT_LIMIT;
    if (ctx->opt[OPT_LIMIT] && cli_args_parse_int(ctx->opt[OPT_LIMIT], 0, 1000000000, &limit) != 0)
        return cli_usage_error(ctx, "--limit must be a number (0 for no limit)");
    cli_table *table = NULL;
    if (!ctx->json) {
        if (!(table = cli_table_new(SUGG_COLS, sugg_headers)))
            return cli_fail(ctx, "out of memory");
        cli_table_set_max_width(table, SUGG_COLS - 1, QUESTION_MAX_WIDTH);
    }
    sugg_pages sp = {.req = &req, .table = table, .limit = limit};
    set_page_size(&sp);
    int rc = cli_call_pages(ctx, "/helpwire.v1.Knowledge/ListSuggestions", &req.base,
                            &helpwire__v1__list_suggestions_reply__descriptor, sugg_page, &sp);
    if (rc == CLI_EXIT_OK && table)
        cli_table_print(table, ctx->out);
    cli_table_free(table);
    return rc;
}

/* Approve or reject: prints the decided suggestion. */
static int decide(cli_ctx *ctx, const char *method, ProtobufCMessage *req, const char *verb)
{
    Helpwire__V1__PhrasingSuggestion *s = NULL;
    if (cli_call(ctx, method, req, &helpwire__v1__phrasing_suggestion__descriptor, (ProtobufCMessage **)&s) !=
        CLI_EXIT_OK)
        return CLI_EXIT_FAILED;
    int rc = CLI_EXIT_OK;
    if (ctx->json) {
        rc = cli_emit_message(ctx, &s->base);
    } else {
        char doc[96];
        char *q = cli_text_clean(s->question, false, 0);
        fprintf(ctx->out, "%s %s: \"%s\" for %s\n", verb, s->id, q ? q : "",
                cli_fmt_doc_ref(s->doc ? s->doc->kind : 0, s->doc ? s->doc->id : "", doc, sizeof doc));
        free(q);
    }
    protobuf_c_message_free_unpacked(&s->base, NULL);
    return rc;
}

static int run_approve(cli_ctx *ctx)
{
    enum { OPT_QUESTION };
    Helpwire__V1__ApproveSuggestionRequest req = HELPWIRE__V1__APPROVE_SUGGESTION_REQUEST__INIT;
    req.id = (char *)ctx->pos[0];
    if (ctx->opt[OPT_QUESTION]) {
        if (!*ctx->opt[OPT_QUESTION])
            return cli_usage_error(ctx, "--question must not be empty");
        req.question = (char *)ctx->opt[OPT_QUESTION];
    }
    return decide(ctx, "/helpwire.v1.Knowledge/ApproveSuggestion", &req.base, "approved");
}

static int run_reject(cli_ctx *ctx)
{
    Helpwire__V1__RejectSuggestionRequest req = HELPWIRE__V1__REJECT_SUGGESTION_REQUEST__INIT;
    req.id = (char *)ctx->pos[0];
    return decide(ctx, "/helpwire.v1.Knowledge/RejectSuggestion", &req.base, "rejected");
}

static const cli_opt list_opts[] = {
    {"status", "S", "Only suggestions in status S: pending (the default), approved, rejected."},
    {"doc", "REF", "Only suggestions for one document: faq:ID or article:ID."},
    {"limit", "N", "Stop after N suggestions (newest first); 0 for all. Default 100."},
};
static const cli_opt approve_opts[] = {
    {"question", "TEXT", "Store this wording instead of the customer's (typos fixed); at most 1024 bytes."},
};

const cli_command cli_suggestions_commands[] = {
    {"suggestions", "list", "[--status pending|approved|rejected] [--doc faq:ID|article:ID] [--limit N]",
     "List phrasings learnt from answered tickets",
     "Lists suggested alternate questions, newest first: customers' first messages on tickets an agent "
     "answered with an article or FAQ (COUNT: how many tickets asked the same).",
     list_opts, sizeof list_opts / sizeof list_opts[0], 0, 0, run_list},
    {"suggestions", "approve", "ID [--question TEXT]", "Add a suggested question to its document",
     "Adds suggestion ID's question (or --question) to its document's alternate questions; the next "
     "customer asking it that way gets the document. Fails when the document has 16 already.",
     approve_opts, sizeof approve_opts / sizeof approve_opts[0], 1, 1, run_approve},
    {"suggestions", "reject", "ID", "Reject a suggested question",
     "Rejects suggestion ID; the same question is not suggested for that document again.", NULL, 0, 1, 1,
     run_reject},
};
const size_t cli_suggestions_ncommands = sizeof cli_suggestions_commands / sizeof cli_suggestions_commands[0];
