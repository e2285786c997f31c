/*
 * store_records_test: every record kind (server/store/records.h) is written,
 * read back, updated, listed through each of its indexes and deleted; unique
 * indexes refuse a second owner without leaving half-written state; cursors
 * page without repeats while records change; failed outbox messages are
 * listed newest first, per channel or all, and pruned by age; a schema 1
 * store's ticket logs are migrated at open, also after an interrupted
 * migration.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <lmdb.h>

#include "helpwire/store/v1/records.pb-c.h"
#include "server/store/records.h"
#include "server/store/store_internal.h"
#include "tests/unit/store_test_util.h"

typedef struct fx {
    hw_test_store st; /* first: the store, its reader and arena */
    hw_store_txn *t; /* open read txn between rd() and rd_end() */
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    if (hw_test_store_open(&f->st, "rec") != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    /* Whatever the test did, indexes must agree with records. */
    int rc = hw_test_store_close(&f->st);
    free(f);
    return rc;
}

static hw_store_txn *rd(fx *f)
{
    hw_arena_reset(f->st.a);
    assert_int_equal(hw_store_read_begin(f->st.r, &f->t), HW_OK);
    return f->t;
}

static void rd_end(fx *f)
{
    hw_store_read_end(f->st.r);
}

/* A write fn with a status slot for the record call under test. */
typedef int (*body_fn)(hw_store_txn *w, void *arg);
typedef struct call {
    body_fn body;
    void *arg;
} call;

static int call_fn(hw_store_txn *w, void *ctx)
{
    call *c = ctx;
    return c->body(w, c->arg);
}

static int wr(fx *f, body_fn body, void *arg)
{
    call c = {body, arg};
    return hw_store_write(f->st.s, call_fn, &c);
}

/* ---- customers ---------------------------------------------------------- */

static Helpwire__V1__Identity ident(Helpwire__V1__Channel ch, const char *uid)
{
    Helpwire__V1__Identity i = HELPWIRE__V1__IDENTITY__INIT;
    i.channel = ch;
    i.channel_user_id = (char *)uid;
    return i;
}

typedef struct cust_put {
    Helpwire__V1__Customer *c;
    int mode;
    uint64_t expected;
    int put_rc; /* what the put returned; the fn itself returns 0 */
} cust_put;

static int cust_put_body(hw_store_txn *w, void *arg)
{
    cust_put *p = arg;
    p->put_rc = hw_store_customer_put(w, p->c, p->mode, p->expected);
    return HW_OK; /* commit whatever the put left: it must leave nothing on error */
}

static int cust_delete_body(hw_store_txn *w, void *arg)
{
    return hw_store_customer_delete(w, arg);
}

static void test_customer_put_get_lookup_update_delete(void **state)
{
    fx *f = *state;
    Helpwire__V1__Identity i1 = ident(HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, "u1");
    Helpwire__V1__Identity i2 = ident(HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP, "+100");
    Helpwire__V1__Identity *ids[] = {&i1, &i2};
    Helpwire__V1__Customer c = HELPWIRE__V1__CUSTOMER__INIT;
    c.id = "c-1";
    c.name = "Ann";
    c.version = 1;
    c.n_identities = 2;
    c.identities = ids;
    cust_put p = {.c = &c, .mode = HW_PUT_CREATE};
    assert_int_equal(wr(f, cust_put_body, &p), HW_OK);
    assert_int_equal(p.put_rc, HW_OK);
    assert_int_equal(wr(f, cust_put_body, &p), HW_OK);
    assert_int_equal(p.put_rc, HW_EEXISTS);

    /* Another customer claiming u1 is refused and leaves nothing behind. */
    Helpwire__V1__Identity i3 = ident(HELPWIRE__V1__CHANNEL__CHANNEL_WEBCHAT, "s-9");
    Helpwire__V1__Identity *ids2[] = {&i3, &i1};
    Helpwire__V1__Customer c2 = HELPWIRE__V1__CUSTOMER__INIT;
    c2.id = "c-2";
    c2.n_identities = 2;
    c2.identities = ids2;
    cust_put p2 = {.c = &c2};
    assert_int_equal(wr(f, cust_put_body, &p2), HW_OK);
    assert_int_equal(p2.put_rc, HW_EEXISTS);

    hw_store_txn *t = rd(f);
    Helpwire__V1__Customer *got;
    assert_int_equal(hw_store_customer_get(t, "c-1", f->st.a, &got), HW_OK);
    assert_string_equal(got->name, "Ann");
    assert_int_equal(got->n_identities, 2);
    assert_int_equal(hw_store_customer_lookup(t, HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP, "+100", f->st.a, &got),
                     HW_OK);
    assert_string_equal(got->id, "c-1");
    assert_int_equal(hw_store_customer_get(t, "c-2", f->st.a, &got), HW_ENOTFOUND);
    assert_int_equal(hw_store_customer_lookup(t, HELPWIRE__V1__CHANNEL__CHANNEL_WEBCHAT, "s-9", f->st.a, &got),
                     HW_ENOTFOUND);
    /* Same user id on another channel is another identity. */
    assert_int_equal(hw_store_customer_lookup(t, HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP, "u1", f->st.a, &got),
                     HW_ENOTFOUND);
    assert_int_equal(hw_store_customer_get(t, "", f->st.a, &got), HW_EINVALID);
    rd_end(f);

    /* Update: drop the WhatsApp identity; stale version conflicts. */
    c.n_identities = 1;
    c.version = 2;
    p = (cust_put){.c = &c, .mode = HW_PUT_REPLACE, .expected = 7};
    assert_int_equal(wr(f, cust_put_body, &p), HW_OK);
    assert_int_equal(p.put_rc, HW_ECONFLICT);
    p.expected = 1;
    assert_int_equal(wr(f, cust_put_body, &p), HW_OK);
    assert_int_equal(p.put_rc, HW_OK);
    t = rd(f);
    assert_int_equal(hw_store_customer_lookup(t, HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP, "+100", f->st.a, &got),
                     HW_ENOTFOUND);
    assert_int_equal(hw_store_customer_lookup(t, HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, "u1", f->st.a, &got),
                     HW_OK);
    assert_int_equal(got->version, 2);
    rd_end(f);

    assert_int_equal(wr(f, cust_delete_body, "c-1"), HW_OK);
    assert_int_equal(wr(f, cust_delete_body, "c-1"), HW_ENOTFOUND);
    t = rd(f);
    assert_int_equal(hw_store_customer_lookup(t, HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, "u1", f->st.a, &got),
                     HW_ENOTFOUND);
    hw_store_counts n;
    assert_int_equal(hw_store_counts_get(t, &n), HW_OK);
    assert_int_equal(n.customers, 0);
    rd_end(f);
}

/* ---- agents and skills --------------------------------------------------- */

static int agents_body(hw_store_txn *w, void *arg)
{
    static char *sk_tech[] = {"technical"};
    static char *sk_both[] = {"billing", "technical"};
    static const char *names[] = {"billing", "general", "technical"};
    for (int i = 0; i < 3; i++) {
        Helpwire__V1__Skill sk = HELPWIRE__V1__SKILL__INIT;
        sk.name = (char *)names[i];
        sk.default_priority = HELPWIRE__V1__PRIORITY__PRIORITY_NORMAL;
        int rc = hw_store_skill_put(w, &sk, HW_PUT_UPSERT);
        if (rc)
            return rc;
    }
    for (int i = 0; i < 6; i++) {
        char id[32];
        snprintf(id, sizeof(id), "agent-%d", i);
        Helpwire__V1__Agent ag = HELPWIRE__V1__AGENT__INIT;
        ag.id = id;
        ag.name = id;
        ag.capacity = 5;
        ag.presence =
            i % 2 ? HELPWIRE__V1__PRESENCE__PRESENCE_ONLINE : HELPWIRE__V1__PRESENCE__PRESENCE_OFFLINE;
        ag.n_skills = i < 3 ? 1 : 2;
        ag.skills = i < 3 ? sk_tech : sk_both;
        int rc = hw_store_agent_put(w, &ag, HW_PUT_CREATE, 0);
        if (rc)
            return rc;
    }
    return HW_OK;
}

static int agent_move_body(hw_store_txn *w, void *arg)
{
    /* agent-4 loses "technical"; agent-5 is deleted. */
    static char *sk_billing[] = {"billing"};
    Helpwire__V1__Agent *ag;
    int rc = hw_store_agent_get(w, "agent-4", hw_store_txn_arena(w), &ag);
    if (rc)
        return rc;
    ag->n_skills = 1;
    ag->skills = sk_billing;
    if ((rc = hw_store_agent_put(w, ag, HW_PUT_REPLACE, 0)))
        return rc;
    if ((rc = hw_store_skill_delete(w, "general")))
        return rc;
    return hw_store_agent_delete(w, "agent-5");
}

static void test_agents_and_skills_listed_by_skill_and_presence(void **state)
{
    fx *f = *state;
    assert_int_equal(wr(f, agents_body, NULL), HW_OK);
    hw_store_txn *t = rd(f);
    Helpwire__V1__Agent **ags;
    size_t n;
    hw_store_cursor cur = {0};
    assert_int_equal(hw_store_agent_list(t, "technical", 0, &cur, 100, f->st.a, &ags, &n), HW_OK);
    assert_int_equal(n, 6);
    assert_int_equal(cur.len, 0);
    assert_string_equal(ags[0]->id, "agent-0");
    memset(&cur, 0, sizeof(cur));
    assert_int_equal(hw_store_agent_list(t, "billing", 0, &cur, 100, f->st.a, &ags, &n), HW_OK);
    assert_int_equal(n, 3);
    memset(&cur, 0, sizeof(cur));
    assert_int_equal(
        hw_store_agent_list(t, NULL, HELPWIRE__V1__PRESENCE__PRESENCE_ONLINE, &cur, 100, f->st.a, &ags, &n),
        HW_OK);
    assert_int_equal(n, 3);
    /* Paging two at a time visits each agent once. */
    memset(&cur, 0, sizeof(cur));
    int seen = 0;
    do {
        assert_int_equal(hw_store_agent_list(t, "technical", 0, &cur, 2, f->st.a, &ags, &n), HW_OK);
        seen += (int)n;
    } while (cur.len);
    assert_int_equal(seen, 6);
    Helpwire__V1__Skill **sks;
    memset(&cur, 0, sizeof(cur));
    assert_int_equal(hw_store_skill_list(t, &cur, 10, f->st.a, &sks, &n), HW_OK);
    assert_int_equal(n, 3);
    assert_string_equal(sks[0]->name, "billing");
    rd_end(f);

    assert_int_equal(wr(f, agent_move_body, NULL), HW_OK);
    t = rd(f);
    memset(&cur, 0, sizeof(cur));
    assert_int_equal(hw_store_agent_list(t, "technical", 0, &cur, 100, f->st.a, &ags, &n), HW_OK);
    assert_int_equal(n, 4);
    memset(&cur, 0, sizeof(cur));
    assert_int_equal(hw_store_agent_list(t, "billing", 0, &cur, 100, f->st.a, &ags, &n), HW_OK);
    assert_int_equal(n, 2);
    Helpwire__V1__Skill *sk;
    assert_int_equal(hw_store_skill_get(t, "general", f->st.a, &sk), HW_ENOTFOUND);
    assert_int_equal(hw_store_skill_get(t, "billing", f->st.a, &sk), HW_OK);
    rd_end(f);
}

/* ---- tickets ------------------------------------------------------------- */

enum { NT = 40 };
static const char *QUEUES[] = {"technical", "billing"};

static void make_ticket(Helpwire__V1__Ticket *tk, char *id, size_t idlen, uint64_t number)
{
    static char assignees[3][8] = {"", "a-1", "a-2"};
    static char customers[4][8] = {"c-0", "c-1", "c-2", "c-3"};
    *tk = (Helpwire__V1__Ticket)HELPWIRE__V1__TICKET__INIT;
    snprintf(id, idlen, "t-%llu", (unsigned long long)number);
    tk->id = id;
    tk->number = number;
    tk->customer_id = customers[number % 4];
    tk->queue = (char *)QUEUES[number % 2];
    tk->status = (Helpwire__V1__TicketStatus)(1 + number % 5);
    tk->priority = (Helpwire__V1__Priority)(1 + number % 4);
    tk->assignee_agent_id = assignees[number % 3];
    tk->subject = "printer on fire";
    tk->version = 1;
}

static int tickets_body(hw_store_txn *w, void *arg)
{
    for (int i = 0; i < NT; i++) {
        uint64_t number;
        int rc = hw_store_next_seq(w, "ticket", 1000, &number);
        if (rc)
            return rc;
        char id[32];
        Helpwire__V1__Ticket tk;
        make_ticket(&tk, id, sizeof(id), number);
        if ((rc = hw_store_ticket_put(w, &tk, HW_PUT_CREATE, 0)))
            return rc;
    }
    return HW_OK;
}

typedef struct tk_update {
    const char *id;
    Helpwire__V1__TicketStatus status;
    uint64_t number; /* non-zero: set the number (collision test) */
    int put_rc;
} tk_update;

static int ticket_update_body(hw_store_txn *w, void *arg)
{
    tk_update *u = arg;
    Helpwire__V1__Ticket *tk;
    int rc = hw_store_ticket_get(w, u->id, hw_store_txn_arena(w), &tk);
    if (rc)
        return rc;
    uint64_t v = tk->version;
    if (u->status)
        tk->status = u->status;
    if (u->number)
        tk->number = u->number;
    tk->version = v + 1;
    u->put_rc = hw_store_ticket_put(w, tk, HW_PUT_REPLACE, v);
    return HW_OK;
}

/* Counts tickets matching f by brute force over numbers 1000.. */
static size_t expect_count(fx *f, hw_store_txn *t, const hw_ticket_filter *flt)
{
    size_t n = 0;
    for (uint64_t num = 1000; num < 1000 + NT; num++) {
        Helpwire__V1__Ticket *tk;
        if (hw_store_ticket_get_by_number(t, num, f->st.a, &tk) != HW_OK)
            continue;
        if (flt->status && tk->status != flt->status)
            continue;
        if (flt->priority && tk->priority != flt->priority)
            continue;
        if (flt->queue && strcmp(tk->queue, flt->queue))
            continue;
        if (flt->customer_id && strcmp(tk->customer_id, flt->customer_id))
            continue;
        if (flt->assignee_agent_id && strcmp(tk->assignee_agent_id, flt->assignee_agent_id))
            continue;
        if (flt->unassigned_only && *tk->assignee_agent_id)
            continue;
        n++;
    }
    return n;
}

static void check_listing(fx *f, const hw_ticket_filter *flt)
{
    hw_store_txn *t = rd(f);
    size_t want = expect_count(f, t, flt);
    hw_store_cursor cur = {0};
    size_t got = 0;
    uint64_t prev = UINT64_MAX;
    do {
        Helpwire__V1__Ticket **tks;
        size_t n;
        assert_int_equal(hw_store_ticket_list(t, flt, &cur, 3, f->st.a, &tks, &n), HW_OK);
        for (size_t i = 0; i < n; i++) {
            assert_true(tks[i]->number < prev); /* newest first, no repeats */
            prev = tks[i]->number;
        }
        got += n;
        /* Round-trip the cursor through a page token. */
        char token[2 * HW_STORE_CURSOR_MAX + 1];
        assert_int_equal(hw_store_cursor_encode(&cur, token, sizeof(token)), HW_OK);
        assert_int_equal(hw_store_cursor_decode(token, &cur), HW_OK);
    } while (cur.len);
    assert_int_equal(got, want);
    rd_end(f);
}

static int ticket_delete_body(hw_store_txn *w, void *arg)
{
    return hw_store_ticket_delete(w, arg);
}

static void test_tickets_listed_by_every_index_newest_first(void **state)
{
    fx *f = *state;
    assert_int_equal(wr(f, tickets_body, NULL), HW_OK);
    hw_ticket_filter filters[] = {
        {0},
        {.status = HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_OPEN},
        {.queue = "billing"},
        {.queue = "technical", .status = HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_PENDING},
        {.assignee_agent_id = "a-1"},
        {.unassigned_only = 1},
        {.customer_id = "c-2"},
        {.priority = HELPWIRE__V1__PRIORITY__PRIORITY_URGENT},
        {.customer_id = "c-1", .status = HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_ESCALATED},
    };
    for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++)
        check_listing(f, &filters[i]);

    /* Update moves a ticket between index entries. */
    tk_update u = {.id = "t-1001", .status = HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_CLOSED};
    assert_int_equal(wr(f, ticket_update_body, &u), HW_OK);
    assert_int_equal(u.put_rc, HW_OK);
    for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++)
        check_listing(f, &filters[i]);
    /* A number already used by another ticket is refused. */
    tk_update dup = {.id = "t-1002", .number = 1003};
    assert_int_equal(wr(f, ticket_update_body, &dup), HW_OK);
    assert_int_equal(dup.put_rc, HW_EEXISTS);

    hw_store_txn *t = rd(f);
    Helpwire__V1__Ticket *tk;
    assert_int_equal(hw_store_ticket_get_by_number(t, 1002, f->st.a, &tk), HW_OK);
    assert_string_equal(tk->id, "t-1002");
    assert_int_equal(hw_store_ticket_get(t, "t-1001", f->st.a, &tk), HW_OK);
    assert_int_equal(tk->status, HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_CLOSED);
    assert_int_equal(tk->version, 2);
    hw_store_counts c;
    assert_int_equal(hw_store_counts_get(t, &c), HW_OK);
    assert_int_equal(c.tickets, NT);
    rd_end(f);

    assert_int_equal(wr(f, ticket_delete_body, "t-1010"), HW_OK);
    for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++)
        check_listing(f, &filters[i]);
    t = rd(f);
    assert_int_equal(hw_store_ticket_get_by_number(t, 1010, f->st.a, &tk), HW_ENOTFOUND);
    rd_end(f);
}

static void test_ticket_cursor_never_repeats_while_tickets_change(void **state)
{
    fx *f = *state;
    assert_int_equal(wr(f, tickets_body, NULL), HW_OK);
    hw_ticket_filter flt = {.queue = "technical"};
    hw_store_cursor cur = {0};
    uint64_t seen[NT];
    size_t nseen = 0;
    int page = 0;
    do {
        hw_store_txn *t = rd(f);
        Helpwire__V1__Ticket **tks;
        size_t n;
        assert_int_equal(hw_store_ticket_list(t, &flt, &cur, 4, f->st.a, &tks, &n), HW_OK);
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < nseen; j++)
                assert_true(seen[j] != tks[i]->number);
            seen[nseen++] = tks[i]->number;
        }
        rd_end(f);
        /* Between pages: change the status of an already listed ticket and
         * of one still to come. */
        if (page++ == 0) {
            tk_update u1 = {.id = "t-1038", .status = HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_PENDING};
            tk_update u2 = {.id = "t-1004", .status = HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_PENDING};
            assert_int_equal(wr(f, ticket_update_body, &u1), HW_OK);
            assert_int_equal(wr(f, ticket_update_body, &u2), HW_OK);
        }
    } while (cur.len);
    assert_int_equal(nseen, NT / 2);

    /* A cursor from another listing is refused. */
    hw_store_txn *t = rd(f);
    Helpwire__V1__Ticket **tks;
    size_t n;
    memset(&cur, 0, sizeof(cur));
    assert_int_equal(hw_store_ticket_list(t, &flt, &cur, 2, f->st.a, &tks, &n), HW_OK);
    hw_ticket_filter other = {.status = HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_OPEN};
    assert_int_equal(hw_store_ticket_list(t, &other, &cur, 2, f->st.a, &tks, &n), HW_EINVALID);
    assert_int_equal(hw_store_ticket_list(t, &flt, &cur, 0, f->st.a, &tks, &n), HW_EINVALID);
    rd_end(f);
    assert_int_equal(hw_store_cursor_decode("zz", &cur), HW_EINVALID);
    assert_int_equal(hw_store_cursor_decode("abc", &cur), HW_EINVALID);
    assert_int_equal(hw_store_cursor_decode("", &cur), HW_OK);
    assert_int_equal(cur.len, 0);
}

/* ---- ticket events and messages ----------------------------------------- */

static int history_body(hw_store_txn *w, void *arg)
{
    char id[32];
    Helpwire__V1__Ticket tk;
    make_ticket(&tk, id, sizeof(id), 5000);
    int rc = hw_store_ticket_put(w, &tk, HW_PUT_CREATE, 0);
    for (int i = 0; rc == HW_OK && i < 5; i++) {
        Helpwire__V1__TicketEvent ev = HELPWIRE__V1__TICKET_EVENT__INIT;
        ev.ticket_id = id;
        ev.kind = HELPWIRE__V1__TICKET_EVENT_KIND__TICKET_EVENT_KIND_MESSAGE;
        ev.actor = "system";
        rc = hw_store_ticket_event_append(w, &ev);
        if (rc == HW_OK && ev.seq != (uint64_t)i + 1)
            return HW_EIO;
        Helpwire__V1__TicketMessage m = HELPWIRE__V1__TICKET_MESSAGE__INIT;
        char mid[32], text[32];
        snprintf(mid, sizeof(mid), "m-%d", i);
        snprintf(text, sizeof(text), "hello %d", i);
        m.id = mid;
        m.ticket_id = id;
        m.text = text;
        uint64_t pos;
        if (rc == HW_OK)
            rc = hw_store_ticket_message_append(w, &m, &pos);
        if (rc == HW_OK && pos != (uint64_t)i + 1)
            return HW_EIO;
    }
    /* The store assigns sequences: an event that names one is refused. */
    Helpwire__V1__TicketEvent dup = HELPWIRE__V1__TICKET_EVENT__INIT;
    dup.ticket_id = id;
    dup.seq = 3;
    if (rc == HW_OK && hw_store_ticket_event_append(w, &dup) != HW_EINVALID)
        return HW_EIO;
    return rc;
}

static void test_ticket_events_and_messages_in_order_and_deleted_with_ticket(void **state)
{
    fx *f = *state;
    assert_int_equal(wr(f, history_body, NULL), HW_OK);
    hw_store_txn *t = rd(f);
    Helpwire__V1__TicketEvent **evs;
    Helpwire__V1__TicketMessage **ms;
    size_t n;
    hw_store_cursor cur = {0};
    assert_int_equal(hw_store_ticket_event_list(t, "t-5000", &cur, 3, f->st.a, &evs, &n), HW_OK);
    assert_int_equal(n, 3);
    assert_int_equal(evs[0]->seq, 1);
    assert_int_equal(evs[2]->seq, 3);
    assert_true(cur.len > 0);
    assert_int_equal(hw_store_ticket_event_list(t, "t-5000", &cur, 3, f->st.a, &evs, &n), HW_OK);
    assert_int_equal(n, 2);
    assert_int_equal(evs[1]->seq, 5);
    assert_int_equal(cur.len, 0);
    memset(&cur, 0, sizeof(cur));
    assert_int_equal(hw_store_ticket_message_list(t, "t-5000", &cur, 10, f->st.a, &ms, &n), HW_OK);
    assert_int_equal(n, 5);
    assert_string_equal(ms[4]->text, "hello 4");
    /* A ticket whose id extends another's shares no entries. */
    memset(&cur, 0, sizeof(cur));
    assert_int_equal(hw_store_ticket_message_list(t, "t-500", &cur, 10, f->st.a, &ms, &n), HW_OK);
    assert_int_equal(n, 0);
    rd_end(f);

    assert_int_equal(wr(f, ticket_delete_body, "t-5000"), HW_OK);
    t = rd(f);
    memset(&cur, 0, sizeof(cur));
    assert_int_equal(hw_store_ticket_event_list(t, "t-5000", &cur, 10, f->st.a, &evs, &n), HW_OK);
    assert_int_equal(n, 0);
    assert_int_equal(hw_store_ticket_message_list(t, "t-5000", &cur, 10, f->st.a, &ms, &n), HW_OK);
    assert_int_equal(n, 0);
    rd_end(f);
}

/* ---- schema 1 -> 2: a ticket's events and messages move into one log ---- */

/* A legacy (schema 1) entry: key ticket \0 be64 seq, value the record. */
static void legacy_put(MDB_txn *txn, MDB_dbi db, const char *ticket, uint64_t seq, const ProtobufCMessage *m)
{
    unsigned char key[64], val[256];
    size_t tl = strlen(ticket) + 1;
    memcpy(key, ticket, tl);
    hw_be64_put(key + tl, seq);
    size_t n = protobuf_c_message_pack(m, val);
    MDB_val k = {tl + 8, key}, v = {n, val};
    assert_int_equal(mdb_put(txn, db, &k, &v, MDB_NOOVERWRITE), 0);
}

static void legacy_event(MDB_txn *txn, MDB_dbi db, const char *ticket, uint64_t seq, int64_t at)
{
    Helpwire__V1__TicketEvent ev = HELPWIRE__V1__TICKET_EVENT__INIT;
    ev.ticket_id = (char *)ticket;
    ev.seq = seq;
    ev.kind = HELPWIRE__V1__TICKET_EVENT_KIND__TICKET_EVENT_KIND_MESSAGE;
    ev.actor = "system";
    ev.at_unix_ms = at;
    legacy_put(txn, db, ticket, seq, &ev.base);
}

static void legacy_message(MDB_txn *txn, MDB_dbi db, const char *ticket, uint64_t seq, int64_t at,
                           const char *text)
{
    Helpwire__V1__TicketMessage m = HELPWIRE__V1__TICKET_MESSAGE__INIT;
    m.ticket_id = (char *)ticket;
    m.text = (char *)text;
    m.created_unix_ms = at;
    legacy_put(txn, db, ticket, seq, &m.base);
}

/* Raw LMDB access to a closed store: its databases by name. */
typedef struct raw {
    MDB_env *env;
    MDB_txn *txn;
} raw;

static MDB_dbi raw_open(const char *dir, raw *r, const char *db, unsigned txn_flags)
{
    MDB_dbi dbi;
    if (!r->env) {
        assert_int_equal(mdb_env_create(&r->env), 0);
        mdb_env_set_maxdbs(r->env, 64);
        assert_int_equal(mdb_env_open(r->env, dir, 0, 0600), 0);
        assert_int_equal(mdb_txn_begin(r->env, NULL, txn_flags, &r->txn), 0);
    }
    assert_int_equal(mdb_dbi_open(r->txn, db, 0, &dbi), 0);
    return dbi;
}

static void raw_close(raw *r, int commit)
{
    if (commit)
        assert_int_equal(mdb_txn_commit(r->txn), 0);
    else
        mdb_txn_abort(r->txn);
    mdb_env_close(r->env);
    memset(r, 0, sizeof *r);
}

enum { BIG_TICKET_EVENTS = 12000 }; /* more than one migration step */

/* A store as schema 1 left it (version says `version`: 2 is a migration
 * that stopped half way): t-7 with interleaved events and messages, t-70
 * (whose id extends t-7's) with one message, t-9 with many events. */
static void make_legacy_store(const char *dir, uint32_t version)
{
    hw_store *s = hw_test_open(dir, 0, 0);
    assert_non_null(s);
    hw_store_close(s);
    raw r = {0};
    MDB_dbi meta = raw_open(dir, &r, "meta", 0);
    MDB_dbi evs = raw_open(dir, &r, "ticket_events", 0);
    MDB_dbi msgs = raw_open(dir, &r, "ticket_messages", 0);
    Helpwire__Store__V1__SchemaRecord sr = HELPWIRE__STORE__V1__SCHEMA_RECORD__INIT;
    sr.magic = "helpwire.store";
    sr.version = version;
    unsigned char buf[64];
    MDB_val k = {6, "schema"}, v = {helpwire__store__v1__schema_record__pack(&sr, buf), buf};
    assert_int_equal(mdb_put(r.txn, meta, &k, &v, 0), 0);
    legacy_event(r.txn, evs, "t-7", 1, 100);
    legacy_message(r.txn, msgs, "t-7", 1, 150, "first");
    legacy_event(r.txn, evs, "t-7", 2, 200);
    legacy_message(r.txn, msgs, "t-7", 2, 250, "second");
    legacy_event(r.txn, evs, "t-7", 3, 300);
    legacy_message(r.txn, msgs, "t-70", 1, 10, "other ticket");
    for (uint64_t i = 1; i <= BIG_TICKET_EVENTS; i++)
        legacy_event(r.txn, evs, "t-9", i, (int64_t)i);
    raw_close(&r, 1);
}

static int append_after_migration(hw_store_txn *w, void *arg)
{
    uint64_t *seqs = arg;
    Helpwire__V1__TicketMessage m = HELPWIRE__V1__TICKET_MESSAGE__INIT;
    m.ticket_id = "t-7";
    m.text = "third";
    int rc = hw_store_ticket_message_append(w, &m, &seqs[0]);
    Helpwire__V1__TicketEvent ev = HELPWIRE__V1__TICKET_EVENT__INIT;
    ev.ticket_id = "t-7";
    ev.actor = "system";
    if (rc == HW_OK)
        rc = hw_store_ticket_event_append(w, &ev);
    seqs[1] = ev.seq;
    return rc;
}

static void check_migrated(const char *dir)
{
    hw_store *s = hw_test_open(dir, 0, 0);
    assert_non_null(s);
    hw_store_reader *rdr;
    assert_int_equal(hw_store_reader_create(s, &rdr), HW_OK);
    hw_arena *a = hw_arena_create(0);
    hw_store_txn *t;
    assert_int_equal(hw_store_read_begin(rdr, &t), HW_OK);
    hw_store_cursor cur = {0};
    Helpwire__V1__TicketEvent **evs;
    Helpwire__V1__TicketMessage **ms;
    size_t n;
    assert_int_equal(hw_store_ticket_event_list(t, "t-7", &cur, 10, a, &evs, &n), HW_OK);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(evs[i]->seq, i + 1);
        assert_int_equal(evs[i]->at_unix_ms, 100 * (i + 1));
    }
    memset(&cur, 0, sizeof cur);
    assert_int_equal(hw_store_ticket_message_list(t, "t-7", &cur, 10, a, &ms, &n), HW_OK);
    assert_int_equal(n, 2);
    assert_string_equal(ms[0]->text, "first");
    assert_string_equal(ms[1]->text, "second");
    memset(&cur, 0, sizeof cur);
    assert_int_equal(hw_store_ticket_message_list(t, "t-70", &cur, 10, a, &ms, &n), HW_OK);
    assert_int_equal(n, 1);
    assert_string_equal(ms[0]->text, "other ticket");
    /* the big ticket pages through whole and in order */
    memset(&cur, 0, sizeof cur);
    uint64_t next = 1;
    do {
        hw_arena_reset(a);
        assert_int_equal(hw_store_ticket_event_list(t, "t-9", &cur, 1000, a, &evs, &n), HW_OK);
        for (size_t i = 0; i < n; i++, next++)
            assert_int_equal(evs[i]->seq, next);
    } while (cur.len > 0);
    assert_int_equal(next, BIG_TICKET_EVENTS + 1);
    hw_store_read_end(rdr);

    /* both sequences go on where schema 1 left them */
    uint64_t seqs[2] = {0, 0};
    assert_int_equal(hw_store_write(s, append_after_migration, seqs), HW_OK);
    assert_int_equal(seqs[0], 3);
    assert_int_equal(seqs[1], 4);
    hw_arena_destroy(a);
    hw_store_reader_destroy(rdr);
    hw_store_close(s);

    /* on disk: version 3, the old databases empty, t-7's log interleaved by
     * time; the two entries appended since wait in the write-ahead part */
    raw r = {0};
    MDB_dbi meta = raw_open(dir, &r, "meta", MDB_RDONLY);
    MDB_val k = {6, "schema"}, v;
    assert_int_equal(mdb_get(r.txn, meta, &k, &v), 0);
    Helpwire__Store__V1__SchemaRecord *sr =
        helpwire__store__v1__schema_record__unpack(NULL, v.mv_size, v.mv_data);
    assert_non_null(sr);
    assert_int_equal(sr->version, 3);
    helpwire__store__v1__schema_record__free_unpacked(sr, NULL);
    MDB_stat st;
    assert_int_equal(mdb_stat(r.txn, raw_open(dir, &r, "ticket_events", 0), &st), 0);
    assert_int_equal(st.ms_entries, 0);
    assert_int_equal(mdb_stat(r.txn, raw_open(dir, &r, "ticket_messages", 0), &st), 0);
    assert_int_equal(st.ms_entries, 0);
    MDB_dbi log = raw_open(dir, &r, "ticket_log", 0);
    MDB_cursor *c;
    assert_int_equal(mdb_cursor_open(r.txn, log, &c), 0);
    k = (MDB_val){4, "t-7"};
    char kinds[16] = {0};
    size_t nk = 0;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    for (; mrc == 0 && k.mv_size == 12 && memcmp(k.mv_data, "t-7", 4) == 0 && nk < 15;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        assert_int_equal(hw_be64_get((const unsigned char *)k.mv_data + 4), nk + 1);
        kinds[nk++] = ((const char *)v.mv_data)[0];
    }
    assert_string_equal(kinds, "ememe");
    mdb_cursor_close(c);
    assert_int_equal(mdb_stat(r.txn, raw_open(dir, &r, "ticket_wal", 0), &st), 0);
    assert_int_equal(st.ms_entries, 2);
    raw_close(&r, 0);
}

static void test_schema1_ticket_logs_are_migrated(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    hw_test_dir(dir, sizeof(dir), "schema1");
    make_legacy_store(dir, 1);
    check_migrated(dir);
}

static void test_interrupted_migration_resumes(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    hw_test_dir(dir, sizeof(dir), "resume");
    make_legacy_store(dir, 2);
    check_migrated(dir);
}

/* ---- the default skill mark, added at open ------------------------------ */

typedef struct {
    const char *names[3];
    int defaults[3];
} skills_arg;

static int put_skills(hw_store_txn *w, void *arg)
{
    skills_arg *sa = arg;
    int rc = HW_OK;
    for (int i = 0; rc == HW_OK && i < 3 && sa->names[i]; i++) {
        Helpwire__V1__Skill sk = HELPWIRE__V1__SKILL__INIT;
        sk.name = (char *)sa->names[i];
        sk.is_default = sa->defaults[i];
        rc = hw_store_skill_put(w, &sk, HW_PUT_UPSERT);
    }
    return rc;
}

/* Opens dir, writes the skills, closes, opens again (the upgrade steps
 * run) and returns in out the names marked default ("" none, else
 * comma-separated). */
static void skills_after_reopen(const char *dir, skills_arg *sa, char *out, size_t len)
{
    hw_store *s = hw_test_open(dir, 1 << 20, 8);
    assert_non_null(s);
    assert_int_equal(hw_store_write(s, put_skills, sa), HW_OK);
    hw_store_close(s);
    s = hw_test_open(dir, 1 << 20, 8);
    assert_non_null(s);
    hw_store_reader *r;
    assert_int_equal(hw_store_reader_create(s, &r), HW_OK);
    hw_store_txn *t;
    assert_int_equal(hw_store_read_begin(r, &t), HW_OK);
    hw_arena *a = hw_arena_create(4096);
    hw_store_cursor cur = {0};
    Helpwire__V1__Skill **sk;
    size_t n;
    assert_int_equal(hw_store_skill_list(t, &cur, 100, a, &sk, &n), HW_OK);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        if (sk[i]->is_default)
            snprintf(out + strlen(out), len - strlen(out), "%s%s", *out ? "," : "", sk[i]->name);
    hw_arena_destroy(a);
    hw_store_read_end(r);
    assert_int_equal(hw_test_check_and_close(s, r), 0);
}

static void test_general_is_marked_default_at_open_when_nothing_is(void **state)
{
    (void)state;
    char dir[PATH_MAX], got[128];
    /* a store of the previous version: "general" was the fallback by name */
    skills_arg old = {{"billing", "general", "technical"}, {0, 0, 0}};
    skills_after_reopen(hw_test_dir(dir, sizeof(dir), "defskill1"), &old, got, sizeof got);
    assert_string_equal(got, "general");
    /* a mark elsewhere is left alone */
    skills_arg marked = {{"billing", "general", "technical"}, {0, 0, 1}};
    skills_after_reopen(hw_test_dir(dir, sizeof(dir), "defskill2"), &marked, got, sizeof got);
    assert_string_equal(got, "technical");
    /* no "general": the first by name, the fallback such a store used */
    skills_arg none = {{"billing", "account", NULL}, {0, 0, 0}};
    skills_after_reopen(hw_test_dir(dir, sizeof(dir), "defskill3"), &none, got, sizeof got);
    assert_string_equal(got, "account");
    /* no skill at all: nothing to mark */
    skills_arg empty = {{NULL, NULL, NULL}, {0, 0, 0}};
    skills_after_reopen(hw_test_dir(dir, sizeof(dir), "defskill4"), &empty, got, sizeof got);
    assert_string_equal(got, "");
}

/* ---- the per-channel load, counted at open -------------------------------- */

static int old_agent_with_tickets(hw_store_txn *w, void *arg)
{
    (void)arg;
    static const struct {
        const char *id;
        Helpwire__V1__Channel ch;
        Helpwire__V1__TicketStatus st;
    } ts[] = {
        {"t-1", HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP, HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_OPEN},
        {"t-2", HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP, HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_PENDING},
        {"t-3", HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM,
         HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_ESCALATED},
        {"t-4", HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, HELPWIRE__V1__TICKET_STATUS__TICKET_STATUS_CLOSED},
    };
    int rc = HW_OK;
    for (size_t i = 0; rc == HW_OK && i < sizeof ts / sizeof ts[0]; i++) {
        Helpwire__V1__Ticket tk = HELPWIRE__V1__TICKET__INIT;
        tk.id = (char *)ts[i].id;
        tk.number = i + 1;
        tk.customer_id = "c-1";
        tk.queue = "billing";
        tk.status = ts[i].st;
        tk.channel = ts[i].ch;
        tk.assignee_agent_id = "a-old";
        tk.version = 1;
        rc = hw_store_ticket_put(w, &tk, HW_PUT_CREATE, 0);
    }
    Helpwire__V1__Agent ag = HELPWIRE__V1__AGENT__INIT;
    ag.id = "a-old";
    ag.name = "Old";
    ag.capacity = 5;
    ag.open_tickets = 3; /* as the previous version counted: no channel_load */
    ag.version = 1;
    Helpwire__V1__Agent idle = HELPWIRE__V1__AGENT__INIT;
    idle.id = "a-idle";
    idle.name = "Idle";
    idle.capacity = 5;
    idle.version = 1;
    if (rc == HW_OK)
        rc = hw_store_agent_put(w, &ag, HW_PUT_CREATE, 0);
    if (rc == HW_OK)
        rc = hw_store_agent_put(w, &idle, HW_PUT_CREATE, 0);
    return rc;
}

static void test_channel_load_is_counted_at_open(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    hw_store *s = hw_test_open(hw_test_dir(dir, sizeof(dir), "chload"), 1 << 20, 8);
    assert_non_null(s);
    assert_int_equal(hw_store_write(s, old_agent_with_tickets, NULL), HW_OK);
    hw_store_close(s);
    s = hw_test_open(dir, 1 << 20, 8);
    assert_non_null(s);
    hw_store_reader *r;
    assert_int_equal(hw_store_reader_create(s, &r), HW_OK);
    hw_store_txn *t;
    assert_int_equal(hw_store_read_begin(r, &t), HW_OK);
    hw_arena *a = hw_arena_create(4096);
    Helpwire__V1__Agent *ag;
    assert_int_equal(hw_store_agent_get(t, "a-old", a, &ag), HW_OK);
    assert_int_equal(ag->open_tickets, 3);
    uint32_t by[4] = {0};
    for (size_t i = 0; i < ag->n_channel_load; i++)
        by[ag->channel_load[i]->channel] = ag->channel_load[i]->open_tickets;
    assert_int_equal(ag->n_channel_load, 2);
    assert_int_equal(by[HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP], 2);
    assert_int_equal(by[HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM], 1); /* the closed one does not count */
    assert_int_equal(hw_store_agent_get(t, "a-idle", a, &ag), HW_OK);
    assert_int_equal(ag->n_channel_load, 0);
    hw_arena_destroy(a);
    hw_store_read_end(r);
    assert_int_equal(hw_test_check_and_close(s, r), 0);
}

/* ---- articles and FAQs --------------------------------------------------- */

static int knowledge_body(hw_store_txn *w, void *arg)
{
    int rc = HW_OK;
    for (int i = 0; rc == HW_OK && i < 10; i++) {
        char id[32], title[48];
        snprintf(id, sizeof(id), "a-%02d", i);
        snprintf(title, sizeof(title), "article %d", i);
        Helpwire__V1__Article ar = HELPWIRE__V1__ARTICLE__INIT;
        ar.id = id;
        ar.title = title;
        ar.body = "body";
        ar.locale = i < 7 ? "en" : "zh";
        ar.version = 1;
        rc = hw_store_article_put(w, &ar, HW_PUT_UPSERT, 0);
        Helpwire__V1__Faq fq = HELPWIRE__V1__FAQ__INIT;
        snprintf(id, sizeof(id), "f-%02d", i);
        fq.id = id;
        fq.question = i < 3 ? "如何重置密码" : "how do I reset my password";
        fq.answer = "settings";
        fq.locale = i < 3 ? "zh" : "en";
        fq.version = 1;
        if (rc == HW_OK)
            rc = hw_store_faq_put(w, &fq, HW_PUT_UPSERT, 0);
    }
    return rc;
}

static int knowledge_change_body(hw_store_txn *w, void *arg)
{
    Helpwire__V1__Article *ar;
    int rc = hw_store_article_get(w, "a-00", hw_store_txn_arena(w), &ar);
    if (rc)
        return rc;
    ar->locale = "zh";
    ar->version = 2;
    if ((rc = hw_store_article_put(w, ar, HW_PUT_REPLACE, 1)))
        return rc;
    if ((rc = hw_store_article_delete(w, "a-09")))
        return rc;
    return hw_store_faq_delete(w, "f-00");
}

static int count_article(void *arg, const Helpwire__V1__Article *ar)
{
    (*(int *)arg)++;
    return 0;
}

static int stop_at_third(void *arg, const Helpwire__V1__Faq *fq)
{
    return ++(*(int *)arg) == 3 ? 42 : 0;
}

static void test_articles_and_faqs_by_locale_and_iterated(void **state)
{
    fx *f = *state;
    assert_int_equal(wr(f, knowledge_body, NULL), HW_OK);
    hw_store_txn *t = rd(f);
    Helpwire__V1__Article **ars;
    Helpwire__V1__Faq **fqs;
    size_t n;
    hw_store_cursor cur = {0};
    assert_int_equal(hw_store_article_list(t, "zh", &cur, 50, f->st.a, &ars, &n), HW_OK);
    assert_int_equal(n, 3);
    memset(&cur, 0, sizeof(cur));
    assert_int_equal(hw_store_article_list(t, NULL, &cur, 50, f->st.a, &ars, &n), HW_OK);
    assert_int_equal(n, 10);
    assert_string_equal(ars[0]->id, "a-00");
    memset(&cur, 0, sizeof(cur));
    assert_int_equal(hw_store_faq_list(t, "zh", &cur, 50, f->st.a, &fqs, &n), HW_OK);
    assert_int_equal(n, 3);
    assert_string_equal(fqs[0]->question, "如何重置密码");
    rd_end(f);

    assert_int_equal(wr(f, knowledge_change_body, NULL), HW_OK);
    t = rd(f);
    memset(&cur, 0, sizeof(cur));
    assert_int_equal(hw_store_article_list(t, "zh", &cur, 50, f->st.a, &ars, &n), HW_OK);
    assert_int_equal(n, 3); /* +a-00, -a-09 */
    assert_string_equal(ars[0]->id, "a-00");
    memset(&cur, 0, sizeof(cur));
    assert_int_equal(hw_store_article_list(t, "en", &cur, 50, f->st.a, &ars, &n), HW_OK);
    assert_int_equal(n, 6);
    int count = 0;
    hw_arena *ia = hw_arena_create(0);
    assert_int_equal(hw_store_article_foreach(t, ia, count_article, &count), HW_OK);
    assert_int_equal(count, 9);
    count = 0;
    assert_int_equal(hw_store_faq_foreach(t, ia, stop_at_third, &count), 42);
    hw_arena_destroy(ia);
    Helpwire__V1__Faq *fq;
    assert_int_equal(hw_store_faq_get(t, "f-00", f->st.a, &fq), HW_ENOTFOUND);
    assert_int_equal(hw_store_faq_get(t, "f-01", f->st.a, &fq), HW_OK);
    hw_store_counts c;
    assert_int_equal(hw_store_counts_get(t, &c), HW_OK);
    assert_int_equal(c.articles, 9);
    assert_int_equal(c.faqs, 9);
    rd_end(f);
}

/* ---- surveys and tokens --------------------------------------------------- */

typedef struct survey_op {
    int step;
    int rc2;
} survey_op;

static int surveys_body(hw_store_txn *w, void *arg)
{
    survey_op *op = arg;
    int rc = HW_OK;
    if (op->step == 0) {
        for (int i = 0; rc == HW_OK && i < 5; i++) {
            char id[32], hash[32];
            snprintf(id, sizeof(id), "s-%d", i);
            snprintf(hash, sizeof(hash), "hash-%d", i);
            Helpwire__V1__Survey sv = HELPWIRE__V1__SURVEY__INIT;
            sv.id = id;
            sv.ticket_id = "t-1";
            sv.sent_unix_ms = 1000 * (i + 1);
            rc = hw_store_survey_put(w, &sv, hash, strlen(hash), HW_PUT_CREATE);
        }
        /* A new survey needs a hash; another survey's hash is refused. */
        Helpwire__V1__Survey sv = HELPWIRE__V1__SURVEY__INIT;
        sv.id = "s-x";
        if (rc == HW_OK && hw_store_survey_put(w, &sv, NULL, 0, HW_PUT_CREATE) != HW_EINVALID)
            return HW_EIO;
        if (rc == HW_OK)
            op->rc2 = hw_store_survey_put(w, &sv, "hash-1", 6, HW_PUT_CREATE);
    } else if (op->step == 1) {
        Helpwire__V1__Survey *sv;
        rc = hw_store_survey_get(w, "s-2", hw_store_txn_arena(w), &sv);
        if (rc)
            return rc;
        sv->rating = 5;
        rc = hw_store_survey_put(w, sv, NULL, 0, HW_PUT_REPLACE); /* keeps the hash */
        if (rc == HW_OK)
            rc = hw_store_survey_delete(w, "s-4");
    }
    return rc;
}

static int sum_rating(void *arg, const Helpwire__V1__Survey *sv)
{
    ((int *)arg)[0]++;
    ((int *)arg)[1] += (int)sv->rating;
    return 0;
}

static void test_surveys_by_token_and_sent_time(void **state)
{
    fx *f = *state;
    survey_op op = {0};
    assert_int_equal(wr(f, surveys_body, &op), HW_OK);
    assert_int_equal(op.rc2, HW_EEXISTS);
    op.step = 1;
    assert_int_equal(wr(f, surveys_body, &op), HW_OK);
    hw_store_txn *t = rd(f);
    Helpwire__V1__Survey *sv;
    assert_int_equal(hw_store_survey_get_by_token(t, "hash-2", 6, f->st.a, &sv), HW_OK);
    assert_string_equal(sv->id, "s-2");
    assert_int_equal(sv->rating, 5);
    assert_int_equal(hw_store_survey_get_by_token(t, "hash-4", 6, f->st.a, &sv), HW_ENOTFOUND);
    assert_int_equal(hw_store_survey_get(t, "s-x", f->st.a, &sv), HW_ENOTFOUND);
    int acc[2] = {0, 0};
    hw_arena *ia = hw_arena_create(0);
    assert_int_equal(hw_store_survey_foreach_sent(t, 2000, 4000, ia, sum_rating, acc), HW_OK);
    assert_int_equal(acc[0], 2); /* s-1 (2000), s-2 (3000) */
    assert_int_equal(acc[1], 5);
    acc[0] = acc[1] = 0;
    assert_int_equal(hw_store_survey_foreach_sent(t, 0, 0, ia, sum_rating, acc), HW_OK);
    assert_int_equal(acc[0], 4);
    hw_arena_destroy(ia);
    rd_end(f);
}

/* ---- visitors that stop -------------------------------------------------- */

static int stop_at_second_faq(void *arg, const Helpwire__V1__Faq *fq)
{
    return ++(*(int *)arg) == 2 ? HW_STOP : 0;
}

static int stop_at_first_survey(void *arg, const Helpwire__V1__Survey *sv)
{
    (*(int *)arg)++;
    return HW_STOP;
}

static void test_a_visitor_that_stops_ends_the_iteration_without_error(void **state)
{
    fx *f = *state;
    survey_op op = {0};
    assert_int_equal(wr(f, knowledge_body, NULL), HW_OK);
    assert_int_equal(wr(f, surveys_body, &op), HW_OK);
    hw_store_txn *t = rd(f);
    hw_arena *ia = hw_arena_create(0);
    int count = 0;
    assert_int_equal(hw_store_faq_foreach(t, ia, stop_at_second_faq, &count), HW_OK);
    assert_int_equal(count, 2);
    count = 0;
    assert_int_equal(hw_store_survey_foreach_sent(t, 0, 0, ia, stop_at_first_survey, &count), HW_OK);
    assert_int_equal(count, 1);
    count = 0; /* a range that ends before the last survey stops the scan too */
    assert_int_equal(hw_store_survey_foreach_sent(t, 0, 2500, ia, stop_at_first_survey, &count), HW_OK);
    assert_int_equal(count, 1);
    hw_arena_destroy(ia);
    rd_end(f);
}

static int tokens_body(hw_store_txn *w, void *arg)
{
    int rc = HW_OK;
    for (int i = 0; rc == HW_OK && i < 3; i++) {
        char id[32], hash[32];
        snprintf(id, sizeof(id), "tok-%d", i);
        snprintf(hash, sizeof(hash), "secret-%d", i);
        Helpwire__V1__TokenInfo ti = HELPWIRE__V1__TOKEN_INFO__INIT;
        ti.id = id;
        ti.role = i == 0 ? HELPWIRE__V1__ROLE__ROLE_ADMIN : HELPWIRE__V1__ROLE__ROLE_AGENT;
        ti.agent_id = i == 0 ? "" : "agent-1";
        rc = hw_store_token_put(w, &ti, hash, strlen(hash), HW_PUT_CREATE);
    }
    if (rc == HW_OK) {
        /* Revoke tok-1: rewrite with the hash kept. */
        Helpwire__V1__TokenInfo *ti;
        rc = hw_store_token_get(w, "tok-1", hw_store_txn_arena(w), &ti);
        if (rc == HW_OK) {
            ti->revoked_unix_ms = 77;
            rc = hw_store_token_put(w, ti, NULL, 0, HW_PUT_REPLACE);
        }
    }
    if (rc == HW_OK)
        rc = hw_store_token_delete(w, "tok-2");
    return rc;
}

static void test_tokens_by_hash(void **state)
{
    fx *f = *state;
    assert_int_equal(wr(f, tokens_body, NULL), HW_OK);
    hw_store_txn *t = rd(f);
    Helpwire__V1__TokenInfo *ti, **tis;
    assert_int_equal(hw_store_token_get_by_hash(t, "secret-1", 8, f->st.a, &ti), HW_OK);
    assert_string_equal(ti->id, "tok-1");
    assert_int_equal(ti->revoked_unix_ms, 77);
    assert_int_equal(ti->role, HELPWIRE__V1__ROLE__ROLE_AGENT);
    assert_int_equal(hw_store_token_get_by_hash(t, "secret-2", 8, f->st.a, &ti), HW_ENOTFOUND);
    assert_int_equal(hw_store_token_get(t, "tok-2", f->st.a, &ti), HW_ENOTFOUND);
    hw_store_cursor cur = {0};
    size_t n;
    assert_int_equal(hw_store_token_list(t, &cur, 10, f->st.a, &tis, &n), HW_OK);
    assert_int_equal(n, 2);
    assert_string_equal(tis[0]->id, "tok-0");
    rd_end(f);
}

/* ---- outbox, dedupe, idempotency ------------------------------------------ */

typedef struct outbox_op {
    int step;
    uint64_t seqs[5];
} outbox_op;

static int outbox_body(hw_store_txn *w, void *arg)
{
    outbox_op *op = arg;
    int rc = HW_OK;
    if (op->step == 0) {
        for (int i = 0; rc == HW_OK && i < 5; i++) {
            Helpwire__V1__OutboundMessage m = HELPWIRE__V1__OUTBOUND_MESSAGE__INIT;
            m.channel =
                i < 3 ? HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM : HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP;
            m.channel_user_id = "u";
            m.text = "hi";
            m.attempt = 1;
            rc = hw_store_outbox_append(w, &m);
            op->seqs[i] = m.seq;
        }
    } else if (op->step == 1) {
        rc = hw_store_outbox_ack(w, HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, 2);
        if (rc == HW_OK && hw_store_outbox_ack(w, HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, 2) != HW_ENOTFOUND)
            return HW_EIO;
        Helpwire__V1__OutboundMessage *m;
        if (rc == HW_OK)
            rc =
                hw_store_outbox_get(w, HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, 3, hw_store_txn_arena(w), &m);
        if (rc == HW_OK) {
            m->attempt = 2;
            rc = hw_store_outbox_update(w, m);
        }
    }
    return rc;
}

static void test_outbox_sequences_per_channel_and_ack(void **state)
{
    fx *f = *state;
    outbox_op op = {0};
    assert_int_equal(wr(f, outbox_body, &op), HW_OK);
    assert_int_equal(op.seqs[0], 1);
    assert_int_equal(op.seqs[2], 3);
    assert_int_equal(op.seqs[3], 1); /* WhatsApp has its own sequence */
    op.step = 1;
    assert_int_equal(wr(f, outbox_body, &op), HW_OK);
    hw_store_txn *t = rd(f);
    Helpwire__V1__OutboundMessage **ms;
    size_t n;
    assert_int_equal(hw_store_outbox_list(t, HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, 0, 10, f->st.a, &ms, &n),
                     HW_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ms[0]->seq, 1);
    assert_int_equal(ms[1]->seq, 3);
    assert_int_equal(ms[1]->attempt, 2);
    assert_int_equal(hw_store_outbox_list(t, HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, 1, 10, f->st.a, &ms, &n),
                     HW_OK);
    assert_int_equal(n, 1);
    uint64_t backlog;
    assert_int_equal(hw_store_outbox_backlog(t, HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP, &backlog), HW_OK);
    assert_int_equal(backlog, 2);
    assert_int_equal(hw_store_outbox_backlog(t, 0, &backlog), HW_OK);
    assert_int_equal(backlog, 4);
    rd_end(f);
    /* Acknowledged sequences are never handed out again. */
    op.step = 0;
    assert_int_equal(wr(f, outbox_body, &op), HW_OK);
    assert_int_equal(op.seqs[0], 4);
}

typedef struct dedupe_op {
    int rc_dup, rc_idem_dup;
} dedupe_op;

static int dedupe_body(hw_store_txn *w, void *arg)
{
    dedupe_op *op = arg;
    int rc = hw_store_dedupe_put(w, HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, "msg-1", "\x08\x02", 2, 1000);
    if (rc)
        return rc;
    op->rc_dup = hw_store_dedupe_put(w, HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, "msg-1", "x", 1, 2000);
    if ((rc = hw_store_idempotency_put(w, "key-1", "t-1000")))
        return rc;
    op->rc_idem_dup = hw_store_idempotency_put(w, "key-1", "t-1001");
    return HW_OK;
}

static void test_dedupe_and_idempotency_keep_the_first(void **state)
{
    fx *f = *state;
    dedupe_op op;
    assert_int_equal(wr(f, dedupe_body, &op), HW_OK);
    assert_int_equal(op.rc_dup, HW_EEXISTS);
    assert_int_equal(op.rc_idem_dup, HW_EEXISTS);
    hw_store_txn *t = rd(f);
    void *reply;
    size_t len;
    char *tid;
    assert_int_equal(
        hw_store_dedupe_get(t, HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, "msg-1", f->st.a, &reply, &len), HW_OK);
    assert_int_equal(len, 2);
    assert_memory_equal(reply, "\x08\x02", 2);
    assert_int_equal(
        hw_store_dedupe_get(t, HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP, "msg-1", f->st.a, &reply, &len),
        HW_ENOTFOUND);
    assert_int_equal(hw_store_idempotency_get(t, "key-1", f->st.a, &tid), HW_OK);
    assert_string_equal(tid, "t-1000");
    rd_end(f);
}

/* Ten routings at 1000, 2000, ... 10000 ms, and one record as an earlier
 * version wrote it (the reply alone, no time). */
static int dedupe_seed(hw_store_txn *w, void *arg)
{
    (void)arg;
    for (int i = 0; i < 10; i++) {
        char id[16];
        snprintf(id, sizeof id, "m-%d", i);
        int rc = hw_store_dedupe_put(w, HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, id, "\x08\x01", 2,
                                     1000 * (i + 1));
        if (rc)
            return rc;
    }
    /* key: channel byte, then the message id */
    return hw_store__put(w, HW_DB_DEDUPE, "\x02legacy", 7, "\x08\x03", 2, 0);
}

typedef struct sweep_op {
    hw_dedupe_sweep sw;
    size_t max_visit;
    int64_t cutoff, now;
    size_t deleted;
} sweep_op;

static int dedupe_sweep_body(hw_store_txn *w, void *arg)
{
    sweep_op *op = arg;
    hw_dedupe_sweep sw = op->sw; /* kept only if the write commits */
    int rc = hw_store_dedupe_sweep(w, &sw, op->max_visit, op->cutoff, op->now, &op->deleted);
    if (rc == HW_OK)
        op->sw = sw;
    return rc;
}

static bool dedupe_has(fx *f, const char *id, const char *want)
{
    hw_store_txn *t = rd(f);
    void *reply;
    size_t len;
    int rc = hw_store_dedupe_get(t, HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM, id, f->st.a, &reply, &len);
    rd_end(f);
    if (rc == HW_ENOTFOUND)
        return false;
    assert_int_equal(rc, HW_OK);
    assert_int_equal(len, 2);
    assert_memory_equal(reply, want, 2); /* the reply, without the time in front */
    return true;
}

static void test_dedupe_sweep_deletes_what_is_past_retention(void **state)
{
    fx *f = *state;
    assert_int_equal(wr(f, dedupe_seed, NULL), HW_OK);
    assert_true(dedupe_has(f, "legacy", "\x08\x03")); /* earlier records still read */
    /* Three records per sweep: the position carries over between sweeps. */
    sweep_op op = {.max_visit = 3, .cutoff = 5500, .now = 20000};
    size_t deleted = 0;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(wr(f, dedupe_sweep_body, &op), HW_OK);
        deleted += op.deleted;
    }
    assert_int_equal(op.sw.passes, 1);
    assert_int_equal(deleted, 5); /* m-0 .. m-4 routed before 5500 */
    for (int i = 0; i < 10; i++) {
        char id[16];
        snprintf(id, sizeof id, "m-%d", i);
        assert_int_equal(dedupe_has(f, id, "\x08\x01"), i >= 5);
    }
    /* The earlier record was given the sweep's time (20000), not dropped. */
    assert_true(dedupe_has(f, "legacy", "\x08\x03"));
    op.cutoff = 20000;
    op.max_visit = 100;
    assert_int_equal(wr(f, dedupe_sweep_body, &op), HW_OK);
    assert_int_equal(op.deleted, 5);
    assert_true(dedupe_has(f, "legacy", "\x08\x03"));
    op.cutoff = 20001;
    assert_int_equal(wr(f, dedupe_sweep_body, &op), HW_OK);
    assert_int_equal(op.deleted, 1);
    assert_false(dedupe_has(f, "legacy", "\x08\x03"));
    /* An empty table: a sweep is a complete pass that deletes nothing. */
    uint64_t passes = op.sw.passes;
    assert_int_equal(wr(f, dedupe_sweep_body, &op), HW_OK);
    assert_int_equal(op.deleted, 0);
    assert_int_equal(op.sw.passes, passes + 1);
}

/* ---- failed outbox messages ---------------------------------------------- */

typedef struct failed_op {
    int step; /* 0: put five; 1: a second put of one; 2: delete one; 3: prune; 4: retire one */
    int rc_dup, rc_del_again, rc_put_retired, rc_get_retired, rc_retire_again;
    int64_t cutoff;
    size_t max_delete, deleted;
} failed_op;

static int failed_put(hw_store_txn *w, Helpwire__V1__Channel ch, uint64_t seq, int64_t at)
{
    Helpwire__V1__OutboundMessage m = HELPWIRE__V1__OUTBOUND_MESSAGE__INIT;
    m.seq = seq;
    m.channel = ch;
    m.channel_user_id = (char *)"u-1";
    m.text = (char *)"hello";
    m.attempt = 2;
    Helpwire__V1__FailedEntry e = HELPWIRE__V1__FAILED_ENTRY__INIT;
    e.message = &m;
    e.reason = (char *)"telegram 403: Forbidden";
    e.failed_unix_ms = at;
    return hw_store_failed_put(w, &e);
}

static int failed_body(hw_store_txn *w, void *arg)
{
    failed_op *op = arg;
    const Helpwire__V1__Channel tg = HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM,
                                wa = HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP;
    int rc = HW_OK;
    switch (op->step) {
    case 0: /* failed at 1000, 3000, 2000 (Telegram), 2500, 3000 (WhatsApp) */
        if ((rc = failed_put(w, tg, 1, 1000)) || (rc = failed_put(w, tg, 2, 3000)) ||
            (rc = failed_put(w, tg, 5, 2000)) || (rc = failed_put(w, wa, 1, 2500)) ||
            (rc = failed_put(w, wa, 7, 3000)))
            return rc;
        return HW_OK;
    case 1:
        op->rc_dup = failed_put(w, tg, 2, 9999);
        return HW_OK;
    case 2:
        if ((rc = hw_store_failed_delete(w, tg, 5)))
            return rc;
        op->rc_del_again = hw_store_failed_delete(w, tg, 5);
        return HW_OK;
    case 4: /* Telegram 2 is queued again at 4000 */
        if ((rc = hw_store_failed_retire(w, tg, 2, 4000)))
            return rc;
        op->rc_put_retired = failed_put(w, tg, 2, 5000);
        op->rc_retire_again = hw_store_failed_retire(w, tg, 2, 4000);
        op->rc_del_again = hw_store_failed_delete(w, tg, 2);
        Helpwire__V1__FailedEntry *e;
        op->rc_get_retired = hw_store_failed_get(w, tg, 2, hw_store_txn_arena(w), &e);
        return HW_OK;
    case 5: /* after the marker is pruned */
        op->rc_put_retired = failed_put(w, tg, 2, 6000);
        return HW_OK;
    default:
        return hw_store_failed_prune(w, op->cutoff, op->max_delete, &op->deleted);
    }
}

/* The (channel, seq) pairs of a whole listing, paged by two. */
static size_t failed_listing(fx *f, Helpwire__V1__Channel ch, unsigned got[][2], size_t max)
{
    hw_store_cursor cur = {0};
    size_t total = 0;
    do {
        hw_store_txn *t = rd(f);
        Helpwire__V1__FailedEntry **es;
        size_t n;
        assert_int_equal(hw_store_failed_list(t, ch, &cur, 2, f->st.a, &es, &n), HW_OK);
        for (size_t i = 0; i < n && total < max; i++, total++) {
            got[total][0] = (unsigned)es[i]->message->channel;
            got[total][1] = (unsigned)es[i]->message->seq;
            assert_string_equal(es[i]->reason, "telegram 403: Forbidden");
            assert_int_equal(es[i]->message->attempt, 2);
        }
        rd_end(f);
    } while (cur.len);
    return total;
}

static void test_failed_entries_listed_newest_first_per_channel_and_pruned(void **state)
{
    fx *f = *state;
    const Helpwire__V1__Channel tg = HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM,
                                wa = HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP;
    failed_op op = {0};
    assert_int_equal(wr(f, failed_body, &op), HW_OK);
    unsigned got[8][2];
    /* Every channel: by failure time, newest first; equal times by channel
     * then sequence, descending (WhatsApp is 1, Telegram 2). */
    assert_int_equal(failed_listing(f, 0, got, 8), 5);
    const unsigned all[5][2] = {{tg, 2}, {wa, 7}, {wa, 1}, {tg, 5}, {tg, 1}};
    assert_memory_equal(got, all, sizeof all);
    assert_int_equal(failed_listing(f, tg, got, 8), 3);
    const unsigned tgs[3][2] = {{tg, 2}, {tg, 5}, {tg, 1}};
    assert_memory_equal(got, tgs, sizeof tgs);
    assert_int_equal(failed_listing(f, HELPWIRE__V1__CHANNEL__CHANNEL_WEBCHAT, got, 8), 0);

    /* A cursor of one channel's listing is refused by another's. */
    hw_store_cursor cur = {0};
    hw_store_txn *t = rd(f);
    Helpwire__V1__FailedEntry **es;
    size_t n;
    assert_int_equal(hw_store_failed_list(t, tg, &cur, 1, f->st.a, &es, &n), HW_OK);
    assert_int_not_equal(cur.len, 0);
    assert_int_equal(hw_store_failed_list(t, wa, &cur, 1, f->st.a, &es, &n), HW_EINVALID);
    uint64_t count;
    assert_int_equal(hw_store_failed_count(t, 0, &count), HW_OK);
    assert_int_equal(count, 5);
    assert_int_equal(hw_store_failed_count(t, wa, &count), HW_OK);
    assert_int_equal(count, 2);
    Helpwire__V1__FailedEntry *e;
    assert_int_equal(hw_store_failed_get(t, wa, 7, f->st.a, &e), HW_OK);
    assert_int_equal(e->failed_unix_ms, 3000);
    assert_string_equal(e->message->channel_user_id, "u-1");
    assert_int_equal(hw_store_failed_get(t, wa, 2, f->st.a, &e), HW_ENOTFOUND);
    rd_end(f);

    /* A sequence is in the list once: a second put changes nothing. */
    op.step = 1;
    assert_int_equal(wr(f, failed_body, &op), HW_OK);
    assert_int_equal(op.rc_dup, HW_EEXISTS);
    assert_int_equal(failed_listing(f, 0, got, 8), 5);
    assert_int_equal(got[0][1], 2);

    /* Delete takes the record and both index entries. */
    op.step = 2;
    assert_int_equal(wr(f, failed_body, &op), HW_OK);
    assert_int_equal(op.rc_del_again, HW_ENOTFOUND);
    assert_int_equal(failed_listing(f, tg, got, 8), 2);
    assert_int_equal(failed_listing(f, 0, got, 8), 4);

    /* Prune: failed before the cutoff, oldest first, at most max_delete. */
    op = (failed_op){.step = 3, .cutoff = 3000, .max_delete = 1};
    assert_int_equal(wr(f, failed_body, &op), HW_OK);
    assert_int_equal(op.deleted, 1); /* Telegram 1, failed at 1000 */
    op.max_delete = 100;
    assert_int_equal(wr(f, failed_body, &op), HW_OK);
    assert_int_equal(op.deleted, 1); /* WhatsApp 1, at 2500; the two at 3000 stay */
    assert_int_equal(failed_listing(f, 0, got, 8), 2);
    const unsigned left[2][2] = {{tg, 2}, {wa, 7}};
    assert_memory_equal(got, left, sizeof left);
    assert_int_equal(wr(f, failed_body, &op), HW_OK);
    assert_int_equal(op.deleted, 0);

    /* Retired (queued again): gone from get, list and count, and a late
     * report of the same sequence is refused while the marker stays. */
    op = (failed_op){.step = 4};
    assert_int_equal(wr(f, failed_body, &op), HW_OK);
    assert_int_equal(op.rc_put_retired, HW_EEXISTS);
    assert_int_equal(op.rc_retire_again, HW_ENOTFOUND);
    assert_int_equal(op.rc_del_again, HW_ENOTFOUND);
    assert_int_equal(op.rc_get_retired, HW_ENOTFOUND);
    assert_int_equal(failed_listing(f, 0, got, 8), 1);
    assert_int_equal(got[0][1], 7);
    t = rd(f);
    assert_int_equal(hw_store_failed_count(t, 0, &count), HW_OK);
    assert_int_equal(count, 1);
    assert_int_equal(hw_store_failed_count(t, tg, &count), HW_OK);
    assert_int_equal(count, 0);
    rd_end(f);
    /* The marker goes with entries past the same cutoff, uncounted. */
    op = (failed_op){.step = 3, .cutoff = 4001, .max_delete = 100};
    assert_int_equal(wr(f, failed_body, &op), HW_OK);
    assert_int_equal(op.deleted, 1); /* WhatsApp 7, failed at 3000 */
    assert_int_equal(failed_listing(f, 0, got, 8), 0);
    op.step = 5;
    assert_int_equal(wr(f, failed_body, &op), HW_OK);
    assert_int_equal(op.rc_put_retired, HW_OK);
    assert_int_equal(failed_listing(f, tg, got, 8), 1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_customer_put_get_lookup_update_delete),
        T(test_agents_and_skills_listed_by_skill_and_presence),
        T(test_tickets_listed_by_every_index_newest_first),
        T(test_ticket_cursor_never_repeats_while_tickets_change),
        T(test_ticket_events_and_messages_in_order_and_deleted_with_ticket),
        cmocka_unit_test(test_schema1_ticket_logs_are_migrated),
        cmocka_unit_test(test_interrupted_migration_resumes),
        cmocka_unit_test(test_general_is_marked_default_at_open_when_nothing_is),
        cmocka_unit_test(test_channel_load_is_counted_at_open),
        T(test_articles_and_faqs_by_locale_and_iterated),
        T(test_surveys_by_token_and_sent_time),
        T(test_a_visitor_that_stops_ends_the_iteration_without_error),
        T(test_tokens_by_hash),
        T(test_outbox_sequences_per_channel_and_ack),
        T(test_dedupe_and_idempotency_keep_the_first),
        T(test_dedupe_sweep_deletes_what_is_past_retention),
        T(test_failed_entries_listed_newest_first_per_channel_and_pruned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
