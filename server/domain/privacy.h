/*
 * privacy: a customer's data on request (Customers.ExportCustomer) and its
 * erasure (Customers.EraseCustomer), both for admins and both recorded in
 * the audit log. What each covers, and what erasure cannot reach, is in
 * docs/privacy.md.
 */
#ifndef HW_PRIVACY_H
#define HW_PRIVACY_H

#include "helpwire/v1/customers.pb-c.h"
#include "server/net/net.h"

/* The longest EraseCustomerRequest.reason, in bytes. */
#define HW_PRIVACY_REASON_MAX 256u

/* Handlers for the method table; app is a hw_app. */
void hw_privacy_erase(hw_call *call, const ProtobufCMessage *request, void *app);
/* Server streaming: a small write records the export in the audit log,
 * then a thread of the call's own streams the records. */
void hw_privacy_export(hw_call *call, const ProtobufCMessage *request, void *app);

#endif
