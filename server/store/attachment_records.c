/*
 * attachment_records: the store side of attachments (records.h,
 * "attachments"): content-addressed pieces, the attachments made of them,
 * the ticket messages' references, and the sweep of what nothing refers to.
 *
 * Why in LMDB and in pieces: a piece of up to 1 MiB is one value on its own
 * overflow pages, written once (MDB_RESERVE, no copy of the B-tree page
 * around it) and read by pointer; the write is an ordinary put, so it is
 * in the group's single fsync and in the replicated entry like every other
 * change, and erasure zeroes it in place like any record (wipe mode). Files
 * next to the store would need their own fsyncs, their own replication and
 * their own crash cleanup (bench/attachments measures both: bench/RESULTS.md).
 *
 * Reference counting is explicit and kept in the same write as the change
 * that causes it: a piece counts its occurrences in attachments' piece
 * lists (chunk_meta), an attachment its messages (attachment_refs, one key
 * per message so that dropping one is exact and idempotent). Whatever is
 * stored and not referred to has an entry in blob_pending keyed by the time
 * it was stored or last touched; the sweep walks those oldest first and
 * removes what is still unreferenced and untouched since.
 */
#include <stdbool.h>
#include <string.h>

#include "helpwire/store/v1/records.pb-c.h"
#include "server/store/records_internal.h"

#define META_LEN 16 /* be64 touched ms, be32 size, be32 refs */
#define PENDING_CHUNK 'c'
#define PENDING_ATTACHMENT 'a'

static void put_meta(unsigned char *m, int64_t touched, uint32_t size, uint32_t refs)
{
    hw_be64_put(m, touched > 0 ? (uint64_t)touched : 0);
    hw_be32_put(m + 8, size);
    hw_be32_put(m + 12, refs);
}

static int get_meta(hw_store_txn *t, const unsigned char *digest, int64_t *touched, uint32_t *size,
                    uint32_t *refs)
{
    MDB_val v;
    int rc = hw_store__get(t, HW_DB_CHUNK_META, digest, HW_STORE_SHA256_LEN, &v);
    if (rc != HW_OK)
        return rc;
    if (v.mv_size != META_LEN)
        return HW_ECORRUPT;
    const unsigned char *m = v.mv_data;
    if (touched)
        *touched = (int64_t)hw_be64_get(m);
    if (size)
        *size = hw_be32_get(m + 8);
    if (refs)
        *refs = hw_be32_get(m + 12);
    return HW_OK;
}

static int pending_put(hw_store_txn *w, int64_t ms, char kind, const void *key, size_t kl)
{
    hw_kb k;
    HW_KB_INIT(&k);
    hw_kb_be64(&k, ms > 0 ? (uint64_t)ms : 0);
    hw_kb_u8(&k, (unsigned char)kind);
    hw_kb_bytes(&k, key, kl);
    if (k.overflow)
        return HW_EINVALID;
    return hw_store__put(w, HW_DB_BLOB_PENDING, k.b, k.n, "", 0, 0);
}

static bool attachment_id_ok(const char *id)
{
    if (!id || strlen(id) != HW_STORE_ATTACHMENT_ID_LEN || id[0] != 'a' || id[1] != '-')
        return false;
    for (size_t i = 2; i < HW_STORE_ATTACHMENT_ID_LEN; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    return true;
}

int hw_store_chunk_put(hw_store_txn *w, const unsigned char *digest, const void *data, size_t len,
                       int64_t now_ms, bool *existed)
{
    if (existed)
        *existed = false;
    if (!w || !w->writable || !digest || !data || len == 0 || len > HW_STORE_CHUNK_MAX)
        return HW_EINVALID;
    uint32_t size, refs;
    int64_t touched;
    int rc = get_meta(w, digest, &touched, &size, &refs);
    if (rc == HW_OK) {
        if (existed)
            *existed = true;
        if (refs > 0 || touched >= now_ms)
            return HW_OK;
        unsigned char m[META_LEN];
        put_meta(m, now_ms, size, refs);
        if ((rc = hw_store__put(w, HW_DB_CHUNK_META, digest, HW_STORE_SHA256_LEN, m, sizeof m, 0)) != HW_OK)
            return rc;
        return pending_put(w, now_ms, PENDING_CHUNK, digest, HW_STORE_SHA256_LEN);
    }
    if (rc != HW_ENOTFOUND)
        return rc;
    void *dst;
    if ((rc = hw_store__reserve(w, HW_DB_CHUNKS, digest, HW_STORE_SHA256_LEN, len, 0, &dst)) != HW_OK)
        return rc;
    memcpy(dst, data, len);
    unsigned char m[META_LEN];
    put_meta(m, now_ms, (uint32_t)len, 0);
    if ((rc = hw_store__put(w, HW_DB_CHUNK_META, digest, HW_STORE_SHA256_LEN, m, sizeof m, 0)) != HW_OK)
        return rc;
    return pending_put(w, now_ms, PENDING_CHUNK, digest, HW_STORE_SHA256_LEN);
}

int hw_store_chunk_stat(hw_store_txn *t, const unsigned char *digest, uint32_t *size, uint32_t *refs)
{
    if (!t || !digest)
        return HW_EINVALID;
    return get_meta(t, digest, NULL, size, refs);
}

int hw_store_chunk_read(hw_store_txn *t, const unsigned char *digest, const void **data, size_t *len)
{
    if (!t || !digest)
        return HW_EINVALID;
    MDB_val v;
    int rc = hw_store__get(t, HW_DB_CHUNKS, digest, HW_STORE_SHA256_LEN, &v);
    if (rc != HW_OK)
        return rc;
    *data = v.mv_data;
    *len = v.mv_size;
    return HW_OK;
}

/* Removes a piece and its meta, zeroing the bytes first. */
static int chunk_remove(hw_store_txn *w, const unsigned char *digest)
{
    int rc = hw_store__wipe_del(w, HW_DB_CHUNKS, digest, HW_STORE_SHA256_LEN);
    if (rc != HW_OK && rc != HW_ENOTFOUND)
        return rc;
    rc = hw_store__del(w, HW_DB_CHUNK_META, digest, HW_STORE_SHA256_LEN);
    return rc == HW_ENOTFOUND ? HW_OK : rc;
}

/* Adds delta (+1 or -1) to a piece's references; at 0 the piece goes
 * (*gone set) when remove_at_zero. */
static int chunk_ref(hw_store_txn *w, const unsigned char *digest, int delta, bool remove_at_zero, bool *gone)
{
    int64_t touched;
    uint32_t size, refs;
    int rc = get_meta(w, digest, &touched, &size, &refs);
    if (rc != HW_OK)
        return rc;
    if (delta < 0 && refs == 0)
        return HW_ECORRUPT;
    refs = delta > 0 ? refs + 1 : refs - 1;
    if (refs == 0 && remove_at_zero) {
        if (gone)
            *gone = true;
        return chunk_remove(w, digest);
    }
    unsigned char m[META_LEN];
    put_meta(m, touched, size, refs);
    return hw_store__put(w, HW_DB_CHUNK_META, digest, HW_STORE_SHA256_LEN, m, sizeof m, 0);
}

static int record_get(hw_store_txn *t, const char *id, hw_arena *a, Helpwire__Store__V1__AttachmentRecord **out)
{
    MDB_val v;
    int rc = hw_store__get(t, HW_DB_ATTACHMENTS, id, strlen(id), &v);
    if (rc != HW_OK)
        return rc;
    ProtobufCMessage *m;
    if ((rc = hw_records__unpack(&helpwire__store__v1__attachment_record__descriptor, a, &v, &m)) != HW_OK)
        return rc;
    *out = (Helpwire__Store__V1__AttachmentRecord *)m;
    if ((*out)->n_chunks != (*out)->n_chunk_sizes)
        return HW_ECORRUPT;
    for (size_t i = 0; i < (*out)->n_chunks; i++)
        if ((*out)->chunks[i].len != HW_STORE_SHA256_LEN)
            return HW_ECORRUPT;
    return HW_OK;
}

int hw_store_attachment_get(hw_store_txn *t, const char *id, hw_arena *a, hw_store_attachment *out)
{
    if (!t || !attachment_id_ok(id) || !a || !out)
        return HW_EINVALID;
    Helpwire__Store__V1__AttachmentRecord *r;
    int rc = record_get(t, id, a, &r);
    if (rc != HW_OK)
        return rc;
    Helpwire__V1__Attachment *info =
        helpwire__v1__attachment__unpack(hw_arena_allocator(a), r->info.len, r->info.data);
    if (!info)
        return HW_ECORRUPT;
    const unsigned char **ch = hw_arena_alloc(a, (r->n_chunks ? r->n_chunks : 1) * sizeof *ch);
    if (!ch)
        return HW_ENOMEM;
    for (size_t i = 0; i < r->n_chunks; i++)
        ch[i] = r->chunks[i].data;
    out->info = info;
    out->n_chunks = r->n_chunks;
    out->chunks = ch;
    out->chunk_sizes = r->chunk_sizes;
    out->created_unix_ms = r->created_unix_ms;
    out->touched_unix_ms = r->touched_unix_ms;
    return HW_OK;
}

static int record_put(hw_store_txn *w, const char *id, const Helpwire__Store__V1__AttachmentRecord *r)
{
    return hw_store__put_msg(w, HW_DB_ATTACHMENTS, id, strlen(id), &r->base, 0);
}

int hw_store_attachment_put(hw_store_txn *w, const Helpwire__V1__Attachment *info,
                            const unsigned char *chunks, size_t n, int64_t now_ms, bool *existed,
                            size_t *missing)
{
    if (existed)
        *existed = false;
    if (!w || !w->writable || !info || !attachment_id_ok(info->id) || !chunks || n == 0 ||
        n > HW_STORE_ATTACHMENT_CHUNKS_MAX)
        return HW_EINVALID;
    hw_arena *a = w->arena;
    Helpwire__Store__V1__AttachmentRecord *old;
    int rc = record_get(w, info->id, a, &old);
    if (rc == HW_OK) {
        if (existed)
            *existed = true;
        uint64_t refs;
        if ((rc = hw_store_attachment_refs(w, info->id, &refs)) != HW_OK)
            return rc;
        if (refs > 0 || old->touched_unix_ms >= now_ms)
            return HW_OK;
        old->touched_unix_ms = now_ms;
        if ((rc = record_put(w, info->id, old)) != HW_OK)
            return rc;
        return pending_put(w, now_ms, PENDING_ATTACHMENT, info->id, strlen(info->id));
    }
    if (rc != HW_ENOTFOUND)
        return rc;

    uint32_t *sizes = hw_arena_alloc(a, n * sizeof *sizes);
    ProtobufCBinaryData *ds = hw_arena_alloc(a, n * sizeof *ds);
    if (!sizes || !ds)
        return HW_ENOMEM;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *d = chunks + i * HW_STORE_SHA256_LEN;
        if ((rc = get_meta(w, d, NULL, &sizes[i], NULL)) != HW_OK) {
            if (rc == HW_ENOTFOUND && missing)
                *missing = i;
            return rc;
        }
        total += sizes[i];
        ds[i].data = (uint8_t *)d;
        ds[i].len = HW_STORE_SHA256_LEN;
    }
    if (total != info->size_bytes)
        return HW_EINVALID;
    for (size_t i = 0; i < n; i++)
        if ((rc = chunk_ref(w, chunks + i * HW_STORE_SHA256_LEN, +1, false, NULL)) != HW_OK)
            return rc;

    Helpwire__V1__Attachment copy = *info;
    copy.location = NULL; /* files only */
    size_t il = helpwire__v1__attachment__get_packed_size(&copy);
    uint8_t *ib = hw_arena_alloc(a, il ? il : 1);
    if (!ib)
        return HW_ENOMEM;
    helpwire__v1__attachment__pack(&copy, ib);
    Helpwire__Store__V1__AttachmentRecord r = HELPWIRE__STORE__V1__ATTACHMENT_RECORD__INIT;
    r.info.data = ib;
    r.info.len = il;
    r.n_chunks = n;
    r.chunks = ds;
    r.n_chunk_sizes = n;
    r.chunk_sizes = sizes;
    r.created_unix_ms = now_ms;
    r.touched_unix_ms = now_ms;
    if ((rc = record_put(w, info->id, &r)) != HW_OK)
        return rc;
    return pending_put(w, now_ms, PENDING_ATTACHMENT, info->id, strlen(info->id));
}

static void ref_prefix(hw_kb *k, const char *id)
{
    HW_KB_INIT(k);
    hw_kb_str0(k, id);
}

static int ref_key(hw_kb *k, const char *id, const char *ticket_id, const char *message_id)
{
    ref_prefix(k, id);
    hw_kb_str0(k, ticket_id);
    hw_kb_str(k, message_id);
    return k->overflow ? HW_EINVALID : HW_OK;
}

static int count_visit(hw_store_txn *t, void *arg, const MDB_val *k, const MDB_val *v)
{
    (void)t, (void)k, (void)v;
    ++*(uint64_t *)arg;
    return 0;
}

int hw_store_attachment_refs(hw_store_txn *t, const char *id, uint64_t *n)
{
    if (!t || !attachment_id_ok(id) || !n)
        return HW_EINVALID;
    *n = 0;
    hw_kb p;
    ref_prefix(&p, id);
    return hw_records__scan(t, HW_DB_ATTACHMENT_REFS, p.b, p.n, 0, NULL, 0, count_visit, n);
}

/* Adds message (ticket_id, message_id)'s reference to id (records.c's message
 * append); HW_ENOTFOUND when the attachment is not stored. */
int hw_records__attachment_ref(hw_store_txn *w, const char *id, const char *ticket_id, const char *message_id)
{
    if (!w || !w->writable || !attachment_id_ok(id) || !ticket_id || !*ticket_id || !message_id || !*message_id)
        return HW_EINVALID;
    MDB_val v;
    int rc = hw_store__get(w, HW_DB_ATTACHMENTS, id, strlen(id), &v);
    if (rc != HW_OK)
        return rc;
    hw_kb k;
    if ((rc = ref_key(&k, id, ticket_id, message_id)) != HW_OK)
        return rc;
    return hw_store__put(w, HW_DB_ATTACHMENT_REFS, k.b, k.n, "", 0, 0);
}

/* Removes the attachment record and drops its pieces' references (pieces
 * at none removed, zeroed). The caller has checked that no message refers
 * to it. */
static int attachment_remove(hw_store_txn *w, const char *id, hw_attachment_sweep_counts *c)
{
    Helpwire__Store__V1__AttachmentRecord *r;
    int rc = record_get(w, id, w->arena, &r);
    if (rc != HW_OK)
        return rc;
    for (size_t i = 0; i < r->n_chunks; i++) {
        bool gone = false;
        rc = chunk_ref(w, r->chunks[i].data, -1, true, &gone);
        if (rc == HW_ENOTFOUND)
            continue; /* the same piece twice in one file, gone at its last occurrence */
        if (rc != HW_OK)
            return rc;
        if (gone && c)
            c->chunks++;
    }
    if ((rc = hw_store__wipe_del(w, HW_DB_ATTACHMENTS, id, strlen(id))) != HW_OK)
        return rc;
    if (c)
        c->attachments++;
    return HW_OK;
}

int hw_store_attachment_unref(hw_store_txn *w, const char *id, const char *ticket_id, const char *message_id,
                              bool *removed)
{
    if (removed)
        *removed = false;
    if (!w || !w->writable || !attachment_id_ok(id) || !ticket_id || !*ticket_id || !message_id || !*message_id)
        return HW_EINVALID;
    hw_kb k;
    int rc = ref_key(&k, id, ticket_id, message_id);
    if (rc != HW_OK)
        return rc;
    if ((rc = hw_store__del(w, HW_DB_ATTACHMENT_REFS, k.b, k.n)) != HW_OK)
        return rc;
    uint64_t n;
    if ((rc = hw_store_attachment_refs(w, id, &n)) != HW_OK)
        return rc;
    if (n > 0)
        return HW_OK;
    rc = attachment_remove(w, id, NULL);
    if (rc == HW_ENOTFOUND)
        return HW_OK;
    if (rc == HW_OK && removed)
        *removed = true;
    return rc;
}

int hw_records__message_unref(hw_store_txn *w, const Helpwire__V1__TicketMessage *m)
{
    for (size_t i = 0; i < m->n_attachments; i++) {
        const Helpwire__V1__Attachment *at = m->attachments[i];
        if (!at || !at->id || !*at->id)
            continue;
        int rc = hw_store_attachment_unref(w, at->id, m->ticket_id, m->id, NULL);
        if (rc != HW_OK && rc != HW_ENOTFOUND && rc != HW_EINVALID)
            return rc;
    }
    return HW_OK;
}

/* ---- the sweep ------------------------------------------------------------ */

typedef struct pending_ent {
    unsigned char key[64];
    size_t kl;
} pending_ent;

typedef struct pending_scan {
    int64_t cutoff;
    size_t max, n;
    pending_ent *e;
} pending_scan;

static int pending_visit(hw_store_txn *t, void *arg, const MDB_val *k, const MDB_val *v)
{
    (void)t, (void)v;
    pending_scan *s = arg;
    if (s->n == s->max)
        return HW_STOP;
    if (k->mv_size < 10 || k->mv_size > sizeof s->e[0].key)
        return HW_ECORRUPT;
    if ((int64_t)hw_be64_get(k->mv_data) >= s->cutoff)
        return HW_STOP;
    memcpy(s->e[s->n].key, k->mv_data, k->mv_size);
    s->e[s->n++].kl = k->mv_size;
    return 0;
}

static int sweep_one(hw_store_txn *w, const pending_ent *e, hw_attachment_sweep_counts *c)
{
    int64_t ms = (int64_t)hw_be64_get(e->key);
    const unsigned char *key = e->key + 9;
    size_t kl = e->kl - 9;
    int rc;
    if (e->key[8] == PENDING_CHUNK) {
        if (kl != HW_STORE_SHA256_LEN)
            return HW_ECORRUPT;
        int64_t touched;
        uint32_t refs;
        rc = get_meta(w, key, &touched, NULL, &refs);
        if (rc == HW_ENOTFOUND)
            return HW_OK;
        if (rc != HW_OK)
            return rc;
        if (refs > 0 || touched > ms)
            return HW_OK; /* in use, or touched since: a newer entry stands for it */
        if ((rc = chunk_remove(w, key)) == HW_OK)
            c->chunks++;
        return rc;
    }
    if (e->key[8] != PENDING_ATTACHMENT || kl != HW_STORE_ATTACHMENT_ID_LEN)
        return HW_ECORRUPT;
    char id[HW_STORE_ATTACHMENT_ID_LEN + 1];
    memcpy(id, key, kl);
    id[kl] = 0;
    Helpwire__Store__V1__AttachmentRecord *r;
    rc = record_get(w, id, w->arena, &r);
    if (rc == HW_ENOTFOUND)
        return HW_OK;
    if (rc != HW_OK)
        return rc;
    if (r->touched_unix_ms > ms)
        return HW_OK;
    uint64_t refs;
    if ((rc = hw_store_attachment_refs(w, id, &refs)) != HW_OK)
        return rc;
    return refs > 0 ? HW_OK : attachment_remove(w, id, c);
}

int hw_store_attachment_sweep(hw_store_txn *w, int64_t cutoff_ms, size_t max_visit,
                              hw_attachment_sweep_counts *c)
{
    hw_attachment_sweep_counts local = {0};
    if (!c)
        c = &local;
    memset(c, 0, sizeof *c);
    if (!w || !w->writable || max_visit == 0 || max_visit > HW_STORE_LIST_MAX)
        return HW_EINVALID;
    pending_scan s = {.cutoff = cutoff_ms, .max = max_visit};
    if (!(s.e = hw_arena_alloc(w->arena, max_visit * sizeof *s.e)))
        return HW_ENOMEM;
    int rc = hw_records__scan(w, HW_DB_BLOB_PENDING, NULL, 0, 0, NULL, 0, pending_visit, &s);
    for (size_t i = 0; rc == HW_OK && i < s.n; i++) {
        /* Attachments first in key order: an attachment and its pieces
         * stored in the same millisecond go together. */
        if ((rc = sweep_one(w, &s.e[i], c)) != HW_OK)
            break;
        rc = hw_store__del(w, HW_DB_BLOB_PENDING, s.e[i].key, s.e[i].kl);
        rc = rc == HW_ENOTFOUND ? HW_OK : rc;
        c->visited++;
    }
    return rc;
}

static int meta_sum(hw_store_txn *t, void *arg, const MDB_val *k, const MDB_val *v)
{
    (void)t, (void)k;
    hw_store_blob_counts *c = arg;
    if (v->mv_size != META_LEN)
        return HW_ECORRUPT;
    c->chunks++;
    c->chunk_bytes += hw_be32_get((const unsigned char *)v->mv_data + 8);
    return 0;
}

int hw_store_blob_counts_get(hw_store_txn *t, hw_store_blob_counts *c)
{
    if (!t || !c)
        return HW_EINVALID;
    memset(c, 0, sizeof *c);
    int rc = hw_store__count(t, HW_DB_ATTACHMENTS, &c->attachments);
    if (rc == HW_OK)
        rc = hw_store__count(t, HW_DB_ATTACHMENT_REFS, &c->refs);
    if (rc == HW_OK)
        rc = hw_store__count(t, HW_DB_BLOB_PENDING, &c->pending);
    if (rc == HW_OK)
        rc = hw_records__scan(t, HW_DB_CHUNK_META, NULL, 0, 0, NULL, 0, meta_sum, c);
    return rc;
}
