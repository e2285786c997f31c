/*
 * durable: small files that must survive a power cut once written (tokens
 * printed at first start, bridge state): written, fsynced, and their
 * directory entry fsynced too.
 */
#ifndef HW_DURABLE_H
#define HW_DURABLE_H

#include <stddef.h>
#include <sys/types.h>

/* Replaces path with the len bytes at data, all or nothing: a temporary
 * file beside it (path + ".tmp") is written and fsynced, renamed over
 * path, and the directory fsynced. A new file gets mode. Returns 0, or -1
 * with a message naming the file in err (path is then unchanged). */
int hw_file_replace(const char *path, const void *data, size_t len, mode_t mode, char *err, size_t errlen);

/* fsyncs the directory holding path, so that a file just created or
 * renamed there keeps its name after a power cut. Returns 0 or -1 (errno). */
int hw_fsync_parent(const char *path);

#endif
