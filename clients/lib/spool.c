/* spool: the durable intake queue in an LMDB environment (see spool.h for
 * the design; lmdb_env.h opens the environment, as for the bridges' other
 * stores). */
#include "clients/lib/spool.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "clients/lib/lmdb_env.h"

struct br_spool {
    MDB_env *env;
    MDB_dbi entries, meta;
    br_spool_limits lim;
    char path[4096];
};

static const char META_NEXT[] = "next";
static const char META_BYTES[] = "bytes";

static void lmdb_err(const br_spool *s, char *err, size_t errlen, const char *what, int rc)
{
    br_lmdb_error(err, errlen, s->path, what, rc);
}

int br_spool_open(br_spool **out, const char *dir, const char *name, const br_spool_limits *lim, char *err,
                  size_t errlen)
{
    *out = NULL;
    if (!dir || !*dir || !name || !*name || lim->max_entries < 1 || lim->max_bytes < 1) {
        snprintf(err, errlen, "spool: no directory, no name, or a zero limit");
        return BR_SPOOL_ERR;
    }
    br_spool *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return BR_SPOOL_ERR;
    }
    s->lim = *lim;
    int rc = BR_SPOOL_ERR;
    char env_name[256];
    int n = snprintf(env_name, sizeof env_name, "%s.spool", name);
    if (n < 0 || (size_t)n >= sizeof env_name) {
        snprintf(err, errlen, "%s: path too long", dir);
        goto out;
    }
    /* Room for every entry at its limit twice over (overflow pages, the
     * copy-on-write of a commit) plus slack; the file grows only as used. */
    uint64_t map = 2 * (lim->max_bytes + lim->max_entries * 8192) + ((uint64_t)64 << 20);
    static const char *const tables[] = {"entries", "meta"};
    MDB_dbi dbis[2];
    br_lmdb_spec spec = {dir, env_name, true, (size_t)map, tables, 2};
    if (br_lmdb_open(&s->env, dbis, &spec, s->path, sizeof s->path, err, errlen) != 0)
        goto out;
    s->entries = dbis[0];
    s->meta = dbis[1];
    *out = s;
    s = NULL;
    rc = BR_SPOOL_OK;
out:
    br_spool_close(s);
    return rc;
}

void br_spool_close(br_spool *s)
{
    if (!s)
        return;
    if (s->env)
        mdb_env_close(s->env);
    free(s);
}

const char *br_spool_path(const br_spool *s)
{
    return s->path;
}

int br_spool_append(br_spool *s, const br_spool_item *items, size_t n, uint64_t *first_seq, char *err,
                    size_t errlen)
{
    if (n == 0)
        return BR_SPOOL_OK;
    MDB_txn *txn = NULL;
    int mrc = br_lmdb_begin(s->env, 0, &txn);
    if (mrc != 0) {
        lmdb_err(s, err, errlen, "begin", mrc);
        return BR_SPOOL_ERR;
    }
    int rc = BR_SPOOL_ERR;
    MDB_stat st;
    if ((mrc = mdb_stat(txn, s->entries, &st)) != 0) {
        lmdb_err(s, err, errlen, "stat", mrc);
        goto out;
    }
    uint64_t bytes = br_lmdb_get_u64(txn, s->meta, META_BYTES), add = 0;
    for (size_t i = 0; i < n; i++)
        add += items[i].len;
    if ((uint64_t)st.ms_entries + n > s->lim.max_entries || bytes + add > s->lim.max_bytes) {
        snprintf(err, errlen, "the spool is full (%zu entries, %llu bytes; limits %llu entries, %llu bytes)",
                 st.ms_entries, (unsigned long long)bytes, (unsigned long long)s->lim.max_entries,
                 (unsigned long long)s->lim.max_bytes);
        rc = BR_SPOOL_FULL;
        goto out;
    }
    uint64_t next = br_lmdb_get_u64(txn, s->meta, META_NEXT);
    if (next == 0)
        next = 1;
    if (first_seq)
        *first_seq = next;
    for (size_t i = 0; i < n; i++, next++) {
        unsigned char key[8];
        br_lmdb_put_be64(key, next);
        MDB_val k = {8, key}, v = {items[i].len, (void *)items[i].data};
        if ((mrc = mdb_put(txn, s->entries, &k, &v, MDB_APPEND)) != 0) {
            lmdb_err(s, err, errlen, "put", mrc);
            goto out;
        }
    }
    if ((mrc = br_lmdb_put_u64(txn, s->meta, META_NEXT, next)) != 0 ||
        (mrc = br_lmdb_put_u64(txn, s->meta, META_BYTES, bytes + add)) != 0) {
        lmdb_err(s, err, errlen, "put", mrc);
        goto out;
    }
    mrc = mdb_txn_commit(txn); /* synced: durable once it returns 0 */
    txn = NULL;
    if (mrc != 0) {
        lmdb_err(s, err, errlen, "commit", mrc);
        goto out;
    }
    rc = BR_SPOOL_OK;
out:
    if (txn)
        mdb_txn_abort(txn);
    return rc;
}

int br_spool_next(br_spool *s, uint64_t after, uint64_t *seq, char **data, size_t *len, char *err,
                  size_t errlen)
{
    MDB_txn *txn = NULL;
    MDB_cursor *c = NULL;
    int mrc = br_lmdb_begin(s->env, MDB_RDONLY, &txn);
    if (mrc != 0) {
        lmdb_err(s, err, errlen, "begin", mrc);
        return BR_SPOOL_ERR;
    }
    int rc = BR_SPOOL_ERR;
    MDB_val k, v;
    if ((mrc = mdb_cursor_open(txn, s->entries, &c)) != 0) {
        lmdb_err(s, err, errlen, "cursor", mrc);
        goto out;
    }
    uint8_t from[8];
    br_lmdb_put_be64(from, after + 1);
    k = (MDB_val){sizeof from, from};
    mrc = after == UINT64_MAX ? MDB_NOTFOUND : mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    if (mrc == MDB_NOTFOUND) {
        rc = BR_SPOOL_EMPTY;
        goto out;
    }
    if (mrc != 0 || k.mv_size != 8) {
        lmdb_err(s, err, errlen, "next", mrc ? mrc : MDB_CORRUPTED);
        goto out;
    }
    char *copy = malloc(v.mv_size + 1);
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    memcpy(copy, v.mv_data, v.mv_size);
    copy[v.mv_size] = '\0';
    *seq = br_lmdb_get_be64(k.mv_data);
    *data = copy;
    *len = v.mv_size;
    rc = BR_SPOOL_OK;
out:
    if (c)
        mdb_cursor_close(c);
    mdb_txn_abort(txn);
    return rc;
}

int br_spool_peek(br_spool *s, uint64_t *seq, char **data, size_t *len, char *err, size_t errlen)
{
    return br_spool_next(s, 0, seq, data, len, err, errlen);
}

int br_spool_remove(br_spool *s, uint64_t seq, char *err, size_t errlen)
{
    MDB_txn *txn = NULL;
    int mrc = br_lmdb_begin(s->env, 0, &txn);
    if (mrc != 0) {
        lmdb_err(s, err, errlen, "begin", mrc);
        return BR_SPOOL_ERR;
    }
    unsigned char key[8];
    br_lmdb_put_be64(key, seq);
    MDB_val k = {8, key}, v;
    mrc = mdb_get(txn, s->entries, &k, &v);
    if (mrc == MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return BR_SPOOL_OK; /* another process removed it */
    }
    size_t len = v.mv_size;
    uint64_t bytes = br_lmdb_get_u64(txn, s->meta, META_BYTES);
    if (mrc != 0 || (mrc = mdb_del(txn, s->entries, &k, NULL)) != 0 ||
        (mrc = br_lmdb_put_u64(txn, s->meta, META_BYTES, bytes >= len ? bytes - len : 0)) != 0) {
        mdb_txn_abort(txn);
        lmdb_err(s, err, errlen, "remove", mrc);
        return BR_SPOOL_ERR;
    }
    if ((mrc = mdb_txn_commit(txn)) != 0) {
        lmdb_err(s, err, errlen, "commit", mrc);
        return BR_SPOOL_ERR;
    }
    return BR_SPOOL_OK;
}

uint64_t br_spool_count(br_spool *s)
{
    MDB_txn *txn = NULL;
    MDB_stat st;
    if (br_lmdb_begin(s->env, MDB_RDONLY, &txn) != 0)
        return 0;
    uint64_t n = mdb_stat(txn, s->entries, &st) == 0 ? st.ms_entries : 0;
    mdb_txn_abort(txn);
    return n;
}

void br_spool_render(br_spool *s, const char *bridge, FILE *out)
{
    fprintf(out,
            "# HELP helpwire_bridge_spool_entries Inbound messages taken from the channel, not yet routed.\n"
            "# TYPE helpwire_bridge_spool_entries gauge\n"
            "helpwire_bridge_spool_entries{bridge=\"%s\"} %llu\n",
            bridge, (unsigned long long)br_spool_count(s));
}
