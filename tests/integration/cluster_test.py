"""cluster_test: three replicated helpwired (raft) under Route and
CreateTicket load from client threads spread over the replicas, while:

- the leader is killed with SIGKILL and restarted ~3 s later, three times;
- the leader is paused (SIGSTOP) while a writer calls it directly and the
  others write through the survivors, then resumed (SIGCONT);
- one follower's data directory is on lossyfs (tests/powerloss) and its
  power is cut: it restarts on what its disk had made durable.

Writes are retried on UNAVAILABLE / DEADLINE_EXCEEDED with a small backoff,
on the next replica, with the same Route message_id or CreateTicket
idempotency_key (a retry is not counted twice). Every acknowledged write
(ticket id and number, each Route message id with its ticket) must then be
on all three replicas (reads with helpwire-min-applied-index), exactly
once; reads to replicas that were not stopped must not fail; after a
SIGTERM of all three their stores (mdb_dump -a) are identical, but for
each store's own schema record (when its file was created). Printed:
acknowledged, lost, failed reads on surviving replicas, the write gap per
failover (from the kill to the next acknowledged write).

And reads on a follower: a write through the leader is seen by a read on
a follower with helpwire-min-applied-index; a write through a follower
(forwarded) is readable there at once.

And membership: a fourth replica started empty, after the log was cut by
snapshots, is added with Cluster.AddReplica; it fetches a copy of a peer's
store (Cluster.FetchSnapshot), restarts itself on it, catches up, serves
the tickets and forwards writes; then it is removed again.
"""
import subprocess
import os
import random
import shutil
import threading
import time
import unittest

import grpc

import hwcluster
import hwtest
import powerloss_test

API = hwcluster.hwclient.Api()
TG = "CHANNEL_TELEGRAM"
QUEUE = "cluster"
RETRY_FOR_S = 40  # a write not acknowledged by then is given up (counted)


class Load:
    """Writer threads (CreateTicket and Route, alternating) and reader
    threads (GetTicket of acknowledged tickets, one per replica). targets()
    gives a writer the replicas to send to, in turn; a failed attempt goes
    to the next with the same key."""

    def __init__(self, cluster, customer, writers=4, targets=None, tag="w"):
        self.cluster = cluster
        self.customer = customer
        self.tag = tag
        self.targets = targets or (lambda k: cluster.replicas)
        self.lock = threading.Lock()
        self.tickets = []  # (key, id, number, ack time, applied index, sent)
        self.routed = []  # (mid, user, ticket id, ack time, applied index, sent)
        self.given_up = []  # keys never acknowledged
        self.errors = []  # non-retryable failures: (key, code, details)
        self.retries = 0
        self.reads_ok = 0
        self.failed_reads = []  # on replicas that were up all through the read
        self.bad_reads = []  # answers that disagree with the acknowledgement
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._write, args=(k,), daemon=True) for k in range(writers)]
        self.threads += [threading.Thread(target=self._read, args=(r,), daemon=True) for r in cluster.replicas]
        self.clients = {}

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=RETRY_FOR_S + 30)
            assert not t.is_alive(), "a load thread did not end"

    def acks(self):
        with self.lock:
            return len(self.tickets) + len(self.routed)

    def ack_times(self):
        with self.lock:
            return sorted([t[3] for t in self.tickets] + [r[3] for r in self.routed])

    def gap_after(self, when):
        """Seconds from when to the first acknowledgement of an attempt sent
        after it (answers to attempts sent before do not count)."""
        with self.lock:
            acks = [a[3] for a in self.tickets + self.routed if a[5] > when]
        return min(acks) - when if acks else None

    def wait_acks(self, n, after=0.0, timeout=30):
        """Waits until n writes were acknowledged after time after."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if sum(1 for t in self.ack_times() if t > after) >= n:
                return
            time.sleep(0.05)
        raise AssertionError("fewer than %d writes acknowledged within %ss (errors %s)"
                             % (n, timeout, self.errors[:3]))

    def _client(self, replica, role):
        # One client per (thread, replica, role): channels are not shared.
        key = (threading.get_ident(), replica.id, role)
        c = self.clients.get(key)
        if c is None:
            c = self.clients[key] = replica.client(role)
        return c

    def _attempts(self, k, fn, key):
        """Calls fn(client_of) on the targets in turn until it answers;
        returns (reply, applied, when the answered attempt was sent) or None
        when given up."""
        start = time.time()
        i = random.randrange(3)
        while True:
            targets = self.targets(k)
            r = targets[i % len(targets)]
            i += 1
            sent = time.time()
            try:
                return fn(lambda role: self._client(r, role)) + (sent,)
            except grpc.RpcError as e:
                if e.code() not in hwcluster.RETRYABLE:
                    with self.lock:
                        self.errors.append((key, e.code(), e.details(), r.id))
                    return None
                if time.time() - start > RETRY_FOR_S:
                    with self.lock:
                        self.given_up.append(key)
                    return None
                with self.lock:
                    self.retries += 1
                time.sleep(random.uniform(0.03, 0.15))

    def _write(self, k):
        n = 0
        user = "ct-%s-%d" % (self.tag, k)
        while not self.stopping.is_set():
            n += 1
            if n % 2:
                key = "%s-%d-%d" % (self.tag, k, n)
                got = self._attempts(k, lambda c: c("admin").call_applied(
                    "helpwire.v1.Tickets/CreateTicket", customerId=self.customer, text="cluster load %s" % key,
                    queue=QUEUE, idempotencyKey=key, timeout=3), key)
                if got:
                    reply, applied, sent = got
                    with self.lock:
                        self.tickets.append((key, reply.ticket.id, reply.ticket.number, time.time(), applied or 0,
                                             sent))
            else:
                mid = "%s-m-%d-%d" % (self.tag, k, n)
                got = self._attempts(k, lambda c: c("bridge").call_applied(
                    "helpwire.v1.Router/Route", channel=TG, channelUserId=user, displayName=user,
                    text="cluster load text %d [%s]" % (n, mid), messageId=mid, timeout=3), mid)
                if got:
                    reply, applied, sent = got
                    with self.lock:
                        self.routed.append((mid, user, reply.ticket_id, time.time(), applied or 0, sent))

    def _read(self, replica):
        while not self.stopping.is_set():
            with self.lock:
                pick = random.choice(self.tickets) if self.tickets else None
            if pick is None or not replica.up():
                time.sleep(0.05)
                continue
            key, tid, number, _, applied, _ = pick
            before = replica.interruptions
            try:
                c = self._client(replica, "admin")
                reply, _ = c.call_applied("helpwire.v1.Tickets/GetTicket", ticketId=tid, min_applied=applied,
                                          timeout=5)
                with self.lock:
                    self.reads_ok += 1
                    if reply.ticket.number != number:
                        self.bad_reads.append((replica.id, tid, number, reply.ticket.number))
            except grpc.RpcError as e:
                if replica.interruptions == before and replica.up():
                    with self.lock:
                        self.failed_reads.append((replica.id, tid, e.code(), e.details()))
            time.sleep(0.02)


class ClusterCase(unittest.TestCase):
    def start_cluster(self, **kw):
        cluster = hwcluster.Cluster(api=API, **kw)
        self.addCleanup(self._cleanup, cluster)
        return cluster

    def _cleanup(self, cluster):
        cluster.close()
        if not getattr(self._outcome, "success", True):
            print(cluster.logs())

    def seed(self, cluster):
        """The QUEUE skill and a customer, through the leader."""
        leader = cluster.leader()
        admin, bridge = leader.client("admin"), leader.client("bridge")
        cust = bridge.call("helpwire.v1.Router/Route", channel=TG, channelUserId="ct-seed", displayName="seed",
                           text="如何重置密码", messageId="ct-seed-1").customer_id
        admin.call("helpwire.v1.Agents/PutSkill", skill={"name": QUEUE})
        admin.close()
        bridge.close()
        return cust

    def check_everything_on_every_replica(self, cluster, load):
        """Every acknowledged write is on every replica, once; the counts of
        the load are printed; returns the number lost."""
        index = cluster.wait_converged(timeout=60)
        self.assertEqual(load.errors, [], "non-retryable write failures")
        self.assertEqual(load.bad_reads, [], "reads that disagree with an acknowledgement")
        numbers = [t[2] for t in load.tickets]
        self.assertEqual(len(set(numbers)), len(numbers), "a ticket number given twice")
        self.assertEqual(len({t[0] for t in load.tickets}), len(load.tickets), "a CreateTicket key counted twice")
        self.assertEqual(len({r[0] for r in load.routed}), len(load.routed), "a Route message counted twice")
        lost = []
        by_ticket = {}
        for mid, user, tid, _, _, _ in load.routed:
            by_ticket.setdefault(tid, []).append(mid)
        for r in cluster.replicas:
            c = r.client("admin")
            for key, tid, number, _, _, _ in load.tickets:
                try:
                    t, _ = c.call_applied("helpwire.v1.Tickets/GetTicket", ticketId=tid, min_applied=index)
                    if t.ticket.number != number:
                        lost.append((r.id, key, "number %d, acknowledged %d" % (t.ticket.number, number)))
                except grpc.RpcError as e:
                    lost.append((r.id, key, e.code()))
            for tid, mids in by_ticket.items():
                try:
                    t, _ = c.call_applied("helpwire.v1.Tickets/GetTicket", ticketId=tid, includeMessages=True,
                                          min_applied=index)
                    texts = [m.text for m in t.messages]
                    for mid in mids:
                        n = sum(1 for x in texts if x.endswith("[%s]" % mid))
                        if n != 1:
                            lost.append((r.id, mid, "%d times in %s" % (n, tid)))
                except grpc.RpcError as e:
                    lost.append((r.id, tid, e.code()))
            # The queue holds the acknowledged tickets (and at most the
            # given-up keys besides), each number once.
            listed, token = [], ""
            while True:
                page = c.call("helpwire.v1.Tickets/ListTickets", queue=QUEUE, pageSize=500, pageToken=token)
                listed += [t.number for t in page.tickets]
                token = page.next_page_token
                if not token:
                    break
            self.assertEqual(len(set(listed)), len(listed), "replica %d lists a number twice" % r.id)
            self.assertTrue(set(numbers) <= set(listed), "replica %d misses tickets" % r.id)
            self.assertLessEqual(len(listed), len(numbers) + len(load.given_up), "replica %d" % r.id)
            c.close()
        print("  acknowledged: %d tickets, %d routed messages; retries %d; given up %d; lost %d; "
              "reads ok %d; failed reads on surviving replicas %d; applied index %d"
              % (len(load.tickets), len(load.routed), load.retries, len(load.given_up), len(lost),
                 load.reads_ok, len(load.failed_reads), index), flush=True)
        self.assertEqual(lost, [], "acknowledged writes missing on a replica")
        self.assertEqual(load.failed_reads, [], "reads failed on replicas that were up")
        return len(lost)

    def stop_and_compare(self, cluster):
        dumps = cluster.frozen_dumps()
        rcs = cluster.stop()
        self.assertEqual(rcs, {r.id: 0 for r in cluster.replicas}, "clean stops")
        for rid in (2, 3):
            self.assertEqual(dumps[1] == dumps[rid], True,
                             "stores of replicas 1 and %d differ at %s"
                             % (rid, hwcluster.first_difference(dumps[1], dumps[rid])))


class KillTheLeader(ClusterCase):
    def test_three_leader_kills_under_load_lose_nothing(self):
        cluster = self.start_cluster().start()
        load = Load(cluster, self.seed(cluster), writers=4, tag="kill").start()
        gaps = []
        try:
            load.wait_acks(20)
            for round_ in range(3):
                leader = cluster.leader()
                killed_at = time.time()
                leader.kill()
                time.sleep(3.0)
                new = cluster.leader()
                self.assertNotEqual(new.id, leader.id)
                leader.restart()
                load.wait_acks(20, after=time.time())
                gaps.append(load.gap_after(killed_at))
                print("  round %d: killed leader %d, new leader %d, write gap %.2f s"
                      % (round_ + 1, leader.id, new.id, gaps[-1]), flush=True)
            load.wait_acks(20, after=time.time())
        finally:
            load.stop()
        print("  write gaps per failover: %s" % ", ".join("%.2f s" % g for g in gaps), flush=True)
        self.assertEqual(len(gaps), 3)
        self.check_everything_on_every_replica(cluster, load)
        self.stop_and_compare(cluster)


class PausedLeader(ClusterCase):
    def test_a_paused_leader_steps_down_and_loses_nothing(self):
        cluster = self.start_cluster().start()
        cust = self.seed(cluster)
        old = cluster.leader()
        survivors = [r for r in cluster.replicas if r is not old]
        # Writer 0 calls the old leader only; the others the survivors.
        load = Load(cluster, cust, writers=3, tag="pause",
                    targets=lambda k: [old] if k == 0 else survivors).start()
        try:
            load.wait_acks(20)
            paused_at = time.time()
            old.pause()
            new = cluster.leader(timeout=30)
            self.assertNotEqual(new.id, old.id)
            load.wait_acks(30, after=time.time())  # the survivors go on
            old.resume()
            resumed_at = time.time()
            deadline = time.time() + 30
            st = None
            while time.time() < deadline:
                st = cluster.status(old)
                if st and st["state"] == "follower" and st["leader_id"] != old.id and st["leader_id"] != 0:
                    break
                time.sleep(0.1)
            self.assertEqual(st and st["state"], "follower", "the old leader did not step down: %s" % st)
            print("  leader %d paused; replica %d elected; the old one follows %d again %.2f s after SIGCONT"
                  % (old.id, new.id, st["leader_id"], time.time() - resumed_at), flush=True)
            # The writer on the old replica is answered again (forwarded).
            deadline = time.time() + 30
            while time.time() < deadline:
                with load.lock:
                    direct = [t for t in load.tickets if t[0].startswith("pause-0-") and t[3] > resumed_at]
                    direct += [r for r in load.routed if r[1] == "ct-pause-0" and r[3] > resumed_at]
                if direct:
                    break
                time.sleep(0.1)
            self.assertTrue(direct, "the resumed replica answers no writes")
        finally:
            load.stop()
        with load.lock:
            during = [t for t in load.tickets if t[0].startswith("pause-0-") and paused_at < t[3]]
        print("  writes the old leader acknowledged after the pause: %d (each must be on the majority)"
              % len(during), flush=True)
        self.check_everything_on_every_replica(cluster, load)
        self.stop_and_compare(cluster)


class PowerCut(ClusterCase):
    def test_a_follower_power_cut_rejoins_and_catches_up(self):
        disk = powerloss_test.Lossy()
        self.addCleanup(disk.close)
        cluster = self.start_cluster(data_dirs=[None, None, os.path.join(disk.mount, "data")])
        # Replicas 1 and 2 elect a leader among them; 3, on lossyfs, joins
        # as a follower.
        cut = cluster[3]
        for r in (cluster[1], cluster[2]):
            r.launch()
        for r in (cluster[1], cluster[2]):
            r.wait_listening()
        cut.launch()
        cut.wait_listening()
        leader = cluster.leader()
        self.assertNotEqual(leader.id, 3)
        deadline = time.time() + 30
        while "admin" not in cluster.tokens and time.time() < deadline:
            time.sleep(0.1)
        # Until it applied the tokens, replica 3 does not know them.
        cluster.wait_converged()
        load = Load(cluster, self.seed(cluster), writers=4, tag="cut").start()
        try:
            load.wait_acks(30)
            load.wait_acks(30, after=time.time())
            cut_applied = cluster.applied_index(cut)
            cut.kill()  # the machine stops ...
            report = disk.cut()  # ... and its disk keeps what was synced
            self.assertIn("power cut", report)
            print("  replica 3 cut at applied index %s of the leader's %s: %s"
                  % (cut_applied, cluster.applied_index(leader), report.strip().splitlines()[-1]), flush=True)
            load.wait_acks(30, after=time.time())  # the two others go on
            cut.data_dir = os.path.join(disk.backing, "data")
            cut.restart()
            print("  replica 3 restarted on what its disk kept; applied index %s once listening"
                  % cluster.applied_index(cut), flush=True)
            load.wait_acks(30, after=time.time())
        finally:
            load.stop()
        self.check_everything_on_every_replica(cluster, load)
        self.stop_and_compare(cluster)
        shutil.rmtree(disk.backing, ignore_errors=True)


class FollowerReads(ClusterCase):
    def test_reads_on_a_follower_see_writes(self):
        cluster = self.start_cluster().start()
        cust = self.seed(cluster)
        leader = cluster.leader()
        followers = [r for r in cluster.replicas if r is not leader]
        lc = leader.client("admin")
        fcs = [f.client("admin") for f in followers]
        for i in range(20):
            # Through the leader, read on a follower with the applied index.
            reply, applied = lc.call_applied("helpwire.v1.Tickets/CreateTicket", customerId=cust, queue=QUEUE,
                                             text="via leader %d" % i, idempotencyKey="fr-l-%d" % i)
            self.assertIsNotNone(applied, "no helpwire-applied-index trailer on a write")
            fc = fcs[i % 2]
            got, at = fc.call_applied("helpwire.v1.Tickets/GetTicket", ticketId=reply.ticket.id,
                                      min_applied=applied)
            self.assertEqual(got.ticket.number, reply.ticket.number)
            self.assertGreaterEqual(at, applied)
            # Through a follower (forwarded): readable there at once.
            reply, applied = fc.call_applied("helpwire.v1.Tickets/CreateTicket", customerId=cust, queue=QUEUE,
                                             text="via follower %d" % i, idempotencyKey="fr-f-%d" % i)
            got, at = fc.call_applied("helpwire.v1.Tickets/GetTicket", ticketId=reply.ticket.id)
            self.assertEqual(got.ticket.number, reply.ticket.number)
            self.assertGreaterEqual(at, applied)
        # A retry through the other follower is the same ticket.
        again, _ = fcs[1].call_applied("helpwire.v1.Tickets/CreateTicket", customerId=cust, queue=QUEUE,
                                       text="via follower 0", idempotencyKey="fr-f-0")
        self.assertTrue(again.replayed)
        for c in [lc] + fcs:
            c.close()
        cluster.wait_converged()
        self.stop_and_compare(cluster)


class NewReplica(ClusterCase):
    def test_a_new_replica_catches_up_from_a_copy_then_leaves(self):
        cluster = self.start_cluster(extra=("--demo", "--cluster-snapshot-entries", "64")).start()
        self.seed(cluster)
        leader = cluster.leader()
        bridge = leader.client("bridge")
        numbers = []
        for i in range(200):  # past three snapshots: the log starts later than 1
            r = bridge.call("helpwire.v1.Router/Route", channel=TG, channelUserId="nr-%d" % i, displayName="n",
                            text="my parcel %d never arrived" % i, messageId="nr-%d" % i)
            if r.ticket_id:
                numbers.append(r.ticket_id)
        bridge.close()
        self.assertGreater(len(numbers), 100)

        # The fourth replica: no peers list, the members' gRPC addresses to
        # fetch a copy from, and an admin token for it.
        grpc_port, raft_port = hwcluster.free_ports(2)
        d4 = os.path.join(cluster.root, "r4")
        log4 = open(d4 + ".log", "wb")
        p4 = subprocess.Popen([hwcluster.hwclient.helpwired_binary(), "--data", d4,
                               "--listen", "127.0.0.1:%d" % grpc_port, "--cluster-id", "4",
                               "--cluster-raft", "127.0.0.1:%d" % raft_port,
                               "--cluster-join", ",".join(r.address for r in cluster.replicas),
                               "--cluster-token-file", cluster.token_file,
                               "--cluster-election-ms", "1000"], stdout=subprocess.DEVNULL, stderr=log4)
        self.addCleanup(lambda: (p4.poll() is None and p4.kill(), p4.wait(), log4.close()))
        admin = cluster.leader().client("admin")
        st = admin.call("helpwire.v1.Cluster/AddReplica", id=4, raftAddress="127.0.0.1:%d" % raft_port,
                        grpcAddress="127.0.0.1:%d" % grpc_port)
        self.assertEqual(sorted(m.id for m in st.members), [1, 2, 3, 4])
        target = cluster.status(cluster.leader())["applied_index"]

        # It restarts itself on the copy (same process) and catches up.
        four = hwcluster.Client("127.0.0.1:%d" % grpc_port, API, cluster.tokens["admin"])
        deadline, seen = time.time() + 60, None
        while time.time() < deadline:
            try:
                seen = four.call("helpwire.v1.Cluster/GetClusterStatus", timeout=2)
                if seen.applied_index >= target and seen.leader_id:
                    break
            except grpc.RpcError:
                pass
            time.sleep(0.2)
        self.assertIsNotNone(seen)
        self.assertGreaterEqual(seen.applied_index, target)
        self.assertIsNone(p4.poll(), "the fourth replica runs")
        with open(d4 + ".log", "rb") as f:
            self.assertIn(b"event=cluster_restart", f.read())
        agent = hwcluster.Client("127.0.0.1:%d" % grpc_port, API, cluster.tokens["admin"])
        for tid in (numbers[0], numbers[len(numbers) // 2], numbers[-1]):
            self.assertEqual(agent.call("helpwire.v1.Tickets/GetTicket", ticketId=tid).ticket.id, tid)
        # A write through it goes to the leader and is readable on it.
        r, applied = hwcluster.Client("127.0.0.1:%d" % grpc_port, API, cluster.tokens["bridge"]).call_applied(
            "helpwire.v1.Router/Route", channel=TG, channelUserId="nr-x", displayName="x",
            text="my parcel 999 never arrived", messageId="nr-x")
        self.assertTrue(r.ticket_id)
        self.assertEqual(agent.call("helpwire.v1.Tickets/GetTicket", ticketId=r.ticket_id).ticket.id, r.ticket_id)

        # Removed again, through a follower (a write: forwarded).
        follower = next(x for x in cluster.replicas if x.id != cluster.leader().id)
        st = follower.client("admin").call("helpwire.v1.Cluster/RemoveReplica", id=4)
        self.assertEqual(sorted(m.id for m in st.members), [1, 2, 3])
        p4.terminate()
        self.assertEqual(p4.wait(timeout=30), 0)


if __name__ == "__main__":
    hwtest.main()

