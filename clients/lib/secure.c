/* secure: HMAC, constant-time compare and random tokens on OpenSSL. */
#include "clients/lib/secure.h"

#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

int br_hmac_sha256_hex(const void *key, size_t key_len, const void *data, size_t data_len, char hex[65])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (!HMAC(EVP_sha256(), key, (int)key_len, data, data_len, mac, &mac_len) || mac_len != 32)
        return -1;
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < 32; i++) {
        hex[2 * i] = digits[mac[i] >> 4];
        hex[2 * i + 1] = digits[mac[i] & 15];
    }
    hex[64] = '\0';
    OPENSSL_cleanse(mac, sizeof mac);
    return 0;
}

bool br_equal_const_time(const char *a, size_t a_len, const char *b, size_t b_len)
{
    if (!a || !b || a_len != b_len)
        return false;
    return CRYPTO_memcmp(a, b, a_len) == 0;
}

bool br_streq_const_time(const char *a, const char *b)
{
    if (!a || !b)
        return false;
    return br_equal_const_time(a, strlen(a), b, strlen(b));
}

int br_random_token(char *out, size_t out_size, size_t nbytes)
{
    unsigned char raw[64];
    if (nbytes > sizeof raw || out_size < 4 * ((nbytes + 2) / 3) + 1)
        return -1;
    if (RAND_bytes(raw, (int)nbytes) != 1)
        return -1;
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < nbytes; i++) {
        acc = (acc << 8) | raw[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = alphabet[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        out[o++] = alphabet[(acc << (6 - bits)) & 63];
    out[o] = '\0';
    OPENSSL_cleanse(raw, sizeof raw);
    return 0;
}
