/*
 * outbox_test: br_outbox against a fake helpwire.v1.Outbox server in this
 * process (a C-core server on a loopback port: Subscribe streams the
 * messages a test queued and stays open, Ack records what it was told).
 * A message the channel refuses for good (FAILED), or that is given up
 * after its maximum age, is acknowledged as FAILED and leaves no recorded
 * steps in the sent record (br_sent_get_step), while another sequence's
 * steps stay.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include "clients/lib/outbox.h"
#include "clients/lib/sent.h"
#include "clients/lib/testdir.h"
#include "clients/lib/testserver.h"
#include "server/base/grpc_runtime.h"

enum { MAX_MSGS = 4, MAX_CALLS = 64 };

/* One call the fake serves: stage 0 waits for it to arrive, 1 for its
 * request, 3 for each streamed message to be sent (Subscribe), 2 for the
 * call's end. */
typedef struct srv_call {
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array md;
    grpc_byte_buffer *req, *reply;
    grpc_status_code code;
    int recv_close_cancelled;
    int stage;
    int sent; /* Subscribe: messages streamed */
    bool subscribe;
} srv_call;

typedef struct fake {
    grpc_server *server;
    grpc_completion_queue *cq;
    pthread_t thread;
    int port;
    srv_call calls[MAX_CALLS];
    int n_calls;
    Helpwire__V1__OutboundMessage msgs[MAX_MSGS]; /* streamed to each Subscribe */
    int n_msgs;
    /* what Ack was told */
    uint64_t failed_seq;
    char failed_reason[256];
    int acks;
} fake;

static fake F;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t acked = PTHREAD_COND_INITIALIZER;

static srv_call *request_next(void)
{
    if (F.n_calls == MAX_CALLS)
        return NULL;
    srv_call *c = &F.calls[F.n_calls++];
    memset(c, 0, sizeof *c);
    grpc_call_details_init(&c->details);
    grpc_metadata_array_init(&c->md);
    if (grpc_server_request_call(F.server, &c->call, &c->details, &c->md, F.cq, F.cq, c) != GRPC_CALL_OK)
        return NULL;
    return c;
}

/* A new call: its metadata out, its request in. */
static void on_arrived(srv_call *c)
{
    c->subscribe = grpc_slice_str_cmp(c->details.method, "/helpwire.v1.Outbox/Subscribe") == 0;
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_MESSAGE;
    ops[1].data.recv_message.recv_message = &c->req;
    c->stage = 1;
    grpc_call_start_batch(c->call, ops, 2, c, NULL);
}

/* Subscribe: streams the next queued message, one per batch (the core
 * takes one send at a time), then stays open until the client goes. */
static void send_next(srv_call *c)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    if (c->reply)
        grpc_byte_buffer_destroy(c->reply);
    c->reply = NULL;
    pthread_mutex_lock(&mu);
    if (c->sent < F.n_msgs)
        c->reply = hw_client_pack(&F.msgs[c->sent++].base);
    pthread_mutex_unlock(&mu);
    if (c->reply) {
        c->stage = 3;
        op.op = GRPC_OP_SEND_MESSAGE;
        op.data.send_message.send_message = c->reply;
    } else {
        c->stage = 2;
        op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
        op.data.recv_close_on_server.cancelled = &c->recv_close_cancelled;
    }
    grpc_call_start_batch(c->call, &op, 1, c, NULL);
}

/* Ack's request came: records a failure and answers. */
static void answer_ack(srv_call *c)
{
    grpc_op ops[3];
    size_t n = 0;
    memset(ops, 0, sizeof ops);
    c->stage = 2;
    Helpwire__V1__AckRequest *req = NULL;
    if (c->req)
        req = (Helpwire__V1__AckRequest *)hw_client_unpack(c->req, &helpwire__v1__ack_request__descriptor);
    pthread_mutex_lock(&mu);
    if (req && req->n_failed == 1) {
        F.failed_seq = req->failed[0]->seq;
        snprintf(F.failed_reason, sizeof F.failed_reason, "%s", req->failed[0]->reason);
    }
    F.acks++;
    pthread_cond_broadcast(&acked);
    pthread_mutex_unlock(&mu);
    if (req)
        protobuf_c_message_free_unpacked(&req->base, NULL);
    Helpwire__V1__AckReply rep = HELPWIRE__V1__ACK_REPLY__INIT;
    c->reply = hw_client_pack(&rep.base);
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = c->reply;
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n++].data.send_status_from_server.status = GRPC_STATUS_OK;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n++].data.recv_close_on_server.cancelled = &c->recv_close_cancelled;
    grpc_call_start_batch(c->call, ops, n, c, NULL);
}

static void *serve(void *unused)
{
    (void)unused;
    if (!request_next())
        return NULL;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(F.cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type != GRPC_OP_COMPLETE || ev.tag == (void *)9)
            break; /* the server shut down */
        srv_call *c = ev.tag;
        if (c->stage == 0) {
            if (ev.success) {
                request_next();
                on_arrived(c);
            }
        } else if (c->stage == 1) {
            if (c->subscribe)
                send_next(c);
            else
                answer_ack(c);
        } else if (c->stage == 3) {
            send_next(c);
        }
        /* stage 2 done: the call is finished with (freed at teardown) */
    }
    return NULL;
}
static hw_client *client;
static br_sent *sent;
static br_outbox *ob;
static char *dir;

static int setup(void **unused)
{
    (void)unused;
    memset(&F, 0, sizeof F);
    if (br_testserver_start(&F.server, &F.cq, &F.port, 5000, &client) != 0 ||
        pthread_create(&F.thread, NULL, serve, NULL) != 0)
        return -1;
    char err[256];
    dir = br_testdir_make("outbox");
    if (!dir || br_sent_open(&sent, dir, "telegram", 0, 0, err, sizeof err) != 0) {
        fprintf(stderr, "sent record: %s\n", dir ? err : "no directory");
        return -1;
    }
    return 0;
}

static int teardown(void **unused)
{
    (void)unused;
    br_outbox_stop(ob);
    ob = NULL;
    hw_client_destroy(client);
    client = NULL;
    grpc_server_shutdown_and_notify(F.server, F.cq, (void *)9);
    grpc_server_cancel_all_calls(F.server);
    pthread_join(F.thread, NULL);
    hw_client_cq_destroy(F.cq); /* what came after the shutdown notice */
    for (int i = 0; i < F.n_calls; i++) {
        srv_call *c = &F.calls[i];
        if (c->call)
            grpc_call_unref(c->call);
        if (c->req)
            grpc_byte_buffer_destroy(c->req);
        if (c->reply)
            grpc_byte_buffer_destroy(c->reply);
        grpc_call_details_destroy(&c->details);
        grpc_metadata_array_destroy(&c->md);
    }
    grpc_server_destroy(F.server);
    br_sent_close(sent);
    sent = NULL;
    free(dir);
    return 0;
}

/* The bridge's side: the text goes (step 0 recorded), then the file is
 * refused for good; or, with retry, the channel keeps failing. */
typedef struct deliver_ctx {
    int outcome;
    int calls;
} deliver_ctx;

static int deliver(void *arg, const Helpwire__V1__OutboundMessage *m, br_delivery *d)
{
    deliver_ctx *x = arg;
    char err[128];
    x->calls++;
    if (br_sent_put_step(sent, m->seq, 0, "501", err, sizeof err) != 0)
        return BR_OUTBOX_RETRY;
    if (x->outcome == BR_OUTBOX_FAILED)
        snprintf(d->reason, sizeof d->reason, "telegram 403: Forbidden: bot was blocked by the user");
    else
        snprintf(d->reason, sizeof d->reason, "telegram 502: Bad Gateway");
    return x->outcome;
}

static Helpwire__V1__Attachment photo = HELPWIRE__V1__ATTACHMENT__INIT;
static Helpwire__V1__Attachment *photos[] = {&photo};

/* Streams one message of seq with a text and a photo, through an outbox
 * whose deliver answers outcome, and waits for its Ack. */
static void run_one(uint64_t seq, int outcome, int64_t created_unix_ms, deliver_ctx *x)
{
    Helpwire__V1__OutboundMessage m = HELPWIRE__V1__OUTBOUND_MESSAGE__INIT;
    m.seq = seq;
    m.channel = HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM;
    m.channel_user_id = "42";
    m.kind = HELPWIRE__V1__OUTBOUND_KIND__OUTBOUND_KIND_AGENT_REPLY;
    m.text = "Here is the label";
    photo.id = "a-0123456789012345678901234567890123456789";
    photo.kind = HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_IMAGE;
    m.n_attachments = 1;
    m.attachments = photos;
    m.created_unix_ms = created_unix_ms;
    pthread_mutex_lock(&mu);
    F.msgs[F.n_msgs++] = m;
    pthread_mutex_unlock(&mu);

    x->outcome = outcome;
    br_outbox_options o = {
        .rpc = client,
        .channel = HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM,
        .rpc_timeout_ms = 5000,
        .backoff_initial_ms = 50,
        .backoff_max_ms = 200,
        .deliver = deliver,
        .deliver_arg = x,
        .workers = 1,
        .max_delivery_age_ms = 1000,
        .sent = sent,
    };
    assert_int_equal(br_outbox_start(&ob, &o), 0);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&mu);
    while (F.acks == 0 && pthread_cond_timedwait(&acked, &mu, &until) == 0)
        ;
    int acks = F.acks;
    pthread_mutex_unlock(&mu);
    /* Stopping joins the workers: what deliver wrote is then the test's
     * to read. */
    br_outbox_stop(ob);
    ob = NULL;
    assert_int_equal(acks, 1);
}

static int64_t now_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void a_message_refused_for_good_leaves_no_steps(void **unused)
{
    (void)unused;
    char err[128], id[32];
    /* Another message's step: not this failure's to remove. */
    assert_int_equal(br_sent_put_step(sent, 99, 1, "777", err, sizeof err), 0);
    deliver_ctx x = {0};
    run_one(7, BR_OUTBOX_FAILED, now_unix_ms(), &x);
    assert_int_equal(x.calls, 1);
    assert_int_equal(F.failed_seq, 7);
    assert_string_equal(F.failed_reason, "telegram 403: Forbidden: bot was blocked by the user");
    assert_int_equal(br_sent_get_step(sent, 7, 0, NULL, 0), 0);
    assert_int_equal(br_sent_get(sent, 7, NULL), 0);
    assert_int_equal(br_sent_get_step(sent, 99, 1, id, sizeof id), 1);
    assert_string_equal(id, "777");
}

static void a_message_given_up_after_its_age_leaves_no_steps(void **unused)
{
    (void)unused;
    deliver_ctx x = {0};
    /* Created two seconds ago with a maximum age of one: the first
     * transient failure is the last attempt. */
    run_one(8, BR_OUTBOX_RETRY, now_unix_ms() - 2000, &x);
    assert_int_equal(x.calls, 1);
    assert_int_equal(F.failed_seq, 8);
    assert_non_null(strstr(F.failed_reason, "gave up after 1 attempts"));
    assert_non_null(strstr(F.failed_reason, "telegram 502: Bad Gateway"));
    assert_int_equal(br_sent_get_step(sent, 8, 0, NULL, 0), 0);
}

int main(void)
{
    hw_grpc_runtime_prepare();
    grpc_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_message_refused_for_good_leaves_no_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(a_message_given_up_after_its_age_leaves_no_steps, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    grpc_shutdown();
    return rc;
}
