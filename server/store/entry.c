/*
 * entry: the replicated change set of a write group (see entry.h).
 */
#include "server/store/entry.h"

#include <stdlib.h>
#include <string.h>

#include "server/base/errors.h"

#define HDR 8u /* kind, db, key length, value length */

static const unsigned char MAGIC[4] = {'H', 'W', 'E', '1'};

static bool reserve(hw_entry *e, size_t more)
{
    if (e->failed)
        return false;
    if (e->len + more <= e->cap)
        return true;
    size_t cap = e->cap ? e->cap : 4096;
    while (cap < e->len + more)
        cap *= 2;
    unsigned char *b = realloc(e->buf, cap);
    if (!b) {
        e->failed = true;
        return false;
    }
    e->buf = b;
    e->cap = cap;
    return true;
}

void hw_entry_reset(hw_entry *e)
{
    e->len = 0;
    e->failed = false;
    e->reserve_ptr = NULL;
    e->n_ops = 0;
    if (reserve(e, sizeof MAGIC)) {
        memcpy(e->buf, MAGIC, sizeof MAGIC);
        e->len = sizeof MAGIC;
    }
}

void hw_entry_free(hw_entry *e)
{
    free(e->buf);
    memset(e, 0, sizeof *e);
}

static void put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

void hw_entry_flush(hw_entry *e)
{
    if (!e->reserve_ptr)
        return;
    size_t kl = (size_t)get_le(e->buf + e->reserve_at + 2, 2);
    memcpy(e->buf + e->reserve_at + HDR + kl, e->reserve_ptr, e->reserve_len);
    e->reserve_ptr = NULL;
}

static unsigned char *append(hw_entry *e, int kind, int db, const void *k, size_t kl, size_t vl)
{
    hw_entry_flush(e);
    if (kl > 0xffff || vl > 0xffffffffu) {
        e->failed = true;
        return NULL;
    }
    if (!reserve(e, HDR + kl + vl))
        return NULL;
    unsigned char *p = e->buf + e->len;
    p[0] = (unsigned char)kind;
    p[1] = (unsigned char)db;
    put_le(p + 2, kl, 2);
    put_le(p + 4, vl, 4);
    if (kl)
        memcpy(p + HDR, k, kl);
    e->len += HDR + kl + vl;
    e->n_ops++;
    return p;
}

void hw_entry_add(hw_entry *e, int kind, int db, const void *k, size_t kl, const void *v, size_t vl)
{
    unsigned char *p = append(e, kind, db, k, kl, vl);
    if (p && vl)
        memcpy(p + HDR + kl, v, vl);
}

void hw_entry_add_reserved(hw_entry *e, int db, const void *k, size_t kl, const void *reserved, size_t vl)
{
    unsigned char *p = append(e, HW_ENTRY_PUT, db, k, kl, vl);
    if (p && vl) {
        e->reserve_ptr = reserved;
        e->reserve_at = (size_t)(p - e->buf);
        e->reserve_len = vl;
    }
}

size_t hw_entry_mark(hw_entry *e)
{
    hw_entry_flush(e);
    return e->len;
}

void hw_entry_truncate(hw_entry *e, size_t mark)
{
    e->reserve_ptr = NULL;
    if (mark >= sizeof MAGIC && mark <= e->len) {
        e->len = mark;
        /* n_ops is only tested for zero: recount from the bytes. */
        size_t n = 0;
        for (size_t at = sizeof MAGIC; at + HDR <= e->len; n++)
            at += HDR + get_le(e->buf + at + 2, 2) + get_le(e->buf + at + 4, 4);
        e->n_ops = n;
    }
}

bool hw_entry_empty(const hw_entry *e)
{
    return e->n_ops == 0;
}

int hw_entry_check(const void *buf, size_t len, int db_count)
{
    const unsigned char *p = buf;
    if (!buf || len < sizeof MAGIC || memcmp(p, MAGIC, sizeof MAGIC) != 0)
        return HW_ECORRUPT;
    size_t at = sizeof MAGIC;
    while (at < len) {
        if (p[at] == 0) {
            /* The log pads entries to 8 bytes with zeros. */
            if (len - at >= 8)
                return HW_ECORRUPT;
            for (; at < len; at++)
                if (p[at] != 0)
                    return HW_ECORRUPT;
            break;
        }
        if (len - at < HDR)
            return HW_ECORRUPT;
        int kind = p[at], db = p[at + 1];
        uint64_t kl = get_le(p + at + 2, 2), vl = get_le(p + at + 4, 4);
        if (kl + vl > len - at - HDR)
            return HW_ECORRUPT;
        switch (kind) {
        case HW_ENTRY_PUT:
            if (kl == 0 || kl > 511 || db >= db_count)
                return HW_ECORRUPT;
            break;
        case HW_ENTRY_DEL:
            if (kl == 0 || kl > 511 || vl != 0 || db >= db_count)
                return HW_ECORRUPT;
            break;
        case HW_ENTRY_NOTE:
            if (kl != 0 || db != 0 || vl > HW_ENTRY_MAX_NOTE)
                return HW_ECORRUPT;
            break;
        default:
            return HW_ECORRUPT;
        }
        at += HDR + kl + vl;
    }
    return HW_OK;
}

int hw_entry_walk(const void *buf, size_t len, int db_count, hw_entry_op_fn fn, void *ctx)
{
    int rc = hw_entry_check(buf, len, db_count);
    if (rc != HW_OK)
        return rc;
    const unsigned char *p = buf;
    for (size_t at = sizeof MAGIC; at < len && p[at] != 0;) {
        size_t kl = (size_t)get_le(p + at + 2, 2), vl = (size_t)get_le(p + at + 4, 4);
        rc = fn(ctx, p[at], p[at + 1], p + at + HDR, kl, p + at + HDR + kl, vl);
        if (rc != 0)
            return rc;
        at += HDR + kl + vl;
    }
    return HW_OK;
}
