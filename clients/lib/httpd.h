/*
 * httpd: the bridges' inbound HTTP side on libmicrohttpd: webhooks
 * (Telegram, WhatsApp) and the web chat. It binds one listen address
 * (port 0 picks a free one, reported by br_httpd_port; a port in use is
 * refused), buffers each request body
 * up to a limit (413 beyond it), and calls the bridge's handler once per
 * request with the whole raw body, which signature checks need.
 *
 * Threading: a thread per connection (MHD_USE_THREAD_PER_CONNECTION), so a
 * handler may block (the web chat's live stream waits for events) without
 * holding up other clients. Handlers run concurrently and must be
 * thread-safe.
 */
#ifndef BR_HTTPD_H
#define BR_HTTPD_H

#include <stddef.h>

#include <microhttpd.h>

typedef struct br_httpd br_httpd;

/* One complete request as the handler sees it. Valid during the call. */
typedef struct br_httpd_request {
    struct MHD_Connection *conn;
    const char *method; /* "GET", "POST", ... */
    const char *url;    /* path without the query string */
    const char *body;   /* NUL-terminated raw body ("" when none) */
    size_t body_len;
    int responded; /* set by the respond functions */
    /* Set by a handler that serves other origins (CORS): every answer to
     * the request then carries Access-Control-Allow-Origin with this value
     * (borrowed: it must outlive the answer call), Vary: Origin and
     * Access-Control-Expose-Headers: Retry-After. NULL: none. */
    const char *allow_origin;
} br_httpd_request;

/* The bridge's handler: must answer with br_httpd_respond or
 * br_httpd_queue (else the client gets 500). */
typedef void (*br_httpd_handler)(void *arg, br_httpd_request *r);

typedef struct br_httpd_options {
    const char *listen;      /* as server/base/listen.h: "host:port", "[v6]:port", ":port"; a
                              * host name serves every address it stands for */
    size_t max_body_bytes;   /* 0 means 1 MiB */
    unsigned idle_timeout_s; /* close idle connections; 0 means 60 */
    br_httpd_handler handler;
    void *handler_arg;
} br_httpd_options;

/* Binds and starts serving. Returns 0, or -1 with err ("cannot listen on
 * ADDR: why": a bad address, a port in use, a name not found). */
int br_httpd_start(br_httpd **out, const br_httpd_options *o, char *err, size_t errlen);

/* Stops accepting new connections at once (existing ones continue). */
void br_httpd_quiesce(br_httpd *h);

/* Stops and frees: waits for every connection thread, so handlers that
 * block must have been woken first. NULL is ignored. */
void br_httpd_stop(br_httpd *h);

/* The bound port. */
unsigned br_httpd_port(const br_httpd *h);

/* A request header (case-insensitive name) or query argument; NULL when
 * absent. Valid during the handler call. */
const char *br_httpd_header(const br_httpd_request *r, const char *name);
const char *br_httpd_query(const br_httpd_request *r, const char *name);

/* Answers with a copy of body (len bytes) and the given content type plus
 * `Cache-Control: no-store`. Returns 0, or -1 when already answered or
 * out of memory. */
int br_httpd_respond(br_httpd_request *r, unsigned status, const char *content_type, const char *body,
                     size_t len);

/* Answers with a response the handler built (ownership passes here). */
int br_httpd_queue(br_httpd_request *r, unsigned status, struct MHD_Response *resp);

#endif
