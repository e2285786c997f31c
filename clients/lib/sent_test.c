/*
 * sent_test: the durable sent record (sent.c) on a temporary directory:
 * put then get by sequence and by upstream id, the message kept whole, a
 * reopen (as after a restart) finds what was put, a second handle on the
 * same file (two processes in a rolling restart) sees the first one's
 * records, and pruning by age and by count.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clients/lib/sent.h"
#include "clients/lib/testdir.h"

static char *make_dir(void)
{
    char *d = br_testdir_make("sent");
    assert_non_null(d);
    return d;
}

static void message(Helpwire__V1__OutboundMessage *m, uint64_t seq, const char *user, const char *text)
{
    helpwire__v1__outbound_message__init(m);
    m->seq = seq;
    m->channel = HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP;
    m->channel_user_id = (char *)user;
    m->text = (char *)text;
    m->ticket_id = (char *)"t-1";
    m->created_unix_ms = 1700000000000;
}

static void test_put_get_by_seq_and_upstream_id_and_reopen(void **state)
{
    (void)state;
    char *dir = make_dir();
    char err[256];
    br_sent *s = NULL;
    assert_int_equal(br_sent_open(&s, dir, "whatsapp", 0, 0, err, sizeof err), 0);
    Helpwire__V1__OutboundMessage m;
    message(&m, 42, "15550001", "Your refund is on its way.");
    assert_int_equal(br_sent_get(s, 42, NULL), 0);
    assert_int_equal(br_sent_put(s, &m, "wamid.ABC", 1700000001000, err, sizeof err), 0);
    br_sent_record rec;
    assert_int_equal(br_sent_get(s, 42, &rec), 1);
    assert_string_equal(rec.upstream_id, "wamid.ABC");
    assert_int_equal(rec.sent_unix_ms, 1700000001000);
    assert_non_null(rec.message);
    assert_string_equal(rec.message->text, "Your refund is on its way.");
    assert_string_equal(rec.message->channel_user_id, "15550001");
    br_sent_record_free(&rec);
    assert_int_equal(br_sent_find_upstream(s, "wamid.ABC", &rec), 1);
    assert_int_equal(rec.seq, 42);
    assert_string_equal(rec.message->ticket_id, "t-1");
    br_sent_record_free(&rec);
    assert_int_equal(br_sent_find_upstream(s, "wamid.nope", &rec), 0);
    assert_int_equal(br_sent_get(s, 43, NULL), 0);

    /* A second handle on the same file, as a second process would have. */
    br_sent *other = NULL;
    assert_int_equal(br_sent_open(&other, dir, "whatsapp", 0, 0, err, sizeof err), 0);
    assert_int_equal(br_sent_get(other, 42, NULL), 1);
    message(&m, 43, "15550002", "Hello");
    assert_int_equal(br_sent_put(other, &m, NULL, 1700000002000, err, sizeof err), 0);
    assert_int_equal(br_sent_get(s, 43, NULL), 1);
    br_sent_close(other);
    br_sent_close(s);

    /* Reopened, as after a restart. */
    assert_int_equal(br_sent_open(&s, dir, "whatsapp", 0, 0, err, sizeof err), 0);
    assert_int_equal(br_sent_get(s, 42, NULL), 1);
    assert_int_equal(br_sent_get(s, 43, NULL), 1);
    assert_int_equal(br_sent_count(s), 2);
    br_sent_close(s);
    free(dir);
}

static void test_prune_by_age_and_count(void **state)
{
    (void)state;
    char *dir = make_dir();
    char err[256];
    br_sent *s = NULL;
    /* Keep 10 s, at most 100 records. */
    assert_int_equal(br_sent_open(&s, dir, "telegram", 10000, 100, err, sizeof err), 0);
    Helpwire__V1__OutboundMessage m;
    char id[32];
    for (uint64_t seq = 1; seq <= 150; seq++) {
        message(&m, seq, "7", "x");
        snprintf(id, sizeof id, "%llu", (unsigned long long)(1000 + seq));
        /* 1..50 are old; 51..150 recent */
        int64_t at = seq <= 50 ? 1000000 : 2000000;
        assert_int_equal(br_sent_put(s, &m, id, at, err, sizeof err), 0);
    }
    long n = br_sent_prune(s, 2000000);
    assert_true(n >= 0);
    assert_int_equal(br_sent_count(s), 100);
    assert_int_equal(br_sent_get(s, 50, NULL), 0);
    assert_int_equal(br_sent_find_upstream(s, "1050", NULL), 0);
    assert_int_equal(br_sent_get(s, 51, NULL), 1);
    assert_int_equal(br_sent_get(s, 150, NULL), 1);
    /* Past the age bound everything older than 10 s goes. */
    br_sent_prune(s, 2000000 + 10001);
    assert_int_equal(br_sent_count(s), 0);
    br_sent_close(s);
    free(dir);
}

static void test_steps_survive_a_reopen_and_leave_with_their_message(void **state)
{
    (void)state;
    char *dir = make_dir();
    char err[256], id[64];
    br_sent *s = NULL;
    assert_int_equal(br_sent_open(&s, dir, "whatsapp", 0, 0, err, sizeof err), 0);
    assert_int_equal(br_sent_get_step(s, 7, 0, id, sizeof id), 0);
    assert_int_equal(br_sent_put_step(s, 7, 0, "wamid.TEXT", err, sizeof err), 0);
    assert_int_equal(br_sent_put_step(s, 7, 1, "wamid.FILE1", err, sizeof err), 0);
    assert_int_equal(br_sent_put_step(s, 8, 0, "", err, sizeof err), 0);
    br_sent_close(s);
    s = NULL;
    assert_int_equal(br_sent_open(&s, dir, "whatsapp", 0, 0, err, sizeof err), 0);
    assert_int_equal(br_sent_get_step(s, 7, 1, id, sizeof id), 1);
    assert_string_equal(id, "wamid.FILE1");
    assert_int_equal(br_sent_get_step(s, 7, 2, id, sizeof id), 0);
    assert_int_equal(br_sent_steps_clear(s, 7), 0);
    assert_int_equal(br_sent_get_step(s, 7, 0, NULL, 0), 0);
    assert_int_equal(br_sent_get_step(s, 7, 1, NULL, 0), 0);
    assert_int_equal(br_sent_get_step(s, 8, 0, id, sizeof id), 1); /* another message's steps stay */
    assert_string_equal(id, "");
    /* Pruned with its record. */
    Helpwire__V1__OutboundMessage m;
    message(&m, 8, "15550001", "hello");
    assert_int_equal(br_sent_put(s, &m, "wamid.X", 1000, err, sizeof err), 0);
    assert_true(br_sent_prune(s, 1000 + 8LL * 24 * 3600 * 1000) >= 1);
    assert_int_equal(br_sent_get_step(s, 8, 0, NULL, 0), 0);
    br_sent_close(s);
    free(dir);
}

static void test_open_refuses_an_unusable_dir(void **state)
{
    (void)state;
    char err[256] = "";
    br_sent *s = NULL;
    assert_int_equal(br_sent_open(&s, "/proc/no/such/dir", "telegram", 0, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "/proc/no/such/dir"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_by_seq_and_upstream_id_and_reopen),
        cmocka_unit_test(test_prune_by_age_and_count),
        cmocka_unit_test(test_steps_survive_a_reopen_and_leave_with_their_message),
        cmocka_unit_test(test_open_refuses_an_unusable_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
