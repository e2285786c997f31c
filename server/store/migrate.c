/*
 * migrate: the schema upgrades, as steps the engine runs at open
 * (contract: migrate.h).
 *
 * Schema 1 -> 2. Schema 1 kept a ticket's events and its messages in a
 * database each (key: ticket id \0 be64 seq, value: the record); schema 2
 * keeps both in one ticket log (records_internal.h), so a message and its
 * history event land on one page. The engine stamps version 2 into the
 * schema record before anything moves (an older build then refuses the
 * store), and then runs the step as write requests of about 10,000 entries
 * each, whole tickets at a time: each is durable on its own, so an
 * interrupted migration resumes at the next open, found by the old
 * databases not being empty rather than by the version.
 *
 * The default skill (no schema change: Skill.is_default is a new field
 * that older stores simply lack). A store written before skills had a
 * default mark relied on the queue named "general" as the fallback; when
 * skills exist and none is marked, the step marks "general", or, without
 * it, the first skill by name (the fallback classify.h used for such a
 * store), so unmatched text keeps going where it did. Found by content:
 * PutSkill keeps one skill marked whenever skills exist (the first skill
 * takes the mark, the default cannot drop it, only move it), so only a
 * store from before the mark has skills and no default; the step runs once
 * on it and never again, and never moves a mark an admin set.
 *
 * The per-channel load (Agent.channel_load, new with per-channel
 * capacities). A store written before it has agents with open tickets and
 * no channel_load; the step counts each such agent's open tickets by
 * channel from the tickets themselves. Found by content: an agent with
 * open tickets and no channel load at all.
 *
 * Direction: this file uses the engine's internal API (store_internal.h)
 * and the record layouts (records_internal.h); the engine reaches it only
 * through the hw_store_upgrade table handed to it at open, never by name.
 */
#include "server/store/migrate.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "helpwire/v1/agents.pb-c.h"
#include "helpwire/v1/tickets.pb-c.h"
#include "server/base/arena.h"
#include "server/store/records.h"
#include "server/store/records_internal.h"

/* Entries moved per durable write (whole tickets, so a step may move more). */
#define TICKET_LOGS_PER_STEP 10000u

typedef struct legacy_entry {
    int kind;
    uint64_t seq;
    int64_t at;
    void *bytes; /* malloc */
    size_t len;
} legacy_entry;

/* Reads (copies) every entry of db under prefix into *es (malloc, grown). */
static int legacy_read(hw_store_txn *w, int db, const hw_kb *prefix, int kind, legacy_entry **es, size_t *n,
                       size_t *cap)
{
    MDB_cursor *c;
    int rc = hw_store__cursor(w, db, &c);
    if (rc != HW_OK)
        return rc;
    MDB_val k = {.mv_size = prefix->n, .mv_data = (void *)prefix->b}, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    for (; mrc == 0 && hw_has_prefix(&k, prefix->b, prefix->n); mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != prefix->n + 8) {
            rc = HW_ECORRUPT;
            goto out;
        }
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 64;
            legacy_entry *g = realloc(*es, nc * sizeof *g);
            if (!g) {
                rc = HW_ENOMEM;
                goto out;
            }
            *es = g;
            *cap = nc;
        }
        legacy_entry *e = &(*es)[*n];
        e->kind = kind;
        e->seq = hw_be64_get((const unsigned char *)k.mv_data + prefix->n);
        e->len = v.mv_size;
        if (!(e->bytes = malloc(v.mv_size ? v.mv_size : 1))) {
            rc = HW_ENOMEM;
            goto out;
        }
        memcpy(e->bytes, v.mv_data, v.mv_size);
        (*n)++;
        if (kind == HW_TLOG_EVENT) {
            Helpwire__V1__TicketEvent *ev = helpwire__v1__ticket_event__unpack(NULL, e->len, e->bytes);
            e->at = ev ? ev->at_unix_ms : 0;
            helpwire__v1__ticket_event__free_unpacked(ev, NULL);
        } else {
            Helpwire__V1__TicketMessage *m = helpwire__v1__ticket_message__unpack(NULL, e->len, e->bytes);
            e->at = m ? m->created_unix_ms : 0;
            helpwire__v1__ticket_message__free_unpacked(m, NULL);
        }
    }
    rc = mrc == 0 || mrc == MDB_NOTFOUND ? HW_OK : hw_store__err(w, mrc);
out:
    mdb_cursor_close(c);
    return rc;
}

/* The first key of db (a ticket id \0 prefix) into *prefix; 0 when db is empty. */
static int legacy_first(hw_store_txn *w, int db, hw_kb *prefix, int *found)
{
    MDB_cursor *c;
    int rc = hw_store__cursor(w, db, &c);
    if (rc != HW_OK)
        return rc;
    MDB_val k, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    *found = 0;
    if (mrc == 0) {
        const unsigned char *z = memchr(k.mv_data, 0, k.mv_size);
        if (!z) {
            rc = HW_ECORRUPT;
        } else {
            HW_KB_INIT(prefix);
            hw_kb_bytes(prefix, k.mv_data, (size_t)(z - (const unsigned char *)k.mv_data) + 1);
            *found = 1;
        }
    } else if (mrc != MDB_NOTFOUND) {
        rc = hw_store__err(w, mrc);
    }
    mdb_cursor_close(c);
    return rc;
}

/* Moves one ticket's legacy entries (prefix: its id \0) into the log, in
 * time order (a message before an event of the same millisecond; each
 * kind keeps its own order and sequences), and deletes them. */
static int legacy_move(hw_store_txn *w, const hw_kb *prefix, size_t *moved)
{
    legacy_entry *ev = NULL, *ms = NULL;
    size_t ne = 0, ce = 0, nm = 0, cm = 0;
    int rc = legacy_read(w, HW_DB_TICKET_EVENTS, prefix, HW_TLOG_EVENT, &ev, &ne, &ce);
    if (rc == HW_OK)
        rc = legacy_read(w, HW_DB_TICKET_MESSAGES, prefix, HW_TLOG_MESSAGE, &ms, &nm, &cm);
    uint64_t pos = 0, seq_unused;
    if (rc == HW_OK)
        rc = hw_records__log_tail(w, prefix, HW_TLOG_EVENT, &pos, &seq_unused);
    size_t i = 0, j = 0;
    while (rc == HW_OK && (i < ne || j < nm)) {
        legacy_entry *e = j < nm && (i == ne || ms[j].at <= ev[i].at) ? &ms[j++] : &ev[i++];
        unsigned char *body;
        if ((rc = hw_records__log_reserve(w, prefix, ++pos, e->kind, e->seq, e->len, &body)) == HW_OK)
            memcpy(body, e->bytes, e->len);
    }
    if (rc == HW_OK && (rc = hw_records__delete_prefix(w, HW_DB_TICKET_EVENTS, prefix)) == HW_OK)
        rc = hw_records__delete_prefix(w, HW_DB_TICKET_MESSAGES, prefix);
    *moved += ne + nm;
    for (size_t x = 0; x < ne; x++)
        free(ev[x].bytes);
    for (size_t x = 0; x < nm; x++)
        free(ms[x].bytes);
    free(ev);
    free(ms);
    return rc;
}

int hw_migrate_ticket_logs(hw_store_txn *w, size_t max_entries, int *done)
{
    size_t moved = 0;
    int rc = HW_OK;
    *done = 0;
    while (moved < max_entries) {
        hw_kb pe, pm;
        int fe, fm;
        if ((rc = legacy_first(w, HW_DB_TICKET_EVENTS, &pe, &fe)) != HW_OK ||
            (rc = legacy_first(w, HW_DB_TICKET_MESSAGES, &pm, &fm)) != HW_OK)
            return rc;
        if (!fe && !fm) {
            *done = 1;
            return HW_OK;
        }
        /* The smaller ticket first. Prefixes end with the id's \0, so two
         * different ones differ within the shorter's length. */
        const hw_kb *p = !fm                                                  ? &pe
                         : !fe                                                ? &pm
                         : memcmp(pe.b, pm.b, pe.n < pm.n ? pe.n : pm.n) <= 0 ? &pe
                                                                              : &pm;
        if ((rc = legacy_move(w, p, &moved)) != HW_OK)
            return rc;
    }
    return rc;
}

/* Whether schema 1's databases still hold entries. */
static int ticket_logs_pending(hw_store_txn *t, int *pending)
{
    uint64_t events, messages;
    int rc = hw_store__count(t, HW_DB_TICKET_EVENTS, &events);
    if (rc == HW_OK)
        rc = hw_store__count(t, HW_DB_TICKET_MESSAGES, &messages);
    *pending = rc == HW_OK && events + messages > 0;
    return rc;
}

static int ticket_logs_step(hw_store_txn *w, int *done)
{
    return hw_migrate_ticket_logs(w, TICKET_LOGS_PER_STEP, done);
}

#define LEGACY_DEFAULT_SKILL "general"

/* Whether skills exist and none is marked default (only a store written
 * before the mark existed: PutSkill keeps one marked); *pick receives the
 * skill to mark (in a): LEGACY_DEFAULT_SKILL when it exists, else the first
 * by name (the fallback such a store already used, classify.h). */
static int default_unmarked(hw_store_txn *t, hw_arena *a, Helpwire__V1__Skill **pick)
{
    *pick = NULL;
    hw_store_cursor cur = {0};
    Helpwire__V1__Skill *first = NULL, *g = NULL;
    int rc;
    do {
        Helpwire__V1__Skill **sk;
        size_t n;
        rc = hw_store_skill_list(t, &cur, HW_STORE_LIST_MAX, a, &sk, &n);
        if (rc != HW_OK)
            return rc;
        for (size_t i = 0; i < n; i++) {
            if (sk[i]->is_default)
                return HW_OK;
            if (!first)
                first = sk[i];
            if (strcmp(sk[i]->name, LEGACY_DEFAULT_SKILL) == 0)
                g = sk[i];
        }
    } while (cur.len);
    *pick = g ? g : first;
    return HW_OK;
}

static int default_skill_pending(hw_store_txn *t, int *pending)
{
    *pending = 0;
    hw_arena *a = hw_arena_create(4096);
    if (!a)
        return HW_ENOMEM;
    Helpwire__V1__Skill *g;
    int rc = default_unmarked(t, a, &g);
    *pending = rc == HW_OK && g != NULL;
    hw_arena_destroy(a);
    return rc;
}

int hw_migrate_default_skill(hw_store_txn *w, int *done)
{
    *done = 1;
    hw_arena *a = hw_arena_create(4096);
    if (!a)
        return HW_ENOMEM;
    Helpwire__V1__Skill *g;
    int rc = default_unmarked(w, a, &g);
    if (rc == HW_OK && g) {
        g->is_default = 1;
        rc = hw_store_skill_put(w, g, HW_PUT_REPLACE);
    }
    hw_arena_destroy(a);
    return rc;
}

#define AGENTS_PER_SCAN 1000u
#define MAX_CHANNEL 32u /* every Channel value is below this */

static bool is_open_status(Helpwire__V1__TicketStatus s)
{
    return s == HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_OPEN ||
           s == HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_PENDING ||
           s == HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_ESCALATED;
}

/* An agent as an older store left it: open tickets, no load by channel. */
static bool load_adds_up(const Helpwire__V1__Agent *ag)
{
    return ag->open_tickets == 0 || ag->n_channel_load > 0;
}

/* Visits every agent; with fix, recounts the channel load of those whose
 * loads do not add up. *found: whether any did not. */
static int channel_load_scan(hw_store_txn *t, bool fix, int *found)
{
    *found = 0;
    hw_arena *a = hw_arena_create(64 * 1024);
    if (!a)
        return HW_ENOMEM;
    hw_store_cursor cur = {0};
    int rc;
    do {
        Helpwire__V1__Agent **ags;
        size_t n;
        rc = hw_store_agent_list(t, NULL, HELPWIRE__V1__PRESENCE__PRESENCE_UNSPECIFIED, &cur, AGENTS_PER_SCAN,
                                 a, &ags, &n);
        for (size_t i = 0; rc == HW_OK && i < n; i++) {
            Helpwire__V1__Agent *ag = ags[i];
            if (load_adds_up(ag))
                continue;
            *found = 1;
            if (!fix)
                break;
            /* Open tickets by channel (Channel values are small). */
            uint32_t by[MAX_CHANNEL] = {0};
            hw_ticket_filter f = {.assignee_agent_id = ag->id};
            hw_store_cursor tc = {0};
            do {
                Helpwire__V1__Ticket **ts;
                size_t nt;
                rc = hw_store_ticket_list(t, &f, &tc, AGENTS_PER_SCAN, a, &ts, &nt);
                for (size_t j = 0; rc == HW_OK && j < nt; j++)
                    if (is_open_status(ts[j]->status) && (unsigned)ts[j]->channel < MAX_CHANNEL)
                        by[ts[j]->channel]++;
            } while (rc == HW_OK && tc.len);
            size_t nl = 0;
            Helpwire__V1__ChannelLoad **ls = hw_arena_alloc(a, MAX_CHANNEL * sizeof *ls);
            if (rc == HW_OK && !ls)
                rc = HW_ENOMEM;
            for (unsigned ch = 1; rc == HW_OK && ch < MAX_CHANNEL; ch++) {
                if (!by[ch])
                    continue;
                Helpwire__V1__ChannelLoad *l = hw_arena_alloc(a, sizeof *l);
                if (!l) {
                    rc = HW_ENOMEM;
                    break;
                }
                helpwire__v1__channel_load__init(l);
                l->channel = (Helpwire__V1__Channel)ch;
                l->open_tickets = by[ch];
                ls[nl++] = l;
            }
            if (rc == HW_OK) {
                ag->channel_load = ls;
                ag->n_channel_load = nl;
                rc = hw_store_agent_put(t, ag, HW_PUT_REPLACE, 0);
            }
        }
    } while (rc == HW_OK && cur.len && !(*found && !fix));
    hw_arena_destroy(a);
    return rc;
}

static int channel_load_pending(hw_store_txn *t, int *pending)
{
    return channel_load_scan(t, false, pending);
}

int hw_migrate_channel_load(hw_store_txn *w, int *done)
{
    int found;
    *done = 1;
    return channel_load_scan(w, true, &found);
}

/* The upgrades, oldest first. */
static const hw_store_upgrade HW_UPGRADES[] = {
    {.what = "moving ticket histories",
     .to_version = 2,
     .pending = ticket_logs_pending,
     .step = ticket_logs_step},
    {.what = "marking the default skill",
     .to_version = 2,
     .pending = default_skill_pending,
     .step = hw_migrate_default_skill},
    {.what = "counting agents' load per channel",
     .to_version = 2,
     .pending = channel_load_pending,
     .step = hw_migrate_channel_load},
};

const hw_store_upgrade *hw_migrate_upgrades(size_t *n)
{
    *n = sizeof HW_UPGRADES / sizeof HW_UPGRADES[0];
    return HW_UPGRADES;
}
