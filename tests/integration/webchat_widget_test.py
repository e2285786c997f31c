"""webchat_widget_test: the embeddable web chat widget in a real browser.

Headless Chromium (Debian's) driven by puppeteer-core (tests/js/
widget_driver.js, one command at a time, so the test acts as an agent on
helpwired between two steps of the visitor) loads a host page served from
another origin than the bridge, with a hostile stylesheet, that embeds the
widget with one script tag. Against the real helpwired (--demo) and the
real webchat-bridge, the visitor: asks a question the FAQ answers (shown
as the bot), opens a ticket, reloads and sees the history, sees the agent
typing (Tickets.SendChannelSignal), gets the agent's reply with a link and
an image (AddMessage with an attachment: the image renders), sends a file
(the ticket has it, same bytes), rates the conversation with the in-chat
stars (the survey has the rating); in Chinese with a zh browser; outside
business hours (a back-at line, an email taken); keyboard only; on a
375x667 phone without horizontal scrolling. Every accent follows the
operator's colour, with readable text on it. A file dropped on the panel
(a real drop event carrying a File) reaches the ticket; replies arrive by
long poll when Server-Sent Events are off or refused; a second tab of the
same visitor shows the same conversation live. Without the CORS
allowlist's origin, the widget's calls are refused.

A step that needs a part of helpwired this tree does not have yet (the
Attachments service, channel signals, GetSchedule for the bridge role) is
skipped with the status helpwired answered, never passed.

Screenshots (desktop and mobile, English and Chinese) are written to the
test's undeclared outputs; tests/js/widget_screenshots.sh copies them to
docs/.

The npm packages live in the source tree's tests/js/node_modules
(installed by bazel/setup.sh with `npm ci`); Chromium is Debian's.
"""
import base64
import datetime
import functools
import hashlib
import http.server
import json
import os
import select
import shutil
import struct
import subprocess
import tempfile
import threading
import time
import unittest
import zlib

import grpc

import bridges_test as bt
import fake_channels as fc
import hwclient
import hwtest

SETUP_HINT = "run `bash bazel/setup.sh` (it installs chromium and fonts-wqy-zenhei and runs `npm ci --prefix tests/js`)"
TMP = os.environ.get("TEST_TMPDIR") or tempfile.gettempdir()
SHOTS = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR") or os.environ.get("HW_WIDGET_SHOTS")
UNIMPLEMENTED = (grpc.StatusCode.UNIMPLEMENTED,)


def source_path(rel):
    return os.path.realpath(hwclient.find_file(rel, rel))


def png(width, height, rgb):
    """A solid-colour PNG of width x height."""
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


HOSTILE_CSS = """
* { font-family: "Comic Sans MS", fantasy !important; color: #ff0000 !important;
    box-sizing: content-box !important; letter-spacing: 3px !important; }
div, p, button, img, textarea, input, span, a { border: 4px solid #ff00ff !important;
    margin: 12px !important; padding: 9px !important; }
button { background: #00ff00 !important; border-radius: 0 !important; }
body { font-size: 30px; line-height: 3; }
helpwire-chat, helpwire-chat * { display: none !important; }
.hidden { color: #0000ff !important; }
"""

HOST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Acme shop</title>
<style>%(css)s</style></head>
<body>
<h1>Acme shop</h1>
<p class="hidden title bubble panel" id="host-para">The host page's own text, classes the widget also uses.</p>
<a href="#top" id="host-link">A link of the host page</a>
<input id="host-input" aria-label="search the shop">
<script src="%(bridge)s/widget.js" async %(attrs)s></script>
</body></html>
"""


class StaticServer:
    """The host site: serves a directory on 127.0.0.1, a free port."""

    def __init__(self, directory):
        handler = functools.partial(Quiet, directory=directory)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.origin = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class Driver:
    """tests/js/widget_driver.js: one JSON command per line, one answer."""

    def __init__(self, tc):
        node = shutil.which("node") or shutil.which("nodejs")
        if not node:
            tc.fail("node is not installed: " + SETUP_HINT)
        js = os.path.dirname(source_path("tests/js/widget_driver.js"))
        modules = os.path.join(js, "node_modules")
        if not os.path.isdir(os.path.join(modules, "puppeteer-core")):
            tc.fail("puppeteer-core is missing from %s: %s" % (modules, SETUP_HINT))
        chromium = None
        for name in ("chromium", "chromium-browser"):
            chromium = shutil.which(name, path="/usr/bin:/bin")
            if chromium:
                break
        if not chromium:
            tc.fail("chromium is not installed: " + SETUP_HINT)
        # Chromium's profile (with its socket, whose path must stay short).
        self.home = tempfile.mkdtemp(prefix="hww-", dir="/tmp")
        self.err_path = os.path.join(self.home, "driver.err")
        self.err = open(self.err_path, "wb")
        env = dict(os.environ, NODE_PATH=modules, HOME=self.home, TMPDIR=self.home)
        self.proc = subprocess.Popen([node, os.path.join(js, "widget_driver.js"), chromium], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.err, env=env)
        self.buf = b""

    def stderr(self):
        self.err.flush()
        with open(self.err_path, "rb") as f:
            return f.read().decode(errors="replace")[-6000:]

    def __call__(self, op, timeout=30, **args):
        args["op"] = op
        self.proc.stdin.write((json.dumps(args) + "\n").encode())
        self.proc.stdin.flush()
        deadline = time.time() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.time()
            r, _, _ = select.select([fd], [], [], max(0, left))
            if not r:
                raise AssertionError("the browser did not answer %s within %ss\n%s" % (op, timeout, self.stderr()))
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError("the browser driver exited\n" + self.stderr())
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        answer = json.loads(line)
        if not answer["ok"]:
            raise AssertionError("%s %s: %s\n%s" % (op, json.dumps(args)[:300], answer["error"], self.stderr()))
        return answer["value"]

    def wait(self, js, timeout_ms=15000):
        return self("wait", js=js, timeout_ms=timeout_ms, timeout=timeout_ms / 1000 + 10)

    def close(self):
        try:
            self.proc.stdin.write(b'{"op":"quit"}\n')
            self.proc.stdin.close()
            self.proc.wait(timeout=20)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        self.err.close()
        shutil.rmtree(self.home, ignore_errors=True)


# What the page shows, read in the widget's shadow root (W).
ROWS = """Array.from(W.querySelectorAll('.log .row:not(.greeting)')).map(r => ({
  who: r.classList.contains('visitor') ? 'visitor' : r.classList.contains('agent') ? 'agent' : 'bot',
  kind: r.dataset.kind, text: r.querySelector('.bubble').textContent,
  name: r.querySelector('.who').textContent, avatar: (r.querySelector('.avatar') || {}).textContent || '',
  time: r.querySelector('.time').textContent, pending: r.classList.contains('pending')}))"""
PANEL_OPEN = "W && !W.querySelector('.panel').classList.contains('hidden')"
# Every coloured thing in the panel whose hue is not the accent's (hue of
# rgb list `accent`): greys and faint tints (chroma under 0.12), the unread
# badge, the gold stars and error red aside.
OFF_ACCENT = """((accent) => { const hc = (r, g, b) => { const mx = Math.max(r, g, b), mn = Math.min(r, g, b), d = mx - mn;
    let h = 0; if (d) h = mx === r ? ((g - b) / d) % 6 : mx === g ? (b - r) / d + 2 : (r - g) / d + 4;
    return [(h * 60 + 360) % 360, d / 255]; };
  const want = hc(...accent)[0], bad = [];
  for (const e of W.querySelectorAll('.panel *')) {
    if (e.closest('.badge, .star, .notice.error, .failed, .hidden, img')) continue;
    const cs = getComputedStyle(e);
    for (const p of ['color', 'background-color', 'border-top-color', 'fill']) {
      const m = cs[p] && cs[p].match(/rgba?\\((\\d+), (\\d+), (\\d+)(?:, ([\\d.]+))?/);
      if (!m || m[4] === '0') continue;
      const [h, c] = hc(+m[1], +m[2], +m[3]);
      if (c > 0.12 && Math.min(Math.abs(h - want), 360 - Math.abs(h - want)) > 10)
        bad.push((e.className.baseVal !== undefined ? 'svg' : e.className) + ' ' + p + ' ' + cs[p]);
    }
  }
  return bad; })"""
COLOURS = """(() => { const c = (s, p) => getComputedStyle(W.querySelector(s))[p];
  return {header: c('.header', 'backgroundColor'), title: c('.title', 'color'), status: c('.status', 'color'),
    send: c('.send', 'backgroundColor'), sendInk: c('.send', 'color'),
    visitor: c('.row.visitor .bubble', 'backgroundColor'), visitorInk: c('.row.visitor .bubble', 'color'),
    botAvatar: c('.row.bot .avatar', 'color'), botAvatarBg: c('.row.bot .avatar', 'backgroundColor'),
    strong: getComputedStyle(W.querySelector('.root')).getPropertyValue('--hw-strong').trim()}; })()"""


def rgb(css):
    """[r, g, b] of "rgb(r, g, b)" or "#rrggbb"."""
    if css.startswith("#"):
        return [int(css[i:i + 2], 16) for i in (1, 3, 5)]
    return [int(float(x)) for x in css[css.index("(") + 1:css.index(")")].split(",")[:3]]


def contrast(a, b):
    """The WCAG contrast ratio of two colours."""
    def lum(c):
        v = [x / 255 for x in rgb(c)]
        v = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in v]
        return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]
    x, y = lum(a), lum(b)
    return (max(x, y) + 0.05) / (min(x, y) + 0.05)

READY = "W && !W.querySelector('.root').classList.contains('hidden') && " \
        "getComputedStyle(W.querySelector('.launcher')).position === 'fixed'"


class Widget(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="hw-widget-", dir=TMP)
        cls.webchat_port = bt.free_port()
        cls.server = hwclient.Server("--demo", "--sender-rate", "0", "--new-customers-rate", "0",
                                     "--survey-base-url", "http://127.0.0.1:%d/survey/" % cls.webchat_port)
        cls.site_dir = os.path.join(cls.tmp, "site")
        os.makedirs(cls.site_dir)
        cls.site = StaticServer(cls.site_dir)
        cls.other_site = StaticServer(cls.site_dir)  # not in --allowed-origins
        cls.bridge = bt.start_webchat(cls.server.address, cls.server.tokens["bridge"],
                                      "127.0.0.1:%d" % cls.webchat_port, None, "--allowed-origins", cls.site.origin,
                                      "--widget-color", "#0f766e")
        cls.write_page("index.html", cls.bridge.url)
        cls.write_page("left.html", cls.bridge.url, 'data-position="left" data-color="#7c3aed"')
        cls.write_page("yellow.html", cls.bridge.url, 'data-color="#facc15"')
        cls.write_page("poll.html", cls.bridge.url, 'data-transport="poll"')
        cls.image = png(64, 40, (220, 38, 38))

    @classmethod
    def tearDownClass(cls):
        rc = cls.bridge.stop()
        cls.site.close()
        cls.other_site.close()
        assert cls.server.stop() == 0, cls.server.read_log()
        assert rc == 0, cls.bridge.read_log()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def write_page(cls, name, bridge_url, attrs=""):
        with open(os.path.join(cls.site_dir, name), "w") as f:
            f.write(HOST_PAGE % {"css": HOSTILE_CSS, "bridge": bridge_url, "attrs": attrs})

    def setUp(self):
        self.b = Driver(self)
        self.skipped = []

    def tearDown(self):
        self.b.close()

    # ------------------------------------------------------------ helpers

    def call(self, path, role="agent", **fields):
        c = self.server.client(role=role)
        try:
            return c.call(path, **fields)
        finally:
            c.close()

    def try_call(self, what, path, role="agent", **fields):
        """A call a part of helpwired not yet in this tree may not answer:
        None (and the step noted as skipped) when UNIMPLEMENTED."""
        try:
            return self.call(path, role=role, **fields)
        except grpc.RpcError as e:
            if e.code() in UNIMPLEMENTED or (e.code() == grpc.StatusCode.PERMISSION_DENIED and role == "bridge"):
                self.skipped.append("%s: %s %s" % (what, e.code().name, e.details()))
                return None
            raise

    def open_page(self, page="index.html", lang="en-US", width=1280, height=800, mobile=False,
                  tz="Europe/Berlin", origin=None):
        self.b("page", lang=lang, width=width, height=height, mobile=mobile, tz=tz)
        self.b("goto", url="%s/%s" % (origin or self.site.origin, page))
        self.b.wait(READY)

    def open_panel(self):
        self.b("click", js="W.querySelector('.launcher')")
        self.b.wait(PANEL_OPEN)

    def rows(self):
        return self.b("eval", js=ROWS)

    def send(self, text):
        self.b("eval", js="W.querySelector('.input').focus()")
        self.b("type", text=text)
        self.b("press", key="Enter")

    def wait_rows(self, pred_js, timeout_ms=15000):
        """Waits until a row satisfies pred_js (over r = a row as ROWS gives
        it); returns the rows."""
        self.b.wait("(%s).some(r => %s)" % (ROWS, pred_js), timeout_ms)
        return self.rows()

    def ticket_of_visitor(self):
        sid = self.b("eval", js="window.__helpwireWidget.sessionId()")
        self.assertTrue(sid)
        cust = self.call("helpwire.v1.Customers/LookupCustomer", channel="CHANNEL_WEBCHAT", channel_user_id=sid)
        tickets = self.call("helpwire.v1.Tickets/ListTickets", customer_id=cust.id).tickets
        self.assertTrue(tickets, "no ticket for the visitor")
        return sid, cust, tickets[0]

    def upload_attachment(self, data, kind, mime, name):
        req = bt.API.message("helpwire.v1.PutChunkRequest")
        req.data = data  # raw bytes (as keyword fields they would be read as base64)
        c = self.try_call("agent image", "helpwire.v1.Attachments/PutChunk", request=req)
        if c is None:
            return None
        return self.call("helpwire.v1.Attachments/CommitAttachment", chunks=[c.chunk_sha256], kind=kind,
                         mime_type=mime, name=name)

    def shot(self, name):
        if SHOTS:
            self.b("screenshot", path=os.path.join(SHOTS, name))

    def assert_no_horizontal_overflow(self):
        o = self.b("eval", js="""({doc: document.documentElement.scrollWidth, win: innerWidth,
          log: W.querySelector('.log').scrollWidth - W.querySelector('.log').clientWidth,
          bubbles: Array.from(W.querySelectorAll('.bubble')).filter(b => b.scrollWidth > b.clientWidth + 1).length,
          panel: W.querySelector('.panel').getBoundingClientRect().right})""")
        self.assertLessEqual(o["doc"], o["win"], o)
        self.assertLessEqual(o["log"], 0, o)
        self.assertEqual(o["bubbles"], 0, o)
        self.assertLessEqual(o["panel"], o["win"] + 0.5, o)

    def report_skips(self):
        if self.skipped:
            print("\n  steps skipped (helpwired lacks them here): " + "; ".join(self.skipped))

    # -------------------------------------------------------------- tests

    def test_the_host_page_s_styles_do_not_reach_in_and_the_widget_s_do_not_leak_out(self):
        self.open_page()
        look = self.b("eval", js="""(() => { const l = W.querySelector('.launcher'), s = getComputedStyle(l);
          const p = getComputedStyle(document.getElementById('host-para'));
          return {bg: s.backgroundColor, border: s.borderTopWidth, display: s.display, font: s.fontFamily,
                  right: s.right, rootColor: getComputedStyle(W.querySelector('.root')).color,
                  rootFont: getComputedStyle(W.querySelector('.root')).fontFamily,
                  spacing: getComputedStyle(W.querySelector('.root')).letterSpacing,
                  hostParaDisplay: p.display, hostParaColor: p.color,
                  host: getComputedStyle(document.querySelector('helpwire-chat')).display}; })()""")
        self.assertEqual(look["bg"], "rgb(15, 118, 110)", look)  # --widget-color, not the host's lime
        self.assertEqual(look["border"], "0px", look)
        self.assertEqual(look["display"], "flex", look)
        self.assertNotIn("Comic", look["rootFont"], look)
        self.assertNotEqual(look["rootColor"], "rgb(255, 0, 0)", look)
        self.assertIn(look["spacing"], ("normal", "0px"), look)
        self.assertEqual(look["right"], "20px", look)
        self.assertEqual(look["host"], "block", look)
        # The widget's .hidden {display:none} stays in its shadow root.
        self.assertEqual(look["hostParaDisplay"], "block", look)
        self.assertEqual(look["hostParaColor"], "rgb(0, 0, 255)", look)
        # The script tag's data- attributes win over the bridge's settings.
        self.b("goto", url=self.site.origin + "/left.html")
        self.b.wait(READY)
        look = self.b("eval", js="""(() => { const s = getComputedStyle(W.querySelector('.launcher'));
          return {bg: s.backgroundColor, left: s.left}; })()""")
        self.assertEqual(look, {"bg": "rgb(124, 58, 237)", "left": "20px"})

    def test_a_conversation_with_the_bot_an_agent_an_image_typing_and_stars(self):
        self.open_page()
        self.open_panel()
        self.b.wait("W.querySelector('.greeting') && W.querySelector('.greeting').textContent.includes('Ask us')")
        self.assertEqual(self.b("eval", js="W.querySelector('.title').textContent"), "Chat with us")
        # A question the FAQ answers: the bot answers, shown as the bot.
        self.send("How do I reset my password?")
        rows = self.wait_rows("r.who === 'bot' && r.text.includes('Forgot password')")
        bot = [r for r in rows if r["who"] == "bot"][0]
        self.assertEqual(bot["name"], "Assistant")
        self.assertEqual(bot["kind"], "auto_reply")
        self.assertRegex(bot["time"], r"\d{1,2}:\d\d")
        self.assertEqual(rows[0]["who"], "visitor")
        self.assertEqual(rows[0]["text"], "How do I reset my password?")
        # A message that needs a person: a ticket, acknowledged.
        self.send(bt.TICKET_TEXT)
        self.wait_rows("r.kind === 'acknowledgement'")
        before = [(r["who"], r["text"]) for r in self.rows() if not r["pending"]]
        # Reload: the whole conversation comes back from the bridge.
        self.b("reload")
        self.b.wait(READY)
        self.b.wait("(%s).length >= %d" % (ROWS, len(before)))
        self.assertEqual([(r["who"], r["text"]) for r in self.rows()], before)
        self.open_panel()
        sid, cust, ticket = self.ticket_of_visitor()
        # The agent types: the visitor sees it.
        sig = self.try_call("typing", "helpwire.v1.Tickets/SendChannelSignal", ticket_id=ticket.id,
                            signal="CHANNEL_SIGNAL_TYPING")
        if sig is not None:
            self.assertTrue(sig.delivered, sig)
            typing = self.b.wait("!W.querySelector('.typing').classList.contains('hidden') && "
                                 "W.querySelector('.typing').textContent", 8000)
            self.assertIn("is typing", typing)
        # The agent's reply with a link and an image.
        att = self.upload_attachment(self.image, "ATTACHMENT_KIND_IMAGE", "image/png", "refund-form.png")
        reply_text = ("Here is the form to fill in, see https://example.com/help/refunds/" + "x" * 60 +
                      "?order=4711 and we will do the rest.")
        fields = {"ticket_id": ticket.id, "kind": "MESSAGE_KIND_AGENT_REPLY", "text": reply_text}
        if att is not None:
            fields["attachments"] = [{"id": att.id, "kind": "ATTACHMENT_KIND_IMAGE", "mime_type": "image/png",
                                      "name": "refund-form.png"}]
        self.call("helpwire.v1.Tickets/AddMessage", **fields)
        rows = self.wait_rows("r.who === 'agent'")
        agent = [r for r in rows if r["who"] == "agent"][0]
        self.assertTrue(agent["name"] and agent["name"] != "Assistant", agent)
        self.assertEqual(agent["avatar"], agent["name"][0].upper())
        self.b.wait("W.querySelector('.typing').classList.contains('hidden')")  # the reply ends the typing
        link = self.b("eval", js="""(() => { const a = W.querySelector('.row.agent .bubble a[href^="https://example.com"]');
          return a && {href: a.href, rel: a.rel, target: a.target, text: a.textContent}; })()""")
        self.assertEqual(link["href"], "https://example.com/help/refunds/" + "x" * 60 + "?order=4711")
        self.assertIn("noopener", link["rel"])
        self.assertEqual(link["target"], "_blank")
        if att is not None:
            w = self.b.wait("(() => { const i = W.querySelector('.row.agent img.image'); "
                            "return i && i.complete && i.naturalWidth; })()")
            self.assertEqual(w, 64)
        # The visitor sends a file: the ticket has it, the same bytes.
        photo = os.path.join(self.tmp, "receipt.png")
        data = png(120, 80, (37, 99, 235))
        with open(photo, "wb") as f:
            f.write(data)
        self.b("upload", js="W.querySelector('.file-input')", path=photo)
        self.b.wait("(() => { const r = Array.from(W.querySelectorAll('.log .row.visitor')).pop(); "
                    "return r && !r.classList.contains('pending') && r.querySelector('img'); })()")
        failed = self.b("eval", js="W.querySelector('.row.failed') ? W.querySelector('.notice.error').textContent : ''")
        if failed and att is None:  # helpwired has no Attachments service here
            self.skipped.append("visitor upload: " + failed)
        else:
            self.assertFalse(failed)
            got = self.wait_for_attachment(ticket.id, "receipt.png")
            self.assertEqual(got.sha256, hashlib.sha256(data).hexdigest())
            self.assertEqual(got.size_bytes, len(data))
            self.assertEqual(got.mime_type, "image/png")
        # The ticket is closed: the survey arrives as stars in the chat.
        closed = self.call("helpwire.v1.Tickets/CloseTicket", ticket_id=ticket.id, resolution="done")
        self.b.wait("W.querySelector('.survey .star')")
        self.b.wait("(() => { const i = W.querySelector('.row.agent img.image'); return !i || i.naturalWidth; })()")
        self.shot("widget-desktop.png")
        self.b("click", js="W.querySelectorAll('.survey .star')[3]")
        self.assertEqual(self.b("eval", js="W.querySelectorAll('.survey .star.on').length"), 4)
        self.b("eval", js="W.querySelector('.survey textarea').focus()")
        self.b("type", text="Quick and kind.")
        self.b("click", js="W.querySelector('.survey .submit')")
        thanks = self.b.wait("W.querySelector('.survey .thanks') && W.querySelector('.survey .thanks').textContent")
        self.assertEqual(thanks, "Thank you for your feedback!")
        token = closed.survey_url.rsplit("/", 1)[1]
        survey = self.call("helpwire.v1.Surveys/GetSurvey", role="bridge", token=token)
        self.assertEqual(survey.rating, 4)
        self.assertEqual(survey.comment, "Quick and kind.")
        # After a reload the answered survey reads as answered.
        self.b("reload")
        self.b.wait(READY)
        self.b.wait("W.querySelector('.survey .thanks')")
        self.report_skips()

    def wait_for_attachment(self, ticket_id, name, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            t = self.call("helpwire.v1.Tickets/GetTicket", ticket_id=ticket_id, include_messages=True)
            for m in t.messages:
                for a in m.attachments:
                    if a.name == name:
                        return a
            time.sleep(0.2)
        self.fail("the ticket has no attachment %s" % name)

    def test_in_chinese_with_a_chinese_browser(self):
        self.open_page(lang="zh-CN", tz="Asia/Shanghai")
        self.open_panel()
        words = self.b("eval", js="""({title: W.querySelector('.title').textContent,
          greeting: W.querySelector('.greeting .bubble').textContent, placeholder: W.querySelector('.input').placeholder,
          lang: W.querySelector('.root').lang, font: getComputedStyle(W.querySelector('.root')).fontFamily})""")
        self.assertEqual(words["title"], "在线客服")
        self.assertEqual(words["placeholder"], "请输入消息")
        self.assertIn("您好", words["greeting"])
        self.assertEqual(words["lang"], "zh")
        self.send(bt.FAQ_QUESTION)
        rows = self.wait_rows("r.who === 'bot' && r.text.includes('忘记密码')")
        self.assertEqual([r for r in rows if r["who"] == "bot"][0]["name"], "智能助手")
        self.send("我的订单 4711 被重复扣款了，请帮我退款")
        self.wait_rows("r.kind === 'acknowledgement'")
        sid, cust, ticket = self.ticket_of_visitor()
        self.call("helpwire.v1.Tickets/AddMessage", ticket_id=ticket.id, kind="MESSAGE_KIND_AGENT_REPLY",
                  text="您好，已为您办理退款，款项会在 5–7 个工作日内原路退回。详情见 https://example.com/退款")
        self.wait_rows("r.who === 'agent'")
        self.call("helpwire.v1.Tickets/CloseTicket", ticket_id=ticket.id, resolution="done")
        q = self.b.wait("W.querySelector('.survey .question') && W.querySelector('.survey .question').textContent")
        self.assertEqual(q, "请为本次服务评分")
        self.shot("widget-zh.png")
        # Chinese glyphs have a font: a Han character is as wide as two Latin ones at most, not a box.
        widths = self.b("eval", js="""(() => { const c = document.createElement('canvas').getContext('2d');
          c.font = '15px ' + getComputedStyle(W.querySelector('.root')).fontFamily;
          return {han: c.measureText('客服在线').width, tofu: c.measureText('\\u{10FFFD}\\u{10FFFD}\\u{10FFFD}\\u{10FFFD}').width}; })()""")
        self.assertGreater(widths["han"], 0)

    def test_a_phone_gets_the_whole_screen_and_nothing_scrolls_sideways(self):
        self.open_page(width=375, height=667, mobile=True)
        self.open_panel()
        rect = self.b("eval", js="""(() => { const r = W.querySelector('.panel').getBoundingClientRect();
          return [r.left, r.top, r.width, r.height]; })()""")
        self.assertEqual(rect, [0, 0, 375, 667])
        self.send("How do I reset my password?")
        self.wait_rows("r.who === 'bot' && r.text.includes('Forgot password')")
        long_url = "https://example.com/" + "very-long-path-segment/" * 8 + "?utm_source=chat&utm_medium=widget"
        self.send("This page does not load for me: " + long_url)
        self.wait_rows("r.kind === 'acknowledgement'")
        sid, cust, ticket = self.ticket_of_visitor()
        self.call("helpwire.v1.Tickets/AddMessage", ticket_id=ticket.id, kind="MESSAGE_KIND_AGENT_REPLY",
                  text="Thanks! Please try again now: " + long_url)
        self.wait_rows("r.who === 'agent'")
        self.call("helpwire.v1.Tickets/CloseTicket", ticket_id=ticket.id, resolution="done")
        self.b.wait("W.querySelector('.survey .star')")
        self.assert_no_horizontal_overflow()
        self.shot("widget-mobile.png")
        self.b("press", key="Escape")
        self.b.wait("W.querySelector('.panel').classList.contains('hidden')")
        self.assert_no_horizontal_overflow()

    def test_keyboard_only(self):
        self.open_page()
        # Tab from the host page's own controls to the launcher.
        for _ in range(8):
            self.b("press", key="Tab")
            if self.b("eval", js="W.activeElement === W.querySelector('.launcher')"):
                break
        else:
            self.fail("Tab never reached the launcher")
        aria = self.b("eval", js="""({label: W.querySelector('.launcher').getAttribute('aria-label'),
          expanded: W.querySelector('.launcher').getAttribute('aria-expanded')})""")
        self.assertEqual(aria, {"label": "Open chat", "expanded": "false"})
        self.b("press", key="Enter")
        self.b.wait(PANEL_OPEN)
        self.assertTrue(self.b("eval", js="W.activeElement === W.querySelector('.input')"))
        self.b("type", text="What is your refund policy?")
        self.b("press", key="Enter")
        self.wait_rows("r.who === 'bot' && r.text.includes('refund')")
        # Focus stays in the open panel, both ways round.
        seen = set()
        for shift in (False, True):
            for _ in range(12):
                self.b("press", key="Tab", shift=shift)
                where = self.b("eval", js="""document.activeElement === document.querySelector('helpwire-chat') &&
                  W.querySelector('.panel').contains(W.activeElement) ? W.activeElement.className : 'OUT'""")
                self.assertNotEqual(where, "OUT")
                seen.add(where)
        self.assertTrue({"close", "input", "icon-button attach", "icon-button send"} <= seen, seen)
        a11y = self.b("eval", js="""({role: W.querySelector('.panel').getAttribute('role'),
          modal: W.querySelector('.panel').getAttribute('aria-modal'),
          live: W.querySelector('.log').getAttribute('aria-live'), logRole: W.querySelector('.log').getAttribute('role'),
          labels: Array.from(W.querySelectorAll('button, textarea, input:not(.file-input)'))
            .filter(e => !(e.getAttribute('aria-label') || e.textContent.trim() || e.labels && e.labels.length)).length})""")
        self.assertEqual(a11y, {"role": "dialog", "modal": "true", "live": "polite", "logRole": "log", "labels": 0})
        self.b("press", key="Escape")
        self.b.wait("W.querySelector('.panel').classList.contains('hidden')")
        self.assertTrue(self.b("eval", js="W.activeElement === W.querySelector('.launcher')"))

    def test_outside_business_hours_it_says_when_the_team_is_back_and_takes_an_email(self):
        # A queue open only on a weekday two days away (UTC), so closed now.
        day = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=2)).isoweekday()
        self.call("helpwire.v1.Agents/PutSkill", role="admin",
                  skill={"name": "weekend-desk", "keywords": ["zzz"],
                         "hours": {"timeZone": "UTC", "days": [{"weekday": day, "ranges": [
                             {"openMinute": 9 * 60, "closeMinute": 17 * 60}]}]}})
        if self.try_call("schedule", "helpwire.v1.Agents/GetSchedule", role="bridge", skill="weekend-desk") is None:
            self.skipTest("; ".join(self.skipped))
        port = bt.free_port()
        bridge = bt.start_webchat(self.server.address, self.server.tokens["bridge"], "127.0.0.1:%d" % port, None,
                                  "--hours-skill", "weekend-desk")
        try:
            self.write_page("hours.html", bridge.url)
            self.open_page("hours.html", tz="America/New_York")
            self.open_panel()
            line = self.b.wait("!W.querySelector('.away').classList.contains('hidden') && "
                               "W.querySelector('.status').textContent")
            # The header says the team is away and when it is back; 09:00 UTC is 4 or 5 AM in New York.
            self.assertRegex(line, r"^We're away right now\. We'll be back on \w+day, \w+ \d+ at [45]:00 AM\.$")
            panel = self.b("eval", js="W.querySelector('.panel').innerText")
            self.assertNotIn("within minutes", panel)
            greeting = self.b("eval", js="W.querySelector('.greeting .bubble').textContent")
            self.assertEqual(greeting, "Hi! Leave us a message and we'll answer as soon as we're back.")
            self.assertEqual(panel.count("away right now"), 1, panel)
            # The default colour (blue) everywhere, not a leftover teal.
            self.assertEqual(self.b("eval", js=OFF_ACCENT + "([37, 99, 235])"), [])
            self.shot("widget-away.png")
            self.b("eval", js="W.querySelector('.email').focus()")
            self.b("type", text="not-an-address")
            self.send("Can someone call me back tomorrow?")
            self.b.wait("W.querySelector('.notice.error')")
            self.assertEqual(self.b("eval", js="W.querySelector('.notice.error').textContent"),
                             "Please enter a valid email address.")
            self.b("eval", js="(W.querySelector('.email').value = '', W.querySelector('.email').focus())")
            self.b("type", text="mei@example.com")
            self.send("Can someone call me back tomorrow?")
            self.b.wait("(%s).some(r => r.who === 'visitor' && !r.pending)" % ROWS)
            sid = self.b("eval", js="window.__helpwireWidget.sessionId()")
            deadline = time.time() + 10
            while time.time() < deadline:
                cust = self.call("helpwire.v1.Customers/LookupCustomer", channel="CHANNEL_WEBCHAT",
                                 channel_user_id=sid)
                if cust.email:
                    break
                time.sleep(0.2)
            if not cust.email and not self.route_keeps_contact_email():
                self.skipTest("helpwired here ignores RouteRequest.contact_email")
            self.assertEqual(cust.email, "mei@example.com")
        finally:
            self.assertEqual(bridge.stop(), 0, bridge.read_log())

    def test_every_accent_follows_the_operator_s_colour_with_readable_text_on_it(self):
        for page, accent, ink in (("left.html", "#7c3aed", "rgb(255, 255, 255)"),
                                  ("yellow.html", "#facc15", "rgb(17, 24, 39)")):
            with self.subTest(page=page):
                self.open_page(page)
                self.open_panel()
                self.send("How do I reset my password?")
                self.wait_rows("r.who === 'bot' && r.text.includes('Forgot password')")
                self.b.wait("(%s).every(r => !r.pending)" % ROWS)
                self.b("eval", js="W.querySelector('.input').blur()")
                c = self.b("eval", js=COLOURS)
                for k in ("header", "send", "visitor"):
                    self.assertEqual(rgb(c[k]), rgb(accent), (k, c))
                for k in ("title", "status", "sendInk", "visitorInk"):
                    self.assertEqual(c[k], ink, (k, c))
                self.assertGreaterEqual(contrast(c["header"], c["title"]), 4.5, c)
                # Links, icons and focus on white: the accent darkened until it reads (4.5:1).
                self.assertGreaterEqual(contrast(c["strong"], "#ffffff"), 4.5, c)
                self.assertEqual(rgb(c["botAvatar"]), rgb(c["strong"]), c)
                self.assertGreaterEqual(contrast(c["botAvatar"], c["botAvatarBg"]), 3, c)
                off = self.b("eval", js=OFF_ACCENT + "(%s)" % json.dumps(rgb(accent)))
                self.assertEqual(off, [], "not the operator's colour")

    def test_a_file_dropped_on_the_panel_reaches_the_ticket(self):
        self.open_page()
        self.open_panel()
        self.send(bt.TICKET_TEXT)
        self.wait_rows("r.kind === 'acknowledgement'")
        sid, cust, ticket = self.ticket_of_visitor()
        # Dragged over: the panel says where to drop; dragged away: it does not.
        self.b("drag", js="W.querySelector('.log')", events=["dragenter", "dragover"])
        self.assertTrue(self.b("eval", js="!W.querySelector('.drop').classList.contains('hidden')"))
        self.assertEqual(self.b("eval", js="W.querySelector('.drop').textContent"), "Drop a file to send it")
        self.b("drag", js="W.querySelector('.log')", events=["dragleave"])
        self.assertTrue(self.b("eval", js="W.querySelector('.drop').classList.contains('hidden')"))
        # A page of HTML is not a file the bridge takes: said at once, nothing sent.
        self.b("drag", js="W.querySelector('.log')", events=["dragenter", "dragover", "drop"],
               files=[{"name": "page.html", "type": "text/html", "base64": base64.b64encode(b"<b>x</b>").decode()}])
        self.assertEqual(self.b.wait("W.querySelector('.notice.error') && W.querySelector('.notice.error').textContent"),
                         "This type of file cannot be sent.")
        # A photo dropped: shown at once, sent, the same bytes on the ticket.
        data = png(90, 60, (22, 163, 74))
        sent = self.b("drag", js="W.querySelector('.log')", events=["dragenter", "dragover", "drop"],
                      files=[{"name": "dropped.png", "type": "image/png", "base64": base64.b64encode(data).decode()}])
        self.assertEqual(sent, [False, False, False])  # the widget took each event (preventDefault)
        self.assertTrue(self.b("eval", js="W.querySelector('.drop').classList.contains('hidden')"))
        self.b.wait("(() => { const r = Array.from(W.querySelectorAll('.log .row.visitor')).pop(); "
                    "return r && !r.classList.contains('pending') && !r.classList.contains('failed') && "
                    "r.querySelector('img').naturalWidth === 90; })()")
        got = self.wait_for_attachment(ticket.id, "dropped.png")
        self.assertEqual(got.sha256, hashlib.sha256(data).hexdigest())
        self.assertEqual(got.mime_type, "image/png")
        # After a reload it comes from the bridge, as the visitor's.
        self.b("reload")
        self.b.wait(READY)
        self.b.wait("Array.from(W.querySelectorAll('.row.visitor img.image')).some(i => i.naturalWidth === 90)")

    def agent_types_and_replies(self, text):
        """The agent of the visitor's ticket types, then replies text."""
        sid, cust, ticket = self.ticket_of_visitor()
        sig = self.call("helpwire.v1.Tickets/SendChannelSignal", ticket_id=ticket.id, signal="CHANNEL_SIGNAL_TYPING")
        self.assertTrue(sig.delivered, sig)
        typing = self.b.wait("!W.querySelector('.typing').classList.contains('hidden') && "
                             "W.querySelector('.typing').textContent", 15000)
        self.assertIn("is typing", typing)
        self.call("helpwire.v1.Tickets/AddMessage", ticket_id=ticket.id, kind="MESSAGE_KIND_AGENT_REPLY", text=text)
        self.wait_rows("r.who === 'agent' && r.text === %s" % json.dumps(text), 20000)

    def events_requests(self):
        return self.b("eval", js="performance.getEntriesByType('resource').filter(e => "
                                 "e.name.includes('/api/events')).length")

    def test_replies_arrive_by_long_poll_when_server_sent_events_are_off_or_refused(self):
        # The site asks for the long poll (data-transport="poll"): no stream at all.
        self.open_page("poll.html")
        self.open_panel()
        self.send(bt.TICKET_TEXT)
        self.wait_rows("r.kind === 'acknowledgement'")
        self.assertEqual(self.b("eval", js="window.__helpwireWidget.transport()"), "poll")
        self.agent_types_and_replies("Polled reply: we are on it.")
        self.assertEqual(self.events_requests(), 0)
        # The bridge (or a proxy before it) refuses the stream, or the connection: after
        # three failures the widget polls, and nothing the visitor should see is lost.
        for status in (503, 0):
            with self.subTest(status=status):
                self.b("page")
                self.b("refuse", pattern="/api/events", status=status)
                self.b("goto", url=self.site.origin + "/index.html")
                self.b.wait(READY)
                self.open_panel()
                self.send(bt.TICKET_TEXT + " (%d)" % status)
                self.wait_rows("r.kind === 'acknowledgement'", 30000)
                self.b.wait("window.__helpwireWidget.transport() === 'poll'", 30000)
                self.assertGreaterEqual(self.events_requests(), 1 if status else 0)
                self.agent_types_and_replies("Reply %d after the stream failed." % status)

    def test_a_second_tab_of_the_same_visitor_shows_the_same_conversation_live(self):
        self.open_page()
        self.open_panel()
        self.send(bt.TICKET_TEXT)
        self.wait_rows("r.kind === 'acknowledgement'")
        self.b.wait("(%s).every(r => !r.pending)" % ROWS)
        first = [(r["who"], r["text"]) for r in self.rows()]
        sid = self.b("eval", js="window.__helpwireWidget.sessionId()")
        self.assertEqual(self.b("tab"), 1)
        self.b("goto", url=self.site.origin + "/index.html")
        self.b.wait(READY)
        self.assertEqual(self.b("eval", js="window.__helpwireWidget.sessionId()"), sid)
        self.b.wait("(%s).length >= %d" % (ROWS, len(first)))
        self.assertEqual([(r["who"], r["text"]) for r in self.rows()], first)
        # The second tab writes: the first shows it, as the visitor's, once.
        self.open_panel()
        self.send("Written in the second tab")
        self.b("use", index=0)
        rows = self.wait_rows("r.who === 'visitor' && r.text === 'Written in the second tab'")
        self.assertEqual(sum(r["text"] == "Written in the second tab" for r in rows), 1)
        # The agent answers: both tabs show it, the closed one with an unread badge.
        self.b("eval", js="window.__helpwireWidget.close()")
        sid, cust, ticket = self.ticket_of_visitor()
        self.call("helpwire.v1.Tickets/AddMessage", ticket_id=ticket.id, kind="MESSAGE_KIND_AGENT_REPLY",
                  text="Seen in both tabs.")
        self.wait_rows("r.who === 'agent' && r.text === 'Seen in both tabs.'")
        self.assertEqual(self.b.wait("W.querySelector('.badge:not(.hidden)') && W.querySelector('.badge').textContent"),
                         "1")
        self.b("use", index=1)
        rows = self.wait_rows("r.who === 'agent' && r.text === 'Seen in both tabs.'")
        self.assertEqual([(r["who"], r["text"]) for r in rows][:len(first)], first)
        self.assertEqual(sum(r["text"] == "Written in the second tab" for r in rows), 1)

    def test_files_a_visitor_may_not_send_are_refused_in_their_language(self):
        import urllib.request
        import urllib.error

        st, j = bt.post_json(self.bridge.url + "/api/session", {})
        sid = j["session_id"]

        def upload(data, mime, lang="en", name="f"):
            req = urllib.request.Request("%s/api/upload?session_id=%s&name=%s" % (self.bridge.url, sid, name),
                                         data=data, method="POST",
                                         headers={"Content-Type": mime, "Accept-Language": lang,
                                                  "Origin": self.site.origin})
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    return r.status, json.loads(r.read()), dict(r.headers.items())
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read()), dict(e.headers.items())

        st, j, h = upload(b"", "image/png")
        self.assertEqual((st, j["code"], j["field"]), (400, "file_empty", "file"))
        self.assertEqual(h["Access-Control-Allow-Origin"], self.site.origin)  # the page can read why
        st, j, _ = upload(b"x" * (10 * 1024 * 1024 + 1), "application/pdf")
        self.assertEqual((st, j["code"]), (413, "file_too_big"))
        self.assertEqual(j["error"], "This file is too large to send. Please send a smaller one.")
        st, j, _ = upload(b"<script>alert(1)</script>", "text/html", lang="zh-CN")
        self.assertEqual((st, j["code"]), (415, "file_type"))
        self.assertEqual(j["error"], "此处不支持发送这类文件，请换一种文件发送。")
        st, j, _ = upload(b"<svg onload=alert(1)>", "image/png")  # not what it says it is
        self.assertEqual((st, j["code"]), (415, "file_type"))
        # Nothing of it reached the history.
        st, hist = bt.get_json(self.bridge.url + "/api/history?session_id=" + sid)
        self.assertEqual(hist["events"], [])
        # A file not in this visitor's conversation is not served.
        st, _, body = fc.http_request("%s/api/attachments/a-%s?session_id=%s" % (self.bridge.url, "0" * 40, sid))
        self.assertEqual((st, json.loads(body)["code"]), (404, "no_such_file"))

    def route_keeps_contact_email(self):
        """Whether this helpwired sets a customer's email from Route."""
        user = "probe-%d" % time.time_ns()
        self.call("helpwire.v1.Router/Route", role="bridge", channel="CHANNEL_WEBCHAT", channel_user_id=user,
                  text="hello", message_id=user, contact_email="probe@example.com")
        c = self.call("helpwire.v1.Customers/LookupCustomer", channel="CHANNEL_WEBCHAT", channel_user_id=user)
        return c.email == "probe@example.com"

    def test_a_site_not_allowed_gets_nothing(self):
        st, h, body = fc.http_request(self.bridge.url + "/api/widget-config", headers={"Origin": self.other_site.origin})
        self.assertEqual(st, 403)
        self.assertEqual(json.loads(body)["code"], "origin_not_allowed")
        st, h, body = fc.http_request(self.bridge.url + "/api/widget-config", headers={"Origin": self.site.origin})
        self.assertEqual(st, 200)
        self.assertEqual(h["Access-Control-Allow-Origin"], self.site.origin)
        st, h, _ = fc.http_request(self.bridge.url + "/api/messages", "OPTIONS",
                                   headers={"Origin": self.site.origin, "Access-Control-Request-Method": "POST"})
        self.assertEqual(st, 204)
        self.assertIn("POST", h["Access-Control-Allow-Methods"])
        self.assertEqual(h["Access-Control-Allow-Origin"], self.site.origin)
        # In the browser: the other site's page shows no chat at all.
        self.b("page")
        self.b("goto", url=self.other_site.origin + "/index.html")
        time.sleep(2)
        self.assertFalse(self.b("eval", js="!!W && !W.querySelector('.root').classList.contains('hidden')"))
        self.assertIn("CORS", self.b.stderr())


if __name__ == "__main__":
    hwtest.main()
