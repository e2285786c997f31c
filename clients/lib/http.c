/*
 * http: libcurl easy handles, one per request (see http.h). The progress
 * callback polls the stop flag so a long poll (Telegram's getUpdates holds
 * up to its timeout) ends within a fraction of a second of SIGTERM.
 */
#include "clients/lib/http.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

typedef struct sink {
    br_http_response *resp;
    size_t cap;
    size_t max;
    int overflow;
} sink;

static size_t write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    sink *s = arg;
    size_t n = size * nmemb;
    br_http_response *r = s->resp;
    if (r->body_len + n > s->max) {
        s->overflow = 1;
        return 0;
    }
    if (r->body_len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 1024;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (!b)
            return 0;
        r->body = b;
        s->cap = cap;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return n;
}

static size_t header_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    br_http_response *r = arg;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    if (n > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
        char buf[32];
        size_t k = n - (sizeof name - 1);
        if (k >= sizeof buf)
            k = sizeof buf - 1;
        memcpy(buf, data + sizeof name - 1, k);
        buf[k] = '\0';
        char *end;
        long v = strtol(buf, &end, 10);
        if (end != buf && v >= 0 && v < 3600)
            r->retry_after_s = (int)v;
    }
    return n;
}

static int progress_cb(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    const br_http_request *req = arg;
    if (!req)
        return 0;
    if (req->stop && br_stop_requested(req->stop))
        return 1;
    return req->abort_fn && req->abort_fn(req->abort_arg) ? 1 : 0;
}

void br_http_response_free(br_http_response *resp)
{
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
}

int br_http_do(const br_http_request *req, br_http_response *resp)
{
    memset(resp, 0, sizeof *resp);
    resp->retry_after_s = -1;
    if (req->abort_on_stop && ((req->stop && br_stop_requested(req->stop)) ||
                               (req->abort_fn && req->abort_fn(req->abort_arg))))
        return BR_HTTP_ESTOPPED;
    int rc = BR_HTTP_ETRANSPORT;
    struct curl_slist *headers = NULL;
    char *auth = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    sink s = {resp, 0, req->max_response_bytes ? req->max_response_bytes : (1 << 20), 0};
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(resp->error, sizeof resp->error, "curl_easy_init failed");
        goto out;
    }
    curl_easy_setopt(c, CURLOPT_URL, req->url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(req->timeout_ms > 0 ? req->timeout_ms : 30000));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(req->connect_timeout_ms > 0 ? req->connect_timeout_ms : 5000));
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, resp);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, req->abort_on_stop ? (void *)req : NULL);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    headers = curl_slist_append(headers, "Accept: application/json");
    headers = curl_slist_append(headers, "Expect:");
    if (req->bearer) {
        if (asprintf(&auth, "Authorization: Bearer %s", req->bearer) < 0) {
            auth = NULL;
            snprintf(resp->error, sizeof resp->error, "out of memory");
            goto out;
        }
        headers = curl_slist_append(headers, auth);
    }
    if (req->body) {
        char ct[128];
        snprintf(ct, sizeof ct, "Content-Type: %s",
                 req->content_type ? req->content_type : "application/json");
        headers = curl_slist_append(headers, ct);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    }
    if (req->method && strcmp(req->method, "GET") == 0 && !req->body)
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    else if (req->method && strcmp(req->method, "POST") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    CURLcode cr = curl_easy_perform(c);
    if (cr == CURLE_ABORTED_BY_CALLBACK) {
        snprintf(resp->error, sizeof resp->error, "stopped");
        rc = BR_HTTP_ESTOPPED;
        goto out;
    }
    if (cr != CURLE_OK) {
        snprintf(resp->error, sizeof resp->error, "%s",
                 s.overflow ? "response too large" : (errbuf[0] ? errbuf : curl_easy_strerror(cr)));
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    rc = BR_HTTP_OK;
out:
    if (auth) {
        memset(auth, 0, strlen(auth));
        free(auth);
    }
    curl_slist_free_all(headers);
    if (c)
        curl_easy_cleanup(c);
    if (rc != BR_HTTP_OK)
        br_http_response_free(resp);
    return rc;
}

static int retryable_status(long status)
{
    return status == 408 || status == 429 || status >= 500;
}

void br_http_url(char *url, size_t n, const char *base, const char *fmt, ...)
{
    size_t len = strlen(base);
    while (len > 0 && base[len - 1] == '/')
        len--;
    int k = snprintf(url, n, "%.*s", (int)len, base);
    if (k < 0 || (size_t)k >= n)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(url + k, n - (size_t)k, fmt, ap);
    va_end(ap);
}

int br_http_do_retry(const br_http_request *req, br_http_response *resp, int max_attempts, br_backoff *b,
                     br_http_retry_after_fn hook, void *hook_arg, const hw_log *log, const char *what)
{
    int rc = BR_HTTP_ETRANSPORT;
    for (int attempt = 1;; attempt++) {
        rc = br_http_do(req, resp);
        if (rc == BR_HTTP_ESTOPPED)
            return rc;
        if (rc == BR_HTTP_OK && !retryable_status(resp->status)) {
            br_backoff_reset(b);
            return rc;
        }
        if (attempt >= max_attempts)
            return rc;
        int delay_ms = -1;
        if (rc == BR_HTTP_OK && resp->status == 429) {
            if (hook)
                delay_ms = hook(resp, hook_arg);
            if (delay_ms < 0 && resp->retry_after_s >= 0)
                delay_ms = resp->retry_after_s * 1000;
        }
        if (delay_ms < 0)
            delay_ms = br_backoff_next_ms(b);
        char q[300];
        hw_log_event(log, HW_LOG_WARN, "http_retry", "what=%s attempt=%d status=%ld error=%s delay_ms=%d",
                     what, attempt, rc == BR_HTTP_OK ? resp->status : 0L,
                     hw_log_quote(rc == BR_HTTP_OK ? "" : resp->error, q, sizeof q), delay_ms);
        br_http_response_free(resp);
        if (req->stop ? br_stop_sleep_ms(req->stop, delay_ms) : (usleep((useconds_t)delay_ms * 1000), false))
            return BR_HTTP_ESTOPPED;
    }
}
