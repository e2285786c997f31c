/*
 * audit_start: the audit log's entries of a start (see audit.h):
 * "store.restored" on the first start of a backup's copy (its mark is
 * read and removed) and "config.start" with the settings changed since
 * the previous start, both in one write with the record of this start's
 * settings.
 */
#include "server/domain/audit.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server/store/records.h"

#define VALUE_CUT 256u /* bytes of a value kept in a detail */

/* One `name=value` line of a settings text (pointers into an arena copy). */
typedef struct setting {
    const char *name, *value;
} setting;

/* Splits text's lines into n settings (in a, which also holds the copy). */
static int parse_settings(hw_arena *a, const char *text, setting **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!text)
        return HW_OK;
    size_t lines = 1;
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    char *copy = hw_arena_strdup(a, text);
    setting *s = hw_arena_alloc(a, lines * sizeof *s);
    if (!copy || !s)
        return HW_ENOMEM;
    size_t k = 0;
    for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        if (!eq || eq == line)
            continue; /* not a setting: skipped */
        *eq = '\0';
        s[k].name = line;
        s[k].value = eq + 1;
        k++;
    }
    *out = s;
    *n = k;
    return HW_OK;
}

static const char *value_of(const setting *s, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s[i].name, name) == 0)
            return s[i].value;
    return NULL;
}

/* v cut at VALUE_CUT bytes (at a character's start) with "..." after. */
static const char *cut(hw_arena *a, const char *v)
{
    size_t n = strlen(v);
    if (n <= VALUE_CUT)
        return v;
    n = VALUE_CUT;
    while (n > 0 && ((unsigned char)v[n] & 0xC0u) == 0x80u)
        n--;
    return hw_arena_printf(a, "%.*s...", (int)n, v);
}

char *hw_audit_backup_mark(hw_arena *a, int64_t at_ms, const char *taken_by, const char *source,
                           const char *directory, size_t *len)
{
    time_t sec = (time_t)(at_ms / 1000);
    struct tm tm;
    char iso[40] = "";
    if (gmtime_r(&sec, &tm))
        strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%S", &tm);
    /* The values are one line each: a newline would start another key. */
    char *text = hw_arena_printf(a,
                                 "backup_at_unix_ms=%lld\nbackup_at=%s.%03dZ\ntaken_by=%s\nsource=%s\n"
                                 "directory=%s\n",
                                 (long long)at_ms, iso, (int)(at_ms % 1000), taken_by ? taken_by : "",
                                 source ? source : "", directory ? directory : "");
    if (!text)
        return NULL;
    for (char *p = text; *p; p++)
        if (*p == '\r')
            *p = ' ';
    if (len)
        *len = strlen(text);
    return text;
}

typedef struct start_ctx {
    int64_t now;
    const char *data_dir, *settings, *defaults;
    hw_audit_start_result res;
} start_ctx;

/* Appends an entry by the server with the given details. */
static int append_system(hw_store_txn *w, hw_arena *a, int64_t now, const char *action, const char *target,
                         const setting *d, size_t n, uint64_t *seq)
{
    Helpwire__V1__AuditEvent e = HELPWIRE__V1__AUDIT_EVENT__INIT;
    e.at_unix_ms = now;
    e.actor = "system";
    e.action = (char *)action;
    e.target = (char *)(target ? target : "");
    e.outcome = HELPWIRE__V1__AUDIT_OUTCOME__AUDIT_OUTCOME_OK;
    if (n) {
        Helpwire__V1__AuditEvent__DetailsEntry *kv = hw_arena_alloc(a, n * sizeof *kv);
        Helpwire__V1__AuditEvent__DetailsEntry **ptrs = hw_arena_alloc(a, n * sizeof *ptrs);
        if (!kv || !ptrs)
            return HW_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            helpwire__v1__audit_event__details_entry__init(&kv[i]);
            kv[i].key = (char *)d[i].name;
            kv[i].value = (char *)d[i].value;
            ptrs[i] = &kv[i];
        }
        e.details = ptrs;
        e.n_details = n;
    }
    int rc = hw_store_audit_append(w, &e);
    if (rc == HW_OK && seq)
        *seq = e.seq;
    return rc;
}

/* store.restored when the copy carries a mark; the mark goes. */
static int restored_in(hw_store_txn *w, hw_arena *a, start_ctx *c)
{
    void *v = NULL;
    size_t vl = 0;
    int rc = hw_store_kv_get(w, HW_AUDIT_MARK_NS, HW_AUDIT_MARK_KEY, strlen(HW_AUDIT_MARK_KEY), a, &v, &vl);
    if (rc == HW_ENOTFOUND)
        return HW_OK;
    if (rc != HW_OK)
        return rc;
    setting *d;
    size_t n;
    if ((rc = parse_settings(a, v, &d, &n)) != HW_OK)
        return rc;
    for (size_t i = 0; i < n; i++)
        d[i].value = cut(a, d[i].value);
    if ((rc = append_system(w, a, c->now, "store.restored", c->data_dir, d, n, NULL)) != HW_OK)
        return rc;
    if ((rc = hw_store_kv_delete(w, HW_AUDIT_MARK_NS, HW_AUDIT_MARK_KEY, strlen(HW_AUDIT_MARK_KEY))) != HW_OK)
        return rc;
    c->res.restored = 1;
    return HW_OK;
}

/* config.start, and this start's settings kept. */
static int config_in(hw_store_txn *w, hw_arena *a, start_ctx *c)
{
    void *v = NULL;
    size_t vl = 0;
    int rc =
        hw_store_kv_get(w, HW_AUDIT_START_NS, HW_AUDIT_START_KEY, strlen(HW_AUDIT_START_KEY), a, &v, &vl);
    if (rc != HW_OK && rc != HW_ENOTFOUND)
        return rc;
    int first = rc == HW_ENOTFOUND;
    setting *now, *before;
    size_t n_now, n_before;
    if ((rc = parse_settings(a, c->settings, &now, &n_now)) != HW_OK ||
        (rc = parse_settings(a, first ? c->defaults : v, &before, &n_before)) != HW_OK)
        return rc;
    /* At most: first_start, every setting now, every one gone since. */
    setting *d = hw_arena_alloc(a, (1 + n_now + n_before) * sizeof *d);
    if (!d)
        return HW_ENOMEM;
    size_t n = 0;
    if (first)
        d[n++] = (setting){"first_start", "true"};
    for (size_t i = 0; i < n_now; i++) {
        const char *old = value_of(before, n_before, now[i].name);
        if (!old)
            old = "";
        if (strcmp(old, now[i].value) == 0)
            continue;
        const char *shown =
            first ? cut(a, now[i].value) : hw_arena_printf(a, "%s->%s", cut(a, old), cut(a, now[i].value));
        if (!shown)
            return HW_ENOMEM;
        d[n++] = (setting){now[i].name, shown};
    }
    if (!first) {
        for (size_t i = 0; i < n_before; i++) { /* settings this version no longer has */
            if (value_of(now, n_now, before[i].name) || !before[i].value[0])
                continue;
            const char *shown = hw_arena_printf(a, "%s->", cut(a, before[i].value));
            if (!shown)
                return HW_ENOMEM;
            d[n++] = (setting){before[i].name, shown};
        }
    }
    c->res.first_start = first;
    c->res.changed = n - (size_t)first;
    if ((rc = append_system(w, a, c->now, "config.start", c->data_dir, d, n, &c->res.seq)) != HW_OK)
        return rc;
    return hw_store_kv_put(w, HW_AUDIT_START_NS, HW_AUDIT_START_KEY, strlen(HW_AUDIT_START_KEY), c->settings,
                           strlen(c->settings));
}

static int start_fn(hw_store_txn *w, void *arg)
{
    start_ctx *c = arg;
    memset(&c->res, 0, sizeof c->res); /* the fn may run again */
    hw_arena *a = hw_store_txn_arena(w);
    if (!a)
        return HW_EINVALID;
    int rc = restored_in(w, a, c);
    return rc == HW_OK ? config_in(w, a, c) : rc;
}

int hw_audit_start(hw_store *s, int64_t now_ms, const char *data_dir, const char *settings,
                   const char *defaults, hw_audit_start_result *out)
{
    if (!s || !settings)
        return HW_EINVALID;
    start_ctx c = {.now = now_ms, .data_dir = data_dir, .settings = settings, .defaults = defaults};
    int rc = hw_store_write(s, start_fn, &c);
    if (rc == HW_OK && out)
        *out = c.res;
    return rc;
}
