"""signals_test: channel signals, the WhatsApp 24-hour window and the
customer's language, through the real helpwired with a fake bridge (an
Outbox subscriber over gRPC).

Signals (Tickets.SendChannelSignal): TYPING reaches only the channel's
active subscriber (never a standby), nothing is delivered without one, READ
names the customer's last message by its channel id, a burst of TYPING is
coalesced to one per ticket per 2 s, a channel without the signal and a
closed ticket are told apart, a seq-0 Ack changes nothing, and a follower
of a replicated helpwired relays the call to the leader where bridges
subscribe.

The window: an agent's WhatsApp reply inside 24 h of the customer's last
message goes as it is; at 24 h and after, as the configured template
(--whatsapp-template), or, without one, FAILED_PRECONDITION and nothing
stored. Times come from a clock file.

The language: the survey invitation of a Chinese conversation that ends
with "OK" is Chinese; an English one is English."""
import os
import queue
import re
import tempfile
import threading
import time
import unittest
import urllib.request

import grpc

import hwclient
import hwtest

API = hwclient.Api()
TG, WA, WEB = "CHANNEL_TELEGRAM", "CHANNEL_WHATSAPP", "CHANNEL_WEBCHAT"
TYPING_KIND, READ_KIND, SURVEY_KIND, AGENT_REPLY_KIND = 5, 6, 4, 3
ACTIVE, STANDBY = 1, 2
SIGNAL = "helpwire.v1.Tickets/SendChannelSignal"
T0 = 1796601600000  # 2026-12-07T00:00:00Z
DAY = 24 * 3600 * 1000


class Reader:
    """Reads a Subscribe stream on a thread."""

    def __init__(self, stream):
        self.stream = stream
        self.q = queue.Queue()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        try:
            for m in self.stream:
                self.q.put(m)
        except grpc.RpcError as e:
            self.q.put(e)

    def until(self, pred, timeout=5.0):
        """The first message pred accepts (others are dropped)."""
        end = time.time() + timeout
        while True:
            left = end - time.time()
            if left <= 0:
                raise AssertionError("no such message within %.1f s" % timeout)
            try:
                m = self.q.get(timeout=left)
            except queue.Empty:
                continue
            if isinstance(m, Exception):
                raise m
            if pred(m):
                return m

    def signals(self, seconds):
        """The signals (seq 0, kind TYPING or READ) that arrive in seconds."""
        got = []
        end = time.time() + seconds
        while time.time() < end:
            try:
                m = self.q.get(timeout=max(0.0, end - time.time()))
            except queue.Empty:
                break
            if isinstance(m, Exception):
                raise m
            if m.seq == 0 and m.kind in (TYPING_KIND, READ_KIND):
                got.append(m)
        return got

    def cancel(self):
        self.stream.cancel()


def subscribe(client, channel, lease=ACTIVE):
    r = Reader(client.stream("helpwire.v1.Outbox/Subscribe", timeout=120, channel=channel))
    first = r.until(lambda m: True)
    assert (first.seq, first.lease) == (0, lease), first
    return r


class Env:
    """A --demo helpwired with a clock file; extra flags as given."""

    def __init__(self, *extra):
        self.tmp = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        self.clock_file = os.path.join(self.tmp, "now")
        self.set_clock(T0)
        self.server = hwclient.Server("--demo", "--sender-rate", "0", "--new-customers-rate", "0",
                                      "--clock-file", self.clock_file, "--metrics", "127.0.0.1:0", *extra)
        self.admin = self.server.client(api=API, role="admin")
        self.agent = self.server.client(api=API, role="agent")
        self.bridge = self.server.client(api=API, role="bridge")
        self.users = 0

    def set_clock(self, at_ms):
        tmp = self.clock_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % at_ms)
        os.rename(tmp, self.clock_file)

    def user(self, prefix):
        self.users += 1
        return "%s-%d" % (prefix, self.users)

    def route(self, channel, user, text, message_id):
        return self.bridge.call("helpwire.v1.Router/Route", channel=channel, channelUserId=user,
                                displayName="Signals", text=text, messageId=message_id)

    def ticket(self, channel, text="human", prefix="u"):
        """A ticket opened by a customer through Route; (ticket id, user)."""
        user = self.user(prefix)
        r = self.route(channel, user, text, user + "-m1")
        assert r.ticket_id, r
        return r.ticket_id, user

    def signal(self, ticket_id, sig, client=None):
        r = (client or self.agent).call(SIGNAL, ticketId=ticket_id, signal=sig)
        return r.delivered, r.reason

    def metric(self, line_prefix):
        body = urllib.request.urlopen(self.server.metrics_url, timeout=5).read().decode()
        for line in body.splitlines():
            if line.startswith(line_prefix + " "):
                return float(line.split()[-1])
        raise AssertionError("no metric " + line_prefix)

    def close(self):
        for c in (self.admin, self.agent, self.bridge):
            c.close()
        rc = self.server.stop()
        assert rc == 0, self.server.read_log()


class Signals(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.env = Env()

    @classmethod
    def tearDownClass(cls):
        cls.env.close()

    def test_typing_without_a_subscriber_is_not_delivered(self):
        t, _ = self.env.ticket(WEB)
        self.assertEqual(self.env.signal(t, "CHANNEL_SIGNAL_TYPING"), (False, "no-subscriber"))

    def test_typing_reaches_the_active_subscriber_only_and_a_burst_is_coalesced(self):
        t, user = self.env.ticket(TG)
        active = subscribe(self.env.bridge, TG)
        standby = subscribe(self.env.bridge, TG, lease=STANDBY)
        self.addCleanup(active.cancel)
        self.addCleanup(standby.cancel)
        before = self.env.metric('helpwire_channel_signals_total{channel="telegram",signal="typing",'
                                 'result="coalesced"}')
        self.assertEqual(self.env.signal(t, "CHANNEL_SIGNAL_TYPING"), (True, ""))
        got = active.signals(1.0)
        self.assertEqual(len(got), 1, got)
        m = got[0]
        self.assertEqual((m.seq, m.kind, m.channel_user_id, m.ticket_id, m.text), (0, TYPING_KIND, user, t, ""))
        self.assertTrue(m.customer_id)
        self.assertEqual(m.locale, "en")
        # A frontend sending on every keystroke: answered delivered, passed on once.
        for _ in range(5):
            self.assertEqual(self.env.signal(t, "CHANNEL_SIGNAL_TYPING"), (True, ""))
        self.assertEqual(active.signals(1.0), [])
        self.assertEqual(standby.signals(0.1), [])
        after = self.env.metric('helpwire_channel_signals_total{channel="telegram",signal="typing",'
                                'result="coalesced"}')
        self.assertEqual(after - before, 5)
        time.sleep(1.2)  # 2 s after the first
        self.assertEqual(self.env.signal(t, "CHANNEL_SIGNAL_TYPING"), (True, ""))
        self.assertEqual(len(active.signals(1.0)), 1)
        # An acknowledgement of seq 0 is ignored, and nothing was queued.
        self.assertEqual(self.env.bridge.call("helpwire.v1.Outbox/Ack", channel=TG, seqs=[0]).acked, 0)
        self.assertEqual(standby.signals(0.2), [])

    def test_read_names_the_customers_last_message(self):
        user = self.env.user("wa")
        t = self.env.route(WA, user, "human", "wamid.A1").ticket_id
        self.assertEqual(self.env.route(WA, user, "我的订单还没到", "wamid.A2").ticket_id, t)
        r = subscribe(self.env.bridge, WA)
        self.addCleanup(r.cancel)
        self.assertEqual(self.env.signal(t, "CHANNEL_SIGNAL_READ"), (True, ""))
        got = r.signals(1.0)
        self.assertEqual([(m.kind, m.channel_message_id, m.channel_user_id, m.ticket_id) for m in got],
                         [(READ_KIND, "wamid.A2", user, t)])
        self.assertEqual(got[0].locale, "zh")
        # READ is not rate-limited: each opening of the conversation marks.
        self.assertEqual(self.env.signal(t, "CHANNEL_SIGNAL_READ"), (True, ""))
        self.assertEqual(len(r.signals(1.0)), 1)

    def test_each_channel_takes_only_its_own_signals(self):
        wa, _ = self.env.ticket(WA)
        tg, _ = self.env.ticket(TG)
        web, _ = self.env.ticket(WEB)
        self.assertEqual(self.env.signal(wa, "CHANNEL_SIGNAL_TYPING"), (False, "unsupported-by-channel"))
        self.assertEqual(self.env.signal(tg, "CHANNEL_SIGNAL_READ"), (False, "unsupported-by-channel"))
        self.assertEqual(self.env.signal(web, "CHANNEL_SIGNAL_READ"), (False, "unsupported-by-channel"))

    def test_read_without_a_customer_message_id_and_on_a_closed_ticket(self):
        user = self.env.user("wa")
        cid = self.env.route(WA, user, "human", user + "-m1").customer_id
        # An agent's ticket: its first message came from no channel.
        t = self.env.admin.call("helpwire.v1.Tickets/CreateTicket", customerId=cid, text="callback request",
                                queue="general").ticket
        self.assertEqual(self.env.signal(t.id, "CHANNEL_SIGNAL_READ"), (False, "no-customer-message"))
        self.env.admin.call("helpwire.v1.Tickets/CloseTicket", ticketId=t.id, resolution="called back",
                            skipSurvey=True)
        self.assertEqual(self.env.signal(t.id, "CHANNEL_SIGNAL_READ"), (False, "ticket-closed"))

    def test_bad_requests_name_the_problem(self):
        t, _ = self.env.ticket(TG)
        with self.assertRaises(grpc.RpcError) as e:
            self.env.agent.call(SIGNAL, ticketId=t)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("signal", e.exception.details())
        with self.assertRaises(grpc.RpcError) as e:
            self.env.agent.call(SIGNAL, ticketId="t-999999", signal="CHANNEL_SIGNAL_TYPING")
        self.assertEqual(e.exception.code(), grpc.StatusCode.NOT_FOUND)
        with self.assertRaises(grpc.RpcError) as e:
            self.env.bridge.call(SIGNAL, ticketId=t, signal="CHANNEL_SIGNAL_TYPING")
        self.assertEqual(e.exception.code(), grpc.StatusCode.PERMISSION_DENIED)


def reply(env, ticket_id, text):
    return env.agent.call("helpwire.v1.Tickets/AddMessage", ticketId=ticket_id, kind="MESSAGE_KIND_AGENT_REPLY",
                          text=text)


def outbound(reader, ticket_id, kind):
    return reader.until(lambda m: m.seq and m.ticket_id == ticket_id and m.kind == kind)


class WindowWithTemplate(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.env = Env("--whatsapp-template", "reopen_chat:zh_CN")
        cls.wa = subscribe(cls.env.bridge, WA)

    @classmethod
    def tearDownClass(cls):
        cls.wa.cancel()
        cls.env.close()

    def setUp(self):
        self.env.set_clock(T0)

    def test_inside_the_window_the_reply_goes_as_it_is(self):
        t, user = self.env.ticket(WA)
        self.env.set_clock(T0 + DAY - 1)
        r = reply(self.env, t, "Your parcel left the warehouse.")
        self.assertFalse(r.window.closed)
        self.assertEqual((r.window.last_customer_message_unix_ms, r.window.closes_unix_ms), (T0, T0 + DAY))
        self.assertEqual(r.window.template_name, "")
        m = outbound(self.wa, t, AGENT_REPLY_KIND)
        self.assertEqual((m.text, m.template_name, m.channel_user_id), ("Your parcel left the warehouse.", "", user))
        agent = self.env.agent.call("helpwire.v1.Agents/GetAgent", agentId=r.message.author.split(":", 1)[1])
        self.assertTrue(agent.name)
        self.assertEqual((m.author_name, r.message.author_name), (agent.name, agent.name))
        self.assertEqual(m.locale, "en")

    def test_at_24_hours_the_reply_goes_as_the_template_and_the_history_says_so(self):
        t, user = self.env.ticket(WA, text="人工")
        self.env.set_clock(T0 + DAY)
        r = reply(self.env, t, "您的包裹已发出。")
        self.assertTrue(r.window.closed)
        self.assertEqual((r.window.closes_unix_ms, r.window.template_name), (T0 + DAY, "reopen_chat"))
        m = outbound(self.wa, t, AGENT_REPLY_KIND)
        self.assertEqual((m.text, m.template_name, m.template_language, m.locale),
                         ("您的包裹已发出。", "reopen_chat", "zh_CN", "zh"))
        hist = self.env.agent.call("helpwire.v1.Tickets/GetTicketHistory", ticketId=t).events
        self.assertIn("WhatsApp 24-hour window closed at 2026-12-08T00:00:00Z: sent as template reopen_chat (zh_CN)",
                      hist[-1].detail)
        # The customer answers: the window is open again.
        self.env.route(WA, user, "好的谢谢", user + "-m2")
        r = reply(self.env, t, "不客气")
        self.assertFalse(r.window.closed)
        self.assertEqual(r.window.last_customer_message_unix_ms, T0 + DAY)

    def test_files_outside_the_window_are_refused_and_the_text_alone_goes(self):
        t, _ = self.env.ticket(WA)
        req = API.message("helpwire.v1.PutChunkRequest")
        req.data = b"%PDF-1.4 invoice"
        piece = self.env.agent.call("helpwire.v1.Attachments/PutChunk", request=req).chunk_sha256
        att = self.env.agent.call("helpwire.v1.Attachments/CommitAttachment", chunks=[piece],
                                  kind="ATTACHMENT_KIND_DOCUMENT", mimeType="application/pdf", name="invoice.pdf")
        self.env.set_clock(T0 + DAY + 1)
        before = self.env.agent.call("helpwire.v1.Tickets/GetTicket", ticketId=t).ticket
        with self.assertRaises(grpc.RpcError) as e:
            self.env.agent.call("helpwire.v1.Tickets/AddMessage", ticketId=t, kind="MESSAGE_KIND_AGENT_REPLY",
                                text="Your invoice", attachments=[dict(id=att.id, kind="ATTACHMENT_KIND_DOCUMENT",
                                                                       mimeType="application/pdf",
                                                                       name="invoice.pdf")])
        self.assertEqual(e.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertIn("files can be sent once the customer answers", e.exception.details())
        self.assertIn("template reopen_chat", e.exception.details())
        after = self.env.agent.call("helpwire.v1.Tickets/GetTicket", ticketId=t).ticket
        self.assertEqual(after.version, before.version)
        r = reply(self.env, t, "Your invoice is ready; answer to receive it.")
        self.assertTrue(r.window.closed)

    def test_other_channels_have_no_window(self):
        t, _ = self.env.ticket(TG)
        self.env.set_clock(T0 + 3 * DAY)
        r = reply(self.env, t, "Still here.")
        self.assertFalse(r.HasField("window"))


class WindowWithoutTemplate(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.env = Env()

    @classmethod
    def tearDownClass(cls):
        cls.env.close()

    def test_outside_the_window_the_reply_is_refused_and_nothing_is_stored(self):
        t, _ = self.env.ticket(WA)
        self.env.set_clock(T0 + DAY + 60000)
        before = self.env.agent.call("helpwire.v1.Tickets/GetTicket", ticketId=t).ticket
        events = len(self.env.agent.call("helpwire.v1.Tickets/GetTicketHistory", ticketId=t).events)
        with self.assertRaises(grpc.RpcError) as e:
            reply(self.env, t, "Sorry for the wait.")
        self.assertEqual(e.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertEqual(e.exception.details(),
                         "WhatsApp 24-hour window closed at 2026-12-08T00:00:00Z; configure "
                         "--whatsapp-template to re-open the conversation")
        after = self.env.agent.call("helpwire.v1.Tickets/GetTicket", ticketId=t).ticket
        self.assertEqual((after.message_count, after.version), (before.message_count, before.version))
        self.assertEqual(len(self.env.agent.call("helpwire.v1.Tickets/GetTicketHistory", ticketId=t).events), events)
        # An internal note is not a message to the customer: never refused.
        self.env.agent.call("helpwire.v1.Tickets/AddMessage", ticketId=t, kind="MESSAGE_KIND_INTERNAL_NOTE",
                            text="window closed, call them")

    def test_a_bad_template_flag_stops_the_start(self):
        for bad in ("Reopen", "re-open", "x:e", "ok:en us", ""):
            with self.assertRaises(RuntimeError) as e:
                hwclient.Server("--whatsapp-template", bad)
            self.assertIn("--whatsapp-template", str(e.exception))


class SurveyLanguage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.env = Env()
        cls.web = subscribe(cls.env.bridge, WEB)

    @classmethod
    def tearDownClass(cls):
        cls.web.cancel()
        cls.env.close()

    def close_and_get_invitation(self, t):
        self.env.agent.call("helpwire.v1.Tickets/CloseTicket", ticketId=t, resolution="answered")
        return outbound(self.web, t, SURVEY_KIND)

    def test_a_chinese_conversation_that_ends_with_ok_is_asked_in_chinese(self):
        user = self.env.user("zh")
        t = self.env.route(WEB, user, "人工", user + "-1").ticket_id
        self.env.route(WEB, user, "我的订单三天了还没发货", user + "-2")
        self.env.route(WEB, user, "OK", user + "-3")
        m = self.close_and_get_invitation(t)
        self.assertEqual(m.locale, "zh")
        self.assertTrue(m.text.startswith("请回复 1–5"), m.text)
        self.assertIn(m.survey_url, m.text)

    def test_an_english_conversation_is_asked_in_english(self):
        user = self.env.user("en")
        t = self.env.route(WEB, user, "human", user + "-1").ticket_id
        self.env.route(WEB, user, "my order has not shipped after three days", user + "-2")
        m = self.close_and_get_invitation(t)
        self.assertEqual(m.locale, "en")
        self.assertTrue(m.text.startswith("Reply with a number from 1 to 5"), m.text)

    def test_acknowledgements_carry_their_language(self):
        user = self.env.user("ack")
        r = self.env.route(WEB, user, "人工服务", user + "-1")
        m = outbound(self.web, r.ticket_id, 2)  # ACKNOWLEDGEMENT
        self.assertEqual(m.locale, "zh")
        self.assertIn("工单", m.text)


if __name__ == "__main__":
    hwtest.main()
