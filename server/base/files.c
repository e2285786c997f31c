/* files: see files.h. */
#include "server/base/files.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SECRET_MAX_BYTES 4096

int hw_file_read(const char *path, size_t max_bytes, char **out, size_t *len_out, char *err, size_t errlen)
{
    int rc = -1;
    char *buf = NULL;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    if (!(buf = malloc(max_bytes + 2))) {
        snprintf(err, errlen, "cannot read %s: out of memory", path);
        goto out;
    }
    size_t len = fread(buf, 1, max_bytes + 1, f);
    if (ferror(f)) {
        snprintf(err, errlen, "cannot read %s: read error", path);
        goto out;
    }
    if (len > max_bytes) {
        snprintf(err, errlen, "%s is larger than %zu bytes", path, max_bytes);
        goto out;
    }
    buf[len] = '\0';
    *out = buf;
    if (len_out)
        *len_out = len;
    buf = NULL;
    rc = 0;
out:
    if (buf) {
        explicit_bzero(buf, max_bytes + 2);
        free(buf);
    }
    if (f)
        fclose(f);
    return rc;
}

int hw_file_read_secret(const char *path, char **out, char *err, size_t errlen)
{
    size_t len = 0;
    if (hw_file_read(path, SECRET_MAX_BYTES, out, &len, err, errlen) != 0)
        return -1;
    char *s = *out;
    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' ' || s[len - 1] == '\t'))
        s[--len] = '\0';
    return 0;
}

/* fsyncs what path names (opened with flags); errno kept from a failure. */
static int fsync_named(const char *path, int flags)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | flags);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int hw_fsync_parent(const char *path)
{
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return fsync_named(dirname(dir), O_DIRECTORY);
}

int hw_fsync_path(const char *path)
{
    return fsync_named(path, 0) == 0 ? hw_fsync_parent(path) : -1;
}

int hw_file_replace(const char *path, const void *data, size_t len, mode_t mode, char *err, size_t errlen)
{
    char tmp[4096];
    int fd = -1;
    const char *what = tmp;
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        snprintf(err, errlen, "%s: path too long", path);
        return -1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        goto fail;
    for (size_t done = 0; done < len;) {
        ssize_t n = write(fd, (const char *)data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto fail;
        done += (size_t)n;
    }
    if (fsync(fd) != 0)
        goto fail;
    int crc = close(fd);
    fd = -1;
    if (crc != 0)
        goto fail;
    what = path;
    if (rename(tmp, path) != 0 || hw_fsync_parent(path) != 0)
        goto fail;
    return 0;
fail:
    snprintf(err, errlen, "cannot write %s: %s", what, strerror(errno ? errno : EIO));
    if (fd >= 0)
        close(fd);
    if (what == tmp)
        unlink(tmp);
    return -1;
}
