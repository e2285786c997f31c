/*
 * hours: business-hours arithmetic (see hours.h for the rules).
 *
 * Everything is built on one walk: the open intervals of consecutive local
 * days, in UTC milliseconds. A local day's ranges are converted with the
 * zone's offsets (so a day may be 23 or 25 hours long), holidays give no
 * interval, and the walk gives up after MAX_SCAN_DAYS days without one
 * (valid hours cannot get there: at most 366 holidays, and some listed day
 * has a range). is_open, next_open, add and between use the raw intervals;
 * next_close and the interval listing merge the ones that touch.
 *
 * The zone is the TZif v2+ file's 64-bit section: transition times, the
 * local time type of each, and the POSIX TZ string of the footer for the
 * instants after the last transition (RFC 8536). Leap-second records are
 * skipped (the "right/" zones are not meant for civil time).
 */
#include "server/domain/hours.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/base/errors.h"

#define ZONEINFO_DIR "/usr/share/zoneinfo"
#define DAY_MS 86400000LL
#define MAX_SCAN_DAYS (366 * 7 + 14)
#define MAX_RANGES 8
#define MAX_HOLIDAYS 366
#define MAX_ZONE_FILE (512 * 1024)
/* Instants handled: about +-200000 years, far from int64 overflow. */
#define MAX_ABS_MS (6311390400000000LL)

/* ------------------------------------------------------------ calendar */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static int64_t floor_mod(int64_t a, int64_t b)
{
    return a - floor_div(a, b) * b;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int n[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : n[m - 1];
}

/* ISO weekday (1 Monday .. 7 Sunday) of a day number; 1970-01-01 was a
 * Thursday. */
static int iso_weekday(int64_t day)
{
    return (int)floor_mod(day + 3, 7) + 1;
}

/* ---------------------------------------------------------------- zone */

typedef struct tz_rule_date {
    char kind; /* 'J' Julian 1..365 without Feb 29, 'D' 0..365, 'M' month.week.day */
    int n, m, w, d;
    int32_t time; /* seconds after local midnight (may be negative or > 24 h) */
} tz_rule_date;

/* The POSIX TZ string of a TZif footer. Offsets are local = UTC + off. */
typedef struct tz_rule {
    bool has_dst;
    int32_t std_off, dst_off;
    tz_rule_date start, end;
} tz_rule;

typedef struct tz_type {
    int32_t off;
} tz_type;

typedef struct tz_zone {
    int64_t *trans; /* [n_trans], seconds, ascending */
    uint8_t *idx;   /* [n_trans], into types */
    size_t n_trans;
    tz_type *types; /* [n_types] */
    size_t n_types;
    bool has_footer;
    tz_rule footer;
} tz_zone;

static const char *parse_tz_name(const char *p)
{
    if (*p == '<') {
        const char *q = strchr(p, '>');
        return q ? q + 1 : NULL;
    }
    const char *s = p;
    while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
        p++;
    return p - s >= 3 ? p : NULL;
}

/* [+-]h[hh][:mm[:ss]] into seconds (sign applied). */
static const char *parse_tz_time(const char *p, int32_t *out)
{
    int sign = 1;
    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    if (*p < '0' || *p > '9')
        return NULL;
    int32_t h = 0, m = 0, s = 0;
    for (int i = 0; i < 3 && *p >= '0' && *p <= '9'; i++)
        h = h * 10 + (*p++ - '0');
    if (*p == ':') {
        p++;
        if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
            return NULL;
        m = (p[0] - '0') * 10 + (p[1] - '0');
        p += 2;
        if (*p == ':') {
            p++;
            if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
                return NULL;
            s = (p[0] - '0') * 10 + (p[1] - '0');
            p += 2;
        }
    }
    if (h > 167 || m > 59 || s > 59)
        return NULL;
    *out = sign * (h * 3600 + m * 60 + s);
    return p;
}

static const char *parse_tz_num(const char *p, int *out, int lo, int hi)
{
    if (*p < '0' || *p > '9')
        return NULL;
    int v = 0;
    while (*p >= '0' && *p <= '9' && v <= 1000)
        v = v * 10 + (*p++ - '0');
    if (v < lo || v > hi)
        return NULL;
    *out = v;
    return p;
}

static const char *parse_tz_rule_date(const char *p, tz_rule_date *r)
{
    memset(r, 0, sizeof *r);
    if (*p == 'J') {
        r->kind = 'J';
        p = parse_tz_num(p + 1, &r->n, 1, 365);
    } else if (*p == 'M') {
        r->kind = 'M';
        p = parse_tz_num(p + 1, &r->m, 1, 12);
        if (p && *p == '.')
            p = parse_tz_num(p + 1, &r->w, 1, 5);
        else
            p = NULL;
        if (p && *p == '.')
            p = parse_tz_num(p + 1, &r->d, 0, 6);
        else
            p = NULL;
    } else {
        r->kind = 'D';
        p = parse_tz_num(p, &r->n, 0, 365);
    }
    if (!p)
        return NULL;
    r->time = 7200;
    if (*p == '/')
        p = parse_tz_time(p + 1, &r->time);
    return p;
}

/* Parses a POSIX TZ string (the TZif footer); false when malformed. */
static bool parse_tz_rule(const char *p, tz_rule *r)
{
    memset(r, 0, sizeof *r);
    int32_t v;
    if (!(p = parse_tz_name(p)) || !(p = parse_tz_time(p, &v)))
        return false;
    r->std_off = -v;
    if (!*p)
        return true;
    if (!(p = parse_tz_name(p)))
        return false;
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (*p && *p != ',') {
        if (!(p = parse_tz_time(p, &v)))
            return false;
        r->dst_off = -v;
    }
    if (*p != ',') {
        /* No rules: the US rules since 2007, as glibc assumes. */
        r->start = (tz_rule_date){'M', 0, 3, 2, 0, 7200};
        r->end = (tz_rule_date){'M', 0, 11, 1, 0, 7200};
        return *p == '\0';
    }
    if (!(p = parse_tz_rule_date(p + 1, &r->start)) || *p != ',' || !(p = parse_tz_rule_date(p + 1, &r->end)))
        return false;
    return *p == '\0';
}

/* Seconds since the epoch of local midnight (as if UTC) of the rule's date
 * in year y. */
static int64_t rule_day_secs(const tz_rule_date *r, int64_t y)
{
    int64_t day;
    if (r->kind == 'J')
        day = days_from_civil(y, 1, 1) + r->n - 1 + (is_leap(y) && r->n >= 60 ? 1 : 0);
    else if (r->kind == 'D')
        day = days_from_civil(y, 1, 1) + r->n;
    else {
        int64_t first = days_from_civil(y, r->m, 1);
        int wd = (int)floor_mod(first + 4, 7); /* 0 Sunday */
        day = first + (r->d - wd + 7) % 7 + (int64_t)(r->w - 1) * 7;
        int64_t past = first + days_in_month(y, r->m);
        while (day >= past)
            day -= 7;
    }
    return day * 86400;
}

static int32_t rule_offset(const tz_rule *r, int64_t t)
{
    if (!r->has_dst)
        return r->std_off;
    int64_t y;
    int m, d;
    civil_from_days(floor_div(t + r->std_off, 86400), &y, &m, &d);
    int64_t start = rule_day_secs(&r->start, y) + r->start.time - r->std_off;
    int64_t end = rule_day_secs(&r->end, y) + r->end.time - r->dst_off;
    bool dst = start < end ? (t >= start && t < end) : !(t >= end && t < start);
    return dst ? r->dst_off : r->std_off;
}

/* local = UTC + the result, in seconds, at t (seconds since the epoch). */
static int32_t zone_offset(const tz_zone *z, int64_t t)
{
    if (z->n_trans == 0 || t < z->trans[0]) {
        if (z->n_trans == 0 && z->has_footer)
            return rule_offset(&z->footer, t);
        return z->n_types ? z->types[0].off : 0;
    }
    if (t >= z->trans[z->n_trans - 1] && z->has_footer)
        return rule_offset(&z->footer, t);
    size_t lo = 0, hi = z->n_trans; /* trans[lo] <= t < trans[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return z->types[z->idx[lo]].off;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

static bool valid_zone_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 128 || name[0] == '/' || name[n - 1] == '/')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                  c == '-' || c == '+' || c == '/';
        if (!ok || (c == '/' && name[i + 1] == '/'))
            return false;
    }
    return true;
}

static void zone_clear(tz_zone *z)
{
    free(z->trans);
    free(z->idx);
    free(z->types);
    memset(z, 0, sizeof *z);
}

/* Parses TZif data (v2+); false when it is not. */
static bool parse_tzif(const unsigned char *b, size_t len, tz_zone *z)
{
    if (len < 44 || memcmp(b, "TZif", 4) != 0 || b[4] < '2')
        return false;
    uint64_t isut = be32(b + 20), isstd = be32(b + 24), leap = be32(b + 28), timecnt = be32(b + 32),
             typecnt = be32(b + 36), charcnt = be32(b + 40);
    uint64_t v1 = timecnt * 5 + typecnt * 6 + charcnt + leap * 8 + isstd + isut;
    if (44 + v1 + 44 > len)
        return false;
    const unsigned char *h = b + 44 + v1;
    if (memcmp(h, "TZif", 4) != 0)
        return false;
    isut = be32(h + 20);
    isstd = be32(h + 24);
    leap = be32(h + 28);
    timecnt = be32(h + 32);
    typecnt = be32(h + 36);
    charcnt = be32(h + 40);
    uint64_t v2 = timecnt * 9 + typecnt * 6 + charcnt + leap * 12 + isstd + isut;
    const unsigned char *p = h + 44, *end = b + len;
    if (typecnt == 0 || typecnt > 256 || timecnt > 100000 || (uint64_t)(end - p) < v2)
        return false;
    z->n_trans = timecnt;
    z->n_types = typecnt;
    z->trans = calloc(timecnt ? timecnt : 1, sizeof *z->trans);
    z->idx = calloc(timecnt ? timecnt : 1, 1);
    z->types = calloc(typecnt, sizeof *z->types);
    if (!z->trans || !z->idx || !z->types)
        return false;
    for (uint64_t i = 0; i < timecnt; i++)
        z->trans[i] = be64(p + 8 * i);
    p += 8 * timecnt;
    for (uint64_t i = 0; i < timecnt; i++) {
        if (p[i] >= typecnt)
            return false;
        z->idx[i] = p[i];
    }
    p += timecnt;
    for (uint64_t i = 0; i < typecnt; i++)
        z->types[i].off = (int32_t)be32(p + 6 * i);
    p = h + 44 + v2;
    if (p < end && *p == '\n') {
        const unsigned char *nl = memchr(p + 1, '\n', (size_t)(end - p - 1));
        if (!nl)
            return false;
        size_t fl = (size_t)(nl - p - 1);
        if (fl > 0) {
            char footer[128];
            if (fl >= sizeof footer)
                return false;
            memcpy(footer, p + 1, fl);
            footer[fl] = '\0';
            if (!parse_tz_rule(footer, &z->footer))
                return false;
            z->has_footer = true;
        }
    }
    return true;
}

/* Reads the zone named name from the system's tzdata. */
static int load_zone(const char *name, tz_zone *z, char *err, size_t errlen)
{
    if (!valid_zone_name(name)) {
        snprintf(err, errlen, "hours.time_zone: \"%.64s\" is not a time zone name (like Asia/Shanghai)",
                 name);
        return HW_EINVALID;
    }
    char path[256];
    snprintf(path, sizeof path, "%s/%s", ZONEINFO_DIR, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_ZONE_FILE) {
        if (fd >= 0)
            close(fd);
        snprintf(err, errlen, "hours.time_zone: unknown zone \"%s\" (not in %s)", name, ZONEINFO_DIR);
        return HW_EINVALID;
    }
    unsigned char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return HW_ENOMEM;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    bool ok = got == (size_t)st.st_size && parse_tzif(buf, got, z);
    free(buf);
    if (!ok) {
        zone_clear(z);
        snprintf(err, errlen, "hours.time_zone: unknown zone \"%s\" (no TZif v2+ data)", name);
        return HW_EINVALID;
    }
    return HW_OK;
}

/* --------------------------------------------------------------- hours */

struct hw_hours {
    atomic_int refs;
    bool always_open;
    bool has_days; /* false: every day open all day (but holidays) */
    bool has_zone;
    tz_zone zone;
    char time_zone[129];
    uint8_t n_ranges[8]; /* by ISO weekday 1..7 */
    uint16_t open_min[8][MAX_RANGES], close_min[8][MAX_RANGES];
    int64_t *holidays; /* [n_holidays] local day numbers, ascending, distinct */
    size_t n_holidays;
};

/* local = UTC + the result, in ms. */
static int64_t offset_ms(const hw_hours *h, int64_t t)
{
    if (!h || !h->has_zone)
        return 0;
    return (int64_t)zone_offset(&h->zone, floor_div(t, 1000)) * 1000;
}

/* The UTC instant of local time l (ms since the local epoch): see hours.h
 * for gaps (the offset before the change) and repeats (the first). */
static int64_t local_to_utc(const hw_hours *h, int64_t l)
{
    int64_t o1 = offset_ms(h, l - DAY_MS), o2 = offset_ms(h, l + DAY_MS);
    int64_t t1 = l - o1;
    if (o1 == o2 || offset_ms(h, t1) == o1)
        return t1;
    int64_t t2 = l - o2;
    return offset_ms(h, t2) == o2 ? t2 : t1;
}

static int64_t local_day(const hw_hours *h, int64_t t)
{
    return floor_div(t + offset_ms(h, t), DAY_MS);
}

static bool is_holiday(const hw_hours *h, int64_t day)
{
    size_t lo = 0, hi = h->n_holidays;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h->holidays[mid] == day)
            return true;
        if (h->holidays[mid] < day)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* The walk over raw open intervals, day by day from a local day. */
typedef struct walk {
    const hw_hours *h;
    int64_t day; /* the next day to expand */
    int64_t iv[MAX_RANGES][2];
    int n, i;
    int64_t last_end; /* intervals never go back before it */
    int empty_days;   /* consecutive days without an interval */
} walk;

static void walk_begin(walk *w, const hw_hours *h, int64_t from_ms)
{
    memset(w, 0, sizeof *w);
    w->h = h;
    w->day = local_day(h, from_ms) - 1;
    w->last_end = INT64_MIN;
}

static void expand_day(walk *w)
{
    const hw_hours *h = w->h;
    int64_t day = w->day++;
    w->n = w->i = 0;
    if (is_holiday(h, day))
        return;
    int64_t base = day * DAY_MS;
    if (!h->has_days) {
        w->iv[0][0] = local_to_utc(h, base);
        w->iv[0][1] = local_to_utc(h, base + DAY_MS);
        w->n = w->iv[0][0] < w->iv[0][1];
        return;
    }
    int wd = iso_weekday(day);
    for (int r = 0; r < h->n_ranges[wd]; r++) {
        int64_t s = local_to_utc(h, base + (int64_t)h->open_min[wd][r] * 60000);
        int64_t e = local_to_utc(h, base + (int64_t)h->close_min[wd][r] * 60000);
        if (s < w->last_end)
            s = w->last_end;
        if (s < e) {
            w->iv[w->n][0] = s;
            w->iv[w->n][1] = e;
            w->n++;
            w->last_end = e;
        }
    }
}

/* The next raw interval; false when none comes within MAX_SCAN_DAYS days. */
static bool walk_next(walk *w, int64_t *s, int64_t *e)
{
    while (w->i >= w->n) {
        if (w->empty_days > MAX_SCAN_DAYS)
            return false;
        expand_day(w);
        w->empty_days = w->n ? 0 : w->empty_days + 1;
    }
    *s = w->iv[w->i][0];
    *e = w->iv[w->i][1];
    w->i++;
    return true;
}

/* Merged intervals: touching raw ones joined. A stretch still open after
 * MAX_SCAN_DAYS days ends at INT64_MAX (and the walk with it). */
typedef struct mwalk {
    walk w;
    bool pending;
    int64_t ps, pe;
} mwalk;

static bool mwalk_next(mwalk *m, int64_t *s, int64_t *e)
{
    int64_t cs, ce, ns, ne;
    if (m->pending) {
        cs = m->ps;
        ce = m->pe;
        m->pending = false;
    } else if (!walk_next(&m->w, &cs, &ce))
        return false;
    while (walk_next(&m->w, &ns, &ne)) {
        if (ce - cs >= MAX_SCAN_DAYS * DAY_MS) {
            ce = INT64_MAX; /* no close in sight: open "for ever" */
            m->w.i = m->w.n = 0;
            m->w.empty_days = MAX_SCAN_DAYS + 1; /* and the walk ends */
            break;
        }
        if (ns <= ce) {
            if (ne > ce)
                ce = ne;
            continue;
        }
        m->pending = true;
        m->ps = ns;
        m->pe = ne;
        break;
    }
    *s = cs;
    *e = ce;
    return true;
}

static int64_t clamp_ms(int64_t t)
{
    return t > MAX_ABS_MS ? MAX_ABS_MS : t < -MAX_ABS_MS ? -MAX_ABS_MS : t;
}

/* ------------------------------------------------------------- compile */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* YYYY-MM-DD into a day number; false when not a date. */
static bool parse_date(const char *s, int64_t *day)
{
    if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return false;
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int m = (s[5] - '0') * 10 + (s[6] - '0');
    int d = (s[8] - '0') * 10 + (s[9] - '0');
    if (y < 1900 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
        return false;
    *day = days_from_civil(y, m, d);
    return true;
}

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return HW_EINVALID;
}

static int compile_days(const Helpwire__V1__BusinessHours *bh, hw_hours *h, char *err, size_t errlen)
{
    bool seen[8] = {false};
    bool any_range = false;
    if (bh->n_days > 7)
        return fail(err, errlen, "hours.days: %zu entries, at most 7 (one per weekday)", bh->n_days);
    for (size_t i = 0; i < bh->n_days; i++) {
        const Helpwire__V1__DaySchedule *d = bh->days[i];
        if (d->weekday < 1 || d->weekday > 7)
            return fail(err, errlen, "hours.days[%zu].weekday: %u is not 1 (Monday) .. 7 (Sunday)", i,
                        d->weekday);
        if (seen[d->weekday])
            return fail(err, errlen, "hours.days[%zu].weekday: weekday %u is listed twice", i, d->weekday);
        seen[d->weekday] = true;
        if (d->n_ranges > MAX_RANGES)
            return fail(err, errlen, "hours.days[%zu].ranges: %zu ranges, at most %d", i, d->n_ranges,
                        MAX_RANGES);
        for (size_t r = 0; r < d->n_ranges; r++) {
            const Helpwire__V1__TimeRange *tr = d->ranges[r];
            if (tr->open_minute > 1439)
                return fail(err, errlen, "hours.days[%zu].ranges[%zu]: open_minute %u > 1439", i, r,
                            tr->open_minute);
            if (tr->close_minute > 1440)
                return fail(err, errlen, "hours.days[%zu].ranges[%zu]: close_minute %u > 1440", i, r,
                            tr->close_minute);
            if (tr->close_minute <= tr->open_minute)
                return fail(err, errlen,
                            "hours.days[%zu].ranges[%zu]: close_minute %u is not after open_minute %u", i, r,
                            tr->close_minute, tr->open_minute);
            if (r > 0 && tr->open_minute < d->ranges[r - 1]->close_minute)
                return fail(err, errlen,
                            "hours.days[%zu].ranges[%zu]: opens at minute %u, before ranges[%zu] closes "
                            "(%u): ranges must be in order and not overlap",
                            i, r, tr->open_minute, r - 1, d->ranges[r - 1]->close_minute);
            h->open_min[d->weekday][r] = (uint16_t)tr->open_minute;
            h->close_min[d->weekday][r] = (uint16_t)tr->close_minute;
            any_range = true;
        }
        h->n_ranges[d->weekday] = (uint8_t)d->n_ranges;
    }
    if (bh->n_days > 0 && !any_range)
        return fail(err, errlen,
                    "hours.days: no day has an open range, so the queue would never open (leave hours "
                    "empty for always open)");
    return HW_OK;
}

static int compile_holidays(const Helpwire__V1__BusinessHours *bh, hw_hours *h, char *err, size_t errlen)
{
    if (bh->n_holidays > MAX_HOLIDAYS)
        return fail(err, errlen, "hours.holidays: %zu entries, at most %d", bh->n_holidays, MAX_HOLIDAYS);
    if (bh->n_holidays == 0)
        return HW_OK;
    h->holidays = calloc(bh->n_holidays, sizeof *h->holidays);
    if (!h->holidays)
        return HW_ENOMEM;
    for (size_t i = 0; i < bh->n_holidays; i++) {
        const Helpwire__V1__Holiday *hd = bh->holidays[i];
        if (!parse_date(hd->date, &h->holidays[i]))
            return fail(err, errlen, "hours.holidays[%zu].date: \"%.32s\" is not a date YYYY-MM-DD", i,
                        hd->date ? hd->date : "");
        if (hd->name && strlen(hd->name) > 128)
            return fail(err, errlen, "hours.holidays[%zu].name: %zu bytes, at most 128", i, strlen(hd->name));
    }
    qsort(h->holidays, bh->n_holidays, sizeof *h->holidays, cmp_i64);
    size_t n = 0;
    for (size_t i = 0; i < bh->n_holidays; i++)
        if (n == 0 || h->holidays[n - 1] != h->holidays[i])
            h->holidays[n++] = h->holidays[i];
    h->n_holidays = n;
    return HW_OK;
}

int hw_hours_compile(const Helpwire__V1__BusinessHours *bh, hw_hours **out, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    hw_hours *h = calloc(1, sizeof *h);
    if (!h)
        return HW_ENOMEM;
    atomic_init(&h->refs, 1);
    int rc = HW_OK;
    const char *tz = bh && bh->time_zone ? bh->time_zone : "";
    bool has_rules = bh && (bh->n_days > 0 || bh->n_holidays > 0);
    if (has_rules && !tz[0]) {
        rc =
            fail(err, errlen, "hours.time_zone: required when days or holidays are set (e.g. Asia/Shanghai)");
        goto out;
    }
    if (tz[0]) {
        if ((rc = load_zone(tz, &h->zone, err, errlen)) != HW_OK)
            goto out;
        h->has_zone = true;
        snprintf(h->time_zone, sizeof h->time_zone, "%s", tz);
    }
    if (!has_rules) {
        h->always_open = true;
        goto out;
    }
    if ((rc = compile_days(bh, h, err, errlen)) != HW_OK ||
        (rc = compile_holidays(bh, h, err, errlen)) != HW_OK)
        goto out;
    h->has_days = bh->n_days > 0;
    if (h->has_days && h->n_holidays == 0) {
        bool full = true;
        for (int wd = 1; wd <= 7; wd++)
            full = full && h->n_ranges[wd] == 1 && h->open_min[wd][0] == 0 && h->close_min[wd][0] == 1440;
        h->always_open = full;
    }
out:
    if (rc != HW_OK) {
        hw_hours_free(h);
        return rc;
    }
    *out = h;
    return HW_OK;
}

void hw_hours_free(hw_hours *h)
{
    if (!h || atomic_fetch_sub(&h->refs, 1) != 1)
        return;
    zone_clear(&h->zone);
    free(h->holidays);
    free(h);
}

bool hw_hours_always_open(const hw_hours *h)
{
    return !h || h->always_open;
}

const char *hw_hours_time_zone(const hw_hours *h)
{
    return h ? h->time_zone : "";
}

/* -------------------------------------------------------------- queries */

bool hw_hours_is_open(const hw_hours *h, int64_t at_ms)
{
    return hw_hours_next_open(h, at_ms) == at_ms;
}

int64_t hw_hours_next_open(const hw_hours *h, int64_t at_ms)
{
    if (hw_hours_always_open(h))
        return at_ms;
    at_ms = clamp_ms(at_ms);
    walk w;
    walk_begin(&w, h, at_ms);
    int64_t s, e;
    while (walk_next(&w, &s, &e))
        if (e > at_ms)
            return s > at_ms ? s : at_ms;
    return INT64_MAX;
}

int64_t hw_hours_next_close(const hw_hours *h, int64_t at_ms)
{
    if (hw_hours_always_open(h))
        return INT64_MAX;
    at_ms = clamp_ms(at_ms);
    mwalk m = {0};
    walk_begin(&m.w, h, at_ms);
    int64_t s, e;
    while (mwalk_next(&m, &s, &e))
        if (e > at_ms)
            return e;
    return INT64_MAX;
}

int64_t hw_hours_add(const hw_hours *h, int64_t start_ms, int64_t business_ms)
{
    if (business_ms <= 0)
        return start_ms;
    if (hw_hours_always_open(h))
        return start_ms > INT64_MAX - business_ms ? INT64_MAX : start_ms + business_ms;
    if (start_ms != clamp_ms(start_ms))
        return INT64_MAX;
    walk w;
    walk_begin(&w, h, start_ms);
    int64_t s, e, left = business_ms;
    while (walk_next(&w, &s, &e)) {
        if (e <= start_ms)
            continue;
        if (s < start_ms)
            s = start_ms;
        if (left <= e - s)
            return s + left;
        left -= e - s;
        if (e > MAX_ABS_MS)
            break;
    }
    return INT64_MAX;
}

int64_t hw_hours_between(const hw_hours *h, int64_t a_ms, int64_t b_ms)
{
    if (b_ms <= a_ms)
        return 0;
    if (hw_hours_always_open(h))
        return b_ms - a_ms > 0 ? b_ms - a_ms : INT64_MAX;
    a_ms = clamp_ms(a_ms);
    b_ms = clamp_ms(b_ms);
    walk w;
    walk_begin(&w, h, a_ms);
    int64_t s, e, sum = 0;
    while (walk_next(&w, &s, &e)) {
        if (e <= a_ms)
            continue;
        if (s >= b_ms)
            break;
        sum += (e < b_ms ? e : b_ms) - (s > a_ms ? s : a_ms);
    }
    return sum;
}

void hw_hours_intervals(const hw_hours *h, int64_t from_ms, int64_t to_ms,
                        bool (*fn)(void *arg, int64_t start_ms, int64_t end_ms), void *arg)
{
    if (to_ms <= from_ms)
        return;
    if (hw_hours_always_open(h)) {
        fn(arg, from_ms, to_ms);
        return;
    }
    from_ms = clamp_ms(from_ms);
    to_ms = clamp_ms(to_ms);
    mwalk m = {0};
    walk_begin(&m.w, h, from_ms);
    int64_t s, e;
    while (mwalk_next(&m, &s, &e)) {
        if (e <= from_ms)
            continue;
        if (s >= to_ms)
            break;
        if (!fn(arg, s > from_ms ? s : from_ms, e < to_ms ? e : to_ms))
            break;
    }
}

int hw_hours_local(const hw_hours *h, int64_t at_ms, hw_local_time *out)
{
    if (at_ms != clamp_ms(at_ms) || floor_div(at_ms, DAY_MS) < days_from_civil(1, 1, 1) ||
        floor_div(at_ms, DAY_MS) > days_from_civil(9999, 12, 31))
        return HW_EINVALID;
    int64_t off = offset_ms(h, at_ms);
    int64_t l = at_ms + off;
    int64_t day = floor_div(l, DAY_MS), in_day = floor_mod(l, DAY_MS);
    int64_t y;
    int m, d;
    civil_from_days(day, &y, &m, &d);
    out->year = (int)y;
    out->month = m;
    out->day = d;
    out->weekday = iso_weekday(day);
    out->hour = (int)(in_day / 3600000);
    out->minute = (int)(in_day / 60000 % 60);
    out->utc_offset_s = (int32_t)(off / 1000);
    snprintf(out->date, sizeof out->date, "%04u-%02u-%02u", (unsigned)out->year % 10000u, (unsigned)m % 100u,
             (unsigned)d % 100u);
    return HW_OK;
}

/* ---------------------------------------------------------------- cache */

#define CACHE_SLOTS 128

typedef struct cache_slot {
    uint8_t *key; /* the packed BusinessHours */
    size_t key_len;
    hw_hours *hours; /* the cache's reference */
    uint64_t used;   /* for LRU */
} cache_slot;

struct hw_hours_cache {
    pthread_mutex_t mu;
    cache_slot slots[CACHE_SLOTS];
    uint64_t tick;
};

int hw_hours_cache_create(hw_hours_cache **out)
{
    hw_hours_cache *c = calloc(1, sizeof *c);
    if (!c)
        return HW_ENOMEM;
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return HW_OK;
}

void hw_hours_cache_destroy(hw_hours_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        free(c->slots[i].key);
        hw_hours_free(c->slots[i].hours);
    }
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static bool bh_is_empty(const Helpwire__V1__BusinessHours *bh)
{
    return !bh || (bh->n_days == 0 && bh->n_holidays == 0);
}

int hw_hours_cache_get(hw_hours_cache *c, const Helpwire__V1__BusinessHours *bh, hw_hours **out, char *err,
                       size_t errlen)
{
    *out = NULL;
    if (bh_is_empty(bh))
        return HW_OK; /* always open (the zone alone changes nothing for queries) */
    if (!c)
        return hw_hours_compile(bh, out, err, errlen);
    size_t len = helpwire__v1__business_hours__get_packed_size(bh);
    uint8_t *key = malloc(len ? len : 1);
    if (!key)
        return HW_ENOMEM;
    helpwire__v1__business_hours__pack(bh, key);
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        cache_slot *s = &c->slots[i];
        if (s->hours && s->key_len == len && memcmp(s->key, key, len) == 0) {
            s->used = ++c->tick;
            atomic_fetch_add(&s->hours->refs, 1);
            *out = s->hours;
            pthread_mutex_unlock(&c->mu);
            free(key);
            return HW_OK;
        }
    }
    pthread_mutex_unlock(&c->mu);
    hw_hours *h = NULL;
    int rc = hw_hours_compile(bh, &h, err, errlen);
    if (rc != HW_OK) {
        free(key);
        return rc;
    }
    atomic_fetch_add(&h->refs, 1); /* the caller's; the first is the cache's */
    pthread_mutex_lock(&c->mu);
    cache_slot *victim = &c->slots[0];
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        if (!c->slots[i].hours) {
            victim = &c->slots[i];
            break;
        }
        if (c->slots[i].used < victim->used)
            victim = &c->slots[i];
    }
    uint8_t *old_key = victim->key;
    hw_hours *old = victim->hours;
    victim->key = key;
    victim->key_len = len;
    victim->hours = h;
    victim->used = ++c->tick;
    pthread_mutex_unlock(&c->mu);
    free(old_key);
    hw_hours_free(old);
    *out = h;
    return HW_OK;
}
