/*
 * outbox: the Subscribe stream on the C core (see outbox.h).
 *
 * One call per subscription on a private completion queue: batch 1
 * sends metadata (wait-for-ready), the request and half-close and receives
 * the initial metadata, which helpwired sends as it accepts the stream; a
 * RECV_STATUS_ON_CLIENT op stays pending for the life of the call; then one
 * RECV_MESSAGE at a time. While batch 1 waits for a connection, this
 * thread's grpc_completion_queue_next is what polls the channel's
 * connection attempts, so their outcome is seen at once (a client with no
 * call waiting learns of a connect only from the core's backup poller,
 * every 5 s). A NULL message means the server
 * ended the stream, whose status then arrives. br_outbox_stop cancels the
 * call from another thread (grpc_call_cancel is thread-safe), which
 * completes the pending ops.
 */
#include "clients/lib/outbox.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "clients/lib/backoff.h"
#include "clients/lib/dedupe.h"

/* A stream that lived this long counts as healthy: the next reconnect
 * starts from the initial backoff again. */
#define HEALTHY_STREAM_MS 5000

struct br_outbox {
    br_outbox_options o;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
    grpc_call *call; /* the live call, guarded by mu */
    br_dedupe *delivered;
    br_backoff backoff;
    atomic_ulong connects, n_delivered, acked, failed, refused;
};

typedef enum { TAG_START = 1, TAG_RECV, TAG_STATUS } tag_id;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool stopping(br_outbox *ob)
{
    pthread_mutex_lock(&ob->mu);
    bool s = ob->stopping;
    pthread_mutex_unlock(&ob->mu);
    return s || (ob->o.stop && br_stop_requested(ob->o.stop));
}

/* Waits ms or until stopped; true when stopped. Wakes at least every
 * 100 ms to notice a stop requested by a signal through o.stop. */
static bool sleep_ms(br_outbox *ob, int ms)
{
    int64_t end = now_ms() + ms;
    pthread_mutex_lock(&ob->mu);
    while (!ob->stopping && !(ob->o.stop && br_stop_requested(ob->o.stop))) {
        int64_t left = end - now_ms();
        if (left <= 0)
            break;
        if (left > 100)
            left = 100;
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        t.tv_nsec += (long)left * 1000000;
        if (t.tv_nsec >= 1000000000) {
            t.tv_sec++;
            t.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&ob->cv, &ob->mu, &t);
    }
    bool s = ob->stopping;
    pthread_mutex_unlock(&ob->mu);
    return s || (ob->o.stop && br_stop_requested(ob->o.stop));
}

/* Acknowledges seq; logs a failure (the message then comes back and is
 * acknowledged again without being resent). */
static void ack(br_outbox *ob, uint64_t seq, const char *failed_reason)
{
    Helpwire__V1__AckRequest req = HELPWIRE__V1__ACK_REQUEST__INIT;
    Helpwire__V1__FailedDelivery f = HELPWIRE__V1__FAILED_DELIVERY__INIT;
    Helpwire__V1__FailedDelivery *fp = &f;
    req.channel = ob->o.channel;
    if (failed_reason) {
        f.seq = seq;
        f.reason = (char *)failed_reason;
        req.n_failed = 1;
        req.failed = &fp;
    } else {
        req.n_seqs = 1;
        req.seqs = &seq;
    }
    ProtobufCMessage *reply = NULL;
    hw_client_status st;
    if (hw_client_unary(ob->o.rpc, "/helpwire.v1.Outbox/Ack", &req.base, &helpwire__v1__ack_reply__descriptor,
                        &reply, ob->o.rpc_timeout_ms, &st) == 0) {
        atomic_fetch_add(&ob->acked, 1);
        hw_log_event(ob->o.log, HW_LOG_DEBUG, "outbox_acked", "seq=%llu", (unsigned long long)seq);
    } else {
        char q[300];
        hw_log_event(ob->o.log, HW_LOG_WARN, "outbox_ack_failed", "seq=%llu code=%s message=%s",
                     (unsigned long long)seq, hw_client_status_name(st.code),
                     hw_log_quote(st.message, q, sizeof q));
    }
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
}

static void handle_message(br_outbox *ob, grpc_byte_buffer *bb)
{
    Helpwire__V1__OutboundMessage *m =
        (Helpwire__V1__OutboundMessage *)hw_client_unpack(bb, &helpwire__v1__outbound_message__descriptor);
    if (!m) {
        hw_log_event(ob->o.log, HW_LOG_ERROR, "outbox_bad_message", "reason=\"does not parse\"");
        return;
    }
    char key[32];
    snprintf(key, sizeof key, "%llu", (unsigned long long)m->seq);
    if (br_dedupe_contains(ob->delivered, key)) {
        hw_log_event(ob->o.log, HW_LOG_INFO, "outbox_redelivered_already_sent", "seq=%llu attempt=%u",
                     (unsigned long long)m->seq, m->attempt);
        ack(ob, m->seq, NULL);
        protobuf_c_message_free_unpacked(&m->base, NULL);
        return;
    }
    char reason[512] = "";
    int r = ob->o.deliver(ob->o.deliver_arg, m, reason, sizeof reason);
    if (r == BR_OUTBOX_DELIVERED) {
        atomic_fetch_add(&ob->n_delivered, 1);
        br_dedupe_add(ob->delivered, key);
        hw_log_event(ob->o.log, HW_LOG_INFO, "outbox_delivered", "seq=%llu kind=%d attempt=%u",
                     (unsigned long long)m->seq, (int)m->kind, m->attempt);
        ack(ob, m->seq, NULL);
    } else if (r == BR_OUTBOX_FAILED) {
        atomic_fetch_add(&ob->refused, 1);
        if (!reason[0])
            snprintf(reason, sizeof reason, "refused by the channel");
        char q[600];
        hw_log_event(ob->o.log, HW_LOG_WARN, "delivery_failed", "seq=%llu kind=%d attempt=%u reason=%s",
                     (unsigned long long)m->seq, (int)m->kind, m->attempt, hw_log_quote(reason, q, sizeof q));
        ack(ob, m->seq, reason);
    } else {
        atomic_fetch_add(&ob->failed, 1);
        hw_log_event(ob->o.log, HW_LOG_WARN, "outbox_delivery_failed", "seq=%llu kind=%d attempt=%u",
                     (unsigned long long)m->seq, (int)m->kind, m->attempt);
    }
    protobuf_c_message_free_unpacked(&m->base, NULL);
}

/* Waits for the completion of tag on cq; other tags seen meanwhile are
 * recorded in done[]. Returns the event's success. */
static int wait_tag(grpc_completion_queue *cq, tag_id tag, bool done[4], int ok[4])
{
    while (!done[tag]) {
        grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type != GRPC_OP_COMPLETE)
            return 0;
        tag_id t = (tag_id)(intptr_t)ev.tag;
        done[t] = true;
        ok[t] = ev.success;
    }
    return ok[tag];
}

/* Waits for batch 1 (TAG_START) of call: as long as it takes helpwired to
 * be reachable, logging every rpc_timeout_ms meanwhile. Returns the
 * batch's success. */
static int wait_started(br_outbox *ob, grpc_completion_queue *cq, bool done[4], int ok[4])
{
    int64_t since = now_ms();
    while (!done[TAG_START]) {
        gpr_timespec until = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                          gpr_time_from_millis(ob->o.rpc_timeout_ms, GPR_TIMESPAN));
        grpc_event ev = grpc_completion_queue_next(cq, until, NULL);
        if (ev.type == GRPC_QUEUE_TIMEOUT) {
            hw_log_event(ob->o.log, HW_LOG_WARN, "outbox_waiting",
                         "waited_ms=%lld reason=\"no connection to helpwired\"",
                         (long long)(now_ms() - since));
            continue;
        }
        if (ev.type != GRPC_OP_COMPLETE)
            return 0;
        tag_id t = (tag_id)(intptr_t)ev.tag;
        done[t] = true;
        ok[t] = ev.success;
    }
    return ok[TAG_START];
}

/* One stream from start to end. Returns whether it was healthy (lived
 * long or delivered something); *code is its final status. */
static bool run_stream(br_outbox *ob, grpc_status_code *code)
{
    bool healthy = false;
    int64_t started = 0;
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    size_t n_md;
    const grpc_metadata *md = hw_client_metadata(ob->o.rpc, &n_md);
    grpc_metadata_array initial_md, trailing_md;
    grpc_metadata_array_init(&initial_md);
    grpc_metadata_array_init(&trailing_md);
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    const char *error_string = NULL;
    grpc_byte_buffer *send_bb = NULL, *recv_bb = NULL;
    bool done[4] = {false, false, false, false};
    int ok[4] = {0, 0, 0, 0};
    bool status_pending = false, start_pending = false;

    Helpwire__V1__SubscribeRequest req = HELPWIRE__V1__SUBSCRIBE_REQUEST__INIT;
    req.channel = ob->o.channel;
    req.redeliver_after_ms = (uint32_t)ob->o.redeliver_after_ms;
    send_bb = hw_client_pack(&req.base);

    grpc_call *call =
        grpc_channel_create_call(hw_client_channel(ob->o.rpc), NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                 grpc_slice_from_static_string("/helpwire.v1.Outbox/Subscribe"), NULL,
                                 gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (!call) {
        hw_log_event(ob->o.log, HW_LOG_ERROR, "outbox_call_failed", "reason=\"cannot create call\"");
        goto out;
    }
    pthread_mutex_lock(&ob->mu);
    bool cancelled = ob->stopping;
    ob->call = call;
    pthread_mutex_unlock(&ob->mu);
    if (cancelled)
        grpc_call_cancel(call, NULL);

    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
    ops[0].data.send_initial_metadata.count = n_md;
    ops[0].data.send_initial_metadata.metadata = n_md ? (grpc_metadata *)md : NULL;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send_bb;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
    if (grpc_call_start_batch(call, ops, 4, (void *)(intptr_t)TAG_START, NULL) != GRPC_CALL_OK)
        goto out;
    start_pending = true;
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &trailing_md;
    ops[0].data.recv_status_on_client.status = &status;
    ops[0].data.recv_status_on_client.status_details = &details;
    ops[0].data.recv_status_on_client.error_string = &error_string;
    if (grpc_call_start_batch(call, ops, 1, (void *)(intptr_t)TAG_STATUS, NULL) != GRPC_CALL_OK)
        goto out;
    status_pending = true;
    atomic_fetch_add(&ob->connects, 1);
    if (wait_started(ob, cq, done, ok)) {
        start_pending = false;
        started = now_ms();
        for (;;) {
            memset(ops, 0, sizeof ops);
            ops[0].op = GRPC_OP_RECV_MESSAGE;
            ops[0].data.recv_message.recv_message = &recv_bb;
            done[TAG_RECV] = false;
            if (grpc_call_start_batch(call, ops, 1, (void *)(intptr_t)TAG_RECV, NULL) != GRPC_CALL_OK)
                break;
            if (!wait_tag(cq, TAG_RECV, done, ok) || !recv_bb)
                break;
            if (!healthy)
                hw_log_event(ob->o.log, HW_LOG_INFO, "outbox_streaming", "channel=%d", (int)ob->o.channel);
            healthy = true;
            handle_message(ob, recv_bb);
            grpc_byte_buffer_destroy(recv_bb);
            recv_bb = NULL;
            if (stopping(ob))
                grpc_call_cancel(call, NULL);
        }
    }
    start_pending = false;
    if (!done[TAG_STATUS] && stopping(ob))
        grpc_call_cancel(call, NULL);
    wait_tag(cq, TAG_STATUS, done, ok);
    status_pending = false;
    *code = status;
    if (!stopping(ob)) {
        char q[300];
        hw_client_status st;
        hw_client_status_set(&st, status, details);
        hw_log_event(ob->o.log, status == GRPC_STATUS_UNIMPLEMENTED ? HW_LOG_WARN : HW_LOG_INFO,
                     "outbox_stream_ended", "code=%s message=%s", hw_client_status_name(st.code),
                     hw_log_quote(st.message, q, sizeof q));
    }
    if (started && now_ms() - started >= HEALTHY_STREAM_MS)
        healthy = true;
out:
    if (call) {
        pthread_mutex_lock(&ob->mu);
        ob->call = NULL;
        pthread_mutex_unlock(&ob->mu);
        if (status_pending || start_pending) {
            grpc_call_cancel(call, NULL);
            if (status_pending)
                wait_tag(cq, TAG_STATUS, done, ok);
            if (start_pending)
                wait_tag(cq, TAG_START, done, ok);
        }
        grpc_call_unref(call);
    }
    if (recv_bb)
        grpc_byte_buffer_destroy(recv_bb);
    if (send_bb)
        grpc_byte_buffer_destroy(send_bb);
    if (error_string)
        gpr_free((void *)error_string);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&initial_md);
    grpc_metadata_array_destroy(&trailing_md);
    hw_client_cq_destroy(cq);
    return healthy;
}

static void *outbox_thread(void *arg)
{
    br_outbox *ob = arg;
    int fast_max_ms = ob->o.reconnect_max_ms > 0 ? ob->o.reconnect_max_ms : ob->o.backoff_max_ms;
    while (!stopping(ob)) {
        grpc_status_code code = GRPC_STATUS_UNKNOWN;
        if (run_stream(ob, &code))
            br_backoff_reset(&ob->backoff);
        if (stopping(ob))
            break;
        int delay = br_backoff_next_ms(&ob->backoff);
        /* helpwired restarting or draining: the next one may be up at any
         * moment, and a refused Subscribe costs it next to nothing. */
        if (code == GRPC_STATUS_UNAVAILABLE && delay > fast_max_ms)
            delay = fast_max_ms;
        hw_log_event(ob->o.log, HW_LOG_INFO, "outbox_reconnect", "delay_ms=%d", delay);
        if (sleep_ms(ob, delay))
            break;
    }
    return NULL;
}

int br_outbox_start(br_outbox **out, const br_outbox_options *o)
{
    br_outbox *ob = calloc(1, sizeof *ob);
    if (!ob)
        return -1;
    ob->o = *o;
    ob->delivered = br_dedupe_create(4096);
    if (!ob->delivered) {
        free(ob);
        return -1;
    }
    pthread_mutex_init(&ob->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ob->cv, &ca);
    pthread_condattr_destroy(&ca);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    br_backoff_init(&ob->backoff, o->backoff_initial_ms, o->backoff_max_ms,
                    (uint64_t)ts.tv_nsec ^ ((uint64_t)(uintptr_t)ob << 16));
    if (pthread_create(&ob->thread, NULL, outbox_thread, ob) != 0) {
        br_dedupe_destroy(ob->delivered);
        pthread_cond_destroy(&ob->cv);
        pthread_mutex_destroy(&ob->mu);
        free(ob);
        return -1;
    }
    *out = ob;
    return 0;
}

void br_outbox_stop(br_outbox *ob)
{
    if (!ob)
        return;
    pthread_mutex_lock(&ob->mu);
    ob->stopping = true;
    if (ob->call)
        grpc_call_cancel(ob->call, NULL);
    pthread_cond_broadcast(&ob->cv);
    pthread_mutex_unlock(&ob->mu);
    pthread_join(ob->thread, NULL);
    br_dedupe_destroy(ob->delivered);
    pthread_cond_destroy(&ob->cv);
    pthread_mutex_destroy(&ob->mu);
    free(ob);
}

void br_outbox_get_stats(br_outbox *ob, br_outbox_stats *st)
{
    st->connects = atomic_load(&ob->connects);
    st->delivered = atomic_load(&ob->n_delivered);
    st->acked = atomic_load(&ob->acked);
    st->refused = atomic_load(&ob->refused);
    st->failed = atomic_load(&ob->failed);
}
