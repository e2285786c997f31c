/*
 * client_test: the parts of the client library that need no server: the
 * status names and which codes are retried, packing and unpacking, the
 * bearer metadata, a call that cannot start giving back what it took, the
 * reconnect schedule's defaults, and what a call to a closed port answers
 * with and without wait-for-ready, and how an address list becomes the
 * core's target. The calls themselves are exercised against helpwired by the integration
 * tests (bridges, CLI, load generator).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>

#include "clients/lib/client.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "helpwire/v1/router.pb-c.h"
#include "server/base/grpc_runtime.h"

static void status_names_are_canonical_and_unknown_beyond(void **unused)
{
    assert_string_equal(hw_client_status_name(GRPC_STATUS_OK), "OK");
    assert_string_equal(hw_client_status_name(GRPC_STATUS_INVALID_ARGUMENT), "INVALID_ARGUMENT");
    assert_string_equal(hw_client_status_name(GRPC_STATUS_UNAUTHENTICATED), "UNAUTHENTICATED");
    assert_string_equal(hw_client_status_name(17), "UNKNOWN");
    assert_string_equal(hw_client_status_name(-1), "UNKNOWN");
}

static void only_transient_codes_are_retryable(void **unused)
{
    assert_true(hw_client_status_retryable(GRPC_STATUS_UNAVAILABLE));
    assert_true(hw_client_status_retryable(GRPC_STATUS_DEADLINE_EXCEEDED));
    assert_true(hw_client_status_retryable(GRPC_STATUS_UNIMPLEMENTED));
    assert_false(hw_client_status_retryable(GRPC_STATUS_OK));
    assert_false(hw_client_status_retryable(GRPC_STATUS_INVALID_ARGUMENT));
    assert_false(hw_client_status_retryable(GRPC_STATUS_PERMISSION_DENIED));
    assert_false(hw_client_status_retryable(GRPC_STATUS_FAILED_PRECONDITION));
}

static void a_message_packs_and_unpacks_unchanged(void **unused)
{
    Helpwire__V1__RouteRequest req = HELPWIRE__V1__ROUTE_REQUEST__INIT;
    req.channel_user_id = "42";
    req.text = "如何重置密码";
    req.message_id = "m-1";
    grpc_byte_buffer *bb = hw_client_pack(&req.base);
    assert_non_null(bb);
    grpc_slice s = hw_client_buffer_slice(bb);
    assert_int_equal(GRPC_SLICE_LENGTH(s), protobuf_c_message_get_packed_size(&req.base));
    grpc_slice_unref(s);
    Helpwire__V1__RouteRequest *back =
        (Helpwire__V1__RouteRequest *)hw_client_unpack(bb, &helpwire__v1__route_request__descriptor);
    assert_non_null(back);
    assert_string_equal(back->text, req.text);
    assert_string_equal(back->message_id, "m-1");
    protobuf_c_message_free_unpacked(&back->base, NULL);
    grpc_byte_buffer_destroy(bb);

    grpc_slice junk = grpc_slice_from_static_string("\xff\xff\xff");
    bb = grpc_raw_byte_buffer_create(&junk, 1);
    assert_null(hw_client_unpack(bb, &helpwire__v1__route_request__descriptor));
    grpc_byte_buffer_destroy(bb);
}

static void the_bearer_entry_is_built_once_and_bad_tokens_are_refused_unnamed(void **unused)
{
    hw_client_auth a;
    char err[256];
    assert_int_equal(hw_client_auth_init(&a, NULL, err, sizeof err), 0);
    assert_int_equal(a.count, 0);
    hw_client_auth_clear(&a);
    assert_int_equal(hw_client_auth_init(&a, "tok-1", err, sizeof err), 0);
    assert_int_equal(a.count, 1);
    assert_true(grpc_slice_str_cmp(a.md[0].key, "authorization") == 0);
    assert_true(grpc_slice_str_cmp(a.md[0].value, "Bearer tok-1") == 0);
    hw_client_auth_clear(&a);
    assert_null(a.value);
    assert_int_equal(hw_client_auth_init(&a, "two words", err, sizeof err), -1);
    assert_null(strstr(err, "two words"));
    assert_non_null(strstr(err, "visible ASCII"));
    hw_client_auth_clear(&a);
}

static void a_call_that_cannot_start_gives_back_what_it_took(void **unused)
{
    hw_client_call c;
    hw_client_call_init(&c);
    grpc_slice body = grpc_slice_from_copied_string("x");
    grpc_byte_buffer *request = grpc_raw_byte_buffer_create(&body, 1);
    grpc_slice_unref(body);
    assert_int_not_equal(hw_client_call_start(&c, NULL, NULL, 0, request, &c), GRPC_CALL_OK);
    assert_ptr_equal(c.request, request);
    hw_client_call_end(&c); /* frees the request: the leak checker would see it otherwise */
    assert_null(c.request);
    hw_client_call_fini(&c);
}

static void a_client_refuses_a_bad_token_without_echoing_it(void **unused)
{
    hw_client *c = NULL;
    char err[256];
    hw_client_options o = {.target = "127.0.0.1:1", .token = "se cret"};
    assert_int_equal(hw_client_create(&c, &o, err, sizeof err), -1);
    assert_null(c);
    assert_null(strstr(err, "se cret"));
    o.token = "secret";
    o.tls_ca_file = "/nonexistent/ca.pem";
    assert_int_equal(hw_client_create(&c, &o, err, sizeof err), -1);
    assert_non_null(strstr(err, "--tls-ca"));
    o.tls_ca_file = NULL;
    assert_int_equal(hw_client_create(&c, &o, err, sizeof err), 0);
    size_t n = 0;
    assert_non_null(hw_client_metadata(c, &n));
    assert_int_equal(n, 1);
    hw_client_destroy(c);
}

static void the_reconnect_schedule_fills_defaults_and_keeps_initial_under_max(void **unused)
{
    hw_channel_reconnect r = hw_channel_reconnect_resolve(NULL);
    assert_int_equal(r.initial_ms, HW_CHANNEL_RECONNECT_INITIAL_MS);
    assert_int_equal(r.max_ms, HW_CHANNEL_RECONNECT_MAX_MS);
    assert_int_equal(r.connect_timeout_ms, HW_CHANNEL_CONNECT_TIMEOUT_MS);
    hw_channel_reconnect given = {.initial_ms = 50, .max_ms = 400, .connect_timeout_ms = 0};
    r = hw_channel_reconnect_resolve(&given);
    assert_int_equal(r.initial_ms, 50);
    assert_int_equal(r.max_ms, 400);
    assert_int_equal(r.connect_timeout_ms, HW_CHANNEL_CONNECT_TIMEOUT_MS);
    given = (hw_channel_reconnect){.initial_ms = 5000, .max_ms = 1000, .connect_timeout_ms = 300};
    r = hw_channel_reconnect_resolve(&given);
    assert_int_equal(r.initial_ms, 1000);
    assert_int_equal(r.connect_timeout_ms, 300);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A Route to a port nobody listens on, by a client with or without
 * wait-for-ready; returns how long it took. */
static int64_t route_to_closed_port(bool wait_for_ready, hw_client_status *st)
{
    hw_client *c = NULL;
    char err[256];
    hw_client_options o = {.target = "127.0.0.1:1", .timeout_ms = 600, .wait_for_ready = wait_for_ready};
    assert_int_equal(hw_client_create(&c, &o, err, sizeof err), 0);
    assert_int_equal(hw_client_wait_for_ready(c), wait_for_ready);
    Helpwire__V1__RouteRequest req = HELPWIRE__V1__ROUTE_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    int64_t t = mono_ms();
    hw_client_unary(c, "/helpwire.v1.Router/Route", &req.base, &helpwire__v1__route_reply__descriptor, &reply,
                    0, st);
    t = mono_ms() - t;
    assert_null(reply);
    hw_client_destroy(c);
    return t;
}

static void a_waiting_call_to_a_closed_port_is_unavailable_at_its_deadline(void **unused)
{
    hw_client_status st;
    int64_t took = route_to_closed_port(true, &st);
    assert_int_equal(st.code, GRPC_STATUS_UNAVAILABLE);
    assert_non_null(strstr(st.message, "no connection to helpwired within the deadline"));
    assert_true(took >= 500);
}

static void a_call_without_waiting_fails_at_once(void **unused)
{
    hw_client_status st;
    int64_t took = route_to_closed_port(false, &st);
    assert_int_equal(st.code, GRPC_STATUS_UNAVAILABLE);
    assert_null(strstr(st.message, "within the deadline"));
    assert_true(took < 500);
}

static int setup(void **unused)
{
    hw_grpc_runtime_prepare();
    grpc_init();
    return 0;
}

static int teardown(void **unused)
{
    grpc_shutdown();
    return 0;
}

static void one_address_passes_unchanged_and_a_list_becomes_a_static_target(void **unused)
{
    char t[256], a[64], err[256];
    assert_int_equal(hw_channel_target("localhost:50051", t, sizeof t, a, sizeof a, err, sizeof err), 0);
    assert_string_equal(t, "localhost:50051");
    assert_string_equal(a, "");
    assert_int_equal(
        hw_channel_target("127.0.0.1:1,10.0.0.2:50051", t, sizeof t, a, sizeof a, err, sizeof err), 0);
    assert_string_equal(t, "ipv4:127.0.0.1:1,10.0.0.2:50051");
    assert_string_equal(a, "127.0.0.1:1");
    assert_int_equal(hw_channel_target("[::1]:1,[fe80::1]:2", t, sizeof t, a, sizeof a, err, sizeof err), 0);
    assert_string_equal(t, "ipv6:[::1]:1,[fe80::1]:2");
    assert_string_equal(a, "[::1]:1");
}

static void a_bad_list_entry_is_refused_by_name(void **unused)
{
    char t[256], a[64], err[256];
    static const struct {
        const char *list, *named;
    } bad[] = {
        {"127.0.0.1:1,hw2.example:50051",
         "hw2.example:50051: a list of several addresses takes IP addresses"},
        {"127.0.0.1:1,,127.0.0.1:2", "an empty address"},
        {"127.0.0.1:1,127.0.0.1", "127.0.0.1: expected host:port"},
        {"127.0.0.1:1,127.0.0.1:70000", "127.0.0.1:70000: the port must be"},
        {"127.0.0.1:1,127.0.0.1:x", "127.0.0.1:x: the port must be"},
        {"127.0.0.1:1,[::1]:2", "[::1]:2: the list mixes IPv4 and IPv6"},
        {"[::1:2,[::1]:3", "[::1:2: expected [IPv6]:port"},
        {"999.0.0.1:1,127.0.0.1:2", "999.0.0.1:1: a list of several"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(hw_channel_target(bad[i].list, t, sizeof t, a, sizeof a, err, sizeof err), -1);
        if (!strstr(err, bad[i].named))
            fail_msg("%s: got \"%s\"", bad[i].list, err);
    }
    /* Too long for the caller's buffer: refused, not cut. */
    assert_int_equal(hw_channel_target("127.0.0.1:1,127.0.0.1:2", t, 10, a, sizeof a, err, sizeof err), -1);
}

static void a_client_refuses_a_bad_list_before_connecting(void **unused)
{
    hw_client *c = NULL;
    char err[256];
    hw_client_options o = {.target = "127.0.0.1:1,nosuch.invalid:2"};
    assert_int_equal(hw_client_create(&c, &o, err, sizeof err), -1);
    assert_null(c);
    assert_non_null(strstr(err, "nosuch.invalid:2"));
}

/* Packs msg as a google.protobuf.Any into any (the bytes into buf). */
static void pack_any(Google__Protobuf__Any *any, const char *type, const ProtobufCMessage *msg, uint8_t *buf)
{
    google__protobuf__any__init(any);
    any->type_url = (char *)type;
    any->value.len = protobuf_c_message_pack(msg, buf);
    any->value.data = buf;
}

/* The reason and retry delay of a server's google.rpc.Status are read from
 * its bytes; what is absent or broken leaves them unset. */
static void the_details_give_the_reason_and_the_retry_delay(void **unused)
{
    (void)unused;
    Google__Rpc__ErrorInfo info = GOOGLE__RPC__ERROR_INFO__INIT;
    info.reason = "RATE_LIMITED";
    info.domain = "helpwire.io";
    Google__Protobuf__Duration delay = GOOGLE__PROTOBUF__DURATION__INIT;
    delay.seconds = 1;
    delay.nanos = 834000001; /* rounded up to the next ms */
    Google__Rpc__RetryInfo retry = GOOGLE__RPC__RETRY_INFO__INIT;
    retry.retry_delay = &delay;
    uint8_t b1[256], b2[256], out[1024];
    Google__Protobuf__Any a1, a2;
    pack_any(&a1, "type.googleapis.com/google.rpc.ErrorInfo", &info.base, b1);
    pack_any(&a2, "type.googleapis.com/google.rpc.RetryInfo", &retry.base, b2);
    Google__Protobuf__Any *details[] = {&a1, &a2};
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    st.code = GRPC_STATUS_RESOURCE_EXHAUSTED;
    st.message = "too many messages from this sender: retry in 1835 ms";
    st.details = details;
    st.n_details = 2;
    size_t len = google__rpc__status__pack(&st, out);

    hw_client_status s;
    hw_client_status_set(&s, GRPC_STATUS_RESOURCE_EXHAUSTED, grpc_empty_slice());
    assert_string_equal(s.reason, "");
    assert_int_equal(s.retry_delay_ms, -1);
    hw_client_status_details(&s, out, len);
    assert_string_equal(s.reason, "RATE_LIMITED");
    assert_int_equal(s.retry_delay_ms, 1835);

    /* every cut of the bytes parses what is whole and never reads past */
    for (size_t cut = 0; cut < len; cut++) {
        hw_client_status t;
        hw_client_status_set(&t, GRPC_STATUS_RESOURCE_EXHAUSTED, grpc_empty_slice());
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, out, cut);
        hw_client_status_details(&t, copy, cut);
        free(copy);
        assert_true(t.retry_delay_ms == -1 || t.retry_delay_ms == 1835);
    }
    /* only ErrorInfo: no delay */
    st.n_details = 1;
    len = google__rpc__status__pack(&st, out);
    hw_client_status_set(&s, GRPC_STATUS_RESOURCE_EXHAUSTED, grpc_empty_slice());
    hw_client_status_details(&s, out, len);
    assert_string_equal(s.reason, "RATE_LIMITED");
    assert_int_equal(s.retry_delay_ms, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(status_names_are_canonical_and_unknown_beyond),
        cmocka_unit_test(only_transient_codes_are_retryable),
        cmocka_unit_test(a_message_packs_and_unpacks_unchanged),
        cmocka_unit_test(the_bearer_entry_is_built_once_and_bad_tokens_are_refused_unnamed),
        cmocka_unit_test(a_call_that_cannot_start_gives_back_what_it_took),
        cmocka_unit_test(a_client_refuses_a_bad_token_without_echoing_it),
        cmocka_unit_test(the_reconnect_schedule_fills_defaults_and_keeps_initial_under_max),
        cmocka_unit_test(a_waiting_call_to_a_closed_port_is_unavailable_at_its_deadline),
        cmocka_unit_test(a_call_without_waiting_fails_at_once),
        cmocka_unit_test(one_address_passes_unchanged_and_a_list_becomes_a_static_target),
        cmocka_unit_test(a_bad_list_entry_is_refused_by_name),
        cmocka_unit_test(a_client_refuses_a_bad_list_before_connecting),
        cmocka_unit_test(the_details_give_the_reason_and_the_retry_delay),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
