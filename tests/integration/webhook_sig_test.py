"""webhook_sig_test: signed supervisor webhooks through the real helpwired,
checked with the example receiver (clients/examples/webhook_receiver.py).

A real alert verifies with the secret of --webhook-secret-file; a forged
body, a forged signature, another secret and a stale timestamp do not; a
replayed id is dropped by the receiver (answered 200, not processed); a
retry carries the same id; with two secrets in the file both v1 values
come and each verifies alone; without a file the POST has the id and the
timestamp but no signature, and a warning is logged; a bad secret file
(missing, empty, open to others, too many lines, too short) stops the
start with a clear error that never shows the secret."""
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

import hwclient

sys.path.insert(0, os.path.join(os.getcwd(), "clients", "examples"))
import webhook_receiver as wr  # noqa: E402

API = hwclient.Api()
TG = "CHANNEL_TELEGRAM"
SECRET_A = "whsec-current-0123456789abcdef"
SECRET_B = "whsec-previous-fedcba9876543210"


class Recorder:
    """A webhook on 127.0.0.1 recording each POST's headers and raw body;
    answers 500 to the first fail_first, then 200."""

    def __init__(self, fail_first=0):
        self.received = []  # (headers dict, lower-case names; body bytes; status answered)
        self.fail_first = fail_first
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = 500 if outer.fail_first > 0 else 200
                outer.fail_first -= 1
                outer.received.append(({k.lower(): v for k, v in self.headers.items()}, body, status))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/alerts" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def wait_for(pred, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def secret_file(lines, mode=0o600, raw=None):
    fd, path = tempfile.mkstemp(prefix="hw-whsec-", dir=os.environ.get("TEST_TMPDIR"))
    with os.fdopen(fd, "w") as f:
        f.write(raw if raw is not None else "".join(line + "\n" for line in lines))
    os.chmod(path, mode)
    return path


def escalate(server, user, reason="customer threatens to leave"):
    """Opens a ticket and escalates it: one alert. Returns the ticket id."""
    bridge = server.client(api=API, role="bridge")
    agent = server.client(api=API, role="agent")
    try:
        r = bridge.call("helpwire.v1.Router/Route", channel=TG, channelUserId=user, displayName=user,
                        text="My payment failed and I was charged twice", messageId="open-" + user)
        assert r.action == 2, r
        agent.call("helpwire.v1.Tickets/EscalateTicket", ticketId=r.ticket_id, reason=reason)
        return r.ticket_id
    finally:
        bridge.close()
        agent.close()


def post(url, headers, body):
    """POSTs body with headers to url; returns (status, text)."""
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Signed(unittest.TestCase):
    def test_real_alert_verifies_and_forgeries_do_not(self):
        hook = Recorder()
        path = secret_file([SECRET_A])
        server = hwclient.Server("--demo", "--webhook-url", hook.url, "--webhook-secret-file", path)
        try:
            tid = escalate(server, "sig-1")
            self.assertTrue(wait_for(lambda: hook.received), "alert never delivered")
            headers, body, _ = hook.received[0]
            alert = json.loads(body)
            self.assertEqual(alert["ticket_id"], tid)
            wid, t = wr.verify(headers, body, [SECRET_A])
            self.assertEqual(wid, alert["webhook_id"])
            self.assertTrue(wid.startswith("wh_"), wid)
            self.assertEqual(headers["helpwire-webhook-timestamp"], str(t))
            self.assertLess(abs(time.time() - t), 60)
            # Exactly one v1 with one secret, equal to an independent HMAC.
            self.assertEqual(headers["helpwire-signature"], "t=%d,v1=%s" % (t, wr.signature(SECRET_A, t, body)))

            forged = body.replace(b"customer threatens to leave", b"customer is very happy!!!!!")
            self.assertNotEqual(forged, body)
            with self.assertRaisesRegex(wr.VerifyError, "no signature matches"):
                wr.verify(headers, forged, [SECRET_A])
            sig = headers["helpwire-signature"]
            flipped = dict(headers, **{"helpwire-signature": sig[:-1] + ("0" if sig[-1] != "0" else "1")})
            with self.assertRaisesRegex(wr.VerifyError, "no signature matches"):
                wr.verify(flipped, body, [SECRET_A])
            with self.assertRaisesRegex(wr.VerifyError, "no signature matches"):
                wr.verify(headers, body, ["whsec-someone-else-0000000000"])
            retimed = dict(headers, **{"helpwire-signature": sig.replace("t=%d" % t, "t=%d" % (t + 1)),
                                       "helpwire-webhook-timestamp": str(t + 1)})
            with self.assertRaisesRegex(wr.VerifyError, "no signature matches"):
                wr.verify(retimed, body, [SECRET_A])
            # Stale: past the 300 s window either way; inside it still fine.
            with self.assertRaisesRegex(wr.VerifyError, "more than 300 s"):
                wr.verify(headers, body, [SECRET_A], now=t + 301)
            with self.assertRaisesRegex(wr.VerifyError, "more than 300 s"):
                wr.verify(headers, body, [SECRET_A], now=t - 301)
            self.assertEqual(wr.verify(headers, body, [SECRET_A], now=t + 299), (wid, t))

            # The example receiver over HTTP: the real POST replayed to it is
            # taken once, then dropped as a replay; a forgery is refused.
            got = []
            rx = wr.make_server([SECRET_A], lambda a, w: got.append((a, w)), port=0)
            threading.Thread(target=rx.serve_forever, daemon=True).start()
            url = "http://127.0.0.1:%d/" % rx.server_address[1]
            try:
                send = {k: v for k, v in headers.items() if k.startswith("helpwire-")}
                send["Content-Type"] = "application/json"
                self.assertEqual(post(url, send, forged), (400, "no signature matches\n"))
                self.assertEqual(post(url, send, body), (200, "ok\n"))
                self.assertEqual(post(url, send, body), (200, "duplicate\n"))
                self.assertEqual(got, [(alert, wid)])
                self.assertEqual(rx.replays, [wid])
                self.assertEqual(rx.refused, ["no signature matches"])
            finally:
                rx.shutdown()
                rx.server_close()
            # The secret never reaches the log.
            log = server.read_log()
            self.assertIn("event=webhook_signing", log)
            self.assertNotIn(SECRET_A, log)
        finally:
            self.assertEqual(server.stop(), 0)
            hook.stop()
            os.unlink(path)

    def test_a_retry_keeps_the_id_and_verifies_again(self):
        # The webhook answers 500 to the first POST: the same alert comes
        # again (a retry) with the same id and a fresh signature.
        hook = Recorder(fail_first=1)
        path = secret_file([SECRET_A])
        server = hwclient.Server("--demo", "--webhook-url", hook.url, "--webhook-secret-file", path)
        try:
            escalate(server, "sig-2")
            self.assertTrue(wait_for(lambda: len(hook.received) >= 2, 30), hook.received)
            (h1, b1, s1), (h2, b2, s2) = hook.received[:2]
            self.assertEqual((s1, s2), (500, 200))
            self.assertEqual(b1, b2)
            self.assertEqual(h1["helpwire-webhook-id"], h2["helpwire-webhook-id"])
            w1, t1 = wr.verify(h1, b1, [SECRET_A])
            w2, t2 = wr.verify(h2, b2, [SECRET_A])
            self.assertGreaterEqual(t2, t1)
            guard = wr.ReplayGuard()
            self.assertTrue(guard.first_time(w1))
            self.assertFalse(guard.first_time(w2))  # the receiver would drop the second copy
            # A second alert gets another id.
            escalate(server, "sig-3")
            self.assertTrue(wait_for(lambda: len(hook.received) >= 3, 20))
            h3, b3, _ = hook.received[2]
            w3, _ = wr.verify(h3, b3, [SECRET_A])
            self.assertNotEqual(w3, w1)
            self.assertTrue(guard.first_time(w3))
        finally:
            self.assertEqual(server.stop(), 0)
            hook.stop()
            os.unlink(path)

    def test_two_secrets_send_two_signatures_each_verifies(self):
        hook = Recorder()
        path = secret_file([SECRET_A, SECRET_B])
        server = hwclient.Server("--demo", "--webhook-url", hook.url, "--webhook-secret-file", path)
        try:
            escalate(server, "sig-4")
            self.assertTrue(wait_for(lambda: hook.received), "alert never delivered")
            headers, body, _ = hook.received[0]
            t = int(headers["helpwire-webhook-timestamp"])
            # Current first, then previous: both independent HMACs.
            self.assertEqual(headers["helpwire-signature"],
                             "t=%d,v1=%s,v1=%s" % (t, wr.signature(SECRET_A, t, body), wr.signature(SECRET_B, t, body)))
            self.assertEqual(wr.verify(headers, body, [SECRET_A])[1], t)  # a receiver on the new secret
            self.assertEqual(wr.verify(headers, body, [SECRET_B])[1], t)  # one still on the old
            with self.assertRaises(wr.VerifyError):
                wr.verify(headers, body, ["whsec-neither-of-them-000000"])
            log = server.read_log()
            self.assertIn("secrets=2", log)
            self.assertNotIn(SECRET_A, log)
            self.assertNotIn(SECRET_B, log)
        finally:
            self.assertEqual(server.stop(), 0)
            hook.stop()
            os.unlink(path)

    def test_without_a_secret_file_unsigned_with_id_and_a_warning(self):
        hook = Recorder()
        server = hwclient.Server("--demo", "--webhook-url", hook.url)
        try:
            escalate(server, "sig-5")
            self.assertTrue(wait_for(lambda: hook.received), "alert never delivered")
            headers, body, _ = hook.received[0]
            self.assertEqual(headers["helpwire-webhook-id"], json.loads(body)["webhook_id"])
            self.assertLess(abs(int(headers["helpwire-webhook-timestamp"]) - time.time()), 60)
            self.assertNotIn("helpwire-signature", headers)
            with self.assertRaisesRegex(wr.VerifyError, "no helpwire-signature"):
                wr.verify(headers, body, [SECRET_A])
            self.assertIn("event=webhook_unsigned", server.read_log())
        finally:
            self.assertEqual(server.stop(), 0)
            hook.stop()


class BadSecretFile(unittest.TestCase):
    def start_refused(self, path):
        """Runs helpwired with --webhook-secret-file path; returns its
        exit code and stderr (it must stop by itself)."""
        data = tempfile.mkdtemp(prefix="hw-data-", dir=os.environ.get("TEST_TMPDIR"))
        p = subprocess.run([hwclient.helpwired_binary(), "--listen", "127.0.0.1:0", "--data", data,
                            "--webhook-url", "http://127.0.0.1:9/x", "--webhook-secret-file", path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        return p.returncode, p.stderr.decode(errors="replace")

    def check(self, path, reason, secret=None):
        rc, err = self.start_refused(path)
        self.assertEqual(rc, 1, err)
        self.assertIn("helpwired: --webhook-secret-file: ", err)
        self.assertRegex(err, reason)
        self.assertNotIn("helpwired listening", err)
        if secret:
            self.assertNotIn(secret, err)

    def test_help_documents_the_flag(self):
        r = subprocess.run([hwclient.helpwired_binary(), "--help"], capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0)
        self.assertIn("--webhook-secret-file", r.stdout.decode())

    def test_missing_file_is_refused(self):
        self.check("/nonexistent/hw-webhook-secret", "cannot read /nonexistent/hw-webhook-secret: No such file")

    def test_empty_file_is_refused(self):
        path = secret_file([], raw="\n")
        self.check(path, "is empty")

    def test_file_open_to_others_is_refused(self):
        for mode in (0o644, 0o640, 0o604, 0o620):
            path = secret_file([SECRET_A], mode=mode)
            self.check(path, r"accessible by group or others \(mode 0%o\).*chmod 600" % mode, SECRET_A)

    def test_bad_lines_are_refused(self):
        self.check(secret_file([SECRET_A, SECRET_B, "whsec-third-0123456789abcdef"]), "more than 2 lines", SECRET_A)
        self.check(secret_file([SECRET_A, "", SECRET_B]), "line 2 is empty", SECRET_A)
        self.check(secret_file(["short"]), "line 1 has 5 bytes; it needs 16 to 1024", "short")


if __name__ == "__main__":
    unittest.main()
