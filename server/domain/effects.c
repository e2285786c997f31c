/*
 * effects: the after-commit effects of one write (see effects.h for what
 * an effect is, when it runs and in which order).
 *
 * Ticket events are the only effect that carries data, so they are the
 * only list (grown by doubling in the write's arena; the old array stays
 * in the arena, a few pointers per write). The wake-ups are a bit per
 * channel and two flags: recording one twice is recording it once, which
 * is what merging wake-ups means.
 */
#include "server/domain/effects.h"

#include <string.h>
#include <time.h>

#include "server/base/errors.h"

void hw_effects_begin(hw_effects *fx, hw_arena *a)
{
    memset(fx, 0, sizeof *fx);
    fx->arena = a;
}

int hw_effects_ticket_event(hw_effects *fx, Helpwire__V1__TicketEvent *e)
{
    if (fx->n_events == fx->cap_events) {
        if (!fx->arena)
            return HW_ENOMEM;
        size_t cap = fx->cap_events ? fx->cap_events * 2 : 8;
        Helpwire__V1__TicketEvent **events = hw_arena_alloc(fx->arena, cap * sizeof *events);
        if (!events)
            return HW_ENOMEM;
        if (fx->n_events)
            memcpy(events, fx->events, fx->n_events * sizeof *events);
        fx->events = events;
        fx->cap_events = cap;
    }
    fx->events[fx->n_events++] = e;
    return HW_OK;
}

void hw_effects_refresh_ticket(hw_effects *fx, const Helpwire__V1__Ticket *t)
{
    for (size_t i = 0; i < fx->n_events; i++) {
        Helpwire__V1__TicketEvent *e = fx->events[i];
        if (e->ticket && e->ticket != t && strcmp(e->ticket_id, t->id) == 0)
            *e->ticket = *t;
    }
}

void hw_effects_outbox_appended(hw_effects *fx, Helpwire__V1__Channel channel)
{
    if ((unsigned)channel < HW_EFFECTS_MAX_CHANNEL)
        fx->outbox_appended |= 1u << channel;
}

void hw_effects_outbox_acked(hw_effects *fx, Helpwire__V1__Channel channel)
{
    if ((unsigned)channel < HW_EFFECTS_MAX_CHANNEL)
        fx->outbox_acked |= 1u << channel;
}

void hw_effects_alert_queued(hw_effects *fx)
{
    fx->alert_queued = true;
}

void hw_effects_skills_changed(hw_effects *fx)
{
    fx->skills_changed = true;
}

void hw_effects_timer_set(hw_effects *fx, int64_t due_ms)
{
    if (due_ms <= 0)
        due_ms = 1; /* 0 means "none" */
    if (fx->timer_due_ms == 0 || due_ms < fx->timer_due_ms)
        fx->timer_due_ms = due_ms;
}

void hw_effects_set_now(hw_effects *fx, int64_t now_ms)
{
    fx->now_ms = now_ms;
}

int64_t hw_effects_now_ms(const hw_effects *fx)
{
    if (fx && fx->now_ms)
        return fx->now_ms;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool hw_effects_empty(const hw_effects *fx)
{
    return fx->n_events == 0 && !fx->outbox_appended && !fx->outbox_acked && !fx->alert_queued &&
           !fx->skills_changed && !fx->timer_due_ms;
}

/* Calls wake(ctx, channel) for each channel bit of mask, lowest first. */
static void wake_channels(void (*wake)(void *, Helpwire__V1__Channel), void *ctx, uint32_t mask)
{
    for (unsigned ch = 0; wake && mask && ch < HW_EFFECTS_MAX_CHANNEL; ch++)
        if (mask & (1u << ch)) {
            mask &= ~(1u << ch);
            wake(ctx, (Helpwire__V1__Channel)ch);
        }
}

void hw_effects_run(hw_effects *fx, const hw_effects_sinks *sinks, int status)
{
    if (status == HW_OK && sinks) {
        if (fx->n_events && sinks->ticket_events)
            sinks->ticket_events(sinks->ctx, fx->events, fx->n_events);
        wake_channels(sinks->outbox_appended, sinks->ctx, fx->outbox_appended);
        wake_channels(sinks->outbox_acked, sinks->ctx, fx->outbox_acked);
        if (fx->alert_queued && sinks->alert_queued)
            sinks->alert_queued(sinks->ctx);
        if (fx->skills_changed && sinks->skills_changed)
            sinks->skills_changed(sinks->ctx);
        if (fx->timer_due_ms && sinks->timer_set)
            sinks->timer_set(sinks->ctx, fx->timer_due_ms);
    }
    hw_effects_begin(fx, fx->arena);
}
