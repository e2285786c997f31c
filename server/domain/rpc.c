/*
 * rpc: shared handler plumbing (see rpc.h). HW_E* codes become gRPC codes
 * through hw_err_grpc_status's table (server/base/errors.c).
 */
#include "server/domain/rpc.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <utf8proc.h>

#include "server/base/clock.h"
#include "server/search/index.h"

/* The status table itself is hw_err_grpc_status's (server/base/errors.c),
 * in the protocol's numbers; here they are checked against gRPC's. */
#define SAME_CODE(name)                                                                                      \
    _Static_assert((int)GRPC_STATUS_##name == (int)HW_GRPC_##name, "HW_GRPC_" #name " is gRPC's " #name)
SAME_CODE(OK);
SAME_CODE(CANCELLED);
SAME_CODE(UNKNOWN);
SAME_CODE(INVALID_ARGUMENT);
SAME_CODE(DEADLINE_EXCEEDED);
SAME_CODE(NOT_FOUND);
SAME_CODE(ALREADY_EXISTS);
SAME_CODE(PERMISSION_DENIED);
SAME_CODE(RESOURCE_EXHAUSTED);
SAME_CODE(FAILED_PRECONDITION);
SAME_CODE(ABORTED);
SAME_CODE(OUT_OF_RANGE);
SAME_CODE(UNIMPLEMENTED);
SAME_CODE(INTERNAL);
SAME_CODE(UNAVAILABLE);
SAME_CODE(DATA_LOSS);
SAME_CODE(UNAUTHENTICATED);

grpc_status_code hw_rpc_status(int err)
{
    return (grpc_status_code)hw_err_grpc_status(err);
}

/* The ErrorInfo reasons of the HW_E* codes that say more than their gRPC
 * status (the others take the status's default, status_details.c). */
static const char *const REASONS[HW_ERR_COUNT] = {
    [-HW_ENOMEM] = "OUT_OF_MEMORY",  [-HW_EFULL] = "STORAGE_FULL", [-HW_ENOSPACE] = "STORAGE_FULL",
    [-HW_ENOTLEADER] = "NOT_LEADER", [-HW_EAGAIN] = "NOT_READY",   [-HW_ECLOSED] = "DRAINING",
};

const char *hw_rpc_reason(int err)
{
    return err < 0 && err > -HW_ERR_COUNT ? REASONS[-err] : NULL;
}

/* Fails call for err with msg and, when known, the resource (subject). */
static void fail_with(hw_call *call, int err, const char *subject, const char *msg)
{
    const hw_error_hint hint = {.reason = hw_rpc_reason(err), .subject = subject};
    hw_call_fail_ex(call, hw_rpc_status(err), &hint, "%s", msg);
}

static void fail_v(hw_call *call, int err, const char *fmt, va_list ap)
{
    char msg[512];
    if (fmt)
        vsnprintf(msg, sizeof msg, fmt, ap);
    else if (err == HW_ENOTLEADER)
        snprintf(msg, sizeof msg, "%s", HW_RPC_NOT_LEADER_MSG);
    else
        snprintf(msg, sizeof msg, "%s", hw_strerror(err));
    fail_with(call, err, NULL, msg);
}

void hw_rpc_fail(hw_call *call, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fail_v(call, err, fmt, ap);
    va_end(ap);
}

/* Returns the byte offset of the first invalid UTF-8 sequence, or -1. */
static long utf8_invalid_at(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n =
            utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &cp);
        if (n <= 0)
            return (long)i;
        i += (size_t)n;
    }
    return -1;
}

bool hw_rpc_check_text(hw_call *call, const char *field, const char *s, size_t min, size_t max)
{
    size_t len = strlen(s);
    if (len < min) {
        hw_call_fail_field(call, field, "%s: required", field);
        return false;
    }
    if (len > max) {
        hw_call_fail_field(call, field, "%s: %zu bytes, at most %zu allowed", field, len, max);
        return false;
    }
    long bad = utf8_invalid_at(s, len);
    if (bad >= 0) {
        hw_call_fail_field(call, field, "%s: invalid UTF-8 at byte %ld", field, bad);
        return false;
    }
    return true;
}

bool hw_rpc_check_id(hw_call *call, const char *field, const char *s, size_t max, bool optional)
{
    size_t len = strlen(s);
    if (len == 0) {
        if (!optional)
            hw_call_fail_field(call, field, "%s: required", field);
        return optional;
    }
    if (len > max) {
        hw_call_fail_field(call, field, "%s: longer than %zu bytes", field, max);
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == ':' || c == '-')) {
            hw_call_fail_field(call, field, "%s: only letters, digits and . _ : - are allowed (byte %zu)",
                               field, i);
            return false;
        }
    }
    return true;
}

bool hw_rpc_check_doc_id(hw_call *call, const char *field, const char *s, bool optional)
{
    size_t len = strlen(s);
    if (len == 0) {
        if (!optional)
            hw_call_fail_field(call, field, "%s: required", field);
        return optional;
    }
    if (len > HW_INDEX_MAX_ID) {
        hw_call_fail_field(call, field, "%s: longer than %d bytes", field, HW_INDEX_MAX_ID);
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!hw_index_id_char((unsigned char)s[i])) {
            hw_call_fail_field(call, field,
                               "%s: only printable ASCII a link holds as written: letters, digits and "
                               "- . _ ~ ! $ & ' ( ) * + , ; = : @ (byte %zu)",
                               field, i);
            return false;
        }
    }
    return true;
}

bool hw_rpc_check_enum(hw_call *call, const char *field, const ProtobufCEnumDescriptor *d, int v,
                       bool optional)
{
    if (v == 0) {
        if (!optional)
            hw_call_fail_field(call, field, "%s: required", field);
        return optional;
    }
    if (!protobuf_c_enum_descriptor_get_value(d, v)) {
        hw_call_fail_field(call, field, "%s: unknown value %d", field, v);
        return false;
    }
    return true;
}

bool hw_rpc_check_list(hw_call *call, const char *field, char **items, size_t n_items, size_t max_items,
                       size_t max)
{
    if (n_items > max_items) {
        hw_call_fail_field(call, field, "%s: %zu items, at most %zu allowed", field, n_items, max_items);
        return false;
    }
    for (size_t i = 0; i < n_items; i++) {
        char name[96];
        snprintf(name, sizeof name, "%s[%zu]", field, i);
        if (!hw_rpc_check_text(call, name, items[i], 1, max))
            return false;
    }
    return true;
}

size_t hw_rpc_page_size(uint32_t page_size, size_t def, size_t max)
{
    if (page_size == 0)
        return def;
    return page_size > max ? max : page_size;
}

bool hw_rpc_page_token(hw_call *call, const char *field, const char *token, hw_store_cursor *cursor)
{
    memset(cursor, 0, sizeof *cursor);
    if (hw_store_cursor_decode(token, cursor) != HW_OK) {
        hw_call_fail_field(call, field, "%s: not a token from this listing", field);
        return false;
    }
    return true;
}

char *hw_rpc_next_token(hw_call *call, const hw_store_cursor *cursor)
{
    size_t n = cursor->len * 2 + 1;
    char *s = hw_arena_alloc(hw_call_arena(call), n);
    if (s && hw_store_cursor_encode(cursor, s, n) != HW_OK)
        s[0] = '\0';
    return s ? s : "";
}

hw_store_txn *hw_rpc_read(hw_call *call, hw_app *app)
{
    hw_store_txn *txn = NULL;
    hw_store_reader *r = app->workers[hw_call_worker(call)].reader;
    if (!r) {
        hw_call_fail(call, GRPC_STATUS_UNAVAILABLE, "this worker has no store reader (see the server log)");
        return NULL;
    }
    int rc = hw_store_read_begin(r, &txn);
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, "cannot read the store: %s", hw_strerror(rc));
        return NULL;
    }
    return txn;
}

void hw_rpc_read_end(hw_call *call, hw_app *app)
{
    hw_store_read_end(app->workers[hw_call_worker(call)].reader);
}

void *hw_rpc_ctx_new(hw_call *call, void *app, size_t size)
{
    hw_wctx *h = hw_arena_calloc(hw_call_arena(call), 1, size);
    if (!h) {
        hw_rpc_fail(call, HW_ENOMEM, "server out of memory");
        return NULL;
    }
    h->call = call;
    h->app = app;
    return h;
}

int hw_rpc_wfail(hw_wctx *h, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->msg, sizeof h->msg, fmt, ap);
    va_end(ap);
    h->err = err;
    h->subject[0] = '\0';
    return err;
}

int hw_rpc_wfail_on(hw_wctx *h, int err, const char *collection, const char *id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->msg, sizeof h->msg, fmt, ap);
    va_end(ap);
    h->err = err;
    snprintf(h->subject, sizeof h->subject, "%s/%s", collection, id);
    return err;
}

/* The thread's log trace, saved while it works for a call (the writer
 * normally has none; restored rather than cleared all the same). */
static void trace_save(char *buf, size_t n, const hw_call *call)
{
    const char *cur = hw_log_trace();
    snprintf(buf, n, "%s", cur ? cur : "");
    hw_log_set_trace(hw_call_trace(call)->trace_id);
}

/* The write fn and done callback hw_rpc_write submits: the caller's, with
 * the effects begun before each run and run after the outcome. */
static int write_fn(hw_store_txn *w, void *arg)
{
    hw_wctx *h = arg;
    char saved[HW_LOG_TRACE_MAX + 1];
    trace_save(saved, sizeof saved, h->call);
    hw_effects_begin(&h->fx, hw_call_arena(h->call));
    hw_effects_set_now(&h->fx, hw_rpc_now_ms(h->app));
    h->fx.app = h->app;
    h->fx.traceparent = h->traceparent;
    h->fx.tracestate = hw_call_tracestate(h->call);
    int rc = h->fn(w, h);
    if (rc == HW_OK) /* the other replicas run the same effects (effects.h) */
        rc = hw_effects_note_in(&h->fx, w);
    hw_log_set_trace(saved);
    return rc;
}

/* Groups at least this large hand their replies to the calls' workers
 * (net.h hw_call_set_handoff): measured (docs/write-path.md section 7), the
 * hand-off saves the writer 5 µs per write in groups of about 100, and
 * costs a reply a pass through its worker's queue, which a flood of other
 * calls on that worker lengthens. */
#define HW_RPC_HANDOFF_GROUP 16

static void write_done(void *arg, int status)
{
    hw_wctx *h = arg;
    /* The id is copied: once done answers, the call may be freed. */
    char saved[HW_LOG_TRACE_MAX + 1];
    trace_save(saved, sizeof saved, h->call);
    hw_effects_run(&h->fx, &h->app->after_commit, status);
    /* A writer completing a small group is not the bottleneck: it answers
     * itself, sooner than the call's worker would (that worker may be busy
     * with other calls). A large group's replies go to the workers. */
    hw_call_set_handoff(h->call, hw_store_completing(h->app->store) >= HW_RPC_HANDOFF_GROUP);
    if (h->done)
        h->done(h, status);
    hw_log_set_trace(saved);
}

bool hw_rpc_write(hw_wctx *h, hw_store_write_fn fn, hw_store_done_fn done)
{
    h->err = 0;
    h->msg[0] = '\0';
    h->subject[0] = '\0';
    h->fn = fn;
    h->done = done;
    hw_trace_format(hw_call_trace(h->call), h->traceparent, sizeof h->traceparent);
    int rc = hw_store_submit(h->app->store, write_fn, write_done, h);
    if (rc == HW_ENOTLEADER) {
        fail_with(h->call, rc, NULL, HW_RPC_NOT_LEADER_MSG);
        return false;
    }
    if (rc != HW_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, "the store is not accepting writes: %s", hw_strerror(rc));
        hw_error_hint hint = {.reason = hw_rpc_reason(rc)};
        hw_call_fail_ex(h->call, GRPC_STATUS_UNAVAILABLE, &hint, "%s", msg);
        return false;
    }
    return true;
}

bool hw_rpc_write_failed(hw_wctx *h, int status)
{
    if (status == HW_OK)
        return false;
    if (status == HW_ENOTLEADER) /* the group failed as a whole: no message of the fn's applies */
        fail_with(h->call, status, NULL, HW_RPC_NOT_LEADER_MSG);
    else if (h->err == status && h->msg[0])
        fail_with(h->call, status, h->subject[0] ? h->subject : NULL, h->msg);
    else
        fail_with(h->call, status, NULL, hw_strerror(status));
    return true;
}

char *hw_rpc_new_id(hw_arena *a, const char *prefix)
{
    uint64_t r = 0;
    while (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) {
    }
    return hw_arena_printf(a, "%s%016llx", prefix, (unsigned long long)r);
}

int64_t hw_rpc_now_ms(const hw_app *app)
{
    return hw_clock_now_ms(app ? app->clock : NULL);
}

const char *hw_rpc_actor(hw_call *call)
{
    const hw_principal *p = hw_call_principal(call);
    return p && p->actor ? p->actor : "anonymous";
}

const char *hw_rpc_agent(hw_call *call)
{
    const hw_principal *p = hw_call_principal(call);
    return p ? p->agent_id : NULL;
}

int hw_rpc_start_thread(hw_call *call, void *(*fn)(void *), void *arg)
{
    hw_call_ref(call);
    pthread_t t;
    pthread_attr_t attr;
    int e = pthread_attr_init(&attr);
    if (e == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        e = pthread_create(&t, &attr, fn, arg);
        pthread_attr_destroy(&attr);
    }
    if (e != 0)
        hw_call_unref(call);
    return e;
}
