/*
 * secret: unguessable bearer secrets (API tokens, survey links) and their
 * hashes. Secrets are random bytes from getrandom(2) written as URL-safe
 * base64 without padding; only their SHA-256 (OpenSSL) is ever stored, so
 * a copy of the store does not hand out working credentials.
 */
#ifndef HW_SECRET_H
#define HW_SECRET_H

#include <stdbool.h>
#include <stddef.h>

#define HW_SECRET_HASH_BYTES 32

/* Writes prefix + base64url(n_random random bytes) into out (size outlen;
 * needs strlen(prefix) + 4 * ceil(n_random / 3) + 1). Returns 0, or -1
 * when out is too small or n_random is 0 or over 64. Thread-safe. */
int hw_secret_new(const char *prefix, size_t n_random, char *out, size_t outlen);

/* SHA-256 of the secret's bytes. Returns 0 or -1. Thread-safe. */
int hw_secret_hash(const char *secret, size_t len, unsigned char hash[HW_SECRET_HASH_BYTES]);

/* Constant-time comparison of two hashes. */
bool hw_secret_hash_equal(const unsigned char a[HW_SECRET_HASH_BYTES],
                          const unsigned char b[HW_SECRET_HASH_BYTES]);

#endif
