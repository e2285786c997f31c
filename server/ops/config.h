/*
 * config: helpwired's settings, from the command line and an optional
 * config file. One table lists every setting (name, type, default, limits,
 * help), so --help, the file parser and the flag parser cannot drift apart.
 * A config file holds `name = value` lines (the flag names without the
 * dashes; '#' starts a comment); flags given on the command line win.
 */
#ifndef HW_CONFIG_H
#define HW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define HW_CONFIG_MAX_LISTEN 16

/* A repeatable flag's values, in the order given. */
typedef struct hw_config_list {
    const char *v[HW_CONFIG_MAX_LISTEN];
    size_t n;
} hw_config_list;

typedef struct hw_config {
    const char *listen[HW_CONFIG_MAX_LISTEN]; /* --listen, repeatable */
    size_t n_listen;
    const char *data_dir;                         /* --data (required) */
    int64_t threads;                              /* --threads; 0 = number of cores */
    bool demo;                                    /* --demo: seed demo data on an empty store */
    const char *config_file;                      /* --config */
    int64_t max_message_bytes;                    /* --max-message-bytes */
    int64_t max_concurrent_streams;               /* --max-concurrent-streams, per connection */
    int64_t keepalive_time_ms;                    /* --keepalive-time-ms: server pings idle connections */
    int64_t keepalive_timeout_ms;                 /* --keepalive-timeout-ms */
    int64_t min_ping_interval_ms;                 /* --min-client-ping-interval-ms */
    int64_t calls_per_method;                     /* --calls-per-method: pre-requested per worker */
    int64_t drain_timeout_ms;                     /* --drain-timeout-ms */
    int64_t drain_grace_ms;                       /* --drain-grace-ms: NOT_SERVING before closing */
    int64_t max_in_flight;                        /* --max-in-flight: 0 = unbounded */
    int64_t latency_target_us;
    int64_t store_page_census; /* --store-page-census N: a measuring aid, 0 = off */                    /* --latency-target-us: 0 = fixed bound only */
    int64_t dedupe_retention_hours;               /* --dedupe-retention-hours: 0 = forever */
    int64_t failed_retention_days;                /* --failed-retention-days: 0 = forever */
    int64_t watch_history_hours;                  /* --watch-history-hours: 0 = forever */
    int64_t watch_history_max_events;             /* --watch-history-max-events: 0 = no limit */
    int64_t ticket_numbers_from;                  /* --ticket-numbers-from: 0 = as stored */
    const char *metrics_addr;                     /* --metrics */
    hw_config_list grpc_web_listen;               /* --grpc-web-listen, repeatable */
    hw_config_list grpc_web_cors_origin;          /* --grpc-web-cors-origin, repeatable */
    const char *tls_listen[HW_CONFIG_MAX_LISTEN]; /* --tls-listen, repeatable */
    size_t n_tls_listen;
    const char *tls_cert;             /* --tls-cert (PEM file) */
    const char *tls_key;              /* --tls-key (PEM file) */
    const char *tls_client_ca;        /* --tls-client-ca: require client certificates */
    const char *answer_threshold;     /* --answer-threshold, (0, 1] */
    const char *survey_base_url;      /* --survey-base-url */
    int64_t survey_ttl_hours;         /* --survey-ttl-hours */
    int64_t route_hits;               /* --route-hits, 1..5 */
    /* Route's limits, per minute (0 = off) and bursts: --sender-rate,
     * --sender-burst, --new-customers-rate, --new-customers-burst. */
    int64_t sender_rate, sender_burst, new_customers_rate, new_customers_burst;
    const char *whatsapp_template;    /* --whatsapp-template NAME[:LANG]; NULL = none */
    const char *webhook_url;          /* --webhook-url */
    const char *webhook_secret_file;  /* --webhook-secret-file */
    int64_t alert_retention_days;     /* --alert-retention-days: 0 = forever */
    int64_t audit_retention_days;     /* --audit-retention-days: 0 = forever */
    const char *bootstrap_token_file; /* --bootstrap-token-file */
    const char *clock_file;           /* --clock-file: tests' time of day; NULL = system clock */
    int64_t cluster_id;               /* --cluster-id: 0 = a single node */
    const char *cluster_raft;         /* --cluster-raft */
    const char *cluster_advertise;    /* --cluster-advertise */
    const char *cluster_peers;        /* --cluster-peers */
    const char *cluster_join;         /* --cluster-join */
    const char *cluster_dir;          /* --cluster-dir */
    const char *cluster_token_file;   /* --cluster-token-file */
    int64_t cluster_election_ms;      /* --cluster-election-ms */
    int64_t cluster_heartbeat_ms;     /* --cluster-heartbeat-ms */
    int64_t cluster_snapshot_entries; /* --cluster-snapshot-entries */
    const char *log_level;            /* --log-level */
    bool access_log;                  /* --access-log */
    /* Queues: --unassigned-alert-after-ms, --reassign-grace-ms. */
    int64_t unassigned_alert_after_ms;
    int64_t reassign_grace_ms;
    int64_t attachment_max_bytes; /* --attachment-max-bytes */
    /* Strings parsed from a config file live here (owned by the config). */
    char *file_text;
} hw_config;

/* Fills cfg with defaults. */
void hw_config_defaults(hw_config *cfg);

/* Parses argv (and the file named by --config, if any). Returns 0, 1 when
 * --help was printed to out, or -1 with one clear line in err (size errlen).
 * Pointers in cfg point into argv or cfg->file_text; free with
 * hw_config_free. */
int hw_config_parse(hw_config *cfg, int argc, char **argv, FILE *out, char *err, size_t errlen);

/* Frees what hw_config_parse allocated. */
void hw_config_free(hw_config *cfg);

/* The effective settings as text, one `name=value` line per setting in
 * the table's order (the flag names; a repeatable one's values joined with
 * ','; booleans true/false; numbers in decimal; an unset one empty; a
 * backslash and a newline in a value written as two backslashes and
 * backslash-n). Files appear by their
 * paths only (--tls-key, --bootstrap-token-file): nothing is read. For the
 * audit log's config.start entry (server/domain/audit.h).
 * @return malloc'd NUL-terminated text; NULL when out of memory. */
char *hw_config_effective(const hw_config *cfg);

/* Prints the usage text, one paragraph per setting. */
void hw_config_usage(FILE *out);

#endif
