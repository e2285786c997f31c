/*
 * args: the CLI's command-line parser, driven by option tables. Each
 * table entry names a flag and whether it takes a value; the parser fills
 * a parallel array of values (indexed like the table), so the tables stay
 * constant data and the same tables print --help. Several tables can be
 * parsed together (the global flags are accepted before and after the
 * subcommand).
 *
 * Flags take `--name VALUE` or `--name=VALUE`; booleans take no value and
 * are set to "1". A flag given twice keeps the last value. "--" ends the
 * flags; "-" alone is a positional argument (stdin). -h and --help ask for
 * help. Results point into argv (not copied).
 *
 * Not here: what a value means (cli_args_parse_int checks numbers) and
 * which flags are required (each command checks its own).
 */
#ifndef CLI_ARGS_H
#define CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct cli_opt {
    const char *name;    /* without "--" */
    const char *metavar; /* e.g. "TEXT"; NULL for a boolean flag */
    const char *help;    /* one line */
} cli_opt;

/* One table and where its values go: values[i] is set for opts[i]; entries
 * of flags not given are left as they were (callers zero them first). */
typedef struct cli_optset {
    const cli_opt *opts;
    size_t n;
    const char **values;
} cli_optset;

enum { CLI_ARGS_OK = 0, CLI_ARGS_HELP = 1, CLI_ARGS_ERROR = -1 };

/* Parses argv[0..argc-1] (no program name) against sets.
 * @param[out] pos       positional arguments, up to max_pos
 * @param[out] npos      how many were found
 * @param[out] consumed  how many argv entries were read: with
 *                       stop_at_positional the index of the first
 *                       positional (argc when none), else argc
 * @return CLI_ARGS_OK; CLI_ARGS_HELP for -h/--help; CLI_ARGS_ERROR with a
 *         message in err (unknown flag, missing value, a value given to a
 *         boolean, more than max_pos positionals). */
int cli_args_parse(const cli_optset *sets, size_t nsets, int argc, char **argv, bool stop_at_positional,
                   const char **pos, size_t max_pos, size_t *npos, int *consumed, char *err, size_t errlen);

/* Prints one aligned line per option: "  --name METAVAR  help". */
void cli_args_print_options(FILE *f, const cli_opt *opts, size_t n);

/* Parses a whole decimal integer in [min, max] into *out. Returns 0, or -1
 * (empty, trailing characters, out of range). */
int cli_args_parse_int(const char *s, long long min, long long max, long long *out);

#endif
