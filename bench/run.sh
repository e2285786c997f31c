#!/usr/bin/env bash
# bench/run.sh: the standard load suite, one command, a few minutes on 2
# cores. Builds helpwire-bench and the echo ceiling (and helpwired) with
# --config=opt, then for each workload (Route, Search, CreateTicket, a
# 70/20/10 mix, and GetTicket as a reference: one read, no search, no
# write) and each concurrency level runs the same load against the
# ceiling and against helpwired --demo, so every figure is also a ratio to
# the ceiling measured in the same run; then cross-checks helpwire-bench
# with h2load on the same Route request; runs the store benchmark (group
# commit against one commit per request) and the search benchmark (the
# index against SQLite FTS5); runs the answers evaluation
# (bench/answers_eval.sh on bench/answers/, its own helpwired --demo; skipped
# when the evaluation set is missing); then rewrites the "Load" section of
# bench/RESULTS.md (other sections are kept) and bench/plots/load-*.png.
#
# It first installs what it needs that is missing (h2load, gnuplot, ...):
# `bash bazel/setup.sh --bench --no-build`; the packages are named there
# (BENCH_PACKAGES), in one place. If that fails (offline), the suite runs with
# what is installed, and what needs a missing tool is skipped.
#
# An RPC helpwired does not answer yet (UNIMPLEMENTED, no server binary, no
# --demo) is skipped with a line saying why; the rest still runs.
#
# Environment (all optional):
#   LEVELS="2x8 4x16 4x64"  connections x outstanding calls per connection
#   DURATION=5 WARMUP=1     seconds per cell
#   WORKLOADS="route search create mixed get"
#   XCHECK_LEVEL=4x64 XCHECK_ROUNDS=3 XCHECK_DURATION=3  (XCHECK_ROUNDS=0: skip)
#   STORE_SECONDS=3         store_bench seconds per cell (0: skip the store benchmark)
#   SEARCH_QUERIES=500      search_bench queries (0: skip the search benchmark); the
#                           corpus is Debian's English package descriptions when
#                           apt has their Translation file, else a synthetic Zipf
#                           corpus of SEARCH_ARTICLES=20000 articles
#   ANSWERS=1               0: skip the answers evaluation (bench/answers_eval.sh)
#   XCHECK_MODES="pinned shared"  pinned: the server on CPU 0 and the client on
#                           CPU 1 (taskset), so each tool measures the server
#                           and not its own CPU cost; shared: as the suite runs
#   CORPUS=FILE             one query per line; default: Debian package
#                           summaries from the local apt lists (known-item queries)
#   BENCH_TOKEN=T           sent as "authorization: Bearer T" to helpwired
#                           (default: the admin token helpwired --demo creates)
#   HELPWIRED=PATH          server binary (default: built here, else bazel-bin/server/helpwired)
#   BENCH_BAZEL_STARTUP="--output_base=$HOME/.cache/bazel-bench"
#   RESULTS=bench/RESULTS.md PLOTS=bench/plots
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# ---- packages (named in bazel/setup.sh: PACKAGES and BENCH_PACKAGES) ----
if ! bash bazel/setup.sh --bench --no-build >&2; then
  echo "run.sh: bash bazel/setup.sh --bench --no-build failed; going on with what is installed" >&2
fi

LEVELS=${LEVELS:-"2x8 4x16 4x64"}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
WORKLOADS=${WORKLOADS:-"route search create mixed get"}
XCHECK_LEVEL=${XCHECK_LEVEL:-4x64}
XCHECK_ROUNDS=${XCHECK_ROUNDS:-3}
XCHECK_DURATION=${XCHECK_DURATION:-3}
XCHECK_WARMUP=${XCHECK_WARMUP:-1}
XCHECK_MODES=${XCHECK_MODES:-"pinned shared"}
STORE_SECONDS=${STORE_SECONDS:-3}
SEARCH_QUERIES=${SEARCH_QUERIES:-500}
SEARCH_ARTICLES=${SEARCH_ARTICLES:-20000}
ANSWERS=${ANSWERS:-1}
RESULTS=${RESULTS:-$ROOT/bench/RESULTS.md}
PLOTS=${PLOTS:-$ROOT/bench/plots}
BAZEL_STARTUP=${BENCH_BAZEL_STARTUP:-"--output_base=$HOME/.cache/bazel-bench"}
BAZEL_FLAGS=(--experimental_convenience_symlinks=ignore --config=opt)
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
CORES=$(nproc)

WORK=$(mktemp -d /tmp/helpwire-bench.XXXXXX)
MANIFEST=$WORK/manifest.tsv
: >"$MANIFEST"
CEILING_PID=""
SERVER_PID=""

log() { printf '%s\n' "$*" >&2; }
meta() { printf 'meta\t%s\t%s\n' "$1" "$2" >>"$MANIFEST"; }
skip() { log "SKIP $1: $2"; printf 'skip\t%s\t%s\n' "$1" "$2" >>"$MANIFEST"; }

cleanup() {
  [ -n "$CEILING_PID" ] && kill -TERM "$CEILING_PID" 2>/dev/null && wait "$CEILING_PID" 2>/dev/null
  [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build ----
log "== building (bazel $BAZEL_STARTUP build --config=opt)"
# shellcheck disable=SC2086
if ! bazel $BAZEL_STARTUP build "${BAZEL_FLAGS[@]}" //bench:helpwire-bench //bench:ceiling //bench:store_bench \
  //bench:search_bench //bench:zipf_corpus >"$WORK/build.log" 2>&1; then
  grep -E 'ERROR|error:' "$WORK/build.log" | head -20 >&2
  log "run.sh: build failed"
  exit 1
fi
# shellcheck disable=SC2086
BIN=$(bazel $BAZEL_STARTUP info "${BAZEL_FLAGS[@]}" bazel-bin 2>/dev/null)
BENCH=$BIN/bench/helpwire-bench
CEILING=$BIN/bench/ceiling

SERVER_BIN=${HELPWIRED:-}
SERVER_NOTE=""
if [ -z "$SERVER_BIN" ]; then
  # shellcheck disable=SC2086
  if bazel $BAZEL_STARTUP build "${BAZEL_FLAGS[@]}" //server:helpwired >"$WORK/build-server.log" 2>&1; then
    SERVER_BIN=$BIN/server/helpwired
    SERVER_NOTE="helpwired built here with --config=opt"
  elif [ -x bazel-bin/server/helpwired ]; then
    SERVER_BIN=$ROOT/bazel-bin/server/helpwired
    SERVER_NOTE="bazel-bin/server/helpwired (the opt build failed; this one may be a fastbuild)"
  fi
else
  SERVER_NOTE="$SERVER_BIN (HELPWIRED)"
fi

# ---- corpus ----
if [ -n "${CORPUS:-}" ]; then
  CORPUS_ARGS=(--corpus "$CORPUS")
  meta corpus "$(basename "$CORPUS"), $(wc -l <"$CORPUS") lines"
else
  # Known-item queries: each package's one-line summary (from the local apt
  # lists; nothing is downloaded).
  apt-cache dumpavail 2>/dev/null | sed -n 's/^Description: //p' | awk 'length($0) > 12 && !seen[$0]++' |
    awk 'NR % 5 == 0' | head -n 20000 >"$WORK/queries.txt"
  if [ -s "$WORK/queries.txt" ]; then
    CORPUS_ARGS=(--corpus "$WORK/queries.txt")
    meta corpus "$(wc -l <"$WORK/queries.txt") Debian package summaries (apt-cache dumpavail)"
  else
    CORPUS_ARGS=()
    meta corpus "helpwire-bench's built-in 20 questions (no apt lists found)"
  fi
fi

TOKEN_ARGS=()
H2_AUTH=()
if [ -n "${BENCH_TOKEN:-}" ]; then
  TOKEN_ARGS=(--token "$BENCH_TOKEN")
  H2_AUTH=(-H "authorization: Bearer $BENCH_TOKEN")
fi

meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta machine "$(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-Linux}"), $CORES vCPU $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), kernel $(uname -r)"
meta loadavg "$(cut -d' ' -f1-3 /proc/loadavg)"
meta levels "$LEVELS"
meta duration "$DURATION"
meta warmup "$WARMUP"
meta command "bash bench/run.sh  (LEVELS=\"$LEVELS\" DURATION=$DURATION WARMUP=$WARMUP)"

# ---- servers ----
start_ceiling() {
  "$CEILING" --listen 127.0.0.1:0 --threads "$CORES" >"$WORK/ceiling.out" 2>"$WORK/ceiling.err" &
  CEILING_PID=$!
  for _ in $(seq 50); do
    CEILING_PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$WORK/ceiling.out")
    [ -n "$CEILING_PORT" ] && return 0
    sleep 0.1
  done
  return 1
}

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts helpwired --demo on a fresh store; SERVER_PORT on success.
start_server() {
  if [ -z "$SERVER_BIN" ] || [ ! -x "$SERVER_BIN" ]; then
    SERVER_SKIP="no helpwired binary (//server:helpwired did not build, bazel-bin/server/helpwired absent)"
    return 1
  fi
  # (the whole help read first: grep -q would end the pipe early, and
  # pipefail would count the writer's SIGPIPE as a failure)
  if ! "$SERVER_BIN" --help 2>&1 | grep -- '--demo' >/dev/null; then
    SERVER_SKIP="helpwired does not accept --demo yet"
    return 1
  fi
  SERVER_PORT=$(free_port)
  "$SERVER_BIN" --listen "127.0.0.1:$SERVER_PORT" --data "$WORK/data" --demo --sender-rate 0 --new-customers-rate 0 \
    --metrics 127.0.0.1:0 >"$WORK/helpwired.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      wait "$SERVER_PID"
      SERVER_SKIP="helpwired exited with status $? at start (log: $(tail -1 "$WORK/helpwired.log"))"
      SERVER_PID=""
      return 1
    fi
    # Without BENCH_TOKEN, use the admin token --demo created (admin may
    # call every RPC of the mix).
    if [ -z "${BENCH_TOKEN:-}" ] && [ -s "$WORK/data/demo-tokens.txt" ]; then
      local admin
      admin=$(awk '$3 == "admin" {print $4}' "$WORK/data/demo-tokens.txt")
      TOKEN_ARGS=(--token "$admin")
      H2_AUTH=(-H "authorization: Bearer $admin")
    fi
    if "$BENCH" --target "127.0.0.1:$SERVER_PORT" --requests 1 --warmup 0 --no-seed --mix Search \
      --connections 1 --concurrency 1 --connect-timeout-ms 200 "${TOKEN_ARGS[@]}" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.2
  done
  SERVER_SKIP="helpwired did not accept connections within 20 s"
  return 1
}

# cost_snapshot OUT: the write path's counters of helpwired so far
# (bench/write_cost.py); empty when they cannot be read.
cost_snapshot() {
  local url
  url=$(sed -n 's/^helpwired metrics on \(http:[^ ]*\)$/\1/p' "$WORK/helpwired.log" | head -1)
  [ -n "$url" ] && "$PY" bench/write_cost.py "$SERVER_PID" "$url" >"$1" 2>/dev/null || : >"$1"
}

# run_bench TARGET_NAME PORT WORKLOAD MIX LEVEL [extra args]
run_bench() {
  local target=$1 port=$2 workload=$3 mix=$4 level=$5
  shift 5
  local conns=${level%x*} streams=${level#*x}
  local json="$WORK/$target-$workload-$level.json"
  log "-- $target $workload $level"
  if "$BENCH" --target "127.0.0.1:$port" --connections "$conns" --concurrency "$streams" \
    --duration "$DURATION" --warmup "$WARMUP" --mix "$mix" "${CORPUS_ARGS[@]}" "$@" \
    --json "$json" >"$WORK/$target-$workload-$level.txt" 2>&1; then
    grep -E 'throughput|latency|errors by' "$WORK/$target-$workload-$level.txt" | sed 's/^/   /' >&2
    printf 'run\t%s\t%s\t%s\t%s\n' "$workload" "$level" "$target" "$json" >>"$MANIFEST"
  else
    local why
    why="helpwire-bench failed: $(tail -1 "$WORK/$target-$workload-$level.txt")"
    if [ "$target" = helpwired ] && ! kill -0 "$SERVER_PID" 2>/dev/null; then
      why="helpwired is gone (log: $(tail -1 "$WORK/helpwired.log")); $why"
    fi
    skip "$workload" "$target at $level: $why"
  fi
}

# probe RPC: 0 when helpwired answers at least one of 20 calls with OK.
probe() {
  local mix=$1 json="$WORK/probe-$1.json"
  "$BENCH" --target "127.0.0.1:$SERVER_PORT" --requests 20 --warmup 0 --mix "$mix" --connections 1 \
    --concurrency 1 "${CORPUS_ARGS[@]}" "${TOKEN_ARGS[@]}" --json "$json" >/dev/null 2>"$WORK/probe-$1.err" || return 1
  "$PY" - "$json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
if d["ok"] > 0:
    sys.exit(0)
errs = d.get("errors_by_status") or {}
print(", ".join("%s %d" % kv for kv in sorted(errs.items(), key=lambda kv: -kv[1])) or "no answer")
sys.exit(1)
EOF
}

mix_of() {
  case $1 in
  route) echo "Route" ;;
  search) echo "Search" ;;
  create) echo "CreateTicket" ;;
  mixed) echo "Route=70,GetTicket=20,CreateTicket=10" ;;
  get) echo "GetTicket" ;;
  *) return 1 ;;
  esac
}

if ! start_ceiling; then
  log "run.sh: the ceiling did not start: $(cat "$WORK/ceiling.err")"
  exit 1
fi
log "== ceiling on 127.0.0.1:$CEILING_PORT ($CORES threads)"

SERVER_SKIP=""
SERVER_UP=0
if start_server; then
  SERVER_UP=1
  log "== helpwired on 127.0.0.1:$SERVER_PORT ($SERVER_NOTE)"
  meta server "$SERVER_NOTE; \`--demo\` on a fresh store, default flags ($CORES worker threads), plaintext on loopback."
else
  log "SKIP helpwired: $SERVER_SKIP"
  meta server "not measured: $SERVER_SKIP."
fi

declare -A AVAILABLE
for workload in $WORKLOADS; do
  mix=$(mix_of "$workload") || { log "unknown workload $workload"; continue; }
  AVAILABLE[$workload]=0
  if [ "$SERVER_UP" = 1 ]; then
    # every RPC of the mix must answer
    ok=1
    for rpc in $(echo "$mix" | tr ',' '\n' | cut -d= -f1); do
      if ! why=$(probe "$rpc"); then
        skip "$workload" "helpwired: $rpc answered ${why:-nothing} (not implemented yet?); ceiling only"
        ok=0
        break
      fi
    done
    AVAILABLE[$workload]=$ok
  else
    skip "$workload" "helpwired not running ($SERVER_SKIP); ceiling only"
  fi
done

# ---- the suite ----
for workload in $WORKLOADS; do
  mix=$(mix_of "$workload") || continue
  for level in $LEVELS; do
    run_bench ceiling "$CEILING_PORT" "$workload" "$mix" "$level" --no-seed
    if [ "${AVAILABLE[$workload]}" = 1 ]; then
      cost_snapshot "$WORK/cost-$workload-$level.before"
      run_bench helpwired "$SERVER_PORT" "$workload" "$mix" "$level" "${TOKEN_ARGS[@]}"
      cost_snapshot "$WORK/cost-$workload-$level.after"
      printf 'cost\t%s\t%s\t%s\t%s\n' "$workload" "$level" "$WORK/cost-$workload-$level.before" \
        "$WORK/cost-$workload-$level.after" >>"$MANIFEST"
    fi
  done
done

# ---- cross-check with h2load ----
# cpu_of_child CMD...: runs CMD, sets CHILD_CPU to its user+system seconds.
cpu_of_child() {
  # `times` must run in this shell (not in a pipe or $(...), whose fork
  # would report its own, empty, child times).
  times >"$WORK/times.before"
  "$@"
  local rc=$?
  times >"$WORK/times.after"
  CHILD_CPU=$("$PY" -c '
import re, sys
def secs(path):
    line = open(path).read().strip().splitlines()[-1]
    return sum(int(m) * 60 + float(s) for m, s in re.findall(r"(\d+)m([\d.]+)s", line))
print("%.3f" % (secs(sys.argv[2]) - secs(sys.argv[1])))' "$WORK/times.before" "$WORK/times.after")
  return $rc
}

# xcheck TARGET PORT PID MODE: alternating h2load and helpwire-bench rounds.
# MODE pinned: the server's threads on CPU 0, the client on CPU 1, one client
# thread; shared: nobody pinned, as in the suite.
xcheck() {
  local target=$1 port=$2 pid=$3 mode=$4
  local conns=${XCHECK_LEVEL%x*} streams=${XCHECK_LEVEL#*x}
  local threads=$((conns < CORES ? conns : CORES))
  local body="$WORK/route-request.bin"
  local auth=() pin=()
  [ "$target" = helpwired ] && auth=("${H2_AUTH[@]}")
  if [ "$mode" = pinned ]; then
    taskset -a -p -c 0 "$pid" >/dev/null || return 1
    pin=(taskset -c 1)
    threads=1
  fi
  "$BENCH" --dump-request "$body" --mix Route --run-id xcheck "${CORPUS_ARGS[@]}" || return 1
  for round in $(seq "$XCHECK_ROUNDS"); do
    log "-- cross-check $target ($mode) round $round: h2load"
    cpu_of_child "${pin[@]}" h2load -D "$XCHECK_DURATION" --warm-up-time="$XCHECK_WARMUP" -c "$conns" -m "$streams" \
      -t "$threads" -d "$body" -H 'content-type: application/grpc' -H 'te: trailers' "${auth[@]}" \
      "http://127.0.0.1:$port/helpwire.v1.Router/Route" >"$WORK/h2load-$target-$round.txt" 2>&1
    local h_rps h_done
    h_rps=$(sed -n 's/^finished in [0-9.]*s, \([0-9.]*\) req\/s.*/\1/p' "$WORK/h2load-$target-$round.txt")
    h_done=$(sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p' "$WORK/h2load-$target-$round.txt")
    if [ -z "$h_rps" ] || [ -z "$h_done" ]; then
      skip xcheck "h2load gave no result against $target: $(tail -1 "$WORK/h2load-$target-$round.txt")"
      break
    fi
    printf 'xcheck\t%s\t%s\t%s\th2load\t%s\t%s\t%s\n' "$target" "$mode" "$round" "$h_rps" "$CHILD_CPU" "$h_done" >>"$MANIFEST"
    log "   h2load $h_rps req/s"
    log "-- cross-check $target ($mode) round $round: helpwire-bench"
    local json="$WORK/xcheck-$target-$round.json"
    cpu_of_child "${pin[@]}" "$BENCH" --target "127.0.0.1:$port" --connections "$conns" --concurrency "$streams" \
      --threads "$threads" --duration "$XCHECK_DURATION" --warmup "$XCHECK_WARMUP" --mix Route \
      --request-file "$body" "${TOKEN_ARGS[@]}" --json "$json" >/dev/null 2>&1
    local b
    b=$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["throughput_rps"], d["requests"] + d["warmup_requests"], d["requests"])' "$json" 2>/dev/null) || {
      skip xcheck "helpwire-bench gave no result against $target"
      break
    }
    # CPU covers warm-up too: divide by all calls made (h2load's count
    # excludes its warm-up, so its CPU per request is an upper bound).
    set -- $b
    printf 'xcheck\t%s\t%s\t%s\thelpwire-bench\t%s\t%s\t%s\n' "$target" "$mode" "$round" "$1" "$CHILD_CPU" "$2" >>"$MANIFEST"
    log "   helpwire-bench $1 req/s"
  done
  [ "$mode" = pinned ] && taskset -a -p -c "0-$((CORES - 1))" "$pid" >/dev/null
  return 0
}

if [ "$XCHECK_ROUNDS" -gt 0 ]; then
  if command -v h2load >/dev/null; then
    meta xcheck_level "$XCHECK_LEVEL"
    meta xcheck_duration "$XCHECK_DURATION"
    meta xcheck_warmup "$XCHECK_WARMUP"
    meta h2load_version "$(h2load --version 2>/dev/null | sed -n 's/^h2load nghttp2\///p')"
    for mode in $XCHECK_MODES; do
      if [ "$mode" = pinned ] && { [ "$CORES" -lt 2 ] || ! command -v taskset >/dev/null; }; then
        skip xcheck "pinned mode needs 2 CPUs and taskset"
        continue
      fi
      xcheck ceiling "$CEILING_PORT" "$CEILING_PID" "$mode"
      if [ "${AVAILABLE[route]:-0}" = 1 ]; then
        xcheck helpwired "$SERVER_PORT" "$SERVER_PID" "$mode"
      else
        skip xcheck "helpwired Route not available; cross-checked against the ceiling only"
      fi
    done
  else
    skip xcheck "h2load not installed (nghttp2-client: bash bazel/setup.sh --bench --no-build)"
  fi
fi

# ---- store and search benchmarks ----
# Their output goes into the report as it is (text blocks), with the command.
if [ "$STORE_SECONDS" -gt 0 ]; then
  mkdir -p "$WORK/store"
  log "== store benchmark (store_bench --seconds $STORE_SECONDS, on $(df -T "$WORK" | awk 'NR == 2 {print $2}'))"
  if "$BIN/bench/store_bench" --dir "$WORK/store" --seconds "$STORE_SECONDS" >"$WORK/store.raw" 2>&1; then
    sed "s#$WORK/store#DIR#g" "$WORK/store.raw" >"$WORK/store.txt"
    printf 'text\tstore\tstore_bench --dir DIR --seconds %s  (DIR on %s)\t%s\n' "$STORE_SECONDS" \
      "$(df -T "$WORK" | awk 'NR == 2 {print $2}')" "$WORK/store.txt" >>"$MANIFEST"
  else
    skip store "store_bench failed: $(tail -1 "$WORK/store.raw")"
  fi
  rm -rf "$WORK/store"
fi
if [ "$SEARCH_QUERIES" -gt 0 ]; then
  mkdir -p "$WORK/sc"
  if "$PY" "$ROOT/bench/corpus/debian_corpus.py" "$WORK/sc" --en-queries "$SEARCH_QUERIES" --zh-queries 100 \
    >"$WORK/sc.log" 2>&1; then
    articles=$WORK/sc/en_articles.tsv queries=$WORK/sc/en_queries.tsv label="Debian English"
  else
    "$BIN/bench/zipf_corpus" "$SEARCH_ARTICLES" "$SEARCH_QUERIES" "$WORK/sc/zipf_articles.tsv" \
      "$WORK/sc/zipf_queries.tsv" 7 >"$WORK/sc.log" 2>&1
    articles=$WORK/sc/zipf_articles.tsv queries=$WORK/sc/zipf_queries.tsv label="Zipf synthetic"
  fi
  log "== search benchmark ($label corpus, $(wc -l <"$articles") articles, $(wc -l <"$queries") queries)"
  if "$BIN/bench/search_bench" --articles "$articles" --queries "$queries" --label "$label" \
    >"$WORK/search.txt" 2>&1; then
    printf 'text\tsearch\tsearch_bench --articles A --queries Q  (%s: %s articles, %s queries)\t%s\n' "$label" \
      "$(wc -l <"$articles")" "$(wc -l <"$queries")" "$WORK/search.txt" >>"$MANIFEST"
  else
    skip search-index "search_bench failed: $(tail -1 "$WORK/search.txt")"
  fi
fi

# ---- answers evaluation ----
# Its own helpwired --demo on a fresh store (the one above has the load's
# tickets); its Markdown goes into the report as it is.
if [ "$ANSWERS" != 0 ]; then
  if [ ! -s "$ROOT/bench/answers/questions.jsonl" ]; then
    skip answers "no bench/answers/questions.jsonl (the evaluation set)"
  elif [ -z "$SERVER_BIN" ] || [ ! -x "$SERVER_BIN" ]; then
    skip answers "no helpwired binary"
  else
    log "== answers evaluation (bench/answers_eval.sh)"
    if HELPWIRED=$SERVER_BIN BENCH_BAZEL_STARTUP="$BAZEL_STARTUP" OUT="$WORK/answers.md" \
      bash "$ROOT/bench/answers_eval.sh" >"$WORK/answers.out" 2>"$WORK/answers.err"; then
      printf 'md\tanswers\t%s\n' "$WORK/answers.md" >>"$MANIFEST"
    else
      skip answers "bench/answers_eval.sh failed: $(tail -1 "$WORK/answers.err")"
    fi
  fi
fi

# ---- report ----
if command -v gnuplot >/dev/null; then
  if gnuplot -e 'set terminal pngcairo' 2>/dev/null; then meta gnuplot cairo; else meta gnuplot png; fi
else
  log "note: gnuplot not installed (gnuplot-nox: bash bazel/setup.sh --bench --no-build): no plots"
fi
if [ -n "${XCHECK_NOTE:-}" ]; then meta xcheck_note "$XCHECK_NOTE"; fi
"$PY" "$ROOT/bench/load_report.py" "$MANIFEST" "$RESULTS" "$PLOTS" || {
  log "run.sh: writing the report failed"
  exit 1
}
log "== wrote the Load section of ${RESULTS#"$ROOT"/} and plots under ${PLOTS#"$ROOT"/}"
