#!/usr/bin/env bash
# Builds the browser example into OUT_DIR: index.html and bundle.js (app.js,
# the code protoc-gen-es generates from proto/helpwire/v1, and the npm
# packages it imports, bundled by esbuild). Serve OUT_DIR with any static
# file server (README.md).
# Usage: bash clients/examples/browser/build.sh OUT_DIR [NODE_MODULES]
#   NODE_MODULES: where @bufbuild/protobuf, @bufbuild/protoc-gen-es,
#   @connectrpc/connect(-web) and esbuild are installed; default
#   tests/js/node_modules (bash bazel/setup.sh installs them there).
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
root=$(cd "$here/../../.." && pwd)
out=${1:?usage: build.sh OUT_DIR [NODE_MODULES]}
modules=$(cd "${2:-$root/tests/js/node_modules}" && pwd)
for tool in protoc-gen-es esbuild; do
  [ -x "$modules/.bin/$tool" ] || { echo "build.sh: $modules/.bin/$tool missing (npm ci --prefix tests/js)" >&2; exit 1; }
done
command -v protoc >/dev/null || { echo "build.sh: protoc missing (Debian: protobuf-compiler)" >&2; exit 1; }
mkdir -p "$out/src/gen"
cp "$here/app.js" "$out/src/app.js"
cp "$here/index.html" "$out/index.html"
protoc -I "$root/proto" --plugin=protoc-gen-es="$modules/.bin/protoc-gen-es" \
  --es_out="$out/src/gen" --es_opt=target=js "$root"/proto/helpwire/v1/*.proto
NODE_PATH="$modules" "$modules/.bin/esbuild" "$out/src/app.js" --bundle --format=esm --target=es2020 \
  --outfile="$out/bundle.js" --log-level=warning
