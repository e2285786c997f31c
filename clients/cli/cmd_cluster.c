/*
 * cmd_cluster: `helpwire cluster status|add|remove|transfer`: the replicas
 * of a replicated helpwired (Cluster service). status is answered by the
 * replica the CLI reached (its own view: give --server one replica's
 * address to ask that one); add, remove and transfer are writes that the
 * replica forwards to the leader, and each prints the status it answers
 * with. On a single node status shows one member and "replicated no", and
 * the other three fail with FAILED_PRECONDITION.
 */
#include <string.h>

#include "clients/cli/cli.h"
#include "clients/cli/cluster_fmt.h"
#include "clients/cli/fmt.h"
#include "helpwire/v1/cluster.pb-c.h"

/* Replica ids are positive 64-bit numbers; the CLI takes up to 2^53 (what
 * a JSON consumer of --json reads exactly). */
#define MAX_REPLICA_ID (1LL << 53)

static int print_status(cli_ctx *ctx, Helpwire__V1__ClusterStatus *s)
{
    int rc = CLI_EXIT_OK;
    if (ctx->json)
        rc = cli_emit_message(ctx, &s->base);
    else if (cli_cluster_print(ctx->out, s) != 0)
        rc = cli_fail(ctx, "out of memory");
    protobuf_c_message_free_unpacked(&s->base, NULL);
    return rc;
}

/* Calls method and prints the ClusterStatus it answers with. */
static int call_and_print(cli_ctx *ctx, const char *method, const ProtobufCMessage *req)
{
    Helpwire__V1__ClusterStatus *s = NULL;
    if (cli_call(ctx, method, req, &helpwire__v1__cluster_status__descriptor, (ProtobufCMessage **)&s) !=
        CLI_EXIT_OK)
        return CLI_EXIT_FAILED;
    return print_status(ctx, s);
}

/* Parses a replica id (1..2^53), or 0 too when zero_ok. */
static int parse_id(cli_ctx *ctx, const char *text, bool zero_ok, uint64_t *id)
{
    long long v;
    if (cli_args_parse_int(text, zero_ok ? 0 : 1, MAX_REPLICA_ID, &v) != 0)
        return cli_usage_error(ctx, "replica ID must be a number from %d to 2^53, not '%s'", zero_ok ? 0 : 1,
                               text);
    *id = (uint64_t)v;
    return CLI_EXIT_OK;
}

/* host:port with a non-empty host and a numeric port (the server checks
 * the rest; this catches a swapped or forgotten flag value early). */
static bool looks_like_address(const char *a)
{
    const char *colon = strrchr(a, ':');
    long long port;
    return colon && colon != a && cli_args_parse_int(colon + 1, 1, 65535, &port) == 0 && !strchr(a, ',');
}

static int run_status(cli_ctx *ctx)
{
    Helpwire__V1__GetClusterStatusRequest req = HELPWIRE__V1__GET_CLUSTER_STATUS_REQUEST__INIT;
    return call_and_print(ctx, "/helpwire.v1.Cluster/GetClusterStatus", &req.base);
}

static int run_add(cli_ctx *ctx)
{
    enum { OPT_RAFT, OPT_GRPC, OPT_ROLE };
    Helpwire__V1__AddReplicaRequest req = HELPWIRE__V1__ADD_REPLICA_REQUEST__INIT;
    int rc = parse_id(ctx, ctx->pos[0], false, &req.id);
    if (rc != CLI_EXIT_OK)
        return rc;
    static const char *const names[] = {"--raft-address", "--grpc-address"};
    for (int i = OPT_RAFT; i <= OPT_GRPC; i++) {
        const char *a = ctx->opt[i];
        if (!a)
            return cli_usage_error(ctx, "%s HOST:PORT is required", names[i]);
        if (!looks_like_address(a))
            return cli_usage_error(ctx, "%s must be one host:port, not '%s'", names[i], a);
    }
    req.raft_address = (char *)ctx->opt[OPT_RAFT];
    req.grpc_address = (char *)ctx->opt[OPT_GRPC];
    req.role = HELPWIRE__V1__REPLICA_ROLE__REPLICA_ROLE_VOTER;
    if (ctx->opt[OPT_ROLE]) {
        int v;
        if (cli_parse_enum(&helpwire__v1__replica_role__descriptor, ctx->opt[OPT_ROLE], &v) != 0 ||
            (v != HELPWIRE__V1__REPLICA_ROLE__REPLICA_ROLE_VOTER &&
             v != HELPWIRE__V1__REPLICA_ROLE__REPLICA_ROLE_STANDBY))
            return cli_usage_error(ctx, "--role must be voter or standby");
        req.role = (Helpwire__V1__ReplicaRole)v;
    }
    return call_and_print(ctx, "/helpwire.v1.Cluster/AddReplica", &req.base);
}

static int run_remove(cli_ctx *ctx)
{
    Helpwire__V1__RemoveReplicaRequest req = HELPWIRE__V1__REMOVE_REPLICA_REQUEST__INIT;
    int rc = parse_id(ctx, ctx->pos[0], false, &req.id);
    if (rc != CLI_EXIT_OK)
        return rc;
    return call_and_print(ctx, "/helpwire.v1.Cluster/RemoveReplica", &req.base);
}

static int run_transfer(cli_ctx *ctx)
{
    Helpwire__V1__TransferLeadershipRequest req = HELPWIRE__V1__TRANSFER_LEADERSHIP_REQUEST__INIT;
    if (ctx->npos == 1) {
        int rc = parse_id(ctx, ctx->pos[0], true, &req.id);
        if (rc != CLI_EXIT_OK)
            return rc;
    }
    return call_and_print(ctx, "/helpwire.v1.Cluster/TransferLeadership", &req.base);
}

static const cli_opt add_opts[] = {
    {"raft-address", "HOST:PORT", "Where the other replicas reach its raft (required)."},
    {"grpc-address", "HOST:PORT", "Where clients reach its gRPC API (required)."},
    {"role", "ROLE", "voter (default: votes once caught up) or standby (receives the log, does not vote)."},
};

const cli_command cli_cluster_commands[] = {
    {"cluster", "status", "", "Show the replicas and this replica's raft state",
     "Shows the view of the replica --server reached: its state and term, the leader, the commit and applied "
     "indexes, whether it takes writes (and why not), and the members with their roles and, on the leader, "
     "their match indexes. On a single node: one member, replicated no.",
     NULL, 0, 0, 0, run_status},
    {"cluster", "add", "ID --raft-address HOST:PORT --grpc-address HOST:PORT [--role voter|standby]",
     "Add a replica",
     "Adds replica ID to the membership (a write, forwarded to the leader); a voter joins the "
     "majority once it has caught up. Prints the status afterwards.",
     add_opts, sizeof add_opts / sizeof add_opts[0], 1, 1, run_add},
    {"cluster", "remove", "ID", "Remove a replica",
     "Removes replica ID from the membership (a write, forwarded to the leader). The last voter cannot be "
     "removed. Prints the status afterwards.",
     NULL, 0, 1, 1, run_remove},
    {"cluster", "transfer", "[ID]", "Hand the leadership to another replica",
     "Asks the leader to hand its leadership to voter ID, or without ID (or 0) to the most up-to-date one, "
     "e.g. before restarting the leader. Prints the status afterwards.",
     NULL, 0, 0, 1, run_transfer},
};
const size_t cli_cluster_ncommands = sizeof cli_cluster_commands / sizeof cli_cluster_commands[0];
