/*
 * eventlog: the global ticket event log over the store's key-value space
 * (see eventlog.h).
 *
 * An entry's value: version byte 1, be64 at_unix_ms (the trim reads it
 * without unpacking the event), be16 length + queue, be16 length +
 * assignee, then the packed TicketEvent. Keys are be64 sequences, so a
 * key-order scan is sequence order and "entries after a cursor" is one
 * seek (hw_store_kv_foreach_after).
 */
#include "server/store/eventlog.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/random.h>

#define NS "eventlog"
#define NS_META "eventlog_meta"
#define SEQ_NAME "eventlog"
#define ENTRY_VERSION 1
#define HDR_FIXED (1 + 8)

static void be64_put(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

static uint64_t be64_get(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* ---- cursors ---- */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* splitmix64's finalizer: a cheap, well-spread 64-bit mix. */
static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t check_of(uint64_t seq, uint64_t salt)
{
    return mix(mix(seq ^ salt) + salt);
}

/* 16 bytes -> 22 base64url characters (no padding) + NUL. */
static void cursor_format(uint64_t seq, uint64_t salt, char out[HW_EVENTLOG_CURSOR_MAX])
{
    unsigned char raw[18] = {0};
    be64_put(raw, seq);
    be64_put(raw + 8, check_of(seq, salt));
    char *o = out;
    *o++ = 'c';
    *o++ = '1';
    for (size_t i = 0; i < 16; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
        *o++ = B64[v >> 18 & 63];
        *o++ = B64[v >> 12 & 63];
        if (i + 1 < 16)
            *o++ = B64[v >> 6 & 63];
        if (i + 2 < 16)
            *o++ = B64[v & 63];
    }
    *o = '\0';
}

static int b64_val(char c)
{
    const char *p = c ? strchr(B64, c) : NULL;
    return p ? (int)(p - B64) : -1;
}

/* Parses "c1" + 22 characters into seq and check. false when malformed. */
static bool cursor_parse(const char *token, uint64_t *seq, uint64_t *check)
{
    if (!token || strlen(token) != 24 || token[0] != 'c' || token[1] != '1')
        return false;
    unsigned char raw[18] = {0};
    const char *s = token + 2;
    size_t bits = 0, o = 0;
    uint32_t acc = 0;
    for (size_t i = 0; i < 22; i++) {
        int v = b64_val(s[i]);
        if (v < 0)
            return false;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            raw[o++] = (unsigned char)(acc >> bits);
        }
    }
    /* 22 characters carry 132 bits: the last 4 must be zero (one spelling
     * per cursor). */
    if (o != 16 || (acc & ((1u << bits) - 1)) != 0)
        return false;
    *seq = be64_get(raw);
    *check = be64_get(raw + 8);
    return *seq != 0;
}

uint64_t hw_eventlog_cursor_seq(const char *token)
{
    uint64_t seq, check;
    return cursor_parse(token, &seq, &check) ? seq : 0;
}

/* The salt; a (NULL: a temporary one) holds the copy kv_get makes. */
static int salt_get(hw_store_txn *t, hw_arena *a, uint64_t *salt)
{
    void *v;
    size_t len;
    hw_arena *own = a ? NULL : (a = hw_arena_create(64));
    if (!a)
        return HW_ENOMEM;
    int rc = hw_store_kv_get(t, NS_META, "salt", 4, a, &v, &len);
    if (rc == HW_OK) {
        if (len == 8)
            *salt = be64_get(v);
        else
            rc = HW_ECORRUPT;
    }
    hw_arena_destroy(own);
    return rc;
}

/* The salt, made (from getrandom) and stored in w when there is none. */
static int salt_get_or_make(hw_store_txn *w, uint64_t *salt)
{
    int rc = salt_get(w, hw_store_txn_arena(w), salt);
    if (rc != HW_ENOTFOUND)
        return rc;
    unsigned char b[8];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t n = getrandom(b + got, sizeof b - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return HW_EIO;
        got += (size_t)n;
    }
    *salt = be64_get(b);
    return hw_store_kv_put(w, NS_META, "salt", 4, b, sizeof b);
}

int hw_eventlog_cursor_decode(hw_store_txn *t, const char *token, uint64_t *seq)
{
    uint64_t s, check, salt;
    if (!cursor_parse(token, &s, &check))
        return HW_EINVALID;
    int rc = salt_get(t, NULL, &salt);
    if (rc == HW_ENOTFOUND)
        return HW_EINVALID; /* this store never made a cursor */
    if (rc != HW_OK)
        return rc;
    if (check != check_of(s, salt))
        return HW_EINVALID;
    *seq = s;
    return HW_OK;
}

/* ---- entries ---- */

int hw_eventlog_append(hw_store_txn *w, const Helpwire__V1__TicketEvent *ev, const char *queue,
                       const char *assignee, char cursor[HW_EVENTLOG_CURSOR_MAX], uint64_t *seq_out)
{
    if (!hw_store_txn_writable(w) || !ev || !ev->ticket_id || !*ev->ticket_id)
        return HW_EINVALID;
    queue = queue ? queue : "";
    assignee = assignee ? assignee : "";
    size_t ql = strlen(queue), al = strlen(assignee);
    if (ql > 0xffff || al > 0xffff)
        return HW_EINVALID;
    uint64_t salt, seq;
    int rc = salt_get_or_make(w, &salt);
    if (rc == HW_OK)
        rc = hw_store_next_seq(w, SEQ_NAME, 1, &seq);
    if (rc != HW_OK)
        return rc;
    /* The event without its snapshot: the copy is packed as it is. */
    Helpwire__V1__TicketEvent copy = *ev;
    copy.ticket = NULL;
    copy.cursor = (char *)"";
    size_t el = protobuf_c_message_get_packed_size(&copy.base);
    size_t len = HDR_FIXED + 2 + ql + 2 + al + el;
    hw_arena *a = hw_store_txn_arena(w);
    unsigned char *v = hw_arena_alloc(a, len);
    if (!v)
        return HW_ENOMEM;
    unsigned char *p = v;
    *p++ = ENTRY_VERSION;
    be64_put(p, (uint64_t)ev->at_unix_ms);
    p += 8;
    *p++ = (unsigned char)(ql >> 8);
    *p++ = (unsigned char)ql;
    memcpy(p, queue, ql);
    p += ql;
    *p++ = (unsigned char)(al >> 8);
    *p++ = (unsigned char)al;
    memcpy(p, assignee, al);
    p += al;
    protobuf_c_message_pack(&copy.base, p);
    unsigned char key[8];
    be64_put(key, seq);
    if ((rc = hw_store_kv_put(w, NS, key, sizeof key, v, len)) != HW_OK)
        return rc;
    cursor_format(seq, salt, cursor);
    if (seq_out)
        *seq_out = seq;
    return HW_OK;
}

int hw_eventlog_bounds(hw_store_txn *t, uint64_t *trimmed, uint64_t *last)
{
    if (last) {
        int rc = hw_store_peek_seq(t, SEQ_NAME, last);
        if (rc != HW_OK)
            return rc;
    }
    if (trimmed) {
        hw_arena *a = hw_arena_create(64);
        if (!a)
            return HW_ENOMEM;
        void *v;
        size_t len;
        int rc = hw_store_kv_get(t, NS_META, "trimmed", 7, a, &v, &len);
        if (rc == HW_ENOTFOUND) {
            *trimmed = 0;
            rc = HW_OK;
        } else if (rc == HW_OK) {
            if (len == 8)
                *trimmed = be64_get(v);
            else
                rc = HW_ECORRUPT;
        }
        hw_arena_destroy(a);
        if (rc != HW_OK)
            return rc;
    }
    return HW_OK;
}

typedef struct {
    hw_arena *a;
    uint64_t salt;
    hw_eventlog_entry *out;
    size_t n, limit;
    int err;
} read_ctx;

static int read_one(void *arg, const void *key, size_t key_len, const void *val, size_t val_len)
{
    read_ctx *c = arg;
    const unsigned char *v = val, *end = v + val_len;
    if (key_len != 8 || val_len < HDR_FIXED + 4 || v[0] != ENTRY_VERSION)
        return HW_ECORRUPT;
    hw_eventlog_entry *e = &c->out[c->n];
    e->seq = be64_get(key);
    const unsigned char *p = v + HDR_FIXED;
    size_t ql = (size_t)p[0] << 8 | p[1];
    p += 2;
    if ((size_t)(end - p) < ql + 2)
        return HW_ECORRUPT;
    const unsigned char *q = p;
    p += ql;
    size_t al = (size_t)p[0] << 8 | p[1];
    p += 2;
    if ((size_t)(end - p) < al)
        return HW_ECORRUPT;
    const unsigned char *as = p;
    p += al;
    if (!(e->queue = hw_arena_strndup(c->a, (const char *)q, ql)) ||
        !(e->assignee = hw_arena_strndup(c->a, (const char *)as, al)))
        return HW_ENOMEM;
    e->event = (Helpwire__V1__TicketEvent *)protobuf_c_message_unpack(
        &helpwire__v1__ticket_event__descriptor, hw_arena_allocator(c->a), (size_t)(end - p), p);
    if (!e->event || !e->event->ticket_id)
        return HW_ECORRUPT;
    e->event->ticket = NULL;
    char *cur = hw_arena_alloc(c->a, HW_EVENTLOG_CURSOR_MAX);
    if (!cur)
        return HW_ENOMEM;
    cursor_format(e->seq, c->salt, cur);
    e->event->cursor = cur;
    return ++c->n == c->limit ? HW_STOP : 0;
}

int hw_eventlog_read(hw_store_txn *t, uint64_t after, size_t limit, hw_arena *a, hw_eventlog_entry **out,
                     size_t *n)
{
    *n = 0;
    if (limit == 0 || limit > 10000)
        return HW_EINVALID;
    read_ctx c = {.a = a, .limit = limit};
    if (!(c.out = hw_arena_calloc(a, limit, sizeof *c.out)))
        return HW_ENOMEM;
    int rc = salt_get(t, a, &c.salt);
    if (rc == HW_ENOTFOUND) { /* no entry was ever made */
        *out = c.out;
        return HW_OK;
    }
    if (rc != HW_OK)
        return rc;
    unsigned char key[8];
    be64_put(key, after);
    rc = hw_store_kv_foreach_after(t, NS, key, sizeof key, read_one, &c);
    if (rc != HW_OK)
        return rc;
    *out = c.out;
    *n = c.n;
    return HW_OK;
}

typedef struct {
    int64_t cutoff;
    uint64_t last, max_keep;
    size_t max;
    uint64_t *seqs;
    size_t n;
} trim_ctx;

static int trim_one(void *arg, const void *key, size_t key_len, const void *val, size_t val_len)
{
    trim_ctx *c = arg;
    const unsigned char *v = val;
    if (key_len != 8 || val_len < HDR_FIXED)
        return HW_ECORRUPT;
    uint64_t seq = be64_get(key);
    int64_t at = (int64_t)be64_get(v + 1);
    bool old = c->cutoff > 0 && at < c->cutoff;
    bool over = c->max_keep > 0 && c->last - seq >= c->max_keep;
    if (!old && !over)
        return HW_STOP;
    c->seqs[c->n++] = seq;
    return c->n == c->max ? HW_STOP : 0;
}

int hw_eventlog_trim(hw_store_txn *w, int64_t cutoff_unix_ms, uint64_t max_keep, size_t max_delete,
                     size_t *deleted)
{
    if (deleted)
        *deleted = 0;
    if (!hw_store_txn_writable(w) || max_delete == 0 || max_delete > 10000)
        return HW_EINVALID;
    if (cutoff_unix_ms <= 0 && max_keep == 0)
        return HW_OK;
    trim_ctx c = {.cutoff = cutoff_unix_ms, .max_keep = max_keep, .max = max_delete};
    int rc = hw_store_peek_seq(w, SEQ_NAME, &c.last);
    if (rc != HW_OK || c.last == 0)
        return rc;
    if (!(c.seqs = hw_arena_alloc(hw_store_txn_arena(w), max_delete * sizeof *c.seqs)))
        return HW_ENOMEM;
    /* Collected first, deleted after: no deletes under the scan's cursor. */
    if ((rc = hw_store_kv_foreach(w, NS, trim_one, &c)) != HW_OK || c.n == 0)
        return rc;
    unsigned char key[8];
    for (size_t i = 0; i < c.n; i++) {
        be64_put(key, c.seqs[i]);
        if ((rc = hw_store_kv_delete(w, NS, key, sizeof key)) != HW_OK)
            return rc;
    }
    be64_put(key, c.seqs[c.n - 1]);
    if ((rc = hw_store_kv_put(w, NS_META, "trimmed", 7, key, sizeof key)) != HW_OK)
        return rc;
    if (deleted)
        *deleted = c.n;
    return HW_OK;
}

/* ---- redaction ----------------------------------------------------------- */

typedef struct redact_ctx {
    bool (*match)(void *arg, const char *ticket_id);
    void *arg;
    hw_arena *a;
    unsigned char (*keys)[8];
    unsigned char **vals;
    size_t *lens;
    size_t n, cap;
} redact_ctx;

static int redact_one(void *arg, const void *key, size_t key_len, const void *val, size_t val_len)
{
    redact_ctx *c = arg;
    const unsigned char *v = val, *end = v + val_len;
    if (key_len != 8 || val_len < HDR_FIXED + 4 || v[0] != ENTRY_VERSION)
        return HW_ECORRUPT;
    const unsigned char *p = v + HDR_FIXED;
    size_t ql = (size_t)p[0] << 8 | p[1];
    p += 2;
    if ((size_t)(end - p) < ql + 2)
        return HW_ECORRUPT;
    p += ql;
    size_t al = (size_t)p[0] << 8 | p[1];
    p += 2;
    if ((size_t)(end - p) < al)
        return HW_ECORRUPT;
    p += al;
    size_t head = (size_t)(p - v);
    Helpwire__V1__TicketEvent *ev = (Helpwire__V1__TicketEvent *)protobuf_c_message_unpack(
        &helpwire__v1__ticket_event__descriptor, hw_arena_allocator(c->a), (size_t)(end - p), p);
    if (!ev || !ev->ticket_id)
        return HW_ECORRUPT;
    if (!c->match(c->arg, ev->ticket_id) || ((!ev->detail || !*ev->detail) && !ev->ticket))
        return 0;
    ev->detail = (char *)"";
    ev->ticket = NULL;
    size_t el = protobuf_c_message_get_packed_size(&ev->base);
    unsigned char *nv = hw_arena_alloc(c->a, head + el);
    if (!nv)
        return HW_ENOMEM;
    memcpy(nv, v, head);
    protobuf_c_message_pack(&ev->base, nv + head);
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 64;
        unsigned char(*k)[8] = hw_arena_alloc(c->a, cap * sizeof *k);
        unsigned char **vs = hw_arena_alloc(c->a, cap * sizeof *vs);
        size_t *ls = hw_arena_alloc(c->a, cap * sizeof *ls);
        if (!k || !vs || !ls)
            return HW_ENOMEM;
        if (c->n) {
            memcpy(k, c->keys, c->n * sizeof *k);
            memcpy(vs, c->vals, c->n * sizeof *vs);
            memcpy(ls, c->lens, c->n * sizeof *ls);
        }
        c->keys = k, c->vals = vs, c->lens = ls, c->cap = cap;
    }
    memcpy(c->keys[c->n], key, 8);
    c->vals[c->n] = nv;
    c->lens[c->n] = head + el;
    c->n++;
    return 0;
}

int hw_eventlog_redact(hw_store_txn *w, bool (*match)(void *arg, const char *ticket_id), void *arg,
                       size_t *redacted)
{
    if (redacted)
        *redacted = 0;
    if (!hw_store_txn_writable(w) || !match)
        return HW_EINVALID;
    redact_ctx c = {.match = match, .arg = arg, .a = hw_store_txn_arena(w)};
    int rc = hw_store_kv_foreach(w, NS, redact_one, &c);
    for (size_t i = 0; rc == HW_OK && i < c.n; i++)
        rc = hw_store_kv_put(w, NS, c.keys[i], 8, c.vals[i], c.lens[i]);
    if (rc == HW_OK && redacted)
        *redacted = c.n;
    return rc;
}
