/*
 * check: the store's consistency check (contract: check.h).
 *
 * One pass over every record of every indexed kind (the kind tables of
 * records_internal.h): each record must decode, carry its own id, and find
 * each of its index entries pointing back at it; the entries found are
 * counted per index database. Then each index database must hold exactly
 * that many entries, so an entry no record needs is caught without a
 * second pass over the indexes. Read-only: it never repairs.
 */
#include "server/store/check.h"

#include <stdio.h>
#include <string.h>

#include "server/store/records_internal.h"

typedef struct check_state {
    const hw_kind *kind; /* or NULL for a hashed kind */
    const hw_hashed_kind *hk;
    hw_arena *a;
    uint64_t expected[HW_DB_COUNT];
    char *err;
    size_t errlen;
} check_state;

static int check_keys(hw_store_txn *t, check_state *cs, const hw_ikeys *ks, const char *id)
{
    size_t idl = strlen(id);
    for (size_t i = 0; i < ks->n; i++) {
        MDB_val v;
        int rc = hw_store__get(t, ks->k[i].db, ks->k[i].data, ks->k[i].len, &v);
        if (rc == HW_OK && (v.mv_size != idl || memcmp(v.mv_data, id, idl) != 0))
            rc = HW_ECORRUPT;
        if (rc != HW_OK) {
            if (cs->err)
                snprintf(cs->err, cs->errlen, "record %s: index entry in db %d %s", id, ks->k[i].db,
                         rc == HW_ENOTFOUND ? "missing" : "wrong");
            return rc == HW_ENOTFOUND ? HW_ECORRUPT : rc;
        }
        cs->expected[ks->k[i].db]++;
    }
    return HW_OK;
}

static int check_visit(hw_store_txn *t, void *arg, const MDB_val *k, const MDB_val *v)
{
    check_state *cs = arg;
    hw_arena_reset(cs->a);
    char *id = hw_arena_strndup(cs->a, k->mv_data, k->mv_size);
    hw_ikeys ks;
    int rc;
    if (!id)
        return HW_ENOMEM;
    if ((rc = hw_ikeys_init(&ks, cs->a)) != HW_OK)
        return rc;
    if (cs->kind) {
        ProtobufCMessage *m;
        if ((rc = hw_records__unpack(cs->kind->desc, cs->a, v, &m)) != HW_OK)
            goto corrupt;
        const char *mid = cs->kind->id(m);
        if (!mid || strcmp(mid, id) != 0) {
            rc = HW_ECORRUPT;
            goto corrupt;
        }
        cs->kind->keys(m, &ks);
    } else {
        ProtobufCBinaryData msg, hash;
        ProtobufCMessage *m;
        if ((rc = hw_records__wrapper_unpack(cs->a, v, &msg, &hash)) != HW_OK)
            goto corrupt;
        MDB_val mv = {.mv_size = msg.len, .mv_data = msg.data};
        if ((rc = hw_records__unpack(cs->hk->desc, cs->a, &mv, &m)) != HW_OK)
            goto corrupt;
        hw_records__hashed_keys(cs->hk, m, hash.data, hash.len, &ks);
    }
    if (ks.err)
        return ks.err;
    rc = check_keys(t, cs, &ks, id);
    return rc == HW_OK ? 1 : rc;
corrupt:
    if (cs->err)
        snprintf(cs->err, cs->errlen, "record %s does not decode", id);
    return rc;
}

int hw_store_check(hw_store_txn *t, char *err, size_t errlen)
{
    static const int index_dbs[] = {
        HW_DB_IDENTITIES,          HW_DB_AGENTS_BY_SKILL,     HW_DB_TICKETS_BY_NUMBER,
        HW_DB_TICKETS_BY_STATUS,   HW_DB_TICKETS_BY_QUEUE,    HW_DB_TICKETS_BY_QUEUE_STATUS,
        HW_DB_TICKETS_BY_ASSIGNEE, HW_DB_TICKETS_BY_CUSTOMER, HW_DB_TICKETS_BY_PRIORITY,
        HW_DB_ARTICLES_BY_LOCALE,  HW_DB_FAQS_BY_LOCALE,      HW_DB_SURVEYS_BY_TOKEN,
        HW_DB_SURVEYS_BY_SENT,     HW_DB_TOKENS_BY_HASH,
    };
    static const hw_hashed_kind *const hashed[] = {&HW_SURVEYS, &HW_TOKENS};
    check_state cs = {.a = hw_arena_create(0), .err = err, .errlen = errlen};
    int rc = HW_OK;
    if (err && errlen)
        err[0] = '\0';
    if (!cs.a)
        return HW_ENOMEM;
    for (size_t i = 0; i < sizeof(HW_KINDS) / sizeof(HW_KINDS[0]); i++) {
        if (!HW_KINDS[i].keys)
            continue;
        cs.kind = &HW_KINDS[i];
        cs.hk = NULL;
        if ((rc = hw_records__scan(t, HW_KINDS[i].db, NULL, 0, 0, NULL, 0, check_visit, &cs)) != HW_OK)
            goto out;
    }
    for (size_t i = 0; i < sizeof(hashed) / sizeof(hashed[0]); i++) {
        cs.kind = NULL;
        cs.hk = hashed[i];
        if ((rc = hw_records__scan(t, hashed[i]->db, NULL, 0, 0, NULL, 0, check_visit, &cs)) != HW_OK)
            goto out;
    }
    for (size_t i = 0; i < sizeof(index_dbs) / sizeof(index_dbs[0]); i++) {
        uint64_t n;
        if ((rc = hw_store__count(t, index_dbs[i], &n)) != HW_OK)
            goto out;
        if (n != cs.expected[index_dbs[i]]) {
            if (err)
                snprintf(err, errlen, "index db %d holds %llu entries, records need %llu", index_dbs[i],
                         (unsigned long long)n, (unsigned long long)cs.expected[index_dbs[i]]);
            rc = HW_ECORRUPT;
            goto out;
        }
    }
    {
        /* Durable timers: one entry per timer in each of its two databases. */
        uint64_t by_due, by_subject;
        if ((rc = hw_store__count(t, HW_DB_TIMERS_BY_DUE, &by_due)) != HW_OK ||
            (rc = hw_store__count(t, HW_DB_TIMERS_BY_SUBJECT, &by_subject)) != HW_OK)
            goto out;
        if (by_due != by_subject) {
            if (err)
                snprintf(err, errlen, "timers: %llu by due time, %llu by subject", (unsigned long long)by_due,
                         (unsigned long long)by_subject);
            rc = HW_ECORRUPT;
            goto out;
        }
    }
out:
    hw_arena_destroy(cs.a);
    return rc;
}
