/*
 * status_details_test: the google.rpc.Status that server/net/status_details.c
 * writes for a failure decodes with protobuf-c's code generated from
 * proto/google/rpc (an independent decoder), says what the error
 * model promises per code (docs/errors.md), and is the canonical encoding
 * (protobuf-c packs the decoded message back to the same bytes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "server/net/status_details.h"

#define METHOD "/helpwire.v1.Tickets/UpdateTicket"

/* Encodes, checks the sizing contract, decodes. Free with status_free. */
static Google__Rpc__Status *encode(int code, const char *msg, const char *method, const hw_error_hint *hint,
                                   uint8_t **bytes, size_t *len)
{
    size_t n = hw_status_details_encode(code, msg, method, hint, NULL, 0);
    assert_true(n > 0);
    uint8_t small[8];
    assert_int_equal(hw_status_details_encode(code, msg, method, hint, small, sizeof small), n);
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    assert_int_equal(hw_status_details_encode(code, msg, method, hint, buf, n), n);
    Google__Rpc__Status *st = google__rpc__status__unpack(NULL, n, buf);
    assert_non_null(st);
    /* Canonical: protobuf-c writes the decoded message back byte for byte. */
    size_t again = google__rpc__status__get_packed_size(st);
    assert_int_equal(again, n);
    uint8_t *re = malloc(again);
    google__rpc__status__pack(st, re);
    assert_memory_equal(re, buf, n);
    free(re);
    *bytes = buf;
    *len = n;
    return st;
}

/* The detail of type name ("ErrorInfo"), or NULL; at most one each. */
static const Google__Protobuf__Any *detail(const Google__Rpc__Status *st, const char *name)
{
    char url[128];
    snprintf(url, sizeof url, "type.googleapis.com/google.rpc.%s", name);
    const Google__Protobuf__Any *found = NULL;
    for (size_t i = 0; i < st->n_details; i++)
        if (strcmp(st->details[i]->type_url, url) == 0) {
            assert_null(found);
            found = st->details[i];
        }
    return found;
}

static Google__Rpc__ErrorInfo *error_info(const Google__Rpc__Status *st)
{
    const Google__Protobuf__Any *a = detail(st, "ErrorInfo");
    assert_non_null(a);
    Google__Rpc__ErrorInfo *e = google__rpc__error_info__unpack(NULL, a->value.len, a->value.data);
    assert_non_null(e);
    assert_string_equal(e->domain, "helpwire.io");
    return e;
}

/* ErrorInfo.metadata[key], or NULL. */
static const char *meta(const Google__Rpc__ErrorInfo *e, const char *key)
{
    for (size_t i = 0; i < e->n_metadata; i++)
        if (strcmp(e->metadata[i]->key, key) == 0)
            return e->metadata[i]->value;
    return NULL;
}

/* RetryInfo's delay in ms, or -1 when there is none. */
static int64_t retry_ms(const Google__Rpc__Status *st)
{
    const Google__Protobuf__Any *a = detail(st, "RetryInfo");
    if (!a)
        return -1;
    Google__Rpc__RetryInfo *r = google__rpc__retry_info__unpack(NULL, a->value.len, a->value.data);
    assert_non_null(r);
    assert_non_null(r->retry_delay);
    int64_t ms = r->retry_delay->seconds * 1000 + r->retry_delay->nanos / 1000000;
    google__rpc__retry_info__free_unpacked(r, NULL);
    return ms;
}

static void done(Google__Rpc__Status *st, uint8_t *bytes)
{
    google__rpc__status__free_unpacked(st, NULL);
    free(bytes);
}

static void test_invalid_field_from_the_text(void **state)
{
    (void)state;
    uint8_t *b;
    size_t n;
    const char *msg = "ticket.subject: 300 bytes, at most 200 allowed";
    Google__Rpc__Status *st = encode(3, msg, METHOD, NULL, &b, &n);
    assert_int_equal(st->code, 3);
    assert_string_equal(st->message, msg);
    Google__Rpc__ErrorInfo *e = error_info(st);
    assert_string_equal(e->reason, "INVALID_FIELD");
    assert_string_equal(meta(e, "method"), METHOD);
    assert_string_equal(meta(e, "field"), "ticket.subject");
    const Google__Protobuf__Any *a = detail(st, "BadRequest");
    assert_non_null(a);
    Google__Rpc__BadRequest *br = google__rpc__bad_request__unpack(NULL, a->value.len, a->value.data);
    assert_int_equal(br->n_field_violations, 1);
    assert_string_equal(br->field_violations[0]->field, "ticket.subject");
    assert_string_equal(br->field_violations[0]->description, msg);
    assert_null(detail(st, "RetryInfo"));
    assert_null(detail(st, "PreconditionFailure"));
    google__rpc__bad_request__free_unpacked(br, NULL);
    google__rpc__error_info__free_unpacked(e, NULL);
    done(st, b);
}

static void test_given_field_wins_and_indexes_survive(void **state)
{
    (void)state;
    uint8_t *b;
    size_t n;
    const hw_error_hint h = {.field = "tags[2]"};
    Google__Rpc__Status *st = encode(3, "not a field prefix at all", METHOD, &h, &b, &n);
    Google__Rpc__ErrorInfo *e = error_info(st);
    assert_string_equal(e->reason, "INVALID_FIELD");
    assert_string_equal(meta(e, "field"), "tags[2]");
    assert_non_null(detail(st, "BadRequest"));
    google__rpc__error_info__free_unpacked(e, NULL);
    done(st, b);
}

static void test_invalid_request_without_a_field(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "request is not a valid helpwire.v1.GetTicketRequest (7 bytes)", /* no ": " */
        "token, survey_id: give exactly one of the two",                 /* not one path */
        ": empty name",
        "9lives: starts with a digit",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        uint8_t *b;
        size_t n;
        Google__Rpc__Status *st = encode(3, texts[i], METHOD, NULL, &b, &n);
        Google__Rpc__ErrorInfo *e = error_info(st);
        assert_string_equal(e->reason, "INVALID_REQUEST");
        assert_null(meta(e, "field"));
        assert_null(detail(st, "BadRequest"));
        google__rpc__error_info__free_unpacked(e, NULL);
        done(st, b);
    }
}

/* The field prefix is only read for INVALID_ARGUMENT: other codes' texts
 * may start with "status: ..." without naming a bad field. */
static void test_no_field_parse_for_other_codes(void **state)
{
    (void)state;
    uint8_t *b;
    size_t n;
    Google__Rpc__Status *st = encode(9, "status: use CloseTicket to close a ticket", METHOD, NULL, &b, &n);
    Google__Rpc__ErrorInfo *e = error_info(st);
    assert_string_equal(e->reason, "FAILED_PRECONDITION");
    assert_null(meta(e, "field"));
    assert_null(detail(st, "BadRequest"));
    const Google__Protobuf__Any *a = detail(st, "PreconditionFailure");
    assert_non_null(a);
    Google__Rpc__PreconditionFailure *pf =
        google__rpc__precondition_failure__unpack(NULL, a->value.len, a->value.data);
    assert_int_equal(pf->n_violations, 1);
    assert_string_equal(pf->violations[0]->type, "STATE");
    assert_string_equal(pf->violations[0]->subject, "");
    assert_string_equal(pf->violations[0]->description, "status: use CloseTicket to close a ticket");
    google__rpc__precondition_failure__free_unpacked(pf, NULL);
    google__rpc__error_info__free_unpacked(e, NULL);
    done(st, b);
}

static void test_version_conflict_names_the_resource(void **state)
{
    (void)state;
    uint8_t *b;
    size_t n;
    const hw_error_hint h = {.subject = "tickets/t-1042"};
    Google__Rpc__Status *st = encode(10, "ticket t-1042 is at version 3, not 2", METHOD, &h, &b, &n);
    assert_int_equal(st->code, 10);
    Google__Rpc__ErrorInfo *e = error_info(st);
    assert_string_equal(e->reason, "VERSION_CONFLICT");
    const Google__Protobuf__Any *a = detail(st, "PreconditionFailure");
    assert_non_null(a);
    Google__Rpc__PreconditionFailure *pf =
        google__rpc__precondition_failure__unpack(NULL, a->value.len, a->value.data);
    assert_int_equal(pf->n_violations, 1);
    assert_string_equal(pf->violations[0]->type, "VERSION");
    assert_string_equal(pf->violations[0]->subject, "tickets/t-1042");
    assert_string_equal(pf->violations[0]->description, "ticket t-1042 is at version 3, not 2");
    assert_int_equal(retry_ms(st), -1);
    google__rpc__precondition_failure__free_unpacked(pf, NULL);
    google__rpc__error_info__free_unpacked(e, NULL);
    done(st, b);
}

/* Retry advice: per code, per reason, per caller. */
static void test_retry_info(void **state)
{
    (void)state;
    static const struct {
        int code;
        const char *reason;
        int64_t hint_ms;
        const char *want_reason;
        int64_t want_ms;
    } cases[] = {
        {8, "OVERLOADED", 0, "OVERLOADED", 1000},
        {8, NULL, 0, "RESOURCE_EXHAUSTED", 1000},
        {8, "TOO_LARGE", 0, "TOO_LARGE", -1},
        {14, NULL, 0, "UNAVAILABLE", 1000},
        {14, "NOT_LEADER", 0, "NOT_LEADER", 200},
        {14, "DRAINING", 0, "DRAINING", 1000},
        {14, "DRAINING", 1500, "DRAINING", 1500},
        {14, "DRAINING", -1, "DRAINING", -1},
        {5, NULL, 0, "NOT_FOUND", -1},
        {16, NULL, 0, "UNAUTHENTICATED", -1},
        {7, NULL, 0, "PERMISSION_DENIED", -1},
        {4, NULL, 0, "DEADLINE_EXCEEDED", -1},
        {12, NULL, 0, "UNIMPLEMENTED", -1},
        {99, NULL, 0, "UNKNOWN", -1}, /* not a code: still a well-formed answer */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *b;
        size_t n;
        const hw_error_hint h = {.reason = cases[i].reason, .retry_delay_ms = cases[i].hint_ms};
        Google__Rpc__Status *st = encode(cases[i].code, "why", METHOD, &h, &b, &n);
        assert_int_equal(st->code, cases[i].code);
        Google__Rpc__ErrorInfo *e = error_info(st);
        assert_string_equal(e->reason, cases[i].want_reason);
        assert_int_equal(retry_ms(st), cases[i].want_ms);
        assert_string_equal(hw_status_details_reason(cases[i].code, "why", &h), cases[i].want_reason);
        google__rpc__error_info__free_unpacked(e, NULL);
        done(st, b);
    }
}

/* NOT_FOUND and the like: ErrorInfo only. */
static void test_not_found_is_error_info_only(void **state)
{
    (void)state;
    uint8_t *b;
    size_t n;
    Google__Rpc__Status *st = encode(5, "no ticket with id t-9", METHOD, NULL, &b, &n);
    assert_int_equal(st->n_details, 1);
    Google__Rpc__ErrorInfo *e = error_info(st);
    assert_string_equal(e->reason, "NOT_FOUND");
    assert_int_equal(e->n_metadata, 1);
    google__rpc__error_info__free_unpacked(e, NULL);
    done(st, b);
}

/* No text, no method: still a decodable Status with the code. */
static void test_without_text_or_method(void **state)
{
    (void)state;
    uint8_t *b;
    size_t n;
    Google__Rpc__Status *st = encode(13, NULL, NULL, NULL, &b, &n);
    assert_int_equal(st->code, 13);
    assert_string_equal(st->message, "");
    Google__Rpc__ErrorInfo *e = error_info(st);
    assert_string_equal(e->reason, "INTERNAL");
    assert_int_equal(e->n_metadata, 0);
    google__rpc__error_info__free_unpacked(e, NULL);
    done(st, b);
}

/* A long text is cut at HW_STATUS_DETAILS_MAX_TEXT bytes, never inside a
 * UTF-8 sequence, so the details stay small and valid. */
static void test_long_text_is_cut_on_a_character(void **state)
{
    (void)state;
    size_t chars = 3000;
    char *msg = malloc(chars * 2 + 1);
    msg[0] = 'x'; /* odd offset: a cut at 1024 would split a 2-byte "é" */
    for (size_t i = 0; i < chars - 1; i++)
        memcpy(msg + 1 + 2 * i, "\xc3\xa9", 2);
    msg[1 + 2 * (chars - 1)] = '\0';
    uint8_t *b;
    size_t n;
    Google__Rpc__Status *st = encode(14, msg, METHOD, NULL, &b, &n);
    size_t len = strlen(st->message);
    assert_true(len <= HW_STATUS_DETAILS_MAX_TEXT && len >= HW_STATUS_DETAILS_MAX_TEXT - 3);
    assert_int_equal(len % 2, 1); /* "x" then whole "é"s */
    assert_memory_equal(st->message, msg, len);
    assert_true(n < 3 * HW_STATUS_DETAILS_MAX_TEXT);
    done(st, b);
    free(msg);
}

static void test_field_helper(void **state)
{
    (void)state;
    char buf[8];
    assert_int_equal(hw_status_details_field(3, "agent.capacity: 1 to 1000", NULL, buf, sizeof buf), 7);
    assert_string_equal(buf, "agent.c"); /* cut to the buffer */
    assert_int_equal(hw_status_details_field(5, "agent: required", NULL, buf, sizeof buf), 0);
    assert_string_equal(buf, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invalid_field_from_the_text),
        cmocka_unit_test(test_given_field_wins_and_indexes_survive),
        cmocka_unit_test(test_invalid_request_without_a_field),
        cmocka_unit_test(test_no_field_parse_for_other_codes),
        cmocka_unit_test(test_version_conflict_names_the_resource),
        cmocka_unit_test(test_retry_info),
        cmocka_unit_test(test_not_found_is_error_info_only),
        cmocka_unit_test(test_without_text_or_method),
        cmocka_unit_test(test_long_text_is_cut_on_a_character),
        cmocka_unit_test(test_field_helper),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
