/*
 * hours: business-hours arithmetic over a skill's BusinessHours (agents.proto):
 * is a queue open at an instant, when does it next open or close, which
 * instant is N business milliseconds after another, how much open time lies
 * between two instants. SLA clocks, the out-of-hours acknowledgement and
 * GetSchedule are built on these.
 *
 * The rules, decided here once:
 *   - No hours (NULL, or a BusinessHours with neither days nor holidays):
 *     always open.
 *   - Days listed: a weekday not listed is closed, a listed day is open in
 *     its ranges [open_minute, close_minute) of local time. A day listed
 *     with no ranges is closed. Hours whose listed days have no range at all
 *     are refused (the queue would never open: leave hours empty for always
 *     open, or add a range).
 *   - Holidays but no days: open all day every day but the holidays.
 *   - A holiday closes its local date whole.
 *   - Local times that do not exist (the hour skipped when DST starts) are
 *     taken with the offset before the change (02:30 becomes 03:30);
 *     local times that occur twice (the hour repeated when DST ends) are the
 *     first occurrence. Python's zoneinfo with fold=0 does the same.
 *   - Ranges that touch across midnight (Mon 18:00-24:00, Tue 00:00-02:00)
 *     are one open stretch: next_close does not stop at midnight.
 *
 * Time zones come from the system's tzdata (/usr/share/zoneinfo, Debian
 * package tzdata) and are read by this module itself: glibc's localtime_r
 * converts in the one process-wide TZ only, and setting TZ per call is
 * neither thread-safe nor cheap. Each compiled hw_hours owns its zone (the
 * 64-bit transition table of the TZif v2+ file and its POSIX TZ footer,
 * which rules the times after the table, so dates far in the future keep
 * their DST). There is no process-wide zone cache (no global state): zones
 * are read when hours are compiled, which happens when a skill is stored or
 * the skill cache is rebuilt after a skill change, a few KB each time.
 * Zone names are checked (letters, digits, '_', '-', '+', components
 * separated by '/', no "." or ".." component) before any file is opened.
 *
 * Threads: a compiled hw_hours is immutable; every function may be called
 * from any thread at the same time.
 */
#ifndef HW_HOURS_H
#define HW_HOURS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "helpwire/v1/agents.pb-c.h"

typedef struct hw_hours hw_hours;

/* Local calendar fields of an instant in the hours' zone. */
typedef struct hw_local_time {
    int year, month, day; /* 2026, 1..12, 1..31 */
    int weekday;          /* ISO: 1 Monday .. 7 Sunday */
    int hour, minute;     /* 0..23, 0..59 */
    int32_t utc_offset_s; /* local = UTC + this */
    char date[11];        /* "YYYY-MM-DD" */
} hw_local_time;

/* Validates and compiles bh.
 * @param[in] bh the hours (NULL or no days and no holidays: always open)
 * @param[out] out the compiled hours, owned by the caller (hw_hours_free);
 *             NULL is never stored on success
 * @param[out] err on HW_EINVALID, one line naming the field:
 *             "hours.time_zone: unknown zone \"Mars/Base\"",
 *             "hours.days[1].ranges[0]: close_minute 1500 > 1440", ...
 * @return HW_OK; HW_EINVALID (bad hours, err says why); HW_ENOMEM. */
int hw_hours_compile(const Helpwire__V1__BusinessHours *bh, hw_hours **out, char *err, size_t errlen);

/* Drops the caller's reference to h and frees it with the last one (NULL
 * is fine): compiled hours start with one reference; hw_hours_cache_get
 * hands out more. Any thread. */
void hw_hours_free(hw_hours *h);

/* True when h never closes. h NULL: always open. */
bool hw_hours_always_open(const hw_hours *h);

/* The zone name ("" when always open without a zone). h NULL: "". */
const char *hw_hours_time_zone(const hw_hours *h);

/* Whether the hours are open at at_ms (ms since the epoch). */
bool hw_hours_is_open(const hw_hours *h, int64_t at_ms);

/* The first instant >= at_ms that is open: at_ms when open now; INT64_MAX
 * when the hours never open again (cannot happen with valid hours, whose
 * holidays cover at most 366 dates). */
int64_t hw_hours_next_open(const hw_hours *h, int64_t at_ms);

/* The first instant > at_ms at which an open stretch ends (the one open at
 * at_ms, else the next one); INT64_MAX when always open, or when the
 * stretch goes on for more than about seven years (open every day, no
 * holiday ahead). */
int64_t hw_hours_next_close(const hw_hours *h, int64_t at_ms);

/* The instant at which business_ms of open time have passed since
 * start_ms: start_ms for business_ms <= 0; INT64_MAX when that never
 * happens. between(a, add(a, x)) == x for every x >= 0. */
int64_t hw_hours_add(const hw_hours *h, int64_t start_ms, int64_t business_ms);

/* Open milliseconds in [a_ms, b_ms); 0 when b_ms <= a_ms. */
int64_t hw_hours_between(const hw_hours *h, int64_t a_ms, int64_t b_ms);

/* Open intervals [start, end) intersecting [from_ms, to_ms), clipped to
 * it, touching ones merged, in order: calls fn(arg, start, end) for each
 * until fn returns false. */
void hw_hours_intervals(const hw_hours *h, int64_t from_ms, int64_t to_ms,
                        bool (*fn)(void *arg, int64_t start_ms, int64_t end_ms), void *arg);

/* Local calendar fields of at_ms in the hours' zone (UTC when h is NULL
 * or has no zone).
 * @return HW_OK; HW_EINVALID for an instant out of range. */
int hw_hours_local(const hw_hours *h, int64_t at_ms, hw_local_time *out);

/* ---- a cache of compiled hours, for the domain ----
 *
 * Keyed by the hours' content (their packed bytes), so a skill whose hours
 * change simply finds no entry: nothing to invalidate, and a write
 * transaction that reads a skill always gets that skill's hours. Holds at
 * most 128 entries (the least recently used goes). Thread-safe: one mutex
 * around the table; compiling happens outside it. */
typedef struct hw_hours_cache hw_hours_cache;

/* @return HW_OK; HW_ENOMEM. Free with hw_hours_cache_destroy (after every
 * reference it handed out was dropped or not: references outlive it). */
int hw_hours_cache_create(hw_hours_cache **out);
void hw_hours_cache_destroy(hw_hours_cache *c);

/* The compiled hours of bh: *out is a reference the caller drops with
 * hw_hours_free. bh NULL or always open: *out NULL (which every query reads
 * as always open) and HW_OK. c NULL compiles without caching.
 * @return HW_OK; HW_EINVALID (err says why: stored hours made invalid by a
 * tzdata change); HW_ENOMEM. */
int hw_hours_cache_get(hw_hours_cache *c, const Helpwire__V1__BusinessHours *bh, hw_hours **out, char *err,
                       size_t errlen);

#endif
