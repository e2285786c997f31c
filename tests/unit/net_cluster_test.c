/*
 * net on a replica (server/net: hw_net_options.cluster): two servers in
 * this process on 127.0.0.1:0. A is a follower whose leader is B; B's
 * leader is A, so a call B forwarded on would come back (it must not: a
 * forwarded call runs where it lands). Real gRPC clients (C core) call
 * them. The cluster hooks are a test counter per server, raised from a
 * thread where a test needs the applied index to move while a call waits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "grpc/health/v1/health.pb-c.h"
#include "server/net/net.h"

/* ------------------------------------------------- test cluster hooks */

typedef struct pending {
    struct pending *next;
    uint64_t index;
    void (*cb)(void *, bool);
    void *arg;
} pending;

typedef struct node {
    const char *name;
    pthread_mutex_t mu;
    uint64_t applied;
    char leader[64]; /* "" = no leader to forward to */
    pending *waiting;
    atomic_int writes_run, reads_run;
    atomic_uint_fast64_t read_saw_applied; /* applied index when the read handler ran */
    hw_net *net;
} node;

static bool t_leader_target(void *app, char *buf, size_t len)
{
    node *n = app;
    pthread_mutex_lock(&n->mu);
    bool has = n->leader[0] != '\0';
    if (has)
        snprintf(buf, len, "%s", n->leader);
    pthread_mutex_unlock(&n->mu);
    return has;
}

static uint64_t t_applied_index(void *app)
{
    node *n = app;
    pthread_mutex_lock(&n->mu);
    uint64_t v = n->applied;
    pthread_mutex_unlock(&n->mu);
    return v;
}

static void t_when_applied(void *app, uint64_t index, void (*cb)(void *, bool), void *arg)
{
    node *n = app;
    pthread_mutex_lock(&n->mu);
    if (n->applied >= index) {
        pthread_mutex_unlock(&n->mu);
        cb(arg, true);
        return;
    }
    pending *p = calloc(1, sizeof *p);
    p->index = index;
    p->cb = cb;
    p->arg = arg;
    p->next = n->waiting;
    n->waiting = p;
    pthread_mutex_unlock(&n->mu);
}

/* Sets the applied index (ok) or stops the node (!ok: every wait ends). */
static void node_raise(node *n, uint64_t applied, bool ok)
{
    pending *fire = NULL;
    pthread_mutex_lock(&n->mu);
    if (applied > n->applied)
        n->applied = applied;
    for (pending **pp = &n->waiting; *pp;) {
        pending *p = *pp;
        if (!ok || p->index <= n->applied) {
            *pp = p->next;
            p->next = fire;
            fire = p;
        } else {
            pp = &p->next;
        }
    }
    pthread_mutex_unlock(&n->mu);
    while (fire) {
        pending *p = fire;
        fire = p->next;
        p->cb(p->arg, ok);
        free(p);
    }
}

static void node_set_leader(node *n, const char *leader)
{
    pthread_mutex_lock(&n->mu);
    snprintf(n->leader, sizeof n->leader, "%s", leader);
    pthread_mutex_unlock(&n->mu);
}

static const hw_net_cluster test_cluster = {t_leader_target, t_applied_index, t_when_applied};

/* ------------------------------------------------------------ handlers */

/* Echoes the request with what the handler saw: the authorization, the
 * forwarded mark, another metadata key and where it ran. */
static void echo(hw_call *call, const ProtobufCMessage *request, node *n)
{
    const Grpc__Health__V1__HealthCheckRequest *req = (const void *)request;
    const char *auth = hw_call_metadata(call, "authorization");
    const char *fwd = hw_call_metadata(call, "helpwire-forwarded");
    const char *trace = hw_call_metadata(call, "x-trace");
    char *out = hw_arena_alloc(hw_call_arena(call), 512);
    snprintf(out, 512, "%s|auth=%s|fwd=%s|trace=%s|on=%s", req->service, auth ? auth : "-", fwd ? fwd : "-",
             trace ? trace : "-", n->name);
    Grpc__Health__V1__HealthCheckRequest reply = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    reply.service = out;
    hw_call_reply(call, &reply.base);
}

/* A write named "trace" answers with the trace context the handler saw:
 * "<trace id>|<parent id>|<tracestate or ->|on=<node>". */
static void echo_trace(hw_call *call, node *n)
{
    const hw_trace *t = hw_call_trace(call);
    const char *ts = hw_call_tracestate(call);
    char *out = hw_arena_alloc(hw_call_arena(call), 256);
    snprintf(out, 256, "%s|%s|%s|on=%s", t->trace_id, t->parent_id, ts ? ts : "-", n->name);
    Grpc__Health__V1__HealthCheckRequest reply = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    reply.service = out;
    hw_call_reply(call, &reply.base);
}

static void h_write(hw_call *call, const ProtobufCMessage *request, void *app)
{
    node *n = app;
    atomic_fetch_add(&n->writes_run, 1);
    const Grpc__Health__V1__HealthCheckRequest *req = (const void *)request;
    if (strcmp(req->service, "trace") == 0)
        echo_trace(call, n);
    else
        echo(call, request, n);
}

static void h_fail(hw_call *call, const ProtobufCMessage *request, void *app)
{
    node *n = app;
    atomic_fetch_add(&n->writes_run, 1);
    hw_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION, "ticket %d is closed on %s", 7, n->name);
}

static void h_read(hw_call *call, const ProtobufCMessage *request, void *app)
{
    node *n = app;
    atomic_store(&n->read_saw_applied, t_applied_index(n));
    atomic_fetch_add(&n->reads_run, 1);
    echo(call, request, n);
}

static node node_b;

static bool t_authorize(void *app, hw_call *call, const hw_method *m)
{
    const char *auth = hw_call_metadata(call, "authorization");
    /* A token only the leader (B) knows yet: elsewhere the call goes to it. */
    if (auth && strcmp(auth, "Bearer fresh") == 0) {
        if (app == &node_b || hw_call_forward_to_leader(call))
            return true;
        hw_call_fail(call, GRPC_STATUS_UNAUTHENTICATED, "unknown token");
        return false;
    }
    if (!auth || strcmp(auth, "Bearer good") != 0) {
        hw_call_fail(call, GRPC_STATUS_UNAUTHENTICATED, "bad token");
        return false;
    }
    return true;
}

#define REQ &grpc__health__v1__health_check_request__descriptor
static const hw_method methods[] = {
    {.path = "/test.Echo/Write",
     .request = REQ,
     .reply = REQ,
     .handler = h_write,
     .allow = HW_ALLOW_AGENT,
     .write = true},
    {.path = "/test.Echo/Fail",
     .request = REQ,
     .reply = REQ,
     .handler = h_fail,
     .allow = HW_ALLOW_AGENT,
     .write = true},
    {.path = "/test.Echo/Read", .request = REQ, .reply = REQ, .handler = h_read, .allow = HW_ALLOW_AGENT},
};

/* ------------------------------------------------------------ fixtures */

static node node_a = {.name = "A"}, node_b = {.name = "B"}, node_solo = {.name = "solo"};
static char addr_a[64], addr_b[64], addr_solo[64];

static hw_net *start_server(node *n, const hw_net_cluster *cluster, char *addr_out)
{
    static const char *const listen[] = {"127.0.0.1:0"};
    hw_net_options o = {
        .listen = listen,
        .n_listen = 1,
        .threads = 2,
        .calls_per_method = 2,
        .max_message_bytes = 4 << 20,
        .max_concurrent_streams = 100,
        .keepalive_time_ms = 7200000,
        .keepalive_timeout_ms = 20000,
        .min_ping_interval_ms = 60000,
        .methods = methods,
        .n_methods = sizeof methods / sizeof methods[0],
        .app = n,
        .authorize = t_authorize,
        .cluster = cluster,
    };
    char err[256];
    hw_net *net = NULL;
    assert_int_equal(hw_net_create(&net, &o, err, sizeof err), 0);
    assert_int_equal(hw_net_start(net, err, sizeof err), 0);
    snprintf(addr_out, 64, "%s", hw_net_bound_address(net, 0));
    return net;
}

static int setup(void **state)
{
    node *all[] = {&node_a, &node_b, &node_solo};
    for (size_t i = 0; i < 3; i++)
        pthread_mutex_init(&all[i]->mu, NULL);
    node_a.net = start_server(&node_a, &test_cluster, addr_a);
    node_b.net = start_server(&node_b, &test_cluster, addr_b);
    node_solo.net = start_server(&node_solo, NULL, addr_solo);
    node_set_leader(&node_a, addr_b);
    node_set_leader(&node_b, addr_a); /* a forwarded call must still run on B */
    grpc_init();
    return 0;
}

static int teardown(void **state)
{
    node *all[] = {&node_a, &node_b, &node_solo};
    for (size_t i = 0; i < 3; i++) {
        node_raise(all[i], 0, false);
        hw_net_shutdown(all[i]->net, 1000);
        hw_net_destroy(all[i]->net);
        pthread_mutex_destroy(&all[i]->mu);
    }
    grpc_shutdown();
    return 0;
}

/* ---------------------------------------------------------- the client */

typedef struct result {
    grpc_status_code status;
    char details[512];
    char reply[512];
    bool has_applied;
    uint64_t applied;
    int64_t ms;
} result;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One unary call; md is key, value pairs, NULL-terminated. */
static result call(const char *addr, const char *path, const char *service, int timeout_ms, ...)
{
    result r;
    memset(&r, 0, sizeof r);
    grpc_metadata md[8];
    size_t n_md = 0;
    va_list ap;
    va_start(ap, timeout_ms);
    for (const char *k; (k = va_arg(ap, const char *)) != NULL && n_md < 8;) {
        const char *v = va_arg(ap, const char *);
        memset(&md[n_md], 0, sizeof md[n_md]);
        md[n_md].key = grpc_slice_from_static_string(k);
        md[n_md++].value = grpc_slice_from_static_string(v);
    }
    va_end(ap);

    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(addr, creds, NULL);
    grpc_channel_credentials_release(creds);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
    grpc_slice method = grpc_slice_from_static_string(path);
    grpc_call *c =
        grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method, NULL, deadline, NULL);

    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = (char *)service;
    size_t len = protobuf_c_message_get_packed_size(&req.base);
    grpc_slice s = grpc_slice_malloc(len);
    protobuf_c_message_pack(&req.base, GRPC_SLICE_START_PTR(s));
    grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);

    grpc_metadata_array initial, trailing;
    grpc_metadata_array_init(&initial);
    grpc_metadata_array_init(&trailing);
    grpc_byte_buffer *recv = NULL;
    grpc_slice details = grpc_empty_slice();
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = n_md;
    ops[0].data.send_initial_metadata.metadata = md;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
    ops[5].data.recv_status_on_client.status = &r.status;
    ops[5].data.recv_status_on_client.status_details = &details;
    int64_t t0 = mono_ms();
    assert_int_equal(grpc_call_start_batch(c, ops, 6, (void *)1, NULL), GRPC_CALL_OK);
    grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    r.ms = mono_ms() - t0;
    assert_int_equal(ev.type, GRPC_OP_COMPLETE);

    snprintf(r.details, sizeof r.details, "%.*s", (int)GRPC_SLICE_LENGTH(details),
             (const char *)GRPC_SLICE_START_PTR(details));
    if (recv) {
        grpc_byte_buffer_reader rd;
        grpc_byte_buffer_reader_init(&rd, recv);
        grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
        grpc_byte_buffer_reader_destroy(&rd);
        Grpc__Health__V1__HealthCheckRequest *rep = grpc__health__v1__health_check_request__unpack(
            NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
        if (rep) {
            snprintf(r.reply, sizeof r.reply, "%s", rep->service);
            grpc__health__v1__health_check_request__free_unpacked(rep, NULL);
        }
        grpc_slice_unref(all);
        grpc_byte_buffer_destroy(recv);
    }
    for (size_t i = 0; i < trailing.count; i++) {
        grpc_slice k = trailing.metadata[i].key, v = trailing.metadata[i].value;
        if (GRPC_SLICE_LENGTH(k) == strlen("helpwire-applied-index") &&
            memcmp(GRPC_SLICE_START_PTR(k), "helpwire-applied-index", GRPC_SLICE_LENGTH(k)) == 0) {
            char buf[32];
            snprintf(buf, sizeof buf, "%.*s", (int)GRPC_SLICE_LENGTH(v),
                     (const char *)GRPC_SLICE_START_PTR(v));
            r.has_applied = true;
            r.applied = strtoull(buf, NULL, 10);
        }
    }
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&initial);
    grpc_metadata_array_destroy(&trailing);
    grpc_byte_buffer_destroy(send);
    grpc_call_unref(c);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
    grpc_channel_destroy(ch);
    return r;
}

/* Raises a node's applied index after a delay, from its own thread. */
typedef struct raiser {
    node *n;
    uint64_t to;
    int after_ms;
    pthread_t t;
} raiser;

static void *raise_main(void *arg)
{
    raiser *r = arg;
    usleep((useconds_t)r->after_ms * 1000);
    node_raise(r->n, r->to, true);
    return NULL;
}

static void raise_later(raiser *r, node *n, uint64_t to, int after_ms)
{
    r->n = n;
    r->to = to;
    r->after_ms = after_ms;
    assert_int_equal(pthread_create(&r->t, NULL, raise_main, r), 0);
}

/* --------------------------------------------------------------- tests */

static void test_write_to_follower_runs_once_on_leader_with_credentials(void **state)
{
    int a0 = atomic_load(&node_a.writes_run), b0 = atomic_load(&node_b.writes_run);
    result r = call(addr_a, "/test.Echo/Write", "hello", 5000, "authorization", "Bearer good", "x-trace",
                    "t-1", NULL);
    assert_int_equal(r.status, GRPC_STATUS_OK);
    /* Ran on B (whose own leader is A: a forwarded call is not sent on). */
    assert_string_equal(r.reply, "hello|auth=Bearer good|fwd=1|trace=t-1|on=B");
    assert_int_equal(atomic_load(&node_b.writes_run), b0 + 1);
    assert_int_equal(atomic_load(&node_a.writes_run), a0);
    assert_true(r.has_applied);
    assert_int_equal(r.applied, t_applied_index(&node_a));
}

/* The relay continues the caller's trace with the follower's span as the
 * leader's parent, and passes tracestate on; an invalid traceparent is
 * replaced by the follower's new trace, and its tracestate dropped. */
static void test_forwarded_call_continues_the_trace(void **state)
{
    (void)state;
    result r = call(addr_a, "/test.Echo/Write", "trace", 5000, "authorization", "Bearer good", "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tracestate",
                    "congo=t61rcWkgMzE", NULL);
    assert_int_equal(r.status, GRPC_STATUS_OK);
    assert_int_equal(strlen(r.reply), 32 + 1 + 16 + 1 + strlen("congo=t61rcWkgMzE|on=B"));
    assert_memory_equal(r.reply, "4bf92f3577b34da6a3ce929d0e0e4736|", 33);
    assert_memory_not_equal(r.reply + 33, "00f067aa0ba902b7", 16); /* A's span, not the client's */
    assert_string_equal(r.reply + 49, "|congo=t61rcWkgMzE|on=B");

    r = call(addr_a, "/test.Echo/Write", "trace", 5000, "authorization", "Bearer good", "traceparent",
             "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "tracestate", "congo=t61rcWkgMzE",
             NULL);
    assert_int_equal(r.status, GRPC_STATUS_OK);
    assert_int_equal(strlen(r.reply), 32 + 1 + 16 + strlen("|-|on=B"));
    assert_memory_not_equal(r.reply, "00000000000000000000000000000000", 32);
    assert_memory_not_equal(r.reply + 33, "00f067aa0ba902b7", 16);
    assert_string_equal(r.reply + 49, "|-|on=B");
}

static void test_leader_failure_status_and_message_come_back(void **state)
{
    result r = call(addr_a, "/test.Echo/Fail", "x", 5000, "authorization", "Bearer good", NULL);
    assert_int_equal(r.status, GRPC_STATUS_FAILED_PRECONDITION);
    assert_string_equal(r.details, "ticket 7 is closed on B");
    assert_true(r.has_applied);
}

static void test_unauthorized_write_is_refused_before_forwarding(void **state)
{
    int b0 = atomic_load(&node_b.writes_run);
    result r = call(addr_a, "/test.Echo/Write", "x", 5000, "authorization", "Bearer bad", NULL);
    assert_int_equal(r.status, GRPC_STATUS_UNAUTHENTICATED);
    assert_int_equal(atomic_load(&node_b.writes_run), b0);
}

static void test_a_token_only_the_leader_knows_is_checked_there(void **state)
{
    /* A read, which A would serve itself, goes to B for the token. */
    result r = call(addr_a, "/test.Echo/Read", "r", 5000, "authorization", "Bearer fresh", NULL);
    assert_int_equal(r.status, GRPC_STATUS_OK);
    assert_string_equal(r.reply, "r|auth=Bearer fresh|fwd=1|trace=-|on=B");
    /* Already forwarded: not sent on again, refused where it is. */
    r = call(addr_a, "/test.Echo/Read", "r", 5000, "authorization", "Bearer fresh", "helpwire-forwarded", "1",
             NULL);
    assert_int_equal(r.status, GRPC_STATUS_UNAUTHENTICATED);
}

static void test_forwarded_call_runs_where_it_lands(void **state)
{
    /* B's leader is A, but the call says it was forwarded already. */
    int a0 = atomic_load(&node_a.writes_run);
    result r = call(addr_b, "/test.Echo/Write", "again", 5000, "authorization", "Bearer good",
                    "helpwire-forwarded", "1", NULL);
    assert_int_equal(r.status, GRPC_STATUS_OK);
    assert_string_equal(r.reply, "again|auth=Bearer good|fwd=1|trace=-|on=B");
    assert_int_equal(atomic_load(&node_a.writes_run), a0);
}

static void test_read_leader_header_forwards_a_read(void **state)
{
    result r = call(addr_a, "/test.Echo/Read", "r", 5000, "authorization", "Bearer good", "helpwire-read",
                    "leader", NULL);
    assert_int_equal(r.status, GRPC_STATUS_OK);
    assert_string_equal(r.reply, "r|auth=Bearer good|fwd=1|trace=-|on=B");
    /* Without the header a read is served by the follower itself. */
    r = call(addr_a, "/test.Echo/Read", "r", 5000, "authorization", "Bearer good", NULL);
    assert_int_equal(r.status, GRPC_STATUS_OK);
    assert_string_equal(r.reply, "r|auth=Bearer good|fwd=-|trace=-|on=A");
}

static void test_unreachable_leader_gives_unavailable_within_deadline(void **state)
{
    /* A port nobody listens on. */
    char dead[64];
    {
        hw_net *probe = NULL;
        static const char *const listen[] = {"127.0.0.1:0"};
        hw_net_options o = {.listen = listen,
                            .n_listen = 1,
                            .threads = 1,
                            .calls_per_method = 1,
                            .max_message_bytes = 1024,
                            .max_concurrent_streams = 1,
                            .keepalive_time_ms = 7200000,
                            .keepalive_timeout_ms = 20000,
                            .min_ping_interval_ms = 60000};
        char err[128];
        assert_int_equal(hw_net_create(&probe, &o, err, sizeof err), 0);
        snprintf(dead, sizeof dead, "%s", hw_net_bound_address(probe, 0));
        hw_net_destroy(probe);
    }
    node_set_leader(&node_a, dead);
    result r = call(addr_a, "/test.Echo/Write", "x", 3000, "authorization", "Bearer good", NULL);
    node_set_leader(&node_a, addr_b);
    assert_int_equal(r.status, GRPC_STATUS_UNAVAILABLE);
    char want[128];
    snprintf(want, sizeof want, "forwarding to leader %s: ", dead);
    assert_non_null(strstr(r.details, want));
    assert_true(r.ms < 3000);
    /* And back to the live leader: the channel follows the target. */
    r = call(addr_a, "/test.Echo/Write", "back", 5000, "authorization", "Bearer good", NULL);
    assert_int_equal(r.status, GRPC_STATUS_OK);
    assert_string_equal(r.reply, "back|auth=Bearer good|fwd=1|trace=-|on=B");
}

static void test_forwarded_answer_waits_until_follower_applied_the_write(void **state)
{
    uint64_t base = t_applied_index(&node_b) > t_applied_index(&node_a) ? t_applied_index(&node_b)
                                                                        : t_applied_index(&node_a);
    node_raise(&node_b, base + 10, true); /* the leader is ahead */
    raiser rs;
    raise_later(&rs, &node_a, base + 10, 200);
    result r = call(addr_a, "/test.Echo/Write", "w", 5000, "authorization", "Bearer good", NULL);
    pthread_join(rs.t, NULL);
    assert_int_equal(r.status, GRPC_STATUS_OK);
    assert_true(r.ms >= 190);
    assert_true(r.has_applied);
    assert_true(r.applied >= base + 10);
}

static void test_min_applied_index_waits_for_the_index(void **state)
{
    uint64_t want = t_applied_index(&node_b) + 5;
    char hdr[32];
    snprintf(hdr, sizeof hdr, "%" PRIu64, want);
    int reads0 = atomic_load(&node_b.reads_run);
    raiser rs;
    raise_later(&rs, &node_b, want, 200);
    result r = call(addr_b, "/test.Echo/Read", "m", 5000, "authorization", "Bearer good",
                    "helpwire-min-applied-index", hdr, NULL);
    pthread_join(rs.t, NULL);
    assert_int_equal(r.status, GRPC_STATUS_OK);
    assert_int_equal(atomic_load(&node_b.reads_run), reads0 + 1);
    assert_true(atomic_load(&node_b.read_saw_applied) >= want); /* ran after the raise */
    assert_true(r.ms >= 190);
    assert_true(r.has_applied && r.applied >= want);
    /* An index already applied is served at once. */
    r = call(addr_b, "/test.Echo/Read", "m", 5000, "authorization", "Bearer good",
             "helpwire-min-applied-index", hdr, NULL);
    assert_int_equal(r.status, GRPC_STATUS_OK);
    assert_true(r.ms < 190);
}

static void test_min_applied_index_past_deadline_is_deadline_exceeded(void **state)
{
    uint64_t want = t_applied_index(&node_b) + 1000;
    char hdr[32];
    snprintf(hdr, sizeof hdr, "%" PRIu64, want);
    int reads0 = atomic_load(&node_b.reads_run);
    result r = call(addr_b, "/test.Echo/Read", "m", 300, "authorization", "Bearer good",
                    "helpwire-min-applied-index", hdr, NULL);
    assert_int_equal(r.status, GRPC_STATUS_DEADLINE_EXCEEDED);
    assert_true(r.ms < 2000);
    assert_int_equal(atomic_load(&node_b.reads_run), reads0);
}

static void test_malformed_min_applied_index_is_invalid_argument(void **state)
{
    result r = call(addr_b, "/test.Echo/Read", "m", 5000, "authorization", "Bearer good",
                    "helpwire-min-applied-index", "12abc", NULL);
    assert_int_equal(r.status, GRPC_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(r.details, "helpwire-min-applied-index"));
}

static void test_single_node_adds_no_applied_index(void **state)
{
    result r = call(addr_solo, "/test.Echo/Write", "s", 5000, "authorization", "Bearer good",
                    "helpwire-min-applied-index", "99", NULL);
    assert_int_equal(r.status, GRPC_STATUS_OK);
    assert_string_equal(r.reply, "s|auth=Bearer good|fwd=-|trace=-|on=solo");
    assert_false(r.has_applied);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_to_follower_runs_once_on_leader_with_credentials),
        cmocka_unit_test(test_leader_failure_status_and_message_come_back),
        cmocka_unit_test(test_unauthorized_write_is_refused_before_forwarding),
        cmocka_unit_test(test_a_token_only_the_leader_knows_is_checked_there),
        cmocka_unit_test(test_forwarded_call_runs_where_it_lands),
        cmocka_unit_test(test_forwarded_call_continues_the_trace),
        cmocka_unit_test(test_read_leader_header_forwards_a_read),
        cmocka_unit_test(test_unreachable_leader_gives_unavailable_within_deadline),
        cmocka_unit_test(test_forwarded_answer_waits_until_follower_applied_the_write),
        cmocka_unit_test(test_min_applied_index_waits_for_the_index),
        cmocka_unit_test(test_min_applied_index_past_deadline_is_deadline_exceeded),
        cmocka_unit_test(test_malformed_min_applied_index_is_invalid_argument),
        cmocka_unit_test(test_single_node_adds_no_applied_index),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
