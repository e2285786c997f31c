/*
 * store_scrub_test: hw_store_ticket_scrub on a real store: a ticket's
 * subject, resolution and escalation reason, its messages' texts and its
 * events' details and snapshots are emptied (REDACT) or its messages
 * removed (DELETE), the rest stays (ids, authors, times, statuses, the
 * indexes), a second run changes nothing, other tickets are untouched, and
 * the removed text is gone from a compacted backup of the store, and from
 * the live data file once hw_store_wipe_free has run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "helpwire/v1/router.pb-c.h"
#include "server/store/records.h"
#include "tests/unit/store_test_util.h"

#define MARK "ZQXMARKER"

typedef hw_test_store fx;

static int setup(void **state)
{
    return hw_test_store_setup(state, "scrub");
}

static int teardown(void **state)
{
    return hw_test_store_teardown(state);
}

/* A ticket with a subject, resolution and escalation reason naming MARK,
 * three messages (one on overflow pages) and an event after each, whose
 * detail and snapshot name it too. */
static int seed_ticket(hw_store_txn *w, const char *id, uint64_t number, const char *word)
{
    char subj[64], big[6000];
    snprintf(subj, sizeof subj, "subject %s", word);
    Helpwire__V1__Ticket tk = HELPWIRE__V1__TICKET__INIT;
    tk.id = (char *)id;
    tk.number = number;
    tk.customer_id = "c-1";
    tk.subject = subj;
    tk.resolution = subj;
    tk.escalation_reason = subj;
    tk.queue = "billing";
    tk.status = HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_OPEN;
    tk.version = 3;
    tk.created_unix_ms = 1000;
    int rc = hw_store_ticket_put(w, &tk, HW_PUT_CREATE, 0);
    for (int i = 0; rc == HW_OK && i < 3; i++) {
        char mid[32], text[64];
        snprintf(mid, sizeof mid, "%s-m%d", id, i);
        snprintf(text, sizeof text, "my name is %s %d", word, i);
        if (i == 2) {
            memset(big, 'b', sizeof big - 1);
            big[sizeof big - 1] = '\0';
            memcpy(big + 100, word, strlen(word));
        }
        Helpwire__V1__TicketMessage m = HELPWIRE__V1__TICKET_MESSAGE__INIT;
        m.id = mid;
        m.ticket_id = (char *)id;
        m.author = i == 1 ? "a-1" : "c-1";
        m.kind = i == 1 ? HELPWIRE__V1__MESSAGE_KIND__MESSAGE_KIND_AGENT_REPLY
                        : HELPWIRE__V1__MESSAGE_KIND__MESSAGE_KIND_CUSTOMER;
        m.text = i == 2 ? big : text;
        m.created_unix_ms = 2000 + i;
        m.delivery_parts = 1;
        rc = hw_store_ticket_message_append(w, &m, NULL);
        Helpwire__V1__TicketEvent ev = HELPWIRE__V1__TICKET_EVENT__INIT;
        ev.ticket_id = (char *)id;
        ev.kind = HELPWIRE__V1__TICKET_EVENT_KIND__TICKET_EVENT_KIND_MESSAGE;
        ev.actor = "c-1";
        ev.detail = text;
        ev.at_unix_ms = 2000 + i;
        ev.ticket = &tk;
        if (rc == HW_OK)
            rc = hw_store_ticket_event_append(w, &ev);
    }
    return rc;
}

static int seed_fn(hw_store_txn *w, void *ctx)
{
    (void)ctx;
    int rc = seed_ticket(w, "t-1", 1, MARK);
    return rc == HW_OK ? seed_ticket(w, "t-2", 2, "keepme") : rc;
}

typedef struct scrub_call {
    const char *id;
    int how;
    int64_t now;
    size_t messages;
} scrub_call;

static int scrub_fn(hw_store_txn *w, void *ctx)
{
    scrub_call *c = ctx;
    return hw_store_ticket_scrub(w, c->id, c->how, c->now, &c->messages);
}

static int scrub(fx *f, const char *id, int how, int64_t now, size_t *messages)
{
    scrub_call c = {.id = id, .how = how, .now = now, .messages = 999};
    int rc = hw_store_write(f->s, scrub_fn, &c);
    if (messages)
        *messages = c.messages;
    return rc;
}

/* Whether the file holds s. */
static bool file_has(const char *path, const char *s)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *b = malloc((size_t)n);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    bool found = memmem(b, (size_t)n, s, strlen(s)) != NULL;
    free(b);
    return found;
}

static bool backup_has(fx *f, const char *tag, const char *s)
{
    char bdir[PATH_MAX + 32], path[PATH_MAX + 64], why[256];
    snprintf(bdir, sizeof bdir, "%s/backup-%s", f->dir, tag);
    assert_int_equal(hw_store_backup(f->s, bdir, NULL, why, sizeof why), HW_OK);
    snprintf(path, sizeof path, "%s/data.mdb", bdir);
    return file_has(path, s);
}

static void test_redact_empties_texts_and_keeps_the_rest(void **state)
{
    fx *f = *state;
    assert_int_equal(hw_store_write(f->s, seed_fn, NULL), HW_OK);
    assert_true(backup_has(f, "before", MARK)); /* so the check below can fail */

    size_t n = 0;
    assert_int_equal(scrub(f, "t-1", HW_SCRUB_REDACT, 77777, &n), HW_OK);
    assert_int_equal(n, 3);

    hw_store_txn *t;
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    Helpwire__V1__Ticket *tk;
    assert_int_equal(hw_store_ticket_get(t, "t-1", f->a, &tk), HW_OK);
    assert_string_equal(tk->subject, "");
    assert_string_equal(tk->resolution, "");
    assert_string_equal(tk->escalation_reason, "");
    assert_int_equal(tk->redacted_unix_ms, 77777);
    assert_int_equal(tk->version, 4);
    assert_string_equal(tk->customer_id, "c-1");
    assert_string_equal(tk->queue, "billing");
    assert_int_equal(tk->created_unix_ms, 1000);

    hw_store_cursor cur = {0};
    Helpwire__V1__TicketMessage **ms;
    assert_int_equal(hw_store_ticket_message_list(t, "t-1", &cur, 10, f->a, &ms, &n), HW_OK);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(ms[i]->text, "");
        assert_int_equal(ms[i]->created_unix_ms, 2000 + (int64_t)i);
        assert_int_equal(ms[i]->delivery_parts, 1);
    }
    assert_string_equal(ms[1]->id, "t-1-m1");
    assert_string_equal(ms[1]->author, "a-1");
    assert_int_equal(ms[1]->kind, HELPWIRE__V1__MESSAGE_KIND__MESSAGE_KIND_AGENT_REPLY);

    Helpwire__V1__TicketEvent **evs;
    memset(&cur, 0, sizeof cur);
    assert_int_equal(hw_store_ticket_event_list(t, "t-1", &cur, 10, f->a, &evs, &n), HW_OK);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(evs[i]->seq, i + 1);
        assert_string_equal(evs[i]->detail, "");
        assert_null(evs[i]->ticket);
        assert_int_equal(evs[i]->at_unix_ms, 2000 + (int64_t)i);
        assert_int_equal(evs[i]->kind, HELPWIRE__V1__TICKET_EVENT_KIND__TICKET_EVENT_KIND_MESSAGE);
    }

    /* The other ticket keeps everything. */
    assert_int_equal(hw_store_ticket_get(t, "t-2", f->a, &tk), HW_OK);
    assert_string_equal(tk->subject, "subject keepme");
    assert_int_equal(tk->redacted_unix_ms, 0);
    memset(&cur, 0, sizeof cur);
    assert_int_equal(hw_store_ticket_message_list(t, "t-2", &cur, 10, f->a, &ms, &n), HW_OK);
    assert_int_equal(n, 3);
    assert_string_equal(ms[0]->text, "my name is keepme 0");

    /* Still found by the customer's index. */
    hw_ticket_filter flt = {.customer_id = "c-1"};
    Helpwire__V1__Ticket **tks;
    memset(&cur, 0, sizeof cur);
    assert_int_equal(hw_store_ticket_list(t, &flt, &cur, 10, f->a, &tks, &n), HW_OK);
    assert_int_equal(n, 2);
    hw_store_read_end(f->r);
    hw_arena_reset(f->a);

    assert_false(backup_has(f, "after", MARK));
    assert_true(backup_has(f, "after2", "keepme"));
}

static void test_second_run_changes_nothing(void **state)
{
    fx *f = *state;
    assert_int_equal(hw_store_write(f->s, seed_fn, NULL), HW_OK);
    size_t n;
    assert_int_equal(scrub(f, "t-1", HW_SCRUB_REDACT, 5000, &n), HW_OK);
    assert_int_equal(n, 3);
    assert_int_equal(scrub(f, "t-1", HW_SCRUB_REDACT, 9000, &n), HW_OK);
    assert_int_equal(n, 0);
    hw_store_txn *t;
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    Helpwire__V1__Ticket *tk;
    assert_int_equal(hw_store_ticket_get(t, "t-1", f->a, &tk), HW_OK);
    assert_int_equal(tk->redacted_unix_ms, 5000); /* kept from the first run */
    assert_int_equal(tk->version, 4);
    hw_store_read_end(f->r);
    hw_arena_reset(f->a);
}

static void test_delete_removes_messages_and_keeps_events(void **state)
{
    fx *f = *state;
    assert_int_equal(hw_store_write(f->s, seed_fn, NULL), HW_OK);
    size_t n;
    assert_int_equal(scrub(f, "t-1", HW_SCRUB_DELETE, 5000, &n), HW_OK);
    assert_int_equal(n, 3);
    assert_int_equal(scrub(f, "t-1", HW_SCRUB_REDACT, 6000, &n), HW_OK);
    assert_int_equal(n, 0); /* nothing left to redact */
    assert_int_equal(scrub(f, "t-1", HW_SCRUB_DELETE, 6000, &n), HW_OK);
    assert_int_equal(n, 0);
    hw_store_txn *t;
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    hw_store_cursor cur = {0};
    Helpwire__V1__TicketMessage **ms;
    assert_int_equal(hw_store_ticket_message_list(t, "t-1", &cur, 10, f->a, &ms, &n), HW_OK);
    assert_int_equal(n, 0);
    Helpwire__V1__TicketEvent **evs;
    memset(&cur, 0, sizeof cur);
    assert_int_equal(hw_store_ticket_event_list(t, "t-1", &cur, 10, f->a, &evs, &n), HW_OK);
    assert_int_equal(n, 3);
    assert_string_equal(evs[2]->detail, "");
    Helpwire__V1__Ticket *tk;
    assert_int_equal(hw_store_ticket_get(t, "t-1", f->a, &tk), HW_OK);
    assert_int_equal(tk->redacted_unix_ms, 5000);
    hw_store_read_end(f->r);
    hw_arena_reset(f->a);
    assert_false(backup_has(f, "deleted", MARK));
}

static void test_bad_calls(void **state)
{
    fx *f = *state;
    assert_int_equal(hw_store_write(f->s, seed_fn, NULL), HW_OK);
    size_t n;
    assert_int_equal(scrub(f, "t-404", HW_SCRUB_REDACT, 1, &n), HW_ENOTFOUND);
    assert_int_equal(scrub(f, "t-1", 0, 1, &n), HW_EINVALID);
    assert_int_equal(scrub(f, "t-1", 3, 1, &n), HW_EINVALID);
    assert_int_equal(scrub(f, "", HW_SCRUB_REDACT, 1, &n), HW_EINVALID);
    hw_store_txn *t;
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    assert_int_equal(hw_store_ticket_scrub(t, "t-1", HW_SCRUB_REDACT, 1, &n), HW_EINVALID);
    Helpwire__V1__Ticket *tk;
    assert_int_equal(hw_store_ticket_get(t, "t-1", f->a, &tk), HW_OK);
    assert_string_equal(tk->subject, "subject " MARK); /* nothing changed */
    hw_store_read_end(f->r);
    hw_arena_reset(f->a);
}

static void live_path(fx *f, char *buf, size_t len)
{
    snprintf(buf, len, "%s/data.mdb", f->dir);
}

/* Asks for a wipe and waits (bounded) until it is done. */
static void wipe_and_wait(fx *f)
{
    hw_store_stats st;
    hw_store_get_stats(f->s, &st);
    uint64_t before = st.wipes;
    hw_store_wipe_free(f->s);
    for (int i = 0; i < 1000; i++) {
        hw_store_get_stats(f->s, &st);
        if (st.wipes > before)
            return;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fail_msg("the wipe did not finish within 10 s");
}

static void test_wipe_clears_free_pages_of_the_live_file(void **state)
{
    fx *f = *state;
    char live[PATH_MAX + 16];
    live_path(f, live, sizeof live);
    assert_int_equal(hw_store_write(f->s, seed_fn, NULL), HW_OK);
    size_t n;
    assert_int_equal(scrub(f, "t-1", HW_SCRUB_REDACT, 5000, &n), HW_OK);
    assert_int_equal(n, 3);
    /* LMDB keeps the replaced pages' old versions in its free list. */
    assert_true(file_has(live, MARK));
    wipe_and_wait(f);
    assert_false(file_has(live, MARK));
    assert_true(file_has(live, "keepme"));
    hw_store_stats st;
    hw_store_get_stats(f->s, &st);
    assert_true(st.pages_wiped > 0);
    /* The store works on, the scratch database is empty. */
    assert_int_equal(scrub(f, "t-2", HW_SCRUB_DELETE, 6000, &n), HW_OK);
    assert_int_equal(n, 3);
    wipe_and_wait(f);
    assert_false(file_has(live, "keepme 0"));
}

/* ---- the dedupe scan of EraseCustomer: its cost ------------------------- */

#define DEDUPE_N 100000
#define DEDUPE_BATCH 10000

typedef struct dedupe_seed {
    int from;
} dedupe_seed;

static int put_dedupe_batch(hw_store_txn *w, void *arg)
{
    dedupe_seed *d = arg;
    for (int i = d->from; i < d->from + DEDUPE_BATCH; i++) {
        char mid[32], cid[32], tid[32];
        snprintf(mid, sizeof mid, "tg-%d-m1", i);
        snprintf(cid, sizeof cid, "c-%d", i);
        snprintf(tid, sizeof tid, "t-%d", i);
        Helpwire__V1__RouteReply r = HELPWIRE__V1__ROUTE_REPLY__INIT;
        r.customer_id = cid;
        r.ticket_id = tid;
        r.reply_text = "Thanks, an agent will answer you shortly. Your ticket number is 12345.";
        uint8_t buf[256];
        size_t n = helpwire__v1__route_reply__pack(&r, buf);
        int rc = hw_store_dedupe_put(w, HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, mid, buf, n, 1000 + i);
        if (rc != HW_OK)
            return rc;
    }
    return HW_OK;
}

typedef struct dedupe_erase_arg {
    const char *customer_id;
    hw_arena *tmp;
    size_t removed;
    double ms;
} dedupe_erase_arg;

/* As privacy.c's matcher: unpack each stored reply, compare the customer. */
static int names_customer(void *arg, const void *reply, size_t len)
{
    dedupe_erase_arg *d = arg;
    Helpwire__V1__RouteReply *r = helpwire__v1__route_reply__unpack(hw_arena_allocator(d->tmp), len, reply);
    int m = r && r->customer_id && strcmp(r->customer_id, d->customer_id) == 0;
    hw_arena_reset(d->tmp);
    return m;
}

static int erase_dedupe(hw_store_txn *w, void *arg)
{
    dedupe_erase_arg *d = arg;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = hw_store_dedupe_erase(w, names_customer, d, &d->removed);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    d->ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    return rc;
}

/* 100k entries, one of them the customer's: only that one goes. The time
 * of the scan is printed (docs/privacy.md quotes it), not asserted. */
static void test_dedupe_erase_scans_every_entry(void **state)
{
    fx *f = *state;
    for (int from = 0; from < DEDUPE_N; from += DEDUPE_BATCH) {
        dedupe_seed d = {.from = from};
        assert_int_equal(hw_store_write(f->s, put_dedupe_batch, &d), HW_OK);
    }
    dedupe_erase_arg e = {.customer_id = "c-77777", .tmp = hw_arena_create(4096)};
    assert_int_equal(hw_store_write(f->s, erase_dedupe, &e), HW_OK);
    assert_int_equal(e.removed, 1);
    printf("dedupe scan of %d entries (unpacking each reply): %.1f ms\n", DEDUPE_N, e.ms);
    e.customer_id = "c-nobody";
    assert_int_equal(hw_store_write(f->s, erase_dedupe, &e), HW_OK);
    assert_int_equal(e.removed, 0);
    printf("again, nothing to remove: %.1f ms\n", e.ms);
    hw_arena_destroy(e.tmp);
    hw_store_txn *t;
    void *reply;
    size_t len;
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    assert_int_equal(hw_store_dedupe_get(t, HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, "tg-77777-m1", f->a, &reply, &len),
                     HW_ENOTFOUND);
    assert_int_equal(hw_store_dedupe_get(t, HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, "tg-77776-m1", f->a, &reply, &len),
                     HW_OK);
    hw_store_read_end(f->r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_redact_empties_texts_and_keeps_the_rest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_run_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_removes_messages_and_keeps_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wipe_clears_free_pages_of_the_live_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedupe_erase_scans_every_entry, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
