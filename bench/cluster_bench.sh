#!/usr/bin/env bash
# bench/cluster_bench.sh: what replication costs (issue 20). Re-runnable.
#
#   bash bench/cluster_bench.sh            throughput and bytes per write:
#       durable Route and CreateTicket against a single helpwired and
#       against the leader of a fresh 3-replica cluster on this machine,
#       alternating rounds; Route also sent to a follower (forwarded);
#       each round also runs the echo ceiling, and a last table gives
#       the write path's ratios, bytes and CPU per write (issue 25);
#       bench/cluster_bench.py.
#   bash bench/cluster_bench.sh fault      failover under kill -9: steady
#       writes over all replicas, the leader killed every INTERVAL s and
#       restarted; nothing acknowledged may be lost, stores identical at
#       the end; the write gap per failover; bench/cluster_fault.py (also
#       bench/cluster_fault.sh).
#
# Both build helpwired, helpwire-bench and the descriptor set with
# --config=opt in their own output base, then print Markdown (for
# bench/RESULTS.md, "Replication (issue 20)") with the date, the machine
# and the command. Every replica, the single node and the client share
# this machine's cores.
#
# Environment (all optional):
#   throughput: ROUNDS=3 LEVELS="4x16" DURATION=10 WARMUP=2
#               WORKLOADS="Route CreateTicket" FOLLOWER=1 SAMPLE_S=0.5
#   fault:      ROUNDS=20 INTERVAL=10 RESTART_AFTER=2 THREADS=4 READERS=1
#               CONFIGS="default slow" (default: helpwired's election 500 ms and
#               heartbeat 50 ms; slow: 1000 and 100) SETTLE_S=60
#   RAW=FILE keeps the raw figures (JSON); OUT=FILE also writes the Markdown
#   there; KEEP_WORK=1 keeps the data directories and logs; WORK_DIR=DIR
#   puts them there (default /tmp).
#   BENCH_BAZEL_STARTUP="--output_base=$HOME/.cache/bazel-bench20"
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
log() { printf '%s\n' "$*" >&2; }
MODE=${1:-throughput}
case "$MODE" in
  throughput | fault) ;;
  *)
    log "usage: bench/cluster_bench.sh [throughput|fault]"
    exit 2
    ;;
esac
BAZEL_STARTUP=${BENCH_BAZEL_STARTUP:-"--output_base=$HOME/.cache/bazel-bench20"}

log "== building (bazel $BAZEL_STARTUP build --config=opt)"
BUILD_LOG=$(mktemp /tmp/cluster_bench.build.XXXXXX)
# (no bazel-* links: they would point this tree at the bench's output base)
# shellcheck disable=SC2086
if ! bazel $BAZEL_STARTUP build --config=opt --experimental_convenience_symlinks=ignore //server:helpwired \
  //bench:helpwire-bench //bench:ceiling //proto:descriptor_set >"$BUILD_LOG" 2>&1; then
  grep -E 'ERROR|error:' "$BUILD_LOG" | head -20 >&2
  rm -f "$BUILD_LOG"
  log "cluster_bench.sh: the build failed"
  exit 1
fi
rm -f "$BUILD_LOG"
# shellcheck disable=SC2086
BIN=$(bazel $BAZEL_STARTUP info --config=opt bazel-bin 2>/dev/null)
export SERVER=$BIN/server/helpwired BENCH=$BIN/bench/helpwire-bench CEILING=$BIN/bench/ceiling PROTOSET=$BIN/proto/helpwire.protoset
export PYTHONDONTWRITEBYTECODE=1

report() {
  if [ "$MODE" = throughput ]; then
    printf 'Command: `bash bench/cluster_bench.sh` (ROUNDS=%s LEVELS="%s" DURATION=%s WARMUP=%s WORKLOADS="%s"), %s.\n' \
      "${ROUNDS:-3}" "${LEVELS:-${LEVEL:-4x16}}" "${DURATION:-10}" "${WARMUP:-2}" "${WORKLOADS:-Route CreateTicket}" \
      "$(date -u '+%Y-%m-%d %H:%M UTC')"
  else
    printf 'Command: `bash bench/cluster_bench.sh fault` (ROUNDS=%s INTERVAL=%s RESTART_AFTER=%s THREADS=%s CONFIGS="%s"), %s.\n' \
      "${ROUNDS:-20}" "${INTERVAL:-10}" "${RESTART_AFTER:-2}" "${THREADS:-4}" "${CONFIGS:-default slow}" \
      "$(date -u '+%Y-%m-%d %H:%M UTC')"
  fi
  printf 'Machine: %s, %s vCPU %s, kernel %s, load average %s at the start; every replica and the client on it.\n\n' \
    "$(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-Linux}")" "$(nproc)" \
    "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" "$(uname -r)" "$(cut -d' ' -f1-3 /proc/loadavg)"
  if [ "$MODE" = throughput ]; then
    "$PY" "$ROOT/bench/cluster_bench.py"
  else
    "$PY" "$ROOT/bench/cluster_fault.py"
  fi
}
if [ -n "${OUT:-}" ]; then
  report | tee "$OUT"
  exit "${PIPESTATUS[0]}"
fi
report
