/* testdir: fresh directories for unit tests (see testdir.h). */
#include "clients/lib/testdir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *br_testdir_make(const char *prefix)
{
    const char *base = getenv("TEST_TMPDIR");
    char tmpl[4096];
    int n = snprintf(tmpl, sizeof tmpl, "%s/%s-XXXXXX", base && *base ? base : "/tmp", prefix);
    if (n < 0 || (size_t)n >= sizeof tmpl || !mkdtemp(tmpl))
        return NULL;
    return strdup(tmpl);
}
