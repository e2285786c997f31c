/*
 * fuzz tokenize: the tokenizer (server/search/tokenize.c) and query
 * parsing in the index (server/search/index.c: hw_index_search and
 * hw_index_answer on a small index of Chinese and English documents).
 * Checks beyond "no crash": tokenize fails exactly when the input is not
 * valid UTF-8 (or too big), every token's source range lies in the input,
 * its hash is hw_term_hash of its text, and a search of an over-long query
 * fails with HW_ETOOBIG instead of reading past the limit.
 * The harness keeps its fixture in statics: libFuzzer calls one function.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/base/arena.h"
#include "server/base/errors.h"
#include "server/search/index.h"
#include "server/search/tokenize.h"

static hw_tokenizer *g_tok;
static hw_index *g_idx;
static hw_searcher *g_search;
static hw_arena *g_arena;

static void put(hw_doc_kind kind, const char *id, const char *title, const char *body, const char *locale)
{
    static const char *const alts[] = {"How do I reset my password?", "忘记密码怎么办"};
    hw_doc d = {kind, id, title, body, locale, kind == HW_DOC_FAQ ? alts : NULL, kind == HW_DOC_FAQ ? 2 : 0};
    if (hw_index_put(g_idx, &d, NULL) != 0)
        abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    hw_index_reader_register();
    if (hw_tokenizer_create(&g_tok, NULL) != 0 || hw_index_create(&g_idx, NULL, NULL) != 0 ||
        hw_searcher_create(g_idx, &g_search, NULL) != 0 || !(g_arena = hw_arena_create(0)))
        abort();
    put(HW_DOC_FAQ, "f-1", "如何重置密码", "在登录页点击“忘记密码”。Click \"Forgot password\".", "zh");
    put(HW_DOC_ARTICLE, "a-1", "Setting up two-factor authentication",
        "Open Settings, Security, and scan the QR code with an authenticator app.", "en");
    put(HW_DOC_ARTICLE, "a-2", "Refunds", "Refunds reach your card within 5-10 business days.", "en");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_tok)
        LLVMFuzzerInitialize(NULL, NULL);
    const char *text = (const char *)data;
    hw_status st;
    const hw_token *toks = NULL;
    size_t n = 0;
    int valid = hw_utf8_validate(text, size, &st) == 0;
    int rc = hw_tokenize(g_tok, text, size, &toks, &n, &st);
    if ((rc == 0) != valid)
        abort();
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (toks[i].start > toks[i].end || toks[i].end > size || toks[i].len == 0)
            abort();
        if (toks[i].hash != hw_term_hash(toks[i].text, toks[i].len))
            abort();
    }

    hw_search_query q = {.text = text, .len = size, .top_k = 3, .locale = NULL, .kind = HW_DOC_ANY};
    if (size && data[0] & 1)
        q.locale = "en";
    hw_search_result r;
    rc = hw_index_search(g_search, &q, g_arena, &r, &st);
    if (size > HW_INDEX_MAX_QUERY && valid && rc != HW_ETOOBIG)
        abort();
    if (rc == 0 && r.n_hits > 3)
        abort();
    hw_arena_reset(g_arena);

    hw_answer a;
    rc = hw_index_answer(g_search, text, size, size && data[0] & 2 ? "zh" : NULL, 0, g_arena, &a, &st);
    (void)rc;
    hw_arena_reset(g_arena);
    return 0;
}
