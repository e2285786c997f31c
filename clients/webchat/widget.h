/*
 * widget: what the embeddable web chat widget needs from the bridge,
 * apart from the conversation API: its files (widget.js, widget.css,
 * embedded in the binary at build time from clients/webchat/widget/ by a
 * genrule, so the bridge serves them with nothing to install beside it),
 * the operator's settings as the JSON of GET /api/widget-config, and the
 * cross-origin rule (CORS) for the host sites that embed it.
 *
 * The origin rule: a request that carries an Origin header is served
 * when the origin is in the allowlist (--allowed-origins: "*", the
 * default, or a comma-separated list of "scheme://host[:port]"), or when
 * it is the bridge's own origin (the page at "/"); its answer then names
 * the origin in Access-Control-Allow-Origin. A request without Origin (a
 * same-origin GET, curl) is served as before.
 *
 * Pure functions over static data and their arguments: thread-safe.
 */
#ifndef WC_WIDGET_H
#define WC_WIDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* The operator's settings the widget reads (strings borrowed, may be
 * NULL for none; validated by wc_widget_check). */
typedef struct wc_widget_settings {
    const char *color;    /* "#rgb" or "#rrggbb" */
    const char *position; /* "right" or "left" */
    const char *title_en, *title_zh;
    const char *greeting_en, *greeting_zh;
    const char *away_greeting_en, *away_greeting_zh; /* instead, outside business hours */
    const char *allowed_origins; /* "*" or a comma-separated list */
    const char *upload_types;    /* comma-separated MIME types, "type/ *" allowed (no space) */
    uint64_t max_upload_bytes;
} wc_widget_settings;

/* The business hours as the widget shows them (from Agents.GetSchedule). */
typedef struct wc_widget_hours {
    bool known; /* false: no --hours-skill, or helpwired did not answer */
    bool open;
    int64_t next_open_unix_ms; /* 0: unknown or never */
    const char *time_zone;     /* borrowed, may be NULL */
} wc_widget_hours;

/**
 * Checks s: a colour of 3 or 6 hex digits after '#', a position of right
 * or left, origins of the form scheme://host[:port] (no path), MIME types
 * of the form type/subtype or type/ *, texts of at most 512 bytes.
 * @return 0, or -1 with err naming the flag ("--widget-color: ...")
 */
int wc_widget_check(const wc_widget_settings *s, char *err, size_t errlen);

/**
 * The file of the widget at path ("/widget.js", "/widget.css"), embedded
 * at build time.
 * @param[out] type  its Content-Type (static)
 * @param[out] body  its bytes (static), *len of them
 * @return true when path names one
 */
bool wc_widget_asset(const char *path, const char **type, const unsigned char **body, size_t *len);

/**
 * Whether a request from origin (the Origin header's value, NULL when
 * absent) may be served, by the rule above; host is the request's Host
 * header (may be NULL).
 * @return true when allowed (always for a NULL origin)
 */
bool wc_widget_origin_allowed(const char *allowed_origins, const char *origin, const char *host);

/**
 * Whether mime_type (the uploaded file's Content-Type, parameters after
 * ';' ignored) is in s->upload_types (every type when it is NULL or
 * empty).
 */
bool wc_widget_type_allowed(const wc_widget_settings *s, const char *mime_type);

/**
 * The JSON of GET /api/widget-config: {"color","position","title":{"en",
 * "zh"},"greeting":{"en","zh"},"away_greeting":{"en","zh"},"max_upload_bytes",
 * "upload_types":[...],
 * "hours":{"open","next_open_unix_ms","time_zone"} (only when known)}.
 * @return a new reference, or NULL when out of memory
 */
json_t *wc_widget_config_json(const wc_widget_settings *s, const wc_widget_hours *h);

#endif
