/*
 * sent: the durable sent record on LMDB (see sent.h; the environment is
 * opened, and the sequence keys encoded, as lmdb_env.h says).
 *
 * Two databases in one environment: "seq" keyed by the sequence as 8
 * big-endian bytes (so a cursor walks oldest first), its value
 * [sent_unix_ms: 8 bytes LE][id length: 2 bytes LE][id][packed message];
 * "upstream" keyed by the upstream id, its value the 8-byte key of "seq";
 * "steps" keyed by the sequence (8 big-endian bytes) and the step (4
 * big-endian bytes), its value the step's upstream id: a message's calls
 * made so far, until the whole message is recorded.
 */
#include "clients/lib/sent.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "clients/lib/lmdb_env.h"

#define DEFAULT_KEEP_MS (7LL * 24 * 3600 * 1000)
#define DEFAULT_MAX_RECORDS 100000
#define MAP_SIZE ((size_t)1 << 30)
#define PRUNE_EVERY 64
#define PRUNE_BATCH 1000

struct br_sent {
    MDB_env *env;
    MDB_dbi seq_db, up_db, steps_db;
    int64_t keep_ms;
    size_t max_records;
    atomic_uint puts;
};

int br_sent_open(br_sent **out, const char *state_dir, const char *name, int64_t keep_ms, size_t max_records,
                 char *err, size_t errlen)
{
    br_sent *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->keep_ms = keep_ms > 0 ? keep_ms : DEFAULT_KEEP_MS;
    s->max_records = max_records > 0 ? max_records : DEFAULT_MAX_RECORDS;
    char env_name[256], path[4096];
    int n = snprintf(env_name, sizeof env_name, "%s.sent.mdb", name);
    static const char *const tables[] = {"seq", "upstream", "steps"};
    MDB_dbi dbis[3];
    br_lmdb_spec spec = {state_dir, env_name, false, MAP_SIZE, tables, 3};
    if (n < 0 || (size_t)n >= sizeof env_name) {
        snprintf(err, errlen, "%s: path too long", state_dir);
        goto fail;
    }
    if (br_lmdb_open(&s->env, dbis, &spec, path, sizeof path, err, errlen) != 0)
        goto fail;
    s->seq_db = dbis[0];
    s->up_db = dbis[1];
    s->steps_db = dbis[2];
    *out = s;
    return 0;
fail:
    free(s);
    return -1;
}

void br_sent_close(br_sent *s)
{
    if (!s)
        return;
    mdb_env_close(s->env);
    free(s);
}

int br_sent_put(br_sent *s, const Helpwire__V1__OutboundMessage *m, const char *upstream_id,
                int64_t sent_unix_ms, char *err, size_t errlen)
{
    size_t idlen = upstream_id ? strlen(upstream_id) : 0;
    if (idlen > 255)
        idlen = 255;
    size_t packed = protobuf_c_message_get_packed_size(&m->base);
    size_t len = 10 + idlen + packed;
    unsigned char *val = malloc(len);
    if (!val) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    uint64_t t = (uint64_t)sent_unix_ms;
    for (int i = 0; i < 8; i++)
        val[i] = (unsigned char)(t >> (8 * i));
    val[8] = (unsigned char)(idlen & 0xff);
    val[9] = (unsigned char)(idlen >> 8);
    if (idlen)
        memcpy(val + 10, upstream_id, idlen);
    protobuf_c_message_pack(&m->base, val + 10 + idlen);
    unsigned char k[8];
    br_lmdb_put_be64(k, m->seq);
    MDB_txn *txn = NULL;
    MDB_val key = {8, k}, data = {len, val};
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc == 0)
        rc = mdb_put(txn, s->seq_db, &key, &data, 0);
    if (rc == 0 && idlen) {
        MDB_val ukey = {idlen, (void *)upstream_id}, uval = {8, k};
        rc = mdb_put(txn, s->up_db, &ukey, &uval, 0);
    }
    if (rc == 0) {
        rc = mdb_txn_commit(txn);
        txn = NULL;
    }
    if (txn)
        mdb_txn_abort(txn);
    free(val);
    if (rc != 0) {
        snprintf(err, errlen, "sent record: %s", mdb_strerror(rc));
        return -1;
    }
    if (atomic_fetch_add(&s->puts, 1) % PRUNE_EVERY == 0)
        br_sent_prune(s, sent_unix_ms);
    return 0;
}

/* Fills rec from a "seq" value. */
static void decode(uint64_t seq, const MDB_val *v, br_sent_record *rec)
{
    const unsigned char *p = v->mv_data;
    memset(rec, 0, sizeof *rec);
    rec->seq = seq;
    if (v->mv_size < 10)
        return;
    uint64_t t = 0;
    for (int i = 7; i >= 0; i--)
        t = (t << 8) | p[i];
    rec->sent_unix_ms = (int64_t)t;
    size_t idlen = (size_t)p[8] | ((size_t)p[9] << 8);
    if (10 + idlen > v->mv_size)
        return;
    memcpy(rec->upstream_id, p + 10, idlen < sizeof rec->upstream_id ? idlen : sizeof rec->upstream_id - 1);
    rec->message = (Helpwire__V1__OutboundMessage *)protobuf_c_message_unpack(
        &helpwire__v1__outbound_message__descriptor, NULL, v->mv_size - 10 - idlen, p + 10 + idlen);
}

static int get_in(br_sent *s, MDB_txn *txn, uint64_t seq, br_sent_record *rec)
{
    unsigned char k[8];
    br_lmdb_put_be64(k, seq);
    MDB_val key = {8, k}, data;
    int rc = mdb_get(txn, s->seq_db, &key, &data);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return -1;
    if (rec)
        decode(seq, &data, rec);
    return 1;
}

int br_sent_get(br_sent *s, uint64_t seq, br_sent_record *rec)
{
    MDB_txn *txn;
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
        return -1;
    int r = get_in(s, txn, seq, rec);
    mdb_txn_abort(txn);
    return r;
}

int br_sent_find_upstream(br_sent *s, const char *upstream_id, br_sent_record *rec)
{
    if (!upstream_id || !*upstream_id)
        return 0;
    size_t idlen = strlen(upstream_id);
    if (idlen > 255)
        return 0;
    MDB_txn *txn;
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
        return -1;
    MDB_val key = {idlen, (void *)upstream_id}, data;
    int rc = mdb_get(txn, s->up_db, &key, &data);
    int r = rc == MDB_NOTFOUND  ? 0
            : rc != 0           ? -1
            : data.mv_size != 8 ? 0
                                : get_in(s, txn, br_lmdb_get_be64(data.mv_data), rec);
    mdb_txn_abort(txn);
    return r;
}

static void step_key(unsigned char k[12], uint64_t seq, uint32_t step)
{
    br_lmdb_put_be64(k, seq);
    for (int i = 0; i < 4; i++)
        k[8 + i] = (unsigned char)(step >> (8 * (3 - i)));
}

int br_sent_put_step(br_sent *s, uint64_t seq, uint32_t step, const char *upstream_id, char *err,
                     size_t errlen)
{
    unsigned char k[12];
    step_key(k, seq, step);
    size_t idlen = upstream_id ? strlen(upstream_id) : 0;
    if (idlen > 255)
        idlen = 255;
    MDB_txn *txn = NULL;
    MDB_val key = {12, k}, data = {idlen, (void *)(upstream_id ? upstream_id : "")};
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc == 0)
        rc = mdb_put(txn, s->steps_db, &key, &data, 0);
    if (rc == 0) {
        rc = mdb_txn_commit(txn);
        txn = NULL;
    }
    if (txn)
        mdb_txn_abort(txn);
    if (rc != 0) {
        snprintf(err, errlen, "sent record: %s", mdb_strerror(rc));
        return -1;
    }
    return 0;
}

int br_sent_get_step(br_sent *s, uint64_t seq, uint32_t step, char *id, size_t idlen)
{
    unsigned char k[12];
    step_key(k, seq, step);
    MDB_txn *txn;
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
        return -1;
    MDB_val key = {12, k}, data;
    int rc = mdb_get(txn, s->steps_db, &key, &data);
    int r = rc == MDB_NOTFOUND ? 0 : rc != 0 ? -1 : 1;
    if (r == 1 && id && idlen) {
        size_t n = data.mv_size < idlen - 1 ? data.mv_size : idlen - 1;
        memcpy(id, data.mv_data, n);
        id[n] = '\0';
    }
    mdb_txn_abort(txn);
    return r;
}

/* Deletes seq's steps inside txn. */
static int clear_steps_in(br_sent *s, MDB_txn *txn, uint64_t seq)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->steps_db, &cur);
    if (rc != 0)
        return rc;
    unsigned char k[12];
    step_key(k, seq, 0);
    MDB_val key = {12, k}, data;
    rc = mdb_cursor_get(cur, &key, &data, MDB_SET_RANGE);
    while (rc == 0 && key.mv_size == 12 && br_lmdb_get_be64(key.mv_data) == seq) {
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            break;
        rc = mdb_cursor_get(cur, &key, &data, MDB_GET_CURRENT);
        if (rc != 0)
            rc = mdb_cursor_get(cur, &key, &data, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
}

int br_sent_steps_clear(br_sent *s, uint64_t seq)
{
    MDB_txn *txn;
    if (mdb_txn_begin(s->env, NULL, 0, &txn) != 0)
        return -1;
    if (clear_steps_in(s, txn, seq) != 0) {
        mdb_txn_abort(txn);
        return -1;
    }
    return mdb_txn_commit(txn) == 0 ? 0 : -1;
}

void br_sent_record_free(br_sent_record *rec)
{
    if (rec && rec->message)
        protobuf_c_message_free_unpacked(&rec->message->base, NULL);
    if (rec)
        rec->message = NULL;
}

long br_sent_prune(br_sent *s, int64_t now_unix_ms)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    if (mdb_txn_begin(s->env, NULL, 0, &txn) != 0)
        return -1;
    if (mdb_cursor_open(txn, s->seq_db, &cur) != 0) {
        mdb_txn_abort(txn);
        return -1;
    }
    MDB_stat st;
    mdb_stat(txn, s->seq_db, &st);
    size_t count = st.ms_entries;
    long deleted = 0;
    MDB_val key, data;
    int rc = mdb_cursor_get(cur, &key, &data, MDB_FIRST);
    while (rc == 0 && deleted < PRUNE_BATCH) {
        const unsigned char *p = data.mv_data;
        int64_t t = 0;
        if (data.mv_size >= 10) {
            uint64_t u = 0;
            for (int i = 7; i >= 0; i--)
                u = (u << 8) | p[i];
            t = (int64_t)u;
        }
        if (count <= s->max_records && t >= now_unix_ms - s->keep_ms)
            break;
        if (data.mv_size >= 10) {
            size_t idlen = (size_t)p[8] | ((size_t)p[9] << 8);
            if (idlen && 10 + idlen <= data.mv_size) {
                char id[256];
                memcpy(id, p + 10, idlen);
                MDB_val ukey = {idlen, id};
                mdb_del(txn, s->up_db, &ukey, NULL);
            }
        }
        if (key.mv_size == 8)
            clear_steps_in(s, txn, br_lmdb_get_be64(key.mv_data));
        if (mdb_cursor_del(cur, 0) != 0)
            break;
        count--;
        deleted++;
        rc = mdb_cursor_get(cur, &key, &data, MDB_GET_CURRENT);
        if (rc != 0)
            rc = mdb_cursor_get(cur, &key, &data, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (deleted == 0) {
        mdb_txn_abort(txn);
        return 0;
    }
    return mdb_txn_commit(txn) == 0 ? deleted : -1;
}

size_t br_sent_count(br_sent *s)
{
    MDB_txn *txn;
    MDB_stat st;
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
        return 0;
    size_t n = mdb_stat(txn, s->seq_db, &st) == 0 ? st.ms_entries : 0;
    mdb_txn_abort(txn);
    return n;
}
