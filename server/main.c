/*
 * helpwired: parses the settings, opens the data directory, starts the
 * gRPC worker pool, reports SERVING, and waits for SIGTERM/SIGINT to drain.
 * Signals are blocked in every thread and taken here with sigwait, so no
 * handler runs in signal context.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "server/domain/app.h"
#include "server/domain/audit.h"
#include "server/domain/auth.h"
#include "server/cluster_wiring.h"
#include "server/ops/demo.h"
#include "server/base/clock.h"
#include "server/base/files.h"
#include "server/net/reflection.h"
#include "server/domain/knowledge.h"
#include "server/domain/limits.h"
#include "server/domain/conversation.h"
#include "server/domain/signals.h"
#include "server/domain/synonyms.h"
#include "server/domain/notes.h"
#include "server/search/tokenize.h"
#include "server/domain/sla.h"
#include "server/domain/sla_breach.h"
#include "server/domain/tickets.h"
#include "server/search/index.h"
#include "server/search/indexer.h"
#include "server/store/records.h"
#include "server/store/store.h"
#include "server/domain/classify.h"
#include "server/ops/retention.h"
#include "server/ops/config.h"
#include "server/base/grpc_runtime.h"
#include "server/net/health.h"
#include "server/base/log.h"
#include "server/methods.h"
#include "server/base/metrics.h"
#include "server/net/net.h"
#include "server/domain/agents.h"
#include "server/domain/notifier.h"
#include "server/domain/queues.h"
#include "server/domain/outbox.h"
#include "server/domain/watch.h"
#include "server/domain/webhook_sign.h"
#include "server/domain/hours.h"
#include "server/domain/sinks.h"
#include "server/domain/timers.h"
#include "server/web/grpc_web.h"

/* At the end of the demo seed's write: stores the starter synonym sets
 * (demo.h) and tells the other replicas what the write holds that they
 * must act on (the articles and FAQs to index, the skills, the synonym
 * sets). */
static int finish_demo_seed(void *appv, hw_store_txn *w)
{
    (void)appv;
    size_t n = 0;
    const hw_demo_synonym_set *demo = hw_demo_synonym_sets(&n);
    int64_t now_ms = hw_effects_now_ms(NULL);
    int rc = HW_OK;
    for (size_t i = 0; rc == HW_OK && i < n; i++) {
        Helpwire__V1__SynonymSet set = HELPWIRE__V1__SYNONYM_SET__INIT;
        set.id = (char *)demo[i].id;
        set.locale = (char *)demo[i].locale;
        set.terms = (char **)demo[i].terms;
        while (set.n_terms < HW_DEMO_SYNONYM_TERMS_MAX && demo[i].terms[set.n_terms])
            set.n_terms++;
        rc = hw_synonyms_put_in(w, &set, now_ms);
    }
    if (rc != HW_OK || !hw_store_txn_replicated(w))
        return rc;
    hw_effects fx;
    hw_effects_begin(&fx, hw_store_txn_arena(w));
    hw_effects_skills_changed(&fx);
    hw_effects_synonyms_changed(&fx);
    rc = hw_knowledge_record_all_in(w, &fx);
    return rc == HW_OK ? hw_effects_note_in(&fx, w) : rc;
}

/* Creates one directory of the data path unless it exists. One it creates
 * has its parent fsynced, so the new name is durable before the store
 * inside acknowledges anything (the store fsyncs the data directory
 * itself). Returns 0 or -1 with err. */
static int make_dir(const char *path, char *err, size_t errlen)
{
    if (mkdir(path, 0700) == 0) {
        if (hw_fsync_parent(path) == 0)
            return 0;
        snprintf(err, errlen, "cannot make data directory %s durable: %s", path, strerror(errno));
        return -1;
    }
    if (errno == EEXIST)
        return 0;
    snprintf(err, errlen, "cannot create data directory %s: %s", path, strerror(errno));
    return -1;
}

/* mkdir -p for the data directory, then checks it is a writable directory.
 * Returns 0 or -1 with err. */
static int prepare_data_dir(const char *dir, char *err, size_t errlen)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) {
        snprintf(err, errlen, "data directory path is too long");
        return -1;
    }
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (make_dir(path, err, errlen) != 0)
            return -1;
        *p = '/';
    }
    if (make_dir(path, err, errlen) != 0)
        return -1;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "data directory %s is not a directory", dir);
        return -1;
    }
    if (access(dir, R_OK | W_OK | X_OK) != 0) {
        snprintf(err, errlen, "data directory %s is not writable: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* A PEM file named by flag, NUL-terminated (malloc'd); NULL with err. */
static char *read_pem(const char *flag, const char *path, char *err, size_t errlen)
{
    char *buf = NULL, e[300];
    if (hw_file_read(path, (1 << 20) - 1, &buf, NULL, e, sizeof e) != 0) {
        snprintf(err, errlen, "%s: %s", flag, e);
        return NULL;
    }
    return buf;
}

/* The demo tokens: created when this start seeded the store, kept (mode
 * 0600) in the data directory for later starts, and printed. The file is
 * durable before anything is served: the store keeps only the tokens'
 * hashes, so a file lost to a power cut would lose them. */
static int print_demo_tokens(hw_store *store, const char *data_dir, bool seeded, char *err, size_t errlen)
{
    char path[4200], *text = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/demo-tokens.txt", data_dir);
    int rc = 0;
    if (seeded) {
        FILE *tf = open_memstream(&text, &len);
        int trc = tf ? hw_auth_demo_tokens(store, "alice", tf) : HW_ENOMEM;
        if (tf && fclose(tf) != 0)
            trc = HW_ENOMEM;
        if (trc != HW_OK) {
            snprintf(err, errlen, "creating the demo tokens failed: %s", hw_strerror(trc));
            rc = -1;
        } else {
            rc = hw_file_replace(path, text, len, 0600, err, errlen);
        }
    } else if (hw_file_read(path, 4096, &text, &len, err, errlen) != 0) {
        text = NULL; /* kept from an earlier start, or not: nothing to print */
        len = 0;
    }
    if (rc == 0 && len)
        fwrite(text, 1, len, stdout);
    free(text);
    return rc;
}

/* The audit log's entries of this start (audit.h: store.restored on a
 * backup's first start, config.start with the settings changed since the
 * last one), written by a single node or the leader; a replica that does
 * not lead skips them. Returns 0 or -1 with err. */
static int audit_start(const hw_config *cfg, hw_store *store, hw_clock *clock, hw_log *log, char *err,
                       size_t errlen)
{
    if (!hw_store_is_leader(store)) {
        hw_log_event(log, HW_LOG_INFO, "audit_start",
                     "recorded=false reason=\"not the leader of the replicas\"");
        return 0;
    }
    hw_config dflt;
    hw_config_defaults(&dflt);
    char *now = hw_config_effective(cfg), *before = hw_config_effective(&dflt);
    hw_audit_start_result r = {0};
    int rc = now && before ? hw_audit_start(store, hw_clock_now_ms(clock), cfg->data_dir, now, before, &r)
                           : HW_ENOMEM;
    free(now);
    free(before);
    if (rc == HW_ENOTLEADER) {
        hw_log_event(log, HW_LOG_INFO, "audit_start", "recorded=false reason=\"no longer the leader\"");
        return 0;
    }
    if (rc != HW_OK) {
        snprintf(err, errlen, "cannot record the start in the audit log: %s", hw_strerror(rc));
        return -1;
    }
    hw_log_event(log, HW_LOG_INFO, "audit_start", "seq=%llu first_start=%s changed=%zu restored=%s",
                 (unsigned long long)r.seq, r.first_start ? "true" : "false", r.changed,
                 r.restored ? "true" : "false");
    return 0;
}

static int64_t in_flight_of(void *net)
{
    return hw_net_calls_in_flight(net);
}

static void worker_start(void *appv, int i)
{
    hw_app *app = appv;
    hw_worker_ctx *w = &app->workers[i];
    hw_status st = {0};
    hw_index_reader_register();
    int rc = hw_store_reader_create(app->store, &w->reader);
    if (rc == HW_OK)
        rc = hw_searcher_create(app->index, &w->searcher, &st);
    if (rc == HW_OK)
        rc = hw_tokenizer_create(&w->tokenizer, &st);
    if (rc != HW_OK)
        hw_log_event(app->log, HW_LOG_ERROR, "worker_setup_failed", "worker=%d error=%s", i, hw_strerror(rc));
}

static void worker_stop(void *appv, int i)
{
    hw_app *app = appv;
    hw_worker_ctx *w = &app->workers[i];
    hw_classify_free(w->skill_model);
    w->skill_model = NULL;
    hw_tokenizer_destroy(w->tokenizer);
    hw_searcher_destroy(w->searcher);
    hw_store_reader_destroy(w->reader);
    w->tokenizer = NULL;
    w->searcher = NULL;
    w->reader = NULL;
    hw_index_reader_unregister();
}

/* The admission limit for the metrics endpoint (moves with
 * --latency-target-us; else --max-in-flight, 0 = none). */
static void collect_admission(void *netv, FILE *out)
{
    fprintf(out,
            "# HELP helpwire_admission_limit Unary calls let in at once now; beyond it RESOURCE_EXHAUSTED.\n"
            "# TYPE helpwire_admission_limit gauge\nhelpwire_admission_limit %lld\n",
            (long long)hw_net_admission_limit(netv));
}

/* Dedupe records past --dedupe-retention-hours, failed outbox entries
 * past --failed-retention-days, event log entries past
 * --watch-history-hours and audit log entries past --audit-retention-days,
 * deleted since the start; closed tickets' conversations past their
 * queue's retention. */
static void collect_retention(void *r, FILE *out)
{
    fprintf(
        out,
        "# HELP helpwire_dedupe_expired_total Route dedupe records deleted after the retention period.\n"
        "# TYPE helpwire_dedupe_expired_total counter\nhelpwire_dedupe_expired_total %llu\n"
        "# HELP helpwire_outbox_failed_expired_total Failed outbox entries deleted after "
        "--failed-retention-days.\n"
        "# TYPE helpwire_outbox_failed_expired_total counter\nhelpwire_outbox_failed_expired_total %llu\n"
        "# HELP helpwire_watch_events_expired_total WatchTickets event log entries deleted after "
        "--watch-history-hours or beyond --watch-history-max-events.\n"
        "# TYPE helpwire_watch_events_expired_total counter\nhelpwire_watch_events_expired_total %llu\n"
        "# HELP helpwire_retention_conversations_total Closed tickets whose conversation a queue's "
        "retention redacted or deleted.\n"
        "# TYPE helpwire_retention_conversations_total counter\n"
        "helpwire_retention_conversations_total{action=\"redact\"} %llu\n"
        "helpwire_retention_conversations_total{action=\"delete\"} %llu\n"
        "# HELP helpwire_retention_messages_total Messages of those conversations redacted or deleted.\n"
        "# TYPE helpwire_retention_messages_total counter\nhelpwire_retention_messages_total %llu\n"
        "# HELP helpwire_attachments_unused_removed_total Attachments and pieces no message referred to, removed "
        "24 hours after they were stored.\n"
        "# TYPE helpwire_attachments_unused_removed_total counter\n"
        "helpwire_attachments_unused_removed_total{what=\"attachment\"} %llu\n"
        "helpwire_attachments_unused_removed_total{what=\"chunk\"} %llu\n"
        "# HELP helpwire_audit_expired_total Audit log entries deleted after --audit-retention-days.\n"
        "# TYPE helpwire_audit_expired_total counter\nhelpwire_audit_expired_total %llu\n",
        (unsigned long long)hw_retention_dedupe_expired(r),
        (unsigned long long)hw_retention_failed_expired(r),
        (unsigned long long)hw_retention_events_expired(r),
        (unsigned long long)hw_retention_conversations_redacted(r),
        (unsigned long long)hw_retention_conversations_deleted(r),
        (unsigned long long)hw_retention_conversation_messages(r),
        (unsigned long long)hw_retention_attachments_expired(r),
        (unsigned long long)hw_retention_chunks_expired(r),
        (unsigned long long)hw_retention_audit_expired(r));
}

/* Store and index gauges for the metrics endpoint. */
static void collect_store(void *appv, FILE *out)
{
    hw_app *app = appv;
    hw_store_stats st;
    hw_store_get_stats(app->store, &st);
    fprintf(
        out,
        "# HELP helpwire_store_map_size_bytes Size of the LMDB map.\n"
        "# TYPE helpwire_store_map_size_bytes gauge\nhelpwire_store_map_size_bytes %llu\n"
        "# HELP helpwire_store_map_used_bytes Bytes of the map in use.\n"
        "# TYPE helpwire_store_map_used_bytes gauge\nhelpwire_store_map_used_bytes %llu\n"
        "# HELP helpwire_store_commits_total Durable group commits.\n"
        "# TYPE helpwire_store_commits_total counter\nhelpwire_store_commits_total %llu\n"
        "# HELP helpwire_store_writes_total Write requests completed.\n"
        "# TYPE helpwire_store_writes_total counter\nhelpwire_store_writes_total %llu\n"
        "# HELP helpwire_store_largest_group Most write requests in one commit.\n"
        "# TYPE helpwire_store_largest_group gauge\nhelpwire_store_largest_group %llu\n"
        "# HELP helpwire_store_write_queue_depth Write requests submitted and not yet committed.\n"
        "# TYPE helpwire_store_write_queue_depth gauge\nhelpwire_store_write_queue_depth %llu\n"
        "# HELP helpwire_store_map_grows_total Automatic map growths.\n"
        "# TYPE helpwire_store_map_grows_total counter\nhelpwire_store_map_grows_total %llu\n"
        "# HELP helpwire_store_commit_failures_total Group commits that failed (disk full, I/O error); "
        "their writes were refused.\n"
        "# TYPE helpwire_store_commit_failures_total counter\nhelpwire_store_commit_failures_total %llu\n",
        (unsigned long long)st.map_size_bytes, (unsigned long long)st.map_used_bytes,
        (unsigned long long)st.commits, (unsigned long long)st.requests, (unsigned long long)st.largest_group,
        (unsigned long long)st.queued, (unsigned long long)st.map_grows,
        (unsigned long long)st.commit_failures);
    fprintf(out, "# HELP helpwire_store_group_commit_size Write requests per durable group commit.\n"
                 "# TYPE helpwire_store_group_commit_size histogram\n");
    uint64_t cum = 0;
    for (unsigned b = 0; b < HW_STORE_GROUP_BUCKETS; b++) {
        cum += st.group_sizes[b];
        fprintf(out, "helpwire_store_group_commit_size_bucket{le=\"%u\"} %llu\n", 1u << b,
                (unsigned long long)cum);
    }
    fprintf(out,
            "helpwire_store_group_commit_size_bucket{le=\"+Inf\"} %llu\n"
            "helpwire_store_group_commit_size_sum %llu\nhelpwire_store_group_commit_size_count %llu\n",
            (unsigned long long)cum, (unsigned long long)st.committed_requests,
            (unsigned long long)st.commits);
    fprintf(out,
            "# HELP helpwire_store_write_cpu_seconds_total CPU time of the thread running write groups "
            "(write functions, commits, done callbacks).\n"
            "# TYPE helpwire_store_write_cpu_seconds_total counter\nhelpwire_store_write_cpu_seconds_total %.6f\n"
            "# HELP helpwire_store_done_cpu_seconds_total Of that, the done callbacks (effects and replies).\n"
            "# TYPE helpwire_store_done_cpu_seconds_total counter\nhelpwire_store_done_cpu_seconds_total %.6f\n"
            "# HELP helpwire_store_commit_seconds_total Wall time in commits (page writes and disk flushes).\n"
            "# TYPE helpwire_store_commit_seconds_total counter\nhelpwire_store_commit_seconds_total %.6f\n",
            st.write_cpu_ns / 1e9, st.done_cpu_ns / 1e9, st.commit_wall_ns / 1e9);
}

/* Search index, outbox and notifier gauges. The outbox backlog and failed
 * list are read with the metrics thread's own store reader (the endpoint
 * serves one scrape at a time). */
typedef struct {
    hw_app *app;
    hw_store_reader *reader;
} domain_metrics;

static void collect_domain(void *arg, FILE *out)
{
    domain_metrics *d = arg;
    hw_index_stats is;
    hw_index_stats_get(d->app->index, &is);
    fprintf(out,
            "# HELP helpwire_index_documents Articles and FAQs in the search index.\n"
            "# TYPE helpwire_index_documents gauge\nhelpwire_index_documents %llu\n"
            "# HELP helpwire_index_terms Distinct terms in the search index.\n"
            "# TYPE helpwire_index_terms gauge\nhelpwire_index_terms %llu\n"
            "# HELP helpwire_index_bytes Memory held by the search index.\n"
            "# TYPE helpwire_index_bytes gauge\nhelpwire_index_bytes %llu\n",
            (unsigned long long)is.docs, (unsigned long long)is.terms, (unsigned long long)is.index_bytes);
    static const struct {
        Helpwire__V1__Channel ch;
        const char *name;
    } channels[] = {{HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP, "whatsapp"},
                    {HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, "telegram"},
                    {HELPWIRE__V1__CHANNEL__CHANNEL_WEBCHAT, "webchat"}};
    hw_store_txn *t;
    if (d->reader && hw_store_read_begin(d->reader, &t) == HW_OK) {
        fprintf(out, "# HELP helpwire_outbox_backlog Outbound messages not yet acknowledged by a bridge.\n"
                     "# TYPE helpwire_outbox_backlog gauge\n");
        for (size_t i = 0; i < sizeof channels / sizeof channels[0]; i++) {
            uint64_t n = 0;
            if (hw_store_outbox_backlog(t, channels[i].ch, &n) == HW_OK)
                fprintf(out, "helpwire_outbox_backlog{channel=\"%s\"} %llu\n", channels[i].name,
                        (unsigned long long)n);
        }
        uint64_t timers = 0;
        if (hw_timers_pending(t, &timers) == HW_OK)
            fprintf(out,
                    "# HELP helpwire_timers_pending Durable timers set and not yet fired (SLA, "
                    "unassigned, reassignment).\n"
                    "# TYPE helpwire_timers_pending gauge\nhelpwire_timers_pending %llu\n",
                    (unsigned long long)timers);
        fprintf(out, "# HELP helpwire_outbox_failed Messages in the failed list (refused for good by the "
                     "channel), kept for ListFailed and RetryFailed.\n"
                     "# TYPE helpwire_outbox_failed gauge\n");
        for (size_t i = 0; i < sizeof channels / sizeof channels[0]; i++) {
            uint64_t n = 0;
            if (hw_store_failed_count(t, channels[i].ch, &n) == HW_OK)
                fprintf(out, "helpwire_outbox_failed{channel=\"%s\"} %llu\n", channels[i].name,
                        (unsigned long long)n);
        }
        hw_sla_metrics(t, out);
        hw_arena *qa = hw_arena_create(64 * 1024);
        if (qa)
            hw_queues_metrics(t, qa, out);
        hw_arena_destroy(qa);
        hw_store_read_end(d->reader);
    }
    fprintf(out,
            "# HELP helpwire_notifier_retries_total Supervisor alert deliveries that failed and will be "
            "retried.\n"
            "# TYPE helpwire_notifier_retries_total counter\nhelpwire_notifier_retries_total %llu\n"
            "# HELP helpwire_notifier_pending Supervisor alerts waiting for delivery.\n"
            "# TYPE helpwire_notifier_pending gauge\nhelpwire_notifier_pending %llu\n"
            "# HELP helpwire_notifier_alerts_expired_total Supervisor alerts dropped undelivered after "
            "--alert-retention-days.\n"
            "# TYPE helpwire_notifier_alerts_expired_total counter\nhelpwire_notifier_alerts_expired_total "
            "%llu\n",
            (unsigned long long)hw_notifier_retries(d->app->notifier),
            (unsigned long long)hw_notifier_pending(d->app->notifier),
            (unsigned long long)hw_notifier_expired(d->app->notifier));
    hw_route_limits_collect(d->app->route_limits, out);
    if (d->app->timers) {
        hw_timers_stats ts;
        hw_timers_stats_get(d->app->timers, &ts);
        fprintf(out,
                "# HELP helpwire_timers_fired_total Durable timers fired (their handler's write committed).\n"
                "# TYPE helpwire_timers_fired_total counter\nhelpwire_timers_fired_total %llu\n"
                "# HELP helpwire_timers_failed_total Timer firings rolled back, to be retried.\n"
                "# TYPE helpwire_timers_failed_total counter\nhelpwire_timers_failed_total %llu\n",
                (unsigned long long)ts.fired, (unsigned long long)ts.failed);
    }
}

static int default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

/* The gRPC core's own lines, as events of our log. */
static void log_grpc_line(void *arg, int level, const char *file, int line, const char *msg)
{
    char q[1024];
    hw_log_event(arg, (hw_log_level)level, "grpc", "file=%s line=%d msg=%s", file, line,
                 hw_log_quote(msg, q, sizeof q));
}

int main(int argc, char **argv)
{
    char err[512];
    int rc = 1, cancelled = 0;
    hw_config cfg;
    hw_log *log = NULL;
    hw_health *health = NULL;
    hw_cluster_wiring *cluster = NULL;
    hw_net *net = NULL;
    hw_grpc_web *web = NULL;
    hw_metrics *metrics = NULL;
    hw_store *store = NULL;
    hw_index *index = NULL;
    hw_indexer *indexer = NULL;
    hw_outbox *outbox = NULL;
    hw_notifier *notifier = NULL;
    hw_webhook_keys *webhook_keys = NULL;
    hw_retention *retention = NULL;
    hw_notes *notes = NULL;
    hw_synonyms *synonyms = NULL;
    char *tls_cert = NULL, *tls_key = NULL, *tls_ca = NULL;
    hw_app app = {0};
    domain_metrics dm = {0};

    hw_config_defaults(&cfg);
    int parsed = hw_config_parse(&cfg, argc, argv, stdout, err, sizeof err);
    if (parsed == 1)
        return 0;
    if (parsed < 0) {
        fprintf(stderr, "helpwired: %s\n", err);
        hw_config_free(&cfg);
        return 2;
    }
    if (prepare_data_dir(cfg.data_dir, err, sizeof err) != 0) {
        fprintf(stderr, "helpwired: %s\n", err);
        hw_config_free(&cfg);
        return 1;
    }

    /* Block the signals we wait for before any thread (gRPC's too) starts. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    log = hw_log_create(STDERR_FILENO, (hw_log_level)hw_log_level_parse(cfg.log_level), cfg.access_log);
    hw_grpc_log_route grpc_route = {log_grpc_line, log};
    if (log)
        hw_grpc_runtime_log_to(&grpc_route);
    size_t n_methods;
    const hw_method *methods = hw_methods(&n_methods);
    static const char *const health_extra[] = {HW_CLUSTER_WRITES_SERVICE};
    health = hw_health_create_with(methods, n_methods, health_extra, cfg.cluster_id > 0 ? 1 : 0);
    if (!log || !health) {
        fprintf(stderr, "helpwired: out of memory\n");
        goto out;
    }
    app.log = log;
    app.health = health;
    {
        int crc = cfg.clock_file ? hw_clock_create_file(&app.clock, cfg.clock_file, err, sizeof err)
                                 : hw_clock_create_real(&app.clock);
        if (crc != HW_OK) {
            fprintf(stderr, "helpwired: --clock-file: %s\n", cfg.clock_file ? err : hw_strerror(crc));
            goto out;
        }
        if (cfg.clock_file)
            hw_log_event(log, HW_LOG_WARN, "clock_file", "file=%s now_ms=%lld", cfg.clock_file,
                         (long long)hw_clock_now_ms(app.clock));
    }
    {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        app.started_unix_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    }

    char *end = NULL;
    app.settings.answer_threshold = strtod(cfg.answer_threshold, &end);
    if (!end || *end || !(app.settings.answer_threshold > 0 && app.settings.answer_threshold <= 1)) {
        fprintf(stderr, "helpwired: --answer-threshold must be a number in (0, 1], not '%s'\n",
                cfg.answer_threshold);
        goto out;
    }
    app.settings.survey_base_url = cfg.survey_base_url;
    app.settings.survey_ttl_ms = cfg.survey_ttl_hours * 3600 * 1000;
    app.settings.route_hits = (uint32_t)cfg.route_hits;
    app.settings.webhook_url = cfg.webhook_url;
    if (cfg.webhook_secret_file) {
        if (hw_webhook_keys_load(cfg.webhook_secret_file, &webhook_keys, err, sizeof err) != HW_OK) {
            fprintf(stderr, "helpwired: --webhook-secret-file: %s\n", err);
            goto out;
        }
        app.settings.webhook_keys = webhook_keys;
        hw_log_event(log, HW_LOG_INFO, "webhook_signing", "file=%s secrets=%zu", cfg.webhook_secret_file,
                     hw_webhook_keys_count(webhook_keys));
    } else if (cfg.webhook_url && cfg.webhook_url[0]) {
        hw_log_event(log, HW_LOG_WARN, "webhook_unsigned",
                     "effect=\"supervisor webhooks carry no helpwire-signature: a receiver cannot tell them "
                     "from forgeries\" fix=\"restart with --webhook-secret-file FILE\"");
    }
    app.settings.alert_retention_ms = cfg.alert_retention_days * 24 * 3600 * 1000;
    app.settings.unassigned_alert_after_ms = cfg.unassigned_alert_after_ms;
    app.settings.reassign_grace_ms = cfg.reassign_grace_ms;
    app.settings.attachment_max_bytes = (uint64_t)cfg.attachment_max_bytes;
    char whatsapp_template[600];
    if (cfg.whatsapp_template &&
        hw_conversation_parse_template(cfg.whatsapp_template, whatsapp_template, sizeof whatsapp_template,
                                       &app.settings.whatsapp_template_name,
                                       &app.settings.whatsapp_template_language, err, sizeof err) != HW_OK) {
        fprintf(stderr, "helpwired: %s\n", err);
        goto out;
    }
    if (hw_signals_create(&app.signals) != HW_OK) {
        fprintf(stderr, "helpwired: out of memory\n");
        goto out;
    }
    {
        hw_route_limits_options lo = {.sender_rate_per_min = cfg.sender_rate,
                                      .sender_burst = cfg.sender_burst,
                                      .new_customers_rate_per_min = cfg.new_customers_rate,
                                      .new_customers_burst = cfg.new_customers_burst};
        if (hw_route_limits_validate(&lo, err, sizeof err) != HW_OK) {
            fprintf(stderr, "helpwired: %s\n", err);
            goto out;
        }
        if (hw_route_limits_create(&app.route_limits, &lo) != HW_OK) {
            fprintf(stderr, "helpwired: out of memory\n");
            goto out;
        }
    }

    if (cfg.cluster_id > 0 && hw_cluster_install_copy(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "helpwired: %s\n", err);
        goto out;
    }
    hw_store_options so = {.data_dir = cfg.data_dir, .page_census_every = (unsigned)cfg.store_page_census};
    if (hw_store_open(&store, &so, err, sizeof err) != HW_OK) {
        fprintf(stderr, "helpwired: %s\n", err);
        goto out;
    }
    app.store = store;
    /* Other replicas' writes reach the hubs through their entries' notes
     * (never called on a single node). Whoever applies entries starts
     * after the hubs and the indexer, and stops before they go. */
    int nrc = hw_notes_create(&notes, &app);
    if (nrc != HW_OK) {
        fprintf(stderr, "helpwired: cannot create the note handler: %s\n", hw_strerror(nrc));
        goto out;
    }
    hw_store_set_note_handler(store, hw_notes_apply, notes);
    if (cfg.cluster_id > 0 && hw_cluster_open(&cluster, &cfg, argv, &app, log, 15000, err, sizeof err) != 0) {
        fprintf(stderr, "helpwired: %s\n", err);
        goto out;
    }
    if (audit_start(&cfg, store, app.clock, log, err, sizeof err) != 0) {
        fprintf(stderr, "helpwired: %s\n", err);
        goto out;
    }
    if (cluster && !hw_store_is_leader(store)) {
        /* The leader seeds and creates the first token; they reach this
         * replica through the log. */
        hw_log_event(log, HW_LOG_INFO, "cluster_start", "leader=false effect=\"no demo seed or bootstrap token here\"");
    } else if (cfg.demo) {
        bool seeded = false;
        if (hw_demo_seed_noted(store, finish_demo_seed, &app, &seeded, err, sizeof err) != HW_OK) {
            fprintf(stderr, "helpwired: %s\n", err);
            goto out;
        }
        hw_log_event(log, HW_LOG_INFO, "demo", "seeded=%s",
                     seeded                       ? "true"
                     : hw_store_is_leader(store) ? "false (store not empty)"
                                                 : "false (not the leader of the replicas)");
        if (print_demo_tokens(store, cfg.data_dir, seeded, err, sizeof err) != 0) {
            fprintf(stderr, "helpwired: %s\n", err);
            goto out;
        }
    }
    if (cfg.bootstrap_token_file && cluster && !hw_store_is_leader(store)) {
        hw_log_event(log, HW_LOG_INFO, "bootstrap_token",
                     "file=%s created=false reason=\"not the leader of the replicas: the leader creates it\"",
                     cfg.bootstrap_token_file);
    } else if (cfg.bootstrap_token_file) {
        bool created = false;
        if (hw_auth_bootstrap(store, cfg.bootstrap_token_file, &created, err, sizeof err) != HW_OK) {
            fprintf(stderr, "helpwired: %s\n", err);
            goto out;
        }
        if (created)
            hw_log_event(log, HW_LOG_INFO, "bootstrap_token", "file=%s role=admin", cfg.bootstrap_token_file);
    }
    {
        /* Without a token every RPC but health is refused: say how out. */
        bool any = true;
        if (hw_auth_any_token(store, &any) == HW_OK && !any)
            hw_log_event(log, HW_LOG_WARN, "no_tokens",
                         "effect=\"every RPC but health and reflection is refused\" "
                         "fix=\"restart with --bootstrap-token-file FILE to create the first admin "
                         "token (or --demo on an empty store)\"");
    }
    /* The hubs committed writes' effects go to; the watch hub exists before
     * the notifier's thread, whose writes publish to it. */
    app.after_commit = hw_sinks_for_app(&app);
    if (hw_watch_create(&app.watch) != HW_OK) {
        fprintf(stderr, "helpwired: out of memory\n");
        goto out;
    }
    int mrc = hw_outbox_create(&outbox, &app);
    if (mrc == HW_OK) {
        app.outbox = outbox;
        mrc = hw_notifier_create(&notifier, &app);
        app.notifier = notifier;
    }
    if (mrc != HW_OK) {
        fprintf(stderr, "helpwired: cannot start the outbox and notifier: %s\n", hw_strerror(mrc));
        goto out;
    }
    if ((mrc = hw_hours_cache_create(&app.hours_cache)) != HW_OK) {
        fprintf(stderr, "helpwired: out of memory\n");
        goto out;
    }
    /* Durable timers: domain modules register their handlers here, before
     * the thread starts (it fires what came due while the server was down). */
    if ((mrc = hw_timers_create(&app.timers, &app)) != HW_OK) {
        fprintf(stderr, "helpwired: cannot create the timers: %s\n", hw_strerror(mrc));
        goto out;
    }
    if ((mrc = hw_timers_register(app.timers, HW_TIMER_SLA, hw_sla_breach_fire, NULL)) != HW_OK) {
        fprintf(stderr, "helpwired: cannot register the SLA timers: %s\n", hw_strerror(mrc));
        goto out;
    }
    if ((mrc = hw_agents_timers_register(app.timers, &app)) != HW_OK) {
        fprintf(stderr, "helpwired: cannot register the queues' timers: %s\n", hw_strerror(mrc));
        goto out;
    }
    if ((mrc = hw_timers_start(app.timers)) != HW_OK) {
        fprintf(stderr, "helpwired: cannot start the timer thread: %s\n", hw_strerror(mrc));
        goto out;
    }
    if (cfg.ticket_numbers_from > 0 && !hw_store_is_leader(store)) {
        hw_log_event(log, HW_LOG_INFO, "ticket_numbers",
                     "from=%lld applied=false reason=\"not the leader of the replicas: the leader applies it\"",
                     (long long)cfg.ticket_numbers_from);
    } else if (cfg.ticket_numbers_from > 0) {
        uint64_t next;
        if ((mrc = hw_tickets_number_floor(store, (uint64_t)cfg.ticket_numbers_from, &next)) != HW_OK) {
            fprintf(stderr, "helpwired: --ticket-numbers-from: %s\n", hw_strerror(mrc));
            goto out;
        }
        hw_log_event(log, HW_LOG_INFO, "ticket_numbers", "next=%llu", (unsigned long long)next);
    }
    {
        hw_retention_options ro = {.store = store,
                                   .conversations = 1,
                                   .log = log,
                                   .clock = app.clock,
                                   .dedupe_retention_ms = cfg.dedupe_retention_hours * 3600 * 1000,
                                   .failed_retention_ms = cfg.failed_retention_days * 24 * 3600 * 1000,
                                   .events_retention_ms = cfg.watch_history_hours * 3600 * 1000,
                                   .events_max_keep = (uint64_t)cfg.watch_history_max_events,
                                   .audit_retention_ms = cfg.audit_retention_days * 24 * 3600 * 1000,
                                   .unused_attachments_ms = 24 * 3600 * 1000};
        if ((mrc = hw_retention_start(&ro, &retention)) != HW_OK) {
            fprintf(stderr, "helpwired: cannot start the retention sweep: %s\n", hw_strerror(mrc));
            goto out;
        }
    }
    hw_status ist = {0};
    if (hw_index_create(&index, NULL, &ist) != HW_OK) {
        fprintf(stderr, "helpwired: cannot create the search index: %s\n", ist.msg);
        goto out;
    }
    app.index = index;
    if (hw_reflection_create(&app.reflection, err, sizeof err) != 0) {
        fprintf(stderr, "helpwired: %s\n", err);
        goto out;
    }
    struct timespec b0, b1;
    clock_gettime(CLOCK_MONOTONIC, &b0);
    uint64_t docs = 0;
    if (hw_knowledge_build_index(&app, &docs, err, sizeof err) != HW_OK) {
        fprintf(stderr, "helpwired: %s\n", err);
        goto out;
    }
    clock_gettime(CLOCK_MONOTONIC, &b1);
    hw_log_event(log, HW_LOG_INFO, "index_built", "docs=%llu ms=%.1f", (unsigned long long)docs,
                 (double)(b1.tv_sec - b0.tv_sec) * 1e3 + (double)(b1.tv_nsec - b0.tv_nsec) / 1e6);
    /* The synonym sets: a failure to apply them leaves search without
     * synonyms (logged), not the server down; the next change reloads. */
    int src = hw_synonyms_create(&synonyms, &app);
    if (src != HW_OK) {
        fprintf(stderr, "helpwired: cannot set up the synonym sets: %s\n", hw_strerror(src));
        goto out;
    }
    app.synonyms = synonyms;
    size_t n_synonym_sets = 0;
    if (hw_synonyms_load(synonyms, &n_synonym_sets, err, sizeof err) != HW_OK) {
        char q[600];
        hw_log_event(log, HW_LOG_ERROR, "synonyms_not_applied", "detail=%s", hw_log_quote(err, q, sizeof q));
    } else {
        hw_log_event(log, HW_LOG_INFO, "synonyms_loaded", "sets=%zu", n_synonym_sets);
    }
    if (hw_indexer_start(index, &indexer) != HW_OK) {
        fprintf(stderr, "helpwired: cannot start the indexer thread\n");
        goto out;
    }
    app.indexer = indexer;
    hw_notes_start(notes); /* the hubs and the indexer exist: other replicas' effects run */

    int threads = cfg.threads > 0 ? (int)cfg.threads : default_threads();
    hw_metrics_method mrows[256];
    for (size_t i = 0; i < n_methods && i < 256; i++)
        mrows[i] = (hw_metrics_method){
            methods[i].path,
            methods[i].client_streaming
                ? (methods[i].server_streaming ? HW_RPC_BIDI_STREAM : HW_RPC_CLIENT_STREAM)
                : (methods[i].server_streaming ? HW_RPC_SERVER_STREAM : HW_RPC_UNARY),
        };
    metrics = hw_metrics_create_server(mrows, n_methods < 256 ? n_methods : 256, threads);
    if (!metrics) {
        fprintf(stderr, "helpwired: out of memory\n");
        goto out;
    }
    if (cfg.tls_cert && (!(tls_cert = read_pem("--tls-cert", cfg.tls_cert, err, sizeof err)) ||
                         !(tls_key = read_pem("--tls-key", cfg.tls_key, err, sizeof err)) ||
                         (cfg.tls_client_ca &&
                          !(tls_ca = read_pem("--tls-client-ca", cfg.tls_client_ca, err, sizeof err))))) {
        fprintf(stderr, "helpwired: %s\n", err);
        goto out;
    }

    app.workers = calloc((size_t)threads, sizeof *app.workers);
    app.n_workers = threads;
    if (!app.workers) {
        fprintf(stderr, "helpwired: out of memory\n");
        goto out;
    }
    /* With a gRPC-Web listener, the server also listens on a private
     * abstract unix socket (plaintext, never printed) that the gateway's
     * calls come through; it is the last plaintext address. */
    const char *listen[HW_CONFIG_MAX_LISTEN + 1];
    size_t n_listen = cfg.n_listen;
    char private_addr[96];
    memcpy(listen, cfg.listen, cfg.n_listen * sizeof *listen);
    if (cfg.grpc_web_listen.n) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        snprintf(private_addr, sizeof private_addr, "unix-abstract:helpwire-grpc-web-%ld-%lx", (long)getpid(),
                 (unsigned long)now.tv_nsec ^ (unsigned long)now.tv_sec);
        listen[n_listen++] = private_addr;
    }
    hw_net_options no = {
        .listen = listen,
        .n_listen = n_listen,
        .tls_listen = cfg.tls_listen,
        .n_tls_listen = cfg.n_tls_listen,
        .tls_cert_pem = tls_cert,
        .tls_key_pem = tls_key,
        .tls_client_ca_pem = tls_ca,
        .max_in_flight = (int)cfg.max_in_flight,
        .latency_target_us = (int)cfg.latency_target_us,
        .metrics = metrics,
        .threads = threads,
        .calls_per_method = (int)cfg.calls_per_method,
        .max_message_bytes = (int)cfg.max_message_bytes,
        .max_concurrent_streams = (int)cfg.max_concurrent_streams,
        .keepalive_time_ms = (int)cfg.keepalive_time_ms,
        .keepalive_timeout_ms = (int)cfg.keepalive_timeout_ms,
        .min_ping_interval_ms = (int)cfg.min_ping_interval_ms,
        .methods = methods,
        .n_methods = n_methods,
        .app = &app,
        .log = log,
        .worker_start = worker_start,
        .authorize = hw_auth_authorize,
        .worker_stop = worker_stop,
        .cluster = cluster ? hw_cluster_net_hooks() : NULL,
    };
    if (hw_net_create(&net, &no, err, sizeof err) != 0) {
        fprintf(stderr, "helpwired: %s\n", err);
        goto out;
    }
    app.net = net;
    app.grpc_address = hw_net_bound_address(net, 0);
    hw_metrics_set_in_flight(metrics, in_flight_of, net);
    hw_metrics_add_collector(metrics, collect_store, &app);
    hw_metrics_add_collector(metrics, collect_admission, net);
    hw_metrics_add_collector(metrics, hw_signals_collect, app.signals);
    if (cluster)
        hw_metrics_add_collector(metrics, hw_cluster_collect_metrics, cluster);
    if (retention)
        hw_metrics_add_collector(metrics, collect_retention, retention);
    dm.app = &app;
    if (hw_store_reader_create(store, &dm.reader) != HW_OK)
        hw_log_event(log, HW_LOG_WARN, "metrics_reader_failed", "effect=no_outbox_backlog_metric");
    hw_metrics_add_collector(metrics, collect_domain, &dm);
    if (cfg.metrics_addr) {
        int port;
        if (hw_metrics_listen(metrics, cfg.metrics_addr, &port, err, sizeof err) != 0) {
            fprintf(stderr, "helpwired: %s\n", err);
            goto out;
        }
        const char *colon = strrchr(cfg.metrics_addr, ':');
        int hostlen = (int)(colon - cfg.metrics_addr);
        const char *host = hostlen ? cfg.metrics_addr : "0.0.0.0";
        if (!hostlen)
            hostlen = 7;
        printf("helpwired metrics on http://%.*s:%d/metrics\n", hostlen, host, port);
        hw_log_event(log, HW_LOG_INFO, "metrics", "addr=%.*s:%d", hostlen, host, port);
    }
    if (hw_net_start(net, err, sizeof err) != 0) {
        fprintf(stderr, "helpwired: %s\n", err);
        goto out;
    }
    hw_health_set(health, NULL, HW_HEALTH_SERVING);
    if (cluster && hw_cluster_start(cluster, hw_net_bound_address(net, 0), err, sizeof err) != 0) {
        fprintf(stderr, "helpwired: %s\n", err);
        goto out;
    }
    if (cfg.grpc_web_listen.n) {
        hw_grpc_web_options wo = {
            .listen = cfg.grpc_web_listen.v,
            .n_listen = cfg.grpc_web_listen.n,
            .cors_origins = cfg.grpc_web_cors_origin.v,
            .n_cors_origins = cfg.grpc_web_cors_origin.n,
            .target = private_addr,
            .max_message_bytes = (int)cfg.max_message_bytes,
            .log = log,
        };
        if (hw_grpc_web_start(&web, &wo, err, sizeof err) != 0) {
            fprintf(stderr, "helpwired: --grpc-web-listen: %s\n", err);
            goto out;
        }
        for (size_t i = 0; hw_grpc_web_bound_address(web, i); i++) {
            hw_log_event(log, HW_LOG_INFO, "grpc_web_listening", "addr=%s cors_origins=%zu",
                         hw_grpc_web_bound_address(web, i), cfg.grpc_web_cors_origin.n);
            printf("helpwired grpc-web on http://%s\n", hw_grpc_web_bound_address(web, i));
        }
    }
    for (size_t i = 0; i < cfg.n_listen + cfg.n_tls_listen; i++) {
        /* the private address sits between the plaintext and TLS ones */
        const char *addr = hw_net_bound_address(net, i < cfg.n_listen ? i : i + (n_listen - cfg.n_listen));
        bool tls = i >= cfg.n_listen;
        hw_log_event(log, HW_LOG_INFO, "listening", "addr=%s tls=%s threads=%d data=%s", addr,
                     tls ? "true" : "false", threads, cfg.data_dir);
        printf("helpwired listening on %s%s\n", addr, tls ? " (tls)" : "");
    }
    if (cfg.demo)
        printf("try: HELPWIRE_TOKEN=<the bridge token above> /usr/bin/python3 tests/integration/hwcall.py %s "
               "helpwire.v1.Router/Route '{\"channel\":\"CHANNEL_TELEGRAM\",\"channelUserId\":\"42\","
               "\"displayName\":\"Wang\",\"text\":\"如何重置密码\",\"messageId\":\"1\"}'\n",
               hw_net_bound_address(net, 0));
    else
        printf("try: /usr/bin/python3 tests/integration/hwcall.py %s grpc.health.v1.Health/Check '{}'\n",
               hw_net_bound_address(net, 0));
    fflush(stdout);

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0) {
    }
    hw_log_event(log, HW_LOG_INFO, "draining", "signal=%s in_flight=%lld grace_ms=%lld timeout_ms=%lld",
                 sig == SIGTERM ? "SIGTERM" : "SIGINT", (long long)hw_net_calls_in_flight(net),
                 (long long)cfg.drain_grace_ms, (long long)cfg.drain_timeout_ms);
    hw_net_begin_drain(net);
    hw_health_set(health, NULL, HW_HEALTH_NOT_SERVING);
    if (cfg.drain_grace_ms > 0) {
        struct timespec ts = {cfg.drain_grace_ms / 1000, (cfg.drain_grace_ms % 1000) * 1000000};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
    }
    cancelled = hw_net_shutdown(net, cfg.drain_timeout_ms);
    /* Every call through the gateway ended with the server's drain (open
     * streams with UNAVAILABLE): their answers are written out, then its
     * connections close. */
    hw_grpc_web_stop(web, 2000);
    web = NULL;
    rc = 0;
out:
    /* Order matters: the listeners and every call first (shut down above,
     * then the gRPC-Web gateway, whose calls the drain ended),
     * then the metrics endpoint (its scrapes read the server and the store),
     * then the server, what else reads the store from other threads
     * (notifier, outbox redelivery), then the indexer (it answered the last
     * knowledge calls during the shutdown; what it still holds it applies
     * before it returns), the index and the store itself. */
    /* A replica's raft stops first (no entry reaches the store any more,
     * its watch thread is joined) and no note runs from here on: before
     * the server, the hubs and the indexer the notes reach go. */
    hw_grpc_web_stop(web, 0); /* a failed start: before the server it calls */
    hw_cluster_close(cluster);
    if (store)
        hw_store_set_note_handler(store, NULL, NULL);
    hw_metrics_destroy(metrics);
    hw_watch_stop(app.watch); /* resumed watches catching up read the store */
    hw_net_destroy(net);
    hw_store_reader_destroy(dm.reader);
    hw_retention_stop(retention);
    hw_timers_destroy(app.timers); /* its handlers write and queue alerts */
    app.timers = NULL;
    hw_notifier_destroy(notifier);
    hw_webhook_keys_free(webhook_keys); /* after the notifier that signs with them */
    hw_outbox_destroy(outbox);
    if (indexer && rc == 0) { /* a failed start ends with its error line */
        hw_indexer_stats is;
        hw_indexer_stats_get(indexer, &is);
        hw_log_event(log, HW_LOG_INFO, "indexer_stopping", "changes=%llu batches=%llu queued=%llu",
                     (unsigned long long)is.changes, (unsigned long long)is.batches,
                     (unsigned long long)is.queued);
    }
    hw_indexer_stop(indexer);
    hw_synonyms_destroy(synonyms); /* no reload is queued any more */
    hw_index_destroy(index);
    hw_notes_destroy(notes);
    hw_store_close(store);
    hw_cluster_free(cluster);
    if (rc == 0)
        hw_log_event(log, HW_LOG_INFO, "stopped", "cancelled_calls=%s store=closed",
                     cancelled ? "true" : "false");
    hw_watch_destroy(app.watch);
    hw_hours_cache_destroy(app.hours_cache);
    hw_reflection_destroy(app.reflection);
    free(app.workers);
    free(tls_cert);
    free(tls_key);
    free(tls_ca);
    hw_health_destroy(health);
    hw_clock_destroy(app.clock);
    hw_route_limits_destroy(app.route_limits);
    hw_signals_destroy(app.signals);
    hw_grpc_runtime_log_to(NULL);
    hw_log_destroy(log);
    hw_config_free(&cfg);
    return rc;
}
