/*
 * sent: the durable record of the outbox messages a bridge's channel
 * accepted, so that a message helpwired streams again (its Ack lost, the
 * bridge restarted between the send and the Ack) is acknowledged without
 * being sent twice, and a late failure the channel reports by the
 * upstream's id (a WhatsApp "failed" status for a wamid) can be matched to
 * the message it concerns.
 *
 * One LMDB environment per bridge in its state directory
 * (<state-dir>/<name>.sent.mdb and its lock file, opened as lmdb_env.h
 * says for all the bridges' stores): seq -> (upstream id,
 * time sent, the OutboundMessage packed), and upstream id -> seq. Every
 * put is one committed (fsynced) transaction, so a record that
 * br_sent_put returned 0 for survives a crash or a power loss. Records
 * older than keep_ms, and the oldest ones beyond max_records, are pruned
 * as new ones are written, so the file stays bounded.
 *
 * Two processes may open the same file (a rolling restart: the old and
 * the new bridge): LMDB serialises their writers through its lock file.
 * Thread-safe: every call is its own transaction.
 */
#ifndef BR_SENT_H
#define BR_SENT_H

#include <stddef.h>
#include <stdint.h>

#include "helpwire/v1/outbox.pb-c.h"

typedef struct br_sent br_sent;

/* One record, as br_sent_get returns it. */
typedef struct br_sent_record {
    uint64_t seq;
    char upstream_id[256]; /* Telegram message_id, WhatsApp wamid; may be empty */
    int64_t sent_unix_ms;
    Helpwire__V1__OutboundMessage *message; /* owned; NULL when it does not parse */
} br_sent_record;

/* Opens (creating if missing) <state_dir>/<name>.sent.mdb. keep_ms and
 * max_records bound what is kept (0: 7 days, 100000 records). Returns 0,
 * or -1 with err. */
int br_sent_open(br_sent **out, const char *state_dir, const char *name, int64_t keep_ms, size_t max_records,
                 char *err, size_t errlen);

/* Closes s; NULL is ignored. */
void br_sent_close(br_sent *s);

/* Records that m (seq m->seq) was accepted by the channel as upstream_id
 * (may be NULL) at sent_unix_ms, durably, pruning old records. Returns 0,
 * or -1 with err. */
int br_sent_put(br_sent *s, const Helpwire__V1__OutboundMessage *m, const char *upstream_id,
                int64_t sent_unix_ms, char *err, size_t errlen);

/* Whether seq is recorded: 1 (and *rec filled when rec is not NULL; free
 * it with br_sent_record_free), 0 when not, -1 on a read error. */
int br_sent_get(br_sent *s, uint64_t seq, br_sent_record *rec);

/* As br_sent_get, by the upstream's id. */
int br_sent_find_upstream(br_sent *s, const char *upstream_id, br_sent_record *rec);

/* Steps: a message the channel takes in several calls (a text, then each
 * of its files) records each call it made, so that a message streamed
 * again after a crash sends only the calls not yet made. Step numbers are
 * the caller's (0 for the text, 1.. for the files); a step's upstream id
 * (may be empty) is what the channel answered. Steps of a sequence leave
 * with its record (br_sent_prune), or with br_sent_steps_clear.
 * Records step of seq, durably. Returns 0, or -1 with err. */
int br_sent_put_step(br_sent *s, uint64_t seq, uint32_t step, const char *upstream_id, char *err,
                     size_t errlen);

/* Whether step of seq was recorded: 1 (its upstream id copied to id, of
 * idlen bytes, when id is not NULL), 0 when not, -1 on a read error. */
int br_sent_get_step(br_sent *s, uint64_t seq, uint32_t step, char *id, size_t idlen);

/* Deletes the steps of seq (once the whole message is recorded with
 * br_sent_put). Returns 0, or -1. */
int br_sent_steps_clear(br_sent *s, uint64_t seq);

/* Frees rec->message. */
void br_sent_record_free(br_sent_record *rec);

/* Deletes records older than keep_ms before now_unix_ms and the oldest
 * beyond max_records. Returns how many were deleted, or -1. */
long br_sent_prune(br_sent *s, int64_t now_unix_ms);

/* Number of records. */
size_t br_sent_count(br_sent *s);

#endif
