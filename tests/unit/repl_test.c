/*
 * repl_test: three replicas of a store on canonical raft in one process,
 * over loopback TCP (server/repl/repl.h): elections, writes on the leader
 * applied by the followers, writes refused where they cannot commit, a
 * leadership transfer, a member added and removed, a replica restarted.
 * Run under ThreadSanitizer too (tag concurrent): the raft thread, the
 * writers and the callers meet in repl.c and store.c.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/repl/repl.h"
#include "tests/unit/store_test_util.h"

#define N 4 /* three voters, and one to add */

typedef struct node {
    char dir[PATH_MAX], raft_dir[PATH_MAX + 8];
    char raft_addr[64], grpc_addr[64];
    hw_store *store;
    hw_repl *repl;
} node;

typedef struct fixture {
    node n[N];
    hw_repl_member boot[3];
} fixture;

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void start(fixture *f, int i, bool bootstrap)
{
    node *nd = &f->n[i];
    nd->store = hw_test_open(nd->dir, 1 << 20, 0);
    assert_non_null(nd->store);
    hw_repl_options o = {.id = (uint64_t)i + 1,
                         .raft_address = nd->raft_addr,
                         .grpc_address = nd->grpc_addr,
                         .dir = nd->raft_dir,
                         .bootstrap = bootstrap ? f->boot : NULL,
                         .n_bootstrap = bootstrap ? 3 : 0,
                         .store = nd->store,
                         .election_timeout_ms = 300,
                         .heartbeat_timeout_ms = 30,
                         .snapshot_threshold = 32,
                         .snapshot_trailing = 8};
    char err[256];
    int rc = hw_repl_open(&nd->repl, &o, err, sizeof err);
    if (rc != HW_OK)
        fail_msg("hw_repl_open %d: %s", i + 1, err);
}

static void stop(fixture *f, int i)
{
    node *nd = &f->n[i];
    hw_repl_close(nd->repl);
    hw_store_close(nd->store);
    hw_repl_free(nd->repl);
    nd->repl = NULL;
    nd->store = NULL;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    for (int i = 0; i < N; i++) {
        node *nd = &f->n[i];
        hw_test_dir(nd->dir, sizeof nd->dir, "repl");
        snprintf(nd->raft_dir, sizeof nd->raft_dir, "%s/raft", nd->dir);
        snprintf(nd->raft_addr, sizeof nd->raft_addr, "127.0.0.1:%d", free_port());
        snprintf(nd->grpc_addr, sizeof nd->grpc_addr, "127.0.0.1:%d", free_port());
        if (i < 3) {
            f->boot[i].id = (uint64_t)i + 1;
            snprintf(f->boot[i].raft_address, sizeof f->boot[i].raft_address, "%s", nd->raft_addr);
            snprintf(f->boot[i].grpc_address, sizeof f->boot[i].grpc_address, "%s", nd->grpc_addr);
            f->boot[i].role = HW_REPL_VOTER;
        }
    }
    for (int i = 0; i < 3; i++)
        start(f, i, true);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < N; i++)
        if (f->n[i].repl)
            stop(f, i);
    free(f);
    return 0;
}

/* The replica that leads and takes writes, waiting up to 10 s. */
static int leader(fixture *f)
{
    int64_t until = now_ms() + 10000;
    while (now_ms() < until) {
        for (int i = 0; i < N; i++) {
            if (!f->n[i].repl)
                continue;
            hw_repl_status st;
            hw_repl_get_status(f->n[i].repl, &st);
            if (st.state == HW_REPL_LEADER && st.writable && hw_store_is_leader(f->n[i].store))
                return i;
        }
        usleep(10 * 1000);
    }
    fail_msg("no leader within 10 s");
    return -1;
}

typedef struct put_arg {
    const char *key, *val;
} put_arg;

static int put_fn(hw_store_txn *w, void *arg)
{
    put_arg *p = arg;
    return hw_store_kv_put(w, "t", p->key, strlen(p->key), p->val, strlen(p->val));
}

static int put(fixture *f, int i, const char *key, const char *val)
{
    put_arg p = {key, val};
    return hw_store_write(f->n[i].store, put_fn, &p);
}

/* Waits until replica i's store has key = val (its reads are local). */
static void see(fixture *f, int i, const char *key, const char *val)
{
    hw_store_reader *rd;
    assert_int_equal(hw_store_reader_create(f->n[i].store, &rd), HW_OK);
    hw_arena *a = hw_arena_create(0);
    int64_t until = now_ms() + 10000;
    bool ok = false;
    while (!ok && now_ms() < until) {
        hw_store_txn *t;
        assert_int_equal(hw_store_read_begin(rd, &t), HW_OK);
        void *v;
        size_t len;
        ok = hw_store_kv_get(t, "t", key, strlen(key), a, &v, &len) == HW_OK && len == strlen(val) &&
             memcmp(v, val, len) == 0;
        hw_store_read_end(rd);
        hw_arena_reset(a);
        if (!ok)
            usleep(5 * 1000);
    }
    hw_arena_destroy(a);
    hw_store_reader_destroy(rd);
    if (!ok)
        fail_msg("replica %d never saw %s=%s", i + 1, key, val);
}

static void writes_on_the_leader_reach_every_replica(void **state)
{
    fixture *f = *state;
    int l = leader(f);
    char key[32], val[32];
    for (int k = 0; k < 100; k++) { /* past the snapshot threshold */
        snprintf(key, sizeof key, "k%d", k);
        snprintf(val, sizeof val, "v%d", k);
        assert_int_equal(put(f, l, key, val), HW_OK);
    }
    for (int i = 0; i < 3; i++)
        see(f, i, "k99", "v99");
    uint64_t idx = hw_store_applied_index(f->n[l].store);
    for (int i = 0; i < 3; i++)
        if (i != l) {
            /* A follower refuses a write of its own at once. */
            assert_int_equal(put(f, i, "x", "y"), HW_ENOTLEADER);
            char buf[128];
            assert_true(hw_repl_leader_target(f->n[i].repl, buf, sizeof buf));
            assert_string_equal(buf, f->n[l].grpc_addr);
            int64_t until = now_ms() + 5000;
            while (hw_store_applied_index(f->n[i].store) < idx && now_ms() < until)
                usleep(1000);
            assert_int_equal(hw_store_applied_index(f->n[i].store), idx);
        }
    hw_repl_status st;
    hw_repl_get_status(f->n[l].repl, &st);
    assert_int_equal(st.n_members, 3);
    assert_true(st.snapshot_index > 0); /* the log was cut after a snapshot */
    hw_repl_stats rs;
    hw_repl_get_stats(f->n[l].repl, &rs);
    assert_true(rs.proposed >= 100 / 2 && rs.proposed <= 100);
}

static void a_new_leader_takes_over_and_the_old_one_follows(void **state)
{
    fixture *f = *state;
    int l = leader(f);
    assert_int_equal(put(f, l, "before", "1"), HW_OK);
    /* The leader's replica stops: the other two elect one and go on. */
    stop(f, l);
    int l2 = leader(f);
    assert_true(l2 != l);
    assert_int_equal(put(f, l2, "after", "2"), HW_OK);
    /* One replica alone cannot commit: its writes fail, nothing is kept. */
    int other = 3 - l - l2;
    stop(f, other);
    int64_t t0 = now_ms();
    int rc = put(f, l2, "alone", "3");
    assert_true(rc == HW_ENOTLEADER);
    assert_true(now_ms() - t0 < 15000);
    /* Both come back: the lost write never appears, the others are there. */
    start(f, l, false);
    start(f, other, false);
    int l3 = leader(f);
    assert_int_equal(put(f, l3, "back", "4"), HW_OK);
    for (int i = 0; i < 3; i++) {
        see(f, i, "before", "1");
        see(f, i, "after", "2");
        see(f, i, "back", "4");
    }
}

static void members_are_added_transferred_to_and_removed(void **state)
{
    fixture *f = *state;
    int l = leader(f);
    char key[32];
    for (int k = 0; k < 80; k++) {
        snprintf(key, sizeof key, "m%d", k);
        assert_int_equal(put(f, l, key, "x"), HW_OK);
    }
    /* A fourth replica: its store is empty and the log was cut, so it must
     * be sent the snapshot: it reports that it needs a copy. */
    start(f, 3, false);
    hw_repl_member m = {.id = 4, .role = HW_REPL_STANDBY};
    snprintf(m.raft_address, sizeof m.raft_address, "%s", f->n[3].raft_addr);
    snprintf(m.grpc_address, sizeof m.grpc_address, "%s", f->n[3].grpc_addr);
    char why[256];
    assert_int_equal(hw_repl_add(f->n[l].repl, &m, 10000, why, sizeof why), HW_OK);
    assert_int_equal(hw_repl_add(f->n[l].repl, &m, 10000, why, sizeof why), HW_EEXISTS);
    int64_t until = now_ms() + 10000;
    while (hw_repl_needs_copy(f->n[3].repl) == 0 && now_ms() < until)
        usleep(10 * 1000);
    assert_true(hw_repl_needs_copy(f->n[3].repl) > 0);
    hw_repl_status st;
    hw_repl_get_status(f->n[l].repl, &st);
    assert_int_equal(st.n_members, 4);
    /* Its gRPC address went into the store, for every replica. */
    hw_store_reader *rd;
    assert_int_equal(hw_store_reader_create(f->n[(l + 1) % 3].store, &rd), HW_OK);
    int64_t until2 = now_ms() + 5000;
    bool known = false;
    while (!known && now_ms() < until2) {
        hw_repl_load_members(f->n[(l + 1) % 3].repl, rd);
        hw_repl_get_status(f->n[(l + 1) % 3].repl, &st);
        for (size_t i = 0; i < st.n_members; i++)
            known |= st.members[i].id == 4 && strcmp(st.members[i].grpc_address, f->n[3].grpc_addr) == 0;
        usleep(10 * 1000);
    }
    hw_store_reader_destroy(rd);
    assert_true(known);
    assert_int_equal(hw_repl_remove(f->n[l].repl, 4, 10000, why, sizeof why), HW_OK);
    stop(f, 3);

    /* The leadership moves where it is sent. */
    int to = (l + 1) % 3;
    assert_int_equal(hw_repl_transfer(f->n[l].repl, (uint64_t)to + 1, 10000, why, sizeof why), HW_OK);
    int64_t until3 = now_ms() + 5000;
    while (leader(f) != to && now_ms() < until3)
        usleep(10 * 1000);
    assert_int_equal(leader(f), to);
    assert_int_equal(put(f, to, "moved", "yes"), HW_OK);
    see(f, l, "moved", "yes");
    /* Not on a follower. */
    assert_int_equal(hw_repl_remove(f->n[l].repl, 2, 1000, why, sizeof why), HW_ENOTLEADER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(writes_on_the_leader_reach_every_replica, setup, teardown),
        cmocka_unit_test_setup_teardown(a_new_leader_takes_over_and_the_old_one_follows, setup, teardown),
        cmocka_unit_test_setup_teardown(members_are_added_transferred_to_and_removed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
