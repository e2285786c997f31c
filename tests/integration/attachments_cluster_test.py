"""attachments_cluster_test: files on three replicated helpwired (raft).

A file of 1.5 MiB put piece by piece and committed through a follower (the
writes are relayed to the leader) is readable, byte for byte, through
GetAttachment on every replica once they have converged; a photo routed
through another follower is on the ticket message everywhere; the same
bytes put again through the third replica answer `existed`. Erasing the
customer through a follower removes the file on every replica."""
import hashlib
import os
import unittest

import grpc

import hwcluster
import hwtest

API = hwcluster.hwclient.Api()
MiB = 1 << 20


def upload(client, data):
    return hwcluster.hwclient.upload_attachment(client, data, timeout=30, kind="ATTACHMENT_KIND_IMAGE",
                                                mimeType="image/jpeg", name="photo.jpg")


def download(client, aid):
    return hwcluster.hwclient.download_attachment(client, aid)[1]


class AttachmentsOnACluster(unittest.TestCase):
    def setUp(self):
        self.cluster = hwcluster.Cluster(api=API, extra=("--demo", "--sender-rate", "0"))
        try:
            self.cluster.start()
        except Exception:
            self.cluster.close()
            raise
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        rcs = self.cluster.stop()
        self.assertEqual(set(rcs.values()), {0}, self.cluster.logs())

    def client(self, replica, role="admin"):
        c = replica.client(role)
        self.clients.append(c)
        return c

    def test_a_file_put_through_a_follower_is_readable_on_every_replica(self):
        cluster = self.cluster
        leader = cluster.leader()
        f1, f2 = [r for r in cluster.replicas if r is not leader]
        data = os.urandom(MiB + MiB // 2)
        a = upload(self.client(f1, "bridge"), data)
        self.assertEqual(a.sha256, hashlib.sha256(data).hexdigest())
        r = self.client(f2, "bridge").call(
            "helpwire.v1.Router/Route", channel="CHANNEL_TELEGRAM", channelUserId="tg-cluster-photo",
            displayName="Ann", text="", messageId="tg-cluster-photo-m1",
            attachments=[{"id": a.id, "kind": "ATTACHMENT_KIND_IMAGE", "name": "photo.jpg"}], timeout=30)
        self.assertTrue(r.ticket_id, r)
        cluster.wait_converged()
        for rep in cluster.replicas:
            self.assertEqual(download(self.client(rep, "agent"), a.id), data, rep.id)
            g = self.client(rep, "agent").call("helpwire.v1.Tickets/GetTicket", ticketId=r.ticket_id,
                                               includeMessages=True)
            self.assertEqual(g.messages[0].attachments[0].id, a.id, rep.id)
            self.assertEqual(g.messages[0].attachments[0].size_bytes, len(data), rep.id)
        req = API.message("helpwire.v1.PutChunkRequest")
        req.data = data[:MiB]
        self.assertTrue(self.client(leader, "bridge").call("helpwire.v1.Attachments/PutChunk", request=req).existed)

        self.client(f1).call("helpwire.v1.Customers/EraseCustomer", customerId=r.customer_id, reason="request",
                             timeout=30)
        cluster.wait_converged()
        for rep in cluster.replicas:
            with self.assertRaises(grpc.RpcError) as cm:
                download(self.client(rep, "agent"), a.id)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND, rep.id)


if __name__ == "__main__":
    hwtest.main()
