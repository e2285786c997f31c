"""nginx_test: the nginx front door of docs/nginx-helpwire.conf, run as
written (only the three replica addresses and the listen port replaced) in
front of three helpwired processes: calls through nginx are spread over
all three, and once one is killed with SIGKILL every call still succeeds,
nginx re-sending a call that could not reach the dead one to another
(grpc_next_upstream); a WatchTickets stream through nginx gets its event.

The three helpwired are independent processes with the same tokens
(hwclient.same_token_servers), standing in for replicas. nginx is Debian's
(/usr/sbin/nginx), started as the current user with everything (pid,
logs, temporary files) in a temporary directory; the test is skipped,
saying so, when nginx is not installed.
"""
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import grpc

import hwclient
import hwtest

API = hwclient.Api()
NGINX = "/usr/sbin/nginx"
CALLS = 30


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def render(conf, backends, port):
    """docs/nginx-helpwire.conf with its example replicas and port replaced."""
    examples = re.findall(r"^\s*server (\S+) max_fails", conf, re.M)
    assert len(examples) == 3, examples
    for example, addr in zip(examples, backends):
        conf = conf.replace("server %s " % example, "server %s " % addr)
    conf, n = re.subn(r"^(\s*)listen \d+ http2;", r"\1listen 127.0.0.1:%d http2;" % port, conf, flags=re.M)
    assert n == 1, "the plaintext listen line was not found"
    return conf


def main_conf(tmp):
    """The nginx.conf around the include: everything in tmp."""
    user = "user root;\n" if os.geteuid() == 0 else ""
    temps = "".join("    %s_temp_path %s;\n" % (k, os.path.join(tmp, k))
                    for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return ("daemon off;\n%sworker_processes 1;\npid %s/nginx.pid;\nerror_log %s/error.log info;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            "    log_format calls '$request $status [$upstream_addr] [$upstream_status]';\n"
            "    access_log %s/access.log calls;\n%s"
            "    include %s/helpwire.conf;\n"
            "}\n") % (user, tmp, tmp, tmp, temps, tmp)


@unittest.skipUnless(os.access(NGINX, os.X_OK), "nginx is not installed (%s): apt-get install nginx" % NGINX)
class NginxFrontDoor(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.servers = hwclient.same_token_servers(3)
        cls.tmp = tempfile.mkdtemp(prefix="nginx-", dir=os.environ.get("TEST_TMPDIR"))
        cls.port = free_port()
        with open(hwclient.find_file("docs/nginx-helpwire.conf", "docs/nginx-helpwire.conf")) as f:
            conf = render(f.read(), [s.address for s in cls.servers], cls.port)
        with open(os.path.join(cls.tmp, "helpwire.conf"), "w") as f:
            f.write(conf)
        cls.conf_path = os.path.join(cls.tmp, "nginx.conf")
        with open(cls.conf_path, "w") as f:
            f.write(main_conf(cls.tmp))
        cls.nginx = subprocess.Popen([NGINX, "-c", cls.conf_path, "-p", cls.tmp, "-e", cls.tmp + "/error.log"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", cls.port), timeout=1).close()
                break
            except OSError:
                if cls.nginx.poll() is not None or time.time() > deadline:
                    cls.tearDownClass()
                    raise RuntimeError("nginx did not start: " + cls.read_error_log())
                time.sleep(0.05)
        cls.front = "127.0.0.1:%d" % cls.port

    @classmethod
    def tearDownClass(cls):
        if cls.nginx.poll() is None:
            cls.nginx.send_signal(signal.SIGQUIT)
            try:
                cls.nginx.wait(timeout=20)
            except subprocess.TimeoutExpired:
                cls.nginx.kill()
                cls.nginx.wait()
        cls.nginx.stderr.close()
        for s in cls.servers:
            if s.proc.poll() is None:
                s.stop()

    @classmethod
    def read_error_log(cls):
        try:
            with open(os.path.join(cls.tmp, "error.log")) as f:
                return f.read()
        except OSError:
            return ""

    def access_lines(self):
        with open(os.path.join(self.tmp, "access.log")) as f:
            return f.read().splitlines()

    def client(self, role):
        return hwclient.Client(self.front, api=API, token=self.servers[0].tokens[role])

    def calls(self, c, n):
        """n health checks and n authenticated reads through nginx; every one
        must succeed."""
        for i in range(n):
            reply = c.raw("grpc.health.v1.Health/Check", b"", timeout=10)
            self.assertEqual(reply, b"\x08\x01", "call %d: not SERVING" % i)  # status: SERVING
            stats = c.call("helpwire.v1.Admin/GetStats", timeout=10)
            self.assertGreater(stats.articles + stats.faqs, 0)

    def test_1_calls_are_spread_and_survive_a_killed_replica(self):
        c = self.client("admin")
        try:
            self.calls(c, CALLS // 2)
            used = {a for line in self.access_lines() for a in re.findall(r"\[([^\],]+)\]", line)
                    if ":" in a}
            self.assertEqual(used, {s.address for s in self.servers}, "calls spread over every replica")

            dead = self.servers[1]
            dead.signal(signal.SIGKILL)
            dead.wait()
            before = len(self.access_lines())
            self.calls(c, CALLS // 2)
        finally:
            c.close()
        after = self.access_lines()[before:]
        self.assertEqual(len(after), CALLS)
        self.assertTrue(all(" 200 " in line for line in after), after)
        retried = [line for line in after if dead.address in line]
        self.assertTrue(retried, "the dead replica was tried (and the call re-sent): %s" % after)
        self.assertTrue(all(re.search(r"\[%s, \S+\]" % re.escape(dead.address), line) for line in retried),
                        retried)

    def test_2_a_ticket_stream_through_nginx_gets_the_event(self):
        live = [s for s in self.servers if s.proc.poll() is None]
        agent = self.client("agent")
        stream = agent.stream("helpwire.v1.Tickets/WatchTickets", timeout=30)
        events = []
        got = threading.Event()

        def read():
            try:
                for ev in stream:
                    events.append(ev)
                    got.set()
            except grpc.RpcError:
                got.set()

        reader = threading.Thread(target=read)
        reader.start()
        try:
            # The stream went to one of the live replicas (nginx chose):
            # open a ticket on each, directly, until the stream sees one.
            deadline = time.time() + 20
            n = 0
            while not events and time.time() < deadline:
                for s in live:
                    n += 1
                    b = s.client(role="bridge")
                    try:
                        b.call("helpwire.v1.Router/Route", channel="CHANNEL_TELEGRAM", channelUserId="ng-%d" % n,
                               displayName="Via nginx", messageId="ng-%d" % n,
                               text="My invoice shows a double charge and I need a refund for order 4711")
                    finally:
                        b.close()
                got.wait(2)
        finally:
            stream.cancel()
            reader.join(10)
            agent.close()
        self.assertTrue(events, "no ticket event through nginx; nginx said: " + self.read_error_log()[-2000:])
        self.assertTrue(events[0].ticket_id)


if __name__ == "__main__":
    hwtest.main()
