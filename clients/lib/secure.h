/*
 * secure: the few cryptographic helpers the bridges need, on OpenSSL:
 * HMAC-SHA256 in hex (WhatsApp's X-Hub-Signature-256), a constant-time
 * comparison for every secret check (signatures, verify tokens, Telegram's
 * secret header), and random URL-safe tokens (web-chat session ids).
 * All functions are thread-safe and keep no state.
 */
#ifndef BR_SECURE_H
#define BR_SECURE_H

#include <stdbool.h>
#include <stddef.h>

/* Writes the lowercase hex HMAC-SHA256 of data under key into hex (65
 * bytes with the NUL). Returns 0, or -1 if OpenSSL fails. */
int br_hmac_sha256_hex(const void *key, size_t key_len, const void *data, size_t data_len, char hex[65]);

/* Compares two byte strings in time independent of their content (only
 * their lengths may leak). NULL equals nothing. */
bool br_equal_const_time(const char *a, size_t a_len, const char *b, size_t b_len);

/* Same for NUL-terminated strings. */
bool br_streq_const_time(const char *a, const char *b);

/* Fills out with a URL-safe base64 token of nbytes random bytes (out must
 * hold 4 * ((nbytes + 2) / 3) + 1 bytes). Returns 0, or -1 when the random
 * source fails. */
int br_random_token(char *out, size_t out_size, size_t nbytes);

#endif
