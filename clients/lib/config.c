/*
 * config: one option table drives the environment, the flags and --help
 * (see config.h).
 */
#include "clients/lib/config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "clients/lib/client.h"
#include "server/base/log.h"

static int set_value(const br_option *o, const char *value, const char *origin, char *err, size_t errlen)
{
    switch (o->type) {
    case BR_OPT_PATH:
        if (value[0] != '/') {
            snprintf(err, errlen, "%s must start with /", origin);
            return -1;
        }
        *(const char **)o->dst = value;
        return 0;
    case BR_OPT_STRING:
    case BR_OPT_REQUIRED:
        *(const char **)o->dst = value;
        return 0;
    case BR_OPT_BOOL:
        if (value == NULL || strcmp(value, "1") == 0 || strcmp(value, "true") == 0) {
            *(bool *)o->dst = true;
            return 0;
        }
        if (strcmp(value, "0") == 0 || strcmp(value, "false") == 0 || *value == '\0') {
            *(bool *)o->dst = false;
            return 0;
        }
        snprintf(err, errlen, "%s: expected true or false", origin);
        return -1;
    case BR_OPT_INT: {
        char *end = NULL;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno != 0 || end == value || *end != '\0') {
            snprintf(err, errlen, "%s: not a number", origin);
            return -1;
        }
        if (v < o->min || v > o->max) {
            snprintf(err, errlen, "%s: must be between %d and %d", origin, o->min, o->max);
            return -1;
        }
        *(int *)o->dst = (int)v;
        return 0;
    }
    }
    return -1;
}

static const br_option *find_flag(const br_option *opts, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (opts[i].flag && strlen(opts[i].flag) == len && strncmp(opts[i].flag, name, len) == 0)
            return &opts[i];
    return NULL;
}

int br_config_parse(const br_option *opts, size_t n, int argc, char **argv, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const char *v = opts[i].env ? getenv(opts[i].env) : NULL;
        if (v && *v && set_value(&opts[i], v, opts[i].env, err, errlen) != 0)
            return BR_CONFIG_ERROR;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            return BR_CONFIG_HELP;
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument %.100s (see --help)", a);
            return BR_CONFIG_ERROR;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const br_option *o = find_flag(opts, n, name, len);
        if (!o) {
            snprintf(err, errlen, "unknown flag --%.*s (see --help)", (int)(len > 100 ? 100 : len), name);
            return BR_CONFIG_ERROR;
        }
        char origin[128];
        snprintf(origin, sizeof origin, "--%s", o->flag);
        const char *value = NULL;
        if (eq) {
            value = eq + 1;
        } else if (o->type != BR_OPT_BOOL) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "%s needs a value", origin);
                return BR_CONFIG_ERROR;
            }
            value = argv[++i];
        }
        if (set_value(o, value, origin, err, errlen) != 0)
            return BR_CONFIG_ERROR;
    }
    for (size_t i = 0; i < n; i++) {
        const char *v = opts[i].type == BR_OPT_REQUIRED ? *(const char **)opts[i].dst : "given";
        if (!v || !*v) {
            if (opts[i].flag)
                snprintf(err, errlen, "--%s is required", opts[i].flag);
            else
                snprintf(err, errlen, "%s is required", opts[i].env);
            return BR_CONFIG_ERROR;
        }
    }
    return BR_CONFIG_OK;
}

/* Prints text wrapped at 78 columns with the given indent. */
static void print_wrapped(FILE *f, const char *text, int indent)
{
    int col = indent;
    fprintf(f, "%*s", indent, "");
    const char *p = text;
    while (*p) {
        const char *sp = strchr(p, ' ');
        int wlen = sp ? (int)(sp - p) : (int)strlen(p);
        if (col > indent && col + 1 + wlen > 78) {
            fprintf(f, "\n%*s", indent, "");
            col = indent;
        } else if (col > indent) {
            fputc(' ', f);
            col++;
        }
        fprintf(f, "%.*s", wlen, p);
        col += wlen;
        p += wlen;
        while (*p == ' ')
            p++;
    }
    fputc('\n', f);
}

void br_config_usage(FILE *f, const char *prog, const char *about, const br_option *opts, size_t n)
{
    fprintf(f, "usage: %s [flags]\n\n", prog);
    print_wrapped(f, about, 0);
    fprintf(f, "\nflags (each may also come from the environment variable shown):\n");
    for (size_t i = 0; i < n; i++) {
        const br_option *o = &opts[i];
        if (!o->flag)
            continue;
        fprintf(f, "  --%s%s%s", o->flag, o->metavar ? " " : "", o->metavar ? o->metavar : "");
        if (o->env)
            fprintf(f, "   [env %s]", o->env);
        fputc('\n', f);
        print_wrapped(f, o->help, 6);
    }
    fprintf(f, "  --help\n      Print this help and exit.\n");
    fprintf(f, "\nenvironment only (secrets; never logged):\n");
    for (size_t i = 0; i < n; i++) {
        const br_option *o = &opts[i];
        if (o->flag)
            continue;
        fprintf(f, "  %s\n", o->env);
        print_wrapped(f, o->help, 6);
    }
}

int br_config_main(const br_option *opts, size_t n, int argc, char **argv, const char *prog,
                   const char *about)
{
    char err[512];
    int p = br_config_parse(opts, n, argc, argv, err, sizeof err);
    if (p == BR_CONFIG_HELP) {
        br_config_usage(stdout, prog, about, opts, n);
        return 0;
    }
    if (p != BR_CONFIG_OK) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return 2;
    }
    return -1;
}

void br_common_defaults(br_common *c)
{
    memset(c, 0, sizeof *c);
    c->helpwire = "127.0.0.1:50051";
    c->log_level = "info";
    c->rpc_timeout_ms = 10000;
    c->backoff_initial_ms = 250;
    c->backoff_max_ms = 30000;
    c->redeliver_after_ms = 30000;
    c->max_retry_age_ms = 300000;
    c->delivery_workers = 32;
    c->max_delivery_age_ms = 86400000;
    c->max_in_flight_per_recipient = 8;
}

void br_spool_settings_defaults(br_spool_settings *s)
{
    s->max_entries = 10000;
    s->max_bytes = 64 << 20;
    s->drain_timeout_ms = 10000;
}

int br_common_finish(br_common *c, char *err, size_t errlen)
{
    if (hw_log_level_parse(c->log_level) < 0) {
        snprintf(err, errlen, "--log-level: expected debug, info, warn or error");
        return -1;
    }
    if (!c->helpwire || !*c->helpwire) {
        snprintf(err, errlen, "--helpwire: address required");
        return -1;
    }
    if (c->backoff_max_ms < c->backoff_initial_ms) {
        snprintf(err, errlen, "--backoff-max-ms must be at least --backoff-initial-ms");
        return -1;
    }
    return hw_client_secret_load(c->token_file, c->token_env, "token-file", &c->token, err, errlen);
}

void br_common_release(br_common *c)
{
    hw_client_secret_free(&c->token);
}
