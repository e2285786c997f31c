/*
 * files: attachment metadata as JSON and back, file names, image
 * signatures, and the history check (see files.h). The kinds are one
 * table, indexed by Helpwire__V1__AttachmentKind.
 */
#include "clients/webchat/files.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const kinds[] = {"unspecified", "image", "document", "audio",
                                    "voice",       "video", "sticker",  "location"};
#define N_KINDS (sizeof kinds / sizeof kinds[0])

static const char *str_or_empty(const char *s)
{
    return s ? s : "";
}

json_t *wc_files_json(Helpwire__V1__Attachment *const *a, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        int k = (int)a[i]->kind;
        json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s}", "id", str_or_empty(a[i]->id), "kind",
                              k >= 0 && (size_t)k < N_KINDS ? kinds[k] : "unspecified", "mime_type",
                              str_or_empty(a[i]->mime_type), "size_bytes", (json_int_t)a[i]->size_bytes,
                              "name", str_or_empty(a[i]->name), "sha256", str_or_empty(a[i]->sha256));
        if (o && a[i]->location) {
            json_t *loc = json_pack("{s:f, s:f, s:s, s:s}", "latitude", a[i]->location->latitude, "longitude",
                                    a[i]->location->longitude, "name", str_or_empty(a[i]->location->name),
                                    "address", str_or_empty(a[i]->location->address));
            if (!loc || json_object_set_new(o, "location", loc) != 0) {
                json_decref(o);
                o = NULL;
            }
        }
        if (!o || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static char *dup_member(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return strdup(s ? s : "");
}

void wc_files_free(Helpwire__V1__Attachment **a, size_t n)
{
    if (!a)
        return;
    for (size_t i = 0; i < n; i++) {
        if (!a[i])
            continue;
        free(a[i]->id);
        free(a[i]->mime_type);
        free(a[i]->name);
        free(a[i]->sha256);
        free(a[i]);
    }
    free(a);
}

int wc_files_from_json(const char *json, size_t max, Helpwire__V1__Attachment ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    json_t *arr = json_loads(json, 0, NULL);
    size_t count = json_array_size(arr);
    if (!json_is_array(arr) || count == 0 || count > max) {
        json_decref(arr);
        return -1;
    }
    Helpwire__V1__Attachment **a = calloc(count, sizeof *a);
    int rc = a ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        json_t *o = json_array_get(arr, i);
        const char *kind = json_string_value(json_object_get(o, "kind"));
        size_t k = 0;
        while (kind && k < N_KINDS && strcmp(kinds[k], kind) != 0)
            k++;
        a[i] = calloc(1, sizeof **a);
        if (!a[i] || !kind || k == 0 || k >= N_KINDS ||
            k == HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_LOCATION) {
            rc = -1;
            break;
        }
        helpwire__v1__attachment__init(a[i]);
        a[i]->kind = (Helpwire__V1__AttachmentKind)k;
        a[i]->id = dup_member(o, "id");
        a[i]->mime_type = dup_member(o, "mime_type");
        a[i]->name = dup_member(o, "name");
        a[i]->sha256 = dup_member(o, "sha256");
        a[i]->size_bytes = (uint64_t)json_integer_value(json_object_get(o, "size_bytes"));
        if (!a[i]->id || !a[i]->mime_type || !a[i]->name || !a[i]->sha256)
            rc = -1;
    }
    json_decref(arr);
    if (rc != 0) {
        wc_files_free(a, count);
        return -1;
    }
    *out = a;
    *n = count;
    return 0;
}

void wc_files_clean_name(const char *in, char out[256])
{
    const char *base = in ? in : "";
    for (const char *p = base; *p; p++)
        if (*p == '/' || *p == '\\')
            base = p + 1;
    size_t n = strlen(base);
    if (n > 255) {
        n = 255;
        while (n > 0 && ((unsigned char)base[n] & 0xC0) == 0x80)
            n--; /* not inside a UTF-8 sequence */
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)base[i];
        out[i] = c < 0x20 || c == 0x7F ? '_' : (char)c;
    }
    out[n] = '\0';
    if (n == 0 || strcmp(out, ".") == 0 || strcmp(out, "..") == 0)
        strcpy(out, "file");
}

bool wc_files_content_matches(const char *mime, const void *data, size_t len)
{
    static const struct {
        const char *mime;
        size_t off;
        const char *magic;
        size_t n;
    } sigs[] = {
        {"image/png", 0, "\x89PNG\r\n\x1a\n", 8},
        {"image/jpeg", 0, "\xff\xd8\xff", 3},
        {"image/gif", 0, "GIF8", 4},
        {"image/webp", 8, "WEBP", 4},
    };
    const unsigned char *d = data;
    size_t mn = mime ? strcspn(mime, "; ") : 0;
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        if (mn != strlen(sigs[i].mime) || strncasecmp(mime, sigs[i].mime, mn) != 0)
            continue;
        return len >= sigs[i].off + sigs[i].n && memcmp(d + sigs[i].off, sigs[i].magic, sigs[i].n) == 0;
    }
    return true;
}

bool wc_files_in_history(wc_history *h, const char *visitor, const char *id)
{
    enum { PAGE = 64 };
    wc_entry ev[PAGE];
    uint64_t after = 0;
    bool found = false, more = true;
    while (more && !found) {
        int n = wc_history_list(h, visitor, after, false, ev, PAGE, &more);
        if (n <= 0)
            break;
        for (int i = 0; i < n; i++) {
            if (!found) {
                json_t *e = json_loads(ev[i].json, 0, NULL);
                json_t *atts = json_object_get(e, "attachments");
                for (size_t k = 0; k < json_array_size(atts); k++) {
                    const char *aid = json_string_value(json_object_get(json_array_get(atts, k), "id"));
                    if (aid && *aid && strcmp(aid, id) == 0)
                        found = true;
                }
                json_decref(e);
            }
            after = ev[i].id;
            free(ev[i].json);
        }
    }
    return found;
}
