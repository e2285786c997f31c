/*
 * args: table-driven flag parsing (see args.h). A linear scan of the
 * tables per flag: a command has a dozen flags at most.
 */
#include "clients/cli/args.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Finds the option called name (length len) in sets; NULL when unknown. */
static const cli_opt *find_opt(const cli_optset *sets, size_t nsets, const char *name, size_t len,
                               const char ***value)
{
    for (size_t s = 0; s < nsets; s++)
        for (size_t i = 0; i < sets[s].n; i++) {
            const char *o = sets[s].opts[i].name;
            if (strlen(o) == len && memcmp(o, name, len) == 0) {
                *value = &sets[s].values[i];
                return &sets[s].opts[i];
            }
        }
    return NULL;
}

int cli_args_parse(const cli_optset *sets, size_t nsets, int argc, char **argv, bool stop_at_positional,
                   const char **pos, size_t max_pos, size_t *npos, int *consumed, char *err, size_t errlen)
{
    bool flags_done = false;
    int i = 0;
    *npos = 0;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (flags_done || a[0] != '-' || strcmp(a, "-") == 0) {
            if (stop_at_positional)
                break;
            if (*npos >= max_pos) {
                snprintf(err, errlen, "unexpected argument '%s'", a);
                return CLI_ARGS_ERROR;
            }
            pos[(*npos)++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            flags_done = true;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            *consumed = i + 1;
            return CLI_ARGS_HELP;
        }
        if (a[1] != '-') {
            snprintf(err, errlen, "unknown flag '%s'", a);
            return CLI_ARGS_ERROR;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const char **value = NULL;
        const cli_opt *o = find_opt(sets, nsets, name, len, &value);
        if (!o) {
            snprintf(err, errlen, "unknown flag '--%.*s'", (int)len, name);
            return CLI_ARGS_ERROR;
        }
        if (!o->metavar) {
            if (eq) {
                snprintf(err, errlen, "--%s takes no value", o->name);
                return CLI_ARGS_ERROR;
            }
            *value = "1";
        } else if (eq) {
            *value = eq + 1;
        } else if (i + 1 < argc) {
            *value = argv[++i];
        } else {
            snprintf(err, errlen, "--%s needs a value (%s)", o->name, o->metavar);
            return CLI_ARGS_ERROR;
        }
    }
    *consumed = i;
    return CLI_ARGS_OK;
}

void cli_args_print_options(FILE *f, const cli_opt *opts, size_t n)
{
    int width = 0;
    for (size_t i = 0; i < n; i++) {
        int w = (int)strlen(opts[i].name) + (opts[i].metavar ? 1 + (int)strlen(opts[i].metavar) : 0);
        if (w > width)
            width = w;
    }
    for (size_t i = 0; i < n; i++) {
        char left[128];
        snprintf(left, sizeof left, "%s%s%s", opts[i].name, opts[i].metavar ? " " : "",
                 opts[i].metavar ? opts[i].metavar : "");
        fprintf(f, "  --%-*s  %s\n", width, left, opts[i].help);
    }
}

int cli_args_parse_int(const char *s, long long min, long long max, long long *out)
{
    if (!s || !*s)
        return -1;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}
