"""outbox_lease_test: the Outbox's exclusive lease and per-recipient windows
through the real helpwired.

One subscriber per channel delivers: the first is ACTIVE, later ones are
STANDBY and receive nothing until the active stream ends (cancelled, or its
process killed), when the one that waited longest is promoted and receives
the backlog. Within the active stream, at most max_in_flight_per_recipient
unacknowledged messages per recipient are in flight, so a recipient that
never acknowledges holds back only its own messages; each recipient's
messages arrive in sequence order. The data directory is seeded with
outbox_seed before the server starts (as in outbox_surveys_test)."""
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import grpc

import hwclient

API = hwclient.Api()

SUBSCRIBE = "helpwire.v1.Outbox/Subscribe"
ACK = "helpwire.v1.Outbox/Ack"
TELEGRAM, WHATSAPP, WEBCHAT = 2, 1, 3
ACTIVE, STANDBY = 1, 2


def seed(data_dir, channel, n, user=None):
    """Appends n messages on channel, to user (else user-0, user-1, ...);
    returns their sequences."""
    exe = hwclient.find_file("tests/integration/outbox_seed", "tests/integration/outbox_seed")
    args = [exe, data_dir, "outbox", str(channel), str(n)] + ([user] if user else [])
    out = subprocess.run(args, check=True, capture_output=True)
    return [int(x) for x in out.stdout.decode().split()]


def new_data_dir():
    return tempfile.mkdtemp(prefix="hw-data-", dir=os.environ.get("TEST_TMPDIR"))


class Reader:
    """Reads a stream on a thread, so a test can wait for the next message
    with a bound, or check that none comes for a while, and go on reading."""

    def __init__(self, stream):
        self.stream = stream
        self.q = queue.Queue()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        try:
            for m in self.stream:
                self.q.put(m)
        except grpc.RpcError as e:
            self.q.put(e)

    def next(self, timeout=5.0):
        try:
            m = self.q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no message within %.1f s" % timeout)
        if isinstance(m, Exception):
            raise m
        return m

    def take(self, n, timeout=5.0):
        return [self.next(timeout) for _ in range(n)]

    def quiet(self, seconds=1.0):
        """Nothing arrives for seconds; returns whatever did (empty when quiet)."""
        got = []
        end = time.time() + seconds
        while time.time() < end:
            try:
                got.append(self.q.get(timeout=max(0.0, end - time.time())))
            except queue.Empty:
                break
        return got

    def cancel(self):
        self.stream.cancel()


class LeaseTest(unittest.TestCase):
    def setUp(self):
        self.data = new_data_dir()

    def start(self):
        self.server = hwclient.Server(data_dir=self.data)
        self.client = self.server.client(api=API)

    def tearDown(self):
        self.client.close()
        rc = self.server.stop()
        self.assertEqual(rc, 0, self.server.read_log())

    def subscribe(self, channel="CHANNEL_TELEGRAM", lease=ACTIVE, timeout=60, **fields):
        r = Reader(self.client.stream(SUBSCRIBE, timeout=timeout, channel=channel, **fields))
        self.assert_control(r.next(), lease, channel)
        return r

    def assert_control(self, m, lease, channel="CHANNEL_TELEGRAM"):
        want = {"CHANNEL_TELEGRAM": TELEGRAM, "CHANNEL_WHATSAPP": WHATSAPP, "CHANNEL_WEBCHAT": WEBCHAT}[channel]
        self.assertEqual((m.seq, m.lease, m.channel, m.text, m.channel_user_id), (0, lease, want, "", ""))

    def ack(self, *seqs, channel="CHANNEL_TELEGRAM"):
        return self.client.call(ACK, channel=channel, seqs=list(seqs)).acked


class ExclusiveLease(LeaseTest):
    def test_standbys_get_nothing_until_the_active_stream_ends_then_the_oldest_takes_over(self):
        self.assertEqual(seed(self.data, TELEGRAM, 3), [1, 2, 3])
        self.start()
        first = self.subscribe(instance="host-a:1")
        self.assertEqual([m.seq for m in first.take(3)], [1, 2, 3])
        second = self.subscribe(lease=STANDBY, instance="host-b:2")
        third = self.subscribe(lease=STANDBY, instance="host-c:3")
        # Another channel has a lease of its own.
        other = self.subscribe(channel="CHANNEL_WHATSAPP", instance="host-c:3")
        self.assertEqual(second.quiet(1.0), [])
        self.assertEqual(third.quiet(0.1), [])
        self.assertEqual(self.ack(1), 1)

        first.cancel()
        # The standby that waited longest is promoted and gets the backlog
        # from the start: what is still unacknowledged, oldest first.
        self.assert_control(second.next(), ACTIVE)
        got = second.take(2)
        self.assertEqual([(m.seq, m.text) for m in got], [(2, "reply number 1"), (3, "reply number 2")])
        self.assertEqual([m.attempt for m in got], [1, 1])
        # The third keeps waiting.
        self.assertEqual(third.quiet(1.0), [])

        second.cancel()
        self.assert_control(third.next(), ACTIVE)
        self.assertEqual([m.seq for m in third.take(2)], [2, 3])
        self.assertEqual(other.quiet(0.1), [])
        third.cancel()
        other.cancel()

        log = self.server.read_log()
        for want in ("event=outbox_lease channel=CHANNEL_TELEGRAM instance=host-a:1 state=active",
                     "event=outbox_lease channel=CHANNEL_TELEGRAM instance=host-b:2 state=standby",
                     "event=outbox_lease channel=CHANNEL_TELEGRAM instance=host-a:1 state=released",
                     "event=outbox_lease channel=CHANNEL_TELEGRAM instance=host-b:2 state=active",
                     "event=outbox_lease channel=CHANNEL_TELEGRAM instance=host-c:3 state=active",
                     "event=outbox_lease channel=CHANNEL_WHATSAPP instance=host-c:3 state=active"):
            self.assertIn(want, log)

    def test_a_killed_active_process_hands_the_lease_to_the_standby(self):
        self.assertEqual(seed(self.data, TELEGRAM, 2), [1, 2])
        self.start()
        script = (
            "import hwclient\n"
            "c = hwclient.Client(%r, token=%r)\n"
            "for m in c.stream(%r, timeout=60, channel='CHANNEL_TELEGRAM', instance='doomed'):\n"
            "    print(m.seq, m.lease, flush=True)\n"
        ) % (self.server.address, self.server.tokens["admin"], SUBSCRIBE)
        env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.abspath(hwclient.__file__)))
        proc = subprocess.Popen(["/usr/bin/python3", "-c", script], stdout=subprocess.PIPE, env=env)
        try:
            lines = [proc.stdout.readline().decode().split() for _ in range(3)]
            self.assertEqual(lines, [["0", "1"], ["1", "0"], ["2", "0"]])
            standby = self.subscribe(lease=STANDBY, instance="survivor")
            self.assertEqual(standby.quiet(0.5), [])
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            self.assert_control(standby.next(timeout=10), ACTIVE)
            self.assertEqual([(m.seq, m.attempt) for m in standby.take(2)], [(1, 1), (2, 1)])
            standby.cancel()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        self.assertIn("instance=doomed state=released", self.server.read_log())

    def test_instance_and_window_are_checked(self):
        self.start()
        for fields, word in (({"instance": "x" * 129}, "instance"),
                             ({"max_in_flight_per_recipient": 257}, "max_in_flight_per_recipient"),
                             ({"max_in_flight_per_recipient": 4294967295}, "max_in_flight_per_recipient")):
            with self.assertRaises(grpc.RpcError) as cm:
                next(self.client.stream(SUBSCRIBE, timeout=5, channel="CHANNEL_TELEGRAM", **fields))
            self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn(word, cm.exception.details())
        # Not UTF-8: channel 2, instance "a\xffb" (field 4).
        raw = bytes([1 << 3, 2]) + bytes([(4 << 3) | 2, 3]) + b"a\xffb"
        fn = self.client.channel.unary_stream("/" + SUBSCRIBE)
        with self.assertRaises(grpc.RpcError) as cm:
            next(fn(raw, timeout=5, metadata=self.client._md(None)))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("instance", cm.exception.details())
        self.assertIn("UTF-8", cm.exception.details())
        # The limits themselves are accepted (the first takes the lease).
        a = self.subscribe(instance="é" * 64, max_in_flight_per_recipient=256)
        b = self.subscribe(lease=STANDBY, max_in_flight_per_recipient=1)
        a.cancel()
        b.cancel()


class RecipientWindows(LeaseTest):
    def test_a_blocked_recipient_holds_back_only_its_own_messages(self):
        blocked = seed(self.data, TELEGRAM, 300, "blocked-chat")
        self.assertEqual(blocked, list(range(1, 301)))
        self.assertEqual(seed(self.data, TELEGRAM, 1), [301])  # to user-0, queued after them
        self.start()
        s = self.subscribe(max_in_flight_per_recipient=8)
        got = s.take(9, timeout=5)
        # The blocked chat's first 8, in order, and the other recipient's at once.
        self.assertEqual(sorted(m.seq for m in got), list(range(1, 9)) + [301])
        self.assertEqual([m.seq for m in got if m.channel_user_id == "blocked-chat"], list(range(1, 9)))
        self.assertEqual([m.channel_user_id for m in got if m.seq == 301], ["user-0"])
        self.assertEqual(s.quiet(1.0), [])  # only 8 of the blocked ones are in flight

        # One acknowledgement frees exactly one place: the next in order.
        self.assertEqual(self.ack(3), 1)
        m = s.next()
        self.assertEqual((m.seq, m.attempt, m.channel_user_id), (9, 1, "blocked-chat"))
        self.assertEqual(s.quiet(1.0), [])
        # The other recipient's acknowledgement frees nothing for the blocked chat.
        self.assertEqual(self.ack(301), 1)
        self.assertEqual(s.quiet(0.5), [])
        self.assertEqual(self.ack(1, 2, 4), 3)
        self.assertEqual([m.seq for m in s.take(3)], [10, 11, 12])
        self.assertEqual(s.quiet(0.5), [])
        s.cancel()

    def test_each_recipient_gets_its_messages_in_order(self):
        a1 = seed(self.data, WEBCHAT, 3, "alice")
        b1 = seed(self.data, WEBCHAT, 2, "bob")
        a2 = seed(self.data, WEBCHAT, 2, "alice")
        self.assertEqual(a1 + b1 + a2, list(range(1, 8)))
        self.start()
        s = self.subscribe(channel="CHANNEL_WEBCHAT", max_in_flight_per_recipient=1)
        self.assertEqual([(m.seq, m.channel_user_id) for m in s.take(2)], [(1, "alice"), (4, "bob")])
        self.assertEqual(s.quiet(0.5), [])
        # Each acknowledgement lets the recipient's next one through, in order.
        for acked, then in ((4, [(5, "bob")]), (1, [(2, "alice")]), (5, []), (2, [(3, "alice")]),
                            (3, [(6, "alice")]), (6, [(7, "alice")]), (7, [])):
            self.assertEqual(self.ack(acked, channel="CHANNEL_WEBCHAT"), 1)
            if then:
                self.assertEqual([(m.seq, m.channel_user_id) for m in s.take(len(then))], then)
            self.assertEqual(s.quiet(0.3), [])
        s.cancel()

    def test_the_default_window_is_8_and_redelivery_stays(self):
        seed(self.data, WHATSAPP, 20, "slow")
        self.start()
        s = self.subscribe(channel="CHANNEL_WHATSAPP", redeliver_after_ms=1000)
        first = s.take(8)
        self.assertEqual([(m.seq, m.attempt) for m in first], [(i, 1) for i in range(1, 9)])
        # Not acknowledged: the same 8 come again, and nothing beyond them.
        again = s.take(8, timeout=5)
        self.assertEqual(sorted((m.seq, m.attempt) for m in again), [(i, 2) for i in range(1, 9)])
        self.assertEqual(self.ack(*range(1, 9), channel="CHANNEL_WHATSAPP"), 8)
        nxt = s.take(8)
        self.assertEqual([(m.seq, m.attempt) for m in nxt], [(i, 1) for i in range(9, 17)])
        s.cancel()


if __name__ == "__main__":
    unittest.main(verbosity=2)
