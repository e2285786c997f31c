/*
 * classify: keyword scoring with the search tokenizer, the priority rules
 * as a table of urgent words, and the per-worker skill model (see
 * classify.h).
 */
#include "server/domain/classify.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/base/log.h"
#include "server/domain/rpc.h"
#include "server/store/records.h"

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

/* A keyword: its terms, as positions in the model's vocabulary. */
typedef struct {
    uint32_t *terms; /* [n] */
    size_t n;
} kw_terms;

typedef struct {
    char *name;
    kw_terms *kws; /* [n_kws]; keywords with no valid term are left out */
    size_t n_kws;
} skill_terms;

/* vocab is every distinct term hash of every keyword, sorted, so that a
 * message's tokens are each looked up once (a binary search) and the
 * keywords then only test bits. */
struct hw_classify_model {
    skill_terms *skills; /* [n] */
    size_t n;
    uint64_t *vocab; /* [n_vocab] */
    size_t n_vocab;
    /* The fallback queue: the skill marked is_default, else the first by
     * name; "" when there are no skills. default_marked says which. */
    char *fallback;
    bool default_marked;
};

void hw_classify_free(hw_classify_model *m)
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
    free(m->vocab);
    free(m->fallback);
    free(m);
}

/* Position of h in the sorted vocab, or -1. */
static long vocab_find(const uint64_t *v, size_t n, uint64_t h)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && v[lo] == h ? (long)lo : -1;
}

/* Every keyword's term hashes, tokenized (pass 1 of the build): vocab gets
 * them all, kws[k].terms holds each keyword's hashes until pass 2 turns
 * them into vocab positions. */
static int collect_terms(hw_classify_model *m, hw_tokenizer *tok, Helpwire__V1__Skill *const *skills,
                         size_t n_skills, uint64_t ***hashes)
{
    size_t cap = 0;
    for (size_t s = 0; s < n_skills; s++)
        cap += skills[s]->n_keywords;
    /* NULL-terminated: one slot more than there are keywords. */
    if (cap && !(*hashes = calloc(cap + 1, sizeof **hashes)))
        return HW_ENOMEM;
    size_t vcap = 0, next = 0;
    for (size_t s = 0; s < n_skills; s++) {
        skill_terms *st = &m->skills[m->n++];
        if (!(st->name = strdup(skills[s]->name ? skills[s]->name : "")))
            return HW_ENOMEM;
        if (skills[s]->n_keywords && !(st->kws = calloc(skills[s]->n_keywords, sizeof *st->kws)))
            return HW_ENOMEM;
        for (size_t k = 0; k < skills[s]->n_keywords; k++) {
            const char *kw = skills[s]->keywords[k];
            const hw_token *kt;
            size_t kn;
            if (hw_tokenize(tok, kw, strlen(kw), &kt, &kn, NULL) != HW_OK || kn == 0)
                continue; /* invalid UTF-8 or no terms: the keyword never matches */
            uint64_t *h = malloc(kn * sizeof *h);
            kw_terms *t = &st->kws[st->n_kws];
            if (!h || !(t->terms = malloc(kn * sizeof *t->terms))) {
                free(h);
                return HW_ENOMEM;
            }
            (*hashes)[next++] = h;
            t->n = kn;
            st->n_kws++;
            if (m->n_vocab + kn > vcap) {
                size_t nc = vcap ? vcap * 2 : 64;
                while (nc < m->n_vocab + kn)
                    nc *= 2;
                uint64_t *v = realloc(m->vocab, nc * sizeof *v);
                if (!v)
                    return HW_ENOMEM;
                m->vocab = v;
                vcap = nc;
            }
            for (size_t i = 0; i < kn; i++)
                h[i] = m->vocab[m->n_vocab++] = kt[i].hash;
        }
    }
    return HW_OK;
}

/* The skill marked is_default (the first marked, should a store hold
 * two), else the first by name, else "". */
static const char *fallback_of(Helpwire__V1__Skill *const *skills, size_t n, bool *marked)
{
    const char *first = NULL;
    *marked = false;
    for (size_t s = 0; s < n; s++) {
        const char *name = skills[s]->name ? skills[s]->name : "";
        if (skills[s]->is_default && *name) {
            *marked = true;
            return name;
        }
        if (*name && (!first || strcmp(name, first) < 0))
            first = name;
    }
    return first ? first : "";
}

int hw_classify_build(hw_tokenizer *tok, Helpwire__V1__Skill *const *skills, size_t n_skills,
                      hw_classify_model **out)
{
    *out = NULL;
    uint64_t **hashes = NULL;
    size_t n_hashes = 0;
    int rc = HW_ENOMEM;
    hw_classify_model *m = calloc(1, sizeof *m);
    if (!m || (n_skills && !(m->skills = calloc(n_skills, sizeof *m->skills))))
        goto out;
    if ((rc = collect_terms(m, tok, skills, n_skills, &hashes)) != HW_OK)
        goto out;
    rc = HW_ENOMEM;
    if (!(m->fallback = strdup(fallback_of(skills, n_skills, &m->default_marked))))
        goto out;
    if (m->n_vocab) {
        qsort(m->vocab, m->n_vocab, sizeof *m->vocab, cmp_u64);
        size_t u = 1;
        for (size_t i = 1; i < m->n_vocab; i++)
            if (m->vocab[i] != m->vocab[u - 1])
                m->vocab[u++] = m->vocab[i];
        m->n_vocab = u;
    }
    for (size_t s = 0; s < m->n; s++)
        for (size_t k = 0; k < m->skills[s].n_kws; k++, n_hashes++) {
            kw_terms *t = &m->skills[s].kws[k];
            for (size_t i = 0; i < t->n; i++)
                t->terms[i] = (uint32_t)vocab_find(m->vocab, m->n_vocab, hashes[n_hashes][i]);
        }
    *out = m;
    m = NULL;
    rc = HW_OK;
out:
    if (hashes) {
        for (size_t i = 0; hashes[i]; i++)
            free(hashes[i]);
        free(hashes);
    }
    hw_classify_free(m);
    return rc;
}

#define SEEN_STACK_WORDS 512 /* vocabularies up to 32,768 terms need no allocation */

/* Index of the best-scoring skill of m for the tokens, or -1 (fallback). */
static long best_skill(const hw_classify_model *m, const hw_token *toks, size_t n, double *score)
{
    *score = 0;
    if (m->n_vocab == 0 || n == 0)
        return -1;
    if (n > MAX_TEXT_TERMS)
        n = MAX_TEXT_TERMS;
    uint64_t stack_seen[SEEN_STACK_WORDS], *seen = stack_seen;
    size_t words = (m->n_vocab + 63) / 64;
    if (words > SEEN_STACK_WORDS && !(seen = malloc(words * sizeof *seen)))
        return -1;
    memset(seen, 0, words * sizeof *seen);
    for (size_t i = 0; i < n; i++) {
        long v = vocab_find(m->vocab, m->n_vocab, toks[i].hash);
        if (v >= 0)
            seen[(size_t)v / 64] |= (uint64_t)1 << ((size_t)v % 64);
    }
    long best = -1;
    for (size_t s = 0; s < m->n; s++) {
        double sc = 0;
        for (size_t k = 0; k < m->skills[s].n_kws; k++) {
            const kw_terms *t = &m->skills[s].kws[k];
            size_t i = 0;
            while (i < t->n && (seen[t->terms[i] / 64] >> (t->terms[i] % 64) & 1))
                i++;
            if (i == t->n)
                sc += (double)t->n;
        }
        if (sc > *score) {
            *score = sc;
            best = (long)s;
        }
    }
    if (seen != stack_seen)
        free(seen);
    return best;
}

const char *hw_classify_tokens(const hw_classify_model *m, const hw_token *toks, size_t n, double *score)
{
    long b = best_skill(m, toks, n, score);
    return b < 0 ? m->fallback : m->skills[b].name;
}

const char *hw_classify_fallback(const hw_classify_model *m, bool *marked)
{
    if (marked)
        *marked = m->default_marked;
    return m->fallback;
}

const char *hw_classify_text(const hw_classify_model *m, hw_tokenizer *tok, const char *text, double *score)
{
    const hw_token *toks;
    size_t n;
    if (hw_tokenize(tok, text, strlen(text), &toks, &n, NULL) != HW_OK) {
        *score = 0;
        return m->fallback;
    }
    return hw_classify_tokens(m, toks, n, score);
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

const char *hw_classify_locale(const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        /* UTF-8 lead bytes of U+2E80..U+9FFF (CJK radicals to unified ideographs). */
        if (*p >= 0xE2 && *p <= 0xE9 && (*p > 0xE2 || p[1] >= 0xBA))
            return "zh";
    return "en";
}

/* ------------------------------------------------ the per-worker model */

const hw_classify_model *hw_classify_skill_model(hw_call *call, hw_app *app)
{
    hw_worker_ctx *wk = &app->workers[hw_call_worker(call)];
    /* Loaded before the read transaction begins: a skill change committed
     * before the bump is then in the snapshot read below. */
    uint64_t gen = atomic_load(&app->skills_gen);
    if (!wk->skill_model || wk->skill_model_gen != gen) {
        hw_store_txn *t = hw_rpc_read(call, app);
        if (!t)
            return NULL;
        hw_store_cursor cur = {0};
        Helpwire__V1__Skill **skills = NULL;
        size_t n = 0;
        int rc = hw_store_skill_list(t, &cur, HW_STORE_LIST_MAX, hw_call_arena(call), &skills, &n);
        hw_rpc_read_end(call, app);
        hw_classify_model *m = NULL;
        if (rc == HW_OK)
            rc = hw_classify_build(wk->tokenizer, skills, n, &m);
        if (rc != HW_OK) {
            hw_rpc_fail(call, rc, "reading skills failed: %s", hw_strerror(rc));
            return NULL;
        }
        bool marked;
        const char *fb = hw_classify_fallback(m, &marked);
        if (!marked)
            hw_log_event(app->log, HW_LOG_WARN, "no_default_skill",
                         "fallback=%s effect=unmatched_text_goes_to_first_skill_by_name", *fb ? fb : "none");
        hw_classify_free(wk->skill_model);
        wk->skill_model = m;
        wk->skill_model_gen = gen;
    }
    return wk->skill_model;
}

const char *hw_classify_queue(hw_call *call, hw_app *app, const char *text)
{
    const hw_classify_model *m = hw_classify_skill_model(call, app);
    if (!m)
        return NULL;
    double score;
    const char *q = hw_arena_strdup(
        hw_call_arena(call), hw_classify_text(m, app->workers[hw_call_worker(call)].tokenizer, text, &score));
    if (!q)
        hw_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of memory");
    return q;
}

void hw_classify_skills_changed(hw_app *app)
{
    atomic_fetch_add(&app->skills_gen, 1);
}
