/*
 * errors_test: every HW_E* code of server/base/errors.h has a name, a text
 * and a gRPC status (hw_err_grpc_status), and only the server's own
 * failures map to INTERNAL. The codes are read from errors.h itself, so a
 * code added there without its row in the table fails here, even when
 * HW_ERR_COUNT was not raised.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/base/errors.h"

/* The codes that are no client's doing and no client's to retry: the
 * server's I/O, a store of a foreign schema, and HW_STOP (never an
 * outcome). Every other code must have a status of its own. */
static int really_internal(int code)
{
    return code == HW_EIO || code == HW_ESCHEMA || code == HW_STOP;
}

/* The status every code maps to: the API's error conventions (README, "API
 * conventions"), pinned. */
static const struct {
    int code;
    enum hw_grpc_code grpc;
} EXPECTED[] = {
    {HW_OK, HW_GRPC_OK},
    {HW_ENOTFOUND, HW_GRPC_NOT_FOUND},
    {HW_EEXISTS, HW_GRPC_ALREADY_EXISTS},
    {HW_ECONFLICT, HW_GRPC_ABORTED},
    {HW_EPRECONDITION, HW_GRPC_FAILED_PRECONDITION},
    {HW_EINVALID, HW_GRPC_INVALID_ARGUMENT},
    {HW_ENOMEM, HW_GRPC_RESOURCE_EXHAUSTED},
    {HW_EIO, HW_GRPC_INTERNAL},
    {HW_EFULL, HW_GRPC_RESOURCE_EXHAUSTED},
    {HW_ECLOSED, HW_GRPC_UNAVAILABLE},
    {HW_EBUSY, HW_GRPC_UNAVAILABLE},
    {HW_ESCHEMA, HW_GRPC_INTERNAL},
    {HW_ECORRUPT, HW_GRPC_DATA_LOSS},
    {HW_ETOOBIG, HW_GRPC_INVALID_ARGUMENT},
    {HW_ENOSPACE, HW_GRPC_RESOURCE_EXHAUSTED},
    {HW_STOP, HW_GRPC_INTERNAL},
    {HW_ENOTLEADER, HW_GRPC_UNAVAILABLE},
    {HW_EAGAIN, HW_GRPC_UNAVAILABLE},
};

/* The codes errors.h defines: each "HW_<NAME> = <value>," of its enum. */
typedef struct header_code {
    char name[64];
    int value;
} header_code;

static size_t codes_in_header(header_code *out, size_t max)
{
    FILE *f = fopen("server/base/errors.h", "r");
    assert_non_null(f); /* a data dependency of the test, in its runfiles */
    char line[512];
    size_t n = 0;
    while (fgets(line, sizeof line, f)) {
        char name[64];
        int value;
        if (sscanf(line, " %63[A-Z_] = %d ,", name, &value) != 2 || strncmp(name, "HW_", 3) != 0 ||
            strncmp(name, "HW_GRPC_", 8) == 0)
            continue;
        assert_true(n < max);
        snprintf(out[n].name, sizeof out[n].name, "%s", name);
        out[n++].value = value;
    }
    fclose(f);
    return n;
}

static void test_every_code_in_the_header_has_a_row(void **state)
{
    (void)state;
    header_code codes[64];
    size_t n = codes_in_header(codes, 64);
    assert_true(n >= 16); /* HW_OK .. HW_STOP at least: the parse works */
    for (size_t i = 0; i < n; i++) {
        int c = codes[i].value;
        if (strcmp(hw_errname(c), codes[i].name) != 0)
            fail_msg("%s (%d) has no row of its own in errors.c's table (its name there: %s)", codes[i].name,
                     c, hw_errname(c));
        assert_string_not_equal(hw_strerror(c), "unknown error");
        assert_true(c <= 0 && c > -HW_ERR_COUNT);
    }
    assert_int_equal(n, HW_ERR_COUNT); /* and HW_ERR_COUNT counts them all */
}

static void test_no_error_maps_to_ok_and_only_the_servers_own_to_internal(void **state)
{
    (void)state;
    header_code codes[64];
    size_t n = codes_in_header(codes, 64);
    for (size_t i = 0; i < n; i++) {
        int c = codes[i].value;
        enum hw_grpc_code g = hw_err_grpc_status(c);
        assert_true(g >= HW_GRPC_OK && g <= HW_GRPC_UNAUTHENTICATED);
        if (c == HW_OK) {
            assert_int_equal(g, HW_GRPC_OK);
            continue;
        }
        if (g == HW_GRPC_OK)
            fail_msg("%s maps to OK", codes[i].name);
        if (g == HW_GRPC_INTERNAL && !really_internal(c))
            fail_msg("%s maps to INTERNAL: give it the status a client can act on", codes[i].name);
    }
}

static void test_each_code_maps_to_its_documented_status(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof EXPECTED / sizeof EXPECTED[0]; i++)
        if (hw_err_grpc_status(EXPECTED[i].code) != EXPECTED[i].grpc)
            fail_msg("%s maps to %d, expected %d", hw_errname(EXPECTED[i].code),
                     (int)hw_err_grpc_status(EXPECTED[i].code), (int)EXPECTED[i].grpc);
    assert_int_equal(sizeof EXPECTED / sizeof EXPECTED[0], HW_ERR_COUNT);
}

static void test_a_value_that_is_no_code_is_internal(void **state)
{
    (void)state;
    assert_int_equal(hw_err_grpc_status(1), HW_GRPC_INTERNAL);
    assert_int_equal(hw_err_grpc_status(-HW_ERR_COUNT), HW_GRPC_INTERNAL);
    assert_int_equal(hw_err_grpc_status(-1000), HW_GRPC_INTERNAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_code_in_the_header_has_a_row),
        cmocka_unit_test(test_no_error_maps_to_ok_and_only_the_servers_own_to_internal),
        cmocka_unit_test(test_each_code_maps_to_its_documented_status),
        cmocka_unit_test(test_a_value_that_is_no_code_is_internal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
