"""retention_test: each queue's retention of closed tickets' conversations
(Skill.retention_days, retention_action) through the real helpwired, with
a simulated clock (--clock-file) so months pass in seconds.

- Queue "brief" keeps closed conversations 30 days then redacts them,
  queue "gone" 10 days then deletes the messages, queue "kept" has no
  period. Nothing is touched a day before a period ends; after it, the
  ticket's subject, resolution and messages' texts are empty (REDACT keeps
  the messages, DELETE removes them), its history keeps its statuses with
  the details emptied, redacted_unix_ms is set, the metrics count it, and
  it stays so across a restart; each batch's work is in the audit log
  ("retention.apply", actor "system"). Open tickets and the queue without a
  period keep everything.
- PutSkill refuses a period beyond 36500 days and an unknown action,
  naming the field."""
import os
import re
import tempfile
import time
import unittest
import urllib.request

import grpc

import hwclient
import hwtest

API = hwclient.Api()
DAY = 24 * 3600 * 1000
T0 = 1796083200000  # 2026-12-01 00:00 UTC
MARK = "ZQXJ-private-marker"


class QueueRetention(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="hw-retention-", dir=os.environ.get("TEST_TMPDIR"))
        self.clock_path = os.path.join(self.dir, "clock")
        self.data_dir = os.path.join(self.dir, "data")
        self.set_clock(T0)
        self.start()

    def tearDown(self):
        self.admin.close()
        self.assertEqual(self.server.stop(), 0, self.server.read_log())

    def start(self):
        self.server = hwclient.Server("--demo", "--clock-file", self.clock_path, "--metrics", "127.0.0.1:0",
                                      data_dir=self.data_dir)
        self.admin = self.server.client(api=API, role="admin")

    def restart(self):
        self.admin.close()
        self.assertEqual(self.server.stop(), 0, self.server.read_log())
        self.start()

    def set_clock(self, ms):
        hwtest.set_clock(self.clock_path, ms)

    def metric(self, name_and_labels):
        with urllib.request.urlopen(self.server.metrics_url, timeout=10) as r:
            text = r.read().decode()
        m = re.search(r"^%s (\d+)$" % re.escape(name_and_labels), text, re.M)
        return int(m.group(1)) if m else None

    def put_queue(self, name, days=0, action=None):
        skill = {"name": name, "description": name + " queue", "keywords": [name]}
        if days:
            skill["retentionDays"] = days
        if action:
            skill["retentionAction"] = action
        return self.admin.call("helpwire.v1.Agents/PutSkill", skill=skill)

    def conversation(self, queue, close=True):
        cust = self.route_customer(queue + ("-closed" if close else "-open"))
        t = self.admin.call("helpwire.v1.Tickets/CreateTicket", customerId=cust, queue=queue,
                            text="My address is 12 %s Road, please change it" % MARK).ticket
        self.admin.call("helpwire.v1.Tickets/AddMessage", ticketId=t.id, kind="MESSAGE_KIND_AGENT_REPLY",
                        text="Done: %s Road is on file" % MARK)
        if close:
            self.admin.call("helpwire.v1.Tickets/CloseTicket", ticketId=t.id, skipSurvey=True,
                            resolution="changed the address to %s" % MARK)
        return t.id

    def route_customer(self, user):
        bridge = self.server.client(api=API, role="bridge")
        try:
            r = bridge.call("helpwire.v1.Router/Route", channel="CHANNEL_TELEGRAM", channelUserId=user,
                            displayName=user, text="hello there", messageId="m-" + user)
            return r.customer_id
        finally:
            bridge.close()

    def get(self, tid):
        r = self.admin.call("helpwire.v1.Tickets/GetTicket", ticketId=tid, includeMessages=True)
        return r.ticket, list(r.messages)

    def history(self, tid):
        return list(self.admin.call("helpwire.v1.Tickets/GetTicketHistory", ticketId=tid, pageSize=1000).events)

    def intact(self, tid):
        t, msgs = self.get(tid)
        texts = [m.text for m in msgs if m.kind in (1, 2)]
        return t.redacted_unix_ms == 0 and MARK in t.subject and len(texts) == 2 and all(MARK in x for x in texts)

    def test_each_queue_redacts_or_deletes_after_its_period_and_others_keep_everything(self):
        self.put_queue("brief", 30, "RETENTION_ACTION_REDACT")
        self.put_queue("gone", 10, "RETENTION_ACTION_DELETE")
        self.put_queue("kept")
        brief = self.conversation("brief")
        brief_open = self.conversation("brief", close=False)
        gone = self.conversation("gone")
        kept = self.conversation("kept")
        before_events = len(self.history(brief))
        for tid in (brief, brief_open, gone, kept):
            self.assertTrue(self.intact(tid), tid)

        # A day before "gone"'s period ends: nothing changes.
        self.set_clock(T0 + 9 * DAY)
        time.sleep(1.5)
        for tid in (brief, brief_open, gone, kept):
            self.assertTrue(self.intact(tid), tid)
        self.assertEqual(self.metric('helpwire_retention_conversations_total{action="delete"}'), 0)

        # Past it: "gone" loses its messages; "brief" is still within 30 days.
        self.set_clock(T0 + 11 * DAY)
        self.assertTrue(hwtest.wait_for(lambda: self.get(gone)[0].redacted_unix_ms != 0), self.server.read_log())
        t, msgs = self.get(gone)
        self.assertEqual(t.redacted_unix_ms, T0 + 11 * DAY)
        self.assertEqual(t.subject, "")
        self.assertEqual(t.resolution, "")
        self.assertEqual(t.status, 5)  # still CLOSED
        self.assertEqual(msgs, [])
        self.assertNotIn(MARK, str(self.history(gone)))
        self.assertTrue(self.intact(brief))
        self.assertEqual(self.metric('helpwire_retention_conversations_total{action="delete"}'), 1)

        # Past 30 days: "brief"'s closed ticket is redacted, its messages stay.
        self.set_clock(T0 + 31 * DAY)
        self.assertTrue(hwtest.wait_for(lambda: self.get(brief)[0].redacted_unix_ms != 0), self.server.read_log())
        t, msgs = self.get(brief)
        self.assertEqual((t.subject, t.resolution, t.queue), ("", "", "brief"))
        self.assertGreaterEqual(len(msgs), 2)
        for m in msgs:
            self.assertEqual(m.text, "")
            self.assertTrue(m.author)
            self.assertGreater(m.created_unix_ms, 0)
        events = self.history(brief)
        self.assertEqual(len(events), before_events)
        self.assertTrue(all(e.detail == "" for e in events))
        self.assertEqual(events[-1].kind, self.history(kept)[-1].kind)  # the CLOSED event is still there
        self.assertEqual(self.metric('helpwire_retention_conversations_total{action="redact"}'), 1)
        self.assertGreaterEqual(self.metric("helpwire_retention_messages_total"), 4)

        # The sweep's actions are in the audit log, one entry per queue's batch.
        audit = self.admin.call("helpwire.v1.Admin/ListAuditEvents", action="retention.apply").events
        self.assertEqual(sorted((e.target, e.actor, dict(e.details)["action"], dict(e.details)["tickets"])
                                for e in audit),
                         [("brief", "system", "redact", "1"), ("gone", "system", "delete", "1")])

        # The open ticket and the queue without a period keep everything.
        self.assertTrue(self.intact(brief_open))
        self.assertTrue(self.intact(kept))

        # A redaction is done once, and it is durable.
        self.restart()
        self.set_clock(T0 + 400 * DAY)
        time.sleep(1.5)
        self.assertEqual(self.get(brief)[0].redacted_unix_ms, T0 + 31 * DAY)
        self.assertTrue(self.intact(brief_open))
        self.assertTrue(self.intact(kept))

    def test_bad_retention_settings_are_refused_naming_the_field(self):
        with self.assertRaises(grpc.RpcError) as e:
            self.put_queue("q1", 36501)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("skill.retention_days", e.exception.details())
        with self.assertRaises(grpc.RpcError) as e:
            self.admin.call("helpwire.v1.Agents/PutSkill",
                            skill={"name": "q2", "keywords": ["q2"], "retentionDays": 5, "retentionAction": 7})
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("skill.retention_action", e.exception.details())
        s = self.put_queue("q3", 36500, "RETENTION_ACTION_DELETE")
        self.assertEqual((s.retention_days, s.retention_action), (36500, 2))


if __name__ == "__main__":
    hwtest.main()
