/*
 * table: aligned text tables for the CLI's human output, and the text
 * hygiene they need. Cells hold text that came from customers (ticket
 * subjects, messages), so every cell is cleaned before it reaches a
 * terminal: control characters (ESC sequences could retitle or rewrite
 * the operator's terminal) become '?', invalid UTF-8 becomes U+FFFD, and
 * newlines and tabs become spaces. Widths are display columns (a CJK
 * character is two), measured with utf8proc, so Chinese titles line up.
 *
 * A table copies its cells; printing pads every column but the last.
 * Not thread-safe per table; no global state.
 */
#ifndef CLI_TABLE_H
#define CLI_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct cli_table cli_table;

/* A new table with ncols columns (1..32) and these headers (copied), or
 * no header row when headers is NULL (key/value blocks). Returns NULL when
 * out of memory or ncols is out of range. */
cli_table *cli_table_new(size_t ncols, const char *const *headers);

/* Truncates cells of column col to max_width display columns (ending with
 * "…") from the next cli_table_add on. 0 means unlimited (the default). */
void cli_table_set_max_width(cli_table *t, size_t col, int max_width);

/* Appends a row of ncols cells (each cleaned and copied; NULL prints as
 * empty). Returns 0, or -1 when out of memory. */
int cli_table_add(cli_table *t, const char *const *cells);

/* Prints the header and rows, columns separated by two spaces. */
void cli_table_print(const cli_table *t, FILE *f);

/* Frees the table; NULL is ignored. */
void cli_table_free(cli_table *t);

/* Cleans untrusted text for a terminal (see above). With keep_newlines,
 * '\n' is kept (for message bodies printed as paragraphs). max_width > 0
 * truncates to that many display columns, ending with "…". Returns a
 * malloc'd string (caller frees), or NULL when out of memory. */
char *cli_text_clean(const char *s, bool keep_newlines, int max_width);

/* Display width in terminal columns of UTF-8 text s (already clean). */
int cli_text_width(const char *s);

#endif
