/*
 * secret: see secret.h. OpenSSL does the hashing, the base64 and the
 * constant-time compare.
 */
#include "server/secret.h"

#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

int hw_secret_new(const char *prefix, size_t n_random, char *out, size_t outlen)
{
    unsigned char raw[64];
    size_t plen = strlen(prefix);
    if (n_random == 0 || n_random > sizeof raw || outlen < plen + (n_random + 2) / 3 * 4 + 1)
        return -1;
    size_t got = 0;
    while (got < n_random) {
        ssize_t n = getrandom(raw + got, n_random - got, 0);
        if (n > 0)
            got += (size_t)n;
    }
    memcpy(out, prefix, plen);
    int n = EVP_EncodeBlock((unsigned char *)out + plen, raw, (int)n_random);
    OPENSSL_cleanse(raw, sizeof raw);
    char *p = out + plen;
    /* Standard base64 to the URL-safe alphabet, padding dropped. */
    for (int i = 0; i < n; i++)
        p[i] = p[i] == '+' ? '-' : p[i] == '/' ? '_' : p[i];
    while (n > 0 && p[n - 1] == '=')
        n--;
    p[n] = '\0';
    return 0;
}

int hw_secret_hash(const char *secret, size_t len, unsigned char hash[HW_SECRET_HASH_BYTES])
{
    unsigned int n = 0;
    if (EVP_Digest(secret, len, hash, &n, EVP_sha256(), NULL) != 1 || n != HW_SECRET_HASH_BYTES)
        return -1;
    return 0;
}

bool hw_secret_hash_equal(const unsigned char a[HW_SECRET_HASH_BYTES],
                          const unsigned char b[HW_SECRET_HASH_BYTES])
{
    return CRYPTO_memcmp(a, b, HW_SECRET_HASH_BYTES) == 0;
}
