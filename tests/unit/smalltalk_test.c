/*
 * smalltalk_test: hw_smalltalk_classify on each kind in both languages,
 * on messages that carry a real question besides a greeting (not small
 * talk), on ratings that are not 1..5, and on the edges: empty after the
 * punctuation goes, full-width forms, too long, invalid UTF-8; and the
 * localized replies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "server/domain/smalltalk.h"

static hw_smalltalk_kind kind_of(const char *s)
{
    uint32_t r = 99;
    hw_smalltalk_kind k = hw_smalltalk_classify(s, strlen(s), &r);
    if (k != HW_SMALLTALK_RATING)
        assert_int_equal(r, 0);
    return k;
}

static void all_are(const char *const *texts, size_t n, hw_smalltalk_kind want)
{
    for (size_t i = 0; i < n; i++) {
        hw_smalltalk_kind got = kind_of(texts[i]);
        if (got != want)
            fail_msg("\"%s\": kind %d, want %d", texts[i], (int)got, (int)want);
    }
}

#define ALL_ARE(want, ...)                                                                                   \
    do {                                                                                                     \
        static const char *const T_[] = {__VA_ARGS__};                                                       \
        all_are(T_, sizeof T_ / sizeof *T_, want);                                                           \
    } while (0)

static void greetings_in_both_languages(void **state)
{
    (void)state;
    ALL_ARE(HW_SMALLTALK_GREETING, "hi", "Hi!", "HELLO", "hey", "hello there", "Hi there 👋", "good morning",
            "Good afternoon!", "good evening~", "hi, anyone there?", "Hello??? anyone there", "你好", "您好",
            "你好呀", "你好！", "在吗", "在吗？", "在不在", "有人吗", "哈喽", "您好在吗", "你好，在吗？😊",
            "  hi  ", "ｈｅｌｌｏ！", "客服你好", "hi support");
}

static void thanks_in_both_languages(void **state)
{
    (void)state;
    ALL_ARE(HW_SMALLTALK_THANKS, "thanks", "Thanks!", "thank you", "Thank you so much!!", "thx", "ty",
            "many thanks", "ok thanks", "OK, thanks 🙏", "thanks again", "谢谢", "谢谢！", "多谢", "谢啦",
            "感谢", "好的谢谢", "好的，谢谢！", "非常感谢", "谢谢客服", "hi, thanks");
}

static void start_and_help_commands(void **state)
{
    (void)state;
    ALL_ARE(HW_SMALLTALK_START, "/start", "/START", "/start ref-42", "/start@helpwire_bot", "/help",
            " /start ");
    ALL_ARE(HW_SMALLTALK_NONE, "/starting", "/stop", "/", "/helpme", "/ start");
}

static void asking_for_a_person(void **state)
{
    (void)state;
    ALL_ARE(HW_SMALLTALK_HUMAN, "人工", "转人工", "人工客服", "我要人工", "找人工", "真人", "客服",
            "转人工！", "请转人工客服", "agent", "Human", "human please", "real person", "talk to a human",
            "speak to an agent", "operator", "representative", "can I talk to a human please",
            "I want to speak with a real person", "hi, can I talk to an agent?", "thanks, human please",
            "I want to speak to someone", "找个真人跟我说");
    ALL_ARE(HW_SMALLTALK_THANKS, "好的谢谢你的帮助", "thanks for your help!");
    ALL_ARE(HW_SMALLTALK_NONE, "someone charged my card twice", "个人信息怎么改");
}

static void messages_with_a_real_question_are_not_small_talk(void **state)
{
    (void)state;
    ALL_ARE(HW_SMALLTALK_NONE, "hi, how do I reset my password?", "你好，我要退款",
            "hello, I have a question about my account", "my human resources account is locked",
            "thanks but it still crashes", "谢谢，但是还是不行", "hi I want a refund",
            "agent says my card was charged twice", "在吗 怎么退款", "hint", "hithere", "thanksgiving",
            "人工智能", "ok", "好的", "please", "the app crashes");
}

static void bare_ratings(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint32_t rating;
    } CASES[] = {
        {"5", 5},      {"1", 1},          {"4!", 4},      {"５", 5},
        {"5分", 5},    {"3 分", 3},       {"5 stars", 5}, {"1 star", 1},
        {"5/5", 5},    {"4 out of 5", 4}, {"⭐⭐⭐⭐", 4},    {"⭐️⭐️⭐️", 3},
        {"★★★", 3},    {"★★★☆☆", 3},      {"★", 1},       {"五星", 5},
        {"五颗星", 5}, {"四星", 4},       {"一星", 1},    {"5星", 5},
        {" 2 ", 2},    {"5😊", 5},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) {
        uint32_t r = 0;
        hw_smalltalk_kind k = hw_smalltalk_classify(CASES[i].text, strlen(CASES[i].text), &r);
        if (k != HW_SMALLTALK_RATING || r != CASES[i].rating)
            fail_msg("\"%s\": kind %d rating %u, want rating %u", CASES[i].text, (int)k, r, CASES[i].rating);
    }
    /* Out of range or not bare: no rating. */
    ALL_ARE(HW_SMALLTALK_NONE, "0", "6", "10", "55", "5.5", "-1", "6 stars", "⭐⭐⭐⭐⭐⭐", "☆☆☆", "☆★", "六星",
            "5 stars for the app but the login is broken", "I give it 5", "5 dollars");
    /* A NULL rating pointer is allowed. */
    assert_int_equal(hw_smalltalk_classify("5", 1, NULL), HW_SMALLTALK_RATING);
}

static void edges(void **state)
{
    (void)state;
    /* Empty once punctuation and emoji go. */
    ALL_ARE(HW_SMALLTALK_NONE, "!!!", "？？", "😊", "👋🙏", " ", "...", "。");
    assert_int_equal(hw_smalltalk_classify("", 0, NULL), HW_SMALLTALK_NONE);
    assert_int_equal(hw_smalltalk_classify(NULL, 0, NULL), HW_SMALLTALK_NONE);
    /* Only the given length counts. */
    assert_int_equal(hw_smalltalk_classify("hi, how do I log in", 2, NULL), HW_SMALLTALK_GREETING);
    /* Too long: never small talk, however friendly. */
    char longtext[4096];
    size_t n = 0;
    while (n + 7 < sizeof longtext) {
        memcpy(longtext + n, "hello, ", 7);
        n += 7;
    }
    longtext[n] = '\0';
    assert_int_equal(hw_smalltalk_classify(longtext, n, NULL), HW_SMALLTALK_NONE);
    /* Just over the character limit once normalized. */
    char many[HW_SMALLTALK_MAX_CHARS + 8];
    memset(many, '!', sizeof many - 1);
    memcpy(many, "hi", 2);
    many[sizeof many - 1] = '\0';
    assert_int_equal(hw_smalltalk_classify(many, strlen(many), NULL), HW_SMALLTALK_NONE);
    many[HW_SMALLTALK_MAX_CHARS] = '\0';
    assert_int_equal(hw_smalltalk_classify(many, strlen(many), NULL), HW_SMALLTALK_GREETING);
    /* Invalid UTF-8. */
    assert_int_equal(hw_smalltalk_classify("hi\xff", 3, NULL), HW_SMALLTALK_NONE);
    /* Mixed languages. */
    ALL_ARE(HW_SMALLTALK_GREETING, "hi 你好", "你好 hello");
    ALL_ARE(HW_SMALLTALK_THANKS, "谢谢 thanks");
    ALL_ARE(HW_SMALLTALK_HUMAN, "hi 转人工");
}

static void replies_follow_the_locale(void **state)
{
    (void)state;
    assert_string_equal(hw_smalltalk_reply(HW_SMALLTALK_GREETING, "zh-CN"),
                        "您好！请问有什么可以帮您？直接描述您的问题即可。");
    assert_string_equal(hw_smalltalk_reply(HW_SMALLTALK_START, "en"),
                        "Hi! How can we help? Just type your question.");
    assert_string_equal(hw_smalltalk_reply(HW_SMALLTALK_START, ""),
                        "Hi! How can we help? Just type your question.");
    assert_string_equal(hw_smalltalk_reply(HW_SMALLTALK_THANKS, "zh"), "不客气！还有其他问题随时告诉我们。");
    assert_string_equal(hw_smalltalk_reply(HW_SMALLTALK_THANKS, "en-US"),
                        "You're welcome! Let us know if there's anything else.");
    assert_string_equal(hw_smalltalk_reply(HW_SMALLTALK_RATING, "zh-TW"), "感谢您的评价！");
    assert_string_equal(hw_smalltalk_reply(HW_SMALLTALK_RATING, NULL), "Thanks for your rating!");
    assert_null(hw_smalltalk_reply(HW_SMALLTALK_HUMAN, "en"));
    assert_null(hw_smalltalk_reply(HW_SMALLTALK_NONE, "en"));
    assert_string_equal(hw_smalltalk_name(HW_SMALLTALK_START), "start");
    assert_string_equal(hw_smalltalk_name(HW_SMALLTALK_NONE), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(greetings_in_both_languages),
        cmocka_unit_test(thanks_in_both_languages),
        cmocka_unit_test(start_and_help_commands),
        cmocka_unit_test(asking_for_a_person),
        cmocka_unit_test(messages_with_a_real_question_are_not_small_talk),
        cmocka_unit_test(bare_ratings),
        cmocka_unit_test(edges),
        cmocka_unit_test(replies_follow_the_locale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
