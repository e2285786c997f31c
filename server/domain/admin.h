/*
 * admin: the Admin service's operations: Backup (a consistent, compacted
 * copy of the store written on the server's machine, see
 * hw_store_backup) and GetStats (counts and sizes). The token RPCs of the
 * same service are in auth.h.
 */
#ifndef HW_ADMIN_H
#define HW_ADMIN_H

#include "helpwire/v1/admin.pb-c.h"
#include "server/net/net.h"

/* Handlers for the method table; app is a hw_app. */
void hw_admin_backup(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_admin_stats(hw_call *call, const ProtobufCMessage *request, void *app);

#endif
