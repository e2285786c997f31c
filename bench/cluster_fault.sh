#!/usr/bin/env bash
# bench/cluster_fault.sh: the failover benchmark (bench/cluster_fault.py);
# the same as `bash bench/cluster_bench.sh fault` (see there for the knobs).
exec bash "$(dirname "$0")/cluster_bench.sh" fault
