#!/usr/bin/env bash
# Builds the Go example offline with Debian's Go packages (GOPATH mode, no
# modules): generates helpwire.v1's Go code with protoc, protoc-gen-go and
# protoc-gen-go-grpc into OUT/src/helpwire.io/api/helpwire/v1 (the protos'
# go_package), then builds OUT/bin/helpwire-example.
# Usage: bash clients/examples/go/build.sh [OUT]   (default: ./gen/go-example)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
proto=${HELPWIRE_PROTO:-$here/../../../proto}
out=$(mkdir -p "${1:-gen/go-example}" && cd "${1:-gen/go-example}" && pwd)
mkdir -p "$out/src/helpwire-example" "$out/bin"
protoc -I"$proto" --go_out="$out/src" --go-grpc_out="$out/src" "$proto"/helpwire/v1/*.proto
cp "$here/main.go" "$out/src/helpwire-example/"
cd "$out/src/helpwire-example"
GO111MODULE=off GOPATH="$out:/usr/share/gocode" GOCACHE="$out/cache" GOPROXY=off \
  go build -o "$out/bin/helpwire-example" .
echo "$out/bin/helpwire-example"
