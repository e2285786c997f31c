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
 * no skill is marked and "general" exists, the step marks it, so such a
 * store keeps sending unmatched text where it did. Found by content, so it
 * runs at every open where nothing is marked and "general" exists (a
 * store whose admin removed the mark, with "general" present, gets it
 * back at the next open: docs/operations.md says so).
 *
 * Direction: this file uses the engine's internal API (store_internal.h)
 * and the record layouts (records_internal.h); the engine reaches it only
 * through the hw_store_upgrade table handed to it at open, never by name.
 */
#include "server/store/migrate.h"

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

/* Whether no skill is marked default while LEGACY_DEFAULT_SKILL exists;
 * *general receives that skill (in a) when so. */
static int default_unmarked(hw_store_txn *t, hw_arena *a, Helpwire__V1__Skill **general)
{
    *general = NULL;
    hw_store_cursor cur = {0};
    Helpwire__V1__Skill **sk;
    size_t n;
    int rc = hw_store_skill_list(t, &cur, HW_STORE_LIST_MAX, a, &sk, &n);
    if (rc != HW_OK)
        return rc;
    Helpwire__V1__Skill *g = NULL;
    for (size_t i = 0; i < n; i++) {
        if (sk[i]->is_default)
            return HW_OK;
        if (strcmp(sk[i]->name, LEGACY_DEFAULT_SKILL) == 0)
            g = sk[i];
    }
    *general = g;
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
};

const hw_store_upgrade *hw_migrate_upgrades(size_t *n)
{
    *n = sizeof HW_UPGRADES / sizeof HW_UPGRADES[0];
    return HW_UPGRADES;
}
