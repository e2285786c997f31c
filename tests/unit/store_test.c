/*
 * store_test: the LMDB engine (server/store/store.h): schema checks at open,
 * the writer's group commit with per-request rollback, readers' snapshots,
 * durable sequences, automatic map growth, online backup, draining close.
 * Concurrency under load lives in store_concurrent_test.c; typed records in
 * store_records_test.c; kill -9 in store_crash_test.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "helpwire/store/v1/records.pb-c.h"
#include "server/store/store.h"
#include "tests/unit/store_test_util.h"

/* ---- helpers ---------------------------------------------------------- */

typedef struct kv_req {
    const char *key;
    const char *val;
    size_t val_len; /* 0: strlen(val) */
    int fail_with;  /* returned after writing, to test rollback */
} kv_req;

static int put_fn(hw_store_txn *w, void *ctx)
{
    kv_req *r = ctx;
    size_t n = r->val_len ? r->val_len : strlen(r->val);
    int rc = hw_store_kv_put(w, "t", r->key, strlen(r->key), r->val, n);
    if (rc != HW_OK)
        return rc;
    return r->fail_with;
}

static int put(hw_store *s, const char *key, const char *val)
{
    kv_req r = {.key = key, .val = val};
    return hw_store_write(s, put_fn, &r);
}

/* Reads key into buf through a fresh reader; returns the status. */
static int get(hw_store *s, const char *key, char *buf, size_t len)
{
    hw_store_reader *r = NULL;
    hw_store_txn *t = NULL;
    hw_arena *a = hw_arena_create(0);
    int rc = hw_store_reader_create(s, &r);
    if (rc == HW_OK)
        rc = hw_store_read_begin(r, &t);
    if (rc == HW_OK) {
        void *v;
        size_t n;
        rc = hw_store_kv_get(t, "t", key, strlen(key), a, &v, &n);
        if (rc == HW_OK)
            snprintf(buf, len, "%s", (char *)v);
        hw_store_read_end(r);
    }
    hw_store_reader_destroy(r);
    hw_arena_destroy(a);
    return rc;
}

static void file_digest(const char *path, uint64_t *sum, off_t *size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint64_t h = 1469598103934665603ull;
    int c;
    off_t n = 0;
    while ((c = fgetc(f)) != EOF) {
        h = (h ^ (uint64_t)c) * 1099511628211ull;
        n++;
    }
    fclose(f);
    *sum = h;
    *size = n;
}

/* ---- open, schema, close ---------------------------------------------- */

static void test_open_creates_store_and_reopens_it(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    hw_test_dir(dir, sizeof(dir), "open");
    hw_store *s = hw_test_open(dir, 0, 0);
    assert_non_null(s);
    assert_int_equal(put(s, "k", "v1"), HW_OK);
    hw_store_close(s);

    s = hw_test_open(dir, 0, 0);
    assert_non_null(s);
    char buf[32];
    assert_int_equal(get(s, "k", buf, sizeof(buf)), HW_OK);
    assert_string_equal(buf, "v1");
    assert_string_equal(hw_store_data_dir(s), dir);
    hw_store_close(s);
}

static void test_open_requires_data_dir(void **state)
{
    (void)state;
    hw_store_options o = {0};
    hw_store *s = (hw_store *)1;
    char err[128] = "";
    assert_int_equal(hw_store_open(&s, &o, err, sizeof(err)), HW_EINVALID);
    assert_null(s);
    assert_true(strlen(err) > 0);
}

static void test_second_open_of_same_dir_is_refused(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    hw_test_dir(dir, sizeof(dir), "busy");
    hw_store *s = hw_test_open(dir, 0, 0);
    assert_non_null(s);
    hw_store_options o = {.data_dir = dir};
    hw_store *s2 = NULL;
    char err[256];
    assert_int_equal(hw_store_open(&s2, &o, err, sizeof(err)), HW_EBUSY);
    assert_non_null(strstr(err, "in use"));
    hw_store_close(s);
}

/* Rewrites the schema record's version with raw LMDB. */
static void set_schema_version(const char *dir, uint32_t version)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta;
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 64);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    Helpwire__Store__V1__SchemaRecord r = HELPWIRE__STORE__V1__SCHEMA_RECORD__INIT;
    r.magic = "helpwire.store";
    r.version = version;
    unsigned char buf[64];
    MDB_val k = {6, "schema"};
    MDB_val v = {helpwire__store__v1__schema_record__pack(&r, buf), buf};
    assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void test_newer_schema_is_refused_and_left_untouched(void **state)
{
    (void)state;
    char dir[PATH_MAX], path[PATH_MAX + 16];
    hw_test_dir(dir, sizeof(dir), "newer");
    hw_store *s = hw_test_open(dir, 0, 0);
    assert_non_null(s);
    hw_store_close(s);
    set_schema_version(dir, HW_STORE_SCHEMA_VERSION + 1);

    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    uint64_t before, after;
    off_t size_before, size_after;
    file_digest(path, &before, &size_before);

    hw_store_options o = {.data_dir = dir};
    char err[512];
    s = NULL;
    assert_int_equal(hw_store_open(&s, &o, err, sizeof(err)), HW_ESCHEMA);
    assert_null(s);
    assert_non_null(strstr(err, "newer"));

    file_digest(path, &after, &size_after);
    assert_true(before == after);
    assert_int_equal(size_before, size_after);
}

static void test_foreign_lmdb_file_is_refused_and_left_untouched(void **state)
{
    (void)state;
    char dir[PATH_MAX], path[PATH_MAX + 16];
    hw_test_dir(dir, sizeof(dir), "foreign");
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 4);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "accounts", MDB_CREATE, &dbi), 0);
    MDB_val k = {3, "abc"}, v = {3, "xyz"};
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    uint64_t before, after;
    off_t sb, sa;
    file_digest(path, &before, &sb);
    hw_store_options o = {.data_dir = dir};
    hw_store *s = NULL;
    char err[512];
    assert_int_equal(hw_store_open(&s, &o, err, sizeof(err)), HW_ESCHEMA);
    assert_non_null(strstr(err, "another program"));
    file_digest(path, &after, &sa);
    assert_true(before == after);
    assert_int_equal(sb, sa);
}

static void test_non_lmdb_file_is_refused(void **state)
{
    (void)state;
    char dir[PATH_MAX], path[PATH_MAX + 16];
    hw_test_dir(dir, sizeof(dir), "garbage");
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (int i = 0; i < 3 * 4096; i++)
        fputc("not lmdb"[i % 8], f);
    fclose(f);
    hw_store_options o = {.data_dir = dir};
    hw_store *s = NULL;
    char err[512];
    assert_int_equal(hw_store_open(&s, &o, err, sizeof(err)), HW_ESCHEMA);
    assert_non_null(strstr(err, "not a usable LMDB file"));
}

/* ---- the writer: group commit and isolation --------------------------- */

typedef struct gate {
    sem_t entered; /* posted by the blocking request once it runs */
    sem_t release; /* the test posts it to let the request finish */
} gate;

static int gate_fn(hw_store_txn *w, void *ctx)
{
    gate *g = ctx;
    sem_post(&g->entered);
    sem_wait(&g->release);
    return hw_store_kv_put(w, "t", "gate", 4, "1", 1);
}

typedef struct outcome {
    atomic_int calls;
    atomic_int status;
} outcome;

static void record_done(void *ctx, int status)
{
    outcome *o = ctx;
    atomic_store(&o->status, status);
    atomic_fetch_add(&o->calls, 1);
}

typedef struct async_put {
    kv_req req;
    outcome out;
} async_put;

static int async_put_fn(hw_store_txn *w, void *ctx)
{
    return put_fn(w, &((async_put *)ctx)->req);
}

static void async_put_done(void *ctx, int status)
{
    record_done(&((async_put *)ctx)->out, status);
}

static void test_failing_request_rolls_back_alone_in_its_group(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    hw_test_dir(dir, sizeof(dir), "group");
    hw_store *s = hw_test_open(dir, 0, 0);
    assert_non_null(s);

    /* Hold the writer inside one request while three more queue up, so the
     * three are applied as one group. */
    gate g;
    sem_init(&g.entered, 0, 0);
    sem_init(&g.release, 0, 0);
    assert_int_equal(hw_store_submit(s, gate_fn, NULL, &g), HW_OK);
    sem_wait(&g.entered);

    async_put a = {.req = {.key = "a", .val = "A"}};
    async_put b = {.req = {.key = "b", .val = "B", .fail_with = HW_ECONFLICT}};
    async_put c = {.req = {.key = "c", .val = "C"}};
    assert_int_equal(hw_store_submit(s, async_put_fn, async_put_done, &a), HW_OK);
    assert_int_equal(hw_store_submit(s, async_put_fn, async_put_done, &b), HW_OK);
    assert_int_equal(hw_store_submit(s, async_put_fn, async_put_done, &c), HW_OK);
    hw_store_stats before;
    hw_store_get_stats(s, &before);
    sem_post(&g.release);

    /* A blocking write after them completes only after they did. */
    assert_int_equal(put(s, "z", "Z"), HW_OK);
    assert_int_equal(atomic_load(&a.out.calls), 1);
    assert_int_equal(atomic_load(&b.out.calls), 1);
    assert_int_equal(atomic_load(&c.out.calls), 1);
    assert_int_equal(atomic_load(&a.out.status), HW_OK);
    assert_int_equal(atomic_load(&b.out.status), HW_ECONFLICT);
    assert_int_equal(atomic_load(&c.out.status), HW_OK);

    char buf[16];
    assert_int_equal(get(s, "a", buf, sizeof(buf)), HW_OK);
    assert_int_equal(get(s, "b", buf, sizeof(buf)), HW_ENOTFOUND);
    assert_int_equal(get(s, "c", buf, sizeof(buf)), HW_OK);

    hw_store_stats after;
    hw_store_get_stats(s, &after);
    assert_true(after.largest_group >= 3);
    assert_int_equal(after.requests_failed - before.requests_failed, 1);
    /* gate, {a,b,c} (and maybe z) : at most three commits for five writes. */
    assert_true(after.commits - before.commits <= 3);
    hw_store_close(s);
    sem_destroy(&g.entered);
    sem_destroy(&g.release);
}

static void test_max_group_size_one_commits_each_request(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    hw_test_dir(dir, sizeof(dir), "single");
    hw_store *s = hw_test_open(dir, 0, 1);
    assert_non_null(s);
    enum { N = 20 };
    async_put reqs[N];
    char keys[N][16];
    memset(reqs, 0, sizeof(reqs));
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%d", i);
        reqs[i].req.key = keys[i];
        reqs[i].req.val = "v";
        assert_int_equal(hw_store_submit(s, async_put_fn, async_put_done, &reqs[i]), HW_OK);
    }
    hw_store_close(s); /* drains */
    for (int i = 0; i < N; i++) {
        assert_int_equal(atomic_load(&reqs[i].out.calls), 1);
        assert_int_equal(atomic_load(&reqs[i].out.status), HW_OK);
    }
    s = hw_test_open(dir, 0, 1);
    hw_store_stats st;
    char buf[8];
    for (int i = 0; i < N; i++)
        assert_int_equal(get(s, keys[i], buf, sizeof(buf)), HW_OK);
    hw_store_get_stats(s, &st);
    assert_int_equal(st.largest_group, 0); /* nothing written since reopen */
    hw_store_close(s);
}

static void test_close_completes_every_submitted_request(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    hw_test_dir(dir, sizeof(dir), "drain");
    hw_store *s = hw_test_open(dir, 0, 0);
    enum { N = 300 };
    static async_put reqs[N];
    static char keys[N][16];
    memset(reqs, 0, sizeof(reqs));
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof(keys[i]), "d%d", i);
        reqs[i].req.key = keys[i];
        reqs[i].req.val = keys[i];
        assert_int_equal(hw_store_submit(s, async_put_fn, async_put_done, &reqs[i]), HW_OK);
    }
    hw_store_close(s);
    for (int i = 0; i < N; i++)
        assert_int_equal(atomic_load(&reqs[i].out.calls), 1);
    s = hw_test_open(dir, 0, 0);
    char buf[8];
    for (int i = 0; i < N; i++) {
        assert_int_equal(get(s, keys[i], buf, sizeof(buf)), HW_OK);
        assert_string_equal(buf, keys[i]);
    }
    hw_store_close(s);
}

static int submit_from_done_fn(hw_store_txn *w, void *ctx)
{
    return hw_store_kv_put(w, "t", "chained", 7, "1", 1);
}

typedef struct chain {
    hw_store *s;
    atomic_int first_status;
    atomic_int submit_status;
    outcome second;
} chain;

static void chain_done(void *ctx, int status)
{
    chain *c = ctx;
    atomic_store(&c->first_status, status);
    /* A done callback may submit (it runs on the writer thread). */
    atomic_store(&c->submit_status, hw_store_submit(c->s, submit_from_done_fn, record_done, &c->second));
}

static void test_done_callback_may_submit(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    hw_test_dir(dir, sizeof(dir), "chain");
    hw_store *s = hw_test_open(dir, 0, 0);
    chain c = {.s = s};
    atomic_store(&c.submit_status, 1);
    assert_int_equal(hw_store_submit(s, submit_from_done_fn, chain_done, &c), HW_OK);
    for (int i = 0; i < 5000 && atomic_load(&c.second.calls) == 0; i++)
        usleep(1000);
    hw_store_close(s);
    assert_int_equal(atomic_load(&c.first_status), HW_OK);
    assert_int_equal(atomic_load(&c.submit_status), HW_OK);
    assert_int_equal(atomic_load(&c.second.calls), 1);
    assert_int_equal(atomic_load(&c.second.status), HW_OK);
}

/* ---- readers ----------------------------------------------------------- */

static void test_read_sees_a_snapshot_until_renewed(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    hw_test_dir(dir, sizeof(dir), "snap");
    hw_store *s = hw_test_open(dir, 0, 0);
    assert_int_equal(put(s, "x", "old"), HW_OK);

    hw_store_reader *r;
    hw_store_txn *t;
    hw_arena *a = hw_arena_create(0);
    assert_int_equal(hw_store_reader_create(s, &r), HW_OK);
    assert_int_equal(hw_store_read_begin(r, &t), HW_OK);
    assert_false(hw_store_txn_writable(t));
    assert_null(hw_store_txn_arena(t));
    assert_int_equal(hw_store_read_begin(r, &t), HW_EINVALID); /* already begun */

    assert_int_equal(put(s, "x", "new"), HW_OK);
    void *v;
    size_t n;
    assert_int_equal(hw_store_kv_get(t, "t", "x", 1, a, &v, &n), HW_OK);
    assert_string_equal(v, "old");
    /* Writes through a read transaction are refused. */
    assert_int_equal(hw_store_kv_put(t, "t", "y", 1, "1", 1), HW_EINVALID);
    uint64_t seq;
    assert_int_equal(hw_store_next_seq(t, "s", 1, &seq), HW_EINVALID);
    hw_store_read_end(r);

    assert_int_equal(hw_store_read_begin(r, &t), HW_OK);
    assert_int_equal(hw_store_kv_get(t, "t", "x", 1, a, &v, &n), HW_OK);
    assert_string_equal(v, "new");
    assert_int_equal(n, 3);
    hw_store_read_end(r);
    hw_store_reader_destroy(r);
    hw_arena_destroy(a);
    hw_store_close(s);
}

static int count_fn(void *arg, const void *key, size_t key_len, const void *val, size_t val_len)
{
    (*(int *)arg)++;
    return 0;
}

/* A store holding two kv entries in namespace "t", read open on *t. */
static hw_store *open_two_kv(const char *tag, hw_store_reader **r, hw_store_txn **t)
{
    char dir[PATH_MAX];
    hw_test_dir(dir, sizeof(dir), tag);
    hw_store *s = hw_test_open(dir, 0, 0);
    assert_non_null(s);
    assert_int_equal(put(s, "1", "a"), HW_OK);
    assert_int_equal(put(s, "2", "b"), HW_OK);
    assert_int_equal(hw_store_reader_create(s, r), HW_OK);
    assert_int_equal(hw_store_read_begin(*r, t), HW_OK);
    return s;
}

static void close_kv(hw_store *s, hw_store_reader *r)
{
    hw_store_read_end(r);
    hw_store_reader_destroy(r);
    hw_store_close(s);
}

static void test_kv_foreach_stays_in_its_namespace(void **state)
{
    (void)state;
    hw_store_reader *r;
    hw_store_txn *t;
    hw_store *s = open_two_kv("kvns", &r, &t);
    int n = 0;
    assert_int_equal(hw_store_kv_foreach(t, "t", count_fn, &n), HW_OK);
    assert_int_equal(n, 2);
    n = 0;
    assert_int_equal(hw_store_kv_foreach(t, "tt", count_fn, &n), HW_OK);
    assert_int_equal(n, 0);
    hw_arena *a = hw_arena_create(0);
    void *v;
    assert_int_equal(hw_store_kv_get(t, "", "x", 1, a, &v, NULL), HW_EINVALID);
    assert_int_equal(hw_store_kv_get(t, "t", "", 0, a, &v, NULL), HW_EINVALID);
    hw_arena_destroy(a);
    close_kv(s, r);
}

static int stop_at_first(void *arg, const void *key, size_t key_len, const void *val, size_t val_len)
{
    (*(int *)arg)++;
    return HW_STOP;
}

static void test_kv_foreach_visitor_that_stops_is_not_an_error(void **state)
{
    (void)state;
    hw_store_reader *r;
    hw_store_txn *t;
    hw_store *s = open_two_kv("kvstop", &r, &t);
    int n = 0;
    assert_int_equal(hw_store_kv_foreach(t, "t", stop_at_first, &n), HW_OK);
    assert_int_equal(n, 1);
    close_kv(s, r);
}

typedef struct {
    char keys[8][8];
    int n;
} seen_keys;

static int keep_key(void *arg, const void *key, size_t key_len, const void *val, size_t val_len)
{
    seen_keys *s = arg;
    if (s->n < 8 && key_len < 8) {
        memcpy(s->keys[s->n], key, key_len);
        s->keys[s->n][key_len] = '\0';
    }
    s->n++;
    return 0;
}

/* Keys of ns "t" after `after`, joined with ','. */
static const char *keys_after(hw_store_txn *t, const char *after, char *buf, size_t len)
{
    seen_keys s = {0};
    assert_int_equal(hw_store_kv_foreach_after(t, "t", after, after ? strlen(after) : 0, keep_key, &s),
                     HW_OK);
    buf[0] = '\0';
    for (int i = 0; i < s.n && i < 8; i++)
        snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", i ? "," : "", s.keys[i]);
    return buf;
}

static void test_kv_foreach_after_starts_past_the_given_key(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    hw_test_dir(dir, sizeof(dir), "kvafter");
    hw_store *s = hw_test_open(dir, 0, 0);
    assert_non_null(s);
    assert_int_equal(put(s, "1", "a"), HW_OK);
    assert_int_equal(put(s, "10", "c"), HW_OK);
    assert_int_equal(put(s, "2", "b"), HW_OK);
    hw_store_reader *r;
    hw_store_txn *t;
    assert_int_equal(hw_store_reader_create(s, &r), HW_OK);
    assert_int_equal(hw_store_read_begin(r, &t), HW_OK);
    char b[64];
    assert_string_equal(keys_after(t, NULL, b, sizeof b), "1,10,2");
    assert_string_equal(keys_after(t, "1", b, sizeof b), "10,2"); /* exclusive; "10" > "1" */
    assert_string_equal(keys_after(t, "10", b, sizeof b), "2");
    assert_string_equal(keys_after(t, "15", b, sizeof b), "2"); /* need not exist */
    assert_string_equal(keys_after(t, "0", b, sizeof b), "1,10,2");
    assert_string_equal(keys_after(t, "2", b, sizeof b), ""); /* the last: nothing */
    assert_string_equal(keys_after(t, "9", b, sizeof b), ""); /* past the namespace's end */
    int n = 0;
    assert_int_equal(hw_store_kv_foreach_after(t, "t", "1", 1, stop_at_first, &n), HW_OK);
    assert_int_equal(n, 1);
    char big[401];
    memset(big, 'k', sizeof big);
    assert_int_equal(hw_store_kv_foreach_after(t, "t", big, sizeof big, count_fn, &n), HW_EINVALID);
    assert_int_equal(hw_store_kv_foreach_after(t, "t", NULL, 3, count_fn, &n), HW_EINVALID);
    assert_int_equal(hw_store_kv_foreach_after(t, "", "1", 1, count_fn, &n), HW_EINVALID);
    close_kv(s, r);
}

/* ---- sequences --------------------------------------------------------- */

typedef struct seq_req {
    uint64_t got[3];
    int fail;
} seq_req;

static int seq_fn(hw_store_txn *w, void *ctx)
{
    seq_req *q = ctx;
    for (int i = 0; i < 3; i++) {
        int rc = hw_store_next_seq(w, "ticket", 1000, &q->got[i]);
        if (rc != HW_OK)
            return rc;
    }
    return q->fail;
}

static void test_sequences_continue_across_reopen_and_skip_nothing_committed(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    hw_test_dir(dir, sizeof(dir), "seq");
    hw_store *s = hw_test_open(dir, 0, 0);
    seq_req q = {0};
    assert_int_equal(hw_store_write(s, seq_fn, &q), HW_OK);
    assert_int_equal(q.got[0], 1000);
    assert_int_equal(q.got[2], 1002);
    /* A failed request's numbers were never committed nor acknowledged. */
    seq_req f = {.fail = HW_EPRECONDITION};
    assert_int_equal(hw_store_write(s, seq_fn, &f), HW_EPRECONDITION);
    hw_store_close(s);

    s = hw_test_open(dir, 0, 0);
    memset(&q, 0, sizeof(q));
    assert_int_equal(hw_store_write(s, seq_fn, &q), HW_OK);
    assert_int_equal(q.got[0], 1003);
    hw_store_reader *r;
    hw_store_txn *t;
    uint64_t last = 0;
    assert_int_equal(hw_store_reader_create(s, &r), HW_OK);
    assert_int_equal(hw_store_read_begin(r, &t), HW_OK);
    assert_int_equal(hw_store_peek_seq(t, "ticket", &last), HW_OK);
    assert_int_equal(last, 1005);
    assert_int_equal(hw_store_peek_seq(t, "never", &last), HW_OK);
    assert_int_equal(last, 0);
    hw_store_read_end(r);
    hw_store_reader_destroy(r);
    hw_store_close(s);
}

/* ---- map growth -------------------------------------------------------- */

typedef struct big_req {
    int first, count;
    size_t size;
} big_req;

static int big_fn(hw_store_txn *w, void *ctx)
{
    big_req *b = ctx;
    char *val = hw_arena_alloc(hw_store_txn_arena(w), b->size);
    if (!val)
        return HW_ENOMEM;
    for (int i = b->first; i < b->first + b->count; i++) {
        char key[16];
        memset(val, 'a' + i % 26, b->size);
        snprintf(key, sizeof(key), "big%05d", i);
        int rc = hw_store_kv_put(w, "t", key, strlen(key), val, b->size);
        if (rc != HW_OK)
            return rc;
    }
    return HW_OK;
}

static void test_full_map_grows_and_no_write_is_lost(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    hw_test_dir(dir, sizeof(dir), "grow");
    hw_store *s = hw_test_open(dir, 1 << 20, 0); /* 1 MiB */
    assert_non_null(s);
    hw_store_stats st0;
    hw_store_get_stats(s, &st0);

    /* Many small requests, and one that alone needs more than the map. */
    for (int i = 0; i < 40; i++) {
        big_req b = {.first = i * 4, .count = 4, .size = 16 * 1024};
        assert_int_equal(hw_store_write(s, big_fn, &b), HW_OK);
    }
    big_req huge = {.first = 1000, .count = 200, .size = 16 * 1024}; /* ~3.2 MB */
    assert_int_equal(hw_store_write(s, big_fn, &huge), HW_OK);

    hw_store_stats st;
    hw_store_get_stats(s, &st);
    assert_true(st.map_grows > 0);
    assert_true(st.map_size_bytes > st0.map_size_bytes);
    hw_store_close(s);

    s = hw_test_open(dir, 1 << 20, 0);
    hw_store_reader *r;
    hw_store_txn *t;
    hw_arena *a = hw_arena_create(0);
    assert_int_equal(hw_store_reader_create(s, &r), HW_OK);
    assert_int_equal(hw_store_read_begin(r, &t), HW_OK);
    for (int i = 0; i < 1200; i++) {
        if (i >= 160 && i < 1000)
            continue;
        char key[16];
        void *v;
        size_t n;
        snprintf(key, sizeof(key), "big%05d", i);
        assert_int_equal(hw_store_kv_get(t, "t", key, strlen(key), a, &v, &n), HW_OK);
        assert_int_equal(n, 16 * 1024);
        assert_int_equal(((char *)v)[n - 1], 'a' + i % 26);
        hw_arena_reset(a);
    }
    hw_store_read_end(r);
    hw_store_reader_destroy(r);
    hw_arena_destroy(a);
    hw_store_close(s);
}

static void test_growth_is_capped_by_max_map_size(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    hw_test_dir(dir, sizeof(dir), "cap");
    hw_store_options o = {.data_dir = dir, .initial_map_size_bytes = 1 << 20, .max_map_size_bytes = 2 << 20};
    hw_store *s = NULL;
    char err[256];
    assert_int_equal(hw_store_open(&s, &o, err, sizeof(err)), HW_OK);
    big_req huge = {.first = 0, .count = 400, .size = 16 * 1024}; /* 6.4 MB */
    assert_int_equal(hw_store_write(s, big_fn, &huge), HW_EFULL);
    /* The store still works for writes that fit. */
    assert_int_equal(put(s, "small", "ok"), HW_OK);
    hw_store_close(s);
}

/* ---- backup ------------------------------------------------------------ */

static void test_backup_is_a_consistent_openable_copy(void **state)
{
    (void)state;
    char dir[PATH_MAX], bdir[PATH_MAX];
    hw_test_dir(dir, sizeof(dir), "live");
    hw_test_dir(bdir, sizeof(bdir), "backup");
    hw_store *s = hw_test_open(dir, 0, 0);
    for (int i = 0; i < 50; i++) {
        char k[16];
        snprintf(k, sizeof(k), "b%d", i);
        assert_int_equal(put(s, k, k), HW_OK);
    }
    uint64_t size = 0;
    char why[256];
    assert_int_equal(hw_store_backup(s, bdir, &size, why, sizeof why), HW_OK);
    assert_true(size > 0);
    /* Owner-only, as the live store: it holds token hashes and messages. */
    char copy[PATH_MAX + 32];
    struct stat st;
    snprintf(copy, sizeof copy, "%s/data.mdb", bdir);
    assert_int_equal(stat(copy, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal((uint64_t)st.st_size, size);
    /* A second backup into the same directory is refused, the first kept. */
    assert_int_equal(hw_store_backup(s, bdir, NULL, why, sizeof why), HW_EINVALID);
    assert_string_equal(why, "it holds a data.mdb already");
    assert_int_equal(stat(copy, &st), 0);
    assert_int_equal((uint64_t)st.st_size, size);
    /* A missing directory is made, 0700; one whose parent is missing is not. */
    char made[PATH_MAX + 16];
    snprintf(made, sizeof made, "%s/new", bdir);
    assert_int_equal(hw_store_backup(s, made, NULL, why, sizeof why), HW_OK);
    assert_int_equal(stat(made, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    snprintf(copy, sizeof copy, "%s/data.mdb", made);
    assert_int_equal(stat(copy, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(hw_store_backup(s, "/nonexistent/dir", NULL, why, sizeof why), HW_EINVALID);
    assert_string_equal(why, "cannot create the directory: No such file or directory");
    assert_int_equal(stat("/nonexistent", &st), -1);
    /* A file in the way is not a directory. */
    assert_int_equal(hw_store_backup(s, copy, NULL, why, sizeof why), HW_EINVALID);
    assert_string_equal(why, "it exists and is not a directory");
    assert_int_equal(put(s, "after", "x"), HW_OK);
    hw_store_close(s);

    hw_store *b = hw_test_open(bdir, 0, 0);
    assert_non_null(b);
    char buf[16];
    assert_int_equal(get(b, "b49", buf, sizeof(buf)), HW_OK);
    assert_string_equal(buf, "b49");
    assert_int_equal(get(b, "after", buf, sizeof(buf)), HW_ENOTFOUND);
    hw_store_close(b);
}

/* ---- errors ------------------------------------------------------------ */

static void test_every_error_code_has_a_name_and_text(void **state)
{
    (void)state;
    for (int c = 0; c > -HW_ERR_COUNT; c--) {
        assert_string_not_equal(hw_strerror(c), "unknown error");
        assert_string_not_equal(hw_errname(c), "HW_E?");
    }
    assert_string_equal(hw_strerror(1), "unknown error");
    assert_string_equal(hw_strerror(-HW_ERR_COUNT), "unknown error");
    assert_string_equal(hw_errname(HW_ENOTFOUND), "HW_ENOTFOUND");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_creates_store_and_reopens_it),
        cmocka_unit_test(test_open_requires_data_dir),
        cmocka_unit_test(test_second_open_of_same_dir_is_refused),
        cmocka_unit_test(test_newer_schema_is_refused_and_left_untouched),
        cmocka_unit_test(test_foreign_lmdb_file_is_refused_and_left_untouched),
        cmocka_unit_test(test_non_lmdb_file_is_refused),
        cmocka_unit_test(test_failing_request_rolls_back_alone_in_its_group),
        cmocka_unit_test(test_max_group_size_one_commits_each_request),
        cmocka_unit_test(test_close_completes_every_submitted_request),
        cmocka_unit_test(test_done_callback_may_submit),
        cmocka_unit_test(test_read_sees_a_snapshot_until_renewed),
        cmocka_unit_test(test_kv_foreach_stays_in_its_namespace),
        cmocka_unit_test(test_kv_foreach_visitor_that_stops_is_not_an_error),
        cmocka_unit_test(test_kv_foreach_after_starts_past_the_given_key),
        cmocka_unit_test(test_sequences_continue_across_reopen_and_skip_nothing_committed),
        cmocka_unit_test(test_full_map_grows_and_no_write_is_lost),
        cmocka_unit_test(test_growth_is_capped_by_max_map_size),
        cmocka_unit_test(test_backup_is_a_consistent_openable_copy),
        cmocka_unit_test(test_every_error_code_has_a_name_and_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
