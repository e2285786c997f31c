/*
 * attachments: the Attachments service (PutChunk, CommitAttachment,
 * GetAttachment) and the checks every message with files goes through
 * (Route, AddMessage).
 *
 * A file arrives in pieces of at most 1 MiB, each stored under its SHA-256
 * (the store's attachment records, records.h); CommitAttachment reads the
 * pieces back on the worker (short read transactions, one per piece),
 * hashes the whole content there, not on the writer, and then writes the
 * attachment record named by that digest. GetAttachment streams from a
 * thread of the call's own, one short read per message of at most
 * 256 KiB, like ExportCustomer. Nothing here knows a channel: the bridges
 * fetch and send the files (clients/lib/attachments.h).
 */
#ifndef HW_ATTACHMENTS_H
#define HW_ATTACHMENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "helpwire/v1/attachments.pb-c.h"
#include "server/domain/rpc.h"
#include "server/net/net.h"

/* Attachments one message may carry. */
#define HW_ATTACHMENTS_PER_MESSAGE 10u
/* The default of --attachment-max-bytes (hw_settings.attachment_max_bytes). */
#define HW_ATTACHMENTS_DEFAULT_MAX_BYTES (20u << 20)
/* The most bytes one GetAttachment message carries. */
#define HW_ATTACHMENTS_STREAM_BYTES (256u << 10)

/* Checks the attachments of a request (Route, AddMessage): at most
 * HW_ATTACHMENTS_PER_MESSAGE; each a known kind; files with a well-formed
 * id and no location; LOCATION with a location (coordinates in range,
 * name <= 256 and address <= 1024 bytes of UTF-8) and no id; mime_type
 * "type/subtype" of at most 128 bytes; name at most 256 bytes of UTF-8
 * without '/', '\\' or control characters. On failure the call is failed
 * with INVALID_ARGUMENT naming the field ("attachments[2].name") and
 * false is returned. field is the request's field name ("attachments"). */
bool hw_attachments_check(hw_call *call, const char *field, Helpwire__V1__Attachment *const *list, size_t n);

/* Inside a write fn: completes each file attachment of list from its
 * stored record (size_bytes, sha256; mime_type "application/octet-stream"
 * when none was given), changing the request's messages in place (they
 * live in the call's arena, a). A file not stored fails the write with
 * HW_ENOTFOUND naming "attachments[i].id" (hw_rpc_wfail).
 * @return HW_OK; HW_ENOTFOUND; store codes. */
int hw_attachments_resolve_in(hw_store_txn *w, hw_wctx *h, const char *field, Helpwire__V1__Attachment **list,
                              size_t n, hw_arena *a);

/* A ticket subject for a message without text: "[photo]", "[图片]",
 * "[location: NAME]", ... after the first attachment's kind, in the
 * customer's language (locale "zh..." or English). Static or in a. */
const char *hw_attachments_subject(const Helpwire__V1__Attachment *first, const char *locale, hw_arena *a);

/* Method-table handlers; app is a hw_app. */
void hw_attachments_put_chunk(hw_call *call, const ProtobufCMessage *request, void *app);
void hw_attachments_commit(hw_call *call, const ProtobufCMessage *request, void *app);
/* Server streaming, on a thread of the call's own. */
void hw_attachments_get(hw_call *call, const ProtobufCMessage *request, void *app);

#endif
