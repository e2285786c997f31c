/*
 * webhook_sign: see webhook_sign.h. OpenSSL's EVP_MAC does the HMAC (fed
 * "<t>." and the body in two updates: the body is not copied); the file is
 * opened once and its mode checked on that descriptor (fstat), so the file
 * checked is the file read.
 */
#include "server/domain/webhook_sign.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "server/base/errors.h"

/* The whole file: two secrets of the longest size and their line ends. */
#define FILE_MAX_BYTES (HW_WEBHOOK_MAX_SECRETS * (HW_WEBHOOK_SECRET_MAX_BYTES + 2))

struct hw_webhook_keys {
    size_t n;
    size_t len[HW_WEBHOOK_MAX_SECRETS];
    unsigned char secret[HW_WEBHOOK_MAX_SECRETS][HW_WEBHOOK_SECRET_MAX_BYTES];
};

/* Reads the file at path (not group/world accessible, a regular file, at
 * most FILE_MAX_BYTES) into buf; *len its size. Returns HW_OK or
 * HW_EINVALID with err. */
static int read_private(const char *path, char *buf, size_t cap, size_t *len, char *err, size_t errlen)
{
    int rc = HW_EINVALID;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return rc;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s is not a regular file", path);
        goto out;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(err, errlen,
                 "%s is accessible by group or others (mode %04o): it holds secrets, chmod 600 it", path,
                 (unsigned)(st.st_mode & 07777));
        goto out;
    }
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, buf + got, cap - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
        if (got == cap) {
            snprintf(err, errlen, "%s is larger than %zu bytes", path, cap - 1);
            goto out;
        }
    }
    *len = got;
    rc = HW_OK;
out:
    close(fd);
    return rc;
}

int hw_webhook_keys_load(const char *path, hw_webhook_keys **out, char *err, size_t errlen)
{
    *out = NULL;
    char *buf = malloc(FILE_MAX_BYTES + 1);
    hw_webhook_keys *k = calloc(1, sizeof *k);
    size_t len = 0;
    int rc = HW_ENOMEM;
    if (!buf || !k) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    rc = read_private(path, buf, FILE_MAX_BYTES + 1, &len, err, errlen);
    if (rc != HW_OK)
        goto out;
    rc = HW_EINVALID;
    /* A final newline ends the last line; it does not start another. */
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (len == 0) {
        snprintf(err, errlen, "%s is empty: it needs one secret per line (the current one first)", path);
        goto out;
    }
    size_t line_no = 0;
    for (size_t at = 0; at <= len;) {
        const char *nl = memchr(buf + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - buf) : len;
        size_t l = end - at;
        while (l > 0 && (buf[at + l - 1] == '\r' || buf[at + l - 1] == ' ' || buf[at + l - 1] == '\t'))
            l--;
        line_no++;
        if (line_no > HW_WEBHOOK_MAX_SECRETS) {
            snprintf(err, errlen,
                     "%s has more than %d lines: the current secret, then the previous one while rotating",
                     path, HW_WEBHOOK_MAX_SECRETS);
            goto out;
        }
        if (l == 0) {
            snprintf(err, errlen, "%s: line %zu is empty", path, line_no);
            goto out;
        }
        if (l < HW_WEBHOOK_SECRET_MIN_BYTES || l > HW_WEBHOOK_SECRET_MAX_BYTES) {
            snprintf(err, errlen, "%s: the secret on line %zu has %zu bytes; it needs %d to %d", path,
                     line_no, l, HW_WEBHOOK_SECRET_MIN_BYTES, HW_WEBHOOK_SECRET_MAX_BYTES);
            goto out;
        }
        memcpy(k->secret[k->n], buf + at, l);
        k->len[k->n++] = l;
        at = end + 1;
    }
    *out = k;
    k = NULL;
    rc = HW_OK;
out:
    if (buf) {
        OPENSSL_cleanse(buf, FILE_MAX_BYTES + 1);
        free(buf);
    }
    hw_webhook_keys_free(k);
    return rc;
}

void hw_webhook_keys_free(hw_webhook_keys *k)
{
    if (!k)
        return;
    OPENSSL_cleanse(k, sizeof *k);
    free(k);
}

size_t hw_webhook_keys_count(const hw_webhook_keys *k)
{
    return k ? k->n : 0;
}

int hw_webhook_hmac_hex(const void *key, size_t key_len, const void *a, size_t a_len, const void *b,
                        size_t b_len, char hex[65])
{
    int rc = HW_ENOMEM;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    unsigned char md[32];
    size_t md_len = 0;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    if (!ctx || EVP_MAC_init(ctx, key, key_len, params) != 1 || EVP_MAC_update(ctx, a, a_len) != 1 ||
        EVP_MAC_update(ctx, b, b_len) != 1 || EVP_MAC_final(ctx, md, &md_len, sizeof md) != 1 ||
        md_len != sizeof md)
        goto out;
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof md; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
    rc = HW_OK;
out:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return rc;
}

int hw_webhook_sign(const hw_webhook_keys *k, int64_t t_unix_s, const void *body, size_t body_len, char *out,
                    size_t outlen)
{
    if (!k || k->n == 0 || outlen < HW_WEBHOOK_SIGNATURE_MAX)
        return HW_EINVALID;
    char prefix[32];
    int plen = snprintf(prefix, sizeof prefix, "%" PRId64 ".", t_unix_s);
    size_t used = (size_t)snprintf(out, outlen, "t=%" PRId64, t_unix_s);
    for (size_t i = 0; i < k->n; i++) {
        char hex[65];
        int rc = hw_webhook_hmac_hex(k->secret[i], k->len[i], prefix, (size_t)plen, body, body_len, hex);
        if (rc != HW_OK)
            return rc;
        used += (size_t)snprintf(out + used, outlen - used, ",v1=%s", hex);
    }
    return HW_OK;
}
