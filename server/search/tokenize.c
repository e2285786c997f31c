/*
 * tokenize: UTF-8 text -> normalized search terms (see tokenize.h for the
 * pipeline). Written for throughput because the whole knowledge base is
 * tokenized at start-up: pure-ASCII words (the bulk of English text) skip
 * utf8proc and are lower-cased in place; stems are memoized in a small
 * direct-mapped cache so libstemmer runs once per distinct frequent word;
 * all output goes to buffers reused across calls (no malloc per term once
 * warmed up). Normalized CJK characters are written contiguously so each
 * bigram is a pointer into that run, not a copy.
 */
#include "server/search/tokenize.h"

#include <libstemmer.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include <xxhash.h>

#define HW_TOKENIZE_MAX_INPUT (64u << 20)
#define STEM_CACHE_SLOTS 8192 /* power of two */
#define STEM_CACHE_WORD 24

typedef struct stem_slot {
    uint64_t hash;
    uint8_t word_len; /* 0 = empty slot */
    uint8_t stem_len;
    char word[STEM_CACHE_WORD];
    char stem[STEM_CACHE_WORD];
} stem_slot;

typedef struct cjk_char {
    uint32_t off; /* offset of its normalized text in t->text */
    uint32_t start, end;
} cjk_char;

/* While tokenizing, token texts are offsets into t->text (which may move
 * when it grows); pointers are fixed up at the end. */
struct hw_tokenizer {
    struct sb_stemmer *stemmer;
    hw_token *tokens;
    size_t n_tokens, cap_tokens;
    char *text;
    size_t text_len, text_cap;
    utf8proc_int32_t *ucs; /* scratch for utf8proc decomposition */
    size_t ucs_cap;
    cjk_char *run;
    size_t run_len, run_cap;
    stem_slot *stem_cache;
};

/* English stop words, sorted for bsearch. Question words are included so
 * that "how do I reset my password" and "reset password" agree. */
static const char *const k_stop_words[] = {
    "a",     "about",  "all",  "am",   "an",   "and",   "any", "are",   "as",   "at",   "be",
    "been",  "being",  "but",  "by",   "can",  "could", "did", "do",    "does", "for",  "from",
    "had",   "has",    "have", "he",   "her",  "him",   "his", "how",   "i",    "if",   "in",
    "into",  "is",     "it",   "its",  "me",   "my",    "of",  "on",    "or",   "our",  "s",
    "she",   "should", "so",   "t",    "than", "that",  "the", "their", "them", "then", "there",
    "these", "they",   "this", "to",   "us",   "was",   "we",  "were",  "what", "when", "where",
    "which", "who",    "why",  "will", "with", "would", "you", "your",
};

typedef struct word_key {
    const char *s;
    size_t len;
} word_key;

static int stop_cmp(const void *key, const void *elem)
{
    const word_key *k = key;
    const char *w = *(const char *const *)elem;
    size_t wl = strlen(w);
    size_t n = k->len < wl ? k->len : wl;
    int c = memcmp(k->s, w, n);
    if (c != 0)
        return c;
    return (k->len > wl) - (k->len < wl);
}

static int is_stop_word(const char *s, size_t len)
{
    if (len > 6)
        return 0;
    word_key k = {s, len};
    return bsearch(&k, k_stop_words, sizeof k_stop_words / sizeof *k_stop_words, sizeof *k_stop_words,
                   stop_cmp) != NULL;
}

uint64_t hw_term_hash(const char *text, size_t len)
{
    return XXH3_64bits(text, len);
}

int hw_utf8_validate(const char *text, size_t len, hw_status *st)
{
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)text;
    size_t i = 0;
    while (i < len) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate(p + i, (utf8proc_ssize_t)(len - i), &cp);
        if (n < 0)
            return hw_status_set(st, HW_EINVALID, "invalid UTF-8 at byte %zu", i);
        i += (size_t)n;
    }
    return 0;
}

int hw_tokenizer_create(hw_tokenizer **out, hw_status *st)
{
    *out = NULL;
    hw_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return hw_status_set(st, HW_ENOMEM, "tokenizer: out of memory");
    t->stemmer = sb_stemmer_new("english", "UTF_8");
    t->stem_cache = calloc(STEM_CACHE_SLOTS, sizeof *t->stem_cache);
    if (!t->stemmer || !t->stem_cache) {
        hw_tokenizer_destroy(t);
        return hw_status_set(st, HW_ENOMEM, "tokenizer: cannot create the English stemmer");
    }
    *out = t;
    return 0;
}

void hw_tokenizer_destroy(hw_tokenizer *t)
{
    if (!t)
        return;
    if (t->stemmer)
        sb_stemmer_delete(t->stemmer);
    free(t->stem_cache);
    free(t->tokens);
    free(t->text);
    free(t->ucs);
    free(t->run);
    free(t);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q)
        return HW_ENOMEM;
    *p = q;
    *cap = c;
    return 0;
}

/* Reserves n bytes at the end of t->text; returns their offset or -1. */
static long text_reserve(hw_tokenizer *t, size_t n)
{
    if (grow((void **)&t->text, &t->text_cap, t->text_len + n, 1) != 0)
        return -1;
    long off = (long)t->text_len;
    t->text_len += n;
    return off;
}

static int push_token(hw_tokenizer *t, size_t off, size_t len, uint32_t flags, size_t start, size_t end)
{
    if (grow((void **)&t->tokens, &t->cap_tokens, t->n_tokens + 1, sizeof *t->tokens) != 0)
        return HW_ENOMEM;
    hw_token *k = &t->tokens[t->n_tokens++];
    k->text = (const char *)(uintptr_t)off; /* fixed up in hw_tokenize() */
    k->len = (uint32_t)len;
    k->flags = flags;
    k->start = (uint32_t)start;
    k->end = (uint32_t)end;
    k->hash = 0;
    return 0;
}

/* NFKC + case fold of src[0..len) appended to t->text; returns its offset
 * (length in *out_len) or -1 when out of memory. */
static long normalize_append(hw_tokenizer *t, const char *src, size_t len, int ascii, size_t *out_len)
{
    if (ascii) {
        long off = text_reserve(t, len);
        if (off < 0)
            return -1;
        char *d = t->text + off;
        for (size_t i = 0; i < len; i++) {
            char c = src[i];
            d[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
        }
        *out_len = len;
        return off;
    }
    const utf8proc_option_t opt = UTF8PROC_STABLE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD | UTF8PROC_COMPOSE;
    for (;;) {
        utf8proc_ssize_t n = utf8proc_decompose((const utf8proc_uint8_t *)src, (utf8proc_ssize_t)len, t->ucs,
                                                (utf8proc_ssize_t)t->ucs_cap, opt);
        if (n < 0)
            return -1; /* input was validated: only UTF8PROC_ERROR_NOMEM */
        if ((size_t)n + 1 > t->ucs_cap) {
            if (grow((void **)&t->ucs, &t->ucs_cap, (size_t)n + 1, sizeof *t->ucs) != 0)
                return -1;
            continue;
        }
        n = utf8proc_reencode(t->ucs, n, opt);
        if (n < 0)
            return -1;
        long off = text_reserve(t, (size_t)n);
        if (off < 0)
            return -1;
        memcpy(t->text + off, t->ucs, (size_t)n);
        *out_len = (size_t)n;
        return off;
    }
}

/* Stems the word at t->text[off..off+len) in place (a stem is never longer
 * than its word for the English algorithm; if it were, the word is kept). */
static size_t stem_in_place(hw_tokenizer *t, size_t off, size_t len)
{
    char *w = t->text + off;
    stem_slot *slot = NULL;
    uint64_t h = 0;
    if (len < STEM_CACHE_WORD) {
        h = XXH3_64bits(w, len);
        slot = &t->stem_cache[h & (STEM_CACHE_SLOTS - 1)];
        if (slot->word_len == len && slot->hash == h && memcmp(slot->word, w, len) == 0) {
            memcpy(w, slot->stem, slot->stem_len);
            return slot->stem_len;
        }
    }
    const sb_symbol *s = sb_stemmer_stem(t->stemmer, (const sb_symbol *)w, (int)len);
    if (!s)
        return len; /* libstemmer out of memory: index the unstemmed word */
    size_t sl = (size_t)sb_stemmer_length(t->stemmer);
    if (sl == 0 || sl > len)
        return len;
    if (slot) {
        slot->hash = h;
        slot->word_len = (uint8_t)len;
        slot->stem_len = (uint8_t)sl;
        memcpy(slot->word, w, len);
        memcpy(slot->stem, s, sl);
    }
    memcpy(w, s, sl);
    return sl;
}

static int emit_word(hw_tokenizer *t, const char *in, size_t start, size_t end, int has_digit, int ascii)
{
    size_t saved = t->text_len, len;
    long off = normalize_append(t, in + start, end - start, ascii, &len);
    if (off < 0)
        return HW_ENOMEM;
    if (len == 0 || len > HW_TOKEN_MAX_BYTES) {
        t->text_len = saved;
        return 0;
    }
    uint32_t flags = HW_TOKEN_WORD;
    if (has_digit) {
        flags |= HW_TOKEN_NUMERIC;
    } else {
        if (is_stop_word(t->text + off, len)) {
            t->text_len = saved;
            return 0;
        }
        size_t sl = stem_in_place(t, (size_t)off, len);
        if (sl != len)
            flags |= HW_TOKEN_STEMMED;
        len = sl;
        t->text_len = (size_t)off + len;
    }
    return push_token(t, (size_t)off, len, flags, start, end);
}

static int flush_cjk_run(hw_tokenizer *t)
{
    size_t n = t->run_len;
    t->run_len = 0;
    if (n == 0)
        return 0;
    if (n == 1) {
        cjk_char *c = &t->run[0];
        return push_token(t, c->off, t->text_len - c->off, HW_TOKEN_CJK, c->start, c->end);
    }
    for (size_t i = 0; i + 1 < n; i++) {
        cjk_char *a = &t->run[i];
        size_t stop = i + 2 < n ? t->run[i + 2].off : t->text_len;
        if (push_token(t, a->off, stop - a->off, HW_TOKEN_CJK, a->start, t->run[i + 1].end) != 0)
            return HW_ENOMEM;
    }
    return 0;
}

static int is_cjk(utf8proc_int32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x3040 && c <= 0x30FF) ||
           (c >= 0xAC00 && c <= 0xD7AF) || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x20000 && c <= 0x3134F) ||
           (c >= 0x31F0 && c <= 0x31FF) || (c >= 0xFF66 && c <= 0xFF9D) || c == 0x3005;
}

enum cls { C_SEP, C_LETTER, C_DIGIT, C_MARK, C_CJK };

static enum cls classify(utf8proc_int32_t c)
{
    if (c < 0x80) {
        if ((c | 32) >= 'a' && (c | 32) <= 'z')
            return C_LETTER;
        if (c >= '0' && c <= '9')
            return C_DIGIT;
        return C_SEP;
    }
    if (is_cjk(c))
        return C_CJK;
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
        return C_LETTER;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
        return C_DIGIT;
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
        return C_MARK;
    default:
        return C_SEP;
    }
}

/* Decodes the code point at in[i]; returns its byte length (>0) or <0. */
static inline utf8proc_ssize_t decode(const char *in, size_t len, size_t i, utf8proc_int32_t *cp)
{
    unsigned char b = (unsigned char)in[i];
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    return utf8proc_iterate((const utf8proc_uint8_t *)in + i, (utf8proc_ssize_t)(len - i), cp);
}

static int add_cjk_char(hw_tokenizer *t, const char *in, size_t i, size_t n, utf8proc_int32_t cp)
{
    if (grow((void **)&t->run, &t->run_cap, t->run_len + 1, sizeof *t->run) != 0)
        return HW_ENOMEM;
    size_t len;
    long off;
    if (cp >= 0x4E00 && cp <= 0x9FFF) { /* unified ideographs: NFKC identity */
        off = text_reserve(t, n);
        if (off >= 0)
            memcpy(t->text + off, in + i, n);
    } else {
        off = normalize_append(t, in + i, n, 0, &len);
    }
    if (off < 0)
        return HW_ENOMEM;
    cjk_char *c = &t->run[t->run_len++];
    c->off = (uint32_t)off;
    c->start = (uint32_t)i;
    c->end = (uint32_t)(i + n);
    return 0;
}

int hw_tokenize(hw_tokenizer *t, const char *in, size_t len, const hw_token **tokens, size_t *n_tokens,
                hw_status *st)
{
    *tokens = NULL;
    *n_tokens = 0;
    if (len > HW_TOKENIZE_MAX_INPUT)
        return hw_status_set(st, HW_ETOOBIG, "text of %zu bytes is over the 64 MiB limit", len);
    if (len > 0 && !in)
        return hw_status_set(st, HW_EINVALID, "text is NULL");
    t->n_tokens = 0;
    t->text_len = 0;
    t->run_len = 0;

    int rc = 0;
    int in_word = 0, has_digit = 0, ascii = 1;
    size_t wstart = 0, wend = 0;
    size_t i = 0;
    enum cls prev = C_SEP;
    while (i < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = decode(in, len, i, &cp);
        if (n < 0) {
            rc = hw_status_set(st, HW_EINVALID, "invalid UTF-8 at byte %zu", i);
            goto out;
        }
        enum cls c = classify(cp);
        if ((cp == '.' || cp == '_') && in_word && i + 1 < len) {
            /* keep "v2.3", "3.14", "x86_64" whole */
            utf8proc_int32_t next;
            utf8proc_ssize_t nn = decode(in, len, i + (size_t)n, &next);
            enum cls nc = nn > 0 ? classify(next) : C_SEP;
            if ((cp == '.' && nc == C_DIGIT) || (cp == '_' && (nc == C_DIGIT || nc == C_LETTER)))
                c = C_MARK; /* joins like a combining mark */
        }
        if (c == C_LETTER || c == C_DIGIT || (c == C_MARK && in_word)) {
            if (prev == C_CJK && (rc = flush_cjk_run(t)) != 0)
                goto out;
            if (!in_word) {
                in_word = 1;
                has_digit = 0;
                ascii = 1;
                wstart = i;
            }
            has_digit |= (c == C_DIGIT);
            ascii &= (cp < 0x80);
            wend = i + (size_t)n;
        } else {
            if (in_word) {
                in_word = 0;
                if ((rc = emit_word(t, in, wstart, wend, has_digit, ascii)) != 0)
                    goto nomem;
            }
            if (c == C_CJK) {
                if ((rc = add_cjk_char(t, in, i, (size_t)n, cp)) != 0)
                    goto nomem;
            } else if (prev == C_CJK && (rc = flush_cjk_run(t)) != 0) {
                goto nomem;
            }
        }
        prev = c;
        i += (size_t)n;
    }
    if (in_word && (rc = emit_word(t, in, wstart, wend, has_digit, ascii)) != 0)
        goto nomem;
    if ((rc = flush_cjk_run(t)) != 0)
        goto nomem;
    for (size_t k = 0; k < t->n_tokens; k++) {
        hw_token *tk = &t->tokens[k];
        tk->text = t->text + (uintptr_t)tk->text;
        tk->hash = XXH3_64bits(tk->text, tk->len);
    }
    *tokens = t->tokens;
    *n_tokens = t->n_tokens;
    return 0;
nomem:
    rc = hw_status_set(st, HW_ENOMEM, "tokenizer: out of memory");
out:
    t->n_tokens = 0;
    return rc;
}
