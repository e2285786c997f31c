"""routing_test: Router.Route, Customers and Agents through the real
helpwired seeded with the demo help center (--demo)."""
import threading
import unittest

import grpc

import hwclient
import hwtest

API = hwclient.Api()
TG, WA, WEB = "CHANNEL_TELEGRAM", "CHANNEL_WHATSAPP", "CHANNEL_WEBCHAT"


class DemoServerCase(unittest.TestCase):
    """A class of tests on one helpwired --demo of its own, with a bridge
    and an admin client."""

    @classmethod
    def setUpClass(cls):
        cls.server = hwclient.Server("--demo")
        cls.bridge = cls.server.client(api=API, role="bridge")
        cls.admin = cls.server.client(api=API, role="admin")
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        cls.bridge.close()
        cls.admin.close()
        rc = cls.server.stop()
        assert rc == 0, cls.server.read_log()


class Routing(DemoServerCase):
    def route(self, user, text, channel=TG, message_id=None, name="Customer", **extra):
        Routing.n += 1
        return self.bridge.call("helpwire.v1.Router/Route", channel=channel, channelUserId=user, displayName=name,
                                text=text, messageId=message_id or "msg-%d" % Routing.n, **extra)

    def test_new_telegram_user_gets_the_faq_answer(self):
        r = self.route("tg-new-1", "如何重置密码", name="小王")
        self.assertEqual(r.action, 1)  # AUTO_REPLY
        self.assertIn("忘记密码", r.reply_text)
        self.assertGreaterEqual(r.confidence, 0.88)
        self.assertEqual(r.hits[0].id, "faq-reset-password")
        self.assertEqual(r.ticket_id, "")
        # One message within Telegram's limit: one outbox sequence.
        self.assertGreater(r.outbox_seq, 0)
        self.assertEqual(list(r.outbox_seqs), [r.outbox_seq])
        c = self.admin.call("helpwire.v1.Customers/LookupCustomer", channel=TG, channelUserId="tg-new-1")
        self.assertEqual(c.id, r.customer_id)
        self.assertEqual(c.name, "小王")

    def test_paraphrase_in_english_reaches_the_chinese_faq(self):
        r = self.route("tg-new-2", "I forgot my password, how can I reset it?")
        self.assertEqual(r.action, 1)
        self.assertIn("Forgot password", r.reply_text)

    def test_technical_complaint_opens_a_ticket_for_the_technical_agent(self):
        r = self.route("tg-tech-1", "The app shows error E1234 and crashes every time I try to log in")
        self.assertEqual(r.action, 2)  # NEW_TICKET
        self.assertEqual(r.queue, "technical")
        self.assertEqual(r.assignee_agent_id, "alice")
        self.assertIn("#%d" % r.ticket_number, r.reply_text)
        self.assertGreaterEqual(r.ticket_number, 1000)
        t = self.admin.call("helpwire.v1.Tickets/GetTicket", ticketId=r.ticket_id, includeMessages=True).ticket
        self.assertEqual(t.queue, "technical")
        self.assertEqual(t.status, 1)  # OPEN
        self.assertEqual(t.customer_id, r.customer_id)

        # A second message of the same customer lands on that ticket.
        r2 = self.route("tg-tech-1", "it still does not work")
        self.assertEqual(r2.action, 3)  # APPENDED
        self.assertEqual(r2.ticket_id, r.ticket_id)
        got = self.admin.call("helpwire.v1.Tickets/GetTicket", ticketId=r.ticket_id, includeMessages=True)
        self.assertEqual([m.text for m in got.messages][-1], "it still does not work")
        self.assertEqual(got.ticket.message_count, 2)

    def test_billing_question_in_chinese_goes_to_billing(self):
        r = self.route("tg-bill-1", "我上个月被重复扣费了，请帮我处理发票和退钱")
        self.assertEqual(r.action, 2)
        self.assertEqual(r.queue, "billing")
        self.assertEqual(r.assignee_agent_id, "bob")
        self.assertIn("工单", r.reply_text)

    def test_same_message_id_twice_changes_nothing(self):
        first = self.route("tg-dup-1", "My invoice amount is wrong, please check the billing", message_id="dup-1")
        tickets_before = self.admin.call("helpwire.v1.Tickets/ListTickets", customerId=first.customer_id)
        again = self.route("tg-dup-1", "My invoice amount is wrong, please check the billing", message_id="dup-1")
        self.assertTrue(again.duplicate)
        self.assertFalse(first.duplicate)
        self.assertEqual(again.ticket_id, first.ticket_id)
        self.assertEqual(again.reply_text, first.reply_text)
        tickets_after = self.admin.call("helpwire.v1.Tickets/ListTickets", customerId=first.customer_id)
        self.assertEqual(len(tickets_after.tickets), len(tickets_before.tickets))
        t = self.admin.call("helpwire.v1.Tickets/GetTicket", ticketId=first.ticket_id).ticket
        self.assertEqual(t.message_count, 1)

    def test_vip_and_urgent_word_gives_urgent_priority(self):
        r = self.route("tg-vip-1", "hello, I have a question about my account")
        cust = r.customer_id
        self.admin.call("helpwire.v1.Customers/UpdateCustomer", customerId=cust, updateMask=["tier"],
                        tier="CUSTOMER_TIER_VIP")
        if r.ticket_id:
            self.admin.call("helpwire.v1.Tickets/CloseTicket", ticketId=r.ticket_id, resolution="answered",
                            skipSurvey=True)
        r2 = self.route("tg-vip-1", "紧急！我的账户被锁了，无法登录")
        self.assertEqual(r2.action, 2)
        self.assertEqual(r2.priority, 4)  # URGENT
        self.assertTrue(r2.priority_reason.startswith("urgent-word:"), r2.priority_reason)
        r3 = self.route("tg-vip-2", "The login button throws error 7731")
        self.admin.call("helpwire.v1.Customers/UpdateCustomer", customerId=r3.customer_id, updateMask=["tier"],
                        tier="CUSTOMER_TIER_VIP")
        self.assertEqual(r3.action, 2)
        self.admin.call("helpwire.v1.Tickets/CloseTicket", ticketId=r3.ticket_id, resolution="x", skipSurvey=True)
        r4 = self.route("tg-vip-2", "The login button throws error 7731 again")
        self.assertEqual(r4.priority, 3)  # HIGH
        self.assertEqual(r4.priority_reason, "tier:vip")

    def test_identity_linked_across_channels_is_one_customer(self):
        a = self.route("tg-link-1", "Error 9913 appears when I connect to the VPN", channel=TG)
        self.assertEqual(a.action, 2)
        b = self.route("+8613800000001", "hello", channel=WA)
        self.assertNotEqual(a.customer_id, b.customer_id)
        merged = self.admin.call("helpwire.v1.Customers/LinkIdentity", customerId=a.customer_id, channel=WA,
                                 channelUserId="+8613800000001")
        self.assertEqual(merged.id, a.customer_id)
        self.assertEqual(sorted(i.channel for i in merged.identities), [1, 2])
        look = self.admin.call("helpwire.v1.Customers/LookupCustomer", channel=WA, channelUserId="+8613800000001")
        self.assertEqual(look.id, a.customer_id)
        with self.assertRaises(grpc.RpcError) as cm:
            self.admin.call("helpwire.v1.Customers/GetCustomer", customerId=b.customer_id)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
        # History follows: the WhatsApp customer's ticket now belongs to the
        # merged customer, and a new WhatsApp message lands on an open ticket
        # of theirs.
        if b.ticket_id:
            moved = self.admin.call("helpwire.v1.Tickets/GetTicket", ticketId=b.ticket_id).ticket
            self.assertEqual(moved.customer_id, a.customer_id)
        mine = self.admin.call("helpwire.v1.Tickets/ListTickets", customerId=a.customer_id).tickets
        self.assertIn(a.ticket_id, [t.id for t in mine])
        c = self.route("+8613800000001", "any news?", channel=WA)
        self.assertEqual(c.action, 3)
        self.assertEqual(c.customer_id, a.customer_id)
        self.assertIn(c.ticket_id, [t.id for t in mine])

    def test_bad_input_is_invalid_argument_naming_the_field(self):
        cases = [
            (dict(text=""), "text"),
            (dict(text="x" * 16385), "text"),
            (dict(channel="CHANNEL_UNSPECIFIED"), "channel"),
            (dict(channelUserId=""), "channel_user_id"),
            (dict(messageId=""), "message_id"),
        ]
        for override, field in cases:
            args = dict(channel=TG, channelUserId="tg-bad", displayName="x", text="hello", messageId="bad-1")
            args.update(override)
            with self.assertRaises(grpc.RpcError) as cm:
                self.bridge.call("helpwire.v1.Router/Route", **args)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT, field)
            self.assertIn(field, cm.exception.details())
        # An unknown enum value and invalid UTF-8 built on the wire.
        req = API.message("helpwire.v1.RouteRequest", channelUserId="u", text="hi", messageId="m")
        raw = bytearray(req.SerializeToString()) + bytes([0x08, 0x09])  # channel = 9
        with self.assertRaises(grpc.RpcError) as cm:
            self.bridge.raw("helpwire.v1.Router/Route", bytes(raw))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("channel", cm.exception.details())
        bad = bytes([0x08, 0x02, 0x12, 0x01, 0x75, 0x22, 0x02, 0xff, 0xfe, 0x2a, 0x01, 0x6d])
        with self.assertRaises(grpc.RpcError) as cm:
            self.bridge.raw("helpwire.v1.Router/Route", bad)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("text: invalid UTF-8", cm.exception.details())

    def test_concurrent_first_messages_make_one_customer_one_ticket(self):
        results, errors = [], []

        def send(i):
            c = self.server.client(api=API, role="bridge")
            try:
                results.append(c.call("helpwire.v1.Router/Route", channel=WEB, channelUserId="web-race",
                                      displayName="Racer", text="Payment failed and I was charged twice",
                                      messageId="race-%d" % i))
            except grpc.RpcError as e:
                errors.append(e)
            c.close()

        threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(len({r.customer_id for r in results}), 1)
        self.assertEqual(len({r.ticket_id for r in results}), 1)
        self.assertEqual(sorted(r.action for r in results), [2] + [3] * 7)


class LongTexts(DemoServerCase):
    """Texts past the search's query limit, on a server of their own (their
    tickets would fill the demo agents' capacity for the other tests)."""

    def route(self, user, text):
        LongTexts.n += 1
        return self.bridge.call("helpwire.v1.Router/Route", channel=TG, channelUserId=user, displayName="Customer",
                                text=text, messageId="long-%d" % LongTexts.n)

    def test_every_text_up_to_the_api_limit_routes_and_the_ticket_keeps_all_of_it(self):
        # The search takes 4,096 bytes; the API 16,384. Past the first, only a
        # prefix is searched and classified, the ticket holds the whole text.
        sentence = "The app shows error E1234 and crashes when I log in. "
        zh = "我的应用程序登录时崩溃并显示错误，请帮我看看。"  # 3 bytes a character

        def text_of(unit, size):
            t = (unit * (size // len(unit.encode()) + 1)).encode()[:size]
            while True:  # cut back to a character boundary, then pad with ASCII
                try:
                    s = t.decode()
                    break
                except UnicodeDecodeError:
                    t = t[:-1]
            return s + "." * (size - len(s.encode()))

        for size in (4097, 10000, 16384):
            for name, unit in (("ascii", sentence), ("zh", zh)):
                with self.subTest(size=size, script=name):
                    text = text_of(unit, size)
                    self.assertEqual(len(text.encode()), size)
                    user = "tg-long-%s-%d" % (name, size)
                    r = self.route(user, "Error E1234 again, please look into it")
                    self.assertEqual(r.action, 2)  # NEW_TICKET
                    follow = self.route(user, text)
                    self.assertEqual(follow.action, 3)  # APPENDED
                    self.assertEqual(follow.ticket_id, r.ticket_id)
                    first = self.route(user + "-first", text)
                    self.assertIn(first.action, (1, 2))  # AUTO_REPLY or NEW_TICKET
                    for rr in (follow, first):
                        if rr.ticket_id:
                            got = self.admin.call("helpwire.v1.Tickets/GetTicket", ticketId=rr.ticket_id,
                                                  includeMessages=True)
                            self.assertEqual(got.messages[-1].text, text)
        with self.assertRaises(grpc.RpcError) as cm:
            self.route("tg-long-over", "x" * 16385)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("text", cm.exception.details())
        with self.assertRaises(grpc.RpcError) as cm:
            self.route("tg-long-over", text_of(zh, 16385))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("text", cm.exception.details())


    def test_texts_with_no_word_to_cut_at_route_too(self):
        # One long word, spaces only, 2- and 4-byte characters across the
        # query limit: the searched prefix is never empty nor cut inside a
        # character.
        for i, text in enumerate((" " * 5000, "\n" * 16384, "a" * 16384, "a" + " " * 16383, "é" * 8192,
                                  "😀" * 4096, "x" * 4095 + "😀" * 10)):
            with self.subTest(case=i):
                r = self.route("tg-odd-%d" % i, text)
                self.assertIn(r.action, (1, 2))

    def test_create_ticket_and_add_message_take_every_text_up_to_the_api_limit(self):
        # The same limit on the agents' side: a whole 16,384-byte text (as
        # Chinese, 3 bytes a character, plus one byte), kept whole; one byte
        # more is INVALID_ARGUMENT naming the field, never INTERNAL.
        text = "请" * 5461 + "."
        self.assertEqual(len(text.encode()), 16384)
        cust = self.route("tg-long-agent", "hello").customer_id
        t = self.admin.call("helpwire.v1.Tickets/CreateTicket", customerId=cust, text=text).ticket
        m = self.admin.call("helpwire.v1.Tickets/AddMessage", ticketId=t.id, kind="MESSAGE_KIND_AGENT_REPLY",
                            text=text)
        self.assertEqual(m.message.text, text)
        got = self.admin.call("helpwire.v1.Tickets/GetTicket", ticketId=t.id, includeMessages=True)
        self.assertEqual([x.text for x in got.messages], [text, text])
        for path, args in (("helpwire.v1.Tickets/CreateTicket", dict(customerId=cust, text=text + "x")),
                           ("helpwire.v1.Tickets/AddMessage", dict(ticketId=t.id, kind="MESSAGE_KIND_AGENT_REPLY",
                                                                    text=text + "x"))):
            with self.assertRaises(grpc.RpcError) as cm:
                self.admin.call(path, **args)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT, path)
            self.assertIn("text", cm.exception.details())


class Agents(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = hwclient.Server("--demo")
        cls.admin = cls.server.client(api=API, role="admin")
        cls.bridge = cls.server.client(api=API, role="bridge")

    @classmethod
    def tearDownClass(cls):
        cls.admin.close()
        cls.bridge.close()
        assert cls.server.stop() == 0

    def test_waiting_ticket_is_assigned_when_an_agent_comes_online(self):
        self.admin.call("helpwire.v1.Agents/PutSkill", skill={"name": "shipping", "keywords": ["parcel", "包裹"],
                                                              "defaultPriority": "PRIORITY_NORMAL"})
        self.admin.call("helpwire.v1.Agents/PutAgent", agent={"id": "dave", "name": "Dave", "skills": ["shipping"],
                                                              "capacity": 1})
        r = self.bridge.call("helpwire.v1.Router/Route", channel=TG, channelUserId="ship-1", displayName="S",
                             text="where is my parcel", messageId="ship-1")
        self.assertEqual(r.queue, "shipping")
        self.assertEqual(r.assignee_agent_id, "")  # dave is offline: it waits
        r2 = self.bridge.call("helpwire.v1.Router/Route", channel=TG, channelUserId="ship-2", displayName="S",
                              text="my parcel is lost", messageId="ship-2")
        on = self.admin.call("helpwire.v1.Agents/SetPresence", agentId="dave", presence="PRESENCE_ONLINE")
        # Capacity 1: the older ticket first.
        self.assertEqual(list(on.assigned_ticket_ids), [r.ticket_id])
        self.assertEqual(on.agent.open_tickets, 1)
        # Closing it frees dave, who takes the next one.
        self.admin.call("helpwire.v1.Tickets/CloseTicket", ticketId=r.ticket_id, resolution="found", skipSurvey=True)
        t2 = self.admin.call("helpwire.v1.Tickets/GetTicket", ticketId=r2.ticket_id).ticket
        self.assertEqual(t2.assignee_agent_id, "dave")
        self.assertEqual(self.admin.call("helpwire.v1.Agents/GetAgent", agentId="dave").open_tickets, 1)

    def test_a_changed_skill_classifies_the_next_message(self):
        def queue_of(text, n):
            self.__class__.serial = getattr(self.__class__, "serial", 0) + 1
            user = "zoo-%d" % self.__class__.serial
            return self.bridge.call("helpwire.v1.Router/Route", channel=TG, channelUserId=user, displayName="Z",
                                    text=text, messageId=user).queue

        # Several calls, so every worker has classified (and kept its skills) before the change.
        for i in range(8):
            self.assertEqual(queue_of("my zebra escaped %d" % i, i), "general")
        self.admin.call("helpwire.v1.Agents/PutSkill", skill={"name": "zoo", "keywords": ["zebra"]})
        for i in range(8):
            self.assertEqual(queue_of("my zebra escaped again %d" % i, i), "zoo")
        self.admin.call("helpwire.v1.Agents/PutSkill", skill={"name": "zoo", "keywords": ["giraffe"]})
        for i in range(8):
            self.assertEqual(queue_of("my zebra escaped once more %d" % i, i), "general")
            self.assertEqual(queue_of("the giraffe is sad %d" % i, i), "zoo")

    def test_agent_with_unknown_skill_is_refused(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.admin.call("helpwire.v1.Agents/PutAgent", agent={"id": "eve", "name": "Eve", "skills": ["nope"]})
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
        self.assertIn("nope", cm.exception.details())

    def test_skills_and_agents_list(self):
        names = [s.name for s in self.admin.call("helpwire.v1.Agents/ListSkills").skills]
        for n in ("billing", "general", "technical"):
            self.assertIn(n, names)
        tech = self.admin.call("helpwire.v1.Agents/ListAgents", skill="technical").agents
        self.assertEqual([a.id for a in tech], ["alice"])
        with self.assertRaises(grpc.RpcError) as cm:
            self.admin.call("helpwire.v1.Agents/PutSkill", skill={"name": "Bad Name"})
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)


class RouteHits(unittest.TestCase):
    """A Route reply lists at most --route-hits knowledge hits (3 unless
    set); the flag takes 1 to 5."""

    QUESTION = "password refund invoice opening hours app crash two-factor"

    def hits_with(self, *flags):
        server = hwclient.Server("--demo", *flags)
        try:
            bridge = server.client(api=API, role="bridge")
            r = bridge.call("helpwire.v1.Router/Route", channel=TG, channelUserId="hits-%d" % len(flags),
                            displayName="c", text=self.QUESTION, messageId="hits-%d" % len(flags))
            bridge.close()
            return len(r.hits)
        finally:
            self.assertEqual(server.stop(), 0, server.read_log())

    def test_three_by_default_and_as_configured(self):
        self.assertEqual(self.hits_with(), 3)
        self.assertEqual(self.hits_with("--route-hits", "1"), 1)
        self.assertEqual(self.hits_with("--route-hits", "5"), 5)

    def test_out_of_range_is_refused_at_start(self):
        for bad in ("0", "6", "x"):
            with self.assertRaises(RuntimeError) as cm:
                hwclient.Server("--demo", "--route-hits", bad)
            self.assertIn("route-hits", str(cm.exception))


if __name__ == "__main__":
    hwtest.main()
