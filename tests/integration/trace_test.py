"""trace_test: W3C trace context through the real helpwired. A call's
traceparent is continued (its trace id on the call's access line and on
the lines written while handling it, on the worker and on the store's
writer thread), a call without one or with an invalid one starts a fresh
trace, the access line names the peer, the request and reply sizes and the
token's id (never its secret), and the supervisor webhook gets the
traceparent (and tracestate) of the call that escalated the ticket."""
import http.server
import json
import re
import threading
import time
import unittest

import grpc

import hwclient
import hwtest

API = hwclient.Api()
TG = "CHANNEL_TELEGRAM"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
GOOD = "00-%s-%s-01" % (TRACE, PARENT)
HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")


def fields(line):
    """key=value pairs of a log line (values here are never quoted)."""
    return dict(kv.split("=", 1) for kv in line.split() if "=" in kv)


class Webhook:
    """A supervisor webhook on 127.0.0.1 recording each POST's headers and body."""

    def __init__(self):
        self.received = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.received.append((dict((k.lower(), v) for k, v in self.headers.items()), json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Trace(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.hook = Webhook()
        cls.server = hwclient.Server("--demo", "--access-log", "--log-level", "debug", "--threads", "2",
                                     "--webhook-url", "http://127.0.0.1:%d/alerts" % cls.hook.port)
        cls.agent = cls.server.client(api=API, role="agent")
        cls.bridge = cls.server.client(api=API, role="bridge")

    @classmethod
    def tearDownClass(cls):
        cls.agent.close()
        cls.bridge.close()
        rc = cls.server.stop()
        cls.hook.stop()
        assert rc == 0, rc

    def rpc_lines(self, method):
        return [fields(l) for l in self.server.read_log().splitlines()
                if "event=rpc " in l and ("method=/" + method + " ") in l]

    def after(self, method, before, n=1):
        """Waits for the n-th access line of method after the first `before`
        (the line is written when the call is freed, just after the reply)."""
        end = time.time() + 10
        while time.time() < end:
            lines = self.rpc_lines(method)
            if len(lines) >= before + n:
                return lines[before + n - 1]
            time.sleep(0.05)
        self.fail("no access line for %s" % method)

    def open_ticket(self, user):
        r = self.bridge.call("helpwire.v1.Router/Route", channel=TG, channelUserId=user, displayName=user,
                             text="My payment failed and I was charged twice", messageId="open-" + user)
        self.assertEqual(r.action, 2, r)
        return r.ticket_id

    def test_given_trace_on_access_line_and_handler_line(self):
        before = len(self.rpc_lines("helpwire.v1.Tickets/GetTicket"))
        with self.assertRaises(grpc.RpcError) as cm:
            self.agent.call("helpwire.v1.Tickets/GetTicket", ticketId="not an id!",
                            metadata=[("traceparent", GOOD)])
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        line = self.after("helpwire.v1.Tickets/GetTicket", before)
        self.assertEqual(line["trace"], TRACE)
        self.assertEqual(line["status"], "INVALID_ARGUMENT")
        self.assertRegex(line["span"], HEX16)
        self.assertNotEqual(line["span"], PARENT)  # the call's own span, not the caller's
        # The handler's line about the failure carries the same trace.
        handler = [l for l in self.server.read_log().splitlines()
                   if "event=rpc_error method=/helpwire.v1.Tickets/GetTicket" in l]
        self.assertTrue(handler)
        self.assertEqual(fields(handler[-1])["trace"], TRACE)

    def test_write_failure_on_writer_thread_carries_trace(self):
        tid = self.open_ticket("trace-close")
        self.agent.call("helpwire.v1.Tickets/CloseTicket", ticketId=tid, resolution="done", skipSurvey=True)
        other = "0af7651916cd43dd8448eb211c80319c"
        with self.assertRaises(grpc.RpcError) as cm:
            self.agent.call("helpwire.v1.Tickets/CloseTicket", ticketId=tid, resolution="again", skipSurvey=True,
                            metadata=[("traceparent", "00-%s-b7ad6b7169203331-00" % other)])
        self.assertEqual(cm.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        lines = [fields(l) for l in self.server.read_log().splitlines()
                 if "event=rpc_error method=/helpwire.v1.Tickets/CloseTicket" in l
                 and "status=FAILED_PRECONDITION" in l]
        self.assertTrue(lines)
        self.assertEqual(lines[-1]["trace"], other)

    def test_call_without_traceparent_gets_a_fresh_trace(self):
        before = len(self.rpc_lines("helpwire.v1.Tickets/GetTicket"))
        seen = set()
        for i in range(3):
            with self.assertRaises(grpc.RpcError):
                self.agent.call("helpwire.v1.Tickets/GetTicket", ticketId="t-missing-%d" % i)
            line = self.after("helpwire.v1.Tickets/GetTicket", before, i + 1)
            self.assertRegex(line["trace"], HEX32)
            self.assertNotEqual(line["trace"], "0" * 32)
            self.assertRegex(line["span"], HEX16)
            seen.add(line["trace"])
        self.assertEqual(len(seen), 3)  # a new trace per call

    def test_invalid_traceparent_starts_a_new_trace(self):
        bad = [
            "00-%s-%s-01" % ("a1" * 16, PARENT) + "-extra",   # version 00 is exactly 55 characters
            "00-%s-%s-01" % ("A2" * 16, PARENT),              # uppercase
            "00-%s-%s-01" % ("0" * 32, PARENT),               # all-zero trace id
            "00-%s-%s-01" % ("a4" * 16, "0" * 16),            # all-zero parent id
            "ff-%s-%s-01" % ("a5" * 16, PARENT),              # version ff
            "00-%s-%s-1" % ("a6" * 16, PARENT),               # short
            "00-%s-%s-01" % ("g7" * 16, PARENT),              # not hex
            "%s" % ("a8" * 16),                               # just an id
        ]
        before = len(self.rpc_lines("helpwire.v1.Tickets/GetTicket"))
        for i, tp in enumerate(bad):
            with self.assertRaises(grpc.RpcError):
                self.agent.call("helpwire.v1.Tickets/GetTicket", ticketId="t-bad-%d" % i,
                                metadata=[("traceparent", tp), ("tracestate", "vendor=x")])
            line = self.after("helpwire.v1.Tickets/GetTicket", before, i + 1)
            self.assertRegex(line["trace"], HEX32)
            self.assertNotEqual(line["trace"], "0" * 32)
            self.assertNotIn(line["trace"], tp.lower(), tp)

    def test_access_line_peer_sizes_token_and_no_secret(self):
        req = API.message("helpwire.v1.RouteRequest", channel=TG, channelUserId="trace-sizes", displayName="Wang",
                          text="如何重置密码", messageId="sizes-1")
        before = len(self.rpc_lines("helpwire.v1.Router/Route"))
        reply = self.bridge.call("helpwire.v1.Router/Route", request=req)
        line = self.after("helpwire.v1.Router/Route", before)
        self.assertEqual(line["status"], "OK")
        self.assertRegex(line["peer"], r"^ipv4:127\.0\.0\.1:\d+$")
        self.assertEqual(int(line["req_bytes"]), len(req.SerializeToString()))
        self.assertEqual(int(line["resp_bytes"]), len(reply.SerializeToString()))
        self.assertGreater(int(line["resp_bytes"]), 0)
        self.assertRegex(line["token"], r"^tok-\d+$")
        # The bridge's token is the one named, and no secret is in the log.
        tokens = self.server.client().call("helpwire.v1.Admin/ListTokens").tokens
        bridge_ids = [t.id for t in tokens if t.role == 1]
        self.assertIn(line["token"], bridge_ids)
        log = self.server.read_log()
        for secret in self.server.tokens.values():
            self.assertNotIn(secret, log)
        # A public method names no token; a refused token names none either.
        health_before = len(self.rpc_lines("grpc.health.v1.Health/Check"))
        self.server.client(token="").channel.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=5)
        self.assertEqual(self.after("grpc.health.v1.Health/Check", health_before)["token"], "-")
        before = len(self.rpc_lines("helpwire.v1.Tickets/GetTicket"))
        with self.assertRaises(grpc.RpcError) as cm:
            self.server.client(api=API, token="hw_not-a-real-secret").call("helpwire.v1.Tickets/GetTicket",
                                                                           ticketId="x")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        line = self.after("helpwire.v1.Tickets/GetTicket", before)
        self.assertEqual(line["token"], "-")
        self.assertEqual(line["status"], "UNAUTHENTICATED")
        self.assertNotIn("hw_not-a-real-secret", self.server.read_log())

    def escalate(self, user, metadata):
        tid = self.open_ticket(user)
        before = len(self.rpc_lines("helpwire.v1.Tickets/EscalateTicket"))
        n = len(self.hook.received)
        self.agent.call("helpwire.v1.Tickets/EscalateTicket", ticketId=tid, reason="trace " + user,
                        metadata=metadata)
        line = self.after("helpwire.v1.Tickets/EscalateTicket", before)
        end = time.time() + 20
        while time.time() < end:
            mine = [(h, b) for h, b in self.hook.received[n:] if b.get("ticket_id") == tid and b["kind"] == "escalated"]
            if mine:
                return line, mine[0][0], mine[0][1]
            time.sleep(0.1)
        self.fail("the escalation alert never reached the webhook")

    def test_webhook_carries_the_escalating_calls_trace(self):
        line, headers, body = self.escalate("trace-esc-1", [("traceparent", GOOD), ("tracestate", "congo=t61rcWkgMzE")])
        self.assertEqual(line["trace"], TRACE)
        # The escalating call's span is the webhook request's parent.
        self.assertEqual(headers["traceparent"], "00-%s-%s-01" % (TRACE, line["span"]))
        self.assertEqual(headers["tracestate"], "congo=t61rcWkgMzE")
        self.assertEqual(body["traceparent"], headers["traceparent"])
        # The notifier's line about the delivery names the trace too.
        end = time.time() + 10
        while time.time() < end:
            done = [fields(l) for l in self.server.read_log().splitlines()
                    if "event=alert_delivered" in l and "alert=%s " % body["alert_id"] in l]
            if done:
                break
            time.sleep(0.1)
        self.assertTrue(done)
        self.assertEqual(done[0]["trace"], TRACE)

    def test_webhook_without_or_with_invalid_traceparent(self):
        line, headers, _ = self.escalate("trace-esc-2", [])
        self.assertRegex(line["trace"], HEX32)
        self.assertEqual(headers["traceparent"], "00-%s-%s-01" % (line["trace"], line["span"]))
        self.assertNotIn("tracestate", headers)
        # An invalid traceparent: a new trace, and its tracestate is not passed on.
        bad = "00-%s-%s-01" % ("0" * 32, PARENT)
        line, headers, _ = self.escalate("trace-esc-3", [("traceparent", bad), ("tracestate", "vendor=x")])
        self.assertRegex(line["trace"], HEX32)
        self.assertNotEqual(line["trace"], "0" * 32)
        self.assertEqual(headers["traceparent"], "00-%s-%s-01" % (line["trace"], line["span"]))
        self.assertNotIn("tracestate", headers)


if __name__ == "__main__":
    hwtest.main()
