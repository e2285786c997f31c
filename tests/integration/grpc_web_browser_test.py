"""grpc_web_browser_test: a real browser on the gRPC-Web listener. The
browser example (clients/examples/browser: @connectrpc/connect-web's
gRPC-Web transport with code protoc-gen-es generates) is built with its
build.sh, served by a small static server on another port (so the calls
are cross-origin and need --grpc-web-cors-origin), and loaded in headless
Chromium by tests/js/browser_client.js (puppeteer-core). The page calls
Route (unary), watches tickets (server streaming) while a message opens
one, and makes a call without a token; the test checks what it reports.
The same page served from an origin the server does not allow gets
nothing through.

The npm packages live in the source tree's tests/js/node_modules
(installed by bazel/setup.sh with `npm ci`); Chromium is Debian's."""
import functools
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
import unittest

import hwclient
import hwtest

SETUP_HINT = "run `bash bazel/setup.sh` (it installs chromium and runs `npm ci --prefix tests/js`)"


def source_path(rel):
    """The real path, in the source tree, of a file that comes in through runfiles."""
    return os.path.realpath(hwclient.find_file(rel, rel))


class StaticServer:
    """Serves a directory on 127.0.0.1, a free port, on a thread."""

    def __init__(self, directory):
        handler = functools.partial(QuietHandler, directory=directory)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.origin = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class Browser(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="hw-browser-", dir=os.environ.get("TEST_TMPDIR"))
        js = os.path.dirname(source_path("tests/js/browser_client.js"))
        cls.modules = os.path.join(js, "node_modules")
        cls.driver = os.path.join(js, "browser_client.js")
        site = os.path.join(cls.tmp, "site")
        build = source_path("clients/examples/browser/build.sh")
        p = subprocess.run(["bash", build, site, cls.modules], capture_output=True, timeout=120)
        if p.returncode != 0:
            raise RuntimeError("build.sh failed (%s):\n%s" % (SETUP_HINT, p.stderr.decode(errors="replace")))
        cls.site = StaticServer(site)
        cls.other_site = StaticServer(site)  # an origin the server does not allow
        cls.server = hwclient.Server("--demo", "--grpc-web-listen", "127.0.0.1:0",
                                     "--grpc-web-cors-origin", cls.site.origin)
        web = [l for l in cls.server.stdout_lines if l.startswith("helpwired grpc-web on ")]
        cls.web_url = web[0].split()[-1]

    @classmethod
    def tearDownClass(cls):
        cls.site.close()
        cls.other_site.close()
        assert cls.server.stop() == 0, cls.server.read_log()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def chromium(self):
        for name in ("chromium", "chromium-browser"):
            path = shutil.which(name, path="/usr/bin:/bin")
            if path:
                return path
        self.fail("chromium is not installed: " + SETUP_HINT)

    def load(self, origin):
        node = shutil.which("node") or shutil.which("nodejs")
        if not node:
            self.fail("node is not installed: " + SETUP_HINT)
        if not os.path.isdir(os.path.join(self.modules, "puppeteer-core")):
            self.fail("puppeteer-core is missing from %s: %s" % (self.modules, SETUP_HINT))
        tokens = self.server.tokens
        url = "%s/index.html?server=%s&bridge=%s&agent=%s" % (origin, self.web_url, tokens["bridge"],
                                                              tokens.get("agent", tokens["admin"]))
        # Chromium's profile (with its socket, whose path must stay short:
        # not under Bazel's deep test directory).
        home = tempfile.mkdtemp(prefix="hwb-", dir="/tmp")
        try:
            env = dict(os.environ, NODE_PATH=self.modules, HOME=home, TMPDIR=home)
            p = subprocess.run([node, self.driver, self.chromium(), url, "40000"], capture_output=True, env=env,
                               timeout=90)
        finally:
            shutil.rmtree(home, ignore_errors=True)
        err = p.stderr.decode(errors="replace")
        self.assertEqual(p.returncode, 0, "browser_client.js failed:\n" + err + "\n" + self.server.read_log())
        return json.loads(p.stdout.decode()), err

    def test_the_example_page_calls_route_and_watches_tickets(self):
        result, err = self.load(self.site.origin)
        self.assertNotIn("error", result, err)
        # Unary: the seed FAQ answers the question.
        self.assertEqual(result["route"]["action"], "AUTO_REPLY", result)
        self.assertIn("密码", result["route"]["replyText"])
        self.assertTrue(result["route"]["customerId"])
        # Streaming: the ticket the second message opened arrived on the watch.
        self.assertEqual(result["openingAction"], "NEW_TICKET", result)
        self.assertTrue(result["ticketId"])
        self.assertEqual(result["watch"]["ticketId"], result["ticketId"])
        self.assertEqual(result["watch"]["kind"], "CREATED")
        # The ticket is real: an agent reads it over plain gRPC.
        got = self.server.client(role="admin").call("helpwire.v1.Tickets/GetTicket", ticketId=result["ticketId"])
        self.assertEqual(got.ticket.queue, result["watch"]["queue"])
        # An error reaches the page as its gRPC code.
        self.assertEqual(result["unauthenticated"]["code"], "Unauthenticated", result)

    def test_a_page_from_another_origin_gets_nothing_through(self):
        result, err = self.load(self.other_site.origin)
        self.assertIn("error", result)
        self.assertNotIn("route", result)
        self.assertIn("CORS", err)  # Chromium says why on the console


if __name__ == "__main__":
    hwtest.main()
