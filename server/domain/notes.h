/*
 * notes: the effects of writes this replica did not make.
 *
 * With replication the leader runs a write and its effects (effects.h);
 * the other replicas only apply the write's key/value changes
 * (hw_store_apply). So that their WatchTickets streams, Outbox
 * subscribers, notifier, skill models, timer thread and search index hear
 * of the change too, every write fn adds its effects to its entry as a note
 * (hw_effects_note_in), and the store hands each note of an applied entry
 * to hw_notes_apply after the entry's commit. hw_notes_apply decodes it
 * into a scratch arena and runs it with the app's after-commit sinks
 * (app->after_commit, as main wired them) plus the knowledge sink, which
 * re-reads the article or FAQ from the store and hands it to the indexer
 * (hw_knowledge_replicated_change).
 *
 * On a single node, and on the leader for its own writes, the store never
 * calls it (the requests' done callbacks run the effects instead).
 *
 * A note that does not decode is logged and skipped: the entry's changes
 * are in the store whatever happens to its live effects (which are only
 * copies and wake-ups), and the next start rebuilds the index from the
 * store.
 *
 * Threads: hw_notes_apply runs on the store's writer thread, one note at
 * a time; the scratch arena and the store reader are its own.
 */
#ifndef HW_NOTES_H
#define HW_NOTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/domain/app.h"

typedef struct hw_notes hw_notes;

/* Creates the note handler's state for app (app->store must be open; the
 * hubs and the indexer may be set later, before the first entry is
 * applied: a sink whose hub is still NULL drops its effect, and a
 * knowledge change with no indexer is logged and left to the next start's
 * index build). app must outlive it.
 * @return HW_OK; HW_ENOMEM; store codes (its reader). */
int hw_notes_create(hw_notes **out, hw_app *app);

/* Frees n. Once no entry can be applied any more (the replicator that
 * calls hw_store_apply has stopped, as it must before the hubs the sinks
 * reach are destroyed) and before hw_store_close (its reader belongs to
 * the store). NULL is a no-op. */
void hw_notes_destroy(hw_notes *n);

/* The note handler (an hw_store_note_fn; ctx is the hw_notes): decodes
 * note[0..len) and runs its effects as if this replica had made the write.
 * Writer thread only. */
void hw_notes_apply(void *ctx, uint64_t index, const void *note, size_t len);

/* Notes that arrive before this are kept, and run (in order, on the
 * calling thread) when it is called; from then on each runs at once on the
 * writer. main calls it once the hubs and the indexer exist and the index
 * is built, so that the sinks never see a hub being set up (no hub, no
 * knowledge change is lost: a replayed change re-reads the store). Once. */
void hw_notes_start(hw_notes *n);

/* Notes applied, and notes refused (undecodable) since create. Any thread. */
uint64_t hw_notes_applied(const hw_notes *n);
uint64_t hw_notes_refused(const hw_notes *n);

#endif
