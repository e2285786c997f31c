#!/usr/bin/env bash
# bench/timers_bench.sh: what durable timers cost (issue 19). Re-runnable;
# a few minutes on 2 cores with the defaults.
#
#   1. builds helpwired, helpwire-bench, the echo ceiling and timers_seed
#      with --config=opt (own output base), and the build before the timers
#      (commit BEFORE_COMMIT, a detached git worktree, --config=opt in its
#      own output base) unless BEFORE_BIN names one;
#   2. seeds N open tickets with running SLA clocks (timers_seed: through
#      the ticket rules, not gRPC), PER_SECOND due per second of the
#      clock's time, a warning and a breach each;
#   3. runs bench/timers_bench.py: helpwired --clock-file on that store,
#      resident memory and the CPU of hw-timers / hw-writer with no timer
#      due (baseline) and while the clock file moves so that RATES timers
#      fall due per real second; then Route against the echo ceiling, the
#      build before, this build, and this build on the seeded store with
#      the clock standing and with ROUTE_TIMER_RATE timers/s firing, in
#      alternating rounds;
#   4. prints the figures as Markdown (for bench/RESULTS.md, "Durable
#      timers"), with the date, the machine and the command.
#
# Environment (all optional):
#   N=1000000 PER_SECOND=1000 MINUTES=1   the seeded store
#   RATES="100 1000 10000" PHASE_SECONDS=20 BASE_SECONDS=10
#   ROUNDS=2 LEVEL=4x16 ROUTE_SECONDS=5 ROUTE_WARMUP=1 ROUTE_TIMER_RATE=1000
#                            (ROUNDS=0: no Route part)
#   BEFORE_COMMIT=7581b43    the build before issue 19; BEFORE_BIN=PATH skips building it,
#                            BEFORE_BIN=none leaves it out
#   SEED_DIR=DIR             where the store is seeded (default: a temporary directory,
#                            removed at the end; ~1.3 GB for 1,000,000 tickets)
#   OUT=FILE                 also write the Markdown there; RAW_DIR=DIR keeps timers-raw.json
#   BENCH_BAZEL_STARTUP="--output_base=$HOME/.cache/bazel-bench19"
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
log() { printf '%s\n' "$*" >&2; }

N=${N:-1000000}
PER_SECOND=${PER_SECOND:-1000}
MINUTES=${MINUTES:-1}
BEFORE_COMMIT=${BEFORE_COMMIT:-7581b43}
BAZEL_STARTUP=${BENCH_BAZEL_STARTUP:-"--output_base=$HOME/.cache/bazel-bench19"}

# ---- this build ----
log "== building (bazel $BAZEL_STARTUP build --config=opt)"
# (no bazel-* links: they would point this tree at the bench's output base)
# shellcheck disable=SC2086
if ! bazel $BAZEL_STARTUP build --config=opt --experimental_convenience_symlinks=ignore //server:helpwired \
  //bench:helpwire-bench //bench:ceiling //bench:timers_seed >/tmp/timers_bench.build.$$ 2>&1; then
  grep -E 'ERROR|error:' /tmp/timers_bench.build.$$ | head -20 >&2
  rm -f /tmp/timers_bench.build.$$
  log "timers_bench.sh: the build failed"
  exit 1
fi
rm -f /tmp/timers_bench.build.$$
# shellcheck disable=SC2086
BIN=$(bazel $BAZEL_STARTUP info --config=opt bazel-bin 2>/dev/null)

# ---- the build before the timers ----
BEFORE_BIN=${BEFORE_BIN:-}
if [ "$BEFORE_BIN" = none ]; then
  BEFORE_BIN=""
elif [ -z "$BEFORE_BIN" ]; then
  BEFORE_TREE=/tmp/helpwire-before-$BEFORE_COMMIT
  if [ ! -d "$BEFORE_TREE" ]; then
    git worktree add --detach "$BEFORE_TREE" "$BEFORE_COMMIT" >&2 || { log "timers_bench.sh: no worktree of $BEFORE_COMMIT"; exit 1; }
  fi
  log "== building $BEFORE_COMMIT in $BEFORE_TREE (--config=opt, own output base)"
  if ! (cd "$BEFORE_TREE" && bazel --output_base="$HOME/.cache/bazel-before-$BEFORE_COMMIT" build --config=opt \
    --experimental_convenience_symlinks=ignore \
    //server:helpwired >&2); then
    log "timers_bench.sh: the build of $BEFORE_COMMIT failed"
    exit 1
  fi
  BEFORE_BIN=$(cd "$BEFORE_TREE" && bazel --output_base="$HOME/.cache/bazel-before-$BEFORE_COMMIT" info \
    --config=opt bazel-bin 2>/dev/null)/server/helpwired
fi

# ---- the store ----
if [ -n "${SEED_DIR:-}" ]; then
  DATA=$SEED_DIR
  KEEP_DATA=1
else
  DATA=$(mktemp -d /tmp/helpwire-timers-store.XXXXXX)
  KEEP_DATA=0
fi
trap '[ "$KEEP_DATA" = 1 ] || rm -rf "$DATA"' EXIT
rm -rf "$DATA"
T0_MS=1767225600000
log "== seeding $N tickets into $DATA"
t0=$(date +%s.%N)
SEED=$("$BIN/bench/timers_seed" "$DATA" "$N" --per-second "$PER_SECOND" --minutes "$MINUTES" --t0-ms "$T0_MS") || {
  log "timers_bench.sh: timers_seed failed"
  exit 1
}
t1=$(date +%s.%N)
SEED_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
log "   $SEED (${SEED_S} s, $(du -sh "$DATA" | cut -f1))"

export SERVER=$BIN/server/helpwired BEFORE=$BEFORE_BIN BENCH=$BIN/bench/helpwire-bench CEILING=$BIN/bench/ceiling
export DATA N PER_SECOND MINUTES T0_MS
report() {
  printf 'Command: `bash bench/timers_bench.sh` (N=%s PER_SECOND=%s RATES="%s" PHASE_SECONDS=%s ROUNDS=%s LEVEL=%s ROUTE_SECONDS=%s ROUTE_TIMER_RATE=%s), %s.\n' \
    "$N" "$PER_SECOND" "${RATES:-100 1000 10000}" "${PHASE_SECONDS:-20}" "${ROUNDS:-2}" "${LEVEL:-4x16}" \
    "${ROUTE_SECONDS:-5}" "${ROUTE_TIMER_RATE:-1000}" "$(date -u '+%Y-%m-%d %H:%M UTC')"
  printf 'Machine: %s, %s vCPU %s, kernel %s, load average %s at the start.\n' \
    "$(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-Linux}")" "$(nproc)" \
    "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" "$(uname -r)" "$(cut -d' ' -f1-3 /proc/loadavg)"
  printf 'Seed: %s tickets in %s s (%s on disk); before: %s.\n\n' "$N" "$SEED_S" "$(du -sh "$DATA" | cut -f1)" \
    "$([ -n "$BEFORE_BIN" ] && echo "$BEFORE_COMMIT built with --config=opt" || echo "not measured")"
  "$PY" "$ROOT/bench/timers_bench.py"
}
if [ -n "${OUT:-}" ]; then
  report | tee "$OUT"
  exit "${PIPESTATUS[0]}"
fi
report
