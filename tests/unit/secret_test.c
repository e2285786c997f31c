/*
 * secret_test: API token secrets and their hashes (server/base/secret.c): the
 * hash is SHA-256 (the FIPS 180-2 vectors), the same from threads that all
 * make the first call at once, and new secrets have the promised shape.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "server/base/secret.h"

static void hex(const unsigned char *h, char out[2 * HW_SECRET_HASH_BYTES + 1])
{
    for (size_t i = 0; i < HW_SECRET_HASH_BYTES; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

#define ABC_SHA256 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static void *hash_abc(void *arg)
{
    char *out = arg;
    unsigned char h[HW_SECRET_HASH_BYTES];
    if (hw_secret_hash("abc", 3, h) != 0)
        out[0] = '\0';
    else
        hex(h, out);
    return NULL;
}

/* Runs first in its process: the threads race to make the first call, the
 * one that fetches the implementation. */
static void test_first_calls_from_many_threads_agree(void **state)
{
    (void)state;
    enum { N = 8 };
    pthread_t t[N];
    char out[N][2 * HW_SECRET_HASH_BYTES + 1];
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hash_abc, out[i]), 0);
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_string_equal(out[i], ABC_SHA256);
    }
}

static void test_hash_is_sha256(void **state)
{
    (void)state;
    unsigned char h[HW_SECRET_HASH_BYTES];
    char s[2 * HW_SECRET_HASH_BYTES + 1];
    assert_int_equal(hw_secret_hash("", 0, h), 0);
    hex(h, s);
    assert_string_equal(s, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_int_equal(hw_secret_hash(two, strlen(two), h), 0);
    hex(h, s);
    assert_string_equal(s, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    unsigned char again[HW_SECRET_HASH_BYTES];
    assert_int_equal(hw_secret_hash(two, strlen(two), again), 0);
    assert_true(hw_secret_hash_equal(h, again));
    again[31] ^= 1;
    assert_false(hw_secret_hash_equal(h, again));
}

static void test_new_secrets_are_url_safe_and_distinct(void **state)
{
    (void)state;
    char a[64], b[64];
    assert_int_equal(hw_secret_new("hw_", 32, a, sizeof a), 0);
    assert_int_equal(hw_secret_new("hw_", 32, b, sizeof b), 0);
    assert_int_equal(strncmp(a, "hw_", 3), 0);
    assert_int_equal(strlen(a), 3 + 43); /* 32 bytes: 43 base64 characters, unpadded */
    assert_string_not_equal(a, b);
    for (const char *p = a + 3; *p; p++)
        assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p));
    char small[10];
    assert_int_equal(hw_secret_new("hw_", 32, small, sizeof small), -1);
    assert_int_equal(hw_secret_new("hw_", 0, a, sizeof a), -1);
    assert_int_equal(hw_secret_new("hw_", 65, a, sizeof a), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_calls_from_many_threads_agree),
        cmocka_unit_test(test_hash_is_sha256),
        cmocka_unit_test(test_new_secrets_are_url_safe_and_distinct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
