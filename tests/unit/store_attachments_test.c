/*
 * store_attachments_test: the store's attachment records on a real store:
 * pieces are stored once per content (existed), an attachment needs every
 * piece and the right size, ticket messages refer to attachments (an
 * unknown one appends nothing), a file leaves the store with the last
 * message that refers to it (scrub or ticket delete) while a piece another
 * file shares stays, the sweep removes only what nothing refers to and was
 * not touched since the cutoff, and a full map refuses a piece without
 * leaving half of it behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "server/store/records.h"
#include "tests/unit/store_test_util.h"

typedef hw_test_store fx;

static int setup(void **state)
{
    return hw_test_store_setup(state, "attach");
}

static int teardown(void **state)
{
    return hw_test_store_teardown(state);
}

/* A fake digest: the byte b repeated (the store trusts its caller's). */
static void digest_of(unsigned char *d, unsigned char b)
{
    memset(d, b, HW_STORE_SHA256_LEN);
}

typedef struct op {
    int (*fn)(hw_store_txn *w, struct op *o);
    unsigned char d[4][HW_STORE_SHA256_LEN];
    size_t n;
    const void *data;
    size_t len;
    int64_t now;
    bool existed;
    size_t missing;
    Helpwire__V1__Attachment info;
    const char *ticket, *msg, *att;
    int how;
    hw_attachment_sweep_counts counts;
} op;

static int run_op(hw_store_txn *w, void *arg)
{
    op *o = arg;
    return o->fn(w, o);
}

static int do_chunk(hw_store_txn *w, op *o)
{
    return hw_store_chunk_put(w, o->d[0], o->data, o->len, o->now, &o->existed);
}

static int do_attach(hw_store_txn *w, op *o)
{
    return hw_store_attachment_put(w, &o->info, &o->d[0][0], o->n, o->now, &o->existed, &o->missing);
}

static int do_message(hw_store_txn *w, op *o)
{
    Helpwire__V1__Attachment at = HELPWIRE__V1__ATTACHMENT__INIT;
    Helpwire__V1__Attachment *list[1] = {&at};
    at.id = (char *)o->att;
    at.kind = HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_IMAGE;
    Helpwire__V1__Ticket tk = HELPWIRE__V1__TICKET__INIT;
    int rc = hw_store_ticket_get(w, o->ticket, hw_store_txn_arena(w), &(Helpwire__V1__Ticket *){NULL});
    if (rc == HW_ENOTFOUND) {
        tk.id = (char *)o->ticket;
        tk.number = 1000 + (uint64_t)o->ticket[2];
        tk.customer_id = "c-1";
        tk.status = HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_CLOSED;
        tk.version = 1;
        if ((rc = hw_store_ticket_put(w, &tk, HW_PUT_CREATE, 0)) != HW_OK)
            return rc;
    } else if (rc != HW_OK) {
        return rc;
    }
    Helpwire__V1__TicketMessage m = HELPWIRE__V1__TICKET_MESSAGE__INIT;
    m.id = (char *)o->msg;
    m.ticket_id = (char *)o->ticket;
    m.text = "look";
    m.attachments = list;
    m.n_attachments = 1;
    return hw_store_ticket_message_append(w, &m, NULL);
}

static int do_scrub(hw_store_txn *w, op *o)
{
    return hw_store_ticket_scrub(w, o->ticket, o->how, 5, NULL);
}

static int do_delete(hw_store_txn *w, op *o)
{
    return hw_store_ticket_delete(w, o->ticket);
}

static int do_sweep(hw_store_txn *w, op *o)
{
    return hw_store_attachment_sweep(w, o->now, 100, &o->counts);
}

static int put_piece(fx *f, unsigned char b, size_t len, int64_t now, bool *existed)
{
    static unsigned char buf[4096];
    memset(buf, b, sizeof buf);
    op o = {.fn = do_chunk, .data = buf, .len = len, .now = now};
    digest_of(o.d[0], b);
    int rc = hw_store_write(f->s, run_op, &o);
    if (existed)
        *existed = o.existed;
    return rc;
}

/* An attachment of the pieces bs[0..n) (each 100 bytes), id "a-" + 40 x c. */
static int put_file(fx *f, const unsigned char *bs, size_t n, char c, int64_t now, char *id, bool *existed,
                    size_t *missing)
{
    op o = {.fn = do_attach, .n = n, .now = now};
    memset(id, c, 42);
    id[0] = 'a', id[1] = '-', id[42] = 0;
    helpwire__v1__attachment__init(&o.info);
    o.info.id = id;
    o.info.kind = HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_IMAGE;
    o.info.size_bytes = 100 * n;
    o.info.sha256 = "00";
    for (size_t i = 0; i < n; i++)
        digest_of(o.d[i], bs[i]);
    int rc = hw_store_write(f->s, run_op, &o);
    if (existed)
        *existed = o.existed;
    if (missing)
        *missing = o.missing;
    return rc;
}

static int stat_piece(fx *f, unsigned char b, uint32_t *refs)
{
    unsigned char d[HW_STORE_SHA256_LEN];
    digest_of(d, b);
    hw_store_txn *t;
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    int rc = hw_store_chunk_stat(t, d, NULL, refs);
    hw_store_read_end(f->r);
    return rc;
}

static int file_refs(fx *f, const char *id, uint64_t *n)
{
    hw_store_txn *t;
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    hw_store_attachment st;
    int rc = hw_store_attachment_get(t, id, f->a, &st);
    if (rc == HW_OK)
        rc = hw_store_attachment_refs(t, id, n);
    hw_store_read_end(f->r);
    return rc;
}

static void test_a_piece_is_stored_once_per_content(void **state)
{
    fx *f = *state;
    bool existed = true;
    assert_int_equal(put_piece(f, 'a', 100, 10, &existed), HW_OK);
    assert_false(existed);
    assert_int_equal(put_piece(f, 'a', 100, 11, &existed), HW_OK);
    assert_true(existed);
    assert_int_equal(put_piece(f, 'z', 0, 11, NULL), HW_EINVALID);
    uint32_t refs = 9;
    assert_int_equal(stat_piece(f, 'a', &refs), HW_OK);
    assert_int_equal(refs, 0);
}

static void test_an_attachment_needs_every_piece_and_its_size(void **state)
{
    fx *f = *state;
    char id[43];
    size_t missing = 99;
    bool existed;
    assert_int_equal(put_piece(f, 'a', 100, 10, NULL), HW_OK);
    assert_int_equal(put_file(f, (const unsigned char *)"ab", 2, '1', 10, id, NULL, &missing), HW_ENOTFOUND);
    assert_int_equal(missing, 1);
    assert_int_equal(put_piece(f, 'b', 100, 10, NULL), HW_OK);
    op o = {.fn = do_attach, .n = 1, .now = 10};
    digest_of(o.d[0], 'a');
    helpwire__v1__attachment__init(&o.info);
    o.info.id = "a-2222222222222222222222222222222222222222";
    o.info.size_bytes = 99; /* not the pieces' sum */
    assert_int_equal(hw_store_write(f->s, run_op, &o), HW_EINVALID);
    assert_int_equal(put_file(f, (const unsigned char *)"aba", 3, '1', 10, id, &existed, NULL), HW_OK);
    assert_false(existed);
    assert_int_equal(put_file(f, (const unsigned char *)"aba", 3, '1', 11, id, &existed, NULL), HW_OK);
    assert_true(existed);
    uint32_t refs;
    assert_int_equal(stat_piece(f, 'a', &refs), HW_OK);
    assert_int_equal(refs, 2); /* twice in the one file, counted once per occurrence */
    hw_store_txn *t;
    hw_store_attachment st;
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    assert_int_equal(hw_store_attachment_get(t, id, f->a, &st), HW_OK);
    hw_store_read_end(f->r);
    assert_int_equal(st.n_chunks, 3);
    assert_int_equal(st.info->size_bytes, 300);
    assert_int_equal(st.chunk_sizes[1], 100);
    assert_int_equal(st.chunks[1][0], 'b');
}

static void test_a_file_leaves_with_its_last_message_and_shared_pieces_stay(void **state)
{
    fx *f = *state;
    char x[43], y[43];
    assert_int_equal(put_piece(f, 'a', 100, 10, NULL), HW_OK);
    assert_int_equal(put_piece(f, 'b', 100, 10, NULL), HW_OK);
    assert_int_equal(put_file(f, (const unsigned char *)"ab", 2, '1', 10, x, NULL, NULL), HW_OK);
    assert_int_equal(put_file(f, (const unsigned char *)"b", 1, '2', 10, y, NULL, NULL), HW_OK);
    /* An unknown attachment: nothing appended. */
    op bad = {.fn = do_message, .ticket = "t-9", .msg = "t-9-m1", .att = "a-9999999999999999999999999999999999999999"};
    assert_int_equal(hw_store_write(f->s, run_op, &bad), HW_ENOTFOUND);
    op m1 = {.fn = do_message, .ticket = "t-1", .msg = "t-1-m1", .att = x};
    op m2 = {.fn = do_message, .ticket = "t-2", .msg = "t-2-m1", .att = x};
    assert_int_equal(hw_store_write(f->s, run_op, &m1), HW_OK);
    assert_int_equal(hw_store_write(f->s, run_op, &m2), HW_OK);
    uint64_t n = 0;
    assert_int_equal(file_refs(f, x, &n), HW_OK);
    assert_int_equal(n, 2);
    op s1 = {.fn = do_scrub, .ticket = "t-1", .how = HW_SCRUB_REDACT};
    assert_int_equal(hw_store_write(f->s, run_op, &s1), HW_OK);
    assert_int_equal(hw_store_write(f->s, run_op, &s1), HW_OK); /* again: nothing more */
    assert_int_equal(file_refs(f, x, &n), HW_OK);
    assert_int_equal(n, 1);
    op d2 = {.fn = do_delete, .ticket = "t-2"};
    assert_int_equal(hw_store_write(f->s, run_op, &d2), HW_OK);
    assert_int_equal(file_refs(f, x, &n), HW_ENOTFOUND);
    uint32_t refs;
    assert_int_equal(stat_piece(f, 'a', &refs), HW_ENOTFOUND); /* only x had it */
    assert_int_equal(stat_piece(f, 'b', &refs), HW_OK);        /* y has it too */
    assert_int_equal(refs, 1);
    /* The redacted message keeps no attachment. */
    hw_store_txn *t;
    Helpwire__V1__TicketMessage **ms;
    size_t nm;
    hw_store_cursor cur = {0};
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    assert_int_equal(hw_store_ticket_message_list(t, "t-1", &cur, 10, f->a, &ms, &nm), HW_OK);
    hw_store_read_end(f->r);
    assert_int_equal(nm, 1);
    assert_int_equal(ms[0]->n_attachments, 0);
    assert_string_equal(ms[0]->text, "");
}

static void test_the_sweep_removes_only_what_nothing_uses(void **state)
{
    fx *f = *state;
    char used[43], unused[43];
    assert_int_equal(put_piece(f, 'a', 100, 1000, NULL), HW_OK);
    assert_int_equal(put_piece(f, 'b', 100, 1000, NULL), HW_OK);
    assert_int_equal(put_piece(f, 'c', 100, 1000, NULL), HW_OK); /* in no file */
    assert_int_equal(put_piece(f, 'd', 100, 1000, NULL), HW_OK); /* touched again later */
    assert_int_equal(put_file(f, (const unsigned char *)"a", 1, '1', 1000, used, NULL, NULL), HW_OK);
    assert_int_equal(put_file(f, (const unsigned char *)"b", 1, '2', 1000, unused, NULL, NULL), HW_OK);
    op m = {.fn = do_message, .ticket = "t-1", .msg = "t-1-m1", .att = used};
    assert_int_equal(hw_store_write(f->s, run_op, &m), HW_OK);
    assert_int_equal(put_piece(f, 'd', 100, 5000, NULL), HW_OK);
    op sw = {.fn = do_sweep, .now = 1000}; /* nothing is older than 1000 */
    assert_int_equal(hw_store_write(f->s, run_op, &sw), HW_OK);
    assert_int_equal(sw.counts.attachments + sw.counts.chunks, 0);
    sw.now = 2000;
    assert_int_equal(hw_store_write(f->s, run_op, &sw), HW_OK);
    assert_int_equal(sw.counts.attachments, 1);
    assert_int_equal(sw.counts.chunks, 2); /* b with its file, c */
    uint64_t n;
    uint32_t refs;
    assert_int_equal(file_refs(f, used, &n), HW_OK);
    assert_int_equal(file_refs(f, unused, &n), HW_ENOTFOUND);
    assert_int_equal(stat_piece(f, 'a', &refs), HW_OK);
    assert_int_equal(stat_piece(f, 'b', &refs), HW_ENOTFOUND);
    assert_int_equal(stat_piece(f, 'c', &refs), HW_ENOTFOUND);
    assert_int_equal(stat_piece(f, 'd', &refs), HW_OK);
    sw.now = 6000;
    assert_int_equal(hw_store_write(f->s, run_op, &sw), HW_OK);
    assert_int_equal(stat_piece(f, 'd', &refs), HW_ENOTFOUND);
    assert_int_equal(stat_piece(f, 'a', &refs), HW_OK);
}

typedef struct big_op {
    unsigned char d[HW_STORE_SHA256_LEN];
    const unsigned char *data;
} big_op;

static int do_big(hw_store_txn *w, void *arg)
{
    big_op *o = arg;
    return hw_store_chunk_put(w, o->d, o->data, HW_STORE_CHUNK_MAX, 1, NULL);
}

static void test_a_full_map_refuses_a_piece_whole(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    hw_test_dir(dir, sizeof dir, "attach-full");
    hw_store_options o = {.data_dir = dir, .initial_map_size_bytes = 1 << 20, .max_map_size_bytes = 8 << 20};
    hw_store *s = NULL;
    char err[256];
    assert_int_equal(hw_store_open(&s, &o, err, sizeof err), HW_OK);
    unsigned char *buf = malloc(HW_STORE_CHUNK_MAX);
    memset(buf, 7, HW_STORE_CHUNK_MAX);
    int rc = HW_OK;
    int stored = 0;
    big_op b = {.data = buf};
    for (int i = 0; i < 20 && rc == HW_OK; i++) {
        digest_of(b.d, (unsigned char)(i + 1));
        rc = hw_store_write(s, do_big, &b);
        if (rc == HW_OK)
            stored++;
    }
    assert_int_equal(rc, HW_EFULL);
    assert_true(stored >= 3);
    hw_store_reader *r;
    assert_int_equal(hw_store_reader_create(s, &r), HW_OK);
    hw_store_txn *t;
    assert_int_equal(hw_store_read_begin(r, &t), HW_OK);
    assert_int_equal(hw_store_chunk_stat(t, b.d, NULL, NULL), HW_ENOTFOUND); /* the refused one: no trace */
    const void *p;
    size_t len;
    assert_int_equal(hw_store_chunk_read(t, b.d, &p, &len), HW_ENOTFOUND);
    hw_store_blob_counts c;
    assert_int_equal(hw_store_blob_counts_get(t, &c), HW_OK);
    assert_int_equal(c.chunks, (uint64_t)stored);
    assert_int_equal(c.chunk_bytes, (uint64_t)stored * HW_STORE_CHUNK_MAX);
    hw_store_read_end(r);
    free(buf);
    assert_int_equal(hw_test_check_and_close(s, r), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_piece_is_stored_once_per_content, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_attachment_needs_every_piece_and_its_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_file_leaves_with_its_last_message_and_shared_pieces_stay, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_the_sweep_removes_only_what_nothing_uses, setup, teardown),
        cmocka_unit_test(test_a_full_map_refuses_a_piece_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
