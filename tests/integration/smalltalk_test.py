"""smalltalk_test: small talk and bare survey ratings in Router.Route
through the real helpwired --demo: "/start", greetings and thanks get a
friendly reply in the customer's language (no ticket, no FAQ), a request
for a person opens a ticket at once, a bare rating after a survey
invitation answers that survey (once, only the customer's own, never an
expired one), and messages with a real question route as before."""
import itertools
import os
import tempfile
import time
import unittest

import hwclient
import hwtest

API = hwclient.Api()
TG, WA = "CHANNEL_TELEGRAM", "CHANNEL_WHATSAPP"
AUTO_REPLY, NEW_TICKET, APPENDED, SMALL_TALK, SURVEY_ANSWERED = 1, 2, 3, 4, 5
GREETING_EN = "Hi! How can we help? Just type your question."
GREETING_ZH = "您好！请问有什么可以帮您？直接描述您的问题即可。"
THANKS_EN = "You're welcome! Let us know if there's anything else."
THANKS_ZH = "不客气！还有其他问题随时告诉我们。"
INVITE_EN = "Reply with a number from 1 to 5 to rate our help (5 = excellent), or open: "
INVITE_ZH = "请回复 1–5 为本次服务打分（5 为非常满意），或打开链接："
MESSAGE_IDS = itertools.count(1)
TICKET_TEXT = "My payment failed and I was charged twice"


class DemoCase(unittest.TestCase):
    """Tests on one helpwired --demo of their own (extra flags from EXTRA)."""
    EXTRA = ()

    @classmethod
    def setUpClass(cls):
        cls.server = hwclient.Server("--demo", "--survey-base-url", "https://help.example.com/s/", *cls.EXTRA)
        cls.bridge = cls.server.client(api=API, role="bridge")
        cls.agent = cls.server.client(api=API, role="agent")
        cls.admin = cls.server.client(api=API, role="admin")

    @classmethod
    def tearDownClass(cls):
        for c in (cls.bridge, cls.agent, cls.admin):
            c.close()
        assert cls.server.stop() == 0, cls.server.read_log()

    def route(self, user, text, channel=TG, message_id=None, **extra):
        return self.bridge.call("helpwire.v1.Router/Route", channel=channel, channelUserId=user,
                                displayName=user, text=text, messageId=message_id or "m-%d" % next(MESSAGE_IDS), **extra)

    def outbox_until(self, seq, channel=TG):
        """The channel's queued messages up to seq (acknowledged)."""
        stream = self.bridge.stream("helpwire.v1.Outbox/Subscribe", timeout=10, channel=channel)
        got = []
        for m in stream:
            got.append(m)
            if m.seq >= seq:
                break
        stream.cancel()
        self.bridge.call("helpwire.v1.Outbox/Ack", channel=channel, seqs=[m.seq for m in got])
        return got

    def tickets_of(self, customer_id):
        return list(self.admin.call("helpwire.v1.Tickets/ListTickets", customerId=customer_id).tickets)

    def close_with_survey(self, user, text=TICKET_TEXT, channel=TG):
        """Opens a ticket, answers it as the agent and closes it: the
        invitation as queued, and the survey id."""
        r = self.route(user, text, channel=channel)
        self.assertEqual(r.action, NEW_TICKET, r)
        self.agent.call("helpwire.v1.Tickets/AddMessage", ticketId=r.ticket_id, kind="MESSAGE_KIND_AGENT_REPLY",
                        text="We refunded the second charge.")
        closed = self.agent.call("helpwire.v1.Tickets/CloseTicket", ticketId=r.ticket_id, resolution="refunded")
        self.assertTrue(closed.survey_id)
        stream = self.bridge.stream("helpwire.v1.Outbox/Subscribe", timeout=10, channel=channel)
        got = []
        for m in stream:
            got.append(m)
            if m.kind == 4 and m.ticket_id == r.ticket_id:
                break
        stream.cancel()
        self.bridge.call("helpwire.v1.Outbox/Ack", channel=channel, seqs=[m.seq for m in got])
        inv = got[-1]
        self.assertEqual(inv.channel_user_id, user)
        self.assertIn(closed.survey_url, inv.text)
        return inv, closed.survey_id

    def survey(self, survey_id):
        return self.admin.call("helpwire.v1.Surveys/GetSurvey", surveyId=survey_id)


class SmallTalk(DemoCase):
    def test_start_gets_the_greeting_and_no_ticket_nor_faq(self):
        r = self.route("st-start", "/start")
        self.assertEqual(r.action, SMALL_TALK)
        self.assertEqual(r.reply_text, GREETING_EN)
        self.assertEqual(r.reason, "small-talk:start")
        self.assertEqual((r.ticket_id, len(r.hits), r.answer_source_id), ("", 0, ""))
        self.assertEqual(self.tickets_of(r.customer_id), [])
        got = self.outbox_until(r.outbox_seq)
        mine = [m for m in got if m.channel_user_id == "st-start"]
        self.assertEqual([(m.seq, m.kind, m.text) for m in mine], [(r.outbox_seq, AUTO_REPLY, GREETING_EN)])
        # With a deep-link payload, and from a Telegram user whose client is Chinese.
        r = self.route("st-start-2", "/start ref-campaign-7", locale="zh-CN")
        self.assertEqual((r.action, r.reply_text, r.reason), (SMALL_TALK, GREETING_ZH, "small-talk:start"))

    def test_chinese_greeting_gets_the_chinese_reply(self):
        for text in ("你好", "您好，在吗？", "有人吗"):
            r = self.route("st-zh-hi", text)
            self.assertEqual((r.action, r.reply_text, r.reason), (SMALL_TALK, GREETING_ZH, "small-talk:greeting"),
                             text)
        self.assertEqual(self.tickets_of(r.customer_id), [])
        r = self.route("st-en-hi", "Hi there!")
        self.assertEqual((r.action, r.reply_text), (SMALL_TALK, GREETING_EN))

    def test_a_greeting_with_a_question_is_answered_as_before(self):
        r = self.route("st-q", "hi, how do I reset my password?")
        self.assertEqual(r.action, AUTO_REPLY, r)
        self.assertEqual(r.reason, "")
        self.assertTrue(r.hits[0].id.startswith("faq-reset-password"), r.hits[0].id)
        r = self.route("st-q-zh", "你好，我要退款")
        self.assertNotEqual(r.action, SMALL_TALK)
        self.assertEqual(r.reason, "")

    def test_asking_for_a_person_opens_a_ticket_at_once(self):
        r = self.route("st-human", "转人工")
        self.assertEqual(r.action, NEW_TICKET, r)
        self.assertEqual(r.reason, "asked-for-human")
        self.assertIn("#%d" % r.ticket_number, r.reply_text)
        self.assertIn("工单", r.reply_text)
        self.assertEqual((len(r.hits), r.answer_source_id), (0, ""))
        t = self.admin.call("helpwire.v1.Tickets/GetTicket", ticketId=r.ticket_id).ticket
        self.assertEqual(t.customer_id, r.customer_id)
        # Also right after an auto-answer, in English.
        a = self.route("st-human-2", "I forgot my password, how can I reset it?")
        self.assertEqual(a.action, AUTO_REPLY)
        r = self.route("st-human-2", "can I talk to a human please")
        self.assertEqual((r.action, r.reason), (NEW_TICKET, "asked-for-human"))
        self.assertIn("#%d" % r.ticket_number, r.reply_text)
        # A message that only mentions a human is a question.
        r = self.route("st-human-3", "my human resources account is locked")
        self.assertNotEqual(r.reason, "asked-for-human")

    def test_thanks_after_an_auto_reply(self):
        a = self.route("st-thanks", "I forgot my password, how can I reset it?")
        self.assertEqual(a.action, AUTO_REPLY)
        r = self.route("st-thanks", "thanks!")
        self.assertEqual((r.action, r.reply_text, r.reason), (SMALL_TALK, THANKS_EN, "small-talk:thanks"))
        r = self.route("st-thanks", "好的谢谢")
        self.assertEqual((r.action, r.reply_text), (SMALL_TALK, THANKS_ZH))
        self.assertEqual(self.tickets_of(r.customer_id), [])

    def test_an_open_ticket_still_takes_small_talk(self):
        t = self.route("st-open", TICKET_TEXT)
        self.assertEqual(t.action, NEW_TICKET)
        for text in ("你好", "thanks", "5", "转人工"):
            r = self.route("st-open", text)
            self.assertEqual((r.action, r.ticket_id, r.reason), (APPENDED, t.ticket_id, ""), text)
        got = self.admin.call("helpwire.v1.Tickets/GetTicket", ticketId=t.ticket_id, includeMessages=True)
        self.assertEqual([m.text for m in got.messages][-4:], ["你好", "thanks", "5", "转人工"])

    def test_a_retried_small_talk_message_repeats_the_first_reply(self):
        first = self.route("st-dup", "/start", message_id="dup-start")
        again = self.route("st-dup", "/start", message_id="dup-start")
        self.assertFalse(first.duplicate)
        self.assertTrue(again.duplicate)
        self.assertEqual((again.action, again.reply_text, again.reason, again.outbox_seq),
                         (SMALL_TALK, GREETING_EN, "small-talk:start", first.outbox_seq))


class SurveyRating(DemoCase):
    def test_a_bare_rating_answers_the_customers_survey_once(self):
        inv, sid = self.close_with_survey("sr-1")
        self.assertEqual(inv.text, INVITE_EN + inv.survey_url)
        # Another customer's "5" does not touch it.
        other = self.route("sr-other", "5")
        self.assertNotEqual(other.action, SURVEY_ANSWERED)
        self.assertEqual(other.survey_id, "")
        self.assertEqual(self.survey(sid).rating, 0)

        r = self.route("sr-1", "5", message_id="sr-1-five")
        self.assertEqual((r.action, r.survey_id, r.reason), (SURVEY_ANSWERED, sid, "survey-rating"))
        self.assertEqual(r.reply_text, "Thanks for your rating!")
        self.assertEqual((r.ticket_id, len(r.hits), r.answer_source_id), ("", 0, ""))
        sv = self.survey(sid)
        self.assertEqual(sv.rating, 5)
        self.assertGreater(sv.answered_unix_ms, 0)
        got = self.outbox_until(r.outbox_seq)
        self.assertEqual(got[-1].text, "Thanks for your rating!")
        # The ticket's history has the answer, as for SubmitSurvey.
        hist = self.admin.call("helpwire.v1.Tickets/GetTicketHistory", ticketId=sv.ticket_id).events
        self.assertTrue(any(e.kind == 12 and "rated 5/5" in e.detail for e in hist))
        # The stats count it.
        stats = self.admin.call("helpwire.v1.Surveys/GetSurveyStats")
        self.assertGreaterEqual(stats.answered, 1)

        # A retry of the message: the first reply again, nothing changes.
        again = self.route("sr-1", "5", message_id="sr-1-five")
        self.assertTrue(again.duplicate)
        self.assertEqual((again.action, again.survey_id), (SURVEY_ANSWERED, sid))
        # A second rating is an ordinary message and never overwrites.
        r = self.route("sr-1", "4")
        self.assertNotEqual(r.action, SURVEY_ANSWERED)
        self.assertEqual(self.survey(sid).rating, 5)
        # The link is refused too: the survey is answered.
        with self.assertRaises(Exception):
            token = inv.survey_url.rsplit("/", 1)[1]
            self.bridge.call("helpwire.v1.Surveys/SubmitSurvey", token=token, rating=1)
        self.assertEqual(self.survey(sid).rating, 5)

    def test_stars_and_a_chinese_invitation(self):
        inv, sid = self.close_with_survey("sr-zh", text="我上个月被重复扣费了，请帮我处理发票和退钱")
        self.assertEqual(inv.text, INVITE_ZH + inv.survey_url)
        self.assertIn("1–5", inv.text)
        # Stars say nothing of the language: the customer's is used.
        r = self.route("sr-zh", "⭐⭐⭐⭐")
        self.assertEqual((r.action, r.survey_id, r.reply_text), (SURVEY_ANSWERED, sid, "感谢您的评价！"))
        self.assertEqual(self.survey(sid).rating, 4)

    def test_a_rating_on_another_channel_of_the_customer_is_not_taken(self):
        inv, sid = self.close_with_survey("sr-wa", channel=WA)
        r = self.route("sr-wa", "5")  # the same id on Telegram: another customer
        self.assertNotEqual(r.action, SURVEY_ANSWERED)
        r = self.route("sr-wa", "五星", channel=WA)
        self.assertEqual((r.action, r.survey_id), (SURVEY_ANSWERED, sid))
        self.assertEqual(self.survey(sid).rating, 5)

    def test_only_the_latest_survey_takes_the_rating(self):
        _, first = self.close_with_survey("sr-two")
        _, second = self.close_with_survey("sr-two")
        r = self.route("sr-two", "3分")
        self.assertEqual((r.action, r.survey_id), (SURVEY_ANSWERED, second))
        self.assertEqual((self.survey(first).rating, self.survey(second).rating), (0, 3))


class ExpiredSurvey(DemoCase):
    """The server's clock comes from a file, so the survey can expire."""
    clock_dir = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
    clock_file = os.path.join(clock_dir, "now")
    EXTRA = ("--clock-file", clock_file, "--survey-ttl-hours", "1")

    @classmethod
    def setUpClass(cls):
        cls.set_clock(int(time.time() * 1000))
        super().setUpClass()

    @classmethod
    def set_clock(cls, at_ms):
        tmp = cls.clock_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % at_ms)
        os.rename(tmp, cls.clock_file)

    def test_an_expired_survey_is_not_answered(self):
        _, sid = self.close_with_survey("sr-late")
        sv = self.survey(sid)
        self.assertEqual(sv.expires_unix_ms - sv.sent_unix_ms, 3600 * 1000)
        self.set_clock(sv.expires_unix_ms + 1000)
        r = self.route("sr-late", "5")
        self.assertNotEqual(r.action, SURVEY_ANSWERED)
        self.assertEqual(r.survey_id, "")
        sv = self.survey(sid)
        self.assertEqual((sv.rating, sv.answered_unix_ms), (0, 0))


if __name__ == "__main__":
    hwtest.main()
