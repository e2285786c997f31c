/*
 * cluster_fmt: the human form of a ClusterStatus (helpwire.v1.Cluster) for
 * `helpwire cluster status` and the replies of add/remove/transfer: a
 * key/value block of this replica's view (its state and term, the leader,
 * the commit, applied, last log and snapshot indexes, whether it takes
 * writes and why not), then one row per member (id, raft and gRPC
 * addresses, role, match index, which one leads, which one answered).
 * Kept apart from the command so the unit test can check the layout
 * without a server. --json output is pbjson's, not this.
 *
 * Pure: writes to the given stream only; thread-safe.
 */
#ifndef CLI_CLUSTER_FMT_H
#define CLI_CLUSTER_FMT_H

#include <stdio.h>

#include "helpwire/v1/cluster.pb-c.h"

/* Prints s to f (borrowed). Member addresses are cleaned as any cell
 * (table.h). Returns 0, or -1 when out of memory (nothing or part
 * printed). */
int cli_cluster_print(FILE *f, const Helpwire__V1__ClusterStatus *s);

#endif
