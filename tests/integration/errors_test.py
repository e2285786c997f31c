"""errors_test: every failure of the real helpwired carries google.rpc.Status
in the trailing metadata grpc-status-details-bin (docs/errors.md), decoded
here with the message classes of the descriptor set, as any client would:
a bad field names the field (ErrorInfo INVALID_FIELD, BadRequest), an
unknown id is NOT_FOUND, a stale expected_version is VERSION_CONFLICT with
a PreconditionFailure naming the ticket, overload and draining carry
RetryInfo, missing and insufficient credentials say so. The text of the
status is the same as before the details existed."""
import threading
import unittest

import grpc

import hwclient
import hwtest

API = hwclient.Api()
TG = "CHANNEL_TELEGRAM"
DETAILS_KEY = "grpc-status-details-bin"


def status_of(err):
    """The google.rpc.Status of a failed call, or None when it has none."""
    raw = [v for k, v in (err.trailing_metadata() or ()) if k == DETAILS_KEY]
    if not raw:
        return None
    st = API.message("google.rpc.Status")
    st.ParseFromString(raw[0])
    return st


def details_of(st):
    """{short type name: decoded message} of a Status' details (each once)."""
    out = {}
    for a in st.details:
        prefix, _, name = a.type_url.rpartition("/")
        assert prefix == "type.googleapis.com", a.type_url
        assert name not in out, name
        m = API.message(name)
        m.ParseFromString(a.value)
        out[name.rsplit(".", 1)[-1]] = m
    return out


class ErrorDetails(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = hwclient.Server("--demo", "--max-message-bytes=4096")
        cls.admin = cls.server.client(api=API, role="admin")
        cls.bridge = cls.server.client(api=API, role="bridge")

    @classmethod
    def tearDownClass(cls):
        cls.admin.close()
        cls.bridge.close()
        assert cls.server.stop() == 0, cls.server.read_log()

    def fail_of(self, fn, *args, **kw):
        with self.assertRaises(grpc.RpcError) as cm:
            fn(*args, **kw)
        return cm.exception

    def check(self, err, code, reason, method):
        """Asserts the common part; returns the details by type."""
        self.assertEqual(err.code(), code, err.details())
        st = status_of(err)
        self.assertIsNotNone(st, "no %s on %s %r" % (DETAILS_KEY, err.code(), err.details()))
        self.assertEqual(st.code, code.value[0])
        self.assertEqual(st.message, err.details())
        d = details_of(st)
        info = d["ErrorInfo"]
        self.assertEqual(info.domain, "helpwire.io")
        self.assertEqual(info.reason, reason, err.details())
        self.assertEqual(info.metadata["method"], "/" + method)
        return d

    def new_ticket(self, user):
        r = self.bridge.call("helpwire.v1.Router/Route", channel=TG, channelUserId=user, displayName=user,
                             text="如何重置密码", messageId="first-" + user)
        return self.admin.call("helpwire.v1.Tickets/CreateTicket", customerId=r.customer_id,
                               text="The app crashes with error 4411 on start", queue="technical").ticket

    def test_a_bad_field_is_named(self):
        m = "helpwire.v1.Tickets/GetTicket"
        err = self.fail_of(self.admin.call, m, ticketId="bad id!")
        self.assertEqual(err.details(), "ticket_id: only letters, digits and . _ : - are allowed (byte 3)")
        d = self.check(err, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD", m)
        self.assertEqual(d["ErrorInfo"].metadata["field"], "ticket_id")
        self.assertEqual([(v.field, v.description) for v in d["BadRequest"].field_violations],
                         [("ticket_id", err.details())])
        self.assertNotIn("RetryInfo", d)
        # A required field left empty, in a nested message of another call.
        m = "helpwire.v1.Tickets/CreateTicket"
        err = self.fail_of(self.admin.call, m, customerId="", text="hello")
        d = self.check(err, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD", m)
        self.assertEqual(d["BadRequest"].field_violations[0].field, "customer_id")

    def test_an_undecodable_request_names_no_field(self):
        m = "helpwire.v1.Tickets/GetTicket"
        err = self.fail_of(self.admin.raw, m, b"\xff\xff\xff")
        d = self.check(err, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST", m)
        self.assertNotIn("field", d["ErrorInfo"].metadata)
        self.assertNotIn("BadRequest", d)

    def test_an_unknown_id_is_not_found(self):
        m = "helpwire.v1.Tickets/GetTicket"
        err = self.fail_of(self.admin.call, m, ticketId="t-does-not-exist")
        d = self.check(err, grpc.StatusCode.NOT_FOUND, "NOT_FOUND", m)
        self.assertEqual(sorted(d), ["ErrorInfo"])

    def test_a_stale_version_is_a_version_conflict_on_the_ticket(self):
        t = self.new_ticket("err-race")
        m = "helpwire.v1.Tickets/UpdateTicket"
        self.admin.call(m, ticketId=t.id, updateMask=["priority"], priority="PRIORITY_URGENT",
                        expectedVersion=t.version)
        err = self.fail_of(self.admin.call, m, ticketId=t.id, updateMask=["priority"], priority="PRIORITY_LOW",
                           expectedVersion=t.version)
        self.assertEqual(err.details(), "ticket %s is at version %d, not %d" % (t.id, t.version + 1, t.version))
        d = self.check(err, grpc.StatusCode.ABORTED, "VERSION_CONFLICT", m)
        v = list(d["PreconditionFailure"].violations)
        self.assertEqual([(x.type, x.subject, x.description) for x in v],
                         [("VERSION", "tickets/" + t.id, err.details())])
        self.assertNotIn("RetryInfo", d)

    def test_a_forbidden_change_is_a_state_precondition(self):
        t = self.new_ticket("err-closed")
        self.admin.call("helpwire.v1.Tickets/CloseTicket", ticketId=t.id, resolution="fixed", skipSurvey=True)
        m = "helpwire.v1.Tickets/EscalateTicket"
        err = self.fail_of(self.admin.call, m, ticketId=t.id, reason="again")
        d = self.check(err, grpc.StatusCode.FAILED_PRECONDITION, "FAILED_PRECONDITION", m)
        v = d["PreconditionFailure"].violations
        self.assertEqual((v[0].type, v[0].subject), ("STATE", "tickets/" + t.id))

    def test_an_oversize_request_is_too_large(self):
        # Over --max-message-bytes: helpwired refuses it itself, TOO_LARGE
        # without RetryInfo (the same request fails again).
        m = "helpwire.v1.Knowledge/Search"
        err = self.fail_of(self.admin.call, m, query="x" * 5000)
        d = self.check(err, grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_LARGE", m)
        self.assertIn("exceeds the 4096-byte message limit", err.details())
        self.assertNotIn("RetryInfo", d)
        # Over twice the limit the gRPC core refuses it before any call
        # exists: its own text, no details (docs/errors.md says so).
        err = self.fail_of(self.admin.call, m, query="x" * 9000)
        self.assertEqual(err.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIsNone(status_of(err))
        # Just under the limit, the same call goes through.
        self.admin.call("helpwire.v1.Knowledge/Search", query="refund " * 10)

    def test_no_token_is_unauthenticated(self):
        m = "helpwire.v1.Tickets/ListTickets"
        anon = self.server.client(api=API, token="")
        try:
            err = self.fail_of(anon.call, m)
        finally:
            anon.close()
        d = self.check(err, grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED", m)
        self.assertEqual(sorted(d), ["ErrorInfo"])
        wrong = self.server.client(api=API, token="hw_not-a-real-token")
        try:
            err = self.fail_of(wrong.call, m)
        finally:
            wrong.close()
        self.check(err, grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED", m)

    def test_a_bridge_token_is_denied_the_ticket_list(self):
        m = "helpwire.v1.Tickets/ListTickets"
        err = self.fail_of(self.bridge.call, m)
        d = self.check(err, grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED", m)
        self.assertEqual(sorted(d), ["ErrorInfo"])

    def test_an_unknown_method_is_unimplemented(self):
        err = self.fail_of(self.admin.raw, "helpwire.v1.Tickets/NoSuchMethod", b"")
        self.check(err, grpc.StatusCode.UNIMPLEMENTED, "UNIMPLEMENTED", "helpwire.v1.Tickets/NoSuchMethod")

    def test_success_has_no_details(self):
        fn = self.admin.channel.unary_unary("/helpwire.v1.Tickets/ListTickets")
        _, call = fn.with_call(b"", metadata=[("authorization", "Bearer " + self.server.tokens["admin"])])
        self.assertNotIn(DETAILS_KEY, [k for k, _ in call.trailing_metadata() or ()])


class Overload(unittest.TestCase):
    """--max-in-flight 1: calls beyond the bound are shed at once with
    RESOURCE_EXHAUSTED, ErrorInfo OVERLOADED and RetryInfo (1 s)."""

    def test_shed_calls_say_overloaded_and_when_to_retry(self):
        server = hwclient.Server("--demo", "--max-in-flight", "1", "--threads", "2", "--sender-rate", "0")
        shed = []
        ok = []

        def hammer(k):
            c = server.client(api=API, role="bridge")
            try:
                for i in range(40):
                    try:
                        c.call("helpwire.v1.Router/Route", channel=TG, channelUserId="load-%d" % k, displayName="L",
                               text="my parcel never arrived %d" % i, messageId="ov-%d-%d" % (k, i))
                        ok.append(1)
                    except grpc.RpcError as e:
                        shed.append(e)
            finally:
                c.close()

        threads = [threading.Thread(target=hammer, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        try:
            self.assertTrue(ok)
            self.assertTrue(shed, "no call was shed")
            for err in shed:
                self.assertEqual(err.code(), grpc.StatusCode.RESOURCE_EXHAUSTED, err.details())
                self.assertIn("overloaded", err.details())
                d = details_of(status_of(err))
                self.assertEqual(d["ErrorInfo"].reason, "OVERLOADED")
                self.assertEqual(d["ErrorInfo"].metadata["method"], "/helpwire.v1.Router/Route")
                self.assertEqual((d["RetryInfo"].retry_delay.seconds, d["RetryInfo"].retry_delay.nanos), (1, 0))
        finally:
            self.assertEqual(server.stop(), 0)


if __name__ == "__main__":
    hwtest.main()
