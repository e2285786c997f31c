/*
 * visitor_test: the web chat's visitor-facing errors: the language rule
 * (Han characters in the text, then the browser's first Accept-Language
 * tag), every line present in both languages and free of technical words,
 * and how helpwired's status codes read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <grpc/status.h>

#include "clients/webchat/visitor.h"

static void han_text_is_chinese_whatever_the_browser_says(void **unused)
{
    assert_int_equal(wc_visitor_lang(NULL, "如何重置密码"), WC_LANG_ZH);
    assert_int_equal(wc_visitor_lang("en-US,en;q=0.9", "order 4711 还没到"), WC_LANG_ZH);
    assert_int_equal(wc_visitor_lang(NULL, "hello"), WC_LANG_EN);
    assert_int_equal(wc_visitor_lang(NULL, NULL), WC_LANG_EN);
}

static void the_first_accept_language_tag_decides_otherwise(void **unused)
{
    assert_int_equal(wc_visitor_lang("zh-CN,zh;q=0.9,en;q=0.8", "order 4711?"), WC_LANG_ZH);
    assert_int_equal(wc_visitor_lang("zh", NULL), WC_LANG_ZH);
    assert_int_equal(wc_visitor_lang(" ZH-hant-TW", NULL), WC_LANG_ZH);
    assert_int_equal(wc_visitor_lang("en-GB,zh;q=0.5", NULL), WC_LANG_EN);
    assert_int_equal(wc_visitor_lang("zu", NULL), WC_LANG_EN);  /* Zulu, not zh */
    assert_int_equal(wc_visitor_lang("zhx", NULL), WC_LANG_EN); /* not a zh tag */
}

static void han_detection_decodes_utf8_and_skips_broken_bytes(void **unused)
{
    assert_true(wc_visitor_has_han("\xe4\xb8\x80"));      /* U+4E00 */
    assert_true(wc_visitor_has_han("x\xf0\xa0\x80\x80")); /* U+20000, extension B */
    assert_false(wc_visitor_has_han("\xe3\x81\x82"));     /* U+3042 hiragana a */
    assert_false(wc_visitor_has_han("caf\xc3\xa9"));      /* é */
    assert_false(wc_visitor_has_han("\xe4\xb8"));         /* cut short */
    assert_false(wc_visitor_has_han("\x80\x80\xff"));
    assert_false(wc_visitor_has_han(NULL));
}

static void every_line_exists_in_both_languages_without_technical_words(void **unused)
{
    static const char *const banned[] = {"grpc",        "ipv4",   "127.0.0.1", "refused",
                                         "UNAVAILABLE", "error:", "helpwire",  "deadline"};
    for (int e = 0; e < WC_VISITOR_N; e++) {
        const char *en = wc_visitor_line((wc_visitor_error)e, WC_LANG_EN);
        const char *zh = wc_visitor_line((wc_visitor_error)e, WC_LANG_ZH);
        assert_non_null(en);
        assert_non_null(zh);
        assert_true(strlen(en) > 10 && strlen(en) < 120);
        assert_false(wc_visitor_has_han(en));
        assert_true(wc_visitor_has_han(zh));
        for (size_t i = 0; i < sizeof banned / sizeof banned[0]; i++)
            assert_null(strcasestr(en, banned[i]));
        assert_non_null(wc_visitor_code((wc_visitor_error)e));
    }
}

static void helpwired_statuses_read_as_try_later_or_as_the_survey_s_answer(void **unused)
{
    unsigned http = 0;
    assert_int_equal(wc_visitor_from_status(GRPC_STATUS_UNAVAILABLE, &http), WC_VISITOR_TRY_LATER);
    assert_int_equal(http, 503);
    assert_true(wc_visitor_retry(WC_VISITOR_TRY_LATER));
    assert_string_equal(wc_visitor_code(WC_VISITOR_TRY_LATER), "unavailable");
    assert_int_equal(wc_visitor_from_status(GRPC_STATUS_DEADLINE_EXCEEDED, &http), WC_VISITOR_TRY_LATER);
    assert_int_equal(http, 503);
    assert_int_equal(wc_visitor_from_status(GRPC_STATUS_NOT_FOUND, &http), WC_VISITOR_LINK_INVALID);
    assert_int_equal(http, 404);
    assert_int_equal(wc_visitor_from_status(GRPC_STATUS_ALREADY_EXISTS, &http), WC_VISITOR_ANSWERED);
    assert_int_equal(http, 409);
    assert_int_equal(wc_visitor_from_status(GRPC_STATUS_INVALID_ARGUMENT, &http), WC_VISITOR_REFUSED);
    assert_int_equal(http, 400);
    assert_false(wc_visitor_retry(WC_VISITOR_REFUSED));
    /* The bridge's token refused: the bridge's problem, told as ours. */
    assert_int_equal(wc_visitor_from_status(GRPC_STATUS_PERMISSION_DENIED, &http), WC_VISITOR_OUR_FAULT);
    assert_int_equal(http, 502);
    assert_int_equal(wc_visitor_from_status(99, &http), WC_VISITOR_OUR_FAULT);
}

static void the_queued_notice_says_received_in_the_visitor_s_language(void **unused)
{
    const char *en = wc_visitor_notice_line(WC_VISITOR_QUEUED, WC_LANG_EN);
    const char *zh = wc_visitor_notice_line(WC_VISITOR_QUEUED, WC_LANG_ZH);
    assert_non_null(strcasestr(en, "received"));
    assert_true(wc_visitor_has_han(zh));
    assert_false(wc_visitor_has_han(en));
    assert_non_null(strstr(zh, "收到"));
    assert_string_equal(wc_visitor_notice_code(WC_VISITOR_QUEUED), "queued");
    /* Out of range reads as the one notice there is, never NULL. */
    assert_string_equal(wc_visitor_notice_line((wc_visitor_notice)42, WC_LANG_EN), en);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(han_text_is_chinese_whatever_the_browser_says),
        cmocka_unit_test(the_first_accept_language_tag_decides_otherwise),
        cmocka_unit_test(han_detection_decodes_utf8_and_skips_broken_bytes),
        cmocka_unit_test(every_line_exists_in_both_languages_without_technical_words),
        cmocka_unit_test(helpwired_statuses_read_as_try_later_or_as_the_survey_s_answer),
        cmocka_unit_test(the_queued_notice_says_received_in_the_visitor_s_language),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
