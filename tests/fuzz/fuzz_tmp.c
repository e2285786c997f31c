/*
 * fuzz_tmp: fresh directories for the harnesses' stores (fuzz_tmp.h).
 */
#define _GNU_SOURCE
#include "tests/fuzz/fuzz_tmp.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_DIRS 4

static char g_dirs[MAX_DIRS][256];
static int g_n;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void remove_dirs(void)
{
    for (int i = 0; i < g_n; i++)
        nftw(g_dirs[i], rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

const char *fz_tmp_dir(const char *tag)
{
    const char *root = getenv("FUZZ_TMPDIR");
    if (!root || !*root)
        root = getenv("TEST_TMPDIR"); /* bazel test */
    if (!root || !*root)
        root = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    if (!root || !*root)
        root = "/tmp";
    if (g_n == MAX_DIRS)
        abort();
    char *d = g_dirs[g_n];
    snprintf(d, sizeof g_dirs[0], "%s/helpwire-fuzz-%s-XXXXXX", root, tag);
    if (!mkdtemp(d)) {
        perror("fuzz_tmp: mkdtemp");
        abort();
    }
    if (g_n++ == 0)
        atexit(remove_dirs);
    return d;
}
