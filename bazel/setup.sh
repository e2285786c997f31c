#!/usr/bin/env bash
# Installs the Debian packages helpwire needs (only the missing ones; quiet
# when nothing is missing), then builds everything with Bazel, offline.
# With --run it then starts helpwired on 127.0.0.1:50051 (or the next free
# port) with its store in ./data, seeded with the demo help center; it
# prints where it listens, the demo tokens (first start only) and an
# example call, and runs until Ctrl-C.
#   --no-build       install only
#   --bench          also the benchmark packages (BENCH_PACKAGES below; bench/run.sh
#                    runs `bash bazel/setup.sh --bench --no-build` at its start)
#   --list-packages  print every package this script names (PACKAGES, the Node.js
#                    pair, BENCH_PACKAGES), one per line, and exit; installs nothing.
#                    tests/packages_test.py checks that every system file the build
#                    and the scripts use comes from one of them.
# Usage: bash bazel/setup.sh [--bench] [--no-build | --run | --list-packages]
set -euo pipefail
cd "$(dirname "$0")/.."

build=1 run=0 bench=0 list=0
for arg in "$@"; do
  case $arg in
  --no-build) build=0 ;;
  --run) run=1 ;;
  --bench) bench=1 ;;
  --list-packages) list=1 ;;
  *)
    echo "usage: bash bazel/setup.sh [--bench] [--no-build | --run | --list-packages]" >&2
    exit 2
    ;;
  esac
done

PACKAGES=(
  # build (libc6-dev, linux-libc-dev: the C library's and the kernel's headers;
  # libgcc-12-dev: gcc's own headers such as stddef.h and the sanitizer runtimes)
  bazel-bootstrap gcc g++ protobuf-c-compiler libprotobuf-dev
  libc6-dev linux-libc-dev libgcc-12-dev
  # server and clients
  libgrpc-dev libprotobuf-c-dev liblmdb-dev libxxhash-dev libcurl4-openssl-dev
  liburcu-dev libutf8proc-dev libstemmer-dev libjansson-dev libmicrohttpd-dev
  libssl-dev
  # the search index keeps long texts compressed
  libzstd-dev
  # replication: canonical raft and its libuv I/O backend
  libraft-dev libuv1-dev
  # business hours read the IANA time zones from /usr/share/zoneinfo
  tzdata
  # tests and benchmarks (python3-minimal: /usr/bin/python3; openssl: the TLS
  # tests make their certificates with it)
  libcmocka-dev python3-minimal python3-grpcio python3-protobuf lmdb-utils libsqlite3-dev
  libxapian-dev
  openssl
  # promtool checks the metrics exposition (tests/integration/server_test.py)
  prometheus
  # the front door's test runs docs/nginx-helpwire.conf (tests/integration/nginx_test.py)
  nginx
  # the gRPC-Web browser test (tests/integration/grpc_web_browser_test.py): headless
  # Chromium (protoc for the example's generated code comes with the example
  # clients below)
  chromium
  # the web chat widget's browser test and screenshots (tests/integration/
  # webchat_widget_test.py): Chinese glyphs for Chromium
  fonts-wqy-zenhei
  # the power-cut test's file system (tests/powerloss)
  fuse3 libfuse3-dev
  # the fuzz harnesses (tests/fuzz.sh): clang with libFuzzer and the sanitizer
  # runtimes, make for their incremental build
  clang libclang-rt-14-dev make
  # the example clients (clients/examples; tests/integration/examples_test.py):
  # protoc with the Python gRPC plugin (protoc also runs protoc-gen-es for the
  # browser example), and Go with grpc-go and its generators (grpc-go's
  # credentials build against golang.org/x/oauth2/google)
  protobuf-compiler protobuf-compiler-grpc
  golang-go golang-google-grpc-dev golang-google-genproto-dev golang-goprotobuf-dev protoc-gen-go-grpc
  golang-golang-x-oauth2-google-dev
)

# Node.js for the cross-language client test (tests/js), unless already there.
NODE_PACKAGES=(nodejs npm)

# Only with --bench: what bench/run.sh runs beyond the above.
BENCH_PACKAGES=(
  nghttp2-client # h2load, the cross-check of helpwire-bench
  gnuplot-nox    # bench/plots/*.png (bench/load_report.py)
  git            # bench/timers_bench.sh builds the commit before issue 19 from a worktree
)

if [ "$list" = 1 ]; then
  printf '%s\n' "${PACKAGES[@]}" "${NODE_PACKAGES[@]}" "${BENCH_PACKAGES[@]}"
  exit 0
fi

command -v node >/dev/null 2>&1 || PACKAGES+=("${NODE_PACKAGES[@]}")
[ "$bench" = 0 ] || PACKAGES+=("${BENCH_PACKAGES[@]}")

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# tests/js: the npm packages of the Node.js client tests and of buf (tests/buf_test.py),
# pinned by package-lock.json; installed again when the lock file is newer.
if { [ ! -f tests/js/node_modules/.package-lock.json ] ||
  [ tests/js/package-lock.json -nt tests/js/node_modules/.package-lock.json ]; } &&
  command -v npm >/dev/null 2>&1; then
  npm ci --no-audit --no-fund --silent --prefix tests/js >/dev/null ||
    { echo "setup: npm ci --prefix tests/js failed" >&2; exit 1; }
  echo "setup: installed tests/js/node_modules (npm ci)"
fi

if [ "$build" = 1 ]; then
  log=$(mktemp)
  if ! bazel build //... >"$log" 2>&1; then
    grep -E 'ERROR|error:' "$log" | head -40 >&2
    echo "setup: build failed (bazel build //...)" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
  echo "setup: built //... (binaries under bazel-bin/)"
fi

if [ "$run" = 1 ]; then
  port=50051
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
  exec bazel-bin/server/helpwired --listen "127.0.0.1:$port" --data ./data --demo
fi
