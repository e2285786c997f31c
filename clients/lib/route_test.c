/*
 * route_test: the inbound retry policy (route.h). Which statuses are
 * retried, and br_route_deliver against a helpwired that is not there
 * (UNAVAILABLE at once): retried with bounded backoff until the message's
 * age passes the limit, then a dead letter; a message already too old is
 * tried once; a stop leaves it to the channel, unrecorded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <grpc/grpc.h>

#include "clients/lib/deadletter.h"
#include "clients/lib/route.h"
#include "server/base/grpc_runtime.h"
#include "server/base/log.h"

static void only_statuses_that_can_succeed_later_are_retried(void **unused)
{
    assert_true(br_route_retryable(GRPC_STATUS_UNAVAILABLE));
    assert_true(br_route_retryable(GRPC_STATUS_RESOURCE_EXHAUSTED));
    assert_true(br_route_retryable(GRPC_STATUS_DEADLINE_EXCEEDED));
    assert_true(br_route_retryable(GRPC_STATUS_ABORTED));
    /* A helpwired shutting down (a restart) cancels the calls that reach it
     * during its drain: chaos_test lost messages to this as dead letters. */
    assert_true(br_route_retryable(GRPC_STATUS_CANCELLED));
    /* The same request gets the same answer: retrying only stalls the channel. */
    assert_false(br_route_retryable(GRPC_STATUS_OK));
    assert_false(br_route_retryable(GRPC_STATUS_INVALID_ARGUMENT));
    assert_false(br_route_retryable(GRPC_STATUS_FAILED_PRECONDITION));
    assert_false(br_route_retryable(GRPC_STATUS_PERMISSION_DENIED));
    assert_false(br_route_retryable(GRPC_STATUS_UNAUTHENTICATED));
    assert_false(br_route_retryable(GRPC_STATUS_NOT_FOUND));
    assert_false(br_route_retryable(GRPC_STATUS_INTERNAL));
    assert_false(br_route_retryable(GRPC_STATUS_UNKNOWN));
    assert_false(br_route_retryable(GRPC_STATUS_UNIMPLEMENTED));
    assert_false(br_route_retryable(GRPC_STATUS_DATA_LOSS));
}

typedef struct fixture {
    char dir[64];
    hw_log *log;
    hw_client *rpc;
    br_deadletter *dead;
    br_route_policy p;
} fixture;

typedef struct waits {
    int n, max_ms, total_ms;
    int stop_after; /* > 0: ask to stop at that wait */
} waits;

static bool record_wait(void *arg, int ms)
{
    waits *w = arg;
    w->n++;
    w->total_ms += ms;
    if (ms > w->max_ms)
        w->max_ms = ms;
    if (w->stop_after > 0 && w->n >= w->stop_after)
        return true;
    usleep((useconds_t)ms * 1000);
    return false;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/br_route_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char err[512];
    int null_fd = dup(2);
    f->log = hw_log_create_component(null_fd, HW_LOG_ERROR, false, "bridge", "test");
    hw_client_options o = {.target = "127.0.0.1:1", .timeout_ms = 2000}; /* nothing listens */
    assert_int_equal(hw_client_create(&f->rpc, &o, err, sizeof err), 0);
    assert_int_equal(br_deadletter_open(&f->dead, f->dir, "test", err, sizeof err), 0);
    f->p = (br_route_policy){.rpc = f->rpc,
                             .log = f->log,
                             .rpc_timeout_ms = 2000,
                             .backoff_initial_ms = 10,
                             .backoff_max_ms = 40,
                             .max_retry_age_ms = 300,
                             .dead = f->dead,
                             .channel_name = "telegram"};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char path[300];
    snprintf(path, sizeof path, "%s", br_deadletter_path(f->dead));
    br_deadletter_close(f->dead);
    hw_client_destroy(f->rpc);
    hw_log_destroy(f->log);
    unlink(path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static const br_inbound IN = {HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, "42", "Ana", "hello", "42:1", "en", NULL, NULL, 0, NULL};

static void unavailable_is_retried_with_bounded_backoff_then_dead_lettered_at_the_max_age(void **state)
{
    fixture *f = *state;
    waits w = {0};
    br_route_trace tr;
    /* The age is long against one attempt, even a slow one under a
     * sanitizer, so several retries fit in it whatever the machine. */
    f->p.max_retry_age_ms = 1500;
    int64_t now = br_route_now_ms();
    assert_int_equal(br_route_deliver(&f->p, &IN, now, record_wait, &w, &tr), BR_ROUTE_DEAD);
    assert_true(w.n >= 3);
    assert_true(w.max_ms <= 40); /* --backoff-max-ms */
    assert_int_equal(tr.attempts, w.n + 1);
    assert_int_equal(tr.last.code, GRPC_STATUS_UNAVAILABLE);
    assert_true(tr.last_ms - tr.received_ms >= 1500);
    assert_true(tr.last_ms - tr.received_ms < 1500 + 2000);
    /* It gave up because of the age, not after a count: the retries went on
     * for the whole age, with waits no longer than the cap. */
    assert_true(w.total_ms <= 40 * w.n);
    assert_int_equal(br_deadletter_count(f->dead, BR_DEAD_TOO_OLD), 1);
}

static void a_message_already_too_old_is_tried_once(void **state)
{
    fixture *f = *state;
    waits w = {0};
    br_route_trace tr;
    int64_t an_hour_ago = br_route_now_ms() - 3600 * 1000;
    assert_int_equal(br_route_deliver(&f->p, &IN, an_hour_ago, record_wait, &w, &tr), BR_ROUTE_DEAD);
    assert_int_equal(w.n, 0);
    assert_int_equal(tr.attempts, 1);
    assert_int_equal(tr.received_ms, an_hour_ago);
    assert_int_equal(br_deadletter_count(f->dead, BR_DEAD_TOO_OLD), 1);
}

static void a_stop_while_retrying_leaves_the_message_to_the_channel(void **state)
{
    fixture *f = *state;
    waits w = {.stop_after = 2};
    assert_int_equal(br_route_deliver(&f->p, &IN, 0, record_wait, &w, NULL), BR_ROUTE_RETRY);
    assert_int_equal(w.n, 2);
    assert_int_equal(br_deadletter_count(f->dead, BR_DEAD_TOO_OLD), 0);
}

static void one_attempt_without_a_wait_function(void **state)
{
    fixture *f = *state;
    br_route_trace tr;
    /* Young: the channel delivers it again (a webhook answers 503). */
    assert_int_equal(br_route_deliver(&f->p, &IN, br_route_now_ms(), NULL, NULL, &tr), BR_ROUTE_RETRY);
    assert_int_equal(tr.attempts, 1);
    /* A date ahead of our clock counts as now. */
    assert_int_equal(br_route_deliver(&f->p, &IN, br_route_now_ms() + 60000, NULL, NULL, &tr),
                     BR_ROUTE_RETRY);
    assert_true(tr.received_ms <= tr.first_ms);
    assert_int_equal(br_deadletter_count(f->dead, BR_DEAD_TOO_OLD), 0);
}

int main(void)
{
    hw_grpc_runtime_prepare();
    grpc_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(only_statuses_that_can_succeed_later_are_retried),
        cmocka_unit_test_setup_teardown(
            unavailable_is_retried_with_bounded_backoff_then_dead_lettered_at_the_max_age, setup, teardown),
        cmocka_unit_test_setup_teardown(a_message_already_too_old_is_tried_once, setup, teardown),
        cmocka_unit_test_setup_teardown(a_stop_while_retrying_leaves_the_message_to_the_channel, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(one_attempt_without_a_wait_function, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    grpc_shutdown();
    return rc;
}
