/*
 * cmd_customers: `helpwire customers export|erase`, an admin's answers to
 * a customer's data requests (docs/privacy.md). export writes everything
 * helpwired holds about a customer as JSON Lines (Customers.ExportCustomer,
 * a server stream: one line per record, as it arrives, so memory stays
 * small however much there is); erase removes the customer and redacts
 * their conversations for good (Customers.EraseCustomer), after a
 * confirmation typed on the terminal unless --yes is given.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpc/grpc.h>

#include "clients/cli/cli.h"
#include "helpwire/v1/customers.pb-c.h"

static const char EXPORT_METHOD[] = "/helpwire.v1.Customers/ExportCustomer";

/* The status of a finished stream into st. */
static void stream_status(grpc_status_code code, grpc_slice details, hw_client_status *st)
{
    st->code = code;
    size_t n = GRPC_SLICE_LENGTH(details);
    if (n >= sizeof st->message)
        n = sizeof st->message - 1;
    memcpy(st->message, GRPC_SLICE_START_PTR(details), n);
    st->message[n] = '\0';
}

/* The call's completion queue: one batch at a time besides the status
 * batch (tag STATUS_TAG), which may complete first. */
#define STATUS_TAG ((void *)2)

/* Waits for tag; *status_done is set when the status batch completes on
 * the way. Returns 0 when tag completed successfully. */
static int wait_tag(grpc_completion_queue *cq, void *tag, bool *status_done)
{
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type != GRPC_OP_COMPLETE)
            return -1;
        if (ev.tag == STATUS_TAG)
            *status_done = true;
        if (ev.tag == tag)
            return ev.success ? 0 : -1;
    }
}

/* Runs one batch of ops and waits for it. Returns 0 when it completed. */
static int run_batch(grpc_call *call, grpc_completion_queue *cq, const grpc_op *ops, size_t n, void *tag,
                     bool *status_done)
{
    if (grpc_call_start_batch(call, ops, n, tag, NULL) != GRPC_CALL_OK)
        return -1;
    return wait_tag(cq, tag, status_done);
}

/* Streams the export of id into out, one line per record. *records
 * receives how many were written. On a failure st says why (st->code
 * != 0), or *write_errno is set (out could not be written). */
static void export_into(cli_ctx *ctx, const char *id, FILE *out, size_t *records, hw_client_status *st,
                        int *write_errno)
{
    Helpwire__V1__ExportCustomerRequest req = HELPWIRE__V1__EXPORT_CUSTOMER_REQUEST__INIT;
    req.customer_id = (char *)id;
    *records = 0;
    *write_errno = 0;
    memset(st, 0, sizeof *st);
    grpc_byte_buffer *request = hw_client_pack(&req.base);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    /* No deadline: an export is as long as the customer's history; ^C ends it. */
    grpc_call *call = grpc_channel_create_call(hw_client_channel(ctx->rpc), NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                               grpc_slice_from_static_string(EXPORT_METHOD), NULL,
                                               gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    grpc_metadata_array initial, trailing;
    grpc_metadata_array_init(&initial);
    grpc_metadata_array_init(&trailing);
    grpc_status_code code = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    size_t n_md = 0;
    const grpc_metadata *md = hw_client_metadata(ctx->rpc, &n_md);
    grpc_op start[4];
    memset(start, 0, sizeof start);
    start[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    start[0].data.send_initial_metadata.count = n_md;
    start[0].data.send_initial_metadata.metadata = (grpc_metadata *)md;
    start[1].op = GRPC_OP_SEND_MESSAGE;
    start[1].data.send_message.send_message = request;
    start[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    start[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    start[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
    grpc_op status_op;
    memset(&status_op, 0, sizeof status_op);
    status_op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    status_op.data.recv_status_on_client.trailing_metadata = &trailing;
    status_op.data.recv_status_on_client.status = &code;
    status_op.data.recv_status_on_client.status_details = &details;
    bool status_started = false, status_done = false;
    if (!request || !call || run_batch(call, cq, start, 4, (void *)1, &status_done) != 0) {
        st->code = GRPC_STATUS_INTERNAL;
        snprintf(st->message, sizeof st->message, "cannot start the call");
        goto out;
    }
    if (grpc_call_start_batch(call, &status_op, 1, STATUS_TAG, NULL) != GRPC_CALL_OK) {
        st->code = GRPC_STATUS_INTERNAL;
        snprintf(st->message, sizeof st->message, "cannot start the call");
        goto out;
    }
    status_started = true;
    for (;;) {
        grpc_byte_buffer *bb = NULL;
        grpc_op recv;
        memset(&recv, 0, sizeof recv);
        recv.op = GRPC_OP_RECV_MESSAGE;
        recv.data.recv_message.recv_message = &bb;
        if (run_batch(call, cq, &recv, 1, (void *)3, &status_done) != 0 || !bb)
            break; /* the end of the stream: its status says how */
        Helpwire__V1__CustomerExportRecord *r =
            (Helpwire__V1__CustomerExportRecord *)hw_client_unpack(bb, &helpwire__v1__customer_export_record__descriptor);
        grpc_byte_buffer_destroy(bb);
        if (!r) {
            st->code = GRPC_STATUS_INTERNAL;
            snprintf(st->message, sizeof st->message, "a record does not parse");
            grpc_call_cancel(call, NULL);
            break;
        }
        if (!*write_errno) {
            if (fputs(r->json, out) == EOF || fputc('\n', out) == EOF) {
                *write_errno = errno ? errno : EIO;
                grpc_call_cancel(call, NULL);
            } else {
                (*records)++;
            }
        }
        protobuf_c_message_free_unpacked(&r->base, NULL);
    }
out:
    if (status_started) {
        if (!status_done)
            wait_tag(cq, STATUS_TAG, &status_done);
        if (st->code == 0 && !*write_errno)
            stream_status(code, details, st);
    }
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&initial);
    grpc_metadata_array_destroy(&trailing);
    if (request)
        grpc_byte_buffer_destroy(request);
    if (call)
        grpc_call_unref(call);
    hw_client_cq_destroy(cq);
}

static int run_export(cli_ctx *ctx)
{
    enum { OPT_OUT };
    const char *id = ctx->pos[0];
    const char *path = ctx->opt[OPT_OUT];
    FILE *out = ctx->out;
    if (path) {
        if (!*path)
            return cli_usage_error(ctx, "--out must name a file");
        /* Personal data: readable by the owner only, and never an old
         * file's contents left behind a shorter export. */
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || !(out = fdopen(fd, "w"))) {
            int e = errno;
            if (fd >= 0)
                close(fd);
            return cli_fail(ctx, "cannot write %s: %s", path, strerror(e));
        }
    }
    size_t records = 0;
    hw_client_status st;
    int werr = 0;
    export_into(ctx, id, out, &records, &st, &werr);
    if (path && fclose(out) != 0 && !werr)
        werr = errno ? errno : EIO;
    else if (!path && fflush(out) != 0 && !werr)
        werr = errno ? errno : EIO;
    if (werr || st.code != 0) {
        if (path) /* a partial export is not an export */
            unlink(path);
        if (werr)
            return cli_fail(ctx, "cannot write %s: %s", path ? path : "the output", strerror(werr));
        return cli_fail_status(ctx, &st);
    }
    if (path)
        fprintf(ctx->err, "exported %zu records of %s to %s\n", records, id, path);
    return CLI_EXIT_OK;
}

/* Asks on the terminal; true when the customer id is typed back. */
static bool confirmed(cli_ctx *ctx, const char *id)
{
    fprintf(ctx->err,
            "This removes customer %s and irreversibly empties their conversations, survey comments and "
            "queued messages.\nType the customer id to confirm: ",
            id);
    fflush(ctx->err);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    bool ok = false;
    if (n > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        ok = strcmp(line, id) == 0;
    }
    free(line);
    return ok;
}

static int run_erase(cli_ctx *ctx)
{
    enum { OPT_REASON, OPT_YES };
    const char *id = ctx->pos[0];
    const char *reason = ctx->opt[OPT_REASON];
    if (!reason || !*reason)
        return cli_usage_error(ctx, "--reason is required (kept in the audit log)");
    if (strlen(reason) > 256)
        return cli_usage_error(ctx, "--reason must be at most 256 bytes");
    if (!ctx->opt[OPT_YES]) {
        if (!isatty(STDIN_FILENO))
            return cli_usage_error(ctx, "not erasing without confirmation: stdin is not a terminal; pass --yes");
        if (!confirmed(ctx, id))
            return cli_fail(ctx, "not confirmed: nothing erased");
    }
    Helpwire__V1__EraseCustomerRequest req = HELPWIRE__V1__ERASE_CUSTOMER_REQUEST__INIT;
    req.customer_id = (char *)id;
    req.reason = (char *)reason;
    Helpwire__V1__EraseCustomerReply *r = NULL;
    if (cli_call(ctx, "/helpwire.v1.Customers/EraseCustomer", &req.base,
                 &helpwire__v1__erase_customer_reply__descriptor, (ProtobufCMessage **)&r) != CLI_EXIT_OK)
        return CLI_EXIT_FAILED;
    int rc = CLI_EXIT_OK;
    if (ctx->json)
        rc = cli_emit_message(ctx, &r->base);
    else
        fprintf(ctx->out,
                "erased %s: %u tickets redacted, %u messages, %u survey comments, %u queued messages, "
                "%u dedupe entries, %u alerts, %u suggestions, %u event log entries\n",
                r->customer_id, r->tickets_redacted, r->messages_redacted, r->surveys_redacted,
                r->outbound_removed, r->dedupe_removed, r->alerts_removed, r->suggestions_removed,
                r->watch_events_redacted);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return rc;
}

static const cli_opt export_opts[] = {
    {"out", "FILE", "Write to FILE (created readable by you only; removed if the export fails) instead of stdout."},
};
static const cli_opt erase_opts[] = {
    {"reason", "TEXT", "Why (e.g. the request's reference); required, at most 256 bytes, kept in the audit log."},
    {"yes", NULL, "Do not ask for confirmation (needed when stdin is not a terminal)."},
};

const cli_command cli_customers_commands[] = {
    {"customers", "export", "ID [--out FILE]", "Export everything held about a customer (JSON Lines)",
     "Writes every record helpwired holds about customer ID as JSON Lines: the customer with their "
     "identities, each ticket with its messages and events, surveys, queued and failed outbound messages, "
     "and a last \"end\" record with the counts (docs/privacy.md). Recorded in the audit log.",
     export_opts, sizeof export_opts / sizeof export_opts[0], 1, 1, run_export},
    {"customers", "erase", "ID --reason TEXT [--yes]", "Erase a customer (irreversible)",
     "Removes customer ID and empties the texts of their tickets, messages and events, survey comments, "
     "queued messages, dedupe entries, alerts and suggestions taken from them; tickets stay, emptied, for "
     "the reports. Prints the counts. Asks for the id to be typed back unless --yes.",
     erase_opts, sizeof erase_opts / sizeof erase_opts[0], 1, 1, run_erase},
};
const size_t cli_customers_ncommands = sizeof cli_customers_commands / sizeof cli_customers_commands[0];
