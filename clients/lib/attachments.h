/*
 * attachments: files between a bridge and helpwired (helpwire.v1.Attachments,
 * proto/helpwire/v1/attachments.proto), for every bridge and the CLI.
 *
 * Upload: hw_att_upload sends a file held in memory as PutChunk pieces of
 * HW_ATT_CHUNK_BYTES (each retried on its own while the status is
 * retryable, within the client's deadline per call), then commits them;
 * a second upload of the same bytes costs no storage (content-addressed)
 * and answers the same id. Download: hw_att_download streams GetAttachment
 * into memory, at most max_bytes, resuming from the last byte received
 * when the stream breaks with a retryable status (up to three times).
 *
 * A file a bridge fetched from its platform is held in memory between the
 * platform and helpwired: bridges bound it with their --max-media-bytes
 * (default 20 MiB, the Telegram Bot API's own download limit), so at most
 * a few such buffers are alive at once (one per intake thread).
 *
 * Thread-safe as the hw_client it is given is; nothing global.
 */
#ifndef HW_CLIENT_ATTACHMENTS_H
#define HW_CLIENT_ATTACHMENTS_H

#include <stddef.h>
#include <stdint.h>

#include "clients/lib/client.h"
#include "proto/helpwire/v1/attachments.pb-c.h"

/* The piece size of uploads: 256 KiB. */
#define HW_ATT_CHUNK_BYTES (256u * 1024u)

/* What an upload made: the attachment's id and its checksum. */
typedef struct hw_att_ref {
    char id[48];     /* "a-" + 40 hex digits */
    char sha256[65]; /* 64 lowercase hex digits */
    uint64_t size_bytes;
} hw_att_ref;

/* Uploads len bytes at data (len >= 1) as an attachment of kind, with
 * mime_type and name (NULL or "" for none) and commits it; fills *out.
 * Returns 0, or -1 with st set: the first failed call's status (a local
 * reason for an empty file or out of memory, code INVALID_ARGUMENT or
 * RESOURCE_EXHAUSTED). */
int hw_att_upload(hw_client *c, const void *data, size_t len, Helpwire__V1__AttachmentKind kind,
                  const char *mime_type, const char *name, hw_att_ref *out, hw_client_status *st);

/* A downloaded attachment: its metadata (info, from the stream's first
 * message) and its bytes. Free with hw_att_file_free. */
typedef struct hw_att_file {
    Helpwire__V1__AttachmentKind kind;
    char mime_type[129];
    char name[257];
    char sha256[65];
    uint8_t *data; /* malloc'd, size bytes */
    size_t size;
} hw_att_file;

/* Downloads attachment id into *out (zeroed first). A file larger than
 * max_bytes is refused with RESOURCE_EXHAUSTED before its bytes are read
 * (its size is in the first message); the bytes' SHA-256 is checked
 * against the metadata (DATA_LOSS when it differs). Returns 0, or -1 with
 * st set. */
int hw_att_download(hw_client *c, const char *id, size_t max_bytes, hw_att_file *out, hw_client_status *st);

/* Frees what hw_att_download filled; a zeroed struct is fine. */
void hw_att_file_free(hw_att_file *f);

/* Writes the SHA-256 of len bytes at data as 64 lowercase hex digits into
 * hex (65 bytes with the NUL): the checksum attachments carry, and the one
 * a bridge checks a platform's file against. Returns 0, or -1 when OpenSSL
 * fails (out of memory). Thread-safe. */
int hw_att_sha256_hex(const void *data, size_t len, char hex[65]);

/* The kind a platform's MIME type suggests when the platform does not say
 * (image/ -> IMAGE, audio/ogg with opus -> VOICE, audio/ -> AUDIO, video/
 * -> VIDEO, image/webp from a sticker set is the caller's to decide);
 * DOCUMENT otherwise. */
Helpwire__V1__AttachmentKind hw_att_kind_for_mime(const char *mime_type);

#endif
