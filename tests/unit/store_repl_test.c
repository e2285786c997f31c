/*
 * store_repl_test: the store's side of replication (store.h, "Replication")
 * with a replicator of the test's own that keeps the proposed entries in
 * memory, as raft would have them once committed.
 *
 * A leader store runs writes of every kind the store makes (plain puts,
 * reserved puts of records, deletes, cursor deletes of the dedupe sweep,
 * sequences, a group where one request fails), from several threads so
 * that groups form; a follower store applies the entries in order. Both
 * are then dumped with mdb_dump and must be byte for byte the same, the
 * notes must reach the follower's note handler in order, a replayed log
 * must change nothing, and a proposal that fails must leave nothing on the
 * leader.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "helpwire/v1/customers.pb-c.h"
#include "tests/unit/store_test_util.h"

typedef struct entry {
    uint64_t index;
    size_t len;
    unsigned char *bytes;
} entry;

/* The leader's replicator: a log in memory. */
typedef struct fake_log {
    pthread_mutex_t mu;
    entry *e;
    size_t n, cap;
    uint64_t next_index;
    atomic_int refuse; /* propose answers HW_ENOTLEADER */
} fake_log;

static int leader_prepare(void *ctx, uint64_t *ticket)
{
    (void)ctx;
    *ticket = 7;
    return HW_OK;
}

static int leader_propose(void *ctx, uint64_t ticket, const void *bytes, size_t len, uint64_t *index)
{
    fake_log *l = ctx;
    assert_int_equal(ticket, 7);
    if (atomic_load(&l->refuse))
        return HW_ENOTLEADER;
    pthread_mutex_lock(&l->mu);
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->e = realloc(l->e, l->cap * sizeof *l->e);
        assert_non_null(l->e);
    }
    entry *e = &l->e[l->n++];
    e->index = ++l->next_index;
    e->len = len;
    e->bytes = malloc(len);
    memcpy(e->bytes, bytes, len);
    *index = e->index;
    pthread_mutex_unlock(&l->mu);
    return HW_OK;
}

static bool yes(void *ctx)
{
    (void)ctx;
    return true;
}

static int follower_prepare(void *ctx, uint64_t *ticket)
{
    (void)ctx;
    (void)ticket;
    return HW_ENOTLEADER;
}

static int never_propose(void *ctx, uint64_t ticket, const void *bytes, size_t len, uint64_t *index)
{
    (void)ctx, (void)ticket, (void)bytes, (void)len, (void)index;
    fail_msg("a follower proposed");
    return HW_EIO;
}

static bool no(void *ctx)
{
    (void)ctx;
    return false;
}

/* The follower's note handler: the notes in the order they came. */
typedef struct notes_seen {
    char text[256][32];
    uint64_t index[256];
    size_t n;
} notes_seen;

static void on_note(void *ctx, uint64_t index, const void *note, size_t len)
{
    notes_seen *ns = ctx;
    assert_true(ns->n < 256 && len < 32);
    memcpy(ns->text[ns->n], note, len);
    ns->text[ns->n][len] = 0;
    ns->index[ns->n++] = index;
}

typedef struct fixture {
    char dir_a[PATH_MAX], dir_b[PATH_MAX];
    hw_store *a, *b;
    fake_log log;
    notes_seen notes;
} fixture;

static void set_follower(fixture *f)
{
    hw_store_replicator fr = {.prepare = follower_prepare, .propose = never_propose, .is_leader = no};
    assert_int_equal(hw_store_set_replicator(f->b, &fr), HW_OK);
    hw_store_set_note_handler(f->b, on_note, &f->notes);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    pthread_mutex_init(&f->log.mu, NULL);
    f->a = hw_test_open(hw_test_dir(f->dir_a, sizeof f->dir_a, "repl-a"), 1 << 20, 0);
    f->b = hw_test_open(hw_test_dir(f->dir_b, sizeof f->dir_b, "repl-b"), 1 << 20, 0);
    if (!f->a || !f->b)
        return -1;
    hw_store_replicator lr = {.ctx = &f->log, .prepare = leader_prepare, .propose = leader_propose, .is_leader = yes};
    if (hw_store_set_replicator(f->a, &lr) != HW_OK)
        return -1;
    set_follower(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    hw_store_close(f->a);
    hw_store_close(f->b);
    for (size_t i = 0; i < f->log.n; i++)
        free(f->log.e[i].bytes);
    free(f->log.e);
    free(f);
    return 0;
}

/* ---- the writes ---------------------------------------------------------- */

typedef struct wctx {
    int i;
    int fail; /* return HW_ECONFLICT after writing */
} wctx;

static int write_mix(hw_store_txn *w, void *arg)
{
    wctx *c = arg;
    char key[32], val[64];
    snprintf(key, sizeof key, "k%05d", c->i);
    snprintf(val, sizeof val, "value of %d", c->i);
    int rc = hw_store_kv_put(w, "test", key, strlen(key), val, strlen(val));
    if (rc != HW_OK)
        return rc;
    uint64_t seq;
    if ((rc = hw_store_next_seq(w, "test_seq", 1, &seq)) != HW_OK)
        return rc;
    /* A record: packed straight into the map (MDB_RESERVE), and its index. */
    char id[32], uid[32];
    snprintf(id, sizeof id, "c-%d", c->i);
    snprintf(uid, sizeof uid, "u%d", c->i);
    Helpwire__V1__Customer cu = HELPWIRE__V1__CUSTOMER__INIT;
    Helpwire__V1__Identity ident = HELPWIRE__V1__IDENTITY__INIT;
    ident.channel = HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM;
    ident.channel_user_id = uid;
    Helpwire__V1__Identity *idents[] = {&ident};
    cu.id = id;
    cu.name = val;
    cu.identities = idents;
    cu.n_identities = 1;
    if ((rc = hw_store_customer_put(w, &cu, HW_PUT_UPSERT, 0)) != HW_OK)
        return rc;
    if ((rc = hw_store_dedupe_put(w, HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, key, val, strlen(val),
                                  1000 + c->i)) != HW_OK)
        return rc;
    if (c->i % 3 == 0 && c->i > 0) { /* a delete of an earlier key */
        snprintf(key, sizeof key, "k%05d", c->i - 1);
        rc = hw_store_kv_delete(w, "test", key, strlen(key));
        if (rc != HW_OK && rc != HW_ENOTFOUND)
            return rc;
    }
    snprintf(val, sizeof val, "note %d", c->i);
    if ((rc = hw_store_txn_note(w, val, strlen(val))) != HW_OK)
        return rc;
    return c->fail ? HW_ECONFLICT : HW_OK;
}

typedef struct writer_arg {
    hw_store *s;
    int from, to;
} writer_arg;

static void *writer_thread(void *arg)
{
    writer_arg *wa = arg;
    for (int i = wa->from; i < wa->to; i++) {
        wctx c = {.i = i, .fail = i % 17 == 5};
        int rc = hw_store_write(wa->s, write_mix, &c);
        if (c.fail)
            assert_int_equal(rc, HW_ECONFLICT);
        else
            assert_int_equal(rc, HW_OK);
    }
    return NULL;
}

static int sweep(hw_store_txn *w, void *arg)
{
    (void)arg;
    hw_dedupe_sweep sw = {0};
    size_t deleted = 0;
    int rc = hw_store_dedupe_sweep(w, &sw, 1000, 1000 + 50, 5000, &deleted);
    assert_true(rc != HW_OK || deleted > 0);
    return rc;
}

/* mdb_dump -p -a of a store directory into buf, leaving out what each
 * store decides for itself: its map size and the schema record written
 * when the file was created (its creation time). */
static size_t dump(const char *dir, char *buf, size_t cap)
{
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "mdb_dump -p -a '%s'", dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = 0;
    char line[8192];
    bool skip_value = false;
    while (fgets(line, sizeof line, p)) {
        if (skip_value) {
            skip_value = false;
            continue;
        }
        if (strncmp(line, "mapsize=", 8) == 0)
            continue;
        if (strcmp(line, " schema\n") == 0) {
            skip_value = true;
            continue;
        }
        size_t l = strlen(line);
        assert_true(n + l < cap);
        memcpy(buf + n, line, l);
        n += l;
    }
    assert_int_equal(pclose(p), 0);
    return n;
}

static void apply_all(fixture *f, size_t from)
{
    for (size_t i = from; i < f->log.n; i++)
        assert_int_equal(hw_store_apply(f->b, f->log.e[i].index, f->log.e[i].bytes, f->log.e[i].len), HW_OK);
}

typedef struct wait_flag {
    atomic_int fired, ok;
} wait_flag;

static void on_applied(void *arg, bool ok)
{
    wait_flag *w = arg;
    atomic_store(&w->ok, ok);
    atomic_store(&w->fired, 1);
}

static void wait_applied(hw_store *s, uint64_t index)
{
    wait_flag w = {0};
    assert_int_equal(hw_store_when_applied(s, index, on_applied, &w), HW_OK);
    for (int i = 0; i < 5000 && !atomic_load(&w.fired); i++)
        usleep(1000);
    assert_true(atomic_load(&w.fired));
    assert_true(atomic_load(&w.ok));
}

static void follower_applies_the_same_bytes(void **state)
{
    fixture *f = *state;
    enum { THREADS = 4, PER = 40 };
    pthread_t t[THREADS];
    writer_arg wa[THREADS];
    for (int i = 0; i < THREADS; i++) {
        wa[i] = (writer_arg){f->a, i * PER, (i + 1) * PER};
        pthread_create(&t[i], NULL, writer_thread, &wa[i]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(hw_store_write(f->a, sweep, NULL), HW_OK); /* cursor deletes */
    assert_true(f->log.n > 0);
    assert_int_equal(hw_store_applied_index(f->a), f->log.e[f->log.n - 1].index);

    apply_all(f, 0);
    uint64_t last = f->log.e[f->log.n - 1].index;
    wait_applied(f->b, last);
    assert_int_equal(hw_store_applied_index(f->b), last);

    /* Every successful write's note reached the follower once, in index
     * order; a failed request's note went with its changes. */
    size_t expect = 0;
    for (int i = 0; i < THREADS * PER; i++)
        expect += i % 17 != 5;
    assert_int_equal(f->notes.n, expect);
    for (size_t i = 1; i < f->notes.n; i++)
        assert_true(f->notes.index[i] >= f->notes.index[i - 1]);
    for (size_t i = 0; i < f->notes.n; i++)
        assert_int_equal(strncmp(f->notes.text[i], "note ", 5), 0);

    static char da[1 << 22], db[1 << 22];
    size_t na = dump(f->dir_a, da, sizeof da), nb = dump(f->dir_b, db, sizeof db);
    assert_true(na > 1000);
    assert_int_equal(na, nb);
    assert_memory_equal(da, db, na);

    /* A failed request left nothing: its key is absent on both. */
    assert_null(memmem(da, na, " value of 5\n", 12));
    assert_non_null(memmem(da, na, " value of 4\n", 12)); /* (the search can find one) */

    /* The log replayed from the start (a restart) changes nothing. */
    size_t seen = f->notes.n;
    hw_store_close(f->b);
    f->b = hw_test_open(f->dir_b, 1 << 20, 0);
    assert_non_null(f->b);
    set_follower(f);
    assert_int_equal(hw_store_applied_index(f->b), last);
    apply_all(f, 0);
    usleep(100 * 1000);
    assert_int_equal(f->notes.n, seen); /* skipped entries run no note */
    nb = dump(f->dir_b, db, sizeof db);
    assert_int_equal(na, nb);
    assert_memory_equal(da, db, na);
}

typedef struct big_arg {
    int i;
} big_arg;

static int write_big(hw_store_txn *w, void *arg)
{
    big_arg *b = arg;
    static char val[24 * 1024];
    memset(val, 'a' + b->i % 26, sizeof val);
    char key[32];
    snprintf(key, sizeof key, "big%05d", b->i);
    return hw_store_kv_put(w, "big", key, strlen(key), val, sizeof val);
}

static void *big_writer(void *arg)
{
    writer_arg *wa = arg;
    for (int i = wa->from; i < wa->to; i++) {
        big_arg b = {i};
        assert_int_equal(hw_store_write(wa->s, write_big, &b), HW_OK);
    }
    return NULL;
}

/* Groups that outgrow the map (1 MiB at first) run again in a grown one:
 * what the follower gets is still exactly what the leader keeps. */
static void groups_that_fill_the_map_replicate_once(void **state)
{
    fixture *f = *state;
    enum { THREADS = 4, PER = 50 }; /* 200 x 24 KiB: the map grows a few times */
    pthread_t t[THREADS];
    writer_arg wa[THREADS];
    for (int i = 0; i < THREADS; i++) {
        wa[i] = (writer_arg){f->a, i * PER, (i + 1) * PER};
        pthread_create(&t[i], NULL, big_writer, &wa[i]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    hw_store_stats st;
    hw_store_get_stats(f->a, &st);
    assert_true(st.map_grows > 0);
    apply_all(f, 0);
    wait_applied(f->b, f->log.e[f->log.n - 1].index);
    static char da[1 << 24], db[1 << 24];
    size_t na = dump(f->dir_a, da, sizeof da), nb = dump(f->dir_b, db, sizeof db);
    assert_int_equal(na, nb);
    assert_memory_equal(da, db, na);
}

/* A request whose last change is a record packed straight into the map
 * (MDB_RESERVE), in groups that run request by request in nested
 * transactions (a request of the group fails): the value the follower gets
 * must be the one the leader packed. */
static int write_record_last(hw_store_txn *w, void *arg)
{
    wctx *c = arg;
    char id[32], name[64], uid[32];
    snprintf(id, sizeof id, "r-%d", c->i);
    snprintf(name, sizeof name, "record %d written last", c->i);
    snprintf(uid, sizeof uid, "ru%d", c->i);
    Helpwire__V1__Customer cu = HELPWIRE__V1__CUSTOMER__INIT;
    cu.id = id;
    cu.name = name;
    cu.locale = c->i % 2 ? "zh" : "en";
    int rc = hw_store_customer_put(w, &cu, HW_PUT_UPSERT, 0);
    if (rc != HW_OK)
        return rc;
    return c->fail ? HW_ECONFLICT : HW_OK;
}

static void *record_writer(void *arg)
{
    writer_arg *wa = arg;
    for (int i = wa->from; i < wa->to; i++) {
        wctx c = {.i = i, .fail = i % 5 == 2};
        int rc = hw_store_write(wa->s, write_record_last, &c);
        assert_int_equal(rc, c.fail ? HW_ECONFLICT : HW_OK);
    }
    return NULL;
}

static void reserved_values_survive_nested_groups(void **state)
{
    fixture *f = *state;
    enum { THREADS = 6, PER = 60 };
    pthread_t t[THREADS];
    writer_arg wa[THREADS];
    for (int i = 0; i < THREADS; i++) {
        wa[i] = (writer_arg){f->a, i * PER, (i + 1) * PER};
        pthread_create(&t[i], NULL, record_writer, &wa[i]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    apply_all(f, 0);
    wait_applied(f->b, f->log.e[f->log.n - 1].index);
    static char da[1 << 22], db[1 << 22];
    size_t na = dump(f->dir_a, da, sizeof da), nb = dump(f->dir_b, db, sizeof db);
    assert_int_equal(na, nb);
    assert_memory_equal(da, db, na);
}

static void a_failed_proposal_leaves_nothing(void **state)
{
    fixture *f = *state;
    wctx c = {.i = 1};
    assert_int_equal(hw_store_write(f->a, write_mix, &c), HW_OK);
    uint64_t before = hw_store_applied_index(f->a);
    static char d1[1 << 20], d2[1 << 20];
    size_t n1 = dump(f->dir_a, d1, sizeof d1);
    atomic_store(&f->log.refuse, 1);
    c.i = 2;
    assert_int_equal(hw_store_write(f->a, write_mix, &c), HW_ENOTLEADER);
    assert_int_equal(hw_store_applied_index(f->a), before);
    size_t n2 = dump(f->dir_a, d2, sizeof d2);
    assert_int_equal(n1, n2);
    assert_memory_equal(d1, d2, n1);
    /* A follower refuses writes at once. */
    assert_int_equal(hw_store_write(f->b, write_mix, &c), HW_ENOTLEADER);
    assert_false(hw_store_is_leader(f->b));
    assert_true(hw_store_is_leader(f->a));
}

static void a_malformed_entry_is_refused(void **state)
{
    fixture *f = *state;
    const unsigned char junk[] = "HWE1\x01\x00\xff\xff\x10\x00\x00\x00";
    assert_int_equal(hw_store_apply(f->b, 1, junk, sizeof junk - 1), HW_ECORRUPT);
    assert_int_equal(hw_store_apply(f->b, 1, "XXXX", 4), HW_ECORRUPT);
    /* Padding to 8 bytes (the raft log's) is allowed; more is not. */
    unsigned char pad[16] = "HWE1";
    assert_int_equal(hw_store_apply(f->b, 1, pad, 8), HW_OK);
    assert_int_equal(hw_store_apply(f->b, 2, pad, 16), HW_ECORRUPT);
    wait_applied(f->b, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(follower_applies_the_same_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(groups_that_fill_the_map_replicate_once, setup, teardown),
        cmocka_unit_test_setup_teardown(reserved_values_survive_nested_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(a_failed_proposal_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(a_malformed_entry_is_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
