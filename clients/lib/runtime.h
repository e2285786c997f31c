/*
 * runtime: what every bridge process sets up before it serves and takes
 * down after: its log, the stop handler (signals blocked before any thread
 * exists), libcurl when the bridge calls a channel API, the gRPC core (its
 * own log lines routed into the bridge's log) and
 * the channel to helpwired, and the Outbox subscription for its channel.
 * One place for the order these must start and stop in.
 */
#ifndef BR_RUNTIME_H
#define BR_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>

#include "clients/lib/client.h"
#include "clients/lib/config.h"
#include "clients/lib/outbox.h"
#include "clients/lib/stop.h"
#include "server/base/grpc_runtime.h"
#include "server/base/log.h"

typedef struct br_runtime {
    hw_log *log;
    br_stop *stop;
    hw_client *rpc;
    br_outbox *ob;
    hw_grpc_log_route grpc_log; /* the gRPC core's own lines, into log */
    bool grpc_up, curl_up;
} br_runtime;

/* Completes the common settings (br_common_finish: the log level checked,
 * the token loaded) and starts everything but the subscription. name
 * labels the log lines ("telegram"). Returns 0, or -1 with one line in err
 * (what is set up so far is still freed by br_runtime_finish). Call from
 * main, before any other thread starts. */
int br_runtime_start(br_runtime *rt, const char *name, br_common *c, bool use_curl, char *err, size_t errlen);

/* Subscribes to the channel's outbox on its own thread; deliver(arg, m)
 * sends one message to the channel and returns 0 once the channel accepted
 * it (then it is acknowledged). Returns 0 or -1. */
int br_runtime_subscribe(br_runtime *rt, const br_common *c, Helpwire__V1__Channel channel,
                         br_outbox_deliver_fn deliver, void *arg);

/* For a bridge that serves HTTP on listen (bound to port): logs "started",
 * prints "<prog> listening on HOST:PORT" on stdout (tests and scripts read
 * it), then waits until SIGTERM/SIGINT. */
void br_runtime_serve(br_runtime *rt, const char *prog, const br_common *c, const char *listen,
                      unsigned port);

/* Stops the subscription, closes the channel to helpwired, shuts gRPC and
 * libcurl down, logs "stopped" with the exit status rc, and frees the stop
 * handler and the log. Stop the bridge's own threads and servers first.
 * Safe on a zeroed or partly started runtime. */
void br_runtime_finish(br_runtime *rt, int rc);

#endif
