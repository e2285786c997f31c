/*
 * history_test: the web chat's durable history (history.h): entries come
 * back in order with increasing ids, per visitor, across a reopen; a dedupe
 * key stores a redelivery once; the per-visitor bound drops the oldest;
 * paging and the replies-only view; a removed entry is gone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "clients/lib/testdir.h"
#include "clients/webchat/history.h"

#define ANA "AnaAnaAnaAnaAnaAnaAnaAna"
#define BEN "BenBenBenBenBenBenBenBen"

static char *make_dir(void)
{
    char *d = br_testdir_make("history");
    assert_non_null(d);
    return d;
}

static wc_history *open_history(const char *dir, size_t max)
{
    wc_history *h = NULL;
    char err[600];
    if (wc_history_open(&h, dir, max, err, sizeof err) != 0)
        fail_msg("open: %s", err);
    return h;
}

/* Appends {"text": text}; returns the rc, the id in *id. */
static int add(wc_history *h, const char *visitor, const char *key, bool reply, const char *text,
               uint64_t *id)
{
    json_t *e = json_pack("{s:s}", "text", text);
    char err[600];
    int rc = wc_history_append(h, visitor, key, reply, e, id, err, sizeof err);
    json_decref(e);
    return rc;
}

/* The texts of visitor's entries after `after`, joined by ",". */
static void texts(wc_history *h, const char *visitor, uint64_t after, bool replies_only, int max, char *out,
                  size_t n, bool *more)
{
    wc_entry ev[64];
    int got = wc_history_list(h, visitor, after, replies_only, ev, max, more);
    assert_true(got >= 0);
    out[0] = '\0';
    uint64_t last = after;
    for (int i = 0; i < got; i++) {
        json_t *j = json_loads(ev[i].json, 0, NULL);
        assert_non_null(j);
        assert_int_equal(json_integer_value(json_object_get(j, "id")), ev[i].id);
        assert_true(ev[i].id > last); /* increasing */
        last = ev[i].id;
        if (i)
            strncat(out, ",", n - strlen(out) - 1);
        strncat(out, json_string_value(json_object_get(j, "text")), n - strlen(out) - 1);
        json_decref(j);
        free(ev[i].json);
    }
}

static void a_conversation_comes_back_in_order_per_visitor_after_a_reopen(void **unused)
{
    char *dir = make_dir();
    wc_history *h = open_history(dir, 100);
    uint64_t id = 0, first = 0;
    assert_int_equal(add(h, ANA, "msg:a1", false, "hi", &first), 0);
    assert_int_equal(add(h, BEN, NULL, false, "ben's", &id), 0);
    assert_int_equal(add(h, ANA, "seq:1", true, "hello Ana", &id), 0);
    assert_int_equal(add(h, ANA, "msg:a2", false, "thanks", &id), 0);
    wc_history_close(h);
    h = open_history(dir, 100);
    char buf[512];
    bool more = true;
    texts(h, ANA, 0, false, 64, buf, sizeof buf, &more);
    assert_string_equal(buf, "hi,hello Ana,thanks");
    assert_false(more);
    texts(h, BEN, 0, false, 64, buf, sizeof buf, NULL);
    assert_string_equal(buf, "ben's");
    /* Only the replies, for the live stream; and after an id. */
    texts(h, ANA, 0, true, 64, buf, sizeof buf, NULL);
    assert_string_equal(buf, "hello Ana");
    texts(h, ANA, first, false, 64, buf, sizeof buf, NULL);
    assert_string_equal(buf, "hello Ana,thanks");
    /* Ids go on increasing after the reopen. */
    uint64_t later = 0;
    assert_int_equal(add(h, ANA, NULL, true, "more", &later), 0);
    assert_true(later > id);
    wc_history_close(h);
    free(dir);
}

static void a_redelivery_is_stored_once_under_its_first_id(void **unused)
{
    char *dir = make_dir();
    wc_history *h = open_history(dir, 100);
    uint64_t a = 0, b = 0;
    assert_int_equal(add(h, ANA, "seq:7", true, "reply", &a), 0);
    assert_int_equal(add(h, ANA, "seq:7", true, "reply again", &b), 1);
    assert_int_equal(a, b);
    char buf[512];
    texts(h, ANA, 0, false, 64, buf, sizeof buf, NULL);
    assert_string_equal(buf, "reply");
    wc_history_close(h);
    free(dir);
}

static void each_visitor_keeps_the_last_entries_and_pages_through_them(void **unused)
{
    char *dir = make_dir();
    wc_history *h = open_history(dir, 5);
    uint64_t id;
    char text[16], key[16];
    for (int i = 1; i <= 8; i++) {
        snprintf(text, sizeof text, "m%d", i);
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(add(h, ANA, key, true, text, &id), 0);
    }
    assert_int_equal(add(h, BEN, NULL, true, "b1", &id), 0);
    char buf[512];
    bool more = false;
    texts(h, ANA, 0, false, 3, buf, sizeof buf, &more);
    assert_string_equal(buf, "m4,m5,m6");
    assert_true(more);
    wc_entry ev[3];
    int n = wc_history_list(h, ANA, 0, false, ev, 3, NULL);
    assert_int_equal(n, 3);
    uint64_t last = ev[2].id;
    for (int i = 0; i < n; i++)
        free(ev[i].json);
    texts(h, ANA, last, false, 3, buf, sizeof buf, &more);
    assert_string_equal(buf, "m7,m8");
    assert_false(more);
    /* A dropped entry's key is free again; a kept one is still held. */
    assert_int_equal(add(h, ANA, "k8", true, "dup", &id), 1);
    assert_int_equal(add(h, ANA, "k1", true, "m1 again", &id), 0);
    texts(h, BEN, 0, false, 64, buf, sizeof buf, NULL);
    assert_string_equal(buf, "b1");
    wc_history_close(h);
    free(dir);
}

static void a_removed_entry_is_gone_with_its_key(void **unused)
{
    char *dir = make_dir();
    wc_history *h = open_history(dir, 100);
    uint64_t a, b;
    char err[600];
    assert_int_equal(add(h, ANA, "msg:x", false, "refused", &a), 0);
    assert_int_equal(add(h, ANA, NULL, false, "kept", &b), 0);
    assert_int_equal(wc_history_remove(h, ANA, a, err, sizeof err), 0);
    assert_int_equal(wc_history_remove(h, ANA, a, err, sizeof err), 0); /* already gone */
    char buf[512];
    texts(h, ANA, 0, false, 64, buf, sizeof buf, NULL);
    assert_string_equal(buf, "kept");
    assert_int_equal(add(h, ANA, "msg:x", false, "sent again", &a), 0);
    wc_history_close(h);
    free(dir);
}

static void bad_input_is_refused(void **unused)
{
    char *dir = make_dir();
    wc_history *h = open_history(dir, 10);
    uint64_t id;
    char long_id[100];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    assert_int_equal(add(h, long_id, NULL, false, "x", &id), -1);
    assert_int_equal(add(h, "", NULL, false, "x", &id), -1);
    char err[600];
    json_t *arr = json_array();
    assert_int_equal(wc_history_append(h, ANA, NULL, false, arr, &id, err, sizeof err), -1);
    json_decref(arr);
    wc_entry ev[1];
    assert_int_equal(wc_history_list(h, long_id, 0, false, ev, 1, NULL), -1);
    wc_history *none = NULL;
    assert_int_equal(wc_history_open(&none, "/proc/nope/x", 10, err, sizeof err), -1);
    assert_non_null(strstr(err, "/proc/nope/x"));
    wc_history_close(h);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_conversation_comes_back_in_order_per_visitor_after_a_reopen),
        cmocka_unit_test(a_redelivery_is_stored_once_under_its_first_id),
        cmocka_unit_test(each_visitor_keeps_the_last_entries_and_pages_through_them),
        cmocka_unit_test(a_removed_entry_is_gone_with_its_key),
        cmocka_unit_test(bad_input_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
