/*
 * history: the web chat's durable conversations in LMDB (see history.h).
 *
 * Tables: "entries" (visitor NUL id-big-endian -> flags, key length, key,
 * JSON), "keys" (dedupe key -> id-big-endian), "meta" ("next" -> the next
 * id; "n:<visitor>" -> the visitor's entry count, so trimming costs one
 * cursor step, not a count).
 */
#include "clients/webchat/history.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>

#define FLAG_REPLY 1
#define MAX_VISITOR 64
#define MAX_KEY 400

struct wc_history {
    MDB_env *env;
    MDB_dbi entries, keys, meta;
    size_t max_per_visitor;
    char path[4096];
};

static void put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static uint64_t get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* The entries key of (visitor, id) into buf; returns its length, 0 when
 * the visitor id is too long. */
static size_t entry_key(unsigned char *buf, const char *visitor, uint64_t id)
{
    size_t n = strlen(visitor);
    if (n == 0 || n > MAX_VISITOR)
        return 0;
    memcpy(buf, visitor, n + 1);
    put_be64(buf + n + 1, id);
    return n + 9;
}

static void fail(const wc_history *h, char *err, size_t errlen, const char *what, int rc)
{
    snprintf(err, errlen, "%s: %s: %s", h->path, what, mdb_strerror(rc));
}

static uint64_t meta_u64(MDB_txn *txn, MDB_dbi dbi, const char *name)
{
    MDB_val k = {strlen(name), (void *)name}, v;
    if (mdb_get(txn, dbi, &k, &v) != 0 || v.mv_size != 8)
        return 0;
    return get_be64(v.mv_data);
}

static int meta_put(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t value)
{
    unsigned char buf[8];
    put_be64(buf, value);
    MDB_val k = {strlen(name), (void *)name}, v = {8, buf};
    return mdb_put(txn, dbi, &k, &v, 0);
}

int wc_history_open(wc_history **out, const char *dir, size_t max_per_visitor, char *err, size_t errlen)
{
    *out = NULL;
    if (!dir || !*dir || max_per_visitor < 1) {
        snprintf(err, errlen, "history: no directory or no room per visitor");
        return -1;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    wc_history *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    h->max_per_visitor = max_per_visitor;
    int rc = -1, mrc;
    MDB_txn *txn = NULL;
    int n = snprintf(h->path, sizeof h->path, "%s/webchat.history", dir);
    if (n < 0 || (size_t)n >= sizeof h->path) {
        snprintf(err, errlen, "%s: path too long", dir);
        goto out;
    }
    if (mkdir(h->path, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", h->path, strerror(errno));
        goto out;
    }
    if ((mrc = mdb_env_create(&h->env)) != 0) {
        fail(h, err, errlen, "create", mrc);
        goto out;
    }
    mdb_env_set_mapsize(h->env, WC_HISTORY_MAP_BYTES);
    mdb_env_set_maxdbs(h->env, 3);
    if ((mrc = mdb_env_open(h->env, h->path, MDB_NOTLS, 0600)) != 0) {
        fail(h, err, errlen, "open", mrc);
        goto out;
    }
    int dead = 0;
    mdb_reader_check(h->env, &dead);
    if ((mrc = mdb_txn_begin(h->env, NULL, 0, &txn)) != 0 ||
        (mrc = mdb_dbi_open(txn, "entries", MDB_CREATE, &h->entries)) != 0 ||
        (mrc = mdb_dbi_open(txn, "keys", MDB_CREATE, &h->keys)) != 0 ||
        (mrc = mdb_dbi_open(txn, "meta", MDB_CREATE, &h->meta)) != 0) {
        fail(h, err, errlen, "open tables", mrc);
        goto out;
    }
    mrc = mdb_txn_commit(txn);
    txn = NULL;
    if (mrc != 0) {
        fail(h, err, errlen, "open tables", mrc);
        goto out;
    }
    *out = h;
    h = NULL;
    rc = 0;
out:
    if (txn)
        mdb_txn_abort(txn);
    wc_history_close(h);
    return rc;
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
            *id = get_be64(v.mv_data);
            rc = 1;
            goto out;
        }
        if (mrc != 0 && mrc != MDB_NOTFOUND) {
            fail(h, err, errlen, "get key", mrc);
            goto out;
        }
    }
    uint64_t next = meta_u64(txn, h->meta, "next");
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
    uint64_t count = meta_u64(txn, h->meta, count_key) + 1;
    if ((mrc = mdb_put(txn, h->entries, &k, &v, 0)) != 0 ||
        (mrc = meta_put(txn, h->meta, "next", next + 1)) != 0) {
        fail(h, err, errlen, "put", mrc);
        goto out;
    }
    if (key) {
        unsigned char ib[8];
        put_be64(ib, next);
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
    if ((mrc = meta_put(txn, h->meta, count_key, count)) != 0) {
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
    uint64_t count = meta_u64(txn, h->meta, count_key);
    if (mrc != 0 || (mrc = drop_key(h, txn, &v)) != 0 || (mrc = mdb_del(txn, h->entries, &k, NULL)) != 0 ||
        (mrc = meta_put(txn, h->meta, count_key, count ? count - 1 : 0)) != 0) {
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
        out[n].id = get_be64((const unsigned char *)k.mv_data + kn - 8);
        out[n].json = json;
        n++;
    }
out:
    if (c)
        mdb_cursor_close(c);
    mdb_txn_abort(txn);
    return n;
}
