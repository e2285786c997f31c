/*
 * cmd_tickets: `helpwire tickets list|show|reply|close|escalate`, the operator's
 * view of the ticket queue. list follows page tokens until --limit tickets
 * (or the end) and prints them as they arrive with --json, or as one
 * aligned table; show joins GetTicket (with the conversation) and the whole
 * GetTicketHistory. Customer-written text is cleaned by table.h before it
 * is printed. The survey link of a closed ticket carries the survey's
 * secret token, so close prints the survey id and leaves the link out.
 * reply and close take --answered-by faq:ID|article:ID: the document that
 * answered the customer, whose question then becomes a suggested
 * alternate question of it (`helpwire suggestions`).
 */
#include <stdlib.h>
#include <string.h>

#include "clients/cli/cli.h"
#include "clients/cli/cmd_attachments.h"
#include "clients/cli/fmt.h"
#include "server/base/pbjson.h"
#include "clients/cli/table.h"
#include "helpwire/v1/tickets.pb-c.h"

enum { TICKETS_DEFAULT_LIMIT = 100, TICKETS_MAX_PAGE = 500, HISTORY_MAX_PAGE = 1000, SUBJECT_MAX_WIDTH = 48 };

static const char *const ticket_headers[] = {"ID",       "NUMBER",   "STATUS",  "PRIORITY", "QUEUE",
                                             "ASSIGNEE", "CUSTOMER", "UPDATED", "SUBJECT"};
enum { TICKET_COLS = sizeof ticket_headers / sizeof ticket_headers[0] };

static int add_ticket_row(cli_table *t, const Helpwire__V1__Ticket *tk)
{
    char number[24], status[32], priority[32], updated[32];
    snprintf(number, sizeof number, "%llu", (unsigned long long)tk->number);
    const char *cells[TICKET_COLS] = {
        tk->id,
        number,
        cli_fmt_enum(&helpwire__v1__ticket_status__descriptor, tk->status, status, sizeof status),
        cli_fmt_enum(&helpwire__v1__priority__descriptor, tk->priority, priority, sizeof priority),
        tk->queue,
        *tk->assignee_agent_id ? tk->assignee_agent_id : "-",
        tk->customer_id,
        cli_fmt_time(tk->updated_unix_ms, updated, sizeof updated),
        tk->subject,
    };
    return cli_table_add(t, cells);
}

static cli_table *new_ticket_table(void)
{
    cli_table *t = cli_table_new(TICKET_COLS, ticket_headers);
    if (t)
        cli_table_set_max_width(t, TICKET_COLS - 1, SUBJECT_MAX_WIDTH);
    return t;
}

/* The state of a tickets list across pages. */
typedef struct {
    Helpwire__V1__ListTicketsRequest *req;
    cli_table *table; /* NULL: JSON lines */
    long long limit, listed;
} tickets_pages;

static void set_ticket_page_size(tickets_pages *tp)
{
    long long want = tp->limit ? tp->limit - tp->listed : TICKETS_MAX_PAGE;
    tp->req->page_size = (uint32_t)(want < TICKETS_MAX_PAGE ? want : TICKETS_MAX_PAGE);
}

/* One page of ListTickets, up to the limit. */
static int tickets_page(cli_ctx *ctx, const ProtobufCMessage *reply, size_t *n_items, void *arg)
{
    tickets_pages *tp = arg;
    const Helpwire__V1__ListTicketsReply *r = (const void *)reply;
    *n_items = r->n_tickets;
    for (size_t i = 0; i < r->n_tickets && (!tp->limit || tp->listed < tp->limit); i++, tp->listed++) {
        if (!tp->table) {
            int rc = cli_emit_message(ctx, &r->tickets[i]->base);
            if (rc != CLI_EXIT_OK)
                return rc;
        } else if (add_ticket_row(tp->table, r->tickets[i]) != 0) {
            return cli_fail(ctx, "out of memory");
        }
    }
    if (tp->limit && tp->listed >= tp->limit)
        return CLI_PAGES_DONE;
    set_ticket_page_size(tp);
    return CLI_EXIT_OK;
}

static int run_tickets_list(cli_ctx *ctx)
{
    enum { OPT_STATUS, OPT_QUEUE, OPT_ASSIGNEE, OPT_CUSTOMER, OPT_PRIORITY, OPT_LIMIT };
    cli_table *table = NULL;
    Helpwire__V1__ListTicketsRequest req = HELPWIRE__V1__LIST_TICKETS_REQUEST__INIT;
    char choices[128];
    int v;

    if (ctx->opt[OPT_STATUS]) {
        if (cli_parse_enum(&helpwire__v1__ticket_status__descriptor, ctx->opt[OPT_STATUS], &v) != 0)
            return cli_usage_error(
                ctx, "--status must be one of %s",
                cli_fmt_enum_choices(&helpwire__v1__ticket_status__descriptor, choices, sizeof choices));
        req.status = (Helpwire__V1__TicketStatus)v;
    }
    if (ctx->opt[OPT_PRIORITY]) {
        if (cli_parse_enum(&helpwire__v1__priority__descriptor, ctx->opt[OPT_PRIORITY], &v) != 0)
            return cli_usage_error(
                ctx, "--priority must be one of %s",
                cli_fmt_enum_choices(&helpwire__v1__priority__descriptor, choices, sizeof choices));
        req.priority = (Helpwire__V1__Priority)v;
    }
    long long limit = TICKETS_DEFAULT_LIMIT;
    if (ctx->opt[OPT_LIMIT] && cli_args_parse_int(ctx->opt[OPT_LIMIT], 0, 1000000000, &limit) != 0)
        return cli_usage_error(ctx, "--limit must be a number (0 for no limit)");
    if (ctx->opt[OPT_QUEUE])
        req.queue = (char *)ctx->opt[OPT_QUEUE];
    if (ctx->opt[OPT_ASSIGNEE])
        req.assignee_agent_id = (char *)ctx->opt[OPT_ASSIGNEE];
    if (ctx->opt[OPT_CUSTOMER])
        req.customer_id = (char *)ctx->opt[OPT_CUSTOMER];

    if (!ctx->json && !(table = new_ticket_table()))
        return cli_fail(ctx, "out of memory");
    tickets_pages tp = {.req = &req, .table = table, .limit = limit};
    set_ticket_page_size(&tp);
    int rc = cli_call_pages(ctx, "/helpwire.v1.Tickets/ListTickets", &req.base,
                            &helpwire__v1__list_tickets_reply__descriptor, tickets_page, &tp);
    if (rc == CLI_EXIT_OK && table)
        cli_table_print(table, ctx->out);
    cli_table_free(table);
    return rc;
}

/* Where a ticket's history goes: a JSON array, or rows of a table. */
typedef struct {
    json_t *events;
    cli_table *table;
} history_out;

/* One page of GetTicketHistory. */
static int history_page(cli_ctx *ctx, const ProtobufCMessage *reply, size_t *n_items, void *arg)
{
    history_out *h = arg;
    const Helpwire__V1__GetTicketHistoryReply *r = (const void *)reply;
    *n_items = r->n_events;
    for (size_t i = 0; i < r->n_events; i++) {
        const Helpwire__V1__TicketEvent *e = r->events[i];
        int bad;
        if (h->events) {
            /* The ticket snapshot is only set on WatchTickets events. */
            static const char *const skip[] = {"ticket", NULL};
            bad = json_array_append_new(h->events, hw_pbjson_from_message_except(&e->base, skip));
        } else {
            char at[32], kind[48];
            const char *cells[] = {
                cli_fmt_time(e->at_unix_ms, at, sizeof at),
                cli_fmt_enum(&helpwire__v1__ticket_event_kind__descriptor, e->kind, kind, sizeof kind),
                e->actor, e->detail};
            bad = cli_table_add(h->table, cells);
        }
        if (bad)
            return cli_fail(ctx, "out of memory");
    }
    return CLI_EXIT_OK;
}

/* Fetches the whole history of ticket id into *events (a JSON array when
 * json, else rows of table). Returns a CLI_EXIT_* code. */
static int fetch_history(cli_ctx *ctx, const char *id, json_t *events, cli_table *table)
{
    Helpwire__V1__GetTicketHistoryRequest req = HELPWIRE__V1__GET_TICKET_HISTORY_REQUEST__INIT;
    req.ticket_id = (char *)id;
    req.page_size = HISTORY_MAX_PAGE;
    history_out h = {events, table};
    return cli_call_pages(ctx, "/helpwire.v1.Tickets/GetTicketHistory", &req.base,
                          &helpwire__v1__get_ticket_history_reply__descriptor, history_page, &h);
}

/* Prints the ticket's fields as a key/value block. */
static int print_ticket_fields(cli_ctx *ctx, const Helpwire__V1__Ticket *tk)
{
    char number[48], status[32], priority[32], channel[32], created[32], updated[32], closed[32], tags[512],
        escalated[1200], version[24];
    snprintf(number, sizeof number, "%s (#%llu)", tk->id, (unsigned long long)tk->number);
    size_t used = 0;
    tags[0] = '\0';
    for (size_t i = 0; i < tk->n_tags && used < sizeof tags; i++)
        used += (size_t)snprintf(tags + used, sizeof tags - used, "%s%s", i ? ", " : "", tk->tags[i]);
    char when[32];
    snprintf(escalated, sizeof escalated, "%s (%s)", tk->escalation_reason,
             cli_fmt_time(tk->escalated_unix_ms, when, sizeof when));
    snprintf(version, sizeof version, "%llu", (unsigned long long)tk->version);
    const char *rows[][2] = {
        {"ticket", number},
        {"status", cli_fmt_enum(&helpwire__v1__ticket_status__descriptor, tk->status, status, sizeof status)},
        {"priority",
         cli_fmt_enum(&helpwire__v1__priority__descriptor, tk->priority, priority, sizeof priority)},
        {"queue", tk->queue},
        {"assignee", *tk->assignee_agent_id ? tk->assignee_agent_id : "-"},
        {"customer", tk->customer_id},
        {"channel", cli_fmt_enum(&helpwire__v1__channel__descriptor, tk->channel, channel, sizeof channel)},
        {"subject", tk->subject},
        {"tags", tk->n_tags ? tags : "-"},
        {"created", cli_fmt_time(tk->created_unix_ms, created, sizeof created)},
        {"updated", cli_fmt_time(tk->updated_unix_ms, updated, sizeof updated)},
        {"escalated", tk->escalated_unix_ms ? escalated : "-"},
        {"closed", cli_fmt_time(tk->closed_unix_ms, closed, sizeof closed)},
        {"resolution", *tk->resolution ? tk->resolution : "-"},
        {"version", version},
    };
    cli_table *t = cli_table_new(2, NULL);
    if (!t)
        return cli_fail(ctx, "out of memory");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (cli_table_add(t, rows[i]) != 0) {
            cli_table_free(t);
            return cli_fail(ctx, "out of memory");
        }
    cli_table_print(t, ctx->out);
    cli_table_free(t);
    return CLI_EXIT_OK;
}

/* Prints the conversation: a heading per message, its text indented. */
/* One line per attachment: "[image] name (mime, N bytes) id", a place
 * with its coordinates. Names are customer-written: cleaned. */
static void print_attachments(cli_ctx *ctx, const Helpwire__V1__TicketMessage *m)
{
    for (size_t j = 0; j < m->n_attachments; j++) {
        const Helpwire__V1__Attachment *a = m->attachments[j];
        char kind[48];
        const char *k = cli_fmt_enum(&helpwire__v1__attachment_kind__descriptor, a->kind, kind, sizeof kind);
        if (a->location) {
            char *place = cli_text_clean(a->location->name, false, 0);
            fprintf(ctx->out, "    [%s] %.6f,%.6f %s\n", k, a->location->latitude, a->location->longitude,
                    place ? place : "");
            free(place);
            continue;
        }
        char *name = cli_text_clean(a->name, false, 0);
        fprintf(ctx->out, "    [%s] %s (%s, %llu bytes) %s\n", k, name && *name ? name : "-", a->mime_type,
                (unsigned long long)a->size_bytes, a->id);
        free(name);
    }
}

static int print_messages(cli_ctx *ctx, const Helpwire__V1__GetTicketReply *r)
{
    fprintf(ctx->out, "\nmessages (%zu)\n", r->n_messages);
    for (size_t i = 0; i < r->n_messages; i++) {
        const Helpwire__V1__TicketMessage *m = r->messages[i];
        char at[32], kind[48];
        char *author = cli_text_clean(m->author, false, 0);
        char *text = cli_text_clean(m->text, true, 0);
        if (!author || !text) {
            free(author);
            free(text);
            return cli_fail(ctx, "out of memory");
        }
        fprintf(ctx->out, "  %s  %s (%s)\n", cli_fmt_time(m->created_unix_ms, at, sizeof at), author,
                cli_fmt_enum(&helpwire__v1__message_kind__descriptor, m->kind, kind, sizeof kind));
        for (char *line = text, *next; line; line = next) {
            next = strchr(line, '\n');
            if (next)
                *next++ = '\0';
            fprintf(ctx->out, "    %s\n", line);
        }
        print_attachments(ctx, m);
        free(author);
        free(text);
    }
    return CLI_EXIT_OK;
}

static int run_tickets_show(cli_ctx *ctx)
{
    int rc = CLI_EXIT_FAILED;
    Helpwire__V1__GetTicketReply *reply = NULL;
    json_t *obj = NULL, *events = NULL;
    cli_table *history = NULL;
    Helpwire__V1__GetTicketRequest req = HELPWIRE__V1__GET_TICKET_REQUEST__INIT;
    req.ticket_id = (char *)ctx->pos[0];
    req.include_messages = 1;
    if (cli_call(ctx, "/helpwire.v1.Tickets/GetTicket", &req.base,
                 &helpwire__v1__get_ticket_reply__descriptor, (ProtobufCMessage **)&reply) != CLI_EXIT_OK)
        goto out;
    if (!reply->ticket) {
        rc = cli_fail(ctx, "the reply holds no ticket");
        goto out;
    }
    if (ctx->json) {
        obj = hw_pbjson_from_message(&reply->base);
        events = json_array();
        if (!obj || !events) {
            rc = cli_fail(ctx, "out of memory");
            goto out;
        }
        if ((rc = fetch_history(ctx, reply->ticket->id, events, NULL)) != CLI_EXIT_OK)
            goto out;
        json_object_set_new(obj, "history", events);
        events = NULL;
        rc = cli_emit_json(ctx, obj);
        obj = NULL;
        goto out;
    }
    static const char *const history_headers[] = {"AT", "EVENT", "ACTOR", "DETAIL"};
    if (!(history = cli_table_new(4, history_headers))) {
        rc = cli_fail(ctx, "out of memory");
        goto out;
    }
    if ((rc = fetch_history(ctx, reply->ticket->id, NULL, history)) != CLI_EXIT_OK)
        goto out;
    if ((rc = print_ticket_fields(ctx, reply->ticket)) != CLI_EXIT_OK ||
        (rc = print_messages(ctx, reply)) != CLI_EXIT_OK)
        goto out;
    fprintf(ctx->out, "\nhistory\n");
    cli_table_print(history, ctx->out);
    rc = CLI_EXIT_OK;
out:
    if (reply)
        protobuf_c_message_free_unpacked(&reply->base, NULL);
    json_decref(obj);
    json_decref(events);
    cli_table_free(history);
    return rc;
}

/* --answered-by into *ref (left empty when the flag is absent). Returns
 * CLI_EXIT_OK or a usage error. */
static int parse_answered_by(cli_ctx *ctx, const char *text, Helpwire__V1__DocRef *ref)
{
    int kind;
    const char *id;
    if (!text)
        return CLI_EXIT_OK;
    if (cli_parse_doc_ref(text, &kind, &id) != 0)
        return cli_usage_error(ctx, "--answered-by must be faq:ID or article:ID");
    ref->kind = (Helpwire__V1__DocKind)kind;
    ref->id = (char *)id;
    return CLI_EXIT_OK;
}

/* Uploads each --attach FILE into atts[0..n) (ids malloc'd). */
static int upload_attachments(cli_ctx *ctx, const char **files, size_t n, Helpwire__V1__Attachment *atts,
                              Helpwire__V1__Attachment **ptrs)
{
    for (size_t i = 0; i < n; i++) {
        hw_att_ref r;
        int rc = cli_attachment_upload(ctx, files[i], NULL, NULL, &atts[i], &r);
        if (rc != CLI_EXIT_OK)
            return rc;
        ptrs[i] = &atts[i];
    }
    return CLI_EXIT_OK;
}

static int run_tickets_reply(cli_ctx *ctx)
{
    enum { OPT_TEXT, OPT_ANSWERED_BY, OPT_ATTACH };
    enum { MAX_ATTACH = 10 };
    const char *files[MAX_ATTACH + 1];
    size_t n_files = cli_opt_all(ctx, "attach", files, MAX_ATTACH + 1);
    if (n_files > MAX_ATTACH)
        return cli_usage_error(ctx, "at most %d --attach files per reply", MAX_ATTACH);
    if ((!ctx->opt[OPT_TEXT] || !*ctx->opt[OPT_TEXT]) && n_files == 0)
        return cli_usage_error(ctx, "--text TEXT is required (or --attach FILE)");
    Helpwire__V1__AddMessageRequest req = HELPWIRE__V1__ADD_MESSAGE_REQUEST__INIT;
    Helpwire__V1__DocRef ref = HELPWIRE__V1__DOC_REF__INIT;
    Helpwire__V1__AddMessageReply *reply = NULL;
    Helpwire__V1__Attachment atts[MAX_ATTACH] = {0};
    Helpwire__V1__Attachment *ptrs[MAX_ATTACH];
    int rc = parse_answered_by(ctx, ctx->opt[OPT_ANSWERED_BY], &ref);
    if (rc == CLI_EXIT_OK)
        rc = upload_attachments(ctx, files, n_files, atts, ptrs);
    if (rc != CLI_EXIT_OK)
        goto out;
    req.ticket_id = (char *)ctx->pos[0];
    req.kind = HELPWIRE__V1__MESSAGE_KIND__MESSAGE_KIND_AGENT_REPLY;
    req.text = (char *)(ctx->opt[OPT_TEXT] ? ctx->opt[OPT_TEXT] : "");
    req.attachments = ptrs;
    req.n_attachments = n_files;
    if (ref.kind)
        req.answered_by = &ref;
    if (cli_call(ctx, "/helpwire.v1.Tickets/AddMessage", &req.base, &helpwire__v1__add_message_reply__descriptor,
                 (ProtobufCMessage **)&reply) != CLI_EXIT_OK) {
        rc = CLI_EXIT_FAILED;
        goto out;
    }
    if (ctx->json)
        rc = cli_emit_message(ctx, &reply->base);
    else if (reply->message)
        fprintf(ctx->out, "replied on %s (message %s, sent in %zu part%s%s)\n", req.ticket_id, reply->message->id,
                reply->n_outbox_seqs, reply->n_outbox_seqs == 1 ? "" : "s",
                n_files ? ", with attachments" : "");
    protobuf_c_message_free_unpacked(&reply->base, NULL);
out:
    for (size_t i = 0; i < n_files; i++)
        free(atts[i].id);
    return rc;
}

static int run_tickets_close(cli_ctx *ctx)
{
    enum { OPT_RESOLUTION, OPT_SKIP_SURVEY, OPT_ANSWERED_BY };
    if (!ctx->opt[OPT_RESOLUTION] || !*ctx->opt[OPT_RESOLUTION])
        return cli_usage_error(ctx, "--resolution TEXT is required");
    Helpwire__V1__CloseTicketRequest req = HELPWIRE__V1__CLOSE_TICKET_REQUEST__INIT;
    Helpwire__V1__DocRef ref = HELPWIRE__V1__DOC_REF__INIT;
    Helpwire__V1__CloseTicketReply *reply = NULL;
    if (parse_answered_by(ctx, ctx->opt[OPT_ANSWERED_BY], &ref) != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    if (ref.kind)
        req.answered_by = &ref;
    req.ticket_id = (char *)ctx->pos[0];
    req.resolution = (char *)ctx->opt[OPT_RESOLUTION];
    req.skip_survey = ctx->opt[OPT_SKIP_SURVEY] != NULL;
    if (cli_call(ctx, "/helpwire.v1.Tickets/CloseTicket", &req.base,
                 &helpwire__v1__close_ticket_reply__descriptor, (ProtobufCMessage **)&reply) != CLI_EXIT_OK)
        return CLI_EXIT_FAILED;
    int rc = CLI_EXIT_OK;
    if (ctx->json) {
        /* survey_url embeds the survey's secret token. */
        static const char *const skip[] = {"survey_url", NULL};
        rc = cli_emit_json(ctx, hw_pbjson_from_message_except(&reply->base, skip));
    } else if (reply->ticket) {
        fprintf(ctx->out, "closed %s (#%llu)", reply->ticket->id, (unsigned long long)reply->ticket->number);
        if (*reply->survey_id)
            fprintf(ctx->out, "; survey %s sent to the customer", reply->survey_id);
        fputc('\n', ctx->out);
    }
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return rc;
}

static int run_tickets_escalate(cli_ctx *ctx)
{
    enum { OPT_REASON };
    if (!ctx->opt[OPT_REASON] || !*ctx->opt[OPT_REASON])
        return cli_usage_error(ctx, "--reason TEXT is required");
    Helpwire__V1__EscalateTicketRequest req = HELPWIRE__V1__ESCALATE_TICKET_REQUEST__INIT;
    Helpwire__V1__Ticket *tk = NULL;
    req.ticket_id = (char *)ctx->pos[0];
    req.reason = (char *)ctx->opt[OPT_REASON];
    if (cli_call(ctx, "/helpwire.v1.Tickets/EscalateTicket", &req.base, &helpwire__v1__ticket__descriptor,
                 (ProtobufCMessage **)&tk) != CLI_EXIT_OK)
        return CLI_EXIT_FAILED;
    int rc = CLI_EXIT_OK;
    if (ctx->json)
        rc = cli_emit_message(ctx, &tk->base);
    else
        /* The server queues the alert; it reaches the supervisor only
         * through a webhook, which this client cannot see configured. */
        fprintf(ctx->out,
                "escalated %s (#%llu); a supervisor alert is queued (helpwired POSTs it to its "
                "--webhook-url, or keeps it queued while it has none)\n",
                tk->id, (unsigned long long)tk->number);
    protobuf_c_message_free_unpacked(&tk->base, NULL);
    return rc;
}

static const cli_opt list_opts[] = {
    {"status", "S", "Only tickets in status S: open, pending, escalated, resolved, closed."},
    {"queue", "Q", "Only tickets in skill queue Q."},
    {"assignee", "A", "Only tickets assigned to agent A."},
    {"customer", "C", "Only tickets of customer C."},
    {"priority", "P", "Only tickets of priority P: low, normal, high, urgent."},
    {"limit", "N", "Stop after N tickets (newest first); 0 for all. Default 100."},
};
static const cli_opt close_opts[] = {
    {"resolution", "TEXT", "How the issue was resolved (required)."},
    {"skip-survey", NULL, "Do not send the satisfaction survey (e.g. spam)."},
    {"answered-by", "REF", "The document that answered the customer: faq:ID or article:ID."},
};
static const cli_opt reply_opts[] = {
    {"text", "TEXT", "The reply sent to the customer (required)."},
    {"answered-by", "REF",
     "The document the reply answers with: faq:ID or article:ID (a link to one in the text counts too)."},
    {"attach", "FILE", "A file sent with the reply (uploaded first); repeatable, at most 10."},
};
static const cli_opt escalate_opts[] = {
    {"reason", "TEXT", "Why the ticket needs a supervisor (required)."},
};

const cli_command cli_tickets_commands[] = {
    {"tickets", "list", "[--status S] [--queue Q] [--assignee A] [--customer C] [--limit N]",
     "List tickets, newest first",
     "Lists tickets matching every filter given, following pages until --limit tickets.", list_opts,
     sizeof list_opts / sizeof list_opts[0], 0, 0, run_tickets_list},
    {"tickets", "show", "ID", "Show a ticket with its messages and history",
     "Shows ticket ID, its conversation and every change made to it.", NULL, 0, 1, 1, run_tickets_show},
    {"tickets", "reply", "ID --text TEXT [--attach FILE]... [--answered-by faq:ID|article:ID]",
     "Reply to the customer as an agent",
     "Adds an agent reply to ticket ID; it is queued for the customer's channel. With --answered-by (or a "
     "link to an article or FAQ in the text) the ticket records the document that answered it: once resolved "
     "or closed, the customer's question becomes a suggested alternate question of that document.",
     reply_opts, sizeof reply_opts / sizeof reply_opts[0], 1, 1, run_tickets_reply},
    {"tickets", "close", "ID --resolution TEXT [--answered-by faq:ID|article:ID]", "Close a ticket and send the survey",
     "Closes ticket ID with a resolution; the customer receives the satisfaction survey. --answered-by "
     "records the document that answered the customer (see `tickets reply`).", close_opts,
     sizeof close_opts / sizeof close_opts[0], 1, 1, run_tickets_close},
    {"tickets", "escalate", "ID --reason TEXT", "Escalate a ticket to the supervisor",
     "Escalates ticket ID; the supervisor webhook is alerted with the reason.", escalate_opts,
     sizeof escalate_opts / sizeof escalate_opts[0], 1, 1, run_tickets_escalate},
};
const size_t cli_tickets_ncommands = sizeof cli_tickets_commands / sizeof cli_tickets_commands[0];
