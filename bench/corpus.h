/*
 * corpus: the texts the load generator puts in requests, one per line of a
 * file (known-item queries such as Debian package summaries), used as Route
 * message text, Search query and ticket text. Without a file a small
 * built-in set of customer questions (English and Chinese, including the
 * demo FAQ's 如何重置密码, 工作时间, 退款政策) is used.
 *
 * A corpus is loaded once and then only read: any number of threads may
 * call hw_corpus_line() concurrently. The corpus owns its text.
 */
#ifndef HW_CORPUS_H
#define HW_CORPUS_H

#include <stddef.h>

/* Lines longer than this are skipped (Search queries allow 4096 bytes). */
#define HW_CORPUS_MAX_LINE_BYTES 4096

typedef struct hw_corpus hw_corpus;

/* Loads path (one text per line; empty lines and a trailing '\r' are
 * dropped, over-long lines skipped), or the built-in set when path is NULL.
 * Returns 0 with *out set (free with hw_corpus_destroy), -errno when the
 * file cannot be read, -ENOMEM, or -ENODATA when it holds no usable line. */
int hw_corpus_load(const char *path, hw_corpus **out);

/* Frees the corpus. NULL is a no-op. */
void hw_corpus_destroy(hw_corpus *c);

/* Number of lines (>= 1). */
size_t hw_corpus_size(const hw_corpus *c);

/* Line i % size, NUL-terminated, owned by the corpus; *len (if not NULL)
 * receives its length in bytes. Thread-safe. */
const char *hw_corpus_line(const hw_corpus *c, size_t i, size_t *len);

#endif
