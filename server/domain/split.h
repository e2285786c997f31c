/*
 * split: cuts a UTF-8 text into ordered parts that each fit a channel's
 * message limit, measured in the channel's own unit (Telegram counts
 * UTF-16 code units, WhatsApp Unicode code points). Pure: no state, no
 * allocation, any thread.
 *
 * The rules, in order:
 *   1. A text that fits (its units <= max_units, or max_units 0 = no
 *      limit) is one part: the whole text, byte for byte, whatever it
 *      holds. An empty text has no part.
 *   2. Otherwise each part is the longest start of what is left that fits,
 *      cut at the best break inside that window, by kind, most preferred
 *      first:
 *        paragraph  a run of whitespace holding two or more line breaks
 *                   (a blank line; U+2029 counts as two);
 *        line       a run of whitespace holding one line break (\n, \r\n,
 *                   \r, \v, \f, U+0085, U+2028);
 *        sentence   after . ! ? followed by whitespace, or after 。！？
 *                   (anything may follow), each with the closing quotes
 *                   and brackets right after it (" ' ) ] } ” ’ 」 』 ）);
 *        space      a run of whitespace (space, tab, line breaks, and the
 *                   Unicode space separators except the no-break ones:
 *                   U+00A0, U+2007, U+202F);
 *      the latest break of a kind is taken only when the part before it
 *      holds at least half of max_units (so a cut does not leave a tiny
 *      part); when no kind has one that far, the latest break of any kind
 *      is taken; when the window has no break at all, the text is cut at
 *      the window's last grapheme cluster boundary (UAX #29, utf8proc), or,
 *      for a single cluster longer than the limit, at its last code point
 *      boundary. A cut is never inside a UTF-8 sequence, hence never inside
 *      a UTF-16 surrogate pair, and never inside a grapheme cluster unless
 *      one cluster alone exceeds the limit.
 *   3. Whitespace at a cut: the whole run of whitespace touching a cut is
 *      dropped (the part before it ends at the run's first character, the
 *      next part starts after its last one). Nothing else is dropped and
 *      nothing is added: the text equals its parts in order with only
 *      whitespace between them (and before the first, when the text opens
 *      with a run of whitespace longer than the limit). The last part keeps
 *      the text's own trailing whitespace. A part is never empty, so a text
 *      of whitespace only that exceeds the limit has no part.
 *
 * Whitespace is decided per code point; a run never ends inside a grapheme
 * cluster (a combining mark on a space stays with the next part).
 *
 * Not done here: knowing which channel has which limit (the outbox's
 * table), numbering parts ("1/2"): nothing is added to what the agent
 * wrote.
 */
#ifndef HW_SPLIT_H
#define HW_SPLIT_H

#include <stddef.h>

/* What a limit counts. */
typedef enum hw_split_unit {
    HW_SPLIT_BYTES = 0,       /* UTF-8 bytes */
    HW_SPLIT_CODE_POINTS = 1, /* Unicode code points (WhatsApp's "characters") */
    HW_SPLIT_UTF16_UNITS = 2, /* UTF-16 code units: a code point above U+FFFF counts 2 (Telegram) */
} hw_split_unit;

/* The smallest max_units accepted (other than 0): one code point always
 * fits, whatever the unit. */
#define HW_SPLIT_MIN_UNITS 4u

/* A channel's limit: at most max_units of unit per message; 0 = none. */
typedef struct hw_split_limit {
    hw_split_unit unit;
    size_t max_units;
} hw_split_limit;

/* One part: text[offset, offset + len_bytes), which counts units units. */
typedef struct hw_split_part {
    size_t offset;
    size_t len_bytes;
    size_t units;
} hw_split_part;

/* Finds the part that starts at or after byte *pos of text (len bytes,
 * valid UTF-8, need not be NUL-terminated) under limit, writes it to *part
 * and moves *pos past it (and past the whitespace dropped at its cut).
 * Start with *pos = 0 and call until it returns 0:
 *
 *     size_t pos = 0;
 *     hw_split_part p;
 *     while ((rc = hw_split_next(text, len, &limit, &pos, &p)) == 1)
 *         send(text + p.offset, p.len_bytes);
 *
 * Cost: linear in the part's window (at most max_units code points past
 * *pos, plus the whitespace run at the cut). Pure; any thread.
 * @return 1 (a part); 0 (no part left); HW_EINVALID (invalid UTF-8 in
 *   what this call reads, an unknown unit, or max_units between 1 and
 *   HW_SPLIT_MIN_UNITS - 1; *pos is left alone). hw_split_count checks the
 *   whole text first. */
int hw_split_next(const char *text, size_t len, const hw_split_limit *limit, size_t *pos,
                  hw_split_part *part);

/* The number of parts text splits into under limit (*n_parts), checking
 * the whole text first. Pure; any thread.
 * @return HW_OK; HW_EINVALID (as hw_split_next, *n_parts then 0). */
int hw_split_count(const char *text, size_t len, const hw_split_limit *limit, size_t *n_parts);

/* The units text (len bytes, valid UTF-8) counts in unit; invalid bytes
 * count as one unit each. Pure; any thread. */
size_t hw_split_units(const char *text, size_t len, hw_split_unit unit);

#endif
