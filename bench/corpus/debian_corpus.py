#!/usr/bin/python3
"""debian_corpus: turns Debian's package descriptions into knowledge bases
for the search benchmark (bench/search_bench.c).

Input: the Translation-* files apt downloads with
    apt-get -o Acquire::Languages=zh_CN,en update
read through `/usr/lib/apt/apt-helper cat-file` (they are lz4/xz/gz
compressed under /var/lib/apt/lists).

Output (in OUT_DIR):
  en_articles.tsv  one article per package: id, title, body
  en_queries.tsv   known-item queries: summary, expected article id
  zh_articles.tsv  the same from Translation-zh_CN (~1.2k packages)
  zh_queries.tsv
Article: id = title = package name (so ids hold '+', e.g. g++,
libsigc++-2.0-0v5), body = the one-line summary followed by
the long description. Query = the summary; the expected answer is its
package. Only summaries that occur once in the corpus are used as queries
(e.g. "transitional package" names hundreds of packages), sampled with a
fixed seed so runs are comparable.

TSV fields contain no tabs; newlines inside a body are written as \\x1f.
Usage: debian_corpus.py OUT_DIR [--en-queries 2000] [--zh-queries 300]
"""
import glob
import random
import subprocess
import sys
from collections import Counter

LISTS = "/var/lib/apt/lists"
HELPER = "/usr/lib/apt/apt-helper"


def read_translation(lang):
    """Yields (package, summary, long_description) of the main archive's
    Translation-<lang> file (bookworm main; updates/security repeat a few)."""
    pattern = "%s/*_dists_bookworm_main_i18n_Translation-%s*" % (LISTS, lang.replace("_", "%5f"))
    files = sorted(glob.glob(pattern))
    if not files:
        sys.exit("no %s; run: apt-get -o Acquire::Languages=zh_CN,en update" % pattern)
    text = subprocess.run([HELPER, "cat-file", files[0]], check=True,
                          stdout=subprocess.PIPE).stdout.decode("utf-8", "replace")
    key = "Description-%s:" % lang
    for para in text.split("\n\n"):
        pkg, summary, body = None, None, []
        for line in para.split("\n"):
            if line.startswith("Package:"):
                pkg = line[8:].strip()
            elif line.startswith(key):
                summary = line[len(key):].strip()
            elif line.startswith(" ") and summary is not None:
                line = line[1:]
                body.append("" if line.strip() == "." else line)
        if pkg and summary:
            if lang.startswith("zh"):
                # Chinese is wrapped mid-sentence; rejoin lines so that
                # no CJK word is split (paragraphs stay separated).
                yield pkg, summary, "\n".join("".join(p.split("\n"))
                                              for p in "\n".join(body).split("\n\n"))
            else:
                yield pkg, summary, "\n".join(body)


def clean(s):
    return s.replace("\t", " ").replace("\r", " ").replace("\x1f", " ")


def write(out_dir, prefix, lang, n_queries, seed):
    docs = list(read_translation(lang))
    seen = set()
    rows = []
    for pkg, summary, body in docs:
        if pkg in seen:
            continue
        seen.add(pkg)
        doc_id = pkg
        rows.append((doc_id, pkg, summary, body))
    with open("%s/%s_articles.tsv" % (out_dir, prefix), "w", encoding="utf-8") as f:
        for doc_id, pkg, summary, body in rows:
            text = clean(summary + "\n" + body).replace("\n", "\x1f")
            f.write("%s\t%s\t%s\n" % (doc_id, clean(pkg), text))
    counts = Counter(r[2].lower() for r in rows)
    unique = [r for r in rows if counts[r[2].lower()] == 1]
    random.Random(seed).shuffle(unique)
    with open("%s/%s_queries.tsv" % (out_dir, prefix), "w", encoding="utf-8") as f:
        for doc_id, pkg, summary, body in unique[:n_queries]:
            f.write("%s\t%s\n" % (clean(summary), doc_id))
    print("%s: %d articles, %d queries (of %d unique summaries)"
          % (prefix, len(rows), min(n_queries, len(unique)), len(unique)))


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    out_dir = args[0]
    opts = dict(zip(args[1::2], args[2::2]))
    write(out_dir, "en", "en", int(opts.get("--en-queries", 2000)), 1)
    write(out_dir, "zh", "zh_CN", int(opts.get("--zh-queries", 300)), 2)


if __name__ == "__main__":
    main()
