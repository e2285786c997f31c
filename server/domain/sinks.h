/*
 * sinks: the after-commit sinks of a running helpwired (effects.h), each
 * handing one kind of effect to the hub that acts on it: ticket events to
 * WatchTickets (watch.h), outbox wake-ups (outbox.h), queued alerts to the
 * notifier (notifier.h), skill changes to the classifier's models
 * (classify.h), new timers to the timer thread (timers.h). Shared by the
 * server's wiring and the tools and tests that build an app the same way.
 */
#ifndef HW_SINKS_H
#define HW_SINKS_H

#include "server/domain/app.h"
#include "server/domain/effects.h"

/* The sinks for app (its hubs may be NULL while starting or in tools: each
 * hub's function takes NULL as a no-op). knowledge_changed stays NULL: on
 * the replica that makes a knowledge write its handler hands the change
 * to the indexer (and answers once it is searchable); only the note
 * handler (notes.h) feeds other replicas'. app is borrowed and must
 * outlive the sinks. */
hw_effects_sinks hw_sinks_for_app(hw_app *app);

#endif
