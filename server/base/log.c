/*
 * log: structured key=value lines. Formatting happens into a stack buffer
 * and the line goes out with a single write(2), which POSIX keeps whole for
 * pipes up to PIPE_BUF and which in practice is whole for files and
 * terminals too, so no lock is needed.
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
};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

hw_log *hw_log_create(int fd, hw_log_level min_level, bool access_log)
{
    hw_log *lg = malloc(sizeof(*lg));
    if (!lg)
        return NULL;
    lg->fd = fd;
    lg->min_level = min_level;
    lg->access_log = access_log;
    return lg;
}

void hw_log_destroy(hw_log *lg)
{
    free(lg);
}

int hw_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
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
    int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s event=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_names[level], event);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    if (fields && len < sizeof line - 2) {
        line[len++] = ' ';
        va_list ap;
        va_start(ap, fields);
        int m = vsnprintf(line + len, sizeof line - len, fields, ap);
        va_end(ap);
        if (m > 0)
            len += (size_t)m < sizeof line - len ? (size_t)m : sizeof line - len - 1;
    }
    if (len >= sizeof line - 1)
        len = sizeof line - 2;
    line[len++] = '\n';
    ssize_t w;
    do {
        w = write(lg->fd, line, len);
    } while (w < 0 && errno == EINTR);
}

const char *hw_log_quote(const char *s, char *buf, size_t n)
{
    if (n == 0)
        return buf;
    bool plain = *s != '\0';
    for (const char *p = s; *p && plain; p++)
        if (*p == ' ' || *p == '"' || *p == '=' || *p == '\\' || (unsigned char)*p < 0x20)
            plain = false;
    if (plain) {
        snprintf(buf, n, "%s", s);
        return buf;
    }
    size_t o = 0;
    if (o + 1 < n)
        buf[o++] = '"';
    for (const char *p = s; *p && o + 5 < n; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(buf + o, n - o, "\\x%02x", c);
        } else {
            buf[o++] = (char)c;
        }
    }
    if (o + 1 < n)
        buf[o++] = '"';
    buf[o < n ? o : n - 1] = '\0';
    return buf;
}
