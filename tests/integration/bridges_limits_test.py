"""bridges_limits_test: a bridge honours helpwired's per-sender limit
(RESOURCE_EXHAUSTED, RATE_LIMITED with RetryInfo) for that sender only. A
customer sending faster than --sender-rate has the message over the limit
held back and routed after the delay helpwired named, their later messages
after it, in order; another customer's messages, behind the held ones, are
routed at once; nothing becomes a dead letter. For WhatsApp (webhooks) and
Telegram in long-polling mode, where the held updates are past the
getUpdates offset (taken into the spool) and survive a kill -9 of the
bridge.

The real helpwired and bridges on loopback, the fake channel APIs of
fake_channels.py; the setup helpers are bridges_test.py's.
"""
import signal
import tempfile
import time

import bridges_intake_test as bi
import bridges_test as bt
import fake_channels as fc
import hwtest

TICKET_TEXT = bt.TICKET_TEXT


class WhatsAppSenderLimit(bi.Intake):
    # Two messages at once per sender, then one every 2 s.
    extra_server_args = ("--sender-rate", "30", "--sender-burst", "2")

    def setUp(self):
        super().setUp()
        self.fake = fc.FakeWhatsApp(bt.WA_PHONE_ID, bt.WA_TOKEN)

    def tearDown(self):
        self.fake.close()

    def post(self, bridge, messages, contacts=()):
        body, sig = fc.whatsapp_webhook(bt.WA_APP_SECRET, bt.WA_PHONE_ID, messages=messages, contacts=contacts)
        st, _, _ = fc.http_request(bridge.url + "/whatsapp/webhook", "POST", body, {"X-Hub-Signature-256": sig})
        return st

    def test_a_limited_sender_is_held_while_others_flow(self):
        a, b = "4915300000071", "4915300000072"
        sent_a = [TICKET_TEXT, "second from A", "third from A", "fourth from A"]
        sent_b = [TICKET_TEXT + " (B)", "second from B"]
        bridge = bt.start_whatsapp(self.server.address, self.server.bridge_token(), self.fake)
        try:
            start = time.time()
            # A's four in one body, then B's two: B's are spooled behind A's.
            self.assertEqual(self.post(bridge, [{"from": a, "id": "wamid.L.a%d" % i, "text": t}
                                                for i, t in enumerate(sent_a, 1)], [(a, "Ana")]), 200)
            self.assertEqual(self.post(bridge, [{"from": b, "id": "wamid.L.b%d" % i, "text": t}
                                                for i, t in enumerate(sent_b, 1)], [(b, "Ben")]), 200)
            # A's third is refused: A is held, B's go on at once.
            self.assertTrue(bridge.wait_log("sender_held", timeout=10), bridge.read_log())
            self.assertTrue(self.fake.wait_for(lambda: self.fake.sent_to(b), timeout=10), bridge.read_log())
            ticket_b = self.ticket_of("CHANNEL_WHATSAPP", b, "wamid.L.b1")
            self.assertEqual(bi.wait_texts(self.server, ticket_b, sent_b, timeout=10), sent_b)
            b_done = time.time() - start
            ticket_a = self.ticket_of("CHANNEL_WHATSAPP", a, "wamid.L.a1")
            # B was through before A's hold (about 2 s) ended.
            self.assertLess(b_done, 1.8, "B waited for A's limit")
            self.assertEqual(bi.ticket_customer_texts(self.server, ticket_a), sent_a[:2])
            # A's third and fourth arrive after their delays, in order.
            self.assertEqual(bi.wait_texts(self.server, ticket_a, sent_a, timeout=20), sent_a)
            self.assertGreater(time.time() - start, 3.5)  # two tokens, 2 s each
            log = bridge.read_log()
            self.assertNotIn("event=dead_letter", log)
            self.assertIn("RESOURCE_EXHAUSTED", log)
        finally:
            self.assertEqual(bridge.stop(), 0)


class TelegramPollingSenderLimit(bi.Intake):
    # As above: two messages at once per sender, then one every 2 s.
    extra_server_args = ("--sender-rate", "30", "--sender-burst", "2")

    def setUp(self):
        super().setUp()
        self.fake = fc.FakeTelegram(bt.TG_SECRET)
        self.state = tempfile.mkdtemp(prefix="tg-limits-", dir=bt.TMP)

    def tearDown(self):
        self.fake.close()

    def start(self, *extra):
        bridge = bt.start_telegram(self.server.address, self.server.bridge_token(), self.fake, self.state, *extra)
        self.assertTrue(bridge.wait_log("polling"), bridge.read_log())
        return bridge

    def add(self, chats_texts):
        """Queues the (chat, text) updates at once (one getUpdates answer)."""
        with self.fake.cond:
            return [self.fake.add_text(chat, text) for chat, text in chats_texts]

    def ticket(self, update):
        return self.ticket_of("CHANNEL_TELEGRAM", str(update["message"]["chat"]["id"]), bt.telegram_key(update))

    def test_a_limited_chat_is_held_while_others_flow(self):
        a, b = 5401, 5402
        sent_a = [TICKET_TEXT, "second from A", "third from A", "fourth from A"]
        sent_b = [TICKET_TEXT + " (B)", "second from B"]
        bridge = self.start()
        try:
            start = time.time()
            # A's four, then B's two, in one batch of updates.
            ups = self.add([(a, t) for t in sent_a] + [(b, t) for t in sent_b])
            # A's third is refused: A is held, B's go on at once.
            self.assertTrue(bridge.wait_log("sender_held", timeout=10), bridge.read_log())
            self.assertTrue(self.fake.wait_for(lambda: self.fake.sent_to(b), timeout=10), bridge.read_log())
            ticket_b = self.ticket(ups[4])
            self.assertEqual(bi.wait_texts(self.server, ticket_b, sent_b, timeout=10), sent_b)
            b_done = time.time() - start
            # B was through before A's hold (about 2 s) ended, and every
            # update was confirmed to Telegram, A's held ones included.
            self.assertLess(b_done, 1.8, "B waited for A's limit")
            self.assertGreaterEqual(bt.read_offset(self.state), ups[-1]["update_id"] + 1)
            ticket_a = self.ticket(ups[0])
            self.assertEqual(bi.ticket_customer_texts(self.server, ticket_a), sent_a[:2])
            # A's third and fourth arrive after their delays, in order.
            self.assertEqual(bi.wait_texts(self.server, ticket_a, sent_a, timeout=20), sent_a)
            self.assertGreater(time.time() - start, 3.5)  # two tokens, 2 s each
            log = bridge.read_log()
            self.assertNotIn("event=dead_letter", log)
            self.assertIn("RESOURCE_EXHAUSTED", log)
        finally:
            self.assertEqual(bridge.stop(), 0, bridge.read_log())
        self.assertEqual(bt.read_dead_letters(self.state, "telegram"), [])

    def test_held_updates_survive_a_kill_and_are_routed_once_in_order(self):
        a, b = 5411, 5412
        sent_a = [TICKET_TEXT, "second from A", "third from A", "fourth from A"]
        bridge = self.start()
        try:
            ups = self.add([(a, t) for t in sent_a] + [(b, TICKET_TEXT + " (B)")])
            self.assertTrue(bridge.wait_log("sender_held", timeout=10), bridge.read_log())
            # Past the offset: Telegram will not give them again.
            self.assertTrue(self.fake.wait_for(lambda: bt.read_offset(self.state) >= ups[-1]["update_id"] + 1,
                                               timeout=10), bridge.read_log())
        finally:
            rc = bridge.stop(signal.SIGKILL)
        self.assertEqual(rc, -signal.SIGKILL)
        ticket_a = self.ticket(ups[0])
        held = bi.ticket_customer_texts(self.server, ticket_a)
        self.assertLess(len(held), len(sent_a), "nothing was held when the bridge was killed")
        self.assertEqual(held, sent_a[:len(held)])
        n = len(self.fake.offsets)
        again = self.start()
        try:
            # The restart polls after them, and routes them from the spool.
            self.assertTrue(self.fake.wait_for(lambda: len(self.fake.offsets) > n), again.read_log())
            self.assertEqual(self.fake.offsets[n], ups[-1]["update_id"] + 1)
            self.assertEqual(bi.wait_texts(self.server, ticket_a, sent_a, timeout=20), sent_a, again.read_log())
            ticket_b = self.ticket(ups[4])
            self.assertEqual(bi.ticket_customer_texts(self.server, ticket_b), [TICKET_TEXT + " (B)"])
            time.sleep(1.5)  # nothing comes twice later
            self.assertEqual(bi.ticket_customer_texts(self.server, ticket_a), sent_a)
            self.assertNotIn("event=dead_letter", again.read_log())
        finally:
            self.assertEqual(again.stop(), 0, again.read_log())
        self.assertEqual(bt.read_dead_letters(self.state, "telegram"), [])

    def test_a_full_spool_leaves_the_rest_at_telegram_and_takes_it_in_order_later(self):
        a = 5421
        sent_a = [TICKET_TEXT] + ["message %d from A" % i for i in range(2, 7)]
        # Room for two: A's held messages fill it, the rest wait at Telegram.
        bridge = self.start("--spool-max-entries", "2")
        try:
            ups = self.add([(a, t) for t in sent_a])
            self.assertTrue(bridge.wait_log("poll_deferred", timeout=10), bridge.read_log())
            self.assertIn("reason=spool_full", bridge.events("poll_deferred")[0])
            self.assertLess(bt.read_offset(self.state), ups[-1]["update_id"] + 1)
            ticket_a = self.ticket(ups[0])
            self.assertEqual(bi.wait_texts(self.server, ticket_a, sent_a, timeout=30), sent_a, bridge.read_log())
            self.assertTrue(self.fake.wait_for(lambda: bt.read_offset(self.state) == ups[-1]["update_id"] + 1,
                                               timeout=10), bridge.read_log())
            time.sleep(1)  # nothing comes twice later
            self.assertEqual(bi.ticket_customer_texts(self.server, ticket_a), sent_a)
            self.assertNotIn("event=dead_letter", bridge.read_log())
        finally:
            self.assertEqual(bridge.stop(), 0, bridge.read_log())


if __name__ == "__main__":
    hwtest.main()
