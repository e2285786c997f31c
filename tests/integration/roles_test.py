"""roles_test: the method table, RPC by RPC and caller by caller, through
the real helpwired.

ROLES below is the expected table (server/methods.c, written out as data).
Its set of methods must equal the set of RPCs in the descriptor set, so an
RPC added to the API without a row here fails this test. Every RPC is then
called with an empty (default) request by each caller: no token, an unknown
token, and the demo bridge, agent and admin tokens. A caller the table
refuses must get UNAUTHENTICATED (no or unknown token) or PERMISSION_DENIED
(wrong role); an admitted caller must get anything but those two codes (an
empty request usually ends in INVALID_ARGUMENT or NOT_FOUND, which proves
the handler ran).

Also: history takes the actor from the agent's token, whatever the request
carries."""
import os
import unittest

import grpc
from google.protobuf import descriptor_pb2

import hwclient
import hwtest

API = hwclient.Api()

PUBLIC = frozenset(["public"])
BRIDGE = frozenset(["bridge", "admin"])
AGENT = frozenset(["agent", "admin"])
ADMIN = frozenset(["admin"])
BRIDGE_AGENT = BRIDGE | AGENT

# The expected method table: path -> who may call.
ROLES = {
    "/grpc.health.v1.Health/Check": PUBLIC,
    "/grpc.health.v1.Health/Watch": PUBLIC,
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": PUBLIC,
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": PUBLIC,

    "/helpwire.v1.Knowledge/Search": AGENT,
    "/helpwire.v1.Knowledge/Answer": AGENT,
    "/helpwire.v1.Knowledge/PutArticle": ADMIN,
    "/helpwire.v1.Knowledge/GetArticle": AGENT,
    "/helpwire.v1.Knowledge/DeleteArticle": ADMIN,
    "/helpwire.v1.Knowledge/ListArticles": AGENT,
    "/helpwire.v1.Knowledge/PutFaq": ADMIN,
    "/helpwire.v1.Knowledge/DeleteFaq": ADMIN,
    "/helpwire.v1.Knowledge/ListFaqs": AGENT,
    "/helpwire.v1.Knowledge/ListSuggestions": ADMIN,
    "/helpwire.v1.Knowledge/ApproveSuggestion": ADMIN,
    "/helpwire.v1.Knowledge/RejectSuggestion": ADMIN,
    "/helpwire.v1.Knowledge/PutSynonymSet": ADMIN,
    "/helpwire.v1.Knowledge/DeleteSynonymSet": ADMIN,
    "/helpwire.v1.Knowledge/ListSynonymSets": AGENT,

    "/helpwire.v1.Outbox/Subscribe": BRIDGE,
    "/helpwire.v1.Outbox/Ack": BRIDGE,
    "/helpwire.v1.Outbox/ListFailed": ADMIN,
    "/helpwire.v1.Outbox/RetryFailed": ADMIN,

    "/helpwire.v1.Surveys/SubmitSurvey": BRIDGE,
    "/helpwire.v1.Surveys/GetSurvey": BRIDGE_AGENT,
    "/helpwire.v1.Surveys/GetSurveyStats": AGENT,
    "/helpwire.v1.Reports/GetCsatReport": AGENT,
    "/helpwire.v1.Reports/GetSlaReport": AGENT,

    "/helpwire.v1.Router/Route": BRIDGE,

    "/helpwire.v1.Attachments/PutChunk": BRIDGE_AGENT,
    "/helpwire.v1.Attachments/CommitAttachment": BRIDGE_AGENT,
    "/helpwire.v1.Attachments/GetAttachment": BRIDGE_AGENT,

    "/helpwire.v1.Customers/GetCustomer": AGENT,
    "/helpwire.v1.Customers/LookupCustomer": BRIDGE_AGENT,
    "/helpwire.v1.Customers/UpdateCustomer": AGENT,
    "/helpwire.v1.Customers/LinkIdentity": AGENT,
    "/helpwire.v1.Customers/ExportCustomer": ADMIN,
    "/helpwire.v1.Customers/EraseCustomer": ADMIN,

    "/helpwire.v1.Agents/PutAgent": ADMIN,
    "/helpwire.v1.Agents/GetAgent": AGENT,
    "/helpwire.v1.Agents/ListAgents": AGENT,
    "/helpwire.v1.Agents/SetPresence": AGENT,
    "/helpwire.v1.Agents/PutSkill": ADMIN,
    "/helpwire.v1.Agents/ListSkills": AGENT,
    "/helpwire.v1.Agents/GetSchedule": BRIDGE_AGENT,

    "/helpwire.v1.Tickets/CreateTicket": AGENT,
    "/helpwire.v1.Tickets/GetTicket": AGENT,
    "/helpwire.v1.Tickets/ListTickets": AGENT,
    "/helpwire.v1.Tickets/UpdateTicket": AGENT,
    "/helpwire.v1.Tickets/AddMessage": AGENT,
    "/helpwire.v1.Tickets/EscalateTicket": AGENT,
    "/helpwire.v1.Tickets/SendChannelSignal": AGENT,
    "/helpwire.v1.Tickets/CloseTicket": AGENT,
    "/helpwire.v1.Tickets/GetTicketHistory": AGENT,
    "/helpwire.v1.Tickets/WatchTickets": AGENT,

    "/helpwire.v1.Admin/CreateToken": ADMIN,
    "/helpwire.v1.Admin/RevokeToken": ADMIN,
    "/helpwire.v1.Admin/ListTokens": ADMIN,
    "/helpwire.v1.Admin/Backup": ADMIN,
    "/helpwire.v1.Admin/GetStats": ADMIN,
    "/helpwire.v1.Admin/ListAuditEvents": ADMIN,

    "/helpwire.v1.Sla/PutSlaPolicy": ADMIN,
    "/helpwire.v1.Sla/ListSlaPolicies": AGENT,
    "/helpwire.v1.Sla/DeleteSlaPolicy": ADMIN,

    "/helpwire.v1.Cluster/GetClusterStatus": ADMIN,
    "/helpwire.v1.Cluster/AddReplica": ADMIN,
    "/helpwire.v1.Cluster/RemoveReplica": ADMIN,
    "/helpwire.v1.Cluster/TransferLeadership": ADMIN,
    "/helpwire.v1.Cluster/FetchSnapshot": ADMIN,
}

PACKAGES = ("helpwire.v1", "grpc.health.v1", "grpc.reflection.v1", "grpc.reflection.v1alpha")
CALLERS = ("none", "unknown", "bridge", "agent", "admin")
REFUSED = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
STREAM_TIMEOUT = 2  # seconds: a stream that was admitted may stay open


def descriptor_methods():
    """path -> MethodDescriptorProto for every RPC of PACKAGES in the
    project's descriptor set."""
    fds = descriptor_pb2.FileDescriptorSet()
    with open(hwclient.find_file("proto/helpwire.protoset", "proto/helpwire.protoset"), "rb") as f:
        fds.ParseFromString(f.read())
    out = {}
    for fd in fds.file:
        if fd.package not in PACKAGES:
            continue
        for svc in fd.service:
            for m in svc.method:
                out["/%s.%s/%s" % (fd.package, svc.name, m.name)] = m
    return out


def expected(path, caller):
    """None when admitted, else the status code the caller must get."""
    allowed = ROLES[path]
    if "public" in allowed:
        return None
    if caller in ("none", "unknown"):
        return grpc.StatusCode.UNAUTHENTICATED
    return None if caller in allowed else grpc.StatusCode.PERMISSION_DENIED


class MethodTable(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = hwclient.Server("--demo")
        cls.channel = grpc.insecure_channel(cls.server.address)
        cls.tokens = dict(cls.server.tokens, none=None, unknown="hw_not-a-real-token-0123456789")
        cls.descriptor = descriptor_methods()

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        assert cls.server.stop() == 0, cls.server.read_log()

    def metadata(self, caller):
        token = self.tokens[caller]
        return [("authorization", "Bearer " + token)] if token else []

    def outcome(self, path, caller):
        """The status of one call with an empty request: OK, the error code,
        or DEADLINE_EXCEEDED for a stream that stayed open."""
        m = self.descriptor[path]
        md = self.metadata(caller)
        ident = (lambda b: b)
        try:
            if m.client_streaming:
                # One empty request, then half-close; read the first reply.
                fn = self.channel.stream_stream(path, request_serializer=ident, response_deserializer=ident)
                it = fn(iter([b""]), timeout=STREAM_TIMEOUT, metadata=md)
                next(it, None)
                it.cancel()
            elif m.server_streaming:
                fn = self.channel.unary_stream(path, request_serializer=ident, response_deserializer=ident)
                it = fn(b"", timeout=STREAM_TIMEOUT, metadata=md)
                next(it, None)  # the first message, or the first status
                it.cancel()
            else:
                fn = self.channel.unary_unary(path, request_serializer=ident, response_deserializer=ident)
                fn(b"", timeout=10, metadata=md)
            return grpc.StatusCode.OK, ""
        except grpc.RpcError as e:
            return e.code(), e.details() or ""

    def test_the_table_covers_every_rpc_of_the_api(self):
        in_descriptor = set(self.descriptor)
        self.assertEqual(set(ROLES) - in_descriptor, set(), "rows for RPCs that are not in the API")
        self.assertEqual(in_descriptor - set(ROLES), set(), "RPCs without a row in the expected table")
        self.assertGreaterEqual(len(ROLES), 40)

    def test_every_rpc_for_every_caller(self):
        wrong = []
        for path in sorted(ROLES):
            if path not in self.descriptor:
                continue  # reported by the coverage test
            for caller in CALLERS:
                want = expected(path, caller)
                got, details = self.outcome(path, caller)
                if want is None and got in REFUSED:
                    wrong.append("%s as %s: expected to be admitted, got %s (%s)" % (path, caller, got.name, details))
                elif want is not None and got != want:
                    wrong.append("%s as %s: expected %s, got %s (%s)" % (path, caller, want.name, got.name, details))
        self.assertEqual(wrong, [], "\n" + "\n".join(wrong))

    def test_refusals_come_before_any_work(self):
        """Well-formed writes from callers the table refuses change nothing."""
        admin = self.server.client(api=API, role="admin")
        before = admin.call("helpwire.v1.Admin/GetStats")
        writes = [
            ("helpwire.v1.Knowledge/PutFaq", {"faq": {"question": "refused faq?", "answer": "no"}}),
            ("helpwire.v1.Knowledge/PutArticle", {"article": {"title": "refused", "body": "refused body"}}),
            ("helpwire.v1.Router/Route", {"channel": "CHANNEL_TELEGRAM", "channelUserId": "refused-1",
                                          "text": "my parcel never arrived", "messageId": "refused-1"}),
        ]
        for caller in ("none", "unknown", "bridge", "agent"):
            c = self.server.client(api=API, token=self.tokens[caller] or "")
            for path, fields in writes:
                want = expected("/" + path, caller)
                if want is None:
                    continue
                with self.assertRaises(grpc.RpcError) as cm:
                    c.call(path, **fields)
                self.assertEqual(cm.exception.code(), want, (path, caller))
            c.close()
        after = admin.call("helpwire.v1.Admin/GetStats")
        for field in ("customers", "tickets", "articles", "faqs", "outbox_backlog"):
            self.assertEqual(getattr(after, field), getattr(before, field), field)
        admin.close()


class HistoryActor(unittest.TestCase):
    """A forged history author is impossible: the actor is the token's."""

    @classmethod
    def setUpClass(cls):
        cls.server = hwclient.Server("--demo")
        cls.admin = cls.server.client(api=API, role="admin")

    @classmethod
    def tearDownClass(cls):
        cls.admin.close()
        assert cls.server.stop() == 0, cls.server.read_log()

    def test_the_request_has_no_author(self):
        fields = API.pool.FindMessageTypeByName("helpwire.v1.AddMessageRequest").fields_by_name
        for name in fields:
            self.assertNotIn("author", name)
            self.assertNotIn("actor", name)
            self.assertNotIn("agent", name)
        self.assertEqual(sorted(fields), ["answered_by", "attachments", "kind", "text", "ticket_id"])

    def new_ticket(self, n):
        bridge = self.server.client(api=API, role="bridge")
        r = bridge.call("helpwire.v1.Router/Route", channel="CHANNEL_TELEGRAM", channelUserId="actor-%d" % n,
                        displayName="Forger %d" % n, text="I was charged twice, please refund the payment %d" % n,
                        messageId="actor-msg-%d" % n)
        bridge.close()
        self.assertTrue(r.ticket_id, r)
        return r.ticket_id

    def forged_reply(self, client, ticket_id, text):
        """AddMessage carrying every forgery a client could try: unknown
        fields with author-like values in the message, and metadata."""
        req_cls, resp_cls, _ = API.method("helpwire.v1.Tickets/AddMessage")
        req = req_cls()
        req.ticket_id = ticket_id
        req.kind = enum("helpwire.v1.MessageKind", "MESSAGE_KIND_AGENT_REPLY")
        req.text = text
        payload = req.SerializeToString()
        # Unknown fields 6, 15, 100 (length-delimited strings): where an
        # author or actor field might be added one day (4 is answered_by,
        # 5 attachments).
        for number in (6, 15, 100):
            value = b"agent:mallory"
            payload += _varint(number << 3 | 2) + _varint(len(value)) + value
        raw = client.raw("helpwire.v1.Tickets/AddMessage", payload,
                         metadata=[("x-helpwire-actor", "agent:mallory"), ("x-actor", "admin:tok-1"),
                                   ("x-agent-id", "mallory")])
        return resp_cls.FromString(raw)

    def check_actor(self, client, ticket_id, want):
        text = "reply signed by the token %s" % want
        reply = self.forged_reply(client, ticket_id, text)
        self.assertEqual(reply.message.author, want)
        hist = self.admin.call("helpwire.v1.Tickets/GetTicketHistory", ticketId=ticket_id).events
        message = enum("helpwire.v1.TicketEventKind", "TICKET_EVENT_KIND_MESSAGE")
        mine = [e for e in hist if e.kind == message and e.actor.startswith("agent:")]
        self.assertTrue(mine, hist)
        self.assertEqual(mine[-1].actor, want)
        self.assertFalse([e for e in hist if "mallory" in e.actor or e.actor.startswith("admin:")], hist)
        got = self.admin.call("helpwire.v1.Tickets/GetTicket", ticketId=ticket_id, includeMessages=True)
        authored = [m.author for m in got.messages if m.text == text]
        self.assertEqual(authored, [want])

    def test_the_demo_agent_token_acts_as_alice(self):
        tokens = self.admin.call("helpwire.v1.Admin/ListTokens").tokens
        demo = [t for t in tokens if t.role == enum("helpwire.v1.Role", "ROLE_AGENT") and t.description == "demo"]
        self.assertEqual([t.agent_id for t in demo], ["alice"])
        ticket = self.new_ticket(1)
        alice = self.server.client(api=API, role="agent")
        self.check_actor(alice, ticket, "agent:alice")
        alice.close()

    def test_a_token_for_bob_acts_as_bob(self):
        made = self.admin.call("helpwire.v1.Admin/CreateToken", role="ROLE_AGENT", agentId="bob",
                               description="roles_test")
        self.assertEqual(made.info.agent_id, "bob")
        ticket = self.new_ticket(2)
        bob = self.server.client(api=API, token=made.token)
        self.check_actor(bob, ticket, "agent:bob")
        # And alice on the same ticket is still alice.
        alice = self.server.client(api=API, role="agent")
        self.check_actor(alice, ticket, "agent:alice")
        alice.close()
        bob.close()


def enum(type_name, value_name):
    return API.pool.FindEnumTypeByName(type_name).values_by_name[value_name].number


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


if __name__ == "__main__":
    hwtest.main()
