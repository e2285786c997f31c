/*
 * dedupe: a bounded set of recently seen message ids with least-recently
 * used eviction, so a channel that delivers the same message twice (a
 * webhook retried, an update polled again, an outbox message redelivered)
 * is handled once while memory stays fixed. A hash table of chains plus a
 * recency list; every operation is O(1) on average.
 *
 * The set remembers only the last `capacity` ids: it is a fast first line,
 * not the guarantee. helpwired's Route dedupes by (channel, message_id)
 * durably, so an id evicted here, or forgotten by a restart, is still
 * answered once.
 *
 * Thread-safe: one internal mutex.
 */
#ifndef BR_DEDUPE_H
#define BR_DEDUPE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct br_dedupe br_dedupe;

/* Creates an empty set holding at most capacity (>= 1) ids. NULL when out
 * of memory. */
br_dedupe *br_dedupe_create(size_t capacity);

/* Frees d; NULL is ignored. */
void br_dedupe_destroy(br_dedupe *d);

/* Adds key (copied; at most 255 bytes are significant), evicting the least
 * recently used id when full. Returns 1 when key was already present (it
 * becomes the most recent), 0 when it was added, -1 when out of memory. */
int br_dedupe_add(br_dedupe *d, const char *key);

/* Whether key is present (without touching its recency). */
bool br_dedupe_contains(br_dedupe *d, const char *key);

/* Removes key if present, so a message whose handling failed can be taken
 * again. */
void br_dedupe_remove(br_dedupe *d, const char *key);

/* Number of ids held. */
size_t br_dedupe_size(br_dedupe *d);

#endif
