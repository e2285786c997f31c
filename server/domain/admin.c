/*
 * admin: the Admin service's operations (see admin.h): an online backup,
 * the server's statistics and the audit log's listing.
 */
#include "server/domain/admin.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server/domain/audit.h"
#include "server/domain/rpc.h"
#include "server/search/index.h"
#include "server/store/records.h"

/* The backup's entry is a small write of its own after the copy (the copy
 * is no store write); the reply waits for it. */
typedef struct backup_ctx {
    hw_wctx h;
    hw_audit_rec audit; /* the caller's part */
    const char *directory;
    int rc;        /* the copy's */
    char why[256]; /* its failure */
    uint64_t size, took_ms;
} backup_ctx;

static int backup_audit_fn(hw_store_txn *w, void *arg)
{
    backup_ctx *c = arg;
    hw_arena *a = hw_call_arena(c->h.call);
    hw_audit_rec r = c->audit;
    r.action = "backup";
    r.target = c->directory;
    if (c->rc == HW_OK) {
        r.outcome = HELPWIRE__V1__AUDIT_OUTCOME__AUDIT_OUTCOME_OK;
        hw_audit_detail(&r, "size_bytes", hw_arena_printf(a, "%llu", (unsigned long long)c->size));
        hw_audit_detail(&r, "took_ms", hw_arena_printf(a, "%llu", (unsigned long long)c->took_ms));
    } else {
        r.outcome = HELPWIRE__V1__AUDIT_OUTCOME__AUDIT_OUTCOME_FAILED;
        hw_audit_detail(&r, "error", hw_arena_printf(a, "%s: %s", hw_strerror(c->rc), c->why));
    }
    return hw_audit_append(w, hw_effects_now_ms(&c->h.fx), &r);
}

static void backup_done(void *arg, int status)
{
    backup_ctx *c = arg;
    (void)status; /* the answer is the copy's: its entry is best effort (none on a replica) */
    if (c->rc != HW_OK) {
        if (c->rc == HW_EINVALID)
            hw_rpc_fail(c->h.call, c->rc, "directory: %s: %s", c->directory, c->why);
        else
            hw_rpc_fail(c->h.call, c->rc, "backup to %s failed: %s", c->directory, c->why);
        return;
    }
    Helpwire__V1__BackupReply r = HELPWIRE__V1__BACKUP_REPLY__INIT;
    r.size_bytes = c->size;
    r.took_ms = c->took_ms;
    hw_call_reply(c->h.call, &r.base);
}

void hw_admin_backup(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    hw_app *app = appv;
    const Helpwire__V1__BackupRequest *req = (const void *)request;
    if (!hw_rpc_check_text(call, "directory", req->directory, 1, 4096))
        return;
    if (req->directory[0] != '/') {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "directory: must be an absolute path on the server");
        return;
    }
    backup_ctx *c = hw_rpc_ctx_new(call, app, sizeof *c);
    if (!c)
        return;
    c->directory = req->directory;
    hw_audit_from_call(&c->audit, call);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* Runs on this worker while writes go on: the copy reads a consistent
     * snapshot. */
    /* The copy is marked as a backup: its first start records store.restored
     * (audit.h). */
    size_t mark_len = 0;
    char *mark = hw_audit_backup_mark(hw_call_arena(call), hw_rpc_now_ms(app), c->audit.actor,
                                      hw_store_data_dir(app->store), req->directory, &mark_len);
    if (!mark) {
        hw_rpc_fail(call, HW_ENOMEM, NULL);
        return;
    }
    hw_store_backup_mark m = {.ns = HW_AUDIT_MARK_NS,
                              .key = HW_AUDIT_MARK_KEY,
                              .key_len = strlen(HW_AUDIT_MARK_KEY),
                              .val = mark,
                              .val_len = mark_len};
    c->rc = hw_store_backup_marked(app->store, req->directory, &m, &c->size, c->why, sizeof c->why);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    c->took_ms = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
    hw_rpc_write(&c->h, backup_audit_fn, backup_done); /* fails the call itself when it cannot */
}

void hw_admin_stats(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    (void)request;
    hw_app *app = appv;
    hw_store_txn *t = hw_rpc_read(call, app);
    if (!t)
        return;
    hw_store_counts counts;
    int rc = hw_store_counts_get(t, &counts);
    hw_rpc_read_end(call, app);
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, NULL);
        return;
    }
    hw_store_stats st;
    hw_store_get_stats(app->store, &st);
    Helpwire__V1__ServerStats r = HELPWIRE__V1__SERVER_STATS__INIT;
    r.map_size_bytes = st.map_size_bytes;
    r.map_used_bytes = st.map_used_bytes;
    r.customers = counts.customers;
    r.tickets = counts.tickets;
    r.open_tickets = counts.open_tickets;
    r.articles = counts.articles;
    r.faqs = counts.faqs;
    r.outbox_backlog = counts.outbox_backlog;
    hw_index_stats is;
    hw_index_stats_get(app->index, &is);
    r.index_terms = is.terms;
    r.calls_in_flight = (uint64_t)hw_net_calls_in_flight(app->net);
    r.started_unix_ms = app->started_unix_ms;
    hw_call_reply(call, &r.base);
}

/* ------------------------------------------------------- ListAuditEvents */

#define AUDIT_PAGE 100u
#define AUDIT_PAGE_MAX 1000u
#define AUDIT_SCAN_MAX 10000u /* entries one page reads at most (records.h) */

/* An action filter: lowercase words of [a-z0-9_] joined by '.', with an
 * optional trailing '.' (a prefix). */
static bool action_filter_ok(const char *s)
{
    size_t n = strlen(s);
    if (n > 128)
        return false;
    bool word = false; /* inside a word */
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_') {
            word = true;
        } else if (ch == '.' && word) {
            word = false;
        } else {
            return false;
        }
    }
    return true;
}

void hw_admin_list_audit(hw_call *call, const ProtobufCMessage *request, void *app)
{
    const Helpwire__V1__ListAuditEventsRequest *req = (const void *)request;
    hw_store_cursor cur;
    if (!hw_rpc_check_text(call, "action", req->action, 0, 128) ||
        !hw_rpc_check_text(call, "actor", req->actor, 0, 300) ||
        !hw_rpc_check_text(call, "target", req->target, 0, 4096))
        return;
    if (!action_filter_ok(req->action)) {
        hw_call_fail_field(call, "action",
                           "action: %s is not an action (\"token.create\") nor a prefix ending in '.' "
                           "(\"token.\")",
                           req->action);
        return;
    }
    if (req->from_unix_ms < 0) {
        hw_call_fail_field(call, "from_unix_ms", "from_unix_ms: must not be negative");
        return;
    }
    if (req->to_unix_ms < 0) {
        hw_call_fail_field(call, "to_unix_ms", "to_unix_ms: must not be negative");
        return;
    }
    if (req->from_unix_ms > 0 && req->to_unix_ms > 0 && req->to_unix_ms <= req->from_unix_ms) {
        hw_call_fail_field(call, "to_unix_ms", "to_unix_ms: must be after from_unix_ms");
        return;
    }
    if (!hw_rpc_page_token(call, "page_token", req->page_token, &cur))
        return;
    size_t want = hw_rpc_page_size(req->page_size, AUDIT_PAGE, AUDIT_PAGE_MAX);
    hw_audit_filter f = {.action = req->action,
                         .actor = req->actor,
                         .target = req->target,
                         .from_unix_ms = req->from_unix_ms,
                         .to_unix_ms = req->to_unix_ms};
    hw_store_txn *t = hw_rpc_read(call, app);
    if (!t)
        return;
    Helpwire__V1__ListAuditEventsReply r = HELPWIRE__V1__LIST_AUDIT_EVENTS_REPLY__INIT;
    int rc =
        hw_store_audit_list(t, &f, &cur, want, AUDIT_SCAN_MAX, hw_call_arena(call), &r.events, &r.n_events);
    hw_rpc_read_end(call, app);
    if (rc == HW_EINVALID) {
        hw_call_fail_field(call, "page_token", "page_token: not a token from this listing");
        return;
    }
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, NULL);
        return;
    }
    r.next_page_token = hw_rpc_next_token(call, &cur);
    hw_call_reply(call, &r.base);
}
