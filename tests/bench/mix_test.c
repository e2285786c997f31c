/*
 * mix_test: the RPC mix parser (bench/mix.c) accepts the documented forms,
 * rejects bad ones with a message, and picks RPCs in proportion to their
 * weights.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bench/mix.h"

static void test_parses_weights_and_bare_names(void **state)
{
    (void)state;
    hw_mix m;
    char err[128];
    assert_int_equal(hw_mix_parse("Route=70, GetTicket=20,CreateTicket=10", &m, err, sizeof(err)), 0);
    assert_int_equal(m.weight[HW_RPC_ROUTE], 70);
    assert_int_equal(m.weight[HW_RPC_GET_TICKET], 20);
    assert_int_equal(m.weight[HW_RPC_CREATE_TICKET], 10);
    assert_int_equal(m.total, 100);
    assert_int_equal(hw_mix_first(&m), HW_RPC_ROUTE);
    assert_int_equal(hw_mix_parse("Search", &m, err, sizeof(err)), 0);
    assert_int_equal(m.weight[HW_RPC_SEARCH], 1);
    assert_int_equal(hw_mix_first(&m), HW_RPC_SEARCH);
    char buf[64];
    assert_int_equal(hw_mix_parse("Route=3,Route=2", &m, err, sizeof(err)), 0);
    assert_string_equal(hw_mix_format(&m, buf, sizeof(buf)), "Route=5");
}

static void test_rejects_unknown_names_and_bad_weights(void **state)
{
    (void)state;
    hw_mix m;
    char err[128];
    const char *bad[] = {"",        "Routes=1",         "Route=0",       "Route=-1",
                         "Route=x", "Route=1;Search=2", "Route=99999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_not_equal(hw_mix_parse(bad[i], &m, err, sizeof(err)), 0);
        assert_true(strlen(err) > 0);
        assert_int_equal(m.total, 0);
    }
}

static void test_picks_in_proportion_to_weights(void **state)
{
    (void)state;
    hw_mix m;
    char err[128];
    assert_int_equal(hw_mix_parse("Route=70,GetTicket=20,CreateTicket=10", &m, err, sizeof(err)), 0);
    uint64_t counts[HW_RPC_COUNT] = {0};
    /* an even sweep over the 32-bit range gives the proportions */
    const uint32_t n = 100000;
    for (uint32_t i = 0; i < n; i++)
        counts[hw_mix_pick(&m, (uint32_t)(((uint64_t)i << 32) / n))]++;
    /* truncation can move a boundary sample by one */
    assert_in_range(counts[HW_RPC_ROUTE], 69998, 70002);
    assert_in_range(counts[HW_RPC_GET_TICKET], 19998, 20002);
    assert_in_range(counts[HW_RPC_CREATE_TICKET], 9998, 10002);
    assert_int_equal(counts[HW_RPC_SEARCH], 0);
    assert_int_equal(hw_mix_pick(&m, UINT32_MAX), HW_RPC_GET_TICKET);
}

static void test_table_names_the_api_paths(void **state)
{
    (void)state;
    assert_string_equal(hw_rpc_info_of(HW_RPC_ROUTE)->path, "/helpwire.v1.Router/Route");
    assert_string_equal(hw_rpc_info_of(HW_RPC_SEARCH)->path, "/helpwire.v1.Knowledge/Search");
    assert_string_equal(hw_rpc_info_of(HW_RPC_CREATE_TICKET)->path, "/helpwire.v1.Tickets/CreateTicket");
    assert_string_equal(hw_rpc_info_of(HW_RPC_GET_TICKET)->path, "/helpwire.v1.Tickets/GetTicket");
    assert_int_equal(hw_rpc_from_name("GetTicket", 9), HW_RPC_GET_TICKET);
    assert_int_equal(hw_rpc_from_name("Get", 3), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parses_weights_and_bare_names),
        cmocka_unit_test(test_rejects_unknown_names_and_bad_weights),
        cmocka_unit_test(test_picks_in_proportion_to_weights),
        cmocka_unit_test(test_table_names_the_api_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
