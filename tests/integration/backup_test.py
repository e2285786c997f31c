"""backup_test: a backup taken under write load opens and holds every record
acknowledged before it began.

Six threads create tickets as fast as the server acknowledges them, each
acknowledgement noted with its time; while they run, Admin/Backup copies the
store into a fresh directory. A second helpwired opened on that directory
must hold every ticket acknowledged before the Backup call began, serve the
same tokens, and answer searches."""
import os
import tempfile
import threading
import time
import unittest

import grpc

import hwclient
import hwtest

API = hwclient.Api()
THREADS = 6
QUEUE = "backup-load"  # a skill no agent serves: no assignment work
# ~2 KB of text per ticket, so the store grows and the copy takes a while.
FILLER = " ".join(["the printer in room %d is on fire again" % i for i in range(50)])


class BackupUnderLoad(unittest.TestCase):
    def setUp(self):
        self.server = hwclient.Server("--demo")
        self.copy = None

    def tearDown(self):
        if self.copy is not None:
            self.assertEqual(self.copy.stop(), 0, self.copy.read_log())
        self.assertEqual(self.server.stop(), 0, self.server.read_log())

    def test_backup_under_load_holds_everything_acknowledged_before_it(self):
        admin_token = self.server.tokens["admin"]
        admin = self.server.client(api=API, role="admin")
        admin.call("helpwire.v1.Agents/PutSkill",
                   skill={"name": QUEUE, "description": "backup test", "keywords": ["zqxbackupload"]})
        bridge = self.server.client(api=API, role="bridge")
        r = bridge.call("helpwire.v1.Router/Route", channel="CHANNEL_TELEGRAM", channelUserId="backup-1",
                        displayName="Backup", text="如何重置密码", messageId="backup-1")
        bridge.close()
        self.assertEqual(r.ticket_id, "", "the FAQ question must not open a ticket")
        customer = r.customer_id

        lock = threading.Lock()
        acked = []  # (monotonic time of the acknowledgement, ticket id)
        errors = []
        stop = threading.Event()

        def load(k):
            c = self.server.client(api=API, token=admin_token)
            i = 0
            try:
                while not stop.is_set():
                    i += 1
                    try:
                        t = c.call("helpwire.v1.Tickets/CreateTicket", customerId=customer, queue=QUEUE,
                                   text="load ticket %d-%d: %s" % (k, i, FILLER),
                                   idempotencyKey="backup-%d-%d" % (k, i), timeout=30)
                    except grpc.RpcError as e:
                        with lock:
                            errors.append("thread %d call %d: %s %s" % (k, i, e.code().name, e.details()))
                        continue
                    now = time.monotonic()
                    with lock:
                        acked.append((now, t.ticket.id))
            finally:
                c.close()

        threads = [threading.Thread(target=load, args=(k,)) for k in range(THREADS)]
        for t in threads:
            t.start()
        try:
            self.wait_for(lambda: len(acked) >= 400, lock, acked, 60)
            target = tempfile.mkdtemp(prefix="hw-backup-", dir=os.environ.get("TEST_TMPDIR"))
            with lock:
                began = time.monotonic()
                before = {tid for _, tid in acked}
            reply = admin.call("helpwire.v1.Admin/Backup", directory=target, timeout=120)
            ended = time.monotonic()
            with lock:
                n_at_end = len(acked)
            # The load goes on after the backup, so it ran under writes.
            self.wait_for(lambda: len(acked) >= n_at_end + 200, lock, acked, 60)
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertEqual(errors, [], "\n".join(errors[:20]))
        self.assertGreater(reply.size_bytes, 0)
        during = [tid for at, tid in acked if began <= at <= ended]
        after = [tid for at, tid in acked if at > began]
        print("acknowledged: %d before the backup, %d while it ran (%d ms), %d in all"
              % (len(before), len(during), reply.took_ms, len(acked)))
        self.assertGreater(len(after), 0)
        all_acked = {tid for _, tid in acked}
        self.assertEqual(len(all_acked), len(acked), "a ticket id was handed out twice")

        admin.close()
        self.copy = hwclient.Server(data_dir=target)
        c = self.copy.client(api=API, token=admin_token)  # the tokens are in the store
        try:
            # Every ticket acknowledged before the backup began is there.
            missing = []
            for tid in sorted(before):
                try:
                    got = c.call("helpwire.v1.Tickets/GetTicket", ticketId=tid)
                    self.assertEqual(got.ticket.id, tid)
                    self.assertEqual(got.ticket.queue, QUEUE)
                    self.assertEqual(got.ticket.customer_id, customer)
                except grpc.RpcError as e:
                    missing.append("%s: %s" % (tid, e.code().name))
            self.assertEqual(missing, [], "acknowledged before the backup but not in it")
            # And the backup holds nothing that was never acknowledged.
            in_copy = set()
            token = ""
            while True:
                page = c.call("helpwire.v1.Tickets/ListTickets", queue=QUEUE, pageSize=500, pageToken=token)
                in_copy.update(t.id for t in page.tickets)
                token = page.next_page_token
                if not token:
                    break
            self.assertEqual(before - in_copy, set())
            self.assertEqual(in_copy - all_acked, set(), "tickets in the backup nobody was told about")
            stats = c.call("helpwire.v1.Admin/GetStats")
            self.assertEqual(stats.tickets, len(in_copy))
            # The backup's store serves searches (its index rebuilt from it).
            hits = c.call("helpwire.v1.Knowledge/Search", query="重置密码").hits
            self.assertIn("faq-reset-password", [h.id for h in hits])
            hits = c.call("helpwire.v1.Knowledge/Search", query="refund").hits
            self.assertTrue(hits)
            # It takes writes, and a new ticket reuses no id of the copy's
            # (ids handed out by the original after the backup may come
            # again: the copy's history forks at the backup).
            t = c.call("helpwire.v1.Tickets/CreateTicket", customerId=customer, queue=QUEUE,
                       text="after the restore").ticket
            self.assertNotIn(t.id, in_copy)
        finally:
            c.close()

    def wait_for(self, cond, lock, acked, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with lock:
                if cond():
                    return
            time.sleep(0.01)
        self.fail("the load stalled: %d tickets acknowledged\n%s" % (len(acked), self.server.read_log()[-4000:]))



class RestoreNumbers(unittest.TestCase):
    def test_a_restored_store_does_not_give_a_ticket_number_twice(self):
        server = hwclient.Server("--demo")
        admin_token = server.tokens["admin"]
        admin = server.client(api=API, role="admin")
        bridge = server.client(api=API, role="bridge")
        customer = bridge.call("helpwire.v1.Router/Route", channel="CHANNEL_TELEGRAM", channelUserId="rn-1",
                               displayName="R", text="如何重置密码", messageId="rn-1").customer_id
        bridge.close()

        def create(client):
            return client.call("helpwire.v1.Tickets/CreateTicket", customerId=customer, text="restore numbers",
                               queue="general").ticket

        create(admin)
        target = tempfile.mkdtemp(prefix="hw-backup-", dir=os.environ.get("TEST_TMPDIR"))
        admin.call("helpwire.v1.Admin/Backup", directory=target, timeout=60)
        after = [create(admin) for _ in range(3)]  # customers saw these numbers; the backup did not
        admin.close()
        self.assertEqual(server.stop(), 0)
        highest = max(t.number for t in after)

        copy = hwclient.Server("--ticket-numbers-from", str(highest + 1), data_dir=target)
        try:
            c = copy.client(api=API, token=admin_token)
            t = create(c)
            self.assertEqual(t.number, highest + 1)
            self.assertEqual(t.id, "t-%d" % (highest + 1))
            c.close()
            self.assertIn("event=ticket_numbers next=%d" % (highest + 1), copy.read_log())
        finally:
            self.assertEqual(copy.stop(), 0)
        # Never backwards: a lower floor later changes nothing.
        again = hwclient.Server("--ticket-numbers-from", "5", data_dir=target)
        try:
            c = again.client(api=API, token=admin_token)
            self.assertEqual(create(c).number, highest + 2)
            c.close()
        finally:
            self.assertEqual(again.stop(), 0)


if __name__ == "__main__":
    hwtest.main()
