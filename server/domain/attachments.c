/*
 * attachments: the Attachments service and the request checks (see
 * attachments.h).
 *
 * The writer never hashes: PutChunk hashes its piece on the worker before
 * it queues the write, and CommitAttachment hashes the whole content on
 * the worker from the stored pieces (one short read transaction per
 * piece, so a map growth never waits long for it) and queues a write that
 * only checks the pieces are still there and records the attachment. A
 * commit of 20 MiB thus costs the other writes nothing but its small
 * record.
 */
#include "server/domain/attachments.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "server/domain/app.h"
#include "server/store/records.h"

#define MIME_MAX 128
#define NAME_MAX_BYTES 256
#define PLACE_NAME_MAX 256
#define PLACE_ADDRESS_MAX 1024
#define STREAM_WINDOW 4 /* GetAttachment messages queued or in flight at most */

#define KIND(x) HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_##x

/* INVALID_ARGUMENT naming field, in the details and as the text's
 * "field: " prefix. */
static void __attribute__((format(printf, 3, 4))) fail_field(hw_call *call, const char *field, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    hw_call_fail_field(call, field, "%s: %s", field, why);
}

/* ---- checks ---------------------------------------------------------------- */

static bool is_hex_lower(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static bool id_well_formed(const char *id)
{
    return id && strlen(id) == HW_STORE_ATTACHMENT_ID_LEN && id[0] == 'a' && id[1] == '-' &&
           is_hex_lower(id + 2, HW_STORE_ATTACHMENT_ID_LEN - 2);
}

static bool sha_well_formed(const char *s)
{
    return s && strlen(s) == 2 * HW_STORE_SHA256_LEN && is_hex_lower(s, 2 * HW_STORE_SHA256_LEN);
}

/* RFC 6838 restricted-name characters. */
static bool mime_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           strchr("!#$&-^_.+", ch) != NULL;
}

/* "" or type/subtype, optionally followed by parameters (";..."), at most
 * MIME_MAX bytes; why receives the reason. */
static bool mime_ok(const char *m, const char **why)
{
    size_t n = strlen(m);
    if (n == 0)
        return true;
    if (n > MIME_MAX) {
        *why = "at most 128 bytes";
        return false;
    }
    size_t i = 0, type = 0, sub = 0;
    while (i < n && mime_char(m[i]))
        i++, type++;
    if (type == 0 || i >= n || m[i] != '/') {
        *why = "must be type/subtype, e.g. image/jpeg";
        return false;
    }
    i++;
    while (i < n && mime_char(m[i]))
        i++, sub++;
    if (sub == 0 || (i < n && m[i] != ';')) {
        *why = "must be type/subtype, e.g. image/jpeg";
        return false;
    }
    for (; i < n; i++)
        if ((unsigned char)m[i] < 0x20 || m[i] == 0x7f) {
            *why = "control characters are not allowed";
            return false;
        }
    return true;
}

static bool name_ok(const char *s, const char **why)
{
    if (strlen(s) > NAME_MAX_BYTES) {
        *why = "at most 256 bytes";
        return false;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p == '/' || *p == '\\' || *p < 0x20 || *p == 0x7f) {
            *why = "no '/', '\\' or control characters";
            return false;
        }
    return true;
}

/* Fails the call naming field[i].sub. */
static void fail_at(hw_call *call, const char *field, size_t i, const char *sub, const char *why)
{
    char f[96];
    snprintf(f, sizeof f, "%s[%zu].%s", field, i, sub);
    fail_field(call, f, "%s", why);
}

static bool check_text_at(hw_call *call, const char *field, size_t i, const char *sub, const char *s, size_t max)
{
    char f[96];
    snprintf(f, sizeof f, "%s[%zu].%s", field, i, sub);
    return hw_rpc_check_text(call, f, s ? s : "", 0, max);
}

bool hw_attachments_check(hw_call *call, const char *field, Helpwire__V1__Attachment *const *list, size_t n)
{
    if (n > HW_ATTACHMENTS_PER_MESSAGE) {
        fail_field(call, field, "at most %u attachments per message, got %zu", HW_ATTACHMENTS_PER_MESSAGE,
                           n);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        const Helpwire__V1__Attachment *at = list[i];
        const char *why = NULL;
        if (!hw_rpc_check_enum(call, field, &helpwire__v1__attachment_kind__descriptor, at->kind, true))
            return false;
        if (at->kind == KIND(UNSPECIFIED)) {
            fail_at(call, field, i, "kind", "required");
            return false;
        }
        if (!check_text_at(call, field, i, "mime_type", at->mime_type, MIME_MAX) ||
            !check_text_at(call, field, i, "name", at->name, NAME_MAX_BYTES))
            return false;
        if (!mime_ok(at->mime_type ? at->mime_type : "", &why)) {
            fail_at(call, field, i, "mime_type", why);
            return false;
        }
        if (!name_ok(at->name ? at->name : "", &why)) {
            fail_at(call, field, i, "name", why);
            return false;
        }
        if (at->kind == KIND(LOCATION)) {
            const Helpwire__V1__Location *l = at->location;
            if (at->id && *at->id) {
                fail_at(call, field, i, "id", "must be empty for a LOCATION");
                return false;
            }
            if (!l) {
                fail_at(call, field, i, "location", "required for a LOCATION");
                return false;
            }
            if (!isfinite(l->latitude) || l->latitude < -90 || l->latitude > 90) {
                fail_at(call, field, i, "location.latitude", "must be within -90..90");
                return false;
            }
            if (!isfinite(l->longitude) || l->longitude < -180 || l->longitude > 180) {
                fail_at(call, field, i, "location.longitude", "must be within -180..180");
                return false;
            }
            if (!check_text_at(call, field, i, "location.name", l->name, PLACE_NAME_MAX) ||
                !check_text_at(call, field, i, "location.address", l->address, PLACE_ADDRESS_MAX))
                return false;
            continue;
        }
        if (at->location) {
            fail_at(call, field, i, "location", "only for a LOCATION");
            return false;
        }
        if (!at->id || !*at->id) {
            fail_at(call, field, i, "id", "required: commit the file first (Attachments.CommitAttachment)");
            return false;
        }
        if (!id_well_formed(at->id)) {
            fail_at(call, field, i, "id", "must be \"a-\" and 40 lowercase hex digits");
            return false;
        }
    }
    return true;
}

int hw_attachments_resolve_in(hw_store_txn *w, hw_wctx *h, const char *field, Helpwire__V1__Attachment **list,
                              size_t n, hw_arena *a)
{
    for (size_t i = 0; i < n; i++) {
        Helpwire__V1__Attachment *at = list[i];
        if (at->kind == KIND(LOCATION))
            continue;
        hw_store_attachment st;
        int rc = hw_store_attachment_get(w, at->id, a, &st);
        if (rc == HW_ENOTFOUND)
            return hw_rpc_wfail(h, rc, "%s[%zu].id: no attachment %s (commit it first; files never used are "
                                       "removed 24 hours after they were stored)",
                                field, i, at->id);
        if (rc != HW_OK)
            return rc;
        at->size_bytes = st.info->size_bytes;
        at->sha256 = st.info->sha256;
        if (!at->mime_type || !*at->mime_type)
            at->mime_type = st.info->mime_type && *st.info->mime_type ? st.info->mime_type
                                                                       : (char *)"application/octet-stream";
    }
    return HW_OK;
}

const char *hw_attachments_subject(const Helpwire__V1__Attachment *first, const char *locale, hw_arena *a)
{
    static const struct {
        int kind;
        const char *en, *zh;
    } labels[] = {
        {KIND(IMAGE), "[photo]", "[图片]"},     {KIND(DOCUMENT), "[document]", "[文件]"},
        {KIND(AUDIO), "[audio]", "[音频]"},     {KIND(VOICE), "[voice message]", "[语音]"},
        {KIND(VIDEO), "[video]", "[视频]"},     {KIND(STICKER), "[sticker]", "[贴纸]"},
        {KIND(LOCATION), "[location]", "[位置]"},
    };
    bool zh = locale && strncmp(locale, "zh", 2) == 0;
    const char *label = zh ? "[附件]" : "[attachment]";
    for (size_t i = 0; first && i < sizeof labels / sizeof labels[0]; i++)
        if (labels[i].kind == (int)first->kind)
            label = zh ? labels[i].zh : labels[i].en;
    if (first && first->kind == KIND(LOCATION) && first->location && first->location->name &&
        *first->location->name) {
        const char *s = hw_arena_printf(a, zh ? "[位置: %.200s]" : "[location: %.200s]", first->location->name);
        return s ? s : label;
    }
    if (first && first->kind != KIND(LOCATION) && first->name && *first->name) {
        size_t ll = strlen(label);
        const char *s = hw_arena_printf(a, "%.*s: %.200s]", (int)(ll - 1), label, first->name);
        return s ? s : label;
    }
    return label;
}

/* ---- hashing ----------------------------------------------------------------- */

static void to_hex(const unsigned char *d, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[2 * n] = 0;
}

static int from_hex(const char *s, unsigned char *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int v = 0;
        for (int j = 0; j < 2; j++) {
            char ch = s[2 * i + j];
            v <<= 4;
            if (ch >= '0' && ch <= '9')
                v |= ch - '0';
            else if (ch >= 'a' && ch <= 'f')
                v |= ch - 'a' + 10;
            else
                return HW_EINVALID;
        }
        out[i] = (unsigned char)v;
    }
    return HW_OK;
}

static int sha256(const void *data, size_t len, unsigned char *out)
{
    unsigned int n = 0;
    return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 && n == HW_STORE_SHA256_LEN ? HW_OK
                                                                                                : HW_EIO;
}

/* ---- PutChunk ---------------------------------------------------------------- */

typedef struct chunk_ctx {
    hw_wctx h;
    const ProtobufCBinaryData *data;
    unsigned char digest[HW_STORE_SHA256_LEN];
    bool existed;
} chunk_ctx;

static int chunk_fn(hw_store_txn *w, void *arg)
{
    chunk_ctx *c = arg;
    return hw_store_chunk_put(w, c->digest, c->data->data, c->data->len, hw_effects_now_ms(&c->h.fx),
                              &c->existed);
}

static void chunk_done(void *arg, int status)
{
    chunk_ctx *c = arg;
    if (status == HW_EFULL || status == HW_ENOSPACE) {
        hw_rpc_fail(c->h.call, status, "storage full: the piece was not stored (%s)", hw_strerror(status));
        return;
    }
    if (hw_rpc_write_failed(&c->h, status))
        return;
    char hex[2 * HW_STORE_SHA256_LEN + 1];
    to_hex(c->digest, HW_STORE_SHA256_LEN, hex);
    Helpwire__V1__PutChunkReply r = HELPWIRE__V1__PUT_CHUNK_REPLY__INIT;
    r.chunk_sha256 = hex;
    r.existed = c->existed;
    hw_call_reply(c->h.call, &r.base);
}

void hw_attachments_put_chunk(hw_call *call, const ProtobufCMessage *request, void *app)
{
    const Helpwire__V1__PutChunkRequest *req = (const void *)request;
    if (req->data.len == 0 || req->data.len > HW_STORE_CHUNK_MAX) {
        fail_field(call, "data", "a piece is 1 byte to 1 MiB (1048576 bytes), got %zu", req->data.len);
        return;
    }
    chunk_ctx *c = hw_rpc_ctx_new(call, app, sizeof *c);
    if (!c)
        return;
    c->data = &req->data;
    if (sha256(req->data.data, req->data.len, c->digest) != HW_OK) {
        hw_rpc_fail(call, HW_EIO, "cannot hash the piece");
        return;
    }
    hw_rpc_write(&c->h, chunk_fn, chunk_done);
}

/* ---- CommitAttachment ------------------------------------------------------- */

typedef struct commit_ctx {
    hw_wctx h;
    Helpwire__V1__Attachment info;
    unsigned char *chunks; /* n * 32 */
    size_t n;
    Helpwire__V1__Attachment *out;
} commit_ctx;

static int commit_fn(hw_store_txn *w, void *arg)
{
    commit_ctx *c = arg;
    bool existed = false;
    size_t missing = 0;
    int rc = hw_store_attachment_put(w, &c->info, c->chunks, c->n, hw_effects_now_ms(&c->h.fx), &existed,
                                     &missing);
    if (rc == HW_ENOTFOUND)
        return hw_rpc_wfail(&c->h, rc, "chunks[%zu]: no such piece (removed meanwhile?): put it again", missing);
    if (rc != HW_OK)
        return rc;
    c->out = &c->info;
    if (existed) {
        hw_store_attachment st;
        if ((rc = hw_store_attachment_get(w, c->info.id, hw_call_arena(c->h.call), &st)) != HW_OK)
            return rc;
        c->out = st.info;
    }
    return HW_OK;
}

static void commit_done(void *arg, int status)
{
    commit_ctx *c = arg;
    if (status == HW_EFULL || status == HW_ENOSPACE) {
        hw_rpc_fail(c->h.call, status, "storage full: nothing was committed (%s)", hw_strerror(status));
        return;
    }
    if (hw_rpc_write_failed(&c->h, status))
        return;
    hw_call_reply(c->h.call, &c->out->base);
}

void hw_attachments_commit(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    hw_app *app = appv;
    const Helpwire__V1__CommitAttachmentRequest *req = (const void *)request;
    hw_arena *a = hw_call_arena(call);
    const char *why = NULL;
    if (req->n_chunks == 0 || req->n_chunks > HW_STORE_ATTACHMENT_CHUNKS_MAX) {
        fail_field(call, "chunks", "1 to %u piece digests, got %zu", HW_STORE_ATTACHMENT_CHUNKS_MAX,
                           req->n_chunks);
        return;
    }
    if (req->kind == KIND(UNSPECIFIED) || req->kind == KIND(LOCATION) ||
        !hw_rpc_check_enum(call, "kind", &helpwire__v1__attachment_kind__descriptor, req->kind, false)) {
        if (req->kind == KIND(UNSPECIFIED) || req->kind == KIND(LOCATION))
            fail_field(call, "kind", "%s", req->kind == KIND(LOCATION)
                                                       ? "a LOCATION has no file: send it in the message"
                                                       : "required");
        return;
    }
    if (!hw_rpc_check_text(call, "mime_type", req->mime_type, 0, MIME_MAX) ||
        !hw_rpc_check_text(call, "name", req->name, 0, NAME_MAX_BYTES))
        return;
    if (!mime_ok(req->mime_type, &why)) {
        fail_field(call, "mime_type", "%s", why);
        return;
    }
    if (!name_ok(req->name, &why)) {
        fail_field(call, "name", "%s", why);
        return;
    }
    if (*req->sha256 && !sha_well_formed(req->sha256)) {
        fail_field(call, "sha256", "64 lowercase hex digits");
        return;
    }
    commit_ctx *c = hw_rpc_ctx_new(call, app, sizeof *c);
    if (!c)
        return;
    if (!(c->chunks = hw_arena_alloc(a, req->n_chunks * HW_STORE_SHA256_LEN))) {
        hw_rpc_fail(call, HW_ENOMEM, "server out of memory");
        return;
    }
    c->n = req->n_chunks;
    for (size_t i = 0; i < c->n; i++)
        if (!sha_well_formed(req->chunks[i]) ||
            from_hex(req->chunks[i], c->chunks + i * HW_STORE_SHA256_LEN, HW_STORE_SHA256_LEN) != HW_OK) {
            char f[32];
            snprintf(f, sizeof f, "chunks[%zu]", i);
            fail_field(call, f, "64 lowercase hex digits (PutChunkReply.chunk_sha256)");
            return;
        }

    /* Sizes first (a look-up each), so a file over the limit is refused
     * before anything is hashed; then the content, a piece per read. */
    uint64_t limit = app->settings.attachment_max_bytes ? app->settings.attachment_max_bytes
                                                         : HW_ATTACHMENTS_DEFAULT_MAX_BYTES;
    uint64_t total = 0;
    hw_store_txn *t = hw_rpc_read(call, app);
    if (!t)
        return;
    int rc = HW_OK;
    size_t bad = 0;
    for (size_t i = 0; i < c->n && rc == HW_OK; i++) {
        uint32_t size;
        rc = hw_store_chunk_stat(t, c->chunks + i * HW_STORE_SHA256_LEN, &size, NULL);
        bad = i;
        total += size;
    }
    hw_rpc_read_end(call, app);
    if (rc == HW_ENOTFOUND) {
        char f[32];
        snprintf(f, sizeof f, "chunks[%zu]", bad);
        hw_error_hint hint = {.field = f};
        hw_call_fail_ex(call, GRPC_STATUS_NOT_FOUND, &hint, "%s: no such piece: put it first (PutChunk)", f);
        return;
    }
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, "reading the store failed: %s", hw_strerror(rc));
        return;
    }
    if (total > limit) {
        hw_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                     "the file is %llu bytes, over the server's limit of %llu (--attachment-max-bytes)",
                     (unsigned long long)total, (unsigned long long)limit);
        return;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        hw_rpc_fail(call, HW_ENOMEM, "cannot hash the file");
        return;
    }
    for (size_t i = 0; i < c->n && rc == HW_OK; i++) {
        if (!(t = hw_rpc_read(call, app))) {
            EVP_MD_CTX_free(md);
            return;
        }
        const void *data;
        size_t len;
        rc = hw_store_chunk_read(t, c->chunks + i * HW_STORE_SHA256_LEN, &data, &len);
        if (rc == HW_OK && EVP_DigestUpdate(md, data, len) != 1)
            rc = HW_EIO;
        hw_rpc_read_end(call, app);
        bad = i;
    }
    unsigned char digest[HW_STORE_SHA256_LEN];
    unsigned int dn = 0;
    if (rc == HW_OK && (EVP_DigestFinal_ex(md, digest, &dn) != 1 || dn != sizeof digest))
        rc = HW_EIO;
    EVP_MD_CTX_free(md);
    if (rc == HW_ENOTFOUND) {
        hw_call_fail(call, GRPC_STATUS_NOT_FOUND, "chunks[%zu]: no such piece (removed meanwhile?): put it again",
                     bad);
        return;
    }
    if (rc != HW_OK) {
        hw_rpc_fail(call, rc, "reading the pieces failed: %s", hw_strerror(rc));
        return;
    }
    char *hex = hw_arena_alloc(a, 2 * HW_STORE_SHA256_LEN + 1);
    char *id = hw_arena_alloc(a, HW_STORE_ATTACHMENT_ID_LEN + 1);
    if (!hex || !id) {
        hw_rpc_fail(call, HW_ENOMEM, "server out of memory");
        return;
    }
    to_hex(digest, sizeof digest, hex);
    if (*req->sha256 && strcmp(req->sha256, hex) != 0) {
        fail_field(call, "sha256", "the pieces' content hashes to %s, not %s: nothing committed", hex,
                           req->sha256);
        return;
    }
    snprintf(id, HW_STORE_ATTACHMENT_ID_LEN + 1, "a-%.40s", hex);
    helpwire__v1__attachment__init(&c->info);
    c->info.id = id;
    c->info.kind = req->kind;
    c->info.mime_type = *req->mime_type ? req->mime_type : (char *)"application/octet-stream";
    c->info.size_bytes = total;
    c->info.name = req->name;
    c->info.sha256 = hex;
    hw_rpc_write(&c->h, commit_fn, commit_done);
}

/* ---- GetAttachment ---------------------------------------------------------- */

typedef struct get_ctx {
    hw_call *call;
    hw_app *app;
    char id[HW_STORE_ATTACHMENT_ID_LEN + 1];
    uint64_t offset;
    hw_arena *keep; /* the record, for the whole stream */
    hw_store_attachment st;
} get_ctx;

/* One message: up to HW_ATTACHMENTS_STREAM_BYTES from *pos, within one
 * piece, in a read of its own. HW_OK; HW_ENOTFOUND (removed meanwhile). */
static int get_read(get_ctx *x, hw_store_reader *r, uint64_t *pos, unsigned char *buf, size_t *len)
{
    uint64_t at = 0;
    size_t i = 0;
    while (i < x->st.n_chunks && at + x->st.chunk_sizes[i] <= *pos)
        at += x->st.chunk_sizes[i++];
    if (i == x->st.n_chunks)
        return HW_EINVALID;
    size_t in = (size_t)(*pos - at);
    size_t want = x->st.chunk_sizes[i] - in;
    if (want > HW_ATTACHMENTS_STREAM_BYTES)
        want = HW_ATTACHMENTS_STREAM_BYTES;
    hw_store_txn *t;
    int rc = hw_store_read_begin(r, &t);
    if (rc != HW_OK)
        return rc;
    const void *data;
    size_t dl;
    rc = hw_store_chunk_read(t, x->st.chunks[i], &data, &dl);
    if (rc == HW_OK && dl != x->st.chunk_sizes[i])
        rc = HW_ECORRUPT;
    if (rc == HW_OK)
        memcpy(buf, (const unsigned char *)data + in, want);
    hw_store_read_end(r);
    if (rc == HW_OK)
        *len = want;
    return rc;
}

static void *get_main(void *arg)
{
    get_ctx *x = arg;
    hw_call *call = x->call;
    pthread_setname_np(pthread_self(), "hw-attachment");
    hw_store_reader *r = NULL;
    unsigned char *buf = malloc(HW_ATTACHMENTS_STREAM_BYTES);
    int rc = buf ? hw_store_reader_create(x->app->store, &r) : HW_ENOMEM;
    uint64_t pos = x->offset, size = x->st.info->size_bytes;
    bool first = true, ended = false;
    while (rc == HW_OK && (first || pos < size)) {
        size_t len = 0;
        if (pos < size && (rc = get_read(x, r, &pos, buf, &len)) != HW_OK)
            break;
        Helpwire__V1__AttachmentChunk m = HELPWIRE__V1__ATTACHMENT_CHUNK__INIT;
        if (first)
            m.info = x->st.info;
        m.offset = pos;
        m.data.data = buf;
        m.data.len = len;
        if (hw_call_stream_wait(call, STREAM_WINDOW - 1) != 0 || hw_call_stream_send(call, &m.base) != 0) {
            ended = true;
            break;
        }
        pos += len;
        first = false;
    }
    hw_store_reader_destroy(r);
    free(buf);
    hw_arena_destroy(x->keep);
    if (!ended) {
        if (rc == HW_OK)
            hw_call_fail(call, GRPC_STATUS_OK, NULL);
        else if (rc == HW_ENOTFOUND)
            hw_call_fail(call, GRPC_STATUS_NOT_FOUND, "attachment %s: removed while it was being read", x->id);
        else
            hw_rpc_fail(call, rc, "reading attachment %s failed: %s", x->id, hw_strerror(rc));
    }
    free(x);
    hw_call_unref(call);
    return NULL;
}

void hw_attachments_get(hw_call *call, const ProtobufCMessage *request, void *appv)
{
    hw_app *app = appv;
    const Helpwire__V1__GetAttachmentRequest *req = (const void *)request;
    if (!id_well_formed(req->id)) {
        fail_field(call, "id", "must be \"a-\" and 40 lowercase hex digits");
        return;
    }
    get_ctx *x = calloc(1, sizeof *x);
    hw_arena *keep = hw_arena_create(4096);
    if (!x || !keep) {
        free(x);
        hw_arena_destroy(keep);
        hw_rpc_fail(call, HW_ENOMEM, "server out of memory");
        return;
    }
    x->call = call;
    x->app = app;
    x->keep = keep;
    x->offset = req->offset;
    snprintf(x->id, sizeof x->id, "%s", req->id);
    int rc = HW_EIO;
    hw_store_txn *t = hw_rpc_read(call, app);
    if (t) {
        rc = hw_store_attachment_get(t, req->id, keep, &x->st);
        hw_rpc_read_end(call, app);
        if (rc == HW_ENOTFOUND)
            hw_call_fail(call, GRPC_STATUS_NOT_FOUND, "no attachment %s (never committed, or removed by erasure "
                                                      "or retention)",
                         req->id);
        else if (rc != HW_OK)
            hw_rpc_fail(call, rc, "reading attachment %s failed: %s", req->id, hw_strerror(rc));
        else if (req->offset > x->st.info->size_bytes) {
            hw_call_fail(call, GRPC_STATUS_OUT_OF_RANGE, "offset: %llu is past the end of the file (%llu bytes)",
                         (unsigned long long)req->offset, (unsigned long long)x->st.info->size_bytes);
            rc = HW_EINVALID;
        }
    }
    if (rc == HW_OK) {
        int e = hw_rpc_start_thread(call, get_main, x);
        if (e == 0)
            return;
        hw_rpc_fail(call, HW_ENOMEM, "cannot start the download: %s", strerror(e));
    }
    hw_arena_destroy(keep);
    free(x);
}
