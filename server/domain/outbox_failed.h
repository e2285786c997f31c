/*
 * outbox_failed: the failed list of the Outbox service. A message a bridge
 * acknowledges as FAILED (AckRequest.failed: the channel refused it for
 * good) leaves the queue and is kept here as a FailedEntry: the message as
 * it was queued, the attempts tried, the upstream's reason and when. An
 * admin lists the entries (ListFailed, newest first) and queues chosen
 * ones again (RetryFailed) once the cause is gone (the customer unblocked
 * the bot, a template was approved).
 *
 * Design:
 * - The list is the store's outbox_failed database (records.h), written in
 *   the same transaction as the Ack that removes the message from the
 *   queue, so a message is always in exactly one of the two (or delivered).
 * - A late failure (the channel reports the failure after the bridge
 *   acknowledged the message as delivered: a WhatsApp "failed" status
 *   callback) carries the message as it was streamed
 *   (FailedDelivery.message), since the queue no longer has it. It is
 *   checked like any input (its sequence must be one the channel handed
 *   out) and recorded once: a second report of a sequence already in the
 *   list is ignored.
 * - The ticket's history says what happened: DELIVERY_FAILED with the
 *   reason when an entry is recorded, DELIVERY_RETRIED when it is queued
 *   again, both published to WatchTickets through the write's effects.
 * - A retried message is a copy under a new sequence (attempt 0, created
 *   now): sequences are never reused, so a bridge's dedupe by sequence
 *   cannot swallow it.
 *
 * Not done here: the Ack RPC itself and the queue (outbox.c calls in
 * here for its FAILED branch); pruning old entries (ops/retention.c).
 */
#ifndef HW_OUTBOX_FAILED_H
#define HW_OUTBOX_FAILED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "helpwire/v1/outbox.pb-c.h"
#include "server/base/arena.h"
#include "server/domain/effects.h"
#include "server/domain/rpc.h"
#include "server/domain/split.h"
#include "server/net/net.h"
#include "server/store/store.h"

/* The longest failure reason kept (bytes; a longer one is cut at a UTF-8
 * boundary). */
#define HW_OUTBOX_FAILED_MAX_REASON 1024u

/* The most sequences one RetryFailed takes. */
#define HW_OUTBOX_FAILED_MAX_RETRY 1000u

/* The longest text a late failure's message may carry (bytes): AddMessage's
 * bound, which every queued text is within. */
#define HW_OUTBOX_FAILED_MAX_TEXT 16384u

/* Inside a write fn: records m (borrowed; as it was queued, m->channel and
 * m->seq set) in the failed list with reason (required, cut to
 * HW_OUTBOX_FAILED_MAX_REASON bytes) and the current time. The entry's
 * attempt is m->attempt, at least 1 (the message was tried to fail). When
 * m->ticket_id is set, DELIVERY_FAILED ("outbox seq N: reason", actor
 * "system") is appended to that ticket's history and recorded on fx; with
 * ticket_must_exist, only when the ticket is in the store (a late failure
 * names a ticket the caller gave), else also for a ticket not in it, as
 * hw_watch_record_id does. Everything is allocated in fx's arena. Writer
 * thread only.
 * @return HW_OK; HW_EEXISTS (the sequence is already in the failed list:
 *   nothing written); HW_EINVALID (m or reason missing); HW_ENOMEM; store
 *   codes. */
int hw_outbox_failed_record_in(hw_store_txn *w, hw_effects *fx, const Helpwire__V1__OutboundMessage *m,
                               const char *reason, bool ticket_must_exist);

/* Before the write: checks the message of a late failure, failed[i] of an
 * Ack on channel whose text limit is limit (hw_outbox_channel_limit):
 * message.seq equal to the failure's seq, message.channel the Ack's,
 * channel_user_id present, kind a known OutboundKind, text valid UTF-8 of
 * 1..HW_OUTBOX_FAILED_MAX_TEXT bytes within limit, ids and survey_url
 * valid text of bounded length. f->message must be set. On failure the
 * call has been failed with INVALID_ARGUMENT naming the field
 * ("failed[2].message.text: ...") and false is returned. Any thread. */
bool hw_outbox_failed_check_late(hw_call *call, size_t i, const Helpwire__V1__FailedDelivery *f,
                                 Helpwire__V1__Channel channel, hw_split_limit limit);

/* Inside the Ack's write fn, for failed[i], a failure whose sequence is no
 * longer queued and whose message hw_outbox_failed_check_late accepted:
 * the sequence must be one the channel handed out (else the write fails
 * with HW_EINVALID naming failed[i].seq, through hw_rpc_wfail on h); then
 * it is recorded as hw_outbox_failed_record_in does with ticket_must_exist.
 * @return HW_OK (recorded); HW_EEXISTS (already in the failed list:
 *   nothing written, to be ignored); HW_EINVALID (h carries the message:
 *   roll back); HW_ENOMEM; store codes. */
int hw_outbox_failed_late_in(hw_store_txn *w, hw_wctx *h, size_t i, const Helpwire__V1__FailedDelivery *f,
                             Helpwire__V1__Channel channel);

/* Method-table handlers (role admin); app is a hw_app.
 * ListFailed: channel 0 = every channel; page_size 0 = 50, above 1000 =
 * 1000; INVALID_ARGUMENT for an unknown channel or a page token of
 * another listing.
 * RetryFailed: all or nothing; INVALID_ARGUMENT for a missing channel, no
 * sequence, more than HW_OUTBOX_FAILED_MAX_RETRY or a repeated one;
 * NOT_FOUND naming the first sequence not in the channel's failed list
 * (nothing queued). The new sequences are streamed after the commit like
 * any new message. */
void hw_outbox_failed_list(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_outbox_failed_retry(hw_call *call, const ProtobufCMessage *request, void *app);

#endif
