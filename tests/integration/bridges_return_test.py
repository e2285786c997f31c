"""bridges_return_test: how soon the bridges work again after helpwired
restarts, and what a web-chat visitor reads while it is away.

The promise (docs/operations.md, "Bridges"): within 2 s of a restarted
helpwired answering its health check, a bridge routes customers' messages
again and its Outbox stream delivers again. Each round stops helpwired
(SIGTERM, which drains, or SIGKILL), starts it again on the same data
directory and port, and from the first SERVING health answer (T0) measures

  (a) the first customer message routed through the bridge: for the web
      chat a visitor's POST /api/messages answered 200, sent from T0 on;
      for Telegram an update queued in the fake Bot API at T0, up to the
      bridge's own `routed` log line;
  (b) the first outbox message delivered through the resumed stream: an
      agent's reply added straight to helpwired at T0, read back from the
      web chat's long poll, or as the fake Bot API's sendMessage.

Both must be under 2 s; under ASan or TSan (ASAN_OPTIONS or TSAN_OPTIONS
in the environment, as the sanitizer configs set them) every process runs
several times slower, and 4 s is allowed. The bridges run with their
default backoff settings, as in production.

While helpwired is down, a visitor's send is kept in the bridge's spool and
answered 202 with a notice (bridges_intake_test.py); once the spool is full
it is answered with a short line in the visitor's language (Chinese for
Chinese text or a zh browser, English otherwise) and 503 with Retry-After;
the technical cause goes only to the bridge's log.
"""
import json
import os
import signal
import tempfile
import threading
import time
import unittest

import grpc

import bridges_test as bt
import fake_channels as fc
import hwtest

LIMIT_S = 4.0 if ("ASAN_OPTIONS" in os.environ or "TSAN_OPTIONS" in os.environ) else 2.0
# (signal, seconds helpwired stays down): a quick restart, and the longer
# ones during which the bridges' retries and the gRPC channel's reconnect
# attempts back off.
ROUNDS = ((signal.SIGTERM, 6), (signal.SIGKILL, 3), (signal.SIGTERM, 0.2), (signal.SIGKILL, 9))
# Only the call deadline differs from the defaults: short enough that a
# test run stays short, longer than any restart here.
BRIDGE_ARGS = ["--rpc-timeout-ms", "8000"]
TICKET_TEXT = bt.TICKET_TEXT


def health_serving(address):
    """Whether helpwired at address answers SERVING now. A fresh channel
    each time, outside the shared subchannel pool, so no reconnect backoff
    of an earlier probe delays the answer."""
    api = bt.API
    req_cls, resp_cls, _ = api.method("grpc.health.v1.Health/Check")
    ch = grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
    try:
        fn = ch.unary_unary("/grpc.health.v1.Health/Check", request_serializer=lambda m: m.SerializeToString(),
                            response_deserializer=resp_cls.FromString)
        return fn(req_cls(), timeout=0.5).status == 1  # SERVING
    except grpc.RpcError:
        return False
    finally:
        ch.close()


class HealthWatch:
    """Probes health every 10 ms from a thread; t0 is the time of the first
    SERVING answer."""

    def __init__(self, address):
        self.address = address
        self.t0 = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        deadline = time.time() + 60
        while time.time() < deadline:
            if health_serving(self.address):
                self.t0 = time.time()
                break
            time.sleep(0.01)
        self.done.set()

    def wait(self):
        self.done.wait(65)
        if self.t0 is None:
            raise AssertionError("the restarted helpwired never answered health")
        return self.t0


def restart(server, sig, down_s, while_down=None):
    """Stops server with sig, calls while_down() (customers writing in the
    meantime), leaves it down for down_s seconds in all and starts it again
    on the same data and port; returns T0, when the new one first answered
    health SERVING."""
    server.proc.send_signal(sig)
    server.proc.wait(timeout=30)
    server.proc.stdout.close()
    server.log.close()
    down = time.time()
    assert not health_serving(server.address)
    if while_down:
        while_down()
    time.sleep(max(0.0, down + down_s - time.time()))
    watch = HealthWatch(server.address)
    server.start()
    return watch.wait()


def log_time(line):
    """The ts= of a log line as a Unix time."""
    import calendar

    ts = line.split()[0][len("ts="):]
    whole, frac = ts.rstrip("Z").split(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + int(frac) / 1000.0


class ReturnCase(bt.EndToEnd):
    """Shared: timings reported at the end of the class."""

    # A visitor resends every 20 ms until one is routed after a restart:
    # this is about the return, not one sender's limit (limits_test).
    extra_server_args = ("--sender-rate", "0")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.timings = []

    @classmethod
    def report(cls, name, sig, a, b):
        cls.timings.append((name, signal.Signals(sig).name, a, b))
        print("\n%s after %s: route %.3f s, outbox %.3f s (limit %.1f s)" % (
            name, signal.Signals(sig).name, a, b, LIMIT_S), flush=True)

    def agent_reply(self, ticket_id, text):
        bt.agent_call(self.server, "helpwire.v1.Tickets/AddMessage", ticket_id=ticket_id,
                      kind="MESSAGE_KIND_AGENT_REPLY", text=text)


class WebchatReturn(ReturnCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.bridge = bt.Bridge("webchat", ["--helpwire", cls.server.address, "--listen", "127.0.0.1:0",
                                           "--heartbeat-ms", "500", "--state-dir", bt.webchat_state()] + BRIDGE_ARGS,
                               {"HELPWIRE_TOKEN": cls.server.bridge_token()})

    @classmethod
    def tearDownClass(cls):
        rc = cls.bridge.stop()
        super().tearDownClass()
        assert rc == 0, cls.bridge.read_log()

    def session(self):
        st, j = bt.post_json(self.bridge.url + "/api/session", {"name": "Cai"})
        self.assertEqual(st, 200)
        return j["session_id"]

    def send(self, sid, text, cmid, timeout=30):
        return bt.post_json(self.bridge.url + "/api/messages",
                            {"session_id": sid, "text": text, "client_message_id": cmid}, timeout=timeout)

    def poll_after(self, sid, after, timeout):
        """Events of sid after id `after`, waiting up to timeout s."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            st, j = bt.get_json(self.bridge.url + "/api/poll?session_id=%s&after=%d&wait_s=1" % (sid, after))
            self.assertEqual(st, 200)
            if j["events"]:
                return j["events"]
        return []

    def write_until(self, sid, prefix, stop):
        k = 0
        while not stop.is_set():
            k += 1
            self.send(sid, "anyone there? %s/%d" % (prefix, k), "%s-%d" % (prefix, k))
            stop.wait(0.5)

    def test_routes_and_delivers_within_the_limit_after_each_restart(self):
        sid = self.session()
        st, j = self.send(sid, TICKET_TEXT, "t0")
        self.assertEqual(st, 200, j)
        ticket = bt.route_again(self.server, "CHANNEL_WEBCHAT", sid, sid + ":t0").ticket_id
        last = self.poll_after(sid, 0, 20)[-1]["id"]
        waiting = self.session()
        for n, (sig, down_s) in enumerate(ROUNDS):
            # Another visitor writes while helpwired is away: the bridge
            # tries, and its channel's reconnect attempts back off.
            writing = threading.Event()
            writer = threading.Thread(target=self.write_until, args=(waiting, "w%d" % n, writing))
            t0 = restart(self.server, sig, down_s, writer.start)
            writing.set()
            # (b) first: queued at T0, it waits for the resumed stream alone.
            self.agent_reply(ticket, "reply %d" % n)
            got = {}

            def read_outbox():
                ev = self.poll_after(sid, last, 20)
                got["t"], got["ev"] = time.time(), ev

            reader = threading.Thread(target=read_outbox)
            reader.start()
            # (a): the visitor sends from T0 on until one is routed.
            k = 0
            while time.time() - t0 < 20:
                k += 1
                st, j = self.send(sid, "still there? %d/%d" % (n, k), "r%d-%d" % (n, k))
                if st == 200:
                    break
                time.sleep(0.02)
            routed = time.time() - t0
            self.assertEqual(st, 200, j)
            reader.join(25)
            self.assertTrue(got.get("ev"), self.bridge.read_log())
            self.assertEqual(got["ev"][0]["text"], "reply %d" % n)
            delivered = got["t"] - t0
            self.report("webchat", sig, routed, delivered)
            self.assertLess(routed, LIMIT_S, self.bridge.read_log())
            self.assertLess(delivered, LIMIT_S, self.bridge.read_log())
            writer.join(30)
            # Past everything this round queued (the reply, the visitor's
            # message's acknowledgements).
            time.sleep(0.5)
            st, j = bt.get_json(self.bridge.url + "/api/poll?session_id=%s&after=%d&wait_s=0" % (sid, last))
            last = j["last_event_id"]


class TelegramReturn(ReturnCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fake = fc.FakeTelegram(bt.TG_SECRET)
        cls.state = tempfile.mkdtemp(prefix="tg-return-", dir=bt.TMP)
        cls.bridge = bt.Bridge("telegram", ["--helpwire", cls.server.address, "--api-base", cls.fake.base_url,
                                            "--state-dir", cls.state, "--poll-timeout-s", "1",
                                            "--log-level", "debug"] + BRIDGE_ARGS,
                               bt.telegram_env(cls.server.bridge_token()))

    @classmethod
    def tearDownClass(cls):
        rc = cls.bridge.stop()
        cls.fake.close()
        super().tearDownClass()
        assert rc == 0, cls.bridge.read_log()

    def routed_at(self, update, timeout):
        """The time of the bridge's `routed` line for update, or None."""
        key = "message_id=%s " % bt.telegram_key(update)
        deadline = time.time() + timeout
        while time.time() < deadline:
            for line in self.bridge.events("routed"):
                if key in line + " ":
                    return log_time(line)
            time.sleep(0.02)
        return None

    def test_routes_and_delivers_within_the_limit_after_each_restart(self):
        u = self.fake.add_text(3001, TICKET_TEXT)
        self.assertTrue(self.fake.wait_for(lambda: self.fake.sent_to(3001)), self.bridge.read_log())
        ticket = bt.route_again(self.server, "CHANNEL_TELEGRAM", "3001", bt.telegram_key(u)).ticket_id
        for n, (sig, down_s) in enumerate(ROUNDS):
            before = len(self.fake.sent_to(3001))
            # A customer writes while helpwired is away: the bridge retries.
            t0 = restart(self.server, sig, down_s, lambda: self.fake.add_text(4001 + n, "hello? %d" % n))
            self.agent_reply(ticket, "reply %d" % n)
            update = self.fake.add_text(3002 + n, bt.FAQ_QUESTION, language_code="zh")
            self.assertTrue(self.fake.wait_for(lambda: len(self.fake.sent_to(3001)) > before, timeout=20),
                            self.bridge.read_log())
            with self.fake.cond:
                sent = [r for r in self.fake.requests if r.path.endswith("/sendMessage")
                        and (r.json() or {}).get("text") == "reply %d" % n]
            delivered = sent[0].time - t0
            at = self.routed_at(update, 20)
            self.assertIsNotNone(at, self.bridge.read_log())
            routed = at - t0
            self.report("telegram", sig, routed, delivered)
            self.assertLess(routed, LIMIT_S, self.bridge.read_log())
            self.assertLess(delivered, LIMIT_S, self.bridge.read_log())
            # Its auto-reply is out before the next round.
            self.assertTrue(self.fake.wait_for(lambda: self.fake.sent_to(3002 + n), timeout=20),
                            self.bridge.read_log())


class WebchatVisitorErrors(unittest.TestCase):
    """helpwired down and the spool full: what a visitor's page receives."""

    @classmethod
    def setUpClass(cls):
        cls.bridge = bt.Bridge("webchat", ["--helpwire", "127.0.0.1:%d" % bt.free_port(), "--listen",
                                           "127.0.0.1:0", "--rpc-timeout-ms", "1000", "--state-dir",
                                           bt.webchat_state(), "--spool-max-entries", "1"],
                               {"HELPWIRE_TOKEN": "t"})
        # The one message the spool holds: every later one finds it full.
        st, sess = bt.post_json(cls.bridge.url + "/api/session", {})
        st, j = bt.post_json(cls.bridge.url + "/api/messages", {"session_id": sess["session_id"], "text": "first"},
                             timeout=30)
        assert st == 202, (st, j)

    @classmethod
    def tearDownClass(cls):
        rc = cls.bridge.stop()
        assert rc == 0, cls.bridge.read_log()

    def send(self, text, headers=None):
        st, sess = bt.post_json(self.bridge.url + "/api/session", {})
        st, h, body = fc.http_request(self.bridge.url + "/api/messages", "POST",
                                      {"session_id": sess["session_id"], "text": text}, headers, timeout=30)
        return st, h, json.loads(body.decode())

    def assert_friendly(self, j):
        for word in ("127.0.0.1", "ipv4", "Connection refused", "UNAVAILABLE", "DEADLINE", "grpc", "failed to"):
            self.assertNotIn(word.lower(), j["error"].lower())
        self.assertLess(len(j["error"]), 120)

    def test_english_text_gets_an_english_line_and_503_with_retry_after(self):
        st, h, j = self.send("hello, is anyone there?")
        self.assertEqual(st, 503, j)
        self.assertEqual(h.get("Retry-After"), "5")
        self.assert_friendly(j)
        self.assertRegex(j["error"], r"^[ -~]+$")
        self.assertTrue(j["retry"])
        self.assertEqual(j["code"], "unavailable")

    def test_chinese_text_gets_a_chinese_line(self):
        st, h, j = self.send("你好，我的订单还没有到")
        self.assertEqual(st, 503, j)
        self.assert_friendly(j)
        self.assertRegex(j["error"], r"[\u4e00-\u9fff]")

    def test_a_zh_browser_gets_a_chinese_line_for_any_text(self):
        st, h, j = self.send("order 4711?", {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
        self.assertEqual(st, 503, j)
        self.assertRegex(j["error"], r"[\u4e00-\u9fff]")
        st, h, j = self.send("order 4711?", {"Accept-Language": "en-US,en;q=0.9"})
        self.assertRegex(j["error"], r"^[ -~]+$")

    def test_the_technical_cause_is_in_the_bridge_log_only(self):
        st, h, j = self.send("log me")
        self.assertTrue(self.bridge.wait_log("visitor_error"), self.bridge.read_log())
        line = self.bridge.events("visitor_error")[-1]
        self.assertIn("http=503 code=unavailable", line)
        self.assertIn("cause=\"the spool is full (1 entries", line)
        self.assertNotIn("helpwired", json.dumps(j))

    def test_unknown_paths_and_bad_requests_get_lines_too(self):
        st, _, body = fc.http_request(self.bridge.url + "/nope", headers={"Accept-Language": "zh-TW"})
        j = json.loads(body.decode())
        self.assertEqual((st, j["code"]), (404, "no_such_page"))
        self.assertRegex(j["error"], r"[\u4e00-\u9fff]")
        st, _, body = fc.http_request(self.bridge.url + "/api/messages", "POST", b"not json")
        j = json.loads(body.decode())
        self.assertEqual((st, j["code"], j["retry"]), (400, "bad_request", False))
        self.assert_friendly(j)


if __name__ == "__main__":
    hwtest.main()
