"""watch_resume_cluster_test: WatchTickets resumes on another replica.

Three replicated helpwired: a stream on the leader reads some events and
drops; changes are made while nobody watches; a stream on a follower
resumed with the leader's cursor gets exactly the missed events (the
event log is replicated with the writes), then the live ones, which a
follower learns from the replicated notes, with their cursors.
"""
import time
import unittest

import hwcluster
import hwtest
from watch_resume_test import Watch, key, log_seq

API = hwcluster.hwclient.Api()
TG = "CHANNEL_TELEGRAM"


class ResumeOnAFollower(unittest.TestCase):
    def test_a_cursor_from_the_leader_resumes_on_a_follower(self):
        cluster = hwcluster.Cluster(api=API)
        self.addCleanup(cluster.close)
        cluster.start()
        leader = cluster.leader()
        follower = [r for r in cluster.replicas if r is not leader][0]
        admin, bridge = leader.client("admin"), leader.client("bridge")
        fadmin = follower.client("admin")
        cust = bridge.call("helpwire.v1.Router/Route", channel=TG, channelUserId="wr-1", displayName="wr",
                           text="如何重置密码", messageId="wr-1-1").customer_id

        w = Watch(admin, queue="billing")
        time.sleep(0.3)
        t = admin.call("helpwire.v1.Tickets/CreateTicket", customerId=cust, text="refund please",
                       queue="billing").ticket
        history = lambda tid: list(admin.call("helpwire.v1.Tickets/GetTicketHistory", ticketId=tid).events)
        seen = w.take(len(history(t.id)))
        cursor = seen[-1].cursor
        w.close()
        for tags in (["a"], ["b"]):
            admin.call("helpwire.v1.Tickets/UpdateTicket", ticketId=t.id, updateMask=["tags"], tags=tags)
        other = admin.call("helpwire.v1.Tickets/CreateTicket", customerId=cust, text="crash",
                           queue="technical").ticket  # filtered out
        missed = [e for e in history(t.id) if e.seq > seen[-1].seq]
        self.assertEqual(len(missed), 2)
        cluster.wait_converged()

        r = Watch(fadmin, queue="billing", after=cursor)
        got = r.take(len(missed))
        self.assertEqual([key(e) for e in got], [key(e) for e in missed])
        self.assertEqual(list(got[-1].ticket.tags), ["b"])
        self.assertEqual(r.quiet(0.5), [])
        # Live on the follower, from the leader's write, once, with a cursor.
        admin.call("helpwire.v1.Tickets/UpdateTicket", ticketId=t.id, updateMask=["tags"], tags=["c"])
        admin.call("helpwire.v1.Tickets/UpdateTicket", ticketId=other.id, updateMask=["tags"], tags=["x"])
        live = r.take(1)[0]
        self.assertEqual((live.ticket_id, live.kind, list(live.ticket.tags)), (t.id, 6, ["c"]))
        self.assertGreater(log_seq(live.cursor), log_seq(got[-1].cursor))
        self.assertEqual(r.quiet(0.5), [])
        r.close()
        # The follower's live cursor resumes on the leader too.
        admin.call("helpwire.v1.Tickets/UpdateTicket", ticketId=t.id, updateMask=["tags"], tags=["d"])
        back = Watch(admin, queue="billing", after=live.cursor)
        ev = back.take(1)[0]
        self.assertEqual((ev.ticket_id, list(ev.ticket.tags)), (t.id, ["d"]))
        back.close()
        for c in (admin, bridge, fadmin):
            c.close()
        rcs = cluster.stop()
        self.assertEqual(set(rcs.values()), {0}, cluster.logs())


if __name__ == "__main__":
    hwtest.main()
