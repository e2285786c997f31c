/*
 * classify: keyword scoring with the search tokenizer, and the priority
 * rules as a table of urgent words (see classify.h).
 */
#include "server/classify.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TEXT_TERMS 4096

static const char *const urgent_words[] = {
    "urgent", "asap", "immediately", "emergency", "critical", "outage",
    "紧急",   "投诉", "马上",        "立刻",      "立即",     "十万火急",
};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* A skill's keywords as term hashes: each keyword is the list of its terms. */
typedef struct {
    uint64_t *terms; /* [n] */
    size_t n;
} kw_terms;

typedef struct {
    char *name;
    kw_terms *kws; /* [n_kws]; keywords with no valid term are left out */
    size_t n_kws;
} skill_terms;

struct hw_skill_model {
    skill_terms *skills; /* [n] */
    size_t n;
};

void hw_skill_model_free(hw_skill_model *m)
{
    if (!m)
        return;
    for (size_t s = 0; s < m->n; s++) {
        for (size_t k = 0; k < m->skills[s].n_kws; k++)
            free(m->skills[s].kws[k].terms);
        free(m->skills[s].kws);
        free(m->skills[s].name);
    }
    free(m->skills);
    free(m);
}

int hw_skill_model_build(hw_tokenizer *tok, Helpwire__V1__Skill *const *skills, size_t n_skills,
                         hw_skill_model **out)
{
    *out = NULL;
    hw_skill_model *m = calloc(1, sizeof *m);
    if (!m || (n_skills && !(m->skills = calloc(n_skills, sizeof *m->skills))))
        goto nomem;
    for (size_t s = 0; s < n_skills; s++, m->n++) {
        skill_terms *st = &m->skills[s];
        if (!(st->name = strdup(skills[s]->name ? skills[s]->name : "")))
            goto nomem;
        if (skills[s]->n_keywords && !(st->kws = calloc(skills[s]->n_keywords, sizeof *st->kws)))
            goto nomem;
        for (size_t k = 0; k < skills[s]->n_keywords; k++) {
            const char *kw = skills[s]->keywords[k];
            const hw_token *kt;
            size_t kn;
            if (hw_tokenize(tok, kw, strlen(kw), &kt, &kn, NULL) != HW_OK || kn == 0)
                continue; /* invalid UTF-8 or no terms: the keyword never matches */
            kw_terms *t = &st->kws[st->n_kws];
            if (!(t->terms = malloc(kn * sizeof *t->terms)))
                goto nomem;
            for (size_t i = 0; i < kn; i++)
                t->terms[i] = kt[i].hash;
            t->n = kn;
            st->n_kws++;
        }
    }
    *out = m;
    return HW_OK;
nomem:
    hw_skill_model_free(m);
    return HW_ENOMEM;
}

/* Index of the best-scoring skill of m for text, or -1 (fallback). */
static long best_skill(const hw_skill_model *m, hw_tokenizer *tok, const char *text, double *score)
{
    *score = 0;
    const hw_token *toks;
    size_t n;
    if (hw_tokenize(tok, text, strlen(text), &toks, &n, NULL) != HW_OK || n == 0)
        return -1;
    if (n > MAX_TEXT_TERMS)
        n = MAX_TEXT_TERMS;
    uint64_t *have = malloc(n * sizeof *have);
    if (!have)
        return -1;
    for (size_t i = 0; i < n; i++)
        have[i] = toks[i].hash;
    qsort(have, n, sizeof *have, cmp_u64);
    long best = -1;
    for (size_t s = 0; s < m->n; s++) {
        double sc = 0;
        for (size_t k = 0; k < m->skills[s].n_kws; k++) {
            const kw_terms *t = &m->skills[s].kws[k];
            size_t found = 0;
            for (size_t i = 0; i < t->n; i++)
                found += bsearch(&t->terms[i], have, n, sizeof *have, cmp_u64) != NULL;
            if (found == t->n)
                sc += (double)t->n;
        }
        if (sc > *score) {
            *score = sc;
            best = (long)s;
        }
    }
    free(have);
    return best;
}

const char *hw_skill_model_classify(const hw_skill_model *m, hw_tokenizer *tok, const char *text,
                                    double *score)
{
    long b = best_skill(m, tok, text, score);
    return b < 0 ? HW_FALLBACK_QUEUE : m->skills[b].name;
}

const char *hw_classify(hw_tokenizer *tok, Helpwire__V1__Skill *const *skills, size_t n_skills,
                        const char *text, double *score)
{
    *score = 0;
    hw_skill_model *m;
    if (hw_skill_model_build(tok, skills, n_skills, &m) != HW_OK)
        return HW_FALLBACK_QUEUE;
    long b = best_skill(m, tok, text, score);
    hw_skill_model_free(m);
    return b < 0 ? HW_FALLBACK_QUEUE : skills[b]->name;
}

/* ASCII-lowercased copy for matching English urgent words. */
static char *lower_copy(const char *s, hw_arena *a)
{
    char *c = hw_arena_strdup(a, s);
    if (c)
        for (char *p = c; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    return c;
}

Helpwire__V1__Priority hw_priority_derive(const char *text, Helpwire__V1__CustomerTier tier,
                                          const Helpwire__V1__Skill *skill, hw_arena *a, const char **reason)
{
    char *low = lower_copy(text, a);
    for (size_t i = 0; low && i < sizeof urgent_words / sizeof urgent_words[0]; i++)
        if (strstr(low, urgent_words[i])) {
            *reason = hw_arena_printf(a, "urgent-word:%s", urgent_words[i]);
            return HELPWIRE__V1__PRIORITY__PRIORITY_URGENT;
        }
    if (tier == HELPWIRE__V1__CUSTOMER_TIER__CUSTOMER_TIER_VIP) {
        *reason = "tier:vip";
        return HELPWIRE__V1__PRIORITY__PRIORITY_HIGH;
    }
    if (skill && skill->default_priority != HELPWIRE__V1__PRIORITY__PRIORITY_UNSPECIFIED) {
        *reason = hw_arena_printf(a, "skill-default:%s", skill->name);
        return skill->default_priority;
    }
    *reason = "default";
    return HELPWIRE__V1__PRIORITY__PRIORITY_NORMAL;
}

const char *hw_guess_locale(const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        /* UTF-8 lead bytes of U+2E80..U+9FFF (CJK radicals to unified ideographs). */
        if (*p >= 0xE2 && *p <= 0xE9 && (*p > 0xE2 || p[1] >= 0xBA))
            return "zh";
    return "en";
}
