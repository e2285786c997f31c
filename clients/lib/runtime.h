/*
 * runtime: what every bridge process sets up before it serves and takes
 * down after, so that a bridge's main keeps only what is specific to its
 * channel: its log, the stop handler (signals blocked before any thread
 * exists), libcurl when the bridge calls a channel API, the gRPC core (its
 * own log lines routed into the bridge's log), the client to helpwired
 * (its reconnect schedule from the --backoff-* settings, its calls waiting
 * for a connection up to their deadline),
 * the Outbox subscription for its channel, the spool and its drainer for
 * a bridge that takes its inbound messages durably before it answers
 * (spool.h, drain.h), and the HTTP server a bridge listens with. One place
 * for the order these must start and stop in.
 *
 * The functions a main calls print their own error line, "<prog>:
 * <reason>" on stderr, and return the exit status main should end with
 * (0 when it may go on), so the bridges' error lines and exit codes are
 * the same everywhere: 2 for a bad setting (one that includes a token
 * file that cannot be read or a CA file), 1 for a failure while starting.
 */
#ifndef BR_RUNTIME_H
#define BR_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "clients/lib/client.h"
#include "clients/lib/config.h"
#include "clients/lib/deadletter.h"
#include "clients/lib/drain.h"
#include "clients/lib/httpd.h"
#include "clients/lib/outbox.h"
#include "clients/lib/route.h"
#include "clients/lib/spool.h"
#include "clients/lib/stop.h"
#include "server/base/grpc_runtime.h"
#include "server/base/log.h"
#include "server/base/metrics.h"

/* What a bridge is to the runtime (static storage). */
typedef struct br_bridge {
    const char *prog;              /* "telegram-bridge": error lines, the listening line */
    const char *name;              /* "telegram": the log's bridge= field */
    Helpwire__V1__Channel channel; /* the outbox it subscribes to */
    bool use_curl;                 /* it calls its channel's API over HTTP */
} br_bridge;

typedef struct br_runtime {
    const br_bridge *bridge;
    br_common *common; /* released by br_runtime_finish */
    hw_log *log;
    br_stop *stop;
    hw_client *rpc;
    br_outbox *ob;              /* br_runtime_subscribe; read by the metrics thread */
    br_sent *sent;              /* br_runtime_subscribe: the durable sent record */
    br_httpd *httpd;            /* when the bridge listens */
    br_deadletter *dead;        /* br_runtime_inbound */
    hw_metrics *metrics;        /* with --metrics */
    br_route_policy route;      /* br_runtime_inbound: how inbound messages are routed */
    hw_grpc_log_route grpc_log; /* the gRPC core's own lines, into log */
    br_spool *spool;            /* br_runtime_spool; read by the metrics thread */
    br_drain *drain;            /* br_runtime_spool: what the handlers spool with */
    int drain_timeout_ms;       /* br_runtime_spool: how long the drainer goes on at the stop */
    /* Set by the bridge before br_runtime_spool when its messages carry
     * files to fetch (drain.h's prepare step); NULL otherwise. */
    br_drain_prepare_fn prepare;
    br_drain_prepare_done_fn prepare_done;
    void *prepare_arg;
    /* Set by the bridge before br_runtime_subscribe to take courtesy
     * signals (TYPING, READ; outbox.h); NULL drops them. */
    br_outbox_signal_fn on_signal;
    void *signal_arg;
    bool grpc_up, curl_up, quiesced;
} br_runtime;

/* The longest wait between two attempts to reach helpwired again, for the
 * client's channel and the Outbox stream: --backoff-max-ms, but at most
 * HW_CHANNEL_RECONNECT_MAX_MS (1 s), so that a bridge works again within
 * about a second of helpwired answering (docs/operations.md, "Bridges").
 * The other retries (a channel API's errors, a Route helpwired refused)
 * keep the full --backoff-max-ms. */
int br_runtime_reconnect_max_ms(const br_common *c);

/* Completes the common settings (br_common_finish: the log level checked,
 * the token loaded) and starts everything but the subscription and the
 * HTTP server. Call from main, before any other thread starts. Returns 0,
 * or 2 after printing why (what is set up so far is still freed by
 * br_runtime_finish, which must be called in any case). */
int br_runtime_start(br_runtime *rt, const br_bridge *bridge, br_common *c);

/* Prepares inbound routing: opens the dead-letter file in state_dir
 * (created if missing; the bridge refuses to start without one, so a
 * message given up on always has a durable place), fills rt->route from
 * the common settings, and with --metrics serves GET /metrics there
 * (Route calls by status, dead letters by reason, and the spool's gauge
 * once br_runtime_spool opened it; logged event=metrics_listening with the
 * port). Returns 0, or 1 after printing why. */
int br_runtime_inbound(br_runtime *rt, const char *state_dir);

/* For a bridge that spools its intake, after br_runtime_inbound: opens the
 * spool <state_dir>/<bridge name>.spool bounded by s's limits, adds its
 * gauge helpwire_bridge_spool_entries{bridge} to /metrics, and starts the
 * drainer, which at once routes what an earlier run left, with rt->route.
 * The bridge's handlers then spool with rt->drain (br_drain_spool).
 * br_runtime_finish, once the HTTP server is down (so no handler spools
 * after the drainer's last look), stops the drainer, letting it route on
 * for up to s->drain_timeout_ms, then closes the spool; what is left stays
 * spooled for the next start. Returns 0, or 1 after printing why
 * ("--state-dir: <why>" when the spool cannot be opened). */
int br_runtime_spool(br_runtime *rt, const char *state_dir, const br_spool_settings *s);

/* Opens the durable sent record in state_dir (<name>.sent.mdb, sent.h;
 * required: a bridge that delivers refuses to start without one) and
 * subscribes to the bridge's outbox (outbox.h) with --delivery-workers,
 * --max-delivery-age-ms and --max-in-flight-per-recipient; deliver(arg,
 * m, d) makes one attempt to send one message to the channel and returns
 * BR_OUTBOX_DELIVERED once the channel accepted it (then it is recorded
 * and acknowledged), BR_OUTBOX_FAILED when the channel refused it for good
 * (acknowledged as FAILED with d->reason), BR_OUTBOX_RETRY otherwise
 * (retried per d->retry_after_ms and d->scope). With --metrics, serves
 * them now if br_runtime_inbound did not, and adds
 * helpwire_bridge_deliveries_total{result}, helpwire_bridge_outbox_lease
 * and helpwire_bridge_outbox_queued. Returns 0, or 1 after printing why. */
int br_runtime_subscribe(br_runtime *rt, const char *state_dir, br_outbox_deliver_fn deliver, void *arg);

/* Opens the sent record (rt->sent) as br_runtime_subscribe does, for a
 * bridge whose deliver reads it: call it first and take rt->sent before
 * subscribing, since deliveries start on other threads as soon as the
 * subscription does. Nothing when it is open already. Returns 0, or 1 or
 * 2 after printing why. */
int br_runtime_open_sent(br_runtime *rt, const char *state_dir);

/* Starts the bridge's HTTP server on listen (as br_httpd_options; 0
 * max_body_bytes for the default) answering with handler(arg, request).
 * Returns 0, or 1 after printing why (e.g. the address is in use). */
int br_runtime_listen(br_runtime *rt, const char *listen, size_t max_body_bytes, br_httpd_handler handler,
                      void *arg);

/* For a bridge that serves HTTP (br_runtime_listen on listen): logs
 * "started", prints "<prog> listening on HOST:PORT" on stdout (tests and
 * scripts read it), then waits until SIGTERM/SIGINT. */
void br_runtime_serve(br_runtime *rt, const char *listen);

/* Waits until SIGTERM/SIGINT (or br_stop_request). */
void br_runtime_wait(br_runtime *rt);

/* Requests the stop and closes the HTTP server to new connections; the
 * requests in progress go on (a bridge may need to end its own long
 * requests next). Safe to repeat. */
void br_runtime_quiesce(br_runtime *rt);

/* br_runtime_quiesce, then waits for the requests in progress and stops
 * the HTTP server. Safe to repeat. */
void br_runtime_close_http(br_runtime *rt);

/* br_runtime_close_http, then stops the drainer (br_runtime_spool) and
 * the subscription, closes the spool and the client,
 * shuts gRPC and libcurl down, logs "stopped" with the exit status rc,
 * frees the stop handler and the log, and releases the common settings
 * (the token wiped). Stop the bridge's own threads first. Safe on a zeroed
 * or partly started runtime. */
void br_runtime_finish(br_runtime *rt, int rc);

#endif
