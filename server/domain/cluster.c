/*
 * cluster: the Cluster service's handlers (see cluster.h): the status from
 * server/repl, the membership changes on a thread of their own, and the
 * snapshot stream read from a temporary compacted copy of the store.
 */
#include "server/domain/cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/domain/rpc.h"
#include "server/repl/repl.h"

enum {
    CHANGE_TIMEOUT_MS = 10000,
    /* Chunks queued or in flight on a snapshot stream: a slow reader holds
     * at most this many MiB of the copy in memory. */
    FETCH_WINDOW = 2,
};

#define NOT_REPLICATED "not replicated: start helpwired with the --cluster-... flags to run replicas"

/* ---- status ---- */

static Helpwire__V1__ReplicaRole role_to_proto(int role)
{
    switch (role) {
    case HW_REPL_VOTER:
        return HELPWIRE__V1__REPLICA_ROLE__REPLICA_ROLE_VOTER;
    case HW_REPL_STANDBY:
        return HELPWIRE__V1__REPLICA_ROLE__REPLICA_ROLE_STANDBY;
    case HW_REPL_SPARE:
        return HELPWIRE__V1__REPLICA_ROLE__REPLICA_ROLE_SPARE;
    default:
        return HELPWIRE__V1__REPLICA_ROLE__REPLICA_ROLE_UNSPECIFIED;
    }
}

static Helpwire__V1__RaftState state_to_proto(int state)
{
    switch (state) {
    case HW_REPL_FOLLOWER:
        return HELPWIRE__V1__RAFT_STATE__RAFT_STATE_FOLLOWER;
    case HW_REPL_CANDIDATE:
        return HELPWIRE__V1__RAFT_STATE__RAFT_STATE_CANDIDATE;
    case HW_REPL_LEADER:
        return HELPWIRE__V1__RAFT_STATE__RAFT_STATE_LEADER;
    case HW_REPL_UNAVAILABLE:
        return HELPWIRE__V1__RAFT_STATE__RAFT_STATE_UNAVAILABLE;
    default:
        return HELPWIRE__V1__RAFT_STATE__RAFT_STATE_UNSPECIFIED;
    }
}

/* Fills *out in the call's arena. Returns HW_OK or HW_ENOMEM. */
static int status_fill(hw_call *call, hw_app *app, Helpwire__V1__ClusterStatus *out)
{
    hw_arena *a = hw_call_arena(call);
    helpwire__v1__cluster_status__init(out);
    if (!app->repl) {
        /* A single node: itself, writable, nothing replicated. */
        out->writable = true;
        out->applied_index = hw_store_applied_index(app->store);
        Helpwire__V1__Replica *m = hw_arena_alloc(a, sizeof *m);
        Helpwire__V1__Replica **list = hw_arena_alloc(a, sizeof *list);
        if (!m || !list)
            return HW_ENOMEM;
        helpwire__v1__replica__init(m);
        m->grpc_address = (char *)(app->grpc_address ? app->grpc_address : "");
        list[0] = m;
        out->members = list;
        out->n_members = 1;
        return HW_OK;
    }
    hw_repl_status *st = hw_arena_alloc(a, sizeof *st);
    if (!st)
        return HW_ENOMEM;
    memset(st, 0, sizeof *st);
    hw_repl_get_status(app->repl, st);
    out->replicated = true;
    out->self_id = st->self_id;
    out->state = state_to_proto(st->state);
    out->term = st->term;
    out->leader_id = st->leader_id;
    out->leader_grpc_address = st->leader_grpc_address;
    out->commit_index = st->commit_index;
    out->applied_index = st->applied_index;
    out->last_log_index = st->last_log_index;
    out->snapshot_index = st->snapshot_index;
    out->writable = st->writable;
    out->message = st->message;
    size_t n = st->n_members < HW_REPL_MAX_MEMBERS ? st->n_members : HW_REPL_MAX_MEMBERS;
    if (n) {
        Helpwire__V1__Replica *ms = hw_arena_calloc(a, n, sizeof *ms);
        Helpwire__V1__Replica **list = hw_arena_calloc(a, n, sizeof *list);
        if (!ms || !list)
            return HW_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            helpwire__v1__replica__init(&ms[i]);
            ms[i].id = st->members[i].id;
            ms[i].raft_address = st->members[i].raft_address;
            ms[i].grpc_address = st->members[i].grpc_address;
            ms[i].role = role_to_proto(st->members[i].role);
            ms[i].match_index = st->members[i].match_index;
            list[i] = &ms[i];
        }
        out->members = list;
        out->n_members = n;
    }
    return HW_OK;
}

static void reply_status(hw_call *call, hw_app *app)
{
    Helpwire__V1__ClusterStatus r;
    int rc = status_fill(call, app, &r);
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, NULL);
        return;
    }
    hw_call_reply(call, &r.base);
}

void hw_cluster_status(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    (void)request;
    reply_status(call, appv);
}

/* ---- membership changes ---- */

/* host:port with a non-empty host and a port 1..65535, 1..127 bytes. */
static bool check_address(hw_call *call, const char *field, const char *s)
{
    if (!hw_rpc_check_text(call, field, s, 1, HW_CLUSTER_ADDRESS_MAX))
        return false;
    const char *colon = strrchr(s, ':');
    bool ok = colon && colon > s && colon[1];
    long port = 0;
    for (const char *p = colon ? colon + 1 : ""; ok && *p; p++) {
        if (*p < '0' || *p > '9' || port > 65535)
            ok = false;
        else
            port = port * 10 + (*p - '0');
    }
    if (!ok || port < 1 || port > 65535) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "%s: want host:port (port 1..65535), got \"%s\"",
                     field, s);
        return false;
    }
    return true;
}

enum change_kind { CHANGE_ADD, CHANGE_REMOVE, CHANGE_TRANSFER };

/* In the call's arena: lives until the call is answered. */
typedef struct change_ctx {
    hw_call *call;
    hw_app *app;
    enum change_kind kind;
    hw_repl_member member; /* CHANGE_ADD */
    uint64_t id;           /* CHANGE_REMOVE, CHANGE_TRANSFER */
} change_ctx;

static void *change_main(void *arg)
{
    change_ctx *c = arg;
    pthread_setname_np(pthread_self(), "hw-cluster");
    char why[256] = "";
    int rc;
    switch (c->kind) {
    case CHANGE_ADD:
        rc = hw_repl_add(c->app->repl, &c->member, CHANGE_TIMEOUT_MS, why, sizeof why);
        break;
    case CHANGE_REMOVE:
        rc = hw_repl_remove(c->app->repl, c->id, CHANGE_TIMEOUT_MS, why, sizeof why);
        break;
    default:
        rc = hw_repl_transfer(c->app->repl, c->id, CHANGE_TIMEOUT_MS, why, sizeof why);
        break;
    }
    if (rc != HW_OK) {
        if (why[0])
            hw_rpc_fail(c->call, rc, "%s", why);
        else
            hw_rpc_fail(c->call, rc, NULL);
    } else {
        reply_status(c->call, c->app);
    }
    return NULL;
}

/* Runs the change on a detached thread that answers the call. */
static void change_start(change_ctx *c)
{
    pthread_t t;
    pthread_attr_t attr;
    int e = pthread_attr_init(&attr);
    if (e == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        e = pthread_create(&t, &attr, change_main, c);
        pthread_attr_destroy(&attr);
    }
    if (e != 0) {
        hw_rpc_fail(c->call, HW_ENOMEM, "cannot start the change: %s", strerror(e));
        return;
    }
}

/* The common part of the three changes once the request is valid. */
static change_ctx *change_new(hw_call *call, hw_app *app, enum change_kind kind)
{
    if (!app->repl) {
        hw_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION, NOT_REPLICATED);
        return NULL;
    }
    change_ctx *c = hw_arena_alloc(hw_call_arena(call), sizeof *c);
    if (!c) {
        hw_rpc_fail(call, HW_ENOMEM, NULL);
        return NULL;
    }
    memset(c, 0, sizeof *c);
    c->call = call;
    c->app = app;
    c->kind = kind;
    return c;
}

void hw_cluster_add_replica(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    const Helpwire__V1__AddReplicaRequest *req = (const void *)request;
    if (req->id < 1) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "id: required (1 or more)");
        return;
    }
    if (!check_address(call, "raft_address", req->raft_address) ||
        !check_address(call, "grpc_address", req->grpc_address))
        return;
    int role;
    switch (req->role) {
    case HELPWIRE__V1__REPLICA_ROLE__REPLICA_ROLE_UNSPECIFIED:
    case HELPWIRE__V1__REPLICA_ROLE__REPLICA_ROLE_VOTER:
        role = HW_REPL_VOTER;
        break;
    case HELPWIRE__V1__REPLICA_ROLE__REPLICA_ROLE_STANDBY:
        role = HW_REPL_STANDBY;
        break;
    default:
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "role: VOTER or STANDBY (got %d)", (int)req->role);
        return;
    }
    change_ctx *c = change_new(call, appv, CHANGE_ADD);
    if (!c)
        return;
    c->member.id = req->id;
    c->member.role = role;
    snprintf(c->member.raft_address, sizeof c->member.raft_address, "%s", req->raft_address);
    snprintf(c->member.grpc_address, sizeof c->member.grpc_address, "%s", req->grpc_address);
    change_start(c);
}

void hw_cluster_remove_replica(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    const Helpwire__V1__RemoveReplicaRequest *req = (const void *)request;
    if (req->id < 1) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "id: required (1 or more)");
        return;
    }
    change_ctx *c = change_new(call, appv, CHANGE_REMOVE);
    if (!c)
        return;
    c->id = req->id;
    change_start(c);
}

/* id 0 is valid here: the most up-to-date voter (cluster.proto). */
void hw_cluster_transfer_leadership(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    const Helpwire__V1__TransferLeadershipRequest *req = (const void *)request;
    change_ctx *c = change_new(call, appv, CHANGE_TRANSFER);
    if (!c)
        return;
    c->id = req->id;
    change_start(c);
}

/* ---- FetchSnapshot ---- */

/* In the call's arena, so that it lives as long as the call. */
typedef struct fetch_ctx {
    hw_call *call;
    hw_app *app;
    char dir[PATH_MAX];       /* the temporary directory of the copy */
    char file[PATH_MAX + 16]; /* dir/data.mdb */
    bool removed;
} fetch_ctx;

/* Removes the temporary copy (once). */
static void fetch_remove(fetch_ctx *f)
{
    if (f->removed)
        return;
    f->removed = true;
    if (unlink(f->file) != 0 && errno != ENOENT)
        hw_log_event(f->app->log, HW_LOG_WARN, "snapshot_copy_not_removed", "errno=%d", errno);
    if (rmdir(f->dir) != 0)
        hw_log_event(f->app->log, HW_LOG_WARN, "snapshot_copy_not_removed", "errno=%d", errno);
}

/* Writes the copy and streams it; returns with the stream ended (or
 * ending). */
static void fetch_send(fetch_ctx *f)
{
    hw_call *call = f->call;
    uint8_t *buf = NULL;
    int fd = -1;
    char why[256] = "";
    /* The copy holds at least everything applied before it starts. */
    uint64_t applied = hw_store_applied_index(f->app->store);
    uint64_t size = 0;
    int rc = hw_store_backup(f->app->store, f->dir, &size, why, sizeof why);
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, "cannot copy the store: %s", why);
        goto out;
    }
    struct stat stt;
    if ((fd = open(f->file, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &stt) != 0) {
        hw_rpc_fail(call, HW_EIO, "cannot read the copy: %s", strerror(errno));
        goto out;
    }
    if (!(buf = malloc(HW_CLUSTER_CHUNK_BYTES))) {
        hw_rpc_fail(call, HW_ENOMEM, NULL);
        goto out;
    }
    uint64_t total = (uint64_t)stt.st_size, offset = 0;
    do {
        size_t want = total - offset < HW_CLUSTER_CHUNK_BYTES ? (size_t)(total - offset) : HW_CLUSTER_CHUNK_BYTES;
        size_t got = 0;
        while (got < want) {
            ssize_t n = pread(fd, buf + got, want - got, (off_t)(offset + got));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                hw_rpc_fail(call, HW_EIO, "cannot read the copy at %llu: %s",
                            (unsigned long long)(offset + got), n < 0 ? strerror(errno) : "it shrank");
                goto out;
            }
            got += (size_t)n;
        }
        Helpwire__V1__SnapshotChunk ch = HELPWIRE__V1__SNAPSHOT_CHUNK__INIT;
        if (offset == 0) {
            ch.applied_index = applied;
            ch.total_bytes = total;
        }
        ch.offset = offset;
        ch.data.data = buf;
        ch.data.len = want;
        /* Keep at most FETCH_WINDOW chunks in memory; -1: the stream ended
         * (cancelled, deadline, shutdown). */
        if (hw_call_stream_wait(call, FETCH_WINDOW - 1) != 0 || hw_call_stream_send(call, &ch.base) != 0)
            goto out;
        offset += want;
    } while (offset < total);
    /* Every chunk is queued (packed in memory): the copy goes before the
     * client hears the end of the stream. */
    close(fd);
    fd = -1;
    fetch_remove(f);
    hw_call_fail(call, GRPC_STATUS_OK, NULL); /* after the queued chunks */
out:
    free(buf);
    if (fd >= 0)
        close(fd);
}

static void *fetch_main(void *arg)
{
    fetch_ctx *f = arg;
    hw_call *call = f->call;
    pthread_setname_np(pthread_self(), "hw-fetch");
    fetch_send(f);
    fetch_remove(f);
    hw_call_unref(call); /* f lives in the call's arena: not touched after this */
    return NULL;
}

void hw_cluster_fetch_snapshot(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    (void)request;
    hw_app *app = appv;
    fetch_ctx *f = hw_arena_alloc(hw_call_arena(call), sizeof *f);
    if (!f) {
        hw_rpc_fail(call, HW_ENOMEM, NULL);
        return;
    }
    f->call = call;
    f->app = app;
    f->removed = false;
    const char *data_dir = hw_store_data_dir(app->store);
    if ((size_t)snprintf(f->dir, sizeof f->dir, "%s/outgoing-XXXXXX", data_dir) >= sizeof f->dir - 16) {
        hw_rpc_fail(call, HW_EIO, "data directory path too long");
        return;
    }
    if (!mkdtemp(f->dir)) {
        hw_rpc_fail(call, HW_EIO, "cannot make a directory for the copy: %s", strerror(errno));
        return;
    }
    snprintf(f->file, sizeof f->file, "%s/data.mdb", f->dir);
    int e = hw_rpc_start_thread(call, fetch_main, f);
    if (e != 0) {
        rmdir(f->dir);
        hw_rpc_fail(call, HW_ENOMEM, "cannot start the copy: %s", strerror(e));
        return;
    }
}
