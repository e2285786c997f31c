"""grpc_web_test: the gRPC-Web listener (--grpc-web-listen) as a browser
library would use it, spoken by hand over HTTP/1.1 (http.client): Route in
binary and text mode, errors as trailers (and trailers-only), CORS
preflight and headers, WatchTickets as a chunked stream that receives the
event another call causes, the size limit, HTTP keep-alive, grpc-timeout,
and a clean drain with a stream open."""
import base64
import http.client
import socket
import struct
import threading
import time
import unittest

import hwclient
import hwtest

API = hwclient.Api()
ORIGIN = "http://app.example.test"
MAX_MESSAGE = 65536


def frame(payload, flag=0):
    return struct.pack(">BI", flag, len(payload)) + payload


def b64_pieces_decode(text):
    """Decodes base64 made of padded pieces one after the other."""
    out, quad = b"", ""
    for c in text.decode().strip():
        quad += c
        if len(quad) == 4:
            out += base64.b64decode(quad)
            quad = ""
    return out


def parse_frames(body):
    """[(flag, payload)] of a gRPC-Web body."""
    frames, i = [], 0
    while i < len(body):
        flag, n = struct.unpack(">BI", body[i:i + 5])
        frames.append((flag, body[i + 5:i + 5 + n]))
        i += 5 + n
    assert i == len(body), "trailing bytes in the body"
    return frames


def parse_trailers(payload):
    out = {}
    for line in payload.decode().split("\r\n"):
        if line:
            k, v = line.split(":", 1)
            out[k.strip().lower()] = v.strip()
    return out


class Reply:
    def __init__(self, resp, body, text):
        self.http_status = resp.status
        self.headers = {k.lower(): v for k, v in resp.getheaders()}
        raw = b64_pieces_decode(body) if text and body else body
        self.frames = parse_frames(raw)
        self.messages = [p for f, p in self.frames if f == 0]
        trailer = [p for f, p in self.frames if f & 0x80]
        if trailer:
            self.trailers = parse_trailers(trailer[-1])
            self.trailers_only = False
        else:  # trailers-only: the status is in the headers
            self.trailers = {k: v for k, v in self.headers.items() if k.startswith("grpc-")}
            self.trailers_only = True

    @property
    def status(self):
        return int(self.trailers.get("grpc-status", "-1"))

    @property
    def message(self):
        from urllib.parse import unquote
        return unquote(self.trailers.get("grpc-message", ""))


class GrpcWeb(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = hwclient.Server("--demo", "--grpc-web-listen", "127.0.0.1:0", "--grpc-web-cors-origin", ORIGIN,
                                     "--max-message-bytes", str(MAX_MESSAGE))
        web = [l for l in cls.server.stdout_lines if l.startswith("helpwired grpc-web on http://")]
        assert len(web) == 1, cls.server.stdout_lines
        host, port = web[0].split("http://")[1].strip().rsplit(":", 1)
        cls.host, cls.port = host, int(port)

    @classmethod
    def tearDownClass(cls):
        assert cls.server.stop() == 0, cls.server.read_log()

    def conn(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=10)

    def call(self, path, request, token=None, text=False, headers=None, conn=None, body=None):
        c = conn or self.conn()
        ct = "application/grpc-web-text" if text else "application/grpc-web+proto"
        h = {"content-type": ct, "x-grpc-web": "1", "x-user-agent": "grpc-web-javascript/0.1"}
        if token:
            h["authorization"] = "Bearer " + token
        h.update(headers or {})
        if body is None:
            body = frame(request.SerializeToString())
            if text:
                body = base64.b64encode(body)
        c.request("POST", path, body=body, headers=h)
        resp = c.getresponse()
        data = resp.read()
        if not conn:
            c.close()
        return Reply(resp, data, text)

    def route_request(self, user, text, message_id):
        return API.message("helpwire.v1.RouteRequest", channel="CHANNEL_TELEGRAM", channelUserId=user,
                           displayName=user, text=text, messageId=user + "/" + message_id)

    def route_reply(self, data):
        return API.message("helpwire.v1.RouteReply").FromString(data)

    # ---- unary

    def test_route_binary(self):
        r = self.call("/helpwire.v1.Router/Route", self.route_request("web-1", "如何重置密码", "1"),
                      token=self.server.tokens["bridge"])
        self.assertEqual(r.http_status, 200)
        self.assertEqual(r.headers["content-type"], "application/grpc-web+proto")
        self.assertEqual(r.status, 0, r.trailers)
        self.assertFalse(r.trailers_only)
        self.assertEqual(len(r.messages), 1)
        reply = self.route_reply(r.messages[0])
        self.assertEqual(reply.action, 1)  # AUTO_REPLY: the seed FAQ
        self.assertIn("密码", reply.reply_text)
        self.assertTrue(reply.customer_id)
        # The same message over gRPC is recognised as the same one (deduplicated).
        same = self.server.client(role="bridge").call(
            "helpwire.v1.Router/Route", channel="CHANNEL_TELEGRAM", channelUserId="web-1", displayName="web-1",
            text="如何重置密码", messageId="web-1/1")
        self.assertEqual(same.customer_id, reply.customer_id)

    def test_route_text_mode(self):
        r = self.call("/helpwire.v1.Router/Route",
                      self.route_request("web-2", "My parcel arrived broken, I want my money back", "1"),
                      token=self.server.tokens["bridge"], text=True)
        self.assertEqual(r.http_status, 200)
        self.assertEqual(r.headers["content-type"], "application/grpc-web-text+proto")
        self.assertEqual(r.status, 0, r.trailers)
        reply = self.route_reply(r.messages[0])
        self.assertEqual(reply.action, 2)  # NEW_TICKET
        self.assertTrue(reply.ticket_id.startswith("t-"), reply)
        # The ticket is there for an agent over gRPC.
        got = self.server.client(role="admin").call("helpwire.v1.Tickets/GetTicket", ticketId=reply.ticket_id)
        self.assertEqual(got.ticket.customer_id, reply.customer_id)

    def test_keep_alive_serves_several_calls_on_one_connection(self):
        c = self.conn()
        try:
            for i in range(3):
                r = self.call("/helpwire.v1.Router/Route", self.route_request("web-ka", "hello there", str(i)),
                              token=self.server.tokens["bridge"], conn=c)
                self.assertEqual(r.status, 0, r.trailers)
            # Still the first socket: http.client reconnects silently otherwise.
            self.assertIsNotNone(c.sock)
        finally:
            c.close()

    # ---- errors

    def test_no_token_is_unauthenticated_trailers_only(self):
        r = self.call("/helpwire.v1.Router/Route", self.route_request("web-3", "hi", "1"))
        self.assertEqual(r.http_status, 200)
        self.assertTrue(r.trailers_only)
        self.assertEqual(r.messages, [])
        self.assertEqual(r.status, 16)  # UNAUTHENTICATED
        self.assertEqual(r.headers["grpc-status"], "16")

    def test_wrong_role_is_permission_denied(self):
        r = self.call("/helpwire.v1.Admin/ListTokens", API.message("helpwire.v1.ListTokensRequest"),
                      token=self.server.tokens["bridge"])
        self.assertEqual(r.status, 7, r.trailers)

    def test_invalid_argument_with_its_message(self):
        r = self.call("/helpwire.v1.Router/Route", self.route_request("web-4", "", "1"),
                      token=self.server.tokens["bridge"])
        self.assertEqual(r.status, 3, r.trailers)  # INVALID_ARGUMENT
        self.assertIn("text", r.message)

    def test_unknown_method_is_unimplemented(self):
        r = self.call("/helpwire.v1.Router/Nope", self.route_request("web-5", "hi", "1"),
                      token=self.server.tokens["bridge"])
        self.assertEqual(r.status, 12, r.trailers)

    def test_broken_frames_are_refused(self):
        tok = self.server.tokens["bridge"]
        r = self.call("/helpwire.v1.Router/Route", None, token=tok, body=b"\x00\x00\x00")
        self.assertEqual(r.status, 3)
        r = self.call("/helpwire.v1.Router/Route", None, token=tok, body=frame(b"abc") + frame(b"d"))
        self.assertEqual(r.status, 3)
        r = self.call("/helpwire.v1.Router/Route", None, token=tok, body=frame(b"abc", flag=1))
        self.assertEqual(r.status, 12)  # compressed: UNIMPLEMENTED
        r = self.call("/helpwire.v1.Router/Route", None, token=tok, text=True, body=b"!!not base64!!")
        self.assertEqual(r.status, 3)
        r = self.call("/helpwire.v1.Router/Route", self.route_request("web-6", "hi", "1"), token=tok,
                      headers={"grpc-timeout": "soon"})
        self.assertEqual(r.status, 3)

    def test_not_grpc_web_is_refused_by_http(self):
        c = self.conn()
        c.request("POST", "/helpwire.v1.Router/Route", body=b"{}", headers={"content-type": "application/json"})
        self.assertEqual(c.getresponse().status, 415)
        c.close()
        c = self.conn()
        c.request("GET", "/helpwire.v1.Router/Route")
        resp = c.getresponse()
        self.assertEqual(resp.status, 405)
        self.assertIn("POST", resp.getheader("allow"))
        c.close()

    def test_oversize_request_is_resource_exhausted(self):
        tok = self.server.tokens["bridge"]
        big = self.route_request("web-7", "x" * (MAX_MESSAGE + 100), "1")
        r = self.call("/helpwire.v1.Router/Route", big, token=tok)
        self.assertEqual(r.status, 8, r.trailers)  # RESOURCE_EXHAUSTED
        r = self.call("/helpwire.v1.Router/Route", big, token=tok, text=True)
        self.assertEqual(r.status, 8, r.trailers)
        # A frame that claims more than the limit, with a short body.
        r = self.call("/helpwire.v1.Router/Route", None, token=tok,
                      body=struct.pack(">BI", 0, MAX_MESSAGE + 1) + b"abc")
        self.assertEqual(r.status, 8, r.trailers)
        # Just under the limit passes the gateway (the server decides).
        ok = self.route_request("web-7", "refund " * 100, "2")
        r = self.call("/helpwire.v1.Router/Route", ok, token=tok)
        self.assertEqual(r.status, 0, r.trailers)

    def test_deadline_exceeded_through_grpc_timeout(self):
        # A watch with a 300 ms deadline ends with DEADLINE_EXCEEDED.
        t0 = time.time()
        r = self.call("/helpwire.v1.Tickets/WatchTickets", API.message("helpwire.v1.WatchTicketsRequest"),
                      token=self.server.tokens["admin"], headers={"grpc-timeout": "300m"})
        self.assertEqual(r.status, 4, r.trailers)
        self.assertLess(time.time() - t0, 5)

    # ---- CORS

    def test_preflight_of_an_allowed_origin(self):
        c = self.conn()
        c.request("OPTIONS", "/helpwire.v1.Router/Route",
                  headers={"origin": ORIGIN, "access-control-request-method": "POST",
                           "access-control-request-headers": "content-type,x-grpc-web,authorization"})
        resp = c.getresponse()
        resp.read()
        c.close()
        self.assertEqual(resp.status, 204)
        self.assertEqual(resp.getheader("access-control-allow-origin"), ORIGIN)
        self.assertIn("POST", resp.getheader("access-control-allow-methods"))
        allowed = [h.strip() for h in resp.getheader("access-control-allow-headers").split(",")]
        for h in ("x-grpc-web", "content-type", "authorization", "x-user-agent", "grpc-timeout"):
            self.assertIn(h, allowed)
        exposed = resp.getheader("access-control-expose-headers")
        for h in ("grpc-status", "grpc-message", "grpc-status-details-bin"):
            self.assertIn(h, exposed)

    def test_preflight_of_another_origin_is_forbidden(self):
        c = self.conn()
        c.request("OPTIONS", "/helpwire.v1.Router/Route",
                  headers={"origin": "http://evil.example.test", "access-control-request-method": "POST"})
        resp = c.getresponse()
        resp.read()
        c.close()
        self.assertEqual(resp.status, 403)
        self.assertIsNone(resp.getheader("access-control-allow-origin"))

    def test_call_from_an_allowed_origin_exposes_the_status(self):
        r = self.call("/helpwire.v1.Router/Route", self.route_request("web-8", "hi", "1"),
                      headers={"origin": ORIGIN})
        self.assertEqual(r.status, 16)
        self.assertEqual(r.headers["access-control-allow-origin"], ORIGIN)
        self.assertIn("grpc-status", r.headers["access-control-expose-headers"])
        r = self.call("/helpwire.v1.Router/Route", self.route_request("web-8", "hi", "1"),
                      headers={"origin": "http://evil.example.test"})
        self.assertNotIn("access-control-allow-origin", r.headers)

    # ---- server streaming

    def open_watch(self, token, text=False, **fields):
        """Starts WatchTickets; returns (connection, response) once the
        response headers are in (the stream is established)."""
        c = http.client.HTTPConnection(self.host, self.port, timeout=15)
        body = frame(API.message("helpwire.v1.WatchTicketsRequest", **fields).SerializeToString())
        ct = "application/grpc-web+proto"
        if text:
            body, ct = base64.b64encode(body), "application/grpc-web-text+proto"
        c.request("POST", "/helpwire.v1.Tickets/WatchTickets", body=body,
                  headers={"content-type": ct, "x-grpc-web": "1", "authorization": "Bearer " + token})
        resp = c.getresponse()
        return c, resp

    def test_watch_tickets_streams_an_event_caused_by_another_call(self):
        c, resp = self.open_watch(self.server.tokens["admin"])
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.getheader("transfer-encoding"), "chunked")
        self.assertIsNone(resp.getheader("grpc-status"))  # not trailers-only: the stream is open
        time.sleep(0.3)
        # Another call (plain gRPC) opens a ticket.
        reply = self.server.client(role="bridge").call(
            "helpwire.v1.Router/Route", channel="CHANNEL_TELEGRAM", channelUserId="web-watch",
            displayName="w", text="My order never arrived, please refund it", messageId="web-watch/1")
        self.assertEqual(reply.action, 2)
        head = resp.read(5)
        flag, n = struct.unpack(">BI", head)
        self.assertEqual(flag, 0)
        ev = API.message("helpwire.v1.TicketEvent").FromString(resp.read(n))
        self.assertEqual(ev.ticket_id, reply.ticket_id)
        self.assertEqual(ev.kind, 1)  # CREATED
        self.assertTrue(ev.cursor.startswith("c1"), ev.cursor)  # resumable from the browser too
        c.close()
        # A closed watch does not stop the next one.
        c2, resp2 = self.open_watch(self.server.tokens["admin"], text=True)
        self.assertEqual(resp2.status, 200)
        self.assertEqual(resp2.getheader("content-type"), "application/grpc-web-text+proto")
        time.sleep(0.3)
        reply2 = self.server.client(role="bridge").call(
            "helpwire.v1.Router/Route", channel="CHANNEL_TELEGRAM", channelUserId="web-watch-2",
            displayName="w", text="The invoice shows the wrong amount, refund the difference", messageId="web-watch-2/1")
        # Text mode: one padded base64 piece per frame.
        buf, raw = b"", b""
        while len(raw) < 5 or len(raw) < 5 + struct.unpack(">BI", raw[:5])[1]:
            buf += resp2.read(4)
            raw = b64_pieces_decode(buf)
        flag, n = struct.unpack(">BI", raw[:5])
        ev2 = API.message("helpwire.v1.TicketEvent").FromString(raw[5:5 + n])
        self.assertEqual(ev2.ticket_id, reply2.ticket_id)
        c2.close()

    def test_watch_needs_an_agent(self):
        c, resp = self.open_watch(self.server.tokens["bridge"])
        body = resp.read()
        c.close()
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.getheader("grpc-status"), "7")  # trailers-only PERMISSION_DENIED
        self.assertEqual(body, b"")


class Drain(unittest.TestCase):
    def test_sigterm_ends_an_open_stream_with_unavailable_and_exits(self):
        server = hwclient.Server("--demo", "--grpc-web-listen", "127.0.0.1:0")
        try:
            web = [l for l in server.stdout_lines if l.startswith("helpwired grpc-web on http://")][0]
            host, port = web.split("http://")[1].strip().rsplit(":", 1)
            c = http.client.HTTPConnection(host, int(port), timeout=15)
            c.request("POST", "/helpwire.v1.Tickets/WatchTickets",
                      body=frame(b""), headers={"content-type": "application/grpc-web+proto",
                                                "authorization": "Bearer " + server.tokens["admin"]})
            resp = c.getresponse()
            self.assertEqual(resp.status, 200)
            time.sleep(0.2)
            server.signal()
            body = resp.read()  # ends: the trailer frame, then the last chunk
            frames = parse_frames(body)
            self.assertEqual(frames[-1][0], 0x80)
            self.assertEqual(parse_trailers(frames[-1][1])["grpc-status"], "14")  # UNAVAILABLE
            self.assertEqual(server.wait(), 0, server.read_log())
            # The listener is gone.
            with self.assertRaises(OSError):
                socket.create_connection((host, int(port)), timeout=2).close()
        finally:
            server.stop()

    def test_flags_are_checked(self):
        import subprocess
        p = subprocess.run([hwclient.helpwired_binary(), "--data", "/nonexistent-unused",
                            "--grpc-web-cors-origin", "*"], capture_output=True, timeout=10)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"--grpc-web-cors-origin needs a --grpc-web-listen", p.stderr)
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        try:
            with self.assertRaises(RuntimeError):
                hwclient.Server("--grpc-web-listen", "127.0.0.1:%d" % busy.getsockname()[1])
        finally:
            busy.close()


if __name__ == "__main__":
    hwtest.main()
