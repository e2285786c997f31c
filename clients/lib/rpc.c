/*
 * rpc: unary calls on the gRPC C core (see rpc.h). A unary call is one
 * batch of six ops on a private completion queue; the queue is shut down
 * and drained before it is destroyed, as the core requires.
 */
#include "clients/lib/rpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include <openssl/crypto.h>

#include "clients/lib/channel.h"
#include "clients/lib/config.h"

struct br_rpc {
    grpc_channel *channel;
    char *auth_value; /* "Bearer <token>", or NULL */
};

static const char *const status_names[] = {
    "OK",        "CANCELLED",       "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS",  "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",    "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED",
};

const char *br_status_name(int code)
{
    return code >= 0 && (size_t)code < sizeof status_names / sizeof status_names[0] ? status_names[code]
                                                                                    : "?";
}

bool br_status_retryable(int code)
{
    switch (code) {
    case GRPC_STATUS_UNAVAILABLE:
    case GRPC_STATUS_DEADLINE_EXCEEDED:
    case GRPC_STATUS_RESOURCE_EXHAUSTED:
    case GRPC_STATUS_ABORTED:
    case GRPC_STATUS_UNIMPLEMENTED:
    case GRPC_STATUS_INTERNAL:
    case GRPC_STATUS_UNKNOWN:
    case GRPC_STATUS_CANCELLED:
        return true;
    default:
        return false;
    }
}

int br_rpc_create(br_rpc **out, const br_rpc_options *o, char *err, size_t errlen)
{
    int rc = -1;
    br_rpc *rpc = calloc(1, sizeof *rpc);
    if (!rpc) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (o->token && *o->token) {
        if (asprintf(&rpc->auth_value, "Bearer %s", o->token) < 0) {
            rpc->auth_value = NULL;
            snprintf(err, errlen, "out of memory");
            goto out;
        }
    }
    grpc_arg args[2];
    size_t nargs = 0;
    args[nargs].type = GRPC_ARG_INTEGER;
    args[nargs].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[nargs++].value.integer = o->max_message_bytes > 0 ? o->max_message_bytes : 4 << 20;
    /* A stream that breaks should reconnect at our backoff, not the
     * core's default of up to two minutes. */
    args[nargs].type = GRPC_ARG_INTEGER;
    args[nargs].key = (char *)GRPC_ARG_MAX_RECONNECT_BACKOFF_MS;
    args[nargs++].value.integer = 2000;
    hw_channel_security sec = {.tls_ca_file = o->tls_ca_file, .tls_server_name = o->tls_server_name};
    if (hw_channel_open(o->target, &sec, args, nargs, &rpc->channel, err, errlen) != 0)
        goto out;
    *out = rpc;
    rpc = NULL;
    rc = 0;
out:
    br_rpc_destroy(rpc);
    return rc;
}

void br_rpc_destroy(br_rpc *rpc)
{
    if (!rpc)
        return;
    if (rpc->channel)
        grpc_channel_destroy(rpc->channel);
    if (rpc->auth_value) {
        OPENSSL_cleanse(rpc->auth_value, strlen(rpc->auth_value));
        free(rpc->auth_value);
    }
    free(rpc);
}

grpc_channel *br_rpc_channel(br_rpc *rpc)
{
    return rpc->channel;
}

int br_rpc_auth_metadata(const br_rpc *rpc, grpc_metadata *md)
{
    memset(md, 0, sizeof *md);
    if (!rpc->auth_value)
        return 0;
    md->key = grpc_slice_from_static_string("authorization");
    md->value = grpc_slice_from_copied_string(rpc->auth_value);
    return 1;
}

grpc_byte_buffer *br_rpc_pack(const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    grpc_slice s = grpc_slice_malloc(len);
    protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

ProtobufCMessage *br_rpc_unpack(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *desc)
{
    grpc_byte_buffer_reader r;
    if (!grpc_byte_buffer_reader_init(&r, bb))
        return NULL;
    grpc_slice s = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    ProtobufCMessage *m =
        protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
    grpc_slice_unref(s);
    return m;
}

/* Shuts cq down and drains it, then destroys it. */
static void cq_destroy(grpc_completion_queue *cq)
{
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
}

int br_rpc_unary(br_rpc *rpc, const char *method, const ProtobufCMessage *request,
                 const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **reply, int timeout_ms,
                 br_status *st)
{
    *reply = NULL;
    st->code = GRPC_STATUS_INTERNAL;
    st->message[0] = '\0';
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    grpc_call *call = NULL;
    grpc_byte_buffer *send_bb = NULL, *recv_bb = NULL;
    grpc_metadata auth;
    int has_auth = br_rpc_auth_metadata(rpc, &auth);
    grpc_metadata_array initial_md, trailing_md;
    grpc_metadata_array_init(&initial_md);
    grpc_metadata_array_init(&trailing_md);
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    const char *error_string = NULL;

    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
    grpc_slice method_slice = grpc_slice_from_static_string(method);
    call = grpc_channel_create_call(rpc->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method_slice, NULL,
                                    deadline, NULL);
    if (!call) {
        snprintf(st->message, sizeof st->message, "cannot create call");
        goto out;
    }
    send_bb = br_rpc_pack(request);
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = (size_t)has_auth;
    ops[0].data.send_initial_metadata.metadata = has_auth ? &auth : NULL;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send_bb;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv_bb;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing_md;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;
    ops[5].data.recv_status_on_client.error_string = &error_string;
    int tag = 1;
    if (grpc_call_start_batch(call, ops, 6, &tag, NULL) != GRPC_CALL_OK) {
        snprintf(st->message, sizeof st->message, "cannot start call");
        goto out;
    }
    /* The call's own deadline ends the batch; the extra second only guards
     * against a core that never answers. */
    gpr_timespec wait = gpr_time_add(deadline, gpr_time_from_millis(1000, GPR_TIMESPAN));
    grpc_event ev = grpc_completion_queue_next(cq, wait, NULL);
    if (ev.type != GRPC_OP_COMPLETE) {
        grpc_call_cancel(call, NULL);
        ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    }
    st->code = status;
    snprintf(st->message, sizeof st->message, "%.*s", (int)GRPC_SLICE_LENGTH(details),
             (const char *)GRPC_SLICE_START_PTR(details));
    if (status == GRPC_STATUS_OK) {
        *reply = recv_bb ? br_rpc_unpack(recv_bb, reply_desc) : NULL;
        if (!*reply) {
            st->code = GRPC_STATUS_INTERNAL;
            snprintf(st->message, sizeof st->message, "reply does not parse as %s", reply_desc->name);
        }
    }
out:
    if (error_string)
        gpr_free((void *)error_string);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&initial_md);
    grpc_metadata_array_destroy(&trailing_md);
    if (has_auth)
        grpc_slice_unref(auth.value);
    if (send_bb)
        grpc_byte_buffer_destroy(send_bb);
    if (recv_bb)
        grpc_byte_buffer_destroy(recv_bb);
    if (call)
        grpc_call_unref(call);
    cq_destroy(cq);
    return st->code;
}
