/*
 * admin: the Admin service's operations: Backup (a consistent, compacted
 * copy of the store written on the server's machine, see
 * hw_store_backup), GetStats (counts and sizes) and ListAuditEvents. The token RPCs of the
 * same service are in auth.h.
 */
#ifndef HW_ADMIN_H
#define HW_ADMIN_H

#include "helpwire/v1/admin.pb-c.h"
#include "server/net/net.h"

/* Handlers for the method table; app is a hw_app. */
void hw_admin_backup(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_admin_stats(hw_call *call, const ProtobufCMessage *request, void *app);
/* Admin.ListAuditEvents: the audit log newest first (audit.h), filtered;
 * a page reads at most 10000 entries, so a narrow filter over a long log
 * may give short or empty pages with a next_page_token. */
void hw_admin_list_audit(hw_call *call, const ProtobufCMessage *request, void *app);

#endif
