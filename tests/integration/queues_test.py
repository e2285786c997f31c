"""queues_test: queues that never strand a ticket, through the real
helpwired with a file clock (--clock-file): the default skill as the
fallback queue (the issue's scenario: account, billing and technical with
one online agent each and no "general"; the first skill of a bootstrapped
store takes the mark, the default cannot drop it, a moved mark stays across
restarts), UNASSIGNABLE on the history, on
WatchTickets, at the supervisor webhook and in the metrics (at once when no
agent has the skill; once after waiting too long), capacity per channel,
least-loaded and round-robin assignment, waiting tickets taken by priority
when capacity frees, and an away agent's tickets reassigned after the grace
period (not when it comes back in time). Time moves by rewriting the clock
file; the tests poll, they never sleep for the durations themselves."""
import os
import tempfile
import threading
import time
import unittest
import urllib.request

import grpc

import hwclient
import hwtest
from lifecycle_test import Webhook, wait_for

API = hwclient.Api()
TG = "CHANNEL_TELEGRAM"
WA = "CHANNEL_WHATSAPP"
T0 = 1_800_000_000_000  # 2027-01-15T08:00:00Z

UNASSIGNABLE = 16
ASSIGNED = 4


class Clock:
    """The file helpwired reads the time of day from."""

    def __init__(self, start=T0):
        fd, self.path = tempfile.mkstemp(prefix="hw-clock-", dir=os.environ.get("TEST_TMPDIR"))
        os.close(fd)
        self.now = 0
        self.set(start)

    def set(self, ms):
        self.now = ms
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % ms)
        os.replace(tmp, self.path)

    def advance(self, ms):
        self.set(self.now + ms)


class Env:
    """A fresh helpwired (no demo data) with a file clock, a webhook and
    metrics, and the admin client."""

    def __init__(self, *extra):
        self.clock = Clock()
        self.hook = Webhook()
        self.server = hwclient.Server("--clock-file", self.clock.path, "--webhook-url",
                                      "http://127.0.0.1:%d/alerts" % self.hook.port, "--metrics",
                                      "127.0.0.1:0", *extra)
        self.c = self.server.client(api=API)
        self.users = 0

    def close(self):
        self.c.close()
        rc = self.server.stop()
        self.hook.stop()
        assert rc == 0, self.server.read_log()

    def restart(self, *extra, advance_ms=0):
        """Stops helpwired and starts it again on the same store and clock
        (moved on by advance_ms while it is down)."""
        self.c.close()
        assert self.server.stop() == 0, self.server.read_log()
        self.clock.advance(advance_ms)
        self.server = hwclient.Server("--clock-file", self.clock.path, "--webhook-url",
                                      "http://127.0.0.1:%d/alerts" % self.hook.port, "--metrics",
                                      "127.0.0.1:0", *extra, data_dir=self.server.data_dir)
        self.c = self.server.client(api=API)

    def skill(self, name, keywords=(), **kw):
        return self.c.call("helpwire.v1.Agents/PutSkill", skill=dict(name=name, keywords=list(keywords), **kw))

    def agent(self, aid, skills, capacity=5, online=True, **kw):
        self.c.call("helpwire.v1.Agents/PutAgent",
                    agent=dict(id=aid, name=aid.title(), skills=list(skills), capacity=capacity, **kw))
        if online:
            return self.presence(aid, "PRESENCE_ONLINE")
        return None

    def presence(self, aid, p):
        return self.c.call("helpwire.v1.Agents/SetPresence", agentId=aid, presence=p)

    def route(self, text, channel=TG):
        self.users += 1
        user = "u%d" % self.users
        r = self.c.call("helpwire.v1.Router/Route", channel=channel, channelUserId=user, displayName=user,
                        text=text, messageId="m-" + user)
        assert r.action == 2, r  # NEW_TICKET
        return self.ticket(r.ticket_id)

    def ticket(self, tid):
        return self.c.call("helpwire.v1.Tickets/GetTicket", ticketId=tid).ticket

    def history(self, tid):
        return list(self.c.call("helpwire.v1.Tickets/GetTicketHistory", ticketId=tid).events)

    def close_ticket(self, tid):
        return self.c.call("helpwire.v1.Tickets/CloseTicket", ticketId=tid, resolution="done", skipSurvey=True)

    def get_agent(self, aid):
        return self.c.call("helpwire.v1.Agents/GetAgent", agentId=aid)

    def metrics(self):
        with urllib.request.urlopen(self.server.metrics_url, timeout=10) as r:
            return r.read().decode()

    def alerts(self, kind="unassignable"):
        return [b for _, _, b in self.hook.received if b.get("kind") == kind]


def kinds(events):
    return [e.kind for e in events]


class DefaultSkill(unittest.TestCase):
    def setUp(self):
        self.env = Env()

    def tearDown(self):
        self.env.close()

    def test_the_issue_scenario_strands_no_ticket(self):
        e = self.env
        e.skill("account", ["account", "login", "password", "账号"])
        e.skill("billing", ["refund", "invoice", "charged", "退款"])
        e.skill("technical", ["error", "crash", "报错"], is_default=True)
        # PutSkill with is_default moves the mark: one default at most.
        e.skill("account", ["account", "login", "password", "账号"], is_default=True)
        skills = {s.name: s.is_default for s in e.c.call("helpwire.v1.Agents/ListSkills").skills}
        self.assertEqual(skills, {"account": True, "billing": False, "technical": False})
        e.agent("ann", ["account"], capacity=10)
        e.agent("bill", ["billing"], capacity=10)
        e.agent("tess", ["technical"], capacity=10)
        texts = {
            "I cannot login to my account": "account",
            "forgot my password": "account",
            "我的账号被锁了": "account",
            "please refund my order": "billing",
            "where is my invoice": "billing",
            "I was charged twice": "billing",
            "我要退款": "billing",
            "the app shows an error": "technical",
            "it crashes at start": "technical",
            "页面报错": "technical",
            "hello, anyone there? I have a question": "account",  # matches nothing: the default skill
            "what time do you open": "account",
            "你好，想咨询一下": "account",
        }
        owner = {"account": "ann", "billing": "bill", "technical": "tess"}
        for text, queue in texts.items():
            t = e.route(text)
            self.assertEqual(t.queue, queue, text)
            self.assertEqual(t.assignee_agent_id, owner[queue], text)
        self.assertEqual(len(e.c.call("helpwire.v1.Tickets/ListTickets", pageSize=100).tickets), 13)
        self.assertEqual(e.get_agent("ann").open_tickets, 6)
        self.assertEqual(e.alerts(), [])
        self.assertNotIn("queue=\"general\"", e.metrics())

    def defaults(self):
        return {s.name: s.is_default for s in self.env.c.call("helpwire.v1.Agents/ListSkills").skills}

    def test_the_first_skill_is_the_default_and_the_mark_only_moves(self):
        e = self.env
        # No skill yet (as after --bootstrap-token-file): the first one put takes the mark.
        self.assertTrue(e.skill("zeta", ["zebra"]).is_default)
        self.assertFalse(e.skill("alpha", ["aardvark"]).is_default)
        self.assertEqual(self.defaults(), {"alpha": False, "zeta": True})
        e.agent("al", ["alpha"])
        e.agent("zed", ["zeta"])
        t = e.route("nothing matches this")
        self.assertEqual((t.queue, t.assignee_agent_id), ("zeta", "zed"))
        # The default cannot drop its mark: the error says how to move it.
        with self.assertRaises(grpc.RpcError) as cm:
            e.skill("zeta", ["zebra"], is_default=False)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertIn("skill.is_default: zeta is the default skill", cm.exception.details())
        self.assertIn("mark another skill is_default", cm.exception.details())
        self.assertEqual(self.defaults(), {"alpha": False, "zeta": True})
        self.assertEqual(e.route("still nothing").queue, "zeta")
        # Moving it works; editing the old default afterwards keeps it unmarked.
        self.assertTrue(e.skill("alpha", ["aardvark"], is_default=True).is_default)
        self.assertFalse(e.skill("zeta", ["zebra", "zoo"]).is_default)
        self.assertEqual(self.defaults(), {"alpha": True, "zeta": False})
        self.assertEqual(e.route("and again nothing").queue, "alpha")

    def test_a_moved_mark_stays_across_restarts_even_with_a_general_skill(self):
        e = self.env
        self.assertTrue(e.skill("general", ["help"]).is_default)
        e.skill("billing", ["refund"], is_default=True)
        e.agent("bill", ["billing"])
        self.assertEqual(self.defaults(), {"billing": True, "general": False})
        e.restart()
        self.assertEqual(self.defaults(), {"billing": True, "general": False})
        self.assertEqual(e.route("hello there, something else").queue, "billing")
        self.assertNotIn("no_default_skill", e.server.read_log())

    def test_bad_skill_and_agent_inputs_are_refused_by_name(self):
        e = self.env
        e.skill("sales")
        with self.assertRaises(grpc.RpcError) as cm:
            e.c.call("helpwire.v1.Agents/PutSkill", skill=dict(name="sales", assignment=7))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("skill.assignment", cm.exception.details())
        bad = [
            (dict(capacity=3, channelCapacities=[dict(channel=WA, capacity=4)]),
             "agent.channel_capacities[0].capacity: 4 is not within 1 to the agent's capacity 3"),
            (dict(capacity=3, channelCapacities=[dict(channel=WA, capacity=0)]),
             "agent.channel_capacities[0].capacity: 0"),
            (dict(capacity=3, channelCapacities=[dict(channel=WA, capacity=1), dict(channel=WA, capacity=2)]),
             "agent.channel_capacities[1]: channel given twice"),
            (dict(capacity=3, channelCapacities=[dict(capacity=1)]), "agent.channel_capacities[0].channel"),
        ]
        for fields, msg in bad:
            with self.assertRaises(grpc.RpcError) as cm:
                e.c.call("helpwire.v1.Agents/PutAgent", agent=dict(id="x", name="X", skills=["sales"], **fields))
            self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT, fields)
            self.assertIn(msg, cm.exception.details())


class Unassignable(unittest.TestCase):
    def setUp(self):
        self.env = Env("--unassigned-alert-after-ms", "600000")

    def tearDown(self):
        self.env.close()

    def watch(self):
        """A WatchTickets stream of every queue, known to be live."""
        e = self.env
        stream = e.c.stream("helpwire.v1.Tickets/WatchTickets", timeout=60)
        got = []

        def read():
            try:
                for ev in stream:
                    got.append(ev)
            except grpc.RpcError:
                pass

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        probe = e.route("probe the stream")
        n = 0
        while not any(ev.ticket_id == probe.id and ev.kind == 2 for ev in got):
            n += 1
            self.assertLess(n, 100, "the watch stream never started")
            e.c.call("helpwire.v1.Tickets/AddMessage", ticketId=probe.id, kind="MESSAGE_KIND_INTERNAL_NOTE",
                     text="probe %d" % n)
            time.sleep(0.05)
        return stream, got

    def test_a_queue_nobody_serves_alerts_at_once_everywhere(self):
        e = self.env
        e.skill("general", is_default=True)
        e.agent("gina", ["general"])
        e.skill("legal", ["lawyer", "contract"])
        stream, got = self.watch()
        t = e.route("I need a lawyer about my contract")
        self.assertEqual((t.queue, t.assignee_agent_id), ("legal", ""))
        why = "no agent has the skill legal"
        hist = e.history(t.id)
        self.assertIn(UNASSIGNABLE, kinds(hist))
        self.assertEqual([x.detail for x in hist if x.kind == UNASSIGNABLE], [why])
        self.assertTrue(wait_for(lambda: any(ev.ticket_id == t.id and ev.kind == UNASSIGNABLE for ev in got), 10))
        self.assertTrue(wait_for(lambda: e.alerts(), 20), "no webhook alert")
        body = e.alerts()[0]
        self.assertEqual((body["ticket_id"], body["queue"], body["reason"]), (t.id, "legal", why))
        self.assertIn("cannot be assigned", body["text"])
        self.assertIn('helpwire_tickets_unassignable_total{queue="legal"} 1', e.metrics())
        self.assertIn('helpwire_queue_waiting{queue="legal"} 1', e.metrics())
        # Once per wait: the timer is not set on top of it.
        e.clock.advance(3600_000)
        time.sleep(0.5)
        self.assertEqual(kinds(e.history(t.id)).count(UNASSIGNABLE), 1)
        # An agent with the skill who comes online takes it.
        e.agent("lex", ["legal"])
        self.assertEqual(e.ticket(t.id).assignee_agent_id, "lex")
        self.assertIn('helpwire_queue_waiting{queue="legal"} 0', e.metrics())
        stream.cancel()

    def test_waiting_too_long_alerts_once(self):
        e = self.env
        e.skill("billing", ["refund"], is_default=True, unassignedAlertAfterS=120)
        e.skill("technical", ["error"])  # the server's 10 minutes
        e.agent("bob", ["billing", "technical"], capacity=1)
        first = e.route("refund please")
        self.assertEqual(first.assignee_agent_id, "bob")
        waiting = e.route("another refund")
        tech = e.route("an error")
        self.assertEqual((waiting.assignee_agent_id, tech.assignee_agent_id), ("", ""))
        e.clock.advance(119_000)
        time.sleep(0.5)
        self.assertNotIn(UNASSIGNABLE, kinds(e.history(waiting.id)))
        e.clock.advance(2_000)
        self.assertTrue(wait_for(lambda: UNASSIGNABLE in kinds(e.history(waiting.id)), 10))
        detail = [x.detail for x in e.history(waiting.id) if x.kind == UNASSIGNABLE]
        self.assertEqual(detail, ["waited unassigned in queue billing for 2 min (no agent free)"])
        self.assertNotIn(UNASSIGNABLE, kinds(e.history(tech.id)))  # 10 minutes for technical
        e.clock.advance(600_000)
        self.assertTrue(wait_for(lambda: UNASSIGNABLE in kinds(e.history(tech.id)), 10))
        self.assertTrue(wait_for(lambda: len(e.alerts()) == 2, 20), e.alerts())
        self.assertEqual(sorted(a["ticket_id"] for a in e.alerts()), sorted([waiting.id, tech.id]))
        # Not repeated while the wait goes on.
        e.clock.advance(3600_000)
        time.sleep(0.5)
        self.assertEqual(kinds(e.history(waiting.id)).count(UNASSIGNABLE), 1)
        m = e.metrics()
        self.assertIn('helpwire_tickets_unassignable_total{queue="billing"} 1', m)
        self.assertIn('helpwire_tickets_unassignable_total{queue="technical"} 1', m)
        # Taken when capacity frees (priority, then number): the wait is over.
        e.close_ticket(first.id)
        self.assertEqual(e.ticket(waiting.id).assignee_agent_id, "bob")

    def test_a_ticket_assigned_in_time_never_alerts(self):
        e = self.env
        e.skill("billing", ["refund"], is_default=True, unassignedAlertAfterS=60)
        e.agent("bob", ["billing"], capacity=1)
        first = e.route("refund please")
        waiting = e.route("another refund")
        e.clock.advance(30_000)
        e.close_ticket(first.id)
        self.assertEqual(e.ticket(waiting.id).assignee_agent_id, "bob")
        e.clock.advance(3600_000)
        time.sleep(0.5)
        self.assertNotIn(UNASSIGNABLE, kinds(e.history(waiting.id)))
        self.assertEqual(e.alerts(), [])


class Capacity(unittest.TestCase):
    def setUp(self):
        self.env = Env()

    def tearDown(self):
        self.env.close()

    def test_capacity_per_channel(self):
        e = self.env
        e.skill("support", is_default=True)
        e.agent("wendy", ["support"], capacity=3, channelCapacities=[dict(channel=WA, capacity=1)])
        wa1 = e.route("hi from whatsapp", channel=WA)
        wa2 = e.route("hi again from whatsapp", channel=WA)
        tg1 = e.route("hi from telegram", channel=TG)
        self.assertEqual([t.assignee_agent_id for t in (wa1, wa2, tg1)], ["wendy", "", "wendy"])
        ag = e.get_agent("wendy")
        self.assertEqual(ag.open_tickets, 2)
        load = {l.channel: l.open_tickets for l in ag.channel_load}
        self.assertEqual(load, {1: 1, 2: 1})  # WHATSAPP, TELEGRAM
        e.close_ticket(wa1.id)  # the WhatsApp slot frees: the waiting WhatsApp ticket takes it
        self.assertEqual(e.ticket(wa2.id).assignee_agent_id, "wendy")
        ag = e.get_agent("wendy")
        self.assertEqual({l.channel: l.open_tickets for l in ag.channel_load}, {1: 1, 2: 1})
        # PutAgent keeps the load it does not set.
        e.c.call("helpwire.v1.Agents/PutAgent", agent=dict(id="wendy", name="Wendy", skills=["support"], capacity=3,
                                                          channelCapacities=[dict(channel=WA, capacity=1)]))
        self.assertEqual({l.channel: l.open_tickets for l in e.get_agent("wendy").channel_load}, {1: 1, 2: 1})

    def test_round_robin_takes_turns_in_id_order(self):
        e = self.env
        e.skill("rr", is_default=True, assignment="ASSIGNMENT_STRATEGY_ROUND_ROBIN")
        for a in ("r1", "r2", "r3"):
            e.agent(a, ["rr"], capacity=10)
        got = [e.route("turn %d" % i).assignee_agent_id for i in range(5)]
        self.assertEqual(got, ["r1", "r2", "r3", "r1", "r2"])
        e.presence("r3", "PRESENCE_AWAY")  # the absent are skipped
        got = [e.route("turn b%d" % i).assignee_agent_id for i in range(3)]
        self.assertEqual(got, ["r1", "r2", "r1"])
        self.assertEqual([s.assignment for s in e.c.call("helpwire.v1.Agents/ListSkills").skills], [2])

    def test_least_loaded_ties_go_to_the_one_idle_longest(self):
        e = self.env
        e.skill("ll", is_default=True, assignment="ASSIGNMENT_STRATEGY_LEAST_LOADED")
        e.agent("l1", ["ll"], online=False)
        e.agent("l2", ["ll"], online=False)
        e.clock.advance(1000)
        e.presence("l2", "PRESENCE_ONLINE")  # online first: idle longest
        e.clock.advance(1000)
        e.presence("l1", "PRESENCE_ONLINE")
        self.assertLess(e.get_agent("l2").presence_changed_unix_ms, e.get_agent("l1").presence_changed_unix_ms)
        got = [e.route("n%d" % i).assignee_agent_id for i in range(3)]
        self.assertEqual(got, ["l2", "l1", "l2"])

    def test_waiting_tickets_are_taken_by_priority_when_capacity_frees(self):
        e = self.env
        e.skill("solo", is_default=True)
        e.agent("sam", ["solo"], capacity=1)
        first = e.route("first")
        cust = e.route("for the customer").customer_id  # waits too: number order among NORMAL
        low = e.c.call("helpwire.v1.Tickets/CreateTicket", customerId=cust, text="low", queue="solo",
                       priority="PRIORITY_LOW").ticket
        urgent = e.c.call("helpwire.v1.Tickets/CreateTicket", customerId=cust, text="urgent", queue="solo",
                          priority="PRIORITY_URGENT").ticket
        high = e.c.call("helpwire.v1.Tickets/CreateTicket", customerId=cust, text="high", queue="solo",
                        priority="PRIORITY_HIGH").ticket
        order = []
        current = first.id
        for _ in range(4):
            e.close_ticket(current)
            now = [t for t in e.c.call("helpwire.v1.Tickets/ListTickets", assigneeAgentId="sam").tickets
                   if t.status == 1]
            self.assertEqual(len(now), 1)
            current = now[0].id
            order.append(current)
        self.assertEqual(order[:3], [urgent.id, high.id, order[2]])
        self.assertEqual(order[3], low.id)


class Restart(unittest.TestCase):
    def setUp(self):
        self.env = Env()

    def tearDown(self):
        self.env.close()

    def test_the_round_robin_turn_and_the_wait_survive_a_restart(self):
        e = self.env
        e.skill("rr", is_default=True, assignment="ASSIGNMENT_STRATEGY_ROUND_ROBIN", unassignedAlertAfterS=60)
        e.agent("r1", ["rr"], capacity=1)
        e.agent("r2", ["rr"], capacity=1)
        self.assertEqual(e.route("a").assignee_agent_id, "r1")
        e.restart()
        self.assertEqual(e.route("b").assignee_agent_id, "r2")  # r1 had its turn before the restart
        waiting = e.route("c")
        self.assertEqual(waiting.assignee_agent_id, "")
        e.restart(advance_ms=61_000)  # came due while the server was down
        self.assertTrue(wait_for(lambda: UNASSIGNABLE in kinds(e.history(waiting.id)), 10))
        self.assertTrue(wait_for(lambda: e.alerts(), 20))
        e.restart()
        self.assertIn('helpwire_tickets_unassignable_total{queue="rr"} 1', e.metrics())


class Reassignment(unittest.TestCase):
    def setUp(self):
        self.env = Env("--reassign-grace-ms", "300000")

    def tearDown(self):
        self.env.close()

    def test_an_away_agents_tickets_move_after_the_grace_period(self):
        e = self.env
        e.skill("support", is_default=True)
        e.agent("bob", ["support"])
        t1 = e.route("one")
        t2 = e.route("two")
        self.assertEqual([t1.assignee_agent_id, t2.assignee_agent_id], ["bob", "bob"])
        e.agent("carol", ["support"], capacity=1)
        e.presence("bob", "PRESENCE_AWAY")
        e.clock.advance(299_000)
        time.sleep(0.5)
        self.assertEqual(e.ticket(t1.id).assignee_agent_id, "bob")  # not yet
        e.clock.advance(1_000)
        self.assertTrue(wait_for(lambda: e.ticket(t1.id).assignee_agent_id != "bob", 10))
        moved = {t.id: t.assignee_agent_id for t in (e.ticket(t1.id), e.ticket(t2.id))}
        self.assertEqual(sorted(moved.values()), ["", "carol"])  # carol has room for one; the other waits
        for tid, who in moved.items():
            ev = [x for x in e.history(tid) if x.kind == ASSIGNED][-1]
            want = "assigned to carol" if who else "unassigned, waiting"
            self.assertEqual(ev.detail, "reassigned: agent bob away for 5 min; " + want)
        self.assertEqual(e.get_agent("bob").open_tickets, 0)
        self.assertEqual(e.get_agent("carol").open_tickets, 1)

    def test_coming_back_in_time_keeps_the_tickets(self):
        e = self.env
        e.skill("support", is_default=True)
        e.agent("bob", ["support"])
        e.agent("carol", ["support"], online=False)
        t1 = e.route("one")
        e.agent("carol", ["support"])
        e.presence("bob", "PRESENCE_OFFLINE")
        self.assertIn("helpwire_timers_pending 1\n", e.metrics())  # the reassignment timer
        e.clock.advance(200_000)
        e.presence("bob", "PRESENCE_ONLINE")
        self.assertIn("helpwire_timers_pending 0\n", e.metrics())  # cancelled
        e.clock.advance(3600_000)
        time.sleep(0.5)
        self.assertEqual(e.ticket(t1.id).assignee_agent_id, "bob")
        self.assertEqual([x.detail for x in e.history(t1.id) if x.kind == ASSIGNED], ["assigned to bob"])


if __name__ == "__main__":
    hwtest.main()
