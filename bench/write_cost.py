#!/usr/bin/env python3
"""write_cost: what the durable write path of a running helpwired has cost
so far, as one JSON object, so that two snapshots around a load run give
the cost per write request (bench/run.sh, bench/load_report.py).

  write_cost.py PID METRICS_URL

Fields: wchar and write_bytes of /proc/PID/io (bytes handed to write(2)
and bytes sent to the block device), the CPU time of the hw-writer thread
(/proc/PID/task/*/stat, utime + stime, in seconds), and from /metrics the
store's counters: writes (helpwire_store_writes_total), commits, write_cpu
(the CPU of the thread running write groups, whatever thread that is),
done_cpu (of which done callbacks) and commit_s (wall time in commits)."""
import json
import os
import sys
import urllib.request

METRICS = {
    "helpwire_store_writes_total": "writes",
    "helpwire_store_commits_total": "commits",
    "helpwire_store_write_cpu_seconds_total": "write_cpu",
    "helpwire_store_done_cpu_seconds_total": "done_cpu",
    "helpwire_store_commit_seconds_total": "commit_s",
}


def proc_io(pid):
    out = {}
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            k, v = line.split(":")
            if k in ("wchar", "write_bytes"):
                out[k] = int(v)
    return out


def writer_cpu(pid):
    tick = os.sysconf("SC_CLK_TCK")
    total = None
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        if comm == "hw-writer":
            fields = stat[stat.rindex(")") + 2:].split()
            total = (total or 0) + (int(fields[11]) + int(fields[12])) / tick
    return total


def metrics(url):
    out = {}
    with urllib.request.urlopen(url, timeout=5) as r:
        for line in r.read().decode().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] in METRICS:
                out[METRICS[parts[0]]] = float(parts[1])
    return out


def main():
    pid, url = int(sys.argv[1]), sys.argv[2]
    snap = proc_io(pid)
    snap["writer_thread_cpu"] = writer_cpu(pid)
    snap.update(metrics(url))
    json.dump(snap, sys.stdout)
    print()


if __name__ == "__main__":
    main()
