#!/usr/bin/env bash
# Installs the Debian packages helpwire needs (only the missing ones; quiet
# when nothing is missing), then builds everything with Bazel, offline.
# With --run it then starts helpwired on 127.0.0.1:50051 (or the next free
# port) with its store in ./data, seeded with the demo help center; it
# prints where it listens, the demo tokens (first start only) and an
# example call, and runs until Ctrl-C.
# Usage: bash bazel/setup.sh [--no-build | --run]
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  # build
  bazel-bootstrap gcc g++ protobuf-c-compiler
  # server and clients
  libgrpc-dev libprotobuf-c-dev liblmdb-dev libxxhash-dev libcurl4-openssl-dev
  liburcu-dev libutf8proc-dev libstemmer-dev libjansson-dev libmicrohttpd-dev
  libssl-dev
  # tests and benchmarks
  libcmocka-dev python3-grpcio python3-protobuf lmdb-utils libsqlite3-dev
  # the power-cut test's file system (tests/powerloss)
  fuse3 libfuse3-dev
)

# Node.js for the cross-language client test (tests/js), unless already there.
command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs npm)

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

# tests/js: the Node.js client test's npm packages, pinned by package-lock.json.
if [ ! -d tests/js/node_modules ] && command -v npm >/dev/null 2>&1; then
  npm ci --no-audit --no-fund --silent --prefix tests/js >/dev/null ||
    { echo "setup: npm ci --prefix tests/js failed" >&2; exit 1; }
  echo "setup: installed tests/js/node_modules (npm ci)"
fi

if [ "${1:-}" != "--no-build" ]; then
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

if [ "${1:-}" = "--run" ]; then
  port=50051
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
  exec bazel-bin/server/helpwired --listen "127.0.0.1:$port" --data ./data --demo
fi
