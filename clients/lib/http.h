/*
 * http: outbound HTTP for the bridges over libcurl: one request with
 * connect and total timeouts, an optional bearer token, a bounded response
 * body, and abort as soon as a stop is requested; plus a retrying variant
 * that backs off on transport errors, 408, 429 (honouring Retry-After, or a
 * caller's hook for APIs that put the delay in the body) and 5xx.
 *
 * curl_global_init must have been called in main before any thread uses
 * this. Every call uses its own easy handle, so calls are thread-safe.
 * Request URLs may embed secrets (Telegram's /bot<token>/), so nothing
 * here logs a URL; the caller names the request (`what`) for logs.
 */
#ifndef BR_HTTP_H
#define BR_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "clients/lib/backoff.h"
#include "clients/lib/stop.h"
#include "server/base/log.h"

typedef struct br_http_request {
    const char *method;       /* "GET" or "POST" */
    const char *url;          /* may contain secrets: never logged */
    const char *bearer;       /* Authorization: Bearer <bearer>, or NULL */
    const char *content_type; /* for a body, e.g. "application/json" */
    const char *body;         /* request body or NULL */
    size_t body_len;
    int timeout_ms;            /* whole transfer; 0 means 30000 */
    int connect_timeout_ms;    /* 0 means 5000 */
    size_t max_response_bytes; /* 0 means 1 MiB; more is an error */
    br_stop *stop;             /* ends retry sleeps when a stop is requested; may be NULL */
    bool abort_on_stop;        /* also abort a transfer in progress (long polls); leave
                                * false for sends, whose outcome must be known */
    bool (*abort_fn)(void *arg); /* with abort_on_stop: also abort when this says true
                                  * (a lease lost); may be NULL */
    void *abort_arg;
} br_http_request;

typedef struct br_http_response {
    long status; /* HTTP status, 0 when none arrived */
    char *body;  /* NUL-terminated, malloc'd (may be NULL) */
    size_t body_len;
    int retry_after_s; /* Retry-After header in seconds, -1 if absent */
    char error[256];   /* transport error text (no URL) */
} br_http_response;

/* Writes base without its trailing slashes, then the printf-formatted
 * rest (which starts with '/'), into url of n bytes, truncating: the URL of
 * a channel API's method under its --api-base. */
void br_http_url(char *url, size_t n, const char *base, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Outcomes of br_http_do and br_http_do_retry. */
enum { BR_HTTP_OK = 0, BR_HTTP_ETRANSPORT = -1, BR_HTTP_ESTOPPED = -2 };

/* Performs one request. Returns BR_HTTP_OK when a response arrived (any
 * status; see resp->status), BR_HTTP_ETRANSPORT with resp->error on a
 * transport failure or timeout, BR_HTTP_ESTOPPED when aborted by a stop.
 * resp is always initialised; free it with br_http_response_free. */
int br_http_do(const br_http_request *req, br_http_response *resp);

/* Frees resp's body; resp may be reused. */
void br_http_response_free(br_http_response *resp);

/* Optional hook for br_http_do_retry: returns how long to wait (ms) before
 * retrying a 429 response, or -1 to use Retry-After / the backoff. */
typedef int (*br_http_retry_after_fn)(const br_http_response *resp, void *arg);

/* br_http_do repeated up to max_attempts (>= 1) times while the outcome is
 * retryable (transport error, 408, 429, 5xx), sleeping per b (or per
 * Retry-After / hook for 429) between attempts and logging each retry as
 * event=http_retry what=<what>. Returns like br_http_do, with the last
 * response in resp. */
int br_http_do_retry(const br_http_request *req, br_http_response *resp, int max_attempts, br_backoff *b,
                     br_http_retry_after_fn hook, void *hook_arg, const hw_log *log, const char *what);

#endif
