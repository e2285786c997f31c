/*
 * repl: replicas of one helpwired store on canonical raft (libraft, its
 * libuv I/O backend and TCP transport). The only module that knows raft;
 * the rest of the server sees the store's replicator (store.h) and this
 * header.
 *
 * One thread ("hw-raft") runs a libuv loop with the raft instance. The
 * store's writer proposes each write group's change set as one raft
 * command (hw_store_replicator); committed commands of other replicas, or
 * of this one's earlier leadership, go to the writer with hw_store_apply.
 * On becoming leader the replica appends a barrier and accepts writes only
 * once every earlier entry is applied, so a group is always computed on a
 * store holding the whole log.
 *
 * Snapshots: the store itself is the state; a raft snapshot holds only the
 * applied index it stands for (the store is synced first). A replica whose
 * store is behind the snapshot it is sent (a new replica, or one away for
 * longer than the log kept) fetches a copy of a peer's store over the
 * Cluster.FetchSnapshot stream (hw_repl_fetch_copy, fetch.h), which the
 * server installs by restarting itself in place (server/cluster_wiring.c).
 *
 * Durability: the raft log (fsynced by libraft on every replica) holds
 * each committed entry; the store commits skip LMDB's meta-page fsync
 * (store.h) and are synced before a snapshot lets raft drop entries.
 *
 * libraft's TCP transport is wrapped to turn Nagle's algorithm off (its
 * small messages otherwise wait for delayed ACKs: 40 ms stalls), and the
 * raft thread blocks SIGPIPE (a write to a peer that went away fails with
 * EPIPE instead).
 *
 * Members: each replica has an id, a raft address and a gRPC address;
 * the gRPC addresses of the members live in the store (replicated), the
 * bootstrap members' also in the options.
 *
 * Threads: every function is thread-safe unless it says otherwise; the
 * ones that change the cluster block the caller (never the raft thread).
 */
#ifndef HW_REPL_H
#define HW_REPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/base/log.h"
#include "server/store/store.h"

typedef struct hw_repl hw_repl;

typedef struct hw_repl_member {
    uint64_t id;
    char raft_address[128]; /* host:port */
    char grpc_address[128]; /* host:port */
    int role;               /* HW_REPL_VOTER, HW_REPL_STANDBY, HW_REPL_SPARE */
    uint64_t match_index;   /* leader's view; 0 elsewhere */
} hw_repl_member;

enum { HW_REPL_VOTER = 1, HW_REPL_STANDBY = 2, HW_REPL_SPARE = 3 };
enum { HW_REPL_FOLLOWER = 1, HW_REPL_CANDIDATE = 2, HW_REPL_LEADER = 3, HW_REPL_UNAVAILABLE = 4 };

#define HW_REPL_MAX_MEMBERS 16

typedef struct hw_repl_options {
    uint64_t id;              /* this replica, >= 1 */
    const char *raft_address; /* host:port it listens on for raft */
    const char *grpc_address; /* host:port clients reach it on */
    const char *dir;          /* raft's log and snapshots (created) */
    /* A new cluster: the initial voters (this one among them), the same
     * list on every replica; bootstrapped once, ignored when dir already
     * holds a log. n_bootstrap 0: join an existing cluster (someone calls
     * AddReplica with this replica's id and addresses). */
    const hw_repl_member *bootstrap;
    size_t n_bootstrap;
    hw_store *store; /* borrowed; its replicator is set by hw_repl_open */
    const hw_log *log;
    /* Milliseconds; 0 = libraft's defaults (election 1000, heartbeat 100);
     * helpwired passes its own (--cluster-election-ms, 500 and 50). */
    unsigned election_timeout_ms, heartbeat_timeout_ms;
    /* Entries between snapshots (0 = 8192) and entries kept after one
     * (0 = 2048). */
    unsigned snapshot_threshold, snapshot_trailing;
} hw_repl_options;

/* Starts raft over the store (before any write to it). HW_OK; HW_EINVALID;
 * HW_EPRECONDITION when the store is behind this replica's own latest
 * raft snapshot (its data was replaced or lost: fetch a copy first, with
 * err saying so); HW_EIO (with err). */
int hw_repl_open(hw_repl **out, const hw_repl_options *opts, char *err, size_t errlen);

/* Stops raft: pending and later proposals fail with HW_ENOTLEADER, no
 * entry reaches the store any more. The store may still call in (its
 * writer's prepare) until it is closed: free r with hw_repl_free only after
 * hw_store_close. NULL is a no-op. */
void hw_repl_close(hw_repl *r);
void hw_repl_free(hw_repl *r);

typedef struct hw_repl_status {
    uint64_t self_id;
    int state; /* HW_REPL_* */
    uint64_t term;
    uint64_t leader_id; /* 0: none known */
    char leader_grpc_address[128];
    uint64_t commit_index, applied_index, last_log_index, snapshot_index;
    bool writable;    /* leader with a live majority, or a leader is known */
    char message[160]; /* why not, when not */
    hw_repl_member members[HW_REPL_MAX_MEMBERS];
    size_t n_members;
} hw_repl_status;

void hw_repl_get_status(hw_repl *r, hw_repl_status *st);

/* Copies the leader's gRPC address into buf when another replica leads;
 * false when this one leads or no leader is known. Cheap (a mutex). */
bool hw_repl_leader_target(hw_repl *r, char *buf, size_t len);

/* Membership changes, on the leader (HW_ENOTLEADER elsewhere), blocking
 * until the change is committed (or timeout_ms): AddReplica writes the
 * member's addresses in the store and adds it as a standby, then promotes
 * it to voter once it has caught up (when role is VOTER).
 * HW_OK; HW_EEXISTS; HW_ENOTFOUND; HW_EPRECONDITION (last voter, a change
 * already under way); HW_ENOTLEADER; HW_EIO (with why). */
int hw_repl_add(hw_repl *r, const hw_repl_member *m, int timeout_ms, char *why, size_t whylen);
int hw_repl_remove(hw_repl *r, uint64_t id, int timeout_ms, char *why, size_t whylen);
int hw_repl_transfer(hw_repl *r, uint64_t id, int timeout_ms, char *why, size_t whylen);

typedef struct hw_repl_stats {
    uint64_t proposed;         /* entries this replica proposed and saw committed */
    uint64_t proposed_bytes;   /* their bytes in the log (padded to 8) */
    uint64_t proposals_failed; /* proposals that lost the leadership or failed */
    uint64_t applied_from_log; /* entries of others applied here */
    uint64_t applied_bytes;
    uint64_t leaderships; /* terms this replica led (barrier appended) */
} hw_repl_stats;

void hw_repl_get_stats(hw_repl *r, hw_repl_stats *st);

/* Non-zero when raft sent a snapshot this store is behind (a long-absent
 * replica): the index of that snapshot. The server then fetches a copy of
 * a peer's store and restarts on it (server/repl/fetch.h). */
uint64_t hw_repl_needs_copy(hw_repl *r);

/* Remembers a member's gRPC address (one added by another replica, read
 * from the store), so that calls can be forwarded to it when it leads. */
void hw_repl_note_member(hw_repl *r, uint64_t id, const char *grpc_address);

/* Notes every member's gRPC address recorded in the store (hw_repl_add
 * writes them, replicated) with hw_repl_note_member; rd is the calling
 * thread's reader. HW_OK or the store's code. */
int hw_repl_load_members(hw_repl *r, hw_store_reader *rd);

/* On a leader, once per term: writes the gRPC addresses of every member it
 * knows (the bootstrap list, added members, itself) into the store, so that
 * a replica started without the list (a new one, or one restarted on a
 * copy) can forward to whichever leads. Blocks for one write; HW_OK when
 * there was nothing to do. */
int hw_repl_record_members(hw_repl *r);

#endif
