/*
 * lmdb_env: the bridges' one way of opening an LMDB environment in their
 * state directory, and the big-endian numbers their keys use (see
 * lmdb_env.h).
 */
#include "clients/lib/lmdb_env.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int br_lmdb_begin(MDB_env *env, unsigned flags, MDB_txn **txn)
{
    int rc = mdb_txn_begin(env, NULL, flags, txn);
    if (rc == MDB_MAP_RESIZED) {
        mdb_env_set_mapsize(env, 0);
        rc = mdb_txn_begin(env, NULL, flags, txn);
    }
    return rc;
}

void br_lmdb_error(char *err, size_t errlen, const char *path, const char *what, int rc)
{
    snprintf(err, errlen, "%s: %s: %s", path, what, mdb_strerror(rc));
}

int br_lmdb_open(MDB_env **env, MDB_dbi *dbis, const br_lmdb_spec *spec, char *path, size_t path_size,
                 char *err, size_t errlen)
{
    *env = NULL;
    MDB_env *e = NULL;
    MDB_txn *txn = NULL;
    int rc = -1, mrc;
    if (mkdir(spec->dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", spec->dir, strerror(errno));
        return -1;
    }
    int n = snprintf(path, path_size, "%s/%s", spec->dir, spec->name);
    if (n < 0 || (size_t)n >= path_size) {
        snprintf(err, errlen, "%s: path too long", spec->dir);
        return -1;
    }
    if (spec->own_dir && mkdir(path, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if ((mrc = mdb_env_create(&e)) != 0) {
        br_lmdb_error(err, errlen, path, "create", mrc);
        return -1;
    }
    unsigned flags = MDB_NOTLS | (spec->own_dir ? 0 : MDB_NOSUBDIR);
    if ((mrc = mdb_env_set_mapsize(e, spec->map_bytes)) != 0 ||
        (mrc = mdb_env_set_maxdbs(e, (MDB_dbi)spec->n_tables)) != 0 ||
        (mrc = mdb_env_open(e, path, flags, 0600)) != 0) {
        br_lmdb_error(err, errlen, path, "open", mrc);
        goto out;
    }
    int dead = 0;
    mdb_reader_check(e, &dead); /* slots of a process killed mid-read */
    if ((mrc = br_lmdb_begin(e, 0, &txn)) != 0) {
        br_lmdb_error(err, errlen, path, "open tables", mrc);
        goto out;
    }
    for (unsigned i = 0; i < spec->n_tables; i++) {
        if ((mrc = mdb_dbi_open(txn, spec->tables[i], MDB_CREATE, &dbis[i])) != 0) {
            br_lmdb_error(err, errlen, path, "open tables", mrc);
            goto out;
        }
    }
    mrc = mdb_txn_commit(txn);
    txn = NULL;
    if (mrc != 0) {
        br_lmdb_error(err, errlen, path, "open tables", mrc);
        goto out;
    }
    *env = e;
    e = NULL;
    rc = 0;
out:
    if (txn)
        mdb_txn_abort(txn);
    if (e)
        mdb_env_close(e);
    return rc;
}

void br_lmdb_put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

uint64_t br_lmdb_get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

uint64_t br_lmdb_get_u64(MDB_txn *txn, MDB_dbi dbi, const char *name)
{
    MDB_val k = {strlen(name), (void *)name}, v;
    if (mdb_get(txn, dbi, &k, &v) != 0 || v.mv_size != 8)
        return 0;
    return br_lmdb_get_be64(v.mv_data);
}

int br_lmdb_put_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t value)
{
    unsigned char buf[8];
    br_lmdb_put_be64(buf, value);
    MDB_val k = {strlen(name), (void *)name}, v = {8, buf};
    return mdb_put(txn, dbi, &k, &v, 0);
}
