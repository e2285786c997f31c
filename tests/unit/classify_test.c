/*
 * classify_test: skill classification scores a message against each
 * skill's keywords (a keyword counts, by its number of terms, only when all
 * its terms occur), in English and Chinese, with the default skill as the
 * fallback (the first by name when none is marked, "" with no skills),
 * also with a vocabulary larger than the classifier keeps on its stack.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/domain/classify.h"
#include "tests/unit/tokenizer_fixture.h"

static Helpwire__V1__Skill skill(const char *name, char **kws, size_t n)
{
    Helpwire__V1__Skill s = HELPWIRE__V1__SKILL__INIT;
    s.name = (char *)name;
    s.keywords = kws;
    s.n_keywords = n;
    return s;
}

static char *tech_kw[] = {"error", "crash", "login failed", "无法登录", "报错"};
static char *bill_kw[] = {"refund", "invoice", "charged twice", "退款", "发票"};

/* Classifies text with a model built for it; returns the queue. Also
 * classifies the text tokenized beforehand (as Route does) and checks both
 * ways agree. */
static const char *classify(hw_tokenizer *t, Helpwire__V1__Skill *const *sk, size_t n, const char *text,
                            double *score)
{
    hw_classify_model *m;
    assert_int_equal(hw_classify_build(t, sk, n, &m), HW_OK);
    static char name[64];
    snprintf(name, sizeof name, "%s", hw_classify_text(m, t, text, score));
    const hw_token *toks;
    size_t nt;
    if (hw_tokenize(t, text, strlen(text), &toks, &nt, NULL) == 0) { /* invalid UTF-8 has no tokens */
        double score2;
        assert_string_equal(hw_classify_tokens(m, toks, nt, &score2), name);
        assert_true(score2 == *score);
    }
    hw_classify_free(m);
    return name;
}

static void test_english_and_chinese(void **state)
{
    hw_tokenizer *t = *state;
    Helpwire__V1__Skill tech = skill("technical", tech_kw, 5), bill = skill("billing", bill_kw, 5);
    Helpwire__V1__Skill *sk[] = {&tech, &bill};
    double sc;
    assert_string_equal(classify(t, sk, 2, "The app shows an ERROR and crashes", &sc), "technical");
    assert_true(sc == 2); /* "error" + "crash" (stemmed), one term each */
    assert_string_equal(classify(t, sk, 2, "I was charged twice, please refund me", &sc), "billing");
    assert_true(sc == 3); /* "charged twice" counts 2, "refund" 1 */
    assert_string_equal(classify(t, sk, 2, "我要退款，还要发票", &sc), "billing");
    assert_string_equal(classify(t, sk, 2, "今天无法登录了", &sc), "technical");
}

static void test_all_terms_of_a_keyword_must_occur(void **state)
{
    hw_tokenizer *t = *state;
    Helpwire__V1__Skill tech = skill("technical", tech_kw, 5), bill = skill("billing", bill_kw, 5);
    Helpwire__V1__Skill *sk[] = {&tech, &bill};
    double sc;
    /* "login" alone is not "login failed"; "twice" alone is not "charged twice" */
    assert_string_equal(classify(t, sk, 2, "login twice", &sc), "billing"); /* fallback */
    assert_true(sc == 0);
    assert_string_equal(classify(t, sk, 2, "my login failed", &sc), "technical");
    assert_true(sc == 2);
}

static void test_fallback_and_ties(void **state)
{
    hw_tokenizer *t = *state;
    Helpwire__V1__Skill tech = skill("technical", tech_kw, 5), bill = skill("billing", bill_kw, 5);
    Helpwire__V1__Skill *sk[] = {&tech, &bill};
    double sc;
    /* no default marked: the first skill by name, whatever the order given */
    assert_string_equal(classify(t, sk, 2, "hello there", &sc), "billing");
    assert_true(sc == 0);
    /* the marked default wins over name order */
    tech.is_default = 1;
    assert_string_equal(classify(t, sk, 2, "hello there", &sc), "technical");
    assert_string_equal(classify(t, sk, 2, "my refund", &sc), "billing"); /* a match still wins */
    tech.is_default = 0;
    /* no skills at all: no queue */
    assert_string_equal(classify(t, sk, 0, "an error", &sc), "");
    hw_classify_model *m;
    bool marked = true;
    assert_int_equal(hw_classify_build(t, sk, 2, &m), HW_OK);
    assert_string_equal(hw_classify_fallback(m, &marked), "billing");
    assert_false(marked);
    hw_classify_free(m);
    bill.is_default = 1;
    assert_int_equal(hw_classify_build(t, sk, 2, &m), HW_OK);
    assert_string_equal(hw_classify_fallback(m, &marked), "billing");
    assert_true(marked);
    hw_classify_free(m);
    bill.is_default = 0;
    /* equal scores: the first skill listed wins */
    assert_string_equal(classify(t, sk, 2, "error with my invoice", &sc), "technical");
    Helpwire__V1__Skill *rev[] = {&bill, &tech};
    assert_string_equal(classify(t, rev, 2, "error with my invoice", &sc), "billing");
}

static void test_bad_and_empty_keywords_never_match(void **state)
{
    hw_tokenizer *t = *state;
    char *kws[] = {"\xff\xfe", "", "the", "outage"};
    Helpwire__V1__Skill ops = skill("ops", kws, 4);
    Helpwire__V1__Skill *sk[] = {&ops};
    double sc;
    assert_string_equal(classify(t, sk, 1, "the \xff\xfe", &sc), "ops"); /* the only skill: fallback */
    assert_true(sc == 0);
    assert_string_equal(classify(t, sk, 1, "a big outage", &sc), "ops");
    assert_true(sc == 1);
}

static void test_large_vocabulary(void **state)
{
    hw_tokenizer *t = *state;
    enum { N = 40000 };
    char **kws = calloc(N, sizeof *kws);
    assert_non_null(kws);
    for (size_t i = 0; i < N; i++) {
        kws[i] = malloc(16);
        assert_non_null(kws[i]);
        snprintf(kws[i], 16, "w%zux", i);
    }
    char *other_kw[] = {"w17x"};
    Helpwire__V1__Skill other = skill("other", other_kw, 1), big = skill("big", kws, N);
    Helpwire__V1__Skill *sk[] = {&other, &big};
    double sc;
    assert_string_equal(classify(t, sk, 2, "w39999x and w17x and w20000x", &sc), "big");
    assert_true(sc == 3);
    assert_string_equal(classify(t, sk, 2, "nothing here w40000x", &sc), "big"); /* first by name */
    assert_true(sc == 0);
    for (size_t i = 0; i < N; i++)
        free(kws[i]);
    free(kws);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_english_and_chinese, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_terms_of_a_keyword_must_occur, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fallback_and_ties, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_and_empty_keywords_never_match, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_vocabulary, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
