/*
 * client: the one gRPC client of the project's programs (the bridges, the
 * helpwire CLI and the helpwire-bench load generator and seeder), on the
 * C core. Every unary call here is one batch of six ops (metadata with the
 * bearer token, message, half-close, and the three receives) with a
 * deadline, its request packed and its reply unpacked with protobuf-c, its
 * outcome a status code and the server's message.
 *
 * Three levels, each built on the one below:
 * - hw_client_call: one unary call's batch, for callers that run their own
 *   completion queue (the load generator keeps thousands in flight on one
 *   queue per thread; a pipe below does the same for the CLI's imports);
 * - hw_client: a channel (channel.h) plus the token, with blocking calls
 *   (hw_client_unary, hw_client_unary_raw) and pipes (hw_client_pipe: a
 *   window of calls of one method in flight, completions handed to a
 *   callback in completion order);
 * - helpers every client needs: the bearer metadata (hw_client_auth), the
 *   status names and which codes are worth a retry, packing and unpacking.
 *
 * grpc_init() must have been called before anything here is created, and
 * grpc_shutdown() only after everything is destroyed.
 *
 * A server-streaming call uses the same hw_client_call: started with
 * hw_client_stream_start, read with hw_client_stream_recv, ended with
 * hw_client_stream_recv_status (the Outbox stream in outbox.c, the
 * GetAttachment download in attachments.c).
 *
 * Not here: retries and backoff (the caller decides, with
 * hw_client_status_retryable and backoff.h).
 */
#ifndef HW_CLIENT_H
#define HW_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

#include "clients/lib/channel.h"

/* ---- status ---- */

/* A call's outcome: a grpc_status_code and the server's message (or a
 * local reason, e.g. "the reply does not parse as ..."). */
typedef struct hw_client_status {
    int code;
    char message[512];
    /* From the server's google.rpc.Status (grpc-status-details-bin), when
     * the call carried one: ErrorInfo.reason ("RATE_LIMITED"; "" when
     * none) and RetryInfo.retry_delay in ms (-1 when none). */
    char reason[48];
    int64_t retry_delay_ms;
} hw_client_status;

/* The canonical name of a grpc_status_code, e.g. "UNAVAILABLE"; "UNKNOWN"
 * for codes out of range (as gRPC reads them). Static storage. */
const char *hw_client_status_name(int code);

/* Whether a failed call may succeed if repeated unchanged later: the
 * server is down, draining, overloaded, timed out, or does not have the
 * method yet (UNIMPLEMENTED during an upgrade). INVALID_ARGUMENT,
 * FAILED_PRECONDITION, PERMISSION_DENIED and the like are final. */
bool hw_client_status_retryable(int code);

/* Sets st to code and the text of details (truncated to fit); no reason,
 * no retry delay. */
void hw_client_status_set(hw_client_status *st, int code, grpc_slice details);

/* ---- packing ---- */

/* Packs msg into a new slice (*out; grpc_slice_unref it). Returns 0, or
 * -ENOMEM. */
int hw_client_pack_slice(const ProtobufCMessage *msg, grpc_slice *out);

/* Packs msg into a new byte buffer (grpc_byte_buffer_destroy it); NULL when
 * out of memory. */
grpc_byte_buffer *hw_client_pack(const ProtobufCMessage *msg);

/* The whole of bb in one slice (grpc_slice_unref it); an empty slice when
 * bb cannot be read. */
grpc_slice hw_client_buffer_slice(grpc_byte_buffer *bb);

/* Unpacks bb as desc; NULL when it does not parse. Free the result with
 * protobuf_c_message_free_unpacked(m, NULL). */
ProtobufCMessage *hw_client_unpack(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *desc);

/* ---- completion queues ---- */

/* Shuts cq (a queue for grpc_completion_queue_next) down, drains it and
 * destroys it, as the core requires. Every call on it must have been
 * started or released. */
void hw_client_cq_destroy(grpc_completion_queue *cq);

/* ---- the bearer token ---- */

/* The `authorization: Bearer <token>` metadata entry of every call. md
 * refers to value (no copy per call), so the struct must outlive the calls
 * that send it; it is read-only after hw_client_auth_init, so any number of
 * threads may send it at once. */
typedef struct hw_client_auth {
    grpc_metadata md[1];
    size_t count; /* 1 with a token, 0 without */
    char *value;  /* "Bearer <token>", or NULL; wiped by hw_client_auth_clear */
} hw_client_auth;

/* Prepares a with token (NULL or "": no metadata). Returns 0, or -1 with a
 * reason in err (never the token): the token holds characters other than
 * visible ASCII, out of memory. */
int hw_client_auth_init(hw_client_auth *a, const char *token, char *err, size_t errlen);

/* Wipes and frees the token; a zeroed or cleared struct is fine. */
void hw_client_auth_clear(hw_client_auth *a);

/* Loads a secret given either directly (value: a flag's or an environment
 * variable's, e.g. HELPWIRE_TOKEN) or in a file named by the flag
 * --<file_flag> (path; it wins), as every client takes its tokens: the
 * file's content without its trailing whitespace (at most 4 KiB), else a
 * copy of value, into *out (malloc'd; NULL when neither is given).
 * Returns 0, or -1 with err "--<file_flag>: <reason>" (naming the file,
 * never its content; an empty file is refused) or "out of memory". Free
 * with hw_client_secret_free. */
int hw_client_secret_load(const char *path, const char *value, const char *file_flag, char **out, char *err,
                          size_t errlen);

/* Wipes and frees *secret and sets it to NULL; NULL is fine. */
void hw_client_secret_free(char **secret);

/* ---- one call on the caller's completion queue ---- */

/* The state of one unary call in flight: whoever owns the completion queue
 * starts it with a tag, waits for the tag, reads status and reply, and
 * ends it. A struct is reused call after call (init once, fini once). */
typedef struct hw_client_call {
    grpc_call *call;
    grpc_byte_buffer *request; /* owned while the call lives */
    grpc_byte_buffer *reply;   /* after completion: the reply, or NULL */
    grpc_metadata_array initial_md, trailing_md;
    grpc_status_code status; /* after completion */
    grpc_slice details;      /* after completion: the server's message */
    const char *error_string;
    bool wait_for_ready; /* set before the start: the call waits for a connection (see hw_client_options) */
} hw_client_call;

/* Prepares c for its first call (wait_for_ready false). */
void hw_client_call_init(hw_client_call *c);

/* Starts call (created by the caller with a deadline on its queue) as one
 * batch sending the n_md entries of md (may be 0; they must outlive the
 * batch) and request, with tag. c takes call and request, even when the
 * start fails or call is NULL; hw_client_call_end releases them. Returns
 * GRPC_CALL_OK, or an error (then no completion will come). */
grpc_call_error hw_client_call_start(hw_client_call *c, grpc_call *call, const grpc_metadata *md, size_t n_md,
                                     grpc_byte_buffer *request, void *tag);

/* Starts call as a server stream: one batch sending the n_md entries of
 * md and request, half-closing, and receiving the initial metadata, with
 * tag. Ownership as for hw_client_call_start. After it, the caller starts
 * one hw_client_stream_recv at a time, and hw_client_stream_recv_status
 * once (it may be pending while a receive is). Returns GRPC_CALL_OK, or an
 * error (then no completion will come). */
grpc_call_error hw_client_stream_start(hw_client_call *c, grpc_call *call, const grpc_metadata *md, size_t n_md,
                                       grpc_byte_buffer *request, void *tag);

/* Starts receiving the stream's next message into c->reply, with tag:
 * when the tag completes c->reply is the message (the caller takes or
 * destroys it and sets c->reply to NULL before the next receive), or NULL
 * at the stream's end. Returns what grpc_call_start_batch returns. */
grpc_call_error hw_client_stream_recv(hw_client_call *c, void *tag);

/* Starts receiving the stream's status into c (then hw_client_call_status
 * reads it), with tag. Returns what grpc_call_start_batch returns. */
grpc_call_error hw_client_stream_recv_status(hw_client_call *c, void *tag);

/* After the tag completed: the outcome as a status. */
void hw_client_call_status(const hw_client_call *c, hw_client_status *st);

/* Reads ErrorInfo.reason and RetryInfo.retry_delay from a serialized
 * google.rpc.Status (len bytes at buf) into st->reason and
 * st->retry_delay_ms; leaves them as they are for what is absent or does
 * not parse. Never allocates. */
void hw_client_status_details(hw_client_status *st, const uint8_t *buf, size_t len);

/* Releases the call, both messages and the details, leaving c ready for
 * the next start. Safe after a failed start. */
void hw_client_call_end(hw_client_call *c);

/* Frees what hw_client_call_init allocated; no call may be in progress. */
void hw_client_call_fini(hw_client_call *c);

/* ---- a client: channel, token, blocking calls ---- */

typedef struct hw_client hw_client;

typedef struct hw_client_options {
    const char *target;             /* host:port, or a list of IP addresses (channel.h); required */
    const char *token;              /* bearer token, or NULL/"" for none; copied, wiped on destroy */
    const char *tls_ca_file;        /* PEM roots for TLS; NULL/"" for plaintext */
    const char *tls_server_name;    /* expected certificate name, or NULL */
    int timeout_ms;                 /* deadline of calls given timeout 0; 0 for 10000 */
    int max_receive_bytes;          /* largest reply accepted; 0 for 4 MiB */
    hw_channel_reconnect reconnect; /* the channel's reconnect schedule; zeros: channel.h's defaults */
    /* Calls wait for a connection to helpwired, up to their deadline,
     * instead of failing at once with UNAVAILABLE while the channel is
     * not connected (gRPC's wait-for-ready): right for a process that
     * must get its call through (a bridge), wrong for one that should say
     * at once that helpwired is down (the CLI). A call that waited out its
     * deadline without a connection reports UNAVAILABLE "no connection to
     * helpwired within the deadline", not DEADLINE_EXCEEDED. */
    bool wait_for_ready;
} hw_client_options;

/* Creates the channel (it connects lazily, on the first call).
 * @param[out] out  the client; release with hw_client_destroy
 * @return 0, or -1 with a reason in err: the CA file cannot be read
 *         ("--tls-ca ..."), the token is not valid in metadata, out of
 *         memory. err never contains the token. */
int hw_client_create(hw_client **out, const hw_client_options *o, char *err, size_t errlen);

/* Destroys the channel and wipes the token. No call or pipe may still be
 * in progress. NULL is ignored. */
void hw_client_destroy(hw_client *c);

/* The channel (owned by c), for streaming calls. */
grpc_channel *hw_client_channel(hw_client *c);

/* Whether c's calls wait for a connection (hw_client_options). Streaming
 * callers set GRPC_INITIAL_METADATA_WAIT_FOR_READY on their initial
 * metadata accordingly. */
bool hw_client_wait_for_ready(const hw_client *c);

/* The metadata every call sends (*count entries, 0 or 1), owned by c. */
const grpc_metadata *hw_client_metadata(const hw_client *c, size_t *count);

/* Calls method (e.g. "/helpwire.v1.Router/Route", static storage or
 * outliving the call) with request and waits for its status, up to
 * timeout_ms (0: the client's timeout_ms).
 * @param[out] reply  on OK the unpacked reply of type reply_desc, owned by
 *                    the caller (protobuf_c_message_free_unpacked(*reply,
 *                    NULL)); NULL otherwise
 * @return st->code: 0 (GRPC_STATUS_OK) or a grpc_status_code. A reply that
 *         does not unpack is GRPC_STATUS_INTERNAL.
 * Thread-safe: each call has its own completion queue. */
int hw_client_unary(hw_client *c, const char *method, const ProtobufCMessage *request,
                    const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **reply, int timeout_ms,
                    hw_client_status *st);

/* hw_client_unary with bytes already packed: request is borrowed; on OK
 * *reply is the reply's bytes (grpc_slice_unref it), else an empty slice. */
int hw_client_unary_raw(hw_client *c, const char *method, grpc_slice request, grpc_slice *reply,
                        int timeout_ms, hw_client_status *st);

/* ---- pipes: many calls of one method in flight ---- */

typedef struct hw_client_pipe hw_client_pipe;

/* Called once per finished pipe call, from inside hw_client_pipe_submit or
 * hw_client_pipe_finish. user is the value given to submit; reply is the
 * unpacked reply on OK (NULL otherwise) and is owned by the callback. */
typedef void (*hw_client_done_fn)(void *ctx, uint64_t user, const hw_client_status *st,
                                  ProtobufCMessage *reply);

enum { HW_CLIENT_MAX_WINDOW = 1024 };

/* Creates a pipe of up to window (1..HW_CLIENT_MAX_WINDOW) calls of method
 * in flight on c, each with the client's timeout. A pipe and its callbacks
 * belong to one thread. Returns 0, or -1 when out of memory or window is
 * out of range. */
int hw_client_pipe_create(hw_client_pipe **out, hw_client *c, const char *method,
                          const ProtobufCMessageDescriptor *reply_desc, int window, hw_client_done_fn done,
                          void *ctx);

/* Starts one call. When the window is full it first waits for at least one
 * call to finish (running the callback). request is packed at once: the
 * caller may free it on return. A call that cannot even start is reported
 * through the callback (GRPC_STATUS_INTERNAL) like any other failure, so
 * every submit leads to exactly one callback. */
void hw_client_pipe_submit(hw_client_pipe *p, const ProtobufCMessage *request, uint64_t user);

/* Waits until every started call has finished (running the callbacks). */
void hw_client_pipe_finish(hw_client_pipe *p);

/* Finishes outstanding calls (as hw_client_pipe_finish) and frees the pipe.
 * NULL is ignored. */
void hw_client_pipe_destroy(hw_client_pipe *p);

#endif
