"""bridges_intake_test: a channel is told "taken" only once its message is
durably taken, and what was taken reaches helpwired in order, once, even
across a kill -9 of the bridge while helpwired is down; the web chat's
conversation lives on the bridge's disk.

The promise (docs/operations.md, "Bridges: intake"): a webhook is answered
2xx only after its messages are in the bridge's spool (LMDB in its
--state-dir), routed from there in order once helpwired is back; a full
spool answers 503 so the platform delivers again later. A web-chat
visitor's message that cannot be routed now is spooled and the page gets a
notice in the visitor's language; the history API shows the whole
conversation after a reload or a bridge restart.

The real helpwired and bridges on loopback, the fake channel APIs of
fake_channels.py; the setup helpers are bridges_test.py's.
"""
import json
import re
import signal
import time

import bridges_test as bt
import fake_channels as fc
import hwtest

TICKET_TEXT = bt.TICKET_TEXT


def ticket_customer_texts(server, ticket_id):
    """The customer's messages of a ticket, oldest first."""
    c = server.client("agent")
    try:
        r = c.call("helpwire.v1.Tickets/GetTicket", ticket_id=ticket_id, include_messages=True)
    finally:
        c.close()
    return [m.text for m in r.messages if m.author.startswith("customer:")]


def wait_texts(server, ticket_id, want, timeout=30):
    """The ticket's customer texts once there are len(want) of them (or
    whatever is there at the timeout)."""
    deadline = time.time() + timeout
    got = []
    while time.time() < deadline:
        got = ticket_customer_texts(server, ticket_id)
        if len(got) >= len(want):
            break
        time.sleep(0.2)
    return got


def metrics_port(bridge):
    line = bridge.events("metrics_listening")
    m = re.search(r"port=(\d+)", line[0]) if line else None
    return int(m.group(1)) if m else None


def spool_gauge(bridge, name):
    port = metrics_port(bridge)
    st, _, body = fc.http_request("http://127.0.0.1:%d/metrics" % port)
    return fc.prometheus_value(body.decode(), "helpwire_bridge_spool_entries", {"bridge": name})


class Intake(bt.EndToEnd):
    """One helpwired per class (bridges_test's EndToEnd set-up), stopped
    and started by the tests."""

    def setUp(self):
        if self.server.proc.poll() is not None:
            self.server.start()

    def ticket_of(self, channel, user, message_id):
        r = bt.route_again(self.server, channel, user, message_id)
        self.assertTrue(r.ticket_id, r)
        return r.ticket_id


class WhatsAppIntake(Intake):
    def setUp(self):
        super().setUp()
        self.fake = fc.FakeWhatsApp(bt.WA_PHONE_ID, bt.WA_TOKEN)

    def tearDown(self):
        self.fake.close()

    def post(self, bridge, messages, contacts=()):
        body, sig = fc.whatsapp_webhook(bt.WA_APP_SECRET, bt.WA_PHONE_ID, messages=messages, contacts=contacts)
        st, _, _ = fc.http_request(bridge.url + "/whatsapp/webhook", "POST", body, {"X-Hub-Signature-256": sig})
        return st

    def test_webhooks_taken_while_helpwired_is_down_survive_a_kill_and_are_routed_in_order_once(self):
        a, b = "4915300000001", "4915300000002"
        self.server.stop()
        bridge = bt.start_whatsapp(self.server.address, self.server.bridge_token(), self.fake)
        try:
            sent = {a: [TICKET_TEXT, "second from A", "third from A", "fourth from A"],
                    b: [TICKET_TEXT + " (B)", "second from B"]}
            start = time.time()
            self.assertEqual(self.post(bridge, [{"from": a, "id": "wamid.K.a1", "text": sent[a][0]}],
                                       [(a, "Ana")]), 200)
            self.assertEqual(self.post(bridge, [{"from": b, "id": "wamid.K.b1", "text": sent[b][0]}]), 200)
            self.assertEqual(self.post(bridge, [{"from": a, "id": "wamid.K.a2", "text": sent[a][1]}]), 200)
            # One body, two messages: both taken, in their order.
            self.assertEqual(self.post(bridge, [{"from": a, "id": "wamid.K.a3", "text": sent[a][2]},
                                                {"from": b, "id": "wamid.K.b2", "text": sent[b][1]}]), 200)
            self.assertEqual(self.post(bridge, [{"from": a, "id": "wamid.K.a4", "text": sent[a][3]}]), 200)
            # Answered as soon as written, not after a Route attempt.
            self.assertLess(time.time() - start, 4)
            self.assertTrue(bridge.wait_log("route_failed"), bridge.read_log())
        finally:
            rc = bridge.stop(signal.SIGKILL)
        self.assertEqual(rc, -signal.SIGKILL)
        self.server.start()
        again = bt.start_whatsapp(self.server.address, self.server.bridge_token(), self.fake,
                                  state_dir=bridge.state_dir)
        try:
            for user, first in ((a, "wamid.K.a1"), (b, "wamid.K.b1")):
                self.assertTrue(self.fake.wait_for(lambda: self.fake.sent_to(user), timeout=30), again.read_log())
                ticket = self.ticket_of("CHANNEL_WHATSAPP", user, first)
                self.assertEqual(wait_texts(self.server, ticket, sent[user]), sent[user])
            time.sleep(1.5)  # nothing comes twice later
            self.assertEqual(ticket_customer_texts(self.server, self.ticket_of("CHANNEL_WHATSAPP", a, "wamid.K.a1")),
                             sent[a])
            self.assertEqual(bt.read_dead_letters(bridge.state_dir, "whatsapp"), [])
        finally:
            self.assertEqual(again.stop(), 0, again.read_log())

    def test_a_full_spool_answers_503_takes_nothing_of_the_body_and_takes_again_once_drained(self):
        user = "4915300000010"
        self.server.stop()
        bridge = bt.start_whatsapp(self.server.address, self.server.bridge_token(), self.fake,
                                   "--spool-max-entries", "3", "--metrics", "127.0.0.1:0")
        try:
            self.assertEqual(self.post(bridge, [{"from": user, "id": "wamid.F.1", "text": TICKET_TEXT}]), 200)
            self.assertEqual(self.post(bridge, [{"from": user, "id": "wamid.F.2", "text": "two"}]), 200)
            # Two messages, room for one: neither is taken.
            self.assertEqual(self.post(bridge, [{"from": user, "id": "wamid.F.3", "text": "three"},
                                                {"from": user, "id": "wamid.F.4", "text": "four"}]), 503)
            self.assertEqual(spool_gauge(bridge, "whatsapp"), 2)
            self.assertEqual(self.post(bridge, [{"from": user, "id": "wamid.F.3", "text": "three"}]), 200)
            self.assertEqual(self.post(bridge, [{"from": user, "id": "wamid.F.4", "text": "four"}]), 503)
            self.assertTrue([l for l in bridge.events("webhook_deferred") if "reason=spool_full" in l])
            self.assertEqual(spool_gauge(bridge, "whatsapp"), 3)
            # helpwired back: the spool drains, and Meta's retry is taken.
            self.server.start()
            deadline = time.time() + 30
            while spool_gauge(bridge, "whatsapp") != 0 and time.time() < deadline:
                time.sleep(0.2)
            self.assertEqual(spool_gauge(bridge, "whatsapp"), 0, bridge.read_log())
            self.assertEqual(self.post(bridge, [{"from": user, "id": "wamid.F.4", "text": "four"}]), 200)
            ticket = self.ticket_of("CHANNEL_WHATSAPP", user, "wamid.F.1")
            want = [TICKET_TEXT, "two", "three", "four"]
            self.assertEqual(wait_texts(self.server, ticket, want), want)
        finally:
            self.assertEqual(bridge.stop(), 0, bridge.read_log())


class TelegramWebhookIntake(Intake):
    def setUp(self):
        super().setUp()
        self.fake = fc.FakeTelegram(bt.TG_SECRET)

    def tearDown(self):
        self.fake.close()

    def start(self, state_dir):
        env = dict(bt.telegram_env(self.server.bridge_token()), TELEGRAM_WEBHOOK_SECRET=bt.TG_WEBHOOK_SECRET)
        return bt.Bridge("telegram", ["--mode", "webhook", "--webhook-listen", "127.0.0.1:0", "--helpwire",
                                      self.server.address, "--api-base", self.fake.base_url, "--state-dir",
                                      state_dir] + bt.FAST, env)

    def test_updates_taken_while_helpwired_is_down_survive_a_kill_and_are_routed_in_order_once(self):
        chat = 5301
        texts = [TICKET_TEXT, "second", "third"]
        state = bt.webchat_state()  # any fresh directory
        self.server.stop()
        bridge = self.start(state)
        try:
            for i, text in enumerate(texts):
                st, _, _ = fc.http_request(bridge.url + "/telegram/webhook", "POST",
                                           fc.telegram_update(900 + i, chat, 40 + i, text),
                                           {"X-Telegram-Bot-Api-Secret-Token": bt.TG_WEBHOOK_SECRET})
                self.assertEqual(st, 200)
            self.assertTrue(bridge.wait_log("route_failed"), bridge.read_log())
        finally:
            rc = bridge.stop(signal.SIGKILL)
        self.assertEqual(rc, -signal.SIGKILL)
        self.server.start()
        again = self.start(state)
        try:
            self.assertTrue(self.fake.wait_for(lambda: self.fake.sent_to(chat), timeout=30), again.read_log())
            ticket = self.ticket_of("CHANNEL_TELEGRAM", str(chat), "%d:40" % chat)
            self.assertEqual(wait_texts(self.server, ticket, texts), texts)
            time.sleep(1.5)
            self.assertEqual(ticket_customer_texts(self.server, ticket), texts)
        finally:
            self.assertEqual(again.stop(), 0, again.read_log())


class WebchatIntake(Intake):
    def start(self, state_dir):
        return bt.start_webchat(self.server.address, self.server.bridge_token(), "127.0.0.1:0", state_dir)

    def session(self, bridge):
        st, j = bt.post_json(bridge.url + "/api/session", {"name": "Cai"})
        self.assertEqual(st, 200)
        return j["session_id"]

    def send(self, bridge, sid, text, cmid, headers=None):
        st, _, body = fc.http_request(bridge.url + "/api/messages", "POST",
                                      {"session_id": sid, "text": text, "client_message_id": cmid}, headers,
                                      timeout=30)
        return st, json.loads(body.decode())

    def history(self, bridge, sid, after=0, limit=None):
        url = bridge.url + "/api/history?session_id=%s&after=%d" % (sid, after)
        if limit:
            url += "&limit=%d" % limit
        st, j = bt.get_json(url)
        self.assertEqual(st, 200, j)
        return j

    def whole_history(self, bridge, sid):
        events, after = [], 0
        while True:
            j = self.history(bridge, sid, after, limit=2)
            events += j["events"]
            after = j["last_event_id"]
            if not j["more"]:
                return events

    def poll(self, bridge, sid, after, want=1, timeout=20):
        events = []
        deadline = time.time() + timeout
        while len(events) < want and time.time() < deadline:
            st, j = bt.get_json(bridge.url + "/api/poll?session_id=%s&after=%d&wait_s=1" % (sid, after))
            self.assertEqual(st, 200, j)
            events += j["events"]
            after = j["last_event_id"]
        return events

    def test_the_conversation_survives_a_reload_and_restarts_and_a_message_sent_while_helpwired_is_down(self):
        state = bt.webchat_state()
        bridge = self.start(state)
        try:
            sid = self.session(bridge)
            st, j = self.send(bridge, sid, TICKET_TEXT, "h1")
            self.assertEqual((st, j["action"]), (200, "new_ticket"), j)
            first = self.poll(bridge, sid, 0)
            self.assertTrue(first, bridge.read_log())
            ticket = self.ticket_of("CHANNEL_WEBCHAT", sid, sid + ":h1")
        finally:
            self.assertEqual(bridge.stop(), 0, bridge.read_log())
        # A reply delivered while the page (and the bridge) is away.
        bt.agent_call(self.server, "helpwire.v1.Tickets/AddMessage", ticket_id=ticket,
                      kind="MESSAGE_KIND_AGENT_REPLY", text="Looking into it while you were away.")
        bridge = self.start(state)
        try:
            # The outbox delivers the reply to the restarted bridge; the
            # stream resumes after the last id the page saw.
            got = self.poll(bridge, sid, first[-1]["id"])
            self.assertEqual([e["text"] for e in got], ["Looking into it while you were away."])
            self.assertGreater(got[0]["id"], first[-1]["id"])
            events = self.whole_history(bridge, sid)
            self.assertEqual(events[0]["kind"], "visitor")
            self.assertEqual(events[0]["text"], TICKET_TEXT)
            self.assertEqual(events[-1]["text"], "Looking into it while you were away.")
            self.assertEqual([e["id"] for e in events], sorted(e["id"] for e in events))
            self.assertEqual(len({e["id"] for e in events}), len(events))
            before_down = events[-1]["id"]

            # helpwired down: the message is taken, with a notice in the
            # visitor's language, never an error.
            self.server.stop()
            st, j = self.send(bridge, sid, "Are you still there?", "h2")
            self.assertEqual(st, 202, j)
            self.assertEqual((j["ok"], j["queued"], j["code"]), (True, True, "queued"))
            self.assertEqual(j["notice"], "We have received your message and will answer you here as soon as we can.")
            self.assertNotIn("error", j)
            st, j = self.send(bridge, sid, "我的退款到哪里了？", "h3")
            self.assertEqual(st, 202, j)
            self.assertRegex(j["notice"], r"[\u4e00-\u9fff]")
            # The page sending the same message again is stored once.
            st, j = self.send(bridge, sid, "Are you still there?", "h2")
            self.assertEqual(st, 202, j)
            texts = [e["text"] for e in self.whole_history(bridge, sid) if e["id"] > before_down]
            self.assertEqual(texts, ["Are you still there?", "我的退款到哪里了？"])
        finally:
            rc = bridge.stop(signal.SIGKILL)  # spooled, not yet routed: a crash keeps them
        self.assertEqual(rc, -signal.SIGKILL)
        self.server.start()
        bridge = self.start(state)
        try:
            want = [TICKET_TEXT, "Are you still there?", "我的退款到哪里了？"]
            self.assertEqual(wait_texts(self.server, ticket, want), want)
            bt.agent_call(self.server, "helpwire.v1.Tickets/AddMessage", ticket_id=ticket,
                          kind="MESSAGE_KIND_AGENT_REPLY", text="Yes, your refund left today.")
            got = self.poll(bridge, sid, before_down)
            deadline = time.time() + 20
            while "Yes, your refund left today." not in [e["text"] for e in got] and time.time() < deadline:
                got += self.poll(bridge, sid, got[-1]["id"] if got else before_down, timeout=2)
            self.assertIn("Yes, your refund left today.", [e["text"] for e in got])
            events = self.whole_history(bridge, sid)
            texts = [e["text"] for e in events]
            self.assertLess(texts.index("我的退款到哪里了？"), texts.index("Yes, your refund left today."))
            self.assertEqual(texts.count("Are you still there?"), 1)
            self.assertEqual(texts[0], TICKET_TEXT)
        finally:
            self.assertEqual(bridge.stop(), 0, bridge.read_log())

    def test_the_history_api_pages_and_refuses_bad_input(self):
        bridge = self.start(bt.webchat_state())
        try:
            sid = self.session(bridge)
            self.assertEqual(self.history(bridge, sid), {"events": [], "last_event_id": 0, "more": False})
            for i in range(3):
                st, j = self.send(bridge, sid, "question %d about order 4711" % i, "p%d" % i)
                self.assertIn(st, (200, 202), j)
            j = self.history(bridge, sid, limit=2)
            self.assertTrue(j["more"])
            self.assertEqual(len(j["events"]), 2)
            rest = self.history(bridge, sid, j["last_event_id"], limit=200)
            visitor = [e["text"] for e in j["events"] + rest["events"] if e["kind"] == "visitor"]
            self.assertEqual(visitor, ["question %d about order 4711" % i for i in range(3)])
            for query, field in (("limit=0", "limit"), ("limit=201", "limit"), ("limit=x", "limit"),
                                 ("after=-1", "after"), ("after=abc", "after")):
                st, j = bt.get_json(bridge.url + "/api/history?session_id=%s&%s" % (sid, query))
                self.assertEqual((st, j["field"]), (400, field), query)
            st, j = bt.get_json(bridge.url + "/api/history?session_id=short")
            self.assertEqual((st, j["field"]), (400, "session_id"))
            # Another visitor sees nothing of this one.
            other = self.session(bridge)
            self.assertEqual(self.history(bridge, other)["events"], [])
        finally:
            self.assertEqual(bridge.stop(), 0, bridge.read_log())


if __name__ == "__main__":
    hwtest.main()
