/*
 * admin: the Admin service's operations (see admin.h): an online backup
 * and the server's statistics.
 */
#include "server/domain/admin.h"

#include <stdio.h>
#include <time.h>

#include "server/domain/rpc.h"
#include "server/search/index.h"
#include "server/store/records.h"

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
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t size = 0;
    char why[256] = "";
    /* Runs on this worker while writes go on: the copy reads a consistent
     * snapshot. */
    int rc = hw_store_backup(app->store, req->directory, &size, why, sizeof why);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc != HW_OK) {
        if (rc == HW_EINVALID)
            hw_rpc_fail(call, rc, "directory: %s: %s", req->directory, why);
        else
            hw_rpc_fail(call, rc, "backup to %s failed: %s", req->directory, why);
        return;
    }
    Helpwire__V1__BackupReply r = HELPWIRE__V1__BACKUP_REPLY__INIT;
    r.size_bytes = size;
    r.took_ms = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
    hw_call_reply(call, &r.base);
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
