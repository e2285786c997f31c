/*
 * queues: assignment choice, waiting order and UNASSIGNABLE alerts (see
 * queues.h).
 *
 * Durable state kept here, in the store's key-value space:
 * - namespace "rr": key skill name -> the agent id round robin chose last
 *   in that skill, so the turn survives restarts;
 * - namespace "unassignable": key queue name -> big-endian 64-bit count of
 *   UNASSIGNABLE alerts raised, the counter behind
 *   helpwire_tickets_unassignable_total (durable, so a restart does not
 *   reset it).
 * Both are written in the transaction that assigns or alerts, so they
 * never disagree with the tickets.
 */
#include "server/domain/queues.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "server/domain/app.h"
#include "server/domain/notifier.h"
#include "server/domain/timers.h"
#include "server/domain/watch.h"
#include "server/store/records.h"

#define RR_NS "rr"
#define COUNT_NS "unassignable"
#define SCAN_LIMIT 1000

typedef Helpwire__V1__Agent Agent;
typedef Helpwire__V1__Ticket Ticket;

/* The counters' values: big-endian 64-bit. */
static uint64_t be64_get(const void *p)
{
    const unsigned char *b = p;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | b[i];
    return v;
}

static void be64_put(unsigned char *b, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        b[i] = (unsigned char)(v & 0xffu);
}

/* ------------------------------------------------------------ pure rules */

static const Helpwire__V1__ChannelCapacity *channel_cap(const Agent *ag, Helpwire__V1__Channel ch)
{
    for (size_t i = 0; i < ag->n_channel_capacities; i++)
        if (ag->channel_capacities[i]->channel == ch)
            return ag->channel_capacities[i];
    return NULL;
}

uint32_t hw_queues_channel_load(const Agent *ag, Helpwire__V1__Channel ch)
{
    for (size_t i = 0; i < ag->n_channel_load; i++)
        if (ag->channel_load[i]->channel == ch)
            return ag->channel_load[i]->open_tickets;
    return 0;
}

bool hw_queues_can_take(const Agent *ag, Helpwire__V1__Channel ch)
{
    if (ag->presence != HELPWIRE__V1__PRESENCE__PRESENCE_ONLINE || ag->open_tickets >= ag->capacity)
        return false;
    const Helpwire__V1__ChannelCapacity *cc = channel_cap(ag, ch);
    return !cc || hw_queues_channel_load(ag, ch) < cc->capacity;
}

int hw_queues_channel_load_add(Agent *ag, Helpwire__V1__Channel ch, int delta, hw_arena *a)
{
    if (!delta || !ch)
        return HW_OK;
    for (size_t i = 0; i < ag->n_channel_load; i++)
        if (ag->channel_load[i]->channel == ch) {
            Helpwire__V1__ChannelLoad *l = hw_arena_alloc(a, sizeof *l);
            if (!l)
                return HW_ENOMEM;
            *l = *ag->channel_load[i]; /* the entry may be shared with a cached record: copy */
            int64_t n = (int64_t)l->open_tickets + delta;
            l->open_tickets = n < 0 ? 0 : (uint32_t)n;
            Helpwire__V1__ChannelLoad **v = hw_arena_alloc(a, ag->n_channel_load * sizeof *v);
            if (!v)
                return HW_ENOMEM;
            memcpy(v, ag->channel_load, ag->n_channel_load * sizeof *v);
            v[i] = l;
            ag->channel_load = v;
            return HW_OK;
        }
    if (delta < 0)
        return HW_OK;
    Helpwire__V1__ChannelLoad **v = hw_arena_alloc(a, (ag->n_channel_load + 1) * sizeof *v);
    Helpwire__V1__ChannelLoad *l = hw_arena_alloc(a, sizeof *l);
    if (!v || !l)
        return HW_ENOMEM;
    helpwire__v1__channel_load__init(l);
    l->channel = ch;
    l->open_tickets = (uint32_t)delta;
    if (ag->n_channel_load)
        memcpy(v, ag->channel_load, ag->n_channel_load * sizeof *v);
    v[ag->n_channel_load++] = l;
    ag->channel_load = v;
    return HW_OK;
}

int64_t hw_queues_sla_due(const Ticket *t)
{
    int64_t due = 0;
    for (size_t i = 0; i < t->n_sla; i++) {
        const Helpwire__V1__SlaClock *c = t->sla[i];
        if (c->state == HELPWIRE__V1__SLA_STATE__SLA_STATE_RUNNING && c->due_unix_ms > 0 &&
            (!due || c->due_unix_ms < due))
            due = c->due_unix_ms;
    }
    return due;
}

int hw_queues_waiting_cmp(const void *x, const void *y)
{
    const Ticket *a = *(Ticket *const *)x, *b = *(Ticket *const *)y;
    if (a->priority != b->priority)
        return a->priority > b->priority ? -1 : 1;
    int64_t da = hw_queues_sla_due(a), db = hw_queues_sla_due(b);
    if (da != db) {
        if (!da || !db)
            return da ? -1 : 1; /* no SLA due last */
        return da < db ? -1 : 1;
    }
    return a->number < b->number ? -1 : a->number > b->number;
}

/* Load that decides LEAST_LOADED for channel ch. */
static uint32_t load_for(const Agent *ag, Helpwire__V1__Channel ch)
{
    return channel_cap(ag, ch) ? hw_queues_channel_load(ag, ch) : ag->open_tickets;
}

long hw_queues_choose(Agent *const *agents, size_t n, Helpwire__V1__Channel ch,
                      Helpwire__V1__AssignmentStrategy strategy, const char *rr_last)
{
    if (strategy == HELPWIRE__V1__ASSIGNMENT_STRATEGY__ASSIGNMENT_STRATEGY_ROUND_ROBIN) {
        size_t start = 0;
        if (rr_last && *rr_last)
            while (start < n && strcmp(agents[start]->id, rr_last) <= 0)
                start++;
        for (size_t k = 0; k < n; k++) {
            size_t i = (start + k) % n;
            if (hw_queues_can_take(agents[i], ch))
                return (long)i;
        }
        return -1;
    }
    long best = -1;
    for (size_t i = 0; i < n; i++) {
        if (!hw_queues_can_take(agents[i], ch))
            continue;
        if (best < 0) {
            best = (long)i;
            continue;
        }
        const Agent *b = agents[best], *c = agents[i];
        uint32_t lb = load_for(b, ch), lc = load_for(c, ch);
        if (lc < lb || (lc == lb && c->presence_changed_unix_ms < b->presence_changed_unix_ms))
            best = (long)i;
    }
    return best;
}

/* ------------------------------------------------------ inside a write */

int64_t hw_queues_alert_after_ms(const hw_effects *fx, const Helpwire__V1__Skill *skill)
{
    if (skill && skill->unassigned_alert_after_s)
        return (int64_t)skill->unassigned_alert_after_s * 1000;
    const hw_app *app = fx ? fx->app : NULL;
    return app && app->settings.unassigned_alert_after_ms ? app->settings.unassigned_alert_after_ms
                                                          : HW_QUEUES_UNASSIGNED_ALERT_AFTER_MS;
}

int64_t hw_queues_grace_ms(const hw_effects *fx)
{
    const hw_app *app = fx ? fx->app : NULL;
    return app ? app->settings.reassign_grace_ms : HW_QUEUES_REASSIGN_GRACE_MS;
}

int hw_queues_pick_in(hw_store_txn *w, const char *queue, Helpwire__V1__Channel channel, const char *skip,
                      hw_arena *a, Agent **out)
{
    *out = NULL;
    if (!queue || !*queue)
        return HW_OK;
    Helpwire__V1__Skill *skill = NULL;
    int rc = hw_store_skill_get(w, queue, a, &skill);
    if (rc == HW_ENOTFOUND)
        return HW_OK;
    if (rc != HW_OK)
        return rc;
    /* Every online agent with the skill, in id order. */
    Agent **all = NULL;
    size_t n_all = 0, cap = 0;
    hw_store_cursor cur = {0};
    do {
        Agent **ags;
        size_t n;
        rc = hw_store_agent_list(w, queue, HELPWIRE__V1__PRESENCE__PRESENCE_ONLINE, &cur, SCAN_LIMIT, a, &ags,
                                 &n);
        if (rc != HW_OK)
            return rc;
        if (n_all + n > cap) {
            size_t nc = cap ? cap * 2 : 64;
            while (nc < n_all + n)
                nc *= 2;
            Agent **g = hw_arena_alloc(a, nc * sizeof *g);
            if (!g)
                return HW_ENOMEM;
            if (n_all)
                memcpy(g, all, n_all * sizeof *g);
            all = g;
            cap = nc;
        }
        for (size_t i = 0; i < n; i++)
            if (!skip || strcmp(ags[i]->id, skip) != 0)
                all[n_all++] = ags[i];
    } while (cur.len);
    if (!n_all)
        return HW_OK;
    bool rr = skill->assignment == HELPWIRE__V1__ASSIGNMENT_STRATEGY__ASSIGNMENT_STRATEGY_ROUND_ROBIN;
    char *last = NULL;
    if (rr) {
        void *v;
        size_t vn;
        rc = hw_store_kv_get(w, RR_NS, queue, strlen(queue), a, &v, &vn);
        if (rc == HW_OK && (last = hw_arena_strndup(a, v, vn)) == NULL)
            return HW_ENOMEM;
        if (rc != HW_OK && rc != HW_ENOTFOUND)
            return rc;
    }
    long i = hw_queues_choose(all, n_all, channel, skill->assignment, last);
    if (i < 0)
        return HW_OK;
    *out = all[i];
    if (rr)
        return hw_store_kv_put(w, RR_NS, queue, strlen(queue), all[i]->id, strlen(all[i]->id));
    return HW_OK;
}

/* Whether any agent (in any presence) has the skill queue. */
static int anyone_has(hw_store_txn *w, const char *queue, hw_arena *a, bool *yes)
{
    *yes = false;
    if (!queue || !*queue)
        return HW_OK;
    hw_store_cursor cur = {0};
    Agent **ags;
    size_t n;
    int rc =
        hw_store_agent_list(w, queue, HELPWIRE__V1__PRESENCE__PRESENCE_UNSPECIFIED, &cur, 1, a, &ags, &n);
    if (rc == HW_OK)
        *yes = n > 0;
    return rc;
}

int hw_queues_unassignable_in(hw_store_txn *w, hw_effects *fx, const Ticket *t, const char *why)
{
    int rc = hw_watch_record(w, fx, t, HELPWIRE__V1__TICKET_EVENT_KIND__TICKET_EVENT_KIND_UNASSIGNABLE,
                             "system", why);
    if (rc == HW_OK)
        rc = hw_notifier_queue_kind_in(w, fx, t, HW_ALERT_UNASSIGNABLE, why, "system");
    if (rc != HW_OK)
        return rc;
    const char *q = t->queue && *t->queue ? t->queue : "none";
    uint64_t count = 0;
    void *v;
    size_t vn;
    rc = hw_store_kv_get(w, COUNT_NS, q, strlen(q), hw_store_txn_arena(w), &v, &vn);
    if (rc == HW_OK && vn == 8)
        count = be64_get(v);
    else if (rc != HW_OK && rc != HW_ENOTFOUND)
        return rc;
    unsigned char b[8];
    be64_put(b, count + 1);
    return hw_store_kv_put(w, COUNT_NS, q, strlen(q), b, sizeof b);
}

int hw_queues_waiting_in(hw_store_txn *w, hw_effects *fx, const Ticket *t, hw_arena *a)
{
    bool has = false;
    int rc = anyone_has(w, t->queue, a, &has);
    if (rc != HW_OK)
        return rc;
    if (!has) {
        const char *why = t->queue && *t->queue ? hw_arena_printf(a, "no agent has the skill %s", t->queue)
                                                : "no queue: no skill is defined";
        if (!why)
            return HW_ENOMEM;
        /* Alerted for this wait: no timer, so the alert is not repeated. */
        rc = hw_timers_cancel_in(w, HW_TIMER_UNASSIGNED, t->id);
        return rc == HW_OK ? hw_queues_unassignable_in(w, fx, t, why) : rc;
    }
    Helpwire__V1__Skill *skill = NULL;
    rc = hw_store_skill_get(w, t->queue, a, &skill);
    if (rc != HW_OK && rc != HW_ENOTFOUND)
        return rc;
    int64_t after = hw_queues_alert_after_ms(fx, rc == HW_OK ? skill : NULL);
    return hw_timers_set_in(w, fx, HW_TIMER_UNASSIGNED, t->id, 0, hw_effects_now_ms(fx) + after);
}

int hw_queues_wait_over_in(hw_store_txn *w, const Ticket *t)
{
    return hw_timers_cancel_in(w, HW_TIMER_UNASSIGNED, t->id);
}

int hw_queues_unassigned_fire(void *arg, hw_store_txn *w, hw_effects *fx, hw_timer_kind kind,
                              const char *subject, uint32_t targ, int64_t due_ms, int64_t now_ms)
{
    (void)kind;
    (void)targ;
    (void)due_ms;
    if (!fx->app)
        fx->app = arg; /* the settings for the rules below */
    hw_arena *a = fx->arena ? fx->arena : hw_store_txn_arena(w);
    Ticket *t;
    int rc = hw_store_ticket_get(w, subject, a, &t);
    if (rc == HW_ENOTFOUND)
        return HW_OK;
    if (rc != HW_OK)
        return rc;
    bool open = t->status == HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_OPEN ||
                t->status == HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_PENDING ||
                t->status == HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_ESCALATED;
    if (!open || (t->assignee_agent_id && *t->assignee_agent_id))
        return HW_OK; /* its wait is over (a cancel should have said so) */
    (void)now_ms;
    Helpwire__V1__Skill *skill = NULL;
    rc = hw_store_skill_get(w, t->queue, a, &skill);
    if (rc != HW_OK && rc != HW_ENOTFOUND)
        return rc;
    int64_t limit = hw_queues_alert_after_ms(fx, rc == HW_OK ? skill : NULL);
    const char *why = limit % 60000 == 0
                          ? hw_arena_printf(a, "waited unassigned in queue %s for %lld min (no agent free)",
                                            t->queue, (long long)(limit / 60000))
                          : hw_arena_printf(a, "waited unassigned in queue %s for %lld s (no agent free)",
                                            t->queue, (long long)((limit + 999) / 1000));
    if (!why)
        return HW_ENOMEM;
    return hw_queues_unassignable_in(w, fx, t, why);
}

/* ------------------------------------------------------------- metrics */

typedef struct {
    FILE *out;
} count_ctx;

static int print_count(void *arg, const void *key, size_t key_len, const void *val, size_t val_len)
{
    count_ctx *c = arg;
    uint64_t n = val_len == 8 ? be64_get(val) : 0;
    fprintf(c->out, "helpwire_tickets_unassignable_total{queue=\"%.*s\"} %" PRIu64 "\n", (int)key_len,
            (const char *)key, n);
    return 0;
}

void hw_queues_metrics(hw_store_txn *t, hw_arena *a, FILE *out)
{
    fprintf(out, "# HELP helpwire_tickets_unassignable_total UNASSIGNABLE alerts raised (no agent has the "
                 "skill, or a ticket waited unassigned past the limit), by queue.\n"
                 "# TYPE helpwire_tickets_unassignable_total counter\n");
    count_ctx c = {out};
    hw_store_kv_foreach(t, COUNT_NS, print_count, &c);
    fprintf(out, "# HELP helpwire_queue_waiting Open tickets waiting unassigned, by queue.\n"
                 "# TYPE helpwire_queue_waiting gauge\n");
    hw_store_cursor cur = {0};
    Helpwire__V1__Skill **skills;
    size_t n;
    if (hw_store_skill_list(t, &cur, HW_STORE_LIST_MAX, a, &skills, &n) != HW_OK)
        return;
    for (size_t s = 0; s < n; s++) {
        hw_ticket_filter f = {.queue = skills[s]->name, .unassigned_only = 1};
        hw_store_cursor tc = {0};
        uint64_t waiting = 0;
        do {
            Ticket **ts;
            size_t nt;
            if (hw_store_ticket_list(t, &f, &tc, SCAN_LIMIT, a, &ts, &nt) != HW_OK)
                break;
            for (size_t i = 0; i < nt; i++)
                if (ts[i]->status == HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_OPEN ||
                    ts[i]->status == HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_PENDING ||
                    ts[i]->status == HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_ESCALATED)
                    waiting++;
        } while (tc.len);
        fprintf(out, "helpwire_queue_waiting{queue=\"%s\"} %" PRIu64 "\n", skills[s]->name, waiting);
    }
}
