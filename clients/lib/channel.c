/*
 * channel: see channel.h. TLS uses the C core's SSL channel credentials
 * with the roots read from the file; the expected server name, when given,
 * is the SSL target name override argument. The reconnect schedule is
 * three channel arguments: GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS and
 * GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, and GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
 * which despite its name is the least time the core grants one connection
 * attempt (its "min connect timeout").
 *
 * An address list is checked entry by entry with inet_pton, so that a typo
 * is a start-up error naming the entry rather than a channel that never
 * connects; the channel then gets the lb policy pick_first explicitly
 * (the core's default, but the fail-over order is what the flag promises)
 * and the first address as its default authority (the static resolver's
 * own would be the whole list).
 */
#include "clients/lib/channel.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc_security.h>

#include "server/base/files.h"

/* The CA roots at path, NUL-terminated (malloc'd); NULL with err. */
static char *read_roots(const char *path, char *err, size_t errlen)
{
    char *buf = NULL, e[300];
    size_t n = 0;
    if (hw_file_read(path, HW_CHANNEL_MAX_CA_BYTES, &buf, &n, e, sizeof e) != 0) {
        snprintf(err, errlen, "--tls-ca: %s", e);
        return NULL;
    }
    if (n == 0) {
        snprintf(err, errlen, "--tls-ca %s: the file is empty", path);
        free(buf);
        return NULL;
    }
    return buf;
}

hw_channel_reconnect hw_channel_reconnect_resolve(const hw_channel_reconnect *rc)
{
    hw_channel_reconnect r = rc ? *rc : (hw_channel_reconnect){0, 0, 0};
    if (r.initial_ms <= 0)
        r.initial_ms = HW_CHANNEL_RECONNECT_INITIAL_MS;
    if (r.max_ms <= 0)
        r.max_ms = HW_CHANNEL_RECONNECT_MAX_MS;
    if (r.connect_timeout_ms <= 0)
        r.connect_timeout_ms = HW_CHANNEL_CONNECT_TIMEOUT_MS;
    if (r.initial_ms > r.max_ms)
        r.initial_ms = r.max_ms;
    return r;
}

/* Checks one list entry (len bytes at e): an IPv4 "a.b.c.d:port" or IPv6
 * "[addr]:port". Sets *family (AF_INET, AF_INET6). Returns 0, or -1 with
 * err. */
static int check_entry(const char *e, size_t len, int *family, char *err, size_t errlen)
{
    char host[INET6_ADDRSTRLEN + 8];
    const char *port;
    size_t hlen;
    unsigned char buf[sizeof(struct in6_addr)];
    if (len == 0) {
        snprintf(err, errlen, "an empty address in the list");
        return -1;
    }
    if (e[0] == '[') {
        const char *close = memchr(e, ']', len);
        if (!close || close + 1 >= e + len || close[1] != ':') {
            snprintf(err, errlen, "%.*s: expected [IPv6]:port", (int)len, e);
            return -1;
        }
        hlen = (size_t)(close - e - 1);
        port = close + 2;
        *family = AF_INET6;
        if (hlen >= sizeof host)
            goto not_ip;
        memcpy(host, e + 1, hlen);
    } else {
        const char *colon = NULL;
        for (const char *p = e; p < e + len; p++)
            if (*p == ':')
                colon = p;
        if (!colon) {
            snprintf(err, errlen, "%.*s: expected host:port", (int)len, e);
            return -1;
        }
        hlen = (size_t)(colon - e);
        port = colon + 1;
        *family = AF_INET;
        if (hlen >= sizeof host)
            goto not_ip;
        memcpy(host, e, hlen);
    }
    host[hlen] = '\0';
    size_t plen = (size_t)(e + len - port);
    unsigned long pn = 0;
    bool digits = plen > 0 && plen <= 5;
    for (size_t i = 0; digits && i < plen; i++) {
        digits = port[i] >= '0' && port[i] <= '9';
        pn = pn * 10 + (unsigned long)(port[i] - '0');
    }
    if (!digits || pn == 0 || pn > 65535) {
        snprintf(err, errlen, "%.*s: the port must be a number from 1 to 65535", (int)len, e);
        return -1;
    }
    if (inet_pton(*family, host, buf) == 1)
        return 0;
not_ip:
    snprintf(err, errlen,
             "%.*s: a list of several addresses takes IP addresses only (host names are resolved one at a "
             "time: give a name alone)",
             (int)len, e);
    return -1;
}

int hw_channel_target(const char *addrs, char *target, size_t target_len, char *authority,
                      size_t authority_len, char *err, size_t errlen)
{
    size_t total = strlen(addrs);
    if (!strchr(addrs, ',')) {
        if (total + 1 > target_len || authority_len < 1) {
            snprintf(err, errlen, "the address is too long");
            return -1;
        }
        memcpy(target, addrs, total + 1);
        authority[0] = '\0';
        return 0;
    }
    int family = 0;
    const char *e = addrs;
    for (;;) {
        const char *comma = strchr(e, ',');
        size_t len = comma ? (size_t)(comma - e) : strlen(e);
        int f;
        if (check_entry(e, len, &f, err, errlen) != 0)
            return -1;
        if (family && f != family) {
            snprintf(err, errlen, "%.*s: the list mixes IPv4 and IPv6 addresses", (int)len, e);
            return -1;
        }
        if (!family) {
            family = f;
            if (len + 1 > authority_len) {
                snprintf(err, errlen, "the address is too long");
                return -1;
            }
            memcpy(authority, e, len);
            authority[len] = '\0';
        }
        if (!comma)
            break;
        e = comma + 1;
    }
    int n = snprintf(target, target_len, "%s:%s", family == AF_INET ? "ipv4" : "ipv6", addrs);
    if (n < 0 || (size_t)n >= target_len) {
        snprintf(err, errlen, "the address list is too long");
        return -1;
    }
    return 0;
}

static void int_arg(grpc_arg *a, const char *key, int value)
{
    a->type = GRPC_ARG_INTEGER;
    a->key = (char *)key;
    a->value.integer = value;
}

int hw_channel_open(const char *target, const hw_channel_security *sec, const hw_channel_reconnect *reconnect,
                    const grpc_arg *args, size_t n_args, grpc_channel **out, char *err, size_t errlen)
{
    int rc = -1;
    char *roots = NULL;
    grpc_channel_credentials *creds = NULL;
    grpc_arg *all = calloc(n_args + 6, sizeof *all);
    char *core_target = malloc(HW_CHANNEL_MAX_TARGET_BYTES), authority[HW_CHANNEL_MAX_TARGET_BYTES];
    *out = NULL;
    if (!all || !core_target) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (hw_channel_target(target, core_target, HW_CHANNEL_MAX_TARGET_BYTES, authority, sizeof authority, err,
                          errlen) != 0)
        goto out;
    if (n_args)
        memcpy(all, args, n_args * sizeof *args);
    size_t n = n_args;
    hw_channel_reconnect r = hw_channel_reconnect_resolve(reconnect);
    int_arg(&all[n++], GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, r.initial_ms);
    int_arg(&all[n++], GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, r.max_ms);
    int_arg(&all[n++], GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, r.connect_timeout_ms);
    if (authority[0]) {
        all[n].type = GRPC_ARG_STRING;
        all[n].key = (char *)GRPC_ARG_LB_POLICY_NAME;
        all[n++].value.string = (char *)"pick_first";
        all[n].type = GRPC_ARG_STRING;
        all[n].key = (char *)GRPC_ARG_DEFAULT_AUTHORITY;
        all[n++].value.string = authority;
    }
    if (sec && sec->tls_ca_file && *sec->tls_ca_file) {
        if (!(roots = read_roots(sec->tls_ca_file, err, errlen)))
            goto out;
        creds = grpc_ssl_credentials_create(roots, NULL, NULL, NULL);
        if (sec->tls_server_name && *sec->tls_server_name) {
            all[n].type = GRPC_ARG_STRING;
            all[n].key = (char *)GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
            all[n++].value.string = (char *)sec->tls_server_name;
        }
    } else {
        creds = grpc_insecure_credentials_create();
    }
    if (!creds) {
        snprintf(err, errlen, "cannot create channel credentials");
        goto out;
    }
    grpc_channel_args cargs = {n, all};
    *out = grpc_channel_create(core_target, creds, &cargs);
    if (!*out) {
        snprintf(err, errlen, "cannot create a channel to %s", target);
        goto out;
    }
    rc = 0;
out:
    if (creds)
        grpc_channel_credentials_release(creds);
    free(roots);
    free(core_target);
    free(all);
    return rc;
}
