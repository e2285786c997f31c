"""bridges_delivery_test: the bridges' outbound delivery guarantees through
the real binaries (telegram-bridge, whatsapp-bridge, helpwired) against the
fake channel APIs on loopback: per-recipient isolation, retry_after and
throughput limits, giving up after --max-delivery-age-ms, the durable sent
record across a kill -9, the exclusive lease of two bridges on one state
directory, and WhatsApp's failed status callbacks.
"""
import os
import re
import signal
import tempfile
import threading
import time
import unittest

import bridges_test as bt
import fake_channels as fc
import hwclient
import hwtest

API = hwclient.Api()
TMP = bt.TMP
DELIVERY_FAILED = bt.DELIVERY_FAILED


def start_telegram(server, fake, state, *extra):
    return bt.start_telegram(server.address, server.bridge_token(), fake, state, *extra)


def history(server, ticket):
    return bt.agent_call(server, "helpwire.v1.Tickets/GetTicketHistory", ticket_id=ticket).events


def failed_events(server, ticket):
    return [e for e in history(server, ticket) if e.kind == DELIVERY_FAILED]


def reply(server, ticket, text):
    return bt.agent_call(server, "helpwire.v1.Tickets/AddMessage", ticket_id=ticket,
                         kind="MESSAGE_KIND_AGENT_REPLY", text=text)


class TelegramDelivery(bt.EndToEnd):
    """One helpwired; a Telegram bridge of its own per test."""

    def setUp(self):
        self.fake = fc.FakeTelegramDelivery(bt.TG_SECRET)
        self.state = tempfile.mkdtemp(prefix="tg-delivery-", dir=TMP)
        self.bridges = []

    def tearDown(self):
        for b in self.bridges:
            if b.proc.poll() is None:
                b.stop()
        self.fake.close()

    def start(self, *extra, state=None):
        b = start_telegram(self.server, self.fake, state or self.state, *extra)
        self.bridges.append(b)
        return b

    def open_ticket(self, bridge, chat):
        u = self.fake.add_text(chat, bt.TICKET_TEXT)
        self.assertTrue(self.fake.wait_for(lambda: self.fake.sent_to(chat)), bridge.read_log())
        r = bt.route_again(self.server, "CHANNEL_TELEGRAM", str(chat), bt.telegram_key(u))
        self.assertTrue(r.ticket_id, r)
        return r.ticket_id

    def test_a_blocked_chat_with_300_messages_queued_does_not_hold_up_another_chat(self):
        b = self.start()
        blocked = self.open_ticket(b, 3001)
        healthy = self.open_ticket(b, 3002)
        self.fake.block_chat(3001)
        self.fake.slow_chat(3001, 0.02)  # each refusal takes a moment, as over the Internet
        agent = self.server.client("agent")
        try:
            for i in range(300):
                agent.call("helpwire.v1.Tickets/AddMessage", ticket_id=blocked, kind="MESSAGE_KIND_AGENT_REPLY",
                           text="Update %d on your order." % i)
            queued_at = time.time()
            agent.call("helpwire.v1.Tickets/AddMessage", ticket_id=healthy, kind="MESSAGE_KIND_AGENT_REPLY",
                       text="Your parcel left the warehouse.")
        finally:
            agent.close()
        self.assertTrue(self.fake.wait_for(lambda: len(self.fake.sent_to(3002)) >= 2, timeout=5), b.read_log())
        arrived = time.time()
        refused_by_then = len(self.fake.attempts_to(3001)) - 1
        self.assertLess(arrived - queued_at, 3.0)
        self.assertLess(refused_by_then, 300, "the healthy chat waited for the blocked one")
        self.assertEqual(self.fake.sent_to(3002)[1]["text"], "Your parcel left the warehouse.")
        # Every blocked message ends FAILED, each tried once.
        self.assertTrue(b.wait_log("delivery_failed", count=300, timeout=60), len(b.events("delivery_failed")))
        time.sleep(0.5)
        self.assertEqual(len(self.fake.attempts_to(3001)), 1 + 300)
        self.assertIn("telegram 403: Forbidden: bot was blocked by the user", failed_events(self.server, blocked)[0].detail)

    def test_429_retry_after_holds_back_only_that_chat(self):
        b = self.start()
        slow = self.open_ticket(b, 3011)
        other = self.open_ticket(b, 3012)
        self.fake.fail_chat(3011, 429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 2",
                                        "parameters": {"retry_after": 2}}, count=1)
        reply(self.server, slow, "First of two.")
        self.assertTrue(self.fake.wait_for(lambda: len(self.fake.attempts_to(3011)) >= 2, timeout=5), b.read_log())
        reply(self.server, other, "Meanwhile, for you.")
        self.assertTrue(self.fake.wait_for(lambda: len(self.fake.attempts_to(3011)) >= 3, timeout=10), b.read_log())
        self.assertTrue(self.fake.wait_for(lambda: len(self.fake.sent_to(3012)) >= 2, timeout=5), b.read_log())
        attempts = self.fake.attempts_to(3011)
        throttled, retried = attempts[1], attempts[2]
        self.assertGreaterEqual(retried.time - throttled.time, 2.0)
        other_sent = self.fake.attempts_to(3012)[1]
        self.assertLess(other_sent.time, retried.time, "the other chat waited for the throttled one")
        self.assertEqual([m["text"] for m in self.fake.sent_to(3011)][1:], ["First of two."])

    def test_forty_throttled_chats_with_slow_refusals_do_not_hold_up_a_healthy_one(self):
        # Each throttled chat's send is held 300 ms and answered 429
        # retry_after 1 (a chat over its flood limit, over the Internet):
        # the bridge waits on forty such answers at once and more every
        # second. With four workers the healthy reply waited seconds.
        b = self.start()
        throttled = list(range(3101, 3141))
        tickets = {c: self.open_ticket(b, c) for c in throttled}
        healthy = self.open_ticket(b, 3141)
        flood = {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                 "parameters": {"retry_after": 1}}
        for c in throttled:
            self.fake.fail_chat(c, 429, flood)
            self.fake.slow_chat(c, 0.3)
        for c in throttled:
            reply(self.server, tickets[c], "Your order %d is delayed." % c)
        time.sleep(0.7)  # their first attempts are under way, some retries due
        queued_at = time.time()
        reply(self.server, healthy, "Your parcel left the warehouse.")
        self.assertTrue(self.fake.wait_for(lambda: len(self.fake.sent_to(3141)) >= 2, timeout=10), b.read_log())
        waited = self.fake.attempts_to(3141)[-1].time - queued_at
        self.assertLess(waited, 1.0, "the healthy chat waited for the throttled ones")
        self.assertEqual(self.fake.sent_to(3141)[1]["text"], "Your parcel left the warehouse.")
        # The throttled ones are retried, after retry_after, and none is
        # given up on or sent.
        self.assertTrue(self.fake.wait_for(lambda: all(len(self.fake.attempts_to(c)) >= 3 for c in throttled),
                                           timeout=15), b.read_log())
        for c in throttled:
            a = self.fake.attempts_to(c)
            self.assertGreaterEqual(a[2].time - a[1].time, 1.0, "chat %d retried before retry_after" % c)
            self.assertEqual(len(self.fake.sent_to(c)), 1, "chat %d got its throttled reply" % c)
        self.assertEqual(b.events("delivery_failed"), [])
        # The limits lift: every held reply goes out, once, and nothing is
        # left owed in helpwired for the next test's bridge.
        for c in throttled:
            self.fake.fail_chat(c, 429, flood, count=0)
            self.fake.slow_chat(c, 0)
        self.assertTrue(self.fake.wait_for(lambda: all(len(self.fake.sent_to(c)) >= 2 for c in throttled),
                                           timeout=15), b.read_log())
        for c in throttled:
            self.assertEqual([m["text"] for m in self.fake.sent_to(c)][1:], ["Your order %d is delayed." % c])
        time.sleep(0.5)  # the last Acks land

    def test_a_transient_failure_past_the_max_delivery_age_ends_failed(self):
        b = self.start("--max-delivery-age-ms", "1500")
        ticket = self.open_ticket(b, 3021)
        self.fake.fail_chat(3021, 502, {"ok": False, "error_code": 502, "description": "Bad Gateway"})
        reply(self.server, ticket, "This will not get through.")
        self.assertTrue(hwtest.wait_for(lambda: failed_events(self.server, ticket), timeout=15), b.read_log())
        detail = failed_events(self.server, ticket)[0].detail
        self.assertRegex(detail, r"gave up after \d+ attempts in \d+ s: telegram 502: Bad Gateway")
        n = int(re.search(r"after (\d+) attempts", detail).group(1))
        self.assertGreaterEqual(n, 2)
        self.assertEqual(len(self.fake.attempts_to(3021)) - 1, n)
        time.sleep(2.5)  # past --redeliver-after-ms: nothing more is tried
        self.assertEqual(len(self.fake.attempts_to(3021)) - 1, n)

    def test_a_kill_9_between_the_send_and_the_ack_does_not_send_twice(self):
        b = self.start()
        ticket = self.open_ticket(b, 3031)
        server_pid = self.server.proc.pid
        stopped = threading.Event()

        def hold_acks(body):
            # The Bot API accepted it: freeze helpwired so the Ack cannot land.
            if str(body.get("chat_id")) == "3031" and body.get("text") == "Exactly once, please.":
                os.kill(server_pid, signal.SIGSTOP)
                stopped.set()

        self.fake.on_send = hold_acks
        try:
            agent = self.server.client("agent")
            try:
                agent.call("helpwire.v1.Tickets/AddMessage", ticket_id=ticket, kind="MESSAGE_KIND_AGENT_REPLY",
                           text="Exactly once, please.")
            finally:
                agent.close()
            self.assertTrue(stopped.wait(10), b.read_log())
            # Recorded (logged after the record is durable), the Ack not
            # landed: kill both, so no Ack buffered on the way lands either.
            self.assertTrue(b.wait_log("outbox_delivered", count=2, timeout=10), b.read_log())
            b.stop(signal.SIGKILL)
        finally:
            self.fake.on_send = None
            os.kill(server_pid, signal.SIGKILL)
            self.server.proc.wait()
            self.server.proc.stdout.close()
            self.server.log.close()
            self.server.start()
        b2 = self.start()
        self.assertTrue(b2.wait_log("outbox_redelivered_already_sent", timeout=20), b2.read_log())
        time.sleep(2.5)  # past --redeliver-after-ms: a resend would show now
        texts = [m["text"] for m in self.fake.sent_to(3031)]
        self.assertEqual(texts.count("Exactly once, please."), 1, texts)
        self.assertEqual(failed_events(self.server, ticket), [])

    def test_two_bridges_on_one_state_dir_one_polls_and_the_other_takes_over(self):
        first = self.start()
        self.assertTrue(first.wait_log("outbox_lease", timeout=20), first.read_log())
        self.assertIn("state=active", first.events("outbox_lease")[0])
        second = self.start()
        self.assertTrue(second.wait_log("outbox_lease", timeout=20), second.read_log())
        self.assertIn("state=standby", second.events("outbox_lease")[0])
        ticket = self.open_ticket(first, 3041)
        time.sleep(2.5)  # several long polls of the first: the second never polls
        self.assertEqual(second.events("polling"), [])
        self.assertEqual(self.fake.conflicts, 0)
        first.stop(signal.SIGKILL)
        reply(self.server, ticket, "Queued while the bridges change over.")
        self.assertTrue(second.wait_log("polling", timeout=30), second.read_log())
        self.assertTrue(self.fake.wait_for(lambda: len(self.fake.sent_to(3041)) >= 2, timeout=30), second.read_log())
        u = self.fake.add_text(3042, bt.FAQ_QUESTION, language_code="zh")
        self.assertTrue(self.fake.wait_for(lambda: self.fake.sent_to(3042), timeout=20), second.read_log())
        time.sleep(2.5)  # past --redeliver-after-ms: a repeat would show now
        self.assertEqual([m["text"] for m in self.fake.sent_to(3041)].count("Queued while the bridges change over."), 1)
        self.assertEqual(len(self.fake.sent_to(3042)), 1)
        self.assertEqual(self.fake.conflicts, 0)
        self.assertGreaterEqual(bt.read_offset(self.state), u["update_id"] + 1)
        self.assertIn("state=active", second.events("outbox_lease")[-1])

    def test_metrics_count_deliveries_and_show_the_lease(self):
        port = bt.free_port()
        b = self.start("--metrics", "127.0.0.1:%d" % port)
        self.open_ticket(b, 3051)
        time.sleep(0.5)  # the Ack lands
        text = bt.scrape(port)
        self.assertEqual(bt.metric(text, "helpwire_bridge_outbox_lease", bridge="telegram"), 1)
        self.assertGreaterEqual(bt.metric(text, "helpwire_bridge_deliveries_total", bridge="telegram",
                                          result="delivered"), 1)
        self.assertEqual(bt.metric(text, "helpwire_bridge_deliveries_total", bridge="telegram", result="failed"), 0)
        self.assertEqual(bt.metric(text, "helpwire_bridge_outbox_queued", bridge="telegram"), 0)


class WhatsAppDelivery(bt.EndToEnd):
    def setUp(self):
        self.fake = fc.FakeWhatsAppDelivery(bt.WA_PHONE_ID, bt.WA_TOKEN)
        self.bridge = None
        self.counter = 0

    def tearDown(self):
        if self.bridge:
            self.assertEqual(self.bridge.stop(), 0, self.bridge.read_log())
        self.fake.close()

    def post(self, wa_id, text):
        self.counter += 1
        body, sig = fc.whatsapp_webhook(bt.WA_APP_SECRET, bt.WA_PHONE_ID,
                                        messages=[{"from": wa_id, "id": "wamid.in.%s.%d" % (wa_id, self.counter),
                                                   "text": text}], contacts=[(wa_id, "Bea")])
        st, _, _ = fc.http_request(self.bridge.url + "/whatsapp/webhook", "POST", body,
                                   {"X-Hub-Signature-256": sig})
        self.assertEqual(st, 200)

    def test_a_throughput_limit_pauses_the_channel_then_everything_is_delivered(self):
        self.bridge = bt.start_whatsapp(self.server.address, self.server.bridge_token(), self.fake,
                                        "--backoff-initial-ms", "600", "--backoff-max-ms", "1200")
        limit = {"error": {"message": "(#130429) Rate limit hit", "type": "OAuthException", "code": 130429,
                           "error_data": {"messaging_product": "whatsapp",
                                          "details": "Cloud API message throughput has been reached."}}}
        self.fake.fail_next(400, limit, count=2, match="/messages")
        for wa in ("15550004001", "15550004002", "15550004003"):
            self.post(wa, bt.TICKET_TEXT)
        self.assertTrue(self.fake.wait_for(lambda: all(self.fake.sent_to(w) for w in
                                                       ("15550004001", "15550004002", "15550004003")), timeout=30),
                        self.bridge.read_log())
        times = [r.time for r in self.fake.requests if r.method == "POST" and r.path.endswith("/messages")]
        # After the first refusal the whole channel waits (at least half
        # the initial backoff, with jitter) before its next request,
        # whoever it is for; only requests already under way go on.
        first = times[0]
        self.assertEqual([t for t in times if first + 0.05 < t < first + 0.29], [], times)
        self.assertGreaterEqual(len(times), 5)
        self.assertTrue(any("scope=channel" in l for l in self.bridge.events("outbox_delivery_failed")))
        self.assertEqual(len(self.fake.sent), 3)

    def test_an_expired_access_token_holds_messages_until_it_works_again(self):
        # 190 (the access token expired or was revoked) is the operator's to
        # fix, not the customer's: nothing is FAILED, the message waits and
        # goes out, once, when the Graph API takes the token again.
        self.bridge = bt.start_whatsapp(self.server.address, self.server.bridge_token(), self.fake,
                                        "--backoff-initial-ms", "200", "--backoff-max-ms", "400")
        expired = {"error": {"message": "Error validating access token: Session has expired.",
                             "type": "OAuthException", "code": 190, "error_subcode": 463}}
        self.fake.fail_next(401, expired, count=4, match="/messages")
        wa = "15550004021"
        self.post(wa, bt.TICKET_TEXT)
        self.assertTrue(self.fake.wait_for(lambda: self.fake.sent_to(wa), timeout=30), self.bridge.read_log())
        sends = [r for r in self.fake.requests if r.method == "POST" and r.path.endswith("/messages")]
        self.assertGreaterEqual(len(sends), 5, "four refusals, then the send")
        c = self.server.client("bridge")
        try:
            r = c.call("helpwire.v1.Router/Route", channel="CHANNEL_WHATSAPP", channel_user_id=wa, text="again",
                       message_id="wamid.in.%s.%d" % (wa, self.counter))
        finally:
            c.close()
        self.assertTrue(r.ticket_id, r)
        time.sleep(0.5)
        self.assertEqual(len(self.fake.sent_to(wa)), 1)
        self.assertEqual(failed_events(self.server, r.ticket_id), [])

    def test_a_failed_status_callback_puts_delivery_failed_on_the_ticket(self):
        self.bridge = bt.start_whatsapp(self.server.address, self.server.bridge_token(), self.fake)
        wa = "15550004011"
        self.post(wa, bt.TICKET_TEXT)
        self.assertTrue(self.fake.wait_for(lambda: self.fake.wamids_to(wa), timeout=20), self.bridge.read_log())
        time.sleep(0.3)  # the Ack and the record land
        wamid = self.fake.wamids_to(wa)[0]
        c = self.server.client("bridge")
        try:
            r = c.call("helpwire.v1.Router/Route", channel="CHANNEL_WHATSAPP", channel_user_id=wa, text="again",
                       message_id="wamid.in.%s.1" % wa)
        finally:
            c.close()
        self.assertTrue(r.ticket_id, r)
        st = fc.post_whatsapp_status(self.bridge.url + "/whatsapp/webhook", bt.WA_APP_SECRET, bt.WA_PHONE_ID,
                                     fc.whatsapp_failed_status(wamid, wa, 131047, "Re-engagement message",
                                                               "Message failed to send because more than 24 hours "
                                                               "have passed since the customer last replied."))
        self.assertEqual(st, 200)
        self.assertTrue(hwtest.wait_for(lambda: failed_events(self.server, r.ticket_id), timeout=15),
                        self.bridge.read_log())
        detail = failed_events(self.server, r.ticket_id)[0].detail
        self.assertIn("whatsapp 131047: Re-engagement message: Message failed to send", detail)
        # A status for a wamid never sent from here is only a warning.
        st = fc.post_whatsapp_status(self.bridge.url + "/whatsapp/webhook", bt.WA_APP_SECRET, bt.WA_PHONE_ID,
                                     fc.whatsapp_failed_status("wamid.unknown.1", wa, 131047, "Re-engagement message",
                                                               "x"))
        self.assertEqual(st, 200)
        self.assertTrue(self.bridge.wait_log("status_failed_unknown"), self.bridge.read_log())
        time.sleep(0.5)
        self.assertEqual(len(failed_events(self.server, r.ticket_id)), 1)


class Flags(unittest.TestCase):
    def test_delivery_flags_are_bounded(self):
        for flag, value in (("--delivery-workers", "0"), ("--delivery-workers", "65"),
                            ("--max-delivery-age-ms", "999"), ("--max-in-flight-per-recipient", "0")):
            rc, _, err = bt.run("webchat", [flag, value], env={"HELPWIRE_TOKEN": "t"})
            self.assertEqual(rc, 2, (flag, value))
            self.assertIn(flag, err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
