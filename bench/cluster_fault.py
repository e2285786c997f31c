"""cluster_fault.py: failover under kill -9 (issue 20). Run it through
bench/cluster_bench.sh fault (or bench/cluster_fault.sh), which builds the
binaries.

Per configuration (CONFIGS="default slow"; default: helpwired's election
500 ms and heartbeat 50 ms; slow: --cluster-election-ms 1000
--cluster-heartbeat-ms 100), a fresh 3-replica cluster on loopback and:
  - THREADS client threads writing all the time, each call to the next
    replica in turn (so over all three): Route (a new customer each, a
    ticket text: a new ticket) and CreateTicket (for a customer of an
    earlier Route) alternating. UNAVAILABLE and DEADLINE_EXCEEDED are
    retried on the next replica with backoff (25 ms doubling to 400 ms),
    with the same message_id / idempotency_key; every acknowledged write is
    recorded with its ticket id and number, the time, and the trailing
    helpwire-applied-index;
  - READERS threads reading acknowledged tickets back (GetTicket with
    helpwire-min-applied-index of the write) from a random replica, each
    read filed under the replica it went to and whether that replica is
    the one killed in the current round;
  - every INTERVAL s the leader is killed with SIGKILL, and restarted
    RESTART_AFTER s later with the same flags; ROUNDS times.
At the end: the writers stop, the cluster settles (one writable leader,
every replica applied its commit index), every replica lists its tickets
(ListTickets with helpwire-min-applied-index of the last write) and every
acknowledged write must be on all three with its number; the replicas stop
with SIGTERM and `mdb_dump -a` of the three stores must be identical.

The write gap of a failover: from the kill to the first acknowledgement
of a write whose successful attempt started after the kill (a reply the
old leader sent just before dying does not count).

Prints Markdown on stdout, progress on stderr.
"""

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import cluster_bench as cb
import grpc

E = os.environ
log = cb.log

TEXT = "My invoice shows a double charge and I need a refund for order 4711 (ref %s)"
RETRY = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
CONFIGS = {
    "default": [],  # helpwired's: election 500 ms, heartbeat 50 ms
    "slow": ["--cluster-election-ms", "1000", "--cluster-heartbeat-ms", "100"],
}
KEEP = []  # configurations whose check failed: their data and logs are kept
CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                   ("grpc.max_reconnect_backoff_ms", 1000)]


class Conns:
    """One channel per replica for a thread; calls by path."""

    def __init__(self, nodes, token):
        self.nodes = nodes
        self.md = [("authorization", "Bearer " + token)]
        self.channels = [grpc.insecure_channel(n.address, options=CHANNEL_OPTIONS) for n in nodes]
        self.api = cb.api()
        self.fns = {}

    def call(self, i, path, timeout, extra_md=(), **fields):
        from google.protobuf import json_format

        req_cls, resp_cls, _ = self.api.method(path)
        key = (i, path)
        if key not in self.fns:
            self.fns[key] = self.channels[i].unary_unary(
                "/" + path, request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=resp_cls.FromString)
        req = req_cls()
        json_format.ParseDict(fields, req)
        resp, call = self.fns[key].with_call(req, timeout=timeout, metadata=self.md + list(extra_md))
        index = 0
        for k, v in call.trailing_metadata() or ():
            if k == "helpwire-applied-index":
                index = int(v)
        return resp, index

    def close(self):
        for c in self.channels:
            c.close()


class State:
    def __init__(self, n):
        self.lock = threading.Lock()
        self.acks = []  # dicts
        self.failed_writes = []  # (kind, code, details)
        self.retries = 0
        self.reads = []  # (replica index, ok, killed this round, code)
        self.stop = threading.Event()
        self.killed = None  # replica index killed in the current round
        self.round = 0
        self.n = n


def writer(st, nodes, token, tid, call_timeout):
    conns = Conns(nodes, token)
    rr = tid % len(nodes)
    seq = 0
    customers = []
    try:
        while not st.stop.is_set():
            seq += 1
            key = "cf-%d-%d" % (tid, seq)
            kind = "Route" if (seq % 2 or not customers) else "CreateTicket"
            if kind == "Route":
                path = "helpwire.v1.Router/Route"
                fields = {"channel": "CHANNEL_TELEGRAM", "channelUserId": key, "displayName": "Fault " + key,
                          "text": TEXT % key, "messageId": key}
            else:
                path = "helpwire.v1.Tickets/CreateTicket"
                fields = {"customerId": random.choice(customers), "text": TEXT % key, "subject": key,
                          "idempotencyKey": key, "channel": "CHANNEL_TELEGRAM"}
            t_first = time.monotonic()
            backoff = 0.025
            attempts = 0
            while True:
                rr = (rr + 1) % len(nodes)
                attempts += 1
                t_start = time.monotonic()
                try:
                    resp, index = conns.call(rr, path, call_timeout, **fields)
                except grpc.RpcError as e:
                    code = e.code()
                    if code in RETRY and time.monotonic() - t_first < 60:
                        with st.lock:
                            st.retries += 1
                        time.sleep(backoff)
                        backoff = min(0.4, backoff * 2)
                        continue
                    with st.lock:
                        st.failed_writes.append((kind, str(code), (e.details() or "")[:200]))
                    break
                t_ack = time.monotonic()
                if kind == "Route":
                    tid_, num, dup = resp.ticket_id, resp.ticket_number, resp.duplicate
                    if resp.customer_id:
                        customers.append(resp.customer_id)
                else:
                    tid_, num, dup = resp.ticket.id, resp.ticket.number, resp.replayed
                with st.lock:
                    st.acks.append({"kind": kind, "key": key, "ticket_id": tid_, "number": num, "dup": dup,
                                    "t_first": t_first, "t_start": t_start, "t_ack": t_ack, "replica": rr,
                                    "index": index, "attempts": attempts})
                break
    finally:
        conns.close()


def reader(st, nodes, token):
    conns = Conns(nodes, token)
    try:
        while not st.stop.is_set():
            with st.lock:
                acks = [a for a in st.acks[-200:] if a["ticket_id"]]
                killed = st.killed
            if not acks:
                time.sleep(0.05)
                continue
            a = random.choice(acks)
            i = random.randrange(len(nodes))
            try:
                resp, _ = conns.call(i, "helpwire.v1.Tickets/GetTicket", 5.0,
                                     extra_md=[("helpwire-min-applied-index", str(a["index"]))],
                                     ticketId=a["ticket_id"])
                ok = resp.ticket.number == a["number"]
                code = "OK" if ok else "WRONG_NUMBER"
            except grpc.RpcError as e:
                ok, code = False, "%s %s" % (e.code(), (e.details() or "")[:120])
            with st.lock:
                # the round may have changed while the call ran: file it
                # under the replica killed when it was sent or now
                k = i in (killed, st.killed)
                st.reads.append((i, ok, k, code))
            time.sleep(0.01)
    finally:
        conns.close()


def list_tickets(node, token, min_index):
    conns = Conns([node], token)
    out = {}
    try:
        page = ""
        while True:
            fields = {"pageSize": 500}
            if page:
                fields["pageToken"] = page
            resp, _ = conns.call(0, "helpwire.v1.Tickets/ListTickets", 60.0,
                                 extra_md=[("helpwire-min-applied-index", str(min_index))], **fields)
            for t in resp.tickets:
                out[t.id] = (t.number, t.subject, t.customer_id)
            page = resp.next_page_token
            if not page:
                return out
    finally:
        conns.close()


def _varint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return v, i


def without_created(hexline):
    """The meta/schema value (SchemaRecord) without field 3,
    created_unix_ms: each replica creates its own empty store file at its
    own start, so that field is the one the replicas may not share."""
    b = bytes.fromhex(hexline.strip())
    out, i = [], 0
    while i < len(b):
        start = i
        tag, i = _varint(b, i)
        if tag & 7 == 0:
            _, i = _varint(b, i)
        elif tag & 7 == 2:
            n, i = _varint(b, i)
            i += n
        else:
            return hexline  # not the record expected: compare as is
        if tag >> 3 != 3:
            out.append(b[start:i])
    return " " + b"".join(out).hex() + "  (created_unix_ms left out)\n"


def normalised(dump):
    lines = [line for line in dump.decode().splitlines(True) if not line.startswith("mapsize=")]
    # (each replica's map grows on its own: its size is not part of the data)
    db, prev = None, None
    for j, line in enumerate(lines):
        if line.startswith("database="):
            db = line.strip().split("=", 1)[1]
        elif db == "meta" and prev == " 736368656d61\n":  # key "schema"
            lines[j] = without_created(line)
        prev = line
    return "".join(lines).encode()


APPLIED_KEY = " " + b"repl_applied_index".hex() + "\n"


def applied_in_dump(dump):
    """The applied index recorded in a dump's meta database (0: none)."""
    lines = dump.decode(errors="replace").splitlines(True)
    for i, line in enumerate(lines[:-1]):
        if line == APPLIED_KEY:
            return int(lines[i + 1].strip(), 16)
    return 0


def mdb_dump(data):
    r = subprocess.run(["mdb_dump", "-a", data], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        return None, r.stderr.decode()[-300:]
    return r.stdout, None


def run_config(name, extra, work):
    rounds = int(E.get("ROUNDS", "20"))
    interval = float(E.get("INTERVAL", "10"))
    restart_after = float(E.get("RESTART_AFTER", "2"))
    threads = int(E.get("THREADS", "4"))
    readers = int(E.get("READERS", "1"))
    settle = float(E.get("SETTLE_S", "60"))
    cdir = os.path.join(work, name)
    os.makedirs(cdir)
    extra = list(extra) + E.get("EXTRA_FLAGS", "").split()
    cl = cb.Cluster(cdir, extra=extra)
    log("== %s (%s): %d rounds, a kill every %.0f s, restart %.0f s later" % (
        name, " ".join(extra) or "default timeouts", rounds, interval, restart_after))
    cl.start()
    token = cl.token()
    # a replica restarted behind the leader's last snapshot fetches a copy
    # of a peer's store, with an admin token (--cluster-token-file)
    token_file = os.path.join(cdir, "admin-token")
    with open(token_file, "w") as f:
        f.write(token + "\n")
    os.chmod(token_file, 0o600)
    for node in cl.nodes:
        node.extra += ["--cluster-token-file", token_file]
    st = State(len(cl.nodes))
    ths = [threading.Thread(target=writer, args=(st, cl.nodes, token, t, 3.0)) for t in range(threads)]
    ths += [threading.Thread(target=reader, args=(st, cl.nodes, token)) for _ in range(readers)]
    for t in ths:
        t.start()
    kills = []
    crashed = {}
    res = {"config": name, "flags": " ".join(extra)}
    try:
        t0 = time.monotonic()
        for r in range(1, rounds + 1):
            wait = t0 + r * interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            for node in cl.nodes:  # a replica that exited by itself: reported, not restarted
                if not node.alive() and node.name not in crashed:
                    crashed[node.name] = {"round": r, "exit": node.proc.returncode, "log": node.tail_log(3)}
                    log("   %s exited by itself with %s before round %d:\n%s" % (
                        node.name, node.proc.returncode, r, node.tail_log(3)))
            leader = None
            end = time.monotonic() + 15
            while leader is None and time.monotonic() < end:
                leader = cl.leader(timeout=1)
                if leader is None:
                    time.sleep(0.05)
            if leader is None:
                log("   round %d: no writable leader within 15 s; skipped" % r)
                kills.append({"round": r, "killed": None})
                continue
            with st.lock:
                st.round = r
                st.killed = cl.nodes.index(leader)
                n_acks = len(st.acks)
            t_kill = time.monotonic()
            leader.kill()
            leader.proc.wait()
            kills.append({"round": r, "killed": leader.id, "t_kill": t_kill, "acks_before": n_acks})
            time.sleep(restart_after)
            leader.start()
            try:
                leader.wait_listening(30)
            except RuntimeError as e:
                log("   round %d: %s" % (r, e))
            log("   round %d: killed %s (leader), restarted; %d writes acknowledged so far" % (
                r, leader.name, len(st.acks)))
        time.sleep(min(interval, 3))
    finally:
        st.stop.set()
        for t in ths:
            t.join(120)
    acks = st.acks
    for node in cl.nodes:
        if not node.alive() and node.name not in crashed:
            crashed[node.name] = {"round": None, "exit": node.proc.returncode, "log": node.tail_log(3)}
    res["crashed"] = crashed
    # the write gap per failover
    gaps = []
    for k in kills:
        if k.get("killed") is None:
            continue
        after = [a["t_ack"] for a in acks if a["t_start"] >= k["t_kill"]]
        any_after = [a["t_ack"] for a in acks if a["t_ack"] >= k["t_kill"]]
        k["gap_s"] = (min(after) - k["t_kill"]) if after else None
        k["first_ack_s"] = (min(any_after) - k["t_kill"]) if any_after else None
        if k["gap_s"] is not None:
            gaps.append(k["gap_s"])
    res["kills"] = [{x: k.get(x) for x in ("round", "killed", "gap_s", "first_ack_s")} for k in kills]
    res["gaps"] = gaps
    # convergence and the check of every acknowledged write
    log("   settling (every replica up, one leader, all applied)")
    t = time.monotonic()
    try:
        cl.wait_ready(settle)
        res["settle_s"] = time.monotonic() - t
    except RuntimeError as e:
        res["settle_s"] = None
        log("   %s" % e)
    max_index = max([a["index"] for a in acks] or [0])
    listings = []
    for node in cl.nodes:
        try:
            listings.append(list_tickets(node, token, max_index))
        except grpc.RpcError as e:
            log("   %s: ListTickets failed: %s %s" % (node.name, e.code(), e.details()))
            listings.append(None)
    lost = {n.id: 0 for n in cl.nodes}
    lost_examples = []
    checked = [a for a in acks if a["ticket_id"]]
    for node, lst in zip(cl.nodes, listings):
        for a in checked:
            got = lst.get(a["ticket_id"]) if lst is not None else None
            if got is None or got[0] != a["number"]:
                lost[node.id] += 1
                if len(lost_examples) < 10:
                    before = [k for k in kills if k.get("t_kill") is not None and k["t_kill"] <= a["t_ack"]]
                    k = before[-1] if before else None
                    lost_examples.append({
                        "missing_on": node.name, "kind": a["kind"], "key": a["key"], "ticket_id": a["ticket_id"],
                        "number": a["number"], "sent_to": cl.nodes[a["replica"]].name, "applied_index": a["index"],
                        "attempts": a["attempts"], "duplicate": a["dup"],
                        "after_kill_round": k["round"] if k else None,
                        "killed": "replica%d" % k["killed"] if k else None,
                        "s_after_kill": round(a["t_ack"] - k["t_kill"], 3) if k else None,
                        "s_before_next_kill": round(min([x["t_kill"] for x in kills if x.get("t_kill") and
                                                         x["t_kill"] > a["t_ack"]] or [float("nan")]) - a["t_ack"], 3)})
    ok_lists = [lst for lst in listings if lst is not None]
    res["listings_identical"] = len(ok_lists) == len(cl.nodes) and all(lst == ok_lists[0] for lst in ok_lists)
    res["tickets_listed"] = [len(lst) if lst is not None else None for lst in listings]
    # exactly once: each CreateTicket key (its subject) is on one ticket
    dups = 0
    if ok_lists:
        per_subject = {}
        for number, subject, cust in ok_lists[0].values():
            if subject.startswith("cf-"):
                per_subject[subject] = per_subject.get(subject, 0) + 1
        dups = sum(c - 1 for c in per_subject.values() if c > 1)
    res["duplicate_create_tickets"] = dups
    res["acked"] = len(acks)
    res["acked_by_kind"] = {k: sum(1 for a in acks if a["kind"] == k) for k in ("Route", "CreateTicket")}
    res["acked_without_ticket"] = len(acks) - len(checked)
    res["acked_as_duplicate"] = sum(1 for a in acks if a["dup"])
    res["lost"] = lost
    res["lost_examples"] = lost_examples
    res["retries"] = st.retries
    res["failed_writes"] = len(st.failed_writes)
    res["failed_write_codes"] = sorted({c for _, c, _ in st.failed_writes})
    res["failed_write_examples"] = st.failed_writes[:5]
    surv = [r for r in st.reads if not r[2]]
    kil = [r for r in st.reads if r[2]]
    res["reads_surviving"] = len(surv)
    res["reads_surviving_failed"] = sum(1 for r in surv if not r[1])
    res["reads_surviving_fail_examples"] = [r[3] for r in surv if not r[1]][:5]
    res["reads_killed"] = len(kil)
    res["reads_killed_failed"] = sum(1 for r in kil if not r[1])
    # the stores byte for byte (logical dump) at one applied index, then stop
    dumps = cl.frozen_dumps()
    res["exit_codes"] = cl.stop()
    res["dump_sha256"] = [hashlib.sha256(d).hexdigest()[:16] if d is not None else None for d in dumps]
    res["dumps_identical"] = all(d is not None for d in dumps) and len(set(dumps)) == 1
    res["dumps_identical_but_created"] = all(d is not None for d in dumps) and len(
        set(normalised(d) for d in dumps)) == 1
    if not res["dumps_identical"] and all(d is not None for d in dumps):
        for i in (1, 2):
            if dumps[i] != dumps[0]:
                p0, pi = os.path.join(cdir, "dump1.txt"), os.path.join(cdir, "dump%d.txt" % (i + 1))
                open(p0, "wb").write(dumps[0])
                open(pi, "wb").write(dumps[i])
                d = subprocess.run(["diff", p0, pi], stdout=subprocess.PIPE).stdout.decode(errors="replace")
                res.setdefault("dump_diff_head", []).append(d[:1500])
    if any(lost.values()) or not res["dumps_identical_but_created"] or crashed:
        KEEP.append(cdir)
    log("   %s: %d acknowledged, lost %s, surviving reads failed %d of %d, gaps %s, dumps identical %s" % (
        name, len(acks), lost, res["reads_surviving_failed"], len(surv),
        ["%.2f" % g for g in gaps], res["dumps_identical"]))
    return res


def fmt_gaps(g):
    if not g:
        return "- | - | - | -"
    return "%.2f | %.2f | %.2f | %.2f" % (min(g), cb.pct(g, 50), cb.pct(g, 90), max(g))


def report(results):
    out = []
    out.append("| configuration | kills | acknowledged writes (Route / CreateTicket) | retried calls | "
               "failed writes | lost (replica 1 / 2 / 3) | reads to surviving replicas: failed / sent | "
               "reads to the killed replica: failed / sent | duplicate tickets | stores identical (mdb_dump -a) | "
               "identical but meta/schema created_unix_ms | settle s |")
    out.append("|---|---:|---|---:|---:|---|---|---|---:|---|---|---:|")
    for r in results:
        out.append("| %s | %d | %d (%d / %d) | %d | %d%s | %s | %d / %d | %d / %d | %d | %s | %s | %s |" % (
            r["config"] + (" (%s)" % r["flags"] if r["flags"] else ""),
            sum(1 for k in r["kills"] if k["killed"]), r["acked"], r["acked_by_kind"]["Route"],
            r["acked_by_kind"]["CreateTicket"], r["retries"], r["failed_writes"],
            (" (%s)" % ", ".join(r["failed_write_codes"])) if r["failed_writes"] else "",
            " / ".join(str(v) for v in r["lost"].values()), r["reads_surviving_failed"], r["reads_surviving"],
            r["reads_killed_failed"], r["reads_killed"], r["duplicate_create_tickets"],
            "yes" if r["dumps_identical"] else "**no**", "yes" if r["dumps_identical_but_created"] else "**no**",
            "%.1f" % r["settle_s"] if r["settle_s"] is not None else "-"))
    out.append("")
    out.append("Write gap per failover (kill -9 of the leader to the first acknowledgement of a write sent after "
               "it), seconds (target <= 2 s):")
    out.append("")
    out.append("| configuration | failovers | min | p50 | p90 | max | within 2 s | every gap, in round order |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        g = r["gaps"]
        out.append("| %s | %d | %s | %d of %d | %s |" % (
            r["config"], len(g), fmt_gaps(g), sum(1 for x in g if x <= 2.0), len(g),
            " ".join("%.2f" % x for x in g)))
    for r in results:
        for name, c in sorted(r.get("crashed", {}).items()):
            out.append("")
            out.append("%s: **%s exited by itself** (status %s, found before round %s; not restarted); its log ends: `%s`" % (
                r["config"], name, c["exit"], c["round"], c["log"].strip().splitlines()[-1] if c["log"].strip() else ""))
        if r["acked_without_ticket"]:
            out.append("")
            out.append("%s: %d acknowledged Routes answered without a ticket (not checked)." % (
                r["config"], r["acked_without_ticket"]))
        if r["lost_examples"] or r["reads_surviving_fail_examples"] or r["failed_write_examples"]:
            out.append("")
            out.append("%s, lost writes (first 10 misses; ack time against the kill before it):" % r["config"])
            for x in r["lost_examples"]:
                out.append("- %(kind)s %(key)s -> %(ticket_id)s, acknowledged through %(sent_to)s at applied index "
                           "%(applied_index)s, %(attempts)s attempt(s), %(s_after_kill)s s after the kill of round "
                           "%(after_kill_round)s (%(killed)s): missing on %(missing_on)s" % x)
            if r["reads_surviving_fail_examples"]:
                out.append("- surviving read failures, e.g.: %s" % r["reads_surviving_fail_examples"])
            if r["failed_write_examples"]:
                out.append("- failed writes, e.g.: %s" % r["failed_write_examples"])
        if not r["dumps_identical_but_created"]:
            out.append("")
            out.append("%s: the stores differ (dump sha256 %s); the diff's first lines are in the raw JSON "
                       "(RAW=FILE) and the dumps in the kept work dir." % (r["config"], r["dump_sha256"]))
    return "\n".join(out)


def main():
    work = tempfile.mkdtemp(prefix="helpwire-cluster-fault.", dir=E.get("WORK_DIR"))
    results = []
    try:
        for name in E.get("CONFIGS", "default slow").split():
            results.append(run_config(name, CONFIGS[name], work))
        print(report(results))
        if E.get("RAW"):
            with open(E["RAW"], "w") as f:
                json.dump(results, f, indent=1, default=str)
    finally:
        if E.get("KEEP_WORK") or KEEP:
            log("work dir kept: %s%s" % (work, (" (failed checks: %s)" % ", ".join(KEEP)) if KEEP else ""))
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
