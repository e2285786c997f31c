/*
 * hub: sessions in a chained hash table plus a small ring of events each
 * (see hub.h). The session count is small enough (thousands) that
 * evicting the least recently active one by a scan on creation is cheaper
 * than maintaining another list.
 */
#include "clients/webchat/hub.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clients/lib/secure.h"

typedef struct session {
    struct session *chain;
    char id[65];
    char name[257];
    int64_t active_ms;
    uint64_t *ev_ids; /* ring of max_events */
    char **ev_json;
    size_t ev_start, ev_count;
} session;

struct wc_hub {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    session **buckets;
    size_t mask;
    size_t n_sessions, max_sessions, max_events;
    bool closing;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t hash_id(const char *s)
{
    size_t h = 5381;
    while (*s)
        h = h * 33 + (unsigned char)*s++;
    return h;
}

wc_hub *wc_hub_create(size_t max_sessions, size_t max_events)
{
    wc_hub *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    size_t n = 64;
    while (n < max_sessions)
        n *= 2;
    h->buckets = calloc(n, sizeof *h->buckets);
    if (!h->buckets) {
        free(h);
        return NULL;
    }
    h->mask = n - 1;
    h->max_sessions = max_sessions ? max_sessions : 1;
    h->max_events = max_events ? max_events : 1;
    pthread_mutex_init(&h->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->cv, &ca);
    pthread_condattr_destroy(&ca);
    return h;
}

static void session_free(wc_hub *h, session *s)
{
    if (!s)
        return;
    for (size_t i = 0; s->ev_json && i < s->ev_count; i++)
        free(s->ev_json[(s->ev_start + i) % h->max_events]);
    free(s->ev_json);
    free(s->ev_ids);
    free(s);
}

void wc_hub_destroy(wc_hub *h)
{
    if (!h)
        return;
    for (size_t b = 0; b <= h->mask; b++) {
        for (session *s = h->buckets[b], *n; s; s = n) {
            n = s->chain;
            session_free(h, s);
        }
    }
    free(h->buckets);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

bool wc_hub_valid_id(const char *id)
{
    if (!id)
        return false;
    size_t n = strlen(id);
    return n >= 22 && n <= 64 &&
           strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == n;
}

static session *find_locked(wc_hub *h, const char *id)
{
    for (session *s = h->buckets[hash_id(id) & h->mask]; s; s = s->chain)
        if (strcmp(s->id, id) == 0)
            return s;
    return NULL;
}

static void evict_oldest_locked(wc_hub *h)
{
    session **victim = NULL;
    for (size_t b = 0; b <= h->mask; b++)
        for (session **p = &h->buckets[b]; *p; p = &(*p)->chain)
            if (!victim || (*p)->active_ms < (*victim)->active_ms)
                victim = p;
    if (!victim)
        return;
    session *s = *victim;
    *victim = s->chain;
    session_free(h, s);
    h->n_sessions--;
}

/* Finds or creates id. Caller holds mu. */
static session *get_locked(wc_hub *h, const char *id, const char *name)
{
    session *s = find_locked(h, id);
    if (s) {
        s->active_ms = mono_ms();
        return s;
    }
    if (h->n_sessions >= h->max_sessions)
        evict_oldest_locked(h);
    s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->ev_ids = calloc(h->max_events, sizeof *s->ev_ids);
    s->ev_json = calloc(h->max_events, sizeof *s->ev_json);
    if (!s->ev_ids || !s->ev_json) {
        session_free(h, s);
        return NULL;
    }
    snprintf(s->id, sizeof s->id, "%s", id);
    snprintf(s->name, sizeof s->name, "%s", name ? name : "");
    s->active_ms = mono_ms();
    size_t b = hash_id(id) & h->mask;
    s->chain = h->buckets[b];
    h->buckets[b] = s;
    h->n_sessions++;
    return s;
}

int wc_hub_create_session(wc_hub *h, const char *name, char *id_out, size_t id_size)
{
    char id[40];
    if (br_random_token(id, sizeof id, 18) != 0 || id_size <= strlen(id))
        return -1;
    pthread_mutex_lock(&h->mu);
    session *s = get_locked(h, id, name);
    pthread_mutex_unlock(&h->mu);
    if (!s)
        return -1;
    snprintf(id_out, id_size, "%s", id);
    return 0;
}

int wc_hub_touch(wc_hub *h, const char *id, char *name, size_t name_size)
{
    if (!wc_hub_valid_id(id))
        return -1;
    pthread_mutex_lock(&h->mu);
    session *s = get_locked(h, id, NULL);
    if (s && name)
        snprintf(name, name_size, "%s", s->name);
    pthread_mutex_unlock(&h->mu);
    return s ? 0 : -1;
}

int wc_hub_publish(wc_hub *h, const char *id, uint64_t seq, const char *json)
{
    if (!wc_hub_valid_id(id))
        return -1;
    int rc = -1;
    pthread_mutex_lock(&h->mu);
    session *s = get_locked(h, id, NULL);
    if (!s)
        goto out;
    for (size_t i = 0; i < s->ev_count; i++) {
        if (s->ev_ids[(s->ev_start + i) % h->max_events] == seq) {
            rc = 0; /* redelivered: already held */
            goto out;
        }
    }
    char *copy = strdup(json);
    if (!copy)
        goto out;
    if (s->ev_count == h->max_events) {
        free(s->ev_json[s->ev_start]);
        s->ev_start = (s->ev_start + 1) % h->max_events;
        s->ev_count--;
    }
    size_t slot = (s->ev_start + s->ev_count) % h->max_events;
    s->ev_ids[slot] = seq;
    s->ev_json[slot] = copy;
    s->ev_count++;
    pthread_cond_broadcast(&h->cv);
    rc = 0;
out:
    pthread_mutex_unlock(&h->mu);
    return rc;
}

/* Copies events of s after `after` (in id order) into out. */
static int collect_locked(wc_hub *h, session *s, uint64_t after, wc_event *out, int max)
{
    int n = 0;
    uint64_t last = after;
    /* Ids arrive in increasing order except on redelivery, so select the
     * smallest id above `last` repeatedly; max and the ring are small. */
    while (n < max) {
        size_t best = (size_t)-1;
        for (size_t i = 0; i < s->ev_count; i++) {
            size_t slot = (s->ev_start + i) % h->max_events;
            if (s->ev_ids[slot] > last && (best == (size_t)-1 || s->ev_ids[slot] < s->ev_ids[best]))
                best = slot;
        }
        if (best == (size_t)-1)
            break;
        out[n].json = strdup(s->ev_json[best]);
        if (!out[n].json)
            break;
        out[n].id = s->ev_ids[best];
        last = out[n].id;
        n++;
    }
    return n;
}

int wc_hub_wait(wc_hub *h, const char *id, uint64_t after, wc_event *out, int max, int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    int n = -1;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        if (h->closing)
            break;
        session *s = find_locked(h, id);
        if (!s)
            break;
        s->active_ms = mono_ms();
        n = collect_locked(h, s, after, out, max);
        if (n > 0)
            break;
        if (pthread_cond_timedwait(&h->cv, &h->mu, &until) != 0) {
            n = 0;
            break;
        }
    }
    pthread_mutex_unlock(&h->mu);
    return n;
}

void wc_hub_close(wc_hub *h)
{
    pthread_mutex_lock(&h->mu);
    h->closing = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}
