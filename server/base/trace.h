/*
 * trace: W3C Trace Context (https://www.w3.org/TR/trace-context/) for the
 * calls helpwired serves and the requests it makes on their behalf.
 *
 * A call's `traceparent` metadata ("00-<trace-id>-<parent-id>-<flags>":
 * 32 and 16 lowercase hex digits, neither all zero, 2 hex digits of flags)
 * is continued: the call keeps the caller's trace id and flags, remembers
 * the caller's span as its parent and gets a span id of its own. A call
 * without one, or with one that does not parse, starts a new trace (random
 * trace and span ids, flags 01: every call is logged with its trace id).
 * What the server sends on (the relay to a leader, supervisor webhooks)
 * carries "00-<trace-id>-<the call's span id>-<flags>", and the caller's
 * `tracestate` unchanged when its traceparent was valid.
 *
 * Ids come from an hw_trace_rng: xoshiro256** seeded from getrandom(2),
 * one per thread that owns it (each gRPC worker has its own), never shared,
 * so no lock and no global state.
 */
#ifndef HW_TRACE_H
#define HW_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HW_TRACE_ID_HEX 32    /* trace-id, in hex digits */
#define HW_TRACE_SPAN_HEX 16  /* parent-id / span id, in hex digits */
#define HW_TRACEPARENT_LEN 55 /* "00-" + 32 + "-" + 16 + "-" + 2 */
#define HW_TRACESTATE_MAX 512 /* longer tracestate values are dropped */

/* A random source for ids; owned by one thread. */
typedef struct hw_trace_rng {
    uint64_t s[4];
} hw_trace_rng;

/* Seeds rng from getrandom(2). Returns 0, or -1 when the kernel gave no
 * randomness (rng then holds a seed from the clock and the address). */
int hw_trace_rng_seed(hw_trace_rng *rng);

/* Fills out with n pseudo-random bytes. */
void hw_trace_rng_bytes(hw_trace_rng *rng, uint8_t *out, size_t n);

/* The trace context of one call (or one alert). Strings are lowercase hex,
 * NUL-terminated; a zeroed hw_trace has no trace (trace_id ""). */
typedef struct hw_trace {
    char trace_id[HW_TRACE_ID_HEX + 1];
    char span_id[HW_TRACE_SPAN_HEX + 1];   /* this call's own span */
    char parent_id[HW_TRACE_SPAN_HEX + 1]; /* the caller's span; "" when the trace starts here */
    uint8_t flags;                         /* trace-flags */
} hw_trace;

/* Parses a traceparent header value. Version 00 must be exactly 55
 * characters; a later version (not ff) may be longer when the 56th
 * character is '-' (fields it adds are ignored). Returns false for NULL,
 * wrong lengths, non-hex or uppercase digits, version ff, and all-zero
 * trace or parent ids; out (may be NULL) is set only on success, with
 * parent_id the header's parent-id and span_id "". */
bool hw_trace_parse(const char *traceparent, hw_trace *out);

/* Sets t for a call that arrived with traceparent (NULL: none): continued
 * when it parses, else a new trace; either way a new span id. rng NULL
 * draws from getrandom(2) directly (rare callers without a thread of their
 * own to seed). Returns true when the caller's trace was continued. */
bool hw_trace_begin(hw_trace *t, const char *traceparent, hw_trace_rng *rng);

/* "00-<trace_id>-<span_id>-<flags>" into out (at least
 * HW_TRACEPARENT_LEN + 1 bytes): what t's call sends on. Returns out. */
char *hw_trace_format(const hw_trace *t, char *out, size_t n);

/* Whether s may be passed on as tracestate: 1..HW_TRACESTATE_MAX bytes of
 * printable ASCII (0x20..0x7e). The list members are not checked further:
 * the value is relayed, not interpreted. */
bool hw_trace_state_ok(const char *s);

#endif
