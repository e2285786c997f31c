/*
 * net: replies answered from another thread are sent by the call's worker
 * (hw_call_reply_kept, hw_call_reply_packed, and hw_call_reply off the
 * worker). One server in this process on 127.0.0.1:0 with two workers; its
 * handlers hand every call to a test "writer" thread, which answers them
 * in groups, as the store's writer does after a commit. A real gRPC client
 * (C core) keeps many calls in flight at once.
 *
 * The hand-off must not let anything out early: while the writer holds
 * the calls (the commit is not done), the client must see no reply and no
 * response headers at all; once it answers, every call must get its own
 * reply, whichever way it was answered.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "grpc/health/v1/health.pb-c.h"
#include "server/net/net.h"

#define N_CALLS 300

/* ------------------------------------------------------ the test writer */

typedef struct held {
    struct held *next;
    hw_call *call;
    char service[64];
} held;

typedef struct writer {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    held *head;
    size_t n_held;
    bool open;     /* answer what arrives (else hold it) */
    bool stopping; /* the thread ends */
    pthread_t t;
} writer;

static writer wr;

/* Answers h's call the way its request asks: "kept-N", "packed-N",
 * "copied-N" (hw_call_reply with a reply on this stack) or "fail-N". */
static void answer(held *h)
{
    hw_arena *a = hw_call_arena(h->call);
    char *out = hw_arena_printf(a, "re:%s", h->service);
    if (strncmp(h->service, "fail-", 5) == 0) {
        hw_call_fail(h->call, GRPC_STATUS_FAILED_PRECONDITION, "refused %s", h->service);
    } else if (strncmp(h->service, "kept-", 5) == 0) {
        Grpc__Health__V1__HealthCheckRequest *r = hw_arena_alloc(a, sizeof *r);
        grpc__health__v1__health_check_request__init(r);
        r->service = out;
        hw_call_reply_kept(h->call, &r->base);
    } else if (strncmp(h->service, "packed-", 7) == 0) {
        Grpc__Health__V1__HealthCheckRequest r = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
        r.service = out;
        size_t len = grpc__health__v1__health_check_request__get_packed_size(&r);
        uint8_t *bytes = hw_arena_alloc(a, len);
        grpc__health__v1__health_check_request__pack(&r, bytes);
        hw_call_reply_packed(h->call, bytes, len);
    } else {
        Grpc__Health__V1__HealthCheckRequest r = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
        r.service = out;
        hw_call_reply(h->call, &r.base);
    }
    free(h);
}

static void *writer_main(void *arg)
{
    writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->stopping && !(w->open && w->head))
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->stopping && !w->head)
            break;
        held *group = w->head; /* one "group": everything queued */
        w->head = NULL;
        w->n_held = 0;
        pthread_mutex_unlock(&w->mu);
        while (group) {
            held *next = group->next;
            answer(group);
            group = next;
        }
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void writer_set_open(bool open)
{
    pthread_mutex_lock(&wr.mu);
    wr.open = open;
    pthread_cond_broadcast(&wr.cv);
    pthread_mutex_unlock(&wr.mu);
}

static size_t writer_held(void)
{
    pthread_mutex_lock(&wr.mu);
    size_t n = wr.n_held;
    pthread_mutex_unlock(&wr.mu);
    return n;
}

/* The handler: the call goes to the writer, which answers it later. */
static void h_write(hw_call *call, const ProtobufCMessage *request, void *app)
{
    (void)app;
    const Grpc__Health__V1__HealthCheckRequest *req = (const void *)request;
    held *h = calloc(1, sizeof *h);
    assert_non_null(h);
    h->call = call;
    snprintf(h->service, sizeof h->service, "%s", req->service);
    pthread_mutex_lock(&wr.mu);
    h->next = wr.head;
    wr.head = h;
    wr.n_held++;
    pthread_cond_broadcast(&wr.cv);
    pthread_mutex_unlock(&wr.mu);
}

#define REQ &grpc__health__v1__health_check_request__descriptor
static const hw_method methods[] = {
    {.path = "/test.Echo/Write", .request = REQ, .reply = REQ, .handler = h_write, .allow = HW_ALLOW_PUBLIC},
};

/* ------------------------------------------------------------ fixtures */

static hw_net *net;
static char addr[64];

static int setup(void **state)
{
    (void)state;
    pthread_mutex_init(&wr.mu, NULL);
    pthread_cond_init(&wr.cv, NULL);
    assert_int_equal(pthread_create(&wr.t, NULL, writer_main, &wr), 0);
    static const char *const listen[] = {"127.0.0.1:0"};
    hw_net_options o = {
        .listen = listen,
        .n_listen = 1,
        .threads = 2,
        .calls_per_method = 4,
        .max_message_bytes = 4 << 20,
        .max_concurrent_streams = 1000,
        .keepalive_time_ms = 7200000,
        .keepalive_timeout_ms = 20000,
        .min_ping_interval_ms = 60000,
        .methods = methods,
        .n_methods = 1,
    };
    char err[256];
    assert_int_equal(hw_net_create(&net, &o, err, sizeof err), 0);
    assert_int_equal(hw_net_start(net, err, sizeof err), 0);
    snprintf(addr, sizeof addr, "%s", hw_net_bound_address(net, 0));
    grpc_init();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    writer_set_open(true);
    assert_int_equal(hw_net_shutdown(net, 2000), 0);
    hw_net_destroy(net);
    pthread_mutex_lock(&wr.mu);
    wr.stopping = true;
    pthread_cond_broadcast(&wr.cv);
    pthread_mutex_unlock(&wr.mu);
    pthread_join(wr.t, NULL);
    pthread_cond_destroy(&wr.cv);
    pthread_mutex_destroy(&wr.mu);
    grpc_shutdown();
    return 0;
}

/* ---------------------------------------------------------- the client */

/* One call in flight: three batches, so that the headers (tag 3i+1) are
 * seen apart from the reply and status (3i+2); 3i sends the request. */
typedef struct client_call {
    grpc_call *call;
    char service[64];
    grpc_byte_buffer *send;
    grpc_metadata_array initial, trailing;
    grpc_byte_buffer *recv;
    grpc_status_code status;
    grpc_slice details;
    bool got_headers, done;
} client_call;

static client_call calls[N_CALLS];

static const char *kind_of(int i)
{
    static const char *const kinds[] = {"kept", "packed", "copied", "fail"};
    return kinds[i % 4];
}

static void start_call(grpc_channel *ch, grpc_completion_queue *cq, int i)
{
    client_call *cc = &calls[i];
    memset(cc, 0, sizeof *cc);
    snprintf(cc->service, sizeof cc->service, "%s-%d", kind_of(i), i);
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(30000, GPR_TIMESPAN));
    cc->call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                        grpc_slice_from_static_string("/test.Echo/Write"), NULL, deadline, NULL);
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = cc->service;
    size_t len = protobuf_c_message_get_packed_size(&req.base);
    grpc_slice s = grpc_slice_malloc(len);
    protobuf_c_message_pack(&req.base, GRPC_SLICE_START_PTR(s));
    cc->send = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    grpc_metadata_array_init(&cc->initial);
    grpc_metadata_array_init(&cc->trailing);
    cc->details = grpc_empty_slice();

    grpc_op ops[3];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = cc->send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    assert_int_equal(grpc_call_start_batch(cc->call, ops, 3, (void *)(intptr_t)(3 * i), NULL), GRPC_CALL_OK);
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[0].data.recv_initial_metadata.recv_initial_metadata = &cc->initial;
    assert_int_equal(grpc_call_start_batch(cc->call, ops, 1, (void *)(intptr_t)(3 * i + 1), NULL),
                     GRPC_CALL_OK);
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_MESSAGE;
    ops[0].data.recv_message.recv_message = &cc->recv;
    ops[1].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[1].data.recv_status_on_client.trailing_metadata = &cc->trailing;
    ops[1].data.recv_status_on_client.status = &cc->status;
    ops[1].data.recv_status_on_client.status_details = &cc->details;
    assert_int_equal(grpc_call_start_batch(cc->call, ops, 2, (void *)(intptr_t)(3 * i + 2), NULL),
                     GRPC_CALL_OK);
}

/* Takes the client's completions until `until` (a deadline); counts the
 * calls that got headers and that ended. */
static void take_events(grpc_completion_queue *cq, gpr_timespec until, int *headers, int *done)
{
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(cq, until, NULL);
        if (ev.type != GRPC_OP_COMPLETE)
            return;
        intptr_t tag = (intptr_t)ev.tag;
        client_call *cc = &calls[tag / 3];
        if (tag % 3 == 1) {
            cc->got_headers = true;
            ++*headers;
        } else if (tag % 3 == 2) {
            cc->done = true;
            if (++*done == N_CALLS)
                return;
        }
    }
}

static void check_reply(int i)
{
    client_call *cc = &calls[i];
    char want[80];
    snprintf(want, sizeof want, "re:%s", cc->service);
    if (strcmp(kind_of(i), "fail") == 0) {
        assert_int_equal(cc->status, GRPC_STATUS_FAILED_PRECONDITION);
        assert_null(cc->recv);
        return;
    }
    assert_int_equal(cc->status, GRPC_STATUS_OK);
    assert_non_null(cc->recv);
    grpc_byte_buffer_reader rd;
    grpc_byte_buffer_reader_init(&rd, cc->recv);
    grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
    grpc_byte_buffer_reader_destroy(&rd);
    Grpc__Health__V1__HealthCheckRequest *rep =
        grpc__health__v1__health_check_request__unpack(NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
    assert_non_null(rep);
    assert_string_equal(rep->service, want);
    grpc__health__v1__health_check_request__free_unpacked(rep, NULL);
    grpc_slice_unref(all);
}

static void free_call(client_call *cc)
{
    grpc_byte_buffer_destroy(cc->send);
    if (cc->recv)
        grpc_byte_buffer_destroy(cc->recv);
    grpc_metadata_array_destroy(&cc->initial);
    grpc_metadata_array_destroy(&cc->trailing);
    grpc_slice_unref(cc->details);
    grpc_call_unref(cc->call);
}

/* Runs N_CALLS calls on one channel; with hold, the writer holds them all
 * (nothing may reach the client) before it answers them. */
static void run_calls(bool hold)
{
    writer_set_open(!hold);
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(addr, creds, NULL);
    grpc_channel_credentials_release(creds);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    for (int i = 0; i < N_CALLS; i++)
        start_call(ch, cq, i);
    int headers = 0, done = 0;
    if (hold) {
        /* Every call reaches the writer; then a while more for anything
         * sent too early to arrive. */
        gpr_timespec give_up = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(20000, GPR_TIMESPAN));
        while (writer_held() < N_CALLS && gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), give_up) < 0)
            take_events(cq, gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(10, GPR_TIMESPAN)),
                        &headers, &done);
        assert_int_equal(writer_held(), N_CALLS);
        take_events(cq, gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(300, GPR_TIMESPAN)),
                    &headers, &done);
        assert_int_equal(headers, 0);
        assert_int_equal(done, 0);
        writer_set_open(true);
    }
    take_events(cq, gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(20000, GPR_TIMESPAN)),
                &headers, &done);
    assert_int_equal(done, N_CALLS);
    for (int i = 0; i < N_CALLS; i++) {
        check_reply(i);
        free_call(&calls[i]);
    }
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
    grpc_channel_destroy(ch);
}

/* --------------------------------------------------------------- tests */

static void test_replies_from_another_thread_reach_every_caller(void **state)
{
    (void)state;
    run_calls(false);
}

static void test_nothing_reaches_the_client_before_the_writer_answers(void **state)
{
    (void)state;
    run_calls(true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replies_from_another_thread_reach_every_caller),
        cmocka_unit_test(test_nothing_reaches_the_client_before_the_writer_answers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
