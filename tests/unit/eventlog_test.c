/*
 * eventlog_test: the global ticket event log (server/store/eventlog.h):
 * sequences in commit order, a read after a cursor, cursors that only
 * this store accepts, and trimming by age and by length with the trimmed
 * mark a resumed watch compares against.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "server/store/eventlog.h"
#include "tests/unit/store_test_util.h"

typedef struct append_op {
    const char *ticket, *queue, *assignee;
    int64_t at;
    int count;
    char cursor[HW_EVENTLOG_CURSOR_MAX]; /* the last one's */
    uint64_t seq;
} append_op;

static int append_fn(hw_store_txn *w, void *arg)
{
    append_op *op = arg;
    for (int i = 0; i < op->count; i++) {
        Helpwire__V1__TicketEvent e = HELPWIRE__V1__TICKET_EVENT__INIT;
        e.ticket_id = (char *)op->ticket;
        e.seq = (uint64_t)i + 1;
        e.kind = HELPWIRE__V1__TICKET_EVENT_KIND__TICKET_EVENT_KIND_TAGS_CHANGED;
        e.actor = (char *)"agent:alice";
        e.detail = (char *)"2 tags";
        e.at_unix_ms = op->at + i;
        int rc = hw_eventlog_append(w, &e, op->queue, op->assignee, op->cursor, &op->seq);
        if (rc != HW_OK)
            return rc;
    }
    return HW_OK;
}

typedef struct trim_op {
    int64_t cutoff;
    uint64_t keep;
    size_t max, deleted;
} trim_op;

static int trim_fn(hw_store_txn *w, void *arg)
{
    trim_op *op = arg;
    return hw_eventlog_trim(w, op->cutoff, op->keep, op->max, &op->deleted);
}

static int refused_fn(hw_store_txn *w, void *arg)
{
    (void)arg;
    Helpwire__V1__TicketEvent e = HELPWIRE__V1__TICKET_EVENT__INIT;
    e.ticket_id = (char *)"";
    char c[HW_EVENTLOG_CURSOR_MAX];
    return hw_eventlog_append(w, &e, NULL, NULL, c, NULL);
}

static void test_appends_read_back_after_a_cursor_in_order(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    hw_test_dir(dir, sizeof dir, "eventlog");
    hw_store *s = hw_test_open(dir, 0, 0);
    assert_non_null(s);
    hw_store_reader *rd = NULL;
    assert_int_equal(hw_store_reader_create(s, &rd), HW_OK);
    hw_arena *a = hw_arena_create(0);
    hw_store_txn *t;

    /* An empty log: no cursor is this store's yet. */
    assert_int_equal(hw_store_read_begin(rd, &t), HW_OK);
    uint64_t seq = 0, trimmed = 9, last = 9;
    assert_int_equal(hw_eventlog_cursor_decode(t, "c1AAAAAAAAAAAAAAAAAAAAAA", &seq), HW_EINVALID);
    assert_int_equal(hw_eventlog_bounds(t, &trimmed, &last), HW_OK);
    assert_int_equal(trimmed, 0);
    assert_int_equal(last, 0);
    hw_eventlog_entry *es;
    size_t n = 9;
    assert_int_equal(hw_eventlog_read(t, 0, 10, a, &es, &n), HW_OK);
    assert_int_equal(n, 0);
    hw_store_read_end(rd);

    append_op one = {.ticket = "t-1", .queue = "billing", .assignee = "alice", .at = 1000, .count = 3};
    append_op two = {.ticket = "t-2", .queue = "technical", .at = 2000, .count = 2};
    assert_int_equal(hw_store_write(s, append_fn, &one), HW_OK);
    assert_int_equal(hw_store_write(s, append_fn, &two), HW_OK);
    assert_int_equal(one.seq, 3);
    assert_int_equal(two.seq, 5);
    assert_int_equal(hw_store_write(s, refused_fn, NULL), HW_EINVALID);
    assert_int_equal(strlen(one.cursor), 24);
    assert_int_equal(hw_eventlog_cursor_seq(one.cursor), 3);

    assert_int_equal(hw_store_read_begin(rd, &t), HW_OK);
    assert_int_equal(hw_eventlog_cursor_decode(t, one.cursor, &seq), HW_OK);
    assert_int_equal(seq, 3);
    /* Everything after t-1's last event: t-2's two, with their cursors. */
    assert_int_equal(hw_eventlog_read(t, seq, 10, a, &es, &n), HW_OK);
    assert_int_equal(n, 2);
    assert_int_equal(es[0].seq, 4);
    assert_string_equal(es[0].event->ticket_id, "t-2");
    assert_string_equal(es[0].queue, "technical");
    assert_string_equal(es[0].assignee, "");
    assert_int_equal(es[1].event->at_unix_ms, 2001);
    assert_string_equal(es[1].event->cursor, two.cursor);
    assert_null(es[1].event->ticket);
    /* From the start, in pages. */
    assert_int_equal(hw_eventlog_read(t, 0, 2, a, &es, &n), HW_OK);
    assert_int_equal(n, 2);
    assert_string_equal(es[1].queue, "billing");
    assert_string_equal(es[1].assignee, "alice");
    assert_string_equal(es[1].event->detail, "2 tags");
    assert_int_equal(hw_eventlog_read(t, es[1].seq, 2, a, &es, &n), HW_OK);
    assert_int_equal(n, 2);
    assert_int_equal(es[0].seq, 3);
    assert_int_equal(hw_eventlog_read(t, 5, 2, a, &es, &n), HW_OK);
    assert_int_equal(n, 0);
    assert_int_equal(hw_eventlog_read(t, 0, 0, a, &es, &n), HW_EINVALID);

    /* Anything else is refused: malformed, another version, another
     * sequence with this check, a changed check, another spelling. */
    char bad[HW_EVENTLOG_CURSOR_MAX];
    const char *bads[] = {"", "c1", "garbage", "c1AAAAAAAAAAAAAAAAAAAAAA", "c2AAAAAAAAAAAAAAAAAAAAAA",
                          "c1AAAAAAAAAAAAAAAAAAAAA!", "c1AAAAAAAAAAAAAAAAAAAAAAA"};
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
        assert_int_equal(hw_eventlog_cursor_decode(t, bads[i], &seq), HW_EINVALID);
        assert_int_equal(hw_eventlog_cursor_seq(bads[i]), 0);
    }
    memcpy(bad, one.cursor, sizeof bad);
    bad[9] = bad[9] == 'A' ? 'B' : 'A'; /* the sequence */
    assert_int_equal(hw_eventlog_cursor_decode(t, bad, &seq), HW_EINVALID);
    memcpy(bad, one.cursor, sizeof bad);
    bad[20] = bad[20] == 'A' ? 'B' : 'A'; /* the check */
    assert_int_equal(hw_eventlog_cursor_decode(t, bad, &seq), HW_EINVALID);
    memcpy(bad, one.cursor, sizeof bad);
    bad[23] = bad[23] == 'A' ? 'B' : 'A'; /* the 4 spare bits */
    assert_int_equal(hw_eventlog_cursor_decode(t, bad, &seq), HW_EINVALID);
    hw_store_read_end(rd);
    hw_arena_destroy(a);
    assert_int_equal(hw_test_check_and_close(s, rd), 0);
}

static void test_trimming_by_age_and_length_raises_the_mark(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    hw_test_dir(dir, sizeof dir, "eventlog");
    hw_store *s = hw_test_open(dir, 0, 0);
    assert_non_null(s);
    append_op old = {.ticket = "t-1", .at = 1000, .count = 4}; /* 1..4 at 1000..1003 */
    append_op young = {.ticket = "t-2", .at = 9000, .count = 4}; /* 5..8 at 9000..9003 */
    assert_int_equal(hw_store_write(s, append_fn, &old), HW_OK);
    assert_int_equal(hw_store_write(s, append_fn, &young), HW_OK);

    /* Nothing to do: no limit, or nothing old enough. */
    trim_op op = {.cutoff = 0, .keep = 0, .max = 10};
    assert_int_equal(hw_store_write(s, trim_fn, &op), HW_OK);
    assert_int_equal(op.deleted, 0);
    op.cutoff = 1000;
    assert_int_equal(hw_store_write(s, trim_fn, &op), HW_OK);
    assert_int_equal(op.deleted, 0);
    op.max = 0;
    assert_int_equal(hw_store_write(s, trim_fn, &op), HW_EINVALID);
    /* By age, in batches of 3: 1..3, then 4, then the young stay. */
    op = (trim_op){.cutoff = 5000, .max = 3};
    assert_int_equal(hw_store_write(s, trim_fn, &op), HW_OK);
    assert_int_equal(op.deleted, 3);
    assert_int_equal(hw_store_write(s, trim_fn, &op), HW_OK);
    assert_int_equal(op.deleted, 1);
    assert_int_equal(hw_store_write(s, trim_fn, &op), HW_OK);
    assert_int_equal(op.deleted, 0);

    hw_store_reader *rd = NULL;
    assert_int_equal(hw_store_reader_create(s, &rd), HW_OK);
    hw_arena *a = hw_arena_create(0);
    hw_store_txn *t;
    assert_int_equal(hw_store_read_begin(rd, &t), HW_OK);
    uint64_t trimmed, last, seq;
    assert_int_equal(hw_eventlog_bounds(t, &trimmed, &last), HW_OK);
    assert_int_equal(trimmed, 4);
    assert_int_equal(last, 8);
    /* A cursor before the mark still decodes (the caller says OUT_OF_RANGE). */
    assert_int_equal(hw_eventlog_cursor_decode(t, old.cursor, &seq), HW_OK);
    assert_int_equal(seq, 4);
    hw_eventlog_entry *es;
    size_t n;
    assert_int_equal(hw_eventlog_read(t, 0, 10, a, &es, &n), HW_OK);
    assert_int_equal(n, 4);
    assert_int_equal(es[0].seq, 5);
    hw_store_read_end(rd);

    /* By length: the newest 2 stay. */
    op = (trim_op){.keep = 2, .max = 10};
    assert_int_equal(hw_store_write(s, trim_fn, &op), HW_OK);
    assert_int_equal(op.deleted, 2);
    assert_int_equal(hw_store_read_begin(rd, &t), HW_OK);
    assert_int_equal(hw_eventlog_bounds(t, &trimmed, NULL), HW_OK);
    assert_int_equal(trimmed, 6);
    assert_int_equal(hw_eventlog_read(t, 0, 10, a, &es, &n), HW_OK);
    assert_int_equal(n, 2);
    assert_int_equal(es[0].seq, 7);
    hw_store_read_end(rd);
    /* Sequences go on after a trim, never reused. */
    append_op more = {.ticket = "t-3", .at = 9500, .count = 1};
    assert_int_equal(hw_store_write(s, append_fn, &more), HW_OK);
    assert_int_equal(more.seq, 9);
    hw_arena_destroy(a);
    assert_int_equal(hw_test_check_and_close(s, rd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_appends_read_back_after_a_cursor_in_order),
        cmocka_unit_test(test_trimming_by_age_and_length_raises_the_mark),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
