"""chaos_test: delivery guarantees under chaos, end to end.

Conversations (CHAOS_CONVERSATIONS, default 1000) run across the three
bridges (Telegram long polling, WhatsApp webhooks, web chat) against the
real helpwired (--demo) and the fake channel APIs of fake_channels.py,
while bridges are killed with SIGKILL, helpwired restarts (SIGTERM or
SIGKILL) and the upstreams fail at random (5xx, 429, timeouts, at
CHAOS_FAIL_RATE); some recipients refuse for good (Telegram 403, WhatsApp
131026). Every conversation: the customer writes (ref ...-1), an agent
replies through AddMessage, the customer writes again (ref ...-2). One
seeded RNG (CHAOS_SEED, printed first) picks every random thing: a run
with the same seed has the same refused recipients, the same kills and
restarts at the same moments and the same stalled recipients; which
upstream request gets an injected failure also depends on the order the
requests arrive in. Bridges keep their logs and state under TEST_TMPDIR
(dead letters: <state dir>/<bridge>.deadletter.jsonl).

Counted, and asserted:
- every inbound message is routed exactly once: its ref appears once among
  the customer messages of its customer's tickets (GetTicket as admin);
- every outbound message (the acknowledgement Route queued, every agent
  reply) reached the fake upstream (the web chat: the visitor's page) or is
  visible as DELIVERY_FAILED ("outbox seq N: ...") in its ticket's history;
  a refused recipient's are FAILED, a healthy one's delivered;
- duplicates at the upstream, per (recipient, text), stay within the
  window: each SIGKILL of a bridge may repeat what it had in flight
  (INFLIGHT_PER_KILL messages), and a send the fake accepted later than
  the bridge's HTTP timeout may be repeated once; nothing else;
- with 300 messages to stalled recipients pending (rate limited on every
  send), healthy recipients' delivery p99 (AddMessage commit -> fake
  received) stays within 2x of the idle channel's.

Some of these need work not on main yet; each such assertion is behind a
capability probe (printed in the summary), and HELPWIRE_CHAOS_FULL=1 turns
every one on regardless:
- per_recipient (Outbox.Subscribe opens with a lease control message):
  the p99 ratio, and INFLIGHT_PER_KILL becomes the per-recipient window
  (8, SubscribeRequest's default; CHAOS_INFLIGHT_PER_KILL overrides);
- intake_spool (whatsapp-bridge --help mentions a spool): WhatsApp
  inbound not lost when the bridge is killed after answering 200;
- webchat_history (webchat-bridge --help mentions a state dir / history):
  web chat replies not lost when the bridge is killed after acknowledging;
- failed_list (Outbox.ListFailed answers): every message counted FAILED
  is in the failed list.
Without the capability the count is still printed.
"""
import os
import queue
import random
import re
import signal
import tempfile
import threading
import time
import unittest

import grpc

import bridges_test as bt
import fake_channels as fc
import hwtest

API = bt.API
TMP = bt.TMP
SEED = int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(1, 1 << 31))
CONVERSATIONS = int(os.environ.get("CHAOS_CONVERSATIONS") or 1000)
FAIL_RATE = float(os.environ.get("CHAOS_FAIL_RATE") or 0.05)
INJECT_SECONDS = float(os.environ.get("CHAOS_SECONDS") or 50)  # how long the conversations start over
REFUSED_SHARE = 0.05  # of Telegram and WhatsApp conversations
STALLED_MESSAGES = int(os.environ.get("CHAOS_STALLED_MESSAGES") or 300)  # per channel, in the p99 phase
BUSY_WAIT_S = 10  # a healthy reply not there by then counts as infinitely late
P99_FLOOR_S = 0.1  # see the p99 phase: below this an idle p99 is noise
# Duplicates one SIGKILL of a bridge may cause (what it had in flight);
# default 1 (main delivers one message at a time), or the per-recipient
# window (8) once Outbox leases and windows are in.
INFLIGHT_PER_KILL = int(os.environ.get("CHAOS_INFLIGHT_PER_KILL") or 0)
FULL = os.environ.get("HELPWIRE_CHAOS_FULL") == "1"
HTTP_TIMEOUT_MS = 1000
BRIDGE_ARGS = ["--http-timeout-ms", str(HTTP_TIMEOUT_MS), "--log-level", "info"]
DELIVERY_FAILED = bt.DELIVERY_FAILED
CUSTOMER = API.pool.FindEnumTypeByName("helpwire.v1.MessageKind").values_by_name["MESSAGE_KIND_CUSTOMER"].number
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED,
             grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL)
CH = {"telegram": "CHANNEL_TELEGRAM", "whatsapp": "CHANNEL_WHATSAPP", "webchat": "CHANNEL_WEBCHAT"}

print("chaos_test seed=%d (replay: CHAOS_SEED=%d) conversations=%d fail_rate=%.3f"
      % (SEED, SEED, CONVERSATIONS, FAIL_RATE), flush=True)


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


class Work:
    """A few threads running tasks from a time-ordered queue; a task
    returns None when done, or the seconds after which to run it again."""

    def __init__(self, threads, name):
        self.q = queue.PriorityQueue()
        self.n = 0
        self.lock = threading.Lock()
        self.pending = 0
        self.stopping = False
        self.errors = []
        self.threads = [threading.Thread(target=self._run, name="%s-%d" % (name, i), daemon=True)
                        for i in range(threads)]
        for t in self.threads:
            t.start()

    def add(self, fn, delay=0.0):
        with self.lock:
            self.n += 1
            self.pending += 1
            self.q.put((time.time() + delay, self.n, fn))

    def idle(self):
        with self.lock:
            return self.pending == 0

    def _run(self):
        while True:
            due, n, fn = self.q.get()
            if fn is None:
                return
            wait = due - time.time()
            if wait > 0:
                self.q.put((due, n, fn))
                time.sleep(min(wait, 0.05))
                continue
            try:
                again = None if self.stopping else fn()
            except Exception as e:  # a bug in the test itself: keep it, fail later
                self.errors.append(repr(e))
                again = None
            if again is None:
                with self.lock:
                    self.pending -= 1
            else:
                with self.lock:
                    self.n += 1
                    self.q.put((time.time() + again, self.n, fn))

    def stop(self):
        self.stopping = True
        for _ in self.threads:
            self.q.put((0, 0, None))
        for t in self.threads:
            t.join(timeout=10)


class Conversation:
    def __init__(self, i, channel, user, refused):
        self.i = i
        self.channel = channel
        self.user = user  # channel_user_id (str)
        self.refused = refused
        self.refs = ["chaos-%d-%04d-1" % (SEED, i), "chaos-%d-%04d-2" % (SEED, i)]
        self.msg_ids = [None, None]  # the channel's message id per inbound, once sent
        self.ticket = None
        self.replies = []  # [text, seqs or None, commit time]
        self.replied = False
        self.cmid = 0

    def inbound_text(self, k):
        if k == 0:
            return "My invoice shows a double charge and I need a refund for order 4711 (ref %s)" % self.refs[0]
        return "Still waiting on the refund for order 4711, thanks (ref %s)" % self.refs[1]


class Rpc:
    """One shared client per role, re-made after helpwired restarts."""

    def __init__(self, server):
        self.server = server
        self.clients = {}
        self.lock = threading.Lock()

    def call(self, role, path, timeout=5, tries=200, **fields):
        last = None
        for _ in range(tries):
            with self.lock:
                c = self.clients.get(role)
                if c is None:
                    c = self.clients[role] = self.server.client(role)
            try:
                return c.call(path, timeout=timeout, **fields)
            except grpc.RpcError as e:
                if e.code() not in RETRYABLE:
                    raise
                last = e
                time.sleep(0.2)
        raise last

    def close(self):
        with self.lock:
            for c in self.clients.values():
                c.close()
            self.clients = {}


class Chaos(unittest.TestCase):
    def setUp(self):
        self.rng = random.Random(SEED)
        self.server = bt.Helpwired()
        self.rpc = Rpc(self.server)
        self.caps = self.probe_capabilities()
        self.dice = fc.ChaosDice(random.Random(self.rng.random()), FAIL_RATE,
                                 timeout_s=HTTP_TIMEOUT_MS / 1000.0 + 0.5)
        self.tg = fc.ChaosTelegram(bt.TG_SECRET, dice=self.dice)
        self.wa = fc.ChaosWhatsApp(bt.WA_PHONE_ID, bt.WA_TOKEN, dice=self.dice)
        self.tg_state = tempfile.mkdtemp(prefix="chaos-tg-", dir=TMP)
        self.wa_state = tempfile.mkdtemp(prefix="chaos-wa-", dir=TMP)
        # The web chat's history, spool and sent record survive its kills,
        # as its deployment's state dir does.
        self.wc_state = tempfile.mkdtemp(prefix="chaos-wc-", dir=TMP)
        self.wc_port = bt.free_port()
        self.bridges = {}
        self.bridge_lock = threading.Lock()
        self.kills = {"telegram": 0, "whatsapp": 0, "webchat": 0}
        self.restarts = {"SIGTERM": 0, "SIGKILL": 0}
        self.logs = []
        for name in ("telegram", "whatsapp", "webchat"):
            self.bridges[name] = self.start_bridge(name)

    def tearDown(self):
        for b in self.bridges.values():
            b.stop(timeout=20)
        self.rpc.close()
        self.server.stop()
        self.tg.close()
        self.wa.close()

    # ------------------------------------------------------------ processes

    def probe_capabilities(self):
        caps = {}
        c = self.server.client("bridge")
        try:
            first = next(iter(c.stream("helpwire.v1.Outbox/Subscribe", timeout=2, channel="CHANNEL_TELEGRAM")))
            caps["per_recipient"] = first.seq == 0 and first.lease != 0
        except (grpc.RpcError, StopIteration):
            caps["per_recipient"] = False
        finally:
            c.close()

        def help_of(name):
            return bt.run(name, ["--help"])[1].lower()
        caps["intake_spool"] = "spool" in help_of("whatsapp")
        a = self.server.client("admin")
        try:
            a.call("helpwire.v1.Outbox/ListFailed", timeout=5)
            caps["failed_list"] = True
        except grpc.RpcError as e:
            caps["failed_list"] = e.code() != grpc.StatusCode.UNIMPLEMENTED
        finally:
            a.close()
        wc = help_of("webchat")
        caps["webchat_history"] = "--state-dir" in wc or "history" in wc
        if FULL:
            caps = {k: True for k in caps}
        print("chaos_test capabilities: %s%s" % (caps, " (HELPWIRE_CHAOS_FULL=1)" if FULL else ""), flush=True)
        return caps

    def start_bridge(self, name):
        addr, token = self.server.address, self.server.bridge_token()
        if name == "telegram":
            return bt.start_telegram(addr, token, self.tg, self.tg_state, *BRIDGE_ARGS)
        if name == "whatsapp":
            env = bt.whatsapp_env(token)
            env["WHATSAPP_STATE_DIR"] = self.wa_state
            return bt.Bridge("whatsapp", ["--helpwire", addr, "--listen", "127.0.0.1:0", "--api-base",
                                          self.wa.api_base, "--phone-number-id", bt.WA_PHONE_ID] + bt.FAST +
                             BRIDGE_ARGS, env)
        return bt.Bridge("webchat", ["--helpwire", addr, "--listen", "127.0.0.1:%d" % self.wc_port,
                                     "--heartbeat-ms", "500"] + bt.FAST + ["--log-level", "info"],
                         {"HELPWIRE_TOKEN": token, "WEBCHAT_STATE_DIR": self.wc_state})

    def bridge(self, name):
        with self.bridge_lock:
            return self.bridges[name]

    def kill_bridge(self, name):
        with self.bridge_lock:
            old = self.bridges[name]
            old.stop(sig=signal.SIGKILL)
            self.logs.append(old.log_path)
            self.kills[name] += 1
            self.bridges[name] = self.start_bridge(name)

    def restart_helpwired(self, sig):
        s = self.server
        if sig == "SIGKILL":
            s.proc.kill()
            s.proc.wait()
            s.proc.stdout.close()
            s.log.close()
        else:
            s.stop()
        s.start()
        self.restarts[sig] += 1

    # ---------------------------------------------------------- the customer

    def send_inbound(self, conv, k, inbound):
        """Queues inbound message k of conv on its channel: Telegram holds
        it for getUpdates; the WhatsApp "Meta" and the web chat "visitor"
        send until the bridge answers 200, as they do."""
        text = conv.inbound_text(k)
        if conv.channel == "telegram":
            u = self.tg.add_text(int(conv.user), text)
            conv.msg_ids[k] = bt.telegram_key(u)
            return
        if conv.channel == "whatsapp":
            conv.msg_ids[k] = "wamid.CHAOS.%d.%d.%d" % (SEED, conv.i, k)
            body, sig = fc.whatsapp_webhook(bt.WA_APP_SECRET, bt.WA_PHONE_ID,
                                            messages=[{"from": conv.user, "id": conv.msg_ids[k], "text": text}],
                                            contacts=[(conv.user, "Chaos %d" % conv.i)])

            def post():
                try:
                    st, _, _ = fc.http_request(self.bridge("whatsapp").url + "/whatsapp/webhook", "POST", body,
                                               {"X-Hub-Signature-256": sig}, timeout=5)
                except OSError:
                    st = 0
                return None if st == 200 else 0.5  # Meta retries what was not answered 200
            inbound.add(post)
            return
        conv.msg_ids[k] = "%s:c%d" % (conv.user, k)

        def visit():
            try:
                st, j = bt.post_json("http://127.0.0.1:%d/api/messages" % self.wc_port,
                                     {"session_id": conv.user, "text": text, "client_message_id": "c%d" % k},
                                     timeout=5)
            except (OSError, ValueError):
                st = 0
            return None if st == 200 else 0.5  # the page sends again (Retry-After)
        inbound.add(visit)

    # -------------------------------------------------------------- the agent

    def find_ticket(self, conv):
        try:
            cu = self.rpc.call("admin", "helpwire.v1.Customers/LookupCustomer", channel=CH[conv.channel],
                               channel_user_id=conv.user)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        lt = self.rpc.call("admin", "helpwire.v1.Tickets/ListTickets", customer_id=cu.id)
        return lt.tickets[0].id if lt.tickets else None

    def ticket_messages(self, ticket):
        out, token = [], ""
        while True:
            r = self.rpc.call("admin", "helpwire.v1.Tickets/GetTicket", ticket_id=ticket, include_messages=True,
                              messages_page_size=100, messages_page_token=token)
            out += list(r.messages)
            token = r.next_messages_page_token
            if not token:
                return out

    def ticket_history(self, ticket):
        out, token = [], ""
        while True:
            r = self.rpc.call("admin", "helpwire.v1.Tickets/GetTicketHistory", ticket_id=ticket, page_size=100,
                              page_token=token)
            out += list(r.events)
            token = r.next_page_token
            if not token:
                return out

    def reply(self, conv, text):
        """AddMessage once: after an error whose outcome is unknown, the
        ticket is read first and the reply is not added twice."""
        while True:
            try:
                r = self.rpc.call("agent", "helpwire.v1.Tickets/AddMessage", tries=1, ticket_id=conv.ticket,
                                  kind="MESSAGE_KIND_AGENT_REPLY", text=text)
                entry = [text, list(r.outbox_seqs), time.time()]
                break
            except grpc.RpcError as e:
                if e.code() not in RETRYABLE:
                    raise
                time.sleep(0.2)
                if any(m.text == text for m in self.ticket_messages(conv.ticket)):
                    entry = [text, None, time.time()]
                    break
        conv.replies.append(entry)
        return entry

    # ------------------------------------------------------------- the visitor

    def poll_visitors(self, convs, seen, stop):
        """The web chat pages: each session long-polls for what it is
        waiting for (a sweep of short polls, resuming after the last id)."""
        last = {c.user: 0 for c in convs}
        while not stop.is_set():
            for c in convs:
                if stop.is_set():
                    break
                want = 1 + len(c.replies)  # the acknowledgement and every reply
                if len(seen.get(c.user, {})) >= want and c.replied:
                    continue
                try:
                    st, j = bt.get_json("http://127.0.0.1:%d/api/poll?session_id=%s&after=%d&wait_s=0"
                                        % (self.wc_port, c.user, last[c.user]), timeout=5)
                except (OSError, ValueError):
                    time.sleep(0.2)
                    continue
                if st != 200:
                    continue
                for ev in j.get("events", []):
                    seen.setdefault(c.user, {})[ev["id"]] = ev.get("text")
                last[c.user] = max(last[c.user], j.get("last_event_id") or 0)
            time.sleep(0.2)

    # --------------------------------------------------------------- the run

    def test_chaos(self):
        rng = self.rng
        t_start = time.time()
        convs = []
        chans = ["telegram", "whatsapp", "webchat"]
        for i in range(CONVERSATIONS):
            ch = chans[i % 3]
            if ch == "telegram":
                user = str(700000000 + i)
            elif ch == "whatsapp":
                user = "4917%09d" % i
            else:
                user = "chaos%dvisitor%06dxxxxxxxxxx" % (SEED % 1000, i)
            refused = ch != "webchat" and rng.random() < REFUSED_SHARE
            convs.append(Conversation(i, ch, user, refused))
        for c in convs:
            if c.refused and c.channel == "telegram":
                self.tg.block_chat(c.user)
            elif c.refused:
                self.wa.refuse_to(c.user)
        web = [c for c in convs if c.channel == "webchat"]
        seen = {}  # web chat session -> {event id: text}
        stop_visitors = threading.Event()
        visitors = [threading.Thread(target=self.poll_visitors, args=(web[k::4], seen, stop_visitors), daemon=True)
                    for k in range(4)]
        for v in visitors:
            v.start()
        inbound = Work(6, "inbound")
        agents = Work(4, "agent")
        lost_waiting = []

        def agent_task(conv, started):
            def task():
                if conv.ticket is None:
                    conv.ticket = self.find_ticket(conv)
                    if conv.ticket is None:
                        if time.time() - started > 60:
                            lost_waiting.append(conv)
                            return None
                        return 0.5
                self.reply(conv, "Agent reply for %s: the refund is on its way." % conv.refs[0])
                conv.replied = True
                self.send_inbound(conv, 1, inbound)
                return None
            return task

        # Chaos: SIGKILL a bridge, restart helpwired, now and then.
        chaos_stop = threading.Event()
        chaos_log = []

        def chaos():
            crng = random.Random(rng.random())
            while not chaos_stop.wait(crng.uniform(2.0, 5.0)):
                r = crng.random()
                if r < 0.75:
                    name = crng.choice(chans)
                    self.kill_bridge(name)
                    chaos_log.append("%.1fs SIGKILL %s-bridge" % (time.time() - t_start, name))
                else:
                    sig = crng.choice(["SIGTERM", "SIGKILL"])
                    self.restart_helpwired(sig)
                    chaos_log.append("%.1fs %s helpwired" % (time.time() - t_start, sig))
        chaos_thread = threading.Thread(target=chaos, daemon=True)
        chaos_thread.start()

        # The conversations start over INJECT_SECONDS.
        gap = INJECT_SECONDS / max(1, len(convs))
        for c in convs:
            self.send_inbound(c, 0, inbound)
            agents.add(agent_task(c, time.time()), delay=0.3)
            time.sleep(gap)
        deadline = time.time() + 120
        while not (agents.idle() and inbound.idle()) and time.time() < deadline:
            time.sleep(0.2)
        chaos_stop.set()
        chaos_thread.join(timeout=60)
        t_chaos = time.time() - t_start
        self.dice.rate = 0.0  # the upstreams heal; what is owed is delivered now
        print("chaos: %s" % "; ".join(chaos_log), flush=True)

        # What the chaos left owed goes out first: the idle channel is idle.
        self.wait_drained(convs, seen, 30, quiet_s=3)

        # The p99 phase: an idle channel, then STALLED_MESSAGES pending to
        # stalled recipients, for Telegram and WhatsApp in turn.
        p99 = {}
        for name, fake in (("telegram", self.tg), ("whatsapp", self.wa)):
            p99[name] = self.latency_phase(name, fake, [c for c in convs if c.channel == name and c.ticket
                                                        and not c.refused], rng)

        # Drain: every outbound delivered or failed, within a bound.
        self.wait_drained(convs, seen, 60)
        stop_visitors.set()
        for v in visitors:
            v.join(timeout=10)
        inbound.stop()
        agents.stop()
        self.check(convs, seen, lost_waiting, p99, t_chaos, time.time() - t_start,
                   inbound.errors + agents.errors)

    def latency_phase(self, name, fake, pool, rng):
        pool = list(pool)
        rng.shuffle(pool)
        per = 3
        n_stalled = max(1, STALLED_MESSAGES // per)
        samples = 30
        if len(pool) < n_stalled + 2 * samples:
            return None
        stalled, healthy_idle, healthy_busy = (pool[:n_stalled], pool[n_stalled:n_stalled + samples],
                                               pool[n_stalled + samples:n_stalled + 2 * samples])

        def measure(convs, label):
            sent = []
            for c in convs:
                sent.append((c.user, self.reply(c, "Latency probe %s for %s." % (label, c.refs[0]))))
                time.sleep(0.1)
            wait_until = time.time() + BUSY_WAIT_S
            lat = []
            while time.time() < wait_until:
                got = {(u, t): ts for ts, u, t in fake.accepted_since(0)}
                lat = [got[(u, e[0])] - e[2] if (u, e[0]) in got else None for u, e in sent]
                if all(x is not None for x in lat):
                    break
                time.sleep(0.1)
            return [x if x is not None else float("inf") for x in lat]

        idle = measure(healthy_idle, "idle")
        for c in stalled:
            fake.stall(c.user)
        for k in range(per):
            for c in stalled:
                self.reply(c, "Stalled message %d for %s." % (k, c.refs[0]))
        time.sleep(1.0)
        busy = measure(healthy_busy, "busy")
        stall_hits = fake.stall_hits
        fake.release()
        out = {"idle_p99": percentile(idle, 99), "busy_p99": percentile(busy, 99),
               "lost": sum(1 for x in busy if x == float("inf")), "pending": n_stalled * per,
               "stall_hits": stall_hits}
        out["ratio"] = out["busy_p99"] / out["idle_p99"] if out["idle_p99"] > 0 else float("nan")
        # The assertion compares with the idle p99 floored at P99_FLOOR_S:
        # an idle p99 of 1-5 ms on a shared 2-core machine is scheduler
        # noise, while head-of-line blocking costs seconds (5.2 s before
        # per-recipient delivery). bench/outbox_bench.sh measures the ratio
        # itself.
        out["bound"] = 2.0 * max(out["idle_p99"], P99_FLOOR_S)
        print("p99 %s: idle %.3fs, with %d pending to %d stalled recipients %.3fs (%d of %d not within %d s): "
              "ratio %.2f" % (name, out["idle_p99"], out["pending"], n_stalled, out["busy_p99"], out["lost"],
                              samples, BUSY_WAIT_S, out["ratio"]), flush=True)
        return out

    def delivered_counts(self, seen):
        counts = {}
        for fake, name in ((self.tg, "telegram"), (self.wa, "whatsapp")):
            for ts, u, t in fake.accepted_since(0):
                counts[(name, u, t)] = counts.get((name, u, t), 0) + 1
        for u, evs in seen.items():
            for t in evs.values():
                counts[("webchat", u, t)] = counts.get(("webchat", u, t), 0) + 1
        return counts

    def wait_drained(self, convs, seen, timeout, quiet_s=8):
        """Until every reply to a healthy recipient arrived, or timeout, or
        nothing arrived for quiet_s (what is left is lost: counted later)."""
        deadline = time.time() + timeout
        last, last_change = None, time.time()
        while time.time() < deadline:
            counts = self.delivered_counts(seen)
            owed = [c for c in convs if not c.refused for e in c.replies
                    if not counts.get((c.channel, c.user, e[0]))]
            if not owed:
                return
            n = sum(counts.values())
            if n != last:
                last, last_change = n, time.time()
            elif time.time() - last_change > quiet_s:
                return
            time.sleep(0.5)

    # -------------------------------------------------------------- the count

    def visitor_history(self, conv):
        """The replies in conv's web-chat history (GET /api/history, every
        page): {event id: text}, visitor's own messages left out."""
        out, after = {}, 0
        while True:
            st, j = bt.get_json("http://127.0.0.1:%d/api/history?session_id=%s&after=%d&limit=200"
                                % (self.wc_port, conv.user, after), timeout=10)
            self.assertEqual(st, 200, "GET /api/history for %s: %s" % (conv.user, j))
            for ev in j.get("events", []):
                if ev.get("kind") != "visitor":
                    out[ev["id"]] = ev.get("text")
            after = j.get("last_event_id") or after
            if not j.get("more"):
                return out

    def check(self, convs, seen, lost_waiting, p99, t_chaos, t_total, errors):
        # The web chat's record of what reached a visitor is their history
        # (what a page loads); what the pages streamed is merged in by event
        # id, so a reply streamed but missing from the history still counts
        # once, and one the history holds counts even if no page saw it.
        stream_only = 0
        if self.caps["webchat_history"]:
            for c in convs:
                if c.channel == "webchat":
                    h = self.visitor_history(c)
                    stream_only += sum(1 for i in seen.get(c.user, {}) if i not in h)
                    seen.setdefault(c.user, {}).update(h)
        counts = self.delivered_counts(seen)
        late = {}  # accepted after the bridge's HTTP timeout had passed: may be repeated
        inbound = {"routed_once": 0, "lost": [], "repeated": []}
        outbound = {"delivered": 0, "failed": 0, "missing": [], "wrong": []}
        dups = {"telegram": 0, "whatsapp": 0, "webchat": 0}
        over_window = []
        per_kill = INFLIGHT_PER_KILL or (8 if self.caps["per_recipient"] else 1)
        failed_all = []  # every seq counted FAILED: ListFailed must hold each
        for c in convs:
            tickets = []
            if c.ticket or self.find_ticket(c):
                cu = self.rpc.call("admin", "helpwire.v1.Customers/LookupCustomer", channel=CH[c.channel],
                                   channel_user_id=c.user)
                tickets = [t.id for t in self.rpc.call("admin", "helpwire.v1.Tickets/ListTickets",
                                                       customer_id=cu.id).tickets]
            texts, failed_seqs = [], set()
            for t in tickets:
                texts += [m.text for m in self.ticket_messages(t) if m.kind == CUSTOMER]
                for e in self.ticket_history(t):
                    if e.kind == DELIVERY_FAILED:
                        m = re.search(r"outbox seq (\d+):", e.detail)
                        if m:
                            failed_seqs.add(int(m.group(1)))
            expected = []  # (text, seqs)
            for k, ref in enumerate(c.refs):
                if c.msg_ids[k] is None:
                    continue  # never sent (its conversation lost its first message)
                n = sum(1 for t in texts if "(ref %s)" % ref in t)
                if n == 1:
                    inbound["routed_once"] += 1
                    if k == 0:
                        r = bt.route_again(self.server, CH[c.channel], c.user, c.msg_ids[k])
                        if r.reply_text:
                            expected.append((r.reply_text, list(r.outbox_seqs)))
                elif n == 0:
                    inbound["lost"].append((c.channel, ref))
                else:
                    inbound["repeated"].append((c.channel, ref, n))
            expected += [(e[0], e[1]) for e in c.replies]
            for text, seqs in expected:
                got = counts.get((c.channel, c.user, text), 0)
                failed = bool(seqs) and any(s in failed_seqs for s in seqs)
                if got and failed:
                    outbound["wrong"].append((c.channel, c.user, text, "delivered and FAILED"))
                elif c.refused and got:
                    outbound["wrong"].append((c.channel, c.user, text, "delivered to a refusing recipient"))
                elif not c.refused and failed:
                    outbound["wrong"].append((c.channel, c.user, text, "FAILED for a healthy recipient"))
                elif got:
                    outbound["delivered"] += 1
                elif failed or (c.refused and seqs is None and failed_seqs):
                    outbound["failed"] += 1
                    failed_all += [(CH[c.channel], q) for q in seqs or [] if q in failed_seqs]
                else:
                    outbound["missing"].append((c.channel, c.user, text))
                if got > 1:
                    dups[c.channel] += got - 1
                    if got - 1 > self.kills[c.channel] + self.late_accepts(c.channel, c.user, text):
                        over_window.append((c.channel, c.user, text, got))
        for name in dups:
            late[name] = self.late_accepts(name)
        allowed = {n: self.kills[n] * per_kill + late[n] for n in dups}

        not_listed = []
        if self.caps["failed_list"]:
            listed, token = set(), ""
            try:
                while True:
                    r = self.rpc.call("admin", "helpwire.v1.Outbox/ListFailed", page_size=1000, page_token=token)
                    listed |= {(API.pool.FindEnumTypeByName("helpwire.v1.Channel").values_by_number[
                        e.message.channel].name, e.message.seq) for e in r.entries}
                    token = r.next_page_token
                    if not token:
                        break
            except grpc.RpcError as e:
                print("  ListFailed: %s %s" % (e.code(), e.details()))
            not_listed = [x for x in failed_all if x not in listed]
        lost_by = {ch: sum(1 for x in inbound["lost"] if x[0] == ch) for ch in CH}
        missing_by = {ch: sum(1 for x in outbound["missing"] if x[0] == ch) for ch in CH}
        print("chaos_test summary (seed %d): %d conversations in %.0f s of chaos, %.0f s in all" %
              (SEED, len(convs), t_chaos, t_total))
        print("  chaos: bridges SIGKILLed %s; helpwired restarts %s; upstream failures injected %s" %
              (self.kills, self.restarts, self.dice.counts))
        print("  inbound: %d routed exactly once, %d lost %s, %d routed more than once" %
              (inbound["routed_once"], len(inbound["lost"]), lost_by, len(inbound["repeated"])))
        print("  outbound: %d delivered, %d FAILED and visible, %d neither %s, %d wrong" %
              (outbound["delivered"], outbound["failed"], len(outbound["missing"]), missing_by,
               len(outbound["wrong"])))
        print("  duplicates at the upstream: %s; window allowed %s (%d per kill, late accepts %s)" %
              (dups, allowed, per_kill, late))
        for name, r in p99.items():
            if r:
                print("  p99 %s: idle %.3f s, %d pending to stalled recipients %.3f s, ratio %.2f" %
                      (name, r["idle_p99"], r["pending"], r["busy_p99"], r["ratio"]))
        if self.caps["failed_list"]:
            print("  ListFailed: %d of %d FAILED messages listed" % (len(failed_all) - len(not_listed),
                                                                     len(failed_all)))
        if self.caps["webchat_history"]:
            print("  web chat: %d replies streamed to a page but not in the visitor's history" % stream_only)
        print("  capabilities: %s" % self.caps, flush=True)

        self.assertEqual(errors, [], "the test's own workers failed")
        self.assertEqual(inbound["repeated"], [], "inbound messages routed more than once")
        for ch in ("telegram", "webchat") + (("whatsapp",) if self.caps["intake_spool"] else ()):
            self.assertEqual([x for x in inbound["lost"] if x[0] == ch], [], "%s inbound lost" % ch)
        self.assertEqual(outbound["wrong"], [], "outbound messages in the wrong state")
        for ch in ("telegram", "whatsapp") + (("webchat",) if self.caps["webchat_history"] else ()):
            self.assertEqual([x for x in outbound["missing"] if x[0] == ch], [],
                             "%s outbound neither delivered nor FAILED" % ch)
        self.assertEqual(not_listed, [], "FAILED messages missing from Outbox.ListFailed")
        self.assertEqual(stream_only, 0, "web chat replies a page streamed that its history lacks")
        self.assertEqual(over_window, [], "a message repeated more often than the kills allow")
        for name in dups:
            self.assertLessEqual(dups[name], allowed[name], "%s duplicates beyond the window" % name)
        if self.caps["per_recipient"]:
            for name, r in p99.items():
                self.assertIsNotNone(r, "too few conversations for the p99 phase")
                self.assertLessEqual(r["busy_p99"], r["bound"],
                                     "%s healthy p99 with stalled recipients pending: %.3f s, idle %.3f s"
                                     % (name, r["busy_p99"], r["idle_p99"]))

    def late_accepts(self, channel, user=None, text=None):
        """Sends the fake accepted later than the bridge's HTTP timeout
        after the request arrived: the bridge may have given up on them."""
        if channel == "webchat":
            return 0
        fake = self.tg if channel == "telegram" else self.wa
        return sum(1 for ts, u, t, waited in fake.accepted_waits()
                   if waited * 1000 >= HTTP_TIMEOUT_MS and (user is None or (u == user and t == text)))


if __name__ == "__main__":
    hwtest.main()
