/* deadletter: the append-only, synced JSONL file of messages given up on
 * (see deadletter.h for the design). */
#include "clients/lib/deadletter.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "server/base/files.h"

struct br_deadletter {
    pthread_mutex_t mu;
    int fd;
    bool torn; /* the file does not end with a newline (a write was cut short) */
    char path[4096];
    _Atomic uint64_t count[BR_DEAD_REASONS];
};

static const char *const REASONS[BR_DEAD_REASONS] = {"refused", "too_old", "shutdown"};

const char *br_dead_reason_name(br_dead_reason reason)
{
    return (unsigned)reason < BR_DEAD_REASONS ? REASONS[reason] : "unknown";
}

int br_deadletter_open(br_deadletter **out, const char *dir, const char *name, char *err, size_t errlen)
{
    *out = NULL;
    if (!dir || !*dir) {
        snprintf(err, errlen, "no directory for dead letters");
        return -1;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    br_deadletter *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int n = snprintf(d->path, sizeof d->path, "%s/%s.deadletter.jsonl", dir, name);
    if (n < 0 || (size_t)n >= sizeof d->path) {
        snprintf(err, errlen, "%s: path too long", dir);
        free(d);
        return -1;
    }
    bool existed = access(d->path, F_OK) == 0;
    d->fd = open(d->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (d->fd < 0) {
        snprintf(err, errlen, "%s: %s", d->path, strerror(errno));
        free(d);
        return -1;
    }
    /* A new file's name must survive a crash as well as its records. */
    if (!existed && hw_fsync_parent(d->path) != 0) {
        snprintf(err, errlen, "%s: cannot sync its directory: %s", d->path, strerror(errno));
        close(d->fd);
        free(d);
        return -1;
    }
    off_t end = lseek(d->fd, 0, SEEK_END);
    char last = '\n';
    if (end > 0 && pread(d->fd, &last, 1, end - 1) == 1)
        d->torn = last != '\n';
    pthread_mutex_init(&d->mu, NULL);
    *out = d;
    return 0;
}

void br_deadletter_close(br_deadletter *d)
{
    if (!d)
        return;
    close(d->fd);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

const char *br_deadletter_path(const br_deadletter *d)
{
    return d->path;
}

static json_t *str(const char *s)
{
    /* Inputs are the channel's own strings; jansson refuses invalid UTF-8,
     * and a record must be written whatever the bytes. */
    json_t *j = json_string(s ? s : "");
    return j ? j : json_string("(not UTF-8)");
}

int br_deadletter_write(br_deadletter *d, const br_dead_letter *rec, char *err, size_t errlen)
{
    json_t *o = json_object();
    json_object_set_new(o, "reason", json_string(br_dead_reason_name(rec->reason)));
    json_object_set_new(o, "channel", str(rec->channel));
    json_object_set_new(o, "message_id", str(rec->message_id));
    json_object_set_new(o, "sender", str(rec->sender));
    json_object_set_new(o, "display_name", str(rec->display_name));
    json_object_set_new(o, "text", str(rec->text));
    json_object_set_new(o, "code", json_integer(rec->code));
    json_object_set_new(o, "status_message", str(rec->message));
    json_object_set_new(o, "attempts", json_integer(rec->attempts));
    json_object_set_new(o, "received_ms", json_integer(rec->received_ms));
    json_object_set_new(o, "first_attempt_ms", json_integer(rec->first_attempt_ms));
    json_object_set_new(o, "last_attempt_ms", json_integer(rec->last_attempt_ms));
    char *line = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(o);
    if (!line) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t len = strlen(line);
    int rc = 0;
    pthread_mutex_lock(&d->mu);
    /* The record, with its newline, in one write: O_APPEND puts it whole at
     * the end; a torn earlier line gets a newline of its own first. */
    char *buf = malloc(len + 2);
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
        goto out;
    }
    size_t n = 0;
    if (d->torn)
        buf[n++] = '\n';
    memcpy(buf + n, line, len);
    n += len;
    buf[n++] = '\n';
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(d->fd, buf + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(err, errlen, "%s: %s", d->path, w < 0 ? strerror(errno) : "short write");
            d->torn = true;
            rc = -1;
            break;
        }
        done += (size_t)w;
    }
    if (rc == 0) {
        d->torn = false;
        if (fdatasync(d->fd) != 0) {
            snprintf(err, errlen, "%s: %s", d->path, strerror(errno));
            rc = -1;
        }
    }
    free(buf);
    if (rc == 0 && (unsigned)rec->reason < BR_DEAD_REASONS)
        atomic_fetch_add_explicit(&d->count[rec->reason], 1, memory_order_relaxed);
out:
    pthread_mutex_unlock(&d->mu);
    free(line);
    return rc;
}

uint64_t br_deadletter_count(const br_deadletter *d, br_dead_reason reason)
{
    if ((unsigned)reason >= BR_DEAD_REASONS)
        return 0;
    return atomic_load_explicit(&((br_deadletter *)d)->count[reason], memory_order_relaxed);
}

void br_deadletter_render(const br_deadletter *d, const char *bridge, FILE *out)
{
    fprintf(out, "# HELP helpwire_bridge_dead_letters_total Inbound messages given up on and written to the "
                 "dead-letter file, by reason.\n"
                 "# TYPE helpwire_bridge_dead_letters_total counter\n");
    for (int r = 0; r < BR_DEAD_REASONS; r++)
        fprintf(out, "helpwire_bridge_dead_letters_total{bridge=\"%s\",reason=\"%s\"} %llu\n", bridge,
                REASONS[r], (unsigned long long)(d ? br_deadletter_count(d, (br_dead_reason)r) : 0));
}
