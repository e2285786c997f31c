"""bridges_media_test: files and places through the Telegram bridge, as a
real telegram-bridge between the fake Bot API (fake_channels.FakeTelegram)
and the real helpwired.

In: a photo with a caption reaches the ticket with the caption as its
text and the largest photo size, byte for byte (read back with
Attachments.GetAttachment); a photo without a caption, a place, a voice
note, a sticker (its emoji as the text) and a document each open or join
the ticket, none skipped; a file over --max-media-bytes (by the update's
size, or by getFile's "Bad Request: file is too big") is routed as a
notice in the customer's language and nothing is uploaded; getFile
failing with 502 and 429 is tried again until it answers; a bridge killed
with SIGKILL after the update was spooled and before it was routed routes
it once after its restart.

Out: an agent's reply with an image goes out as sendMessage then
sendPhoto with the same bytes; a 12 MB image as sendDocument (Telegram
takes photos of at most 10 MB); a place as sendLocation; a file Telegram
refuses once with a 5xx is sent again without sending the text or the
files before it a second time; one to a chat that blocked the bot (403)
ends FAILED after one try; a typing signal becomes sendChatAction.
"""
import hashlib
import os
import signal
import tempfile
import time
import unittest

import grpc

import bridges_test as bt
import fake_channels as fc
import hwclient
import hwtest

API = bt.API
MiB = 1 << 20
KIND = {n: API.pool.FindEnumTypeByName("helpwire.v1.AttachmentKind").values_by_name[n].number
        for n in ("ATTACHMENT_KIND_IMAGE", "ATTACHMENT_KIND_DOCUMENT", "ATTACHMENT_KIND_VOICE",
                  "ATTACHMENT_KIND_STICKER", "ATTACHMENT_KIND_LOCATION", "ATTACHMENT_KIND_VIDEO")}


def jpeg_like(n, seed=1):
    """n bytes that start as a JPEG does, the rest pseudo-random (seeded)."""
    return b"\xff\xd8\xff\xe0" + blob(n - 4, seed)


def blob(n, seed=1):
    out = bytearray()
    block = hashlib.sha256(b"%d" % seed).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block * 64
    return bytes(out[:n])


def download(client, aid):
    info, out = None, bytearray()
    for m in client.stream("helpwire.v1.Attachments/GetAttachment", timeout=60, id=aid, offset="0"):
        if m.HasField("info"):
            info = m.info
        out += m.data
    return info, bytes(out)


def upload(client, data, kind, mime, name=""):
    digests = []
    for i in range(0, len(data), MiB):
        req = API.message("helpwire.v1.PutChunkRequest")
        req.data = data[i:i + MiB]
        digests.append(client.call("helpwire.v1.Attachments/PutChunk", request=req, timeout=30).chunk_sha256)
    return client.call("helpwire.v1.Attachments/CommitAttachment", timeout=60, chunks=digests, kind=kind,
                       mimeType=mime, name=name)


class TelegramMedia(bt.EndToEnd):
    extra_server_args = ("--sender-rate", "0", "--new-customers-rate", "0")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        c = cls.server.client("agent")
        try:
            req = API.message("helpwire.v1.PutChunkRequest")
            req.data = b"x"
            c.call("helpwire.v1.Attachments/PutChunk", request=req)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                cls.server.stop()
                raise unittest.SkipTest("waiting on helpwired RPC helpwire.v1.Attachments (UNIMPLEMENTED)")
        finally:
            c.close()
        cls.fake = fc.FakeTelegram(bt.TG_SECRET)
        cls.state = tempfile.mkdtemp(prefix="tg-media-", dir=bt.TMP)
        cls.bridge = cls.start_bridge()

    @classmethod
    def start_bridge(cls):
        return bt.start_telegram(cls.server.address, cls.server.bridge_token(), cls.fake, cls.state,
                                 "--max-retry-age-ms", "60000")

    @classmethod
    def tearDownClass(cls):
        rc = cls.bridge.stop()
        cls.fake.close()
        super().tearDownClass()
        assert rc == 0, cls.bridge.read_log()

    # -- helpers
    def routed(self, update, timeout=20):
        """Waits until the bridge routed update's message; its ticket id."""
        key = bt.telegram_key(update)
        ok = self.fake.wait_for(lambda: any("message_id=%s " % key in l or 'message_id="%s"' % key in l
                                            for l in self.bridge.events("routed")), timeout=timeout)
        self.assertTrue(ok, self.bridge.read_log())
        r = bt.route_again(self.server, "CHANNEL_TELEGRAM", str(update["message"]["chat"]["id"]), key)
        self.assertTrue(r.duplicate, r)
        return r.ticket_id

    def message_of(self, ticket, update):
        """The ticket's message that came from update."""
        msgs = bt.agent_call(self.server, "helpwire.v1.Tickets/GetTicket", ticket_id=ticket,
                             include_messages=True).messages
        mine = [m for m in msgs if m.channel_message_id == bt.telegram_key(update)]
        self.assertEqual(len(mine), 1, msgs)
        return mine[0]

    def open_ticket(self, chat):
        u = self.fake.add_text(chat, bt.TICKET_TEXT)
        ticket = self.routed(u)
        self.assertTrue(ticket)
        self.assertTrue(self.fake.wait_for(lambda: self.fake.sent_to(chat)), self.bridge.read_log())
        return ticket

    def agent(self):
        c = self.server.client("agent")
        self.addCleanup(c.close)
        return c

    # -- in
    def test_photo_with_caption_reaches_the_ticket_byte_for_byte(self):
        big = jpeg_like(300 * 1000, seed=2)
        thumb = big[:2000]
        u = self.fake.add_photo(3001, big, caption="The screen arrived cracked",
                                sizes=[(thumb, 90, 67), (big, 1280, 960)])
        ticket = self.routed(u)
        self.assertTrue(ticket, "a photo with a caption opens a ticket")
        m = self.message_of(ticket, u)
        self.assertEqual(m.text, "The screen arrived cracked")
        self.assertEqual(len(m.attachments), 1)
        a = m.attachments[0]
        self.assertEqual((a.kind, a.mime_type, a.size_bytes), (KIND["ATTACHMENT_KIND_IMAGE"], "image/jpeg", len(big)))
        self.assertEqual(a.sha256, hashlib.sha256(big).hexdigest())
        info, data = download(self.agent(), a.id)
        self.assertEqual(data, big, "the agent gets the largest size, as Telegram served it")
        self.assertEqual(info.size_bytes, len(big))

    def test_files_and_places_without_text_open_or_join_the_ticket(self):
        chat = 3002
        first = self.fake.add_photo(chat, jpeg_like(5000, seed=3))
        ticket = self.routed(first)
        self.assertTrue(ticket, "a photo without a caption still opens a ticket")
        self.assertEqual(self.message_of(ticket, first).text, "")
        voice = blob(7000, seed=4)
        sticker = blob(3000, seed=5)
        doc = blob(40000, seed=6)
        later = [
            self.fake.add_location(chat, 48.8584, 2.2945, venue=("Eiffel Tower", "Champ de Mars, Paris")),
            self.fake.add_voice(chat, voice),
            self.fake.add_sticker_file(chat, sticker, emoji="\U0001F622"),
            self.fake.add_document(chat, doc, file_name="invoice 4711.pdf", mime_type="application/pdf"),
            self.fake.add_contact(chat, "Bea", "+4915112345678"),
        ]
        for u in later:
            self.assertEqual(self.routed(u), ticket, "each joins the open ticket")
        loc, vo, st, dc, ct = [self.message_of(ticket, u) for u in later]
        self.assertEqual(loc.attachments[0].kind, KIND["ATTACHMENT_KIND_LOCATION"])
        self.assertAlmostEqual(loc.attachments[0].location.latitude, 48.8584, places=4)
        self.assertAlmostEqual(loc.attachments[0].location.longitude, 2.2945, places=4)
        self.assertEqual(loc.attachments[0].location.name, "Eiffel Tower")
        self.assertEqual(loc.attachments[0].location.address, "Champ de Mars, Paris")
        self.assertEqual((vo.attachments[0].kind, vo.attachments[0].mime_type),
                         (KIND["ATTACHMENT_KIND_VOICE"], "audio/ogg"))
        self.assertEqual(download(self.agent(), vo.attachments[0].id)[1], voice)
        self.assertEqual(st.text, "\U0001F622", "a sticker says what its emoji says")
        self.assertEqual((st.attachments[0].kind, st.attachments[0].mime_type),
                         (KIND["ATTACHMENT_KIND_STICKER"], "image/webp"))
        self.assertEqual((dc.attachments[0].name, dc.attachments[0].mime_type, dc.attachments[0].size_bytes),
                         ("invoice 4711.pdf", "application/pdf", len(doc)))
        self.assertEqual(download(self.agent(), dc.attachments[0].id)[1], doc)
        self.assertEqual(ct.text, "[contact: Bea, +4915112345678]")
        self.assertEqual(list(ct.attachments), [])

    def test_a_file_over_the_limit_is_routed_as_a_notice_and_not_uploaded(self):
        chat = 3003
        ticket = self.open_ticket(chat)
        big = blob(21 * 1000 * 1000, seed=7)  # over the 20 MiB default, and over Telegram's 20 MB getFile
        by_size = self.fake.add_document(chat, big, file_name="report.zip", mime_type="application/zip",
                                         caption="Logs attached")
        # One whose update understates its size: getFile says it is too big.
        by_getfile = self.fake.add_document(chat, big, file_name="dump.tar", mime_type="application/x-tar",
                                            size=1000, language_code="zh-hans")
        self.assertEqual(self.routed(by_size), ticket)
        self.assertEqual(self.routed(by_getfile), ticket)
        m1, m2 = self.message_of(ticket, by_size), self.message_of(ticket, by_getfile)
        self.assertEqual(m1.text, "Logs attached\n[file too large to receive: report.zip, 21 MB]")
        self.assertEqual(list(m1.attachments), [])
        self.assertEqual(m2.text, "[文件过大，无法接收：dump.tar]")
        self.assertEqual(list(m2.attachments), [])
        downloads = [r for r in self.fake.requests if r.path.startswith("/file/")]
        self.assertEqual(downloads, [], "nothing over the limit is downloaded")
        fid = by_size["message"]["document"]["file_id"]
        self.assertFalse([r for r in self.fake.requests if r.path.endswith("/getFile")
                          and (r.json() or {}).get("file_id") == fid], "the update's size alone decides")

    def test_a_file_telegram_no_longer_has_is_routed_as_a_notice(self):
        chat = 3004
        u = self.fake.add_voice(chat, blob(900, seed=8))
        self.fake.forget_file(u["message"]["voice"]["file_id"])
        ticket = self.routed(u)
        self.assertEqual(self.message_of(ticket, u).text, "[file could not be received: voice message]")

    def test_getfile_failing_retryably_is_tried_again_until_it_answers(self):
        chat = 3005
        self.fake.fail_next(502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}, count=2,
                            match="/getFile")
        self.fake.fail_next(429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                                  "parameters": {"retry_after": 1}}, match="/getFile")
        data = jpeg_like(20000, seed=9)
        u = self.fake.add_photo(chat, data, caption="again?")
        ticket = self.routed(u, timeout=30)
        m = self.message_of(ticket, u)
        self.assertEqual(download(self.agent(), m.attachments[0].id)[1], data)
        fid = u["message"]["photo"][-1]["file_id"]
        calls = [r for r in self.fake.requests if r.path.endswith("/getFile") and (r.json() or {}).get("file_id") == fid]
        self.assertEqual(len(calls), 4, "three refusals, then the answer")
        self.assertGreaterEqual(len(self.bridge.events("media_retry")), 3)

    def test_kill_9_between_spool_and_route_loses_and_doubles_nothing(self):
        chat = 3006
        ticket = self.open_ticket(chat)
        self.fake.fail_next(503, {"ok": False, "error_code": 503, "description": "Service Unavailable"},
                            count=1000, match="/getFile")
        data = blob(50000, seed=10)
        u = self.fake.add_document(chat, data, file_name="contract.pdf", caption="Signed")
        # Spooled and confirmed to Telegram, not routed (getFile keeps failing).
        self.assertTrue(self.fake.wait_for(lambda: bt.read_offset(self.state) > u["update_id"]
                                           and self.bridge.events("media_retry")), self.bridge.read_log())
        type(self).bridge.stop(sig=signal.SIGKILL)
        with self.fake.cond:
            self.fake.failures.clear()
        type(self).bridge = self.start_bridge()
        self.assertEqual(self.routed(u), ticket)
        m = self.message_of(ticket, u)  # exactly one message for it
        self.assertEqual(m.text, "Signed")
        self.assertEqual(download(self.agent(), m.attachments[0].id)[1], data)
        time.sleep(1)
        self.assertEqual(len(self.fake.sent_to(chat)), 1, "one acknowledgement, no second ticket or answer")

    # -- out
    def test_agent_image_goes_out_as_sendphoto_with_the_same_bytes(self):
        chat = 3101
        ticket = self.open_ticket(chat)
        img = jpeg_like(150000, seed=11)
        a = upload(self.agent(), img, "ATTACHMENT_KIND_IMAGE", "image/jpeg", "label.jpg")
        bt.agent_call(self.server, "helpwire.v1.Tickets/AddMessage", ticket_id=ticket,
                      kind="MESSAGE_KIND_AGENT_REPLY", text="Here is your return label.",
                      attachments=[{"id": a.id, "kind": "ATTACHMENT_KIND_IMAGE"}])
        self.assertTrue(self.fake.wait_for(lambda: self.fake.uploads_to(chat)), self.bridge.read_log())
        self.assertEqual(self.fake.sent_to(chat)[-1]["text"], "Here is your return label.")
        up = self.fake.uploads_to(chat)
        self.assertEqual(len(up), 1, up)
        self.assertEqual((up[0]["method"], up[0]["field"], up[0]["filename"], up[0]["mime"]),
                         ("sendPhoto", "photo", "label.jpg", "image/jpeg"))
        self.assertEqual(up[0]["data"], img)
        # The text went first.
        texts = [r for r in self.fake.requests if r.path.endswith("/sendMessage")
                 and str((r.json() or {}).get("chat_id")) == str(chat)]
        photos = [r for r in self.fake.requests if r.path.endswith("/sendPhoto")]
        self.assertLess(texts[-1].time, photos[-1].time)

    def test_a_12_mb_image_goes_out_as_a_document_and_a_place_as_a_location(self):
        chat = 3102
        ticket = self.open_ticket(chat)
        img = blob(12 * MiB, seed=12)
        a = upload(self.agent(), img, "ATTACHMENT_KIND_IMAGE", "image/png", "floorplan.png")
        bt.agent_call(self.server, "helpwire.v1.Tickets/AddMessage", ticket_id=ticket,
                      kind="MESSAGE_KIND_AGENT_REPLY", text="",
                      attachments=[{"id": a.id, "kind": "ATTACHMENT_KIND_IMAGE"},
                                   {"kind": "ATTACHMENT_KIND_LOCATION",
                                    "location": {"latitude": 52.52, "longitude": 13.405}}])
        self.assertTrue(self.fake.wait_for(lambda: self.fake.uploads_to(chat) and self.fake.located, timeout=30),
                        self.bridge.read_log())
        up = self.fake.uploads_to(chat)
        self.assertEqual([(u["method"], u["filename"]) for u in up], [("sendDocument", "floorplan.png")])
        self.assertEqual(up[0]["data"], img)
        loc = [l for l in self.fake.located if str(l.get("chat_id")) == str(chat)]
        self.assertEqual((loc[0]["method"], loc[0]["latitude"], loc[0]["longitude"]), ("sendLocation", 52.52, 13.405))
        self.assertEqual(len(self.fake.sent_to(chat)), 1, "no text was sent for an empty one")

    def test_a_file_refused_once_is_sent_again_without_repeating_what_went_before(self):
        chat = 3103
        ticket = self.open_ticket(chat)
        photo = jpeg_like(8000, seed=13)
        doc = blob(9000, seed=14)
        pa = upload(self.agent(), photo, "ATTACHMENT_KIND_IMAGE", "image/jpeg", "a.jpg")
        da = upload(self.agent(), doc, "ATTACHMENT_KIND_DOCUMENT", "application/pdf", "b.pdf")
        self.fake.fail_next(500, {"ok": False, "error_code": 500, "description": "Internal Server Error"},
                            match="/sendDocument")
        bt.agent_call(self.server, "helpwire.v1.Tickets/AddMessage", ticket_id=ticket,
                      kind="MESSAGE_KIND_AGENT_REPLY", text="Two files for you.",
                      attachments=[{"id": pa.id, "kind": "ATTACHMENT_KIND_IMAGE"},
                                   {"id": da.id, "kind": "ATTACHMENT_KIND_DOCUMENT"}])
        self.assertTrue(self.fake.wait_for(lambda: len(self.fake.uploads_to(chat)) >= 2, timeout=30),
                        self.bridge.read_log())
        time.sleep(3)  # longer than --redeliver-after-ms: a repeat would show now
        self.assertEqual([u["method"] for u in self.fake.uploads_to(chat)], ["sendPhoto", "sendDocument"])
        self.assertEqual([m["text"] for m in self.fake.sent_to(chat)][1:], ["Two files for you."])
        tries = [r for r in self.fake.requests if r.path.endswith("/sendDocument")
                 and b'name="chat_id"\r\n\r\n%d\r\n' % chat in r.body]
        self.assertEqual(len(tries), 2, "refused once, sent once")

    def test_a_file_to_a_chat_that_blocked_the_bot_ends_failed_once(self):
        chat = 3105
        ticket = self.open_ticket(chat)
        self.fake.block_chat(chat)
        a = upload(self.agent(), jpeg_like(4000, seed=15), "ATTACHMENT_KIND_IMAGE", "image/jpeg", "c.jpg")
        failed_before = len(self.bridge.events("delivery_failed"))
        bt.agent_call(self.server, "helpwire.v1.Tickets/AddMessage", ticket_id=ticket,
                      kind="MESSAGE_KIND_AGENT_REPLY", text="",
                      attachments=[{"id": a.id, "kind": "ATTACHMENT_KIND_IMAGE"}])
        self.assertTrue(self.bridge.wait_log("delivery_failed", count=failed_before + 1), self.bridge.read_log())
        time.sleep(3)  # longer than --redeliver-after-ms: a retry would show now
        tries = [r for r in self.fake.requests if r.path.endswith("/sendPhoto")
                 and b'name="chat_id"\r\n\r\n%d\r\n' % chat in r.body]
        self.assertEqual(len(tries), 1, "refused for good: not tried again")
        history = bt.agent_call(self.server, "helpwire.v1.Tickets/GetTicketHistory", ticket_id=ticket).events
        failed = [e for e in history if e.kind == bt.DELIVERY_FAILED]
        self.assertEqual(len(failed), 1, history)
        self.assertIn("bot was blocked by the user", failed[0].detail)

    def test_typing_becomes_sendchataction(self):
        chat = 3104
        ticket = self.open_ticket(chat)
        try:
            r = bt.agent_call(self.server, "helpwire.v1.Tickets/SendChannelSignal", ticket_id=ticket,
                              signal="CHANNEL_SIGNAL_TYPING")
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                self.skipTest("waiting on helpwired RPC helpwire.v1.Tickets/SendChannelSignal")
            raise
        self.assertTrue(r.delivered, r)
        self.assertTrue(self.fake.wait_for(lambda: self.fake.actions_to(chat)), self.bridge.read_log())
        self.assertEqual(self.fake.actions_to(chat)[0]["action"], "typing")
        self.assertEqual(len(self.fake.sent_to(chat)), 1, "a signal sends no message")


if __name__ == "__main__":
    hwtest.main()
