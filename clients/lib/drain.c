/* drain: spool inbound messages, route them from the spool on one thread
 * (see drain.h). */
#include "clients/lib/drain.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "clients/lib/backoff.h"

/* How often an idle drainer looks at the spool again, for entries another
 * process appended. */
#define BR_DRAIN_IDLE_MS 1000

/* Senders held back at once (helpwired's per-sender limit refused one of
 * their messages); past it the one released soonest is forgotten. */
#define BR_DRAIN_MAX_HELD 1024

/* A sender held back: the hash of (channel, channel_user_id), until when
 * (monotonic ms). */
typedef struct {
    uint64_t sender;
    int64_t until_mono;
} held_sender;

struct br_drain {
    br_drain_options o;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool woken;               /* an append since the drainer last looked */
    bool closing;             /* br_drain_stop was called */
    int64_t drain_until_mono; /* when closing: the end of the drain */
    br_route_policy policy;   /* o.route's, holding rate-limited senders */
    /* Drainer thread only: the senders whose messages wait for a limit. */
    held_sender held[BR_DRAIN_MAX_HELD];
    size_t n_held;
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
    if (j && in->media)
        json_object_set_new(j, "media", json_string(in->media));
    if (j && in->contact_email && *in->contact_email)
        json_object_set_new(j, "contact_email", json_string(in->contact_email));
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
    in->media = json_string_value(json_object_get(j, "media"));
    in->contact_email = json_string_value(json_object_get(j, "contact_email"));
    *received_ms = (int64_t)json_integer_value(json_object_get(j, "received_ms"));
    return json_is_integer(ch) && in->channel_user_id && in->text && in->message_id;
}

/* FNV-1a of the channel and the sender's id. */
static uint64_t sender_hash(const br_inbound *in)
{
    uint64_t h = 1469598103934665603ull;
    h = (h ^ (uint64_t)in->channel) * 1099511628211ull;
    for (const unsigned char *p = (const unsigned char *)in->channel_user_id; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return h;
}

/* Drops the holds that have ended; returns the soonest end of the others
 * (INT64_MAX when none). */
static int64_t prune_held(br_drain *d, int64_t now)
{
    int64_t soonest = INT64_MAX;
    size_t j = 0;
    for (size_t i = 0; i < d->n_held; i++) {
        if (d->held[i].until_mono <= now)
            continue;
        if (d->held[i].until_mono < soonest)
            soonest = d->held[i].until_mono;
        d->held[j++] = d->held[i];
    }
    d->n_held = j;
    return soonest;
}

/* Whether the sender is held: in the list, even when its hold has just
 * ended. Holds leave the list only where the scan starts again from the
 * oldest entry (prune_held's callers): a hold that ended while the scan
 * was past one of the sender's entries must not let a later entry of
 * theirs go first. */
static bool is_held(br_drain *d, uint64_t sender)
{
    for (size_t i = 0; i < d->n_held; i++)
        if (d->held[i].sender == sender)
            return true;
    return false;
}

static void hold(br_drain *d, uint64_t sender, int64_t until)
{
    size_t at = d->n_held;
    for (size_t i = 0; i < d->n_held; i++)
        if (d->held[i].sender == sender)
            at = i;
    if (at == BR_DRAIN_MAX_HELD) { /* full: forget the one released soonest */
        at = 0;
        for (size_t i = 1; i < d->n_held; i++)
            if (d->held[i].until_mono < d->held[at].until_mono)
                at = i;
    } else if (at == d->n_held) {
        d->n_held++;
    }
    d->held[at] = (held_sender){sender, until};
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

/* The prepare step for an entry with media (see drain.h): called until it
 * answers BR_PREPARE_OK, with the route policy's backoff between calls,
 * and a last time with last_try once the message is too old. Fills *prep
 * and points in at what to route. Returns false when stopping before it
 * was done (the entry stays spooled). */
static bool prepare_entry(br_drain *d, br_inbound *in, int64_t received_ms, br_prepared *prep)
{
    br_backoff bo;
    br_backoff_init(&bo, d->policy.backoff_initial_ms, d->policy.backoff_max_ms, (uintptr_t)in ^ (uint64_t)received_ms);
    char err[512], q[160], q2[300];
    for (int attempts = 1;; attempts++) {
        int64_t now = br_route_now_ms();
        if (received_ms <= 0 || received_ms > now)
            received_ms = now;
        bool last_try = now - received_ms >= d->policy.max_retry_age_ms;
        memset(prep, 0, sizeof *prep);
        err[0] = '\0';
        int rc = d->o.prepare(d->o.prepare_arg, in, last_try, prep, err, sizeof err);
        if (rc == BR_PREPARE_OK || last_try) {
            if (prep->text)
                in->text = prep->text;
            in->attachments = prep->attachments;
            in->n_attachments = prep->n_attachments;
            return true;
        }
        int delay = br_backoff_next_ms(&bo);
        int64_t left = received_ms + d->policy.max_retry_age_ms - br_route_now_ms();
        if (left > 0 && delay > left)
            delay = (int)left;
        hw_log_event(d->o.log, HW_LOG_WARN, "media_retry", "message_id=%s attempts=%d delay_ms=%d error=%s",
                     hw_log_quote(in->message_id, q, sizeof q), attempts, delay, hw_log_quote(err, q2, sizeof q2));
        d->o.prepare_done(d->o.prepare_arg, prep);
        memset(prep, 0, sizeof *prep);
        if (wait_between_attempts(d, delay > 0 ? delay : 1))
            return false;
    }
}

/* The drainer. It routes the oldest entry; when helpwired's per-sender
 * limit refuses one (BR_ROUTE_LIMITED), that sender is held for the
 * RetryInfo delay and the drainer goes on with the entries after it,
 * passing over the held senders' ones (so each sender's messages keep
 * their order), and starts again from the oldest once a hold ends. */
static void *drain_main(void *arg)
{
    br_drain *d = arg;
    char err[600];
    uint64_t after = 0; /* the scan's place: entries up to it were passed over */
    while (!drained(d)) {
        uint64_t seq = 0;
        char *data = NULL;
        size_t len = 0;
        int rc = br_spool_next(d->o.spool, after, &seq, &data, &len, err, sizeof err);
        if (rc == BR_SPOOL_EMPTY && after != 0) {
            /* Past the last entry with some held back: wait for the first
             * hold to end (or an append), then start from the oldest. */
            int64_t now = mono_ms(), soonest = prune_held(d, now);
            after = 0;
            if (soonest != INT64_MAX) {
                int64_t ms = soonest - now < BR_DRAIN_IDLE_MS ? soonest - now : BR_DRAIN_IDLE_MS;
                if (wait_idle(d, (int)(ms > 0 ? ms : 1)))
                    break; /* stopping: the held entries stay spooled */
            }
            continue;
        }
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
        br_route_trace tr = {0};
        br_prepared prep = {0};
        if (!decode(j, &in, &received_ms)) {
            /* Not written by this module: nothing to route or record. */
            hw_log_event(d->o.log, HW_LOG_ERROR, "spool_entry_unreadable", "seq=%llu bytes=%zu",
                         (unsigned long long)seq, len);
        } else if (is_held(d, sender_hash(&in))) {
            r = BR_ROUTE_LIMITED; /* a held sender's later message: keep their order */
        } else if (in.media && d->o.prepare && !prepare_entry(d, &in, received_ms, &prep)) {
            r = BR_ROUTE_RETRY; /* stopping: the entry stays spooled */
        } else {
            r = br_route_deliver(&d->policy, &in, received_ms, wait_between_attempts, d, &tr);
            if (r == BR_ROUTE_LIMITED) {
                char q[160];
                hold(d, sender_hash(&in), mono_ms() + tr.last.retry_delay_ms);
                hw_log_event(d->o.log, HW_LOG_INFO, "sender_held", "user=%s delay_ms=%lld seq=%llu",
                             hw_log_quote(in.channel_user_id, q, sizeof q), (long long)tr.last.retry_delay_ms,
                             (unsigned long long)seq);
            }
        }
        if (d->o.prepare_done)
            d->o.prepare_done(d->o.prepare_arg, &prep);
        json_decref(j);
        free(data);
        if (r == BR_ROUTE_LIMITED) {
            after = seq; /* go on with the entries after it */
            continue;
        }
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
        if (after != 0) {
            /* A hold that has ended lets its sender's older entries go
             * first: back to the oldest. */
            int64_t now = mono_ms();
            size_t before = d->n_held;
            prune_held(d, now);
            if (d->n_held < before)
                after = 0;
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
    d->policy = *o->route;
    d->policy.hold_rate_limited = true;
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
