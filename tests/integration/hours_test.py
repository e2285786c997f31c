"""hours_test: business hours through the real helpwired, whose time of day
comes from a file (--clock-file): a skill with hours (Asia/Shanghai,
Monday to Friday 09:00-18:00); a message routed outside them is
acknowledged with the line saying when the team is back, in Chinese and
in English, inside them with the usual acknowledgement; stored timestamps
follow the clock file; GetSchedule answers open / next open / next close /
intervals; `helpwire skills schedule`; bad hours are refused naming the
field, and nothing is stored."""
import datetime
import json
import os
import subprocess
import tempfile
import time
import unittest
from zoneinfo import ZoneInfo

import grpc

import hwclient
import hwtest

API = hwclient.Api()
TG = "CHANNEL_TELEGRAM"
CLI = hwclient.find_file("clients/cli/helpwire", "clients/cli/helpwire")
SH = ZoneInfo("Asia/Shanghai")
DAY_MS = 24 * 3600 * 1000


def ms(*fields, tz=SH):
    """Milliseconds since the epoch of a local time."""
    return int(datetime.datetime(*fields, tzinfo=tz).timestamp() * 1000)


def weekdays(open_minute, close_minute):
    return [{"weekday": d, "ranges": [{"openMinute": open_minute, "closeMinute": close_minute}]} for d in range(1, 6)]


OFFICE = {"timeZone": "Asia/Shanghai", "days": weekdays(9 * 60, 18 * 60),
          "holidays": [{"date": "2026-10-%02d" % d, "name": "国庆节"} for d in range(1, 8)]}


class BusinessHours(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        cls.clock_file = os.path.join(cls.tmp, "now")
        cls.set_clock(ms(2026, 12, 7, 20, 0))  # a Monday evening
        cls.server = hwclient.Server("--clock-file", cls.clock_file)
        cls.admin = cls.server.client(api=API)
        cls.admin.call("helpwire.v1.Agents/PutSkill",
                       skill={"name": "quasar", "keywords": ["quasar", "类星体"], "hours": OFFICE})
        cls.admin.call("helpwire.v1.Agents/PutSkill", skill={"name": "pulsar", "keywords": ["pulsar"]})
        cls.users = 0

    @classmethod
    def tearDownClass(cls):
        cls.admin.close()
        assert cls.server.stop() == 0, cls.server.read_log()

    @classmethod
    def set_clock(cls, at_ms):
        tmp = cls.clock_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % at_ms)
        os.rename(tmp, cls.clock_file)

    def route(self, text, locale=""):
        BusinessHours.users += 1
        user = "hours-%d" % BusinessHours.users
        return self.admin.call("helpwire.v1.Router/Route", channel=TG, channelUserId=user, displayName="Hours",
                               text=text, messageId=user + "-1", locale=locale)

    # the acknowledgement

    def test_outside_hours_english_says_when_the_team_is_back(self):
        self.set_clock(ms(2026, 12, 7, 20, 0))
        r = self.route("my quasar is broken", locale="en")
        self.assertEqual(r.action, 2, r)  # NEW_TICKET
        self.assertEqual(r.queue, "quasar")
        self.assertIn("#%d" % r.ticket_number, r.reply_text)
        self.assertIn("back on Tuesday at 09:00 (Asia/Shanghai)", r.reply_text)
        self.assertNotIn("reply here soon", r.reply_text)
        # The ticket's times are the clock file's.
        t = self.admin.call("helpwire.v1.Tickets/GetTicket", ticketId=r.ticket_id).ticket
        self.assertEqual(t.created_unix_ms, ms(2026, 12, 7, 20, 0))

    def test_outside_hours_chinese_says_when_the_team_is_back(self):
        self.set_clock(ms(2026, 12, 11, 19, 0))  # Friday evening: back on Monday
        r = self.route("我的类星体坏了", locale="zh-CN")
        self.assertEqual(r.action, 2, r)
        self.assertIn("工单 #%d" % r.ticket_number, r.reply_text)
        self.assertIn("客服将于周一 09:00（Asia/Shanghai）回来", r.reply_text)
        r = self.route("quasar does not start", locale="en")
        self.assertIn("back on Monday at 09:00 (Asia/Shanghai)", r.reply_text)

    def test_a_week_or_more_away_names_the_date(self):
        self.set_clock(ms(2026, 9, 30, 20, 0))  # the National Day week follows
        r = self.route("quasar question", locale="en")
        self.assertIn("back on Thursday 2026-10-08 at 09:00 (Asia/Shanghai)", r.reply_text)
        r = self.route("类星体问题", locale="zh")
        self.assertIn("客服将于2026-10-08 周四 09:00（Asia/Shanghai）回来", r.reply_text)

    def test_inside_hours_the_usual_acknowledgement(self):
        self.set_clock(ms(2026, 12, 8, 10, 0))  # Tuesday 10:00
        r = self.route("my quasar is broken again", locale="en")
        self.assertEqual(r.action, 2, r)
        self.assertEqual(r.reply_text, "Thanks for your message. We opened ticket #%d and an agent will reply "
                                       "here soon." % r.ticket_number)
        r = self.route("类星体又坏了", locale="zh")
        self.assertIn("客服会尽快在这里回复您", r.reply_text)
        self.assertNotIn("回来", r.reply_text)

    def test_a_skill_without_hours_is_always_open(self):
        self.set_clock(ms(2026, 12, 13, 3, 0))  # Sunday night
        r = self.route("pulsar trouble", locale="en")
        self.assertEqual(r.queue, "pulsar")
        self.assertIn("reply here soon", r.reply_text)

    def test_records_age_by_the_clock_file(self):
        # Routed at a clock months behind the system's: the retention sweep
        # (every 200 ms, 168 h by default) ages the dedupe record by the
        # same clock, so the resent message still gets the first reply.
        self.set_clock(ms(2026, 9, 30, 20, 0))
        first = self.admin.call("helpwire.v1.Router/Route", channel=TG, channelUserId="hours-dedupe",
                                displayName="Hours", text="quasar", messageId="dedupe-1", locale="en")
        time.sleep(0.6)
        again = self.admin.call("helpwire.v1.Router/Route", channel=TG, channelUserId="hours-dedupe",
                                displayName="Hours", text="quasar", messageId="dedupe-1", locale="en")
        self.assertTrue(again.duplicate)
        self.assertEqual(again.ticket_id, first.ticket_id)

    # GetSchedule

    def test_get_schedule_closed_now(self):
        self.set_clock(ms(2026, 12, 7, 20, 0))
        s = self.admin.call("helpwire.v1.Agents/GetSchedule", skill="quasar", days=2)
        self.assertEqual(s.skill, "quasar")
        self.assertEqual(s.time_zone, "Asia/Shanghai")
        self.assertFalse(s.always_open)
        self.assertFalse(s.open)
        self.assertEqual(s.next_open_unix_ms, ms(2026, 12, 8, 9, 0))
        self.assertEqual(s.next_close_unix_ms, ms(2026, 12, 8, 18, 0))
        self.assertEqual([(i.start_unix_ms, i.end_unix_ms) for i in s.intervals],
                         [(ms(2026, 12, 8, 9, 0), ms(2026, 12, 8, 18, 0)),
                          (ms(2026, 12, 9, 9, 0), ms(2026, 12, 9, 18, 0))])
        # Default 7 days: five weekdays from Monday evening (Tue..Fri, next Mon).
        s = self.admin.call("helpwire.v1.Agents/GetSchedule", skill="quasar")
        self.assertEqual(len(s.intervals), 5)

    def test_get_schedule_open_at_a_given_moment(self):
        at = ms(2026, 12, 8, 17, 30)
        s = self.admin.call("helpwire.v1.Agents/GetSchedule", skill="quasar", atUnixMs=str(at), days=1)
        self.assertTrue(s.open)
        self.assertEqual(s.next_open_unix_ms, at)
        self.assertEqual(s.next_close_unix_ms, ms(2026, 12, 8, 18, 0))
        self.assertEqual([(i.start_unix_ms, i.end_unix_ms) for i in s.intervals],
                         [(at, ms(2026, 12, 8, 18, 0)), (ms(2026, 12, 9, 9, 0), at + DAY_MS)])
        # The holidays close the National Day week.
        s = self.admin.call("helpwire.v1.Agents/GetSchedule", skill="quasar", atUnixMs=str(ms(2026, 9, 30, 20, 0)),
                            days=8)
        self.assertEqual(s.next_open_unix_ms, ms(2026, 10, 8, 9, 0))
        self.assertEqual(len(s.intervals), 1)

    def test_get_schedule_always_open(self):
        at = ms(2026, 12, 13, 3, 0)
        s = self.admin.call("helpwire.v1.Agents/GetSchedule", skill="pulsar", atUnixMs=str(at), days=3)
        self.assertTrue(s.always_open)
        self.assertTrue(s.open)
        self.assertEqual(s.time_zone, "")
        self.assertEqual(s.next_open_unix_ms, at)
        self.assertEqual(s.next_close_unix_ms, 0)
        self.assertEqual([(i.start_unix_ms, i.end_unix_ms) for i in s.intervals], [(at, at + 3 * DAY_MS)])

    def test_get_schedule_bad_requests(self):
        for fields, code, words in (
                ({"skill": "no-such-skill"}, grpc.StatusCode.NOT_FOUND, "no skill named no-such-skill"),
                ({"skill": ""}, grpc.StatusCode.INVALID_ARGUMENT, "skill: required"),
                ({"skill": "quasar", "days": 63}, grpc.StatusCode.INVALID_ARGUMENT, "days: 63"),
                ({"skill": "quasar", "atUnixMs": "-5"}, grpc.StatusCode.INVALID_ARGUMENT, "at_unix_ms")):
            with self.assertRaises(grpc.RpcError) as cm:
                self.admin.call("helpwire.v1.Agents/GetSchedule", **fields)
            self.assertEqual(cm.exception.code(), code, fields)
            self.assertIn(words, cm.exception.details())

    # PutSkill

    def test_bad_hours_are_refused_naming_the_field(self):
        cases = (
            ({"timeZone": "Mars/Base", "days": weekdays(540, 1080)}, "skill.hours.time_zone: unknown zone \"Mars/Base\""),
            ({"timeZone": "../../etc/passwd", "days": weekdays(540, 1080)},
             "skill.hours.time_zone: \"../../etc/passwd\" is not a time zone name"),
            ({"days": weekdays(540, 1080)}, "skill.hours.time_zone: required"),
            ({"timeZone": "Asia/Shanghai", "days": weekdays(540, 1500)},
             "skill.hours.days[0].ranges[0]: close_minute 1500 > 1440"),
            ({"timeZone": "Asia/Shanghai", "days": [{"weekday": 1}, {"weekday": 2}]},
             "skill.hours.days: no day has an open range"),
            ({"timeZone": "Asia/Shanghai", "days": [{"weekday": 1, "ranges": [{"openMinute": 1, "closeMinute": 2}]},
                                                    {"weekday": 1, "ranges": [{"openMinute": 3, "closeMinute": 4}]}]},
             "skill.hours.days[1].weekday: weekday 1 is listed twice"),
            ({"timeZone": "Asia/Shanghai", "days": weekdays(540, 1080), "holidays": [{"date": "2026-02-30"}]},
             "skill.hours.holidays[0].date: \"2026-02-30\" is not a date"),
        )
        for hours, words in cases:
            with self.assertRaises(grpc.RpcError) as cm:
                self.admin.call("helpwire.v1.Agents/PutSkill", skill={"name": "broken-hours", "hours": hours})
            self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT, hours)
            self.assertIn(words, cm.exception.details())
        names = [s.name for s in self.admin.call("helpwire.v1.Agents/ListSkills").skills]
        self.assertNotIn("broken-hours", names)

    def test_hours_are_stored_and_listed(self):
        skills = {s.name: s for s in self.admin.call("helpwire.v1.Agents/ListSkills").skills}
        h = skills["quasar"].hours
        self.assertEqual(h.time_zone, "Asia/Shanghai")
        self.assertEqual([d.weekday for d in h.days], [1, 2, 3, 4, 5])
        self.assertEqual(len(h.holidays), 7)
        self.assertFalse(skills["pulsar"].HasField("hours"))

    # the CLI

    def run_cli(self, *args):
        env = {k: v for k, v in os.environ.items() if not k.startswith("HELPWIRE_")}
        env.update(HELPWIRE_SERVER=self.server.address, HELPWIRE_TOKEN=self.server.tokens["admin"])
        return subprocess.run([CLI] + list(args), env=env, capture_output=True, text=True, timeout=60)

    def test_cli_skills_schedule(self):
        self.set_clock(ms(2026, 12, 7, 20, 0))
        p = self.run_cli("skills", "schedule", "quasar", "--days", "2")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("closed", p.stdout)
        self.assertIn("Asia/Shanghai", p.stdout)
        self.assertIn("next open:  Tue 2026-12-08 09:00", p.stdout)
        self.assertIn("Wed 2026-12-09 09:00", p.stdout)
        self.assertIn("Wed 2026-12-09 18:00", p.stdout)
        p = self.run_cli("--json", "skills", "schedule", "quasar", "--days", "1")
        self.assertEqual(p.returncode, 0, p.stderr)
        s = json.loads(p.stdout.splitlines()[0])
        self.assertEqual(int(s["next_open_unix_ms"]), ms(2026, 12, 8, 9, 0))
        self.assertEqual(len(s["intervals"]), 1)
        p = self.run_cli("skills", "schedule", "pulsar")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("pulsar is always open", p.stdout)
        p = self.run_cli("skills", "schedule", "quasar", "--days", "0")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--days", p.stderr)
        p = self.run_cli("skills", "schedule", "nope")
        self.assertEqual(p.returncode, 1)
        self.assertTrue(p.stderr.startswith("helpwire: NOT_FOUND: "), p.stderr)


if __name__ == "__main__":
    hwtest.main()
