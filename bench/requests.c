/*
 * requests: protobuf-c bodies for the bench RPCs (see requests.h). Each
 * builder fills a message on the stack with pointers into the corpus and
 * small stack buffers, sizes it, and packs it straight into a gRPC slice:
 * one allocation and no copy per request.
 */
#include "bench/requests.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clients/lib/client.h"
#include "helpwire/v1/knowledge.pb-c.h"
#include "helpwire/v1/router.pb-c.h"
#include "helpwire/v1/tickets.pb-c.h"

static int add_id(char ***list, size_t *n, const char *id)
{
    size_t len = id ? strlen(id) : 0;
    if (len == 0 || len >= HW_REQ_ID_BYTES)
        return -EINVAL;
    char **nl = realloc(*list, (*n + 1) * sizeof(*nl));
    if (!nl)
        return -ENOMEM;
    *list = nl;
    nl[*n] = strdup(id);
    if (!nl[*n])
        return -ENOMEM;
    (*n)++;
    return 0;
}

int hw_ids_add_customer(hw_ids *ids, const char *id)
{
    return add_id(&ids->customers, &ids->n_customers, id);
}

int hw_ids_add_ticket(hw_ids *ids, const char *id)
{
    return add_id(&ids->tickets, &ids->n_tickets, id);
}

void hw_ids_clear(hw_ids *ids)
{
    for (size_t i = 0; i < ids->n_customers; i++)
        free(ids->customers[i]);
    for (size_t i = 0; i < ids->n_tickets; i++)
        free(ids->tickets[i]);
    free(ids->customers);
    free(ids->tickets);
    memset(ids, 0, sizeof(*ids));
}

void hw_req_init(hw_req_ctx *ctx, const hw_corpus *corpus, const hw_ids *ids, const char *run_id,
                 unsigned worker, uint32_t users, uint64_t seed)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->corpus = corpus;
    ctx->ids = ids;
    ctx->run_id = run_id;
    ctx->worker = worker;
    ctx->users = users ? users : 1000;
    /* splitmix64 of (seed, worker) so workers draw different sequences */
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * (worker + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    ctx->rng = (z ^ (z >> 31)) | 1;
}

uint32_t hw_req_random(hw_req_ctx *ctx)
{
    /* xorshift64* */
    uint64_t x = ctx->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    ctx->rng = x;
    return (uint32_t)((x * 0x2545F4914F6CDD1Dull) >> 32);
}

static const char *pick_text(hw_req_ctx *ctx)
{
    size_t n = hw_corpus_size(ctx->corpus);
    size_t i = (size_t)(((uint64_t)hw_req_random(ctx) * n) >> 32);
    return hw_corpus_line(ctx->corpus, i, NULL);
}

static const char *pick_customer(hw_req_ctx *ctx)
{
    if (ctx->ids && ctx->ids->n_customers > 0)
        return ctx->ids->customers[hw_req_random(ctx) % ctx->ids->n_customers];
    return "c-bench-unknown";
}

static const char *pick_ticket(hw_req_ctx *ctx)
{
    if (ctx->n_learned > 0)
        return ctx->learned[hw_req_random(ctx) % ctx->n_learned];
    if (ctx->ids && ctx->ids->n_tickets > 0)
        return ctx->ids->tickets[hw_req_random(ctx) % ctx->ids->n_tickets];
    return "t-bench-unknown";
}

int hw_req_build(hw_req_ctx *ctx, hw_rpc_kind kind, grpc_slice *out)
{
    char unique[HW_REQ_ID_BYTES];
    char user[48];
    char name[48];
    uint64_t seq = ctx->seq++;
    snprintf(unique, sizeof(unique), "%s-%u-%" PRIu64, ctx->run_id, ctx->worker, seq);

    switch (kind) {
    case HW_RPC_ROUTE: {
        uint32_t u = hw_req_random(ctx) % ctx->users;
        snprintf(user, sizeof(user), "tg-bench-%u", u);
        snprintf(name, sizeof(name), "Bench User %u", u);
        Helpwire__V1__RouteRequest req = HELPWIRE__V1__ROUTE_REQUEST__INIT;
        req.channel = HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM;
        req.channel_user_id = user;
        req.display_name = name;
        req.text = (char *)pick_text(ctx);
        req.message_id = unique;
        return hw_client_pack_slice(&req.base, out);
    }
    case HW_RPC_SEARCH: {
        Helpwire__V1__SearchRequest req = HELPWIRE__V1__SEARCH_REQUEST__INIT;
        req.query = (char *)pick_text(ctx);
        req.top_k = 10;
        return hw_client_pack_slice(&req.base, out);
    }
    case HW_RPC_CREATE_TICKET: {
        Helpwire__V1__CreateTicketRequest req = HELPWIRE__V1__CREATE_TICKET_REQUEST__INIT;
        req.customer_id = (char *)pick_customer(ctx);
        req.text = (char *)pick_text(ctx);
        req.idempotency_key = unique;
        req.channel = HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM;
        return hw_client_pack_slice(&req.base, out);
    }
    case HW_RPC_GET_TICKET: {
        Helpwire__V1__GetTicketRequest req = HELPWIRE__V1__GET_TICKET_REQUEST__INIT;
        req.ticket_id = (char *)pick_ticket(ctx);
        return hw_client_pack_slice(&req.base, out);
    }
    case HW_RPC_COUNT:
        break;
    }
    return -EINVAL;
}

static int copy_id(const char *id, char *out, size_t outlen)
{
    size_t len = id ? strlen(id) : 0;
    if (len == 0 || len >= HW_REQ_ID_BYTES || len >= outlen)
        return -ENOENT;
    memcpy(out, id, len + 1);
    return 0;
}

int hw_reply_route_customer(const uint8_t *reply, size_t len, char *out, size_t outlen)
{
    Helpwire__V1__RouteReply *r = helpwire__v1__route_reply__unpack(NULL, len, reply);
    if (!r)
        return -EBADMSG;
    int rc = copy_id(r->customer_id, out, outlen);
    helpwire__v1__route_reply__free_unpacked(r, NULL);
    return rc;
}

int hw_reply_created_ticket(const uint8_t *reply, size_t len, char *out, size_t outlen)
{
    Helpwire__V1__CreateTicketReply *r = helpwire__v1__create_ticket_reply__unpack(NULL, len, reply);
    if (!r)
        return -EBADMSG;
    int rc = r->ticket ? copy_id(r->ticket->id, out, outlen) : -ENOENT;
    helpwire__v1__create_ticket_reply__free_unpacked(r, NULL);
    return rc;
}

int hw_req_learn(hw_req_ctx *ctx, hw_rpc_kind kind, const uint8_t *reply, size_t len)
{
    if (kind != HW_RPC_CREATE_TICKET)
        return 0;
    char id[HW_REQ_ID_BYTES];
    if (hw_reply_created_ticket(reply, len, id, sizeof(id)) != 0)
        return 0;
    memcpy(ctx->learned[ctx->next_learned], id, strlen(id) + 1);
    ctx->next_learned = (ctx->next_learned + 1) % HW_REQ_LEARNED_TICKETS;
    if (ctx->n_learned < HW_REQ_LEARNED_TICKETS)
        ctx->n_learned++;
    return 1;
}
