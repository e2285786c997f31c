/*
 * rpc: the helpwire CLI's gRPC client on the C core. One cli_rpc is one
 * channel to helpwired (plaintext, or TLS trusting given roots) plus the
 * bearer token; every call carries `authorization: Bearer <token>` when a
 * token is set, and a deadline of timeout_ms from its start.
 *
 * Two ways to call a unary method, both "one batch of six ops per call":
 * - cli_rpc_unary: one call, blocking until its status arrives.
 * - cli_rpc_pipe: many calls of one method in flight at once (a window of
 *   N), all on one completion queue, so a bulk import is not bound by the
 *   round trip. Completions are handed to a callback in completion order,
 *   not submission order; a user value (e.g. a line number) identifies
 *   each call.
 *
 * Not thread-safe: a cli_rpc and its pipes belong to one thread (the CLI
 * is single-threaded). grpc_init() must be called before cli_rpc_create
 * and grpc_shutdown() only after cli_rpc_destroy.
 *
 * Not here: retries (the CLI reports failures and lets the operator rerun;
 * imports are idempotent because ids are caller-chosen) and streaming.
 */
#ifndef CLI_RPC_H
#define CLI_RPC_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

typedef struct cli_rpc cli_rpc;
typedef struct cli_rpc_pipe cli_rpc_pipe;

/* A call's outcome: a grpc_status_code and the server's message (or a
 * local reason, e.g. "reply does not parse"). */
typedef struct cli_status {
    int code;
    char message[512];
} cli_status;

typedef struct cli_rpc_options {
    const char *target;          /* host:port; required */
    const char *token;           /* bearer token or NULL/"" for none; copied, wiped on destroy */
    const char *tls_ca_file;     /* PEM roots for TLS; NULL for plaintext */
    const char *tls_server_name; /* expected certificate name, or NULL */
    int timeout_ms;              /* deadline of each call; > 0 */
} cli_rpc_options;

/* Creates the channel (it connects lazily, on the first call).
 * @param[out] out  the client; release with cli_rpc_destroy
 * @return 0, or -1 with a reason in err: the CA file cannot be read, the
 *         token holds characters not allowed in metadata, out of memory.
 *         err never contains the token. */
int cli_rpc_create(cli_rpc **out, const cli_rpc_options *o, char *err, size_t errlen);

/* Destroys the channel and wipes the token. No pipe may still exist.
 * NULL is ignored. */
void cli_rpc_destroy(cli_rpc *rpc);

/* Calls method (e.g. "/helpwire.v1.Admin/GetStats") with request and waits
 * for its status (at most the deadline).
 * @param[out] reply  on OK the unpacked reply of type reply_desc, owned by
 *                    the caller (protobuf_c_message_free_unpacked(*reply,
 *                    NULL)); NULL otherwise
 * @return st->code: 0 (GRPC_STATUS_OK) or a grpc_status_code. A reply that
 *         does not unpack is GRPC_STATUS_INTERNAL. */
int cli_rpc_unary(cli_rpc *rpc, const char *method, const ProtobufCMessage *request,
                  const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **reply, cli_status *st);

/* Called once per finished pipe call, from inside cli_rpc_pipe_submit or
 * cli_rpc_pipe_finish. user is the value given to submit; reply is the
 * unpacked reply on OK (NULL otherwise) and is owned by the callback. */
typedef void (*cli_rpc_done_fn)(void *ctx, uint64_t user, const cli_status *st, ProtobufCMessage *reply);

/* Creates a pipe of up to window (1..1024) calls of method in flight.
 * @return 0, or -1 when out of memory or window is out of range. */
int cli_rpc_pipe_create(cli_rpc_pipe **out, cli_rpc *rpc, const char *method,
                        const ProtobufCMessageDescriptor *reply_desc, int window, cli_rpc_done_fn done,
                        void *ctx);

/* Starts one call. When the window is full it first waits for at least one
 * call to finish (running the callback). request is packed at once: the
 * caller may free it on return. A call that cannot even start is reported
 * through the callback (GRPC_STATUS_INTERNAL) like any other failure, so
 * every submit leads to exactly one callback. */
void cli_rpc_pipe_submit(cli_rpc_pipe *p, const ProtobufCMessage *request, uint64_t user);

/* Waits until every started call has finished (running the callbacks). */
void cli_rpc_pipe_finish(cli_rpc_pipe *p);

/* Finishes outstanding calls (as cli_rpc_pipe_finish) and frees the pipe.
 * NULL is ignored. */
void cli_rpc_pipe_destroy(cli_rpc_pipe *p);

/* The canonical name of a grpc_status_code, e.g. "UNAUTHENTICATED"; "UNKNOWN"
 * for codes out of range. */
const char *cli_status_name(int code);

#endif
