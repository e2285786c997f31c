/*
 * tickets: ticket rules and the Tickets service (see tickets.h).
 *
 * Every change to a ticket goes through store_ticket(), which keeps each
 * agent's open_tickets (the load used for assignment) equal to the number
 * of OPEN/PENDING/ESCALATED tickets assigned to it, in the same
 * transaction. When an agent's load drops (a close, a resolve, a move),
 * waiting tickets of its skills are assigned to it in that transaction too.
 *
 * The status machine is a table: OPEN <-> PENDING, OPEN/PENDING ->
 * ESCALATED (EscalateTicket) -> RESOLVED, OPEN/PENDING -> RESOLVED,
 * RESOLVED -> OPEN (reopen), anything but CLOSED -> CLOSED (CloseTicket,
 * which also sends the survey). CLOSED is final.
 */
#include "server/domain/tickets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "helpwire/v1/outbox.pb-c.h"
#include "server/domain/attachments.h"
#include "server/domain/classify.h"
#include "server/domain/conversation.h"
#include "server/domain/notifier.h"
#include "server/domain/outbox.h"
#include "server/domain/queues.h"
#include "server/domain/rpc.h"
#include "server/domain/sla.h"
#include "server/domain/suggestions.h"
#include "server/store/records.h"
#include "server/domain/surveys.h"
#include "server/domain/watch.h"

#define MAX_TEXT 16384
#define MAX_SUBJECT_CHARS 100
#define MAX_REASON 1024
#define MAX_RESOLUTION 4096
#define MAX_TAGS 32
#define MAX_TAG 64
#define SCAN_LIMIT 1000

typedef Helpwire__V1__Ticket Ticket;
#define ST(x) HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_##x
#define EV(x) HELPWIRE__V1__TICKET_EVENT_KIND__TICKET_EVENT_KIND_##x

static bool is_load(Helpwire__V1__TicketStatus s)
{
    return s == ST(OPEN) || s == ST(PENDING) || s == ST(ESCALATED);
}

/* Allowed UpdateTicket status moves: from -> to. */
static const struct {
    Helpwire__V1__TicketStatus from, to;
} moves[] = {
    {ST(OPEN), ST(PENDING)},     {ST(PENDING), ST(OPEN)},       {ST(OPEN), ST(RESOLVED)},
    {ST(PENDING), ST(RESOLVED)}, {ST(ESCALATED), ST(RESOLVED)}, {ST(RESOLVED), ST(OPEN)},
};

bool hw_tickets_status_move_allowed(Helpwire__V1__TicketStatus from, Helpwire__V1__TicketStatus to)
{
    for (size_t i = 0; i < sizeof moves / sizeof moves[0]; i++)
        if (moves[i].from == from && moves[i].to == to)
            return true;
    return false;
}

static const char *status_name(Helpwire__V1__TicketStatus s)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&helpwire__v1__ticket_status__descriptor, s);
    return v ? v->name + strlen("TICKET_STATUS_") : "?";
}

static const char *priority_name(Helpwire__V1__Priority p)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&helpwire__v1__priority__descriptor, p);
    return v ? v->name + strlen("PRIORITY_") : "?";
}

/* ------------------------------------------------------------ events */

/* Ticket numbers (and ids, "t-<number>") come from this sequence. */
#define TICKET_SEQ "ticket"
#define TICKET_FIRST 1000

typedef struct {
    uint64_t from, next;
} floor_ctx;

static int number_floor_fn(hw_store_txn *w, void *arg)
{
    floor_ctx *c = arg;
    uint64_t last;
    int rc = hw_store_peek_seq(w, TICKET_SEQ, &last);
    if (rc == HW_ENOTFOUND)
        last = TICKET_FIRST - 1;
    else if (rc != HW_OK)
        return rc;
    c->next = last + 1;
    if (c->from <= c->next)
        return HW_OK; /* never backwards */
    uint64_t at;
    rc = hw_store_next_seq(w, TICKET_SEQ, c->from - 1, &at); /* the counter holds the last number given */
    c->next = at + 1;
    return rc;
}

int hw_tickets_number_floor(hw_store *s, uint64_t from, uint64_t *next)
{
    floor_ctx c = {.from = from};
    int rc = hw_store_write(s, number_floor_fn, &c);
    if (rc == HW_OK)
        *next = c.next;
    return rc;
}

/* ------------------------------------------------------- agent load */

static int adjust_load(hw_store_txn *w, const char *agent_id, Helpwire__V1__Channel channel, int delta,
                       int64_t now_ms)
{
    if (!agent_id || !*agent_id || delta == 0)
        return HW_OK;
    Helpwire__V1__Agent *ag;
    int rc = hw_store_agent_get(w, agent_id, hw_store_txn_arena(w), &ag);
    if (rc == HW_ENOTFOUND)
        return HW_OK; /* the agent was deleted; nothing to account */
    if (rc != HW_OK)
        return rc;
    int64_t n = (int64_t)ag->open_tickets + delta;
    ag->open_tickets = n < 0 ? 0 : (uint32_t)n;
    rc = hw_queues_channel_load_add(ag, channel, delta, hw_store_txn_arena(w));
    if (rc != HW_OK)
        return rc;
    ag->version++;
    ag->updated_unix_ms = now_ms;
    return hw_store_agent_put(w, ag, HW_PUT_REPLACE, 0);
}

/* Stores t (whose previous status and assignee are given; prev_status 0 for
 * a new ticket) and moves agent load accordingly. */
static int store_ticket(hw_store_txn *w, Ticket *t, Helpwire__V1__TicketStatus prev_status,
                        const char *prev_assignee, int mode, int64_t now_ms)
{
    bool was = prev_status && is_load(prev_status) && prev_assignee && *prev_assignee;
    bool now = is_load(t->status) && t->assignee_agent_id && *t->assignee_agent_id;
    int rc = HW_OK;
    if (was && (!now || strcmp(prev_assignee, t->assignee_agent_id) != 0))
        rc = adjust_load(w, prev_assignee, t->channel, -1, now_ms);
    if (rc == HW_OK && now && (!was || strcmp(prev_assignee, t->assignee_agent_id) != 0))
        rc = adjust_load(w, t->assignee_agent_id, t->channel, +1, now_ms);
    if (rc == HW_OK)
        rc = hw_store_ticket_put(w, t, mode, 0);
    return rc;
}

/* Whether t waits for an agent: open and unassigned. */
static bool is_waiting(const Ticket *t)
{
    return is_load(t->status) && (!t->assignee_agent_id || !*t->assignee_agent_id);
}

/* After t was stored: starts or ends its wait (the UNASSIGNABLE timer or
 * alert, queues.h) when that changed. */
static int track_wait(hw_store_txn *w, hw_effects *fx, const Ticket *t, bool was_waiting, hw_arena *a)
{
    bool now = is_waiting(t);
    if (now && !was_waiting)
        return hw_queues_waiting_in(w, fx, t, a);
    if (!now && was_waiting)
        return hw_queues_wait_over_in(w, t);
    return HW_OK;
}

/* ------------------------------------------------------ ticket rules */

/* The first n characters (code points) of s, in a. */
static char *first_chars(hw_arena *a, const char *s, size_t n)
{
    size_t i = 0, chars = 0;
    while (s[i] && chars < n) {
        i++;
        while (((unsigned char)s[i] & 0xC0) == 0x80)
            i++;
        chars++;
    }
    return hw_arena_strndup(a, s, i);
}

static int open_ticket(hw_store_txn *w, const hw_ticket_open *o, hw_arena *a, hw_effects *fx, Ticket **out,
                       const char **reason)
{
    Helpwire__V1__Skill *skill = NULL;
    /* "" only when no skill exists at all (classify.h): no queue, and
     * UNASSIGNABLE at once. */
    int rc = *o->queue ? hw_store_skill_get(w, o->queue, a, &skill) : HW_OK;
    if (rc != HW_OK)
        return rc;
    uint64_t number;
    rc = hw_store_next_seq(w, TICKET_SEQ, TICKET_FIRST, &number);
    if (rc != HW_OK)
        return rc;
    Ticket *t = hw_arena_alloc(a, sizeof *t);
    if (!t)
        return HW_ENOMEM;
    helpwire__v1__ticket__init(t);
    t->id = hw_arena_printf(a, "t-%llu", (unsigned long long)number);
    t->number = number;
    t->customer_id = o->customer->id;
    t->channel = o->channel;
    if (!t->channel && o->customer->n_identities)
        t->channel = o->customer->identities[0]->channel;
    t->subject = o->subject && *o->subject ? (char *)o->subject : first_chars(a, o->text, MAX_SUBJECT_CHARS);
    t->status = ST(OPEN);
    t->queue = (char *)o->queue;
    if (o->priority) {
        t->priority = o->priority;
        *reason = "given";
    } else {
        t->priority = hw_priority_derive(o->text, o->customer->tier, skill, a, reason);
    }
    t->tags = o->tags;
    t->n_tags = o->n_tags;
    t->created_unix_ms = t->updated_unix_ms = hw_effects_now_ms(fx);
    t->version = 1;
    t->message_count = 1;
    Helpwire__V1__Agent *agent = NULL;
    rc = hw_queues_pick_in(w, o->queue, t->channel, NULL, a, &agent);
    if (rc != HW_OK)
        return rc;
    t->assignee_agent_id = agent ? agent->id : "";
    rc = hw_sla_ticket_opened_in(w, fx, t, a);
    if (rc != HW_OK)
        return rc;
    rc = store_ticket(w, t, 0, NULL, HW_PUT_CREATE, hw_effects_now_ms(fx));
    if (rc != HW_OK)
        return rc;
    Helpwire__V1__TicketMessage m = HELPWIRE__V1__TICKET_MESSAGE__INIT;
    m.id = hw_arena_printf(a, "%s-m1", t->id);
    m.ticket_id = t->id;
    m.kind = HELPWIRE__V1__MESSAGE_KIND__MESSAGE_KIND_CUSTOMER;
    m.author = hw_arena_printf(a, "customer:%s", o->customer->id);
    m.text = (char *)o->text;
    m.created_unix_ms = t->created_unix_ms;
    m.attachments = o->attachments;
    m.n_attachments = o->n_attachments;
    m.channel_message_id = (char *)(o->channel_message_id ? o->channel_message_id : "");
    rc = hw_store_ticket_message_append(w, &m, NULL);
    if (rc == HW_OK)
        rc = hw_watch_record(
            w, fx, t, EV(CREATED), o->actor,
            hw_arena_printf(a, "queue=%s priority=%s (%s)", t->queue, priority_name(t->priority), *reason));
    if (rc == HW_OK && agent)
        rc = hw_watch_record(w, fx, t, EV(ASSIGNED), "system",
                             hw_arena_printf(a, "assigned to %s", agent->id));
    if (rc == HW_OK)
        rc = track_wait(w, fx, t, false, a);
    *out = t;
    return rc;
}

int hw_tickets_open_in(hw_store_txn *w, const hw_ticket_open *o, hw_arena *a, hw_effects *fx, Ticket **out,
                       const char **reason)
{
    return open_ticket(w, o, a, fx, out, reason);
}

int hw_tickets_add_message_in(hw_store_txn *w, Ticket *t, Helpwire__V1__MessageKind kind, const char *author,
                              const char *text, hw_arena *a, hw_effects *fx,
                              Helpwire__V1__TicketMessage **msg_out, hw_outbox_parts *sent)
{
    return hw_tickets_add_message_ex_in(w, t, kind, author, text, NULL, a, fx, msg_out, sent);
}

int hw_tickets_add_message_ex_in(hw_store_txn *w, Ticket *t, Helpwire__V1__MessageKind kind, const char *author,
                                 const char *text, const hw_message_extra *x, hw_arena *a, hw_effects *fx,
                                 Helpwire__V1__TicketMessage **msg_out, hw_outbox_parts *sent)
{
    static const hw_message_extra none = {0};
    if (!x)
        x = &none;
    if (sent)
        *sent = (hw_outbox_parts){0};
    if (t->status == ST(CLOSED))
        return HW_EPRECONDITION;
    Helpwire__V1__TicketStatus prev = t->status;
    Helpwire__V1__TicketMessage *m = hw_arena_alloc(a, sizeof *m);
    if (!m)
        return HW_ENOMEM;
    helpwire__v1__ticket_message__init(m);
    m->id = hw_arena_printf(a, "%s-m%u", t->id, t->message_count + 1);
    m->ticket_id = t->id;
    m->kind = kind;
    m->author = (char *)author;
    m->text = (char *)text;
    m->created_unix_ms = hw_effects_now_ms(fx);
    m->attachments = x->attachments;
    m->n_attachments = x->n_attachments;
    m->channel_message_id = (char *)(x->channel_message_id ? x->channel_message_id : "");
    m->author_name = (char *)(x->author_name ? x->author_name : "");
    /* An agent reply is queued first, so that the message is stored once
     * with the number of parts it was sent as. */
    int rc = HW_OK;
    hw_outbox_parts parts = {0};
    if (kind == HELPWIRE__V1__MESSAGE_KIND__MESSAGE_KIND_AGENT_REPLY) {
        /* The caller's copy when it read the customer in this write. */
        const Helpwire__V1__Customer *c = x->customer;
        if (!c) {
            Helpwire__V1__Customer *got = NULL;
            rc = hw_store_customer_get(w, t->customer_id, a, &got);
            c = got;
        }
        if (rc == HW_OK) {
            Helpwire__V1__OutboundMessage om = HELPWIRE__V1__OUTBOUND_MESSAGE__INIT;
            om.ticket_id = t->id;
            om.kind = HELPWIRE__V1__OUTBOUND_KIND__OUTBOUND_KIND_AGENT_REPLY;
            om.text = (char *)text;
            om.attachments = x->attachments; /* on the last part */
            om.n_attachments = x->n_attachments;
            hw_outbox_extra_apply(&om, x->outbound);
            rc = hw_outbox_send_message_to_customer_in(w, fx, c, t->channel, &om, a, &parts);
        }
        else if (rc == HW_ENOTFOUND)
            rc = HW_OK;
        if (rc != HW_OK)
            return rc;
        m->delivery_parts = (uint32_t)parts.n;
    }
    rc = hw_store_ticket_message_append(w, m, NULL);
    if (rc != HW_OK)
        return rc;
    t->message_count++;
    t->updated_unix_ms = m->created_unix_ms;
    t->version++;
    if (kind == HELPWIRE__V1__MESSAGE_KIND__MESSAGE_KIND_CUSTOMER && t->status == ST(PENDING))
        t->status = ST(OPEN);
    rc = hw_sla_message_in(w, fx, t, kind, &(hw_sla_before){prev, t->priority, t->queue}, a);
    if (rc == HW_OK)
        rc = store_ticket(w, t, prev, t->assignee_agent_id, HW_PUT_REPLACE, hw_effects_now_ms(fx));
    static const char *const kinds[] = {"message", "customer message", "agent reply", "internal note",
                                        "system message"};
    const char *detail = kinds[(unsigned)kind < 5 ? kind : 0];
    if (parts.n > 1)
        detail = hw_arena_printf(a, "%s, sent in %zu parts", detail, parts.n);
    if (detail && x && x->event_note && x->event_note[0])
        detail = hw_arena_printf(a, "%s; %s", detail, x->event_note);
    if (rc == HW_OK && !detail)
        rc = HW_ENOMEM;
    if (rc == HW_OK)
        rc = hw_watch_record(w, fx, t, EV(MESSAGE), author, detail);
    if (rc == HW_OK && prev != t->status)
        rc = hw_watch_record(w, fx, t, EV(STATUS_CHANGED), author,
                             hw_arena_printf(a, "%s -> %s", status_name(prev), status_name(t->status)));
    if (rc == HW_OK && sent)
        *sent = parts;
    if (msg_out)
        *msg_out = m;
    return rc;
}

int hw_tickets_find_open_in(hw_store_txn *txn, const char *customer_id, hw_arena *a, Ticket **out)
{
    hw_ticket_filter f = {.customer_id = customer_id};
    hw_store_cursor cur = {0};
    Ticket **ts;
    size_t n;
    int rc = hw_store_ticket_list(txn, &f, &cur, 50, a, &ts, &n);
    if (rc != HW_OK)
        return rc;
    for (size_t i = 0; i < n; i++)
        if (is_load(ts[i]->status)) {
            *out = ts[i];
            return HW_OK;
        }
    return HW_ENOTFOUND;
}

/* Appends to *arr (capacity *cap, grown on a, doubling, 32 at first) every
 * ticket matching f that counts toward an agent's load, over all pages. */
static int collect_load(hw_store_txn *w, const hw_ticket_filter *f, hw_arena *a, Ticket ***arr, size_t *n_arr,
                        size_t *cap)
{
    hw_store_cursor cur = {0};
    do {
        Ticket **ts;
        size_t n;
        int rc = hw_store_ticket_list(w, f, &cur, SCAN_LIMIT, a, &ts, &n);
        if (rc != HW_OK)
            return rc;
        for (size_t i = 0; i < n; i++) {
            if (!is_load(ts[i]->status))
                continue;
            if (*n_arr == *cap) {
                size_t nc = *cap ? *cap * 2 : 32;
                Ticket **g = hw_arena_alloc(a, nc * sizeof *g);
                if (!g)
                    return HW_ENOMEM;
                if (*n_arr)
                    memcpy(g, *arr, *n_arr * sizeof *g);
                *arr = g;
                *cap = nc;
            }
            (*arr)[(*n_arr)++] = ts[i];
        }
    } while (cur.len);
    return HW_OK;
}

int hw_tickets_assign_waiting_in(hw_store_txn *w, const char *agent_id, hw_arena *a, hw_effects *fx,
                                 char ***ids, size_t *n_ids)
{
    if (ids) {
        *ids = NULL;
        *n_ids = 0;
    }
    Helpwire__V1__Agent *ag;
    int rc = hw_store_agent_get(w, agent_id, a, &ag);
    if (rc != HW_OK)
        return rc == HW_ENOTFOUND ? HW_OK : rc;
    if (ag->presence != HELPWIRE__V1__PRESENCE__PRESENCE_ONLINE || ag->open_tickets >= ag->capacity)
        return HW_OK;
    size_t n_cand = 0, cap = 64;
    Ticket **cand = hw_arena_alloc(a, cap * sizeof *cand);
    if (!cand)
        return HW_ENOMEM;
    for (size_t s = 0; s < ag->n_skills; s++) {
        hw_ticket_filter f = {.queue = ag->skills[s], .unassigned_only = 1};
        if ((rc = collect_load(w, &f, a, &cand, &n_cand, &cap)) != HW_OK)
            return rc;
    }
    qsort(cand, n_cand, sizeof *cand, hw_queues_waiting_cmp);
    if (ids) {
        *ids = hw_arena_alloc(a, (n_cand ? n_cand : 1) * sizeof **ids);
        *n_ids = 0;
    }
    /* In waiting order, each ticket the agent has room for (its channel's
     * capacity may be full while another channel's is not). */
    for (size_t i = 0; i < n_cand && ag->open_tickets < ag->capacity; i++) {
        Ticket *t = cand[i];
        if (!hw_queues_can_take(ag, t->channel))
            continue;
        ag->open_tickets++;
        if ((rc = hw_queues_channel_load_add(ag, t->channel, +1, a)) != HW_OK)
            return rc;
        t->assignee_agent_id = ag->id;
        t->version++;
        t->updated_unix_ms = hw_effects_now_ms(fx);
        rc = store_ticket(w, t, t->status, "", HW_PUT_REPLACE, hw_effects_now_ms(fx));
        if (rc == HW_OK)
            rc = hw_watch_record(w, fx, t, EV(ASSIGNED), "system",
                                 hw_arena_printf(a, "assigned to %s", ag->id));
        if (rc == HW_OK)
            rc = hw_queues_wait_over_in(w, t);
        if (rc != HW_OK)
            return rc;
        if (ids && *ids)
            (*ids)[(*n_ids)++] = t->id;
    }
    return HW_OK;
}

int hw_tickets_reassign_in(hw_store_txn *w, const char *agent_id, const char *why, hw_arena *a,
                           hw_effects *fx, size_t *moved)
{
    *moved = 0;
    hw_ticket_filter f = {.assignee_agent_id = agent_id};
    Ticket **all = NULL;
    size_t n_all = 0, cap = 0;
    int rc = collect_load(w, &f, a, &all, &n_all, &cap);
    if (rc != HW_OK)
        return rc;
    /* The most urgent first, as waiting tickets are taken. */
    qsort(all, n_all, sizeof *all, hw_queues_waiting_cmp);
    for (size_t i = 0; i < n_all; i++) {
        Ticket *t = all[i];
        Helpwire__V1__Agent *to = NULL;
        rc = hw_queues_pick_in(w, t->queue, t->channel, agent_id, a, &to);
        if (rc != HW_OK)
            return rc;
        const char *prev = t->assignee_agent_id;
        t->assignee_agent_id = to ? to->id : "";
        t->version++;
        t->updated_unix_ms = hw_effects_now_ms(fx);
        rc = store_ticket(w, t, t->status, prev, HW_PUT_REPLACE, hw_effects_now_ms(fx));
        const char *detail = to ? hw_arena_printf(a, "%s; assigned to %s", why, to->id)
                                : hw_arena_printf(a, "%s; unassigned, waiting", why);
        if (rc == HW_OK && !detail)
            rc = HW_ENOMEM;
        if (rc == HW_OK)
            rc = hw_watch_record(w, fx, t, EV(ASSIGNED), "system", detail);
        if (rc == HW_OK)
            rc = track_wait(w, fx, t, false, a);
        if (rc != HW_OK)
            return rc;
        (*moved)++;
    }
    return HW_OK;
}

/* Refuses a change: *why gets the message (in a; NULL when a is out of
 * memory, and the caller then says hw_strerror(code)). */
#define REFUSE(code, ...) (*why = hw_arena_printf(a, __VA_ARGS__), (code))

int hw_tickets_update_in(hw_store_txn *w, Ticket *t, const hw_ticket_change *ch, const char *actor,
                         hw_arena *a, hw_effects *fx, const char **why)
{
    *why = NULL;
    Helpwire__V1__TicketStatus prev_status = t->status;
    const char *prev_assignee = t->assignee_agent_id;
    hw_sla_before sla_before = {t->status, t->priority, t->queue};
    int rc = HW_OK;
    if (t->status == ST(CLOSED))
        return REFUSE(HW_EPRECONDITION, "ticket %s is closed; a closed ticket cannot change", t->id);
    if (ch->set_status && ch->status != t->status) {
        if (ch->status == ST(CLOSED))
            return REFUSE(HW_EPRECONDITION, "status: use CloseTicket to close a ticket");
        if (ch->status == ST(ESCALATED))
            return REFUSE(HW_EPRECONDITION, "status: use EscalateTicket to escalate a ticket");
        if (!hw_tickets_status_move_allowed(t->status, ch->status))
            return REFUSE(HW_EPRECONDITION, "status: %s -> %s is not allowed", status_name(t->status),
                          status_name(ch->status));
        t->status = ch->status;
        if (prev_status == ST(RESOLVED) && ch->status == ST(OPEN))
            rc = hw_watch_record(w, fx, t, EV(REOPENED), actor, "RESOLVED -> OPEN");
        else
            rc = hw_watch_record(
                w, fx, t, EV(STATUS_CHANGED), actor,
                hw_arena_printf(a, "%s -> %s", status_name(prev_status), status_name(t->status)));
    }
    if (rc == HW_OK && ch->set_assignee && strcmp(ch->assignee_agent_id, t->assignee_agent_id) != 0) {
        if (*ch->assignee_agent_id) {
            Helpwire__V1__Agent *ag;
            rc = hw_store_agent_get(w, ch->assignee_agent_id, a, &ag);
            if (rc == HW_ENOTFOUND)
                return REFUSE(rc, "assignee_agent_id: no agent with id %s", ch->assignee_agent_id);
        }
        t->assignee_agent_id = (char *)ch->assignee_agent_id;
        if (rc == HW_OK)
            rc = hw_watch_record(w, fx, t, EV(ASSIGNED), actor,
                                 *t->assignee_agent_id
                                     ? hw_arena_printf(a, "assigned to %s", t->assignee_agent_id)
                                     : "unassigned");
    }
    if (rc == HW_OK && ch->set_priority && ch->priority != t->priority) {
        Helpwire__V1__Priority old = t->priority;
        t->priority = ch->priority;
        rc = hw_watch_record(w, fx, t, EV(PRIORITY_CHANGED), actor,
                             hw_arena_printf(a, "%s -> %s", priority_name(old), priority_name(t->priority)));
    }
    if (rc == HW_OK && ch->set_tags) {
        t->tags = ch->tags;
        t->n_tags = ch->n_tags;
        rc = hw_watch_record(w, fx, t, EV(TAGS_CHANGED), actor, hw_arena_printf(a, "%zu tags", ch->n_tags));
    }
    if (rc != HW_OK)
        return rc;
    t->version++;
    t->updated_unix_ms = hw_effects_now_ms(fx);
    bool was_waiting = is_load(prev_status) && (!prev_assignee || !*prev_assignee);
    rc = hw_sla_ticket_changed_in(w, fx, t, &sla_before, a);
    if (rc == HW_OK)
        rc = store_ticket(w, t, prev_status, prev_assignee, HW_PUT_REPLACE, hw_effects_now_ms(fx));
    if (rc == HW_OK)
        rc = track_wait(w, fx, t, was_waiting, a);
    /* Answered with a document: the customer's question may be learnt. */
    if (rc == HW_OK && t->status == ST(RESOLVED) && prev_status != ST(RESOLVED))
        rc = hw_suggestions_ticket_done_in(w, t, false, fx, a);
    /* The snapshots recorded above carry the old version: refresh them. */
    hw_effects_refresh_ticket(fx, t);
    /* Whoever lost load may take a waiting ticket now. */
    if (rc == HW_OK && prev_assignee && *prev_assignee)
        rc = hw_tickets_assign_waiting_in(w, prev_assignee, a, fx, NULL, NULL);
    return rc;
}

int hw_tickets_escalate_in(hw_store_txn *w, Ticket *t, const char *reason, const char *actor, hw_arena *a,
                           hw_effects *fx, const char **why)
{
    *why = NULL;
    if (t->status != ST(OPEN) && t->status != ST(PENDING))
        return REFUSE(HW_EPRECONDITION, "ticket %s is %s; only OPEN or PENDING tickets escalate", t->id,
                      status_name(t->status));
    Helpwire__V1__TicketStatus prev = t->status;
    t->status = ST(ESCALATED);
    t->escalation_reason = (char *)reason;
    t->escalated_unix_ms = t->updated_unix_ms = hw_effects_now_ms(fx);
    t->version++;
    int rc = hw_sla_ticket_changed_in(w, fx, t, &(hw_sla_before){prev, t->priority, t->queue}, a);
    if (rc == HW_OK)
        rc = store_ticket(w, t, prev, t->assignee_agent_id, HW_PUT_REPLACE, hw_effects_now_ms(fx));
    if (rc == HW_OK)
        rc = hw_watch_record(w, fx, t, EV(ESCALATED), actor, reason);
    if (rc == HW_OK)
        rc = hw_notifier_queue_in(w, fx, t, reason, actor);
    return rc;
}

int hw_tickets_close_in(hw_store_txn *w, hw_app *app, Ticket *t, const char *resolution, bool skip_survey,
                        const char *actor, hw_arena *a, hw_effects *fx, char **survey_id, char **survey_url,
                        const char **why)
{
    *why = NULL;
    *survey_id = *survey_url = "";
    if (t->status == ST(CLOSED))
        return REFUSE(HW_EPRECONDITION, "ticket %s is already closed", t->id);
    Helpwire__V1__TicketStatus prev = t->status;
    t->status = ST(CLOSED);
    t->resolution = (char *)resolution;
    t->closed_unix_ms = t->updated_unix_ms = hw_effects_now_ms(fx);
    t->version++;
    int rc = hw_sla_ticket_changed_in(w, fx, t, &(hw_sla_before){prev, t->priority, t->queue}, a);
    if (rc == HW_OK)
        rc = store_ticket(w, t, prev, t->assignee_agent_id, HW_PUT_REPLACE, hw_effects_now_ms(fx));
    if (rc == HW_OK)
        rc = track_wait(w, fx, t, is_load(prev) && !*t->assignee_agent_id, a);
    if (rc == HW_OK)
        rc = hw_watch_record(w, fx, t, EV(CLOSED), actor, resolution);
    if (rc == HW_OK)
        rc = hw_suggestions_ticket_done_in(w, t, true, fx, a);
    if (rc == HW_OK && !skip_survey) {
        Helpwire__V1__Customer *cust;
        rc = hw_store_customer_get(w, t->customer_id, a, &cust);
        const char *to = NULL;
        for (size_t i = 0; rc == HW_OK && i < cust->n_identities && !to; i++)
            if (cust->identities[i]->channel == t->channel)
                to = cust->identities[i]->channel_user_id;
        if (rc == HW_OK && to) {
            uint64_t seq;
            rc = hw_surveys_create_in(w, app, t, to, a, fx, survey_id, survey_url, &seq);
        } else if (rc == HW_ENOTFOUND) {
            rc = HW_OK; /* no customer to ask */
        }
    }
    if (rc == HW_OK && *t->assignee_agent_id)
        rc = hw_tickets_assign_waiting_in(w, t->assignee_agent_id, a, fx, NULL, NULL);
    return rc;
}

#undef REFUSE

/* ------------------------------------------------------------ watch hub */

void hw_tickets_watch(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    hw_app *app = appv;
    const Helpwire__V1__WatchTicketsRequest *req = (const void *)request;
    if (!hw_rpc_check_id(call, "queue", req->queue, 64, true) ||
        !hw_rpc_check_id(call, "assignee_agent_id", req->assignee_agent_id, 64, true))
        return;
    if (*req->after) {
        hw_watch_resume(app, call, req->queue, req->assignee_agent_id, req->after);
        return;
    }
    if (hw_watch_add(app->watch, call, req->queue, req->assignee_agent_id) != HW_OK)
        hw_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of memory");
}

/* ---------------------------------------------------------- the service */

/* Reads the ticket for a change and checks expected_version. */
static int load_for_change(hw_store_txn *w, hw_wctx *h, const char *id, uint64_t expected_version, Ticket **t)
{
    int rc = hw_store_ticket_get(w, id, hw_call_arena(h->call), t);
    if (rc == HW_ENOTFOUND)
        return hw_rpc_wfail(h, rc, "no ticket with id %s", id);
    if (rc != HW_OK)
        return rc;
    if (expected_version && (*t)->version != expected_version)
        return hw_rpc_wfail_on(h, HW_ECONFLICT, "tickets", id, "ticket %s is at version %llu, not %llu", id,
                               (unsigned long long)(*t)->version, (unsigned long long)expected_version);
    return HW_OK;
}

/* --- CreateTicket */

typedef struct {
    hw_wctx h;
    const Helpwire__V1__CreateTicketRequest *req;
    const char *queue;
    Ticket *ticket;
    const char *reason;
    bool replayed;
} create_ctx;

static int create_fn(hw_store_txn *w, void *arg)
{
    create_ctx *c = arg;
    hw_arena *a = hw_call_arena(c->h.call);
    c->replayed = false;
    if (*c->req->idempotency_key) {
        char *tid;
        int rc = hw_store_idempotency_get(w, c->req->idempotency_key, a, &tid);
        if (rc == HW_OK) {
            c->replayed = true;
            c->reason = "replayed";
            return hw_store_ticket_get(w, tid, a, &c->ticket);
        }
        if (rc != HW_ENOTFOUND)
            return rc;
    }
    Helpwire__V1__Customer *cust;
    int rc = hw_store_customer_get(w, c->req->customer_id, a, &cust);
    if (rc == HW_ENOTFOUND)
        return hw_rpc_wfail(&c->h, rc, "customer_id: no customer with id %s", c->req->customer_id);
    if (rc != HW_OK)
        return rc;
    hw_ticket_open o = {.customer = cust,
                        .channel = c->req->channel,
                        .text = c->req->text,
                        .subject = c->req->subject,
                        .queue = c->queue,
                        .priority = c->req->priority,
                        .tags = c->req->tags,
                        .n_tags = c->req->n_tags,
                        .actor = hw_rpc_actor(c->h.call)};
    rc = hw_tickets_open_in(w, &o, a, &c->h.fx, &c->ticket, &c->reason);
    if (rc == HW_ENOTFOUND)
        return hw_rpc_wfail(&c->h, rc, "queue: no skill named %s", c->queue);
    if (rc == HW_OK && *c->req->idempotency_key)
        rc = hw_store_idempotency_put(w, c->req->idempotency_key, c->ticket->id);
    return rc;
}

static void create_done(void *arg, int status)
{
    create_ctx *c = arg;
    if (hw_rpc_write_failed(&c->h, status))
        return;
    /* In the call's arena: packed and sent by the call's worker, not here
     * on the writer (hw_call_reply_kept). */
    Helpwire__V1__CreateTicketReply *r = hw_arena_alloc(hw_call_arena(c->h.call), sizeof *r);
    if (!r) {
        hw_rpc_fail(c->h.call, HW_ENOMEM, "server out of memory");
        return;
    }
    helpwire__v1__create_ticket_reply__init(r);
    r->ticket = c->ticket;
    r->replayed = c->replayed;
    r->priority_reason = (char *)c->reason;
    hw_call_reply_kept(c->h.call, &r->base);
}

static bool check_tags(hw_call *call, char **tags, size_t n)
{
    if (!hw_rpc_check_list(call, "tags", tags, n, MAX_TAGS, MAX_TAG))
        return false;
    return true;
}

void hw_tickets_create(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    hw_app *app = appv;
    const Helpwire__V1__CreateTicketRequest *req = (const void *)request;
    if (!hw_rpc_check_id(call, "customer_id", req->customer_id, 64, false) ||
        !hw_rpc_check_text(call, "text", req->text, 1, MAX_TEXT) ||
        !hw_rpc_check_text(call, "subject", req->subject, 0, 4 * MAX_SUBJECT_CHARS) ||
        !hw_rpc_check_id(call, "queue", req->queue, 64, true) ||
        !hw_rpc_check_enum(call, "priority", &helpwire__v1__priority__descriptor, req->priority, true) ||
        !hw_rpc_check_text(call, "idempotency_key", req->idempotency_key, 0, 128) ||
        !check_tags(call, req->tags, req->n_tags) ||
        !hw_rpc_check_enum(call, "channel", &helpwire__v1__channel__descriptor, req->channel, true))
        return;
    const char *queue = *req->queue ? req->queue : hw_classify_queue(call, app, req->text);
    if (!queue)
        return;
    create_ctx *c = hw_rpc_ctx_new(call, app, sizeof *c);
    if (!c)
        return;
    c->req = req;
    c->queue = queue;
    hw_rpc_write(&c->h, create_fn, create_done);
}

/* --- GetTicket, ListTickets, GetTicketHistory */

void hw_tickets_get(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    hw_app *app = appv;
    const Helpwire__V1__GetTicketRequest *req = (const void *)request;
    hw_store_cursor cur;
    if (!hw_rpc_check_id(call, "ticket_id", req->ticket_id, 64, false))
        return;
    if (*req->messages_page_token && !req->include_messages) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "messages_page_token: only with include_messages");
        return;
    }
    if (!hw_rpc_page_token(call, "messages_page_token", req->messages_page_token, &cur))
        return;
    hw_store_txn *t = hw_rpc_read(call, app);
    if (!t)
        return;
    hw_arena *a = hw_call_arena(call);
    Helpwire__V1__GetTicketReply r = HELPWIRE__V1__GET_TICKET_REPLY__INIT;
    int rc = hw_store_ticket_get(t, req->ticket_id, a, &r.ticket);
    if (rc == HW_OK && req->include_messages)
        rc = hw_store_ticket_message_list(
            t, req->ticket_id, &cur,
            hw_rpc_page_size(req->messages_page_size, HW_STORE_LIST_MAX, HW_STORE_LIST_MAX), a, &r.messages,
            &r.n_messages);
    hw_rpc_read_end(call, app);
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc,
                    rc == HW_ENOTFOUND  ? "no ticket with id %s"
                    : rc == HW_EINVALID ? "messages_page_token: not a token for ticket %s"
                                        : "reading ticket %s failed",
                    req->ticket_id);
        return;
    }
    r.next_messages_page_token = req->include_messages ? hw_rpc_next_token(call, &cur) : "";
    hw_call_reply(call, &r.base);
}

void hw_tickets_list(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    hw_app *app = appv;
    const Helpwire__V1__ListTicketsRequest *req = (const void *)request;
    hw_store_cursor cur;
    if (!hw_rpc_check_enum(call, "status", &helpwire__v1__ticket_status__descriptor, req->status, true) ||
        !hw_rpc_check_id(call, "queue", req->queue, 64, true) ||
        !hw_rpc_check_id(call, "assignee_agent_id", req->assignee_agent_id, 64, true) ||
        !hw_rpc_check_id(call, "customer_id", req->customer_id, 64, true) ||
        !hw_rpc_check_enum(call, "priority", &helpwire__v1__priority__descriptor, req->priority, true) ||
        !hw_rpc_page_token(call, "page_token", req->page_token, &cur))
        return;
    hw_ticket_filter f = {.status = req->status,
                          .queue = req->queue,
                          .assignee_agent_id = req->assignee_agent_id,
                          .customer_id = req->customer_id,
                          .priority = req->priority};
    size_t want = hw_rpc_page_size(req->page_size, 50, 500);
    hw_store_txn *t = hw_rpc_read(call, app);
    if (!t)
        return;
    hw_arena *a = hw_call_arena(call);
    Helpwire__V1__ListTicketsReply r = HELPWIRE__V1__LIST_TICKETS_REPLY__INIT;
    Ticket **all = hw_arena_alloc(a, want * sizeof *all);
    int rc = all ? HW_OK : HW_ENOMEM;
    /* Filtered scans may return short pages: keep reading until the page
     * is full or the index ends. */
    while (rc == HW_OK && r.n_tickets < want) {
        Ticket **got;
        size_t n;
        rc = hw_store_ticket_list(t, &f, &cur, want - r.n_tickets, a, &got, &n);
        if (rc != HW_OK)
            break;
        memcpy(all + r.n_tickets, got, n * sizeof *got);
        r.n_tickets += n;
        if (!cur.len)
            break;
    }
    hw_rpc_read_end(call, app);
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, rc == HW_EINVALID ? "page_token: not a token from this listing" : NULL);
        return;
    }
    r.tickets = all;
    r.next_page_token = hw_rpc_next_token(call, &cur);
    hw_call_reply(call, &r.base);
}

void hw_tickets_history(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    hw_app *app = appv;
    const Helpwire__V1__GetTicketHistoryRequest *req = (const void *)request;
    hw_store_cursor cur;
    if (!hw_rpc_check_id(call, "ticket_id", req->ticket_id, 64, false) ||
        !hw_rpc_page_token(call, "page_token", req->page_token, &cur))
        return;
    hw_store_txn *t = hw_rpc_read(call, app);
    if (!t)
        return;
    hw_arena *a = hw_call_arena(call);
    Ticket *tk;
    Helpwire__V1__GetTicketHistoryReply r = HELPWIRE__V1__GET_TICKET_HISTORY_REPLY__INIT;
    int rc = hw_store_ticket_get(t, req->ticket_id, a, &tk);
    if (rc == HW_OK)
        rc = hw_store_ticket_event_list(t, req->ticket_id, &cur, hw_rpc_page_size(req->page_size, 100, 1000),
                                        a, &r.events, &r.n_events);
    hw_rpc_read_end(call, app);
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, rc == HW_ENOTFOUND ? "no ticket with id %s" : NULL, req->ticket_id);
        return;
    }
    r.next_page_token = hw_rpc_next_token(call, &cur);
    hw_call_reply(call, &r.base);
}

/* --- UpdateTicket */

typedef struct {
    hw_wctx h;
    const Helpwire__V1__UpdateTicketRequest *req;
    hw_ticket_change change;
    Ticket *ticket;
} update_ctx;

static int update_fn(hw_store_txn *w, void *arg)
{
    update_ctx *c = arg;
    Ticket *t;
    int rc = load_for_change(w, &c->h, c->req->ticket_id, c->req->expected_version, &t);
    if (rc != HW_OK)
        return rc;
    const char *why;
    rc = hw_tickets_update_in(w, t, &c->change, hw_rpc_actor(c->h.call), hw_call_arena(c->h.call), &c->h.fx,
                              &why);
    c->ticket = t;
    return why ? hw_rpc_wfail_on(&c->h, rc, "tickets", t->id, "%s", why) : rc;
}

static void ticket_done(void *arg, int status)
{
    /* update, escalate: reply with the ticket */
    update_ctx *c = arg;
    if (hw_rpc_write_failed(&c->h, status))
        return;
    hw_call_reply(c->h.call, &c->ticket->base);
}

void hw_tickets_update(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    const Helpwire__V1__UpdateTicketRequest *req = (const void *)request;
    if (!hw_rpc_check_id(call, "ticket_id", req->ticket_id, 64, false))
        return;
    update_ctx *c = hw_rpc_ctx_new(call, appv, sizeof *c);
    if (!c)
        return;
    c->req = req;
    if (req->n_update_mask == 0) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
                     "update_mask: name the fields to set (status, assignee_agent_id, priority, tags)");
        return;
    }
    hw_ticket_change *ch = &c->change;
    for (size_t i = 0; i < req->n_update_mask; i++) {
        const char *f = req->update_mask[i];
        if (strcmp(f, "status") == 0)
            ch->set_status = true;
        else if (strcmp(f, "assignee_agent_id") == 0)
            ch->set_assignee = true;
        else if (strcmp(f, "priority") == 0)
            ch->set_priority = true;
        else if (strcmp(f, "tags") == 0)
            ch->set_tags = true;
        else {
            hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "update_mask: unknown field '%.64s'", f);
            return;
        }
    }
    if ((ch->set_status &&
         !hw_rpc_check_enum(call, "status", &helpwire__v1__ticket_status__descriptor, req->status, false)) ||
        (ch->set_assignee && !hw_rpc_check_id(call, "assignee_agent_id", req->assignee_agent_id, 64, true)) ||
        (ch->set_priority &&
         !hw_rpc_check_enum(call, "priority", &helpwire__v1__priority__descriptor, req->priority, false)) ||
        (ch->set_tags && !check_tags(call, req->tags, req->n_tags)))
        return;
    ch->status = req->status;
    ch->assignee_agent_id = req->assignee_agent_id;
    ch->priority = req->priority;
    ch->tags = req->tags;
    ch->n_tags = req->n_tags;
    hw_rpc_write(&c->h, update_fn, ticket_done);
}

/* --- AddMessage */

typedef struct {
    hw_wctx h;
    const Helpwire__V1__AddMessageRequest *req;
    Helpwire__V1__TicketMessage *msg;
    hw_outbox_parts sent;
    Helpwire__V1__ChannelWindow *window; /* AGENT_REPLY on WhatsApp; NULL otherwise */
} message_ctx;

/* The request's attachments, resolved from the store (NOT_FOUND naming
 * attachments[i].id). */
static int message_extra_in(hw_store_txn *w, message_ctx *c, hw_message_extra *x)
{
    hw_arena *a = hw_call_arena(c->h.call);
    *x = (hw_message_extra){.attachments = c->req->attachments, .n_attachments = c->req->n_attachments};
    return hw_attachments_resolve_in(w, &c->h, "attachments", c->req->attachments, c->req->n_attachments, a);
}

/* t as RFC 3339 in UTC ("2026-12-07T07:50:45Z"), in a. */
static const char *rfc3339(hw_arena *a, int64_t unix_ms)
{
    time_t secs = (time_t)(unix_ms / 1000);
    struct tm tm;
    char buf[32];
    if (!gmtime_r(&secs, &tm) || strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return "?";
    return hw_arena_strdup(a, buf);
}

/* What an agent's reply carries: the agent's name, the conversation's
 * language and, on WhatsApp, the 24-hour window (conversation.h): within
 * it the reply goes as it is; after it, as the configured template (the
 * MESSAGE event says so), or not at all (FAILED_PRECONDITION, nothing
 * stored) without one. */
static int reply_extra(hw_store_txn *w, message_ctx *c, const Ticket *t, hw_message_extra *x,
                       hw_outbox_extra *ox)
{
    hw_arena *a = hw_call_arena(c->h.call);
    const hw_settings *cfg = &c->h.app->settings;
    hw_conversation conv;
    int rc = hw_conversation_scan(w, t->id, a, &conv);
    if (rc != HW_OK)
        return rc;
    Helpwire__V1__Customer *cust = NULL;
    rc = hw_store_customer_get(w, t->customer_id, a, &cust);
    if (rc == HW_ENOTFOUND)
        cust = NULL;
    else if (rc != HW_OK)
        return rc;
    x->customer = cust;
    ox->locale = hw_conversation_locale(&conv, cust);
    const char *agent_id = hw_rpc_agent(c->h.call);
    Helpwire__V1__Agent *agent = NULL;
    if (agent_id && *agent_id) {
        rc = hw_store_agent_get(w, agent_id, a, &agent);
        if (rc != HW_OK && rc != HW_ENOTFOUND)
            return rc;
    }
    x->author_name = ox->author_name = agent && agent->name ? agent->name : "";
    x->outbound = ox;
    if (t->channel != HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP)
        return HW_OK;

    Helpwire__V1__ChannelWindow *win = hw_arena_alloc(a, sizeof *win);
    if (!win)
        return HW_ENOMEM;
    helpwire__v1__channel_window__init(win);
    int64_t now = hw_effects_now_ms(&c->h.fx);
    win->last_customer_message_unix_ms = conv.has_customer_message ? conv.last_customer_unix_ms : 0;
    win->closes_unix_ms = conv.has_customer_message ? conv.last_customer_unix_ms + HW_CONVERSATION_WINDOW_MS : 0;
    win->template_name = "";
    /* Open while now < closes: at exactly 24 h the window has closed. */
    if (conv.has_customer_message && now < win->closes_unix_ms) {
        c->window = win;
        return HW_OK;
    }
    const char *closed_at = conv.has_customer_message ? rfc3339(a, win->closes_unix_ms) : NULL;
    if (!cfg->whatsapp_template_name || !cfg->whatsapp_template_name[0]) {
        if (closed_at)
            return hw_rpc_wfail_on(&c->h, HW_EPRECONDITION, "tickets", t->id,
                                   "WhatsApp 24-hour window closed at %s; configure --whatsapp-template to "
                                   "re-open the conversation",
                                   closed_at);
        return hw_rpc_wfail_on(&c->h, HW_EPRECONDITION, "tickets", t->id,
                               "WhatsApp 24-hour window is closed (the customer has not written on ticket %s); "
                               "configure --whatsapp-template to re-open the conversation",
                               t->id);
    }
    if (x->n_attachments > 0)
        /* A template carries text only: the files would be refused
         * (131047) after the template went out. */
        return hw_rpc_wfail_on(&c->h, HW_EPRECONDITION, "tickets", t->id,
                               "WhatsApp 24-hour window %s%s: files can be sent once the customer answers; send "
                               "the text alone first (it goes as template %s)",
                               closed_at ? "closed at " : "is closed", closed_at ? closed_at : "",
                               cfg->whatsapp_template_name);
    win->closed = true;
    win->template_name = (char *)cfg->whatsapp_template_name;
    ox->template_name = cfg->whatsapp_template_name;
    ox->template_language = cfg->whatsapp_template_language ? cfg->whatsapp_template_language : "en";
    x->event_note = closed_at ? hw_arena_printf(a,
                                                "WhatsApp 24-hour window closed at %s: sent as template %s (%s)",
                                                closed_at, ox->template_name, ox->template_language)
                              : hw_arena_printf(a, "WhatsApp 24-hour window closed: sent as template %s (%s)",
                                                ox->template_name, ox->template_language);
    if (!x->event_note)
        return HW_ENOMEM;
    c->window = win;
    return HW_OK;
}

static int message_fn(hw_store_txn *w, void *arg)
{
    message_ctx *c = arg;
    hw_arena *a = hw_call_arena(c->h.call);
    Ticket *t;
    int rc = load_for_change(w, &c->h, c->req->ticket_id, 0, &t);
    if (rc != HW_OK)
        return rc;
    const char *author = c->req->kind == HELPWIRE__V1__MESSAGE_KIND__MESSAGE_KIND_CUSTOMER
                             ? hw_arena_printf(a, "customer:%s", t->customer_id)
                             : hw_rpc_actor(c->h.call);
    if (c->req->kind == HELPWIRE__V1__MESSAGE_KIND__MESSAGE_KIND_AGENT_REPLY && t->status != ST(CLOSED)) {
        /* The document it answers with: given, or linked in the text. */
        const char *why;
        rc = hw_suggestions_answered_in(w, t, c->req->answered_by, c->req->text, a, &why);
        if (why)
            return hw_rpc_wfail(&c->h, rc, "%s", why);
        if (rc != HW_OK)
            return rc;
    }
    hw_message_extra x;
    hw_outbox_extra ox = {0};
    if ((rc = message_extra_in(w, c, &x)) != HW_OK)
        return rc;
    c->window = NULL;
    if (c->req->kind == HELPWIRE__V1__MESSAGE_KIND__MESSAGE_KIND_AGENT_REPLY && t->status != ST(CLOSED)) {
        rc = reply_extra(w, c, t, &x, &ox);
        if (rc != HW_OK)
            return rc;
    }
    rc = hw_tickets_add_message_ex_in(w, t, c->req->kind, author, c->req->text, &x, a, &c->h.fx, &c->msg,
                                      &c->sent);
    if (rc == HW_EPRECONDITION)
        return hw_rpc_wfail_on(&c->h, rc, "tickets", t->id, "ticket %s is closed; open a new ticket instead",
                               t->id);
    return rc;
}

static void message_done(void *arg, int status)
{
    message_ctx *c = arg;
    if (hw_rpc_write_failed(&c->h, status))
        return;
    Helpwire__V1__AddMessageReply r = HELPWIRE__V1__ADD_MESSAGE_REPLY__INIT;
    r.message = c->msg;
    r.outbox_seq = c->sent.n ? c->sent.seqs[0] : 0;
    r.outbox_seqs = c->sent.seqs;
    r.n_outbox_seqs = c->sent.n;
    r.window = c->window;
    hw_call_reply(c->h.call, &r.base);
}

void hw_tickets_add_message(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    const Helpwire__V1__AddMessageRequest *req = (const void *)request;
    if (!hw_rpc_check_id(call, "ticket_id", req->ticket_id, 64, false) ||
        !hw_rpc_check_text(call, "text", req->text, req->n_attachments ? 0 : 1, MAX_TEXT) ||
        !hw_attachments_check(call, "attachments", req->attachments, req->n_attachments))
        return;
    if (req->kind != HELPWIRE__V1__MESSAGE_KIND__MESSAGE_KIND_AGENT_REPLY &&
        req->kind != HELPWIRE__V1__MESSAGE_KIND__MESSAGE_KIND_CUSTOMER &&
        req->kind != HELPWIRE__V1__MESSAGE_KIND__MESSAGE_KIND_INTERNAL_NOTE) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
                     "kind: must be AGENT_REPLY, CUSTOMER or INTERNAL_NOTE");
        return;
    }
    bool ok;
    if (hw_suggestions_ref_given(call, "answered_by", req->answered_by, &ok) &&
        req->kind != HELPWIRE__V1__MESSAGE_KIND__MESSAGE_KIND_AGENT_REPLY) {
        hw_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "answered_by: only with kind AGENT_REPLY");
        return;
    }
    if (!ok)
        return;
    message_ctx *c = hw_rpc_ctx_new(call, appv, sizeof *c);
    if (!c)
        return;
    c->req = req;
    hw_rpc_write(&c->h, message_fn, message_done);
}

/* --- EscalateTicket */

typedef struct {
    update_ctx u; /* shares ticket_done */
    const Helpwire__V1__EscalateTicketRequest *req;
} escalate_ctx;

static int escalate_fn(hw_store_txn *w, void *arg)
{
    escalate_ctx *c = arg;
    Ticket *t;
    int rc = load_for_change(w, &c->u.h, c->req->ticket_id, c->req->expected_version, &t);
    if (rc != HW_OK)
        return rc;
    const char *why;
    rc = hw_tickets_escalate_in(w, t, c->req->reason, hw_rpc_actor(c->u.h.call), hw_call_arena(c->u.h.call),
                                &c->u.h.fx, &why);
    c->u.ticket = t;
    return why ? hw_rpc_wfail_on(&c->u.h, rc, "tickets", t->id, "%s", why) : rc;
}

void hw_tickets_escalate(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    const Helpwire__V1__EscalateTicketRequest *req = (const void *)request;
    if (!hw_rpc_check_id(call, "ticket_id", req->ticket_id, 64, false) ||
        !hw_rpc_check_text(call, "reason", req->reason, 1, MAX_REASON))
        return;
    escalate_ctx *c = hw_rpc_ctx_new(call, appv, sizeof *c);
    if (!c)
        return;
    c->req = req;
    hw_rpc_write(&c->u.h, escalate_fn, ticket_done);
}

/* --- CloseTicket */

typedef struct {
    hw_wctx h;
    const Helpwire__V1__CloseTicketRequest *req;
    Ticket *ticket;
    char *survey_id, *survey_url;
} close_ctx;

static int close_fn(hw_store_txn *w, void *arg)
{
    close_ctx *c = arg;
    c->survey_id = c->survey_url = "";
    Ticket *t;
    int rc = load_for_change(w, &c->h, c->req->ticket_id, c->req->expected_version, &t);
    if (rc != HW_OK)
        return rc;
    const char *why;
    if (t->status != ST(CLOSED) && c->req->answered_by && c->req->answered_by->kind) {
        rc = hw_suggestions_answered_in(w, t, c->req->answered_by, NULL, hw_call_arena(c->h.call), &why);
        if (why)
            return hw_rpc_wfail(&c->h, rc, "%s", why);
        if (rc != HW_OK)
            return rc;
    }
    rc = hw_tickets_close_in(w, c->h.app, t, c->req->resolution, c->req->skip_survey, hw_rpc_actor(c->h.call),
                             hw_call_arena(c->h.call), &c->h.fx, &c->survey_id, &c->survey_url, &why);
    c->ticket = t;
    return why ? hw_rpc_wfail_on(&c->h, rc, "tickets", t->id, "%s", why) : rc;
}

static void close_done(void *arg, int status)
{
    close_ctx *c = arg;
    if (hw_rpc_write_failed(&c->h, status))
        return;
    Helpwire__V1__CloseTicketReply r = HELPWIRE__V1__CLOSE_TICKET_REPLY__INIT;
    r.ticket = c->ticket;
    r.survey_id = c->survey_id;
    r.survey_url = c->survey_url;
    hw_call_reply(c->h.call, &r.base);
}

void hw_tickets_close(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    const Helpwire__V1__CloseTicketRequest *req = (const void *)request;
    if (!hw_rpc_check_id(call, "ticket_id", req->ticket_id, 64, false) ||
        !hw_rpc_check_text(call, "resolution", req->resolution, 1, MAX_RESOLUTION))
        return;
    bool ok;
    hw_suggestions_ref_given(call, "answered_by", req->answered_by, &ok);
    if (!ok)
        return;
    close_ctx *c = hw_rpc_ctx_new(call, appv, sizeof *c);
    if (!c)
        return;
    c->req = req;
    hw_rpc_write(&c->h, close_fn, close_done);
}
