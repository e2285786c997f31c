/*
 * attachments_test: hw_att_upload and hw_att_download against a fake
 * helpwire.v1.Attachments server in this process (a C-core server on a
 * loopback port, one call at a time on its own thread) that can fail
 * pieces with UNAVAILABLE or INVALID_ARGUMENT, break download streams
 * after their first message, and corrupt bytes: retries of retryable
 * pieces only, resume from the first missing byte, the size limit before
 * any byte is read, the SHA-256 check, NOT_FOUND for an unknown id.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <openssl/evp.h>

#include "clients/lib/attachments.h"
#include "clients/lib/testserver.h"
#include "server/base/grpc_runtime.h"

enum { MAX_CHUNKS = 64, PIECE = 256 * 1024 };

typedef struct fake {
    grpc_server *server;
    grpc_completion_queue *cq;
    pthread_t thread;
    int port;
    /* pieces stored */
    char chunk_sha[MAX_CHUNKS][65];
    uint8_t *chunk_data[MAX_CHUNKS];
    size_t chunk_len[MAX_CHUNKS];
    int n_chunks;
    /* the committed file (one is enough here) */
    char id[48], sha[65], mime[64], name[64];
    int kind;
    uint8_t *file;
    size_t file_len;
    /* behaviour */
    int put_unavailable; /* the next N PutChunk calls answer UNAVAILABLE */
    int put_invalid;     /* the next N answer INVALID_ARGUMENT */
    int break_streams;   /* the next N streams end UNAVAILABLE after one message */
    bool corrupt;        /* flip a byte of what is streamed */
    bool shut;           /* the shutdown notice came */
    /* counts */
    int puts, commits, streams;
    uint64_t offsets[8];
} fake;

static fake F;
/* Guards F between the server's thread (while it serves a call) and the
 * test's (FSET, snap). */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
#define FSET(stmt)                                                                                       \
    do {                                                                                                 \
        pthread_mutex_lock(&mu);                                                                         \
        stmt;                                                                                            \
        pthread_mutex_unlock(&mu);                                                                       \
    } while (0)

static fake snap(void)
{
    pthread_mutex_lock(&mu);
    fake f = F;
    pthread_mutex_unlock(&mu);
    return f;
}

/* The fake server's own checks: cmocka's asserts belong to the test's
 * thread. */
#define CHECK(cond)                                                                                      \
    do {                                                                                                 \
        if (!(cond)) {                                                                                   \
            fprintf(stderr, "fake server: %s:%d: %s\n", __FILE__, __LINE__, #cond);                       \
            abort();                                                                                     \
        }                                                                                                \
    } while (0)

static void hex_sha(const void *d, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int l = 0;
    EVP_Digest(d, n, md, &l, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Waits for tag on the server's queue. The shutdown notice (tag 9) may
 * come first, while a call's close is still pending: it is remembered. */
static void next_tag(void *tag)
{
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(F.cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        CHECK(ev.type == GRPC_OP_COMPLETE);
        if (ev.tag == (void *)9) {
            F.shut = true;
            continue;
        }
        CHECK(ev.tag == tag);
        return;
    }
}

/* Sends msg (may be NULL) then status on call, and waits for the close. */
static void finish(grpc_call *call, const ProtobufCMessage *msg, grpc_status_code code, const char *details)
{
    grpc_op ops[3];
    int close_cancelled = 0, n = 0;
    memset(ops, 0, sizeof ops);
    grpc_byte_buffer *bb = msg ? hw_client_pack(msg) : NULL;
    if (bb) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = bb;
    }
    grpc_slice d = grpc_slice_from_copied_string(details);
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = code;
    ops[n++].data.send_status_from_server.status_details = &d;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n++].data.recv_close_on_server.cancelled = &close_cancelled;
    CHECK((grpc_call_start_batch(call, ops, (size_t)n, (void *)3, NULL)) == GRPC_CALL_OK);
    next_tag((void *)3);
    grpc_slice_unref(d);
    if (bb)
        grpc_byte_buffer_destroy(bb);
}

static void serve_put(grpc_call *call, grpc_byte_buffer *req)
{
    F.puts++;
    if (F.put_unavailable > 0) {
        F.put_unavailable--;
        finish(call, NULL, GRPC_STATUS_UNAVAILABLE, "helpwired is restarting");
        return;
    }
    if (F.put_invalid > 0) {
        F.put_invalid--;
        finish(call, NULL, GRPC_STATUS_INVALID_ARGUMENT, "data: 0 bytes, a piece is 1 byte to 1 MiB");
        return;
    }
    Helpwire__V1__PutChunkRequest *r =
        (Helpwire__V1__PutChunkRequest *)hw_client_unpack(req, &helpwire__v1__put_chunk_request__descriptor);
    CHECK(r != NULL);
    char sha[65];
    hex_sha(r->data.data, r->data.len, sha);
    bool existed = false;
    for (int i = 0; i < F.n_chunks; i++)
        existed |= strcmp(F.chunk_sha[i], sha) == 0;
    if (!existed) {
        CHECK(F.n_chunks < MAX_CHUNKS);
        memcpy(F.chunk_sha[F.n_chunks], sha, 65);
        F.chunk_data[F.n_chunks] = malloc(r->data.len);
        memcpy(F.chunk_data[F.n_chunks], r->data.data, r->data.len);
        F.chunk_len[F.n_chunks++] = r->data.len;
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    Helpwire__V1__PutChunkReply rep = HELPWIRE__V1__PUT_CHUNK_REPLY__INIT;
    rep.chunk_sha256 = sha;
    rep.existed = existed;
    finish(call, &rep.base, GRPC_STATUS_OK, "");
}

static void serve_commit(grpc_call *call, grpc_byte_buffer *req)
{
    F.commits++;
    Helpwire__V1__CommitAttachmentRequest *r = (Helpwire__V1__CommitAttachmentRequest *)hw_client_unpack(
        req, &helpwire__v1__commit_attachment_request__descriptor);
    CHECK(r != NULL);
    free(F.file);
    F.file = NULL;
    F.file_len = 0;
    for (size_t i = 0; i < r->n_chunks; i++) {
        int k = -1;
        for (int j = 0; j < F.n_chunks; j++)
            if (strcmp(F.chunk_sha[j], r->chunks[i]) == 0)
                k = j;
        if (k < 0) {
            finish(call, NULL, GRPC_STATUS_NOT_FOUND, "chunks: a piece is not stored");
            protobuf_c_message_free_unpacked(&r->base, NULL);
            return;
        }
        F.file = realloc(F.file, F.file_len + F.chunk_len[k]);
        memcpy(F.file + F.file_len, F.chunk_data[k], F.chunk_len[k]);
        F.file_len += F.chunk_len[k];
    }
    hex_sha(F.file, F.file_len, F.sha);
    if (r->sha256[0] && strcmp(r->sha256, F.sha) != 0) {
        finish(call, NULL, GRPC_STATUS_INVALID_ARGUMENT, "sha256: differs from the pieces'");
        protobuf_c_message_free_unpacked(&r->base, NULL);
        return;
    }
    snprintf(F.id, sizeof F.id, "a-%.40s", F.sha);
    snprintf(F.mime, sizeof F.mime, "%s", r->mime_type);
    snprintf(F.name, sizeof F.name, "%s", r->name);
    F.kind = r->kind;
    protobuf_c_message_free_unpacked(&r->base, NULL);
    Helpwire__V1__Attachment a = HELPWIRE__V1__ATTACHMENT__INIT;
    a.id = F.id;
    a.kind = F.kind;
    a.mime_type = F.mime;
    a.name = F.name;
    a.size_bytes = F.file_len;
    a.sha256 = F.sha;
    finish(call, &a.base, GRPC_STATUS_OK, "");
}

static void serve_get(grpc_call *call, grpc_byte_buffer *req)
{
    Helpwire__V1__GetAttachmentRequest *r =
        (Helpwire__V1__GetAttachmentRequest *)hw_client_unpack(req, &helpwire__v1__get_attachment_request__descriptor);
    CHECK(r != NULL);
    if (F.streams < 8)
        F.offsets[F.streams] = r->offset;
    F.streams++;
    bool known = F.file && strcmp(r->id, F.id) == 0;
    uint64_t off = r->offset;
    protobuf_c_message_free_unpacked(&r->base, NULL);
    if (!known) {
        finish(call, NULL, GRPC_STATUS_NOT_FOUND, "attachment not found");
        return;
    }
    bool breaks = F.break_streams > 0;
    if (breaks)
        F.break_streams--;
    Helpwire__V1__Attachment info = HELPWIRE__V1__ATTACHMENT__INIT;
    info.id = F.id;
    info.kind = F.kind;
    info.mime_type = F.mime;
    info.name = F.name;
    info.size_bytes = F.file_len;
    info.sha256 = F.sha;
    bool first = true;
    while (off < F.file_len || first) {
        Helpwire__V1__AttachmentChunk m = HELPWIRE__V1__ATTACHMENT_CHUNK__INIT;
        size_t n = F.file_len - off < PIECE ? F.file_len - off : PIECE;
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, F.file + off, n);
        if (F.corrupt && n)
            copy[n / 2] ^= 0x40;
        m.info = first ? &info : NULL;
        m.offset = off;
        m.data.data = copy;
        m.data.len = n;
        grpc_byte_buffer *bb = hw_client_pack(&m.base);
        grpc_op op;
        memset(&op, 0, sizeof op);
        op.op = GRPC_OP_SEND_MESSAGE;
        op.data.send_message.send_message = bb;
        CHECK((grpc_call_start_batch(call, &op, 1, (void *)4, NULL)) == GRPC_CALL_OK);
        next_tag((void *)4);
        grpc_byte_buffer_destroy(bb);
        free(copy);
        off += n;
        first = false;
        if (breaks)
            break;
    }
    finish(call, NULL, breaks ? GRPC_STATUS_UNAVAILABLE : GRPC_STATUS_OK, breaks ? "connection reset" : "");
}

static void *serve(void *unused)
{
    for (;;) {
        grpc_call *call = NULL;
        grpc_call_details details;
        grpc_metadata_array md;
        grpc_call_details_init(&details);
        grpc_metadata_array_init(&md);
        if (grpc_server_request_call(F.server, &call, &details, &md, F.cq, F.cq, (void *)1) != GRPC_CALL_OK)
            break;
        grpc_event ev = grpc_completion_queue_next(F.cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type != GRPC_OP_COMPLETE || !ev.success || ev.tag != (void *)1) {
            grpc_call_details_destroy(&details);
            grpc_metadata_array_destroy(&md);
            break;
        }
        pthread_mutex_lock(&mu);
        grpc_byte_buffer *req = NULL;
        grpc_op ops[2];
        memset(ops, 0, sizeof ops);
        ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[1].op = GRPC_OP_RECV_MESSAGE;
        ops[1].data.recv_message.recv_message = &req;
        grpc_call_start_batch(call, ops, 2, (void *)2, NULL);
        next_tag((void *)2);
        if (grpc_slice_str_cmp(details.method, "/helpwire.v1.Attachments/PutChunk") == 0)
            serve_put(call, req);
        else if (grpc_slice_str_cmp(details.method, "/helpwire.v1.Attachments/CommitAttachment") == 0)
            serve_commit(call, req);
        else if (grpc_slice_str_cmp(details.method, "/helpwire.v1.Attachments/GetAttachment") == 0)
            serve_get(call, req);
        else
            finish(call, NULL, GRPC_STATUS_UNIMPLEMENTED, "no such method");
        if (req)
            grpc_byte_buffer_destroy(req);
        grpc_call_unref(call);
        grpc_call_details_destroy(&details);
        grpc_metadata_array_destroy(&md);
        bool shut = F.shut;
        pthread_mutex_unlock(&mu);
        if (shut)
            break;
    }
    return NULL;
}

static hw_client *client;

static int setup(void **unused)
{
    memset(&F, 0, sizeof F);
    if (br_testserver_start(&F.server, &F.cq, &F.port, 5000, &client) != 0)
        return -1;
    pthread_create(&F.thread, NULL, serve, NULL);
    return 0;
}

static int teardown(void **unused)
{
    hw_client_destroy(client);
    client = NULL;
    grpc_server_shutdown_and_notify(F.server, F.cq, (void *)9);
    grpc_server_cancel_all_calls(F.server);
    pthread_join(F.thread, NULL);
    /* the serve loop ended on the failed request: drain the rest */
    hw_client_cq_destroy(F.cq);
    grpc_server_destroy(F.server);
    for (int i = 0; i < F.n_chunks; i++)
        free(F.chunk_data[i]);
    free(F.file);
    return 0;
}

static uint8_t *pattern(size_t n)
{
    uint8_t *b = malloc(n);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b[i] = (uint8_t)x;
    }
    return b;
}

static void an_upload_retries_an_unavailable_piece_and_commits_the_whole_file(void **unused)
{
    size_t n = 2 * HW_ATT_CHUNK_BYTES + 1000; /* three pieces */
    uint8_t *data = pattern(n);
    char sha[65];
    hex_sha(data, n, sha);
    FSET(F.put_unavailable = 2);
    hw_att_ref ref;
    hw_client_status st;
    assert_int_equal(hw_att_upload(client, data, n, HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_IMAGE,
                                   "image/jpeg", "photo.jpg", &ref, &st),
                     0);
    assert_int_equal(snap().puts, 3 + 2);
    assert_int_equal(snap().n_chunks, 3);
    assert_int_equal(snap().commits, 1);
    assert_string_equal(ref.sha256, sha);
    assert_int_equal(ref.size_bytes, n);
    assert_int_equal(strncmp(ref.id, "a-", 2), 0);
    assert_int_equal(strncmp(ref.id + 2, sha, 40), 0);
    assert_int_equal(snap().file_len, n);
    assert_memory_equal(snap().file, data, n);
    assert_string_equal(snap().name, "photo.jpg");

    /* the same bytes again: the same id */
    hw_att_ref again;
    assert_int_equal(hw_att_upload(client, data, n, HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_IMAGE,
                                   "image/jpeg", "photo.jpg", &again, &st),
                     0);
    assert_string_equal(again.id, ref.id);
    assert_int_equal(snap().n_chunks, 3);
    free(data);
}

static void a_refused_piece_is_not_retried_and_its_status_is_returned(void **unused)
{
    uint8_t b[10] = "0123456789";
    hw_att_ref ref;
    hw_client_status st;
    FSET(F.put_invalid = 1);
    assert_int_equal(hw_att_upload(client, b, sizeof b, HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_DOCUMENT,
                                   "text/plain", NULL, &ref, &st),
                     -1);
    assert_int_equal(st.code, GRPC_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(st.message, "1 byte to 1 MiB"));
    assert_int_equal(snap().puts, 1);
    assert_int_equal(snap().commits, 0);

    /* nothing to send, or a kind without a file: refused here */
    assert_int_equal(hw_att_upload(client, b, 0, HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_DOCUMENT, NULL,
                                   NULL, &ref, &st),
                     -1);
    assert_int_equal(st.code, GRPC_STATUS_INVALID_ARGUMENT);
    assert_int_equal(hw_att_upload(client, b, 1, HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_LOCATION, NULL,
                                   NULL, &ref, &st),
                     -1);
    assert_int_equal(st.code, GRPC_STATUS_INVALID_ARGUMENT);
    assert_int_equal(snap().puts, 1);
}

static void a_broken_download_resumes_where_it_broke(void **unused)
{
    size_t n = 3 * PIECE + 17;
    uint8_t *data = pattern(n);
    hw_att_ref ref;
    hw_client_status st;
    assert_int_equal(hw_att_upload(client, data, n, HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_DOCUMENT,
                                   "application/pdf", "invoice.pdf", &ref, &st),
                     0);
    FSET(F.break_streams = 2);
    hw_att_file f;
    assert_int_equal(hw_att_download(client, ref.id, n, &f, &st), 0);
    assert_int_equal(f.size, n);
    assert_memory_equal(f.data, data, n);
    assert_string_equal(f.name, "invoice.pdf");
    assert_string_equal(f.mime_type, "application/pdf");
    assert_int_equal(f.kind, HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_DOCUMENT);
    assert_string_equal(f.sha256, ref.sha256);
    assert_int_equal(snap().streams, 3);
    assert_int_equal(snap().offsets[0], 0);
    assert_int_equal(snap().offsets[1], PIECE);
    assert_int_equal(snap().offsets[2], 2 * PIECE);
    hw_att_file_free(&f);
    assert_null(f.data);

    /* broken more often than it may resume: the stream's status */
    FSET(F.streams = 0);
    FSET(F.break_streams = 4);
    assert_int_equal(hw_att_download(client, ref.id, n, &f, &st), -1);
    assert_int_equal(st.code, GRPC_STATUS_UNAVAILABLE);
    assert_null(f.data);
    assert_int_equal(snap().streams, 4);
    free(data);
}

static void a_download_over_the_limit_or_corrupt_or_unknown_is_refused(void **unused)
{
    size_t n = PIECE + 5;
    uint8_t *data = pattern(n);
    hw_att_ref ref;
    hw_client_status st;
    hw_att_file f;
    assert_int_equal(hw_att_upload(client, data, n, HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_VIDEO,
                                   "video/mp4", "clip.mp4", &ref, &st),
                     0);
    assert_int_equal(hw_att_download(client, ref.id, n - 1, &f, &st), -1);
    assert_int_equal(st.code, GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(st.message, "over the limit"));
    assert_null(f.data);

    FSET(F.corrupt = true);
    assert_int_equal(hw_att_download(client, ref.id, n, &f, &st), -1);
    assert_int_equal(st.code, GRPC_STATUS_DATA_LOSS);
    assert_null(f.data);
    FSET(F.corrupt = false);

    assert_int_equal(hw_att_download(client, "a-0000000000000000000000000000000000000000", n, &f, &st), -1);
    assert_int_equal(st.code, GRPC_STATUS_NOT_FOUND);
    assert_int_equal(hw_att_download(client, "", n, &f, &st), -1);
    assert_int_equal(st.code, GRPC_STATUS_INVALID_ARGUMENT);
    free(data);
}

static void kinds_follow_the_mime_type(void **unused)
{
    assert_int_equal(hw_att_kind_for_mime("image/jpeg"), HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_IMAGE);
    assert_int_equal(hw_att_kind_for_mime("audio/ogg; codecs=opus"),
                     HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_VOICE);
    assert_int_equal(hw_att_kind_for_mime("audio/mpeg"), HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_AUDIO);
    assert_int_equal(hw_att_kind_for_mime("Video/MP4"), HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_VIDEO);
    assert_int_equal(hw_att_kind_for_mime("application/pdf"),
                     HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_DOCUMENT);
    assert_int_equal(hw_att_kind_for_mime(NULL), HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_DOCUMENT);
}

int main(void)
{
    hw_grpc_runtime_prepare();
    grpc_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(an_upload_retries_an_unavailable_piece_and_commits_the_whole_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_refused_piece_is_not_retried_and_its_status_is_returned, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_broken_download_resumes_where_it_broke, setup, teardown),
        cmocka_unit_test_setup_teardown(a_download_over_the_limit_or_corrupt_or_unknown_is_refused, setup,
                                        teardown),
        cmocka_unit_test(kinds_follow_the_mime_type),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    grpc_shutdown();
    return rc;
}
