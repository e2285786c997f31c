/*
 * progress: the terminal progress bar (see progress.h). Drawing is "\r",
 * the bar, then "ESC [ K" (erase to end of line), so a shorter bar never
 * leaves old characters behind.
 */
#include "clients/cli/progress.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clients/cli/fmt.h"

enum { PROGRESS_BAR_WIDTH = 30 };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *cli_progress_format(char *buf, size_t len, const char *label, uint64_t done, uint64_t total,
                                double elapsed_s, int bar_width)
{
    double rate = elapsed_s > 0 ? (double)done / elapsed_s : 0;
    if (total == 0) {
        snprintf(buf, len, "%s  %llu  %.0f/s", label, (unsigned long long)done, rate);
        return buf;
    }
    if (done > total)
        done = total;
    char bar[256];
    if (bar_width < 1)
        bar_width = 1;
    if ((size_t)bar_width > sizeof bar - 1)
        bar_width = (int)sizeof bar - 1;
    int filled = (int)((double)done / (double)total * bar_width);
    memset(bar, '#', (size_t)filled);
    memset(bar + filled, '-', (size_t)(bar_width - filled));
    bar[bar_width] = '\0';
    char eta[32], left[16];
    if (done == total)
        snprintf(eta, sizeof eta, "done");
    else if (rate > 0)
        snprintf(eta, sizeof eta, "ETA %s",
                 cli_fmt_duration((double)(total - done) / rate, left, sizeof left));
    else
        snprintf(eta, sizeof eta, "ETA ?");
    snprintf(buf, len, "%s [%s] %llu/%llu %3d%%  %.0f/s  %s", label, bar, (unsigned long long)done,
             (unsigned long long)total, (int)((double)done * 100.0 / (double)total), rate, eta);
    return buf;
}

void cli_progress_start(cli_progress *p, FILE *f, const char *label, uint64_t total)
{
    memset(p, 0, sizeof *p);
    p->f = f;
    p->label = label;
    p->total = total;
    p->start_s = now_s();
    const char *term = getenv("TERM");
    p->enabled = isatty(fileno(f)) && !(term && strcmp(term, "dumb") == 0);
}

double cli_progress_elapsed(const cli_progress *p)
{
    return now_s() - p->start_s;
}

void cli_progress_update(cli_progress *p, uint64_t done)
{
    p->done = done;
    if (!p->enabled)
        return;
    double t = now_s();
    bool final = p->total && done >= p->total;
    if (p->drawn && !final && t - p->last_draw_s < 0.1)
        return;
    char line[512];
    cli_progress_format(line, sizeof line, p->label, done, p->total, t - p->start_s, PROGRESS_BAR_WIDTH);
    fprintf(p->f, "\r%s\033[K", line);
    fflush(p->f);
    p->drawn = true;
    p->last_draw_s = t;
}

void cli_progress_clear(cli_progress *p)
{
    if (!p->enabled || !p->drawn)
        return;
    fputs("\r\033[K", p->f);
    fflush(p->f);
    p->drawn = false;
}

void cli_progress_end(cli_progress *p)
{
    cli_progress_clear(p);
    p->enabled = false;
}
