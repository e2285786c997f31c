/* route: Router.Route plus its log line (see route.h). */
#include "clients/lib/route.h"

#include <string.h>
#include <time.h>

#include <grpc/status.h>

#include "clients/lib/backoff.h"

bool br_route_retryable(int code)
{
    /* CANCELLED: what a call gets from a helpwired that is shutting down
     * (a restart) when it arrives during the drain; the bridge cancels its
     * own calls only when it stops, and then the message stays the
     * channel's anyway. */
    return code == GRPC_STATUS_UNAVAILABLE || code == GRPC_STATUS_RESOURCE_EXHAUSTED ||
           code == GRPC_STATUS_DEADLINE_EXCEEDED || code == GRPC_STATUS_ABORTED ||
           code == GRPC_STATUS_CANCELLED;
}

int64_t br_route_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The length of s cut to at most max bytes at a UTF-8 character boundary. */
static size_t utf8_prefix(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return n;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return max;
}

br_route_result br_route(hw_client *rpc, const hw_log *log, const br_inbound *in, int timeout_ms,
                         Helpwire__V1__RouteReply **reply, hw_client_status *st_out)
{
    /* What the channel gives for a name or a language can be longer than
     * Route takes (a Telegram first and last name are 64 characters each,
     * up to 4 bytes a character): a name is shortened, not refused, and a
     * locale too long to be one is left out (helpwired guesses it). */
    char name[BR_ROUTE_MAX_NAME + 1];
    const char *dn = in->display_name ? in->display_name : "";
    size_t dn_len = utf8_prefix(dn, BR_ROUTE_MAX_NAME);
    memcpy(name, dn, dn_len);
    name[dn_len] = '\0';
    const char *locale = in->locale && strlen(in->locale) <= BR_ROUTE_MAX_LOCALE ? in->locale : "";
    Helpwire__V1__RouteRequest req = HELPWIRE__V1__ROUTE_REQUEST__INIT;
    req.channel = in->channel;
    req.channel_user_id = (char *)in->channel_user_id;
    req.display_name = name;
    req.text = (char *)in->text;
    req.message_id = (char *)in->message_id;
    req.locale = (char *)locale;
    req.n_attachments = in->n_attachments;
    req.attachments = (Helpwire__V1__Attachment **)in->attachments;
    req.contact_email = (char *)(in->contact_email ? in->contact_email : "");
    ProtobufCMessage *r = NULL;
    hw_client_status st;
    br_route_result res;
    char q1[160], q2[160], q3[300];
    if (reply)
        *reply = NULL;
    if (hw_client_unary(rpc, "/helpwire.v1.Router/Route", &req.base, &helpwire__v1__route_reply__descriptor,
                        &r, timeout_ms, &st) == 0) {
        Helpwire__V1__RouteReply *rr = (Helpwire__V1__RouteReply *)r;
        hw_log_event(
            log, HW_LOG_INFO, "routed",
            "user=%s message_id=%s text_bytes=%zu attachments=%zu action=%d duplicate=%s ticket_number=%llu "
            "queue=%s outbox_seq=%llu",
            hw_log_quote(in->channel_user_id, q1, sizeof q1), hw_log_quote(in->message_id, q2, sizeof q2),
            strlen(in->text), in->n_attachments, (int)rr->action, rr->duplicate ? "true" : "false",
            (unsigned long long)rr->ticket_number, hw_log_quote(rr->queue, q3, sizeof q3),
            (unsigned long long)rr->outbox_seq);
        res = BR_ROUTE_OK;
        if (reply) {
            *reply = rr;
            r = NULL;
        }
    } else {
        res = br_route_retryable(st.code) ? BR_ROUTE_RETRY : BR_ROUTE_REFUSED;
        hw_log_event(log, res == BR_ROUTE_RETRY ? HW_LOG_WARN : HW_LOG_ERROR, "route_failed",
                     "user=%s message_id=%s code=%s message=%s will_retry=%s",
                     hw_log_quote(in->channel_user_id, q1, sizeof q1),
                     hw_log_quote(in->message_id, q2, sizeof q2), hw_client_status_name(st.code),
                     hw_log_quote(st.message, q3, sizeof q3), res == BR_ROUTE_RETRY ? "true" : "false");
    }
    if (r)
        protobuf_c_message_free_unpacked(r, NULL);
    if (st_out)
        *st_out = st;
    return res;
}

int br_route_dead_letter(const br_route_policy *p, const br_inbound *in, int reason,
                         const hw_client_status *st, int attempts, int64_t received_ms, int64_t first_ms,
                         int64_t last_ms)
{
    br_dead_letter rec = {p->channel_name,  in->message_id, in->channel_user_id,
                          in->display_name, in->text,       (br_dead_reason)reason,
                          st->code,         st->message,    attempts,
                          received_ms,      first_ms,       last_ms};
    char err[512], q1[160], q2[160], q3[300];
    if (br_deadletter_write(p->dead, &rec, err, sizeof err) != 0) {
        hw_log_event(p->log, HW_LOG_ERROR, "dead_letter_failed", "user=%s message_id=%s error=%s",
                     hw_log_quote(in->channel_user_id, q1, sizeof q1),
                     hw_log_quote(in->message_id, q2, sizeof q2), hw_log_quote(err, q3, sizeof q3));
        return -1;
    }
    hw_log_event(p->log, HW_LOG_WARN, "dead_letter",
                 "user=%s message_id=%s text_bytes=%zu reason=%s code=%s message=%s attempts=%d age_ms=%lld",
                 hw_log_quote(in->channel_user_id, q1, sizeof q1),
                 hw_log_quote(in->message_id, q2, sizeof q2), strlen(in->text),
                 br_dead_reason_name((br_dead_reason)reason), hw_client_status_name(st->code),
                 hw_log_quote(st->message, q3, sizeof q3), attempts, (long long)(last_ms - received_ms));
    return 0;
}

bool br_route_rate_limited(const hw_client_status *st)
{
    return st->code == GRPC_STATUS_RESOURCE_EXHAUSTED && strcmp(st->reason, "RATE_LIMITED") == 0 &&
           st->retry_delay_ms > 0;
}

/* The shortest try a message gets, even one already past its age. */
#define BR_ROUTE_MIN_TRY_MS 1000

br_route_result br_route_deliver(const br_route_policy *p, const br_inbound *in, int64_t received_ms,
                                 br_route_wait_fn wait, void *arg, br_route_trace *trace)
{
    br_route_trace tr_local = {0};
    br_route_trace *tr = trace ? trace : &tr_local;
    br_backoff bo;
    br_backoff_init(&bo, p->backoff_initial_ms, p->backoff_max_ms, (uintptr_t)in ^ (uint64_t)received_ms);
    int64_t first_ms = br_route_now_ms();
    if (received_ms <= 0 || received_ms > first_ms)
        received_ms = first_ms; /* no date, or a clock ahead of ours: it arrived now */
    hw_client_status st = {0};
    for (int attempts = 1;; attempts++) {
        struct timespec t0, t1;
        /* Calls wait for a connection to helpwired (wait-for-ready) up to
         * their deadline: within the message's age, so that a message
         * helpwired cannot take ends as a dead letter on time. One already
         * too old still gets one short try. */
        int64_t start_ms = br_route_now_ms();
        int64_t left_ms = received_ms + p->max_retry_age_ms - start_ms;
        int timeout_ms = p->rpc_timeout_ms;
        if (left_ms < timeout_ms)
            timeout_ms = left_ms > BR_ROUTE_MIN_TRY_MS ? (int)left_ms : BR_ROUTE_MIN_TRY_MS;
        if (timeout_ms > p->rpc_timeout_ms)
            timeout_ms = p->rpc_timeout_ms;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        br_route_result r = br_route(p->rpc, p->log, in, timeout_ms, NULL, &st);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (p->metrics)
            hw_metrics_rpc(p->metrics, 0, r == BR_ROUTE_OK ? 0 : st.code,
                           (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000000 + (t1.tv_nsec - t0.tv_nsec));
        int64_t last_ms = br_route_now_ms();
        *tr = (br_route_trace){attempts, received_ms, first_ms, last_ms, st};
        if (r == BR_ROUTE_OK)
            return BR_ROUTE_OK;
        int reason = -1;
        if (r == BR_ROUTE_REFUSED)
            reason = BR_DEAD_REFUSED;
        else if (start_ms - received_ms >= p->max_retry_age_ms ||
                 (wait && last_ms - received_ms >= p->max_retry_age_ms))
            reason = BR_DEAD_TOO_OLD; /* tried when too old, or no time left to try again */
        if (reason >= 0) {
            if (br_route_dead_letter(p, in, reason, &st, attempts, received_ms, first_ms, last_ms) == 0)
                return BR_ROUTE_DEAD;
            /* Not recorded: the message stays the channel's to deliver
             * again; try again after a pause rather than lose it. */
        }
        bool limited = reason < 0 && br_route_rate_limited(&st);
        if (limited && p->hold_rate_limited)
            return BR_ROUTE_LIMITED; /* the caller holds this sender, not the channel */
        if (!wait)
            return BR_ROUTE_RETRY; /* one attempt: the channel delivers it again */
        int delay = br_backoff_next_ms(&bo);
        if (limited) /* helpwired said when: sooner is refused again, later needless */
            delay = st.retry_delay_ms > INT32_MAX ? INT32_MAX : (int)st.retry_delay_ms;
        int64_t left = received_ms + p->max_retry_age_ms - last_ms;
        if (reason < 0 && left > 0 && delay > left)
            delay = (int)left; /* the last attempt falls on the age limit, not after it */
        char q[160];
        hw_log_event(p->log, HW_LOG_INFO, "route_backoff", "message_id=%s attempts=%d delay_ms=%d",
                     hw_log_quote(in->message_id, q, sizeof q), attempts, delay);
        if (wait(arg, delay))
            return BR_ROUTE_RETRY;
    }
}
