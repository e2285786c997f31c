/*
 * log: key=value lines on one write(2) each (see log.h). The timestamp is
 * UTC with milliseconds so lines of the bridge and of helpwired sort
 * together.
 */
#include "clients/lib/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct br_log {
    int fd;
    br_log_level min_level;
    char bridge[64];
};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

br_log *br_log_create(int fd, const char *bridge, br_log_level min_level)
{
    br_log *lg = calloc(1, sizeof *lg);
    if (!lg)
        return NULL;
    lg->fd = fd;
    lg->min_level = min_level;
    snprintf(lg->bridge, sizeof lg->bridge, "%s", bridge ? bridge : "bridge");
    return lg;
}

void br_log_destroy(br_log *lg)
{
    free(lg);
}

int br_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (s && strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

bool br_log_enabled(const br_log *lg, br_log_level level)
{
    return lg && level >= lg->min_level;
}

void br_log_event(const br_log *lg, br_log_level level, const char *event, const char *fields, ...)
{
    if (!br_log_enabled(lg, level))
        return;
    char line[4096];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s bridge=%s event=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_names[level], lg->bridge, event);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line - 2)
        n = sizeof line - 2;
    if (fields && *fields) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, fields);
        int m = vsnprintf(line + n, sizeof line - 1 - n, fields, ap);
        va_end(ap);
        if (m > 0)
            n += (size_t)m < sizeof line - 1 - n ? m : (int)(sizeof line - 2 - n);
    }
    line[n++] = '\n';
    ssize_t w = write(lg->fd, line, n);
    (void)w;
}

const char *br_log_quote(const char *s, char *buf, size_t n)
{
    if (!s)
        s = "";
    bool plain = *s != '\0';
    for (const unsigned char *p = (const unsigned char *)s; *p && plain; p++)
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
            plain = false;
    if (plain) {
        snprintf(buf, n, "%s", s);
        return buf;
    }
    size_t o = 0;
    buf[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[5];
        size_t k;
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            k = 2;
        } else if (*p < ' ' || *p == 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", *p);
            k = 4;
        } else {
            esc[0] = (char)*p;
            k = 1;
        }
        if (o + k + 2 > n)
            break;
        memcpy(buf + o, esc, k);
        o += k;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}
