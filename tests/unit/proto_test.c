/*
 * proto_test: every message of the API survives pack/unpack unchanged, keeps
 * fields it does not know (a newer peer's), and rejects truncated or garbage
 * buffers without crashing. The message list is generated from the protoc-c
 * headers, so a message added to proto/ is covered without editing this
 * file. Messages are filled through protobuf-c's descriptors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "grpc/health/v1/health.pb-c.h"
#include "helpwire/v1/admin.pb-c.h"
#include "helpwire/v1/agents.pb-c.h"
#include "helpwire/v1/cluster.pb-c.h"
#include "helpwire/v1/common.pb-c.h"
#include "helpwire/v1/customers.pb-c.h"
#include "helpwire/v1/knowledge.pb-c.h"
#include "helpwire/v1/outbox.pb-c.h"
#include "helpwire/v1/reports.pb-c.h"
#include "helpwire/v1/router.pb-c.h"
#include "helpwire/v1/sla.pb-c.h"
#include "helpwire/v1/surveys.pb-c.h"
#include "helpwire/v1/tickets.pb-c.h"
#include "server/base/arena.h"
#include "server/base/pbjson.h"

#define HW_MESSAGE(name) &name##__descriptor,
static const ProtobufCMessageDescriptor *const all_messages[] = {
#include "proto/helpwire_messages.inc"
#include "proto/health_messages.inc"
};
#undef HW_MESSAGE
#define N_MESSAGES (sizeof(all_messages) / sizeof(all_messages[0]))

/* Deterministic generator so failures reproduce. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static ProtobufCMessage *fill_message(hw_arena *a, const ProtobufCMessageDescriptor *d, uint64_t *rng,
                                      int depth);

/* Writes one non-default value of field f at dst. */
static void fill_value(hw_arena *a, const ProtobufCFieldDescriptor *f, void *dst, uint64_t *rng, int depth)
{
    uint64_t r = rng_next(rng);
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        *(int32_t *)dst = (int32_t)(r % 2000000) - 1000000 + 1;
        if (*(int32_t *)dst == 0)
            *(int32_t *)dst = 7;
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        *(uint32_t *)dst = (uint32_t)(r | 1);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        *(int64_t *)dst = (int64_t)(r | 1);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        *(uint64_t *)dst = r | 1;
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        *(float *)dst = (float)(r % 1000) + 0.5f;
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        *(double *)dst = (double)(r % 100000) / 7.0 + 0.25;
        break;
    case PROTOBUF_C_TYPE_BOOL:
        *(protobuf_c_boolean *)dst = 1;
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *e = f->descriptor;
        /* Any value but the zero default, so it is on the wire. */
        *(int32_t *)dst = e->values[1 + r % (e->n_values - 1)].value;
        break;
    }
    case PROTOBUF_C_TYPE_STRING:
        *(char **)dst = hw_arena_printf(a, "%s-%llu-重置密码", f->name, (unsigned long long)(r % 100000));
        break;
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *b = dst;
        b->len = 1 + r % 40;
        b->data = hw_arena_alloc(a, b->len);
        for (size_t i = 0; i < b->len; i++)
            b->data[i] = (uint8_t)rng_next(rng);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        *(ProtobufCMessage **)dst = fill_message(a, f->descriptor, rng, depth + 1);
        break;
    }
}

/* A message with every field set (repeated fields get 1-3 elements); nested
 * messages down to depth 3. */
static ProtobufCMessage *fill_message(hw_arena *a, const ProtobufCMessageDescriptor *d, uint64_t *rng,
                                      int depth)
{
    ProtobufCMessage *m = hw_arena_calloc(a, 1, d->sizeof_message);
    assert_non_null(m);
    protobuf_c_message_init(d, m);
    if (depth > 3)
        return m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char *base = (char *)m;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t *which = (uint32_t *)(base + f->quantifier_offset);
            if (*which != 0)
                continue;
            *which = f->id;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = 1 + rng_next(rng) % 3;
            size_t es = hw_pb_value_size(f->type);
            char *arr = hw_arena_calloc(a, n, es);
            for (size_t k = 0; k < n; k++)
                fill_value(a, f, arr + k * es, rng, depth);
            *(size_t *)(base + f->quantifier_offset) = n;
            *(void **)(base + f->offset) = arr;
        } else {
            if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
                f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE &&
                !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
                *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
            fill_value(a, f, base + f->offset, rng, depth);
        }
    }
    return m;
}

static uint8_t *pack(hw_arena *a, const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = hw_arena_alloc(a, *len);
    assert_int_equal(protobuf_c_message_pack(m, buf), *len);
    return buf;
}

/* Every message, fully filled, packs, unpacks and packs again to the same
 * bytes, and the decoded copy has the same number of elements in every
 * repeated field. */
static void test_every_message_round_trips(void **state)
{
    (void)state;
    hw_arena *a = hw_arena_create(0);
    for (size_t i = 0; i < N_MESSAGES; i++) {
        const ProtobufCMessageDescriptor *d = all_messages[i];
        for (uint64_t seed = 1; seed <= 5; seed++) {
            uint64_t rng = 0x9E3779B97F4A7C15ull * seed;
            ProtobufCMessage *m = fill_message(a, d, &rng, 0);
            size_t len;
            uint8_t *buf = pack(a, m, &len);
            if (d->n_fields > 0)
                assert_true(len > 0);
            ProtobufCMessage *back = protobuf_c_message_unpack(d, hw_arena_allocator(a), len, buf);
            if (!back)
                fail_msg("%s did not unpack its own encoding", d->name);
            assert_true(protobuf_c_message_check(back));
            assert_int_equal(back->n_unknown_fields, 0);
            size_t len2;
            uint8_t *buf2 = pack(a, back, &len2);
            assert_int_equal(len, len2);
            if (memcmp(buf, buf2, len) != 0)
                fail_msg("%s changed in a round trip", d->name);
            for (unsigned f = 0; f < d->n_fields; f++)
                if (d->fields[f].label == PROTOBUF_C_LABEL_REPEATED)
                    assert_int_equal(*(size_t *)((char *)m + d->fields[f].quantifier_offset),
                                     *(size_t *)((char *)back + d->fields[f].quantifier_offset));
        }
        hw_arena_reset(a);
    }
    hw_arena_destroy(a);
}

/* A concrete message reads back field by field (not only byte-equal). */
static void test_route_reply_fields_read_back(void **state)
{
    (void)state;
    Helpwire__V1__Hit hit = HELPWIRE__V1__HIT__INIT;
    hit.kind = HELPWIRE__V1__DOC_KIND__DOC_KIND_FAQ;
    hit.id = "f-1";
    hit.title = "如何重置密码";
    hit.score = 12.5;
    Helpwire__V1__Hit *hits[] = {&hit};
    Helpwire__V1__RouteReply r = HELPWIRE__V1__ROUTE_REPLY__INIT;
    r.action = HELPWIRE__V1__ROUTE_ACTION__ROUTE_ACTION_NEW_TICKET;
    r.reply_text = "We opened ticket #1042";
    r.n_hits = 1;
    r.hits = hits;
    r.confidence = 0.25;
    r.ticket_number = 1042;
    r.duplicate = 1;
    uint8_t buf[512];
    size_t len = helpwire__v1__route_reply__pack(&r, buf);
    Helpwire__V1__RouteReply *back = helpwire__v1__route_reply__unpack(NULL, len, buf);
    assert_non_null(back);
    assert_int_equal(back->action, HELPWIRE__V1__ROUTE_ACTION__ROUTE_ACTION_NEW_TICKET);
    assert_string_equal(back->reply_text, "We opened ticket #1042");
    assert_int_equal(back->n_hits, 1);
    assert_string_equal(back->hits[0]->title, "如何重置密码");
    assert_true(back->hits[0]->score == 12.5);
    assert_true(back->confidence == 0.25);
    assert_int_equal(back->ticket_number, 1042);
    assert_true(back->duplicate);
    assert_string_equal(back->customer_id, "");
    helpwire__v1__route_reply__free_unpacked(back, NULL);
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Fields from a newer schema (numbers this build does not know) are kept
 * and written out again, so a proxy in the middle loses nothing. */
static void test_unknown_fields_survive(void **state)
{
    (void)state;
    hw_arena *a = hw_arena_create(0);
    for (size_t i = 0; i < N_MESSAGES; i++) {
        const ProtobufCMessageDescriptor *d = all_messages[i];
        uint64_t rng = 42 + i;
        ProtobufCMessage *m = fill_message(a, d, &rng, 0);
        size_t len;
        uint8_t *buf = pack(a, m, &len);
        uint8_t extra[64];
        size_t n = 0;
        n += put_varint(extra + n, (1000u << 3) | 0); /* field 1000, varint */
        n += put_varint(extra + n, 123456789);
        n += put_varint(extra + n, (1001u << 3) | 2); /* field 1001, bytes */
        n += put_varint(extra + n, 5);
        memcpy(extra + n, "hello", 5);
        n += 5;
        uint8_t *wire = hw_arena_alloc(a, len + n);
        memcpy(wire, buf, len);
        memcpy(wire + len, extra, n);
        ProtobufCMessage *back = protobuf_c_message_unpack(d, hw_arena_allocator(a), len + n, wire);
        assert_non_null(back);
        assert_int_equal(back->n_unknown_fields, 2);
        size_t len2;
        uint8_t *again = pack(a, back, &len2);
        assert_int_equal(len2, len + n);
        if (memcmp(again, wire, len + n) != 0)
            fail_msg("%s did not keep unknown fields", d->name);
        hw_arena_reset(a);
    }
    hw_arena_destroy(a);
}

/* Every prefix of a valid encoding either fails to decode or decodes to
 * exactly that prefix (a cut between fields); cuts inside a field are
 * refused. Run under ASan this also proves no read past the buffer. */
static void test_truncated_buffers_rejected(void **state)
{
    (void)state;
    hw_arena *a = hw_arena_create(0);
    size_t rejected = 0;
    for (size_t i = 0; i < N_MESSAGES; i++) {
        const ProtobufCMessageDescriptor *d = all_messages[i];
        uint64_t rng = 7 + i;
        ProtobufCMessage *m = fill_message(a, d, &rng, 0);
        size_t len;
        uint8_t *buf = pack(a, m, &len);
        for (size_t cut = 0; cut < len; cut++) {
            /* A heap copy of exactly cut bytes, so ASan sees overreads. */
            uint8_t *prefix = malloc(cut ? cut : 1);
            memcpy(prefix, buf, cut);
            ProtobufCMessage *back = protobuf_c_message_unpack(d, NULL, cut, prefix);
            if (back == NULL) {
                rejected++;
            } else {
                size_t len2 = protobuf_c_message_get_packed_size(back);
                uint8_t *again = malloc(len2 ? len2 : 1);
                protobuf_c_message_pack(back, again);
                if (len2 != cut || memcmp(again, prefix, cut) != 0)
                    fail_msg("%s: a %zu-byte prefix decoded to something else", d->name, cut);
                free(again);
                protobuf_c_message_free_unpacked(back, NULL);
            }
            free(prefix);
        }
        hw_arena_reset(a);
    }
    assert_true(rejected > 100);
    hw_arena_destroy(a);
}

/* Malformed wire data is refused: an invalid wire type, a length past the
 * end, an overlong varint, a wrong wire type for a known field; random
 * bytes never crash. */
static void test_garbage_rejected(void **state)
{
    (void)state;
    static const uint8_t bad_wire_type[] = {0x0f, 0x01};
    static const uint8_t length_past_end[] = {0x0a, 0x20, 'a', 'b'};
    static const uint8_t overlong_varint[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                                              0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t field_zero[] = {0x00, 0x01};
    struct {
        const uint8_t *p;
        size_t n;
    } cases[] = {
        {bad_wire_type, sizeof bad_wire_type},
        {length_past_end, sizeof length_past_end},
        {overlong_varint, sizeof overlong_varint},
        {field_zero, sizeof field_zero},
    };
    for (size_t i = 0; i < N_MESSAGES; i++)
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            ProtobufCMessage *m = protobuf_c_message_unpack(all_messages[i], NULL, cases[c].n, cases[c].p);
            if (m != NULL)
                fail_msg("%s accepted malformed case %zu", all_messages[i]->name, c);
        }

    /* RouteRequest.text (field 4) is a string: a varint there is refused. */
    static const uint8_t wrong_type[] = {0x20, 0x05};
    assert_null(helpwire__v1__route_request__unpack(NULL, sizeof wrong_type, wrong_type));

    uint64_t rng = 12345;
    uint8_t junk[256];
    for (int round = 0; round < 2000; round++) {
        size_t n = rng_next(&rng) % sizeof junk;
        for (size_t k = 0; k < n; k++)
            junk[k] = (uint8_t)rng_next(&rng);
        const ProtobufCMessageDescriptor *d = all_messages[round % N_MESSAGES];
        ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, n, junk);
        if (m)
            protobuf_c_message_free_unpacked(m, NULL);
    }
}

/* The API holds every service and RPC that SPEC.md names. */
static void test_api_has_every_rpc(void **state)
{
    (void)state;
    static const struct {
        const ProtobufCServiceDescriptor *svc;
        const char *methods;
    } want[] = {
        {&helpwire__v1__router__descriptor, "Route"},
        {&helpwire__v1__knowledge__descriptor,
         "Search Answer PutArticle GetArticle DeleteArticle ListArticles PutFaq DeleteFaq ListFaqs "
         "PutSynonymSet DeleteSynonymSet ListSynonymSets ListSuggestions ApproveSuggestion RejectSuggestion"},
        {&helpwire__v1__customers__descriptor, "GetCustomer LookupCustomer UpdateCustomer LinkIdentity ExportCustomer EraseCustomer"},
        {&helpwire__v1__agents__descriptor,
         "PutAgent GetAgent ListAgents SetPresence PutSkill ListSkills GetSchedule"},
        {&helpwire__v1__sla__descriptor, "PutSlaPolicy ListSlaPolicies DeleteSlaPolicy"},
        {&helpwire__v1__reports__descriptor, "GetCsatReport GetSlaReport"},
        {&helpwire__v1__tickets__descriptor, "CreateTicket GetTicket ListTickets UpdateTicket AddMessage "
                                             "EscalateTicket SendChannelSignal CloseTicket GetTicketHistory WatchTickets"},
        {&helpwire__v1__surveys__descriptor, "SubmitSurvey GetSurvey GetSurveyStats"},
        {&helpwire__v1__outbox__descriptor, "Subscribe Ack ListFailed RetryFailed"},
        {&grpc__health__v1__health__descriptor, "Check Watch"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char names[512];
        snprintf(names, sizeof names, "%s", want[i].methods);
        unsigned count = 0;
        for (char *save = NULL, *tok = strtok_r(names, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
            int found = 0;
            for (unsigned m = 0; m < want[i].svc->n_methods; m++)
                found |= strcmp(want[i].svc->methods[m].name, tok) == 0;
            if (!found)
                fail_msg("%s lacks %s", want[i].svc->name, tok);
            count++;
        }
        assert_int_equal(count, want[i].svc->n_methods);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_message_round_trips), cmocka_unit_test(test_route_reply_fields_read_back),
        cmocka_unit_test(test_unknown_fields_survive),    cmocka_unit_test(test_truncated_buffers_rejected),
        cmocka_unit_test(test_garbage_rejected),          cmocka_unit_test(test_api_has_every_rpc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
