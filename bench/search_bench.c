/*
 * search_bench: the knowledge index (server/search) against SQLite FTS5's
 * bm25() on the same corpus and known-item queries, single thread, in one
 * run. Reports build time and memory, p50/p99 latency, queries per second,
 * MRR@10 and recall@10 of both.
 *
 * Xapian 1.4 (bench/xapian_peer.cc, Debian's libxapian) is the other peer:
 * fed the same hw_tokenize() terms (title terms with wdf title_boost, body
 * terms 1, so its document length is hw_index's), BM25Weight with k1 1.2,
 * b 0.75, no query-length correction and no minimum normalized length,
 * OP_OR of the distinct query terms, top k, in a glass database in a
 * temporary directory (page cache). Its build time likewise excludes the
 * tokenization. hw_index's figures are also printed as ratios of Xapian's.
 *
 * Input: the TSV files of bench/corpus/debian_corpus.py or zipf_corpus
 * (articles: id TAB title TAB body with \x1f for newlines; queries: text
 * TAB expected id).
 *
 * Fairness: both engines index the same terms. FTS5 is fed the text as
 * produced by hw_tokenize() (normalized, stemmed, CJK bigrams, space
 * separated; its unicode61 tokenizer then only splits on the spaces), so
 * Chinese works for it too and ranking differences come from the engines,
 * not the tokenizers. Queries are the OR of the distinct query terms for
 * both; FTS5 ranks with bm25(docs, title_boost, 1.0) and LIMIT k. The
 * FTS5 build time excludes that tokenization (reported separately).
 *
 * hw_index runs in several modes (the default; with snippets; exhaustive;
 * snippets from whole texts tokenized; without and with block-max bounds
 * on every query) so designs are compared in the same run; rankings and
 * snippets of the modes are compared with the default's.
 * SEARCH_BENCH_ONLY=M runs only mode M (under a profiler).
 *
 * Usage: search_bench --articles F --queries F [--k 10] [--no-fts5]
 *                     [--no-xapian] [--no-exhaustive] [--repeat N]
 *                     [--label NAME]
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "server/base/arena.h"
#include "server/search/index.h"
#include "server/search/tokenize.h"

#include "bench/xapian_peer.h"

typedef struct article {
    char *id, *title, *body;
} article;

typedef struct query {
    char *text, *expected;
} query;

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* One timed search of q with the given flags: *lat its time in µs, *rank
 * the expected article's rank in the hits (0: not among them). Returns
 * hw_index_search's result (res and st filled by it). */
static int timed_search(hw_searcher *s, const query *q, size_t k, unsigned flags, hw_arena *arena,
                        hw_search_result *res, hw_status *st, double *lat, int *rank)
{
    hw_search_query sq = {q->text, strlen(q->text), (uint32_t)k, NULL, HW_DOC_ANY, flags};
    double a = now_us();
    int rc = hw_index_search(s, &sq, arena, res, st);
    *lat = now_us() - a;
    *rank = 0;
    for (size_t h = 0; rc == 0 && h < res->n_hits; h++)
        if (!strcmp(res->hits[h].id, q->expected)) {
            *rank = (int)h + 1;
            break;
        }
    return rc;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Reads a whole file; splits lines in place. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "search_bench: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "search_bench: cannot read %s\n", path);
        exit(2);
    }
    buf[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Splits buf into lines and each line into up to max TAB fields. */
static size_t split(char *buf, char ***fields_out, int max)
{
    size_t cap = 1024, n = 0;
    char **fields = malloc(cap * max * sizeof *fields);
    char *line = buf;
    while (*line) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        if (n == cap) {
            cap *= 2;
            fields = realloc(fields, cap * max * sizeof *fields);
        }
        int k = 0;
        char *p = line;
        for (; k < max; k++) {
            fields[n * max + k] = p;
            char *tab = strchr(p, '\t');
            if (!tab) {
                k++;
                break;
            }
            *tab = 0;
            p = tab + 1;
        }
        if (k == max)
            n++;
        if (!nl)
            break;
        line = nl + 1;
    }
    *fields_out = fields;
    return n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct figures {
    double p50_us, p99_us, mean_us, qps, mrr, recall;
} figures;

static void summarize(double *lat, size_t n, const int *rank, size_t k, double total_us, figures *f)
{
    qsort(lat, n, sizeof *lat, cmp_double);
    f->p50_us = lat[n / 2];
    f->p99_us = lat[(size_t)((double)n * 0.99)];
    f->mean_us = total_us / (double)n;
    f->qps = (double)n / (total_us / 1e6);
    double mrr = 0, rec = 0;
    for (size_t i = 0; i < n; i++) {
        if (rank[i] > 0 && (size_t)rank[i] <= k) {
            mrr += 1.0 / rank[i];
            rec += 1;
        }
    }
    f->mrr = mrr / (double)n;
    f->recall = rec / (double)n;
}

/* Space-joined terms of text (FTS5 input and query building). */
static char *terms_joined(hw_tokenizer *t, const char *text, const char *sep, int quote, int distinct)
{
    const hw_token *tk;
    size_t n;
    if (hw_tokenize(t, text, strlen(text), &tk, &n, NULL) != 0)
        return strdup("");
    size_t cap = 16;
    for (size_t i = 0; i < n; i++)
        cap += tk[i].len + strlen(sep) + 2;
    char *out = malloc(cap), *o = out;
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        if (distinct) {
            int dup = 0;
            for (size_t j = 0; j < i && !dup; j++)
                dup = tk[j].hash == tk[i].hash;
            if (dup)
                continue;
        }
        if (used++)
            o += sprintf(o, "%s", sep);
        if (quote)
            *o++ = '"';
        memcpy(o, tk[i].text, tk[i].len);
        o += tk[i].len;
        if (quote)
            *o++ = '"';
    }
    *o = 0;
    return out;
}

int main(int argc, char **argv)
{
    const char *articles_path = NULL, *queries_path = NULL, *label = "corpus";
    size_t k = 10;
    int fts5 = 1, xapian = 1, exhaustive = 1, repeat = 1, updates = 2000, requery = 0;
    hw_index_options iopt = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--articles") && i + 1 < argc)
            articles_path = argv[++i];
        else if (!strcmp(argv[i], "--queries") && i + 1 < argc)
            queries_path = argv[++i];
        else if (!strcmp(argv[i], "--k") && i + 1 < argc)
            k = (size_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc)
            repeat = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--label") && i + 1 < argc)
            label = argv[++i];
        else if (!strcmp(argv[i], "--no-fts5"))
            fts5 = 0;
        else if (!strcmp(argv[i], "--no-xapian"))
            xapian = 0;
        else if (!strcmp(argv[i], "--no-exhaustive"))
            exhaustive = 0;
        else if (!strcmp(argv[i], "--updates") && i + 1 < argc)
            updates = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--compress-min") && i + 1 < argc)
            iopt.compress_min_bytes = (uint32_t)strtoul(argv[++i], NULL, 10); /* 4294967295: never */
        else if (!strcmp(argv[i], "--requery"))
            requery = 1;
        else if (!strcmp(argv[i], "--delta-active") && i + 1 < argc)
            iopt.delta_active_docs = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--delta-merge") && i + 1 < argc)
            iopt.delta_merge_docs = (uint32_t)atoi(argv[++i]);
        else {
            fprintf(stderr,
                    "usage: %s --articles F --queries F [--k 10] [--repeat N] "
                    "[--label NAME] [--no-fts5] [--no-xapian] [--no-exhaustive] [--updates N] [--requery]\n"
                    "  [--delta-active N] [--delta-merge N] [--compress-min BYTES]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!articles_path || !queries_path) {
        fprintf(stderr, "search_bench: --articles and --queries are required\n");
        return 2;
    }
    size_t alen, qlen;
    char *abuf = slurp(articles_path, &alen), *qbuf = slurp(queries_path, &qlen);
    char **af, **qf;
    size_t na = split(abuf, &af, 3), nq = split(qbuf, &qf, 2);
    article *arts = malloc(na * sizeof *arts);
    uint64_t raw_bytes = 0;
    for (size_t i = 0; i < na; i++) {
        arts[i] = (article){af[3 * i], af[3 * i + 1], af[3 * i + 2]};
        for (char *p = arts[i].body; *p; p++)
            if (*p == '\x1f')
                *p = '\n';
        raw_bytes += strlen(arts[i].title) + strlen(arts[i].body);
    }
    query *qs = malloc(nq * sizeof *qs);
    for (size_t i = 0; i < nq; i++)
        qs[i] = (query){qf[2 * i], qf[2 * i + 1]};
    printf("# %s: %zu articles, %.1f MiB of text, %zu queries, k=%zu\n", label, na, raw_bytes / 1048576.0, nq,
           k);

    /* ---- hw_index ---- */
    hw_index_reader_register();
    hw_index *idx;
    hw_status st;
    if (hw_index_create(&idx, &iopt, &st) != 0) {
        fprintf(stderr, "index: %s\n", st.msg);
        return 1;
    }
    long rss0 = rss_kib();
    double t0 = now_us();
    size_t refused = 0;
    hw_index_batch_begin(idx);
    for (size_t i = 0; i < na; i++) {
        hw_doc d = {HW_DOC_ARTICLE, arts[i].id, arts[i].title, arts[i].body, "en", NULL, 0};
        if (hw_index_put(idx, &d, &st) != 0 && refused++ < 5)
            fprintf(stderr, "put %s: %s\n", arts[i].id, st.msg);
    }
    if (refused)
        fprintf(stderr, "hw_index refused %zu of %zu articles\n", refused, na);
    if (hw_index_batch_commit(idx, &st) != 0) {
        fprintf(stderr, "commit: %s\n", st.msg);
        return 1;
    }
    double build_ms = (now_us() - t0) / 1e3;
    long rss1 = rss_kib();
    hw_index_stats stats;
    hw_index_stats_get(idx, &stats);

    hw_searcher *s;
    hw_searcher_create(idx, &s, NULL);
    hw_arena *arena = hw_arena_create(1 << 16);
    double *lat = malloc(nq * sizeof *lat);
    int *rank = malloc(nq * sizeof *rank);
    figures hw_nosnip = {0}, hw_snip = {0}, hw_exh = {0}, hw_fullsnip = {0}, hw_nobm = {0}, hw_bm = {0}, fts = {0};
    enum { N_MODES = 6 };
    static const unsigned modes[N_MODES] = {HW_SEARCH_NO_SNIPPETS,
                                            0,
                                            HW_SEARCH_NO_SNIPPETS | HW_SEARCH_EXHAUSTIVE,
                                            HW_SEARCH_FULL_SNIPPETS,
                                            HW_SEARCH_NO_SNIPPETS | HW_SEARCH_NO_BLOCK_MAX,
                                            HW_SEARCH_NO_SNIPPETS | HW_SEARCH_FORCE_BLOCK_MAX};
    figures *outs[N_MODES] = {&hw_nosnip, &hw_snip, &hw_exh, &hw_fullsnip, &hw_nobm, &hw_bm};
    /* ranks of the default mode, compared with the other rankings */
    int *rank0 = calloc(nq, sizeof *rank0);
    size_t rank_diff = 0;
    uint64_t matched_total = 0;
    /* Snippets of the default pass (candidate words only) and of the full
     * tokenization, compared query by query. */
    char **snips = calloc(nq, sizeof *snips);
    size_t snip_diff = 0;
    for (int m = 0; m < N_MODES; m++) {
        if (m == 2 && !exhaustive)
            continue;
        /* SEARCH_BENCH_ONLY=M: only that mode (0-5), e.g. under a profiler */
        if (getenv("SEARCH_BENCH_ONLY") && atoi(getenv("SEARCH_BENCH_ONLY")) != m)
            continue;
        for (int r = 0; r <= repeat; r++) { /* r == 0 warms up */
            double total = 0;
            for (size_t i = 0; i < nq; i++) {
                hw_search_result res;
                int rc = timed_search(s, &qs[i], k, modes[m], arena, &res, &st, &lat[i], &rank[i]);
                total += lat[i];
                if (rc != 0)
                    fprintf(stderr, "search \"%s\": %s\n", qs[i].text, st.msg);
                if (m == 0 && r == 0)
                    matched_total += res.matched;
                if ((m == 1 || m == 3) && r == 0 && rc == 0) {
                    size_t sl = 1;
                    for (size_t h = 0; h < res.n_hits; h++)
                        sl += strlen(res.hits[h].snippet ? res.hits[h].snippet : "") + 1;
                    char *all = malloc(sl), *o = all;
                    for (size_t h = 0; h < res.n_hits; h++)
                        o += sprintf(o, "%s\x1e", res.hits[h].snippet ? res.hits[h].snippet : "");
                    *o = 0;
                    if (m == 1) {
                        snips[i] = all;
                    } else {
                        if (!snips[i] || strcmp(snips[i], all)) {
                            if (snip_diff++ < 3 && getenv("SEARCH_BENCH_SNIPDIFF"))
                                fprintf(stderr, "snippets differ for \"%s\":\n  %s\n  %s\n", qs[i].text,
                                        snips[i] ? snips[i] : "", all);
                        }
                        free(all);
                    }
                }
                if (m == 0 && r == repeat && getenv("SEARCH_BENCH_SLOW") &&
                    lat[i] > atof(getenv("SEARCH_BENCH_SLOW")))
                    fprintf(stderr, "slow %.0f us, %zu terms: %s\n", lat[i], res.n_terms, qs[i].text);
                hw_arena_reset(arena);
            }
            if (r == repeat) {
                for (size_t i = 0; i < nq; i++) {
                    if (m == 0)
                        rank0[i] = rank[i];
                    else
                        rank_diff += rank0[i] != rank[i];
                }
                summarize(lat, nq, rank, k, total, outs[m]);
            }
        }
    }

    /* ---- Updates: each put or delete is visible when the call returns ----
     * Three of four updates replace a random article (its body plus a
     * marker word), one deletes one (put back by a later replacement);
     * every 50th update a search for its marker checks it is visible. */
    double *ulat = malloc((updates > 0 ? (size_t)updates : 1) * sizeof *ulat);
    size_t n_upd = 0, rebuilds = 0, invisible = 0;
    double upd_total = 0;
    if (updates > 0 && na > 0) {
        hw_index_stats us0, us1;
        hw_index_stats_get(idx, &us0);
        uint64_t seed = 12345;
        char *body = NULL;
        size_t body_cap = 0;
        for (int u = 0; u < updates; u++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            size_t a = (size_t)(seed >> 33) % na;
            char marker[32];
            snprintf(marker, sizeof marker, "updmark%dq", u);
            double t0 = now_us(), t1;
            int rc;
            if (u % 4 == 3) {
                rc = hw_index_delete(idx, HW_DOC_ARTICLE, arts[a].id, &st);
                t1 = now_us();
                if (rc == HW_ENOTFOUND)
                    rc = 0;
            } else {
                size_t bl = strlen(arts[a].body) + 40;
                if (bl > body_cap)
                    body = realloc(body, body_cap = bl * 2);
                snprintf(body, body_cap, "%s %s", arts[a].body, marker);
                hw_doc d = {HW_DOC_ARTICLE, arts[a].id, arts[a].title, body, "en", NULL, 0};
                rc = hw_index_put(idx, &d, &st);
                t1 = now_us();
                if (rc == 0 && u % 50 == 0) {
                    hw_search_query q = {marker, strlen(marker), 1, NULL, HW_DOC_ANY, HW_SEARCH_NO_SNIPPETS};
                    hw_search_result res;
                    if (hw_index_search(s, &q, arena, &res, &st) != 0 || res.n_hits != 1 ||
                        strcmp(res.hits[0].id, arts[a].id))
                        invisible++;
                    hw_arena_reset(arena);
                }
            }
            if (rc != 0 && rc != HW_EINVALID) /* refused ids were refused at build too */
                fprintf(stderr, "update %s: %s\n", arts[a].id, st.msg);
            ulat[n_upd++] = t1 - t0;
            upd_total += t1 - t0;
            hw_index_stats_get(idx, &us1);
            if (us1.last_main_build_ms != us0.last_main_build_ms)
                rebuilds++;
            us0 = us1;
        }
        free(body);
        qsort(ulat, n_upd, sizeof *ulat, cmp_double);
    }
    hw_index_stats ustats;
    hw_index_stats_get(idx, &ustats);

    /* ---- Queries again after the updates (--requery): once the main
     * build they started has installed (a quiet machine), the changes
     * made meanwhile are still in deltas: searches read every segment. */
    figures rq[2];
    memset(rq, 0, sizeof rq);
    double flush_ms = 0;
    hw_index_stats rstats = {0};
    if (requery && n_upd) {
        double f0 = now_us();
        hw_index_flush(idx);
        flush_ms = (now_us() - f0) / 1e3;
        hw_index_stats_get(idx, &rstats);
        for (int m = 0; m < 2; m++) {
            for (int r = 0; r <= repeat; r++) {
                double total = 0;
                for (size_t i = 0; i < nq; i++) {
                    hw_search_result res;
                    timed_search(s, &qs[i], k, modes[m], arena, &res, &st, &lat[i], &rank[i]);
                    total += lat[i];
                    hw_arena_reset(arena);
                }
                if (r == repeat)
                    summarize(lat, nq, rank, k, total, &rq[m]);
            }
        }
    }

    /* ---- SQLite FTS5 ---- */
    double fts_build_ms = 0, fts_tok_ms = 0;
    long fts_mem_kib = 0;
    if (fts5) {
        sqlite3 *db;
        sqlite3_open(":memory:", &db);
        sqlite3_exec(db, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;", NULL, NULL, NULL);
        if (sqlite3_exec(db,
                         "CREATE VIRTUAL TABLE docs USING fts5(title, body, "
                         "tokenize=\"unicode61 remove_diacritics 0 tokenchars '._'\")",
                         NULL, NULL, NULL) != SQLITE_OK) {
            fprintf(stderr, "fts5: %s\n", sqlite3_errmsg(db));
            return 1;
        }
        hw_tokenizer *tok;
        hw_tokenizer_create(&tok, NULL);
        char **tt = malloc(na * sizeof *tt), **tb = malloc(na * sizeof *tb);
        double a = now_us();
        for (size_t i = 0; i < na; i++) {
            tt[i] = terms_joined(tok, arts[i].title, " ", 0, 0);
            tb[i] = terms_joined(tok, arts[i].body, " ", 0, 0);
        }
        fts_tok_ms = (now_us() - a) / 1e3;
        sqlite3_int64 mem0 = sqlite3_memory_used();
        a = now_us();
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
        sqlite3_stmt *ins;
        sqlite3_prepare_v2(db, "INSERT INTO docs(rowid, title, body) VALUES(?, ?, ?)", -1, &ins, NULL);
        for (size_t i = 0; i < na; i++) {
            sqlite3_bind_int64(ins, 1, (sqlite3_int64)i + 1);
            sqlite3_bind_text(ins, 2, tt[i], -1, SQLITE_STATIC);
            sqlite3_bind_text(ins, 3, tb[i], -1, SQLITE_STATIC);
            if (sqlite3_step(ins) != SQLITE_DONE)
                fprintf(stderr, "fts5 insert: %s\n", sqlite3_errmsg(db));
            sqlite3_reset(ins);
        }
        sqlite3_finalize(ins);
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        sqlite3_exec(db, "INSERT INTO docs(docs) VALUES('optimize')", NULL, NULL, NULL);
        fts_build_ms = (now_us() - a) / 1e3;
        fts_mem_kib = (long)((sqlite3_memory_used() - mem0) / 1024);
        for (size_t i = 0; i < na; i++) {
            free(tt[i]);
            free(tb[i]);
        }
        free(tt);
        free(tb);

        char sql[128];
        snprintf(sql, sizeof sql,
                 "SELECT rowid FROM docs WHERE docs MATCH ? ORDER BY bm25(docs, 2.0, 1.0) "
                 "LIMIT %zu",
                 k);
        sqlite3_stmt *sel;
        sqlite3_prepare_v2(db, sql, -1, &sel, NULL);
        char **match = malloc(nq * sizeof *match);
        for (size_t i = 0; i < nq; i++)
            match[i] = terms_joined(tok, qs[i].text, " OR ", 1, 1);
        for (int r = 0; r <= repeat; r++) {
            double total = 0;
            for (size_t i = 0; i < nq; i++) {
                rank[i] = 0;
                if (!match[i][0]) {
                    lat[i] = 0;
                    continue;
                }
                double b0 = now_us();
                sqlite3_bind_text(sel, 1, match[i], -1, SQLITE_STATIC);
                int pos = 0;
                while (sqlite3_step(sel) == SQLITE_ROW) {
                    pos++;
                    size_t row = (size_t)sqlite3_column_int64(sel, 0) - 1;
                    if (!rank[i] && row < na && !strcmp(arts[row].id, qs[i].expected))
                        rank[i] = pos;
                }
                sqlite3_reset(sel);
                double b1 = now_us();
                lat[i] = b1 - b0;
                total += b1 - b0;
            }
            if (r == repeat)
                summarize(lat, nq, rank, k, total, &fts);
        }
        sqlite3_finalize(sel);
        for (size_t i = 0; i < nq; i++)
            free(match[i]);
        free(match);
        hw_tokenizer_destroy(tok);
        sqlite3_close(db);
    }

    /* ---- Xapian ---- */
    figures xap = {0};
    double xap_build_ms = 0, xap_tok_ms = 0;
    uint64_t xap_bytes = 0;
    if (xapian) {
        hw_tokenizer *tok;
        hw_tokenizer_create(&tok, NULL);
        /* Each document is tokenized, then added; the tokenization time is
         * measured apart and left out of the build time. */
        size_t tcap = 1 << 16;
        xp_term *terms = malloc(tcap * sizeof *terms);
        double a = now_us();
        xp_db *xdb = xp_create(1.2, 0.75, 2);
        if (!xdb)
            return 1;
        for (size_t i = 0; i < na; i++) {
            double t0 = now_us();
            size_t tn = 0, nt = 0;
            for (int f = 0; f < 2; f++) {
                const char *text = f ? arts[i].body : arts[i].title;
                const hw_token *tk;
                size_t n = 0;
                if (hw_tokenize(tok, text, strlen(text), &tk, &n, NULL) != 0)
                    n = 0;
                if (tn + n > tcap) {
                    while (tn + n > tcap)
                        tcap *= 2;
                    terms = realloc(terms, tcap * sizeof *terms);
                }
                for (size_t j = 0; j < n; j++)
                    terms[tn++] = (xp_term){tk[j].text, tk[j].len};
                if (f == 0) {
                    nt = tn;
                    /* The body's tokens reuse the tokenizer's buffers:
                     * copy the title's terms first. */
                    for (size_t j = 0; j < nt; j++) {
                        char *c = malloc(terms[j].len);
                        memcpy(c, terms[j].text, terms[j].len);
                        terms[j].text = c;
                    }
                }
            }
            xap_tok_ms += (now_us() - t0) / 1e3;
            xp_add(xdb, terms, nt, terms + nt, tn - nt);
            for (size_t j = 0; j < nt; j++)
                free((void *)terms[j].text);
        }
        if (xp_commit(xdb) != 0)
            return 1;
        xap_build_ms = (now_us() - a) / 1e3 - xap_tok_ms;
        xap_bytes = xp_disk_bytes(xdb);
        free(terms);

        /* Queries: the distinct hw_tokenize terms, as for the others. */
        xp_term *qt = malloc(HW_INDEX_MAX_QUERY * sizeof *qt);
        uint32_t *top = malloc(k * sizeof *top);
        for (int r = 0; r <= repeat; r++) {
            double total = 0;
            for (size_t i = 0; i < nq; i++) {
                rank[i] = 0;
                double b0 = now_us();
                const hw_token *tk;
                size_t n = 0, nd = 0;
                if (hw_tokenize(tok, qs[i].text, strlen(qs[i].text), &tk, &n, NULL) != 0)
                    n = 0;
                for (size_t j = 0; j < n && nd < HW_INDEX_MAX_QUERY; j++) {
                    int dup = 0;
                    for (size_t e = 0; e < j && !dup; e++)
                        dup = tk[e].hash == tk[j].hash;
                    if (!dup)
                        qt[nd++] = (xp_term){tk[j].text, tk[j].len};
                }
                int got = nd ? xp_search(xdb, qt, nd, (unsigned)k, top) : 0;
                double b1 = now_us();
                for (int h = 0; h < got; h++)
                    if (top[h] >= 1 && top[h] <= na && !strcmp(arts[top[h] - 1].id, qs[i].expected)) {
                        rank[i] = h + 1;
                        break;
                    }
                lat[i] = b1 - b0;
                total += b1 - b0;
            }
            if (r == repeat)
                summarize(lat, nq, rank, k, total, &xap);
        }
        free(qt);
        free(top);
        xp_destroy(xdb);
        hw_tokenizer_destroy(tok);
    }

    printf("\n| engine | build | memory | p50 | p99 | mean | QPS | MRR@10 | recall@10 |\n");
    printf("|---|---|---|---|---|---|---|---|---|\n");
    const char *names[N_MODES] = {"hw_index (MaxScore, no snippets)", "hw_index (MaxScore + snippets)",
                                  "hw_index (exhaustive, no snippets)",
                                  "hw_index (MaxScore + snippets, whole texts tokenized)",
                                  "hw_index (MaxScore without block-max, no snippets)",
                                  "hw_index (MaxScore with block-max on every query, no snippets)"};
    for (int m = 0; m < N_MODES; m++)
        if (m != 2 || exhaustive)
        printf("| %s | %.0f ms | %.1f MiB | %.0f µs | %.0f µs | %.0f µs | %.0f | %.3f | %.3f |\n", names[m],
               build_ms, stats.index_bytes / 1048576.0, outs[m]->p50_us, outs[m]->p99_us, outs[m]->mean_us,
               outs[m]->qps, outs[m]->mrr, outs[m]->recall);
    if (xapian)
        printf("| Xapian BM25 | %.0f ms | %.1f MiB | %.0f µs | %.0f µs | %.0f µs | %.0f | %.3f | %.3f |\n",
               xap_build_ms, xap_bytes / 1048576.0, xap.p50_us, xap.p99_us, xap.mean_us, xap.qps, xap.mrr,
               xap.recall);
    if (fts5)
        printf("| SQLite FTS5 bm25() | %.0f ms | %.1f MiB | %.0f µs | %.0f µs | %.0f µs | %.0f | %.3f | %.3f |\n",
               fts_build_ms, fts_mem_kib / 1024.0, fts.p50_us, fts.p99_us, fts.mean_us, fts.qps, fts.mrr,
               fts.recall);
    if (xapian) {
        printf("\n| hw_index / Xapian | p50 | p99 | QPS | MRR@10 | recall@10 | build | memory |\n");
        printf("|---|---|---|---|---|---|---|---|\n");
        for (int m = 0; m < 2; m++)
            printf("| %s | %.3f | %.3f | %.2f | %+.3f | %+.3f | %.2f | %.2f |\n", names[m],
                   outs[m]->p50_us / xap.p50_us, outs[m]->p99_us / xap.p99_us, outs[m]->qps / xap.qps,
                   outs[m]->mrr - xap.mrr, outs[m]->recall - xap.recall, build_ms / xap_build_ms,
                   (double)stats.index_bytes / (double)(xap_bytes ? xap_bytes : 1));
        printf("(time ratios: below 1 is faster than Xapian; MRR and recall: differences)\n");
    }
    printf("snippets add %.0f%% at p50, %.0f%% at the mean (whole texts tokenized: %.0f%%, %.0f%%); "
           "%zu of %zu queries' snippets differ between the two\n",
           100.0 * (hw_snip.p50_us / hw_nosnip.p50_us - 1), 100.0 * (hw_snip.mean_us / hw_nosnip.mean_us - 1),
           100.0 * (hw_fullsnip.p50_us / hw_nosnip.p50_us - 1),
           100.0 * (hw_fullsnip.mean_us / hw_nosnip.mean_us - 1), snip_diff, nq);
    printf("known item's rank differs from the default mode's in %zu (query, mode) pairs\n", rank_diff);
    for (size_t i = 0; i < nq; i++)
        free(snips[i]);
    free(snips);
    free(rank0);
    printf("\nhw_index build: %.0f ms (main segment %.0f ms); %llu docs, %llu terms\n", build_ms,
           stats.last_main_build_ms, (unsigned long long)stats.docs, (unsigned long long)stats.terms);
    printf("hw_index memory: %.1f MiB accounted (%.2fx the %.1f MiB of raw text; postings %.1f MiB); "
           "RSS +%.1f MiB\n",
           stats.index_bytes / 1048576.0, (double)stats.index_bytes / (double)stats.text_bytes,
           stats.text_bytes / 1048576.0, stats.postings_bytes / 1048576.0, (rss1 - rss0) / 1024.0);
    printf("hw_index matched (estimate) per query: %.0f\n", (double)matched_total / (double)nq);
    if (n_upd)
        printf("hw_index updates (3 puts : 1 delete, each visible on return): %zu, p50 %.2f ms, p99 %.2f ms, "
               "max %.1f ms, mean %.2f ms; %zu main rebuilds; %zu of %zu checked updates not visible\n",
               n_upd, ulat[n_upd / 2] / 1e3, ulat[(size_t)((double)n_upd * 0.99)] / 1e3, ulat[n_upd - 1] / 1e3,
               upd_total / (double)n_upd / 1e3, rebuilds, invisible, (n_upd + 49) / 50);
    if (n_upd)
        printf("hw_index after the updates: %llu main docs, %llu delta docs in %llu delta segments\n",
               (unsigned long long)ustats.main_docs, (unsigned long long)ustats.delta_docs,
               (unsigned long long)ustats.delta_segments);
    if (requery && n_upd) {
        printf("hw_index requery after the build the updates started (flush waited %.0f ms; the install "
               "held the writer %.1f ms): %llu main docs, %llu delta docs in %llu delta segments\n",
               flush_ms, rstats.last_install_ms, (unsigned long long)rstats.main_docs,
               (unsigned long long)rstats.delta_docs, (unsigned long long)rstats.delta_segments);
        for (int m = 0; m < 2; m++)
            printf("| requery %s | p50 %.0f µs | p99 %.0f µs | mean %.0f µs | QPS %.0f | MRR@10 %.3f | "
                   "recall@10 %.3f |\n",
                   m ? "+ snippets" : "no snippets", rq[m].p50_us, rq[m].p99_us, rq[m].mean_us, rq[m].qps,
                   rq[m].mrr, rq[m].recall);
    }
    free(ulat);
    if (xapian)
        printf("Xapian build: %.0f ms (+ %.0f ms hw_tokenize to prepare its input); glass database %.1f MiB\n",
               xap_build_ms, xap_tok_ms, xap_bytes / 1048576.0);
    if (fts5)
        printf("FTS5 build: %.0f ms (+ %.0f ms hw_tokenize to prepare its input); memory %.1f MiB\n",
               fts_build_ms, fts_tok_ms, fts_mem_kib / 1024.0);
    hw_searcher_destroy(s);
    hw_arena_destroy(arena);
    hw_index_destroy(idx);
    hw_index_reader_unregister();
    free(lat);
    free(rank);
    free(arts);
    free(qs);
    free(af);
    free(qf);
    free(abuf);
    free(qbuf);
    return 0;
}
