"""js_errors_test: helpwire's structured errors from Node.js. The client
(tests/js/errors_client.js, @grpc/grpc-js) reads grpc-status-details-bin
from the trailing metadata of failed calls and decodes google.rpc.Status
with protobufjs from proto/google/rpc; here its findings are checked
against the error model (docs/errors.md).

The npm packages live in the source tree's tests/js/node_modules (installed
by bazel/setup.sh with `npm ci`); protobufjs comes with
@grpc/proto-loader, pinned by package-lock.json."""
import json
import os
import shutil
import subprocess
import unittest

import hwclient
import hwtest

SETUP_HINT = "run `bash bazel/setup.sh` (it runs `npm ci --prefix tests/js`)"


def js_dir():
    script = hwclient.find_file("tests/js/errors_client.js", "tests/js/errors_client.js")
    return os.path.dirname(os.path.realpath(script))


class JsErrors(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = hwclient.Server("--demo")

    @classmethod
    def tearDownClass(cls):
        assert cls.server.stop() == 0, cls.server.read_log()

    def run_client(self):
        node = shutil.which("node") or shutil.which("nodejs")
        if not node:
            self.fail("node is not installed: " + SETUP_HINT)
        d = js_dir()
        modules = os.path.join(d, "node_modules")
        for pkg in ("@grpc/grpc-js", "protobufjs"):
            if not os.path.isdir(os.path.join(modules, pkg)):
                self.fail("%s is missing from %s: %s" % (pkg, modules, SETUP_HINT))
        env = dict(os.environ, NODE_PATH=modules)
        p = subprocess.run([node, os.path.join(d, "errors_client.js"), self.server.address,
                            self.server.tokens["admin"], self.server.tokens["bridge"]],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace") + self.server.read_log())
        return {r["call"]: r for r in map(json.loads, p.stdout.decode().splitlines())}

    def test_node_decodes_the_details(self):
        got = self.run_client()
        self.assertEqual(sorted(got), ["bad_field", "denied", "no_token", "unknown_id"])
        expected = {  # call: (gRPC code, ErrorInfo reason, method)
            "bad_field": (3, "INVALID_FIELD", "/helpwire.v1.Tickets/GetTicket"),
            "unknown_id": (5, "NOT_FOUND", "/helpwire.v1.Tickets/GetTicket"),
            "denied": (7, "PERMISSION_DENIED", "/helpwire.v1.Tickets/ListTickets"),
            "no_token": (16, "UNAUTHENTICATED", "/helpwire.v1.Tickets/ListTickets"),
        }
        for name, (code, reason, method) in expected.items():
            r = got[name]
            self.assertEqual(r["code"], code, r)
            st = r.get("status")
            self.assertIsNotNone(st, "no grpc-status-details-bin seen by Node: %r" % r)
            self.assertEqual(st["code"], code)
            self.assertEqual(st["message"], r["message"])
            info = [d for d in st["details"] if d["@type"] == "google.rpc.ErrorInfo"]
            self.assertEqual(len(info), 1, st)
            self.assertEqual(info[0]["reason"], reason)
            self.assertEqual(info[0]["domain"], "helpwire.io")
            self.assertEqual(info[0]["metadata"]["method"], method)
        bad = got["bad_field"]["status"]["details"]
        br = [d for d in bad if d["@type"] == "google.rpc.BadRequest"]
        self.assertEqual(br[0]["field_violations"][0]["field"], "ticket_id")
        self.assertEqual([d["@type"] for d in got["unknown_id"]["status"]["details"]], ["google.rpc.ErrorInfo"])


if __name__ == "__main__":
    hwtest.main()
