/*
 * client: unary calls on the gRPC C core (see client.h).
 *
 * Everything is built on hw_client_call, "one call, one batch of six ops,
 * one completion": the blocking call runs one on a private queue (so any
 * number of threads may call at once), a pipe keeps a fixed array of them
 * on its own queue with a stack of free ones and waits for a completion
 * only when all are busy, and the load generator embeds one in each of its
 * slots. Queues are shut down and drained before they are destroyed, as the
 * core requires. Deadlines are on the monotonic clock.
 *
 * The bearer secret lives in one buffer, referenced (not copied) by each
 * call's metadata, and is wiped when the client goes.
 */
#include "clients/lib/client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "clients/lib/channel.h"
#include "server/base/files.h"

enum { DEFAULT_TIMEOUT_MS = 10000, DEFAULT_MAX_RECEIVE_BYTES = 4 << 20 };

/* ---- status ---- */

static const char *const status_names[] = {
    "OK",        "CANCELLED",       "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS",  "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",    "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED",
};

const char *hw_client_status_name(int code)
{
    if (code < 0 || (size_t)code >= sizeof status_names / sizeof status_names[0])
        return "UNKNOWN";
    return status_names[code];
}

bool hw_client_status_retryable(int code)
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

void hw_client_status_set(hw_client_status *st, int code, grpc_slice details)
{
    st->code = code;
    st->reason[0] = '\0';
    st->retry_delay_ms = -1;
    snprintf(st->message, sizeof st->message, "%.*s", (int)GRPC_SLICE_LENGTH(details),
             (const char *)GRPC_SLICE_START_PTR(details));
}

static void set_local_status(hw_client_status *st, int code, const char *message)
{
    st->code = code;
    st->reason[0] = '\0';
    st->retry_delay_ms = -1;
    snprintf(st->message, sizeof st->message, "%s", message);
}

/* ---- packing ---- */

int hw_client_pack_slice(const ProtobufCMessage *msg, grpc_slice *out)
{
    size_t size = protobuf_c_message_get_packed_size(msg);
    grpc_slice s = grpc_slice_malloc(size);
    if (GRPC_SLICE_LENGTH(s) != size)
        return -ENOMEM;
    if (protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s)) != size) {
        grpc_slice_unref(s);
        return -ENOMEM;
    }
    *out = s;
    return 0;
}

grpc_byte_buffer *hw_client_pack(const ProtobufCMessage *msg)
{
    grpc_slice s;
    if (hw_client_pack_slice(msg, &s) != 0)
        return NULL;
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

grpc_slice hw_client_buffer_slice(grpc_byte_buffer *bb)
{
    grpc_byte_buffer_reader r;
    if (!bb || !grpc_byte_buffer_reader_init(&r, bb))
        return grpc_empty_slice();
    grpc_slice s = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    return s;
}

ProtobufCMessage *hw_client_unpack(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *desc)
{
    grpc_slice s = hw_client_buffer_slice(bb);
    ProtobufCMessage *m =
        protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
    grpc_slice_unref(s);
    return m;
}

/* ---- the bearer token ---- */

/* Only visible ASCII is valid in a metadata value's token part. */
static bool token_is_valid(const char *t)
{
    for (; *t; t++)
        if (*t < 0x21 || *t > 0x7e)
            return false;
    return true;
}

int hw_client_auth_init(hw_client_auth *a, const char *token, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    if (!token || !*token)
        return 0;
    if (!token_is_valid(token)) {
        snprintf(err, errlen, "the token holds characters other than visible ASCII");
        return -1;
    }
    size_t n = strlen("Bearer ") + strlen(token) + 1;
    if (!(a->value = malloc(n))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(a->value, n, "Bearer %s", token);
    a->md[0].key = grpc_slice_from_static_string("authorization");
    a->md[0].value = grpc_slice_from_static_string(a->value);
    a->count = 1;
    return 0;
}

void hw_client_auth_clear(hw_client_auth *a)
{
    if (a->value) {
        explicit_bzero(a->value, strlen(a->value));
        free(a->value);
    }
    memset(a, 0, sizeof *a);
}

int hw_client_secret_load(const char *path, const char *value, const char *file_flag, char **out, char *err,
                          size_t errlen)
{
    char e[300];
    *out = NULL;
    if (path && *path) {
        if (hw_file_read_secret(path, out, e, sizeof e) != 0) {
            snprintf(err, errlen, "--%s: %s", file_flag, e);
            return -1;
        }
        if (**out == '\0') {
            snprintf(err, errlen, "--%s: %s is empty", file_flag, path);
            hw_client_secret_free(out);
            return -1;
        }
    } else if (value && *value) {
        if (!(*out = strdup(value))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}

void hw_client_secret_free(char **secret)
{
    if (!*secret)
        return;
    explicit_bzero(*secret, strlen(*secret));
    free(*secret);
    *secret = NULL;
}

/* ---- one call ---- */

void hw_client_call_init(hw_client_call *c)
{
    memset(c, 0, sizeof *c);
    c->details = grpc_empty_slice();
    c->status = GRPC_STATUS_UNKNOWN;
    grpc_metadata_array_init(&c->initial_md);
    grpc_metadata_array_init(&c->trailing_md);
}

/* The first four ops of every call in ops[0..3]: initial metadata, the
 * request, the half-close, and receiving the initial metadata. */
static void start_ops(hw_client_call *c, const grpc_metadata *md, size_t n_md, grpc_op ops[4])
{
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].flags = c->wait_for_ready ? GRPC_INITIAL_METADATA_WAIT_FOR_READY : 0;
    ops[0].data.send_initial_metadata.count = n_md;
    ops[0].data.send_initial_metadata.metadata = n_md ? (grpc_metadata *)md : NULL;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = c->request;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &c->initial_md;
}

static void status_op(hw_client_call *c, grpc_op *op)
{
    op->op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op->data.recv_status_on_client.trailing_metadata = &c->trailing_md;
    op->data.recv_status_on_client.status = &c->status;
    op->data.recv_status_on_client.status_details = &c->details;
    op->data.recv_status_on_client.error_string = &c->error_string;
}

/* Starts call on c: the first four ops, and for a unary call (streamed
 * false) the reply and the status in the same batch. c takes call and
 * request whatever happens. */
static grpc_call_error start(hw_client_call *c, grpc_call *call, const grpc_metadata *md, size_t n_md,
                             grpc_byte_buffer *request, void *tag, bool streamed)
{
    c->call = call;
    c->request = request;
    c->status = GRPC_STATUS_UNKNOWN;
    if (!call || !request)
        return GRPC_CALL_ERROR;
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    start_ops(c, md, n_md, ops);
    if (streamed)
        return grpc_call_start_batch(call, ops, 4, tag, NULL);
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &c->reply;
    status_op(c, &ops[5]);
    return grpc_call_start_batch(call, ops, 6, tag, NULL);
}

grpc_call_error hw_client_call_start(hw_client_call *c, grpc_call *call, const grpc_metadata *md, size_t n_md,
                                     grpc_byte_buffer *request, void *tag)
{
    return start(c, call, md, n_md, request, tag, false);
}

grpc_call_error hw_client_stream_start(hw_client_call *c, grpc_call *call, const grpc_metadata *md, size_t n_md,
                                       grpc_byte_buffer *request, void *tag)
{
    return start(c, call, md, n_md, request, tag, true);
}

grpc_call_error hw_client_stream_recv(hw_client_call *c, void *tag)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &c->reply;
    return grpc_call_start_batch(c->call, &op, 1, tag, NULL);
}

grpc_call_error hw_client_stream_recv_status(hw_client_call *c, void *tag)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    status_op(c, &op);
    return grpc_call_start_batch(c->call, &op, 1, tag, NULL);
}

/* ---- the error details (a few fields of google.rpc.Status) ---- */

/* One protobuf field read from [*p, end): its number, wire type, and the
 * varint value or the bytes of a length-delimited field. */
typedef struct {
    uint32_t number, type;
    uint64_t v;
    const uint8_t *bytes;
    size_t len;
} pb_field;

static bool pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80))
            return true;
    }
    return false;
}

/* Reads the next field; false at the end or on bytes that do not parse. */
static bool pb_next(const uint8_t **p, const uint8_t *end, pb_field *f)
{
    uint64_t key;
    if (*p >= end || !pb_varint(p, end, &key))
        return false;
    f->number = (uint32_t)(key >> 3);
    f->type = (uint32_t)(key & 7);
    switch (f->type) {
    case 0:
        return pb_varint(p, end, &f->v);
    case 1:
    case 5: {
        size_t n = f->type == 1 ? 8 : 4;
        if ((size_t)(end - *p) < n)
            return false;
        *p += n;
        return true;
    }
    case 2:
        if (!pb_varint(p, end, &f->v) || f->v > (uint64_t)(end - *p))
            return false;
        f->bytes = *p;
        f->len = (size_t)f->v;
        *p += f->len;
        return true;
    default:
        return false;
    }
}

static bool pb_type_is(const pb_field *url, const char *name)
{
    size_t n = strlen(name);
    return url->len >= n && memcmp(url->bytes + url->len - n, name, n) == 0 &&
           (url->len == n || url->bytes[url->len - n - 1] == '/');
}

void hw_client_status_details(hw_client_status *st, const uint8_t *buf, size_t len)
{
    const uint8_t *p = buf, *end = buf + len;
    pb_field f;
    while (pb_next(&p, end, &f)) {
        if (f.number != 3 || f.type != 2)
            continue; /* details: repeated google.protobuf.Any */
        const uint8_t *q = f.bytes, *qend = f.bytes + f.len;
        pb_field a, url = {0}, value = {0};
        while (pb_next(&q, qend, &a))
            if (a.type == 2 && a.number == 1)
                url = a;
            else if (a.type == 2 && a.number == 2)
                value = a;
        if (!url.bytes || !value.bytes)
            continue;
        const uint8_t *v = value.bytes, *vend = value.bytes + value.len;
        pb_field m;
        if (pb_type_is(&url, "google.rpc.ErrorInfo")) {
            while (pb_next(&v, vend, &m))
                if (m.number == 1 && m.type == 2 && m.len < sizeof st->reason) {
                    memcpy(st->reason, m.bytes, m.len);
                    st->reason[m.len] = '\0';
                }
        } else if (pb_type_is(&url, "google.rpc.RetryInfo")) {
            while (pb_next(&v, vend, &m)) {
                if (m.number != 1 || m.type != 2)
                    continue; /* retry_delay: google.protobuf.Duration */
                const uint8_t *d = m.bytes, *dend = m.bytes + m.len;
                pb_field df;
                int64_t seconds = 0, nanos = 0;
                while (pb_next(&d, dend, &df))
                    if (df.type == 0 && df.number == 1)
                        seconds = (int64_t)df.v;
                    else if (df.type == 0 && df.number == 2)
                        nanos = (int64_t)(int32_t)df.v;
                if (seconds >= 0 && seconds < INT64_MAX / 1000 && nanos >= 0)
                    st->retry_delay_ms = seconds * 1000 + (nanos + 999999) / 1000000;
            }
        }
    }
}

void hw_client_call_status(const hw_client_call *c, hw_client_status *st)
{
    hw_client_status_set(st, c->status, c->details);
    for (size_t i = 0; i < c->trailing_md.count; i++) {
        const grpc_metadata *md = &c->trailing_md.metadata[i];
        if (grpc_slice_str_cmp(md->key, "grpc-status-details-bin") == 0)
            hw_client_status_details(st, GRPC_SLICE_START_PTR(md->value), GRPC_SLICE_LENGTH(md->value));
    }
}

void hw_client_call_end(hw_client_call *c)
{
    if (c->error_string)
        gpr_free((void *)c->error_string);
    c->error_string = NULL;
    grpc_slice_unref(c->details);
    c->details = grpc_empty_slice();
    if (c->request)
        grpc_byte_buffer_destroy(c->request);
    if (c->reply)
        grpc_byte_buffer_destroy(c->reply);
    c->request = c->reply = NULL;
    /* The entries belong to the call; the arrays keep their capacity. */
    c->initial_md.count = 0;
    c->trailing_md.count = 0;
    if (c->call)
        grpc_call_unref(c->call);
    c->call = NULL;
}

void hw_client_call_fini(hw_client_call *c)
{
    hw_client_call_end(c);
    grpc_metadata_array_destroy(&c->initial_md);
    grpc_metadata_array_destroy(&c->trailing_md);
}

/* ---- a client ---- */

struct hw_client {
    grpc_channel *channel;
    hw_client_auth auth;
    int timeout_ms;
    bool wait_for_ready;
};

int hw_client_create(hw_client **out, const hw_client_options *o, char *err, size_t errlen)
{
    int rc = -1;
    hw_client *c = calloc(1, sizeof *c);

    *out = NULL;
    if (!c) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    c->wait_for_ready = o->wait_for_ready;
    if (hw_client_auth_init(&c->auth, o->token, err, errlen) != 0)
        goto out;
    grpc_arg args[1];
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = o->max_receive_bytes > 0 ? o->max_receive_bytes : DEFAULT_MAX_RECEIVE_BYTES;
    hw_channel_security sec = {.tls_ca_file = o->tls_ca_file, .tls_server_name = o->tls_server_name};
    if (hw_channel_open(o->target, &sec, &o->reconnect, args, 1, &c->channel, err, errlen) != 0)
        goto out;
    *out = c;
    c = NULL;
    rc = 0;
out:
    hw_client_destroy(c);
    return rc;
}

void hw_client_destroy(hw_client *c)
{
    if (!c)
        return;
    if (c->channel)
        grpc_channel_destroy(c->channel);
    hw_client_auth_clear(&c->auth);
    free(c);
}

grpc_channel *hw_client_channel(hw_client *c)
{
    return c->channel;
}

bool hw_client_wait_for_ready(const hw_client *c)
{
    return c->wait_for_ready;
}

const grpc_metadata *hw_client_metadata(const hw_client *c, size_t *count)
{
    *count = c->auth.count;
    return c->auth.md;
}

static gpr_timespec deadline_in_ms(int ms)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

/* Starts a call of method on cq in slot with request (taken). Returns 0, or
 * fills st (slot ended). */
static int start_on(hw_client *c, grpc_completion_queue *cq, hw_client_call *slot, const char *method,
                    grpc_byte_buffer *request, gpr_timespec deadline, hw_client_status *st)
{
    grpc_call *call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                               grpc_slice_from_static_string(method), NULL, deadline, NULL);
    slot->wait_for_ready = c->wait_for_ready;
    if (hw_client_call_start(slot, call, c->auth.md, c->auth.count, request, slot) == GRPC_CALL_OK)
        return 0;
    set_local_status(st, GRPC_STATUS_INTERNAL,
                     !request ? "out of memory"
                     : !call  ? "cannot create the call"
                              : "cannot start the call");
    hw_client_call_end(slot);
    return -1;
}

static const char *connectivity_name(grpc_connectivity_state s)
{
    switch (s) {
    case GRPC_CHANNEL_IDLE:
        return "IDLE";
    case GRPC_CHANNEL_CONNECTING:
        return "CONNECTING";
    case GRPC_CHANNEL_READY:
        return "READY";
    case GRPC_CHANNEL_TRANSIENT_FAILURE:
        return "TRANSIENT_FAILURE";
    default:
        return "SHUTDOWN";
    }
}

/* The outcome of a finished call of c. A waiting call (wait-for-ready)
 * that ran out of time while the channel is still not connected never
 * reached helpwired: that is UNAVAILABLE, as it would have been at once
 * without the wait, and not a slow server's DEADLINE_EXCEEDED. */
static void finished_status(hw_client *c, const hw_client_call *slot, hw_client_status *st)
{
    hw_client_call_status(slot, st);
    if (!slot->wait_for_ready || st->code != GRPC_STATUS_DEADLINE_EXCEEDED)
        return;
    grpc_connectivity_state s = grpc_channel_check_connectivity_state(c->channel, 0);
    if (s == GRPC_CHANNEL_READY)
        return;
    st->code = GRPC_STATUS_UNAVAILABLE;
    snprintf(st->message, sizeof st->message, "no connection to helpwired within the deadline (channel %s)",
             connectivity_name(s));
}

void hw_client_cq_destroy(grpc_completion_queue *cq)
{
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
}

/* One blocking call of request (taken). On OK *reply holds the reply's
 * buffer (the caller destroys it). Returns st->code. */
static int call_blocking(hw_client *c, const char *method, grpc_byte_buffer *request, int timeout_ms,
                         grpc_byte_buffer **reply, hw_client_status *st)
{
    hw_client_call slot;
    *reply = NULL;
    hw_client_call_init(&slot);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    gpr_timespec deadline = deadline_in_ms(timeout_ms > 0 ? timeout_ms : c->timeout_ms);
    if (start_on(c, cq, &slot, method, request, deadline, st) == 0) {
        /* The call's own deadline ends the batch; the extra second only
         * guards against a core that never answers. */
        gpr_timespec wait = gpr_time_add(deadline, gpr_time_from_millis(1000, GPR_TIMESPAN));
        grpc_event ev = grpc_completion_queue_next(cq, wait, NULL);
        if (ev.type != GRPC_OP_COMPLETE) {
            grpc_call_cancel(slot.call, NULL);
            grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        }
        finished_status(c, &slot, st);
        if (st->code == GRPC_STATUS_OK) {
            *reply = slot.reply;
            slot.reply = NULL;
        }
    }
    hw_client_call_fini(&slot);
    hw_client_cq_destroy(cq);
    return st->code;
}

/* The reply of an OK call as reply_desc; INTERNAL when it does not parse. */
static ProtobufCMessage *unpack_reply(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *reply_desc,
                                      hw_client_status *st)
{
    ProtobufCMessage *m = bb ? hw_client_unpack(bb, reply_desc) : NULL;
    if (!m) {
        st->code = GRPC_STATUS_INTERNAL;
        snprintf(st->message, sizeof st->message, "the reply does not parse as %s", reply_desc->name);
    }
    return m;
}

int hw_client_unary(hw_client *c, const char *method, const ProtobufCMessage *request,
                    const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **reply, int timeout_ms,
                    hw_client_status *st)
{
    grpc_byte_buffer *bb = NULL;
    *reply = NULL;
    if (call_blocking(c, method, hw_client_pack(request), timeout_ms, &bb, st) == GRPC_STATUS_OK)
        *reply = unpack_reply(bb, reply_desc, st);
    if (bb)
        grpc_byte_buffer_destroy(bb);
    return st->code;
}

int hw_client_unary_raw(hw_client *c, const char *method, grpc_slice request, grpc_slice *reply,
                        int timeout_ms, hw_client_status *st)
{
    grpc_byte_buffer *bb = NULL;
    *reply = grpc_empty_slice();
    if (call_blocking(c, method, grpc_raw_byte_buffer_create(&request, 1), timeout_ms, &bb, st) ==
            GRPC_STATUS_OK &&
        bb)
        *reply = hw_client_buffer_slice(bb);
    if (bb)
        grpc_byte_buffer_destroy(bb);
    return st->code;
}

/* ---- pipes ---- */

/* One call of a pipe; its hw_client_call is the tag. */
typedef struct pipe_slot {
    hw_client_call rpc; /* first: the tag is the slot */
    uint64_t user;
} pipe_slot;

struct hw_client_pipe {
    hw_client *client;
    grpc_completion_queue *cq;
    const char *method;
    const ProtobufCMessageDescriptor *reply_desc;
    hw_client_done_fn done;
    void *ctx;
    pipe_slot *slots;
    pipe_slot **free_slots; /* stack of idle slots */
    int nfree;
    int window;
};

int hw_client_pipe_create(hw_client_pipe **out, hw_client *c, const char *method,
                          const ProtobufCMessageDescriptor *reply_desc, int window, hw_client_done_fn done,
                          void *ctx)
{
    *out = NULL;
    if (window < 1 || window > HW_CLIENT_MAX_WINDOW)
        return -1;
    hw_client_pipe *p = calloc(1, sizeof *p);
    if (!p)
        return -1;
    p->slots = calloc((size_t)window, sizeof *p->slots);
    p->free_slots = calloc((size_t)window, sizeof(pipe_slot *));
    if (!p->slots || !p->free_slots) {
        free(p->slots);
        free(p->free_slots);
        free(p);
        return -1;
    }
    p->client = c;
    p->cq = grpc_completion_queue_create_for_next(NULL);
    p->method = method;
    p->reply_desc = reply_desc;
    p->done = done;
    p->ctx = ctx;
    p->window = window;
    for (int i = window - 1; i >= 0; i--) {
        hw_client_call_init(&p->slots[i].rpc);
        p->free_slots[p->nfree++] = &p->slots[i];
    }
    *out = p;
    return 0;
}

/* Waits for one call of p to finish and hands it to the callback. */
static void pipe_wait_one(hw_client_pipe *p)
{
    grpc_event ev = grpc_completion_queue_next(p->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    if (ev.type != GRPC_OP_COMPLETE)
        return;
    pipe_slot *slot = ev.tag;
    ProtobufCMessage *reply = NULL;
    hw_client_status st;
    finished_status(p->client, &slot->rpc, &st);
    if (st.code == GRPC_STATUS_OK)
        reply = unpack_reply(slot->rpc.reply, p->reply_desc, &st);
    hw_client_call_end(&slot->rpc);
    p->free_slots[p->nfree++] = slot;
    p->done(p->ctx, slot->user, &st, reply);
}

void hw_client_pipe_submit(hw_client_pipe *p, const ProtobufCMessage *request, uint64_t user)
{
    while (p->nfree == 0)
        pipe_wait_one(p);
    pipe_slot *slot = p->free_slots[--p->nfree];
    hw_client_status st;
    slot->user = user;
    if (start_on(p->client, p->cq, &slot->rpc, p->method, hw_client_pack(request),
                 deadline_in_ms(p->client->timeout_ms), &st) != 0) {
        p->free_slots[p->nfree++] = slot;
        p->done(p->ctx, user, &st, NULL);
    }
}

void hw_client_pipe_finish(hw_client_pipe *p)
{
    while (p->nfree < p->window)
        pipe_wait_one(p);
}

void hw_client_pipe_destroy(hw_client_pipe *p)
{
    if (!p)
        return;
    hw_client_pipe_finish(p);
    hw_client_cq_destroy(p->cq);
    for (int i = 0; i < p->window; i++)
        hw_client_call_fini(&p->slots[i].rpc);
    free(p->slots);
    free(p->free_slots);
    free(p);
}
