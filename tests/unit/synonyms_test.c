/*
 * synonyms_test: the synonyms module (server/domain/synonyms.h) below the
 * RPCs. A set is refused with a message naming the field for each rule of
 * SynonymSet (term count, empty, too long, bad UTF-8, punctuation or stop
 * words only, a duplicate once normalized, bad id or locale); every
 * starter set --demo seeds passes those rules; stored sets are loaded at
 * start, and a note carrying a synonyms effect makes another replica's
 * index reload them (through the real indexer thread), a deleted set
 * included. The expansion itself is the index's (index_test).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "server/domain/app.h"
#include "server/domain/effects.h"
#include "server/domain/notes.h"
#include "server/domain/synonyms.h"
#include "server/ops/demo.h"
#include "server/search/index.h"
#include "server/search/indexer.h"
#include "server/search/tokenize.h"
#include "tests/unit/store_test_util.h"

/* ------------------------------------------------------------ the rules */

static hw_tokenizer *tok;

static int tok_setup(void **state)
{
    (void)state;
    return hw_tokenizer_create(&tok, NULL);
}

static int tok_teardown(void **state)
{
    (void)state;
    hw_tokenizer_destroy(tok);
    return 0;
}

/* Checks a set of the given terms (and id, locale); returns the code and
 * leaves the message in msg. */
static int check(const char *id, const char *locale, const char *const *terms, size_t n, char *msg)
{
    Helpwire__V1__SynonymSet s = HELPWIRE__V1__SYNONYM_SET__INIT;
    s.id = (char *)id;
    s.locale = (char *)locale;
    s.terms = (char **)terms;
    s.n_terms = n;
    return hw_synonyms_check(tok, &s, msg, 256);
}

static void expect_refused(const char *id, const char *locale, const char *const *terms, size_t n,
                           const char *field)
{
    char msg[256];
    assert_int_equal(check(id, locale, terms, n, msg), HW_EINVALID);
    if (!strstr(msg, field))
        fail_msg("message \"%s\" does not name %s", msg, field);
}

static void good_sets_pass(void **state)
{
    (void)state;
    char msg[256];
    const char *zh[] = {"上班", "工作时间", "营业时间"};
    assert_int_equal(check("", "zh", zh, 3, msg), HW_OK);
    const char *en[] = {"refund", "money back"};
    assert_int_equal(check("en-refund:v2.1", "en-GB", en, 2, msg), HW_OK);
    const char *mixed[] = {"2FA", "two-factor authentication", "两步验证"};
    assert_int_equal(check("x", "", mixed, 3, msg), HW_OK); /* any language */
    /* 32 terms of 64 bytes each: the limits themselves */
    static char big[32][80];
    const char *many[32];
    for (int i = 0; i < 32; i++) {
        snprintf(big[i], sizeof big[i], "term%02d%058d", i, 0);
        assert_int_equal(strlen(big[i]), 64);
        many[i] = big[i];
    }
    assert_int_equal(check("", "", many, 32, msg), HW_OK);
}

static void each_rule_is_enforced_with_the_field_named(void **state)
{
    (void)state;
    const char *one[] = {"refund"};
    expect_refused("", "", one, 1, "set.terms: 1 given");
    expect_refused("", "", NULL, 0, "set.terms: 0 given");
    static char big[33][16];
    const char *many[33];
    for (int i = 0; i < 33; i++) {
        snprintf(big[i], sizeof big[i], "word%d", i);
        many[i] = big[i];
    }
    expect_refused("", "", many, 33, "set.terms: 33 given, 2 to 32 needed");
    const char *empty[] = {"refund", ""};
    expect_refused("", "", empty, 2, "set.terms[1]: empty");
    char long_term[66];
    memset(long_term, 'a', 65);
    long_term[65] = '\0';
    const char *too_long[] = {long_term, "refund"};
    expect_refused("", "", too_long, 2, "set.terms[0]: 65 bytes, at most 64");
    const char *bad_utf8[] = {"refund", "mon\xc3\x28y"};
    expect_refused("", "", bad_utf8, 2, "set.terms[1]: invalid UTF-8 at byte 3");
    const char *punct[] = {"refund", "?!", "money"};
    expect_refused("", "", punct, 3, "set.terms[1]: needs a letter or digit");
    const char *cjk_punct[] = {"。。", "退款"};
    expect_refused("", "", cjk_punct, 2, "set.terms[0]: needs a letter or digit");
    const char *stop[] = {"refund", "the and"};
    expect_refused("", "", stop, 2, "set.terms[1]: only words search ignores");
    const char *dup[] = {"refund", "money back", "refund"};
    expect_refused("", "", dup, 3, "set.terms[2]: the same as set.terms[0]");
    const char *dup_norm[] = {"Money Back", "refund", "money  back"}; /* case and spaces */
    expect_refused("", "", dup_norm, 3, "set.terms[2]: the same as set.terms[0]");
    const char *dup_stem[] = {"refunds", "refund"}; /* one English stem */
    expect_refused("", "", dup_stem, 2, "set.terms[1]: the same as set.terms[0]");
    const char *dup_width[] = {"ＲＥＦＵＮＤ", "refund"}; /* full-width, NFKC */
    expect_refused("", "", dup_width, 2, "set.terms[1]: the same as set.terms[0]");
    const char *ok[] = {"refund", "money back"};
    expect_refused("bad id", "", ok, 2, "set.id");
    char long_id[70];
    memset(long_id, 'i', 65);
    long_id[65] = '\0';
    expect_refused(long_id, "", ok, 2, "set.id");
    expect_refused("", "zh CN", ok, 2, "set.locale");
    expect_refused("", "a-very-long-locale", ok, 2, "set.locale");
    char msg[256];
    assert_int_equal(hw_synonyms_check(tok, NULL, msg, sizeof msg), HW_EINVALID);
    assert_string_equal(msg, "set: required");
}

/* Every starter set --demo seeds is one PutSynonymSet accepts, ids unique. */
static void starter_sets_pass_the_rules(void **state)
{
    (void)state;
    size_t n = 0;
    const hw_demo_synonym_set *d = hw_demo_synonym_sets(&n);
    assert_true(n >= 20 && n <= 40);
    size_t zh = 0, en = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < HW_DEMO_SYNONYM_TERMS_MAX && d[i].terms[k])
            k++;
        assert_null(d[i].terms[k]); /* terminated */
        char msg[256];
        if (check(d[i].id, d[i].locale, d[i].terms, k, msg) != HW_OK)
            fail_msg("starter set %s: %s", d[i].id, msg);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(d[i].id, d[j].id);
        zh += strcmp(d[i].locale, "zh") == 0;
        en += strcmp(d[i].locale, "en") == 0;
    }
    assert_true(zh >= 10 && en >= 10);
}

/* ------------------------------------------------ load and replication */

typedef struct fixture {
    char dir[PATH_MAX];
    hw_app app;
    hw_notes *notes;
    hw_synonyms *syn;
    hw_arena *arena;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->app.store = hw_test_open(hw_test_dir(f->dir, sizeof f->dir, "synonyms"), 1 << 22, 0);
    f->arena = hw_arena_create(0);
    if (!f->app.store || !f->arena || hw_index_create(&f->app.index, NULL, NULL) != 0 ||
        hw_synonyms_create(&f->syn, &f->app) != HW_OK || hw_notes_create(&f->notes, &f->app) != HW_OK)
        return -1;
    f->app.synonyms = f->syn;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    hw_indexer_stop(f->app.indexer);
    hw_synonyms_destroy(f->syn);
    hw_index_destroy(f->app.index);
    hw_notes_destroy(f->notes);
    hw_store_close(f->app.store);
    hw_arena_destroy(f->arena);
    free(f);
    return 0;
}

typedef struct set_write {
    const char *id;
    const char *terms[3];
    bool delete;
    uint64_t version; /* out */
} set_write;

static int set_write_fn(hw_store_txn *w, void *arg)
{
    set_write *s = arg;
    if (s->delete)
        return hw_store_kv_delete(w, HW_SYNONYMS_NS, s->id, strlen(s->id));
    Helpwire__V1__SynonymSet set = HELPWIRE__V1__SYNONYM_SET__INIT;
    set.id = (char *)s->id;
    set.locale = "en";
    set.terms = (char **)s->terms;
    set.n_terms = 2;
    int rc = hw_synonyms_put_in(w, &set, 1700000000000);
    s->version = set.version;
    return rc;
}

static void write_set(fixture *f, const char *id, bool delete)
{
    set_write s = {.id = id, .terms = {"alpha", "beta"}, .delete = delete};
    assert_int_equal(hw_store_write(f->app.store, set_write_fn, &s), HW_OK);
}

/* Hands the handler a note saying "synonym sets changed" (as another
 * replica's entry would) and waits until the indexer has nothing queued. */
static void replicate(fixture *f)
{
    hw_effects fx;
    hw_effects_begin(&fx, f->arena);
    hw_effects_synonyms_changed(&fx);
    void *note;
    size_t len;
    assert_int_equal(hw_effects_encode(&fx, f->arena, &note, &len), HW_OK);
    hw_notes_apply(f->notes, 1, note, len);
    for (int i = 0; i < 5000; i++) {
        hw_indexer_stats st;
        hw_indexer_stats_get(f->app.indexer, &st);
        if (st.queued == 0)
            return;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    fail_msg("the indexer did not reload within 5 s");
}

static void stored_sets_load_at_start_and_follow_notes(void **state)
{
    fixture *f = *state;
    write_set(f, "s-1", false);
    write_set(f, "s-2", false);
    set_write again = {.id = "s-2", .terms = {"gamma", "delta"}};
    assert_int_equal(hw_store_write(f->app.store, set_write_fn, &again), HW_OK);
    assert_int_equal(again.version, 2); /* put_in counts versions */

    size_t n = 99;
    char err[256];
    assert_int_equal(hw_synonyms_load(f->syn, &n, err, sizeof err), HW_OK);
    assert_int_equal(n, 2);
    assert_int_equal(hw_synonyms_count(f->syn), 2);

    /* No indexer yet: a note's reload is refused (the next start loads). */
    assert_int_equal(hw_synonyms_replicated_change(f->syn), HW_ECLOSED);
    assert_int_equal(hw_synonyms_replicated_change(NULL), HW_EINVALID);

    assert_int_equal(hw_indexer_start(f->app.index, &f->app.indexer), HW_OK);
    hw_notes_start(f->notes);
    write_set(f, "s-3", false);
    assert_int_equal(hw_synonyms_count(f->syn), 2); /* not before the note */
    replicate(f);
    assert_int_equal(hw_synonyms_count(f->syn), 3);
    write_set(f, "s-1", true);
    replicate(f);
    assert_int_equal(hw_synonyms_count(f->syn), 2);

    /* A burst of changes, one note each: the last count is right. */
    for (int i = 0; i < 50; i++) {
        char id[16];
        snprintf(id, sizeof id, "b-%d", i);
        write_set(f, id, false);
        hw_effects fx;
        hw_effects_begin(&fx, f->arena);
        hw_effects_synonyms_changed(&fx);
        void *note;
        size_t len;
        assert_int_equal(hw_effects_encode(&fx, f->arena, &note, &len), HW_OK);
        hw_notes_apply(f->notes, 2 + (uint64_t)i, note, len);
    }
    replicate(f);
    assert_int_equal(hw_synonyms_count(f->syn), 52);
}

/* A record that does not decode is skipped (and logged), not fatal. */
static int garbage_fn(hw_store_txn *w, void *arg)
{
    (void)arg;
    return hw_store_kv_put(w, HW_SYNONYMS_NS, "junk", 4, "\xff\xff\xff", 3);
}

static void undecodable_record_is_skipped(void **state)
{
    fixture *f = *state;
    write_set(f, "s-1", false);
    assert_int_equal(hw_store_write(f->app.store, garbage_fn, NULL), HW_OK);
    size_t n = 0;
    char err[256];
    assert_int_equal(hw_synonyms_load(f->syn, &n, err, sizeof err), HW_OK);
    assert_int_equal(n, 1);
}

int main(void)
{
    const struct CMUnitTest rules[] = {
        cmocka_unit_test(good_sets_pass),
        cmocka_unit_test(each_rule_is_enforced_with_the_field_named),
        cmocka_unit_test(starter_sets_pass_the_rules),
    };
    const struct CMUnitTest store[] = {
        cmocka_unit_test_setup_teardown(stored_sets_load_at_start_and_follow_notes, setup, teardown),
        cmocka_unit_test_setup_teardown(undecodable_record_is_skipped, setup, teardown),
    };
    int failed = cmocka_run_group_tests_name("rules", rules, tok_setup, tok_teardown);
    return failed + cmocka_run_group_tests_name("store", store, NULL, NULL);
}
