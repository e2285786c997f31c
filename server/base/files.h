/*
 * files: small files read whole or written so that they survive a power
 * cut: certificates, CA roots and token files read at start, tokens
 * printed at first start, a bridge's state, a backup's copy. Shared by the
 * server and the clients.
 */
#ifndef HW_FILES_H
#define HW_FILES_H

#include <stddef.h>
#include <sys/types.h>

/* Reads path whole into *out (malloc'd, NUL-terminated; free it) and its
 * length into *len_out (may be NULL). A file over max_bytes is refused.
 * On failure nothing is returned, what was read is wiped (files may hold
 * secrets), and err says "cannot read PATH: why" or "PATH is larger than N
 * bytes". Returns 0 or -1. */
int hw_file_read(const char *path, size_t max_bytes, char **out, size_t *len_out, char *err, size_t errlen);

/* hw_file_read of a token or secret: at most 4096 bytes, trailing
 * whitespace (a final newline) dropped. An empty result is returned as
 * such; callers that need one refuse it themselves. */
int hw_file_read_secret(const char *path, char **out, char *err, size_t errlen);

/* Replaces path with the len bytes at data, all or nothing: a temporary
 * file beside it (path + ".tmp") is written and fsynced, renamed over
 * path, and the directory fsynced. A new file gets mode. Returns 0, or -1
 * with a message naming the file in err (path is then unchanged). */
int hw_file_replace(const char *path, const void *data, size_t len, mode_t mode, char *err, size_t errlen);

/* fsyncs the file at path and then its directory, so that a file written
 * by other means (a copy) keeps its content and its name after a power
 * cut. Returns 0 or -1 (errno). */
int hw_fsync_path(const char *path);

/* fsyncs the directory holding path, so that a file just created or
 * renamed there keeps its name after a power cut. Returns 0 or -1 (errno). */
int hw_fsync_parent(const char *path);

#endif
