/*
 * process: /proc/self read at scrape time (a few small files, no state
 * kept between scrapes). open_fds counts /proc/self/fd but for the
 * directory's own descriptor.
 */
#include "server/base/process.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Reads a small /proc file whole into buf (NUL-terminated). Returns 0 or -1. */
static int read_small(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, len - 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n == 0)
        return -1;
    buf[n] = '\0';
    return 0;
}

/* Reads one unsigned decimal field at *p and moves past it and the spaces
 * after; the sign of a negative field is refused. */
static int next_u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || (*end != ' ' && *end != '\n' && *end != '\0'))
        return -1;
    while (*end == ' ')
        end++;
    *out = v;
    *p = end;
    return 0;
}

/* Skips one field of any content (state letter, signed numbers). */
static int skip_field(const char **p)
{
    const char *s = *p;
    if (*s == '\0' || *s == ' ' || *s == '\n')
        return -1;
    while (*s && *s != ' ' && *s != '\n')
        s++;
    while (*s == ' ')
        s++;
    *p = s;
    return 0;
}

int hw_process_parse_stat(const char *text, long ticks, long page, uint64_t btime, hw_process_stat *out)
{
    if (ticks <= 0)
        return -1;
    const char *p = strrchr(text, ')');
    if (!p || p[1] != ' ')
        return -1;
    p += 2;
    /* Fields from 3 (state) on: utime 14, stime 15, starttime 22, vsize
     * 23, rss 24 (proc(5)). */
    uint64_t utime = 0, stime = 0, start = 0, vsize = 0, rss = 0;
    for (int field = 3; field <= 24; field++) {
        int rc;
        switch (field) {
        case 14:
            rc = next_u64(&p, &utime);
            break;
        case 15:
            rc = next_u64(&p, &stime);
            break;
        case 22:
            rc = next_u64(&p, &start);
            break;
        case 23:
            rc = next_u64(&p, &vsize);
            break;
        case 24:
            rc = next_u64(&p, &rss);
            break;
        default:
            rc = skip_field(&p);
            break;
        }
        if (rc != 0)
            return -1;
    }
    out->cpu_seconds = (double)(utime + stime) / (double)ticks;
    out->virtual_bytes = vsize;
    out->resident_bytes = rss * (uint64_t)(page > 0 ? page : 0);
    out->start_time_seconds = (double)btime + (double)start / (double)ticks;
    return 0;
}

int hw_process_parse_btime(const char *text, uint64_t *out)
{
    for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, "btime ", 6) == 0) {
            const char *p = line + 6;
            return next_u64(&p, out);
        }
    }
    return -1;
}

static long count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    int own = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (atoi(e->d_name) == own)
            continue;
        n++;
    }
    closedir(d);
    return n;
}

void hw_process_render(FILE *out)
{
    char stat[2048], sys[16384];
    uint64_t btime = 0;
    hw_process_stat ps;
    if (read_small("/proc/self/stat", stat, sizeof stat) == 0 &&
        read_small("/proc/stat", sys, sizeof sys) == 0 && hw_process_parse_btime(sys, &btime) == 0 &&
        hw_process_parse_stat(stat, sysconf(_SC_CLK_TCK), sysconf(_SC_PAGESIZE), btime, &ps) == 0) {
        fprintf(out,
                "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
                "# TYPE process_cpu_seconds_total counter\n"
                "process_cpu_seconds_total %.2f\n"
                "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                "# TYPE process_resident_memory_bytes gauge\n"
                "process_resident_memory_bytes %llu\n"
                "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
                "# TYPE process_virtual_memory_bytes gauge\n"
                "process_virtual_memory_bytes %llu\n"
                "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
                "# TYPE process_start_time_seconds gauge\n"
                "process_start_time_seconds %.2f\n",
                ps.cpu_seconds, (unsigned long long)ps.resident_bytes, (unsigned long long)ps.virtual_bytes,
                ps.start_time_seconds);
    }
    long fds = count_open_fds();
    if (fds >= 0)
        fprintf(out,
                "# HELP process_open_fds Number of open file descriptors.\n"
                "# TYPE process_open_fds gauge\n"
                "process_open_fds %ld\n",
                fds);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        fprintf(out, "# HELP process_max_fds Maximum number of open file descriptors.\n"
                     "# TYPE process_max_fds gauge\n");
        if (rl.rlim_cur == RLIM_INFINITY)
            fprintf(out, "process_max_fds +Inf\n");
        else
            fprintf(out, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
    }
}
