/*
 * outbox: the helpwire.v1.Outbox service. Every message to a customer is
 * appended to its channel's durable queue inside the same write
 * transaction as the change that caused it (hw_outbox_append_in), and
 * bridges stream it with Subscribe: the unacknowledged messages oldest
 * first, then new ones live, then again whatever stays unacknowledged
 * longer than the subscriber's redelivery delay. Ack deletes them.
 *
 * The live part is a hub of subscribers per channel, woken after each
 * commit that appended to their channel (hw_outbox_committed).
 */
#ifndef HW_OUTBOX_H
#define HW_OUTBOX_H

#include "helpwire/v1/outbox.pb-c.h"
#include "server/domain/app.h"
#include "server/net/net.h"
#include "server/store/store.h"

typedef struct hw_outbox hw_outbox;

/* Creates the hub (and whatever thread or timer redelivery needs). Returns
 * 0 or a negative HW_E* code. app must outlive it. */
int hw_outbox_create(hw_outbox **out, hw_app *app);

/* Ends every subscription and frees the hub. Call after hw_net_shutdown. */
void hw_outbox_destroy(hw_outbox *ob);

/* Inside a write fn: appends m to its channel's queue. m->channel,
 * m->channel_user_id, m->kind and m->text are required; m->seq is assigned
 * (written back), m->created_unix_ms set when 0, m->attempt set to 0.
 * Returns HW_OK or the store's code. Writer thread only. */
int hw_outbox_append_in(hw_store_txn *w, Helpwire__V1__OutboundMessage *m);

/* After the commit of a write that appended to channel: wakes its
 * subscribers. Cheap, never blocks; any thread (normally a done callback
 * on the writer thread). */
void hw_outbox_committed(hw_outbox *ob, Helpwire__V1__Channel channel);

/* Method-table handlers; app is a hw_app. */
void hw_outbox_subscribe(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_outbox_ack(hw_call *call, const ProtobufCMessage *request, void *app);

#endif
