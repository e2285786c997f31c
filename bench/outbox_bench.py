"""outbox_bench: outbox delivery through the real bridges, as ratios
against baselines measured in the same run (absolute times drift on a
shared machine). Run it through bench/outbox_bench.sh.

1. Throughput per bridge: --messages outbound messages queued in helpwired
   (Route acknowledgements and agent replies to --recipients customers)
   while the bridge is stopped; then the bridge starts and delivers them.
   Figure: the bridge's delivered/s (first to last message the upstream
   accepted) as a ratio of the baseline:
   - Telegram, WhatsApp: the same number of sends issued straight at the
     same fake upstream (fake_channels.py) by a plain keep-alive HTTP client
     with --concurrency connections: the ceiling a bridge could reach
     against that fake;
   - web chat (no upstream; it delivers into its page stream): a bare
     Outbox.Subscribe client reading the stream and acknowledging every 100
     messages, the ceiling helpwired's outbox gives one subscriber; the
     bridge's figure is timed by helpwired's helpwire_outbox_backlog
     metric, from its first fall to zero (acknowledged = in the page
     stream; every page is checked to hold its messages afterwards).
2. Healthy-recipient latency with N blocked recipients (Telegram, WhatsApp):
   N customers whose every send is held --stall-ms and answered with the
   channel's rate limit (Telegram 429 retry_after 1; WhatsApp 131056) have
   one message pending each; then --probes agent replies to healthy
   customers, one every 100 ms. Latency: AddMessage's return (the commit)
   to the fake's accepting the send. Figure: p99 for N as a ratio to N = 0;
   a reply not there within --wait-s counts as infinitely late (printed
   with how many).

BENCH_LOG_LEVEL (default warn) sets the bridges' --log-level; with info
their logs (under TEST_TMPDIR) time every delivery and retry.
"""
import argparse
import http.client
import json
import os
import platform
import re
import socket
import sys
import tempfile
import threading
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(here), "tests", "integration"))

import bridges_test as bt  # noqa: E402
import fake_channels as fc  # noqa: E402

TICKET_TEXT = "My invoice shows a double charge and I need a refund for order 4711 (ref %s)"


def pct(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def ratio(a, b):
    if b == 0 or b != b:
        return float("nan")
    return a / b


def call(server, role, path, **fields):
    for _ in range(50):
        c = server.client(role)
        try:
            return c.call(path, timeout=10, **fields)
        except Exception as e:  # helpwired busy: try again
            last = e
            time.sleep(0.1)
        finally:
            c.close()
    raise last


class Setup:
    """A fresh helpwired (--demo) and a fake upstream for one channel, with
    tickets for recipients customers; the bridge is started later."""

    def __init__(self, channel, recipients, stall_ms):
        self.channel = channel
        self.metrics_port = bt.free_port()
        self.server = bt.Helpwired("--metrics", "127.0.0.1:%d" % self.metrics_port)
        self.fake = None
        if channel == "telegram":
            self.fake = fc.ChaosTelegram(bt.TG_SECRET, stall_s=stall_ms / 1000.0, poll_failures=False)
            self.users = [str(810000000 + i) for i in range(recipients)]
        elif channel == "whatsapp":
            self.fake = fc.ChaosWhatsApp(bt.WA_PHONE_ID, bt.WA_TOKEN, stall_s=stall_ms / 1000.0)
            self.users = ["4918%09d" % i for i in range(recipients)]
        else:
            self.users = ["benchvisitor%010dxxxxxxxx" % i for i in range(recipients)]
        self.ch = {"telegram": "CHANNEL_TELEGRAM", "whatsapp": "CHANNEL_WHATSAPP", "webchat": "CHANNEL_WEBCHAT"}[
            channel]
        self.tickets = {}
        c = self.server.client("bridge")
        try:
            for i, u in enumerate(self.users):
                r = c.call("helpwire.v1.Router/Route", channel=self.ch, channel_user_id=u,
                           text=TICKET_TEXT % u, message_id="bench-%s-%d" % (u, i))
                self.tickets[u] = r.ticket_id
        finally:
            c.close()
        self.queued = len(self.users)  # one acknowledgement each
        self.bridge = None
        self.wc_port = bt.free_port()

    def reply(self, user, text):
        call(self.server, "agent", "helpwire.v1.Tickets/AddMessage", ticket_id=self.tickets[user],
             kind="MESSAGE_KIND_AGENT_REPLY", text=text)
        return time.time()

    def start_bridge(self):
        addr, token = self.server.address, self.server.bridge_token()
        quiet = ["--log-level", os.environ.get("BENCH_LOG_LEVEL", "warn")]
        if self.channel == "telegram":
            self.bridge = bt.start_telegram(addr, token, self.fake, tempfile.mkdtemp(prefix="bench-tg-"), *quiet)
        elif self.channel == "whatsapp":
            env = bt.whatsapp_env(token)
            self.bridge = bt.Bridge("whatsapp", ["--helpwire", addr, "--listen", "127.0.0.1:0", "--api-base",
                                                 self.fake.api_base, "--phone-number-id", bt.WA_PHONE_ID] +
                                    bt.FAST + quiet, env)
        else:
            self.bridge = bt.Bridge("webchat", ["--helpwire", addr, "--listen", "127.0.0.1:%d" % self.wc_port,
                                                "--max-events", "10000"] + bt.FAST + quiet,
                                    {"HELPWIRE_TOKEN": token})

    def close(self):
        if self.bridge:
            self.bridge.stop()
        self.server.stop()
        if self.fake:
            self.fake.close()


# ------------------------------------------------------------ throughput

def direct_sends(fake, channel, users, n, concurrency):
    """n sends straight at the fake over concurrency keep-alive
    connections; returns sends/s."""
    per = [n // concurrency + (1 if i < n % concurrency else 0) for i in range(concurrency)]

    def worker(k, count):
        conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as libcurl does
        for j in range(count):
            u = users[(k * 7919 + j) % len(users)]
            if channel == "telegram":
                path = "/bot%s/sendMessage" % bt.TG_SECRET
                body = {"chat_id": int(u), "text": "direct %d.%d" % (k, j)}
                headers = {"Content-Type": "application/json"}
            else:
                path = "/%s/%s/messages" % (fake.version, fake.phone_number_id)
                body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": u, "type": "text",
                        "text": {"body": "direct %d.%d" % (k, j)}}
                headers = {"Content-Type": "application/json", "Authorization": "Bearer " + bt.WA_TOKEN}
            conn.request("POST", path, json.dumps(body).encode(), headers)  # bytes: one send with the headers
            r = conn.getresponse()
            r.read()
            assert r.status == 200, r.status
        conn.close()

    threads = [threading.Thread(target=worker, args=(k, c)) for k, c in enumerate(per)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return n / (time.time() - t0)


def outbox_ceiling(setup, n, batch=100):
    """A bare subscriber that only reads the stream and acknowledges every
    batch messages (one Ack per message from Python would be slower than
    the C bridge, not a ceiling); returns messages/s."""
    c = setup.server.client("bridge")
    stream = c.stream("helpwire.v1.Outbox/Subscribe", channel=setup.ch)
    got, pending = 0, []
    t0 = None
    try:
        for m in stream:
            if m.seq == 0:
                continue  # a lease control message
            if t0 is None:
                t0 = time.time()
            pending.append(m.seq)
            got += 1
            if len(pending) >= batch or got >= n:
                c.call("helpwire.v1.Outbox/Ack", channel=setup.ch, seqs=pending)
                pending = []
            if got >= n:
                break
        return (n - 1) / (time.time() - t0)
    finally:
        stream.cancel()
        c.close()


def queue_replies(setup, n):
    users = setup.users
    for i in range(n):
        setup.reply(users[i % len(users)], "Bench reply %d to %s." % (i, users[i % len(users)]))
    setup.queued += n


def backlog(setup):
    """helpwired's helpwire_outbox_backlog for the channel (its metrics)."""
    st, _, body = fc.http_request("http://127.0.0.1:%d/metrics" % setup.metrics_port)
    m = re.search(r'^helpwire_outbox_backlog\{channel="%s"\} (\d+)' % setup.channel, body.decode(), re.M)
    return int(m.group(1))


def bridge_throughput(setup, wait_s):
    """Starts the bridge on the queued messages; returns delivered/s."""
    total = setup.queued
    if setup.channel == "webchat":
        # Delivered into the page stream = acknowledged: timed by helpwired's
        # backlog, from its first fall to zero; the pages are checked after.
        setup.start_bridge()
        deadline = time.time() + wait_s
        t_first = n_first = None
        while time.time() < deadline:
            n = backlog(setup)
            now = time.time()
            if t_first is None and n < total:
                t_first, n_first = now, n
            if n == 0:
                break
            time.sleep(0.01)
        else:
            return float("nan")
        rate = (n_first / (now - t_first)) if now > t_first else float("nan")
        got = 0
        for u in setup.users:
            st, j = bt.get_json("http://127.0.0.1:%d/api/poll?session_id=%s&after=0&wait_s=0" % (setup.wc_port, u))
            got += len(j.get("events", []))
        if got < total:
            raise RuntimeError("the pages hold %d of %d messages" % (got, total))
        return rate
    setup.start_bridge()
    setup.fake.wait_for(lambda: len(setup.fake.accepted) >= total, timeout=wait_s)
    acc = setup.fake.accepted_since(0)
    if len(acc) < total:
        return float("nan")
    return (len(acc) - 1) / (acc[-1][0] - acc[0][0])


def run_throughput(args, out):
    for channel in args.channels:
        s = Setup(channel, args.recipients, args.stall_ms)
        try:
            queue_replies(s, args.messages - len(s.users))
            if channel == "webchat":
                base = outbox_ceiling(s, s.queued)
                # The ceiling client acknowledged everything: queue the same again.
                s.queued = 0
                queue_replies(s, args.messages)
                what = "bare Outbox subscriber, one Ack per 100"
            else:
                base = direct_sends(s.fake, channel, s.users, s.queued, args.concurrency)
                s.fake.accepted.clear()
                s.fake.waits.clear()
                what = "plain HTTP client straight at the fake, %d connection(s)" % args.concurrency
            got = bridge_throughput(s, args.wait_s * 6)
        finally:
            s.close()
        line = ("throughput %-8s %d messages: bridge %.0f/s, baseline %.0f/s (%s): ratio %.2f"
                % (channel, args.messages, got, base, what, ratio(got, base)))
        print(line, flush=True)
        out.append(line)


# ---------------------------------------------------------------- latency

def run_latency(args, out):
    for channel in [c for c in args.channels if c != "webchat"]:
        figures = {}
        for n_blocked in args.blocked:
            s = Setup(channel, n_blocked + args.probes, args.stall_ms)
            try:
                s.start_bridge()
                if not s.fake.wait_for(lambda: len(s.fake.accepted) >= len(s.users), timeout=120):
                    raise RuntimeError("acknowledgements not delivered")
                blocked, healthy = s.users[:n_blocked], s.users[n_blocked:]
                for u in blocked:
                    s.fake.stall(u)
                for u in blocked:
                    s.reply(u, "Pending reply to %s." % u)
                time.sleep(1.0)
                sent = []
                for u in healthy:
                    text = "Probe to %s." % u
                    sent.append((u, text, s.reply(u, text)))
                    time.sleep(0.1)
                lat = []
                deadline = time.time() + args.wait_s
                while time.time() < deadline:
                    got = {(u, t): ts for ts, u, t in s.fake.accepted_since(0)}
                    lat = [got[(u, t)] - c if (u, t) in got else None for u, t, c in sent]
                    if all(x is not None for x in lat):
                        break
                    time.sleep(0.1)
                late = sum(1 for x in lat if x is None)
                lat = [x if x is not None else float("inf") for x in lat]
                figures[n_blocked] = (pct(lat, 99), pct(lat, 50), late)
            finally:
                s.fake.release()
                s.close()
        base = figures[args.blocked[0]][0]
        for n_blocked, (p99, p50, late) in figures.items():
            line = ("latency  %-8s N=%3d blocked: healthy p99 %.4f s (p50 %.4f s, %d of %d not within %d s): "
                    "ratio to N=%d %.2f" % (channel, n_blocked, p99, p50, late, args.probes, args.wait_s,
                                            args.blocked[0], ratio(p99, base)))
            print(line, flush=True)
            out.append(line)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--channels", default="telegram,whatsapp,webchat")
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--recipients", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=1,
                    help="connections of the baseline client: the bridge's sends in flight (1 on main)")
    ap.add_argument("--blocked", default="0,100,300")
    ap.add_argument("--probes", type=int, default=50)
    ap.add_argument("--stall-ms", type=int, default=200)
    ap.add_argument("--wait-s", type=int, default=20)
    ap.add_argument("--only", choices=["throughput", "latency"])
    args = ap.parse_args()
    args.channels = args.channels.split(",")
    args.blocked = [int(x) for x in args.blocked.split(",")]
    out = []
    print("outbox_bench %s on %s (%s, %d CPUs)" % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                                   platform.node(), platform.machine(), os.cpu_count()), flush=True)
    if args.only != "latency":
        run_throughput(args, out)
    if args.only != "throughput":
        run_latency(args, out)


if __name__ == "__main__":
    main()
