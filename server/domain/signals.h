/*
 * signals: Tickets.SendChannelSignal, the courtesies an agent's frontend
 * sends while a conversation is on screen: TYPING (Telegram's "typing...",
 * the web chat widget's indicator) and READ (WhatsApp's blue ticks on the
 * customer's last message).
 *
 * A signal is not a message: nothing is stored, nothing is retried. The
 * handler reads the ticket (and, for READ, the channel's id of the
 * customer's last message: TicketMessage.channel_message_id, which Route
 * records) and hands an OutboundMessage of kind TYPING or READ with seq 0
 * to the channel's active Outbox subscriber (hw_outbox_signal); a standby
 * never receives one, and a bridge's Ack of seq 0 is ignored.
 *
 * Which channel shows what is one table (signals.c): Telegram and the web
 * chat TYPING, WhatsApp READ; anything else answers delivered=false with
 * reason "unsupported-by-channel". The other refusals: "ticket-closed",
 * "no-customer-message" (READ with nothing to mark), "no-subscriber".
 *
 * Flood guard: a frontend that sends TYPING on every keystroke must not
 * make the bridge call the channel's API for each. At most one TYPING per
 * ticket per HW_SIGNALS_TYPING_EVERY_MS is passed on; the others answer
 * delivered=true (the customer sees the indicator already) and count as
 * "coalesced". The per-ticket memory is a hw_limits table (limits.h):
 * bounded, thread-safe, idle tickets forgotten first.
 *
 * On replicas the method is relayed to the leader like a write (bridges
 * subscribe there), though it writes nothing.
 *
 * Metrics: helpwire_channel_signals_total{channel,signal,result}.
 */
#ifndef HW_SIGNALS_H
#define HW_SIGNALS_H

#include <stdint.h>
#include <stdio.h>

#include "helpwire/v1/tickets.pb-c.h"
#include "server/net/net.h"

#define HW_SIGNALS_TYPING_EVERY_MS 2000
/* Tickets whose last TYPING is remembered. */
#define HW_SIGNALS_TICKETS 65536

typedef struct hw_signals hw_signals;

/* The outcome of one call, for the metrics. */
typedef enum hw_signal_result {
    HW_SIGNAL_DELIVERED = 0,
    HW_SIGNAL_COALESCED,
    HW_SIGNAL_UNSUPPORTED,
    HW_SIGNAL_NO_SUBSCRIBER,
    HW_SIGNAL_NO_CUSTOMER_MESSAGE,
    HW_SIGNAL_TICKET_CLOSED,
    HW_SIGNAL_RESULTS
} hw_signal_result;

/* Creates the per-ticket TYPING memory and the counters (owned by main,
 * in hw_app.signals).
 * @return HW_OK; HW_ENOMEM. */
int hw_signals_create(hw_signals **out);

/* Frees s; no call may be using it. NULL is a no-op. */
void hw_signals_destroy(hw_signals *s);

/* Whether channel shows signal (the table). Pure; any thread. */
bool hw_signals_supported(Helpwire__V1__Channel channel, Helpwire__V1__ChannelSignal signal);

/* The result's reason string ("" for delivered and coalesced). */
const char *hw_signals_reason(hw_signal_result r);

/* Counts of results since creation. Thread-safe; s may be NULL (0). */
uint64_t hw_signals_count(const hw_signals *s, Helpwire__V1__Channel channel,
                          Helpwire__V1__ChannelSignal signal, hw_signal_result r);

/* Metrics collector (hw_metrics_add_collector); arg is a hw_signals. */
void hw_signals_collect(void *arg, FILE *out);

/* Method-table handler of Tickets.SendChannelSignal; app is a hw_app
 * (app->signals may be NULL: no coalescing, no counts). INVALID_ARGUMENT
 * for a missing ticket_id or signal, NOT_FOUND for an unknown ticket. */
void hw_signals_send(hw_call *call, const ProtobufCMessage *request, void *app);

#endif
