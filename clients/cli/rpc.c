/*
 * rpc: unary calls for the helpwire CLI (see rpc.h). Every call is a
 * "slot": one grpc_call and one batch of six ops whose tag is the slot
 * itself, so a completion queue can carry many calls and each event names
 * the call it finished. cli_rpc_unary runs one slot on a private queue; a
 * pipe keeps a fixed array of slots on its own queue and a stack of free
 * ones, waiting for a completion only when all are busy. Queues are shut
 * down and drained before they are destroyed, as the core requires.
 *
 * The bearer secret lives in one buffer of the cli_rpc, is referenced (not
 * copied) by each call's metadata, and is wiped on destroy.
 */
#include "clients/cli/rpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "clients/lib/channel.h"

/* Replies may be large (a page of 500 tickets, a long conversation). */
enum { CLI_RPC_MAX_RECEIVE_BYTES = 64 << 20, CLI_RPC_MAX_WINDOW = 1024 };

struct cli_rpc {
    grpc_channel *channel;
    char *auth_value; /* "Bearer <token>", or NULL */
    int timeout_ms;
};

/* One call in flight (or an idle slot when call is NULL). */
typedef struct call_slot {
    grpc_call *call;
    grpc_byte_buffer *send_bb;
    grpc_byte_buffer *recv_bb;
    grpc_metadata auth;
    grpc_metadata_array initial_md;
    grpc_metadata_array trailing_md;
    grpc_status_code status;
    grpc_slice details;
    const char *error_string;
    uint64_t user;
} call_slot;

struct cli_rpc_pipe {
    cli_rpc *rpc;
    grpc_completion_queue *cq;
    const char *method;
    const ProtobufCMessageDescriptor *reply_desc;
    cli_rpc_done_fn done;
    void *ctx;
    call_slot *slots;
    call_slot **free_slots; /* stack of idle slots */
    int nfree;
    int window;
};

static const char *const status_names[] = {
    "OK",        "CANCELLED",       "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS",  "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",    "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED",
};

const char *cli_status_name(int code)
{
    if (code < 0 || (size_t)code >= sizeof status_names / sizeof status_names[0])
        return "UNKNOWN";
    return status_names[code];
}

static void wipe_free(char *s)
{
    if (!s)
        return;
    explicit_bzero(s, strlen(s));
    free(s);
}

/* Only visible ASCII is valid in a metadata value's token part. */
static int token_is_valid(const char *t)
{
    for (; *t; t++)
        if (*t < 0x21 || *t > 0x7e)
            return 0;
    return 1;
}

int cli_rpc_create(cli_rpc **out, const cli_rpc_options *o, char *err, size_t errlen)
{
    int rc = -1;
    cli_rpc *rpc = calloc(1, sizeof *rpc);

    *out = NULL;
    if (!rpc) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    rpc->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 10000;
    if (o->token && *o->token) {
        if (!token_is_valid(o->token)) {
            snprintf(err, errlen, "the token holds characters other than visible ASCII");
            goto out;
        }
        size_t n = strlen("Bearer ") + strlen(o->token) + 1;
        rpc->auth_value = malloc(n);
        if (!rpc->auth_value) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        snprintf(rpc->auth_value, n, "Bearer %s", o->token);
    }

    grpc_arg args[1];
    size_t nargs = 0;
    args[nargs].type = GRPC_ARG_INTEGER;
    args[nargs].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[nargs++].value.integer = CLI_RPC_MAX_RECEIVE_BYTES;
    hw_channel_security sec = {.tls_ca_file = o->tls_ca_file, .tls_server_name = o->tls_server_name};
    if (hw_channel_open(o->target, &sec, args, nargs, &rpc->channel, err, errlen) != 0)
        goto out;
    *out = rpc;
    rpc = NULL;
    rc = 0;
out:
    cli_rpc_destroy(rpc);
    return rc;
}

void cli_rpc_destroy(cli_rpc *rpc)
{
    if (!rpc)
        return;
    if (rpc->channel)
        grpc_channel_destroy(rpc->channel);
    wipe_free(rpc->auth_value);
    free(rpc);
}

static grpc_byte_buffer *pack_message(const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    grpc_slice s = grpc_slice_malloc(len);
    protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

static ProtobufCMessage *unpack_message(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *desc)
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

static void set_status(cli_status *st, int code, const char *message)
{
    st->code = code;
    snprintf(st->message, sizeof st->message, "%s", message);
}

/* Starts slot's call of method on cq with request. Returns 0, or fills st
 * and leaves the slot idle. */
static int slot_start(cli_rpc *rpc, grpc_completion_queue *cq, call_slot *slot, const char *method,
                      const ProtobufCMessage *request, uint64_t user, cli_status *st)
{
    memset(slot, 0, sizeof *slot);
    slot->user = user;
    slot->details = grpc_empty_slice();
    slot->status = GRPC_STATUS_UNKNOWN;
    grpc_metadata_array_init(&slot->initial_md);
    grpc_metadata_array_init(&slot->trailing_md);

    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(rpc->timeout_ms, GPR_TIMESPAN));
    slot->call = grpc_channel_create_call(rpc->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                          grpc_slice_from_static_string(method), NULL, deadline, NULL);
    if (!slot->call) {
        set_status(st, GRPC_STATUS_INTERNAL, "cannot create the call");
        goto fail;
    }
    slot->send_bb = pack_message(request);
    size_t nauth = 0;
    if (rpc->auth_value) {
        slot->auth.key = grpc_slice_from_static_string("authorization");
        slot->auth.value = grpc_slice_from_static_string(rpc->auth_value);
        nauth = 1;
    }
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = nauth;
    ops[0].data.send_initial_metadata.metadata = nauth ? &slot->auth : NULL;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = slot->send_bb;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &slot->initial_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &slot->recv_bb;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &slot->trailing_md;
    ops[5].data.recv_status_on_client.status = &slot->status;
    ops[5].data.recv_status_on_client.status_details = &slot->details;
    ops[5].data.recv_status_on_client.error_string = &slot->error_string;
    if (grpc_call_start_batch(slot->call, ops, 6, slot, NULL) != GRPC_CALL_OK) {
        set_status(st, GRPC_STATUS_INTERNAL, "cannot start the call");
        goto fail;
    }
    return 0;
fail:
    if (slot->send_bb)
        grpc_byte_buffer_destroy(slot->send_bb);
    if (slot->call)
        grpc_call_unref(slot->call);
    grpc_metadata_array_destroy(&slot->initial_md);
    grpc_metadata_array_destroy(&slot->trailing_md);
    memset(slot, 0, sizeof *slot);
    return -1;
}

/* After the slot's batch completed: fills st and *reply, releases the call
 * and leaves the slot idle. */
static void slot_finish(call_slot *slot, const ProtobufCMessageDescriptor *reply_desc,
                        ProtobufCMessage **reply, cli_status *st)
{
    *reply = NULL;
    st->code = slot->status;
    snprintf(st->message, sizeof st->message, "%.*s", (int)GRPC_SLICE_LENGTH(slot->details),
             (const char *)GRPC_SLICE_START_PTR(slot->details));
    if (slot->status == GRPC_STATUS_OK) {
        *reply = slot->recv_bb ? unpack_message(slot->recv_bb, reply_desc) : NULL;
        if (!*reply) {
            st->code = GRPC_STATUS_INTERNAL;
            snprintf(st->message, sizeof st->message, "the reply does not parse as %s", reply_desc->name);
        }
    }
    if (slot->error_string)
        gpr_free((void *)slot->error_string);
    grpc_slice_unref(slot->details);
    grpc_metadata_array_destroy(&slot->initial_md);
    grpc_metadata_array_destroy(&slot->trailing_md);
    if (slot->send_bb)
        grpc_byte_buffer_destroy(slot->send_bb);
    if (slot->recv_bb)
        grpc_byte_buffer_destroy(slot->recv_bb);
    grpc_call_unref(slot->call);
    memset(slot, 0, sizeof *slot);
}

static void cq_destroy(grpc_completion_queue *cq)
{
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
}

int cli_rpc_unary(cli_rpc *rpc, const char *method, const ProtobufCMessage *request,
                  const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **reply, cli_status *st)
{
    call_slot slot;
    *reply = NULL;
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    if (slot_start(rpc, cq, &slot, method, request, 0, st) == 0) {
        /* Every call has a deadline, so the core always completes the
         * batch; waiting without a bound cannot hang. */
        grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        (void)ev;
        slot_finish(&slot, reply_desc, reply, st);
    }
    cq_destroy(cq);
    return st->code;
}

int cli_rpc_pipe_create(cli_rpc_pipe **out, cli_rpc *rpc, const char *method,
                        const ProtobufCMessageDescriptor *reply_desc, int window, cli_rpc_done_fn done,
                        void *ctx)
{
    *out = NULL;
    if (window < 1 || window > CLI_RPC_MAX_WINDOW)
        return -1;
    cli_rpc_pipe *p = calloc(1, sizeof *p);
    if (!p)
        return -1;
    p->slots = calloc((size_t)window, sizeof *p->slots);
    p->free_slots = calloc((size_t)window, sizeof(call_slot *));
    if (!p->slots || !p->free_slots) {
        free(p->slots);
        free(p->free_slots);
        free(p);
        return -1;
    }
    p->rpc = rpc;
    p->cq = grpc_completion_queue_create_for_next(NULL);
    p->method = method;
    p->reply_desc = reply_desc;
    p->done = done;
    p->ctx = ctx;
    p->window = window;
    for (int i = window - 1; i >= 0; i--)
        p->free_slots[p->nfree++] = &p->slots[i];
    *out = p;
    return 0;
}

/* Waits for one call of p to finish and hands it to the callback. */
static void pipe_wait_one(cli_rpc_pipe *p)
{
    grpc_event ev = grpc_completion_queue_next(p->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type != GRPC_OP_COMPLETE)
        return;
    call_slot *slot = ev.tag;
    uint64_t user = slot->user;
    ProtobufCMessage *reply = NULL;
    cli_status st;
    slot_finish(slot, p->reply_desc, &reply, &st);
    p->free_slots[p->nfree++] = slot;
    p->done(p->ctx, user, &st, reply);
}

void cli_rpc_pipe_submit(cli_rpc_pipe *p, const ProtobufCMessage *request, uint64_t user)
{
    while (p->nfree == 0)
        pipe_wait_one(p);
    call_slot *slot = p->free_slots[--p->nfree];
    cli_status st;
    if (slot_start(p->rpc, p->cq, slot, p->method, request, user, &st) != 0) {
        p->free_slots[p->nfree++] = slot;
        p->done(p->ctx, user, &st, NULL);
    }
}

void cli_rpc_pipe_finish(cli_rpc_pipe *p)
{
    while (p->nfree < p->window)
        pipe_wait_one(p);
}

void cli_rpc_pipe_destroy(cli_rpc_pipe *p)
{
    if (!p)
        return;
    cli_rpc_pipe_finish(p);
    cq_destroy(p->cq);
    free(p->slots);
    free(p->free_slots);
    free(p);
}
