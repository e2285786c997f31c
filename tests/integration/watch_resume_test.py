"""watch_resume_test: resumable WatchTickets through the real helpwired.

A client that kept the cursor of the last event it read reconnects with
WatchTicketsRequest.after and gets exactly the events it missed, in order
and once, then the live ones; filters apply to the replay as they applied
live; a gap larger than a stream's send queue is replayed at the client's
pace, not cut off; a cursor past the event log's retention (by age on a
file clock, or by --watch-history-max-events) gets OUT_OF_RANGE, and one
the server did not make INVALID_ARGUMENT naming `after`.
"""
import base64
import concurrent.futures
import os
import queue
import tempfile
import threading
import time
import unittest

import grpc

import hwclient
import hwtest

API = hwclient.Api()
TG = "CHANNEL_TELEGRAM"
WATCH = "helpwire.v1.Tickets/WatchTickets"


def new_customer(bridge, user):
    r = bridge.call("helpwire.v1.Router/Route", channel=TG, channelUserId=user, displayName=user,
                    text="如何重置密码", messageId="first-" + user)
    assert r.action == 1, r
    return r.customer_id


def log_seq(cursor):
    """The global sequence inside a cursor. Cursors are opaque to clients;
    the test peeks (c1 + base64url of be64 sequence + check) only to check
    the order of what arrives."""
    assert cursor.startswith("c1") and len(cursor) == 24, cursor
    raw = base64.urlsafe_b64decode(cursor[2:] + "==")
    return int.from_bytes(raw[:8], "big")


class Watch:
    """A WatchTickets stream read on a thread into a queue."""

    def __init__(self, client, timeout=60, paused=False, **fields):
        self.stream = client.stream(WATCH, timeout=timeout, **fields)
        self.q = queue.Queue()
        self.error = None
        self.gate = threading.Event()  # a paused stream is not read until resume()
        if not paused:
            self.gate.set()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def resume(self):
        self.gate.set()

    def _read(self):
        self.gate.wait()
        try:
            for ev in self.stream:
                self.q.put(ev)
        except grpc.RpcError as e:
            self.error = e
        self.q.put(None)

    def take(self, n, timeout=20):
        """The next n events (fails the test when fewer come in time)."""
        got = []
        deadline = time.time() + timeout
        while len(got) < n:
            try:
                ev = self.q.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                raise AssertionError("got %d of %d events in %ss" % (len(got), n, timeout))
            if ev is None:
                raise AssertionError("stream ended after %d of %d events: %s" % (len(got), n, self.error))
            got.append(ev)
        return got

    def quiet(self, seconds=0.5):
        """Whatever arrives within seconds (expected: nothing)."""
        got = []
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                ev = self.q.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                break
            if ev is None:
                break
            got.append(ev)
        return got

    def close(self):
        self.stream.cancel()
        self.thread.join(timeout=10)

    def final_error(self, timeout=10):
        """The status the stream ended with (for a stream the server ends)."""
        self.thread.join(timeout=timeout)
        self.assert_ended()
        return self.error

    def assert_ended(self):
        assert not self.thread.is_alive(), "the stream did not end"


def key(ev):
    return (ev.ticket_id, ev.seq)


class Resume(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = hwclient.Server("--demo")
        cls.agent = cls.server.client(api=API, role="admin")
        cls.bridge = cls.server.client(api=API, role="bridge")
        cls.users = 0

    @classmethod
    def tearDownClass(cls):
        cls.agent.close()
        cls.bridge.close()
        assert cls.server.stop() == 0, cls.server.read_log()

    def customer(self):
        Resume.users += 1
        return new_customer(self.bridge, "resume-%d" % Resume.users)

    def create(self, queue_name, text="The app crashes with error 4411 on start"):
        return self.agent.call("helpwire.v1.Tickets/CreateTicket", customerId=self.customer(), text=text,
                               queue=queue_name).ticket

    def tag(self, ticket_id, *tags):
        self.agent.call("helpwire.v1.Tickets/UpdateTicket", ticketId=ticket_id, updateMask=["tags"],
                        tags=list(tags))

    def history(self, ticket_id):
        return list(self.agent.call("helpwire.v1.Tickets/GetTicketHistory", ticketId=ticket_id).events)

    def live_watch(self, **fields):
        """A stream known to be live: it has seen an event of a probe ticket
        of its own (created in fields' queue, or "general")."""
        w = Watch(self.agent, **fields)
        time.sleep(0.2)
        probe = self.create(fields.get("queue") or "general")
        for _ in range(50):
            ev = w.take(1)[0]
            if ev.ticket_id == probe.id:
                return w, probe
        raise AssertionError("the probe's event never came")

    def test_reconnect_after_a_gap_gets_exactly_the_missed_events_then_live_ones(self):
        w, probe = self.live_watch()
        t = self.create("billing")
        self.tag(t.id, "one")
        n = len(self.history(t.id))  # CREATED (and what routing adds), TAGS_CHANGED
        seen = []
        while len(seen) < n:
            seen += [e for e in w.take(1) if e.ticket_id == t.id]
        self.assertTrue(all(e.cursor for e in seen), seen)
        first_cursor, last_cursor = seen[0].cursor, seen[-1].cursor
        w.close()
        # The gap: changes nobody watches.
        self.tag(t.id, "two")
        self.tag(t.id, "three")
        u = self.create("technical")
        self.tag(u.id, "x")
        missed = [e for e in self.history(t.id) if e.seq > seen[-1].seq] + self.history(u.id)
        self.assertGreaterEqual(len(missed), 4)
        # Resumed: exactly the missed events, in the order they were made.
        r = Watch(self.agent, after=last_cursor)
        got = r.take(len(missed))
        self.assertEqual([key(e) for e in got], [key(e) for e in missed])
        self.assertEqual([e.kind for e in got], [e.kind for e in missed])
        self.assertEqual([e.detail for e in got], [e.detail for e in missed])
        seqs = [log_seq(e.cursor) for e in got]
        self.assertEqual(seqs, sorted(seqs))
        self.assertGreater(seqs[0], log_seq(last_cursor))
        # Replayed events carry the ticket as it is now.
        self.assertEqual(list(got[0].ticket.tags), ["three"])
        self.assertEqual(got[0].ticket.queue, "billing")
        self.assertEqual(r.quiet(0.5), [])  # nothing twice
        # Then live, once.
        self.tag(u.id, "y")
        live = r.take(1)[0]
        self.assertEqual((live.ticket_id, live.kind, list(live.ticket.tags)), (u.id, 6, ["y"]))
        self.assertGreater(log_seq(live.cursor), seqs[-1])
        self.assertEqual(r.quiet(0.5), [])
        r.close()
        # From an earlier cursor: the rest of what the first stream saw too.
        r2 = Watch(self.agent, after=first_cursor)
        again = r2.take(len(seen) - 1 + len(missed) + 1)
        self.assertEqual([key(e) for e in again],
                         [key(e) for e in seen[1:]] + [key(e) for e in missed] + [key(live)])
        self.assertEqual(r2.quiet(0.5), [])
        r2.close()

    def test_the_replay_applies_the_filters_as_they_applied_live(self):
        mark = self.cursor_now()
        b = self.create("billing")
        tech = self.create("technical")  # filtered out
        self.tag(tech.id, "noise")
        self.tag(b.id, "kept")
        r = Watch(self.agent, queue="billing", after=mark)
        want = self.history(b.id)
        got = r.take(len(want))
        self.assertEqual([key(e) for e in got], [key(e) for e in want])
        self.assertTrue(all(e.ticket.queue == "billing" for e in got))
        self.assertEqual(r.quiet(0.5), [])
        r.close()
        # By assignee, as the ticket was right after each event: alice's
        # watcher sees the ticket while it is hers, not once it is bob's.
        t = self.create("general")
        mark = self.cursor_now()
        self.agent.call("helpwire.v1.Tickets/UpdateTicket", ticketId=t.id, updateMask=["assignee_agent_id"],
                        assigneeAgentId="alice")
        self.tag(t.id, "hers")
        self.agent.call("helpwire.v1.Tickets/UpdateTicket", ticketId=t.id, updateMask=["assignee_agent_id"],
                        assigneeAgentId="bob")
        self.tag(t.id, "his")
        hers = Watch(self.agent, assigneeAgentId="alice", after=mark)
        got = hers.take(2)
        self.assertEqual([(e.ticket_id, e.kind) for e in got], [(t.id, 4), (t.id, 6)])  # ASSIGNED, TAGS_CHANGED
        self.assertEqual(hers.quiet(0.7), [])  # not the move to bob nor what followed
        # (the replayed ticket is the ticket as it is now: bob's)
        self.assertEqual(got[0].ticket.assignee_agent_id, "bob")
        hers.close()
        his = Watch(self.agent, assigneeAgentId="bob", after=mark)
        got = his.take(2)
        self.assertEqual([(e.kind, list(e.ticket.tags)) for e in got], [(4, ["his"]), (6, ["his"])])
        self.assertEqual(his.quiet(0.7), [])
        his.close()

    def test_bad_cursors_are_invalid_argument_naming_after(self):
        good = self.cursor_now()
        for bad in ("garbage", "c1" + "A" * 22, "c2" + "A" * 22, "c1" + "A" * 21 + "!", "c1" + "A" * 23):
            with self.assertRaises(grpc.RpcError) as cm:
                list(self.agent.stream(WATCH, timeout=10, after=bad))
            self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT, bad)
            self.assertIn("after", cm.exception.details())
        # One of another server (its own salt): refused too.
        other = hwclient.Server("--demo")
        try:
            oc = other.client(api=API, role="admin")
            ob = other.client(api=API, role="bridge")
            ow = Watch(oc)
            time.sleep(0.2)
            oc.call("helpwire.v1.Tickets/CreateTicket", customerId=new_customer(ob, "other-1"), text="hi",
                    queue="general")
            foreign = ow.take(1)[0].cursor
            ow.close()
            oc.close()
            ob.close()
        finally:
            self.assertEqual(other.stop(), 0)
        with self.assertRaises(grpc.RpcError) as cm:
            list(self.agent.stream(WATCH, timeout=10, after=foreign))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("after", cm.exception.details())
        # While this server's own still resumes.
        r = Watch(self.agent, queue="nobody-watches-this", after=good)
        self.assertEqual(r.quiet(0.5), [])
        self.assertTrue(r.thread.is_alive())
        r.close()

    def test_a_gap_longer_than_the_send_queue_is_replayed_at_the_clients_pace(self):
        tickets = [self.create("general").id for _ in range(8)]
        r_mark = self.cursor_now()
        n_per = 170  # 8 x 170 = 1360 events: more than a stream queues (1024)

        def churn(tid):
            for i in range(n_per):
                self.tag(tid, "t%d" % i)

        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            list(ex.map(churn, tickets))
        # Live events while it replays come after the replayed ones, once.
        later = threading.Thread(target=churn, args=(tickets[0],))
        later.start()
        r = Watch(self.agent, timeout=120, paused=True, after=r_mark)
        time.sleep(1.5)  # a reader that does not read at first: the replay waits for it
        r.resume()
        got = r.take(len(tickets) * n_per + n_per, timeout=90)
        later.join()
        self.assertEqual(r.quiet(0.5), [])
        self.assertTrue(r.thread.is_alive())  # not cut off
        r.close()
        seqs = [log_seq(e.cursor) for e in got]
        self.assertEqual(seqs, sorted(seqs))
        self.assertEqual(len(set(seqs)), len(seqs))
        per = {}
        for e in got:
            per.setdefault(e.ticket_id, []).append(e.seq)
        for tid in tickets:  # each ticket's TAGS_CHANGED events, all of them, in its history's order
            self.assertEqual(per[tid], list(range(per[tid][0], per[tid][0] + len(per[tid]))))
            self.assertEqual(len(per[tid]), n_per * (2 if tid == tickets[0] else 1))
            self.assertTrue(all(e.kind == 6 for e in got))

    def cursor_now(self):
        """A cursor at the newest event: that of a probe ticket's last
        event on a fresh stream."""
        w = Watch(self.agent)
        time.sleep(0.2)
        probe = self.create("general")
        n = len(self.history(probe.id))
        evs = []
        while len([e for e in evs if e.ticket_id == probe.id]) < n:
            evs += w.take(1)
        w.close()
        return [e for e in evs if e.ticket_id == probe.id][-1].cursor


class Retention(unittest.TestCase):
    def test_a_cursor_older_than_the_history_kept_is_out_of_range(self):
        tmp = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        clock = os.path.join(tmp, "now")
        now = 1796000000000

        def set_clock(ms):
            with open(clock + ".tmp", "w") as f:
                f.write("%d\n" % ms)
            os.rename(clock + ".tmp", clock)

        set_clock(now)
        server = hwclient.Server("--demo", "--clock-file", clock, "--watch-history-hours", "1")
        try:
            agent = server.client(api=API, role="admin")
            bridge = server.client(api=API, role="bridge")
            w = Watch(agent)
            time.sleep(0.2)
            t = agent.call("helpwire.v1.Tickets/CreateTicket", customerId=new_customer(bridge, "old-1"), text="a",
                           queue="general").ticket
            old = w.take(1)[0]
            # Still within the hour: resumable.
            set_clock(now + 59 * 60 * 1000)
            time.sleep(0.6)  # a few sweeps
            agent.call("helpwire.v1.Tickets/UpdateTicket", ticketId=t.id, updateMask=["tags"], tags=["a"])
            r = Watch(agent, after=old.cursor)
            hist = agent.call("helpwire.v1.Tickets/GetTicketHistory", ticketId=t.id).events
            newer = r.take(len(hist) - 1)
            self.assertEqual([key(e) for e in newer], [key(e) for e in hist[1:]])
            self.assertEqual(newer[-1].kind, 6)
            r.close()
            w.close()
            # Two hours on: the sweep deletes the first events.
            set_clock(now + 2 * 3600 * 1000)
            deadline = time.time() + 10
            code = None
            while time.time() < deadline:
                try:
                    list(agent.stream(WATCH, timeout=1, after=old.cursor))
                except grpc.RpcError as e:
                    code, details = e.code(), e.details()
                    if code == grpc.StatusCode.OUT_OF_RANGE:
                        break
                time.sleep(0.2)
            self.assertEqual(code, grpc.StatusCode.OUT_OF_RANGE)
            self.assertIn("after", details)
            self.assertIn("watch without after", details)
            # A garbage cursor is still INVALID_ARGUMENT, not OUT_OF_RANGE.
            with self.assertRaises(grpc.RpcError) as cm:
                list(agent.stream(WATCH, timeout=10, after="c1" + "B" * 22))
            self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            agent.close()
            bridge.close()
        finally:
            self.assertEqual(server.stop(), 0, server.read_log())

    def test_the_log_keeps_at_most_the_newest_events_it_is_told(self):
        server = hwclient.Server("--demo", "--watch-history-max-events", "5")
        try:
            agent = server.client(api=API, role="admin")
            bridge = server.client(api=API, role="bridge")
            w = Watch(agent)
            time.sleep(0.2)
            t = agent.call("helpwire.v1.Tickets/CreateTicket", customerId=new_customer(bridge, "few-1"), text="a",
                           queue="general").ticket
            first = w.take(1)[0]
            for i in range(8):
                agent.call("helpwire.v1.Tickets/UpdateTicket", ticketId=t.id, updateMask=["tags"], tags=["t%d" % i])
            evs = w.take(len(agent.call("helpwire.v1.Tickets/GetTicketHistory", ticketId=t.id).events) - 1)
            w.close()
            deadline = time.time() + 10
            code = None
            while time.time() < deadline and code != grpc.StatusCode.OUT_OF_RANGE:
                try:
                    list(agent.stream(WATCH, timeout=1, after=first.cursor))
                except grpc.RpcError as e:
                    code = e.code()
                time.sleep(0.2)
            self.assertEqual(code, grpc.StatusCode.OUT_OF_RANGE)
            # A recent cursor still resumes: the last three events after it.
            r = Watch(agent, after=evs[-4].cursor)
            got = r.take(3)
            self.assertEqual([key(e) for e in got], [key(e) for e in evs[-3:]])
            self.assertEqual(r.quiet(0.5), [])
            r.close()
            agent.close()
            bridge.close()
        finally:
            self.assertEqual(server.stop(), 0, server.read_log())


if __name__ == "__main__":
    hwtest.main()
