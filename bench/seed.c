/*
 * seed: synchronous unary calls that learn customer and ticket ids (see
 * seed.h). Only a few dozen calls: simplicity over speed.
 */
#include "bench/seed.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/support/time.h>

#include "bench/driver.h"
#include "clients/lib/channel.h"

/* One unary call; *reply (owned by the caller) is set when status is OK. */
static int call_unary(grpc_channel *ch, grpc_completion_queue *cq, const char *path, const char *token,
                      grpc_slice request, unsigned timeout_ms, grpc_status_code *status, grpc_slice *reply)
{
    int rc = 0;
    grpc_metadata md[1];
    size_t md_count = 0;
    char *auth = NULL;
    grpc_byte_buffer *send_buf = grpc_raw_byte_buffer_create(&request, 1);
    grpc_byte_buffer *recv_buf = NULL;
    grpc_metadata_array initial_md, trailing_md;
    grpc_slice details = grpc_empty_slice();
    grpc_metadata_array_init(&initial_md);
    grpc_metadata_array_init(&trailing_md);
    memset(md, 0, sizeof(md));
    *reply = grpc_empty_slice();
    *status = GRPC_STATUS_UNKNOWN;

    if (token) {
        size_t len = strlen(token) + sizeof("Bearer ");
        auth = malloc(len);
        if (!auth) {
            rc = -ENOMEM;
            goto out;
        }
        snprintf(auth, len, "Bearer %s", token);
        md[0].key = grpc_slice_from_static_string("authorization");
        md[0].value = grpc_slice_from_static_string(auth);
        md_count = 1;
    }
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis((int64_t)timeout_ms, GPR_TIMESPAN));
    grpc_slice method = grpc_slice_from_static_string(path);
    grpc_call *call =
        grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method, NULL, deadline, NULL);
    grpc_op ops[6];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = md_count;
    ops[0].data.send_initial_metadata.metadata = md_count ? md : NULL;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send_buf;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv_buf;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing_md;
    ops[5].data.recv_status_on_client.status = status;
    ops[5].data.recv_status_on_client.status_details = &details;
    if (grpc_call_start_batch(call, ops, 6, call, NULL) != GRPC_CALL_OK) {
        rc = -EIO;
    } else {
        grpc_event ev = grpc_completion_queue_pluck(cq, call, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type != GRPC_OP_COMPLETE || !ev.success)
            rc = -EIO;
    }
    grpc_call_unref(call);
    if (rc == 0 && *status == GRPC_STATUS_OK && recv_buf) {
        grpc_byte_buffer_reader reader;
        if (grpc_byte_buffer_reader_init(&reader, recv_buf)) {
            *reply = grpc_byte_buffer_reader_readall(&reader);
            grpc_byte_buffer_reader_destroy(&reader);
        }
    }
out:
    if (recv_buf)
        grpc_byte_buffer_destroy(recv_buf);
    grpc_byte_buffer_destroy(send_buf);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&initial_md);
    grpc_metadata_array_destroy(&trailing_md);
    free(auth);
    return rc;
}

static bool has_customer(const hw_ids *ids, const char *id)
{
    for (size_t i = 0; i < ids->n_customers; i++) {
        if (strcmp(ids->customers[i], id) == 0)
            return true;
    }
    return false;
}

/* Makes up to want calls of kind; adds the ids their replies name. Returns
 * 0 or -ENOMEM; *why says why it stopped early ("" when it did not). */
static int seed_kind(const hw_seed_config *cfg, grpc_channel *ch, grpc_completion_queue *cq, hw_req_ctx *ctx,
                     hw_rpc_kind kind, unsigned want, hw_ids *ids, char *why, size_t whylen)
{
    int rc = 0;
    unsigned got = 0;
    why[0] = '\0';
    for (unsigned attempt = 0; attempt < want * 2 && got < want; attempt++) {
        grpc_slice req;
        grpc_status_code status;
        grpc_slice reply;
        char id[HW_REQ_ID_BYTES];
        rc = hw_req_build(ctx, kind, &req);
        if (rc != 0)
            return rc;
        int crc =
            call_unary(ch, cq, hw_rpc_info_of(kind)->path, cfg->token, req, cfg->timeout_ms, &status, &reply);
        grpc_slice_unref(req);
        if (crc == -ENOMEM)
            return crc;
        if (crc != 0 || status != GRPC_STATUS_OK) {
            snprintf(why, whylen, "%s answered %s", hw_rpc_info_of(kind)->name,
                     crc != 0 ? "nothing" : hw_status_name((int)status));
            grpc_slice_unref(reply);
            return 0;
        }
        int drc = kind == HW_RPC_ROUTE ? hw_reply_route_customer(GRPC_SLICE_START_PTR(reply),
                                                                 GRPC_SLICE_LENGTH(reply), id, sizeof(id))
                                       : hw_reply_created_ticket(GRPC_SLICE_START_PTR(reply),
                                                                 GRPC_SLICE_LENGTH(reply), id, sizeof(id));
        grpc_slice_unref(reply);
        if (drc == -EBADMSG) {
            snprintf(why, whylen, "%s replies do not decode (an echo server?)", hw_rpc_info_of(kind)->name);
            return 0;
        }
        if (drc != 0)
            continue;
        if (kind == HW_RPC_ROUTE) {
            if (has_customer(ids, id))
                continue;
            rc = hw_ids_add_customer(ids, id);
        } else {
            rc = hw_ids_add_ticket(ids, id);
        }
        if (rc == -ENOMEM)
            return rc;
        if (rc == 0)
            got++;
        rc = 0;
    }
    return rc;
}

int hw_seed_ids(const hw_seed_config *cfg, hw_ids *ids, char *note, size_t notelen)
{
    int rc = 0;
    char why_c[128] = "", why_t[128] = "";
    size_t had_customers = ids->n_customers, had_tickets = ids->n_tickets;
    note[0] = '\0';
    if ((cfg->want_customers == 0 || ids->n_customers > 0) && (cfg->want_tickets == 0 || ids->n_tickets > 0))
        return 0;

    hw_channel_security sec = {.tls_ca_file = cfg->tls_ca_file, .tls_server_name = cfg->tls_server_name};
    grpc_channel *ch = NULL;
    char why[256];
    if (hw_channel_open(cfg->target, &sec, NULL, 0, &ch, why, sizeof why) != 0) {
        snprintf(note, notelen, "not seeded: %s; placeholder ids used", why);
        return 0;
    }
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    hw_req_ctx *ctx = malloc(sizeof(*ctx));
    if (!ctx) {
        rc = -ENOMEM;
        goto out;
    }
    hw_req_init(ctx, cfg->corpus, ids, cfg->run_id, 999, cfg->users, 7);
    unsigned want_c = cfg->want_customers ? cfg->want_customers : (cfg->want_tickets ? 1 : 0);
    if (want_c && ids->n_customers == 0) {
        rc = seed_kind(cfg, ch, cq, ctx, HW_RPC_ROUTE, want_c, ids, why_c, sizeof(why_c));
        if (rc != 0)
            goto out;
    }
    if (cfg->want_tickets && ids->n_tickets == 0 && ids->n_customers > 0) {
        rc = seed_kind(cfg, ch, cq, ctx, HW_RPC_CREATE_TICKET, cfg->want_tickets, ids, why_t, sizeof(why_t));
        if (rc != 0)
            goto out;
    }
    snprintf(note, notelen, "seeded %zu customer ids%s%s%s, %zu ticket ids%s%s%s%s",
             ids->n_customers - had_customers, why_c[0] ? " (" : "", why_c, why_c[0] ? ")" : "",
             ids->n_tickets - had_tickets, why_t[0] ? " (" : "", why_t, why_t[0] ? ")" : "",
             (ids->n_customers == 0 || (cfg->want_tickets && ids->n_tickets == 0)) ? "; placeholder ids used"
                                                                                   : "");
out:
    free(ctx);
    grpc_channel_destroy(ch);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
    return rc;
}
