#!/usr/bin/env bash
# Runs the whole test suite: first tests/packages_test.py (every system file
# the build and the scripts use comes from a package bazel/setup.sh installs;
# from the source tree with Debian's Python, outside Bazel, whose sandbox
# would hide the system) and tests/layers_test.py (no dependency of server/
# points up a layer; it runs bazel query) and tests/buf_test.py (buf lint,
# and buf breaking against proto/api-released.binpb), then every test
# target, then
# a short run of every fuzz harness (tests/fuzz.sh, clang and libFuzzer),
# then every test target again under AddressSanitizer+UBSan (the fuzz
# corpora's replays among them), then the concurrent ones under
# ThreadSanitizer.
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

# source_test FILE: a test run from the source tree, outside Bazel (the
# packages check needs the system Bazel's sandbox hides; the layers check
# runs bazel query): its case lines (everything when it fails) and counts.
source_test() {
  local out rc p f
  out=$(mktemp)
  echo "== $1"
  if [ -x /usr/bin/python3 ]; then
    /usr/bin/python3 "$1" >"$out" 2>&1
    rc=$?
  else
    echo "tests: /usr/bin/python3 not found (python3-minimal; bash bazel/setup.sh installs it)" >"$out"
    rc=1
  fi
  if [ "$rc" -eq 0 ]; then
    grep -aE ' \.\.\. |^note:|^\[  (PASSED|FAILED)  \]' "$out"
  else
    cat "$out"
  fi
  p=$(grep -aE '^\[  PASSED  \] [0-9]+ test' "$out" | awk '{s+=$4} END {print s+0}')
  f=$(grep -aE '^\[  FAILED  \] [0-9]+ test' "$out" | awk '{s+=$4} END {print s+0}')
  [ "$rc" -eq 0 ] || [ "$f" -gt 0 ] || f=1
  passed=$((passed + p))
  failed=$((failed + f))
  rm -f "$out"
}

# fuzz_smoke: every fuzz harness for a few seconds (tests/fuzz.sh; the
# clang build is incremental, in .fuzz), counted by harness.
fuzz_smoke() {
  local out rc p f
  out=$(mktemp)
  echo "== bash tests/fuzz.sh 3"
  bash tests/fuzz.sh 3 >"$out" 2>&1
  rc=$?
  if [ "$rc" -eq 0 ]; then
    grep -aE '^fuzz |^\[  (PASSED|FAILED)  \]' "$out"
  else
    cat "$out"
  fi
  p=$(grep -aE '^\[  PASSED  \] [0-9]+ test' "$out" | awk '{s+=$4} END {print s+0}')
  f=$(grep -aE '^\[  FAILED  \] [0-9]+ test' "$out" | awk '{s+=$4} END {print s+0}')
  [ "$rc" -eq 0 ] || [ "$f" -gt 0 ] || f=1
  passed=$((passed + p))
  failed=$((failed + f))
  rm -f "$out"
}

# The end of each failed or timed-out target's test.log, so a failure in CI
# can be read from CI's output (a later configuration's run overwrites the
# logs in bazel-testlogs).
show_failed_logs() {
  local out=$1 logs target
  shift
  grep -aqE '^//[^ ]+ +.*(FAILED|TIMEOUT|FLAKY)' "$out" || return 0
  logs=$(bazel info "$@" bazel-testlogs 2>/dev/null) || return 0
  grep -aE '^//[^ ]+ +.*(FAILED|TIMEOUT|FLAKY)' "$out" | awk '{print $1}' | while read -r target; do
    target=${target#//}
    echo "---- ${target} (bazel test $*): the end of its test.log"
    tail -n 80 "$logs/${target/://}/test.log" 2>/dev/null || echo "(no test.log)"
    echo "---- end of ${target}"
  done
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
  show_failed_logs "$out" "$@"
  count_run "$out"
  rm -f "$out"
}

source_test tests/packages_test.py
source_test tests/layers_test.py
source_test tests/buf_test.py
run
if [ "${1:-}" != "--quick" ]; then
  fuzz_smoke
  run --config=asan
  run --config=tsan --test_tag_filters=concurrent
fi

echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
