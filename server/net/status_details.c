/*
 * status_details: google.rpc.Status for a failure (see status_details.h).
 *
 * The policy is two tables: per gRPC code the default reason, the default
 * retry delay and the kind of PreconditionFailure; per reason the retry
 * delays that differ from their code's. The encoder is a writer that
 * counts when it has no room, so each length-delimited submessage is
 * sized by running its own encoder once in counting mode before it is
 * written (the nesting is three deep; the cost is a few hundred bytes of
 * copying per failure, with no allocation).
 */
#include "server/net/status_details.h"

#include <stdbool.h>
#include <string.h>

/* Per gRPC code (0..16). */
static const struct {
    const char *reason;
    int64_t retry_ms;         /* RetryInfo by default: > 0 */
    const char *precondition; /* PreconditionFailure type, or NULL */
} CODES[17] = {
    [0] = {"OK", 0, NULL},
    [1] = {"CANCELLED", 0, NULL},
    [2] = {"UNKNOWN", 0, NULL},
    [3] = {"INVALID_REQUEST", 0, NULL}, /* INVALID_FIELD when a field is known */
    [4] = {"DEADLINE_EXCEEDED", 0, NULL},
    [5] = {"NOT_FOUND", 0, NULL},
    [6] = {"ALREADY_EXISTS", 0, NULL},
    [7] = {"PERMISSION_DENIED", 0, NULL},
    [8] = {"RESOURCE_EXHAUSTED", 1000, NULL},
    [9] = {"FAILED_PRECONDITION", 0, "STATE"},
    [10] = {"VERSION_CONFLICT", 0, "VERSION"},
    [11] = {"OUT_OF_RANGE", 0, NULL},
    [12] = {"UNIMPLEMENTED", 0, NULL},
    [13] = {"INTERNAL", 0, NULL},
    [14] = {"UNAVAILABLE", 1000, NULL},
    [15] = {"DATA_LOSS", 0, NULL},
    [16] = {"UNAUTHENTICATED", 0, NULL},
};

#define CODE_INVALID_ARGUMENT 3

/* Reasons whose retry advice differs from their code's (-1: none). */
static const struct {
    const char *reason;
    int64_t retry_ms;
} REASON_RETRY[] = {
    {"NOT_LEADER", 200}, /* a follower: the next try is forwarded to the new leader */
    {"NOT_READY", 200},  /* a new leader still applying earlier entries */
    {"TOO_LARGE", -1},   /* the same request fails again */
};

/* ---------------------------------------------------------------- policy */

static bool is_field_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '[' || c == ']';
}

/* The length of the field path that starts message ("ticket.subject: ..."),
 * or 0 when the text does not start with one. */
static size_t field_prefix(const char *message)
{
    if (!message || !((message[0] >= 'a' && message[0] <= 'z') || (message[0] >= 'A' && message[0] <= 'Z')))
        return 0;
    size_t n = 0;
    while (n < 128 && is_field_char(message[n]))
        n++;
    return message[n] == ':' && message[n + 1] == ' ' ? n : 0;
}

/* The field the details name: pointer and length (not NUL-terminated). */
static const char *field_of(int code, const char *message, const hw_error_hint *hint, size_t *len)
{
    if (hint && hint->field && hint->field[0]) {
        *len = strlen(hint->field);
        return hint->field;
    }
    if (code == CODE_INVALID_ARGUMENT) {
        *len = field_prefix(message);
        return *len ? message : NULL;
    }
    *len = 0;
    return NULL;
}

static int code_index(int code)
{
    return code >= 0 && code < (int)(sizeof CODES / sizeof CODES[0]) ? code : 2; /* UNKNOWN */
}

const char *hw_status_details_reason(int code, const char *message, const hw_error_hint *hint)
{
    if (hint && hint->reason && hint->reason[0])
        return hint->reason;
    size_t flen;
    if (code == CODE_INVALID_ARGUMENT && field_of(code, message, hint, &flen))
        return "INVALID_FIELD";
    return CODES[code_index(code)].reason;
}

size_t hw_status_details_field(int code, const char *message, const hw_error_hint *hint, char *buf,
                               size_t len)
{
    size_t n = 0;
    const char *f = field_of(code, message, hint, &n);
    if (!f || len == 0) {
        if (len)
            buf[0] = '\0';
        return 0;
    }
    if (n >= len)
        n = len - 1;
    memcpy(buf, f, n);
    buf[n] = '\0';
    return n;
}

/* The RetryInfo delay in ms, or < 0 for none. */
static int64_t retry_of(int code, const char *reason, const hw_error_hint *hint)
{
    if (hint && hint->retry_delay_ms != 0)
        return hint->retry_delay_ms;
    for (size_t i = 0; i < sizeof REASON_RETRY / sizeof REASON_RETRY[0]; i++)
        if (strcmp(reason, REASON_RETRY[i].reason) == 0)
            return REASON_RETRY[i].retry_ms;
    int64_t ms = CODES[code_index(code)].retry_ms;
    return ms > 0 ? ms : -1;
}

/* The length of s cut to at most max bytes without splitting a UTF-8
 * sequence. */
static size_t text_len(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n <= max)
        return n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* --------------------------------------------------------------- encoder */

/* Writes into p[0..cap) while there is room; counts always. */
typedef struct pb_writer {
    uint8_t *p;
    size_t cap;
    size_t n;
} pb_writer;

static void put_raw(pb_writer *w, const void *src, size_t len)
{
    if (w->p && w->n + len <= w->cap)
        memcpy(w->p + w->n, src, len);
    w->n += len;
}

static void put_varint(pb_writer *w, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;
    do {
        b[n] = (uint8_t)(v & 0x7F);
        v >>= 7;
        if (v)
            b[n] |= 0x80;
        n++;
    } while (v);
    put_raw(w, b, n);
}

static void put_tag(pb_writer *w, unsigned field, unsigned wire_type)
{
    put_varint(w, (uint64_t)field << 3 | wire_type);
}

/* A string field; proto3 leaves out the empty one. */
static void put_str(pb_writer *w, unsigned field, const char *s, size_t len)
{
    if (!len)
        return;
    put_tag(w, field, 2);
    put_varint(w, len);
    put_raw(w, s, len);
}

static void put_cstr(pb_writer *w, unsigned field, const char *s)
{
    put_str(w, field, s, s ? strlen(s) : 0);
}

typedef void (*enc_fn)(pb_writer *w, const void *arg);

/* A submessage field: sized by a counting run of fn, then written. */
static void put_msg(pb_writer *w, unsigned field, enc_fn fn, const void *arg)
{
    pb_writer count = {NULL, 0, 0};
    fn(&count, arg);
    put_tag(w, field, 2);
    put_varint(w, count.n);
    fn(w, arg);
}

/* Everything the messages are made of, resolved once. */
typedef struct details {
    int code;
    const char *message;
    size_t message_len;
    const char *reason;
    const char *method;
    const char *field;
    size_t field_len;
    const char *subject;
    const char *precondition;
    int64_t retry_ms;
} details;

typedef struct kv {
    const char *k;
    const char *v;
    size_t v_len;
} kv;

static void enc_map_entry(pb_writer *w, const void *arg)
{
    const kv *e = arg;
    put_cstr(w, 1, e->k);
    put_str(w, 2, e->v, e->v_len);
}

static void enc_error_info(pb_writer *w, const void *arg)
{
    const details *d = arg;
    put_cstr(w, 1, d->reason);
    put_cstr(w, 2, HW_STATUS_DETAILS_DOMAIN);
    /* Map entries in key order, as deterministic serialization has them. */
    if (d->field_len) {
        kv e = {"field", d->field, d->field_len};
        put_msg(w, 3, enc_map_entry, &e);
    }
    if (d->method && d->method[0]) {
        kv e = {"method", d->method, text_len(d->method, HW_STATUS_DETAILS_MAX_TEXT)};
        put_msg(w, 3, enc_map_entry, &e);
    }
}

static void enc_duration(pb_writer *w, const void *arg)
{
    int64_t ms = *(const int64_t *)arg;
    if (ms / 1000) {
        put_tag(w, 1, 0);
        put_varint(w, (uint64_t)(ms / 1000));
    }
    if (ms % 1000) {
        put_tag(w, 2, 0);
        put_varint(w, (uint64_t)(ms % 1000) * 1000000);
    }
}

static void enc_retry_info(pb_writer *w, const void *arg)
{
    const details *d = arg;
    put_msg(w, 1, enc_duration, &d->retry_ms);
}

static void enc_field_violation(pb_writer *w, const void *arg)
{
    const details *d = arg;
    put_str(w, 1, d->field, d->field_len);
    put_str(w, 2, d->message, d->message_len);
}

static void enc_bad_request(pb_writer *w, const void *arg)
{
    put_msg(w, 1, enc_field_violation, arg);
}

static void enc_violation(pb_writer *w, const void *arg)
{
    const details *d = arg;
    put_cstr(w, 1, d->precondition);
    put_str(w, 2, d->subject, text_len(d->subject, HW_STATUS_DETAILS_MAX_TEXT));
    put_str(w, 3, d->message, d->message_len);
}

static void enc_precondition_failure(pb_writer *w, const void *arg)
{
    put_msg(w, 1, enc_violation, arg);
}

/* google.protobuf.Any{type_url, value}: the value is the message fn writes. */
typedef struct any {
    const char *type_url;
    enc_fn fn;
    const details *d;
} any;

static void enc_any_value(pb_writer *w, const void *arg)
{
    const any *a = arg;
    a->fn(w, a->d);
}

static void enc_any(pb_writer *w, const void *arg)
{
    const any *a = arg;
    put_cstr(w, 1, a->type_url);
    put_msg(w, 2, enc_any_value, a);
}

#define TYPE_URL(name) "type.googleapis.com/google.rpc." name

static void enc_status(pb_writer *w, const details *d)
{
    if (d->code) {
        put_tag(w, 1, 0);
        put_varint(w, (uint64_t)(uint32_t)d->code);
    }
    put_str(w, 2, d->message, d->message_len);
    any a = {TYPE_URL("ErrorInfo"), enc_error_info, d};
    put_msg(w, 3, enc_any, &a);
    if (d->code == CODE_INVALID_ARGUMENT && d->field_len) {
        any b = {TYPE_URL("BadRequest"), enc_bad_request, d};
        put_msg(w, 3, enc_any, &b);
    }
    if (d->precondition) {
        any p = {TYPE_URL("PreconditionFailure"), enc_precondition_failure, d};
        put_msg(w, 3, enc_any, &p);
    }
    if (d->retry_ms > 0) {
        any r = {TYPE_URL("RetryInfo"), enc_retry_info, d};
        put_msg(w, 3, enc_any, &r);
    }
}

size_t hw_status_details_encode(int code, const char *message, const char *method, const hw_error_hint *hint,
                                uint8_t *buf, size_t cap)
{
    details d = {
        .code = code,
        .message = message,
        .message_len = text_len(message, HW_STATUS_DETAILS_MAX_TEXT),
        .method = method,
        .subject = hint ? hint->subject : NULL,
        .precondition = CODES[code_index(code)].precondition,
    };
    d.field = field_of(code, message, hint, &d.field_len);
    if (d.field_len > HW_STATUS_DETAILS_MAX_TEXT)
        d.field_len = HW_STATUS_DETAILS_MAX_TEXT;
    d.reason = hw_status_details_reason(code, message, hint);
    d.retry_ms = retry_of(code, d.reason, hint);
    pb_writer w = {buf, cap, 0};
    enc_status(&w, &d);
    return w.n;
}
