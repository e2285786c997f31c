/*
 * records: record kinds and secondary indexes over the store engine
 * (contract: records.h).
 *
 * The versioned, id-keyed kinds (customers, agents, skills, tickets,
 * articles, FAQs) are rows of one table (HW_KINDS): a protobuf descriptor,
 * the primary database, how to read the id and version, and a function
 * listing the record's index keys. One generic put/get/delete then serves
 * them all: a put unpacks the old record, computes old and new index keys,
 * checks new unique keys before touching anything, deletes the stale keys,
 * adds the new ones and stores the record, all in the caller's (nested)
 * transaction. Surveys and tokens carry a hash beside the API message and
 * are wrapped in storage records; per-ticket logs (events, messages), the
 * outbox, dedupe and idempotency keys have layouts of their own below.
 *
 * Listings are range scans (hw_records__scan()) over an index prefix,
 * forwards or backwards, resumable from a key-based cursor.
 *
 * The kind tables, key building, scans and the ticket log's layout are
 * shared through records_internal.h with the two modules built on them:
 * check.c (the consistency check) and migrate.c (schema upgrades). This
 * file calls neither; it calls only the engine (store_internal.h).
 */
#include "server/store/records.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpwire/store/v1/records.pb-c.h"
#include "server/store/records_internal.h"

#define HW_MAX_INDEX_KEYS 512u
#define HW_HASH_MAX 64u

/* ------------------------------------------------------------------------
 * Key building
 * ---------------------------------------------------------------------- */

static int id_ok(const char *id)
{
    if (!id)
        return 0;
    size_t n = strlen(id);
    return n > 0 && n <= HW_STORE_ID_MAX;
}

static void ik_push(hw_ikeys *ks, int db, int unique, const hw_kb *k)
{
    if (ks->err)
        return;
    if (k->overflow || k->n == 0) {
        ks->err = HW_EINVALID;
        return;
    }
    if (ks->n == HW_MAX_INDEX_KEYS) {
        ks->err = HW_EINVALID;
        return;
    }
    if (ks->n == ks->cap) {
        size_t cap = ks->cap ? ks->cap * 2 : 16;
        hw_ikey *k2 = hw_arena_alloc(ks->a, cap * sizeof(hw_ikey));
        if (!k2) {
            ks->err = HW_ENOMEM;
            return;
        }
        if (ks->n)
            memcpy(k2, ks->k, ks->n * sizeof(hw_ikey));
        ks->k = k2;
        ks->cap = cap;
    }
    for (size_t i = 0; i < ks->n; i++) /* e.g. a skill listed twice */
        if (ks->k[i].db == db && ks->k[i].len == k->n && memcmp(ks->k[i].data, k->b, k->n) == 0)
            return;
    unsigned char *d = hw_arena_alloc(ks->a, k->n);
    if (!d) {
        ks->err = HW_ENOMEM;
        return;
    }
    memcpy(d, k->b, k->n);
    ks->k[ks->n++] = (hw_ikey){.db = db, .unique = unique, .len = k->n, .data = d};
}

static int ik_contains(const hw_ikeys *ks, const hw_ikey *x)
{
    for (size_t i = 0; i < ks->n; i++)
        if (ks->k[i].db == x->db && ks->k[i].len == x->len && memcmp(ks->k[i].data, x->data, x->len) == 0)
            return 1;
    return 0;
}

/* ------------------------------------------------------------------------
 * The kind table
 * ---------------------------------------------------------------------- */

#define AS(type, m) ((const type *)(m))

static const char *customer_id(const ProtobufCMessage *m)
{
    return AS(Helpwire__V1__Customer, m)->id;
}
static uint64_t customer_version(const ProtobufCMessage *m)
{
    return AS(Helpwire__V1__Customer, m)->version;
}
static void customer_keys(const ProtobufCMessage *m, hw_ikeys *out)
{
    const Helpwire__V1__Customer *c = AS(Helpwire__V1__Customer, m);
    for (size_t i = 0; i < c->n_identities; i++) {
        const Helpwire__V1__Identity *id = c->identities[i];
        if (!id || !id->channel_user_id || !*id->channel_user_id) {
            out->err = HW_EINVALID;
            return;
        }
        hw_kb k;
        HW_KB_INIT(&k);
        hw_kb_u8(&k, (unsigned)id->channel);
        hw_kb_str(&k, id->channel_user_id);
        ik_push(out, HW_DB_IDENTITIES, 1, &k);
    }
}

static const char *agent_id(const ProtobufCMessage *m)
{
    return AS(Helpwire__V1__Agent, m)->id;
}
static uint64_t agent_version(const ProtobufCMessage *m)
{
    return AS(Helpwire__V1__Agent, m)->version;
}
static void agent_keys(const ProtobufCMessage *m, hw_ikeys *out)
{
    const Helpwire__V1__Agent *ag = AS(Helpwire__V1__Agent, m);
    for (size_t i = 0; i < ag->n_skills; i++) {
        if (!ag->skills[i] || !*ag->skills[i]) {
            out->err = HW_EINVALID;
            return;
        }
        hw_kb k;
        HW_KB_INIT(&k);
        hw_kb_str0(&k, ag->skills[i]);
        hw_kb_str(&k, ag->id);
        ik_push(out, HW_DB_AGENTS_BY_SKILL, 0, &k);
    }
}

static const char *skill_id(const ProtobufCMessage *m)
{
    return AS(Helpwire__V1__Skill, m)->name;
}

static const char *ticket_id(const ProtobufCMessage *m)
{
    return AS(Helpwire__V1__Ticket, m)->id;
}
static uint64_t ticket_version(const ProtobufCMessage *m)
{
    return AS(Helpwire__V1__Ticket, m)->version;
}
static int ticket_check(const ProtobufCMessage *m)
{
    return AS(Helpwire__V1__Ticket, m)->number != 0 ? HW_OK : HW_EINVALID;
}
static void ticket_keys(const ProtobufCMessage *m, hw_ikeys *out)
{
    const Helpwire__V1__Ticket *t = AS(Helpwire__V1__Ticket, m);
    hw_kb k;
    HW_KB_INIT(&k);
    hw_kb_be64(&k, t->number);
    ik_push(out, HW_DB_TICKETS_BY_NUMBER, 1, &k);
    HW_KB_INIT(&k);
    hw_kb_u8(&k, (unsigned)t->status);
    hw_kb_be64(&k, t->number);
    ik_push(out, HW_DB_TICKETS_BY_STATUS, 0, &k);
    HW_KB_INIT(&k);
    hw_kb_str0(&k, t->queue);
    hw_kb_be64(&k, t->number);
    ik_push(out, HW_DB_TICKETS_BY_QUEUE, 0, &k);
    HW_KB_INIT(&k);
    hw_kb_str0(&k, t->queue);
    hw_kb_u8(&k, (unsigned)t->status);
    hw_kb_be64(&k, t->number);
    ik_push(out, HW_DB_TICKETS_BY_QUEUE_STATUS, 0, &k);
    HW_KB_INIT(&k);
    hw_kb_str0(&k, t->assignee_agent_id);
    hw_kb_be64(&k, t->number);
    ik_push(out, HW_DB_TICKETS_BY_ASSIGNEE, 0, &k);
    HW_KB_INIT(&k);
    hw_kb_str0(&k, t->customer_id);
    hw_kb_be64(&k, t->number);
    ik_push(out, HW_DB_TICKETS_BY_CUSTOMER, 0, &k);
    HW_KB_INIT(&k);
    hw_kb_u8(&k, (unsigned)t->priority);
    hw_kb_be64(&k, t->number);
    ik_push(out, HW_DB_TICKETS_BY_PRIORITY, 0, &k);
}

static const char *article_id(const ProtobufCMessage *m)
{
    return AS(Helpwire__V1__Article, m)->id;
}
static uint64_t article_version(const ProtobufCMessage *m)
{
    return AS(Helpwire__V1__Article, m)->version;
}
static void article_keys(const ProtobufCMessage *m, hw_ikeys *out)
{
    const Helpwire__V1__Article *ar = AS(Helpwire__V1__Article, m);
    hw_kb k;
    HW_KB_INIT(&k);
    hw_kb_str0(&k, ar->locale);
    hw_kb_str(&k, ar->id);
    ik_push(out, HW_DB_ARTICLES_BY_LOCALE, 0, &k);
}

static const char *faq_id(const ProtobufCMessage *m)
{
    return AS(Helpwire__V1__Faq, m)->id;
}
static uint64_t faq_version(const ProtobufCMessage *m)
{
    return AS(Helpwire__V1__Faq, m)->version;
}
static void faq_keys(const ProtobufCMessage *m, hw_ikeys *out)
{
    const Helpwire__V1__Faq *fq = AS(Helpwire__V1__Faq, m);
    hw_kb k;
    HW_KB_INIT(&k);
    hw_kb_str0(&k, fq->locale);
    hw_kb_str(&k, fq->id);
    ik_push(out, HW_DB_FAQS_BY_LOCALE, 0, &k);
}

static const char *sla_policy_id(const ProtobufCMessage *m)
{
    return AS(Helpwire__V1__SlaPolicy, m)->name;
}
static uint64_t sla_policy_version(const ProtobufCMessage *m)
{
    return AS(Helpwire__V1__SlaPolicy, m)->version;
}

enum { K_CUSTOMER, K_AGENT, K_SKILL, K_TICKET, K_ARTICLE, K_FAQ, K_SLA_POLICY, K_COUNT };
_Static_assert(K_COUNT == HW_KIND_COUNT, "records_internal.h counts the kinds");

const hw_kind HW_KINDS[HW_KIND_COUNT] = {
    [K_CUSTOMER] = {"customer", HW_DB_CUSTOMERS, &helpwire__v1__customer__descriptor, customer_id,
                    customer_version, customer_keys, NULL},
    [K_AGENT] = {"agent", HW_DB_AGENTS, &helpwire__v1__agent__descriptor, agent_id, agent_version, agent_keys,
                 NULL},
    [K_SKILL] = {"skill", HW_DB_SKILLS, &helpwire__v1__skill__descriptor, skill_id, NULL, NULL, NULL},
    [K_TICKET] = {"ticket", HW_DB_TICKETS, &helpwire__v1__ticket__descriptor, ticket_id, ticket_version,
                  ticket_keys, ticket_check},
    [K_ARTICLE] = {"article", HW_DB_ARTICLES, &helpwire__v1__article__descriptor, article_id, article_version,
                   article_keys, NULL},
    [K_FAQ] = {"faq", HW_DB_FAQS, &helpwire__v1__faq__descriptor, faq_id, faq_version, faq_keys, NULL},
    [K_SLA_POLICY] = {"sla policy", HW_DB_SLA_POLICIES, &helpwire__v1__sla_policy__descriptor, sla_policy_id,
                      sla_policy_version, NULL, NULL},
};

/* ------------------------------------------------------------------------
 * Generic record operations
 * ---------------------------------------------------------------------- */

int hw_records__unpack(const ProtobufCMessageDescriptor *d, hw_arena *a, const MDB_val *v,
                       ProtobufCMessage **out)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(d, hw_arena_allocator(a), v->mv_size, v->mv_data);
    if (!m)
        return HW_ECORRUPT;
    *out = m;
    return HW_OK;
}

static int get_raw(hw_store_txn *t, int db, const char *id, MDB_val *v)
{
    if (!id_ok(id))
        return HW_EINVALID;
    return hw_store__get(t, db, id, strlen(id), v);
}

/* A record as read: a ticket gets the fields its head holds newer
 * (ticket_wal.c). */
static int as_read(hw_store_txn *t, ProtobufCMessage *m)
{
    if (m->descriptor != &helpwire__v1__ticket__descriptor)
        return HW_OK;
    return hw_twal_ticket_overlay(t, (Helpwire__V1__Ticket *)m);
}

static int kind_get(hw_store_txn *t, const hw_kind *k, const char *id, hw_arena *a, void *out)
{
    if (!a || !out)
        return HW_EINVALID;
    MDB_val v;
    int rc = get_raw(t, k->db, id, &v);
    if (rc != HW_OK)
        return rc;
    if ((rc = hw_records__unpack(k->desc, a, &v, (ProtobufCMessage **)out)) != HW_OK)
        return rc;
    return as_read(t, *(ProtobufCMessage **)out);
}

int hw_ikeys_init(hw_ikeys *ks, hw_arena *a)
{
    *ks = (hw_ikeys){.a = a};
    return HW_OK;
}

/* Checks that every unique key of add[] not in keep[] is free or ours. */
static int check_unique(hw_store_txn *w, const hw_ikeys *add, const hw_ikeys *keep, const char *id)
{
    size_t idl = strlen(id);
    for (size_t i = 0; i < add->n; i++) {
        const hw_ikey *k = &add->k[i];
        if (!k->unique || (keep && ik_contains(keep, k)))
            continue;
        MDB_val v;
        int rc = hw_store__get(w, k->db, k->data, k->len, &v);
        if (rc == HW_ENOTFOUND)
            continue;
        if (rc != HW_OK)
            return rc;
        if (v.mv_size != idl || memcmp(v.mv_data, id, idl) != 0)
            return HW_EEXISTS;
    }
    return HW_OK;
}

/* Replaces the index entries old[] by new[] (either may be NULL). */
static int apply_keys(hw_store_txn *w, const hw_ikeys *old, const hw_ikeys *new, const char *id)
{
    int rc;
    if (old)
        for (size_t i = 0; i < old->n; i++) {
            if (new &&ik_contains(new, &old->k[i]))
                continue;
            rc = hw_store__del(w, old->k[i].db, old->k[i].data, old->k[i].len);
            if (rc != HW_OK && rc != HW_ENOTFOUND)
                return rc;
        }
    if (new)
        for (size_t i = 0; i < new->n; i++) {
            if (old && ik_contains(old, &new->k[i]))
                continue;
            rc = hw_store__put(w, new->k[i].db, new->k[i].data, new->k[i].len, id, strlen(id), 0);
            if (rc != HW_OK)
                return rc;
        }
    return HW_OK;
}

static int mode_check(int exists, int mode, uint64_t expected_version, uint64_t stored_version)
{
    if (mode == HW_PUT_CREATE && exists)
        return HW_EEXISTS;
    if (mode == HW_PUT_REPLACE && !exists)
        return HW_ENOTFOUND;
    if (expected_version != 0) {
        if (!exists)
            return HW_ENOTFOUND;
        if (stored_version != expected_version)
            return HW_ECONFLICT;
    }
    return HW_OK;
}

static int kind_put(hw_store_txn *w, const hw_kind *k, const ProtobufCMessage *m, int mode,
                    uint64_t expected_version)
{
    if (!w->writable || !m || m->descriptor != k->desc || mode < 0 || mode > HW_PUT_REPLACE)
        return HW_EINVALID;
    const char *id = k->id(m);
    if (!id_ok(id))
        return HW_EINVALID;
    if (k->check && k->check(m) != HW_OK)
        return HW_EINVALID;
    hw_arena *a = w->arena;
    ProtobufCMessage *old = NULL;
    MDB_val v;
    int rc = get_raw(w, k->db, id, &v);
    if (rc == HW_OK && (rc = hw_records__unpack(k->desc, a, &v, &old)) == HW_OK)
        rc = as_read(w, old);
    else if (rc == HW_ENOTFOUND)
        rc = HW_OK;
    if (rc != HW_OK)
        return rc;
    rc = mode_check(old != NULL, mode, expected_version, old && k->version ? k->version(old) : 0);
    if (rc != HW_OK)
        return rc;
    if (k->keys) {
        hw_ikeys oldk, newk;
        if ((rc = hw_ikeys_init(&oldk, a)) != HW_OK || (rc = hw_ikeys_init(&newk, a)) != HW_OK)
            return rc;
        if (old)
            k->keys(old, &oldk);
        k->keys(m, &newk);
        if (oldk.err || newk.err)
            return newk.err ? newk.err : oldk.err;
        if ((rc = check_unique(w, &newk, &oldk, id)) != HW_OK)
            return rc;
        if ((rc = apply_keys(w, &oldk, &newk, id)) != HW_OK)
            return rc;
    }
    if ((rc = hw_store__put_msg(w, k->db, id, strlen(id), m, 0)) != HW_OK)
        return rc;
    return m->descriptor == &helpwire__v1__ticket__descriptor ? hw_twal_ticket_stored(w, id) : HW_OK;
}

static int kind_delete(hw_store_txn *w, const hw_kind *k, const char *id)
{
    if (!w->writable)
        return HW_EINVALID;
    MDB_val v;
    int rc = get_raw(w, k->db, id, &v);
    if (rc != HW_OK)
        return rc;
    if (k->keys) {
        ProtobufCMessage *old;
        hw_ikeys oldk;
        if ((rc = hw_records__unpack(k->desc, w->arena, &v, &old)) != HW_OK)
            return rc;
        if ((rc = hw_ikeys_init(&oldk, w->arena)) != HW_OK)
            return rc;
        k->keys(old, &oldk);
        if (oldk.err)
            return oldk.err;
        if ((rc = apply_keys(w, &oldk, NULL, id)) != HW_OK)
            return rc;
    }
    return hw_store__del(w, k->db, id, strlen(id));
}

/* ------------------------------------------------------------------------
 * Range scans and cursors
 * ---------------------------------------------------------------------- */

/* Positions c on the first key after key (the key itself skipped when
 * present); returns the LMDB code. */
static int seek_after(MDB_cursor *c, const void *key, size_t len, MDB_val *k, MDB_val *v)
{
    *k = (MDB_val){.mv_size = len, .mv_data = (void *)key};
    int mrc = mdb_cursor_get(c, k, v, MDB_SET_RANGE);
    if (mrc == 0 && k->mv_size == len && memcmp(k->mv_data, key, len) == 0)
        mrc = mdb_cursor_get(c, k, v, MDB_NEXT);
    return mrc;
}

/* Positions c on the last key before key; returns the LMDB code. */
static int seek_before(MDB_cursor *c, const void *key, size_t len, MDB_val *k, MDB_val *v)
{
    *k = (MDB_val){.mv_size = len, .mv_data = (void *)key};
    int mrc = mdb_cursor_get(c, k, v, MDB_SET_RANGE);
    return mrc == MDB_NOTFOUND ? mdb_cursor_get(c, k, v, MDB_LAST)
           : mrc == 0          ? mdb_cursor_get(c, k, v, MDB_PREV)
                               : mrc;
}

/* Positions c on the last key starting with prefix, or before it when
 * none does (the caller checks the prefix); returns the LMDB code. */
static int seek_prefix_last(MDB_cursor *c, const unsigned char *prefix, size_t pl, MDB_val *k, MDB_val *v)
{
    /* Just above every key with the prefix: prefix + 0xff... */
    unsigned char upper[511];
    size_t ul = pl + 9 <= sizeof(upper) ? pl + 9 : sizeof(upper);
    memcpy(upper, prefix, pl);
    memset(upper + pl, 0xff, ul - pl);
    return seek_before(c, upper, ul, k, v);
}

/* Scans db over keys starting with prefix, ascending or (reverse)
 * descending, resuming after cursor when it is set. limit 0: no limit and
 * no cursor. Cursor bytes: the db number, then the last key visited. */
int hw_records__scan(hw_store_txn *t, int db, const unsigned char *prefix, size_t pl, int reverse,
                     hw_store_cursor *cur, size_t limit, hw_records_visit_fn fn, void *arg)
{
    MDB_cursor *c = NULL;
    MDB_val k, v;
    int rc, mrc;
    int resume = cur && limit && cur->len > 0;
    if (resume) {
        if (cur->len < 2 || cur->key[0] != (unsigned char)db)
            return HW_EINVALID;
        MDB_val ck = {.mv_size = cur->len - 1, .mv_data = cur->key + 1};
        if (!hw_has_prefix(&ck, prefix, pl))
            return HW_EINVALID;
    }
    if ((rc = hw_store__cursor(t, db, &c)) != HW_OK)
        return rc;
    if (resume) {
        mrc = reverse ? seek_before(c, cur->key + 1, cur->len - 1, &k, &v)
                      : seek_after(c, cur->key + 1, cur->len - 1, &k, &v);
    } else if (!reverse) {
        k = (MDB_val){.mv_size = pl, .mv_data = (void *)prefix};
        mrc = pl ? mdb_cursor_get(c, &k, &v, MDB_SET_RANGE) : mdb_cursor_get(c, &k, &v, MDB_FIRST);
    } else if (pl == 0) {
        mrc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    } else {
        mrc = seek_prefix_last(c, prefix, pl, &k, &v);
    }
    MDB_cursor_op step = reverse ? MDB_PREV : MDB_NEXT;
    size_t taken = 0;
    if (cur && limit)
        cur->len = 0;
    while (mrc == 0 && hw_has_prefix(&k, prefix, pl)) {
        rc = fn(t, arg, &k, &v);
        if (rc == HW_STOP) { /* the visitor is done: not an error */
            rc = HW_OK;
            goto out;
        }
        if (rc < 0)
            goto out;
        taken += (size_t)rc;
        if (limit && taken == limit) {
            if (k.mv_size + 1 > sizeof(cur->key)) {
                rc = HW_EINVALID;
                goto out;
            }
            MDB_val last = k;
            mrc = mdb_cursor_get(c, &k, &v, step);
            if (mrc == 0 && hw_has_prefix(&k, prefix, pl)) {
                cur->key[0] = (unsigned char)db;
                memcpy(cur->key + 1, last.mv_data, last.mv_size);
                cur->len = last.mv_size + 1;
            }
            mrc = MDB_NOTFOUND;
            break;
        }
        mrc = mdb_cursor_get(c, &k, &v, step);
    }
    rc = mrc == 0 || mrc == MDB_NOTFOUND ? HW_OK : hw_store__err(t, mrc);
out:
    mdb_cursor_close(c);
    return rc;
}

int hw_store_cursor_encode(const hw_store_cursor *c, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    if (!c || !out || c->len > HW_STORE_CURSOR_MAX || outlen < 2 * c->len + 1)
        return HW_EINVALID;
    for (size_t i = 0; i < c->len; i++) {
        out[2 * i] = hex[c->key[i] >> 4];
        out[2 * i + 1] = hex[c->key[i] & 15];
    }
    out[2 * c->len] = '\0';
    return HW_OK;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

int hw_store_cursor_decode(const char *token, hw_store_cursor *c)
{
    if (!token || !c)
        return HW_EINVALID;
    size_t n = strlen(token);
    if (n % 2 != 0 || n / 2 > HW_STORE_CURSOR_MAX)
        return HW_EINVALID;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(token[2 * i]), lo = hexval(token[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return HW_EINVALID;
        c->key[i] = (unsigned char)(hi << 4 | lo);
    }
    c->len = n / 2;
    return HW_OK;
}

/* Collects records into an arena array. */
typedef struct collect {
    const hw_kind *kind;
    const ProtobufCMessageDescriptor *desc;
    hw_arena *a;
    void **items;
    size_t n, cap;
    int via_index; /* the value is an id in kind->db, not the record */
    int log_kind;  /* nonzero: a ticket log entry; other kinds are skipped */
    int (*keep)(const void *rec, const void *filter);
    const void *filter;
    /* foreach mode */
    int (*each)(void *arg, const void *rec);
    void *each_arg;
    int each_rc;
} collect;

static int collect_visit(hw_store_txn *t, void *arg, const MDB_val *k, const MDB_val *v)
{
    collect *cl = arg;
    MDB_val rec = *v;
    int rc;
    if (cl->log_kind) {
        if (v->mv_size < HW_TLOG_HDR)
            return HW_ECORRUPT;
        if (((const unsigned char *)v->mv_data)[0] != cl->log_kind)
            return 0;
        rec.mv_data = (unsigned char *)v->mv_data + HW_TLOG_HDR;
        rec.mv_size -= HW_TLOG_HDR;
    }
    if (cl->via_index) {
        if (v->mv_size == 0 || v->mv_size > HW_STORE_ID_MAX)
            return HW_ECORRUPT;
        rc = hw_store__get(t, cl->kind->db, v->mv_data, v->mv_size, &rec);
        if (rc == HW_ENOTFOUND)
            return HW_ECORRUPT; /* an index entry without its record */
        if (rc != HW_OK)
            return rc;
    }
    ProtobufCMessage *m;
    if ((rc = hw_records__unpack(cl->desc, cl->a, &rec, &m)) != HW_OK)
        return rc;
    if ((rc = as_read(t, m)) != HW_OK)
        return rc;
    if (cl->keep && !cl->keep(m, cl->filter))
        return 0;
    if (cl->each) {
        rc = cl->each(cl->each_arg, m);
        hw_arena_reset(cl->a);
        if (rc == HW_STOP)
            return HW_STOP;
        if (rc != 0) {
            cl->each_rc = rc; /* returned by foreach_run */
            return HW_STOP;
        }
        return 1;
    }
    cl->items[cl->n++] = m;
    return 1;
}

static int list_run(hw_store_txn *t, collect *cl, int db, const hw_kb *prefix, int reverse,
                    hw_store_cursor *cursor, size_t limit, void *out, size_t *n)
{
    if (!cl->a || !out || !n || !cursor || limit == 0 || limit > HW_STORE_LIST_MAX)
        return HW_EINVALID;
    if (prefix->overflow)
        return HW_EINVALID;
    cl->items = hw_arena_alloc(cl->a, limit * sizeof(void *));
    if (!cl->items)
        return HW_ENOMEM;
    cl->cap = limit;
    cl->n = 0;
    int rc = hw_records__scan(t, db, prefix->b, prefix->n, reverse, cursor, limit, collect_visit, cl);
    if (rc != HW_OK)
        return rc;
    *(void ***)out = cl->items;
    *n = cl->n;
    return HW_OK;
}

/* One page of every record of kind k, in id order (its primary database). */
static int kind_list(hw_store_txn *t, const hw_kind *k, hw_store_cursor *cursor, size_t limit, hw_arena *a,
                     void *out, size_t *n)
{
    collect cl = {.kind = k, .desc = k->desc, .a = a};
    hw_kb p;
    HW_KB_INIT(&p);
    return list_run(t, &cl, k->db, &p, 0, cursor, limit, out, n);
}

static int foreach_run(hw_store_txn *t, collect *cl, int db, const hw_kb *prefix)
{
    if (!cl->a || !cl->each)
        return HW_EINVALID;
    int rc = hw_records__scan(t, db, prefix->b, prefix->n, 0, NULL, 0, collect_visit, cl);
    return cl->each_rc ? cl->each_rc : rc;
}

/* ------------------------------------------------------------------------
 * Customers
 * ---------------------------------------------------------------------- */

int hw_store_customer_put(hw_store_txn *w, const Helpwire__V1__Customer *c, int mode,
                          uint64_t expected_version)
{
    return kind_put(w, &HW_KINDS[K_CUSTOMER], &c->base, mode, expected_version);
}

int hw_store_customer_get(hw_store_txn *t, const char *id, hw_arena *a, Helpwire__V1__Customer **out)
{
    return kind_get(t, &HW_KINDS[K_CUSTOMER], id, a, out);
}

int hw_store_customer_lookup(hw_store_txn *t, Helpwire__V1__Channel channel, const char *channel_user_id,
                             hw_arena *a, Helpwire__V1__Customer **out)
{
    if (!channel_user_id || !*channel_user_id || !a || !out)
        return HW_EINVALID;
    hw_kb k;
    HW_KB_INIT(&k);
    hw_kb_u8(&k, (unsigned)channel);
    hw_kb_str(&k, channel_user_id);
    if (k.overflow)
        return HW_EINVALID;
    MDB_val v;
    int rc = hw_store__get(t, HW_DB_IDENTITIES, k.b, k.n, &v);
    if (rc != HW_OK)
        return rc;
    if (v.mv_size == 0 || v.mv_size > HW_STORE_ID_MAX)
        return HW_ECORRUPT;
    MDB_val rec;
    rc = hw_store__get(t, HW_DB_CUSTOMERS, v.mv_data, v.mv_size, &rec);
    if (rc == HW_ENOTFOUND)
        return HW_ECORRUPT;
    if (rc != HW_OK)
        return rc;
    return hw_records__unpack(&helpwire__v1__customer__descriptor, a, &rec, (ProtobufCMessage **)out);
}

int hw_store_customer_delete(hw_store_txn *w, const char *id)
{
    return kind_delete(w, &HW_KINDS[K_CUSTOMER], id);
}

/* ------------------------------------------------------------------------
 * Agents and skills
 * ---------------------------------------------------------------------- */

int hw_store_agent_put(hw_store_txn *w, const Helpwire__V1__Agent *ag, int mode, uint64_t expected_version)
{
    return kind_put(w, &HW_KINDS[K_AGENT], &ag->base, mode, expected_version);
}

int hw_store_agent_get(hw_store_txn *t, const char *id, hw_arena *a, Helpwire__V1__Agent **out)
{
    return kind_get(t, &HW_KINDS[K_AGENT], id, a, out);
}

int hw_store_agent_delete(hw_store_txn *w, const char *id)
{
    return kind_delete(w, &HW_KINDS[K_AGENT], id);
}

static int agent_keep(const void *rec, const void *filter)
{
    Helpwire__V1__Presence p = *(const Helpwire__V1__Presence *)filter;
    return p == 0 || ((const Helpwire__V1__Agent *)rec)->presence == p;
}

int hw_store_agent_list(hw_store_txn *t, const char *skill, Helpwire__V1__Presence presence,
                        hw_store_cursor *cursor, size_t limit, hw_arena *a, Helpwire__V1__Agent ***out,
                        size_t *n)
{
    collect cl = {.kind = &HW_KINDS[K_AGENT],
                  .desc = HW_KINDS[K_AGENT].desc,
                  .a = a,
                  .keep = agent_keep,
                  .filter = &presence};
    hw_kb p;
    HW_KB_INIT(&p);
    int db = HW_DB_AGENTS;
    if (skill && *skill) {
        hw_kb_str0(&p, skill);
        db = HW_DB_AGENTS_BY_SKILL;
        cl.via_index = 1;
    }
    return list_run(t, &cl, db, &p, 0, cursor, limit, out, n);
}

int hw_store_skill_put(hw_store_txn *w, const Helpwire__V1__Skill *sk, int mode)
{
    return kind_put(w, &HW_KINDS[K_SKILL], &sk->base, mode, 0);
}

int hw_store_skill_get(hw_store_txn *t, const char *name, hw_arena *a, Helpwire__V1__Skill **out)
{
    return kind_get(t, &HW_KINDS[K_SKILL], name, a, out);
}

int hw_store_skill_delete(hw_store_txn *w, const char *name)
{
    return kind_delete(w, &HW_KINDS[K_SKILL], name);
}

int hw_store_skill_list(hw_store_txn *t, hw_store_cursor *cursor, size_t limit, hw_arena *a,
                        Helpwire__V1__Skill ***out, size_t *n)
{
    return kind_list(t, &HW_KINDS[K_SKILL], cursor, limit, a, out, n);
}

/* ------------------------------------------------------------------------
 * SLA policies
 * ---------------------------------------------------------------------- */

int hw_store_sla_policy_put(hw_store_txn *w, const Helpwire__V1__SlaPolicy *p, int mode,
                            uint64_t expected_version)
{
    return kind_put(w, &HW_KINDS[K_SLA_POLICY], &p->base, mode, expected_version);
}

int hw_store_sla_policy_get(hw_store_txn *t, const char *name, hw_arena *a, Helpwire__V1__SlaPolicy **out)
{
    return kind_get(t, &HW_KINDS[K_SLA_POLICY], name, a, out);
}

int hw_store_sla_policy_delete(hw_store_txn *w, const char *name)
{
    return kind_delete(w, &HW_KINDS[K_SLA_POLICY], name);
}

int hw_store_sla_policy_list(hw_store_txn *t, hw_store_cursor *cursor, size_t limit, hw_arena *a,
                             Helpwire__V1__SlaPolicy ***out, size_t *n)
{
    return kind_list(t, &HW_KINDS[K_SLA_POLICY], cursor, limit, a, out, n);
}

/* ------------------------------------------------------------------------
 * Tickets
 * ---------------------------------------------------------------------- */

/* Whether tk differs from the stored record r (packed: rv) only in the
 * fields an append changes (version, message count, update time). */
static bool only_append_fields(const Helpwire__V1__Ticket *tk, const Helpwire__V1__Ticket *r, const MDB_val *rv,
                               hw_arena *a)
{
    Helpwire__V1__Ticket c = *tk;
    c.version = r->version;
    c.message_count = r->message_count;
    c.updated_unix_ms = r->updated_unix_ms;
    size_t n = protobuf_c_message_get_packed_size(&c.base);
    if (n != rv->mv_size)
        return false;
    unsigned char *b = hw_arena_alloc(a, n ? n : 1);
    return b && protobuf_c_message_pack(&c.base, b) == n && memcmp(b, rv->mv_data, n) == 0;
}

int hw_store_ticket_put(hw_store_txn *w, const Helpwire__V1__Ticket *tk, int mode, uint64_t expected_version)
{
    /* A replace that changes only what an append changes goes to the
     * ticket's head (ticket_wal.c): the record's page stays clean. */
    bool head = false;
    if (w && w->writable && tk && mode == HW_PUT_REPLACE && expected_version == 0 && id_ok(tk->id) &&
        tk->base.descriptor == &helpwire__v1__ticket__descriptor) {
        /* Only a ticket with a head can take the fields there: others
         * (most puts that are not appends) skip the comparison. */
        int rc = hw_twal_has_head(w, tk->id, &head);
        if (rc != HW_OK)
            return rc;
        MDB_val v;
        ProtobufCMessage *r;
        if (head && (rc = get_raw(w, HW_DB_TICKETS, tk->id, &v)) == HW_OK &&
            (rc = hw_records__unpack(&helpwire__v1__ticket__descriptor, w->arena, &v, &r)) == HW_OK &&
            only_append_fields(tk, (Helpwire__V1__Ticket *)r, &v, w->arena)) {
            bool done;
            if ((rc = hw_twal_ticket_touch(w, tk, &done)) != HW_OK || done)
                return rc;
        } else if (rc != HW_OK && rc != HW_ENOTFOUND) {
            return rc;
        }
    }
    return kind_put(w, &HW_KINDS[K_TICKET], &tk->base, mode, expected_version);
}

int hw_store_ticket_get(hw_store_txn *t, const char *id, hw_arena *a, Helpwire__V1__Ticket **out)
{
    return kind_get(t, &HW_KINDS[K_TICKET], id, a, out);
}

int hw_store_ticket_get_by_number(hw_store_txn *t, uint64_t number, hw_arena *a, Helpwire__V1__Ticket **out)
{
    if (!a || !out || number == 0)
        return HW_EINVALID;
    unsigned char k[8];
    hw_be64_put(k, number);
    MDB_val v, rec;
    int rc = hw_store__get(t, HW_DB_TICKETS_BY_NUMBER, k, 8, &v);
    if (rc != HW_OK)
        return rc;
    rc = hw_store__get(t, HW_DB_TICKETS, v.mv_data, v.mv_size, &rec);
    if (rc == HW_ENOTFOUND)
        return HW_ECORRUPT;
    if (rc != HW_OK)
        return rc;
    if ((rc = hw_records__unpack(&helpwire__v1__ticket__descriptor, a, &rec, (ProtobufCMessage **)out)) != HW_OK)
        return rc;
    return hw_twal_ticket_overlay(t, *out);
}

/* The ticket at the first number >= number (op MDB_SET_RANGE), or after
 * the cursor's position (op MDB_NEXT), cursor c on the number index:
 * HW_OK with *tk and *found its number; HW_ENOTFOUND past the last one. */
static int ticket_at_or_after(hw_store_txn *t, MDB_cursor *c, MDB_cursor_op op, uint64_t number, hw_arena *a,
                              Helpwire__V1__Ticket **tk, uint64_t *found)
{
    unsigned char kb[8];
    hw_be64_put(kb, number);
    MDB_val k = {.mv_size = 8, .mv_data = kb}, v, rec;
    int mrc = mdb_cursor_get(c, &k, &v, op);
    if (mrc == MDB_NOTFOUND)
        return HW_ENOTFOUND;
    if (mrc != 0)
        return hw_store__err(t, mrc);
    if (k.mv_size != 8)
        return HW_ECORRUPT;
    *found = hw_be64_get(k.mv_data);
    int rc = hw_store__get(t, HW_DB_TICKETS, v.mv_data, v.mv_size, &rec);
    if (rc == HW_ENOTFOUND)
        return HW_ECORRUPT;
    if (rc != HW_OK)
        return rc;
    if ((rc = hw_records__unpack(&helpwire__v1__ticket__descriptor, a, &rec, (ProtobufCMessage **)tk)) != HW_OK)
        return rc;
    return hw_twal_ticket_overlay(t, *tk);
}

int hw_store_ticket_foreach_created(hw_store_txn *t, int64_t from_unix_ms, int64_t to_unix_ms,
                                    int64_t slack_ms, hw_arena *a,
                                    int (*fn)(void *arg, const Helpwire__V1__Ticket *tk), void *arg)
{
    if (!a || !fn || slack_ms < 0 || to_unix_ms < from_unix_ms)
        return HW_EINVALID;
    MDB_cursor *c;
    int rc = hw_store__cursor(t, HW_DB_TICKETS_BY_NUMBER, &c);
    if (rc != HW_OK)
        return rc;
    /* Smallest number whose ticket was created at or after from - slack:
     * O(log n) seeks. */
    uint64_t lo = 1, hi = UINT64_MAX;
    Helpwire__V1__Ticket *tk = NULL;
    uint64_t found = 0;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        rc = ticket_at_or_after(t, c, MDB_SET_RANGE, mid, a, &tk, &found);
        if (rc == HW_ENOTFOUND) {
            hi = mid;
            continue;
        }
        if (rc != HW_OK)
            goto out;
        if (tk->created_unix_ms < from_unix_ms - slack_ms)
            lo = found + 1;
        else
            hi = mid;
        hw_arena_reset(a);
    }
    /* Then forward, one step per ticket, to the first created at or after
     * to + slack. */
    MDB_cursor_op op = MDB_SET_RANGE;
    for (;;) {
        rc = ticket_at_or_after(t, c, op, lo, a, &tk, &found);
        op = MDB_NEXT;
        if (rc == HW_ENOTFOUND) {
            rc = HW_OK;
            break;
        }
        if (rc != HW_OK || tk->created_unix_ms >= to_unix_ms + slack_ms)
            break;
        int frc = 0;
        if (tk->created_unix_ms >= from_unix_ms && tk->created_unix_ms < to_unix_ms)
            frc = fn(arg, tk);
        hw_arena_reset(a);
        if (frc == HW_STOP)
            break;
        if (frc != 0) {
            rc = frc;
            break;
        }
    }
out:
    hw_arena_reset(a);
    mdb_cursor_close(c);
    return rc;
}

/* Deletes every entry of db whose key starts with prefix (re-seeking after
 * each delete keeps the cursor state simple). */
int hw_records__delete_prefix(hw_store_txn *w, int db, const hw_kb *prefix)
{
    MDB_cursor *c;
    int rc = hw_store__cursor(w, db, &c);
    if (rc != HW_OK)
        return rc;
    int mrc;
    for (;;) {
        MDB_val k = {.mv_size = prefix->n, .mv_data = (void *)prefix->b}, v;
        mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        if (mrc != 0 || !hw_has_prefix(&k, prefix->b, prefix->n))
            break;
        if ((rc = hw_store__cursor_del(w, db, c)) != HW_OK) {
            mdb_cursor_close(c);
            return rc;
        }
    }
    rc = mrc == 0 || mrc == MDB_NOTFOUND ? HW_OK : hw_store__err(w, mrc);
    mdb_cursor_close(c);
    return rc;
}

typedef struct unref_list {
    hw_arena *a;
    Helpwire__V1__TicketMessage **m;
    size_t n, cap;
} unref_list;

/* Collects the ticket's messages that carry attachments (dropping their
 * references waits until the scan is over). */
static int unref_collect(hw_store_txn *t, void *arg, const MDB_val *k, const MDB_val *v)
{
    (void)t, (void)k;
    unref_list *l = arg;
    if (v->mv_size < HW_TLOG_HDR)
        return HW_ECORRUPT;
    const unsigned char *h = v->mv_data;
    if (h[0] != HW_TLOG_MESSAGE)
        return 0;
    MDB_val body = {.mv_size = v->mv_size - HW_TLOG_HDR, .mv_data = (void *)(h + HW_TLOG_HDR)};
    ProtobufCMessage *m;
    int rc = hw_records__unpack(&helpwire__v1__ticket_message__descriptor, l->a, &body, &m);
    if (rc != HW_OK)
        return rc;
    Helpwire__V1__TicketMessage *tm = (Helpwire__V1__TicketMessage *)m;
    if (tm->n_attachments == 0)
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        Helpwire__V1__TicketMessage **nm = hw_arena_alloc(l->a, cap * sizeof *nm);
        if (!nm)
            return HW_ENOMEM;
        if (l->n)
            memcpy(nm, l->m, l->n * sizeof *nm);
        l->m = nm, l->cap = cap;
    }
    l->m[l->n++] = tm;
    return 0;
}

int hw_store_ticket_delete(hw_store_txn *w, const char *id)
{
    if (!w || !w->writable || !id_ok(id))
        return HW_EINVALID;
    hw_kb p;
    HW_KB_INIT(&p);
    hw_kb_str0(&p, id);
    unref_list l = {.a = w->arena};
    int rc = hw_twal_settle(w, id, 0);
    if (rc == HW_OK)
        rc = hw_records__scan(w, HW_DB_TICKET_LOG, p.b, p.n, 0, NULL, 0, unref_collect, &l);
    for (size_t i = 0; rc == HW_OK && i < l.n; i++)
        rc = hw_records__message_unref(w, l.m[i]);
    if (rc != HW_OK)
        return rc;
    if ((rc = kind_delete(w, &HW_KINDS[K_TICKET], id)) != HW_OK)
        return rc;
    return hw_records__delete_prefix(w, HW_DB_TICKET_LOG, &p);
}

static int ticket_keep(const void *rec, const void *filter)
{
    const Helpwire__V1__Ticket *t = rec;
    const hw_ticket_filter *f = filter;
    if (f->status && t->status != f->status)
        return 0;
    if (f->priority && t->priority != f->priority)
        return 0;
    if (f->queue && *f->queue && strcmp(t->queue ? t->queue : "", f->queue) != 0)
        return 0;
    if (f->customer_id && *f->customer_id &&
        strcmp(t->customer_id ? t->customer_id : "", f->customer_id) != 0)
        return 0;
    const char *as = t->assignee_agent_id ? t->assignee_agent_id : "";
    if (f->unassigned_only && *as)
        return 0;
    if (f->assignee_agent_id && *f->assignee_agent_id && strcmp(as, f->assignee_agent_id) != 0)
        return 0;
    return 1;
}

int hw_store_ticket_list(hw_store_txn *t, const hw_ticket_filter *f, hw_store_cursor *cursor, size_t limit,
                         hw_arena *a, Helpwire__V1__Ticket ***out, size_t *n)
{
    static const hw_ticket_filter none = {0};
    if (!f)
        f = &none;
    collect cl = {.kind = &HW_KINDS[K_TICKET],
                  .desc = HW_KINDS[K_TICKET].desc,
                  .a = a,
                  .via_index = 1,
                  .keep = ticket_keep,
                  .filter = f};
    hw_kb p;
    HW_KB_INIT(&p);
    int db;
    /* The most selective index first; the rest is checked per record. */
    if (f->customer_id && *f->customer_id) {
        db = HW_DB_TICKETS_BY_CUSTOMER;
        hw_kb_str0(&p, f->customer_id);
    } else if (f->assignee_agent_id && *f->assignee_agent_id) {
        db = HW_DB_TICKETS_BY_ASSIGNEE;
        hw_kb_str0(&p, f->assignee_agent_id);
    } else if (f->unassigned_only) {
        db = HW_DB_TICKETS_BY_ASSIGNEE;
        hw_kb_str0(&p, "");
    } else if (f->queue && *f->queue && f->status) {
        db = HW_DB_TICKETS_BY_QUEUE_STATUS;
        hw_kb_str0(&p, f->queue);
        hw_kb_u8(&p, (unsigned)f->status);
    } else if (f->queue && *f->queue) {
        db = HW_DB_TICKETS_BY_QUEUE;
        hw_kb_str0(&p, f->queue);
    } else if (f->status) {
        db = HW_DB_TICKETS_BY_STATUS;
        hw_kb_u8(&p, (unsigned)f->status);
    } else if (f->priority) {
        db = HW_DB_TICKETS_BY_PRIORITY;
        hw_kb_u8(&p, (unsigned)f->priority);
    } else {
        db = HW_DB_TICKETS_BY_NUMBER;
    }
    return list_run(t, &cl, db, &p, 1, cursor, limit, out, n);
}

/* ------------------------------------------------------------------------
 * Per-ticket log: events and messages, in one database
 *
 * Key: ticket id \0 be64 position (from 1, shared by both kinds). Value: a
 * header (HW_TLOG_HDR bytes: the kind, then be64 of the entry's sequence
 * within its kind, from 1) and the protobuf record. A ticket's newest message and
 * newest event are neighbours, so a request appending both (a customer's
 * message and its history event) dirties one leaf page, not one in each of
 * two databases. Listing one kind skips the other's entries by the header
 * byte without decoding them.
 * ---------------------------------------------------------------------- */

/* The ticket's last position and the last sequence of kind, both 0 when
 * none: a seek to the end of the ticket's range, then steps back over
 * entries of the other kind (usually none: each message is followed by its
 * history event). */
int hw_records__log_tail(hw_store_txn *w, const hw_kb *prefix, int kind, uint64_t *last_pos,
                         uint64_t *last_seq)
{
    MDB_cursor *c;
    int rc = hw_store__cursor(w, HW_DB_TICKET_LOG, &c);
    if (rc != HW_OK)
        return rc;
    MDB_val k, v;
    int mrc = seek_prefix_last(c, prefix->b, prefix->n, &k, &v);
    *last_pos = *last_seq = 0;
    while (mrc == 0 && hw_has_prefix(&k, prefix->b, prefix->n)) {
        if (k.mv_size != prefix->n + 8 || v.mv_size < HW_TLOG_HDR) {
            rc = HW_ECORRUPT;
            goto out;
        }
        const unsigned char *h = v.mv_data;
        if (*last_pos == 0) /* positions start at 1: the first entry seen is the last one */
            *last_pos = hw_be64_get((const unsigned char *)k.mv_data + prefix->n);
        if (h[0] == kind) {
            *last_seq = hw_be64_get(h + 1);
            break;
        }
        mrc = mdb_cursor_get(c, &k, &v, MDB_PREV);
    }
    rc = mrc == 0 || mrc == MDB_NOTFOUND ? HW_OK : hw_store__err(w, mrc);
out:
    mdb_cursor_close(c);
    return rc;
}

/* Reserves the entry at position pos of the ticket (prefix: its id \0)
 * with its header written; *body receives the body_len bytes after it. */
int hw_records__log_reserve(hw_store_txn *w, const hw_kb *prefix, uint64_t pos, int kind, uint64_t seq,
                            size_t body_len, unsigned char **body)
{
    hw_kb k = *prefix;
    hw_kb_be64(&k, pos);
    if (k.overflow)
        return HW_EINVALID;
    void *dst;
    int rc = hw_store__reserve(w, HW_DB_TICKET_LOG, k.b, k.n, HW_TLOG_HDR + body_len, MDB_NOOVERWRITE, &dst);
    if (rc != HW_OK)
        return rc;
    unsigned char *h = dst;
    h[0] = (unsigned char)kind;
    hw_be64_put(h + 1, seq);
    *body = h + HW_TLOG_HDR;
    return HW_OK;
}

/* Appends m as the next entry of kind; *seq_out receives its sequence.
 * seq_field (may be NULL) is the record's own copy of the sequence: set
 * before m is packed, back to 0 on failure. */
static int log_append(hw_store_txn *w, const char *ticket_id, int kind, const ProtobufCMessage *m,
                      uint64_t *seq_field, uint64_t *seq_out)
{
    if (!w->writable || !id_ok(ticket_id))
        return HW_EINVALID;
    return hw_twal_append(w, ticket_id, kind, m, seq_field, seq_out);
}

int hw_store_ticket_event_append(hw_store_txn *w, Helpwire__V1__TicketEvent *ev)
{
    if (!ev || ev->seq != 0)
        return HW_EINVALID;
    uint64_t seq;
    return log_append(w, ev->ticket_id, HW_TLOG_EVENT, &ev->base, &ev->seq, &seq);
}

/* The log's scan, noting the position of the last entry taken. */
typedef struct log_scan {
    collect *cl;
    size_t pl;
    uint64_t last_taken;
} log_scan;

static int log_scan_visit(hw_store_txn *t, void *arg, const MDB_val *k, const MDB_val *v)
{
    log_scan *ls = arg;
    if (k->mv_size != ls->pl + 8)
        return HW_ECORRUPT;
    int rc = collect_visit(t, ls->cl, k, v);
    if (rc == 1)
        ls->last_taken = hw_be64_get((const unsigned char *)k->mv_data + ls->pl);
    return rc;
}

/* A ticket's entries of one kind in position order: those of its log,
 * then its pending ones (ticket_wal.c), which all come after. The cursor
 * is a key of the log (ticket id \0 be64 position) either way, so a page
 * boundary survives the entries' copy into the log. */
static int log_list(hw_store_txn *t, const char *ticket_id, int kind, const ProtobufCMessageDescriptor *desc,
                    hw_store_cursor *cursor, size_t limit, hw_arena *a, void *out, size_t *n)
{
    if (!id_ok(ticket_id) || !a || !out || !n || !cursor || limit == 0 || limit > HW_STORE_LIST_MAX)
        return HW_EINVALID;
    collect cl = {.desc = desc, .a = a, .log_kind = kind};
    hw_kb p;
    HW_KB_INIT(&p);
    hw_kb_str0(&p, ticket_id);
    if (p.overflow)
        return HW_EINVALID;
    uint64_t after = 0; /* the cursor's position */
    if (cursor->len > 0) {
        if (cursor->len != 1 + p.n + 8 || cursor->key[0] != (unsigned char)HW_DB_TICKET_LOG ||
            memcmp(cursor->key + 1, p.b, p.n) != 0)
            return HW_EINVALID;
        after = hw_be64_get(cursor->key + 1 + p.n);
    }
    cl.items = hw_arena_alloc(a, limit * sizeof(void *));
    if (!cl.items)
        return HW_ENOMEM;
    cl.cap = limit;
    log_scan ls = {.cl = &cl, .pl = p.n, .last_taken = after};
    int rc = hw_records__scan(t, HW_DB_TICKET_LOG, p.b, p.n, 0, cursor, limit, log_scan_visit, &ls);
    if (rc != HW_OK)
        return rc;
    if (cursor->len == 0) { /* the log is done: its pending entries follow */
        hw_twal_entry *es;
        size_t np;
        if ((rc = hw_twal_pending(t, ticket_id, a, &es, &np)) != HW_OK)
            return rc;
        for (size_t i = 0; i < np; i++) {
            if (es[i].pos <= after)
                continue;
            if (cl.n == limit) { /* more to come: the cursor says where */
                hw_kb ck = p;
                hw_kb_be64(&ck, ls.last_taken);
                cursor->key[0] = (unsigned char)HW_DB_TICKET_LOG;
                memcpy(cursor->key + 1, ck.b, ck.n);
                cursor->len = ck.n + 1;
                break;
            }
            MDB_val v = {.mv_size = es[i].vl, .mv_data = (void *)es[i].val};
            MDB_val k = {0};
            if ((rc = collect_visit(t, &cl, &k, &v)) < 0)
                return rc;
            if (rc == 1)
                ls.last_taken = es[i].pos;
        }
    }
    *(void ***)out = cl.items;
    *n = cl.n;
    return HW_OK;
}

int hw_store_ticket_event_list(hw_store_txn *t, const char *ticket_id, hw_store_cursor *cursor, size_t limit,
                               hw_arena *a, Helpwire__V1__TicketEvent ***out, size_t *n)
{
    return log_list(t, ticket_id, HW_TLOG_EVENT, &helpwire__v1__ticket_event__descriptor, cursor, limit, a,
                    out, n);
}

int hw_store_ticket_message_append(hw_store_txn *w, const Helpwire__V1__TicketMessage *m, uint64_t *pos_out)
{
    if (!m)
        return HW_EINVALID;
    for (size_t i = 0; i < m->n_attachments; i++) {
        const Helpwire__V1__Attachment *at = m->attachments[i];
        if (!at || !at->id || !*at->id)
            continue; /* a place: nothing stored */
        int rc = hw_records__attachment_ref(w, at->id, m->ticket_id, m->id);
        if (rc != HW_OK)
            return rc;
    }
    uint64_t seq = 0;
    int rc = log_append(w, m->ticket_id, HW_TLOG_MESSAGE, &m->base, NULL, &seq);
    if (rc == HW_OK && pos_out)
        *pos_out = seq;
    return rc;
}

int hw_store_ticket_message_list(hw_store_txn *t, const char *ticket_id, hw_store_cursor *cursor,
                                 size_t limit, hw_arena *a, Helpwire__V1__TicketMessage ***out, size_t *n)
{
    return log_list(t, ticket_id, HW_TLOG_MESSAGE, &helpwire__v1__ticket_message__descriptor, cursor, limit,
                    a, out, n);
}

/* One log value (HW_TLOG_HDR header and record) for foreach_newest: a
 * message is unpacked into a (reset first) and given to fn. Returns HW_OK
 * to go on, HW_STOP when fn stopped, or an error. */
static int newest_visit(const MDB_val *v, hw_arena *a, int (*fn)(void *arg, const Helpwire__V1__TicketMessage *m),
                        void *arg)
{
    if (v->mv_size < HW_TLOG_HDR)
        return HW_ECORRUPT;
    if (((const unsigned char *)v->mv_data)[0] != HW_TLOG_MESSAGE)
        return HW_OK;
    MDB_val body = {.mv_size = v->mv_size - HW_TLOG_HDR, .mv_data = (char *)v->mv_data + HW_TLOG_HDR};
    ProtobufCMessage *m;
    hw_arena_reset(a);
    int rc = hw_records__unpack(&helpwire__v1__ticket_message__descriptor, a, &body, &m);
    return rc != HW_OK ? rc : fn(arg, (const Helpwire__V1__TicketMessage *)m);
}

int hw_store_ticket_message_foreach_newest(hw_store_txn *t, const char *ticket_id, hw_arena *a,
                                           int (*fn)(void *arg, const Helpwire__V1__TicketMessage *m), void *arg)
{
    if (!id_ok(ticket_id) || !a || !fn)
        return HW_EINVALID;
    hw_kb p;
    HW_KB_INIT(&p);
    hw_kb_str0(&p, ticket_id);
    if (p.overflow)
        return HW_EINVALID;
    /* The pending entries first (ticket_wal.c): they are the newest. Their
     * list is copied out of a (reset before each message); the values it
     * points to are in the map. */
    hw_twal_entry *es;
    size_t np;
    int rc = hw_twal_pending(t, ticket_id, a, &es, &np);
    if (rc != HW_OK)
        return rc;
    MDB_val *pv = np ? malloc(np * sizeof *pv) : NULL;
    if (np && !pv)
        return HW_ENOMEM;
    for (size_t i = 0; i < np; i++)
        pv[i] = (MDB_val){.mv_size = es[i].vl, .mv_data = (void *)es[i].val};
    for (size_t i = np; rc == HW_OK && i-- > 0;)
        rc = newest_visit(&pv[i], a, fn, arg);
    free(pv);
    if (rc != HW_OK)
        return rc == HW_STOP ? HW_OK : rc;
    MDB_cursor *c;
    if ((rc = hw_store__cursor(t, HW_DB_TICKET_LOG, &c)) != HW_OK)
        return rc;
    MDB_val k, v;
    int mrc = seek_prefix_last(c, p.b, p.n, &k, &v);
    while (rc == HW_OK && mrc == 0 && hw_has_prefix(&k, p.b, p.n)) {
        rc = k.mv_size != p.n + 8 ? HW_ECORRUPT : newest_visit(&v, a, fn, arg);
        if (rc == HW_OK)
            mrc = mdb_cursor_get(c, &k, &v, MDB_PREV);
    }
    mdb_cursor_close(c);
    if (rc != HW_OK)
        return rc == HW_STOP ? HW_OK : rc;
    return mrc == 0 || mrc == MDB_NOTFOUND ? HW_OK : hw_store__err(t, mrc);
}

/* ------------------------------------------------------------------------
 * Scrubbing a ticket's personal text (erasure, retention)
 * ---------------------------------------------------------------------- */

/* One entry of a ticket's log, copied out of the map (keys and values
 * change under a cursor as entries are rewritten). */
typedef struct scrub_ent {
    unsigned char *key;
    size_t kl;
    unsigned char *val;
    size_t vl;
} scrub_ent;

typedef struct scrub_list {
    hw_arena *a;
    scrub_ent *e;
    size_t n, cap;
} scrub_list;

static int scrub_collect(hw_store_txn *t, void *arg, const MDB_val *k, const MDB_val *v)
{
    (void)t;
    scrub_list *l = arg;
    if (v->mv_size < HW_TLOG_HDR)
        return HW_ECORRUPT;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        scrub_ent *e = hw_arena_alloc(l->a, cap * sizeof *e);
        if (!e)
            return HW_ENOMEM;
        if (l->n)
            memcpy(e, l->e, l->n * sizeof *e);
        l->e = e;
        l->cap = cap;
    }
    scrub_ent *e = &l->e[l->n];
    e->key = hw_arena_alloc(l->a, k->mv_size);
    e->val = hw_arena_alloc(l->a, v->mv_size);
    if (!e->key || !e->val)
        return HW_ENOMEM;
    memcpy(e->key, k->mv_data, k->mv_size);
    memcpy(e->val, v->mv_data, v->mv_size);
    e->kl = k->mv_size;
    e->vl = v->mv_size;
    l->n++;
    return 1;
}

/* Rewrites a log entry as its header and m, zeroing the old value first. */
static int scrub_log_put(hw_store_txn *w, const scrub_ent *e, const ProtobufCMessage *m)
{
    int rc = hw_store__zero(w, HW_DB_TICKET_LOG, e->key, e->kl);
    if (rc != HW_OK)
        return rc;
    size_t len = protobuf_c_message_get_packed_size(m);
    void *dst;
    rc = hw_store__reserve(w, HW_DB_TICKET_LOG, e->key, e->kl, HW_TLOG_HDR + len, 0, &dst);
    if (rc != HW_OK)
        return rc;
    memcpy(dst, e->val, HW_TLOG_HDR);
    return protobuf_c_message_pack(m, (unsigned char *)dst + HW_TLOG_HDR) == len ? HW_OK : HW_EIO;
}

static int str_set(const char *s)
{
    return s && *s;
}

int hw_store_ticket_scrub(hw_store_txn *w, const char *ticket_id, int how, int64_t now_ms, size_t *messages)
{
    if (messages)
        *messages = 0;
    if (!w || !w->writable || !id_ok(ticket_id) || (how != HW_SCRUB_REDACT && how != HW_SCRUB_DELETE))
        return HW_EINVALID;
    hw_arena *a = w->arena;
    const hw_kind *k = &HW_KINDS[K_TICKET];
    size_t idl = strlen(ticket_id);
    MDB_val v;
    int rc = get_raw(w, k->db, ticket_id, &v);
    if (rc != HW_OK)
        return rc;
    ProtobufCMessage *m;
    if ((rc = hw_records__unpack(k->desc, a, &v, &m)) != HW_OK || (rc = as_read(w, m)) != HW_OK)
        return rc;
    Helpwire__V1__Ticket *tk = (Helpwire__V1__Ticket *)m;
    if (str_set(tk->subject) || str_set(tk->resolution) || str_set(tk->escalation_reason) ||
        tk->redacted_unix_ms == 0) {
        tk->subject = (char *)"";
        tk->resolution = (char *)"";
        tk->escalation_reason = (char *)"";
        if (tk->redacted_unix_ms == 0)
            tk->redacted_unix_ms = now_ms > 0 ? now_ms : 1;
        tk->version++;
        /* The indexed fields (number, status, queue, assignee, customer,
         * priority) are unchanged: the index entries stay as they are. */
        if ((rc = hw_store__wipe_put_msg(w, k->db, ticket_id, idl, m)) != HW_OK)
            return rc;
    }

    hw_kb p;
    HW_KB_INIT(&p);
    hw_kb_str0(&p, ticket_id);
    scrub_list l = {.a = a};
    if ((rc = hw_twal_settle(w, ticket_id, 1)) != HW_OK)
        return rc;
    if ((rc = hw_records__scan(w, HW_DB_TICKET_LOG, p.b, p.n, 0, NULL, 0, scrub_collect, &l)) != HW_OK)
        return rc;
    size_t n_msg = 0;
    for (size_t i = 0; i < l.n; i++) {
        const scrub_ent *e = &l.e[i];
        MDB_val body = {.mv_size = e->vl - HW_TLOG_HDR, .mv_data = e->val + HW_TLOG_HDR};
        if (e->val[0] == HW_TLOG_MESSAGE) {
            if ((rc = hw_records__unpack(&helpwire__v1__ticket_message__descriptor, a, &body, &m)) != HW_OK)
                return rc;
            Helpwire__V1__TicketMessage *tm = (Helpwire__V1__TicketMessage *)m;
            /* Files are personal data too: the message's references go,
             * and with the last one the file. */
            if ((rc = hw_records__message_unref(w, tm)) != HW_OK)
                return rc;
            if (how == HW_SCRUB_DELETE) {
                if ((rc = hw_store__wipe_del(w, HW_DB_TICKET_LOG, e->key, e->kl)) != HW_OK)
                    return rc;
                n_msg++;
                continue;
            }
            if (!str_set(tm->text) && tm->n_attachments == 0 && !str_set(tm->channel_message_id))
                continue;
            tm->text = (char *)"";
            tm->channel_message_id = (char *)""; /* the channel's id may name the sender */
            tm->n_attachments = 0;
            tm->attachments = NULL;
            if ((rc = scrub_log_put(w, e, m)) != HW_OK)
                return rc;
            n_msg++;
        } else if (e->val[0] == HW_TLOG_EVENT) {
            if ((rc = hw_records__unpack(&helpwire__v1__ticket_event__descriptor, a, &body, &m)) != HW_OK)
                return rc;
            Helpwire__V1__TicketEvent *ev = (Helpwire__V1__TicketEvent *)m;
            if (!str_set(ev->detail) && !ev->ticket)
                continue;
            ev->detail = (char *)"";
            ev->ticket = NULL;
            if ((rc = scrub_log_put(w, e, m)) != HW_OK)
                return rc;
        } else {
            return HW_ECORRUPT;
        }
    }
    if (messages)
        *messages = n_msg;
    return HW_OK;
}

/* ------------------------------------------------------------------------
 * Knowledge
 * ---------------------------------------------------------------------- */

int hw_store_article_put(hw_store_txn *w, const Helpwire__V1__Article *ar, int mode,
                         uint64_t expected_version)
{
    return kind_put(w, &HW_KINDS[K_ARTICLE], &ar->base, mode, expected_version);
}

int hw_store_article_get(hw_store_txn *t, const char *id, hw_arena *a, Helpwire__V1__Article **out)
{
    return kind_get(t, &HW_KINDS[K_ARTICLE], id, a, out);
}

int hw_store_article_delete(hw_store_txn *w, const char *id)
{
    return kind_delete(w, &HW_KINDS[K_ARTICLE], id);
}

static int list_by_locale(hw_store_txn *t, int kind, int by_locale_db, const char *locale,
                          hw_store_cursor *cursor, size_t limit, hw_arena *a, void *out, size_t *n)
{
    collect cl = {.kind = &HW_KINDS[kind], .desc = HW_KINDS[kind].desc, .a = a};
    hw_kb p;
    HW_KB_INIT(&p);
    int db = HW_KINDS[kind].db;
    if (locale) {
        hw_kb_str0(&p, locale);
        db = by_locale_db;
        cl.via_index = 1;
    }
    return list_run(t, &cl, db, &p, 0, cursor, limit, out, n);
}

int hw_store_article_list(hw_store_txn *t, const char *locale, hw_store_cursor *cursor, size_t limit,
                          hw_arena *a, Helpwire__V1__Article ***out, size_t *n)
{
    return list_by_locale(t, K_ARTICLE, HW_DB_ARTICLES_BY_LOCALE, locale, cursor, limit, a, out, n);
}

int hw_store_article_foreach(hw_store_txn *t, hw_arena *a,
                             int (*fn)(void *arg, const Helpwire__V1__Article *ar), void *arg)
{
    collect cl = {.kind = &HW_KINDS[K_ARTICLE],
                  .desc = HW_KINDS[K_ARTICLE].desc,
                  .a = a,
                  .each = (int (*)(void *, const void *))fn,
                  .each_arg = arg};
    hw_kb p;
    HW_KB_INIT(&p);
    return foreach_run(t, &cl, HW_DB_ARTICLES, &p);
}

int hw_store_faq_put(hw_store_txn *w, const Helpwire__V1__Faq *fq, int mode, uint64_t expected_version)
{
    return kind_put(w, &HW_KINDS[K_FAQ], &fq->base, mode, expected_version);
}

int hw_store_faq_get(hw_store_txn *t, const char *id, hw_arena *a, Helpwire__V1__Faq **out)
{
    return kind_get(t, &HW_KINDS[K_FAQ], id, a, out);
}

int hw_store_faq_delete(hw_store_txn *w, const char *id)
{
    return kind_delete(w, &HW_KINDS[K_FAQ], id);
}

int hw_store_faq_list(hw_store_txn *t, const char *locale, hw_store_cursor *cursor, size_t limit, hw_arena *a,
                      Helpwire__V1__Faq ***out, size_t *n)
{
    return list_by_locale(t, K_FAQ, HW_DB_FAQS_BY_LOCALE, locale, cursor, limit, a, out, n);
}

int hw_store_faq_foreach(hw_store_txn *t, hw_arena *a, int (*fn)(void *arg, const Helpwire__V1__Faq *fq),
                         void *arg)
{
    collect cl = {.kind = &HW_KINDS[K_FAQ],
                  .desc = HW_KINDS[K_FAQ].desc,
                  .a = a,
                  .each = (int (*)(void *, const void *))fn,
                  .each_arg = arg};
    hw_kb p;
    HW_KB_INIT(&p);
    return foreach_run(t, &cl, HW_DB_FAQS, &p);
}

/* ------------------------------------------------------------------------
 * Hash-carrying records: surveys and tokens
 *
 * Stored as a wrapper { bytes message; bytes hash } in the primary db; the
 * hash is a unique index -> id. Surveys are also indexed by sent time.
 * ---------------------------------------------------------------------- */

const hw_hashed_kind HW_SURVEYS = {HW_DB_SURVEYS, HW_DB_SURVEYS_BY_TOKEN, HW_DB_SURVEYS_BY_SENT,
                                   &helpwire__v1__survey__descriptor};
const hw_hashed_kind HW_TOKENS = {HW_DB_TOKENS, HW_DB_TOKENS_BY_HASH, -1,
                                  &helpwire__v1__token_info__descriptor};

/* The wrapper's two fields share the layout of SurveyRecord and
 * TokenRecord (bytes 1, bytes 2); SurveyRecord's code reads both. */
int hw_records__wrapper_unpack(hw_arena *a, const MDB_val *v, ProtobufCBinaryData *msg,
                               ProtobufCBinaryData *hash)
{
    Helpwire__Store__V1__SurveyRecord *r =
        helpwire__store__v1__survey_record__unpack(hw_arena_allocator(a), v->mv_size, v->mv_data);
    if (!r)
        return HW_ECORRUPT;
    *msg = r->survey;
    *hash = r->token_hash;
    return HW_OK;
}

void hw_records__hashed_keys(const hw_hashed_kind *hk, const ProtobufCMessage *m, const void *hash,
                             size_t hash_len, hw_ikeys *out)
{
    hw_kb k;
    HW_KB_INIT(&k);
    hw_kb_bytes(&k, hash, hash_len);
    ik_push(out, hk->hash_db, 1, &k);
    if (hk->extra_db >= 0) {
        const Helpwire__V1__Survey *sv = (const Helpwire__V1__Survey *)m;
        HW_KB_INIT(&k);
        hw_kb_be64(&k, (uint64_t)sv->sent_unix_ms);
        hw_kb_str(&k, sv->id);
        ik_push(out, hk->extra_db, 0, &k);
    }
}

static int hashed_put(hw_store_txn *w, const hw_hashed_kind *hk, const ProtobufCMessage *m, const char *id,
                      const void *hash, size_t hash_len, int mode)
{
    if (!w->writable || !m || !id_ok(id) || mode < 0 || mode > HW_PUT_REPLACE ||
        (hash && (hash_len == 0 || hash_len > HW_HASH_MAX)))
        return HW_EINVALID;
    hw_arena *a = w->arena;
    MDB_val v;
    ProtobufCBinaryData old_msg = {0}, old_hash = {0};
    int exists = 0;
    int rc = get_raw(w, hk->db, id, &v);
    if (rc == HW_OK) {
        exists = 1;
        rc = hw_records__wrapper_unpack(a, &v, &old_msg, &old_hash);
    } else if (rc == HW_ENOTFOUND) {
        rc = HW_OK;
    }
    if (rc != HW_OK)
        return rc;
    if ((rc = mode_check(exists, mode, 0, 0)) != HW_OK)
        return rc;
    if (!hash) {
        if (!exists)
            return HW_EINVALID;
        hash = old_hash.data;
        hash_len = old_hash.len;
    }
    hw_ikeys oldk, newk;
    if ((rc = hw_ikeys_init(&oldk, a)) != HW_OK || (rc = hw_ikeys_init(&newk, a)) != HW_OK)
        return rc;
    if (exists) {
        ProtobufCMessage *old;
        MDB_val ov = {.mv_size = old_msg.len, .mv_data = old_msg.data};
        if ((rc = hw_records__unpack(hk->desc, a, &ov, &old)) != HW_OK)
            return rc;
        hw_records__hashed_keys(hk, old, old_hash.data, old_hash.len, &oldk);
    }
    hw_records__hashed_keys(hk, m, hash, hash_len, &newk);
    if (oldk.err || newk.err)
        return newk.err ? newk.err : oldk.err;
    if ((rc = check_unique(w, &newk, &oldk, id)) != HW_OK)
        return rc;
    if ((rc = apply_keys(w, &oldk, &newk, id)) != HW_OK)
        return rc;

    size_t ml = protobuf_c_message_get_packed_size(m);
    uint8_t *packed = hw_arena_alloc(a, ml);
    if (!packed)
        return HW_ENOMEM;
    protobuf_c_message_pack(m, packed);
    Helpwire__Store__V1__SurveyRecord r = HELPWIRE__STORE__V1__SURVEY_RECORD__INIT;
    r.survey = (ProtobufCBinaryData){.len = ml, .data = packed};
    r.token_hash = (ProtobufCBinaryData){.len = hash_len, .data = (uint8_t *)hash};
    return hw_store__put_msg(w, hk->db, id, strlen(id), &r.base, 0);
}

static int hashed_decode(const hw_hashed_kind *hk, hw_arena *a, const MDB_val *v, void *out)
{
    ProtobufCBinaryData msg, hash;
    int rc = hw_records__wrapper_unpack(a, v, &msg, &hash);
    if (rc != HW_OK)
        return rc;
    MDB_val mv = {.mv_size = msg.len, .mv_data = msg.data};
    return hw_records__unpack(hk->desc, a, &mv, (ProtobufCMessage **)out);
}

static int hashed_get(hw_store_txn *t, const hw_hashed_kind *hk, const char *id, hw_arena *a, void *out)
{
    if (!a || !out)
        return HW_EINVALID;
    MDB_val v;
    int rc = get_raw(t, hk->db, id, &v);
    if (rc != HW_OK)
        return rc;
    return hashed_decode(hk, a, &v, out);
}

static int hashed_get_by_hash(hw_store_txn *t, const hw_hashed_kind *hk, const void *hash, size_t hash_len,
                              hw_arena *a, void *out)
{
    if (!hash || hash_len == 0 || hash_len > HW_HASH_MAX || !a || !out)
        return HW_EINVALID;
    MDB_val idv, v;
    int rc = hw_store__get(t, hk->hash_db, hash, hash_len, &idv);
    if (rc != HW_OK)
        return rc;
    rc = hw_store__get(t, hk->db, idv.mv_data, idv.mv_size, &v);
    if (rc == HW_ENOTFOUND)
        return HW_ECORRUPT;
    if (rc != HW_OK)
        return rc;
    return hashed_decode(hk, a, &v, out);
}

static int hashed_delete(hw_store_txn *w, const hw_hashed_kind *hk, const char *id)
{
    if (!w->writable)
        return HW_EINVALID;
    MDB_val v;
    int rc = get_raw(w, hk->db, id, &v);
    if (rc != HW_OK)
        return rc;
    ProtobufCBinaryData msg, hash;
    ProtobufCMessage *old;
    hw_ikeys oldk;
    if ((rc = hw_records__wrapper_unpack(w->arena, &v, &msg, &hash)) != HW_OK)
        return rc;
    MDB_val mv = {.mv_size = msg.len, .mv_data = msg.data};
    if ((rc = hw_records__unpack(hk->desc, w->arena, &mv, &old)) != HW_OK)
        return rc;
    if ((rc = hw_ikeys_init(&oldk, w->arena)) != HW_OK)
        return rc;
    hw_records__hashed_keys(hk, old, hash.data, hash.len, &oldk);
    if (oldk.err)
        return oldk.err;
    if ((rc = apply_keys(w, &oldk, NULL, id)) != HW_OK)
        return rc;
    return hw_store__del(w, hk->db, id, strlen(id));
}

int hw_store_survey_put(hw_store_txn *w, const Helpwire__V1__Survey *sv, const void *token_hash,
                        size_t hash_len, int mode)
{
    if (!sv)
        return HW_EINVALID;
    return hashed_put(w, &HW_SURVEYS, &sv->base, sv->id, token_hash, hash_len, mode);
}

int hw_store_survey_get(hw_store_txn *t, const char *id, hw_arena *a, Helpwire__V1__Survey **out)
{
    return hashed_get(t, &HW_SURVEYS, id, a, out);
}

int hw_store_survey_get_by_token(hw_store_txn *t, const void *token_hash, size_t hash_len, hw_arena *a,
                                 Helpwire__V1__Survey **out)
{
    return hashed_get_by_hash(t, &HW_SURVEYS, token_hash, hash_len, a, out);
}

int hw_store_survey_delete(hw_store_txn *w, const char *id)
{
    return hashed_delete(w, &HW_SURVEYS, id);
}

typedef struct sent_scan {
    hw_arena *a;
    int64_t to;
    int (*fn)(void *arg, const Helpwire__V1__Survey *sv);
    void *arg;
    int fn_rc;
} sent_scan;

static int sent_visit(hw_store_txn *t, void *arg, const MDB_val *k, const MDB_val *v)
{
    sent_scan *ss = arg;
    if (k->mv_size < 8)
        return HW_ECORRUPT;
    int64_t sent = (int64_t)hw_be64_get(k->mv_data);
    if (ss->to && sent >= ss->to)
        return HW_STOP; /* past the range */
    MDB_val rec;
    int rc = hw_store__get(t, HW_DB_SURVEYS, v->mv_data, v->mv_size, &rec);
    if (rc == HW_ENOTFOUND)
        return HW_ECORRUPT;
    if (rc != HW_OK)
        return rc;
    Helpwire__V1__Survey *sv;
    if ((rc = hashed_decode(&HW_SURVEYS, ss->a, &rec, &sv)) != HW_OK)
        return rc;
    rc = ss->fn(ss->arg, sv);
    hw_arena_reset(ss->a);
    if (rc != 0 && rc != HW_STOP)
        ss->fn_rc = rc; /* returned by hw_store_survey_foreach_sent */
    return rc != 0 ? HW_STOP : 1;
}

int hw_store_survey_foreach_sent(hw_store_txn *t, int64_t from_unix_ms, int64_t to_unix_ms, hw_arena *a,
                                 int (*fn)(void *arg, const Helpwire__V1__Survey *sv), void *arg)
{
    if (!a || !fn)
        return HW_EINVALID;
    sent_scan ss = {.a = a, .to = to_unix_ms, .fn = fn, .arg = arg};
    /* The sent index is be64(sent) + id: start at the first key >= from. */
    MDB_cursor *c;
    int rc = hw_store__cursor(t, HW_DB_SURVEYS_BY_SENT, &c);
    if (rc != HW_OK)
        return rc;
    unsigned char from[8];
    hw_be64_put(from, from_unix_ms > 0 ? (uint64_t)from_unix_ms : 0);
    MDB_val k = {.mv_size = 8, .mv_data = from}, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    rc = HW_OK;
    while (mrc == 0) {
        rc = sent_visit(t, &ss, &k, &v);
        if (rc < 0)
            break;
        mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (mrc != 0 && mrc != MDB_NOTFOUND)
        return hw_store__err(t, mrc);
    if (ss.fn_rc)
        return ss.fn_rc;
    if (rc < 0 && rc != HW_STOP)
        return rc;
    return HW_OK;
}

int hw_store_token_put(hw_store_txn *w, const Helpwire__V1__TokenInfo *info, const void *secret_hash,
                       size_t hash_len, int mode)
{
    if (!info)
        return HW_EINVALID;
    return hashed_put(w, &HW_TOKENS, &info->base, info->id, secret_hash, hash_len, mode);
}

int hw_store_token_get(hw_store_txn *t, const char *id, hw_arena *a, Helpwire__V1__TokenInfo **out)
{
    return hashed_get(t, &HW_TOKENS, id, a, out);
}

int hw_store_token_get_by_hash(hw_store_txn *t, const void *hash, size_t hash_len, hw_arena *a,
                               Helpwire__V1__TokenInfo **out)
{
    return hashed_get_by_hash(t, &HW_TOKENS, hash, hash_len, a, out);
}

int hw_store_token_delete(hw_store_txn *w, const char *id)
{
    return hashed_delete(w, &HW_TOKENS, id);
}

typedef struct token_collect {
    hw_arena *a;
    Helpwire__V1__TokenInfo **items;
    size_t n;
} token_collect;

static int token_visit(hw_store_txn *t, void *arg, const MDB_val *k, const MDB_val *v)
{
    token_collect *tc = arg;
    Helpwire__V1__TokenInfo *info;
    int rc = hashed_decode(&HW_TOKENS, tc->a, v, &info);
    if (rc != HW_OK)
        return rc;
    tc->items[tc->n++] = info;
    return 1;
}

int hw_store_token_list(hw_store_txn *t, hw_store_cursor *cursor, size_t limit, hw_arena *a,
                        Helpwire__V1__TokenInfo ***out, size_t *n)
{
    if (!a || !out || !n || !cursor || limit == 0 || limit > HW_STORE_LIST_MAX)
        return HW_EINVALID;
    token_collect tc = {.a = a, .items = hw_arena_alloc(a, limit * sizeof(void *))};
    if (!tc.items)
        return HW_ENOMEM;
    int rc = hw_records__scan(t, HW_DB_TOKENS, NULL, 0, 0, cursor, limit, token_visit, &tc);
    if (rc != HW_OK)
        return rc;
    *out = tc.items;
    *n = tc.n;
    return HW_OK;
}

/* ------------------------------------------------------------------------
 * Outbox (key: channel byte, be64 seq)
 * ---------------------------------------------------------------------- */

static void outbox_key(hw_kb *k, Helpwire__V1__Channel ch, uint64_t seq)
{
    HW_KB_INIT(k);
    hw_kb_u8(k, (unsigned)ch);
    hw_kb_be64(k, seq);
}

int hw_store_outbox_append(hw_store_txn *w, Helpwire__V1__OutboundMessage *m)
{
    if (!w->writable || !m || m->channel == 0)
        return HW_EINVALID;
    uint64_t seq = m->seq;
    int rc;
    if (seq == 0) {
        char name[32];
        snprintf(name, sizeof(name), "outbox.%d", (int)m->channel);
        if ((rc = hw_store_next_seq(w, name, 1, &seq)) != HW_OK)
            return rc;
    }
    uint64_t saved = m->seq;
    m->seq = seq;
    hw_kb k;
    outbox_key(&k, m->channel, seq);
    rc = hw_store__put_msg(w, HW_DB_OUTBOX, k.b, k.n, &m->base, MDB_NOOVERWRITE);
    if (rc != HW_OK)
        m->seq = saved;
    return rc;
}

int hw_store_outbox_list(hw_store_txn *t, Helpwire__V1__Channel channel, uint64_t after_seq, size_t limit,
                         hw_arena *a, Helpwire__V1__OutboundMessage ***out, size_t *n)
{
    collect cl = {.desc = &helpwire__v1__outbound_message__descriptor, .a = a};
    hw_kb p;
    HW_KB_INIT(&p);
    hw_kb_u8(&p, (unsigned)channel);
    hw_store_cursor cur = {0};
    if (after_seq) {
        hw_kb k;
        outbox_key(&k, channel, after_seq);
        cur.key[0] = (unsigned char)HW_DB_OUTBOX;
        memcpy(cur.key + 1, k.b, k.n);
        cur.len = k.n + 1;
    }
    return list_run(t, &cl, HW_DB_OUTBOX, &p, 0, &cur, limit, out, n);
}

int hw_store_outbox_get(hw_store_txn *t, Helpwire__V1__Channel channel, uint64_t seq, hw_arena *a,
                        Helpwire__V1__OutboundMessage **out)
{
    if (!a || !out)
        return HW_EINVALID;
    hw_kb k;
    outbox_key(&k, channel, seq);
    MDB_val v;
    int rc = hw_store__get(t, HW_DB_OUTBOX, k.b, k.n, &v);
    if (rc != HW_OK)
        return rc;
    return hw_records__unpack(&helpwire__v1__outbound_message__descriptor, a, &v, (ProtobufCMessage **)out);
}

int hw_store_outbox_update(hw_store_txn *w, const Helpwire__V1__OutboundMessage *m)
{
    if (!w->writable || !m || m->seq == 0)
        return HW_EINVALID;
    hw_kb k;
    outbox_key(&k, m->channel, m->seq);
    MDB_val v;
    int rc = hw_store__get(w, HW_DB_OUTBOX, k.b, k.n, &v);
    if (rc != HW_OK)
        return rc;
    return hw_store__put_msg(w, HW_DB_OUTBOX, k.b, k.n, &m->base, 0);
}

int hw_store_outbox_ack(hw_store_txn *w, Helpwire__V1__Channel channel, uint64_t seq)
{
    hw_kb k;
    outbox_key(&k, channel, seq);
    return hw_store__del(w, HW_DB_OUTBOX, k.b, k.n);
}

static int count_visit(hw_store_txn *t, void *arg, const MDB_val *k, const MDB_val *v)
{
    (*(uint64_t *)arg)++;
    return 1;
}

int hw_store_outbox_backlog(hw_store_txn *t, Helpwire__V1__Channel channel, uint64_t *n)
{
    if (!n)
        return HW_EINVALID;
    if (channel == 0)
        return hw_store__count(t, HW_DB_OUTBOX, n);
    *n = 0;
    unsigned char p = (unsigned char)channel;
    return hw_records__scan(t, HW_DB_OUTBOX, &p, 1, 0, NULL, 0, count_visit, n);
}

int hw_store_outbox_last_seq(hw_store_txn *t, Helpwire__V1__Channel channel, uint64_t *out)
{
    if (!out || channel == 0)
        return HW_EINVALID;
    char name[32];
    snprintf(name, sizeof(name), "outbox.%d", (int)channel); /* hw_store_outbox_append's sequence */
    return hw_store_peek_seq(t, name, out);
}

/* ------------------------------------------------------------------------
 * Failed outbox messages (key: channel byte, be64 seq; by time: scope byte,
 * be64 ms, channel byte, be64 seq). Each entry has two time index entries,
 * scope 0 (every channel) and scope = its channel, so both listings are
 * range scans over one prefix byte. A retired entry (queued again) leaves
 * a marker under its key, HW_FAILED_MARK then be64 of the retirement time,
 * indexed under scope HW_FAILED_RETIRED only: a packed FailedEntry never
 * starts with a zero byte (field number 0 does not exist), so the two
 * cannot be confused.
 * ---------------------------------------------------------------------- */

#define HW_FAILED_TKEY 18u      /* scope, be64 time, channel, be64 seq */
#define HW_FAILED_RETIRED 0xffu /* the scope of retirement markers; no Channel value */
#define HW_FAILED_MARK 0x00u    /* a marker's first byte */
#define HW_FAILED_MARK_LEN 9u   /* HW_FAILED_MARK, be64 retirement time */

static void failed_tkey(hw_kb *k, unsigned scope, int64_t ms, Helpwire__V1__Channel ch, uint64_t seq)
{
    HW_KB_INIT(k);
    hw_kb_u8(k, scope);
    hw_kb_be64(k, ms > 0 ? (uint64_t)ms : 0);
    hw_kb_u8(k, (unsigned)ch);
    hw_kb_be64(k, seq);
}

static bool failed_channel_ok(Helpwire__V1__Channel ch)
{
    return ch != 0 && (unsigned)ch < HW_FAILED_RETIRED;
}

static bool failed_is_mark(const MDB_val *v)
{
    return v->mv_size == HW_FAILED_MARK_LEN && ((const unsigned char *)v->mv_data)[0] == HW_FAILED_MARK;
}

int hw_store_failed_put(hw_store_txn *w, const Helpwire__V1__FailedEntry *e)
{
    if (!w->writable || !e || !e->message || !failed_channel_ok(e->message->channel) || e->message->seq == 0)
        return HW_EINVALID;
    Helpwire__V1__Channel ch = e->message->channel;
    uint64_t seq = e->message->seq;
    hw_kb k;
    outbox_key(&k, ch, seq);
    int rc = hw_store__put_msg(w, HW_DB_OUTBOX_FAILED, k.b, k.n, &e->base, MDB_NOOVERWRITE);
    if (rc != HW_OK)
        return rc; /* HW_EEXISTS: listed, or retired (a marker) */
    for (unsigned scope = 0; scope < 2; scope++) {
        failed_tkey(&k, scope ? (unsigned)ch : 0, e->failed_unix_ms, ch, seq);
        if ((rc = hw_store__put(w, HW_DB_OUTBOX_FAILED_BY_TIME, k.b, k.n, "", 0, 0)) != HW_OK)
            return rc;
    }
    return HW_OK;
}

int hw_store_failed_get(hw_store_txn *t, Helpwire__V1__Channel channel, uint64_t seq, hw_arena *a,
                        Helpwire__V1__FailedEntry **out)
{
    if (!a || !out)
        return HW_EINVALID;
    hw_kb k;
    outbox_key(&k, channel, seq);
    MDB_val v;
    int rc = hw_store__get(t, HW_DB_OUTBOX_FAILED, k.b, k.n, &v);
    if (rc != HW_OK)
        return rc;
    if (failed_is_mark(&v))
        return HW_ENOTFOUND;
    return hw_records__unpack(&helpwire__v1__failed_entry__descriptor, a, &v, (ProtobufCMessage **)out);
}

/* Deletes the time index entry of scope, or reports a record without it. */
static int failed_tkey_del(hw_store_txn *w, unsigned scope, int64_t ms, Helpwire__V1__Channel ch,
                           uint64_t seq)
{
    hw_kb tk;
    failed_tkey(&tk, scope, ms, ch, seq);
    int rc = hw_store__del(w, HW_DB_OUTBOX_FAILED_BY_TIME, tk.b, tk.n);
    return rc == HW_ENOTFOUND ? HW_ECORRUPT : rc;
}

/* Removes (channel, seq), entry or marker, with its index entries; *was_mark
 * (may be NULL) says which it was. HW_ENOTFOUND when neither is there. */
static int failed_remove(hw_store_txn *w, Helpwire__V1__Channel channel, uint64_t seq, bool *was_mark)
{
    hw_kb k;
    outbox_key(&k, channel, seq);
    MDB_val v;
    int rc = hw_store__get(w, HW_DB_OUTBOX_FAILED, k.b, k.n, &v);
    if (rc != HW_OK)
        return rc;
    bool mark = failed_is_mark(&v);
    if (was_mark)
        *was_mark = mark;
    if (mark) {
        rc = failed_tkey_del(w, HW_FAILED_RETIRED, (int64_t)hw_be64_get((const unsigned char *)v.mv_data + 1),
                             channel, seq);
    } else {
        /* Only the failure time is needed; read it without an arena. */
        Helpwire__V1__FailedEntry *e = helpwire__v1__failed_entry__unpack(NULL, v.mv_size, v.mv_data);
        if (!e)
            return HW_ECORRUPT;
        int64_t failed_ms = e->failed_unix_ms;
        helpwire__v1__failed_entry__free_unpacked(e, NULL);
        rc = failed_tkey_del(w, 0, failed_ms, channel, seq);
        if (rc == HW_OK)
            rc = failed_tkey_del(w, (unsigned)channel, failed_ms, channel, seq);
    }
    if (rc != HW_OK)
        return rc;
    return hw_store__del(w, HW_DB_OUTBOX_FAILED, k.b, k.n);
}

int hw_store_failed_delete(hw_store_txn *w, Helpwire__V1__Channel channel, uint64_t seq)
{
    if (!w->writable || !failed_channel_ok(channel))
        return HW_EINVALID;
    hw_kb k;
    outbox_key(&k, channel, seq);
    MDB_val v;
    int rc = hw_store__get(w, HW_DB_OUTBOX_FAILED, k.b, k.n, &v);
    if (rc != HW_OK)
        return rc;
    if (failed_is_mark(&v))
        return HW_ENOTFOUND;
    return failed_remove(w, channel, seq, NULL);
}

int hw_store_failed_retire(hw_store_txn *w, Helpwire__V1__Channel channel, uint64_t seq,
                           int64_t retired_unix_ms)
{
    if (!w->writable || !failed_channel_ok(channel))
        return HW_EINVALID;
    int rc = hw_store_failed_delete(w, channel, seq);
    if (rc != HW_OK)
        return rc;
    unsigned char mark[HW_FAILED_MARK_LEN];
    mark[0] = HW_FAILED_MARK;
    hw_be64_put(mark + 1, retired_unix_ms > 0 ? (uint64_t)retired_unix_ms : 0);
    hw_kb k;
    outbox_key(&k, channel, seq);
    if ((rc = hw_store__put(w, HW_DB_OUTBOX_FAILED, k.b, k.n, mark, sizeof mark, 0)) != HW_OK)
        return rc;
    failed_tkey(&k, HW_FAILED_RETIRED, retired_unix_ms, channel, seq);
    return hw_store__put(w, HW_DB_OUTBOX_FAILED_BY_TIME, k.b, k.n, "", 0, 0);
}

typedef struct failed_collect {
    hw_arena *a;
    Helpwire__V1__FailedEntry **items;
    size_t n;
} failed_collect;

/* The (channel, seq) a time index key names. */
static int failed_tkey_parse(const MDB_val *k, Helpwire__V1__Channel *ch, uint64_t *seq)
{
    if (k->mv_size != HW_FAILED_TKEY)
        return HW_ECORRUPT;
    const unsigned char *p = k->mv_data;
    *ch = (Helpwire__V1__Channel)p[9];
    *seq = hw_be64_get(p + 10);
    return HW_OK;
}

static int failed_visit(hw_store_txn *t, void *arg, const MDB_val *k, const MDB_val *v)
{
    (void)v;
    failed_collect *fc = arg;
    Helpwire__V1__Channel ch;
    uint64_t seq;
    int rc = failed_tkey_parse(k, &ch, &seq);
    if (rc != HW_OK)
        return rc;
    rc = hw_store_failed_get(t, ch, seq, fc->a, &fc->items[fc->n]);
    if (rc == HW_ENOTFOUND)
        return HW_ECORRUPT; /* an index entry without its record */
    if (rc != HW_OK)
        return rc;
    fc->n++;
    return 1;
}

int hw_store_failed_list(hw_store_txn *t, Helpwire__V1__Channel channel, hw_store_cursor *cursor,
                         size_t limit, hw_arena *a, Helpwire__V1__FailedEntry ***out, size_t *n)
{
    if (!a || !out || !n || !cursor || limit == 0 || limit > HW_STORE_LIST_MAX ||
        (channel != 0 && !failed_channel_ok(channel)))
        return HW_EINVALID;
    failed_collect fc = {.a = a, .items = hw_arena_alloc(a, limit * sizeof(void *))};
    if (!fc.items)
        return HW_ENOMEM;
    unsigned char scope = (unsigned char)channel;
    int rc = hw_records__scan(t, HW_DB_OUTBOX_FAILED_BY_TIME, &scope, 1, 1, cursor, limit, failed_visit, &fc);
    if (rc != HW_OK)
        return rc;
    *out = fc.items;
    *n = fc.n;
    return HW_OK;
}

int hw_store_failed_count(hw_store_txn *t, Helpwire__V1__Channel channel, uint64_t *n)
{
    if (!n || (channel != 0 && !failed_channel_ok(channel)))
        return HW_EINVALID;
    *n = 0;
    unsigned char scope = (unsigned char)channel; /* the time index holds no marker under it */
    return hw_records__scan(t, HW_DB_OUTBOX_FAILED_BY_TIME, &scope, 1, 0, NULL, 0, count_visit, n);
}

typedef struct failed_prune {
    uint64_t cutoff;
    size_t max, n;
    Helpwire__V1__Channel *ch; /* [max] */
    uint64_t *seq;             /* [max] */
} failed_prune;

static int prune_visit(hw_store_txn *t, void *arg, const MDB_val *k, const MDB_val *v)
{
    (void)t;
    (void)v;
    failed_prune *fp = arg;
    if (k->mv_size != HW_FAILED_TKEY)
        return HW_ECORRUPT;
    if (hw_be64_get((const unsigned char *)k->mv_data + 1) >= fp->cutoff || fp->n == fp->max)
        return HW_STOP; /* the rest are younger */
    int rc = failed_tkey_parse(k, &fp->ch[fp->n], &fp->seq[fp->n]);
    if (rc != HW_OK)
        return rc;
    fp->n++;
    return 1;
}

int hw_store_failed_prune(hw_store_txn *w, int64_t cutoff_unix_ms, size_t max_delete, size_t *deleted)
{
    if (deleted)
        *deleted = 0;
    if (!w->writable || max_delete == 0 || max_delete > HW_STORE_LIST_MAX)
        return HW_EINVALID;
    if (cutoff_unix_ms <= 0)
        return HW_OK;
    hw_arena *a = w->arena;
    failed_prune pr = {.cutoff = (uint64_t)cutoff_unix_ms, .max = max_delete};
    if (a) {
        pr.ch = hw_arena_alloc(a, max_delete * sizeof *pr.ch);
        pr.seq = hw_arena_alloc(a, max_delete * sizeof *pr.seq);
    }
    if (!pr.ch || !pr.seq)
        return HW_ENOMEM;
    /* Entries by failure time, then markers by retirement time, oldest
     * first; collected before deleting: a scan's cursor must not see its
     * database change under it. */
    static const unsigned char scopes[2] = {0, HW_FAILED_RETIRED};
    int rc = HW_OK;
    size_t entries = 0;
    for (int s = 0; s < 2 && rc == HW_OK && pr.n < pr.max; s++) {
        size_t from = pr.n;
        rc = hw_records__scan(w, HW_DB_OUTBOX_FAILED_BY_TIME, &scopes[s], 1, 0, NULL, 0, prune_visit, &pr);
        for (size_t i = from; rc == HW_OK && i < pr.n; i++) {
            bool mark = false;
            rc = failed_remove(w, pr.ch[i], pr.seq[i], &mark);
            if (rc == HW_OK && !mark)
                entries++;
        }
    }
    if (rc == HW_OK && deleted)
        *deleted = entries;
    return rc;
}

/* ------------------------------------------------------------------------
 * Dedupe and idempotency keys
 * ---------------------------------------------------------------------- */

static int dedupe_key(hw_kb *k, Helpwire__V1__Channel ch, const char *message_id)
{
    if (!id_ok(message_id))
        return HW_EINVALID;
    HW_KB_INIT(k);
    hw_kb_u8(k, (unsigned)ch);
    hw_kb_str(k, message_id);
    return k->overflow ? HW_EINVALID : HW_OK;
}

/* A dedupe record's value: DEDUPE_MARK, the routing time (8 bytes, big
 * endian, unix ms), then the reply. Records of earlier versions hold the
 * reply alone; a protobuf message never starts with a zero byte (field 0
 * does not exist), so the mark tells them apart. */
#define DEDUPE_MARK 0x00
#define DEDUPE_HEAD 9

static int dedupe_has_time(const MDB_val *v)
{
    return v->mv_size >= DEDUPE_HEAD && ((const unsigned char *)v->mv_data)[0] == DEDUPE_MARK;
}

static int64_t dedupe_time(const MDB_val *v)
{
    return (int64_t)hw_be64_get((const unsigned char *)v->mv_data + 1);
}

/* Writes key -> (mark, created, reply) with flags. */
static int dedupe_write(hw_store_txn *w, const void *key, size_t kl, const void *reply, size_t reply_len,
                        int64_t created, unsigned flags)
{
    unsigned char *v;
    int rc = hw_store__reserve(w, HW_DB_DEDUPE, key, kl, DEDUPE_HEAD + reply_len, flags, (void **)&v);
    if (rc != HW_OK)
        return rc;
    v[0] = DEDUPE_MARK;
    hw_be64_put(v + 1, (uint64_t)created);
    if (reply_len)
        memcpy(v + DEDUPE_HEAD, reply, reply_len);
    return HW_OK;
}

int hw_store_dedupe_put(hw_store_txn *w, Helpwire__V1__Channel channel, const char *message_id,
                        const void *reply, size_t reply_len, int64_t created_unix_ms)
{
    hw_kb k;
    int rc = dedupe_key(&k, channel, message_id);
    if (rc != HW_OK || (!reply && reply_len) || created_unix_ms < 0)
        return HW_EINVALID;
    return dedupe_write(w, k.b, k.n, reply, reply_len, created_unix_ms, MDB_NOOVERWRITE);
}

int hw_store_dedupe_sweep(hw_store_txn *w, hw_dedupe_sweep *sw, size_t max_visit, int64_t cutoff_unix_ms,
                          int64_t now_unix_ms, size_t *deleted)
{
    if (deleted)
        *deleted = 0;
    MDB_cursor *c;
    int rc = hw_store__cursor(w, HW_DB_DEDUPE, &c);
    if (rc != HW_OK)
        return rc;
    MDB_val k, v;
    /* Past the last key visited (skipped if it is still there). */
    int mrc =
        sw->started ? seek_after(c, sw->key, sw->key_len, &k, &v) : mdb_cursor_get(c, &k, &v, MDB_FIRST);
    size_t n_deleted = 0;
    for (size_t visited = 0; visited < max_visit; visited++) {
        if (mrc == MDB_NOTFOUND) { /* the end: the next sweep starts over */
            sw->started = 0;
            sw->key_len = 0;
            sw->passes++;
            rc = HW_OK;
            goto out;
        }
        if (mrc != 0) {
            rc = hw_store__err(w, mrc);
            goto out;
        }
        if (k.mv_size > sizeof sw->key) {
            rc = HW_ECORRUPT;
            goto out;
        }
        memcpy(sw->key, k.mv_data, k.mv_size);
        sw->key_len = k.mv_size;
        sw->started = 1;
        bool changed = true;
        if (!dedupe_has_time(&v)) {
            /* A record of an earlier version: it gets now as its time. The
             * reply is copied first, the rewrite may move it. */
            size_t len = v.mv_size;
            void *copy = hw_arena_alloc(hw_store_txn_arena(w), len ? len : 1);
            if (!copy) {
                rc = HW_ENOMEM;
                goto out;
            }
            memcpy(copy, v.mv_data, len);
            rc = dedupe_write(w, sw->key, sw->key_len, copy, len, now_unix_ms, 0);
            if (rc != HW_OK)
                goto out;
        } else if (dedupe_time(&v) < cutoff_unix_ms) {
            rc = hw_store__cursor_del(w, HW_DB_DEDUPE, c);
            if (rc != HW_OK)
                goto out;
            n_deleted++;
        } else {
            changed = false;
        }
        /* After a change the cursor is positioned afresh (a write may have
         * moved its page); else it steps on. */
        mrc = changed ? seek_after(c, sw->key, sw->key_len, &k, &v) : mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    rc = HW_OK;
out:
    mdb_cursor_close(c);
    if (deleted)
        *deleted = n_deleted;
    return rc;
}

typedef struct dedupe_erase_scan {
    int (*match)(void *arg, const void *reply, size_t reply_len);
    void *arg;
    hw_arena *a;
    scrub_list keys; /* the matching keys (values unused) */
} dedupe_erase_scan;

static int dedupe_erase_visit(hw_store_txn *t, void *arg, const MDB_val *k, const MDB_val *v)
{
    dedupe_erase_scan *d = arg;
    const unsigned char *r = v->mv_data;
    size_t rl = v->mv_size;
    if (dedupe_has_time(v)) {
        r += DEDUPE_HEAD;
        rl -= DEDUPE_HEAD;
    }
    int m = d->match(d->arg, r, rl);
    if (m < 0)
        return m;
    if (!m)
        return 0;
    MDB_val empty = {.mv_size = HW_TLOG_HDR, .mv_data = (void *)"\0\0\0\0\0\0\0\0\0"};
    return scrub_collect(t, &d->keys, k, &empty);
}

int hw_store_dedupe_erase(hw_store_txn *w, int (*match)(void *arg, const void *reply, size_t reply_len),
                          void *arg, size_t *removed)
{
    if (removed)
        *removed = 0;
    if (!w || !w->writable || !match)
        return HW_EINVALID;
    dedupe_erase_scan d = {.match = match, .arg = arg, .keys = {.a = w->arena}};
    int rc = hw_records__scan(w, HW_DB_DEDUPE, NULL, 0, 0, NULL, 0, dedupe_erase_visit, &d);
    if (rc != HW_OK)
        return rc;
    for (size_t i = 0; i < d.keys.n; i++) {
        if ((rc = hw_store__wipe_del(w, HW_DB_DEDUPE, d.keys.e[i].key, d.keys.e[i].kl)) != HW_OK)
            return rc;
    }
    if (removed)
        *removed = d.keys.n;
    return HW_OK;
}

int hw_store_dedupe_get(hw_store_txn *t, Helpwire__V1__Channel channel, const char *message_id, hw_arena *a,
                        void **reply, size_t *reply_len)
{
    hw_kb k;
    int rc = dedupe_key(&k, channel, message_id);
    if (rc != HW_OK || !a || !reply || !reply_len)
        return HW_EINVALID;
    MDB_val v;
    if ((rc = hw_store__get(t, HW_DB_DEDUPE, k.b, k.n, &v)) != HW_OK)
        return rc;
    if (dedupe_has_time(&v)) {
        v.mv_data = (unsigned char *)v.mv_data + DEDUPE_HEAD;
        v.mv_size -= DEDUPE_HEAD;
    }
    void *copy = hw_arena_alloc(a, v.mv_size);
    if (!copy)
        return HW_ENOMEM;
    if (v.mv_size)
        memcpy(copy, v.mv_data, v.mv_size);
    *reply = copy;
    *reply_len = v.mv_size;
    return HW_OK;
}

int hw_store_idempotency_put(hw_store_txn *w, const char *key, const char *ticket_id)
{
    if (!id_ok(key) || !id_ok(ticket_id))
        return HW_EINVALID;
    return hw_store__put(w, HW_DB_IDEMPOTENCY, key, strlen(key), ticket_id, strlen(ticket_id),
                         MDB_NOOVERWRITE);
}

int hw_store_idempotency_get(hw_store_txn *t, const char *key, hw_arena *a, char **ticket_id)
{
    if (!id_ok(key) || !a || !ticket_id)
        return HW_EINVALID;
    MDB_val v;
    int rc = hw_store__get(t, HW_DB_IDEMPOTENCY, key, strlen(key), &v);
    if (rc != HW_OK)
        return rc;
    *ticket_id = hw_arena_strndup(a, v.mv_data, v.mv_size);
    return *ticket_id ? HW_OK : HW_ENOMEM;
}

/* ------------------------------------------------------------------------
 * Counts
 * ---------------------------------------------------------------------- */

int hw_store_counts_get(hw_store_txn *t, hw_store_counts *c)
{
    if (!c)
        return HW_EINVALID;
    memset(c, 0, sizeof(*c));
    int rc;
    if ((rc = hw_store__count(t, HW_DB_CUSTOMERS, &c->customers)) != HW_OK ||
        (rc = hw_store__count(t, HW_DB_AGENTS, &c->agents)) != HW_OK ||
        (rc = hw_store__count(t, HW_DB_TICKETS, &c->tickets)) != HW_OK ||
        (rc = hw_store__count(t, HW_DB_ARTICLES, &c->articles)) != HW_OK ||
        (rc = hw_store__count(t, HW_DB_FAQS, &c->faqs)) != HW_OK ||
        (rc = hw_store__count(t, HW_DB_SURVEYS, &c->surveys)) != HW_OK ||
        (rc = hw_store__count(t, HW_DB_OUTBOX, &c->outbox_backlog)) != HW_OK)
        return rc;
    static const Helpwire__V1__TicketStatus open_states[] = {
        HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_UNSPECIFIED,
        HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_OPEN,
        HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_PENDING,
        HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_ESCALATED,
    };
    for (size_t i = 0; i < sizeof(open_states) / sizeof(open_states[0]); i++) {
        unsigned char p = (unsigned char)open_states[i];
        if ((rc = hw_records__scan(t, HW_DB_TICKETS_BY_STATUS, &p, 1, 0, NULL, 0, count_visit,
                                   &c->open_tickets)) != HW_OK)
            return rc;
    }
    return HW_OK;
}
