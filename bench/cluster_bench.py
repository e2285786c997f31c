"""cluster_bench.py: what replication costs in throughput and bytes (issue
20). Run it through bench/cluster_bench.sh, which builds the binaries.

Per round, in alternating order (single,cluster then cluster,single ...):
  - single: a fresh helpwired --demo (one node, its own store);
  - cluster: a fresh 3-replica cluster (--cluster-* on loopback, every
    replica on this machine, sharing its cores with each other and with
    the client), the load sent to the leader; and Route sent to a
    follower (its writes forwarded to the leader);
for each workload (durable Route, durable CreateTicket) and LEVEL,
helpwire-bench runs WARMUP + DURATION seconds. While it runs,
/proc/PID/io, the threads' CPU of every server and /proc/stat are sampled
every SAMPLE_S seconds; those figures are deltas between the samples
nearest to the measured window (its end, and DURATION seconds before it),
per request of helpwire-bench's throughput over that time. /metrics is
read only before and after the run (a scrape walks the outbox backlog and
the pending timers: not free), and its figures are ratios of one counter
to another over the whole run (raft entries per store write, raft bytes
per write, writes per LMDB commit). After each cluster's runs the three
stores are stopped and compared (mdb_dump -a, the store's creation time
left out).

Figures per workload and level: req/s and p50/p99 of both, the ratio
replicated / single (per round, then the median); for the cluster: raft
entries per second (helpwire_replication_proposed_total), requests per
entry, raft log bytes per write (helpwire_replication_proposed_bytes_total),
bytes the leader process wrote per request (/proc/PID/io write_bytes)
beside the single node's, and what the followers wrote.

With CEILING set (bench/cluster_bench.sh sets it), each round first runs
the echo ceiling (bench/ceiling) at every level and workload, and a last
table gives the durable write path's figures (issue 25) for the single
node and the leader: req/s as a ratio of the ceiling's in the same round,
wchar per write (/proc/PID/io), the write path's CPU per write
(helpwire_store_write_cpu_seconds_total) and the hw-writer thread's CPU
per request.

Environment: SERVER, BENCH, PROTOSET, CEILING (paths); ROUNDS=3 LEVELS="4x16"
DURATION=10 WARMUP=2 WORKLOADS="Route CreateTicket" FOLLOWER=1 SAMPLE_S=0.5;
RAW=FILE keeps the raw figures (JSON); KEEP_WORK=1 keeps the data dirs.
Prints Markdown on stdout, progress on stderr. Standard library + grpcio.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

E = os.environ
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))


def log(*a):
    print(*a, file=sys.stderr, flush=True)


SERVER = E.get("SERVER", "")
CEILING = E.get("CEILING", "")
BENCH = E.get("BENCH", "")
PROTOSET = E.get("PROTOSET", "")

_used_ports = set()
FAILURES = []  # runs that failed (a server died): reported, work dir kept
DIVERGED = []  # per cluster: are the three stores the same after the run


def free_port():
    """A loopback port nobody listens on now (and not handed out before in
    this run: a replica restarted later keeps its ports)."""
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        if p not in _used_ports:
            _used_ports.add(p)
            return p


def pct(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def median(v):
    v = sorted(v)
    if not v:
        return float("nan")
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2.0


def metrics(port, timeout=10):
    """{name: value} of the unlabelled samples of /metrics."""
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=timeout).read().decode()
    out = {}
    for m in re.finditer(r"^([a-z_]+) (\S+)$", body, re.M):
        out[m.group(1)] = float(m.group(2))
    return out


def io_bytes(pid):
    """{"write_bytes": ..., "wchar": ...} of /proc/PID/io (empty when gone)."""
    out = {}
    try:
        for line in open("/proc/%d/io" % pid):
            k, _, v = line.partition(":")
            if k in ("write_bytes", "wchar"):
                out[k] = int(v)
    except OSError:
        pass
    return out


def io_write_bytes(pid):
    return io_bytes(pid).get("write_bytes")


TICK = os.sysconf("SC_CLK_TCK")


def threads_cpu(pid):
    """{thread name: cpu seconds} summed per name, and "(process)"."""
    out = {}
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                stat = open("/proc/%d/task/%s/stat" % (pid, tid)).read()
            except OSError:
                continue
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            f = stat[stat.rindex(")") + 2 :].split()
            out[name] = out.get(name, 0.0) + (int(f[11]) + int(f[12])) / TICK
        f = open("/proc/%d/stat" % pid).read()
        f = f[f.rindex(")") + 2 :].split()
        out["(process)"] = (int(f[11]) + int(f[12])) / TICK
    except OSError:
        pass
    return out


def machine_cpu():
    """Jiffies of all CPUs: idle (idle + iowait) and total."""
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return {"idle": f[3] + f[4], "total": sum(f[:8])}


class Node:
    """One helpwired process (single node or a replica); its ports stay the
    same across restarts."""

    NO_LIMITS = ("--sender-rate", "0", "--new-customers-rate", "0")  # load, not abuse

    def __init__(self, work, name, extra=(), demo=True, limits=NO_LIMITS):
        """limits: the per-sender limit flags (default: off; () keeps
        helpwired's defaults)."""
        self.name = name
        self.limits = list(limits)
        self.data = os.path.join(work, name)
        self.port = free_port()
        self.mport = free_port()
        self.extra = list(extra)
        self.demo = demo
        self.proc = None
        self.tokens = {}
        self.logpath = os.path.join(work, name + ".log")
        self.starts = 0

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def start(self):
        os.makedirs(self.data, exist_ok=True)
        args = [SERVER, "--data", self.data, "--listen", self.address, "--metrics", "127.0.0.1:%d" % self.mport]
        args += self.limits
        if self.demo:
            args.append("--demo")
        args += self.extra
        logf = open(self.logpath, "ab")
        logf.write(("== start %d: %s\n" % (self.starts, " ".join(args))).encode())
        logf.flush()
        self.starts += 1
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=logf)
        logf.close()
        self.lines = []
        self.listening = threading.Event()
        t = threading.Thread(target=self._read_stdout, args=(self.proc,), daemon=True)
        t.start()

    def _read_stdout(self, proc):
        for raw in proc.stdout:
            line = raw.decode(errors="replace")
            self.lines.append(line)
            if line.startswith("helpwired token "):
                w = line.split()
                self.tokens[w[2]] = w[3]
            elif line.startswith("helpwired listening on "):
                self.listening.set()
        proc.stdout.close()

    def wait_listening(self, timeout=30):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.listening.is_set():
                return True
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s:\n%s" % (self.name, self.proc.returncode, self.tail_log()))
            time.sleep(0.05)
        raise RuntimeError("%s did not listen within %d s:\n%s" % (self.name, timeout, self.tail_log()))

    def tail_log(self, n=30):
        try:
            return "".join(open(self.logpath, errors="replace").readlines()[-n:])
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            self.proc.send_signal(sig)

    def stop(self, timeout=60):
        """SIGTERM and wait; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log("   %s did not stop in %d s: SIGKILL" % (self.name, timeout))
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def sample(self):
        """/proc only: cheap enough to take every half second (a /metrics
        scrape is not: it counts the outbox backlog and the pending timers
        by walking them, ~0.1 s of CPU on a store this bench fills)."""
        io = io_bytes(self.proc.pid)
        return {"t": time.monotonic(), "io": io.get("write_bytes"), "wchar": io.get("wchar"),
                "cpu": threads_cpu(self.proc.pid),
                **machine_cpu()}


_api = None


def api():
    global _api
    if _api is None:
        import hwclient

        _api = hwclient.Api(PROTOSET)
    return _api


def client(address, token):
    import hwclient

    return hwclient.Client(address, api=api(), token=token)


def cluster_status(address, token, timeout=2):
    c = client(address, token)
    try:
        return c.call("helpwire.v1.Cluster/GetClusterStatus", timeout=timeout)
    finally:
        c.close()


class Cluster:
    """Three replicas on loopback; extra: more helpwired flags for each."""

    def __init__(self, work, n=3, extra=()):
        self.nodes = []
        ids = list(range(1, n + 1))
        raft = {i: free_port() for i in ids}
        for i in ids:
            self.nodes.append(Node(work, "replica%d" % i, demo=True))
        self.peers = ",".join("%d=127.0.0.1:%d@%s" % (i, raft[i], self.nodes[i - 1].address) for i in ids)
        for i, node in zip(ids, self.nodes):
            node.id = i
            node.extra = ["--cluster-id", str(i), "--cluster-raft", "127.0.0.1:%d" % raft[i],
                          "--cluster-peers", self.peers] + list(extra)
        self.tokens = {}

    def start(self, timeout=40):
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            node.wait_listening(timeout)
        end = time.monotonic() + timeout
        while not self.tokens.get("admin"):
            for node in self.nodes:
                if node.tokens.get("admin"):
                    self.tokens = dict(node.tokens)
            if time.monotonic() > end:
                raise RuntimeError("no replica printed the demo tokens")
            time.sleep(0.05)
        self.wait_ready(timeout)

    def token(self):
        return self.tokens["admin"]

    def statuses(self, nodes=None, timeout=2):
        out = {}
        for node in nodes or self.nodes:
            if not node.alive():
                continue
            try:
                out[node.id] = cluster_status(node.address, self.token(), timeout)
            except Exception:  # grpc.RpcError: not up (yet)
                pass
        return out

    def leader(self, timeout=2):
        """The node a majority's statuses name as writable leader, or None."""
        for node_id, st in self.statuses(timeout=timeout).items():
            if st.state == 3 and st.writable:  # RAFT_STATE_LEADER
                return self.nodes[node_id - 1]
        return None

    def wait_ready(self, timeout=40):
        """Every live replica answers, agrees on a writable leader, and has
        applied the leader's commit index."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            st = self.statuses()
            live = [n for n in self.nodes if n.alive()]
            leaders = [i for i, s in st.items() if s.state == 3 and s.writable]
            if len(st) == len(live) and len(leaders) == 1:
                lead = st[leaders[0]]
                if all(s.leader_id == leaders[0] and s.applied_index >= lead.commit_index for s in st.values()):
                    return self.nodes[leaders[0] - 1]
            time.sleep(0.1)
        raise RuntimeError("the cluster did not settle in %d s: %s" % (timeout, {
            i: (s.state, s.leader_id, s.applied_index, s.commit_index) for i, s in self.statuses().items()}))

    def stop(self):
        return [n.stop() for n in self.nodes]

    def frozen_dumps(self, attempts=20):
        """mdb_dump -a of every replica's store at one applied index: waits
        until they settle, pauses all of them at once (SIGSTOP; LMDB readers
        need no lock the writer holds), dumps, resumes; again when one had
        applied an entry the others had not yet (they learn of a commit in
        the leader's next message, so replicas stopped one by one, or at a
        moment's notice, can stand a few entries apart: those are in their
        raft logs and applied at their next start). Returns the dumps, or
        None for a replica that does not run."""
        import cluster_fault

        dumps = [None] * len(self.nodes)
        for _ in range(attempts):
            try:
                self.wait_ready(30)
            except RuntimeError as e:
                log("   %s" % e)
            live = [n for n in self.nodes if n.alive()]
            for n in live:
                n.proc.send_signal(signal.SIGSTOP)
            try:
                dumps = [cluster_fault.mdb_dump(n.data)[0] if n in live else None for n in self.nodes]
            finally:
                for n in live:
                    n.proc.send_signal(signal.SIGCONT)
            indexes = {cluster_fault.applied_in_dump(d) for d in dumps if d is not None}
            if len(indexes) <= 1:
                return dumps
            time.sleep(0.3)
        return dumps


# ---------------------------------------------------------------- throughput


class Sampler:
    """Samples nodes every period seconds on a thread."""

    def __init__(self, nodes, period):
        self.nodes, self.period = nodes, period
        self.samples = []
        self.stopping = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stopping.is_set():
            t = time.monotonic()
            try:
                self.samples.append((t, [n.sample() for n in self.nodes]))
            except Exception as e:  # a scrape that failed: skip it
                log("   sample failed: %s" % e)
            self.stopping.wait(max(0.0, self.period - (time.monotonic() - t)))

    def stop(self):
        self.stopping.set()
        self.t.join()
        self.samples.append((time.monotonic(), [n.sample() for n in self.nodes]))

    def window(self, seconds):
        """(first, last) samples: the last one, and the one nearest to
        `seconds` before it."""
        last = self.samples[-1]
        want = last[0] - seconds
        first = min(self.samples, key=lambda s: abs(s[0] - want))
        return first, last


def run_bench(target, token, mix, level, duration, warmup, js, extra=()):
    conns, streams = level.split("x")
    args = [BENCH, "--target", target, "--token", token, "--mix", mix, "--connections", conns,
            "--concurrency", streams, "--duration", str(duration), "--warmup", str(warmup), "--json", js] + list(extra)
    r = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise RuntimeError("helpwire-bench failed: %s" % r.stderr.decode()[-400:])
    return json.load(open(js))


def measure(kind, rnd, mix, level, target, token, writer, nodes, work, duration, warmup, period):
    """One helpwire-bench run with sampling; writer: the node whose store
    writes count the requests (single node or leader)."""
    js = os.path.join(work, "%s-%s-%s-%d.json" % (kind, mix, level, rnd))
    wi = nodes.index(writer)
    m0 = metrics(writer.mport)
    sampler = Sampler(nodes, period)
    load1 = open("/proc/loadavg").read().split()[0]
    try:
        d = run_bench(target, token, mix, level, duration, warmup, js)
    finally:
        sampler.stop()
    m1 = metrics(writer.mport)
    # /proc figures: between the samples nearest to the measured window,
    # per request of the bench's throughput over that time
    (t0, a), (t1, b) = sampler.window(duration)
    dt = t1 - t0
    reqs = d["throughput_rps"] * dt

    # /metrics figures: over the whole run (seed, warm-up, window), as
    # ratios of one counter to another
    def delta(name):
        return m1.get(name, 0.0) - m0.get(name, 0.0)

    writes = delta("helpwire_store_writes_total")
    commits = delta("helpwire_store_commits_total")
    row = {
        "kind": kind, "round": rnd, "mix": mix, "level": level, "load1": load1,
        "rps": d["throughput_rps"], "p50_ms": d["latency_us"]["p50"] / 1e3, "p99_ms": d["latency_us"]["p99"] / 1e3,
        "errors": d["errors"], "requests": d["requests"], "window_s": dt, "run_writes": writes,
        "writes_per_commit": writes / commits if commits else 0.0,
        "writer_io_per_write": (b[wi]["io"] - a[wi]["io"]) / reqs if reqs else 0.0,
        "writer_wchar_per_write": (b[wi]["wchar"] - a[wi]["wchar"]) / reqs if reqs else 0.0,
        # the write path's CPU (write functions and commits, the store's
        # own clock), per store write over the whole run
        "write_cpu_us": delta("helpwire_store_write_cpu_seconds_total") * 1e6 / writes if writes else 0.0,
    }
    row["commits_per_s"] = row["rps"] / row["writes_per_commit"] if row["writes_per_commit"] else 0.0

    def cpu(i, name):
        return (b[i]["cpu"].get(name, 0.0) - a[i]["cpu"].get(name, 0.0)) / dt * 1000.0 if dt else 0.0

    row["writer_cpu_ms_per_s"] = cpu(wi, "(process)")
    row["writer_thread_us"] = cpu(wi, "hw-writer") * 1000.0 / row["rps"] if row["rps"] else 0.0
    names = sorted((n for n in b[wi]["cpu"] if n != "(process)"), key=lambda n: -cpu(wi, n))
    row["writer_threads"] = [(n, round(cpu(wi, n))) for n in names[:4]]
    row["machine_busy"] = 1.0 - (b[0]["idle"] - a[0]["idle"]) / (b[0]["total"] - a[0]["total"])
    if len(nodes) > 1:
        others = [i for i in range(len(nodes)) if i != wi]
        row["follower_cpu_ms_per_s"] = [cpu(i, "(process)") for i in others]
        fnames = sorted((n for n in b[others[0]]["cpu"] if n != "(process)"), key=lambda n: -cpu(others[0], n))
        row["follower_threads"] = [(n, round(cpu(others[0], n))) for n in fnames[:4]]
        entries = delta("helpwire_replication_proposed_total")
        ebytes = delta("helpwire_replication_proposed_bytes_total")
        wpe = writes / entries if entries else 0.0
        row.update({
            "entries_per_s": row["rps"] / wpe if wpe else 0.0,
            "writes_per_entry": wpe,
            "raft_bytes_per_write": ebytes / writes if writes else 0.0,
            "raft_bytes_per_entry": ebytes / entries if entries else 0.0,
            "follower_io_per_write": sum(b[i]["io"] - a[i]["io"] for i in others) / len(others) / reqs if reqs else 0.0,
            "failed_proposals": delta("helpwire_replication_proposals_failed_total"),
        })
    return row


def run_ceiling(work, rnd, mixes, levels, duration, warmup):
    """The echo ceiling (bench/ceiling: the same gRPC core answering every
    method at once, nothing behind it) at each level and workload: what
    the ratios of the write-path goals are taken against."""
    out = open(os.path.join(work, "ceiling-%d.out" % rnd), "w+")
    proc = subprocess.Popen([CEILING, "--listen", "127.0.0.1:0", "--threads", str(os.cpu_count() or 2)],
                            stdout=out, stderr=subprocess.STDOUT)
    try:
        port = None
        end = time.monotonic() + 10
        while port is None and time.monotonic() < end:
            out.seek(0)
            m = re.search(r"^listening on .*:(\d+)$", out.read(), re.M)
            port = m and int(m.group(1))
            time.sleep(0.05)
        if port is None:
            raise RuntimeError("the ceiling did not start")
        rows = []
        for level in levels:
            for mix in mixes:
                js = os.path.join(work, "ceiling-%s-%s-%d.json" % (mix, level, rnd))
                d = run_bench("127.0.0.1:%d" % port, "-", mix, level, duration, warmup, js, ["--no-seed"])
                log("-- round %d: ceiling, %s at %s: %.0f req/s" % (rnd, mix, level, d["throughput_rps"]))
                rows.append({"kind": "ceiling", "round": rnd, "mix": mix, "level": level, "rps": d["throughput_rps"]})
        return rows
    finally:
        proc.terminate()
        proc.wait()
        out.close()


def run_single(work, rnd, mixes, levels, duration, warmup, period):
    node = Node(work, "single-%d" % rnd)
    node.start()
    try:
        node.wait_listening()
        end = time.monotonic() + 20
        while "admin" not in node.tokens and time.monotonic() < end:
            time.sleep(0.05)
        rows = []
        for level in levels:
            for mix in mixes:
                log("-- round %d: single node, %s at %s" % (rnd, mix, level))
                r = measure("single", rnd, mix, level, node.address, node.tokens["admin"], node, [node], work,
                            duration, warmup, period)
                log("   %.0f req/s, p99 %.2f ms, %.2f writes per commit, %.0f B written per request; CPU ms/s %.0f %s, "
                    "machine busy %.0f%%" % (r["rps"], r["p99_ms"], r["writes_per_commit"], r["writer_io_per_write"],
                                             r["writer_cpu_ms_per_s"], r["writer_threads"], 100 * r["machine_busy"]))
                rows.append(r)
        return rows
    finally:
        rc = node.stop()
        if rc not in (0, None):
            log("   single node exited with %s" % rc)


def run_cluster(work, rnd, mixes, levels, duration, warmup, period, follower):
    cdir = os.path.join(work, "cluster-%d" % rnd)
    os.makedirs(cdir)
    cl = Cluster(cdir)
    cl.start()
    try:
        rows = []
        for level in levels:
            for mix in mixes + (["Route@follower"] if follower else []):
                leader = cl.wait_ready()
                target = leader
                kind = "cluster"
                bench_mix = mix
                if mix == "Route@follower":
                    target = [n for n in cl.nodes if n is not leader][0]
                    kind, bench_mix = "follower", "Route"
                log("-- round %d: cluster, %s at %s (to %s, leader %s)" % (rnd, bench_mix, level, target.name,
                                                                          leader.name))
                try:
                    r = measure(kind, rnd, bench_mix, level, target.address, cl.token(), leader, cl.nodes, work,
                                duration, warmup, period)
                except Exception as e:  # a replica died under load: say which, keep its log
                    dead = [(n.name, n.proc.returncode) for n in cl.nodes if not n.alive()]
                    log("   FAILED: %s; replicas exited: %s; logs kept in %s" % (str(e)[:300], dead, cdir))
                    for n in cl.nodes:
                        if not n.alive():
                            log("   --- %s log tail:\n%s" % (n.name, n.tail_log(15)))
                    FAILURES.append({"round": rnd, "kind": kind, "mix": bench_mix, "level": level, "error": str(e)[:300],
                                     "exited": dead, "dir": cdir})
                    return rows
                log("   %.0f req/s, p99 %.2f ms, %.0f entries/s, %.1f requests per entry, %.0f raft B per write, "
                    "leader %.0f B written per request; CPU ms/s leader %.0f %s, followers %s %s, machine busy %.0f%%" % (
                        r["rps"], r["p99_ms"], r["entries_per_s"], r["writes_per_entry"], r["raft_bytes_per_write"],
                        r["writer_io_per_write"], r["writer_cpu_ms_per_s"], r["writer_threads"],
                        ["%.0f" % x for x in r["follower_cpu_ms_per_s"]], r["follower_threads"],
                        100 * r["machine_busy"]))
                rows.append(r)
        return rows
    finally:
        # the replicas' stores after the run, at one applied index: the
        # same records?
        import cluster_fault

        dumps = cl.frozen_dumps()
        for n, rc in zip(cl.nodes, cl.stop()):
            if rc not in (0, None):
                log("   %s exited with %s" % (n.name, rc))
        if all(d is not None for d in dumps):
            norm = [cluster_fault.normalised(d) for d in dumps]
            same = len(set(norm)) == 1
            DIVERGED.append({"round": rnd, "identical": same, "records_differing": 0 if same else sum(
                len(set(norm[0].splitlines()) ^ set(x.splitlines())) for x in norm[1:]) // 2, "dir": cdir})
            log("   stores after the run: %s" % ("identical (but meta/schema created_unix_ms)" if same else
                                                 "DIFFERENT (%s kept)" % cdir))
            if not same:
                FAILURES.append({"round": rnd, "kind": "cluster", "mix": "-", "level": "-", "exited": [],
                                 "error": "the replicas' stores differ after the run (mdb_dump -a)", "dir": cdir})


def report(rows, levels, mixes, rounds, duration, warmup):
    out = []
    out.append("Per run, in the order run (single: one helpwired; cluster: the leader of 3 replicas; follower: "
               "Route sent to a follower, forwarded to the leader):")
    out.append("")
    out.append("| round | server | workload | level | load1 | req/s | p50 ms | p99 ms | errors | LMDB commits/s | "
               "writes per LMDB commit | raft entries/s | requests per entry | raft B per write | "
               "writer B written per request | each follower B written per request | CPU ms/s: writer / followers | "
               "machine busy |")
    out.append("|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for r in rows:
        if r["kind"] == "ceiling":
            continue
        c = r["kind"] != "single"
        out.append("| %d | %s | %s | %s | %s | %.0f | %.2f | %.2f | %d | %.0f | %.1f | %s | %s | %s | %.0f | %s | %s | %.0f%% |" % (
            r["round"], r["kind"], r["mix"], r["level"], r["load1"], r["rps"], r["p50_ms"], r["p99_ms"], r["errors"],
            r["commits_per_s"], r["writes_per_commit"],
            "%.0f" % r["entries_per_s"] if c else "-", "%.1f" % r["writes_per_entry"] if c else "-",
            "%.0f" % r["raft_bytes_per_write"] if c else "-", r["writer_io_per_write"],
            "%.0f" % r["follower_io_per_write"] if c else "-",
            "%.0f" % r["writer_cpu_ms_per_s"] + (" / " + " + ".join("%.0f" % x for x in r["follower_cpu_ms_per_s"])
                                                if c else ""), 100 * r["machine_busy"]))
    out.append("")
    out.append("Medians over the %d rounds (ratio: median of the per-round ratios replicated / single):" % rounds)
    out.append("")
    out.append("| workload | level | single req/s | replicated req/s | ratio (goal >= 0.7) | single p50 / p99 ms | "
               "replicated p50 / p99 ms | raft entries/s | requests per entry | raft log B per write | "
               "B written per request: leader / single | writes per LMDB commit: leader / single |")
    out.append("|---|---|---:|---:|---:|---|---|---:|---:|---:|---|---|")
    for level in levels:
        for mix, kind in [(m, "cluster") for m in mixes] + [("Route", "follower")]:
            rs = [r for r in rows if r["kind"] == kind and r["mix"] == mix and r["level"] == level]
            ss = [r for r in rows if r["kind"] == "single" and r["mix"] == mix and r["level"] == level]
            if not rs or not ss:
                continue
            single = {r["round"]: r for r in ss}
            ratios = [r["rps"] / single[r["round"]]["rps"] for r in rs if r["round"] in single]

            def m(lst, key):
                return median([r[key] for r in lst])

            out.append("| %s%s | %s | %.0f | %.0f | %.2f | %.2f / %.2f | %.2f / %.2f | %.0f | %.1f | %.0f | "
                       "%.0f / %.0f | %.1f / %.1f |" % (
                           mix, " (to a follower, forwarded)" if kind == "follower" else "", level,
                           m(ss, "rps"), m(rs, "rps"), median(ratios), m(ss, "p50_ms"), m(ss, "p99_ms"),
                           m(rs, "p50_ms"), m(rs, "p99_ms"), m(rs, "entries_per_s"), m(rs, "writes_per_entry"),
                           m(rs, "raft_bytes_per_write"), m(rs, "writer_io_per_write"), m(ss, "writer_io_per_write"),
                           m(rs, "writes_per_commit"), m(ss, "writes_per_commit")))
    if any(r["kind"] == "ceiling" for r in rows):
        out.append("")
        out.append("The durable write path's goals (issue 25), medians over the rounds: each server's req/s as a "
                   "ratio of the echo ceiling's in the same round; wchar (bytes handed to write(2), /proc/PID/io) "
                   "and the write path's CPU (helpwire_store_write_cpu_seconds_total) per write of the single "
                   "node and of the leader; hw-writer thread CPU per request:")
        out.append("")
        out.append("| workload | level | ceiling req/s | ratio single / leader | wchar B per write single / leader | "
                   "write-path CPU µs per write single / leader | hw-writer µs per request single / leader |")
        out.append("|---|---|---:|---|---|---|---|")
        for level in levels:
            for mix in mixes:
                cs = {r["round"]: r["rps"] for r in rows if r["kind"] == "ceiling" and r["mix"] == mix
                      and r["level"] == level}
                ss = [r for r in rows if r["kind"] == "single" and r["mix"] == mix and r["level"] == level]
                rs = [r for r in rows if r["kind"] == "cluster" and r["mix"] == mix and r["level"] == level]
                if not cs or not ss or not rs:
                    continue

                def ratio(lst):
                    return median([r["rps"] / cs[r["round"]] for r in lst if cs.get(r["round"])])

                def m2(key, fmt="%.0f"):
                    return (fmt + " / " + fmt) % (median([r.get(key, 0.0) for r in ss]),
                                                  median([r.get(key, 0.0) for r in rs]))

                out.append("| %s | %s | %.0f | %.2f / %.2f | %s | %s | %s |" % (
                    mix, level, median(list(cs.values())), ratio(ss), ratio(rs), m2("writer_wchar_per_write"),
                    m2("write_cpu_us", "%.1f"), m2("writer_thread_us", "%.1f")))
    return "\n".join(out)


def main():
    rounds = int(E.get("ROUNDS", "3"))
    levels = E.get("LEVELS", E.get("LEVEL", "4x16")).split()
    mixes = E.get("WORKLOADS", "Route CreateTicket").split()
    duration = float(E.get("DURATION", "10"))
    warmup = float(E.get("WARMUP", "2"))
    follower = E.get("FOLLOWER", "1") == "1"
    period = float(E.get("SAMPLE_S", "0.5"))
    work = tempfile.mkdtemp(prefix="helpwire-cluster-bench.", dir=E.get("WORK_DIR"))
    rows = []
    try:
        for rnd in range(1, rounds + 1):
            order = ["single", "cluster"] if rnd % 2 else ["cluster", "single"]
            if CEILING:
                rows += run_ceiling(work, rnd, mixes, levels, duration, warmup)
            for kind in order:
                if kind == "single":
                    rows += run_single(work, rnd, mixes, levels, duration, warmup, period)
                else:
                    rows += run_cluster(work, rnd, mixes, levels, duration, warmup, period, follower)
        print(report(rows, levels, mixes, rounds, duration, warmup))
        for f in FAILURES:
            print("\nFAILED run: round %(round)d, %(kind)s %(mix)s at %(level)s: %(error)s; exited: %(exited)s" % f)
        if DIVERGED:
            print("\nThe three stores after each cluster's runs (mdb_dump -a, the store's creation time left out): " +
                  ", ".join("round %d %s" % (d["round"], "identical" if d["identical"] else
                                             "**differ** (~%d records)" % d["records_differing"]) for d in DIVERGED))
        if E.get("RAW"):
            with open(E["RAW"], "w") as f:
                json.dump(rows, f, indent=1)
    finally:
        if E.get("KEEP_WORK") or FAILURES:
            log("work dir kept: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
