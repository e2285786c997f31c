"""
powerloss_test: helpwired under a CreateTicket and Route load on a file
system that forgets every write not made durable with fsync, and every
directory change (a file or directory created, renamed or removed) whose
directory was not fsynced after it (tests/powerloss/lossyfs.c
--unsynced-names), then a power cut. When helpwired starts again
on what the disk kept, every acknowledged ticket is there, every
acknowledged message is known (a resend is answered as a duplicate, on the
same ticket), ticket numbers are not given twice, and the tokens printed at
the first start (the demo tokens file; the bootstrap token file, also when
the power goes right after the first start) still work; a backup that
Admin/Backup reported done is whole. The load runs twice: a disk that
wrote back none of the unsynced pages, and one that wrote back a random
half of them.

The same file system also fills up on demand: while it is full, writes are
refused with RESOURCE_EXHAUSTED naming the cause, nothing of them is
stored, reads go on, and writes work again once there is space.
"""

import errno
import os
import shutil
import signal
import subprocess
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


class Lossy:
    """lossyfs mounted over a fresh backing directory."""

    def __init__(self, *args):
        tmp = os.environ.get("TEST_TMPDIR")
        self.backing = tempfile.mkdtemp(prefix="hw-disk-", dir=tmp)
        self.mount = tempfile.mkdtemp(prefix="hw-mnt-", dir=tmp)
        binary = hwclient.find_file("tests/powerloss/lossyfs", "tests/powerloss/lossyfs")
        self.proc = subprocess.Popen([binary, "--unsynced-names"] + list(args) + [self.backing, self.mount],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stdout.readline().decode()
        if line.strip() != "lossyfs ready":
            self.proc.kill()
            raise RuntimeError("lossyfs did not mount: " + self.proc.stderr.read().decode())

    def set_full(self, full):
        """Fills the disk (or frees it) and waits until a create says so."""
        self.proc.send_signal(signal.SIGUSR2)
        probe = os.path.join(self.mount, ".probe")
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                os.close(os.open(probe, os.O_CREAT | os.O_WRONLY, 0o600))
                os.unlink(probe)
                if not full:
                    return
            except OSError as e:
                if e.errno == errno.ENOSPC and full:
                    return
            time.sleep(0.05)
        raise AssertionError("lossyfs did not become %s" % ("full" if full else "free"))

    def close(self):
        """A clean stop if the test ended before its cut (a failure), so no
        mount is left behind."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.communicate(timeout=30)

    def cut(self):
        """The power cut; returns what lossyfs reports."""
        self.proc.send_signal(signal.SIGUSR1)
        _, err = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0, err
        return err.decode()


def seed(server, tag):
    """Admin and bridge clients, a customer who wrote in on Telegram, and a
    skill queue named tag."""
    admin = server.client(api=API, role="admin")
    bridge = server.client(api=API, role="bridge")
    cust = bridge.call("helpwire.v1.Router/Route", channel=TG, channelUserId="pc-" + tag, displayName=tag,
                       text="如何重置密码", messageId="pc-%s-1" % tag).customer_id
    admin.call("helpwire.v1.Agents/PutSkill", skill={"name": tag})
    return admin, bridge, cust


class PowerCut(unittest.TestCase):
    def assert_tickets_kept(self, data_dir, token, tickets):
        """helpwired started on data_dir has every (id, number) of tickets."""
        again = hwclient.Server(data_dir=data_dir)
        try:
            c = again.client(api=API, token=token)
            for tid, number in tickets:
                self.assertEqual(c.call("helpwire.v1.Tickets/GetTicket", ticketId=tid).ticket.number, number)
            c.close()
        finally:
            self.assertEqual(again.stop(), 0)

    def lossy(self, *args):
        disk = Lossy(*args)
        self.addCleanup(disk.close)
        return disk

    def run_cut(self, *lossy_args):
        disk = self.lossy(*lossy_args)
        server = hwclient.Server("--demo", data_dir=os.path.join(disk.mount, "data"))
        first_tokens = dict(server.tokens)
        admin, bridge, cust = seed(server, "powercut")
        tickets, routed = [], []
        stop = threading.Event()

        def create(k):
            c = server.client(api=API, role="admin")
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    t = c.call("helpwire.v1.Tickets/CreateTicket", customerId=cust, text="cut %d-%d" % (k, i),
                               queue="powercut", idempotencyKey="pc%d-%d" % (k, i), timeout=5).ticket
                    tickets.append((t.id, t.number))
                except grpc.RpcError:
                    pass
            c.close()

        def route(k):
            c = server.client(api=API, role="bridge")
            i = 0
            while not stop.is_set():
                i += 1
                mid = "pc-%d-%d" % (k, i)
                try:
                    r = c.call("helpwire.v1.Router/Route", channel=TG, channelUserId="pc-user-%d" % k,
                               displayName="User %d" % k, text="the app shows error %d and crashes" % i,
                               messageId=mid, timeout=5)
                    routed.append((k, mid, r.ticket_id))
                except grpc.RpcError:
                    pass
            c.close()

        threads = [threading.Thread(target=create, args=(k,)) for k in range(3)]
        threads += [threading.Thread(target=route, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        time.sleep(2.0)
        server.proc.send_signal(signal.SIGKILL)  # the machine stops ...
        server.wait()
        report = disk.cut()  # ... and the disk keeps what it had made durable
        stop.set()
        for t in threads:
            t.join()
        admin.close()
        bridge.close()
        self.assertIn("power cut", report)
        self.assertGreater(len(tickets), 10)
        self.assertGreater(len(routed), 10)

        data = os.path.join(disk.backing, "data")
        with open(os.path.join(data, "demo-tokens.txt")) as f:
            kept = {line.split()[2]: line.split()[3] for line in f if line.startswith("helpwired token ")}
        for role in ("admin", "agent", "bridge"):
            self.assertEqual(kept.get(role), first_tokens.get(role), role)

        again = hwclient.Server(data_dir=data)
        try:
            c = again.client(api=API, token=first_tokens["admin"])
            for tid, number in tickets:
                t = c.call("helpwire.v1.Tickets/GetTicket", ticketId=tid).ticket
                self.assertEqual(t.number, number)
            b = again.client(api=API, token=first_tokens["bridge"])
            for k, mid, tid in routed:
                r = b.call("helpwire.v1.Router/Route", channel=TG, channelUserId="pc-user-%d" % k,
                           displayName="User %d" % k, text="resent", messageId=mid)
                self.assertTrue(r.duplicate, mid)
                self.assertEqual(r.ticket_id, tid, mid)
            fresh = c.call("helpwire.v1.Tickets/CreateTicket", customerId=cust, text="after the cut",
                           queue="powercut").ticket
            self.assertGreater(fresh.number, max(n for _, n in tickets))
            b.close()
            c.close()
        finally:
            self.assertEqual(again.stop(), 0)
        shutil.rmtree(disk.backing, ignore_errors=True)

    def test_bootstrap_token_file_survives_a_cut_right_after_the_first_start(self):
        disk = self.lossy()
        server = hwclient.Server(data_dir=os.path.join(disk.mount, "data"))
        token = server.tokens["admin"]
        server.proc.send_signal(signal.SIGKILL)
        server.wait()
        disk.cut()
        data = os.path.join(disk.backing, "data")
        with open(data + ".admin-token") as f:
            self.assertEqual(f.read().strip(), token)
        again = hwclient.Server(data_dir=data)
        try:
            c = again.client(api=API, token=token)
            c.call("helpwire.v1.Agents/PutSkill", skill={"name": "after-cut"})
            c.close()
        finally:
            self.assertEqual(again.stop(), 0)

    def test_an_empty_bootstrap_token_file_left_by_a_cut_is_claimed_again(self):
        # The file is claimed (created empty) before the token is made; a cut
        # in between leaves it empty, with no token in the store.
        data = tempfile.mkdtemp(prefix="hw-data-", dir=os.environ.get("TEST_TMPDIR"))
        open(data + ".admin-token", "w").close()
        server = hwclient.Server(data_dir=data)
        try:
            self.assertTrue(server.tokens.get("admin"))
            c = server.client(api=API)
            c.call("helpwire.v1.Agents/PutSkill", skill={"name": "reclaimed"})
            c.close()
        finally:
            self.assertEqual(server.stop(), 0)

    def test_a_finished_backup_survives_a_cut(self):
        disk = self.lossy()
        server = hwclient.Server("--demo")
        try:
            admin, bridge, cust = seed(server, "backup")
            made = admin.call("helpwire.v1.Tickets/CreateTicket", customerId=cust, text="kept in the backup",
                              queue="backup").ticket
            target = os.path.join(disk.mount, "backup")
            os.mkdir(target)
            admin.call("helpwire.v1.Admin/Backup", directory=target, timeout=60)
            admin.close()
            bridge.close()
        finally:
            self.assertEqual(server.stop(), 0)
        disk.cut()
        self.assert_tickets_kept(os.path.join(disk.backing, "backup"), server.tokens["admin"],
                                 [(made.id, made.number)])

    def test_a_full_disk_refuses_writes_cleanly_and_they_work_again_once_space_is_free(self):
        disk = self.lossy()
        server = hwclient.Server("--demo", "--metrics", "127.0.0.1:0", data_dir=os.path.join(disk.mount, "data"))

        def commit_failures():
            with urllib.request.urlopen(server.metrics_url, timeout=10) as r:
                text = r.read().decode()
            line = [l for l in text.splitlines() if l.startswith("helpwire_store_commit_failures_total ")][0]
            return int(line.split()[1])

        try:
            admin, bridge, cust = seed(server, "full")

            def create(key, size=40):
                return admin.call("helpwire.v1.Tickets/CreateTicket", customerId=cust, queue="full",
                                  text=("%s " % key) * size, idempotencyKey=key, timeout=10)

            kept = [create("before-%d" % i).ticket for i in range(3)]
            disk.set_full(True)
            refused = []
            for i in range(40):
                key = "during-%d" % i
                try:
                    kept.append(create(key, size=400).ticket)
                except grpc.RpcError as e:
                    self.assertEqual(e.code(), grpc.StatusCode.RESOURCE_EXHAUSTED, e.details())
                    self.assertIn("no space left on the disk", e.details())
                    refused.append(key)
            self.assertGreater(len(refused), 0)
            self.assertGreater(commit_failures(), 0)
            # Reads go on while the disk is full.
            t = admin.call("helpwire.v1.Tickets/GetTicket", ticketId=kept[0].id).ticket
            self.assertEqual(t.number, kept[0].number)
            disk.set_full(False)
            # Space again: the refused requests go through on a retry, as new
            # tickets (nothing of them was stored).
            for key in refused:
                r = create(key, size=400)
                self.assertFalse(r.replayed, key)
                kept.append(r.ticket)
            numbers = [k.number for k in kept]
            self.assertEqual(len(set(numbers)), len(numbers))
            admin.close()
            bridge.close()
        finally:
            self.assertEqual(server.stop(), 0)
        disk.cut()
        self.assert_tickets_kept(os.path.join(disk.backing, "data"), server.tokens["admin"],
                                 [(k.id, k.number) for k in kept])

    def test_a_backup_to_a_full_disk_fails_cleanly(self):
        disk = self.lossy()
        server = hwclient.Server("--demo")
        try:
            admin = server.client(api=API, role="admin")
            target = os.path.join(disk.mount, "backup")
            os.mkdir(target)
            disk.set_full(True)
            with self.assertRaises(grpc.RpcError) as e:
                admin.call("helpwire.v1.Admin/Backup", directory=target, timeout=60)
            self.assertEqual(e.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
            self.assertIn("no space left on the disk", e.exception.details())
            self.assertEqual(os.listdir(target), [])  # no partial copy left behind
            disk.set_full(False)
            self.assertGreater(admin.call("helpwire.v1.Admin/Backup", directory=target, timeout=60).size_bytes, 0)
            admin.close()
        finally:
            self.assertEqual(server.stop(), 0)
        disk.cut()

    def test_unsynced_writes_all_lost(self):
        self.run_cut()

    def test_unsynced_writes_half_kept(self):
        self.run_cut("--keep-unsynced", "0.5", "--seed", "7")


if __name__ == "__main__":
    hwtest.main()
