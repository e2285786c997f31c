#!/usr/bin/env bash
# Builds every fuzz harness of tests/fuzz (one NAME.c and corpus/NAME each, with its
# NAME_fuzz_test target in tests/fuzz/BUILD) with clang and
# -fsanitize=fuzzer,address,undefined, and runs each for SECONDS with
# libFuzzer: seeds from tests/fuzz/corpus/NAME (and NAME.dict when there is
# one); inputs it finds go to .fuzz/corpus/NAME (kept between runs, not in
# git). Prints one line per harness (executions, seconds, result) and exits
# 1 when any harness found a crash, a leak, a timeout or ran out of memory;
# the input that did it is kept in .fuzz/crashes/NAME/ (copy it into
# tests/fuzz/corpus/NAME once fixed: `bazel test //tests/fuzz:NAME_fuzz_test`
# then replays it).
#
# The sources of a harness are the .c files in the srcs of its Bazel target
# and its dependencies (`bazel query`), generated protobuf-c files included,
# built into .fuzz/obj by make (only what changed is rebuilt); the
# harness's fakes (tests/fuzz/fake_*.c) are linked first, with
# --allow-multiple-definition, so that they stand in for what they fake.
# Bazel's own toolchain (gcc) builds the same harnesses as replay tests.
# The harnesses' stores go in a directory under /dev/shm removed at the end.
#
# Usage: bash tests/fuzz.sh [-j JOBS] SECONDS [NAME...]
#   SECONDS   per harness (e.g. 3 for a smoke run, 120+ for a long one); 0 only builds
#   NAME...   only these harnesses (default: all)
#   -j JOBS   harnesses run at once (default 1); each uses one core
# Environment: FUZZ_ARGS adds libFuzzer flags (e.g. FUZZ_ARGS=-runs=100000).
set -uo pipefail
cd "$(dirname "$0")/.."

jobs=1
if [ "${1:-}" = "-j" ]; then
  jobs=$2
  shift 2
fi
if ! [[ "${1:-}" =~ ^[0-9]+$ ]]; then
  echo "usage: bash tests/fuzz.sh [-j JOBS] SECONDS [NAME...]" >&2
  exit 2
fi
seconds=$1
shift

if ! command -v clang >/dev/null; then
  echo "fuzz: clang not found (bash bazel/setup.sh installs clang and libclang-rt-14-dev)" >&2
  exit 1
fi

if [ $# -gt 0 ]; then
  names=("$@")
else
  # A harness is a NAME.c with a corpus directory (the fakes and helpers have none).
  names=()
  for d in tests/fuzz/corpus/*/; do
    n=$(basename "$d")
    [ -f "tests/fuzz/$n.c" ] && names+=("$n")
  done
fi

out=.fuzz
mkdir -p "$out/obj" "$out/bin" "$out/logs"

targets=()
for n in "${names[@]}"; do targets+=("//tests/fuzz:${n}_fuzz_test"); done
# The replay builds (gcc) also make the generated protobuf-c sources.
if ! bazel build "${targets[@]}" >"$out/logs/bazel-build.log" 2>&1; then
  tail -n 30 "$out/logs/bazel-build.log" >&2
  echo "fuzz: bazel build failed" >&2
  exit 1
fi
bin=$(bazel info bazel-bin 2>/dev/null)

CFLAGS="-std=gnu11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined"
CFLAGS+=" -fno-sanitize-recover=all -I. -I$bin -I$bin/proto -Wno-unused-command-line-argument"
LDFLAGS="-fsanitize=fuzzer,address,undefined -Wl,--allow-multiple-definition"

# sources NAME: the .c files in the srcs of NAME's target and its
# dependencies (a bridge's main.c, included by its harness, is a textual
# header there), without replay.c; generated ones under bazel-bin. The
# harness's fakes (tests/fuzz/fake_*.c) come first: linked with
# --allow-multiple-definition, their definitions win over the ones they
# stand in for (net.c's calls, the bridges' httpd, drain and client).
sources() {
  local t="//tests/fuzz:$1_fuzz_test" all f
  all=$(bazel query "labels(srcs, deps($t))" 2>/dev/null | grep -E '^//.*\.c$' | grep -v '^//tests/fuzz:replay\.c$' |
    sed -E 's|^//||; s|^:|./|; s|:|/|')
  for f in $all; do
    if [ -f "$f" ]; then echo "$f"; else echo "$bin/$f"; fi
  done | awk '{ print (($0 ~ /^tests\/fuzz\/fake_/) ? 0 : 1), $0 }' | sort -s -k1,1n | cut -d' ' -f2
}

# linkopts NAME: the linker flags of the libraries NAME's target depends on.
linkopts() {
  bazel query --output=build "attr(linkopts, '.', deps(//tests/fuzz:$1_fuzz_test))" 2>/dev/null |
    grep -E '^ *linkopts' | grep -oE '"[^"]+"' | tr -d '"' | awk '!seen[$0]++' | tr '\n' ' '
}

build() {
  local n=$1 srcs objs s mk
  srcs=$(sources "$n")
  if [ -z "$srcs" ]; then
    echo "fuzz: $n: no sources (bazel query)" >&2
    return 1
  fi
  objs=""
  for s in $srcs; do objs+=" $out/obj/${s#/}.o"; done
  mk="$out/obj/$n.mk"
  {
    echo "all: $out/bin/$n"
    echo "$out/bin/$n: $objs"
    printf '\tclang %s -o $@ $^ %s\n' "$LDFLAGS" "$(linkopts "$n")"
    for s in $srcs; do
      echo "$out/obj/${s#/}.o: $s"
      printf '\t@mkdir -p $(@D)\n\tclang %s -MMD -MP -c $< -o $@\n' "$CFLAGS"
      echo "-include $out/obj/${s#/}.d"
    done
  } >"$mk"
  make -s -j"$(nproc)" -f "$mk" >"$out/logs/$n.build.log" 2>&1 || {
    tail -n 30 "$out/logs/$n.build.log" >&2
    echo "fuzz: $n: build failed" >&2
    return 1
  }
}

# run NAME: fuzzes NAME for $seconds; prints its line; 0 when clean.
run() {
  local n=$1 log dict="" execs rc result t0 t1
  log="$out/logs/$n.log"
  mkdir -p "$out/corpus/$n" "$out/crashes/$n"
  [ -f "tests/fuzz/$n.dict" ] && dict="-dict=tests/fuzz/$n.dict"
  t0=$(date +%s)
  # shellcheck disable=SC2086
  "$out/bin/$n" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$out/crashes/$n/" $dict ${FUZZ_ARGS:-} "$out/corpus/$n" "tests/fuzz/corpus/$n" >"$log" 2>&1
  rc=$?
  t1=$(date +%s)
  execs=$(grep -aoE 'stat::number_of_executed_units: [0-9]+' "$log" | tail -n 1 | awk '{print $2}')
  if [ "$rc" -eq 0 ]; then
    result=ok
  elif grep -aq 'ERROR: libFuzzer: timeout' "$log"; then
    result=TIMEOUT
  elif grep -aq 'ERROR: LeakSanitizer' "$log"; then
    result=LEAK
  elif grep -aqE 'ERROR: libFuzzer: out-of-memory|malloc\(.*\) exceeds limit' "$log"; then
    result=OOM
  else
    result=CRASH
  fi
  printf 'fuzz %-10s %12s execs %5ss  %s\n' "$n" "${execs:-?}" "$((t1 - t0))" "$result"
  if [ "$result" != ok ]; then
    grep -aE 'ERROR: |SUMMARY: |Test unit written to|^ *#[0-9]+ 0x.* in ' "$log" | head -n 25 | sed 's/^/    /'
    echo "    (whole log: $log)"
    return 1
  fi
}

failed=0
for n in "${names[@]}"; do
  build "$n" || failed=$((failed + 1))
done
# The harnesses' stores (fuzz_tmp.h), in memory when it can be: gone after
# the run even when a crash skipped their own clean-up.
FUZZ_TMPDIR=$(mktemp -d /dev/shm/helpwire-fuzz-run-XXXXXX 2>/dev/null || mktemp -d)
export FUZZ_TMPDIR
trap 'rm -rf "$FUZZ_TMPDIR"' EXIT
[ "$failed" -eq 0 ] || exit 1
if [ "$seconds" -eq 0 ]; then
  echo "fuzz: built ${names[*]} in $out/bin"
  exit 0
fi

printf 'fuzz: %d harnesses, %ss each (clang %s)\n' "${#names[@]}" "$seconds" "$(clang -dumpversion)"
# Up to $jobs harnesses at once, each printing into its own file; their
# lines in name order at the end.
pids=()
for n in "${names[@]}"; do
  (run "$n" >"$out/logs/$n.result" 2>&1)&
  pids+=("$!")
  if [ "${#pids[@]}" -ge "$jobs" ]; then
    wait "${pids[0]}"
    pids=("${pids[@]:1}")
  fi
done
wait
pass=0
for n in "${names[@]}"; do
  cat "$out/logs/$n.result"
  if grep -qE '^fuzz .* ok$' "$out/logs/$n.result"; then pass=$((pass + 1)); else failed=$((failed + 1)); fi
done
echo "[  PASSED  ] $pass tests."
[ "$failed" -eq 0 ] || echo "[  FAILED  ] $failed tests."
[ "$failed" -eq 0 ]
