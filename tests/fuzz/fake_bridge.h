/*
 * fake_bridge: a bridge's edges without a network, for the bridges' fuzz
 * harnesses (which include a bridge's main.c). It stands in for
 *  - clients/lib/httpd.c's request functions: a request is an
 *    fz_http_request (method, path, headers, query, body); the answer
 *    (status, content type, body) is recorded;
 *  - clients/lib/drain.c's spool: messages are checked (every field a
 *    bridge must give is there) and counted, not stored;
 *  - clients/lib/client.c's unary call: helpwired is always down
 *    (UNAVAILABLE at once), so a bridge takes its spool path.
 * The replay test's executable defines these functions, which take
 * precedence over the shared libraries'; tests/fuzz.sh links the fakes
 * first with --allow-multiple-definition.
 */
#ifndef HW_FUZZ_FAKE_BRIDGE_H
#define HW_FUZZ_FAKE_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>

#include "clients/lib/httpd.h"

#define FZ_HTTP_MAX_PAIRS 8

typedef struct fz_http_request {
    br_httpd_request r; /* first: the handler's view */
    const char *headers[FZ_HTTP_MAX_PAIRS][2];
    size_t n_headers;
    const char *query[FZ_HTTP_MAX_PAIRS][2];
    size_t n_query;
    /* The answer. */
    unsigned status;
    char content_type[64];
    char *resp_body; /* malloc'd, NUL-terminated; NULL for a queued response */
    size_t resp_len;
    int answers; /* respond/queue calls, refused ones too */
} fz_http_request;

/* A request for method and url with body[0..len) (copied, NUL-terminated). */
void fz_http_init(fz_http_request *q, const char *method, const char *url, const char *body, size_t len);

/* Checks the answer: exactly one, a real HTTP status, and a JSON body that
 * parses when the content type says JSON. Aborts otherwise. Frees it. */
void fz_http_check_and_free(fz_http_request *q);

/* The fake drain: whether br_drain_idle says the spool is empty (a bridge
 * that may route directly then tries helpwired first), and the number of
 * messages spooled so far. */
void fz_drain_set_idle(bool idle);
size_t fz_drain_spooled(void);

#endif
