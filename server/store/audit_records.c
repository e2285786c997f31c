/*
 * audit_records: the store side of the audit log (records.h, "the audit
 * log"): one database, be64 seq -> packed helpwire.v1.AuditEvent, appended
 * with numbers of the "audit" sequence, listed newest first with filters,
 * pruned oldest first. What is recorded is server/domain/audit.h's. Also
 * the prune of the last-denied records (kv "audit.denied") that the
 * retention sweep runs.
 */
#include <string.h>

#include "server/store/records_internal.h"

#define AUDIT_SEQ "audit"
#define AUDIT_ACTION_MAX 256u
#define AUDIT_PACKED_MAX (64u * 1024u)
#define AUDIT_CURSOR_LEN 9u /* db byte + be64 seq */

/* The last entry's (seq, time), both 0 when the log is empty. */
static int audit_last(hw_store_txn *t, uint64_t *seq, int64_t *at)
{
    *seq = 0;
    *at = 0;
    MDB_cursor *c = NULL;
    int rc = hw_store__cursor(t, HW_DB_AUDIT, &c);
    if (rc != HW_OK)
        return rc;
    MDB_val k, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    if (mrc == MDB_NOTFOUND) {
        rc = HW_OK;
        goto out;
    }
    if (mrc != 0) {
        rc = hw_store__err(t, mrc);
        goto out;
    }
    if (k.mv_size != 8) {
        rc = HW_ECORRUPT;
        goto out;
    }
    Helpwire__V1__AuditEvent *e =
        helpwire__v1__audit_event__unpack(NULL, v.mv_size, (const uint8_t *)v.mv_data);
    if (!e) {
        rc = HW_ECORRUPT;
        goto out;
    }
    *seq = hw_be64_get(k.mv_data);
    *at = e->at_unix_ms;
    helpwire__v1__audit_event__free_unpacked(e, NULL);
    rc = HW_OK;
out:
    mdb_cursor_close(c);
    return rc;
}

int hw_store_audit_append(hw_store_txn *w, Helpwire__V1__AuditEvent *e)
{
    if (!w || !w->writable || !e || !e->action || !e->action[0] || strlen(e->action) > AUDIT_ACTION_MAX)
        return HW_EINVALID;
    uint64_t last_seq, seq;
    int64_t last_at;
    int rc = audit_last(w, &last_seq, &last_at);
    if (rc != HW_OK)
        return rc;
    if ((rc = hw_store_next_seq(w, AUDIT_SEQ, 1, &seq)) != HW_OK)
        return rc;
    if (seq <= last_seq) /* the sequence is behind its entries */
        return HW_ECORRUPT;
    if (e->at_unix_ms < last_at)
        e->at_unix_ms = last_at;
    e->seq = seq;
    if (protobuf_c_message_get_packed_size(&e->base) > AUDIT_PACKED_MAX)
        return HW_EINVALID;
    unsigned char k[8];
    hw_be64_put(k, seq);
    return hw_store__put_msg(w, HW_DB_AUDIT, k, sizeof k, &e->base, MDB_NOOVERWRITE);
}

int hw_store_audit_get(hw_store_txn *t, uint64_t seq, hw_arena *a, Helpwire__V1__AuditEvent **out)
{
    if (!t || !a || !out || seq == 0)
        return HW_EINVALID;
    unsigned char k[8];
    hw_be64_put(k, seq);
    MDB_val v;
    int rc = hw_store__get(t, HW_DB_AUDIT, k, sizeof k, &v);
    if (rc != HW_OK)
        return rc;
    return hw_records__unpack(&helpwire__v1__audit_event__descriptor, a, &v, (ProtobufCMessage **)out);
}

static int str_eq(const char *want, const char *have)
{
    return !want || !want[0] || strcmp(want, have ? have : "") == 0;
}

static int action_ok(const char *want, const char *have)
{
    if (!want || !want[0])
        return 1;
    size_t n = strlen(want);
    if (!have)
        have = "";
    if (want[n - 1] == '.')
        return strncmp(want, have, n) == 0;
    return strcmp(want, have) == 0;
}

/* 1: passes; 0: skip; HW_STOP: this and every older entry fail (from). */
static int audit_pass(const hw_audit_filter *f, const Helpwire__V1__AuditEvent *e)
{
    if (!f)
        return 1;
    if (f->from_unix_ms > 0 && e->at_unix_ms < f->from_unix_ms)
        return HW_STOP;
    if (f->to_unix_ms > 0 && e->at_unix_ms >= f->to_unix_ms)
        return 0;
    return action_ok(f->action, e->action) && str_eq(f->actor, e->actor) && str_eq(f->target, e->target);
}

int hw_store_audit_list(hw_store_txn *t, const hw_audit_filter *f, hw_store_cursor *cursor, size_t limit,
                        size_t max_scan, hw_arena *a, Helpwire__V1__AuditEvent ***out, size_t *n)
{
    if (!t || !cursor || !a || !out || !n || limit == 0 || limit > HW_STORE_LIST_MAX)
        return HW_EINVALID;
    if (cursor->len != 0 && (cursor->len != AUDIT_CURSOR_LEN || cursor->key[0] != (unsigned char)HW_DB_AUDIT))
        return HW_EINVALID;
    *n = 0;
    Helpwire__V1__AuditEvent **items = hw_arena_alloc(a, limit * sizeof(void *));
    if (!items)
        return HW_ENOMEM;
    MDB_cursor *c = NULL;
    int rc = hw_store__cursor(t, HW_DB_AUDIT, &c);
    if (rc != HW_OK)
        return rc;
    MDB_val k, v;
    int mrc;
    if (cursor->len == 0) {
        mrc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    } else {
        /* The entries before the cursor's seq. */
        k = (MDB_val){.mv_size = 8, .mv_data = cursor->key + 1};
        mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        if (mrc == 0)
            mrc = mdb_cursor_get(c, &k, &v, MDB_PREV);
        else if (mrc == MDB_NOTFOUND)
            mrc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    }
    cursor->len = 0;
    size_t taken = 0, scanned = 0;
    while (mrc == 0) {
        if (k.mv_size != 8) {
            rc = HW_ECORRUPT;
            goto out;
        }
        ProtobufCMessage *m;
        if ((rc = hw_records__unpack(&helpwire__v1__audit_event__descriptor, a, &v, &m)) != HW_OK)
            goto out;
        Helpwire__V1__AuditEvent *e = (Helpwire__V1__AuditEvent *)m;
        int pass = audit_pass(f, e);
        if (pass == HW_STOP)
            break;
        if (pass)
            items[taken++] = e;
        scanned++;
        if (taken == limit || (max_scan && scanned >= max_scan && taken < limit)) {
            unsigned char here[8];
            memcpy(here, k.mv_data, 8);
            mrc = mdb_cursor_get(c, &k, &v, MDB_PREV);
            if (mrc == 0) {
                /* More to read; with a from bound, the next page ends at
                 * once when the next entry is older. */
                cursor->key[0] = (unsigned char)HW_DB_AUDIT;
                memcpy(cursor->key + 1, here, 8);
                cursor->len = AUDIT_CURSOR_LEN;
            }
            break;
        }
        mrc = mdb_cursor_get(c, &k, &v, MDB_PREV);
    }
    rc = mrc == 0 || mrc == MDB_NOTFOUND ? HW_OK : hw_store__err(t, mrc);
    if (rc == HW_OK) {
        *out = items;
        *n = taken;
    }
out:
    mdb_cursor_close(c);
    return rc;
}

int hw_store_audit_count(hw_store_txn *t, uint64_t *n)
{
    if (!t || !n)
        return HW_EINVALID;
    return hw_store__count(t, HW_DB_AUDIT, n);
}

int hw_store_audit_prune(hw_store_txn *w, int64_t cutoff_unix_ms, size_t max_delete, size_t *deleted)
{
    if (deleted)
        *deleted = 0;
    if (!w || !w->writable || max_delete == 0 || max_delete > HW_STORE_LIST_MAX)
        return HW_EINVALID;
    if (cutoff_unix_ms <= 0)
        return HW_OK;
    MDB_cursor *c = NULL;
    int rc = hw_store__cursor(w, HW_DB_AUDIT, &c);
    if (rc != HW_OK)
        return rc;
    MDB_val k, v;
    size_t gone = 0;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    while (mrc == 0 && gone < max_delete) {
        Helpwire__V1__AuditEvent *e =
            helpwire__v1__audit_event__unpack(NULL, v.mv_size, (const uint8_t *)v.mv_data);
        if (!e) {
            rc = HW_ECORRUPT;
            goto out;
        }
        int64_t at = e->at_unix_ms;
        helpwire__v1__audit_event__free_unpacked(e, NULL);
        if (at >= cutoff_unix_ms)
            break; /* times never go backwards: the rest are younger */
        if ((rc = hw_store__cursor_del(w, HW_DB_AUDIT, c)) != HW_OK)
            goto out;
        gone++;
        mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    }
    rc = mrc == 0 || mrc == MDB_NOTFOUND ? HW_OK : hw_store__err(w, mrc);
    if (deleted)
        *deleted = gone;
out:
    mdb_cursor_close(c);
    return rc;
}

/* ---- the last-denied records ---------------------------------------------- */

typedef struct denied_scan {
    int64_t cutoff;
    size_t max_visit, visited;
    hw_arena *a;
    void **keys; /* [max_visit], to delete after the scan */
    size_t *lens, n;
    hw_audit_denied_pos *pos;
} denied_scan;

static int denied_each(void *arg, const void *key, size_t kl, const void *val, size_t vl)
{
    denied_scan *d = arg;
    if (kl > HW_STORE_AUDIT_DENIED_KEY_MAX)
        return HW_EINVALID; /* not written by auth.c */
    d->visited++;
    memcpy(d->pos->key, key, kl);
    d->pos->len = kl;
    int64_t last = 0;
    if (vl == 8)
        for (int i = 0; i < 8; i++)
            last = (int64_t)((uint64_t)last << 8 | ((const unsigned char *)val)[i]);
    if (vl != 8 || last < d->cutoff) {
        if (!(d->keys[d->n] = hw_arena_alloc(d->a, kl ? kl : 1)))
            return HW_ENOMEM;
        memcpy(d->keys[d->n], key, kl);
        d->lens[d->n++] = kl;
    }
    return d->visited == d->max_visit ? HW_STOP : 0;
}

int hw_store_audit_denied_prune(hw_store_txn *w, hw_audit_denied_pos *pos, int64_t cutoff_unix_ms,
                                size_t max_visit, size_t *deleted)
{
    if (deleted)
        *deleted = 0;
    if (!w || !w->writable || !pos || pos->len > HW_STORE_AUDIT_DENIED_KEY_MAX || max_visit == 0 ||
        max_visit > HW_STORE_LIST_MAX)
        return HW_EINVALID;
    if (cutoff_unix_ms <= 0)
        return HW_OK;
    hw_arena *a = hw_store_txn_arena(w);
    denied_scan d = {.cutoff = cutoff_unix_ms, .max_visit = max_visit, .a = a, .pos = pos};
    d.keys = hw_arena_alloc(a, max_visit * sizeof *d.keys);
    d.lens = hw_arena_alloc(a, max_visit * sizeof *d.lens);
    if (!d.keys || !d.lens)
        return HW_ENOMEM;
    hw_audit_denied_pos from = *pos;
    int rc = hw_store_kv_foreach_after(w, HW_STORE_AUDIT_DENIED_NS, from.len ? from.key : NULL, from.len,
                                       denied_each, &d);
    if (rc != HW_OK) {
        *pos = from;
        return rc;
    }
    if (d.visited < max_visit)
        pos->len = 0; /* the end: the next pass starts over */
    for (size_t i = 0; i < d.n; i++) {
        if ((rc = hw_store_kv_delete(w, HW_STORE_AUDIT_DENIED_NS, d.keys[i], d.lens[i])) != HW_OK) {
            *pos = from;
            return rc;
        }
    }
    if (deleted)
        *deleted = d.n;
    return HW_OK;
}
