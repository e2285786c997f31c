/*
 * attachments: uploads (PutChunk pieces, then CommitAttachment) and
 * streamed downloads (GetAttachment) of helpwire.v1.Attachments (see
 * attachments.h).
 *
 * Upload: the file's SHA-256 and each piece's are computed here (OpenSSL
 * EVP); each piece is one unary call retried on its own while its status
 * is retryable (at most UPLOAD_ATTEMPTS times, waiting the server's
 * RetryInfo or a doubling pause in between), and the digest the server
 * answers must be the piece's own (DATA_LOSS otherwise). The commit names
 * the pieces and the whole file's digest, so helpwired refuses a file that
 * did not arrive as it was sent.
 *
 * Download: one server-streaming call on a private completion queue, as
 * outbox.c builds the Subscribe stream: batch 1 sends the metadata, the
 * request and half-close and receives the initial metadata, then one
 * RECV_MESSAGE at a time, then RECV_STATUS_ON_CLIENT. The first message's
 * info gives the size, so a file over the caller's limit is refused before
 * its bytes are read (the call is cancelled). Every message must start
 * where the bytes so far end. A stream that breaks with a retryable status
 * is started again at the first byte not received (up to MAX_RESUMES
 * times), and the whole file's digest is checked at the end.
 */
#include "clients/lib/attachments.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <openssl/evp.h>

enum {
    UPLOAD_ATTEMPTS = 5,    /* per piece and for the commit */
    RETRY_FIRST_MS = 100,   /* the first pause between attempts, doubled */
    RETRY_MAX_MS = 2000,    /* at most this, unless the server asks for more */
    MAX_RESUMES = 3,        /* a broken download is resumed this often */
    STREAM_TIMEOUT_MS = 60000, /* one download stream, from start to status */
};

#define METHOD_PUT "/helpwire.v1.Attachments/PutChunk"
#define METHOD_COMMIT "/helpwire.v1.Attachments/CommitAttachment"
#define METHOD_GET "/helpwire.v1.Attachments/GetAttachment"

static void set_status(hw_client_status *st, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void set_status(hw_client_status *st, int code, const char *fmt, ...)
{
    va_list ap;
    st->code = code;
    st->reason[0] = '\0';
    st->retry_delay_ms = -1;
    va_start(ap, fmt);
    vsnprintf(st->message, sizeof st->message, fmt, ap);
    va_end(ap);
}

int hw_att_sha256_hex(const void *data, size_t len, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return -1;
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    hex[64] = '\0';
    return 0;
}

static void sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* hw_client_unary retried while the status is retryable, at most
 * UPLOAD_ATTEMPTS times in all. Returns st->code. */
static int unary_retried(hw_client *c, const char *method, const ProtobufCMessage *req,
                         const ProtobufCMessageDescriptor *desc, ProtobufCMessage **reply, hw_client_status *st)
{
    int64_t pause = RETRY_FIRST_MS;
    for (int attempt = 1;; attempt++) {
        if (hw_client_unary(c, method, req, desc, reply, 0, st) == GRPC_STATUS_OK)
            return 0;
        if (attempt >= UPLOAD_ATTEMPTS || !hw_client_status_retryable(st->code))
            return st->code;
        sleep_ms(st->retry_delay_ms > pause ? st->retry_delay_ms : pause);
        pause = pause * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : pause * 2;
    }
}

int hw_att_upload(hw_client *c, const void *data, size_t len, Helpwire__V1__AttachmentKind kind,
                  const char *mime_type, const char *name, hw_att_ref *out, hw_client_status *st)
{
    int rc = -1;
    size_t n = len ? (len + HW_ATT_CHUNK_BYTES - 1) / HW_ATT_CHUNK_BYTES : 0;
    char *hexes = NULL;   /* n digests of 65 bytes */
    char **chunks = NULL; /* pointers into hexes */
    ProtobufCMessage *reply = NULL;
    char whole[65];

    memset(out, 0, sizeof *out);
    if (!data || len == 0) {
        set_status(st, GRPC_STATUS_INVALID_ARGUMENT, "an attachment needs at least one byte");
        goto out;
    }
    if (kind == HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_UNSPECIFIED ||
        kind == HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_LOCATION) {
        set_status(st, GRPC_STATUS_INVALID_ARGUMENT, "an uploaded attachment needs a file kind, not %d", (int)kind);
        goto out;
    }
    hexes = malloc(n * 65);
    chunks = malloc(n * sizeof *chunks);
    if (!hexes || !chunks || hw_att_sha256_hex(data, len, whole) != 0) {
        set_status(st, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        size_t off = i * HW_ATT_CHUNK_BYTES;
        size_t piece = len - off < HW_ATT_CHUNK_BYTES ? len - off : HW_ATT_CHUNK_BYTES;
        chunks[i] = hexes + i * 65;
        if (hw_att_sha256_hex((const uint8_t *)data + off, piece, chunks[i]) != 0) {
            set_status(st, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
            goto out;
        }
        Helpwire__V1__PutChunkRequest req = HELPWIRE__V1__PUT_CHUNK_REQUEST__INIT;
        req.data.data = (uint8_t *)data + off;
        req.data.len = piece;
        if (unary_retried(c, METHOD_PUT, &req.base, &helpwire__v1__put_chunk_reply__descriptor, &reply, st) != 0)
            goto out;
        const Helpwire__V1__PutChunkReply *r = (const Helpwire__V1__PutChunkReply *)reply;
        if (!r->chunk_sha256 || strcmp(r->chunk_sha256, chunks[i]) != 0) {
            set_status(st, GRPC_STATUS_DATA_LOSS, "piece %zu of %zu stored as %.64s, sent as %s", i + 1, n,
                       r->chunk_sha256 ? r->chunk_sha256 : "", chunks[i]);
            goto out;
        }
        protobuf_c_message_free_unpacked(reply, NULL);
        reply = NULL;
    }
    Helpwire__V1__CommitAttachmentRequest creq = HELPWIRE__V1__COMMIT_ATTACHMENT_REQUEST__INIT;
    creq.n_chunks = n;
    creq.chunks = chunks;
    creq.kind = kind;
    creq.mime_type = (char *)(mime_type ? mime_type : "");
    creq.name = (char *)(name ? name : "");
    creq.sha256 = whole;
    if (unary_retried(c, METHOD_COMMIT, &creq.base, &helpwire__v1__attachment__descriptor, &reply, st) != 0)
        goto out;
    const Helpwire__V1__Attachment *a = (const Helpwire__V1__Attachment *)reply;
    if (!a->id || !a->id[0] || strlen(a->id) >= sizeof out->id) {
        set_status(st, GRPC_STATUS_INTERNAL, "the commit answered no usable attachment id");
        goto out;
    }
    snprintf(out->id, sizeof out->id, "%s", a->id);
    snprintf(out->sha256, sizeof out->sha256, "%s", a->sha256 && a->sha256[0] ? a->sha256 : whole);
    out->size_bytes = a->size_bytes ? a->size_bytes : (uint64_t)len;
    rc = 0;
out:
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    free(chunks);
    free(hexes);
    return rc;
}

/* ---- download ---- */

typedef enum { TAG_START = 1, TAG_RECV, TAG_STATUS } tag_id;

/* Waits for the one batch in flight on cq; returns its success. */
static int wait_batch(grpc_completion_queue *cq)
{
    grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    return ev.type == GRPC_OP_COMPLETE && ev.success;
}

/* What one download keeps between its streams. */
typedef struct dl_state {
    const char *id;
    size_t max_bytes;
    hw_att_file *out;
    bool have_info;
    size_t received;
} dl_state;

/* Takes one streamed message (bb). Returns 0, or -1 with st set (the
 * stream is then cancelled). */
static int take_chunk(dl_state *s, grpc_byte_buffer *bb, hw_client_status *st)
{
    int rc = -1;
    Helpwire__V1__AttachmentChunk *m =
        (Helpwire__V1__AttachmentChunk *)hw_client_unpack(bb, &helpwire__v1__attachment_chunk__descriptor);
    if (!m) {
        set_status(st, GRPC_STATUS_INTERNAL, "a message of attachment %s does not parse", s->id);
        goto out;
    }
    if (m->info) {
        const Helpwire__V1__Attachment *a = m->info;
        if (!s->have_info) {
            if (a->size_bytes > s->max_bytes) {
                set_status(st, GRPC_STATUS_RESOURCE_EXHAUSTED,
                           "attachment %s is %llu bytes, over the limit of %zu", s->id,
                           (unsigned long long)a->size_bytes, s->max_bytes);
                goto out;
            }
            if (a->size_bytes > SIZE_MAX - 1) {
                set_status(st, GRPC_STATUS_RESOURCE_EXHAUSTED, "attachment %s is too large", s->id);
                goto out;
            }
            hw_att_file *f = s->out;
            f->kind = a->kind;
            snprintf(f->mime_type, sizeof f->mime_type, "%s", a->mime_type ? a->mime_type : "");
            snprintf(f->name, sizeof f->name, "%s", a->name ? a->name : "");
            snprintf(f->sha256, sizeof f->sha256, "%s", a->sha256 ? a->sha256 : "");
            f->size = (size_t)a->size_bytes;
            f->data = malloc(f->size ? f->size : 1);
            if (!f->data) {
                set_status(st, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory for %zu bytes", f->size);
                goto out;
            }
            s->have_info = true;
        } else if (a->size_bytes != s->out->size || strcmp(a->sha256 ? a->sha256 : "", s->out->sha256) != 0) {
            set_status(st, GRPC_STATUS_DATA_LOSS, "attachment %s changed between two streams", s->id);
            goto out;
        }
    } else if (!s->have_info) {
        set_status(st, GRPC_STATUS_INTERNAL, "the stream of attachment %s began without its metadata", s->id);
        goto out;
    }
    if (m->offset != s->received || m->data.len > s->out->size - s->received) {
        set_status(st, GRPC_STATUS_DATA_LOSS,
                   "attachment %s: %zu bytes at offset %llu do not follow the %zu received of %zu", s->id,
                   m->data.len, (unsigned long long)m->offset, s->received, s->out->size);
        goto out;
    }
    if (m->data.len)
        memcpy(s->out->data + s->received, m->data.data, m->data.len);
    s->received += m->data.len;
    rc = 0;
out:
    if (m)
        protobuf_c_message_free_unpacked(&m->base, NULL);
    return rc;
}

/* One GetAttachment stream from s->received to its end. Returns 0 when the
 * stream ended OK, or -1 with st set: the server's status, or a local one
 * (then *local is true and the download must not resume). */
static int one_stream(hw_client *c, dl_state *s, bool *local, hw_client_status *st)
{
    int rc = -1;
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    hw_client_call rpc;
    hw_client_status mine;
    bool failed_here = false;
    size_t n_md;
    const grpc_metadata *md = hw_client_metadata(c, &n_md);

    *local = false;
    hw_client_call_init(&rpc);
    rpc.wait_for_ready = hw_client_wait_for_ready(c);
    Helpwire__V1__GetAttachmentRequest req = HELPWIRE__V1__GET_ATTACHMENT_REQUEST__INIT;
    req.id = (char *)s->id;
    req.offset = s->received;
    grpc_byte_buffer *send_bb = hw_client_pack(&req.base);
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                         gpr_time_from_millis(STREAM_TIMEOUT_MS, GPR_TIMESPAN));
    grpc_call *call = grpc_channel_create_call(hw_client_channel(c), NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                               grpc_slice_from_static_string(METHOD_GET), NULL, deadline, NULL);
    if (hw_client_stream_start(&rpc, call, md, n_md, send_bb, (void *)(intptr_t)TAG_START) != GRPC_CALL_OK) {
        set_status(st, GRPC_STATUS_INTERNAL, "%s",
                   !send_bb ? "out of memory" : !call ? "cannot create the call" : "cannot start the call");
        *local = true;
        goto out;
    }
    if (wait_batch(cq)) {
        for (;;) {
            if (hw_client_stream_recv(&rpc, (void *)(intptr_t)TAG_RECV) != GRPC_CALL_OK || !wait_batch(cq) ||
                !rpc.reply)
                break;
            int took = take_chunk(s, rpc.reply, &mine);
            grpc_byte_buffer_destroy(rpc.reply);
            rpc.reply = NULL;
            if (took != 0) {
                failed_here = true;
                grpc_call_cancel(call, NULL);
                break;
            }
        }
    }
    /* The status: the stream's end, or what cancelled or broke it. */
    if (hw_client_stream_recv_status(&rpc, (void *)(intptr_t)TAG_STATUS) != GRPC_CALL_OK) {
        grpc_call_cancel(call, NULL);
        rpc.status = GRPC_STATUS_INTERNAL;
        rpc.details = grpc_slice_from_static_string("cannot receive the stream's status");
    } else {
        wait_batch(cq);
    }
    if (failed_here) {
        *st = mine;
        *local = true;
        goto out;
    }
    hw_client_call_status(&rpc, st);
    if (rpc.status == GRPC_STATUS_OK)
        rc = 0;
out:
    hw_client_call_fini(&rpc);
    hw_client_cq_destroy(cq);
    return rc;
}

int hw_att_download(hw_client *c, const char *id, size_t max_bytes, hw_att_file *out, hw_client_status *st)
{
    memset(out, 0, sizeof *out);
    if (!id || !id[0]) {
        set_status(st, GRPC_STATUS_INVALID_ARGUMENT, "no attachment id to download (a location has no file)");
        return -1;
    }
    dl_state s = {.id = id, .max_bytes = max_bytes, .out = out};
    int64_t pause = RETRY_FIRST_MS;
    for (int resumes = 0;; resumes++) {
        bool local = false;
        size_t before = s.received;
        if (one_stream(c, &s, &local, st) == 0)
            break;
        if (local || !hw_client_status_retryable(st->code) || resumes >= MAX_RESUMES)
            goto fail;
        /* A stream that broke after progress resumes at once; one that
         * gave nothing waits as a retry does. */
        if (s.received == before) {
            sleep_ms(st->retry_delay_ms > pause ? st->retry_delay_ms : pause);
            pause = pause * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : pause * 2;
        }
    }
    if (!s.have_info) {
        set_status(st, GRPC_STATUS_INTERNAL, "the stream of attachment %s ended without its metadata", id);
        goto fail;
    }
    if (s.received != out->size) {
        set_status(st, GRPC_STATUS_DATA_LOSS, "attachment %s ended after %zu of its %zu bytes", id, s.received,
                   out->size);
        goto fail;
    }
    char got[65];
    if (hw_att_sha256_hex(out->data, out->size, got) != 0) {
        set_status(st, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    if (out->sha256[0] && strcmp(got, out->sha256) != 0) {
        set_status(st, GRPC_STATUS_DATA_LOSS, "attachment %s: the bytes' SHA-256 is %s, not %s", id, got,
                   out->sha256);
        goto fail;
    }
    snprintf(out->sha256, sizeof out->sha256, "%s", got);
    set_status(st, GRPC_STATUS_OK, "%s", "");
    return 0;
fail:
    hw_att_file_free(out);
    return -1;
}

void hw_att_file_free(hw_att_file *f)
{
    if (!f)
        return;
    free(f->data);
    memset(f, 0, sizeof *f);
}

/* Whether s contains word, ignoring ASCII case. */
static bool contains_ci(const char *s, const char *word)
{
    size_t n = strlen(word);
    for (; *s; s++)
        if (strncasecmp(s, word, n) == 0)
            return true;
    return false;
}

Helpwire__V1__AttachmentKind hw_att_kind_for_mime(const char *mime_type)
{
    const char *m = mime_type ? mime_type : "";
    if (strncasecmp(m, "image/", 6) == 0)
        return HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_IMAGE;
    if (strncasecmp(m, "audio/ogg", 9) == 0 && contains_ci(m, "opus"))
        return HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_VOICE;
    if (strncasecmp(m, "audio/", 6) == 0)
        return HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_AUDIO;
    if (strncasecmp(m, "video/", 6) == 0)
        return HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_VIDEO;
    return HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_DOCUMENT;
}
