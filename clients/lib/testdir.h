/*
 * testdir: a fresh directory for a unit test of the bridges' stores (the
 * spool, the sent record, the web chat's history), under Bazel's
 * TEST_TMPDIR (or /tmp outside Bazel), so that each test starts from an
 * empty state directory and none sees another's files. Test-only.
 */
#ifndef BR_TESTDIR_H
#define BR_TESTDIR_H

/* Makes <TEST_TMPDIR>/<prefix>-XXXXXX (mkdtemp) and returns its path,
 * malloc'd (the caller frees it), or NULL when it cannot be made. The
 * directory is left for Bazel to clean up. */
char *br_testdir_make(const char *prefix);

#endif
