"""bridges_media_wa_test: rich conversations on WhatsApp through the real
binaries (whatsapp-bridge, helpwired) and FakeWhatsAppMedia on loopback.

Inbound: a photo with a caption reaches the ticket with the caption as its
text and the same bytes behind Attachments.GetAttachment; a voice note, a
document with its filename, a location and a sticker each append to the
customer's ticket; a button reply routes its title; a file over
--max-media-bytes, one whose URL expired and one whose bytes do not match
WhatsApp's SHA-256 still route, with a notice naming the file (in Chinese
for a Chinese number); a bridge killed with SIGKILL after the webhook's 200
and before the route loses nothing and doubles nothing.

Outbound: an agent's reply with a PDF goes as its text, then POST /media
(the same bytes, the filename) and a document message naming the upload;
131053 on the upload fails the message naming the file; outside the
24-hour window with --whatsapp-template the reply goes as the template with
its text as the parameter (cut to 1024 characters); a 131047 from
WhatsApp ends the reply FAILED with the window's reason in the ticket's
history; SendChannelSignal READ marks the customer's wamid read.
"""
import hashlib
import os
import signal
import tempfile
import threading
import time
import unittest

import bridges_test as bt
import fake_channels as fc
import hwclient
import hwtest

API = hwclient.Api()
TMP = bt.TMP
DAY_S = 24 * 3600
ATT = API.pool.FindEnumTypeByName("helpwire.v1.AttachmentKind").values_by_name
KIND = {k: ATT["ATTACHMENT_KIND_" + k].number for k in
        ("IMAGE", "DOCUMENT", "AUDIO", "VOICE", "VIDEO", "STICKER", "LOCATION")}


class TickingClock:
    """helpwired's --clock-file, kept at the real time plus an offset."""

    def __init__(self):
        self.path = os.path.join(tempfile.mkdtemp(prefix="wa-clock-", dir=TMP), "now")
        self.offset_ms = 0
        self.done = threading.Event()
        self.write()
        threading.Thread(target=self.run, daemon=True).start()

    def write(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % (int(time.time() * 1000) + self.offset_ms))
        os.rename(tmp, self.path)

    def run(self):
        while not self.done.wait(0.05):
            self.write()

    def advance(self, seconds):
        self.offset_ms += int(seconds * 1000)
        self.write()


CLOCK = TickingClock()


class MediaBase(bt.EndToEnd):
    """One helpwired (on a clock file, with a template) and one bridge with
    --max-media-bytes 2 MiB for the class."""

    extra_server_args = ("--sender-rate", "0", "--new-customers-rate", "0", "--clock-file", CLOCK.path,
                         "--whatsapp-template", "reopen_chat:en")
    users = 0

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fake = fc.FakeWhatsAppMedia(bt.WA_PHONE_ID, bt.WA_TOKEN)
        cls.state = tempfile.mkdtemp(prefix="wa-media-", dir=TMP)
        cls.bridge = cls.start_bridge()

    @classmethod
    def start_bridge(cls):
        return bt.start_whatsapp(cls.server.address, cls.server.bridge_token(), cls.fake, "--max-media-bytes",
                                 str(2 << 20), state_dir=cls.state)

    @classmethod
    def tearDownClass(cls):
        if cls.bridge and cls.bridge.proc.poll() is None:
            cls.bridge.stop()
        cls.fake.close()
        super().tearDownClass()

    def user(self, prefix="4915"):
        type(self).users += 1
        return "%s%07d" % (prefix, type(self).users + int(time.time()) % 100000 * 100)

    def post(self, *messages, name="Bea"):
        body, sig = fc.media_webhook(bt.WA_APP_SECRET, bt.WA_PHONE_ID, messages,
                                     contacts=[(messages[0]["from"], name)], fake=self.fake)
        st, _, _ = fc.http_request(self.bridge.url + "/whatsapp/webhook", "POST", body,
                                   {"X-Hub-Signature-256": sig})
        self.assertEqual(st, 200, self.bridge.read_log()[-3000:])

    def ticket_of(self, user, message_id):
        """The ticket holding the customer's message message_id, once the
        bridge routed it (looked up, never routed here: a probe through
        Route would race the bridge)."""
        def find():
            c = self.server.client("agent")
            try:
                cust = c.call("helpwire.v1.Customers/LookupCustomer", channel="CHANNEL_WHATSAPP",
                              channel_user_id=user)
                for t in c.call("helpwire.v1.Tickets/ListTickets", customer_id=cust.id).tickets:
                    if any(m.channel_message_id == message_id for m in self.messages(t.id)):
                        return t.id
            except Exception:  # not yet a customer
                return None
            finally:
                c.close()
            return None
        t = hwtest.wait_for(find, timeout=30, interval=0.2)
        self.assertTrue(t, "message %s never routed:\n%s" % (message_id, self.bridge.read_log()[-4000:]))
        return t

    def messages(self, ticket):
        return bt.agent_call(self.server, "helpwire.v1.Tickets/GetTicket", ticket_id=ticket,
                            include_messages=True).messages

    def customer_messages(self, ticket):
        return [m for m in self.messages(ticket) if m.channel_message_id]

    def download(self, attachment_id):
        c = self.server.client("agent")
        try:
            chunks = list(c.stream("helpwire.v1.Attachments/GetAttachment", timeout=30, id=attachment_id))
        finally:
            c.close()
        return chunks[0].info, b"".join(ch.data for ch in chunks)

    def upload(self, data, kind, mime, name):
        """An agent's file in helpwired: PutChunk then CommitAttachment."""
        c = self.server.client("agent")
        try:
            req_cls = API.method("helpwire.v1.Attachments/PutChunk")[0]
            digests = []
            for i in range(0, len(data), 1 << 20):
                digests.append(c.call("helpwire.v1.Attachments/PutChunk",
                                      request=req_cls(data=data[i:i + (1 << 20)])).chunk_sha256)
            return c.call("helpwire.v1.Attachments/CommitAttachment", chunks=digests, kind=kind, mime_type=mime,
                          name=name)
        finally:
            c.close()

    def history_reasons(self, ticket):
        events = bt.agent_call(self.server, "helpwire.v1.Tickets/GetTicketHistory", ticket_id=ticket).events
        return [str(e) for e in events if e.kind == bt.DELIVERY_FAILED]


class Inbound(MediaBase):
    def test_a_photo_with_a_caption_reaches_the_ticket_with_the_same_bytes(self):
        u = self.user()
        photo = os.urandom(300 * 1024)
        mid = self.fake.add_media(photo, "image/jpeg")
        self.post(fc.wa_media_message(u, "wamid.in.photo1", "image", mid, "image/jpeg",
                                      hashlib.sha256(photo).hexdigest(), caption="The screen is cracked"))
        t = self.ticket_of(u, "wamid.in.photo1")
        [m] = self.customer_messages(t)
        self.assertEqual(m.text, "The screen is cracked")
        self.assertEqual(m.channel_message_id, "wamid.in.photo1")
        [a] = m.attachments
        self.assertEqual((a.kind, a.mime_type, a.size_bytes, a.sha256),
                         (KIND["IMAGE"], "image/jpeg", len(photo), hashlib.sha256(photo).hexdigest()))
        info, data = self.download(a.id)
        self.assertEqual(data, photo)
        self.assertEqual(info.mime_type, "image/jpeg")

    def test_voice_document_location_sticker_and_button_reply_each_reach_one_ticket(self):
        u = self.user()
        pdf = b"%PDF-1.4\n" + os.urandom(40000)
        voice = os.urandom(9000)
        sticker = os.urandom(12000)
        m_pdf = self.fake.add_media(pdf, "application/pdf")
        m_voice = self.fake.add_media(voice, "audio/ogg; codecs=opus")
        m_sticker = self.fake.add_media(sticker, "image/webp")
        sha = lambda b: hashlib.sha256(b).hexdigest()
        self.post(fc.wa_media_message(u, "wamid.in.doc", "document", m_pdf, "application/pdf", sha(pdf),
                                      filename="invoice-4711.pdf"))
        t = self.ticket_of(u, "wamid.in.doc")
        self.post(fc.wa_media_message(u, "wamid.in.voice", "audio", m_voice, "audio/ogg; codecs=opus", sha(voice),
                                      voice=True))
        self.post(fc.wa_location_message(u, "wamid.in.loc", 52.520008, 13.404954, name="Alexanderplatz",
                                         address="10178 Berlin"))
        self.post(fc.wa_media_message(u, "wamid.in.sticker", "sticker", m_sticker, "image/webp", sha(sticker)))
        self.post(fc.wa_interactive_reply(u, "wamid.in.button", "refund-yes", "Yes, refund me"))
        for mid in ("wamid.in.voice", "wamid.in.loc", "wamid.in.sticker", "wamid.in.button"):
            self.assertEqual(self.ticket_of(u, mid), t, mid)
        got = {m.channel_message_id: m for m in self.customer_messages(t)}
        self.assertEqual(len(got), 5, got.keys())
        doc = got["wamid.in.doc"].attachments[0]
        self.assertEqual((doc.kind, doc.name, doc.mime_type, doc.size_bytes),
                         (KIND["DOCUMENT"], "invoice-4711.pdf", "application/pdf", len(pdf)))
        self.assertEqual(self.download(doc.id)[1], pdf)
        v = got["wamid.in.voice"].attachments[0]
        self.assertEqual((v.kind, v.mime_type, v.size_bytes), (KIND["VOICE"], "audio/ogg", len(voice)))
        loc = got["wamid.in.loc"].attachments[0]
        self.assertEqual(loc.kind, KIND["LOCATION"])
        self.assertAlmostEqual(loc.location.latitude, 52.520008, places=5)
        self.assertAlmostEqual(loc.location.longitude, 13.404954, places=5)
        self.assertEqual((loc.location.name, loc.location.address, loc.id), ("Alexanderplatz", "10178 Berlin", ""))
        st = got["wamid.in.sticker"].attachments[0]
        self.assertEqual((st.kind, st.size_bytes), (KIND["STICKER"], len(sticker)))
        self.assertEqual(got["wamid.in.button"].text, "Yes, refund me")
        self.assertEqual(list(got["wamid.in.button"].attachments), [])
        self.assertTrue(any("reply_id=refund-yes" in l for l in self.bridge.events("interactive_reply")))

    def test_a_list_reply_and_a_legacy_button_route_their_titles(self):
        u = self.user()
        self.post(fc.wa_interactive_reply(u, "wamid.in.list", "plan-pro", "Pro plan", kind="list_reply",
                                          description="20 seats"))
        t = self.ticket_of(u, "wamid.in.list")
        self.post(fc.wa_legacy_button(u, "wamid.in.legacy", "Talk to a person", "HUMAN"))
        self.assertEqual(self.ticket_of(u, "wamid.in.legacy"), t)
        got = {m.channel_message_id: m.text for m in self.customer_messages(t)}
        self.assertEqual(got, {"wamid.in.list": "Pro plan", "wamid.in.legacy": "Talk to a person"})

    def test_a_file_over_the_limit_routes_with_a_notice_and_is_never_downloaded(self):
        u = self.user()
        big = os.urandom((2 << 20) + 1)
        mid = self.fake.add_media(big, "application/zip")
        self.post(fc.wa_media_message(u, "wamid.in.big", "document", mid, "application/zip",
                                      hashlib.sha256(big).hexdigest(), filename="logs.zip", caption="all logs"))
        t = self.ticket_of(u, "wamid.in.big")
        [m] = self.customer_messages(t)
        self.assertEqual(list(m.attachments), [])
        self.assertTrue(m.text.startswith("all logs\n"), m.text)
        self.assertIn('"logs.zip" is larger than 2 MiB', m.text)
        self.assertFalse([r for r in self.fake.requests if "/media-download/" + mid in r.path])

    def test_a_file_exactly_at_the_limit_is_attached(self):
        u = self.user()
        data = os.urandom(2 << 20)
        mid = self.fake.add_media(data, "video/mp4")
        self.post(fc.wa_media_message(u, "wamid.in.atlimit", "video", mid, "video/mp4",
                                      hashlib.sha256(data).hexdigest()))
        t = self.ticket_of(u, "wamid.in.atlimit")
        [m] = self.customer_messages(t)
        self.assertEqual((m.text, m.attachments[0].kind, m.attachments[0].size_bytes), ("", KIND["VIDEO"], len(data)))

    def test_an_expired_file_routes_with_a_notice_in_the_customers_language(self):
        en, zh = self.user("4916"), self.user("86138")
        for u, wamid in ((en, "wamid.in.exp.en"), (zh, "wamid.in.exp.zh")):
            data = os.urandom(5000)
            mid = self.fake.add_media(data, "image/png")
            self.fake.expire(mid)
            self.post(fc.wa_media_message(u, wamid, "image", mid, "image/png", hashlib.sha256(data).hexdigest()))
        [m] = self.customer_messages(self.ticket_of(en, "wamid.in.exp.en"))
        self.assertEqual(m.text, '[File not received: "photo" has expired on WhatsApp; please send it again.]')
        self.assertEqual(list(m.attachments), [])
        [m] = self.customer_messages(self.ticket_of(zh, "wamid.in.exp.zh"))
        self.assertEqual(m.text, "[未收到文件：“图片”在 WhatsApp 上已过期，请重新发送。]")

    def test_a_checksum_mismatch_routes_with_a_notice_not_the_damaged_bytes(self):
        u = self.user()
        data = os.urandom(7000)
        mid = self.fake.add_media(data, "application/pdf", sha256="0" * 64)
        self.post(fc.wa_media_message(u, "wamid.in.bad", "document", mid, "application/pdf", "0" * 64,
                                      filename="contract.pdf"))
        [m] = self.customer_messages(self.ticket_of(u, "wamid.in.bad"))
        self.assertIn('"contract.pdf" arrived damaged (checksum mismatch)', m.text)
        self.assertEqual(list(m.attachments), [])
        self.assertTrue(any("reason=checksum_mismatch" in l for l in self.bridge.events("media_not_attached")))

    def test_transient_fetch_failures_are_retried_then_the_file_is_attached(self):
        u = self.user()
        data = os.urandom(20000)
        mid = self.fake.add_media(data, "image/jpeg")
        self.fake.fail_next(503, {"error": {"message": "Service temporarily unavailable", "code": 2}}, count=2,
                            match="/" + mid)
        self.fake.fail_next(429, {"error": {"message": "(#4) Application request limit reached", "code": 4}},
                            match="/media-download/" + mid)
        self.post(fc.wa_media_message(u, "wamid.in.flaky", "image", mid, "image/jpeg",
                                      hashlib.sha256(data).hexdigest()))
        [m] = self.customer_messages(self.ticket_of(u, "wamid.in.flaky"))
        self.assertEqual(self.download(m.attachments[0].id)[1], data)
        self.assertGreaterEqual(len(self.bridge.events("media_retry")), 3)


class KillBetweenWebhookAndRoute(MediaBase):
    def test_a_kill_9_after_the_200_loses_nothing_and_doubles_nothing(self):
        u = self.user()
        data = os.urandom(50000)
        mid = self.fake.add_media(data, "image/jpeg")
        # WhatsApp's media API is down: the message waits in the spool.
        self.fake.fail_next(500, {"error": {"message": "An unknown error occurred", "code": 1}}, count=1000,
                            match="/" + mid)
        self.post(fc.wa_media_message(u, "wamid.in.kill", "image", mid, "image/jpeg",
                                      hashlib.sha256(data).hexdigest(), caption="before the crash"))
        self.assertTrue(self.bridge.wait_log("media_retry"), self.bridge.read_log()[-3000:])
        self.bridge.stop(signal.SIGKILL)
        with self.fake.cond:
            self.fake.failures.clear()
        type(self).bridge = self.start_bridge()
        t = self.ticket_of(u, "wamid.in.kill")
        time.sleep(1.0)  # anything doubled would have arrived by now
        [m] = self.customer_messages(t)
        self.assertEqual(m.text, "before the crash")
        self.assertEqual(self.download(m.attachments[0].id)[1], data)


class Outbound(MediaBase):
    def open_ticket(self, text="My invoice shows a double charge and I need a refund for order 4711"):
        u = self.user()
        wamid = "wamid.in.%s" % u
        self.post({"from": u, "id": wamid, "timestamp": str(int(time.time())), "type": "text", "text": {"body": text}})
        t = self.ticket_of(u, wamid)
        self.assertTrue(self.fake.wait_for(lambda: self.fake.messages_to(u)), self.bridge.read_log()[-3000:])
        return u, wamid, t

    def reply(self, ticket, text, attachments=()):
        return bt.agent_call(self.server, "helpwire.v1.Tickets/AddMessage", ticket_id=ticket,
                             kind="MESSAGE_KIND_AGENT_REPLY", text=text, attachments=list(attachments))

    def test_an_agent_reply_with_a_pdf_goes_as_text_then_an_uploaded_document(self):
        u, _, t = self.open_ticket()
        pdf = b"%PDF-1.7\n" + os.urandom(300000)
        att = self.upload(pdf, "ATTACHMENT_KIND_DOCUMENT", "application/pdf", "quote-4711.pdf")
        before = len(self.fake.messages_to(u))
        self.reply(t, "Here is your quote.", [{"id": att.id, "kind": "ATTACHMENT_KIND_DOCUMENT",
                                              "mime_type": "application/pdf", "name": "quote-4711.pdf"}])
        self.assertTrue(self.fake.wait_for(lambda: self.fake.messages_to(u, "document")), self.bridge.read_log()[-3000:])
        sent = self.fake.messages_to(u)[before:]
        self.assertEqual([m["type"] for m in sent], ["text", "document"])
        self.assertEqual(sent[0]["text"]["body"], "Here is your quote.")
        up = [x for x in self.fake.uploads if x["id"] == sent[1]["document"]["id"]]
        self.assertEqual(len(up), 1)
        self.assertEqual((up[0]["data"], up[0]["filename"], up[0]["type"]), (pdf, "quote-4711.pdf", "application/pdf"))
        self.assertEqual(sent[1]["document"]["filename"], "quote-4711.pdf")
        time.sleep(1.0)
        self.assertEqual(len(self.fake.messages_to(u)[before:]), 2, "sent twice")

    def test_a_kill_9_between_the_text_and_the_file_sends_each_once(self):
        u, _, t = self.open_ticket()
        img = os.urandom(64000)
        att = self.upload(img, "ATTACHMENT_KIND_IMAGE", "image/jpeg", "")
        before = len(self.fake.messages_to(u))
        self.fake.hold_uploads()
        try:
            self.reply(t, "A photo of the part:", [{"id": att.id, "kind": "ATTACHMENT_KIND_IMAGE",
                                                   "mime_type": "image/jpeg"}])
            # The text is out and the bridge waits on the upload: kill it there.
            self.assertTrue(self.fake.wait_for(lambda: self.fake.uploads_waiting), self.bridge.read_log()[-3000:])
            self.bridge.stop(signal.SIGKILL)
        finally:
            self.fake.hold_uploads(False)
        type(self).bridge = self.start_bridge()
        self.assertTrue(self.fake.wait_for(lambda: self.fake.messages_to(u, "image"), timeout=30),
                        self.bridge.read_log()[-3000:])
        time.sleep(1.5)  # a repeat would have come by now
        sent = self.fake.messages_to(u)[before:]
        self.assertEqual([m["type"] for m in sent], ["text", "image"], sent)
        self.assertEqual(sent[0]["text"]["body"], "A photo of the part:")
        self.assertEqual(self.history_reasons(t), [])

    def test_a_media_upload_error_fails_the_reply_naming_the_file(self):
        u, _, t = self.open_ticket()
        png = os.urandom(10000)
        att = self.upload(png, "ATTACHMENT_KIND_IMAGE", "image/png", "diagram.png")
        self.fake.fail_uploads(1)
        self.reply(t, "See the diagram.", [{"id": att.id, "kind": "ATTACHMENT_KIND_IMAGE", "mime_type": "image/png",
                                            "name": "diagram.png"}])
        reasons = hwtest.wait_for(lambda: self.history_reasons(t), timeout=20)
        self.assertTrue(reasons, self.bridge.read_log()[-3000:])
        self.assertIn("whatsapp 131053: Media upload error", reasons[0])
        self.assertIn("diagram.png", reasons[0])
        self.assertEqual([m["text"]["body"] for m in self.fake.messages_to(u, "text")][-1], "See the diagram.")
        self.assertEqual(self.fake.messages_to(u, "image"), [])

    def test_outside_the_window_the_reply_goes_as_the_template_with_its_text(self):
        u, _, t = self.open_ticket()
        CLOCK.advance(DAY_S + 60)
        self.fake.advance(DAY_S + 60)
        text = "Your refund was approved. " * 60  # 1560 characters; the parameter takes 1024
        r = self.reply(t, text)
        self.assertTrue(r.window.closed, r)
        self.assertEqual(r.window.template_name, "reopen_chat")
        got = self.fake.wait_for(lambda: [b for b in self.fake.templates if b["to"] == u])
        self.assertTrue(got, self.bridge.read_log()[-3000:])
        tpl = got[0]["template"]
        self.assertEqual((tpl["name"], tpl["language"]["code"]), ("reopen_chat", "en"))
        [body] = [c for c in tpl["components"] if c["type"] == "body"]
        self.assertEqual(body["parameters"], [{"type": "text", "text": text[:1024]}])
        self.assertEqual(self.fake.messages_to(u, "text")[1:], [])  # nothing free-form after the ack
        self.assertEqual(self.history_reasons(t), [])

    def test_a_131047_from_whatsapp_fails_the_reply_saying_the_window_is_closed(self):
        u, _, t = self.open_ticket()
        self.fake.advance(DAY_S + 60)  # WhatsApp's clock says 24 h passed; helpwired's does not
        self.reply(t, "Are you still there?")
        reasons = hwtest.wait_for(lambda: self.history_reasons(t), timeout=20)
        self.assertTrue(reasons, self.bridge.read_log()[-3000:])
        self.assertIn("whatsapp 131047: the 24-hour window is closed", reasons[0])
        self.assertIn("template", reasons[0])

    def test_send_channel_signal_read_marks_the_customers_message_read(self):
        u, wamid, t = self.open_ticket()
        r = bt.agent_call(self.server, "helpwire.v1.Tickets/SendChannelSignal", ticket_id=t,
                          signal="CHANNEL_SIGNAL_READ")
        self.assertTrue(r.delivered, r)
        self.assertTrue(self.fake.wait_for(lambda: wamid in self.fake.reads), self.bridge.read_log()[-3000:])
        self.assertEqual(self.fake.reads.count(wamid), 1)
        r = bt.agent_call(self.server, "helpwire.v1.Tickets/SendChannelSignal", ticket_id=t,
                          signal="CHANNEL_SIGNAL_TYPING")
        self.assertFalse(r.delivered)
        time.sleep(0.5)
        self.assertEqual([b for b in self.fake.sent if b.get("to") == u and b.get("type") not in ("text",)], [])


if __name__ == "__main__":
    hwtest.main()
