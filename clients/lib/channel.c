/*
 * channel: see channel.h. TLS uses the C core's SSL channel credentials
 * with the roots read from the file; the expected server name, when given,
 * is the SSL target name override argument.
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

int hw_channel_open(const char *target, const hw_channel_security *sec, const grpc_arg *args, size_t n_args,
                    grpc_channel **out, char *err, size_t errlen)
{
    int rc = -1;
    char *roots = NULL;
    grpc_channel_credentials *creds = NULL;
    grpc_arg *all = calloc(n_args + 1, sizeof *all);
    *out = NULL;
    if (!all) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (n_args)
        memcpy(all, args, n_args * sizeof *args);
    size_t n = n_args;
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
