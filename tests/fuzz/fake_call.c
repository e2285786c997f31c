/*
 * fake_call: net.h's per-call functions for fuzz harnesses (see
 * fake_call.h). A reply is packed like net.c packs it, after
 * protobuf_c_message_check, so a reply that could not be sent (a NULL
 * string, a missing required field) aborts the harness.
 */
#include "tests/fuzz/fake_call.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct hw_call {
    const hw_method *method;
    hw_arena *arena;
    const void *principal;
    hw_trace trace;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    bool ended;
    void (*on_close)(hw_call *call, void *arg);
    void *on_close_arg;
    fz_answer answer;
};

hw_call *fz_call_new(const hw_method *method, const void *principal)
{
    hw_call *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->arena = hw_arena_create(16 * 1024);
    if (!c->arena) {
        free(c);
        return NULL;
    }
    c->method = method;
    c->principal = principal;
    c->refs = 1;
    strcpy(c->trace.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    strcpy(c->trace.span_id, "00f067aa0ba902b7");
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    return c;
}

static void deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

int fz_call_run(hw_call *c, const ProtobufCMessage *request, void *app, int timeout_ms, fz_answer *out)
{
    struct timespec dl;
    c->method->handler(c, request, app);
    deadline_in(&dl, timeout_ms);
    pthread_mutex_lock(&c->mu);
    if (c->method->server_streaming) {
        /* The client goes away: the stream ends, its close hook runs once. */
        void (*fn)(hw_call *, void *) = c->on_close;
        c->ended = true;
        c->on_close = NULL;
        if (!c->answer.answered) {
            c->answer.answered = true;
            c->answer.code = GRPC_STATUS_CANCELLED;
        }
        pthread_mutex_unlock(&c->mu);
        if (fn)
            fn(c, c->on_close_arg);
        pthread_mutex_lock(&c->mu);
        while (c->refs > 1)
            if (pthread_cond_timedwait(&c->cv, &c->mu, &dl) != 0)
                break;
    } else {
        while (!c->answer.answered)
            if (pthread_cond_timedwait(&c->cv, &c->mu, &dl) != 0)
                break;
    }
    bool done = c->method->server_streaming ? c->refs == 1 : c->answer.answered;
    *out = c->answer;
    pthread_mutex_unlock(&c->mu);
    if (!done)
        return -1;
    hw_arena_destroy(c->arena);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
    return 0;
}

/* Packs msg as net.c would; aborts on a message protobuf-c would not
 * accept. Returns its size. */
static size_t pack(const ProtobufCMessage *msg)
{
    if (!protobuf_c_message_check(msg)) {
        fprintf(stderr, "fake_call: reply %s fails protobuf_c_message_check\n", msg->descriptor->name);
        abort();
    }
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        abort();
    if (protobuf_c_message_pack(msg, buf) != n)
        abort();
    ProtobufCMessage *back = protobuf_c_message_unpack(msg->descriptor, NULL, n, buf);
    if (!back) {
        fprintf(stderr, "fake_call: reply %s does not decode:", msg->descriptor->name);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %02x", buf[i]);
        fputc('\n', stderr);
        abort();
    }
    protobuf_c_message_free_unpacked(back, NULL);
    free(buf);
    return n;
}

void hw_call_reply(hw_call *c, const ProtobufCMessage *reply)
{
    size_t n = pack(reply);
    pthread_mutex_lock(&c->mu);
    if (c->answer.answered) {
        fprintf(stderr, "fake_call: %s answered twice\n", c->method->path);
        abort();
    }
    c->answer.answered = true;
    c->answer.code = GRPC_STATUS_OK;
    c->answer.reply_bytes = n;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

void hw_call_set_handoff(hw_call *c, bool hand_off)
{
    (void)c;
    (void)hand_off;
}

void hw_call_reply_kept(hw_call *c, const ProtobufCMessage *reply)
{
    hw_call_reply(c, reply);
}

/* A reply packed already: it must decode as the method's reply type. */
void hw_call_reply_packed(hw_call *c, const void *bytes, size_t len)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(c->method->reply, NULL, len, bytes);
    if (!m) {
        fprintf(stderr, "fake_call: %s: the packed reply does not decode as %s\n", c->method->path,
                c->method->reply->name);
        abort();
    }
    hw_call_reply(c, m);
    protobuf_c_message_free_unpacked(m, NULL);
}

static void fail_v(hw_call *c, grpc_status_code code, const char *fmt, va_list ap)
{
    char msg[512] = "";
    if (fmt)
        vsnprintf(msg, sizeof msg, fmt, ap);
    pthread_mutex_lock(&c->mu);
    if (c->answer.answered && !c->method->server_streaming) {
        fprintf(stderr, "fake_call: %s answered twice (then %d %s)\n", c->method->path, code, msg);
        abort();
    }
    if (!c->answer.answered) {
        c->answer.answered = true;
        c->answer.code = code;
        snprintf(c->answer.msg, sizeof c->answer.msg, "%s", msg);
    }
    c->ended = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

void hw_call_fail(hw_call *c, grpc_status_code code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fail_v(c, code, fmt, ap);
    va_end(ap);
}

void hw_call_fail_ex(hw_call *c, grpc_status_code code, const hw_error_hint *hint, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fail_v(c, code, fmt, ap);
    va_end(ap);
}

void hw_call_fail_field(hw_call *c, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fail_v(c, GRPC_STATUS_INVALID_ARGUMENT, fmt, ap);
    va_end(ap);
}

int hw_call_stream_send(hw_call *c, const ProtobufCMessage *msg)
{
    pack(msg);
    pthread_mutex_lock(&c->mu);
    int rc = c->ended ? -1 : 0;
    if (rc == 0)
        c->answer.stream_messages++;
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int hw_call_stream_wait(hw_call *c, size_t max_waiting)
{
    pthread_mutex_lock(&c->mu);
    int rc = c->ended ? -1 : 0;
    pthread_mutex_unlock(&c->mu);
    return rc;
}

void hw_call_ref(hw_call *c)
{
    pthread_mutex_lock(&c->mu);
    c->refs++;
    pthread_mutex_unlock(&c->mu);
}

void hw_call_unref(hw_call *c)
{
    pthread_mutex_lock(&c->mu);
    if (--c->refs < 1) {
        fprintf(stderr, "fake_call: %s unreferenced once too often\n", c->method->path);
        abort();
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

void hw_call_on_close(hw_call *c, void (*fn)(hw_call *call, void *arg), void *arg)
{
    pthread_mutex_lock(&c->mu);
    c->on_close = fn;
    c->on_close_arg = arg;
    pthread_mutex_unlock(&c->mu);
}

hw_arena *hw_call_arena(hw_call *c)
{
    return c->arena;
}

int hw_call_worker(const hw_call *c)
{
    return 0;
}

const hw_method *hw_call_method(const hw_call *c)
{
    return c->method;
}

const char *hw_call_metadata(hw_call *c, const char *key)
{
    return NULL;
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
    return NULL;
}

const char *hw_call_peer(hw_call *c)
{
    return "ipv4:127.0.0.1:40000";
}

void hw_call_set_token_id(hw_call *c, const char *token_id) {}

bool hw_call_forward_to_leader(hw_call *c)
{
    return false;
}

/* The server-wide functions the domain reads: no server, nothing in flight. */
bool hw_net_draining(const hw_net *net)
{
    return false;
}

int64_t hw_net_calls_in_flight(const hw_net *net)
{
    return 0;
}
