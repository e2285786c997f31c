/*
 * split_test: hw_split_next / hw_split_count (server/domain/split.c), the
 * rules of split.h one test each, and for every text of every test the
 * promises that hold whatever the text: each part is non-empty and within
 * the limit, parts are in order and do not overlap, only whitespace lies
 * outside them, every cut is at a grapheme cluster boundary, and a text
 * that fits is one part, unchanged. A seeded random run checks the same
 * over mixed texts (Latin, Chinese, emoji, combining marks, flags).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <utf8proc.h>

#include "tests/unit/text_util.h"
#include "server/base/errors.h"
#include "server/domain/split.h"

#define MAX_PARTS 1100 /* > the random texts' bytes */

typedef struct split_result {
    size_t n;
    hw_split_part p[MAX_PARTS];
    char *s[MAX_PARTS]; /* copies, NUL-terminated */
} split_result;

static void result_free(split_result *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->s[i]);
    r->n = 0;
}

/* Whether every code point of text[from, to) is whitespace in split.h's
 * sense (tested through a known set: what the texts below use). */
static int all_space(const char *text, size_t from, size_t to)
{
    while (from < to) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n =
            utf8proc_iterate((const utf8proc_uint8_t *)text + from, (utf8proc_ssize_t)(to - from), &cp);
        if (n <= 0)
            return 0;
        if (!(cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\v' || cp == '\f' ||
              cp == 0x3000 || cp == 0x2028 || cp == 0x2029 || cp == 0x85))
            return 0;
        from += (size_t)n;
    }
    return 1;
}

/* Whether byte offset at is a grapheme cluster boundary of text. */
static int grapheme_boundary(const char *text, size_t len, size_t at)
{
    if (at == 0 || at == len)
        return 1;
    utf8proc_int32_t prev = -1, cp, state = 0;
    size_t i = 0;
    while (i < len) {
        utf8proc_ssize_t n =
            utf8proc_iterate((const utf8proc_uint8_t *)text + i, (utf8proc_ssize_t)(len - i), &cp);
        if (n <= 0)
            return 0;
        int brk = prev < 0 ? 1 : utf8proc_grapheme_break_stateful(prev, cp, &state);
        if (i == at)
            return brk;
        if (i > at)
            return 0; /* inside a UTF-8 sequence */
        prev = cp;
        i += (size_t)n;
    }
    return 0;
}

/* The grapheme cluster of text around byte offset at: [*from, *to). */
static void cluster_around(const char *text, size_t len, size_t at, size_t *from, size_t *to)
{
    utf8proc_int32_t prev = -1, cp, state = 0;
    size_t i = 0;
    *from = 0;
    while (i < len) {
        utf8proc_ssize_t n =
            utf8proc_iterate((const utf8proc_uint8_t *)text + i, (utf8proc_ssize_t)(len - i), &cp);
        int brk = prev < 0 ? 1 : utf8proc_grapheme_break_stateful(prev, cp, &state);
        if (brk && i > at) {
            *to = i;
            return;
        }
        if (brk)
            *from = i;
        prev = cp;
        i += (size_t)n;
    }
    *to = len;
}

/* A cut inside a grapheme cluster is allowed only in one longer than the
 * limit. */
static void check_cut(const char *text, size_t len, size_t at, hw_split_unit unit, size_t max)
{
    if (grapheme_boundary(text, len, at))
        return;
    size_t from, to;
    cluster_around(text, len, at, &from, &to);
    assert_true(max && hw_split_units(text + from, to - from, unit) > max);
}

/* Splits text, checks the promises of split.h, returns the parts. */
static split_result split(const char *text, hw_split_unit unit, size_t max)
{
    split_result r = {0};
    size_t len = strlen(text), pos = 0, covered = 0;
    hw_split_limit l = {unit, max};
    int rc;
    hw_split_part p;
    while ((rc = hw_split_next(text, len, &l, &pos, &p)) == 1) {
        assert_true(r.n < MAX_PARTS);
        assert_true(p.len_bytes > 0);
        assert_true(p.offset >= covered);
        assert_true(all_space(text, covered, p.offset));
        assert_int_equal(p.units, hw_split_units(text + p.offset, p.len_bytes, unit));
        if (max)
            assert_true(p.units <= max);
        check_cut(text, len, p.offset, unit, max);
        check_cut(text, len, p.offset + p.len_bytes, unit, max);
        assert_true(pos >= p.offset + p.len_bytes);
        r.p[r.n] = p;
        r.s[r.n] = strndup(text + p.offset, p.len_bytes);
        r.n++;
        covered = p.offset + p.len_bytes;
    }
    assert_int_equal(rc, 0);
    assert_true(all_space(text, covered, len));
    size_t n = 99;
    assert_int_equal(hw_split_count(text, len, &l, &n), HW_OK);
    assert_int_equal(n, r.n);
    if (len && (max == 0 || hw_split_units(text, len, unit) <= max)) {
        assert_int_equal(r.n, 1);
        assert_string_equal(r.s[0], text);
    }
    return r;
}

static char *concat(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *s = malloc(na + nb + 1);
    memcpy(s, a, na);
    memcpy(s + na, b, nb + 1);
    return s;
}

#define CP HW_SPLIT_CODE_POINTS
#define U16 HW_SPLIT_UTF16_UNITS
#define BYTES HW_SPLIT_BYTES

/* ------------------------------------------------------------- the limit */

static void empty_text_has_no_part(void **state)
{
    (void)state;
    split_result r = split("", U16, 10);
    assert_int_equal(r.n, 0);
}

static void text_below_or_at_the_limit_is_one_part_unchanged(void **state)
{
    (void)state;
    split_result r = split("  hello world.\n\n", CP, 100);
    assert_int_equal(r.n, 1);
    result_free(&r);
    r = split("0123456789", CP, 10); /* exactly at the limit */
    assert_int_equal(r.n, 1);
    assert_string_equal(r.s[0], "0123456789");
    result_free(&r);
    r = split("\n\n\n\n\n\n", U16, 10); /* only newlines, within the limit */
    assert_int_equal(r.n, 1);
    assert_string_equal(r.s[0], "\n\n\n\n\n\n");
    result_free(&r);
}

static void one_unit_over_the_limit_is_two_parts(void **state)
{
    (void)state;
    split_result r = split("abcde fghij", CP, 10); /* 11 */
    assert_int_equal(r.n, 2);
    assert_string_equal(r.s[0], "abcde");
    assert_string_equal(r.s[1], "fghij");
    result_free(&r);
}

static void no_limit_keeps_any_text_whole(void **state)
{
    (void)state;
    char *big = repeat("word ", 20000);
    split_result r = split(big, BYTES, 0);
    assert_int_equal(r.n, 1);
    result_free(&r);
    free(big);
}

static void bad_limits_and_invalid_utf8_are_refused(void **state)
{
    (void)state;
    size_t pos = 0, n = 7;
    hw_split_part p;
    for (size_t max = 1; max < HW_SPLIT_MIN_UNITS; max++) {
        hw_split_limit l = {CP, max};
        assert_int_equal(hw_split_next("abc", 3, &l, &pos, &p), HW_EINVALID);
    }
    hw_split_limit bad_unit = {(hw_split_unit)7, 10};
    assert_int_equal(hw_split_next("abc", 3, &bad_unit, &pos, &p), HW_EINVALID);
    assert_int_equal(hw_split_count("abc", 3, NULL, &n), HW_EINVALID);
    hw_split_limit l = {CP, 4};
    assert_int_equal(hw_split_count("ab\xff", 3, &l, &n), HW_EINVALID);
    assert_int_equal(n, 0);
    assert_int_equal(hw_split_count("ab\xed\xa0\x80", 5, &l, &n), HW_EINVALID); /* a surrogate in UTF-8 */
    assert_int_equal(hw_split_next("\xc3", 1, &l, &pos, &p), HW_EINVALID);      /* truncated sequence */
    assert_int_equal(pos, 0);
}

/* ------------------------------------------------------------- the units */

static void units_are_counted_per_channel(void **state)
{
    (void)state;
    const char *t = "a中😀"; /* 1 + 3 + 4 bytes */
    assert_int_equal(hw_split_units(t, strlen(t), BYTES), 8);
    assert_int_equal(hw_split_units(t, strlen(t), CP), 3);
    assert_int_equal(hw_split_units(t, strlen(t), U16), 4);
}

static void emoji_outside_the_bmp_counts_two_in_utf16(void **state)
{
    (void)state;
    /* 9 letters and an emoji: 11 UTF-16 units, 10 code points. */
    split_result r = split("abcdefghi😀", U16, 10);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.s[0], "abcdefghi");
    assert_string_equal(r.s[1], "😀");
    result_free(&r);
    r = split("abcdefghi😀", CP, 10);
    assert_int_equal(r.n, 1);
    result_free(&r);
}

static void emoji_at_the_boundary_is_never_cut_in_half(void **state)
{
    (void)state;
    /* Emoji only: each part holds whole pairs, 5 per 10 units. */
    char *t = repeat("😀", 12);
    split_result r = split(t, U16, 10);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.p[0].units, 10);
    assert_int_equal(r.p[2].units, 4);
    result_free(&r);
    free(t);
    /* An odd limit: 9 units hold 4 emoji, not 4.5. */
    t = repeat("😀", 5);
    r = split(t, U16, 9);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.p[0].units, 8);
    result_free(&r);
    free(t);
}

static void bytes_limit_never_cuts_a_utf8_sequence(void **state)
{
    (void)state;
    split_result r = split("中文中文中文", BYTES, 10); /* 18 bytes, 3 per character */
    assert_int_equal(r.n, 2);
    assert_string_equal(r.s[0], "中文中");
    assert_string_equal(r.s[1], "文中文");
    result_free(&r);
}

/* ------------------------------------------------------------- the breaks */

static void paragraph_break_is_preferred(void **state)
{
    (void)state;
    /* A sentence end and spaces later in the window lose to the blank line. */
    split_result r = split("First paragraph here.\n\nSecond one. More words follow here", CP, 40);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.s[0], "First paragraph here.");
    assert_string_equal(r.s[1], "Second one. More words follow here");
    result_free(&r);
    /* \r\n\r\n and U+2029 are paragraph breaks too. */
    r = split("First paragraph here.\r\n\r\nSecond one. More words follow", CP, 40);
    assert_string_equal(r.s[0], "First paragraph here.");
    result_free(&r);
    r = split("First paragraph here.\u2029Second one. More words follow here", CP, 40);
    assert_string_equal(r.s[0], "First paragraph here.");
    result_free(&r);
}

static void line_break_comes_before_sentence_and_space(void **state)
{
    (void)state;
    split_result r = split("- item one is long\n- item two. And more words", CP, 30);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.s[0], "- item one is long");
    assert_string_equal(r.s[1], "- item two. And more words");
    result_free(&r);
}

static void sentence_end_comes_before_space(void **state)
{
    (void)state;
    split_result r = split("One sentence is here. Another one follows it", CP, 30);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.s[0], "One sentence is here.");
    assert_string_equal(r.s[1], "Another one follows it");
    result_free(&r);
    r = split("Is it here?! Another one follows", CP, 20);
    assert_string_equal(r.s[0], "Is it here?!");
    result_free(&r);
}

static void latin_sentence_end_needs_whitespace_after_it(void **state)
{
    (void)state;
    /* "3.14" is no sentence end: the cut is at the last space. */
    split_result r = split("pi is about 3.14159 and e is 2.71828", CP, 22);
    assert_string_equal(r.s[0], "pi is about 3.14159");
    result_free(&r);
}

static void closing_quotes_stay_with_their_sentence(void **state)
{
    (void)state;
    split_result r = split("He said \"stop here.\" Then left the room", CP, 28);
    assert_string_equal(r.s[0], "He said \"stop here.\"");
    result_free(&r);
    r = split("他说：「好的。」然后离开了房间里面", CP, 12);
    assert_string_equal(r.s[0], "他说：「好的。」");
    assert_string_equal(r.s[1], "然后离开了房间里面");
    result_free(&r);
}

static void chinese_sentence_ends_need_no_space(void **state)
{
    (void)state;
    split_result r = split("请重置您的密码。然后再登录一次。如果还有问题请联系我们", U16, 20);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.s[0], "请重置您的密码。然后再登录一次。");
    assert_string_equal(r.s[1], "如果还有问题请联系我们");
    result_free(&r);
    r = split("真的吗！好的？那就这样吧好的好的", CP, 10);
    assert_string_equal(r.s[0], "真的吗！好的？");
    result_free(&r);
}

static void chinese_without_spaces_or_stops_is_cut_at_the_limit(void **state)
{
    (void)state;
    char *t = repeat("中", 25);
    split_result r = split(t, U16, 10);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.p[0].units, 10);
    assert_int_equal(r.p[1].units, 10);
    assert_int_equal(r.p[2].units, 5);
    assert_int_equal(r.p[0].len_bytes, 30);
    result_free(&r);
    free(t);
}

static void ideographic_space_is_a_space(void **state)
{
    (void)state;
    split_result r = split("你好\u3000世界你好世界", CP, 6);
    assert_string_equal(r.s[0], "你好");
    assert_string_equal(r.s[1], "世界你好世界");
    result_free(&r);
}

static void no_break_space_is_not_a_break(void **state)
{
    (void)state;
    /* The only break is early (2 of 10 units), yet it is taken: the
     * no-break space at 6 is none. */
    split_result r = split("aa 100\u00a0kmbb", CP, 10);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.s[0], "aa");
    assert_string_equal(r.s[1], "100\u00a0kmbb");
    result_free(&r);
}

static void a_word_longer_than_the_limit_is_cut_at_the_limit(void **state)
{
    (void)state;
    split_result r = split("supercalifragilistic", CP, 8);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.s[0], "supercal");
    assert_string_equal(r.s[1], "ifragili");
    assert_string_equal(r.s[2], "stic");
    result_free(&r);
    /* After a short word: the space is taken (it is the only break). */
    r = split("a supercalifragilistic", CP, 8);
    assert_string_equal(r.s[0], "a");
    assert_string_equal(r.s[1], "supercal");
    result_free(&r);
}

static void early_break_gives_way_to_a_later_one(void **state)
{
    (void)state;
    /* The blank line is at 2 of 20 units: a tiny part; the space at 16 wins. */
    split_result r = split("Hi\n\nthis reply goes on and on", CP, 20);
    assert_string_equal(r.s[0], "Hi\n\nthis reply goes");
    assert_string_equal(r.s[1], "on and on");
    result_free(&r);
}

/* ---------------------------------------------------- whitespace at a cut */

static void whitespace_at_a_cut_is_dropped_and_nothing_else(void **state)
{
    (void)state;
    split_result r = split("alpha beta  \t\n\n  gamma delta", CP, 12);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.s[0], "alpha beta");
    assert_string_equal(r.s[1], "gamma delta");
    result_free(&r);
    /* Leading and trailing whitespace of the text itself are kept. */
    r = split("  alpha beta gamma  ", CP, 12);
    assert_string_equal(r.s[0], "  alpha beta");
    assert_string_equal(r.s[1], "gamma  ");
    result_free(&r);
}

static void only_newlines_over_the_limit_has_no_part(void **state)
{
    (void)state;
    char *t = repeat("\n", 50);
    split_result r = split(t, U16, 10);
    assert_int_equal(r.n, 0);
    free(t);
    t = repeat(" ", 30);
    char *u = concat(t, "hello");
    r = split(u, CP, 10); /* the run touching the cut is dropped */
    assert_int_equal(r.n, 1);
    assert_string_equal(r.s[0], "hello");
    result_free(&r);
    free(t);
    free(u);
}

/* ---------------------------------------------------- grapheme clusters */

static void grapheme_clusters_are_kept_whole(void **state)
{
    (void)state;
    /* A family (man ZWJ woman ZWJ girl): 3 code points + 2 ZWJ = 8 UTF-16 units. */
    const char *family = "\U0001F468\u200D\U0001F469\u200D\U0001F467";
    char *t = concat("abcdef", family);
    split_result r = split(t, U16, 10);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.s[0], "abcdef");
    assert_string_equal(r.s[1], family);
    result_free(&r);
    free(t);
    /* Flags are pairs of regional indicators: never one letter alone. */
    t = repeat("\U0001F1E9\U0001F1EA", 5); /* 5 flags, 4 units each */
    r = split(t, U16, 10);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.p[0].units, 8);
    result_free(&r);
    free(t);
    /* e + combining acute. */
    r = split("cafe\u0301cafe\u0301", CP, 5);
    assert_string_equal(r.s[0], "cafe\u0301");
    assert_string_equal(r.s[1], "cafe\u0301");
    result_free(&r);
}

static void a_cluster_longer_than_the_limit_is_cut_between_code_points(void **state)
{
    (void)state;
    char *marks = repeat("\u0301", 10);
    char *t = concat("e", marks);
    split_result r = split(t, CP, 4);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.p[0].units, 4);
    result_free(&r);
    free(marks);
    free(t);
}

/* ------------------------------------------------- at channel-sized limits */

static char *reply_of(size_t chars)
{
    /* Sentences of 50 characters, a blank line every 10 of them. */
    const char *sentence = "This is a reply sentence of fifty characters ok. ";
    char *s = malloc(chars + 1);
    size_t n = 0, k = 0;
    while (n < chars) {
        size_t m = strlen(sentence);
        if (m > chars - n)
            m = chars - n;
        memcpy(s + n, sentence, m);
        n += m;
        if (++k % 10 == 0 && n + 2 <= chars) {
            memcpy(s + n - 1, "\n\n", 2);
            n++;
        }
    }
    s[chars] = '\0';
    return s;
}

static void a_5000_character_reply_is_two_telegram_parts(void **state)
{
    (void)state;
    char *t = reply_of(5000);
    split_result r = split(t, U16, 4096);
    assert_int_equal(r.n, 2);
    assert_true(r.p[0].units <= 4096 && r.p[0].units > 2048);
    result_free(&r);
    free(t);
    t = repeat("中", 5000);
    r = split(t, U16, 4096);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.p[0].units, 4096);
    result_free(&r);
    free(t);
    char *a = repeat("x", 4095);
    t = concat(a, "😀😀"); /* the first emoji straddles 4096 */
    r = split(t, U16, 4096);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.p[0].units, 4095);
    assert_string_equal(r.s[1], "😀😀");
    result_free(&r);
    free(t);
    free(a);
}

/* ------------------------------------------------------------ random texts */

static void random_texts_keep_every_promise(void **state)
{
    (void)state;
    static const char *const atoms[] = {
        "a",       "word",
        "Z",       " ",
        " ",       "\n",
        "\n\n",    "\r\n",
        "\t",      ".",
        "!",       "?",
        "。",      "！",
        "\"",      "」",
        "中",      "文",
        "😀",       "\U0001F1E9\U0001F1EA",
        "e\u0301", "\U0001F468\u200D\U0001F469",
        "\u3000",  "\u00a0",
        "é",
    };
    const size_t n_atoms = sizeof atoms / sizeof *atoms;
    const hw_split_unit units[] = {BYTES, CP, U16};
    unsigned seed = 12345;
    char buf[1024];
    for (int round = 0; round < 3000; round++) {
        size_t len = 0, want = (size_t)(rand_r(&seed) % 120);
        for (size_t i = 0; i < want; i++) {
            const char *a = atoms[rand_r(&seed) % n_atoms];
            size_t n = strlen(a);
            if (len + n >= sizeof buf)
                break;
            memcpy(buf + len, a, n);
            len += n;
        }
        buf[len] = '\0';
        size_t max = HW_SPLIT_MIN_UNITS + (size_t)(rand_r(&seed) % 40);
        split_result r = split(buf, units[round % 3], max);
        result_free(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_text_has_no_part),
        cmocka_unit_test(text_below_or_at_the_limit_is_one_part_unchanged),
        cmocka_unit_test(one_unit_over_the_limit_is_two_parts),
        cmocka_unit_test(no_limit_keeps_any_text_whole),
        cmocka_unit_test(bad_limits_and_invalid_utf8_are_refused),
        cmocka_unit_test(units_are_counted_per_channel),
        cmocka_unit_test(emoji_outside_the_bmp_counts_two_in_utf16),
        cmocka_unit_test(emoji_at_the_boundary_is_never_cut_in_half),
        cmocka_unit_test(bytes_limit_never_cuts_a_utf8_sequence),
        cmocka_unit_test(paragraph_break_is_preferred),
        cmocka_unit_test(line_break_comes_before_sentence_and_space),
        cmocka_unit_test(sentence_end_comes_before_space),
        cmocka_unit_test(latin_sentence_end_needs_whitespace_after_it),
        cmocka_unit_test(closing_quotes_stay_with_their_sentence),
        cmocka_unit_test(chinese_sentence_ends_need_no_space),
        cmocka_unit_test(chinese_without_spaces_or_stops_is_cut_at_the_limit),
        cmocka_unit_test(ideographic_space_is_a_space),
        cmocka_unit_test(no_break_space_is_not_a_break),
        cmocka_unit_test(a_word_longer_than_the_limit_is_cut_at_the_limit),
        cmocka_unit_test(early_break_gives_way_to_a_later_one),
        cmocka_unit_test(whitespace_at_a_cut_is_dropped_and_nothing_else),
        cmocka_unit_test(only_newlines_over_the_limit_has_no_part),
        cmocka_unit_test(grapheme_clusters_are_kept_whole),
        cmocka_unit_test(a_cluster_longer_than_the_limit_is_cut_between_code_points),
        cmocka_unit_test(a_5000_character_reply_is_two_telegram_parts),
        cmocka_unit_test(random_texts_keep_every_promise),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
