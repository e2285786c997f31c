/*
 * fmt: enum names, times and sizes as text (see fmt.h).
 */
#include "clients/cli/fmt.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Length of the common prefix of d's value names: the zero value's name
 * without its trailing "UNSPECIFIED" (0 when there is no such value). */
static size_t enum_prefix_len(const ProtobufCEnumDescriptor *d)
{
    const ProtobufCEnumValue *zero = protobuf_c_enum_descriptor_get_value(d, 0);
    static const char unspecified[] = "UNSPECIFIED";
    if (!zero)
        return 0;
    size_t n = strlen(zero->name), u = sizeof unspecified - 1;
    if (n < u || strcmp(zero->name + n - u, unspecified) != 0)
        return 0;
    return n - u;
}

static void lower_copy(const char *s, char *buf, size_t len)
{
    size_t i = 0;
    for (; s[i] && i + 1 < len; i++)
        buf[i] = (char)tolower((unsigned char)s[i]);
    if (len)
        buf[i] = '\0';
}

const char *cli_fmt_enum(const ProtobufCEnumDescriptor *d, int v, char *buf, size_t len)
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(d, v);
    if (!ev) {
        snprintf(buf, len, "%d", v);
        return buf;
    }
    size_t p = enum_prefix_len(d);
    lower_copy(strlen(ev->name) > p ? ev->name + p : ev->name, buf, len);
    return buf;
}

int cli_parse_enum(const ProtobufCEnumDescriptor *d, const char *text, int *v)
{
    size_t p = enum_prefix_len(d);
    for (unsigned i = 0; i < d->n_values; i++) {
        const ProtobufCEnumValue *ev = &d->values[i];
        if (ev->value == 0)
            continue;
        const char *short_name = strlen(ev->name) > p ? ev->name + p : ev->name;
        if (strcasecmp(text, short_name) == 0 || strcmp(text, ev->name) == 0) {
            *v = ev->value;
            return 0;
        }
    }
    return -1;
}

const char *cli_fmt_enum_choices(const ProtobufCEnumDescriptor *d, char *buf, size_t len)
{
    size_t used = 0;
    if (len)
        buf[0] = '\0';
    for (unsigned i = 0; i < d->n_values; i++) {
        if (d->values[i].value == 0)
            continue;
        char name[64];
        cli_fmt_enum(d, d->values[i].value, name, sizeof name);
        int n = snprintf(buf + used, len - used, "%s%s", used ? "|" : "", name);
        if (n < 0 || (size_t)n >= len - used)
            break;
        used += (size_t)n;
    }
    return buf;
}

const char *cli_fmt_time(int64_t unix_ms, char *buf, size_t len)
{
    if (unix_ms == 0) {
        snprintf(buf, len, "-");
        return buf;
    }
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm) || strftime(buf, len, "%Y-%m-%d %H:%M", &tm) == 0)
        snprintf(buf, len, "%lld", (long long)unix_ms);
    return buf;
}

const char *cli_fmt_bytes(uint64_t bytes, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)bytes;
    size_t u = 0;
    while (v >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, len, "%.1f %s", v, units[u]);
    return buf;
}

const char *cli_fmt_duration(double seconds, char *buf, size_t len)
{
    long long s = seconds < 0 ? 0 : (long long)(seconds + 0.5);
    if (s < 60)
        snprintf(buf, len, "%llds", s);
    else if (s < 3600)
        snprintf(buf, len, "%lldm%02llds", s / 60, s % 60);
    else
        snprintf(buf, len, "%lldh%02lldm", s / 3600, (s % 3600) / 60);
    return buf;
}

int cli_parse_doc_ref(const char *text, int *kind, const char **id)
{
    const char *colon = strchr(text, ':');
    if (!colon || !colon[1])
        return -1;
    size_t n = (size_t)(colon - text);
    if (n == 7 && strncasecmp(text, "article", 7) == 0)
        *kind = 1;
    else if (n == 3 && strncasecmp(text, "faq", 3) == 0)
        *kind = 2;
    else
        return -1;
    *id = colon + 1;
    return 0;
}

const char *cli_fmt_doc_ref(int kind, const char *id, char *buf, size_t len)
{
    if (kind == 0)
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%s:%s", kind == 2 ? "faq" : kind == 1 ? "article" : "?", id ? id : "");
    return buf;
}
