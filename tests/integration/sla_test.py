"""sla_test: SLA policies and their clocks through the real helpwired,
driven by a simulated clock (--clock-file) so a working week passes in
seconds. The queue "vip" works Monday to Friday 09:00-18:00 in Shanghai.

- A ticket created Friday 17:30 with a 60-business-minute first reply
  target is due Monday 09:30; SLA_WARNING comes at 80% (Monday 09:18), not
  before; helpwired is restarted between warning and breach; at 09:30 the
  breach escalates the ticket and alerts the supervisor webhook once, with
  an "escalated" and a "sla_breached" alert (target, due time, policy,
  action); the late reply ends the wait and the metrics count one breach.
- PENDING pauses the clock with the business time left; OPEN resumes it;
  a reply in time meets it (no warning, no breach ever after).
- BUMP_PRIORITY and REASSIGN breach actions, each with its own
  "sla_breached" alert and no escalation; REASSIGN picks by the queues'
  rule (an agent whose capacity for the ticket's channel is full is
  skipped).
- Policy validation errors name the field; duplicates and unknown skills
  are refused; delete and list."""
import datetime
import http.server
import json
import os
import re
import tempfile
import threading
import time
import unittest
import urllib.request

import grpc

import hwclient
import hwtest

API = hwclient.Api()
TG = "CHANNEL_TELEGRAM"
SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))
ESCALATED, WARNING, BREACHED = 7, 17, 18  # TicketEventKind
RUNNING, PAUSED, MET, BREACHED_STATE = 1, 2, 3, 4  # SlaState
FIRST_REPLY, NEXT_REPLY, RESOLUTION = 1, 2, 3  # SlaTarget
QUIET = 1.0  # seconds to wait when proving that nothing happens


def local_ms(y, mo, d, h, mi):
    """Milliseconds since the epoch of a Shanghai wall-clock time."""
    return int(datetime.datetime(y, mo, d, h, mi, tzinfo=SHANGHAI).timestamp() * 1000)


FRI_1730 = local_ms(2026, 12, 4, 17, 30)
MON = lambda h, mi: local_ms(2026, 12, 7, h, mi)  # noqa: E731
TUE = lambda h, mi: local_ms(2026, 12, 8, h, mi)  # noqa: E731


class Webhook:
    """A supervisor webhook on 127.0.0.1 recording JSON POSTs: the SLA's
    (escalation) alerts in received, the UNASSIGNABLE ones (the tests' queue
    has no agent) apart in unassignable."""

    def __init__(self):
        self.received = []
        self.unassignable = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                alert = json.loads(body)
                (outer.unassignable if alert.get("kind") == "unassignable" else outer.received).append(alert)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def wait_for(pred, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    return None


class SimulatedWeek(unittest.TestCase):
    """One helpwired per test, its clock in a file the test moves."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="hw-sla-", dir=os.environ.get("TEST_TMPDIR"))
        self.clock_path = os.path.join(self.dir, "clock")
        self.set_clock(FRI_1730)
        self.hook = Webhook()
        self.data_dir = os.path.join(self.dir, "data")
        self.start()
        self.put_vip_queue()

    def tearDown(self):
        for c in (self.admin, self.bridge):
            c.close()
        rc = self.server.stop()
        self.hook.stop()
        self.assertEqual(rc, 0, self.server.read_log())

    def start(self, webhook=True, *extra):
        hook = ["--webhook-url", "http://127.0.0.1:%d/alerts" % self.hook.port] if webhook else []
        self.server = hwclient.Server("--demo", "--clock-file", self.clock_path, *hook, "--metrics", "127.0.0.1:0",
                                      *extra, data_dir=self.data_dir)
        self.admin = self.server.client(api=API, role="admin")
        self.bridge = self.server.client(api=API, role="bridge")

    def restart(self, webhook=True, *extra):
        self.admin.close()
        self.bridge.close()
        self.assertEqual(self.server.stop(), 0, self.server.read_log())
        self.start(webhook, *extra)

    def set_clock(self, ms):
        tmp = self.clock_path + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % ms)
        os.replace(tmp, self.clock_path)
        self.now = ms

    def put_vip_queue(self):
        days = [{"weekday": d, "ranges": [{"openMinute": 9 * 60, "closeMinute": 18 * 60}]} for d in range(1, 6)]
        self.admin.call("helpwire.v1.Agents/PutSkill", skill={
            "name": "vip", "description": "VIP customers", "keywords": ["vip"],
            "hours": {"timeZone": "Asia/Shanghai", "days": days}})

    def put_policy(self, **fields):
        policy = dict(name="vip-urgent", priority="PRIORITY_URGENT", skill="vip", firstReplyMinutes=60)
        policy.update(fields)
        return self.admin.call("helpwire.v1.Sla/PutSlaPolicy", policy=policy)

    def new_ticket(self, user, priority="PRIORITY_URGENT"):
        r = self.bridge.call("helpwire.v1.Router/Route", channel=TG, channelUserId=user, displayName=user,
                             text="如何重置密码", messageId="first-" + user)
        return self.admin.call("helpwire.v1.Tickets/CreateTicket", customerId=r.customer_id, queue="vip",
                               priority=priority, text="My order never arrived").ticket

    def ticket(self, tid):
        return self.admin.call("helpwire.v1.Tickets/GetTicket", ticketId=tid).ticket

    def clock(self, tid, target=FIRST_REPLY):
        for c in self.ticket(tid).sla:
            if c.target == target:
                return c
        return None

    def events(self, tid, kind=None):
        evs = self.admin.call("helpwire.v1.Tickets/GetTicketHistory", ticketId=tid, pageSize=1000).events
        return [e for e in evs if kind is None or e.kind == kind]

    def alerts(self, tid, kind):
        return [a for a in list(self.hook.received) if a["ticket_id"] == tid and a["kind"] == kind]

    def metric(self, name_and_labels):
        with urllib.request.urlopen(self.server.metrics_url, timeout=10) as r:
            text = r.read().decode()
        m = re.search(r"^%s (\d+)$" % re.escape(name_and_labels), text, re.M)
        return int(m.group(1)) if m else None

    # ------------------------------------------------------------------

    def test_alerts_without_webhook_wait_in_the_store_and_are_dropped_after_retention(self):
        day = 24 * 3600 * 1000
        no_timer = ("--alert-retention-days", "2", "--unassigned-alert-after-ms", str(1 << 40))
        self.restart(False, *no_timer)
        t = self.new_ticket("tg-kept")
        self.admin.call("helpwire.v1.Tickets/EscalateTicket", ticketId=t.id, reason="no one to tell")
        self.assertTrue(wait_for(lambda: (self.metric("helpwire_notifier_pending") or 0) >= 1))
        time.sleep(0.5)
        queued = self.metric("helpwire_notifier_pending")
        # A day later (within the retention): kept, and still after a restart.
        self.set_clock(self.now + day)
        self.restart(False, *no_timer)
        self.assertTrue(wait_for(lambda: self.metric("helpwire_notifier_pending") == queued))
        time.sleep(1.5)  # the expiry check runs every second
        self.assertEqual(self.metric("helpwire_notifier_alerts_expired_total"), 0)
        self.assertEqual(self.metric("helpwire_notifier_pending"), queued)
        # Past two days: dropped undelivered, counted, logged.
        self.set_clock(self.now + 2 * day)
        self.assertTrue(wait_for(lambda: self.metric("helpwire_notifier_alerts_expired_total") == queued),
                        self.server.read_log())
        self.assertEqual(self.metric("helpwire_notifier_pending"), 0)
        self.assertIn("event=alerts_expired", self.server.read_log())
        # A start with the webhook sends none of them, but a new alert.
        self.restart(True, *no_timer)
        t2 = self.new_ticket("tg-new")
        self.admin.call("helpwire.v1.Tickets/EscalateTicket", ticketId=t2.id, reason="sent")
        self.assertTrue(wait_for(lambda: self.alerts(t2.id, "escalated")))
        self.assertEqual([a for a in self.hook.received + self.hook.unassignable if a["ticket_id"] == t.id], [])
        # The ticket's own history still says it was escalated.
        self.assertTrue(self.events(t.id, ESCALATED))

    def test_friday_evening_ticket_warns_and_breaches_on_monday_once_across_a_restart(self):
        self.put_policy()
        t = self.new_ticket("sla-week")
        self.assertEqual(t.sla_policy, "vip-urgent")
        self.assertEqual([(c.target, c.state) for c in t.sla], [(FIRST_REPLY, RUNNING)])
        self.assertEqual(t.sla[0].due_unix_ms, MON(9, 30))  # 30 minutes Friday, 30 Monday
        self.assertEqual(t.sla[0].started_unix_ms, FRI_1730)
        # The weekend and Monday 09:17 pass: no warning yet.
        self.set_clock(MON(9, 17))
        time.sleep(QUIET)
        self.assertEqual(self.events(t.id, WARNING), [])
        # 80% of the target: Monday 09:18.
        self.set_clock(MON(9, 18))
        w = wait_for(lambda: self.events(t.id, WARNING))
        self.assertTrue(w, self.server.read_log())
        self.assertEqual(w[0].detail, "FIRST_REPLY due 2026-12-07T01:30:00Z")
        self.assertEqual(w[0].actor, "system")
        self.assertTrue(self.clock(t.id).warned)
        self.assertEqual(self.hook.received, [])  # a warning is not an alert
        # helpwired goes down and comes back between warning and breach.
        self.restart()
        self.set_clock(MON(9, 29))
        time.sleep(QUIET)
        self.assertEqual(self.events(t.id, BREACHED), [])
        self.set_clock(MON(9, 30))
        b = wait_for(lambda: self.events(t.id, BREACHED))
        self.assertTrue(b, self.server.read_log())
        self.assertEqual(b[0].detail, "FIRST_REPLY due 2026-12-07T01:30:00Z: escalated")
        got = self.ticket(t.id)
        self.assertEqual(got.status, 3)  # ESCALATED
        self.assertIn("SLA breached: FIRST_REPLY due 2026-12-07T01:30:00Z", got.escalation_reason)
        c = self.clock(t.id)
        self.assertEqual((c.state, c.ended_unix_ms), (BREACHED_STATE, 0))
        # Two alerts: the escalation (as EscalateTicket sends) and the breach itself.
        sla = wait_for(lambda: self.alerts(t.id, "sla_breached"))
        self.assertTrue(sla, self.server.read_log())
        self.assertEqual({k: sla[0][k] for k in ("sla_target", "due_unix_ms", "sla_policy", "action", "actor",
                                                 "priority")},
                         {"sla_target": "FIRST_REPLY", "due_unix_ms": MON(9, 30), "sla_policy": "vip-urgent",
                          "action": "escalated", "actor": "system", "priority": "PRIORITY_URGENT"})
        self.assertEqual(sla[0]["at_unix_ms"], MON(9, 30))
        self.assertIn("breached its SLA (queue vip): SLA breached: FIRST_REPLY due 2026-12-07T01:30:00Z",
                      sla[0]["text"])
        esc = wait_for(lambda: self.alerts(t.id, "escalated"))
        self.assertTrue(esc, self.server.read_log())
        self.assertIn("escalated by system: SLA breached: FIRST_REPLY", esc[0]["text"])
        self.assertEqual(self.metric('helpwire_sla_breached_now{target="FIRST_REPLY"}'), 1)
        # Time goes on, and helpwired restarts again: still one warning, one breach, one alert.
        self.set_clock(MON(12, 0))
        self.restart()
        time.sleep(QUIET)
        self.assertEqual(len(self.events(t.id, WARNING)), 1)
        self.assertEqual(len(self.events(t.id, BREACHED)), 1)
        self.assertEqual(sorted(a["kind"] for a in self.hook.received if a["ticket_id"] == t.id),
                         ["escalated", "sla_breached"])
        # The late reply ends the wait; the breach stays, and is counted once.
        self.admin.call("helpwire.v1.Tickets/AddMessage", ticketId=t.id, kind="MESSAGE_KIND_AGENT_REPLY",
                        text="Sorry for the wait, here is your tracking number.")
        c = self.clock(t.id)
        self.assertEqual((c.state, c.ended_unix_ms), (BREACHED_STATE, MON(12, 0)))
        labels = 'queue="vip",priority="URGENT",target="FIRST_REPLY",result="%s"'
        self.assertEqual(self.metric("helpwire_sla_clocks_total{%s}" % (labels % "breached")), 1)
        self.assertIsNone(self.metric("helpwire_sla_clocks_total{%s}" % (labels % "met")))
        self.assertEqual(self.metric('helpwire_sla_breached_now{target="FIRST_REPLY"}'), 0)

    def test_pending_pauses_open_resumes_with_the_time_left_and_a_reply_meets(self):
        self.put_policy(nextReplyMinutes=30)
        self.set_clock(MON(9, 0))
        t = self.new_ticket("sla-pause")
        self.assertEqual(t.sla[0].due_unix_ms, MON(10, 0))
        # 20 minutes in, the ticket waits on the customer: 40 minutes kept.
        self.set_clock(MON(9, 20))
        self.admin.call("helpwire.v1.Tickets/UpdateTicket", ticketId=t.id, status="TICKET_STATUS_PENDING",
                        updateMask=["status"])
        c = self.clock(t.id)
        self.assertEqual((c.state, c.remaining_ms, c.due_unix_ms), (PAUSED, 40 * 60000, 0))
        # The due time and the warning time pass while paused: nothing.
        self.set_clock(MON(17, 50))
        time.sleep(QUIET)
        self.assertEqual(self.events(t.id, WARNING) + self.events(t.id, BREACHED), [])
        # The customer writes back at 17:50: 10 minutes today, 30 on Tuesday.
        self.admin.call("helpwire.v1.Tickets/AddMessage", ticketId=t.id, kind="MESSAGE_KIND_CUSTOMER",
                        text="Here is the photo you asked for")
        got = self.ticket(t.id)
        self.assertEqual(got.status, 1)  # OPEN again
        c = self.clock(t.id)
        self.assertEqual((c.state, c.due_unix_ms, c.remaining_ms), (RUNNING, TUE(9, 30), 0))
        self.assertIsNone(self.clock(t.id, NEXT_REPLY))  # the first reply is still due
        # The reply comes Tuesday 09:10, before the warning (09:18).
        self.set_clock(TUE(9, 10))
        self.admin.call("helpwire.v1.Tickets/AddMessage", ticketId=t.id, kind="MESSAGE_KIND_AGENT_REPLY",
                        text="Thanks, a replacement is on its way.")
        c = self.clock(t.id)
        self.assertEqual((c.state, c.ended_unix_ms), (MET, TUE(9, 10)))
        self.set_clock(TUE(12, 0))
        time.sleep(QUIET)
        self.assertEqual(self.events(t.id, WARNING) + self.events(t.id, BREACHED), [])
        labels = 'queue="vip",priority="URGENT",target="FIRST_REPLY",result="met"'
        self.assertEqual(self.metric("helpwire_sla_clocks_total{%s}" % labels), 1)
        # The next customer message starts NEXT_REPLY (30 minutes); resolving meets it.
        self.admin.call("helpwire.v1.Tickets/AddMessage", ticketId=t.id, kind="MESSAGE_KIND_CUSTOMER",
                        text="One more question")
        n = self.clock(t.id, NEXT_REPLY)
        self.assertEqual((n.state, n.started_unix_ms, n.due_unix_ms), (RUNNING, TUE(12, 0), TUE(12, 30)))
        self.admin.call("helpwire.v1.Tickets/UpdateTicket", ticketId=t.id, status="TICKET_STATUS_RESOLVED",
                        updateMask=["status"])
        self.assertEqual(self.clock(t.id, NEXT_REPLY).state, MET)
        self.set_clock(TUE(13, 0))
        time.sleep(QUIET)
        self.assertEqual(self.events(t.id, BREACHED), [])

    def test_bump_priority_and_reassign(self):
        self.set_clock(MON(9, 0))
        self.put_policy(name="vip-high", priority="PRIORITY_HIGH", firstReplyMinutes=10,
                        breachAction="SLA_BREACH_ACTION_BUMP_PRIORITY")
        # Two online agents of the queue; the second takes the reassigned ticket.
        for aid in ("vip-ann", "vip-ben"):
            self.admin.call("helpwire.v1.Agents/PutAgent", agent={"id": aid, "name": aid, "skills": ["vip"],
                                                                  "capacity": 5})
        self.admin.call("helpwire.v1.Agents/SetPresence", agentId="vip-ann", presence="PRESENCE_ONLINE")
        self.put_policy(firstReplyMinutes=5, breachAction="SLA_BREACH_ACTION_REASSIGN")
        t = self.new_ticket("sla-bump", priority="PRIORITY_HIGH")
        self.assertEqual(t.sla_policy, "vip-high")
        self.assertEqual(t.assignee_agent_id, "vip-ann")
        self.set_clock(MON(9, 10))
        b = wait_for(lambda: self.events(t.id, BREACHED))
        self.assertTrue(b, self.server.read_log())
        self.assertEqual(b[0].detail, "FIRST_REPLY due 2026-12-07T01:10:00Z: priority raised")
        got = self.ticket(t.id)
        self.assertEqual(got.priority, 4)  # URGENT
        self.assertEqual(got.status, 1)  # still OPEN
        # The URGENT policy now applies; its 5 minutes were used up long ago.
        self.assertEqual(got.sla_policy, "vip-urgent")
        # The alert names the policy that was breached and what happened, on the ticket as it is
        # after the bump; no escalation.
        sla = wait_for(lambda: self.alerts(t.id, "sla_breached"))
        self.assertTrue(sla, self.server.read_log())
        self.assertEqual((sla[0]["action"], sla[0]["priority"], sla[0]["sla_policy"]),
                         ("priority raised", "PRIORITY_URGENT", "vip-high"))
        self.assertNotIn("escalated by", sla[0]["text"])
        self.assertEqual(self.alerts(t.id, "escalated"), [])
        # A breached clock stays breached under the new policy: nothing more fires.
        self.set_clock(MON(9, 20))
        time.sleep(QUIET)
        self.assertEqual(len(self.events(t.id, BREACHED)), 1)
        # REASSIGN: an URGENT ticket's breach hands it to the other online agent of the queue.
        self.set_clock(MON(9, 30))
        u = self.new_ticket("sla-reassign")
        self.assertEqual((u.sla_policy, u.assignee_agent_id), ("vip-urgent", "vip-ann"))
        self.admin.call("helpwire.v1.Agents/SetPresence", agentId="vip-ben", presence="PRESENCE_ONLINE")
        self.set_clock(MON(9, 35))
        b = wait_for(lambda: self.events(u.id, BREACHED))
        self.assertTrue(b, self.server.read_log())
        self.assertEqual(b[0].detail, "FIRST_REPLY due 2026-12-07T01:35:00Z: reassigned to vip-ben")
        self.assertEqual(self.ticket(u.id).assignee_agent_id, "vip-ben")
        sla = wait_for(lambda: self.alerts(u.id, "sla_breached"))
        self.assertTrue(sla, self.server.read_log())
        self.assertEqual((sla[0]["action"], sla[0]["assignee_agent_id"]), ("reassigned to vip-ben", "vip-ben"))
        self.assertEqual(self.alerts(u.id, "escalated"), [])

    def test_reassign_follows_the_queues_rule_per_channel_capacity(self):
        self.set_clock(MON(9, 0))
        self.put_policy(firstReplyMinutes=5, breachAction="SLA_BREACH_ACTION_REASSIGN")
        agents = {"vip-ann": {}, "vip-ben": {"channelCapacities": [{"channel": TG, "capacity": 1}]},
                  "vip-cat": {}}
        for aid, extra in agents.items():
            self.admin.call("helpwire.v1.Agents/PutAgent", agent=dict(id=aid, name=aid, skills=["vip"], capacity=5,
                                                                      **extra))
        online = lambda aid: self.admin.call("helpwire.v1.Agents/SetPresence", agentId=aid,  # noqa: E731
                                             presence="PRESENCE_ONLINE")
        online("vip-ann")
        u = self.new_ticket("rr-urgent")
        self.assertEqual(u.assignee_agent_id, "vip-ann")
        # Ben takes one Telegram ticket (his Telegram capacity is 1), Cat one too: both hold one.
        online("vip-ben")
        self.assertEqual(self.new_ticket("rr-ben", priority="PRIORITY_LOW").assignee_agent_id, "vip-ben")
        online("vip-cat")
        self.assertEqual(self.new_ticket("rr-cat", priority="PRIORITY_LOW").assignee_agent_id, "vip-cat")
        get = lambda aid: self.admin.call("helpwire.v1.Agents/GetAgent", agentId=aid)  # noqa: E731
        self.assertEqual((get("vip-ben").open_tickets, get("vip-cat").open_tickets), (1, 1))
        # The breach: Ben is first by id and as loaded, but has no Telegram room; Cat takes it.
        self.set_clock(MON(9, 5))
        b = wait_for(lambda: self.events(u.id, BREACHED))
        self.assertTrue(b, self.server.read_log())
        self.assertEqual(b[0].detail, "FIRST_REPLY due 2026-12-07T01:05:00Z: reassigned to vip-cat")
        self.assertEqual(self.ticket(u.id).assignee_agent_id, "vip-cat")
        self.assertEqual([get(a).open_tickets for a in ("vip-ann", "vip-ben", "vip-cat")], [0, 1, 2])
        sla = wait_for(lambda: self.alerts(u.id, "sla_breached"))
        self.assertTrue(sla, self.server.read_log())
        self.assertEqual(sla[0]["action"], "reassigned to vip-cat")

    def test_escalated_ticket_is_only_alerted_and_a_deleted_policy_only_notifies(self):
        self.set_clock(MON(9, 0))
        self.put_policy(firstReplyMinutes=10)
        self.put_policy(name="vip-high", priority="PRIORITY_HIGH", firstReplyMinutes=10)
        gone = self.new_ticket("sla-gone")
        esc = self.new_ticket("sla-esc", priority="PRIORITY_HIGH")
        self.admin.call("helpwire.v1.Tickets/EscalateTicket", ticketId=esc.id, reason="customer is furious")
        self.admin.call("helpwire.v1.Sla/DeleteSlaPolicy", name="vip-urgent")
        # 09:08: the live policy warns; the deleted one does not.
        self.set_clock(MON(9, 8))
        self.assertTrue(wait_for(lambda: self.events(esc.id, WARNING)), self.server.read_log())
        time.sleep(QUIET)
        self.assertEqual(self.events(gone.id, WARNING), [])
        # 09:10: both breach; the escalated ticket stays as it is, the other only notifies.
        self.set_clock(MON(9, 10))
        b = wait_for(lambda: self.events(esc.id, BREACHED))
        self.assertTrue(b, self.server.read_log())
        self.assertEqual(b[0].detail, "FIRST_REPLY due 2026-12-07T01:10:00Z: already escalated; alerted")
        got = self.ticket(esc.id)
        self.assertEqual((got.status, got.escalation_reason), (3, "customer is furious"))
        b = wait_for(lambda: self.events(gone.id, BREACHED))
        self.assertTrue(b, self.server.read_log())
        self.assertEqual(b[0].detail, "FIRST_REPLY due 2026-12-07T01:10:00Z: alerted")
        self.assertEqual(self.ticket(gone.id).status, 1)  # still OPEN
        reasons = lambda tid: sorted(a["reason"] for a in self.hook.received if a["ticket_id"] == tid)  # noqa: E731
        self.assertTrue(wait_for(lambda: len(reasons(esc.id)) == 2 and reasons(gone.id)), self.hook.received)
        self.assertEqual(reasons(esc.id), ["SLA breached: FIRST_REPLY due 2026-12-07T01:10:00Z (policy vip-high)",
                                           "customer is furious"])
        self.assertEqual(reasons(gone.id),
                         ["SLA breached: FIRST_REPLY due 2026-12-07T01:10:00Z (policy vip-urgent, deleted)"])
        # The manual escalation's alert, then the breach's own, which only alerts.
        self.assertEqual([a["action"] for a in self.alerts(esc.id, "sla_breached")], ["already escalated; alerted"])
        self.assertEqual(len(self.alerts(esc.id, "escalated")), 1)
        self.assertEqual([(a["action"], a["sla_policy"]) for a in self.alerts(gone.id, "sla_breached")],
                         [("alerted", "vip-urgent")])

    def test_policy_validation_names_the_field(self):
        bad = [
            (dict(name="Bad Name"), grpc.StatusCode.INVALID_ARGUMENT, "policy.name"),
            (dict(priority="PRIORITY_UNSPECIFIED"), grpc.StatusCode.INVALID_ARGUMENT, "policy.priority"),
            (dict(firstReplyMinutes=0), grpc.StatusCode.INVALID_ARGUMENT, "first_reply_minutes"),
            (dict(resolutionMinutes=525601), grpc.StatusCode.INVALID_ARGUMENT, "policy.resolution_minutes"),
            (dict(warnFraction=1.5), grpc.StatusCode.INVALID_ARGUMENT, "policy.warn_fraction"),
            (dict(warnFraction=-0.1), grpc.StatusCode.INVALID_ARGUMENT, "policy.warn_fraction"),
            (dict(skill="nosuch"), grpc.StatusCode.NOT_FOUND, "policy.skill: no skill named nosuch"),
        ]
        for fields, code, text in bad:
            with self.assertRaises(grpc.RpcError, msg=fields) as cm:
                self.put_policy(**fields)
            self.assertEqual(cm.exception.code(), code, fields)
            self.assertIn(text, cm.exception.details(), fields)
        with self.assertRaises(grpc.RpcError) as cm:
            self.admin.call("helpwire.v1.Sla/PutSlaPolicy")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("policy: required", cm.exception.details())
        self.assertEqual(list(self.admin.call("helpwire.v1.Sla/ListSlaPolicies").policies), [])
        p = self.put_policy()
        self.assertEqual((p.version, p.warn_fraction, p.breach_action), (1, 0.8, 1))  # the defaults
        self.assertEqual(self.put_policy(firstReplyMinutes=90).version, 2)
        with self.assertRaises(grpc.RpcError) as cm:
            self.put_policy(name="vip-urgent-2")  # covers the same priority and queue
        self.assertEqual(cm.exception.code(), grpc.StatusCode.ALREADY_EXISTS)
        self.assertIn("vip-urgent already covers priority URGENT", cm.exception.details())
        self.put_policy(name="any-urgent", skill="")
        names = [x.name for x in self.admin.call("helpwire.v1.Sla/ListSlaPolicies").policies]
        self.assertEqual(names, ["any-urgent", "vip-urgent"])
        # The queue's own policy wins; another queue gets the one for any queue.
        self.assertEqual(self.new_ticket("sla-choice").sla_policy, "vip-urgent")
        r = self.bridge.call("helpwire.v1.Router/Route", channel=TG, channelUserId="sla-o", displayName="o",
                             text="如何重置密码", messageId="first-sla-o")
        t = self.admin.call("helpwire.v1.Tickets/CreateTicket", customerId=r.customer_id, queue="billing",
                            priority="PRIORITY_URGENT", text="refund please").ticket
        self.assertEqual(t.sla_policy, "any-urgent")
        # No policy for the priority: no clocks.
        t = self.new_ticket("sla-none", priority="PRIORITY_LOW")
        self.assertEqual((t.sla_policy, list(t.sla)), ("", []))
        # Delete: gone from the list; tickets keep their clocks; unknown names are NOT_FOUND.
        self.admin.call("helpwire.v1.Sla/DeleteSlaPolicy", name="vip-urgent")
        with self.assertRaises(grpc.RpcError) as cm:
            self.admin.call("helpwire.v1.Sla/DeleteSlaPolicy", name="vip-urgent")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
        with self.assertRaises(grpc.RpcError) as cm:
            self.admin.call("helpwire.v1.Sla/DeleteSlaPolicy", name="")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        agent = self.server.client(api=API, role="agent")
        self.assertEqual([x.name for x in agent.call("helpwire.v1.Sla/ListSlaPolicies").policies], ["any-urgent"])
        with self.assertRaises(grpc.RpcError) as cm:
            agent.call("helpwire.v1.Sla/DeleteSlaPolicy", name="any-urgent")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        agent.close()


if __name__ == "__main__":
    hwtest.main()
