"""signals_cluster_test: a channel signal sent to a follower of three
replicated helpwired reaches the bridge subscribed on the leader (the
call is relayed like a write, though nothing is written), and a bridge
subscribed on the follower itself gets nothing."""
import unittest

import hwcluster
import hwtest
from signals_test import TYPING_KIND, Reader

API = hwcluster.hwclient.Api()
TG = "CHANNEL_TELEGRAM"


class RelayToTheLeader(unittest.TestCase):
    def test_typing_sent_to_a_follower_reaches_the_leaders_subscriber(self):
        cluster = hwcluster.Cluster(api=API)
        self.addCleanup(cluster.close)
        cluster.start()
        leader = cluster.leader()
        follower = [r for r in cluster.replicas if r is not leader][0]
        bridge = leader.client("bridge")
        r = bridge.call("helpwire.v1.Router/Route", channel=TG, channelUserId="sc-1", displayName="sc",
                        text="human", messageId="sc-1-1")
        cluster.wait_converged()

        on_leader = Reader(bridge.stream("helpwire.v1.Outbox/Subscribe", timeout=60, channel=TG))
        self.addCleanup(on_leader.cancel)
        self.assertEqual(on_leader.until(lambda m: True).lease, 1)
        on_follower = Reader(follower.client("bridge").stream("helpwire.v1.Outbox/Subscribe", timeout=60,
                                                              channel=TG))
        self.addCleanup(on_follower.cancel)
        self.assertEqual(on_follower.until(lambda m: True).lease, 1)  # its own node's lease

        got = follower.client("admin").call("helpwire.v1.Tickets/SendChannelSignal", ticketId=r.ticket_id,
                                            signal="CHANNEL_SIGNAL_TYPING")
        self.assertEqual((got.delivered, got.reason), (True, ""))
        sig = on_leader.signals(2.0)
        self.assertEqual([(m.kind, m.ticket_id, m.channel_user_id) for m in sig],
                         [(TYPING_KIND, r.ticket_id, "sc-1")])
        self.assertEqual(on_follower.signals(0.5), [])


if __name__ == "__main__":
    hwtest.main()
