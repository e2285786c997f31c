"""outbox_surveys_test: Outbox and Surveys through the real helpwired.

Until the ticket API lands nothing inside the server queues messages or
creates surveys, so the seeded cases prepare the data directory first with
outbox_seed (the same hw_outbox_append_in / hw_surveys_create_in the ticket
code calls) and then start the server on it: the backlog is streamed oldest
first, unacknowledged messages come back with attempt + 1, Ack removes them,
and surveys are answered once, before expiry, and counted in the stats.
The rest checks validation, empty results, and that streams end cleanly on
client cancel and on server shutdown."""
import subprocess
import tempfile
import os
import time
import unittest

import grpc

import hwclient
import hwtest

API = hwclient.Api()

SUBSCRIBE = "helpwire.v1.Outbox/Subscribe"
ACK = "helpwire.v1.Outbox/Ack"
SUBMIT = "helpwire.v1.Surveys/SubmitSurvey"
GET = "helpwire.v1.Surveys/GetSurvey"
STATS = "helpwire.v1.Surveys/GetSurveyStats"

WHATSAPP, TELEGRAM, WEBCHAT = 1, 2, 3
SURVEY_INVITATION = 4
ACTIVE, STANDBY = 1, 2


def seed(data_dir, *args):
    exe = hwclient.find_file("tests/integration/outbox_seed", "tests/integration/outbox_seed")
    out = subprocess.run([exe, data_dir] + [str(a) for a in args], check=True, capture_output=True)
    return out.stdout.decode().split()


def subscribe(test, client, channel, lease=ACTIVE, after_cancel=False, **kwargs):
    """A Subscribe stream whose control message (its first) said lease.
    after_cancel: the previous holder's stream was just cancelled, and the
    server may see the new subscriber first: then it is a standby promoted
    as soon as the cancel arrives (a second control message)."""
    stream = client.stream(SUBSCRIBE, channel=channel, **kwargs)
    control = next(stream)
    if after_cancel and lease == ACTIVE and control.lease == STANDBY:
        control = next(stream)
    test.assertEqual((control.seq, control.lease, control.text), (0, lease, ""))
    return stream


def new_data_dir():
    return tempfile.mkdtemp(prefix="hw-data-", dir=os.environ.get("TEST_TMPDIR"))


def proto_bytes(field, data):
    """A length-delimited protobuf field (data < 128 bytes)."""
    assert len(data) < 128
    return bytes([(field << 3) | 2, len(data)]) + data


class Validation(unittest.TestCase):
    """An empty store: argument errors and empty answers."""

    @classmethod
    def setUpClass(cls):
        cls.server = hwclient.Server()
        cls.client = cls.server.client(api=API)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        rc = cls.server.stop()
        assert rc == 0, "helpwired exited %s:\n%s" % (rc, cls.server.read_log())

    def assert_status(self, code, field, fn, *args, **kwargs):
        with self.assertRaises(grpc.RpcError) as cm:
            r = fn(*args, **kwargs)
            if hasattr(r, "__next__"):
                next(r)
        self.assertEqual(cm.exception.code(), code, cm.exception.details())
        if field:
            self.assertIn(field, cm.exception.details())
        return cm.exception

    def test_subscribe_on_empty_channel_waits_without_messages(self):
        stream = subscribe(self, self.client, "CHANNEL_WEBCHAT", timeout=1.0)
        self.assert_status(grpc.StatusCode.DEADLINE_EXCEEDED, None, lambda: stream)

    def test_subscribe_requires_channel(self):
        self.assert_status(grpc.StatusCode.INVALID_ARGUMENT, "channel", self.client.stream, SUBSCRIBE, timeout=5)

    def test_subscribe_refuses_redelivery_under_one_second(self):
        self.assert_status(grpc.StatusCode.INVALID_ARGUMENT, "redeliver_after_ms", self.client.stream, SUBSCRIBE,
                           timeout=5, channel="CHANNEL_TELEGRAM", redeliver_after_ms=999)

    def test_ack_of_unknown_sequences_acks_nothing(self):
        r = self.client.call(ACK, channel="CHANNEL_WHATSAPP", seqs=[1, 2, 3, 0, 18446744073709551615])
        self.assertEqual(r.acked, 0)
        self.assertEqual(self.client.call(ACK, channel="CHANNEL_WHATSAPP").acked, 0)

    def test_ack_requires_channel_and_at_most_1000_seqs(self):
        self.assert_status(grpc.StatusCode.INVALID_ARGUMENT, "channel", self.client.call, ACK, seqs=[1])
        self.assert_status(grpc.StatusCode.INVALID_ARGUMENT, "seqs", self.client.call, ACK,
                           channel="CHANNEL_WEBCHAT", seqs=list(range(1, 1002)))
        self.assertEqual(self.client.call(ACK, channel="CHANNEL_WEBCHAT", seqs=list(range(1, 1001))).acked, 0)

    def test_failed_acks_need_a_reason_and_count_toward_1000(self):
        self.assert_status(grpc.StatusCode.INVALID_ARGUMENT, "failed[1].reason", self.client.call, ACK,
                           channel="CHANNEL_TELEGRAM", failed=[{"seq": 1, "reason": "x"}, {"seq": 2}])
        self.assert_status(grpc.StatusCode.INVALID_ARGUMENT, "seqs and failed", self.client.call, ACK,
                           channel="CHANNEL_TELEGRAM", seqs=list(range(1, 1000)),
                           failed=[{"seq": 1000, "reason": "x"}, {"seq": 1001, "reason": "x"}])
        r = self.client.call(ACK, channel="CHANNEL_TELEGRAM", failed=[{"seq": 7, "reason": "telegram 403: x"},
                                                                       {"seq": 0, "reason": "x"}])
        self.assertEqual((r.acked, r.failed), (0, 0))

    def test_submit_with_unknown_token_is_not_found(self):
        self.assert_status(grpc.StatusCode.NOT_FOUND, None, self.client.call, SUBMIT,
                           token="A" * 32, rating=5)

    def test_submit_validates_token_rating_and_comment(self):
        self.assert_status(grpc.StatusCode.INVALID_ARGUMENT, "token", self.client.call, SUBMIT, rating=5)
        self.assert_status(grpc.StatusCode.INVALID_ARGUMENT, "token", self.client.call, SUBMIT,
                           token="short", rating=5)
        self.assert_status(grpc.StatusCode.INVALID_ARGUMENT, "token", self.client.call, SUBMIT,
                           token="not/url+safe/base64/at/all/xxxxx", rating=5)
        for bad in (0, 6, 100):
            self.assert_status(grpc.StatusCode.INVALID_ARGUMENT, "rating", self.client.call, SUBMIT,
                               token="A" * 32, rating=bad)
        self.assert_status(grpc.StatusCode.INVALID_ARGUMENT, "comment", self.client.call, SUBMIT,
                           token="A" * 32, rating=4, comment="x" * 2001)
        raw = proto_bytes(1, b"A" * 32) + bytes([2 << 3, 4]) + proto_bytes(3, b"bad \xff utf-8")
        e = self.assert_status(grpc.StatusCode.INVALID_ARGUMENT, "comment", self.client.raw, SUBMIT, raw)
        self.assertIn("UTF-8", e.details())

    def test_get_survey_needs_exactly_one_of_token_and_id(self):
        self.assert_status(grpc.StatusCode.INVALID_ARGUMENT, "survey_id", self.client.call, GET)
        self.assert_status(grpc.StatusCode.INVALID_ARGUMENT, "survey_id", self.client.call, GET,
                           token="A" * 32, survey_id="sv-1")
        self.assert_status(grpc.StatusCode.NOT_FOUND, "sv-nope", self.client.call, GET, survey_id="sv-nope")
        self.assert_status(grpc.StatusCode.NOT_FOUND, None, self.client.call, GET, token="B" * 40)
        self.assert_status(grpc.StatusCode.INVALID_ARGUMENT, "survey_id", self.client.call, GET,
                           survey_id="bad id!")

    def test_stats_of_nothing_are_zero_with_five_buckets(self):
        r = self.client.call(STATS)
        self.assertEqual((r.sent, r.answered, r.response_rate, r.csat, r.average_rating), (0, 0, 0, 0, 0))
        self.assertEqual(list(r.distribution), [0, 0, 0, 0, 0])
        r = self.client.call(STATS, from_unix_ms=1000, to_unix_ms=2000, channel="CHANNEL_WEBCHAT",
                             queue="billing", agent_id="ag-1")
        self.assertEqual(list(r.distribution), [0, 0, 0, 0, 0])

    def test_stats_validate_range_and_filters(self):
        self.assert_status(grpc.StatusCode.INVALID_ARGUMENT, "to_unix_ms", self.client.call, STATS,
                           from_unix_ms=2000, to_unix_ms=1000)
        self.assert_status(grpc.StatusCode.INVALID_ARGUMENT, "from_unix_ms", self.client.call, STATS,
                           from_unix_ms=-1)
        self.assert_status(grpc.StatusCode.INVALID_ARGUMENT, "queue", self.client.call, STATS, queue="a b")


class StreamEnds(unittest.TestCase):
    def test_cancelled_subscription_leaves_server_able_to_stop(self):
        server = hwclient.Server()
        try:
            c = server.client(api=API)
            streams = [c.stream(SUBSCRIBE, timeout=30, channel="CHANNEL_TELEGRAM") for _ in range(3)]
            time.sleep(0.3)
            for s in streams:
                s.cancel()
            self.assertEqual(c.call(ACK, channel="CHANNEL_TELEGRAM", seqs=[1]).acked, 0)
            c.close()
        finally:
            start = time.time()
            self.assertEqual(server.stop(), 0, server.read_log())
            self.assertLess(time.time() - start, 10)

    def test_subscription_ends_unavailable_at_shutdown(self):
        server = hwclient.Server()
        c = server.client(api=API)
        stream = subscribe(self, c, "CHANNEL_WHATSAPP", timeout=30)
        server.signal()
        with self.assertRaises(grpc.RpcError) as cm:
            next(stream)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(server.wait(), 0, server.read_log())
        c.close()


class SeededOutbox(unittest.TestCase):
    def test_backlog_oldest_first_redelivery_and_ack(self):
        data = new_data_dir()
        self.assertEqual(seed(data, "outbox", WEBCHAT, 3), ["1", "2", "3"])
        server = hwclient.Server(data_dir=data)
        try:
            c = server.client(api=API)
            stream = subscribe(self, c, "CHANNEL_WEBCHAT", timeout=30, redeliver_after_ms=1000)
            first = [next(stream) for _ in range(3)]
            self.assertEqual([m.seq for m in first], [1, 2, 3])
            self.assertEqual([m.attempt for m in first], [1, 1, 1])
            self.assertEqual(first[0].text, "reply number 0")
            self.assertEqual(first[2].channel_user_id, "user-2")
            self.assertEqual(first[0].channel, WEBCHAT)

            # Acknowledged within the delay: only seq 3 comes back.
            self.assertEqual(c.call(ACK, channel="CHANNEL_WEBCHAT", seqs=[1, 2, 2, 99]).acked, 2)
            start = time.time()
            again = next(stream)
            self.assertEqual((again.seq, again.attempt), (3, 2))
            self.assertEqual(again.text, "reply number 2")
            self.assertLess(time.time() - start, 5)

            # A second subscriber on the channel waits: the lease is taken.
            other = subscribe(self, c, "CHANNEL_WEBCHAT", lease=STANDBY, timeout=1.5)
            with self.assertRaises(grpc.RpcError) as cm:
                next(other)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED, cm.exception.details())
            # Another channel's queue is empty.
            with self.assertRaises(grpc.RpcError) as cm:
                next(subscribe(self, c, "CHANNEL_TELEGRAM", timeout=1))
            self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED, cm.exception.details())

            self.assertEqual(c.call(ACK, channel="CHANNEL_WEBCHAT", seqs=[3]).acked, 1)
            self.assertEqual(c.call(ACK, channel="CHANNEL_WEBCHAT", seqs=[1, 2, 3]).acked, 0)
            stream.cancel()

            # Everything acknowledged: a new subscription has nothing to send.
            with self.assertRaises(grpc.RpcError) as cm:
                next(subscribe(self, c, "CHANNEL_WEBCHAT", after_cancel=True, timeout=1.5, redeliver_after_ms=1000))
            self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED, cm.exception.details())
            c.close()
        finally:
            self.assertEqual(server.stop(), 0, server.read_log())

    def test_a_failed_ack_ends_the_entry_and_it_is_not_streamed_again(self):
        data = new_data_dir()
        self.assertEqual(seed(data, "outbox", TELEGRAM, 3), ["1", "2", "3"])
        server = hwclient.Server(data_dir=data)
        try:
            c = server.client(api=API)
            stream = subscribe(self, c, "CHANNEL_TELEGRAM", timeout=30, redeliver_after_ms=1000)
            self.assertEqual([next(stream).seq for _ in range(3)], [1, 2, 3])
            reason = "telegram 403: Forbidden: bot was blocked by the user"
            r = c.call(ACK, channel="CHANNEL_TELEGRAM", seqs=[2], failed=[{"seq": 1, "reason": reason}])
            self.assertEqual((r.acked, r.failed), (2, 1))
            # Only 3, never acknowledged, comes back; 1 (FAILED) does not.
            again = next(stream)
            self.assertEqual((again.seq, again.attempt), (3, 2))
            # Failed or delivered, an entry is acknowledged once.
            r = c.call(ACK, channel="CHANNEL_TELEGRAM", seqs=[1], failed=[{"seq": 1, "reason": reason}])
            self.assertEqual((r.acked, r.failed), (0, 0))
            self.assertEqual(c.call(ACK, channel="CHANNEL_TELEGRAM", seqs=[3]).acked, 1)
            stream.cancel()
            with self.assertRaises(grpc.RpcError) as cm:
                next(subscribe(self, c, "CHANNEL_TELEGRAM", after_cancel=True, timeout=1.5,
                               redeliver_after_ms=1000))
            self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED, cm.exception.details())
            c.close()
        finally:
            self.assertEqual(server.stop(), 0, server.read_log())

    def test_unacknowledged_messages_survive_a_restart(self):
        data = new_data_dir()
        seed(data, "outbox", TELEGRAM, 2)
        server = hwclient.Server(data_dir=data)
        c = server.client(api=API)
        stream = subscribe(self, c, "CHANNEL_TELEGRAM", timeout=10)
        self.assertEqual([next(stream).seq for _ in range(2)], [1, 2])
        self.assertEqual(c.call(ACK, channel="CHANNEL_TELEGRAM", seqs=[1]).acked, 1)
        stream.cancel()
        c.close()
        self.assertEqual(server.stop(), 0, server.read_log())

        server = hwclient.Server(data_dir=data)
        try:
            c = server.client(api=API)
            stream = subscribe(self, c, "CHANNEL_TELEGRAM", timeout=10)
            m = next(stream)
            self.assertEqual((m.seq, m.text), (2, "reply number 1"))
            stream.cancel()
            c.close()
        finally:
            self.assertEqual(server.stop(), 0, server.read_log())


class SeededSurveys(unittest.TestCase):
    def test_survey_answered_once_then_counted(self):
        data = new_data_dir()
        sid, url, token, seq = seed(data, "survey", WHATSAPP, 3600 * 1000)
        old_id, _, old_token, _ = seed(data, "survey", WHATSAPP, 1)  # expires after 1 ms
        time.sleep(0.01)
        server = hwclient.Server(data_dir=data)
        try:
            c = server.client(api=API)
            self.assertTrue(url.endswith("/survey/" + token))
            self.assertGreaterEqual(len(token), 22)

            # The invitations wait in the WhatsApp queue with their links.
            stream = subscribe(self, c, "CHANNEL_WHATSAPP", timeout=10)
            inv = next(stream)
            self.assertEqual((inv.seq, inv.kind), (int(seq), SURVEY_INVITATION))
            self.assertEqual(inv.survey_url, url)
            self.assertIn(url, inv.text)
            self.assertIn("from 1 to 5", inv.text)
            stream.cancel()

            sv = c.call(GET, token=token)
            self.assertEqual((sv.id, sv.ticket_id, sv.ticket_number, sv.rating), (sid, "t-1042", 1042, 0))
            self.assertEqual((sv.channel, sv.queue, sv.agent_id), (WHATSAPP, "billing", "ag-anna"))
            self.assertEqual(sv.expires_unix_ms - sv.sent_unix_ms, 3600 * 1000)

            r = c.call(SUBMIT, token=token, rating=5, comment="Schnell und freundlich — 谢谢")
            self.assertEqual((r.id, r.rating, r.comment), (sid, 5, "Schnell und freundlich — 谢谢"))
            self.assertGreater(r.answered_unix_ms, 0)
            with self.assertRaises(grpc.RpcError) as cm:
                c.call(SUBMIT, token=token, rating=1)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.ALREADY_EXISTS)
            with self.assertRaises(grpc.RpcError) as cm:
                c.call(SUBMIT, token=old_token, rating=3)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
            self.assertIn("expired", cm.exception.details())

            self.assertEqual(c.call(GET, survey_id=sid).rating, 5)
            self.assertEqual(c.call(GET, survey_id=old_id).rating, 0)

            st = c.call(STATS)
            self.assertEqual((st.sent, st.answered), (2, 1))
            self.assertAlmostEqual(st.response_rate, 0.5)
            self.assertAlmostEqual(st.csat, 1.0)
            self.assertAlmostEqual(st.average_rating, 5.0)
            self.assertEqual(list(st.distribution), [0, 0, 0, 0, 1])
            self.assertEqual(c.call(STATS, channel="CHANNEL_TELEGRAM").sent, 0)
            self.assertEqual(c.call(STATS, queue="billing", agent_id="ag-anna").sent, 2)
            self.assertEqual(c.call(STATS, agent_id="ag-other").sent, 0)
            future = int(time.time() * 1000) + 3600 * 1000
            self.assertEqual(c.call(STATS, from_unix_ms=future).sent, 0)
            self.assertGreaterEqual(
                c.call(STATS, from_unix_ms=sv.sent_unix_ms, to_unix_ms=sv.sent_unix_ms + 1).sent, 1)
            self.assertEqual(c.call(STATS, to_unix_ms=sv.sent_unix_ms).sent, 0)
            c.close()
        finally:
            self.assertEqual(server.stop(), 0, server.read_log())


if __name__ == "__main__":
    hwtest.main()
