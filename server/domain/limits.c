/*
 * limits: token buckets for Route (see limits.h).
 *
 * The table is an array of sets of HW_LIMITS_WAYS buckets; a key's hash
 * picks its set, and the set's stripe lock (set index modulo the stripes)
 * guards it. A bucket is 24 bytes (hash, time of its last refill, tokens),
 * so a set is three cache lines and a lookup touches only them. Why a
 * set-associative table rather than a growing hash table: memory is fixed
 * up front, nothing is ever rehashed or freed on the hot path, and the
 * choice of what to forget is local and cheap. A key that is not
 * remembered behaves as one with a full bucket, so forgetting a bucket
 * that has refilled loses nothing; only when a whole set is busy (more
 * flooding senders at once than the capacity allows) is the fullest
 * bucket forgotten, which gives its sender at most one extra burst.
 *
 * Tokens are doubles refilled lazily at each take: min(burst, tokens +
 * elapsed * rate); a refused take says how long until one token is back.
 */
#include "server/domain/limits.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <xxhash.h>

#include "helpwire/v1/common.pb-c.h"
#include "server/base/errors.h"

#define MAX_STRIPES 64
#define DEFAULT_SENDERS_CAPACITY 262144
#define MAX_CHANNELS 16 /* counters kept for channel values below this */

typedef struct {
    uint64_t hash; /* 0: empty */
    int64_t last_ms;
    double tokens;
} bucket;

typedef struct {
    pthread_mutex_t mu;
    uint64_t keys, evicted_idle, evicted_busy;
    char pad[64 - (sizeof(pthread_mutex_t) + 3 * sizeof(uint64_t)) % 64];
} stripe;

struct hw_limits {
    double rate_per_ms;
    double burst;
    uint64_t seed;
    size_t n_sets; /* a power of two */
    size_t n_stripes;
    bucket *buckets; /* [n_sets * HW_LIMITS_WAYS] */
    stripe *stripes; /* [n_stripes] */
};

static size_t pow2_at_least(size_t n)
{
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

static uint64_t random_seed(void)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_sec;
    }
    return s;
}

int hw_limits_create(hw_limits **out, const hw_limits_options *o)
{
    *out = NULL;
    if (!(o->rate_per_min > 0 && o->rate_per_min <= HW_LIMITS_MAX_RATE_PER_MIN) || o->burst < 1 ||
        o->burst > HW_LIMITS_MAX_BURST)
        return HW_EINVALID;
    hw_limits *l = calloc(1, sizeof *l);
    if (!l)
        return HW_ENOMEM;
    size_t cap = o->capacity < HW_LIMITS_WAYS ? HW_LIMITS_WAYS : o->capacity;
    l->n_sets = pow2_at_least((cap + HW_LIMITS_WAYS - 1) / HW_LIMITS_WAYS);
    l->n_stripes = l->n_sets < MAX_STRIPES ? l->n_sets : MAX_STRIPES;
    l->rate_per_ms = o->rate_per_min / 60000.0;
    l->burst = (double)o->burst;
    l->seed = o->seed ? o->seed : random_seed();
    l->buckets = calloc(l->n_sets * HW_LIMITS_WAYS, sizeof *l->buckets);
    l->stripes = calloc(l->n_stripes, sizeof *l->stripes);
    if (!l->buckets || !l->stripes) {
        free(l->buckets);
        free(l->stripes);
        free(l);
        return HW_ENOMEM;
    }
    for (size_t i = 0; i < l->n_stripes; i++)
        pthread_mutex_init(&l->stripes[i].mu, NULL);
    *out = l;
    return HW_OK;
}

void hw_limits_destroy(hw_limits *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n_stripes; i++)
        pthread_mutex_destroy(&l->stripes[i].mu);
    free(l->stripes);
    free(l->buckets);
    free(l);
}

/* The tokens of b at now (not stored). */
static double tokens_at(const hw_limits *l, const bucket *b, int64_t now_ms)
{
    int64_t elapsed = now_ms > b->last_ms ? now_ms - b->last_ms : 0;
    double t = b->tokens + (double)elapsed * l->rate_per_ms;
    return t < l->burst ? t : l->burst;
}

/* The bucket of hash in set (stripe locked), or NULL when absent. */
static bucket *find(bucket *set, uint64_t hash)
{
    for (int w = 0; w < HW_LIMITS_WAYS; w++)
        if (set[w].hash == hash)
            return &set[w];
    return NULL;
}

/* A bucket for a new key in set: an empty one, else a full (idle) one,
 * else the fullest. */
static bucket *claim(hw_limits *l, stripe *s, bucket *set, int64_t now_ms)
{
    bucket *best = NULL;
    double best_tokens = -1;
    for (int w = 0; w < HW_LIMITS_WAYS; w++) {
        if (set[w].hash == 0) {
            s->keys++;
            return &set[w];
        }
        double t = tokens_at(l, &set[w], now_ms);
        if (t > best_tokens) {
            best_tokens = t;
            best = &set[w];
        }
    }
    if (best_tokens >= l->burst)
        s->evicted_idle++;
    else
        s->evicted_busy++;
    return best;
}

static void locate(hw_limits *l, const void *key, size_t len, uint64_t *hash, bucket **set, stripe **s)
{
    uint64_t h = XXH3_64bits_withSeed(key, len, l->seed);
    if (h == 0)
        h = 1; /* 0 marks an empty bucket */
    size_t i = (size_t)(h >> 32) & (l->n_sets - 1);
    *hash = h;
    *set = &l->buckets[i * HW_LIMITS_WAYS];
    *s = &l->stripes[i & (l->n_stripes - 1)];
}

bool hw_limits_take(hw_limits *l, const void *key, size_t len, int64_t now_ms, int64_t *retry_ms)
{
    uint64_t h;
    bucket *set;
    stripe *s;
    locate(l, key, len, &h, &set, &s);
    pthread_mutex_lock(&s->mu);
    bucket *b = find(set, h);
    if (!b) {
        b = claim(l, s, set, now_ms);
        *b = (bucket){.hash = h, .last_ms = now_ms, .tokens = l->burst};
    }
    double t = tokens_at(l, b, now_ms);
    if (now_ms > b->last_ms)
        b->last_ms = now_ms;
    bool ok = t >= 1.0;
    b->tokens = ok ? t - 1.0 : t;
    pthread_mutex_unlock(&s->mu);
    if (!ok && retry_ms) {
        /* less a hair: 0.999 tokens at 1 per second is 1 ms, not 2 */
        double wait = ceil((1.0 - t) / l->rate_per_ms - 1e-6);
        *retry_ms = wait < 1 ? 1 : (int64_t)wait;
    }
    return ok;
}

void hw_limits_give_back(hw_limits *l, const void *key, size_t len, int64_t now_ms)
{
    uint64_t h;
    bucket *set;
    stripe *s;
    locate(l, key, len, &h, &set, &s);
    pthread_mutex_lock(&s->mu);
    bucket *b = find(set, h);
    if (b) {
        double t = tokens_at(l, b, now_ms) + 1.0;
        b->tokens = t < l->burst ? t : l->burst;
        if (now_ms > b->last_ms)
            b->last_ms = now_ms;
    }
    pthread_mutex_unlock(&s->mu);
}

void hw_limits_stats_get(hw_limits *l, hw_limits_stats *st)
{
    memset(st, 0, sizeof *st);
    for (size_t i = 0; i < l->n_stripes; i++) {
        pthread_mutex_lock(&l->stripes[i].mu);
        st->keys += l->stripes[i].keys;
        st->evicted_idle += l->stripes[i].evicted_idle;
        st->evicted_busy += l->stripes[i].evicted_busy;
        pthread_mutex_unlock(&l->stripes[i].mu);
    }
}

/* ---- Route's policy ----------------------------------------------------- */

struct hw_route_limits {
    hw_limits *senders;       /* key: channel byte + channel_user_id; NULL = off */
    hw_limits *new_customers; /* key: channel byte; NULL = off */
    atomic_uint_fast64_t refused[MAX_CHANNELS][2];
};

/* Checks one rate/burst pair. */
static int check_pair(const char *rate_flag, int64_t rate, const char *burst_flag, int64_t burst, char *err,
                      size_t errlen)
{
    if (rate < 0 || rate > HW_LIMITS_MAX_RATE_PER_MIN) {
        snprintf(err, errlen, "--%s must be a number of messages per minute from 0 (off) to %d, not %lld",
                 rate_flag, HW_LIMITS_MAX_RATE_PER_MIN, (long long)rate);
        return HW_EINVALID;
    }
    if (burst < 0 || burst > HW_LIMITS_MAX_BURST) {
        snprintf(err, errlen, "--%s must be from 1 to %d, not %lld", burst_flag, HW_LIMITS_MAX_BURST,
                 (long long)burst);
        return HW_EINVALID;
    }
    if (rate > 0 && burst < 1) {
        snprintf(err, errlen,
                 "--%s must be at least 1 while --%s is on (%lld per minute); turn the limit "
                 "off with --%s 0",
                 burst_flag, rate_flag, (long long)rate, rate_flag);
        return HW_EINVALID;
    }
    return HW_OK;
}

int hw_route_limits_validate(const hw_route_limits_options *o, char *err, size_t errlen)
{
    int rc = check_pair("sender-rate", o->sender_rate_per_min, "sender-burst", o->sender_burst, err, errlen);
    if (rc == HW_OK)
        rc = check_pair("new-customers-rate", o->new_customers_rate_per_min, "new-customers-burst",
                        o->new_customers_burst, err, errlen);
    return rc;
}

int hw_route_limits_create(hw_route_limits **out, const hw_route_limits_options *o)
{
    *out = NULL;
    char err[256];
    int rc = hw_route_limits_validate(o, err, sizeof err);
    if (rc != HW_OK)
        return rc;
    if (o->sender_rate_per_min == 0 && o->new_customers_rate_per_min == 0)
        return HW_OK;
    hw_route_limits *l = calloc(1, sizeof *l);
    if (!l)
        return HW_ENOMEM;
    if (o->sender_rate_per_min > 0) {
        hw_limits_options so = {.rate_per_min = (double)o->sender_rate_per_min,
                                .burst = (uint32_t)o->sender_burst,
                                .capacity =
                                    o->senders_capacity ? o->senders_capacity : DEFAULT_SENDERS_CAPACITY};
        if ((rc = hw_limits_create(&l->senders, &so)) != HW_OK)
            goto fail;
    }
    if (o->new_customers_rate_per_min > 0) {
        hw_limits_options no = {.rate_per_min = (double)o->new_customers_rate_per_min,
                                .burst = (uint32_t)o->new_customers_burst,
                                .capacity = HW_LIMITS_WAYS * MAX_CHANNELS};
        if ((rc = hw_limits_create(&l->new_customers, &no)) != HW_OK)
            goto fail;
    }
    *out = l;
    return HW_OK;
fail:
    hw_route_limits_destroy(l);
    return rc;
}

void hw_route_limits_destroy(hw_route_limits *l)
{
    if (!l)
        return;
    hw_limits_destroy(l->senders);
    hw_limits_destroy(l->new_customers);
    free(l);
}

bool hw_route_limits_new_customers_on(const hw_route_limits *l)
{
    return l && l->new_customers;
}

static void count(hw_route_limits *l, int channel, hw_route_limit kind)
{
    if (channel >= 0 && channel < MAX_CHANNELS)
        atomic_fetch_add_explicit(&l->refused[channel][kind - 1], 1, memory_order_relaxed);
}

hw_route_limit hw_route_limits_check(hw_route_limits *l, int channel, const char *channel_user_id,
                                     bool is_new, int64_t now_ms, int64_t *retry_ms)
{
    if (!l)
        return HW_ROUTE_LIMIT_OK;
    /* The sender's key: the channel's byte, then the id (ids are at most
     * 128 bytes: Route checked). */
    char key[1 + 256];
    size_t n = strlen(channel_user_id);
    if (n > sizeof key - 1)
        n = sizeof key - 1;
    key[0] = (char)channel;
    memcpy(key + 1, channel_user_id, n);
    if (l->senders && !hw_limits_take(l->senders, key, n + 1, now_ms, retry_ms)) {
        count(l, channel, HW_ROUTE_LIMIT_SENDER);
        return HW_ROUTE_LIMIT_SENDER;
    }
    if (is_new && l->new_customers && !hw_limits_take(l->new_customers, key, 1, now_ms, retry_ms)) {
        if (l->senders)
            hw_limits_give_back(l->senders, key, n + 1, now_ms);
        count(l, channel, HW_ROUTE_LIMIT_NEW_CUSTOMERS);
        return HW_ROUTE_LIMIT_NEW_CUSTOMERS;
    }
    return HW_ROUTE_LIMIT_OK;
}

uint64_t hw_route_limits_refused(const hw_route_limits *l, int channel, hw_route_limit kind)
{
    if (!l || kind == HW_ROUTE_LIMIT_OK || channel < 0 || channel >= MAX_CHANNELS)
        return 0;
    return atomic_load_explicit(&l->refused[channel][kind - 1], memory_order_relaxed);
}

void hw_route_limits_collect(void *arg, FILE *out)
{
    hw_route_limits *l = arg;
    const ProtobufCEnumDescriptor *d = &helpwire__v1__channel__descriptor;
    static const char *const kinds[] = {"sender", "new_customers"};
    fprintf(out, "# HELP helpwire_route_limited_total Route calls refused with RESOURCE_EXHAUSTED "
                 "(RATE_LIMITED) by the per-sender or the new-customer limit.\n"
                 "# TYPE helpwire_route_limited_total counter\n");
    for (unsigned i = 0; i < d->n_values; i++) {
        int ch = d->values[i].value;
        if (ch <= 0 || ch >= MAX_CHANNELS)
            continue;
        /* "CHANNEL_TELEGRAM" -> "telegram", as the outbox metrics name it */
        const char *name = d->values[i].name;
        if (strncmp(name, "CHANNEL_", 8) == 0)
            name += 8;
        char label[32];
        size_t j = 0;
        for (; name[j] && j < sizeof label - 1; j++)
            label[j] = (char)(name[j] >= 'A' && name[j] <= 'Z' ? name[j] + 32 : name[j]);
        label[j] = '\0';
        for (int k = 0; k < 2; k++)
            fprintf(out, "helpwire_route_limited_total{channel=\"%s\",kind=\"%s\"} %llu\n", label, kinds[k],
                    (unsigned long long)hw_route_limits_refused(l, ch, (hw_route_limit)(k + 1)));
    }
    hw_limits_stats st = {0};
    if (l && l->senders)
        hw_limits_stats_get(l->senders, &st);
    fprintf(out,
            "# HELP helpwire_route_limit_senders Senders with a token bucket in memory (idle ones are "
            "forgotten first when it is full).\n"
            "# TYPE helpwire_route_limit_senders gauge\nhelpwire_route_limit_senders %llu\n"
            "# HELP helpwire_route_limit_evictions_total Sender buckets given to a new sender, by whether "
            "the old one had refilled (idle) or not (busy: the table is too small for the flood).\n"
            "# TYPE helpwire_route_limit_evictions_total counter\n"
            "helpwire_route_limit_evictions_total{state=\"idle\"} %llu\n"
            "helpwire_route_limit_evictions_total{state=\"busy\"} %llu\n",
            (unsigned long long)st.keys, (unsigned long long)st.evicted_idle,
            (unsigned long long)st.evicted_busy);
}
