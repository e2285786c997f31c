/*
 * tickets_test: the ticket rules (server/domain/tickets.c) inside real
 * store writes, checked on the stored records: the status table (which
 * moves UpdateTicket allows, and that a refused move writes nothing and
 * says why), CLOSED being final, agent load accounting (an agent's
 * open_tickets follows assignment, close, resolve, reopen and reassignment)
 * and hw_tickets_assign_waiting_in (waiting tickets of the agent's skills,
 * most urgent then oldest, up to its capacity, only while online). The
 * RPCs around them are covered by the integration tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "server/domain/tickets.h"
#include "server/store/records.h"
#include "tests/unit/store_test_util.h"

#define ST(x) HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_##x
#define EV(x) HELPWIRE__V1__TICKET_EVENT_KIND__TICKET_EVENT_KIND_##x
#define PRI(x) HELPWIRE__V1__PRIORITY__PRIORITY_##x
#define ONLINE HELPWIRE__V1__PRESENCE__PRESENCE_ONLINE
#define OFFLINE HELPWIRE__V1__PRESENCE__PRESENCE_OFFLINE

typedef Helpwire__V1__Ticket Ticket;
typedef Helpwire__V1__Agent Agent;

typedef struct fx {
    hw_test_store st; /* first: the store, its reader and arena */
    hw_app app;
} fx;

/* ------------------------------------------------------------ fixture */

typedef struct {
    fx *f;
    const char *id, *skill, *skill2;
    Helpwire__V1__Presence presence;
    uint32_t capacity;
} seed_ctx;

static int skill_fn(hw_store_txn *w, void *arg)
{
    seed_ctx *c = arg;
    Helpwire__V1__Skill sk = HELPWIRE__V1__SKILL__INIT;
    sk.name = (char *)c->id;
    return hw_store_skill_put(w, &sk, HW_PUT_UPSERT);
}

static int customer_fn(hw_store_txn *w, void *arg)
{
    (void)arg;
    Helpwire__V1__Identity id = HELPWIRE__V1__IDENTITY__INIT, *ids[] = {&id};
    id.channel = HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM;
    id.channel_user_id = "tg-42";
    Helpwire__V1__Customer c = HELPWIRE__V1__CUSTOMER__INIT;
    c.id = "c-1";
    c.name = "Wang";
    c.tier = HELPWIRE__V1__CUSTOMER_TIER__CUSTOMER_TIER_STANDARD;
    c.identities = ids;
    c.n_identities = 1;
    c.version = 1;
    return hw_store_customer_put(w, &c, HW_PUT_CREATE, 0);
}

/* Creates or replaces an agent, keeping its stored load. */
static int agent_fn(hw_store_txn *w, void *arg)
{
    seed_ctx *c = arg;
    char *skills[] = {(char *)c->skill, (char *)c->skill2};
    Agent ag = HELPWIRE__V1__AGENT__INIT, *old;
    ag.id = (char *)c->id;
    ag.name = (char *)c->id;
    ag.skills = skills;
    ag.n_skills = c->skill2 ? 2 : 1;
    ag.presence = c->presence;
    ag.capacity = c->capacity;
    ag.version = 1;
    if (hw_store_agent_get(w, c->id, hw_store_txn_arena(w), &old) == HW_OK) {
        ag.open_tickets = old->open_tickets;
        ag.version = old->version + 1;
    }
    return hw_store_agent_put(w, &ag, HW_PUT_UPSERT, 0);
}

static void put_agent(fx *f, const char *id, const char *skill, Helpwire__V1__Presence presence,
                      uint32_t capacity)
{
    seed_ctx c = {.f = f, .id = id, .skill = skill, .presence = presence, .capacity = capacity};
    assert_int_equal(hw_store_write(f->st.s, agent_fn, &c), HW_OK);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    if (hw_test_store_open(&f->st, "tickets") != 0)
        return -1;
    f->app.store = f->st.s;
    f->app.settings.survey_base_url = "https://chat.example.com/survey/";
    f->app.settings.survey_ttl_ms = 3600LL * 1000;
    seed_ctx billing = {.f = f, .id = "billing"}, technical = {.f = f, .id = "technical"};
    if (hw_store_write(f->st.s, skill_fn, &billing) != HW_OK ||
        hw_store_write(f->st.s, skill_fn, &technical) != HW_OK ||
        hw_store_write(f->st.s, customer_fn, NULL) != HW_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    int rc = hw_test_store_close(&f->st);
    free(f);
    return rc;
}

/* ---------------------------------------------- the rules, as writes */

typedef enum { OPEN, UPDATE, ESCALATE, CLOSE, ASSIGN_WAITING } op_kind;

typedef struct {
    fx *f;
    op_kind op;
    const char *ticket_id; /* UPDATE, ESCALATE, CLOSE */
    const char *queue;     /* OPEN */
    Helpwire__V1__Priority priority;
    hw_ticket_change change; /* UPDATE */
    const char *agent_id;    /* ASSIGN_WAITING */
    /* Results. */
    hw_effects fx;
    const char *why;
    Ticket *ticket;
    char **ids;
    size_t n_ids;
    char *survey_id, *survey_url;
} op_ctx;

static int op_fn(hw_store_txn *w, void *arg)
{
    op_ctx *c = arg;
    hw_arena *a = c->f->st.a;
    hw_effects_begin(&c->fx, a);
    c->why = NULL;
    if (c->op == OPEN) {
        Helpwire__V1__Customer *cust;
        int rc = hw_store_customer_get(w, "c-1", a, &cust);
        if (rc != HW_OK)
            return rc;
        hw_ticket_open o = {.customer = cust,
                            .text = "my invoice is wrong",
                            .queue = c->queue,
                            .priority = c->priority ? c->priority : PRI(NORMAL),
                            .actor = "customer:c-1"};
        const char *reason;
        return hw_tickets_open_in(w, &o, a, &c->fx, &c->ticket, &reason);
    }
    if (c->op == ASSIGN_WAITING)
        return hw_tickets_assign_waiting_in(w, c->agent_id, a, &c->fx, &c->ids, &c->n_ids);
    int rc = hw_store_ticket_get(w, c->ticket_id, a, &c->ticket);
    if (rc != HW_OK)
        return rc;
    if (c->op == UPDATE)
        return hw_tickets_update_in(w, c->ticket, &c->change, "agent:test", a, &c->fx, &c->why);
    if (c->op == ESCALATE)
        return hw_tickets_escalate_in(w, c->ticket, "customer is angry", "agent:test", a, &c->fx, &c->why);
    return hw_tickets_close_in(w, &c->f->app, c->ticket, "fixed", false, "agent:test", a, &c->fx,
                               &c->survey_id, &c->survey_url, &c->why);
}

/* Opens a ticket in queue; returns its id (in the fixture's arena). */
static const char *open_ticket(fx *f, const char *queue, Helpwire__V1__Priority priority)
{
    op_ctx c = {.f = f, .op = OPEN, .queue = queue, .priority = priority};
    assert_int_equal(hw_store_write(f->st.s, op_fn, &c), HW_OK);
    return c.ticket->id;
}

static int set_status(fx *f, const char *id, Helpwire__V1__TicketStatus to, const char **why)
{
    op_ctx c = {.f = f, .op = UPDATE, .ticket_id = id, .change = {.set_status = true, .status = to}};
    int rc = hw_store_write(f->st.s, op_fn, &c);
    if (why)
        *why = c.why;
    return rc;
}

static int reassign(fx *f, const char *id, const char *agent)
{
    op_ctx c = {
        .f = f, .op = UPDATE, .ticket_id = id, .change = {.set_assignee = true, .assignee_agent_id = agent}};
    return hw_store_write(f->st.s, op_fn, &c);
}

static int escalate(fx *f, const char *id, const char **why)
{
    op_ctx c = {.f = f, .op = ESCALATE, .ticket_id = id};
    int rc = hw_store_write(f->st.s, op_fn, &c);
    if (why)
        *why = c.why;
    return rc;
}

static int close_ticket(fx *f, const char *id, const char **why)
{
    op_ctx c = {.f = f, .op = CLOSE, .ticket_id = id};
    int rc = hw_store_write(f->st.s, op_fn, &c);
    if (why)
        *why = c.why;
    return rc;
}

/* Moves a fresh OPEN ticket to status s by allowed steps. */
static void bring_to(fx *f, const char *id, Helpwire__V1__TicketStatus s)
{
    if (s == ST(PENDING) || s == ST(RESOLVED))
        assert_int_equal(set_status(f, id, s, NULL), HW_OK);
    else if (s == ST(ESCALATED))
        assert_int_equal(escalate(f, id, NULL), HW_OK);
    else if (s == ST(CLOSED))
        assert_int_equal(close_ticket(f, id, NULL), HW_OK);
}

/* ------------------------------------------------------------- reading */

static Ticket *stored_ticket(fx *f, const char *id)
{
    hw_store_txn *t;
    Ticket *tk = NULL;
    assert_int_equal(hw_store_read_begin(f->st.r, &t), HW_OK);
    assert_int_equal(hw_store_ticket_get(t, id, f->st.a, &tk), HW_OK);
    hw_store_read_end(f->st.r);
    return tk;
}

static uint32_t load_of(fx *f, const char *agent_id)
{
    hw_store_txn *t;
    Agent *ag = NULL;
    assert_int_equal(hw_store_read_begin(f->st.r, &t), HW_OK);
    assert_int_equal(hw_store_agent_get(t, agent_id, f->st.a, &ag), HW_OK);
    hw_store_read_end(f->st.r);
    return ag->open_tickets;
}

/* The ticket's history; *n receives its length. */
static Helpwire__V1__TicketEvent **history(fx *f, const char *id, size_t *n)
{
    hw_store_txn *t;
    hw_store_cursor cur = {0};
    Helpwire__V1__TicketEvent **evs = NULL;
    assert_int_equal(hw_store_read_begin(f->st.r, &t), HW_OK);
    assert_int_equal(hw_store_ticket_event_list(t, id, &cur, 1000, f->st.a, &evs, n), HW_OK);
    hw_store_read_end(f->st.r);
    return evs;
}

/* ------------------------------------------------------ the status table */

static void status_table_allows_exactly_the_documented_moves(void **state)
{
    (void)state;
    /* from -> to, indexed by status value (OPEN 1 .. CLOSED 5). */
    static const bool allowed[6][6] = {
        [ST(OPEN)] = {[ST(PENDING)] = true, [ST(RESOLVED)] = true},
        [ST(PENDING)] = {[ST(OPEN)] = true, [ST(RESOLVED)] = true},
        [ST(ESCALATED)] = {[ST(RESOLVED)] = true},
        [ST(RESOLVED)] = {[ST(OPEN)] = true},
    };
    for (int from = ST(OPEN); from <= ST(CLOSED); from++)
        for (int to = ST(OPEN); to <= ST(CLOSED); to++) {
            bool got = hw_tickets_status_move_allowed(from, to);
            if (got != allowed[from][to])
                fail_msg("%d -> %d: table says %d, expected %d", from, to, got, allowed[from][to]);
        }
}

static void allowed_move_is_stored_with_its_event_and_new_version(void **state)
{
    fx *f = *state;
    const char *id = open_ticket(f, "billing", 0);
    Ticket *before = stored_ticket(f, id);
    size_t n0;
    history(f, id, &n0);

    op_ctx c = {.f = f, .op = UPDATE, .ticket_id = id, .change = {.set_status = true, .status = ST(PENDING)}};
    assert_int_equal(hw_store_write(f->st.s, op_fn, &c), HW_OK);
    assert_null(c.why);

    Ticket *after = stored_ticket(f, id);
    assert_int_equal(after->status, ST(PENDING));
    assert_int_equal(after->version, before->version + 1);
    size_t n;
    Helpwire__V1__TicketEvent **evs = history(f, id, &n);
    assert_int_equal(n, n0 + 1);
    assert_int_equal(evs[n - 1]->kind, EV(STATUS_CHANGED));
    assert_string_equal(evs[n - 1]->detail, "OPEN -> PENDING");
    assert_string_equal(evs[n - 1]->actor, "agent:test");
    /* The watchers' copy carries the stored ticket, new version included. */
    assert_int_equal(c.fx.n_events, 1);
    assert_int_equal(c.fx.events[0]->ticket->version, after->version);
}

static void resolved_ticket_reopens_with_reopened_event(void **state)
{
    fx *f = *state;
    const char *id = open_ticket(f, "billing", 0);
    assert_int_equal(set_status(f, id, ST(RESOLVED), NULL), HW_OK);
    assert_int_equal(set_status(f, id, ST(OPEN), NULL), HW_OK);
    assert_int_equal(stored_ticket(f, id)->status, ST(OPEN));
    size_t n;
    Helpwire__V1__TicketEvent **evs = history(f, id, &n);
    assert_int_equal(evs[n - 2]->kind, EV(REOPENED));
    assert_string_equal(evs[n - 2]->detail, "RESOLVED -> OPEN");
    /* waiting again in a queue no agent serves: alerted again (a new wait) */
    assert_int_equal(evs[n - 1]->kind, EV(UNASSIGNABLE));
    assert_string_equal(evs[n - 1]->detail, "no agent has the skill billing");
}

/* Every move UpdateTicket must refuse, from every status a ticket can be
 * in, with the reason it gives. */
static void forbidden_moves_are_refused_and_write_nothing(void **state)
{
    fx *f = *state;
    static const struct {
        Helpwire__V1__TicketStatus from, to;
        const char *why;
    } refused[] = {
        {ST(OPEN), ST(ESCALATED), "status: use EscalateTicket to escalate a ticket"},
        {ST(OPEN), ST(CLOSED), "status: use CloseTicket to close a ticket"},
        {ST(PENDING), ST(ESCALATED), "status: use EscalateTicket to escalate a ticket"},
        {ST(PENDING), ST(CLOSED), "status: use CloseTicket to close a ticket"},
        {ST(ESCALATED), ST(OPEN), "status: ESCALATED -> OPEN is not allowed"},
        {ST(ESCALATED), ST(PENDING), "status: ESCALATED -> PENDING is not allowed"},
        {ST(ESCALATED), ST(CLOSED), "status: use CloseTicket to close a ticket"},
        {ST(RESOLVED), ST(PENDING), "status: RESOLVED -> PENDING is not allowed"},
        {ST(RESOLVED), ST(ESCALATED), "status: use EscalateTicket to escalate a ticket"},
        {ST(RESOLVED), ST(CLOSED), "status: use CloseTicket to close a ticket"},
        {ST(CLOSED), ST(OPEN), "is closed; a closed ticket cannot change"},
        {ST(CLOSED), ST(RESOLVED), "is closed; a closed ticket cannot change"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        const char *id = open_ticket(f, "billing", 0);
        bring_to(f, id, refused[i].from);
        Ticket *before = stored_ticket(f, id);
        size_t n_before;
        history(f, id, &n_before);

        const char *why = NULL;
        assert_int_equal(set_status(f, id, refused[i].to, &why), HW_EPRECONDITION);
        assert_non_null(why);
        if (!strstr(why, refused[i].why))
            fail_msg("%d -> %d: '%s' does not say '%s'", refused[i].from, refused[i].to, why, refused[i].why);

        Ticket *after = stored_ticket(f, id);
        assert_int_equal(after->status, before->status);
        assert_int_equal(after->version, before->version);
        size_t n_after;
        history(f, id, &n_after);
        assert_int_equal(n_after, n_before);
    }
}

static void refused_move_in_a_multi_field_update_keeps_the_other_fields(void **state)
{
    fx *f = *state;
    const char *id = open_ticket(f, "billing", PRI(LOW));
    assert_int_equal(set_status(f, id, ST(RESOLVED), NULL), HW_OK);
    op_ctx c = {
        .f = f,
        .op = UPDATE,
        .ticket_id = id,
        .change = {.set_priority = true, .priority = PRI(URGENT), .set_status = true, .status = ST(PENDING)}};
    assert_int_equal(hw_store_write(f->st.s, op_fn, &c), HW_EPRECONDITION);
    Ticket *after = stored_ticket(f, id);
    assert_int_equal(after->priority, PRI(LOW));
    assert_int_equal(after->status, ST(RESOLVED));
}

static void closed_ticket_is_final(void **state)
{
    fx *f = *state;
    const char *id = open_ticket(f, "billing", 0);
    assert_int_equal(close_ticket(f, id, NULL), HW_OK);
    uint64_t version = stored_ticket(f, id)->version;
    const char *why = NULL;
    assert_int_equal(close_ticket(f, id, &why), HW_EPRECONDITION);
    assert_non_null(strstr(why, "is already closed"));
    assert_int_equal(escalate(f, id, &why), HW_EPRECONDITION);
    assert_non_null(strstr(why, "is CLOSED; only OPEN or PENDING tickets escalate"));
    assert_int_equal(reassign(f, id, ""), HW_EPRECONDITION);
    assert_int_equal(stored_ticket(f, id)->version, version);
    assert_int_equal(stored_ticket(f, id)->status, ST(CLOSED));
}

static void only_open_or_pending_tickets_escalate(void **state)
{
    fx *f = *state;
    const char *open = open_ticket(f, "billing", 0), *pending = open_ticket(f, "billing", 0),
               *resolved = open_ticket(f, "billing", 0);
    bring_to(f, pending, ST(PENDING));
    bring_to(f, resolved, ST(RESOLVED));
    assert_int_equal(escalate(f, open, NULL), HW_OK);
    assert_int_equal(escalate(f, pending, NULL), HW_OK);
    assert_int_equal(stored_ticket(f, open)->status, ST(ESCALATED));
    assert_string_equal(stored_ticket(f, open)->escalation_reason, "customer is angry");
    const char *why = NULL;
    assert_int_equal(escalate(f, open, &why), HW_EPRECONDITION); /* already escalated */
    assert_non_null(strstr(why, "is ESCALATED"));
    assert_int_equal(escalate(f, resolved, &why), HW_EPRECONDITION);
    assert_int_equal(stored_ticket(f, resolved)->status, ST(RESOLVED));
}

static void escalation_queues_an_alert_for_after_the_commit(void **state)
{
    fx *f = *state;
    const char *id = open_ticket(f, "billing", 0);
    op_ctx c = {.f = f, .op = ESCALATE, .ticket_id = id};
    assert_int_equal(hw_store_write(f->st.s, op_fn, &c), HW_OK);
    assert_true(c.fx.alert_queued);
    assert_int_equal(c.fx.n_events, 1);
    assert_int_equal(c.fx.events[0]->kind, EV(ESCALATED));
}

static void close_sends_survey_and_wakes_its_channel(void **state)
{
    fx *f = *state;
    const char *id = open_ticket(f, "billing", 0);
    op_ctx c = {.f = f, .op = CLOSE, .ticket_id = id};
    assert_int_equal(hw_store_write(f->st.s, op_fn, &c), HW_OK);
    assert_true(strncmp(c.survey_id, "sv-", 3) == 0);
    assert_int_equal(c.fx.outbox_appended, 1u << HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM);
    assert_int_equal(c.fx.n_events, 2); /* CLOSED, SURVEY_SENT */
    assert_int_equal(c.fx.events[0]->kind, EV(CLOSED));
    assert_int_equal(c.fx.events[1]->kind, EV(SURVEY_SENT));
}

/* ------------------------------------------------------------ messages */

typedef struct {
    fx *f;
    const char *ticket_id, *text;
    Helpwire__V1__MessageKind kind;
    hw_effects fx;
    Helpwire__V1__TicketMessage *msg;
    hw_outbox_parts sent;
} message_ctx;

static int message_fn(hw_store_txn *w, void *arg)
{
    message_ctx *c = arg;
    hw_effects_begin(&c->fx, c->f->st.a);
    Ticket *t;
    int rc = hw_store_ticket_get(w, c->ticket_id, c->f->st.a, &t);
    if (rc != HW_OK)
        return rc;
    return hw_tickets_add_message_in(w, t, c->kind, "agent:test", c->text, c->f->st.a, &c->fx, &c->msg,
                                     &c->sent);
}

static void long_agent_reply_is_sent_in_parts_and_stored_whole_once(void **state)
{
    fx *f = *state;
    const char *id = open_ticket(f, "billing", 0);
    size_t len = 5000;
    char *text = malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        text[i] = i % 6 == 5 ? ' ' : 'a';
    text[len] = '\0';
    message_ctx c = {
        .f = f, .ticket_id = id, .text = text, .kind = HELPWIRE__V1__MESSAGE_KIND__MESSAGE_KIND_AGENT_REPLY};
    assert_int_equal(hw_store_write(f->st.s, message_fn, &c), HW_OK);
    assert_int_equal(c.sent.n, 2); /* the customer is on Telegram: 4096 per message */
    assert_true(c.sent.seqs[1] == c.sent.seqs[0] + 1);
    assert_int_equal(c.msg->delivery_parts, 2);
    assert_int_equal(c.fx.outbox_appended, 1u << HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM);

    hw_store_txn *t;
    hw_store_cursor cur = {0};
    Helpwire__V1__TicketMessage **msgs;
    size_t n;
    assert_int_equal(hw_store_read_begin(f->st.r, &t), HW_OK);
    assert_int_equal(hw_store_ticket_message_list(t, id, &cur, 100, f->st.a, &msgs, &n), HW_OK);
    hw_store_read_end(f->st.r);
    assert_int_equal(n, 2); /* the customer's first message, the reply once */
    assert_string_equal(msgs[1]->text, text);
    assert_int_equal(msgs[1]->delivery_parts, 2);
    size_t n_ev;
    Helpwire__V1__TicketEvent **evs = history(f, id, &n_ev);
    assert_string_equal(evs[n_ev - 1]->detail, "agent reply, sent in 2 parts");

    /* A short reply is one part, and its event says so as before; a note
     * is not sent at all. */
    message_ctx s = {
        .f = f, .ticket_id = id, .text = "ok", .kind = HELPWIRE__V1__MESSAGE_KIND__MESSAGE_KIND_AGENT_REPLY};
    assert_int_equal(hw_store_write(f->st.s, message_fn, &s), HW_OK);
    assert_int_equal(s.sent.n, 1);
    assert_int_equal(s.msg->delivery_parts, 1);
    evs = history(f, id, &n_ev);
    assert_string_equal(evs[n_ev - 1]->detail, "agent reply");
    message_ctx note = {.f = f,
                        .ticket_id = id,
                        .text = text,
                        .kind = HELPWIRE__V1__MESSAGE_KIND__MESSAGE_KIND_INTERNAL_NOTE};
    assert_int_equal(hw_store_write(f->st.s, message_fn, &note), HW_OK);
    assert_int_equal(note.sent.n, 0);
    assert_int_equal(note.msg->delivery_parts, 0);
    assert_int_equal(note.fx.outbox_appended, 0);
    free(text);
}

/* --------------------------------------------------------- load accounting */

static void new_tickets_go_to_the_least_loaded_online_agent_and_count_as_load(void **state)
{
    fx *f = *state;
    put_agent(f, "anna", "billing", ONLINE, 2);
    put_agent(f, "ben", "billing", ONLINE, 2);
    put_agent(f, "carl", "billing", OFFLINE, 9);
    const char *t1 = open_ticket(f, "billing", 0), *t2 = open_ticket(f, "billing", 0),
               *t3 = open_ticket(f, "billing", 0), *t4 = open_ticket(f, "billing", 0),
               *t5 = open_ticket(f, "billing", 0);
    assert_string_equal(stored_ticket(f, t1)->assignee_agent_id, "anna"); /* a tie goes by id */
    assert_string_equal(stored_ticket(f, t2)->assignee_agent_id, "ben");
    assert_string_equal(stored_ticket(f, t3)->assignee_agent_id, "anna");
    assert_string_equal(stored_ticket(f, t4)->assignee_agent_id, "ben");
    assert_string_equal(stored_ticket(f, t5)->assignee_agent_id, ""); /* everyone online is full */
    assert_int_equal(load_of(f, "anna"), 2);
    assert_int_equal(load_of(f, "ben"), 2);
    assert_int_equal(load_of(f, "carl"), 0);
}

static void close_releases_load_and_the_agent_takes_the_waiting_ticket(void **state)
{
    fx *f = *state;
    put_agent(f, "anna", "billing", ONLINE, 1);
    const char *t1 = open_ticket(f, "billing", 0), *t2 = open_ticket(f, "billing", 0);
    assert_string_equal(stored_ticket(f, t2)->assignee_agent_id, "");
    assert_int_equal(load_of(f, "anna"), 1);

    assert_int_equal(close_ticket(f, t1, NULL), HW_OK);
    assert_string_equal(stored_ticket(f, t2)->assignee_agent_id, "anna");
    assert_int_equal(load_of(f, "anna"), 1); /* one closed, one taken */
    size_t n;
    Helpwire__V1__TicketEvent **evs = history(f, t2, &n);
    assert_int_equal(evs[n - 1]->kind, EV(ASSIGNED));
    assert_string_equal(evs[n - 1]->actor, "system");

    assert_int_equal(close_ticket(f, t2, NULL), HW_OK);
    assert_int_equal(load_of(f, "anna"), 0);
}

static void reassignment_moves_load_between_agents(void **state)
{
    fx *f = *state;
    put_agent(f, "anna", "billing", ONLINE, 5);
    put_agent(f, "ben", "billing", ONLINE, 5);
    const char *t1 = open_ticket(f, "billing", 0);
    assert_string_equal(stored_ticket(f, t1)->assignee_agent_id, "anna");

    assert_int_equal(reassign(f, t1, "ben"), HW_OK);
    assert_string_equal(stored_ticket(f, t1)->assignee_agent_id, "ben");
    assert_int_equal(load_of(f, "anna"), 0);
    assert_int_equal(load_of(f, "ben"), 1);

    /* Unassigned: nobody carries it (ben is offline, or he would take the
     * waiting ticket straight back). */
    put_agent(f, "ben", "billing", OFFLINE, 5);
    assert_int_equal(reassign(f, t1, ""), HW_OK);
    assert_string_equal(stored_ticket(f, t1)->assignee_agent_id, "");
    assert_int_equal(load_of(f, "ben"), 0);
    assert_int_equal(load_of(f, "anna"), 0);
}

static void reassignment_to_an_unknown_agent_is_refused_and_moves_nothing(void **state)
{
    fx *f = *state;
    put_agent(f, "anna", "billing", ONLINE, 5);
    const char *t1 = open_ticket(f, "billing", 0);
    op_ctx c = {.f = f,
                .op = UPDATE,
                .ticket_id = t1,
                .change = {.set_assignee = true, .assignee_agent_id = "nobody"}};
    assert_int_equal(hw_store_write(f->st.s, op_fn, &c), HW_ENOTFOUND);
    assert_string_equal(c.why, "assignee_agent_id: no agent with id nobody");
    assert_string_equal(stored_ticket(f, t1)->assignee_agent_id, "anna");
    assert_int_equal(load_of(f, "anna"), 1);
}

static void resolved_tickets_carry_no_load_and_reopening_restores_it(void **state)
{
    fx *f = *state;
    put_agent(f, "anna", "billing", ONLINE, 5);
    const char *t1 = open_ticket(f, "billing", 0);
    assert_int_equal(set_status(f, t1, ST(PENDING), NULL), HW_OK);
    assert_int_equal(load_of(f, "anna"), 1); /* PENDING still counts */
    assert_int_equal(escalate(f, t1, NULL), HW_OK);
    assert_int_equal(load_of(f, "anna"), 1); /* so does ESCALATED */
    assert_int_equal(set_status(f, t1, ST(RESOLVED), NULL), HW_OK);
    assert_int_equal(load_of(f, "anna"), 0);
    assert_int_equal(set_status(f, t1, ST(OPEN), NULL), HW_OK);
    assert_int_equal(load_of(f, "anna"), 1);
    assert_string_equal(stored_ticket(f, t1)->assignee_agent_id, "anna");
}

/* ----------------------------------------------------------- assign_waiting */

static void agent_coming_online_takes_most_urgent_then_oldest_up_to_capacity(void **state)
{
    fx *f = *state;
    put_agent(f, "anna", "billing", OFFLINE, 3);
    const char *normal_old = open_ticket(f, "billing", PRI(NORMAL)),
               *urgent = open_ticket(f, "billing", PRI(URGENT)),
               *normal_new = open_ticket(f, "billing", PRI(NORMAL)),
               *high = open_ticket(f, "billing", PRI(HIGH));
    assert_int_equal(load_of(f, "anna"), 0);

    put_agent(f, "anna", "billing", ONLINE, 3);
    op_ctx c = {.f = f, .op = ASSIGN_WAITING, .agent_id = "anna"};
    assert_int_equal(hw_store_write(f->st.s, op_fn, &c), HW_OK);
    assert_int_equal(c.n_ids, 3);
    assert_string_equal(c.ids[0], urgent);
    assert_string_equal(c.ids[1], high);
    assert_string_equal(c.ids[2], normal_old);
    assert_string_equal(stored_ticket(f, urgent)->assignee_agent_id, "anna");
    assert_string_equal(stored_ticket(f, high)->assignee_agent_id, "anna");
    assert_string_equal(stored_ticket(f, normal_old)->assignee_agent_id, "anna");
    assert_string_equal(stored_ticket(f, normal_new)->assignee_agent_id, "");
    assert_int_equal(load_of(f, "anna"), 3);
    assert_int_equal(c.fx.n_events, 3); /* one ASSIGNED each, for the watchers */
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(c.fx.events[i]->kind, EV(ASSIGNED));
}

static void more_capacity_lets_an_online_agent_take_more(void **state)
{
    fx *f = *state;
    put_agent(f, "anna", "billing", ONLINE, 1);
    open_ticket(f, "billing", 0);
    const char *waiting = open_ticket(f, "billing", 0);
    assert_int_equal(load_of(f, "anna"), 1);
    put_agent(f, "anna", "billing", ONLINE, 2);
    op_ctx c = {.f = f, .op = ASSIGN_WAITING, .agent_id = "anna"};
    assert_int_equal(hw_store_write(f->st.s, op_fn, &c), HW_OK);
    assert_int_equal(c.n_ids, 1);
    assert_string_equal(c.ids[0], waiting);
    assert_int_equal(load_of(f, "anna"), 2);
}

static void offline_or_full_agents_and_other_skills_take_nothing(void **state)
{
    fx *f = *state;
    put_agent(f, "anna", "billing", OFFLINE, 3);
    const char *technical = open_ticket(f, "technical", 0), *billing = open_ticket(f, "billing", 0);

    op_ctx c = {.f = f, .op = ASSIGN_WAITING, .agent_id = "anna"};
    assert_int_equal(hw_store_write(f->st.s, op_fn, &c), HW_OK); /* offline */
    assert_int_equal(c.n_ids, 0);

    put_agent(f, "anna", "billing", ONLINE, 1);
    assert_int_equal(hw_store_write(f->st.s, op_fn, &c), HW_OK);
    assert_int_equal(c.n_ids, 1); /* billing only: technical is not her skill */
    assert_string_equal(c.ids[0], billing);
    assert_string_equal(stored_ticket(f, technical)->assignee_agent_id, "");

    open_ticket(f, "billing", 0); /* waits: she is full */
    assert_int_equal(hw_store_write(f->st.s, op_fn, &c), HW_OK);
    assert_int_equal(c.n_ids, 0);
    assert_int_equal(load_of(f, "anna"), 1);

    c.agent_id = "nobody"; /* a deleted agent: nothing to do */
    assert_int_equal(hw_store_write(f->st.s, op_fn, &c), HW_OK);
    assert_int_equal(c.n_ids, 0);
}

static void waiting_tickets_that_are_no_longer_open_are_not_taken(void **state)
{
    fx *f = *state;
    const char *resolved = open_ticket(f, "billing", PRI(URGENT)), *open = open_ticket(f, "billing", 0);
    assert_int_equal(set_status(f, resolved, ST(RESOLVED), NULL), HW_OK);
    put_agent(f, "anna", "billing", ONLINE, 5);
    op_ctx c = {.f = f, .op = ASSIGN_WAITING, .agent_id = "anna"};
    assert_int_equal(hw_store_write(f->st.s, op_fn, &c), HW_OK);
    assert_int_equal(c.n_ids, 1);
    assert_string_equal(c.ids[0], open);
    assert_string_equal(stored_ticket(f, resolved)->assignee_agent_id, "");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(status_table_allows_exactly_the_documented_moves),
        T(allowed_move_is_stored_with_its_event_and_new_version),
        T(resolved_ticket_reopens_with_reopened_event),
        T(forbidden_moves_are_refused_and_write_nothing),
        T(refused_move_in_a_multi_field_update_keeps_the_other_fields),
        T(closed_ticket_is_final),
        T(only_open_or_pending_tickets_escalate),
        T(escalation_queues_an_alert_for_after_the_commit),
        T(close_sends_survey_and_wakes_its_channel),
        T(long_agent_reply_is_sent_in_parts_and_stored_whole_once),
        T(new_tickets_go_to_the_least_loaded_online_agent_and_count_as_load),
        T(close_releases_load_and_the_agent_takes_the_waiting_ticket),
        T(reassignment_moves_load_between_agents),
        T(reassignment_to_an_unknown_agent_is_refused_and_moves_nothing),
        T(resolved_tickets_carry_no_load_and_reopening_restores_it),
        T(agent_coming_online_takes_most_urgent_then_oldest_up_to_capacity),
        T(more_capacity_lets_an_online_agent_take_more),
        T(offline_or_full_agents_and_other_skills_take_nothing),
        T(waiting_tickets_that_are_no_longer_open_are_not_taken),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
