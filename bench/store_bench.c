/*
 * store_bench: durable writes per second through the store's writer queue,
 * with group commit against one commit (one fsync) per request, at 1, 8 and
 * 64 concurrent writers, all in one run on the same disk.
 *
 * Each write is what CreateTicket stores: a sequence number, a ticket with
 * its seven index entries, one history event. The baseline is the same
 * engine with max_group_size = 1 (one durable commit per request).
 *
 * Two ways to be "N concurrent writers":
 * - threads: N threads each call hw_store_write (submit, sleep until the
 *   durable commit) in a loop: every request also costs a thread wake-up
 *   and two context switches, which on 2 cores is most of the CPU.
 * - inflight: N requests are kept in flight with hw_store_submit; each done
 *   callback (on the writer thread) counts the write and submits the next,
 *   as the gRPC layer does when done starts the reply batch. No thread
 *   sleeps per request.
 *
 * Usage: store_bench [--dir DIR] [--seconds N] [--writers 1,8,64]
 *                    [--mode threads|inflight|both]
 * DIR must be on the disk under test (not tmpfs); default $TMPDIR or /tmp.
 * Not a test: prints a table and exits 0.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/store/records.h"

typedef struct run {
    hw_store *s;
    atomic_int stop;
    atomic_ullong writes;
    atomic_int errors;
} run;

typedef struct req {
    uint64_t number;
} req;

static int create_ticket(hw_store_txn *w, void *ctx)
{
    req *r = ctx;
    hw_arena *a = hw_store_txn_arena(w);
    int rc = hw_store_next_seq(w, "ticket", 1000, &r->number);
    if (rc)
        return rc;
    char *id = hw_arena_printf(a, "t-%llu", (unsigned long long)r->number);
    Helpwire__V1__Ticket tk = HELPWIRE__V1__TICKET__INIT;
    tk.id = id;
    tk.number = r->number;
    tk.customer_id = hw_arena_printf(a, "c-%llu", (unsigned long long)(r->number % 5000));
    tk.queue = r->number % 2 ? "technical" : "billing";
    tk.status = HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_OPEN;
    tk.priority = HELPWIRE__V1__PRIORITY__PRIORITY_NORMAL;
    tk.assignee_agent_id = "";
    tk.subject = "My printer prints every page twice since the last update";
    tk.version = 1;
    if ((rc = hw_store_ticket_put(w, &tk, HW_PUT_CREATE, 0)))
        return rc;
    Helpwire__V1__TicketEvent ev = HELPWIRE__V1__TICKET_EVENT__INIT;
    ev.ticket_id = id;
    ev.kind = HELPWIRE__V1__TICKET_EVENT_KIND__TICKET_EVENT_KIND_CREATED;
    ev.actor = "system";
    ev.detail = "created by Route";
    return hw_store_ticket_event_append(w, &ev);
}

/* inflight mode: the done callback keeps the pipeline full. */
typedef struct slot {
    run *r;
    req q;
} slot;

static atomic_int inflight;

static int slot_create_ticket(hw_store_txn *w, void *ctx)
{
    return create_ticket(w, &((slot *)ctx)->q);
}

static void resubmit_done(void *ctx, int status)
{
    slot *sl = ctx;
    if (status == HW_OK)
        atomic_fetch_add(&sl->r->writes, 1);
    else
        atomic_fetch_add(&sl->r->errors, 1);
    if (atomic_load(&sl->r->stop) ||
        hw_store_submit(sl->r->s, slot_create_ticket, resubmit_done, sl) != HW_OK)
        atomic_fetch_sub(&inflight, 1);
}

static void *writer(void *p)
{
    run *r = p;
    while (!atomic_load(&r->stop)) {
        req q;
        if (hw_store_write(r->s, create_ticket, &q) == HW_OK)
            atomic_fetch_add(&r->writes, 1);
        else
            atomic_fetch_add(&r->errors, 1);
    }
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One measurement in a fresh store; returns writes per second. */
static double measure(const char *root, int writers, unsigned max_group, double seconds, int use_threads,
                      hw_store_stats *st_out)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/store-bench-%d-%u-%d", root, writers, max_group, (int)getpid());
    hw_store_options o = {
        .data_dir = dir, .initial_map_size_bytes = (size_t)256 << 20, .max_group_size = max_group};
    run r = {0};
    char err[512];
    int rc = hw_store_open(&r.s, &o, err, sizeof(err));
    if (rc != HW_OK) {
        fprintf(stderr, "store_bench: %s\n", err);
        exit(1);
    }
    pthread_t *th = calloc((size_t)writers, sizeof(*th));
    slot *slots = calloc((size_t)writers, sizeof(*slots));
    double t0 = now_s();
    if (use_threads) {
        for (int i = 0; i < writers; i++)
            pthread_create(&th[i], NULL, writer, &r);
    } else {
        atomic_store(&inflight, writers);
        for (int i = 0; i < writers; i++) {
            slots[i].r = &r;
            if (hw_store_submit(r.s, slot_create_ticket, resubmit_done, &slots[i]) != HW_OK)
                atomic_fetch_sub(&inflight, 1);
        }
    }
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&ts, NULL);
    atomic_store(&r.stop, 1);
    if (use_threads) {
        for (int i = 0; i < writers; i++)
            pthread_join(th[i], NULL);
    } else {
        while (atomic_load(&inflight) > 0) {
            struct timespec w = {0, 1000000};
            nanosleep(&w, NULL);
        }
    }
    double elapsed = now_s() - t0;
    free(slots);
    hw_store_get_stats(r.s, st_out);
    hw_store_close(r.s);
    free(th);
    if (atomic_load(&r.errors))
        fprintf(stderr, "store_bench: %d writes failed\n", atomic_load(&r.errors));
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "store_bench: could not remove %s\n", dir);
    return (double)atomic_load(&r.writes) / elapsed;
}

int main(int argc, char **argv)
{
    const char *root = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    double seconds = 3;
    char writers_arg[256] = "1,8,64";
    const char *mode = "both";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            root = argv[++i];
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--mode") && i + 1 < argc)
            mode = argv[++i];
        else if (!strcmp(argv[i], "--writers") && i + 1 < argc)
            snprintf(writers_arg, sizeof(writers_arg), "%s", argv[++i]);
        else {
            fprintf(stderr,
                    "usage: %s [--dir DIR] [--seconds N] [--writers 1,8,64] "
                    "[--mode threads|inflight|both]\n",
                    argv[0]);
            return 2;
        }
    }
    printf("store_bench: durable CreateTicket-sized writes, %.1f s per cell, dir %s\n", seconds, root);
    printf("%-9s %8s %16s %16s %8s %10s\n", "mode", "writers", "per-request/s", "group/s", "ratio",
           "avg group");
    static const char *const modes[] = {"threads", "inflight"};
    for (int m = 0; m < 2; m++) {
        if (strcmp(mode, "both") != 0 && strcmp(mode, modes[m]) != 0)
            continue;
        char list[256];
        snprintf(list, sizeof(list), "%s", writers_arg);
        char *save = NULL;
        for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            int n = atoi(tok);
            if (n <= 0)
                continue;
            hw_store_stats single_st, group_st;
            double single = measure(root, n, 1, seconds, m == 0, &single_st);
            double group = measure(root, n, 0, seconds, m == 0, &group_st);
            double avg = group_st.commits ? (double)group_st.requests / (double)group_st.commits : 0;
            printf("%-9s %8d %16.0f %16.0f %7.1fx %10.1f\n", modes[m], n, single, group, group / single, avg);
            fflush(stdout);
        }
    }
    return 0;
}
