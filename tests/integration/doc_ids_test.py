"""doc_ids_test: article and FAQ ids through the real helpwired --demo: up to
128 printable bytes a link holds as written ("g++", "libsigc++-2.0-0v5",
"a(b)c", 128 bytes) work for Put, Get, Search, List pages and Delete, and
in an agent reply's link (".../articles/g++)." sets answered_by to g++);
129 bytes, '/', a space, '?', '%' and non-ASCII are refused with
INVALID_ARGUMENT naming the field (article.id, faq.id, id)."""
import unittest

import grpc

import hwclient

API = hwclient.Api()
TG = "CHANNEL_TELEGRAM"
NEW_TICKET = 2
GOOD = ["g++", "libsigc++-2.0-0v5", "a(b)c~!$&'*,;=:@", "x" * 128]
BAD = ["y" * 129, "a/b", "a b", "a?b", "a%2Bb", "caf\u00e9", "\u6587\u7ae0"]


class DocIds(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = hwclient.Server("--demo")
        cls.admin = cls.server.client(api=API, role="admin")
        cls.agent = cls.server.client(api=API, role="agent")
        cls.bridge = cls.server.client(api=API, role="bridge")

    @classmethod
    def tearDownClass(cls):
        for c in (cls.admin, cls.agent, cls.bridge):
            c.close()
        assert cls.server.stop() == 0, cls.server.read_log()

    def refused(self, field, path, **fields):
        with self.assertRaises(grpc.RpcError) as cm:
            self.admin.call(path, **fields)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT, (path, fields))
        self.assertTrue(cm.exception.details().startswith(field + ":"), cm.exception.details())

    def test_printable_ids_round_trip(self):
        for i, doc_id in enumerate(GOOD):
            word = "qzvx%dplonk" % i
            art = self.admin.call("helpwire.v1.Knowledge/PutArticle", article={
                "id": doc_id, "title": "Compiler %s" % word, "body": "The %s article." % word, "locale": "en"})
            self.assertEqual(art.id, doc_id)
            self.assertEqual(self.agent.call("helpwire.v1.Knowledge/GetArticle", id=doc_id).id, doc_id)
            hits = self.agent.call("helpwire.v1.Knowledge/Search", query=word).hits
            self.assertEqual([h.id for h in hits], [doc_id])
            faq = self.admin.call("helpwire.v1.Knowledge/PutFaq", faq={
                "id": doc_id, "question": "what is %s" % word, "answer": "It is %s." % word})
            self.assertEqual(faq.id, doc_id)
        # Listed one per page: each id comes back once, through page tokens.
        seen, token = [], ""
        while True:
            page = self.agent.call("helpwire.v1.Knowledge/ListArticles", pageSize=1, pageToken=token)
            seen += [a.id for a in page.articles]
            token = page.next_page_token
            if not token:
                break
        for doc_id in GOOD:
            self.assertEqual(seen.count(doc_id), 1, doc_id)
        for doc_id in GOOD:
            self.admin.call("helpwire.v1.Knowledge/DeleteArticle", id=doc_id)
            self.admin.call("helpwire.v1.Knowledge/DeleteFaq", id=doc_id)
            with self.assertRaises(grpc.RpcError) as cm:
                self.agent.call("helpwire.v1.Knowledge/GetArticle", id=doc_id)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_other_ids_refused_naming_the_field(self):
        for doc_id in BAD:
            self.refused("article.id", "helpwire.v1.Knowledge/PutArticle",
                         article={"id": doc_id, "title": "t", "body": "b"})
            self.refused("faq.id", "helpwire.v1.Knowledge/PutFaq",
                         faq={"id": doc_id, "question": "q", "answer": "a"})
            self.refused("id", "helpwire.v1.Knowledge/GetArticle", id=doc_id)
            self.refused("id", "helpwire.v1.Knowledge/DeleteFaq", id=doc_id)

    def test_link_in_a_reply_sets_answered_by(self):
        self.admin.call("helpwire.v1.Knowledge/PutArticle", article={
            "id": "libsigc++-2.0-0v5", "title": "Signals", "body": "Typesafe callbacks."})
        r = self.bridge.call("helpwire.v1.Router/Route", channel=TG, channelUserId="tg-ids-1",
                             displayName="Customer", text="qwzx blorp frobnicate", messageId="tg-ids-1-1")
        self.assertEqual(r.action, NEW_TICKET, r)
        self.agent.call("helpwire.v1.Tickets/AddMessage", ticketId=r.ticket_id, kind="MESSAGE_KIND_AGENT_REPLY",
                        text="See (https://help.example.com/kb/articles/libsigc++-2.0-0v5).")
        t = self.agent.call("helpwire.v1.Tickets/GetTicket", ticketId=r.ticket_id).ticket
        self.assertEqual((t.answered_by.kind, t.answered_by.id), (1, "libsigc++-2.0-0v5"))


if __name__ == "__main__":
    unittest.main()
