/* route: Router.Route plus its log line (see route.h). */
#include "clients/lib/route.h"

#include <string.h>

br_route_result br_route(hw_client *rpc, const hw_log *log, const br_inbound *in, int timeout_ms,
                         Helpwire__V1__RouteReply **reply, hw_client_status *st_out)
{
    Helpwire__V1__RouteRequest req = HELPWIRE__V1__ROUTE_REQUEST__INIT;
    req.channel = in->channel;
    req.channel_user_id = (char *)in->channel_user_id;
    req.display_name = (char *)(in->display_name ? in->display_name : "");
    req.text = (char *)in->text;
    req.message_id = (char *)in->message_id;
    req.locale = (char *)(in->locale ? in->locale : "");
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
            "user=%s message_id=%s text_bytes=%zu action=%d duplicate=%s ticket_number=%llu queue=%s "
            "outbox_seq=%llu",
            hw_log_quote(in->channel_user_id, q1, sizeof q1), hw_log_quote(in->message_id, q2, sizeof q2),
            strlen(in->text), (int)rr->action, rr->duplicate ? "true" : "false",
            (unsigned long long)rr->ticket_number, hw_log_quote(rr->queue, q3, sizeof q3),
            (unsigned long long)rr->outbox_seq);
        res = BR_ROUTE_OK;
        if (reply) {
            *reply = rr;
            r = NULL;
        }
    } else {
        res = hw_client_status_retryable(st.code) ? BR_ROUTE_RETRY : BR_ROUTE_REFUSED;
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
