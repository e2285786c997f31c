/*
 * timers_seed: writes a data directory holding N open tickets, each with a
 * running SLA clock and its durable timer, for bench/timers_bench.sh.
 *
 * The tickets are opened through the domain's own rule,
 * hw_tickets_open_in, in write fns of BATCH tickets each (fast: no gRPC,
 * one commit per batch), so each one has what a ticket opened by Route
 * has: its message and events, its SLA clocks (hw_sla_ticket_opened_in)
 * and its timers. The write's time (hw_effects_set_now) of ticket i is
 * T0 + i * 1000 / PER_SECOND ms, and the queue's policy has a RESOLUTION
 * target of MINUTES with its warning at half of it (warn_fraction 0.5), so
 * ticket i's SLA timer fires twice: the warning at
 *   T0 + MINUTES * 30000 + i * 1000 / PER_SECOND
 * (which sets the breach's timer), and the breach at
 *   T0 + MINUTES * 60000 + i * 1000 / PER_SECOND,
 * that is 2 * PER_SECOND timers due per second of the clock's time while
 * both streams run (from the first breach on), and once helpwired runs with --clock-file the bench
 * script decides how many fire per second of real time by how fast it
 * moves the clock file.
 *
 * The store first gets helpwired's demo data (hw_demo_seed, and its tokens
 * in DIR/demo-tokens.txt as `helpwired --demo` writes them), so the same
 * directory serves Route with --demo. Then the queue "bench-timers" (an
 * explicit skill), one agent with that skill, online with room for every
 * ticket, who gets them all (so each ticket has one timer, its SLA one),
 * the policy "bench-timers" (priority NORMAL, that queue,
 * RESOLUTION MINUTES, warning at half, breach action NOTIFY) and CUSTOMERS customers.
 *
 * With --waiting the agent is offline instead: the tickets wait
 * unassigned, each with an UNASSIGNED timer too (due after 30 days: it
 * stays pending, never fires during the bench; the queue is not
 * unassignable, so no alert per ticket). Note that helpwired's /metrics
 * then decodes every waiting ticket (helpwire_queue_waiting) per scrape.
 *
 * Prints one line of key=value pairs: n, per_second, first_warn_ms,
 * first_due_ms (the first breach), last_due_ms, timers_pending.
 *
 *   timers_seed DIR N [--per-second P] [--minutes M] [--t0-ms T0]
 *               [--batch B] [--customers C] [--waiting]
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/base/arena.h"
#include "server/domain/auth.h"
#include "server/domain/effects.h"
#include "server/domain/tickets.h"
#include "server/domain/timers.h"
#include "server/ops/demo.h"
#include "server/store/records.h"
#include "server/store/store.h"

#define QUEUE "bench-timers"
#define UNASSIGNED_AFTER_S (30u * 24 * 3600)

typedef struct seed_opts {
    const char *dir;
    long n;
    long per_second;
    long minutes;
    int64_t t0_ms;
    long batch;
    long customers;
    bool waiting;
} seed_opts;

typedef struct batch_ctx {
    const seed_opts *o;
    long from, to; /* tickets [from, to) */
    hw_arena *a;
    Helpwire__V1__Customer **customers;
} batch_ctx;

static int64_t created_ms(const seed_opts *o, long i)
{
    return o->t0_ms + (int64_t)i * 1000 / o->per_second;
}

/* The queue, its offline agent, its policy. */
static int setup_fn(hw_store_txn *w, void *arg)
{
    const seed_opts *o = arg;
    char *skills[] = {QUEUE};
    Helpwire__V1__Skill sk = HELPWIRE__V1__SKILL__INIT;
    sk.name = QUEUE;
    sk.description = "Timer benchmark queue";
    sk.default_priority = HELPWIRE__V1__PRIORITY__PRIORITY_NORMAL;
    sk.unassigned_alert_after_s = UNASSIGNED_AFTER_S;
    int rc = hw_store_skill_put(w, &sk, HW_PUT_UPSERT);
    Helpwire__V1__Agent ag = HELPWIRE__V1__AGENT__INIT;
    ag.id = "ag-bench-timers";
    ag.name = "Timer bench";
    ag.skills = skills;
    ag.n_skills = 1;
    ag.presence =
        o->waiting ? HELPWIRE__V1__PRESENCE__PRESENCE_OFFLINE : HELPWIRE__V1__PRESENCE__PRESENCE_ONLINE;
    ag.capacity = o->waiting ? 5 : UINT32_MAX;
    if (rc == HW_OK)
        rc = hw_store_agent_put(w, &ag, HW_PUT_UPSERT, 0);
    Helpwire__V1__SlaPolicy p = HELPWIRE__V1__SLA_POLICY__INIT;
    p.name = QUEUE;
    p.priority = HELPWIRE__V1__PRIORITY__PRIORITY_NORMAL;
    p.skill = QUEUE;
    p.resolution_minutes = (uint32_t)o->minutes;
    p.warn_fraction = 0.5; /* the warning at created + MINUTES / 2 */
    p.breach_action = HELPWIRE__V1__SLA_BREACH_ACTION__SLA_BREACH_ACTION_NOTIFY;
    if (rc == HW_OK)
        rc = hw_store_sla_policy_put(w, &p, HW_PUT_UPSERT, 0);
    return rc;
}

static int customers_fn(hw_store_txn *w, void *arg)
{
    batch_ctx *c = arg;
    int rc = HW_OK;
    for (long k = 0; k < c->o->customers && rc == HW_OK; k++)
        rc = hw_store_customer_put(w, c->customers[k], HW_PUT_UPSERT, 0);
    return rc;
}

static int tickets_fn(hw_store_txn *w, void *arg)
{
    batch_ctx *c = arg;
    char text[96];
    int rc = HW_OK;
    for (long i = c->from; i < c->to && rc == HW_OK; i++) {
        hw_arena_reset(c->a);
        hw_effects fx; /* the server is not running: nobody to wake */
        hw_effects_begin(&fx, c->a);
        hw_effects_set_now(&fx, created_ms(c->o, i));
        snprintf(text, sizeof text, "Order %ld has not arrived yet, where is it?", i);
        hw_ticket_open op = {
            .customer = c->customers[i % c->o->customers],
            .text = text,
            .queue = QUEUE,
            .priority = HELPWIRE__V1__PRIORITY__PRIORITY_NORMAL,
            .actor = "customer:seed",
        };
        Helpwire__V1__Ticket *t;
        const char *reason;
        rc = hw_tickets_open_in(w, &op, c->a, &fx, &t, &reason);
    }
    return rc;
}

static int pending_fn(hw_store_txn *w, void *arg)
{
    return hw_timers_pending(w, arg);
}

static int parse_long(const char *s, long min, long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v < min)
        return -1;
    *out = (long)v;
    return 0;
}

int main(int argc, char **argv)
{
    seed_opts o = {
        .per_second = 1000, .minutes = 60, .t0_ms = 1767225600000LL, .batch = 2000, .customers = 1000};
    const char *usage = "usage: timers_seed DIR N [--per-second P] [--minutes M] [--t0-ms T0] "
                        "[--batch B] [--customers C] [--waiting]\n";
    if (argc >= 4 && strcmp(argv[argc - 1], "--waiting") == 0) {
        o.waiting = true;
        argc--;
    }
    if (argc < 3 || (argc - 3) % 2) {
        fputs(usage, stderr);
        return 2;
    }
    o.dir = argv[1];
    if (parse_long(argv[2], 1, &o.n)) {
        fprintf(stderr, "timers_seed: N must be a positive number, got \"%s\"\n", argv[2]);
        return 2;
    }
    for (int i = 3; i < argc; i += 2) {
        long v, min = 1;
        if (strcmp(argv[i], "--t0-ms") == 0)
            min = 0;
        if (parse_long(argv[i + 1], min, &v)) {
            fprintf(stderr, "timers_seed: %s must be a number >= %ld, got \"%s\"\n", argv[i], min,
                    argv[i + 1]);
            return 2;
        }
        if (strcmp(argv[i], "--per-second") == 0)
            o.per_second = v;
        else if (strcmp(argv[i], "--minutes") == 0)
            o.minutes = v;
        else if (strcmp(argv[i], "--t0-ms") == 0)
            o.t0_ms = v;
        else if (strcmp(argv[i], "--batch") == 0)
            o.batch = v;
        else if (strcmp(argv[i], "--customers") == 0)
            o.customers = v;
        else {
            fprintf(stderr, "timers_seed: unknown option %s\n%s", argv[i], usage);
            return 2;
        }
    }

    int status = 1;
    char err[512];
    hw_store *s = NULL;
    hw_arena *a = hw_arena_create(1 << 16);
    hw_arena *ca = hw_arena_create(1 << 16);
    Helpwire__V1__Customer **customers =
        ca ? hw_arena_calloc(ca, (size_t)o.customers, sizeof *customers) : NULL;
    if (!a || !customers) {
        fprintf(stderr, "timers_seed: out of memory\n");
        goto out;
    }
    hw_store_options so = {.data_dir = o.dir};
    if (hw_store_open(&s, &so, err, sizeof err) != HW_OK) {
        fprintf(stderr, "timers_seed: %s\n", err);
        goto out;
    }
    bool seeded = false;
    if (hw_demo_seed(s, &seeded, err, sizeof err) != HW_OK) {
        fprintf(stderr, "timers_seed: the demo data: %s\n", err);
        goto out;
    }
    if (seeded) { /* as helpwired --demo does on an empty store */
        char path[4096];
        snprintf(path, sizeof path, "%s/demo-tokens.txt", o.dir);
        FILE *tf = fopen(path, "w");
        int trc = tf ? hw_auth_demo_tokens(s, "alice", tf) : HW_EIO;
        if (tf && fclose(tf) != 0 && trc == HW_OK)
            trc = HW_EIO;
        if (trc != HW_OK) {
            fprintf(stderr, "timers_seed: %s: %s\n", path, hw_strerror(trc));
            goto out;
        }
    }
    int rc = hw_store_write(s, setup_fn, &o);
    for (long k = 0; k < o.customers && rc == HW_OK; k++) {
        Helpwire__V1__Customer *c = hw_arena_alloc(ca, sizeof *c);
        Helpwire__V1__Identity *id = hw_arena_alloc(ca, sizeof *id);
        Helpwire__V1__Identity **ids = hw_arena_alloc(ca, sizeof *ids);
        if (!c || !id || !ids) {
            rc = HW_ENOMEM;
            break;
        }
        helpwire__v1__customer__init(c);
        helpwire__v1__identity__init(id);
        c->id = hw_arena_printf(ca, "c-bench-%ld", k);
        c->name = hw_arena_printf(ca, "Bench customer %ld", k);
        id->channel = HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM;
        id->channel_user_id = hw_arena_printf(ca, "bench-%ld", k);
        id->first_seen_unix_ms = o.t0_ms;
        ids[0] = id;
        c->identities = ids;
        c->n_identities = 1;
        c->locale = "en";
        c->created_unix_ms = c->updated_unix_ms = o.t0_ms;
        customers[k] = c;
    }
    batch_ctx bc = {.o = &o, .a = a, .customers = customers};
    if (rc == HW_OK)
        rc = hw_store_write(s, customers_fn, &bc);
    for (long from = 0; from < o.n && rc == HW_OK; from += o.batch) {
        bc.from = from;
        bc.to = from + o.batch < o.n ? from + o.batch : o.n;
        rc = hw_store_write(s, tickets_fn, &bc);
        if (rc == HW_OK && (bc.to % 100000 == 0 || bc.to == o.n))
            fprintf(stderr, "timers_seed: %ld tickets\n", bc.to);
    }
    uint64_t pending = 0;
    if (rc == HW_OK)
        rc = hw_store_write(s, pending_fn, &pending);
    if (rc != HW_OK) {
        fprintf(stderr, "timers_seed: %s\n", hw_strerror(rc));
        goto out;
    }
    int64_t due0 = o.t0_ms + (int64_t)o.minutes * 60000;
    printf("n=%ld per_second=%ld first_warn_ms=%" PRId64 " first_due_ms=%" PRId64 " last_due_ms=%" PRId64
           " timers_pending=%" PRIu64 "\n",
           o.n, o.per_second, o.t0_ms + (int64_t)o.minutes * 30000, due0,
           due0 + (created_ms(&o, o.n - 1) - o.t0_ms), pending);
    status = 0;
out:
    hw_store_close(s);
    hw_arena_destroy(a);
    hw_arena_destroy(ca);
    return status;
}
