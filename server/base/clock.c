/*
 * clock: the real, file and manual clocks behind one handle (see clock.h).
 *
 * The file clock re-reads its file only when stat() shows a new mtime or
 * size, so a read costs one stat() call; the last value and the stat it was
 * read at are kept under a mutex (reads are rare next to the work done per
 * timestamp). The manual clock is a single atomic.
 */
#include "server/base/clock.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "server/base/errors.h"

typedef enum clock_kind { CLOCK_KIND_REAL, CLOCK_KIND_FILE, CLOCK_KIND_MANUAL } clock_kind;

struct hw_clock {
    clock_kind kind;
    _Atomic int64_t manual_ms; /* manual */
    /* file */
    char *path;
    pthread_mutex_t mu;
    struct timespec seen_mtime;
    off_t seen_size;
    int64_t file_ms;
};

static int64_t real_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int hw_clock_create_real(hw_clock **out)
{
    hw_clock *c = calloc(1, sizeof *c);
    if (!c)
        return HW_ENOMEM;
    c->kind = CLOCK_KIND_REAL;
    *out = c;
    return HW_OK;
}

int hw_clock_create_manual(hw_clock **out, int64_t start_ms)
{
    hw_clock *c = calloc(1, sizeof *c);
    if (!c)
        return HW_ENOMEM;
    c->kind = CLOCK_KIND_MANUAL;
    atomic_store(&c->manual_ms, start_ms);
    *out = c;
    return HW_OK;
}

/* Reads path's time into *ms; on failure writes why into err. */
static int read_time_file(const char *path, int64_t *ms, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "clock file %s: %s", path, strerror(errno));
        return HW_EINVALID;
    }
    char buf[64];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = buf;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(p, &end, 10);
    while (end && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
        end++;
    if (end == p || errno != 0 || !end || *end != '\0' || v < 0) {
        snprintf(err, errlen, "clock file %s: expected milliseconds since the epoch, got \"%.20s\"", path, p);
        return HW_EINVALID;
    }
    *ms = (int64_t)v;
    return HW_OK;
}

int hw_clock_create_file(hw_clock **out, const char *path, char *err, size_t errlen)
{
    int64_t ms = 0;
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "clock file %s: %s", path, strerror(errno));
        return HW_EINVALID;
    }
    int rc = read_time_file(path, &ms, err, errlen);
    if (rc != HW_OK)
        return rc;
    hw_clock *c = calloc(1, sizeof *c);
    if (!c)
        return HW_ENOMEM;
    c->path = strdup(path);
    if (!c->path) {
        free(c);
        return HW_ENOMEM;
    }
    c->kind = CLOCK_KIND_FILE;
    pthread_mutex_init(&c->mu, NULL);
    c->seen_mtime = st.st_mtim;
    c->seen_size = st.st_size;
    c->file_ms = ms;
    *out = c;
    return HW_OK;
}

void hw_clock_set(hw_clock *c, int64_t now_ms)
{
    if (c && c->kind == CLOCK_KIND_MANUAL)
        atomic_store(&c->manual_ms, now_ms);
}

static int64_t file_now_ms(hw_clock *c)
{
    pthread_mutex_lock(&c->mu);
    struct stat st;
    if (stat(c->path, &st) == 0 &&
        (st.st_mtim.tv_sec != c->seen_mtime.tv_sec || st.st_mtim.tv_nsec != c->seen_mtime.tv_nsec ||
         st.st_size != c->seen_size)) {
        char err[256];
        int64_t ms;
        if (read_time_file(c->path, &ms, err, sizeof err) == HW_OK) {
            c->file_ms = ms;
            c->seen_mtime = st.st_mtim;
            c->seen_size = st.st_size;
        }
    }
    int64_t v = c->file_ms;
    pthread_mutex_unlock(&c->mu);
    return v;
}

int64_t hw_clock_now_ms(hw_clock *c)
{
    if (!c || c->kind == CLOCK_KIND_REAL)
        return real_now_ms();
    if (c->kind == CLOCK_KIND_MANUAL)
        return atomic_load(&c->manual_ms);
    return file_now_ms(c);
}

bool hw_clock_is_real(const hw_clock *c)
{
    return !c || c->kind == CLOCK_KIND_REAL;
}

void hw_clock_destroy(hw_clock *c)
{
    if (!c)
        return;
    if (c->kind == CLOCK_KIND_FILE) {
        pthread_mutex_destroy(&c->mu);
        free(c->path);
    }
    free(c);
}
