"""fake_channels: fakes of the channel APIs the bridges talk to, for the
integration tests. Each is a small threaded http.server on 127.0.0.1 with
a free port that records every request it receives.

- FakeTelegram: the Bot API subset the Telegram bridge uses: getUpdates
  (a queue of updates confirmed by offset, long-polled) and sendMessage,
  under /bot<token>/<method>; failures can be injected (HTTP 429 with
  parameters.retry_after, 5xx), and block_chat makes every sendMessage to
  one chat answer Telegram's 403 "bot was blocked by the user".
- FakeWhatsApp: the Graph API's POST /<version>/<phone-number-id>/messages
  with a bearer token; failures can be injected, and refuse_to makes every
  message to one wa_id answer a Cloud API error (131026 by default).
- whatsapp_webhook(): a Cloud API webhook body and its X-Hub-Signature-256.
"""
import hashlib
import hmac
import http.server
import json
import threading
import time
import urllib.parse


class Recorded:
    """One request as received."""

    def __init__(self, method, path, headers, body):
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.time = time.time()

    def json(self):
        return json.loads(self.body.decode() or "null")


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # keep test output clean
        pass

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        rec = Recorded(self.command, self.path, dict(self.headers.items()), body)
        rec.conn = self.connection
        status, payload, extra = self.server.fake.handle(rec)
        data = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    do_GET = _serve
    do_POST = _serve


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A bridge stopped in the middle of a long poll closes its
        # connection; that is expected, not worth a traceback.
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class FakeApi:
    """Base: a server on a free loopback port, a request log, and a
    condition to wait on."""

    def __init__(self):
        self.cond = threading.Condition()
        self.requests = []
        self.failures = []  # (status, payload, headers) answered before normal handling
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.fake = self
        self.port = self.server.server_address[1]
        self.base_url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def fail_next(self, status, payload=None, headers=None, count=1, match=None):
        """The next count requests (whose path contains match, when given)
        are answered with status and payload instead."""
        with self.cond:
            for _ in range(count):
                self.failures.append((match, status, payload if payload is not None else {}, headers))

    def _take_failure(self, rec):
        with self.cond:
            for i, (match, status, payload, headers) in enumerate(self.failures):
                if match is None or match in rec.path:
                    del self.failures[i]
                    return status, payload, headers
        return None

    def handle(self, rec):
        with self.cond:
            self.requests.append(rec)
            self.cond.notify_all()
        failure = self._take_failure(rec)
        if failure:
            return failure
        return self.respond(rec)

    def respond(self, rec):
        return 404, {"error": "not found"}, None

    def wait_for(self, predicate, timeout=20):
        """Waits until predicate() is true; returns its last value."""
        deadline = time.time() + timeout
        with self.cond:
            while True:
                value = predicate()
                if value or time.time() >= deadline:
                    return value
                self.cond.wait(min(0.2, max(0.01, deadline - time.time())))


class FakeTelegram(FakeApi):
    """The Bot API for one bot token."""

    def __init__(self, token):
        self.token = token
        self.updates = []  # every update ever queued, in id order
        self.confirmed = 0  # Telegram forgets updates below the highest offset seen
        self.next_update_id = 1000
        self.next_message_id = 1
        self.sent = []  # sendMessage bodies the API accepted
        self.offsets = []  # offset of each getUpdates, in order (None when absent)
        self.blocked = set()  # chat ids (str) that blocked the bot
        super().__init__()

    def block_chat(self, chat_id):
        """Every later sendMessage to chat_id is refused as Telegram does
        for a user who blocked the bot (recorded in requests, not in sent)."""
        with self.cond:
            self.blocked.add(str(chat_id))

    def attempts_to(self, chat_id):
        """Every sendMessage request for chat_id, accepted or not."""
        with self.cond:
            reqs = [r for r in self.requests if r.path.endswith("/sendMessage")]
        return [r for r in reqs if str((r.json() or {}).get("chat_id")) == str(chat_id)]

    # -- building updates
    def add_update(self, update):
        with self.cond:
            self.next_update_id += 1
            update = dict(update, update_id=self.next_update_id)
            self.updates.append(update)
            self.cond.notify_all()
            return update

    def add_text(self, chat_id, text, first_name="Ana", language_code="en", date=None):
        """Queues a text message; date (Unix seconds) defaults to now."""
        with self.cond:
            self.next_message_id += 1
            mid = self.next_message_id
        return self.add_update({"message": {
            "message_id": mid, "date": int(time.time()) if date is None else date, "text": text,
            "chat": {"id": chat_id, "type": "private", "first_name": first_name},
            "from": {"id": chat_id, "is_bot": False, "first_name": first_name, "language_code": language_code},
        }})

    def add_sticker(self, chat_id):
        with self.cond:
            self.next_message_id += 1
            mid = self.next_message_id
        return self.add_update({"message": {
            "message_id": mid, "date": int(time.time()), "sticker": {"file_id": "x"},
            "chat": {"id": chat_id, "type": "private"}, "from": {"id": chat_id, "is_bot": False},
        }})

    def sent_to(self, chat_id):
        with self.cond:
            return [m for m in self.sent if str(m.get("chat_id")) == str(chat_id)]

    def respond(self, rec):
        prefix = "/bot%s/" % self.token
        if not rec.path.startswith(prefix):
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}, None
        method = rec.path[len(prefix):]
        body = rec.json() or {}
        if method == "getUpdates":
            offset = body.get("offset")
            timeout = min(float(body.get("timeout", 0)), 2.0)  # keep tests fast
            deadline = time.time() + timeout
            with self.cond:
                self.offsets.append(offset)
                self.cond.notify_all()
                if offset:
                    self.confirmed = max(self.confirmed, offset)
                while True:
                    out = [u for u in self.updates if u["update_id"] >= self.confirmed]
                    if out or time.time() >= deadline:
                        break
                    self.cond.wait(max(0.01, deadline - time.time()))
            return 200, {"ok": True, "result": out}, None
        if method == "sendMessage":
            if str(body.get("chat_id")) in self.blocked:
                return 403, {"ok": False, "error_code": 403,
                             "description": "Forbidden: bot was blocked by the user"}, None
            with self.cond:
                self.sent.append(body)
                self.cond.notify_all()
                self.next_message_id += 1
                mid = self.next_message_id
            return 200, {"ok": True, "result": {"message_id": mid, "chat": {"id": body.get("chat_id")},
                                                "text": body.get("text")}}, None
        return 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"}, None


class FakeWhatsApp(FakeApi):
    """The Graph API's messages endpoint for one phone number id."""

    def __init__(self, phone_number_id, access_token, version="v19.0"):
        self.phone_number_id = phone_number_id
        self.access_token = access_token
        self.version = version
        self.sent = []
        self.counter = 0
        self.refused = {}  # wa_id -> (HTTP status, error code, message, details)
        super().__init__()

    def refuse_to(self, wa_id, code=131026, message="Message undeliverable",
                  details="Message failed to send because of an unknown error with your request parameters.",
                  status=400):
        """Every later message to wa_id is answered with this Cloud API
        error, in the shape Meta sends."""
        with self.cond:
            self.refused[wa_id] = (status, code, message, details)

    def attempts_to(self, wa_id):
        """Every messages request for wa_id, accepted or not."""
        with self.cond:
            reqs = [r for r in self.requests if r.method == "POST" and r.path.endswith("/messages")]
        return [r for r in reqs if (r.json() or {}).get("to") == wa_id]

    @property
    def api_base(self):
        return "%s/%s" % (self.base_url, self.version)

    def sent_to(self, wa_id):
        with self.cond:
            return [m for m in self.sent if m.get("to") == wa_id]

    def respond(self, rec):
        if rec.headers.get("Authorization") != "Bearer " + self.access_token:
            return 401, {"error": {"message": "Invalid OAuth access token.", "type": "OAuthException",
                                   "code": 190}}, None
        if rec.method != "POST" or rec.path != "/%s/%s/messages" % (self.version, self.phone_number_id):
            return 404, {"error": {"message": "Unknown path", "code": 100}}, None
        body = rec.json() or {}
        if body.get("messaging_product") != "whatsapp" or body.get("type") != "text":
            return 400, {"error": {"message": "bad request", "code": 100}}, None
        refusal = self.refused.get(body.get("to"))
        if refusal:
            status, code, message, details = refusal
            return status, {"error": {"message": message, "type": "OAuthException", "code": code,
                                      "error_data": {"messaging_product": "whatsapp", "details": details},
                                      "fbtrace_id": "AbCdEfGhIjK"}}, None
        with self.cond:
            self.sent.append(body)
            self.counter += 1
            n = self.counter
            self.cond.notify_all()
        return 200, {"messaging_product": "whatsapp", "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                     "messages": [{"id": "wamid.out.%d" % n}]}, None


def whatsapp_webhook(app_secret, phone_number_id, messages=(), statuses=(), contacts=()):
    """A Cloud API webhook body (bytes) and its X-Hub-Signature-256.
    messages: dicts with from, id, text (or type); contacts: (wa_id, name)."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": phone_number_id},
    }
    if contacts:
        value["contacts"] = [{"profile": {"name": name}, "wa_id": wa_id} for wa_id, name in contacts]
    if messages:
        value["messages"] = []
        for m in messages:
            msg = {"from": m["from"], "id": m["id"], "timestamp": str(int(time.time())),
                   "type": m.get("type", "text")}
            if msg["type"] == "text":
                msg["text"] = {"body": m["text"]}
            value["messages"].append(msg)
    if statuses:
        value["statuses"] = list(statuses)
    body = json.dumps({"object": "whatsapp_business_account",
                       "entry": [{"id": "WABA", "changes": [{"value": value, "field": "messages"}]}]}).encode()
    sig = "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return body, sig


def http_request(url, method="GET", body=None, headers=None, timeout=10):
    """(status, headers, body bytes) of one request; HTTP errors are
    returned, not raised."""
    import urllib.request
    import urllib.error

    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None and "Content-Type" not in req.headers:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers.items()), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers.items()), e.read()


def quote(s):
    return urllib.parse.quote(s, safe="")


def telegram_update(update_id, chat_id, message_id, text, first_name="Ana", date=None):
    """A Bot API Update carrying one text message, as Telegram posts it to
    a webhook."""
    return {"update_id": update_id,
            "message": {"message_id": message_id, "date": int(date if date is not None else time.time()),
                        "chat": {"id": chat_id, "type": "private", "first_name": first_name},
                        "from": {"id": chat_id, "is_bot": False, "first_name": first_name},
                        "text": text}}


def prometheus_value(text, name, labels):
    """The value of metric name{labels} in a Prometheus text exposition,
    or None when it is not there."""
    want = "%s{%s}" % (name, ",".join('%s="%s"' % kv for kv in sorted(labels.items())))
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    return None


# -- delivery guarantees: per-chat failures and delays, the 409 Conflict of
# overlapping getUpdates, a hook on accepted sends, status callbacks.

def _peer_closed(conn):
    """Whether the client of a pending request has gone (its socket reads
    end-of-file)."""
    import socket

    try:
        return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


class FakeTelegramDelivery(FakeTelegram):
    """FakeTelegram plus: per-chat injected failures (fail_chat), a slow
    chat (slow_chat), on_send(body) called for an accepted sendMessage
    before it is answered, and getUpdates as Telegram serves it: a
    getUpdates while another one is pending from a live client terminates
    the older one with 409 Conflict (counted in conflicts)."""

    def __init__(self, token):
        self.chat_failures = {}  # chat id (str) -> list of (status, payload); None count = forever
        self.slow = {}
        self.on_send = None
        self.conflicts = 0
        self.pending_polls = []  # [conn, terminated]
        super().__init__(token)

    def fail_chat(self, chat_id, status, payload, count=None):
        """The next count sendMessage requests to chat_id (every one when
        count is None) are answered with status and payload."""
        with self.cond:
            self.chat_failures[str(chat_id)] = [count, status, payload]

    def slow_chat(self, chat_id, seconds):
        with self.cond:
            self.slow[str(chat_id)] = seconds

    def respond(self, rec):
        prefix = "/bot%s/" % self.token
        method = rec.path[len(prefix):] if rec.path.startswith(prefix) else ""
        body = rec.json() or {} if rec.body else {}
        if method == "sendMessage":
            chat = str(body.get("chat_id"))
            delay = self.slow.get(chat)
            if delay:
                time.sleep(delay)
            with self.cond:
                f = self.chat_failures.get(chat)
                if f and (f[0] is None or f[0] > 0):
                    if f[0] is not None:
                        f[0] -= 1
                    return f[1], f[2], None
        if method == "getUpdates":
            me = [rec.conn, False]
            with self.cond:
                for p in self.pending_polls:
                    if not p[1] and not _peer_closed(p[0]):
                        p[1] = True
                        self.conflicts += 1
                self.pending_polls.append(me)
            try:
                status, payload, extra = self._poll(rec, me)
            finally:
                with self.cond:
                    self.pending_polls.remove(me)
            return status, payload, extra
        status, payload, extra = super().respond(rec)
        if method == "sendMessage" and status == 200 and self.on_send:
            self.on_send(body)
        return status, payload, extra

    def _poll(self, rec, me):
        body = rec.json() or {}
        offset = body.get("offset")
        deadline = time.time() + min(float(body.get("timeout", 0)), 2.0)
        with self.cond:
            self.offsets.append(offset)
            self.cond.notify_all()
            if offset:
                self.confirmed = max(self.confirmed, offset)
            while True:
                if me[1]:
                    return 409, {"ok": False, "error_code": 409, "description":
                                 "Conflict: terminated by other getUpdates request; make sure that only one "
                                 "bot instance is running"}, None
                out = [u for u in self.updates if u["update_id"] >= self.confirmed]
                if out or time.time() >= deadline:
                    break
                self.cond.wait(max(0.01, min(0.1, deadline - time.time())))
        return 200, {"ok": True, "result": out}, None


class FakeWhatsAppDelivery(FakeWhatsApp):
    """FakeWhatsApp that remembers each accepted message's wamid."""

    def __init__(self, phone_number_id, access_token, version="v19.0"):
        self.wamids = []  # (to, wamid) of accepted messages, in order
        super().__init__(phone_number_id, access_token, version)

    def respond(self, rec):
        status, payload, extra = super().respond(rec)
        if status == 200 and isinstance(payload, dict) and payload.get("messages"):
            with self.cond:
                self.wamids.append((payload["contacts"][0]["wa_id"], payload["messages"][0]["id"]))
        return status, payload, extra

    def wamids_to(self, wa_id):
        with self.cond:
            return [w for to, w in self.wamids if to == wa_id]


def whatsapp_failed_status(wamid, wa_id, code, title, details):
    """A webhook statuses entry for a message the Cloud API could not
    deliver after accepting it, in Meta's shape."""
    return {"id": wamid, "status": "failed", "timestamp": str(int(time.time())), "recipient_id": wa_id,
            "errors": [{"code": code, "title": title, "message": title,
                        "error_data": {"details": details}, "href": "https://developers.facebook.com/docs/"}]}


def post_whatsapp_status(hook_url, app_secret, phone_number_id, status):
    """Posts one signed status callback to the bridge's webhook; returns
    the HTTP status."""
    body, sig = whatsapp_webhook(app_secret, phone_number_id, statuses=[status])
    st, _, _ = http_request(hook_url, "POST", body, {"X-Hub-Signature-256": sig})
    return st


# ---- chaos: random upstream failures, stalled recipients, a timed log ----
# (chaos_test.py and bench/outbox_bench.py). Subclasses of the fakes above
# whose send methods may, from a seeded random.Random, answer a server
# error, a rate limit or nothing in time (a timeout: the request is held
# past the bridge's HTTP timeout and then refused, so the message did NOT
# go out); recipients can be refused for good (403 / 131026, as above) or
# stalled: every send to them waits stall_s and is answered with the
# channel's rate limit until released. Every accepted send is logged with
# its time as (time, recipient, text) in .accepted.


class ChaosDice:
    """Which failure, if any, the next request gets: rate in [0, 1] of all
    requests fail, evenly among kinds ("5xx", "429", "timeout"). Thread-safe;
    one seeded random.Random, so a run replays from its seed (given the same
    order of requests)."""

    def __init__(self, rng, rate=0.0, kinds=("5xx", "429", "timeout"), timeout_s=1.5):
        self.rng = rng
        self.rate = rate
        self.kinds = tuple(kinds)
        self.timeout_s = timeout_s
        self.lock = threading.Lock()
        self.counts = {k: 0 for k in self.kinds}

    def roll(self):
        with self.lock:
            if self.rate <= 0 or self.rng.random() >= self.rate:
                return None
            kind = self.kinds[self.rng.randrange(len(self.kinds))]
            self.counts[kind] += 1
            return kind


class _NoDelayHandler(_Handler):
    # The headers and the body are two writes: without TCP_NODELAY the body
    # waits for the client's delayed ACK (40 ms) whenever the client does
    # not set it on its side; a benchmark's plain client would measure that.
    disable_nagle_algorithm = True


class _ChaosMixin:
    def _chaos_init(self, dice, stall_s):
        self.dice = dice or ChaosDice(None)
        self.stall_s = stall_s
        self.stalled = set()  # recipients (str) whose sends are held and rate limited
        self.accepted = []  # (time, recipient, text) of every send the API accepted
        self.waits = []  # per accepted send, in the same order: seconds from its arrival to the answer
        self.stall_hits = 0

    def stall(self, recipient):
        with self.cond:
            self.stalled.add(str(recipient))

    def release(self, recipient=None):
        """Ends the stall of recipient, or of every recipient."""
        with self.cond:
            if recipient is None:
                self.stalled.clear()
            else:
                self.stalled.discard(str(recipient))

    def accepted_count(self):
        with self.cond:
            return len(self.accepted)

    def accepted_since(self, i):
        with self.cond:
            return self.accepted[i:]

    def accepted_waits(self):
        """(time, recipient, text, seconds the sender waited) per accepted send."""
        with self.cond:
            return [a + (w,) for a, w in zip(self.accepted, self.waits)]

    def _chaos_send(self, rec, recipient, text, answers):
        """answers: kind -> (status, payload, headers). None: handle normally."""
        if str(recipient) in self.stalled:
            time.sleep(self.stall_s)
            with self.cond:
                self.stall_hits += 1
            return answers["stalled"]
        kind = self.dice.roll()
        if kind == "timeout":
            time.sleep(self.dice.timeout_s)
            return answers["timeout"]
        if kind:
            return answers[kind]
        status, payload, extra = super().respond(rec)
        if status == 200:
            with self.cond:
                now = time.time()
                self.accepted.append((now, str(recipient), text))
                self.waits.append(now - rec.time)
        return status, payload, extra


class ChaosTelegram(_ChaosMixin, FakeTelegram):
    """FakeTelegram whose getUpdates and sendMessage may fail at random;
    stalled chats get Telegram's per-chat flood answer (429, retry_after 1)."""

    ANSWERS = {
        "5xx": (502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}, None),
        "429": (429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                      "parameters": {"retry_after": 1}}, None),
        "timeout": (504, {"ok": False, "error_code": 504, "description": "Gateway Timeout"}, None),
        "stalled": (429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                          "parameters": {"retry_after": 1}}, None),
    }

    def __init__(self, token, dice=None, stall_s=0.2, poll_failures=True):
        self._chaos_init(dice, stall_s)
        self.poll_failures = poll_failures
        super().__init__(token)
        self.server.RequestHandlerClass = _NoDelayHandler

    def respond(self, rec):
        prefix = "/bot%s/" % self.token
        method = rec.path[len(prefix):] if rec.path.startswith(prefix) else ""
        if method == "sendMessage":
            body = rec.json() or {}
            return self._chaos_send(rec, body.get("chat_id"), body.get("text"), self.ANSWERS)
        if method == "getUpdates" and self.poll_failures:
            kind = self.dice.roll()
            if kind == "timeout":
                time.sleep(self.dice.timeout_s)
            if kind:
                return self.ANSWERS[kind]
        return super().respond(rec)


def _wa_error(status, code, message):
    return (status, {"error": {"message": message, "type": "OAuthException", "code": code,
                               "error_data": {"messaging_product": "whatsapp", "details": message},
                               "fbtrace_id": "AbCdEfGhIjK"}}, None)


class ChaosWhatsApp(_ChaosMixin, FakeWhatsApp):
    """FakeWhatsApp whose /messages may fail at random; stalled numbers get
    the Cloud API's pair rate limit (131056)."""

    ANSWERS = {
        "5xx": _wa_error(500, 1, "An unknown error has occurred."),
        "429": _wa_error(429, 130429, "Rate limit hit"),
        "timeout": _wa_error(503, 2, "Service temporarily unavailable"),
        "stalled": _wa_error(400, 131056, "(Business Account, Consumer Account) pair rate limit hit"),
    }

    def __init__(self, phone_number_id, access_token, dice=None, stall_s=0.2):
        self._chaos_init(dice, stall_s)
        super().__init__(phone_number_id, access_token)
        self.server.RequestHandlerClass = _NoDelayHandler

    def respond(self, rec):
        if rec.method == "POST" and rec.path.endswith("/messages") and \
                rec.headers.get("Authorization") == "Bearer " + self.access_token:
            body = rec.json() or {}
            if body.get("to") not in self.refused:
                return self._chaos_send(rec, body.get("to"), (body.get("text") or {}).get("body"),
                                        self.ANSWERS)
        return super().respond(rec)

# ---- end of chaos ----
