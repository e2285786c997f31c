"""lifecycle_test: the agent's side end to end through the real helpwired:
escalation alerts reaching a supervisor webhook (also one that is down at
first), a closed ticket's survey travelling through the outbox and coming
back answered into the stats, and redelivery to a bridge that disconnects
before acking."""
import http.server
import json
import socket
import threading
import time
import unittest

import grpc

import hwclient
import hwtest

API = hwclient.Api()
TG = "CHANNEL_TELEGRAM"


class Webhook:
    """A supervisor webhook on 127.0.0.1:port recording JSON POSTs."""

    def __init__(self, port=0, fail_first=0):
        self.received = []
        self.fail_first = fail_first
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if outer.fail_first > 0:
                    outer.fail_first -= 1
                    self.send_response(500)
                    self.end_headers()
                    return
                outer.received.append((self.path, self.headers.get("Content-Type"), json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", port), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.1)
    return False


def open_ticket(bridge, user, text="My payment failed and I was charged twice"):
    r = bridge.call("helpwire.v1.Router/Route", channel=TG, channelUserId=user, displayName=user, text=text,
                    messageId="open-" + user)
    assert r.action == 2, r
    return r


class Escalation(unittest.TestCase):
    def test_alert_reaches_a_webhook_that_is_down_at_first(self):
        port = free_port()
        server = hwclient.Server("--demo", "--webhook-url", "http://127.0.0.1:%d/alerts" % port)
        hook = None
        try:
            bridge = server.client(api=API, role="bridge")
            agent = server.client(api=API, role="agent")
            r = open_ticket(bridge, "esc-1")
            agent.call("helpwire.v1.Tickets/EscalateTicket", ticketId=r.ticket_id, reason="customer threatens to leave")

            def kinds():
                return [e.kind for e in agent.call("helpwire.v1.Tickets/GetTicketHistory",
                                                   ticketId=r.ticket_id).events]

            # Nobody listens: the attempt fails and is recorded on the ticket.
            self.assertTrue(wait_for(lambda: 9 in kinds(), 10), kinds())  # ALERT_FAILED
            hook = Webhook(port=port)  # the receiver comes back
            self.assertTrue(wait_for(lambda: hook.received, 30), "alert never delivered")
            path, ctype, body = hook.received[0]
            self.assertEqual(path, "/alerts")
            self.assertTrue(ctype.startswith("application/json"))
            self.assertEqual(body["ticket_id"], r.ticket_id)
            self.assertEqual(body["reason"], "customer threatens to leave")
            self.assertTrue(wait_for(lambda: 8 in kinds(), 10))  # ALERT_DELIVERED
            time.sleep(1.5)
            self.assertEqual(len(hook.received), 1)  # delivered once
            bridge.close()
            agent.close()
        finally:
            self.assertEqual(server.stop(), 0)
            if hook:
                hook.stop()

    def test_alert_retried_after_a_server_error(self):
        hook = Webhook(fail_first=1)
        server = hwclient.Server("--demo", "--webhook-url", "http://127.0.0.1:%d/a" % hook.port)
        try:
            bridge = server.client(api=API, role="bridge")
            agent = server.client(api=API, role="agent")
            r = open_ticket(bridge, "esc-2")
            agent.call("helpwire.v1.Tickets/EscalateTicket", ticketId=r.ticket_id, reason="angry")
            self.assertTrue(wait_for(lambda: hook.received, 20))
            details = [e.detail for e in agent.call("helpwire.v1.Tickets/GetTicketHistory",
                                                    ticketId=r.ticket_id).events if e.kind == 9]
            self.assertTrue(any("500" in d for d in details), details)
            bridge.close()
            agent.close()
        finally:
            self.assertEqual(server.stop(), 0)
            hook.stop()


class LiveInbox(unittest.TestCase):
    def test_watch_tickets_sees_alerts_and_surveys(self):
        # Every event of a ticket's history also reaches WatchTickets: the
        # notifier's alert outcome and the survey's sending and answer too.
        hook = Webhook()
        server = hwclient.Server("--demo", "--webhook-url", "http://127.0.0.1:%d/a" % hook.port,
                                 "--survey-base-url", "https://help.example.com/s/")
        try:
            bridge = server.client(api=API, role="bridge")
            agent = server.client(api=API, role="agent")
            r = open_ticket(bridge, "live-1")
            stream = agent.stream("helpwire.v1.Tickets/WatchTickets", timeout=30, queue=r.queue)
            got = []

            def read():
                try:
                    for ev in stream:
                        if ev.ticket_id == r.ticket_id:
                            got.append(ev)
                except grpc.RpcError:
                    pass

            reader = threading.Thread(target=read)
            reader.start()
            time.sleep(0.3)
            agent.call("helpwire.v1.Tickets/EscalateTicket", ticketId=r.ticket_id, reason="urgent")
            self.assertTrue(wait_for(lambda: 8 in [e.kind for e in got], 20), got)  # ALERT_DELIVERED
            closed = agent.call("helpwire.v1.Tickets/CloseTicket", ticketId=r.ticket_id, resolution="refunded")
            token = closed.survey_url.rsplit("/", 1)[1]
            bridge.call("helpwire.v1.Surveys/SubmitSurvey", token=token, rating=5, comment="quick")
            self.assertTrue(wait_for(lambda: 12 in [e.kind for e in got], 10), got)  # SURVEY_ANSWERED
            stream.cancel()
            reader.join(timeout=10)
            kinds = [e.kind for e in got]
            for k in (7, 8, 10, 11, 12):  # ESCALATED, ALERT_DELIVERED, CLOSED, SURVEY_SENT, SURVEY_ANSWERED
                self.assertIn(k, kinds)
            self.assertLess(kinds.index(10), kinds.index(11))  # in commit order
            answered = [e for e in got if e.kind == 12][0]
            self.assertEqual(answered.ticket.queue, r.queue)  # with the ticket as it is
            self.assertIn("rated 5/5", answered.detail)
            # The stream shows what the history holds.
            history = [e.kind for e in agent.call("helpwire.v1.Tickets/GetTicketHistory",
                                                  ticketId=r.ticket_id).events]
            for k in (7, 8, 10, 11, 12):
                self.assertIn(k, history)
            bridge.close()
            agent.close()
        finally:
            self.assertEqual(server.stop(), 0)
            hook.stop()


class SurveyAndOutbox(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = hwclient.Server("--demo", "--survey-base-url", "https://help.example.com/s/")
        cls.bridge = cls.server.client(api=API, role="bridge")
        cls.agent = cls.server.client(api=API, role="agent")

    @classmethod
    def tearDownClass(cls):
        cls.bridge.close()
        cls.agent.close()
        assert cls.server.stop() == 0, cls.server.read_log()

    def read_until(self, stream, pred, limit=50):
        got = []
        for msg in stream:
            got.append(msg)
            if pred(msg) or len(got) >= limit:
                break
        return got

    def test_close_sends_the_survey_and_the_answer_reaches_the_stats(self):
        r = open_ticket(self.bridge, "survey-1")
        closed = self.agent.call("helpwire.v1.Tickets/CloseTicket", ticketId=r.ticket_id, resolution="refunded")
        self.assertTrue(closed.survey_url.startswith("https://help.example.com/s/"))
        token = closed.survey_url.rsplit("/", 1)[1]
        self.assertGreaterEqual(len(token), 22)
        stream = self.bridge.stream("helpwire.v1.Outbox/Subscribe", timeout=10, channel=TG)
        got = self.read_until(stream, lambda m: m.kind == 4 and m.ticket_id == r.ticket_id)
        stream.cancel()
        inv = got[-1]
        self.assertEqual(inv.kind, 4)  # SURVEY_INVITATION
        self.assertEqual(inv.channel_user_id, "survey-1")
        self.assertIn(closed.survey_url, inv.text)
        # An English customer is invited to reply with a bare number too.
        self.assertEqual(inv.text, "Reply with a number from 1 to 5 to rate our help (5 = excellent), or open: "
                         + closed.survey_url)
        # The acknowledgement of the opened ticket came first, on the same channel.
        mine = [m for m in got if m.channel_user_id == "survey-1"]
        self.assertEqual(mine[0].kind, 2)
        self.bridge.call("helpwire.v1.Outbox/Ack", channel=TG, seqs=[m.seq for m in got])

        s = self.bridge.call("helpwire.v1.Surveys/SubmitSurvey", token=token, rating=5, comment="快速又专业")
        self.assertEqual(s.rating, 5)
        with self.assertRaises(grpc.RpcError) as cm:
            self.bridge.call("helpwire.v1.Surveys/SubmitSurvey", token=token, rating=4)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.ALREADY_EXISTS)
        with self.assertRaises(grpc.RpcError) as cm:
            self.bridge.call("helpwire.v1.Surveys/SubmitSurvey", token=token + "x", rating=6)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        stats = self.agent.call("helpwire.v1.Surveys/GetSurveyStats", queue="billing")
        self.assertGreaterEqual(stats.sent, 1)
        self.assertEqual(stats.answered, 1)
        self.assertEqual(stats.csat, 1.0)
        self.assertEqual(list(stats.distribution), [0, 0, 0, 0, 1])
        hist = [e.kind for e in self.agent.call("helpwire.v1.Tickets/GetTicketHistory",
                                                ticketId=r.ticket_id).events]
        self.assertIn(11, hist)  # SURVEY_SENT
        self.assertIn(12, hist)  # SURVEY_ANSWERED

    def test_agent_reply_reaches_the_outbox_but_a_note_does_not(self):
        r = open_ticket(self.bridge, "reply-1")
        self.agent.call("helpwire.v1.Tickets/AddMessage", ticketId=r.ticket_id, kind="MESSAGE_KIND_INTERNAL_NOTE",
                        text="secret note")
        rep = self.agent.call("helpwire.v1.Tickets/AddMessage", ticketId=r.ticket_id,
                              kind="MESSAGE_KIND_AGENT_REPLY", text="We refunded you")
        stream = self.bridge.stream("helpwire.v1.Outbox/Subscribe", timeout=10, channel=TG)
        got = self.read_until(stream, lambda m: m.seq == rep.outbox_seq)
        stream.cancel()
        texts = [m.text for m in got]
        self.assertIn("We refunded you", texts)
        self.assertNotIn("secret note", texts)
        self.bridge.call("helpwire.v1.Outbox/Ack", channel=TG, seqs=[m.seq for m in got])

    def test_a_bridge_that_disconnects_before_acking_gets_the_message_again(self):
        r = open_ticket(self.bridge, "redeliver-1")
        rep = self.agent.call("helpwire.v1.Tickets/AddMessage", ticketId=r.ticket_id,
                              kind="MESSAGE_KIND_AGENT_REPLY", text="first try")
        stream = self.bridge.stream("helpwire.v1.Outbox/Subscribe", timeout=10, channel=TG)
        got = self.read_until(stream, lambda m: m.seq == rep.outbox_seq)
        stream.cancel()  # gone without acking
        self.assertEqual(got[-1].text, "first try")
        stream = self.bridge.stream("helpwire.v1.Outbox/Subscribe", timeout=10, channel=TG)
        again = self.read_until(stream, lambda m: m.seq == rep.outbox_seq)
        stream.cancel()
        self.assertEqual(again[-1].seq, rep.outbox_seq)
        acked = self.bridge.call("helpwire.v1.Outbox/Ack", channel=TG, seqs=[m.seq for m in again])
        self.assertGreaterEqual(acked.acked, 1)
        # Acked: a new subscriber no longer gets it.
        stream = self.bridge.stream("helpwire.v1.Outbox/Subscribe", timeout=1.5, channel=TG)
        later = []
        try:
            for m in stream:
                later.append(m.seq)
        except grpc.RpcError as e:
            self.assertEqual(e.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertNotIn(rep.outbox_seq, later)


if __name__ == "__main__":
    hwtest.main()
