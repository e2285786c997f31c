/*
 * retention_test: the retention thread (server/ops/retention.h) deletes
 * failed outbox entries older than their period, in batches, and keeps the
 * younger ones; dedupe records are left alone when their period is 0;
 * options that leave nothing to do are refused; the audit log's
 * last-denied records not written for a day are dropped, a batch at a
 * time, and the younger ones kept.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/base/log.h"
#include "server/ops/retention.h"
#include "server/store/records.h"
#include "tests/unit/store_test_util.h"

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct seed_op {
    int64_t now;
} seed_op;

/* Five failed Telegram entries a day old (seqs 1..5), two from now (6, 7),
 * and one dedupe record routed a day ago. */
static int seed_fn(hw_store_txn *w, void *arg)
{
    seed_op *op = arg;
    for (uint64_t seq = 1; seq <= 7; seq++) {
        Helpwire__V1__OutboundMessage m = HELPWIRE__V1__OUTBOUND_MESSAGE__INIT;
        m.seq = seq;
        m.channel = HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM;
        m.channel_user_id = (char *)"u-1";
        m.text = (char *)"hello";
        Helpwire__V1__FailedEntry e = HELPWIRE__V1__FAILED_ENTRY__INIT;
        e.message = &m;
        e.reason = (char *)"telegram 403: Forbidden";
        e.failed_unix_ms = seq <= 5 ? op->now - 86400000 : op->now;
        int rc = hw_store_failed_put(w, &e);
        if (rc != HW_OK)
            return rc;
    }
    return hw_store_dedupe_put(w, HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, "msg-1", "", 0,
                               op->now - 86400000);
}

static void test_failed_entries_past_their_period_are_deleted_in_batches(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    hw_test_dir(dir, sizeof dir, "retention");
    hw_store *s = hw_test_open(dir, 0, 0);
    assert_non_null(s);
    seed_op op = {.now = wall_ms()};
    assert_int_equal(hw_store_write(s, seed_fn, &op), HW_OK);
    hw_log *log = hw_log_create(2, HW_LOG_ERROR, false);

    /* An hour's period, two entries a batch: three batches take the five
     * old entries; the two young ones and the dedupe record stay. */
    hw_retention_options o = {
        .store = s, .log = log, .failed_retention_ms = 3600 * 1000, .interval_ms = 5, .batch = 2};
    hw_retention *r = NULL;
    assert_int_equal(hw_retention_start(&o, &r), HW_OK);
    for (int i = 0; i < 400 && hw_retention_failed_expired(r) < 5; i++)
        usleep(5000);
    usleep(50000); /* a few more batches: nothing else goes */
    assert_int_equal(hw_retention_failed_expired(r), 5);
    assert_int_equal(hw_retention_dedupe_expired(r), 0);
    hw_retention_stop(r);

    hw_store_reader *rd = NULL;
    assert_int_equal(hw_store_reader_create(s, &rd), HW_OK);
    hw_store_txn *t = NULL;
    assert_int_equal(hw_store_read_begin(rd, &t), HW_OK);
    hw_arena *a = hw_arena_create(0);
    hw_store_cursor cur = {0};
    Helpwire__V1__FailedEntry **es;
    size_t n;
    assert_int_equal(hw_store_failed_list(t, 0, &cur, 10, a, &es, &n), HW_OK);
    assert_int_equal(n, 2);
    assert_int_equal(es[0]->message->seq, 7);
    assert_int_equal(es[1]->message->seq, 6);
    void *reply;
    size_t len;
    assert_int_equal(
        hw_store_dedupe_get(t, HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, "msg-1", a, &reply, &len), HW_OK);
    hw_store_read_end(rd);
    hw_arena_destroy(a);
    assert_int_equal(hw_test_check_and_close(s, rd), 0);
    hw_log_destroy(log);
}

static void test_nothing_to_keep_for_a_while_is_refused(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    hw_test_dir(dir, sizeof dir, "retention");
    hw_store *s = hw_test_open(dir, 0, 0);
    assert_non_null(s);
    hw_retention *r = NULL;
    hw_retention_options o = {.store = s};
    assert_int_equal(hw_retention_start(&o, &r), HW_EINVALID);
    o.failed_retention_ms = -1;
    o.dedupe_retention_ms = 1000;
    assert_int_equal(hw_retention_start(&o, &r), HW_EINVALID);
    assert_null(r);
    o = (hw_retention_options){.store = s, .events_retention_ms = -1};
    assert_int_equal(hw_retention_start(&o, &r), HW_EINVALID);
    /* The event log alone is something to do. */
    o = (hw_retention_options){.store = s, .events_max_keep = 100};
    assert_int_equal(hw_retention_start(&o, &r), HW_OK);
    hw_retention_stop(r);
    hw_store_close(s);
}

/* ---- the audit log's last-denied records ---- */

#define DAY 86400000LL

typedef struct denied_seed {
    int64_t now;
} denied_seed;

static int denied_put(hw_store_txn *w, const char *token, const char *method, const void *val, size_t vl)
{
    char key[256];
    int n = snprintf(key, sizeof key, "%s%c%s", token, '\0', method);
    return hw_store_kv_put(w, HW_STORE_AUDIT_DENIED_NS, key, (size_t)n, val, vl);
}

static int denied_put_ms(hw_store_txn *w, const char *token, const char *method, int64_t ms)
{
    unsigned char v[8];
    for (int i = 7; i >= 0; i--, ms >>= 8)
        v[i] = (unsigned char)(ms & 0xff);
    return denied_put(w, token, method, v, sizeof v);
}

/* t-1: three methods two days ago; t-2: 23 hours ago and now; t-3: a
 * value that is not a time. */
static int denied_seed_fn(hw_store_txn *w, void *arg)
{
    denied_seed *d = arg;
    int rc = HW_OK;
    const char *methods[] = {"/helpwire.v1.Admin/Backup", "/helpwire.v1.Admin/GetStats",
                             "/helpwire.v1.Admin/ListTokens"};
    for (int i = 0; i < 3 && rc == HW_OK; i++)
        rc = denied_put_ms(w, "t-1", methods[i], d->now - 2 * DAY);
    if (rc == HW_OK)
        rc = denied_put_ms(w, "t-2", methods[0], d->now - 23 * 3600 * 1000LL);
    if (rc == HW_OK)
        rc = denied_put_ms(w, "t-2", methods[1], d->now);
    if (rc == HW_OK)
        rc = denied_put(w, "t-3", methods[0], "x", 1);
    return rc;
}

/* Which of the seeded records are left, as a bit per record in seed order. */
static unsigned denied_left(hw_store *s)
{
    hw_store_reader *rd = NULL;
    assert_int_equal(hw_store_reader_create(s, &rd), HW_OK);
    hw_store_txn *t = NULL;
    assert_int_equal(hw_store_read_begin(rd, &t), HW_OK);
    hw_arena *a = hw_arena_create(0);
    const char *keys[][2] = {{"t-1", "/helpwire.v1.Admin/Backup"},     {"t-1", "/helpwire.v1.Admin/GetStats"},
                             {"t-1", "/helpwire.v1.Admin/ListTokens"}, {"t-2", "/helpwire.v1.Admin/Backup"},
                             {"t-2", "/helpwire.v1.Admin/GetStats"},   {"t-3", "/helpwire.v1.Admin/Backup"}};
    unsigned left = 0;
    for (unsigned i = 0; i < 6; i++) {
        char key[256];
        int n = snprintf(key, sizeof key, "%s%c%s", keys[i][0], '\0', keys[i][1]);
        void *v;
        size_t vl;
        if (hw_store_kv_get(t, HW_STORE_AUDIT_DENIED_NS, key, (size_t)n, a, &v, &vl) == HW_OK)
            left |= 1u << i;
    }
    hw_store_read_end(rd);
    hw_arena_destroy(a);
    hw_store_reader_destroy(rd);
    return left;
}

typedef struct prune_op {
    hw_audit_denied_pos pos;
    int64_t cutoff;
    size_t visit, deleted;
} prune_op;

static int prune_fn(hw_store_txn *w, void *arg)
{
    prune_op *p = arg;
    return hw_store_audit_denied_prune(w, &p->pos, p->cutoff, p->visit, &p->deleted);
}

static void test_denied_records_are_pruned_a_batch_at_a_time(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    hw_test_dir(dir, sizeof dir, "retention");
    hw_store *s = hw_test_open(dir, 0, 0);
    assert_non_null(s);
    denied_seed d = {.now = wall_ms()};
    assert_int_equal(hw_store_write(s, denied_seed_fn, &d), HW_OK);
    assert_int_equal(denied_left(s), 0x3f);

    /* Bad arguments; a cutoff of 0 deletes nothing. */
    prune_op p = {.cutoff = d.now - DAY, .visit = 0};
    assert_int_equal(hw_store_write(s, prune_fn, &p), HW_EINVALID);
    p.visit = HW_STORE_LIST_MAX + 1;
    assert_int_equal(hw_store_write(s, prune_fn, &p), HW_EINVALID);
    p = (prune_op){.cutoff = d.now - DAY, .visit = 2, .pos.len = HW_STORE_AUDIT_DENIED_KEY_MAX + 1};
    assert_int_equal(hw_store_write(s, prune_fn, &p), HW_EINVALID);
    p = (prune_op){.cutoff = 0, .visit = 10};
    assert_int_equal(hw_store_write(s, prune_fn, &p), HW_OK);
    assert_int_equal(p.deleted, 0);
    assert_int_equal(denied_left(s), 0x3f);

    /* Two visited per batch, from where the last one stopped. */
    p = (prune_op){.cutoff = d.now - DAY, .visit = 2};
    assert_int_equal(hw_store_write(s, prune_fn, &p), HW_OK);
    assert_int_equal(p.deleted, 2);
    assert_int_not_equal(p.pos.len, 0);
    assert_int_equal(denied_left(s), 0x3c);
    assert_int_equal(hw_store_write(s, prune_fn, &p), HW_OK); /* t-1 ListTokens; t-2 23 h: kept */
    assert_int_equal(p.deleted, 1);
    assert_int_equal(denied_left(s), 0x38);
    assert_int_equal(hw_store_write(s, prune_fn, &p), HW_OK); /* t-2 now: kept; t-3 not a time */
    assert_int_equal(p.deleted, 1);
    assert_int_equal(denied_left(s), 0x18);
    assert_int_equal(hw_store_write(s, prune_fn, &p), HW_OK); /* the end: back to the start */
    assert_int_equal(p.deleted, 0);
    assert_int_equal(p.pos.len, 0);
    assert_int_equal(denied_left(s), 0x18);
    hw_store_close(s);
}

static void test_the_sweep_drops_denied_records_older_than_a_day(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    hw_test_dir(dir, sizeof dir, "retention");
    hw_store *s = hw_test_open(dir, 0, 0);
    assert_non_null(s);
    denied_seed d = {.now = wall_ms()};
    assert_int_equal(hw_store_write(s, denied_seed_fn, &d), HW_OK);
    hw_log *log = hw_log_create(2, HW_LOG_ERROR, false);
    /* Something else to do keeps the thread; the denied records go with it. */
    hw_retention_options o = {
        .store = s, .log = log, .failed_retention_ms = 3600 * 1000, .interval_ms = 5, .batch = 2};
    hw_retention *r = NULL;
    assert_int_equal(hw_retention_start(&o, &r), HW_OK);
    for (int i = 0; i < 400 && hw_retention_denied_expired(r) < 4; i++)
        usleep(5000);
    usleep(50000); /* more passes: the young ones stay */
    assert_int_equal(hw_retention_denied_expired(r), 4);
    hw_retention_stop(r);
    assert_int_equal(denied_left(s), 0x18); /* t-2's two */
    hw_store_close(s);
    hw_log_destroy(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failed_entries_past_their_period_are_deleted_in_batches),
        cmocka_unit_test(test_nothing_to_keep_for_a_while_is_refused),
        cmocka_unit_test(test_denied_records_are_pruned_a_batch_at_a_time),
        cmocka_unit_test(test_the_sweep_drops_denied_records_older_than_a_day),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
