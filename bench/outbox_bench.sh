#!/usr/bin/env bash
# Outbox delivery benchmarks (bench/outbox_bench.py): throughput per bridge
# against a fake upstream, and healthy-recipient latency with N blocked
# recipients, as ratios against baselines measured in the same run.
# Builds the binaries, then runs with Debian's python3 (python3-grpcio).
#   bench/outbox_bench.sh                       # everything, defaults
#   bench/outbox_bench.sh --only latency --blocked 0,100,300
#   bench/outbox_bench.sh --concurrency 8       # a bridge sending 8 at once
# Figures go to stdout; record them in bench/RESULTS.md ("Outbox delivery").
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bazel build //server:helpwired //proto:descriptor_set //clients/telegram:telegram-bridge \
    //clients/whatsapp:whatsapp-bridge //clients/webchat:webchat-bridge >&2
export TEST_TMPDIR="${TEST_TMPDIR:-$(mktemp -d /tmp/outbox-bench.XXXXXX)}"
export PYTHONDONTWRITEBYTECODE=1
exec /usr/bin/python3 bench/outbox_bench.py "$@"
