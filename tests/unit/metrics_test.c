/*
 * metrics_test: the exposition of server/base/metrics.c (the grpc-ecosystem
 * families summed over workers, the two histograms read from one set of
 * counts, the unknown-method row, what a client registry leaves out), the
 * /proc parsers of server/base/process.c and helpwire_build_info.
 */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/base/build_info.h"
#include "server/base/metrics.h"
#include "server/base/process.h"

static const hw_metrics_method table[] = {
    {"/helpwire.v1.Tickets/GetTicket", HW_RPC_UNARY},
    {"/helpwire.v1.Tickets/WatchTickets", HW_RPC_SERVER_STREAM},
    {"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", HW_RPC_BIDI_STREAM},
};

/* The exposition as a string (caller frees). */
static char *render(hw_metrics *m)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    hw_metrics_render(m, f);
    fclose(f);
    return buf;
}

/* The value of the sample whose line starts with `series ` ("name{labels}"),
 * or -1 when absent. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

#define GET "{grpc_service=\"helpwire.v1.Tickets\",grpc_method=\"GetTicket\",grpc_type=\"unary\""
#define WATCH "{grpc_service=\"helpwire.v1.Tickets\",grpc_method=\"WatchTickets\",grpc_type=\"server_stream\""
#define UNKNOWN "{grpc_service=\"unknown\",grpc_method=\"unknown\",grpc_type=\"unknown\""

static void test_code_and_type_names_are_the_librarys(void **state)
{
    assert_string_equal(hw_metrics_code_name(0), "OK");
    assert_string_equal(hw_metrics_code_name(1), "Canceled"); /* grpc-go's spelling */
    assert_string_equal(hw_metrics_code_name(3), "InvalidArgument");
    assert_string_equal(hw_metrics_code_name(5), "NotFound");
    assert_string_equal(hw_metrics_code_name(8), "ResourceExhausted");
    assert_string_equal(hw_metrics_code_name(16), "Unauthenticated");
    assert_string_equal(hw_metrics_code_name(17), "Unknown");
    assert_string_equal(hw_metrics_code_name(-1), "Unknown");
    assert_string_equal(hw_metrics_rpc_type_name(HW_RPC_UNARY), "unary");
    assert_string_equal(hw_metrics_rpc_type_name(HW_RPC_CLIENT_STREAM), "client_stream");
    assert_string_equal(hw_metrics_rpc_type_name(HW_RPC_SERVER_STREAM), "server_stream");
    assert_string_equal(hw_metrics_rpc_type_name(HW_RPC_BIDI_STREAM), "bidi_stream");
}

static void test_counts_are_summed_over_workers(void **state)
{
    hw_metrics *m = hw_metrics_create_server(table, 3, 3);
    assert_non_null(m);
    for (int w = 0; w < 3; w++) {
        hw_metrics_started(m, w, 0);
        hw_metrics_msg_received(m, w, 0);
        hw_metrics_handled(m, w, 0, w == 2 ? 5 : 0, 1000000); /* 1 ms */
        if (w != 2)
            hw_metrics_msg_sent(m, w, 0);
    }
    hw_metrics_started(m, 7, 1); /* a worker out of range counts on worker 0 */
    hw_metrics_msg_sent(m, 1, 1);
    hw_metrics_msg_sent(m, 2, 1);
    char *t = render(m);
    assert_true(sample(t, "grpc_server_started_total" GET "}") == 3);
    assert_true(sample(t, "grpc_server_msg_received_total" GET "}") == 3);
    assert_true(sample(t, "grpc_server_msg_sent_total" GET "}") == 2);
    assert_true(sample(t, "grpc_server_handled_total" GET ",grpc_code=\"OK\"}") == 2);
    assert_true(sample(t, "grpc_server_handled_total" GET ",grpc_code=\"NotFound\"}") == 1);
    assert_true(sample(t, "grpc_server_handling_seconds_count" GET "}") == 3);
    assert_true(sample(t, "grpc_server_started_total" WATCH "}") == 1);
    assert_true(sample(t, "grpc_server_msg_sent_total" WATCH "}") == 2);
    /* Every method of the table has its counters at 0 from the start;
     * handled and the histogram only once a call ended. */
    assert_true(sample(t, "grpc_server_started_total{grpc_service=\"grpc.reflection.v1.ServerReflection\","
                          "grpc_method=\"ServerReflectionInfo\",grpc_type=\"bidi_stream\"}") == 0);
    assert_true(sample(t, "grpc_server_handling_seconds_count" WATCH "}") == -1);
    assert_null(strstr(t, "grpc_code=\"Canceled\""));
    /* The helpwire_rpc_* view of the same counts. */
    assert_true(sample(t, "helpwire_rpc_requests_total{service=\"helpwire.v1.Tickets\",method=\"GetTicket\","
                          "code=\"NOT_FOUND\"}") == 1);
    free(t);
    hw_metrics_destroy(m);
}

static void test_histogram_has_the_default_buckets_over_the_same_counts(void **state)
{
    hw_metrics *m = hw_metrics_create_server(table, 3, 2);
    assert_non_null(m);
    hw_metrics_handled(m, 0, 0, 0, 200000);         /* 0.2 ms: the finest helpwire bucket */
    hw_metrics_handled(m, 1, 0, 0, 5000000);        /* exactly 5 ms: le="0.005" (le is inclusive) */
    hw_metrics_handled(m, 0, 0, 0, 7000000);        /* 7 ms */
    hw_metrics_handled(m, 1, 0, 13, 20000000000LL); /* 20 s: only +Inf */
    char *t = render(m);
    assert_true(sample(t, "grpc_server_handling_seconds_bucket" GET ",le=\"0.005\"}") == 2);
    assert_true(sample(t, "grpc_server_handling_seconds_bucket" GET ",le=\"0.01\"}") == 3);
    assert_true(sample(t, "grpc_server_handling_seconds_bucket" GET ",le=\"10\"}") == 3);
    assert_true(sample(t, "grpc_server_handling_seconds_bucket" GET ",le=\"+Inf\"}") == 4);
    assert_true(sample(t, "grpc_server_handling_seconds_count" GET "}") == 4);
    double sum = sample(t, "grpc_server_handling_seconds_sum" GET "}");
    assert_true(sum > 20.0121 && sum < 20.0123);
    /* The finer buckets are helpwire_rpc_duration_seconds' only. */
    assert_null(strstr(t, "grpc_server_handling_seconds_bucket" GET ",le=\"0.0001\""));
    assert_true(sample(t, "helpwire_rpc_duration_seconds_bucket{service=\"helpwire.v1.Tickets\","
                          "method=\"GetTicket\",le=\"0.00025\"}") == 1);
    /* Twelve buckets, the library's: .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10 +Inf. */
    int buckets = 0;
    for (const char *p = t; (p = strstr(p, "grpc_server_handling_seconds_bucket" GET)) != NULL; p++)
        buckets++;
    assert_int_equal(buckets, 12);
    assert_true(sample(t, "grpc_server_handled_total" GET ",grpc_code=\"Internal\"}") == 1);
    free(t);
    hw_metrics_destroy(m);
}

static void test_unknown_methods_share_one_row_shown_once_used(void **state)
{
    hw_metrics *m = hw_metrics_create_server(table, 3, 1);
    assert_non_null(m);
    char *t = render(m);
    assert_null(strstr(t, UNKNOWN));
    free(t);
    hw_metrics_started(m, 0, (size_t)-1);
    hw_metrics_handled(m, 0, (size_t)-1, 12, 1000);
    hw_metrics_started(m, 0, 3); /* past the table */
    hw_metrics_handled(m, 0, 3, 12, 1000);
    t = render(m);
    assert_true(sample(t, "grpc_server_started_total" UNKNOWN "}") == 2);
    assert_true(sample(t, "grpc_server_handled_total" UNKNOWN ",grpc_code=\"Unimplemented\"}") == 2);
    assert_true(sample(t, "grpc_server_msg_received_total" UNKNOWN "}") == 0);
    free(t);
    hw_metrics_destroy(m);
}

static void test_refusal_counters(void **state)
{
    hw_metrics *m = hw_metrics_create_server(table, 3, 1);
    assert_non_null(m);
    hw_metrics_oversize(m);
    hw_metrics_oversize(m);
    hw_metrics_shed(m);
    char *t = render(m);
    assert_true(sample(t, "helpwire_requests_oversize_total") == 2);
    assert_true(sample(t, "helpwire_calls_shed_total") == 1);
    free(t);
    hw_metrics_destroy(m);
    /* NULL registries record nothing and do not crash. */
    hw_metrics_started(NULL, 0, 0);
    hw_metrics_handled(NULL, 0, 0, 0, 0);
    hw_metrics_oversize(NULL);
    assert_null(hw_metrics_create_server(table, 3, 0));
}

static void test_client_registry_has_no_server_families(void **state)
{
    const char *paths[] = {"/helpwire.v1.Router/Route"};
    hw_metrics *m = hw_metrics_create(paths, 1);
    assert_non_null(m);
    hw_metrics_rpc(m, 0, 0, 1000);
    char *t = render(m);
    assert_null(strstr(t, "grpc_server_"));
    assert_null(strstr(t, "helpwire_requests_oversize_total"));
    assert_true(sample(t, "helpwire_rpc_requests_total{service=\"helpwire.v1.Router\",method=\"Route\","
                          "code=\"OK\"}") == 1);
    assert_non_null(strstr(t, "\nprocess_open_fds "));
    assert_non_null(strstr(t, "\nhelpwire_build_info{"));
    free(t);
    hw_metrics_destroy(m);
}

#define N_THREADS 4
#define PER_THREAD 100000

typedef struct {
    hw_metrics *m;
    int worker;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        hw_metrics_started(r->m, r->worker, 0);
        hw_metrics_handled(r->m, r->worker, 0, 0, 1000);
    }
    return NULL;
}

/* Workers record at once (two of them on one worker's counters, as a call
 * ended from another thread does): no count is lost. */
static void test_concurrent_recording_loses_nothing(void **state)
{
    hw_metrics *m = hw_metrics_create_server(table, 3, 3);
    assert_non_null(m);
    pthread_t th[N_THREADS];
    racer r[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        r[i] = (racer){m, i % 3};
        assert_int_equal(pthread_create(&th[i], NULL, race, &r[i]), 0);
    }
    char *mid = render(m); /* a scrape while they run */
    free(mid);
    for (int i = 0; i < N_THREADS; i++)
        pthread_join(th[i], NULL);
    char *t = render(m);
    assert_true(sample(t, "grpc_server_started_total" GET "}") == N_THREADS * PER_THREAD);
    assert_true(sample(t, "grpc_server_handled_total" GET ",grpc_code=\"OK\"}") == N_THREADS * PER_THREAD);
    free(t);
    hw_metrics_destroy(m);
}

/* ---- process */

static void test_stat_line_is_parsed_from_the_last_parenthesis(void **state)
{
    /* A command name with a space and a ')' of its own. */
    const char *line = "4242 (hw (x) y) S 1 4242 4242 0 -1 4194560 2000 0 3 0 250 50 0 0 20 0 9 0 "
                       "123456 1073741824 5000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
    hw_process_stat ps;
    assert_int_equal(hw_process_parse_stat(line, 100, 4096, 1700000000, &ps), 0);
    assert_true(ps.cpu_seconds == 3.0); /* (250 + 50) / 100 */
    assert_true(ps.virtual_bytes == 1073741824ULL);
    assert_true(ps.resident_bytes == 5000ULL * 4096);
    assert_true(ps.start_time_seconds > 1700001234.55 && ps.start_time_seconds < 1700001234.57);
}

static void test_bad_stat_lines_are_refused(void **state)
{
    hw_process_stat ps;
    assert_int_equal(hw_process_parse_stat("", 100, 4096, 0, &ps), -1);
    assert_int_equal(hw_process_parse_stat("4242 no parenthesis S 1 2 3", 100, 4096, 0, &ps), -1);
    assert_int_equal(hw_process_parse_stat("4242 (short) S 1 2 3 4\n", 100, 4096, 0, &ps), -1);
    /* utime not a number */
    assert_int_equal(
        hw_process_parse_stat("1 (a) S 1 1 1 0 -1 0 0 0 0 0 x 50 0 0 20 0 9 0 1 2 3\n", 100, 4096, 0, &ps),
        -1);
    /* a negative rss */
    assert_int_equal(
        hw_process_parse_stat("1 (a) S 1 1 1 0 -1 0 0 0 0 0 1 50 0 0 20 0 9 0 1 2 -3\n", 100, 4096, 0, &ps),
        -1);
    assert_int_equal(
        hw_process_parse_stat("1 (a) S 1 1 1 0 -1 0 0 0 0 0 1 50 0 0 20 0 9 0 1 2 3\n", 0, 4096, 0, &ps), -1);
    assert_int_equal(
        hw_process_parse_stat("1 (a) S 1 1 1 0 -1 0 0 0 0 0 1 50 0 0 20 0 9 0 1 2 3\n", 100, 4096, 0, &ps),
        0);
}

static void test_boot_time_is_found_in_proc_stat(void **state)
{
    uint64_t b = 0;
    assert_int_equal(hw_process_parse_btime("cpu  1 2 3\nintr 5\nbtime 1796573613\nprocesses 9\n", &b), 0);
    assert_true(b == 1796573613ULL);
    assert_int_equal(hw_process_parse_btime("cpu  1 2 3\nxbtime 5\n", &b), -1);
    assert_int_equal(hw_process_parse_btime("", &b), -1);
}

/* Opening three files shows as three more open descriptors. */
static void test_open_fds_follow_the_process(void **state)
{
    hw_metrics *m = hw_metrics_create_server(table, 3, 1);
    assert_non_null(m);
    char *t = render(m);
    double before = sample(t, "process_open_fds");
    assert_true(before > 0);
    assert_true(sample(t, "process_max_fds") >= before);
    assert_true(sample(t, "process_resident_memory_bytes") > 0);
    free(t);
    int fds[3];
    for (int i = 0; i < 3; i++)
        assert_true((fds[i] = open("/dev/null", O_RDONLY)) >= 0);
    t = render(m);
    assert_true(sample(t, "process_open_fds") == before + 3);
    free(t);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    hw_metrics_destroy(m);
}

static void test_build_info(void **state)
{
    assert_string_equal(hw_build_version(), HW_VERSION);
    const char *c = hw_build_commit();
    assert_true(strcmp(c, "unknown") == 0 || strspn(c, "0123456789abcdef") >= 7);
    assert_true(strncmp(hw_build_compiler(), "gcc ", 4) == 0 ||
                strncmp(hw_build_compiler(), "clang ", 6) == 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    hw_build_info_render(f);
    fclose(f);
    char want[512];
    snprintf(want, sizeof want, "helpwire_build_info{version=\"%s\",commit=\"%s\",compiler=\"%s\"} 1\n",
             hw_build_version(), c, hw_build_compiler());
    assert_non_null(strstr(buf, want));
    assert_non_null(strstr(buf, "# TYPE helpwire_build_info gauge\n"));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_code_and_type_names_are_the_librarys),
        cmocka_unit_test(test_counts_are_summed_over_workers),
        cmocka_unit_test(test_histogram_has_the_default_buckets_over_the_same_counts),
        cmocka_unit_test(test_unknown_methods_share_one_row_shown_once_used),
        cmocka_unit_test(test_refusal_counters),
        cmocka_unit_test(test_client_registry_has_no_server_families),
        cmocka_unit_test(test_concurrent_recording_loses_nothing),
        cmocka_unit_test(test_stat_line_is_parsed_from_the_last_parenthesis),
        cmocka_unit_test(test_bad_stat_lines_are_refused),
        cmocka_unit_test(test_boot_time_is_found_in_proc_stat),
        cmocka_unit_test(test_open_fds_follow_the_process),
        cmocka_unit_test(test_build_info),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
