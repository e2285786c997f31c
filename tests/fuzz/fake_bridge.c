/*
 * fake_bridge: httpd requests, the drain and helpwired's unary calls for
 * the bridges' fuzz harnesses (see fake_bridge.h).
 */
#include "tests/fuzz/fake_bridge.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "clients/lib/client.h"
#include "clients/lib/drain.h"
#include "clients/lib/route.h"

static bool g_idle;
static size_t g_spooled;

void fz_http_init(fz_http_request *q, const char *method, const char *url, const char *body, size_t len)
{
    memset(q, 0, sizeof *q);
    char *copy = malloc(len + 1);
    if (!copy)
        abort();
    memcpy(copy, body, len);
    copy[len] = '\0';
    q->r.conn = (struct MHD_Connection *)q;
    q->r.method = method;
    q->r.url = url;
    q->r.body = copy;
    q->r.body_len = len;
}

void fz_http_check_and_free(fz_http_request *q)
{
    if (q->answers != 1 || q->r.responded != 1) {
        fprintf(stderr, "fake_bridge: %s %s answered %d times\n", q->r.method, q->r.url, q->answers);
        abort();
    }
    if (q->status < 100 || q->status > 599)
        abort();
    if (q->resp_body && strncmp(q->content_type, "application/json", 16) == 0) {
        json_error_t e;
        json_t *j = json_loadb(q->resp_body, q->resp_len, 0, &e);
        if (!j) {
            fprintf(stderr, "fake_bridge: %s %s answered %u with JSON that does not parse (%s): %.*s\n",
                    q->r.method, q->r.url, q->status, e.text, (int)q->resp_len, q->resp_body);
            abort();
        }
        json_decref(j);
    }
    free(q->resp_body);
    free((char *)q->r.body);
}

static const char *find(const char *const (*pairs)[2], size_t n, const char *name, bool nocase)
{
    for (size_t i = 0; i < n; i++)
        if (nocase ? strcasecmp(pairs[i][0], name) == 0 : strcmp(pairs[i][0], name) == 0)
            return pairs[i][1];
    return NULL;
}

const char *br_httpd_header(const br_httpd_request *r, const char *name)
{
    const fz_http_request *q = (const fz_http_request *)r->conn;
    return find(q->headers, q->n_headers, name, true);
}

const char *br_httpd_query(const br_httpd_request *r, const char *name)
{
    const fz_http_request *q = (const fz_http_request *)r->conn;
    return find(q->query, q->n_query, name, false);
}

int br_httpd_respond(br_httpd_request *r, unsigned status, const char *content_type, const char *body,
                     size_t len)
{
    fz_http_request *q = (fz_http_request *)r->conn;
    q->answers++;
    if (r->responded)
        return -1;
    r->responded = 1;
    q->status = status;
    snprintf(q->content_type, sizeof q->content_type, "%s", content_type ? content_type : "");
    q->resp_body = malloc(len + 1);
    if (!q->resp_body)
        abort();
    memcpy(q->resp_body, body, len);
    q->resp_body[len] = '\0';
    q->resp_len = len;
    return 0;
}

int br_httpd_queue(br_httpd_request *r, unsigned status, struct MHD_Response *resp)
{
    fz_http_request *q = (fz_http_request *)r->conn;
    q->answers++;
    if (!resp)
        abort(); /* the real one would answer 500 */
    MHD_destroy_response(resp);
    if (r->responded)
        return -1;
    r->responded = 1;
    q->status = status;
    return 0;
}

void fz_drain_set_idle(bool idle)
{
    g_idle = idle;
}

size_t fz_drain_spooled(void)
{
    return g_spooled;
}

int br_drain_spool(br_drain *d, const br_inbound *in, const int64_t *received_ms, size_t n, char *err,
                   size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        /* What Route needs of every inbound message. */
        if (in[i].channel == 0 || !in[i].channel_user_id || !in[i].text || !in[i].message_id ||
            !in[i].channel_user_id[0] || !in[i].message_id[0]) {
            fprintf(stderr, "fake_bridge: spooled a message without channel, user, text or id\n");
            abort();
        }
    }
    g_spooled += n;
    return 0;
}

bool br_drain_idle(br_drain *d)
{
    return g_idle;
}

void br_drain_wake(br_drain *d) {}

int hw_client_unary(hw_client *c, const char *method, const ProtobufCMessage *request,
                    const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **reply, int timeout_ms,
                    hw_client_status *st)
{
    /* The request must be one helpwired could decode. */
    if (!protobuf_c_message_check(request))
        abort();
    *reply = NULL;
    memset(st, 0, sizeof *st);
    st->code = 14; /* UNAVAILABLE */
    snprintf(st->message, sizeof st->message, "helpwired is down (fuzz)");
    st->retry_delay_ms = -1;
    return -1;
}
