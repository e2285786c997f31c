"""audit_test: the audit log through the real helpwired (server/domain/audit.h,
Admin.ListAuditEvents, `helpwire audit list`).

Creating and revoking a token and taking a backup (good and failing) leave
entries with the caller's token as actor, the target, the outcome, the
caller's address and the call's trace id, and never a token's secret. An
agent token may not list the log; its refusal on an admin method is itself
recorded, once per (token, method) however many calls were refused. Paging
and every filter; bad filters and page tokens are INVALID_ARGUMENT naming
the field. Entries survive a restart. The API offers no method that changes
or removes an entry. The CLI's --json output parses."""
import json
import os
import subprocess
import tempfile
import re
import time
import unittest
import urllib.request

import grpc
from google.protobuf import descriptor_pb2

import hwclient
import hwtest

API = hwclient.Api()
CLI = hwclient.find_file("clients/cli/helpwire", "clients/cli/helpwire")
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = "00-%s-00f067aa0ba902b7-01" % TRACE
LIST = "helpwire.v1.Admin/ListAuditEvents"


class AuditLog(unittest.TestCase):
    def setUp(self):
        self.server = hwclient.Server("--demo")
        self.tmp = tempfile.mkdtemp(prefix="hw-audit-", dir=os.environ.get("TEST_TMPDIR"))
        self.admin = self.server.client(api=API, role="admin")

    def tearDown(self):
        self.admin.close()
        self.assertEqual(self.server.stop(), 0, self.server.read_log())

    def events(self, client=None, **filters):
        r = (client or self.admin).call(LIST, **filters)
        return list(r.events), r.next_page_token

    def all_events(self, page_size=1000, **filters):
        out, token = [], ""
        for _ in range(1000):
            r = self.admin.call(LIST, pageSize=page_size, pageToken=token, **filters)
            out += list(r.events)
            token = r.next_page_token
            if not token:
                return out
        self.fail("the listing did not end")

    def admin_actor(self):
        tokens = self.admin.call("helpwire.v1.Admin/ListTokens").tokens
        admin_role = API.message("helpwire.v1.TokenInfo").DESCRIPTOR.fields_by_name["role"].enum_type \
            .values_by_name["ROLE_ADMIN"].number
        demo_admin = [t for t in tokens if t.description == "demo" and t.role == admin_role]
        self.assertEqual(len(demo_admin), 1)
        return "token:" + demo_admin[0].id

    def test_token_create_and_revoke_are_recorded_with_who_where_and_trace(self):
        actor = self.admin_actor()
        r = self.admin.call("helpwire.v1.Admin/CreateToken", role="ROLE_BRIDGE", description="audit bridge",
                            metadata=[("traceparent", TRACEPARENT)])
        new_id, secret = r.info.id, r.token
        self.admin.call("helpwire.v1.Admin/RevokeToken", id=new_id)
        self.admin.call("helpwire.v1.Admin/RevokeToken", id=new_id)  # again: nothing changes
        evs, _ = self.events(target=new_id)
        self.assertEqual([e.action for e in evs], ["token.revoke", "token.create"])
        rev, cre = evs
        self.assertGreater(rev.seq, cre.seq)
        self.assertGreaterEqual(rev.at_unix_ms, cre.at_unix_ms)
        for e in evs:
            self.assertEqual(e.actor, actor)
            self.assertEqual(e.outcome, 1)  # OK
            self.assertTrue(e.peer.startswith("ipv4:127.0.0.1:") or e.peer.startswith("ipv6:"), e.peer)
            self.assertEqual(e.details["role"], "admin")
            self.assertEqual(e.details["token_role"], "bridge")
            self.assertEqual(e.details["description"], "audit bridge")
            self.assertNotIn(secret, str(e))
        self.assertEqual(cre.trace_id, TRACE)
        self.assertEqual(len(rev.trace_id), 32)
        self.assertNotEqual(rev.trace_id, TRACE)
        # The bootstrap token was recorded at the first start, by the server.
        boot_tokens = [t.id for t in self.admin.call("helpwire.v1.Admin/ListTokens").tokens
                       if t.description == "bootstrap"]
        boot = [e for e in self.all_events(action="token.create") if e.actor == "system"]
        self.assertEqual([e.target for e in boot], boot_tokens)
        for e in boot:
            self.assertEqual(e.details["description"], "bootstrap")

    def test_backup_ok_and_failed(self):
        good = os.path.join(self.tmp, "b1")
        r = self.admin.call("helpwire.v1.Admin/Backup", directory=good)
        bad = os.path.join(self.tmp, "no", "such", "parent")
        with self.assertRaises(grpc.RpcError) as cm:
            self.admin.call("helpwire.v1.Admin/Backup", directory=bad)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        evs, _ = self.events(action="backup")
        self.assertEqual([e.target for e in evs], [bad, good])
        failed, ok = evs
        self.assertEqual(ok.outcome, 1)
        self.assertEqual(ok.details["size_bytes"], str(r.size_bytes))
        self.assertEqual(failed.outcome, 3)  # FAILED
        self.assertIn("error", failed.details)
        self.assertEqual(failed.actor, self.admin_actor())

    def test_an_agent_may_not_list_and_its_refusal_is_recorded_once(self):
        agent = self.server.client(api=API, role="agent")
        for _ in range(5):
            with self.assertRaises(grpc.RpcError) as cm:
                agent.call(LIST)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        # A method agents may call is not recorded; another admin method is.
        agent.call("helpwire.v1.Agents/ListSkills")
        with self.assertRaises(grpc.RpcError):
            agent.call("helpwire.v1.Admin/GetStats")
        agent.close()
        # The entry is a small write of its own, submitted as the call is
        # refused: it commits just after the refusal is answered.
        deadline = time.monotonic() + 10
        evs = self.all_events(action="access.denied")
        while len(evs) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
            evs = self.all_events(action="access.denied")
        time.sleep(0.3)  # and no third one comes later
        evs = self.all_events(action="access.denied")
        self.assertEqual(sorted(e.target for e in evs),
                         ["/helpwire.v1.Admin/GetStats", "/helpwire.v1.Admin/ListAuditEvents"])
        for e in evs:
            self.assertEqual(e.outcome, 2)  # DENIED
            self.assertEqual(e.details["role"], "agent")
            self.assertTrue(e.actor.startswith("token:tok-"), e.actor)
            self.assertNotEqual(e.actor, self.admin_actor())

    def test_paging_and_filters(self):
        ids = []
        for i in range(7):
            ids.append(self.admin.call("helpwire.v1.Admin/CreateToken", role="ROLE_BRIDGE",
                                       description="page %d" % i).info.id)
        everything = self.all_events()
        seqs = [e.seq for e in everything]
        self.assertEqual(seqs, sorted(seqs, reverse=True))
        self.assertEqual(len(set(seqs)), len(seqs))
        # Pages of 3 give the same entries in the same order.
        self.assertEqual([e.seq for e in self.all_events(page_size=3)], seqs)
        first, token = self.events(pageSize=3)
        self.assertEqual(len(first), 3)
        self.assertTrue(token)
        # action: exact and prefix; actor; target; time.
        created = self.all_events(action="token.create")
        self.assertEqual([e.target for e in created][:7], list(reversed(ids)))
        self.assertEqual(len(self.all_events(action="token.")), len(created))
        self.assertEqual(self.all_events(action="token.creat"), [])
        actor = self.admin_actor()
        self.assertEqual(len(self.all_events(actor=actor)), 7)
        self.assertEqual([e.target for e in self.all_events(target=ids[3])], [ids[3]])
        mid = [e for e in created if e.target == ids[3]][0]
        since = self.all_events(action="token.create", fromUnixMs=mid.at_unix_ms)
        self.assertIn(ids[6], [e.target for e in since])
        self.assertTrue(all(e.at_unix_ms >= mid.at_unix_ms for e in since))
        before = self.all_events(toUnixMs=mid.at_unix_ms)
        self.assertTrue(all(e.at_unix_ms < mid.at_unix_ms for e in before))
        self.assertNotIn(ids[3], [e.target for e in before])
        # page_size above the maximum is served (capped), not refused.
        self.assertEqual(len(self.events(pageSize=100000)[0]), len(everything))

    def test_bad_filters_and_tokens_name_the_field(self):
        cases = [
            (dict(pageToken="zz"), "page_token"),
            (dict(pageToken="01"), "page_token"),
            (dict(action="Token.Create"), "action"),
            (dict(action=".token"), "action"),
            (dict(action="token..create"), "action"),
            (dict(fromUnixMs=-1), "from_unix_ms"),
            (dict(toUnixMs=-5), "to_unix_ms"),
            (dict(fromUnixMs=2000, toUnixMs=1000), "to_unix_ms"),
        ]
        for fields, field in cases:
            with self.subTest(fields=fields):
                with self.assertRaises(grpc.RpcError) as cm:
                    self.admin.call(LIST, **fields)
                self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
                self.assertIn(field, cm.exception.details())
        # A token from another listing (agents) is refused too.
        for i in range(3):
            self.admin.call("helpwire.v1.Agents/PutAgent", agent={"id": "a-aud-%d" % i, "name": "A",
                                                                   "skills": ["general"]})
        other = self.admin.call("helpwire.v1.Agents/ListAgents", pageSize=1).next_page_token
        self.assertTrue(other)
        with self.assertRaises(grpc.RpcError) as cm:
            self.admin.call(LIST, pageToken=other)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    def test_entries_survive_a_restart(self):
        tid = self.admin.call("helpwire.v1.Admin/CreateToken", role="ROLE_BRIDGE", description="kept").info.id
        before = [(e.seq, e.action, e.target) for e in self.all_events()]
        self.admin.close()
        data, secret = self.server.data_dir, self.server.tokens["admin"]
        self.assertEqual(self.server.stop(), 0, self.server.read_log())
        self.server = hwclient.Server(data_dir=data)
        self.admin = self.server.client(api=API, token=secret)
        after = [(e.seq, e.action, e.target) for e in self.all_events()]
        self.assertEqual(after[-len(before):], before)
        self.assertIn(("token.create", tid), [(a, t) for _, a, t in after])

    def restart(self, *extra):
        self.admin.close()
        data, secret = self.server.data_dir, self.server.tokens["admin"]
        self.assertEqual(self.server.stop(), 0, self.server.read_log())
        self.server = hwclient.Server(*extra, data_dir=data)
        self.server.tokens["admin"] = secret
        self.admin = self.server.client(api=API, token=secret)

    def test_config_start_records_the_settings_changed_since_the_last_start(self):
        (first,) = self.all_events(action="config.start")
        self.assertEqual(first.actor, "system")
        self.assertEqual(first.target, self.server.data_dir)
        self.assertEqual(first.details["first_start"], "true")
        self.assertEqual(first.details["demo"], "true")  # not at its default
        self.assertEqual(first.details["bootstrap-token-file"], self.server.token_file)
        self.assertNotIn("threads", first.details)  # at its default
        secret = self.server.tokens["admin"]
        self.restart("--threads", "3", "--dedupe-retention-hours", "5")
        latest, _ = self.events(action="config.start", pageSize=1)
        self.assertEqual(dict(latest[0].details),
                         {"threads": "0->3", "dedupe-retention-hours": "168->5", "demo": "true->false"})
        self.assertGreater(latest[0].seq, first.seq)
        # The same settings again: an entry with no change.
        self.restart("--threads", "3", "--dedupe-retention-hours", "5")
        evs = self.all_events(action="config.start")
        self.assertEqual(len(evs), 3)
        self.assertEqual(dict(evs[0].details), {})
        # A secret file appears by its path, never its content.
        self.assertFalse(any(secret in str(e) for e in self.all_events()))

    def test_a_restored_backup_records_its_restore_once(self):
        actor = self.admin_actor()
        target = os.path.join(self.tmp, "restore-me")
        t0 = int(time.time() * 1000)
        self.admin.call("helpwire.v1.Admin/Backup", directory=target)
        t1 = int(time.time() * 1000)
        self.assertEqual(os.listdir(target), ["data.mdb"])
        self.assertEqual(self.all_events(action="store.restored"), [])  # the live store is not marked
        secret = self.server.tokens["admin"]
        copy = hwclient.Server(data_dir=target, bootstrap=False)
        try:
            c = copy.client(api=API, token=secret)
            evs = [e for e in c.call(LIST, pageSize=1000).events]
            restored = [e for e in evs if e.action == "store.restored"]
            self.assertEqual(len(restored), 1, evs)
            (e,) = restored
            self.assertEqual(e.actor, "system")
            self.assertEqual(e.target, target)
            self.assertEqual(e.details["taken_by"], actor)
            self.assertEqual(e.details["source"], self.server.data_dir)
            self.assertEqual(e.details["directory"], target)
            self.assertTrue(t0 <= int(e.details["backup_at_unix_ms"]) <= t1, e)
            self.assertRegex(e.details["backup_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            # In the same start, after the restore: config.start.
            self.assertEqual(evs[0].action, "config.start")
            self.assertEqual(evs[1].seq, e.seq)
            c.close()
            self.assertEqual(copy.stop(), 0, copy.read_log())
            copy = hwclient.Server(data_dir=target, bootstrap=False)
            c = copy.client(api=API, token=secret)
            again = c.call(LIST, action="store.restored").events
            c.close()
            self.assertEqual([x.seq for x in again], [e.seq])
        finally:
            self.assertEqual(copy.stop(), 0, copy.read_log())

    def test_no_method_changes_or_removes_an_entry(self):
        ch = grpc.insecure_channel(self.server.address)
        _, resp_cls, _ = API.method("grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
        call = ch.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                                request_serializer=lambda m: m.SerializeToString(),
                                response_deserializer=resp_cls.FromString)
        req = API.message("grpc.reflection.v1.ServerReflectionRequest", fileContainingSymbol="helpwire.v1.Admin")
        (resp,) = list(call(iter([req]), timeout=10))
        ch.close()
        methods = []
        for raw in resp.file_descriptor_response.file_descriptor_proto:
            fd = descriptor_pb2.FileDescriptorProto()
            fd.ParseFromString(raw)
            for s in fd.service:
                if s.name == "Admin":
                    methods += [m.name for m in s.method]
        self.assertIn("ListAuditEvents", methods)
        audit = [m for m in methods if "Audit" in m]
        self.assertEqual(audit, ["ListAuditEvents"])

    def test_agent_and_skill_changes_are_recorded(self):
        self.admin.call("helpwire.v1.Agents/PutSkill", skill={"name": "aud-q", "description": "d",
                                                             "retentionDays": 30})
        self.admin.call("helpwire.v1.Agents/PutAgent", agent={"id": "aud-1", "name": "A", "skills": ["aud-q"]})
        self.admin.call("helpwire.v1.Agents/PutAgent", agent={"id": "aud-1", "name": "A", "skills": []})
        with self.assertRaises(grpc.RpcError):  # refused: no entry
            self.admin.call("helpwire.v1.Agents/PutAgent", agent={"id": "aud-1", "name": "A", "skills": ["nope"]})
        evs, _ = self.events(target="aud-1")
        self.assertEqual([(e.action, e.details["change"], e.details["skills"]) for e in evs],
                         [("agent.put", "updated", ""), ("agent.put", "created", "aud-q")])
        (sk,), _ = self.events(action="skill.put", target="aud-q")
        self.assertEqual(sk.details["retention_days"], "30")
        self.assertEqual(sk.actor, self.admin_actor())

    def test_cli_audit_list_json(self):
        tid = self.admin.call("helpwire.v1.Admin/CreateToken", role="ROLE_BRIDGE", description="cli").info.id
        env = {k: v for k, v in os.environ.items() if not k.startswith("HELPWIRE_")}
        env["HELPWIRE_SERVER"] = self.server.address
        env["HELPWIRE_TOKEN"] = self.server.tokens["admin"]
        p = subprocess.run([CLI, "--json", "audit", "list", "--action", "token.", "--limit", "0"], env=env,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
        self.assertTrue(rows)
        self.assertEqual(rows[0]["action"], "token.create")
        self.assertEqual(rows[0]["target"], tid)
        self.assertEqual(rows[0]["details"]["description"], "cli")
        self.assertTrue(all(r["action"].startswith("token.") for r in rows))
        p = subprocess.run([CLI, "--json", "audit", "list", "--limit", "1"], env=env, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(p.stdout.splitlines()), 1)
        p = subprocess.run([CLI, "audit", "list", "--since", "yesterday"], env=env, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 2, p.stderr)
        p = subprocess.run([CLI, "audit", "list", "--since", "2020-01-01T00:00:00Z", "--target", tid], env=env,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(tid, p.stdout)
        self.assertIn("token.create", p.stdout)


DAY = 24 * 3600 * 1000


class AuditRetention(unittest.TestCase):
    """--audit-retention-days: the retention sweep deletes entries older
    than N days by the server's clock (a file the test moves)."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="hw-audit-ret-", dir=os.environ.get("TEST_TMPDIR"))
        self.clock_path = os.path.join(self.dir, "clock")
        # Ahead of the real clock, so no entry is dated by the system's.
        self.t0 = int(time.time() * 1000) + 30 * DAY
        self.set_clock(self.t0)
        self.server = None

    def tearDown(self):
        if self.server is not None:
            self.admin.close()
            self.assertEqual(self.server.stop(), 0, self.server.read_log())

    def start(self, *extra):
        self.server = hwclient.Server("--demo", "--clock-file", self.clock_path, "--metrics", "127.0.0.1:0",
                                      *extra)
        self.admin = self.server.client(api=API, role="admin")

    def set_clock(self, ms):
        tmp = self.clock_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(ms))
        os.replace(tmp, self.clock_path)

    def metric(self, name):
        with urllib.request.urlopen(self.server.metrics_url, timeout=10) as r:
            text = r.read().decode()
        m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
        return int(m.group(1)) if m else None

    def events(self):
        return list(self.admin.call(LIST, pageSize=1000).events)

    def test_entries_older_than_the_period_are_swept(self):
        self.start("--audit-retention-days", "1")
        old_id = self.admin.call("helpwire.v1.Admin/CreateToken", role="ROLE_BRIDGE", description="old").info.id
        before = self.events()
        self.assertIn(old_id, [e.target for e in before])
        self.assertTrue(all(e.at_unix_ms <= self.t0 for e in before), before)
        time.sleep(0.6)  # a few sweeps: nothing is a day old yet
        self.assertEqual(len(self.events()), len(before))
        self.assertEqual(self.metric("helpwire_audit_expired_total"), 0)

        now = self.t0 + DAY + 60000
        self.set_clock(now)
        new_id = self.admin.call("helpwire.v1.Admin/CreateToken", role="ROLE_BRIDGE", description="new").info.id
        deadline = time.time() + 15
        while time.time() < deadline and old_id in [e.target for e in self.events()]:
            time.sleep(0.1)
        after = self.events()
        self.assertEqual([e.target for e in after], [new_id], after)
        self.assertGreater(after[0].seq, max(e.seq for e in before))  # numbers go on
        self.assertEqual(after[0].at_unix_ms, now)
        self.assertEqual(self.metric("helpwire_audit_expired_total"), len(before))

    def test_kept_forever_by_default(self):
        self.start()
        before = self.events()
        self.set_clock(self.t0 + 3650 * DAY)
        self.admin.call("helpwire.v1.Admin/CreateToken", role="ROLE_BRIDGE", description="later")
        time.sleep(1)  # several sweeps of the other retention periods
        after = self.events()
        self.assertEqual([e.seq for e in after[1:]], [e.seq for e in before])
        self.assertEqual(self.metric("helpwire_audit_expired_total"), 0)


if __name__ == "__main__":
    hwtest.main()
