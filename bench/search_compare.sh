#!/usr/bin/env bash
# search_compare: hw_index against Xapian (and SQLite FTS5 where it finishes
# in reasonable time) on every search corpus, in one run each, printing each
# run's table (figures and hw_index as ratios of Xapian's) and a summary.
#   Debian English (64k package descriptions) and Chinese (zh_CN), from the
#   apt lists (bench/corpus/debian_corpus.py; needs
#   `apt-get -o Acquire::Languages=zh_CN,en update` once);
#   Zipf 20k, and 1M with --big (bench/corpus/zipf_corpus.c).
# Usage: bash bench/search_compare.sh [--big] [--repeat N] [--queries N] [--out DIR]
#   --repeat N   measured passes per engine after a warm-up (default 3; the
#                figures are the last pass)
#   --queries N  known-item queries per corpus (default 1000)
#   --out DIR    where corpora and outputs go (default a temporary directory)
# FTS5 runs on the Chinese and Zipf 20k corpora only (English 64k takes
# minutes of FTS5 queries; add SEARCH_FTS5=all to run it everywhere).
set -euo pipefail
cd "$(dirname "$0")/.."
big=0 repeat=3 queries=1000 out=""
while [ $# -gt 0 ]; do
  case $1 in
  --big) big=1 ;;
  --repeat) repeat=$2; shift ;;
  --queries) queries=$2; shift ;;
  --out) out=$2; shift ;;
  *) echo "usage: bash bench/search_compare.sh [--big] [--repeat N] [--queries N] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$out" ]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
mkdir -p "$out"
bazel build --config=opt //bench:search_bench //bench:zipf_corpus >"$out/build.log" 2>&1 ||
  { tail -20 "$out/build.log"; exit 1; }
bin=bazel-bin/bench
fts_all=${SEARCH_FTS5:-}

run() { # label articles queries fts5(0/1)
  local label=$1 a=$2 q=$3 fts=$4 flags=()
  [ "$fts" = 1 ] || [ "$fts_all" = all ] || flags+=(--no-fts5)
  [ "$label" != zipf-1M ] || flags+=(--no-exhaustive)
  echo "== $label: search_bench --articles A --queries Q --repeat $repeat ${flags[*]:-}"
  "$bin/search_bench" --articles "$a" --queries "$q" --repeat "$repeat" --label "$label" "${flags[@]}" \
    2>"$out/$label.err" | tee "$out/$label.txt"
  grep -v '^put ' "$out/$label.err" | head -5 || true
  echo
}

if /usr/bin/python3 bench/corpus/debian_corpus.py "$out" --en-queries "$queries" --zh-queries "$queries" \
  >"$out/corpus.log" 2>&1; then
  cat "$out/corpus.log"
  run debian-en "$out/en_articles.tsv" "$out/en_queries.tsv" 0
  run debian-zh "$out/zh_articles.tsv" "$out/zh_queries.tsv" 1
else
  echo "Debian corpus skipped: $(tail -1 "$out/corpus.log")"
fi
"$bin/zipf_corpus" 20000 "$queries" "$out/z20k_a.tsv" "$out/z20k_q.tsv" 7 >/dev/null
run zipf-20k "$out/z20k_a.tsv" "$out/z20k_q.tsv" 1
if [ "$big" = 1 ]; then
  "$bin/zipf_corpus" 1000000 "$queries" "$out/z1m_a.tsv" "$out/z1m_q.tsv" 7 >/dev/null
  run zipf-1M "$out/z1m_a.tsv" "$out/z1m_q.tsv" 0
fi

echo "== summary (hw_index without snippets / Xapian; MRR, recall: differences)"
for f in "$out"/*.txt; do
  [ -f "$f" ] || continue
  label=$(basename "$f" .txt)
  line=$(grep -m1 '^| hw_index (MaxScore, no snippets) | [0-9.]* | [0-9.]* |' "$f" || true)
  snip=$(grep -m1 '^snippets add' "$f" || true)
  echo "$label: ${line:-no Xapian ratio} ${snip:+($snip)}"
done
