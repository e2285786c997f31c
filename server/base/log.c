/*
 * log: structured key=value lines. Formatting happens into a stack buffer
 * and the line goes out with a single write(2), which POSIX keeps whole for
 * pipes up to PIPE_BUF and which in practice is whole for files and
 * terminals too, so no lock is needed. The timestamp is UTC with
 * milliseconds so that the lines of helpwired and of the bridges sort
 * together. A component's fixed field is formatted once, at creation.
 * The current trace id is a thread-local copy (log.h says why); room for
 * it is kept when the fields are cut, so a long line keeps its trace.
 */
#include "server/base/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct hw_log {
    int fd;
    hw_log_level min_level;
    bool access_log;
    char fixed[128]; /* " key=value", or "" */
};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* The calling thread's current trace id ("" none); see hw_log_set_trace. */
static _Thread_local char thread_trace[HW_LOG_TRACE_MAX + 1];

void hw_log_set_trace(const char *trace_id)
{
    size_t n = trace_id ? strnlen(trace_id, HW_LOG_TRACE_MAX) : 0;
    memcpy(thread_trace, trace_id ? trace_id : "", n);
    thread_trace[n] = '\0';
}

const char *hw_log_trace(void)
{
    return thread_trace[0] ? thread_trace : NULL;
}

hw_log *hw_log_create_component(int fd, hw_log_level min_level, bool access_log, const char *key,
                                const char *value)
{
    hw_log *lg = calloc(1, sizeof(*lg));
    if (!lg)
        return NULL;
    lg->fd = fd;
    lg->min_level = min_level;
    lg->access_log = access_log;
    if (key) {
        char q[sizeof lg->fixed];
        snprintf(lg->fixed, sizeof lg->fixed, " %s=%s", key, hw_log_quote(value, q, sizeof q));
    }
    return lg;
}

hw_log *hw_log_create(int fd, hw_log_level min_level, bool access_log)
{
    return hw_log_create_component(fd, min_level, access_log, NULL, NULL);
}

void hw_log_destroy(hw_log *lg)
{
    free(lg);
}

int hw_log_level_parse(const char *s)
{
    for (int i = 0; s && i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

bool hw_log_enabled(const hw_log *lg, hw_log_level level)
{
    return lg && level >= lg->min_level;
}

bool hw_log_access_enabled(const hw_log *lg)
{
    return lg && lg->access_log;
}

void hw_log_event(const hw_log *lg, hw_log_level level, const char *event, const char *fields, ...)
{
    if (!hw_log_enabled(lg, level))
        return;
    char line[4096];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s%s event=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_names[level], lg->fixed, event);
    if (n < 0)
        return;
    char suffix[HW_LOG_TRACE_MAX + 8] = "";
    if (thread_trace[0])
        snprintf(suffix, sizeof suffix, " trace=%s", thread_trace);
    size_t slen = strlen(suffix);
    size_t room = sizeof line - slen - 1; /* the fields stop here: the trace and '\n' follow */
    size_t len = (size_t)n < room ? (size_t)n : room - 1;
    bool has_fields = fields && fields[0] != '\0';
    if (has_fields && len < room - 2) {
        line[len++] = ' ';
        va_list ap;
        va_start(ap, fields);
        int m = vsnprintf(line + len, room - len, fields, ap);
        va_end(ap);
        if (m > 0)
            len += (size_t)m < room - len ? (size_t)m : room - len - 1;
    }
    memcpy(line + len, suffix, slen);
    len += slen;
    line[len++] = '\n';
    ssize_t w;
    do {
        w = write(lg->fd, line, len);
    } while (w < 0 && errno == EINTR);
}

static bool needs_escape(unsigned char c)
{
    return c < 0x20 || c == 0x7f || c == '"' || c == '\\';
}

const char *hw_log_quote(const char *s, char *buf, size_t n)
{
    if (n == 0)
        return buf;
    if (!s)
        s = "";
    bool plain = *s != '\0';
    for (const unsigned char *p = (const unsigned char *)s; *p && plain; p++)
        if (*p == ' ' || *p == '=' || needs_escape(*p))
            plain = false;
    if (plain) {
        snprintf(buf, n, "%s", s);
        return buf;
    }
    size_t o = 0;
    if (o + 1 < n)
        buf[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[5];
        size_t k = 1;
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            k = 2;
        } else if (needs_escape(*p)) {
            snprintf(esc, sizeof esc, "\\x%02x", *p);
            k = 4;
        } else {
            esc[0] = (char)*p;
        }
        if (o + k + 2 > n) /* room for the closing quote and the NUL */
            break;
        memcpy(buf + o, esc, k);
        o += k;
    }
    if (o + 1 < n)
        buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}
