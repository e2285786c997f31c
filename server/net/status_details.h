/*
 * status_details: the rich error details of a failed call, the one place
 * that decides them. Every non-OK status helpwired sends carries, in the
 * trailing metadata "grpc-status-details-bin", a serialized google.rpc.Status
 * (proto/google/rpc/status.proto) with the same code and text as the
 * status, and these details (proto/google/rpc/error_details.proto):
 *
 * - google.rpc.ErrorInfo, always: domain "helpwire.io", a stable
 *   UPPER_SNAKE reason (the caller's, else the code's default from a table
 *   here), metadata "method" (the gRPC path) and, when one request field is
 *   at fault, "field";
 * - google.rpc.BadRequest for INVALID_ARGUMENT when the field is known
 *   (given, or the "field: why" prefix of the text the validators write);
 * - google.rpc.RetryInfo for RESOURCE_EXHAUSTED and UNAVAILABLE (the
 *   caller's delay, else the reason's default; none for TOO_LARGE: the same
 *   request would fail again);
 * - google.rpc.PreconditionFailure for FAILED_PRECONDITION (type "STATE")
 *   and ABORTED (type "VERSION"), with the resource as subject when known.
 *
 * The encoder writes the protobuf wire format itself, in two passes over
 * the same code (size, then bytes), so a failure costs one buffer of the
 * caller's (the call's arena) and nothing else: it runs on hot refusal
 * paths such as overload shedding. Texts in the details are cut at
 * HW_STATUS_DETAILS_MAX_TEXT bytes (on a UTF-8 boundary) to keep the
 * trailers far below the clients' metadata limits. No state; thread-safe.
 */
#ifndef HW_STATUS_DETAILS_H
#define HW_STATUS_DETAILS_H

#include <stddef.h>
#include <stdint.h>

/* The metadata key, and the ErrorInfo domain. */
#define HW_STATUS_DETAILS_KEY "grpc-status-details-bin"
#define HW_STATUS_DETAILS_DOMAIN "helpwire.io"

/* Longest text (message, descriptions) copied into the details. */
#define HW_STATUS_DETAILS_MAX_TEXT 1024

/* What a failing call knows beyond its code and text; every member is
 * optional (zero / NULL). Strings are read during the call that takes the
 * hint, not kept. */
typedef struct hw_error_hint {
    /* ErrorInfo.reason, UPPER_SNAKE ("OVERLOADED"); NULL: the code's
     * default (docs/errors.md lists them all). */
    const char *reason;
    /* The request field at fault ("ticket.subject", "tags[2]"); NULL: for
     * INVALID_ARGUMENT, the text's prefix before ": " when it reads as a
     * field path. */
    const char *field;
    /* The resource the failed precondition is about ("tickets/t-1042"). */
    const char *subject;
    /* RetryInfo delay: > 0 this many ms, < 0 no RetryInfo, 0 the default
     * of the reason (or the code). */
    int64_t retry_delay_ms;
} hw_error_hint;

/* Encodes the google.rpc.Status of a failure with code (a gRPC status
 * code, not OK) and message (may be NULL) for method (the gRPC path; may
 * be NULL) and hint (may be NULL) into buf when cap is large enough.
 * Returns the encoded size in bytes: call with cap 0 to learn it, then
 * again with a buffer of that size (with less room, buf's contents are
 * unspecified). Never allocates. */
size_t hw_status_details_encode(int code, const char *message, const char *method, const hw_error_hint *hint,
                                uint8_t *buf, size_t cap);

/* The ErrorInfo.reason the same arguments give: hint->reason or a static
 * string. */
const char *hw_status_details_reason(int code, const char *message, const hw_error_hint *hint);

/* The field the details name for these arguments, copied into buf (NUL
 * terminated); returns its length, 0 when none. */
size_t hw_status_details_field(int code, const char *message, const hw_error_hint *hint, char *buf,
                               size_t len);

#endif
