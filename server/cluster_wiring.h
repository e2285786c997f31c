/*
 * cluster_wiring: what main does for a replicated helpwired (--cluster-*):
 * parse the members, open the raft module over the store, give the net
 * layer its forwarding hooks, and run the replica's watch thread ("hw-
 * cluster": the Writes health status, the members' gRPC addresses from the
 * store, and the restart on a fetched copy when raft says this store is too
 * far behind). Kept out of main.c so that a single node's start reads as
 * before.
 */
#ifndef HW_CLUSTER_WIRING_H
#define HW_CLUSTER_WIRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "server/base/log.h"
#include "server/domain/app.h"
#include "server/net/health.h"
#include "server/net/net.h"
#include "server/ops/config.h"
#include "server/repl/repl.h"

/* The health service name whose status says whether this replica takes
 * writes (SERVING: it leads, or forwards to a leader it knows). */
#define HW_CLUSTER_WRITES_SERVICE "helpwire.v1.Writes"

typedef struct hw_cluster_wiring hw_cluster_wiring;

/* Parses "ID=RAFT@GRPC,..." into out[0..*n). false with err on a bad list. */
bool hw_cluster_parse_peers(const char *list, hw_repl_member *out, size_t max, size_t *n, char *err,
                            size_t errlen);

/* Opens the raft module over app->store (sets app->repl) and waits up to
 * wait_ms for a leader to be known, so that the start-up writes (demo seed,
 * first token) find one. When the store is behind this replica's own latest
 * raft snapshot, fetches a copy of a peer's store (--cluster-token-file's
 * admin token) and starts the program again (execv of argv), which
 * installs it (hw_cluster_install_copy). Returns 0, or -1 with err. */
int hw_cluster_open(hw_cluster_wiring **out, const hw_config *cfg, char **argv, hw_app *app, const hw_log *log,
                    int wait_ms, char *err, size_t errlen);

/* Before the store opens: installs a copy fetched by an earlier run
 * (server/repl/fetch.h). Returns 0, or -1 with err. */
int hw_cluster_install_copy(const hw_config *cfg, char *err, size_t errlen);

/* Metrics collector (metrics.h): helpwire_replication_* counters and
 * gauges; ctx is the wiring. */
void hw_cluster_collect_metrics(void *w, FILE *out);

/* The net layer's hooks (net.h); ctx is the hw_app. */
const hw_net_cluster *hw_cluster_net_hooks(void);

/* Starts the watch thread once the server listens (advertise: this
 * replica's gRPC address as bound, when --cluster-advertise is not set). */
int hw_cluster_start(hw_cluster_wiring *w, const char *advertise, char *err, size_t errlen);

/* Stops the thread and raft, before the store closes; hw_cluster_free
 * after it (app->repl = NULL). NULL is a no-op. */
void hw_cluster_close(hw_cluster_wiring *w);
void hw_cluster_free(hw_cluster_wiring *w);

#endif
