/*
 * channel: a gRPC C-core client channel to helpwired, plaintext or TLS,
 * as every client here opens it: the bridges, the helpwire CLI and the
 * helpwire-bench load generator take the same --tls-ca / --tls-server-name
 * flags. hw_client (client.h) opens its channel here; the load generator,
 * which spreads its calls over many channels with their own arguments,
 * calls hw_channel_open directly.
 *
 * Every channel reconnects on our schedule, not the core's: the core's
 * defaults (first retry after 1 s, growing 1.6 times per failed attempt up
 * to 120 s, and 20 s granted to each attempt) leave a client that lost
 * helpwired for a few seconds waiting many more once it is back. A bridge
 * ties the schedule to its --backoff-* settings (runtime.c).
 *
 * Several replicas: a target may be a comma-separated list of IP addresses
 * ("127.0.0.1:50051,127.0.0.1:50052" or "[::1]:50051,[::1]:50052"). The
 * list becomes the core's own static resolver target ("ipv4:a,b",
 * "ipv6:a,b") with the pick_first policy: the channel connects to the
 * first address that answers, in the order given, and when that
 * connection is lost it tries the list again from the start, so a call
 * made while one replica is down goes to the next (a caller that retries
 * UNAVAILABLE, as the bridges do, lands there). Host names are resolved by
 * DNS one name per channel: a name must stand alone (its DNS records may
 * list several addresses, which pick_first tries in turn), never inside a
 * list. One address is passed to the core unchanged, as before.
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

/* How a channel reconnects once its connection is gone (helpwired
 * restarting, a network cut). Before each new attempt the core waits a
 * backoff: initial_ms after the first failure, then 1.6 times longer after
 * each further one, up to max_ms, each delay with +/-20% jitter; so once
 * helpwired is back, the channel is connected again within about 1.2 x
 * max_ms. Each attempt may take up to connect_timeout_ms (a TCP connect
 * to a host that drops packets, a TLS handshake) before it is abandoned. A
 * zero field takes its default below; an initial_ms above max_ms is
 * lowered to max_ms. */
typedef struct hw_channel_reconnect {
    int initial_ms;
    int max_ms;
    int connect_timeout_ms;
} hw_channel_reconnect;

#define HW_CHANNEL_RECONNECT_INITIAL_MS 250
#define HW_CHANNEL_RECONNECT_MAX_MS 1000
#define HW_CHANNEL_CONNECT_TIMEOUT_MS 2000

/* The largest CA file read. */
#define HW_CHANNEL_MAX_CA_BYTES (1 << 20)

/* The largest address list accepted (bytes of the --server value). */
#define HW_CHANNEL_MAX_TARGET_BYTES 4096

/* The core's target for addrs, the value of a --server/--helpwire flag:
 * one address (host:port, or any target the core takes, e.g. "dns:///h:p")
 * is copied unchanged with *authority ""; a comma-separated list of IP
 * addresses of one family becomes "ipv4:a,b,..." or "ipv6:a,b,..." with
 * *authority the first address (the :authority and the name a TLS
 * certificate is checked against unless --tls-server-name is given).
 * Pure; no gRPC call.
 * @return 0, or -1 with a message in err naming the bad entry: an empty
 *         entry, a host name in a list, a missing or bad port, IPv4 and IPv6
 *         mixed, a result longer than target_len or authority_len. */
int hw_channel_target(const char *addrs, char *target, size_t target_len, char *authority,
                      size_t authority_len, char *err, size_t errlen);

/* Opens a channel to target (host:port, or a list as hw_channel_target
 * takes; connects lazily) with the extra
 * channel args (may be NULL with n_args 0; they must not name the reconnect
 * arguments, GRPC_ARG_{INITIAL,MIN,MAX}_RECONNECT_BACKOFF_MS) and the
 * reconnect schedule rc (NULL: the defaults). grpc_init() must have been
 * called. Returns 0 with *out (release with grpc_channel_destroy), or -1
 * with a message in err naming the cause (e.g. "--tls-ca FILE: ..."). */
int hw_channel_open(const char *target, const hw_channel_security *sec, const hw_channel_reconnect *rc,
                    const grpc_arg *args, size_t n_args, grpc_channel **out, char *err, size_t errlen);

/* rc with its zero fields replaced by the defaults and initial_ms at most
 * max_ms (rc NULL: the defaults), as hw_channel_open applies it. */
hw_channel_reconnect hw_channel_reconnect_resolve(const hw_channel_reconnect *rc);

#endif
