/*
 * store_concurrent_test: many threads write through the queue (async and
 * blocking) while readers read and the map grows under them; every
 * acknowledged write is present after close and reopen. Tagged
 * "concurrent": also runs under ThreadSanitizer.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/store/store.h"
#include "tests/unit/store_test_util.h"

enum { WRITERS = 16, PER_WRITER = 120, READERS = 3, VALUE_BYTES = 3000 };

typedef struct write_req {
    int writer, n;
    atomic_int acked; /* 1 = acknowledged OK, -1 = failed */
    atomic_int runs;  /* how many times the fn ran (re-runs after growth) */
} write_req;

static write_req reqs[WRITERS][PER_WRITER];

static void key_of(int writer, int n, char *buf, size_t len)
{
    snprintf(buf, len, "w%02d-%04d", writer, n);
}

static int write_fn(hw_store_txn *w, void *ctx)
{
    write_req *r = ctx;
    atomic_fetch_add(&r->runs, 1);
    char key[32];
    key_of(r->writer, r->n, key, sizeof(key));
    char *val = hw_arena_alloc(hw_store_txn_arena(w), VALUE_BYTES);
    if (!val)
        return HW_ENOMEM;
    memset(val, 'a' + (r->writer + r->n) % 26, VALUE_BYTES);
    uint64_t seq;
    int rc = hw_store_next_seq(w, "writes", 1, &seq);
    if (rc != HW_OK)
        return rc;
    return hw_store_kv_put(w, "c", key, strlen(key), val, VALUE_BYTES);
}

static void write_done(void *ctx, int status)
{
    write_req *r = ctx;
    atomic_store(&r->acked, status == HW_OK ? 1 : -1);
}

typedef struct shared {
    hw_store *s;
    atomic_int writers_left;
    atomic_long reads;
    atomic_int read_errors;
} shared;

typedef struct writer_arg {
    shared *sh;
    int id;
} writer_arg;

static void *writer_main(void *p)
{
    writer_arg *a = p;
    for (int n = 0; n < PER_WRITER; n++) {
        write_req *r = &reqs[a->id][n];
        r->writer = a->id;
        r->n = n;
        if (n % 2 == 0) {
            int rc = hw_store_submit(a->sh->s, write_fn, write_done, r);
            if (rc != HW_OK)
                atomic_store(&r->acked, -1);
        } else {
            int rc = hw_store_write(a->sh->s, write_fn, r);
            atomic_store(&r->acked, rc == HW_OK ? 1 : -1);
        }
    }
    atomic_fetch_sub(&a->sh->writers_left, 1);
    return NULL;
}

static void *reader_main(void *p)
{
    shared *sh = p;
    hw_store_reader *r = NULL;
    hw_arena *a = hw_arena_create(0);
    if (hw_store_reader_create(sh->s, &r) != HW_OK) {
        atomic_fetch_add(&sh->read_errors, 1);
        hw_arena_destroy(a);
        return NULL;
    }
    unsigned i = 0;
    while (atomic_load(&sh->writers_left) > 0) {
        hw_store_txn *t;
        if (hw_store_read_begin(r, &t) != HW_OK) {
            atomic_fetch_add(&sh->read_errors, 1);
            break;
        }
        char key[32];
        int w = (int)(i % WRITERS), n = (int)((i / WRITERS) % PER_WRITER);
        key_of(w, n, key, sizeof(key));
        void *v;
        size_t len;
        int rc = hw_store_kv_get(t, "c", key, strlen(key), a, &v, &len);
        if (rc == HW_OK && (len != VALUE_BYTES || ((char *)v)[len - 1] != 'a' + (w + n) % 26))
            atomic_fetch_add(&sh->read_errors, 1);
        else if (rc != HW_OK && rc != HW_ENOTFOUND)
            atomic_fetch_add(&sh->read_errors, 1);
        hw_store_read_end(r);
        hw_arena_reset(a);
        atomic_fetch_add(&sh->reads, 1);
        i += 7;
    }
    hw_store_reader_destroy(r);
    hw_arena_destroy(a);
    return NULL;
}

static void test_concurrent_writers_lose_no_acknowledged_write(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    hw_test_dir(dir, sizeof(dir), "conc");
    shared sh = {.s = hw_test_open(dir, 512 * 1024, 0)};
    assert_non_null(sh.s);
    atomic_store(&sh.writers_left, WRITERS);

    pthread_t wt[WRITERS], rt[READERS];
    writer_arg wa[WRITERS];
    for (int i = 0; i < READERS; i++)
        assert_int_equal(pthread_create(&rt[i], NULL, reader_main, &sh), 0);
    for (int i = 0; i < WRITERS; i++) {
        wa[i] = (writer_arg){.sh = &sh, .id = i};
        assert_int_equal(pthread_create(&wt[i], NULL, writer_main, &wa[i]), 0);
    }
    for (int i = 0; i < WRITERS; i++)
        pthread_join(wt[i], NULL);
    for (int i = 0; i < READERS; i++)
        pthread_join(rt[i], NULL);

    hw_store_stats st;
    hw_store_get_stats(sh.s, &st);
    hw_store_close(sh.s); /* completes the async ones still queued */
    print_message("commits=%llu requests=%llu largest_group=%llu map_grows=%llu reads=%ld\n",
                  (unsigned long long)st.commits, (unsigned long long)st.requests,
                  (unsigned long long)st.largest_group, (unsigned long long)st.map_grows,
                  atomic_load(&sh.reads));
    assert_int_equal(atomic_load(&sh.read_errors), 0);
    assert_true(st.map_grows > 0);

    hw_store *s = hw_test_open(dir, 0, 0);
    assert_non_null(s);
    hw_store_reader *r;
    hw_store_txn *t;
    hw_arena *a = hw_arena_create(0);
    assert_int_equal(hw_store_reader_create(s, &r), HW_OK);
    assert_int_equal(hw_store_read_begin(r, &t), HW_OK);
    int acked = 0;
    for (int w = 0; w < WRITERS; w++) {
        for (int n = 0; n < PER_WRITER; n++) {
            assert_int_equal(atomic_load(&reqs[w][n].acked), 1);
            acked++;
            char key[32];
            key_of(w, n, key, sizeof(key));
            void *v;
            size_t len;
            assert_int_equal(hw_store_kv_get(t, "c", key, strlen(key), a, &v, &len), HW_OK);
            assert_int_equal(len, VALUE_BYTES);
            hw_arena_reset(a);
        }
    }
    uint64_t seq;
    assert_int_equal(hw_store_peek_seq(t, "writes", &seq), HW_OK);
    assert_int_equal(seq, (uint64_t)acked); /* one number per committed write */
    hw_store_read_end(r);
    hw_store_reader_destroy(r);
    hw_arena_destroy(a);
    hw_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_writers_lose_no_acknowledged_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
