/*
 * log: one line per event on stderr, as key=value pairs a machine can parse
 * and a person can read:
 *   ts=2026-11-26T12:00:00.123Z level=info event=listening addr=127.0.0.1:50051
 * The one logger of the project's programs: helpwired writes the line above;
 * a bridge's logger carries a fixed field, written on every line right
 * after level=:
 *   ts=2026-11-26T12:00:00.123Z level=info bridge=telegram event=routed chat=42
 * Values containing spaces, quotes or '=' must be passed through
 * hw_log_quote(). Lines are written with one write(2) so concurrent threads
 * never interleave within a line.
 *
 * A hw_log is created once in main and passed down; it is immutable after
 * creation, so every thread may use it without locking.
 *
 * The trace of the call a thread works for: a thread may name the W3C
 * trace id of the call it is handling (hw_log_set_trace); every line it
 * writes until it clears it ends with "trace=<32 hex digits>". This is a
 * per-thread variable (the one piece of thread-local state of the
 * project), set and cleared by the gRPC worker pool around each call's
 * events (server/net/net.c) and by the store's writer thread around a
 * call's write (server/domain/rpc.c), so that lines written deep in a
 * handler carry the trace without every function passing it down. It
 * belongs to a thread, not to a server: several servers in one process
 * (tests) do not see each other's, and a thread that sets it clears or
 * restores it when it is done with the call.
 *
 * Secrets (bearer tokens, bot tokens, app secrets, survey tokens) must
 * never be passed to these functions.
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

/* hw_log_create with a fixed field "<key>=<value>" on every line, right
 * after level= (a bridge: key "bridge", value "telegram"). key and value
 * are copied (value quoted when it needs it; together at most 127 bytes,
 * truncated beyond). key NULL: no field, as hw_log_create. Returns NULL
 * when out of memory. */
hw_log *hw_log_create_component(int fd, hw_log_level min_level, bool access_log, const char *key,
                                const char *value);

/* Frees lg; NULL is ignored. No thread may use lg afterwards. */
void hw_log_destroy(hw_log *lg);

/* Parses "debug", "info", "warn" or "error"; returns -1 otherwise (and for
 * NULL). */
int hw_log_level_parse(const char *s);

/* Whether lines of this level are written (to skip formatting costs). lg
 * may be NULL (false). */
bool hw_log_enabled(const hw_log *lg, hw_log_level level);

/* Whether per-RPC access lines are on. */
bool hw_log_access_enabled(const hw_log *lg);

/* Writes "ts=… level=… [<key>=<value>] event=<event> <fields> [trace=<id>]"
 * where fields is a printf format producing further key=value pairs (may
 * be NULL or ""), and trace= the thread's current trace (hw_log_set_trace).
 * Thread-safe. A line longer than 4 KiB is truncated. lg may be NULL
 * (nothing is written). */
void hw_log_event(const hw_log *lg, hw_log_level level, const char *event, const char *fields, ...)
    __attribute__((format(printf, 4, 5)));

/* The longest trace id hw_log_set_trace keeps (a W3C trace-id). */
#define HW_LOG_TRACE_MAX 32

/* Sets the calling thread's current trace id (copied, at most
 * HW_LOG_TRACE_MAX characters); NULL or "" clears it. Lines this thread
 * writes end with " trace=<id>" while it is set. */
void hw_log_set_trace(const char *trace_id);

/* The calling thread's current trace id, or NULL. Valid until the thread
 * sets another. */
const char *hw_log_trace(void);

/* Quotes s for a log value when needed ("…" with \" and \\ escaped, control
 * bytes and DEL as \xNN; the empty string as "") into buf of size n;
 * returns buf. Truncates to fit (n >= 3 keeps the quotes). s may be NULL
 * (written as ""). */
const char *hw_log_quote(const char *s, char *buf, size_t n);

#endif
