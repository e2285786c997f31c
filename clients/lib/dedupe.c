/*
 * dedupe: chained hash table (power-of-two buckets, FNV-1a) whose entries
 * also sit on a doubly linked recency list; the list's tail is evicted when
 * the set is full (see dedupe.h).
 */
#include "clients/lib/dedupe.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 255

typedef struct entry {
    struct entry *chain;         /* next in bucket */
    struct entry *newer, *older; /* recency list */
    uint64_t hash;
    char key[];
} entry;

struct br_dedupe {
    pthread_mutex_t mu;
    entry **buckets;
    size_t mask;
    size_t size, capacity;
    entry *newest, *oldest;
};

static uint64_t hash_key(const char *k, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)k[i];
        h *= 1099511628211ull;
    }
    return h;
}

br_dedupe *br_dedupe_create(size_t capacity)
{
    if (capacity == 0)
        capacity = 1;
    br_dedupe *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    size_t n = 16;
    while (n < capacity * 2)
        n *= 2;
    d->buckets = calloc(n, sizeof *d->buckets);
    if (!d->buckets) {
        free(d);
        return NULL;
    }
    d->mask = n - 1;
    d->capacity = capacity;
    pthread_mutex_init(&d->mu, NULL);
    return d;
}

void br_dedupe_destroy(br_dedupe *d)
{
    if (!d)
        return;
    for (entry *e = d->newest, *n; e; e = n) {
        n = e->older;
        free(e);
    }
    free(d->buckets);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

static void list_unlink(br_dedupe *d, entry *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else
        d->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        d->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void list_push_newest(br_dedupe *d, entry *e)
{
    e->newer = NULL;
    e->older = d->newest;
    if (d->newest)
        d->newest->newer = e;
    d->newest = e;
    if (!d->oldest)
        d->oldest = e;
}

/* Finds key; *link is set to the pointer that points at the result (or at
 * the end of its chain). Caller holds mu. */
static entry *find_locked(br_dedupe *d, const char *key, size_t len, uint64_t h, entry ***link)
{
    entry **p = &d->buckets[h & d->mask];
    while (*p) {
        if ((*p)->hash == h && strlen((*p)->key) == len && memcmp((*p)->key, key, len) == 0)
            break;
        p = &(*p)->chain;
    }
    *link = p;
    return *p;
}

static void remove_locked(br_dedupe *d, entry *e)
{
    entry **link;
    find_locked(d, e->key, strlen(e->key), e->hash, &link);
    *link = e->chain;
    list_unlink(d, e);
    d->size--;
    free(e);
}

int br_dedupe_add(br_dedupe *d, const char *key)
{
    size_t len = strnlen(key, KEY_MAX);
    uint64_t h = hash_key(key, len);
    int rc = 0;
    pthread_mutex_lock(&d->mu);
    entry **link;
    entry *e = find_locked(d, key, len, h, &link);
    if (e) {
        list_unlink(d, e);
        list_push_newest(d, e);
        rc = 1;
        goto out;
    }
    e = malloc(sizeof *e + len + 1);
    if (!e) {
        rc = -1;
        goto out;
    }
    memcpy(e->key, key, len);
    e->key[len] = '\0';
    e->hash = h;
    e->chain = NULL;
    *link = e;
    list_push_newest(d, e);
    d->size++;
    if (d->size > d->capacity)
        remove_locked(d, d->oldest);
out:
    pthread_mutex_unlock(&d->mu);
    return rc;
}

bool br_dedupe_contains(br_dedupe *d, const char *key)
{
    size_t len = strnlen(key, KEY_MAX);
    entry **link;
    pthread_mutex_lock(&d->mu);
    bool found = find_locked(d, key, len, hash_key(key, len), &link) != NULL;
    pthread_mutex_unlock(&d->mu);
    return found;
}

void br_dedupe_remove(br_dedupe *d, const char *key)
{
    size_t len = strnlen(key, KEY_MAX);
    entry **link;
    pthread_mutex_lock(&d->mu);
    entry *e = find_locked(d, key, len, hash_key(key, len), &link);
    if (e)
        remove_locked(d, e);
    pthread_mutex_unlock(&d->mu);
}

size_t br_dedupe_size(br_dedupe *d)
{
    pthread_mutex_lock(&d->mu);
    size_t n = d->size;
    pthread_mutex_unlock(&d->mu);
    return n;
}
