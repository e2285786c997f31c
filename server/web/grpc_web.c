/*
 * grpc_web: the gRPC-Web gateway (see grpc_web.h for the protocol).
 *
 * One request, one web_req, shared by three parties that each hold a
 * reference: libmicrohttpd's request (dropped in the completed callback),
 * the response's content reader (dropped when MHD frees the response) and
 * every gRPC batch in flight (dropped when its completion is handled on the
 * gateway thread). Its mutex orders the hand-over: the gateway thread
 * appends frames to `out` and resumes the connection when MHD had
 * suspended it for lack of data; the MHD thread takes bytes from `out`
 * and suspends the connection when there are none (the documented way
 * with an internal polling thread, instead of busy-waiting).
 *
 * Flow control: the next message is read from the server only while less
 * than OUT_HIGH_WATER bytes wait for the browser; the content reader
 * starts the read again as it drains.
 */
#include "server/web/grpc_web.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <microhttpd.h>

#include "server/base/grpc_runtime.h"
#include "server/base/listen.h"

#define OUT_HIGH_WATER (1u << 20) /* bytes waiting for the browser before reads pause */
#define MAX_FORWARDED_HEADERS 64
#define ALLOWED_HEADERS                                                                                      \
    "x-grpc-web, content-type, authorization, x-user-agent, grpc-timeout, traceparent, tracestate"
#define EXPOSED_HEADERS "grpc-status, grpc-message, grpc-status-details-bin"

struct hw_grpc_web {
    hw_grpc_web_options o;
    char *target;
    struct MHD_Daemon **httpd;
    char (*bound)[300];
    size_t n_httpd;
    grpc_channel *channel;
    grpc_completion_queue *cq;
    pthread_t thread;
    bool thread_started;
    bool grpc_started;
    pthread_mutex_t mu;   /* guards reqs; taken before a request's mu, never after */
    pthread_cond_t cv;    /* signalled when a request is freed */
    struct web_req *reqs; /* live requests (doubly linked) */
    atomic_bool stopping; /* no connection may be suspended any more */
};

typedef enum { TAG_START, TAG_MSG, TAG_STATUS } tag_kind;

typedef struct web_req web_req;

/* A completion queue tag. r is stored with release and loaded with
 * acquire: the hand-off through the (uninstrumented) gRPC core is then
 * visible to ThreadSanitizer, as in net.c. */
typedef struct {
    tag_kind kind;
    _Atomic(web_req *) r;
} web_tag;

struct web_req {
    hw_grpc_web *web;
    struct MHD_Connection *conn;
    web_req *prev, *next;
    pthread_mutex_t mu;
    int refs;
    /* Request (MHD thread only until the call starts). */
    bool text;
    bool too_large;
    bool started; /* the gRPC call, or a local answer, is under way */
    bool responded;
    char *body;
    size_t body_len, body_cap, body_limit;
    char allow_origin[256]; /* Access-Control-Allow-Origin value, "" = none */
    /* The call. */
    grpc_call *call;
    grpc_metadata send_md[MAX_FORWARDED_HEADERS];
    size_t n_send_md;
    grpc_byte_buffer *send_bb, *recv_bb;
    grpc_metadata_array recv_initial, recv_trailing;
    grpc_status_code status;
    grpc_slice details;
    web_tag t_start, t_msg, t_status;
    /* Under mu. */
    bool md_received, status_received, msgs_done, reading;
    bool headers_ready; /* the response may start (see gateway_main) */
    bool finished;      /* the trailer frame is in out */
    bool suspended, http_closed;
    int n_msgs;
    char *out;
    size_t out_off, out_len, out_cap;
};

/* ------------------------------------------------------------- helpers */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Writes the base64 of in (padded) to out, which holds 4 * ceil(n / 3) bytes. */
static size_t b64_encode(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = B64[(v >> 18) & 63];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = i + 1 < n ? B64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? B64[v & 63] : '=';
    }
    return o;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Decodes base64 in place, quad by quad, so that padded pieces may follow
 * each other (gRPC-Web text bodies are often sent that way); whitespace is
 * skipped, a missing final padding tolerated. Returns the decoded length,
 * or -1 when the text is not base64. */
static long b64_decode_inplace(char *s, size_t n)
{
    size_t o = 0;
    int q[4], nq = 0, pad = 0;
    for (size_t i = 0; i <= n; i++) {
        bool end = i == n;
        if (!end) {
            char c = s[i];
            if (c == ' ' || c == '\r' || c == '\n' || c == '\t')
                continue;
            if (c == '=') {
                if (nq < 2)
                    return -1;
                pad++;
                q[nq++] = 0;
            } else {
                int v = b64_value(c);
                if (v < 0 || pad)
                    return -1;
                q[nq++] = v;
            }
        } else if (nq == 0) {
            break;
        } else {
            if (nq == 1)
                return -1;
            while (nq < 4) {
                pad++;
                q[nq++] = 0;
            }
        }
        if (nq == 4) {
            uint32_t v = (uint32_t)q[0] << 18 | (uint32_t)q[1] << 12 | (uint32_t)q[2] << 6 | (uint32_t)q[3];
            s[o++] = (char)(v >> 16);
            if (pad < 2)
                s[o++] = (char)(v >> 8);
            if (pad < 1)
                s[o++] = (char)v;
            nq = pad = 0;
        }
    }
    return (long)o;
}

/* Appends n bytes to the request's output. Returns 0 or -1 (out of memory). */
static int out_append(web_req *r, const void *p, size_t n)
{
    if (r->out_off && r->out_off == r->out_len)
        r->out_off = r->out_len = 0;
    if (r->out_len + n > r->out_cap) {
        size_t cap = r->out_cap ? r->out_cap : 4096;
        while (cap < r->out_len + n)
            cap *= 2;
        char *b = realloc(r->out, cap);
        if (!b)
            return -1;
        r->out = b;
        r->out_cap = cap;
    }
    memcpy(r->out + r->out_len, p, n);
    r->out_len += n;
    return 0;
}

/* Appends one frame (flag, 4-byte big-endian length, payload), base64 in
 * text mode (each frame padded on its own). */
static int out_frame(web_req *r, unsigned char flag, const void *payload, size_t n)
{
    unsigned char *f = malloc(5 + n);
    if (!f)
        return -1;
    f[0] = flag;
    f[1] = (unsigned char)(n >> 24);
    f[2] = (unsigned char)(n >> 16);
    f[3] = (unsigned char)(n >> 8);
    f[4] = (unsigned char)n;
    if (n)
        memcpy(f + 5, payload, n);
    int rc;
    if (r->text) {
        char *t = malloc(4 * ((5 + n + 2) / 3));
        rc = t ? out_append(r, t, b64_encode(f, 5 + n, t)) : -1;
        free(t);
    } else {
        rc = out_append(r, f, 5 + n);
    }
    free(f);
    return rc;
}

/* The grpc-message encoding: bytes outside printable ASCII, and '%',
 * percent-encoded. */
static void percent_encode(const char *in, size_t n, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n && o + 4 < outlen; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c < 0x20 || c > 0x7e || c == '%') {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
}

static bool key_is_bin(const grpc_slice *k)
{
    size_t n = GRPC_SLICE_LENGTH(*k);
    return n >= 4 && memcmp(GRPC_SLICE_START_PTR(*k) + n - 4, "-bin", 4) == 0;
}

/* A metadata value as an HTTP header value: base64 for "-bin" keys. The
 * result is malloc'd (NULL when out of memory). */
static char *md_value_text(const grpc_metadata *m)
{
    size_t n = GRPC_SLICE_LENGTH(m->value);
    const unsigned char *v = GRPC_SLICE_START_PTR(m->value);
    char *s = malloc(4 * ((n + 2) / 3) + 1);
    if (!s)
        return NULL;
    if (key_is_bin(&m->key)) {
        s[b64_encode(v, n, s)] = '\0';
    } else {
        memcpy(s, v, n);
        s[n] = '\0';
    }
    return s;
}

/* Metadata the gateway does not pass on as response headers or trailers
 * (HTTP's own, or set here). */
static bool md_reserved(const grpc_slice *k)
{
    size_t n = GRPC_SLICE_LENGTH(*k);
    const char *p = (const char *)GRPC_SLICE_START_PTR(*k);
    return (n && p[0] == ':') || (n == 12 && memcmp(p, "content-type", 12) == 0) ||
           (n == 11 && memcmp(p, "grpc-status", 11) == 0) ||
           (n == 12 && memcmp(p, "grpc-message", 12) == 0) ||
           (n == 13 && memcmp(p, "grpc-encoding", 13) == 0) ||
           (n == 20 && memcmp(p, "grpc-accept-encoding", 20) == 0);
}

/* ------------------------------------------------------------ requests */

static void req_free(web_req *r)
{
    hw_grpc_web *web = r->web;
    pthread_mutex_lock(&web->mu);
    if (r->prev)
        r->prev->next = r->next;
    else
        web->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    pthread_cond_broadcast(&web->cv);
    pthread_mutex_unlock(&web->mu);
    if (r->call)
        grpc_call_unref(r->call);
    for (size_t i = 0; i < r->n_send_md; i++) {
        grpc_slice_unref(r->send_md[i].key);
        grpc_slice_unref(r->send_md[i].value);
    }
    if (r->send_bb)
        grpc_byte_buffer_destroy(r->send_bb);
    if (r->recv_bb)
        grpc_byte_buffer_destroy(r->recv_bb);
    grpc_metadata_array_destroy(&r->recv_initial);
    grpc_metadata_array_destroy(&r->recv_trailing);
    grpc_slice_unref(r->details);
    pthread_mutex_destroy(&r->mu);
    free(r->body);
    free(r->out);
    free(r);
}

static void req_unref(web_req *r)
{
    pthread_mutex_lock(&r->mu);
    int left = --r->refs;
    pthread_mutex_unlock(&r->mu);
    if (left == 0)
        req_free(r);
}

static web_req *req_new(hw_grpc_web *web, struct MHD_Connection *conn)
{
    web_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->web = web;
    r->conn = conn;
    r->refs = 1; /* MHD's request, dropped in on_completed */
    pthread_mutex_init(&r->mu, NULL);
    grpc_metadata_array_init(&r->recv_initial);
    grpc_metadata_array_init(&r->recv_trailing);
    r->details = grpc_empty_slice();
    r->status = GRPC_STATUS_UNKNOWN;
    r->t_start.kind = TAG_START;
    r->t_msg.kind = TAG_MSG;
    r->t_status.kind = TAG_STATUS;
    atomic_store_explicit(&r->t_start.r, r, memory_order_release);
    atomic_store_explicit(&r->t_msg.r, r, memory_order_release);
    atomic_store_explicit(&r->t_status.r, r, memory_order_release);
    pthread_mutex_lock(&web->mu);
    r->next = web->reqs;
    if (web->reqs)
        web->reqs->prev = r;
    web->reqs = r;
    pthread_mutex_unlock(&web->mu);
    return r;
}

/* Adds the CORS headers of an allowed origin. */
static void add_cors(const web_req *r, struct MHD_Response *resp)
{
    if (!r->allow_origin[0])
        return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->allow_origin);
    MHD_add_response_header(resp, "Access-Control-Expose-Headers", EXPOSED_HEADERS);
    MHD_add_response_header(resp, "Vary", "Origin");
}

static enum MHD_Result queue_plain(web_req *r, unsigned code, const char *text)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
    if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, "Allow", "POST, OPTIONS");
    add_cors(r, resp);
    r->responded = true;
    enum MHD_Result q = MHD_queue_response(r->conn, code, resp);
    MHD_destroy_response(resp);
    return q;
}

static const char *content_type_of(const web_req *r)
{
    return r->text ? "application/grpc-web-text+proto" : "application/grpc-web+proto";
}

/* Adds every metadata entry of md not reserved as a header. */
static void add_md_headers(struct MHD_Response *resp, const grpc_metadata_array *md)
{
    for (size_t i = 0; i < md->count; i++) {
        if (md_reserved(&md->metadata[i].key))
            continue;
        char key[256];
        size_t kn = GRPC_SLICE_LENGTH(md->metadata[i].key);
        if (kn >= sizeof key)
            continue;
        memcpy(key, GRPC_SLICE_START_PTR(md->metadata[i].key), kn);
        key[kn] = '\0';
        char *v = md_value_text(&md->metadata[i]);
        if (v)
            MHD_add_response_header(resp, key, v);
        free(v);
    }
}

/* Queues resp (HTTP code) and drops the caller's reference to it. Never
 * under r->mu: MHD takes the response's own lock, and holds it while it
 * calls read_body, which takes r->mu. */
static enum MHD_Result queue(web_req *r, unsigned code, struct MHD_Response *resp)
{
    if (!resp)
        return MHD_NO;
    r->responded = true;
    enum MHD_Result q = MHD_queue_response(r->conn, code, resp);
    MHD_destroy_response(resp);
    return q;
}

/* A trailers-only answer: status in the headers, empty body, with the
 * server's initial and trailing metadata when there was a call. */
static struct MHD_Response *trailers_only(web_req *r, grpc_status_code code, const char *msg, size_t msg_len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return NULL;
    char num[16], enc[1024];
    snprintf(num, sizeof num, "%d", (int)code);
    MHD_add_response_header(resp, "Content-Type", content_type_of(r));
    MHD_add_response_header(resp, "grpc-status", num);
    if (msg_len) {
        percent_encode(msg, msg_len, enc, sizeof enc);
        MHD_add_response_header(resp, "grpc-message", enc);
    }
    if (r->call) {
        add_md_headers(resp, &r->recv_initial);
        add_md_headers(resp, &r->recv_trailing);
    }
    add_cors(r, resp);
    return resp;
}

static enum MHD_Result fail_local(web_req *r, grpc_status_code code, const char *msg)
{
    return queue(r, MHD_HTTP_OK, trailers_only(r, code, msg, strlen(msg)));
}

/* Appends the trailer frame: grpc-status, grpc-message, trailing metadata. */
static int out_trailers_locked(web_req *r)
{
    size_t cap = 256 + 3 * GRPC_SLICE_LENGTH(r->details), n = 0;
    for (size_t i = 0; i < r->recv_trailing.count; i++)
        cap += GRPC_SLICE_LENGTH(r->recv_trailing.metadata[i].key) +
               2 * GRPC_SLICE_LENGTH(r->recv_trailing.metadata[i].value) + 8;
    char *t = malloc(cap);
    if (!t)
        return -1;
    n += (size_t)snprintf(t, cap, "grpc-status:%d\r\n", (int)r->status);
    if (GRPC_SLICE_LENGTH(r->details)) {
        memcpy(t + n, "grpc-message:", 13);
        n += 13;
        percent_encode((const char *)GRPC_SLICE_START_PTR(r->details), GRPC_SLICE_LENGTH(r->details), t + n,
                       cap - n - 2);
        n += strlen(t + n);
        memcpy(t + n, "\r\n", 2);
        n += 2;
    }
    for (size_t i = 0; i < r->recv_trailing.count; i++) {
        const grpc_metadata *m = &r->recv_trailing.metadata[i];
        if (md_reserved(&m->key))
            continue;
        char *v = md_value_text(m);
        if (!v)
            continue;
        size_t kn = GRPC_SLICE_LENGTH(m->key), vn = strlen(v);
        memcpy(t + n, GRPC_SLICE_START_PTR(m->key), kn);
        n += kn;
        t[n++] = ':';
        memcpy(t + n, v, vn);
        n += vn;
        memcpy(t + n, "\r\n", 2);
        n += 2;
        free(v);
    }
    int rc = out_frame(r, 0x80, t, n);
    free(t);
    return rc;
}

/* Starts reading the next reply message. Under r->mu. */
static void start_read_locked(web_req *r)
{
    if (r->reading || r->msgs_done || r->http_closed)
        return;
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &r->recv_bb;
    r->refs++;
    r->reading = true;
    if (grpc_call_start_batch(r->call, &op, 1, &r->t_msg, NULL) != GRPC_CALL_OK) {
        r->refs--;
        r->reading = false;
        r->msgs_done = true;
    }
}

/* Wakes the connection if MHD is waiting for data. Under r->mu. */
static void wake_locked(web_req *r)
{
    r->headers_ready = true;
    if (r->suspended) {
        r->suspended = false;
        MHD_resume_connection(r->conn);
    }
}

/* ------------------------------------------------------ gateway thread */

/* How long the response waits after the server's initial metadata for
 * more: a call the server refuses at once answers trailers-only in the
 * same HTTP/2 frame, whose status completes just after the metadata; with
 * this wait such calls (and unary replies, which come with their status)
 * are answered whole, with the status in the headers or a Content-Length,
 * instead of racing the status into a chunked body. */
#define HEADERS_WAIT_MS 5

static void *gateway_main(void *arg)
{
    hw_grpc_web *web = arg;
    /* Requests whose initial metadata came, to be woken at `due`. */
    web_req **deferred = NULL;
    size_t n_deferred = 0, cap_deferred = 0;
    gpr_timespec due = gpr_inf_future(GPR_CLOCK_MONOTONIC);
    for (;;) {
        grpc_event ev =
            grpc_completion_queue_next(web->cq, n_deferred ? due : gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN || ev.type == GRPC_QUEUE_TIMEOUT) {
            for (size_t i = 0; i < n_deferred; i++) {
                web_req *d = deferred[i];
                pthread_mutex_lock(&d->mu);
                wake_locked(d);
                pthread_mutex_unlock(&d->mu);
                req_unref(d);
            }
            n_deferred = 0;
            if (ev.type == GRPC_QUEUE_SHUTDOWN)
                break;
            continue;
        }
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        web_tag *t = ev.tag;
        web_req *r = atomic_load_explicit(&t->r, memory_order_acquire);
        bool defer = false;
        pthread_mutex_lock(&r->mu);
        switch (t->kind) {
        case TAG_START:
            r->md_received = true;
            start_read_locked(r);
            defer = true;
            break;
        case TAG_MSG:
            r->reading = false;
            if (ev.success && r->recv_bb) {
                grpc_byte_buffer_reader rd;
                if (grpc_byte_buffer_reader_init(&rd, r->recv_bb)) {
                    grpc_slice s = grpc_byte_buffer_reader_readall(&rd);
                    grpc_byte_buffer_reader_destroy(&rd);
                    if (out_frame(r, 0x00, GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s)) != 0)
                        grpc_call_cancel_with_status(r->call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                                                     "grpc-web: out of memory", NULL);
                    grpc_slice_unref(s);
                    r->n_msgs++;
                }
                grpc_byte_buffer_destroy(r->recv_bb);
                r->recv_bb = NULL;
                if (r->out_len - r->out_off < OUT_HIGH_WATER)
                    start_read_locked(r);
            } else {
                r->msgs_done = true;
            }
            break;
        case TAG_STATUS:
            r->status_received = true;
            break;
        }
        if (r->status_received && (r->msgs_done || r->http_closed) && !r->finished) {
            if (r->msgs_done && out_trailers_locked(r) != 0)
                r->status = GRPC_STATUS_RESOURCE_EXHAUSTED;
            r->finished = true;
        }
        if (defer && n_deferred == cap_deferred) {
            size_t cap = cap_deferred ? 2 * cap_deferred : 16;
            web_req **d = realloc(deferred, cap * sizeof *d);
            if (d) {
                deferred = d;
                cap_deferred = cap;
            }
        }
        if (defer && n_deferred < cap_deferred) {
            if (n_deferred == 0)
                due = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                   gpr_time_from_millis(HEADERS_WAIT_MS, GPR_TIMESPAN));
            r->refs++;
            deferred[n_deferred++] = r;
        } else if (r->finished || r->n_msgs > 0 || defer || r->headers_ready) {
            wake_locked(r);
        }
        pthread_mutex_unlock(&r->mu);
        req_unref(r);
    }
    free(deferred);
    return NULL;
}

/* -------------------------------------------------------- MHD callbacks */

typedef struct {
    web_req *r;
    bool bad;
} md_walk;

static bool skip_header(const char *k)
{
    static const char *const skip[] = {
        "host",
        "connection",
        "content-type",
        "content-length",
        "accept",
        "accept-encoding",
        "accept-language",
        "accept-charset",
        "origin",
        "referer",
        "user-agent",
        "x-grpc-web",
        "te",
        "keep-alive",
        "transfer-encoding",
        "upgrade",
        "cookie",
        "expect",
        "pragma",
        "cache-control",
        "dnt",
        "priority",
        "via",
        "forwarded",
    };
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
        if (strcmp(k, skip[i]) == 0)
            return true;
    return strncmp(k, "sec-", 4) == 0 || strncmp(k, "proxy-", 6) == 0 || strncmp(k, "grpc-", 5) == 0 ||
           strncmp(k, "access-control-", 15) == 0;
}

/* Request headers to metadata: keys lower-case, names gRPC accepts only;
 * "-bin" values base64-decoded. */
static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    md_walk *w = cls;
    web_req *r = w->r;
    char k[128];
    size_t kn = strlen(key);
    if (kn == 0 || kn >= sizeof k || !value)
        return MHD_YES;
    for (size_t i = 0; i < kn; i++) {
        char c = (char)tolower((unsigned char)key[i]);
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
            return MHD_YES;
        k[i] = c;
    }
    k[kn] = '\0';
    if (skip_header(k))
        return MHD_YES;
    if (r->n_send_md == MAX_FORWARDED_HEADERS) {
        w->bad = true;
        return MHD_NO;
    }
    size_t vn = strlen(value);
    grpc_slice v;
    if (kn >= 4 && strcmp(k + kn - 4, "-bin") == 0) {
        char *d = malloc(vn + 1);
        if (!d)
            return MHD_YES;
        memcpy(d, value, vn);
        long dn = b64_decode_inplace(d, vn);
        if (dn < 0) {
            free(d);
            w->bad = true;
            return MHD_NO;
        }
        v = grpc_slice_from_copied_buffer(d, (size_t)dn);
        free(d);
    } else {
        for (size_t i = 0; i < vn; i++)
            if ((unsigned char)value[i] < 0x20 || (unsigned char)value[i] > 0x7e)
                return MHD_YES;
        v = grpc_slice_from_copied_buffer(value, vn);
    }
    r->send_md[r->n_send_md].key = grpc_slice_from_copied_buffer(k, kn);
    r->send_md[r->n_send_md].value = v;
    r->n_send_md++;
    return MHD_YES;
}

/* "grpc-timeout: 1500m" -> a deadline. Returns false when malformed. */
static bool parse_timeout(const char *s, gpr_timespec *deadline)
{
    size_t n = strlen(s);
    if (n < 2 || n > 9)
        return false;
    int64_t v = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    gpr_timespec d;
    switch (s[n - 1]) {
    case 'H':
        d = gpr_time_from_seconds(v * 3600, GPR_TIMESPAN);
        break;
    case 'M':
        d = gpr_time_from_seconds(v * 60, GPR_TIMESPAN);
        break;
    case 'S':
        d = gpr_time_from_seconds(v, GPR_TIMESPAN);
        break;
    case 'm':
        d = gpr_time_from_millis(v, GPR_TIMESPAN);
        break;
    case 'u':
        d = gpr_time_from_micros(v, GPR_TIMESPAN);
        break;
    case 'n':
        d = gpr_time_from_nanos(v, GPR_TIMESPAN);
        break;
    default:
        return false;
    }
    *deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), d);
    return true;
}

static bool origin_allowed(const hw_grpc_web *web, const char *origin, char *allow, size_t len)
{
    allow[0] = '\0';
    if (!origin || !*origin)
        return false;
    for (size_t i = 0; i < web->o.n_cors_origins; i++) {
        if (strcmp(web->o.cors_origins[i], "*") == 0) {
            snprintf(allow, len, "*");
            return true;
        }
        if (strcmp(web->o.cors_origins[i], origin) == 0 && strlen(origin) < len) {
            snprintf(allow, len, "%s", origin);
            return true;
        }
    }
    return false;
}

static enum MHD_Result preflight(web_req *r)
{
    if (!r->allow_origin[0])
        return queue_plain(r, MHD_HTTP_FORBIDDEN, "origin not allowed\n");
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->allow_origin);
    MHD_add_response_header(resp, "Access-Control-Allow-Methods", "POST, OPTIONS");
    MHD_add_response_header(resp, "Access-Control-Allow-Headers", ALLOWED_HEADERS);
    MHD_add_response_header(resp, "Access-Control-Expose-Headers", EXPOSED_HEADERS);
    MHD_add_response_header(resp, "Access-Control-Max-Age", "86400");
    MHD_add_response_header(resp, "Vary", "Origin");
    r->responded = true;
    enum MHD_Result q = MHD_queue_response(r->conn, MHD_HTTP_NO_CONTENT, resp);
    MHD_destroy_response(resp);
    return q;
}

/* Checks the first request line and headers; queues an answer when the
 * request goes no further. */
static enum MHD_Result begin_request(web_req *r, const char *url, const char *method)
{
    hw_grpc_web *web = r->web;
    const char *origin = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin");
    origin_allowed(web, origin, r->allow_origin, sizeof r->allow_origin);
    if (strcmp(method, "OPTIONS") == 0)
        return preflight(r);
    if (strcmp(method, "POST") != 0)
        return queue_plain(r, MHD_HTTP_METHOD_NOT_ALLOWED, "gRPC-Web takes POST\n");
    const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Type");
    char ctl[64] = "";
    if (ct) {
        size_t i = 0;
        for (; ct[i] && ct[i] != ';' && i + 1 < sizeof ctl; i++)
            ctl[i] = (char)tolower((unsigned char)ct[i]);
        ctl[i] = '\0';
        while (i > 0 && ctl[i - 1] == ' ')
            ctl[--i] = '\0';
    }
    if (strcmp(ctl, "application/grpc-web") == 0 || strcmp(ctl, "application/grpc-web+proto") == 0)
        r->text = false;
    else if (strcmp(ctl, "application/grpc-web-text") == 0 ||
             strcmp(ctl, "application/grpc-web-text+proto") == 0)
        r->text = true;
    else
        return queue_plain(
            r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
            "content-type must be application/grpc-web[+proto] or application/grpc-web-text[+proto]\n");
    /* /package.Service/Method, nothing else. */
    size_t slashes = 0, n = strlen(url);
    bool ok = n > 3 && url[0] == '/' && n < 256;
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c == '/')
            slashes++;
        else if (!(isalnum(c) || c == '.' || c == '_' || c == '-'))
            ok = false;
    }
    if (!ok || slashes != 2 || url[n - 1] == '/' || url[1] == '/')
        return fail_local(r, GRPC_STATUS_UNIMPLEMENTED, "grpc-web: the path must be /package.Service/Method");
    /* The most one message frame can take: the gRPC limit plus its prefix
     * (4/3 of it, and some padding, in base64). */
    size_t lim = (size_t)web->o.max_message_bytes + 5;
    r->body_limit = r->text ? lim / 3 * 4 + 64 : lim;
    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Length");
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(cl, &end, 10);
        if (errno || *end || v > r->body_limit)
            r->too_large = true;
    }
    if (r->too_large)
        return fail_local(r, GRPC_STATUS_RESOURCE_EXHAUSTED,
                          "grpc-web: the request is larger than the server's message limit");
    return MHD_YES;
}

/* The body is in: checks the frame and starts the call. Returns MHD_YES
 * with r->started (the call runs) or an answer queued. */
static enum MHD_Result start_call(web_req *r, const char *url)
{
    hw_grpc_web *web = r->web;
    if (r->too_large)
        return fail_local(r, GRPC_STATUS_RESOURCE_EXHAUSTED,
                          "grpc-web: the request is larger than the server's message limit");
    size_t n = r->body_len;
    if (r->text) {
        long dn = b64_decode_inplace(r->body, n);
        if (dn < 0)
            return fail_local(r, GRPC_STATUS_INVALID_ARGUMENT, "grpc-web: the body is not base64");
        n = (size_t)dn;
    }
    const unsigned char *b = (const unsigned char *)r->body;
    if (n < 5)
        return fail_local(r, GRPC_STATUS_INVALID_ARGUMENT, "grpc-web: the body must hold one message frame");
    uint64_t len = (uint64_t)b[1] << 24 | (uint64_t)b[2] << 16 | (uint64_t)b[3] << 8 | b[4];
    if (b[0] & 0x01)
        return fail_local(r, GRPC_STATUS_UNIMPLEMENTED, "grpc-web: compressed messages are not accepted");
    if (b[0] != 0)
        return fail_local(r, GRPC_STATUS_INVALID_ARGUMENT, "grpc-web: the request frame's flags must be 0");
    if (len > (uint64_t)web->o.max_message_bytes)
        return fail_local(r, GRPC_STATUS_RESOURCE_EXHAUSTED,
                          "grpc-web: the request is larger than the server's message limit");
    if (5 + len != n)
        return fail_local(r, GRPC_STATUS_INVALID_ARGUMENT,
                          "grpc-web: the body must hold exactly one message frame");
    const char *enc = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "grpc-encoding");
    if (enc && strcmp(enc, "identity") != 0)
        return fail_local(r, GRPC_STATUS_UNIMPLEMENTED, "grpc-web: compressed messages are not accepted");

    gpr_timespec deadline = gpr_inf_future(GPR_CLOCK_REALTIME);
    const char *to = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "grpc-timeout");
    if (to && !parse_timeout(to, &deadline))
        return fail_local(r, GRPC_STATUS_INVALID_ARGUMENT, "grpc-web: malformed grpc-timeout");
    md_walk w = {r, false};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, collect_header, &w);
    if (w.bad)
        return fail_local(r, GRPC_STATUS_INVALID_ARGUMENT,
                          "grpc-web: too many headers, or a -bin header that is not base64");

    grpc_slice payload = grpc_slice_from_copied_buffer(r->body + 5, (size_t)len);
    r->send_bb = grpc_raw_byte_buffer_create(&payload, 1);
    grpc_slice_unref(payload);
    grpc_slice path = grpc_slice_from_copied_string(url);
    r->call = grpc_channel_create_call(web->channel, NULL, GRPC_PROPAGATE_DEFAULTS, web->cq, path, NULL,
                                       deadline, NULL);
    grpc_slice_unref(path);
    free(r->body);
    r->body = NULL;
    if (!r->call || !r->send_bb)
        return fail_local(r, GRPC_STATUS_UNAVAILABLE, "grpc-web: cannot create the call");

    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = r->n_send_md;
    ops[0].data.send_initial_metadata.metadata = r->n_send_md ? r->send_md : NULL;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = r->send_bb;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &r->recv_initial;
    grpc_op st;
    memset(&st, 0, sizeof st);
    st.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    st.data.recv_status_on_client.trailing_metadata = &r->recv_trailing;
    st.data.recv_status_on_client.status = &r->status;
    st.data.recv_status_on_client.status_details = &r->details;

    pthread_mutex_lock(&r->mu);
    r->refs += 2;
    grpc_call_error e1 = grpc_call_start_batch(r->call, ops, 4, &r->t_start, NULL);
    if (e1 != GRPC_CALL_OK)
        r->refs--;
    grpc_call_error e2 = grpc_call_start_batch(r->call, &st, 1, &r->t_status, NULL);
    if (e2 != GRPC_CALL_OK)
        r->refs--;
    pthread_mutex_unlock(&r->mu);
    if (e1 != GRPC_CALL_OK || e2 != GRPC_CALL_OK) {
        grpc_call_cancel(r->call, NULL);
        return fail_local(r, GRPC_STATUS_INVALID_ARGUMENT, "grpc-web: the call's metadata was refused");
    }
    r->started = true;
    return MHD_YES;
}

static ssize_t read_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    web_req *r = cls;
    ssize_t n;
    pthread_mutex_lock(&r->mu);
    if (r->out_off < r->out_len) {
        size_t k = r->out_len - r->out_off;
        if (k > max)
            k = max;
        memcpy(buf, r->out + r->out_off, k);
        r->out_off += k;
        if (r->out_len - r->out_off < OUT_HIGH_WATER / 2 && !r->finished)
            start_read_locked(r);
        n = (ssize_t)k;
    } else if (r->finished) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        if (atomic_load(&r->web->stopping)) {
            n = MHD_CONTENT_READER_END_WITH_ERROR;
        } else {
            r->suspended = true;
            MHD_suspend_connection(r->conn);
            n = 0;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return n;
}

static void free_body(void *cls)
{
    req_unref(cls);
}

/* The call has its initial metadata (or ended): the response, to queue
 * once r->mu is released. Under r->mu. */
static struct MHD_Response *response_locked(web_req *r)
{
    struct MHD_Response *resp;
    if (r->finished && r->n_msgs == 0)
        return trailers_only(r, r->status, (const char *)GRPC_SLICE_START_PTR(r->details),
                             GRPC_SLICE_LENGTH(r->details));
    if (r->finished) {
        resp = MHD_create_response_from_buffer(r->out_len - r->out_off, r->out + r->out_off,
                                               MHD_RESPMEM_MUST_COPY);
        r->out_off = r->out_len = 0;
    } else {
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, read_body, r, free_body);
        if (resp)
            r->refs++;
    }
    if (!resp)
        return NULL;
    MHD_add_response_header(resp, "Content-Type", content_type_of(r));
    add_md_headers(resp, &r->recv_initial);
    add_cors(r, resp);
    return resp;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size,
                                  void **con_cls)
{
    (void)version;
    hw_grpc_web *web = cls;
    web_req *r = *con_cls;
    if (!r) {
        r = req_new(web, conn);
        if (!r)
            return MHD_NO;
        *con_cls = r;
        return begin_request(r, url, method);
    }
    if (r->responded) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!r->too_large && r->body_len + *upload_size > r->body_limit) {
            r->too_large = true;
            free(r->body);
            r->body = NULL;
        }
        if (!r->too_large) {
            if (r->body_len + *upload_size > r->body_cap) {
                size_t cap = r->body_cap ? r->body_cap : 1024;
                while (cap < r->body_len + *upload_size)
                    cap *= 2;
                char *b = realloc(r->body, cap);
                if (!b)
                    return MHD_NO;
                r->body = b;
                r->body_cap = cap;
            }
            memcpy(r->body + r->body_len, upload, *upload_size);
            r->body_len += *upload_size;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (!r->started) {
        enum MHD_Result q = start_call(r, url);
        if (r->responded || q != MHD_YES)
            return q;
    }
    pthread_mutex_lock(&r->mu);
    if (!r->headers_ready && !r->finished) {
        if (atomic_load(&web->stopping)) {
            grpc_call_cancel(r->call, NULL);
            pthread_mutex_unlock(&r->mu);
            return fail_local(r, GRPC_STATUS_UNAVAILABLE, "grpc-web: the server is stopping");
        }
        r->suspended = true;
        MHD_suspend_connection(conn);
        pthread_mutex_unlock(&r->mu);
        return MHD_YES;
    }
    struct MHD_Response *resp = response_locked(r);
    pthread_mutex_unlock(&r->mu);
    return queue(r, MHD_HTTP_OK, resp);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode why)
{
    (void)cls;
    (void)conn;
    (void)why;
    web_req *r = *con_cls;
    if (!r)
        return;
    *con_cls = NULL;
    pthread_mutex_lock(&r->mu);
    r->http_closed = true;
    if (r->call && !r->finished)
        grpc_call_cancel(r->call, NULL);
    pthread_mutex_unlock(&r->mu);
    req_unref(r);
}

/* ------------------------------------------------------------ lifecycle */

int hw_grpc_web_start(hw_grpc_web **out, const hw_grpc_web_options *o, char *err, size_t errlen)
{
    *out = NULL;
    if (o->n_listen < 1 || !o->target || o->max_message_bytes < 1) {
        snprintf(err, errlen, "invalid gRPC-Web gateway options");
        return -1;
    }
    hw_grpc_web *web = calloc(1, sizeof *web);
    if (!web) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    web->o = *o;
    pthread_mutex_init(&web->mu, NULL);
    pthread_cond_init(&web->cv, NULL);
    web->target = strdup(o->target);
    web->httpd = calloc(o->n_listen * HW_LISTEN_MAX, sizeof *web->httpd);
    web->bound = calloc(o->n_listen * HW_LISTEN_MAX, sizeof *web->bound);
    if (!web->target || !web->httpd || !web->bound) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    hw_grpc_runtime_prepare();
    grpc_init();
    web->grpc_started = true;
    grpc_arg args[] = {
        {GRPC_ARG_INTEGER, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, {.integer = o->max_message_bytes}},
        {GRPC_ARG_INTEGER, GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, {.integer = o->max_message_bytes}},
    };
    grpc_channel_args cargs = {sizeof args / sizeof args[0], args};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    web->channel = grpc_channel_create(web->target, creds, &cargs);
    grpc_channel_credentials_release(creds);
    web->cq = grpc_completion_queue_create_for_next(NULL);
    if (!web->channel || !web->cq) {
        snprintf(err, errlen, "cannot create the gRPC-Web gateway's channel to %s", web->target);
        goto fail;
    }
    if (pthread_create(&web->thread, NULL, gateway_main, web) != 0) {
        snprintf(err, errlen, "cannot start the gRPC-Web gateway thread");
        goto fail;
    }
    web->thread_started = true;
    for (size_t i = 0; i < o->n_listen; i++) {
        hw_listen_set set;
        if (hw_listen_open(o->listen[i], &set, err, errlen) != 0)
            goto fail;
        const char *colon = strrchr(o->listen[i], ':');
        int hostlen = colon ? (int)(colon - o->listen[i]) : 0;
        for (size_t j = 0; j < set.n; j++) {
            struct MHD_Daemon *d = MHD_start_daemon(
                MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL,
                on_request, web, MHD_OPTION_LISTEN_SOCKET, set.fds[j], MHD_OPTION_NOTIFY_COMPLETED,
                on_completed, web, MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_CONNECTION_LIMIT, 1000u,
                MHD_OPTION_END);
            if (!d) {
                for (size_t k = j; k < set.n; k++)
                    close(set.fds[k]);
                snprintf(err, errlen, "cannot listen on %.200s: the HTTP server did not start", o->listen[i]);
                goto fail;
            }
            snprintf(web->bound[web->n_httpd], sizeof web->bound[0], "%.*s:%d", hostlen ? hostlen : 7,
                     hostlen ? o->listen[i] : "0.0.0.0", set.port);
            web->httpd[web->n_httpd++] = d;
        }
    }
    *out = web;
    return 0;
fail:
    hw_grpc_web_stop(web, 0);
    return -1;
}

const char *hw_grpc_web_bound_address(const hw_grpc_web *web, size_t i)
{
    return web && i < web->n_httpd ? web->bound[i] : NULL;
}

/* Waits up to ms for every request to end. Returns true when none is left. */
static bool wait_requests(hw_grpc_web *web, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&web->mu);
    while (web->reqs && pthread_cond_timedwait(&web->cv, &web->mu, &until) != ETIMEDOUT) {
    }
    bool none = web->reqs == NULL;
    pthread_mutex_unlock(&web->mu);
    return none;
}

void hw_grpc_web_stop(hw_grpc_web *web, int timeout_ms)
{
    if (!web)
        return;
    /* No new connection; the answers under way are written out. */
    for (size_t i = 0; i < web->n_httpd; i++) {
        MHD_socket s = MHD_quiesce_daemon(web->httpd[i]);
        if (s != MHD_INVALID_SOCKET)
            close(s);
    }
    if (web->n_httpd)
        wait_requests(web, timeout_ms);
    /* What is left: end the calls, and wake every suspended connection
     * (MHD must not stop with one suspended); from now on none suspends. */
    atomic_store(&web->stopping, true);
    pthread_mutex_lock(&web->mu);
    for (web_req *r = web->reqs; r; r = r->next) {
        pthread_mutex_lock(&r->mu);
        if (r->call && !r->finished)
            grpc_call_cancel(r->call, NULL);
        wake_locked(r);
        pthread_mutex_unlock(&r->mu);
    }
    pthread_mutex_unlock(&web->mu);
    for (size_t i = 0; i < web->n_httpd; i++)
        MHD_stop_daemon(web->httpd[i]);
    /* The cancelled calls' completions come back on the gateway thread. */
    if (web->n_httpd)
        wait_requests(web, 5000);
    if (web->cq) {
        grpc_completion_queue_shutdown(web->cq);
        if (web->thread_started)
            pthread_join(web->thread, NULL);
        grpc_completion_queue_destroy(web->cq);
    }
    if (web->channel)
        grpc_channel_destroy(web->channel);
    if (web->grpc_started)
        grpc_shutdown();
    pthread_mutex_destroy(&web->mu);
    pthread_cond_destroy(&web->cv);
    free(web->httpd);
    free(web->bound);
    free(web->target);
    free(web);
}
