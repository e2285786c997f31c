#!/usr/bin/env bash
# bench/answers_eval.sh: the answers evaluation (bench/answers_eval.py) on
# the evaluation set in bench/answers/: builds helpwired, the helpwire CLI
# and the descriptor set with --config=opt (own output base, as the other
# benches), starts helpwired --demo on a fresh store, imports the help
# center (and bench/answers/synonyms.jsonl when it exists), routes every
# question and prints the Markdown report (date, machine, command, recall,
# wrong auto-answers, reliability curve, threshold sweep, misses).
# A minute or so on 2 cores once built. Exit status: the tool's (0 done,
# 1 short of --min-recall/--max-wrong, 2 an infrastructure error).
#
# Extra arguments go to the tool, e.g. --with-locale,
# --helpwired-arg=--answer-threshold=0.5, --min-recall 0.6 --max-wrong 0.02.
#
# Environment (all optional):
#   ANSWERS_DIR=bench/answers   the input files
#   OUT=FILE CSV=FILE JSON=FILE also write the Markdown / the per-question CSV / every figure there
#   HELPWIRED=PATH HELPWIRE_CLI=PATH HELPWIRE_PROTOSET=PATH  use these instead of building them
#   BENCH_BAZEL_STARTUP="--output_base=$HOME/.cache/bazel-bench"
#   BENCH_BAZEL_CONFIG="--config=opt"
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
log() { printf '%s\n' "$*" >&2; }

ANSWERS_DIR=${ANSWERS_DIR:-$ROOT/bench/answers}
BAZEL_STARTUP=${BENCH_BAZEL_STARTUP-"--output_base=$HOME/.cache/bazel-bench"}
BAZEL_CONFIG=${BENCH_BAZEL_CONFIG-"--config=opt"}

if [ ! -s "$ANSWERS_DIR/questions.jsonl" ]; then
  log "answers_eval.sh: no $ANSWERS_DIR/questions.jsonl (the evaluation set)"
  exit 2
fi

TARGETS=()
if [ -n "${HELPWIRED:-}" ]; then
  SERVER_NOTE="helpwired: $HELPWIRED"
else
  TARGETS+=(//server:helpwired)
  SERVER_NOTE="helpwired built with ${BAZEL_CONFIG:-the default configuration}"
fi
[ -n "${HELPWIRE_CLI:-}" ] || TARGETS+=(//clients/cli:helpwire)
[ -n "${HELPWIRE_PROTOSET:-}" ] || TARGETS+=(//proto:descriptor_set)
if [ "${#TARGETS[@]}" -gt 0 ]; then
  log "== building ${TARGETS[*]} (bazel $BAZEL_STARTUP build $BAZEL_CONFIG)"
  BUILD_LOG=$(mktemp /tmp/answers_eval.build.XXXXXX)
  # (no bazel-* links: they would point this tree at the bench's output base)
  # shellcheck disable=SC2086
  if ! bazel $BAZEL_STARTUP build $BAZEL_CONFIG --experimental_convenience_symlinks=ignore "${TARGETS[@]}" \
    >"$BUILD_LOG" 2>&1; then
    grep -E 'ERROR|error:' "$BUILD_LOG" | head -20 >&2
    rm -f "$BUILD_LOG"
    log "answers_eval.sh: the build failed"
    exit 2
  fi
  rm -f "$BUILD_LOG"
  # shellcheck disable=SC2086
  BIN=$(bazel $BAZEL_STARTUP info $BAZEL_CONFIG bazel-bin 2>/dev/null)
  export HELPWIRED=${HELPWIRED:-$BIN/server/helpwired}
  export HELPWIRE_CLI=${HELPWIRE_CLI:-$BIN/clients/cli/helpwire}
  export HELPWIRE_PROTOSET=${HELPWIRE_PROTOSET:-$BIN/proto/helpwire.protoset}
fi

ARGS=(--answers "$ANSWERS_DIR")
SYN_NOTE=""
if [ -s "$ANSWERS_DIR/synonyms.jsonl" ]; then
  ARGS+=(--synonyms "$ANSWERS_DIR/synonyms.jsonl")
  SYN_NOTE=" (with bench/answers/synonyms.jsonl)"
fi
[ -n "${CSV:-}" ] && ARGS+=(--out-csv "$CSV")
[ -n "${JSON:-}" ] && ARGS+=(--out-json "$JSON")
MD=$(mktemp /tmp/answers_eval.md.XXXXXX)
trap 'rm -f "$MD"' EXIT
"$PY" "$ROOT/bench/answers_eval.py" "${ARGS[@]}" --out-md "$MD" \
  --command "bash bench/answers_eval.sh$([ $# -gt 0 ] && printf ' %q' "$@")$SYN_NOTE; $SERVER_NOTE" "$@"
rc=$?
if [ -s "$MD" ]; then
  cat "$MD"
  [ -n "${OUT:-}" ] && cp "$MD" "$OUT"
fi
exit $rc
