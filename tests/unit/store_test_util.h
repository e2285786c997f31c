/*
 * store_test_util: helpers shared by the store tests: a fresh directory
 * under $TEST_TMPDIR per test, and opening a store in it with small
 * settings. Header-only; tests only.
 */
#ifndef HW_STORE_TEST_UTIL_H
#define HW_STORE_TEST_UTIL_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

#endif
