"""examples_test: the example clients of clients/examples (Python with
grpcio and protoc-generated code, Node.js with @grpc/grpc-js and
@grpc/proto-loader, Go with grpc-go and protoc-gen-go/protoc-gen-go-grpc)
against the real helpwired --demo: each routes a question the FAQ answers
(the answer's text is printed), then a message that opens a ticket, and
prints the ticket's CREATED event from its WatchTickets stream. A wrong
token or a token of the wrong role ends an example with exit status 1 and
the status code.

The code is generated here, into the test's temporary directory: Python
with protoc and grpc_python_plugin, Go with clients/examples/go/build.sh
(GOPATH mode over Debian's /usr/share/gocode, offline). Node.js takes its
npm packages from tests/js/node_modules (the same pinned versions as the
example's package.json; installed by bazel/setup.sh)."""
import json
import os
import re
import shutil
import signal
import subprocess
import unittest

import hwclient
import hwtest

API = hwclient.Api()
SETUP_HINT = "run `bash bazel/setup.sh --no-build`"
FAQ_ANSWER = 'On the sign-in page choose "Forgot password"'


def runfile(rel):
    return os.path.abspath(hwclient.find_file(rel, rel))


def proto_dir():
    """proto/ as the test sees it (runfiles): helpwire/v1/*.proto."""
    return os.path.dirname(os.path.dirname(os.path.dirname(runfile("proto/helpwire/v1/router.proto"))))


def js_modules():
    """The source tree's tests/js/node_modules (through the real path of a
    file that runfiles link to)."""
    return os.path.join(os.path.dirname(os.path.realpath(runfile("tests/js/package.json"))), "node_modules")


def tmpdir():
    d = os.environ.get("TEST_TMPDIR")
    if not d:
        import tempfile
        d = tempfile.mkdtemp(prefix="examples_test.")
    return d


class Examples(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.out = os.path.join(tmpdir(), "examples")
        shutil.rmtree(cls.out, ignore_errors=True)
        os.makedirs(cls.out)
        protos = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(os.path.join(proto_dir(), "helpwire", "v1"))
                        for f in fs if f.endswith(".proto"))
        # Python: messages and stubs.
        cls.py_out = os.path.join(cls.out, "python")
        os.makedirs(cls.py_out)
        cls.py_gen = subprocess.run(
            ["protoc", "-I" + proto_dir(), "--python_out=" + cls.py_out, "--grpc_python_out=" + cls.py_out,
             "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin"] + protos,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
        # Go: generated code and the binary.
        cls.go_build = subprocess.run(
            ["bash", runfile("clients/examples/go/build.sh"), os.path.join(cls.out, "go")],
            env=dict(os.environ, HELPWIRE_PROTO=proto_dir()),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
        cls.server = hwclient.Server("--demo")

    @classmethod
    def tearDownClass(cls):
        assert cls.server.stop() == 0, cls.server.read_log()

    def command(self, lang):
        if lang == "python":
            self.assertEqual(self.py_gen.returncode, 0, "protoc --python_out:\n" + self.py_gen.stdout)
            return ["/usr/bin/python3", runfile("clients/examples/python/helpwire_example.py")], \
                {"PYTHONPATH": self.py_out}
        if lang == "node":
            node = shutil.which("node") or shutil.which("nodejs")
            self.assertTrue(node, "node is not installed: " + SETUP_HINT)
            for pkg in ("@grpc/grpc-js", "@grpc/proto-loader"):
                self.assertTrue(os.path.isdir(os.path.join(js_modules(), pkg)),
                                "%s is missing from %s: %s" % (pkg, js_modules(), SETUP_HINT))
            return [node, runfile("clients/examples/node/helpwire_example.js")], \
                {"NODE_PATH": js_modules(), "HELPWIRE_PROTO": proto_dir()}
        self.assertEqual(self.go_build.returncode, 0, "clients/examples/go/build.sh:\n" + self.go_build.stdout)
        return [os.path.join(self.out, "go", "bin", "helpwire-example")], {}

    def run_example(self, lang, token, agent_token=None, via_env=False):
        argv, extra = self.command(lang)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HELPWIRE_")}
        env.update(extra)
        if agent_token:
            env["HELPWIRE_AGENT_TOKEN"] = agent_token
        if via_env:
            env.update(HELPWIRE_ADDRESS=self.server.address, HELPWIRE_TOKEN=token)
        else:
            argv = argv + [self.server.address, token]
        # Python dumps every thread's stack on SIGABRT, Go every goroutine's
        # on SIGQUIT: a run that hangs fails with where it hung.
        env["PYTHONFAULTHANDLER"] = "1"
        p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGQUIT if lang == "go" else signal.SIGABRT)
            try:
                out, err = p.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
            self.fail("%s example still running after 60 s:\n%s%s" % (lang, out, err))
        return p.returncode, out, err

    def check_success(self, lang, **kw):
        rc, out, err = self.run_example(lang, **kw)
        self.assertEqual(rc, 0, "%s example failed:\n%s%s" % (lang, out, err))
        lines = out.splitlines()
        self.assertEqual(len(lines), 3, out)
        self.assertTrue(lines[0].startswith("route: ROUTE_ACTION_AUTO_REPLY " + FAQ_ANSWER), out)
        m = re.fullmatch(r"route: ROUTE_ACTION_NEW_TICKET ticket=(t-\d+) queue=technical", lines[1])
        self.assertTrue(m, out)
        ticket_id = m.group(1)
        self.assertRegex(lines[2], r"^event: TICKET_EVENT_KIND_CREATED ticket=%s queue=technical( cursor=\S+)?$"
                         % re.escape(ticket_id))
        # The ticket is stored, for the example's own customer.
        admin = self.server.client(api=API, role="admin")
        try:
            t = admin.call("helpwire.v1.Tickets/GetTicket", ticketId=ticket_id).ticket
            c = admin.call("helpwire.v1.Customers/GetCustomer", customerId=t.customer_id)
        finally:
            admin.close()
        self.assertEqual(t.queue, "technical")
        users = [i.channel_user_id for i in c.identities]
        self.assertEqual(len(users), 1, c)
        self.assertTrue(users[0].startswith("example-%s-" % lang), c)
        return ticket_id

    def check_refused(self, lang, token, code, **kw):
        rc, out, err = self.run_example(lang, token, **kw)
        self.assertEqual(rc, 1, "%s example with a bad token:\n%s%s" % (lang, out, err))
        self.assertRegex(out.splitlines()[-1] if out else "", "^error: %s " % code, out + err)

    # -- each language: the admin token, from the arguments and from the environment
    def test_python(self):
        self.check_success("python", token=self.server.tokens["admin"])

    def test_node(self):
        self.check_success("node", token=self.server.tokens["admin"])

    def test_go(self):
        self.check_success("go", token=self.server.tokens["admin"])

    def test_environment_and_split_tokens(self):
        """HELPWIRE_ADDRESS/HELPWIRE_TOKEN, with a bridge token for Route and
        an agent token in HELPWIRE_AGENT_TOKEN for the watch: every run opens
        a ticket of its own."""
        seen = set()
        for lang in ("python", "node", "go"):
            seen.add(self.check_success(lang, token=self.server.tokens["bridge"],
                                        agent_token=self.server.tokens["agent"], via_env=True))
        self.assertEqual(len(seen), 3)

    def test_wrong_token(self):
        for lang in ("python", "node", "go"):
            with self.subTest(lang=lang):
                self.check_refused(lang, "hw_not-a-real-token", "UNAUTHENTICATED")

    def test_bridge_token_may_not_watch(self):
        for lang in ("python", "node", "go"):
            with self.subTest(lang=lang):
                self.check_refused(lang, self.server.tokens["bridge"], "PERMISSION_DENIED")

    def test_node_example_pins_what_the_test_runs(self):
        with open(runfile("clients/examples/node/package.json")) as f:
            example = json.load(f)["dependencies"]
        with open(runfile("tests/js/package.json")) as f:
            tests = json.load(f)["dependencies"]
        for pkg, version in example.items():
            self.assertEqual(tests.get(pkg), version, "clients/examples/node/package.json and tests/js differ on " + pkg)


if __name__ == "__main__":
    hwtest.main()
