/*
 * effects: the one home for what a write must make happen outside the
 * store once it has committed.
 *
 * An effect is a consequence of a write that lives outside its
 * transaction. The kinds:
 *   - a ticket event, with a snapshot of the ticket after it, for the
 *     WatchTickets streams (every history event a write appends: ticket
 *     changes, SURVEY_SENT, SURVEY_ANSWERED, ALERT_DELIVERED, ...);
 *   - an outbox channel that got new messages: its Subscribe streams are
 *     woken;
 *   - an outbox channel that got acknowledgements: its subscribers drop
 *     what was acknowledged;
 *   - a supervisor alert queued: the notifier's thread is woken;
 *   - a skill change: every worker rebuilds its skill model;
 *   - a durable timer set: the timer thread wakes up if it is due earlier;
 *   - a knowledge change (an article or FAQ put or deleted): the search
 *     index must follow. On the replica that made the write the Knowledge
 *     handler hands the change to the indexer itself (it answers once the
 *     change is searchable), so main's after-commit sinks leave this kind
 *     out; the other replicas' note handler (notes.h) feeds it to theirs.
 *   - a synonym set put or deleted: the index's synonym sets must be
 *     reloaded from the store. As with knowledge changes, the replica that
 *     made the write reloads from its handler (answering once the sets
 *     apply), main's sinks leave it out, and the note handler makes the
 *     other replicas reload.
 * Whatever must survive a crash (messages, alerts, history) is already in
 * the store, written by the transaction itself; an effect is only a live
 * copy or a wake-up, so effects are never persisted nor retried.
 *
 * Who records: the module that makes the change, inside the write fn:
 * hw_watch_record for events, hw_outbox_append_in and the Ack RPC for
 * channels, hw_notifier_queue_in for alerts, PutSkill for skills. Callers
 * only pass their hw_effects along; nobody sets a flag by hand.
 *
 * When effects run: hw_effects_run(fx, sinks, status) after the write's
 * outcome is final. With status HW_OK (the write is durably committed) it
 * hands every effect to the sinks; with any other status (the fn refused,
 * or the group commit failed) it drops them all, so no watcher, bridge or
 * notifier ever hears of a change that is not on disk. Either way the list
 * is emptied, so effects run at most once. A write fn may run more than
 * once for one submission (store.h): hw_effects_begin at the start of each
 * run forgets the effects of the rolled-back run. Handlers get both for
 * free: hw_rpc_write begins the effects of its hw_wctx before each run of
 * the fn and runs them before the done callback (rpc.h).
 *
 * Ordering: within one write, ticket events reach the watchers in the
 * order they were recorded, then the outbox channels are woken (new
 * messages, then acknowledgements; by channel value), then the notifier,
 * then the skill models are marked stale, then the timer thread is told,
 * then the knowledge changes (in recording order), then the synonym
 * reload. Handlers' writes run
 * their effects on the writer thread in commit order, before the reply, so
 * a client that got its reply can already see its own events on a watch
 * stream, and a watcher sees one ticket's events in history order. A
 * write made with hw_store_write (the notifier's delivery outcomes) runs
 * its effects on the thread that waited for it, after the commit: those
 * may reach a watcher after the events of a later handler write.
 * Wake-ups are merged: a channel woken twice by one write is woken once.
 *
 * Threads: an hw_effects belongs to one write: filled by its fn on the
 * writer thread, run by its done callback (or by the waiting thread), never
 * shared. Sinks are called on that thread and must be cheap and never
 * block: on the writer thread they delay the next group commit.
 *
 * Memory: the event list lives in the arena given to hw_effects_begin (a
 * handler's call arena), which must outlive hw_effects_run; the events
 * themselves are the recorder's, allocated in the same arena.
 *
 * Replication: on the leader a write's effects run as above; the other
 * replicas only apply its key/value changes. So every write fn that
 * records effects ends with hw_effects_note_in, which puts them, encoded
 * (hw_effects_encode), into the write's replicated entry as a note; the
 * other replicas decode them (hw_effects_decode) and run them with the
 * same sinks (notes.h). On a single node hw_effects_note_in costs a
 * function call.
 *
 * Not done here: deciding what a change causes (the domain modules do),
 * and knowing the hubs: the sinks are a table of callbacks that main wires
 * to the watch hub, the outbox hub, the notifier and the skill models, so
 * the modules that record effects can sit above this one.
 */
#ifndef HW_EFFECTS_H
#define HW_EFFECTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "helpwire/v1/common.pb-c.h"
#include "helpwire/v1/tickets.pb-c.h"
#include "server/base/arena.h"
#include "server/store/store.h"

/* Channels are bits of a 32-bit mask: every Channel value is below this. */
#define HW_EFFECTS_MAX_CHANNEL 32

/* An article or FAQ a write put or deleted. */
typedef struct hw_effects_doc {
    Helpwire__V1__DocKind kind; /* ARTICLE or FAQ */
    bool deleted;               /* false: put (the store holds the new version) */
    const char *id;             /* in fx's arena */
} hw_effects_doc;

/* The effects of one write. Callers embed it (hw_wctx does) and use the
 * functions below; the fields are read-only outside effects.c (tests
 * inspect them). */
typedef struct hw_effects {
    hw_arena *arena;                    /* from hw_effects_begin */
    Helpwire__V1__TicketEvent **events; /* [n_events], in recording order */
    size_t n_events, cap_events;
    uint32_t outbox_appended; /* bit (1u << channel) per channel */
    uint32_t outbox_acked;    /* same, for acknowledgements */
    bool alert_queued;
    bool skills_changed;
    int64_t timer_due_ms; /* earliest due time of a timer set by the write; 0 = none */
    int64_t now_ms;       /* the write's time (hw_effects_set_now); 0 = not set */
    hw_effects_doc *docs; /* [n_docs] knowledge changes, in recording order */
    size_t n_docs, cap_docs;
    bool synonyms_changed; /* a synonym set was put or deleted */
    /* The server the write runs in (its settings), for rules that need
     * them (queues.h); set after hw_effects_begin by hw_rpc_write and the
     * background writers; NULL: the rules use their defaults. */
    const struct hw_app *app;
    /* The W3C trace context of the call that made the write, for what it
     * sends on (a queued alert's webhook): "00-<trace>-<span>-<flags>" and
     * the caller's tracestate. Set after hw_effects_begin by hw_rpc_write;
     * NULL for background writers (timers, the notifier): a new trace is
     * started for what they cause. Not replicated in the note (only the
     * leader queues alerts, inside the write itself). */
    const char *traceparent;
    const char *tracestate;
} hw_effects;

/* Where effects go after a commit: one callback per kind, each with ctx
 * (main passes its hw_app). A NULL callback drops that kind (a tool or a
 * test with no hubs). Called on the thread running the effects; each must
 * be cheap and must not block. */
typedef struct hw_effects_sinks {
    void *ctx;
    /* events: [n] in recording order, snapshots in e->ticket; borrowed for
     * the call (copy what outlives it). */
    void (*ticket_events)(void *ctx, Helpwire__V1__TicketEvent *const *events, size_t n);
    void (*outbox_appended)(void *ctx, Helpwire__V1__Channel channel);
    void (*outbox_acked)(void *ctx, Helpwire__V1__Channel channel);
    void (*alert_queued)(void *ctx);
    void (*skills_changed)(void *ctx);
    /* a timer was set: earliest_due_ms is the earliest due time the write
     * set (the timer thread wakes up if that is before its next wake-up). */
    void (*timer_set)(void *ctx, int64_t earliest_due_ms);
    /* an article or FAQ was put (deleted false) or deleted: id borrowed for
     * the call. main's after-commit table leaves it NULL (the Knowledge
     * handlers submit their own changes); the note handler sets it. */
    void (*knowledge_changed)(void *ctx, Helpwire__V1__DocKind kind, const char *id, bool deleted);
    /* a synonym set was put or deleted: reload them all. NULL in main's
     * after-commit table (the synonym handlers reload themselves); the
     * note handler sets it. */
    void (*synonyms_changed)(void *ctx);
} hw_effects_sinks;

/* Starts (or starts again) the effects of one run of a write fn: forgets
 * whatever an earlier run recorded; the event list will be allocated in a,
 * which must outlive hw_effects_run (NULL for a write that records only
 * wake-ups: recording an event then fails with HW_ENOMEM). Any thread (the
 * one owning fx). */
void hw_effects_begin(hw_effects *fx, hw_arena *a);

/* Records event e (its ticket_id set; e->ticket the snapshot watchers
 * filter on, or NULL for an event about a ticket not in the store) to be
 * published to watchers. e is borrowed and must live in fx's arena (or
 * longer).
 * @return HW_OK; HW_ENOMEM (the arena is exhausted: fail the write). */
int hw_effects_ticket_event(hw_effects *fx, Helpwire__V1__TicketEvent *e);

/* Makes every event recorded so far about ticket t (same id) carry t as it
 * is now: for a write that records events while changing several fields
 * and stores the ticket once at the end. The snapshot is a shallow copy
 * (t's strings must live as long as the events). */
void hw_effects_refresh_ticket(hw_effects *fx, const Helpwire__V1__Ticket *t);

/* Records that channel got new outbox messages (its subscribers are woken)
 * or acknowledgements. A channel value of HW_EFFECTS_MAX_CHANNEL or more is
 * ignored (no Channel value is). */
void hw_effects_outbox_appended(hw_effects *fx, Helpwire__V1__Channel channel);
void hw_effects_outbox_acked(hw_effects *fx, Helpwire__V1__Channel channel);

/* Records that a supervisor alert was queued (the notifier is woken). */
void hw_effects_alert_queued(hw_effects *fx);

/* Records that a skill was created or changed (skill models go stale). */
void hw_effects_skills_changed(hw_effects *fx);

/* Records that a durable timer was set to fire at due_ms (timers.h): the
 * timer thread is told the earliest such time after the commit. */
void hw_effects_timer_set(hw_effects *fx, int64_t due_ms);

/* Records that the write put (deleted false) or deleted the article or FAQ
 * id (kind ARTICLE or FAQ); id is copied into fx's arena.
 * @return HW_OK; HW_EINVALID (another kind, empty id); HW_ENOMEM (no arena,
 *   or it is exhausted: fail the write). */
int hw_effects_knowledge_changed(hw_effects *fx, Helpwire__V1__DocKind kind, const char *id, bool deleted);

/* Records that the write put or deleted a synonym set (the index's sets
 * are reloaded from the store after the commit). */
void hw_effects_synonyms_changed(hw_effects *fx);

/* The time the write stands at: every timestamp it stores comes from here,
 * so that one write has one time and the app's clock (clock.h) decides it.
 * Whoever begins the effects sets it after hw_effects_begin (hw_rpc_write
 * does from the app's clock); hw_effects_now_ms reads the real clock when it
 * was never set (tools and tests that build effects by hand). */
void hw_effects_set_now(hw_effects *fx, int64_t now_ms);
int64_t hw_effects_now_ms(const hw_effects *fx);

/* True when nothing is recorded. */
bool hw_effects_empty(const hw_effects *fx);

/* After the write's outcome is final: with status HW_OK hands every effect
 * to sinks (NULL sinks: drops them), in the order the top comment gives;
 * with any other status drops them. Empties fx either way.
 * The thread that owns fx (the done callback's, normally the writer's). */
void hw_effects_run(hw_effects *fx, const hw_effects_sinks *sinks, int status);

/* ---- replication: effects as a note of the write's entry ---- */

/* The first byte of an encoded hw_effects; decode refuses any other. */
#define HW_EFFECTS_NOTE_VERSION 1

/* Encodes fx (events with their ticket snapshots as TicketEvent
 * protobufs, the channel masks, the flags (synonyms_changed among them),
 * the timer due time, now_ms and the knowledge changes; not fx->app) into one buffer allocated in a:
 * *out, *len bytes. Any thread owning fx.
 * @return HW_OK; HW_ENOMEM; HW_ETOOBIG (an event or the whole over 4 GiB). */
int hw_effects_encode(const hw_effects *fx, hw_arena *a, void **out, size_t *len);

/* Decodes buf[0..len) from hw_effects_encode into fx (begun with a: its
 * events, tickets and ids are allocated in a; fx->app is NULL). Reads
 * nothing outside buf; truncated, padded or otherwise malformed input is
 * refused whole. Any thread.
 * @return HW_OK; HW_ECORRUPT (not an encoding of effects: fx is left
 *   empty); HW_ENOMEM. */
int hw_effects_decode(hw_effects *fx, hw_arena *a, const void *buf, size_t len);

/* At the end of a write fn that recorded fx (after its own work returned
 * HW_OK): when w is replicated (hw_store_txn_replicated) and fx is not
 * empty, encodes fx into w's arena and adds it to the write's entry with
 * hw_store_txn_note; otherwise does nothing. Writer thread only.
 * @return HW_OK; HW_ENOMEM, HW_ETOOBIG (fail the write with it). */
int hw_effects_note_in(const hw_effects *fx, hw_store_txn *w);

#endif
