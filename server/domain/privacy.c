/*
 * privacy: Customers.EraseCustomer (and ExportCustomer): see privacy.h.
 *
 * Erasure is one write, in the store's wipe mode (every value it replaces
 * or deletes is zeroed in place first), so that a compacted backup taken
 * afterwards holds none of the erased bytes, followed by a best-effort
 * wipe of the store's free pages (hw_store_wipe_free) once it has
 * committed: it lowers, but does not end, the old bytes left in the live
 * file's free space (docs/privacy.md has the figures). It
 * scans, besides the customer's own records and tickets (indexed), the
 * surveys, Route's dedupe records, the outbox's failed list, the pending
 * alerts, the phrasing suggestions and the global event log, none of which
 * is indexed by customer: the cost grows with those (docs/privacy.md).
 */
#include "server/domain/privacy.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "helpwire/v1/router.pb-c.h"
#include "helpwire/v1/surveys.pb-c.h"
#include "server/domain/app.h"
#include "server/domain/audit.h"
#include "server/domain/notifier.h"
#include "server/domain/rpc.h"
#include "server/domain/suggestions.h"
#include "server/base/pbjson.h"
#include "server/store/eventlog.h"
#include "server/store/records.h"

#define ALERT_NS "alert"          /* notifier.c's pending alerts */
#define LATEST_NS "survey-latest" /* surveys.c: the customer's pending survey */

typedef struct erase_ctx {
    hw_wctx h;
    const char *customer_id;
    const char *reason;
    /* Results, rewritten by every run of the fn. */
    char **tickets; /* the customer's ticket ids, in the call's arena */
    size_t n_tickets;
    Helpwire__V1__EraseCustomerReply reply;
} erase_ctx;

static bool is_ticket(void *arg, const char *ticket_id)
{
    erase_ctx *c = arg;
    for (size_t i = 0; i < c->n_tickets; i++)
        if (strcmp(c->tickets[i], ticket_id) == 0)
            return true;
    return false;
}

/* The customer's tickets, every page of the customer index. */
static int collect_tickets(hw_store_txn *w, erase_ctx *c, hw_arena *a)
{
    hw_ticket_filter f = {.customer_id = c->customer_id};
    hw_store_cursor cur = {0};
    size_t cap = 0;
    c->n_tickets = 0;
    c->tickets = NULL;
    do {
        Helpwire__V1__Ticket **tks;
        size_t n;
        int rc = hw_store_ticket_list(w, &f, &cur, 1000, a, &tks, &n);
        if (rc != HW_OK)
            return rc;
        if (c->n_tickets + n > cap) {
            size_t ncap = cap ? 2 * cap + n : n + 16;
            char **t = hw_arena_alloc(a, ncap * sizeof *t);
            if (!t)
                return HW_ENOMEM;
            if (c->n_tickets)
                memcpy(t, c->tickets, c->n_tickets * sizeof *t);
            c->tickets = t;
            cap = ncap;
        }
        for (size_t i = 0; i < n; i++)
            c->tickets[c->n_tickets++] = tks[i]->id;
    } while (cur.len > 0);
    return HW_OK;
}

/* ---- surveys -------------------------------------------------------------- */

typedef struct survey_scan {
    const char *customer_id;
    hw_arena *keep; /* the ids found */
    char **ids;
    size_t n, cap;
} survey_scan;

static int survey_each(void *arg, const Helpwire__V1__Survey *sv)
{
    survey_scan *s = arg;
    if (strcmp(sv->customer_id ? sv->customer_id : "", s->customer_id) != 0)
        return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        char **ids = hw_arena_alloc(s->keep, cap * sizeof *ids);
        if (!ids)
            return HW_ENOMEM;
        if (s->n)
            memcpy(ids, s->ids, s->n * sizeof *ids);
        s->ids = ids, s->cap = cap;
    }
    if (!(s->ids[s->n] = hw_arena_strdup(s->keep, sv->id)))
        return HW_ENOMEM;
    s->n++;
    return 0;
}

/* Empties the comments of the customer's surveys (ratings stay: reports
 * count them). */
static int erase_surveys(hw_store_txn *w, erase_ctx *c, hw_arena *a, hw_arena *tmp)
{
    survey_scan s = {.customer_id = c->customer_id, .keep = a};
    int rc = hw_store_survey_foreach_sent(w, 0, 0, tmp, survey_each, &s);
    for (size_t i = 0; rc == HW_OK && i < s.n; i++) {
        Helpwire__V1__Survey *sv;
        if ((rc = hw_store_survey_get(w, s.ids[i], a, &sv)) != HW_OK)
            break;
        if (!sv->comment || !*sv->comment)
            continue;
        sv->comment = (char *)"";
        if ((rc = hw_store_survey_put(w, sv, NULL, 0, HW_PUT_REPLACE)) == HW_OK)
            c->reply.surveys_redacted++;
    }
    if (rc == HW_OK) {
        rc = hw_store_kv_delete(w, LATEST_NS, c->customer_id, strlen(c->customer_id));
        rc = rc == HW_ENOTFOUND ? HW_OK : rc;
    }
    return rc;
}

/* ---- Route's dedupe records ------------------------------------------------ */

typedef struct dedupe_match {
    const char *customer_id;
    hw_arena *tmp;
} dedupe_match;

static int dedupe_names_customer(void *arg, const void *reply, size_t len)
{
    dedupe_match *d = arg;
    Helpwire__V1__RouteReply *r = helpwire__v1__route_reply__unpack(hw_arena_allocator(d->tmp), len, reply);
    if (!r)
        return 0; /* not ours to judge: left alone */
    int m = r->customer_id && strcmp(r->customer_id, d->customer_id) == 0;
    hw_arena_reset(d->tmp);
    return m;
}

/* ---- the outbox ---------------------------------------------------------- */

/* Messages not yet acknowledged to the customer, on every channel, and the
 * failed ones. */
static int erase_outbox(hw_store_txn *w, erase_ctx *c, hw_arena *a)
{
    const ProtobufCEnumDescriptor *d = &helpwire__v1__channel__descriptor;
    for (unsigned i = 0; i < d->n_values; i++) {
        Helpwire__V1__Channel ch = (Helpwire__V1__Channel)d->values[i].value;
        if (ch == 0)
            continue;
        uint64_t after = 0;
        for (;;) {
            Helpwire__V1__OutboundMessage **ms;
            size_t n;
            int rc = hw_store_outbox_list(w, ch, after, 1000, a, &ms, &n);
            if (rc == HW_EINVALID)
                break; /* a channel the outbox does not keep */
            if (rc != HW_OK)
                return rc;
            for (size_t j = 0; j < n; j++) {
                after = ms[j]->seq;
                if (strcmp(ms[j]->customer_id ? ms[j]->customer_id : "", c->customer_id) != 0)
                    continue;
                if ((rc = hw_store_outbox_ack(w, ch, ms[j]->seq)) != HW_OK)
                    return rc;
                /* As an acknowledgement: the hub drops a removed message it
                 * streamed from its flight at once, releasing the
                 * recipient's place, instead of at its redelivery time. */
                hw_effects_outbox_acked(&c->h.fx, ch);
                c->reply.outbound_removed++;
            }
            if (n < 1000)
                break;
        }
    }
    hw_store_cursor cur = {0};
    do {
        Helpwire__V1__FailedEntry **es;
        size_t n;
        int rc = hw_store_failed_list(w, 0, &cur, 1000, a, &es, &n);
        if (rc != HW_OK)
            return rc;
        for (size_t j = 0; j < n; j++) {
            const Helpwire__V1__OutboundMessage *m = es[j]->message;
            if (!m || strcmp(m->customer_id ? m->customer_id : "", c->customer_id) != 0)
                continue;
            if ((rc = hw_store_failed_delete(w, m->channel, m->seq)) != HW_OK)
                return rc;
            c->reply.outbound_removed++;
        }
    } while (cur.len > 0);
    return HW_OK;
}

/* ---- alerts not yet sent ------------------------------------------------- */

typedef struct alert_scan {
    erase_ctx *c;
    hw_arena *a;
    void **keys;
    size_t *lens;
    size_t n, cap;
} alert_scan;

static int alert_each(void *arg, const void *key, size_t kl, const void *val, size_t vl)
{
    alert_scan *s = arg;
    json_t *o = json_loadb(val, vl, 0, NULL);
    const char *tid = o ? json_string_value(json_object_get(o, "ticket_id")) : NULL;
    bool ours = tid && is_ticket(s->c, tid);
    json_decref(o);
    if (!ours)
        return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        void **k = hw_arena_alloc(s->a, cap * sizeof *k);
        size_t *l = hw_arena_alloc(s->a, cap * sizeof *l);
        if (!k || !l)
            return HW_ENOMEM;
        if (s->n) {
            memcpy(k, s->keys, s->n * sizeof *k);
            memcpy(l, s->lens, s->n * sizeof *l);
        }
        s->keys = k, s->lens = l, s->cap = cap;
    }
    if (!(s->keys[s->n] = hw_arena_alloc(s->a, kl)))
        return HW_ENOMEM;
    memcpy(s->keys[s->n], key, kl);
    s->lens[s->n++] = kl;
    return 0;
}

static int erase_alerts(hw_store_txn *w, erase_ctx *c, hw_arena *a)
{
    alert_scan s = {.c = c, .a = a};
    int rc = hw_store_kv_foreach(w, ALERT_NS, alert_each, &s);
    for (size_t i = 0; rc == HW_OK && i < s.n; i++) {
        rc = hw_store_kv_delete(w, ALERT_NS, s.keys[i], s.lens[i]);
        if (rc == HW_OK)
            c->reply.alerts_removed++;
    }
    return rc;
}

/* ---- the write ----------------------------------------------------------- */

static int erase_steps(hw_store_txn *w, erase_ctx *c, hw_arena *tmp);

/* tmp: scratch that the scans reset after each record. Not the write's own
 * arena, in which the store keeps the dedupe keys it collects while the
 * matcher runs (resetting that one clobbered them). */
static int erase_fn(hw_store_txn *w, void *arg)
{
    erase_ctx *c = arg;
    hw_arena *tmp = hw_arena_create(16 * 1024);
    if (!tmp)
        return HW_ENOMEM;
    int rc = erase_steps(w, c, tmp);
    hw_arena_destroy(tmp);
    return rc;
}

static int erase_steps(hw_store_txn *w, erase_ctx *c, hw_arena *tmp)
{
    hw_arena *a = hw_call_arena(c->h.call);
    int64_t now = hw_effects_now_ms(&c->h.fx);
    Helpwire__V1__EraseCustomerReply init = HELPWIRE__V1__ERASE_CUSTOMER_REPLY__INIT;
    c->reply = init;
    c->reply.customer_id = (char *)c->customer_id;
    c->reply.erased_unix_ms = now;
    hw_store_txn_wipe(w, true);

    Helpwire__V1__Customer *cust;
    int rc = hw_store_customer_get(w, c->customer_id, a, &cust);
    if (rc == HW_ENOTFOUND)
        return hw_rpc_wfail(&c->h, rc, "no customer with id %s", c->customer_id);
    if (rc != HW_OK)
        return rc;
    if ((rc = collect_tickets(w, c, a)) != HW_OK)
        return rc;
    for (size_t i = 0; i < c->n_tickets; i++) {
        size_t n = 0;
        if ((rc = hw_store_ticket_scrub(w, c->tickets[i], HW_SCRUB_REDACT, now, &n)) != HW_OK)
            return rc;
        c->reply.tickets_redacted++;
        c->reply.messages_redacted += (uint32_t)n;
    }
    if ((rc = erase_surveys(w, c, a, tmp)) != HW_OK)
        return rc;
    dedupe_match dm = {.customer_id = c->customer_id, .tmp = tmp};
    size_t n = 0;
    if ((rc = hw_store_dedupe_erase(w, dedupe_names_customer, &dm, &n)) != HW_OK)
        return rc;
    c->reply.dedupe_removed = (uint32_t)n;
    if ((rc = erase_outbox(w, c, a)) != HW_OK)
        return rc;
    if ((rc = erase_alerts(w, c, a)) != HW_OK)
        return rc;
    size_t sg = 0;
    if ((rc = hw_suggestions_erase_tickets_in(w, is_ticket, c, a, &sg)) != HW_OK)
        return rc;
    c->reply.suggestions_removed = (uint32_t)sg;
    if ((rc = hw_eventlog_redact(w, is_ticket, c, &n)) != HW_OK)
        return rc;
    c->reply.watch_events_redacted = (uint32_t)n;
    if ((rc = hw_store_customer_delete(w, c->customer_id)) != HW_OK)
        return rc;

    hw_audit_rec ar = {.action = "customer.erase",
                       .target = c->customer_id,
                       .outcome = HELPWIRE__V1__AUDIT_OUTCOME__AUDIT_OUTCOME_OK};
    hw_audit_from_call(&ar, c->h.call);
    hw_audit_detail(&ar, "reason", c->reason);
    char counts[160];
    snprintf(counts, sizeof counts, "tickets=%u messages=%u surveys=%u outbound=%u dedupe=%u alerts=%u",
             c->reply.tickets_redacted, c->reply.messages_redacted, c->reply.surveys_redacted,
             c->reply.outbound_removed, c->reply.dedupe_removed, c->reply.alerts_removed);
    char *cs = hw_arena_strdup(a, counts);
    if (!cs)
        return HW_ENOMEM;
    hw_audit_detail(&ar, "removed", cs);
    hw_store_txn_wipe(w, false);
    return hw_audit_append(w, now, &ar);
}

static void erase_done(void *arg, int status)
{
    erase_ctx *c = arg;
    if (hw_rpc_write_failed(&c->h, status))
        return;
    /* The old versions of the pages the write changed are free pages now,
     * still holding the erased bytes: the writer overwrites them next. */
    hw_store_wipe_free(c->h.app->store);
    /* The notifier drops the erased alerts it holds in memory (it looks
     * each up before posting anyway) and from its pending gauge. */
    if (c->reply.alerts_removed > 0)
        hw_notifier_removed(c->h.app->notifier);
    hw_call_reply(c->h.call, &c->reply.base);
}

void hw_privacy_erase(hw_call *call, const ProtobufCMessage *request, void *app)
{
    const Helpwire__V1__EraseCustomerRequest *req = (const void *)request;
    if (!hw_rpc_check_id(call, "customer_id", req->customer_id, HW_STORE_ID_MAX, false))
        return;
    if (strlen(req->reason) > HW_PRIVACY_REASON_MAX) {
        hw_call_fail_field(call, "reason", "at most %u bytes", HW_PRIVACY_REASON_MAX);
        return;
    }
    if (!hw_rpc_check_text(call, "reason", req->reason, 0, HW_PRIVACY_REASON_MAX))
        return;
    erase_ctx *c = hw_rpc_ctx_new(call, app, sizeof *c);
    if (!c)
        return;
    c->customer_id = req->customer_id;
    c->reason = req->reason;
    hw_rpc_write(&c->h, erase_fn, erase_done);
}

/* ---- ExportCustomer ---------------------------------------------------------
 *
 * The handler checks the id; a small write records the export in the audit
 * log (and answers NOT_FOUND for an unknown customer); after its commit a
 * thread of the call's own streams the records. It reads in short read
 * transactions, one page at a time (a long one would hold back the map's
 * growth while the client reads slowly), turns the page's records into
 * JSON, ends the read and only then sends them, waiting whenever
 * EXPORT_WINDOW records are queued: memory stays bounded however much the
 * customer has. The export is therefore not one point in time: each page
 * is consistent, and a ticket changed meanwhile shows its later state. */

#define EXPORT_WINDOW 64 /* records queued or in flight at most */
#define EXPORT_PAGE 200  /* records read per read transaction */

typedef struct export_line {
    const char *kind; /* static */
    char *json;       /* malloc'd */
} export_line;

typedef struct export_ctx {
    hw_wctx h;
    const char *customer_id;
    /* The streaming thread's own. */
    hw_store_reader *reader;
    hw_arena *page;   /* one page's records, reset after each */
    hw_arena *keep;   /* the ticket ids, for the whole export */
    export_line *out; /* converted, not yet sent */
    size_t n_out, cap_out;
    char **tickets;
    size_t n_tickets;
    uint64_t n_tickets_sent, n_messages, n_events, n_surveys, n_outbound, n_failed;
    int err; /* the first failure (HW_E*), with msg */
    char msg[160];
} export_ctx;

/* Converts m into a pending line of kind; HW_ENOMEM. */
static int export_add(export_ctx *x, const char *kind, const ProtobufCMessage *m)
{
    if (x->n_out == x->cap_out) {
        size_t cap = x->cap_out ? 2 * x->cap_out : 32;
        export_line *o = realloc(x->out, cap * sizeof *o);
        if (!o)
            return HW_ENOMEM;
        x->out = o, x->cap_out = cap;
    }
    json_t *j = hw_pbjson_from_message(m);
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (!s)
        return HW_ENOMEM;
    x->out[x->n_out].kind = kind;
    x->out[x->n_out++].json = s;
    return HW_OK;
}

static void export_drop(export_ctx *x)
{
    for (size_t i = 0; i < x->n_out; i++)
        free(x->out[i].json);
    x->n_out = 0;
}

/* Sends the pending lines (no read may be open). -1: the stream ended. */
static int export_flush(export_ctx *x)
{
    int rc = 0;
    for (size_t i = 0; i < x->n_out && rc == 0; i++) {
        Helpwire__V1__CustomerExportRecord r = HELPWIRE__V1__CUSTOMER_EXPORT_RECORD__INIT;
        r.kind = (char *)x->out[i].kind;
        r.json = x->out[i].json;
        if (hw_call_stream_wait(x->h.call, EXPORT_WINDOW - 1) != 0 || hw_call_stream_send(x->h.call, &r.base) != 0)
            rc = -1;
    }
    export_drop(x);
    return rc;
}

static int export_fail(export_ctx *x, int err, const char *msg)
{
    if (!x->err) {
        x->err = err;
        snprintf(x->msg, sizeof x->msg, "%s", msg ? msg : "");
    }
    return err;
}

/* Runs read(x, txn) in a read transaction of its own, then sends what it
 * converted. HW_OK; HW_STOP (the stream ended); the read's failure. */
static int export_step(export_ctx *x, int (*read)(export_ctx *x, hw_store_txn *t, void *arg), void *arg)
{
    hw_store_txn *t;
    int rc = hw_store_read_begin(x->reader, &t);
    if (rc != HW_OK)
        return export_fail(x, rc, "cannot read the store");
    rc = read(x, t, arg);
    hw_store_read_end(x->reader);
    hw_arena_reset(x->page);
    if (rc != HW_OK) {
        export_drop(x);
        return export_fail(x, rc, NULL);
    }
    return export_flush(x) == 0 ? HW_OK : HW_STOP;
}

/* The customer, and the ids of their tickets, oldest first. */
static int read_customer(export_ctx *x, hw_store_txn *t, void *arg)
{
    (void)arg;
    Helpwire__V1__Customer *cu;
    int rc = hw_store_customer_get(t, x->customer_id, x->page, &cu);
    if (rc == HW_ENOTFOUND)
        return export_fail(x, rc, "no customer with that id (erased meanwhile?)");
    if (rc != HW_OK || (rc = export_add(x, "customer", &cu->base)) != HW_OK)
        return rc;
    hw_ticket_filter f = {.customer_id = x->customer_id};
    hw_store_cursor cur = {0};
    size_t cap = 0;
    do {
        Helpwire__V1__Ticket **tks;
        size_t n;
        if ((rc = hw_store_ticket_list(t, &f, &cur, 1000, x->page, &tks, &n)) != HW_OK)
            return rc;
        if (x->n_tickets + n > cap) {
            size_t ncap = 2 * cap + n + 16;
            char **ids = hw_arena_alloc(x->keep, ncap * sizeof *ids);
            if (!ids)
                return HW_ENOMEM;
            if (x->n_tickets)
                memcpy(ids, x->tickets, x->n_tickets * sizeof *ids);
            x->tickets = ids, cap = ncap;
        }
        for (size_t i = 0; i < n; i++)
            if (!(x->tickets[x->n_tickets++] = hw_arena_strdup(x->keep, tks[i]->id)))
                return HW_ENOMEM;
    } while (cur.len > 0);
    for (size_t i = 0; i < x->n_tickets / 2; i++) { /* listed newest first */
        char *s = x->tickets[i];
        x->tickets[i] = x->tickets[x->n_tickets - 1 - i];
        x->tickets[x->n_tickets - 1 - i] = s;
    }
    return HW_OK;
}

static int read_ticket(export_ctx *x, hw_store_txn *t, void *arg)
{
    Helpwire__V1__Ticket *tk;
    int rc = hw_store_ticket_get(t, arg, x->page, &tk);
    if (rc == HW_ENOTFOUND)
        return HW_OK; /* deleted meanwhile */
    if (rc == HW_OK && (rc = export_add(x, "ticket", &tk->base)) == HW_OK)
        x->n_tickets_sent++;
    return rc;
}

typedef struct page_arg {
    const char *ticket_id;
    hw_store_cursor cur;
} page_arg;

static int read_messages(export_ctx *x, hw_store_txn *t, void *arg)
{
    page_arg *p = arg;
    Helpwire__V1__TicketMessage **ms;
    size_t n;
    int rc = hw_store_ticket_message_list(t, p->ticket_id, &p->cur, EXPORT_PAGE, x->page, &ms, &n);
    for (size_t i = 0; rc == HW_OK && i < n; i++, x->n_messages++)
        rc = export_add(x, "message", &ms[i]->base);
    return rc;
}

static int read_events(export_ctx *x, hw_store_txn *t, void *arg)
{
    page_arg *p = arg;
    Helpwire__V1__TicketEvent **es;
    size_t n;
    int rc = hw_store_ticket_event_list(t, p->ticket_id, &p->cur, EXPORT_PAGE, x->page, &es, &n);
    for (size_t i = 0; rc == HW_OK && i < n; i++, x->n_events++)
        rc = export_add(x, "event", &es[i]->base);
    return rc;
}

static int survey_line(void *arg, const Helpwire__V1__Survey *sv)
{
    export_ctx *x = arg;
    if (strcmp(sv->customer_id ? sv->customer_id : "", x->customer_id) != 0)
        return 0;
    x->n_surveys++;
    return export_add(x, "survey", &sv->base);
}

/* Surveys are not indexed by customer: one scan of them all. */
static int read_surveys(export_ctx *x, hw_store_txn *t, void *arg)
{
    (void)arg;
    return hw_store_survey_foreach_sent(t, 0, 0, x->page, survey_line, x);
}

typedef struct outbox_arg {
    Helpwire__V1__Channel channel;
    uint64_t after;
    bool done;
} outbox_arg;

static int read_outbound(export_ctx *x, hw_store_txn *t, void *arg)
{
    outbox_arg *o = arg;
    Helpwire__V1__OutboundMessage **ms;
    size_t n;
    int rc = hw_store_outbox_list(t, o->channel, o->after, EXPORT_PAGE, x->page, &ms, &n);
    if (rc == HW_EINVALID) { /* a channel the outbox does not keep */
        o->done = true;
        return HW_OK;
    }
    for (size_t i = 0; rc == HW_OK && i < n; i++) {
        o->after = ms[i]->seq;
        if (strcmp(ms[i]->customer_id ? ms[i]->customer_id : "", x->customer_id) != 0)
            continue;
        x->n_outbound++;
        rc = export_add(x, "outbound", &ms[i]->base);
    }
    o->done = rc != HW_OK || n < EXPORT_PAGE;
    return rc;
}

static int read_failed(export_ctx *x, hw_store_txn *t, void *arg)
{
    hw_store_cursor *cur = arg;
    Helpwire__V1__FailedEntry **es;
    size_t n;
    int rc = hw_store_failed_list(t, 0, cur, EXPORT_PAGE, x->page, &es, &n);
    for (size_t i = 0; rc == HW_OK && i < n; i++) {
        const Helpwire__V1__OutboundMessage *m = es[i]->message;
        if (!m || strcmp(m->customer_id ? m->customer_id : "", x->customer_id) != 0)
            continue;
        x->n_failed++;
        rc = export_add(x, "failed_outbound", &es[i]->base);
    }
    return rc;
}

/* Every record after the customer's; HW_OK, HW_STOP or a failure. */
static int export_rest(export_ctx *x)
{
    int rc = HW_OK;
    for (size_t i = 0; rc == HW_OK && i < x->n_tickets; i++) {
        if ((rc = export_step(x, read_ticket, x->tickets[i])) != HW_OK)
            break;
        page_arg p = {.ticket_id = x->tickets[i]};
        do
            rc = export_step(x, read_messages, &p);
        while (rc == HW_OK && p.cur.len > 0);
        memset(&p.cur, 0, sizeof p.cur);
        while (rc == HW_OK) {
            rc = export_step(x, read_events, &p);
            if (p.cur.len == 0)
                break;
        }
    }
    if (rc == HW_OK)
        rc = export_step(x, read_surveys, NULL);
    const ProtobufCEnumDescriptor *d = &helpwire__v1__channel__descriptor;
    for (unsigned i = 0; rc == HW_OK && i < d->n_values; i++) {
        outbox_arg o = {.channel = (Helpwire__V1__Channel)d->values[i].value};
        if (o.channel == 0)
            continue;
        while (rc == HW_OK && !o.done)
            rc = export_step(x, read_outbound, &o);
    }
    hw_store_cursor cur = {0};
    while (rc == HW_OK) {
        rc = export_step(x, read_failed, &cur);
        if (cur.len == 0)
            break;
    }
    return rc;
}

/* The last record: how many of each kind went before it. */
static int export_end(export_ctx *x)
{
    json_t *j = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I}", "customer_id", x->customer_id, "tickets",
                          (json_int_t)x->n_tickets_sent, "messages", (json_int_t)x->n_messages, "events",
                          (json_int_t)x->n_events, "surveys", (json_int_t)x->n_surveys, "outbound",
                          (json_int_t)x->n_outbound, "failed_outbound", (json_int_t)x->n_failed);
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (!s)
        return export_fail(x, HW_ENOMEM, NULL);
    Helpwire__V1__CustomerExportRecord r = HELPWIRE__V1__CUSTOMER_EXPORT_RECORD__INIT;
    r.kind = (char *)"end";
    r.json = s;
    int rc = hw_call_stream_wait(x->h.call, EXPORT_WINDOW - 1) == 0 && hw_call_stream_send(x->h.call, &r.base) == 0
                 ? HW_OK
                 : HW_STOP;
    free(s);
    return rc;
}

static void *export_main(void *arg)
{
    export_ctx *x = arg;
    hw_call *call = x->h.call;
    pthread_setname_np(pthread_self(), "hw-export");
    int rc = hw_store_reader_create(x->h.app->store, &x->reader);
    if (rc != HW_OK)
        export_fail(x, rc, "no reader for the export");
    else if (!(x->page = hw_arena_create(64 * 1024)) || !(x->keep = hw_arena_create(4096)))
        rc = export_fail(x, HW_ENOMEM, NULL);
    if (rc == HW_OK && (rc = export_step(x, read_customer, NULL)) == HW_OK && (rc = export_rest(x)) == HW_OK)
        rc = export_end(x);
    /* The store's resources go back before the stream ends: the server's
     * shutdown waits for streams, not for this thread. */
    hw_store_reader_destroy(x->reader);
    hw_arena_destroy(x->page);
    hw_arena_destroy(x->keep);
    export_drop(x);
    free(x->out);
    if (rc == HW_OK)
        hw_call_fail(call, GRPC_STATUS_OK, NULL); /* after the queued records */
    else if (rc != HW_STOP)
        hw_rpc_fail(call, x->err ? x->err : rc, "%s", x->msg[0] ? x->msg : hw_strerror(x->err ? x->err : rc));
    hw_call_unref(call); /* x lives in the call's arena: not touched after this */
    return NULL;
}

/* The audit entry; NOT_FOUND for an unknown customer. */
static int export_audit_fn(hw_store_txn *w, void *arg)
{
    export_ctx *x = arg;
    Helpwire__V1__Customer *cu;
    int rc = hw_store_customer_get(w, x->customer_id, hw_store_txn_arena(w), &cu);
    if (rc == HW_ENOTFOUND)
        return hw_rpc_wfail(&x->h, rc, "no customer with id %s", x->customer_id);
    if (rc != HW_OK)
        return rc;
    hw_audit_rec ar = {.action = "customer.export",
                       .target = x->customer_id,
                       .outcome = HELPWIRE__V1__AUDIT_OUTCOME__AUDIT_OUTCOME_OK};
    hw_audit_from_call(&ar, x->h.call);
    return hw_audit_append(w, hw_effects_now_ms(&x->h.fx), &ar);
}

/* Drops the reference hw_privacy_export took for the write (the export
 * thread takes its own). */
static void export_audit_done(void *arg, int status)
{
    export_ctx *x = arg;
    hw_call *call = x->h.call;
    if (hw_rpc_write_failed(&x->h, status)) {
        hw_call_unref(call);
        return;
    }
    int e = hw_rpc_start_thread(call, export_main, x);
    if (e != 0)
        hw_rpc_fail(call, HW_ENOMEM, "cannot start the export: %s", strerror(e));
    hw_call_unref(call); /* the write's reference: the thread holds its own */
}

void hw_privacy_export(hw_call *call, const ProtobufCMessage *request, void *app)
{
    const Helpwire__V1__ExportCustomerRequest *req = (const void *)request;
    if (!hw_rpc_check_id(call, "customer_id", req->customer_id, HW_STORE_ID_MAX, false))
        return;
    export_ctx *x = hw_rpc_ctx_new(call, app, sizeof *x);
    if (!x)
        return;
    x->customer_id = req->customer_id;
    /* The stream may be cancelled while the write waits for the writer: x
     * lives in the call's arena, so the call is held until the write is
     * done (the export thread then holds its own). */
    hw_call_ref(call);
    if (!hw_rpc_write(&x->h, export_audit_fn, export_audit_done))
        hw_call_unref(call); /* failed the call itself */
}
