/*
 * status: messages for the search modules' error codes (see status.h).
 */
#include "server/search/status.h"

#include <stdarg.h>
#include <stdio.h>

const char *hw_search_strerror(int code)
{
    switch (code) {
    case HW_OK:
        return "ok";
    case HW_ENOTFOUND:
        return "not found";
    case HW_ETOOBIG:
        return "too big";
    case HW_ENOMEM:
        return "out of memory";
    case HW_EINVALID:
        return "invalid argument";
    default:
        return "unknown error";
    }
}

int hw_status_set(hw_status *st, int code, const char *fmt, ...)
{
    if (st) {
        st->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(st->msg, sizeof st->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}
