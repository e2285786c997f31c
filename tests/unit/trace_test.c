/*
 * trace_test: W3C traceparent parsing (server/base/trace.c) against the
 * specification's rules (lengths, lowercase hex, all-zero ids, version ff,
 * later versions), new traces and spans from the per-thread generator,
 * and the log's trace= suffix (server/base/log.c): on every line a thread
 * writes while it names a trace, kept on a line cut at 4 KiB, per thread.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/base/log.h"
#include "server/base/trace.h"

#define GOOD "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static bool is_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return false;
    bool zero = true;
    for (size_t i = 0; i < n; i++) {
        if (!strchr("0123456789abcdef", s[i]))
            return false;
        zero &= s[i] == '0';
    }
    return !zero;
}

static void test_parse_valid(void **state)
{
    (void)state;
    hw_trace t;
    assert_true(hw_trace_parse(GOOD, &t));
    assert_string_equal(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(t.parent_id, "00f067aa0ba902b7");
    assert_string_equal(t.span_id, "");
    assert_int_equal(t.flags, 1);
    assert_true(hw_trace_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &t));
    assert_int_equal(t.flags, 0);
    /* A later version may add fields after a '-'. */
    assert_true(hw_trace_parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-future", &t));
    assert_int_equal(t.flags, 3);
    assert_true(hw_trace_parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", NULL));
}

static void test_parse_refuses(void **state)
{
    (void)state;
    static const char *const bad[] = {
        NULL,
        "",
        "00",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",    /* short */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", /* 00 is exactly 55 */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-011",  /* long */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   /* uppercase */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   /* zero trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   /* zero parent id */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   /* forbidden version */
        "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   /* not hex */
        "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",   /* separators */
        "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",   /* misplaced dash */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",   /* flags */
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",  /* later version, no '-' */
        " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* leading space */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hw_trace t;
        memset(&t, 0x55, sizeof t);
        if (hw_trace_parse(bad[i], &t))
            fail_msg("accepted %s", bad[i] ? bad[i] : "NULL");
        assert_int_equal(((unsigned char *)&t)[0], 0x55); /* untouched */
    }
}

static void test_begin_continues_or_starts(void **state)
{
    (void)state;
    hw_trace_rng rng;
    assert_int_equal(hw_trace_rng_seed(&rng), 0);
    hw_trace t;
    assert_true(hw_trace_begin(&t, GOOD, &rng));
    assert_string_equal(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(t.parent_id, "00f067aa0ba902b7");
    assert_true(is_hex(t.span_id, 16));
    assert_string_not_equal(t.span_id, t.parent_id);
    char out[HW_TRACEPARENT_LEN + 1];
    hw_trace_format(&t, out, sizeof out);
    assert_int_equal(strlen(out), HW_TRACEPARENT_LEN);
    assert_memory_equal(out, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36);
    assert_memory_equal(out + 36, t.span_id, 16);
    assert_string_equal(out + 52, "-01");
    hw_trace again;
    assert_true(hw_trace_parse(out, &again)); /* what we send on parses */

    const char *starts[] = {NULL, "", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"};
    char seen[3][HW_TRACE_ID_HEX + 1];
    for (int i = 0; i < 3; i++) {
        assert_false(hw_trace_begin(&t, starts[i], i == 1 ? NULL : &rng));
        assert_true(is_hex(t.trace_id, 32));
        assert_true(is_hex(t.span_id, 16));
        assert_string_equal(t.parent_id, "");
        assert_int_equal(t.flags, 1);
        strcpy(seen[i], t.trace_id);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(seen[i], seen[j]);
    }
}

static void test_two_generators_differ(void **state)
{
    (void)state;
    hw_trace_rng a, b;
    hw_trace_rng_seed(&a);
    hw_trace_rng_seed(&b);
    uint8_t x[16], y[16];
    hw_trace_rng_bytes(&a, x, sizeof x);
    hw_trace_rng_bytes(&b, y, sizeof y);
    assert_memory_not_equal(x, y, sizeof x);
}

static void test_tracestate(void **state)
{
    (void)state;
    assert_true(hw_trace_state_ok("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"));
    assert_false(hw_trace_state_ok(NULL));
    assert_false(hw_trace_state_ok(""));
    assert_false(hw_trace_state_ok("a=b\nc=d"));
    char big[HW_TRACESTATE_MAX + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_false(hw_trace_state_ok(big));
    big[HW_TRACESTATE_MAX] = '\0';
    assert_true(hw_trace_state_ok(big));
}

/* Reads what was written to the pipe's read end (non-blocking after the
 * writes: the writes are done). */
static size_t drain(int fd, char *buf, size_t n)
{
    ssize_t r = read(fd, buf, n - 1);
    buf[r > 0 ? r : 0] = '\0';
    return r > 0 ? (size_t)r : 0;
}

static void test_log_lines_carry_the_thread_trace(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    hw_log *lg = hw_log_create(p[1], HW_LOG_INFO, true);
    char buf[16384];

    hw_log_event(lg, HW_LOG_INFO, "before", "a=1");
    hw_log_set_trace("4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(hw_log_trace(), "4bf92f3577b34da6a3ce929d0e0e4736");
    hw_log_event(lg, HW_LOG_INFO, "during", "a=2");
    hw_log_event(lg, HW_LOG_WARN, "bare", NULL);
    hw_log_set_trace(NULL);
    assert_null(hw_log_trace());
    hw_log_event(lg, HW_LOG_INFO, "after", "a=3");
    drain(p[0], buf, sizeof buf);
    assert_non_null(strstr(buf, "event=before a=1\n"));
    assert_non_null(strstr(buf, "event=during a=2 trace=4bf92f3577b34da6a3ce929d0e0e4736\n"));
    assert_non_null(strstr(buf, "event=bare trace=4bf92f3577b34da6a3ce929d0e0e4736\n"));
    assert_non_null(strstr(buf, "event=after a=3\n"));

    /* A line cut at 4 KiB keeps its trace at the end. */
    char *longv = malloc(6000);
    memset(longv, 'x', 5999);
    longv[5999] = '\0';
    hw_log_set_trace("0123456789abcdef0123456789abcdef");
    hw_log_event(lg, HW_LOG_INFO, "long", "v=%s", longv);
    hw_log_set_trace("");
    free(longv);
    size_t n = drain(p[0], buf, sizeof buf);
    assert_true(n <= 4096);
    assert_string_equal(buf + n - 40, " trace=0123456789abcdef0123456789abcdef\n");
    hw_log_destroy(lg);
    close(p[0]);
    close(p[1]);
}

static void *other_thread(void *arg)
{
    *(const char **)arg = hw_log_trace();
    return NULL;
}

static void test_trace_is_per_thread(void **state)
{
    (void)state;
    hw_log_set_trace("4bf92f3577b34da6a3ce929d0e0e4736");
    const char *seen = "unset";
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, other_thread, &seen), 0);
    pthread_join(t, NULL);
    assert_null(seen);
    hw_log_set_trace(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_refuses),
        cmocka_unit_test(test_begin_continues_or_starts),
        cmocka_unit_test(test_two_generators_differ),
        cmocka_unit_test(test_tracestate),
        cmocka_unit_test(test_log_lines_carry_the_thread_trace),
        cmocka_unit_test(test_trace_is_per_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
