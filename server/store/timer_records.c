/*
 * timer_records: the store side of durable timers (records.h, "durable
 * timers"): two databases written together, one ordered by due time for
 * the timer thread, one keyed by (kind, subject) so that a timer can be
 * found, replaced and cancelled without knowing its due time. The domain
 * meaning of kinds, subjects and args is server/domain/timers.h's.
 */
#include <stdbool.h>
#include <string.h>

#include "server/store/records_internal.h"

#define TIMER_SUBJECT_MAX 256

static bool timer_ok(unsigned kind, const char *subject)
{
    size_t n = subject ? strlen(subject) : 0;
    return kind >= 1 && kind <= 255 && n >= 1 && n <= TIMER_SUBJECT_MAX;
}

static void subject_key(hw_kb *k, unsigned kind, const char *subject)
{
    HW_KB_INIT(k);
    hw_kb_u8(k, kind);
    hw_kb_str(k, subject);
}

static void due_key(hw_kb *k, int64_t due_ms, unsigned kind, const char *subject)
{
    HW_KB_INIT(k);
    hw_kb_be64(k, due_ms > 0 ? (uint64_t)due_ms : 0);
    hw_kb_u8(k, kind);
    hw_kb_str(k, subject);
}

int hw_store_timer_get(hw_store_txn *t, unsigned kind, const char *subject, uint32_t *arg, int64_t *due_ms)
{
    if (!timer_ok(kind, subject))
        return HW_EINVALID;
    hw_kb k;
    subject_key(&k, kind, subject);
    MDB_val v;
    int rc = hw_store__get(t, HW_DB_TIMERS_BY_SUBJECT, k.b, k.n, &v);
    if (rc != HW_OK)
        return rc;
    if (v.mv_size != 12)
        return HW_ECORRUPT;
    if (due_ms)
        *due_ms = (int64_t)hw_be64_get(v.mv_data);
    if (arg)
        *arg = hw_be32_get((const unsigned char *)v.mv_data + 8);
    return HW_OK;
}

int hw_store_timer_delete(hw_store_txn *w, unsigned kind, const char *subject)
{
    if (!w->writable || !timer_ok(kind, subject))
        return HW_EINVALID;
    int64_t due;
    int rc = hw_store_timer_get(w, kind, subject, NULL, &due);
    if (rc != HW_OK)
        return rc;
    hw_kb k;
    due_key(&k, due, kind, subject);
    if ((rc = hw_store__del(w, HW_DB_TIMERS_BY_DUE, k.b, k.n)) != HW_OK)
        return rc == HW_ENOTFOUND ? HW_ECORRUPT : rc;
    subject_key(&k, kind, subject);
    return hw_store__del(w, HW_DB_TIMERS_BY_SUBJECT, k.b, k.n);
}

int hw_store_timer_put(hw_store_txn *w, unsigned kind, const char *subject, uint32_t arg, int64_t due_ms)
{
    if (!w->writable || !timer_ok(kind, subject))
        return HW_EINVALID;
    if (due_ms < 0)
        due_ms = 0;
    int rc = hw_store_timer_delete(w, kind, subject);
    if (rc != HW_OK && rc != HW_ENOTFOUND)
        return rc;
    unsigned char v[12];
    hw_be64_put(v, (uint64_t)due_ms);
    hw_be32_put(v + 8, arg);
    hw_kb k;
    subject_key(&k, kind, subject);
    if ((rc = hw_store__put(w, HW_DB_TIMERS_BY_SUBJECT, k.b, k.n, v, sizeof v, 0)) != HW_OK)
        return rc;
    due_key(&k, due_ms, kind, subject);
    return hw_store__put(w, HW_DB_TIMERS_BY_DUE, k.b, k.n, v + 8, 4, 0);
}

typedef struct due_collect {
    int64_t until_ms;
    hw_arena *a;
    hw_store_timer *items;
    size_t n;
} due_collect;

static int due_visit(hw_store_txn *t, void *arg, const MDB_val *k, const MDB_val *v)
{
    (void)t;
    due_collect *c = arg;
    const unsigned char *kb = k->mv_data;
    if (k->mv_size < 10 || v->mv_size != 4)
        return HW_ECORRUPT;
    int64_t due = (int64_t)hw_be64_get(kb);
    if (due > c->until_ms)
        return HW_STOP;
    hw_store_timer *it = &c->items[c->n++];
    it->due_ms = due;
    it->kind = kb[8];
    size_t sl = k->mv_size - 9;
    if (!(it->subject = hw_arena_alloc(c->a, sl + 1)))
        return HW_ENOMEM;
    memcpy(it->subject, kb + 9, sl);
    it->subject[sl] = '\0';
    it->arg = hw_be32_get(v->mv_data);
    return 1;
}

int hw_store_timers_due(hw_store_txn *t, int64_t until_ms, size_t limit, hw_arena *a, hw_store_timer **out,
                        size_t *n)
{
    if (!a || !out || !n || limit == 0 || limit > HW_STORE_LIST_MAX)
        return HW_EINVALID;
    *n = 0;
    due_collect c = {
        .until_ms = until_ms, .a = a, .items = hw_arena_alloc(a, limit * sizeof(hw_store_timer))};
    if (!c.items)
        return HW_ENOMEM;
    hw_store_cursor cur;
    memset(&cur, 0, sizeof cur);
    int rc = hw_records__scan(t, HW_DB_TIMERS_BY_DUE, NULL, 0, 0, &cur, limit, due_visit, &c);
    if (rc != HW_OK)
        return rc;
    *out = c.items;
    *n = c.n;
    return HW_OK;
}

static int first_visit(hw_store_txn *t, void *arg, const MDB_val *k, const MDB_val *v)
{
    (void)t;
    (void)v;
    if (k->mv_size < 10)
        return HW_ECORRUPT;
    *(int64_t *)arg = (int64_t)hw_be64_get(k->mv_data);
    return HW_STOP;
}

int hw_store_timer_earliest(hw_store_txn *t, int64_t *due_ms)
{
    int64_t due = -1;
    int rc = hw_records__scan(t, HW_DB_TIMERS_BY_DUE, NULL, 0, 0, NULL, 0, first_visit, &due);
    if (rc != HW_OK)
        return rc;
    if (due < 0)
        return HW_ENOTFOUND;
    *due_ms = due;
    return HW_OK;
}

int hw_store_timer_count(hw_store_txn *t, uint64_t *n)
{
    return hw_store__count(t, HW_DB_TIMERS_BY_DUE, n);
}
