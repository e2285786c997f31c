/*
 * audit: appending entries to the audit log (see audit.h): who, from
 * where and under which trace, taken from the call; the entry itself is
 * stored by records.h's hw_store_audit_append in the caller's write.
 */
#include "server/domain/audit.h"

#include <string.h>

#include "server/domain/rpc.h"
#include "server/store/records.h"

static const char *role_name(int role)
{
    switch (role) {
    case HW_ALLOW_ADMIN:
        return "admin";
    case HW_ALLOW_AGENT:
        return "agent";
    case HW_ALLOW_BRIDGE:
        return "bridge";
    default:
        return "";
    }
}

void hw_audit_from_call(hw_audit_rec *r, hw_call *call)
{
    if (!r || !call)
        return;
    const hw_principal *p = hw_call_principal(call);
    const char *actor = "anonymous";
    if (p && p->token_id) {
        size_t n = strlen(p->token_id) + sizeof "token:";
        char *s = hw_arena_alloc(hw_call_arena(call), n);
        if (s) {
            memcpy(s, "token:", 6);
            memcpy(s + 6, p->token_id, n - 6);
            actor = s;
        }
    }
    r->actor = actor;
    r->peer = hw_call_peer(call);
    const hw_trace *tr = hw_call_trace(call);
    r->trace_id = tr && tr->trace_id[0] ? tr->trace_id : "";
    if (p) {
        const char *role = role_name(p->role);
        if (role[0])
            hw_audit_detail(r, "role", role);
        if (p->agent_id && p->agent_id[0])
            hw_audit_detail(r, "agent", p->agent_id);
    }
}

void hw_audit_detail(hw_audit_rec *r, const char *key, const char *value)
{
    if (!r || !key || r->n_details >= HW_AUDIT_DETAILS_MAX)
        return;
    for (size_t i = 0; i < r->n_details; i++) {
        if (strcmp(r->details[i].key, key) == 0) { /* a later value replaces */
            r->details[i].value = value;
            return;
        }
    }
    r->details[r->n_details].key = key;
    r->details[r->n_details].value = value;
    r->n_details++;
}

static char *str(const char *s)
{
    return (char *)(s ? s : "");
}

int hw_audit_append(hw_store_txn *w, int64_t now_ms, const hw_audit_rec *r)
{
    if (!w || !r || !r->action || !r->action[0] || r->n_details > HW_AUDIT_DETAILS_MAX)
        return HW_EINVALID;
    hw_arena *a = hw_store_txn_arena(w);
    if (!a)
        return HW_EINVALID; /* a read transaction */
    Helpwire__V1__AuditEvent e = HELPWIRE__V1__AUDIT_EVENT__INIT;
    e.at_unix_ms = now_ms;
    e.actor = str(r->actor && r->actor[0] ? r->actor : "system");
    e.action = str(r->action);
    e.target = str(r->target);
    e.outcome = r->outcome ? r->outcome : HELPWIRE__V1__AUDIT_OUTCOME__AUDIT_OUTCOME_OK;
    e.peer = str(r->peer);
    e.trace_id = str(r->trace_id);
    Helpwire__V1__AuditEvent__DetailsEntry *kv = NULL;
    Helpwire__V1__AuditEvent__DetailsEntry **ptrs = NULL;
    if (r->n_details) {
        kv = hw_arena_alloc(a, r->n_details * sizeof *kv);
        ptrs = hw_arena_alloc(a, r->n_details * sizeof *ptrs);
        if (!kv || !ptrs)
            return HW_ENOMEM;
    }
    for (size_t i = 0; i < r->n_details; i++) {
        helpwire__v1__audit_event__details_entry__init(&kv[i]);
        kv[i].key = str(r->details[i].key);
        kv[i].value = str(r->details[i].value);
        ptrs[i] = &kv[i];
    }
    e.n_details = r->n_details;
    e.details = ptrs;
    return hw_store_audit_append(w, &e);
}
