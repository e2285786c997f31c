#!/usr/bin/env bash
# Runs the whole test suite: every test target, then again under
# AddressSanitizer+UBSan, then the concurrent ones under ThreadSanitizer.
# Ends with "N passed, N failed", counting test cases (a target that fails
# without reporting its cases counts as one failure). Exit status 0 only
# when nothing failed.
# Usage: bash tests/run.sh [--quick]   (--quick: plain build only)
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0

# count_logs LABEL... : adds the cases reported by each target's test.log.
count_run() {
  local out="$1"
  local line target status log p f
  while read -r target status; do
    log="bazel-testlogs/${target#//}"
    log="${log/://}/test.log"
    p=0; f=0
    if [ -f "$log" ]; then
      p=$(grep -aE '^\[  PASSED  \] [0-9]+ test' "$log" | awk '{s+=$4} END {print s+0}')
      f=$(grep -aE '^\[  FAILED  \] [0-9]+ test' "$log" | awk '{s+=$4} END {print s+0}')
    fi
    if [ "$status" = "PASSED" ]; then
      [ "$p" -gt 0 ] || p=1
      passed=$((passed + p))
      failed=$((failed + f))
    else
      [ "$f" -gt 0 ] || f=1
      passed=$((passed + p))
      failed=$((failed + f))
    fi
  done < <(grep -aE '^//[^ ]+ +(\(cached\) )?(PASSED|FAILED|TIMEOUT|NO STATUS|FLAKY|FAILED TO BUILD)' "$out" |
           sed -E 's/ +\(cached\)//' | awk '{print $1, $2}')
}

run() {
  local out
  out=$(mktemp)
  echo "== bazel test $* //..."
  bazel test "$@" //... 2>&1 | tee "$out" | grep -aE '^//|Executed|ERROR' || true
  if grep -aq 'No test targets were found' "$out"; then
    :
  elif ! grep -aqE '^//' "$out"; then
    echo "tests: bazel test $* produced no results" >&2
    failed=$((failed + 1))
  fi
  count_run "$out"
  rm -f "$out"
}

run
if [ "${1:-}" != "--quick" ]; then
  run --config=asan
  run --config=tsan --test_tag_filters=concurrent
fi

echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
