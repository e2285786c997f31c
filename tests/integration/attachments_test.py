"""attachments_test: files and places in conversations through the real
helpwired (Attachments.PutChunk / CommitAttachment / GetAttachment, Route
and AddMessage with attachments, erasure, the 24-hour sweep).

- A file goes up in pieces and comes back byte for byte, whole or from an
  offset; the same bytes twice give the same id and `existed`; every limit
  is tried at and beyond its edge (piece 1 MiB, file --attachment-max-bytes,
  10 attachments per message), and bad kinds, mime types, names and
  locations are refused naming the field.
- Route: a photo with a caption opens a ticket with the caption as its
  text; a photo without text still opens one (subject "[photo]" or
  "[图片]"), a place too, and a file appends to the open ticket; unknown
  ids are NOT_FOUND naming attachments[i].id; a retried message answers
  the same reply. AddMessage with a file reaches the bridge's outbox
  stream; GetTicket shows the metadata.
- Erasure removes the customer's file (GetAttachment NOT_FOUND) while the
  same bytes sent by another customer stay; files never used go 24 hours
  after they were stored (a simulated clock); a file committed just before
  a SIGKILL is there after the restart."""
import hashlib
import os
import signal
import subprocess
import tempfile
import time
import unittest

import grpc

import hwclient
import hwtest

API = hwclient.Api()
CLI = hwclient.find_file("clients/cli/helpwire", "clients/cli/helpwire")
MiB = 1 << 20
DAY = 24 * 3600 * 1000
T0 = 1796083200000  # 2026-12-01 00:00 UTC


def upload(client, data, kind="ATTACHMENT_KIND_IMAGE", mime="image/jpeg", name="", piece=MiB, sha=None):
    fields = dict(kind=kind, mimeType=mime, name=name)
    if sha:
        fields["sha256"] = sha
    return hwclient.upload_attachment(client, data, piece=piece, **fields)


download = hwclient.download_attachment


def code_of(fn):
    try:
        fn()
    except grpc.RpcError as e:
        return e.code(), e.details()
    return grpc.StatusCode.OK, ""


class Base(unittest.TestCase):
    extra = ()

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="hw-attach-", dir=os.environ.get("TEST_TMPDIR"))
        self.clock_path = os.path.join(self.dir, "clock")
        self.data_dir = os.path.join(self.dir, "data")
        self.set_clock(T0)
        self.start()

    def start(self):
        self.server = hwclient.Server("--demo", "--sender-rate", "0", "--new-customers-rate", "0",
                                      "--clock-file", self.clock_path, *self.extra, data_dir=self.data_dir)
        self.admin = self.server.client(api=API, role="admin")
        self.bridge = self.server.client(api=API, role="bridge")
        self.agent = self.server.client(api=API, role="agent")

    def stop(self, sig=signal.SIGTERM):
        for c in (self.admin, self.bridge, self.agent):
            c.close()
        if sig == signal.SIGKILL:
            self.server.proc.kill()
            self.server.proc.wait()
            self.server.log.close()
            return 0
        return self.server.stop()

    def tearDown(self):
        if self.server.proc.poll() is None:
            self.assertEqual(self.stop(), 0, self.server.read_log())

    def set_clock(self, ms):
        hwtest.set_clock(self.clock_path, ms)

    def route(self, user, text="", attachments=(), mid=None, **kw):
        return self.bridge.call("helpwire.v1.Router/Route", channel="CHANNEL_TELEGRAM", channelUserId=user,
                                displayName=user, text=text, messageId=mid or "m-%s-%f" % (user, time.time()),
                                attachments=list(attachments), **kw)

    def ticket(self, tid):
        r = self.admin.call("helpwire.v1.Tickets/GetTicket", ticketId=tid, includeMessages=True)
        return r.ticket, list(r.messages)


class Transfer(Base):
    extra = ("--attachment-max-bytes", str(3 * MiB))

    def test_a_file_in_pieces_comes_back_whole_and_from_an_offset(self):
        data = os.urandom(2 * MiB + 12345)
        a = upload(self.bridge, data, name="holiday.jpg")
        sha = hashlib.sha256(data).hexdigest()
        self.assertEqual(a.id, "a-" + sha[:40])
        self.assertEqual(a.sha256, sha)
        self.assertEqual(a.size_bytes, len(data))
        self.assertEqual((a.kind, a.mime_type, a.name), (1, "image/jpeg", "holiday.jpg"))
        info, got, offsets = download(self.agent, a.id)
        self.assertEqual(got, data)
        self.assertEqual(info.id, a.id)
        self.assertEqual(info.size_bytes, len(data))
        self.assertEqual(offsets[0], 0)
        self.assertTrue(all(b > a_ for a_, b in zip(offsets, offsets[1:])))
        # Messages of at most 256 KiB.
        self.assertGreaterEqual(len(offsets), (len(data) + 256 * 1024 - 1) // (256 * 1024))
        off = MiB + 7
        info, got, offsets = download(self.bridge, a.id, offset=off)
        self.assertEqual(got, data[off:])
        self.assertEqual(offsets[0], off)
        self.assertEqual(info.sha256, sha)
        # At the end: only the metadata; past it: OUT_OF_RANGE.
        info, got, _ = download(self.bridge, a.id, offset=len(data))
        self.assertEqual((got, info.id), (b"", a.id))
        code, details = code_of(lambda: download(self.bridge, a.id, offset=len(data) + 1))
        self.assertEqual(code, grpc.StatusCode.OUT_OF_RANGE, details)

    def test_same_bytes_twice_are_stored_once(self):
        data = os.urandom(1000)
        req = API.message("helpwire.v1.PutChunkRequest")
        req.data = data
        r1 = self.bridge.call("helpwire.v1.Attachments/PutChunk", request=req)
        r2 = self.bridge.call("helpwire.v1.Attachments/PutChunk", request=req)
        self.assertFalse(r1.existed)
        self.assertTrue(r2.existed)
        self.assertEqual(r1.chunk_sha256, hashlib.sha256(data).hexdigest())
        a1 = upload(self.bridge, data, name="first.jpg")
        a2 = upload(self.agent, data, kind="ATTACHMENT_KIND_DOCUMENT", mime="application/pdf", name="second.pdf")
        self.assertEqual(a1.id, a2.id)
        self.assertEqual(a2.name, "first.jpg")  # as first committed

    def test_limits_at_and_beyond_each_edge(self):
        # A piece of exactly 1 MiB is taken, one byte more is not, nor 0 bytes.
        req = API.message("helpwire.v1.PutChunkRequest")
        req.data = b"x" * MiB
        self.bridge.call("helpwire.v1.Attachments/PutChunk", request=req)
        for size in (MiB + 1, 0):
            req.data = b"y" * size
            code, details = code_of(lambda: self.bridge.call("helpwire.v1.Attachments/PutChunk", request=req))
            self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, details)
            self.assertIn("data", details)
        # The file limit (3 MiB here): at it committed, a byte over refused.
        at = upload(self.bridge, os.urandom(3 * MiB), kind="ATTACHMENT_KIND_DOCUMENT", mime="application/zip")
        self.assertEqual(at.size_bytes, 3 * MiB)
        code, details = code_of(lambda: upload(self.bridge, os.urandom(3 * MiB + 1),
                                                kind="ATTACHMENT_KIND_DOCUMENT"))
        self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED, details)
        self.assertIn("attachment-max-bytes", details)
        # A whole-file checksum that differs commits nothing.
        code, details = code_of(lambda: upload(self.bridge, b"abc", sha="0" * 64))
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, details)
        self.assertIn("sha256", details)
        code, details = code_of(lambda: download(self.bridge, "a-" + hashlib.sha256(b"abc").hexdigest()[:40]))
        self.assertEqual(code, grpc.StatusCode.NOT_FOUND, details)
        # Unknown pieces, bad digests, bad kinds.
        code, details = code_of(lambda: self.bridge.call("helpwire.v1.Attachments/CommitAttachment",
                                                         chunks=["ab" * 32], kind="ATTACHMENT_KIND_IMAGE"))
        self.assertEqual(code, grpc.StatusCode.NOT_FOUND, details)
        self.assertIn("chunks[0]", details)
        code, details = code_of(lambda: self.bridge.call("helpwire.v1.Attachments/CommitAttachment",
                                                         chunks=["xyz"], kind="ATTACHMENT_KIND_IMAGE"))
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, details)
        self.assertIn("chunks[0]", details)
        d = hashlib.sha256(b"x" * MiB).hexdigest()
        for kind, field in (("ATTACHMENT_KIND_LOCATION", "kind"), ("ATTACHMENT_KIND_UNSPECIFIED", "kind")):
            code, details = code_of(lambda: self.bridge.call("helpwire.v1.Attachments/CommitAttachment",
                                                             chunks=[d], kind=kind))
            self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, details)
            self.assertIn(field, details)
        for mime in ("jpeg", "image/", "x" * 120 + "/" + "y" * 10):
            code, details = code_of(lambda: self.bridge.call("helpwire.v1.Attachments/CommitAttachment",
                                                             chunks=[d], kind="ATTACHMENT_KIND_IMAGE", mimeType=mime))
            self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, (mime, details))
            self.assertIn("mime_type", details)
        for name in ("../etc/passwd", "a\\b", "tab\there", "n" * 257):
            code, details = code_of(lambda: self.bridge.call("helpwire.v1.Attachments/CommitAttachment",
                                                             chunks=[d], kind="ATTACHMENT_KIND_IMAGE", name=name))
            self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, (name, details))
            self.assertIn("name", details)
        ok = self.bridge.call("helpwire.v1.Attachments/CommitAttachment", chunks=[d], kind="ATTACHMENT_KIND_IMAGE",
                              name="n" * 256, mimeType="image/jpeg")
        self.assertEqual(ok.size_bytes, MiB)
        code, details = code_of(lambda: download(self.bridge, "not-an-id"))
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, details)

    def test_roles(self):
        anon = self.server.client(api=API, token="")
        try:
            req = API.message("helpwire.v1.PutChunkRequest")
            req.data = b"z"
            code, _ = code_of(lambda: anon.call("helpwire.v1.Attachments/PutChunk", request=req))
            self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)
        finally:
            anon.close()


class Conversations(Base):
    def photo(self, data=None, name=""):
        a = upload(self.bridge, data or os.urandom(5000), name=name)
        return {"id": a.id, "kind": "ATTACHMENT_KIND_IMAGE", "mimeType": "image/jpeg", "name": name}

    def test_photo_with_caption_and_without_text_open_tickets(self):
        p = self.photo(name="broken.jpg")
        r = self.route("cap-user", text="My order arrived broken", attachments=[p])
        self.assertEqual(r.action, 2, r)  # ROUTE_ACTION_NEW_TICKET
        self.assertIn("#%d" % r.ticket_number, r.reply_text)
        t, msgs = self.ticket(r.ticket_id)
        self.assertEqual(msgs[0].text, "My order arrived broken")
        self.assertEqual(len(msgs[0].attachments), 1)
        at = msgs[0].attachments[0]
        self.assertEqual((at.id, at.kind, at.name, at.mime_type), (p["id"], 1, "broken.jpg", "image/jpeg"))
        self.assertEqual(at.size_bytes, 5000)
        self.assertEqual(len(at.sha256), 64)
        self.assertTrue(msgs[0].channel_message_id.startswith("m-cap-user"))

        # No text at all: still a ticket, its subject says what came.
        r2 = self.route("bare-user", attachments=[self.photo()])
        self.assertEqual(r2.action, 2, r2)
        self.assertIn("#%d" % r2.ticket_number, r2.reply_text)
        t2, msgs2 = self.ticket(r2.ticket_id)
        self.assertEqual(t2.subject, "[photo]")
        self.assertEqual(msgs2[0].text, "")
        # In Chinese for a customer who writes Chinese.
        self.route("zh-user", text="你好，我的订单有问题，请帮我看看")
        r3 = self.route("zh-user2", attachments=[self.photo()], locale="zh-CN")
        self.assertEqual(self.ticket(r3.ticket_id)[0].subject, "[图片]")
        self.assertIn("工单", r3.reply_text)

        # A retry answers the same reply, no second ticket.
        again = self.route("bare-user", attachments=[{"id": p["id"], "kind": "ATTACHMENT_KIND_IMAGE"}],
                           mid=msgs2[0].channel_message_id)
        self.assertTrue(again.duplicate)
        self.assertEqual(again.ticket_id, r2.ticket_id)

    def test_location_and_appending_and_unknown_ids(self):
        place = {"kind": "ATTACHMENT_KIND_LOCATION",
                 "location": {"latitude": 31.2304, "longitude": 121.4737, "name": "People's Square"}}
        r = self.route("loc-user", attachments=[place])
        self.assertEqual(r.action, 2, r)
        t, msgs = self.ticket(r.ticket_id)
        self.assertEqual(t.subject, "[location: People's Square]")
        self.assertAlmostEqual(msgs[0].attachments[0].location.latitude, 31.2304)
        # A document appended to the open ticket.
        d = upload(self.bridge, b"%PDF-1.4 invoice", kind="ATTACHMENT_KIND_DOCUMENT", mime="application/pdf",
                   name="invoice.pdf")
        r2 = self.route("loc-user", attachments=[{"id": d.id, "kind": "ATTACHMENT_KIND_DOCUMENT",
                                                  "name": "invoice.pdf"}])
        self.assertEqual(r2.action, 3, r2)  # APPENDED
        self.assertEqual(r2.ticket_id, r.ticket_id)
        _, msgs = self.ticket(r.ticket_id)
        self.assertEqual(msgs[-1].attachments[0].mime_type, "application/pdf")
        self.assertEqual(msgs[-1].attachments[0].size_bytes, len(b"%PDF-1.4 invoice"))

        bad = [
            ([{"id": "a-" + "0" * 40, "kind": "ATTACHMENT_KIND_IMAGE"}], grpc.StatusCode.NOT_FOUND, "attachments[0].id"),
            ([place, {"id": "a-zz", "kind": "ATTACHMENT_KIND_IMAGE"}], grpc.StatusCode.INVALID_ARGUMENT,
             "attachments[1].id"),
            ([{"kind": "ATTACHMENT_KIND_IMAGE"}], grpc.StatusCode.INVALID_ARGUMENT, "attachments[0].id"),
            ([{"kind": "ATTACHMENT_KIND_LOCATION"}], grpc.StatusCode.INVALID_ARGUMENT, "attachments[0].location"),
            ([{"kind": "ATTACHMENT_KIND_LOCATION", "location": {"latitude": 91}}], grpc.StatusCode.INVALID_ARGUMENT,
             "latitude"),
            ([{"kind": "ATTACHMENT_KIND_LOCATION", "location": {"longitude": -180.5}}],
             grpc.StatusCode.INVALID_ARGUMENT, "longitude"),
            ([{"id": d.id}], grpc.StatusCode.INVALID_ARGUMENT, "attachments[0].kind"),
            ([{"id": d.id, "kind": "ATTACHMENT_KIND_DOCUMENT", "name": "a/b.pdf"}], grpc.StatusCode.INVALID_ARGUMENT,
             "attachments[0].name"),
            ([place] * 11, grpc.StatusCode.INVALID_ARGUMENT, "attachments"),
        ]
        for atts, want, field in bad:
            code, details = code_of(lambda: self.route("bad-user", attachments=atts))
            self.assertEqual(code, want, (atts, details))
            self.assertIn(field, details)
        self.assertEqual(self.route("ten-user", attachments=[place] * 10).action, 2)
        # Text is required without attachments.
        code, details = code_of(lambda: self.route("bad-user"))
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("text", details)

    def test_contact_email_sets_an_empty_email_only(self):
        r = self.route("mail-user", text="Are you open on Sunday?", contactEmail="visitor@example.com")
        c = self.admin.call("helpwire.v1.Customers/GetCustomer", customerId=r.customer_id)
        self.assertEqual(c.email, "visitor@example.com")
        self.route("mail-user", text="one more thing", contactEmail="other@example.com")
        c = self.admin.call("helpwire.v1.Customers/GetCustomer", customerId=r.customer_id)
        self.assertEqual(c.email, "visitor@example.com")
        code, details = code_of(lambda: self.route("mail-user", text="x", contactEmail="nope"))
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("contact_email", details)

    def test_agent_reply_with_a_file_reaches_the_outbox_stream(self):
        r = self.route("out-user", text="Can you send me the manual?")
        manual = upload(self.agent, b"manual " * 1000, kind="ATTACHMENT_KIND_DOCUMENT",
                        mime="application/pdf", name="manual.pdf")
        att = {"id": manual.id, "kind": "ATTACHMENT_KIND_DOCUMENT", "name": "manual.pdf"}
        rep = self.agent.call("helpwire.v1.Tickets/AddMessage", ticketId=r.ticket_id,
                              kind="MESSAGE_KIND_AGENT_REPLY", text="Here it is", attachments=[att])
        self.assertEqual(len(rep.outbox_seqs), 1)
        self.assertEqual(rep.message.attachments[0].size_bytes, 7000)
        self.assertTrue(rep.message.author_name)
        only = self.agent.call("helpwire.v1.Tickets/AddMessage", ticketId=r.ticket_id,
                               kind="MESSAGE_KIND_AGENT_REPLY", attachments=[att])
        self.assertEqual(len(only.outbox_seqs), 1)
        code, details = code_of(lambda: self.agent.call(
            "helpwire.v1.Tickets/AddMessage", ticketId=r.ticket_id, kind="MESSAGE_KIND_AGENT_REPLY",
            attachments=[{"id": "a-" + "1" * 40, "kind": "ATTACHMENT_KIND_IMAGE"}]))
        self.assertEqual(code, grpc.StatusCode.NOT_FOUND, details)
        self.assertIn("attachments[0].id", details)

        got = {}
        stream = self.bridge.stream("helpwire.v1.Outbox/Subscribe", timeout=20, channel="CHANNEL_TELEGRAM")
        try:
            for m in stream:
                if m.seq in list(rep.outbox_seqs) + list(only.outbox_seqs):
                    got[m.seq] = m
                    self.bridge.call("helpwire.v1.Outbox/Ack", channel="CHANNEL_TELEGRAM", seqs=[str(m.seq)])
                if len(got) == 2:
                    break
        finally:
            stream.cancel()
        with_text, bare = got[rep.outbox_seqs[0]], got[only.outbox_seqs[0]]
        self.assertEqual(with_text.text, "Here it is")
        self.assertEqual(with_text.attachments[0].id, manual.id)
        self.assertEqual(with_text.attachments[0].size_bytes, 7000)
        self.assertEqual(bare.text, "")
        self.assertEqual(bare.attachments[0].name, "manual.pdf")
        # The bridge fetches it.
        _, data, _ = download(self.bridge, with_text.attachments[0].id)
        self.assertEqual(data, b"manual " * 1000)
        # GetTicket shows the metadata.
        _, msgs = self.ticket(r.ticket_id)
        self.assertEqual([len(m.attachments) for m in msgs if m.kind == 2][-2:], [1, 1])


class Lifetime(Base):
    def test_erasure_removes_the_file_while_another_customers_copy_stays(self):
        data = b"sticker-" + os.urandom(3000)
        mine = upload(self.bridge, data)
        att = [{"id": mine.id, "kind": "ATTACHMENT_KIND_STICKER"}]
        r1 = self.route("erase-me", attachments=att)
        r2 = self.route("keep-me", attachments=att)  # the same bytes, the same id
        private = upload(self.bridge, b"only mine " + os.urandom(2000))
        self.route("erase-me", text="and this", attachments=[{"id": private.id, "kind": "ATTACHMENT_KIND_IMAGE"}])
        e = self.admin.call("helpwire.v1.Customers/EraseCustomer", customerId=r1.customer_id, reason="request")
        self.assertEqual(e.tickets_redacted, 1)
        code, details = code_of(lambda: download(self.agent, private.id))
        self.assertEqual(code, grpc.StatusCode.NOT_FOUND, details)
        _, got, _ = download(self.agent, mine.id)  # still referred to by keep-me's message
        self.assertEqual(got, data)
        _, msgs = self.ticket(r1.ticket_id)
        self.assertEqual([len(m.attachments) for m in msgs], [0] * len(msgs))
        _, msgs = self.ticket(r2.ticket_id)
        self.assertEqual(msgs[0].attachments[0].id, mine.id)
        # Erasing the other customer too removes the last reference.
        self.admin.call("helpwire.v1.Customers/EraseCustomer", customerId=r2.customer_id, reason="request")
        code, _ = code_of(lambda: download(self.agent, mine.id))
        self.assertEqual(code, grpc.StatusCode.NOT_FOUND)

    def test_retention_redact_removes_the_conversations_files(self):
        self.admin.call("helpwire.v1.Agents/PutSkill", skill={
            "name": "brief", "description": "brief queue", "keywords": ["brief"], "retentionDays": 1,
            "retentionAction": "RETENTION_ACTION_REDACT"})
        r = self.route("ret-user", text="hello")
        f = upload(self.bridge, os.urandom(4000))
        t = self.admin.call("helpwire.v1.Tickets/CreateTicket", customerId=r.customer_id, queue="brief",
                            text="brief photo").ticket
        self.admin.call("helpwire.v1.Tickets/AddMessage", ticketId=t.id, kind="MESSAGE_KIND_AGENT_REPLY",
                        text="a photo for you", attachments=[{"id": f.id, "kind": "ATTACHMENT_KIND_IMAGE"}])
        self.admin.call("helpwire.v1.Tickets/CloseTicket", ticketId=t.id, skipSurvey=True, resolution="sent")
        self.assertEqual(download(self.agent, f.id)[0].id, f.id)
        self.set_clock(T0 + 2 * DAY)
        self.assertTrue(hwtest.wait_for(lambda: self.ticket(t.id)[0].redacted_unix_ms != 0), self.server.read_log())
        code, _ = code_of(lambda: download(self.agent, f.id))
        self.assertEqual(code, grpc.StatusCode.NOT_FOUND)

    def test_files_never_used_go_after_24_hours(self):
        unused = upload(self.bridge, os.urandom(1500))
        used = upload(self.bridge, os.urandom(1600))
        self.route("sweep-user", attachments=[{"id": used.id, "kind": "ATTACHMENT_KIND_IMAGE"}])
        req = API.message("helpwire.v1.PutChunkRequest")
        req.data = os.urandom(700)
        piece = self.bridge.call("helpwire.v1.Attachments/PutChunk", request=req)
        # A day less a minute: all still there.
        self.set_clock(T0 + DAY - 60000)
        time.sleep(1.0)
        self.assertEqual(download(self.agent, unused.id)[0].id, unused.id)
        # Past the day: the unused file and piece go, the used one stays.
        self.set_clock(T0 + DAY + 60000)
        gone = hwtest.wait_for(lambda: code_of(lambda: download(self.agent, unused.id))[0] == grpc.StatusCode.NOT_FOUND)
        self.assertTrue(gone, self.server.read_log())
        self.assertEqual(download(self.agent, used.id)[0].id, used.id)
        code, details = code_of(lambda: self.bridge.call("helpwire.v1.Attachments/CommitAttachment",
                                                         chunks=[piece.chunk_sha256], kind="ATTACHMENT_KIND_IMAGE"))
        self.assertEqual(code, grpc.StatusCode.NOT_FOUND, details)
        # Putting it again brings it back (existed: false).
        self.assertFalse(self.bridge.call("helpwire.v1.Attachments/PutChunk", request=req).existed)

    def test_a_committed_file_survives_kill_9(self):
        data = os.urandom(MiB + 999)
        a = upload(self.bridge, data, name="kept.bin", kind="ATTACHMENT_KIND_DOCUMENT",
                   mime="application/octet-stream")
        self.stop(signal.SIGKILL)
        self.start()
        info, got, _ = download(self.agent, a.id)
        self.assertEqual(got, data)
        self.assertEqual(info.name, "kept.bin")
        # An upload cut off half way by the kill leaves pieces, not a file:
        # committing the rest afterwards works.
        half = upload(self.bridge, data + b"tail")
        self.assertEqual(half.size_bytes, len(data) + 4)


class Cli(Base):
    def cli(self, *args, token_role="agent", input=None):
        env = dict(os.environ, HELPWIRE_TOKEN=self.server.tokens[token_role])
        return subprocess.run([CLI, "--server", self.server.address] + list(args), env=env, input=input,
                              capture_output=True, timeout=60)

    def test_put_get_reply_and_show(self):
        path = os.path.join(self.dir, "scan.pdf")
        data = b"%PDF-1.4 " + os.urandom(300 * 1024)
        with open(path, "wb") as f:
            f.write(data)
        p = self.cli("attachments", "put", path)
        self.assertEqual(p.returncode, 0, p.stderr)
        aid, size, sha = p.stdout.decode().split()
        self.assertEqual((int(size), sha), (len(data), hashlib.sha256(data).hexdigest()))
        out = os.path.join(self.dir, "back.pdf")
        g = self.cli("attachments", "get", aid, "--out", out)
        self.assertEqual(g.returncode, 0, g.stderr)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), data)
        g = self.cli("attachments", "get", "a-" + "0" * 40)
        self.assertEqual(g.returncode, 1)
        self.assertIn(b"NOT_FOUND", g.stderr)

        r = self.route("cli-user", text="Please send the form")
        photo = os.path.join(self.dir, "map.png")
        with open(photo, "wb") as f:
            f.write(b"\x89PNG" + os.urandom(1000))
        rep = self.cli("tickets", "reply", r.ticket_id, "--text", "Two files", "--attach", path, "--attach", photo)
        self.assertEqual(rep.returncode, 0, rep.stderr)
        _, msgs = self.ticket(r.ticket_id)
        got = [(a.name, a.kind, a.mime_type) for a in msgs[-1].attachments]
        self.assertEqual(got, [("scan.pdf", 2, "application/pdf"), ("map.png", 1, "image/png")])
        show = self.cli("tickets", "show", r.ticket_id)
        self.assertEqual(show.returncode, 0, show.stderr)
        text = show.stdout.decode()
        self.assertIn("[document] scan.pdf (application/pdf, %d bytes) %s" % (len(data), aid), text)
        self.assertIn("[image] map.png (image/png, 1004 bytes)", text)
        bad = self.cli("tickets", "reply", r.ticket_id, "--attach", os.path.join(self.dir, "missing.jpg"))
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn(b"missing.jpg", bad.stderr)


if __name__ == "__main__":
    hwtest.main()
