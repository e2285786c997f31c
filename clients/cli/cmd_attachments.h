/*
 * cmd_attachments: the file helpers `tickets reply --attach` shares with
 * `helpwire attachments` (cmd_attachments.c).
 */
#ifndef CLI_CMD_ATTACHMENTS_H
#define CLI_CMD_ATTACHMENTS_H

#include "clients/cli/cli.h"
#include "clients/lib/attachments.h"

/* The MIME type a file name's extension suggests (a static string;
 * "application/octet-stream" when unknown). */
const char *cli_attachment_mime_for(const char *path);

/* "image", "document", ... into *out. Returns 0, or -1 when unknown. */
int cli_attachment_kind_parse(const char *s, Helpwire__V1__AttachmentKind *out);

/* Uploads the file at path (kind_name and mime may be NULL: guessed) and
 * fills *ref and, when out is not NULL, *out for a message (out->id
 * malloc'd: the caller frees it; mime_type and name borrowed from mime
 * and path). Returns a CLI_EXIT_* code after printing any failure. */
int cli_attachment_upload(cli_ctx *ctx, const char *path, const char *kind_name, const char *mime,
                          Helpwire__V1__Attachment *out, hw_att_ref *ref);

#endif
