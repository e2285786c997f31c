/*
 * refusal_test: the permanent-refusal tables of refusal.c, one test per
 * channel for the answers that end a message as FAILED and one for those
 * that must be retried (rate limits, server errors, unknown codes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "clients/lib/refusal.h"

static void telegram_blocked_bad_request_are_permanent(void **state)
{
    (void)state;
    assert_int_equal(br_refusal_telegram(403), BR_REFUSAL_PERMANENT); /* bot was blocked by the user */
    assert_int_equal(br_refusal_telegram(413), BR_REFUSAL_PERMANENT); /* a file over the upload limit */
    assert_int_equal(br_refusal_telegram(400),
                     BR_REFUSAL_PERMANENT); /* message is too long, chat not found */
}

static void telegram_rate_limit_server_errors_are_transient(void **state)
{
    (void)state;
    static const long transient[] = {429, 500, 502, 503, 504, 408, 0, 401, 404, 409};
    for (size_t i = 0; i < sizeof transient / sizeof *transient; i++)
        assert_int_equal(br_refusal_telegram(transient[i]), BR_REFUSAL_TRANSIENT);
}

static void whatsapp_undeliverable_window_type_parameter_are_permanent(void **state)
{
    (void)state;
    static const long permanent[] = {131026, 131047, 131051, 100};
    for (size_t i = 0; i < sizeof permanent / sizeof *permanent; i++)
        assert_int_equal(br_refusal_whatsapp(permanent[i]), BR_REFUSAL_PERMANENT);
}

static void whatsapp_rate_limits_unknown_codes_are_transient(void **state)
{
    (void)state;
    static const long transient[] = {130429, 131056, 80007, 131000, 0, 1, 2, 131026 + 1};
    for (size_t i = 0; i < sizeof transient / sizeof *transient; i++)
        assert_int_equal(br_refusal_whatsapp(transient[i]), BR_REFUSAL_TRANSIENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(telegram_blocked_bad_request_are_permanent),
        cmocka_unit_test(telegram_rate_limit_server_errors_are_transient),
        cmocka_unit_test(whatsapp_undeliverable_window_type_parameter_are_permanent),
        cmocka_unit_test(whatsapp_rate_limits_unknown_codes_are_transient),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
