/*
 * ticket_wal_test: the ticket log's write-ahead part
 * (server/store/ticket_wal.c) as the log's readers see it: entries of many
 * tickets appended in one order read back per ticket in theirs, across
 * the copy into the log (every HW_TWAL_FLUSH appends) and across page
 * boundaries set before the copy; newest-first reads; the trim of the
 * oldest entries (an idle ticket's pending entries reach its log, its head
 * goes, its next append goes on from the log); scrubbing and deleting a
 * ticket leave none of its bytes in the write-ahead part.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/store/records_internal.h"
#include "server/store/store_internal.h"
#include "tests/unit/store_test_util.h"

typedef hw_test_store fx;

/* One entry of a ticket that sorts after every ticket of the tests, so
 * that theirs go through the write-ahead part (a ticket sorting last in
 * the log is appended to it directly). */
static int sentinel_fn(hw_store_txn *w, void *arg)
{
    Helpwire__V1__TicketMessage m = HELPWIRE__V1__TICKET_MESSAGE__INIT;
    m.ticket_id = arg;
    m.text = "after every test ticket";
    return hw_store_ticket_message_append(w, &m, NULL);
}

static int setup(void **state)
{
    if (hw_test_store_setup(state, "twal") != 0)
        return -1;
    fx *f = *state;
    return hw_store_write(f->s, sentinel_fn, "zz-end") == HW_OK ? 0 : -1;
}

static int teardown(void **state)
{
    return hw_test_store_teardown(state);
}

/* Appends, round robin over tickets t-<first>.. t-<first+tickets-1>, a
 * message "<ticket> m<i>" then an event, rounds times. */
typedef struct rr {
    int first, tickets, rounds;
    const char *marker; /* text prefix */
    int from;           /* the first round's number */
} rr;

static int rr_fn(hw_store_txn *w, void *arg)
{
    const rr *r = arg;
    char id[32], text[96];
    for (int round = 0; round < r->rounds; round++) {
        for (int t = 0; t < r->tickets; t++) {
            snprintf(id, sizeof id, "t-%d", r->first + t);
            Helpwire__V1__TicketMessage m = HELPWIRE__V1__TICKET_MESSAGE__INIT;
            m.ticket_id = id;
            m.kind = HELPWIRE__V1__MESSAGE_KIND__MESSAGE_KIND_CUSTOMER;
            snprintf(text, sizeof text, "%s %s m%d", r->marker ? r->marker : "text", id, r->from + round);
            m.text = text;
            uint64_t seq;
            int rc = hw_store_ticket_message_append(w, &m, &seq);
            if (rc != HW_OK)
                return rc;
            Helpwire__V1__TicketEvent ev = HELPWIRE__V1__TICKET_EVENT__INIT;
            ev.ticket_id = id;
            ev.kind = HELPWIRE__V1__TICKET_EVENT_KIND__TICKET_EVENT_KIND_MESSAGE;
            if ((rc = hw_store_ticket_event_append(w, &ev)) != HW_OK)
                return rc;
        }
    }
    return HW_OK;
}

static void append_rr_from(fx *f, int first, int tickets, int rounds, const char *marker, int from)
{
    rr r = {first, tickets, rounds, marker, from};
    assert_int_equal(hw_store_write(f->s, rr_fn, &r), HW_OK);
}

static void append_rr(fx *f, int first, int tickets, int rounds, const char *marker)
{
    rr r = {first, tickets, rounds, marker, 0};
    assert_int_equal(hw_store_write(f->s, rr_fn, &r), HW_OK);
}

/* Reads a ticket's messages with pages of `page`, checks "... m0".."m<n-1>"
 * in order and sequences 1..n. */
static void check_messages(fx *f, const char *id, int n, size_t page)
{
    hw_store_txn *t;
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    hw_store_cursor cur = {0};
    int next = 0;
    char want[64];
    do {
        Helpwire__V1__TicketMessage **ms;
        size_t got;
        hw_arena_reset(f->a);
        assert_int_equal(hw_store_ticket_message_list(t, id, &cur, page, f->a, &ms, &got), HW_OK);
        assert_true(got <= page);
        for (size_t i = 0; i < got; i++, next++) {
            snprintf(want, sizeof want, " %s m%d", id, next);
            assert_non_null(strstr(ms[i]->text, want));
        }
    } while (cur.len > 0);
    assert_int_equal(next, n);
    hw_store_read_end(f->r);
}

static uint64_t entries(fx *f, int db)
{
    hw_store_txn *t;
    uint64_t n = 0;
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    assert_int_equal(hw_store__count(t, db, &n), HW_OK);
    hw_store_read_end(f->r);
    return n;
}

static void test_interleaved_tickets_read_back_in_order(void **state)
{
    fx *f = *state;
    /* 40 rounds over 5 tickets: 80 entries each; the first HW_TWAL_DIRECT
     * straight into the log (the tickets are new), the rest here, copied
     * into the log 32 at a time (at 36 and 68), 12 pending. */
    append_rr(f, 100, 5, 40, NULL);
    assert_int_equal(HW_TWAL_DIRECT, 4);
    assert_int_equal(entries(f, HW_DB_TICKET_LOG), 5 * 68 + 1);
    assert_int_equal(entries(f, HW_DB_TICKET_WAL), 5 * 76);
    assert_int_equal(entries(f, HW_DB_TICKET_HEADS), 5);
    for (size_t page = 1; page <= 41; page += 7)
        check_messages(f, "t-102", 40, page);
    /* Events too, with their own sequences. */
    hw_store_txn *t;
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    hw_store_cursor cur = {0};
    Helpwire__V1__TicketEvent **evs;
    size_t n;
    assert_int_equal(hw_store_ticket_event_list(t, "t-104", &cur, 100, f->a, &evs, &n), HW_OK);
    assert_int_equal(n, 40);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(evs[i]->seq, i + 1);
    assert_int_equal(cur.len, 0);
    hw_store_read_end(f->r);
}

/* A page boundary given out while entries were pending still holds after
 * they reached the log: nothing twice, nothing skipped. */
static void test_cursor_survives_the_copy_into_the_log(void **state)
{
    fx *f = *state;
    append_rr(f, 200, 1, 20, NULL); /* 40 entries: 32 in the log, 8 pending */
    hw_store_txn *t;
    hw_store_cursor cur = {0};
    Helpwire__V1__TicketMessage **ms;
    size_t n;
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    assert_int_equal(hw_store_ticket_message_list(t, "t-200", &cur, 18, f->a, &ms, &n), HW_OK);
    assert_int_equal(n, 18); /* 16 from the log, 2 pending */
    assert_true(cur.len > 0);
    hw_store_read_end(f->r);
    append_rr_from(f, 200, 1, 20, NULL, 20); /* the pending ones reach the log */
    int next = 18;
    char want[64];
    do {
        hw_arena_reset(f->a);
        assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
        assert_int_equal(hw_store_ticket_message_list(t, "t-200", &cur, 7, f->a, &ms, &n), HW_OK);
        for (size_t i = 0; i < n; i++, next++) {
            snprintf(want, sizeof want, " t-200 m%d", next);
            assert_non_null(strstr(ms[i]->text, want));
        }
        hw_store_read_end(f->r);
    } while (cur.len > 0);
    assert_int_equal(next, 40);
    /* A cursor of another ticket is refused. */
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    hw_store_cursor other = {0};
    assert_int_equal(hw_store_ticket_message_list(t, "t-200", &other, 5, f->a, &ms, &n), HW_OK);
    assert_int_equal(hw_store_ticket_message_list(t, "t-201", &other, 5, f->a, &ms, &n), HW_EINVALID);
    hw_store_read_end(f->r);
}

static int collect_newest(void *arg, const Helpwire__V1__TicketMessage *m)
{
    char *out = arg;
    const char *sp = strrchr(m->text, ' ');
    strcat(out, sp + 1);
    strcat(out, ",");
    return HW_OK;
}

static void test_newest_first_reads_pending_then_log(void **state)
{
    fx *f = *state;
    append_rr(f, 300, 2, 18, NULL); /* per ticket 36 entries: 32 in the log, 4 pending */
    hw_store_txn *t;
    char seen[512] = "";
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    assert_int_equal(hw_store_ticket_message_foreach_newest(t, "t-301", f->a, collect_newest, seen), HW_OK);
    hw_store_read_end(f->r);
    char want[512] = "";
    for (int i = 17; i >= 0; i--) {
        char b[8];
        snprintf(b, sizeof b, "m%d,", i);
        strcat(want, b);
    }
    assert_string_equal(seen, want);
}

/* The trim: once more than HW_TWAL_KEEP entries follow an idle ticket's,
 * its pending entries are in its log, its head is gone, and its next
 * append goes on from the log. */
static void test_trim_moves_idle_tickets_into_their_log(void **state)
{
    fx *f = *state;
    append_rr(f, 400, 1, 3, "idle"); /* 6 entries: 4 in the log, 2 pending */
    assert_int_equal(entries(f, HW_DB_TICKET_LOG), 1 + 4);
    /* Enough traffic on 64 other tickets to push them out. */
    int rounds = (int)(HW_TWAL_KEEP / (2 * 64)) + 40;
    for (int i = 0; i < rounds; i += 50)
        append_rr(f, 500, 64, 50, NULL);
    uint64_t wal = entries(f, HW_DB_TICKET_WAL);
    assert_true(wal <= HW_TWAL_KEEP + 2048);
    hw_store_txn *t;
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    MDB_val v;
    assert_int_equal(hw_store__get(t, HW_DB_TICKET_HEADS, "t-400", 5, &v), HW_ENOTFOUND);
    hw_twal_entry *es;
    size_t n;
    assert_int_equal(hw_twal_pending(t, "t-400", f->a, &es, &n), HW_OK);
    assert_int_equal(n, 0);
    hw_store_read_end(f->r);
    check_messages(f, "t-400", 3, 2);
    /* Its next append continues the sequences. */
    append_rr_from(f, 400, 1, 1, "idle", 3);
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    hw_store_cursor cur = {0};
    Helpwire__V1__TicketEvent **evs;
    assert_int_equal(hw_store_ticket_event_list(t, "t-400", &cur, 10, f->a, &evs, &n), HW_OK);
    assert_int_equal(n, 4);
    assert_int_equal(evs[3]->seq, 4);
    hw_store_read_end(f->r);
    check_messages(f, "t-400", 4, 3);
}

/* Scans the raw write-ahead database for a byte string. */
static int wal_holds(fx *f, const char *needle)
{
    hw_store_txn *t;
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    MDB_cursor *c;
    assert_int_equal(hw_store__cursor(t, HW_DB_TICKET_WAL, &c), HW_OK);
    MDB_val k, v;
    int found = 0;
    size_t nl = strlen(needle);
    for (int mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); mrc == 0 && !found;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
        for (size_t i = 0; i + nl <= v.mv_size && !found; i++)
            found = memcmp((const char *)v.mv_data + i, needle, nl) == 0;
    mdb_cursor_close(c);
    hw_store_read_end(f->r);
    return found;
}

static int scrub_fn(hw_store_txn *w, void *arg)
{
    size_t n;
    return hw_store_ticket_scrub(w, arg, HW_SCRUB_REDACT, 1000, &n);
}

static int put_ticket(hw_store_txn *w, void *arg)
{
    Helpwire__V1__Ticket tk = HELPWIRE__V1__TICKET__INIT;
    tk.id = arg;
    tk.number = (uint64_t)atoi((const char *)arg + 2);
    tk.customer_id = "c-1";
    tk.queue = "general";
    return hw_store_ticket_put(w, &tk, HW_PUT_CREATE, 0);
}

static int delete_fn(hw_store_txn *w, void *arg)
{
    return hw_store_ticket_delete(w, arg);
}

static void test_scrub_and_delete_leave_nothing_pending(void **state)
{
    fx *f = *state;
    assert_int_equal(hw_store_write(f->s, put_ticket, "t-600"), HW_OK);
    assert_int_equal(hw_store_write(f->s, put_ticket, "t-601"), HW_OK);
    append_rr(f, 600, 2, 20, "zqxsecret"); /* 40 each: 32 in the log, 8 pending */
    assert_true(wal_holds(f, "zqxsecret t-600"));
    assert_int_equal(hw_store_write(f->s, scrub_fn, "t-600"), HW_OK);
    assert_false(wal_holds(f, "zqxsecret t-600"));
    assert_true(wal_holds(f, "zqxsecret t-601"));
    /* Every message of t-600, the 8 that were pending too, is redacted. */
    hw_store_txn *t;
    hw_store_cursor cur = {0};
    Helpwire__V1__TicketMessage **ms;
    size_t n;
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    assert_int_equal(hw_store_ticket_message_list(t, "t-600", &cur, 100, f->a, &ms, &n), HW_OK);
    assert_int_equal(n, 20);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(ms[i]->text, "");
    MDB_val v;
    assert_int_equal(hw_store__get(t, HW_DB_TICKET_HEADS, "t-600", 5, &v), HW_ENOTFOUND);
    hw_store_read_end(f->r);
    /* Appends after the scrub go on from the log. */
    append_rr(f, 600, 1, 1, "after");
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    memset(&cur, 0, sizeof cur);
    assert_int_equal(hw_store_ticket_message_list(t, "t-600", &cur, 100, f->a, &ms, &n), HW_OK);
    assert_int_equal(n, 21);
    assert_string_equal(ms[20]->text, "after t-600 m0");
    hw_store_read_end(f->r);

    assert_int_equal(hw_store_write(f->s, delete_fn, "t-601"), HW_OK);
    assert_false(wal_holds(f, "zqxsecret t-601"));
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    memset(&cur, 0, sizeof cur);
    assert_int_equal(hw_store_ticket_message_list(t, "t-601", &cur, 100, f->a, &ms, &n), HW_OK);
    assert_int_equal(n, 0);
    assert_int_equal(hw_store__get(t, HW_DB_TICKET_HEADS, "t-601", 5, &v), HW_ENOTFOUND);
    hw_store_read_end(f->r);
}

/* After a restart the pending entries are read as before (they are in the
 * store, not in memory). */
static void test_pending_entries_survive_a_restart(void **state)
{
    fx *f = *state;
    append_rr(f, 700, 3, 15, NULL); /* 30 each: 4 in the log, 26 pending */
    assert_int_equal(entries(f, HW_DB_TICKET_LOG), 1 + 3 * 4);
    hw_store_reader_destroy(f->r);
    hw_store_close(f->s);
    f->s = hw_test_open(f->dir, 0, 0);
    assert_non_null(f->s);
    assert_int_equal(hw_store_reader_create(f->s, &f->r), HW_OK);
    check_messages(f, "t-701", 15, 4);
    append_rr_from(f, 700, 3, 3, NULL, 15); /* 36 each: the 32 pending copied */
    assert_int_equal(entries(f, HW_DB_TICKET_LOG), 1 + 3 * 36);
    check_messages(f, "t-702", 18, 5);
}

/* ---- the ticket record's append fields in the head ---------------------- */

/* What an append does to its ticket: read, bump, store (as tickets.c). */
static int bump_fn(hw_store_txn *w, void *arg)
{
    const char *id = arg;
    Helpwire__V1__TicketMessage m = HELPWIRE__V1__TICKET_MESSAGE__INIT;
    m.ticket_id = (char *)id;
    m.text = "bump";
    int rc = hw_store_ticket_message_append(w, &m, NULL);
    Helpwire__V1__Ticket *tk;
    if (rc == HW_OK)
        rc = hw_store_ticket_get(w, id, w->arena, &tk);
    if (rc != HW_OK)
        return rc;
    tk->message_count++;
    tk->version++;
    tk->updated_unix_ms = 5000 + (int64_t)tk->message_count;
    return hw_store_ticket_put(w, tk, HW_PUT_REPLACE, 0);
}

static int status_fn(hw_store_txn *w, void *arg)
{
    Helpwire__V1__Ticket *tk;
    int rc = hw_store_ticket_get(w, arg, w->arena, &tk);
    if (rc != HW_OK)
        return rc;
    tk->status = HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_PENDING;
    tk->version++;
    return hw_store_ticket_put(w, tk, HW_PUT_REPLACE, 0);
}

/* An UpdateTicket-like put that names the version it read. */
static int expect_fn(hw_store_txn *w, void *arg)
{
    uint64_t *want = arg;
    Helpwire__V1__Ticket *tk;
    int rc = hw_store_ticket_get(w, "t-800", w->arena, &tk);
    if (rc != HW_OK)
        return rc;
    tk->priority = HELPWIRE__V1__PRIORITY__PRIORITY_HIGH;
    tk->version++;
    return hw_store_ticket_put(w, tk, HW_PUT_REPLACE, *want);
}

/* The record as stored (no head laid over it). */
static Helpwire__V1__Ticket *raw_ticket(fx *f, const char *id)
{
    hw_store_txn *t;
    MDB_val v;
    Helpwire__V1__Ticket *tk = NULL;
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    assert_int_equal(hw_store__get(t, HW_DB_TICKETS, id, strlen(id), &v), HW_OK);
    tk = helpwire__v1__ticket__unpack(hw_arena_allocator(f->a), v.mv_size, v.mv_data);
    hw_store_read_end(f->r);
    assert_non_null(tk);
    return tk;
}

static Helpwire__V1__Ticket *read_ticket(fx *f, const char *id)
{
    hw_store_txn *t;
    Helpwire__V1__Ticket *tk;
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    assert_int_equal(hw_store_ticket_get(t, id, f->a, &tk), HW_OK);
    hw_store_read_end(f->r);
    return tk;
}

static void test_append_fields_live_in_the_head(void **state)
{
    fx *f = *state;
    assert_int_equal(hw_store_write(f->s, put_ticket, "t-800"), HW_OK);
    for (int i = 0; i < HW_TWAL_DIRECT; i++) /* the log of a ticket being opened */
        assert_int_equal(hw_store_write(f->s, sentinel_fn, "t-800"), HW_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(hw_store_write(f->s, bump_fn, "t-800"), HW_OK);
    /* The record is as created; every read sees the appends. */
    Helpwire__V1__Ticket *raw = raw_ticket(f, "t-800");
    assert_int_equal(raw->message_count, 0);
    assert_int_equal(raw->version, 0);
    Helpwire__V1__Ticket *tk = read_ticket(f, "t-800");
    assert_int_equal(tk->message_count, 3);
    assert_int_equal(tk->version, 3);
    assert_int_equal(tk->updated_unix_ms, 5003);
    hw_store_txn *t;
    hw_ticket_filter filter = {.customer_id = "c-1"};
    hw_store_cursor cur = {0};
    Helpwire__V1__Ticket **ts;
    size_t n;
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    assert_int_equal(hw_store_ticket_list(t, &filter, &cur, 10, f->a, &ts, &n), HW_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ts[0]->message_count, 3);
    assert_int_equal(hw_store_ticket_get_by_number(t, 800, f->a, &tk), HW_OK);
    assert_int_equal(tk->version, 3);
    hw_store_read_end(f->r);

    /* A put naming an older version is refused, the current one taken. */
    uint64_t stale = 2, current = 3;
    assert_int_equal(hw_store_write(f->s, expect_fn, &stale), HW_ECONFLICT);
    assert_int_equal(hw_store_write(f->s, expect_fn, &current), HW_OK);
    raw = raw_ticket(f, "t-800");
    assert_int_equal(raw->version, 4); /* written whole */
    assert_int_equal(raw->message_count, 3);

    /* Appends again, then a change of status: the record written whole
     * carries everything; reads agree. */
    assert_int_equal(hw_store_write(f->s, bump_fn, "t-800"), HW_OK);
    assert_int_equal(raw_ticket(f, "t-800")->version, 4);
    assert_int_equal(hw_store_write(f->s, status_fn, "t-800"), HW_OK);
    raw = raw_ticket(f, "t-800");
    assert_int_equal(raw->version, 6);
    assert_int_equal(raw->message_count, 4);
    tk = read_ticket(f, "t-800");
    assert_int_equal(tk->version, 6);
    assert_int_equal(tk->status, HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_PENDING);
}

/* A head that goes (the ticket idle past the trim) writes its fields into
 * the record first. */
static void test_trim_writes_the_head_into_the_record(void **state)
{
    fx *f = *state;
    assert_int_equal(hw_store_write(f->s, put_ticket, "t-900"), HW_OK);
    for (int i = 0; i < HW_TWAL_DIRECT; i++)
        assert_int_equal(hw_store_write(f->s, sentinel_fn, "t-900"), HW_OK);
    assert_int_equal(hw_store_write(f->s, bump_fn, "t-900"), HW_OK);
    assert_int_equal(hw_store_write(f->s, bump_fn, "t-900"), HW_OK);
    assert_int_equal(raw_ticket(f, "t-900")->version, 0);
    int rounds = (int)(HW_TWAL_KEEP / (2 * 64)) + 40;
    for (int i = 0; i < rounds; i += 50)
        append_rr(f, 500, 64, 50, NULL);
    hw_store_txn *t;
    MDB_val v;
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    assert_int_equal(hw_store__get(t, HW_DB_TICKET_HEADS, "t-900", 5, &v), HW_ENOTFOUND);
    hw_store_read_end(f->r);
    Helpwire__V1__Ticket *raw = raw_ticket(f, "t-900");
    assert_int_equal(raw->version, 2);
    assert_int_equal(raw->message_count, 2);
    assert_int_equal(raw->updated_unix_ms, 5002);
    /* And appends go on from there. */
    assert_int_equal(hw_store_write(f->s, bump_fn, "t-900"), HW_OK);
    Helpwire__V1__Ticket *tk = read_ticket(f, "t-900");
    assert_int_equal(tk->version, 3);
    assert_int_equal(tk->message_count, 3);
}

/* A ticket being opened (a short log), and one that sorts last in the
 * log, is appended to its log directly, without a head; once neither
 * holds, its appends go through the write-ahead part, and reads see both. */
static void test_a_new_ticket_is_appended_to_its_log(void **state)
{
    fx *f = *state;
    uint64_t log0 = entries(f, HW_DB_TICKET_LOG);
    for (int i = 0; i < HW_TWAL_DIRECT + 2; i++) /* short, then last */
        assert_int_equal(hw_store_write(f->s, sentinel_fn, "zz-fresh"), HW_OK);
    assert_int_equal(entries(f, HW_DB_TICKET_LOG), log0 + HW_TWAL_DIRECT + 2);
    assert_int_equal(entries(f, HW_DB_TICKET_WAL), 0);
    assert_int_equal(entries(f, HW_DB_TICKET_HEADS), 0);
    /* A newer ticket sorts after it: its next append waits in the
     * write-ahead part, behind a head that knows its log. */
    assert_int_equal(hw_store_write(f->s, sentinel_fn, "zz-later"), HW_OK);
    assert_int_equal(hw_store_write(f->s, sentinel_fn, "zz-fresh"), HW_OK);
    assert_int_equal(entries(f, HW_DB_TICKET_WAL), 1);
    assert_int_equal(entries(f, HW_DB_TICKET_HEADS), 1);
    hw_store_txn *t;
    hw_store_cursor cur = {0};
    Helpwire__V1__TicketMessage **ms;
    size_t n;
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    assert_int_equal(hw_store_ticket_message_list(t, "zz-fresh", &cur, 4, f->a, &ms, &n), HW_OK);
    assert_int_equal(n, 4);
    assert_true(cur.len > 0);
    assert_int_equal(hw_store_ticket_message_list(t, "zz-fresh", &cur, 4, f->a, &ms, &n), HW_OK);
    assert_int_equal(n, 3);
    assert_int_equal(cur.len, 0);
    hw_twal_entry *es;
    assert_int_equal(hw_twal_pending(t, "zz-fresh", f->a, &es, &n), HW_OK);
    assert_int_equal(n, 1);
    assert_int_equal(es[0].pos, HW_TWAL_DIRECT + 3);
    hw_store_read_end(f->r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_interleaved_tickets_read_back_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cursor_survives_the_copy_into_the_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newest_first_reads_pending_then_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trim_moves_idle_tickets_into_their_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scrub_and_delete_leave_nothing_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_entries_survive_a_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_fields_live_in_the_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trim_writes_the_head_into_the_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_new_ticket_is_appended_to_its_log, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
