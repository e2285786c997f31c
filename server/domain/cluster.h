/*
 * cluster: the Cluster service (proto/helpwire/v1/cluster.proto): this
 * replica's view of the replicas, the membership changes, and FetchSnapshot,
 * the copy of the store a replica too far behind for the log installs.
 *
 * On a single node (app->repl NULL) GetClusterStatus answers
 * replicated=false with this server as the only member, the membership
 * changes fail with FAILED_PRECONDITION, and FetchSnapshot still serves a
 * copy (a new replica may start from a single node's store).
 *
 * Threads: the membership changes block up to 10 s (hw_repl_add and its
 * siblings), so each runs on a short-lived detached thread ("hw-cluster")
 * that answers the call and exits; the worker is free at once. Each
 * FetchSnapshot runs on a detached thread of its own ("hw-fetch") that
 * writes the copy, streams it, and removes it; it holds a reference on the
 * call until it is done, so the server's shutdown (which ends the stream)
 * waits for it. Neither thread outlives its call.
 */
#ifndef HW_CLUSTER_H
#define HW_CLUSTER_H

#include "helpwire/v1/cluster.pb-c.h"
#include "server/net/net.h"

/* Largest data field of one SnapshotChunk. */
#define HW_CLUSTER_CHUNK_BYTES (1u << 20)

/* Limits of the addresses in AddReplica: host:port, 1..127 bytes. */
#define HW_CLUSTER_ADDRESS_MAX 127

/* Handlers for the method table; app is a hw_app. */
void hw_cluster_status(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_cluster_add_replica(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_cluster_remove_replica(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_cluster_transfer_leadership(hw_call *call, const ProtobufCMessage *request, void *app);
/* Server streaming: the copy in chunks; the temporary copy lives in
 * <data dir>/outgoing-XXXXXX while it is sent and is removed when the
 * stream ends for any reason. */
void hw_cluster_fetch_snapshot(hw_call *call, const ProtobufCMessage *request, void *app);

#endif
