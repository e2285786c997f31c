#!/usr/bin/env bash
# bench/attachments_bench.sh: what storing attachments in helpwired costs
# (issue 22: content-addressed pieces in the LMDB store, measured against
# plain files with one fsync each, and Route's p99 while files upload).
# Re-runnable; about a minute on 2 cores.
#
#   1. builds helpwired and the descriptor set with --config=opt;
#   2. runs bench/attachments_bench.py: uploads of 64 KiB, 1 MiB and 10 MiB
#      files through the real server, the same bytes written as files with
#      fsync per file in the same run, Route p99 idle and during uploads;
#   3. prints the figures as Markdown (bench/RESULTS.md, "Attachments").
#
# Environment (all optional):
#   SIZES="65536 1048576 10485760"  COUNT_<size>=N (default ~48 MiB per size)
#   PIECE=262144                    PutChunk piece size (the bridges' helper's; at most 1048576)
#   ROUTE_N=400                     Route calls per phase
#   BENCH_TMP=DIR                   where the store and the files go (default $TMPDIR)
#   BENCH_BAZEL_STARTUP="--output_base=..."
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_opt_build attachments_bench //server:helpwired //proto:descriptor_set
printf '%s\n' "== measuring" >&2
echo "Command: bench/attachments_bench.sh (PIECE=${PIECE:-262144}), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -sr)"
echo
SERVER="$BIN/server/helpwired" PROTOSET="$BIN/proto/helpwire.protoset" exec "$PY" bench/attachments_bench.py
