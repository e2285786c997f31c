/*
 * bridge_lib_test: the bridges' shared helpers that need no network:
 * dedupe's LRU bound, backoff's bounds, config parsing from environment and
 * flags, log quoting, HMAC and constant-time comparison, the atomic
 * state file, and the dead-letter file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "clients/lib/backoff.h"
#include "clients/lib/client.h"
#include "clients/lib/config.h"
#include "clients/lib/deadletter.h"
#include "clients/lib/dedupe.h"
#include "clients/lib/secure.h"
#include "clients/lib/state.h"
#include "server/base/log.h"

static void dedupe_reports_repeats_and_evicts_least_recent(void **unused)
{
    br_dedupe *d = br_dedupe_create(3);
    assert_non_null(d);
    assert_int_equal(br_dedupe_add(d, "a"), 0);
    assert_int_equal(br_dedupe_add(d, "b"), 0);
    assert_int_equal(br_dedupe_add(d, "c"), 0);
    assert_int_equal(br_dedupe_add(d, "a"), 1); /* a becomes most recent */
    assert_int_equal(br_dedupe_add(d, "d"), 0); /* evicts b */
    assert_int_equal(br_dedupe_size(d), 3);
    assert_false(br_dedupe_contains(d, "b"));
    assert_true(br_dedupe_contains(d, "a"));
    assert_true(br_dedupe_contains(d, "c"));
    br_dedupe_remove(d, "c");
    assert_false(br_dedupe_contains(d, "c"));
    assert_int_equal(br_dedupe_add(d, "c"), 0);
    br_dedupe_destroy(d);
}

static void dedupe_holds_many_keys_within_capacity(void **unused)
{
    br_dedupe *d = br_dedupe_create(1000);
    char k[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof k, "msg-%d", i);
        assert_int_equal(br_dedupe_add(d, k), 0);
    }
    assert_int_equal(br_dedupe_size(d), 1000);
    assert_true(br_dedupe_contains(d, "msg-4999"));
    assert_true(br_dedupe_contains(d, "msg-4000"));
    assert_false(br_dedupe_contains(d, "msg-3999"));
    br_dedupe_destroy(d);
}

static void backoff_doubles_with_jitter_up_to_max_and_resets(void **unused)
{
    br_backoff b;
    br_backoff_init(&b, 100, 1000, 42);
    int ceilings[] = {100, 200, 400, 800, 1000, 1000};
    for (size_t i = 0; i < sizeof ceilings / sizeof ceilings[0]; i++) {
        int d = br_backoff_next_ms(&b);
        assert_in_range(d, ceilings[i] / 2, ceilings[i]);
    }
    br_backoff_reset(&b);
    assert_in_range(br_backoff_next_ms(&b), 50, 100);
}

static void config_reads_env_then_flags_and_rejects_bad_input(void **unused)
{
    br_common c;
    br_common_defaults(&c);
    const char *base = "https://default";
    int poll = 30;
    bool webhook = false;
    br_option opts[] = {
        BR_COMMON_OPTIONS(&c),
        {"api-base", "TEST_API_BASE", BR_OPT_STRING, &base, 0, 0, "URL", "API base."},
        {"poll", NULL, BR_OPT_INT, &poll, 0, 50, "S", "Poll."},
        {"webhook", NULL, BR_OPT_BOOL, &webhook, 0, 0, NULL, "Webhook."},
    };
    size_t n = sizeof opts / sizeof opts[0];
    char err[256];
    setenv("TEST_API_BASE", "http://env", 1);
    setenv("HELPWIRE_TOKEN", "s3cret", 1);
    char *argv1[] = {"prog", "--poll=5", "--webhook", "--helpwire", "127.0.0.1:9"};
    assert_int_equal(br_config_parse(opts, n, 5, argv1, err, sizeof err), BR_CONFIG_OK);
    assert_string_equal(base, "http://env");
    assert_int_equal(poll, 5);
    assert_true(webhook);
    assert_string_equal(c.helpwire, "127.0.0.1:9");
    assert_int_equal(br_common_finish(&c, err, sizeof err), 0);
    assert_string_equal(c.token, "s3cret");
    br_common_release(&c);

    char *argv2[] = {"prog", "--api-base", "http://flag"};
    assert_int_equal(br_config_parse(opts, n, 3, argv2, err, sizeof err), BR_CONFIG_OK);
    assert_string_equal(base, "http://flag");

    char *argv3[] = {"prog", "--nope"};
    assert_int_equal(br_config_parse(opts, n, 2, argv3, err, sizeof err), BR_CONFIG_ERROR);
    assert_non_null(strstr(err, "--nope"));
    char *argv4[] = {"prog", "--poll", "99"};
    assert_int_equal(br_config_parse(opts, n, 3, argv4, err, sizeof err), BR_CONFIG_ERROR);
    assert_non_null(strstr(err, "between 0 and 50"));
    char *argv5[] = {"prog", "--poll"};
    assert_int_equal(br_config_parse(opts, n, 2, argv5, err, sizeof err), BR_CONFIG_ERROR);
    char *argv6[] = {"prog", "--help"};
    assert_int_equal(br_config_parse(opts, n, 2, argv6, err, sizeof err), BR_CONFIG_HELP);
    unsetenv("TEST_API_BASE");
    unsetenv("HELPWIRE_TOKEN");
}

static void token_file_wins_over_environment(void **unused)
{
    char path[] = "/tmp/br_token_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "from-file\n", 10), 10);
    close(fd);
    br_common c;
    br_common_defaults(&c);
    c.token_env = "from-env";
    c.token_file = path;
    char err[256];
    assert_int_equal(br_common_finish(&c, err, sizeof err), 0);
    assert_string_equal(c.token, "from-file");
    br_common_release(&c);
    unlink(path);
    c.token_file = path;
    assert_int_equal(br_common_finish(&c, err, sizeof err), -1);
    assert_null(strstr(err, "from-env"));
}

static void config_checks_required_options_in_order_and_paths(void **unused)
{
    const char *id = NULL, *secret = NULL, *path = "/default";
    br_option opts[] = {
        {"id", NULL, BR_OPT_REQUIRED, &id, 0, 0, "ID", "Id."},
        {NULL, "TEST_SECRET", BR_OPT_REQUIRED, &secret, 0, 0, "SECRET", "Secret."},
        {"path", NULL, BR_OPT_PATH, &path, 0, 0, "PATH", "Path."},
    };
    size_t n = sizeof opts / sizeof opts[0];
    char err[256];
    unsetenv("TEST_SECRET");
    char *none[] = {"prog"};
    assert_int_equal(br_config_parse(opts, n, 1, none, err, sizeof err), BR_CONFIG_ERROR);
    assert_string_equal(err, "--id is required");
    char *help[] = {"prog", "--help"};
    assert_int_equal(br_config_parse(opts, n, 2, help, err, sizeof err), BR_CONFIG_HELP);
    char *with_id[] = {"prog", "--id", "7"};
    assert_int_equal(br_config_parse(opts, n, 3, with_id, err, sizeof err), BR_CONFIG_ERROR);
    assert_string_equal(err, "TEST_SECRET is required");
    setenv("TEST_SECRET", "s", 1);
    assert_int_equal(br_config_parse(opts, n, 3, with_id, err, sizeof err), BR_CONFIG_OK);
    char *bad_path[] = {"prog", "--id", "7", "--path", "hook"};
    assert_int_equal(br_config_parse(opts, n, 5, bad_path, err, sizeof err), BR_CONFIG_ERROR);
    assert_string_equal(err, "--path must start with /");
    char *good_path[] = {"prog", "--id=7", "--path=/hook"};
    assert_int_equal(br_config_parse(opts, n, 3, good_path, err, sizeof err), BR_CONFIG_OK);
    assert_string_equal(path, "/hook");
    unsetenv("TEST_SECRET");
}

static void secret_comes_from_the_file_else_the_environment_else_nowhere(void **unused)
{
    char path[] = "/tmp/br_secret_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "file-secret\n", 12), 12);
    close(fd);
    char *s = NULL, err[256];
    assert_int_equal(hw_client_secret_load(path, "env-secret", "x-file", &s, err, sizeof err), 0);
    assert_string_equal(s, "file-secret");
    hw_client_secret_free(&s);
    assert_null(s);
    assert_int_equal(hw_client_secret_load(NULL, "env-secret", "x-file", &s, err, sizeof err), 0);
    assert_string_equal(s, "env-secret");
    hw_client_secret_free(&s);
    assert_int_equal(hw_client_secret_load("", "", "x-file", &s, err, sizeof err), 0);
    assert_null(s);
    unlink(path);
    assert_int_equal(hw_client_secret_load(path, "env-secret", "x-file", &s, err, sizeof err), -1);
    assert_null(s);
    assert_int_equal(strncmp(err, "--x-file: ", 10), 0);
    assert_non_null(strstr(err, path));
    assert_null(strstr(err, "env-secret"));
}

static void log_quote_escapes_only_when_needed(void **unused)
{
    char buf[64];
    assert_string_equal(hw_log_quote("plain", buf, sizeof buf), "plain");
    assert_string_equal(hw_log_quote("a b", buf, sizeof buf), "\"a b\"");
    assert_string_equal(hw_log_quote("x=\"y\"\n", buf, sizeof buf), "\"x=\\\"y\\\"\\x0a\"");
    assert_string_equal(hw_log_quote("", buf, sizeof buf), "\"\"");
    assert_string_equal(hw_log_quote(NULL, buf, sizeof buf), "\"\"");
    assert_string_equal(hw_log_quote("del\x7f", buf, sizeof buf), "\"del\\x7f\"");
    char small[8];
    hw_log_quote("a long value with spaces", small, sizeof small);
    assert_true(strlen(small) < sizeof small);
    assert_int_equal(small[strlen(small) - 1], '"');
}

/* Reads what the logger wrote to the pipe p[0] (one line). */
static void read_line(int fd, char *buf, size_t n)
{
    ssize_t got = read(fd, buf, n - 1);
    assert_true(got > 0);
    buf[got] = '\0';
}

static void log_component_field_follows_the_level_and_server_lines_have_none(void **unused)
{
    int p[2];
    char line[512];
    assert_int_equal(pipe(p), 0);
    hw_log *bridge = hw_log_create_component(p[1], HW_LOG_INFO, false, "bridge", "telegram");
    hw_log *server = hw_log_create(p[1], HW_LOG_INFO, false);
    assert_non_null(bridge);
    assert_non_null(server);

    hw_log_event(bridge, HW_LOG_INFO, "routed", "chat=%d", 42);
    read_line(p[0], line, sizeof line);
    assert_non_null(strstr(line, " level=info bridge=telegram event=routed chat=42\n"));
    assert_int_equal(strncmp(line, "ts=", 3), 0);

    hw_log_event(server, HW_LOG_WARN, "listening", "addr=%s", "127.0.0.1:1");
    read_line(p[0], line, sizeof line);
    assert_non_null(strstr(line, " level=warn event=listening addr=127.0.0.1:1\n"));

    hw_log_event(bridge, HW_LOG_WARN, "stopped", NULL);
    read_line(p[0], line, sizeof line);
    assert_non_null(strstr(line, " level=warn bridge=telegram event=stopped\n"));

    /* Below the level: nothing written (the next read sees the next line). */
    hw_log_event(bridge, HW_LOG_DEBUG, "hidden", NULL);
    hw_log_event(bridge, HW_LOG_ERROR, "shown", NULL);
    read_line(p[0], line, sizeof line);
    assert_non_null(strstr(line, " level=error bridge=telegram event=shown\n"));

    hw_log_destroy(bridge);
    hw_log_destroy(server);
    close(p[0]);
    close(p[1]);
}

static void hmac_matches_rfc4231_and_compare_is_exact(void **unused)
{
    /* RFC 4231 test case 2. */
    char hex[65];
    assert_int_equal(br_hmac_sha256_hex("Jefe", 4, "what do ya want for nothing?", 28, hex), 0);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    assert_true(br_streq_const_time("abc", "abc"));
    assert_false(br_streq_const_time("abc", "abd"));
    assert_false(br_streq_const_time("abc", "abcd"));
    assert_false(br_streq_const_time(NULL, "abc"));
    char tok[64];
    assert_int_equal(br_random_token(tok, sizeof tok, 16), 0);
    assert_int_equal(strlen(tok), 22);
    assert_int_equal(strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 22);
}

static void state_file_round_trips_and_reports_absence(void **unused)
{
    char dir[] = "/tmp/br_state_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/offset", dir);
    char err[256];
    uint64_t v = 7;
    assert_int_equal(br_state_read_u64(path, &v, err, sizeof err), 1);
    assert_int_equal(v, 7);
    assert_int_equal(br_state_write_u64(path, 123456789012ull, err, sizeof err), 0);
    assert_int_equal(br_state_read_u64(path, &v, err, sizeof err), 0);
    assert_int_equal(v, 123456789012ull);
    FILE *f = fopen(path, "w");
    fputs("garbage", f);
    fclose(f);
    assert_int_equal(br_state_read_u64(path, &v, err, sizeof err), -1);
    unlink(path);
    rmdir(dir);
}

/* The dead-letter file's lines, parsed (NULL for one that does not parse). */
static size_t read_lines(const char *path, json_t **out, size_t max)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[65536];
    size_t n = 0;
    while (n < max && fgets(line, sizeof line, f))
        out[n++] = json_loads(line, 0, NULL);
    fclose(f);
    return n;
}

static void dead_letters_are_appended_whole_and_survive_a_reopen(void **unused)
{
    char dir[] = "/tmp/br_dead_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char sub[300], err[512];
    snprintf(sub, sizeof sub, "%s/state", dir); /* created on open */
    br_deadletter *d;
    assert_int_equal(br_deadletter_open(&d, sub, "telegram", err, sizeof err), 0);
    /* The text: 你好 in UTF-8, a quoted word and a newline. */
    br_dead_letter rec = {"telegram",
                          "77:5",
                          "77",
                          "Ana",
                          "\xe4\xbd\xa0\xe5\xa5\xbd \"quoted\"\nline",
                          BR_DEAD_REFUSED,
                          3,
                          "text: 20000 bytes, at most 16384 allowed",
                          1,
                          1000,
                          1001,
                          1002};
    assert_int_equal(br_deadletter_write(d, &rec, err, sizeof err), 0);
    rec.reason = BR_DEAD_TOO_OLD;
    rec.code = 14;
    rec.attempts = 9;
    assert_int_equal(br_deadletter_write(d, &rec, err, sizeof err), 0);
    assert_int_equal(br_deadletter_count(d, BR_DEAD_REFUSED), 1);
    assert_int_equal(br_deadletter_count(d, BR_DEAD_TOO_OLD), 1);
    assert_int_equal(br_deadletter_count(d, BR_DEAD_SHUTDOWN), 0);
    char path[400];
    snprintf(path, sizeof path, "%s", br_deadletter_path(d));
    assert_non_null(strstr(path, "/state/telegram.deadletter.jsonl"));

    /* The metric family, in Prometheus text. */
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    br_deadletter_render(d, "telegram", m);
    fclose(m);
    assert_non_null(strstr(text, "# TYPE helpwire_bridge_dead_letters_total counter\n"));
    assert_non_null(
        strstr(text, "helpwire_bridge_dead_letters_total{bridge=\"telegram\",reason=\"refused\"} 1\n"));
    assert_non_null(
        strstr(text, "helpwire_bridge_dead_letters_total{bridge=\"telegram\",reason=\"shutdown\"} 0\n"));
    free(text);
    br_deadletter_close(d);

    /* A torn last line (a crash mid-write): the next record starts on a
     * line of its own, the earlier ones are intact. */
    FILE *f = fopen(path, "a");
    fputs("{\"reason\":\"ref", f);
    fclose(f);
    assert_int_equal(br_deadletter_open(&d, sub, "telegram", err, sizeof err), 0);
    rec.reason = BR_DEAD_SHUTDOWN;
    assert_int_equal(br_deadletter_write(d, &rec, err, sizeof err), 0);
    assert_int_equal(br_deadletter_count(d, BR_DEAD_SHUTDOWN), 1); /* counts since open */
    assert_int_equal(br_deadletter_count(d, BR_DEAD_REFUSED), 0);
    br_deadletter_close(d);

    json_t *lines[8] = {0};
    assert_int_equal(read_lines(path, lines, 8), 4);
    assert_non_null(lines[0]);
    assert_string_equal(json_string_value(json_object_get(lines[0], "reason")), "refused");
    assert_string_equal(json_string_value(json_object_get(lines[0], "message_id")), "77:5");
    assert_string_equal(json_string_value(json_object_get(lines[0], "sender")), "77");
    assert_string_equal(json_string_value(json_object_get(lines[0], "text")), rec.text);
    assert_int_equal(json_integer_value(json_object_get(lines[0], "code")), 3);
    assert_int_equal(json_integer_value(json_object_get(lines[0], "attempts")), 1);
    assert_int_equal(json_integer_value(json_object_get(lines[0], "received_ms")), 1000);
    assert_int_equal(json_integer_value(json_object_get(lines[0], "last_attempt_ms")), 1002);
    assert_string_equal(json_string_value(json_object_get(lines[1], "reason")), "too_old");
    assert_null(lines[2]); /* the torn line */
    assert_string_equal(json_string_value(json_object_get(lines[3], "reason")), "shutdown");
    for (int i = 0; i < 4; i++)
        json_decref(lines[i]);
    struct stat stt;
    assert_int_equal(stat(path, &stt), 0);
    assert_int_equal(stt.st_mode & 0777, 0600); /* it holds customers' texts */
    unlink(path);
    rmdir(sub);
    rmdir(dir);
}

static void dead_letter_file_that_cannot_be_made_is_an_error(void **unused)
{
    br_deadletter *d = (br_deadletter *)1;
    char err[512];
    assert_int_equal(br_deadletter_open(&d, "/nonexistent/a/b", "whatsapp", err, sizeof err), -1);
    assert_null(d);
    assert_non_null(strstr(err, "/nonexistent/a/b"));
    assert_int_equal(br_deadletter_open(&d, "", "whatsapp", err, sizeof err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dedupe_reports_repeats_and_evicts_least_recent),
        cmocka_unit_test(dedupe_holds_many_keys_within_capacity),
        cmocka_unit_test(backoff_doubles_with_jitter_up_to_max_and_resets),
        cmocka_unit_test(config_reads_env_then_flags_and_rejects_bad_input),
        cmocka_unit_test(token_file_wins_over_environment),
        cmocka_unit_test(config_checks_required_options_in_order_and_paths),
        cmocka_unit_test(secret_comes_from_the_file_else_the_environment_else_nowhere),
        cmocka_unit_test(log_quote_escapes_only_when_needed),
        cmocka_unit_test(log_component_field_follows_the_level_and_server_lines_have_none),
        cmocka_unit_test(hmac_matches_rfc4231_and_compare_is_exact),
        cmocka_unit_test(state_file_round_trips_and_reports_absence),
        cmocka_unit_test(dead_letters_are_appended_whole_and_survive_a_reopen),
        cmocka_unit_test(dead_letter_file_that_cannot_be_made_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
