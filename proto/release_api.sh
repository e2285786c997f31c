#!/usr/bin/env bash
# Records the API as released: builds a buf image of proto/ as it is at a
# commit (default HEAD) into proto/api-released.binpb, the baseline that
# tests/run.sh checks with `buf breaking --against`. Run it on the release
# commit at each release and commit the image. Needs tests/js/node_modules
# (bash bazel/setup.sh installs it).
# Usage: bash proto/release_api.sh [COMMIT]
set -euo pipefail
cd "$(dirname "$0")/.."
commit=${1:-HEAD}
buf=$PWD/tests/js/node_modules/.bin/buf
[ -x "$buf" ] || { echo "release_api: $buf missing (bash bazel/setup.sh --no-build)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git archive "$commit" proto | tar -x -C "$tmp"
cp buf.yaml "$tmp/"
(cd "$tmp" && "$buf" build --exclude-source-info -o api.binpb)
cp "$tmp/api.binpb" proto/api-released.binpb
echo "release_api: proto/api-released.binpb = proto/ at $(git rev-parse --short "$commit")"
