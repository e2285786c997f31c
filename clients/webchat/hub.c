/*
 * hub: sessions in a chained hash table, each with its version (see
 * hub.h). The session count is small enough (thousands) that
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
    uint64_t version;        /* raised by wc_hub_notify and wc_hub_typing */
    uint64_t typing_serial;  /* raised by wc_hub_typing */
    int64_t typing_until_ms; /* monotonic */
    char typing_name[129];
} session;

struct wc_hub {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    session **buckets;
    size_t mask;
    size_t n_sessions, max_sessions;
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

wc_hub *wc_hub_create(size_t max_sessions)
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
    (void)h;
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

int wc_hub_notify(wc_hub *h, const char *id)
{
    if (!wc_hub_valid_id(id))
        return -1;
    pthread_mutex_lock(&h->mu);
    session *s = get_locked(h, id, NULL);
    if (s) {
        s->version++;
        pthread_cond_broadcast(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    return s ? 0 : -1;
}

int wc_hub_typing(wc_hub *h, const char *id, const char *author, int duration_ms)
{
    if (!wc_hub_valid_id(id))
        return -1;
    pthread_mutex_lock(&h->mu);
    session *s = get_locked(h, id, NULL);
    if (s) {
        s->typing_serial++;
        s->typing_until_ms = mono_ms() + duration_ms;
        snprintf(s->typing_name, sizeof s->typing_name, "%s", author ? author : "");
        s->version++;
        pthread_cond_broadcast(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    return s ? 0 : -1;
}

int wc_hub_typing_get(wc_hub *h, const char *id, uint64_t *serial, char *author, size_t author_size,
                      int *left_ms)
{
    int rc = -1;
    pthread_mutex_lock(&h->mu);
    session *s = find_locked(h, id);
    if (s) {
        int64_t left = s->typing_until_ms - mono_ms();
        *serial = s->typing_serial;
        *left_ms = left > 0 ? (int)left : 0;
        if (author)
            snprintf(author, author_size, "%s", s->typing_name);
        rc = 0;
    }
    pthread_mutex_unlock(&h->mu);
    return rc;
}

int wc_hub_version(wc_hub *h, const char *id, uint64_t *version)
{
    int rc = -1;
    pthread_mutex_lock(&h->mu);
    session *s = h->closing ? NULL : find_locked(h, id);
    if (s) {
        s->active_ms = mono_ms();
        *version = s->version;
        rc = 0;
    }
    pthread_mutex_unlock(&h->mu);
    return rc;
}

int wc_hub_wait(wc_hub *h, const char *id, uint64_t seen, int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    int rc = -1;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        if (h->closing)
            break;
        session *s = find_locked(h, id);
        if (!s)
            break;
        s->active_ms = mono_ms();
        if (s->version != seen) {
            rc = 1;
            break;
        }
        if (pthread_cond_timedwait(&h->cv, &h->mu, &until) != 0) {
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&h->mu);
    return rc;
}

void wc_hub_close(wc_hub *h)
{
    pthread_mutex_lock(&h->mu);
    h->closing = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}
