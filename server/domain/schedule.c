/*
 * schedule: the API side of business hours (see schedule.h). GetSchedule
 * reads the skill on the worker's reader and answers from the compiled
 * hours; nothing here writes.
 */
#include "server/domain/schedule.h"

#include <stdio.h>
#include <string.h>

#include "server/domain/hours.h"
#include "server/domain/rpc.h"
#include "server/store/records.h"

#define DAY_MS (24 * 3600 * 1000LL)
#define DEFAULT_DAYS 7
#define MAX_DAYS 62

bool hw_schedule_check_hours(hw_call *call, const char *field, const Helpwire__V1__BusinessHours *bh)
{
    if (!bh)
        return true;
    char name[64];
    for (size_t i = 0; i < bh->n_holidays; i++) {
        snprintf(name, sizeof name, "%s.holidays[%zu].name", field, i);
        if (!hw_rpc_check_text(call, name, bh->holidays[i]->name, 0, 128))
            return false;
    }
    hw_hours *h = NULL;
    char err[256];
    int rc = hw_hours_compile(bh, &h, err, sizeof err);
    hw_hours_free(h);
    if (rc == HW_EINVALID) {
        /* err starts with "hours.": the field inside the skill */
        const char *rest = strncmp(err, "hours", 5) == 0 ? err + 5 : err;
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "%s%s", field, rest);
        return false;
    }
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, NULL);
        return false;
    }
    return true;
}

static const char *const WEEKDAY_EN[8] = {"",         "Monday", "Tuesday",  "Wednesday",
                                          "Thursday", "Friday", "Saturday", "Sunday"};
static const char *const WEEKDAY_ZH[8] = {"", "周一", "周二", "周三", "周四", "周五", "周六", "周日"};

const char *hw_schedule_back_text(hw_app *app, const Helpwire__V1__Skill *sk, int64_t now_ms,
                                  const char *locale, hw_arena *a)
{
    if (!sk || !sk->hours)
        return NULL;
    hw_hours *h = NULL;
    char err[256];
    if (hw_hours_cache_get(app->hours_cache, sk->hours, &h, err, sizeof err) != HW_OK || !h)
        return NULL;
    const char *text = NULL;
    int64_t next = hw_hours_next_open(h, now_ms);
    hw_local_time lt;
    if (next != now_ms && next != INT64_MAX && hw_hours_local(h, next, &lt) == HW_OK) {
        bool far = next - now_ms >= 7 * DAY_MS;
        const char *zone = hw_hours_time_zone(h);
        if (locale && strncmp(locale, "zh", 2) == 0)
            text = hw_arena_printf(a, "现在是非工作时间，客服将于%s%s%s %02d:%02d（%s）回来。",
                                   far ? lt.date : "", far ? " " : "", WEEKDAY_ZH[lt.weekday], lt.hour,
                                   lt.minute, zone);
        else
            text = hw_arena_printf(a, "Our team is away now and is back on %s%s%s at %02d:%02d (%s).",
                                   WEEKDAY_EN[lt.weekday], far ? " " : "", far ? lt.date : "", lt.hour,
                                   lt.minute, zone);
    }
    hw_hours_free(h);
    return text;
}

typedef struct interval_list {
    hw_arena *a;
    Helpwire__V1__Interval **items;
    size_t n, cap;
    bool oom;
} interval_list;

static bool add_interval(void *arg, int64_t s, int64_t e)
{
    interval_list *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        Helpwire__V1__Interval **items = hw_arena_alloc(l->a, cap * sizeof *items);
        if (!items) {
            l->oom = true;
            return false;
        }
        if (l->n)
            memcpy(items, l->items, l->n * sizeof *items);
        l->items = items;
        l->cap = cap;
    }
    Helpwire__V1__Interval *iv = hw_arena_alloc(l->a, sizeof *iv);
    if (!iv) {
        l->oom = true;
        return false;
    }
    helpwire__v1__interval__init(iv);
    iv->start_unix_ms = s;
    iv->end_unix_ms = e;
    l->items[l->n++] = iv;
    return true;
}

void hw_schedule_get(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    hw_app *app = appv;
    const Helpwire__V1__GetScheduleRequest *req = (const void *)request;
    if (!hw_rpc_check_id(call, "skill", req->skill, 64, false))
        return;
    if (req->days > MAX_DAYS) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "days: %u is more than %d", req->days, MAX_DAYS);
        return;
    }
    if (req->at_unix_ms < 0) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "at_unix_ms: %lld is before 1970",
                     (long long)req->at_unix_ms);
        return;
    }
    int64_t at = req->at_unix_ms ? req->at_unix_ms : hw_rpc_now_ms(app);
    uint32_t days = req->days ? req->days : DEFAULT_DAYS;
    hw_arena *a = hw_call_arena(call);
    hw_store_txn *t = hw_rpc_read(call, app);
    if (!t)
        return;
    Helpwire__V1__Skill *sk = NULL;
    int rc = hw_store_skill_get(t, req->skill, a, &sk);
    hw_rpc_read_end(call, app);
    if (rc == HW_ENOTFOUND) {
        hw_call_fail(call, GRPC_STATUS_NOT_FOUND, "no skill named %s", req->skill);
        return;
    }
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, NULL);
        return;
    }
    hw_hours *h = NULL;
    char err[256];
    rc = hw_hours_cache_get(app->hours_cache, sk->hours, &h, err, sizeof err);
    if (rc == HW_EINVALID) {
        hw_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION, "skill %s: stored %s", req->skill, err);
        return;
    }
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, NULL);
        return;
    }
    Helpwire__V1__GetScheduleReply r = HELPWIRE__V1__GET_SCHEDULE_REPLY__INIT;
    r.skill = sk->name;
    r.always_open = hw_hours_always_open(h);
    r.time_zone = r.always_open ? "" : hw_arena_printf(a, "%s", hw_hours_time_zone(h));
    r.open = hw_hours_is_open(h, at);
    int64_t next_open = hw_hours_next_open(h, at), next_close = hw_hours_next_close(h, at);
    r.next_open_unix_ms = next_open == INT64_MAX ? 0 : next_open;
    r.next_close_unix_ms = next_close == INT64_MAX ? 0 : next_close;
    interval_list l = {.a = a};
    hw_hours_intervals(h, at, at + (int64_t)days * DAY_MS, add_interval, &l);
    hw_hours_free(h);
    if (l.oom || !r.time_zone) {
        hw_rpc_fail(call, HW_ENOMEM, NULL);
        return;
    }
    r.intervals = l.items;
    r.n_intervals = l.n;
    hw_call_reply(call, &r.base);
}
