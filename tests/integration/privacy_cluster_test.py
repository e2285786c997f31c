"""privacy_cluster_test: EraseCustomer and queue retention on three
replicated helpwired (raft).

- A customer whose name, e-mail and messages carry a marker word, with two
  tickets (one closed, one open) and an agent's marked reply, is on every
  replica, and a compacting Admin.Backup taken from each replica holds the
  marker (so the checks after the erasure can fail). EraseCustomer is
  called on a follower (relayed to the leader); afterwards, on EVERY
  replica: GetCustomer and LookupCustomer answer NOT_FOUND, both tickets
  are kept with their texts emptied and redacted_unix_ms set, a new
  compacting backup of that replica holds no marker while another
  customer's word is still there, and the audit log lists one
  "customer.erase" with the reason. ExportCustomer on a follower is
  refused with UNAVAILABLE (its audit write needs the leader,
  docs/privacy.md).
- Queue retention: a queue keeping closed conversations 30 days; after the
  (simulated) clock passes the period, the leader's sweep redacts the
  closed ticket and every replica applies it (texts empty, the same
  redacted_unix_ms, "retention.apply" in every replica's audit log),
  while the open ticket stays intact everywhere."""
import os
import tempfile
import time
import unittest

import grpc

import hwcluster
import hwtest

API = hwcluster.hwclient.Api()
TG = "CHANNEL_TELEGRAM"
MARK = "ZQXCLUMARKQ"
KEEP = "KEEPCLUWORDX"
ERASE = "helpwire.v1.Customers/EraseCustomer"
DAY = 24 * 3600 * 1000
T0 = 1796083200000  # 2026-12-01 00:00 UTC


def wait_for(pred):
    """hwtest.wait_for with the longer bound a cluster needs."""
    return hwtest.wait_for(pred, 20)


class PrivacyOnACluster(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="hw-privacy-cluster-", dir=os.environ.get("TEST_TMPDIR"))
        cls.clock_path = os.path.join(cls.tmp, "clock")
        cls.set_clock(T0)
        cls.cluster = hwcluster.Cluster(api=API, extra=("--demo", "--clock-file", cls.clock_path))
        try:
            cls.cluster.start()
        except Exception:
            cls.cluster.close()
            raise
        cls.clients = []

    @classmethod
    def tearDownClass(cls):
        for c in cls.clients:
            c.close()
        rcs = cls.cluster.stop()
        assert set(rcs.values()) == {0}, cls.cluster.logs()

    @classmethod
    def set_clock(cls, ms):
        hwtest.set_clock(cls.clock_path, ms)

    def client(self, replica, role="admin"):
        c = replica.client(role)
        self.clients.append(c)
        return c

    def code_of(self, client, path, **kw):
        with self.assertRaises(grpc.RpcError) as cm:
            client.call(path, **kw)
        return cm.exception.code()

    def backup_has(self, replica, name, *words):
        """Which of words a compacting Admin.Backup taken from replica holds."""
        d = os.path.join(self.tmp, "r%d-%s" % (replica.id, name))
        self.client(replica).call("helpwire.v1.Admin/Backup", directory=d, timeout=60)
        with open(os.path.join(d, "data.mdb"), "rb") as f:
            data = f.read()
        return {w for w in words if w.encode() in data}

    def test_1_erasure_through_a_follower_reaches_every_replica(self):
        cluster = self.cluster
        leader = cluster.leader()
        follower = [r for r in cluster.replicas if r is not leader][0]
        bridge, agent = self.client(leader, "bridge"), self.client(leader, "agent")
        r = bridge.call("helpwire.v1.Router/Route", channel=TG, channelUserId="tg-%s" % MARK,
                        displayName="Ann " + MARK, text="qwzx plunk %s frobnicate" % MARK,
                        messageId="tg-%s-m1" % MARK)
        cid, tid = r.customer_id, r.ticket_id
        self.assertTrue(tid, r)
        agent.call("helpwire.v1.Customers/UpdateCustomer", customerId=cid, updateMask=["name", "email"],
                   name="Ann " + MARK, email="ann.%s@example.com" % MARK)
        agent.call("helpwire.v1.Tickets/AddMessage", ticketId=tid, kind="MESSAGE_KIND_AGENT_REPLY",
                   text="Dear Ann %s, we are on it" % MARK)
        agent.call("helpwire.v1.Tickets/CloseTicket", ticketId=tid, resolution="told %s" % MARK)
        t2 = agent.call("helpwire.v1.Tickets/CreateTicket", customerId=cid, text="my %s order never came" % MARK,
                        subject="order %s" % MARK).ticket.id
        other = bridge.call("helpwire.v1.Router/Route", channel=TG, channelUserId="tg-keep-1",
                            displayName="Bob", text="qwzx plonk %s" % KEEP, messageId="tg-keep-1-m1")
        cluster.wait_converged()
        for rep in cluster.replicas:  # on every replica before, so the checks below can fail
            self.assertEqual(self.backup_has(rep, "before", MARK, KEEP), {MARK, KEEP}, rep.id)
            g = self.client(rep, "agent").call("helpwire.v1.Tickets/GetTicket", ticketId=tid, includeMessages=True)
            self.assertTrue(any(MARK in m.text for m in g.messages), rep.id)

        # Refusals through the follower change nothing.
        fadmin = self.client(follower)
        self.assertEqual(self.code_of(self.client(follower, "agent"), ERASE, customerId=cid, reason="x"),
                         grpc.StatusCode.PERMISSION_DENIED)
        self.assertEqual(self.code_of(fadmin, ERASE, customerId="c-999999", reason="x"), grpc.StatusCode.NOT_FOUND)
        self.assertEqual(self.code_of(fadmin, ERASE, customerId=cid, reason="r" * 257),
                         grpc.StatusCode.INVALID_ARGUMENT)
        # The export writes its audit entry first: a follower cannot.
        with self.assertRaises(grpc.RpcError) as cm:
            list(fadmin.stream("helpwire.v1.Customers/ExportCustomer", timeout=20, customerId=cid))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)

        e = fadmin.call(ERASE, customerId=cid, reason="GDPR request 2026-7", timeout=30)
        self.assertEqual((e.customer_id, e.tickets_redacted), (cid, 2))
        self.assertGreaterEqual(e.messages_redacted, 3)
        # The relaying follower answered once it applied the erasure: it reads it at once.
        self.assertEqual(self.code_of(self.client(follower, "agent"), "helpwire.v1.Customers/GetCustomer",
                                      customerId=cid), grpc.StatusCode.NOT_FOUND)
        cluster.wait_converged()

        for rep in cluster.replicas:
            ag, ad = self.client(rep, "agent"), self.client(rep)
            self.assertEqual(self.code_of(ag, "helpwire.v1.Customers/GetCustomer", customerId=cid),
                             grpc.StatusCode.NOT_FOUND, rep.id)
            self.assertEqual(self.code_of(ag, "helpwire.v1.Customers/LookupCustomer", channel=TG,
                                          channelUserId="tg-%s" % MARK), grpc.StatusCode.NOT_FOUND, rep.id)
            for t in (tid, t2):
                g = ag.call("helpwire.v1.Tickets/GetTicket", ticketId=t, includeMessages=True)
                self.assertEqual((g.ticket.subject, g.ticket.resolution), ("", ""), rep.id)
                self.assertEqual(g.ticket.redacted_unix_ms, e.erased_unix_ms, rep.id)
                self.assertGreaterEqual(len(g.messages), 1, rep.id)
                self.assertEqual([m.text for m in g.messages], [""] * len(g.messages), rep.id)
                h = ag.call("helpwire.v1.Tickets/GetTicketHistory", ticketId=t).events
                self.assertEqual([ev.detail for ev in h], [""] * len(h), rep.id)
            o = ag.call("helpwire.v1.Tickets/GetTicket", ticketId=other.ticket_id, includeMessages=True)
            self.assertIn(KEEP, o.messages[0].text)
            self.assertEqual(self.backup_has(rep, "after", MARK, KEEP), {KEEP}, rep.id)
            audit = ad.call("helpwire.v1.Admin/ListAuditEvents", action="customer.erase").events
            self.assertEqual([(a.target, dict(a.details)["reason"]) for a in audit],
                             [(cid, "GDPR request 2026-7")], rep.id)
        # Every replica agrees on the erased store.
        dumps = cluster.frozen_dumps()
        self.assertEqual(len(set(dumps.values())), 1,
                         hwcluster.first_difference(dumps[1], dumps[2]) or hwcluster.first_difference(dumps[1],
                                                                                                       dumps[3]))
        self.assertNotIn(MARK.encode().hex().encode(), dumps[1])  # mdb_dump prints hex
        self.assertIn(KEEP.encode().hex().encode(), dumps[1])

    def test_2_queue_retention_on_the_leader_is_applied_by_every_replica(self):
        cluster = self.cluster
        leader = cluster.leader()
        admin, bridge = self.client(leader), self.client(leader, "bridge")
        admin.call("helpwire.v1.Agents/PutSkill", skill={
            "name": "brief", "description": "brief queue", "keywords": ["brief"], "retentionDays": 30,
            "retentionAction": "RETENTION_ACTION_REDACT"})
        tickets = {}
        for name, close in (("closed", True), ("open", False)):
            cust = bridge.call("helpwire.v1.Router/Route", channel=TG, channelUserId="tg-ret-" + name,
                               displayName=name, text="hello there", messageId="m-ret-" + name).customer_id
            t = admin.call("helpwire.v1.Tickets/CreateTicket", customerId=cust, queue="brief",
                           text="My address is 12 %s Road" % MARK).ticket
            admin.call("helpwire.v1.Tickets/AddMessage", ticketId=t.id, kind="MESSAGE_KIND_AGENT_REPLY",
                       text="Done: %s Road is on file" % MARK)
            if close:
                admin.call("helpwire.v1.Tickets/CloseTicket", ticketId=t.id, skipSurvey=True,
                           resolution="changed to %s" % MARK)
            tickets[name] = t.id

        def get(rep, tid):
            r = self.client(rep).call("helpwire.v1.Tickets/GetTicket", ticketId=tid, includeMessages=True)
            return r.ticket, [m.text for m in r.messages if m.kind in (1, 2)]

        def intact(rep, tid):
            t, texts = get(rep, tid)
            return t.redacted_unix_ms == 0 and len(texts) == 2 and all(MARK in x for x in texts)

        # A day before the period ends nothing changes, anywhere.
        self.set_clock(T0 + 29 * DAY)
        time.sleep(1.5)
        cluster.wait_converged()
        for rep in cluster.replicas:
            self.assertTrue(intact(rep, tickets["closed"]), rep.id)
        self.set_clock(T0 + 31 * DAY)
        self.assertTrue(wait_for(lambda: get(leader, tickets["closed"])[0].redacted_unix_ms != 0),
                        cluster.logs())
        cluster.wait_converged()
        for rep in cluster.replicas:
            t, texts = get(rep, tickets["closed"])
            self.assertEqual(t.redacted_unix_ms, T0 + 31 * DAY, rep.id)
            self.assertEqual((t.subject, t.resolution, t.status), ("", "", 5), rep.id)
            self.assertEqual(texts, ["", ""], rep.id)
            self.assertTrue(intact(rep, tickets["open"]), rep.id)
            audit = self.client(rep).call("helpwire.v1.Admin/ListAuditEvents", action="retention.apply").events
            self.assertEqual([(a.target, a.actor, dict(a.details)["tickets"]) for a in audit],
                             [("brief", "system", "1")], rep.id)


if __name__ == "__main__":
    hwtest.main()
