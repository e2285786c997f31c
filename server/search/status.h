/*
 * status: error codes and messages shared by the search modules
 * (tokenize, index). Errors are values: every fallible hw_tokenize_* and
 * hw_index_* function returns 0 or one of the negative HW_E* codes below and,
 * when the caller passes an hw_status, fills it with a human-readable
 * message naming what was wrong (e.g. "query: invalid UTF-8 at byte 3").
 *
 * The codes are helpwire's shared HW_E* codes (server/store/errors.h).
 */
#ifndef HW_SEARCH_STATUS_H
#define HW_SEARCH_STATUS_H

#include <stddef.h>

/* The codes are helpwire's shared HW_E* codes. */
#include "server/base/errors.h"

/* A status with its message. Functions taking an `hw_status *st` accept
 * NULL (the caller only wants the code). On success st->code is 0 and
 * st->msg is "". The message is always NUL-terminated. */
typedef struct hw_status {
    int code;
    char msg[160];
} hw_status;

/* Static description of a code ("invalid argument", ...); never NULL.
 * Thread-safe. */
const char *hw_search_strerror(int code);

/* Sets st (if not NULL) to code and a printf-formatted message; returns
 * code, so that `return hw_status_set(st, HW_EINVALID, "...")` reads well.
 * Thread-safe (st is owned by the caller). */
int hw_status_set(hw_status *st, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
