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

const char *hw_classify(hw_tokenizer *tok, Helpwire__V1__Skill *const *skills, size_t n_skills,
                        const char *text, double *score)
{
    *score = 0;
    const hw_token *toks;
    size_t n;
    if (hw_tokenize(tok, text, strlen(text), &toks, &n, NULL) != HW_OK || n == 0)
        return HW_FALLBACK_QUEUE;
    if (n > MAX_TEXT_TERMS)
        n = MAX_TEXT_TERMS;
    /* The text's term hashes, sorted, survive the keyword tokenizations. */
    uint64_t *have = malloc(n * sizeof *have);
    if (!have)
        return HW_FALLBACK_QUEUE;
    for (size_t i = 0; i < n; i++)
        have[i] = toks[i].hash;
    qsort(have, n, sizeof *have, cmp_u64);
    const char *best = HW_FALLBACK_QUEUE;
    for (size_t s = 0; s < n_skills; s++) {
        double sc = 0;
        for (size_t k = 0; k < skills[s]->n_keywords; k++) {
            const char *kw = skills[s]->keywords[k];
            const hw_token *kt;
            size_t kn;
            if (hw_tokenize(tok, kw, strlen(kw), &kt, &kn, NULL) != HW_OK || kn == 0)
                continue;
            size_t found = 0;
            for (size_t i = 0; i < kn; i++)
                found += bsearch(&kt[i].hash, have, n, sizeof *have, cmp_u64) != NULL;
            if (found == kn)
                sc += (double)kn;
        }
        if (sc > *score) {
            *score = sc;
            best = skills[s]->name;
        }
    }
    free(have);
    return best;
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
