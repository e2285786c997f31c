/*
 * deadletter: the durable record of inbound messages a bridge gave up on,
 * so that a message that cannot be routed never stalls its channel and is
 * never lost either: the bridge writes it here, then moves on.
 *
 * Design: an append-only JSON Lines file, <state-dir>/<bridge>.deadletter.jsonl,
 * one object per message, fdatasync'ed before br_deadletter_write returns
 * (the caller confirms the message to its channel only after that). Why a
 * file and not an LMDB environment: dead letters are rare and written once,
 * never updated or looked up by key by the bridge; an operator reads them
 * with tail, grep or jq and replays them with a script; one fsync per
 * record costs nothing at that rate; and the bridges keep no other
 * database (their other state, Telegram's offset, is a small file too).
 * A crash mid-write leaves at most a torn last line, which does not parse
 * as JSON: readers skip it, and the next write starts on a line of its own.
 *
 * The customer's text is in the file (that is its purpose), so it is
 * created 0600 and never logged. The bridge keeps the file open from
 * start to stop: to take the records away, move the file and restart the
 * bridge, which starts a new one.
 *
 * Thread-safe: writes are serialized by a mutex.
 */
#ifndef BR_DEADLETTER_H
#define BR_DEADLETTER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct br_deadletter br_deadletter;

/* Why a message was given up on: the reason= of the log line, the reason
 * label of the metric, the "reason" of the record. */
typedef enum {
    BR_DEAD_REFUSED = 0,  /* helpwired refused it for good (INVALID_ARGUMENT, ...) */
    BR_DEAD_TOO_OLD = 1,  /* still failing with a retryable status past --max-retry-age-ms */
    BR_DEAD_SHUTDOWN = 2, /* still failing when the bridge stopped and had to drop it */
    BR_DEAD_REASONS = 3
} br_dead_reason;

/* One record. Strings are borrowed; NULL is written as "". */
typedef struct br_dead_letter {
    const char *channel;      /* "telegram", "whatsapp", "webchat" */
    const char *message_id;   /* the channel's id (Telegram: chat:message_id) */
    const char *sender;       /* the channel user id */
    const char *display_name; /* may be NULL */
    const char *text;         /* the customer's text, whole */
    br_dead_reason reason;
    int code;                 /* the last gRPC status code */
    const char *message;      /* its message */
    int attempts;             /* Route calls made */
    int64_t received_ms;      /* wall clock, ms since the epoch: when the message arrived */
    int64_t first_attempt_ms; /* wall clock of the first Route call */
    int64_t last_attempt_ms;  /* wall clock of the last */
} br_dead_letter;

/* Opens (creating it 0600, and dir 0700, when missing) the dead-letter file
 * <dir>/<name>.deadletter.jsonl. Returns 0 and *out, or -1 with err. */
int br_deadletter_open(br_deadletter **out, const char *dir, const char *name, char *err, size_t errlen);

/* Closes the file and frees. NULL is a no-op. */
void br_deadletter_close(br_deadletter *d);

/* The path of the file (owned by d). */
const char *br_deadletter_path(const br_deadletter *d);

/* Appends rec as one JSON line and syncs it to disk; counts it. Returns 0
 * once the record is durable, or -1 with err (nothing counted; the caller
 * must not move on as if it were recorded). Thread-safe. */
int br_deadletter_write(br_deadletter *d, const br_dead_letter *rec, char *err, size_t errlen);

/* Records written since open, for reason. Thread-safe. */
uint64_t br_deadletter_count(const br_deadletter *d, br_dead_reason reason);

/* "refused", "too_old", "shutdown". */
const char *br_dead_reason_name(br_dead_reason reason);

/* Appends the metric family helpwire_bridge_dead_letters_total{bridge,reason}
 * (Prometheus text) to out; bridge is the label value. Thread-safe. */
void br_deadletter_render(const br_deadletter *d, const char *bridge, FILE *out);

#endif
