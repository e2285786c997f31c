/*
 * log: structured logs of the bridges, one line per event on stderr as
 * key=value pairs:
 *   ts=2026-11-26T12:00:00.123Z level=info bridge=telegram event=routed chat=42
 * Each line is written with one write(2), so threads never interleave
 * within a line. A br_log is created in main, immutable afterwards, and
 * shared by every thread without locking.
 *
 * Secrets (bot tokens, bearer tokens, app secrets, survey tokens) must never
 * be passed to these functions; URLs that embed a secret (Telegram's
 * /bot<token>/ path) are never logged, only the API method name.
 */
#ifndef BR_LOG_H
#define BR_LOG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { BR_LOG_DEBUG = 0, BR_LOG_INFO, BR_LOG_WARN, BR_LOG_ERROR } br_log_level;

typedef struct br_log br_log;

/* Creates a logger for the bridge named bridge (copied) writing to fd at
 * min_level and above. Returns NULL when out of memory. */
br_log *br_log_create(int fd, const char *bridge, br_log_level min_level);

/* Frees lg; NULL is ignored. No thread may use lg afterwards. */
void br_log_destroy(br_log *lg);

/* Parses "debug", "info", "warn" or "error"; returns -1 otherwise. */
int br_log_level_parse(const char *s);

/* Whether lines of this level are written. lg may be NULL (false). */
bool br_log_enabled(const br_log *lg, br_log_level level);

/* Writes "ts=… level=… bridge=… event=<event> <fields>", fields being a
 * printf format of further key=value pairs (may be NULL). Lines beyond
 * 4 KiB are truncated. Thread-safe; lg may be NULL (nothing written). */
void br_log_event(const br_log *lg, br_log_level level, const char *event, const char *fields, ...)
    __attribute__((format(printf, 4, 5)));

/* Quotes s as a log value when it needs it ("…" with \" and \\ escaped and
 * control bytes as \xNN) into buf of n bytes (n >= 4), truncating to fit.
 * Returns buf. s may be NULL (written as ""). */
const char *br_log_quote(const char *s, char *buf, size_t n);

#endif
