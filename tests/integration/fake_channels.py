"""fake_channels: fakes of the channel APIs the bridges talk to, for the
integration tests. Each is a small threaded http.server on 127.0.0.1 with
a free port that records every request it receives.

- FakeTelegram: the Bot API subset the Telegram bridge uses: getUpdates
  (a queue of updates confirmed by offset, long-polled) and sendMessage,
  under /bot<token>/<method>; failures can be injected (HTTP 429 with
  parameters.retry_after, 5xx), and block_chat makes every sendMessage to
  one chat answer Telegram's 403 "bot was blocked by the user".
- FakeTelegram's media: files customers send (add_photo, add_document,
  add_voice, add_video, add_sticker_file, add_location, ...) served by
  getFile and /file/bot<token>/<file_path> with the Bot API's errors
  ("Bad Request: file is too big" over 20 MB, "Bad Request: invalid
  file_id" for one it does not know, 404 for a path it forgot), and the
  multipart uploads of sendPhoto, sendDocument, sendVoice, sendAudio,
  sendVideo, sendSticker (their file bytes recorded in uploads; a photo
  over 10 MB refused as Telegram does, anything over 50 MB answered 413),
  sendLocation, sendVenue and sendChatAction (recorded in actions).
- FakeWhatsApp: the Graph API's POST /<version>/<phone-number-id>/messages
  with a bearer token; failures can be injected, and refuse_to makes every
  message to one wa_id answer a Cloud API error (131026 by default).
- whatsapp_webhook(): a Cloud API webhook body and its X-Hub-Signature-256.
"""
import email
import email.policy
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
        self.files = {}  # file_id -> (bytes, file_path); what customers sent
        self.forgotten = set()  # file_ids whose download answers 404
        self.uploads = []  # multipart sends: {"method", "chat_id", "field", "filename", "mime", "data"}
        self.actions = []  # sendChatAction bodies
        self.located = []  # sendLocation / sendVenue bodies, with "method"
        self.next_file = 1
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

    # -- media a customer sends
    def add_file(self, data, folder="documents", ext=""):
        """Makes data downloadable; returns its file_id. Its file_path is
        like Telegram's: "<folder>/file_<n><ext>"."""
        with self.cond:
            self.next_file += 1
            fid = "AgAC-file-%d" % self.next_file
            self.files[fid] = (data, "%s/file_%d%s" % (folder, self.next_file, ext))
        return fid

    def forget_file(self, file_id):
        """getFile still answers, the download answers 404 (a file_path
        older than an hour)."""
        with self.cond:
            self.forgotten.add(file_id)

    def _add_message(self, chat_id, fields, first_name="Ana", language_code="en"):
        with self.cond:
            self.next_message_id += 1
            mid = self.next_message_id
        msg = {"message_id": mid, "date": int(time.time()),
               "chat": {"id": chat_id, "type": "private", "first_name": first_name},
               "from": {"id": chat_id, "is_bot": False, "first_name": first_name, "language_code": language_code}}
        msg.update(fields)
        return self.add_update({"message": msg})

    def _file_obj(self, data, size=None, **extra):
        fid = self.add_file(data, extra.pop("folder", "documents"), extra.pop("ext", ""))
        obj = {"file_id": fid, "file_unique_id": "u" + fid, "file_size": len(data) if size is None else size}
        obj.update(extra)
        return obj

    def add_photo(self, chat_id, data, caption=None, sizes=None, **kw):
        """A photo as Telegram sends it: several PhotoSize, the largest
        last; sizes: [(bytes, width, height), ...] (default: a thumbnail
        and data)."""
        sizes = sizes or [(data[:64], 90, 67), (data, 1280, 960)]
        photo = [self._file_obj(d, width=w, height=h, folder="photos", ext=".jpg") for d, w, h in sizes]
        fields = {"photo": photo}
        if caption is not None:
            fields["caption"] = caption
        return self._add_message(chat_id, fields, **kw)

    def add_document(self, chat_id, data, file_name="report.pdf", mime_type="application/pdf", caption=None,
                     size=None, **kw):
        fields = {"document": self._file_obj(data, size, file_name=file_name, mime_type=mime_type)}
        if caption is not None:
            fields["caption"] = caption
        return self._add_message(chat_id, fields, **kw)

    def add_voice(self, chat_id, data, duration=3, **kw):
        return self._add_message(chat_id, {"voice": self._file_obj(data, duration=duration,
                                                                    mime_type="audio/ogg")}, **kw)

    def add_video(self, chat_id, data, caption=None, **kw):
        fields = {"video": self._file_obj(data, width=640, height=360, duration=2, mime_type="video/mp4")}
        if caption is not None:
            fields["caption"] = caption
        return self._add_message(chat_id, fields, **kw)

    def add_sticker_file(self, chat_id, data, emoji="\U0001F44D", **kw):
        return self._add_message(chat_id, {"sticker": self._file_obj(
            data, width=512, height=512, emoji=emoji, is_animated=False, is_video=False, type="regular")}, **kw)

    def add_location(self, chat_id, latitude, longitude, venue=None, **kw):
        loc = {"latitude": latitude, "longitude": longitude}
        fields = {"location": loc}
        if venue:
            fields["venue"] = {"location": loc, "title": venue[0], "address": venue[1]}
        return self._add_message(chat_id, fields, **kw)

    def add_contact(self, chat_id, first_name, phone, **kw):
        return self._add_message(chat_id, {"contact": {"first_name": first_name, "phone_number": phone}}, **kw)

    def uploads_to(self, chat_id):
        with self.cond:
            return [u for u in self.uploads if str(u["chat_id"]) == str(chat_id)]

    def actions_to(self, chat_id):
        with self.cond:
            return [a for a in self.actions if str(a.get("chat_id")) == str(chat_id)]

    FILE_METHODS = {"sendPhoto": "photo", "sendDocument": "document", "sendVoice": "voice", "sendAudio": "audio",
                    "sendVideo": "video", "sendSticker": "sticker", "sendAnimation": "animation",
                    "sendVideoNote": "video_note"}

    def _respond_media(self, rec, method):
        """The media methods; None for the others."""
        bad = lambda d: (400, {"ok": False, "error_code": 400, "description": "Bad Request: " + d}, None)
        if rec.path.startswith("/file/bot%s/" % self.token):
            path = rec.path[len("/file/bot%s/" % self.token):]
            with self.cond:
                for fid, (data, fpath) in self.files.items():
                    if fpath == path and fid not in self.forgotten:
                        return 200, data, None
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}, None
        if method == "getFile":
            fid = (rec.json() or {}).get("file_id")
            with self.cond:
                got = self.files.get(fid)
            if not got:
                return bad("invalid file_id")
            if len(got[0]) > 20 * 1000 * 1000:
                return bad("file is too big")
            return 200, {"ok": True, "result": {"file_id": fid, "file_unique_id": "u" + fid,
                                                "file_size": len(got[0]), "file_path": got[1]}}, None
        if method == "sendChatAction":
            body = rec.json() or {}
            with self.cond:
                self.actions.append(body)
                self.cond.notify_all()
            return 200, {"ok": True, "result": True}, None
        if method in ("sendLocation", "sendVenue"):
            body = dict(rec.json() or {}, method=method)
            with self.cond:
                self.located.append(body)
                self.cond.notify_all()
                self.next_message_id += 1
                mid = self.next_message_id
            return 200, {"ok": True, "result": {"message_id": mid, "chat": {"id": body.get("chat_id")}}}, None
        if method in self.FILE_METHODS:
            if len(rec.body) > 50 * 1000 * 1000:
                return 413, b"Request Entity Too Large", None
            field = self.FILE_METHODS[method]
            ctype = rec.headers.get("Content-Type", "")
            if not ctype.startswith("multipart/form-data"):
                return bad("there is no %s in the request" % field)
            msg = email.message_from_bytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + rec.body,
                                           policy=email.policy.HTTP)
            form, upload = {}, None
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if part.get_filename() is not None:
                    upload = {"field": name, "filename": part.get_filename(), "mime": part.get_content_type(),
                              "data": part.get_payload(decode=True)}
                else:
                    form[name] = part.get_payload(decode=True).decode()
            if not upload or upload["field"] != field:
                return bad("there is no %s in the request" % field)
            if not upload["data"]:
                return bad("file must be non-empty")
            if method == "sendPhoto" and len(upload["data"]) > 10 * 1024 * 1024:
                return bad("PHOTO_SAVE_FILE_INVALID")
            if str(form.get("chat_id")) in self.blocked:
                return 403, {"ok": False, "error_code": 403,
                             "description": "Forbidden: bot was blocked by the user"}, None
            upload.update(method=method, chat_id=form.get("chat_id"))
            with self.cond:
                self.uploads.append(upload)
                self.cond.notify_all()
                self.next_message_id += 1
                mid = self.next_message_id
            return 200, {"ok": True, "result": {"message_id": mid, "chat": {"id": form.get("chat_id")}}}, None
        return None

    def sent_to(self, chat_id):
        with self.cond:
            return [m for m in self.sent if str(m.get("chat_id")) == str(chat_id)]

    def respond(self, rec):
        prefix = "/bot%s/" % self.token
        media = self._respond_media(rec, rec.path[len(prefix):] if rec.path.startswith(prefix) else None)
        if media is not None:
            return media
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


# ---------------------------------------------------------------------------
# WhatsApp media, templates, read receipts and the 24-hour window
# (bridges_media_wa_test.py). FakeWhatsAppMedia is the Cloud API as the
# bridge sees it for rich conversations:
# - GET /<version>/<media-id>: the media's metadata (url, mime_type, sha256,
#   file_size) as Meta answers it; an unknown id answers 400 code 100.
# - GET <url>: the bytes, with the bearer token (401 without); a media
#   marked expired answers 404, as a URL older than five minutes does.
# - POST /<version>/<phone-number-id>/media: multipart (messaging_product,
#   type, file), recorded; fail_uploads() makes the next ones answer
#   131053 "Media upload error".
# - POST .../messages: text, template, image, document, audio, video,
#   sticker and location messages (the media id must have been uploaded),
#   and {"status": "read", "message_id": ...} read receipts.
# - The 24-hour rule by the fake's clock (advance()): a free-form message
#   to a number whose last inbound message (inbound(), called by
#   media_webhook) is 24 hours old or more answers 131047; a template
#   always goes.

def _wa_error_body(code, message, details, type_="OAuthException"):
    return {"error": {"message": message, "type": type_, "code": code,
                      "error_data": {"messaging_product": "whatsapp", "details": details},
                      "fbtrace_id": "AbCdEfGhIjK"}}


class _MediaHandler(_Handler):
    """_Handler that sends a bytes payload with the content type the fake
    names (extra {"Content-Type": ...}) instead of JSON's."""

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        rec = Recorded(self.command, self.path, dict(self.headers.items()), body)
        rec.conn = self.connection
        status, payload, extra = self.server.fake.handle(rec)
        extra = dict(extra or {})
        data = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
        self.send_response(status)
        self.send_header("Content-Type", extra.pop("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    do_GET = _serve
    do_POST = _serve


def parse_multipart(content_type, body):
    """{name: (filename, content type, bytes)} of a multipart/form-data body."""
    import email.parser
    import email.policy

    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    out = {}
    for part in msg.iter_parts():
        out[part.get_param("name", header="content-disposition")] = (
            part.get_filename(), part.get_content_type(), part.get_payload(decode=True))
    return out


class FakeWhatsAppMedia(FakeWhatsAppDelivery):
    MEDIA_MESSAGE_TYPES = ("image", "document", "audio", "video", "sticker")

    def __init__(self, phone_number_id, access_token, version="v19.0"):
        self.media = {}         # media id -> dict(data, mime, sha256, expired)
        self.uploads = []       # dict(id, type, filename, mime, data, messaging_product)
        self.reads = []         # message ids marked read
        self.templates = []     # template message bodies accepted
        self.last_inbound = {}  # wa_id -> fake time (s) of their last message
        self.offset_s = 0.0
        self.upload_failures = 0
        self.media_counter = 0
        self.upload_gate = threading.Event()  # cleared: uploads wait (hold_uploads)
        self.upload_gate.set()
        self.uploads_waiting = 0
        super().__init__(phone_number_id, access_token, version)
        self.server.RequestHandlerClass = _MediaHandler

    # --- the fake's clock and the window
    def now(self):
        return time.time() + self.offset_s

    def advance(self, seconds):
        with self.cond:
            self.offset_s += seconds

    def inbound(self, wa_id):
        with self.cond:
            self.last_inbound[wa_id] = self.now()

    # --- media the customer sends
    def add_media(self, data, mime, sha256=None, media_id=None):
        """Stores a customer's file; returns its media id. sha256: what the
        API claims (default: the real digest)."""
        with self.cond:
            self.media_counter += 1
            mid = media_id or "%d%09d" % (1000 + self.media_counter, self.media_counter)
            self.media[mid] = {"data": data, "mime": mime, "expired": False,
                               "sha256": sha256 or hashlib.sha256(data).hexdigest()}
        return mid

    def expire(self, media_id):
        with self.cond:
            self.media[media_id]["expired"] = True

    def hold_uploads(self, hold=True):
        """While held, POST /media waits (up to 60 s) before it answers."""
        if hold:
            self.upload_gate.clear()
        else:
            self.upload_gate.set()

    def fail_uploads(self, count=1):
        with self.cond:
            self.upload_failures += count

    def media_requests(self, media_id):
        with self.cond:
            return [r for r in self.requests if r.method == "GET" and media_id in r.path]

    def messages_to(self, wa_id, type_=None):
        with self.cond:
            return [m for m in self.sent if m.get("to") == wa_id and (type_ is None or m.get("type") == type_)]

    def _auth(self, rec):
        return rec.headers.get("Authorization") == "Bearer " + self.access_token

    def respond(self, rec):
        if not self._auth(rec):
            return 401, {"error": {"message": "Invalid OAuth access token - Cannot parse access token",
                                   "type": "OAuthException", "code": 190, "fbtrace_id": "AbCdEf"}}, None
        path = rec.path.split("?")[0]
        prefix = "/%s/" % self.version
        if rec.method == "GET" and path.startswith("/media-download/"):
            return self._download(path[len("/media-download/"):])
        if rec.method == "GET" and path.startswith(prefix):
            return self._metadata(path[len(prefix):])
        if rec.method == "POST" and path == "%s%s/media" % (prefix, self.phone_number_id):
            return self._upload(rec)
        if rec.method == "POST" and path == "%s%s/messages" % (prefix, self.phone_number_id):
            return self._message(rec)
        return 404, {"error": {"message": "Unknown path", "code": 100}}, None

    def _metadata(self, mid):
        with self.cond:
            m = self.media.get(mid)
        if not m:
            return 400, {"error": {"message": "Unsupported get request. Object with ID '%s' does not exist, cannot "
                                              "be loaded due to missing permissions, or does not support this "
                                              "operation." % mid, "type": "GraphMethodException", "code": 100,
                                   "error_subcode": 33, "fbtrace_id": "AbCdEf"}}, None
        return 200, {"messaging_product": "whatsapp", "url": "%s/media-download/%s?ext=1&hash=x" % (self.base_url, mid),
                     "mime_type": m["mime"], "sha256": m["sha256"], "file_size": len(m["data"]), "id": mid}, None

    def _download(self, mid):
        with self.cond:
            m = self.media.get(mid)
        if not m or m["expired"]:
            return 404, b"", {"Content-Type": "text/html"}
        return 200, m["data"], {"Content-Type": m["mime"]}

    def _upload(self, rec):
        ctype = rec.headers.get("Content-Type", "")
        if not ctype.startswith("multipart/form-data"):
            return 400, _wa_error_body(100, "(#100) Invalid parameter", "The file must be sent as multipart"), None
        if not self.upload_gate.is_set():
            with self.cond:
                self.uploads_waiting += 1
                self.cond.notify_all()
            self.upload_gate.wait(60)
        parts = parse_multipart(ctype, rec.body)
        if (parts.get("messaging_product") or (None, None, b""))[2] != b"whatsapp" or "file" not in parts:
            return 400, _wa_error_body(100, "(#100) The parameter messaging_product is required.",
                                       "messaging_product and file are required"), None
        with self.cond:
            if self.upload_failures:
                self.upload_failures -= 1
                return 400, _wa_error_body(131053, "Media upload error",
                                           "Unable to upload the media used in the message. Ensure the media "
                                           "meets the type and size requirements."), None
            self.media_counter += 1
            mid = "up%d" % self.media_counter
            fname, ftype, data = parts["file"]
            self.uploads.append({"id": mid, "type": parts.get("type", (None, None, b""))[2].decode(),
                                 "filename": fname, "mime": ftype, "data": data})
            self.cond.notify_all()
        return 200, {"id": mid}, None

    def _message(self, rec):
        body = rec.json() or {}
        if body.get("messaging_product") != "whatsapp":
            return 400, _wa_error_body(100, "(#100) The parameter messaging_product is required.", "missing"), None
        if body.get("status") == "read":
            with self.cond:
                self.reads.append(body.get("message_id"))
                self.cond.notify_all()
            return 200, {"success": True}, None
        to, type_ = body.get("to"), body.get("type")
        refusal = self.refused.get(to)
        if refusal:
            status, code, message, details = refusal
            return status, _wa_error_body(code, message, details), None
        if type_ == "template":
            t = body.get("template") or {}
            params = [p for c in t.get("components", []) if c.get("type") == "body" for p in c.get("parameters", [])]
            if not t.get("name") or not (t.get("language") or {}).get("code") or any(
                    p.get("type") != "text" or len(p.get("text", "")) > 1024 for p in params):
                return 400, _wa_error_body(132000, "Number of parameters does not match the expected number of "
                                                   "params", "body: invalid parameter"), None
        else:
            last = self.last_inbound.get(to)
            if last is not None and self.now() - last >= 24 * 3600:
                return 400, _wa_error_body(131047, "Re-engagement message",
                                           "Message failed to send because more than 24 hours have passed since "
                                           "the customer last replied to this number."), None
            if type_ == "text":
                if not (body.get("text") or {}).get("body"):
                    return 400, _wa_error_body(100, "(#100) Param text['body'] is required.", "empty"), None
            elif type_ in self.MEDIA_MESSAGE_TYPES:
                mid = (body.get(type_) or {}).get("id")
                with self.cond:
                    known = any(u["id"] == mid for u in self.uploads)
                if not known:
                    return 400, _wa_error_body(131053, "Media upload error", "Unknown media id %s" % mid), None
            elif type_ == "location":
                loc = body.get("location") or {}
                if not isinstance(loc.get("latitude"), (int, float)) or not isinstance(loc.get("longitude"),
                                                                                       (int, float)):
                    return 400, _wa_error_body(100, "(#100) Invalid parameter", "location needs latitude and "
                                                                                "longitude"), None
            else:
                return 400, _wa_error_body(131051, "Unsupported message type", "type %s" % type_), None
        with self.cond:
            self.sent.append(body)
            if type_ == "template":
                self.templates.append(body)
            self.counter += 1
            n = self.counter
            self.wamids.append((to, "wamid.out.%d" % n))
            self.cond.notify_all()
        return 200, {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                     "messages": [{"id": "wamid.out.%d" % n}]}, None


def wa_media_message(from_, id_, type_, media_id, mime, sha256, caption=None, filename=None, voice=None):
    """A webhook message of type image, document, audio, video or sticker."""
    obj = {"id": media_id, "mime_type": mime, "sha256": sha256}
    if caption is not None:
        obj["caption"] = caption
    if filename is not None:
        obj["filename"] = filename
    if voice is not None:
        obj["voice"] = voice
    if type_ == "sticker":
        obj["animated"] = False
    return {"from": from_, "id": id_, "timestamp": str(int(time.time())), "type": type_, type_: obj}


def wa_location_message(from_, id_, latitude, longitude, name=None, address=None):
    loc = {"latitude": latitude, "longitude": longitude}
    if name:
        loc["name"] = name
    if address:
        loc["address"] = address
    return {"from": from_, "id": id_, "timestamp": str(int(time.time())), "type": "location", "location": loc}


def wa_interactive_reply(from_, id_, reply_id, title, kind="button_reply", description=None):
    """A tap on a reply button (button_reply) or a list row (list_reply)."""
    r = {"id": reply_id, "title": title}
    if description and kind == "list_reply":
        r["description"] = description
    return {"from": from_, "id": id_, "timestamp": str(int(time.time())), "type": "interactive",
            "context": {"from": "15550001111", "id": "wamid.question"},
            "interactive": {"type": kind, kind: r}}


def wa_legacy_button(from_, id_, text, payload):
    """The quick-reply button of a template message (type button)."""
    return {"from": from_, "id": id_, "timestamp": str(int(time.time())), "type": "button",
            "context": {"from": "15550001111", "id": "wamid.template"}, "button": {"text": text, "payload": payload}}


def media_webhook(app_secret, phone_number_id, messages, contacts=(), fake=None):
    """A signed webhook body carrying full message objects (the wa_*
    builders above); tells fake of each sender's inbound message."""
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "15550001111", "phone_number_id": phone_number_id},
             "messages": list(messages)}
    if contacts:
        value["contacts"] = [{"profile": {"name": name}, "wa_id": wa_id} for wa_id, name in contacts]
    if fake is not None:
        for m in messages:
            fake.inbound(m["from"])
    body = json.dumps({"object": "whatsapp_business_account",
                       "entry": [{"id": "WABA", "changes": [{"value": value, "field": "messages"}]}]}).encode()
    return body, "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
