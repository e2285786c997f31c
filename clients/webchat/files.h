/*
 * files: the web chat's attachments between the widget, the history and
 * helpwired. A file a visitor sends (POST /api/upload) is uploaded to
 * helpwired at once (clients/lib/attachments.h) and its metadata written
 * to the history and routed with the message; a file the visitor is shown
 * (GET /api/attachments/<id>) is served only when the visitor's own
 * history names it, so a session id never opens another's files.
 *
 * Metadata travels as JSON, the shape the history stores and the widget
 * reads: [{"id","kind","mime_type","size_bytes","name","sha256"
 * [,"location":{"latitude","longitude","name","address"}]}], kind one of
 * "image", "document", "audio", "voice", "video", "sticker", "location".
 * The same JSON is the spool's media of a message taken while helpwired
 * could not route it (drain.h's prepare step turns it back).
 *
 * Pure functions but wc_files_in_history (reads the history); all
 * thread-safe.
 */
#ifndef WC_FILES_H
#define WC_FILES_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "clients/webchat/history.h"
#include "proto/helpwire/v1/attachments.pb-c.h"

/* The JSON of n attachments (a new array), or NULL when out of memory. */
json_t *wc_files_json(Helpwire__V1__Attachment *const *a, size_t n);

/**
 * Attachments from JSON text as wc_files_json writes it (at most max).
 * @param[out] out  malloc'd array of malloc'd messages: free with
 *                  wc_files_free
 * @return 0, or -1 (not such JSON, over max, out of memory)
 */
int wc_files_from_json(const char *json, size_t max, Helpwire__V1__Attachment ***out, size_t *n);

/* Frees what wc_files_from_json made. NULL is a no-op. */
void wc_files_free(Helpwire__V1__Attachment **a, size_t n);

/* A file name as Attachment.name takes it: the last path component of in,
 * control characters, '/' and '\\' replaced by '_', cut to 255 bytes on a
 * UTF-8 boundary; "file" when nothing is left. out holds 256 bytes. */
void wc_files_clean_name(const char *in, char out[256]);

/* Whether data starts as its MIME type says for the image types a browser
 * shows (PNG, JPEG, GIF, WebP); true for every other type. */
bool wc_files_content_matches(const char *mime_type, const void *data, size_t len);

/* Whether visitor's history (its last entries) names attachment id. */
bool wc_files_in_history(wc_history *h, const char *visitor, const char *id);

#endif
