/*
 * build_info: what this binary is, for helpwire_build_info and logs: the
 * release version (a constant here), the commit it was built from (through
 * Bazel's workspace status: `bazel build --config=stamped`, which runs
 * bazel/workspace_status.sh; "unknown" otherwise, so that a plain build
 * needs no git and stays reproducible) and the compiler that built it.
 */
#ifndef HW_BUILD_INFO_H
#define HW_BUILD_INFO_H

#include <stdio.h>

/* The release version, "MAJOR.MINOR.PATCH". */
#define HW_VERSION "0.23.0"

/* Static strings; never NULL. The commit is 7 to 40 hex digits, with
 * "-dirty" when the work tree had changes, or "unknown". */
const char *hw_build_version(void);
const char *hw_build_commit(void);
const char *hw_build_compiler(void); /* "gcc 12.2.0", "clang 14.0.6" */

/* Appends helpwire_build_info{version,commit,compiler} 1 (with # HELP and
 * # TYPE) to out. */
void hw_build_info_render(FILE *out);

#endif
