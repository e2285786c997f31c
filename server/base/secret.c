/*
 * secret: see secret.h. OpenSSL does the hashing, the base64 and the
 * constant-time compare.
 *
 * The SHA-256 implementation is fetched from OpenSSL once per process
 * (pthread_once) and shared: with OpenSSL 3, EVP_sha256() makes every
 * EVP_Digest look the algorithm up again, which cost more than the hash
 * of a token itself on the per-call authorization path. The fetched
 * EVP_MD is immutable and safe to use from any thread.
 */
#include "server/base/secret.h"

#include <pthread.h>
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

static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static const EVP_MD *sha256_md; /* written once, under sha256_once */

static void sha256_fetch(void)
{
    EVP_MD *md = EVP_MD_fetch(NULL, "SHA256", NULL);
    sha256_md = md ? md : EVP_sha256();
}

int hw_secret_hash(const char *secret, size_t len, unsigned char hash[HW_SECRET_HASH_BYTES])
{
    pthread_once(&sha256_once, sha256_fetch);
    unsigned int n = 0;
    if (EVP_Digest(secret, len, hash, &n, sha256_md, NULL) != 1 || n != HW_SECRET_HASH_BYTES)
        return -1;
    return 0;
}

bool hw_secret_hash_equal(const unsigned char a[HW_SECRET_HASH_BYTES],
                          const unsigned char b[HW_SECRET_HASH_BYTES])
{
    return CRYPTO_memcmp(a, b, HW_SECRET_HASH_BYTES) == 0;
}
