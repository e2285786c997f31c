/*
 * net: the worker pool on the gRPC C core.
 *
 * Every call object (hw_call) starts life as a pre-requested slot bound to
 * one worker's completion queue; when the core fills it, the worker posts a
 * replacement slot first, then serves the call. All completions of a call
 * arrive on the worker that accepted it, so a unary call is freed there;
 * a handler may still answer from another thread, which is how store
 * writes answer after their group commit. Such a unary reply is handed
 * back to the call's worker (reply_handoff): the answering thread pushes
 * the call on the worker's hand-off stack, and the worker packs and sends
 * it, so that the store's single writer does not pay for the replies. The
 * first call pushed on an empty stack wakes the worker through its own
 * completion queue (a batch of that call's initial metadata, TAG_REPLIES),
 * and the worker then sends everything pushed until it takes the stack:
 * one small batch per wake-up on the answering thread instead of a reply
 * batch per call.
 *
 * Unary calls need no lock at all: one batch answers them and its
 * completion frees them. Streaming calls have a small mutex guarding their
 * send queue (one send may be in flight per call in the C core) and a
 * reference count shared by the core's outstanding batches and the watch
 * lists that hold them; they are not on the request path of unary reads.
 *
 * Shutdown: begin_drain makes new calls fail with UNAVAILABLE (but for the
 * methods marked during_drain, health, which then reads NOT_SERVING); shutdown
 * ends streams, asks the core to stop (grpc_server_shutdown_and_notify),
 * waits up to the drain timeout, cancels what is left, then waits until
 * every accepted call has been freed before it stops the queues, so a
 * handler answering late never touches a dead queue.
 *
 * Replicas (opts.cluster): after authorization, a call that must go to the
 * leader is relayed by a client call created on the same worker's
 * completion queue (TAG_FORWARD_DONE), with the server call as its parent
 * so that its deadline and cancellation carry over; no thread blocks on
 * it. Request bytes go out as they came. One channel, to the last leader
 * address, is shared by the workers (ch_mu) and replaced when the address
 * changes. Waits for the applied index (the leader's, before a relayed
 * answer; the client's helpwire-min-applied-index, before the handler) go
 * through waits.c, which ends each one on the hook's callback or at the
 * deadline, whichever is first. A read that waited hops back to its
 * worker (handlers keep per-worker state) by sending its initial metadata
 * on the call (TAG_RESUME); the reply then goes without it (md_sent).
 *
 * Error details: every failure goes through call_fail_v, which encodes the
 * google.rpc.Status (status_details.c) once, into the call's arena for a
 * unary call (a stream's into malloc'd memory: another thread may end it
 * while its worker uses the arena), and set_trailers sends it as
 * grpc-status-details-bin. A relayed answer keeps the leader's details.
 */
#include "server/net/net.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "server/base/grpc_runtime.h"
#include "server/base/listen.h"
#include "server/net/waits.h"

#define HW_MAX_LISTEN 32
#define HW_UNREGISTERED_SLOTS 4
/* Messages a stream may have waiting; a reader slower than this is cut off
 * with RESOURCE_EXHAUSTED rather than let memory grow without bound. */
#define HW_STREAM_MAX_QUEUED 1024

typedef enum {
    TAG_NEW_REGISTERED,
    TAG_NEW_UNREGISTERED,
    TAG_UNARY_DONE,
    TAG_STREAM_SEND,
    TAG_STREAM_CLOSE,
    TAG_STREAM_RECV,
    TAG_FORWARD_DONE, /* the relay of a call to the leader answered */
    TAG_RESUME,       /* a call waiting for the applied index is back on its worker */
    TAG_REPLIES,      /* replies handed to this worker by another thread wait (reply_handoff) */
    TAG_SHUTDOWN,
} tag_kind;

typedef struct hw_tag {
    tag_kind kind;
} hw_tag;

#define CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

typedef struct hw_worker {
    hw_net *net;
    int index;
    grpc_completion_queue *cq;
    pthread_t thread;
    bool running;
    hw_trace_rng rng; /* trace and span ids of the calls it accepts; this thread's own */
    /* Unary replies handed over by other threads (reply_handoff): a stack
     * of calls linked by handoff_next, newest first; pushed by any thread,
     * taken whole by this worker when the wake-up (TAG_REPLIES) of the
     * call that found it empty arrives. */
    _Atomic(hw_call *) handoffs;
} hw_worker;

/* A call relayed to the leader: the client call and what it brought back.
 * Owned by its hw_call, freed with it. */
typedef struct hw_forward {
    char target[256];
    grpc_call *client;
    grpc_metadata *send_md; /* slices borrowed from the call's md */
    size_t n_send_md;
    grpc_metadata_array recv_initial, recv_trailing;
    grpc_byte_buffer *recv_bb;
    grpc_status_code status;
    grpc_slice status_details;
    const char *error_string;
    uint64_t leader_index; /* the leader's trailing helpwire-applied-index */
    char traceparent[HW_TRACEPARENT_LEN + 1]; /* this call's span, as the leader's parent */
    grpc_metadata *out_md; /* trailers to relay back (+1 free for ours) */
    size_t n_out_md;
} hw_forward;

typedef struct queued_msg {
    struct queued_msg *next;
    grpc_byte_buffer *bb;
} queued_msg;

struct hw_call {
    hw_net *net;
    hw_worker *w;
    const hw_method *method; /* NULL for an unregistered method */
    size_t method_index;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_byte_buffer *payload;
    grpc_call_details details; /* unregistered calls only */
    hw_arena *arena;
    hw_tag t_new, t_done, t_send, t_close, t_recv, t_fwd, t_resume, t_replies;
    grpc_byte_buffer *recv_bb; /* client-streaming: the message just received */
    int64_t start_ns;
    grpc_status_code status;
    int cancelled;
    grpc_byte_buffer *reply_bb; /* unary reply in flight */
    /* Release/acquire edge from the thread that answers to the worker that
     * frees: the completion queue orders them, but TSan cannot see it. */
    atomic_int published;
    bool answered;         /* unary: reply or fail was called */
    bool admitted;         /* counted in net->admitted (the --max-in-flight bound) */
    bool adaptive;         /* unary, admitted: counted in net->unary_admitted, timed for the limit */
    const void *principal; /* set by the authorization hook */
    const char *token_id;  /* for the access line (hw_call_set_token_id) */
    hw_trace trace;        /* set when accepted, read-only afterwards */
    size_t req_bytes;      /* request messages decoded (client streams: summed) */
    bool req_known;        /* req_bytes was set (else the payload's size is used) */
    size_t resp_bytes;     /* reply messages packed (streams: summed, under mu) */
    bool to_leader;        /* the authorization hook asked for the leader (hw_call_forward_to_leader) */
    /* A reply handed to the worker (reply_handoff): one of the three is
     * set; what it points to lives as long as the call. */
    const ProtobufCMessage *later_msg; /* packed on the worker */
    const void *later_bytes;           /* packed already: later_len bytes */
    size_t later_len;
    grpc_byte_buffer *later_bb; /* packed already, owned by the call */
    hw_call *handoff_next;      /* the worker's handoffs stack */
    bool direct_reply;          /* hw_call_set_handoff(false): no hand-off */
    /* The caller's tracestate, kept (hw_call_tracestate); in the arena. */
    const char *tracestate;

    /* replicas only (opts.cluster) */
    bool md_sent;         /* initial metadata went out already (the hop back after a wait) */
    bool headers_held;    /* a server stream's headers wait for its handler (stream_send_headers) */
    uint64_t wait_index;  /* helpwire-min-applied-index being waited for */
    hw_forward *fwd;      /* relayed to the leader */
    char applied_buf[24]; /* the trailing helpwire-applied-index value */

    /* trailers of ours: helpwire-applied-index (replicas), the details */
    grpc_metadata own_md[2];
    uint8_t *err_details; /* google.rpc.Status of the failure; arena, or malloc'd (err_details_owned) */
    size_t err_details_len;
    bool err_details_owned;

    /* streaming only */
    bool streaming;
    pthread_mutex_t mu;
    pthread_cond_t sent; /* a send completed or the stream closed (hw_call_stream_wait) */
    bool sending, finishing, finished, closed;
    grpc_byte_buffer *sending_bb;
    queued_msg *q_head, *q_tail;
    size_t q_len;
    grpc_status_code finish_code;
    char *finish_msg;
    atomic_int refs;
    void (*on_close)(hw_call *, void *);
    void *on_close_arg;
    hw_call *prev, *next; /* net->streams list */
    bool listed;
};

struct hw_net {
    hw_net_options o;
    grpc_server *server;
    void **reg; /* registered method handles, by table index */
    hw_worker *workers;
    char bound[HW_MAX_LISTEN][300];
    atomic_bool draining;
    atomic_int_fast64_t live;     /* accepted calls not yet freed */
    atomic_int_fast64_t admitted; /* calls under the max_in_flight bound, not yet freed */
    /* Adaptive admission (latency_target_us > 0): unary calls also need a
     * place under `limit`, which follows their latency (see adapt()). */
    atomic_int_fast64_t unary_admitted;
    atomic_int_fast64_t limit;
    atomic_int_fast64_t win_start_ns, win_sum_ns, win_count;
    atomic_bool win_refused; /* a unary call was refused by limit in this window */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool shutdown_done;
    hw_tag t_shutdown;
    pthread_mutex_t streams_mu;
    hw_call streams; /* sentinel of the list of open streams */
    bool streams_closed;
    bool started;
    /* replicas only: the applied-index waits, and the channel to the leader
     * (one, for the last target; replaced when the leader changes) */
    hw_waits *waits;
    pthread_mutex_t ch_mu;
    grpc_channel *ch;
    char ch_target[256];
};

/* The reason of the UNAVAILABLE answers while the server drains. */
static const hw_error_hint DRAINING = {.reason = "DRAINING"};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const char *const status_names[] = {
    "OK",        "CANCELLED",       "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS",  "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",    "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED",
};

static const char *status_name(grpc_status_code c)
{
    return (unsigned)c < sizeof status_names / sizeof status_names[0] ? status_names[c] : "?";
}

/* ---------------------------------------------------------------- slots */

static hw_call *slot_new(hw_worker *w)
{
    hw_call *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->net = w->net;
    c->w = w;
    /* Tag kinds never change after this, so the worker may read them
     * without synchronizing with whichever thread started the batch. */
    c->t_done.kind = TAG_UNARY_DONE;
    c->t_send.kind = TAG_STREAM_SEND;
    c->t_close.kind = TAG_STREAM_CLOSE;
    c->t_recv.kind = TAG_STREAM_RECV;
    c->t_fwd.kind = TAG_FORWARD_DONE;
    c->t_resume.kind = TAG_RESUME;
    c->t_replies.kind = TAG_REPLIES;
    grpc_metadata_array_init(&c->md);
    return c;
}

static void slot_free(hw_call *c)
{
    grpc_metadata_array_destroy(&c->md);
    if (c->method == NULL)
        grpc_call_details_destroy(&c->details);
    free(c);
}

static void post_registered(hw_worker *w, size_t m)
{
    hw_net *net = w->net;
    hw_call *c = slot_new(w);
    if (!c) {
        hw_log_event(net->o.log, HW_LOG_ERROR, "out_of_memory", "where=post_registered");
        return;
    }
    c->method = &net->o.methods[m];
    c->method_index = m;
    c->t_new.kind = TAG_NEW_REGISTERED;
    /* Methods registered without a payload (client streaming) must not be
     * given somewhere to put one. */
    grpc_byte_buffer **payload = c->method->client_streaming ? NULL : &c->payload;
    grpc_call_error e = grpc_server_request_registered_call(net->server, net->reg[m], &c->call, &c->deadline,
                                                            &c->md, payload, w->cq, w->cq, &c->t_new);
    if (e != GRPC_CALL_OK) {
        hw_log_event(net->o.log, HW_LOG_ERROR, "request_call_failed", "method=%s error=%d", c->method->path,
                     e);
        slot_free(c);
    }
}

static void post_unregistered(hw_worker *w)
{
    hw_net *net = w->net;
    hw_call *c = slot_new(w);
    if (!c)
        return;
    grpc_call_details_init(&c->details);
    c->t_new.kind = TAG_NEW_UNREGISTERED;
    grpc_call_error e =
        grpc_server_request_call(net->server, &c->call, &c->details, &c->md, w->cq, w->cq, &c->t_new);
    if (e != GRPC_CALL_OK) {
        hw_log_event(net->o.log, HW_LOG_ERROR, "request_call_failed", "method=unregistered error=%d", e);
        slot_free(c);
    }
}

/* ------------------------------------------------- adaptive admission */

#define ADAPT_WINDOW_NS (100 * 1000 * 1000LL)
#define ADAPT_MIN_SAMPLES 8

/* Records one admitted unary call's latency; once per window, moves the
 * limit. Written by hand (it is a dozen lines of arithmetic): mean latency
 * of the window above the target cuts the limit in proportion (at most by
 * half); at or under it, and calls were refused, the limit grows by a
 * sixteenth. The limit stays within [HW_NET_MIN_LIMIT, max_in_flight], so
 * the admitted calls' latency stays near the target however many are
 * refused: when refusing takes CPU from serving, fewer are let in instead
 * of each waiting longer. Windows race benignly: one thread wins the
 * window's compare-and-swap and applies it. */
static void adapt(hw_net *net, int64_t latency_ns)
{
    atomic_fetch_add_explicit(&net->win_sum_ns, latency_ns, memory_order_relaxed);
    atomic_fetch_add_explicit(&net->win_count, 1, memory_order_relaxed);
    int64_t now = now_ns();
    int64_t start = atomic_load_explicit(&net->win_start_ns, memory_order_relaxed);
    if (now - start < ADAPT_WINDOW_NS || !atomic_compare_exchange_strong(&net->win_start_ns, &start, now))
        return;
    int64_t n = atomic_exchange(&net->win_count, 0);
    int64_t sum = atomic_exchange(&net->win_sum_ns, 0);
    bool refused = atomic_exchange(&net->win_refused, false);
    if (n < ADAPT_MIN_SAMPLES)
        return;
    double mean_us = (double)sum / (double)n / 1000.0;
    double target = net->o.latency_target_us;
    int64_t lim = atomic_load(&net->limit), next = lim;
    if (mean_us > target) {
        double f = target / mean_us;
        next = (int64_t)((double)lim * (f < 0.5 ? 0.5 : f));
    } else if (refused) {
        next = lim + (lim / 16 > 1 ? lim / 16 : 1);
    }
    int64_t max = net->o.max_in_flight > 0 ? net->o.max_in_flight : INT32_MAX;
    if (next < HW_NET_MIN_LIMIT)
        next = HW_NET_MIN_LIMIT;
    if (next > max)
        next = max;
    atomic_store(&net->limit, next);
}

int64_t hw_net_admission_limit(const hw_net *net)
{
    if (net->o.latency_target_us > 0)
        return atomic_load(&((hw_net *)net)->limit);
    return net->o.max_in_flight;
}

/* ---------------------------------------------------------- call ending */

static void forward_free(hw_forward *f)
{
    if (f->client)
        grpc_call_unref(f->client);
    grpc_metadata_array_destroy(&f->recv_initial);
    grpc_metadata_array_destroy(&f->recv_trailing);
    if (f->recv_bb)
        grpc_byte_buffer_destroy(f->recv_bb);
    grpc_slice_unref(f->status_details);
    gpr_free((void *)f->error_string);
    free(f->send_md);
    free(f->out_md);
    free(f);
}

/* Puts the trailing metadata of c's status (code) into op: the relayed
 * trailers of a forwarded call, "helpwire-applied-index" with the applied
 * index now (replicas), and the error details of a failure. Storage is in
 * c, which outlives the batch. */
static void set_trailers(hw_call *c, grpc_op *op, grpc_status_code code)
{
    const hw_net_cluster *cl = c->net->o.cluster;
    size_t n_own = 0;
    if (cl) {
        int n = snprintf(c->applied_buf, sizeof c->applied_buf, "%" PRIu64, cl->applied_index(c->net->o.app));
        grpc_metadata *md = &c->own_md[n_own++];
        memset(md, 0, sizeof *md);
        md->key = grpc_slice_from_static_string("helpwire-applied-index");
        md->value = grpc_slice_from_static_buffer(c->applied_buf, (size_t)n);
    }
    if (code != GRPC_STATUS_OK && c->err_details_len) {
        grpc_metadata *md = &c->own_md[n_own++];
        memset(md, 0, sizeof *md);
        md->key = grpc_slice_from_static_string(HW_STATUS_DETAILS_KEY);
        md->value = grpc_slice_from_static_buffer(c->err_details, c->err_details_len);
    }
    grpc_metadata *all = c->own_md;
    size_t count = n_own;
    if (c->fwd && c->fwd->out_md) { /* room for ours after the relayed ones */
        all = c->fwd->out_md;
        memcpy(&all[c->fwd->n_out_md], c->own_md, n_own * sizeof *all);
        count = c->fwd->n_out_md + n_own;
    }
    if (!count)
        return;
    op->data.send_status_from_server.trailing_metadata_count = count;
    op->data.send_status_from_server.trailing_metadata = all;
}

/* c's row in the metrics: its method's, or the unknown-method row. */
static size_t metrics_row(const hw_call *c)
{
    return c->method ? c->method_index : (size_t)-1;
}

/* The thread's log trace while a line is written on c's behalf from a
 * thread that may be working for another call (or none): saved, set to
 * c's, then restored. */
typedef struct saved_trace {
    char id[HW_LOG_TRACE_MAX + 1];
} saved_trace;

static void trace_enter(const hw_call *c, saved_trace *sv)
{
    const char *cur = hw_log_trace();
    snprintf(sv->id, sizeof sv->id, "%s", cur ? cur : "");
    hw_log_set_trace(c->trace.trace_id);
}

static void trace_leave(const saved_trace *sv)
{
    hw_log_set_trace(sv->id);
}

static void call_destroy(hw_call *c)
{
    hw_net *net = c->net;
    if (c->reply_bb) /* a unary reply went out */
        hw_metrics_msg_sent(net->o.metrics, c->w->index, metrics_row(c));
    hw_metrics_handled(net->o.metrics, c->w->index, metrics_row(c), c->status, now_ns() - c->start_ns);
    if (hw_log_access_enabled(net->o.log)) {
        char path[256];
        if (c->method)
            snprintf(path, sizeof path, "%s", c->method->path);
        else
            snprintf(path, sizeof path, "%.*s", (int)GRPC_SLICE_LENGTH(c->details.method),
                     (const char *)GRPC_SLICE_START_PTR(c->details.method));
        size_t req = c->req_bytes;
        if (!c->req_known && c->payload)
            req = grpc_byte_buffer_length(c->payload);
        char *peer = c->call ? grpc_call_get_peer(c->call) : NULL;
        char q[300], qp[300], qt[160];
        saved_trace sv;
        trace_enter(c, &sv);
        hw_log_event(net->o.log, HW_LOG_INFO, "rpc",
                     "method=%s status=%s us=%lld peer=%s req_bytes=%zu resp_bytes=%zu token=%s span=%s%s",
                     hw_log_quote(path, q, sizeof q), status_name(c->status),
                     (long long)((now_ns() - c->start_ns) / 1000),
                     hw_log_quote(peer ? peer : "-", qp, sizeof qp), req, c->resp_bytes,
                     hw_log_quote(c->token_id ? c->token_id : "-", qt, sizeof qt),
                     c->trace.span_id[0] ? c->trace.span_id : "-", c->cancelled ? " cancelled=true" : "");
        trace_leave(&sv);
        gpr_free(peer);
    }
    if (c->call)
        grpc_call_unref(c->call);
    if (c->payload)
        grpc_byte_buffer_destroy(c->payload);
    if (c->reply_bb)
        grpc_byte_buffer_destroy(c->reply_bb);
    if (c->recv_bb)
        grpc_byte_buffer_destroy(c->recv_bb);
    if (c->streaming) {
        for (queued_msg *q = c->q_head, *n; q; q = n) {
            n = q->next;
            grpc_byte_buffer_destroy(q->bb);
            free(q);
        }
        free(c->finish_msg);
        if (c->err_details_owned)
            free(c->err_details);
        pthread_cond_destroy(&c->sent);
        pthread_mutex_destroy(&c->mu);
    }
    if (c->fwd)
        forward_free(c->fwd);
    hw_arena_destroy(c->arena);
    if (c->adaptive) {
        atomic_fetch_sub(&net->unary_admitted, 1);
        adapt(net, now_ns() - c->start_ns);
    }
    if (c->admitted)
        atomic_fetch_sub(&net->admitted, 1);
    slot_free(c);
    if (atomic_fetch_sub(&net->live, 1) == 1 && atomic_load(&net->draining)) {
        pthread_mutex_lock(&net->mu);
        pthread_cond_broadcast(&net->cv);
        pthread_mutex_unlock(&net->mu);
    }
}

static char *vformat(const char *fmt, va_list ap)
{
    if (!fmt)
        return NULL;
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        return NULL;
    return s;
}

/* The gRPC path of c ("/helpwire.v1.Tickets/GetTicket"); for an
 * unregistered method a copy in the arena (NULL without memory). */
static const char *call_path(hw_call *c)
{
    if (c->method)
        return c->method->path;
    if (!c->arena)
        return NULL;
    return hw_arena_strndup(c->arena, (const char *)GRPC_SLICE_START_PTR(c->details.method),
                            GRPC_SLICE_LENGTH(c->details.method));
}

/* The google.rpc.Status of a failure of c, in memory from alloc (the
 * arena's or malloc); NULL (no details) without memory. */
static uint8_t *encode_details(hw_call *c, grpc_status_code code, const char *msg, const hw_error_hint *hint,
                               bool use_malloc, size_t *len)
{
    const char *path = call_path(c);
    size_t n = hw_status_details_encode(code, msg, path, hint, NULL, 0);
    uint8_t *buf = use_malloc ? malloc(n) : (c->arena ? hw_arena_alloc(c->arena, n) : NULL);
    if (!buf)
        return NULL;
    hw_status_details_encode(code, msg, path, hint, buf, n);
    *len = n;
    return buf;
}

/* Packs msg into a byte buffer; NULL when out of memory. */
static grpc_byte_buffer *pack_message(const ProtobufCMessage *msg, size_t *len_out)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    grpc_slice s = grpc_slice_malloc(len);
    protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    *len_out = len;
    return bb;
}

/* Answers a unary call with one batch. bb (may be NULL) is owned by the
 * call from here on. */
static void unary_send(hw_call *c, grpc_byte_buffer *bb, grpc_status_code code, const char *msg)
{
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    if (!c->md_sent)
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (bb) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = bb;
    }
    grpc_slice details = grpc_slice_from_copied_string(msg ? msg : "");
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = code;
    ops[n].data.send_status_from_server.status_details = msg ? &details : NULL;
    set_trailers(c, &ops[n++], code);
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n++].data.recv_close_on_server.cancelled = &c->cancelled;
    c->status = code;
    c->reply_bb = bb;
    /* Read c->call before publishing: once the batch is started, the worker
     * may complete and free c at any moment. */
    grpc_call *call = c->call;
    atomic_store_explicit(&c->published, 1, memory_order_release);
    grpc_call_error e = grpc_call_start_batch(call, ops, n, &c->t_done, NULL);
    grpc_slice_unref(details);
    if (e != GRPC_CALL_OK) {
        hw_log_event(c->net->o.log, HW_LOG_ERROR, "start_batch_failed", "error=%d", e);
        call_destroy(c);
    }
}

/* Sends bb (len bytes, owned by the call from here on; NULL: out of
 * memory) as c's OK reply, or RESOURCE_EXHAUSTED when it is too large. */
static void reply_send(hw_call *c, grpc_byte_buffer *bb, size_t len)
{
    if (!bb) {
        unary_send(c, NULL, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of memory");
        return;
    }
    if (len > (size_t)c->net->o.max_message_bytes) {
        grpc_byte_buffer_destroy(bb);
        char msg[160];
        snprintf(msg, sizeof msg,
                 "reply of %zu bytes exceeds the %d-byte message limit; ask for a smaller page", len,
                 c->net->o.max_message_bytes);
        unary_send(c, NULL, GRPC_STATUS_RESOURCE_EXHAUSTED, msg);
        return;
    }
    c->resp_bytes = len;
    unary_send(c, bb, GRPC_STATUS_OK, NULL);
}

/* On c's worker: packs (or copies) the reply handed over and sends it. */
static void send_handed_off(hw_call *c)
{
    size_t len = 0;
    grpc_byte_buffer *bb = c->later_bb;
    if (c->later_msg) {
        bb = pack_message(c->later_msg, &len);
    } else if (c->later_bytes) {
        grpc_slice s = grpc_slice_from_copied_buffer(c->later_bytes, c->later_len);
        bb = grpc_raw_byte_buffer_create(&s, 1);
        grpc_slice_unref(s);
        len = c->later_len;
    } else {
        len = c->later_len;
    }
    c->later_bb = NULL;
    reply_send(c, bb, len);
}

/* Takes every reply handed to w and sends them, oldest first, each with
 * the thread's log trace set to its call's. On w (the wake-up's
 * completion), or on the thread whose wake-up could not start. */
static void send_handoffs(hw_worker *w)
{
    hw_call *c = atomic_exchange_explicit(&w->handoffs, NULL, memory_order_acquire);
    hw_call *fifo = NULL;
    while (c) { /* newest first: reversed */
        hw_call *next = c->handoff_next;
        c->handoff_next = fifo;
        fifo = c;
        c = next;
    }
    while (fifo) {
        hw_call *next = fifo->handoff_next; /* read first: the send may free fifo */
        saved_trace sv;
        trace_enter(fifo, &sv);
        send_handed_off(fifo);
        trace_leave(&sv);
        fifo = next;
    }
}

/* Sends c's initial metadata with tag, whose completion arrives on c's
 * worker: the way back to it from another thread. c may be freed by that
 * completion as soon as this returns GRPC_CALL_OK. */
static grpc_call_error hop_to_worker(hw_call *c, hw_tag *tag)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_INITIAL_METADATA;
    c->md_sent = true;
    grpc_call *call = c->call;
    atomic_store_explicit(&c->published, 1, memory_order_release);
    return grpc_call_start_batch(call, &op, 1, tag, NULL);
}

/* Hands c's reply (later_*, set by the caller) to c's worker, which packs
 * and sends it: the answering thread (the store's writer) pays for one
 * push, and for one small batch per wake-up of the worker rather than a
 * pack and a batch per reply. The first reply pushed on an empty stack
 * wakes the worker by sending its own call's initial metadata (tag
 * TAG_REPLIES, on the worker's queue); the replies pushed until the worker
 * takes the stack ride on that wake-up. Only that wake-up's completion
 * takes the stack, so the call that found it empty stays in it (not freed)
 * until then, and at most one wake-up per worker is on its way. */
static void reply_handoff(hw_call *c)
{
    hw_worker *w = c->w;
    hw_call *head = atomic_load_explicit(&w->handoffs, memory_order_relaxed);
    do {
        c->handoff_next = head;
    } while (!atomic_compare_exchange_weak_explicit(&w->handoffs, &head, c, memory_order_release,
                                                    memory_order_relaxed));
    if (head)
        return; /* the wake-up of the call at the bottom will take c: c may be gone already */
    if (hop_to_worker(c, &c->t_replies) != GRPC_CALL_OK) {
        /* No wake-up will come: this thread sends what waits. */
        c->md_sent = false;
        send_handoffs(w);
    }
}

/* Whether c's reply may be handed to its worker: a unary call, answered
 * from another thread, whose initial metadata has not gone out (the
 * wake-up may send them). */
static bool may_hand_off(const hw_call *c)
{
    return !c->direct_reply && !c->streaming && !c->md_sent && !pthread_equal(pthread_self(), c->w->thread);
}

void hw_call_set_handoff(hw_call *c, bool hand_off)
{
    c->direct_reply = !hand_off;
}

/* Marks c answered; false (and logs) when it already was. */
static bool claim_answer(hw_call *c)
{
    if (c->answered) {
        hw_log_event(c->net->o.log, HW_LOG_ERROR, "double_reply", "method=%s",
                     c->method ? c->method->path : "unregistered");
        return false;
    }
    c->answered = true;
    return true;
}

void hw_call_reply(hw_call *c, const ProtobufCMessage *reply)
{
    if (c->streaming) {
        hw_call_stream_send(c, reply);
        return;
    }
    if (!claim_answer(c))
        return;
    size_t len;
    grpc_byte_buffer *bb = pack_message(reply, &len);
    if (may_hand_off(c)) {
        c->later_bb = bb;
        c->later_len = len;
        if (bb) {
            reply_handoff(c);
            return;
        }
    }
    reply_send(c, bb, len);
}

void hw_call_reply_kept(hw_call *c, const ProtobufCMessage *reply)
{
    if (c->streaming || !may_hand_off(c)) {
        hw_call_reply(c, reply);
        return;
    }
    if (!claim_answer(c))
        return;
    c->later_msg = reply;
    reply_handoff(c);
}

void hw_call_reply_packed(hw_call *c, const void *bytes, size_t len)
{
    if (c->streaming) {
        hw_call_fail(c, GRPC_STATUS_INTERNAL, "a packed reply is for unary calls");
        return;
    }
    if (!may_hand_off(c)) {
        if (!claim_answer(c))
            return;
        grpc_slice s = grpc_slice_from_copied_buffer(bytes, len);
        grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
        grpc_slice_unref(s);
        reply_send(c, bb, len);
        return;
    }
    if (!claim_answer(c))
        return;
    c->later_bytes = bytes;
    c->later_len = len;
    reply_handoff(c);
}

/* ------------------------------------------------------------- streams */

static void stream_unlink(hw_call *c)
{
    hw_net *net = c->net;
    pthread_mutex_lock(&net->streams_mu);
    bool was = c->listed;
    if (was) {
        c->prev->next = c->next;
        c->next->prev = c->prev;
        c->listed = false;
    }
    pthread_mutex_unlock(&net->streams_mu);
    if (was)
        hw_call_unref(c);
}

/* Starts a send batch; caller holds c->mu and has set c->sending. */
static void stream_start_send_locked(hw_call *c, grpc_op *ops, size_t n)
{
    atomic_fetch_add(&c->refs, 1);
    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, &c->t_send, NULL);
    if (e != GRPC_CALL_OK) {
        hw_log_event(c->net->o.log, HW_LOG_ERROR, "start_batch_failed", "error=%d", e);
        c->sending = false;
        atomic_fetch_sub(&c->refs, 1); /* never reaches zero here: the close op holds one */
    }
}

static void stream_send_message_locked(hw_call *c, grpc_byte_buffer *bb)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = bb;
    c->sending = true;
    c->sending_bb = bb;
    stream_start_send_locked(c, &op, 1);
}

static void stream_send_status_locked(hw_call *c)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    grpc_slice details = grpc_slice_from_copied_string(c->finish_msg ? c->finish_msg : "");
    op.op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    op.data.send_status_from_server.status = c->finish_code;
    op.data.send_status_from_server.status_details = c->finish_msg ? &details : NULL;
    set_trailers(c, &op, c->finish_code);
    c->status = c->finish_code;
    c->finished = true;
    c->sending = true;
    c->sending_bb = NULL;
    stream_start_send_locked(c, &op, 1);
    grpc_slice_unref(details);
}

int hw_call_stream_send(hw_call *c, const ProtobufCMessage *msg)
{
    size_t len;
    grpc_byte_buffer *bb = pack_message(msg, &len);
    pthread_mutex_lock(&c->mu);
    if (c->finishing || c->closed) {
        pthread_mutex_unlock(&c->mu);
        grpc_byte_buffer_destroy(bb);
        return -1;
    }
    int rc = 0;
    c->resp_bytes += len;
    if (!c->sending) {
        stream_send_message_locked(c, bb);
    } else if (c->q_len >= HW_STREAM_MAX_QUEUED) {
        /* The reader is too slow: drop what waits and end the stream. */
        grpc_byte_buffer_destroy(bb);
        for (queued_msg *q = c->q_head, *n; q; q = n) {
            n = q->next;
            grpc_byte_buffer_destroy(q->bb);
            free(q);
        }
        c->q_head = c->q_tail = NULL;
        c->q_len = 0;
        c->finishing = true;
        c->finish_code = GRPC_STATUS_RESOURCE_EXHAUSTED;
        free(c->finish_msg);
        c->finish_msg = NULL;
        if (asprintf(&c->finish_msg, "stream reader fell more than %d messages behind; reconnect",
                     HW_STREAM_MAX_QUEUED) < 0)
            c->finish_msg = NULL;
        const hw_error_hint hint = {.reason = "READER_TOO_SLOW"};
        size_t dlen = 0;
        uint8_t *d = encode_details(c, c->finish_code, c->finish_msg, &hint, true, &dlen);
        if (d) {
            c->err_details = d;
            c->err_details_len = dlen;
            c->err_details_owned = true;
        }
        rc = -1;
    } else {
        queued_msg *q = malloc(sizeof *q);
        if (!q) {
            grpc_byte_buffer_destroy(bb);
            rc = -1;
        } else {
            q->next = NULL;
            q->bb = bb;
            if (c->q_tail)
                c->q_tail->next = q;
            else
                c->q_head = q;
            c->q_tail = q;
            c->q_len++;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* Ends a stream with code and msg (malloc'd, taken) and the error details
 * d of dlen bytes (malloc'd or NULL, taken). */
static void stream_finish(hw_call *c, grpc_status_code code, char *msg, uint8_t *d, size_t dlen)
{
    pthread_mutex_lock(&c->mu);
    if (c->finishing) {
        pthread_mutex_unlock(&c->mu);
        free(msg);
        free(d);
        return;
    }
    c->finishing = true;
    c->finish_code = code;
    c->finish_msg = msg;
    if (d) {
        c->err_details = d;
        c->err_details_len = dlen;
        c->err_details_owned = true;
    }
    if (!c->sending && !c->closed)
        stream_send_status_locked(c);
    pthread_mutex_unlock(&c->mu);
}

static void on_stream_send_done(hw_call *c, bool ok)
{
    pthread_mutex_lock(&c->mu);
    if (c->sending_bb) {
        if (ok)
            hw_metrics_msg_sent(c->net->o.metrics, c->w->index, metrics_row(c));
        grpc_byte_buffer_destroy(c->sending_bb);
        c->sending_bb = NULL;
    }
    c->sending = false;
    if (!ok || c->closed) {
        for (queued_msg *q = c->q_head, *n; q; q = n) {
            n = q->next;
            grpc_byte_buffer_destroy(q->bb);
            free(q);
        }
        c->q_head = c->q_tail = NULL;
        c->q_len = 0;
    } else if (c->q_head) {
        queued_msg *q = c->q_head;
        c->q_head = q->next;
        c->q_len--;
        if (!c->q_head)
            c->q_tail = NULL;
        grpc_byte_buffer *bb = q->bb;
        free(q);
        stream_send_message_locked(c, bb);
    } else if (c->finishing && !c->finished) {
        stream_send_status_locked(c);
    }
    pthread_cond_broadcast(&c->sent);
    pthread_mutex_unlock(&c->mu);
    hw_call_unref(c);
}

static void on_stream_closed(hw_call *c)
{
    pthread_mutex_lock(&c->mu);
    c->closed = true;
    if (!c->finished)
        c->status = c->cancelled ? GRPC_STATUS_CANCELLED : c->status;
    pthread_cond_broadcast(&c->sent);
    pthread_mutex_unlock(&c->mu);
    stream_unlink(c);
    if (c->on_close)
        c->on_close(c, c->on_close_arg);
    hw_call_unref(c);
}

int hw_call_stream_wait(hw_call *c, size_t max_waiting)
{
    pthread_mutex_lock(&c->mu);
    while (!c->finishing && !c->closed && c->q_len + (c->sending ? 1 : 0) > max_waiting)
        pthread_cond_wait(&c->sent, &c->mu);
    int rc = c->finishing || c->closed ? -1 : 0;
    pthread_mutex_unlock(&c->mu);
    return rc;
}

void hw_call_ref(hw_call *c)
{
    atomic_fetch_add(&c->refs, 1);
}

void hw_call_unref(hw_call *c)
{
    if (atomic_fetch_sub(&c->refs, 1) == 1)
        call_destroy(c);
}

void hw_call_on_close(hw_call *c, void (*fn)(hw_call *, void *), void *arg)
{
    c->on_close = fn;
    c->on_close_arg = arg;
}

/* Sets a streaming call going: its close watcher and initial metadata;
 * with hold, the initial metadata waits for stream_send_headers (messages
 * sent meanwhile queue behind it). Returns false when the server is
 * already ending streams. */
static bool stream_begin(hw_call *c, bool hold)
{
    hw_net *net = c->net;
    c->streaming = true;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->sent, NULL);
    atomic_store(&c->refs, 1); /* the close op */
    pthread_mutex_lock(&net->streams_mu);
    if (net->streams_closed) {
        pthread_mutex_unlock(&net->streams_mu);
        return false;
    }
    atomic_fetch_add(&c->refs, 1); /* the list */
    c->listed = true;
    c->next = net->streams.next;
    c->prev = &net->streams;
    net->streams.next->prev = c;
    net->streams.next = c;
    pthread_mutex_unlock(&net->streams_mu);

    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &c->cancelled;
    grpc_call_start_batch(c->call, &op, 1, &c->t_close, NULL);

    if (c->md_sent) /* by the hop back from an applied-index wait */
        return true;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_INITIAL_METADATA;
    pthread_mutex_lock(&c->mu);
    c->sending = true;
    c->sending_bb = NULL;
    if (hold)
        c->headers_held = true;
    else
        stream_start_send_locked(c, &op, 1);
    pthread_mutex_unlock(&c->mu);
    return true;
}

/* Sends a server stream's held initial metadata once its handler has run:
 * a client that has the headers knows that what the handler set up (a
 * watch's place in the hub) is in place, so nothing it causes afterwards
 * is missed. Whatever the handler queued follows. */
static void stream_send_headers(hw_call *c)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_INITIAL_METADATA;
    pthread_mutex_lock(&c->mu);
    if (c->headers_held) {
        c->headers_held = false;
        stream_start_send_locked(c, &op, 1);
    }
    pthread_mutex_unlock(&c->mu);
}

/* Every failure (and a stream's OK end) comes here: the text, the error
 * details, the answer. */
static void call_fail_v(hw_call *c, grpc_status_code code, const hw_error_hint *hint, const char *fmt,
                        va_list ap)
{
    char *msg = vformat(fmt, ap);
    size_t dlen = 0;
    if (c->streaming) {
        uint8_t *d = code != GRPC_STATUS_OK ? encode_details(c, code, msg, hint, true, &dlen) : NULL;
        stream_finish(c, code, msg, d, dlen);
        return;
    }
    if (c->answered) {
        free(msg);
        return;
    }
    c->answered = true;
    if (code != GRPC_STATUS_OK && code != GRPC_STATUS_NOT_FOUND &&
        hw_log_enabled(c->net->o.log, HW_LOG_DEBUG)) {
        char q[600];
        saved_trace sv;
        trace_enter(c, &sv);
        hw_log_event(c->net->o.log, HW_LOG_DEBUG, "rpc_error", "method=%s status=%s reason=%s message=%s",
                     c->method ? c->method->path : "unregistered", status_name(code),
                     hw_status_details_reason(code, msg, hint), hw_log_quote(msg ? msg : "", q, sizeof q));
        trace_leave(&sv);
    }
    if (code != GRPC_STATUS_OK) {
        c->err_details = encode_details(c, code, msg, hint, false, &dlen);
        c->err_details_len = c->err_details ? dlen : 0;
    }
    unary_send(c, NULL, code, msg);
    free(msg);
}

void hw_call_fail(hw_call *c, grpc_status_code code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    call_fail_v(c, code, NULL, fmt, ap);
    va_end(ap);
}

void hw_call_fail_ex(hw_call *c, grpc_status_code code, const hw_error_hint *hint, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    call_fail_v(c, code, hint, fmt, ap);
    va_end(ap);
}

void hw_call_fail_field(hw_call *c, const char *field, const char *fmt, ...)
{
    const hw_error_hint hint = {.field = field};
    va_list ap;
    va_start(ap, fmt);
    call_fail_v(c, GRPC_STATUS_INVALID_ARGUMENT, &hint, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------ requests */

bool hw_net_request_decodable(const ProtobufCMessage *m)
{
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        if (m->unknown_fields[i].tag == 0)
            return false;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned f = 0; f < d->n_fields; f++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[f];
        if (fd->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        const char *base = (const char *)m;
        if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            /* The members share their storage: only the one set is a message. */
            if (*(const uint32_t *)(base + fd->quantifier_offset) != fd->id)
                continue;
        }
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + fd->quantifier_offset);
            ProtobufCMessage *const *items = *(ProtobufCMessage *const *const *)(base + fd->offset);
            for (size_t k = 0; k < n; k++)
                if (items[k] && !hw_net_request_decodable(items[k]))
                    return false;
        } else {
            const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)(base + fd->offset);
            if (sub && !hw_net_request_decodable(sub))
                return false;
        }
    }
    return true;
}

/* --------------------------------------------------------- call access */

hw_arena *hw_call_arena(hw_call *c)
{
    return c->arena;
}

int hw_call_worker(const hw_call *c)
{
    return c->w->index;
}

const hw_method *hw_call_method(const hw_call *c)
{
    return c->method;
}

const void *hw_call_principal(const hw_call *c)
{
    return c->principal;
}

void hw_call_set_principal(hw_call *c, const void *principal)
{
    c->principal = principal;
}

const hw_trace *hw_call_trace(const hw_call *c)
{
    return &c->trace;
}

const char *hw_call_tracestate(const hw_call *c)
{
    return c->tracestate;
}

const char *hw_call_peer(hw_call *c)
{
    char *peer = c->call ? grpc_call_get_peer(c->call) : NULL;
    const char *out = peer ? hw_arena_strdup(c->arena, peer) : NULL;
    gpr_free(peer);
    return out ? out : "";
}

void hw_call_set_token_id(hw_call *c, const char *token_id)
{
    c->token_id = token_id;
}

bool hw_call_forward_to_leader(hw_call *c)
{
    if (!c->net->o.cluster || hw_call_metadata(c, "helpwire-forwarded"))
        return false;
    c->to_leader = true;
    return true;
}

const char *hw_call_metadata(hw_call *c, const char *key)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < c->md.count; i++) {
        const grpc_metadata *m = &c->md.metadata[i];
        if (GRPC_SLICE_LENGTH(m->key) == klen && memcmp(GRPC_SLICE_START_PTR(m->key), key, klen) == 0)
            return hw_arena_strndup(c->arena, (const char *)GRPC_SLICE_START_PTR(m->value),
                                    GRPC_SLICE_LENGTH(m->value));
    }
    return NULL;
}

/* --------------------------------------------------------- call arrival */

/* The request bytes: the single slice itself when possible, else a copy in
 * the arena. */
static const uint8_t *payload_bytes(hw_call *c, size_t *len)
{
    grpc_byte_buffer *bb = c->payload;
    if (bb->type == GRPC_BB_RAW && bb->data.raw.compression == GRPC_COMPRESS_NONE &&
        bb->data.raw.slice_buffer.count == 1) {
        /* By pointer: a small slice keeps its bytes inline in the slice
         * struct, so a copy of the struct would point at the copy. */
        grpc_slice *s = &bb->data.raw.slice_buffer.slices[0];
        *len = GRPC_SLICE_LENGTH(*s);
        return GRPC_SLICE_START_PTR(*s);
    }
    grpc_byte_buffer_reader r;
    if (!grpc_byte_buffer_reader_init(&r, bb))
        return NULL;
    grpc_slice all = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    *len = GRPC_SLICE_LENGTH(all);
    uint8_t *copy = hw_arena_alloc(c->arena, *len);
    if (copy && *len)
        memcpy(copy, GRPC_SLICE_START_PTR(all), *len);
    grpc_slice_unref(all);
    return copy;
}

/* Refuses a request message over max_message_bytes (RESOURCE_EXHAUSTED,
 * counted). The core's own bound is twice that (hw_net_create), so that
 * the usual oversize request reaches us and is counted; one over twice the
 * limit is refused by the core before any call exists. */
static bool refuse_oversize(hw_call *c, grpc_byte_buffer *bb)
{
    size_t len = grpc_byte_buffer_length(bb);
    if (len <= (size_t)c->net->o.max_message_bytes)
        return false;
    hw_metrics_oversize(c->net->o.metrics);
    const hw_error_hint hint = {.reason = "TOO_LARGE"};
    hw_call_fail_ex(c, GRPC_STATUS_RESOURCE_EXHAUSTED, &hint, "request of %zu bytes exceeds the %d-byte message limit",
                    len, c->net->o.max_message_bytes);
    return true;
}

/* Client streaming: asks for the next request message. */
static void stream_post_recv(hw_call *c)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &c->recv_bb;
    c->recv_bb = NULL;
    hw_call_ref(c);
    if (grpc_call_start_batch(c->call, &op, 1, &c->t_recv, NULL) != GRPC_CALL_OK) {
        hw_log_event(c->net->o.log, HW_LOG_ERROR, "start_batch_failed", "op=recv_message");
        hw_call_unref(c); /* the close op still holds the call */
    }
}

/* Client streaming: one request message arrived (or the client is done). */
static void on_stream_recv(hw_call *c, bool ok)
{
    const hw_method *m = c->method;
    grpc_byte_buffer *bb = c->recv_bb;
    c->recv_bb = NULL;
    if (!ok || !bb) {
        /* Half-closed by the client (or cancelled): end the stream. */
        if (ok)
            hw_call_fail(c, GRPC_STATUS_OK, NULL);
        hw_call_unref(c);
        return;
    }
    if (refuse_oversize(c, bb)) {
        grpc_byte_buffer_destroy(bb);
        hw_call_unref(c);
        return;
    }
    hw_metrics_msg_received(c->net->o.metrics, c->w->index, metrics_row(c));
    grpc_byte_buffer_reader r;
    ProtobufCMessage *req = NULL;
    size_t len = 0;
    if (grpc_byte_buffer_reader_init(&r, bb)) {
        grpc_slice all = grpc_byte_buffer_reader_readall(&r);
        grpc_byte_buffer_reader_destroy(&r);
        len = GRPC_SLICE_LENGTH(all);
        c->req_bytes += len;
        c->req_known = true;
        req = protobuf_c_message_unpack(m->request, hw_arena_allocator(c->arena), len,
                                        GRPC_SLICE_START_PTR(all));
        if (req && !hw_net_request_decodable(req))
            req = NULL; /* in the arena: nothing to free */
        grpc_slice_unref(all);
    }
    grpc_byte_buffer_destroy(bb);
    pthread_mutex_lock(&c->mu);
    bool ended = c->finishing || c->closed;
    pthread_mutex_unlock(&c->mu);
    if (!req) {
        hw_call_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "request is not a valid %s (%zu bytes)",
                     m->request->name, len);
    } else if (!ended) {
        m->handler(c, req, c->net->o.app);
        pthread_mutex_lock(&c->mu);
        ended = c->finishing || c->closed;
        pthread_mutex_unlock(&c->mu);
        if (!ended)
            stream_post_recv(c);
    }
    hw_call_unref(c);
}

/* Decodes the request and runs the handler (streams: sets them going). */
static void serve_request(hw_call *c)
{
    hw_net *net = c->net;
    const hw_method *m = c->method;
    if (m->client_streaming) {
        if (!stream_begin(c, false)) {
            hw_call_fail_ex(c, GRPC_STATUS_UNAVAILABLE, &DRAINING, "server is shutting down");
            return;
        }
        stream_post_recv(c);
        return;
    }
    if (!c->payload) {
        hw_call_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "no request message");
        return;
    }
    size_t len = 0;
    const uint8_t *bytes = payload_bytes(c, &len);
    if (bytes) {
        c->req_bytes = len;
        c->req_known = true;
    }
    ProtobufCMessage *req =
        bytes ? protobuf_c_message_unpack(m->request, hw_arena_allocator(c->arena), len, bytes) : NULL;
    if (req && !hw_net_request_decodable(req))
        req = NULL; /* in the arena: nothing to free */
    if (!req) {
        hw_call_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "request is not a valid %s (%zu bytes)",
                     m->request->name, len);
        return;
    }
    if (!m->server_streaming) {
        m->handler(c, req, net->o.app);
        return;
    }
    if (!stream_begin(c, true)) {
        hw_call_fail_ex(c, GRPC_STATUS_UNAVAILABLE, &DRAINING, "server is shutting down");
        return;
    }
    hw_call_ref(c); /* c outlives a cancel during the handler */
    m->handler(c, req, net->o.app);
    stream_send_headers(c);
    hw_call_unref(c);
}

/* ------------------------------------------------------------- replicas */

/* The call's deadline on CLOCK_MONOTONIC (INT64_MAX: none), a little
 * early, so that our DEADLINE_EXCEEDED and its message reach the client
 * before its own timer gives up with a bare one. */
#define HW_WAIT_MARGIN_NS (10 * 1000 * 1000LL)

static int64_t deadline_mono_ns(gpr_timespec d)
{
    if (d.tv_sec >= gpr_inf_future(d.clock_type).tv_sec)
        return INT64_MAX;
    gpr_timespec left = gpr_time_sub(d, gpr_now(d.clock_type));
    if (left.tv_sec > 1000000000)
        return INT64_MAX;
    int64_t left_ns = left.tv_sec * 1000000000LL + left.tv_nsec - HW_WAIT_MARGIN_NS;
    return now_ns() + (left_ns > 0 ? left_ns : 0);
}

/* "123" -> 123; false for anything but 1..20 decimal digits in range. */
static bool parse_index(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool slice_is(grpc_slice s, const char *str)
{
    size_t n = strlen(str);
    return GRPC_SLICE_LENGTH(s) == n && memcmp(GRPC_SLICE_START_PTR(s), str, n) == 0;
}

static bool slice_has_prefix(grpc_slice s, const char *prefix)
{
    size_t n = strlen(prefix);
    return GRPC_SLICE_LENGTH(s) >= n && memcmp(GRPC_SLICE_START_PTR(s), prefix, n) == 0;
}

/* Request metadata the relay must not copy: the transport's own (pseudo
 * headers, grpc-*, and the keys the client stack sets itself) and ours. */
static bool relay_skips_request_key(grpc_slice k)
{
    static const char *const own[] = {"content-type",       "te",          "user-agent", "host",
                                      "helpwire-forwarded", "traceparent", "tracestate"};
    if (slice_has_prefix(k, ":") || slice_has_prefix(k, "grpc-"))
        return true;
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (slice_is(k, own[i]))
            return true;
    return false;
}

/* Trailers of the leader's answer that are not relayed: the core's own
 * (but grpc-status-details-bin, the rich error details) and the leader's
 * applied index (ours replaces it). */
static bool relay_skips_trailer_key(grpc_slice k)
{
    if (slice_is(k, "grpc-status-details-bin"))
        return false;
    return slice_has_prefix(k, ":") || slice_has_prefix(k, "grpc-") ||
           slice_is(k, "helpwire-applied-index") || slice_is(k, "content-type");
}

/* Answers the original call with what the leader answered. Any thread. */
static void forward_answer(hw_call *c)
{
    hw_forward *f = c->fwd;
    const grpc_metadata_array *t = &f->recv_trailing;
    f->out_md = calloc(t->count + 2, sizeof *f->out_md); /* + ours (set_trailers) */
    if (f->out_md)
        for (size_t i = 0; i < t->count; i++)
            if (!relay_skips_trailer_key(t->metadata[i].key))
                f->out_md[f->n_out_md++] = t->metadata[i];
    size_t dlen = GRPC_SLICE_LENGTH(f->status_details);
    char *msg = NULL;
    if (dlen || f->status != GRPC_STATUS_OK) {
        msg = hw_arena_strndup(c->arena, (const char *)GRPC_SLICE_START_PTR(f->status_details), dlen);
    }
    grpc_byte_buffer *bb = f->recv_bb;
    f->recv_bb = NULL;
    c->resp_bytes = bb ? grpc_byte_buffer_length(bb) : 0;
    c->answered = true;
    unary_send(c, bb, f->status, msg);
}

/* The relay's answer waited for this replica to apply the leader's index. */
static void on_forward_applied(void *arg, hw_wait_outcome outcome)
{
    hw_call *c = arg;
    if (outcome == HW_WAIT_EXPIRED) {
        const hw_net_cluster *cl = c->net->o.cluster;
        hw_call_fail(c, GRPC_STATUS_DEADLINE_EXCEEDED,
                     "waiting for applied index %" PRIu64 " (at %" PRIu64 ")", c->fwd->leader_index,
                     cl->applied_index(c->net->o.app));
        return;
    }
    /* Applied, or this replica stops: the leader's answer stands either way. */
    forward_answer(c);
}

/* On the worker: the leader (or the core, when it could not reach it)
 * answered the relay. */
static void on_forward_done(hw_call *c)
{
    hw_net *net = c->net;
    const hw_net_cluster *cl = net->o.cluster;
    hw_forward *f = c->fwd;
    bool from_leader = false;
    for (size_t i = 0; i < f->recv_trailing.count; i++) {
        const grpc_metadata *m = &f->recv_trailing.metadata[i];
        if (slice_is(m->key, "helpwire-applied-index")) {
            char v[24];
            size_t n = GRPC_SLICE_LENGTH(m->value);
            if (n < sizeof v) {
                memcpy(v, GRPC_SLICE_START_PTR(m->value), n);
                v[n] = '\0';
                from_leader = parse_index(v, &f->leader_index);
            }
        }
    }
    if (!from_leader && f->status != GRPC_STATUS_OK) {
        /* The core's word, not the leader's: say where it was going. */
        hw_call_fail(c, f->status, "forwarding to leader %s: %.*s", f->target,
                     (int)GRPC_SLICE_LENGTH(f->status_details),
                     (const char *)GRPC_SLICE_START_PTR(f->status_details));
        return;
    }
    if (from_leader && cl->applied_index(net->o.app) < f->leader_index) {
        if (hw_waits_add(net->waits, cl->when_applied, net->o.app, f->leader_index,
                         deadline_mono_ns(c->deadline), on_forward_applied, c) == 0)
            return;
    }
    forward_answer(c);
}

/* Relays c to the leader at target: same path, request bytes, metadata and
 * deadline, plus helpwire-forwarded; the answer comes to the worker's
 * queue as TAG_FORWARD_DONE. */
static void forward_start(hw_call *c, const char *target)
{
    hw_net *net = c->net;
    hw_forward *f = calloc(1, sizeof *f);
    if (!f) {
        hw_call_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of memory");
        return;
    }
    c->fwd = f;
    snprintf(f->target, sizeof f->target, "%s", target);
    grpc_metadata_array_init(&f->recv_initial);
    grpc_metadata_array_init(&f->recv_trailing);
    f->status_details = grpc_empty_slice();
    f->send_md = calloc(c->md.count + 3, sizeof *f->send_md);
    if (!f->send_md) {
        hw_call_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of memory");
        return;
    }
    for (size_t i = 0; i < c->md.count; i++)
        if (!relay_skips_request_key(c->md.metadata[i].key))
            f->send_md[f->n_send_md++] = c->md.metadata[i];
    f->send_md[f->n_send_md].key = grpc_slice_from_static_string("helpwire-forwarded");
    f->send_md[f->n_send_md++].value = grpc_slice_from_static_string("1");
    /* The trace goes on with this call's span as the leader's parent. */
    hw_trace_format(&c->trace, f->traceparent, sizeof f->traceparent);
    f->send_md[f->n_send_md].key = grpc_slice_from_static_string("traceparent");
    f->send_md[f->n_send_md++].value = grpc_slice_from_static_string(f->traceparent);
    if (c->tracestate) {
        f->send_md[f->n_send_md].key = grpc_slice_from_static_string("tracestate");
        f->send_md[f->n_send_md++].value = grpc_slice_from_static_string(c->tracestate);
    }

    grpc_slice method = grpc_slice_from_static_string(c->method->path);
    pthread_mutex_lock(&net->ch_mu);
    if (!net->ch || strcmp(net->ch_target, f->target) != 0) {
        if (net->ch)
            grpc_channel_destroy(net->ch); /* calls on it keep it alive */
        grpc_arg args[] = {
            {GRPC_ARG_INTEGER, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, {.integer = net->o.max_message_bytes}},
            {GRPC_ARG_INTEGER, GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, {.integer = net->o.max_message_bytes}},
        };
        grpc_channel_args ch_args = {sizeof args / sizeof args[0], args};
        grpc_channel_credentials *creds = grpc_insecure_credentials_create();
        net->ch = grpc_channel_create(f->target, creds, &ch_args);
        grpc_channel_credentials_release(creds);
        snprintf(net->ch_target, sizeof net->ch_target, "%s", f->target);
    }
    /* The server call is the parent: its cancellation (client gone, server
     * shutdown) cancels the relay, and its deadline bounds it. */
    f->client = grpc_channel_create_call(net->ch, c->call, GRPC_PROPAGATE_DEFAULTS, c->w->cq, method, NULL,
                                         c->deadline, NULL);
    pthread_mutex_unlock(&net->ch_mu);
    if (!f->client) {
        hw_call_fail(c, GRPC_STATUS_UNAVAILABLE, "forwarding to leader %s: cannot create the call",
                     f->target);
        return;
    }
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = f->n_send_md;
    ops[0].data.send_initial_metadata.metadata = f->send_md;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = c->payload;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &f->recv_initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &f->recv_bb;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &f->recv_trailing;
    ops[5].data.recv_status_on_client.status = &f->status;
    ops[5].data.recv_status_on_client.status_details = &f->status_details;
    ops[5].data.recv_status_on_client.error_string = &f->error_string;
    grpc_call_error e = grpc_call_start_batch(f->client, ops, 6, &c->t_fwd, NULL);
    if (e != GRPC_CALL_OK)
        hw_call_fail(c, GRPC_STATUS_UNAVAILABLE, "forwarding to leader %s: cannot start the call (error %d)",
                     f->target, e);
}

/* A helpwire-min-applied-index wait ended (any thread). */
static void on_min_applied(void *arg, hw_wait_outcome outcome)
{
    hw_call *c = arg;
    hw_net *net = c->net;
    switch (outcome) {
    case HW_WAIT_APPLIED: {
        /* Handlers run on their worker (per-worker state): hop back to it
         * by sending the initial metadata now, on the call's queue. */
        if (hop_to_worker(c, &c->t_resume) != GRPC_CALL_OK)
            hw_call_fail(c, GRPC_STATUS_INTERNAL, "cannot resume the call after waiting for applied index");
        return;
    }
    case HW_WAIT_EXPIRED:
        hw_call_fail(c, GRPC_STATUS_DEADLINE_EXCEEDED,
                     "waiting for applied index %" PRIu64 " (at %" PRIu64 ")", c->wait_index,
                     net->o.cluster->applied_index(net->o.app));
        return;
    case HW_WAIT_STOPPED:
    case HW_WAIT_CANCELLED:
        hw_call_fail_ex(c, GRPC_STATUS_UNAVAILABLE, &DRAINING, "server is shutting down");
        return;
    }
}

/* Replicas, after authorization: forwards c to the leader, or makes it
 * wait for the applied index its client asks for, or refuses it. Returns
 * true when it took the call (the caller must not serve it). */
static bool replica_takes_call(hw_call *c)
{
    hw_net *net = c->net;
    const hw_net_cluster *cl = net->o.cluster;
    const hw_method *m = c->method;
    bool stream = m->server_streaming || m->client_streaming;
    if (!hw_call_metadata(c, "helpwire-forwarded")) {
        const char *rd = hw_call_metadata(c, "helpwire-read");
        bool leader_read = rd && strcmp(rd, "leader") == 0;
        if (leader_read && stream) {
            hw_call_fail(c, GRPC_STATUS_UNIMPLEMENTED, "helpwire-read: leader is for unary calls");
            return true;
        }
        char target[256];
        if ((m->write || leader_read || c->to_leader) &&
            cl->leader_target(net->o.app, target, sizeof target) && target[0]) {
            if (stream && c->to_leader)
                hw_call_fail(c, GRPC_STATUS_UNAUTHENTICATED,
                             "token not known on this replica yet (it is behind the leader): retry");
            else if (stream)
                hw_call_fail(c, GRPC_STATUS_UNIMPLEMENTED,
                             "method %s is a stream and cannot be forwarded to the leader", m->path);
            else
                forward_start(c, target);
            return true;
        }
    }
    const char *min = hw_call_metadata(c, "helpwire-min-applied-index");
    if (!min)
        return false;
    if (!parse_index(min, &c->wait_index)) {
        static const hw_error_hint bad_md = {.reason = "INVALID_METADATA"};
        hw_call_fail_ex(c, GRPC_STATUS_INVALID_ARGUMENT, &bad_md,
                        "metadata helpwire-min-applied-index must be a decimal index, not \"%.40s\"", min);
        return true;
    }
    if (cl->applied_index(net->o.app) >= c->wait_index)
        return false;
    if (hw_waits_add(net->waits, cl->when_applied, net->o.app, c->wait_index, deadline_mono_ns(c->deadline),
                     on_min_applied, c) != 0)
        hw_call_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of memory");
    return true;
}

static void serve_registered(hw_call *c)
{
    hw_net *net = c->net;
    const hw_method *m = c->method;
    if (atomic_load(&net->draining) && !m->during_drain) {
        hw_call_fail_ex(c, GRPC_STATUS_UNAVAILABLE, &DRAINING, "server is shutting down");
        return;
    }
    if (gpr_time_cmp(c->deadline, gpr_now(c->deadline.clock_type)) < 0) {
        hw_call_fail(c, GRPC_STATUS_DEADLINE_EXCEEDED, "deadline expired before the call was handled");
        return;
    }
    if (!(m->allow & HW_ALLOW_PUBLIC) && net->o.authorize && !net->o.authorize(net->o.app, c, m))
        return;
    if (net->o.cluster && replica_takes_call(c))
        return;
    if (c->to_leader) {
        /* Asked for the leader (a credential this replica does not know
         * yet) and no leader to ask: the credential stays unknown here. */
        hw_call_fail(c, GRPC_STATUS_UNAUTHENTICATED, "unknown or revoked token");
        return;
    }
    serve_request(c);
}

/* The call's trace context from its traceparent metadata (exactly one, or
 * it is not valid: W3C) and tracestate; on the accepting worker. Sets the
 * thread's log trace to it. */
static void begin_trace(hw_call *c)
{
    char tp[256]; /* a later version may add fields; longer is not ours to continue */
    tp[0] = '\0';
    int n_tp = 0;
    const grpc_metadata *ts = NULL;
    for (size_t i = 0; i < c->md.count; i++) {
        const grpc_metadata *m = &c->md.metadata[i];
        if (slice_is(m->key, "traceparent")) {
            size_t len = GRPC_SLICE_LENGTH(m->value);
            if (++n_tp == 1 && len < sizeof tp) {
                memcpy(tp, GRPC_SLICE_START_PTR(m->value), len);
                tp[len] = '\0';
            }
        } else if (slice_is(m->key, "tracestate") && !ts) {
            ts = m;
        }
    }
    bool continued = hw_trace_begin(&c->trace, n_tp == 1 && tp[0] ? tp : NULL, &c->w->rng);
    if (continued && ts && c->arena) {
        const char *v = hw_arena_strndup(c->arena, (const char *)GRPC_SLICE_START_PTR(ts->value),
                                         GRPC_SLICE_LENGTH(ts->value));
        if (hw_trace_state_ok(v))
            c->tracestate = v;
    }
    hw_log_set_trace(c->trace.trace_id);
}

static void accept_call(hw_call *c)
{
    atomic_fetch_add(&c->net->live, 1);
    hw_metrics_started(c->net->o.metrics, c->w->index, metrics_row(c));
    c->start_ns = now_ns();
    c->arena = hw_arena_create(4096);
    begin_trace(c);
    if (!c->arena) {
        /* Without an arena even the error needs no memory of ours. */
        c->answered = true;
        unary_send(c, NULL, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of memory");
    }
}

/* Takes one of the max_in_flight places for c, or says there is none. Calls
 * being refused do not hold a place: under a flood of them the admitted
 * calls keep the whole bound, so their latency does not depend on how many
 * are refused. */
/* Takes one place of count under limit, or none when all are taken. */
static bool take_place(atomic_int_fast64_t *count, int64_t limit)
{
    if (atomic_fetch_add(count, 1) < limit)
        return true;
    atomic_fetch_sub(count, 1);
    return false;
}

static bool admit(hw_net *net, hw_call *c)
{
    if (net->o.max_in_flight > 0) {
        if (!take_place(&net->admitted, net->o.max_in_flight))
            return false;
        c->admitted = true;
    }
    if (net->o.latency_target_us > 0 && !c->method->server_streaming && !c->method->client_streaming) {
        if (!take_place(&net->unary_admitted, atomic_load(&net->limit))) {
            atomic_store(&net->win_refused, true);
            if (c->admitted) {
                atomic_fetch_sub(&net->admitted, 1);
                c->admitted = false;
            }
            return false;
        }
        c->adaptive = true;
    }
    return true;
}

/* The call a completion belongs to, or NULL (the server's shutdown). */
static hw_call *tag_call(hw_tag *tag)
{
    switch (tag->kind) {
    case TAG_NEW_REGISTERED:
    case TAG_NEW_UNREGISTERED:
        return CONTAINER_OF(tag, hw_call, t_new);
    case TAG_UNARY_DONE:
        return CONTAINER_OF(tag, hw_call, t_done);
    case TAG_STREAM_SEND:
        return CONTAINER_OF(tag, hw_call, t_send);
    case TAG_STREAM_CLOSE:
        return CONTAINER_OF(tag, hw_call, t_close);
    case TAG_STREAM_RECV:
        return CONTAINER_OF(tag, hw_call, t_recv);
    case TAG_FORWARD_DONE:
        return CONTAINER_OF(tag, hw_call, t_fwd);
    case TAG_RESUME:
        return CONTAINER_OF(tag, hw_call, t_resume);
    case TAG_REPLIES:
        return CONTAINER_OF(tag, hw_call, t_replies);
    case TAG_SHUTDOWN:
        break;
    }
    return NULL;
}

static void handle_call_event(hw_worker *w, hw_tag *tag, bool ok);

/* Runs one completion with the thread's log trace set to its call's (a
 * new call's is set once it is accepted: begin_trace), cleared after. */
static void handle_event(hw_worker *w, hw_tag *tag, bool ok)
{
    hw_call *c = tag_call(tag);
    hw_log_set_trace(c ? c->trace.trace_id : NULL);
    handle_call_event(w, tag, ok);
    hw_log_set_trace(NULL);
}

static void handle_call_event(hw_worker *w, hw_tag *tag, bool ok)
{
    hw_net *net = w->net;
    switch (tag->kind) {
    case TAG_NEW_REGISTERED: {
        hw_call *c = CONTAINER_OF(tag, hw_call, t_new);
        if (!ok) { /* the server is shutting down */
            slot_free(c);
            return;
        }
        post_registered(w, c->method_index);
        accept_call(c);
        if (!c->arena)
            return;
        if (c->payload) {
            if (refuse_oversize(c, c->payload))
                return;
            hw_metrics_msg_received(net->o.metrics, w->index, c->method_index);
        }
        if ((net->o.max_in_flight > 0 || net->o.latency_target_us > 0) &&
            !(c->method->allow & HW_ALLOW_PUBLIC) && !admit(net, c)) {
            hw_metrics_shed(net->o.metrics);
            static const hw_error_hint overloaded = {.reason = "OVERLOADED"};
            hw_call_fail_ex(c, GRPC_STATUS_RESOURCE_EXHAUSTED, &overloaded,
                            "server overloaded: %lld calls in flight, the limit; retry with backoff",
                            (long long)hw_net_admission_limit(net));
            return;
        }
        serve_registered(c);
        return;
    }
    case TAG_NEW_UNREGISTERED: {
        hw_call *c = CONTAINER_OF(tag, hw_call, t_new);
        if (!ok) {
            slot_free(c);
            return;
        }
        post_unregistered(w);
        accept_call(c);
        if (c->arena)
            hw_call_fail(c, GRPC_STATUS_UNIMPLEMENTED, "method %.*s is not implemented by this server",
                         (int)GRPC_SLICE_LENGTH(c->details.method),
                         (const char *)GRPC_SLICE_START_PTR(c->details.method));
        return;
    }
    case TAG_UNARY_DONE: {
        hw_call *c = CONTAINER_OF(tag, hw_call, t_done);
        (void)atomic_load_explicit(&c->published, memory_order_acquire);
        call_destroy(c);
        return;
    }
    case TAG_STREAM_SEND:
        on_stream_send_done(CONTAINER_OF(tag, hw_call, t_send), ok);
        return;
    case TAG_STREAM_CLOSE:
        on_stream_closed(CONTAINER_OF(tag, hw_call, t_close));
        return;
    case TAG_STREAM_RECV:
        on_stream_recv(CONTAINER_OF(tag, hw_call, t_recv), ok);
        return;
    case TAG_FORWARD_DONE: /* ok is always true: the status says how it went */
        on_forward_done(CONTAINER_OF(tag, hw_call, t_fwd));
        return;
    case TAG_RESUME: {
        hw_call *c = CONTAINER_OF(tag, hw_call, t_resume);
        (void)atomic_load_explicit(&c->published, memory_order_acquire);
        if (!ok)
            hw_call_fail(c, GRPC_STATUS_CANCELLED, "call ended while waiting for applied index");
        else
            serve_request(c);
        return;
    }
    case TAG_REPLIES: {
        hw_call *c = CONTAINER_OF(tag, hw_call, t_replies);
        (void)atomic_load_explicit(&c->published, memory_order_acquire);
        /* ok or not (a cancelled call), the replies waiting go out; c,
         * the oldest of them, among them. */
        send_handoffs(w);
        return;
    }
    case TAG_SHUTDOWN:
        pthread_mutex_lock(&net->mu);
        net->shutdown_done = true;
        pthread_cond_broadcast(&net->cv);
        pthread_mutex_unlock(&net->mu);
        return;
    }
}

static void *worker_main(void *arg)
{
    hw_worker *w = arg;
    hw_net *net = w->net;
    hw_trace_rng_seed(&w->rng);
    if (net->o.worker_start)
        net->o.worker_start(net->o.app, w->index);
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type == GRPC_OP_COMPLETE)
            handle_event(w, ev.tag, ev.success != 0);
    }
    if (net->o.worker_stop)
        net->o.worker_stop(net->o.app, w->index);
    return NULL;
}

/* ------------------------------------------------------------ lifecycle */

/* "host:0" -> "host:<port>"; other addresses unchanged. */
static void format_bound(char *out, size_t n, const char *addr, int port)
{
    const char *colon = strrchr(addr, ':');
    if (strncmp(addr, "unix:", 5) == 0 || !colon || strcmp(colon, ":0") != 0)
        snprintf(out, n, "%s", addr);
    else
        snprintf(out, n, "%.*s:%d", (int)(colon - addr), addr, port);
}

int hw_net_create(hw_net **out, const hw_net_options *o, char *err, size_t errlen)
{
    *out = NULL;
    if (o->threads < 1 || o->n_listen + o->n_tls_listen < 1 ||
        o->n_listen + o->n_tls_listen > HW_MAX_LISTEN || o->calls_per_method < 1) {
        snprintf(err, errlen, "invalid server options");
        return -1;
    }
    hw_net *net = calloc(1, sizeof *net);
    if (!net) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    net->o = *o;
    {
        int64_t start_limit = HW_NET_START_LIMIT;
        if (o->max_in_flight > 0 && o->max_in_flight < start_limit)
            start_limit = o->max_in_flight;
        if (start_limit < HW_NET_MIN_LIMIT)
            start_limit = HW_NET_MIN_LIMIT;
        atomic_init(&net->limit, start_limit);
        atomic_init(&net->win_start_ns, now_ns());
    }
    pthread_mutex_init(&net->mu, NULL);
    pthread_cond_init(&net->cv, NULL);
    pthread_mutex_init(&net->streams_mu, NULL);
    pthread_mutex_init(&net->ch_mu, NULL);
    net->streams.next = net->streams.prev = &net->streams;
    net->t_shutdown.kind = TAG_SHUTDOWN;
    hw_grpc_runtime_prepare();
    grpc_init();

    grpc_arg args[] = {
        /* gRPC sets SO_REUSEPORT by default: a second server on the same
         * port would then start without a word and take half the calls. */
        {GRPC_ARG_INTEGER, GRPC_ARG_ALLOW_REUSEPORT, {.integer = 0}},
        /* Twice the limit: requests up to that reach refuse_oversize,
         * which counts them. */
        {GRPC_ARG_INTEGER,
         GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         {.integer = o->max_message_bytes > INT_MAX / 2 ? INT_MAX : 2 * o->max_message_bytes}},
        {GRPC_ARG_INTEGER, GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, {.integer = o->max_message_bytes}},
        {GRPC_ARG_INTEGER, GRPC_ARG_MAX_CONCURRENT_STREAMS, {.integer = o->max_concurrent_streams}},
        {GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_TIME_MS, {.integer = o->keepalive_time_ms}},
        {GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_TIMEOUT_MS, {.integer = o->keepalive_timeout_ms}},
        {GRPC_ARG_INTEGER,
         GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
         {.integer = o->min_ping_interval_ms}},
    };
    grpc_channel_args ch_args = {sizeof args / sizeof args[0], args};
    net->server = grpc_server_create(&ch_args, NULL);
    if (o->cluster && hw_waits_create(&net->waits) != 0) {
        snprintf(err, errlen, "cannot start the applied-index waits");
        goto fail;
    }
    net->workers = calloc((size_t)o->threads, sizeof *net->workers);
    net->reg = calloc(o->n_methods ? o->n_methods : 1, sizeof *net->reg);
    if (!net->server || !net->workers || !net->reg) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int i = 0; i < o->threads; i++) {
        hw_worker *w = &net->workers[i];
        w->net = net;
        w->index = i;
        w->cq = grpc_completion_queue_create_for_next(NULL);
        grpc_server_register_completion_queue(net->server, w->cq, NULL);
    }
    for (size_t m = 0; m < o->n_methods; m++) {
        net->reg[m] = grpc_server_register_method(net->server, o->methods[m].path, NULL,
                                                  o->methods[m].client_streaming
                                                      ? GRPC_SRM_PAYLOAD_NONE
                                                      : GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER,
                                                  0);
        if (!net->reg[m]) {
            snprintf(err, errlen, "cannot register method %s (listed twice?)", o->methods[m].path);
            goto fail;
        }
    }
    for (size_t i = 0; i < o->n_listen + o->n_tls_listen; i++) {
        bool tls = i >= o->n_listen;
        const char *addr = tls ? o->tls_listen[i - o->n_listen] : o->listen[i];
        grpc_server_credentials *creds;
        if (tls) {
            grpc_ssl_pem_key_cert_pair pair = {o->tls_key_pem, o->tls_cert_pem};
            creds = grpc_ssl_server_credentials_create_ex(
                o->tls_client_ca_pem, &pair, 1,
                o->tls_client_ca_pem ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                     : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
                NULL);
            if (!creds) {
                snprintf(err, errlen, "the TLS certificate or key is not valid PEM");
                goto fail;
            }
        } else {
            creds = grpc_insecure_server_credentials_create();
        }
        /* gRPC replaces a unix socket file without asking whether a live
         * server is behind it: look first. */
        if (strncmp(addr, "unix:", 5) == 0 && hw_listen_check(addr, err, errlen) != 0) {
            grpc_server_credentials_release(creds);
            goto fail;
        }
        int port = grpc_server_add_http2_port(net->server, addr, creds);
        grpc_server_credentials_release(creds);
        if (port == 0) {
            /* The core does not say why; trying the address ourselves does. */
            if (hw_listen_check(addr, err, errlen) == 0)
                snprintf(err, errlen, "cannot listen on %s (malformed or not permitted)", addr);
            goto fail;
        }
        format_bound(net->bound[i], sizeof net->bound[i], addr, port);
    }
    *out = net;
    return 0;
fail:
    hw_net_destroy(net);
    return -1;
}

const char *hw_net_bound_address(const hw_net *net, size_t i)
{
    return i < net->o.n_listen + net->o.n_tls_listen ? net->bound[i] : NULL;
}

int hw_net_start(hw_net *net, char *err, size_t errlen)
{
    grpc_server_start(net->server);
    net->started = true;
    for (int i = 0; i < net->o.threads; i++) {
        hw_worker *w = &net->workers[i];
        for (size_t m = 0; m < net->o.n_methods; m++)
            for (int k = 0; k < net->o.calls_per_method; k++)
                post_registered(w, m);
        for (int k = 0; k < HW_UNREGISTERED_SLOTS; k++)
            post_unregistered(w);
    }
    for (int i = 0; i < net->o.threads; i++) {
        int rc = pthread_create(&net->workers[i].thread, NULL, worker_main, &net->workers[i]);
        if (rc != 0) {
            snprintf(err, errlen, "cannot start worker thread: %s", strerror(rc));
            hw_net_shutdown(net, 0);
            return -1;
        }
        net->workers[i].running = true;
        char tname[32];
        snprintf(tname, sizeof tname, "hw-worker-%d", i);
        tname[15] = '\0'; /* the kernel's limit */
        pthread_setname_np(net->workers[i].thread, tname);
    }
    return 0;
}

void hw_net_begin_drain(hw_net *net)
{
    atomic_store(&net->draining, true);
}

bool hw_net_draining(const hw_net *net)
{
    return atomic_load(&((hw_net *)net)->draining);
}

int64_t hw_net_calls_in_flight(const hw_net *net)
{
    return atomic_load(&((hw_net *)net)->live);
}

static void end_all_streams(hw_net *net)
{
    pthread_mutex_lock(&net->streams_mu);
    net->streams_closed = true;
    size_t n = 0;
    for (hw_call *c = net->streams.next; c != &net->streams; c = c->next)
        n++;
    hw_call **all = n ? malloc(n * sizeof *all) : NULL;
    size_t k = 0;
    if (all)
        for (hw_call *c = net->streams.next; c != &net->streams; c = c->next) {
            hw_call_ref(c);
            all[k++] = c;
        }
    pthread_mutex_unlock(&net->streams_mu);
    for (size_t i = 0; i < k; i++) {
        hw_call_fail_ex(all[i], GRPC_STATUS_UNAVAILABLE, &DRAINING, "server is shutting down");
        hw_call_unref(all[i]);
    }
    free(all);
}

/* Waits until pred holds or the deadline (CLOCK_REALTIME ns; 0 = none). */
static bool wait_until(hw_net *net, bool (*pred)(hw_net *), int64_t deadline_ns)
{
    pthread_mutex_lock(&net->mu);
    while (!pred(net)) {
        if (deadline_ns) {
            struct timespec ts = {deadline_ns / 1000000000, deadline_ns % 1000000000};
            if (pthread_cond_timedwait(&net->cv, &net->mu, &ts) == ETIMEDOUT && !pred(net)) {
                pthread_mutex_unlock(&net->mu);
                return false;
            }
        } else {
            /* Re-check now and then: call_destroy only signals when draining. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 50000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&net->cv, &net->mu, &ts);
        }
    }
    pthread_mutex_unlock(&net->mu);
    return true;
}

static bool shutdown_done(hw_net *net)
{
    return net->shutdown_done;
}

static bool no_live_calls(hw_net *net)
{
    return atomic_load(&net->live) == 0;
}

int hw_net_shutdown(hw_net *net, int64_t timeout_ms)
{
    int rc = 0;
    hw_net_begin_drain(net);
    if (!net->started)
        return 0;
    end_all_streams(net);
    grpc_server_shutdown_and_notify(net->server, net->workers[0].cq, &net->t_shutdown);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t deadline = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + timeout_ms * 1000000;
    bool all_running = true;
    for (int i = 0; i < net->o.threads; i++)
        all_running &= net->workers[i].running;
    if (all_running && !wait_until(net, shutdown_done, deadline)) {
        hw_log_event(net->o.log, HW_LOG_WARN, "drain_timeout", "in_flight=%lld action=cancel",
                     (long long)hw_net_calls_in_flight(net));
        grpc_server_cancel_all_calls(net->server);
        if (net->waits)
            hw_waits_cancel_all(net->waits);
        rc = 1;
    }
    if (all_running) {
        wait_until(net, shutdown_done, 0);
        wait_until(net, no_live_calls, 0);
    }
    grpc_server_destroy(net->server);
    net->server = NULL;
    for (int i = 0; i < net->o.threads; i++)
        grpc_completion_queue_shutdown(net->workers[i].cq);
    for (int i = 0; i < net->o.threads; i++)
        if (net->workers[i].running) {
            pthread_join(net->workers[i].thread, NULL);
            net->workers[i].running = false;
        }
    net->started = false;
    return rc;
}

void hw_net_destroy(hw_net *net)
{
    if (!net)
        return;
    if (net->started)
        hw_net_shutdown(net, 0);
    if (net->server && net->workers && net->workers[0].cq) {
        /* Never started: shut down on worker 0's queue and pump it here. */
        grpc_server_shutdown_and_notify(net->server, net->workers[0].cq, &net->t_shutdown);
        for (;;) {
            grpc_event ev =
                grpc_completion_queue_next(net->workers[0].cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
            if (ev.type != GRPC_OP_COMPLETE || ev.tag == &net->t_shutdown)
                break;
        }
        grpc_server_destroy(net->server);
    } else if (net->server) {
        grpc_server_destroy(net->server);
    }
    if (net->workers) {
        for (int i = 0; i < net->o.threads; i++)
            if (net->workers[i].cq) {
                grpc_completion_queue_shutdown(net->workers[i].cq);
                while (
                    grpc_completion_queue_next(net->workers[i].cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
                        .type != GRPC_QUEUE_SHUTDOWN) {
                }
                grpc_completion_queue_destroy(net->workers[i].cq);
            }
        free(net->workers);
    }
    free(net->reg);
    hw_waits_destroy(net->waits);
    if (net->ch)
        grpc_channel_destroy(net->ch);
    pthread_mutex_destroy(&net->ch_mu);
    pthread_mutex_destroy(&net->mu);
    pthread_cond_destroy(&net->cv);
    pthread_mutex_destroy(&net->streams_mu);
    free(net);
    grpc_shutdown();
}
