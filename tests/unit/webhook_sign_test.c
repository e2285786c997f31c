/*
 * webhook_sign_test: the webhook signature (server/domain/webhook_sign.c).
 * The HMAC is HMAC-SHA256 (RFC 4231 vectors, the message fed in two parts);
 * the header value matches values computed independently (Python's hmac)
 * for one and for two secrets, current first; a changed body or time
 * changes it. The secrets file: one or two lines (CRLF and a missing final
 * newline fine), refused when missing, not a regular file, open to group
 * or others, empty, with an empty line, more than two lines, or a secret
 * shorter than 16 or longer than 1024 bytes; the error never shows the
 * secret.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/base/errors.h"
#include "server/domain/webhook_sign.h"

#define T 1767225600
#define BODY "{\"alert_id\":\"1\"}"
#define SECRET1 "whsec-unit-test-secret-0001"
#define SECRET2 "second-secret-for-rotation"
/* hmac.new(SECRET, b"1767225600." + BODY, hashlib.sha256).hexdigest() */
#define V1_SECRET1 "d64fb63562e202325ed48440c87102e5e1cd4ae4c0b81e7e0047b7eefad4c239"
#define V1_SECRET2 "6f97bb30f1c07200e736fecddfa443a2f7c058572d41ec1ff48ab663818c88e9"

/* Writes content (len bytes) to a new file of mode; its name into path. */
static void write_file(char *path, size_t pathlen, const char *content, size_t len, mode_t mode)
{
    const char *dir = getenv("TEST_TMPDIR");
    snprintf(path, pathlen, "%s/whsecXXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, len), (ssize_t)len);
    close(fd);
    assert_int_equal(chmod(path, mode), 0);
}

/* Loads content written with mode; returns the status, err filled. */
static int load(const char *content, mode_t mode, hw_webhook_keys **k, char *err, size_t errlen)
{
    char path[256];
    write_file(path, sizeof path, content, strlen(content), mode);
    err[0] = '\0';
    int rc = hw_webhook_keys_load(path, k, err, errlen);
    unlink(path);
    return rc;
}

static void test_hmac_is_hmac_sha256_rfc4231(void **state)
{
    (void)state;
    char hex[65];
    /* Test case 2: key "Jefe"; the message in two parts, as "<t>." and the body are. */
    assert_int_equal(hw_webhook_hmac_hex("Jefe", 4, "what do ya ", 11, "want for nothing?", 17, hex), HW_OK);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* Test case 1: key 20 x 0x0b, "Hi There"; an empty first part. */
    unsigned char key[20];
    memset(key, 0x0b, sizeof key);
    assert_int_equal(hw_webhook_hmac_hex(key, sizeof key, "", 0, "Hi There", 8, hex), HW_OK);
    assert_string_equal(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

static void test_one_secret_signs_t_dot_body(void **state)
{
    (void)state;
    hw_webhook_keys *k = NULL;
    char err[512], sig[HW_WEBHOOK_SIGNATURE_MAX];
    assert_int_equal(load(SECRET1 "\n", 0600, &k, err, sizeof err), HW_OK);
    assert_int_equal(hw_webhook_keys_count(k), 1);
    assert_int_equal(hw_webhook_sign(k, T, BODY, strlen(BODY), sig, sizeof sig), HW_OK);
    assert_string_equal(sig, "t=1767225600,v1=" V1_SECRET1);
    /* Another body or another time: another signature. */
    assert_int_equal(hw_webhook_sign(k, T, "{\"alert_id\":\"2\"}", strlen(BODY), sig, sizeof sig), HW_OK);
    assert_null(strstr(sig, V1_SECRET1));
    assert_int_equal(hw_webhook_sign(k, T + 1, BODY, strlen(BODY), sig, sizeof sig), HW_OK);
    assert_null(strstr(sig, V1_SECRET1));
    assert_non_null(strstr(sig, "t=1767225601,v1="));
    hw_webhook_keys_free(k);
}

static void test_two_secrets_sign_twice_current_first(void **state)
{
    (void)state;
    hw_webhook_keys *k = NULL;
    char err[512], sig[HW_WEBHOOK_SIGNATURE_MAX];
    /* CRLF line ends and no final newline: the same secrets. */
    assert_int_equal(load(SECRET1 "\r\n" SECRET2, 0600, &k, err, sizeof err), HW_OK);
    assert_int_equal(hw_webhook_keys_count(k), 2);
    assert_int_equal(hw_webhook_sign(k, T, BODY, strlen(BODY), sig, sizeof sig), HW_OK);
    assert_string_equal(sig, "t=1767225600,v1=" V1_SECRET1 ",v1=" V1_SECRET2);
    assert_true(strlen(sig) < HW_WEBHOOK_SIGNATURE_MAX);
    /* Too small a buffer, no keys: refused, nothing half-written trusted. */
    assert_int_equal(hw_webhook_sign(k, T, BODY, strlen(BODY), sig, HW_WEBHOOK_SIGNATURE_MAX - 1),
                     HW_EINVALID);
    assert_int_equal(hw_webhook_sign(NULL, T, BODY, strlen(BODY), sig, sizeof sig), HW_EINVALID);
    hw_webhook_keys_free(k);
    hw_webhook_keys_free(NULL);
    assert_int_equal(hw_webhook_keys_count(NULL), 0);
}

/* The file is refused with err containing want, and never the secret. */
static void refused(const char *content, mode_t mode, const char *want)
{
    hw_webhook_keys *k = (hw_webhook_keys *)1;
    char err[512];
    assert_int_equal(load(content, mode, &k, err, sizeof err), HW_EINVALID);
    assert_null(k);
    if (!strstr(err, want))
        fail_msg("error '%s' does not say '%s'", err, want);
    assert_null(strstr(err, SECRET1));
    assert_null(strstr(err, SECRET2));
}

static void test_bad_files_are_refused(void **state)
{
    (void)state;
    refused("", 0600, "is empty");
    refused("\n", 0600, "is empty");
    refused(SECRET1 "\n", 0644, "accessible by group or others (mode 0644)");
    refused(SECRET1 "\n", 0640, "chmod 600");
    refused(SECRET1 "\n", 0602, "(mode 0602)");
    refused(SECRET1 "\n" SECRET2 "\n" SECRET1 "\n", 0600, "more than 2 lines");
    refused(SECRET1 "\n\n" SECRET2 "\n", 0600, "line 2 is empty");
    refused(SECRET1 "\n\n", 0600, "line 2 is empty");
    refused("   \n", 0600, "line 1 is empty");
    refused("fifteen-bytes15\n", 0600, "line 1 has 15 bytes; it needs 16 to 1024");
    refused(SECRET1 "\nshort\n", 0600, "line 2 has 5 bytes");

    hw_webhook_keys *k = (hw_webhook_keys *)1;
    char err[512];
    assert_int_equal(hw_webhook_keys_load("/nonexistent/whsec", &k, err, sizeof err), HW_EINVALID);
    assert_null(k);
    assert_non_null(strstr(err, "cannot read /nonexistent/whsec: No such file"));
    const char *dir = getenv("TEST_TMPDIR");
    assert_int_equal(hw_webhook_keys_load(dir && *dir ? dir : "/tmp", &k, err, sizeof err), HW_EINVALID);
    assert_non_null(strstr(err, "not a regular file"));
}

static void test_secret_length_limits(void **state)
{
    (void)state;
    char buf[HW_WEBHOOK_SECRET_MAX_BYTES + 3], err[512];
    hw_webhook_keys *k = NULL;
    memset(buf, 'x', sizeof buf);
    buf[16] = '\0'; /* the shortest accepted */
    assert_int_equal(load(buf, 0600, &k, err, sizeof err), HW_OK);
    hw_webhook_keys_free(k);
    memset(buf, 'x', sizeof buf);
    buf[HW_WEBHOOK_SECRET_MAX_BYTES] = '\0'; /* the longest accepted */
    assert_int_equal(load(buf, 0400, &k, err, sizeof err), HW_OK);
    hw_webhook_keys_free(k);
    buf[HW_WEBHOOK_SECRET_MAX_BYTES] = 'x';
    buf[HW_WEBHOOK_SECRET_MAX_BYTES + 1] = '\0';
    refused(buf, 0600, "line 1 has 1025 bytes");
    /* A file far larger than two secrets is refused before it is parsed. */
    size_t big = 4 * HW_WEBHOOK_SECRET_MAX_BYTES;
    char *huge = malloc(big + 1);
    assert_non_null(huge);
    memset(huge, 'y', big);
    huge[big] = '\0';
    refused(huge, 0600, "is larger than");
    free(huge);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hmac_is_hmac_sha256_rfc4231),
        cmocka_unit_test(test_one_secret_signs_t_dot_body),
        cmocka_unit_test(test_two_secrets_sign_twice_current_first),
        cmocka_unit_test(test_bad_files_are_refused),
        cmocka_unit_test(test_secret_length_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
