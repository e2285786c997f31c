"""knowledge_test: the Knowledge service through the real helpwired: the
seed FAQ found from paraphrases in Chinese and English, puts and deletes
visible to Search at once, pagination, and clear statuses for bad queries."""
import unittest

import grpc

import hwclient
import hwtest

API = hwclient.Api()


class Knowledge(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = hwclient.Server("--demo")
        cls.admin = cls.server.client(api=API, role="admin")
        cls.agent = cls.server.client(api=API, role="agent")

    @classmethod
    def tearDownClass(cls):
        cls.admin.close()
        cls.agent.close()
        assert cls.server.stop() == 0, cls.server.read_log()

    def test_seed_faq_found_from_paraphrases(self):
        cases = {
            "怎么重置密码": "faq-reset-password",
            "忘记密码了怎么办": "faq-reset-password",
            "How can I reset my password?": "faq-reset-password",
            "你们几点上班，客服工作时间": "faq-hours",
            "When is your support team available?": "faq-hours",
            "退款政策是什么": "faq-refund-policy",
            "can I get a refund": "faq-refund-policy",
        }
        for question, faq_id in cases.items():
            a = self.agent.call("helpwire.v1.Knowledge/Answer", question=question)
            self.assertFalse(a.transfer, question)
            self.assertTrue(a.source_id.startswith(faq_id), (question, a.source_id))
            self.assertGreaterEqual(a.confidence, 0.45)

    def test_unrelated_question_is_transferred(self):
        a = self.agent.call("helpwire.v1.Knowledge/Answer", question="my parrot sings opera at night")
        self.assertTrue(a.transfer)
        self.assertEqual(a.answer, "")
        self.assertLess(a.confidence, 0.45)

    def test_put_search_delete(self):
        art = self.admin.call("helpwire.v1.Knowledge/PutArticle", article={
            "title": "Pairing the Zephyr headset", "body": "Hold the power button for five seconds until the "
            "light blinks blue, then choose Zephyr in your phone's Bluetooth list.", "locale": "en"})
        self.assertTrue(art.id.startswith("a-"))
        self.assertEqual(art.version, 1)
        hits = self.agent.call("helpwire.v1.Knowledge/Search", query="zephyr bluetooth pairing").hits
        self.assertEqual(hits[0].id, art.id)
        self.assertIn("\x02", hits[0].snippet)  # matched terms are marked
        again = self.admin.call("helpwire.v1.Knowledge/PutArticle", article={
            "id": art.id, "title": "Pairing the Zephyr 2 headset", "body": "Press and hold pairing."},
            expectedVersion=1)
        self.assertEqual(again.version, 2)
        with self.assertRaises(grpc.RpcError) as cm:
            self.admin.call("helpwire.v1.Knowledge/PutArticle", article={"id": art.id, "title": "x", "body": "y"},
                            expectedVersion=1)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.ABORTED)
        self.admin.call("helpwire.v1.Knowledge/DeleteArticle", id=art.id)
        hits = self.agent.call("helpwire.v1.Knowledge/Search", query="zephyr").hits
        self.assertNotIn(art.id, [h.id for h in hits])
        with self.assertRaises(grpc.RpcError) as cm:
            self.agent.call("helpwire.v1.Knowledge/GetArticle", id=art.id)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
        with self.assertRaises(grpc.RpcError) as cm:
            self.admin.call("helpwire.v1.Knowledge/DeleteArticle", id=art.id)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_new_faq_answers_at_once(self):
        self.admin.call("helpwire.v1.Knowledge/PutFaq", faq={
            "id": "faq-ship", "question": "多久发货", "answer": "付款后 24 小时内发货。", "locale": "zh",
            "alternateQuestions": ["How soon do you ship?"]})
        a = self.agent.call("helpwire.v1.Knowledge/Answer", question="How soon do you ship?")
        self.assertEqual(a.source_id, "faq-ship")
        self.assertEqual(a.answer, "付款后 24 小时内发货。")
        self.admin.call("helpwire.v1.Knowledge/DeleteFaq", id="faq-ship")
        a = self.agent.call("helpwire.v1.Knowledge/Answer", question="How soon do you ship?")
        self.assertNotEqual(a.source_id, "faq-ship")

    def test_listing_pages_through_everything(self):
        seen, token = [], ""
        while True:
            page = self.agent.call("helpwire.v1.Knowledge/ListFaqs", pageSize=2, pageToken=token)
            seen += [f.id for f in page.faqs]
            token = page.next_page_token
            if not token:
                break
        self.assertEqual(len(seen), len(set(seen)))
        self.assertIn("faq-hours", seen)
        zh = self.agent.call("helpwire.v1.Knowledge/ListArticles", locale="zh").articles
        self.assertTrue(zh and all(a.locale == "zh" for a in zh))

    def test_bad_queries_get_clear_statuses(self):
        for path, args, word in [
            ("helpwire.v1.Knowledge/Search", dict(query=""), "query"),
            ("helpwire.v1.Knowledge/Search", dict(query="x" * 5000), "query"),
            ("helpwire.v1.Knowledge/Search", dict(query="refund", topK=1000), "top_k"),
            ("helpwire.v1.Knowledge/Answer", dict(question="x", minConfidence=2), "min_confidence"),
            ("helpwire.v1.Knowledge/PutArticle", dict(article={"title": "", "body": "b"}), "article.title"),
            ("helpwire.v1.Knowledge/PutFaq", dict(faq={"question": "q"}), "faq.answer"),
            ("helpwire.v1.Knowledge/ListArticles", dict(pageToken="nope"), "page_token"),
        ]:
            with self.assertRaises(grpc.RpcError) as cm:
                self.admin.call(path, **args)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT, (path, args))
            self.assertIn(word, cm.exception.details())
        bad = bytes([0x0a, 0x03, 0x61, 0xc3, 0x28])  # query = "a" + invalid UTF-8
        with self.assertRaises(grpc.RpcError) as cm:
            self.agent.raw("helpwire.v1.Knowledge/Search", bad)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("query: invalid UTF-8", cm.exception.details())


if __name__ == "__main__":
    hwtest.main()
