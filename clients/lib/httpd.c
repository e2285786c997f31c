/*
 * httpd: libmicrohttpd glue (see httpd.h). MHD calls the access handler
 * several times per request: first to create our per-request state, then
 * with body chunks, then once with nothing left, which is when the
 * bridge's handler runs with the whole body.
 */
#include "clients/lib/httpd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/base/listen.h"

struct br_httpd {
    struct MHD_Daemon *daemon[HW_LISTEN_MAX]; /* one per address the listen address stands for */
    size_t n;
    br_httpd_options o;
    unsigned port;
};

typedef struct req_state {
    char *body;
    size_t len, cap;
    int too_large;
} req_state;

static void completed_cb(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode t)
{
    req_state *s = *con_cls;
    if (s) {
        free(s->body);
        free(s);
        *con_cls = NULL;
    }
}

int br_httpd_queue(br_httpd_request *r, unsigned status, struct MHD_Response *resp)
{
    if (!resp)
        return -1;
    if (r->responded) {
        MHD_destroy_response(resp);
        return -1;
    }
    r->responded = 1;
    if (r->allow_origin) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->allow_origin);
        MHD_add_response_header(resp, "Access-Control-Expose-Headers", "Retry-After");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Origin");
    }
    enum MHD_Result q = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    return q == MHD_YES ? 0 : -1;
}

int br_httpd_respond(br_httpd_request *r, unsigned status, const char *content_type, const char *body,
                     size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return -1;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    return br_httpd_queue(r, status, resp);
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
    br_httpd *h = cls;
    req_state *s = *con_cls;
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return MHD_NO;
        *con_cls = s;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (s->too_large || s->len + n > h->o.max_body_bytes) {
            s->too_large = 1;
            return MHD_YES;
        }
        if (s->len + n + 1 > s->cap) {
            size_t cap = s->cap ? s->cap : 4096;
            while (cap < s->len + n + 1)
                cap *= 2;
            char *b = realloc(s->body, cap);
            if (!b)
                return MHD_NO;
            s->body = b;
            s->cap = cap;
        }
        memcpy(s->body + s->len, upload_data, n);
        s->len += n;
        s->body[s->len] = '\0';
        return MHD_YES;
    }
    br_httpd_request r = {conn, method, url, s->body ? s->body : "", s->len, 0, NULL};
    if (s->too_large) {
        static const char msg[] = "{\"error\":\"request body too large\"}";
        br_httpd_respond(&r, MHD_HTTP_CONTENT_TOO_LARGE, "application/json", msg, sizeof msg - 1);
        return MHD_YES;
    }
    h->o.handler(h->o.handler_arg, &r);
    if (!r.responded) {
        static const char msg[] = "{\"error\":\"internal error\"}";
        if (br_httpd_respond(&r, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/json", msg, sizeof msg - 1) !=
            0)
            return MHD_NO;
    }
    return MHD_YES;
}

int br_httpd_start(br_httpd **out, const br_httpd_options *o, char *err, size_t errlen)
{
    hw_listen_set set;
    if (hw_listen_open(o->listen, &set, err, errlen) != 0)
        return -1;
    br_httpd *h = calloc(1, sizeof *h);
    if (!h) {
        hw_listen_close(&set);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    h->o = *o;
    if (!h->o.max_body_bytes)
        h->o.max_body_bytes = 1 << 20;
    if (!h->o.idle_timeout_s)
        h->o.idle_timeout_s = 60;
    h->port = (unsigned)set.port;
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL | MHD_USE_ITC;
    for (size_t i = 0; i < set.n; i++) {
        /* The daemon owns its socket from here (MHD_stop_daemon closes it). */
        h->daemon[i] =
            MHD_start_daemon(flags, 0, NULL, NULL, access_cb, h, MHD_OPTION_LISTEN_SOCKET, set.fds[i],
                             MHD_OPTION_NOTIFY_COMPLETED, completed_cb, NULL, MHD_OPTION_CONNECTION_TIMEOUT,
                             h->o.idle_timeout_s, MHD_OPTION_CONNECTION_LIMIT, 1000u, MHD_OPTION_END);
        if (!h->daemon[i]) {
            for (size_t k = i; k < set.n; k++)
                close(set.fds[k]);
            snprintf(err, errlen, "cannot listen on %.200s: the HTTP server did not start", o->listen);
            br_httpd_stop(h);
            return -1;
        }
        h->n = i + 1;
    }
    *out = h;
    return 0;
}

void br_httpd_quiesce(br_httpd *h)
{
    for (size_t i = 0; h && i < h->n; i++) {
        MHD_socket sock = MHD_quiesce_daemon(h->daemon[i]);
        if (sock != MHD_INVALID_SOCKET)
            close(sock);
    }
}

void br_httpd_stop(br_httpd *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++)
        MHD_stop_daemon(h->daemon[i]);
    free(h);
}

unsigned br_httpd_port(const br_httpd *h)
{
    return h->port;
}

const char *br_httpd_header(const br_httpd_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *br_httpd_query(const br_httpd_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}
