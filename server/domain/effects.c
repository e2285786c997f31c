/*
 * effects: the after-commit effects of one write (see effects.h for what
 * an effect is, when it runs and in which order).
 *
 * Ticket events are the only effect that carries data, so they are the
 * only list (grown by doubling in the write's arena; the old array stays
 * in the arena, a few pointers per write). The wake-ups are a bit per
 * channel and two flags: recording one twice is recording it once, which
 * is what merging wake-ups means. Knowledge changes are a second list,
 * grown the same way.
 *
 * The note (hw_effects_encode) is a flat little-endian record, read with
 * a cursor that checks every length against what is left before it reads:
 *   u8  version (HW_EFFECTS_NOTE_VERSION)
 *   u8  flags: 1 alert queued, 2 skills changed, 4 synonyms changed
 *       (other bits: refused)
 *   u32 outbox_appended, u32 outbox_acked (channel masks)
 *   i64 timer_due_ms, i64 now_ms
 *   u32 n_events, then each: u32 length, a packed TicketEvent (with its
 *       ticket snapshot)
 *   u32 n_docs, then each: u8 kind (1 article, 2 FAQ), u8 deleted (0, 1),
 *       u16 id length (1..), the id's bytes (no NUL)
 * and nothing after. Every count comes before what it counts and every
 * field is required, so no proper prefix of a note decodes: a truncated
 * note is refused, never half applied.
 */
#include "server/domain/effects.h"

#include <limits.h>
#include <string.h>
#include <time.h>

#include "server/base/errors.h"

#define FLAG_ALERT 1u
#define FLAG_SKILLS 2u
#define FLAG_SYNONYMS 4u
#define DOC_ID_MAX 0xffffu

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

/* Appends a knowledge change with id[0..len) copied into fx's arena. */
static int add_doc(hw_effects *fx, Helpwire__V1__DocKind kind, const char *id, size_t len, bool deleted)
{
    if ((kind != HELPWIRE__V1__DOC_KIND__DOC_KIND_ARTICLE && kind != HELPWIRE__V1__DOC_KIND__DOC_KIND_FAQ) ||
        len == 0 || len > DOC_ID_MAX || memchr(id, '\0', len))
        return HW_EINVALID;
    if (!fx->arena)
        return HW_ENOMEM;
    if (fx->n_docs == fx->cap_docs) {
        size_t cap = fx->cap_docs ? fx->cap_docs * 2 : 4;
        hw_effects_doc *docs = hw_arena_alloc(fx->arena, cap * sizeof *docs);
        if (!docs)
            return HW_ENOMEM;
        if (fx->n_docs)
            memcpy(docs, fx->docs, fx->n_docs * sizeof *docs);
        fx->docs = docs;
        fx->cap_docs = cap;
    }
    char *copy = hw_arena_alloc(fx->arena, len + 1);
    if (!copy)
        return HW_ENOMEM;
    memcpy(copy, id, len);
    copy[len] = '\0';
    fx->docs[fx->n_docs++] = (hw_effects_doc){.kind = kind, .deleted = deleted, .id = copy};
    return HW_OK;
}

int hw_effects_knowledge_changed(hw_effects *fx, Helpwire__V1__DocKind kind, const char *id, bool deleted)
{
    if (!id)
        return HW_EINVALID;
    return add_doc(fx, kind, id, strlen(id), deleted);
}

void hw_effects_synonyms_changed(hw_effects *fx)
{
    fx->synonyms_changed = true;
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
           !fx->skills_changed && !fx->timer_due_ms && fx->n_docs == 0 && !fx->synonyms_changed;
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
        for (size_t i = 0; sinks->knowledge_changed && i < fx->n_docs; i++)
            sinks->knowledge_changed(sinks->ctx, fx->docs[i].kind, fx->docs[i].id, fx->docs[i].deleted);
        if (fx->synonyms_changed && sinks->synonyms_changed)
            sinks->synonyms_changed(sinks->ctx);
    }
    hw_effects_begin(fx, fx->arena);
}

/* ------------------------------------------------------------ the note */

static uint8_t *put_u8(uint8_t *p, uint8_t v)
{
    *p = v;
    return p + 1;
}

static uint8_t *put_le(uint8_t *p, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return p + bytes;
}

int hw_effects_encode(const hw_effects *fx, hw_arena *a, void **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    size_t total = 1 + 1 + 4 + 4 + 8 + 8 + 4 + 4;
    for (size_t i = 0; i < fx->n_events; i++) {
        size_t n = protobuf_c_message_get_packed_size(&fx->events[i]->base);
        if (n > UINT32_MAX)
            return HW_ETOOBIG;
        total += 4 + n;
    }
    for (size_t i = 0; i < fx->n_docs; i++) {
        size_t n = strlen(fx->docs[i].id);
        if (n == 0 || n > DOC_ID_MAX)
            return HW_EINVALID;
        total += 4 + n;
    }
    if (total > UINT32_MAX || fx->n_events > UINT32_MAX || fx->n_docs > UINT32_MAX)
        return HW_ETOOBIG;
    uint8_t *buf = hw_arena_alloc(a, total);
    if (!buf)
        return HW_ENOMEM;
    uint8_t *p = buf;
    p = put_u8(p, HW_EFFECTS_NOTE_VERSION);
    p = put_u8(p, (uint8_t)((fx->alert_queued ? FLAG_ALERT : 0) | (fx->skills_changed ? FLAG_SKILLS : 0) |
                            (fx->synonyms_changed ? FLAG_SYNONYMS : 0)));
    p = put_le(p, fx->outbox_appended, 4);
    p = put_le(p, fx->outbox_acked, 4);
    p = put_le(p, (uint64_t)fx->timer_due_ms, 8);
    p = put_le(p, (uint64_t)fx->now_ms, 8);
    p = put_le(p, fx->n_events, 4);
    for (size_t i = 0; i < fx->n_events; i++) {
        uint8_t *lenp = p;
        size_t n = protobuf_c_message_pack(&fx->events[i]->base, p + 4);
        put_le(lenp, n, 4);
        p += 4 + n;
    }
    p = put_le(p, fx->n_docs, 4);
    for (size_t i = 0; i < fx->n_docs; i++) {
        size_t n = strlen(fx->docs[i].id);
        p = put_u8(p, (uint8_t)fx->docs[i].kind);
        p = put_u8(p, fx->docs[i].deleted ? 1 : 0);
        p = put_le(p, n, 2);
        memcpy(p, fx->docs[i].id, n);
        p += n;
    }
    if ((size_t)(p - buf) != total) /* a packed size that changed while packing */
        return HW_EINVALID;
    *out = buf;
    *len = total;
    return HW_OK;
}

/* A bounds-checked reader over the note. */
typedef struct {
    const uint8_t *p;
    size_t left;
} cursor;

static bool take(cursor *c, size_t n, const uint8_t **at)
{
    if (n > c->left)
        return false;
    *at = c->p;
    c->p += n;
    c->left -= n;
    return true;
}

static bool get_le(cursor *c, unsigned bytes, uint64_t *v)
{
    const uint8_t *at;
    if (!take(c, bytes, &at))
        return false;
    *v = 0;
    for (unsigned i = 0; i < bytes; i++)
        *v |= (uint64_t)at[i] << (8 * i);
    return true;
}

int hw_effects_decode(hw_effects *fx, hw_arena *a, const void *buf, size_t len)
{
    hw_effects_begin(fx, a);
    cursor c = {.p = buf, .left = buf ? len : 0};
    uint64_t version, flags, appended, acked, due, now, n;
    int rc = HW_ECORRUPT;
    if (!get_le(&c, 1, &version) || version != HW_EFFECTS_NOTE_VERSION || !get_le(&c, 1, &flags) ||
        (flags & ~(uint64_t)(FLAG_ALERT | FLAG_SKILLS | FLAG_SYNONYMS)) || !get_le(&c, 4, &appended) ||
        !get_le(&c, 4, &acked) || !get_le(&c, 8, &due) || !get_le(&c, 8, &now) || !get_le(&c, 4, &n) ||
        n > c.left / 4) /* each event takes at least its length */
        goto fail;
    fx->alert_queued = flags & FLAG_ALERT;
    fx->skills_changed = flags & FLAG_SKILLS;
    fx->synonyms_changed = flags & FLAG_SYNONYMS;
    fx->outbox_appended = (uint32_t)appended;
    fx->outbox_acked = (uint32_t)acked;
    fx->timer_due_ms = (int64_t)due;
    fx->now_ms = (int64_t)now;
    ProtobufCAllocator *alloc = hw_arena_allocator(a);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t elen;
        const uint8_t *at;
        if (!get_le(&c, 4, &elen) || !take(&c, elen, &at))
            goto fail;
        Helpwire__V1__TicketEvent *e = (Helpwire__V1__TicketEvent *)protobuf_c_message_unpack(
            &helpwire__v1__ticket_event__descriptor, alloc, elen, at);
        if (!e || !e->ticket_id)
            goto fail;
        if ((rc = hw_effects_ticket_event(fx, e)) != HW_OK)
            goto fail;
        rc = HW_ECORRUPT;
    }
    if (!get_le(&c, 4, &n) || n > c.left / 4) /* each change takes at least 4 bytes */
        goto fail;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t kind, deleted, idlen;
        const uint8_t *id;
        if (!get_le(&c, 1, &kind) || !get_le(&c, 1, &deleted) || deleted > 1 || !get_le(&c, 2, &idlen) ||
            !take(&c, idlen, &id))
            goto fail;
        int drc = add_doc(fx, (Helpwire__V1__DocKind)kind, (const char *)id, idlen, deleted);
        if (drc != HW_OK) {
            rc = drc == HW_ENOMEM ? HW_ENOMEM : HW_ECORRUPT;
            goto fail;
        }
    }
    if (c.left != 0)
        goto fail;
    return HW_OK;
fail:
    hw_effects_begin(fx, a);
    return rc;
}

int hw_effects_note_in(const hw_effects *fx, hw_store_txn *w)
{
    if (!hw_store_txn_replicated(w) || hw_effects_empty(fx))
        return HW_OK;
    void *note;
    size_t len;
    int rc = hw_effects_encode(fx, hw_store_txn_arena(w), &note, &len);
    if (rc == HW_OK)
        rc = hw_store_txn_note(w, note, len);
    return rc;
}
