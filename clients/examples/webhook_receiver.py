#!/usr/bin/env python3
"""webhook_receiver: a supervisor-webhook receiver for helpwired that
verifies every POST before it trusts it (standard library only).

helpwired signs each alert it POSTs (docs/operations.md, "Supervisor
webhook") with the secrets of --webhook-secret-file:

    helpwire-webhook-id: wh_...                  the same on every retry
    helpwire-webhook-timestamp: 1767225600       unix seconds, at sending
    helpwire-signature: t=1767225600,v1=<hex>[,v1=<hex>]

each v1 = hex(HMAC-SHA256(secret, "<t>." + body)), one per secret the
server holds (two while it rotates). A POST is accepted when a v1 matches
one of the receiver's secrets, t is within TOLERANCE_S of now, and the id
was not seen before (a replay, or a redelivery of an alert already taken,
is answered 200 and dropped, so helpwired stops resending it).

Run:

    WEBHOOK_SECRETS_FILE=/etc/helpwire/webhook-secret \\
        python3 webhook_receiver.py [PORT]      # default 8081, 127.0.0.1

The file is the one helpwired reads (one secret a line); a receiver that
already knows the next secret can list it too. Accepted alerts are printed
as one JSON line each; refused ones answer 400 with the reason.
"""
import hashlib
import hmac
import http.server
import json
import os
import sys
import threading
import time

TOLERANCE_S = 300
MAX_BODY_BYTES = 1 << 20


class VerifyError(Exception):
    """A webhook that must not be trusted; str() says why."""


def signature(secret, timestamp, body):
    """The v1 value helpwired sends for body at timestamp (str or int)."""
    if isinstance(secret, str):
        secret = secret.encode()
    msg = str(timestamp).encode() + b"." + body
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()


def _header(headers, name):
    # http.server's headers are case-insensitive; a plain dict may not be.
    value = headers.get(name)
    if value is None:
        for k, v in headers.items():
            if k.lower() == name:
                return v
    return value


def verify(headers, body, secrets, now=None, tolerance_s=TOLERANCE_S):
    """Checks one POST: headers (a mapping), body (bytes, exactly as
    received), secrets (one or more, str or bytes). Returns (webhook_id,
    timestamp). Raises VerifyError when the signature matches none of the
    secrets, the timestamp is missing or further than tolerance_s from now,
    or a header is missing or malformed."""
    if not secrets:
        raise VerifyError("no secret to verify with")
    wid = _header(headers, "helpwire-webhook-id")
    sig = _header(headers, "helpwire-signature")
    if not wid:
        raise VerifyError("no helpwire-webhook-id")
    if not sig:
        raise VerifyError("no helpwire-signature (is --webhook-secret-file set on helpwired?)")
    t, v1s = None, []
    for part in sig.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            t = value
        elif key == "v1" and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
            v1s.append(value)
    if t is None or not (t.isascii() and t.isdigit()) or not v1s:
        raise VerifyError("malformed helpwire-signature")
    if _header(headers, "helpwire-webhook-timestamp") not in (None, t):
        raise VerifyError("helpwire-webhook-timestamp differs from the signed t")
    now = time.time() if now is None else now
    if abs(now - int(t)) > tolerance_s:
        raise VerifyError("timestamp %s is more than %d s from now" % (t, tolerance_s))
    for secret in secrets:
        expected = signature(secret, t, body)
        # Compare with every v1: the server sends one per secret it holds.
        if any(hmac.compare_digest(expected, v) for v in v1s):
            return wid, int(t)
    raise VerifyError("no signature matches")


class ReplayGuard:
    """Remembers the ids accepted in the last window_s seconds (past that
    the timestamp check refuses a replay anyway). Thread-safe."""

    def __init__(self, window_s=TOLERANCE_S):
        self.window_s = window_s
        self._seen = {}  # id -> when accepted
        self._lock = threading.Lock()

    def first_time(self, webhook_id, now=None):
        """True the first time webhook_id is offered, False afterwards."""
        now = time.time() if now is None else now
        with self._lock:
            for k in [k for k, at in self._seen.items() if now - at > 2 * self.window_s]:
                del self._seen[k]
            if webhook_id in self._seen:
                return False
            self._seen[webhook_id] = now
            return True


def make_server(secrets, on_alert, host="127.0.0.1", port=8081, tolerance_s=TOLERANCE_S):
    """An HTTPServer (not started) that verifies each POST, drops replays
    and calls on_alert(alert_dict, webhook_id) for each new alert.
    server.refused holds the reasons of refused POSTs, server.replays the
    ids dropped."""
    guard = ReplayGuard(tolerance_s)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                return self._answer(413, "body too large")
            body = self.rfile.read(length)
            try:
                wid, _ = verify(self.headers, body, secrets, tolerance_s=tolerance_s)
            except VerifyError as e:
                self.server.refused.append(str(e))
                return self._answer(400, str(e))
            if not guard.first_time(wid):
                self.server.replays.append(wid)
                return self._answer(200, "duplicate")  # taken already: stop resending
            try:
                alert = json.loads(body)
            except ValueError:
                return self._answer(400, "body is not JSON")
            on_alert(alert, wid)
            return self._answer(200, "ok")

        def _answer(self, status, text):
            data = (text + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer((host, port), Handler)
    server.refused = []
    server.replays = []
    return server


def read_secrets(path):
    """The non-empty lines of path, stripped: the secrets to accept."""
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def main():
    path = os.environ.get("WEBHOOK_SECRETS_FILE")
    if not path:
        print("set WEBHOOK_SECRETS_FILE to the file of secrets (one a line)", file=sys.stderr)
        return 2
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8081

    def show(alert, wid):
        print(json.dumps({"webhook_id": wid, "alert": alert}), flush=True)

    server = make_server(read_secrets(path), show, port=port)
    print("listening on http://127.0.0.1:%d/" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
