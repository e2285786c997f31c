/*
 * clock_test: the three clocks of server/base/clock.c: the real one
 * follows CLOCK_REALTIME, the manual one stands where it is set, the file
 * one follows its file and keeps the last good time when the file turns
 * bad; a missing or bad file is refused at creation with the reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/base/clock.h"
#include "server/base/errors.h"

static int64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Writes text to path through a rename, as tests of the binary do. */
static void write_file(const char *path, const char *text)
{
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(rename(tmp, path), 0);
}

static void test_real_follows_the_system(void **state)
{
    (void)state;
    hw_clock *c;
    assert_int_equal(hw_clock_create_real(&c), HW_OK);
    assert_true(hw_clock_is_real(c));
    int64_t a = real_ms(), v = hw_clock_now_ms(c), b = real_ms();
    assert_true(a <= v && v <= b);
    hw_clock_destroy(c);
    assert_true(hw_clock_is_real(NULL));
    int64_t n = hw_clock_now_ms(NULL);
    assert_true(n >= b && n <= real_ms());
}

static void test_manual_stands_until_set(void **state)
{
    (void)state;
    hw_clock *c;
    assert_int_equal(hw_clock_create_manual(&c, 1700000000000), HW_OK);
    assert_false(hw_clock_is_real(c));
    assert_int_equal(hw_clock_now_ms(c), 1700000000000);
    usleep(2000);
    assert_int_equal(hw_clock_now_ms(c), 1700000000000);
    hw_clock_set(c, 1700000000000 + 7 * 86400000LL);
    assert_int_equal(hw_clock_now_ms(c), 1700000000000 + 7 * 86400000LL);
    hw_clock_set(c, 5); /* backwards too */
    assert_int_equal(hw_clock_now_ms(c), 5);
    hw_clock_destroy(c);
}

static void test_file_follows_its_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/clock_testXXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[512];
    snprintf(path, sizeof path, "%s/now", dir);
    write_file(path, "1767225600000\n");
    hw_clock *c;
    char err[256] = "";
    assert_int_equal(hw_clock_create_file(&c, path, err, sizeof err), HW_OK);
    assert_false(hw_clock_is_real(c));
    assert_int_equal(hw_clock_now_ms(c), 1767225600000);
    hw_clock_set(c, 1); /* not a manual clock: ignored */
    assert_int_equal(hw_clock_now_ms(c), 1767225600000);
    write_file(path, "  1767229200000 ");
    assert_int_equal(hw_clock_now_ms(c), 1767229200000);
    write_file(path, "soon");
    assert_int_equal(hw_clock_now_ms(c), 1767229200000); /* last good time */
    write_file(path, "1767232800000");
    assert_int_equal(hw_clock_now_ms(c), 1767232800000);
    hw_clock_destroy(c);
    unlink(path);
    rmdir(dir);
}

static void test_file_refused_with_reason(void **state)
{
    (void)state;
    char dir[] = "/tmp/clock_testXXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[512];
    snprintf(path, sizeof path, "%s/now", dir);
    hw_clock *c = NULL;
    char err[256] = "";
    assert_int_equal(hw_clock_create_file(&c, path, err, sizeof err), HW_EINVALID);
    assert_non_null(strstr(err, "No such file"));
    write_file(path, "12:00");
    assert_int_equal(hw_clock_create_file(&c, path, err, sizeof err), HW_EINVALID);
    assert_non_null(strstr(err, "milliseconds since the epoch"));
    write_file(path, "-5");
    assert_int_equal(hw_clock_create_file(&c, path, err, sizeof err), HW_EINVALID);
    assert_null(c);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_follows_the_system),
        cmocka_unit_test(test_manual_stands_until_set),
        cmocka_unit_test(test_file_follows_its_file),
        cmocka_unit_test(test_file_refused_with_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
