"""cli_test: the `helpwire` admin CLI against the real helpwired --demo:
bulk import with bad lines, tokens, tickets, agents, stats, online backup,
the outbox's failed list and retries, TLS, and the exit-status contract
(0 ok, 1 failed call with the status name, 2 usage). The CLI's effects are checked through hwclient, not
through the CLI itself."""
import datetime
import json
import os
import subprocess
import tempfile
import unittest

import hwclient
import hwtest

API = hwclient.Api()
TG = "CHANNEL_TELEGRAM"
CLI = hwclient.find_file("clients/cli/helpwire", "clients/cli/helpwire")


def tmpdir():
    return tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))


class Cli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = hwclient.Server("--demo")
        cls.admin = cls.server.client(api=API, role="admin")
        cls.bridge = cls.server.client(api=API, role="bridge")
        cls.tmp = tmpdir()

    @classmethod
    def tearDownClass(cls):
        cls.admin.close()
        cls.bridge.close()
        assert cls.server.stop() == 0, cls.server.read_log()

    def run_cli(self, *args, token=None, role="admin", address=None, stdin=None):
        """Runs the CLI; token="" sends none. Returns the CompletedProcess."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("HELPWIRE_")}
        env["HELPWIRE_SERVER"] = address or self.server.address
        if token is None:
            token = self.server.tokens[role]
        if token:
            env["HELPWIRE_TOKEN"] = token
        return subprocess.run([CLI] + list(args), env=env, capture_output=True, text=True, timeout=120,
                              input=stdin)

    def ok(self, *args, **kw):
        p = self.run_cli(*args, **kw)
        self.assertEqual(p.returncode, 0, "%s\nstdout: %s\nstderr: %s" % (args, p.stdout, p.stderr))
        return p

    def json_lines(self, p):
        return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]

    def route(self, user, text):
        return self.bridge.call("helpwire.v1.Router/Route", channel=TG, channelUserId=user, displayName="CLI test",
                                text=text, messageId=user + "-1")

    def write(self, name, lines):
        path = os.path.join(self.tmp, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        return path

    # import

    def test_import_skips_a_bad_line_reports_its_number_and_the_rest_is_searchable(self):
        lines = []
        for i in range(50):
            if i == 25:
                lines.append('{"id": "cli-art-bad", "title": "broken", "body": ')  # line 26
            else:
                lines.append(json.dumps({"id": "cli-art-%d" % i, "title": "Quasarwidget manual %d" % i,
                                         "body": "How to calibrate the quasarwidget flux unit number %d." % i,
                                         "locale": "en", "tags": ["cli", "import"]}))
        path = self.write("articles.jsonl", lines)
        p = self.run_cli("import", "articles", path)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("articles.jsonl:26:", p.stderr)
        self.assertIn("invalid JSON", p.stderr)
        self.assertEqual(p.stderr.count("helpwire: "), 1, p.stderr)
        self.assertIn("imported 49 of 50 articles", p.stdout)
        self.assertIn("1 failed", p.stdout)
        # Not a terminal: no progress bar escapes in the output.
        self.assertNotIn("\r", p.stderr)
        self.assertNotIn("\x1b", p.stderr)
        hits = self.admin.call("helpwire.v1.Knowledge/Search", query="quasarwidget calibrate", topK=100).hits
        ids = {h.id for h in hits}
        self.assertEqual(ids, {"cli-art-%d" % i for i in range(50) if i != 25})
        art = self.admin.call("helpwire.v1.Knowledge/GetArticle", id="cli-art-7")
        self.assertEqual(art.title, "Quasarwidget manual 7")
        self.assertEqual(list(art.tags), ["cli", "import"])

    def test_import_reports_refused_records_and_shape_errors_by_line(self):
        path = self.write("faqs.jsonl", [
            json.dumps({"id": "cli-faq-1", "question": "How do I pair the zorbulator?",
                        "answer": "Hold the button for five seconds.", "alternate_questions": ["zorbulator pairing"]}),
            "",
            json.dumps({"id": "cli-faq-2", "questoin": "typo", "answer": "x"}),  # line 3: unknown key
            json.dumps({"id": "cli-faq-3", "question": "x" * 2000, "answer": "too long"}),  # line 4: server refuses
            json.dumps({"id": "cli-faq-4", "question": "Is the zorbulator waterproof?", "answer": "No."}),
            json.dumps({"id": "cli-faq-5", "question": "q", "answer": 5}),  # line 6: wrong type
        ])
        p = self.run_cli("--json", "import", "faqs", path, "--parallel", "2")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(":3: unknown key", p.stderr)
        self.assertIn(":4: INVALID_ARGUMENT: faq.question", p.stderr)
        self.assertIn(":6: \"answer\" must be a string", p.stderr)
        summary = self.json_lines(p)
        self.assertEqual(len(summary), 1)
        self.assertEqual((summary[0]["records"], summary[0]["imported"], summary[0]["failed"]), (5, 2, 3))
        faqs = {f.id: f for f in self.admin.call("helpwire.v1.Knowledge/ListFaqs", pageSize=1000).faqs}
        self.assertIn("cli-faq-1", faqs)
        self.assertEqual(list(faqs["cli-faq-1"].alternate_questions), ["zorbulator pairing"])
        self.assertIn("cli-faq-4", faqs)
        self.assertNotIn("cli-faq-3", faqs)

    def test_import_from_stdin_all_good_exits_0(self):
        lines = [json.dumps({"id": "cli-stdin-%d" % i, "title": "Stdin import %d" % i, "body": "plumbus %d" % i})
                 for i in range(3)]
        p = self.ok("import", "articles", "-", stdin="\n".join(lines) + "\n")
        self.assertIn("imported 3 of 3 articles", p.stdout)
        self.assertEqual(p.stderr, "")

    def test_import_without_admin_role_stops_at_once(self):
        path = self.write("denied.jsonl", [json.dumps({"title": "t%d" % i, "body": "b"}) for i in range(40)])
        p = self.run_cli("import", "articles", path, role="agent")
        self.assertEqual(p.returncode, 1)
        self.assertTrue(p.stderr.startswith("helpwire: PERMISSION_DENIED: "), p.stderr)
        self.assertEqual(p.stderr.count("\n"), 1, p.stderr)  # reported once, not per line
        self.assertIn("stopped early", p.stdout)

    # tokens

    def test_tokens_create_list_revoke_and_the_revoked_token_is_refused(self):
        p = self.ok("tokens", "create", "--role", "agent", "--agent", "bob", "--description", "cli test console")
        secret = p.stdout.strip()
        self.assertTrue(secret.startswith("hw_"), "the secret alone on stdout")
        self.assertNotIn(secret, p.stderr)
        token_id = p.stderr.split()[2]
        self.assertTrue(token_id.startswith("tok-"), p.stderr)

        listed = self.ok("tokens", "list")
        self.assertIn(token_id, listed.stdout)
        self.assertIn("cli test console", listed.stdout)
        self.assertNotIn(secret, listed.stdout)
        rows = {t["id"]: t for t in self.json_lines(self.ok("--json", "tokens", "list"))}
        self.assertEqual(rows[token_id]["role"], "ROLE_AGENT")
        self.assertEqual(rows[token_id]["agent_id"], "bob")
        self.assertEqual(rows[token_id]["revoked_unix_ms"], 0)

        self.ok("tickets", "list", token=secret)  # works as an agent token
        revoked = self.ok("tokens", "revoke", token_id)
        self.assertIn(token_id, revoked.stdout)
        p = self.run_cli("tickets", "list", token=secret)
        self.assertEqual(p.returncode, 1)
        self.assertTrue(p.stderr.startswith("helpwire: UNAUTHENTICATED: "), p.stderr)
        self.assertNotIn(secret, p.stderr)
        rows = {t["id"]: t for t in self.json_lines(self.ok("--json", "tokens", "list"))}
        self.assertGreater(rows[token_id]["revoked_unix_ms"], 0)

        p = self.run_cli("tokens", "revoke", "tok-99999")
        self.assertEqual(p.returncode, 1)
        self.assertTrue(p.stderr.startswith("helpwire: NOT_FOUND: "), p.stderr)

    def test_token_file_is_read_and_json_create_returns_the_secret_once(self):
        p = self.ok("--json", "tokens", "create", "--role", "admin", "--description", "file token")
        made = self.json_lines(p)
        self.assertEqual(len(made), 1)
        path = os.path.join(self.tmp, "admin.token")
        with open(path, "w") as f:
            f.write(made[0]["token"] + "\n")
        p = self.ok("--token-file", path, "stats", token="")
        self.assertIn("articles", p.stdout)
        p = self.run_cli("--token-file", path, "--token", "x", "stats", token="")
        self.assertEqual(p.returncode, 2)

    # tickets

    def test_cluster_commands_check_their_arguments_before_calling(self):
        for args, said in ((["cluster", "add", "2", "--grpc-address", "10.0.0.2:50051"], "--raft-address"),
                           (["cluster", "add", "2", "--raft-address", "10.0.0.2", "--grpc-address", "10.0.0.2:50051"],
                            "--raft-address must be one host:port"),
                           (["cluster", "add", "0", "--raft-address", "a:1", "--grpc-address", "a:2"], "replica ID"),
                           (["cluster", "add", "2", "--raft-address", "a:1", "--grpc-address", "a:2", "--role",
                             "spare"], "--role must be voter or standby"),
                           (["cluster", "remove", "x"], "replica ID"),
                           (["cluster", "transfer", "1", "2"], "expected: cluster transfer [ID]"),
                           (["cluster", "frobnicate"], "unknown command 'cluster frobnicate'")):
            p = self.run_cli(*args)
            self.assertEqual(p.returncode, 2, (args, p.stderr))
            self.assertIn(said, p.stderr)

    def test_tickets_list_pages_through_everything(self):
        # More tickets than one page holds (500), and more history events
        # than one history page (1000): the CLI follows the page tokens.
        r = self.route("cli-pages-1", "如何重置密码")
        cust = r.customer_id
        made = set()
        for i in range(1203):
            t = self.admin.call("helpwire.v1.Tickets/CreateTicket", customerId=cust, queue="general",
                                text="page filler %d" % i).ticket
            made.add(t.id)
        listed = [t["id"] for t in self.json_lines(
            self.ok("--json", "tickets", "list", "--customer", cust, "--limit", "0"))]
        self.assertEqual(len(listed), len(set(listed)), "a ticket listed twice")
        self.assertEqual(set(listed), made)
        some = self.json_lines(self.ok("--json", "tickets", "list", "--customer", cust, "--limit", "700"))
        self.assertEqual([t["id"] for t in some], listed[:700])  # newest first, cut at the limit
        tid = sorted(made)[0]
        for i in range(1005):
            self.admin.call("helpwire.v1.Tickets/AddMessage", ticketId=tid, kind="MESSAGE_KIND_INTERNAL_NOTE",
                            text="note %d" % i)
        history = self.json_lines(self.ok("--json", "tickets", "show", tid))[0]["history"]
        self.assertEqual(len([e for e in history if e["kind"] == "TICKET_EVENT_KIND_MESSAGE"]), 1005)
        self.assertEqual([int(e["seq"]) for e in history], list(range(1, len(history) + 1)))  # all, in order

    def test_outbox_failed_lists_and_retry_queues_again(self):
        cust = self.route("cli-failed-1", "如何重置密码").customer_id
        t = self.admin.call("helpwire.v1.Tickets/CreateTicket", customerId=cust, queue="general",
                            text="cli failed list").ticket
        seq = self.admin.call("helpwire.v1.Tickets/AddMessage", ticketId=t.id, kind="MESSAGE_KIND_AGENT_REPLY",
                              text="We fixed your account.").outbox_seq
        reason = "telegram 403: Forbidden: bot was blocked by the user"
        r = self.bridge.call("helpwire.v1.Outbox/Ack", channel=TG, failed=[{"seq": seq, "reason": reason}])
        self.assertEqual(r.failed, 1)
        # The table: one row per entry with the sequence, reason and ticket.
        out = self.ok("outbox", "failed", "--channel", "telegram").stdout
        self.assertTrue(out.startswith("CHANNEL"), out)
        row = [line for line in out.splitlines() if t.id in line]
        self.assertEqual(len(row), 1, out)
        self.assertIn(" %d " % seq, row[0])
        self.assertIn("telegram 403", row[0])
        # JSON lines: the entries, newest first, without the survey link.
        entries = self.json_lines(self.ok("--json", "outbox", "failed"))
        mine = [e for e in entries if e["message"]["seq"] == seq]
        self.assertEqual(len(mine), 1)
        self.assertEqual((mine[0]["reason"], mine[0]["message"]["text"]), (reason, "We fixed your account."))
        self.assertNotIn("survey_url", mine[0]["message"])
        self.assertEqual(self.json_lines(self.ok("--json", "outbox", "failed", "--channel", "whatsapp")), [])
        # All or nothing: an unknown sequence queues none.
        p = self.run_cli("outbox", "retry", "--channel", "telegram", str(seq), "987654321")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertTrue(p.stderr.startswith("helpwire: NOT_FOUND: "), p.stderr)
        self.assertIn("987654321", p.stderr)
        got = self.json_lines(self.ok("--json", "outbox", "retry", "--channel", "telegram", str(seq)))
        self.assertEqual(len(got), 1)
        self.assertEqual((got[0]["channel"], got[0]["seq"]), ("telegram", seq))
        self.assertGreater(got[0]["new_seq"], seq)
        stream = self.bridge.stream("helpwire.v1.Outbox/Subscribe", timeout=10, channel=TG)
        for m in stream:
            if m.seq == got[0]["new_seq"]:
                self.assertEqual(m.text, "We fixed your account.")
                break
        stream.cancel()
        self.assertNotIn(seq, [e["message"]["seq"] for e in self.json_lines(self.ok("--json", "outbox", "failed"))])
        p = self.run_cli("outbox", "retry", "--channel", "telegram", str(seq))
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("NOT_FOUND", p.stderr)
        # Usage errors, and only admins.
        for args in (["outbox", "retry", str(seq)], ["outbox", "retry", "--channel", "telegram"],
                     ["outbox", "retry", "--channel", "telegram", "abc"],
                     ["outbox", "retry", "--channel", "fax", "1"], ["outbox", "failed", "--limit", "x"],
                     ["outbox", "failed", "--channel", "fax"]):
            p = self.run_cli(*args)
            self.assertEqual(p.returncode, 2, "%s: %s" % (args, p.stderr))
        p = self.run_cli("outbox", "failed", role="bridge")
        self.assertEqual(p.returncode, 1)
        self.assertTrue(p.stderr.startswith("helpwire: PERMISSION_DENIED: "), p.stderr)

    def test_tickets_list_show_close_on_a_routed_ticket(self):
        r = self.route("cli-tk-1", "My invoice shows a double charge on my card, order 4471")
        self.assertEqual(r.queue, "billing")
        tid = r.ticket_id

        p = self.ok("tickets", "list", "--queue", "billing", "--status", "open")
        self.assertTrue(p.stdout.startswith("ID "), p.stdout)
        self.assertIn(tid, p.stdout)
        listed = self.json_lines(self.ok("--json", "tickets", "list", "--customer", r.customer_id))
        self.assertEqual([t["id"] for t in listed], [tid])
        self.assertEqual(listed[0]["status"], "TICKET_STATUS_OPEN")
        self.assertEqual(listed[0]["queue"], "billing")

        p = self.ok("tickets", "show", tid)
        self.assertIn("double charge", p.stdout)
        self.assertIn("messages (", p.stdout)
        self.assertIn("history", p.stdout)
        self.assertIn("created", p.stdout)
        shown = self.json_lines(self.ok("--json", "tickets", "show", tid))[0]
        self.assertEqual(shown["ticket"]["id"], tid)
        self.assertIn("double charge", shown["messages"][0]["text"])
        self.assertEqual(shown["history"][0]["kind"], "TICKET_EVENT_KIND_CREATED")

        p = self.run_cli("tickets", "close", tid)
        self.assertEqual(p.returncode, 2, "--resolution is required")
        p = self.ok("tickets", "close", tid, "--resolution", "Refunded the duplicate charge")
        self.assertIn("closed " + tid, p.stdout)
        self.assertNotIn("http", p.stdout, "the survey link (a secret) is not printed")
        t = self.admin.call("helpwire.v1.Tickets/GetTicket", ticketId=tid).ticket
        self.assertEqual(API.pool.FindEnumTypeByName("helpwire.v1.TicketStatus").values_by_number[t.status].name,
                         "TICKET_STATUS_CLOSED")
        self.assertEqual(t.resolution, "Refunded the duplicate charge")
        closed = self.json_lines(self.ok("--json", "tickets", "list", "--status", "closed", "--limit", "0"))
        self.assertIn(tid, [x["id"] for x in closed])

        p = self.run_cli("tickets", "show", "t-999999")
        self.assertEqual(p.returncode, 1)
        self.assertTrue(p.stderr.startswith("helpwire: NOT_FOUND: "), p.stderr)

    def test_tickets_escalate_and_list_follows_pages(self):
        ids = [self.route("cli-page-%d" % i, "The app shows an error and crashes on login %d" % i).ticket_id
               for i in range(7)]
        p = self.ok("--json", "tickets", "list", "--limit", "5")
        self.assertEqual(len(self.json_lines(p)), 5)
        everything = [t["id"] for t in self.json_lines(self.ok("--json", "tickets", "list", "--limit", "0"))]
        self.assertEqual(len(everything), len(set(everything)), "no ticket twice across pages")
        self.assertTrue(set(ids) <= set(everything))

        p = self.ok("tickets", "escalate", ids[0], "--reason", "VIP customer, third crash")
        self.assertIn("escalated " + ids[0], p.stdout)
        # The server only queues the alert: nobody is told "notified".
        self.assertIn("a supervisor alert is queued", p.stdout)
        self.assertNotIn("notified", p.stdout)
        t = self.admin.call("helpwire.v1.Tickets/GetTicket", ticketId=ids[0]).ticket
        self.assertEqual(t.escalation_reason, "VIP customer, third crash")
        p = self.run_cli("tickets", "list", "--status", "sideways")
        self.assertEqual(p.returncode, 2)

    # agents

    def test_agents_presence_put_and_lists(self):
        p = self.ok("agents", "presence", "carol", "away")
        self.assertIn("carol is now away", p.stdout)
        a = self.admin.call("helpwire.v1.Agents/GetAgent", agentId="carol")
        self.assertEqual(API.pool.FindEnumTypeByName("helpwire.v1.Presence").values_by_number[a.presence].name,
                         "PRESENCE_AWAY")
        self.ok("agents", "presence", "carol", "online")

        p = self.ok("agents", "put", "cli-dave", "--name", "Dave CLI", "--skills", "technical, billing",
                    "--capacity", "3")
        self.assertIn("cli-dave", p.stdout)
        a = self.admin.call("helpwire.v1.Agents/GetAgent", agentId="cli-dave")
        self.assertEqual((a.name, list(a.skills), a.capacity), ("Dave CLI", ["technical", "billing"], 3))

        agents = {x["id"]: x for x in self.json_lines(self.ok("--json", "agents", "list"))}
        self.assertIn("alice", agents)
        self.assertEqual(agents["cli-dave"]["capacity"], 3)
        p = self.ok("agents", "list", "--skill", "billing")
        self.assertIn("cli-dave", p.stdout)
        self.assertNotIn("carol", p.stdout)
        skills = [s["name"] for s in self.json_lines(self.ok("--json", "skills", "list"))]
        self.assertEqual(skills, sorted(skills))
        self.assertIn("billing", skills)
        # The demo's default skill, marked in the table and in the JSON.
        self.assertIn("general (default)", self.ok("skills", "list").stdout)
        self.assertEqual([s["name"] for s in self.json_lines(self.ok("--json", "skills", "list"))
                          if s.get("isDefault") or s.get("is_default")], ["general"])

        p = self.run_cli("agents", "presence", "carol", "busy")
        self.assertEqual(p.returncode, 2)
        p = self.run_cli("agents", "put", "cli-erin", "--name", "Erin", "--skills", "no-such-skill")
        self.assertEqual(p.returncode, 1)
        self.assertTrue(p.stderr.startswith("helpwire: NOT_FOUND: "), p.stderr)

    def test_sla_put_list_delete(self):
        p = self.ok("sla", "put", "cli-billing-high", "--priority", "high", "--skill", "billing", "--first-reply",
                    "30", "--resolution", "480", "--warn-fraction", "0.75", "--breach-action", "bump_priority")
        self.assertIn("cli-billing-high", p.stdout)
        got = {x.name: x for x in self.admin.call("helpwire.v1.Sla/ListSlaPolicies").policies}
        pol = got["cli-billing-high"]
        self.assertEqual((pol.priority, pol.skill, pol.first_reply_minutes, pol.next_reply_minutes,
                          pol.resolution_minutes, pol.warn_fraction, pol.breach_action, pol.version),
                         (3, "billing", 30, 0, 480, 0.75, 2, 1))
        self.ok("sla", "put", "cli-any-low", "--priority", "low", "--next-reply", "120")
        rows = self.json_lines(self.ok("--json", "sla", "list"))
        names = [r["name"] for r in rows]
        self.assertEqual(names, sorted(names))
        self.assertIn("cli-any-low", names)
        low = [r for r in rows if r["name"] == "cli-any-low"][0]
        self.assertEqual(low["breach_action"], "SLA_BREACH_ACTION_ESCALATE")  # the default
        p = self.ok("sla", "list")
        self.assertIn("cli-billing-high", p.stdout)
        self.assertIn("(any)", p.stdout)
        # Refused by the server: the field is named, exit 1.
        p = self.run_cli("sla", "put", "cli-bad", "--priority", "high", "--skill", "no-such-skill",
                         "--first-reply", "10")
        self.assertEqual(p.returncode, 1)
        self.assertTrue(p.stderr.startswith("helpwire: NOT_FOUND: policy.skill"), p.stderr)
        p = self.run_cli("sla", "put", "cli-dup", "--priority", "high", "--skill", "billing", "--first-reply", "10")
        self.assertEqual(p.returncode, 1)
        self.assertIn("ALREADY_EXISTS", p.stderr)
        self.assertIn("cli-billing-high", p.stderr)
        # Usage errors: exit 2, nothing sent.
        for args in (["sla", "put", "x", "--first-reply", "10"],
                     ["sla", "put", "x", "--priority", "high"],
                     ["sla", "put", "x", "--priority", "high", "--first-reply", "-1"],
                     ["sla", "put", "x", "--priority", "high", "--first-reply", "5", "--warn-fraction", "1"],
                     ["sla", "put", "x", "--priority", "high", "--first-reply", "5", "--breach-action", "panic"]):
            self.assertEqual(self.run_cli(*args).returncode, 2, args)
        self.assertEqual(self.run_cli("sla", "put", "cli-x", "--priority", "high", "--first-reply", "5",
                                      role="agent").returncode, 1)
        self.ok("sla", "delete", "cli-billing-high")
        self.ok("sla", "delete", "cli-any-low")
        names = [x.name for x in self.admin.call("helpwire.v1.Sla/ListSlaPolicies").policies]
        self.assertNotIn("cli-billing-high", names)
        p = self.run_cli("sla", "delete", "cli-billing-high")
        self.assertEqual(p.returncode, 1)
        self.assertTrue(p.stderr.startswith("helpwire: NOT_FOUND: "), p.stderr)

    # stats and backup

    def test_stats(self):
        p = self.ok("stats")
        for key in ("store", "articles", "faqs", "open tickets", "calls in flight"):
            self.assertIn(key, p.stdout)
        s = self.json_lines(self.ok("--json", "stats"))[0]
        self.assertGreaterEqual(s["faqs"], 3)
        self.assertGreater(s["map_size_bytes"], 0)

    def test_search_and_survey_stats(self):
        p = self.ok("search", "怎么重置密码", role="agent")
        self.assertIn("faq-reset-password", p.stdout)
        hits = self.json_lines(self.ok("--json", "search", "refund policy", "--top-k", "3", role="agent"))
        self.assertTrue(hits and len(hits) <= 3)
        self.assertTrue(any(h["id"].startswith("faq-refund-policy") for h in hits))
        self.assertEqual(self.run_cli("search", "x", "--top-k", "0", role="agent").returncode, 2)
        p = self.ok("surveys", "stats", "--days", "7", role="agent")
        for key in ("sent", "answered", "CSAT"):
            self.assertIn(key, p.stdout)
        st = self.json_lines(self.ok("--json", "surveys", "stats", "--channel", "telegram", role="agent"))[0]
        self.assertEqual(len(st["distribution"]), 5)
        # HELPWIRE_ADDR names the server too (and wins over HELPWIRE_SERVER).
        env = {k: v for k, v in os.environ.items() if not k.startswith("HELPWIRE_")}
        env.update(HELPWIRE_ADDR=self.server.address, HELPWIRE_SERVER="127.0.0.1:1",
                   HELPWIRE_TOKEN=self.server.tokens["admin"])
        p = subprocess.run([CLI, "stats"], env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_reports_csat_table_and_json_lines(self):
        t0 = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(milliseconds=1)
        for i, (agent, rating) in enumerate((("bob", 5), ("alice", 2), ("alice", None))):
            tid = self.route("cli-rep-%d" % i, "My invoice shows a double charge, order 55%d" % i).ticket_id
            self.admin.call("helpwire.v1.Tickets/UpdateTicket", ticketId=tid, updateMask=["assignee_agent_id"],
                            assigneeAgentId=agent)
            closed = self.admin.call("helpwire.v1.Tickets/CloseTicket", ticketId=tid, resolution="done")
            if rating:
                self.bridge.call("helpwire.v1.Surveys/SubmitSurvey", token=closed.survey_url.rsplit("/", 1)[1],
                                 rating=rating)
        t1 = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(milliseconds=1)
        span = ["--from", t0.isoformat(timespec="milliseconds"), "--to", t1.isoformat(timespec="milliseconds")]

        p = self.ok("reports", "csat", *span, "--by", "agent", role="agent")
        lines = [line.split() for line in p.stdout.splitlines()]
        self.assertEqual(lines[0], ["AGENT", "SENT", "ANSWERED", "RESPONSE", "CSAT", "AVG", "1", "2", "3", "4", "5"])
        self.assertEqual(lines[1:], [
            ["alice", "2", "1", "50.0%", "0.0%", "2.00", "0", "1", "0", "0", "0"],
            ["bob", "1", "1", "100.0%", "100.0%", "5.00", "0", "0", "0", "0", "1"],
            ["TOTAL", "3", "2", "66.7%", "50.0%", "3.50", "0", "1", "0", "0", "1"],
        ])
        rows = self.json_lines(self.ok("--json", "reports", "csat", *span, "--by", "channel", role="agent"))
        self.assertEqual([(r["key"], r["sent"], r["answered"], r["distribution"], r["total"]) for r in rows], [
            ("telegram", 3, 2, [0, 1, 0, 0, 1], False),
            ("", 3, 2, [0, 1, 0, 0, 1], True),
        ])
        self.assertAlmostEqual(rows[1]["response_rate"], 2 / 3)
        self.assertEqual(rows[1]["average_rating"], 3.5)
        only = self.json_lines(self.ok("--json", "reports", "csat", *span, "--agent", "bob", role="agent"))
        self.assertEqual([(r["sent"], r["csat"], r["total"]) for r in only], [(1, 1, True)])

    def test_reports_sla_dates_are_whole_days_in_the_zone(self):
        # 2026-03-01 to 2026-03-01 is that whole day in Shanghai: one period.
        rows = self.json_lines(self.ok("--json", "reports", "sla", "--from", "2026-03-01", "--to", "2026-03-01",
                                       "--by", "period", "--tz", "Asia/Shanghai", "--priority", "high",
                                       role="agent"))
        self.assertEqual([(r["key"], r["target"], r["total"]) for r in rows], [
            ("2026-03-01", "SLA_TARGET_FIRST_REPLY", False), ("2026-03-01", "SLA_TARGET_NEXT_REPLY", False),
            ("2026-03-01", "SLA_TARGET_RESOLUTION", False), ("", "SLA_TARGET_FIRST_REPLY", True),
            ("", "SLA_TARGET_NEXT_REPLY", True), ("", "SLA_TARGET_RESOLUTION", True)])
        self.assertEqual({(r["met"], r["breached"], r["open"], r["attainment"]) for r in rows}, {(0, 0, 0, 0)})
        p = self.ok("reports", "sla", "--from", "2026-03-02", "--to", "2026-03-15", "--by", "period", "--period",
                    "week", role="agent")
        lines = [line.split() for line in p.stdout.splitlines()]
        self.assertEqual(lines[0], ["PERIOD", "TARGET", "MET", "BREACHED", "OPEN", "ATTAINMENT"])
        self.assertEqual([x[:2] for x in lines[1:]], [
            ["2026-03-02", "first_reply"], ["2026-03-02", "next_reply"], ["2026-03-02", "resolution"],
            ["2026-03-09", "first_reply"], ["2026-03-09", "next_reply"], ["2026-03-09", "resolution"],
            ["TOTAL", "first_reply"], ["TOTAL", "next_reply"], ["TOTAL", "resolution"]])

    def test_reports_bad_flags_exit_2_and_server_refusals_exit_1(self):
        day = ["--from", "2026-03-01", "--to", "2026-03-02"]
        for args in (["reports", "csat"], ["reports", "csat", "--from", "2026-02-30"],
                     ["reports", "csat", "--from", "yesterday"], ["reports", "sla", *day, "--to", "2026-03-02T10:00"],
                     ["reports", "csat", *day, "--by", "team"], ["reports", "csat", *day, "--period", "week"],
                     ["reports", "csat", *day, "--by", "period", "--period", "year"],
                     ["reports", "csat", *day, "--priority", "high"], ["reports", "sla", *day, "--priority", "top"],
                     ["reports", "sla", *day, "--channel", "fax"]):
            p = self.run_cli(*args, role="agent")
            self.assertEqual(p.returncode, 2, "%s: %s" % (args, p.stderr))
            self.assertTrue(p.stderr.startswith("helpwire: "), p.stderr)
        p = self.run_cli("reports", "csat", *day, "--tz", "Mars/Base", role="agent")
        self.assertEqual(p.returncode, 1)
        self.assertTrue(p.stderr.startswith('helpwire: INVALID_ARGUMENT: time_zone: unknown zone "Mars/Base"'),
                        p.stderr)
        p = self.run_cli("reports", "sla", "--from", "2025-01-01", "--to", "2026-01-02", role="agent")
        self.assertEqual(p.returncode, 1)
        self.assertTrue(p.stderr.startswith("helpwire: INVALID_ARGUMENT: to_unix_ms: at most 366 days"), p.stderr)
        p = self.run_cli("reports", "csat", "--from", "2026-03-02", "--to", "2026-03-01", role="agent")
        self.assertEqual(p.returncode, 1)
        self.assertIn("to_unix_ms: must be after from_unix_ms", p.stderr)

    def test_backup_writes_data_mdb_on_the_server(self):
        target = tmpdir()
        p = self.ok("backup", target)
        self.assertIn(target, p.stdout)
        self.assertTrue(os.path.getsize(os.path.join(target, "data.mdb")) > 0)
        p = self.run_cli("backup", target)  # not empty any more
        self.assertEqual(p.returncode, 1)
        self.assertTrue(p.stderr.startswith("helpwire: INVALID_ARGUMENT: "), p.stderr)

    # the exit-status contract

    def test_missing_token_is_unauthenticated_exit_1(self):
        p = self.run_cli("stats", token="")
        self.assertEqual(p.returncode, 1)
        self.assertTrue(p.stderr.startswith("helpwire: UNAUTHENTICATED: "), p.stderr)
        self.assertEqual(p.stdout, "")

    def test_agent_token_on_admin_command_is_permission_denied(self):
        p = self.run_cli("tokens", "list", role="agent")
        self.assertEqual(p.returncode, 1)
        self.assertTrue(p.stderr.startswith("helpwire: PERMISSION_DENIED: "), p.stderr)

    def test_unreachable_server_is_unavailable(self):
        p = self.run_cli("--timeout-ms", "3000", "stats", address="127.0.0.1:1")
        self.assertEqual(p.returncode, 1)
        self.assertTrue(p.stderr.startswith("helpwire: UNAVAILABLE: "), p.stderr)

    def test_usage_errors_exit_2(self):
        for args in (["frobnicate"], ["tickets", "frobnicate"], ["tickets", "show"], ["stats", "--bogus"],
                     ["tickets", "list", "--limit", "ten"], ["--timeout-ms", "0", "stats"], [],
                     ["tokens", "create", "--role", "agent"], ["backup", "a", "b"]):
            p = self.run_cli(*args)
            self.assertEqual(p.returncode, 2, "%s: %s" % (args, p.stderr))
            self.assertTrue(p.stderr.startswith("helpwire: ") or p.stderr.startswith("usage: "), p.stderr)

    def test_help_exits_0_for_every_command(self):
        top = self.ok("--help").stdout
        for words in (["import", "articles"], ["import", "faqs"], ["tickets", "list"], ["tickets", "show"],
                      ["tickets", "close"], ["tickets", "escalate"], ["agents", "list"], ["agents", "put"],
                      ["agents", "presence"], ["skills", "list"], ["skills", "schedule"], ["tokens", "create"],
                      ["tokens", "list"], ["tokens", "revoke"], ["stats"], ["backup"], ["outbox", "failed"],
                      ["outbox", "retry"], ["reports", "csat"], ["reports", "sla"]):
            self.assertIn(" ".join(words), top)
            p = self.ok(*(words + ["--help"]), token="")
            self.assertTrue(p.stdout.startswith("usage: helpwire " + " ".join(words)), p.stdout)
        self.assertIn("tickets close", self.ok("tickets", "--help").stdout)

    def test_global_flags_work_after_the_command(self):
        p = self.ok("stats", "--json", "--server", self.server.address)
        self.assertIn("map_size_bytes", self.json_lines(p)[0])


def make_server_cert(tmp):
    """A CA and a server certificate for localhost, signed by it."""
    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, cwd=tmp)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=helpwire cli test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=localhost")
    with open(os.path.join(tmp, "server.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "server.ext")


class CliTls(unittest.TestCase):
    def test_tls_with_the_ca_and_refused_without(self):
        tmp = tmpdir()
        make_server_cert(tmp)
        server = hwclient.Server("--demo", "--tls-listen", "127.0.0.1:0", "--tls-cert",
                                 os.path.join(tmp, "server.pem"), "--tls-key", os.path.join(tmp, "server.key"))
        try:
            env = {k: v for k, v in os.environ.items() if not k.startswith("HELPWIRE_")}
            env["HELPWIRE_TOKEN"] = server.tokens["admin"]
            base = [CLI, "--server", server.tls_addresses[0], "--timeout-ms", "5000"]
            p = subprocess.run(base + ["--tls-ca", os.path.join(tmp, "ca.pem"), "--tls-server-name", "localhost",
                                       "stats"], env=env, capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("articles", p.stdout)
            p = subprocess.run(base + ["stats"], env=env, capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 1)
            self.assertTrue(p.stderr.startswith("helpwire: UNAVAILABLE: "), p.stderr)
            # A list: the certificate is checked against its first address
            # (127.0.0.1, in the certificate), not against the whole list;
            # nothing listens on the first port, so the call goes to the second.
            listed = [CLI, "--server", "127.0.0.1:1," + server.tls_addresses[0], "--timeout-ms", "5000"]
            p = subprocess.run(listed + ["--tls-ca", os.path.join(tmp, "ca.pem"), "stats"], env=env,
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("articles", p.stdout)
            p = subprocess.run(base + ["--tls-ca", os.path.join(tmp, "missing.pem"), "stats"], env=env,
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 1)
            self.assertIn("--tls-ca", p.stderr)
        finally:
            self.assertEqual(server.stop(), 0)


if __name__ == "__main__":
    hwtest.main()
