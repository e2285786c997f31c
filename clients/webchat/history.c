/*
 * history: the web chat's durable conversations in LMDB (see history.h;
 * the environment is opened, and its numbers encoded, as lmdb_env.h says
 * for all the bridges' stores).
 *
 * Tables: "entries" (visitor NUL id-big-endian -> flags, key length, key,
 * JSON), "keys" (dedupe key -> id-big-endian), "meta" ("next" -> the next
 * id; "n:<visitor>" -> the visitor's entry count, so trimming costs one
 * cursor step, not a count).
 */
#include "clients/webchat/history.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "clients/lib/lmdb_env.h"

#define FLAG_REPLY 1
#define MAX_VISITOR 64
#define MAX_KEY 400

struct wc_history {
    MDB_env *env;
    MDB_dbi entries, keys, meta;
    size_t max_per_visitor;
    char path[4096];
};

/* The entries key of (visitor, id) into buf; returns its length, 0 when
 * the visitor id is too long. */
static size_t entry_key(unsigned char *buf, const char *visitor, uint64_t id)
{
    size_t n = strlen(visitor);
    if (n == 0 || n > MAX_VISITOR)
        return 0;
    memcpy(buf, visitor, n + 1);
    br_lmdb_put_be64(buf + n + 1, id);
    return n + 9;
}

static void fail(const wc_history *h, char *err, size_t errlen, const char *what, int rc)
{
    br_lmdb_error(err, errlen, h->path, what, rc);
}

int wc_history_open(wc_history **out, const char *dir, size_t max_per_visitor, char *err, size_t errlen)
{
    *out = NULL;
    if (!dir || !*dir || max_per_visitor < 1) {
        snprintf(err, errlen, "history: no directory or no room per visitor");
        return -1;
    }
    wc_history *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    h->max_per_visitor = max_per_visitor;
    static const char *const tables[] = {"entries", "keys", "meta"};
    MDB_dbi dbis[3];
    br_lmdb_spec spec = {dir, "webchat.history", true, WC_HISTORY_MAP_BYTES, tables, 3};
    if (br_lmdb_open(&h->env, dbis, &spec, h->path, sizeof h->path, err, errlen) != 0) {
        wc_history_close(h);
        return -1;
    }
    h->entries = dbis[0];
    h->keys = dbis[1];
    h->meta = dbis[2];
    *out = h;
    return 0;
}

void wc_history_close(wc_history *h)
{
    if (!h)
        return;
    if (h->env)
        mdb_env_close(h->env);
    free(h);
}

/* Deletes the dedupe key stored in an entry's value v, if any. */
static int drop_key(wc_history *h, MDB_txn *txn, const MDB_val *v)
{
    const unsigned char *p = v->mv_data;
    if (v->mv_size < 3)
        return 0;
    size_t klen = ((size_t)p[1] << 8) | p[2];
    if (klen == 0 || 3 + klen > v->mv_size)
        return 0;
    MDB_val k = {klen, (void *)(p + 3)};
    int rc = mdb_del(txn, h->keys, &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Removes visitor's oldest entry (trimming to the bound). */
static int drop_oldest(wc_history *h, MDB_txn *txn, const char *visitor)
{
    unsigned char kb[MAX_VISITOR + 9];
    size_t kn = entry_key(kb, visitor, 0);
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(txn, h->entries, &c);
    if (rc != 0)
        return rc;
    MDB_val k = {kn, kb}, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    if (rc == 0 && k.mv_size == kn && memcmp(k.mv_data, kb, kn - 8) == 0) {
        rc = drop_key(h, txn, &v);
        if (rc == 0)
            rc = mdb_cursor_del(c, 0);
    } else if (rc == MDB_NOTFOUND || rc == 0) {
        rc = 0; /* nothing of this visitor */
    }
    mdb_cursor_close(c);
    return rc;
}

int wc_history_append(wc_history *h, const char *visitor, const char *key, bool reply, json_t *entry,
                      uint64_t *id, char *err, size_t errlen)
{
    unsigned char kb[MAX_VISITOR + 9];
    size_t klen = key ? strlen(key) : 0;
    if (!entry_key(kb, visitor, 0) || klen > MAX_KEY || !json_is_object(entry)) {
        snprintf(err, errlen, "history: a bad visitor id, key or entry");
        return -1;
    }
    MDB_txn *txn = NULL;
    char *json = NULL;
    unsigned char *val = NULL;
    int rc = -1, mrc;
    if ((mrc = mdb_txn_begin(h->env, NULL, 0, &txn)) != 0) {
        fail(h, err, errlen, "begin", mrc);
        return -1;
    }
    if (key) {
        MDB_val k = {klen, (void *)key}, v;
        mrc = mdb_get(txn, h->keys, &k, &v);
        if (mrc == 0 && v.mv_size == 8) {
            *id = br_lmdb_get_be64(v.mv_data);
            rc = 1;
            goto out;
        }
        if (mrc != 0 && mrc != MDB_NOTFOUND) {
            fail(h, err, errlen, "get key", mrc);
            goto out;
        }
    }
    uint64_t next = br_lmdb_get_u64(txn, h->meta, "next");
    if (next == 0)
        next = 1;
    json_object_set_new(entry, "id", json_integer((json_int_t)next));
    json = json_dumps(entry, JSON_COMPACT);
    size_t jlen = json ? strlen(json) : 0;
    val = json ? malloc(3 + klen + jlen) : NULL;
    if (!val) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    val[0] = reply ? FLAG_REPLY : 0;
    val[1] = (unsigned char)(klen >> 8);
    val[2] = (unsigned char)(klen & 0xff);
    memcpy(val + 3, key ? key : "", klen);
    memcpy(val + 3 + klen, json, jlen);
    size_t kn = entry_key(kb, visitor, next);
    MDB_val k = {kn, kb}, v = {3 + klen + jlen, val};
    char count_key[MAX_VISITOR + 3];
    snprintf(count_key, sizeof count_key, "n:%s", visitor);
    uint64_t count = br_lmdb_get_u64(txn, h->meta, count_key) + 1;
    if ((mrc = mdb_put(txn, h->entries, &k, &v, 0)) != 0 ||
        (mrc = br_lmdb_put_u64(txn, h->meta, "next", next + 1)) != 0) {
        fail(h, err, errlen, "put", mrc);
        goto out;
    }
    if (key) {
        unsigned char ib[8];
        br_lmdb_put_be64(ib, next);
        MDB_val kk = {klen, (void *)key}, kv = {8, ib};
        if ((mrc = mdb_put(txn, h->keys, &kk, &kv, 0)) != 0) {
            fail(h, err, errlen, "put key", mrc);
            goto out;
        }
    }
    for (; count > h->max_per_visitor; count--) {
        if ((mrc = drop_oldest(h, txn, visitor)) != 0) {
            fail(h, err, errlen, "trim", mrc);
            goto out;
        }
    }
    if ((mrc = br_lmdb_put_u64(txn, h->meta, count_key, count)) != 0) {
        fail(h, err, errlen, "put count", mrc);
        goto out;
    }
    mrc = mdb_txn_commit(txn);
    txn = NULL;
    if (mrc != 0) {
        fail(h, err, errlen, "commit", mrc);
        goto out;
    }
    *id = next;
    rc = 0;
out:
    if (txn)
        mdb_txn_abort(txn);
    free(json);
    free(val);
    return rc;
}

int wc_history_remove(wc_history *h, const char *visitor, uint64_t id, char *err, size_t errlen)
{
    unsigned char kb[MAX_VISITOR + 9];
    size_t kn = entry_key(kb, visitor, id);
    if (!kn) {
        snprintf(err, errlen, "history: a bad visitor id");
        return -1;
    }
    MDB_txn *txn = NULL;
    int mrc = mdb_txn_begin(h->env, NULL, 0, &txn);
    if (mrc != 0) {
        fail(h, err, errlen, "begin", mrc);
        return -1;
    }
    MDB_val k = {kn, kb}, v;
    mrc = mdb_get(txn, h->entries, &k, &v);
    if (mrc == MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return 0;
    }
    char count_key[MAX_VISITOR + 3];
    snprintf(count_key, sizeof count_key, "n:%s", visitor);
    uint64_t count = br_lmdb_get_u64(txn, h->meta, count_key);
    if (mrc != 0 || (mrc = drop_key(h, txn, &v)) != 0 || (mrc = mdb_del(txn, h->entries, &k, NULL)) != 0 ||
        (mrc = br_lmdb_put_u64(txn, h->meta, count_key, count ? count - 1 : 0)) != 0) {
        mdb_txn_abort(txn);
        fail(h, err, errlen, "remove", mrc);
        return -1;
    }
    if ((mrc = mdb_txn_commit(txn)) != 0) {
        fail(h, err, errlen, "commit", mrc);
        return -1;
    }
    return 0;
}

int wc_history_list(wc_history *h, const char *visitor, uint64_t after, bool replies_only, wc_entry *out,
                    int max, bool *more)
{
    unsigned char kb[MAX_VISITOR + 9];
    size_t kn = entry_key(kb, visitor, after == UINT64_MAX ? after : after + 1);
    if (more)
        *more = false;
    if (!kn)
        return -1;
    MDB_txn *txn = NULL;
    MDB_cursor *c = NULL;
    if (mdb_txn_begin(h->env, NULL, MDB_RDONLY, &txn) != 0)
        return -1;
    int n = 0;
    if (mdb_cursor_open(txn, h->entries, &c) != 0) {
        n = -1;
        goto out;
    }
    MDB_val k = {kn, kb}, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    for (; mrc == 0; mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != kn || memcmp(k.mv_data, kb, kn - 8) != 0)
            break; /* past this visitor's range */
        const unsigned char *p = v.mv_data;
        if (v.mv_size < 3)
            continue;
        if (replies_only && !(p[0] & FLAG_REPLY))
            continue;
        if (n == max) {
            if (more)
                *more = true;
            break;
        }
        size_t klen = ((size_t)p[1] << 8) | p[2];
        if (3 + klen > v.mv_size)
            continue;
        size_t jlen = v.mv_size - 3 - klen;
        char *json = malloc(jlen + 1);
        if (!json) {
            for (int i = 0; i < n; i++)
                free(out[i].json);
            n = -1;
            goto out;
        }
        memcpy(json, p + 3 + klen, jlen);
        json[jlen] = '\0';
        out[n].id = br_lmdb_get_be64((const unsigned char *)k.mv_data + kn - 8);
        out[n].json = json;
        n++;
    }
out:
    if (c)
        mdb_cursor_close(c);
    mdb_txn_abort(txn);
    return n;
}
