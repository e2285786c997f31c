/*
 * effects_test: the after-commit effects (server/domain/effects.c). A
 * write's effects reach the sinks only once the write committed (a sink
 * already reads the change from the store), in the documented order, once;
 * a write that failed hands nothing to anyone; a rerun of the write fn
 * forgets the rolled-back run's effects; wake-ups are merged; a refreshed
 * ticket updates only its own events' snapshots.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/domain/effects.h"
#include "tests/unit/store_test_util.h"

#define TG HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM
#define WA HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP
#define WEB HELPWIRE__V1__CHANNEL__CHANNEL_WEBCHAT

/* ------------------------------------------------------ recording sinks */

/* What the sinks saw, in order: one letter per call ('E' events, 'O'
 * outbox appended, 'A' acked, 'N' notifier, 'S' skills). */
typedef struct {
    char calls[64];
    size_t n_calls;
    const char *event_ids[16];
    size_t n_events;
    Helpwire__V1__Channel appended[8], acked[8];
    size_t n_appended, n_acked;
    /* For the store test: the value the sink read back, "" if none. */
    hw_store *s;
    hw_store_reader *r;
    hw_arena *a;
    char seen[32];
} record;

static void note(record *rec, char c)
{
    assert_true(rec->n_calls < sizeof rec->calls - 1);
    rec->calls[rec->n_calls++] = c;
}

static void on_events(void *ctx, Helpwire__V1__TicketEvent *const *events, size_t n)
{
    record *rec = ctx;
    note(rec, 'E');
    for (size_t i = 0; i < n && rec->n_events < 16; i++)
        rec->event_ids[rec->n_events++] = events[i]->ticket_id;
}

static void on_appended(void *ctx, Helpwire__V1__Channel ch)
{
    record *rec = ctx;
    note(rec, 'O');
    rec->appended[rec->n_appended++] = ch;
}

static void on_acked(void *ctx, Helpwire__V1__Channel ch)
{
    record *rec = ctx;
    note(rec, 'A');
    rec->acked[rec->n_acked++] = ch;
}

static void on_alert(void *ctx)
{
    note(ctx, 'N');
}

static void on_skills(void *ctx)
{
    note(ctx, 'S');
}

static void on_synonyms(void *ctx)
{
    note(ctx, 'Y');
}

static int64_t timer_due_seen;

static void on_timer(void *ctx, int64_t due)
{
    note(ctx, 'T');
    timer_due_seen = due;
}

static hw_effects_sinks sinks_for(record *rec)
{
    return (hw_effects_sinks){.ctx = rec,
                              .ticket_events = on_events,
                              .outbox_appended = on_appended,
                              .outbox_acked = on_acked,
                              .alert_queued = on_alert,
                              .skills_changed = on_skills,
                              .synonyms_changed = on_synonyms};
}

static Helpwire__V1__TicketEvent *event(hw_arena *a, const char *ticket_id, uint64_t version)
{
    Helpwire__V1__TicketEvent *e = hw_arena_alloc(a, sizeof *e);
    Helpwire__V1__Ticket *t = hw_arena_alloc(a, sizeof *t);
    assert_non_null(e);
    assert_non_null(t);
    helpwire__v1__ticket_event__init(e);
    helpwire__v1__ticket__init(t);
    e->ticket_id = t->id = (char *)ticket_id;
    t->version = version;
    e->ticket = t;
    return e;
}

/* Records one of each kind: two events, two channels (one twice), an
 * acknowledgement, an alert, a skill change. */
static void record_everything(hw_effects *fx, hw_arena *a)
{
    assert_int_equal(hw_effects_ticket_event(fx, event(a, "t-1000", 2)), HW_OK);
    hw_effects_outbox_appended(fx, WEB);
    assert_int_equal(hw_effects_ticket_event(fx, event(a, "t-1001", 5)), HW_OK);
    hw_effects_outbox_appended(fx, TG);
    hw_effects_outbox_appended(fx, WEB);
    hw_effects_outbox_acked(fx, WA);
    hw_effects_alert_queued(fx);
    hw_effects_skills_changed(fx);
}

/* ------------------------------------------------------------ pure tests */

static void committed_effects_reach_every_sink_in_order(void **state)
{
    (void)state;
    hw_arena *a = hw_arena_create(0);
    record rec = {0};
    hw_effects_sinks sinks = sinks_for(&rec);
    hw_effects fx;
    hw_effects_begin(&fx, a);
    record_everything(&fx, a);
    assert_false(hw_effects_empty(&fx));

    hw_effects_run(&fx, &sinks, HW_OK);
    /* Events first (one batch, recording order), then the channels (each
     * once, by channel value), the acknowledgements, the notifier, the
     * skill models. */
    rec.calls[rec.n_calls] = '\0';
    assert_string_equal(rec.calls, "EOOANS");
    assert_int_equal(rec.n_events, 2);
    assert_string_equal(rec.event_ids[0], "t-1000");
    assert_string_equal(rec.event_ids[1], "t-1001");
    assert_int_equal(rec.n_appended, 2);
    assert_int_equal(rec.appended[0], TG);
    assert_int_equal(rec.appended[1], WEB);
    assert_int_equal(rec.n_acked, 1);
    assert_int_equal(rec.acked[0], WA);
    assert_true(hw_effects_empty(&fx));
    hw_arena_destroy(a);
}

static void failed_write_hands_nothing_to_any_sink(void **state)
{
    (void)state;
    hw_arena *a = hw_arena_create(0);
    static const int failures[] = {HW_EPRECONDITION, HW_ENOTFOUND, HW_EIO, HW_ENOSPACE, HW_EFULL};
    for (size_t i = 0; i < sizeof failures / sizeof failures[0]; i++) {
        record rec = {0};
        hw_effects_sinks sinks = sinks_for(&rec);
        hw_effects fx;
        hw_effects_begin(&fx, a);
        record_everything(&fx, a);
        hw_effects_run(&fx, &sinks, failures[i]);
        assert_int_equal(rec.n_calls, 0);
        assert_true(hw_effects_empty(&fx)); /* dropped, not kept for later */
    }
    hw_arena_destroy(a);
}

static void effects_run_at_most_once(void **state)
{
    (void)state;
    hw_arena *a = hw_arena_create(0);
    record rec = {0};
    hw_effects_sinks sinks = sinks_for(&rec);
    hw_effects fx;
    hw_effects_begin(&fx, a);
    record_everything(&fx, a);
    hw_effects_run(&fx, &sinks, HW_OK);
    size_t calls = rec.n_calls;
    hw_effects_run(&fx, &sinks, HW_OK);
    assert_int_equal(rec.n_calls, calls);
    hw_arena_destroy(a);
}

static void rerun_of_write_fn_forgets_rolled_back_effects(void **state)
{
    (void)state;
    hw_arena *a = hw_arena_create(0);
    record rec = {0};
    hw_effects_sinks sinks = sinks_for(&rec);
    hw_effects fx;
    hw_effects_begin(&fx, a); /* first run: rolled back by the store */
    record_everything(&fx, a);
    hw_effects_begin(&fx, a); /* second run: only one event this time */
    assert_int_equal(hw_effects_ticket_event(&fx, event(a, "t-2000", 1)), HW_OK);
    hw_effects_run(&fx, &sinks, HW_OK);
    rec.calls[rec.n_calls] = '\0';
    assert_string_equal(rec.calls, "E");
    assert_int_equal(rec.n_events, 1);
    assert_string_equal(rec.event_ids[0], "t-2000");
    hw_arena_destroy(a);
}

static void missing_sinks_drop_their_kind_only(void **state)
{
    (void)state;
    hw_arena *a = hw_arena_create(0);
    record rec = {0};
    hw_effects_sinks sinks = {.ctx = &rec, .alert_queued = on_alert};
    hw_effects fx;
    hw_effects_begin(&fx, a);
    record_everything(&fx, a);
    hw_effects_run(&fx, &sinks, HW_OK);
    rec.calls[rec.n_calls] = '\0';
    assert_string_equal(rec.calls, "N");
    hw_effects_begin(&fx, a);
    record_everything(&fx, a);
    hw_effects_run(&fx, NULL, HW_OK); /* a tool with no hubs at all */
    assert_true(hw_effects_empty(&fx));
    hw_arena_destroy(a);
}

static void many_events_keep_recording_order(void **state)
{
    (void)state;
    hw_arena *a = hw_arena_create(0);
    static const char *const ids[] = {"t-1", "t-2", "t-3", "t-4",  "t-5",  "t-6",
                                      "t-7", "t-8", "t-9", "t-10", "t-11", "t-12"};
    hw_effects fx;
    hw_effects_begin(&fx, a);
    for (size_t i = 0; i < 12; i++) /* past the first array of 8 */
        assert_int_equal(hw_effects_ticket_event(&fx, event(a, ids[i], 1)), HW_OK);
    record rec = {0};
    hw_effects_sinks sinks = sinks_for(&rec);
    hw_effects_run(&fx, &sinks, HW_OK);
    assert_int_equal(rec.n_events, 12);
    for (size_t i = 0; i < 12; i++)
        assert_string_equal(rec.event_ids[i], ids[i]);
    hw_arena_destroy(a);
}

static void event_without_arena_is_refused(void **state)
{
    (void)state;
    hw_effects fx;
    hw_effects_begin(&fx, NULL);
    hw_effects_outbox_appended(&fx, TG); /* wake-ups need no memory */
    assert_int_equal(hw_effects_ticket_event(&fx, NULL), HW_ENOMEM);
    assert_int_equal(fx.n_events, 0);
    assert_int_equal(fx.outbox_appended, 1u << TG);
}

static void refresh_updates_only_that_tickets_snapshots(void **state)
{
    (void)state;
    hw_arena *a = hw_arena_create(0);
    hw_effects fx;
    hw_effects_begin(&fx, a);
    Helpwire__V1__TicketEvent *e1 = event(a, "t-1000", 1), *e2 = event(a, "t-1001", 1),
                              *e3 = event(a, "t-1000", 1);
    assert_int_equal(hw_effects_ticket_event(&fx, e1), HW_OK);
    assert_int_equal(hw_effects_ticket_event(&fx, e2), HW_OK);
    assert_int_equal(hw_effects_ticket_event(&fx, e3), HW_OK);
    Helpwire__V1__Ticket now = HELPWIRE__V1__TICKET__INIT;
    now.id = "t-1000";
    now.version = 4;
    hw_effects_refresh_ticket(&fx, &now);
    assert_int_equal(e1->ticket->version, 4);
    assert_int_equal(e3->ticket->version, 4);
    assert_int_equal(e2->ticket->version, 1);
    now.version = 5; /* a copy: the caller's ticket may change again */
    assert_int_equal(e1->ticket->version, 4);
    hw_arena_destroy(a);
}

static void out_of_range_channel_is_ignored(void **state)
{
    (void)state;
    hw_effects fx;
    hw_effects_begin(&fx, NULL);
    hw_effects_outbox_appended(&fx, (Helpwire__V1__Channel)HW_EFFECTS_MAX_CHANNEL);
    hw_effects_outbox_acked(&fx, (Helpwire__V1__Channel)1000);
    assert_true(hw_effects_empty(&fx));
}

/* ------------------------------------------------- on a real store */

typedef struct {
    record *rec;
    hw_effects fx;
    const char *value;
    int fail_with; /* the fn refuses with this after writing, or 0 */
    int status;
    int runs;
} write_ctx;

/* The sink of the store test: reads the key back through a reader, which
 * sees only committed data. */
static void read_back(void *ctx)
{
    record *rec = ctx;
    note(rec, 'N');
    hw_store_txn *t;
    assert_int_equal(hw_store_read_begin(rec->r, &t), HW_OK);
    void *val = NULL;
    size_t len = 0;
    int rc = hw_store_kv_get(t, "effects-test", "k", 1, rec->a, &val, &len);
    snprintf(rec->seen, sizeof rec->seen, "%s", rc == HW_OK ? (const char *)val : "");
    hw_store_read_end(rec->r);
}

static int kv_fn(hw_store_txn *w, void *arg)
{
    write_ctx *c = arg;
    c->runs++;
    hw_effects_begin(&c->fx, NULL);
    int rc = hw_store_kv_put(w, "effects-test", "k", 1, c->value, strlen(c->value) + 1);
    if (rc != HW_OK)
        return rc;
    hw_effects_alert_queued(&c->fx);
    return c->fail_with;
}

static void kv_done(void *arg, int status)
{
    write_ctx *c = arg;
    hw_effects_sinks sinks = {.ctx = c->rec, .alert_queued = read_back};
    hw_effects_run(&c->fx, &sinks, status);
    c->status = status;
}

/* hw_store_submit, then waits for done with a second (empty) write: the
 * writer calls done callbacks in order. */
static int empty_fn(hw_store_txn *w, void *arg)
{
    (void)w;
    (void)arg;
    return HW_OK;
}

static void submit_and_wait(hw_store *s, write_ctx *c)
{
    assert_int_equal(hw_store_submit(s, kv_fn, kv_done, c), HW_OK);
    assert_int_equal(hw_store_write(s, empty_fn, NULL), HW_OK);
}

static void effects_run_only_after_the_commit_and_never_after_a_failure(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    hw_test_dir(dir, sizeof dir, "effects");
    hw_store *s = hw_test_open(dir, 0, 0);
    assert_non_null(s);
    record rec = {.s = s, .a = hw_arena_create(0)};
    assert_int_equal(hw_store_reader_create(s, &rec.r), HW_OK);

    /* Committed: the sink runs once, and already reads the new value. */
    write_ctx ok = {.rec = &rec, .value = "first"};
    submit_and_wait(s, &ok);
    assert_int_equal(ok.status, HW_OK);
    assert_int_equal(rec.n_calls, 1);
    assert_string_equal(rec.seen, "first");

    /* Refused by its fn: rolled back, and the sink never runs. */
    write_ctx refused = {.rec = &rec, .value = "second", .fail_with = HW_EPRECONDITION};
    submit_and_wait(s, &refused);
    assert_int_equal(refused.status, HW_EPRECONDITION);
    assert_true(refused.runs >= 1);
    assert_int_equal(rec.n_calls, 1);

    /* The store still holds the committed value only. */
    read_back(&rec);
    assert_string_equal(rec.seen, "first");

    hw_store_reader_destroy(rec.r);
    hw_store_close(s);
    hw_arena_destroy(rec.a);
}

/* Timers set by one write: the sink hears the earliest due time once,
 * after the other kinds; a failed write tells it nothing. The write's time
 * is the one set on it, or the real clock when none was. */
static void timers_sink_gets_the_earliest_due_time(void **state)
{
    (void)state;
    record rec = {0};
    hw_effects_sinks sinks = sinks_for(&rec);
    sinks.timer_set = on_timer;
    hw_effects fx;
    hw_effects_begin(&fx, NULL);
    assert_true(hw_effects_empty(&fx));
    hw_effects_timer_set(&fx, 5000);
    hw_effects_timer_set(&fx, 3000);
    hw_effects_timer_set(&fx, 9000);
    hw_effects_skills_changed(&fx);
    assert_false(hw_effects_empty(&fx));
    timer_due_seen = 0;
    hw_effects_run(&fx, &sinks, HW_OK);
    assert_string_equal(rec.calls, "ST");
    assert_int_equal(timer_due_seen, 3000);
    assert_true(hw_effects_empty(&fx));

    rec.n_calls = 0;
    memset(rec.calls, 0, sizeof rec.calls);
    hw_effects_timer_set(&fx, 1000);
    hw_effects_run(&fx, &sinks, HW_EIO);
    assert_int_equal(rec.n_calls, 0);

    hw_effects_begin(&fx, NULL);
    hw_effects_set_now(&fx, 1767225600000);
    assert_int_equal(hw_effects_now_ms(&fx), 1767225600000);
    hw_effects_begin(&fx, NULL); /* a new run forgets it: the real clock */
    assert_true(hw_effects_now_ms(&fx) > 1767225600000);
}


/* ------------------------------------------------- the replicated note */

/* A full ticket event: every field of the event and of its snapshot set,
 * so a field the note dropped shows in the packed comparison. */
static Helpwire__V1__TicketEvent *full_event(hw_arena *a, size_t i)
{
    Helpwire__V1__TicketEvent *e = hw_arena_alloc(a, sizeof *e);
    Helpwire__V1__Ticket *t = hw_arena_alloc(a, sizeof *t);
    assert_non_null(e);
    assert_non_null(t);
    helpwire__v1__ticket_event__init(e);
    helpwire__v1__ticket__init(t);
    t->id = hw_arena_printf(a, "t-%zu", 1000 + i);
    t->number = 1000 + i;
    t->subject = hw_arena_printf(a, "subject %zu: 无法登录", i);
    t->customer_id = hw_arena_printf(a, "c-%zu", i);
    t->queue = "technical";
    t->assignee_agent_id = i % 2 ? "alice" : "";
    t->priority = HELPWIRE__V1__PRIORITY__PRIORITY_HIGH;
    t->version = 7 + i;
    t->created_unix_ms = 1700000000000 + (int64_t)i;
    t->escalated_unix_ms = i % 3 ? 1700000001000 : 0;
    e->ticket_id = t->id;
    e->ticket = t;
    e->kind = HELPWIRE__V1__TICKET_EVENT_KIND__TICKET_EVENT_KIND_ALERT_DELIVERED;
    e->actor = "system";
    e->detail = hw_arena_printf(a, "HTTP 200 (attempt %zu)", i);
    e->at_unix_ms = 1700000002000 + (int64_t)i;
    e->seq = 3 + i;
    return e;
}

static void assert_same_message(const ProtobufCMessage *x, const ProtobufCMessage *y)
{
    size_t nx = protobuf_c_message_get_packed_size(x), ny = protobuf_c_message_get_packed_size(y);
    assert_int_equal(nx, ny);
    uint8_t *bx = malloc(nx + 1), *by = malloc(ny + 1);
    protobuf_c_message_pack(x, bx);
    protobuf_c_message_pack(y, by);
    assert_memory_equal(bx, by, nx);
    free(bx);
    free(by);
}

/* Effects with every kind and field set: 200 events, masks, flags, the
 * timer, the time, knowledge puts and deletes. */
static void fill_everything(hw_effects *fx, hw_arena *a)
{
    hw_effects_begin(fx, a);
    for (size_t i = 0; i < 200; i++)
        assert_int_equal(hw_effects_ticket_event(fx, full_event(a, i)), HW_OK);
    hw_effects_outbox_appended(fx, WEB);
    hw_effects_outbox_appended(fx, TG);
    hw_effects_outbox_acked(fx, WA);
    hw_effects_alert_queued(fx);
    hw_effects_skills_changed(fx);
    hw_effects_timer_set(fx, 1700000009999);
    hw_effects_synonyms_changed(fx);
    hw_effects_set_now(fx, 1700000005555);
    assert_int_equal(
        hw_effects_knowledge_changed(fx, HELPWIRE__V1__DOC_KIND__DOC_KIND_ARTICLE, "a-1", false), HW_OK);
    assert_int_equal(
        hw_effects_knowledge_changed(fx, HELPWIRE__V1__DOC_KIND__DOC_KIND_FAQ, "faq-reset-password", true),
        HW_OK);
    for (int i = 0; i < 10; i++) {
        char id[16];
        snprintf(id, sizeof id, "f-%d", i);
        assert_int_equal(hw_effects_knowledge_changed(fx, HELPWIRE__V1__DOC_KIND__DOC_KIND_FAQ, id, false),
                         HW_OK);
    }
}

static void note_round_trip_keeps_every_field(void **state)
{
    (void)state;
    hw_arena *a = hw_arena_create(0), *b = hw_arena_create(0);
    hw_effects fx, back;
    fill_everything(&fx, a);
    void *note;
    size_t len;
    assert_int_equal(hw_effects_encode(&fx, a, &note, &len), HW_OK);
    assert_true(len > 200);
    assert_int_equal(((uint8_t *)note)[0], HW_EFFECTS_NOTE_VERSION);
    assert_int_equal(hw_effects_decode(&back, b, note, len), HW_OK);

    assert_int_equal(back.n_events, fx.n_events);
    for (size_t i = 0; i < fx.n_events; i++) {
        assert_non_null(back.events[i]->ticket);
        assert_string_equal(back.events[i]->ticket_id, fx.events[i]->ticket_id);
        assert_string_equal(back.events[i]->ticket->subject, fx.events[i]->ticket->subject);
        assert_same_message(&back.events[i]->base, &fx.events[i]->base);
    }
    assert_int_equal(back.outbox_appended, fx.outbox_appended);
    assert_int_equal(back.outbox_acked, fx.outbox_acked);
    assert_true(back.alert_queued);
    assert_true(back.skills_changed);
    assert_true(back.synonyms_changed);
    assert_int_equal(back.timer_due_ms, 1700000009999);
    assert_int_equal(back.now_ms, 1700000005555);
    assert_int_equal(back.n_docs, 12);
    assert_int_equal(back.docs[0].kind, HELPWIRE__V1__DOC_KIND__DOC_KIND_ARTICLE);
    assert_string_equal(back.docs[0].id, "a-1");
    assert_false(back.docs[0].deleted);
    assert_int_equal(back.docs[1].kind, HELPWIRE__V1__DOC_KIND__DOC_KIND_FAQ);
    assert_string_equal(back.docs[1].id, "faq-reset-password");
    assert_true(back.docs[1].deleted);
    assert_string_equal(back.docs[11].id, "f-9");
    assert_null(back.app);

    /* Decoded effects run like recorded ones: same sinks, same order. */
    record rec = {0};
    hw_effects_sinks sk = sinks_for(&rec);
    sk.timer_set = on_timer;
    hw_effects_run(&back, &sk, HW_OK);
    assert_string_equal(rec.calls, "EOOANSTY"); /* the synonym reload last */
    assert_int_equal(rec.n_events, 16);
    assert_string_equal(rec.event_ids[15], "t-1015");

    /* Nothing recorded but the flags and the time: still round-trips. */
    hw_effects_begin(&fx, a);
    hw_effects_alert_queued(&fx);
    assert_int_equal(hw_effects_encode(&fx, a, &note, &len), HW_OK);
    assert_int_equal(hw_effects_decode(&back, b, note, len), HW_OK);
    assert_true(back.alert_queued);
    assert_false(back.skills_changed);
    assert_false(back.synonyms_changed);
    assert_int_equal(back.n_events, 0);
    assert_int_equal(back.n_docs, 0);

    /* A synonym change alone is an effect (it makes a note) and round-trips. */
    hw_effects_begin(&fx, a);
    assert_true(hw_effects_empty(&fx));
    hw_effects_synonyms_changed(&fx);
    assert_false(hw_effects_empty(&fx));
    assert_int_equal(hw_effects_encode(&fx, a, &note, &len), HW_OK);
    assert_int_equal(hw_effects_decode(&back, b, note, len), HW_OK);
    assert_true(back.synonyms_changed);
    assert_false(back.alert_queued);
    record only = {0};
    hw_effects_sinks osk = sinks_for(&only);
    hw_effects_run(&back, &osk, HW_OK);
    assert_string_equal(only.calls, "Y");
    hw_arena_destroy(a);
    hw_arena_destroy(b);
}

/* Every proper prefix of a valid note, and the note with a byte more, is
 * refused whole: nothing decoded is left in fx. Run under ASan, this also
 * proves no read outside the buffer (each prefix is copied into a buffer
 * of exactly its size). */
static void truncated_or_padded_note_is_refused(void **state)
{
    (void)state;
    hw_arena *a = hw_arena_create(0), *b = hw_arena_create(0);
    hw_effects fx, back;
    fill_everything(&fx, a);
    void *note;
    size_t len;
    assert_int_equal(hw_effects_encode(&fx, a, &note, &len), HW_OK);
    for (size_t n = 0; n < len; n++) {
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, note, n);
        assert_int_equal(hw_effects_decode(&back, b, n ? cut : NULL, n), HW_ECORRUPT);
        assert_true(hw_effects_empty(&back));
        free(cut);
        if (n % 64 == 0)
            hw_arena_reset(b);
    }
    uint8_t *padded = malloc(len + 1);
    memcpy(padded, note, len);
    padded[len] = 0;
    assert_int_equal(hw_effects_decode(&back, b, padded, len + 1), HW_ECORRUPT);
    padded[0] = HW_EFFECTS_NOTE_VERSION + 1; /* a version we do not know */
    assert_int_equal(hw_effects_decode(&back, b, padded, len), HW_ECORRUPT);
    padded[0] = HW_EFFECTS_NOTE_VERSION;
    padded[1] = 0x80; /* a flag we do not know */
    assert_int_equal(hw_effects_decode(&back, b, padded, len), HW_ECORRUPT);
    padded[1] = 0x08; /* the next one after synonyms */
    assert_int_equal(hw_effects_decode(&back, b, padded, len), HW_ECORRUPT);
    free(padded);
    hw_arena_destroy(a);
    hw_arena_destroy(b);
}

/* Random bytes never crash the decoder and are refused unless they happen
 * to spell a note; with the version byte right they reach the counts and
 * the event parser. */
static void random_bytes_are_refused_without_crash(void **state)
{
    (void)state;
    hw_arena *b = hw_arena_create(0);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    size_t refused = 0, tries = 4000;
    for (size_t i = 0; i < tries; i++) {
        size_t n = 1 + (size_t)(x % 300);
        uint8_t *buf = malloc(n);
        for (size_t k = 0; k < n; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[k] = (uint8_t)x;
        }
        if (i % 2) { /* past the version and flags checks */
            buf[0] = HW_EFFECTS_NOTE_VERSION;
            if (n > 1)
                buf[1] &= 7;
        }
        hw_effects back;
        int rc = hw_effects_decode(&back, b, buf, n);
        assert_true(rc == HW_OK || rc == HW_ECORRUPT);
        if (rc == HW_ECORRUPT) {
            refused++;
            assert_true(hw_effects_empty(&back));
        }
        if (i % 2 == 0 && buf[0] != HW_EFFECTS_NOTE_VERSION)
            assert_int_equal(rc, HW_ECORRUPT);
        free(buf);
        hw_arena_reset(b);
    }
    assert_true(refused > tries * 9 / 10);
    hw_arena_destroy(b);
}

static void bad_knowledge_changes_are_refused(void **state)
{
    (void)state;
    hw_arena *a = hw_arena_create(0);
    hw_effects fx;
    hw_effects_begin(&fx, a);
    assert_int_equal(hw_effects_knowledge_changed(&fx, HELPWIRE__V1__DOC_KIND__DOC_KIND_ARTICLE, "", false),
                     HW_EINVALID);
    assert_int_equal(
        hw_effects_knowledge_changed(&fx, HELPWIRE__V1__DOC_KIND__DOC_KIND_UNSPECIFIED, "a-1", false),
        HW_EINVALID);
    assert_true(hw_effects_empty(&fx));
    assert_int_equal(hw_effects_knowledge_changed(&fx, HELPWIRE__V1__DOC_KIND__DOC_KIND_FAQ, "f-1", true),
                     HW_OK);
    assert_false(hw_effects_empty(&fx));
    /* The leader's own run (main's sinks have no knowledge sink) drops it. */
    record rec = {0};
    hw_effects_sinks sk = sinks_for(&rec);
    hw_effects_run(&fx, &sk, HW_OK);
    assert_int_equal(rec.n_calls, 0);
    hw_arena_destroy(a);
}

/* A single node keeps no notes: hw_effects_note_in is a no-op there. */
static int note_single_fn(hw_store_txn *w, void *arg)
{
    hw_effects fx;
    hw_effects_begin(&fx, hw_store_txn_arena(w));
    hw_effects_alert_queued(&fx);
    *(int *)arg = hw_store_txn_replicated(w) ? 1 : 0;
    return hw_effects_note_in(&fx, w);
}

static void note_in_on_a_single_node_costs_nothing(void **state)
{
    (void)state;
    char dir[512];
    hw_store *s = hw_test_open(hw_test_dir(dir, sizeof dir, "fx-note"), 1 << 20, 0);
    assert_non_null(s);
    int replicated = -1;
    assert_int_equal(hw_store_write(s, note_single_fn, &replicated), HW_OK);
    assert_int_equal(replicated, 0);
    hw_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(committed_effects_reach_every_sink_in_order),
        cmocka_unit_test(failed_write_hands_nothing_to_any_sink),
        cmocka_unit_test(effects_run_at_most_once),
        cmocka_unit_test(rerun_of_write_fn_forgets_rolled_back_effects),
        cmocka_unit_test(missing_sinks_drop_their_kind_only),
        cmocka_unit_test(many_events_keep_recording_order),
        cmocka_unit_test(event_without_arena_is_refused),
        cmocka_unit_test(refresh_updates_only_that_tickets_snapshots),
        cmocka_unit_test(out_of_range_channel_is_ignored),
        cmocka_unit_test(effects_run_only_after_the_commit_and_never_after_a_failure),
        cmocka_unit_test(timers_sink_gets_the_earliest_due_time),
        cmocka_unit_test(note_round_trip_keeps_every_field),
        cmocka_unit_test(truncated_or_padded_note_is_refused),
        cmocka_unit_test(random_bytes_are_refused_without_crash),
        cmocka_unit_test(bad_knowledge_changes_are_refused),
        cmocka_unit_test(note_in_on_a_single_node_costs_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
