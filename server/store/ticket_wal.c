/*
 * ticket_wal: the write-ahead part of the ticket log, so that appending to
 * a conversation does not rewrite a page of that conversation.
 *
 * A ticket's log (HW_DB_TICKET_LOG, key ticket id \0 be64 position) keeps
 * a ticket's entries together, which is what its readers want, but a write
 * group that appends to a hundred tickets then dirties a hundred leaf
 * pages scattered over the database (the page census measured 0.88 pages
 * per Route, most of what a Route wrote). Here an append goes instead to
 * the end of one database for every ticket (HW_DB_TICKET_WAL, key be64
 * global sequence, written with MDB_APPEND: a group's appends fill the same
 * few pages), chained to the ticket's previous entry there; the ticket's
 * head (HW_DB_TICKET_HEADS, key ticket id) says where its chain starts and
 * how far the ticket log itself goes. Every HW_TWAL_FLUSH appends a ticket's
 * pending entries are copied into its log at once: one page of the log per
 * HW_TWAL_FLUSH appends instead of one per append.
 *
 * Readers (records.c) see a ticket's entries as the log's, then the pending
 * ones of the chain (at most HW_TWAL_FLUSH - 1, newest first from the
 * head). The write-ahead database is trimmed from its oldest end as it
 * grows past HW_TWAL_KEEP entries: a ticket with entries there that were
 * never copied is flushed first, and a ticket whose every entry goes loses
 * its head (the next append finds its place in the log again). Erasure and
 * deletion settle a ticket first: pending entries are copied, its entries
 * in the write-ahead database removed (zeroed on erasure), its head
 * removed, so that the log is again the only copy.
 *
 * Values. Write-ahead entry: u8 id length, the ticket id, be64 position,
 * be64 sequence of the ticket's previous entry here (0: none), then the
 * ticket log's value (HW_TLOG_HDR header and the record), copied as it is.
 * A ticket without a head whose log is shorter than HW_TWAL_DIRECT entries
 * (a ticket being opened) or that sorts last in the ticket log is appended
 * to its log directly: tickets opened together have neighbouring ids and
 * share the log's pages, and a short-lived ticket then never costs a head
 * and a copy.
 * Head (varints, see head_get): last position, last message sequence,
 * last event sequence, newest entry here, entries not yet in the ticket
 * log, then the ticket record's version, message count and update time
 * when an append changed only those (all 0 otherwise).
 *
 * The ticket record. An append also bumps its ticket's version, message
 * count and update time, which would rewrite the ticket record (one more
 * scattered page per Route). When a ticket is stored with nothing else
 * changed (hw_store_ticket_put compares), the three fields go into its
 * head instead, and every read of a ticket (records.c) lays the head's
 * values over the record's. A full store of the ticket clears them; a head
 * that goes (trim, settle) writes them into the record first.
 * Only the writer changes them; every put and delete goes through the
 * engine, so replicas apply the same bytes.
 */
#include <stdbool.h>
#include <string.h>

#include "helpwire/v1/tickets.pb-c.h"

#include "server/store/records_internal.h"
#include "server/store/store_internal.h"

#define TRIM_EVERY 256u /* appends between looks at the oldest end */
#define TRIM_MAX 1024u  /* entries removed in one trim */

typedef struct head {
    uint64_t last_pos, last_msg_seq, last_evt_seq, newest, indexed_pos;
    /* The ticket record's fields an append changes, when newer than the
     * record's (t_version 0: the record is current). */
    uint64_t t_version, t_count, t_updated;
} head;

/* Heads are read and written on every append of an active ticket, and the
 * pages they are on are what a group of appends dirties besides the end
 * of the write-ahead database: their fields go as varints (LEB128, as in
 * protobuf; eight of them, mostly small numbers), about 20 bytes a head.
 * The pending count (last position - last position in the log) stands for
 * the latter. */
#define HEAD_FIELDS 8
#define HEAD_MAX (HEAD_FIELDS * 10)

static size_t varint_put(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    return n;
}

/* Reads a varint at *p (end: one past the last byte); false when cut. */
static bool varint_get(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned shift = 0; *p < end && shift < 64; shift += 7) {
        unsigned char b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return true;
        }
    }
    return false;
}

static int head_get(hw_store_txn *t, const char *id, head *h, bool *found)
{
    MDB_val v;
    int rc = hw_store__get(t, HW_DB_TICKET_HEADS, id, strlen(id), &v);
    *found = false;
    if (rc == HW_ENOTFOUND)
        return HW_OK;
    if (rc != HW_OK)
        return rc;
    const unsigned char *p = v.mv_data, *end = p + v.mv_size;
    uint64_t f[HEAD_FIELDS];
    for (int i = 0; i < HEAD_FIELDS; i++)
        if (!varint_get(&p, end, &f[i]))
            return HW_ECORRUPT;
    if (p != end || f[4] > f[0])
        return HW_ECORRUPT;
    *h = (head){.last_pos = f[0], .last_msg_seq = f[1], .last_evt_seq = f[2], .newest = f[3],
                .indexed_pos = f[0] - f[4], .t_version = f[5], .t_count = f[6], .t_updated = f[7]};
    if (h->newest == 0 && h->indexed_pos != h->last_pos)
        return HW_ECORRUPT;
    *found = true;
    return HW_OK;
}

static int head_put(hw_store_txn *w, const char *id, const head *h)
{
    unsigned char b[HEAD_MAX];
    const uint64_t f[HEAD_FIELDS] = {h->last_pos,  h->last_msg_seq, h->last_evt_seq,
                                     h->newest,    h->last_pos - h->indexed_pos,
                                     h->t_version, h->t_count,      h->t_updated};
    size_t n = 0;
    for (int i = 0; i < HEAD_FIELDS; i++)
        n += varint_put(b + n, f[i]);
    return hw_store__put(w, HW_DB_TICKET_HEADS, id, strlen(id), b, n, 0);
}

/* Parses the write-ahead entry v (of key gseq) into e. */
static int entry_parse(uint64_t gseq, const MDB_val *v, hw_twal_entry *e)
{
    const unsigned char *p = v->mv_data;
    if (v->mv_size < 1)
        return HW_ECORRUPT;
    size_t idl = p[0];
    if (v->mv_size < 1 + idl + 16 + HW_TLOG_HDR)
        return HW_ECORRUPT;
    e->gseq = gseq;
    e->id = (const char *)p + 1;
    e->idl = idl;
    e->pos = hw_be64_get(p + 1 + idl);
    e->prev = hw_be64_get(p + 1 + idl + 8);
    e->val = p + 1 + idl + 16;
    e->vl = v->mv_size - (1 + idl + 16);
    return HW_OK;
}

static bool entry_of(const hw_twal_entry *e, const char *id)
{
    return e->idl == strlen(id) && memcmp(e->id, id, e->idl) == 0;
}

static int entry_get(hw_store_txn *t, uint64_t gseq, hw_twal_entry *e, bool *found)
{
    unsigned char k[8];
    hw_be64_put(k, gseq);
    MDB_val v;
    int rc = hw_store__get(t, HW_DB_TICKET_WAL, k, sizeof k, &v);
    *found = rc == HW_OK;
    if (rc == HW_ENOTFOUND)
        return HW_OK;
    return rc != HW_OK ? rc : entry_parse(gseq, &v, e);
}

/* The pending entries of a ticket whose head is h, oldest first, into
 * *out (allocated in a). */
static int pending_of(hw_store_txn *t, const char *id, const head *h, hw_arena *a, hw_twal_entry **out, size_t *n)
{
    size_t want = (size_t)(h->last_pos - h->indexed_pos);
    *out = NULL;
    *n = 0;
    if (want == 0)
        return HW_OK;
    if (want > HW_TWAL_PENDING_MAX)
        return HW_ECORRUPT;
    hw_twal_entry *es = hw_arena_alloc(a, want * sizeof *es);
    if (!es)
        return HW_ENOMEM;
    uint64_t g = h->newest;
    size_t got = 0;
    while (got < want) {
        hw_twal_entry e;
        bool found;
        int rc = entry_get(t, g, &e, &found);
        if (rc != HW_OK)
            return rc;
        if (!found || !entry_of(&e, id) || e.pos != h->last_pos - got)
            return HW_ECORRUPT; /* a pending entry is never trimmed */
        es[want - 1 - got] = e;
        got++;
        g = e.prev;
    }
    *out = es;
    *n = want;
    return HW_OK;
}

int hw_twal_pending(hw_store_txn *t, const char *ticket_id, hw_arena *a, hw_twal_entry **out, size_t *n)
{
    head h;
    bool found;
    *out = NULL;
    *n = 0;
    int rc = head_get(t, ticket_id, &h, &found);
    if (rc != HW_OK || !found)
        return rc;
    return pending_of(t, ticket_id, &h, a, out, n);
}

/* Copies the pending entries of the ticket into its log; h->indexed_pos
 * moves to h->last_pos (the caller stores h). */
static int flush(hw_store_txn *w, const char *id, head *h)
{
    hw_twal_entry *es;
    size_t n;
    int rc = pending_of(w, id, h, w->arena, &es, &n);
    if (rc != HW_OK)
        return rc;
    /* The entries point into the map or the transaction's dirty pages:
     * copy every one out before the first put (a put may spill or move
     * the pages they are on). */
    for (size_t i = 0; i < n; i++) {
        unsigned char *copy = hw_arena_alloc(w->arena, es[i].vl);
        if (!copy)
            return HW_ENOMEM;
        memcpy(copy, es[i].val, es[i].vl);
        es[i].val = copy;
        es[i].id = NULL;
    }
    hw_kb k;
    for (size_t i = 0; rc == HW_OK && i < n; i++) {
        HW_KB_INIT(&k);
        hw_kb_str0(&k, id);
        hw_kb_be64(&k, es[i].pos);
        if (k.overflow)
            return HW_EINVALID;
        rc = hw_store__put(w, HW_DB_TICKET_LOG, k.b, k.n, es[i].val, es[i].vl, MDB_NOOVERWRITE);
    }
    if (rc == HW_OK)
        h->indexed_pos = h->last_pos;
    return rc;
}

/* Writes the head's ticket fields into the ticket record (when newer) and
 * removes the head. The fields are not indexed: no index changes. */
static int head_drop(hw_store_txn *w, const char *id, const head *h)
{
    size_t idl = strlen(id);
    if (h->t_version != 0) {
        MDB_val v;
        int rc = hw_store__get(w, HW_DB_TICKETS, id, idl, &v);
        if (rc == HW_OK) {
            Helpwire__V1__Ticket *tk = helpwire__v1__ticket__unpack(hw_arena_allocator(w->arena), v.mv_size,
                                                                    v.mv_data);
            if (!tk)
                return HW_ECORRUPT;
            if (h->t_version > tk->version) {
                hw_twal_overlay_apply(tk, h->t_version, h->t_count, h->t_updated);
                if ((rc = hw_store__put_msg(w, HW_DB_TICKETS, id, idl, &tk->base, 0)) != HW_OK)
                    return rc;
            }
        } else if (rc != HW_ENOTFOUND) {
            return rc;
        }
    }
    return hw_store__del(w, HW_DB_TICKET_HEADS, id, idl);
}

void hw_twal_overlay_apply(Helpwire__V1__Ticket *tk, uint64_t version, uint64_t count, uint64_t updated)
{
    tk->version = version;
    tk->message_count = (uint32_t)count;
    tk->updated_unix_ms = (int64_t)updated;
}

int hw_twal_ticket_overlay(hw_store_txn *t, Helpwire__V1__Ticket *tk)
{
    if (!tk || !tk->id || !*tk->id)
        return HW_OK;
    head h;
    bool found;
    int rc = head_get(t, tk->id, &h, &found);
    if (rc == HW_OK && found && h.t_version > tk->version) /* newer than the record */
        hw_twal_overlay_apply(tk, h.t_version, h.t_count, h.t_updated);
    return rc;
}

int hw_twal_has_head(hw_store_txn *t, const char *ticket_id, bool *has)
{
    head h;
    return head_get(t, ticket_id, &h, has);
}

int hw_twal_ticket_touch(hw_store_txn *w, const Helpwire__V1__Ticket *tk, bool *done)
{
    head h;
    bool found;
    *done = false;
    int rc = head_get(w, tk->id, &h, &found);
    if (rc != HW_OK || !found || tk->version == 0)
        return rc;
    h.t_version = tk->version;
    h.t_count = tk->message_count;
    h.t_updated = (uint64_t)tk->updated_unix_ms;
    if ((rc = head_put(w, tk->id, &h)) == HW_OK)
        *done = true;
    return rc;
}

int hw_twal_ticket_stored(hw_store_txn *w, const char *ticket_id)
{
    head h;
    bool found;
    int rc = head_get(w, ticket_id, &h, &found);
    if (rc != HW_OK || !found || h.t_version == 0)
        return rc;
    h.t_version = h.t_count = h.t_updated = 0;
    return head_put(w, ticket_id, &h);
}

/* The last position and kind sequences of a ticket from its log alone. */
static int head_from_log(hw_store_txn *w, const char *id, head *h)
{
    hw_kb p;
    HW_KB_INIT(&p);
    hw_kb_str0(&p, id);
    if (p.overflow)
        return HW_EINVALID;
    uint64_t pos_m, pos_e;
    int rc = hw_records__log_tail(w, &p, HW_TLOG_MESSAGE, &pos_m, &h->last_msg_seq);
    if (rc == HW_OK)
        rc = hw_records__log_tail(w, &p, HW_TLOG_EVENT, &pos_e, &h->last_evt_seq);
    h->last_pos = h->indexed_pos = pos_m;
    h->newest = 0;
    h->t_version = h->t_count = h->t_updated = 0;
    return rc;
}

/* Removes up to TRIM_MAX of the oldest entries while more than
 * HW_TWAL_KEEP are kept (their tickets flushed first; a ticket with no
 * entry left loses its head). */
static int trim(hw_store_txn *w, uint64_t newest)
{
    MDB_cursor *c;
    int rc = hw_store__cursor(w, HW_DB_TICKET_WAL, &c);
    if (rc != HW_OK)
        return rc;
    MDB_val k, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    mdb_cursor_close(c);
    if (mrc == MDB_NOTFOUND)
        return HW_OK;
    if (mrc != 0)
        return hw_store__err(w, mrc);
    if (k.mv_size != 8)
        return HW_ECORRUPT;
    uint64_t first = hw_be64_get(k.mv_data);
    if (newest - first < HW_TWAL_KEEP)
        return HW_OK;
    uint64_t end = newest - HW_TWAL_KEEP; /* entries below end go */
    if (end - first > TRIM_MAX)
        end = first + TRIM_MAX;
    for (uint64_t g = first; g < end; g++) {
        hw_twal_entry e;
        bool found;
        if ((rc = entry_get(w, g, &e, &found)) != HW_OK)
            return rc;
        if (!found)
            continue; /* removed with its ticket */
        char id[256];
        memcpy(id, e.id, e.idl);
        id[e.idl] = '\0';
        head h;
        bool has_head;
        if ((rc = head_get(w, id, &h, &has_head)) != HW_OK)
            return rc;
        if (has_head && h.newest < end) { /* every entry of the ticket goes */
            if (h.indexed_pos < h.last_pos && (rc = flush(w, id, &h)) != HW_OK)
                return rc;
            rc = head_drop(w, id, &h);
        } else if (has_head && e.pos > h.indexed_pos) {
            if ((rc = flush(w, id, &h)) == HW_OK)
                rc = head_put(w, id, &h);
        }
        if (rc != HW_OK)
            return rc;
        unsigned char key[8];
        hw_be64_put(key, g);
        if ((rc = hw_store__del(w, HW_DB_TICKET_WAL, key, sizeof key)) != HW_OK)
            return rc;
    }
    return HW_OK;
}

/* Whether the ticket (prefix: its id \0) sorts last in the ticket log:
 * no key of another ticket after its own, so that appending to it writes
 * the log's last page (a new ticket, the newest of a run). */
static int log_ends_with(hw_store_txn *w, const hw_kb *prefix, bool *last)
{
    MDB_cursor *c;
    int rc = hw_store__cursor(w, HW_DB_TICKET_LOG, &c);
    if (rc != HW_OK)
        return rc;
    MDB_val k, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    mdb_cursor_close(c);
    if (mrc == MDB_NOTFOUND) {
        *last = true;
        return HW_OK;
    }
    if (mrc != 0)
        return hw_store__err(w, mrc);
    size_t n = k.mv_size < prefix->n ? k.mv_size : prefix->n;
    int cmp = memcmp(k.mv_data, prefix->b, n);
    /* The last key is the ticket's own, or sorts before the ticket's. */
    *last = cmp < 0 || (cmp == 0 && k.mv_size >= prefix->n);
    return HW_OK;
}

/* Appends straight to the ticket's log (no head: every entry is there). */
static int append_to_log(hw_store_txn *w, const hw_kb *prefix, const head *h, int kind,
                         const ProtobufCMessage *m, uint64_t *seq_field, uint64_t *seq_out)
{
    uint64_t pos = h->last_pos + 1;
    uint64_t seq = (kind == HW_TLOG_MESSAGE ? h->last_msg_seq : h->last_evt_seq) + 1;
    if (seq_field)
        *seq_field = seq;
    size_t body = protobuf_c_message_get_packed_size(m);
    unsigned char *dst;
    int rc = hw_records__log_reserve(w, prefix, pos, kind, seq, body, &dst);
    if (rc != HW_OK) {
        if (seq_field)
            *seq_field = 0;
        return rc;
    }
    if (protobuf_c_message_pack(m, dst) != body)
        return HW_EIO;
    if (seq_out)
        *seq_out = seq;
    return HW_OK;
}

int hw_twal_append(hw_store_txn *w, const char *ticket_id, int kind, const ProtobufCMessage *m,
                   uint64_t *seq_field, uint64_t *seq_out)
{
    size_t idl = strlen(ticket_id);
    if (idl == 0 || idl > 255 || (kind != HW_TLOG_MESSAGE && kind != HW_TLOG_EVENT))
        return HW_EINVALID;
    head h;
    bool found;
    int rc = head_get(w, ticket_id, &h, &found);
    if (rc == HW_OK && !found) {
        /* A ticket without a head has its every entry in its log. While
         * that log is short (a ticket being opened: tickets opened together
         * have neighbouring ids, so their logs share pages), or when it
         * sorts last there, appending to the log itself costs no more than
         * appending here, and needs no head and no copy later. */
        hw_kb p;
        bool last;
        HW_KB_INIT(&p);
        hw_kb_str0(&p, ticket_id);
        if (p.overflow)
            return HW_EINVALID;
        if ((rc = head_from_log(w, ticket_id, &h)) == HW_OK &&
            (h.last_pos < HW_TWAL_DIRECT || ((rc = log_ends_with(w, &p, &last)) == HW_OK && last)))
            return append_to_log(w, &p, &h, kind, m, seq_field, seq_out);
    }
    if (rc != HW_OK)
        return rc;

    /* The next global sequence: one more than the last entry's. */
    MDB_cursor *c;
    if ((rc = hw_store__cursor(w, HW_DB_TICKET_WAL, &c)) != HW_OK)
        return rc;
    MDB_val k, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    mdb_cursor_close(c);
    uint64_t gseq = 1;
    if (mrc == 0) {
        if (k.mv_size != 8)
            return HW_ECORRUPT;
        gseq = hw_be64_get(k.mv_data) + 1;
    } else if (mrc != MDB_NOTFOUND) {
        return hw_store__err(w, mrc);
    }

    uint64_t *kind_seq = kind == HW_TLOG_MESSAGE ? &h.last_msg_seq : &h.last_evt_seq;
    uint64_t pos = h.last_pos + 1, seq = *kind_seq + 1;
    if (seq_field)
        *seq_field = seq; /* part of the record packed below */
    size_t body = protobuf_c_message_get_packed_size(m);
    size_t len = 1 + idl + 16 + HW_TLOG_HDR + body;
    unsigned char key[8];
    hw_be64_put(key, gseq);
    void *dst;
    rc = hw_store__reserve(w, HW_DB_TICKET_WAL, key, sizeof key, len, MDB_APPEND, &dst);
    if (rc != HW_OK) {
        if (seq_field)
            *seq_field = 0;
        return rc;
    }
    unsigned char *p = dst;
    p[0] = (unsigned char)idl;
    memcpy(p + 1, ticket_id, idl);
    hw_be64_put(p + 1 + idl, pos);
    hw_be64_put(p + 1 + idl + 8, h.newest);
    p[1 + idl + 16] = (unsigned char)kind;
    hw_be64_put(p + 1 + idl + 17, seq);
    if (protobuf_c_message_pack(m, p + 1 + idl + 16 + HW_TLOG_HDR) != body)
        return HW_EIO;

    h.last_pos = pos;
    *kind_seq = seq;
    h.newest = gseq;
    if (h.last_pos - h.indexed_pos >= HW_TWAL_FLUSH && (rc = flush(w, ticket_id, &h)) != HW_OK)
        return rc;
    if ((rc = head_put(w, ticket_id, &h)) != HW_OK)
        return rc;
    if (gseq % TRIM_EVERY == 0 && (rc = trim(w, gseq)) != HW_OK)
        return rc;
    if (seq_out)
        *seq_out = seq;
    return HW_OK;
}

int hw_twal_settle(hw_store_txn *w, const char *ticket_id, int wipe)
{
    head h;
    bool found;
    int rc = head_get(w, ticket_id, &h, &found);
    if (rc != HW_OK || !found)
        return rc;
    if (h.indexed_pos < h.last_pos && (rc = flush(w, ticket_id, &h)) != HW_OK)
        return rc;
    /* Every entry of the ticket still here, newest first along the chain. */
    for (uint64_t g = h.newest; g != 0;) {
        hw_twal_entry e;
        bool present;
        if ((rc = entry_get(w, g, &e, &present)) != HW_OK)
            return rc;
        if (!present || !entry_of(&e, ticket_id))
            break; /* trimmed from here on */
        uint64_t prev = e.prev;
        unsigned char key[8];
        hw_be64_put(key, g);
        rc = wipe ? hw_store__wipe_del(w, HW_DB_TICKET_WAL, key, sizeof key)
                  : hw_store__del(w, HW_DB_TICKET_WAL, key, sizeof key);
        if (rc != HW_OK)
            return rc;
        g = prev;
    }
    return head_drop(w, ticket_id, &h);
}
