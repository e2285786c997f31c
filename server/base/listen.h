/*
 * listen: listening sockets for the addresses an operator gives, the same
 * way everywhere (the metrics listener, the bridges' HTTP listeners, and
 * the check behind helpwired's gRPC listeners): "host:port", "[v6]:port"
 * or ":port" (every interface), the host a name ("localhost") or a numeric
 * address, port 0 for a free one. A name that resolves to several
 * addresses is served on each of them, on one port.
 *
 * A port already in use is refused: sockets get SO_REUSEADDR (a restart
 * need not wait for TIME_WAIT) but never SO_REUSEPORT, with which a second
 * process on the same port would silently take half of the connections.
 *
 * Stateless; thread-safe.
 */
#ifndef HW_LISTEN_H
#define HW_LISTEN_H

#include <stddef.h>

#define HW_LISTEN_MAX 4 /* addresses one name may stand for */

typedef struct hw_listen_set {
    int fds[HW_LISTEN_MAX]; /* listening, non-blocking, close-on-exec */
    size_t n;
    int port; /* the bound port (the one picked for port 0) */
} hw_listen_set;

/* Resolves addr and binds and listens on every address it stands for
 * (backlog 128). On success the caller owns out->fds (hw_listen_close, or
 * hand them to a server that closes them). On failure nothing stays open
 * and err says "cannot listen on ADDR: why" (the address in use, a name
 * not found, a malformed address, not permitted). Returns 0 or -1. */
int hw_listen_open(const char *addr, hw_listen_set *out, char *err, size_t errlen);

/* Closes every socket of set (n becomes 0). */
void hw_listen_close(hw_listen_set *set);

/* For a listener another library binds (gRPC's "host:port", "[v6]:port" or
 * "unix:PATH"): says in err why addr cannot be served now, found by trying
 * it (a TCP address is bound and released at once; a unix socket path is
 * refused when a live process answers on it or a file that is not a socket
 * is in the way). Returns 0 when addr looks free (err untouched), -1 with
 * the reason. */
int hw_listen_check(const char *addr, char *err, size_t errlen);

#endif
