/*
 * channel: a gRPC C-core client channel to helpwired, plaintext or TLS,
 * as every client here opens it: the bridges, the helpwire CLI and the
 * helpwire-bench load generator take the same --tls-ca / --tls-server-name
 * flags. hw_client (client.h) opens its channel here; the load generator,
 * which spreads its calls over many channels with their own arguments,
 * calls hw_channel_open directly.
 */
#ifndef HW_CLIENT_CHANNEL_H
#define HW_CLIENT_CHANNEL_H

#include <stddef.h>

#include <grpc/grpc.h>

/* How to reach helpwired. Strings are borrowed for the call. */
typedef struct hw_channel_security {
    const char *tls_ca_file;     /* PEM roots to trust; NULL or "": plaintext */
    const char *tls_server_name; /* name the certificate must carry; NULL or "": the target's host */
} hw_channel_security;

/* The largest CA file read. */
#define HW_CHANNEL_MAX_CA_BYTES (1 << 20)

/* Opens a channel to target (host:port; connects lazily) with the extra
 * channel args (may be NULL with n_args 0). grpc_init() must have been
 * called. Returns 0 with *out (release with grpc_channel_destroy), or -1
 * with a message in err naming the cause (e.g. "--tls-ca FILE: ..."). */
int hw_channel_open(const char *target, const hw_channel_security *sec, const grpc_arg *args, size_t n_args,
                    grpc_channel **out, char *err, size_t errlen);

#endif
