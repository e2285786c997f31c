/*
 * widget: the widget's files, settings and origin rule (see widget.h).
 * The files are byte arrays the genrule :widget_assets writes from
 * the .js and .css files of clients/webchat/widget/ (named wc_asset_<file name with
 * '.' and '-' as '_'>), one table row per file.
 */
#include "clients/webchat/widget.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* From the genrule (widget_assets.c). */
extern const unsigned char wc_asset_widget_js[];
extern const unsigned long wc_asset_widget_js_len;
extern const unsigned char wc_asset_widget_css[];
extern const unsigned long wc_asset_widget_css_len;

static const struct {
    const char *path;
    const char *type;
    const unsigned char *body;
    const unsigned long *len;
} assets[] = {
    {"/widget.js", "text/javascript; charset=utf-8", wc_asset_widget_js, &wc_asset_widget_js_len},
    {"/widget.css", "text/css; charset=utf-8", wc_asset_widget_css, &wc_asset_widget_css_len},
};

bool wc_widget_asset(const char *path, const char **type, const unsigned char **body, size_t *len)
{
    for (size_t i = 0; i < sizeof assets / sizeof assets[0]; i++) {
        if (strcmp(path, assets[i].path) == 0) {
            *type = assets[i].type;
            *body = assets[i].body;
            *len = (size_t)*assets[i].len;
            return true;
        }
    }
    return false;
}

static bool is_hex(const char *s, size_t n)
{
    return strspn(s, "0123456789abcdefABCDEF") == n;
}

/* Whether s[0..n) is scheme://host[:port] with no path. */
static bool origin_shaped(const char *s, size_t n)
{
    const char *sep = memchr(s, ':', n);
    if (!sep || (size_t)(sep - s) + 3 > n || strncmp(sep, "://", 3) != 0)
        return false;
    if (!((sep - s == 4 && strncasecmp(s, "http", 4) == 0) ||
          (sep - s == 5 && strncasecmp(s, "https", 5) == 0)))
        return false;
    const char *host = sep + 3;
    size_t hn = n - (size_t)(host - s);
    if (hn == 0)
        return false;
    for (size_t i = 0; i < hn; i++) {
        unsigned char c = (unsigned char)host[i];
        if (c <= ' ' || c == '/' || c == '?' || c == '#' || c == '@' || c == ',')
            return false;
    }
    return true;
}

/* Whether each comma-separated item of list passes ok. */
static bool each_item(const char *list, bool (*ok)(const char *, size_t))
{
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 0 || !ok(p, n))
            return false;
        if (!end)
            return true;
        p = end + 1;
    }
}

static bool mime_shaped(const char *s, size_t n)
{
    const char *slash = memchr(s, '/', n);
    if (!slash || slash == s || (size_t)(slash - s) + 1 >= n || n > 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c >= 127 || c == ';' || c == ',')
            return false;
    }
    return true;
}

int wc_widget_check(const wc_widget_settings *s, char *err, size_t errlen)
{
    const char *c = s->color;
    if (c && !(c[0] == '#' && (strlen(c) == 4 || strlen(c) == 7) && is_hex(c + 1, strlen(c) - 1))) {
        snprintf(err, errlen, "--widget-color: \"%s\" is not a colour like #2563eb", c);
        return -1;
    }
    if (s->position && strcmp(s->position, "right") != 0 && strcmp(s->position, "left") != 0) {
        snprintf(err, errlen, "--widget-position: \"%s\" is neither right nor left", s->position);
        return -1;
    }
    const struct {
        const char *flag, *v;
    } texts[] = {{"--widget-title", s->title_en},
                 {"--widget-title-zh", s->title_zh},
                 {"--widget-greeting", s->greeting_en},
                 {"--widget-greeting-zh", s->greeting_zh},
                 {"--widget-away-greeting", s->away_greeting_en},
                 {"--widget-away-greeting-zh", s->away_greeting_zh}};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        if (texts[i].v && strlen(texts[i].v) > 512) {
            snprintf(err, errlen, "%s: over 512 bytes", texts[i].flag);
            return -1;
        }
    }
    const char *o = s->allowed_origins;
    if (o && strcmp(o, "*") != 0 && !each_item(o, origin_shaped)) {
        snprintf(err, errlen,
                 "--allowed-origins: \"%.200s\" is not * or a comma-separated list of scheme://host[:port]",
                 o);
        return -1;
    }
    if (s->upload_types && *s->upload_types && !each_item(s->upload_types, mime_shaped)) {
        snprintf(err, errlen, "--upload-types: \"%.200s\" is not a comma-separated list of type/subtype",
                 s->upload_types);
        return -1;
    }
    return 0;
}

bool wc_widget_origin_allowed(const char *allowed, const char *origin, const char *host)
{
    if (!origin)
        return true;
    /* The bridge's own pages: the origin's host:port is the Host asked. */
    const char *sep = strstr(origin, "://");
    if (host && sep && strcasecmp(sep + 3, host) == 0)
        return true;
    if (!allowed || strcmp(allowed, "*") == 0)
        return true;
    size_t on = strlen(origin);
    const char *p = allowed;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == on && strncasecmp(p, origin, n) == 0)
            return true;
        if (!end)
            return false;
        p = end + 1;
    }
}

bool wc_widget_type_allowed(const wc_widget_settings *s, const char *mime_type)
{
    if (!s->upload_types || !*s->upload_types)
        return true;
    if (!mime_type)
        return false;
    size_t mn = strcspn(mime_type, "; \t");
    const char *p = s->upload_types;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n >= 2 && p[n - 1] == '*' && p[n - 2] == '/') {
            if (mn >= n - 1 && strncasecmp(p, mime_type, n - 1) == 0)
                return true;
        } else if (n == mn && strncasecmp(p, mime_type, n) == 0) {
            return true;
        }
        if (!end)
            return false;
        p = end + 1;
    }
}

json_t *wc_widget_config_json(const wc_widget_settings *s, const wc_widget_hours *h)
{
    json_t *types = json_array();
    if (types && s->upload_types && *s->upload_types) {
        const char *p = s->upload_types;
        for (;;) {
            const char *end = strchr(p, ',');
            size_t n = end ? (size_t)(end - p) : strlen(p);
            json_array_append_new(types, json_stringn(p, n));
            if (!end)
                break;
            p = end + 1;
        }
    }
    json_t *j =
        json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s}, s:{s:s, s:s}, s:I, s:o}", "color",
                  s->color ? s->color : "#2563eb", "position", s->position ? s->position : "right", "title",
                  "en", s->title_en ? s->title_en : "", "zh", s->title_zh ? s->title_zh : "", "greeting",
                  "en", s->greeting_en ? s->greeting_en : "", "zh", s->greeting_zh ? s->greeting_zh : "",
                  "away_greeting", "en", s->away_greeting_en ? s->away_greeting_en : "", "zh",
                  s->away_greeting_zh ? s->away_greeting_zh : "", "max_upload_bytes",
                  (json_int_t)s->max_upload_bytes, "upload_types", types);
    if (j && h && h->known) {
        json_t *hours =
            json_pack("{s:b, s:I, s:s}", "open", h->open, "next_open_unix_ms",
                      (json_int_t)h->next_open_unix_ms, "time_zone", h->time_zone ? h->time_zone : "");
        if (!hours) {
            json_decref(j);
            return NULL;
        }
        json_object_set_new(j, "hours", hours);
    }
    return j;
}
