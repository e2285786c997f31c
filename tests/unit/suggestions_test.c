/*
 * suggestions_test: the pure parts of server/domain/suggestions.c: how two
 * questions are compared (hw_suggestions_normalize: NFKC, white space,
 * ASCII case, end punctuation) and which links in an agent's reply name a
 * document (hw_suggestions_next_link). The store side is covered by the
 * integration test (tests/integration/suggestions_test.py).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "server/domain/suggestions.h"

static void check_norm(hw_arena *a, const char *in, const char *want)
{
    char *got = hw_suggestions_normalize(a, in);
    assert_non_null(got);
    assert_string_equal(got, want);
}

static void normalize_folds_space_case_width_and_end_punctuation(void **state)
{
    (void)state;
    hw_arena *a = hw_arena_create(4096);
    check_norm(a, "  How do I   get a\tREFUND?  ", "how do i get a refund");
    check_norm(a, "how do i get a refund", "how do i get a refund");
    check_norm(a, "Ｒｅｆｕｎｄ　please！", "refund please");   /* full-width letters, space, ！ */
    check_norm(a, "怎么退款？", "怎么退款");                   /* ？ is ? after NFKC */
    check_norm(a, "怎么退款。", "怎么退款");
    check_norm(a, "Wait... what?!", "wait... what");         /* only the end is trimmed */
    check_norm(a, "ÉCOLE", "École");                          /* only ASCII is lowercased */
    check_norm(a, "e\xCC\x81t\xC3\xA9", "\xC3\xA9t\xC3\xA9"); /* composed */
    check_norm(a, "", "");
    check_norm(a, " \t\n ", "");
    check_norm(a, "?!", "");
    assert_null(hw_suggestions_normalize(a, "bad \xFF utf-8"));
    hw_arena_destroy(a);
}

/* All links of text as "kind:id" joined by spaces into buf. */
static const char *links(const char *text, char *buf, size_t len)
{
    hw_doc_link l;
    size_t used = 0;
    buf[0] = '\0';
    for (const char *p = text; (p = hw_suggestions_next_link(p, &l));)
        used += (size_t)snprintf(buf + used, len - used, "%s%s:%.*s", used ? " " : "",
                                 l.kind == HELPWIRE__V1__DOC_KIND__DOC_KIND_FAQ ? "faq" : "article", (int)l.len,
                                 l.id);
    return buf;
}

static void links_found_in_reply_text(void **state)
{
    (void)state;
    char buf[512];
    assert_string_equal(links("see https://help.example.com/articles/a-12 now", buf, sizeof buf), "article:a-12");
    assert_string_equal(links("/article/x_1 and /faqs/f-2, /faq/ns:id.v2", buf, sizeof buf),
                        "article:x_1 faq:f-2, faq:ns:id.v2");
    /* A sentence's final '.' (or ',' ')' ...) is part of the run; the caller
     * retries without it. */
    assert_string_equal(links("read /articles/a-3.", buf, sizeof buf), "article:a-3.");
    assert_string_equal(links("(see /articles/g++) /faq/libsigc++-2.0-0v5 /faq/a b", buf, sizeof buf),
                        "article:g++) faq:libsigc++-2.0-0v5 faq:a");
    assert_string_equal(links("/articles/caf\xc3\xa9 /faqs/x%2By /faqs/\"q\"", buf, sizeof buf),
                        "article:caf faq:x");
    assert_string_equal(links("https://x.example/kb/articles/a-9?utm=1#top", buf, sizeof buf), "article:a-9");
}

static void no_link_without_an_id_or_with_another_path(void **state)
{
    (void)state;
    char buf[512];
    assert_string_equal(links("/articles/ and /faqs/?q=1", buf, sizeof buf), "");
    assert_string_equal(links("/myarticles/a-1 /blog/a-1 articles/a-1 /Articles/a-1", buf, sizeof buf), "");
    assert_string_equal(links("", buf, sizeof buf), "");
    char longid[200];
    memset(longid, 'a', 129);
    longid[129] = '\0';
    char text[300];
    snprintf(text, sizeof text, "/articles/%s /faq/ok", longid);
    assert_string_equal(links(text, buf, sizeof buf), "faq:ok"); /* ids are at most 128 bytes */
    snprintf(text, sizeof text, "/articles/%.128s", longid);
    links(text, buf, sizeof buf);
    assert_int_equal(strlen(buf), strlen("article:") + 128);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(normalize_folds_space_case_width_and_end_punctuation),
        cmocka_unit_test(links_found_in_reply_text),
        cmocka_unit_test(no_link_without_an_id_or_with_another_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
