"""failover_test: clients given several helpwired addresses keep working
when the first one dies. `--server A,B` (the CLI) and `--helpwire A,B` (the
bridges) become the gRPC core's static target with pick_first
(clients/lib/channel.h): a call made while A is down goes to B, a CLI call
at once, a bridge's Route through its usual retry of UNAVAILABLE.

Two independent helpwired processes on free ports with the same tokens
(hwclient.same_token_servers) stand in for replicas: what is tested is the
client side, not replication. The first is killed with SIGKILL, as a
crashed replica would be.
"""
import json
import os
import signal
import subprocess
import time
import unittest

import bridges_test as bt
import hwclient
import hwtest

API = hwclient.Api()
CLI = hwclient.find_file("clients/cli/helpwire", "clients/cli/helpwire")


def run_cli(server_arg, token, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPWIRE_")}
    env["HELPWIRE_TOKEN"] = token
    return subprocess.run([CLI, "--server", server_arg, "--timeout-ms", "10000"] + list(args), env=env,
                          capture_output=True, text=True, timeout=60)


def customers(server):
    c = server.client(api=API, role="admin")
    try:
        return c.call("helpwire.v1.Admin/GetStats").customers
    finally:
        c.close()


class Failover(unittest.TestCase):
    def setUp(self):
        self.a, self.b = hwclient.same_token_servers(2)
        self.token = self.a.tokens["admin"]
        self.both = "%s,%s" % (self.a.address, self.b.address)
        self.bridge = None

    def tearDown(self):
        if self.bridge:
            self.assertEqual(self.bridge.stop(), 0, self.bridge.read_log())
        if self.a.proc.poll() is None:
            self.a.stop()
        self.assertEqual(self.b.stop(), 0, self.b.read_log())

    def kill_first(self):
        self.a.signal(signal.SIGKILL)
        self.a.wait()

    def test_cli_call_with_the_first_address_dead_goes_to_the_second(self):
        self.kill_first()
        alone = run_cli(self.a.address, self.token, "stats")
        self.assertEqual(alone.returncode, 1, alone.stderr)
        self.assertIn("UNAVAILABLE", alone.stderr)
        p = run_cli(self.both, self.token, "--json", "stats")
        self.assertEqual(p.returncode, 0, p.stderr)
        stats = json.loads(p.stdout)
        self.assertGreater(stats["articles"] + stats["faqs"], 0, stats)  # the demo's knowledge, from B

    def test_cli_names_a_host_name_inside_a_list_as_a_usage_error(self):
        p = run_cli(self.a.address + ",localhost:1", self.token, "stats")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("localhost:1", p.stderr)

    def test_bridge_routes_through_the_second_address_after_the_first_dies(self):
        self.bridge = bt.start_webchat(self.both, self.a.tokens["bridge"])
        url = self.bridge.url
        st, sess = bt.post_json(url + "/api/session", {"name": "Ana"})
        self.assertEqual(st, 200, sess)
        st, j = bt.post_json(url + "/api/messages", {"session_id": sess["session_id"], "text": bt.TICKET_TEXT})
        self.assertIn(st, (200, 202), j)
        self.assertTrue(self.bridge.wait_log("routed", count=1), self.bridge.read_log())
        before_b = customers(self.b)

        self.kill_first()
        st, sess = bt.post_json(url + "/api/session", {"name": "Bo"})
        self.assertEqual(st, 200, sess)
        st, j = bt.post_json(url + "/api/messages", {"session_id": sess["session_id"], "text": bt.TICKET_TEXT})
        self.assertIn(st, (200, 202), j)
        self.assertTrue(self.bridge.wait_log("routed", count=2, timeout=30), self.bridge.read_log())
        # The second customer exists on B: the Route reached the second address.
        self.assertEqual(customers(self.b), before_b + 1)
        self.assertEqual(self.bridge.events("dead_letter"), [])


if __name__ == "__main__":
    hwtest.main()
