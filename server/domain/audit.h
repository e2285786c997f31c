/*
 * audit: the durable audit log of actions on access and personal data
 * (tokens, roles, backups and restores, exports and erasures, settings
 * changed at start, admin calls refused for want of a role).
 *
 * An entry is appended inside the write of the action it records, so the
 * two commit together or not at all, and it is replicated like any other
 * change of that write. Entries are numbered in commit order from 1 and
 * kept in their own database; the API lists them (Admin.ListAuditEvents,
 * newest first) and offers no way to change or remove one.
 */
#ifndef HW_AUDIT_H
#define HW_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "helpwire/v1/admin.pb-c.h"
#include "server/domain/app.h"
#include "server/net/net.h"
#include "server/store/store.h"

#define HW_AUDIT_DETAILS_MAX 16u

typedef struct hw_audit_kv {
    const char *key;   /* borrowed */
    const char *value; /* borrowed */
} hw_audit_kv;

/* One entry to append. Strings are borrowed for the call; NULL reads "". */
typedef struct hw_audit_rec {
    const char *actor;  /* "token:<id>", "system", "cli" */
    const char *action; /* "token.create", "customer.erase", ... */
    const char *target; /* "tok-12", "c-7", ... */
    Helpwire__V1__AuditOutcome outcome;
    const char *peer;     /* gRPC peer of the call, or "" */
    const char *trace_id; /* 32 hex, or "" */
    hw_audit_kv details[HW_AUDIT_DETAILS_MAX];
    size_t n_details;
} hw_audit_rec;

/* Sets r's actor (from the call's token: "token:<id>"), peer and trace id
 * from the call, and its role and agent as details. The strings stay the
 * call's (valid while it lives). */
void hw_audit_from_call(hw_audit_rec *r, hw_call *call);

/* Adds a detail (both borrowed); ignored beyond HW_AUDIT_DETAILS_MAX. */
void hw_audit_detail(hw_audit_rec *r, const char *key, const char *value);

/* Appends r at now_ms as the next entry, in the write w (writer only).
 * @return HW_OK; HW_EINVALID (no action); the store's errors. */
int hw_audit_append(hw_store_txn *w, int64_t now_ms, const hw_audit_rec *r);

/* ---- at each start (server/main.c): store.restored and config.start ----
 *
 * A copy Admin.Backup writes carries a mark: the kv record
 * (HW_AUDIT_MARK_NS, HW_AUDIT_MARK_KEY) holding hw_audit_backup_mark's
 * text, written into the copy before it takes its final name (store.h's
 * hw_store_backup_marked). The live store never holds one. */
#define HW_AUDIT_MARK_NS "audit.backup"
#define HW_AUDIT_MARK_KEY "mark"
/* The last start's effective settings (hw_config_effective's text). */
#define HW_AUDIT_START_NS "audit.start"
#define HW_AUDIT_START_KEY "settings"

/* The mark's text: `key=value` lines (backup_at_unix_ms, backup_at (UTC,
 * ISO 8601), taken_by, source, directory) that become store.restored's
 * details. In a (the caller's arena); NULL when out of memory. */
char *hw_audit_backup_mark(hw_arena *a, int64_t at_ms, const char *taken_by, const char *source,
                           const char *directory, size_t *len);

typedef struct hw_audit_start_result {
    int restored;    /* a backup's mark was found: store.restored appended, the mark removed */
    int first_start; /* no earlier start's settings were kept */
    size_t changed;  /* settings changed since the previous start (first start: not at their defaults) */
    uint64_t seq;    /* the config.start entry's number */
} hw_audit_start_result;

/* One write at start, actor "system": when the store carries a backup's
 * mark, appends "store.restored" (target: data_dir; details: the mark's
 * lines) and deletes the mark; then appends "config.start" (target:
 * data_dir) and keeps settings as the last start's. Its details are, per
 * setting changed since the previous start, name -> "old->new"; at the
 * first start "first_start" = "true" and, per setting not at its default
 * (defaults: the same text of the defaults), name -> value. A value in the
 * details is cut at 256 bytes (the kept record is whole). settings and
 * defaults are hw_config_effective's text; defaults may be NULL. On a
 * replica, the leader only (HW_ENOTLEADER elsewhere).
 * @return HW_OK; HW_EINVALID; the store's errors. */
int hw_audit_start(hw_store *s, int64_t now_ms, const char *data_dir, const char *settings,
                   const char *defaults, hw_audit_start_result *out);

#endif
