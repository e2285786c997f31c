"""outbox_failed_test: the Outbox's failed list through the real helpwired.

A reply the channel refused for good (an Ack with failed) leaves the queue
and is listed by ListFailed with its reason and attempts; RetryFailed
queues it again under a new sequence, which the bridge then receives, and
the ticket's history (and WatchTickets) says both. A failure reported after
the message was acknowledged as delivered (a WhatsApp status callback)
carries the message and is recorded once; a malformed one is refused and
writes nothing. ListFailed pages newest first, only admins call either
method, and the list survives a restart."""
import os
import subprocess
import tempfile
import time
import unittest

import grpc
from google.protobuf import json_format

import hwclient
import hwtest

API = hwclient.Api()

SUBSCRIBE = "helpwire.v1.Outbox/Subscribe"
ACK = "helpwire.v1.Outbox/Ack"
LIST = "helpwire.v1.Outbox/ListFailed"
RETRY = "helpwire.v1.Outbox/RetryFailed"
TG, WA = "CHANNEL_TELEGRAM", "CHANNEL_WHATSAPP"
TELEGRAM = 2

KINDS = API.pool.FindEnumTypeByName("helpwire.v1.TicketEventKind").values_by_name
DELIVERY_FAILED = KINDS["TICKET_EVENT_KIND_DELIVERY_FAILED"].number
DELIVERY_RETRIED = KINDS["TICKET_EVENT_KIND_DELIVERY_RETRIED"].number

BLOCKED = "telegram 403: Forbidden: bot was blocked by the user"


def seed(data_dir, *args):
    exe = hwclient.find_file("tests/integration/outbox_seed", "tests/integration/outbox_seed")
    out = subprocess.run([exe, data_dir] + [str(a) for a in args], check=True, capture_output=True)
    return out.stdout.decode().split()


def to_dict(m):
    """m as the JSON-like dict hwclient builds requests from."""
    return json_format.MessageToDict(m)


def read_until(stream, seq, timeout=10):
    """Reads the stream until the message with seq (control messages, seq
    0, and other messages are skipped); returns it."""
    deadline = time.time() + timeout
    for m in stream:
        if m.seq == seq:
            return m
        if time.time() > deadline:
            break
    raise AssertionError("seq %d not streamed" % seq)


def streamed_seqs(client, channel, seconds=1.5):
    """Every sequence a new subscription streams within seconds."""
    seqs = []
    stream = client.stream(SUBSCRIBE, timeout=seconds, channel=channel)
    try:
        for m in stream:
            if m.seq:
                seqs.append(m.seq)
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e
    return seqs


class StatusMixin:
    def assert_status(self, code, text, fn, *args, **kwargs):
        with self.assertRaises(grpc.RpcError) as cm:
            fn(*args, **kwargs)
        self.assertEqual(cm.exception.code(), code, cm.exception.details())
        if text:
            self.assertIn(text, cm.exception.details())
        return cm.exception


class FailedList(StatusMixin, unittest.TestCase):
    """A demo server: customers write in, agents reply, the bridge fails."""

    @classmethod
    def setUpClass(cls):
        cls.server = hwclient.Server("--demo")
        cls.admin = cls.server.client(api=API, role="admin")
        cls.agent = cls.server.client(api=API, role="agent")
        cls.bridge = cls.server.client(api=API, role="bridge")

    @classmethod
    def tearDownClass(cls):
        for c in (cls.admin, cls.agent, cls.bridge):
            c.close()
        assert cls.server.stop() == 0, cls.server.read_log()

    def reply(self, user, channel=TG, text="Your refund is on its way."):
        """A ticket of a new customer on channel with one agent reply:
        (ticket id, the reply's outbox sequence)."""
        r = self.bridge.call("helpwire.v1.Router/Route", channel=channel, channelUserId=user, displayName=user,
                             text="如何重置密码", messageId="first-" + user)
        t = self.agent.call("helpwire.v1.Tickets/CreateTicket", customerId=r.customer_id,
                            text="The app crashes with error 4411 on start").ticket
        m = self.agent.call("helpwire.v1.Tickets/AddMessage", ticketId=t.id, kind="MESSAGE_KIND_AGENT_REPLY",
                            text=text)
        self.assertGreater(m.outbox_seq, 0)
        return t.id, m.outbox_seq

    def history(self, ticket, kind):
        events = self.agent.call("helpwire.v1.Tickets/GetTicketHistory", ticketId=ticket).events
        return [e.detail for e in events if e.kind == kind]

    def failed_entries(self, channel=None, **kw):
        if channel:
            kw["channel"] = channel
        out, token = [], ""
        while True:
            r = self.admin.call(LIST, pageToken=token, **kw)
            out += list(r.entries)
            token = r.next_page_token
            if not token:
                return out

    def test_failed_reply_is_listed_then_retried_under_a_new_sequence(self):
        ticket, seq = self.reply("fail-retry-1", text="Your parcel left the warehouse.")
        watcher = self.server.client(api=API, role="agent")
        watch = watcher.stream("helpwire.v1.Tickets/WatchTickets", timeout=30)
        live, reader = hwclient.watch_ticket(watch, ticket)
        try:
            time.sleep(0.3)
            stream = self.bridge.stream(SUBSCRIBE, timeout=30, channel=TG)
            sent = read_until(stream, seq)
            stream.cancel()
            r = self.bridge.call(ACK, channel=TG, failed=[{"seq": seq, "reason": BLOCKED}])
            self.assertEqual((r.acked, r.failed), (1, 1))

            # Listed with its reason and attempts, the message as queued.
            entries = [e for e in self.failed_entries(TG) if e.message.seq == seq]
            self.assertEqual(len(entries), 1)
            e = entries[0]
            self.assertEqual(e.reason, BLOCKED)
            self.assertEqual(e.message.attempt, 1)
            self.assertEqual(e.message.text, "Your parcel left the warehouse.")
            self.assertEqual(e.message.ticket_id, ticket)
            self.assertEqual(e.message.channel_user_id, sent.channel_user_id)
            self.assertLessEqual(abs(e.failed_unix_ms - time.time() * 1000), 60000)
            self.assertIn(seq, [x.message.seq for x in self.failed_entries()])  # every channel
            self.assertNotIn(seq, [x.message.seq for x in self.failed_entries(WA)])
            # No longer queued: a new subscription does not stream it.
            self.assertNotIn(seq, streamed_seqs(self.bridge, TG))
            self.assertEqual(self.history(ticket, DELIVERY_FAILED), ["outbox seq %d: %s" % (seq, BLOCKED)])

            # Queued again: a new sequence, streamed as a first attempt.
            new = list(self.admin.call(RETRY, channel=TG, seqs=[seq]).seqs)
            self.assertEqual(len(new), 1)
            self.assertGreater(new[0], seq)
            stream = self.bridge.stream(SUBSCRIBE, timeout=30, channel=TG)
            again = read_until(stream, new[0])
            stream.cancel()
            self.assertEqual((again.text, again.attempt, again.ticket_id), (sent.text, 1, ticket))
            self.assertEqual(again.channel_user_id, sent.channel_user_id)
            self.assertGreaterEqual(again.created_unix_ms, e.failed_unix_ms)
            self.assertNotIn(seq, [x.message.seq for x in self.failed_entries()])
            want = "outbox seq %d queued again as %d" % (seq, new[0])
            self.assertEqual(self.history(ticket, DELIVERY_RETRIED), [want])
            deadline = time.time() + 10
            while DELIVERY_RETRIED not in [ev.kind for ev in live] and time.time() < deadline:
                time.sleep(0.05)
            retried = [ev for ev in live if ev.kind == DELIVERY_RETRIED]
            self.assertEqual([ev.detail for ev in retried], [want])
            self.assertIn(DELIVERY_FAILED, [ev.kind for ev in live])
            # Delivered this time.
            self.assertEqual(self.bridge.call(ACK, channel=TG, seqs=[new[0]]).acked, 1)
            # Retrying it again: it is not in the list any more.
            self.assert_status(grpc.StatusCode.NOT_FOUND, str(seq), self.admin.call, RETRY, channel=TG,
                               seqs=[seq])
        finally:
            watch.cancel()
            reader.join(timeout=10)
            watcher.close()

    def test_retry_of_an_unknown_sequence_queues_nothing(self):
        _, seq = self.reply("fail-unknown-1")
        self.assertEqual(self.bridge.call(ACK, channel=TG, failed=[{"seq": seq, "reason": BLOCKED}]).failed, 1)
        _, last = self.reply("fail-unknown-2")  # the channel's last sequence
        e = self.assert_status(grpc.StatusCode.NOT_FOUND, "seqs[1]: 987654321", self.admin.call, RETRY,
                               channel=TG, seqs=[seq, 987654321])
        self.assertIn("not in the failed list", e.details())
        # Nothing was queued and seq is still listed: the next sequence is
        # the one after last, and retrying seq alone takes it.
        self.assertIn(seq, [x.message.seq for x in self.failed_entries(TG)])
        self.assertEqual(list(self.admin.call(RETRY, channel=TG, seqs=[seq]).seqs), [last + 1])
        # A sequence failed on another channel is not this channel's.
        self.assert_status(grpc.StatusCode.NOT_FOUND, str(last + 1), self.admin.call, RETRY, channel=WA,
                           seqs=[last + 1])

    def test_retry_and_list_validate_their_arguments(self):
        self.assert_status(grpc.StatusCode.INVALID_ARGUMENT, "channel", self.admin.call, RETRY, seqs=[1])
        self.assert_status(grpc.StatusCode.INVALID_ARGUMENT, "seqs", self.admin.call, RETRY, channel=TG)
        self.assert_status(grpc.StatusCode.INVALID_ARGUMENT, "seqs", self.admin.call, RETRY, channel=TG,
                           seqs=list(range(1, 1002)))
        self.assert_status(grpc.StatusCode.INVALID_ARGUMENT, "seqs[2]: 5 repeated", self.admin.call, RETRY,
                           channel=TG, seqs=[5, 6, 5])
        # 1000 unknown sequences: within the bound, so NOT_FOUND for the first.
        self.assert_status(grpc.StatusCode.NOT_FOUND, "seqs[0]", self.admin.call, RETRY, channel=TG,
                           seqs=list(range(10 ** 9, 10 ** 9 + 1000)))
        raw = bytes([1 << 3, 99])  # channel 99
        self.assert_status(grpc.StatusCode.INVALID_ARGUMENT, "channel", self.admin.raw, LIST, raw)
        self.assert_status(grpc.StatusCode.INVALID_ARGUMENT, "page_token", self.admin.call, LIST,
                           pageToken="not-a-token")
        # A token of the Telegram listing is not one of the WhatsApp one.
        for u in ("fail-token-1", "fail-token-2"):
            _, seq = self.reply(u)
            self.bridge.call(ACK, channel=TG, failed=[{"seq": seq, "reason": BLOCKED}])
        r = self.admin.call(LIST, channel=TG, pageSize=1)
        self.assertTrue(r.next_page_token)
        self.assert_status(grpc.StatusCode.INVALID_ARGUMENT, "page_token", self.admin.call, LIST, channel=WA,
                           pageToken=r.next_page_token)

    def test_only_admins_list_and_retry(self):
        for role in ("bridge", "agent"):
            c = self.server.client(api=API, role=role)
            try:
                self.assert_status(grpc.StatusCode.PERMISSION_DENIED, None, c.call, LIST)
                self.assert_status(grpc.StatusCode.PERMISSION_DENIED, None, c.call, RETRY, channel=TG, seqs=[1])
            finally:
                c.close()
        c = self.server.client(api=API, token="")
        try:
            self.assert_status(grpc.StatusCode.UNAUTHENTICATED, None, c.call, LIST)
        finally:
            c.close()

    def delivered_whatsapp_reply(self, user):
        """An agent's WhatsApp reply, streamed and acknowledged as delivered:
        (ticket, the message as streamed)."""
        ticket, seq = self.reply(user, channel=WA, text="Ihre Erstattung ist unterwegs.")
        stream = self.bridge.stream(SUBSCRIBE, timeout=30, channel=WA)
        m = read_until(stream, seq)
        stream.cancel()
        self.assertEqual(self.bridge.call(ACK, channel=WA, seqs=[seq]).acked, 1)
        return ticket, m

    def test_late_failure_is_recorded_once(self):
        ticket, m = self.delivered_whatsapp_reply("late-1")
        reason = "whatsapp 131047: Re-engagement message"
        failed = [{"seq": m.seq, "reason": reason, "message": to_dict(m)}]
        r = self.bridge.call(ACK, channel=WA, failed=failed)
        self.assertEqual((r.acked, r.failed), (1, 1))
        entries = [e for e in self.failed_entries(WA) if e.message.seq == m.seq]
        self.assertEqual(len(entries), 1)
        self.assertEqual((entries[0].reason, entries[0].message.text), (reason, m.text))
        self.assertEqual(entries[0].message.ticket_id, ticket)
        self.assertEqual(self.history(ticket, DELIVERY_FAILED), ["outbox seq %d: %s" % (m.seq, reason)])
        # The same report again (the callback is retried): ignored.
        r = self.bridge.call(ACK, channel=WA, failed=failed)
        self.assertEqual((r.acked, r.failed), (0, 0))
        self.assertEqual(len([e for e in self.failed_entries(WA) if e.message.seq == m.seq]), 1)
        self.assertEqual(len(self.history(ticket, DELIVERY_FAILED)), 1)
        # Without the message a sequence no longer queued is ignored.
        _, m2 = self.delivered_whatsapp_reply("late-2")
        r = self.bridge.call(ACK, channel=WA, failed=[{"seq": m2.seq, "reason": reason}])
        self.assertEqual((r.acked, r.failed), (0, 0))
        self.assertNotIn(m2.seq, [e.message.seq for e in self.failed_entries(WA)])
        # A late failure is retried like any other.
        new = self.admin.call(RETRY, channel=WA, seqs=[m.seq]).seqs[0]
        stream = self.bridge.stream(SUBSCRIBE, timeout=30, channel=WA)
        self.assertEqual(read_until(stream, new).text, m.text)
        stream.cancel()
        self.bridge.call(ACK, channel=WA, seqs=[new])
        # The old report arriving once more after the retry is still a
        # repeat: not listed again, no second DELIVERY_FAILED.
        r = self.bridge.call(ACK, channel=WA, failed=failed)
        self.assertEqual((r.acked, r.failed), (0, 0))
        self.assertNotIn(m.seq, [e.message.seq for e in self.failed_entries(WA)])
        self.assertEqual(len(self.history(ticket, DELIVERY_FAILED)), 1)

    def test_invalid_late_failure_is_refused_and_writes_nothing(self):
        ticket, m = self.delivered_whatsapp_reply("late-bad-1")
        _, queued = self.reply("late-bad-2", channel=WA)  # still queued
        reason = "whatsapp 131026: Message undeliverable"
        good = to_dict(m)

        def attempt(field, **changes):
            msg = dict(good, **changes)
            for k in [k for k, v in changes.items() if v is None]:
                del msg[k]
            self.assert_status(grpc.StatusCode.INVALID_ARGUMENT, field, self.bridge.call, ACK, channel=WA,
                               seqs=[queued], failed=[{"seq": m.seq, "reason": reason, "message": msg}])

        attempt("failed[0].message.seq", seq=str(m.seq + 1))
        attempt("failed[0].message.channel", channel=TG)
        attempt("failed[0].message.channel_user_id", channelUserId=None)
        attempt("failed[0].message.text", text=None)
        attempt("failed[0].message.text", text="x" * 4097)  # over WhatsApp's 4096 characters
        attempt("failed[0].message.kind", kind=None)
        # A sequence the channel never handed out.
        self.assert_status(grpc.StatusCode.INVALID_ARGUMENT, "failed[0].seq", self.bridge.call, ACK, channel=WA,
                           seqs=[queued], failed=[{"seq": 10 ** 12, "reason": reason,
                                                   "message": dict(good, seq=str(10 ** 12))}])
        # Text that is not UTF-8 (raw bytes: the Python client would not send it).
        req = API.message("helpwire.v1.AckRequest", channel=WA, seqs=[queued],
                          failed=[{"seq": m.seq, "reason": reason, "message": dict(good, text="bad XX text")}])
        raw = req.SerializeToString().replace(b"bad XX text", b"bad \xff\xfe text")
        self.assert_status(grpc.StatusCode.INVALID_ARGUMENT, "failed[0].message.text", self.bridge.raw, ACK, raw)
        # Nothing written: not listed, no history, and the delivered seq of
        # the same request is still queued.
        self.assertNotIn(m.seq, [e.message.seq for e in self.failed_entries(WA)])
        self.assertEqual(self.history(ticket, DELIVERY_FAILED), [])
        self.assertIn(queued, streamed_seqs(self.bridge, WA))
        self.assertEqual(self.bridge.call(ACK, channel=WA, seqs=[queued]).acked, 1)


class ManyAndRestart(StatusMixin, unittest.TestCase):
    """A seeded store with 120 Telegram replies, all refused."""

    def test_paging_newest_first_over_restarts(self):
        data = tempfile.mkdtemp(prefix="hw-data-", dir=os.environ.get("TEST_TMPDIR"))
        self.assertEqual(len(seed(data, "outbox", TELEGRAM, 120)), 120)
        server = hwclient.Server(data_dir=data)
        try:
            c = server.client(api=API)
            stream = c.stream(SUBSCRIBE, timeout=30, channel=TG)
            read_until(stream, 120)
            stream.cancel()
            failed = [{"seq": s, "reason": "telegram 400: Bad Request: chat not found"} for s in range(1, 121)]
            r = c.call(ACK, channel=TG, failed=failed)
            self.assertEqual((r.acked, r.failed), (120, 120))
            pages, token = [], ""
            while True:
                r = c.call(LIST, pageToken=token)
                pages.append([e.message.seq for e in r.entries])
                token = r.next_page_token
                if not token:
                    break
            self.assertEqual([len(p) for p in pages], [50, 50, 20])
            # Failed in one Ack, in sequence order: newest first is
            # descending sequence.
            self.assertEqual(sum(pages, []), list(range(120, 0, -1)))
            self.assertEqual(len(c.call(LIST, channel=TG, pageSize=1000).entries), 120)
            self.assertEqual(len(c.call(LIST, pageSize=5000).entries), 120)  # more is 1000
            self.assertEqual(len(c.call(LIST, channel=WA).entries), 0)
            c.close()
        finally:
            self.assertEqual(server.stop(), 0, server.read_log())

        # After a restart the list is as it was, and retries work.
        server = hwclient.Server(data_dir=data)
        try:
            c = server.client(api=API)
            r = c.call(LIST, channel=TG, pageSize=3)
            self.assertEqual([e.message.seq for e in r.entries], [120, 119, 118])
            self.assertEqual(r.entries[0].message.text, "reply number 119")
            self.assertEqual(r.entries[0].reason, "telegram 400: Bad Request: chat not found")
            new = list(c.call(RETRY, channel=TG, seqs=[7, 3]).seqs)
            self.assertEqual(new, [121, 122])
            stream = c.stream(SUBSCRIBE, timeout=30, channel=TG)
            self.assertEqual(read_until(stream, 121).text, "reply number 6")
            self.assertEqual(read_until(stream, 122).text, "reply number 2")
            stream.cancel()
            self.assertEqual(len(c.call(LIST, pageSize=1000).entries), 118)
            c.close()
        finally:
            self.assertEqual(server.stop(), 0, server.read_log())


if __name__ == "__main__":
    hwtest.main()
