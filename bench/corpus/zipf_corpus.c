/*
 * zipf_corpus: a synthetic knowledge base of any size (1M articles and
 * more) for the search benchmark, in the TSV format of debian_corpus.py.
 *
 * Words are pronounceable syllable strings drawn from a Zipf distribution
 * (exponent 1.0 over a 200k-word vocabulary, like natural text), so
 * postings lengths follow a realistic skew; titles are 3-8 words, bodies
 * 20-300. Known-item queries are 4 words of an article's title (the
 * expected answer is that article). Deterministic for a given seed.
 *
 * Usage: zipf_corpus N_ARTICLES N_QUERIES ARTICLES.tsv QUERIES.tsv [SEED]
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VOCAB 200000

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void word(unsigned w, char *out)
{
    static const char *const syl[] = {"ka", "to", "ri", "mu", "se", "lo", "na", "pe",
                                      "vi", "do", "ga", "ze", "bu", "fi", "ha", "jo"};
    /* base-16 digits of w+16 as syllables: distinct words, 2-5 syllables */
    unsigned v = w + 16;
    int n = 0;
    char buf[32] = {0};
    while (v) {
        memcpy(buf + n, syl[v % 16], 2);
        n += 2;
        v /= 16;
    }
    memcpy(out, buf, (size_t)n + 1);
}

static unsigned draw(uint64_t *s, const double *cdf)
{
    double u = (double)(rng(s) >> 11) / 9007199254740992.0;
    size_t lo = 0, hi = VOCAB - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (unsigned)lo;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s N_ARTICLES N_QUERIES ARTICLES.tsv QUERIES.tsv [SEED]\n", argv[0]);
        return 2;
    }
    long n = atol(argv[1]), nq = atol(argv[2]);
    uint64_t s = argc > 5 ? strtoull(argv[5], NULL, 10) * 0x9E3779B97F4A7C15ull + 1 : 88172645463325252ull;
    FILE *fa = fopen(argv[3], "w"), *fq = fopen(argv[4], "w");
    double *cdf = malloc(VOCAB * sizeof *cdf);
    if (!fa || !fq || !cdf) {
        fprintf(stderr, "zipf_corpus: cannot open outputs\n");
        return 1;
    }
    double sum = 0;
    for (unsigned i = 0; i < VOCAB; i++)
        sum += 1.0 / (i + 1);
    double acc = 0;
    for (unsigned i = 0; i < VOCAB; i++) {
        acc += 1.0 / (i + 1) / sum;
        cdf[i] = acc;
    }
    long every = nq > 0 ? (n / nq > 0 ? n / nq : 1) : 0;
    char w[32], title[512];
    for (long d = 0; d < n; d++) {
        int tw = 3 + (int)(rng(&s) % 6), bw = 20 + (int)(rng(&s) % 281);
        size_t o = 0;
        for (int i = 0; i < tw; i++) {
            word(draw(&s, cdf), w);
            o += (size_t)snprintf(title + o, sizeof title - o, "%s%s", i ? " " : "", w);
        }
        fprintf(fa, "z%ld\t%s\t", d, title);
        for (int i = 0; i < bw; i++) {
            word(draw(&s, cdf), w);
            fprintf(fa, "%s%s", i ? (i % 12 == 0 ? ".\x1f" : " ") : "", w);
        }
        fputc('\n', fa);
        if (every && d % every == 0 && d / every < nq) {
            /* first 4 title words */
            char *p = title;
            for (int k = 0; k < 4 && p; k++)
                p = strchr(p + 1, ' ');
            if (p)
                *p = 0;
            fprintf(fq, "%s\tz%ld\n", title, d);
        }
    }
    fclose(fa);
    fclose(fq);
    free(cdf);
    return 0;
}
