/*
 * spool_test: the intake spool's promises (spool.h): entries come back in
 * the order they went in, a batch is all or nothing, the limits refuse an
 * append whole, what was appended survives a close, a kill -9 and another
 * process appending at the same time, and the drainer's entry encoding
 * carries every field.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "clients/lib/drain.h"
#include "clients/lib/spool.h"
#include "clients/lib/testdir.h"

static char *make_dir(void)
{
    char *d = br_testdir_make("spool");
    assert_non_null(d);
    return d;
}

static br_spool *open_spool(const char *dir, uint64_t entries, uint64_t bytes)
{
    br_spool_limits lim = {entries, bytes};
    br_spool *s = NULL;
    char err[600];
    int rc = br_spool_open(&s, dir, "test", &lim, err, sizeof err);
    if (rc != 0)
        fail_msg("open: %s", err);
    return s;
}

static void append_text(br_spool *s, const char *text)
{
    br_spool_item it = {text, strlen(text)};
    char err[600];
    int rc = br_spool_append(s, &it, 1, NULL, err, sizeof err);
    if (rc != 0)
        fail_msg("append %s: %s", text, err);
}

/* Peeks and removes the oldest entry; returns it (free it), NULL when empty. */
static char *take(br_spool *s)
{
    uint64_t seq;
    char *data = NULL;
    size_t len;
    char err[600];
    int rc = br_spool_peek(s, &seq, &data, &len, err, sizeof err);
    if (rc == BR_SPOOL_EMPTY)
        return NULL;
    assert_int_equal(rc, 0);
    assert_int_equal(strlen(data), len);
    assert_int_equal(br_spool_remove(s, seq, err, sizeof err), 0);
    return data;
}

static void entries_come_back_oldest_first_and_go_when_removed(void **unused)
{
    char *dir = make_dir();
    br_spool *s = open_spool(dir, 100, 1 << 20);
    char err[600];
    uint64_t seq = 0;
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(br_spool_peek(s, &seq, &data, &len, err, sizeof err), BR_SPOOL_EMPTY);
    append_text(s, "one");
    append_text(s, "two");
    append_text(s, "three");
    assert_int_equal(br_spool_count(s), 3);
    /* Peek does not remove. */
    assert_int_equal(br_spool_peek(s, &seq, &data, &len, err, sizeof err), 0);
    assert_string_equal(data, "one");
    free(data);
    const char *want[] = {"one", "two", "three"};
    for (int i = 0; i < 3; i++) {
        char *got = take(s);
        assert_non_null(got);
        assert_string_equal(got, want[i]);
        free(got);
    }
    assert_null(take(s));
    assert_int_equal(br_spool_count(s), 0);
    /* Removing what is gone is not an error (another process took it). */
    assert_int_equal(br_spool_remove(s, 12345, err, sizeof err), 0);
    br_spool_close(s);
    free(dir);
}

static void a_full_spool_refuses_the_whole_append_and_takes_again_after_a_removal(void **unused)
{
    char *dir = make_dir();
    br_spool *s = open_spool(dir, 3, 20);
    char err[600];
    br_spool_item two[] = {{"aaaa", 4}, {"bbbb", 4}};
    assert_int_equal(br_spool_append(s, two, 2, NULL, err, sizeof err), 0);
    /* By entries: 2 + 2 > 3, and neither of the two is written. */
    br_spool_item more[] = {{"c", 1}, {"d", 1}};
    assert_int_equal(br_spool_append(s, more, 2, NULL, err, sizeof err), BR_SPOOL_FULL);
    assert_non_null(strstr(err, "full"));
    assert_int_equal(br_spool_count(s), 2);
    /* By bytes: 8 + 13 > 20. */
    br_spool_item big = {"0123456789abc", 13};
    assert_int_equal(br_spool_append(s, &big, 1, NULL, err, sizeof err), BR_SPOOL_FULL);
    assert_int_equal(br_spool_count(s), 2);
    br_spool_item fits = {"012345678901", 12}; /* exactly 20 */
    assert_int_equal(br_spool_append(s, &fits, 1, NULL, err, sizeof err), 0);
    assert_int_equal(br_spool_append(s, &more[0], 1, NULL, err, sizeof err), BR_SPOOL_FULL);
    char *got = take(s);
    assert_string_equal(got, "aaaa");
    free(got);
    assert_int_equal(br_spool_append(s, &more[0], 1, NULL, err, sizeof err), 0);
    const char *want[] = {"bbbb", "012345678901", "c"};
    for (int i = 0; i < 3; i++) {
        got = take(s);
        assert_string_equal(got, want[i]);
        free(got);
    }
    br_spool_close(s);
    free(dir);
}

static void entries_survive_a_close_and_sequences_never_repeat(void **unused)
{
    char *dir = make_dir();
    br_spool *s = open_spool(dir, 100, 1 << 20);
    char err[600];
    uint64_t first = 0, again = 0;
    br_spool_item it = {"x", 1};
    assert_int_equal(br_spool_append(s, &it, 1, &first, err, sizeof err), 0);
    char *got = take(s);
    free(got);
    append_text(s, "kept");
    br_spool_close(s);
    s = open_spool(dir, 100, 1 << 20);
    got = take(s);
    assert_non_null(got);
    assert_string_equal(got, "kept");
    free(got);
    assert_int_equal(br_spool_append(s, &it, 1, &again, err, sizeof err), 0);
    assert_true(again > first + 1);
    br_spool_close(s);
    free(dir);
}

static void what_a_killed_process_appended_is_there_in_order(void **unused)
{
    char *dir = make_dir();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        br_spool *s = open_spool(dir, 1000, 1 << 20);
        char text[32];
        for (int i = 0; i < 50; i++) {
            snprintf(text, sizeof text, "m%02d", i);
            br_spool_item it = {text, strlen(text)};
            char err[600];
            if (br_spool_append(s, &it, 1, NULL, err, sizeof err) != 0)
                _exit(3);
        }
        raise(SIGKILL); /* no close, no exit handlers */
        _exit(4);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    br_spool *s = open_spool(dir, 1000, 1 << 20);
    assert_int_equal(br_spool_count(s), 50);
    for (int i = 0; i < 50; i++) {
        char want[32];
        snprintf(want, sizeof want, "m%02d", i);
        char *got = take(s);
        assert_non_null(got);
        assert_string_equal(got, want);
        free(got);
    }
    br_spool_close(s);
    free(dir);
}

static void two_processes_append_to_one_spool_and_nothing_is_lost(void **unused)
{
    char *dir = make_dir();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        br_spool *s = open_spool(dir, 1000, 1 << 20);
        for (int i = 0; i < 100; i++) {
            br_spool_item it = {"child", 5};
            char err[600];
            if (br_spool_append(s, &it, 1, NULL, err, sizeof err) != 0)
                _exit(3);
        }
        br_spool_close(s);
        _exit(0);
    }
    br_spool *s = open_spool(dir, 1000, 1 << 20);
    for (int i = 0; i < 100; i++)
        append_text(s, "parent");
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(br_spool_count(s), 200);
    int child = 0, parent = 0;
    for (char *got; (got = take(s)); free(got))
        strcmp(got, "child") == 0 ? child++ : parent++;
    assert_int_equal(child, 100);
    assert_int_equal(parent, 100);
    br_spool_close(s);
    free(dir);
}

static void an_unusable_directory_is_refused_naming_it(void **unused)
{
    br_spool_limits lim = {10, 100};
    br_spool *s = NULL;
    char err[600];
    assert_int_equal(br_spool_open(&s, "/proc/no-such-dir/x", "test", &lim, err, sizeof err), BR_SPOOL_ERR);
    assert_null(s);
    assert_non_null(strstr(err, "/proc/no-such-dir/x"));
    br_spool_limits zero = {0, 100};
    assert_int_equal(br_spool_open(&s, "/tmp", "test", &zero, err, sizeof err), BR_SPOOL_ERR);
}

static void the_entry_encoding_carries_every_field(void **unused)
{
    br_inbound in = {
        HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP, "4915", "Bea \"B\"", "你好\nhi", "wamid.1", "de",
        "{\"id\":\"m1\"}", NULL, 0, "bea@example.com"};
    size_t len = 0;
    char *s = br_drain_encode(&in, 1700000000123, &len);
    assert_non_null(s);
    assert_int_equal(strlen(s), len);
    json_t *j = json_loads(s, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "channel")),
                     HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP);
    assert_string_equal(json_string_value(json_object_get(j, "user")), "4915");
    assert_string_equal(json_string_value(json_object_get(j, "name")), "Bea \"B\"");
    assert_string_equal(json_string_value(json_object_get(j, "media")), "{\"id\":\"m1\"}");
    assert_string_equal(json_string_value(json_object_get(j, "text")), "你好\nhi");
    assert_string_equal(json_string_value(json_object_get(j, "message_id")), "wamid.1");
    assert_string_equal(json_string_value(json_object_get(j, "locale")), "de");
    assert_string_equal(json_string_value(json_object_get(j, "contact_email")), "bea@example.com");
    assert_int_equal(json_integer_value(json_object_get(j, "received_ms")), 1700000000123);
    json_decref(j);
    free(s);
}

/* br_spool_next passes over entries a reader holds back: the entry after a
 * sequence, skipping removed ones, EMPTY past the last. */
static void next_goes_past_held_entries_in_order(void **unused)
{
    (void)unused;
    char *dir = make_dir();
    br_spool *s = open_spool(dir, 100, 1 << 20);
    append_text(s, "a1");
    append_text(s, "b1");
    append_text(s, "a2");
    append_text(s, "b2");
    char err[600], *data = NULL;
    uint64_t seq = 0, first = 0;
    size_t len;
    assert_int_equal(br_spool_next(s, 0, &first, &data, &len, err, sizeof err), 0);
    assert_string_equal(data, "a1");
    free(data);
    /* a1 held: the next is b1; removing b1, the one after a1 is a2 */
    assert_int_equal(br_spool_next(s, first, &seq, &data, &len, err, sizeof err), 0);
    assert_string_equal(data, "b1");
    free(data);
    assert_int_equal(br_spool_remove(s, seq, err, sizeof err), 0);
    assert_int_equal(br_spool_next(s, first, &seq, &data, &len, err, sizeof err), 0);
    assert_string_equal(data, "a2");
    free(data);
    assert_int_equal(br_spool_next(s, seq, &seq, &data, &len, err, sizeof err), 0);
    assert_string_equal(data, "b2");
    free(data);
    assert_int_equal(br_spool_next(s, seq, &seq, &data, &len, err, sizeof err), BR_SPOOL_EMPTY);
    assert_int_equal(br_spool_next(s, UINT64_MAX, &seq, &data, &len, err, sizeof err), BR_SPOOL_EMPTY);
    /* peek is still the oldest */
    assert_int_equal(br_spool_peek(s, &seq, &data, &len, err, sizeof err), 0);
    assert_int_equal(seq, first);
    assert_string_equal(data, "a1");
    free(data);
    br_spool_close(s);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(next_goes_past_held_entries_in_order),
        cmocka_unit_test(entries_come_back_oldest_first_and_go_when_removed),
        cmocka_unit_test(a_full_spool_refuses_the_whole_append_and_takes_again_after_a_removal),
        cmocka_unit_test(entries_survive_a_close_and_sequences_never_repeat),
        cmocka_unit_test(what_a_killed_process_appended_is_there_in_order),
        cmocka_unit_test(two_processes_append_to_one_spool_and_nothing_is_lost),
        cmocka_unit_test(an_unusable_directory_is_refused_naming_it),
        cmocka_unit_test(the_entry_encoding_carries_every_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
