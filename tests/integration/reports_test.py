"""reports_test: the Reports service through the real helpwired.

CSAT: tickets on three channels, in three queues, held by three agents, are
closed (each close sends a survey) and answered with ratings through the
bridge's SubmitSurvey; the report's rows and totals must be exact by agent,
queue, channel and period (days in Asia/Shanghai, ISO weeks, months, with
the empty periods of the range), filters combine, and bad requests get
INVALID_ARGUMENT naming the field.

SLA: tickets with clocks in every state are written into the data directory
by reports_seed before helpwired opens it, and the report counts them by
agent, channel and period, with the priority filter; then, on a simulated
clock, the server's own clocks (a policy, a reply in time, a resolution,
breaches fired by the timer thread) are counted as they change.
"""
import datetime
import os
import subprocess
import tempfile
import time
import unittest
import zoneinfo

import grpc

import hwclient
import hwtest

API = hwclient.Api()
CSAT = "helpwire.v1.Reports/GetCsatReport"
SLA = "helpwire.v1.Reports/GetSlaReport"
TG, WA, WC = "CHANNEL_TELEGRAM", "CHANNEL_WHATSAPP", "CHANNEL_WEBCHAT"
DAY = 86400 * 1000
ONE_DAY = datetime.timedelta(days=1)
SEED = hwclient.find_file("tests/integration/reports_seed", "tests/integration/reports_seed")

# channel, queue, agent, rating (None: never answered)
CLOSED = [
    (TG, "billing", "bob", 5),
    (TG, "billing", "bob", 4),
    (WA, "technical", "alice", 2),
    (WA, "technical", "alice", None),
    (WC, "general", "carol", 1),
    (TG, "technical", "alice", 3),
]


def now_ms():
    return int(time.time() * 1000)


def assert_status(test, code, field, fn, *args, **kwargs):
    with test.assertRaises(grpc.RpcError) as cm:
        fn(*args, **kwargs)
    test.assertEqual(cm.exception.code(), code, cm.exception.details())
    test.assertIn(field, cm.exception.details())
    return cm.exception.details()


def row_tuple(r):
    return (r.key, r.sent, r.answered, list(r.distribution))


class Csat(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = hwclient.Server("--demo")
        cls.admin = cls.server.client(api=API, role="admin")
        cls.agent = cls.server.client(api=API, role="agent")
        cls.bridge = cls.server.client(api=API, role="bridge")
        cls.t0 = now_ms() - 1000
        customers = {}
        for ch in (TG, WA, WC):
            r = cls.bridge.call("helpwire.v1.Router/Route", channel=ch, channelUserId="rep-" + ch,
                                displayName="Report " + ch, text="如何重置密码", messageId="first-" + ch)
            assert r.action == 1, r  # an FAQ answer: a customer, no ticket
            customers[ch] = r.customer_id
        cls.sent_ms = []
        for i, (ch, queue, agent, rating) in enumerate(CLOSED):
            t = cls.admin.call("helpwire.v1.Tickets/CreateTicket", customerId=customers[ch], channel=ch,
                               queue=queue, text="report case %d" % i).ticket
            cls.admin.call("helpwire.v1.Tickets/UpdateTicket", ticketId=t.id, updateMask=["assignee_agent_id"],
                           assigneeAgentId=agent)
            closed = cls.admin.call("helpwire.v1.Tickets/CloseTicket", ticketId=t.id, resolution="done")
            assert closed.survey_url, closed
            if rating:
                token = closed.survey_url.rsplit("/", 1)[1]
                cls.bridge.call("helpwire.v1.Surveys/SubmitSurvey", token=token, rating=rating)
            sv = cls.admin.call("helpwire.v1.Surveys/GetSurvey", surveyId=closed.survey_id)
            assert sv.agent_id == agent and sv.queue == queue, sv
            cls.sent_ms.append(sv.sent_unix_ms)
        cls.t1 = now_ms() + 1000

    @classmethod
    def tearDownClass(cls):
        for c in (cls.admin, cls.agent, cls.bridge):
            c.close()
        assert cls.server.stop() == 0, cls.server.read_log()

    def report(self, **kw):
        kw.setdefault("from_unix_ms", self.t0)
        kw.setdefault("to_unix_ms", self.t1)
        return self.agent.call(CSAT, **kw)

    def test_by_agent_rows_and_total_are_exact(self):
        r = self.report(group_by="REPORT_GROUPING_AGENT")
        self.assertEqual([row_tuple(x) for x in r.rows], [
            ("alice", 3, 2, [0, 1, 1, 0, 0]),
            ("bob", 2, 2, [0, 0, 0, 1, 1]),
            ("carol", 1, 1, [1, 0, 0, 0, 0]),
        ])
        alice, bob = r.rows[0], r.rows[1]
        self.assertAlmostEqual(alice.response_rate, 2 / 3)
        self.assertAlmostEqual(alice.average_rating, 2.5)
        self.assertEqual(alice.csat, 0)
        self.assertEqual((bob.csat, bob.average_rating, bob.response_rate), (1, 4.5, 1))
        self.assertEqual(row_tuple(r.total), ("", 6, 5, [1, 1, 1, 1, 1]))
        self.assertAlmostEqual(r.total.csat, 0.4)
        self.assertAlmostEqual(r.total.average_rating, 3.0)
        self.assertAlmostEqual(r.total.response_rate, 5 / 6)

    def test_by_queue_and_by_channel(self):
        r = self.report(group_by="REPORT_GROUPING_QUEUE")
        self.assertEqual([row_tuple(x) for x in r.rows], [
            ("billing", 2, 2, [0, 0, 0, 1, 1]),
            ("general", 1, 1, [1, 0, 0, 0, 0]),
            ("technical", 3, 2, [0, 1, 1, 0, 0]),
        ])
        r = self.report(group_by="REPORT_GROUPING_CHANNEL")
        self.assertEqual([row_tuple(x) for x in r.rows], [
            ("telegram", 3, 3, [0, 0, 1, 1, 1]),
            ("webchat", 1, 1, [1, 0, 0, 0, 0]),
            ("whatsapp", 2, 1, [0, 1, 0, 0, 0]),
        ])
        self.assertEqual(row_tuple(r.total), ("", 6, 5, [1, 1, 1, 1, 1]))

    def test_filters_combine(self):
        r = self.report(group_by="REPORT_GROUPING_AGENT", agent_id="alice", channel=TG)
        self.assertEqual([row_tuple(x) for x in r.rows], [("alice", 1, 1, [0, 0, 1, 0, 0])])
        self.assertEqual(row_tuple(r.total), ("", 1, 1, [0, 0, 1, 0, 0]))
        r = self.report(queue="technical")
        self.assertEqual(list(r.rows), [])  # no grouping: the total only
        self.assertEqual(row_tuple(r.total), ("", 3, 2, [0, 1, 1, 0, 0]))
        r = self.report(queue="nobody-here")
        self.assertEqual(row_tuple(r.total), ("", 0, 0, [0, 0, 0, 0, 0]))

    def test_outside_the_range_counts_nothing(self):
        r = self.report(from_unix_ms=self.t1, to_unix_ms=self.t1 + DAY, group_by="REPORT_GROUPING_AGENT")
        self.assertEqual(list(r.rows), [])
        self.assertEqual(row_tuple(r.total), ("", 0, 0, [0, 0, 0, 0, 0]))
        # [from, to): a survey sent exactly at `to` is not counted, one at `from` is.
        first = min(self.sent_ms)
        n_first = self.sent_ms.count(first)
        self.assertEqual(self.report(to_unix_ms=first).total.sent, 0)
        self.assertEqual(self.report(from_unix_ms=first, to_unix_ms=first + 1).total.sent, n_first)

    def expected_periods(self, zone, frm, to, start_of, step):
        """[(key, surveys sent)] for every period of [frm, to) in zone."""
        tz = zoneinfo.ZoneInfo(zone)

        def local(ms):
            return datetime.datetime.fromtimestamp(ms / 1000, tz).date()

        keys, d = [], start_of(local(frm))
        while d <= local(to - 1):
            keys.append(d.isoformat())
            d = step(d)
        counts = {k: 0 for k in keys}
        for ms in self.sent_ms:
            counts[start_of(local(ms)).isoformat()] += 1
        return [(k, counts[k]) for k in keys]

    def test_by_day_in_a_zone_with_the_empty_days(self):
        frm = self.t0 - 3 * DAY
        r = self.report(from_unix_ms=frm, group_by="REPORT_GROUPING_PERIOD", time_zone="Asia/Shanghai")
        want = self.expected_periods("Asia/Shanghai", frm, self.t1, lambda d: d, lambda d: d + ONE_DAY)
        self.assertEqual([(x.key, x.sent) for x in r.rows], want)
        self.assertGreaterEqual(len(want), 4)
        self.assertEqual(sum(x.answered for x in r.rows), 5)

    def test_by_week_and_month(self):
        frm = self.t0 - 40 * DAY
        r = self.report(from_unix_ms=frm, group_by="REPORT_GROUPING_PERIOD", period="REPORT_PERIOD_WEEK",
                        time_zone="America/New_York")
        want = self.expected_periods("America/New_York", frm, self.t1, week_of, lambda d: d + 7 * ONE_DAY)
        self.assertEqual([(x.key, x.sent) for x in r.rows], want)
        for x in r.rows:
            self.assertEqual(datetime.date.fromisoformat(x.key).isoweekday(), 1, x.key)
        r = self.report(from_unix_ms=frm, group_by="REPORT_GROUPING_PERIOD", period="REPORT_PERIOD_MONTH")
        want = self.expected_periods("UTC", frm, self.t1, month_of, lambda d: month_of(d + 32 * ONE_DAY))
        self.assertEqual([(x.key, x.sent) for x in r.rows], want)
        self.assertIn(len(want), (2, 3))

    def test_bad_requests_name_the_field(self):
        bad = grpc.StatusCode.INVALID_ARGUMENT
        assert_status(self, bad, "from_unix_ms", self.agent.call, CSAT, to_unix_ms=self.t1)
        assert_status(self, bad, "to_unix_ms", self.report, to_unix_ms=self.t0)
        d = assert_status(self, bad, "to_unix_ms", self.report, to_unix_ms=self.t0 + 366 * DAY + 1)
        self.assertIn("366 days", d)
        self.report(to_unix_ms=self.t0 + 366 * DAY)  # exactly 366 days is fine
        d = assert_status(self, bad, "time_zone", self.report, time_zone="Mars/Base")
        self.assertIn('"Mars/Base"', d)
        assert_status(self, bad, "time_zone", self.report, time_zone="../../etc/passwd")
        assert_status(self, bad, "group_by", self.report, group_by=9)
        assert_status(self, bad, "period", self.report, period=7)
        assert_status(self, bad, "channel", self.report, channel=42)
        assert_status(self, bad, "priority", self.report, priority="PRIORITY_HIGH")
        assert_status(self, bad, "queue", self.report, queue="a b")
        assert_status(self, bad, "agent_id", self.report, agent_id="x" * 65)

    def test_bridges_may_not_read_reports(self):
        assert_status(self, grpc.StatusCode.PERMISSION_DENIED, "", self.bridge.call, CSAT,
                      from_unix_ms=self.t0, to_unix_ms=self.t1)


def week_of(d):
    return d - datetime.timedelta(days=d.isoweekday() - 1)


def month_of(d):
    return d.replace(day=1)


# 2026-03-02T00:00:00Z, a Monday.
MON = 1772409600000
H = 3600 * 1000
# CREATED AGENT QUEUE CHANNEL(1 wa, 2 tg, 3 webchat) PRIORITY(1 low .. 4 urgent) FR NR RS
SEEDED = [
    (MON - H, "alice", "technical", 2, 2, "m", "m", "m"),   # before the range
    (MON + H, "alice", "technical", 2, 2, "m", "m", "m"),
    (MON + 2 * H, "alice", "technical", 1, 3, "b", "-", "r"),
    (MON + 3 * H, "bob", "billing", 2, 3, "m", "r", "p"),
    (MON + 26 * H, "bob", "billing", 3, 4, "m", "m", "b"),
    (MON + 27 * H, "-", "general", 2, 2, "p", "-", "r"),
    (MON + 50 * H, "carol", "general", 2, 2, "-", "-", "-"),  # no policy: no clocks
    (MON + 3 * DAY, "alice", "technical", 2, 2, "b", "b", "b"),  # at the range's end: excluded
]
FR, NR, RS = 1, 2, 3


def sla_rows(rows):
    return [(r.key, r.target, r.met, r.breached, r.open) for r in rows]


class Sla(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        data = tempfile.mkdtemp(prefix="hw-reports-", dir=os.environ.get("TEST_TMPDIR"))
        lines = "".join("%d %s %s %d %d %s %s %s\n" % s for s in SEEDED)
        p = subprocess.run([SEED, data], input=lines, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        cls.ids = p.stdout.split()
        assert len(cls.ids) == len(SEEDED), p.stdout
        cls.server = hwclient.Server(data_dir=data)
        cls.client = cls.server.client(api=API)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        assert cls.server.stop() == 0, cls.server.read_log()

    def report(self, **kw):
        kw.setdefault("from_unix_ms", MON)
        kw.setdefault("to_unix_ms", MON + 3 * DAY)
        return self.client.call(SLA, **kw)

    def test_the_seeded_clocks_are_the_tickets_the_server_sees(self):
        t = self.client.call("helpwire.v1.Tickets/GetTicket", ticketId=self.ids[3]).ticket
        self.assertEqual([(c.target, c.state) for c in t.sla], [(1, 3), (2, 1), (3, 2)])

    def test_by_agent(self):
        r = self.report(group_by="REPORT_GROUPING_AGENT")
        self.assertEqual(sla_rows(r.rows), [
            ("(unassigned)", FR, 0, 0, 1), ("(unassigned)", NR, 0, 0, 0), ("(unassigned)", RS, 0, 0, 1),
            ("alice", FR, 1, 1, 0), ("alice", NR, 1, 0, 0), ("alice", RS, 1, 0, 1),
            ("bob", FR, 2, 0, 0), ("bob", NR, 1, 0, 1), ("bob", RS, 0, 1, 1),
        ])
        self.assertEqual(sla_rows(r.total), [("", FR, 3, 1, 1), ("", NR, 2, 0, 1), ("", RS, 1, 1, 3)])
        self.assertAlmostEqual(r.total[0].attainment, 0.75)
        self.assertEqual(r.total[1].attainment, 1.0)
        self.assertEqual(r.rows[1].attainment, 0)  # nothing ended: 0, not a division by zero

    def test_by_channel_and_by_day(self):
        r = self.report(group_by="REPORT_GROUPING_CHANNEL")
        self.assertEqual(sla_rows(r.rows), [
            ("telegram", FR, 2, 0, 1), ("telegram", NR, 1, 0, 1), ("telegram", RS, 1, 0, 2),
            ("webchat", FR, 1, 0, 0), ("webchat", NR, 1, 0, 0), ("webchat", RS, 0, 1, 0),
            ("whatsapp", FR, 0, 1, 0), ("whatsapp", NR, 0, 0, 0), ("whatsapp", RS, 0, 0, 1),
        ])
        r = self.report(group_by="REPORT_GROUPING_PERIOD")
        self.assertEqual(sla_rows(r.rows), [
            ("2026-03-02", FR, 2, 1, 0), ("2026-03-02", NR, 1, 0, 1), ("2026-03-02", RS, 1, 0, 2),
            ("2026-03-03", FR, 1, 0, 1), ("2026-03-03", NR, 1, 0, 0), ("2026-03-03", RS, 0, 1, 1),
            ("2026-03-04", FR, 0, 0, 0), ("2026-03-04", NR, 0, 0, 0), ("2026-03-04", RS, 0, 0, 0),
        ])
        # In UTC-10 the first three tickets' day is 03-01 and the range starts there.
        r = self.report(group_by="REPORT_GROUPING_PERIOD", time_zone="Pacific/Honolulu")
        self.assertEqual([x.key for x in r.rows[::3]], ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"])
        self.assertEqual(sla_rows(r.rows[:3]), [
            ("2026-03-01", FR, 2, 1, 0), ("2026-03-01", NR, 1, 0, 1), ("2026-03-01", RS, 1, 0, 2)])

    def test_priority_and_queue_filters(self):
        r = self.report(priority="PRIORITY_HIGH")
        self.assertEqual(list(r.rows), [])
        self.assertEqual(sla_rows(r.total), [("", FR, 1, 1, 0), ("", NR, 0, 0, 1), ("", RS, 0, 0, 2)])
        r = self.report(queue="billing", group_by="REPORT_GROUPING_QUEUE")
        self.assertEqual([x.key for x in r.rows], ["billing"] * 3)
        self.assertEqual(sla_rows(r.total), [("", FR, 2, 0, 0), ("", NR, 1, 0, 1), ("", RS, 0, 1, 1)])

    def test_a_range_with_no_tickets(self):
        r = self.report(from_unix_ms=MON + 4 * DAY, to_unix_ms=MON + 5 * DAY, group_by="REPORT_GROUPING_AGENT")
        self.assertEqual(list(r.rows), [])
        self.assertEqual(sla_rows(r.total), [("", FR, 0, 0, 0), ("", NR, 0, 0, 0), ("", RS, 0, 0, 0)])

    def test_bad_requests_name_the_field(self):
        bad = grpc.StatusCode.INVALID_ARGUMENT
        assert_status(self, bad, "priority", self.report, priority=9)
        assert_status(self, bad, "to_unix_ms", self.report, to_unix_ms=MON - 1)
        assert_status(self, bad, "time_zone", self.report, time_zone="Europe/Nowhere")


class SlaLive(unittest.TestCase):
    """The SLA report over clocks the server keeps itself (sla.c): a policy,
    replies, a resolution and breaches fired by the timer thread, on a
    simulated clock (--clock-file)."""

    T0 = 1796605200000  # 2026-12-07T01:00:00Z, Monday 09:00 in Shanghai

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="hw-reports-live-", dir=os.environ.get("TEST_TMPDIR"))
        cls.clock_path = os.path.join(cls.dir, "clock")
        cls.set_clock(cls.T0)
        cls.server = hwclient.Server("--demo", "--clock-file", cls.clock_path,
                                     data_dir=os.path.join(cls.dir, "data"))
        cls.admin = cls.server.client(api=API, role="admin")
        cls.agent = cls.server.client(api=API, role="agent")
        cls.bridge = cls.server.client(api=API, role="bridge")
        cls.admin.call("helpwire.v1.Sla/PutSlaPolicy", policy=dict(
            name="high", priority="PRIORITY_HIGH", firstReplyMinutes=30, resolutionMinutes=240,
            breachAction="SLA_BREACH_ACTION_NOTIFY"))
        cust = cls.bridge.call("helpwire.v1.Router/Route", channel=TG, channelUserId="live", displayName="Live",
                               text="如何重置密码", messageId="live-1").customer_id
        m = 60 * 1000

        def ticket(minute, agent, priority="PRIORITY_HIGH"):
            cls.set_clock(cls.T0 + minute * m)
            t = cls.admin.call("helpwire.v1.Tickets/CreateTicket", customerId=cust, queue="general",
                               priority=priority, text="order %d never arrived" % minute).ticket
            cls.admin.call("helpwire.v1.Tickets/UpdateTicket", ticketId=t.id, updateMask=["assignee_agent_id"],
                           assigneeAgentId=agent)
            return t.id

        a = ticket(0, "alice")
        ticket(1, "bob")  # never answered: its first reply breaches at minute 31
        c = ticket(2, "bob")
        ticket(3, "alice", "PRIORITY_LOW")  # no policy for LOW: no clocks
        cls.set_clock(cls.T0 + 5 * m)
        cls.admin.call("helpwire.v1.Tickets/UpdateTicket", ticketId=c,
                       updateMask=["status"], status="TICKET_STATUS_RESOLVED")
        cls.set_clock(cls.T0 + 10 * m)
        cls.admin.call("helpwire.v1.Tickets/AddMessage", ticketId=a, kind="MESSAGE_KIND_AGENT_REPLY",
                       text="It is on its way.")

    @classmethod
    def tearDownClass(cls):
        for c in (cls.admin, cls.agent, cls.bridge):
            c.close()
        assert cls.server.stop() == 0, cls.server.read_log()

    @classmethod
    def set_clock(cls, ms):
        tmp = cls.clock_path + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % ms)
        os.replace(tmp, cls.clock_path)

    def report(self, **kw):
        return self.agent.call(SLA, from_unix_ms=self.T0 - H, to_unix_ms=self.T0 + DAY, **kw)

    def wait_total(self, target, want, timeout=15):
        end = time.time() + timeout
        while time.time() < end:
            got = sla_rows(self.report().total)[target - 1]
            if got == want:
                return got
            time.sleep(0.05)
        return sla_rows(self.report().total)[target - 1]

    def test_live_clocks_met_breached_and_open(self):
        # Minute 31: the unanswered ticket's first reply breaches (the timer thread).
        self.set_clock(self.T0 + 31 * 60 * 1000)
        self.assertEqual(self.wait_total(FR, ("", FR, 2, 1, 0)), ("", FR, 2, 1, 0), self.server.read_log())
        r = self.report(group_by="REPORT_GROUPING_AGENT", time_zone="Asia/Shanghai")
        self.assertEqual(sla_rows(r.rows), [
            ("alice", FR, 1, 0, 0), ("alice", NR, 0, 0, 0), ("alice", RS, 0, 0, 1),
            ("bob", FR, 1, 1, 0), ("bob", NR, 0, 0, 0), ("bob", RS, 1, 0, 1),
        ])
        self.assertEqual(sla_rows(r.total), [("", FR, 2, 1, 0), ("", NR, 0, 0, 0), ("", RS, 1, 0, 2)])
        self.assertAlmostEqual(r.total[0].attainment, 2 / 3)
        r = self.report(group_by="REPORT_GROUPING_PERIOD", time_zone="Asia/Shanghai")
        self.assertEqual([x.key for x in r.rows[::3]], ["2026-12-07", "2026-12-08"])
        self.assertEqual(sla_rows(r.rows[:3]), [("2026-12-07", FR, 2, 1, 0), ("2026-12-07", NR, 0, 0, 0),
                                                ("2026-12-07", RS, 1, 0, 2)])
        # Five hours in, both unresolved tickets breach their 240-minute resolution.
        self.set_clock(self.T0 + 5 * H)
        self.assertEqual(self.wait_total(RS, ("", RS, 1, 2, 0)), ("", RS, 1, 2, 0), self.server.read_log())
        r = self.report(group_by="REPORT_GROUPING_AGENT")
        self.assertEqual(sla_rows(r.rows)[2], ("alice", RS, 0, 1, 0))
        self.assertEqual(sla_rows(r.rows)[5], ("bob", RS, 1, 1, 0))
        self.assertAlmostEqual(r.total[2].attainment, 1 / 3)


if __name__ == "__main__":
    hwtest.main()
