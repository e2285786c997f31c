/*
 * notes: running the effects carried in replicated entries (see notes.h).
 *
 * The sinks handed to hw_effects_run are a table of our own whose ctx is
 * the hw_notes: each forwards to app->after_commit's function of the same
 * kind (read when the note runs, so main may wire the hubs after create),
 * and knowledge_changed, which main's table leaves out, goes to the
 * knowledge module with this handler's store reader; synonyms_changed
 * (also left out there) makes the synonyms module reload the sets.
 */
#include "server/domain/notes.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <stdlib.h>

#include "server/base/arena.h"
#include "server/base/errors.h"
#include "server/base/log.h"
#include "server/domain/effects.h"
#include "server/domain/knowledge.h"
#include "server/domain/synonyms.h"
#include "server/store/store.h"

struct hw_notes {
    hw_app *app;
    hw_store_reader *reader; /* the writer thread's, for the knowledge sink */
    hw_arena *arena;         /* one note's decoded effects; reset per note */
    /* Until hw_notes_start: notes kept (copied) to run then, in order. */
    pthread_mutex_t mu;
    bool started;
    struct held_note *held, *held_tail;
    atomic_uint_fast64_t applied, refused;
};

/* The app's sinks, as main wired them. */
static const hw_effects_sinks *app_sinks(void *ctx)
{
    return &((hw_notes *)ctx)->app->after_commit;
}

static void fwd_ticket_events(void *ctx, Helpwire__V1__TicketEvent *const *events, size_t n)
{
    const hw_effects_sinks *s = app_sinks(ctx);
    if (s->ticket_events)
        s->ticket_events(s->ctx, events, n);
}

static void fwd_outbox_appended(void *ctx, Helpwire__V1__Channel channel)
{
    const hw_effects_sinks *s = app_sinks(ctx);
    if (s->outbox_appended)
        s->outbox_appended(s->ctx, channel);
}

static void fwd_outbox_acked(void *ctx, Helpwire__V1__Channel channel)
{
    const hw_effects_sinks *s = app_sinks(ctx);
    if (s->outbox_acked)
        s->outbox_acked(s->ctx, channel);
}

static void fwd_alert_queued(void *ctx)
{
    const hw_effects_sinks *s = app_sinks(ctx);
    if (s->alert_queued)
        s->alert_queued(s->ctx);
}

static void fwd_skills_changed(void *ctx)
{
    const hw_effects_sinks *s = app_sinks(ctx);
    if (s->skills_changed)
        s->skills_changed(s->ctx);
}

static void fwd_timer_set(void *ctx, int64_t earliest_due_ms)
{
    const hw_effects_sinks *s = app_sinks(ctx);
    if (s->timer_set)
        s->timer_set(s->ctx, earliest_due_ms);
}

static void knowledge_changed(void *ctx, Helpwire__V1__DocKind kind, const char *id, bool deleted)
{
    hw_notes *n = ctx;
    int rc = hw_knowledge_replicated_change(n->app, n->reader, kind, id, deleted);
    if (rc != HW_OK)
        hw_log_event(n->app->log, HW_LOG_WARN, "replicated_index_update_failed",
                     "kind=%d id=%s deleted=%s error=%s effect=\"searchable after the next start\"", (int)kind,
                     id, deleted ? "true" : "false", hw_strerror(rc));
}

static void synonyms_changed(void *ctx)
{
    hw_notes *n = ctx;
    int rc = hw_synonyms_replicated_change(n->app->synonyms);
    if (rc != HW_OK)
        hw_log_event(n->app->log, HW_LOG_WARN, "replicated_synonyms_update_failed",
                     "error=%s effect=\"the synonym sets apply after the next change or start\"",
                     hw_strerror(rc));
}

static const hw_effects_sinks note_sinks = {.ticket_events = fwd_ticket_events,
                                            .outbox_appended = fwd_outbox_appended,
                                            .outbox_acked = fwd_outbox_acked,
                                            .alert_queued = fwd_alert_queued,
                                            .skills_changed = fwd_skills_changed,
                                            .timer_set = fwd_timer_set,
                                            .knowledge_changed = knowledge_changed,
                                            .synonyms_changed = synonyms_changed};

typedef struct held_note {
    struct held_note *next;
    uint64_t index;
    size_t len;
    unsigned char bytes[];
} held_note;

static void run_note(hw_notes *n, uint64_t index, const void *note, size_t len);

void hw_notes_apply(void *ctx, uint64_t index, const void *note, size_t len)
{
    hw_notes *n = ctx;
    pthread_mutex_lock(&n->mu);
    if (!n->started) {
        held_note *h = malloc(sizeof *h + len);
        if (h) {
            h->next = NULL;
            h->index = index;
            h->len = len;
            memcpy(h->bytes, note, len);
            if (n->held_tail)
                n->held_tail->next = h;
            else
                n->held = h;
            n->held_tail = h;
        } else {
            atomic_fetch_add(&n->refused, 1);
        }
        pthread_mutex_unlock(&n->mu);
        return;
    }
    pthread_mutex_unlock(&n->mu);
    run_note(n, index, note, len);
}

void hw_notes_start(hw_notes *n)
{
    pthread_mutex_lock(&n->mu);
    /* The writer waits on mu meanwhile: the held notes run first, in
     * order, then every later one on the writer. */
    for (held_note *h = n->held, *next; h; h = next) {
        next = h->next;
        run_note(n, h->index, h->bytes, h->len);
        free(h);
    }
    n->held = n->held_tail = NULL;
    n->started = true;
    pthread_mutex_unlock(&n->mu);
}

static void run_note(hw_notes *n, uint64_t index, const void *note, size_t len)
{
    hw_arena_reset(n->arena);
    hw_effects fx;
    int rc = hw_effects_decode(&fx, n->arena, note, len);
    if (rc != HW_OK) {
        atomic_fetch_add(&n->refused, 1);
        hw_log_event(n->app->log, HW_LOG_ERROR, "note_refused", "index=%llu bytes=%zu error=%s",
                     (unsigned long long)index, len, hw_strerror(rc));
        return;
    }
    fx.app = n->app;
    hw_effects_sinks sinks = note_sinks;
    sinks.ctx = n;
    hw_effects_run(&fx, &sinks, HW_OK);
    atomic_fetch_add(&n->applied, 1);
}

int hw_notes_create(hw_notes **out, hw_app *app)
{
    *out = NULL;
    hw_notes *n = calloc(1, sizeof *n);
    if (!n)
        return HW_ENOMEM;
    n->app = app;
    pthread_mutex_init(&n->mu, NULL);
    int rc = HW_ENOMEM;
    if (!(n->arena = hw_arena_create(64 * 1024)))
        goto fail;
    if ((rc = hw_store_reader_create(app->store, &n->reader)) != HW_OK)
        goto fail;
    *out = n;
    return HW_OK;
fail:
    hw_notes_destroy(n);
    return rc;
}

void hw_notes_destroy(hw_notes *n)
{
    if (!n)
        return;
    hw_store_reader_destroy(n->reader);
    hw_arena_destroy(n->arena);
    for (held_note *h = n->held, *next; h; h = next) {
        next = h->next;
        free(h);
    }
    pthread_mutex_destroy(&n->mu);
    free(n);
}

uint64_t hw_notes_applied(const hw_notes *n)
{
    return n ? atomic_load(&((hw_notes *)n)->applied) : 0;
}

uint64_t hw_notes_refused(const hw_notes *n)
{
    return n ? atomic_load(&((hw_notes *)n)->refused) : 0;
}
