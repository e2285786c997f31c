"""answers_fit: fits the answer-confidence model on the evaluation set.

  /usr/bin/python3 bench/answers_fit.py ROWS.csv [--split dev]

ROWS.csv is the per-question file of bench/answers_eval.py (--out-csv).
Each row with a document or "none" label is one example: its best
candidate's measured features (the AnswerSignals columns) and whether that
candidate is the labelled document. A logistic regression (L2-regularised,
fitted by Newton's method: seven weights need no library) gives the
weights that server/search/index.c's `model` table holds; the script prints
that table, the fit's log loss and a reliability table, and the threshold
that keeps wrong answers at or below 2% of the split's questions.

Only the chosen candidate of each question is seen, so after changing the
weights run the evaluation again and refit until the weights settle (two
rounds were enough in practice).
"""
import argparse
import csv
import math
import sys

FEATURES = ("coverage", "head_coverage", "question_similarity", "question_containment", "margin", "phrase",
            "locale_match", "known_share", "log_terms")


def features(row):
    terms = float(row["sig_terms"] or 0)
    known = float(row["sig_known_terms"] or 0)
    x = [float(row["sig_" + f] or 0) for f in FEATURES[:-2]]
    x.append(known / terms if terms else 0.0)
    x.append(math.log(1.0 + terms))
    return x


def solve(a, b):
    """Solves a x = b (small dense system, Gaussian elimination)."""
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(m[r][c]))
        m[c], m[p] = m[p], m[c]
        if abs(m[c][c]) < 1e-12:
            continue
        for r in range(n):
            if r != c:
                f = m[r][c] / m[c][c]
                for k in range(c, n + 1):
                    m[r][k] -= f * m[c][k]
    return [m[i][n] / m[i][i] if abs(m[i][i]) > 1e-12 else 0.0 for i in range(n)]


def fit(xs, ys, l2=0.1, rounds=50):
    d = len(xs[0]) + 1
    w = [0.0] * d
    for _ in range(rounds):
        g = [0.0] * d
        h = [[0.0] * d for _ in range(d)]
        for x, y in zip(xs, ys):
            v = [1.0] + x
            z = sum(wi * vi for wi, vi in zip(w, v))
            p = 1 / (1 + math.exp(-max(-30, min(30, z))))
            for i in range(d):
                g[i] += (p - y) * v[i]
                for j in range(d):
                    h[i][j] += p * (1 - p) * v[i] * v[j]
        for i in range(1, d):
            g[i] += l2 * w[i]
            h[i][i] += l2
        step = solve(h, g)
        w = [wi - si for wi, si in zip(w, step)]
        if max(abs(s) for s in step) < 1e-9:
            break
    return w


def predict(w, x):
    z = w[0] + sum(wi * xi for wi, xi in zip(w[1:], x))
    return 1 / (1 + math.exp(-max(-30, min(30, z))))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("csv")
    p.add_argument("--split", default="dev")
    p.add_argument("--l2", type=float, default=0.1)
    a = p.parse_args()
    rows = [r for r in csv.DictReader(open(a.csv, encoding="utf-8"))
            if r["expect"] not in ("smalltalk", "human") and r["sig_terms"] not in ("", None)]
    train = [r for r in rows if r["split"] == a.split]
    if not train:
        sys.exit("answers_fit: no rows of split %s" % a.split)
    xs = [features(r) for r in train]
    ys = [1.0 if r["candidate_correct"] in ("1", "True", "true") else 0.0 for r in train]
    w = fit(xs, ys, a.l2)
    print("static const struct {\n    double bias, %s;\n} model = {%s};" % (
        ", ".join(FEATURES), ", ".join("%.3f" % v for v in w)))
    loss = -sum(y * math.log(max(1e-9, predict(w, x))) + (1 - y) * math.log(max(1e-9, 1 - predict(w, x)))
                for x, y in zip(xs, ys)) / len(xs)
    print("examples %d (correct candidate %d), log loss %.3f" % (len(xs), sum(ys), loss))
    for split in ("dev", "test"):
        part = [r for r in rows if r["split"] == split]
        scored = sorted(((predict(w, features(r)), r["candidate_correct"] in ("1", "True", "true"),
                          r["expect"] != "none") for r in part), reverse=True)
        n = len(part)
        answerable = sum(1 for r in part if r["expect"] != "none")
        for t in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
            got = [s for s in scored if s[0] >= t]
            right = sum(1 for s in got if s[1])
            print("%s t=%.1f answered %d right %d (recall %.1f%%) wrong %d (%.1f%% of %d)" % (
                split, t, len(got), right, 100.0 * right / max(1, answerable), len(got) - right,
                100.0 * (len(got) - right) / max(1, n), n))


if __name__ == "__main__":
    main()
