/*
 * signals: Tickets.SendChannelSignal (see signals.h). Reads on the
 * caller's worker, sends through the outbox hub's active subscriber, and
 * counts; no store write.
 */
#include "server/domain/signals.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "helpwire/v1/outbox.pb-c.h"
#include "server/domain/app.h"
#include "server/domain/conversation.h"
#include "server/domain/limits.h"
#include "server/domain/outbox.h"
#include "server/domain/rpc.h"
#include "server/store/records.h"

#define N_CHANNELS 8 /* > every Channel value */
#define N_SIGNALS 3  /* > every ChannelSignal value */

struct hw_signals {
    hw_limits *typing; /* per ticket id: one token per HW_SIGNALS_TYPING_EVERY_MS */
    atomic_uint_fast64_t counts[N_CHANNELS][N_SIGNALS][HW_SIGNAL_RESULTS];
};

/* Who shows what: data, not code; a channel is a row. */
static const struct {
    Helpwire__V1__Channel channel;
    Helpwire__V1__ChannelSignal signal;
} supported[] = {
    /* sendChatAction "typing" (shown for 5 s or until the next message) */
    {HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, HELPWIRE__V1__CHANNEL_SIGNAL__CHANNEL_SIGNAL_TYPING},
    /* the widget's "... is typing" line */
    {HELPWIRE__V1__CHANNEL__CHANNEL_WEBCHAT, HELPWIRE__V1__CHANNEL_SIGNAL__CHANNEL_SIGNAL_TYPING},
    /* Cloud API: POST /messages {"status": "read", "message_id": ...} */
    {HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP, HELPWIRE__V1__CHANNEL_SIGNAL__CHANNEL_SIGNAL_READ},
};

static const char *const reasons[HW_SIGNAL_RESULTS] = {
    [HW_SIGNAL_DELIVERED] = "",
    [HW_SIGNAL_COALESCED] = "",
    [HW_SIGNAL_UNSUPPORTED] = "unsupported-by-channel",
    [HW_SIGNAL_NO_SUBSCRIBER] = "no-subscriber",
    [HW_SIGNAL_NO_CUSTOMER_MESSAGE] = "no-customer-message",
    [HW_SIGNAL_TICKET_CLOSED] = "ticket-closed",
};

/* The metric's result label. */
static const char *const results[HW_SIGNAL_RESULTS] = {
    [HW_SIGNAL_DELIVERED] = "delivered",
    [HW_SIGNAL_COALESCED] = "coalesced",
    [HW_SIGNAL_UNSUPPORTED] = "unsupported_by_channel",
    [HW_SIGNAL_NO_SUBSCRIBER] = "no_subscriber",
    [HW_SIGNAL_NO_CUSTOMER_MESSAGE] = "no_customer_message",
    [HW_SIGNAL_TICKET_CLOSED] = "ticket_closed",
};

int hw_signals_create(hw_signals **out)
{
    *out = NULL;
    hw_signals *s = calloc(1, sizeof *s);
    if (!s)
        return HW_ENOMEM;
    for (int c = 0; c < N_CHANNELS; c++)
        for (int g = 0; g < N_SIGNALS; g++)
            for (int r = 0; r < HW_SIGNAL_RESULTS; r++)
                atomic_init(&s->counts[c][g][r], 0);
    /* One token back every 2 s, a bucket of one: the first TYPING of a
     * ticket goes out, the next only 2 s later. */
    hw_limits_options o = {.rate_per_min = 60000.0 / HW_SIGNALS_TYPING_EVERY_MS,
                           .burst = 1,
                           .capacity = HW_SIGNALS_TICKETS};
    int rc = hw_limits_create(&s->typing, &o);
    if (rc != HW_OK) {
        free(s);
        return rc;
    }
    *out = s;
    return HW_OK;
}

void hw_signals_destroy(hw_signals *s)
{
    if (!s)
        return;
    hw_limits_destroy(s->typing);
    free(s);
}

bool hw_signals_supported(Helpwire__V1__Channel channel, Helpwire__V1__ChannelSignal signal)
{
    for (size_t i = 0; i < sizeof supported / sizeof *supported; i++)
        if (supported[i].channel == channel && supported[i].signal == signal)
            return true;
    return false;
}

const char *hw_signals_reason(hw_signal_result r)
{
    return (unsigned)r < HW_SIGNAL_RESULTS ? reasons[r] : "";
}

uint64_t hw_signals_count(const hw_signals *s, Helpwire__V1__Channel channel, Helpwire__V1__ChannelSignal signal,
                          hw_signal_result r)
{
    if (!s || (unsigned)channel >= N_CHANNELS || (unsigned)signal >= N_SIGNALS || (unsigned)r >= HW_SIGNAL_RESULTS)
        return 0;
    return atomic_load(&((hw_signals *)s)->counts[channel][signal][r]);
}

static void count(hw_signals *s, Helpwire__V1__Channel channel, Helpwire__V1__ChannelSignal signal,
                  hw_signal_result r)
{
    if (s && (unsigned)channel < N_CHANNELS && (unsigned)signal < N_SIGNALS)
        atomic_fetch_add(&s->counts[channel][signal][r], 1);
}

/* "CHANNEL_TELEGRAM" -> "telegram" (also "CHANNEL_SIGNAL_TYPING" -> "typing"). */
static void label_of(const ProtobufCEnumDescriptor *d, int v, const char *prefix, char *out, size_t len)
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(d, v);
    const char *name = ev ? ev->name : "unknown";
    if (strncmp(name, prefix, strlen(prefix)) == 0)
        name += strlen(prefix);
    size_t j = 0;
    for (; name[j] && j < len - 1; j++)
        out[j] = (char)(name[j] >= 'A' && name[j] <= 'Z' ? name[j] + 32 : name[j]);
    out[j] = '\0';
}

void hw_signals_collect(void *arg, FILE *out)
{
    hw_signals *s = arg;
    fprintf(out, "# HELP helpwire_channel_signals_total Tickets.SendChannelSignal calls by the ticket's "
                 "channel, the signal and what became of it (delivered, coalesced, or why not).\n"
                 "# TYPE helpwire_channel_signals_total counter\n");
    const ProtobufCEnumDescriptor *cd = &helpwire__v1__channel__descriptor;
    for (unsigned i = 0; i < cd->n_values; i++) {
        int ch = cd->values[i].value;
        if (ch <= 0 || ch >= N_CHANNELS)
            continue;
        char chl[32], sgl[32];
        label_of(cd, ch, "CHANNEL_", chl, sizeof chl);
        for (int sg = 1; sg < N_SIGNALS; sg++) {
            label_of(&helpwire__v1__channel_signal__descriptor, sg, "CHANNEL_SIGNAL_", sgl, sizeof sgl);
            for (int r = 0; r < HW_SIGNAL_RESULTS; r++)
                fprintf(out, "helpwire_channel_signals_total{channel=\"%s\",signal=\"%s\",result=\"%s\"} %llu\n",
                        chl, sgl, results[r],
                        (unsigned long long)hw_signals_count(s, (Helpwire__V1__Channel)ch,
                                                             (Helpwire__V1__ChannelSignal)sg, (hw_signal_result)r));
        }
    }
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void answer(hw_call *call, hw_signals *s, const Helpwire__V1__Ticket *t,
                   Helpwire__V1__ChannelSignal signal, hw_signal_result r)
{
    count(s, t->channel, signal, r);
    Helpwire__V1__SendChannelSignalReply rep = HELPWIRE__V1__SEND_CHANNEL_SIGNAL_REPLY__INIT;
    rep.delivered = r == HW_SIGNAL_DELIVERED || r == HW_SIGNAL_COALESCED;
    rep.reason = (char *)hw_signals_reason(r);
    hw_call_reply(call, &rep.base);
}

void hw_signals_send(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    hw_app *app = appv;
    const Helpwire__V1__SendChannelSignalRequest *req = (const void *)request;
    if (!hw_rpc_check_id(call, "ticket_id", req->ticket_id, 64, false) ||
        !hw_rpc_check_enum(call, "signal", &helpwire__v1__channel_signal__descriptor, req->signal, false))
        return;
    hw_arena *a = hw_call_arena(call);
    hw_store_txn *txn = hw_rpc_read(call, app);
    if (!txn)
        return;
    Helpwire__V1__Ticket *t = NULL;
    hw_conversation conv = {0};
    Helpwire__V1__Customer *cust = NULL;
    const char *to = NULL;
    int rc = hw_store_ticket_get(txn, req->ticket_id, a, &t);
    if (rc == HW_OK && t->status != HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_CLOSED &&
        hw_signals_supported(t->channel, req->signal)) {
        if (req->signal == HELPWIRE__V1__CHANNEL_SIGNAL__CHANNEL_SIGNAL_READ)
            rc = hw_conversation_scan(txn, t->id, a, &conv);
        if (rc == HW_OK)
            rc = hw_store_customer_get(txn, t->customer_id, a, &cust);
        if (rc == HW_ENOTFOUND) {
            cust = NULL; /* erased: no one to signal to */
            rc = HW_OK;
        }
        for (size_t i = 0; rc == HW_OK && cust && i < cust->n_identities && !to; i++)
            if (cust->identities[i]->channel == t->channel)
                to = cust->identities[i]->channel_user_id;
    }
    hw_rpc_read_end(call, app);
    if (rc == HW_ENOTFOUND && !t) {
        hw_rpc_fail(call, rc, "no ticket with id %s", req->ticket_id);
        return;
    }
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, "reading ticket %s failed: %s", req->ticket_id, hw_strerror(rc));
        return;
    }
    hw_signals *s = app->signals;
    if (t->status == HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_CLOSED) {
        answer(call, s, t, req->signal, HW_SIGNAL_TICKET_CLOSED);
        return;
    }
    if (!hw_signals_supported(t->channel, req->signal)) {
        answer(call, s, t, req->signal, HW_SIGNAL_UNSUPPORTED);
        return;
    }
    bool read = req->signal == HELPWIRE__V1__CHANNEL_SIGNAL__CHANNEL_SIGNAL_READ;
    if (read && (!conv.has_customer_message || !conv.last_customer_channel_message_id[0])) {
        /* nothing the channel could mark (a ticket an agent opened, or
         * messages stored before their channel ids were kept) */
        answer(call, s, t, req->signal, HW_SIGNAL_NO_CUSTOMER_MESSAGE);
        return;
    }
    if (!to || !to[0]) {
        answer(call, s, t, req->signal, HW_SIGNAL_NO_SUBSCRIBER);
        return;
    }
    if (!read && s && !hw_limits_take(s->typing, t->id, strlen(t->id), mono_ms(), NULL)) {
        answer(call, s, t, req->signal, HW_SIGNAL_COALESCED);
        return;
    }
    Helpwire__V1__OutboundMessage m = HELPWIRE__V1__OUTBOUND_MESSAGE__INIT;
    m.channel = t->channel;
    m.channel_user_id = (char *)to;
    m.customer_id = t->customer_id;
    m.ticket_id = t->id;
    m.kind = read ? HELPWIRE__V1__OUTBOUND_KIND__OUTBOUND_KIND_READ : HELPWIRE__V1__OUTBOUND_KIND__OUTBOUND_KIND_TYPING;
    m.created_unix_ms = hw_rpc_now_ms(app);
    m.locale = (char *)hw_conversation_locale(read ? &conv : NULL, cust);
    if (read)
        m.channel_message_id = (char *)conv.last_customer_channel_message_id;
    rc = hw_outbox_signal(app->outbox, &m);
    if (rc != HW_OK && !read && s) /* nobody saw it: the next TYPING may go at once */
        hw_limits_give_back(s->typing, t->id, strlen(t->id), mono_ms());
    answer(call, s, t, req->signal, rc == HW_OK ? HW_SIGNAL_DELIVERED : HW_SIGNAL_NO_SUBSCRIBER);
}
