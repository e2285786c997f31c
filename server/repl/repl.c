/*
 * repl: one store replicated on canonical raft (see repl.h for the design).
 *
 * Threads and hand-offs:
 *   - "hw-raft" runs the libuv loop: raft, its timers, its TCP transport,
 *     and every call into libraft (libraft is not thread-safe).
 *   - The store's writer proposes through one slot (prop): it fills the
 *     slot under mu, wakes the loop (uv_async_send) and waits on cond; the
 *     loop calls raft_apply and, once raft fires the request's callback
 *     (committed and applied, or failed), completes the slot.
 *   - Admin changes (add, remove, transfer) use a second slot the same
 *     way, one at a time.
 *   - The loop copies what other threads read (state, term, leader,
 *     indexes, members) into `view` under mu after every event and on a
 *     10 ms timer; readers never touch struct raft.
 *
 * Entries: the fsm's apply gets each committed command in order. The
 * writer's own pending entry (same index as the slot's) is already in its
 * open transaction: nothing to do but let raft call the request back.
 * Every other command (other replicas', or this one's from a leadership it
 * lost before the commit) goes to the writer with hw_store_apply.
 *
 * A new leader proposes nothing until a barrier of its own term has been
 * applied: then every earlier command has been handed to the writer, and
 * the writer's prepare drains them before it runs a group.
 */
#include "server/repl/repl.h"

#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "server/base/errors.h"

#define SNAP_MAGIC 0x48575331u /* "HWS1" */

enum { SLOT_FREE, SLOT_ASKED, SLOT_SUBMITTED, SLOT_DONE };
enum { ADMIN_ADD, ADMIN_REMOVE, ADMIN_TRANSFER };

typedef struct repl_view {
    int state;
    uint64_t term, leader_id;
    uint64_t commit_index, applied_index, last_log_index, snapshot_index;
    uint64_t ready_term; /* term whose barrier has been applied */
    uint64_t raft_applied, last_cmd; /* raft's last applied entry, and the last command among them */
    hw_repl_member members[HW_REPL_MAX_MEMBERS];
    size_t n_members;
} repl_view;

struct hw_repl {
    hw_repl_options opts;
    char *raft_address, *grpc_address, *dir;
    hw_repl_member boot[HW_REPL_MAX_MEMBERS];
    size_t n_boot;
    hw_store *store;
    const hw_log *log;

    pthread_t thread;
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t tick;
    struct raft raft;
    struct raft_io io;
    struct raft_uv_transport transport;
    /* libraft's TCP transport, wrapped to set TCP_NODELAY (nodelay_*). */
    int (*tcp_listen)(struct raft_uv_transport *, raft_uv_accept_cb);
    int (*tcp_connect)(struct raft_uv_transport *, struct raft_uv_connect *, raft_id, const char *,
                       raft_uv_connect_cb);
    raft_uv_accept_cb raft_accept;
    raft_uv_connect_cb raft_connected;
    struct raft_fsm fsm;
    struct raft_barrier barrier;
    bool barrier_pending;
    uint64_t last_cmd_index; /* last command the fsm saw (loop thread) */
    int start_rc;            /* raft_start's outcome, for hw_repl_open */
    bool started, stop;

    pthread_mutex_t mu;
    pthread_cond_t cond;
    repl_view view;

    /* The writer's proposal (under mu). */
    struct {
        int phase;
        uint64_t term;
        const void *buf;
        size_t len;
        uint64_t index;
        int result;
        struct raft_apply req;
    } prop;

    /* One admin change at a time (under mu). */
    struct {
        int phase;
        int kind;
        hw_repl_member m;
        int result;
        char why[160];
        struct raft_change change;
        struct raft_transfer transfer;
        bool promote; /* add: assign VOTER once added */
    } admin;
    pthread_mutex_t admin_mu; /* callers of hw_repl_add/remove/transfer */
    uint64_t needs_copy; /* under mu: snapshot index the store lacks */
    hw_repl_member known[HW_REPL_MAX_MEMBERS]; /* under mu: added members */
    uint64_t members_recorded_term; /* under mu: the leader wrote the members' addresses */
    /* Statistics (hw_repl_get_stats). */
    atomic_uint_least64_t proposed, proposed_bytes, proposals_failed, applied_from_log, applied_bytes,
        elections_won, snapshots_sent_behind;
    size_t n_known;
};

static void logf_(hw_repl *r, hw_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void logf_(hw_repl *r, hw_log_level lvl, const char *fmt, ...)
{
    if (!r->log)
        return;
    char msg[512], q[560];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    hw_log_event(r->log, lvl, "replication", "msg=%s", hw_log_quote(msg, q, sizeof q));
}

/* ---- the state machine --------------------------------------------------- */

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    hw_repl *r = fsm->data;
    uint64_t index = r->raft.last_applied + 1;
    *result = NULL;
    r->last_cmd_index = index;
    pthread_mutex_lock(&r->mu);
    bool own = r->prop.phase == SLOT_SUBMITTED && r->prop.index == index;
    pthread_mutex_unlock(&r->mu);
    if (own)
        return 0; /* in the writer's open transaction */
    int rc = hw_store_apply(r->store, index, buf->base, buf->len);
    if (rc == HW_OK) {
        atomic_fetch_add_explicit(&r->applied_from_log, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&r->applied_bytes, buf->len, memory_order_relaxed);
    }
    if (rc == HW_ECLOSED)
        return 0; /* stopping: the next start applies it again */
    if (rc != HW_OK) {
        const unsigned char *b = buf->base;
        logf_(r, HW_LOG_ERROR, "entry %llu (%zu bytes: %02x %02x %02x %02x) cannot be applied: %s",
              (unsigned long long)index, buf->len, buf->len > 0 ? b[0] : 0, buf->len > 1 ? b[1] : 0,
              buf->len > 2 ? b[2] : 0, buf->len > 3 ? b[3] : 0, hw_strerror(rc));
        return rc == HW_ENOMEM ? RAFT_NOMEM : RAFT_MALFORMED;
    }
    return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    hw_repl *r = fsm->data;
    /* The store is the state: it must hold every command raft counts as
     * applied, else the log could be cut before what the store lacks. */
    /* The writer is at most a group behind (the leader's own entry commits
     * right after raft calls it back; a follower's jobs are queued): wait
     * for it rather than skip, or a busy replica would never snapshot. */
    for (int i = 0; i < 2000 && hw_store_applied_index(r->store) < r->last_cmd_index; i++)
        usleep(1000);
    if (hw_store_applied_index(r->store) < r->last_cmd_index)
        return RAFT_BUSY;
    /* Commits skip the meta page's fsync (store.h): make the store durable
     * before raft may drop the entries it holds. */
    if (hw_store_sync(r->store) != HW_OK)
        return RAFT_IOERR;
    struct raft_buffer *b = raft_malloc(sizeof *b);
    unsigned char *p = raft_malloc(16);
    if (!b || !p) {
        raft_free(b);
        raft_free(p);
        return RAFT_NOMEM;
    }
    uint64_t idx = r->raft.last_applied;
    uint32_t magic = SNAP_MAGIC;
    memcpy(p, &magic, 4);
    memset(p + 4, 0, 4);
    memcpy(p + 8, &idx, 8);
    b->base = p;
    b->len = 16;
    *bufs = b;
    *n_bufs = 1;
    return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    hw_repl *r = fsm->data;
    uint32_t magic = 0;
    uint64_t idx = 0;
    if (buf->len != 16)
        return RAFT_MALFORMED;
    memcpy(&magic, buf->base, 4);
    memcpy(&idx, (const unsigned char *)buf->base + 8, 8);
    if (magic != SNAP_MAGIC)
        return RAFT_MALFORMED;
    uint64_t have = hw_store_applied_index(r->store);
    if (have < idx) {
        /* This store lacks entries the log no longer has: a copy of a
         * peer's store is needed (repl.h). */
        pthread_mutex_lock(&r->mu);
        r->needs_copy = idx;
        pthread_mutex_unlock(&r->mu);
        logf_(r, HW_LOG_WARN, "the store is at entry %llu, the snapshot at %llu: a copy of a peer's store is needed",
              (unsigned long long)have, (unsigned long long)idx);
        return RAFT_IOERR;
    }
    r->last_cmd_index = idx;
    raft_free(buf->base);
    return 0;
}

/* ---- the loop thread ----------------------------------------------------- */

static void refresh_view(hw_repl *r)
{
    repl_view v = {0};
    struct raft *rf = &r->raft;
    int st = raft_state(rf);
    v.state = st == RAFT_LEADER      ? HW_REPL_LEADER
              : st == RAFT_CANDIDATE ? HW_REPL_CANDIDATE
              : st == RAFT_FOLLOWER  ? HW_REPL_FOLLOWER
                                     : HW_REPL_UNAVAILABLE;
    v.term = rf->current_term;
    raft_id lid = 0;
    const char *laddr = NULL;
    raft_leader(rf, &lid, &laddr);
    v.leader_id = lid;
    v.commit_index = rf->commit_index;
    v.applied_index = hw_store_applied_index(r->store);
    v.raft_applied = rf->last_applied;
    v.last_cmd = r->last_cmd_index;
    v.last_log_index = raft_last_index(rf);
    v.snapshot_index = rf->log.snapshot.last_index;
    for (unsigned i = 0; i < rf->configuration.n && v.n_members < HW_REPL_MAX_MEMBERS; i++) {
        const struct raft_server *srv = &rf->configuration.servers[i];
        hw_repl_member *m = &v.members[v.n_members++];
        m->id = srv->id;
        snprintf(m->raft_address, sizeof m->raft_address, "%s", srv->address ? srv->address : "");
        m->role = srv->role == RAFT_VOTER ? HW_REPL_VOTER : srv->role == RAFT_STANDBY ? HW_REPL_STANDBY : HW_REPL_SPARE;
        if (st == RAFT_LEADER && rf->leader_state.progress)
            m->match_index = rf->leader_state.progress[i].match_index;
    }
    pthread_mutex_lock(&r->mu);
    v.ready_term = r->view.ready_term;
    /* gRPC addresses: kept from before (set by the bootstrap list or by
     * hw_repl_note_member); matched by id. */
    for (size_t i = 0; i < v.n_members; i++) {
        for (size_t j = 0; j < r->view.n_members; j++)
            if (r->view.members[j].id == v.members[i].id)
                memcpy(v.members[i].grpc_address, r->view.members[j].grpc_address, sizeof v.members[i].grpc_address);
        if (!v.members[i].grpc_address[0])
            for (size_t j = 0; j < r->n_boot; j++)
                if (r->boot[j].id == v.members[i].id)
                    memcpy(v.members[i].grpc_address, r->boot[j].grpc_address, sizeof v.members[i].grpc_address);
        if (!v.members[i].grpc_address[0])
            for (size_t j = 0; j < r->n_known; j++)
                if (r->known[j].id == v.members[i].id)
                    memcpy(v.members[i].grpc_address, r->known[j].grpc_address, sizeof v.members[i].grpc_address);
    }
    bool changed = v.state != r->view.state || v.leader_id != r->view.leader_id;
    r->view = v;
    pthread_mutex_unlock(&r->mu);
    if (changed)
        logf_(r, HW_LOG_INFO, "state %s, term %llu, leader %llu",
              v.state == HW_REPL_LEADER      ? "leader"
              : v.state == HW_REPL_CANDIDATE ? "candidate"
              : v.state == HW_REPL_FOLLOWER  ? "follower"
                                             : "unavailable",
              (unsigned long long)v.term, (unsigned long long)v.leader_id);
}

static void barrier_cb(struct raft_barrier *req, int status)
{
    hw_repl *r = req->data;
    r->barrier_pending = false;
    if (status == 0) {
        pthread_mutex_lock(&r->mu);
        r->view.ready_term = r->raft.current_term;
        pthread_mutex_unlock(&r->mu);
    }
}

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    (void)result;
    hw_repl *r = req->data;
    pthread_mutex_lock(&r->mu);
    r->prop.result = status == 0 ? HW_OK : status == RAFT_LEADERSHIPLOST || status == RAFT_NOTLEADER ? HW_ENOTLEADER : HW_EIO;
    r->prop.phase = SLOT_DONE;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->mu);
}

static void run_proposal(hw_repl *r)
{
    pthread_mutex_lock(&r->mu);
    if (r->prop.phase != SLOT_ASKED) {
        pthread_mutex_unlock(&r->mu);
        return;
    }
    int result = HW_OK;
    if (raft_state(&r->raft) != RAFT_LEADER || r->raft.current_term != r->prop.term || r->stop) {
        result = HW_ENOTLEADER;
    } else {
        /* libraft's log reads entries back at 8-byte boundaries: the
         * length must be a multiple of 8 (entry.h allows the zeros). */
        size_t padded = (r->prop.len + 7) & ~(size_t)7;
        struct raft_buffer b = {.base = raft_malloc(padded ? padded : 8), .len = padded};
        if (!b.base) {
            result = HW_ENOMEM;
        } else {
            memcpy(b.base, r->prop.buf, r->prop.len);
            memset((unsigned char *)b.base + r->prop.len, 0, padded - r->prop.len);
            r->prop.req.data = r;
            /* raft_apply may call back synchronously only on failure paths
             * that return an error; the slot is marked submitted first so
             * that fsm_apply recognises the entry. */
            r->prop.index = raft_last_index(&r->raft) + 1;
            r->prop.phase = SLOT_SUBMITTED;
            pthread_mutex_unlock(&r->mu);
            int rc = raft_apply(&r->raft, &r->prop.req, &b, 1, apply_cb);
            pthread_mutex_lock(&r->mu);
            if (rc != 0) {
                raft_free(b.base);
                result = rc == RAFT_NOTLEADER || rc == RAFT_LEADERSHIPLOST ? HW_ENOTLEADER : HW_EIO;
            } else {
                pthread_mutex_unlock(&r->mu);
                return; /* apply_cb completes it */
            }
        }
    }
    r->prop.result = result;
    r->prop.phase = SLOT_DONE;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->mu);
}

static void admin_done(hw_repl *r, int result, const char *why)
{
    pthread_mutex_lock(&r->mu);
    r->admin.result = result;
    snprintf(r->admin.why, sizeof r->admin.why, "%s", why ? why : "");
    r->admin.phase = SLOT_DONE;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->mu);
}

static int raft_to_hw(int rc)
{
    switch (rc) {
    case 0:
        return HW_OK;
    case RAFT_NOTLEADER:
    case RAFT_LEADERSHIPLOST:
        return HW_ENOTLEADER;
    case RAFT_DUPLICATEID:
    case RAFT_DUPLICATEADDRESS:
        return HW_EEXISTS;
    case RAFT_NOTFOUND:
        return HW_ENOTFOUND;
    case RAFT_CANTCHANGE:
    case RAFT_BADROLE:
        return HW_EPRECONDITION;
    case RAFT_NOMEM:
        return HW_ENOMEM;
    default:
        return HW_EIO;
    }
}

static void change_cb(struct raft_change *req, int status)
{
    hw_repl *r = req->data;
    if (status == 0 && r->admin.kind == ADMIN_ADD && r->admin.promote) {
        r->admin.promote = false;
        int rc = raft_assign(&r->raft, &r->admin.change, r->admin.m.id,
                             r->admin.m.role == HW_REPL_STANDBY ? RAFT_STANDBY : RAFT_VOTER, change_cb);
        if (rc == 0)
            return;
        admin_done(r, raft_to_hw(rc), raft_errmsg(&r->raft));
        return;
    }
    refresh_view(r);
    admin_done(r, raft_to_hw(status), status ? raft_strerror(status) : NULL);
}

static void transfer_cb(struct raft_transfer *req)
{
    hw_repl *r = req->data;
    raft_id lid = 0;
    const char *addr = NULL;
    raft_leader(&r->raft, &lid, &addr);
    bool moved = lid != 0 && lid != r->opts.id;
    refresh_view(r); /* callers read the view: it must say who leads now */
    admin_done(r, moved ? HW_OK : HW_EIO, moved ? NULL : "the leadership did not move");
}

static void run_admin(hw_repl *r)
{
    pthread_mutex_lock(&r->mu);
    if (r->admin.phase != SLOT_ASKED) {
        pthread_mutex_unlock(&r->mu);
        return;
    }
    r->admin.phase = SLOT_SUBMITTED;
    int kind = r->admin.kind;
    hw_repl_member m = r->admin.m;
    pthread_mutex_unlock(&r->mu);
    int rc;
    r->admin.change.data = r;
    switch (kind) {
    case ADMIN_ADD:
        r->admin.promote = true;
        rc = raft_add(&r->raft, &r->admin.change, m.id, m.raft_address, change_cb);
        break;
    case ADMIN_REMOVE:
        rc = raft_remove(&r->raft, &r->admin.change, m.id, change_cb);
        break;
    default:
        r->admin.transfer.data = r;
        rc = raft_transfer(&r->raft, &r->admin.transfer, m.id, transfer_cb);
        break;
    }
    if (rc != 0)
        admin_done(r, raft_to_hw(rc), raft_errmsg(&r->raft));
}

static void on_wake(uv_async_t *h)
{
    hw_repl *r = h->data;
    if (r->stop) {
        uv_close((uv_handle_t *)&r->wake, NULL);
        uv_close((uv_handle_t *)&r->tick, NULL);
        raft_close(&r->raft, NULL);
        return;
    }
    run_proposal(r);
    run_admin(r);
}

static void on_tick(uv_timer_t *t)
{
    hw_repl *r = t->data;
    if (raft_state(&r->raft) == RAFT_LEADER && !r->barrier_pending) {
        pthread_mutex_lock(&r->mu);
        bool need = r->view.ready_term != r->raft.current_term;
        pthread_mutex_unlock(&r->mu);
        if (need) {
            atomic_fetch_add_explicit(&r->elections_won, 1, memory_order_relaxed);
            r->barrier.data = r;
            if (raft_barrier(&r->raft, &r->barrier, barrier_cb) == 0)
                r->barrier_pending = true;
        }
    }
    refresh_view(r);
    /* A proposal that arrived while raft was busy is picked up here too. */
    run_proposal(r);
    run_admin(r);
}

static void *loop_main(void *arg)
{
    hw_repl *r = arg;
    /* A peer that went away makes the transport's write fail with EPIPE,
     * not kill the process (SIGPIPE goes to the thread that wrote). */
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* ---- TCP_NODELAY on the raft connections ---------------------------------
 * libraft 0.15's TCP transport leaves Nagle's algorithm on. A leader's
 * small messages (heartbeats, short appends) then wait for the peer's
 * delayed ACK: 40 ms stalls in the commit path, measured as the p99 of a
 * single client's writes. The transport is an interface: ours forwards to
 * libraft's and turns Nagle off on every connection it hands to raft. */

static hw_repl *of_transport(struct raft_uv_transport *t)
{
    return (hw_repl *)((char *)t - offsetof(hw_repl, transport));
}

static void nodelay_accept(struct raft_uv_transport *t, raft_id id, const char *address, struct uv_stream_s *stream)
{
    hw_repl *r = of_transport(t);
    if (stream && stream->type == UV_TCP)
        uv_tcp_nodelay((uv_tcp_t *)stream, 1);
    r->raft_accept(t, id, address, stream);
}

static int nodelay_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    hw_repl *r = of_transport(t);
    r->raft_accept = cb;
    return r->tcp_listen(t, nodelay_accept);
}

/* One connect in flight: libraft's request and callback, behind ours. */
typedef struct nodelay_connect {
    struct raft_uv_connect req; /* handed to libraft's transport */
    struct raft_uv_connect *raft_req;
    raft_uv_connect_cb raft_cb;
} nodelay_connect;

static void nodelay_connected(struct raft_uv_connect *req, struct uv_stream_s *stream, int status)
{
    nodelay_connect *c = req->data;
    if (status == 0 && stream && stream->type == UV_TCP)
        uv_tcp_nodelay((uv_tcp_t *)stream, 1);
    struct raft_uv_connect *raft_req = c->raft_req;
    raft_uv_connect_cb cb = c->raft_cb;
    free(c);
    cb(raft_req, stream, status);
}

static int nodelay_connect_to(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
                              const char *address, raft_uv_connect_cb cb)
{
    hw_repl *r = of_transport(t);
    nodelay_connect *c = calloc(1, sizeof *c);
    if (!c)
        return RAFT_NOMEM;
    c->req.data = c;
    c->raft_req = req;
    c->raft_cb = cb;
    int rc = r->tcp_connect(t, &c->req, id, address, nodelay_connected);
    if (rc != 0)
        free(c);
    return rc;
}

/* Sets the loop up and starts raft, on the caller's thread (before the
 * loop thread exists, so no race). */
static int start_raft(hw_repl *r, char *err, size_t errlen)
{
    int rc = uv_loop_init(&r->loop);
    if (rc != 0) {
        snprintf(err, errlen, "repl: uv_loop_init: %s", uv_strerror(rc));
        return HW_EIO;
    }
    if ((rc = raft_uv_tcp_init(&r->transport, &r->loop)) == 0) {
        r->tcp_listen = r->transport.listen;
        r->tcp_connect = r->transport.connect;
        r->transport.listen = nodelay_listen;
        r->transport.connect = nodelay_connect_to;
    }
    if (rc != 0 || (rc = raft_uv_init(&r->io, &r->loop, r->dir, &r->transport)) != 0) {
        snprintf(err, errlen, "repl: raft I/O setup in %s failed (%d)", r->dir, rc);
        return HW_EIO;
    }
    r->fsm = (struct raft_fsm){.version = 1, .data = r, .apply = fsm_apply, .snapshot = fsm_snapshot,
                               .restore = fsm_restore};
    if ((rc = raft_init(&r->raft, &r->io, &r->fsm, r->opts.id, r->raft_address)) != 0) {
        snprintf(err, errlen, "repl: raft_init: %s", raft_errmsg(&r->raft));
        return HW_EIO;
    }
    r->raft.data = r;
    raft_set_election_timeout(&r->raft, r->opts.election_timeout_ms ? r->opts.election_timeout_ms : 1000);
    raft_set_heartbeat_timeout(&r->raft, r->opts.heartbeat_timeout_ms ? r->opts.heartbeat_timeout_ms : 100);
    raft_set_snapshot_threshold(&r->raft, r->opts.snapshot_threshold ? r->opts.snapshot_threshold : 8192);
    raft_set_snapshot_trailing(&r->raft, r->opts.snapshot_trailing ? r->opts.snapshot_trailing : 2048);
    raft_set_pre_vote(&r->raft, true);
    if (r->n_boot > 0) {
        struct raft_configuration conf;
        raft_configuration_init(&conf);
        for (size_t i = 0; i < r->n_boot && rc == 0; i++)
            rc = raft_configuration_add(&conf, r->boot[i].id, r->boot[i].raft_address, RAFT_VOTER);
        if (rc == 0) {
            rc = raft_bootstrap(&r->raft, &conf);
            if (rc == RAFT_CANTBOOTSTRAP)
                rc = 0; /* already has state: the list is ignored */
        }
        raft_configuration_close(&conf);
        if (rc != 0) {
            snprintf(err, errlen, "repl: bootstrap: %s", raft_strerror(rc));
            return HW_EIO;
        }
    }
    if ((rc = raft_start(&r->raft)) != 0) {
        pthread_mutex_lock(&r->mu);
        uint64_t need = r->needs_copy;
        pthread_mutex_unlock(&r->mu);
        if (need)
            snprintf(err, errlen,
                     "repl: the store is behind the latest snapshot (entry %llu): it needs a copy of a peer's "
                     "store",
                     (unsigned long long)need);
        else
            snprintf(err, errlen, "repl: raft_start: %s", raft_errmsg(&r->raft));
        return need ? HW_EPRECONDITION : HW_EIO;
    }
    r->started = true;
    uv_async_init(&r->loop, &r->wake, on_wake);
    r->wake.data = r;
    uv_timer_init(&r->loop, &r->tick);
    r->tick.data = r;
    uv_timer_start(&r->tick, on_tick, 10, 10);
    refresh_view(r);
    return HW_OK;
}

/* ---- the API ------------------------------------------------------------- */

static int store_prepare(void *ctx, uint64_t *ticket)
{
    hw_repl *r = ctx;
    pthread_mutex_lock(&r->mu);
    int rc;
    if (r->stop || r->view.state != HW_REPL_LEADER)
        rc = HW_ENOTLEADER;
    else if (r->view.ready_term != r->view.term)
        rc = HW_EAGAIN;
    else {
        *ticket = r->view.term;
        rc = HW_OK;
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

static int store_propose(void *ctx, uint64_t ticket, const void *entry, size_t len, uint64_t *index)
{
    hw_repl *r = ctx;
    pthread_mutex_lock(&r->mu);
    if (r->stop) {
        pthread_mutex_unlock(&r->mu);
        return HW_ENOTLEADER;
    }
    r->prop.phase = SLOT_ASKED;
    r->prop.term = ticket;
    r->prop.buf = entry;
    r->prop.len = len;
    pthread_mutex_unlock(&r->mu);
    uv_async_send(&r->wake);
    pthread_mutex_lock(&r->mu);
    while (r->prop.phase != SLOT_DONE)
        pthread_cond_wait(&r->cond, &r->mu);
    int rc = r->prop.result;
    *index = r->prop.index;
    r->prop.phase = SLOT_FREE;
    if (rc == HW_OK) {
        atomic_fetch_add_explicit(&r->proposed, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&r->proposed_bytes, (len + 7) & ~(size_t)7, memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(&r->proposals_failed, 1, memory_order_relaxed);
    }
    r->prop.buf = NULL;
    pthread_mutex_unlock(&r->mu);
    return rc;
}

static bool store_is_leader(void *ctx)
{
    hw_repl *r = ctx;
    pthread_mutex_lock(&r->mu);
    bool yes = !r->stop && r->view.state == HW_REPL_LEADER && r->view.ready_term == r->view.term;
    pthread_mutex_unlock(&r->mu);
    return yes;
}

static bool addr_ok(const char *a)
{
    return a && *a && strlen(a) < 128 && strchr(a, ':');
}

int hw_repl_open(hw_repl **out, const hw_repl_options *opts, char *err, size_t errlen)
{
    *out = NULL;
    if (!opts || opts->id == 0 || !addr_ok(opts->raft_address) || !opts->dir || !opts->store ||
        opts->n_bootstrap > HW_REPL_MAX_MEMBERS) {
        snprintf(err, errlen, "repl: an id >= 1, a raft address host:port, a directory and a store are required");
        return HW_EINVALID;
    }
    for (size_t i = 0; i < opts->n_bootstrap; i++)
        if (opts->bootstrap[i].id == 0 || !addr_ok(opts->bootstrap[i].raft_address)) {
            snprintf(err, errlen, "repl: bootstrap member %zu: an id >= 1 and a raft address host:port", i + 1);
            return HW_EINVALID;
        }
    if (mkdir(opts->dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "repl: mkdir %s: %s", opts->dir, strerror(errno));
        return HW_EIO;
    }
    hw_repl *r = calloc(1, sizeof *r);
    if (!r)
        return HW_ENOMEM;
    r->opts = *opts;
    r->raft_address = strdup(opts->raft_address);
    r->grpc_address = strdup(opts->grpc_address ? opts->grpc_address : "");
    r->dir = strdup(opts->dir);
    r->store = opts->store;
    r->log = opts->log;
    r->n_boot = opts->n_bootstrap;
    if (opts->n_bootstrap)
        memcpy(r->boot, opts->bootstrap, opts->n_bootstrap * sizeof *r->boot);
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->admin_mu, NULL);
    pthread_cond_init(&r->cond, NULL);
    if (!r->raft_address || !r->grpc_address || !r->dir) {
        hw_repl_free(r);
        return HW_ENOMEM;
    }
    /* This replica's own gRPC address is known even when it joined later. */
    r->known[0].id = opts->id;
    snprintf(r->known[0].grpc_address, sizeof r->known[0].grpc_address, "%s", r->grpc_address);
    r->n_known = 1;
    hw_store_replicator rep = {.ctx = r, .prepare = store_prepare, .propose = store_propose,
                               .is_leader = store_is_leader};
    int rc = hw_store_set_replicator(r->store, &rep);
    if (rc != HW_OK) {
        snprintf(err, errlen, "repl: the store cannot be replicated now (%s)", hw_strerror(rc));
        hw_repl_free(r);
        return rc;
    }
    rc = start_raft(r, err, errlen);
    if (rc != HW_OK) {
        hw_repl_close(r);
        return rc;
    }
    if (pthread_create(&r->thread, NULL, loop_main, r) != 0) {
        snprintf(err, errlen, "repl: cannot start the raft thread");
        hw_repl_close(r);
        return HW_ENOMEM;
    }
    pthread_setname_np(r->thread, "hw-raft");
    *out = r;
    return HW_OK;
}

void hw_repl_close(hw_repl *r)
{
    if (!r)
        return;
    if (r->thread) {
        pthread_mutex_lock(&r->mu);
        r->stop = true;
        if (r->prop.phase == SLOT_ASKED) {
            r->prop.result = HW_ENOTLEADER;
            r->prop.phase = SLOT_DONE;
        }
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->mu);
        uv_async_send(&r->wake);
        pthread_join(r->thread, NULL);
        /* raft_close fired the pending requests' callbacks (failed); the
         * loop has closed every handle. */
        raft_uv_close(&r->io);
        raft_uv_tcp_close(&r->transport);
        uv_run(&r->loop, UV_RUN_DEFAULT);
        uv_loop_close(&r->loop);
    } else if (r->started) {
        raft_close(&r->raft, NULL);
        uv_close((uv_handle_t *)&r->wake, NULL);
        uv_close((uv_handle_t *)&r->tick, NULL);
        uv_run(&r->loop, UV_RUN_DEFAULT);
        raft_uv_close(&r->io);
        raft_uv_tcp_close(&r->transport);
        uv_run(&r->loop, UV_RUN_DEFAULT);
        uv_loop_close(&r->loop);
    }
    pthread_mutex_lock(&r->mu);
    if (r->prop.phase != SLOT_FREE && r->prop.phase != SLOT_DONE) {
        r->prop.result = HW_ENOTLEADER;
        r->prop.phase = SLOT_DONE;
    }
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->mu);
}

void hw_repl_free(hw_repl *r)
{
    if (!r)
        return;
    free(r->raft_address);
    free(r->grpc_address);
    free(r->dir);
    free(r);
}

void hw_repl_get_status(hw_repl *r, hw_repl_status *st)
{
    memset(st, 0, sizeof *st);
    st->self_id = r->opts.id;
    pthread_mutex_lock(&r->mu);
    const repl_view *v = &r->view;
    st->state = v->state;
    st->term = v->term;
    st->leader_id = v->leader_id;
    st->commit_index = v->commit_index;
    /* The store's index is that of the last command; entries after it that
     * are not commands (a new leader's barrier, membership changes) change
     * nothing in it, so once the store has every command raft applied, the
     * replica stands at raft's applied index. */
    st->applied_index = hw_store_applied_index(r->store);
    if (st->applied_index >= v->last_cmd && v->raft_applied > st->applied_index)
        st->applied_index = v->raft_applied;
    st->last_log_index = v->last_log_index;
    st->snapshot_index = v->snapshot_index;
    st->n_members = v->n_members;
    memcpy(st->members, v->members, v->n_members * sizeof *st->members);
    for (size_t i = 0; i < v->n_members; i++)
        if (v->members[i].id == v->leader_id)
            memcpy(st->leader_grpc_address, v->members[i].grpc_address, sizeof st->leader_grpc_address);
    if (v->state == HW_REPL_LEADER) {
        st->writable = v->ready_term == v->term;
        if (!st->writable)
            snprintf(st->message, sizeof st->message, "new leader applying the entries of earlier terms");
    } else if (v->leader_id != 0) {
        st->writable = st->leader_grpc_address[0] != 0;
        if (!st->writable)
            snprintf(st->message, sizeof st->message, "the leader's gRPC address (replica %llu) is not known",
                     (unsigned long long)v->leader_id);
    } else {
        snprintf(st->message, sizeof st->message, "no leader: this replica does not reach a majority of the %zu",
                 v->n_members);
    }
    if (r->needs_copy)
        snprintf(st->message, sizeof st->message, "this replica needs a copy of a peer's store (entry %llu)",
                 (unsigned long long)r->needs_copy);
    pthread_mutex_unlock(&r->mu);
}

bool hw_repl_leader_target(hw_repl *r, char *buf, size_t len)
{
    bool yes = false;
    pthread_mutex_lock(&r->mu);
    const repl_view *v = &r->view;
    if (v->state != HW_REPL_LEADER && v->leader_id != 0)
        for (size_t i = 0; i < v->n_members; i++)
            if (v->members[i].id == v->leader_id && v->members[i].grpc_address[0]) {
                snprintf(buf, len, "%s", v->members[i].grpc_address);
                yes = true;
            }
    pthread_mutex_unlock(&r->mu);
    return yes;
}

uint64_t hw_repl_needs_copy(hw_repl *r)
{
    pthread_mutex_lock(&r->mu);
    uint64_t v = r->needs_copy;
    pthread_mutex_unlock(&r->mu);
    return v;
}

void hw_repl_note_member(hw_repl *r, uint64_t id, const char *grpc_address)
{
    pthread_mutex_lock(&r->mu);
    size_t i = 0;
    while (i < r->n_known && r->known[i].id != id)
        i++;
    if (i == r->n_known && i < HW_REPL_MAX_MEMBERS)
        r->n_known++;
    if (i < r->n_known) {
        r->known[i].id = id;
        snprintf(r->known[i].grpc_address, sizeof r->known[i].grpc_address, "%s", grpc_address);
    }
    pthread_mutex_unlock(&r->mu);
}

/* Runs one admin change on the loop and waits for it. */
static int admin_run(hw_repl *r, int kind, const hw_repl_member *m, int timeout_ms, char *why, size_t whylen)
{
    pthread_mutex_lock(&r->admin_mu);
    pthread_mutex_lock(&r->mu);
    if (r->view.state != HW_REPL_LEADER) {
        pthread_mutex_unlock(&r->mu);
        pthread_mutex_unlock(&r->admin_mu);
        snprintf(why, whylen, "not the leader");
        return HW_ENOTLEADER;
    }
    r->admin.kind = kind;
    r->admin.m = *m;
    r->admin.phase = SLOT_ASKED;
    pthread_mutex_unlock(&r->mu);
    uv_async_send(&r->wake);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->mu);
    int rc = 0;
    while (r->admin.phase != SLOT_DONE && rc == 0)
        rc = pthread_cond_timedwait(&r->cond, &r->mu, &dl);
    int result;
    if (r->admin.phase == SLOT_DONE) {
        result = r->admin.result;
        snprintf(why, whylen, "%s", r->admin.why);
        r->admin.phase = SLOT_FREE;
    } else {
        /* Still under way in raft: the slot stays busy until it ends. */
        result = HW_EIO;
        snprintf(why, whylen, "the change did not complete within %d ms (it may still)", timeout_ms);
    }
    pthread_mutex_unlock(&r->mu);
    pthread_mutex_unlock(&r->admin_mu);
    return result;
}

#define MEMBERS_NS "cluster.members"

static int put_member(hw_store_txn *w, void *ctx)
{
    const hw_repl_member *m = ctx;
    char key[24];
    int kl = snprintf(key, sizeof key, "%020llu", (unsigned long long)m->id);
    return hw_store_kv_put(w, MEMBERS_NS, key, (size_t)kl, m->grpc_address, strlen(m->grpc_address));
}

typedef struct members_write {
    hw_repl_member m[2 * HW_REPL_MAX_MEMBERS];
    size_t n;
} members_write;

static int put_members(hw_store_txn *w, void *ctx)
{
    members_write *mw = ctx;
    for (size_t i = 0; i < mw->n; i++) {
        int rc = put_member(w, &mw->m[i]);
        if (rc != HW_OK)
            return rc;
    }
    return HW_OK;
}

int hw_repl_record_members(hw_repl *r)
{
    members_write mw = {.n = 0};
    pthread_mutex_lock(&r->mu);
    bool due = r->view.state == HW_REPL_LEADER && r->view.ready_term == r->view.term &&
               r->members_recorded_term != r->view.term;
    uint64_t term = r->view.term;
    if (due) {
        for (size_t i = 0; i < r->n_boot; i++)
            mw.m[mw.n++] = r->boot[i];
        for (size_t i = 0; i < r->n_known; i++)
            if (r->known[i].grpc_address[0])
                mw.m[mw.n++] = r->known[i];
    }
    pthread_mutex_unlock(&r->mu);
    if (!due)
        return HW_OK;
    int rc = hw_store_write(r->store, put_members, &mw);
    if (rc == HW_OK) {
        pthread_mutex_lock(&r->mu);
        r->members_recorded_term = term;
        pthread_mutex_unlock(&r->mu);
    }
    return rc;
}

int hw_repl_add(hw_repl *r, const hw_repl_member *m, int timeout_ms, char *why, size_t whylen)
{
    if (!m || m->id == 0 || !addr_ok(m->raft_address) || !addr_ok(m->grpc_address)) {
        snprintf(why, whylen, "an id >= 1, a raft address and a gRPC address (host:port) are required");
        return HW_EINVALID;
    }
    /* Every replica learns where the new one serves gRPC from the store
     * (hw_repl_load_members), before it can ever lead. */
    int rc = hw_store_write(r->store, put_member, (void *)m);
    if (rc != HW_OK) {
        snprintf(why, whylen, "recording the member: %s", hw_strerror(rc));
        return rc;
    }
    hw_repl_note_member(r, m->id, m->grpc_address);
    return admin_run(r, ADMIN_ADD, m, timeout_ms, why, whylen);
}

static int note_stored(void *arg, const void *key, size_t key_len, const void *val, size_t val_len)
{
    hw_repl *r = arg;
    char k[24], v[128];
    if (key_len >= sizeof k || val_len >= sizeof v)
        return HW_OK;
    memcpy(k, key, key_len);
    k[key_len] = 0;
    memcpy(v, val, val_len);
    v[val_len] = 0;
    uint64_t id = strtoull(k, NULL, 10);
    if (id)
        hw_repl_note_member(r, id, v);
    return HW_OK;
}

int hw_repl_load_members(hw_repl *r, hw_store_reader *rd)
{
    hw_store_txn *t;
    int rc = hw_store_read_begin(rd, &t);
    if (rc != HW_OK)
        return rc;
    rc = hw_store_kv_foreach(t, MEMBERS_NS, note_stored, r);
    hw_store_read_end(rd);
    return rc;
}

int hw_repl_remove(hw_repl *r, uint64_t id, int timeout_ms, char *why, size_t whylen)
{
    hw_repl_member m = {.id = id};
    return admin_run(r, ADMIN_REMOVE, &m, timeout_ms, why, whylen);
}

int hw_repl_transfer(hw_repl *r, uint64_t id, int timeout_ms, char *why, size_t whylen)
{
    hw_repl_member m = {.id = id};
    return admin_run(r, ADMIN_TRANSFER, &m, timeout_ms, why, whylen);
}

void hw_repl_get_stats(hw_repl *r, hw_repl_stats *st)
{
    st->proposed = atomic_load(&r->proposed);
    st->proposed_bytes = atomic_load(&r->proposed_bytes);
    st->proposals_failed = atomic_load(&r->proposals_failed);
    st->applied_from_log = atomic_load(&r->applied_from_log);
    st->applied_bytes = atomic_load(&r->applied_bytes);
    st->leaderships = atomic_load(&r->elections_won);
}
