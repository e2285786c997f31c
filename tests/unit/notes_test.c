/*
 * notes_test: the note handler (server/domain/notes.c), which runs on the
 * replicas that did not make a write the effects its entry carries. A
 * note reaches the app's after-commit sinks as the effects it encodes; a
 * note that does not decode runs nothing; a knowledge change in a note
 * makes the search index follow the store (put, update, delete), through
 * the real indexer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "server/domain/app.h"
#include "server/domain/effects.h"
#include "server/domain/notes.h"
#include "server/search/index.h"
#include "server/search/indexer.h"
#include "tests/unit/store_test_util.h"

/* ------------------------------------------------------ recording sinks */

typedef struct {
    char calls[32];
    size_t n_calls;
    char event_ids[8][16];
    size_t n_events;
    int64_t timer_due;
} record;

static void rec_call(record *r, char c)
{
    assert_true(r->n_calls < sizeof r->calls - 1);
    r->calls[r->n_calls++] = c;
}

static void on_events(void *ctx, Helpwire__V1__TicketEvent *const *events, size_t n)
{
    record *r = ctx;
    rec_call(r, 'E');
    for (size_t i = 0; i < n && r->n_events < 8; i++)
        snprintf(r->event_ids[r->n_events++], 16, "%s", events[i]->ticket_id);
}

static void on_appended(void *ctx, Helpwire__V1__Channel ch)
{
    (void)ch;
    rec_call(ctx, 'O');
}

static void on_acked(void *ctx, Helpwire__V1__Channel ch)
{
    (void)ch;
    rec_call(ctx, 'A');
}

static void on_alert(void *ctx)
{
    rec_call(ctx, 'N');
}

static void on_skills(void *ctx)
{
    rec_call(ctx, 'S');
}

static void on_timer(void *ctx, int64_t due)
{
    record *r = ctx;
    rec_call(r, 'T');
    r->timer_due = due;
}

static Helpwire__V1__TicketEvent *event(hw_arena *a, const char *ticket_id)
{
    Helpwire__V1__TicketEvent *e = hw_arena_alloc(a, sizeof *e);
    Helpwire__V1__Ticket *t = hw_arena_alloc(a, sizeof *t);
    assert_non_null(e);
    assert_non_null(t);
    helpwire__v1__ticket_event__init(e);
    helpwire__v1__ticket__init(t);
    e->ticket_id = t->id = (char *)ticket_id;
    e->kind = HELPWIRE__V1__TICKET_EVENT_KIND__TICKET_EVENT_KIND_CLOSED;
    e->ticket = t;
    return e;
}

/* --------------------------------------------------------------- fixture */

typedef struct {
    char dir[512];
    hw_app app;
    hw_notes *notes;
    hw_arena *arena;
    hw_searcher *searcher;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->app.store = hw_test_open(hw_test_dir(f->dir, sizeof f->dir, "notes"), 1 << 22, 0);
    f->arena = hw_arena_create(0);
    if (!f->app.store || !f->arena || hw_notes_create(&f->notes, &f->app) != HW_OK)
        return -1;
    hw_notes_start(f->notes);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    hw_indexer_stop(f->app.indexer);
    if (f->searcher) {
        hw_searcher_destroy(f->searcher);
        hw_index_reader_unregister();
    }
    hw_index_destroy(f->app.index);
    hw_notes_destroy(f->notes);
    hw_store_close(f->app.store);
    hw_arena_destroy(f->arena);
    free(f);
    return 0;
}

/* Encodes fx and hands it to the note handler as the store would. */
static void apply(fixture *f, const hw_effects *fx, uint64_t index)
{
    void *note;
    size_t len;
    assert_int_equal(hw_effects_encode(fx, f->arena, &note, &len), HW_OK);
    hw_notes_apply(f->notes, index, note, len);
}

/* ------------------------------------------------------------- the sinks */

static void note_runs_the_apps_sinks_with_its_effects(void **state)
{
    fixture *f = *state;
    record rec = {0};
    f->app.after_commit = (hw_effects_sinks){.ctx = &rec,
                                             .ticket_events = on_events,
                                             .outbox_appended = on_appended,
                                             .outbox_acked = on_acked,
                                             .alert_queued = on_alert,
                                             .skills_changed = on_skills,
                                             .timer_set = on_timer};
    hw_effects fx;
    hw_effects_begin(&fx, f->arena);
    assert_int_equal(hw_effects_ticket_event(&fx, event(f->arena, "t-1")), HW_OK);
    assert_int_equal(hw_effects_ticket_event(&fx, event(f->arena, "t-2")), HW_OK);
    hw_effects_outbox_appended(&fx, HELPWIRE__V1__CHANNEL__CHANNEL_TELEGRAM);
    hw_effects_outbox_acked(&fx, HELPWIRE__V1__CHANNEL__CHANNEL_WHATSAPP);
    hw_effects_alert_queued(&fx);
    hw_effects_skills_changed(&fx);
    hw_effects_timer_set(&fx, 1700000000123);
    apply(f, &fx, 7);
    assert_string_equal(rec.calls, "EOANST");
    assert_int_equal(rec.n_events, 2);
    assert_string_equal(rec.event_ids[0], "t-1");
    assert_string_equal(rec.event_ids[1], "t-2");
    assert_int_equal(rec.timer_due, 1700000000123);
    assert_int_equal(hw_notes_applied(f->notes), 1);
    assert_int_equal(hw_notes_refused(f->notes), 0);

    /* A knowledge change with no indexer (not started yet) is dropped and
     * logged; the other effects of the note still run. */
    memset(&rec, 0, sizeof rec);
    hw_effects_begin(&fx, f->arena);
    hw_effects_alert_queued(&fx);
    assert_int_equal(hw_effects_knowledge_changed(&fx, HELPWIRE__V1__DOC_KIND__DOC_KIND_ARTICLE, "a-1", false),
                     HW_OK);
    apply(f, &fx, 8);
    assert_string_equal(rec.calls, "N");
}

/* Notes that arrive before main has its hubs (hw_notes_start) wait and run
 * then, in the order they came; later ones run at once. */
static void notes_before_start_run_at_start_in_order(void **state)
{
    fixture *f = *state;
    hw_notes *held;
    assert_int_equal(hw_notes_create(&held, &f->app), HW_OK);
    record rec = {0};
    f->app.after_commit = (hw_effects_sinks){.ctx = &rec, .ticket_events = on_events, .alert_queued = on_alert};
    hw_effects fx;
    const char *ids[] = {"t-1", "t-2", "t-3"};
    for (int i = 0; i < 3; i++) {
        hw_effects_begin(&fx, f->arena);
        assert_int_equal(hw_effects_ticket_event(&fx, event(f->arena, ids[i])), HW_OK);
        void *note;
        size_t len;
        assert_int_equal(hw_effects_encode(&fx, f->arena, &note, &len), HW_OK);
        hw_notes_apply(held, (uint64_t)i + 1, note, len);
    }
    assert_int_equal(rec.n_events, 0); /* nothing ran yet */
    hw_notes_start(held);
    assert_int_equal(rec.n_events, 3);
    for (int i = 0; i < 3; i++)
        assert_string_equal(rec.event_ids[i], ids[i]);
    hw_effects_begin(&fx, f->arena);
    hw_effects_alert_queued(&fx);
    void *note;
    size_t len;
    assert_int_equal(hw_effects_encode(&fx, f->arena, &note, &len), HW_OK);
    hw_notes_apply(held, 4, note, len);
    assert_string_equal(rec.calls, "EEEN");
    assert_int_equal(hw_notes_applied(held), 4);
    hw_notes_destroy(held);
}

static void undecodable_note_runs_nothing(void **state)
{
    fixture *f = *state;
    record rec = {0};
    f->app.after_commit = (hw_effects_sinks){.ctx = &rec, .alert_queued = on_alert, .ticket_events = on_events};
    hw_effects fx;
    hw_effects_begin(&fx, f->arena);
    hw_effects_alert_queued(&fx);
    assert_int_equal(hw_effects_ticket_event(&fx, event(f->arena, "t-9")), HW_OK);
    void *note;
    size_t len;
    assert_int_equal(hw_effects_encode(&fx, f->arena, &note, &len), HW_OK);
    hw_notes_apply(f->notes, 3, note, len - 1); /* cut short */
    static const uint8_t garbage[] = {0xff, 0x00, 0x13, 0x37};
    hw_notes_apply(f->notes, 4, garbage, sizeof garbage);
    hw_notes_apply(f->notes, 5, NULL, 0);
    assert_int_equal(rec.n_calls, 0);
    assert_int_equal(hw_notes_refused(f->notes), 3);
    assert_int_equal(hw_notes_applied(f->notes), 0);
}

/* ------------------------------------------------------------- knowledge */

typedef struct {
    const char *id, *title, *body; /* title NULL: delete */
    bool faq;
} doc_write;

static int doc_write_fn(hw_store_txn *w, void *arg)
{
    const doc_write *d = arg;
    if (!d->title)
        return d->faq ? hw_store_faq_delete(w, d->id) : hw_store_article_delete(w, d->id);
    if (d->faq) {
        Helpwire__V1__Faq fq = HELPWIRE__V1__FAQ__INIT;
        fq.id = (char *)d->id;
        fq.question = (char *)d->title;
        fq.answer = (char *)d->body;
        fq.locale = "en";
        fq.version = 1;
        return hw_store_faq_put(w, &fq, HW_PUT_UPSERT, 0);
    }
    Helpwire__V1__Article ar = HELPWIRE__V1__ARTICLE__INIT;
    ar.id = (char *)d->id;
    ar.title = (char *)d->title;
    ar.body = (char *)d->body;
    ar.locale = "en";
    ar.version = 1;
    return hw_store_article_put(w, &ar, HW_PUT_UPSERT, 0);
}

/* Writes d to the store (as hw_store_apply would have), then hands the
 * note of the change to the handler and waits until the indexer is idle. */
static void replicate(fixture *f, const char *id, const char *title, const char *body, bool faq, bool write)
{
    doc_write d = {id, title, body, faq};
    if (write)
        assert_int_equal(hw_store_write(f->app.store, doc_write_fn, &d), HW_OK);
    hw_effects fx;
    hw_effects_begin(&fx, f->arena);
    assert_int_equal(hw_effects_knowledge_changed(&fx,
                                                  faq ? HELPWIRE__V1__DOC_KIND__DOC_KIND_FAQ
                                                      : HELPWIRE__V1__DOC_KIND__DOC_KIND_ARTICLE,
                                                  id, title == NULL),
                     HW_OK);
    apply(f, &fx, 1);
    for (int i = 0; i < 5000; i++) {
        hw_indexer_stats st;
        hw_indexer_stats_get(f->app.indexer, &st);
        if (st.queued == 0)
            return;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    fail_msg("the indexer did not apply the change within 5 s");
}

/* The id of the best hit for text, or "" when nothing matches. */
static const char *best(fixture *f, const char *text)
{
    hw_search_query q = {text, strlen(text), 5, NULL, HW_DOC_ANY, 0};
    hw_search_result res;
    assert_int_equal(hw_index_search(f->searcher, &q, f->arena, &res, NULL), 0);
    return res.n_hits ? res.hits[0].id : "";
}

static void knowledge_note_makes_the_index_follow_the_store(void **state)
{
    fixture *f = *state;
    assert_int_equal(hw_index_create(&f->app.index, NULL, NULL), 0);
    assert_int_equal(hw_indexer_start(f->app.index, &f->app.indexer), 0);
    assert_int_equal(hw_searcher_create(f->app.index, &f->searcher, NULL), 0);
    hw_index_reader_register();

    assert_string_equal(best(f, "lighthouse"), "");
    replicate(f, "a-7", "Lighthouse keeping", "How the lighthouse lamp is kept burning", false, true);
    assert_string_equal(best(f, "lighthouse"), "a-7");

    /* A new version replaces the old one in the index. */
    replicate(f, "a-7", "Zeppelin mooring", "Where the zeppelin is tied up", false, true);
    assert_string_equal(best(f, "zeppelin"), "a-7");
    assert_string_equal(best(f, "lighthouse"), "");

    /* FAQs too. */
    replicate(f, "f-1", "How do I reset my password?", "Use the forgotten password link", true, true);
    assert_string_equal(best(f, "password"), "f-1");

    /* A delete removes it. */
    replicate(f, "a-7", NULL, NULL, false, true);
    assert_string_equal(best(f, "zeppelin"), "");
    assert_string_equal(best(f, "password"), "f-1");

    /* A put whose document a later entry already deleted removes it too. */
    doc_write del = {"f-1", NULL, NULL, true};
    assert_int_equal(hw_store_write(f->app.store, doc_write_fn, &del), HW_OK);
    replicate(f, "f-1", "How do I reset my password?", "", true, false);
    assert_string_equal(best(f, "password"), "");
    assert_int_equal(hw_notes_refused(f->notes), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(note_runs_the_apps_sinks_with_its_effects, setup, teardown),
        cmocka_unit_test_setup_teardown(notes_before_start_run_at_start_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(undecodable_note_runs_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(knowledge_note_makes_the_index_follow_the_store, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
