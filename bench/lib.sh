# bench/lib.sh: what the benchmark scripts share, sourced (not run) after
# `cd` to the repository's root: the Python with grpcio, a log line to
# stderr, and the optimized build of the binaries a script runs.
#
# bench_opt_build NAME TARGET...: builds the targets with --config=opt
# (no bazel-* links: several scripts may build at once; BENCH_BAZEL_STARTUP
# holds bazel startup flags, default none), prints the build's errors and
# exits 2 when it fails, and sets BIN to the opt bazel-bin directory.

PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

log() { printf '%s\n' "$*" >&2; }

bench_opt_build() {
  local name=$1
  shift
  log "== building (bazel build --config=opt)"
  local build_log
  build_log=$(mktemp "/tmp/$name.build.XXXXXX")
  # shellcheck disable=SC2086
  if ! bazel ${BENCH_BAZEL_STARTUP:-} build --config=opt --experimental_convenience_symlinks=ignore \
    "$@" >"$build_log" 2>&1; then
    grep -E 'ERROR|error:' "$build_log" | head -20 >&2
    rm -f "$build_log"
    log "$name.sh: the build failed"
    exit 2
  fi
  rm -f "$build_log"
  # shellcheck disable=SC2086
  BIN=$(bazel ${BENCH_BAZEL_STARTUP:-} info --config=opt bazel-bin 2>/dev/null)
}
