/*
 * split: cutting a text into parts that fit a channel's limit (the rules
 * are in split.h).
 *
 * One forward scan per part: from the part's start, code point by code
 * point, while the units so far fit, remembering the latest break of each
 * kind (with the units before it) and the latest grapheme and code point
 * boundaries; the scan stops at the first code point that does not fit, so
 * every remembered position ends a part that fits. The choice among them is
 * then a few comparisons. A whitespace run is classified (how many line
 * breaks) when the scan meets its first character, by reading to its end,
 * which may lie beyond the window: a blank line straddling the window's end
 * is still a paragraph break. Each run is read twice at most, so a part
 * costs time linear in its window.
 *
 * Grapheme boundaries come from utf8proc's stateful UAX #29 rules, started
 * afresh at each part's start (always a boundary, so the state is right,
 * regional-indicator pairs included).
 */
#include "server/domain/split.h"

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <utf8proc.h>

#include "server/base/errors.h"

enum { K_PARAGRAPH, K_LINE, K_SENTENCE, K_SPACE, K_KINDS };

/* Decodes the code point at s (n > 0 bytes left): its length, or -1. */
static int decode(const char *s, size_t n, int32_t *cp)
{
    utf8proc_int32_t c;
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &c);
    if (k <= 0)
        return -1;
    *cp = c;
    return (int)k;
}

static size_t units_of(int32_t cp, int len_bytes, hw_split_unit unit)
{
    switch (unit) {
    case HW_SPLIT_BYTES:
        return (size_t)len_bytes;
    case HW_SPLIT_CODE_POINTS:
        return 1;
    case HW_SPLIT_UTF16_UNITS:
        return cp > 0xFFFF ? 2 : 1;
    }
    return 1;
}

/* Line breaks a run counts: 0, 1, or 2 for U+2029 (a paragraph by itself).
 * \r\n is counted once, at its \r (prev is the code point before). */
static int line_breaks(int32_t cp, int32_t prev)
{
    switch (cp) {
    case '\n':
        return prev == '\r' ? 0 : 1;
    case '\r':
    case '\v':
    case '\f':
    case 0x85:
    case 0x2028:
        return 1;
    case 0x2029:
        return 2;
    default:
        return 0;
    }
}

static bool is_space(int32_t cp)
{
    if (cp == ' ' || cp == '\t' || line_breaks(cp, 0) > 0)
        return true;
    if (cp < 0x80 || cp == 0xA0 || cp == 0x2007 || cp == 0x202F)
        return false;
    return utf8proc_category(cp) == UTF8PROC_CATEGORY_ZS;
}

static bool is_latin_sentence_end(int32_t cp)
{
    return cp == '.' || cp == '!' || cp == '?';
}

static bool is_cjk_sentence_end(int32_t cp)
{
    return cp == 0x3002 || cp == 0xFF01 || cp == 0xFF1F;
}

static bool is_closer(int32_t cp)
{
    switch (cp) {
    case '"':
    case '\'':
    case ')':
    case ']':
    case '}':
    case 0x201D: /* ” */
    case 0x2019: /* ’ */
    case 0x300D: /* 」 */
    case 0x300F: /* 』 */
    case 0xFF09: /* ） */
        return true;
    default:
        return false;
    }
}

/* The start of the code point that ends at end (> 0) in text. */
static size_t back_one(const char *text, size_t end)
{
    size_t i = end - 1;
    while (i > 0 && ((unsigned char)text[i] & 0xC0) == 0x80)
        i--;
    return i;
}

/* The whitespace run starting at p: how many line breaks it holds. */
static int run_breaks(const char *text, size_t len, size_t p)
{
    int breaks = 0;
    int32_t prev = 0, cp;
    while (p < len) {
        int n = decode(text + p, len - p, &cp);
        if (n < 0 || !is_space(cp))
            break;
        breaks += line_breaks(cp, prev);
        prev = cp;
        p += (size_t)n;
    }
    return breaks;
}

/* Past the whitespace run at p: the next part's start. A run never ends
 * inside a grapheme cluster: a space that a combining mark (or the like)
 * clings to stays with what follows. */
static size_t skip_run(const char *text, size_t len, size_t p)
{
    int32_t prev = 0, cp;
    size_t prev_at = p;
    while (p < len) {
        int n = decode(text + p, len - p, &cp);
        if (n < 0)
            return p;
        if (!is_space(cp)) {
            if (prev && !utf8proc_grapheme_break(prev, cp))
                return prev_at;
            return p;
        }
        prev = cp;
        prev_at = p;
        p += (size_t)n;
    }
    return p;
}

static bool limit_ok(const hw_split_limit *l)
{
    if (!l ||
        (l->unit != HW_SPLIT_BYTES && l->unit != HW_SPLIT_CODE_POINTS && l->unit != HW_SPLIT_UTF16_UNITS))
        return false;
    return l->max_units == 0 || l->max_units >= HW_SPLIT_MIN_UNITS;
}

/* Where the part starting at start ends (a cut, or len when the rest
 * fits). *fits is set when the rest fits. */
static int find_cut(const char *text, size_t len, const hw_split_limit *l, size_t start, size_t *cut_out,
                    bool *fits)
{
    size_t max = l->max_units, half = (l->max_units + 1) / 2;
    size_t units = 0, p = start;
    size_t brk[K_KINDS] = {0}, brk_units[K_KINDS] = {0};
    size_t last_grapheme = 0, last_code_point = 0;
    int32_t prev = 0;
    utf8proc_int32_t gstate = 0;
    int sentence = 0; /* 1: after . ! ? (and closers), 2: after 。！？ (and closers) */

    while (p < len) {
        int32_t cp;
        int n = decode(text + p, len - p, &cp);
        if (n < 0)
            return HW_EINVALID;
        bool boundary = p == start || utf8proc_grapheme_break_stateful(prev, cp, &gstate);
        /* Position p ends a part of `units` units, which fit. */
        if (p > start) {
            last_code_point = p;
            if (boundary) {
                last_grapheme = p;
                if (is_space(cp) && !is_space(prev)) {
                    int b = run_breaks(text, len, p);
                    int k = b >= 2 ? K_PARAGRAPH : b == 1 ? K_LINE : K_SPACE;
                    brk[k] = p;
                    brk_units[k] = units;
                }
                if ((sentence == 1 && is_space(cp)) || (sentence == 2 && !is_closer(cp))) {
                    brk[K_SENTENCE] = p;
                    brk_units[K_SENTENCE] = units;
                }
            }
        }
        size_t u = units_of(cp, n, l->unit);
        if (max && units + u > max)
            break;
        units += u;
        if (is_cjk_sentence_end(cp))
            sentence = 2;
        else if (is_latin_sentence_end(cp))
            sentence = sentence ? sentence : 1;
        else if (!(sentence && is_closer(cp)))
            sentence = 0;
        prev = cp;
        p += (size_t)n;
    }
    if (p >= len) {
        *fits = true;
        *cut_out = len;
        return HW_OK;
    }
    *fits = false;

    size_t cut = 0;
    for (int k = 0; k < K_KINDS && !cut; k++) /* the most preferred kind far enough */
        if (brk[k] && brk_units[k] >= half)
            cut = brk[k];
    if (!cut) /* none: the latest break of any kind */
        for (int k = 0; k < K_KINDS; k++)
            if (brk[k] > cut)
                cut = brk[k];
    if (!cut)
        cut = last_grapheme ? last_grapheme : last_code_point;
    /* max >= HW_SPLIT_MIN_UNITS: the first code point fits, so there is a
     * code point boundary after start. */
    assert(cut > start);
    *cut_out = cut;
    return HW_OK;
}

/* Whether text[start, len) is valid UTF-8 (no surrogates). */
static bool valid_utf8(const char *text, size_t start, size_t len)
{
    for (size_t i = start; i < len;) {
        int32_t cp;
        int n = decode(text + i, len - i, &cp);
        if (n < 0)
            return false;
        i += (size_t)n;
    }
    return true;
}

int hw_split_next(const char *text, size_t len, const hw_split_limit *limit, size_t *pos, hw_split_part *part)
{
    if (!limit_ok(limit) || !pos || !part || (!text && len))
        return HW_EINVALID;
    size_t start = *pos;
    /* The rest fits (a text never counts more units than bytes): one part,
     * without looking for a cut. */
    if (start < len && (limit->max_units == 0 || len - start <= limit->max_units)) {
        if (!valid_utf8(text, start, len))
            return HW_EINVALID;
        part->offset = start;
        part->len_bytes = len - start;
        part->units = hw_split_units(text + start, len - start, limit->unit);
        *pos = len;
        return 1;
    }
    while (start < len) {
        size_t cut;
        bool fits;
        int rc = find_cut(text, len, limit, start, &cut, &fits);
        if (rc != HW_OK)
            return rc;
        size_t end = cut, next = len;
        if (!fits) {
            /* Drop the whitespace run touching the cut, on both sides. */
            while (end > start) {
                size_t b = back_one(text, end);
                int32_t cp;
                if (decode(text + b, end - b, &cp) < 0 || !is_space(cp))
                    break;
                end = b;
            }
            next = skip_run(text, len, cut);
        }
        if (end > start) {
            part->offset = start;
            part->len_bytes = end - start;
            part->units = hw_split_units(text + start, end - start, limit->unit);
            *pos = next;
            return 1;
        }
        start = next; /* the window was whitespace only: no empty part */
    }
    *pos = start;
    return 0;
}

int hw_split_count(const char *text, size_t len, const hw_split_limit *limit, size_t *n_parts)
{
    *n_parts = 0;
    if (!limit_ok(limit) || (!text && len))
        return HW_EINVALID;
    if (!valid_utf8(text, 0, len))
        return HW_EINVALID;
    if (len > 0 && (limit->max_units == 0 || len <= limit->max_units)) {
        *n_parts = 1; /* fits whole (units never exceed bytes) */
        return HW_OK;
    }
    size_t pos = 0, n = 0;
    hw_split_part p;
    int rc;
    while ((rc = hw_split_next(text, len, limit, &pos, &p)) == 1)
        n++;
    if (rc < 0)
        return rc;
    *n_parts = n;
    return HW_OK;
}

size_t hw_split_units(const char *text, size_t len, hw_split_unit unit)
{
    size_t units = 0;
    for (size_t i = 0; i < len;) {
        int32_t cp;
        int n = decode(text + i, len - i, &cp);
        if (n < 0) {
            units++;
            i++;
            continue;
        }
        units += units_of(cp, n, unit);
        i += (size_t)n;
    }
    return units;
}
