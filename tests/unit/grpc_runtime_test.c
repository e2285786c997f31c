/*
 * grpc_runtime_test: hw_grpc_runtime_prepare() really turns off abseil's
 * lock-order graph. gpr_mu is an abseil mutex; taking two of them in one
 * order and then in the other is a lock-order cycle, which the graph
 * reports by aborting the process. Each case runs in a child process: the
 * control (no call) must abort, so the test also shows the graph is on in
 * this build; after the call the same sequence must finish normally.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <grpc/support/sync.h>

#include "server/base/grpc_runtime.h"

/* Takes a then b, then b then a, in one thread (no real deadlock). */
static void invert_lock_order(void)
{
    gpr_mu a, b;
    gpr_mu_init(&a);
    gpr_mu_init(&b);
    gpr_mu_lock(&a);
    gpr_mu_lock(&b);
    gpr_mu_unlock(&b);
    gpr_mu_unlock(&a);
    gpr_mu_lock(&b);
    gpr_mu_lock(&a);
    gpr_mu_unlock(&a);
    gpr_mu_unlock(&b);
    gpr_mu_destroy(&a);
    gpr_mu_destroy(&b);
}

/* Runs the inversion in a child; returns its wait status. */
static int run_child(int prepare)
{
    pid_t pid = fork();
    if (pid == 0) {
        /* The control's abort report is expected: keep it off the test log. */
        if (!freopen("/dev/null", "w", stderr))
            _exit(3);
        if (prepare && !hw_grpc_runtime_prepare())
            _exit(2);
        invert_lock_order();
        _exit(0);
    }
    int status = 0;
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static void test_control_aborts_on_cycle(void **state)
{
    (void)state;
    int st = run_child(0);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGABRT);
}

static void test_prepared_process_ignores_cycle(void **state)
{
    (void)state;
    int st = run_child(1);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_prepare_twice(void **state)
{
    (void)state;
    assert_true(hw_grpc_runtime_prepare());
    assert_true(hw_grpc_runtime_prepare());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control_aborts_on_cycle),
        cmocka_unit_test(test_prepared_process_ignores_cycle),
        cmocka_unit_test(test_prepare_twice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
