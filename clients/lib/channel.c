/*
 * channel: see channel.h. TLS uses the C core's SSL channel credentials
 * with the roots read from the file; the expected server name, when given,
 * is the SSL target name override argument. The reconnect schedule is
 * three channel arguments: GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS and
 * GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, and GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
 * which despite its name is the least time the core grants one connection
 * attempt (its "min connect timeout").
 */
#include "clients/lib/channel.h"

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
    grpc_arg *all = calloc(n_args + 4, sizeof *all);
    *out = NULL;
    if (!all) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (n_args)
        memcpy(all, args, n_args * sizeof *args);
    size_t n = n_args;
    hw_channel_reconnect r = hw_channel_reconnect_resolve(reconnect);
    int_arg(&all[n++], GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, r.initial_ms);
    int_arg(&all[n++], GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, r.max_ms);
    int_arg(&all[n++], GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, r.connect_timeout_ms);
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
    *out = grpc_channel_create(target, creds, &cargs);
    if (!*out) {
        snprintf(err, errlen, "cannot create a channel to %s", target);
        goto out;
    }
    rc = 0;
out:
    if (creds)
        grpc_channel_credentials_release(creds);
    free(roots);
    free(all);
    return rc;
}
