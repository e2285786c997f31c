/*
 * text_util: test texts built by repetition, for the tests of code that
 * cuts or bounds texts. Header-only; tests only.
 */
#ifndef HW_TEXT_UTIL_H
#define HW_TEXT_UTIL_H

#include <stdlib.h>
#include <string.h>

/* unit repeated times times, NUL-terminated; malloc'd, the caller frees. */
static inline char *repeat(const char *unit, size_t times)
{
    size_t n = strlen(unit);
    char *s = malloc(n * times + 1);
    if (!s)
        abort();
    for (size_t i = 0; i < times; i++)
        memcpy(s + i * n, unit, n);
    s[n * times] = '\0';
    return s;
}

#endif
