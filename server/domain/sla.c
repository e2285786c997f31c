/*
 * sla: SLA policies, their service, and the rules of a ticket's SLA clocks
 * (contract and the rules themselves: sla.h).
 *
 * The clock rules are pure functions over a ticket, a policy and business
 * hours, so they are unit-tested with made-up times; the _in functions
 * around them read the policy and the queue's hours in the write
 * transaction, apply the rules, count attainment and set the ticket's one
 * SLA timer. The breach actions need the ticket rules (tickets.h), which
 * call into this module: they live in sla_breach.c, above both.
 */
#include "server/domain/sla.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server/domain/rpc.h"
#include "server/domain/timers.h"
#include "server/store/records.h"

typedef Helpwire__V1__Ticket Ticket;
typedef Helpwire__V1__SlaClock Clock;
typedef Helpwire__V1__SlaPolicy Policy;

#define TG(x) HELPWIRE__V1__SLA_TARGET__SLA_TARGET_##x
#define SS(x) HELPWIRE__V1__SLA_STATE__SLA_STATE_##x
#define ST(x) HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_##x

#define MAX_TARGET_MINUTES 525600u
#define DEFAULT_WARN 0.8
#define MAX_POLICIES 1000
#define METRICS_NS "sla_clocks"
#define BREACHED_NS "sla_breached_now"

/* ------------------------------------------------------------- names */

const char *hw_sla_target_name(Helpwire__V1__SlaTarget target)
{
    switch (target) {
    case TG(FIRST_REPLY):
        return "FIRST_REPLY";
    case TG(NEXT_REPLY):
        return "NEXT_REPLY";
    case TG(RESOLUTION):
        return "RESOLUTION";
    default:
        return "UNSPECIFIED";
    }
}

static const char *priority_name(Helpwire__V1__Priority p)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&helpwire__v1__priority__descriptor, p);
    return v ? v->name + strlen("PRIORITY_") : "UNSPECIFIED";
}

uint32_t hw_sla_target_minutes(const Policy *p, Helpwire__V1__SlaTarget target)
{
    if (!p)
        return 0;
    switch (target) {
    case TG(FIRST_REPLY):
        return p->first_reply_minutes;
    case TG(NEXT_REPLY):
        return p->next_reply_minutes;
    case TG(RESOLUTION):
        return p->resolution_minutes;
    default:
        return 0;
    }
}

static int64_t target_ms(const Policy *p, Helpwire__V1__SlaTarget target)
{
    return (int64_t)hw_sla_target_minutes(p, target) * 60000;
}

static double warn_fraction(const Policy *p)
{
    return p->warn_fraction > 0 && p->warn_fraction < 1 ? p->warn_fraction : DEFAULT_WARN;
}

/* ------------------------------------------------------- clock rules */

static Clock *find_clock(const Ticket *t, Helpwire__V1__SlaTarget target)
{
    for (size_t i = 0; i < t->n_sla; i++)
        if (t->sla[i]->target == target)
            return t->sla[i];
    return NULL;
}

static bool waiting(const Clock *c)
{
    return c->state == SS(RUNNING) || c->state == SS(PAUSED) ||
           (c->state == SS(BREACHED) && c->ended_unix_ms == 0);
}

static void outcome_add(hw_sla_outcome *out, Helpwire__V1__SlaTarget target, bool breached)
{
    if (out && out->n < sizeof out->ended / sizeof out->ended[0])
        out->ended[out->n++] = (hw_sla_ended){target, breached};
}

/* The clock for target, created (and appended to t->sla) when missing. */
static Clock *clock_for(Ticket *t, Helpwire__V1__SlaTarget target, hw_arena *a)
{
    Clock *c = find_clock(t, target);
    if (c)
        return c;
    c = hw_arena_alloc(a, sizeof *c);
    Clock **arr = hw_arena_alloc(a, (t->n_sla + 1) * sizeof *arr);
    if (!c || !arr)
        return NULL;
    helpwire__v1__sla_clock__init(c);
    c->target = target;
    if (t->n_sla)
        memcpy(arr, t->sla, t->n_sla * sizeof *arr);
    arr[t->n_sla++] = c;
    t->sla = arr;
    return c;
}

static void remove_clock(Ticket *t, const Clock *c)
{
    for (size_t i = 0; i < t->n_sla; i++)
        if (t->sla[i] == c) {
            memmove(t->sla + i, t->sla + i + 1, (t->n_sla - i - 1) * sizeof *t->sla);
            t->n_sla--;
            return;
        }
}

/* Starts c now with business_ms to go, running (or paused when the ticket
 * is PENDING). */
static void run(Clock *c, const Ticket *t, const hw_hours *h, int64_t start, int64_t now, int64_t business_ms)
{
    c->started_unix_ms = start;
    c->ended_unix_ms = 0;
    c->warned = false;
    if (t->status == ST(PENDING)) {
        c->state = SS(PAUSED);
        c->due_unix_ms = 0;
        c->remaining_ms = business_ms;
    } else {
        c->state = SS(RUNNING);
        c->remaining_ms = 0;
        c->due_unix_ms = hw_hours_add(h, now, business_ms);
    }
}

int hw_sla_clocks_start(Ticket *t, const Policy *p, const hw_hours *h, int64_t now, hw_arena *a)
{
    t->sla_policy = p ? p->name : "";
    t->sla = NULL;
    t->n_sla = 0;
    if (!p)
        return HW_OK;
    static const Helpwire__V1__SlaTarget at_open[] = {TG(FIRST_REPLY), TG(RESOLUTION)};
    for (size_t i = 0; i < 2; i++) {
        int64_t ms = target_ms(p, at_open[i]);
        if (!ms)
            continue;
        Clock *c = clock_for(t, at_open[i], a);
        if (!c)
            return HW_ENOMEM;
        run(c, t, h, t->created_unix_ms ? t->created_unix_ms : now, now, ms);
    }
    return HW_OK;
}

/* The target is reached at now: MET, or the end of a breached wait. */
static void reach(Clock *c, const hw_hours *h, int64_t now, hw_sla_outcome *out)
{
    if (c->state == SS(RUNNING) || c->state == SS(PAUSED)) {
        if (c->state == SS(PAUSED)) /* when it would have been due */
            c->due_unix_ms = hw_hours_add(h, now, c->remaining_ms);
        c->state = SS(MET);
        c->remaining_ms = 0;
        c->ended_unix_ms = now;
        outcome_add(out, c->target, false);
    } else if (c->state == SS(BREACHED) && c->ended_unix_ms == 0) {
        c->ended_unix_ms = now;
    }
}

int hw_sla_clocks_message(Ticket *t, const Policy *p, const hw_hours *h, Helpwire__V1__MessageKind kind,
                          int64_t now, hw_arena *a, hw_sla_outcome *out)
{
    if (kind == HELPWIRE__V1__MESSAGE_KIND__MESSAGE_KIND_AGENT_REPLY) {
        for (size_t i = 0; i < t->n_sla; i++)
            if (t->sla[i]->target == TG(FIRST_REPLY) || t->sla[i]->target == TG(NEXT_REPLY))
                reach(t->sla[i], h, now, out);
        return HW_OK;
    }
    if (kind != HELPWIRE__V1__MESSAGE_KIND__MESSAGE_KIND_CUSTOMER || !p || !*t->sla_policy)
        return HW_OK;
    if (t->status == ST(RESOLVED) || t->status == ST(CLOSED))
        return HW_OK;
    int64_t ms = target_ms(p, TG(NEXT_REPLY));
    if (!ms)
        return HW_OK;
    const Clock *first = find_clock(t, TG(FIRST_REPLY));
    Clock *next = find_clock(t, TG(NEXT_REPLY));
    if ((first && waiting(first)) || (next && waiting(next)))
        return HW_OK; /* a reply is already due: this message waits with it */
    Clock *c = next ? next : clock_for(t, TG(NEXT_REPLY), a);
    if (!c)
        return HW_ENOMEM;
    run(c, t, h, now, now, ms);
    return HW_OK;
}

static void pause_clock(Clock *c, const hw_hours *h, int64_t now)
{
    if (c->state != SS(RUNNING))
        return;
    c->remaining_ms = c->due_unix_ms > now ? hw_hours_between(h, now, c->due_unix_ms) : 0;
    c->due_unix_ms = 0;
    c->state = SS(PAUSED);
}

static void resume_clock(Clock *c, const hw_hours *h, int64_t now)
{
    if (c->state != SS(PAUSED))
        return;
    c->due_unix_ms = hw_hours_add(h, now, c->remaining_ms);
    c->remaining_ms = 0;
    c->state = SS(RUNNING);
}

void hw_sla_clocks_status(Ticket *t, Helpwire__V1__TicketStatus prev, const hw_hours *h, int64_t now,
                          hw_sla_outcome *out)
{
    Helpwire__V1__TicketStatus s = t->status;
    if (s == prev)
        return;
    for (size_t i = 0; i < t->n_sla; i++) {
        Clock *c = t->sla[i];
        if (s == ST(RESOLVED) || s == ST(CLOSED))
            reach(c, h, now, out);
        else if (s == ST(PENDING))
            pause_clock(c, h, now);
        else if (prev == ST(PENDING))
            resume_clock(c, h, now);
    }
}

/* Business time c has used of its target under old (hours old_h). */
static int64_t used_ms(const Clock *c, const Policy *old, const hw_hours *old_h, int64_t now)
{
    int64_t total = target_ms(old, c->target);
    if (total && c->state == SS(PAUSED))
        return total > c->remaining_ms ? total - c->remaining_ms : 0;
    if (total && c->state == SS(RUNNING)) {
        int64_t left = c->due_unix_ms > now ? hw_hours_between(old_h, now, c->due_unix_ms) : 0;
        return total > left ? total - left : 0;
    }
    /* The old policy is gone: count since the start, ignoring pauses. */
    return c->started_unix_ms < now ? hw_hours_between(old_h, c->started_unix_ms, now) : 0;
}

int hw_sla_clocks_repolicy(Ticket *t, const Policy *old, const hw_hours *old_h, const Policy *p,
                           const hw_hours *h, int64_t now, hw_arena *a)
{
    bool had_policy = *t->sla_policy != '\0';
    t->sla_policy = p ? p->name : "";
    for (size_t i = 0; i < t->n_sla;) {
        Clock *c = t->sla[i];
        if (c->state != SS(RUNNING) && c->state != SS(PAUSED)) {
            i++; /* ended (or breached): kept as it is */
            continue;
        }
        int64_t ms = target_ms(p, c->target);
        if (!ms) {
            remove_clock(t, c);
            continue;
        }
        int64_t left = ms - used_ms(c, old, old_h, now);
        if (left < 0)
            left = 0;
        bool warned = c->warned;
        run(c, t, h, c->started_unix_ms, now, left);
        c->warned = warned;
        i++;
    }
    if (p && !had_policy && target_ms(p, TG(RESOLUTION)) && !find_clock(t, TG(RESOLUTION)) &&
        t->status != ST(RESOLVED) && t->status != ST(CLOSED)) {
        Clock *c = clock_for(t, TG(RESOLUTION), a);
        if (!c)
            return HW_ENOMEM;
        int64_t used = t->created_unix_ms < now ? hw_hours_between(h, t->created_unix_ms, now) : 0;
        int64_t left = target_ms(p, TG(RESOLUTION)) - used;
        run(c, t, h, t->created_unix_ms, now, left > 0 ? left : 0);
    }
    return HW_OK;
}

bool hw_sla_clocks_next(const Ticket *t, const Policy *p, const hw_hours *h, int64_t now, uint32_t *arg,
                        int64_t *due)
{
    bool any = false;
    for (size_t i = 0; i < t->n_sla; i++) {
        const Clock *c = t->sla[i];
        if (c->state != SS(RUNNING))
            continue;
        int64_t when = c->due_unix_ms;
        uint32_t what = HW_SLA_BREACH;
        int64_t total = target_ms(p, c->target);
        if (!c->warned && total) {
            /* The warning comes when (1 - f) of the target is left. */
            int64_t keep = (int64_t)llround((double)total * (1.0 - warn_fraction(p)));
            int64_t left = c->due_unix_ms > now ? hw_hours_between(h, now, c->due_unix_ms) : 0;
            if (left > keep) {
                when = hw_hours_add(h, now, left - keep);
                what = HW_SLA_WARN;
            } else if (left > 0) {
                when = now;
                what = HW_SLA_WARN;
            }
        }
        if (!any || when < *due) {
            any = true;
            *due = when;
            *arg = (uint32_t)c->target << 8 | what;
        }
    }
    return any;
}

hw_sla_fired hw_sla_clocks_fire(Ticket *t, uint32_t arg, int64_t now, Clock **clock)
{
    Clock *c = find_clock(t, (Helpwire__V1__SlaTarget)(arg >> 8));
    if (clock)
        *clock = c;
    if (!c || c->state != SS(RUNNING))
        return HW_SLA_FIRED_NOTHING;
    if ((arg & 0xff) == HW_SLA_WARN) {
        if (c->warned || now >= c->due_unix_ms)
            return HW_SLA_FIRED_NOTHING; /* the breach comes instead */
        c->warned = true;
        return HW_SLA_FIRED_WARNING;
    }
    if (now < c->due_unix_ms)
        return HW_SLA_FIRED_NOTHING;
    c->state = SS(BREACHED);
    c->ended_unix_ms = 0;
    return HW_SLA_FIRED_BREACH;
}

/* ------------------------------------------------------- validation */

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

int hw_sla_policy_check(const Policy *p, char *err, size_t errlen)
{
#define BAD(...) (snprintf(err, errlen, __VA_ARGS__), HW_EINVALID)
    if (!p)
        return BAD("policy: required");
    if (!name_ok(p->name))
        return BAD("policy.name: 1..64 characters of [a-z0-9_-] required, got \"%.80s\"", p->name);
    if (!protobuf_c_enum_descriptor_get_value(&helpwire__v1__priority__descriptor, p->priority) ||
        p->priority == HELPWIRE__V1__PRIORITY__PRIORITY_UNSPECIFIED)
        return BAD("policy.priority: required (LOW, NORMAL, HIGH or URGENT), got %d", (int)p->priority);
    if (*p->skill && !name_ok(p->skill))
        return BAD("policy.skill: not a skill name: \"%.80s\"", p->skill);
    if (!p->first_reply_minutes && !p->next_reply_minutes && !p->resolution_minutes)
        return BAD("policy: at least one of first_reply_minutes, next_reply_minutes, resolution_minutes is "
                   "required");
    static const char *const names[] = {"first_reply_minutes", "next_reply_minutes", "resolution_minutes"};
    const uint32_t v[] = {p->first_reply_minutes, p->next_reply_minutes, p->resolution_minutes};
    for (size_t i = 0; i < 3; i++)
        if (v[i] > MAX_TARGET_MINUTES)
            return BAD("policy.%s: at most %u (a year), got %u", names[i], MAX_TARGET_MINUTES, v[i]);
    if (p->warn_fraction != 0 && !(p->warn_fraction > 0 && p->warn_fraction < 1))
        return BAD("policy.warn_fraction: must be in (0, 1), got %g", p->warn_fraction);
    if (!protobuf_c_enum_descriptor_get_value(&helpwire__v1__sla_breach_action__descriptor, p->breach_action))
        return BAD("policy.breach_action: unknown value %d", (int)p->breach_action);
    return HW_OK;
#undef BAD
}

/* ----------------------------------------------------- in the store */

int hw_sla_choose_in(hw_store_txn *t, const char *queue, Helpwire__V1__Priority priority, hw_arena *a,
                     Policy **out)
{
    *out = NULL;
    hw_store_cursor cur = {0};
    do {
        Policy **ps;
        size_t n;
        int rc = hw_store_sla_policy_list(t, &cur, MAX_POLICIES, a, &ps, &n);
        if (rc != HW_OK)
            return rc;
        for (size_t i = 0; i < n; i++) {
            if (ps[i]->priority != priority)
                continue;
            if (*ps[i]->skill && queue && strcmp(ps[i]->skill, queue) == 0) {
                *out = ps[i];
                return HW_OK; /* naming the queue wins */
            }
            if (!*ps[i]->skill && !*out)
                *out = ps[i];
        }
    } while (cur.len);
    return HW_OK;
}

int hw_sla_hours_in(hw_store_txn *t, const hw_effects *fx, const char *queue, hw_arena *a, hw_hours **out)
{
    *out = NULL;
    if (!queue || !*queue)
        return HW_OK;
    Helpwire__V1__Skill *sk;
    int rc = hw_store_skill_get(t, queue, a, &sk);
    if (rc == HW_ENOTFOUND)
        return HW_OK;
    if (rc != HW_OK)
        return rc;
    if (!sk->hours)
        return HW_OK;
    char err[256];
    /* Compiled once per content (the app's cache; a write without an app,
     * a tool's or a unit test's, compiles them). PutSkill validated the
     * hours; a zone that went missing since then leaves the queue always
     * open rather than stopping the ticket. */
    hw_hours_cache *cache = fx && fx->app ? fx->app->hours_cache : NULL;
    rc = hw_hours_cache_get(cache, sk->hours, out, err, sizeof err);
    if (rc == HW_ENOMEM)
        return rc;
    if (rc != HW_OK)
        *out = NULL;
    return HW_OK;
}

int hw_sla_policy_of_in(hw_store_txn *w, const Ticket *t, hw_arena *a, Policy **p)
{
    *p = NULL;
    if (!t->sla_policy || !*t->sla_policy)
        return HW_OK;
    int rc = hw_store_sla_policy_get(w, t->sla_policy, a, p);
    return rc == HW_ENOTFOUND ? HW_OK : rc;
}

int hw_sla_reschedule_in(hw_store_txn *w, hw_effects *fx, const Ticket *t, int64_t now, hw_arena *a)
{
    Policy *p;
    hw_hours *h = NULL;
    int rc = hw_sla_policy_of_in(w, t, a, &p);
    if (rc == HW_OK)
        rc = hw_sla_hours_in(w, fx, t->queue, a, &h);
    if (rc != HW_OK)
        return rc;
    uint32_t arg = 0;
    int64_t due = 0;
    if (hw_sla_clocks_next(t, p, h, now, &arg, &due))
        rc = hw_timers_set_in(w, fx, HW_TIMER_SLA, t->id, arg, due);
    else
        rc = hw_timers_cancel_in(w, HW_TIMER_SLA, t->id);
    hw_hours_free(h);
    return rc;
}

/* ---- attainment counters */

static int add_counter(hw_store_txn *w, const char *key, size_t kl)
{
    void *v;
    size_t vl;
    uint64_t n = 0;
    int rc = hw_store_kv_get(w, METRICS_NS, key, kl, hw_store_txn_arena(w), &v, &vl);
    if (rc == HW_OK && vl == 8)
        for (int i = 0; i < 8; i++)
            n = n << 8 | ((unsigned char *)v)[i];
    else if (rc != HW_OK && rc != HW_ENOTFOUND)
        return rc;
    n++;
    unsigned char b[8];
    for (int i = 7; i >= 0; i--, n >>= 8)
        b[i] = (unsigned char)n;
    return hw_store_kv_put(w, METRICS_NS, key, kl, b, sizeof b);
}

int hw_sla_count_in(hw_store_txn *w, const Ticket *t, Helpwire__V1__SlaTarget target, bool breached)
{
    char key[200];
    int kl = snprintf(key, sizeof key, "%s%c%s%c%s%c%s", t->queue, 0, priority_name(t->priority), 0,
                      hw_sla_target_name(target), 0, breached ? "breached" : "met");
    if (kl <= 0 || (size_t)kl >= sizeof key)
        return HW_EINVALID;
    int rc = add_counter(w, key, (size_t)kl);
    if (rc == HW_OK && breached) {
        kl = snprintf(key, sizeof key, "%s%c%c", t->id, 0, (char)target);
        rc = hw_store_kv_put(w, BREACHED_NS, key, (size_t)kl, "", 0);
    }
    return rc;
}

/* Clears "breached now" entries of clocks of t that are no longer waiting. */
static int settle_breached(hw_store_txn *w, const Ticket *t)
{
    for (size_t i = 0; i < t->n_sla; i++) {
        const Clock *c = t->sla[i];
        if (c->state != SS(BREACHED) || c->ended_unix_ms == 0)
            continue;
        char key[200];
        int kl = snprintf(key, sizeof key, "%s%c%c", t->id, 0, (char)c->target);
        int rc = hw_store_kv_delete(w, BREACHED_NS, key, (size_t)kl);
        if (rc != HW_OK && rc != HW_ENOTFOUND)
            return rc;
    }
    return HW_OK;
}

static int count_outcome(hw_store_txn *w, const Ticket *t, const hw_sla_outcome *o)
{
    int rc = HW_OK;
    for (size_t i = 0; rc == HW_OK && i < o->n; i++)
        rc = hw_sla_count_in(w, t, o->ended[i].target, o->ended[i].breached);
    if (rc == HW_OK)
        rc = settle_breached(w, t);
    return rc;
}

/* ---- the hooks tickets.c calls */

int hw_sla_ticket_opened_in(hw_store_txn *w, hw_effects *fx, Ticket *t, hw_arena *a)
{
    Policy *p;
    hw_hours *h = NULL;
    int rc = hw_sla_choose_in(w, t->queue, t->priority, a, &p);
    if (rc == HW_OK)
        rc = hw_sla_hours_in(w, fx, t->queue, a, &h);
    if (rc == HW_OK)
        rc = hw_sla_clocks_start(t, p, h, t->created_unix_ms, a);
    hw_hours_free(h);
    if (rc == HW_OK && p)
        rc = hw_sla_reschedule_in(w, fx, t, t->updated_unix_ms, a);
    return rc;
}

int hw_sla_message_in(hw_store_txn *w, hw_effects *fx, Ticket *t, Helpwire__V1__MessageKind kind,
                      const hw_sla_before *before, hw_arena *a)
{
    if (!*t->sla_policy && !t->n_sla)
        return HW_OK;
    Policy *p;
    hw_hours *h = NULL;
    int rc = hw_sla_policy_of_in(w, t, a, &p);
    if (rc == HW_OK)
        rc = hw_sla_hours_in(w, fx, t->queue, a, &h);
    hw_sla_outcome out = {0};
    if (rc == HW_OK) {
        hw_sla_clocks_status(t, before->status, h, t->updated_unix_ms, &out);
        rc = hw_sla_clocks_message(t, p, h, kind, t->updated_unix_ms, a, &out);
    }
    hw_hours_free(h);
    if (rc == HW_OK)
        rc = count_outcome(w, t, &out);
    if (rc == HW_OK)
        rc = hw_sla_reschedule_in(w, fx, t, t->updated_unix_ms, a);
    return rc;
}

int hw_sla_ticket_changed_in(hw_store_txn *w, hw_effects *fx, Ticket *t, const hw_sla_before *before,
                             hw_arena *a)
{
    bool rechoose = before->priority != t->priority ||
                    (before->queue && t->queue && strcmp(before->queue, t->queue) != 0);
    if (!rechoose && !*t->sla_policy && !t->n_sla)
        return HW_OK;
    if (!rechoose && before->status == t->status)
        return HW_OK;
    int rc = HW_OK;
    hw_sla_outcome out = {0};
    int64_t now = t->updated_unix_ms;
    if (rechoose && t->status != ST(RESOLVED) && t->status != ST(CLOSED)) {
        Policy *old, *p;
        hw_hours *old_h = NULL, *h = NULL;
        rc = hw_sla_policy_of_in(w, t, a, &old);
        if (rc == HW_OK)
            rc = hw_sla_choose_in(w, t->queue, t->priority, a, &p);
        if (rc == HW_OK)
            rc = hw_sla_hours_in(w, fx, before->queue ? before->queue : t->queue, a, &old_h);
        if (rc == HW_OK)
            rc = hw_sla_hours_in(w, fx, t->queue, a, &h);
        if (rc == HW_OK) {
            /* Pause/resume first in the old hours, then move to the new policy. */
            hw_sla_clocks_status(t, before->status, old_h, now, &out);
            bool moved = before->queue && strcmp(before->queue, t->queue) != 0;
            if (moved || strcmp(p ? p->name : "", t->sla_policy) != 0)
                rc = hw_sla_clocks_repolicy(t, old, old_h, p, h, now, a);
        }
        hw_hours_free(old_h);
        hw_hours_free(h);
    } else {
        hw_hours *h = NULL;
        rc = hw_sla_hours_in(w, fx, t->queue, a, &h);
        if (rc == HW_OK)
            hw_sla_clocks_status(t, before->status, h, now, &out);
        hw_hours_free(h);
    }
    if (rc == HW_OK)
        rc = count_outcome(w, t, &out);
    if (rc == HW_OK)
        rc = hw_sla_reschedule_in(w, fx, t, t->updated_unix_ms, a);
    return rc;
}

/* ------------------------------------------------------------ metrics */

typedef struct {
    FILE *out;
    uint64_t breached_now[4];
} metrics_ctx;

static void label(FILE *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\')
            fputc('\\', out);
        fputc(s[i], out);
    }
}

static int metric_each(void *arg, const void *key, size_t kl, const void *val, size_t vl)
{
    metrics_ctx *m = arg;
    const char *k = key, *end = k + kl, *f[4];
    size_t fl[4];
    for (int i = 0; i < 4; i++) {
        f[i] = k;
        const char *z = memchr(k, 0, (size_t)(end - k));
        fl[i] = (size_t)((z ? z : end) - k);
        k = z ? z + 1 : end;
    }
    if (vl != 8)
        return 0;
    uint64_t n = 0;
    for (int i = 0; i < 8; i++)
        n = n << 8 | ((const unsigned char *)val)[i];
    static const char *const names[] = {"queue", "priority", "target", "result"};
    fputs("helpwire_sla_clocks_total{", m->out);
    for (int i = 0; i < 4; i++) {
        fprintf(m->out, "%s%s=\"", i ? "," : "", names[i]);
        label(m->out, f[i], fl[i]);
        fputc('"', m->out);
    }
    fprintf(m->out, "} %" PRIu64 "\n", n);
    return 0;
}

static int breached_each(void *arg, const void *key, size_t kl, const void *val, size_t vl)
{
    (void)val;
    (void)vl;
    metrics_ctx *m = arg;
    unsigned target = kl ? ((const unsigned char *)key)[kl - 1] : 0;
    if (target < 4)
        m->breached_now[target]++;
    return 0;
}

void hw_sla_metrics(hw_store_txn *t, FILE *out)
{
    metrics_ctx m = {.out = out};
    fputs("# HELP helpwire_sla_clocks_total SLA clocks that ended, by queue, priority, target and whether "
          "the target was met or breached.\n# TYPE helpwire_sla_clocks_total counter\n",
          out);
    hw_store_kv_foreach(t, METRICS_NS, metric_each, &m);
    hw_store_kv_foreach(t, BREACHED_NS, breached_each, &m);
    fputs("# HELP helpwire_sla_breached_now SLA clocks past their due time whose target is still not "
          "reached.\n# TYPE helpwire_sla_breached_now gauge\n",
          out);
    for (unsigned i = 1; i < 4; i++)
        fprintf(out, "helpwire_sla_breached_now{target=\"%s\"} %" PRIu64 "\n",
                hw_sla_target_name((Helpwire__V1__SlaTarget)i), m.breached_now[i]);
}

/* -------------------------------------------------------- the service */

typedef struct {
    hw_wctx h;
    Policy policy;
    const char *name;
} policy_ctx;

static int put_fn(hw_store_txn *w, void *arg)
{
    policy_ctx *c = arg;
    hw_arena *a = hw_call_arena(c->h.call);
    Policy *p = &c->policy;
    if (*p->skill) {
        Helpwire__V1__Skill *sk;
        int rc = hw_store_skill_get(w, p->skill, a, &sk);
        if (rc == HW_ENOTFOUND)
            return hw_rpc_wfail(&c->h, rc, "policy.skill: no skill named %s", p->skill);
        if (rc != HW_OK)
            return rc;
    }
    /* One policy per (priority, skill): the choice must never be ambiguous. */
    hw_store_cursor cur = {0};
    do {
        Policy **ps;
        size_t n;
        int rc = hw_store_sla_policy_list(w, &cur, MAX_POLICIES, a, &ps, &n);
        if (rc != HW_OK)
            return rc;
        for (size_t i = 0; i < n; i++)
            if (strcmp(ps[i]->name, p->name) != 0 && ps[i]->priority == p->priority &&
                strcmp(ps[i]->skill, p->skill) == 0)
                return hw_rpc_wfail(&c->h, HW_EEXISTS,
                                    "policy: %s already covers priority %s %s%s; change or delete it first",
                                    ps[i]->name, priority_name(p->priority),
                                    *p->skill ? "in queue " : "in every queue", p->skill);
    } while (cur.len);
    Policy *old;
    int rc = hw_store_sla_policy_get(w, p->name, a, &old);
    if (rc == HW_OK)
        p->version = old->version + 1;
    else if (rc == HW_ENOTFOUND)
        p->version = 1;
    else
        return rc;
    p->updated_unix_ms = hw_effects_now_ms(&c->h.fx);
    return hw_store_sla_policy_put(w, p, HW_PUT_UPSERT, 0);
}

static void put_done(void *arg, int status)
{
    policy_ctx *c = arg;
    if (hw_rpc_write_failed(&c->h, status))
        return;
    hw_call_reply(c->h.call, &c->policy.base);
}

void hw_sla_put_policy(hw_call *call, const ProtobufCMessage *request, void *app)
{
    const Helpwire__V1__PutSlaPolicyRequest *req = (const void *)request;
    char err[256];
    if (hw_sla_policy_check(req->policy, err, sizeof err) != HW_OK) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "%s", err);
        return;
    }
    policy_ctx *c = hw_rpc_ctx_new(call, app, sizeof *c);
    if (!c)
        return;
    c->policy = *req->policy;
    if (c->policy.warn_fraction == 0)
        c->policy.warn_fraction = DEFAULT_WARN;
    if (c->policy.breach_action == HELPWIRE__V1__SLA_BREACH_ACTION__SLA_BREACH_ACTION_UNSPECIFIED)
        c->policy.breach_action = HELPWIRE__V1__SLA_BREACH_ACTION__SLA_BREACH_ACTION_ESCALATE;
    hw_rpc_write(&c->h, put_fn, put_done);
}

void hw_sla_list_policies(hw_call *call, const ProtobufCMessage *request, void *app)
{
    (void)request;
    hw_store_txn *t = hw_rpc_read(call, app);
    if (!t)
        return;
    hw_store_cursor cur = {0};
    Helpwire__V1__ListSlaPoliciesReply r = HELPWIRE__V1__LIST_SLA_POLICIES_REPLY__INIT;
    int rc =
        hw_store_sla_policy_list(t, &cur, HW_STORE_LIST_MAX, hw_call_arena(call), &r.policies, &r.n_policies);
    hw_rpc_read_end(call, app);
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, NULL);
        return;
    }
    hw_call_reply(call, &r.base);
}

static int delete_fn(hw_store_txn *w, void *arg)
{
    policy_ctx *c = arg;
    int rc = hw_store_sla_policy_delete(w, c->name);
    if (rc == HW_ENOTFOUND)
        return hw_rpc_wfail(&c->h, rc, "name: no SLA policy named %s", c->name);
    return rc;
}

static void delete_done(void *arg, int status)
{
    policy_ctx *c = arg;
    if (hw_rpc_write_failed(&c->h, status))
        return;
    Helpwire__V1__DeleteSlaPolicyReply r = HELPWIRE__V1__DELETE_SLA_POLICY_REPLY__INIT;
    hw_call_reply(c->h.call, &r.base);
}

void hw_sla_delete_policy(hw_call *call, const ProtobufCMessage *request, void *app)
{
    const Helpwire__V1__DeleteSlaPolicyRequest *req = (const void *)request;
    if (!name_ok(req->name)) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
                     "name: 1..64 characters of [a-z0-9_-] required, got \"%.80s\"", req->name);
        return;
    }
    policy_ctx *c = hw_rpc_ctx_new(call, app, sizeof *c);
    if (!c)
        return;
    c->name = req->name;
    hw_rpc_write(&c->h, delete_fn, delete_done);
}
