/*
 * audit_test: the audit log's store side (records.h, "the audit log") and
 * hw_audit_append (server/domain/audit.h): entries are numbered in commit
 * order from 1, never reuse a number (also after a prune), never go back in time; listings are newest first,
 * paged by a cursor, filtered by action (exact or prefix), actor, target and time, bounded in what one page
 * reads; a foreign cursor is refused; pruning takes the oldest entries before a cutoff; entries survive a
 * reopen.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <sys/stat.h>

#include "server/domain/audit.h"
#include "server/store/records.h"
#include "tests/unit/store_test_util.h"

typedef hw_test_store fx;

static int setup(void **state)
{
    return hw_test_store_setup(state, "audit");
}

static int teardown(void **state)
{
    return hw_test_store_teardown(state);
}

/* ---- writes ---- */

typedef struct app_op {
    int64_t at;
    const char *actor, *action, *target;
    int outcome;
    int fail_after; /* the write fn fails after appending: rolled back */
    int rc;         /* hw_audit_append's */
} app_op;

static int append_fn(hw_store_txn *w, void *ctx)
{
    app_op *op = ctx;
    hw_audit_rec r = {.actor = op->actor,
                      .action = op->action,
                      .target = op->target,
                      .outcome = op->outcome,
                      .peer = "ipv4:127.0.0.1:4000",
                      .trace_id = "0af7651916cd43dd8448eb211c80319c"};
    hw_audit_detail(&r, "role", "admin");
    hw_audit_detail(&r, "description", "ci");
    hw_audit_detail(&r, "role", "agent"); /* replaces */
    op->rc = hw_audit_append(w, op->at, &r);
    if (op->fail_after)
        return HW_EPRECONDITION;
    return op->rc;
}

static int append(fx *f, int64_t at, const char *actor, const char *action, const char *target)
{
    app_op op = {.at = at, .actor = actor, .action = action, .target = target};
    return hw_store_write(f->s, append_fn, &op);
}

typedef struct prune_op {
    int64_t cutoff;
    size_t max, deleted;
} prune_op;

static int prune_fn(hw_store_txn *w, void *ctx)
{
    prune_op *op = ctx;
    return hw_store_audit_prune(w, op->cutoff, op->max, &op->deleted);
}

/* ---- reads ---- */

/* The seqs of a whole listing under filter flt, limit per page; *pages
 * receives the number of pages read. */
static size_t listing(fx *f, const hw_audit_filter *flt, size_t limit, size_t max_scan, uint64_t *got,
                      size_t max, size_t *pages)
{
    hw_store_cursor cur = {0};
    size_t total = 0, np = 0;
    do {
        hw_arena_reset(f->a);
        hw_store_txn *t;
        assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
        Helpwire__V1__AuditEvent **es;
        size_t n;
        assert_int_equal(hw_store_audit_list(t, flt, &cur, limit, max_scan, f->a, &es, &n), HW_OK);
        assert_true(n <= limit);
        for (size_t i = 0; i < n && total < max; i++)
            got[total++] = es[i]->seq;
        hw_store_read_end(f->r);
        np++;
        assert_true(np < 100);
    } while (cur.len);
    if (pages)
        *pages = np;
    return total;
}

static void fill(fx *f)
{
    /* seq: 1 2 3 4 5 6 */
    assert_int_equal(append(f, 1000, "token:tok-1", "token.create", "tok-2"), HW_OK);
    assert_int_equal(append(f, 2000, "token:tok-1", "token.revoke", "tok-2"), HW_OK);
    assert_int_equal(append(f, 3000, "token:tok-2", "access.denied", "/helpwire.v1.Admin/Backup"), HW_OK);
    assert_int_equal(append(f, 4000, "system", "config.start", ""), HW_OK);
    assert_int_equal(append(f, 5000, "token:tok-1", "backup", "/var/backups/b1"), HW_OK);
    assert_int_equal(append(f, 6000, "token:tok-1", "token.create", "tok-3"), HW_OK);
}

static void test_entries_are_numbered_and_read_back(void **state)
{
    fx *f = *state;
    fill(f);
    hw_store_txn *t;
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    Helpwire__V1__AuditEvent *e;
    assert_int_equal(hw_store_audit_get(t, 1, f->a, &e), HW_OK);
    assert_int_equal(e->seq, 1);
    assert_int_equal(e->at_unix_ms, 1000);
    assert_string_equal(e->actor, "token:tok-1");
    assert_string_equal(e->action, "token.create");
    assert_string_equal(e->target, "tok-2");
    assert_int_equal(e->outcome, HELPWIRE__V1__AUDIT_OUTCOME__AUDIT_OUTCOME_OK); /* default */
    assert_string_equal(e->peer, "ipv4:127.0.0.1:4000");
    assert_string_equal(e->trace_id, "0af7651916cd43dd8448eb211c80319c");
    assert_int_equal(e->n_details, 2);
    for (size_t i = 0; i < e->n_details; i++) {
        if (strcmp(e->details[i]->key, "role") == 0)
            assert_string_equal(e->details[i]->value, "agent");
        else
            assert_string_equal(e->details[i]->key, "description");
    }
    assert_int_equal(hw_store_audit_get(t, 7, f->a, &e), HW_ENOTFOUND);
    uint64_t n;
    assert_int_equal(hw_store_audit_count(t, &n), HW_OK);
    assert_int_equal(n, 6);
    hw_store_read_end(f->r);
}

static void test_bad_appends_are_refused_and_a_rolled_back_entry_leaves_nothing(void **state)
{
    fx *f = *state;
    assert_int_equal(append(f, 1000, "system", "", "x"), HW_EINVALID);
    assert_int_equal(append(f, 1000, "system", NULL, "x"), HW_EINVALID);
    char longact[300];
    memset(longact, 'a', sizeof longact - 1);
    longact[sizeof longact - 1] = '\0';
    assert_int_equal(append(f, 1000, "system", longact, "x"), HW_EINVALID);
    /* A write that fails after appending keeps nothing. */
    app_op op = {.at = 1000, .action = "token.create", .fail_after = 1};
    assert_int_equal(hw_store_write(f->s, append_fn, &op), HW_EPRECONDITION);
    assert_int_equal(op.rc, HW_OK);
    assert_int_equal(append(f, 1500, NULL, "config.start", ""), HW_OK);
    uint64_t got[4];
    assert_int_equal(listing(f, NULL, 10, 0, got, 4, NULL), 1);
    hw_store_txn *t;
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    Helpwire__V1__AuditEvent *e;
    assert_int_equal(hw_store_audit_get(t, got[0], f->a, &e), HW_OK);
    assert_string_equal(e->actor, "system"); /* NULL actor: the server */
    hw_store_read_end(f->r);
    assert_int_equal(got[0], 1); /* the rolled-back number was never handed out */
}

static void test_times_never_go_back(void **state)
{
    fx *f = *state;
    assert_int_equal(append(f, 5000, "system", "config.start", ""), HW_OK);
    assert_int_equal(append(f, 4000, "system", "backup", ""), HW_OK); /* the clock stepped back */
    hw_store_txn *t;
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    Helpwire__V1__AuditEvent *e;
    assert_int_equal(hw_store_audit_get(t, 2, f->a, &e), HW_OK);
    assert_int_equal(e->at_unix_ms, 5000);
    hw_store_read_end(f->r);
}

static void test_listed_newest_first_and_paged(void **state)
{
    fx *f = *state;
    fill(f);
    uint64_t got[10];
    size_t pages;
    assert_int_equal(listing(f, NULL, 4, 0, got, 10, &pages), 6);
    const uint64_t all[6] = {6, 5, 4, 3, 2, 1};
    assert_memory_equal(got, all, sizeof all);
    assert_int_equal(pages, 2);
    /* A page of exactly the rest ends the listing (no empty extra page). */
    assert_int_equal(listing(f, NULL, 3, 0, got, 10, &pages), 6);
    assert_int_equal(pages, 2);
    assert_int_equal(listing(f, NULL, 1, 0, got, 10, &pages), 6);
    assert_memory_equal(got, all, sizeof all);
    assert_int_equal(pages, 6);
}

static void test_new_entries_between_pages_do_not_repeat(void **state)
{
    fx *f = *state;
    fill(f);
    hw_store_cursor cur = {0};
    hw_store_txn *t;
    Helpwire__V1__AuditEvent **es;
    size_t n;
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    assert_int_equal(hw_store_audit_list(t, NULL, &cur, 2, 0, f->a, &es, &n), HW_OK);
    assert_int_equal(n, 2);
    assert_int_equal(es[1]->seq, 5);
    hw_store_read_end(f->r);
    assert_int_equal(append(f, 7000, "system", "backup", ""), HW_OK);
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    assert_int_equal(hw_store_audit_list(t, NULL, &cur, 2, 0, f->a, &es, &n), HW_OK);
    assert_int_equal(n, 2);
    assert_int_equal(es[0]->seq, 4);
    assert_int_equal(es[1]->seq, 3);
    hw_store_read_end(f->r);
}

static void test_filters(void **state)
{
    fx *f = *state;
    fill(f);
    uint64_t got[10];
    hw_audit_filter flt = {.action = "token."};
    assert_int_equal(listing(f, &flt, 10, 0, got, 10, NULL), 3);
    const uint64_t tok[3] = {6, 2, 1};
    assert_memory_equal(got, tok, sizeof tok);
    flt = (hw_audit_filter){.action = "token.create"};
    assert_int_equal(listing(f, &flt, 10, 0, got, 10, NULL), 2);
    flt = (hw_audit_filter){.action = "token"}; /* not a prefix without the dot */
    assert_int_equal(listing(f, &flt, 10, 0, got, 10, NULL), 0);
    flt = (hw_audit_filter){.action = "token.creat"};
    assert_int_equal(listing(f, &flt, 10, 0, got, 10, NULL), 0);
    flt = (hw_audit_filter){.actor = "token:tok-1"};
    assert_int_equal(listing(f, &flt, 10, 0, got, 10, NULL), 4);
    flt = (hw_audit_filter){.actor = "token:tok-1", .target = "tok-2"};
    assert_int_equal(listing(f, &flt, 10, 0, got, 10, NULL), 2);
    assert_int_equal(got[0], 2);
    flt = (hw_audit_filter){.target = "tok-3"};
    assert_int_equal(listing(f, &flt, 10, 0, got, 10, NULL), 1);
    assert_int_equal(got[0], 6);
    /* from inclusive, to exclusive */
    flt = (hw_audit_filter){.from_unix_ms = 2000, .to_unix_ms = 5000};
    assert_int_equal(listing(f, &flt, 10, 0, got, 10, NULL), 3);
    const uint64_t mid[3] = {4, 3, 2};
    assert_memory_equal(got, mid, sizeof mid);
    flt = (hw_audit_filter){.from_unix_ms = 5500};
    assert_int_equal(listing(f, &flt, 10, 0, got, 10, NULL), 1);
    flt = (hw_audit_filter){.to_unix_ms = 1000};
    assert_int_equal(listing(f, &flt, 10, 0, got, 10, NULL), 0);
    /* Filtered and paged by one: the same entries. */
    flt = (hw_audit_filter){.action = "token."};
    assert_int_equal(listing(f, &flt, 1, 0, got, 10, NULL), 3);
    assert_memory_equal(got, tok, sizeof tok);
}

static void test_a_page_reads_at_most_max_scan_entries(void **state)
{
    fx *f = *state;
    fill(f);
    uint64_t got[10];
    size_t pages;
    /* Only seq 3 matches; two entries read per page: the listing goes on
     * over pages, some empty, and finds it once. */
    hw_audit_filter flt = {.action = "access."};
    assert_int_equal(listing(f, &flt, 10, 2, got, 10, &pages), 1);
    assert_int_equal(got[0], 3);
    assert_true(pages >= 3);
    hw_store_cursor cur = {0};
    hw_store_txn *t;
    Helpwire__V1__AuditEvent **es;
    size_t n;
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    assert_int_equal(hw_store_audit_list(t, &flt, &cur, 10, 2, f->a, &es, &n), HW_OK);
    assert_int_equal(n, 0); /* 6 and 5 read, neither matched */
    assert_int_not_equal(cur.len, 0);
    hw_store_read_end(f->r);
}

static void test_foreign_cursors_and_bad_limits_are_refused(void **state)
{
    fx *f = *state;
    fill(f);
    hw_store_txn *t;
    Helpwire__V1__AuditEvent **es;
    size_t n;
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    /* A cursor of another listing. */
    hw_store_cursor cur = {0};
    cur.len = 3;
    cur.key[0] = 1;
    assert_int_equal(hw_store_audit_list(t, NULL, &cur, 10, 0, f->a, &es, &n), HW_EINVALID);
    hw_store_cursor bad = {.len = 9};
    bad.key[0] = 0; /* right length, another database */
    assert_int_equal(hw_store_audit_list(t, NULL, &bad, 10, 0, f->a, &es, &n), HW_EINVALID);
    hw_store_cursor zero = {0};
    assert_int_equal(hw_store_audit_list(t, NULL, &zero, 0, 0, f->a, &es, &n), HW_EINVALID);
    assert_int_equal(hw_store_audit_list(t, NULL, &zero, HW_STORE_LIST_MAX + 1, 0, f->a, &es, &n),
                     HW_EINVALID);
    hw_store_read_end(f->r);
}

static void test_prune_takes_the_oldest_and_numbers_go_on(void **state)
{
    fx *f = *state;
    fill(f);
    prune_op op = {.cutoff = 3500, .max = 2};
    assert_int_equal(hw_store_write(f->s, prune_fn, &op), HW_OK);
    assert_int_equal(op.deleted, 2);
    op = (prune_op){.cutoff = 3500, .max = 100};
    assert_int_equal(hw_store_write(f->s, prune_fn, &op), HW_OK);
    assert_int_equal(op.deleted, 1);
    op = (prune_op){.cutoff = 0, .max = 100};
    assert_int_equal(hw_store_write(f->s, prune_fn, &op), HW_OK);
    assert_int_equal(op.deleted, 0);
    op = (prune_op){.cutoff = 3500, .max = 0};
    assert_int_equal(hw_store_write(f->s, prune_fn, &op), HW_EINVALID);
    uint64_t got[10];
    assert_int_equal(listing(f, NULL, 10, 0, got, 10, NULL), 3);
    assert_int_equal(got[2], 4);
    /* Prune everything: the next entry still gets 7, not 1. */
    op = (prune_op){.cutoff = 100000, .max = 100};
    assert_int_equal(hw_store_write(f->s, prune_fn, &op), HW_OK);
    assert_int_equal(op.deleted, 3);
    assert_int_equal(append(f, 7000, "system", "backup", ""), HW_OK);
    assert_int_equal(listing(f, NULL, 10, 0, got, 10, NULL), 1);
    assert_int_equal(got[0], 7);
}

static void test_entries_survive_a_reopen(void **state)
{
    fx *f = *state;
    fill(f);
    hw_store_reader_destroy(f->r);
    hw_store_close(f->s);
    assert_int_equal(hw_test_store_reopen(f), 0);
    uint64_t got[10];
    assert_int_equal(listing(f, NULL, 10, 0, got, 10, NULL), 6);
    assert_int_equal(append(f, 7000, "system", "config.start", ""), HW_OK);
    assert_int_equal(listing(f, NULL, 10, 0, got, 10, NULL), 7);
    assert_int_equal(got[0], 7);
}

/* ---- a start's entries (hw_audit_start) ---- */

static const char *detail(const Helpwire__V1__AuditEvent *e, const char *key)
{
    for (size_t i = 0; i < e->n_details; i++)
        if (strcmp(e->details[i]->key, key) == 0)
            return e->details[i]->value;
    return NULL;
}

static Helpwire__V1__AuditEvent *entry(fx *f, uint64_t seq)
{
    hw_store_txn *t;
    Helpwire__V1__AuditEvent *e = NULL;
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    assert_int_equal(hw_store_audit_get(t, seq, f->a, &e), HW_OK);
    hw_store_read_end(f->r);
    return e;
}

static void test_config_start_records_what_changed(void **state)
{
    fx *f = *state;
    const char *dflt = "listen=\nthreads=0\ndemo=false\ntls-key=\n";
    hw_audit_start_result r;
    assert_int_equal(
        hw_audit_start(f->s, 1000, "/d", "listen=a:1\nthreads=0\ndemo=true\ntls-key=\n", dflt, &r), HW_OK);
    assert_true(r.first_start);
    assert_false(r.restored);
    assert_int_equal(r.changed, 2);
    Helpwire__V1__AuditEvent *e = entry(f, r.seq);
    assert_string_equal(e->action, "config.start");
    assert_string_equal(e->actor, "system");
    assert_string_equal(e->target, "/d");
    assert_int_equal(e->n_details, 3);
    assert_string_equal(detail(e, "first_start"), "true");
    assert_string_equal(detail(e, "listen"), "a:1");
    assert_string_equal(detail(e, "demo"), "true");
    assert_null(detail(e, "threads"));

    /* A long value is cut in the entry, kept whole for the next diff. */
    char big[2000], settings[2200];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    snprintf(settings, sizeof settings, "listen=a:1\nthreads=4\ndemo=true\ntls-key=%s\n", big);
    assert_int_equal(hw_audit_start(f->s, 2000, "/d", settings, dflt, &r), HW_OK);
    assert_false(r.first_start);
    assert_int_equal(r.changed, 2);
    e = entry(f, r.seq);
    assert_int_equal(e->n_details, 2);
    assert_string_equal(detail(e, "threads"), "0->4");
    const char *k = detail(e, "tls-key");
    assert_non_null(k);
    assert_int_equal(strncmp(k, "->xxx", 5), 0);
    assert_int_equal(strlen(k), 2 + 256 + 3);

    /* The same again: an entry without details. A setting gone shows old->. */
    assert_int_equal(hw_audit_start(f->s, 3000, "/d", settings, dflt, &r), HW_OK);
    assert_int_equal(r.changed, 0);
    assert_int_equal(entry(f, r.seq)->n_details, 0);
    assert_int_equal(hw_audit_start(f->s, 4000, "/d", "listen=a:1\nthreads=4\ntls-key=\n", dflt, &r), HW_OK);
    e = entry(f, r.seq);
    assert_int_equal(e->n_details, 2);
    assert_string_equal(detail(e, "demo"), "true->");
    assert_int_equal(strlen(detail(e, "tls-key")), 256 + 3 + 2);
    assert_int_equal(hw_audit_start(f->s, 5000, "/d", NULL, dflt, &r), HW_EINVALID);
}

typedef struct mark_op {
    const char *text;
} mark_op;

static int mark_fn(hw_store_txn *w, void *ctx)
{
    mark_op *op = ctx;
    return hw_store_kv_put(w, HW_AUDIT_MARK_NS, HW_AUDIT_MARK_KEY, strlen(HW_AUDIT_MARK_KEY), op->text,
                           strlen(op->text));
}

static void test_a_marked_store_records_its_restore_once(void **state)
{
    fx *f = *state;
    size_t len = 0;
    char *text = hw_audit_backup_mark(f->a, 1796000000123, "token:tok-1", "/srv/live", "/b/1", &len);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    mark_op op = {text};
    assert_int_equal(hw_store_write(f->s, mark_fn, &op), HW_OK);
    hw_audit_start_result r;
    assert_int_equal(hw_audit_start(f->s, 5000, "/restored", "threads=0\n", NULL, &r), HW_OK);
    assert_true(r.restored);
    assert_true(r.first_start);
    Helpwire__V1__AuditEvent *e = entry(f, r.seq - 1);
    assert_string_equal(e->action, "store.restored");
    assert_string_equal(e->actor, "system");
    assert_string_equal(e->target, "/restored");
    assert_string_equal(detail(e, "backup_at_unix_ms"), "1796000000123");
    assert_string_equal(detail(e, "backup_at"), "2026-11-30T00:53:20.123Z");
    assert_string_equal(detail(e, "taken_by"), "token:tok-1");
    assert_string_equal(detail(e, "source"), "/srv/live");
    assert_string_equal(detail(e, "directory"), "/b/1");
    assert_string_equal(entry(f, r.seq)->action, "config.start");
    /* The mark went in the same write: the next start records no restore. */
    assert_int_equal(hw_audit_start(f->s, 6000, "/restored", "threads=0\n", NULL, &r), HW_OK);
    assert_false(r.restored);
    hw_store_txn *t;
    uint64_t n;
    assert_int_equal(hw_store_read_begin(f->r, &t), HW_OK);
    assert_int_equal(hw_store_audit_count(t, &n), HW_OK);
    hw_store_read_end(f->r);
    assert_int_equal(n, 3);
}

/* The mark in store s (the kv record), "" when there is none. */
static void mark_of(hw_store *s, hw_arena *a, char *out, size_t len)
{
    hw_store_reader *r;
    hw_store_txn *t;
    assert_int_equal(hw_store_reader_create(s, &r), HW_OK);
    assert_int_equal(hw_store_read_begin(r, &t), HW_OK);
    void *v = NULL;
    int rc = hw_store_kv_get(t, HW_AUDIT_MARK_NS, HW_AUDIT_MARK_KEY, strlen(HW_AUDIT_MARK_KEY), a, &v, NULL);
    assert_true(rc == HW_OK || rc == HW_ENOTFOUND);
    snprintf(out, len, "%s", rc == HW_OK ? (char *)v : "");
    hw_store_read_end(r);
    hw_store_reader_destroy(r);
}

static void test_a_marked_backup_carries_the_mark_the_live_store_does_not(void **state)
{
    fx *f = *state;
    fill(f);
    char bdir[PATH_MAX], why[256], got[512];
    hw_test_dir(bdir, sizeof bdir, "audit-backup");
    const char *text = "backup_at_unix_ms=7\ntaken_by=token:tok-1\n";
    hw_store_backup_mark m = {HW_AUDIT_MARK_NS, HW_AUDIT_MARK_KEY, strlen(HW_AUDIT_MARK_KEY), text,
                              strlen(text)};
    uint64_t size = 0;
    assert_int_equal(hw_store_backup_marked(f->s, bdir, &m, &size, why, sizeof why), HW_OK);
    mark_of(f->s, f->a, got, sizeof got);
    assert_string_equal(got, "");
    /* The size is the marked copy's; nothing but data.mdb is left. */
    char path[PATH_MAX + 16];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", bdir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal((uint64_t)st.st_size, size);
    assert_int_equal(st.st_mode & 07777, 0600);
    DIR *d = opendir(bdir);
    assert_non_null(d);
    int files = 0;
    for (struct dirent *de; (de = readdir(d));)
        files += de->d_name[0] != '.' || (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."));
    closedir(d);
    assert_int_equal(files, 1);
    /* A second one there is refused and leaves the first as it was. */
    assert_int_equal(hw_store_backup_marked(f->s, bdir, &m, NULL, why, sizeof why), HW_EINVALID);
    assert_string_equal(why, "it holds a data.mdb already");
    /* A bad mark is refused and leaves nothing. */
    char bad[PATH_MAX + 16];
    snprintf(bad, sizeof bad, "%s-bad", bdir);
    hw_store_backup_mark nm = {"", "k", 1, "v", 1};
    assert_int_equal(hw_store_backup_marked(f->s, bad, &nm, NULL, why, sizeof why), HW_EINVALID);
    assert_int_equal(stat(bad, &st), -1);

    hw_store *b = hw_test_open(bdir, 0, 0);
    assert_non_null(b);
    mark_of(b, f->a, got, sizeof got);
    assert_string_equal(got, text);
    hw_audit_start_result r;
    assert_int_equal(hw_audit_start(b, 9000, bdir, "threads=0\n", NULL, &r), HW_OK);
    assert_true(r.restored);
    assert_int_equal(r.seq, 8); /* after the copied 6 and store.restored */
    mark_of(b, f->a, got, sizeof got);
    assert_string_equal(got, "");
    hw_store_close(b);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_entries_are_numbered_and_read_back),
        T(test_bad_appends_are_refused_and_a_rolled_back_entry_leaves_nothing),
        T(test_times_never_go_back),
        T(test_listed_newest_first_and_paged),
        T(test_new_entries_between_pages_do_not_repeat),
        T(test_filters),
        T(test_a_page_reads_at_most_max_scan_entries),
        T(test_foreign_cursors_and_bad_limits_are_refused),
        T(test_prune_takes_the_oldest_and_numbers_go_on),
        T(test_entries_survive_a_reopen),
        T(test_config_start_records_what_changed),
        T(test_a_marked_store_records_its_restore_once),
        T(test_a_marked_backup_carries_the_mark_the_live_store_does_not),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
