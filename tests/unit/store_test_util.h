/*
 * store_test_util: helpers shared by the store tests: a fresh directory
 * under $TEST_TMPDIR per test, opening a store in it with small settings,
 * and the fixture most of them use (hw_test_store: directory, store,
 * reader, arena; checked for consistency at teardown). Header-only; tests
 * only.
 */
#ifndef HW_STORE_TEST_UTIL_H
#define HW_STORE_TEST_UTIL_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/base/arena.h"
#include "server/store/records.h"
#include "server/store/store.h"

/* Creates a unique empty directory; returns it in buf. Aborts on failure
 * (a test setup error, not a behaviour under test). */
static inline const char *hw_test_dir(char *buf, size_t len, const char *tag)
{
    const char *root = getenv("TEST_TMPDIR");
    if (!root || !*root)
        root = "/tmp";
    snprintf(buf, len, "%s/%s-XXXXXX", root, tag);
    if (!mkdtemp(buf)) {
        perror("mkdtemp");
        abort();
    }
    return buf;
}

static inline hw_store *hw_test_open(const char *dir, size_t map_bytes, unsigned max_group)
{
    hw_store_options o = {.data_dir = dir, .initial_map_size_bytes = map_bytes, .max_group_size = max_group};
    hw_store *s = NULL;
    char err[512];
    int rc = hw_store_open(&s, &o, err, sizeof(err));
    if (rc != HW_OK) {
        fprintf(stderr, "hw_store_open(%s): %s: %s\n", dir, hw_errname(rc), err);
        return NULL;
    }
    return s;
}

/* Checks that the store's indexes agree with its records (hw_store_check,
 * whatever the test did), then frees the reader and closes the store.
 * Returns 0 when consistent, -1 (with the reason on stderr) otherwise: a
 * cmocka teardown's result. */
static inline int hw_test_check_and_close(hw_store *s, hw_store_reader *r)
{
    hw_store_txn *t;
    char err[256];
    int rc = hw_store_read_begin(r, &t);
    if (rc == HW_OK) {
        rc = hw_store_check(t, err, sizeof(err));
        hw_store_read_end(r);
        if (rc != HW_OK)
            fprintf(stderr, "hw_store_check: %s: %s\n", hw_errname(rc), err);
    }
    hw_store_reader_destroy(r);
    hw_store_close(s);
    return rc == HW_OK ? 0 : -1;
}

/* The store a test works on: a fresh directory, the store opened in it
 * with default settings, one reader, and an arena for what reads return.
 * A test's own fixture either is one (typedef hw_test_store fx) or holds
 * one as its member st. */
typedef struct hw_test_store {
    char dir[PATH_MAX];
    hw_store *s;
    hw_store_reader *r;
    hw_arena *a;
} hw_test_store;

/* Opens the store and its reader in t->dir (again, after a test closed
 * them). Returns 0, or -1 (the reason on stderr). */
static inline int hw_test_store_reopen(hw_test_store *t)
{
    t->s = hw_test_open(t->dir, 0, 0);
    return t->s && hw_store_reader_create(t->s, &t->r) == HW_OK ? 0 : -1;
}

/* Fills t: a fresh directory named after tag, the store, its reader and
 * an arena. Returns 0, or -1 (a cmocka setup's result). */
static inline int hw_test_store_open(hw_test_store *t, const char *tag)
{
    hw_test_dir(t->dir, sizeof t->dir, tag);
    t->a = hw_arena_create(0);
    return t->a ? hw_test_store_reopen(t) : -1;
}

/* hw_test_check_and_close on t's store and reader, then frees the arena.
 * Returns 0 when the store was consistent, -1 otherwise. */
static inline int hw_test_store_close(hw_test_store *t)
{
    int rc = hw_test_check_and_close(t->s, t->r);
    hw_arena_destroy(t->a);
    return rc;
}

/* cmocka setup and teardown for a test whose fixture is an hw_test_store
 * (allocated here, in *state). */
static inline int hw_test_store_setup(void **state, const char *tag)
{
    hw_test_store *t = calloc(1, sizeof *t);
    *state = t;
    return t ? hw_test_store_open(t, tag) : -1;
}

static inline int hw_test_store_teardown(void **state)
{
    hw_test_store *t = *state;
    int rc = hw_test_store_close(t);
    free(t);
    return rc;
}

#endif
