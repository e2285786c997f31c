/* state: atomic replace of small files (see state.h). */
#include "clients/lib/state.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/base/files.h"

int br_state_read_u64(const char *path, uint64_t *value, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT)
            return 1;
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    char buf[64];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (n == 0 || errno != 0 || end == buf || (*end != '\0' && *end != '\n')) {
        snprintf(err, errlen, "%s does not hold a number", path);
        return -1;
    }
    *value = v;
    return 0;
}

int br_state_write_u64(const char *path, uint64_t value, char *err, size_t errlen)
{
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%" PRIu64 "\n", value);
    return hw_file_replace(path, buf, (size_t)len, 0600, err, errlen);
}
