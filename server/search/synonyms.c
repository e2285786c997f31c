/*
 * synonyms: compiled synonym sets (see synonyms.h).
 *
 * Layout: one array of sets (first term, number of terms, primary
 * language), one of terms (set, first token, number of tokens), one of
 * tokens (hash, text in a shared pool), and an open-addressing table from
 * a term's first token hash to the term, so matching a query costs one
 * probe per query token. Terms sharing a first token sit in successive
 * slots and are all checked.
 */
#include "server/search/synonyms.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TERM_BYTES 64
#define MAX_LOCALE_BYTES 15
#define LANG_BYTES 8

typedef struct syn_set {
    uint32_t term, n_terms;
    char lang[LANG_BYTES]; /* primary language, lower case; "" = any */
} syn_set;

typedef struct syn_term {
    uint32_t set, tok, n_tok;
} syn_term;

struct hw_syn_table {
    syn_set *sets;
    uint32_t n_sets;
    syn_term *terms;
    uint32_t n_terms;
    hw_syn_tok *toks;
    uint32_t n_toks;
    char *pool;
    uint32_t *slots; /* term index + 1; 0 = empty */
    uint32_t mask;
    size_t bytes;
};

/* The primary language subtag of locale, lower-cased, into out. */
static void primary_lang(const char *locale, char out[LANG_BYTES])
{
    size_t i = 0;
    for (; locale && locale[i] && locale[i] != '-' && locale[i] != '_' && i < LANG_BYTES - 1; i++)
        out[i] = (char)tolower((unsigned char)locale[i]);
    out[i] = 0;
}

void hw_syn_table_free(hw_syn_table *t)
{
    if (!t)
        return;
    free(t->sets);
    free(t->terms);
    free(t->toks);
    free(t->pool);
    free(t->slots);
    free(t);
}

size_t hw_syn_table_bytes(const hw_syn_table *t)
{
    return t ? t->bytes : 0;
}

static int check_set(const hw_synonym_set *set, size_t i, hw_status *st)
{
    if (set->n_terms < 2 || set->n_terms > HW_INDEX_MAX_SYN_TERMS || !set->terms)
        return hw_status_set(st, HW_EINVALID, "sets[%zu].terms: %zu terms, 2 to %d allowed", i, set->n_terms,
                             HW_INDEX_MAX_SYN_TERMS);
    if (set->locale && strlen(set->locale) > MAX_LOCALE_BYTES)
        return hw_status_set(st, HW_EINVALID, "sets[%zu].locale: at most %d bytes", i, MAX_LOCALE_BYTES);
    for (size_t j = 0; j < set->n_terms; j++) {
        const char *term = set->terms[j];
        size_t len = term ? strlen(term) : 0;
        if (len == 0 || len > MAX_TERM_BYTES)
            return hw_status_set(st, HW_EINVALID, "sets[%zu].terms[%zu]: 1 to %d bytes", i, j, MAX_TERM_BYTES);
        if (hw_utf8_validate(term, len, NULL) != 0)
            return hw_status_set(st, HW_EINVALID, "sets[%zu].terms[%zu]: invalid UTF-8", i, j);
    }
    return 0;
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * size);
    if (!q)
        return HW_ENOMEM;
    *p = q;
    *cap = c;
    return 0;
}

int hw_syn_table_build(hw_tokenizer *tok, const hw_synonym_set *sets, size_t n, hw_syn_table **out,
                       hw_status *st)
{
    *out = NULL;
    if (n > HW_INDEX_MAX_SYN_SETS)
        return hw_status_set(st, HW_ETOOBIG, "synonym sets: %zu, at most %d", n, HW_INDEX_MAX_SYN_SETS);
    if (n && !sets)
        return hw_status_set(st, HW_EINVALID, "synonym sets: missing");
    size_t n_terms = 0;
    int rc;
    for (size_t i = 0; i < n; i++) {
        if ((rc = check_set(&sets[i], i, st)) != 0)
            return rc;
        n_terms += sets[i].n_terms;
    }
    hw_syn_table *t = calloc(1, sizeof *t);
    size_t cap_toks = 0, cap_pool = 0, pool_len = 0;
    if (!t || !(t->sets = calloc(n ? n : 1, sizeof *t->sets)) ||
        !(t->terms = calloc(n_terms ? n_terms : 1, sizeof *t->terms)))
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        syn_set *s = &t->sets[i];
        s->term = t->n_terms;
        s->n_terms = (uint32_t)sets[i].n_terms;
        primary_lang(sets[i].locale, s->lang);
        for (size_t j = 0; j < sets[i].n_terms; j++) {
            const hw_token *tk;
            size_t nt;
            const char *term = sets[i].terms[j];
            if ((rc = hw_tokenize(tok, term, strlen(term), &tk, &nt, st)) != 0)
                goto fail;
            if (nt == 0) {
                rc = hw_status_set(st, HW_EINVALID, "sets[%zu].terms[%zu]: no searchable word", i, j);
                goto fail;
            }
            syn_term *tm = &t->terms[t->n_terms++];
            tm->set = (uint32_t)i;
            tm->tok = t->n_toks;
            tm->n_tok = (uint32_t)nt;
            if (grow((void **)&t->toks, &cap_toks, t->n_toks + nt, sizeof *t->toks))
                goto nomem;
            for (size_t k = 0; k < nt; k++) {
                if (grow((void **)&t->pool, &cap_pool, pool_len + tk[k].len + 1, 1))
                    goto nomem;
                memcpy(t->pool + pool_len, tk[k].text, tk[k].len);
                t->pool[pool_len + tk[k].len] = 0;
                /* text is fixed up to point into the pool once it stops moving */
                t->toks[t->n_toks++] = (hw_syn_tok){tk[k].hash, (const char *)(uintptr_t)pool_len, tk[k].len,
                                                     tk[k].flags};
                pool_len += tk[k].len + 1;
            }
        }
    }
    for (uint32_t k = 0; k < t->n_toks; k++)
        t->toks[k].text = t->pool + (uintptr_t)t->toks[k].text;
    t->n_sets = (uint32_t)n;
    size_t slots = 16;
    while (slots < 2 * (size_t)t->n_terms)
        slots *= 2;
    if (!(t->slots = calloc(slots, sizeof *t->slots)))
        goto nomem;
    t->mask = (uint32_t)(slots - 1);
    for (uint32_t i = 0; i < t->n_terms; i++) {
        uint32_t h = (uint32_t)t->toks[t->terms[i].tok].hash & t->mask;
        while (t->slots[h])
            h = (h + 1) & t->mask;
        t->slots[h] = i + 1;
    }
    t->bytes = sizeof *t + n * sizeof *t->sets + n_terms * sizeof *t->terms + cap_toks * sizeof *t->toks +
               cap_pool + slots * sizeof *t->slots;
    *out = t;
    return 0;
nomem:
    rc = hw_status_set(st, HW_ENOMEM, "synonym sets: out of memory");
fail:
    hw_syn_table_free(t);
    return rc;
}

static int lang_applies(const syn_set *s, const char *lang)
{
    if (!s->lang[0] || !lang || !lang[0])
        return 1;
    char q[LANG_BYTES];
    primary_lang(lang, q);
    return strcmp(q, s->lang) == 0;
}

static int term_at(const hw_syn_table *t, const syn_term *tm, const hw_token *toks, size_t nt, size_t pos)
{
    if (tm->n_tok > nt - pos)
        return 0;
    for (uint32_t k = 0; k < tm->n_tok; k++) {
        const hw_syn_tok *a = &t->toks[tm->tok + k];
        const hw_token *b = &toks[pos + k];
        if (a->hash != b->hash || a->len != b->len || memcmp(a->text, b->text, a->len) != 0)
            return 0;
    }
    return 1;
}

size_t hw_syn_table_match(const hw_syn_table *t, const hw_token *toks, size_t nt, const char *lang,
                          hw_syn_match *out, size_t max)
{
    size_t n = 0;
    if (!t || !t->n_terms)
        return 0;
    for (size_t pos = 0; pos < nt && n < max; pos++) {
        size_t first_here = n;
        for (uint32_t h = (uint32_t)toks[pos].hash & t->mask; t->slots[h] && n < max; h = (h + 1) & t->mask) {
            uint32_t ti = t->slots[h] - 1;
            const syn_term *tm = &t->terms[ti];
            if (!term_at(t, tm, toks, nt, pos) || !lang_applies(&t->sets[tm->set], lang))
                continue;
            size_t j = 0;
            while (j < n && out[j].set != tm->set)
                j++;
            if (j < first_here)
                continue; /* the set matched earlier in the query */
            if (j < n) { /* the same set matched here by a shorter term */
                if (out[j].n < tm->n_tok)
                    out[j] = (hw_syn_match){tm->set, ti, (uint32_t)pos, tm->n_tok};
                continue;
            }
            out[n++] = (hw_syn_match){tm->set, ti, (uint32_t)pos, tm->n_tok};
        }
    }
    return n;
}

uint32_t hw_syn_set_terms(const hw_syn_table *t, uint32_t set, uint32_t *first)
{
    *first = t->sets[set].term;
    return t->sets[set].n_terms;
}

const hw_syn_tok *hw_syn_term_tokens(const hw_syn_table *t, uint32_t term, uint32_t *n)
{
    *n = t->terms[term].n_tok;
    return &t->toks[t->terms[term].tok];
}
