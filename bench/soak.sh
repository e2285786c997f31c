#!/usr/bin/env bash
# bench/soak.sh: helpwired under 30 minutes of mixed load (issue 24),
# sampled every 10 s: memory, open fds, threads, LMDB map use, p99, errors;
# pass/fail rules printed, exit status 0 when they all pass (see
# bench/soak.py for the load and the rules). A plot in bench/plots/soak.png.
#
#   bash bench/soak.sh                  30 minutes
#   bash bench/soak.sh --minutes 3      a short run (checks the script)
#   bash bench/soak.sh --minutes 3 --sample-s 5 --route-rate 20
# Any soak.py option can follow (--route-threads, --senders, --articles,
# --import-every, --token-every, --warmup-frac, --server-flags "...").
#
# Builds helpwired, the CLI and the descriptor set with --config=opt (no
# bazel-* links are changed), unless HELPWIRED, CLI and PROTOSET name them.
# Environment: OUT=FILE also writes the Markdown there; RAW=FILE the samples
# (JSON); PLOT=FILE the plot (default bench/plots/soak.png, "" for none);
# KEEP_WORK=1 keeps the store and log; WORK_DIR=DIR puts them there;
# BENCH_BAZEL_STARTUP: bazel startup flags (default none).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/lib.sh
. bench/lib.sh

if [ -z "${HELPWIRED:-}" ] || [ -z "${CLI:-}" ] || [ -z "${PROTOSET:-}" ]; then
  bench_opt_build soak //server:helpwired //clients/cli:helpwire //proto:descriptor_set
  HELPWIRED=${HELPWIRED:-$BIN/server/helpwired}
  CLI=${CLI:-$BIN/clients/cli/helpwire}
  PROTOSET=${PROTOSET:-$BIN/proto/helpwire.protoset}
fi
export SERVER=$HELPWIRED CLI PROTOSET PYTHONDONTWRITEBYTECODE=1
PLOT=${PLOT-$ROOT/bench/plots/soak.png}
ARGS=()
[ -n "$PLOT" ] && ARGS+=(--plot "$PLOT")
[ -n "${RAW:-}" ] && ARGS+=(--raw "$RAW")

header() {
  printf 'Command: `bash bench/soak.sh%s`, %s.\n' "$(printf ' %s' "$@")" "$(date -u '+%Y-%m-%d %H:%M UTC')"
  printf 'Machine: %s, %s vCPU %s, kernel %s, load average %s at the start; helpwired and the Python load driver on it.\n\n' \
    "$(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-Linux}")" "$(nproc)" \
    "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" "$(uname -r)" "$(cut -d' ' -f1-3 /proc/loadavg)"
}
run() {
  header "$@"
  "$PY" "$ROOT/bench/soak.py" "${ARGS[@]}" "$@"
}
if [ -n "${OUT:-}" ]; then
  run "$@" | tee "$OUT"
  exit "${PIPESTATUS[0]}"
fi
run "$@"
