/*
 * tokenize_test: the search tokenizer validates UTF-8, normalizes (NFKC,
 * case fold), stems English, drops stop words, keeps codes like E1234 and
 * v2.3 whole, and splits CJK runs into overlapping bigrams.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "server/search/tokenize.h"
#include "tests/unit/tokenizer_fixture.h"

/* Joins the terms of text with '|' into buf; returns the term count. */
static size_t terms(hw_tokenizer *t, const char *text, char *buf, size_t cap)
{
    const hw_token *tk;
    size_t n;
    assert_int_equal(hw_tokenize(t, text, strlen(text), &tk, &n, NULL), 0);
    buf[0] = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        o += (size_t)snprintf(buf + o, cap - o, "%s%.*s", i ? "|" : "", (int)tk[i].len, tk[i].text);
        assert_true(o < cap);
        assert_true(tk[i].hash == hw_term_hash(tk[i].text, tk[i].len));
        assert_true(tk[i].start < tk[i].end && tk[i].end <= strlen(text));
    }
    return n;
}

static void test_invalid_utf8_is_an_error_with_offset(void **state)
{
    hw_tokenizer *t = *state;
    const hw_token *tk;
    size_t n;
    hw_status st;
    const char bad[] = "abc\xff\xfe";
    assert_int_equal(hw_tokenize(t, bad, sizeof bad - 1, &tk, &n, &st), HW_EINVALID);
    assert_int_equal(st.code, HW_EINVALID);
    assert_non_null(strstr(st.msg, "byte 3"));
    assert_int_equal(n, 0);
    /* truncated sequence, overlong encoding, surrogate */
    assert_int_equal(hw_tokenize(t, "\xe9\x87", 2, &tk, &n, NULL), HW_EINVALID);
    assert_int_equal(hw_tokenize(t, "\xc0\xaf", 2, &tk, &n, NULL), HW_EINVALID);
    assert_int_equal(hw_tokenize(t, "\xed\xa0\x80", 3, &tk, &n, NULL), HW_EINVALID);
    assert_int_equal(hw_utf8_validate("ok \xe9\x87\x8d", 6, NULL), 0);
    assert_int_equal(hw_utf8_validate("\x80", 1, NULL), HW_EINVALID);
}

static void test_empty_and_separator_only_input_gives_no_terms(void **state)
{
    hw_tokenizer *t = *state;
    char buf[256];
    assert_int_equal(terms(t, "", buf, sizeof buf), 0);
    assert_int_equal(terms(t, "  ,;!?。，", buf, sizeof buf), 0);
    assert_int_equal(terms(t, "the and of how", buf, sizeof buf), 0);
}

static void test_cjk_runs_become_overlapping_bigrams(void **state)
{
    hw_tokenizer *t = *state;
    char buf[256];
    assert_int_equal(terms(t, "重置密码", buf, sizeof buf), 3);
    assert_string_equal(buf, "重置|置密|密码");
    terms(t, "怎么重置密码", buf, sizeof buf);
    assert_string_equal(buf, "怎么|么重|重置|置密|密码");
    /* a lone character is a unigram; punctuation splits runs */
    terms(t, "好。退款政策", buf, sizeof buf);
    assert_string_equal(buf, "好|退款|款政|政策");
}

static void test_cjk_and_latin_mix(void **state)
{
    hw_tokenizer *t = *state;
    char buf[256];
    terms(t, "重置WiFi密码", buf, sizeof buf);
    assert_string_equal(buf, "重置|wifi|密码");
    const hw_token *tk;
    size_t n;
    assert_int_equal(hw_tokenize(t, "重置WiFi密码", strlen("重置WiFi密码"), &tk, &n, NULL), 0);
    assert_int_equal(tk[1].start, 6);
    assert_int_equal(tk[1].end, 10);
}

static void test_nfkc_and_case_folding(void **state)
{
    hw_tokenizer *t = *state;
    char buf[256];
    terms(t, "ＲＥＦＵＮＤ", buf, sizeof buf); /* fullwidth */
    assert_string_equal(buf, "refund");
    terms(t, "ﬁle", buf, sizeof buf); /* ligature */
    assert_string_equal(buf, "file");
    terms(t, "STRASSE Straße", buf, sizeof buf);
    assert_string_equal(buf, "strass|strass");
    /* composed and decomposed é are the same term */
    char a[64], b[64];
    terms(t, "caf\xc3\xa9", a, sizeof a);
    terms(t, "cafe\xcc\x81", b, sizeof b);
    assert_string_equal(a, b);
    terms(t, "ＡＢＣ１２３", buf, sizeof buf);
    assert_string_equal(buf, "abc123");
}

static void test_english_stemming_and_stop_words(void **state)
{
    hw_tokenizer *t = *state;
    char buf[256];
    terms(t, "How do I reset my Passwords?", buf, sizeof buf);
    assert_string_equal(buf, "reset|password");
    terms(t, "refunds refunded refunding", buf, sizeof buf);
    assert_string_equal(buf, "refund|refund|refund");
    terms(t, "Opening hours", buf, sizeof buf);
    assert_string_equal(buf, "open|hour");
}

static void test_codes_and_versions_are_kept_whole(void **state)
{
    hw_tokenizer *t = *state;
    char buf[256];
    terms(t, "Error E1234 after upgrading to v2.3", buf, sizeof buf);
    assert_string_equal(buf, "error|e1234|after|upgrad|v2.3");
    terms(t, "x86_64 3.14 end.", buf, sizeof buf);
    assert_string_equal(buf, "x86_64|3.14|end");
    const hw_token *tk;
    size_t n;
    assert_int_equal(hw_tokenize(t, "E1234", 5, &tk, &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_true(tk[0].flags & HW_TOKEN_NUMERIC);
}

static void test_overlong_words_are_dropped(void **state)
{
    hw_tokenizer *t = *state;
    char text[200];
    memset(text, 'a', 100);
    strcpy(text + 100, " help");
    char buf[256];
    assert_int_equal(terms(t, text, buf, sizeof buf), 1);
    assert_string_equal(buf, "help");
}

static void test_embedded_nul_is_a_separator(void **state)
{
    hw_tokenizer *t = *state;
    const hw_token *tk;
    size_t n;
    assert_int_equal(hw_tokenize(t, "refund\0policy", 13, &tk, &n, NULL), 0);
    assert_int_equal(n, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_invalid_utf8_is_an_error_with_offset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_and_separator_only_input_gives_no_terms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cjk_runs_become_overlapping_bigrams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cjk_and_latin_mix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nfkc_and_case_folding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_english_stemming_and_stop_words, setup, teardown),
        cmocka_unit_test_setup_teardown(test_codes_and_versions_are_kept_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlong_words_are_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_embedded_nul_is_a_separator, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
