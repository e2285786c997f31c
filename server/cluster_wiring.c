/*
 * cluster_wiring: a replicated helpwired's start, hooks and watch thread
 * (see cluster_wiring.h).
 */
#include "server/cluster_wiring.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/base/errors.h"
#include "server/base/files.h"
#include "server/repl/fetch.h"

struct hw_cluster_wiring {
    hw_app *app;
    hw_repl *repl;
    const hw_log *log;
    pthread_t thread;
    bool running;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool stop;
    char **argv; /* main's, for the restart on a fetched copy */
    const hw_config *cfg;
    hw_repl_member peers[HW_REPL_MAX_MEMBERS];
    size_t n_peers;
};

/* Reads the admin token of --cluster-token-file (first line), or "". */
static void read_token(const hw_config *cfg, char *buf, size_t len)
{
    buf[0] = 0;
    if (!cfg->cluster_token_file)
        return;
    FILE *f = fopen(cfg->cluster_token_file, "r");
    if (!f)
        return;
    if (fgets(buf, (int)len, f))
        buf[strcspn(buf, "\r\n")] = 0;
    fclose(f);
}

/* Fetches a copy of a peer's store into DATA/incoming (fetch.h) from the
 * leader first, then every other member known; then starts this program
 * again in place (same pid, same arguments), which installs the copy before
 * it opens the store. Returns only on failure, with err. */
static int fetch_and_restart(hw_cluster_wiring *w, char *err, size_t errlen)
{
    const char *targets[HW_REPL_MAX_MEMBERS * 2 + 1];
    size_t n = 0;
    hw_repl_status st;
    if (w->repl) {
        hw_repl_get_status(w->repl, &st);
        if (st.leader_grpc_address[0] && st.leader_id != st.self_id)
            targets[n++] = st.leader_grpc_address;
        for (size_t i = 0; i < st.n_members; i++)
            if (st.members[i].id != st.self_id && st.members[i].grpc_address[0])
                targets[n++] = st.members[i].grpc_address;
    }
    for (size_t i = 0; i < w->n_peers; i++)
        if (w->peers[i].id != (uint64_t)w->cfg->cluster_id)
            targets[n++] = w->peers[i].grpc_address;
    char join[1024] = "";
    if (w->cfg->cluster_join)
        snprintf(join, sizeof join, "%s", w->cfg->cluster_join);
    for (char *save = NULL, *t = strtok_r(join, ",", &save); t && n < sizeof targets / sizeof targets[0];
         t = strtok_r(NULL, ",", &save))
        targets[n++] = t;
    if (n == 0) {
        snprintf(err, errlen, "no peer to fetch a copy of the store from");
        return -1;
    }
    char token[512];
    read_token(w->cfg, token, sizeof token);
    uint64_t idx = 0;
    if (hw_repl_fetch_copy(targets, n, token[0] ? token : NULL, w->cfg->data_dir, &idx, err, errlen) != HW_OK)
        return -1;
    hw_log_event(w->log, HW_LOG_WARN, "cluster_restart", "reason=\"a copy of a peer's store at entry %llu\"",
                 (unsigned long long)idx);
    fflush(NULL);
    execv("/proc/self/exe", w->argv);
    snprintf(err, errlen, "restart on the fetched copy: %s", strerror(errno));
    return -1;
}

bool hw_cluster_parse_peers(const char *list, hw_repl_member *out, size_t max, size_t *n, char *err,
                            size_t errlen)
{
    *n = 0;
    const char *p = list;
    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char item[300];
        if (len == 0 || len >= sizeof item) {
            snprintf(err, errlen, "--cluster-peers: empty or too long member in '%s'", list);
            return false;
        }
        memcpy(item, p, len);
        item[len] = 0;
        char *eq = strchr(item, '='), *at = eq ? strchr(eq, '@') : NULL;
        char *idend = NULL;
        unsigned long long id = eq ? strtoull(item, &idend, 10) : 0;
        if (!eq || !at || id == 0 || idend != eq || at == eq + 1 || !at[1] || !strchr(eq + 1, ':') ||
            !strchr(at + 1, ':')) {
            snprintf(err, errlen, "--cluster-peers: '%s' is not ID=RAFT_HOST:PORT@GRPC_HOST:PORT", item);
            return false;
        }
        if (*n == max) {
            snprintf(err, errlen, "--cluster-peers: at most %zu members", max);
            return false;
        }
        *at = 0;
        hw_repl_member *m = &out[(*n)++];
        memset(m, 0, sizeof *m);
        m->id = id;
        m->role = HW_REPL_VOTER;
        if (strlen(eq + 1) >= sizeof m->raft_address || strlen(at + 1) >= sizeof m->grpc_address) {
            snprintf(err, errlen, "--cluster-peers: address too long in '%s'", item);
            return false;
        }
        strcpy(m->raft_address, eq + 1);
        strcpy(m->grpc_address, at + 1);
        for (size_t i = 0; i + 1 < *n; i++)
            if (out[i].id == id) {
                snprintf(err, errlen, "--cluster-peers: id %llu twice", id);
                return false;
            }
        p = end ? end + 1 : NULL;
    }
    return true;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int hw_cluster_open(hw_cluster_wiring **out, const hw_config *cfg, char **argv, hw_app *app, const hw_log *log,
                    int wait_ms, char *err, size_t errlen)
{
    *out = NULL;
    hw_repl_member peers[HW_REPL_MAX_MEMBERS];
    size_t n = 0;
    if (!cfg->cluster_raft) {
        snprintf(err, errlen, "--cluster-id needs --cluster-raft HOST:PORT");
        return -1;
    }
    if (cfg->cluster_peers && !hw_cluster_parse_peers(cfg->cluster_peers, peers, HW_REPL_MAX_MEMBERS, &n, err, errlen))
        return -1;
    if (n > 0) {
        bool self = false;
        for (size_t i = 0; i < n; i++)
            self |= peers[i].id == (uint64_t)cfg->cluster_id;
        if (!self) {
            snprintf(err, errlen, "--cluster-peers does not name this replica (--cluster-id %lld)",
                     (long long)cfg->cluster_id);
            return -1;
        }
    }
    char dir[4096];
    if (cfg->cluster_dir)
        snprintf(dir, sizeof dir, "%s", cfg->cluster_dir);
    else
        snprintf(dir, sizeof dir, "%s/raft", cfg->data_dir);
    hw_cluster_wiring *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    w->app = app;
    w->log = log;
    w->argv = argv;
    w->cfg = cfg;
    if (n)
        memcpy(w->peers, peers, n * sizeof *peers);
    w->n_peers = n;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cond, NULL);
    hw_repl_options ro = {
        .id = (uint64_t)cfg->cluster_id,
        .raft_address = cfg->cluster_raft,
        .grpc_address = cfg->cluster_advertise ? cfg->cluster_advertise : "",
        .dir = dir,
        .bootstrap = peers,
        .n_bootstrap = n,
        .store = app->store,
        .log = log,
        .election_timeout_ms = (unsigned)cfg->cluster_election_ms,
        .heartbeat_timeout_ms = (unsigned)cfg->cluster_heartbeat_ms,
        .snapshot_threshold = (unsigned)cfg->cluster_snapshot_entries,
        .snapshot_trailing = (unsigned)(cfg->cluster_snapshot_entries / 4),
    };
    int rc = hw_repl_open(&w->repl, &ro, err, errlen);
    if (rc == HW_EPRECONDITION) {
        /* The store is older than this replica's own latest snapshot (its
         * data was lost or replaced): catch up from a peer's copy. */
        hw_log_event(log, HW_LOG_WARN, "cluster_behind", "msg=\"%s\"", err);
        w->repl = NULL;
        fetch_and_restart(w, err, errlen);
    }
    if (rc != HW_OK) {
        free(w);
        return -1;
    }
    app->repl = w->repl;
    /* A leader known, so that the start's own writes go somewhere; a
     * replica started alone goes on without one (it serves reads). */
    int64_t until = mono_ms() + wait_ms;
    hw_repl_status st;
    for (;;) {
        hw_repl_get_status(w->repl, &st);
        if ((st.state == HW_REPL_LEADER && st.writable) || (st.state != HW_REPL_LEADER && st.leader_id != 0) ||
            mono_ms() >= until)
            break;
        usleep(20 * 1000);
    }
    hw_log_event(log, HW_LOG_INFO, "cluster", "id=%llu raft=%s leader=%llu state=%d members=%zu",
                 (unsigned long long)ro.id, cfg->cluster_raft, (unsigned long long)st.leader_id, st.state,
                 st.n_members);
    *out = w;
    return 0;
}

void hw_cluster_collect_metrics(void *wv, FILE *out)
{
    hw_cluster_wiring *w = wv;
    hw_repl_stats rs;
    hw_repl_status st;
    hw_repl_get_stats(w->repl, &rs);
    hw_repl_get_status(w->repl, &st);
    fprintf(out,
            "# HELP helpwire_replication_proposed_total Write groups this replica proposed that a majority "
            "committed (one raft entry each).\n"
            "# TYPE helpwire_replication_proposed_total counter\nhelpwire_replication_proposed_total %llu\n"
            "# HELP helpwire_replication_proposed_bytes_total Bytes of those entries in the raft log.\n"
            "# TYPE helpwire_replication_proposed_bytes_total counter\n"
            "helpwire_replication_proposed_bytes_total %llu\n"
            "# HELP helpwire_replication_proposals_failed_total Proposals that failed (leadership lost).\n"
            "# TYPE helpwire_replication_proposals_failed_total counter\n"
            "helpwire_replication_proposals_failed_total %llu\n"
            "# HELP helpwire_replication_applied_total Entries of other replicas applied here.\n"
            "# TYPE helpwire_replication_applied_total counter\nhelpwire_replication_applied_total %llu\n"
            "# HELP helpwire_replication_applied_bytes_total Their bytes.\n"
            "# TYPE helpwire_replication_applied_bytes_total counter\n"
            "helpwire_replication_applied_bytes_total %llu\n"
            "# HELP helpwire_replication_leaderships_total Terms this replica has led.\n"
            "# TYPE helpwire_replication_leaderships_total counter\nhelpwire_replication_leaderships_total %llu\n"
            "# HELP helpwire_replication_leader 1 while this replica leads.\n"
            "# TYPE helpwire_replication_leader gauge\nhelpwire_replication_leader %d\n"
            "# HELP helpwire_replication_writable 1 while this replica takes writes (leads or forwards).\n"
            "# TYPE helpwire_replication_writable gauge\nhelpwire_replication_writable %d\n"
            "# HELP helpwire_replication_term The raft term.\n"
            "# TYPE helpwire_replication_term gauge\nhelpwire_replication_term %llu\n"
            "# HELP helpwire_replication_applied_index The last entry in this replica's store.\n"
            "# TYPE helpwire_replication_applied_index gauge\nhelpwire_replication_applied_index %llu\n"
            "# HELP helpwire_replication_commit_index The last entry known committed.\n"
            "# TYPE helpwire_replication_commit_index gauge\nhelpwire_replication_commit_index %llu\n",
            (unsigned long long)rs.proposed, (unsigned long long)rs.proposed_bytes,
            (unsigned long long)rs.proposals_failed, (unsigned long long)rs.applied_from_log,
            (unsigned long long)rs.applied_bytes, (unsigned long long)rs.leaderships,
            st.state == HW_REPL_LEADER ? 1 : 0, st.writable ? 1 : 0, (unsigned long long)st.term,
            (unsigned long long)st.applied_index, (unsigned long long)st.commit_index);
}

int hw_cluster_install_copy(const hw_config *cfg, char *err, size_t errlen)
{
    return hw_repl_install_copy(cfg->data_dir, err, errlen) == HW_OK ? 0 : -1;
}

static bool leader_target(void *appv, char *buf, size_t len)
{
    hw_app *app = appv;
    return app->repl && hw_repl_leader_target(app->repl, buf, len);
}

static uint64_t applied_index(void *appv)
{
    hw_app *app = appv;
    return hw_store_applied_index(app->store);
}

static void when_applied(void *appv, uint64_t index, void (*cb)(void *arg, bool ok), void *arg)
{
    hw_app *app = appv;
    if (hw_store_when_applied(app->store, index, cb, arg) != HW_OK)
        cb(arg, false);
}

static const hw_net_cluster HOOKS = {
    .leader_target = leader_target,
    .applied_index = applied_index,
    .when_applied = when_applied,
};

const hw_net_cluster *hw_cluster_net_hooks(void)
{
    return &HOOKS;
}

static void *watch_main(void *arg)
{
    hw_cluster_wiring *w = arg;
    hw_store_reader *rd = NULL;
    if (hw_store_reader_create(w->app->store, &rd) != HW_OK)
        rd = NULL;
    int last = -1, rounds = 0;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        pthread_mutex_unlock(&w->mu);
        hw_repl_status st;
        hw_repl_get_status(w->repl, &st);
        int status = st.writable && !(w->app->net && hw_net_draining(w->app->net)) ? HW_HEALTH_SERVING
                                                                                 : HW_HEALTH_NOT_SERVING;
        if (status != last) {
            hw_health_set(w->app->health, HW_CLUSTER_WRITES_SERVICE, status);
            hw_log_event(w->log, status == HW_HEALTH_SERVING ? HW_LOG_INFO : HW_LOG_WARN, "cluster_writes",
                         "writable=%s state=%d leader=%llu", st.writable ? "true" : "false", st.state,
                         (unsigned long long)st.leader_id);
            last = status;
        }
        if (rd && rounds++ % 10 == 0) {
            hw_repl_record_members(w->repl);
            hw_repl_load_members(w->repl, rd);
        }
        if (hw_repl_needs_copy(w->repl) && rounds % 10 == 1) {
            /* Raft sent a snapshot newer than this store: fetch a copy and
             * restart on it (retried every second while it fails). */
            char why[512];
            if (fetch_and_restart(w, why, sizeof why) != 0)
                hw_log_event(w->log, HW_LOG_ERROR, "cluster_copy_failed", "msg=\"%s\"", why);
        }
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_nsec += 100 * 1000 * 1000;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&w->mu);
        if (!w->stop)
            pthread_cond_timedwait(&w->cond, &w->mu, &dl);
    }
    pthread_mutex_unlock(&w->mu);
    hw_store_reader_destroy(rd);
    return NULL;
}

int hw_cluster_start(hw_cluster_wiring *w, const char *advertise, char *err, size_t errlen)
{
    hw_repl_status st;
    hw_repl_get_status(w->repl, &st);
    bool known = false;
    for (size_t i = 0; i < st.n_members; i++)
        if (st.members[i].id == st.self_id && st.members[i].grpc_address[0])
            known = true;
    if (!known && advertise)
        hw_repl_note_member(w->repl, st.self_id, advertise);
    if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        snprintf(err, errlen, "cannot start the cluster thread");
        return -1;
    }
    pthread_setname_np(w->thread, "hw-cluster");
    w->running = true;
    return 0;
}

void hw_cluster_close(hw_cluster_wiring *w)
{
    if (!w)
        return;
    if (w->running) {
        pthread_mutex_lock(&w->mu);
        w->stop = true;
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
    }
    hw_repl_close(w->repl);
}

void hw_cluster_free(hw_cluster_wiring *w)
{
    if (!w)
        return;
    hw_repl_free(w->repl);
    w->app->repl = NULL;
    free(w);
}
