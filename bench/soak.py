"""soak.py: helpwired under a long mixed load (issue 24). Run it through
bench/soak.sh, which builds the binaries.

One helpwired --demo on a fresh store, its per-sender limits left on
(helpwired's defaults: a RESOURCE_EXHAUSTED RATE_LIMITED answer is designed
shedding, as is OVERLOADED from --max-in-flight). For --minutes:
  - ROUTE_THREADS threads: Route from a pool of --senders senders on two
    channels (a few fresh senders all the time: new customers), texts that
    get an automatic answer, open a ticket or add to one;
  - an agent thread: CreateTicket (idempotency key) for known customers,
    AddMessage agent replies, CloseTicket (which sends a survey) and
    SubmitSurvey with the token of the survey link, GetTicket; open tickets
    are kept under --max-open by closing the oldest;
  - a watcher: WatchTickets on a new connection, read 1-4 s, dropped;
  - one Outbox subscriber per channel: Subscribe, Ack in batches, dropped
    and subscribed again every 20-60 s;
  - an admin thread: a knowledge import (`helpwire import articles`, the
    same --articles ids each time, their text changed) every
    --import-every s, one Backup half way, and every --token-every s a
    token created, used, revoked, and refused once revoked.
Every --sample-s seconds: /proc/PID (VmRSS, RssAnon, open fds, threads),
the metrics endpoint (helpwire_store_map_used_bytes, the outbox backlog,
shed and rate-limited calls), and the latency of the unary calls finished in
the window (p50, p99), their errors and shed answers.

Pass rules, on the samples after the warm-up (the first --warmup-frac of
the run, default 20%), slopes by least squares:
  - RssAnon (the heap; VmRSS also counts the store's mapped pages, which
    grow with the data) grows by at most max(10% of its mean, 8 MiB) over
    the measured span (slope x span);
  - open fds grow by at most max(4, 10% of their mean);
  - threads grow by at most 2;
  - p99: the median of the last third's windows at most 2x the first third's;
  - no error but designed shedding; the server never exits and stops
    cleanly (SIGTERM, status 0) at the end;
  - every part of the mix ran (so a broken driver cannot pass).
Prints Markdown (figures and rules) on stdout, progress on stderr; exit 0
when every rule passes, 1 when one fails, 2 on a setup error.
`soak.py --judge RAW.json` applies the rules again to saved samples.
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import cluster_bench as cb
import cluster_fault as cf
import grpc

log = cb.log
CHANNELS = ("CHANNEL_TELEGRAM", "CHANNEL_WHATSAPP")
FAQ_TEXTS = ["How do I reset my password?", "When is support available?", "What is your refund policy?",
             "如何重置密码", "工作时间"]
TICKET_TEXTS = ["My invoice shows a double charge and I need a refund for order %s",
                "The app crashes when I upload a photo, order %s",
                "I was charged twice for my subscription %s, please help",
                "我的订单 %s 一直没有发货"]
OTHER_TEXTS = ["thanks!", "hello", "5"]


# ------------------------------------------------------------------ stats


def shed_kind(code, details):
    """'shed' for designed shedding (RESOURCE_EXHAUSTED: overloaded or
    rate limited), None for an error."""
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        d = (details or "").lower()
        if "out of memory" not in d and "exceeds the" not in d:
            return "shed"
    return None


class Stats:
    """Counts per activity, and the latencies of the current window."""

    def __init__(self):
        self.lock = threading.Lock()
        self.window = []  # latencies (s) of unary calls in this window
        self.w_err = 0
        self.w_shed = 0
        self.ok = {}  # activity -> count
        self.shed = {}
        self.errors = {}  # "activity CODE" -> count
        self.error_examples = []

    def add(self, what, n=1):
        with self.lock:
            self.ok[what] = self.ok.get(what, 0) + n

    def timed(self, what, fn, *a, designed=(), **kw):
        """Calls fn; returns its result, or None after a shed or an error
        (recorded). designed: (code, text in the details) pairs that answer
        a race of the mix's own threads as the API says (a ticket another
        thread has just closed): counted apart, not errors. Only unary calls
        go through here."""
        t = time.monotonic()
        try:
            r = fn(*a, **kw)
        except grpc.RpcError as e:
            dt = time.monotonic() - t
            kind = shed_kind(e.code(), e.details())
            raced = any(e.code() == c and x in (e.details() or "") for c, x in designed)
            with self.lock:
                self.window.append(dt)
                if kind:
                    self.shed[what] = self.shed.get(what, 0) + 1
                    self.w_shed += 1
                elif raced:
                    key = what + " (refused by design: %s)" % e.code().name
                    self.ok[key] = self.ok.get(key, 0) + 1
                else:
                    self.error(what, e.code(), e.details())
            return None
        dt = time.monotonic() - t
        with self.lock:
            self.window.append(dt)
            self.ok[what] = self.ok.get(what, 0) + 1
        return r

    def error(self, what, code, details):
        """Records an error (caller holds the lock or not: re-entrant use
        avoided by callers)."""
        key = "%s %s" % (what, getattr(code, "name", code))
        self.errors[key] = self.errors.get(key, 0) + 1
        self.w_err += 1
        if len(self.error_examples) < 20:
            self.error_examples.append("%s: %s" % (key, (details or "")[:160]))

    def error_locked(self, what, code, details):
        with self.lock:
            self.error(what, code, details)

    def take_window(self):
        with self.lock:
            w, e, s = self.window, self.w_err, self.w_shed
            self.window, self.w_err, self.w_shed = [], 0, 0
        return w, e, s


# ------------------------------------------------------------------ load


class Load:
    def __init__(self, node, token, args, work):
        self.node, self.token, self.args, self.work = node, token, args, work
        self.st = Stats()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.customers = []  # (customer id, channel)
        self.open = []  # ticket ids, oldest first
        self.seq = 0
        self.t0 = time.monotonic()

    def next_id(self):
        with self.lock:
            self.seq += 1
            return self.seq

    def pace(self, t_start, per_s):
        """Sleeps so one thread makes per_s iterations a second."""
        if per_s > 0:
            self.stop.wait(max(0.0, 1.0 / per_s - (time.monotonic() - t_start)))

    def note_ticket(self, ticket_id):
        with self.lock:
            if ticket_id and ticket_id not in self.open:
                self.open.append(ticket_id)

    # Route from a pool of senders; some fresh ones (new customers).
    def route_worker(self, tid):
        conns = cf.Conns([self.node], self.token)
        rnd = random.Random(tid)
        try:
            while not self.stop.is_set():
                t = time.monotonic()
                n = self.next_id()
                ch = CHANNELS[n % len(CHANNELS)]
                user = ("soak-new-%d" % n) if rnd.random() < 0.02 else ("soak-%d" % rnd.randrange(self.args.senders))
                r = rnd.random()
                text = (rnd.choice(FAQ_TEXTS) if r < 0.5 else rnd.choice(OTHER_TEXTS) if r < 0.8
                        else rnd.choice(TICKET_TEXTS) % n)
                resp = self.st.timed("Route", conns.call, 0, "helpwire.v1.Router/Route", 10.0, channel=ch,
                                     channelUserId=user, displayName="Soak " + user, text=text,
                                     messageId="soak-m-%d" % n)
                if resp is not None:
                    resp = resp[0]
                    if resp.ticket_id:
                        self.note_ticket(resp.ticket_id)
                    if resp.customer_id:
                        with self.lock:
                            if len(self.customers) < 5000:
                                self.customers.append((resp.customer_id, ch))
                            else:
                                self.customers[n % 5000] = (resp.customer_id, ch)
                self.pace(t, self.args.route_rate)
        finally:
            conns.close()

    # Agent work: tickets created, answered, closed; surveys answered.
    def agent_worker(self):
        conns = cf.Conns([self.node], self.token)
        rnd = random.Random(7)
        try:
            while not self.stop.is_set():
                t = time.monotonic()
                with self.lock:
                    n_open = len(self.open)
                    cust = rnd.choice(self.customers) if self.customers else None
                    oldest = self.open[0] if self.open else None
                    some = rnd.choice(self.open) if self.open else None
                r = rnd.random()
                # over --max-open: mostly closing, still some of the rest
                if oldest and ((n_open > self.args.max_open and rnd.random() < 0.7) or r < 0.3):
                    self.close(conns, oldest, rnd)
                elif cust and r < 0.55:
                    n = self.next_id()
                    resp = self.st.timed("CreateTicket", conns.call, 0, "helpwire.v1.Tickets/CreateTicket", 10.0,
                                         customerId=cust[0], channel=cust[1], text=TICKET_TEXTS[0] % n,
                                         subject="soak %d" % n, idempotencyKey="soak-k-%d" % n)
                    if resp is not None:
                        self.note_ticket(resp[0].ticket.id)
                elif some and r < 0.9:
                    # another agent thread may have closed it meanwhile
                    self.st.timed("AddMessage", conns.call, 0, "helpwire.v1.Tickets/AddMessage", 10.0, ticketId=some,
                                  kind="MESSAGE_KIND_AGENT_REPLY", text="We are looking into it (%d)." % self.next_id(),
                                  designed=[(grpc.StatusCode.FAILED_PRECONDITION, "is closed")])
                elif some:
                    self.st.timed("GetTicket", conns.call, 0, "helpwire.v1.Tickets/GetTicket", 10.0, ticketId=some,
                                  includeMessages=True, messagesPageSize=20)
                self.pace(t, self.args.agent_rate)
        finally:
            conns.close()

    def close(self, conns, ticket_id, rnd):
        with self.lock:
            if ticket_id in self.open:
                self.open.remove(ticket_id)
        try:
            resp, _ = conns.call(0, "helpwire.v1.Tickets/CloseTicket", 10.0, ticketId=ticket_id, resolution="solved")
        except grpc.RpcError as e:
            # closed meanwhile by the customer's own answer is not ours to count
            if e.code() == grpc.StatusCode.FAILED_PRECONDITION and "already closed" in (e.details() or ""):
                return
            kind = shed_kind(e.code(), e.details())
            if kind:
                with self.st.lock:
                    self.st.shed["CloseTicket"] = self.st.shed.get("CloseTicket", 0) + 1
            else:
                self.st.error_locked("CloseTicket", e.code(), e.details())
            return
        self.st.add("CloseTicket")
        if resp.survey_url and rnd.random() < 0.7:
            token = resp.survey_url.rsplit("/", 1)[-1]
            # The customer's bare "5" in the chat (a Route text of the mix)
            # answers the pending survey too: a second answer is refused.
            self.st.timed("SubmitSurvey", conns.call, 0, "helpwire.v1.Surveys/SubmitSurvey", 10.0, token=token,
                          rating=rnd.randint(1, 5), comment="soak",
                          designed=[(grpc.StatusCode.ALREADY_EXISTS, "already answered")])

    # WatchTickets streams that connect and drop.
    def watcher(self):
        rnd = random.Random(11)
        while not self.stop.is_set():
            c = cb.client(self.node.address, self.token)
            got = [0]
            try:
                stream = c.stream("helpwire.v1.Tickets/WatchTickets")
                timer = threading.Timer(rnd.uniform(1, 4), stream.cancel)
                timer.start()
                try:
                    for _ in stream:
                        got[0] += 1
                except grpc.RpcError as e:
                    if e.code() != grpc.StatusCode.CANCELLED and not self.stop.is_set():
                        self.st.error_locked("WatchTickets", e.code(), e.details())
                timer.cancel()
                self.st.add("WatchTickets streams")
                self.st.add("WatchTickets events", got[0])
            finally:
                c.close()

    # One outbox subscriber per channel: subscribe, ack, drop, again.
    def subscriber(self, channel):
        rnd = random.Random(channel)
        while not self.stop.is_set():
            c = cb.client(self.node.address, self.token)
            conns = cf.Conns([self.node], self.token)
            pending = []
            pl = threading.Lock()
            try:
                stream = c.stream("helpwire.v1.Outbox/Subscribe", channel=channel, instance="soak-" + channel)
                end = time.monotonic() + rnd.uniform(20, 60)

                def acker():
                    # acknowledges what came in, every 0.3 s; drops the
                    # subscription when its time is up or the soak ends
                    while True:
                        stopping = done.wait(0.3)
                        with pl:
                            seqs = pending[:]
                            del pending[:]
                        if seqs:
                            r = self.st.timed("Outbox Ack", conns.call, 0, "helpwire.v1.Outbox/Ack", 10.0,
                                              channel=channel, seqs=seqs)
                            if r is not None:
                                self.st.add("outbox messages acked", len(seqs))
                        if stopping:
                            return
                        if self.stop.is_set() or time.monotonic() > end:
                            stream.cancel()

                done = threading.Event()
                ack_t = threading.Thread(target=acker, daemon=True)
                ack_t.start()
                try:
                    for m in stream:
                        with pl:
                            pending.append(m.seq)
                except grpc.RpcError as e:
                    if e.code() != grpc.StatusCode.CANCELLED and not self.stop.is_set():
                        self.st.error_locked("Outbox Subscribe", e.code(), e.details())
                done.set()
                ack_t.join()
                self.st.add("Outbox subscriptions")
            finally:
                conns.close()
                c.close()

    # Imports, a backup, tokens.
    def admin_worker(self):
        conns = cf.Conns([self.node], self.token)
        a = self.args
        duration = a.minutes * 60
        next_import = min(a.import_every, duration / 4.0)
        next_backup = duration / 2.0
        next_token = min(a.token_every, duration / 8.0)
        imports = 0
        try:
            while not self.stop.is_set():
                now = time.monotonic() - self.t0
                if now >= next_import:
                    imports += 1
                    self.knowledge_import(imports)
                    next_import += a.import_every
                elif now >= next_backup:
                    self.backup(conns)
                    next_backup = float("inf")
                elif now >= next_token:
                    self.token_cycle(conns)
                    next_token += a.token_every
                else:
                    self.stop.wait(0.2)
        finally:
            conns.close()

    def knowledge_import(self, round_):
        path = os.path.join(self.work, "articles.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            for i in range(self.args.articles):
                f.write(json.dumps({"id": "soak-art-%d" % i, "title": "Soak manual %d, edition %d" % (i, round_),
                                    "body": ("How to calibrate the soak widget number %d, edition %d. " % (i, round_))
                                    * 8, "locale": "en", "tags": ["soak"]}) + "\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("HELPWIRE_")}
        env["HELPWIRE_SERVER"] = self.node.address
        env["HELPWIRE_TOKEN"] = self.token
        t = time.monotonic()
        p = subprocess.run([self.args.cli, "import", "articles", path], env=env, capture_output=True, text=True,
                           timeout=600)
        dt = time.monotonic() - t
        if p.returncode != 0:
            self.st.error_locked("import", "exit %d" % p.returncode, (p.stderr or p.stdout)[-300:])
        else:
            self.st.add("imports")
            with self.st.lock:
                self.st.ok.setdefault("import seconds", []).append(round(dt, 2))
        log("   import %d: %d articles in %.1f s (exit %d)" % (round_, self.args.articles, dt, p.returncode))

    def backup(self, conns):
        target = os.path.join(self.work, "backup")
        resp = self.st.timed("Backup", conns.call, 0, "helpwire.v1.Admin/Backup", 300.0, directory=target)
        if resp is not None:
            log("   backup: %d bytes in %d ms" % (resp[0].size_bytes, resp[0].took_ms))
            with self.st.lock:
                self.st.ok["backup bytes"] = resp[0].size_bytes
            if resp[0].size_bytes == 0:
                self.st.error_locked("Backup", "EMPTY", "backup of 0 bytes")
        shutil.rmtree(target, ignore_errors=True)

    def token_cycle(self, conns):
        n = self.next_id()
        r = self.st.timed("CreateToken", conns.call, 0, "helpwire.v1.Admin/CreateToken", 10.0, role="ROLE_BRIDGE",
                          description="soak %d" % n)
        if r is None:
            return
        info, secret = r[0].info, r[0].token
        mine = cf.Conns([self.node], secret)

        def probe():
            """GetSurvey of a survey that does not exist: NOT_FOUND once the
            token is accepted, UNAUTHENTICATED when it is not."""
            t = time.monotonic()
            try:
                mine.call(0, "helpwire.v1.Surveys/GetSurvey", 10.0, surveyId="sv-soak-none")
                return "OK", None
            except grpc.RpcError as e:
                with self.st.lock:
                    self.st.window.append(time.monotonic() - t)
                return e.code().name, e.details()

        try:
            code, details = probe()
            if code != "NOT_FOUND":
                self.st.error_locked("call with the new token", code, details)
                return
            self.st.add("call with the new token")
            if self.st.timed("RevokeToken", conns.call, 0, "helpwire.v1.Admin/RevokeToken", 10.0,
                             id=info.id) is None:
                return
            code, details = probe()
            if code == "UNAUTHENTICATED":
                self.st.add("revoked token refused")
            else:
                self.st.error_locked("revoked token", code, "a revoked token was answered %s: %s" % (code, details))
        finally:
            mine.close()


# ------------------------------------------------------------------ sampling


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile", "Threads"):
                out[k] = int(v.split()[0])
    out["fds"] = len(os.listdir("/proc/%d/fd" % pid))
    return out


def metrics_sums(port, timeout=10):
    """{name: value} from /metrics, labelled samples summed per name (the
    histogram buckets are left out)."""
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=timeout).read().decode()
    out = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        name = name.split("{", 1)[0]
        if name.endswith("_bucket"):
            continue
        try:
            out[name] = out.get(name, 0.0) + float(value)
        except ValueError:
            pass
    return out


def take_sample(node, load, t0):
    s = {"t_s": round(time.monotonic() - t0, 2)}
    st = proc_status(node.proc.pid)
    s["rss_kib"], s["rss_anon_kib"] = st.get("VmRSS", 0), st.get("RssAnon", 0)
    s["rss_file_kib"], s["threads"], s["fds"] = st.get("RssFile", 0), st.get("Threads", 0), st["fds"]
    try:
        m = metrics_sums(node.mport)
    except Exception as e:  # a scrape that failed: the sample without it
        log("   metrics scrape failed: %s" % e)
        m = {}
    for k, name in (("map_used", "helpwire_store_map_used_bytes"), ("map_size", "helpwire_store_map_size_bytes"),
                    ("writes", "helpwire_store_writes_total"), ("backlog", "helpwire_outbox_backlog"),
                    ("shed_total", "helpwire_calls_shed_total"), ("in_flight", "helpwire_calls_in_flight")):
        s[k] = m.get(name)
    w, e, sh = load.st.take_window()
    s["calls"], s["errors"], s["shed"] = len(w), e, sh
    s["p50_ms"] = round(cb.pct(w, 50) * 1000, 2) if w else None
    s["p99_ms"] = round(cb.pct(w, 99) * 1000, 2) if w else None
    s["max_ms"] = round(max(w) * 1000, 2) if w else None
    return s


# ------------------------------------------------------------------ rules


def slope(xs, ys):
    """Least-squares slope of ys over xs (per unit of x)."""
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx


def judge(raw, warmup_frac=0.2, p99_ratio=2.0, rss_growth_mib=8.0):
    """The pass rules on raw = {"samples": [...], "counts": {...},
    "errors": {...}, "server": {...}}. Returns (rows, passed): rows of
    (rule, figure, limit, ok)."""
    samples = raw["samples"]
    rows = []
    n_warm = int(len(samples) * warmup_frac)
    post = samples[n_warm:]
    if len(post) < 3:
        return [("enough samples after the warm-up", "%d" % len(post), ">= 3", False)], False
    ts = [s["t_s"] / 60.0 for s in post]  # minutes
    span = ts[-1] - ts[0]

    def growth(key):
        ys = [s[key] for s in post]
        b = slope(ts, ys)
        return b, b * span, sum(ys) / len(ys)

    b, g, mean = growth("rss_anon_kib")
    lim = max(0.10 * mean, rss_growth_mib * 1024)
    rows.append(("RssAnon growth after the warm-up (slope x span)", "%+.0f KiB/min, %+.1f MiB over %.1f min (mean "
                 "%.1f MiB)" % (b, g / 1024, span, mean / 1024), "<= %.1f MiB" % (lim / 1024), g <= lim))
    b, g, mean = growth("fds")
    lim = max(4.0, 0.10 * mean)
    rows.append(("open fds growth", "%+.2f /min, %+.1f over the span (mean %.1f)" % (b, g, mean), "<= %.1f" % lim,
                 g <= lim))
    b, g, mean = growth("threads")
    rows.append(("threads growth", "%+.2f /min, %+.1f (mean %.1f)" % (b, g, mean), "<= 2", g <= 2))
    p99 = [s["p99_ms"] for s in post if s.get("p99_ms") is not None]
    third = max(1, len(p99) // 3)
    first, last = cb.median(p99[:third]), cb.median(p99[-third:])
    rows.append(("p99 stable: median of the last third / the first third", "%.1f ms / %.1f ms = %.2f" % (
        last, first, last / first if first else float("inf")), "<= %.1f" % p99_ratio,
        bool(p99) and last <= p99_ratio * first))
    n_err = sum(raw.get("errors", {}).values())
    rows.append(("errors other than designed shedding", "%d" % n_err, "0", n_err == 0))
    srv = raw.get("server", {})
    rows.append(("server ran throughout and stopped cleanly (SIGTERM)", "exit status %s" % srv.get("exit"), "0",
                 srv.get("exit") == 0 and not srv.get("died")))
    counts = raw.get("counts", {})
    need = ["Route", "CreateTicket", "AddMessage", "CloseTicket", "SubmitSurvey", "WatchTickets streams",
            "Outbox subscriptions", "outbox messages acked", "imports", "Backup", "CreateToken",
            "call with the new token", "revoked token refused"]
    if raw.get("need") is not None:
        need = raw["need"]
    missing = [k for k in need if not counts.get(k)]
    rows.append(("every part of the mix ran", "missing: %s" % (", ".join(missing) or "none"), "none", not missing))
    return rows, all(r[3] for r in rows)


# ------------------------------------------------------------------ report


def plot(samples, png, title, warmup_frac=0.2):
    """Draws RSS, fds and threads, p99 over time; a dashed line where the
    warm-up ends."""
    if not shutil.which("gnuplot"):
        log("   no gnuplot: no plot")
        return False
    dat = png + ".dat"
    n_warm = int(len(samples) * warmup_frac)
    warm = samples[n_warm]["t_s"] / 60.0 if n_warm < len(samples) else 0
    with open(dat, "w") as f:
        f.write("# min rss_mib rss_anon_mib fds threads p99_ms p50_ms\n")
        for s in samples:
            f.write("%.3f %.2f %.2f %d %d %s %s\n" % (s["t_s"] / 60.0, s["rss_kib"] / 1024.0, s["rss_anon_kib"] / 1024.0,
                                                      s["fds"], s["threads"], s["p99_ms"] if s["p99_ms"] is not None
                                                      else "NaN", s["p50_ms"] if s["p50_ms"] is not None else "NaN"))
    script = """
set terminal pngcairo size 900,900 noenhanced
set output '%(png)s'
set multiplot layout 3,1 title '%(title)s'
set grid
set xlabel 'minutes'
set key top left
set ylabel 'MiB'
set yrange [0:*]
set arrow 1 from %(warm)g, graph 0 to %(warm)g, graph 1 nohead dt 2
plot '%(dat)s' using 1:2 with lines lw 2 title 'VmRSS', '' using 1:3 with lines lw 2 title 'RssAnon (heap)'
set ylabel 'count'
plot '%(dat)s' using 1:4 with lines lw 2 title 'open fds', '' using 1:5 with lines lw 2 title 'threads'
set ylabel 'ms'
plot '%(dat)s' using 1:6 with linespoints lw 2 title 'p99 per window', '' using 1:7 with lines title 'p50'
unset multiplot
""" % {"png": png, "dat": dat, "title": title, "warm": warm}
    r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    os.unlink(dat)
    if r.returncode != 0:
        log("   gnuplot failed: %s" % r.stderr[-300:])
        return False
    return True


def report(raw, rows, passed, args):
    out = []
    samples = raw["samples"]
    c = raw["counts"]
    out.append("Load: %d Route threads at %s calls/s each over %d senders (2%% fresh), an agent at %s actions/s, "
               "a WatchTickets stream dropped every 1-4 s, an Outbox subscriber per channel (%s) dropped every "
               "20-60 s, an import of %d articles every %d s, a Backup at half time, a token cycle every %d s; "
               "helpwired's per-sender limits on (defaults). Warm-up: the first %d%% of the samples; a sample "
               "every %g s." % (args.route_threads, args.route_rate, args.senders, args.agent_rate,
                                ", ".join(CHANNELS), args.articles, args.import_every, args.token_every,
                                int(args.warmup_frac * 100), args.sample_s))
    out.append("")
    keys = [k for k in sorted(c) if not isinstance(c[k], list)]
    out.append("Done: " + ", ".join("%s %s" % (k, c[k]) for k in keys) + ".")
    if c.get("import seconds"):
        out.append("Import times (s): %s." % " ".join(str(x) for x in c["import seconds"]))
    shed = raw.get("shed", {})
    total = sum(v for k, v in c.items() if not isinstance(v, list))
    out.append("Designed shedding: %s." % (", ".join("%s %d" % kv for kv in sorted(shed.items())) or "none"))
    if raw.get("error_examples"):
        out.append("Errors: %s; e.g. %s" % (raw["errors"], "; ".join(raw["error_examples"][:5])))
    out.append("")
    first, last = samples[0], samples[-1]
    post = samples[int(len(samples) * args.warmup_frac):]
    if first.get("map_used") is not None and last.get("map_used") is not None and post:
        dw = (post[-1]["writes"] or 0) - (post[0]["writes"] or 0)
        dm = (post[-1]["map_used"] or 0) - (post[0]["map_used"] or 0)
        out.append("LMDB map in use: %.1f MiB at the first sample, %.1f MiB at the last (map %.0f MiB); after the "
                   "warm-up %+.1f MiB for %d store writes (%.0f B per write: the data, not a leak). Outbox backlog "
                   "at the last sample: %s." % (first["map_used"] / 2 ** 20, last["map_used"] / 2 ** 20,
                                                (last["map_size"] or 0) / 2 ** 20, dm / 2 ** 20, dw,
                                                dm / dw if dw else float("nan"), last.get("backlog")))
        out.append("")
    out.append("| rule | figure | limit | |")
    out.append("|---|---|---|---|")
    for name, fig, lim, ok in rows:
        out.append("| %s | %s | %s | %s |" % (name, fig, lim, "pass" if ok else "**FAIL**"))
    out.append("")
    out.append("**%s**" % ("PASS" if passed else "FAIL"))
    out.append("")
    out.append("Samples (every %dth):" % max(1, len(samples) // 12))
    out.append("")
    out.append("| min | VmRSS MiB | RssAnon MiB | fds | threads | map used MiB | backlog | calls | p50 ms | p99 ms | "
               "errors | shed |")
    out.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    step = max(1, len(samples) // 12)
    for s in samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else []):
        out.append("| %.1f | %.1f | %.1f | %d | %d | %s | %s | %d | %s | %s | %d | %d |" % (
            s["t_s"] / 60.0, s["rss_kib"] / 1024.0, s["rss_anon_kib"] / 1024.0, s["fds"], s["threads"],
            "%.1f" % (s["map_used"] / 2 ** 20) if s.get("map_used") is not None else "-",
            "%d" % s["backlog"] if s.get("backlog") is not None else "-", s["calls"], s["p50_ms"], s["p99_ms"],
            s["errors"], s["shed"]))
    return "\n".join(out)


# ------------------------------------------------------------------ main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--sample-s", type=float, default=10.0)
    ap.add_argument("--warmup-frac", type=float, default=0.2)
    ap.add_argument("--route-threads", type=int, default=2)
    ap.add_argument("--route-rate", type=float, default=40.0, help="Route calls/s per thread")
    ap.add_argument("--agent-rate", type=float, default=25.0, help="agent actions/s")
    ap.add_argument("--senders", type=int, default=1000)
    ap.add_argument("--max-open", type=int, default=300)
    ap.add_argument("--articles", type=int, default=300)
    ap.add_argument("--import-every", type=float, default=300.0)
    ap.add_argument("--token-every", type=float, default=30.0)
    ap.add_argument("--p99-ratio", type=float, default=2.0, help="the p99 rule's limit")
    ap.add_argument("--rss-growth-mib", type=float, default=8.0,
                    help="the memory rule's floor: RssAnon may grow max(10%% of its mean, this) after the warm-up")
    ap.add_argument("--plot", default="", help="PNG to draw (gnuplot)")
    ap.add_argument("--raw", default="", help="write the samples and counts here (JSON)")
    ap.add_argument("--cli", default=os.environ.get("CLI", ""), help="the helpwire CLI (imports)")
    ap.add_argument("--judge", default="", help="only apply the rules to a saved --raw file")
    ap.add_argument("--server-flags", default="", help="more helpwired flags")
    args = ap.parse_args()

    if args.judge:
        raw = json.load(open(args.judge))
        rows, passed = judge(raw, args.warmup_frac, args.p99_ratio, args.rss_growth_mib)
        for name, fig, lim, ok in rows:
            print("%-4s %s: %s (limit %s)" % ("ok" if ok else "FAIL", name, fig, lim))
        print("PASS" if passed else "FAIL")
        return 0 if passed else 1
    if not cb.SERVER or not cb.PROTOSET or not args.cli:
        log("soak.py: set SERVER, PROTOSET and CLI (or run bench/soak.sh)")
        return 2

    work = tempfile.mkdtemp(prefix="helpwire-soak.", dir=os.environ.get("WORK_DIR"))
    node = cb.Node(work, "soak", extra=args.server_flags.split(), demo=True, limits=())
    raw = {"samples": [], "args": vars(args)}
    keep = False
    try:
        node.start()
        node.wait_listening(60)
        end = time.monotonic() + 10
        while "admin" not in node.tokens and time.monotonic() < end:
            time.sleep(0.05)
        token = node.tokens["admin"]
        load = Load(node, token, args, work)
        threads = [threading.Thread(target=load.route_worker, args=(i,)) for i in range(args.route_threads)]
        threads += [threading.Thread(target=load.agent_worker), threading.Thread(target=load.watcher),
                    threading.Thread(target=load.admin_worker)]
        threads += [threading.Thread(target=load.subscriber, args=(ch,)) for ch in CHANNELS]
        log("== soak: helpwired pid %d on %s for %.1f min, a sample every %g s" % (
            node.proc.pid, node.address, args.minutes, args.sample_s))
        for t in threads:
            t.start()
        t0 = load.t0
        died = False
        for i in range(1, int(args.minutes * 60 / args.sample_s) + 1):
            wait = t0 + i * args.sample_s - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if not node.alive():
                died = True
                log("   helpwired exited by itself with %s:\n%s" % (node.proc.returncode, node.tail_log(5)))
                break
            s = take_sample(node, load, t0)
            raw["samples"].append(s)
            log("   %5.1f min  rss %6.1f MiB anon %6.1f  fds %3d  thr %2d  map %s  calls %5d  p99 %s ms  err %d "
                "shed %d" % (s["t_s"] / 60, s["rss_kib"] / 1024, s["rss_anon_kib"] / 1024, s["fds"], s["threads"],
                             "%.1f MiB" % (s["map_used"] / 2 ** 20) if s["map_used"] is not None else "-", s["calls"],
                             s["p99_ms"], s["errors"], s["shed"]))
        load.stop.set()
        for t in threads:
            t.join(60)
        exit_code = node.stop() if not died else node.proc.returncode
        raw["server"] = {"exit": exit_code, "died": died}
        raw["counts"] = dict(load.st.ok)
        raw["shed"] = dict(load.st.shed)
        raw["errors"] = dict(load.st.errors)
        raw["error_examples"] = list(load.st.error_examples)
        rows, passed = judge(raw, args.warmup_frac, args.p99_ratio, args.rss_growth_mib)
        keep = not passed
        if args.raw:
            with open(args.raw, "w") as f:
                json.dump(raw, f, indent=1)
        if args.plot and raw["samples"]:
            if plot(raw["samples"], args.plot, "helpwired soak, %.1f min (%s)" % (
                    args.minutes, time.strftime("%Y-%m-%d", time.gmtime())), args.warmup_frac):
                log("   plot: %s" % args.plot)
        print(report(raw, rows, passed, args))
        return 0 if passed else 1
    except Exception:
        keep = True
        raise
    finally:
        if node.alive():
            node.proc.kill()
            node.proc.wait()
        if keep or os.environ.get("KEEP_WORK"):
            log("work dir kept: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
