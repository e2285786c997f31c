/*
 * reports: CSAT and SLA reports (see reports.h for the contract).
 *
 * Cost: a report reads only its range. The CSAT report is a range scan of
 * the surveys' sent-time index (hw_store_survey_foreach_sent, as
 * GetSurveyStats). The SLA report needs tickets by creation time, which
 * no index holds; but ticket numbers are handed out by the one writer in
 * the same write that stamps created_unix_ms, so number order is creation
 * order: hw_store_ticket_foreach_created finds the range's first ticket by
 * a binary search over the number index and scans forward to its end, with
 * SCAN_SLACK_MS of tolerance for a clock that stepped back. Both are
 * O(records in range + log n); the figures are exact (no stored
 * aggregates to drift).
 *
 * Rows live in an array sorted by key (binary search per record): the
 * number of keys is small (agents, queues, three channels, at most 367
 * days) next to the records.
 *
 * Periods are calendar days, ISO weeks (from Monday) and months in the
 * request's IANA zone: the zone is compiled once per report as business
 * hours without rules (hours.h reads the system's tzdata itself, thread-
 * safely), and each record's local date comes from hw_hours_local.
 */
#include "server/domain/reports.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/domain/hours.h"
#include "server/domain/rpc.h"
#include "server/domain/surveys.h"
#include "server/store/records.h"

#define DAY_MS 86400000LL
#define SCAN_SLACK_MS 60000
#define MAX_ID 64
#define SLA_TARGETS 3
enum { SLA_MET, SLA_BREACHED, SLA_OPEN, SLA_COUNTS };

/* ------------------------------------------------------ calendar days */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* ------------------------------------------------------------ report */

typedef struct row {
    char *key;
    hw_survey_tally csat;
    uint64_t sla[SLA_TARGETS][SLA_COUNTS];
} row;

struct hw_report {
    bool is_sla;
    int64_t from, to;
    Helpwire__V1__ReportGrouping group;
    Helpwire__V1__ReportPeriod period;
    Helpwire__V1__Channel channel;
    Helpwire__V1__Priority priority;
    char *queue, *agent; /* "" = any */
    hw_hours *tz;        /* the zone; NULL: UTC */
    row *rows;           /* sorted by key */
    size_t n, cap;
    row total;
};

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return HW_EINVALID;
}

/* Local calendar day (days since 1970-01-01) of ms. */
static int64_t local_day(const hw_report *r, int64_t ms)
{
    hw_local_time lt;
    if (hw_hours_local(r->tz, ms, &lt) != HW_OK) /* out of range: validation keeps ms near now */
        return floor_div(ms, DAY_MS);
    return days_from_civil(lt.year, (unsigned)lt.month, (unsigned)lt.day);
}

/* The first day of the period holding day. */
static int64_t period_start(const hw_report *r, int64_t day)
{
    switch (r->period) {
    case HELPWIRE__V1__REPORT_PERIOD__REPORT_PERIOD_WEEK:
        return day - (day + 3 - floor_div(day + 3, 7) * 7); /* 1970-01-01 was a Thursday */
    case HELPWIRE__V1__REPORT_PERIOD__REPORT_PERIOD_MONTH: {
        int64_t y;
        unsigned m, d;
        civil_from_days(day, &y, &m, &d);
        return days_from_civil(y, m, 1);
    }
    default:
        return day;
    }
}

static int64_t period_next(const hw_report *r, int64_t start)
{
    switch (r->period) {
    case HELPWIRE__V1__REPORT_PERIOD__REPORT_PERIOD_WEEK:
        return start + 7;
    case HELPWIRE__V1__REPORT_PERIOD__REPORT_PERIOD_MONTH: {
        int64_t y;
        unsigned m, d;
        civil_from_days(start, &y, &m, &d);
        return m == 12 ? days_from_civil(y + 1, 1, 1) : days_from_civil(y, m + 1, 1);
    }
    default:
        return start + 1;
    }
}

static void day_key(int64_t day, char out[16])
{
    int64_t y;
    unsigned m, d;
    civil_from_days(day, &y, &m, &d);
    snprintf(out, 16, "%04lld-%02u-%02u", (long long)y, m, d);
}

/* The row of key, inserted (zero) when missing; NULL when out of memory. */
static row *row_get(hw_report *r, const char *key)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(r->rows[mid].key, key);
        if (c == 0)
            return &r->rows[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        row *rows = realloc(r->rows, cap * sizeof *rows);
        if (!rows)
            return NULL;
        r->rows = rows;
        r->cap = cap;
    }
    char *k = strdup(key);
    if (!k)
        return NULL;
    memmove(&r->rows[lo + 1], &r->rows[lo], (r->n - lo) * sizeof *r->rows);
    memset(&r->rows[lo], 0, sizeof *r->rows);
    r->rows[lo].key = k;
    r->n++;
    return &r->rows[lo];
}

/* "telegram" for CHANNEL_TELEGRAM. */
static const char *channel_key(Helpwire__V1__Channel ch, char out[32])
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&helpwire__v1__channel__descriptor, ch);
    const char *name = v ? v->name : "CHANNEL_UNSPECIFIED";
    if (strncmp(name, "CHANNEL_", 8) == 0)
        name += 8;
    size_t i = 0;
    for (; name[i] && i < 31; i++)
        out[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a' : name[i]);
    out[i] = '\0';
    return out;
}

/* The row a record belongs to (NULL: no grouping, or out of memory with
 * *oom set). */
static row *row_for(hw_report *r, const char *agent, const char *queue, Helpwire__V1__Channel ch, int64_t at,
                    bool *oom)
{
    char buf[32];
    const char *key;
    switch (r->group) {
    case HELPWIRE__V1__REPORT_GROUPING__REPORT_GROUPING_AGENT:
        key = agent && agent[0] ? agent : HW_REPORT_NO_AGENT;
        break;
    case HELPWIRE__V1__REPORT_GROUPING__REPORT_GROUPING_QUEUE:
        key = queue && queue[0] ? queue : HW_REPORT_NO_QUEUE;
        break;
    case HELPWIRE__V1__REPORT_GROUPING__REPORT_GROUPING_CHANNEL:
        key = channel_key(ch, buf);
        break;
    case HELPWIRE__V1__REPORT_GROUPING__REPORT_GROUPING_PERIOD:
        day_key(period_start(r, local_day(r, at)), buf);
        key = buf;
        break;
    default:
        return NULL;
    }
    row *w = row_get(r, key);
    *oom = w == NULL;
    return w;
}

static bool enum_ok(const ProtobufCEnumDescriptor *d, int v)
{
    return protobuf_c_enum_descriptor_get_value(d, v) != NULL;
}

int hw_report_new(const Helpwire__V1__ReportRequest *req, bool is_sla, hw_report **out, char *err,
                  size_t errlen)
{
    *out = NULL;
    if (req->from_unix_ms <= 0)
        return fail(err, errlen, "from_unix_ms: required (milliseconds since the epoch)");
    if (req->to_unix_ms <= req->from_unix_ms)
        return fail(err, errlen, "to_unix_ms: must be after from_unix_ms");
    if (req->to_unix_ms - req->from_unix_ms > HW_REPORT_MAX_DAYS * DAY_MS)
        return fail(err, errlen, "to_unix_ms: at most %d days after from_unix_ms", HW_REPORT_MAX_DAYS);
    if (!enum_ok(&helpwire__v1__report_grouping__descriptor, req->group_by))
        return fail(err, errlen, "group_by: unknown value %d", (int)req->group_by);
    if (!enum_ok(&helpwire__v1__report_period__descriptor, req->period))
        return fail(err, errlen, "period: unknown value %d", (int)req->period);
    if (!enum_ok(&helpwire__v1__channel__descriptor, req->channel))
        return fail(err, errlen, "channel: unknown value %d", (int)req->channel);
    if (!enum_ok(&helpwire__v1__priority__descriptor, req->priority))
        return fail(err, errlen, "priority: unknown value %d", (int)req->priority);
    if (!is_sla && req->priority != 0)
        return fail(err, errlen, "priority: only the SLA report filters by priority");

    hw_report *r = calloc(1, sizeof *r);
    if (!r)
        return HW_ENOMEM;
    r->is_sla = is_sla;
    r->from = req->from_unix_ms;
    r->to = req->to_unix_ms;
    r->group = req->group_by;
    r->period = req->period;
    r->channel = req->channel;
    r->priority = req->priority;
    r->queue = strdup(req->queue ? req->queue : "");
    r->agent = strdup(req->agent_id ? req->agent_id : "");
    int rc = r->queue && r->agent ? HW_OK : HW_ENOMEM;
    if (rc == HW_OK) {
        const char *tz = req->time_zone ? req->time_zone : "";
        if (tz[0] && strcmp(tz, "UTC") != 0) {
            Helpwire__V1__BusinessHours bh = HELPWIRE__V1__BUSINESS_HOURS__INIT;
            bh.time_zone = (char *)tz;
            char herr[256] = "";
            rc = hw_hours_compile(&bh, &r->tz, herr, sizeof herr);
            if (rc == HW_EINVALID) /* "hours.time_zone: ..." names the hours' field: ours is time_zone */
                fail(err, errlen, "%s", strncmp(herr, "hours.", 6) == 0 ? herr + 6 : herr);
        }
    }
    if (rc == HW_OK && r->group == HELPWIRE__V1__REPORT_GROUPING__REPORT_GROUPING_PERIOD) {
        /* Every period of the range, also those without records. */
        int64_t last = local_day(r, r->to - 1);
        for (int64_t d = period_start(r, local_day(r, r->from)); rc == HW_OK && d <= last;
             d = period_next(r, d)) {
            char key[16];
            day_key(d, key);
            if (!row_get(r, key))
                rc = HW_ENOMEM;
        }
    }
    if (rc != HW_OK) {
        hw_report_free(r);
        return rc;
    }
    *out = r;
    return HW_OK;
}

void hw_report_free(hw_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->rows[i].key);
    free(r->rows);
    free(r->queue);
    free(r->agent);
    hw_hours_free(r->tz);
    free(r);
}

int hw_report_add_survey(hw_report *r, const Helpwire__V1__Survey *sv)
{
    if (sv->sent_unix_ms < r->from || sv->sent_unix_ms >= r->to ||
        !hw_survey_matches(sv, r->channel, r->queue, r->agent))
        return HW_OK;
    bool oom = false;
    row *w = row_for(r, sv->agent_id, sv->queue, sv->channel, sv->sent_unix_ms, &oom);
    if (oom)
        return HW_ENOMEM;
    if (w)
        hw_survey_tally_add(&w->csat, sv);
    hw_survey_tally_add(&r->total.csat, sv);
    return HW_OK;
}

int hw_report_add_ticket(hw_report *r, const Helpwire__V1__Ticket *tk)
{
    if (tk->created_unix_ms < r->from || tk->created_unix_ms >= r->to ||
        (r->channel && tk->channel != r->channel) || (r->priority && tk->priority != r->priority) ||
        (r->queue[0] && strcmp(tk->queue ? tk->queue : "", r->queue) != 0) ||
        (r->agent[0] && strcmp(tk->assignee_agent_id ? tk->assignee_agent_id : "", r->agent) != 0))
        return HW_OK;
    if (tk->n_sla == 0)
        return HW_OK; /* no policy applied: nothing to count, and no row of its own */
    bool oom = false;
    row *w = row_for(r, tk->assignee_agent_id, tk->queue, tk->channel, tk->created_unix_ms, &oom);
    if (oom)
        return HW_ENOMEM;
    for (size_t i = 0; i < tk->n_sla; i++) {
        const Helpwire__V1__SlaClock *c = tk->sla[i];
        if (c->target < 1 || c->target > SLA_TARGETS)
            continue;
        int k;
        switch (c->state) {
        case HELPWIRE__V1__SLA_STATE__SLA_STATE_MET:
            k = SLA_MET;
            break;
        case HELPWIRE__V1__SLA_STATE__SLA_STATE_BREACHED:
            k = SLA_BREACHED;
            break;
        case HELPWIRE__V1__SLA_STATE__SLA_STATE_RUNNING:
        case HELPWIRE__V1__SLA_STATE__SLA_STATE_PAUSED:
            k = SLA_OPEN;
            break;
        default:
            continue;
        }
        if (w)
            w->sla[c->target - 1][k]++;
        r->total.sla[c->target - 1][k]++;
    }
    return HW_OK;
}

static int scan_survey(void *arg, const Helpwire__V1__Survey *sv)
{
    return hw_report_add_survey(arg, sv);
}

static int scan_ticket(void *arg, const Helpwire__V1__Ticket *tk)
{
    return hw_report_add_ticket(arg, tk);
}

int hw_report_scan_csat(hw_report *r, hw_store_txn *t)
{
    hw_arena *scratch = hw_arena_create(1 << 14); /* reset per record by the scan */
    if (!scratch)
        return HW_ENOMEM;
    int rc = hw_store_survey_foreach_sent(t, r->from, r->to, scratch, scan_survey, r);
    hw_arena_destroy(scratch);
    return rc;
}

int hw_report_scan_sla(hw_report *r, hw_store_txn *t)
{
    hw_arena *scratch = hw_arena_create(1 << 14);
    if (!scratch)
        return HW_ENOMEM;
    int rc = hw_store_ticket_foreach_created(t, r->from, r->to, SCAN_SLACK_MS, scratch, scan_ticket, r);
    hw_arena_destroy(scratch);
    return rc;
}

static Helpwire__V1__CsatRow *csat_row(hw_arena *a, const char *key, const hw_survey_tally *t)
{
    Helpwire__V1__CsatRow *o = hw_arena_alloc(a, sizeof *o);
    uint64_t *dist = hw_arena_alloc(a, sizeof t->dist);
    if (!o || !dist)
        return NULL;
    helpwire__v1__csat_row__init(o);
    o->key = (char *)key;
    o->sent = t->sent;
    o->answered = t->answered;
    o->response_rate = hw_survey_tally_response_rate(t);
    o->csat = hw_survey_tally_csat(t);
    o->average_rating = hw_survey_tally_average(t);
    memcpy(dist, t->dist, sizeof t->dist);
    o->distribution = dist;
    o->n_distribution = 5;
    return o;
}

int hw_report_csat(const hw_report *r, hw_arena *a, Helpwire__V1__CsatReport **out)
{
    Helpwire__V1__CsatReport *rep = hw_arena_alloc(a, sizeof *rep);
    if (!rep)
        return HW_ENOMEM;
    helpwire__v1__csat_report__init(rep);
    rep->rows = hw_arena_calloc(a, r->n ? r->n : 1, sizeof *rep->rows);
    if (!rep->rows)
        return HW_ENOMEM;
    for (size_t i = 0; i < r->n; i++) {
        char *key = hw_arena_strdup(a, r->rows[i].key);
        if (!key || !(rep->rows[i] = csat_row(a, key, &r->rows[i].csat)))
            return HW_ENOMEM;
    }
    rep->n_rows = r->n;
    if (!(rep->total = csat_row(a, "", &r->total.csat)))
        return HW_ENOMEM;
    *out = rep;
    return HW_OK;
}

/* Three rows (one per target) of w into out. */
static int sla_rows(hw_arena *a, const char *key, const row *w, Helpwire__V1__SlaRow **out)
{
    for (int t = 0; t < SLA_TARGETS; t++) {
        Helpwire__V1__SlaRow *o = hw_arena_alloc(a, sizeof *o);
        if (!o)
            return HW_ENOMEM;
        helpwire__v1__sla_row__init(o);
        o->key = (char *)key;
        o->target = (Helpwire__V1__SlaTarget)(t + 1);
        o->met = w->sla[t][SLA_MET];
        o->breached = w->sla[t][SLA_BREACHED];
        o->open = w->sla[t][SLA_OPEN];
        o->attainment = o->met + o->breached ? (double)o->met / (double)(o->met + o->breached) : 0;
        out[t] = o;
    }
    return HW_OK;
}

int hw_report_sla(const hw_report *r, hw_arena *a, Helpwire__V1__SlaReport **out)
{
    Helpwire__V1__SlaReport *rep = hw_arena_alloc(a, sizeof *rep);
    if (!rep)
        return HW_ENOMEM;
    helpwire__v1__sla_report__init(rep);
    rep->rows = hw_arena_calloc(a, r->n * SLA_TARGETS + 1, sizeof *rep->rows);
    rep->total = hw_arena_calloc(a, SLA_TARGETS, sizeof *rep->total);
    if (!rep->rows || !rep->total)
        return HW_ENOMEM;
    for (size_t i = 0; i < r->n; i++) {
        char *key = hw_arena_strdup(a, r->rows[i].key);
        if (!key || sla_rows(a, key, &r->rows[i], rep->rows + i * SLA_TARGETS) != HW_OK)
            return HW_ENOMEM;
    }
    rep->n_rows = r->n * SLA_TARGETS;
    if (sla_rows(a, "", &r->total, rep->total) != HW_OK)
        return HW_ENOMEM;
    rep->n_total = SLA_TARGETS;
    *out = rep;
    return HW_OK;
}

/* ------------------------------------------------------------ handlers */

static void report(hw_call *call, const ProtobufCMessage *request, hw_app *app, bool is_sla)
{
    const Helpwire__V1__ReportRequest *req = (const void *)request;
    if (!hw_rpc_check_id(call, "queue", req->queue, MAX_ID, true) ||
        !hw_rpc_check_id(call, "agent_id", req->agent_id, MAX_ID, true))
        return;
    char err[256] = "";
    hw_report *r = NULL;
    int rc = hw_report_new(req, is_sla, &r, err, sizeof err);
    if (rc != HW_OK) {
        if (err[0])
            hw_call_fail(call, rc == HW_EINVALID ? GRPC_STATUS_INVALID_ARGUMENT : hw_rpc_status(rc), "%s",
                         err);
        else
            hw_rpc_fail(call, rc, "starting the report failed: %s", hw_strerror(rc));
        return;
    }
    hw_store_txn *t = hw_rpc_read(call, app);
    if (!t) {
        hw_report_free(r);
        return;
    }
    rc = is_sla ? hw_report_scan_sla(r, t) : hw_report_scan_csat(r, t);
    hw_rpc_read_end(call, app);
    ProtobufCMessage *reply = NULL;
    if (rc == HW_OK) {
        if (is_sla) {
            Helpwire__V1__SlaReport *s = NULL;
            rc = hw_report_sla(r, hw_call_arena(call), &s);
            reply = s ? &s->base : NULL;
        } else {
            Helpwire__V1__CsatReport *c = NULL;
            rc = hw_report_csat(r, hw_call_arena(call), &c);
            reply = c ? &c->base : NULL;
        }
    }
    hw_report_free(r);
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, "reading the %s report failed: %s", is_sla ? "SLA" : "CSAT", hw_strerror(rc));
        return;
    }
    hw_call_reply(call, reply);
}

void hw_reports_csat(hw_call *call, const ProtobufCMessage *request, void *app)
{
    report(call, request, app, false);
}

void hw_reports_sla(hw_call *call, const ProtobufCMessage *request, void *app)
{
    report(call, request, app, true);
}
