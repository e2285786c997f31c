/*
 * cli_lib_test: the pure parts of the helpwire CLI (flag parsing, JSON
 * Lines records, protobuf to JSON, tables and text hygiene, enum and size
 * formatting, the progress bar, the cluster status), one test per behaviour. The gRPC client
 * and the commands are covered end to end by tests/integration/cli_test.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clients/cli/args.h"
#include "clients/cli/cli.h"
#include "clients/cli/cluster_fmt.h"
#include "clients/cli/fmt.h"
#include "clients/cli/jsonl.h"
#include "server/base/pbjson.h"
#include "clients/cli/progress.h"
#include "clients/cli/table.h"
#include "helpwire/v1/admin.pb-c.h"
#include "helpwire/v1/tickets.pb-c.h"

/* ---- args ---- */

static const cli_opt test_opts[] = {
    {"status", "S", "status"},
    {"json", NULL, "json"},
};

static void test_args_values_booleans_and_positionals(void **state)
{
    const char *values[2] = {0}, *pos[4];
    size_t npos;
    int consumed;
    char err[128];
    char *argv[] = {"show", "--status", "open",        "t-1", "--json", "--status=closed",
                    "-",    "--",       "--not-a-flag"};
    cli_optset set = {test_opts, 2, values};
    assert_int_equal(cli_args_parse(&set, 1, 9, argv, false, pos, 4, &npos, &consumed, err, sizeof err),
                     CLI_ARGS_OK);
    assert_string_equal(values[0], "closed"); /* the last one wins */
    assert_string_equal(values[1], "1");
    assert_int_equal(npos, 4);
    assert_string_equal(pos[0], "show");
    assert_string_equal(pos[1], "t-1");
    assert_string_equal(pos[2], "-");
    assert_string_equal(pos[3], "--not-a-flag");
    assert_int_equal(consumed, 9);
}

static void test_args_stop_at_positional_reports_where_the_command_starts(void **state)
{
    const char *values[2] = {0}, *pos[1];
    size_t npos;
    int consumed;
    char err[128];
    char *argv[] = {"--json", "tickets", "--status", "x"};
    cli_optset set = {test_opts, 2, values};
    assert_int_equal(cli_args_parse(&set, 1, 4, argv, true, pos, 0, &npos, &consumed, err, sizeof err),
                     CLI_ARGS_OK);
    assert_int_equal(consumed, 1);
    assert_null(values[0]);
}

static void test_args_errors_name_the_flag(void **state)
{
    const char *values[2] = {0}, *pos[1];
    size_t npos;
    int consumed;
    char err[128];
    cli_optset set = {test_opts, 2, values};
    char *unknown[] = {"--bogus"};
    assert_int_equal(cli_args_parse(&set, 1, 1, unknown, false, pos, 1, &npos, &consumed, err, sizeof err),
                     CLI_ARGS_ERROR);
    assert_non_null(strstr(err, "--bogus"));
    char *missing[] = {"--status"};
    assert_int_equal(cli_args_parse(&set, 1, 1, missing, false, pos, 1, &npos, &consumed, err, sizeof err),
                     CLI_ARGS_ERROR);
    assert_non_null(strstr(err, "needs a value"));
    char *bool_value[] = {"--json=yes"};
    assert_int_equal(cli_args_parse(&set, 1, 1, bool_value, false, pos, 1, &npos, &consumed, err, sizeof err),
                     CLI_ARGS_ERROR);
    char *too_many[] = {"a", "b"};
    assert_int_equal(cli_args_parse(&set, 1, 2, too_many, false, pos, 1, &npos, &consumed, err, sizeof err),
                     CLI_ARGS_ERROR);
    char *help[] = {"x", "-h"};
    assert_int_equal(cli_args_parse(&set, 1, 2, help, false, pos, 1, &npos, &consumed, err, sizeof err),
                     CLI_ARGS_HELP);
}

static void test_args_parse_int_checks_range_and_trailing_text(void **state)
{
    long long v = 0;
    assert_int_equal(cli_args_parse_int("16", 1, 256, &v), 0);
    assert_int_equal(v, 16);
    assert_int_equal(cli_args_parse_int("0", 1, 256, &v), -1);
    assert_int_equal(cli_args_parse_int("257", 1, 256, &v), -1);
    assert_int_equal(cli_args_parse_int("12x", 1, 256, &v), -1);
    assert_int_equal(cli_args_parse_int("", 1, 256, &v), -1);
    assert_int_equal(cli_args_parse_int(NULL, 1, 256, &v), -1);
}

/* ---- jsonl ---- */

static int parse_article(const char *line, Helpwire__V1__Article **a, char *err, size_t errlen)
{
    return cli_jsonl_parse_article(line, strlen(line), a, err, errlen);
}

static void test_jsonl_article_with_every_field(void **state)
{
    Helpwire__V1__Article *a = NULL;
    char err[256];
    const char *line = "{\"id\":\"a-1\",\"title\":\"重置密码\",\"body\":\"Go to settings\",\"locale\":\"zh\","
                       "\"tags\":[\"account\",\"password\"]}\r\n";
    assert_int_equal(parse_article(line, &a, err, sizeof err), CLI_JSONL_RECORD);
    assert_string_equal(a->id, "a-1");
    assert_string_equal(a->title, "重置密码");
    assert_string_equal(a->body, "Go to settings");
    assert_string_equal(a->locale, "zh");
    assert_int_equal(a->n_tags, 2);
    assert_string_equal(a->tags[1], "password");
    protobuf_c_message_free_unpacked(&a->base, NULL);
}

static void test_jsonl_optional_fields_default_to_empty(void **state)
{
    Helpwire__V1__Article *a = NULL;
    char err[256];
    assert_int_equal(parse_article("{\"title\":\"t\",\"body\":\"b\"}", &a, err, sizeof err),
                     CLI_JSONL_RECORD);
    assert_string_equal(a->id, "");
    assert_int_equal(a->n_tags, 0);
    protobuf_c_message_free_unpacked(&a->base, NULL);
}

static void test_jsonl_blank_lines_are_skipped(void **state)
{
    Helpwire__V1__Article *a = NULL;
    char err[256];
    assert_int_equal(parse_article(" \t\r\n", &a, err, sizeof err), CLI_JSONL_BLANK);
    assert_null(a);
}

static void test_jsonl_bad_lines_say_why(void **state)
{
    static const struct {
        const char *line, *why;
    } cases[] = {
        {"{\"title\":\"t\",", "invalid JSON"},
        {"[1,2]", "not a JSON object"},
        {"{\"body\":\"b\"}", "\"title\" is required"},
        {"{\"title\":\"t\",\"body\":\"\"}", "\"body\" is required"},
        {"{\"title\":\"t\",\"body\":\"b\",\"titel\":\"x\"}", "unknown key \"titel\""},
        {"{\"title\":7,\"body\":\"b\"}", "\"title\" must be a string"},
        {"{\"title\":\"t\",\"body\":\"b\",\"tags\":\"x\"}", "\"tags\" must be an array"},
        {"{\"title\":\"t\",\"body\":\"b\",\"tags\":[\"x\",3]}", "\"tags\"[1] must be a string"},
        {"{\"title\":\"t\",\"title\":\"u\",\"body\":\"b\"}", "invalid JSON"},
        {"{\"title\":\"t\",\"body\":\"b\"} {}", "invalid JSON"},
        {"{\"title\":\"t\",\"body\":\"b\",\"\\u001b[2J\":1}", "unknown key \"?[2J\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Helpwire__V1__Article *a = NULL;
        char err[256] = "";
        assert_int_equal(parse_article(cases[i].line, &a, err, sizeof err), CLI_JSONL_BAD);
        assert_null(a);
        if (!strstr(err, cases[i].why))
            fail_msg("case %zu: \"%s\" does not contain \"%s\"", i, err, cases[i].why);
    }
}

static void test_jsonl_faq_with_alternate_questions(void **state)
{
    Helpwire__V1__Faq *f = NULL;
    char err[256];
    const char *line =
        "{\"id\":\"f-9\",\"question\":\"q\",\"answer\":\"a\",\"alternate_questions\":[\"q2\",\"q3\"]}";
    assert_int_equal(cli_jsonl_parse_faq(line, strlen(line), &f, err, sizeof err), CLI_JSONL_RECORD);
    assert_string_equal(f->question, "q");
    assert_int_equal(f->n_alternate_questions, 2);
    assert_string_equal(f->alternate_questions[1], "q3");
    protobuf_c_message_free_unpacked(&f->base, NULL);
    const char *article_shaped = "{\"title\":\"t\",\"body\":\"b\"}";
    assert_int_equal(cli_jsonl_parse_faq(article_shaped, strlen(article_shaped), &f, err, sizeof err),
                     CLI_JSONL_BAD);
}

static void test_jsonl_synonym_set_needs_terms(void **state)
{
    (void)state;
    Helpwire__V1__SynonymSet *set = NULL;
    char err[256];
    const char *line = "{\"id\":\"zh-hours\",\"locale\":\"zh\",\"terms\":[\"上班\",\"工作时间\"]}";
    assert_int_equal(cli_jsonl_parse_synonym_set(line, strlen(line), &set, err, sizeof err), CLI_JSONL_RECORD);
    assert_string_equal(set->id, "zh-hours");
    assert_string_equal(set->locale, "zh");
    assert_int_equal(set->n_terms, 2);
    assert_string_equal(set->terms[1], "工作时间");
    protobuf_c_message_free_unpacked(&set->base, NULL);
    static const char *const bad[][2] = {
        {"{\"id\":\"x\"}", "\"terms\" is required"},
        {"{\"terms\":[]}", "\"terms\" is required"},
        {"{\"terms\":\"refund\"}", "\"terms\" must be an array of strings"},
        {"{\"terms\":[\"a\",1]}", "\"terms\"[1] must be a string"},
        {"{\"terms\":[\"a\",\"b\"],\"term\":[]}", "unknown key \"term\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        set = NULL;
        assert_int_equal(cli_jsonl_parse_synonym_set(bad[i][0], strlen(bad[i][0]), &set, err, sizeof err),
                         CLI_JSONL_BAD);
        assert_null(set);
        if (!strstr(err, bad[i][1]))
            fail_msg("%s: got \"%s\"", bad[i][0], err);
    }
}

/* ---- pbjson ---- */

static void test_pbjson_uses_field_names_enum_names_and_keeps_defaults(void **state)
{
    Helpwire__V1__Ticket t = HELPWIRE__V1__TICKET__INIT;
    char *tags[] = {"vip", "refund"};
    t.id = "t-1000";
    t.number = 1000;
    t.status = HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_ESCALATED;
    t.tags = tags;
    t.n_tags = 2;
    t.created_unix_ms = 1700000000123LL;
    json_t *j = hw_pbjson_from_message(&t.base);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "id")), "t-1000");
    assert_int_equal(json_integer_value(json_object_get(j, "number")), 1000);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "TICKET_STATUS_ESCALATED");
    assert_string_equal(json_string_value(json_object_get(j, "priority")), "PRIORITY_UNSPECIFIED");
    assert_string_equal(json_string_value(json_object_get(j, "assignee_agent_id")), "");
    assert_int_equal(json_integer_value(json_object_get(j, "created_unix_ms")), 1700000000123LL);
    assert_int_equal(json_array_size(json_object_get(j, "tags")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "tags"), 1)), "refund");
    json_decref(j);
}

static void test_pbjson_nested_messages_and_skipped_fields(void **state)
{
    Helpwire__V1__TokenInfo info = HELPWIRE__V1__TOKEN_INFO__INIT;
    Helpwire__V1__CreateTokenReply reply = HELPWIRE__V1__CREATE_TOKEN_REPLY__INIT;
    info.id = "tok-1";
    info.role = HELPWIRE__V1__ROLE__ROLE_ADMIN;
    reply.info = &info;
    reply.token = "hw_secret";
    static const char *const skip[] = {"token", NULL};
    json_t *j = hw_pbjson_from_message_except(&reply.base, skip);
    assert_non_null(j);
    assert_null(json_object_get(j, "token"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "info"), "role")), "ROLE_ADMIN");
    json_decref(j);
    reply.info = NULL;
    j = hw_pbjson_from_message(&reply.base);
    assert_true(json_is_null(json_object_get(j, "info")));
    json_decref(j);
}

static void test_pbjson_uint64_beyond_int64_is_a_string(void **state)
{
    Helpwire__V1__BackupReply r = HELPWIRE__V1__BACKUP_REPLY__INIT;
    r.size_bytes = UINT64_MAX;
    json_t *j = hw_pbjson_from_message(&r.base);
    assert_string_equal(json_string_value(json_object_get(j, "size_bytes")), "18446744073709551615");
    json_decref(j);
}

/* ---- table ---- */

static char *print_table(const cli_table *t)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cli_table_print(t, f);
    fclose(f);
    return buf;
}

static void test_table_aligns_by_display_width(void **state)
{
    static const char *const headers[] = {"ID", "TITLE", "LOCALE"};
    cli_table *t = cli_table_new(3, headers);
    const char *r1[] = {"a-1", "重置密码", "zh"};
    const char *r2[] = {"a-22", "Reset", "en"};
    assert_int_equal(cli_table_add(t, r1), 0);
    assert_int_equal(cli_table_add(t, r2), 0);
    char *out = print_table(t);
    assert_string_equal(out, "ID    TITLE     LOCALE\n"
                             "a-1   重置密码  zh\n"
                             "a-22  Reset     en\n");
    free(out);
    cli_table_free(t);
}

static void test_table_has_no_trailing_blanks_and_optional_header(void **state)
{
    cli_table *t = cli_table_new(3, NULL);
    const char *r1[] = {"key", "", ""};
    const char *r2[] = {"longer key", "v", NULL};
    assert_int_equal(cli_table_add(t, r1), 0);
    assert_int_equal(cli_table_add(t, r2), 0);
    char *out = print_table(t);
    assert_string_equal(out, "key\nlonger key  v\n");
    free(out);
    cli_table_free(t);
}

static void test_table_truncates_long_cells_with_an_ellipsis(void **state)
{
    static const char *const headers[] = {"SUBJECT"};
    cli_table *t = cli_table_new(1, headers);
    cli_table_set_max_width(t, 0, 8);
    const char *r1[] = {"abcdefghijkl"};
    const char *r2[] = {"abcdefgh"};
    const char *r3[] = {"密码密码密码"};
    assert_int_equal(cli_table_add(t, r1), 0);
    assert_int_equal(cli_table_add(t, r2), 0);
    assert_int_equal(cli_table_add(t, r3), 0);
    char *out = print_table(t);
    assert_string_equal(out, "SUBJECT\nabcdefg…\nabcdefgh\n密码密…\n");
    free(out);
    cli_table_free(t);
}

static void test_text_clean_defuses_terminal_escapes(void **state)
{
    char *s = cli_text_clean("red\x1b[31m\x07 bell\ttab\nline\x7f", false, 0);
    assert_string_equal(s, "red?[31m? bell tab line?");
    free(s);
    s = cli_text_clean("para 1\npara 2\r", true, 0);
    assert_string_equal(s, "para 1\npara 2 ");
    free(s);
    s = cli_text_clean("bad \xff\xfe utf8 \xe2\x80\xae rtl", false, 0);
    assert_string_equal(s, "bad \xef\xbf\xbd\xef\xbf\xbd utf8 ? rtl");
    free(s);
    s = cli_text_clean(NULL, false, 0);
    assert_string_equal(s, "");
    free(s);
    assert_int_equal(cli_text_width("重置 ab"), 7);
}

/* ---- fmt ---- */

static void test_fmt_enum_short_names_both_ways(void **state)
{
    char buf[64];
    const ProtobufCEnumDescriptor *d = &helpwire__v1__ticket_status__descriptor;
    assert_string_equal(cli_fmt_enum(d, HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_OPEN, buf, sizeof buf),
                        "open");
    assert_string_equal(cli_fmt_enum(d, 99, buf, sizeof buf), "99");
    int v = 0;
    assert_int_equal(cli_parse_enum(d, "Escalated", &v), 0);
    assert_int_equal(v, HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_ESCALATED);
    assert_int_equal(cli_parse_enum(d, "TICKET_STATUS_CLOSED", &v), 0);
    assert_int_equal(v, HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_CLOSED);
    assert_int_equal(cli_parse_enum(d, "unspecified", &v), -1);
    assert_int_equal(cli_parse_enum(d, "sideways", &v), -1);
    assert_string_equal(cli_fmt_enum_choices(&helpwire__v1__role__descriptor, buf, sizeof buf),
                        "bridge|agent|admin");
}

static void test_fmt_sizes_and_durations(void **state)
{
    char buf[32];
    assert_string_equal(cli_fmt_bytes(512, buf, sizeof buf), "512 B");
    assert_string_equal(cli_fmt_bytes(3 * 1024 * 1024 + 512 * 1024, buf, sizeof buf), "3.5 MiB");
    assert_string_equal(cli_fmt_duration(42, buf, sizeof buf), "42s");
    assert_string_equal(cli_fmt_duration(185, buf, sizeof buf), "3m05s");
    assert_string_equal(cli_fmt_duration(7620, buf, sizeof buf), "2h07m");
    assert_string_equal(cli_fmt_time(0, buf, sizeof buf), "-");
}

/* ---- progress ---- */

static void test_progress_bar_with_and_without_a_total(void **state)
{
    char buf[256];
    assert_string_equal(cli_progress_format(buf, sizeof buf, "articles", 25, 100, 5.0, 10),
                        "articles [##--------] 25/100  25%  5/s  ETA 15s");
    assert_string_equal(cli_progress_format(buf, sizeof buf, "faqs", 100, 100, 2.0, 4),
                        "faqs [####] 100/100 100%  50/s  done");
    assert_string_equal(cli_progress_format(buf, sizeof buf, "faqs", 0, 10, 0.0, 4),
                        "faqs [----] 0/10   0%  0/s  ETA ?");
    assert_string_equal(cli_progress_format(buf, sizeof buf, "articles", 30, 0, 3.0, 10),
                        "articles  30  10/s");
}

/* ---- cli ---- */

static void test_split_list_trims_and_drops_empty_items(void **state)
{
    char **items;
    size_t n;
    assert_int_equal(cli_split_list(" technical, billing,,general ,", &items, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(items[0], "technical");
    assert_string_equal(items[1], "billing");
    assert_string_equal(items[2], "general");
    cli_free_list(items, n);
    assert_int_equal(cli_split_list("", &items, &n), 0);
    assert_int_equal(n, 0);
    cli_free_list(items, n);
}

/* ---- cluster status ---- */

static char *print_cluster(const Helpwire__V1__ClusterStatus *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_int_equal(cli_cluster_print(f, s), 0);
    fclose(f);
    return buf;
}

static void test_cluster_status_on_the_leader_shows_match_indexes_and_marks(void **state)
{
    Helpwire__V1__Replica r[3] = {HELPWIRE__V1__REPLICA__INIT, HELPWIRE__V1__REPLICA__INIT,
                                  HELPWIRE__V1__REPLICA__INIT};
    Helpwire__V1__Replica *members[3] = {&r[0], &r[1], &r[2]};
    const char *raft[3] = {"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"};
    const char *grpc[3] = {"10.0.0.1:50051", "10.0.0.2:50051", "10.0.0.3:50051"};
    for (int i = 0; i < 3; i++) {
        r[i].id = (uint64_t)i + 1;
        r[i].raft_address = (char *)raft[i];
        r[i].grpc_address = (char *)grpc[i];
        r[i].role = HELPWIRE__V1__REPLICA_ROLE__REPLICA_ROLE_VOTER;
        r[i].match_index = 120 - (uint64_t)i * 10;
    }
    r[2].role = HELPWIRE__V1__REPLICA_ROLE__REPLICA_ROLE_STANDBY;
    Helpwire__V1__ClusterStatus s = HELPWIRE__V1__CLUSTER_STATUS__INIT;
    s.replicated = true;
    s.self_id = 1;
    s.state = HELPWIRE__V1__RAFT_STATE__RAFT_STATE_LEADER;
    s.term = 7;
    s.leader_id = 1;
    s.leader_grpc_address = "10.0.0.1:50051";
    s.commit_index = 120;
    s.applied_index = 119;
    s.last_log_index = 121;
    s.snapshot_index = 100;
    s.writable = true;
    s.n_members = 3;
    s.members = members;
    char *out = print_cluster(&s);
    assert_string_equal(out, "replicated      yes\n"
                             "this replica    1 (leader, term 7)\n"
                             "leader          1 (10.0.0.1:50051)\n"
                             "commit index    120\n"
                             "applied index   119\n"
                             "last log index  121\n"
                             "snapshot index  100\n"
                             "writable        yes\n"
                             "message         -\n"
                             "\n"
                             "ID  RAFT ADDRESS   GRPC ADDRESS    ROLE     MATCH INDEX  LEADER  SELF\n"
                             "1   10.0.0.1:7000  10.0.0.1:50051  voter    120          *       *\n"
                             "2   10.0.0.2:7000  10.0.0.2:50051  voter    110\n"
                             "3   10.0.0.3:7000  10.0.0.3:50051  standby  100\n");
    free(out);
}

static void test_cluster_status_of_a_follower_without_leader_says_why(void **state)
{
    Helpwire__V1__Replica r = HELPWIRE__V1__REPLICA__INIT;
    Helpwire__V1__Replica *members[1] = {&r};
    r.id = 2;
    r.raft_address = "10.0.0.2:7000";
    r.grpc_address = "10.0.0.2:50051\x1b[2J";
    r.role = HELPWIRE__V1__REPLICA_ROLE__REPLICA_ROLE_VOTER;
    r.match_index = 5; /* not this replica's to know: shown as "-" */
    Helpwire__V1__ClusterStatus s = HELPWIRE__V1__CLUSTER_STATUS__INIT;
    s.replicated = true;
    s.self_id = 2;
    s.state = HELPWIRE__V1__RAFT_STATE__RAFT_STATE_FOLLOWER;
    s.term = 9;
    s.message = "no leader: 1 of 3 voters reachable";
    s.n_members = 1;
    s.members = members;
    char *out = print_cluster(&s);
    assert_non_null(strstr(out, "this replica    2 (follower, term 9)\n"));
    assert_non_null(strstr(out, "leader          none known\n"));
    assert_non_null(strstr(out, "writable        no\n"));
    assert_non_null(strstr(out, "message         no leader: 1 of 3 voters reachable\n"));
    assert_non_null(strstr(out, "2   10.0.0.2:7000  10.0.0.2:50051?[2J  voter  -                    *\n"));
    assert_null(strchr(out, '\x1b'));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cluster_status_on_the_leader_shows_match_indexes_and_marks),
        cmocka_unit_test(test_cluster_status_of_a_follower_without_leader_says_why),
        cmocka_unit_test(test_args_values_booleans_and_positionals),
        cmocka_unit_test(test_args_stop_at_positional_reports_where_the_command_starts),
        cmocka_unit_test(test_args_errors_name_the_flag),
        cmocka_unit_test(test_args_parse_int_checks_range_and_trailing_text),
        cmocka_unit_test(test_jsonl_article_with_every_field),
        cmocka_unit_test(test_jsonl_optional_fields_default_to_empty),
        cmocka_unit_test(test_jsonl_blank_lines_are_skipped),
        cmocka_unit_test(test_jsonl_bad_lines_say_why),
        cmocka_unit_test(test_jsonl_faq_with_alternate_questions),
        cmocka_unit_test(test_jsonl_synonym_set_needs_terms),
        cmocka_unit_test(test_pbjson_uses_field_names_enum_names_and_keeps_defaults),
        cmocka_unit_test(test_pbjson_nested_messages_and_skipped_fields),
        cmocka_unit_test(test_pbjson_uint64_beyond_int64_is_a_string),
        cmocka_unit_test(test_table_aligns_by_display_width),
        cmocka_unit_test(test_table_has_no_trailing_blanks_and_optional_header),
        cmocka_unit_test(test_table_truncates_long_cells_with_an_ellipsis),
        cmocka_unit_test(test_text_clean_defuses_terminal_escapes),
        cmocka_unit_test(test_fmt_enum_short_names_both_ways),
        cmocka_unit_test(test_fmt_sizes_and_durations),
        cmocka_unit_test(test_progress_bar_with_and_without_a_total),
        cmocka_unit_test(test_split_list_trims_and_drops_empty_items),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
