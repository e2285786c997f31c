/*
 * notifier: supervisor alerts for escalated, unassignable and SLA-breached
 * tickets (see notifier.h).
 *
 * Design:
 * - Durable queue: an alert is one entry of the store's generic key-value
 *   space, namespace "alert", key = the zero-padded number of the "alert"
 *   sequence (so key order is queue order), value = the JSON body to POST.
 *   The body is built once, at escalation, inside the escalating write: a
 *   delivery after a restart sends exactly what would have been sent.
 * - One thread owns the delivery: it keeps the pending alerts in memory
 *   (loaded at start, then on every wake-up only the keys after the last
 *   one it loaded: hw_store_kv_foreach_after seeks there, so a wake-up
 *   costs what is new and not what has piled up), POSTs each with libcurl
 *   (connect timeout 2 s, total 5 s) and records the outcome in one store
 *   write on its own thread (blocking is fine there; the events it records
 *   go to watchers through the write's effects once it committed): a 2xx
 *   deletes the alert and appends ALERT_DELIVERED to the ticket's history;
 *   anything else appends ALERT_FAILED with the HTTP status or the
 *   transport error, and the alert is tried again after its own backoff
 *   (1 s, doubling, at most 60 s). Backoff is per alert, so one alert the
 *   webhook keeps refusing does not hold back the others.
 * - At-least-once: a crash between the POST and the commit of its outcome
 *   sends that alert again after the restart; receivers dedupe on
 *   alert_id.
 * - Without a webhook URL alerts stay queued in the store (logged once)
 *   until a restart with one; the thread only counts new ones for the
 *   pending gauge (same scan from the last key) and holds none in memory.
 * - Bound: alerts older than settings.alert_retention_ms (by the time they
 *   were raised: escalated_unix_ms or at_unix_ms, on the app's clock) are
 *   dropped undelivered, with or without a URL. This thread does it (once
 *   a second, oldest first, at most EXPIRE_BATCH per write, stopping at the
 *   first younger alert: the front of the queue only), because it owns the
 *   alert namespace, its in-memory list and the pending count: no second
 *   thread deleting under it. Counted in hw_notifier_expired, logged.
 * - Leader only: with replication every replica holds the alerts, but
 *   only the leader (hw_store_is_leader) posts them and expires them. A
 *   replica that does not lead keeps no list (and a pending gauge of 0),
 *   and looks at the leadership again each LEADER_POLL_MS or when woken;
 *   when it comes to lead it loads the queue from the store afresh (the
 *   old leader may have delivered or expired any of it). A change of
 *   leadership is logged once; a write refused with HW_ENOTLEADER (the
 *   leadership went while posting) is not an error: the new leader sends
 *   the alert again (at-least-once, as after a crash).
 * - Trace context: each POST carries W3C `traceparent` (and `tracestate`
 *   when the escalating call sent one): the trace of the call whose write
 *   queued the alert, with that call's span as the parent, stored in the
 *   body ("traceparent", "tracestate") when it is queued; an alert raised
 *   by a timer gets a new trace then. An alert queued before bodies had
 *   the field gets a new trace when loaded (kept for its retries). Lines
 *   about an alert carry its trace id (trace=).
 * - Signed: each POST carries helpwire-webhook-id (the body's "webhook_id",
 *   random, made when the alert is queued: the same on every attempt, so a
 *   receiver drops a replay or a redelivery by it), helpwire-webhook-
 *   timestamp (the app's clock at the attempt, unix seconds) and, with
 *   settings.webhook_keys, helpwire-signature (webhook_sign.h: HMAC-SHA256
 *   of "<t>." + body per secret). Headers that cannot be built (out of
 *   memory) fail the attempt: an alert never goes out without them.
 * - Stopping: a flag under the mutex plus a condition variable wake the
 *   thread; a transfer in progress is aborted through curl's progress
 *   callback, and the alert stays queued without a failure event.
 */
#include "server/domain/notifier.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "server/base/clock.h"
#include "server/base/log.h"
#include "server/base/secret.h"
#include "server/base/trace.h"
#include "server/store/records.h"
#include "server/domain/watch.h"
#include "server/domain/webhook_sign.h"

#define ALERT_NS "alert"
#define ALERT_KEY_LEN 20
#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS 60000
#define CONNECT_TIMEOUT_MS 2000L
#define TOTAL_TIMEOUT_MS 5000L
#define EXPIRE_EVERY_MS 1000
#define EXPIRE_BATCH 1000
#define LEADER_POLL_MS 1000
/* "wh_" and 16 random bytes in base64url: the id a receiver drops replays by. */
#define WEBHOOK_ID_MAX 64

typedef struct alert {
    struct alert *next;
    char key[ALERT_KEY_LEN + 1];
    char *body; /* JSON, NUL-terminated */
    size_t body_len;
    char *ticket_id; /* from the body; "" when absent */
    char *tracestate;                   /* from the body; NULL when absent */
    char trace_id[HW_TRACE_ID_HEX + 1]; /* of traceparent, for the log */
    /* From the body, or new when it has none. */
    char traceparent[HW_TRACEPARENT_LEN + 1];
    /* From the body ("webhook_id"), or "alert-<key>" for an alert queued
     * before bodies had one: the same on every attempt. */
    char webhook_id[WEBHOOK_ID_MAX];
    unsigned failures;
    int64_t next_ms; /* monotonic; 0 = now */
} alert;

struct hw_notifier {
    hw_app *app;
    const char *url; /* NULL: no webhook */
    hw_store_reader *reader;
    CURL *curl;
    struct curl_slist *headers;
    bool curl_global;
    pthread_t thread;
    bool thread_started;

    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    bool wake, stop;
    bool recount; /* alerts were removed by another writer (hw_notifier_removed) */
    atomic_bool stopping;                   /* read by curl's progress callback */
    atomic_uint_least64_t retries, pending; /* for metrics */
    atomic_uint_least64_t expired, scanned; /* for metrics and tests */

    /* Thread only. */
    alert *head, *tail;
    char last_key[ALERT_KEY_LEN + 1]; /* the last alert loaded ("" none yet) */
    bool warned_no_url;
    int64_t next_expire_ms; /* monotonic */
    bool leading;           /* as of the last look (the first look logs only a loss) */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void alert_free(alert *al)
{
    if (!al)
        return;
    if (al->body) /* it may carry a customer's words: not left in freed memory */
        explicit_bzero(al->body, al->body_len);
    free(al->body);
    free(al->ticket_id);
    free(al->tracestate);
    free(al);
}

/* --------------------------------------------------------------- queue */

/* Sets key to a JSON string of s (NULL = ""). Returns 0 or -1. */
static int set_str(json_t *o, const char *key, const char *s)
{
    json_t *v = json_string(s ? s : "");
    return v ? json_object_set_new(o, key, v) : -1;
}

int hw_notifier_queue_in(hw_store_txn *w, hw_effects *fx, const Helpwire__V1__Ticket *t, const char *reason,
                         const char *actor)
{
    return hw_notifier_queue_kind_in(w, fx, t, HW_ALERT_ESCALATED, reason, actor);
}

static const char *const KIND_NAME[] = {"escalated", "unassignable", "sla_breached"};

/* Queues one alert of kind; sla: the breach's facts (kind SLA_BREACHED). */
static int queue_alert(hw_store_txn *w, hw_effects *fx, const Helpwire__V1__Ticket *t, hw_alert_kind kind,
                       const char *reason, const char *actor, const hw_alert_sla *sla)
{
    if (!t || !t->id || !t->id[0] || (unsigned)kind > HW_ALERT_SLA_BREACHED ||
        (kind == HW_ALERT_SLA_BREACHED && !sla))
        return HW_EINVALID;
    uint64_t n = 0;
    int rc = hw_store_next_seq(w, ALERT_NS, 1, &n);
    if (rc != HW_OK)
        return rc;
    char key[ALERT_KEY_LEN + 1];
    snprintf(key, sizeof key, "%020" PRIu64, n);

    const ProtobufCEnumValue *pv =
        protobuf_c_enum_descriptor_get_value(&helpwire__v1__priority__descriptor, (int)t->priority);
    bool esc = kind == HW_ALERT_ESCALATED;
    int64_t at = esc && t->escalated_unix_ms ? t->escalated_unix_ms : hw_effects_now_ms(fx);
    char text[1400];
    if (esc)
        snprintf(text, sizeof text, "Ticket #%" PRIu64 " escalated by %s: %s", t->number,
                 actor ? actor : "system", reason ? reason : "");
    else if (kind == HW_ALERT_UNASSIGNABLE)
        snprintf(text, sizeof text, "Ticket #%" PRIu64 " cannot be assigned (queue %s): %s", t->number,
                 t->queue && *t->queue ? t->queue : "none", reason ? reason : "");
    else
        snprintf(text, sizeof text, "Ticket #%" PRIu64 " breached its SLA (queue %s): %s; %s", t->number,
                 t->queue && *t->queue ? t->queue : "none", reason ? reason : "",
                 sla->action ? sla->action : "alerted");
    char *body = NULL;
    json_t *o = json_object();
    rc = HW_ENOMEM;
    if (!o)
        goto out;
    /* json_string refuses invalid UTF-8: the API validated every field. */
    rc = HW_EINVALID;
    if (set_str(o, "alert_id", key) || set_str(o, "kind", KIND_NAME[kind]) ||
        set_str(o, "ticket_id", t->id) ||
        json_object_set_new(o, "number", json_integer((json_int_t)t->number)) ||
        set_str(o, "subject", t->subject) || set_str(o, "queue", t->queue) ||
        set_str(o, "priority", pv ? pv->name : "PRIORITY_UNSPECIFIED") ||
        set_str(o, "customer_id", t->customer_id) || set_str(o, "assignee_agent_id", t->assignee_agent_id) ||
        set_str(o, "reason", reason) || set_str(o, "actor", actor ? actor : "system") ||
        json_object_set_new(o, esc ? "escalated_unix_ms" : "at_unix_ms", json_integer((json_int_t)at)) ||
        set_str(o, "text", text))
        goto out;
    /* The trace of the call that raised it (a new one for a timer's). */
    char tp[HW_TRACEPARENT_LEN + 1];
    const char *traceparent = fx ? fx->traceparent : NULL;
    const char *tracestate = fx ? fx->tracestate : NULL;
    if (!traceparent || !hw_trace_parse(traceparent, NULL)) {
        hw_trace tr;
        hw_trace_begin(&tr, NULL, NULL);
        traceparent = hw_trace_format(&tr, tp, sizeof tp);
        tracestate = NULL;
    }
    if (set_str(o, "traceparent", traceparent) ||
        (hw_trace_state_ok(tracestate) && set_str(o, "tracestate", tracestate)))
        goto out;
    /* The webhook id, random so that it is unique across stores too (a
     * receiver fed by two deployments, a store restored from a backup). */
    char wid[WEBHOOK_ID_MAX];
    if (hw_secret_new("wh_", 16, wid, sizeof wid) != 0 || set_str(o, "webhook_id", wid))
        goto out;
    if (kind == HW_ALERT_SLA_BREACHED &&
        (set_str(o, "sla_target", sla->target) ||
         json_object_set_new(o, "due_unix_ms", json_integer((json_int_t)sla->due_unix_ms)) ||
         set_str(o, "sla_policy", sla->policy) || set_str(o, "action", sla->action)))
        goto out;
    body = json_dumps(o, JSON_COMPACT);
    rc = HW_ENOMEM;
    if (!body)
        goto out;
    rc = hw_store_kv_put(w, ALERT_NS, key, ALERT_KEY_LEN, body, strlen(body));
    if (rc == HW_OK)
        hw_effects_alert_queued(fx);
out:
    free(body);
    json_decref(o);
    return rc;
}

int hw_notifier_queue_kind_in(hw_store_txn *w, hw_effects *fx, const Helpwire__V1__Ticket *t,
                              hw_alert_kind kind, const char *reason, const char *actor)
{
    return queue_alert(w, fx, t, kind, reason, actor, NULL);
}

int hw_notifier_queue_sla_in(hw_store_txn *w, hw_effects *fx, const Helpwire__V1__Ticket *t,
                             const hw_alert_sla *sla, const char *reason)
{
    return queue_alert(w, fx, t, HW_ALERT_SLA_BREACHED, reason, "system", sla);
}

void hw_notifier_wake(hw_notifier *n)
{
    if (!n)
        return;
    pthread_mutex_lock(&n->mu);
    n->wake = true;
    pthread_cond_signal(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

void hw_notifier_removed(hw_notifier *n)
{
    if (!n)
        return;
    pthread_mutex_lock(&n->mu);
    n->recount = true;
    n->wake = true;
    pthread_cond_signal(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

/* -------------------------------------------------------------- loading */

/* The time an alert was raised, from its body; 0 when unknown. */
static int64_t alert_time_ms(const void *body, size_t len)
{
    json_t *o = json_loadb(body, len, 0, NULL);
    json_t *v = o ? json_object_get(o, "escalated_unix_ms") : NULL;
    if (!v && o)
        v = json_object_get(o, "at_unix_ms");
    int64_t at = json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
    json_decref(o);
    return at;
}

/* Whether id is fit for a header: 1 to WEBHOOK_ID_MAX - 1 of [A-Za-z0-9_-]. */
static bool webhook_id_ok(const char *id)
{
    size_t len = id ? strlen(id) : 0;
    if (len == 0 || len >= WEBHOOK_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
              (id[i] >= '0' && id[i] <= '9') || id[i] == '_' || id[i] == '-'))
            return false;
    return true;
}

static int load_one(void *arg, const void *key, size_t key_len, const void *val, size_t val_len)
{
    hw_notifier *n = arg;
    atomic_fetch_add_explicit(&n->scanned, 1, memory_order_relaxed);
    if (key_len != ALERT_KEY_LEN)
        return 0; /* not one of ours */
    char k[ALERT_KEY_LEN + 1];
    memcpy(k, key, key_len);
    k[key_len] = '\0';
    if (strcmp(k, n->last_key) <= 0)
        return 0;
    if (!n->url) { /* nothing to send: count it, keep nothing */
        if (!n->warned_no_url) {
            hw_log_event(n->app->log, HW_LOG_WARN, "alerts_queued",
                         "reason=\"no --webhook-url configured\" first_alert=%s", k);
            n->warned_no_url = true;
        }
        atomic_fetch_add_explicit(&n->pending, 1, memory_order_relaxed);
        memcpy(n->last_key, k, sizeof k);
        return 0;
    }
    alert *al = calloc(1, sizeof *al);
    if (!al || !(al->body = malloc(val_len + 1))) {
        alert_free(al);
        return HW_ENOMEM;
    }
    memcpy(al->body, val, val_len);
    al->body[val_len] = '\0';
    al->body_len = val_len;
    json_t *o = json_loadb(al->body, val_len, 0, NULL);
    const char *tid = o ? json_string_value(json_object_get(o, "ticket_id")) : NULL;
    al->ticket_id = strdup(tid ? tid : "");
    const char *tp = o ? json_string_value(json_object_get(o, "traceparent")) : NULL;
    const char *ts = o ? json_string_value(json_object_get(o, "tracestate")) : NULL;
    hw_trace tr;
    if (tp && hw_trace_parse(tp, &tr)) {
        snprintf(al->traceparent, sizeof al->traceparent, "%s", tp);
        if (hw_trace_state_ok(ts))
            al->tracestate = strdup(ts);
    } else { /* queued before alerts kept their trace: a new one */
        hw_trace_begin(&tr, NULL, NULL);
        hw_trace_format(&tr, al->traceparent, sizeof al->traceparent);
    }
    memcpy(al->trace_id, tr.trace_id, sizeof al->trace_id);
    const char *wid = o ? json_string_value(json_object_get(o, "webhook_id")) : NULL;
    if (webhook_id_ok(wid))
        snprintf(al->webhook_id, sizeof al->webhook_id, "%s", wid);
    else
        snprintf(al->webhook_id, sizeof al->webhook_id, "alert-%s", k);
    json_decref(o);
    if (!al->ticket_id) {
        alert_free(al);
        return HW_ENOMEM;
    }
    memcpy(al->key, k, sizeof k);
    if (n->tail)
        n->tail->next = al;
    else
        n->head = al;
    n->tail = al;
    atomic_fetch_add_explicit(&n->pending, 1, memory_order_relaxed);
    memcpy(n->last_key, k, sizeof k);
    return 0;
}

/* Appends the alerts queued since the last load to the in-memory list
 * (without a URL: counts them). Reads only the keys after last_key. */
static void load_new(hw_notifier *n)
{
    hw_store_txn *txn = NULL;
    int rc = hw_store_read_begin(n->reader, &txn);
    if (rc == HW_OK) {
        size_t kl = strlen(n->last_key);
        rc = hw_store_kv_foreach_after(txn, ALERT_NS, kl ? n->last_key : NULL, kl, load_one, n);
        hw_store_read_end(n->reader);
    }
    if (rc != HW_OK)
        hw_log_event(n->app->log, HW_LOG_ERROR, "alert_load_failed", "error=%s", hw_strerror(rc));
}

typedef struct {
    const char *last_key;
    uint64_t n;
} recount_ctx;

static int recount_one(void *arg, const void *key, size_t key_len, const void *val, size_t val_len)
{
    (void)val, (void)val_len;
    recount_ctx *c = arg;
    if (key_len != ALERT_KEY_LEN)
        return 0;
    if (memcmp(key, c->last_key, ALERT_KEY_LEN) > 0)
        return HW_STOP; /* key order: the rest are not loaded yet */
    c->n++;
    return 0;
}

/* Without a webhook the gauge counts the loaded alerts (keys up to
 * last_key) and nothing else follows them: after another writer removed
 * some, they are counted again (one scan; only after an erasure). With a
 * webhook deliver_due drops the removed ones from the list and the gauge. */
static void recount(hw_notifier *n)
{
    if (n->url || !n->last_key[0])
        return;
    recount_ctx c = {.last_key = n->last_key};
    hw_store_txn *txn = NULL;
    int rc = hw_store_read_begin(n->reader, &txn);
    if (rc == HW_OK) {
        rc = hw_store_kv_foreach(txn, ALERT_NS, recount_one, &c);
        hw_store_read_end(n->reader);
    }
    if (rc != HW_OK && rc != HW_STOP) {
        hw_log_event(n->app->log, HW_LOG_ERROR, "alert_recount_failed", "error=%s", hw_strerror(rc));
        return;
    }
    atomic_store_explicit(&n->pending, c.n, memory_order_relaxed);
}

/* ------------------------------------------------------------- expiry */

typedef struct {
    int64_t cutoff_ms;
    size_t n;
    char (*keys)[ALERT_KEY_LEN + 1]; /* [EXPIRE_BATCH], in key order */
} expire_ctx;

static int find_expired(void *arg, const void *key, size_t key_len, const void *val, size_t val_len)
{
    expire_ctx *c = arg;
    if (key_len != ALERT_KEY_LEN)
        return 0;
    int64_t at = alert_time_ms(val, val_len);
    if (at >= c->cutoff_ms)
        return HW_STOP; /* oldest first: the rest are younger */
    memcpy(c->keys[c->n], key, key_len);
    c->keys[c->n][key_len] = '\0';
    return ++c->n == EXPIRE_BATCH ? HW_STOP : 0;
}

static int delete_expired_fn(hw_store_txn *w, void *arg)
{
    expire_ctx *c = arg;
    for (size_t i = 0; i < c->n; i++) {
        int rc = hw_store_kv_delete(w, ALERT_NS, c->keys[i], ALERT_KEY_LEN);
        if (rc != HW_OK && rc != HW_ENOTFOUND)
            return rc;
    }
    return HW_OK;
}

/* Drops alerts raised before now - retention from the store and from the
 * list. Finds them with a read (nothing to do: no write), deletes them in
 * one write; only this thread deletes alerts, so the read stays true.
 * Returns true when a full batch went (there may be more). */
static bool expire_old(hw_notifier *n)
{
    int64_t ret = n->app->settings.alert_retention_ms;
    if (ret <= 0)
        return false;
    expire_ctx c = {.cutoff_ms = hw_clock_now_ms(n->app->clock) - ret};
    c.keys = malloc(sizeof *c.keys * EXPIRE_BATCH);
    if (!c.keys)
        return false;
    hw_store_txn *txn = NULL;
    int rc = hw_store_read_begin(n->reader, &txn);
    if (rc == HW_OK) {
        rc = hw_store_kv_foreach(txn, ALERT_NS, find_expired, &c);
        hw_store_read_end(n->reader);
    }
    if (rc == HW_OK && c.n)
        rc = hw_store_write(n->app->store, delete_expired_fn, &c);
    if (rc != HW_OK) {
        if (rc != HW_ENOTLEADER) /* no longer the leader: the next one expires them */
            hw_log_event(n->app->log, HW_LOG_ERROR, "alert_expire_failed", "error=%s", hw_strerror(rc));
        free(c.keys);
        return false;
    }
    size_t counted = 0; /* those the pending gauge counted (loaded) */
    for (size_t i = 0; i < c.n; i++)
        if (strcmp(c.keys[i], n->last_key) <= 0)
            counted++;
    /* The list is in key order and so are the keys: one merge walk. */
    alert **p = &n->head, *prev = NULL;
    size_t i = 0;
    while (*p && i < c.n) {
        alert *al = *p;
        int cmp = strcmp(al->key, c.keys[i]);
        if (cmp > 0) {
            i++;
            continue;
        }
        if (cmp == 0) {
            *p = al->next;
            if (n->tail == al)
                n->tail = prev;
            alert_free(al);
            i++;
            continue;
        }
        prev = al;
        p = &al->next;
    }
    if (c.n) {
        atomic_fetch_sub_explicit(&n->pending, counted, memory_order_relaxed);
        atomic_fetch_add_explicit(&n->expired, c.n, memory_order_relaxed);
        hw_log_event(n->app->log, HW_LOG_WARN, "alerts_expired",
                     "count=%zu first_alert=%s last_alert=%s retention_ms=%" PRId64, c.n, c.keys[0],
                     c.keys[c.n - 1], ret);
    }
    bool more = c.n == EXPIRE_BATCH;
    free(c.keys);
    return more;
}

/* ------------------------------------------------------------- delivery */

static size_t discard_body(char *p, size_t size, size_t nmemb, void *arg)
{
    (void)p;
    (void)arg;
    return size * nmemb;
}

static int abort_when_stopping(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt;
    (void)dn;
    (void)ut;
    (void)un;
    hw_notifier *n = arg;
    return atomic_load(&n->stopping) ? 1 : 0;
}

/* Appends a header line to *list; false (list freed, NULL) when out of
 * memory. */
static bool add_header(struct curl_slist **list, const char *line)
{
    struct curl_slist *more = curl_slist_append(*list, line);
    if (!more)
        curl_slist_free_all(*list);
    *list = more; /* the head: new when *list was NULL */
    return more != NULL;
}

/* The headers of one attempt at al sent at t_unix_s: the Content-Type,
 * the alert's trace, its webhook id, the time and (with secrets) the
 * signature over "<t>." + body. Returns the list (free it) or NULL (out
 * of memory, or signing failed). */
static struct curl_slist *alert_headers(hw_notifier *n, const alert *al, int64_t t_unix_s)
{
    char line[64 + HW_TRACESTATE_MAX + HW_WEBHOOK_SIGNATURE_MAX];
    struct curl_slist *h = NULL;
    if (!add_header(&h, "Content-Type: application/json"))
        return NULL;
    snprintf(line, sizeof line, "traceparent: %s", al->traceparent);
    if (!add_header(&h, line))
        return NULL;
    if (al->tracestate) {
        snprintf(line, sizeof line, "tracestate: %s", al->tracestate);
        if (!add_header(&h, line))
            return NULL;
    }
    snprintf(line, sizeof line, "helpwire-webhook-id: %s", al->webhook_id);
    if (!add_header(&h, line))
        return NULL;
    snprintf(line, sizeof line, "helpwire-webhook-timestamp: %" PRId64, t_unix_s);
    if (!add_header(&h, line))
        return NULL;
    const hw_webhook_keys *keys = n->app->settings.webhook_keys;
    if (keys) {
        static const char name[] = "helpwire-signature: ";
        memcpy(line, name, sizeof name - 1);
        if (hw_webhook_sign(keys, t_unix_s, al->body, al->body_len, line + sizeof name - 1,
                            sizeof line - (sizeof name - 1)) != HW_OK) {
            curl_slist_free_all(h);
            return NULL;
        }
        if (!add_header(&h, line))
            return NULL;
    }
    return h;
}

/* POSTs al once. Returns true when delivered (2xx); detail gets the HTTP
 * status or the transport error either way. */
static bool post_alert(hw_notifier *n, const alert *al, char *detail, size_t len)
{
    char errbuf[CURL_ERROR_SIZE];
    errbuf[0] = '\0';
    CURL *c = n->curl;
    /* Signed at the time of sending (the app's clock), so that a receiver
     * can refuse a stale copy; the id stays the alert's. */
    int64_t now_ms = hw_clock_now_ms(n->app->clock);
    int64_t t_unix_s = now_ms >= 0 ? now_ms / 1000 : -((-now_ms + 999) / 1000);
    struct curl_slist *hdrs = alert_headers(n, al, t_unix_s);
    if (!hdrs) { /* never sent without its id, time and signature */
        snprintf(detail, len, "cannot build the request's headers: out of memory");
        return false;
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_URL, n->url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, al->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)al->body_len);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode cc = curl_easy_perform(c);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, n->headers);
    curl_slist_free_all(hdrs);
    if (cc != CURLE_OK) {
        snprintf(detail, len, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
        return false;
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    snprintf(detail, len, "HTTP %ld", status);
    return status >= 200 && status < 300;
}

typedef struct {
    const alert *al;
    bool delivered;
    int64_t now_ms; /* the app's clock when the outcome was known */
    const char *detail;
    hw_arena *arena; /* the event for watchers, after the commit */
    hw_effects fx;   /* ALERT_DELIVERED or ALERT_FAILED */
} outcome_ctx;

static int record_outcome_fn(hw_store_txn *w, void *arg)
{
    outcome_ctx *c = arg;
    hw_arena_reset(c->arena);
    hw_effects_begin(&c->fx, c->arena);
    hw_effects_set_now(&c->fx, c->now_ms);
    if (c->delivered) {
        int rc = hw_store_kv_delete(w, ALERT_NS, c->al->key, ALERT_KEY_LEN);
        if (rc != HW_OK && rc != HW_ENOTFOUND)
            return rc;
    }
    if (!c->al->ticket_id[0])
        return HW_OK;
    int rc = hw_watch_record_id(w, &c->fx, c->al->ticket_id,
                                c->delivered
                                    ? HELPWIRE__V1__TICKET_EVENT_KIND__TICKET_EVENT_KIND_ALERT_DELIVERED
                                    : HELPWIRE__V1__TICKET_EVENT_KIND__TICKET_EVENT_KIND_ALERT_FAILED,
                                "system", c->detail);
    if (rc == HW_OK) /* the other replicas' watchers see the event too */
        rc = hw_effects_note_in(&c->fx, w);
    return rc;
}

/* One attempt at al. Returns true when al is done (delivered and recorded). */
static bool attempt_traced(hw_notifier *n, alert *al);

/* attempt_traced with the thread's log trace set to the alert's. */
static bool attempt(hw_notifier *n, alert *al)
{
    hw_log_set_trace(al->trace_id);
    bool done = attempt_traced(n, al);
    hw_log_set_trace(NULL);
    return done;
}

static bool attempt_traced(hw_notifier *n, alert *al)
{
    char detail[CURL_ERROR_SIZE + 64];
    bool delivered = post_alert(n, al, detail, sizeof detail);
    if (!delivered && atomic_load(&n->stopping))
        return false; /* aborted by destroy: not a failure of the webhook */
    if (!delivered) {
        size_t used = strlen(detail);
        snprintf(detail + used, sizeof detail - used, " (attempt %u)", al->failures + 1);
    }
    outcome_ctx oc = {.al = al,
                      .delivered = delivered,
                      .now_ms = hw_clock_now_ms(n->app->clock),
                      .detail = detail,
                      .arena = hw_arena_create(2048)};
    int rc = oc.arena ? hw_store_write(n->app->store, record_outcome_fn, &oc) : HW_ENOMEM;
    if (oc.arena)
        hw_effects_run(&oc.fx, &n->app->after_commit, rc);
    hw_arena_destroy(oc.arena);
    char q[CURL_ERROR_SIZE + 80];
    if (rc == HW_ENOTLEADER) {
        /* The leadership went during the attempt: the new leader sends the
         * alert again; this replica drops its list (notifier_main). */
    } else if (rc != HW_OK) {
        hw_log_event(n->app->log, HW_LOG_ERROR, "alert_record_failed", "alert=%s ticket=%s error=%s", al->key,
                     al->ticket_id, hw_strerror(rc));
    } else if (delivered) {
        hw_log_event(n->app->log, HW_LOG_INFO, "alert_delivered", "alert=%s ticket=%s result=%s", al->key,
                     al->ticket_id, hw_log_quote(detail, q, sizeof q));
        return true;
    } else {
        hw_log_event(n->app->log, HW_LOG_WARN, "alert_failed", "alert=%s ticket=%s result=%s", al->key,
                     al->ticket_id, hw_log_quote(detail, q, sizeof q));
    }
    /* Failed, or delivered but not recorded: the alert stays; try later. */
    al->failures++;
    atomic_fetch_add_explicit(&n->retries, 1, memory_order_relaxed);
    int64_t backoff = BACKOFF_FIRST_MS;
    for (unsigned i = 1; i < al->failures && backoff < BACKOFF_MAX_MS; i++)
        backoff *= 2;
    if (backoff > BACKOFF_MAX_MS)
        backoff = BACKOFF_MAX_MS;
    al->next_ms = mono_ms() + backoff;
    return false;
}

/* Whether al has left the store since it was loaded: removed by
 * Customers.EraseCustomer (or delivered or expired by another leader). A
 * short read of its key; false when the store cannot say. */
static bool alert_gone(hw_notifier *n, const alert *al, hw_arena *a)
{
    hw_store_txn *txn = NULL;
    if (!a || hw_store_read_begin(n->reader, &txn) != HW_OK)
        return false;
    void *v;
    int rc = hw_store_kv_get(txn, ALERT_NS, al->key, ALERT_KEY_LEN, a, &v, NULL);
    hw_store_read_end(n->reader);
    if (rc == HW_OK)
        explicit_bzero(v, strlen(v));
    hw_arena_reset(a);
    return rc == HW_ENOTFOUND;
}

/* Tries every alert that is due; returns the next due time or INT64_MAX.
 * Each alert is looked up in the store first, due or not (every wake-up
 * passes here: EraseCustomer wakes the thread after its commit): one that
 * is gone is dropped from memory and never posted, even while a POST of
 * another alert was under way when it was erased. */
static int64_t deliver_due(hw_notifier *n)
{
    alert **p = &n->head, *prev = NULL;
    hw_arena *a = hw_arena_create(1024);
    while (*p && !atomic_load(&n->stopping) && hw_store_is_leader(n->app->store)) {
        alert *al = *p;
        bool gone = alert_gone(n, al, a);
        if (gone || (al->next_ms <= mono_ms() && attempt(n, al))) {
            if (gone)
                hw_log_event(n->app->log, HW_LOG_INFO, "alert_dropped", "alert=%s reason=\"no longer stored\"",
                             al->key);
            *p = al->next;
            if (n->tail == al)
                n->tail = prev;
            alert_free(al);
            atomic_fetch_sub_explicit(&n->pending, 1, memory_order_relaxed);
            continue;
        }
        prev = al;
        p = &al->next;
    }
    hw_arena_destroy(a);
    int64_t due = INT64_MAX;
    for (alert *al = n->head; al; al = al->next)
        if (al->next_ms < due)
            due = al->next_ms;
    return due;
}

/* Drops the in-memory queue (this replica no longer leads): the next
 * leadership loads it afresh from the store. */
static void forget_queue(hw_notifier *n)
{
    for (alert *al = n->head, *next; al; al = next) {
        next = al->next;
        alert_free(al);
    }
    n->head = n->tail = NULL;
    n->last_key[0] = '\0';
    n->warned_no_url = false;
    atomic_store_explicit(&n->pending, 0, memory_order_relaxed);
}

/* Whether this replica leads now; logs a change (once per change). */
static bool check_leading(hw_notifier *n)
{
    bool leads = hw_store_is_leader(n->app->store);
    if (leads != n->leading) {
        hw_log_event(n->app->log, HW_LOG_INFO, leads ? "notifier_active" : "notifier_standby",
                     "reason=\"%s\"",
                     leads ? "this replica leads: it delivers and expires the alerts"
                           : "not the leader of the replicas: the leader delivers the alerts");
        if (!leads)
            forget_queue(n);
        n->leading = leads;
    }
    return leads;
}

static void *notifier_main(void *arg)
{
    hw_notifier *n = arg;
    bool expiring = n->app->settings.alert_retention_ms > 0;
    int64_t due = INT64_MAX;
    for (;;) {
        pthread_mutex_lock(&n->mu);
        while (!n->wake && !n->stop) {
            int64_t until = due;
            if (expiring && n->next_expire_ms < until)
                until = n->next_expire_ms;
            if (!n->leading) /* look at the leadership again now and then */
                until = mono_ms() + LEADER_POLL_MS;
            if (until == INT64_MAX) {
                pthread_cond_wait(&n->cv, &n->mu);
                continue;
            }
            struct timespec ts = {.tv_sec = until / 1000, .tv_nsec = (until % 1000) * 1000000};
            if (pthread_cond_timedwait(&n->cv, &n->mu, &ts) != 0)
                break;
        }
        n->wake = false;
        bool stop = n->stop, removed = n->recount;
        n->recount = false;
        pthread_mutex_unlock(&n->mu);
        if (stop)
            break;
        if (!check_leading(n)) {
            due = INT64_MAX;
            continue;
        }
        if (removed)
            recount(n);
        load_new(n);
        if (expiring && mono_ms() >= n->next_expire_ms)
            n->next_expire_ms = mono_ms() + (expire_old(n) ? 0 : EXPIRE_EVERY_MS);
        due = n->url ? deliver_due(n) : INT64_MAX;
    }
    return NULL;
}

/* ------------------------------------------------------------ lifecycle */

int hw_notifier_create(hw_notifier **out, hw_app *app)
{
    *out = NULL;
    hw_notifier *n = calloc(1, sizeof *n);
    if (!n)
        return HW_ENOMEM;
    n->app = app;
    n->url = app->settings.webhook_url && app->settings.webhook_url[0] ? app->settings.webhook_url : NULL;
    pthread_mutex_init(&n->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&n->cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&n->stopping, false);
    n->wake = true;    /* load what was pending before a restart */
    n->leading = true; /* a single node leads; a replica that does not says so once */
    int rc = HW_ENOMEM;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        goto fail;
    n->curl_global = true;
    n->curl = curl_easy_init();
    n->headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (!n->curl || !n->headers)
        goto fail;
    curl_easy_setopt(n->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(n->curl, CURLOPT_POST, 1L);
    curl_easy_setopt(n->curl, CURLOPT_HTTPHEADER, n->headers);
    curl_easy_setopt(n->curl, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(n->curl, CURLOPT_TIMEOUT_MS, TOTAL_TIMEOUT_MS);
    curl_easy_setopt(n->curl, CURLOPT_USERAGENT, "helpwired-notifier");
    curl_easy_setopt(n->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(n->curl, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(n->curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(n->curl, CURLOPT_XFERINFOFUNCTION, abort_when_stopping);
    curl_easy_setopt(n->curl, CURLOPT_XFERINFODATA, n);
    rc = hw_store_reader_create(app->store, &n->reader);
    if (rc != HW_OK)
        goto fail;
    if (pthread_create(&n->thread, NULL, notifier_main, n) != 0) {
        rc = HW_ENOMEM;
        goto fail;
    }
    n->thread_started = true;
    pthread_setname_np(n->thread, "hw-notifier");
    *out = n;
    return HW_OK;
fail:
    hw_notifier_destroy(n);
    return rc;
}

void hw_notifier_destroy(hw_notifier *n)
{
    if (!n)
        return;
    if (n->thread_started) {
        atomic_store(&n->stopping, true);
        pthread_mutex_lock(&n->mu);
        n->stop = true;
        pthread_cond_signal(&n->cv);
        pthread_mutex_unlock(&n->mu);
        pthread_join(n->thread, NULL);
    }
    for (alert *al = n->head, *next; al; al = next) {
        next = al->next;
        alert_free(al);
    }
    hw_store_reader_destroy(n->reader);
    if (n->curl)
        curl_easy_cleanup(n->curl);
    curl_slist_free_all(n->headers);
    if (n->curl_global)
        curl_global_cleanup();
    pthread_cond_destroy(&n->cv);
    pthread_mutex_destroy(&n->mu);
    free(n);
}

uint64_t hw_notifier_retries(hw_notifier *n)
{
    return n ? atomic_load_explicit(&n->retries, memory_order_relaxed) : 0;
}

uint64_t hw_notifier_pending(hw_notifier *n)
{
    return n ? atomic_load_explicit(&n->pending, memory_order_relaxed) : 0;
}

uint64_t hw_notifier_expired(hw_notifier *n)
{
    return n ? atomic_load_explicit(&n->expired, memory_order_relaxed) : 0;
}

uint64_t hw_notifier_scanned(hw_notifier *n)
{
    return n ? atomic_load_explicit(&n->scanned, memory_order_relaxed) : 0;
}
