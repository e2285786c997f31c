/*
 * trace: W3C traceparent parsing and formatting, and the per-thread id
 * generator (see trace.h). xoshiro256** (Blackman and Vigna, public
 * domain) is a dozen lines: written here rather than pulled in.
 */
#include "server/base/trace.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t next(hw_trace_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* splitmix64: spreads a weak seed over the state (fallback only). */
static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int hw_trace_rng_seed(hw_trace_rng *rng)
{
    size_t got = 0;
    uint8_t *p = (uint8_t *)rng->s;
    while (got < sizeof rng->s) {
        ssize_t n = getrandom(p + got, sizeof rng->s - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    int rc = 0;
    if (got < sizeof rng->s) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + (uint64_t)(uintptr_t)rng;
        for (int i = 0; i < 4; i++)
            rng->s[i] = splitmix(&x);
        rc = -1;
    }
    if (!(rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3])) /* the one state xoshiro cannot leave */
        rng->s[0] = 1;
    return rc;
}

void hw_trace_rng_bytes(hw_trace_rng *rng, uint8_t *out, size_t n)
{
    while (n) {
        uint64_t v = next(rng);
        size_t k = n < sizeof v ? n : sizeof v;
        memcpy(out, &v, k);
        out += k;
        n -= k;
    }
}

static bool lower_hex(const char *s, size_t n, bool *all_zero)
{
    bool zero = true;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
        zero &= c == '0';
    }
    if (all_zero)
        *all_zero = zero;
    return true;
}

static unsigned hexval(char c)
{
    return c <= '9' ? (unsigned)(c - '0') : (unsigned)(c - 'a' + 10);
}

bool hw_trace_parse(const char *s, hw_trace *out)
{
    if (!s)
        return false;
    size_t len = strlen(s);
    if (len < HW_TRACEPARENT_LEN)
        return false;
    bool zero;
    if (!lower_hex(s, 2, NULL) || strncmp(s, "ff", 2) == 0)
        return false;
    bool v00 = strncmp(s, "00", 2) == 0;
    if (v00 ? len != HW_TRACEPARENT_LEN : (len > HW_TRACEPARENT_LEN && s[HW_TRACEPARENT_LEN] != '-'))
        return false;
    if (s[2] != '-' || s[35] != '-' || s[52] != '-')
        return false;
    if (!lower_hex(s + 3, HW_TRACE_ID_HEX, &zero) || zero)
        return false;
    if (!lower_hex(s + 36, HW_TRACE_SPAN_HEX, &zero) || zero)
        return false;
    if (!lower_hex(s + 53, 2, NULL))
        return false;
    if (out) {
        memset(out, 0, sizeof *out);
        memcpy(out->trace_id, s + 3, HW_TRACE_ID_HEX);
        memcpy(out->parent_id, s + 36, HW_TRACE_SPAN_HEX);
        out->flags = (uint8_t)(hexval(s[53]) << 4 | hexval(s[54]));
    }
    return true;
}

static void to_hex(const uint8_t *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static void random_bytes(hw_trace_rng *rng, uint8_t *out, size_t n)
{
    if (rng) {
        hw_trace_rng_bytes(rng, out, n);
        return;
    }
    hw_trace_rng one;
    hw_trace_rng_seed(&one);
    hw_trace_rng_bytes(&one, out, n);
}

/* Random non-zero id of n bytes, as hex into out. */
static void new_id(hw_trace_rng *rng, char *out, size_t n)
{
    uint8_t b[16];
    bool zero;
    do {
        random_bytes(rng, b, n);
        zero = true;
        for (size_t i = 0; i < n; i++)
            zero &= b[i] == 0;
    } while (zero);
    to_hex(b, n, out);
}

bool hw_trace_begin(hw_trace *t, const char *traceparent, hw_trace_rng *rng)
{
    bool continued = hw_trace_parse(traceparent, t);
    if (!continued) {
        memset(t, 0, sizeof *t);
        new_id(rng, t->trace_id, HW_TRACE_ID_HEX / 2);
        t->flags = 0x01;
    }
    new_id(rng, t->span_id, HW_TRACE_SPAN_HEX / 2);
    return continued;
}

char *hw_trace_format(const hw_trace *t, char *out, size_t n)
{
    snprintf(out, n, "00-%s-%s-%02x", t->trace_id, t->span_id, t->flags);
    return out;
}

bool hw_trace_state_ok(const char *s)
{
    if (!s || !*s)
        return false;
    size_t i = 0;
    for (; s[i]; i++)
        if (i >= HW_TRACESTATE_MAX || (unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}
