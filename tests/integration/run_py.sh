#!/usr/bin/env bash
# Runs one Python integration test with Debian's interpreter (which has
# python3-grpcio), from the Bazel runfiles tree.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
cd "${TEST_SRCDIR:-$here/../..}/${TEST_WORKSPACE:-helpwire}"
export PYTHONPATH="$PWD/tests/integration"
export PYTHONDONTWRITEBYTECODE=1
exec /usr/bin/python3 "tests/integration/$1"
