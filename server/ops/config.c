/*
 * config: table-driven parsing of flags and `name = value` files. Each
 * entry names the field by offset, so adding a setting is one table line
 * plus its field in hw_config.
 */
#include "server/ops/config.h"

#include "server/base/log.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

typedef enum { OPT_STRING, OPT_INT, OPT_BOOL, OPT_LISTEN, OPT_TLS_LISTEN, OPT_LIST } opt_type;

typedef struct {
    const char *name;
    opt_type type;
    size_t offset;
    int64_t min, max;
    const char *arg;
    const char *help;
} opt_def;

#define OFF(f) offsetof(hw_config, f)

static const opt_def options[] = {
    {"listen", OPT_LISTEN, OFF(listen), 0, 0, "ADDR",
     "Address to serve on; repeatable. host:port, [::]:port, or unix:/path. Port 0 picks a free "
     "port (the bound address is logged). Default 127.0.0.1:50051."},
    {"data", OPT_STRING, OFF(data_dir), 0, 0, "DIR",
     "Directory of the LMDB store; created if missing. Required."},
    {"threads", OPT_INT, OFF(threads), 0, 256, "N",
     "Worker threads, one completion queue each. Default: cores."},
    {"demo", OPT_BOOL, OFF(demo), 0, 0, NULL,
     "Seed the demo help center, skills and agents into an empty store."},
    {"config", OPT_STRING, OFF(config_file), 0, 0, "FILE",
     "Read `name = value` settings from FILE; flags win."},
    {"max-message-bytes", OPT_INT, OFF(max_message_bytes), 1024, 64 << 20, "N",
     "Largest request or reply message; larger requests get RESOURCE_EXHAUSTED. Default 4194304."},
    {"max-concurrent-streams", OPT_INT, OFF(max_concurrent_streams), 1, 1 << 20, "N",
     "Concurrent calls per HTTP/2 connection. Default 1000."},
    {"keepalive-time-ms", OPT_INT, OFF(keepalive_time_ms), 1000, INT32_MAX, "MS",
     "Ping a connection idle this long. Default 7200000 (2 h)."},
    {"keepalive-timeout-ms", OPT_INT, OFF(keepalive_timeout_ms), 100, INT32_MAX, "MS",
     "Close a connection whose ping is not answered in this time. Default 20000."},
    {"min-client-ping-interval-ms", OPT_INT, OFF(min_ping_interval_ms), 1000, INT32_MAX, "MS",
     "Clients pinging more often than this are disconnected. Default 60000."},
    {"calls-per-method", OPT_INT, OFF(calls_per_method), 1, 4096, "N",
     "Calls kept pre-requested per method and worker. Default 32."},
    {"drain-timeout-ms", OPT_INT, OFF(drain_timeout_ms), 0, 3600000, "MS",
     "On SIGTERM, how long in-flight calls may take before they are cancelled. Default 10000."},
    {"drain-grace-ms", OPT_INT, OFF(drain_grace_ms), 0, 600000, "MS",
     "On SIGTERM, how long health Check and Watch answer NOT_SERVING (other new calls get "
     "UNAVAILABLE) before the "
     "listeners close. Default 0."},
    {"max-in-flight", OPT_INT, OFF(max_in_flight), 0, 1 << 24, "N",
     "Calls handled at once; beyond it new calls get RESOURCE_EXHAUSTED at once (health checks are "
     "exempt). 0 = unbounded. Default 4096."},
    {"dedupe-retention-hours", OPT_INT, OFF(dedupe_retention_hours), 0, 87600, "H",
     "How long Route remembers a (channel, message_id) to answer a resent message with the first "
     "reply; older records are swept away in the background. 0 = forever. Default 168 (7 days)."},
    {"failed-retention-days", OPT_INT, OFF(failed_retention_days), 0, 36500, "D",
     "How long the outbox's failed list (ListFailed) keeps a message a channel refused for good; "
     "older entries are swept away in the background. 0 = forever. Default 30."},
    {"watch-history-hours", OPT_INT, OFF(watch_history_hours), 0, 87600, "H",
     "How long the event log behind resumable WatchTickets (WatchTicketsRequest.after) keeps an "
     "event; older ones are swept away in the background and a cursor before them gets "
     "OUT_OF_RANGE. 0 = forever. Default 168 (7 days)."},
    {"watch-history-max-events", OPT_INT, OFF(watch_history_max_events), 0, (int64_t)1 << 40, "N",
     "At most this many of the newest events stay in that log (older ones are swept away like "
     "expired ones). 0 = no limit. Default 0."},
    {"ticket-numbers-from", OPT_INT, OFF(ticket_numbers_from), 0, (int64_t)1 << 53, "N",
     "Make the next ticket number at least N (never lower than the store's own): after restoring a "
     "backup, pass one more than the highest number customers may have seen. Default: off."},
    {"latency-target-us", OPT_INT, OFF(latency_target_us), 0, 60000000, "US",
     "Adaptive admission: unary calls are let in under a limit (at most --max-in-flight) that "
     "follows their mean latency, cut when it is above US microseconds and grown while calls are "
     "refused under it; beyond the limit RESOURCE_EXHAUSTED at once. 0 = off (default)."},
    {"store-page-census", OPT_INT, OFF(store_page_census), 0, 1 << 30, "N",
     "A measuring aid: count the distinct leaf pages each write group dirties, per database, and "
     "every N groups write the totals per request to stderr (\"store census: ...\"). Costs a read "
     "of every record written. 0 = off (default)."},
    {"metrics", OPT_STRING, OFF(metrics_addr), 0, 0, "ADDR",
     "Serve Prometheus metrics at http://ADDR/metrics: host:port, [v6]:port or :port; a host name "
     "serves every address it stands for. Default: off."},
    {"grpc-web-listen", OPT_LIST, OFF(grpc_web_listen), 0, 0, "ADDR",
     "Serve gRPC-Web (browsers; HTTP/1.1) on ADDR: host:port, [v6]:port or :port; repeatable. "
     "Calls go through helpwired's own gRPC server (a private socket), with the same tokens, "
     "roles and limits. Default: off."},
    {"grpc-web-cors-origin", OPT_LIST, OFF(grpc_web_cors_origin), 0, 0, "ORIGIN",
     "An Origin (https://app.example.com) whose pages may call the gRPC-Web listener "
     "(CORS); repeatable; * allows any. Default: none (same-origin pages only)."},
    {"tls-listen", OPT_TLS_LISTEN, OFF(tls_listen), 0, 0, "ADDR",
     "Address to serve TLS on (needs --tls-cert and --tls-key); repeatable. Plain --listen "
     "addresses stay plaintext, e.g. for a mesh sidecar on loopback."},
    {"tls-cert", OPT_STRING, OFF(tls_cert), 0, 0, "FILE", "Server certificate chain (PEM)."},
    {"tls-key", OPT_STRING, OFF(tls_key), 0, 0, "FILE", "Server private key (PEM)."},
    {"tls-client-ca", OPT_STRING, OFF(tls_client_ca), 0, 0, "FILE",
     "CA bundle (PEM); TLS clients must present a certificate it signed (mutual TLS)."},
    {"answer-threshold", OPT_STRING, OFF(answer_threshold), 0, 0, "X",
     "Confidence in (0, 1] an FAQ or article answer needs to be sent as an auto-reply instead of "
     "opening a ticket. Default 0.88: with the calibrated confidence, wrong answers stay at or below 1% of the questions on the development half of the evaluation set (bench/answers), half the 2% goal, the margin questions not seen there need."},
    {"route-hits", OPT_INT, OFF(route_hits), 1, 5, "N",
     "Knowledge hits a Route reply lists for the frontend, best first (1 to 5). Default 3."},
    {"sender-rate", OPT_INT, OFF(sender_rate), 0, 60000000, "PER_MIN",
     "Route: messages one sender (channel and channel user id) may send per minute once its burst "
     "is spent; beyond it RESOURCE_EXHAUSTED with reason RATE_LIMITED and RetryInfo (retries of a "
     "routed message are exempt). Counted per node. 0 = off. Default 30."},
    {"sender-burst", OPT_INT, OFF(sender_burst), 0, 1000000, "N",
     "Route: messages one sender may send at once before --sender-rate applies. Default 20."},
    {"new-customers-rate", OPT_INT, OFF(new_customers_rate), 0, 60000000, "PER_MIN",
     "Route: messages per minute and channel from senders without a customer yet (each would create "
     "one) once the burst is spent; beyond it RESOURCE_EXHAUSTED (RATE_LIMITED). 0 = off. Default "
     "600."},
    {"new-customers-burst", OPT_INT, OFF(new_customers_burst), 0, 1000000, "N",
     "Route: new customers a channel may bring at once before --new-customers-rate applies. Default "
     "200."},
    {"survey-base-url", OPT_STRING, OFF(survey_base_url), 0, 0, "URL",
     "Survey links are this URL followed by the survey token. Default http://127.0.0.1:8080/survey/."},
    {"survey-ttl-hours", OPT_INT, OFF(survey_ttl_hours), 1, 24 * 365, "H",
     "A survey can be answered for this long after it is sent. Default 168 (7 days)."},
    {"whatsapp-template", OPT_STRING, OFF(whatsapp_template), 0, 0, "NAME[:LANG]",
     "WhatsApp lets a business write freely only within 24 hours of the customer's last message. "
     "An agent's reply after that is sent as this approved message template (its body's {{1}} takes "
     "the reply's text), in language LANG (default en), which re-opens the conversation when the "
     "customer answers; AddMessageReply.window tells the agent. NAME: a-z, 0-9 and _, at most 512. "
     "Default: none (such replies are refused with FAILED_PRECONDITION)."},
    {"webhook-url", OPT_STRING, OFF(webhook_url), 0, 0, "URL",
     "Supervisor webhook: escalations are POSTed here as JSON. Default: none (alerts stay queued)."},
    {"webhook-secret-file", OPT_STRING, OFF(webhook_secret_file), 0, 0, "FILE",
     "Sign every webhook POST (helpwire-signature: HMAC-SHA256) with the secret on FILE's first line; "
     "a second line, the previous secret while rotating, adds a second signature. FILE must not be "
     "readable by group or others. Read at start: restart to rotate. Default: none (unsigned, warned)."},
    {"alert-retention-days", OPT_INT, OFF(alert_retention_days), 0, 36500, "D",
     "Supervisor alerts not delivered this long after they were raised (no --webhook-url, or a "
     "webhook that keeps failing) are dropped from the queue and counted in "
     "helpwire_notifier_alerts_expired_total. 0 = keep forever. Default 7."},
    {"audit-retention-days", OPT_INT, OFF(audit_retention_days), 0, 36500, "D",
     "How long the audit log (Admin.ListAuditEvents) keeps an entry; older ones are swept away in the "
     "background, oldest first, and counted in helpwire_audit_expired_total. 0 = keep forever "
     "(default)."},
    {"unassigned-alert-after-ms", OPT_INT, OFF(unassigned_alert_after_ms), 1000, (int64_t)1 << 40, "MS",
     "A ticket waiting unassigned this long raises an UNASSIGNABLE alert (history event, supervisor "
     "webhook, metric), once per wait; a skill's unassigned_alert_after_s overrides it. Default "
     "600000 (10 minutes)."},
    {"reassign-grace-ms", OPT_INT, OFF(reassign_grace_ms), 0, (int64_t)1 << 40, "MS",
     "When an agent goes away or offline and is still not online this long after, its open tickets "
     "are reassigned to others (or wait). Default 300000 (5 minutes)."},
    {"attachment-max-bytes", OPT_INT, OFF(attachment_max_bytes), 1, (int64_t)1 << 30, "N",
     "Largest file CommitAttachment accepts (the sum of its pieces); larger ones get "
     "RESOURCE_EXHAUSTED. Default 20971520 (20 MiB)."},
    {"bootstrap-token-file", OPT_STRING, OFF(bootstrap_token_file), 0, 0, "FILE",
     "When the store has no API token yet, create an admin token and write it to FILE (mode 0600; "
     "an existing FILE is left alone). Every RPC but health needs a token."},
    {"clock-file", OPT_STRING, OFF(clock_file), 0, 0, "FILE",
     "For tests: read the time of day from FILE (milliseconds since the epoch, decimal; re-read when "
     "it changes) instead of the system clock. Stored timestamps, business hours and timers follow "
     "it. Default: the system clock."},
    {"cluster-id", OPT_INT, OFF(cluster_id), 0, (int64_t)1 << 53, "N",
     "Run as replica N (>= 1) of a replicated helpwired (raft): writes commit on a majority of the "
     "replicas, any replica serves reads, writes sent to one that does not lead are forwarded. "
     "Needs --cluster-raft. Default: a single node."},
    {"cluster-raft", OPT_STRING, OFF(cluster_raft), 0, 0, "HOST:PORT",
     "Where this replica listens for the other replicas' raft traffic."},
    {"cluster-advertise", OPT_STRING, OFF(cluster_advertise), 0, 0, "HOST:PORT",
     "The gRPC address other replicas forward calls to. Default: the first --listen address as "
     "bound."},
    {"cluster-peers", OPT_STRING, OFF(cluster_peers), 0, 0, "LIST",
     "A new cluster's first members, the same list on each: ID=RAFT_HOST:PORT@GRPC_HOST:PORT,... "
     "(this replica among them). Used once, when the raft directory is empty; omit it on a replica "
     "that joins a running cluster (helpwire cluster add)."},
    {"cluster-join", OPT_STRING, OFF(cluster_join), 0, 0, "LIST",
     "For a replica joining a running cluster: gRPC addresses (HOST:PORT,...) of members it can "
     "fetch a copy of the store from before the log reaches it."},
    {"cluster-dir", OPT_STRING, OFF(cluster_dir), 0, 0, "DIR",
     "The raft log and snapshots. Default: DATA/raft."},
    {"cluster-token-file", OPT_STRING, OFF(cluster_token_file), 0, 0, "FILE",
     "An admin token, read when this replica must fetch a copy of a peer's store (a new replica, "
     "or one away longer than the log is kept)."},
    {"cluster-election-ms", OPT_INT, OFF(cluster_election_ms), 0, 60000, "MS",
     "Raft election timeout (randomised between MS and 2*MS): a lost leader is replaced within about "
     "two of these. Default 500."},
    {"cluster-heartbeat-ms", OPT_INT, OFF(cluster_heartbeat_ms), 0, 60000, "MS",
     "Raft heartbeat interval of the leader. Default 50."},
    {"cluster-snapshot-entries", OPT_INT, OFF(cluster_snapshot_entries), 0, 1 << 30, "N",
     "Raft entries between snapshots, after which the log is truncated (keeping a quarter of N). "
     "Default 8192."},
    {"log-level", OPT_STRING, OFF(log_level), 0, 0, "LEVEL", "debug, info, warn or error. Default info."},
    {"access-log", OPT_BOOL, OFF(access_log), 0, 0, NULL,
     "Log one line per RPC: method, status, microseconds."},
};

#define N_OPTIONS (sizeof options / sizeof options[0])

void hw_config_defaults(hw_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->max_message_bytes = 4 << 20;
    cfg->max_concurrent_streams = 1000;
    cfg->keepalive_time_ms = 7200000;
    cfg->keepalive_timeout_ms = 20000;
    cfg->min_ping_interval_ms = 60000;
    cfg->calls_per_method = 32;
    cfg->drain_timeout_ms = 10000;
    cfg->max_in_flight = 4096;
    cfg->dedupe_retention_hours = 168;
    cfg->failed_retention_days = 30;
    cfg->watch_history_hours = 168;
    cfg->alert_retention_days = 7;
    cfg->answer_threshold = "0.88";
    cfg->survey_base_url = "http://127.0.0.1:8080/survey/";
    cfg->survey_ttl_hours = 168;
    cfg->route_hits = 3;
    cfg->sender_rate = 30;
    cfg->sender_burst = 20;
    cfg->new_customers_rate = 600;
    cfg->new_customers_burst = 200;
    cfg->unassigned_alert_after_ms = 600000;
    cfg->reassign_grace_ms = 300000;
    cfg->attachment_max_bytes = 20 << 20;
    cfg->cluster_election_ms = 500;
    cfg->cluster_heartbeat_ms = 50;
    cfg->log_level = "info";
}

void hw_config_usage(FILE *out)
{
    fprintf(out, "usage: helpwired --listen ADDR --data DIR [options]\n\n"
                 "helpwired serves the helpwire.v1 gRPC API. Options:\n\n");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const opt_def *o = &options[i];
        fprintf(out, "  --%s%s%s\n      %s\n", o->name, o->arg ? " " : "", o->arg ? o->arg : "", o->help);
    }
    fprintf(out, "  --help\n      Print this text.\n\n"
                 "Signals: SIGTERM or SIGINT drain the server (health NOT_SERVING, new calls\n"
                 "UNAVAILABLE, in-flight calls finish) and exit 0.\n");
}

/* A value of hw_config_effective's text, escaped. */
static void put_value(FILE *f, const char *v)
{
    for (; v && *v; v++) {
        if (*v == '\\')
            fputs("\\\\", f);
        else if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

static void put_values(FILE *f, const char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputc(',', f);
        put_value(f, v[i]);
    }
}

char *hw_config_effective(const hw_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const opt_def *o = &options[i];
        const char *field = (const char *)cfg + o->offset;
        fprintf(f, "%s=", o->name);
        switch (o->type) {
        case OPT_STRING:
            put_value(f, *(const char *const *)field);
            break;
        case OPT_INT:
            fprintf(f, "%lld", (long long)*(const int64_t *)field);
            break;
        case OPT_BOOL:
            fputs(*(const bool *)field ? "true" : "false", f);
            break;
        case OPT_LISTEN:
            put_values(f, cfg->listen, cfg->n_listen);
            break;
        case OPT_TLS_LISTEN:
            put_values(f, cfg->tls_listen, cfg->n_tls_listen);
            break;
        case OPT_LIST: {
            const hw_config_list *l = (const hw_config_list *)field;
            put_values(f, l->v, l->n);
            break;
        }
        }
        fputc('\n', f);
    }
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

static const opt_def *find_option(const char *name, size_t len)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (strlen(options[i].name) == len && strncmp(options[i].name, name, len) == 0)
            return &options[i];
    return NULL;
}

/* Stores value into the field of o. Returns 0 or -1 with err set. */
static int set_option(hw_config *cfg, const opt_def *o, const char *value, char *err, size_t errlen)
{
    char *field = (char *)cfg + o->offset;
    switch (o->type) {
    case OPT_STRING:
        if (!value || !*value) {
            snprintf(err, errlen, "--%s needs a value", o->name);
            return -1;
        }
        *(const char **)field = value;
        return 0;
    case OPT_LISTEN:
        if (!value || !*value) {
            snprintf(err, errlen, "--listen needs an address");
            return -1;
        }
        if (cfg->n_listen == HW_CONFIG_MAX_LISTEN) {
            snprintf(err, errlen, "--listen given more than %d times", HW_CONFIG_MAX_LISTEN);
            return -1;
        }
        cfg->listen[cfg->n_listen++] = value;
        return 0;
    case OPT_TLS_LISTEN:
        if (!value || !*value) {
            snprintf(err, errlen, "--tls-listen needs an address");
            return -1;
        }
        if (cfg->n_tls_listen == HW_CONFIG_MAX_LISTEN) {
            snprintf(err, errlen, "--tls-listen given more than %d times", HW_CONFIG_MAX_LISTEN);
            return -1;
        }
        cfg->tls_listen[cfg->n_tls_listen++] = value;
        return 0;
    case OPT_LIST: {
        hw_config_list *l = (hw_config_list *)field;
        if (!value || !*value) {
            snprintf(err, errlen, "--%s needs a value", o->name);
            return -1;
        }
        if (l->n == HW_CONFIG_MAX_LISTEN) {
            snprintf(err, errlen, "--%s given more than %d times", o->name, HW_CONFIG_MAX_LISTEN);
            return -1;
        }
        l->v[l->n++] = value;
        return 0;
    }
    case OPT_BOOL:
        if (value && strcmp(value, "true") != 0 && strcmp(value, "false") != 0) {
            snprintf(err, errlen, "--%s takes true or false, not '%s'", o->name, value);
            return -1;
        }
        *(bool *)field = !value || strcmp(value, "true") == 0;
        return 0;
    case OPT_INT: {
        if (!value || !*value) {
            snprintf(err, errlen, "--%s needs a number", o->name);
            return -1;
        }
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || *end || v < o->min || v > o->max) {
            snprintf(err, errlen, "--%s must be a whole number from %lld to %lld, not '%s'", o->name,
                     (long long)o->min, (long long)o->max, value);
            return -1;
        }
        *(int64_t *)field = v;
        return 0;
    }
    }
    return -1;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        *--e = '\0';
    return s;
}

static int load_file(hw_config *cfg, const char *path, char *err, size_t errlen)
{
    int rc = -1;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read config file %s: %s", path, strerror(errno));
        return -1;
    }
    if (fseek(f, 0, SEEK_END) != 0)
        goto io_error;
    long size = ftell(f);
    if (size < 0 || size > (1 << 20)) {
        snprintf(err, errlen, "config file %s is larger than 1 MiB", path);
        goto out;
    }
    rewind(f);
    cfg->file_text = malloc((size_t)size + 1);
    if (!cfg->file_text) {
        snprintf(err, errlen, "out of memory reading %s", path);
        goto out;
    }
    if (fread(cfg->file_text, 1, (size_t)size, f) != (size_t)size)
        goto io_error;
    cfg->file_text[size] = '\0';
    int lineno = 0;
    for (char *save = NULL, *line = strtok_r(cfg->file_text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *l = trim(line);
        if (!*l)
            continue;
        char *eq = strchr(l, '=');
        if (!eq) {
            snprintf(err, errlen, "%s:%d: expected `name = value`", path, lineno);
            goto out;
        }
        *eq = '\0';
        char *name = trim(l), *value = trim(eq + 1);
        const opt_def *o = find_option(name, strlen(name));
        if (!o || strcmp(name, "config") == 0) {
            snprintf(err, errlen, "%s:%d: unknown setting '%s'", path, lineno, name);
            goto out;
        }
        if (set_option(cfg, o, value, err, errlen) != 0)
            goto out;
    }
    rc = 0;
    goto out;
io_error:
    snprintf(err, errlen, "cannot read config file %s: %s", path, strerror(errno));
out:
    fclose(f);
    return rc;
}

int hw_config_parse(hw_config *cfg, int argc, char **argv, FILE *out, char *err, size_t errlen)
{
    /* The file first, so that flags override it. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            hw_config_usage(out);
            return 1;
        }
        const char *file = NULL;
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            file = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            file = argv[i] + 9;
        if (file && load_file(cfg, file, err, errlen) != 0)
            return -1;
    }
    bool flag_listen = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s' (see --help)", a);
            return -1;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const opt_def *o = find_option(name, len);
        if (!o) {
            snprintf(err, errlen, "unknown flag '%.*s' (see --help)", (int)(len + 2), a);
            return -1;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value && o->type != OPT_BOOL) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "--%s needs a value", o->name);
                return -1;
            }
            value = argv[++i];
        }
        if (o->type == OPT_LISTEN && !flag_listen) {
            /* Listen flags replace the file's list rather than adding to it. */
            flag_listen = true;
            cfg->n_listen = 0;
        }
        if (set_option(cfg, o, value, err, errlen) != 0)
            return -1;
    }
    if (!cfg->data_dir) {
        snprintf(err, errlen, "--data DIR is required (see --help)");
        return -1;
    }
    if (hw_log_level_parse(cfg->log_level) < 0) {
        snprintf(err, errlen, "--log-level must be debug, info, warn or error, not '%s'", cfg->log_level);
        return -1;
    }
    if (cfg->n_tls_listen && (!cfg->tls_cert || !cfg->tls_key)) {
        snprintf(err, errlen, "--tls-listen needs --tls-cert and --tls-key");
        return -1;
    }
    if ((cfg->tls_cert || cfg->tls_key || cfg->tls_client_ca) && !cfg->n_tls_listen) {
        snprintf(err, errlen, "--tls-cert, --tls-key and --tls-client-ca need a --tls-listen address");
        return -1;
    }
    if (cfg->grpc_web_cors_origin.n && !cfg->grpc_web_listen.n) {
        snprintf(err, errlen, "--grpc-web-cors-origin needs a --grpc-web-listen address");
        return -1;
    }
    if (cfg->n_listen == 0 && cfg->n_tls_listen == 0)
        cfg->listen[cfg->n_listen++] = "127.0.0.1:50051";
    return 0;
}

void hw_config_free(hw_config *cfg)
{
    free(cfg->file_text);
    cfg->file_text = NULL;
}
