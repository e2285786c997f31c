/*
 * table: cleaned, aligned columns (see table.h). Rows are kept as arrays
 * of cleaned cells with their widths measured once; print computes the
 * column widths and pads with spaces (not tabs, which a terminal would
 * align differently from the measured widths).
 */
#include "clients/cli/table.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

enum { TABLE_MAX_COLS = 32 };

typedef struct table_row {
    char *cells[TABLE_MAX_COLS];
    int widths[TABLE_MAX_COLS];
} table_row;

struct cli_table {
    size_t ncols;
    int max_width[TABLE_MAX_COLS];
    table_row *rows; /* rows[0] is the header, if any */
    size_t nrows, cap;
};

/* A growable byte buffer for cli_text_clean. */
typedef struct text_buf {
    char *p;
    size_t len, cap;
} text_buf;

static int buf_put(text_buf *b, const uint8_t *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static bool is_control(utf8proc_int32_t c)
{
    utf8proc_category_t cat = utf8proc_category(c);
    /* Cc: C0/C1 controls and DEL; also the bidi overrides (Cf), which can
     * make text display in an order other than the bytes'. */
    return cat == UTF8PROC_CATEGORY_CC || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

char *cli_text_clean(const char *s, bool keep_newlines, int max_width)
{
    static const uint8_t ellipsis[] = "\xe2\x80\xa6";
    text_buf b = {0};
    const uint8_t *p = (const uint8_t *)(s ? s : "");
    utf8proc_ssize_t left = (utf8proc_ssize_t)strlen((const char *)p);
    int width = 0;
    if (buf_put(&b, (const uint8_t *)"", 0) != 0)
        return NULL;
    while (left > 0) {
        utf8proc_int32_t c;
        utf8proc_ssize_t n = utf8proc_iterate(p, left, &c);
        if (n < 0) {
            c = 0xfffd;
            n = 1;
        }
        if (c == '\n' && keep_newlines) {
            /* kept as is */
        } else if (c == '\n' || c == '\t' || c == '\r') {
            c = ' ';
        } else if (is_control(c)) {
            c = '?';
        }
        int w = c == '\n' ? 0 : utf8proc_charwidth(c);
        if (max_width > 0 && width + w > max_width - 1) {
            /* Look ahead: the rest fits exactly only if this is the last
             * character and it fits without the ellipsis. */
            if (!(n == left && width + w <= max_width)) {
                if (buf_put(&b, ellipsis, sizeof ellipsis - 1) != 0)
                    goto oom;
                break;
            }
        }
        uint8_t enc[4];
        utf8proc_ssize_t m = utf8proc_encode_char(c, enc);
        if (buf_put(&b, enc, (size_t)m) != 0)
            goto oom;
        width += w;
        p += n;
        left -= n;
    }
    return b.p;
oom:
    free(b.p);
    return NULL;
}

int cli_text_width(const char *s)
{
    const uint8_t *p = (const uint8_t *)s;
    utf8proc_ssize_t left = (utf8proc_ssize_t)strlen(s);
    int width = 0;
    while (left > 0) {
        utf8proc_int32_t c;
        utf8proc_ssize_t n = utf8proc_iterate(p, left, &c);
        if (n < 0) {
            n = 1;
            c = 0xfffd;
        }
        width += utf8proc_charwidth(c);
        p += n;
        left -= n;
    }
    return width;
}

static int add_row(cli_table *t, const char *const *cells, bool clean)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        table_row *rows = realloc(t->rows, cap * sizeof *rows);
        if (!rows)
            return -1;
        t->rows = rows;
        t->cap = cap;
    }
    table_row *r = &t->rows[t->nrows];
    memset(r, 0, sizeof *r);
    for (size_t i = 0; i < t->ncols; i++) {
        r->cells[i] = clean ? cli_text_clean(cells[i], false, t->max_width[i]) : strdup(cells[i]);
        if (!r->cells[i]) {
            for (size_t k = 0; k < i; k++)
                free(r->cells[k]);
            return -1;
        }
        r->widths[i] = cli_text_width(r->cells[i]);
    }
    t->nrows++;
    return 0;
}

cli_table *cli_table_new(size_t ncols, const char *const *headers)
{
    if (ncols < 1 || ncols > TABLE_MAX_COLS)
        return NULL;
    cli_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ncols = ncols;
    if (headers && add_row(t, headers, false) != 0) {
        cli_table_free(t);
        return NULL;
    }
    return t;
}

void cli_table_set_max_width(cli_table *t, size_t col, int max_width)
{
    if (col < t->ncols)
        t->max_width[col] = max_width > 0 ? max_width : 0;
}

int cli_table_add(cli_table *t, const char *const *cells)
{
    return add_row(t, cells, true);
}

void cli_table_print(const cli_table *t, FILE *f)
{
    int width[TABLE_MAX_COLS] = {0};
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++)
            if (t->rows[r].widths[c] > width[c])
                width[c] = t->rows[r].widths[c];
    for (size_t r = 0; r < t->nrows; r++) {
        const table_row *row = &t->rows[r];
        /* No padding after the last non-empty cell: no trailing blanks. */
        size_t last = t->ncols;
        while (last > 1 && !*row->cells[last - 1])
            last--;
        for (size_t c = 0; c < last; c++) {
            fputs(row->cells[c], f);
            if (c + 1 < last)
                fprintf(f, "%*s", width[c] - row->widths[c] + 2, "");
        }
        fputc('\n', f);
    }
}

void cli_table_free(cli_table *t)
{
    if (!t)
        return;
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++)
            free(t->rows[r].cells[c]);
    free(t->rows);
    free(t);
}
