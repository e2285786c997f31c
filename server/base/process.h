/*
 * process: the standard Prometheus process families of this process
 * (process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_open_fds, process_max_fds,
 * process_start_time_seconds), read from /proc/self at scrape time, with
 * the meanings the Prometheus client libraries give them. Linux only; a
 * file that cannot be read leaves its families out rather than report 0.
 *
 * The parsers take the files' text, so they are tested on any text.
 */
#ifndef HW_PROCESS_H
#define HW_PROCESS_H

#include <stdint.h>
#include <stdio.h>

typedef struct hw_process_stat {
    double cpu_seconds;        /* user + system time */
    uint64_t virtual_bytes;    /* vsize */
    uint64_t resident_bytes;   /* rss pages * page size */
    double start_time_seconds; /* since the Unix epoch */
} hw_process_stat;

/* Parses the text of /proc/PID/stat (the command name in parentheses may
 * hold spaces and parentheses: fields are counted from its last ')').
 * ticks_per_second is sysconf(_SC_CLK_TCK), page_bytes the page size,
 * boot_time_seconds /proc/stat's btime. Returns 0, or -1 when the text is
 * not a stat line (too few fields, not numbers) or ticks_per_second <= 0. */
int hw_process_parse_stat(const char *text, long ticks_per_second, long page_bytes,
                          uint64_t boot_time_seconds, hw_process_stat *out);

/* Finds "btime N" in the text of /proc/stat. Returns 0, or -1 when absent. */
int hw_process_parse_btime(const char *text, uint64_t *boot_time_seconds);

/* Appends the process families (with # HELP and # TYPE) to out. Reads
 * /proc/self/stat, /proc/stat, /proc/self/fd and RLIMIT_NOFILE. Thread-safe. */
void hw_process_render(FILE *out);

#endif
