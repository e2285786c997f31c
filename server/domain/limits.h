/*
 * limits: token buckets that keep one customer (or a burst of new ones)
 * from flooding Route. Two parts:
 *
 * - hw_limits, a table of token buckets keyed by bytes: each key may take
 *   up to `burst` tokens at once and gets `rate_per_min` back per minute.
 *   It is built for many keys (one per sender): bounded memory (capacity
 *   buckets, allocated once), set-associative (a key's hash picks a set of
 *   HW_LIMITS_WAYS buckets; a new key takes an empty bucket of its set,
 *   else one that has refilled completely, i.e. an idle sender's, which
 *   forgets nothing, else the fullest one), and striped locks (a set's
 *   stripe; a take holds one stripe for a few dozen instructions), so
 *   workers rarely meet. Keys are remembered by a seeded 64-bit XXH3 hash,
 *   not by their bytes: two senders share a bucket only on a hash
 *   collision, which an outsider cannot aim for without the seed.
 *
 * - hw_route_limits, Route's policy over two of them: a bucket per
 *   (channel, channel_user_id) for every message, and a bucket per channel
 *   for the messages of senders without a customer yet (new customers),
 *   with the refusals counted per channel and kind for the metrics.
 *
 * The time is the caller's (monotonic milliseconds), so tests drive it.
 * Limits are in memory and per process: a restart, or a new leader of
 * replicas, starts with full buckets. Nothing here reads the store.
 */
#ifndef HW_LIMITS_H
#define HW_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Buckets per set: a key's bucket is one of the HW_LIMITS_WAYS of its set. */
#define HW_LIMITS_WAYS 8

/* Longest rate accepted, tokens per minute (a refill of 1000 per second);
 * longest burst. */
#define HW_LIMITS_MAX_RATE_PER_MIN 60000000
#define HW_LIMITS_MAX_BURST 1000000

typedef struct hw_limits hw_limits;

typedef struct hw_limits_options {
    double rate_per_min; /* tokens back per minute, in (0, HW_LIMITS_MAX_RATE_PER_MIN] */
    uint32_t burst;      /* bucket size, 1..HW_LIMITS_MAX_BURST */
    size_t capacity;     /* buckets kept (rounded up to a power of two, at least HW_LIMITS_WAYS) */
    uint64_t seed;       /* the hash seed; 0 = a random one */
} hw_limits_options;

/* Counts since creation. */
typedef struct hw_limits_stats {
    uint64_t keys;         /* buckets in use now */
    uint64_t evicted_idle; /* buckets of full (idle) keys given to new keys */
    uint64_t evicted_busy; /* buckets of keys still refilling given to new keys */
} hw_limits_stats;

/**
 * Creates a table; capacity * 24 bytes are allocated now.
 * @param[out] out  the table; free with hw_limits_destroy
 * @return HW_OK; HW_EINVALID for a rate or burst out of range; HW_ENOMEM
 */
int hw_limits_create(hw_limits **out, const hw_limits_options *o);

/* Frees l; no call may be using it. NULL is a no-op. */
void hw_limits_destroy(hw_limits *l);

/**
 * Takes one token from key's bucket (a new key's bucket starts full) at
 * now_ms, monotonic milliseconds (a time before the bucket's last one
 * counts as no time passed). Thread-safe.
 * @param[out] retry_ms  when refused: milliseconds until a token is back
 *                       (>= 1); may be NULL
 * @return true when the token was taken, false when the bucket is empty
 */
bool hw_limits_take(hw_limits *l, const void *key, size_t len, int64_t now_ms, int64_t *retry_ms);

/* Gives one token back to key's bucket (a take whose work was refused
 * after all); no-op when the key is no longer remembered. Thread-safe. */
void hw_limits_give_back(hw_limits *l, const void *key, size_t len, int64_t now_ms);

/* The counts (a consistent view per stripe, not across them). */
void hw_limits_stats_get(hw_limits *l, hw_limits_stats *s);

/* ---- Route's policy ----------------------------------------------------- */

typedef struct hw_route_limits hw_route_limits;

/* Rates per minute with their bursts; a rate of 0 turns that limit off. */
typedef struct hw_route_limits_options {
    int64_t sender_rate_per_min, sender_burst;
    int64_t new_customers_rate_per_min, new_customers_burst;
    size_t senders_capacity; /* sender buckets kept; 0 = 262144 */
} hw_route_limits_options;

/* What hw_route_limits_check decided. */
typedef enum {
    HW_ROUTE_LIMIT_OK = 0,
    HW_ROUTE_LIMIT_SENDER,        /* the sender's bucket is empty */
    HW_ROUTE_LIMIT_NEW_CUSTOMERS, /* the channel's new-customer bucket is empty */
} hw_route_limit;

/**
 * Checks the options, filling err (size errlen) with one line naming the
 * flag at fault ("--sender-burst must be ..."). Returns HW_OK or
 * HW_EINVALID.
 */
int hw_route_limits_validate(const hw_route_limits_options *o, char *err, size_t errlen);

/**
 * Creates Route's limits; *out is NULL (and HW_OK returned) when both are
 * off. @return HW_OK; HW_EINVALID (see hw_route_limits_validate); HW_ENOMEM
 */
int hw_route_limits_create(hw_route_limits **out, const hw_route_limits_options *o);

/* Frees; NULL is a no-op. */
void hw_route_limits_destroy(hw_route_limits *l);

/**
 * Decides whether a message of (channel, channel_user_id) may be routed
 * now: the sender's bucket first, then, when is_new (the sender has no
 * customer yet), the channel's new-customer bucket (a refusal there gives
 * the sender's token back). A refusal is counted for the metrics. l NULL
 * allows everything. Thread-safe.
 * @param[out] retry_ms  when refused: ms until the refusing bucket has a
 *                       token
 */
hw_route_limit hw_route_limits_check(hw_route_limits *l, int channel, const char *channel_user_id,
                                     bool is_new, int64_t now_ms, int64_t *retry_ms);

/* Whether the new-customer limit is on (the caller needs to look the
 * sender up only then). l NULL: false. */
bool hw_route_limits_new_customers_on(const hw_route_limits *l);

/* Refusals so far of channel (a helpwire.v1.Channel value) and kind. */
uint64_t hw_route_limits_refused(const hw_route_limits *l, int channel, hw_route_limit kind);

/* Metrics collector (hw_metrics_add_collector): writes
 * helpwire_route_limited_total{channel,kind="sender"|"new_customers"} and
 * helpwire_route_limit_senders (buckets in use). arg is the
 * hw_route_limits (may be NULL: zero counts). */
void hw_route_limits_collect(void *arg, FILE *out);

#endif
