/*
 * corpus: one block of text, an array of offsets into it (see corpus.h).
 * The whole file is read into memory: benchmark corpora are a few MB.
 */
#include "bench/corpus.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hw_corpus {
    char *text;      /* all lines, each NUL-terminated */
    size_t *offsets; /* start of each line in text */
    size_t *lengths;
    size_t count;
};

static const char *const builtin_lines[] = {
    "如何重置密码",
    "工作时间",
    "退款政策",
    "I forgot my password and cannot log in",
    "How do I reset my password?",
    "What are your opening hours?",
    "I want a refund for my last order",
    "My invoice shows the wrong amount, please fix the billing",
    "The app crashes when I open the settings page",
    "Can I change the email address on my account?",
    "My package has not arrived yet, where is it?",
    "The connection keeps dropping every few minutes",
    "How do I cancel my subscription?",
    "请问退款需要多长时间",
    "我的账户被锁定了",
    "Real-time strategy game of ancient warfare",
    "command-line JSON processor",
    "fast, scalable, distributed revision control system",
    "small, fast and complete SMTP client library",
    "URGENT: payment failed twice and I was charged",
};

void hw_corpus_destroy(hw_corpus *c)
{
    if (!c)
        return;
    free(c->text);
    free(c->offsets);
    free(c->lengths);
    free(c);
}

/* Reads the whole file into a NUL-terminated buffer. */
static int read_file(const char *path, char **out, size_t *out_len)
{
    int rc = 0;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    for (;;) {
        if (cap - len < 65536) {
            size_t ncap = cap ? cap * 2 : 1 << 20;
            char *nbuf = realloc(buf, ncap + 1);
            if (!nbuf) {
                rc = -ENOMEM;
                goto out;
            }
            buf = nbuf;
            cap = ncap;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f))
                rc = -EIO;
            break;
        }
    }
out:
    fclose(f);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    if (!buf) {
        buf = malloc(1);
        if (!buf)
            return -ENOMEM;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return 0;
}

/* Splits text in place into lines and indexes the usable ones. */
static int index_lines(hw_corpus *c, size_t text_len)
{
    size_t cap = 1024;
    c->offsets = malloc(cap * sizeof(*c->offsets));
    c->lengths = malloc(cap * sizeof(*c->lengths));
    if (!c->offsets || !c->lengths)
        return -ENOMEM;
    size_t start = 0;
    while (start < text_len) {
        char *nl = memchr(c->text + start, '\n', text_len - start);
        size_t end = nl ? (size_t)(nl - c->text) : text_len;
        size_t len = end - start;
        c->text[end] = '\0';
        if (len > 0 && c->text[start + len - 1] == '\r')
            c->text[start + --len] = '\0';
        if (len > 0 && len <= HW_CORPUS_MAX_LINE_BYTES) {
            if (c->count == cap) {
                cap *= 2;
                size_t *no = realloc(c->offsets, cap * sizeof(*no));
                if (!no)
                    return -ENOMEM;
                c->offsets = no;
                size_t *nl2 = realloc(c->lengths, cap * sizeof(*nl2));
                if (!nl2)
                    return -ENOMEM;
                c->lengths = nl2;
            }
            c->offsets[c->count] = start;
            c->lengths[c->count] = len;
            c->count++;
        }
        start = end + 1;
    }
    return c->count ? 0 : -ENODATA;
}

int hw_corpus_load(const char *path, hw_corpus **out)
{
    int rc;
    size_t text_len = 0;
    hw_corpus *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    if (path) {
        rc = read_file(path, &c->text, &text_len);
        if (rc != 0)
            goto out;
    } else {
        size_t n = sizeof(builtin_lines) / sizeof(builtin_lines[0]);
        for (size_t i = 0; i < n; i++)
            text_len += strlen(builtin_lines[i]) + 1;
        c->text = malloc(text_len + 1);
        if (!c->text) {
            rc = -ENOMEM;
            goto out;
        }
        size_t used = 0;
        for (size_t i = 0; i < n; i++) {
            size_t len = strlen(builtin_lines[i]);
            memcpy(c->text + used, builtin_lines[i], len);
            c->text[used + len] = '\n';
            used += len + 1;
        }
        c->text[used] = '\0';
    }
    rc = index_lines(c, text_len);
out:
    if (rc != 0) {
        hw_corpus_destroy(c);
        return rc;
    }
    *out = c;
    return 0;
}

size_t hw_corpus_size(const hw_corpus *c)
{
    return c->count;
}

const char *hw_corpus_line(const hw_corpus *c, size_t i, size_t *len)
{
    i %= c->count;
    if (len)
        *len = c->lengths[i];
    return c->text + c->offsets[i];
}
