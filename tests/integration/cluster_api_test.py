"""cluster_api_test: the Cluster service on a single helpwired, and a copy of
its store fetched over FetchSnapshot.

- GetClusterStatus answers replicated=false, writable, this server as the
  only member; the membership changes are FAILED_PRECONDITION there, and
  bad arguments INVALID_ARGUMENT naming the field.
- FetchSnapshot streams the store in chunks of at most 1 MiB with
  contiguous offsets adding up to the first chunk's total_bytes; the
  chunks form an LMDB file (mdb_dump reads it); only admin tokens get it; a
  stream cancelled half-way leaves no temporary copy in the data directory.
- fetch_copy (hw_repl_fetch_copy + hw_repl_install_copy) skips a target
  that does not answer, writes the copy into a new data directory, and a
  second helpwired on it serves the tickets routed before.
"""
import os
import shutil
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
MiB = 1 << 20
# ~15 KB per message (Route takes 16,384 bytes): 300 tickets make a store of
# several MiB, so a stream has many chunks.
FILLER = " ".join("the router in branch %d lost its configuration again" % i for i in range(280))[:15000]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def outgoing(data_dir):
    return sorted(n for n in os.listdir(data_dir) if n.startswith("outgoing-"))


class Cluster(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = hwclient.Server("--demo", "--new-customers-rate", "0")  # 300 new senders at once
        cls.admin = cls.server.client(api=API, role="admin")
        bridge = cls.server.client(api=API, role="bridge")
        cls.tickets = []
        lock = threading.Lock()

        def route(k):
            c = cls.server.client(api=API, role="bridge")
            for i in range(75):
                r = c.call("helpwire.v1.Router/Route", channel="CHANNEL_TELEGRAM", channelUserId="cl-%d-%d" % (k, i),
                           displayName="Cluster %d" % i, text="zq%d-%d %s" % (k, i, FILLER),
                           messageId="cl-%d-%d" % (k, i), timeout=30)
                if r.ticket_id:
                    with lock:
                        cls.tickets.append(r.ticket_id)
            c.close()

        threads = [threading.Thread(target=route, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        bridge.close()

    @classmethod
    def tearDownClass(cls):
        cls.admin.close()
        rc = cls.server.stop()
        assert rc == 0, cls.server.read_log()

    def test_single_node_status(self):
        st = self.admin.call("helpwire.v1.Cluster/GetClusterStatus")
        self.assertFalse(st.replicated)
        self.assertTrue(st.writable)
        self.assertEqual(st.self_id, 0)
        self.assertEqual(API.pool.FindEnumTypeByName("helpwire.v1.RaftState").values_by_number[st.state].name,
                         "RAFT_STATE_UNSPECIFIED")
        self.assertEqual([m.grpc_address for m in st.members], [self.server.address])
        self.assertEqual(st.applied_index, 0)  # a single node never replicated

    def test_membership_changes_need_replicas(self):
        for path, fields in [
            ("AddReplica", dict(id=2, raftAddress="127.0.0.1:7002", grpcAddress="127.0.0.1:8002")),
            ("AddReplica", dict(id=2, raftAddress="127.0.0.1:7002", grpcAddress="127.0.0.1:8002",
                                role="REPLICA_ROLE_STANDBY")),
            ("RemoveReplica", dict(id=2)),
            ("TransferLeadership", dict(id=0)),
        ]:
            with self.assertRaises(grpc.RpcError) as cm:
                self.admin.call("helpwire.v1.Cluster/" + path, **fields)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.FAILED_PRECONDITION, path)
            self.assertIn("not replicated", cm.exception.details())

    def test_bad_arguments_name_the_field(self):
        ok = dict(id=2, raftAddress="127.0.0.1:7002", grpcAddress="127.0.0.1:8002")
        cases = [
            ("AddReplica", dict(ok, id=0), "id"),
            ("AddReplica", dict(ok, raftAddress=""), "raft_address"),
            ("AddReplica", dict(ok, raftAddress="no-port"), "raft_address"),
            ("AddReplica", dict(ok, raftAddress="h:99999"), "raft_address"),
            ("AddReplica", dict(ok, grpcAddress=":8002"), "grpc_address"),
            ("AddReplica", dict(ok, grpcAddress="h" * 125 + ":80"), "grpc_address"),
            ("AddReplica", dict(ok, role="REPLICA_ROLE_SPARE"), "role"),
            ("RemoveReplica", dict(id=0), "id"),
        ]
        for path, fields, field in cases:
            with self.assertRaises(grpc.RpcError) as cm:
                self.admin.call("helpwire.v1.Cluster/" + path, **fields)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT, (path, fields))
            self.assertTrue(cm.exception.details().startswith(field + ":"), cm.exception.details())

    def test_only_admins_fetch_a_snapshot(self):
        for role in ("agent", "bridge"):
            c = self.server.client(api=API, role=role)
            with self.assertRaises(grpc.RpcError) as cm:
                list(c.stream("helpwire.v1.Cluster/FetchSnapshot", timeout=10))
            c.close()
            self.assertEqual(cm.exception.code(), grpc.StatusCode.PERMISSION_DENIED, role)
            with self.assertRaises(grpc.RpcError) as cm:
                c = self.server.client(api=API, role=role)
                c.call("helpwire.v1.Cluster/GetClusterStatus")
            c.close()
            self.assertEqual(cm.exception.code(), grpc.StatusCode.PERMISSION_DENIED, role)

    def test_snapshot_stream_is_an_lmdb_file_in_chunks(self):
        d = tempfile.mkdtemp(prefix="hw-snap-", dir=os.environ.get("TEST_TMPDIR"))
        path = os.path.join(d, "data.mdb")
        total = None
        offset = 0
        n = 0
        with open(path, "wb") as f:
            for ch in self.admin.stream("helpwire.v1.Cluster/FetchSnapshot", timeout=60):
                if n == 0:
                    total = ch.total_bytes
                    self.assertEqual(ch.applied_index, 0)
                else:
                    self.assertEqual(ch.total_bytes, 0)
                self.assertEqual(ch.offset, offset)
                self.assertLessEqual(len(ch.data), MiB)
                self.assertGreater(len(ch.data), 0)
                f.write(ch.data)
                offset += len(ch.data)
                n += 1
        self.assertEqual(offset, total)
        self.assertGreater(n, 2, "a store of several MiB comes in several chunks")
        # A valid LMDB file: mdb_dump lists the store's databases.
        out = subprocess.run(["mdb_dump", "-n", "-l", path], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("tickets", out.stdout)
        self.assertEqual(outgoing(self.server.data_dir), [], "the temporary copy is removed")
        shutil.rmtree(d)

    def test_cancelled_stream_leaves_no_copy_behind(self):
        stream = self.admin.stream("helpwire.v1.Cluster/FetchSnapshot", timeout=60)
        first = next(stream)
        self.assertGreater(first.total_bytes, 2 * MiB)
        # (The server may have handed every chunk to gRPC already and removed
        # its copy; either way none may stay behind.)
        stream.cancel()
        deadline = time.monotonic() + 10
        while outgoing(self.server.data_dir) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(outgoing(self.server.data_dir), [])
        # The server goes on serving.
        self.assertFalse(self.admin.call("helpwire.v1.Cluster/GetClusterStatus").replicated)

    def fetch_copy(self, data_dir, token, *targets):
        exe = hwclient.find_file("tests/integration/fetch_copy", "tests/integration/fetch_copy")
        return subprocess.run([exe, data_dir, token] + list(targets), capture_output=True, text=True, timeout=120)

    def test_fetched_copy_serves_the_tickets(self):
        target = tempfile.mkdtemp(prefix="hw-copy-", dir=os.environ.get("TEST_TMPDIR"))
        os.rmdir(target)  # fetch_copy makes the data directory
        dead = "127.0.0.1:%d" % free_port()  # nobody listens there: the next target is tried
        out = self.fetch_copy(target, self.server.tokens["admin"], dead, self.server.address)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("applied_index=0", out.stdout)
        self.assertEqual(sorted(os.listdir(os.path.join(target, "incoming"))), [])
        self.assertTrue(os.path.exists(os.path.join(target, "data.mdb")))

        copy = hwclient.Server(data_dir=target, bootstrap=False)
        try:
            c = copy.client(api=API, token=self.server.tokens["admin"])  # the tokens are in the store
            self.assertEqual(len(self.tickets), 300)
            for tid in self.tickets[::25]:
                t = c.call("helpwire.v1.Tickets/GetTicket", ticketId=tid).ticket
                self.assertEqual(t.id, tid)
            self.assertGreaterEqual(c.call("helpwire.v1.Admin/GetStats").tickets, len(self.tickets))
            c.close()
        finally:
            self.assertEqual(copy.stop(), 0, copy.read_log())

    def test_fetch_with_an_agent_token_fails_and_leaves_nothing(self):
        target = tempfile.mkdtemp(prefix="hw-copy-", dir=os.environ.get("TEST_TMPDIR"))
        out = self.fetch_copy(target, self.server.tokens["agent"], self.server.address)
        self.assertEqual(out.returncode, 1, out.stdout)
        self.assertIn("status 7", out.stdout)  # PERMISSION_DENIED
        self.assertIn(self.server.address, out.stdout)
        self.assertEqual(os.listdir(os.path.join(target, "incoming")), [])
        self.assertFalse(os.path.exists(os.path.join(target, "data.mdb")))


if __name__ == "__main__":
    hwtest.main()
