/*
 * config: each bridge's settings from the environment and the command line,
 * described by one option table that also prints --help, so the help text
 * and the parser can never disagree. Environment values are read first;
 * flags given on the command line win. Secrets (tokens, app secrets) are
 * env-only options or read from a file named by a flag, never a flag value,
 * so they do not show up in `ps`; usage output never prints a value.
 *
 * Flags take `--name VALUE` or `--name=VALUE`; booleans take no value.
 * String results point into argv or the environment (not copied): they live
 * as long as the process.
 */
#ifndef BR_CONFIG_H
#define BR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* BR_OPT_PATH is a STRING that must start with '/' (a URL path);
 * BR_OPT_REQUIRED a STRING that must end up non-empty. */
typedef enum { BR_OPT_STRING, BR_OPT_INT, BR_OPT_BOOL, BR_OPT_PATH, BR_OPT_REQUIRED } br_opt_type;

typedef struct br_option {
    const char *flag; /* name without "--"; NULL for an environment-only setting */
    const char *env;  /* environment variable, or NULL */
    br_opt_type type;
    void *dst;           /* const char ** (STRING, PATH, REQUIRED), int * (INT), bool * (BOOL) */
    int min, max;        /* bounds of an INT */
    const char *metavar; /* e.g. "URL"; NULL for BOOL */
    const char *help;    /* one paragraph, including the default */
} br_option;

/* Settings every bridge shares: how to reach helpwired and how to behave
 * towards it. Filled by br_common_defaults, then by the table entries of
 * BR_COMMON_OPTIONS, then completed by br_common_finish. */
typedef struct br_common {
    const char *helpwire;        /* host:port of helpwired, or a list (channel.h) */
    const char *token_env;       /* HELPWIRE_TOKEN */
    const char *token_file;      /* --token-file, wins over the environment */
    const char *tls_ca;          /* PEM roots; NULL means plaintext */
    const char *tls_server_name; /* TLS name override, for tests and IP targets */
    const char *log_level;
    int rpc_timeout_ms;
    int backoff_initial_ms;
    int backoff_max_ms;
    int redeliver_after_ms;
    int max_retry_age_ms; /* an inbound message failing longer is a dead letter */
    int delivery_workers;            /* outbox delivery workers */
    int max_delivery_age_ms;         /* an outbound message failing longer is FAILED */
    int max_in_flight_per_recipient; /* asked of helpwired's Subscribe */
    const char *metrics;  /* address of the Prometheus endpoint, NULL for none */
    char *token;          /* the bearer token (owned, from file or env), NULL for none */
} br_common;

/* The shared table entries; expand inside a bridge's br_option array. */
#define BR_COMMON_OPTIONS(c)                                                                                 \
    {"helpwire",                                                                                             \
     "HELPWIRE_ADDR",                                                                                        \
     BR_OPT_STRING,                                                                                          \
     &(c)->helpwire,                                                                                         \
     0,                                                                                                      \
     0,                                                                                                      \
     "ADDR",                                                                                                 \
     "helpwired's gRPC address, host:port, or several replicas' IP addresses, comma-separated (the first " \
     "that answers is used; on UNAVAILABLE the retry goes to the next). Default 127.0.0.1:50051."},          \
        {NULL,                                                                                               \
         "HELPWIRE_TOKEN",                                                                                   \
         BR_OPT_STRING,                                                                                      \
         &(c)->token_env,                                                                                    \
         0,                                                                                                  \
         0,                                                                                                  \
         "TOKEN",                                                                                            \
         "Bearer token (role bridge) sent as `authorization: Bearer <token>` on every call."},               \
        {"token-file",                                                                                       \
         "HELPWIRE_TOKEN_FILE",                                                                              \
         BR_OPT_STRING,                                                                                      \
         &(c)->token_file,                                                                                   \
         0,                                                                                                  \
         0,                                                                                                  \
         "FILE",                                                                                             \
         "Read the bearer token from FILE instead of HELPWIRE_TOKEN."},                                      \
        {"tls-ca",                                                                                           \
         "HELPWIRE_TLS_CA",                                                                                  \
         BR_OPT_STRING,                                                                                      \
         &(c)->tls_ca,                                                                                       \
         0,                                                                                                  \
         0,                                                                                                  \
         "FILE",                                                                                             \
         "Talk TLS to helpwired, trusting the PEM roots in FILE. Default plaintext."},                       \
        {"tls-server-name",                                                                                  \
         NULL,                                                                                               \
         BR_OPT_STRING,                                                                                      \
         &(c)->tls_server_name,                                                                              \
         0,                                                                                                  \
         0,                                                                                                  \
         "NAME",                                                                                             \
         "Expect this name in helpwired's certificate instead of the host of --helpwire."},                  \
        {"rpc-timeout-ms",                                                                                   \
         NULL,                                                                                               \
         BR_OPT_INT,                                                                                         \
         &(c)->rpc_timeout_ms,                                                                               \
         100,                                                                                                \
         600000,                                                                                             \
         "MS",                                                                                               \
         "Deadline of each unary call to helpwired. Default 10000."},                                        \
        {"backoff-initial-ms",                                                                               \
         NULL,                                                                                               \
         BR_OPT_INT,                                                                                         \
         &(c)->backoff_initial_ms,                                                                           \
         10,                                                                                                 \
         600000,                                                                                             \
         "MS",                                                                                               \
         "First retry delay after a failure (doubling, with jitter). Default 250."},                         \
        {"backoff-max-ms",                                                                                   \
         NULL,                                                                                               \
         BR_OPT_INT,                                                                                         \
         &(c)->backoff_max_ms,                                                                               \
         10,                                                                                                 \
         3600000,                                                                                            \
         "MS",                                                                                               \
         "Longest retry delay. Default 30000."},                                                             \
        {"redeliver-after-ms",                                                                               \
         NULL,                                                                                               \
         BR_OPT_INT,                                                                                         \
         &(c)->redeliver_after_ms,                                                                           \
         1000,                                                                                               \
         3600000,                                                                                            \
         "MS",                                                                                               \
         "Ask helpwired to resend an outbox message not acknowledged within this time. Default 30000."},     \
        {"max-retry-age-ms",                                                                                 \
         "BRIDGE_MAX_RETRY_AGE_MS",                                                                          \
         BR_OPT_INT,                                                                                         \
         &(c)->max_retry_age_ms,                                                                             \
         0,                                                                                                  \
         86400000,                                                                                           \
         "MS",                                                                                               \
         "How long an inbound message that helpwired cannot take now (UNAVAILABLE, RESOURCE_EXHAUSTED, "     \
         "DEADLINE_EXCEEDED, ABORTED, CANCELLED) is retried, counted from its arrival; then it goes "        \
         "to the dead-letter "                                                                               \
         "file (<state-dir>/<bridge>.deadletter.jsonl) and the channel moves on. Any other status is a "     \
         "dead letter at once. Default 300000."},                                                            \
        {"delivery-workers",                                                                                 \
         NULL,                                                                                               \
         BR_OPT_INT,                                                                                         \
         &(c)->delivery_workers,                                                                             \
         1,                                                                                                  \
         64,                                                                                                 \
         "N",                                                                                                \
         "Outbox messages delivered at once, to different recipients (one recipient's messages go out one "  \
         "at a time, in order); retries take at most a quarter, first attempts go first. Default 32."},      \
        {"max-delivery-age-ms",                                                                              \
         NULL,                                                                                               \
         BR_OPT_INT,                                                                                         \
         &(c)->max_delivery_age_ms,                                                                          \
         1000,                                                                                               \
         INT32_MAX,                                                                                          \
         "MS",                                                                                               \
         "How long an outbox message the channel keeps refusing for now (rate limits, server errors) is "    \
         "retried, counted from when it was queued; then it is acknowledged as FAILED (\"gave up after N "   \
         "attempts in S s: <reason>\"). Default 86400000."},                                                 \
        {"max-in-flight-per-recipient",                                                                      \
         NULL,                                                                                               \
         BR_OPT_INT,                                                                                         \
         &(c)->max_in_flight_per_recipient,                                                                  \
         1,                                                                                                  \
         256,                                                                                                \
         "N",                                                                                                \
         "Unacknowledged outbox messages helpwired streams at once per recipient. Default 8."},              \
        {"metrics",                                                                                          \
         "BRIDGE_METRICS",                                                                                   \
         BR_OPT_STRING,                                                                                      \
         &(c)->metrics,                                                                                      \
         0,                                                                                                  \
         0,                                                                                                  \
         "ADDR",                                                                                             \
         "Serve Prometheus metrics (GET /metrics: Route calls by status, dead letters by reason, "          \
         "deliveries by result, the outbox lease, messages queued) on ADDR, host:port. Default off."},       \
    {                                                                                                        \
        "log-level", "BRIDGE_LOG_LEVEL", BR_OPT_STRING, &(c)->log_level, 0, 0, "LEVEL",                      \
            "debug, info, warn or error. Default info."                                                      \
    }

/* Results of br_config_parse. */
enum { BR_CONFIG_OK = 0, BR_CONFIG_HELP = 1, BR_CONFIG_ERROR = -1 };

/* Applies the environment, then argv[1..argc-1], to the destinations of
 * opts, then checks the REQUIRED ones in table order. Returns
 * BR_CONFIG_OK, BR_CONFIG_HELP for -h/--help, or BR_CONFIG_ERROR with a
 * message in err (unknown flag, missing value, a number that does not
 * parse or is out of bounds, a path without its leading '/', a stray
 * argument, "<--flag or ENV> is required"). */
int br_config_parse(const br_option *opts, size_t n, int argc, char **argv, char *err, size_t errlen);

/* Prints usage: prog, the about paragraph, then every flag and
 * environment variable with its help. Never prints current values. */
void br_config_usage(FILE *f, const char *prog, const char *about, const br_option *opts, size_t n);

/* The start of a bridge's main: br_config_parse, then for -h/--help the
 * usage on stdout (returns 0), for a bad command line "prog: reason" on
 * stderr (returns 2); returns -1 when main should go on. */
int br_config_main(const br_option *opts, size_t n, int argc, char **argv, const char *prog,
                   const char *about);

/* Sets the defaults named in BR_COMMON_OPTIONS' help. */
void br_common_defaults(br_common *c);

/* The intake spool's settings of a bridge that spools what it takes
 * (runtime.h's br_runtime_spool). Filled by br_spool_settings_defaults,
 * then by the table entries of BR_SPOOL_OPTIONS. */
typedef struct br_spool_settings {
    int max_entries;      /* --spool-max-entries: default 10000 */
    int max_bytes;        /* --spool-max-bytes: default 64 MiB */
    int drain_timeout_ms; /* --drain-timeout-ms: default 10000 */
} br_spool_settings;

/* The table entries of --spool-max-entries, --spool-max-bytes and
 * --drain-timeout-ms into the settings at s, with their bounds; the help
 * of each is the bridge's own (what a full spool answers depends on the
 * channel) and names the default above. */
/* clang-format off */
#define BR_SPOOL_OPTIONS(s, entries_help, bytes_help, drain_help)                                \
    {"spool-max-entries", NULL, BR_OPT_INT, &(s)->max_entries, 1, 10000000, "N", entries_help},  \
    {"spool-max-bytes", NULL, BR_OPT_INT, &(s)->max_bytes, 1024, 1 << 30, "BYTES", bytes_help},  \
    {"drain-timeout-ms", NULL, BR_OPT_INT, &(s)->drain_timeout_ms, 0, 3600000, "MS", drain_help}
/* clang-format on */

/* Sets the defaults named in br_spool_settings. */
void br_spool_settings_defaults(br_spool_settings *s);

/* After parsing: checks the log level and loads the token (from
 * token_file when set, else token_env) into c->token. Returns 0, or -1 with
 * err. Release with br_common_release. */
int br_common_finish(br_common *c, char *err, size_t errlen);

/* Frees what br_common_finish allocated (wiping the token). */
void br_common_release(br_common *c);

#endif
