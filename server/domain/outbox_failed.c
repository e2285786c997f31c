/*
 * outbox_failed: the failed list, recording FAILED acknowledgements and
 * the ListFailed / RetryFailed handlers (see outbox_failed.h for the
 * contract and the design).
 *
 * Every write here runs inside a write fn on the writer thread: the Ack's
 * (outbox.c calls hw_outbox_failed_record_in / _late_in) or RetryFailed's
 * own. A write fn may run more than once for one request (store.h), so
 * nothing here keeps state between runs: each run reads the store afresh
 * and overwrites its outputs.
 */
#include "server/domain/outbox_failed.h"

#include <string.h>

#include "server/domain/watch.h"
#include "server/store/records.h"

#define HW_OUTBOX_FAILED_PAGE 50u
#define HW_OUTBOX_FAILED_PAGE_MAX 1000u

static const char *channel_name(Helpwire__V1__Channel channel)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&helpwire__v1__channel__descriptor, channel);
    return v ? v->name : "CHANNEL_UNKNOWN";
}

/* reason cut to at most max bytes, not inside a UTF-8 sequence. */
static size_t reason_len(const char *reason, size_t max)
{
    size_t len = strlen(reason);
    if (len > max) {
        len = max;
        while (len > 0 && ((unsigned char)reason[len] & 0xC0) == 0x80)
            len--;
    }
    return len;
}

/* Whether ticket id is in the store (a read in w). */
static int ticket_exists(hw_store_txn *w, hw_arena *a, const char *id, bool *exists)
{
    Helpwire__V1__Ticket *t;
    int rc = hw_store_ticket_get(w, id, a, &t);
    *exists = rc == HW_OK;
    return rc == HW_ENOTFOUND || rc == HW_EINVALID ? HW_OK : rc;
}

int hw_outbox_failed_record_in(hw_store_txn *w, hw_effects *fx, const Helpwire__V1__OutboundMessage *m,
                               const char *reason, bool ticket_must_exist)
{
    if (!m || !reason || !reason[0] || !fx->arena)
        return HW_EINVALID;
    hw_arena *a = fx->arena;
    size_t len = reason_len(reason, HW_OUTBOX_FAILED_MAX_REASON);
    char *kept = hw_arena_strndup(a, reason, len);
    if (!kept)
        return HW_ENOMEM;
    Helpwire__V1__OutboundMessage msg = *m;
    msg.lease = HELPWIRE__V1__LEASE_STATE__LEASE_STATE_UNSPECIFIED;
    if (msg.attempt == 0)
        msg.attempt = 1; /* it was tried, or it could not have failed */
    Helpwire__V1__FailedEntry e = HELPWIRE__V1__FAILED_ENTRY__INIT;
    e.message = &msg;
    e.reason = kept;
    e.failed_unix_ms = hw_effects_now_ms(fx);
    int rc = hw_store_failed_put(w, &e);
    if (rc != HW_OK || !m->ticket_id || !m->ticket_id[0])
        return rc;
    if (ticket_must_exist) {
        bool exists;
        if ((rc = ticket_exists(w, a, m->ticket_id, &exists)) != HW_OK || !exists)
            return rc;
    }
    char *detail = hw_arena_printf(a, "outbox seq %llu: %s", (unsigned long long)m->seq, kept);
    if (!detail)
        return HW_ENOMEM;
    return hw_watch_record_id(w, fx, m->ticket_id,
                              HELPWIRE__V1__TICKET_EVENT_KIND__TICKET_EVENT_KIND_DELIVERY_FAILED, "system",
                              detail);
}

/* ---------------------------------------------------------- late failures */

/* Fails the call with INVALID_ARGUMENT: "failed[i].message.<what>: why". */
#define LATE_FAIL(call, i, what, ...)                                                                        \
    hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "failed[%zu].message." what, i, __VA_ARGS__)

static bool check_field(hw_call *call, size_t i, const char *name, const char *s, size_t min, size_t max)
{
    char *field = hw_arena_printf(hw_call_arena(call), "failed[%zu].message.%s", i, name);
    if (!field) {
        hw_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of memory");
        return false;
    }
    return hw_rpc_check_text(call, field, s ? s : "", min, max);
}

bool hw_outbox_failed_check_late(hw_call *call, size_t i, const Helpwire__V1__FailedDelivery *f,
                                 Helpwire__V1__Channel channel, hw_split_limit limit)
{
    const Helpwire__V1__OutboundMessage *m = f->message;
    if (m->seq != f->seq) {
        LATE_FAIL(call, i, "seq: %llu, not the failure's seq %llu", (unsigned long long)m->seq,
                  (unsigned long long)f->seq);
        return false;
    }
    if (m->channel != channel) {
        LATE_FAIL(call, i, "channel: %s, not the request's %s", channel_name(m->channel),
                  channel_name(channel));
        return false;
    }
    if (!protobuf_c_enum_descriptor_get_value(&helpwire__v1__outbound_kind__descriptor, m->kind) ||
        m->kind == HELPWIRE__V1__OUTBOUND_KIND__OUTBOUND_KIND_UNSPECIFIED) {
        LATE_FAIL(call, i, "kind: %s", m->kind ? "unknown value" : "required");
        return false;
    }
    if (!check_field(call, i, "channel_user_id", m->channel_user_id, 1, HW_STORE_ID_MAX) ||
        !check_field(call, i, "customer_id", m->customer_id, 0, HW_STORE_ID_MAX) ||
        !check_field(call, i, "ticket_id", m->ticket_id, 0, HW_STORE_ID_MAX) ||
        !check_field(call, i, "survey_url", m->survey_url, 0, 2048) ||
        !check_field(call, i, "text", m->text, 1, HW_OUTBOX_FAILED_MAX_TEXT))
        return false;
    size_t units = hw_split_units(m->text, strlen(m->text), limit.unit);
    if (limit.max_units && units > limit.max_units) {
        LATE_FAIL(call, i, "text: %zu units, over the channel's limit of %zu", units, limit.max_units);
        return false;
    }
    return true;
}

int hw_outbox_failed_late_in(hw_store_txn *w, hw_wctx *h, size_t i, const Helpwire__V1__FailedDelivery *f,
                             Helpwire__V1__Channel channel)
{
    uint64_t last = 0;
    int rc = hw_store_outbox_last_seq(w, channel, &last);
    if (rc != HW_OK)
        return rc;
    if (f->seq > last)
        return hw_rpc_wfail(h, HW_EINVALID, "failed[%zu].seq: %llu was never queued on %s (last %llu)", i,
                            (unsigned long long)f->seq, channel_name(channel), (unsigned long long)last);
    return hw_outbox_failed_record_in(w, &h->fx, f->message, f->reason, true);
}

/* ------------------------------------------------------------- ListFailed */

void hw_outbox_failed_list(hw_call *call, const ProtobufCMessage *request, void *app)
{
    const Helpwire__V1__ListFailedRequest *req = (const void *)request;
    hw_store_cursor cur;
    if (!hw_rpc_check_enum(call, "channel", &helpwire__v1__channel__descriptor, req->channel, true) ||
        !hw_rpc_page_token(call, "page_token", req->page_token, &cur))
        return;
    size_t want = hw_rpc_page_size(req->page_size, HW_OUTBOX_FAILED_PAGE, HW_OUTBOX_FAILED_PAGE_MAX);
    hw_store_txn *t = hw_rpc_read(call, app);
    if (!t)
        return;
    Helpwire__V1__ListFailedReply r = HELPWIRE__V1__LIST_FAILED_REPLY__INIT;
    int rc = hw_store_failed_list(t, req->channel, &cur, want, hw_call_arena(call), &r.entries, &r.n_entries);
    hw_rpc_read_end(call, app);
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, rc == HW_EINVALID ? "page_token: not a token from this listing" : NULL);
        return;
    }
    r.next_page_token = hw_rpc_next_token(call, &cur);
    hw_call_reply(call, &r.base);
}

/* ------------------------------------------------------------ RetryFailed */

typedef struct retry_ctx {
    hw_wctx h;
    Helpwire__V1__Channel channel;
    const uint64_t *seqs;
    size_t n;
    uint64_t *new_seqs; /* [n], in the call's arena */
    const char *actor;
} retry_ctx;

/* Queues failed entry seqs[i] again: a copy under a new sequence, out of
 * the failed list, DELIVERY_RETRIED on its ticket. */
static int retry_one_in(hw_store_txn *w, retry_ctx *c, size_t i)
{
    hw_arena *a = hw_call_arena(c->h.call);
    uint64_t old = c->seqs[i];
    Helpwire__V1__FailedEntry *e = NULL;
    int rc = hw_store_failed_get(w, c->channel, old, a, &e);
    if (rc == HW_ENOTFOUND)
        return hw_rpc_wfail(&c->h, HW_ENOTFOUND, "seqs[%zu]: %llu is not in the failed list of %s", i,
                            (unsigned long long)old, channel_name(c->channel));
    if (rc != HW_OK)
        return rc;
    if (!e->message || e->message->channel != c->channel)
        return HW_ECORRUPT;
    Helpwire__V1__OutboundMessage m = *e->message;
    m.seq = 0; /* the channel's next: sequences are never reused */
    m.attempt = 0;
    m.created_unix_ms = hw_effects_now_ms(&c->h.fx);
    m.lease = HELPWIRE__V1__LEASE_STATE__LEASE_STATE_UNSPECIFIED;
    if ((rc = hw_store_outbox_append(w, &m)) != HW_OK)
        return rc;
    hw_effects_outbox_appended(&c->h.fx, c->channel);
    c->new_seqs[i] = m.seq;
    /* Retired, not deleted: a late report of the old failure stays ignored. */
    if ((rc = hw_store_failed_retire(w, c->channel, old, m.created_unix_ms)) != HW_OK)
        return rc;
    if (!m.ticket_id || !m.ticket_id[0])
        return HW_OK;
    bool exists;
    if ((rc = ticket_exists(w, a, m.ticket_id, &exists)) != HW_OK || !exists)
        return rc;
    char *detail = hw_arena_printf(a, "outbox seq %llu queued again as %llu", (unsigned long long)old,
                                   (unsigned long long)m.seq);
    if (!detail)
        return HW_ENOMEM;
    return hw_watch_record_id(w, &c->h.fx, m.ticket_id,
                              HELPWIRE__V1__TICKET_EVENT_KIND__TICKET_EVENT_KIND_DELIVERY_RETRIED, c->actor,
                              detail);
}

static int retry_fn(hw_store_txn *w, void *arg)
{
    retry_ctx *c = arg;
    for (size_t i = 0; i < c->n; i++) {
        int rc = retry_one_in(w, c, i);
        if (rc != HW_OK)
            return rc;
    }
    return HW_OK;
}

static void retry_done(void *arg, int status)
{
    retry_ctx *c = arg;
    if (hw_rpc_write_failed(&c->h, status))
        return;
    Helpwire__V1__RetryFailedReply r = HELPWIRE__V1__RETRY_FAILED_REPLY__INIT;
    r.seqs = c->new_seqs;
    r.n_seqs = c->n;
    hw_call_reply(c->h.call, &r.base);
}

void hw_outbox_failed_retry(hw_call *call, const ProtobufCMessage *request, void *app)
{
    const Helpwire__V1__RetryFailedRequest *req = (const void *)request;
    if (!hw_rpc_check_enum(call, "channel", &helpwire__v1__channel__descriptor, req->channel, false))
        return;
    if (req->n_seqs == 0 || req->n_seqs > HW_OUTBOX_FAILED_MAX_RETRY) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "seqs: %zu given, 1..%u allowed", req->n_seqs,
                     HW_OUTBOX_FAILED_MAX_RETRY);
        return;
    }
    /* At most 1000 each: the quadratic check costs less than the write. */
    for (size_t i = 1; i < req->n_seqs; i++)
        for (size_t j = 0; j < i; j++)
            if (req->seqs[i] == req->seqs[j]) {
                hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "seqs[%zu]: %llu repeated (seqs[%zu])", i,
                             (unsigned long long)req->seqs[i], j);
                return;
            }
    retry_ctx *c = hw_rpc_ctx_new(call, app, sizeof *c);
    if (!c)
        return;
    c->channel = req->channel;
    c->seqs = req->seqs;
    c->n = req->n_seqs;
    c->actor = hw_rpc_actor(call);
    c->new_seqs = hw_arena_calloc(hw_call_arena(call), req->n_seqs, sizeof *c->new_seqs);
    if (!c->new_seqs) {
        hw_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of memory");
        return;
    }
    hw_rpc_write(&c->h, retry_fn, retry_done);
}
