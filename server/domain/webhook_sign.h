/*
 * webhook_sign: the signature on outbound webhooks (supervisor alerts), in
 * the style receivers already verify for payment providers: a header
 *
 *     helpwire-signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]
 *
 * where each v1 is hex(HMAC-SHA256(secret, "<t>." + body)), one per
 * configured secret. The secrets come from --webhook-secret-file: one or
 * two non-empty lines, the current secret first and, while rotating, the
 * previous one, so that a receiver holding either verifies. The file must
 * not be readable by group or others. Secrets are never logged; the loaded
 * set is immutable (rotation: replace the file and restart), so signing
 * needs no lock.
 *
 * What it does not do: send anything (the notifier does), or remember
 * ids (receivers drop replays themselves).
 */
#ifndef HW_WEBHOOK_SIGN_H
#define HW_WEBHOOK_SIGN_H

#include <stddef.h>
#include <stdint.h>

#define HW_WEBHOOK_MAX_SECRETS 2
#define HW_WEBHOOK_SECRET_MIN_BYTES 16
#define HW_WEBHOOK_SECRET_MAX_BYTES 1024
/* "t=" + 20 digits + per secret ",v1=" + 64 hex digits, and the NUL. */
#define HW_WEBHOOK_SIGNATURE_MAX (2 + 20 + HW_WEBHOOK_MAX_SECRETS * (4 + 64) + 1)

typedef struct hw_webhook_keys hw_webhook_keys;

/* Loads the secrets of path: one or two lines, each at least
 * HW_WEBHOOK_SECRET_MIN_BYTES and at most HW_WEBHOOK_SECRET_MAX_BYTES
 * bytes (trailing spaces, tabs and a CR are not part of a line; a final
 * newline is optional). Refused, with err naming the file and the reason
 * (never its content): a file that cannot be read, is not a regular file,
 * can be read or written by group or others (chmod 600), or has no line, an
 * empty line, a line too short or too long, or more than two lines.
 * @param[out] out the set (free with hw_webhook_keys_free); NULL on error.
 * @return HW_OK; HW_EINVALID with err; HW_ENOMEM. */
int hw_webhook_keys_load(const char *path, hw_webhook_keys **out, char *err, size_t errlen);

/* Wipes the secrets and frees; NULL is fine. */
void hw_webhook_keys_free(hw_webhook_keys *k);

/* How many secrets k holds (1 or 2; 0 for NULL). */
size_t hw_webhook_keys_count(const hw_webhook_keys *k);

/* Writes into out (at least HW_WEBHOOK_SIGNATURE_MAX bytes) the value of
 * the helpwire-signature header for body sent at t_unix_s: t=<t_unix_s>
 * then one v1=<hex> per secret, the current one first. Thread-safe (k is
 * only read). @return HW_OK; HW_EINVALID (k NULL, out too small);
 * HW_ENOMEM (OpenSSL failed). */
int hw_webhook_sign(const hw_webhook_keys *k, int64_t t_unix_s, const void *body, size_t body_len, char *out,
                    size_t outlen);

/* hex(HMAC-SHA256(key, a || b)) into hex (65 bytes with the NUL): the
 * primitive under hw_webhook_sign, for tests against known vectors.
 * @return HW_OK; HW_ENOMEM (OpenSSL failed). */
int hw_webhook_hmac_hex(const void *key, size_t key_len, const void *a, size_t a_len, const void *b,
                        size_t b_len, char hex[65]);

#endif
