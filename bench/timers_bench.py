"""timers_bench.py: the durable-timer benchmark's measurements (run it
through bench/timers_bench.sh, which builds the binaries and seeds the
store). Standard library only.

Part 1, timers: helpwired --clock-file on the seeded store (timers_seed:
N tickets, ticket i created at T0 + i*1000/P ms, an SLA warning at
created + T/2 and a breach at created + T, so 2P timers fall due per
second of the clock's time once both streams run).
  - baseline: the clock stands before the first due time (N timers
    pending, none due) for BASE_SECONDS: resident memory and CPU;
  - catch-up: the clock jumps to the first breach; the warnings already
    due (T/2 of them at P/s) fire at once (a restart after downtime);
  - phases: the clock moves at the speed that makes RATE timers due per
    real second, for PHASE_SECONDS each; sampled every second from /proc
    (VmRSS, RssAnon, RssFile; utime+stime of the threads hw-timers,
    hw-writer, hw-notifier and of the process) and /metrics
    (helpwire_timers_fired_total); the target is the count of due times
    the clock passed, known from the seed's formula.
Part 2, Route: helpwire-bench Route at LEVEL against the echo ceiling, the
build before the timers (BEFORE, fresh --demo store), this build (fresh
--demo store), this build on the seeded store with the clock standing and
with timers firing at ROUTE_TIMER_RATE/s; in ROUNDS rounds, alternating.

Prints Markdown (the RESULTS.md section's figures) on stdout, progress on
stderr.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

E = os.environ


def env_int(name, default):
    return int(E.get(name, default))


def log(*a):
    print(*a, file=sys.stderr, flush=True)


SERVER = E["SERVER"]
BEFORE = E.get("BEFORE", "")
BENCH = E["BENCH"]
CEILING = E["CEILING"]
DATA = E["DATA"]  # seeded store (copied per server start when COPY=1)
N = env_int("N", 1000000)
P = env_int("PER_SECOND", 1000)
T0 = env_int("T0_MS", 1767225600000)
T_MS = env_int("MINUTES", 1) * 60000
RATES = [int(r) for r in E.get("RATES", "100 1000 10000").split()]
PHASE_SECONDS = float(E.get("PHASE_SECONDS", "20"))
BASE_SECONDS = float(E.get("BASE_SECONDS", "10"))
ROUNDS = env_int("ROUNDS", 2)
LEVEL = E.get("LEVEL", "4x16")
ROUTE_SECONDS = E.get("ROUTE_SECONDS", "5")
ROUTE_WARMUP = E.get("ROUTE_WARMUP", "1")
ROUTE_TIMER_RATE = env_int("ROUTE_TIMER_RATE", 1000)
WORK = tempfile.mkdtemp(prefix="helpwire-timers.")
CORES = os.cpu_count() or 1


def due_count(x):
    """Timers (warnings and breaches) due at or before clock time x."""
    total = 0
    for off in (T_MS // 2, T_MS):
        d = x - T0 - off
        if d >= 0:
            total += min(N, ((d + 1) * P - 1) // 1000 + 1)
    return total


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Clock:
    """Writes the clock file: base + elapsed real time * speed, every 5 ms."""

    def __init__(self, path, start_ms):
        self.path, self.ms, self.speed = path, start_ms, 0.0
        self.lock = threading.Lock()
        self.stop = False
        self._write(start_ms)
        self.t = threading.Thread(target=self._run, daemon=True)
        self.last = time.monotonic()
        self.t.start()

    def _write(self, ms):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % ms)
        os.replace(tmp, self.path)

    def _run(self):
        while not self.stop:
            time.sleep(0.005)
            with self.lock:
                now = time.monotonic()
                if self.speed:
                    self.ms += (now - self.last) * 1000.0 * self.speed
                self.last = now
                self._write(int(self.ms))

    def set(self, ms=None, speed=None):
        with self.lock:
            now = time.monotonic()
            if self.speed:
                self.ms += (now - self.last) * 1000.0 * self.speed
            self.last = now
            if ms is not None:
                self.ms = ms
            if speed is not None:
                self.speed = speed
            self._write(int(self.ms))
            return int(self.ms)

    def now(self):
        return self.set()

    def close(self):
        self.stop = True
        self.t.join()


TICK = os.sysconf("SC_CLK_TCK")


def threads_cpu(pid):
    """{thread name: cpu seconds} summed per name, and the process total."""
    out = {}
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
    return out


def mem_kb(pid):
    m = {}
    for line in open("/proc/%d/status" % pid):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            m[k] = int(v.split()[0])
    return m


def metric(port, name):
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=60).read().decode()
    m = re.search(r"^%s (\S+)$" % re.escape(name), body, re.M)
    return float(m.group(1)) if m else None


class Server:
    def __init__(self, binary, data, clock_file=None, demo=True):
        self.port = free_port()
        self.mport = free_port() if clock_file else None
        args = [binary, "--listen", "127.0.0.1:%d" % self.port, "--data", data]
        if demo:
            args.append("--demo")
        if clock_file:
            args += ["--clock-file", clock_file, "--metrics", "127.0.0.1:%d" % self.mport]
        self.logf = open(os.path.join(WORK, "helpwired.log"), "a")
        self.p = subprocess.Popen(args, stdout=self.logf, stderr=subprocess.STDOUT)
        self.data = data
        self.token = None
        for _ in range(200):
            if self.p.poll() is not None:
                raise RuntimeError("helpwired exited with %s" % self.p.returncode)
            try:
                for line in open(os.path.join(data, "demo-tokens.txt")):
                    w = line.split()
                    if len(w) >= 4 and w[2] == "admin":
                        self.token = w[3]
            except OSError:
                pass
            if self.token and self._answers():
                return
            time.sleep(0.1)
        raise RuntimeError("helpwired did not answer within 20 s")

    def _answers(self):
        r = subprocess.run(
            [BENCH, "--target", "127.0.0.1:%d" % self.port, "--requests", "1", "--warmup", "0", "--no-seed",
             "--mix", "Search", "--connections", "1", "--concurrency", "1", "--connect-timeout-ms", "200",
             "--token", self.token], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return r.returncode == 0

    def stop(self):
        self.p.terminate()
        self.p.wait(timeout=60)
        self.logf.close()


def sample(srv):
    # /metrics first: its scrape's CPU (MHD thread) stays out of the window
    # this sample opens (and comes after the one it closes).
    fired = metric(srv.mport, "helpwire_timers_fired_total") or 0.0
    return {"t": time.monotonic(), "cpu": threads_cpu(srv.p.pid), "mem": mem_kb(srv.p.pid), "fired": fired}


def window(a, b, clock_a, clock_b, mems):
    dt = b["t"] - a["t"]
    fired = b["fired"] - a["fired"]
    due = due_count(clock_b) - due_count(clock_a)

    def cpu(name):
        return (b["cpu"].get(name, 0.0) - a["cpu"].get(name, 0.0)) / dt * 1000.0  # ms per s

    return {
        "seconds": dt, "fired": fired, "fired_per_s": fired / dt, "due_per_s": due / dt,
        "timers_ms_per_s": cpu("hw-timers"), "writer_ms_per_s": cpu("hw-writer"),
        "notifier_ms_per_s": cpu("hw-notifier"), "process_ms_per_s": cpu("(process)"),
        "timers_us_per_fired": cpu("hw-timers") * 1000.0 / (fired / dt) if fired else 0.0,
        "writer_us_per_fired": cpu("hw-writer") * 1000.0 / (fired / dt) if fired else 0.0,
        "rss_max_kb": max(m["VmRSS"] for m in mems), "rss_end_kb": mems[-1]["VmRSS"],
        "anon_max_kb": max(m["RssAnon"] for m in mems), "file_max_kb": max(m["RssFile"] for m in mems),
        "backlog_end": due_count(clock_b) - (b["fired"]),
    }


def measure(srv, clock, seconds):
    a = sample(srv)
    ca = clock.now()
    mems = [a["mem"]]
    end = a["t"] + seconds
    while time.monotonic() < end:
        time.sleep(min(1.0, max(0.0, end - time.monotonic())))
        mems.append(mem_kb(srv.p.pid))
    b = sample(srv)
    cb = clock.now()
    mems.append(b["mem"])
    return window(a, b, ca, cb, mems)


def part_timers():
    log("== timers: helpwired on the seeded store (%d tickets)" % N)
    clock_file = os.path.join(WORK, "clock")
    first_warn = T0 + T_MS // 2
    clock = Clock(clock_file, first_warn - 1000)
    srv = Server(SERVER, DATA, clock_file)
    res = {"phases": []}
    try:
        fired0 = metric(srv.mport, "helpwire_timers_fired_total") or 0
        res["fired_at_start"] = fired0
        res["pending_at_start"] = metric(srv.mport, "helpwire_timers_pending")
        time.sleep(1)
        log("-- baseline: no timer due, %.0f s" % BASE_SECONDS)
        res["baseline"] = measure(srv, clock, BASE_SECONDS)
        # catch-up: the clock jumps to the first breach
        t = time.monotonic()
        s0 = sample(srv)
        c = clock.set(ms=T0 + T_MS, speed=0)
        want = due_count(c)
        mems = [s0["mem"]]
        while (metric(srv.mport, "helpwire_timers_fired_total") or 0) - fired0 < want:
            time.sleep(0.25)  # /metrics is not free: look 4 times a second
            mems.append(mem_kb(srv.p.pid))
            if time.monotonic() - t > 600:
                raise RuntimeError("the catch-up did not end in 600 s")
        s1 = sample(srv)
        mems.append(s1["mem"])
        res["catchup"] = window(s0, s1, c - 1, c, mems)
        res["catchup"]["due"] = want
        log("   catch-up: %d due timers fired in %.2f s" % (want, s1["t"] - s0["t"]))
        for rate in RATES:
            speed = rate / (2.0 * P)  # clock seconds per real second
            left = 2 * N - due_count(clock.now())  # a warning and a breach per ticket
            if left < rate * PHASE_SECONDS:
                log("SKIP rate %d: only %d timers left in the store" % (rate, left))
                continue
            clock.set(speed=speed)
            time.sleep(1)  # warm-up: the timer thread catches the new pace
            w = measure(srv, clock, PHASE_SECONDS)
            clock.set(speed=0)
            w["target_per_s"] = rate
            # drain what is still due before the next phase
            t = time.monotonic()
            while (metric(srv.mport, "helpwire_timers_fired_total") or 0) - fired0 < due_count(clock.now()):
                time.sleep(0.25)
                if time.monotonic() - t > 600:
                    break
            w["drain_s"] = time.monotonic() - t
            res["phases"].append(w)
            log("   %d/s: fired %.0f/s (due %.0f/s), hw-timers %.1f ms/s, hw-writer %.1f ms/s, RSS %d MiB" % (
                rate, w["fired_per_s"], w["due_per_s"], w["timers_ms_per_s"], w["writer_ms_per_s"],
                w["rss_max_kb"] // 1024))
        res["pending_at_end"] = metric(srv.mport, "helpwire_timers_pending")
        res["clock_ms_at_end"] = clock.now()
    finally:
        srv.stop()
        clock.close()
    return res


def route_run(label, port, token, extra_env=None):
    js = os.path.join(WORK, "route-%s.json" % label)
    conns, streams = LEVEL.split("x")
    args = [BENCH, "--target", "127.0.0.1:%d" % port, "--connections", conns, "--concurrency", streams,
            "--duration", ROUTE_SECONDS, "--warmup", ROUTE_WARMUP, "--mix", "Route", "--json", js]
    args += ["--token", token] if token else ["--no-seed"]
    r = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode != 0:
        log("   %s: helpwire-bench failed: %s" % (label, r.stderr.decode()[-200:]))
        return None
    d = json.load(open(js))
    return {"rps": d["throughput_rps"], "p50_ms": d["latency_us"]["p50"] / 1e3,
            "p99_ms": d["latency_us"]["p99"] / 1e3, "errors": d["errors"]}


def part_route(clock_ms):
    log("== Route at %s, %s s, %d rounds" % (LEVEL, ROUTE_SECONDS, ROUNDS))
    cport = free_port()
    ceiling = subprocess.Popen([CEILING, "--listen", "127.0.0.1:%d" % cport, "--threads", str(CORES)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    clock_file = os.path.join(WORK, "route-clock")
    # the clock of the seeded runs goes on from where part 1 left it
    rows = []
    try:
        for rnd in range(1, ROUNDS + 1):
            kinds = ["ceiling"] + (["before"] if BEFORE else []) + ["after", "after+store", "after+timers"]
            for kind in kinds:
                log("-- round %d: %s" % (rnd, kind))
                load1 = open("/proc/loadavg").read().split()[0]
                if kind == "ceiling":
                    r = route_run("ceiling-%d" % rnd, cport, None)
                    extra = {}
                elif kind in ("before", "after"):
                    d = os.path.join(WORK, "fresh")
                    shutil.rmtree(d, ignore_errors=True)
                    srv = Server(BEFORE if kind == "before" else SERVER, d)
                    try:
                        r = route_run("%s-%d" % (kind, rnd), srv.port, srv.token)
                    finally:
                        srv.stop()
                    extra = {}
                else:
                    clock = Clock(clock_file, clock_ms)
                    srv = Server(SERVER, DATA, clock_file)
                    try:
                        time.sleep(0.5)
                        a = sample(srv)
                        if kind == "after+timers":
                            clock.set(speed=ROUTE_TIMER_RATE / (2.0 * P))
                        r = route_run("%s-%d" % (kind, rnd), srv.port, srv.token)
                        b = sample(srv)
                        clock_ms = clock.set(speed=0)
                        dt = b["t"] - a["t"]
                        extra = {"fired_per_s": (b["fired"] - a["fired"]) / dt,
                                 "timers_ms_per_s": (b["cpu"].get("hw-timers", 0) - a["cpu"].get("hw-timers", 0)) / dt * 1000}
                    finally:
                        srv.stop()
                        clock.close()
                if r:
                    r.update(extra)
                    r.update({"round": rnd, "kind": kind, "load1": load1})
                    rows.append(r)
                    log("   %.0f req/s, p99 %.2f ms%s" % (r["rps"], r["p99_ms"], (
                        ", %.0f timers/s" % r["fired_per_s"]) if "fired_per_s" in r else ""))
    finally:
        ceiling.terminate()
        ceiling.wait()
    return rows


def mib(kb):
    return "%.1f" % (kb / 1024.0)


def report(tres, rows):
    out = []
    b = tres["baseline"]
    out.append("Store: %d open tickets, %d timers pending at start (one SLA timer per ticket, all "
               "assigned to one online agent); %d due per second of the clock's time (a warning and a breach per "
               "ticket)." % (N, tres["pending_at_start"] or 0, 2 * P))
    out.append("")
    out.append("| phase | target timers/s | fired/s | fired / target | hw-timers CPU ms/s | µs per timer "
               "(hw-timers) | hw-writer CPU ms/s | µs per timer (hw-writer) | hw-notifier ms/s | "
               "process CPU ms/s | VmRSS max MiB | RssAnon max MiB | RssFile max MiB | RSS / baseline |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")

    def row(name, w, target):
        ratio = "%.3f" % (w["fired_per_s"] / target) if target else "-"
        out.append("| %s | %s | %.0f | %s | %.1f | %s | %.1f | %s | %.1f | %.1f | %s | %s | %s | %.3f |" % (
            name, target if target else ("-" if w["fired"] else "0 (none due)"), w["fired_per_s"], ratio, w["timers_ms_per_s"],
            "%.1f" % w["timers_us_per_fired"] if w["fired"] else "-", w["writer_ms_per_s"],
            "%.1f" % w["writer_us_per_fired"] if w["fired"] else "-", w["notifier_ms_per_s"],
            w["process_ms_per_s"], mib(w["rss_max_kb"]), mib(w["anon_max_kb"]), mib(w["file_max_kb"]),
            w["rss_max_kb"] / float(b["rss_max_kb"])))

    row("baseline (clock standing)", b, 0)
    c = tres["catchup"]
    row("catch-up: %d already due" % c["due"], c, 0)
    for w in tres["phases"]:
        row("%d/s for %.0f s" % (w["target_per_s"], w["seconds"]), w, w["target_per_s"])
    out.append("")
    out.append("Catch-up (the clock jumps over %d due times, like a restart after downtime): all fired in "
               "%.2f s, %.0f timers/s. Backlog at the end of each phase (due, not yet fired): %s." % (
                   c["due"], c["seconds"], c["fired_per_s"],
                   ", ".join("%d/s: %d" % (w["target_per_s"], w["backlog_end"]) for w in tres["phases"])))
    out.append("")
    if rows:
        out.append("Route (%s, %s s after %s s warm-up), in the order run:" % (LEVEL, ROUTE_SECONDS, ROUTE_WARMUP))
        out.append("")
        out.append("| round | server | load1 | Route req/s | / ceiling (same round) | p50 ms | p99 ms | errors | timers fired/s |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        ceil = {r["round"]: r["rps"] for r in rows if r["kind"] == "ceiling"}
        for r in rows:
            c = ceil.get(r["round"])
            out.append("| %d | %s | %s | %.0f | %s | %.2f | %.2f | %d | %s |" % (
                r["round"], r["kind"], r["load1"], r["rps"], "%.3f" % (r["rps"] / c) if c else "-",
                r["p50_ms"], r["p99_ms"], r["errors"],
                "%.0f" % r["fired_per_s"] if "fired_per_s" in r else "-"))
        out.append("")
        kinds = []
        for r in rows:
            if r["kind"] not in kinds:
                kinds.append(r["kind"])
        med = {}
        for k in kinds:
            v = sorted(r["rps"] / ceil[r["round"]] for r in rows if r["kind"] == k and r["round"] in ceil)
            if v:
                med[k] = v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2
        out.append("Median of the per-round ratios to the ceiling: " + ", ".join(
            "%s %.3f" % (k, med[k]) for k in kinds if k in med) + ".")
        if "after+store" in med and "after+timers" in med:
            out.append("With timers firing against the same store standing: %.3f." % (
                med["after+timers"] / med["after+store"]))
        if "before" in med and "after" in med:
            out.append("This build against the one before the timers (fresh --demo stores): %.3f." % (
                med["after"] / med["before"]))
    return "\n".join(out)


def main():
    try:
        tres = part_timers()
        rows = part_route(tres["clock_ms_at_end"]) if ROUNDS > 0 else []
        print(report(tres, rows))
        with open(os.path.join(E.get("RAW_DIR", WORK), "timers-raw.json"), "w") as f:
            json.dump({"timers": tres, "route": rows}, f, indent=1)
    finally:
        if not E.get("KEEP_WORK"):
            shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
