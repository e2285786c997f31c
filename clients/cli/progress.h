/*
 * progress: a one-line progress bar on a terminal, for long imports:
 * "articles [#########-----------]  120/500  24%  310/s  ETA 1s". It is
 * drawn only when its stream is a terminal (and TERM is not "dumb"), so
 * redirected output and logs stay clean; redraws are throttled to ten a
 * second so a fast import is not slowed by the terminal.
 *
 * The formatter is pure (tested on its own); the drawer keeps its state in
 * a caller-owned struct (fields are private to progress.c). Not
 * thread-safe; no global state.
 */
#ifndef CLI_PROGRESS_H
#define CLI_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct cli_progress {
    FILE *f;
    const char *label;
    uint64_t total;
    uint64_t done;
    double start_s;
    double last_draw_s;
    bool enabled;
    bool drawn; /* a bar is on screen now */
} cli_progress;

/* Formats one bar into buf (no newline): label, bar of bar_width cells,
 * done/total, percent, rate and ETA; with total 0 (unknown) only the
 * count and rate. Returns buf. */
const char *cli_progress_format(char *buf, size_t len, const char *label, uint64_t done, uint64_t total,
                                double elapsed_s, int bar_width);

/* Starts a bar for total items (0: unknown) on f; label is not copied. */
void cli_progress_start(cli_progress *p, FILE *f, const char *label, uint64_t total);

/* Records that done items are finished; redraws at most every 100 ms and
 * always when done reaches total. */
void cli_progress_update(cli_progress *p, uint64_t done);

/* Erases the bar, so a message can be printed on a clean line; the next
 * update draws it again. */
void cli_progress_clear(cli_progress *p);

/* Seconds since cli_progress_start. */
double cli_progress_elapsed(const cli_progress *p);

/* Erases the bar for good. */
void cli_progress_end(cli_progress *p);

#endif
