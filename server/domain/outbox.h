/*
 * outbox: the helpwire.v1.Outbox service. Every message to a customer is
 * appended to its channel's durable queue inside the same write
 * transaction as the change that caused it (hw_outbox_append_in), and
 * bridges stream it with Subscribe: the unacknowledged messages oldest
 * first, then new ones live, then again whatever stays unacknowledged
 * longer than the subscriber's redelivery delay. Ack deletes them.
 *
 * The live part is a hub of subscribers per channel, woken after each
 * commit that appended to their channel: the append records the channel on
 * the write's effects (effects.h), whose outbox_appended sink is
 * hw_outbox_committed.
 */
#ifndef HW_OUTBOX_H
#define HW_OUTBOX_H

#include <stdint.h>

#include "helpwire/v1/customers.pb-c.h"
#include "helpwire/v1/outbox.pb-c.h"
#include "server/domain/app.h"
#include "server/domain/effects.h"
#include "server/net/net.h"
#include "server/store/store.h"

typedef struct hw_outbox hw_outbox;

/* Creates the hub (and whatever thread or timer redelivery needs). Returns
 * 0 or a negative HW_E* code. app must outlive it. */
int hw_outbox_create(hw_outbox **out, hw_app *app);

/* Ends every subscription and frees the hub. Call after hw_net_shutdown. */
void hw_outbox_destroy(hw_outbox *ob);

/* Inside a write fn: appends m to its channel's queue and records the
 * channel on fx, so that its subscribers are woken after the commit.
 * m->channel, m->channel_user_id, m->kind and m->text are required; m->seq
 * is assigned (written back), m->created_unix_ms set when 0, m->attempt
 * set to 0. Writer thread only.
 * @return HW_OK; HW_EINVALID (a required field missing: nothing
 *   appended); store codes. */
int hw_outbox_append_in(hw_store_txn *w, hw_effects *fx, Helpwire__V1__OutboundMessage *m);

/* Inside a write fn: queues text of kind (an OutboundKind) for customer c
 * (borrowed) on channel: to c's identity on that channel, else on c's
 * first identity; ticket_id may be NULL (an auto-reply before any ticket).
 * A customer with no identity (created through the API) has nowhere to be
 * sent to: nothing is queued, *seq is left alone and HW_OK returned.
 * *seq (may be NULL) receives the message's outbox sequence. Writer thread
 * only.
 * @return HW_OK; HW_EINVALID (empty text); store codes. */
int hw_outbox_send_to_customer_in(hw_store_txn *w, hw_effects *fx, const Helpwire__V1__Customer *c,
                                  Helpwire__V1__Channel channel, const char *ticket_id,
                                  Helpwire__V1__OutboundKind kind, const char *text, uint64_t *seq);

/* After the commit of a write that appended to channel: wakes its
 * subscribers (the outbox_appended sink of effects.h). Cheap, never
 * blocks; any thread (normally the writer thread). ob may be NULL. */
void hw_outbox_committed(hw_outbox *ob, Helpwire__V1__Channel channel);

/* After the commit of acknowledgements on channel: its subscribers drop
 * what was acknowledged from their flight (the outbox_acked sink). Cheap,
 * never blocks; any thread. ob may be NULL. */
void hw_outbox_acked(hw_outbox *ob, Helpwire__V1__Channel channel);

/* Method-table handlers; app is a hw_app. */
void hw_outbox_subscribe(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_outbox_ack(hw_call *call, const ProtobufCMessage *request, void *app);

#endif
