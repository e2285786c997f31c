/*
 * rpc: the bridges' gRPC client on the C core. One br_rpc holds one channel
 * to helpwired (plaintext, or TLS with given roots) and the bearer token;
 * br_rpc_unary makes a blocking unary call with a deadline, packing the
 * request and unpacking the reply with protobuf-c, and returns the status
 * code and message. Every call carries `authorization: Bearer <token>` when
 * a token is set.
 *
 * Each call uses its own completion queue, so any number of threads may
 * call at once on one br_rpc. grpc_init() must have been called (main) and
 * grpc_shutdown() only after br_rpc_destroy.
 *
 * Not here: retries (callers decide what is retryable with
 * br_status_retryable and back off with backoff.h) and streaming (outbox.h
 * builds its stream on br_rpc_channel).
 */
#ifndef BR_RPC_H
#define BR_RPC_H

#include <stdbool.h>

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

typedef struct br_rpc br_rpc;

/* A call's outcome: a grpc_status_code and the server's message. */
typedef struct br_status {
    int code;
    char message[256];
} br_status;

typedef struct br_rpc_options {
    const char *target;          /* host:port; required */
    const char *token;           /* bearer token, or NULL; copied */
    const char *tls_ca_file;     /* PEM roots for TLS; NULL for plaintext */
    const char *tls_server_name; /* expected certificate name, or NULL */
    int max_message_bytes;       /* largest reply accepted; 0 for 4 MiB */
} br_rpc_options;

/* Creates the channel (connecting lazily). Returns 0, or -1 with err (the
 * CA file cannot be read, out of memory). Release with br_rpc_destroy. */
int br_rpc_create(br_rpc **out, const br_rpc_options *o, char *err, size_t errlen);

/* Destroys the channel; no call may be in progress. NULL is ignored. */
void br_rpc_destroy(br_rpc *rpc);

/* The underlying channel (owned by rpc), for streaming calls. */
grpc_channel *br_rpc_channel(br_rpc *rpc);

/* Fills the authorization metadata entry for a call: returns 1 and sets
 * *md (release its value with grpc_slice_unref(md->value)) when a token is
 * set, else 0. */
int br_rpc_auth_metadata(const br_rpc *rpc, grpc_metadata *md);

/* Calls method (e.g. "/helpwire.v1.Router/Route") with request and waits
 * up to timeout_ms. On GRPC_STATUS_OK *reply holds the unpacked reply of
 * type reply_desc (free it with protobuf_c_message_free_unpacked(*reply,
 * NULL)); otherwise *reply is NULL. Returns st->code (0 for OK). A reply
 * that does not unpack is reported as GRPC_STATUS_INTERNAL. Thread-safe. */
int br_rpc_unary(br_rpc *rpc, const char *method, const ProtobufCMessage *request,
                 const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **reply, int timeout_ms,
                 br_status *st);

/* The canonical name of a status code, e.g. "UNAVAILABLE". */
const char *br_status_name(int code);

/* Whether a failed call may succeed if repeated unchanged later: the
 * server is down, draining, overloaded, timed out, or does not have the
 * method yet (UNIMPLEMENTED during an upgrade). INVALID_ARGUMENT,
 * FAILED_PRECONDITION, PERMISSION_DENIED and the like are final. */
bool br_status_retryable(int code);

/* Packs msg into a new byte buffer (caller destroys it). */
grpc_byte_buffer *br_rpc_pack(const ProtobufCMessage *msg);

/* Unpacks bb as desc; NULL when it does not parse. Free the result with
 * protobuf_c_message_free_unpacked(m, NULL). */
ProtobufCMessage *br_rpc_unpack(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *desc);

#endif
