"""bridges_test: the channel bridges (telegram-bridge, whatsapp-bridge,
webchat-bridge) as real processes, against fake channel APIs
(fake_channels.py) on loopback and the real helpwired.

Standalone groups need nothing from helpwired but a port (the command
line, WhatsApp verification and signatures, Telegram offset persistence
while helpwired is unreachable, the web-chat pages and API). The
end-to-end groups need Router.Route, Outbox, Tickets and Surveys in
helpwired; while one is missing they are skipped with a reason naming it.
"""
import json
import os
import re
import select
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import grpc

import fake_channels as fc
import hwclient
import hwtest
from pki import make_pki

API = hwclient.Api()
TMP = os.environ.get("TEST_TMPDIR") or tempfile.gettempdir()
FAST = ["--backoff-initial-ms", "50", "--backoff-max-ms", "400", "--redeliver-after-ms", "2000",
        "--rpc-timeout-ms", "5000"]


def binary(name):
    return hwclient.find_file("clients/%s/%s-bridge" % (name, name), "clients/%s/%s-bridge" % (name, name))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_line(proc, timeout):
    """One stdout line of proc within timeout, or None."""
    deadline = time.time() + timeout
    buf = b""
    fd = proc.stdout.fileno()
    while time.time() < deadline:
        r, _, _ = select.select([fd], [], [], max(0.0, deadline - time.time()))
        if not r:
            break
        ch = os.read(fd, 1)
        if not ch:
            break
        if ch == b"\n":
            return buf.decode()
        buf += ch
    return None


class Helpwired:
    """The real helpwired on a fixed loopback port (so it can be restarted
    where the bridges expect it) with a fresh data directory and --demo."""

    def __init__(self, *extra):
        self.port = free_port()
        self.address = "127.0.0.1:%d" % self.port
        self.data_dir = tempfile.mkdtemp(prefix="hw-bridges-", dir=TMP)
        self.extra = list(extra)
        self.tokens = {}
        self.proc = None
        self.start()

    def start(self):
        self.log = open(self.data_dir + ".log", "ab")
        args = [hwclient.helpwired_binary(), "--listen", self.address, "--data", self.data_dir, "--demo"]
        self.proc = subprocess.Popen(args + self.extra, stdout=subprocess.PIPE, stderr=self.log)
        deadline = time.time() + 30
        up = False
        while time.time() < deadline:
            line = read_line(self.proc, deadline - time.time())
            if line is None:
                break
            if line.startswith("helpwired token "):
                _, _, role, secret = line.split()[:4]
                self.tokens[role] = secret
            elif line.startswith("helpwired listening on "):
                up = True
            elif line.startswith("try:"):
                break
        if not up:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("helpwired did not start:\n" + self.read_log())

    def read_log(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.data_dir + ".log", "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.proc.stdout.close()
        self.log.close()

    def restart(self):
        self.stop()
        self.start()

    def client(self, role):
        return hwclient.Client(self.address, api=API, token=self.tokens.get(role))

    def bridge_token(self):
        return self.tokens.get("bridge", "bridge-token-unused-until-auth")

    def missing_rpc(self):
        """The first RPC the end-to-end tests need that this helpwired does
        not offer yet, or None."""
        probes = [
            ("helpwire.v1.Router/Route", "bridge", {"channel": "CHANNEL_WEBCHAT"}),
            ("helpwire.v1.Outbox/Ack", "bridge", {"channel": "CHANNEL_WEBCHAT"}),
            ("helpwire.v1.Tickets/AddMessage", "agent", {}),
            ("helpwire.v1.Tickets/CloseTicket", "agent", {}),
            ("helpwire.v1.Surveys/SubmitSurvey", "bridge", {}),
        ]
        for path, role, fields in probes:
            c = self.client(role)
            try:
                c.call(path, timeout=5, **fields)
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                    return path
            finally:
                c.close()
        return None


class Bridge:
    """A bridge binary; waits for its first stdout line (its address)."""

    def __init__(self, name, args, env, ready=True):
        self.name = name
        self.log_path = tempfile.mktemp(prefix="%s-" % name, suffix=".log", dir=TMP)
        self.log = open(self.log_path, "wb")
        full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                full_env[k] = os.environ[k]
        full_env.update(env)
        full_env.update(default_state_dir(name, args, env))
        self.proc = subprocess.Popen([binary(name)] + list(args), stdout=subprocess.PIPE, stderr=self.log,
                                     env=full_env)
        self.address = None
        if ready:
            line = read_line(self.proc, 20)
            if line is None:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError("%s did not start:\n%s" % (name, self.read_log()))
            m = re.search(r"(?:listening on|webhook on) (\S+)", line)
            self.address = m.group(1) if m else None

    @property
    def url(self):
        return "http://" + self.address

    def read_log(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def events(self, event):
        return [l for l in self.read_log().splitlines() if " event=%s" % event in l]

    def wait_log(self, event, timeout=20, count=1):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(self.events(event)) >= count:
                return True
            time.sleep(0.05)
        return False

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Signals the bridge and returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            rc = "hung (killed)"
        self.proc.stdout.close()
        self.log.close()
        return rc


def default_state_dir(name, args, env):
    """The web chat needs a state directory too (its sent record); tests that
    do not care get a fresh one through WEBCHAT_STATE_DIR."""
    if name == "webchat" and "--state-dir" not in args and "WEBCHAT_STATE_DIR" not in env:
        return {"WEBCHAT_STATE_DIR": tempfile.mkdtemp(prefix="webchat-state-", dir=TMP)}
    return {}


def run(name, args, env=None, timeout=20):
    env = dict(env or {})
    env.update(default_state_dir(name, args, env))
    p = subprocess.run([binary(name)] + list(args), capture_output=True, timeout=timeout,
                       env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env})
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def assert_secrets_absent(tc, text, *secrets):
    for s in secrets:
        tc.assertNotIn(s, text, "a secret leaked into output")


# ------------------------------------------------------------ command line

TG_SECRET = "123456:TELEGRAM-SECRET-bot-token"
WA_TOKEN = "EAAG-whatsapp-secret-access-token"
WA_APP_SECRET = "app-secret-never-logged"
WA_VERIFY = "verify-me-token"
WA_PHONE_ID = "109876543210"
TG_WEBHOOK_SECRET = "webhook-secret-token-xyz"


class CommandLine(unittest.TestCase):
    FLAGS = {
        "telegram": ["--helpwire", "--token-file", "--tls-ca", "--tls-server-name", "--rpc-timeout-ms",
                     "--backoff-initial-ms", "--backoff-max-ms", "--redeliver-after-ms", "--log-level",
                     "--max-retry-age-ms", "--metrics", "BRIDGE_MAX_RETRY_AGE_MS", "--api-base", "--bot-token-file", "--mode", "--state-dir", "--poll-timeout-s",
                     "--http-timeout-ms", "--send-attempts", "--webhook-listen", "--webhook-path",
                     "--max-media-bytes", "TELEGRAM_MAX_MEDIA_BYTES",
                     "HELPWIRE_TOKEN", "TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET"],
        "whatsapp": ["--helpwire", "--token-file", "--tls-ca", "--listen", "--webhook-path", "--api-base",
                     "--phone-number-id", "--state-dir", "--max-retry-age-ms", "--metrics", "--spool-max-entries",
                     "--spool-max-bytes", "--drain-timeout-ms", "--http-timeout-ms",
                     "--send-attempts", "HELPWIRE_TOKEN", "WHATSAPP_ACCESS_TOKEN", "WHATSAPP_APP_SECRET",
                     "WHATSAPP_VERIFY_TOKEN"],
        "webchat": ["--helpwire", "--token-file", "--tls-ca", "--listen", "--max-sessions", "--max-events",
                    "--heartbeat-ms", "--state-dir", "WEBCHAT_STATE_DIR", "--spool-max-entries", "--spool-max-bytes",
                    "--drain-timeout-ms", "--allowed-origins", "WEBCHAT_ALLOWED_ORIGINS", "--widget-color",
                    "--widget-position", "--widget-title", "--widget-title-zh", "--widget-greeting",
                    "--widget-greeting-zh", "--hours-skill", "--max-upload-bytes", "--upload-types",
                    "HELPWIRE_TOKEN"],
    }

    def test_help_documents_every_flag_and_exits_0(self):
        for name, flags in self.FLAGS.items():
            rc, out, err = run(name, ["--help"])
            self.assertEqual(rc, 0, name)
            self.assertIn("usage: %s-bridge" % name, out)
            for f in flags:
                self.assertIn(f, out, "%s --help lacks %s" % (name, f))

    def test_unknown_flag_exits_2_naming_it(self):
        for name in self.FLAGS:
            rc, out, err = run(name, ["--no-such-flag"])
            self.assertEqual(rc, 2, name)
            self.assertIn("--no-such-flag", err)

    def test_out_of_range_number_exits_2(self):
        rc, _, err = run("telegram", ["--poll-timeout-s", "99", "--state-dir", TMP],
                         env={"TELEGRAM_BOT_TOKEN": TG_SECRET})
        self.assertEqual(rc, 2)
        self.assertIn("--poll-timeout-s", err)
        rc, _, err = run("webchat", ["--rpc-timeout-ms", "abc", "--state-dir", TMP])
        self.assertEqual(rc, 2)
        self.assertIn("not a number", err)

    def test_bad_widget_settings_exit_2_naming_the_flag(self):
        for args, flag in ((["--widget-color", "teal"], "--widget-color"),
                           (["--widget-position", "top"], "--widget-position"),
                           (["--allowed-origins", "shop.example.com"], "--allowed-origins"),
                           (["--allowed-origins", "https://shop.example.com/path"], "--allowed-origins"),
                           (["--upload-types", "image"], "--upload-types"),
                           (["--max-upload-bytes", "0"], "--max-upload-bytes")):
            rc, _, err = run("webchat", args + ["--state-dir", TMP])
            self.assertEqual(rc, 2, args)
            self.assertIn(flag, err)

    def test_missing_secrets_are_refused_without_echoing_others(self):
        rc, _, err = run("telegram", ["--state-dir", TMP])
        self.assertEqual(rc, 2)
        self.assertIn("TELEGRAM_BOT_TOKEN", err)
        rc, _, err = run("telegram", ["--mode", "webhook", "--state-dir", TMP], env={"TELEGRAM_BOT_TOKEN": TG_SECRET})
        self.assertEqual(rc, 2)
        self.assertIn("TELEGRAM_WEBHOOK_SECRET", err)
        assert_secrets_absent(self, err, TG_SECRET)
        rc, _, err = run("whatsapp", ["--phone-number-id", WA_PHONE_ID, "--state-dir", TMP],
                         env={"WHATSAPP_ACCESS_TOKEN": WA_TOKEN, "WHATSAPP_VERIFY_TOKEN": WA_VERIFY})
        self.assertEqual(rc, 2)
        self.assertIn("WHATSAPP_APP_SECRET", err)
        assert_secrets_absent(self, err, WA_TOKEN, WA_VERIFY)

    def test_every_channel_bridge_needs_a_state_dir(self):
        # It keeps the spool, the dead letters (and Telegram's offset, the
        # web chat's history): no default place.
        for name, args, env in (("webchat", [], {"WEBCHAT_STATE_DIR": ""}),
                                ("telegram", [], {"TELEGRAM_BOT_TOKEN": TG_SECRET}),
                                ("telegram", ["--mode", "webhook"], {"TELEGRAM_BOT_TOKEN": TG_SECRET,
                                                                     "TELEGRAM_WEBHOOK_SECRET": "s"}),
                                ("whatsapp", ["--phone-number-id", WA_PHONE_ID],
                                 {"WHATSAPP_ACCESS_TOKEN": WA_TOKEN, "WHATSAPP_APP_SECRET": WA_APP_SECRET,
                                  "WHATSAPP_VERIFY_TOKEN": WA_VERIFY})):
            rc, _, err = run(name, args, env=env)
            self.assertEqual(rc, 2, name)
            self.assertIn("--state-dir", err, name)

    def test_unreadable_token_file_is_reported_by_name(self):
        rc, _, err = run("webchat", ["--token-file", "/nonexistent/token", "--state-dir", TMP])
        self.assertEqual(rc, 2)
        self.assertIn("/nonexistent/token", err)

    def test_bad_listen_address_is_refused(self):
        rc, _, err = run("webchat", ["--listen", "localhost-no-port", "--state-dir", webchat_state()])
        self.assertEqual(rc, 1)
        self.assertIn("listen", err)

    def test_a_port_in_use_is_refused_by_every_bridge(self):
        down = "127.0.0.1:%d" % free_port()
        first = start_webchat(down, "t")
        try:
            taken = first.address
            why = "cannot listen on %s: address already in use (is another process serving it?)" % taken
            tg = dict(telegram_env("t"), TELEGRAM_WEBHOOK_SECRET=TG_WEBHOOK_SECRET)
            for name, args, env in (
                    ("webchat", ["--listen", taken, "--state-dir", webchat_state()], {"HELPWIRE_TOKEN": "t"}),
                    ("whatsapp", ["--listen", taken, "--phone-number-id", WA_PHONE_ID], whatsapp_env("t")),
                    ("telegram", ["--mode", "webhook", "--webhook-listen", taken], tg)):
                rc, out, err = run(name, ["--helpwire", down] + args, env)
                self.assertEqual(rc, 1, "%s: %s" % (name, err))
                self.assertIn(why, err, name)
                self.assertNotIn("listening on", out)
            # The first one still serves.
            st, _, _ = fc.http_request(first.url + "/", "GET", None)
            self.assertEqual(st, 200)
        finally:
            self.assertEqual(first.stop(), 0, first.read_log())

    def test_listen_takes_host_names_and_ipv6(self):
        down = "127.0.0.1:%d" % free_port()
        for listen, host in (("localhost:0", "localhost"), ("[::1]:0", "[::1]")):
            b = start_webchat(down, "t", listen=listen)
            try:
                self.assertTrue(b.address.startswith(host + ":"), b.address)
                st, _, _ = fc.http_request(b.url + "/", "GET", None)
                self.assertEqual(st, 200)
            finally:
                self.assertEqual(b.stop(), 0, b.read_log())
        rc, _, err = run("webchat", ["--helpwire", down, "--listen", "nosuchhost.invalid:0", "--state-dir",
                                     webchat_state()],
                         {"HELPWIRE_TOKEN": "t"})
        self.assertEqual(rc, 1)
        self.assertIn("cannot listen on nosuchhost.invalid:0: no such host name or address", err)


# ------------------------------------------------------ standalone: WhatsApp

def whatsapp_env(token, state_dir=None):
    return {"HELPWIRE_TOKEN": token, "WHATSAPP_ACCESS_TOKEN": WA_TOKEN, "WHATSAPP_APP_SECRET": WA_APP_SECRET,
            "WHATSAPP_VERIFY_TOKEN": WA_VERIFY,
            "WHATSAPP_STATE_DIR": state_dir or tempfile.mkdtemp(prefix="wa-state-", dir=TMP)}


def start_whatsapp(helpwire_addr, token, fake, *extra, state_dir=None):
    env = whatsapp_env(token, state_dir)
    b = Bridge("whatsapp", ["--helpwire", helpwire_addr, "--listen", "127.0.0.1:0", "--api-base",
                            fake.api_base, "--phone-number-id", WA_PHONE_ID, "--log-level", "debug"] + FAST +
               list(extra), env)
    b.state_dir = env["WHATSAPP_STATE_DIR"]
    return b


class WhatsAppWebhookStandalone(unittest.TestCase):
    """Verification and signatures; helpwired is a closed port here."""

    @classmethod
    def setUpClass(cls):
        cls.fake = fc.FakeWhatsApp(WA_PHONE_ID, WA_TOKEN)
        cls.bridge = start_whatsapp("127.0.0.1:%d" % free_port(), "unused-token", cls.fake)
        cls.hook = cls.bridge.url + "/whatsapp/webhook"

    @classmethod
    def tearDownClass(cls):
        rc = cls.bridge.stop()
        cls.fake.close()
        log = cls.bridge.read_log()
        assert_secrets_absent(unittest.TestCase(), log, WA_TOKEN, WA_APP_SECRET, WA_VERIFY)
        assert rc == 0, "whatsapp-bridge exited %s:\n%s" % (rc, log)

    def test_get_verification_echoes_the_challenge(self):
        st, _, body = fc.http_request(self.hook + "?hub.mode=subscribe&hub.verify_token=%s&hub.challenge=1158201444"
                                      % WA_VERIFY)
        self.assertEqual(st, 200)
        self.assertEqual(body, b"1158201444")

    def test_get_verification_with_wrong_token_or_mode_is_403(self):
        st, _, body = fc.http_request(self.hook + "?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1")
        self.assertEqual(st, 403)
        self.assertNotIn(b"1", body.replace(b"403", b""))
        st, _, _ = fc.http_request(self.hook + "?hub.mode=unsubscribe&hub.verify_token=%s&hub.challenge=1"
                                   % WA_VERIFY)
        self.assertEqual(st, 403)
        st, _, _ = fc.http_request(self.hook + "?hub.mode=subscribe&hub.verify_token=%s" % WA_VERIFY)
        self.assertEqual(st, 403)

    def test_post_with_bad_or_missing_signature_is_refused_and_not_routed(self):
        body, sig = fc.whatsapp_webhook(WA_APP_SECRET, WA_PHONE_ID,
                                        messages=[{"from": "4915100000001", "id": "wamid.BAD1", "text": "hi"}])
        bad = "sha256=" + "0" * 64
        for headers in ({"X-Hub-Signature-256": bad}, {}, {"X-Hub-Signature-256": sig[:-2]},
                        {"X-Hub-Signature-256": sig.replace("sha256=", "sha1=")}):
            st, _, _ = fc.http_request(self.hook, "POST", body, headers)
            self.assertEqual(st, 401, headers)
        # A body changed after signing is refused too.
        st, _, _ = fc.http_request(self.hook, "POST", body.replace(b"hi", b"ho"), {"X-Hub-Signature-256": sig})
        self.assertEqual(st, 401)
        time.sleep(0.3)
        self.assertFalse([l for l in self.bridge.read_log().splitlines() if "wamid.BAD1" in l])

    def test_signed_post_is_answered_200_at_once_even_when_helpwired_is_down(self):
        body, sig = fc.whatsapp_webhook(WA_APP_SECRET, WA_PHONE_ID,
                                        messages=[{"from": "4915100000002", "id": "wamid.OK1", "text": "hello"}])
        start = time.time()
        st, _, _ = fc.http_request(self.hook, "POST", body, {"X-Hub-Signature-256": sig})
        self.assertEqual(st, 200)
        self.assertLess(time.time() - start, 2)
        # Processed after the answer: Route is tried (and retried, helpwired being down).
        self.assertTrue(self.bridge.wait_log("route_failed"), self.bridge.read_log())
        self.assertIn("will_retry=true", self.bridge.events("route_failed")[0])

    def test_messages_helpwired_cannot_take_become_dead_letters_past_the_max_age_or_at_shutdown(self):
        def post(b, wamid):
            body, sig = fc.whatsapp_webhook(WA_APP_SECRET, WA_PHONE_ID,
                                            messages=[{"from": "4915100000003", "id": wamid, "text": "hi"}])
            st, _, _ = fc.http_request(b.url + "/whatsapp/webhook", "POST", body, {"X-Hub-Signature-256": sig})
            self.assertEqual(st, 200)

        # Past the max age: a dead letter, and the worker moves on.
        b = start_whatsapp("127.0.0.1:%d" % free_port(), "unused-token", self.fake, "--max-retry-age-ms", "1500")
        try:
            post(b, "wamid.OLD1")
            self.assertTrue(b.wait_log("dead_letter", timeout=10), b.read_log())
        finally:
            rc = b.stop()
        self.assertEqual(rc, 0, b.read_log())
        recs = read_dead_letters(b.state_dir, "whatsapp")
        self.assertEqual([(r["message_id"], r["reason"]) for r in recs], [("wamid.OLD1", "too_old")])
        self.assertGreaterEqual(recs[0]["last_attempt_ms"] - recs[0]["received_ms"], 1500)
        self.assertLess(recs[0]["last_attempt_ms"] - recs[0]["received_ms"], 1500 + 2000)
        self.assertEqual(recs[0]["code"], grpc.StatusCode.UNAVAILABLE.value[0])

        # Still young when the bridge stops (Meta was answered 200 and will
        # not send it again): it stays in the spool, not a dead letter, and
        # the next start goes on with it (here: past its age, so recorded).
        b = start_whatsapp("127.0.0.1:%d" % free_port(), "unused-token", self.fake, "--drain-timeout-ms", "300")
        try:
            post(b, "wamid.LAST1")
            time.sleep(0.3)
        finally:
            rc = b.stop()
        self.assertEqual(rc, 0, b.read_log())
        self.assertEqual(read_dead_letters(b.state_dir, "whatsapp"), [])
        self.assertTrue(b.events("spool_left"), b.read_log())
        again = start_whatsapp("127.0.0.1:%d" % free_port(), "unused-token", self.fake, "--max-retry-age-ms", "1000",
                               state_dir=b.state_dir)
        try:
            self.assertTrue(again.wait_log("dead_letter", timeout=10), again.read_log())
        finally:
            self.assertEqual(again.stop(), 0, again.read_log())
        recs = read_dead_letters(b.state_dir, "whatsapp")
        self.assertEqual([(r["message_id"], r["reason"]) for r in recs], [("wamid.LAST1", "too_old")])
        self.assertEqual(recs[0]["code"], grpc.StatusCode.UNAVAILABLE.value[0])

    def test_status_callbacks_are_accepted_and_ignored(self):
        # Its own bridge: the shared one may be busy retrying a message
        # helpwired cannot take (messages are routed in order).
        b = start_whatsapp("127.0.0.1:%d" % free_port(), "unused-token", self.fake)
        try:
            body, sig = fc.whatsapp_webhook(WA_APP_SECRET, WA_PHONE_ID, statuses=[
                {"id": "wamid.out.1", "status": "delivered", "timestamp": "1", "recipient_id": "4915100000003"}])
            st, _, _ = fc.http_request(b.url + "/whatsapp/webhook", "POST", body, {"X-Hub-Signature-256": sig})
            self.assertEqual(st, 200)
            self.assertTrue(b.wait_log("status_ignored"))
            self.assertFalse(b.events("route_failed"))
        finally:
            self.assertEqual(b.stop(), 0, b.read_log())

    def test_other_paths_and_methods(self):
        st, _, _ = fc.http_request(self.bridge.url + "/elsewhere")
        self.assertEqual(st, 404)
        st, _, _ = fc.http_request(self.hook, "PUT", b"{}")
        self.assertEqual(st, 405)


# ------------------------------------------------------ standalone: Telegram

def telegram_env(token):
    return {"HELPWIRE_TOKEN": token, "TELEGRAM_BOT_TOKEN": TG_SECRET,
            "TELEGRAM_STATE_DIR": tempfile.mkdtemp(prefix="tg-state-", dir=TMP)}


def start_telegram(helpwire_addr, token, fake, state_dir, *extra):
    return Bridge("telegram", ["--helpwire", helpwire_addr, "--api-base", fake.base_url, "--state-dir", state_dir,
                               "--poll-timeout-s", "1", "--log-level", "debug"] + FAST + list(extra),
                  telegram_env(token))


def read_offset(state_dir):
    """The stored getUpdates offset; 0 before the bridge first stores one
    (it may do so after the reply to that update went out)."""
    try:
        with open(os.path.join(state_dir, "telegram.offset")) as f:
            return int(f.read())
    except FileNotFoundError:
        return 0


class TelegramStandalone(unittest.TestCase):
    """Offsets, 429 and webhook checks against the fake Bot API. Polling
    needs the channel's outbox lease, so the polling tests use the real
    helpwired; without one (nothing listens on its port) the bridge never
    polls."""

    server = None

    @classmethod
    def setUpClass(cls):
        cls.server = Helpwired()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def setUp(self):
        self.fake = fc.FakeTelegram(TG_SECRET)
        self.down = "127.0.0.1:%d" % free_port()
        self.state = tempfile.mkdtemp(prefix="tg-state-", dir=TMP)

    def tearDown(self):
        self.fake.close()

    def start(self, *extra):
        return start_telegram(self.server.address, self.server.bridge_token(), self.fake, self.state, *extra)

    def test_without_helpwired_there_is_no_lease_and_no_polling(self):
        self.fake.add_text(76, "hello?")
        b = start_telegram(self.down, "t", self.fake, self.state)
        try:
            self.assertTrue(b.wait_log("poll_paused"), b.read_log())
            time.sleep(1.5)
            self.assertEqual(self.fake.offsets, [], "a bridge without the lease polled")
        finally:
            self.assertEqual(b.stop(), 0, b.read_log())
        self.assertFalse(os.path.exists(os.path.join(self.state, "telegram.offset")))

    def test_offset_is_persisted_and_a_restart_resumes_after_it(self):
        sticker = self.fake.add_sticker(77)
        text = self.fake.add_text(77, "hello?")
        b = self.start()
        try:
            # The sticker (a file the fake Bot API does not have) is routed
            # with a notice and confirmed; the text is routed and confirmed
            # after it.
            self.assertTrue(self.fake.wait_for(lambda: os.path.exists(os.path.join(self.state, "telegram.offset"))
                                               and read_offset(self.state) == text["update_id"] + 1),
                            b.read_log())
            self.assertGreater(text["update_id"], sticker["update_id"])
        finally:
            rc = b.stop()
        self.assertEqual(rc, 0, b.read_log())
        assert_secrets_absent(self, b.read_log(), TG_SECRET)
        # A restart asks from the persisted offset.
        n = len(self.fake.offsets)
        b2 = self.start()
        try:
            self.assertTrue(self.fake.wait_for(lambda: len(self.fake.offsets) > n))
            self.assertEqual(self.fake.offsets[n], text["update_id"] + 1)
        finally:
            self.assertEqual(b2.stop(), 0, b2.read_log())

    def test_429_waits_retry_after(self):
        self.fake.fail_next(429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                                  "parameters": {"retry_after": 1}}, match="getUpdates")
        b = self.start()
        try:
            polls = lambda: [r for r in self.fake.requests if r.path.endswith("/getUpdates")]
            self.assertTrue(self.fake.wait_for(lambda: len(polls()) >= 2, timeout=10), b.read_log())
            gap = polls()[1].time - polls()[0].time
            self.assertGreaterEqual(gap, 0.9)
        finally:
            self.assertEqual(b.stop(), 0, b.read_log())

    def test_server_errors_back_off_and_recover(self):
        self.fake.fail_next(502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}, count=3,
                            match="getUpdates")
        sticker = self.fake.add_sticker(78)
        b = self.start()
        try:
            self.assertTrue(self.fake.wait_for(lambda: os.path.exists(os.path.join(self.state, "telegram.offset"))
                                               and read_offset(self.state) == sticker["update_id"] + 1))
            self.assertGreaterEqual(len(b.events("poll_backoff")), 3)
        finally:
            self.assertEqual(b.stop(), 0, b.read_log())

    def test_sigterm_ends_a_long_poll_promptly(self):
        b = self.start("--poll-timeout-s", "50")
        self.fake.wait_for(lambda: self.fake.offsets)
        start = time.time()
        self.assertEqual(b.stop(), 0)
        self.assertLess(time.time() - start, 5)

    def test_webhook_mode_checks_the_secret_token(self):
        env = telegram_env("t")
        env["TELEGRAM_WEBHOOK_SECRET"] = TG_WEBHOOK_SECRET
        b = Bridge("telegram", ["--mode", "webhook", "--webhook-listen", "127.0.0.1:0", "--helpwire", self.down,
                                "--api-base", self.fake.base_url] + FAST, env)
        try:
            hook = b.url + "/telegram/webhook"
            upd = {"update_id": 5, "message": {"message_id": 1, "chat": {"id": 9}, "sticker": {}}}
            st, _, _ = fc.http_request(hook, "POST", upd)
            self.assertEqual(st, 401)
            st, _, _ = fc.http_request(hook, "POST", upd, {"X-Telegram-Bot-Api-Secret-Token": "wrong"})
            self.assertEqual(st, 401)
            st, _, _ = fc.http_request(hook, "POST", upd, {"X-Telegram-Bot-Api-Secret-Token": TG_WEBHOOK_SECRET})
            self.assertEqual(st, 200)
            # A text helpwired cannot take now is spooled and answered 200.
            txt = {"update_id": 6, "message": {"message_id": 2, "chat": {"id": 9}, "from": {"id": 9},
                                               "text": "hi"}}
            st, _, _ = fc.http_request(hook, "POST", txt, {"X-Telegram-Bot-Api-Secret-Token": TG_WEBHOOK_SECRET})
            self.assertEqual(st, 200)
            self.assertTrue(b.wait_log("route_failed"), b.read_log())
            st, _, _ = fc.http_request(b.url + "/other", "POST", txt)
            self.assertEqual(st, 404)
        finally:
            rc = b.stop()
        self.assertEqual(rc, 0, b.read_log())
        assert_secrets_absent(self, b.read_log(), TG_SECRET, TG_WEBHOOK_SECRET)


    def test_webhook_spools_and_dead_letters_in_order_past_the_max_age(self):
        env = telegram_env("t")
        env["TELEGRAM_WEBHOOK_SECRET"] = TG_WEBHOOK_SECRET
        b = Bridge("telegram", ["--mode", "webhook", "--webhook-listen", "127.0.0.1:0", "--helpwire", self.down,
                                "--api-base", self.fake.base_url, "--state-dir", self.state,
                                "--max-retry-age-ms", "3000"] + FAST, env)
        try:
            hook = b.url + "/telegram/webhook"
            auth = {"X-Telegram-Bot-Api-Secret-Token": TG_WEBHOOK_SECRET}

            def update(uid, mid, age_s):
                return {"update_id": uid, "message": {"message_id": mid, "date": int(time.time()) - age_s,
                                                      "chat": {"id": 9}, "from": {"id": 9}, "text": "hi"}}
            # Both taken at once (spooled); the young one is retried first,
            # the old one waits behind it: messages are routed in order.
            st, _, _ = fc.http_request(hook, "POST", update(7, 3, 0), auth)
            self.assertEqual(st, 200)
            st, _, _ = fc.http_request(hook, "POST", update(8, 4, 60), auth)
            self.assertEqual(st, 200)
            self.assertEqual(read_dead_letters(self.state, "telegram"), [])
            self.assertTrue(b.wait_log("dead_letter", count=2, timeout=15), b.read_log())
            recs = read_dead_letters(self.state, "telegram")
            self.assertEqual([(r["message_id"], r["reason"]) for r in recs], [("9:3", "too_old"), ("9:4", "too_old")])
            # The young one was tried until its age; the old one once.
            self.assertGreaterEqual(recs[0]["last_attempt_ms"] - recs[0]["received_ms"], 3000)
            self.assertEqual(recs[1]["attempts"], 1)
        finally:
            self.assertEqual(b.stop(), 0, b.read_log())


# ------------------------------------------------------- standalone: web chat

def webchat_state():
    return tempfile.mkdtemp(prefix="wc-state-", dir=TMP)


def start_webchat(helpwire_addr, token, listen="127.0.0.1:0", state_dir=None, *extra):
    state_dir = state_dir or webchat_state()
    b = Bridge("webchat", ["--helpwire", helpwire_addr, "--listen", listen, "--heartbeat-ms", "500",
                           "--state-dir", state_dir] + FAST + list(extra), {"HELPWIRE_TOKEN": token})
    b.state_dir = state_dir
    return b


def post_json(url, body, timeout=10):
    st, _, data = fc.http_request(url, "POST", body, timeout=timeout)
    return st, json.loads(data.decode() or "null")


def get_json(url, timeout=10):
    st, _, data = fc.http_request(url, timeout=timeout)
    return st, json.loads(data.decode() or "null")


class WebchatStandalone(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.bridge = start_webchat("127.0.0.1:%d" % free_port(), "t")

    @classmethod
    def tearDownClass(cls):
        rc = cls.bridge.stop()
        assert rc == 0, cls.bridge.read_log()

    def test_chat_page_is_served(self):
        st, headers, body = fc.http_request(self.bridge.url + "/")
        self.assertEqual(st, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/html"))
        self.assertIn(b'<script src="/widget.js"', body)
        st, headers, js = fc.http_request(self.bridge.url + "/widget.js")
        self.assertEqual(st, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/javascript"))
        self.assertIn(b"EventSource", js)
        self.assertIn(b"/api/messages", js)
        self.assertNotIn(b"innerHTML", js)

    def test_survey_page_is_served_for_any_token(self):
        st, _, body = fc.http_request(self.bridge.url + "/survey/abcDEF123")
        self.assertEqual(st, 200)
        self.assertIn(b"/api/survey", body)
        st, _, _ = fc.http_request(self.bridge.url + "/survey/")
        self.assertEqual(st, 404)

    def test_sessions_are_random_tokens(self):
        st, a = post_json(self.bridge.url + "/api/session", {"name": "Ana"})
        self.assertEqual(st, 200)
        st, b = post_json(self.bridge.url + "/api/session", {})
        self.assertRegex(a["session_id"], r"^[A-Za-z0-9_-]{24}$")
        self.assertNotEqual(a["session_id"], b["session_id"])

    def test_message_input_is_validated(self):
        st, sess = post_json(self.bridge.url + "/api/session", {})
        sid = sess["session_id"]
        st, j = post_json(self.bridge.url + "/api/messages", {"session_id": "short", "text": "x"})
        self.assertEqual(st, 400)
        self.assertEqual(j["field"], "session_id")
        st, j = post_json(self.bridge.url + "/api/messages", {"session_id": sid, "text": ""})
        self.assertEqual(st, 400)
        self.assertEqual(j["field"], "text")
        st, j = post_json(self.bridge.url + "/api/messages", {"session_id": sid, "text": "x",
                                                               "client_message_id": "bad id!"})
        self.assertEqual(st, 400)
        st, _, _ = fc.http_request(self.bridge.url + "/api/messages", "POST", b"not json")
        self.assertEqual(st, 400)

    def test_helpwired_down_takes_the_message_with_a_notice(self):
        st, sess = post_json(self.bridge.url + "/api/session", {})
        st, j = post_json(self.bridge.url + "/api/messages", {"session_id": sess["session_id"], "text": "hi"})
        self.assertEqual(st, 202, j)
        self.assertEqual((j["code"], j["queued"]), ("queued", True))
        self.assertIn("received", j["notice"])

    def test_poll_without_events_returns_empty(self):
        st, sess = post_json(self.bridge.url + "/api/session", {})
        st, j = get_json(self.bridge.url + "/api/poll?session_id=%s&wait_s=0" % sess["session_id"])
        self.assertEqual(st, 200)
        self.assertEqual(j, {"events": [], "last_event_id": 0, "typing_serial": 0})

    def test_survey_api_validates_before_calling(self):
        st, j = post_json(self.bridge.url + "/api/survey", {"token": "x" * 22, "rating": 9})
        self.assertEqual(st, 400)
        self.assertEqual(j["field"], "rating")

    def test_unknown_paths_and_methods(self):
        st, _, _ = fc.http_request(self.bridge.url + "/nope")
        self.assertEqual(st, 404)
        st, _, _ = fc.http_request(self.bridge.url + "/api/session")
        self.assertEqual(st, 405)
        st, _, body = fc.http_request(self.bridge.url + "/healthz")
        self.assertEqual((st, body), (200, b"ok\n"))

    def test_oversize_body_is_413(self):
        st, _, _ = fc.http_request(self.bridge.url + "/api/messages", "POST", b"x" * (70 * 1024))
        self.assertEqual(st, 413)


# ------------------------------------------------------------- end to end

def route_again(server, channel, user, message_id):
    """Route's duplicate answer for an already routed message: the reply
    the bridge's customer should have got, with ticket id and outbox seq."""
    c = server.client("bridge")
    try:
        return c.call("helpwire.v1.Router/Route", channel=channel, channel_user_id=user, text="again",
                      message_id=message_id)
    finally:
        c.close()


def agent_call(server, path, **fields):
    c = server.client("agent")
    try:
        return c.call(path, **fields)
    finally:
        c.close()


class EndToEnd(unittest.TestCase):
    """Shared setup: one helpwired with --demo; skipped, naming the RPC,
    while helpwired lacks one the bridges need."""

    server = None
    extra_server_args = ()

    @classmethod
    def setUpClass(cls):
        cls.server = Helpwired(*cls.extra_server_args)
        missing = cls.server.missing_rpc()
        if missing:
            cls.server.stop()
            raise unittest.SkipTest("waiting on helpwired RPC %s (UNIMPLEMENTED)" % missing)

    @classmethod
    def tearDownClass(cls):
        if cls.server:
            cls.server.stop()


def utf16_units(text):
    return len(text.encode("utf-16-le")) // 2


def long_reply(chars):
    """An agent's reply of exactly chars characters: sentences in
    paragraphs."""
    out, i = [], 0
    while sum(map(len, out)) < chars:
        i += 1
        out.append("Step %d: open the settings page and check the billing address. " % i)
        if i % 8 == 0:
            out[-1] = out[-1].rstrip() + "\n\n"
    return "".join(out)[:chars]


CHINESE_REPLY = ("请在设置页面检查您的账单地址，然后再试一次。" * 300)[:5000]
EMOJI_AT_THE_CUT = "x" * 4095 + "😀" * 400  # the first emoji's pair would straddle unit 4096


def assert_parts_make(tc, text, parts):
    """parts, in order, are text with only whitespace between them (what
    helpwired drops at a cut) and nothing else missing or added."""
    pos = 0
    for p in parts:
        tc.assertTrue(p and not p[0].isspace() or pos == 0, "a part starts with the text or after a cut")
        at = text.find(p, pos)
        tc.assertGreaterEqual(at, 0, "part not found in order in the reply")
        tc.assertEqual(text[pos:at].strip(), "", "only whitespace between parts")
        pos = at + len(p)
    tc.assertEqual(text[pos:].strip(), "")


FAQ_QUESTION = "如何重置密码"
TICKET_TEXT = "My invoice shows a double charge and I need a refund for order 4711"


DELIVERY_FAILED = API.pool.FindEnumTypeByName("helpwire.v1.TicketEventKind").values_by_name[
    "TICKET_EVENT_KIND_DELIVERY_FAILED"].number


def check_refused_reply_ends_failed(tc, open_ticket, refuse, attempts_to, sent_to, refused_user, other_user,
                                    reason):
    """An agent's reply to refused_user, whom the channel refuses for good,
    is tried once and ends FAILED: DELIVERY_FAILED with reason in the
    ticket's history and on a WatchTickets stream, no retry after the
    redelivery delay; other_user's reply on the same channel goes out right
    after."""
    ticket = open_ticket(refused_user)
    other = open_ticket(other_user)
    watcher = tc.server.client("agent")
    stream = watcher.stream("helpwire.v1.Tickets/WatchTickets", timeout=30)
    got, reader = hwclient.watch_ticket(stream, ticket)
    try:
        time.sleep(0.3)
        refuse(refused_user)
        before = len(attempts_to(refused_user))
        agent_call(tc.server, "helpwire.v1.Tickets/AddMessage", ticket_id=ticket, kind="MESSAGE_KIND_AGENT_REPLY",
                   text="Your refund is on its way.")
        tc.assertTrue(tc.bridge.wait_log("delivery_failed"), tc.bridge.read_log())
        agent_call(tc.server, "helpwire.v1.Tickets/AddMessage", ticket_id=other, kind="MESSAGE_KIND_AGENT_REPLY",
                   text="Your parcel left the warehouse.")
        tc.assertTrue(tc.fake.wait_for(lambda: len(sent_to(other_user)) >= 2, timeout=5), tc.bridge.read_log())
        deadline = time.time() + 10
        while DELIVERY_FAILED not in [e.kind for e in got] and time.time() < deadline:
            time.sleep(0.05)
        tc.assertIn(DELIVERY_FAILED, [e.kind for e in got])
        time.sleep(3)  # longer than --redeliver-after-ms: a retry would show now
        tc.assertEqual(len(attempts_to(refused_user)) - before, 1, tc.bridge.read_log())
        live = [e for e in got if e.kind == DELIVERY_FAILED]
        tc.assertEqual(len(live), 1, got)
        tc.assertIn(reason, live[0].detail)
        history = agent_call(tc.server, "helpwire.v1.Tickets/GetTicketHistory", ticket_id=ticket).events
        failed = [e for e in history if e.kind == DELIVERY_FAILED]
        tc.assertEqual(len(failed), 1, history)
        tc.assertIn(reason, failed[0].detail)
        tc.assertEqual(len(tc.bridge.events("delivery_failed")), 1, tc.bridge.read_log())
    finally:
        stream.cancel()
        reader.join(timeout=10)


class TelegramEndToEnd(EndToEnd):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fake = fc.FakeTelegram(TG_SECRET)
        cls.state = tempfile.mkdtemp(prefix="tg-e2e-", dir=TMP)
        cls.bridge = start_telegram(cls.server.address, cls.server.bridge_token(), cls.fake, cls.state)

    @classmethod
    def tearDownClass(cls):
        rc = cls.bridge.stop()
        cls.fake.close()
        super().tearDownClass()
        assert rc == 0, cls.bridge.read_log()

    def message_key(self, update):
        return telegram_key(update)

    def test_customer_message_gets_the_right_reply(self):
        u = self.fake.add_text(1001, FAQ_QUESTION, language_code="zh")
        self.assertTrue(self.fake.wait_for(lambda: self.fake.sent_to(1001)), self.bridge.read_log())
        want = route_again(self.server, "CHANNEL_TELEGRAM", "1001", self.message_key(u))
        self.assertTrue(want.duplicate)
        self.assertEqual(want.action, API.pool.FindEnumTypeByName("helpwire.v1.RouteAction")
                         .values_by_name["ROUTE_ACTION_AUTO_REPLY"].number)
        self.assertEqual(self.fake.sent_to(1001)[0]["text"], want.reply_text)
        self.assertEqual(self.fake.sent_to(1001)[0]["chat_id"], 1001)

    def test_start_gets_the_greeting_not_an_faq(self):
        u = self.fake.add_text(1190, "/start")
        self.assertTrue(self.fake.wait_for(lambda: self.fake.sent_to(1190)), self.bridge.read_log())
        self.assertEqual(self.fake.sent_to(1190)[0]["text"], "Hi! How can we help? Just type your question.")
        want = route_again(self.server, "CHANNEL_TELEGRAM", "1190", self.message_key(u))
        self.assertEqual((want.action, want.reason, want.ticket_id, len(want.hits)),
                         (API.pool.FindEnumTypeByName("helpwire.v1.RouteAction")
                          .values_by_name["ROUTE_ACTION_SMALL_TALK"].number, "small-talk:start", "", 0))
        # A Chinese Telegram client gets the Chinese greeting.
        self.fake.add_text(1191, "/start", language_code="zh-hans")
        self.assertTrue(self.fake.wait_for(lambda: self.fake.sent_to(1191)), self.bridge.read_log())
        self.assertEqual(self.fake.sent_to(1191)[0]["text"], "您好！请问有什么可以帮您？直接描述您的问题即可。")

    def open_ticket(self, chat):
        u = self.fake.add_text(chat, TICKET_TEXT)
        self.assertTrue(self.fake.wait_for(lambda: self.fake.sent_to(chat)), self.bridge.read_log())
        r = route_again(self.server, "CHANNEL_TELEGRAM", str(chat), self.message_key(u))
        self.assertTrue(r.ticket_id, r)
        self.assertEqual(self.fake.sent_to(chat)[0]["text"], r.reply_text)
        return r.ticket_id

    def test_agent_reply_and_survey_link_reach_the_customer(self):
        ticket = self.open_ticket(1002)
        agent_call(self.server, "helpwire.v1.Tickets/AddMessage", ticket_id=ticket,
                   kind="MESSAGE_KIND_AGENT_REPLY", text="Refund issued, sorry for the trouble.")
        self.assertTrue(self.fake.wait_for(lambda: len(self.fake.sent_to(1002)) >= 2), self.bridge.read_log())
        self.assertEqual(self.fake.sent_to(1002)[1]["text"], "Refund issued, sorry for the trouble.")
        closed = agent_call(self.server, "helpwire.v1.Tickets/CloseTicket", ticket_id=ticket,
                            resolution="refunded")
        self.assertTrue(closed.survey_url)
        self.assertTrue(self.fake.wait_for(lambda: len(self.fake.sent_to(1002)) >= 3), self.bridge.read_log())
        self.assertIn(closed.survey_url, self.fake.sent_to(1002)[2]["text"])
        self.assertIn("1 to 5", self.fake.sent_to(1002)[2]["text"])
        # The customer answers with a bare number in the chat.
        self.fake.add_text(1002, "5")
        self.assertTrue(self.fake.wait_for(lambda: len(self.fake.sent_to(1002)) >= 4), self.bridge.read_log())
        self.assertEqual(self.fake.sent_to(1002)[3]["text"], "Thanks for your rating!")
        sv = agent_call(self.server, "helpwire.v1.Surveys/GetSurvey", survey_id=closed.survey_id)
        self.assertEqual(sv.rating, 5)

    def test_restart_of_the_bridge_neither_loses_nor_repeats(self):
        type(self).bridge.stop()
        before = self.fake.add_text(1003, FAQ_QUESTION)  # arrives while the bridge is down
        type(self).bridge = start_telegram(self.server.address, self.server.bridge_token(), self.fake, self.state)
        self.assertTrue(self.fake.wait_for(lambda: self.fake.sent_to(1003)), self.bridge.read_log())
        # Restart again right after: nothing is routed or sent twice.
        type(self).bridge.stop()
        type(self).bridge = start_telegram(self.server.address, self.server.bridge_token(), self.fake, self.state)
        after = self.fake.add_text(1003, "工作时间")
        self.assertTrue(self.fake.wait_for(lambda: len(self.fake.sent_to(1003)) >= 2), self.bridge.read_log())
        time.sleep(3)  # longer than --redeliver-after-ms: a repeat would show now
        self.assertEqual(len(self.fake.sent_to(1003)), 2, self.fake.sent_to(1003))
        self.assertGreaterEqual(read_offset(self.state), after["update_id"] + 1)
        self.assertGreater(after["update_id"], before["update_id"])

    def test_helpwired_restart_is_survived(self):
        self.server.restart()
        self.fake.add_text(1004, FAQ_QUESTION)
        self.assertTrue(self.fake.wait_for(lambda: self.fake.sent_to(1004), timeout=30), self.bridge.read_log())
        self.assertTrue(self.bridge.events("outbox_reconnect"))

    def reply_in_parts(self, chat, text, want_parts):
        """An agent reply of text to a new ticket of chat: the texts the
        fake Bot API received for it, in order, after checking the reply's
        sequences and the stored message."""
        ticket = self.open_ticket(chat)
        rep = agent_call(self.server, "helpwire.v1.Tickets/AddMessage", ticket_id=ticket,
                         kind="MESSAGE_KIND_AGENT_REPLY", text=text)
        self.assertEqual(len(rep.outbox_seqs), want_parts)
        self.assertEqual(rep.outbox_seq, rep.outbox_seqs[0])
        self.assertEqual(list(rep.outbox_seqs), list(range(rep.outbox_seq, rep.outbox_seq + want_parts)))
        self.assertEqual(rep.message.delivery_parts, want_parts)
        self.assertTrue(self.fake.wait_for(lambda: len(self.fake.sent_to(chat)) >= 1 + want_parts),
                        self.bridge.read_log())
        time.sleep(0.5)  # nothing more comes
        got = [m["text"] for m in self.fake.sent_to(chat)[1:]]
        self.assertEqual(len(got), want_parts, got)
        for t in got:
            self.assertLessEqual(utf16_units(t), 4096)
        # The ticket keeps the whole reply, once.
        msgs = agent_call(self.server, "helpwire.v1.Tickets/GetTicket", ticket_id=ticket,
                          include_messages=True).messages
        self.assertEqual([m.text for m in msgs if m.text == text], [text])
        return got

    def test_a_5000_character_reply_arrives_as_2_ordered_messages_within_4096(self):
        text = long_reply(5000)
        got = self.reply_in_parts(1010, text, 2)
        assert_parts_make(self, text, got)
        self.assertTrue(text.startswith(got[0]))
        self.assertGreater(utf16_units(got[0]), 2048)

    def test_a_chinese_reply_is_cut_after_a_full_stop(self):
        got = self.reply_in_parts(1011, CHINESE_REPLY, 2)
        assert_parts_make(self, CHINESE_REPLY, got)
        self.assertEqual(got[0][-1], "。")
        self.assertEqual("".join(got), CHINESE_REPLY)  # no whitespace at the cut: nothing dropped

    def test_an_emoji_at_the_cut_is_not_split_in_half(self):
        got = self.reply_in_parts(1012, EMOJI_AT_THE_CUT, 2)
        self.assertEqual("".join(got), EMOJI_AT_THE_CUT)
        self.assertEqual(got[0], "x" * 4095)  # 4095 + 2 would be 4097 UTF-16 units
        self.assertEqual(got[1], "😀" * 400)

    def test_a_reply_of_exactly_4096_units_is_one_message(self):
        text = "y" * 4094 + "😀"
        got = self.reply_in_parts(1013, text, 1)
        self.assertEqual(got, [text])

    def test_a_long_faq_answer_is_auto_replied_in_ordered_parts(self):
        answer = long_reply(6000)
        admin = self.server.client("admin")
        try:
            admin.call("helpwire.v1.Knowledge/PutFaq", faq={
                "id": "long-export", "question": "How do I export invoices to my accounting software?",
                "answer": answer, "locale": "en"})
        finally:
            admin.close()
        u = self.fake.add_text(1014, "How do I export invoices to my accounting software?")
        self.assertTrue(self.fake.wait_for(lambda: len(self.fake.sent_to(1014)) >= 2), self.bridge.read_log())
        time.sleep(0.5)
        r = route_again(self.server, "CHANNEL_TELEGRAM", "1014", self.message_key(u))
        self.assertEqual(r.reply_text, answer, "the FAQ answered")
        got = [m["text"] for m in self.fake.sent_to(1014)]
        self.assertEqual(len(got), 2)
        # The reply names both parts' sequences, in delivery order.
        self.assertEqual(len(r.outbox_seqs), 2)
        self.assertEqual(r.outbox_seq, r.outbox_seqs[0])
        self.assertEqual(r.outbox_seqs[1], r.outbox_seqs[0] + 1)
        for t in got:
            self.assertLessEqual(utf16_units(t), 4096)
        assert_parts_make(self, answer, got)

    def test_a_reply_to_a_chat_that_blocked_the_bot_ends_failed_and_the_next_chat_gets_its_reply(self):
        check_refused_reply_ends_failed(self, self.open_ticket, self.fake.block_chat, self.fake.attempts_to,
                                        self.fake.sent_to, 1090, 1091,
                                        "telegram 403: Forbidden: bot was blocked by the user")

    def test_rate_limited_send_is_retried_after_retry_after_and_sent_once(self):
        self.fake.fail_next(429, {"ok": False, "error_code": 429, "description": "Too Many Requests",
                                  "parameters": {"retry_after": 1}}, match="sendMessage")
        self.fake.add_text(1005, FAQ_QUESTION)
        self.assertTrue(self.fake.wait_for(lambda: self.fake.sent_to(1005)), self.bridge.read_log())
        time.sleep(2.5)
        self.assertEqual(len(self.fake.sent_to(1005)), 1)


def telegram_key(update):
    """The message_id the Telegram bridge routes an update's message under."""
    m = update["message"]
    return "%d:%d" % (m["chat"]["id"], m["message_id"])


def read_dead_letters(state_dir, bridge):
    """The records of a bridge's dead-letter file (JSON Lines), oldest first."""
    path = os.path.join(state_dir, "%s.deadletter.jsonl" % bridge)
    if not os.path.exists(path):
        return []
    with open(path, encoding="ascii") as f:
        return [json.loads(line) for line in f if line.strip()]


def scrape(port):
    st, _, body = fc.http_request("http://127.0.0.1:%d/metrics" % port, "GET", None)
    assert st == 200, st
    return body.decode() if isinstance(body, bytes) else body


def metric(text, name, **labels):
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(r'(\w+)\{([^}]*)\} (\S+)$', line)
        if m and m.group(1) == name and ",".join(sorted(m.group(2).split(","))) == want:
            return float(m.group(3))
    return None


class TelegramDeliveryGuarantees(EndToEnd):
    """Every inbound message ends routed or in the dead-letter file, and the
    channel never stalls behind one: a bridge of its own per test (a fresh
    state directory, metrics port and max age), the real helpwired."""

    MAX_AGE_MS = 30000

    def setUp(self):
        self.fake = fc.FakeTelegram(TG_SECRET)
        self.state = tempfile.mkdtemp(prefix="tg-dl-", dir=TMP)
        self.metrics_port = free_port()
        self.bridge = start_telegram(self.server.address, self.server.bridge_token(), self.fake, self.state,
                                     "--max-retry-age-ms", str(self.MAX_AGE_MS), "--metrics",
                                     "127.0.0.1:%d" % self.metrics_port)

    def tearDown(self):
        rc = self.bridge.stop()
        self.fake.close()
        self.assertEqual(rc, 0, self.bridge.read_log())

    def key(self, update):
        return telegram_key(update)

    def test_a_long_chinese_message_routes_at_once(self):
        text = ("我的订单一直没有发货，客服电话也打不通，请尽快帮我查一下物流情况并退款。" * 40)[:1400]
        self.assertEqual(len(text), 1400)
        start = time.time()
        u = self.fake.add_text(2001, text, language_code="zh")
        self.assertTrue(self.fake.wait_for(lambda: self.fake.sent_to(2001), timeout=10), self.bridge.read_log())
        self.assertLess(time.time() - start, 5)
        self.assertEqual(self.bridge.events("route_failed"), [])
        self.assertEqual(len(self.bridge.events("routed")), 1)
        r = route_again(self.server, "CHANNEL_TELEGRAM", "2001", self.key(u))
        self.assertTrue(r.duplicate)
        self.assertTrue(r.ticket_id, "a complaint opens a ticket")
        t = agent_call(self.server, "helpwire.v1.Tickets/GetTicket", ticket_id=r.ticket_id, include_messages=True)
        self.assertEqual(t.messages[0].text, text)

    def test_a_message_refused_for_good_is_dead_lettered_and_the_next_customer_routes(self):
        too_long = "x" * 20000  # over Route's 16,384 bytes: INVALID_ARGUMENT however often it is sent
        bad = self.fake.add_text(2002, too_long)
        good = self.fake.add_text(2003, FAQ_QUESTION, language_code="zh")
        self.assertTrue(self.fake.wait_for(lambda: self.fake.sent_to(2003), timeout=10), self.bridge.read_log())
        self.assertEqual(self.fake.sent_to(2002), [])
        # On disk, before the offset moved past it.
        recs = read_dead_letters(self.state, "telegram")
        self.assertEqual(len(recs), 1, recs)
        rec = recs[0]
        self.assertEqual(rec["reason"], "refused")
        self.assertEqual(rec["channel"], "telegram")
        self.assertEqual(rec["message_id"], self.key(bad))
        self.assertEqual(rec["sender"], "2002")
        self.assertEqual(rec["text"], too_long)
        self.assertEqual(rec["code"], grpc.StatusCode.INVALID_ARGUMENT.value[0])
        self.assertIn("text", rec["status_message"])
        self.assertEqual(rec["attempts"], 1)  # not retried
        self.assertLessEqual(rec["first_attempt_ms"], rec["last_attempt_ms"])
        self.assertTrue(self.fake.wait_for(lambda: read_offset(self.state) >= good["update_id"] + 1))
        # One warning line, without the text; the metric.
        lines = self.bridge.events("dead_letter")
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("reason=refused", lines[0])
        self.assertIn("code=INVALID_ARGUMENT", lines[0])
        self.assertIn("level=warn", lines[0].lower().replace('"', ''))
        self.assertNotIn("xxxxxxxx", self.bridge.read_log())
        text = scrape(self.metrics_port)
        self.assertEqual(metric(text, "helpwire_bridge_dead_letters_total", bridge="telegram", reason="refused"), 1)
        self.assertEqual(metric(text, "helpwire_bridge_dead_letters_total", bridge="telegram", reason="too_old"), 0)
        self.assertEqual(metric(text, "helpwire_rpc_requests_total", service="helpwire.v1.Router", method="Route",
                                code="INVALID_ARGUMENT"), 1)

    def test_a_message_sent_while_helpwired_is_down_waits_at_telegram_and_routes_when_it_is_back(self):
        # Without helpwired the bridge has no outbox lease, so it does not
        # take messages it could not route: they wait at Telegram.
        self.assertTrue(self.bridge.wait_log("polling"), self.bridge.read_log())
        self.server.stop()
        try:
            self.assertTrue(self.bridge.wait_log("poll_paused"), self.bridge.read_log())
            time.sleep(0.5)
            n = len(self.fake.offsets)
            down = self.fake.add_text(2004, FAQ_QUESTION, language_code="zh")
            time.sleep(2)
            self.assertEqual(len(self.fake.offsets), n, "polled without the lease")
        finally:
            self.server.start()
        self.assertTrue(self.fake.wait_for(lambda: self.fake.sent_to(2004), timeout=40), self.bridge.read_log())
        self.assertTrue(self.fake.wait_for(lambda: read_offset(self.state) >= down["update_id"] + 1))
        self.assertEqual(read_dead_letters(self.state, "telegram"), [])
        self.assertEqual(metric(scrape(self.metrics_port), "helpwire_bridge_dead_letters_total", bridge="telegram",
                                reason="too_old"), 0)


class TelegramOverTls(unittest.TestCase):
    """A bridge reaching helpwired's TLS port with --tls-ca, as across hosts
    without a mesh."""

    @classmethod
    def setUpClass(cls):
        cls.pki_dir = tempfile.mkdtemp(prefix="pki-", dir=TMP)
        make_pki(cls.pki_dir)
        cls.tls_address = "127.0.0.1:%d" % free_port()
        cls.server = Helpwired("--tls-listen", cls.tls_address,
                               "--tls-cert", os.path.join(cls.pki_dir, "server.pem"),
                               "--tls-key", os.path.join(cls.pki_dir, "server.key"))
        cls.fake = fc.FakeTelegram(TG_SECRET)

    @classmethod
    def tearDownClass(cls):
        cls.fake.close()
        cls.server.stop()

    def test_messages_and_replies_travel_over_tls(self):
        state = tempfile.mkdtemp(prefix="tg-tls-", dir=TMP)
        bridge = start_telegram(self.tls_address, self.server.bridge_token(), self.fake, state,
                                "--tls-ca", os.path.join(self.pki_dir, "ca.pem"))
        try:
            u = self.fake.add_text(2001, FAQ_QUESTION, language_code="zh")
            self.assertTrue(self.fake.wait_for(lambda: self.fake.sent_to(2001)), bridge.read_log())
            want = route_again(self.server, "CHANNEL_TELEGRAM", "2001", telegram_key(u))
            self.assertTrue(want.duplicate)  # helpwired got it from the bridge, over TLS
            self.assertIn(want.reply_text, [t["text"] for t in self.fake.sent_to(2001)])
        finally:
            self.assertEqual(bridge.stop(), 0)

    def test_a_bridge_that_does_not_trust_the_certificate_routes_nothing(self):
        other = tempfile.mkdtemp(prefix="pki-other-", dir=TMP)
        make_pki(other)  # another CA, which did not sign helpwired's certificate
        state = tempfile.mkdtemp(prefix="tg-tls-", dir=TMP)
        bridge = start_telegram(self.tls_address, self.server.bridge_token(), self.fake, state,
                                "--tls-ca", os.path.join(other, "ca.pem"))
        try:
            self.fake.add_text(2002, FAQ_QUESTION, language_code="zh")
            # No stream, so no lease: the update stays at Telegram, unpolled.
            self.assertTrue(bridge.wait_log("poll_paused", timeout=20), bridge.read_log())
            self.assertTrue(bridge.wait_log("grpc", timeout=20), bridge.read_log())
            time.sleep(1)
            self.assertEqual(self.fake.sent_to(2002), [])
            self.assertEqual(read_offset(state) if os.path.exists(os.path.join(state, "telegram.offset")) else 0, 0)
        finally:
            self.assertEqual(bridge.stop(), 0)


class WhatsAppEndToEnd(EndToEnd):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fake = fc.FakeWhatsApp(WA_PHONE_ID, WA_TOKEN)
        cls.bridge = start_whatsapp(cls.server.address, cls.server.bridge_token(), cls.fake)
        cls.counter = 0

    @classmethod
    def tearDownClass(cls):
        rc = cls.bridge.stop()
        cls.fake.close()
        super().tearDownClass()
        log = cls.bridge.read_log()
        assert_secrets_absent(unittest.TestCase(), log, WA_TOKEN, WA_APP_SECRET, WA_VERIFY)
        assert rc == 0, log

    def post(self, wa_id, text, wamid=None, sign_with=WA_APP_SECRET):
        type(self).counter += 1
        wamid = wamid or "wamid.E2E.%s.%d" % (wa_id, self.counter)
        body, sig = fc.whatsapp_webhook(sign_with, WA_PHONE_ID,
                                        messages=[{"from": wa_id, "id": wamid, "text": text}],
                                        contacts=[(wa_id, "Bea")])
        st, _, _ = fc.http_request(self.bridge.url + "/whatsapp/webhook", "POST", body,
                                   {"X-Hub-Signature-256": sig})
        return st, wamid

    def test_customer_message_gets_the_right_reply(self):
        st, wamid = self.post("4915200000001", FAQ_QUESTION)
        self.assertEqual(st, 200)
        self.assertTrue(self.fake.wait_for(lambda: self.fake.sent_to("4915200000001")), self.bridge.read_log())
        want = route_again(self.server, "CHANNEL_WHATSAPP", "4915200000001", wamid)
        sent = self.fake.sent_to("4915200000001")[0]
        self.assertEqual(sent["text"]["body"], want.reply_text)
        self.assertEqual(sent["recipient_type"], "individual")

    def open_ticket(self, wa_id):
        st, wamid = self.post(wa_id, TICKET_TEXT)
        self.assertEqual(st, 200)
        self.assertTrue(self.fake.wait_for(lambda: self.fake.sent_to(wa_id)), self.bridge.read_log())
        r = route_again(self.server, "CHANNEL_WHATSAPP", wa_id, wamid)
        self.assertTrue(r.ticket_id, r)
        return r.ticket_id

    def test_a_reply_whatsapp_cannot_deliver_ends_failed_and_the_next_customer_gets_its_reply(self):
        check_refused_reply_ends_failed(self, self.open_ticket, self.fake.refuse_to, self.fake.attempts_to,
                                        self.fake.sent_to, "4915200000090", "4915200000091",
                                        "whatsapp 131026: Message undeliverable")

    def test_a_message_refused_for_good_is_dead_lettered_and_the_next_one_routes(self):
        too_long = "y" * 17000
        st, bad = self.post("4915200000009", too_long)
        self.assertEqual(st, 200)
        st, good = self.post("4915200000010", FAQ_QUESTION)
        self.assertEqual(st, 200)
        self.assertTrue(self.fake.wait_for(lambda: self.fake.sent_to("4915200000010")), self.bridge.read_log())
        recs = [r for r in read_dead_letters(self.bridge.state_dir, "whatsapp") if r["message_id"] == bad]
        self.assertEqual(len(recs), 1, recs)
        self.assertEqual(recs[0]["reason"], "refused")
        self.assertEqual(recs[0]["sender"], "4915200000009")
        self.assertEqual(recs[0]["display_name"], "Bea")
        self.assertEqual(recs[0]["text"], too_long)
        self.assertEqual(recs[0]["code"], grpc.StatusCode.INVALID_ARGUMENT.value[0])
        self.assertEqual(recs[0]["attempts"], 1)
        self.assertTrue([l for l in self.bridge.events("dead_letter") if bad in l and "reason=refused" in l])
        self.assertEqual(self.fake.sent_to("4915200000009"), [])

    def test_agent_reply_and_survey_link_reach_the_customer(self):
        user = "4915200000002"
        st, wamid = self.post(user, TICKET_TEXT)
        self.assertTrue(self.fake.wait_for(lambda: self.fake.sent_to(user)), self.bridge.read_log())
        ticket = route_again(self.server, "CHANNEL_WHATSAPP", user, wamid).ticket_id
        self.assertTrue(ticket)
        agent_call(self.server, "helpwire.v1.Tickets/AddMessage", ticket_id=ticket,
                   kind="MESSAGE_KIND_AGENT_REPLY", text="We refunded the double charge.")
        self.assertTrue(self.fake.wait_for(lambda: len(self.fake.sent_to(user)) >= 2))
        self.assertEqual(self.fake.sent_to(user)[1]["text"]["body"], "We refunded the double charge.")
        closed = agent_call(self.server, "helpwire.v1.Tickets/CloseTicket", ticket_id=ticket, resolution="done")
        self.assertTrue(self.fake.wait_for(lambda: len(self.fake.sent_to(user)) >= 3))
        self.assertIn(closed.survey_url, self.fake.sent_to(user)[2]["text"]["body"])

    def reply_in_parts(self, user, text, want_parts):
        st, wamid = self.post(user, TICKET_TEXT)
        self.assertTrue(self.fake.wait_for(lambda: self.fake.sent_to(user)), self.bridge.read_log())
        ticket = route_again(self.server, "CHANNEL_WHATSAPP", user, wamid).ticket_id
        rep = agent_call(self.server, "helpwire.v1.Tickets/AddMessage", ticket_id=ticket,
                         kind="MESSAGE_KIND_AGENT_REPLY", text=text)
        self.assertEqual(len(rep.outbox_seqs), want_parts)
        self.assertEqual(rep.message.delivery_parts, want_parts)
        self.assertTrue(self.fake.wait_for(lambda: len(self.fake.sent_to(user)) >= 1 + want_parts),
                        self.bridge.read_log())
        time.sleep(0.5)
        got = [m["text"]["body"] for m in self.fake.sent_to(user)[1:]]
        self.assertEqual(len(got), want_parts, got)
        for t in got:
            self.assertLessEqual(len(t), 4096)  # characters (code points)
        return got

    def test_a_5000_character_reply_arrives_as_2_ordered_messages_within_4096(self):
        text = long_reply(5000)
        got = self.reply_in_parts("4915200000020", text, 2)
        assert_parts_make(self, text, got)
        self.assertTrue(text.startswith(got[0]))

    def test_a_chinese_reply_is_cut_after_a_full_stop(self):
        got = self.reply_in_parts("4915200000021", CHINESE_REPLY, 2)
        self.assertEqual("".join(got), CHINESE_REPLY)
        self.assertEqual(got[0][-1], "。")

    def test_emoji_count_one_character_each(self):
        # 4096 emoji are 4096 characters for WhatsApp (8192 UTF-16 units).
        text = "😀" * 4096
        self.assertEqual(self.reply_in_parts("4915200000022", text, 1), [text])
        text = "z" * 4094 + "😀" * 4  # 4098 characters
        got = self.reply_in_parts("4915200000023", text, 2)
        self.assertEqual(got, ["z" * 4094 + "😀" * 2, "😀" * 2])

    def test_bad_signature_is_refused_and_nothing_is_routed(self):
        user = "4915200000003"
        st, _ = self.post(user, FAQ_QUESTION, sign_with="not-the-app-secret")
        self.assertEqual(st, 401)
        time.sleep(1.5)
        self.assertEqual(self.fake.sent_to(user), [])
        c = self.server.client("bridge")
        try:
            with self.assertRaises(grpc.RpcError) as cm:
                c.call("helpwire.v1.Customers/LookupCustomer", channel="CHANNEL_WHATSAPP", channel_user_id=user)
            self.assertIn(cm.exception.code(), (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED,
                                                grpc.StatusCode.UNIMPLEMENTED))
        finally:
            c.close()

    def test_meta_retry_and_bridge_restart_neither_lose_nor_repeat(self):
        user = "4915200000004"
        st, wamid = self.post(user, FAQ_QUESTION)
        self.assertEqual(st, 200)
        # SIGTERM right away: what was accepted is drained before exit.
        self.assertEqual(type(self).bridge.stop(), 0)
        type(self).bridge = start_whatsapp(self.server.address, self.server.bridge_token(), self.fake)
        self.assertTrue(self.fake.wait_for(lambda: self.fake.sent_to(user)), self.bridge.read_log())
        # Meta delivers the same webhook again (its retry): answered once.
        st, _ = self.post(user, FAQ_QUESTION, wamid=wamid)
        self.assertEqual(st, 200)
        time.sleep(3)
        self.assertEqual(len(self.fake.sent_to(user)), 1, self.fake.sent_to(user))

    def test_graph_api_failure_is_not_acked_and_is_delivered_later(self):
        user = "4915200000005"
        self.fake.fail_next(500, {"error": {"message": "temporarily unavailable", "code": 2}}, count=6,
                            match="/messages")
        st, _ = self.post(user, FAQ_QUESTION)
        self.assertTrue(self.fake.wait_for(lambda: self.fake.sent_to(user), timeout=30), self.bridge.read_log())
        self.assertTrue(self.bridge.events("outbox_delivery_failed"))
        time.sleep(2.5)
        self.assertEqual(len(self.fake.sent_to(user)), 1)


class WebchatEndToEnd(EndToEnd):
    webchat_port = free_port()
    extra_server_args = ("--survey-base-url", "http://127.0.0.1:%d/survey/" % webchat_port)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.state = webchat_state()
        cls.bridge = start_webchat(cls.server.address, cls.server.bridge_token(),
                                   "127.0.0.1:%d" % cls.webchat_port, cls.state)

    @classmethod
    def tearDownClass(cls):
        rc = cls.bridge.stop()
        super().tearDownClass()
        assert rc == 0, cls.bridge.read_log()

    def session(self):
        st, j = post_json(self.bridge.url + "/api/session", {"name": "Cai"})
        self.assertEqual(st, 200)
        return j["session_id"]

    def send(self, sid, text, cmid):
        return post_json(self.bridge.url + "/api/messages", {"session_id": sid, "text": text,
                                                               "client_message_id": cmid})

    def poll(self, sid, after=0, want=1, timeout=20):
        events = []
        deadline = time.time() + timeout
        while len(events) < want and time.time() < deadline:
            st, j = get_json(self.bridge.url + "/api/poll?session_id=%s&after=%d&wait_s=2" % (sid, after))
            self.assertEqual(st, 200)
            events += j["events"]
            after = j["last_event_id"]
        return events

    def test_customer_message_gets_the_right_reply_live_over_sse(self):
        sid = self.session()
        got = []

        def read_sse():
            import urllib.request
            with urllib.request.urlopen(self.bridge.url + "/api/events?session_id=" + sid, timeout=20) as r:
                for raw in r:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("data: "):
                        got.append(json.loads(line[6:]))
                        return

        t = threading.Thread(target=read_sse, daemon=True)
        t.start()
        time.sleep(0.3)
        st, j = self.send(sid, FAQ_QUESTION, "c1")
        self.assertEqual(st, 200, j)
        self.assertEqual(j["action"], "auto_reply")
        t.join(20)
        self.assertTrue(got, self.bridge.read_log())
        want = route_again(self.server, "CHANNEL_WEBCHAT", sid, sid + ":c1")
        self.assertEqual(got[0]["text"], want.reply_text)
        self.assertEqual(got[0]["kind"], "auto_reply")
        # The browser retrying the same POST is answered as a duplicate.
        st, j = self.send(sid, FAQ_QUESTION, "c1")
        self.assertTrue(j["duplicate"])

    def test_agent_reply_and_survey_reach_the_visitor_and_the_rating_is_recorded(self):
        sid = self.session()
        st, j = self.send(sid, TICKET_TEXT, "t1")
        self.assertEqual(j["action"], "new_ticket", j)
        first = self.poll(sid)
        ticket = route_again(self.server, "CHANNEL_WEBCHAT", sid, sid + ":t1").ticket_id
        agent_call(self.server, "helpwire.v1.Tickets/AddMessage", ticket_id=ticket,
                   kind="MESSAGE_KIND_AGENT_REPLY", text="Looking into it now.")
        ev = self.poll(sid, after=first[-1]["id"])
        self.assertEqual(ev[0]["kind"], "agent_reply")
        self.assertEqual(ev[0]["text"], "Looking into it now.")
        closed = agent_call(self.server, "helpwire.v1.Tickets/CloseTicket", ticket_id=ticket, resolution="ok")
        ev = self.poll(sid, after=ev[-1]["id"])
        self.assertEqual(ev[0]["kind"], "survey_invitation")
        self.assertEqual(ev[0]["survey_url"], closed.survey_url)
        # The link opens the rating page here, which calls SubmitSurvey.
        self.assertTrue(closed.survey_url.startswith(self.bridge.url + "/survey/"))
        st, _, page = fc.http_request(closed.survey_url)
        self.assertEqual(st, 200)
        token = closed.survey_url.rsplit("/", 1)[1]
        st, j = get_json(self.bridge.url + "/api/survey?token=" + fc.quote(token))
        self.assertEqual(st, 200, j)
        self.assertFalse(j["answered"])
        st, j = post_json(self.bridge.url + "/api/survey", {"token": token, "rating": 5, "comment": "great"})
        self.assertEqual(st, 200, j)
        self.assertEqual(j["rating"], 5)
        st, j = post_json(self.bridge.url + "/api/survey", {"token": token, "rating": 1})
        self.assertEqual(st, 409, j)
        st, j = post_json(self.bridge.url + "/api/survey", {"token": "A" * 22, "rating": 3})
        self.assertEqual(st, 404, j)

    def test_a_long_reply_is_one_event_in_the_web_chat(self):
        sid = self.session()
        st, j = self.send(sid, TICKET_TEXT, "l1")
        first = self.poll(sid)
        ticket = route_again(self.server, "CHANNEL_WEBCHAT", sid, sid + ":l1").ticket_id
        text = long_reply(10000)
        rep = agent_call(self.server, "helpwire.v1.Tickets/AddMessage", ticket_id=ticket,
                         kind="MESSAGE_KIND_AGENT_REPLY", text=text)
        self.assertEqual(len(rep.outbox_seqs), 1)
        ev = self.poll(sid, after=first[-1]["id"])
        self.assertEqual([e["text"] for e in ev], [text])

    def test_messages_queued_while_the_bridge_is_down_arrive_once(self):
        sid = self.session()
        st, j = self.send(sid, TICKET_TEXT, "r1")
        first = self.poll(sid)
        ticket = route_again(self.server, "CHANNEL_WEBCHAT", sid, sid + ":r1").ticket_id
        self.assertEqual(type(self).bridge.stop(), 0)
        agent_call(self.server, "helpwire.v1.Tickets/AddMessage", ticket_id=ticket,
                   kind="MESSAGE_KIND_AGENT_REPLY", text="Sent while you were away.")
        type(self).bridge = start_webchat(self.server.address, self.server.bridge_token(),
                                          "127.0.0.1:%d" % self.webchat_port, self.state)
        ev = self.poll(sid, after=first[-1]["id"])
        self.assertEqual([e["text"] for e in ev], ["Sent while you were away."])
        time.sleep(2.5)
        self.assertEqual(self.poll(sid, after=ev[-1]["id"], want=1, timeout=1), [])


if __name__ == "__main__":
    hwtest.main()
