/*
 * reports_test: the Reports service's aggregation (reports.h) without a
 * server: validation messages naming the field; CSAT rows and totals by
 * agent, queue, channel and period (day, ISO week, month in a time zone,
 * across a DST change, empty periods included); SLA clocks counted per
 * target; and the store scan of tickets by creation time over 100,000
 * tickets and the CSAT scan over 100,000 surveys, timed (a day's report
 * must not read the whole store).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "server/domain/reports.h"
#include "server/store/records.h"
#include "tests/unit/store_test_util.h"

#define H (3600LL * 1000)
#define D (24 * H)
/* 2026-03-02T00:00:00Z, a Monday. */
#define MON 1772409600000LL

static Helpwire__V1__ReportRequest req(int64_t from, int64_t to, Helpwire__V1__ReportGrouping g)
{
    Helpwire__V1__ReportRequest r = HELPWIRE__V1__REPORT_REQUEST__INIT;
    r.from_unix_ms = from;
    r.to_unix_ms = to;
    r.group_by = g;
    return r;
}

static void expect_invalid(Helpwire__V1__ReportRequest *r, bool sla, const char *msg)
{
    hw_report *rep = NULL;
    char err[256] = "";
    assert_int_equal(hw_report_new(r, sla, &rep, err, sizeof err), HW_EINVALID);
    assert_null(rep);
    if (strncmp(err, msg, strlen(msg)) != 0) /* the message may go on, e.g. where zones are looked for */
        fail_msg("\"%s\" does not start with \"%s\"", err, msg);
}

static void test_validation(void **state)
{
    (void)state;
    Helpwire__V1__ReportRequest r = req(0, MON, 0);
    expect_invalid(&r, false, "from_unix_ms: required (milliseconds since the epoch)");
    r = req(MON, MON, 0);
    expect_invalid(&r, false, "to_unix_ms: must be after from_unix_ms");
    r = req(MON, MON - 1, 0);
    expect_invalid(&r, true, "to_unix_ms: must be after from_unix_ms");
    r = req(MON, MON + 366 * D + 1, 0);
    expect_invalid(&r, false, "to_unix_ms: at most 366 days after from_unix_ms");
    r = req(MON, MON + D, 9);
    expect_invalid(&r, false, "group_by: unknown value 9");
    r = req(MON, MON + D, 4);
    r.period = 7;
    expect_invalid(&r, false, "period: unknown value 7");
    r = req(MON, MON + D, 0);
    r.channel = 42;
    expect_invalid(&r, false, "channel: unknown value 42");
    r = req(MON, MON + D, 0);
    r.priority = 5;
    expect_invalid(&r, true, "priority: unknown value 5");
    r = req(MON, MON + D, 0);
    r.priority = HELPWIRE__V1__PRIORITY__PRIORITY_HIGH;
    expect_invalid(&r, false, "priority: only the SLA report filters by priority");
    r = req(MON, MON + D, 0);
    r.time_zone = "Mars/Base";
    expect_invalid(&r, false, "time_zone: unknown zone \"Mars/Base\"");
    r.time_zone = "../../etc/passwd";
    expect_invalid(&r, false, "time_zone: \"../../etc/passwd\" is not a time zone name");
    r.time_zone = "Europe";
    expect_invalid(&r, false, "time_zone: unknown zone \"Europe\"");

    /* Exactly 366 days and a real zone are fine; priority on the SLA report too. */
    r = req(MON, MON + 366 * D, 4);
    r.time_zone = "Asia/Shanghai";
    r.priority = HELPWIRE__V1__PRIORITY__PRIORITY_HIGH;
    hw_report *rep = NULL;
    char err[256] = "";
    assert_int_equal(hw_report_new(&r, true, &rep, err, sizeof err), HW_OK);
    hw_report_free(rep);
}

static Helpwire__V1__Survey survey(const char *agent, const char *queue, Helpwire__V1__Channel ch,
                                   int64_t sent, uint32_t rating)
{
    Helpwire__V1__Survey sv = HELPWIRE__V1__SURVEY__INIT;
    sv.id = "sv";
    sv.agent_id = (char *)agent;
    sv.queue = (char *)queue;
    sv.channel = ch;
    sv.sent_unix_ms = sent;
    sv.rating = rating;
    return sv;
}

#define TG HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM
#define WA HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP
#define WC HELPWIRE__V1__CHANNEL__CHANNEL_WEBCHAT

static hw_report *new_report(Helpwire__V1__ReportRequest *r, bool sla)
{
    hw_report *rep = NULL;
    char err[256] = "";
    int rc = hw_report_new(r, sla, &rep, err, sizeof err);
    if (rc != HW_OK)
        fail_msg("hw_report_new: %s", err);
    return rep;
}

static void add_sample_surveys(hw_report *rep)
{
    Helpwire__V1__Survey s[] = {
        survey("ag-anna", "billing", TG, MON + 1 * H, 5),
        survey("ag-anna", "billing", TG, MON + 2 * H, 4),
        survey("ag-anna", "technical", WA, MON + 3 * H, 2),
        survey("ag-bob", "technical", WA, MON + 4 * H, 0), /* not answered */
        survey("ag-bob", "technical", WC, MON + 25 * H, 1),
        survey("", "", WC, MON + 26 * H, 3),
        survey("ag-anna", "billing", TG, MON - 1, 5),     /* before the range */
        survey("ag-anna", "billing", TG, MON + 2 * D, 5), /* at its end: excluded */
    };
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        assert_int_equal(hw_report_add_survey(rep, &s[i]), HW_OK);
}

static void assert_row(const Helpwire__V1__CsatRow *row, const char *key, uint64_t sent, uint64_t answered,
                       const uint64_t dist[5])
{
    assert_string_equal(row->key, key);
    assert_int_equal(row->sent, sent);
    assert_int_equal(row->answered, answered);
    assert_int_equal(row->n_distribution, 5);
    uint64_t sum = 0, good = 0;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(row->distribution[i], dist[i]);
        sum += dist[i] * (uint64_t)(i + 1);
    }
    good = dist[3] + dist[4];
    assert_true(row->response_rate == (sent ? (double)answered / (double)sent : 0));
    assert_true(row->csat == (answered ? (double)good / (double)answered : 0));
    assert_true(row->average_rating == (answered ? (double)sum / (double)answered : 0));
}

static void test_csat_by_agent_queue_channel(void **state)
{
    (void)state;
    hw_arena *a = hw_arena_create(0);
    Helpwire__V1__CsatReport *out = NULL;

    Helpwire__V1__ReportRequest r =
        req(MON, MON + 2 * D, HELPWIRE__V1__REPORT_GROUPING__REPORT_GROUPING_AGENT);
    hw_report *rep = new_report(&r, false);
    add_sample_surveys(rep);
    assert_int_equal(hw_report_csat(rep, a, &out), HW_OK);
    assert_int_equal(out->n_rows, 3);
    assert_row(out->rows[0], "(unassigned)", 1, 1, (uint64_t[]){0, 0, 1, 0, 0});
    assert_row(out->rows[1], "ag-anna", 3, 3, (uint64_t[]){0, 1, 0, 1, 1});
    assert_row(out->rows[2], "ag-bob", 2, 1, (uint64_t[]){1, 0, 0, 0, 0});
    assert_row(out->total, "", 6, 5, (uint64_t[]){1, 1, 1, 1, 1});
    hw_report_free(rep);

    r.group_by = HELPWIRE__V1__REPORT_GROUPING__REPORT_GROUPING_QUEUE;
    rep = new_report(&r, false);
    add_sample_surveys(rep);
    assert_int_equal(hw_report_csat(rep, a, &out), HW_OK);
    assert_int_equal(out->n_rows, 3);
    assert_row(out->rows[0], "(none)", 1, 1, (uint64_t[]){0, 0, 1, 0, 0});
    assert_row(out->rows[1], "billing", 2, 2, (uint64_t[]){0, 0, 0, 1, 1});
    assert_row(out->rows[2], "technical", 3, 2, (uint64_t[]){1, 1, 0, 0, 0});
    hw_report_free(rep);

    r.group_by = HELPWIRE__V1__REPORT_GROUPING__REPORT_GROUPING_CHANNEL;
    rep = new_report(&r, false);
    add_sample_surveys(rep);
    assert_int_equal(hw_report_csat(rep, a, &out), HW_OK);
    assert_int_equal(out->n_rows, 3);
    assert_row(out->rows[0], "telegram", 2, 2, (uint64_t[]){0, 0, 0, 1, 1});
    assert_row(out->rows[1], "webchat", 2, 2, (uint64_t[]){1, 0, 1, 0, 0});
    assert_row(out->rows[2], "whatsapp", 2, 1, (uint64_t[]){0, 1, 0, 0, 0});
    hw_report_free(rep);

    /* Filters AND; no grouping gives only the total. */
    r.group_by = 0;
    r.agent_id = "ag-anna";
    r.channel = TG;
    rep = new_report(&r, false);
    add_sample_surveys(rep);
    assert_int_equal(hw_report_csat(rep, a, &out), HW_OK);
    assert_int_equal(out->n_rows, 0);
    assert_row(out->total, "", 2, 2, (uint64_t[]){0, 0, 0, 1, 1});
    hw_report_free(rep);

    /* Nothing matches: zeros, five buckets, no division by zero. */
    r.queue = "nope";
    rep = new_report(&r, false);
    add_sample_surveys(rep);
    assert_int_equal(hw_report_csat(rep, a, &out), HW_OK);
    assert_row(out->total, "", 0, 0, (uint64_t[]){0, 0, 0, 0, 0});
    hw_report_free(rep);
    hw_arena_destroy(a);
}

static void test_periods_in_zone(void **state)
{
    (void)state;
    hw_arena *a = hw_arena_create(0);
    Helpwire__V1__CsatReport *out = NULL;

    /* Days in Asia/Shanghai (UTC+8): 16:00Z is already the next local day.
     * The range starts 2026-03-01T16:00Z = 2026-03-02 00:00 local. */
    Helpwire__V1__ReportRequest r =
        req(MON - 8 * H, MON - 8 * H + 3 * D, HELPWIRE__V1__REPORT_GROUPING__REPORT_GROUPING_PERIOD);
    r.time_zone = "Asia/Shanghai";
    hw_report *rep = new_report(&r, false);
    Helpwire__V1__Survey s1 = survey("a", "q", TG, MON - 8 * H, 5);               /* 03-02 00:00 local */
    Helpwire__V1__Survey s2 = survey("a", "q", TG, MON + 15 * H + 59 * 60000, 4); /* 03-02 23:59 */
    Helpwire__V1__Survey s3 = survey("a", "q", TG, MON + 16 * H, 1);              /* 03-03 00:00 local */
    assert_int_equal(hw_report_add_survey(rep, &s1), HW_OK);
    assert_int_equal(hw_report_add_survey(rep, &s2), HW_OK);
    assert_int_equal(hw_report_add_survey(rep, &s3), HW_OK);
    assert_int_equal(hw_report_csat(rep, a, &out), HW_OK);
    assert_int_equal(out->n_rows, 3); /* the empty 03-04 is there too */
    assert_row(out->rows[0], "2026-03-02", 2, 2, (uint64_t[]){0, 0, 0, 1, 1});
    assert_row(out->rows[1], "2026-03-03", 1, 1, (uint64_t[]){1, 0, 0, 0, 0});
    assert_row(out->rows[2], "2026-03-04", 0, 0, (uint64_t[]){0, 0, 0, 0, 0});
    hw_report_free(rep);

    /* ISO weeks from Monday: Sunday 2026-03-08 23:30 UTC is week 03-02,
     * Monday 03-09 00:00 starts the next; a range from a Wednesday keys
     * its first week by that week's Monday. */
    r = req(MON + 2 * D, MON + 16 * D, HELPWIRE__V1__REPORT_GROUPING__REPORT_GROUPING_PERIOD);
    r.period = HELPWIRE__V1__REPORT_PERIOD__REPORT_PERIOD_WEEK;
    rep = new_report(&r, false);
    Helpwire__V1__Survey w1 = survey("a", "q", TG, MON + 7 * D - 30 * 60000, 5);
    Helpwire__V1__Survey w2 = survey("a", "q", TG, MON + 7 * D, 3);
    assert_int_equal(hw_report_add_survey(rep, &w1), HW_OK);
    assert_int_equal(hw_report_add_survey(rep, &w2), HW_OK);
    assert_int_equal(hw_report_csat(rep, a, &out), HW_OK);
    assert_int_equal(out->n_rows, 3);
    assert_row(out->rows[0], "2026-03-02", 1, 1, (uint64_t[]){0, 0, 0, 0, 1});
    assert_row(out->rows[1], "2026-03-09", 1, 1, (uint64_t[]){0, 0, 1, 0, 0});
    assert_row(out->rows[2], "2026-03-16", 0, 0, (uint64_t[]){0, 0, 0, 0, 0});
    hw_report_free(rep);

    /* Months in Europe/Berlin across the DST change of 2026-03-29: 2026-03-31
     * 22:30 UTC is April 1st 00:30 CEST (UTC+2); 2026-02-28 23:30 UTC is
     * March 1st 00:30 CET (UTC+1). */
    int64_t feb1 = MON - 29 * D; /* 2026-02-01T00:00Z */
    r = req(feb1, MON + 30 * D /* 2026-04-01T00:00Z, April 1st 02:00 local */,
            HELPWIRE__V1__REPORT_GROUPING__REPORT_GROUPING_PERIOD);
    r.period = HELPWIRE__V1__REPORT_PERIOD__REPORT_PERIOD_MONTH;
    r.time_zone = "Europe/Berlin";
    rep = new_report(&r, false);
    Helpwire__V1__Survey m1 = survey("a", "q", TG, MON - D - 30 * 60000, 5);               /* 02-28 23:30Z */
    Helpwire__V1__Survey m2 = survey("a", "q", TG, MON + 29 * D + 22 * H + 30 * 60000, 2); /* 03-31 22:30Z */
    Helpwire__V1__Survey m3 = survey("a", "q", TG, MON + 29 * D + 21 * H + 30 * 60000, 4); /* 03-31 21:30Z */
    assert_int_equal(hw_report_add_survey(rep, &m1), HW_OK);
    assert_int_equal(hw_report_add_survey(rep, &m2), HW_OK);
    assert_int_equal(hw_report_add_survey(rep, &m3), HW_OK);
    assert_int_equal(hw_report_csat(rep, a, &out), HW_OK);
    assert_int_equal(out->n_rows, 3); /* February (empty), March, April */
    assert_row(out->rows[0], "2026-02-01", 0, 0, (uint64_t[]){0, 0, 0, 0, 0});
    assert_row(out->rows[1], "2026-03-01", 2, 2, (uint64_t[]){0, 0, 0, 1, 1});
    assert_row(out->rows[2], "2026-04-01", 1, 1, (uint64_t[]){0, 1, 0, 0, 0});
    hw_report_free(rep);
    hw_arena_destroy(a);
}

static Helpwire__V1__SlaClock *clock_of(hw_arena *a, Helpwire__V1__SlaTarget target,
                                        Helpwire__V1__SlaState st)
{
    Helpwire__V1__SlaClock *c = hw_arena_alloc(a, sizeof *c);
    helpwire__v1__sla_clock__init(c);
    c->target = target;
    c->state = st;
    return c;
}

#define FR HELPWIRE__V1__SLA_TARGET__SLA_TARGET_FIRST_REPLY
#define NR HELPWIRE__V1__SLA_TARGET__SLA_TARGET_NEXT_REPLY
#define RS HELPWIRE__V1__SLA_TARGET__SLA_TARGET_RESOLUTION
#define MET HELPWIRE__V1__SLA_STATE__SLA_STATE_MET
#define BR HELPWIRE__V1__SLA_STATE__SLA_STATE_BREACHED
#define RUN HELPWIRE__V1__SLA_STATE__SLA_STATE_RUNNING
#define PAU HELPWIRE__V1__SLA_STATE__SLA_STATE_PAUSED

static Helpwire__V1__Ticket *sla_ticket(hw_arena *a, uint64_t number, const char *agent, const char *queue,
                                        Helpwire__V1__Priority prio, int64_t created,
                                        Helpwire__V1__SlaState fr, Helpwire__V1__SlaState rs)
{
    Helpwire__V1__Ticket *t = hw_arena_alloc(a, sizeof *t);
    helpwire__v1__ticket__init(t);
    t->id = hw_arena_printf(a, "t-%llu", (unsigned long long)number);
    t->number = number;
    t->assignee_agent_id = (char *)agent;
    t->queue = (char *)queue;
    t->channel = TG;
    t->priority = prio;
    t->created_unix_ms = created;
    t->sla_policy = "standard";
    t->sla = hw_arena_calloc(a, 2, sizeof *t->sla);
    t->sla[0] = clock_of(a, FR, fr);
    t->sla[1] = clock_of(a, RS, rs);
    t->n_sla = 2;
    return t;
}

static void assert_sla(const Helpwire__V1__SlaRow *row, const char *key, Helpwire__V1__SlaTarget target,
                       uint64_t met, uint64_t breached, uint64_t open)
{
    assert_string_equal(row->key, key);
    assert_int_equal(row->target, target);
    assert_int_equal(row->met, met);
    assert_int_equal(row->breached, breached);
    assert_int_equal(row->open, open);
    assert_true(row->attainment == (met + breached ? (double)met / (double)(met + breached) : 0));
}

static void test_sla_rows(void **state)
{
    (void)state;
    hw_arena *a = hw_arena_create(0);
    Helpwire__V1__ReportRequest r = req(MON, MON + D, HELPWIRE__V1__REPORT_GROUPING__REPORT_GROUPING_AGENT);
    hw_report *rep = new_report(&r, true);
    Helpwire__V1__Ticket *t[] = {
        sla_ticket(a, 1000, "ag-anna", "billing", 2, MON + H, MET, MET),
        sla_ticket(a, 1001, "ag-anna", "billing", 3, MON + 2 * H, BR, RUN),
        sla_ticket(a, 1002, "ag-bob", "billing", 3, MON + 3 * H, MET, PAU),
        sla_ticket(a, 1003, "ag-bob", "billing", 3, MON + D, MET, MET), /* after the range */
    };
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(hw_report_add_ticket(rep, t[i]), HW_OK);
    Helpwire__V1__Ticket none = HELPWIRE__V1__TICKET__INIT; /* no policy: no row */
    none.created_unix_ms = MON + H;
    none.assignee_agent_id = "ag-carl";
    assert_int_equal(hw_report_add_ticket(rep, &none), HW_OK);
    Helpwire__V1__SlaReport *out = NULL;
    assert_int_equal(hw_report_sla(rep, a, &out), HW_OK);
    assert_int_equal(out->n_rows, 6);
    assert_sla(out->rows[0], "ag-anna", FR, 1, 1, 0);
    assert_sla(out->rows[1], "ag-anna", NR, 0, 0, 0);
    assert_sla(out->rows[2], "ag-anna", RS, 1, 0, 1);
    assert_sla(out->rows[3], "ag-bob", FR, 1, 0, 0);
    assert_sla(out->rows[4], "ag-bob", NR, 0, 0, 0);
    assert_sla(out->rows[5], "ag-bob", RS, 0, 0, 1);
    assert_int_equal(out->n_total, 3);
    assert_sla(out->total[0], "", FR, 2, 1, 0);
    assert_sla(out->total[1], "", NR, 0, 0, 0);
    assert_sla(out->total[2], "", RS, 1, 0, 2);
    hw_report_free(rep);

    r.group_by = 0;
    r.priority = 3;
    rep = new_report(&r, true);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(hw_report_add_ticket(rep, t[i]), HW_OK);
    assert_int_equal(hw_report_sla(rep, a, &out), HW_OK);
    assert_int_equal(out->n_rows, 0);
    assert_sla(out->total[0], "", FR, 1, 1, 0);
    assert_sla(out->total[2], "", RS, 0, 0, 2);
    hw_report_free(rep);
    hw_arena_destroy(a);
}

/* ---- the store scan over 100,000 tickets ---- */

#define N_TICKETS 100000
#define STEP_MS (5 * 60 * 1000LL) /* one ticket every five minutes: ~347 days */
#define BATCH 5000

typedef struct seed_ctx {
    uint64_t first;
} seed_ctx;

static int seed_fn(hw_store_txn *w, void *arg)
{
    seed_ctx *c = arg;
    hw_arena *a = hw_store_txn_arena(w);
    for (uint64_t i = c->first; i < c->first + BATCH; i++) {
        Helpwire__V1__SlaState fr = i % 4 == 0 ? BR : MET;
        Helpwire__V1__Ticket *t = sla_ticket(a, 1000 + i, i % 2 ? "ag-anna" : "ag-bob", "billing", 2,
                                             MON + (int64_t)i * STEP_MS, fr, i % 3 == 0 ? RUN : MET);
        /* A clock that stepped back now and then: this ticket is 30 s
         * older than the one numbered before it, and still found. */
        if (i % 1000 == 999)
            t->created_unix_ms -= STEP_MS + 30000;
        int rc = hw_store_ticket_put(w, t, HW_PUT_CREATE, 0);
        if (rc != HW_OK)
            return rc;
    }
    return HW_OK;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t total_clocks(const Helpwire__V1__SlaReport *out, int target)
{
    const Helpwire__V1__SlaRow *r = out->total[target];
    return r->met + r->breached + r->open;
}

static void test_store_scan_100k(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    hw_test_dir(dir, sizeof dir, "reports");
    hw_store *s = hw_test_open(dir, 512u << 20, 0);
    assert_non_null(s);
    for (uint64_t first = 0; first < N_TICKETS; first += BATCH) {
        seed_ctx c = {.first = first};
        assert_int_equal(hw_store_write(s, seed_fn, &c), HW_OK);
    }
    hw_store_reader *rd = NULL;
    assert_int_equal(hw_store_reader_create(s, &rd), HW_OK);
    hw_arena *a = hw_arena_create(0);

    struct {
        const char *what;
        int64_t from, to;
        uint64_t expect;
    } cases[] = {
        {"one day", MON + 100 * D, MON + 101 * D, 288},
        {"one week", MON + 200 * D, MON + 207 * D, 7 * 288},
        {"366 days (everything)", MON - D, MON + 365 * D, N_TICKETS},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Helpwire__V1__ReportRequest r =
            req(cases[i].from, cases[i].to, HELPWIRE__V1__REPORT_GROUPING__REPORT_GROUPING_PERIOD);
        hw_report *rep = new_report(&r, true);
        hw_store_txn *t;
        assert_int_equal(hw_store_read_begin(rd, &t), HW_OK);
        double t0 = now_s();
        assert_int_equal(hw_report_scan_sla(rep, t), HW_OK);
        double took = now_s() - t0;
        hw_store_read_end(rd);
        Helpwire__V1__SlaReport *out = NULL;
        assert_int_equal(hw_report_sla(rep, a, &out), HW_OK);
        assert_int_equal(total_clocks(out, 0), cases[i].expect);
        assert_int_equal(total_clocks(out, 2), cases[i].expect);
        printf("SLA report over %d tickets, %s: %llu tickets in range, %.1f ms\n", N_TICKETS, cases[i].what,
               (unsigned long long)cases[i].expect, took * 1000);
        hw_report_free(rep);
        hw_arena_reset(a);
    }
    /* Exact counts: in the first day, tickets 0..287: i%4==0 breached. */
    Helpwire__V1__ReportRequest r = req(MON, MON + D, 0);
    hw_report *rep = new_report(&r, true);
    hw_store_txn *t;
    assert_int_equal(hw_store_read_begin(rd, &t), HW_OK);
    assert_int_equal(hw_report_scan_sla(rep, t), HW_OK);
    hw_store_read_end(rd);
    Helpwire__V1__SlaReport *out = NULL;
    assert_int_equal(hw_report_sla(rep, a, &out), HW_OK);
    assert_sla(out->total[0], "", FR, 216, 72, 0);
    assert_sla(out->total[2], "", RS, 192, 0, 96);
    hw_report_free(rep);

    hw_arena_destroy(a);
    assert_int_equal(hw_test_check_and_close(s, rd), 0);
}

/* ---- a clock that stepped back ---- */

static const int64_t stepped_s[] = {0, 500, 700, 650, 800}; /* ticket 1003 is 50 s older than 1002 */

static int seed_stepped_fn(hw_store_txn *w, void *arg)
{
    (void)arg;
    hw_arena *a = hw_store_txn_arena(w);
    for (size_t i = 0; i < sizeof stepped_s / sizeof stepped_s[0]; i++) {
        Helpwire__V1__Ticket *t =
            sla_ticket(a, 1000 + i, "ag-anna", "billing", 2, MON + stepped_s[i] * 1000, MET, MET);
        int rc = hw_store_ticket_put(w, t, HW_PUT_CREATE, 0);
        if (rc != HW_OK)
            return rc;
    }
    return HW_OK;
}

static int collect_number(void *arg, const Helpwire__V1__Ticket *tk)
{
    uint64_t *seen = arg;
    seen[seen[0]++ + 1] = tk->number;
    return 0;
}

#define STEP_SLACK_MS 60000

static void test_scan_tolerates_a_clock_that_stepped_back(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    hw_test_dir(dir, sizeof dir, "reports-step");
    hw_store *s = hw_test_open(dir, 0, 0);
    assert_non_null(s);
    assert_int_equal(hw_store_write(s, seed_stepped_fn, NULL), HW_OK);
    hw_store_reader *rd = NULL;
    assert_int_equal(hw_store_reader_create(s, &rd), HW_OK);
    hw_arena *a = hw_arena_create(0);
    struct {
        int64_t from_s, to_s;
        uint64_t want[4];
    } cases[] = {
        {680, 900, {2, 1002, 1004}},       /* 1003 (650 s) is out, 1002 before it is in */
        {640, 900, {3, 1002, 1003, 1004}}, /* all three */
        {600, 690, {1, 1003}},             /* only the stepped-back one */
        {0, 501, {2, 1000, 1001}},
        {801, 2000, {0}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t seen[8] = {0};
        hw_store_txn *t;
        assert_int_equal(hw_store_read_begin(rd, &t), HW_OK);
        int rc = hw_store_ticket_foreach_created(t, MON + cases[i].from_s * 1000, MON + cases[i].to_s * 1000,
                                                 STEP_SLACK_MS, a, collect_number, seen);
        hw_store_read_end(rd);
        assert_int_equal(rc, HW_OK);
        assert_int_equal(seen[0], cases[i].want[0]);
        for (uint64_t k = 1; k <= seen[0]; k++)
            assert_int_equal(seen[k], cases[i].want[k]);
    }
    hw_store_txn *t;
    assert_int_equal(hw_store_read_begin(rd, &t), HW_OK);
    assert_int_equal(hw_store_ticket_foreach_created(t, MON + 10, MON, 0, a, collect_number, NULL),
                     HW_EINVALID);
    hw_store_read_end(rd);
    hw_arena_destroy(a);
    assert_int_equal(hw_test_check_and_close(s, rd), 0);
}

/* ---- the CSAT report over 100,000 surveys ---- */

static int seed_surveys_fn(hw_store_txn *w, void *arg)
{
    seed_ctx *c = arg;
    hw_arena *a = hw_store_txn_arena(w);
    for (uint64_t i = c->first; i < c->first + BATCH; i++) {
        Helpwire__V1__Survey sv = survey(i % 2 ? "ag-anna" : "ag-bob", "billing", i % 3 ? TG : WA,
                                         MON + (int64_t)i * STEP_MS, (uint32_t)(i % 6)); /* 0: unanswered */
        sv.id = hw_arena_printf(a, "sv-%llu", (unsigned long long)i);
        sv.ticket_id = hw_arena_printf(a, "t-%llu", (unsigned long long)(1000 + i));
        unsigned char hash[8];
        for (int b = 0; b < 8; b++)
            hash[b] = (unsigned char)(i >> (8 * b));
        int rc = hw_store_survey_put(w, &sv, hash, sizeof hash, HW_PUT_CREATE);
        if (rc != HW_OK)
            return rc;
    }
    return HW_OK;
}

static void test_csat_store_scan_100k(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    hw_test_dir(dir, sizeof dir, "reports-csat");
    hw_store *s = hw_test_open(dir, 512u << 20, 0);
    assert_non_null(s);
    for (uint64_t first = 0; first < N_TICKETS; first += BATCH) {
        seed_ctx c = {.first = first};
        assert_int_equal(hw_store_write(s, seed_surveys_fn, &c), HW_OK);
    }
    hw_store_reader *rd = NULL;
    assert_int_equal(hw_store_reader_create(s, &rd), HW_OK);
    hw_arena *a = hw_arena_create(0);
    struct {
        const char *what;
        int64_t from, to;
        uint64_t expect;
    } cases[] = {
        {"one day", MON + 100 * D, MON + 101 * D, 288},
        {"366 days (everything)", MON - D, MON + 365 * D, N_TICKETS},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Helpwire__V1__ReportRequest r =
            req(cases[i].from, cases[i].to, HELPWIRE__V1__REPORT_GROUPING__REPORT_GROUPING_AGENT);
        hw_report *rep = new_report(&r, false);
        hw_store_txn *t;
        assert_int_equal(hw_store_read_begin(rd, &t), HW_OK);
        double t0 = now_s();
        assert_int_equal(hw_report_scan_csat(rep, t), HW_OK);
        double took = now_s() - t0;
        hw_store_read_end(rd);
        Helpwire__V1__CsatReport *out = NULL;
        assert_int_equal(hw_report_csat(rep, a, &out), HW_OK);
        assert_int_equal(out->total->sent, cases[i].expect);
        assert_int_equal(out->n_rows, 2);
        assert_int_equal(out->rows[0]->sent + out->rows[1]->sent, cases[i].expect);
        printf("CSAT report over %d surveys, %s: %llu surveys in range, %.1f ms\n", N_TICKETS, cases[i].what,
               (unsigned long long)cases[i].expect, took * 1000);
        hw_report_free(rep);
        hw_arena_reset(a);
    }
    /* The first day exactly: surveys 0..287, ratings i % 6 (0 unanswered). */
    Helpwire__V1__ReportRequest r = req(MON, MON + D, 0);
    hw_report *rep = new_report(&r, false);
    hw_store_txn *t;
    assert_int_equal(hw_store_read_begin(rd, &t), HW_OK);
    assert_int_equal(hw_report_scan_csat(rep, t), HW_OK);
    hw_store_read_end(rd);
    Helpwire__V1__CsatReport *out = NULL;
    assert_int_equal(hw_report_csat(rep, a, &out), HW_OK);
    assert_row(out->total, "", 288, 240, (uint64_t[]){48, 48, 48, 48, 48});
    hw_report_free(rep);
    hw_arena_destroy(a);
    assert_int_equal(hw_test_check_and_close(s, rd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_csat_by_agent_queue_channel),
        cmocka_unit_test(test_periods_in_zone),
        cmocka_unit_test(test_sla_rows),
        cmocka_unit_test(test_store_scan_100k),
        cmocka_unit_test(test_csat_store_scan_100k),
        cmocka_unit_test(test_scan_tolerates_a_clock_that_stepped_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
