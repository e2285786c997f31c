/*
 * hours_test: business hours (server/domain/hours.c) against the system's
 * tzdata. The expected instants were computed with Python's zoneinfo
 * (same tzdata, fold=0), written here as constants with the local time
 * they stand for. Covers a zone without DST (Asia/Shanghai), two with DST
 * (America/New_York, Europe/Berlin) across their changes, ranges over
 * none or several days and across midnight, holidays, always open, the
 * refused never-open hours, add/between consistency, dates far past the
 * zone's transition table (its POSIX footer), and bad input, with the
 * field named in the error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/base/errors.h"
#include "server/domain/hours.h"

#define H (3600 * 1000LL)
#define MIN (60 * 1000LL)
#define DAY (24 * H)

/* A BusinessHours built from a compact text, in a static-free holder.
 * days: "1:540-1080,1200-1260;5:0-1440" (weekday:open-close,...; ...),
 * "" for none; "1:" lists Monday with no range. holidays: "2026-10-01,..."
 * or "". */
typedef struct bh_holder {
    Helpwire__V1__BusinessHours bh;
    Helpwire__V1__DaySchedule ds[10], *dp[10];
    Helpwire__V1__TimeRange tr[10][10], *tp[10][10];
    Helpwire__V1__Holiday hd[400], *hp[400];
    char days_text[512], hol_text[8192], zone[256];
} bh_holder;

static Helpwire__V1__BusinessHours *make_bh(bh_holder *b, const char *zone, const char *days,
                                            const char *holidays)
{
    memset(b, 0, sizeof *b);
    helpwire__v1__business_hours__init(&b->bh);
    snprintf(b->zone, sizeof b->zone, "%s", zone);
    b->bh.time_zone = b->zone;
    snprintf(b->days_text, sizeof b->days_text, "%s", days);
    size_t nd = 0;
    char *save = NULL;
    for (char *day = strtok_r(b->days_text, ";", &save); day; day = strtok_r(NULL, ";", &save)) {
        helpwire__v1__day_schedule__init(&b->ds[nd]);
        b->dp[nd] = &b->ds[nd];
        b->ds[nd].weekday = (uint32_t)strtoul(day, NULL, 10);
        char *p = strchr(day, ':') + 1;
        size_t nr = 0;
        while (*p) {
            helpwire__v1__time_range__init(&b->tr[nd][nr]);
            b->tp[nd][nr] = &b->tr[nd][nr];
            b->tr[nd][nr].open_minute = (uint32_t)strtoul(p, &p, 10);
            p++;
            b->tr[nd][nr].close_minute = (uint32_t)strtoul(p, &p, 10);
            nr++;
            if (*p == ',')
                p++;
        }
        b->ds[nd].n_ranges = nr;
        b->ds[nd].ranges = b->tp[nd];
        nd++;
    }
    b->bh.n_days = nd;
    b->bh.days = b->dp;
    snprintf(b->hol_text, sizeof b->hol_text, "%s", holidays);
    size_t nh = 0;
    for (char *d = strtok_r(b->hol_text, ",", &save); d; d = strtok_r(NULL, ",", &save)) {
        helpwire__v1__holiday__init(&b->hd[nh]);
        b->hd[nh].date = d;
        b->hp[nh] = &b->hd[nh];
        nh++;
    }
    b->bh.n_holidays = nh;
    b->bh.holidays = b->hp;
    return &b->bh;
}

static hw_hours *compile_ok(const char *zone, const char *days, const char *holidays)
{
    bh_holder *b = malloc(sizeof *b);
    assert_non_null(b);
    hw_hours *h = NULL;
    char err[256];
    int rc = hw_hours_compile(make_bh(b, zone, days, holidays), &h, err, sizeof err);
    if (rc != HW_OK)
        fail_msg("compile %s %s: %s", zone, days, err);
    free(b);
    return h;
}

/* Compiling fails with HW_EINVALID and an error containing want. */
static void compile_fails(const char *zone, const char *days, const char *holidays, const char *want)
{
    bh_holder *b = malloc(sizeof *b);
    assert_non_null(b);
    hw_hours *h = NULL;
    char err[256] = "";
    int rc = hw_hours_compile(make_bh(b, zone, days, holidays), &h, err, sizeof err);
    free(b);
    if (rc != HW_EINVALID || !strstr(err, want))
        fail_msg("compile %s [%s] [%s]: rc %d, error \"%s\", wanted \"%s\"", zone, days, holidays, rc, err,
                 want);
    assert_null(h);
}

#define WEEKDAYS_9_18 "1:540-1080;2:540-1080;3:540-1080;4:540-1080;5:540-1080"
#define WEEKDAYS_9_17 "1:540-1020;2:540-1020;3:540-1020;4:540-1020;5:540-1020"

/* Asia/Shanghai (UTC+8 all year), Mon-Fri 09:00-18:00. */
static const int64_t SH_FRI_1700 = 1796374800000; /* 2026-12-04 17:00 */
static const int64_t SH_MON_0900 = 1796605200000; /* 2026-12-07 09:00 */
static const int64_t SH_MON_1000 = 1796608800000; /* 2026-12-07 10:00 */
static const int64_t SH_MON_1800 = 1796637600000; /* 2026-12-07 18:00 */

static void test_shanghai_weekdays(void **state)
{
    (void)state;
    hw_hours *h = compile_ok("Asia/Shanghai", WEEKDAYS_9_18, "");
    assert_false(hw_hours_always_open(h));
    assert_string_equal(hw_hours_time_zone(h), "Asia/Shanghai");
    assert_true(hw_hours_is_open(h, SH_MON_1000));
    assert_true(hw_hours_is_open(h, SH_MON_0900));
    assert_false(hw_hours_is_open(h, SH_MON_0900 - 1));
    assert_false(hw_hours_is_open(h, SH_MON_1800)); /* [open, close) */
    assert_true(hw_hours_is_open(h, SH_MON_1800 - 1));
    assert_false(hw_hours_is_open(h, SH_FRI_1700 + 1 * DAY)); /* Saturday 17:00 */
    /* Friday 18:00 -> Monday 09:00, over the weekend. */
    assert_int_equal(hw_hours_next_open(h, SH_FRI_1700 + 1 * H), SH_MON_0900);
    assert_int_equal(hw_hours_next_open(h, SH_MON_1000), SH_MON_1000);
    assert_int_equal(hw_hours_next_close(h, SH_MON_1000), SH_MON_1800);
    assert_int_equal(hw_hours_next_close(h, SH_FRI_1700 + 2 * H),
                     SH_MON_1800); /* closed: the next stretch's */
    /* Two business hours from Friday 17:00: one on Friday, one on Monday. */
    assert_int_equal(hw_hours_add(h, SH_FRI_1700, 2 * H), SH_MON_1000);
    assert_int_equal(hw_hours_between(h, SH_FRI_1700, SH_MON_1000), 2 * H);
    /* Exactly the hour left on Friday ends at the close. */
    assert_int_equal(hw_hours_add(h, SH_FRI_1700, 1 * H), SH_FRI_1700 + 1 * H);
    /* A whole week is 45 open hours. */
    assert_int_equal(hw_hours_between(h, SH_MON_0900, SH_MON_0900 + 7 * DAY), 45 * H);
    hw_local_time lt;
    assert_int_equal(hw_hours_local(h, SH_MON_1000, &lt), HW_OK);
    assert_string_equal(lt.date, "2026-12-07");
    assert_int_equal(lt.weekday, 1);
    assert_int_equal(lt.hour, 10);
    assert_int_equal(lt.minute, 0);
    assert_int_equal(lt.utc_offset_s, 8 * 3600);
    hw_hours_free(h);
}

/* America/New_York, Mon-Fri 09:00-17:00, over both DST changes of 2026. */
static void test_new_york_across_dst(void **state)
{
    (void)state;
    hw_hours *h = compile_ok("America/New_York", WEEKDAYS_9_17, "");
    const int64_t fri_mar_1600 = 1772830800000; /* 2026-03-06 16:00 EST */
    const int64_t mon_mar_1000 = 1773064800000; /* 2026-03-09 10:00 EDT */
    assert_int_equal(hw_hours_add(h, fri_mar_1600, 2 * H), mon_mar_1000);
    assert_int_equal(hw_hours_between(h, fri_mar_1600, mon_mar_1000), 2 * H);
    assert_int_equal(hw_hours_next_open(h, fri_mar_1600 + 2 * H), mon_mar_1000 - 1 * H);
    const int64_t fri_oct_1600 = 1793390400000; /* 2026-10-30 16:00 EDT */
    const int64_t mon_nov_1000 = 1793631600000; /* 2026-11-02 10:00 EST */
    assert_int_equal(hw_hours_add(h, fri_oct_1600, 2 * H), mon_nov_1000);
    assert_int_equal(hw_hours_next_close(h, mon_nov_1000), mon_nov_1000 + 7 * H);
    hw_local_time lt;
    assert_int_equal(hw_hours_local(h, mon_mar_1000, &lt), HW_OK);
    assert_int_equal(lt.hour, 10);
    assert_int_equal(lt.utc_offset_s, -4 * 3600);
    assert_int_equal(hw_hours_local(h, mon_nov_1000, &lt), HW_OK);
    assert_int_equal(lt.hour, 10);
    assert_int_equal(lt.utc_offset_s, -5 * 3600);
    hw_hours_free(h);

    /* Open all day (holidays only): the weekend of the spring change has 47
     * hours, the one of the autumn change 49. */
    h = compile_ok("America/New_York", "", "2026-07-04");
    assert_false(hw_hours_always_open(h));
    assert_int_equal(hw_hours_between(h, 1772859600000 /* Sat 03-07 00:00 */, 1773028800000 /* Mon 03-09 */),
                     47 * H);
    assert_int_equal(hw_hours_between(h, 1793419200000 /* Sat 10-31 00:00 */, 1793595600000 /* Mon 11-02 */),
                     49 * H);
    hw_hours_free(h);

    /* Sunday 01:00-04:00 on the spring-forward day: 02:00-03:00 does not
     * exist, so the range is two hours long. */
    h = compile_ok("America/New_York", "7:60-240", "");
    const int64_t sun_0000 = 1772946000000, sun_0100 = 1772949600000, sun_0400 = 1772956800000;
    assert_int_equal(hw_hours_next_open(h, sun_0000), sun_0100);
    assert_int_equal(hw_hours_next_close(h, sun_0100), sun_0400);
    assert_int_equal(sun_0400 - sun_0100, 2 * H);
    assert_int_equal(hw_hours_between(h, sun_0000, sun_0000 + DAY), 2 * H);
    hw_hours_free(h);
}

/* Europe/Berlin: Sundays open all day; the DST Sundays last 23 and 25
 * hours; an opening inside the skipped hour is taken with the old offset,
 * one inside the repeated hour at its first occurrence. */
static void test_berlin_dst_days(void **state)
{
    (void)state;
    hw_hours *h = compile_ok("Europe/Berlin", "7:0-1440", "");
    const int64_t mar29 = 1774738800000, mar30 = 1774821600000; /* 2026-03-29/30 00:00 */
    const int64_t oct25 = 1792879200000, oct26 = 1792969200000; /* 2026-10-25/26 00:00 */
    assert_int_equal(hw_hours_between(h, mar29, mar30), 23 * H);
    assert_int_equal(hw_hours_between(h, oct25, oct26), 25 * H);
    assert_int_equal(hw_hours_next_close(h, mar29), mar30);
    assert_int_equal(hw_hours_next_open(h, mar30), mar30 + 6 * DAY); /* 04-05 00:00 CEST */
    hw_hours_free(h);

    h = compile_ok("Europe/Berlin", "7:150-600", "");              /* Sundays 02:30-10:00 */
    assert_int_equal(hw_hours_next_open(h, mar29), 1774747800000); /* 02:30 CET = 03:30 CEST */
    assert_int_equal(hw_hours_between(h, mar29, mar30), 6 * H + 30 * MIN);
    assert_int_equal(hw_hours_next_open(h, oct25), 1792888200000);         /* the first 02:30 (CEST) */
    assert_int_equal(hw_hours_between(h, oct25, oct26), 8 * H + 30 * MIN); /* 7:30 + the repeated hour */
    hw_hours_free(h);
}

/* Ranges: several per day, none on some listed days, touching across
 * midnight (one stretch), and a stretch crossing several closed days. */
static void test_ranges_and_days(void **state)
{
    (void)state;
    /* Mon 18:00-24:00 and Tue 00:00-02:00 touch: one stretch. */
    hw_hours *h = compile_ok("Asia/Shanghai", "1:1080-1440;2:0-120,600-660;3:", "");
    const int64_t mon_2000 = 1796644800000, tue_0200 = 1796666400000;
    assert_true(hw_hours_is_open(h, mon_2000));
    assert_int_equal(hw_hours_next_close(h, mon_2000), tue_0200);
    assert_int_equal(hw_hours_next_open(h, tue_0200), tue_0200 + 8 * H);  /* Tue 10:00 */
    assert_int_equal(hw_hours_next_close(h, tue_0200), tue_0200 + 9 * H); /* Tue 11:00 */
    assert_int_equal(hw_hours_add(h, mon_2000, 7 * H), tue_0200 + 9 * H); /* 4 h + 2 h + 1 h */
    assert_int_equal(hw_hours_add(h, mon_2000, 5 * H), tue_0200 - 1 * H); /* across midnight */
    /* Wednesday is listed with no range: closed, so after Tue 11:00 comes
     * Monday 18:00 again. */
    assert_int_equal(hw_hours_next_open(h, tue_0200 + 9 * H), SH_MON_1800 + 7 * DAY);
    assert_int_equal(hw_hours_between(h, SH_MON_0900, SH_MON_0900 + 7 * DAY), 9 * H);
    hw_hours_free(h);
}

typedef struct iv_list {
    int64_t s[16], e[16];
    int n;
} iv_list;

static bool collect(void *arg, int64_t s, int64_t e)
{
    iv_list *l = arg;
    l->s[l->n] = s;
    l->e[l->n] = e;
    return ++l->n < 16;
}

static void test_intervals_merged_and_clipped(void **state)
{
    (void)state;
    hw_hours *h = compile_ok("Asia/Shanghai", "1:1080-1440;2:0-120,600-660", "");
    iv_list l = {0};
    /* From Monday 20:00 for a week: [20:00, Tue 02:00), [Tue 10:00, 11:00),
     * then next Monday's evening, cut at the end. */
    hw_hours_intervals(h, 1796644800000, 1796644800000 + 7 * DAY, collect, &l);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.s[0], 1796644800000);
    assert_int_equal(l.e[0], 1796666400000);
    assert_int_equal(l.s[1], 1796666400000 + 8 * H);
    assert_int_equal(l.e[1], 1796666400000 + 9 * H);
    assert_int_equal(l.s[2], SH_MON_1800 + 7 * DAY);
    assert_int_equal(l.e[2], 1796644800000 + 7 * DAY);
    hw_hours_free(h);
}

/* Holidays close their local date; the next opening skips them. */
static void test_holidays(void **state)
{
    (void)state;
    /* National Day: 2026-10-01 (Thursday) and 10-02 listed twice, unordered. */
    hw_hours *h = compile_ok("Asia/Shanghai", WEEKDAYS_9_18, "2026-10-02,2026-10-01,2026-10-02");
    const int64_t wed_1800 = 1790762400000;                                /* 2026-09-30 18:00 */
    const int64_t fri_0900 = 1790902800000;                                /* 2026-10-02 09:00 */
    assert_int_equal(hw_hours_next_open(h, wed_1800), fri_0900 + 3 * DAY); /* Monday 10-05 */
    assert_false(hw_hours_is_open(h, fri_0900 - DAY + 1 * H));             /* Thursday 10:00 */
    assert_int_equal(hw_hours_between(h, wed_1800, fri_0900 + 3 * DAY), 0);
    hw_hours_free(h);
    /* Without the holidays Thursday opens. */
    h = compile_ok("Asia/Shanghai", WEEKDAYS_9_18, "");
    assert_int_equal(hw_hours_next_open(h, wed_1800), fri_0900 - DAY);
    hw_hours_free(h);
}

static void test_always_open(void **state)
{
    (void)state;
    const int64_t t = 1796608800000;
    assert_true(hw_hours_always_open(NULL));
    assert_true(hw_hours_is_open(NULL, t));
    assert_int_equal(hw_hours_next_open(NULL, t), t);
    assert_int_equal(hw_hours_next_close(NULL, t), INT64_MAX);
    assert_int_equal(hw_hours_add(NULL, t, 5 * H), t + 5 * H);
    assert_int_equal(hw_hours_between(NULL, t, t + 5 * H), 5 * H);
    assert_string_equal(hw_hours_time_zone(NULL), "");

    hw_hours *h = NULL;
    char err[256];
    Helpwire__V1__BusinessHours empty = HELPWIRE__V1__BUSINESS_HOURS__INIT;
    assert_int_equal(hw_hours_compile(&empty, &h, err, sizeof err), HW_OK);
    assert_true(hw_hours_always_open(h));
    hw_hours_free(h);
    assert_int_equal(hw_hours_compile(NULL, &h, err, sizeof err), HW_OK);
    assert_true(hw_hours_always_open(h));
    hw_hours_free(h);
    /* A zone alone: always open, local times in that zone. */
    h = compile_ok("Asia/Shanghai", "", "");
    assert_true(hw_hours_always_open(h));
    hw_local_time lt;
    assert_int_equal(hw_hours_local(h, t, &lt), HW_OK);
    assert_int_equal(lt.hour, 10);
    hw_hours_free(h);
    /* Every day 00:00-24:00 without holidays is always open. */
    h = compile_ok("Europe/Berlin", "1:0-1440;2:0-1440;3:0-1440;4:0-1440;5:0-1440;6:0-1440;7:0-1440", "");
    assert_true(hw_hours_always_open(h));
    assert_int_equal(hw_hours_next_close(h, t), INT64_MAX);
    hw_hours_free(h);
}

/* Listed days without any range would never open: refused. */
static void test_never_open_refused(void **state)
{
    (void)state;
    compile_fails("Asia/Shanghai", "1:;2:", "", "hours.days: no day has an open range");
}

/* between(a, add(a, x)) == x and add is monotonic, over many starts and
 * amounts, in a zone with DST and an irregular week. */
static void test_add_between_consistent(void **state)
{
    (void)state;
    const char *zones[] = {"America/New_York", "Europe/Berlin", "Asia/Shanghai", "Australia/Sydney"};
    uint64_t seed = 42;
    for (size_t z = 0; z < 4; z++) {
        hw_hours *h = compile_ok(zones[z], "7:60-240,300-1440;1:0-120,600-660;3:1380-1440;4:0-60;6:90-150",
                                 "2026-11-02,2026-12-25");
        for (int i = 0; i < 400; i++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            int64_t a = 1767225600000 + (int64_t)((seed >> 16) % (366ULL * 86400000ULL));
            if (i % 4 == 0)
                a -= a % (30 * MIN); /* on range edges too */
            int64_t amounts[] = {1, MIN, H, 8 * H, 40 * H, (int64_t)((seed >> 8) % (300 * H)) + 1};
            int64_t prev = a;
            for (size_t k = 0; k < 6; k++) {
                int64_t x = amounts[k];
                int64_t b = hw_hours_add(h, a, x);
                assert_true(b > a);
                assert_int_equal(hw_hours_between(h, a, b), x);
                assert_true(hw_hours_is_open(h, b - 1)); /* the last millisecond counted is open */
                if (k < 5)
                    assert_true(b >= prev);
                prev = b;
            }
            assert_int_equal(hw_hours_add(h, a, 0), a);
            assert_int_equal(hw_hours_between(h, a, a), 0);
            assert_int_equal(hw_hours_between(h, a + 1, a), 0);
        }
        hw_hours_free(h);
    }
}

/* Past the zone's transition table the POSIX footer rules: DST still
 * switches in 2100 and 2200. */
static void test_far_future(void **state)
{
    (void)state;
    hw_hours *h = compile_ok("America/New_York", WEEKDAYS_9_17, "");
    hw_local_time lt;
    assert_int_equal(hw_hours_local(h, 4118140800000 /* 2100-07-01 12:00 EDT */, &lt), HW_OK);
    assert_string_equal(lt.date, "2100-07-01");
    assert_int_equal(lt.weekday, 4);
    assert_int_equal(lt.hour, 12);
    assert_int_equal(lt.utc_offset_s, -4 * 3600);
    assert_int_equal(hw_hours_local(h, 4131363600000 /* 2100-12-01 12:00 EST */, &lt), HW_OK);
    assert_int_equal(lt.hour, 12);
    assert_int_equal(lt.utc_offset_s, -5 * 3600);
    /* The DST weekend of 2100 (starts Sunday 03-14). */
    assert_int_equal(hw_hours_add(h, 4108568400000 /* Fri 03-12 16:00 EST */, 2 * H),
                     4108802400000 /* Mon 03-15 10:00 EDT */);
    hw_hours_free(h);

    h = compile_ok("Europe/Berlin", "4:540-1080", "");
    assert_int_equal(hw_hours_local(h, 7273792800000 /* 2200-07-01 12:00 CEST */, &lt), HW_OK);
    assert_int_equal(lt.hour, 12);
    assert_int_equal(lt.utc_offset_s, 2 * 3600);
    hw_hours_free(h);

    h = compile_ok("Asia/Shanghai", WEEKDAYS_9_18, "");
    assert_true(hw_hours_is_open(h, 5680285200000)); /* 2150-01-01 09:00, a Thursday */
    assert_false(hw_hours_is_open(h, 5680285200000 - 1));
    hw_hours_free(h);
}

static void test_bad_zones(void **state)
{
    (void)state;
    compile_fails("Mars/Base", WEEKDAYS_9_18, "", "hours.time_zone: unknown zone \"Mars/Base\"");
    /* Names are checked before any file is opened. */
    compile_fails("../../etc/passwd", WEEKDAYS_9_18, "",
                  "hours.time_zone: \"../../etc/passwd\" is not a time zone name");
    compile_fails("/usr/share/zoneinfo/UTC", WEEKDAYS_9_18, "", "is not a time zone name"); /* absolute */
    compile_fails("Asia//Shanghai", WEEKDAYS_9_18, "", "is not a time zone name");
    compile_fails("zone.tab", WEEKDAYS_9_18, "", "is not a time zone name");
    compile_fails("Asia/Shanghai\n", WEEKDAYS_9_18, "", "is not a time zone name");
    /* A directory and a file that is not TZif data. */
    compile_fails("America", WEEKDAYS_9_18, "", "unknown zone \"America\"");
    compile_fails("leapseconds", WEEKDAYS_9_18, "", "unknown zone \"leapseconds\"");
    compile_fails("", WEEKDAYS_9_18, "", "hours.time_zone: required");
    compile_fails("", "", "2026-10-01", "hours.time_zone: required");
    compile_fails("Mars/Base", "", "", "unknown zone"); /* checked even when always open */
}

static void test_bad_days_and_holidays(void **state)
{
    (void)state;
    compile_fails("Asia/Shanghai", "1:540-1080;8:540-1080", "", "hours.days[1].weekday: 8 is not 1");
    compile_fails("Asia/Shanghai", "0:540-1080", "", "hours.days[0].weekday: 0 is not 1");
    compile_fails("Asia/Shanghai", "1:540-1080;2:540-600;1:600-700", "",
                  "hours.days[2].weekday: weekday 1 is listed twice");
    compile_fails("Asia/Shanghai", "1:540-1080;2:540-1500", "",
                  "hours.days[1].ranges[0]: close_minute 1500 > 1440");
    compile_fails("Asia/Shanghai", "1:1440-1440", "", "hours.days[0].ranges[0]: open_minute 1440 > 1439");
    compile_fails("Asia/Shanghai", "1:600-600", "",
                  "hours.days[0].ranges[0]: close_minute 600 is not after open_minute 600");
    compile_fails("Asia/Shanghai", "1:540-720,700-1080", "",
                  "hours.days[0].ranges[1]: opens at minute 700, before ranges[0] closes");
    compile_fails("Asia/Shanghai", "1:800-900,540-600", "", "hours.days[0].ranges[1]");
    compile_fails("Asia/Shanghai", "1:0-1,2-3,4-5,6-7,8-9,10-11,12-13,14-15,16-17", "",
                  "hours.days[0].ranges: 9 ranges, at most 8");
    compile_fails("Asia/Shanghai", WEEKDAYS_9_18, "2026-10-01,2026-02-30",
                  "hours.holidays[1].date: \"2026-02-30\" is not a date");
    compile_fails("Asia/Shanghai", WEEKDAYS_9_18, "2026-1-01", "hours.holidays[0].date");
    compile_fails("Asia/Shanghai", WEEKDAYS_9_18, "10/01/2026", "hours.holidays[0].date");
    /* 2028-02-29 exists, 2026-02-29 does not. */
    hw_hours_free(compile_ok("Asia/Shanghai", WEEKDAYS_9_18, "2028-02-29"));
    compile_fails("Asia/Shanghai", WEEKDAYS_9_18, "2026-02-29", "hours.holidays[0].date");
    /* 367 holidays: one too many. */
    char many[8192] = "";
    for (int i = 0; i < 367; i++) {
        char d[16];
        snprintf(d, sizeof d, "%s%04d-01-01", i ? "," : "", 2030 + i);
        strcat(many, d);
    }
    compile_fails("Asia/Shanghai", WEEKDAYS_9_18, many, "hours.holidays: 367 entries, at most 366");
}

/* The cache hands out one compiled copy per content, NULL for always
 * open, refuses bad hours, evicts beyond its size without freeing what
 * callers still hold, and is safe from several threads. */
static void test_cache(void **state)
{
    (void)state;
    hw_hours_cache *c;
    assert_int_equal(hw_hours_cache_create(&c), HW_OK);
    bh_holder *b1 = malloc(sizeof *b1), *b2 = malloc(sizeof *b2);
    char err[256];
    hw_hours *x = NULL, *y = NULL, *z = NULL;
    assert_int_equal(
        hw_hours_cache_get(c, make_bh(b1, "Asia/Shanghai", WEEKDAYS_9_18, ""), &x, err, sizeof err), HW_OK);
    assert_int_equal(
        hw_hours_cache_get(c, make_bh(b2, "Asia/Shanghai", WEEKDAYS_9_18, ""), &y, err, sizeof err), HW_OK);
    assert_non_null(x);
    assert_ptr_equal(x, y); /* same content, one copy */
    assert_int_equal(
        hw_hours_cache_get(c, make_bh(b2, "Asia/Shanghai", WEEKDAYS_9_17, ""), &z, err, sizeof err), HW_OK);
    assert_ptr_not_equal(x, z);
    assert_int_equal(hw_hours_next_close(z, SH_MON_1000), SH_MON_1800 - 1 * H);
    hw_hours *n = (hw_hours *)1;
    assert_int_equal(hw_hours_cache_get(c, NULL, &n, err, sizeof err), HW_OK);
    assert_null(n);
    assert_int_equal(hw_hours_cache_get(c, make_bh(b2, "Asia/Shanghai", "", ""), &n, err, sizeof err), HW_OK);
    assert_null(n);
    assert_int_equal(hw_hours_cache_get(c, make_bh(b2, "Mars/Base", WEEKDAYS_9_18, ""), &n, err, sizeof err),
                     HW_EINVALID);
    assert_non_null(strstr(err, "unknown zone"));
    /* 200 other contents push x out of the cache; x stays usable. */
    for (int i = 0; i < 200; i++) {
        char days[32];
        snprintf(days, sizeof days, "1:%d-%d", i, i + 1);
        hw_hours *t = NULL;
        assert_int_equal(hw_hours_cache_get(c, make_bh(b2, "Asia/Shanghai", days, ""), &t, err, sizeof err),
                         HW_OK);
        hw_hours_free(t);
    }
    hw_hours *again = NULL;
    assert_int_equal(
        hw_hours_cache_get(c, make_bh(b1, "Asia/Shanghai", WEEKDAYS_9_18, ""), &again, err, sizeof err),
        HW_OK);
    assert_ptr_not_equal(again, x); /* compiled anew */
    hw_hours_cache_destroy(c);
    assert_true(hw_hours_is_open(x, SH_MON_1000)); /* references outlive the cache */
    assert_true(hw_hours_is_open(again, SH_MON_1000));
    hw_hours_free(x);
    hw_hours_free(y);
    hw_hours_free(z);
    hw_hours_free(again);
    free(b1);
    free(b2);
}

typedef struct cache_thread_arg {
    hw_hours_cache *c;
    int seed;
} cache_thread_arg;

static void *cache_thread(void *p)
{
    cache_thread_arg *a = p;
    bh_holder *b = malloc(sizeof *b);
    char err[256];
    for (int i = 0; i < 300; i++) {
        char days[32];
        int k = (i * 7 + a->seed) % 150;
        snprintf(days, sizeof days, "1:%d-%d", k, k + 1);
        hw_hours *t = NULL;
        if (hw_hours_cache_get(a->c, make_bh(b, "Europe/Berlin", days, ""), &t, err, sizeof err) != HW_OK ||
            !t)
            abort();
        if (hw_hours_between(t, 1774738800000, 1774738800000 + 7 * DAY) != 60000)
            abort();
        hw_hours_free(t);
    }
    free(b);
    return NULL;
}

static void test_cache_threads(void **state)
{
    (void)state;
    hw_hours_cache *c;
    assert_int_equal(hw_hours_cache_create(&c), HW_OK);
    pthread_t th[4];
    cache_thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (cache_thread_arg){c, i * 13};
        assert_int_equal(pthread_create(&th[i], NULL, cache_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    hw_hours_cache_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shanghai_weekdays),
        cmocka_unit_test(test_new_york_across_dst),
        cmocka_unit_test(test_berlin_dst_days),
        cmocka_unit_test(test_ranges_and_days),
        cmocka_unit_test(test_intervals_merged_and_clipped),
        cmocka_unit_test(test_holidays),
        cmocka_unit_test(test_always_open),
        cmocka_unit_test(test_never_open_refused),
        cmocka_unit_test(test_add_between_consistent),
        cmocka_unit_test(test_far_future),
        cmocka_unit_test(test_bad_zones),
        cmocka_unit_test(test_bad_days_and_holidays),
        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_cache_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
