"""tickets_test: the Tickets service through the real helpwired: a ticket's
whole life, optimistic concurrency, pagination under change, the live
WatchTickets stream, and no acknowledged ticket lost to kill -9."""
import os
import signal
import threading
import time
import unittest

import grpc

import hwclient
import hwtest

API = hwclient.Api()
TG = "CHANNEL_TELEGRAM"


def new_customer(bridge, user):
    """A customer made the way customers appear: by writing in (an FAQ
    question, answered automatically, so no ticket is opened)."""
    r = bridge.call("helpwire.v1.Router/Route", channel=TG, channelUserId=user, displayName=user,
                    text="如何重置密码", messageId="first-" + user)
    assert r.action == 1, r
    return r.customer_id


class TicketLife(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = hwclient.Server("--demo")
        cls.agent = cls.server.client(api=API, role="admin")
        cls.bridge = cls.server.client(api=API, role="bridge")

    @classmethod
    def tearDownClass(cls):
        cls.agent.close()
        cls.bridge.close()
        assert cls.server.stop() == 0, cls.server.read_log()

    def create(self, customer, text="The app crashes with error 4411 on start", **kw):
        return self.agent.call("helpwire.v1.Tickets/CreateTicket", customerId=customer, text=text, **kw)

    def test_a_reply_over_the_channel_limit_is_sent_in_parts_the_agent_sees(self):
        cust = new_customer(self.bridge, "long-1")  # a Telegram customer: 4096 UTF-16 units a message
        t = self.create(cust, queue="technical").ticket
        text = ("Please reinstall the app and sign in again. " * 120).strip()  # 5279 characters
        m = self.agent.call("helpwire.v1.Tickets/AddMessage", ticketId=t.id, kind="MESSAGE_KIND_AGENT_REPLY",
                            text=text)
        self.assertEqual(len(m.outbox_seqs), 2)
        self.assertEqual(m.outbox_seqs[1], m.outbox_seqs[0] + 1)
        self.assertEqual(m.outbox_seq, m.outbox_seqs[0])
        self.assertEqual(m.message.delivery_parts, 2)
        self.assertEqual(m.message.text, text)
        # Kept whole, once; the history says how it was sent.
        got = self.agent.call("helpwire.v1.Tickets/GetTicket", ticketId=t.id, includeMessages=True)
        self.assertEqual([x.text for x in got.messages if x.kind == 2], [text])
        self.assertEqual(got.messages[-1].delivery_parts, 2)
        hist = self.agent.call("helpwire.v1.Tickets/GetTicketHistory", ticketId=t.id).events
        self.assertIn("agent reply, sent in 2 parts", [e.detail for e in hist])
        # The outbox streams the parts in order, numbered.
        stream = self.bridge.stream("helpwire.v1.Outbox/Subscribe", timeout=10, channel=TG)
        parts = []
        for o in stream:
            if o.seq in m.outbox_seqs:
                parts.append(o)
            if len(parts) == 2:
                break
        stream.cancel()
        self.assertEqual([o.seq for o in parts], list(m.outbox_seqs))
        self.assertEqual([(o.part, o.parts) for o in parts], [(1, 2), (2, 2)])
        self.assertEqual(parts[0].text + " " + parts[1].text, text)
        for o in parts:
            self.assertLessEqual(len(o.text.encode("utf-16-le")) // 2, 4096)
        # A short reply and a note are as before.
        m = self.agent.call("helpwire.v1.Tickets/AddMessage", ticketId=t.id, kind="MESSAGE_KIND_AGENT_REPLY",
                            text="Done?")
        self.assertEqual(list(m.outbox_seqs), [m.outbox_seq])
        self.assertEqual(m.message.delivery_parts, 1)
        m = self.agent.call("helpwire.v1.Tickets/AddMessage", ticketId=t.id, kind="MESSAGE_KIND_INTERNAL_NOTE",
                            text=text)
        self.assertEqual((m.outbox_seq, list(m.outbox_seqs), m.message.delivery_parts), (0, [], 0))

    def test_whole_life_of_a_ticket(self):
        cust = new_customer(self.bridge, "life-1")
        rep = self.create(cust, queue="technical", idempotencyKey="life-1-k", tags=["mobile"])
        t = rep.ticket
        self.assertEqual(t.status, 1)
        self.assertEqual(t.subject, "The app crashes with error 4411 on start")
        self.assertEqual(t.assignee_agent_id, "alice")
        self.assertGreaterEqual(t.number, 1000)
        # A retry with the same key is the same ticket.
        again = self.create(cust, queue="technical", idempotencyKey="life-1-k")
        self.assertTrue(again.replayed)
        self.assertEqual(again.ticket.id, t.id)

        m = self.agent.call("helpwire.v1.Tickets/AddMessage", ticketId=t.id, kind="MESSAGE_KIND_AGENT_REPLY",
                            text="Please update to version 2.3")
        self.assertGreater(m.outbox_seq, 0)
        self.agent.call("helpwire.v1.Tickets/AddMessage", ticketId=t.id, kind="MESSAGE_KIND_INTERNAL_NOTE",
                        text="known bug #77")
        t = self.agent.call("helpwire.v1.Tickets/UpdateTicket", ticketId=t.id, updateMask=["status"],
                            status="TICKET_STATUS_PENDING")
        self.assertEqual(t.status, 2)
        # The customer answers: PENDING goes back to OPEN.
        self.agent.call("helpwire.v1.Tickets/AddMessage", ticketId=t.id, kind="MESSAGE_KIND_CUSTOMER",
                        text="still crashing")
        t = self.agent.call("helpwire.v1.Tickets/GetTicket", ticketId=t.id).ticket
        self.assertEqual(t.status, 1)
        t = self.agent.call("helpwire.v1.Tickets/EscalateTicket", ticketId=t.id, reason="crash on every start")
        self.assertEqual(t.status, 3)
        self.assertEqual(t.escalation_reason, "crash on every start")
        self.assertGreater(t.escalated_unix_ms, 0)
        # Forbidden moves are refused and change nothing.
        with self.assertRaises(grpc.RpcError) as cm:
            self.agent.call("helpwire.v1.Tickets/UpdateTicket", ticketId=t.id, updateMask=["status"],
                            status="TICKET_STATUS_PENDING")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertIn("ESCALATED -> PENDING", cm.exception.details())
        t = self.agent.call("helpwire.v1.Tickets/UpdateTicket", ticketId=t.id, updateMask=["status"],
                            status="TICKET_STATUS_RESOLVED")
        self.assertEqual(t.status, 4)
        t = self.agent.call("helpwire.v1.Tickets/UpdateTicket", ticketId=t.id, updateMask=["status"],
                            status="TICKET_STATUS_OPEN")  # reopen
        self.assertEqual(t.status, 1)
        closed = self.agent.call("helpwire.v1.Tickets/CloseTicket", ticketId=t.id, resolution="fixed in 2.3.1")
        self.assertEqual(closed.ticket.status, 5)
        self.assertEqual(closed.ticket.resolution, "fixed in 2.3.1")
        with self.assertRaises(grpc.RpcError) as cm:
            self.agent.call("helpwire.v1.Tickets/UpdateTicket", ticketId=t.id, updateMask=["status"],
                            status="TICKET_STATUS_OPEN")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        with self.assertRaises(grpc.RpcError) as cm:
            self.agent.call("helpwire.v1.Tickets/AddMessage", ticketId=t.id, kind="MESSAGE_KIND_AGENT_REPLY",
                            text="late")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)

        hist = self.agent.call("helpwire.v1.Tickets/GetTicketHistory", ticketId=t.id).events
        kinds = [e.kind for e in hist]
        for k in (1, 4, 2, 3, 7, 13, 10):  # CREATED ASSIGNED MESSAGE STATUS ESCALATED REOPENED CLOSED
            self.assertIn(k, kinds)
        self.assertEqual([e.seq for e in hist], list(range(1, len(hist) + 1)))
        self.assertTrue(all(e.at_unix_ms > 0 and e.actor for e in hist))
        full = self.agent.call("helpwire.v1.Tickets/GetTicket", ticketId=t.id, includeMessages=True)
        self.assertEqual([m.kind for m in full.messages], [1, 2, 3, 1])
        # The agent's load went back down.
        self.assertEqual(self.agent.call("helpwire.v1.Agents/GetAgent", agentId="alice").open_tickets,
                         len(self.agent.call("helpwire.v1.Tickets/ListTickets", assigneeAgentId="alice",
                                             status="TICKET_STATUS_OPEN").tickets))

    def test_a_long_conversation_pages(self):
        cust = new_customer(self.bridge, "pages-1")
        t = self.create(cust, text="message 0", queue="technical").ticket
        for i in range(1, 25):
            self.agent.call("helpwire.v1.Tickets/AddMessage", ticketId=t.id, kind="MESSAGE_KIND_INTERNAL_NOTE",
                            text="message %d" % i)
        texts, token, pages = [], "", 0
        while True:
            r = self.agent.call("helpwire.v1.Tickets/GetTicket", ticketId=t.id, includeMessages=True,
                                messagesPageSize=10, messagesPageToken=token)
            texts += [m.text for m in r.messages]
            pages += 1
            # A message added while paging shows up on a later page.
            if pages == 1:
                self.agent.call("helpwire.v1.Tickets/AddMessage", ticketId=t.id, kind="MESSAGE_KIND_INTERNAL_NOTE",
                                text="message 25")
            token = r.next_messages_page_token
            if not token:
                break
        self.assertEqual(texts, ["message %d" % i for i in range(26)])
        self.assertEqual(pages, 3)
        # Without a page size, all of it (up to 10000) and no token.
        whole = self.agent.call("helpwire.v1.Tickets/GetTicket", ticketId=t.id, includeMessages=True)
        self.assertEqual(len(whole.messages), 26)
        self.assertEqual(whole.next_messages_page_token, "")
        first = self.agent.call("helpwire.v1.Tickets/GetTicket", ticketId=t.id, includeMessages=True,
                                messagesPageSize=10)
        other = self.create(cust, text="another ticket", queue="billing").ticket
        for bad, field in ((dict(ticketId=other.id, includeMessages=True,
                                 messagesPageToken=first.next_messages_page_token), "messages_page_token"),
                           (dict(ticketId=t.id, includeMessages=True, messagesPageToken="zz"), "messages_page_token"),
                           (dict(ticketId=t.id, messagesPageToken=first.next_messages_page_token),
                            "include_messages")):
            with self.assertRaises(grpc.RpcError) as e:
                self.agent.call("helpwire.v1.Tickets/GetTicket", **bad)
            self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn(field, e.exception.details())

    def test_two_agents_updating_one_ticket_one_gets_aborted(self):
        cust = new_customer(self.bridge, "race-1")
        t = self.create(cust, queue="billing").ticket
        a = self.agent.call("helpwire.v1.Tickets/UpdateTicket", ticketId=t.id, updateMask=["priority"],
                            priority="PRIORITY_URGENT", expectedVersion=t.version)
        self.assertEqual(a.version, t.version + 1)
        with self.assertRaises(grpc.RpcError) as cm:
            self.agent.call("helpwire.v1.Tickets/UpdateTicket", ticketId=t.id, updateMask=["priority"],
                            priority="PRIORITY_LOW", expectedVersion=t.version)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.ABORTED)
        self.assertEqual(self.agent.call("helpwire.v1.Tickets/GetTicket", ticketId=t.id).ticket.priority, 4)

    def test_bad_requests(self):
        self.cust = new_customer(self.bridge, "bad-1")
        cases = [
            ("helpwire.v1.Tickets/CreateTicket", dict(customerId="c-1", text=""), "text"),
            ("helpwire.v1.Tickets/CreateTicket", dict(customerId="", text="x"), "customer_id"),
            ("helpwire.v1.Tickets/CreateTicket", dict(customerId=self.cust, text="x", queue="no-such"), "queue"),
            ("helpwire.v1.Tickets/CreateTicket", dict(customerId="c-999999", text="x"), "customer_id"),
            ("helpwire.v1.Tickets/UpdateTicket", dict(ticketId="t-1000"), "update_mask"),
            ("helpwire.v1.Tickets/UpdateTicket", dict(ticketId="t-1000", updateMask=["colour"]), "colour"),
            ("helpwire.v1.Tickets/AddMessage", dict(ticketId="t-1000", text="x"), "kind"),
            ("helpwire.v1.Tickets/ListTickets", dict(pageToken="zz"), "page_token"),
            ("helpwire.v1.Tickets/EscalateTicket", dict(ticketId="t-1000", reason=""), "reason"),
        ]
        for path, args, word in cases:
            with self.assertRaises(grpc.RpcError) as cm:
                self.agent.call(path, **args)
            self.assertIn(cm.exception.code(), (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND), path)
            self.assertIn(word, cm.exception.details())
        with self.assertRaises(grpc.RpcError) as cm:
            self.agent.call("helpwire.v1.Tickets/GetTicket", ticketId="t-999999")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_pagination_over_a_changing_list_misses_nothing_and_repeats_nothing(self):
        cust = new_customer(self.bridge, "page-1")
        # A queue nobody serves, so these tickets do not fill the agents.
        self.agent.call("helpwire.v1.Agents/PutSkill", skill={"name": "paging"})
        made = [self.create(cust, text="paging ticket %d" % i, queue="paging").ticket.id for i in range(23)]
        seen = []
        token = ""
        extra = []
        while True:
            page = self.agent.call("helpwire.v1.Tickets/ListTickets", customerId=cust, pageSize=5, pageToken=token)
            seen += [t.id for t in page.tickets]
            # Tickets change and new ones arrive while we page.
            if page.tickets:
                self.agent.call("helpwire.v1.Tickets/UpdateTicket", ticketId=page.tickets[0].id,
                                updateMask=["priority"], priority="PRIORITY_HIGH")
                extra.append(self.create(cust, text="new while paging", queue="paging").ticket.id)
            token = page.next_page_token
            if not token:
                break
        self.assertEqual(len(seen), len(set(seen)))  # nothing twice
        for tid in made:
            self.assertIn(tid, seen)  # nothing missed
        numbers = [int(t[2:]) for t in seen]
        self.assertEqual(numbers, sorted(numbers, reverse=True))  # newest first

    def test_watch_tickets_streams_matching_events(self):
        stream = self.agent.stream("helpwire.v1.Tickets/WatchTickets", timeout=10, queue="billing")
        got = []

        def read():
            try:
                for ev in stream:
                    got.append(ev)
                    if len(got) >= 1 and got[-1].ticket.queue == "billing":
                        break
            except grpc.RpcError:
                pass

        reader = threading.Thread(target=read)
        reader.start()
        time.sleep(0.3)
        cust = new_customer(self.bridge, "watch-1")
        self.create(cust, text="wrong technical thing", queue="technical")  # filtered out
        t = self.create(cust, text="please refund my order", queue="billing").ticket
        reader.join(timeout=10)
        stream.cancel()
        self.assertGreaterEqual(len(got), 1)
        self.assertTrue(all(e.ticket.queue == "billing" for e in got))
        self.assertEqual(got[0].ticket_id, t.id)
        self.assertEqual(got[0].kind, 1)  # CREATED


class Durability(unittest.TestCase):
    def test_kill_9_under_create_load_loses_no_acknowledged_ticket(self):
        server = hwclient.Server("--demo")
        data = server.data_dir
        admin = server.client(api=API, role="admin")
        bridge = server.client(api=API, role="bridge")
        cust = new_customer(bridge, "durable-1")
        admin.call("helpwire.v1.Agents/PutSkill", skill={"name": "paging"})
        acked = []
        stop = threading.Event()

        def load(k):
            c = server.client(api=API, role="admin")
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    r = c.call("helpwire.v1.Tickets/CreateTicket", customerId=cust, text="load %d-%d" % (k, i),
                               queue="paging", idempotencyKey="k%d-%d" % (k, i), timeout=5)
                    acked.append(r.ticket.id)
                except grpc.RpcError:
                    pass
            c.close()

        threads = [threading.Thread(target=load, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        server.proc.send_signal(signal.SIGKILL)
        server.wait()
        stop.set()
        for t in threads:
            t.join()
        admin.close()
        bridge.close()
        self.assertGreater(len(acked), 20)
        again = hwclient.Server(data_dir=data)
        try:
            c = again.client(api=API, token=server.tokens["admin"])
            for tid in acked:
                c.call("helpwire.v1.Tickets/GetTicket", ticketId=tid)
            c.close()
        finally:
            self.assertEqual(again.stop(), 0)


if __name__ == "__main__":
    hwtest.main()
