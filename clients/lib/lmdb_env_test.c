/*
 * lmdb_env_test: how the bridges' stores open their LMDB environment
 * (lmdb_env.h): the state directory and the environment are created with
 * their tables, what was committed is there after a reopen, a single-file
 * environment is one file (and its lock) in the state directory, and a
 * state directory that cannot be used, or a path too long, is an error
 * naming the path; numbers in keys sort in numeric order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "clients/lib/lmdb_env.h"
#include "clients/lib/testdir.h"

static const char *const TABLES[] = {"a", "b"};

static int open_env(const char *dir, const char *name, bool own_dir, MDB_env **env, MDB_dbi dbis[2],
                    char *err, size_t errlen)
{
    char path[4096];
    br_lmdb_spec spec = {dir, name, own_dir, (size_t)16 << 20, TABLES, 2};
    return br_lmdb_open(env, dbis, &spec, path, sizeof path, err, errlen);
}

static void test_creates_the_state_dir_and_keeps_what_was_committed(void **state)
{
    (void)state;
    char *base = br_testdir_make("lmdb");
    assert_non_null(base);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/state", base); /* missing: created */
    MDB_env *env = NULL;
    MDB_dbi dbis[2];
    char err[600];
    assert_int_equal(open_env(dir, "t.db", true, &env, dbis, err, sizeof err), 0);
    MDB_txn *txn = NULL;
    assert_int_equal(br_lmdb_begin(env, 0, &txn), 0);
    assert_int_equal(br_lmdb_put_u64(txn, dbis[1], "next", 42), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    char data[4200];
    struct stat st;
    snprintf(data, sizeof data, "%s/t.db/data.mdb", dir);
    assert_int_equal(stat(data, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    assert_int_equal(open_env(dir, "t.db", true, &env, dbis, err, sizeof err), 0);
    assert_int_equal(br_lmdb_begin(env, MDB_RDONLY, &txn), 0);
    assert_int_equal(br_lmdb_get_u64(txn, dbis[1], "next"), 42);
    assert_int_equal(br_lmdb_get_u64(txn, dbis[1], "missing"), 0);
    assert_int_equal(br_lmdb_get_u64(txn, dbis[0], "next"), 0); /* another table */
    mdb_txn_abort(txn);
    mdb_env_close(env);
    free(base);
}

static void test_a_single_file_environment_is_one_file_and_its_lock(void **state)
{
    (void)state;
    char *dir = br_testdir_make("lmdb");
    assert_non_null(dir);
    MDB_env *env = NULL;
    MDB_dbi dbis[2];
    char err[600], path[4200];
    assert_int_equal(open_env(dir, "x.sent.mdb", false, &env, dbis, err, sizeof err), 0);
    mdb_env_close(env);
    struct stat st;
    snprintf(path, sizeof path, "%s/x.sent.mdb", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    snprintf(path, sizeof path, "%s/x.sent.mdb-lock", dir);
    assert_int_equal(stat(path, &st), 0);
    free(dir);
}

static void test_an_unusable_state_dir_or_a_long_path_is_an_error_naming_it(void **state)
{
    (void)state;
    char *dir = br_testdir_make("lmdb");
    assert_non_null(dir);
    char file[4096];
    snprintf(file, sizeof file, "%s/plain-file", dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    MDB_env *env = (MDB_env *)1;
    MDB_dbi dbis[2];
    char err[600];
    assert_int_equal(open_env(file, "t.db", true, &env, dbis, err, sizeof err), -1);
    assert_null(env);
    assert_non_null(strstr(err, file));
    assert_non_null(strstr(err, "Not a directory"));

    char name[5000];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    assert_int_equal(open_env(dir, name, true, &env, dbis, err, sizeof err), -1);
    assert_null(env);
    assert_non_null(strstr(err, "path too long"));
    free(dir);
}

static void test_big_endian_numbers_sort_in_numeric_order(void **state)
{
    (void)state;
    unsigned char a[8], b[8];
    br_lmdb_put_be64(a, 255);
    br_lmdb_put_be64(b, 256);
    assert_true(memcmp(a, b, 8) < 0);
    assert_int_equal(br_lmdb_get_be64(b), 256);
    br_lmdb_put_be64(a, UINT64_MAX - 1);
    assert_true(br_lmdb_get_be64(a) == UINT64_MAX - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_creates_the_state_dir_and_keeps_what_was_committed),
        cmocka_unit_test(test_a_single_file_environment_is_one_file_and_its_lock),
        cmocka_unit_test(test_an_unusable_state_dir_or_a_long_path_is_an_error_naming_it),
        cmocka_unit_test(test_big_endian_numbers_sort_in_numeric_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
