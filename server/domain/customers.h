/*
 * customers: the Customers service. Customers are found by their channel
 * identities ((channel, channel_user_id) is unique) and may carry several
 * (LinkIdentity joins them, merging two customers when needed, with their
 * tickets).
 */
#ifndef HW_CUSTOMERS_H
#define HW_CUSTOMERS_H

#include <stdbool.h>

#include "helpwire/v1/customers.pb-c.h"
#include "server/net/net.h"
#include "server/store/store.h"

/* Inside a write fn: the customer owning (channel, channel_user_id), created
 * ("c-<n>", tier STANDARD) with that identity and display name on first
 * contact (*created set). locale, when non-empty, is remembered. *out is in
 * a; now_ms stamps what changes (the write's time, hw_effects_now_ms).
 * @return HW_OK or a store code. */
int hw_customers_resolve_in(hw_store_txn *w, Helpwire__V1__Channel channel, const char *channel_user_id,
                            const char *display_name, const char *locale, int64_t now_ms, hw_arena *a,
                            Helpwire__V1__Customer **out, bool *created);

/* Handlers for the method table; app is a hw_app. */
void hw_customers_get(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_customers_lookup(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_customers_update(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_customers_link(hw_call *call, const ProtobufCMessage *request, void *app);

#endif
