#!/usr/bin/env bash
# bench/crashloop.sh: 100 rounds of kill -9 under mixed writes (issue 24);
# after each restart every acknowledged write must be there: acknowledged,
# found, lost (must be 0); exit status 1 when one is lost (see
# bench/crashloop.py for the writes and the checks).
#
#   bash bench/crashloop.sh                  100 rounds
#   bash bench/crashloop.sh --rounds 10      a short run (checks the script)
# Any crashloop.py option can follow (--threads, --kill-min, --kill-max,
# --seed, --server-flags "...").
#
# Builds helpwired and the descriptor set with --config=opt (no bazel-*
# links are changed), unless HELPWIRED and PROTOSET name them.
# Environment: OUT=FILE also writes the Markdown there; KEEP_WORK=1 keeps
# the store and log (kept anyway when a write is lost); WORK_DIR=DIR puts
# them there; BENCH_BAZEL_STARTUP: bazel startup flags (default none).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/lib.sh
. bench/lib.sh

if [ -z "${HELPWIRED:-}" ] || [ -z "${PROTOSET:-}" ]; then
  bench_opt_build crashloop //server:helpwired //proto:descriptor_set
  HELPWIRED=${HELPWIRED:-$BIN/server/helpwired}
  PROTOSET=${PROTOSET:-$BIN/proto/helpwire.protoset}
fi
export SERVER=$HELPWIRED PROTOSET PYTHONDONTWRITEBYTECODE=1

run() {
  printf 'Command: `bash bench/crashloop.sh%s`, %s.\n' "$(printf ' %s' "$@")" "$(date -u '+%Y-%m-%d %H:%M UTC')"
  printf 'Machine: %s, %s vCPU %s, kernel %s, load average %s at the start; store on %s.\n\n' \
    "$(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-Linux}")" "$(nproc)" \
    "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" "$(uname -r)" \
    "$(cut -d' ' -f1-3 /proc/loadavg)" "$(df -T "${WORK_DIR:-/tmp}" | awk 'NR == 2 {print $2}')"
  "$PY" "$ROOT/bench/crashloop.py" "$@"
}
if [ -n "${OUT:-}" ]; then
  run "$@" | tee "$OUT"
  exit "${PIPESTATUS[0]}"
fi
run "$@"
