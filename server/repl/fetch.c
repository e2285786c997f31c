/*
 * fetch: Cluster.FetchSnapshot from the client side and the installation
 * of the copy (see fetch.h). One call per target on a private completion
 * queue: the request batch, the status batch, then one receive at a time,
 * each waited for at most HW_REPL_FETCH_IDLE_MS.
 */
#include "server/repl/fetch.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "helpwire/v1/cluster.pb-c.h"
#include "server/base/errors.h"
#include "server/base/files.h"

#define METHOD "/helpwire.v1.Cluster/FetchSnapshot"
/* A chunk is 1 MiB of data plus a few bytes of fields. */
#define MAX_RECEIVE_BYTES (4 << 20)

enum { TAG_START = 0, TAG_STATUS = 1, TAG_RECV = 2, N_TAGS = 3 };

typedef struct stream {
    grpc_completion_queue *cq;
    grpc_call *call;
    bool pending[N_TAGS];
    bool ok[N_TAGS];
} stream;

/* Waits for tag; other tags that complete meanwhile are noted. false when
 * idle_ms passed without it (the call is then cancelled and the wait goes
 * on until it completes). */
static bool wait_tag(stream *s, int tag, int idle_ms)
{
    bool timely = true;
    while (s->pending[tag]) {
        gpr_timespec until = idle_ms > 0 ? gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                                        gpr_time_from_millis(idle_ms, GPR_TIMESPAN))
                                         : gpr_inf_future(GPR_CLOCK_MONOTONIC);
        grpc_event ev = grpc_completion_queue_next(s->cq, until, NULL);
        if (ev.type == GRPC_QUEUE_TIMEOUT) {
            timely = false;
            grpc_call_cancel(s->call, NULL);
            idle_ms = 0;
            continue;
        }
        if (ev.type != GRPC_OP_COMPLETE)
            break;
        int t = (int)(intptr_t)ev.tag;
        s->pending[t] = false;
        s->ok[t] = ev.success != 0;
    }
    return timely;
}

/* Writes len bytes at offset. Returns 0 or an errno. */
static int write_all(int fd, const uint8_t *p, size_t len, uint64_t offset)
{
    while (len) {
        ssize_t n = pwrite(fd, p, len, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        p += n;
        len -= (size_t)n;
        offset += (uint64_t)n;
    }
    return 0;
}

/* One target: streams its copy into fd. HW_OK; HW_ENOSPACE; HW_EIO (why
 * says what happened). */
static int fetch_from(const char *target, const grpc_metadata *md, size_t n_md, int fd, uint64_t *applied,
                      char *why, size_t whylen)
{
    int rc = HW_EIO;
    grpc_channel *ch = NULL;
    stream s = {0};
    grpc_metadata_array initial, trailing;
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    grpc_byte_buffer *req = NULL, *recv_bb = NULL;
    uint64_t written = 0, total = 0;
    bool first = true, failed = false;

    grpc_metadata_array_init(&initial);
    grpc_metadata_array_init(&trailing);
    snprintf(why, whylen, "cannot start the call");
    s.cq = grpc_completion_queue_create_for_next(NULL);
    grpc_arg args[1] = {
        {GRPC_ARG_INTEGER, (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, {.integer = MAX_RECEIVE_BYTES}}};
    grpc_channel_args cargs = {1, args};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    ch = grpc_channel_create(target, creds, &cargs);
    grpc_channel_credentials_release(creds);
    if (!s.cq || !ch)
        goto out;
    s.call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, s.cq,
                                      grpc_slice_from_static_string(METHOD), NULL,
                                      gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    grpc_slice empty = grpc_empty_slice(); /* FetchSnapshotRequest has no fields */
    req = grpc_raw_byte_buffer_create(&empty, 1);
    if (!s.call || !req)
        goto out;

    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = n_md;
    ops[0].data.send_initial_metadata.metadata = n_md ? (grpc_metadata *)md : NULL;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = req;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
    if (grpc_call_start_batch(s.call, ops, 4, (void *)(intptr_t)TAG_START, NULL) != GRPC_CALL_OK)
        goto out;
    s.pending[TAG_START] = true;
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &trailing;
    ops[0].data.recv_status_on_client.status = &status;
    ops[0].data.recv_status_on_client.status_details = &details;
    if (grpc_call_start_batch(s.call, ops, 1, (void *)(intptr_t)TAG_STATUS, NULL) != GRPC_CALL_OK) {
        grpc_call_cancel(s.call, NULL);
        goto out;
    }
    s.pending[TAG_STATUS] = true;

    for (;;) {
        memset(ops, 0, sizeof ops);
        ops[0].op = GRPC_OP_RECV_MESSAGE;
        ops[0].data.recv_message.recv_message = &recv_bb;
        if (grpc_call_start_batch(s.call, ops, 1, (void *)(intptr_t)TAG_RECV, NULL) != GRPC_CALL_OK)
            break;
        s.pending[TAG_RECV] = true;
        if (!wait_tag(&s, TAG_RECV, HW_REPL_FETCH_IDLE_MS)) {
            snprintf(why, whylen, "no data for %d s", HW_REPL_FETCH_IDLE_MS / 1000);
            failed = true;
            break;
        }
        if (!s.ok[TAG_RECV] || !recv_bb)
            break; /* the end of the stream; the status says how */
        grpc_byte_buffer_reader r;
        grpc_slice all = grpc_empty_slice();
        if (grpc_byte_buffer_reader_init(&r, recv_bb)) {
            all = grpc_byte_buffer_reader_readall(&r);
            grpc_byte_buffer_reader_destroy(&r);
        }
        grpc_byte_buffer_destroy(recv_bb);
        recv_bb = NULL;
        Helpwire__V1__SnapshotChunk *c = (Helpwire__V1__SnapshotChunk *)protobuf_c_message_unpack(
            &helpwire__v1__snapshot_chunk__descriptor, NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
        grpc_slice_unref(all);
        if (!c) {
            snprintf(why, whylen, "a chunk does not parse");
            failed = true;
        } else if (first && c->offset != 0) {
            snprintf(why, whylen, "the first chunk is at offset %llu", (unsigned long long)c->offset);
            failed = true;
        } else if (c->offset != written) {
            snprintf(why, whylen, "a chunk at offset %llu, %llu bytes written", (unsigned long long)c->offset,
                     (unsigned long long)written);
            failed = true;
        } else if ((first ? c->total_bytes : total) < written + c->data.len) {
            snprintf(why, whylen, "chunks beyond the announced %llu bytes",
                     (unsigned long long)(first ? c->total_bytes : total));
            failed = true;
        } else {
            if (first) {
                total = c->total_bytes;
                if (applied)
                    *applied = c->applied_index;
                first = false;
            }
            int e = write_all(fd, c->data.data, c->data.len, written);
            if (e) {
                snprintf(why, whylen, "cannot write the copy: %s", strerror(e));
                rc = e == ENOSPC || e == EDQUOT ? HW_ENOSPACE : HW_EIO;
                failed = true;
            }
            written += c->data.len;
        }
        if (c)
            protobuf_c_message_free_unpacked(&c->base, NULL);
        if (failed)
            break;
    }
    if (failed)
        grpc_call_cancel(s.call, NULL);
    wait_tag(&s, TAG_STATUS, 0);
    if (failed)
        goto out;
    if (status != GRPC_STATUS_OK) {
        snprintf(why, whylen, "status %d: %.*s", (int)status, (int)GRPC_SLICE_LENGTH(details),
                 (const char *)GRPC_SLICE_START_PTR(details));
        goto out;
    }
    if (first || written != total) {
        snprintf(why, whylen, "the stream ended at %llu of %llu bytes", (unsigned long long)written,
                 (unsigned long long)total);
        goto out;
    }
    if (fsync(fd) != 0) {
        snprintf(why, whylen, "cannot fsync the copy: %s", strerror(errno));
        rc = errno == ENOSPC ? HW_ENOSPACE : HW_EIO;
        goto out;
    }
    rc = HW_OK;
out:
    if (s.call) {
        if (rc != HW_OK)
            grpc_call_cancel(s.call, NULL);
        for (int t = 0; t < N_TAGS; t++)
            wait_tag(&s, t, 0);
        grpc_call_unref(s.call);
    }
    if (recv_bb)
        grpc_byte_buffer_destroy(recv_bb);
    if (req)
        grpc_byte_buffer_destroy(req);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&initial);
    grpc_metadata_array_destroy(&trailing);
    if (ch)
        grpc_channel_destroy(ch);
    if (s.cq) {
        grpc_completion_queue_shutdown(s.cq);
        while (grpc_completion_queue_next(s.cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
               GRPC_QUEUE_SHUTDOWN)
            ;
        grpc_completion_queue_destroy(s.cq);
    }
    return rc;
}

static int mkdir_one(const char *path)
{
    return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

int hw_repl_fetch_copy(const char *const *targets, size_t n, const char *bearer_token, const char *data_dir,
                       uint64_t *applied_index, char *err, size_t errlen)
{
    char dir[PATH_MAX], part[PATH_MAX + 32], done[PATH_MAX + 32];
    char *auth = NULL;
    grpc_metadata md[1];
    size_t n_md = 0, used = 0;
    int fd = -1, rc = HW_EINVALID;

    if (err && errlen)
        err[0] = '\0';
    if (!targets || n == 0 || !data_dir || !*data_dir) {
        snprintf(err, errlen, "no target or no data directory");
        goto out;
    }
    if ((size_t)snprintf(dir, sizeof dir, "%s/incoming", data_dir) >= sizeof dir) {
        snprintf(err, errlen, "data directory path too long");
        goto out;
    }
    snprintf(part, sizeof part, "%s/data.mdb.part", dir);
    snprintf(done, sizeof done, "%s/data.mdb", dir);
    rc = HW_EIO;
    if (mkdir_one(data_dir) != 0 || mkdir_one(dir) != 0) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        goto out;
    }
    if (bearer_token && *bearer_token) {
        if (asprintf(&auth, "Bearer %s", bearer_token) < 0) {
            auth = NULL;
            rc = HW_ENOMEM;
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        md[0].key = grpc_slice_from_static_string("authorization");
        md[0].value = grpc_slice_from_static_string(auth);
        n_md = 1;
    }
    for (size_t i = 0; i < n; i++) {
        if (fd >= 0)
            close(fd);
        fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
            snprintf(err, errlen, "cannot create %s: %s", part, strerror(errno));
            rc = HW_EIO;
            goto out;
        }
        char why[300];
        uint64_t applied = 0;
        rc = fetch_from(targets[i], md, n_md, fd, &applied, why, sizeof why);
        if (rc == HW_OK) {
            close(fd);
            fd = -1;
            if (rename(part, done) != 0 || hw_fsync_parent(done) != 0) {
                snprintf(err, errlen, "cannot move the copy to %s: %s", done, strerror(errno));
                rc = HW_EIO;
                goto out;
            }
            if (applied_index)
                *applied_index = applied;
            goto out;
        }
        if (err && used < errlen) {
            int w = snprintf(err + used, errlen - used, "%s%s: %s", used ? "; " : "", targets[i], why);
            used += w > 0 ? (size_t)w : 0;
        }
        if (rc == HW_ENOSPACE)
            break;
    }
out:
    if (fd >= 0)
        close(fd);
    if (rc != HW_OK && rc != HW_EINVALID)
        unlink(part);
    if (auth) {
        explicit_bzero(auth, strlen(auth));
        free(auth);
    }
    return rc;
}

int hw_repl_install_copy(const char *data_dir, char *err, size_t errlen)
{
    char dir[PATH_MAX], part[PATH_MAX + 32], copy[PATH_MAX + 32], live[PATH_MAX + 32], lock[PATH_MAX + 32];
    if (err && errlen)
        err[0] = '\0';
    if (!data_dir || (size_t)snprintf(dir, sizeof dir, "%s/incoming", data_dir) >= sizeof dir) {
        snprintf(err, errlen, "bad data directory");
        return HW_EIO;
    }
    snprintf(part, sizeof part, "%s/data.mdb.part", dir);
    snprintf(copy, sizeof copy, "%s/data.mdb", dir);
    snprintf(live, sizeof live, "%s/data.mdb", data_dir);
    snprintf(lock, sizeof lock, "%s/lock.mdb", data_dir);
    if (unlink(part) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "cannot remove %s: %s", part, strerror(errno));
        return HW_EIO;
    }
    if (access(copy, F_OK) != 0) {
        if (errno == ENOENT)
            return HW_OK;
        snprintf(err, errlen, "cannot check %s: %s", copy, strerror(errno));
        return HW_EIO;
    }
    if (rename(copy, live) != 0) {
        snprintf(err, errlen, "cannot move %s to %s: %s", copy, live, strerror(errno));
        return HW_EIO;
    }
    if (unlink(lock) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "cannot remove %s: %s", lock, strerror(errno));
        return HW_EIO;
    }
    if (hw_fsync_parent(live) != 0 || hw_fsync_parent(copy) != 0) {
        snprintf(err, errlen, "cannot fsync %s: %s", data_dir, strerror(errno));
        return HW_EIO;
    }
    return HW_OK;
}
