/*
 * sinks: the after-commit sinks of a running helpwired (see sinks.h).
 */
#include "server/domain/sinks.h"

#include "server/domain/classify.h"
#include "server/domain/notifier.h"
#include "server/domain/outbox.h"
#include "server/domain/timers.h"
#include "server/domain/watch.h"

static void publish_ticket_events(void *appv, Helpwire__V1__TicketEvent *const *events, size_t n)
{
    hw_watch_publish(((hw_app *)appv)->watch, events, n);
}

static void wake_outbox_appended(void *appv, Helpwire__V1__Channel channel)
{
    hw_outbox_committed(((hw_app *)appv)->outbox, channel);
}

static void wake_outbox_acked(void *appv, Helpwire__V1__Channel channel)
{
    hw_outbox_acked(((hw_app *)appv)->outbox, channel);
}

static void wake_notifier(void *appv)
{
    hw_notifier_wake(((hw_app *)appv)->notifier);
}

static void skill_models_stale(void *appv)
{
    hw_classify_skills_changed(appv);
}

static void wake_timers(void *appv, int64_t earliest_due_ms)
{
    hw_timers_committed(((hw_app *)appv)->timers, earliest_due_ms);
}

hw_effects_sinks hw_sinks_for_app(hw_app *app)
{
    return (hw_effects_sinks){.ctx = app,
                              .ticket_events = publish_ticket_events,
                              .outbox_appended = wake_outbox_appended,
                              .outbox_acked = wake_outbox_acked,
                              .alert_queued = wake_notifier,
                              .skills_changed = skill_models_stale,
                              .timer_set = wake_timers};
}
