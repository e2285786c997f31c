#!/usr/bin/env python3
"""load_report: turns the runs of bench/run.sh into the "Load" section of
bench/RESULTS.md and two gnuplot PNGs.

Input is the manifest run.sh writes (tab-separated lines):
  meta    KEY VALUE
  run     WORKLOAD LEVEL TARGET JSON_PATH      (TARGET: ceiling | helpwired)
  skip    WORKLOAD REASON
  text    NAME COMMAND PATH    (a benchmark's output, quoted as it is: store, search)
  md      NAME PATH            (a Markdown section, "## " headings and below, included one
                               level down: answers)
  cost    WORKLOAD LEVEL BEFORE_JSON AFTER_JSON  (bench/write_cost.py snapshots around
                               helpwired's run: bytes written, writer CPU, commits)
  xcheck  TARGET MODE ROUND TOOL RPS CPU_S REQUESTS
          (MODE: pinned | shared; TOOL: h2load | helpwire-bench)
Only figures found in those files are written; nothing is estimated.

The section runs from its "## Load" heading to the next "## " heading;
every other section of RESULTS.md (Search, Store, ...) is kept as it is.
Usage: load_report.py MANIFEST RESULTS_MD PLOT_DIR
"""
import json
import os
import re
import statistics
import subprocess
import sys

WORKLOADS = [
    # name, title, target ratio to the ceiling (None: a reference, no target)
    ("route", "Route", 0.85),
    ("search", "Search", 0.85),
    ("create", "CreateTicket (durable)", 0.60),
    ("mixed", "mixed 70% Route / 20% GetTicket / 10% CreateTicket", 0.70),
    ("get", "GetTicket (reference: token check and one read; no search, no write)", None),
]


def fmt_target(target):
    return "≥ %.2f" % target if target is not None else "none"
P99_TARGET_MS = 5.0


def read_manifest(path):
    meta, runs, skips, xchecks = {}, {}, {}, []
    costs = {}
    texts = []
    mds = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if parts[0] == "meta" and len(parts) >= 3:
                meta[parts[1]] = parts[2]
            elif parts[0] == "run" and len(parts) == 5:
                _, workload, level, target, jpath = parts
                try:
                    with open(jpath, encoding="utf-8") as jf:
                        runs[(workload, level, target)] = json.load(jf)
                except (OSError, ValueError):
                    skips.setdefault(workload, []).append(
                        "%s at %s: no result (see the run log)" % (target, level))
            elif parts[0] == "skip" and len(parts) >= 3:
                skips.setdefault(parts[1], []).append(parts[2])
            elif parts[0] == "md" and len(parts) == 3:
                try:
                    with open(parts[2], encoding="utf-8", errors="replace") as mf:
                        mds.append((parts[1], mf.read()))
                except OSError:
                    skips.setdefault(parts[1], []).append("no report (see the run log)")
            elif parts[0] == "text" and len(parts) == 4:
                try:
                    with open(parts[3], encoding="utf-8", errors="replace") as tf:
                        texts.append((parts[1], parts[2], tf.read().rstrip()))
                except OSError:
                    skips.setdefault(parts[1], []).append("no output (see the run log)")
            elif parts[0] == "cost" and len(parts) == 5:
                try:
                    with open(parts[3]) as bf, open(parts[4]) as af:
                        costs[(parts[1], parts[2])] = (json.load(bf), json.load(af))
                except (OSError, ValueError):
                    pass  # counters not readable: no row
            elif parts[0] == "xcheck" and len(parts) == 8:
                _, target, mode, rnd, tool, rps, cpu, reqs = parts
                xchecks.append({"target": target, "mode": mode, "round": int(rnd), "tool": tool,
                                "rps": float(rps), "cpu_s": float(cpu), "requests": int(reqs)})
    return meta, runs, skips, xchecks, texts, mds, costs


def level_key(level):
    c, m = level.split("x")
    return int(c) * int(m), int(c)


def ms(us):
    return "%.2f" % (us / 1000.0)


def fmt_rps(x):
    return "%.0f" % x


def load_table(meta, runs, skips):
    levels = sorted({k[1] for k in runs}, key=level_key)
    out = []
    out.append("| workload | conns × streams | ceiling req/s | helpwired req/s | ratio | target "
               "| p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors | ceiling p99 ms |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for name, title, target in WORKLOADS:
        for level in levels:
            ceil = runs.get((name, level, "ceiling"))
            srv = runs.get((name, level, "helpwired"))
            if not ceil and not srv:
                continue
            c_rps = ceil["throughput_rps"] if ceil else None
            row = ["%s" % title, level.replace("x", " × "),
                   fmt_rps(c_rps) if ceil else "—"]
            if srv:
                lat = srv["latency_us"]
                errs = srv.get("errors_by_status") or {}
                err_txt = ", ".join("%s %d" % (k, v) for k, v in sorted(errs.items())) or "0"
                ratio = srv["throughput_rps"] / c_rps if c_rps else None
                row += [fmt_rps(srv["throughput_rps"]),
                        "%.2f" % ratio if ratio is not None else "—",
                        fmt_target(target),
                        ms(lat["p50"]), ms(lat["p90"]), ms(lat["p99"]), ms(lat["p999"]),
                        ms(lat["max"]), err_txt]
            else:
                row += ["—", "—", fmt_target(target), "—", "—", "—", "—", "—", "—"]
            row.append(ms(ceil["latency_us"]["p99"]) if ceil else "—")
            out.append("| " + " | ".join(row) + " |")
    return out


def cost_table(costs):
    """Per write request, from the counters' differences over a run (its
    warm-up included): bytes written, the write path's CPU, group size."""
    out = []
    out.append("| workload | conns × streams | writes | writes per commit | wchar B/write "
               "| write_bytes B/write | write path CPU µs/write | of which done callbacks µs "
               "| hw-writer thread CPU µs/write | commit wall ms/commit |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    names = [w[0] for w in WORKLOADS]
    for (workload, level) in sorted(costs, key=lambda k: (names.index(k[0]) if k[0] in names else 99,
                                                          level_key(k[1]))):
        b, a = costs[(workload, level)]

        def d(k):
            return (a.get(k) or 0) - (b.get(k) or 0) if k in a and k in b and a[k] is not None \
                and b[k] is not None else None
        writes, commits = d("writes"), d("commits")
        if not writes:
            continue

        def per(k, scale=1.0, fmt="%.0f"):
            v = d(k)
            return fmt % (v * scale / writes) if v is not None else "—"
        commit_s = d("commit_s")
        out.append("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s |" % (
            workload, level.replace("x", " × "), writes,
            "%.1f" % (writes / commits) if commits else "—",
            per("wchar"), per("write_bytes"), per("write_cpu", 1e6, "%.1f"), per("done_cpu", 1e6, "%.1f"),
            per("writer_thread_cpu", 1e6, "%.1f"),
            "%.2f" % (commit_s * 1e3 / commits) if commits and commit_s is not None else "—"))
    return out if len(out) > 2 else []


def knee_table(runs):
    """At the knee (the level with the most helpwired throughput whose p99 is
    under 5 ms), the ratio to the ceiling and the p99, against the targets."""
    out = ["| workload | knee (conns × streams) | ratio to ceiling | target | p99 ms "
           "(target < %.0f) | met |" % P99_TARGET_MS,
           "|---|---|---:|---:|---:|---|"]
    any_row = False
    for name, title, target in WORKLOADS:
        cands = [(lvl, r) for (w, lvl, t), r in runs.items() if w == name and t == "helpwired"]
        if not cands:
            continue
        any_row = True
        under = [(lvl, r) for lvl, r in cands if r["latency_us"]["p99"] / 1000.0 < P99_TARGET_MS
                 and r["ok"] > 0]
        if not under:
            out.append("| %s | none with p99 < %.0f ms | — | %s | — | %s |" % (
                title, P99_TARGET_MS, fmt_target(target), "no" if target is not None else "—"))
            continue
        lvl, r = max(under, key=lambda x: x[1]["throughput_rps"])
        ceil = runs.get((name, lvl, "ceiling"))
        ratio = r["throughput_rps"] / ceil["throughput_rps"] if ceil and ceil["throughput_rps"] else None
        p99 = r["latency_us"]["p99"] / 1000.0
        met = target is not None and ratio is not None and ratio >= target and p99 < P99_TARGET_MS and \
            r["errors"] == 0
        out.append("| %s | %s | %s | %s | %.2f | %s |" % (
            title, lvl.replace("x", " × "), "%.2f" % ratio if ratio is not None else "—", fmt_target(target), p99,
            "—" if target is None else "yes" if met else "no"))
    return out if any_row else []


def xcheck_lines(xchecks):
    out = []
    modes = ["pinned", "shared"]
    groups = sorted({(x["mode"], x["target"]) for x in xchecks},
                    key=lambda g: (modes.index(g[0]) if g[0] in modes else 9, g[1]))
    for mode, target in groups:
        rows = [x for x in xchecks if x["target"] == target and x["mode"] == mode]
        rounds = sorted({x["round"] for x in rows
                         if {y["tool"] for y in rows if y["round"] == x["round"]} == {"h2load", "helpwire-bench"}})
        if not rounds:
            continue
        out.append("")
        out.append("**%s, %s**" % (target, {"pinned": "pinned (server on CPU 0, client on CPU 1)",
                                             "shared": "shared cores (as in the suite)"}.get(mode, mode)))
        out.append("")
        out.append("| round | h2load req/s | helpwire-bench req/s | bench / h2load "
                   "| h2load client CPU µs/req | helpwire-bench client CPU µs/req |")
        out.append("|---:|---:|---:|---:|---:|---:|")
        ratios, h_all, b_all, h_cpu, b_cpu = [], [], [], [], []
        for rnd in rounds:
            h = next((x for x in rows if x["round"] == rnd and x["tool"] == "h2load"), None)
            b = next((x for x in rows if x["round"] == rnd and x["tool"] == "helpwire-bench"), None)
            if not h or not b:
                continue
            hc = h["cpu_s"] * 1e6 / h["requests"] if h["requests"] else float("nan")
            bc = b["cpu_s"] * 1e6 / b["requests"] if b["requests"] else float("nan")
            ratio = b["rps"] / h["rps"] if h["rps"] else float("nan")
            ratios.append(ratio)
            h_all.append(h["rps"])
            b_all.append(b["rps"])
            h_cpu.append(hc)
            b_cpu.append(bc)
            out.append("| %d | %s | %s | %.2f | %.1f | %.1f |" % (rnd, fmt_rps(h["rps"]), fmt_rps(b["rps"]),
                                                                  ratio, hc, bc))
        if ratios:
            med_r = statistics.median(ratios)
            out.append("| median | %s | %s | %.2f | %.1f | %.1f |" % (
                fmt_rps(statistics.median(h_all)), fmt_rps(statistics.median(b_all)), med_r,
                statistics.median(h_cpu), statistics.median(b_cpu)))
            out.append("")
            out.append("Median of the per-round ratios (adjacent runs, so machine drift mostly cancels): "
                       "%.2f, %s." % (med_r, "within 10%" if abs(med_r - 1) <= 0.10 else "**not within 10%**"))
            if target == "helpwired":
                out.append("Every call carries the same message_id here, so after the first one helpwired "
                           "answers from Route's dedupe record: this is the duplicate path of Route, not the "
                           "suite's Route load above.")
            if mode == "pinned":
                out.append("Each tool has a core of its own and the server the other, so both measure what "
                           "the server can do; this is the comparison of the two tools.")
            else:
                out.append("helpwire-bench spends %.1f µs of client CPU per call, h2load %.1f µs; client and "
                           "server share the same cores, so where the server's own cost per call is small, "
                           "the heavier gRPC C-core client takes CPU the server would use and both tools "
                           "measure the client as much as the server." % (
                               statistics.median(b_cpu), statistics.median(h_cpu)))
    return out


def write_plots(runs, plot_dir, have_gnuplot):
    """Writes load-throughput.png and load-p99.png; returns their names."""
    os.makedirs(plot_dir, exist_ok=True)
    series = []
    for color, (name, title, _) in enumerate(WORKLOADS, start=1):
        for target in ("helpwired", "ceiling"):
            pts = sorted(((level_key(l)[0], r) for (w, l, t), r in runs.items() if w == name and t == target),
                         key=lambda p: p[0])
            if not pts:
                continue
            dat = os.path.join(plot_dir, "load-%s-%s.dat" % (name, target))
            with open(dat, "w", encoding="utf-8") as f:
                f.write("# outstanding_calls throughput_rps p99_ms\n")
                for x, r in pts:
                    f.write("%d %.1f %.3f\n" % (x, r["throughput_rps"], r["latency_us"]["p99"] / 1000.0))
            label = "%s (%s)" % (title.split(" ")[0] if name != "mixed" else "mixed", target)
            series.append((dat, label, target, color))
    if not series or not have_gnuplot:
        return []
    outputs = []
    for fname, col, ylabel, title in (("load-throughput.png", 2, "requests/s", "Throughput vs concurrency"),
                                      ("load-p99.png", 3, "p99 latency (ms)", "p99 latency vs concurrency")):
        script = os.path.join(plot_dir, fname + ".gp")
        with open(script, "w", encoding="utf-8") as f:
            f.write('set terminal pngcairo size 900,540 noenhanced\n' if have_gnuplot == "cairo"
                    else 'set terminal png size 900,540 noenhanced\n')
            f.write('set output "%s"\n' % os.path.join(plot_dir, fname))
            f.write('set title "%s (ceiling dashed)"\n' % title)
            f.write('set xlabel "outstanding calls (connections x streams)"\nset ylabel "%s"\n' % ylabel)
            f.write('set logscale x 2\nset key outside right\nset grid\nset yrange [0:*]\n')
            plots = []
            for dat, label, target, color in series:
                dash = "dt 2" if target == "ceiling" else "dt 1"
                plots.append('"%s" using 1:%d with linespoints lw 2 lc %d %s title "%s"' % (
                    dat, col, color, dash, label))
            f.write("plot " + ", \\\n     ".join(plots) + "\n")
        if subprocess.run(["gnuplot", script]).returncode == 0:
            outputs.append(fname)
        os.remove(script)
    for dat, _, _, _ in series:
        os.remove(dat)
    return outputs


def demote(text):
    """A Markdown section's lines with every heading one level down (its
    "## " becomes a "### " of the Load section); code blocks are kept."""
    out, code = [], False
    for line in text.rstrip("\n").split("\n"):
        if line.startswith("```"):
            code = not code
        out.append("#" + line if not code and re.match(r"^#+ ", line) else line)
    return out


def splice(results_path, section_lines):
    text = ""
    if os.path.exists(results_path):
        with open(results_path, encoding="utf-8") as f:
            text = f.read()
    lines = text.split("\n") if text else ["# Benchmark results", ""]
    while section_lines and section_lines[-1] == "":
        section_lines = section_lines[:-1]
    start = next((i for i, l in enumerate(lines) if re.match(r"^## Load\b", l)), None)
    if start is not None:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        new = lines[:start] + section_lines + [""] + lines[end:]
    else:
        first = next((i for i, l in enumerate(lines) if l.startswith("## ")), None)
        if first is None:
            new = lines + ([""] if lines and lines[-1] != "" else []) + section_lines + [""]
        else:
            new = lines[:first] + section_lines + [""] + lines[first:]
    out = "\n".join(new).rstrip("\n") + "\n"
    with open(results_path, "w", encoding="utf-8") as f:
        f.write(out)


def main():
    if len(sys.argv) != 4:
        sys.stderr.write(__doc__)
        return 2
    manifest, results_path, plot_dir = sys.argv[1:]
    meta, runs, skips, xchecks, texts, mds, costs = read_manifest(manifest)
    have_gnuplot = meta.get("gnuplot", "")
    plots = write_plots(runs, plot_dir, have_gnuplot)
    rel_plot_dir = os.path.relpath(plot_dir, os.path.dirname(os.path.abspath(results_path)))

    s = ["## Load", ""]
    s.append("`bench/run.sh`: helpwire-bench (closed loop, gRPC C core) against helpwired and against the "
             "echo ceiling (`bench/ceiling.c`: the cheapest unary server on the same gRPC C core, worker "
             "pool and channel settings), the same load and the same run, so each figure is also a ratio "
             "to the ceiling. Latency is of calls that ended OK, measured by the client; throughput is "
             "counted calls over the measured time.")
    s.append("")
    s.append("**Run.** %s; %s s warm-up + %s s per cell; levels %s (connections × outstanding calls "
             "each); client threads = min(connections, cores); corpus: %s." % (
                 meta.get("date", "?"), meta.get("warmup", "?"), meta.get("duration", "?"),
                 meta.get("levels", "?"), meta.get("corpus", "?")))
    s.append("")
    s.append("**Machine.** %s; load average before the run %s. Client, server and anything else "
             "running share the cores, so the figures move between runs." % (
                 meta.get("machine", "?"), meta.get("loadavg", "?")))
    s.append("")
    s.append("**Server.** %s" % meta.get("server", "?"))
    s.append("")
    s.append("**Command.** `%s`" % meta.get("command", "bash bench/run.sh"))
    s.append("")
    s.append("### Throughput and latency (helpwired latency columns)")
    s.append("")
    s += load_table(meta, runs, skips)
    s.append("")
    if skips:
        s.append("Not measured:")
        for name, title, _ in WORKLOADS:
            for reason in skips.get(name, []):
                s.append("- %s: %s" % (title, reason))
        for key in sorted(k for k in skips if k not in {w[0] for w in WORKLOADS}):
            for reason in skips[key]:
                s.append("- %s: %s" % (key, reason))
        s.append("")
    cost = cost_table(costs)
    if cost:
        s.append("### The durable write path: cost per write request")
        s.append("")
        s.append("Differences of helpwired's counters over each run (warm-up included), divided by the "
                 "write requests the store completed in it (`helpwire_store_writes_total`): `wchar` and "
                 "`write_bytes` of `/proc/PID/io` (bytes handed to write(2); bytes sent to the block "
                 "device, with the file system's own), the CPU of the thread that ran the write groups "
                 "(`helpwire_store_write_cpu_seconds_total`: write functions, commit, done callbacks), "
                 "the `hw-writer` thread's CPU from `/proc` (also counts its idle loop and replicated "
                 "entries), and the wall time of a commit (page writes and flushes).")
        s.append("")
        s += cost
        s.append("")
    knee = knee_table(runs)
    if knee:
        s.append("### Against the targets (at the knee: most throughput with p99 < 5 ms)")
        s.append("")
        s += knee
        s.append("")
    if plots:
        s.append("### Plots")
        s.append("")
        for p in plots:
            s.append("![%s](%s)" % (p, os.path.join(rel_plot_dir, p)))
        s.append("")
    if xchecks:
        s.append("### Cross-check with h2load")
        s.append("")
        s.append("The same Route request, byte for byte (`helpwire-bench --dump-request`, sent by "
                 "helpwire-bench with `--request-file`), at %s (connections × streams), h2load "
                 "(nghttp2 %s) and helpwire-bench alternating, %s s each after %s s warm-up. "
                 "Client CPU is user + system time of the client process per completed request." % (
                     meta.get("xcheck_level", "?"), meta.get("h2load_version", "?"),
                     meta.get("xcheck_duration", "?"), meta.get("xcheck_warmup", "?")))
        s += xcheck_lines(xchecks)
        s.append("")
        if meta.get("xcheck_note"):
            s.append(meta["xcheck_note"])
            s.append("")
    titles = {"store": "Store: group commit against one commit per request (same run)",
              "search": "Search: the index against SQLite FTS5 (same run)"}
    for name, command, out in texts:
        s.append("### %s" % titles.get(name, name))
        s.append("")
        s.append("`%s`" % command)
        s.append("")
        s.append("```")
        s += out.splitlines()
        s.append("```")
        s.append("")
    for _, text in mds:
        s += demote(text)
        s.append("")
    splice(results_path, s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
