/*
 * seed: synchronous unary calls that learn customer and ticket ids (see
 * seed.h), made with the clients' blocking call (clients/lib/client.h) on
 * the request bytes the load uses. Only a few dozen calls: simplicity over
 * speed.
 */
#include "bench/seed.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc.h>

#include "clients/lib/client.h"

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
static int seed_kind(const hw_seed_config *cfg, hw_client *client, hw_req_ctx *ctx, hw_rpc_kind kind,
                     unsigned want, hw_ids *ids, char *why, size_t whylen)
{
    int rc = 0;
    unsigned got = 0;
    why[0] = '\0';
    for (unsigned attempt = 0; attempt < want * 2 && got < want; attempt++) {
        grpc_slice req;
        grpc_slice reply;
        hw_client_status st;
        char id[HW_REQ_ID_BYTES];
        rc = hw_req_build(ctx, kind, &req);
        if (rc != 0)
            return rc;
        hw_client_unary_raw(client, hw_rpc_info_of(kind)->path, req, &reply, (int)cfg->timeout_ms, &st);
        grpc_slice_unref(req);
        if (st.code != GRPC_STATUS_OK) {
            snprintf(why, whylen, "%s answered %s", hw_rpc_info_of(kind)->name,
                     hw_client_status_name(st.code));
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

    hw_client_options co = {.target = cfg->target,
                            .token = cfg->token,
                            .tls_ca_file = cfg->tls_ca_file,
                            .tls_server_name = cfg->tls_server_name,
                            .timeout_ms = (int)cfg->timeout_ms};
    hw_client *client = NULL;
    char why[256];
    if (hw_client_create(&client, &co, why, sizeof why) != 0) {
        snprintf(note, notelen, "not seeded: %s; placeholder ids used", why);
        return 0;
    }
    hw_req_ctx *ctx = malloc(sizeof(*ctx));
    if (!ctx) {
        rc = -ENOMEM;
        goto out;
    }
    hw_req_init(ctx, cfg->corpus, ids, cfg->run_id, 999, cfg->users, 7);
    unsigned want_c = cfg->want_customers ? cfg->want_customers : (cfg->want_tickets ? 1 : 0);
    if (want_c && ids->n_customers == 0) {
        rc = seed_kind(cfg, client, ctx, HW_RPC_ROUTE, want_c, ids, why_c, sizeof(why_c));
        if (rc != 0)
            goto out;
    }
    if (cfg->want_tickets && ids->n_tickets == 0 && ids->n_customers > 0) {
        rc = seed_kind(cfg, client, ctx, HW_RPC_CREATE_TICKET, cfg->want_tickets, ids, why_t, sizeof(why_t));
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
    hw_client_destroy(client);
    return rc;
}
