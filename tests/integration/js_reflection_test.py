"""js_reflection_test: a client from another gRPC implementation. Node.js
with @grpc/grpc-js discovers the API through server reflection
(tests/js/reflection_client.js, grpc-js-reflection-client), through
grpc.reflection.v1 and through v1alpha, then calls Router.Route with the
bridge token against the real helpwired.

The npm packages live in the source tree's tests/js/node_modules (installed
by bazel/setup.sh with `npm ci`, never committed); the script comes in
through runfiles, and its real path leads back to that directory."""
import json
import os
import shutil
import subprocess
import unittest

from google.protobuf import descriptor_pb2

import hwclient
import hwtest

API = hwclient.Api()
SETUP_HINT = "run `bash bazel/setup.sh` (it runs `npm ci --prefix tests/js`)"


def protoset():
    fds = descriptor_pb2.FileDescriptorSet()
    with open(hwclient.find_file("proto/helpwire.protoset", "proto/helpwire.protoset"), "rb") as f:
        fds.ParseFromString(f.read())
    return fds


def js_dir():
    """The real tests/js directory of the source tree."""
    script = hwclient.find_file("tests/js/reflection_client.js", "tests/js/reflection_client.js")
    return os.path.dirname(os.path.realpath(script))


class JsReflectionClient(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = hwclient.Server("--demo")

    @classmethod
    def tearDownClass(cls):
        assert cls.server.stop() == 0, cls.server.read_log()

    def node(self):
        node = shutil.which("node") or shutil.which("nodejs")
        if not node:
            self.fail("node is not installed: " + SETUP_HINT)
        return node

    def run_client(self, token, version="v1alpha"):
        d = js_dir()
        modules = os.path.join(d, "node_modules")
        for pkg in ("@grpc/grpc-js", "@grpc/proto-loader", "grpc-js-reflection-client"):
            if not os.path.isdir(os.path.join(modules, pkg)):
                self.fail("%s is missing from %s: %s" % (pkg, modules, SETUP_HINT))
        env = dict(os.environ, NODE_PATH=modules)
        return subprocess.run([self.node(), os.path.join(d, "reflection_client.js"), self.server.address, token,
                               version],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=60)

    def test_reflection_then_route(self):
        for version in ("v1", "v1alpha"):
            with self.subTest(version=version):
                self.reflection_then_route(version)

    def reflection_then_route(self, version):
        p = self.run_client(self.server.tokens["bridge"], version)
        err = p.stderr.decode(errors="replace")
        self.assertEqual(p.returncode, 0, "reflection_client.js failed:\n" + err + "\n" + self.server.read_log())
        listed = [l for l in err.splitlines() if l.startswith("services: ")]
        self.assertEqual(len(listed), 1, err)
        services = listed[0].split()[1:]
        for s in ("helpwire.v1.Router", "helpwire.v1.Knowledge", "helpwire.v1.Customers", "helpwire.v1.Agents",
                  "helpwire.v1.Tickets", "helpwire.v1.Surveys", "helpwire.v1.Outbox", "grpc.health.v1.Health"):
            self.assertIn(s, services)
        # Every service of the descriptor set is listed, nothing more.
        expected = sorted(f.package + "." + s.name for f in protoset().file for s in f.service)
        self.assertEqual(sorted(services), expected)
        reply = json.loads(p.stdout.decode())
        # The seed FAQ answers 如何重置密码: an auto-reply, no ticket.
        self.assertEqual(reply["action"], "ROUTE_ACTION_AUTO_REPLY")
        self.assertIn("密码", reply["reply_text"])
        self.assertTrue(reply["customer_id"])
        self.assertEqual(reply["ticket_id"], "")
        self.assertTrue(reply["hits"] and reply["hits"][0]["id"] == "faq-reset-password", reply)
        # The customer the Node client created is there for Python too.
        admin = self.server.client(api=API, role="admin")
        c = admin.call("helpwire.v1.Customers/GetCustomer", customerId=reply["customer_id"])
        self.assertEqual(c.id, reply["customer_id"])
        admin.close()

    def test_a_wrong_token_fails_the_client(self):
        p = self.run_client("hw_not-a-real-token", "v1")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("UNAUTHENTICATED", p.stderr.decode(errors="replace"))

    def test_an_unknown_reflection_version_fails_the_client(self):
        p = self.run_client(self.server.tokens["bridge"], "v2")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("VERSION is v1 or v1alpha", p.stderr.decode(errors="replace"))


if __name__ == "__main__":
    hwtest.main()
