/*
 * fuzz_tmp: the directories fuzz harnesses keep their stores in.
 */
#ifndef HW_FUZZ_TMP_H
#define HW_FUZZ_TMP_H

/* A fresh directory helpwire-fuzz-<tag>-XXXXXX under $FUZZ_TMPDIR (set by
 * tests/fuzz.sh, which removes it after the run, crash or not), else
 * $TEST_TMPDIR (bazel test), else /dev/shm (no disk behind a store's fsyncs), else $TMPDIR or /tmp. It is
 * removed at exit. Aborts when it cannot be made (a setup error). The
 * string lives until exit; at most 4 per process. */
const char *fz_tmp_dir(const char *tag);

#endif
