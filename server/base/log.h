/*
 * log: one line per event on stderr, as key=value pairs a machine can parse
 * and a person can read:
 *   ts=2026-11-26T12:00:00.123Z level=info event=listening addr=127.0.0.1:50051
 * Values containing spaces, quotes or '=' must be passed through
 * hw_log_quote(). Lines are written with one write(2) so concurrent threads
 * never interleave within a line.
 *
 * A hw_log is created once in main and passed down; it is immutable after
 * creation, so every thread may use it without locking.
 */
#ifndef HW_LOG_H
#define HW_LOG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { HW_LOG_DEBUG = 0, HW_LOG_INFO, HW_LOG_WARN, HW_LOG_ERROR } hw_log_level;

typedef struct hw_log hw_log;

/* Creates a logger writing to file descriptor fd at min_level and above.
 * access_log enables hw_log_access lines. Returns NULL when out of memory. */
hw_log *hw_log_create(int fd, hw_log_level min_level, bool access_log);

void hw_log_destroy(hw_log *lg);

/* Parses "debug", "info", "warn" or "error"; returns -1 otherwise. */
int hw_log_level_parse(const char *s);

/* Whether lines of this level are written (to skip formatting costs). */
bool hw_log_enabled(const hw_log *lg, hw_log_level level);

/* Whether per-RPC access lines are on. */
bool hw_log_access_enabled(const hw_log *lg);

/* Writes "ts=… level=… event=<event> <fields>" where fields is a printf
 * format producing further key=value pairs (may be NULL). Thread-safe. A
 * line longer than 4 KiB is truncated. lg may be NULL (nothing is written). */
void hw_log_event(const hw_log *lg, hw_log_level level, const char *event, const char *fields, ...)
    __attribute__((format(printf, 4, 5)));

/* Quotes s for a log value when needed ("…" with \" and \\ escaped, control
 * bytes as \xNN) into buf of size n; returns buf. Truncates to fit. */
const char *hw_log_quote(const char *s, char *buf, size_t n);

#endif
