/*
 * rpc: what every domain handler needs between the network and the store:
 * mapping HW_E* codes to gRPC statuses, input validation that fails the call
 * with INVALID_ARGUMENT naming the field, read transactions on the worker's
 * own reader, and submitting writes that answer after their durable commit.
 *
 * A write goes like this: the handler validates, fills a context in the
 * call's arena (the arena outlives the handler: the call ends only when it
 * is answered), and hw_rpc_write() queues fn on the store's writer thread.
 * fn runs in its own nested transaction; on a domain failure it records a
 * message with hw_rpc_wfail() and returns the code, which rolls it back.
 * What the change must cause outside the store (events for watchers,
 * outbox and notifier wake-ups) fn records on the context's effects
 * (h.fx, see effects.h); when fn succeeds they are added to the write's
 * replicated entry (hw_effects_note_in), so every replica runs them; after
 * the group commit they run on the writer thread (or are dropped when the
 * write failed), in commit order, then done runs there and answers. In a
 * group of HW_RPC_HANDOFF_GROUP writes or more (rpc.c) the reply itself is
 * packed and sent by the call's worker (hw_call_reply off the worker hands
 * it back; a done callback whose reply lives in the call's arena uses
 * hw_call_reply_kept or _packed, so that the writer does not even pack
 * it); in a smaller group the writer sends it itself.
 *
 * Tracing: while fn, the effects and done run on the writer thread, its
 * log trace (hw_log_set_trace) is the call's trace id, so lines written
 * for the call there carry trace=; and the effects carry the call's
 * traceparent (effects.h) for alerts the write queues.
 */
#ifndef HW_RPC_H
#define HW_RPC_H

#include <stdbool.h>
#include <stddef.h>

#include <grpc/status.h>

#include "server/domain/app.h"
#include "server/domain/effects.h"
#include "server/net/net.h"
#include "server/base/errors.h"
#include "server/store/records.h"
#include "server/store/store.h"

/* The gRPC status for an HW_E* code: hw_err_grpc_status (errors.h) as a
 * grpc_status_code. */
grpc_status_code hw_rpc_status(int err);

/* Fails the call with the status of err and a message (printf format;
 * NULL uses hw_strerror(err)); the error details' reason is
 * hw_rpc_reason(err) when it has one, else the status's default. */
void hw_rpc_fail(hw_call *call, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The ErrorInfo reason of err when it says more than its gRPC status
 * ("NOT_LEADER", "STORAGE_FULL", ...), else NULL. Static strings. */
const char *hw_rpc_reason(int err);

/* ---- validation: each returns true when valid; otherwise it has failed
 * the call with INVALID_ARGUMENT naming field (in the text, "field: why",
 * and in the error details: hw_call_fail_field), and returns false. ---- */

/* s is valid UTF-8 of min..max bytes (min 0 allows ""). */
bool hw_rpc_check_text(hw_call *call, const char *field, const char *s, size_t min, size_t max);

/* s is an article or FAQ id: 1..HW_INDEX_MAX_ID (128) bytes of
 * hw_index_id_char (empty allowed if optional); fails the call with
 * INVALID_ARGUMENT naming field otherwise. */
bool hw_rpc_check_doc_id(hw_call *call, const char *field, const char *s, bool optional);

/* s is an id: 1..max bytes of [A-Za-z0-9._:-] (empty allowed if optional). */
bool hw_rpc_check_id(hw_call *call, const char *field, const char *s, size_t max, bool optional);

/* v is a known value of the enum (0 allowed if optional). */
bool hw_rpc_check_enum(hw_call *call, const char *field, const ProtobufCEnumDescriptor *d, int v,
                       bool optional);

/* Each element of a repeated string field: at most n items, each valid text
 * of 1..max bytes. */
bool hw_rpc_check_list(hw_call *call, const char *field, char **items, size_t n_items, size_t max_items,
                       size_t max);

/* page_size: 0 -> def, larger than max -> max. */
size_t hw_rpc_page_size(uint32_t page_size, size_t def, size_t max);

/* Decodes the page token of request field `field` into cursor; fails the
 * call (INVALID_ARGUMENT naming the field) and returns false when it is not
 * one of ours. */
bool hw_rpc_page_token(hw_call *call, const char *field, const char *token, hw_store_cursor *cursor);

/* The next page token for cursor, in the call's arena ("" at the end). */
char *hw_rpc_next_token(hw_call *call, const hw_store_cursor *cursor);

/* ---- reads ---- */

/* Begins a read on the calling worker's reader. On failure the call has
 * been failed and NULL is returned. End with hw_rpc_read_end. */
hw_store_txn *hw_rpc_read(hw_call *call, hw_app *app);
void hw_rpc_read_end(hw_call *call, hw_app *app);

/* ---- writes ---- */

/* The header every write context starts with. */
typedef struct hw_wctx {
    hw_call *call;
    hw_app *app;
    int err;              /* set with hw_rpc_wfail */
    char msg[256];        /* the message for err */
    char subject[128];    /* the resource err is about ("tickets/t-1"), or "" (hw_rpc_wfail_on) */
    hw_effects fx;        /* what the write causes after its commit; begun before
                           * each run of fn, in the call's arena */
    hw_store_write_fn fn; /* hw_rpc_write's own */
    hw_store_done_fn done;
    char traceparent[HW_TRACEPARENT_LEN + 1]; /* the call's, for fx (set by hw_rpc_write) */
} hw_wctx;

/* A zeroed write context of size bytes (starting with an hw_wctx whose
 * call and app are set) in the call's arena; NULL after failing the call
 * with RESOURCE_EXHAUSTED. */
void *hw_rpc_ctx_new(hw_call *call, void *app, size_t size);

/* Records a domain failure in a write fn and returns err, so that
 * `return hw_rpc_wfail(&ctx->h, HW_EPRECONDITION, "...")` rolls back. */
int hw_rpc_wfail(hw_wctx *h, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* hw_rpc_wfail naming the resource, "collection/id" ("tickets/t-1042"):
 * the subject of the error details' PreconditionFailure (ABORTED,
 * FAILED_PRECONDITION). */
int hw_rpc_wfail_on(hw_wctx *h, int err, const char *collection, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Queues fn; done(ctx, status) runs after the durable commit. Before each
 * run of fn, h->fx is begun (emptied, in the call's arena); once the
 * outcome is final, hw_effects_run hands h->fx to app->after_commit when
 * the write committed (drops it otherwise), and then done is called; both
 * on the writer thread. When the store refuses (closing), the call is
 * failed with UNAVAILABLE, nothing runs and false is returned. ctx must
 * start with an hw_wctx whose call and app are set. */
bool hw_rpc_write(hw_wctx *h, hw_store_write_fn fn, hw_store_done_fn done);

/* The message a write fails with when this replica cannot write
 * (HW_ENOTLEADER, status UNAVAILABLE): the client retries, on this replica
 * (which forwards to the new leader) or another. */
#define HW_RPC_NOT_LEADER_MSG "not the leader of the replicas: retry"

/* For done callbacks: when status is not HW_OK, fails the call (with the
 * fn's message when it gave one; HW_ENOTLEADER: HW_RPC_NOT_LEADER_MSG)
 * and returns true. */
bool hw_rpc_write_failed(hw_wctx *h, int status);

/* Who acts, for history: the principal's actor string ("agent:a1",
 * "admin:tok-3", "bridge:tok-2"), or "anonymous" when the call carries no
 * principal. */
const char *hw_rpc_actor(hw_call *call);

/* The agent the caller's token is bound to, or NULL. */
const char *hw_rpc_agent(hw_call *call);

/* What the authorization hook attaches to a call. */
typedef struct hw_principal {
    int role;             /* HW_ALLOW_BRIDGE, HW_ALLOW_AGENT or HW_ALLOW_ADMIN */
    const char *token_id; /* "tok-3" */
    const char *agent_id; /* for agent tokens, else NULL */
    const char *actor;    /* "agent:<id>", "admin:<token id>", "bridge:<token id>" */
} hw_principal;

/* Runs fn(arg) on a detached thread of its own (a server stream's long
 * work: an export, a store copy) holding a reference on call, which fn
 * must drop (hw_call_unref) when done with it. @return 0; an errno value
 * when the thread cannot start (the reference is dropped again: the
 * caller still owns the call and fails it). */
int hw_rpc_start_thread(hw_call *call, void *(*fn)(void *), void *arg);

/* A new random id: prefix + 16 hex digits (64 random bits), in the arena. */
char *hw_rpc_new_id(hw_arena *a, const char *prefix);

/* Milliseconds since the Unix epoch, from the app's clock (app->clock;
 * the real clock when app or its clock is NULL). Inside a write fn prefer
 * hw_effects_now_ms(fx): one write, one time. Any thread. */
int64_t hw_rpc_now_ms(const hw_app *app);

#endif
