/*
 * notifier_test: the notifier against a small webhook on loopback
 * (libmicrohttpd in this process). An alert queued before the notifier
 * starts is delivered after a restart-like start; a webhook that answers
 * 500 first gets the alert again after the backoff; each attempt lands on
 * the ticket's history (ALERT_FAILED, then ALERT_DELIVERED); the POST is
 * JSON with the ticket's fields; a delivered alert leaves the store. Also:
 * hw_notifier_wake picks up new alerts, no webhook keeps them queued, and
 * destroy does not wait out a webhook that keeps failing. A wake-up reads
 * only the alerts queued since the previous one (thousands piled up cost
 * nothing later), delivery stays in queue order, and alerts older than the
 * retention age are dropped, with and without a webhook. Each POST has a
 * helpwire-webhook-id that a retry keeps (the body's webhook_id; an old
 * alert's "alert-<key>") and a timestamp; with secrets, a signature at the
 * app's clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>

#include "server/base/clock.h"
#include "server/domain/notifier.h"
#include "server/domain/webhook_sign.h"
#include "server/store/records.h"
#include "tests/unit/store_test_util.h"

#define MAX_REQUESTS 16

/* The fake webhook: records each request; answers fail_first times with
 * 500, then 200 (or always 500 when always_fail). */
typedef struct hook {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int fail_first;
    int always_fail;
    int n;
    char *bodies[MAX_REQUESTS];
    char content_type[MAX_REQUESTS][64];
    char webhook_id[MAX_REQUESTS][80]; /* helpwire-webhook-id */
    char timestamp[MAX_REQUESTS][32];  /* helpwire-webhook-timestamp */
    char signature[MAX_REQUESTS][256]; /* helpwire-signature ("" without) */
    int64_t at_ms[MAX_REQUESTS];
    struct MHD_Daemon *d;
    uint16_t port;
} hook;

typedef struct {
    char *buf;
    size_t len;
} req_body;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size,
                                  void **con_cls)
{
    hook *h = cls;
    req_body *b = *con_cls;
    if (!b) {
        *con_cls = calloc(1, sizeof(req_body));
        return MHD_YES;
    }
    if (*upload_size) {
        b->buf = realloc(b->buf, b->len + *upload_size + 1);
        memcpy(b->buf + b->len, upload, *upload_size);
        b->len += *upload_size;
        b->buf[b->len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    pthread_mutex_lock(&h->mu);
    int i = h->n;
    int status = (h->always_fail || i < h->fail_first) ? 500 : 200;
    if (i < MAX_REQUESTS) {
        h->bodies[i] = b->buf ? b->buf : strdup("");
        b->buf = NULL;
        snprintf(h->content_type[i], sizeof h->content_type[i], "%s", ct ? ct : "");
        const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "helpwire-webhook-id");
        snprintf(h->webhook_id[i], sizeof h->webhook_id[i], "%s", v ? v : "");
        v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "helpwire-webhook-timestamp");
        snprintf(h->timestamp[i], sizeof h->timestamp[i], "%s", v ? v : "");
        v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "helpwire-signature");
        snprintf(h->signature[i], sizeof h->signature[i], "%s", v ? v : "");
        h->at_ms[i] = mono_ms();
        h->n++;
    }
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    free(b->buf);
    free(b);
    *con_cls = NULL;
    const char *text = status == 200 ? "ok" : "boom";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static void hook_start(hook *h)
{
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, h,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_END);
    assert_non_null(h->d);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    assert_non_null(info);
    h->port = info->port;
}

static void hook_stop(hook *h)
{
    MHD_stop_daemon(h->d);
    for (int i = 0; i < h->n && i < MAX_REQUESTS; i++)
        free(h->bodies[i]);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
}

/* Waits until the webhook saw n requests or timeout_ms passed. */
static int hook_wait(hook *h, int n, int64_t timeout_ms)
{
    int64_t end = mono_ms() + timeout_ms;
    pthread_mutex_lock(&h->mu);
    while (h->n < n && mono_ms() < end) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&h->cv, &h->mu, &ts);
    }
    int got = h->n;
    pthread_mutex_unlock(&h->mu);
    return got;
}

typedef struct fx {
    hw_test_store st; /* first: the store, its reader and arena */
    hw_app app;
    hook h;
    char url[128];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    if (hw_test_store_open(&f->st, "notifier") != 0)
        return -1;
    hook_start(&f->h);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%u/hook", (unsigned)f->h.port);
    f->app.store = f->st.s;
    f->app.settings.webhook_url = f->url;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    hook_stop(&f->h);
    int rc = hw_test_store_close(&f->st);
    free(f);
    return rc;
}

static Helpwire__V1__Ticket ticket(void)
{
    Helpwire__V1__Ticket t = HELPWIRE__V1__TICKET__INIT;
    t.id = "t-1042";
    t.number = 1042;
    t.customer_id = "c-7";
    t.channel = HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP;
    t.subject = "Charged twice — 二重請求";
    t.status = HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_ESCALATED;
    t.priority = HELPWIRE__V1__PRIORITY__PRIORITY_URGENT;
    t.queue = "billing";
    t.assignee_agent_id = "ag-anna";
    t.escalated_unix_ms = 1767225600000LL;
    return t;
}

typedef struct {
    const Helpwire__V1__Ticket *t;
    const char *reason, *actor;
} queue_ctx;

static int queue_fn(hw_store_txn *w, void *arg)
{
    queue_ctx *c = arg;
    hw_effects fx;
    hw_effects_begin(&fx, NULL); /* the wake-up is the test's own hw_notifier_wake */
    return hw_notifier_queue_in(w, &fx, c->t, c->reason, c->actor);
}

static void queue_alert(fx *f, const Helpwire__V1__Ticket *t, const char *reason)
{
    queue_ctx c = {.t = t, .reason = reason, .actor = "agent:ag-anna"};
    assert_int_equal(hw_store_write(f->st.s, queue_fn, &c), HW_OK);
}

static int count_one(void *arg, const void *k, size_t kl, const void *v, size_t vl)
{
    (void)k;
    (void)kl;
    (void)v;
    (void)vl;
    (*(int *)arg)++;
    return 0;
}

/* Alerts still in the store. */
static int pending_alerts(fx *f)
{
    hw_store_txn *t;
    assert_int_equal(hw_store_read_begin(f->st.r, &t), HW_OK);
    int n = 0;
    int rc = hw_store_kv_foreach(t, "alert", count_one, &n);
    hw_store_read_end(f->st.r);
    assert_int_equal(rc, HW_OK);
    return n;
}

static size_t history(fx *f, const char *ticket_id, Helpwire__V1__TicketEvent ***evs)
{
    hw_store_txn *t;
    assert_int_equal(hw_store_read_begin(f->st.r, &t), HW_OK);
    hw_store_cursor cur = {0};
    size_t n = 0;
    assert_int_equal(hw_store_ticket_event_list(t, ticket_id, &cur, 100, f->st.a, evs, &n), HW_OK);
    hw_store_read_end(f->st.r);
    return n;
}

/* Polls until the ticket's history has n events (the outcome is recorded
 * just after the webhook answers). */
static size_t wait_history(fx *f, const char *ticket_id, size_t n, Helpwire__V1__TicketEvent ***evs)
{
    int64_t end = mono_ms() + 10000;
    size_t got;
    while ((got = history(f, ticket_id, evs)) < n && mono_ms() < end) {
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    return got;
}

static void failed_alert_is_retried_after_backoff_then_delivered_and_removed(void **state)
{
    fx *f = *state;
    f->h.fail_first = 1;
    Helpwire__V1__Ticket t = ticket();
    queue_alert(f, &t, "Customer threatens to cancel");
    assert_int_equal(pending_alerts(f), 1);

    /* Queued before the notifier exists: found at start. */
    hw_notifier *n = NULL;
    assert_int_equal(hw_notifier_create(&n, &f->app), HW_OK);
    assert_int_equal(hook_wait(&f->h, 2, 15000), 2);
    Helpwire__V1__TicketEvent **evs = NULL;
    assert_int_equal(wait_history(f, "t-1042", 2, &evs), 2);
    hw_notifier_destroy(n);

    pthread_mutex_lock(&f->h.mu);
    int64_t gap = f->h.at_ms[1] - f->h.at_ms[0];
    assert_true(gap >= 900); /* first backoff: 1 s */
    assert_true(gap < 5000);
    assert_string_equal(f->h.bodies[0], f->h.bodies[1]);
    assert_string_equal(f->h.content_type[0], "application/json");
    /* The retry keeps the id; without secrets nothing is signed. */
    assert_string_equal(f->h.webhook_id[0], f->h.webhook_id[1]);
    assert_string_equal(f->h.signature[0], "");
    assert_true(atoll(f->h.timestamp[1]) > 1700000000);
    json_error_t jerr;
    json_t *o = json_loads(f->h.bodies[1], 0, &jerr);
    char wid[80];
    snprintf(wid, sizeof wid, "%s", f->h.webhook_id[1]);
    pthread_mutex_unlock(&f->h.mu);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "webhook_id")), wid);
    assert_int_equal(strlen(wid), 3 + 22); /* "wh_" + 16 random bytes in base64url */
    assert_true(strncmp(wid, "wh_", 3) == 0);
    assert_string_equal(json_string_value(json_object_get(o, "ticket_id")), "t-1042");
    assert_int_equal(json_integer_value(json_object_get(o, "number")), 1042);
    assert_string_equal(json_string_value(json_object_get(o, "subject")), "Charged twice — 二重請求");
    assert_string_equal(json_string_value(json_object_get(o, "queue")), "billing");
    assert_string_equal(json_string_value(json_object_get(o, "priority")), "PRIORITY_URGENT");
    assert_string_equal(json_string_value(json_object_get(o, "reason")), "Customer threatens to cancel");
    assert_string_equal(json_string_value(json_object_get(o, "actor")), "agent:ag-anna");
    assert_int_equal(json_integer_value(json_object_get(o, "escalated_unix_ms")), 1767225600000LL);
    json_decref(o);

    assert_int_equal(evs[0]->kind, HELPWIRE__V1__TICKET_EVENT_KIND__TICKET_EVENT_KIND_ALERT_FAILED);
    assert_true(strncmp(evs[0]->detail, "HTTP 500", 8) == 0);
    assert_int_equal(evs[1]->kind, HELPWIRE__V1__TICKET_EVENT_KIND__TICKET_EVENT_KIND_ALERT_DELIVERED);
    assert_string_equal(evs[1]->detail, "HTTP 200");
    assert_string_equal(evs[1]->actor, "system");
    assert_int_equal(pending_alerts(f), 0);
    assert_int_equal(f->h.n, 2); /* nothing sent after delivery */
}

static void wake_delivers_alert_queued_while_running(void **state)
{
    fx *f = *state;
    hw_notifier *n = NULL;
    assert_int_equal(hw_notifier_create(&n, &f->app), HW_OK);
    Helpwire__V1__Ticket t = ticket();
    t.id = "t-2000";
    t.number = 2000;
    queue_alert(f, &t, "VIP");
    hw_notifier_wake(n);
    assert_int_equal(hook_wait(&f->h, 1, 10000), 1);
    Helpwire__V1__TicketEvent **evs = NULL;
    assert_int_equal(wait_history(f, "t-2000", 1, &evs), 1);
    assert_int_equal(evs[0]->kind, HELPWIRE__V1__TICKET_EVENT_KIND__TICKET_EVENT_KIND_ALERT_DELIVERED);
    hw_notifier_destroy(n);
    assert_int_equal(pending_alerts(f), 0);
}

static void without_webhook_alerts_stay_queued(void **state)
{
    fx *f = *state;
    f->app.settings.webhook_url = NULL;
    Helpwire__V1__Ticket t = ticket();
    queue_alert(f, &t, "no one to tell");
    hw_notifier *n = NULL;
    assert_int_equal(hw_notifier_create(&n, &f->app), HW_OK);
    hw_notifier_wake(n);
    struct timespec ts = {0, 300 * 1000000};
    nanosleep(&ts, NULL);
    hw_notifier_destroy(n);
    assert_int_equal(pending_alerts(f), 1);
    assert_int_equal(f->h.n, 0);
    Helpwire__V1__TicketEvent **evs = NULL;
    assert_int_equal(history(f, "t-1042", &evs), 0);
}

static void destroy_does_not_wait_for_backoff_of_failing_webhook(void **state)
{
    fx *f = *state;
    f->h.always_fail = 1;
    Helpwire__V1__Ticket t = ticket();
    queue_alert(f, &t, "down");
    hw_notifier *n = NULL;
    assert_int_equal(hw_notifier_create(&n, &f->app), HW_OK);
    assert_int_equal(hook_wait(&f->h, 1, 10000), 1);
    Helpwire__V1__TicketEvent **evs = NULL;
    assert_int_equal(wait_history(f, "t-1042", 1, &evs), 1);
    int64_t t0 = mono_ms();
    hw_notifier_destroy(n);
    assert_true(mono_ms() - t0 < 1000);
    assert_int_equal(pending_alerts(f), 1); /* kept for the next start */
}

typedef struct {
    int count;
    uint64_t first_number;
    int64_t escalated_ms, step_ms;
} many_ctx;

/* count alerts in one write, tickets first_number.., escalated at
 * escalated_ms + i * step_ms. */
static int queue_many_fn(hw_store_txn *w, void *arg)
{
    many_ctx *c = arg;
    hw_effects fx;
    hw_effects_begin(&fx, NULL);
    for (int i = 0; i < c->count; i++) {
        Helpwire__V1__Ticket t = ticket();
        char id[32];
        snprintf(id, sizeof id, "t-%" PRIu64, c->first_number + (uint64_t)i);
        t.id = id;
        t.number = c->first_number + (uint64_t)i;
        t.escalated_unix_ms = c->escalated_ms + i * c->step_ms;
        int rc = hw_notifier_queue_in(w, &fx, &t, "piled up", "system");
        if (rc != HW_OK)
            return rc;
    }
    return HW_OK;
}

static void queue_many(fx *f, int count, uint64_t first_number, int64_t escalated_ms, int64_t step_ms)
{
    many_ctx c = {count, first_number, escalated_ms, step_ms};
    assert_int_equal(hw_store_write(f->st.s, queue_many_fn, &c), HW_OK);
}

/* Polls until get(n) == want or 10 s passed; returns the last value. */
static uint64_t wait_value(hw_notifier *n, uint64_t (*get)(hw_notifier *), uint64_t want)
{
    int64_t end = mono_ms() + 10000;
    uint64_t v;
    while ((v = get(n)) != want && mono_ms() < end) {
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    return v;
}

static void wake_reads_only_alerts_queued_since_the_last_one(void **state)
{
    fx *f = *state;
    f->app.settings.webhook_url = NULL;
    queue_many(f, 3000, 1, 1767225600000LL, 0);
    hw_notifier *n = NULL;
    assert_int_equal(hw_notifier_create(&n, &f->app), HW_OK);
    assert_int_equal(wait_value(n, hw_notifier_pending, 3000), 3000);
    assert_int_equal(hw_notifier_scanned(n), 3000);
    /* Ten wake-ups with 5 new alerts each: 50 more read, not 10 x 3000. */
    for (int i = 0; i < 10; i++) {
        queue_many(f, 5, 10000 + (uint64_t)i * 5, 1767225600000LL, 0);
        hw_notifier_wake(n);
        assert_int_equal(wait_value(n, hw_notifier_pending, 3005 + (uint64_t)i * 5), 3005 + (uint64_t)i * 5);
    }
    /* Wake-ups with nothing new read nothing. */
    for (int i = 0; i < 5; i++)
        hw_notifier_wake(n);
    struct timespec ts = {0, 100 * 1000000};
    nanosleep(&ts, NULL);
    assert_int_equal(hw_notifier_scanned(n), 3050);
    assert_int_equal(hw_notifier_pending(n), 3050);
    hw_notifier_destroy(n);
    assert_int_equal(pending_alerts(f), 3050); /* still kept durably */
    assert_int_equal(f->h.n, 0);
}

/* The ticket number in the i-th body the webhook received. */
static int64_t body_number(fx *f, int i)
{
    pthread_mutex_lock(&f->h.mu);
    json_t *o = json_loads(f->h.bodies[i], 0, NULL);
    pthread_mutex_unlock(&f->h.mu);
    assert_non_null(o);
    int64_t num = json_integer_value(json_object_get(o, "number"));
    json_decref(o);
    return num;
}

static void delivery_follows_queue_order_across_loads(void **state)
{
    fx *f = *state;
    queue_many(f, 5, 100, 1767225600000LL, 0); /* before the start */
    hw_notifier *n = NULL;
    assert_int_equal(hw_notifier_create(&n, &f->app), HW_OK);
    assert_int_equal(hook_wait(&f->h, 5, 10000), 5);
    queue_many(f, 3, 200, 1767225600000LL, 0); /* while running */
    hw_notifier_wake(n);
    assert_int_equal(hook_wait(&f->h, 8, 10000), 8);
    assert_int_equal(wait_value(n, hw_notifier_pending, 0), 0);
    hw_notifier_destroy(n);
    const int64_t want[8] = {100, 101, 102, 103, 104, 200, 201, 202};
    for (int i = 0; i < 8; i++)
        assert_int_equal(body_number(f, i), want[i]);
    assert_int_equal(f->h.n, 8); /* each once */
    assert_int_equal(pending_alerts(f), 0);
}

#define DAY_MS (24LL * 3600 * 1000)

static void alerts_past_retention_are_dropped_without_webhook(void **state)
{
    fx *f = *state;
    const int64_t t0 = 1767225600000LL;
    hw_clock *clk = NULL;
    assert_int_equal(hw_clock_create_manual(&clk, t0 + 3 * DAY_MS), HW_OK);
    f->app.clock = clk;
    f->app.settings.webhook_url = NULL;
    f->app.settings.alert_retention_ms = 7 * DAY_MS;
    /* 10 alerts a day apart, raised t0 - 5 days .. t0 + 4 days. */
    queue_many(f, 10, 1, t0 - 5 * DAY_MS, DAY_MS);
    hw_notifier *n = NULL;
    assert_int_equal(hw_notifier_create(&n, &f->app), HW_OK);
    /* now t0 + 3 d: cutoff t0 - 4 d: only the t0 - 5 d alert goes (the
     * one raised exactly at the cutoff is kept). */
    assert_int_equal(wait_value(n, hw_notifier_expired, 1), 1);
    assert_int_equal(wait_value(n, hw_notifier_pending, 9), 9);
    assert_int_equal(pending_alerts(f), 9);
    /* Four days later (checked once a second): cutoff t0: 4 more. */
    hw_clock_set(clk, t0 + 7 * DAY_MS);
    assert_int_equal(wait_value(n, hw_notifier_expired, 5), 5);
    assert_int_equal(wait_value(n, hw_notifier_pending, 5), 5);
    assert_int_equal(pending_alerts(f), 5);
    /* A new alert raised now is kept; the count follows. */
    queue_many(f, 1, 50, t0 + 7 * DAY_MS, 0);
    hw_notifier_wake(n);
    assert_int_equal(wait_value(n, hw_notifier_pending, 6), 6);
    hw_notifier_destroy(n);
    assert_int_equal(pending_alerts(f), 6);
    assert_int_equal(f->h.n, 0);
    hw_clock_destroy(clk);
}

static void alert_past_retention_is_dropped_while_webhook_keeps_failing(void **state)
{
    fx *f = *state;
    const int64_t t0 = 1767225600000LL;
    hw_clock *clk = NULL;
    assert_int_equal(hw_clock_create_manual(&clk, t0), HW_OK);
    f->app.clock = clk;
    f->app.settings.alert_retention_ms = DAY_MS;
    f->h.always_fail = 1;
    queue_many(f, 1, 7, t0, 0);
    hw_notifier *n = NULL;
    assert_int_equal(hw_notifier_create(&n, &f->app), HW_OK);
    assert_int_equal(hook_wait(&f->h, 1, 10000), 1);
    assert_int_equal(hw_notifier_pending(n), 1);
    hw_clock_set(clk, t0 + DAY_MS + 1);
    assert_int_equal(wait_value(n, hw_notifier_expired, 1), 1);
    assert_int_equal(wait_value(n, hw_notifier_pending, 0), 0);
    assert_int_equal(pending_alerts(f), 0);
    pthread_mutex_lock(&f->h.mu);
    int sent = f->h.n;
    pthread_mutex_unlock(&f->h.mu);
    /* Past its backoff (1 s, then 2 s): not tried again. */
    struct timespec ts = {2, 500 * 1000000};
    nanosleep(&ts, NULL);
    assert_int_equal(f->h.n, sent);
    hw_notifier_destroy(n);
    hw_clock_destroy(clk);
}

static void queue_refuses_ticket_without_id(void **state)
{
    fx *f = *state;
    Helpwire__V1__Ticket t = ticket();
    t.id = "";
    queue_ctx c = {.t = &t, .reason = "x", .actor = "agent:a"};
    assert_int_equal(hw_store_write(f->st.s, queue_fn, &c), HW_EINVALID);
    assert_int_equal(pending_alerts(f), 0);
}

typedef struct {
    const Helpwire__V1__Ticket *t;
    const hw_alert_sla *sla;
    hw_alert_kind kind;
} sla_ctx;

static int queue_sla_fn(hw_store_txn *w, void *arg)
{
    sla_ctx *c = arg;
    hw_effects fx;
    hw_effects_begin(&fx, NULL);
    if (!c->sla)
        return hw_notifier_queue_kind_in(w, &fx, c->t, c->kind, "SLA breached", "system");
    return hw_notifier_queue_sla_in(w, &fx, c->t, c->sla,
                                    "SLA breached: FIRST_REPLY due 2026-12-07T01:30:00Z");
}

static int keep_body(void *arg, const void *k, size_t kl, const void *v, size_t vl)
{
    (void)k;
    (void)kl;
    json_error_t e;
    *(json_t **)arg = json_loadb(v, vl, 0, &e);
    return 0;
}

static void sla_breach_alert_has_its_own_kind_and_facts(void **state)
{
    fx *f = *state;
    Helpwire__V1__Ticket t = ticket();
    hw_alert_sla sla = {.target = "FIRST_REPLY",
                        .due_unix_ms = 1796563800000LL,
                        .policy = "vip-urgent",
                        .action = "reassigned to bob"};
    /* The SLA kind without its facts is refused. */
    sla_ctx bad = {.t = &t, .kind = HW_ALERT_SLA_BREACHED};
    assert_int_equal(hw_store_write(f->st.s, queue_sla_fn, &bad), HW_EINVALID);
    assert_int_equal(pending_alerts(f), 0);
    sla_ctx c = {.t = &t, .sla = &sla};
    assert_int_equal(hw_store_write(f->st.s, queue_sla_fn, &c), HW_OK);
    hw_store_txn *tx;
    assert_int_equal(hw_store_read_begin(f->st.r, &tx), HW_OK);
    json_t *o = NULL;
    assert_int_equal(hw_store_kv_foreach(tx, "alert", keep_body, &o), HW_OK);
    hw_store_read_end(f->st.r);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "kind")), "sla_breached");
    assert_string_equal(json_string_value(json_object_get(o, "sla_target")), "FIRST_REPLY");
    assert_int_equal(json_integer_value(json_object_get(o, "due_unix_ms")), 1796563800000LL);
    assert_string_equal(json_string_value(json_object_get(o, "sla_policy")), "vip-urgent");
    assert_string_equal(json_string_value(json_object_get(o, "action")), "reassigned to bob");
    assert_string_equal(json_string_value(json_object_get(o, "actor")), "system");
    assert_non_null(json_object_get(o, "at_unix_ms"));
    assert_null(json_object_get(o, "escalated_unix_ms"));
    const char *text = json_string_value(json_object_get(o, "text"));
    assert_non_null(text);
    assert_non_null(strstr(text, "breached its SLA"));
    assert_non_null(strstr(text, "reassigned to bob"));
    assert_null(strstr(text, "escalated"));
    json_decref(o);
}

/* With secrets each POST is signed at the app's clock: t is its second,
 * and the header is what hw_webhook_sign gives for the body received. */
static void signed_with_secrets_at_the_apps_clock(void **state)
{
    fx *f = *state;
    char path[256];
    const char *dir = getenv("TEST_TMPDIR");
    snprintf(path, sizeof path, "%s/whsecXXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char content[] = "notifier-test-secret-current\nnotifier-test-secret-previous\n";
    assert_int_equal(write(fd, content, sizeof content - 1), (ssize_t)(sizeof content - 1));
    close(fd);
    hw_webhook_keys *keys = NULL;
    char err[256];
    assert_int_equal(hw_webhook_keys_load(path, &keys, err, sizeof err), HW_OK);
    unlink(path);
    hw_clock *clock = NULL;
    assert_int_equal(hw_clock_create_manual(&clock, 1767225600999LL), HW_OK);
    f->app.clock = clock;
    f->app.settings.webhook_keys = keys;

    Helpwire__V1__Ticket t = ticket();
    queue_alert(f, &t, "signed");
    hw_notifier *n = NULL;
    assert_int_equal(hw_notifier_create(&n, &f->app), HW_OK);
    assert_int_equal(hook_wait(&f->h, 1, 10000), 1);
    hw_notifier_destroy(n);

    pthread_mutex_lock(&f->h.mu);
    assert_string_equal(f->h.timestamp[0], "1767225600");
    char want[HW_WEBHOOK_SIGNATURE_MAX];
    assert_int_equal(
        hw_webhook_sign(keys, 1767225600, f->h.bodies[0], strlen(f->h.bodies[0]), want, sizeof want), HW_OK);
    assert_string_equal(f->h.signature[0], want);
    assert_non_null(strstr(f->h.signature[0], "t=1767225600,v1="));
    assert_non_null(strstr(strstr(f->h.signature[0], ",v1=") + 1, ",v1=")); /* two secrets, two v1 */
    pthread_mutex_unlock(&f->h.mu);
    f->app.settings.webhook_keys = NULL;
    f->app.clock = NULL;
    hw_webhook_keys_free(keys);
    hw_clock_destroy(clock);
}

/* An alert queued before bodies had a webhook_id goes out as
 * "alert-<alert_id>", the same on every attempt. */
static int put_legacy_fn(hw_store_txn *w, void *arg)
{
    (void)arg;
    const char body[] = "{\"alert_id\":\"00000000000000000007\",\"kind\":\"escalated\","
                        "\"ticket_id\":\"t-1042\",\"escalated_unix_ms\":1767225600000}";
    return hw_store_kv_put(w, "alert", "00000000000000000007", 20, body, sizeof body - 1);
}

static void legacy_alert_gets_an_id_from_its_key(void **state)
{
    fx *f = *state;
    f->h.fail_first = 1;
    assert_int_equal(hw_store_write(f->st.s, put_legacy_fn, NULL), HW_OK);
    hw_notifier *n = NULL;
    assert_int_equal(hw_notifier_create(&n, &f->app), HW_OK);
    assert_int_equal(hook_wait(&f->h, 2, 15000), 2);
    hw_notifier_destroy(n);
    pthread_mutex_lock(&f->h.mu);
    assert_string_equal(f->h.webhook_id[0], "alert-00000000000000000007");
    assert_string_equal(f->h.webhook_id[1], "alert-00000000000000000007");
    pthread_mutex_unlock(&f->h.mu);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(failed_alert_is_retried_after_backoff_then_delivered_and_removed),
        T(wake_delivers_alert_queued_while_running),
        T(without_webhook_alerts_stay_queued),
        T(destroy_does_not_wait_for_backoff_of_failing_webhook),
        T(queue_refuses_ticket_without_id),
        T(sla_breach_alert_has_its_own_kind_and_facts),
        T(wake_reads_only_alerts_queued_since_the_last_one),
        T(delivery_follows_queue_order_across_loads),
        T(alerts_past_retention_are_dropped_without_webhook),
        T(alert_past_retention_is_dropped_while_webhook_keeps_failing),
        T(signed_with_secrets_at_the_apps_clock),
        T(legacy_alert_gets_an_id_from_its_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
