/*
 * backoff: exponential retry delays with jitter. Each failure doubles the
 * ceiling (initial_ms, 2x, 4x, ... up to max_ms) and the delay is drawn
 * uniformly from [ceiling/2, ceiling] ("equal jitter"), so many bridges
 * restarting together do not retry in lockstep, yet a delay is never much
 * shorter than intended. A success resets it.
 *
 * A br_backoff is a plain value owned by one thread (not thread-safe); its
 * random state is its own, so no global generator is touched.
 */
#ifndef BR_BACKOFF_H
#define BR_BACKOFF_H

#include <stdint.h>

typedef struct br_backoff {
    int initial_ms;
    int max_ms;
    int ceiling_ms; /* current ceiling; 0 before the first failure */
    uint64_t rng;   /* xorshift state, never 0 */
} br_backoff;

/* Initialises b; seed may be anything (0 is replaced). */
void br_backoff_init(br_backoff *b, int initial_ms, int max_ms, uint64_t seed);

/* The delay before the next attempt after one more failure. */
int br_backoff_next_ms(br_backoff *b);

/* Forgets past failures (after a success). */
void br_backoff_reset(br_backoff *b);

#endif
