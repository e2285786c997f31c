/*
 * grpc_web: the gRPC-Web gateway of helpwired, for browsers (which cannot
 * speak gRPC over HTTP/2 with trailers). It listens on HTTP/1.1 addresses
 * of its own (libmicrohttpd) and translates each call, as Envoy's grpc_web
 * filter would, into a gRPC call over a client channel to helpwired's own
 * server on a private listener: authorization, roles, admission limits,
 * metrics and the method table apply unchanged, and no RPC is implemented
 * twice.
 *
 * Wire format (PROTOCOL-WEB of gRPC): a POST to /package.Service/Method
 * with content-type application/grpc-web[+proto] (binary) or
 * application/grpc-web-text[+proto] (the body base64, and the response
 * too). The body holds one length-prefixed message frame (flag 0x00;
 * compressed frames are refused). The response is HTTP 200 with the
 * server's initial metadata as headers, one frame per reply message, then
 * the trailers as a frame with flag 0x80 ("grpc-status: 0\r\n..."); a call
 * that ends without any message answers trailers-only (grpc-status and
 * grpc-message in the headers, empty body). Server-streaming calls
 * (WatchTickets) are sent as a chunked response, each message as it
 * arrives. Request headers become metadata (authorization and any custom
 * header; HTTP's own and the browser's headers are not forwarded; "-bin"
 * values are base64); grpc-timeout becomes the call's deadline. Keep-alive
 * connections are kept.
 *
 * Limits: a request frame longer than max_message_bytes, or a body that
 * cannot hold one, gets RESOURCE_EXHAUSTED without reaching the server.
 *
 * CORS: with allowed origins configured ("*" allows any), a request whose
 * Origin is allowed is answered with Access-Control-Allow-Origin and
 * Access-Control-Expose-Headers (grpc-status, grpc-message,
 * grpc-status-details-bin), and a preflight OPTIONS with the allowed
 * methods and headers (204). Other origins get no CORS headers (preflight:
 * 403), so browsers keep them out.
 *
 * Threads: one libmicrohttpd thread per listening socket (never blocks:
 * connections waiting for the server are suspended) and one gateway thread
 * that drains the channel's completion queue.
 */
#ifndef HW_GRPC_WEB_H
#define HW_GRPC_WEB_H

#include <stddef.h>

#include "server/base/log.h"

typedef struct hw_grpc_web hw_grpc_web;

typedef struct hw_grpc_web_options {
    const char *const *listen;       /* HTTP addresses (host:port, [v6]:port, :port; port 0 = free) */
    size_t n_listen;                 /* >= 1 */
    const char *const *cors_origins; /* allowed Origin values, "*" = any; may be empty */
    size_t n_cors_origins;
    /* The gRPC address calls go to (helpwired's private plaintext
     * listener, e.g. "unix-abstract:NAME" or "unix:/path"). Copied. */
    const char *target;
    int max_message_bytes; /* the server's gRPC message limit, >= 1 */
    const hw_log *log;     /* may be NULL; must outlive the gateway */
} hw_grpc_web_options;

/* Binds every listen address and starts serving. Returns 0 with *out (the
 * caller owns it: hw_grpc_web_stop), or -1 with one line in err ("cannot
 * listen on ADDR: why"; nothing stays open). */
int hw_grpc_web_start(hw_grpc_web **out, const hw_grpc_web_options *o, char *err, size_t errlen);

/* The address actually bound for socket i ("127.0.0.1:43517", port 0
 * resolved), over every listen address in order; NULL past the end. Owned
 * by the gateway. */
const char *hw_grpc_web_bound_address(const hw_grpc_web *web, size_t i);

/* Stops: no new connection is accepted; calls in flight get up to
 * timeout_ms to finish (call it after the gRPC server drained, which ends
 * every call: the answers already received are still written out); then
 * the connections close, the gateway thread is joined and everything is
 * freed. NULL is a no-op. Call once, from the thread that started it. */
void hw_grpc_web_stop(hw_grpc_web *web, int timeout_ms);

#endif
