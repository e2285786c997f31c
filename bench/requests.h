/*
 * requests: builds the protobuf bodies the load generator sends, and reads
 * the few reply fields it needs (ids to reuse in later calls).
 *
 * Every request is freshly built: Route gets a unique message_id (so the
 * server never answers from its dedupe table) and a channel_user_id drawn
 * from a pool of bench users; CreateTicket gets a unique idempotency key
 * and a customer id known before the run; GetTicket reads a ticket this
 * worker created, else one known before the run. Texts come from the
 * corpus. Ids are "<run id>-<worker>-<sequence>", so runs never collide in
 * a store that outlives them.
 *
 * Threading: a hw_req_ctx belongs to one worker thread. hw_ids is filled
 * before the workers start and only read while they run.
 */
#ifndef HW_REQUESTS_H
#define HW_REQUESTS_H

#include <stddef.h>
#include <stdint.h>

#include <grpc/slice.h>

#include "bench/corpus.h"
#include "bench/mix.h"

/* Ids in helpwire are at most 64 bytes. */
#define HW_REQ_ID_BYTES 65
/* Ticket ids a worker remembers from its own CreateTicket replies. */
#define HW_REQ_LEARNED_TICKETS 256

/* Customer and ticket ids known before the run (given or seeded). */
typedef struct hw_ids {
    char **customers;
    size_t n_customers;
    char **tickets;
    size_t n_tickets;
} hw_ids;

/* Copies id into the customer (or ticket) list. 0 or -ENOMEM; -EINVAL for
 * an empty id or one over 64 bytes. */
int hw_ids_add_customer(hw_ids *ids, const char *id);
int hw_ids_add_ticket(hw_ids *ids, const char *id);

/* Frees both lists and zeroes ids. */
void hw_ids_clear(hw_ids *ids);

typedef struct hw_req_ctx {
    const hw_corpus *corpus; /* not owned */
    const hw_ids *ids;       /* not owned; may be NULL */
    const char *run_id;      /* not owned */
    unsigned worker;
    uint32_t users; /* size of the channel_user_id pool, >= 1 */
    uint64_t seq;
    uint64_t rng;
    char learned[HW_REQ_LEARNED_TICKETS][HW_REQ_ID_BYTES];
    size_t n_learned;
    size_t next_learned;
} hw_req_ctx;

/* Prepares a context. corpus, ids and run_id must outlive it; users 0
 * means 1000; seed picks the random sequence (0 is fine). */
void hw_req_init(hw_req_ctx *ctx, const hw_corpus *corpus, const hw_ids *ids, const char *run_id,
                 unsigned worker, uint32_t users, uint64_t seed);

/* A uniformly random 32-bit value from the context's generator. */
uint32_t hw_req_random(hw_req_ctx *ctx);

/* Builds the next request of kind into a new slice (*out, owned by the
 * caller: grpc_slice_unref it). 0, or -ENOMEM. */
int hw_req_build(hw_req_ctx *ctx, hw_rpc_kind kind, grpc_slice *out);

/* Takes what later requests need from a successful reply of kind (today:
 * the ticket id of a CreateTicket reply, kept for GetTicket). Replies that
 * do not decode are ignored. Returns 1 when something was learned, else 0. */
int hw_req_learn(hw_req_ctx *ctx, hw_rpc_kind kind, const uint8_t *reply, size_t len);

/* The customer_id of a RouteReply, or the ticket id of a CreateTicketReply,
 * copied into out (outlen >= HW_REQ_ID_BYTES). 0, -EBADMSG when the bytes
 * do not decode as that reply, -ENOENT when the field is empty or too long. */
int hw_reply_route_customer(const uint8_t *reply, size_t len, char *out, size_t outlen);
int hw_reply_created_ticket(const uint8_t *reply, size_t len, char *out, size_t outlen);

#endif
