/*
 * customers: the Customers service (see customers.h). Reads run on the
 * worker's reader; writes follow the rpc.h pattern. Open-ticket counts
 * shown on a customer are computed from the ticket index at read time
 * rather than stored, so they can never drift.
 */
#include "server/domain/customers.h"

#include <stdio.h>
#include <string.h>

#include "server/domain/rpc.h"
#include "server/domain/tickets.h"
#include "server/store/records.h"

#define MAX_NAME 256
#define MAX_EMAIL 254
#define MAX_USER_ID 128

typedef Helpwire__V1__Customer Customer;

int hw_customers_resolve_in(hw_store_txn *w, Helpwire__V1__Channel channel, const char *channel_user_id,
                            const char *display_name, const char *locale, int64_t now_ms, hw_arena *a,
                            Customer **out, bool *created)
{
    *created = false;
    int rc = hw_store_customer_lookup(w, channel, channel_user_id, a, out);
    if (rc != HW_ENOTFOUND) {
        if (rc == HW_OK && locale && *locale && strcmp((*out)->locale, locale) != 0) {
            (*out)->locale = (char *)locale;
            (*out)->version++;
            (*out)->updated_unix_ms = now_ms;
            rc = hw_store_customer_put(w, *out, HW_PUT_REPLACE, 0);
        }
        return rc;
    }
    uint64_t n;
    rc = hw_store_next_seq(w, "customer", 1, &n);
    if (rc != HW_OK)
        return rc;
    Customer *c = hw_arena_alloc(a, sizeof *c);
    Helpwire__V1__Identity *id = hw_arena_alloc(a, sizeof *id);
    Helpwire__V1__Identity **ids = hw_arena_alloc(a, sizeof *ids);
    if (!c || !id || !ids)
        return HW_ENOMEM;
    helpwire__v1__customer__init(c);
    helpwire__v1__identity__init(id);
    id->channel = channel;
    id->channel_user_id = (char *)channel_user_id;
    id->display_name = (char *)display_name;
    id->first_seen_unix_ms = now_ms;
    ids[0] = id;
    c->id = hw_arena_printf(a, "c-%llu", (unsigned long long)n);
    c->name = (char *)display_name;
    c->tier = HELPWIRE__V1__CUSTOMER_TIER__CUSTOMER_TIER_STANDARD;
    c->identities = ids;
    c->n_identities = 1;
    c->locale = (char *)(locale ? locale : "");
    c->created_unix_ms = c->updated_unix_ms = id->first_seen_unix_ms;
    c->version = 1;
    rc = hw_store_customer_put(w, c, HW_PUT_CREATE, 0);
    *out = c;
    *created = rc == HW_OK;
    return rc;
}

/* Fills open_tickets from the ticket index. */
static int count_open(hw_store_txn *t, Customer *c, hw_arena *a)
{
    hw_ticket_filter f = {.customer_id = c->id};
    hw_store_cursor cur = {0};
    uint32_t open = 0;
    do {
        Helpwire__V1__Ticket **ts;
        size_t n;
        int rc = hw_store_ticket_list(t, &f, &cur, 500, a, &ts, &n);
        if (rc != HW_OK)
            return rc;
        for (size_t i = 0; i < n; i++)
            open += ts[i]->status != HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_CLOSED;
    } while (cur.len);
    c->open_tickets = open;
    return HW_OK;
}

static void reply_customer(hw_call *call, hw_app *app,
                           int (*get)(hw_store_txn *, const void *, hw_arena *, Customer **), const void *key,
                           const char *what)
{
    hw_store_txn *t = hw_rpc_read(call, app);
    if (!t)
        return;
    Customer *c;
    hw_arena *a = hw_call_arena(call);
    int rc = get(t, key, a, &c);
    if (rc == HW_OK)
        rc = count_open(t, c, a);
    hw_rpc_read_end(call, app);
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, rc == HW_ENOTFOUND ? "no customer %s" : "reading customer %s failed", what);
        return;
    }
    hw_call_reply(call, &c->base);
}

static int get_by_id(hw_store_txn *t, const void *id, hw_arena *a, Customer **out)
{
    return hw_store_customer_get(t, id, a, out);
}

static int get_by_identity(hw_store_txn *t, const void *req, hw_arena *a, Customer **out)
{
    const Helpwire__V1__LookupCustomerRequest *q = req;
    return hw_store_customer_lookup(t, q->channel, q->channel_user_id, a, out);
}

void hw_customers_get(hw_call *call, const ProtobufCMessage *request, void *app)
{
    const Helpwire__V1__GetCustomerRequest *req = (const void *)request;
    if (!hw_rpc_check_id(call, "customer_id", req->customer_id, 64, false))
        return;
    reply_customer(call, app, get_by_id, req->customer_id,
                   hw_arena_printf(hw_call_arena(call), "with id %s", req->customer_id));
}

void hw_customers_lookup(hw_call *call, const ProtobufCMessage *request, void *app)
{
    const Helpwire__V1__LookupCustomerRequest *req = (const void *)request;
    if (!hw_rpc_check_enum(call, "channel", &helpwire__v1__channel__descriptor, req->channel, false) ||
        !hw_rpc_check_text(call, "channel_user_id", req->channel_user_id, 1, MAX_USER_ID))
        return;
    reply_customer(
        call, app, get_by_identity, req,
        hw_arena_printf(
            hw_call_arena(call), "with that %s identity",
            protobuf_c_enum_descriptor_get_value(&helpwire__v1__channel__descriptor, req->channel)->name));
}

typedef struct {
    hw_wctx h;
    const Helpwire__V1__UpdateCustomerRequest *req;
    bool set_name, set_email, set_tier;
    Customer *out;
} update_customer_ctx;

static int update_customer_fn(hw_store_txn *w, void *arg)
{
    update_customer_ctx *c = arg;
    const Helpwire__V1__UpdateCustomerRequest *q = c->req;
    Customer *cu;
    int rc = hw_store_customer_get(w, q->customer_id, hw_call_arena(c->h.call), &cu);
    if (rc == HW_ENOTFOUND)
        return hw_rpc_wfail(&c->h, rc, "no customer with id %s", q->customer_id);
    if (rc != HW_OK)
        return rc;
    if (q->expected_version && cu->version != q->expected_version)
        return hw_rpc_wfail_on(&c->h, HW_ECONFLICT, "customers", cu->id,
                               "customer %s is at version %llu, not %llu", cu->id,
                               (unsigned long long)cu->version, (unsigned long long)q->expected_version);
    if (c->set_name)
        cu->name = q->name;
    if (c->set_email)
        cu->email = q->email;
    if (c->set_tier)
        cu->tier = q->tier;
    cu->version++;
    cu->updated_unix_ms = hw_effects_now_ms(&c->h.fx);
    c->out = cu;
    return hw_store_customer_put(w, cu, HW_PUT_REPLACE, 0);
}

static void customer_done(void *arg, int status)
{
    update_customer_ctx *c = arg;
    if (hw_rpc_write_failed(&c->h, status))
        return;
    hw_call_reply(c->h.call, &c->out->base);
}

void hw_customers_update(hw_call *call, const ProtobufCMessage *request, void *app)
{
    const Helpwire__V1__UpdateCustomerRequest *req = (const void *)request;
    if (!hw_rpc_check_id(call, "customer_id", req->customer_id, 64, false))
        return;
    update_customer_ctx *c = hw_rpc_ctx_new(call, app, sizeof *c);
    if (!c)
        return;
    c->req = req;
    if (!req->n_update_mask) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
                     "update_mask: name the fields to set (name, email, tier)");
        return;
    }
    for (size_t i = 0; i < req->n_update_mask; i++) {
        const char *f = req->update_mask[i];
        if (strcmp(f, "name") == 0)
            c->set_name = true;
        else if (strcmp(f, "email") == 0)
            c->set_email = true;
        else if (strcmp(f, "tier") == 0)
            c->set_tier = true;
        else {
            hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "update_mask: unknown field '%.64s'", f);
            return;
        }
    }
    if (c->set_name && !hw_rpc_check_text(call, "name", req->name, 0, MAX_NAME))
        return;
    if (c->set_email && (!hw_rpc_check_text(call, "email", req->email, 0, MAX_EMAIL) ||
                         (*req->email && !strchr(req->email, '@')))) {
        if (*req->email && !strchr(req->email, '@'))
            hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "email: not an address (no '@')");
        return;
    }
    if (c->set_tier &&
        !hw_rpc_check_enum(call, "tier", &helpwire__v1__customer_tier__descriptor, req->tier, false))
        return;
    hw_rpc_write(&c->h, update_customer_fn, customer_done);
}

typedef struct {
    hw_wctx h;
    const Helpwire__V1__LinkIdentityRequest *req;
    Customer *out;
} link_ctx;

/* Moves every ticket of customer from to customer to. */
static int move_tickets(hw_store_txn *w, const char *from, const char *to, hw_arena *a)
{
    hw_ticket_filter f = {.customer_id = from};
    for (;;) {
        hw_store_cursor cur = {0};
        Helpwire__V1__Ticket **ts;
        size_t n;
        int rc = hw_store_ticket_list(w, &f, &cur, 500, a, &ts, &n);
        if (rc != HW_OK || n == 0)
            return rc;
        for (size_t i = 0; i < n; i++) {
            ts[i]->customer_id = (char *)to;
            ts[i]->version++;
            rc = hw_store_ticket_put(w, ts[i], HW_PUT_REPLACE, 0);
            if (rc != HW_OK)
                return rc;
        }
    }
}

static int link_fn(hw_store_txn *w, void *arg)
{
    link_ctx *c = arg;
    const Helpwire__V1__LinkIdentityRequest *q = c->req;
    hw_arena *a = hw_call_arena(c->h.call);
    Customer *cu, *other = NULL;
    int rc = hw_store_customer_get(w, q->customer_id, a, &cu);
    if (rc == HW_ENOTFOUND)
        return hw_rpc_wfail(&c->h, rc, "no customer with id %s", q->customer_id);
    if (rc != HW_OK)
        return rc;
    rc = hw_store_customer_lookup(w, q->channel, q->channel_user_id, a, &other);
    if (rc == HW_OK && strcmp(other->id, cu->id) == 0) {
        c->out = cu; /* already linked */
        return HW_OK;
    }
    if (rc != HW_OK && rc != HW_ENOTFOUND)
        return rc;
    size_t n = cu->n_identities + 1 + (rc == HW_OK ? other->n_identities : 0);
    Helpwire__V1__Identity **ids = hw_arena_alloc(a, n * sizeof *ids);
    if (!ids)
        return HW_ENOMEM;
    memcpy(ids, cu->identities, cu->n_identities * sizeof *ids);
    size_t k = cu->n_identities;
    if (rc == HW_OK) {
        /* Merge: the other customer's identities and tickets follow, then it
         * goes away. Its identities are unindexed first so the put below does
         * not collide with them. */
        for (size_t i = 0; i < other->n_identities; i++)
            ids[k++] = other->identities[i];
        rc = hw_store_customer_delete(w, other->id);
        if (rc == HW_OK)
            rc = move_tickets(w, other->id, cu->id, a);
        if (rc != HW_OK)
            return rc;
    } else {
        Helpwire__V1__Identity *id = hw_arena_alloc(a, sizeof *id);
        if (!id)
            return HW_ENOMEM;
        helpwire__v1__identity__init(id);
        id->channel = q->channel;
        id->channel_user_id = q->channel_user_id;
        id->display_name = q->display_name;
        id->first_seen_unix_ms = hw_effects_now_ms(&c->h.fx);
        ids[k++] = id;
    }
    cu->identities = ids;
    cu->n_identities = k;
    cu->version++;
    cu->updated_unix_ms = hw_effects_now_ms(&c->h.fx);
    c->out = cu;
    return hw_store_customer_put(w, cu, HW_PUT_REPLACE, 0);
}

static void link_done(void *arg, int status)
{
    link_ctx *c = arg;
    if (hw_rpc_write_failed(&c->h, status))
        return;
    hw_call_reply(c->h.call, &c->out->base);
}

void hw_customers_link(hw_call *call, const ProtobufCMessage *request, void *app)
{
    const Helpwire__V1__LinkIdentityRequest *req = (const void *)request;
    if (!hw_rpc_check_id(call, "customer_id", req->customer_id, 64, false) ||
        !hw_rpc_check_enum(call, "channel", &helpwire__v1__channel__descriptor, req->channel, false) ||
        !hw_rpc_check_text(call, "channel_user_id", req->channel_user_id, 1, MAX_USER_ID) ||
        !hw_rpc_check_text(call, "display_name", req->display_name, 0, MAX_NAME))
        return;
    link_ctx *c = hw_rpc_ctx_new(call, app, sizeof *c);
    if (!c)
        return;
    c->req = req;
    hw_rpc_write(&c->h, link_fn, link_done);
}
