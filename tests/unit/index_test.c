/*
 * index_test: the knowledge index finds the seed FAQ from Chinese and
 * English paraphrases, forgets deleted and replaced documents, marks
 * matches in snippets, decides between answer and transfer, refuses bad
 * input with clear statuses, its pruned top-k equals exhaustive scoring
 * on random corpora, and long bodies kept compressed read as their text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "server/base/arena.h"
#include "server/search/index.h"

typedef struct fixture {
    hw_index *idx;
    hw_searcher *s;
    hw_arena *arena;
} fixture;

static const char *const k_reset_alts[] = {"How do I reset my password?", "忘记密码怎么办"};
static const char *const k_hours_alts[] = {"What are your opening hours?", "你们几点上班"};
static const char *const k_refund_alts[] = {"What is your refund policy?", "怎么退款"};

static void put_faq(hw_index *idx, const char *id, const char *q, const char *a, const char *const *alts,
                    size_t n_alts)
{
    hw_doc d = {HW_DOC_FAQ, id, q, a, "zh", alts, n_alts};
    hw_status st;
    assert_int_equal(hw_index_put(idx, &d, &st), 0);
}

static void put_article(hw_index *idx, const char *id, const char *title, const char *body,
                        const char *locale)
{
    hw_doc d = {HW_DOC_ARTICLE, id, title, body, locale, NULL, 0};
    hw_status st;
    int rc = hw_index_put(idx, &d, &st);
    if (rc != 0)
        fail_msg("put %s: %s", id, st.msg);
}

static void load_seed(hw_index *idx)
{
    hw_index_batch_begin(idx);
    put_faq(idx, "f-1", "如何重置密码",
            "在登录页点击“忘记密码”，输入注册邮箱，按邮件里的链接设置新密码。"
            " Click \"Forgot password\" on the sign-in page and follow the e-mail link.",
            k_reset_alts, 2);
    put_faq(idx, "f-2", "工作时间",
            "客服工作时间为周一至周五 9:00-18:00（北京时间）。"
            " Support is open Monday to Friday, 9:00-18:00 Beijing time.",
            k_hours_alts, 2);
    put_faq(idx, "f-3", "退款政策",
            "购买后 30 天内可申请全额退款，在订单页提交退款申请即可。"
            " Full refund within 30 days of purchase from the order page.",
            k_refund_alts, 2);
    put_article(idx, "a-1", "Setting up two-factor authentication",
                "Open Settings, choose Security and scan the QR code with an authenticator app. "
                "Keep the recovery codes somewhere safe.",
                "en");
    put_article(idx, "a-2", "Changing your e-mail address",
                "Go to Profile, edit the e-mail field and confirm the change from the link we send.", "en");
    put_article(idx, "a-3", "账单和发票", "在账户设置中可以下载每月的电子发票，也可以修改开票信息。", "zh");
    put_article(idx, "a-4", "Error E1234 when syncing",
                "E1234 means the sync token expired. Sign out and sign in again; "
                "version v2.3 of the app fixes the underlying problem.",
                "en");
    put_article(idx, "a-5", "Exporting your data",
                "You can export tickets and customers as CSV from the Admin page. "
                "Large exports are e-mailed when ready.",
                "en");
    hw_status st;
    assert_int_equal(hw_index_batch_commit(idx, &st), 0);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    hw_index_reader_register();
    if (hw_index_create(&f->idx, NULL, NULL) != 0 || hw_searcher_create(f->idx, &f->s, NULL) != 0)
        return -1;
    f->arena = hw_arena_create(0);
    load_seed(f->idx);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    hw_searcher_destroy(f->s);
    hw_index_destroy(f->idx);
    hw_arena_destroy(f->arena);
    hw_index_reader_unregister();
    free(f);
    return 0;
}

static hw_search_result search(fixture *f, const char *q, uint32_t k, const char *locale, hw_doc_kind kind,
                               unsigned flags)
{
    hw_search_query sq = {q, strlen(q), k, locale, kind, flags};
    hw_search_result r;
    hw_status st;
    int rc = hw_index_search(f->s, &sq, f->arena, &r, &st);
    if (rc != 0)
        fail_msg("search \"%s\": %s", q, st.msg);
    return r;
}

static void assert_top(fixture *f, const char *q, const char *id)
{
    hw_search_result r = search(f, q, 5, NULL, HW_DOC_ANY, 0);
    if (r.n_hits == 0 || strcmp(r.hits[0].id, id) != 0)
        fail_msg("\"%s\": expected %s first, got %s", q, id, r.n_hits ? r.hits[0].id : "nothing");
}

static void assert_answer(fixture *f, const char *q, const char *id)
{
    hw_answer a;
    hw_status st;
    assert_int_equal(hw_index_answer(f->s, q, strlen(q), NULL, 0, f->arena, &a, &st), 0);
    if (a.transfer || strcmp(a.source_id, id) != 0)
        fail_msg("\"%s\": expected answer from %s, got %s (confidence %.3f, transfer %d)", q, id, a.source_id,
                 a.confidence, a.transfer);
    assert_true(a.confidence >= 0 && a.confidence <= 1);
    assert_true(strlen(a.answer) > 0);
}

static void test_seed_faq_found_from_chinese_paraphrases(void **state)
{
    fixture *f = *state;
    assert_top(f, "怎么重置密码", "f-1");
    assert_top(f, "密码重置", "f-1");
    assert_top(f, "你们的工作时间是什么", "f-2");
    assert_top(f, "退款政策是怎样的", "f-3");
    assert_answer(f, "如何重置密码", "f-1");
    assert_answer(f, "怎么重置密码？", "f-1");
    assert_answer(f, "我想重置密码", "f-1");
    assert_answer(f, "工作时间是什么", "f-2");
    assert_answer(f, "请问你们的退款政策", "f-3");
}

static void test_seed_faq_found_from_english_paraphrases(void **state)
{
    fixture *f = *state;
    assert_top(f, "reset password", "f-1");
    assert_top(f, "When are you open?", "f-2");
    assert_top(f, "can I get a refund", "f-3");
    assert_answer(f, "How can I reset my password", "f-1");
    assert_answer(f, "what are your opening hours", "f-2");
    assert_answer(f, "refund policy?", "f-3");
}

static void test_exact_faq_question_wins_outright(void **state)
{
    fixture *f = *state;
    hw_answer a;
    assert_int_equal(
        hw_index_answer(f->s, "如何重置密码", strlen("如何重置密码"), "zh", 0, f->arena, &a, NULL), 0);
    assert_true(a.faq_exact);
    assert_true(a.confidence == 1.0);
    assert_int_equal(a.source_kind, HW_DOC_FAQ);
    assert_non_null(strstr(a.answer, "忘记密码"));
    assert_true(a.n_hits >= 1 && a.n_hits <= 5);
}

static void test_unrelated_question_is_transferred(void **state)
{
    fixture *f = *state;
    hw_answer a;
    const char *q = "my parcel arrived damaged and the courier was rude";
    assert_int_equal(hw_index_answer(f->s, q, strlen(q), "en", 0, f->arena, &a, NULL), 0);
    assert_true(a.transfer);
    assert_string_equal(a.answer, "");
    assert_true(a.confidence < 0.88);
    /* a threshold of 1 transfers everything that is not an exact FAQ */
    q = "two-factor authentication authenticator";
    assert_int_equal(hw_index_answer(f->s, q, strlen(q), NULL, 1.0, f->arena, &a, NULL), 0);
    assert_string_equal(a.source_id, "a-1");
    assert_true(a.transfer);
}

static void test_article_answer_is_a_passage(void **state)
{
    fixture *f = *state;
    hw_answer a;
    const char *q = "what does error E1234 mean";
    assert_int_equal(hw_index_answer(f->s, q, strlen(q), "en", 0.2, f->arena, &a, NULL), 0);
    assert_string_equal(a.source_id, "a-4");
    assert_false(a.transfer);
    assert_non_null(strstr(a.answer, "E1234"));
    assert_null(strchr(a.answer, '\x02'));
}

/* hw_index_answer_tokens (the text tokenized by the caller, as Route does
 * for the classifier and the search together) answers exactly as
 * hw_index_answer, with the same limits on the text. */
static void test_answer_from_tokens_equals_answer_from_text(void **state)
{
    fixture *f = *state;
    hw_tokenizer *tok;
    assert_int_equal(hw_tokenizer_create(&tok, NULL), 0);
    const char *qs[] = {"如何重置密码",
                        "How can I reset my password",
                        "what does error E1234 mean",
                        "my parcel arrived damaged",
                        "营业时间是几点",
                        "?!"};
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        hw_answer a, b;
        assert_int_equal(hw_index_answer(f->s, qs[i], strlen(qs[i]), "en", 0.2, f->arena, &a, NULL), 0);
        const hw_token *tk;
        size_t nt;
        assert_int_equal(hw_tokenize(tok, qs[i], strlen(qs[i]), &tk, &nt, NULL), 0);
        assert_int_equal(
            hw_index_answer_tokens(f->s, qs[i], strlen(qs[i]), tk, nt, "en", 0.2, f->arena, &b, NULL), 0);
        assert_string_equal(a.source_id, b.source_id);
        assert_string_equal(a.answer, b.answer);
        assert_int_equal(a.transfer, b.transfer);
        assert_true(a.confidence == b.confidence);
        assert_int_equal(a.n_hits, b.n_hits);
        for (size_t h = 0; h < a.n_hits; h++) {
            assert_string_equal(a.hits[h].id, b.hits[h].id);
            assert_string_equal(a.hits[h].snippet, b.hits[h].snippet);
            assert_true(a.hits[h].score == b.hits[h].score);
        }
    }
    hw_answer c;
    hw_status st;
    assert_int_equal(hw_index_answer_tokens(f->s, "", 0, NULL, 0, NULL, 0, f->arena, &c, &st), HW_EINVALID);
    assert_non_null(strstr(st.msg, "empty"));
    size_t big = HW_INDEX_MAX_QUERY + 1;
    char *long_q = malloc(big + 1);
    memset(long_q, 'a', big);
    long_q[big] = '\0';
    assert_int_equal(hw_index_answer_tokens(f->s, long_q, big, NULL, 0, NULL, 0, f->arena, &c, &st),
                     HW_ETOOBIG);
    free(long_q);
    hw_tokenizer_destroy(tok);
}

static void test_snippets_mark_matched_terms(void **state)
{
    fixture *f = *state;
    hw_search_result r = search(f, "recovery codes", 3, NULL, HW_DOC_ANY, 0);
    assert_true(r.n_hits >= 1);
    assert_string_equal(r.hits[0].id, "a-1");
    if (!strstr(r.hits[0].snippet, "\x02recovery\x03 \x02"
                                   "codes\x03"))
        fail_msg("snippet: %s", r.hits[0].snippet);
    r = search(f, "退款申请", 3, NULL, HW_DOC_ANY, 0);
    assert_string_equal(r.hits[0].id, "f-3");
    /* overlapping bigrams merge into one marked span */
    assert_non_null(strstr(r.hits[0].snippet, "\x02退款申请\x03"));
    r = search(f, "recovery", 3, NULL, HW_DOC_ANY, HW_SEARCH_NO_SNIPPETS);
    assert_null(r.hits[0].snippet);
}

/* Snippets found from candidate words (the default) equal those of the
 * whole texts tokenized: stems that change a word's first bytes (using ->
 * use, dying -> die, cries -> cri, skies -> sky), codes, dotted and
 * underscored words, CJK bigrams and lone ideographs, CJK punctuation, and
 * texts the fast pass refuses (accents, kana, full-width letters). */
static void test_fast_snippets_equal_full_snippets(void **state)
{
    fixture *f = *state;
    static const char *const bodies[] = {
        "Using the tool while dying of laughter; lying and tying knots. Cries under the skies, the sky cried.",
        "Version v2.3 fixes x86_64 builds; see www.example.com and foo_bar.baz, 3.14 and E1234 codes.",
        "退款申请：请在订单页点击“申请退款”，我们将在三个工作日内处理。税 税务 单据 《发票》",
        "Mixed 中文 and English: the refund (退款) is processed within 3 days, using e-mail.",
        "Caf\xc3\xa9 cr\xc3\xa8me used in recipes; \xe3\x81\x8b\xe3\x81\xaa kana text; \xef\xbc\xa1\xef\xbc\xa2 "
        "full-width letters, using tools.",
        "Generous generation of communal arsenals, early only ugly singly gently idly; aged and aging uses.",
    };
    char id[16];
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        snprintf(id, sizeof id, "s-%zu", i);
        put_article(f->idx, id, "Snippet sample", bodies[i], "en");
    }
    static const char *const queries[] = {
        "use dying lie tie cry sky", "v2.3 x86_64 example foo_bar 3.14 e1234", "退款 申请 税 发票 工作日",
        "refund 退款 english e-mail", "café crème kana ＡＢ using", "generous generation communal arsenal aging early",
        "snippet sample",
    };
    for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++) {
        hw_search_result a = search(f, queries[i], 10, NULL, HW_DOC_ANY, 0);
        hw_search_result b = search(f, queries[i], 10, NULL, HW_DOC_ANY, HW_SEARCH_FULL_SNIPPETS);
        assert_int_equal(a.n_hits, b.n_hits);
        assert_true(a.n_hits > 0);
        for (size_t h = 0; h < a.n_hits; h++) {
            assert_string_equal(a.hits[h].id, b.hits[h].id);
            if (strcmp(a.hits[h].snippet, b.hits[h].snippet))
                fail_msg("query \"%s\", %s:\n  %s\n  %s", queries[i], a.hits[h].id, a.hits[h].snippet,
                         b.hits[h].snippet);
        }
    }
    hw_search_result r = search(f, "using dying cries", 10, NULL, HW_DOC_ANY, 0);
    assert_string_equal(r.hits[0].id, "s-0");
    if (!strstr(r.hits[0].snippet, "\x02Using\x03") || !strstr(r.hits[0].snippet, "\x02" "dying\x03") ||
        !strstr(r.hits[0].snippet, "\x02" "Cries\x03"))
        fail_msg("snippet: %s", r.hits[0].snippet);
}

static void test_codes_are_searchable(void **state)
{
    fixture *f = *state;
    assert_top(f, "e1234", "a-4");
    assert_top(f, "V2.3", "a-4");
}

static void test_filters_by_locale_and_kind(void **state)
{
    fixture *f = *state;
    hw_search_result r = search(f, "密码 e-mail 发票", 10, "zh", HW_DOC_ANY, 0);
    for (size_t i = 0; i < r.n_hits; i++)
        assert_string_equal(r.hits[i].locale, "zh");
    assert_true(r.n_hits >= 2);
    r = search(f, "密码 e-mail 发票", 10, NULL, HW_DOC_ARTICLE, 0);
    for (size_t i = 0; i < r.n_hits; i++)
        assert_int_equal(r.hits[i].kind, HW_DOC_ARTICLE);
    r = search(f, "password", 10, "fr", HW_DOC_ANY, 0);
    assert_int_equal(r.n_hits, 0);
}

static void test_deleted_and_replaced_documents_disappear(void **state)
{
    fixture *f = *state;
    hw_status st;
    assert_top(f, "export CSV", "a-5");
    assert_int_equal(hw_index_delete(f->idx, HW_DOC_ARTICLE, "a-5", &st), 0);
    hw_search_result r = search(f, "export CSV", 10, NULL, HW_DOC_ANY, HW_SEARCH_COUNT_MATCHED);
    for (size_t i = 0; i < r.n_hits; i++)
        assert_string_not_equal(r.hits[i].id, "a-5");
    assert_int_equal(r.matched, r.n_hits);
    assert_int_equal(hw_index_delete(f->idx, HW_DOC_ARTICLE, "a-5", &st), HW_ENOTFOUND);
    assert_non_null(strstr(st.msg, "not found"));
    /* deleting an FAQ by the article kind is not found either */
    assert_int_equal(hw_index_delete(f->idx, HW_DOC_ARTICLE, "f-1", NULL), HW_ENOTFOUND);

    /* replace: the old text no longer matches, the new one does */
    put_article(f->idx, "a-2", "Changing your phone number", "Go to Profile and edit the phone field.", "en");
    r = search(f, "e-mail address", 10, NULL, HW_DOC_ANY, 0);
    for (size_t i = 0; i < r.n_hits; i++)
        assert_string_not_equal(r.hits[i].id, "a-2");
    assert_top(f, "phone number", "a-2");
    /* a document put after a delete is found again */
    put_article(f->idx, "a-5", "Exporting your data", "Export as CSV.", "en");
    assert_top(f, "export CSV", "a-5");
    hw_index_stats stats;
    hw_index_stats_get(f->idx, &stats);
    assert_int_equal(stats.docs, 8);
}

static void test_bad_queries_get_clear_statuses(void **state)
{
    fixture *f = *state;
    hw_search_result r;
    hw_status st;
    hw_search_query q = {"", 0, 10, NULL, HW_DOC_ANY, 0};
    assert_int_equal(hw_index_search(f->s, &q, f->arena, &r, &st), HW_EINVALID);
    assert_string_equal(st.msg, "query: empty");
    q.text = "abc\xc3";
    q.len = 4;
    assert_int_equal(hw_index_search(f->s, &q, f->arena, &r, &st), HW_EINVALID);
    assert_string_equal(st.msg, "query: invalid UTF-8 at byte 3");
    char *huge = malloc(HW_INDEX_MAX_QUERY + 4);
    memset(huge, 'a', HW_INDEX_MAX_QUERY + 1);
    q.text = huge;
    q.len = HW_INDEX_MAX_QUERY + 1;
    assert_int_equal(hw_index_search(f->s, &q, f->arena, &r, &st), HW_ETOOBIG);
    assert_non_null(strstr(st.msg, "limit 4096"));
    /* exactly at the limit: 1365 CJK characters -> many bigrams, fine */
    size_t n = 0;
    while (n + 3 <= HW_INDEX_MAX_QUERY) {
        memcpy(huge + n, n % 6 ? "码" : "密", 3);
        n += 3;
    }
    q.len = n;
    assert_int_equal(hw_index_search(f->s, &q, f->arena, &r, &st), 0);
    assert_true(r.n_hits >= 1);
    free(huge);
    /* stop words only: valid, no terms, no hits */
    q.text = "how do I";
    q.len = strlen(q.text);
    assert_int_equal(hw_index_search(f->s, &q, f->arena, &r, &st), 0);
    assert_int_equal(r.n_hits, 0);
    hw_answer a;
    assert_int_equal(hw_index_answer(f->s, "", 0, NULL, 0, f->arena, &a, &st), HW_EINVALID);
    assert_int_equal(hw_index_answer(f->s, "x", 1, NULL, 1.5, f->arena, &a, &st), HW_EINVALID);
    assert_int_equal(hw_index_answer(f->s, "how do I", 8, NULL, 0, f->arena, &a, &st), 0);
    assert_true(a.transfer);
}

static void test_bad_documents_are_refused(void **state)
{
    fixture *f = *state;
    hw_status st;
    hw_doc d = {HW_DOC_ARTICLE, "a-9", "title", "bad \xff body", "en", NULL, 0};
    assert_int_equal(hw_index_put(f->idx, &d, &st), HW_EINVALID);
    assert_string_equal(st.msg, "body: invalid UTF-8 at byte 4");
    d.body = "ok";
    d.id = "bad id";
    assert_int_equal(hw_index_put(f->idx, &d, &st), HW_EINVALID);
    d.id = "a-9";
    d.title = "";
    assert_int_equal(hw_index_put(f->idx, &d, &st), HW_EINVALID);
    assert_string_equal(st.msg, "title: empty");
    char big[600];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    d.title = big;
    assert_int_equal(hw_index_put(f->idx, &d, &st), HW_ETOOBIG);
    d.kind = 7;
    assert_int_equal(hw_index_put(f->idx, &d, &st), HW_EINVALID);
    hw_index_stats stats;
    hw_index_stats_get(f->idx, &stats);
    assert_int_equal(stats.docs, 8);
}

/* --- property: pruned top-k == exhaustive top-k ----------------------- */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Zipf-like word index in [0, vocab): small indexes are frequent. */
static unsigned zipf_word(uint64_t *s, unsigned vocab)
{
    double u = (double)(rng_next(s) % 1000000) / 1000000.0;
    unsigned w = (unsigned)((double)vocab * u * u * u);
    return w < vocab ? w : vocab - 1;
}

static void random_text(uint64_t *s, char *buf, size_t cap, unsigned words, unsigned vocab)
{
    size_t o = 0;
    for (unsigned i = 0; i < words && o + 16 < cap; i++) {
        unsigned w = zipf_word(s, vocab);
        if (w % 17 == 5)
            o += (size_t)snprintf(buf + o, cap - o, "%s", i % 2 ? "密码 " : "重置密码 ");
        else
            o += (size_t)snprintf(buf + o, cap - o, "w%u ", w);
    }
    buf[o] = 0;
}

static void compare_pruned_and_exhaustive(fixture *f, const char *q, uint32_t k, const char *locale,
                                          hw_doc_kind kind)
{
    hw_search_query a = {q, strlen(q), k, locale, kind, HW_SEARCH_NO_SNIPPETS};
    hw_search_query b = a;
    b.flags |= HW_SEARCH_EXHAUSTIVE | HW_SEARCH_COUNT_MATCHED;
    hw_search_result ra, rb;
    assert_int_equal(hw_index_search(f->s, &a, f->arena, &ra, NULL), 0);
    assert_int_equal(hw_index_search(f->s, &b, f->arena, &rb, NULL), 0);
    if (ra.n_hits != rb.n_hits)
        fail_msg("\"%s\" k=%u: %zu hits pruned, %zu exhaustive", q, k, ra.n_hits, rb.n_hits);
    for (size_t i = 0; i < ra.n_hits; i++) {
        if (strcmp(ra.hits[i].id, rb.hits[i].id) != 0 || ra.hits[i].score != rb.hits[i].score)
            fail_msg("\"%s\" k=%u rank %zu: %s %.17g vs %s %.17g", q, k, i, ra.hits[i].id, ra.hits[i].score,
                     rb.hits[i].id, rb.hits[i].score);
        if (i > 0)
            assert_true(ra.hits[i - 1].score >= ra.hits[i].score);
    }
    assert_true(rb.matched_exact);
    assert_true(rb.matched >= rb.n_hits);
    /* block-max bounds (forced on these short lists) change nothing */
    hw_search_query c = a;
    c.flags |= HW_SEARCH_FORCE_BLOCK_MAX;
    hw_search_result rc;
    assert_int_equal(hw_index_search(f->s, &c, f->arena, &rc, NULL), 0);
    assert_int_equal(rc.n_hits, ra.n_hits);
    for (size_t i = 0; i < rc.n_hits; i++)
        if (strcmp(rc.hits[i].id, ra.hits[i].id) != 0 || rc.hits[i].score != ra.hits[i].score)
            fail_msg("\"%s\" k=%u rank %zu: %s %.17g block-max, %s %.17g without", q, k, i, rc.hits[i].id,
                     rc.hits[i].score, ra.hits[i].id, ra.hits[i].score);
}

static void test_pruned_topk_equals_exhaustive_on_random_corpora(void **state)
{
    (void)state;
    char title[256], body[4096], q[512], id[32];
    /* a reader: main rebuilds the churn triggers run on their own thread */
    hw_index_reader_register();
    for (uint64_t seed = 1; seed <= 6; seed++) {
        uint64_t s = seed * 0x9E3779B97F4A7C15ull;
        fixture f = {0};
        hw_index_options o = {0};
        o.delta_max_docs = 50 + (unsigned)(seed * 37);
        assert_int_equal(hw_index_create(&f.idx, &o, NULL), 0);
        assert_int_equal(hw_searcher_create(f.idx, &f.s, NULL), 0);
        f.arena = hw_arena_create(0);
        unsigned vocab = 100 + (unsigned)(rng_next(&s) % 400);
        unsigned n_docs = 800 + (unsigned)(rng_next(&s) % 1500);
        hw_index_batch_begin(f.idx);
        for (unsigned d = 0; d < n_docs; d++) {
            random_text(&s, title, sizeof title, 1 + rng_next(&s) % 6, vocab);
            random_text(&s, body, sizeof body, 5 + rng_next(&s) % 150, vocab);
            snprintf(id, sizeof id, "d%u", d);
            hw_doc doc = {d % 5 ? HW_DOC_ARTICLE : HW_DOC_FAQ, id, title, body, d % 3 ? "en" : "zh", NULL, 0};
            assert_int_equal(hw_index_put(f.idx, &doc, NULL), 0);
        }
        assert_int_equal(hw_index_batch_commit(f.idx, NULL), 0);
        /* churn after the build: replacements and deletions land in the
         * delta and the deleted bitset, some trigger a main rebuild */
        unsigned churn = 40 + (unsigned)(rng_next(&s) % 300);
        for (unsigned c = 0; c < churn; c++) {
            unsigned d = (unsigned)(rng_next(&s) % (n_docs + 50));
            snprintf(id, sizeof id, "d%u", d);
            if (rng_next(&s) % 4 == 0) {
                hw_index_delete(f.idx, d % 5 ? HW_DOC_ARTICLE : HW_DOC_FAQ, id, NULL);
            } else {
                random_text(&s, title, sizeof title, 1 + rng_next(&s) % 6, vocab);
                random_text(&s, body, sizeof body, 5 + rng_next(&s) % 150, vocab);
                hw_doc doc = {d % 5 ? HW_DOC_ARTICLE : HW_DOC_FAQ, id, title, body, "en", NULL, 0};
                assert_int_equal(hw_index_put(f.idx, &doc, NULL), 0);
            }
        }
        hw_index_flush(f.idx); /* no main build lands between two compared searches */
        for (unsigned i = 0; i < 150; i++) {
            random_text(&s, q, sizeof q, 1 + rng_next(&s) % 8, vocab);
            static const uint32_t ks[] = {1, 3, 10, 50};
            uint32_t k = ks[i % 4];
            compare_pruned_and_exhaustive(&f, q, k, NULL, HW_DOC_ANY);
            if (i % 5 == 0)
                compare_pruned_and_exhaustive(&f, q, k, "zh", HW_DOC_ANY);
            if (i % 7 == 0)
                compare_pruned_and_exhaustive(&f, q, k, NULL, HW_DOC_FAQ);
            hw_arena_reset(f.arena);
        }
        hw_searcher_destroy(f.s);
        hw_index_destroy(f.idx);
        hw_arena_destroy(f.arena);
    }
    hw_index_reader_unregister();
}

/* ---- Delta levels ---------------------------------------------------- */

#define LV_IDS 360

typedef struct lv_doc {
    int live;
    char title[128];
    char body[1024];
} lv_doc;

static hw_doc_kind lv_kind(unsigned i)
{
    return i % 5 ? HW_DOC_ARTICLE : HW_DOC_FAQ;
}

/* A random body for document i: Zipf words, then 30 words of its own that
 * every version holds (dead versions add about 30 terms each to the
 * dead_df tables: a few thousand freeze and merge them). */
static void lv_body(uint64_t *s, char *buf, size_t cap, unsigned i, unsigned vocab)
{
    random_text(s, buf, cap, 5 + rng_next(s) % 60, vocab);
    size_t o = strlen(buf);
    for (unsigned j = 0; j < 30 && o + 16 < cap; j++)
        o += (size_t)snprintf(buf + o, cap - o, "i%uv%u ", i, j);
}

/* An index built in one batch from the live documents of docs. */
static hw_index *lv_scratch(const hw_index_options *o, const lv_doc *docs)
{
    hw_index *idx;
    char id[16];
    assert_int_equal(hw_index_create(&idx, o, NULL), 0);
    hw_index_batch_begin(idx);
    for (unsigned i = 0; i < LV_IDS; i++) {
        if (!docs[i].live)
            continue;
        snprintf(id, sizeof id, "d%u", i);
        hw_doc d = {lv_kind(i), id, docs[i].title, docs[i].body, i % 3 ? "en" : "zh", NULL, 0};
        assert_int_equal(hw_index_put(idx, &d, NULL), 0);
    }
    assert_int_equal(hw_index_batch_commit(idx, NULL), 0);
    return idx;
}

/* Search q in a (levels) and b (built from scratch): the same number of
 * hits and of matched documents, the same scores rank by rank (b ~ 0, so
 * the average length each segment was built with does not matter), the
 * same documents but where scores tie at the cut. */
static void lv_compare(hw_searcher *sa, hw_searcher *sb, hw_arena *arena, const char *q, const char *locale,
                       hw_doc_kind kind)
{
    hw_search_query sq = {q, strlen(q), 100, locale, kind, HW_SEARCH_NO_SNIPPETS | HW_SEARCH_COUNT_MATCHED};
    hw_search_result ra, rb;
    assert_int_equal(hw_index_search(sa, &sq, arena, &ra, NULL), 0);
    assert_int_equal(hw_index_search(sb, &sq, arena, &rb, NULL), 0);
    if (ra.n_hits != rb.n_hits || ra.matched != rb.matched)
        fail_msg("\"%s\": %zu hits, %llu matched with levels; %zu, %llu rebuilt", q, ra.n_hits,
                 (unsigned long long)ra.matched, rb.n_hits, (unsigned long long)rb.matched);
    for (size_t i = 0; i < ra.n_hits; i++) {
        double tol = 1e-6 * rb.hits[i].score;
        if (fabs(ra.hits[i].score - rb.hits[i].score) > tol)
            fail_msg("\"%s\" rank %zu: %.9f with levels, %.9f rebuilt", q, i, ra.hits[i].score,
                     rb.hits[i].score);
        size_t j = 0;
        while (j < rb.n_hits && strcmp(ra.hits[i].id, rb.hits[j].id) != 0)
            j++;
        if (j < rb.n_hits ? fabs(ra.hits[i].score - rb.hits[j].score) > tol
                          : fabs(ra.hits[i].score - rb.hits[rb.n_hits - 1].score) > tol)
            fail_msg("\"%s\": %s at rank %zu with levels, not so rebuilt", q, ra.hits[i].id, i);
    }
}

/* Changes spread over many frozen deltas (merged, or not), with deletes
 * and replacements of documents in main and in frozen deltas: searches
 * score like an index built from scratch from the live documents
 * (document frequencies exact across levels), and pruned top-k stays
 * equal to exhaustive scoring. */
static void test_levels_score_like_an_index_built_from_scratch(void **state)
{
    (void)state;
    hw_index_reader_register();
    static lv_doc docs[LV_IDS];
    char id[16], q[256];
    for (int merges = 0; merges < 2; merges++) {
        uint64_t s = 0x5EEDull + (uint64_t)merges;
        hw_index_options o = {0};
        o.b = 1e-9;
        o.delta_max_docs = 100000; /* no main build: every change stays in the deltas */
        o.delta_active_docs = 5;
        o.delta_merge_docs = merges ? 0 : 1; /* default (4 x 5), or none */
        fixture f = {0};
        assert_int_equal(hw_index_create(&f.idx, &o, NULL), 0);
        assert_int_equal(hw_searcher_create(f.idx, &f.s, NULL), 0);
        f.arena = hw_arena_create(0);
        unsigned vocab = 150;
        memset(docs, 0, sizeof docs);
        hw_index_batch_begin(f.idx);
        for (unsigned i = 0; i < 300; i++) {
            random_text(&s, docs[i].title, sizeof docs[i].title, 1 + rng_next(&s) % 5, vocab);
            lv_body(&s, docs[i].body, sizeof docs[i].body, i, vocab);
            docs[i].live = 1;
            snprintf(id, sizeof id, "d%u", i);
            hw_doc d = {lv_kind(i), id, docs[i].title, docs[i].body, i % 3 ? "en" : "zh", NULL, 0};
            assert_int_equal(hw_index_put(f.idx, &d, NULL), 0);
        }
        assert_int_equal(hw_index_batch_commit(f.idx, NULL), 0);
        unsigned max_segments = 0;
        for (unsigned c = 1; c <= 400; c++) {
            unsigned i = (unsigned)(rng_next(&s) % LV_IDS);
            snprintf(id, sizeof id, "d%u", i);
            if (rng_next(&s) % 4 == 0) {
                int rc = hw_index_delete(f.idx, lv_kind(i), id, NULL);
                assert_int_equal(rc, docs[i].live ? 0 : HW_ENOTFOUND);
                docs[i].live = 0;
            } else {
                random_text(&s, docs[i].title, sizeof docs[i].title, 1 + rng_next(&s) % 5, vocab);
                lv_body(&s, docs[i].body, sizeof docs[i].body, i, vocab);
                docs[i].live = 1;
                hw_doc d = {lv_kind(i), id, docs[i].title, docs[i].body, i % 3 ? "en" : "zh", NULL, 0};
                assert_int_equal(hw_index_put(f.idx, &d, NULL), 0);
            }
            hw_index_stats st;
            hw_index_stats_get(f.idx, &st);
            assert_int_equal(st.main_docs, 300);
            if (st.delta_segments > max_segments)
                max_segments = (unsigned)st.delta_segments;
            if (c % 80 != 0)
                continue;
            hw_index *b = lv_scratch(&o, docs);
            hw_searcher *sb;
            assert_int_equal(hw_searcher_create(b, &sb, NULL), 0);
            for (unsigned k = 0; k < 40; k++) {
                random_text(&s, q, sizeof q, 1 + rng_next(&s) % 6, vocab);
                if (k % 2) /* a word of one document's own, and its neighbour's */
                    snprintf(q + strlen(q), sizeof q - strlen(q), " i%uv%u i%uv%u",
                             (unsigned)(k * 7 % LV_IDS), k % 30, (unsigned)(k * 7 % LV_IDS + 1),
                             (k + 1) % 30);
                lv_compare(f.s, sb, f.arena, q, NULL, HW_DOC_ANY);
                if (k % 4 == 0)
                    lv_compare(f.s, sb, f.arena, q, "zh", HW_DOC_FAQ);
                compare_pruned_and_exhaustive(&f, q, 1 + k % 20, NULL, HW_DOC_ANY);
                hw_arena_reset(f.arena);
            }
            hw_searcher_destroy(sb);
            hw_index_destroy(b);
        }
        /* the changes were spread over levels: merged ones stay few */
        assert_true(max_segments >= 3);
        if (merges)
            assert_true(max_segments < 48);
        hw_searcher_destroy(f.s);
        hw_index_destroy(f.idx);
        hw_arena_destroy(f.arena);
    }
    hw_index_reader_unregister();
}

/* A document in a frozen delta is deleted and put back: gone at once,
 * then found once. */
static void test_delete_in_a_frozen_delta(void **state)
{
    fixture *f = *state;
    put_article(f->idx, "x-1", "Frozen", "quokkaxyz lives on an island", "en");
    char id[16];
    for (int i = 0; i < 300; i++) { /* x-1 leaves the active delta (256) */
        snprintf(id, sizeof id, "fill-%d", i);
        put_article(f->idx, id, "Filler", "ordinary words only", "en");
    }
    hw_index_stats st;
    hw_index_stats_get(f->idx, &st);
    assert_true(st.delta_segments >= 1);
    hw_search_result r = search(f, "quokkaxyz", 5, NULL, HW_DOC_ANY, 0);
    assert_int_equal(r.n_hits, 1);
    hw_status hs;
    assert_int_equal(hw_index_delete(f->idx, HW_DOC_ARTICLE, "x-1", &hs), 0);
    r = search(f, "quokkaxyz", 5, NULL, HW_DOC_ANY, HW_SEARCH_COUNT_MATCHED);
    assert_int_equal(r.n_hits, 0);
    assert_int_equal(r.matched, 0);
    put_article(f->idx, "x-1", "Frozen again", "quokkaxyz came back", "en");
    r = search(f, "quokkaxyz", 5, NULL, HW_DOC_ANY, HW_SEARCH_COUNT_MATCHED);
    assert_int_equal(r.n_hits, 1);
    assert_int_equal(r.matched, 1);
    assert_string_equal(r.hits[0].title, "Frozen again");
}

/* While a background main build runs (a main of 20,000 documents, deltas
 * bounded at 32), every change is searchable when its call returns, a
 * deleted document is gone; the deltas frozen since the build started
 * stay after it installs. */
static void test_changes_during_a_background_build_are_visible_at_once(void **state)
{
    (void)state;
    hw_index_reader_register();
    hw_index_options o = {0};
    o.b = 1e-9;
    o.delta_max_docs = 32;
    o.delta_active_docs = 8;
    fixture f = {0};
    assert_int_equal(hw_index_create(&f.idx, &o, NULL), 0);
    assert_int_equal(hw_searcher_create(f.idx, &f.s, NULL), 0);
    f.arena = hw_arena_create(0);
    static lv_doc docs[LV_IDS];
    memset(docs, 0, sizeof docs);
    char id[24], body[160], marker[32];
    hw_index_batch_begin(f.idx);
    for (int i = 0; i < 20000; i++) {
        snprintf(id, sizeof id, "big-%d", i);
        snprintf(body, sizeof body, "w%d w%d w%d common text", i % 97, i % 13, i % 1000);
        put_article(f.idx, id, "Bulk", body, "en");
    }
    assert_int_equal(hw_index_batch_commit(f.idx, NULL), 0);
    int over_bound = 0; /* deltas past their bound: a build was running */
    uint64_t s = 99;
    for (int c = 0; c < 400; c++) {
        unsigned i = (unsigned)(rng_next(&s) % 200);
        snprintf(id, sizeof id, "d%u", i);
        if (c % 7 == 3) { /* a main document the build is reading is replaced */
            snprintf(id, sizeof id, "big-%d", c * 37);
            snprintf(body, sizeof body, "bigmk%dq w%d", c, c % 97);
            put_article(f.idx, id, "Bulk again", body, "en");
            snprintf(marker, sizeof marker, "bigmk%dq", c);
            hw_search_result r = search(&f, marker, 3, NULL, HW_DOC_ANY, HW_SEARCH_NO_SNIPPETS);
            if (r.n_hits != 1 || strcmp(r.hits[0].id, id) != 0)
                fail_msg("change %d (%s) not visible on return", c, id);
            r = search(&f, "bulk", 100, NULL, HW_DOC_ANY, HW_SEARCH_NO_SNIPPETS | HW_SEARCH_COUNT_MATCHED);
            assert_int_equal(r.matched, 20000);
        } else if (c % 5 == 4 && docs[i].live) {
            assert_int_equal(hw_index_delete(f.idx, lv_kind(i), id, NULL), 0);
            docs[i].live = 0;
            hw_search_result r = search(&f, docs[i].body, 100, NULL, HW_DOC_ANY, HW_SEARCH_NO_SNIPPETS);
            for (size_t h = 0; h < r.n_hits; h++)
                assert_string_not_equal(r.hits[h].id, id);
        } else {
            snprintf(docs[i].title, sizeof docs[i].title, "change %d", c);
            snprintf(docs[i].body, sizeof docs[i].body, "mk%dq w%u", c, i % 97);
            docs[i].live = 1;
            hw_doc d = {lv_kind(i), id, docs[i].title, docs[i].body, "en", NULL, 0};
            assert_int_equal(hw_index_put(f.idx, &d, NULL), 0);
            snprintf(marker, sizeof marker, "mk%dq", c);
            hw_search_result r = search(&f, marker, 3, NULL, HW_DOC_ANY, HW_SEARCH_NO_SNIPPETS);
            if (r.n_hits != 1 || strcmp(r.hits[0].id, id) != 0)
                fail_msg("change %d (%s) not visible on return", c, id);
        }
        hw_arena_reset(f.arena);
        hw_index_stats st;
        hw_index_stats_get(f.idx, &st);
        over_bound |= st.delta_docs > o.delta_max_docs;
    }
    assert_true(over_bound);
    hw_index_flush(f.idx);
    /* after the build installed: every live change still found once */
    for (unsigned i = 0; i < 200; i++) {
        if (!docs[i].live)
            continue;
        const char *sp = strchr(docs[i].body, ' ');
        snprintf(marker, sizeof marker, "%.*s", (int)(sp - docs[i].body), docs[i].body);
        hw_search_result r = search(&f, marker, 3, NULL, HW_DOC_ANY, HW_SEARCH_NO_SNIPPETS);
        snprintf(id, sizeof id, "d%u", i);
        assert_int_equal(r.n_hits, 1);
        assert_string_equal(r.hits[0].id, id);
        hw_arena_reset(f.arena);
    }
    hw_searcher_destroy(f.s);
    hw_index_destroy(f.idx);
    hw_arena_destroy(f.arena);
    hw_index_reader_unregister();
}

/* Deleted and replaced main documents leave the statistics at once: an
 * index built with documents later deleted or replaced scores like one
 * built from the live documents only (b ~ 0, so the average length main
 * was built with does not matter). */
static void test_deleted_documents_leave_the_statistics(void **state)
{
    (void)state;
    hw_index_reader_register();
    hw_index_options o = {0};
    o.b = 1e-9;
    hw_index *a, *b;
    hw_searcher *sa, *sb;
    assert_int_equal(hw_index_create(&a, &o, NULL), 0);
    assert_int_equal(hw_index_create(&b, &o, NULL), 0);
    assert_int_equal(hw_searcher_create(a, &sa, NULL), 0);
    assert_int_equal(hw_searcher_create(b, &sb, NULL), 0);
    hw_arena *arena = hw_arena_create(0);
    char id[16], body[128];
    hw_index_batch_begin(a);
    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof id, "d%d", i);
        snprintf(body, sizeof body, "%s common words here %s", i < 20 ? "alpha" : "beta", i % 3 ? "gamma" : "");
        put_article(a, id, "Title", body, "en");
    }
    assert_int_equal(hw_index_batch_commit(a, NULL), 0);
    /* after main is built: 15 of the alpha documents go, 3 betas become alphas */
    for (int i = 0; i < 15; i++) {
        snprintf(id, sizeof id, "d%d", i);
        assert_int_equal(hw_index_delete(a, HW_DOC_ARTICLE, id, NULL), 0);
    }
    for (int i = 20; i < 23; i++) {
        snprintf(id, sizeof id, "d%d", i);
        put_article(a, id, "Title", "alpha replaced words", "en");
    }
    hw_index_batch_begin(b);
    for (int i = 15; i < 40; i++) {
        snprintf(id, sizeof id, "d%d", i);
        if (i >= 20 && i < 23)
            snprintf(body, sizeof body, "alpha replaced words");
        else
            snprintf(body, sizeof body, "%s common words here %s", i < 20 ? "alpha" : "beta", i % 3 ? "gamma" : "");
        put_article(b, id, "Title", body, "en");
    }
    assert_int_equal(hw_index_batch_commit(b, NULL), 0);
    const char *q = "alpha gamma";
    hw_search_query sq = {q, strlen(q), 50, NULL, HW_DOC_ANY, HW_SEARCH_NO_SNIPPETS};
    hw_search_result ra, rb;
    assert_int_equal(hw_index_search(sa, &sq, arena, &ra, NULL), 0);
    assert_int_equal(hw_index_search(sb, &sq, arena, &rb, NULL), 0);
    assert_int_equal(ra.n_hits, rb.n_hits);
    for (size_t i = 0; i < ra.n_hits; i++) {
        int found = 0;
        for (size_t j = 0; j < rb.n_hits; j++) {
            if (strcmp(ra.hits[i].id, rb.hits[j].id))
                continue;
            found = 1;
            if (fabs(ra.hits[i].score - rb.hits[j].score) > 1e-6 * rb.hits[j].score)
                fail_msg("%s: %.9f with deletions, %.9f rebuilt", ra.hits[i].id, ra.hits[i].score,
                         rb.hits[j].score);
        }
        assert_true(found);
    }
    hw_arena_destroy(arena);
    hw_searcher_destroy(sa);
    hw_searcher_destroy(sb);
    hw_index_destroy(a);
    hw_index_destroy(b);
    hw_index_reader_unregister();
}

/* Long bodies are kept compressed: an index that compresses and one that
 * does not give the same hits, scores, snippets and answers, through a
 * main build, a delta, and deletions and replacements after the build
 * (whose terms are read again from the compressed body); the compressed
 * one holds fewer bytes for the same text. */
static void test_compressed_bodies_read_as_text(void **state)
{
    (void)state;
    hw_index_reader_register();
    hw_index_options oz = {0}, op = {0};
    op.compress_min_bytes = UINT32_MAX;
    hw_index *ix[2];
    hw_searcher *sx[2];
    assert_int_equal(hw_index_create(&ix[0], &oz, NULL), 0);
    assert_int_equal(hw_index_create(&ix[1], &op, NULL), 0);
    for (int k = 0; k < 2; k++)
        assert_int_equal(hw_searcher_create(ix[k], &sx[k], NULL), 0);
    hw_arena *arena = hw_arena_create(0);
    static char body[4096];
    char id[16];
    char answer[2048];
    size_t o = 0;
    for (int i = 0; o + 64 < sizeof answer; i++)
        o += (size_t)snprintf(answer + o, sizeof answer - o, "step %d: open the settings page and choose reset. ", i);
    for (int k = 0; k < 2; k++) {
        uint64_t seed = 99;
        hw_index_batch_begin(ix[k]);
        for (int i = 0; i < 300; i++) {
            snprintf(id, sizeof id, "d%d", i);
            random_text(&seed, body, sizeof body, i % 10 == 0 ? 20 : 200 + i % 200, 400);
            put_article(ix[k], id, "Title", body, "en");
        }
        put_faq(ix[k], "faq-long", "How do I reset my router?", answer, NULL, 0);
        assert_int_equal(hw_index_batch_commit(ix[k], NULL), 0);
        /* after main: deletions, replacements, new documents in the delta */
        for (int i = 0; i < 300; i += 7) {
            snprintf(id, sizeof id, "d%d", i);
            assert_int_equal(hw_index_delete(ix[k], HW_DOC_ARTICLE, id, NULL), 0);
        }
        for (int i = 3; i < 300; i += 11) {
            snprintf(id, sizeof id, "d%d", i);
            random_text(&seed, body, sizeof body, 300, 400);
            put_article(ix[k], id, "Title again", body, "en");
        }
    }
    hw_index_stats st[2];
    for (int k = 0; k < 2; k++)
        hw_index_stats_get(ix[k], &st[k]);
    assert_int_equal(st[0].text_bytes, st[1].text_bytes);
    assert_int_equal(st[0].docs, st[1].docs);
    if (!(st[0].index_bytes + st[0].text_bytes / 4 < st[1].index_bytes))
        fail_msg("compressed %llu bytes, plain %llu, text %llu", (unsigned long long)st[0].index_bytes,
                 (unsigned long long)st[1].index_bytes, (unsigned long long)st[0].text_bytes);
    const char *queries[] = {"w1 w7 w30", "密码 w2", "w150 w151 w3", "重置密码", "w399 w0"};
    for (size_t qi = 0; qi < sizeof queries / sizeof *queries; qi++) {
        const char *q = queries[qi];
        hw_search_query sq = {q, strlen(q), 10, NULL, HW_DOC_ANY, 0};
        hw_search_result r[2];
        for (int k = 0; k < 2; k++)
            assert_int_equal(hw_index_search(sx[k], &sq, arena, &r[k], NULL), 0);
        assert_true(r[0].n_hits > 0);
        assert_int_equal(r[0].n_hits, r[1].n_hits);
        for (size_t i = 0; i < r[0].n_hits; i++) {
            assert_string_equal(r[0].hits[i].id, r[1].hits[i].id);
            assert_true(fabs(r[0].hits[i].score - r[1].hits[i].score) <= 1e-9 * r[1].hits[i].score);
            assert_string_equal(r[0].hits[i].snippet, r[1].hits[i].snippet);
        }
    }
    const char *aq = "How do I reset my router?";
    for (int k = 0; k < 2; k++) {
        hw_answer a;
        assert_int_equal(hw_index_answer(sx[k], aq, strlen(aq), NULL, 0, arena, &a, NULL), 0);
        assert_false(a.transfer);
        assert_string_equal(a.source_id, "faq-long");
        assert_string_equal(a.answer, answer);
    }
    hw_arena_destroy(arena);
    for (int k = 0; k < 2; k++) {
        hw_searcher_destroy(sx[k]);
        hw_index_destroy(ix[k]);
    }
    hw_index_reader_unregister();
}

/* A main build large enough to compute terms on several threads (4096
 * documents a thread) gives every document its terms, reading the long
 * bodies, kept compressed, on those threads (run under TSan too). */
static void test_large_build_uses_threads_correctly(void **state)
{
    (void)state;
    hw_index_reader_register();
    hw_index *idx;
    hw_searcher *s;
    assert_int_equal(hw_index_create(&idx, NULL, NULL), 0);
    assert_int_equal(hw_searcher_create(idx, &s, NULL), 0);
    hw_arena *arena = hw_arena_create(0);
    char id[16], body[1024];
    hw_index_batch_begin(idx);
    for (int i = 0; i < 9000; i++) {
        snprintf(id, sizeof id, "d%d", i);
        int o = snprintf(body, sizeof body, "word%d shared%d marker%dx", i % 50, i % 7, i);
        /* every other body long enough to be compressed by the build's threads */
        for (int w = 0; i % 2 == 0 && o < 900; w++)
            o += snprintf(body + o, sizeof body - (size_t)o, " filler%d", (i + w) % 300);
        put_article(idx, id, "Title", body, "en");
    }
    assert_int_equal(hw_index_batch_commit(idx, NULL), 0);
    hw_index_stats st;
    hw_index_stats_get(idx, &st);
    assert_int_equal(st.docs, 9000);
    for (int i = 0; i < 9000; i += 977) {
        char q[32];
        snprintf(q, sizeof q, "marker%dx", i);
        hw_search_query sq = {q, strlen(q), 3, NULL, HW_DOC_ANY, 0};
        hw_search_result r;
        assert_int_equal(hw_index_search(s, &sq, arena, &r, NULL), 0);
        assert_int_equal(r.n_hits, 1);
        snprintf(id, sizeof id, "d%d", i);
        assert_string_equal(r.hits[0].id, id);
        assert_non_null(strstr(r.hits[0].snippet, q));
        hw_arena_reset(arena);
    }
    hw_arena_destroy(arena);
    hw_searcher_destroy(s);
    hw_index_destroy(idx);
    hw_index_reader_unregister();
}

/* A synonym set makes a question whose words are not in the document
 * find it, in search and answer, at once and without a rebuild; replacing
 * the sets takes the effect away again. */
static void test_synonyms_apply_at_query_time(void **state)
{
    fixture *f = *state;
    put_article(f->idx, "a-6", "营业时间", "门店营业时间为每天 10:00-22:00，节假日照常营业。", "zh");
    const char *q = "门店几点开门";
    hw_answer before;
    hw_status st;
    assert_int_equal(hw_index_answer(f->s, q, strlen(q), "zh", 0, f->arena, &before, &st), 0);

    static const char *const terms[] = {"开门", "营业时间"};
    static const char *const en_terms[] = {"money back", "refund"};
    hw_synonym_set sets[] = {{"zh", terms, 2}, {"en", en_terms, 2}};
    assert_int_equal(hw_index_set_synonyms(f->idx, sets, 2, &st), 0);
    assert_top(f, q, "a-6");
    hw_answer a;
    assert_int_equal(hw_index_answer(f->s, q, strlen(q), "zh", 0, f->arena, &a, &st), 0);
    assert_string_equal(a.source_id, "a-6");
    assert_true(a.confidence > before.confidence);
    assert_int_equal(a.signals.synonyms_applied, 1);
    /* a set of another language does not apply */
    assert_int_equal(hw_index_answer(f->s, q, strlen(q), "en", 0, f->arena, &a, &st), 0);
    assert_int_equal(a.signals.synonyms_applied, 0);
    /* phrases: "money back" stands for refund */
    const char *eq = "can I have my money back";
    assert_int_equal(hw_index_answer(f->s, eq, strlen(eq), "en", 0, f->arena, &a, &st), 0);
    assert_int_equal(a.signals.synonyms_applied, 1);
    assert_string_equal(a.source_id, "f-3");

    assert_int_equal(hw_index_set_synonyms(f->idx, NULL, 0, &st), 0);
    assert_int_equal(hw_index_answer(f->s, q, strlen(q), "zh", 0, f->arena, &a, &st), 0);
    assert_int_equal(a.signals.synonyms_applied, 0);
    assert_true(a.confidence == before.confidence);
}

static void test_bad_synonym_sets_are_refused(void **state)
{
    fixture *f = *state;
    hw_status st;
    static const char *const one[] = {"refund"};
    static const char *const punct[] = {"refund", "?!"};
    static const char *const empty[] = {"refund", ""};
    static const char *const bad_utf8[] = {"refund", "\xff\xfe"};
    static const char *const good[] = {"退钱", "退款"};
    char long_term[66];
    memset(long_term, 'a', 65);
    long_term[65] = 0;
    const char *const too_long[] = {"refund", long_term};
    const char *many[HW_INDEX_MAX_SYN_TERMS + 1];
    for (size_t i = 0; i <= HW_INDEX_MAX_SYN_TERMS; i++)
        many[i] = "word";
    hw_synonym_set cases[] = {{"en", one, 1},      {"en", punct, 2},    {"en", empty, 2},
                              {"en", bad_utf8, 2}, {"en", too_long, 2}, {"en", many, HW_INDEX_MAX_SYN_TERMS + 1}};
    static const char *const want[] = {"terms", "no searchable word", "terms[1]", "UTF-8", "terms[1]", "terms"};
    assert_int_equal(hw_index_set_synonyms(f->idx, &(hw_synonym_set){"zh", good, 2}, 1, &st), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hw_synonym_set sets[2] = {{"zh", good, 2}, cases[i]};
        assert_int_equal(hw_index_set_synonyms(f->idx, sets, 2, &st), HW_EINVALID);
        if (!strstr(st.msg, want[i]) || !strstr(st.msg, "sets[1]"))
            fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, st.msg, want[i]);
    }
    /* the sets given before stay */
    hw_answer a;
    assert_int_equal(hw_index_answer(f->s, "我要退钱", strlen("我要退钱"), "zh", 0, f->arena, &a, &st), 0);
    assert_int_equal(a.signals.synonyms_applied, 1);
    assert_string_equal(a.source_id, "f-3");
}

/* An article's alternate questions make it the answer to a question in
 * customers' words, and weigh less than its title. */
static void test_article_alternate_questions(void **state)
{
    fixture *f = *state;
    hw_status st;
    const char *q = "why does the app ask for a code from my phone";
    hw_answer before, a;
    assert_int_equal(hw_index_answer(f->s, q, strlen(q), "en", 0, f->arena, &before, &st), 0);
    static const char *const alts[] = {"why does the app ask for a code from my phone"};
    hw_doc d = {HW_DOC_ARTICLE, "a-1", "Setting up two-factor authentication",
                "Open Settings, choose Security and scan the QR code with an authenticator app.", "en", alts, 1};
    assert_int_equal(hw_index_put(f->idx, &d, &st), 0);
    assert_int_equal(hw_index_answer(f->s, q, strlen(q), "en", 0, f->arena, &a, &st), 0);
    assert_string_equal(a.source_id, "a-1");
    assert_false(a.transfer);
    assert_true(a.confidence > before.confidence);
    assert_int_equal(a.signals.field, HW_MATCH_QUESTION);

    /* title 2.0 > alternate 1.5 > body 1.0: the same word ranks the
     * documents in that order */
    static const char *const alt2[] = {"zebrafish"};
    hw_doc t = {HW_DOC_ARTICLE, "z-title", "zebrafish", "care guide for aquarium owners", "en", NULL, 0};
    hw_doc al = {HW_DOC_ARTICLE, "z-alt", "aquarium care", "care guide for aquarium owners", "en", alt2, 1};
    hw_doc b = {HW_DOC_ARTICLE, "z-body", "aquarium care", "care guide for zebrafish owners", "en", NULL, 0};
    assert_int_equal(hw_index_put(f->idx, &b, &st), 0);
    assert_int_equal(hw_index_put(f->idx, &al, &st), 0);
    assert_int_equal(hw_index_put(f->idx, &t, &st), 0);
    hw_search_result r = search(f, "zebrafish", 3, NULL, HW_DOC_ANY, 0);
    assert_int_equal(r.n_hits, 3);
    assert_string_equal(r.hits[0].id, "z-title");
    assert_string_equal(r.hits[1].id, "z-alt");
    assert_string_equal(r.hits[2].id, "z-body");

    /* limits hold for articles too */
    const char *seventeen[HW_INDEX_MAX_ALT + 1];
    for (size_t i = 0; i <= HW_INDEX_MAX_ALT; i++)
        seventeen[i] = "question";
    hw_doc over = {HW_DOC_ARTICLE, "a-9", "t", "b", "en", seventeen, HW_INDEX_MAX_ALT + 1};
    assert_int_equal(hw_index_put(f->idx, &over, &st), HW_ETOOBIG);
}

static void test_stats_report_sizes(void **state)
{
    fixture *f = *state;
    hw_index_stats st;
    hw_index_stats_get(f->idx, &st);
    assert_int_equal(st.docs, 8);
    assert_int_equal(st.main_docs, 8);
    assert_true(st.terms > 20);
    assert_true(st.index_bytes > st.text_bytes);
    assert_true(st.postings_bytes > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_seed_faq_found_from_chinese_paraphrases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seed_faq_found_from_english_paraphrases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exact_faq_question_wins_outright, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unrelated_question_is_transferred, setup, teardown),
        cmocka_unit_test_setup_teardown(test_article_answer_is_a_passage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_from_tokens_equals_answer_from_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snippets_mark_matched_terms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fast_snippets_equal_full_snippets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_codes_are_searchable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filters_by_locale_and_kind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_and_replaced_documents_disappear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_queries_get_clear_statuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_documents_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats_report_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_synonyms_apply_at_query_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_synonym_sets_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_article_alternate_questions, setup, teardown),
        cmocka_unit_test(test_pruned_topk_equals_exhaustive_on_random_corpora),
        cmocka_unit_test(test_deleted_documents_leave_the_statistics),
        cmocka_unit_test(test_large_build_uses_threads_correctly),
        cmocka_unit_test(test_compressed_bodies_read_as_text),
        cmocka_unit_test(test_levels_score_like_an_index_built_from_scratch),
        cmocka_unit_test_setup_teardown(test_delete_in_a_frozen_delta, setup, teardown),
        cmocka_unit_test(test_changes_during_a_background_build_are_visible_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
