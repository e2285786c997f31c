/* backoff: doubling ceiling, equal jitter, private xorshift64 (backoff.h). */
#include "clients/lib/backoff.h"

static uint64_t next_random(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

void br_backoff_init(br_backoff *b, int initial_ms, int max_ms, uint64_t seed)
{
    b->initial_ms = initial_ms > 0 ? initial_ms : 1;
    b->max_ms = max_ms >= b->initial_ms ? max_ms : b->initial_ms;
    b->ceiling_ms = 0;
    b->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
}

int br_backoff_next_ms(br_backoff *b)
{
    if (b->ceiling_ms == 0)
        b->ceiling_ms = b->initial_ms;
    else if (b->ceiling_ms > b->max_ms / 2)
        b->ceiling_ms = b->max_ms;
    else
        b->ceiling_ms *= 2;
    int half = b->ceiling_ms / 2;
    return half + (int)(next_random(&b->rng) % (uint64_t)(b->ceiling_ms - half + 1));
}

void br_backoff_reset(br_backoff *b)
{
    b->ceiling_ms = 0;
}
