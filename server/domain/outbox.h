/*
 * outbox: the helpwire.v1.Outbox service. Every message to a customer is
 * appended to its channel's durable queue inside the same write
 * transaction as the change that caused it (hw_outbox_append_in), and
 * bridges stream it with Subscribe: the unacknowledged messages oldest
 * first, then new ones live, then again whatever stays unacknowledged
 * longer than the subscriber's redelivery delay. Ack deletes them; an Ack
 * that says a message failed for good (AckRequest.failed) moves it to the
 * failed list (outbox_failed.h: ListFailed, RetryFailed) and, for a
 * ticket's message, appends DELIVERY_FAILED with the reason to the
 * ticket's history (watch.h).
 *
 * The live part is a hub of subscribers per channel, woken after each
 * commit that appended to their channel: the append records the channel on
 * the write's effects (effects.h), whose outbox_appended sink is
 * hw_outbox_committed.
 *
 * Lease: one subscriber per channel delivers. Every Subscribe stream first
 * receives a control message (seq 0, its channel, lease ACTIVE or
 * STANDBY); the first subscriber of a channel is ACTIVE, later ones wait
 * as STANDBY and receive nothing else. When the active stream ends (client
 * cancel, peer gone; not while the server drains) the standby that waited
 * longest receives a control message ACTIVE and then the backlog from the
 * start. Each change is logged as event=outbox_lease with channel,
 * instance (SubscribeRequest.instance) and state (active, standby,
 * released).
 *
 * Signals (hw_outbox_signal): typing indicators and read receipts go to
 * the active subscriber only, straight from the caller's thread, with seq
 * 0 and kind TYPING or READ; nothing of them is stored.
 *
 * Windows: the active subscriber has at most max_in_flight_per_recipient
 * (default 8, 1..256) unacknowledged messages per recipient
 * (channel_user_id) and 4096 in all. A message to a recipient at its limit
 * is held back (at most 4096 per subscriber; beyond, the scan of the queue
 * pauses) and streamed when the recipient's acknowledgements free a place.
 * Each recipient's messages are streamed in sequence order; different
 * recipients' are not ordered with each other.
 *
 * Channel limits: each channel takes texts up to a limit of its own
 * (hw_outbox_channel_limit: one table in outbox.c). Everything helpwired
 * writes to customers goes through hw_outbox_append_parts_in (directly or
 * through the send-to-customer helpers), which queues a longer text as
 * ordered parts (split.h) with consecutive sequences, all to one
 * recipient; the hub streams a recipient's messages oldest first, so the
 * parts reach the bridge in order.
 */
#ifndef HW_OUTBOX_H
#define HW_OUTBOX_H

#include <stdint.h>

#include "helpwire/v1/customers.pb-c.h"
#include "helpwire/v1/outbox.pb-c.h"
#include "server/base/arena.h"
#include "server/domain/app.h"
#include "server/domain/effects.h"
#include "server/domain/split.h"
#include "server/net/net.h"
#include "server/store/store.h"

typedef struct hw_outbox hw_outbox;

/* Creates the hub (and whatever thread or timer redelivery needs). Returns
 * 0 or a negative HW_E* code. app must outlive it. */
int hw_outbox_create(hw_outbox **out, hw_app *app);

/* Ends every subscription and frees the hub. Call after hw_net_shutdown. */
void hw_outbox_destroy(hw_outbox *ob);

/* Inside a write fn: appends m to its channel's queue, as one entry
 * whatever its length (hw_outbox_append_parts_in splits), and records the
 * channel on fx, so that its subscribers are woken after the commit.
 * m->channel, m->channel_user_id, m->kind and m->text are required; m->seq
 * is assigned (written back), m->created_unix_ms set when 0, m->attempt
 * set to 0. Writer thread only.
 * @return HW_OK; HW_EINVALID (a required field missing: nothing
 *   appended); store codes. */
int hw_outbox_append_in(hw_store_txn *w, hw_effects *fx, Helpwire__V1__OutboundMessage *m);

/* The message limit of channel (borrowed from the table in outbox.c):
 * Telegram 4096 UTF-16 code units (sendMessage's text), WhatsApp 4096 code
 * points (the Cloud API's text body), web chat none (the page shows any
 * length; AddMessage's 16384 bytes bound it). An unknown channel has none.
 * Pure; any thread. */
hw_split_limit hw_outbox_channel_limit(Helpwire__V1__Channel channel);

/* The outbox entries one text became: the sequences of its parts, in the
 * order the customer receives them. */
typedef struct hw_outbox_parts {
    uint64_t *seqs; /* [n], allocated in the arena given; NULL when n is 0 */
    size_t n;
} hw_outbox_parts;

/* Inside a write fn: appends m as hw_outbox_append_in does, its text split
 * at its channel's limit (split.h's rules) into ordered parts: one entry
 * per part, each a copy of m with the part as text, part/parts numbered,
 * consecutive sequences; survey_url only on the last part. A text within
 * the limit is one entry, unchanged. m->seq receives the first part's
 * sequence (0 when there is no part: a text of whitespace only longer than
 * the limit queues nothing). sent (may be NULL) receives every part's
 * sequence, allocated in a (required with sent). Writer thread only.
 * @return HW_OK; HW_EINVALID (a required field missing, text not valid
 *   UTF-8, or sent without a: nothing appended); HW_ENOMEM; store codes. */
int hw_outbox_append_parts_in(hw_store_txn *w, hw_effects *fx, Helpwire__V1__OutboundMessage *m, hw_arena *a,
                              hw_outbox_parts *sent);

/* Inside a write fn: queues text of kind (an OutboundKind) for customer c
 * (borrowed) on channel: to c's identity on that channel, else on c's
 * first identity; ticket_id may be NULL (an auto-reply before any ticket).
 * A text longer than the channel's limit is queued as ordered parts
 * (hw_outbox_append_parts_in). sent (may be NULL) receives the parts'
 * sequences, allocated in a (required with sent); n is 0 when nothing was
 * queued: a customer with no identity (created through the API), or
 * whitespace only beyond the limit, which still return HW_OK. Writer
 * thread only.
 * @return HW_OK; HW_EINVALID (empty text, or not valid UTF-8); HW_ENOMEM;
 *   store codes. */
int hw_outbox_send_parts_to_customer_in(hw_store_txn *w, hw_effects *fx, const Helpwire__V1__Customer *c,
                                        Helpwire__V1__Channel channel, const char *ticket_id,
                                        Helpwire__V1__OutboundKind kind, const char *text, hw_arena *a,
                                        hw_outbox_parts *sent);

/* What a message to a customer carries beyond its text; every field is
 * optional (NULL or "": unset) and borrowed. */
typedef struct hw_outbox_extra {
    const char *locale;            /* OutboundMessage.locale; unset: the customer's ("zh" or "en") */
    const char *author_name;       /* AGENT_REPLY: the agent's name */
    const char *template_name;     /* WhatsApp outside the 24-hour window */
    const char *template_language; /* with template_name */
} hw_outbox_extra;

/* Sets x's fields (x may be NULL: nothing) on m; m then borrows x's
 * strings. */
void hw_outbox_extra_apply(Helpwire__V1__OutboundMessage *m, const hw_outbox_extra *x);

/* hw_outbox_send_parts_to_customer_in with x (may be NULL) copied onto
 * every part. OutboundMessage.locale is always set: x->locale, else the
 * customer's locale shortened to "zh" or "en". Same errors. */
int hw_outbox_send_parts_to_customer_ex_in(hw_store_txn *w, hw_effects *fx, const Helpwire__V1__Customer *c,
                                           Helpwire__V1__Channel channel, const char *ticket_id,
                                           Helpwire__V1__OutboundKind kind, const char *text,
                                           const hw_outbox_extra *x, hw_arena *a, hw_outbox_parts *sent);

/* hw_outbox_send_parts_to_customer_in for a message the caller has
 * filled (kind, text, ticket_id and any other field: attachments,
 * author_name, template, ...): channel, channel_user_id and customer_id
 * are set here, and locale when unset (the customer's, "zh" or "en").
 * Attachments go on the last part; with attachments the text may be empty
 * (one message with an empty text is queued). m is the caller's and is
 * changed (seq). */
int hw_outbox_send_message_to_customer_in(hw_store_txn *w, hw_effects *fx, const Helpwire__V1__Customer *c,
                                          Helpwire__V1__Channel channel, Helpwire__V1__OutboundMessage *m,
                                          hw_arena *a, hw_outbox_parts *sent);

/* After the commit of a write that appended to channel: wakes its
 * subscribers (the outbox_appended sink of effects.h). Cheap, never
 * blocks; any thread (normally the writer thread). ob may be NULL. */
void hw_outbox_committed(hw_outbox *ob, Helpwire__V1__Channel channel);

/* After the commit of acknowledgements on channel: its subscribers drop
 * what was acknowledged from their flight (the outbox_acked sink). Cheap,
 * never blocks; any thread. ob may be NULL. */
void hw_outbox_acked(hw_outbox *ob, Helpwire__V1__Channel channel);

/* Hands m, a courtesy signal (kind TYPING or READ, seq 0), to its
 * channel's active subscriber now, once its lease's control message has
 * gone out; never to a standby, never stored, never redelivered (the
 * subscriber's Ack of seq 0 is ignored like any seq 0). m is packed
 * before return (borrowed). Thread-safe; never waits for the hub thread.
 * @return HW_OK (queued on the stream); HW_ENOTFOUND (no active
 *   subscriber on the channel, or its stream just ended); HW_EINVALID (m
 *   NULL, a seq set, or no such channel). */
int hw_outbox_signal(hw_outbox *ob, const Helpwire__V1__OutboundMessage *m);

/* Method-table handlers; app is a hw_app. Subscribe answers
 * INVALID_ARGUMENT for a missing channel, redeliver_after_ms under 1000,
 * max_in_flight_per_recipient over 256, or instance longer than 128 bytes
 * or not UTF-8, naming the field. */
void hw_outbox_subscribe(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_outbox_ack(hw_call *call, const ProtobufCMessage *request, void *app);

#endif
