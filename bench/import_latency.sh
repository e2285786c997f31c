#!/usr/bin/env bash
# bench/import_latency.sh: what a knowledge import costs the customers.
# Route p99 while `helpwire import articles` loads ARTICLES generated
# articles, as a ratio to Route p99 on the same server without the import,
# measured in the same run (target: at most 2).
#
# For each server binary and each round (binaries alternate within a
# round, so drift of the shared machine hits both alike): start
# helpwired --demo on a fresh store, then
#   1. baseline: Route at a fixed open-loop rate (RATE calls/s over
#      CONNS x CONC) for BASE_SECONDS after WARMUP s, p50 and p99;
#   2. import: the same Route load, and once its warm-up is over the
#      import of ARTICLES articles (--parallel PARALLEL); the load is
#      stopped (SIGINT: helpwire-bench reports what it measured) when the
#      import ends, so the window is exactly the import;
#   3. baseline again, now over the grown index: a check on the machine's
#      drift (the cores are shared) and on Route's cost with 3,000 more
#      articles to search;
# and print p99(import) / p99(no import) (the first baseline), with the
# import's time, and the median ratio per server over the rounds.
#
# Why it exists: article and FAQ index maintenance (delta rebuilds, RCU
# grace periods, main rebuilds) once ran on the store's writer thread, so
# every Route write queued behind an import. See bench/RESULTS.md,
# "Route during a knowledge import".
#
# Environment (all optional):
#   SERVERS="name=PATH ..."  helpwired binaries to compare; an empty PATH is the
#                            one built here with --config=opt (default "current=")
#   ROUNDS=2                 rounds (each runs every server once, alternating)
#   ARTICLES=3000 PARALLEL=16 BODY_WORDS=250  the import (CLI default parallel)
#   RATE=1000 CONNS=2 CONC=8 Route load: open loop, calls/s in total
#   BASE_SECONDS=8 WARMUP=1  baseline window; warm-up before each window
#   THREADS=                 helpwired --threads (default: its own, the cores)
#   CORPUS=FILE              Route texts, one per line (default: helpwire-bench's own)
#   OUT=FILE                 also append one tab-separated line per run
#   BENCH_BAZEL_STARTUP      bazel startup flags for the build (default none)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

ROUNDS=${ROUNDS:-2}
ARTICLES=${ARTICLES:-3000}
PARALLEL=${PARALLEL:-16}
BODY_WORDS=${BODY_WORDS:-250}
RATE=${RATE:-1000}
CONNS=${CONNS:-2}
CONC=${CONC:-8}
BASE_SECONDS=${BASE_SECONDS:-8}
WARMUP=${WARMUP:-1}
THREADS=${THREADS:-}
OUT=${OUT:-}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

log() { printf '%s\n' "$*" >&2; }

# ---- binaries ----
# shellcheck disable=SC2086
if ! bazel ${BENCH_BAZEL_STARTUP:-} build --config=opt //server:helpwired //bench:helpwire-bench \
  //clients/cli:helpwire >&2; then
  log "import_latency.sh: the build failed"
  exit 1
fi
# shellcheck disable=SC2086
BIN=$(bazel ${BENCH_BAZEL_STARTUP:-} info --config=opt bazel-bin 2>/dev/null)
BENCH=$BIN/bench/helpwire-bench
CLI=$BIN/clients/cli/helpwire
SERVERS=${SERVERS:-"current="}
server_bin() { local p=${1#*=}; printf '%s\n' "${p:-$BIN/server/helpwired}"; }
for s in $SERVERS; do
  [ -x "$(server_bin "$s")" ] || { log "import_latency.sh: $(server_bin "$s") is not an executable"; exit 1; }
done

WORK=$(mktemp -d /tmp/helpwire-import.XXXXXX)
SERVER_PID=""
BENCH_PID=""
cleanup() {
  [ -n "$BENCH_PID" ] && kill "$BENCH_PID" 2>/dev/null
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# ---- the articles: ARTICLES lines of JSON, BODY_WORDS words each, drawn
# from a Zipf-like vocabulary so the index has real postings to rebuild ----
"$PY" - "$ARTICLES" "$BODY_WORDS" >"$WORK/articles.jsonl" <<'EOF'
import json, random, sys
n, words = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(7)
syll = ["ka", "lo", "mi", "ren", "sto", "vab", "qui", "del", "tor", "pex", "sun", "gar"]
vocab = ["".join(rng.choice(syll) for _ in range(rng.randint(2, 4))) for _ in range(20000)]
weights = [1.0 / (i + 1) for i in range(len(vocab))]
for i in range(n):
    body = " ".join(rng.choices(vocab, weights, k=words))
    title = " ".join(rng.choices(vocab, weights, k=6))
    print(json.dumps({"id": "imp-%d" % i, "title": "Import %d %s" % (i, title), "body": body, "locale": "en"}))
EOF
CORPUS_ARGS=()
[ -n "${CORPUS:-}" ] && CORPUS_ARGS=(--corpus "$CORPUS")

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts $1 (helpwired) --demo on a fresh store: PORT and TOKEN.
start_server() {
  rm -rf "$WORK/data"
  PORT=$(free_port)
  local extra=()
  [ -n "$THREADS" ] && extra=(--threads "$THREADS")
  "$1" --listen "127.0.0.1:$PORT" --data "$WORK/data" --demo "${extra[@]}" >"$WORK/helpwired.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do
    kill -0 "$SERVER_PID" 2>/dev/null || { log "helpwired exited: $(tail -2 "$WORK/helpwired.log")"; return 1; }
    TOKEN=$(awk '$3 == "admin" {print $4}' "$WORK/data/demo-tokens.txt" 2>/dev/null)
    if [ -n "$TOKEN" ] && "$BENCH" --target "127.0.0.1:$PORT" --requests 1 --warmup 0 --no-seed --mix Search \
      --connections 1 --concurrency 1 --connect-timeout-ms 200 --token "$TOKEN" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null
  wait "$SERVER_PID" 2>/dev/null
  SERVER_PID=""
}

# Route load in the background, writing JSON to $1; $2 = duration.
start_route() {
  "$BENCH" --target "127.0.0.1:$PORT" --token "$TOKEN" --mix Route --rate "$RATE" --connections "$CONNS" \
    --concurrency "$CONC" --warmup "$WARMUP" --duration "$2" --run-id "r$RANDOM$RANDOM" \
    "${CORPUS_ARGS[@]}" --json "$1" >"$1.txt" 2>&1 &
  BENCH_PID=$!
}

# "p50_ms p99_ms ok errors" of a helpwire-bench JSON file (latency of the
# calls that ended OK; errors leave out the calls cancelled when the load
# is stopped at the end of the import).
figures() {
  "$PY" - "$1" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
lat = r["latency_us"]
errors = r["errors"] - r.get("errors_by_status", {}).get("CANCELLED", 0)
print("%.2f %.2f %d %d" % (lat["p50"] / 1e3, lat["p99"] / 1e3, r["ok"], errors))
EOF
}

printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
printf 'machine\t%s, %s vCPU %s, load average %s\n' "$(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-Linux}")" \
  "$(nproc)" "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf 'load\tRoute, open loop %s calls/s over %s x %s, %s s warm-up; baseline %s s; import %s articles of %s words, --parallel %s\n' \
  "$RATE" "$CONNS" "$CONC" "$WARMUP" "$BASE_SECONDS" "$ARTICLES" "$BODY_WORDS" "$PARALLEL"
printf 'server\tround\tload1\tbase_p50_ms\tbase_p99_ms\timport_p50_ms\timport_p99_ms\tp99_ratio\timport_s\tarticles/s\tbase_ok\tbase_err\timport_ok\timport_err\tpost_p99_ms\n'
status=0
for round in $(seq "$ROUNDS"); do
  for s in $SERVERS; do
    name=${s%%=*}
    bin=$(server_bin "$s")
    load1=$(cut -d' ' -f1 /proc/loadavg)
    if ! start_server "$bin"; then
      log "$name: helpwired did not start"
      status=1
      stop_server
      continue
    fi
    # 1. baseline
    start_route "$WORK/base.json" "$BASE_SECONDS"
    wait "$BENCH_PID"
    BENCH_PID=""
    read -r b50 b99 bok berr <<<"$(figures "$WORK/base.json")"
    # 2. the same load during the import
    start_route "$WORK/imp.json" 600
    sleep "$WARMUP"
    sleep 0.2
    t0=$(date +%s.%N)
    "$CLI" --server "127.0.0.1:$PORT" --token "$TOKEN" import articles --parallel "$PARALLEL" \
      "$WORK/articles.jsonl" >"$WORK/import.out" 2>"$WORK/import.err"
    irc=$?
    t1=$(date +%s.%N)
    kill -INT "$BENCH_PID" 2>/dev/null
    wait "$BENCH_PID"
    BENCH_PID=""
    if [ "$irc" != 0 ]; then
      log "$name: the import failed: $(tail -2 "$WORK/import.out" "$WORK/import.err")"
      status=1
    fi
    read -r i50 i99 iok ierr <<<"$(figures "$WORK/imp.json")"
    # 3. baseline again
    start_route "$WORK/post.json" "$BASE_SECONDS"
    wait "$BENCH_PID"
    BENCH_PID=""
    read -r _ a99 _ _ <<<"$(figures "$WORK/post.json")"
    stop_server
    line=$(awk -v n="$name" -v r="$round" -v l="$load1" -v b50="$b50" -v b99="$b99" -v i50="$i50" -v i99="$i99" \
      -v t0="$t0" -v t1="$t1" -v a="$ARTICLES" -v bok="$bok" -v berr="$berr" -v iok="$iok" -v ierr="$ierr" -v a99="$a99" \
      'BEGIN { d = t1 - t0; printf "%s\t%d\t%s\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.1f\t%.0f\t%d\t%d\t%d\t%d\t%.2f",
               n, r, l, b50, b99, i50, i99, i99 / b99, d, a / d, bok, berr, iok, ierr, a99 }')
    printf '%s\n' "$line"
    printf '%s\n' "$line" >>"$WORK/lines.tsv"
    [ -n "$OUT" ] && printf '%s\n' "$line" >>"$OUT"
  done
done
# The median p99 ratio per server over the rounds (target: at most 2).
[ -s "$WORK/lines.tsv" ] && sort -t"$(printf '\t')" -k1,1 -k8,8g "$WORK/lines.tsv" | awk -F'\t' '
  { v[$1, ++n[$1]] = $8; if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 } }
  END { for (i = 1; i <= k; i++) { s = order[i]; c = n[s]
          m = c % 2 ? v[s, (c + 1) / 2] : (v[s, c / 2] + v[s, c / 2 + 1]) / 2
          printf "median\t%s\tp99(import)/p99(no import) = %.2f over %d rounds\n", s, m, c } }'
exit $status
