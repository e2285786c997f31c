"""security_test: tokens and roles, revocation, the actor in history,
overload shedding and online backup, through the real helpwired."""
import os
import tempfile
import threading
import time
import unittest
import urllib.request

import grpc

import hwclient
import hwtest

API = hwclient.Api()
TG = "CHANNEL_TELEGRAM"


class Tokens(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = hwclient.Server("--demo")
        cls.admin = cls.server.client(api=API, role="admin")

    @classmethod
    def tearDownClass(cls):
        cls.admin.close()
        assert cls.server.stop() == 0, cls.server.read_log()

    def code(self, client, path, **fields):
        try:
            client.call(path, **fields)
            return grpc.StatusCode.OK
        except grpc.RpcError as e:
            return e.code()

    def test_demo_prints_one_token_per_role(self):
        self.assertEqual(sorted(self.server.tokens), ["admin", "agent", "bridge"])
        self.assertTrue(all(len(t) >= 40 for t in self.server.tokens.values()))

    def test_missing_or_unknown_token_is_unauthenticated_and_writes_nothing(self):
        for token in ("", "hw_not-a-real-token"):
            c = self.server.client(api=API, token=token)
            with self.assertRaises(grpc.RpcError) as cm:
                c.call("helpwire.v1.Router/Route", channel=TG, channelUserId="intruder", text="hi", messageId="x1")
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
            c.close()
        with self.assertRaises(grpc.RpcError) as cm:
            self.admin.call("helpwire.v1.Customers/LookupCustomer", channel=TG, channelUserId="intruder")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
        # Health needs no token.
        c = self.server.client(api=API, token="")
        self.assertEqual(c.call("grpc.health.v1.Health/Check").status, 1)
        c.close()

    def test_roles(self):
        bridge = self.server.client(api=API, role="bridge")
        agent = self.server.client(api=API, role="agent")
        try:
            self.assertEqual(self.code(bridge, "helpwire.v1.Tickets/ListTickets"), grpc.StatusCode.PERMISSION_DENIED)
            self.assertEqual(self.code(bridge, "helpwire.v1.Knowledge/PutFaq",
                                       faq={"question": "q", "answer": "a"}), grpc.StatusCode.PERMISSION_DENIED)
            self.assertEqual(self.code(agent, "helpwire.v1.Knowledge/PutArticle",
                                       article={"title": "t", "body": "b"}), grpc.StatusCode.PERMISSION_DENIED)
            self.assertEqual(self.code(agent, "helpwire.v1.Admin/ListTokens"), grpc.StatusCode.PERMISSION_DENIED)
            self.assertEqual(self.code(agent, "helpwire.v1.Router/Route", channel=TG, channelUserId="u",
                                       text="hi", messageId="r1"), grpc.StatusCode.PERMISSION_DENIED)
            self.assertEqual(self.code(agent, "helpwire.v1.Tickets/ListTickets"), grpc.StatusCode.OK)
            self.assertEqual(self.code(agent, "helpwire.v1.Knowledge/Search", query="refund"), grpc.StatusCode.OK)
            self.assertEqual(self.code(bridge, "helpwire.v1.Customers/LookupCustomer", channel=TG,
                                       channelUserId="nobody"), grpc.StatusCode.NOT_FOUND)
            # Nothing was written by the refused PutFaq.
            faqs = self.admin.call("helpwire.v1.Knowledge/ListFaqs").faqs
            self.assertNotIn("q", [f.question for f in faqs])
            # An agent token only sets its own presence.
            self.assertEqual(self.code(agent, "helpwire.v1.Agents/SetPresence", agentId="bob",
                                       presence="PRESENCE_AWAY"), grpc.StatusCode.PERMISSION_DENIED)
            self.assertEqual(self.code(agent, "helpwire.v1.Agents/SetPresence", agentId="alice",
                                       presence="PRESENCE_ONLINE"), grpc.StatusCode.OK)
        finally:
            bridge.close()
            agent.close()

    def test_history_takes_the_actor_from_the_token(self):
        made = self.admin.call("helpwire.v1.Admin/CreateToken", role="ROLE_AGENT", agentId="bob",
                               description="bob's console")
        self.assertTrue(made.token.startswith("hw_"))
        self.assertEqual(made.info.agent_id, "bob")
        bob = self.server.client(api=API, token=made.token)
        bridge = self.server.client(api=API, role="bridge")
        r = bridge.call("helpwire.v1.Router/Route", channel=TG, channelUserId="actor-1", displayName="A",
                        text="I was charged twice, please refund the payment", messageId="actor-1")
        self.assertEqual(r.queue, "billing")
        bob.call("helpwire.v1.Tickets/AddMessage", ticketId=r.ticket_id, kind="MESSAGE_KIND_AGENT_REPLY",
                 text="Refund issued")
        hist = self.admin.call("helpwire.v1.Tickets/GetTicketHistory", ticketId=r.ticket_id).events
        self.assertEqual(hist[-1].actor, "agent:bob")
        self.assertTrue(hist[0].actor.startswith("customer:"))
        # The secret is never listed.
        listed = self.admin.call("helpwire.v1.Admin/ListTokens").tokens
        self.assertIn(made.info.id, [t.id for t in listed])
        # Revoked: refused at once.
        self.admin.call("helpwire.v1.Admin/RevokeToken", id=made.info.id)
        with self.assertRaises(grpc.RpcError) as cm:
            bob.call("helpwire.v1.Tickets/ListTickets")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        bob.close()
        bridge.close()

    def test_token_requests_are_checked(self):
        self.assertEqual(self.code(self.admin, "helpwire.v1.Admin/CreateToken", role="ROLE_AGENT"),
                         grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(self.code(self.admin, "helpwire.v1.Admin/CreateToken", role="ROLE_AGENT",
                                   agentId="nobody"), grpc.StatusCode.NOT_FOUND)
        self.assertEqual(self.code(self.admin, "helpwire.v1.Admin/RevokeToken", id="tok-999"),
                         grpc.StatusCode.NOT_FOUND)

    def test_backup_makes_a_missing_directory_owner_only(self):
        parent = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        os.chmod(parent, 0o755)
        target = os.path.join(parent, "nightly")
        r = self.admin.call("helpwire.v1.Admin/Backup", directory=target)
        self.assertGreater(r.size_bytes, 0)
        self.assertEqual(os.stat(target).st_mode & 0o7777, 0o700)
        self.assertEqual(os.stat(os.path.join(target, "data.mdb")).st_mode & 0o7777, 0o600)
        # A missing parent is not made: the operator named a wrong path.
        missing = os.path.join(parent, "no", "such")
        with self.assertRaises(grpc.RpcError) as cm:
            self.admin.call("helpwire.v1.Admin/Backup", directory=missing)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(cm.exception.details(),
                         "directory: %s: cannot create the directory: No such file or directory" % missing)
        self.assertFalse(os.path.exists(os.path.join(parent, "no")))

    def test_online_backup_is_a_working_store(self):
        target = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        r = self.admin.call("helpwire.v1.Admin/Backup", directory=target)
        self.assertGreater(r.size_bytes, 0)
        # Owner-only, as the live store: it holds token hashes and messages.
        self.assertEqual(os.stat(os.path.join(target, "data.mdb")).st_mode & 0o7777, 0o600)
        with self.assertRaises(grpc.RpcError) as cm:
            self.admin.call("helpwire.v1.Admin/Backup", directory=target)  # not empty any more
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(cm.exception.details(), "directory: %s: it holds a data.mdb already" % target)
        copy = hwclient.Server(data_dir=target)
        try:
            c = copy.client(api=API, token=self.server.tokens["admin"])
            faqs = c.call("helpwire.v1.Knowledge/ListFaqs").faqs
            self.assertIn("如何重置密码", [f.question for f in faqs])
            stats = c.call("helpwire.v1.Admin/GetStats")
            self.assertGreater(stats.faqs, 0)
            self.assertGreater(stats.index_terms, 0)
            c.close()
        finally:
            self.assertEqual(copy.stop(), 0)


class Overload(unittest.TestCase):
    def test_adaptive_limit_follows_latency(self):
        # A 1 µs target is always missed, so each 100 ms window with calls
        # halves the limit until it rests at the minimum, 4; twelve callers
        # then find it full.
        server = hwclient.Server("--demo", "--latency-target-us", "1", "--metrics", "127.0.0.1:0",
                                 "--sender-rate", "0")  # overload, not one sender's limit

        def limit():
            with urllib.request.urlopen(server.metrics_url, timeout=10) as r:
                text = r.read().decode()
            return int([l for l in text.splitlines() if l.startswith("helpwire_admission_limit ")][0].split()[1])

        try:
            self.assertEqual(limit(), 64)  # the first value
            stop = threading.Event()
            outcomes = []

            def hammer(k):
                c = server.client(api=API, role="bridge")
                i = 0
                while not stop.is_set():
                    i += 1
                    try:
                        c.call("helpwire.v1.Router/Route", channel=TG, channelUserId="ad-%d" % k, displayName="A",
                               text="where is my parcel %d" % i, messageId="ad-%d-%d" % (k, i))
                        outcomes.append("OK")
                    except grpc.RpcError as e:
                        outcomes.append(e.code().name)
                        if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                            self.assertIn("overloaded", e.details())
                c.close()

            threads = [threading.Thread(target=hammer, args=(k,)) for k in range(12)]
            for t in threads:
                t.start()
            deadline = time.time() + 20
            while limit() != 4 and time.time() < deadline:
                time.sleep(0.1)
            low = limit()
            n_before = len(outcomes)
            while len(outcomes) < n_before + 200 and time.time() < deadline:
                time.sleep(0.05)
            stop.set()
            for t in threads:
                t.join()
            self.assertEqual(low, 4)
            self.assertIn("OK", outcomes)
            self.assertIn("RESOURCE_EXHAUSTED", outcomes)
            self.assertEqual(set(outcomes) - {"OK", "RESOURCE_EXHAUSTED"}, set())
            health = server.client(api=API, token="")
            self.assertEqual(health.call("grpc.health.v1.Health/Check").status, 1)  # exempt
            health.close()
        finally:
            self.assertEqual(server.stop(), 0)

    def test_calls_beyond_the_bound_are_shed_at_once(self):
        server = hwclient.Server("--demo", "--max-in-flight", "1", "--threads", "2", "--metrics", "127.0.0.1:0",
                                 "--sender-rate", "0")
        outcomes = []
        details = []
        admitted = []

        def hammer(k):
            c = server.client(api=API, role="bridge")
            for i in range(40):
                try:
                    r = c.call("helpwire.v1.Router/Route", channel=TG, channelUserId="load-%d" % k,
                               displayName="L", text="my parcel never arrived %d" % i, messageId="ov-%d-%d" % (k, i))
                    outcomes.append("OK")
                    admitted.append(("ov-%d-%d" % (k, i), "load-%d" % k, r))
                except grpc.RpcError as e:
                    outcomes.append(e.code().name)
                    details.append(e.details())
            c.close()

        threads = [threading.Thread(target=hammer, args=(k,)) for k in range(12)]
        for t in threads:
            t.start()
        health = server.client(api=API, token="")
        health_ok = health.call("grpc.health.v1.Health/Check").status == 1  # exempt from the bound
        for t in threads:
            t.join()
        health.close()
        try:
            self.assertTrue(health_ok)
            self.assertIn("OK", outcomes)
            self.assertIn("RESOURCE_EXHAUSTED", outcomes)
            self.assertEqual(set(outcomes) - {"OK", "RESOURCE_EXHAUSTED"}, set())
            self.assertIn("overloaded", details[0])
            with urllib.request.urlopen(server.metrics_url, timeout=10) as r:
                text = r.read().decode()
            shed = int([l for l in text.splitlines() if l.startswith("helpwire_calls_shed_total ")][0].split()[1])
            self.assertEqual(shed, outcomes.count("RESOURCE_EXHAUSTED"))
            # Nothing admitted is lost: every acknowledged message is stored
            # (asking again returns the same reply as a duplicate).
            c = server.client(api=API, role="bridge")
            def route_again(mid, user):
                # Still bounded at 1 call: a shed answer is retried, as clients should.
                for _ in range(100):
                    try:
                        return c.call("helpwire.v1.Router/Route", channel=TG, channelUserId=user,
                                      displayName="L", text="ignored", messageId=mid)
                    except grpc.RpcError as e:
                        if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                            raise
                        time.sleep(0.02)
                self.fail("still shed after 100 tries")

            for mid, user, first in admitted:
                again = route_again(mid, user)
                self.assertTrue(again.duplicate, mid)
                self.assertEqual(again.customer_id, first.customer_id)
                self.assertEqual(again.ticket_id, first.ticket_id)
            c.close()
        finally:
            self.assertEqual(server.stop(), 0)


if __name__ == "__main__":
    hwtest.main()
