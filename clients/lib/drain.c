/* drain: spool inbound messages, route them from the spool on one thread
 * (see drain.h). */
#include "clients/lib/drain.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

/* How often an idle drainer looks at the spool again, for entries another
 * process appended. */
#define BR_DRAIN_IDLE_MS 1000

struct br_drain {
    br_drain_options o;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool woken;               /* an append since the drainer last looked */
    bool closing;             /* br_drain_stop was called */
    int64_t drain_until_mono; /* when closing: the end of the drain */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timespec mono_at(int64_t ms)
{
    return (struct timespec){(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
}

char *br_drain_encode(const br_inbound *in, int64_t received_ms, size_t *len)
{
    json_t *j = json_pack("{s:i, s:s, s:s, s:s, s:s, s:I}", "channel", (int)in->channel, "user",
                          in->channel_user_id, "text", in->text, "message_id", in->message_id, "name",
                          in->display_name ? in->display_name : "", "received_ms", (json_int_t)received_ms);
    if (j && in->locale)
        json_object_set_new(j, "locale", json_string(in->locale));
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (s)
        *len = strlen(s);
    return s;
}

/* Fills in from an entry's JSON (strings borrowed from j). */
static bool decode(json_t *j, br_inbound *in, int64_t *received_ms)
{
    json_t *ch = json_object_get(j, "channel");
    memset(in, 0, sizeof *in);
    in->channel = (Helpwire__V1__Channel)json_integer_value(ch);
    in->channel_user_id = json_string_value(json_object_get(j, "user"));
    in->text = json_string_value(json_object_get(j, "text"));
    in->message_id = json_string_value(json_object_get(j, "message_id"));
    in->display_name = json_string_value(json_object_get(j, "name"));
    in->locale = json_string_value(json_object_get(j, "locale"));
    *received_ms = (int64_t)json_integer_value(json_object_get(j, "received_ms"));
    return json_is_integer(ch) && in->channel_user_id && in->text && in->message_id;
}

/* Between two attempts of one message: waits ms, cut short only by a stop;
 * true once stopping and past the drain deadline. */
static bool wait_between_attempts(void *arg, int ms)
{
    br_drain *d = arg;
    int64_t until = mono_ms() + ms;
    bool give_up = false;
    pthread_mutex_lock(&d->mu);
    for (;;) {
        bool was_closing = d->closing;
        int64_t end = until;
        if (d->closing) {
            if (mono_ms() >= d->drain_until_mono) {
                give_up = true;
                break;
            }
            if (d->drain_until_mono < end)
                end = d->drain_until_mono;
        }
        if (mono_ms() >= end)
            break;
        struct timespec t = mono_at(end);
        pthread_cond_timedwait(&d->cv, &d->mu, &t);
        if (!was_closing && d->closing)
            continue; /* the deadline may be sooner than the pause */
    }
    pthread_mutex_unlock(&d->mu);
    return give_up;
}

/* True when the drainer must end now: stopping and past the deadline. */
static bool drained(br_drain *d)
{
    pthread_mutex_lock(&d->mu);
    bool done = d->closing && mono_ms() >= d->drain_until_mono;
    pthread_mutex_unlock(&d->mu);
    return done;
}

/* Idle: waits for an append, a stop, or BR_DRAIN_IDLE_MS. Returns true
 * when stopping (nothing left to drain). */
static bool wait_idle(br_drain *d, int ms)
{
    pthread_mutex_lock(&d->mu);
    if (!d->woken && !d->closing) {
        struct timespec t = mono_at(mono_ms() + ms);
        pthread_cond_timedwait(&d->cv, &d->mu, &t);
    }
    d->woken = false;
    bool closing = d->closing;
    pthread_mutex_unlock(&d->mu);
    return closing;
}

static void *drain_main(void *arg)
{
    br_drain *d = arg;
    char err[600];
    while (!drained(d)) {
        uint64_t seq = 0;
        char *data = NULL;
        size_t len = 0;
        int rc = br_spool_peek(d->o.spool, &seq, &data, &len, err, sizeof err);
        if (rc == BR_SPOOL_EMPTY) {
            if (wait_idle(d, BR_DRAIN_IDLE_MS))
                break; /* stopping with an empty spool */
            continue;
        }
        if (rc != BR_SPOOL_OK) {
            hw_log_event(d->o.log, HW_LOG_ERROR, "spool_read_failed", "error=\"%s\"", err);
            if (wait_between_attempts(d, BR_DRAIN_IDLE_MS))
                break;
            continue;
        }
        json_t *j = json_loadb(data, len, 0, NULL);
        br_inbound in;
        int64_t received_ms = 0;
        br_route_result r = BR_ROUTE_DEAD;
        if (!decode(j, &in, &received_ms)) {
            /* Not written by this module: nothing to route or record. */
            hw_log_event(d->o.log, HW_LOG_ERROR, "spool_entry_unreadable", "seq=%llu bytes=%zu",
                         (unsigned long long)seq, len);
        } else {
            r = br_route_deliver(d->o.route, &in, received_ms, wait_between_attempts, d, NULL);
        }
        json_decref(j);
        free(data);
        if (r == BR_ROUTE_RETRY)
            continue; /* stopping (the loop ends), or no dead letter written: try it again */
        if (br_spool_remove(d->o.spool, seq, err, sizeof err) != 0) {
            /* Routed but still spooled: routed again later, a duplicate
             * helpwired recognizes. */
            hw_log_event(d->o.log, HW_LOG_ERROR, "spool_remove_failed", "seq=%llu error=\"%s\"",
                         (unsigned long long)seq, err);
            if (wait_between_attempts(d, BR_DRAIN_IDLE_MS))
                break;
        }
    }
    uint64_t left = br_spool_count(d->o.spool);
    if (left)
        hw_log_event(d->o.log, HW_LOG_INFO, "spool_left", "entries=%llu", (unsigned long long)left);
    return NULL;
}

int br_drain_start(br_drain **out, const br_drain_options *o)
{
    *out = NULL;
    br_drain *d = calloc(1, sizeof *d);
    if (!d)
        return -1;
    d->o = *o;
    pthread_mutex_init(&d->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&d->thread, NULL, drain_main, d) != 0) {
        pthread_cond_destroy(&d->cv);
        pthread_mutex_destroy(&d->mu);
        free(d);
        return -1;
    }
    *out = d;
    return 0;
}

void br_drain_wake(br_drain *d)
{
    pthread_mutex_lock(&d->mu);
    d->woken = true;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

bool br_drain_idle(br_drain *d)
{
    return br_spool_count(d->o.spool) == 0;
}

int br_drain_spool(br_drain *d, const br_inbound *in, const int64_t *received_ms, size_t n, char *err,
                   size_t errlen)
{
    if (n == 0)
        return BR_SPOOL_OK;
    br_spool_item *items = calloc(n, sizeof *items);
    int rc = BR_SPOOL_ERR;
    size_t done = 0;
    if (!items) {
        snprintf(err, errlen, "out of memory");
        return BR_SPOOL_ERR;
    }
    int64_t now = br_route_now_ms();
    for (; done < n; done++) {
        int64_t at = received_ms && received_ms[done] > 0 ? received_ms[done] : now;
        items[done].data = br_drain_encode(&in[done], at, &items[done].len);
        if (!items[done].data) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
    }
    rc = br_spool_append(d->o.spool, items, n, NULL, err, errlen);
    if (rc == BR_SPOOL_OK)
        br_drain_wake(d);
out:
    for (size_t i = 0; i < done; i++)
        free((void *)items[i].data);
    free(items);
    return rc;
}

void br_drain_stop(br_drain *d, int drain_timeout_ms)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    d->closing = true;
    d->drain_until_mono = mono_ms() + (drain_timeout_ms > 0 ? drain_timeout_ms : 0);
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->thread, NULL);
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    free(d);
}
