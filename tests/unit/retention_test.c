/*
 * retention_test: the retention thread (server/ops/retention.h) deletes
 * failed outbox entries older than their period, in batches, and keeps the
 * younger ones; dedupe records are left alone when their period is 0;
 * options that leave nothing to do are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/base/log.h"
#include "server/ops/retention.h"
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failed_entries_past_their_period_are_deleted_in_batches),
        cmocka_unit_test(test_nothing_to_keep_for_a_while_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
