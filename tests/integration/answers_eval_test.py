"""answers_eval_test: bench/answers_eval.py (the answers evaluation) against
the real helpwired --demo and CLI, on the tiny help center and question set
in answers_fixture/: the slices and their counts, a question that is an
FAQ's own question answered from it, a nonsense question not answered, one
CSV row per question, the threshold sweep, and the exit statuses (1 when a
slice falls short of --min-recall/--max-wrong, 2 on bad input or a server
that is not there, never for poor scores alone)."""
import csv
import json
import os
import socket
import subprocess
import sys
import tempfile
import unittest

import hwclient
import hwtest

TOOL = hwclient.find_file("bench/answers_eval.py", "bench/answers_eval.py")
FIXTURE = os.path.dirname(hwclient.find_file("tests/integration/answers_fixture/questions.jsonl",
                                             "tests/integration/answers_fixture/questions.jsonl"))


def tmpdir():
    return tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))


def run_tool(*args, tmp=None):
    """Runs the tool with its temporary files under tmp; CompletedProcess."""
    env = dict(os.environ)
    if tmp:
        env["TEST_TMPDIR"] = tmp
    return subprocess.run([sys.executable, TOOL] + list(args), env=env, capture_output=True, text=True,
                          timeout=300)


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def write_lines(path, objs):
    with open(path, "w", encoding="utf-8") as f:
        for o in objs:
            f.write((o if isinstance(o, str) else json.dumps(o, ensure_ascii=False)) + "\n")
    return path


class FixtureRun(unittest.TestCase):
    """One run of the tool on the fixture; the tests read its outputs."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tmpdir()
        cls.run_tmp = os.path.join(cls.tmp, "run")
        os.mkdir(cls.run_tmp)
        cls.csv = os.path.join(cls.tmp, "answers.csv")
        cls.json = os.path.join(cls.tmp, "answers.json")
        cls.md_path = os.path.join(cls.tmp, "answers.md")
        cls.proc = run_tool("--answers", FIXTURE, "--out-csv", cls.csv, "--out-json", cls.json,
                            "--out-md", cls.md_path, tmp=cls.run_tmp)
        cls.questions = read_lines(os.path.join(FIXTURE, "questions.jsonl"))

    def setUp(self):
        self.assertEqual(self.proc.returncode, 0, "stdout: %s\nstderr: %s" % (self.proc.stdout, self.proc.stderr))
        with open(self.json, encoding="utf-8") as f:
            self.report = json.load(f)
        with open(self.csv, newline="", encoding="utf-8") as f:
            self.rows = list(csv.DictReader(f))
        with open(self.md_path, encoding="utf-8") as f:
            self.md = f.read()

    def row(self, question):
        found = [r for r in self.rows if r["question"] == question]
        self.assertEqual(len(found), 1, question)
        return found[0]

    def slice(self, set_name, split):
        return next(s for s in self.report["slices"] if s["set"] == set_name and s["split"] == split)

    def test_every_set_and_split_is_reported_with_its_question_counts(self):
        got = {(s["set"], s["split"]) for s in self.report["slices"]}
        self.assertEqual(got, {(a, b) for a in ("demo", "large", "all") for b in ("dev", "test", "all")})
        for set_name in ("demo", "large", "all"):
            for split in ("dev", "test", "all"):
                qs = [q for q in self.questions if set_name in ("all", q["set"]) and split in ("all", q["split"])]
                s = self.slice(set_name, split)
                self.assertEqual(s["questions"], len(qs), (set_name, split))
                self.assertEqual(s["answerable"],
                                 sum(1 for q in qs if q["expect"] not in ("none", "smalltalk", "human")))
                self.assertEqual(s["none"], sum(1 for q in qs if q["expect"] == "none"))
                self.assertEqual(s["smalltalk"], sum(1 for q in qs if q["expect"] == "smalltalk"))
                self.assertEqual(s["human"], sum(1 for q in qs if q["expect"] == "human"))
                self.assertLessEqual(s["correct"], s["answerable"])
                self.assertLessEqual(s["wrong"], s["auto_answers"])
                # the Markdown table has the same row
                self.assertIn("| %s | %s | %d | %d | %d |" % (set_name, split, s["questions"], s["answerable"],
                                                             s["correct"]), self.md)
        whole = self.slice("all", "all")
        self.assertEqual((whole["questions"], whole["answerable"]), (10, 6))

    def test_an_faq_question_asked_word_for_word_is_answered_from_that_faq(self):
        # one demo FAQ (seeded by --demo) and one imported with the CLI
        for question, faq in (("How do I reset my password?", "faq-reset-password-en"),
                              ("How long does shipping take?", "hc-faq-shipping")):
            r = self.row(question)
            self.assertEqual((r["action"], r["route_source"], r["outcome"]), ("AUTO_REPLY", faq, "correct"))
            self.assertEqual(r["answer_source"], faq)
            self.assertEqual(r["search_rank"], "1")

    def test_a_nonsense_question_labelled_none_is_not_answered(self):
        r = self.row("zxqv blorft wemplish gnarv")
        self.assertNotEqual(r["action"], "AUTO_REPLY")
        self.assertEqual(r["outcome"], "correct")
        self.assertEqual(r["candidate_correct"], "0")
        large_test = self.slice("large", "test")
        self.assertEqual(large_test["none"], 1)
        self.assertEqual(large_test["none_answered"], 0)

    def test_the_csv_has_one_row_per_question_in_input_order(self):
        self.assertEqual([r["question"] for r in self.rows], [q["q"] for q in self.questions])
        for r, q in zip(self.rows, self.questions):
            self.assertEqual((r["set"], r["split"], r["expect"]), (q["set"], q["split"], q["expect"]))
            self.assertIn(r["outcome"], ("correct", "wrong", "transfer", "miss"))
            if r["expect"] in ("smalltalk", "human"):
                self.assertEqual(r["answer_confidence"], "")  # Answer is asked for doc and none only
            else:
                self.assertTrue(0 <= float(r["answer_confidence"]) <= 1, r)

    def test_outcomes_follow_the_route_action(self):
        for r in self.rows:
            if r["expect"] in ("smalltalk", "human", "none") and r["action"] == "AUTO_REPLY":
                self.assertEqual(r["outcome"], "wrong", r)
            if r["expect"] not in ("smalltalk", "human", "none"):
                if r["action"] == "NEW_TICKET":
                    self.assertEqual(r["outcome"], "transfer", r)
                if r["action"] == "AUTO_REPLY":
                    self.assertEqual(r["outcome"], "correct" if r["route_source"] == r["expect"] else "wrong", r)
        whole = self.slice("all", "all")
        self.assertEqual(whole["wrong"], sum(1 for r in self.rows if r["outcome"] == "wrong"))
        self.assertEqual(whole["auto_answers"], sum(1 for r in self.rows if r["action"] == "AUTO_REPLY"))

    def test_the_threshold_sweep_is_monotone_and_the_choice_meets_the_target(self):
        for split in ("dev", "test", "all"):
            rows = self.report["sweep"][split]
            self.assertEqual([r["threshold"] for r in rows], [round(0.05 + 0.01 * i, 2) for i in range(91)])
            for lo, hi in zip(rows, rows[1:]):
                self.assertLessEqual(hi["auto"], lo["auto"], split)
                self.assertLessEqual(hi["correct"], lo["correct"], split)
                self.assertLessEqual(hi["wrong"], lo["wrong"], split)
                if lo["recall"] is not None:
                    self.assertLessEqual(hi["recall"], lo["recall"], split)
        chosen = self.report["chosen"]
        self.assertIsNotNone(chosen)
        self.assertLessEqual(chosen["dev"]["wrong_rate"], 0.02)
        dev = self.report["sweep"]["dev"]
        i = [r["threshold"] for r in dev].index(chosen["threshold"])
        if i > 0:
            self.assertGreater(dev[i - 1]["wrong_rate"], 0.02)  # the lowest one
        self.assertIn("**%.2f**" % chosen["threshold"], self.md)

    def test_the_reliability_curve_counts_every_answered_question(self):
        bins = self.report["reliability"]
        self.assertEqual(len(bins), 10)
        self.assertEqual(sum(b["n"] for b in bins),
                         sum(1 for q in self.questions if q["expect"] not in ("smalltalk", "human")))
        # the two word-for-word FAQ questions sit in the top bin, correct
        self.assertGreaterEqual(bins[9]["candidate_correct"], 2)

    def test_the_markdown_names_the_run_and_lists_the_misses(self):
        for part in ("## Answers", "**Run.**", "**Machine.**", "**Command.**", "### Threshold sweep",
                     "### Confidence reliability", "### Misses"):
            self.assertIn(part, self.md)
        for r in self.rows:
            if r["outcome"] != "correct":
                self.assertIn("| %s |" % r["question"], self.md)

    def test_the_temporary_store_is_removed(self):
        self.assertEqual(os.listdir(self.run_tmp), [])


class ExitStatus(unittest.TestCase):
    def setUp(self):
        self.tmp = tmpdir()

    def two_questions(self):
        # no-such-doc is in no help center: recall cannot reach 100%
        return write_lines(os.path.join(self.tmp, "q.jsonl"), [
            {"q": "How do I reset my password?", "set": "demo", "expect": "faq-reset-password-en",
             "kind": "faq", "split": "test", "note": "faq-exact"},
            {"q": "How do I reset my password?", "set": "demo", "expect": "no-such-doc", "kind": "faq",
             "split": "test", "note": "impossible"},
        ])

    def test_a_slice_short_of_min_recall_exits_1_and_still_writes_the_report(self):
        md = os.path.join(self.tmp, "short.md")
        p = run_tool("--answers", FIXTURE, "--questions", self.two_questions(), "--min-recall", "1.0",
                     "--split", "test", "--out-md", md, tmp=self.tmp)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("falls short: recall 50.0% < 100.0%", p.stderr)
        with open(md, encoding="utf-8") as f:
            self.assertIn("| demo | test | 2 | 2 | 1 | 50.0% |", f.read())

    def test_poor_scores_alone_exit_0(self):
        p = run_tool("--answers", FIXTURE, "--questions", self.two_questions(), "--min-recall", "0.5",
                     "--max-wrong", "0.5", "--out-md", os.path.join(self.tmp, "ok.md"), tmp=self.tmp)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_a_wrong_answer_over_max_wrong_exits_1(self):
        # the answer comes from faq-reset-password-en, labelled as another document
        q = write_lines(os.path.join(self.tmp, "wrong.jsonl"), [
            {"q": "How do I reset my password?", "set": "demo", "expect": "faq-hours-en", "kind": "faq",
             "split": "dev", "note": "mislabelled"}])
        p = run_tool("--answers", FIXTURE, "--questions", q, "--max-wrong", "0.02", "--split", "dev",
                     "--out-md", os.path.join(self.tmp, "w.md"), tmp=self.tmp)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("wrong 100.0% > 2.0%", p.stderr)

    def test_a_bad_question_line_exits_2_naming_the_line(self):
        q = write_lines(os.path.join(self.tmp, "bad.jsonl"), [
            {"q": "hello", "set": "demo", "expect": "smalltalk", "kind": "", "split": "dev", "note": ""},
            {"q": "hello", "set": "huge", "expect": "smalltalk", "kind": "", "split": "dev", "note": ""},
        ])
        p = run_tool("--answers", FIXTURE, "--questions", q, tmp=self.tmp)
        self.assertEqual(p.returncode, 2)
        self.assertIn("bad.jsonl:2", p.stderr)
        self.assertIn("\"set\"", p.stderr)
        q = write_lines(os.path.join(self.tmp, "broken.jsonl"), ['{"q": "hello", "set": '])
        p = run_tool("--answers", FIXTURE, "--questions", q, tmp=self.tmp)
        self.assertEqual(p.returncode, 2)
        self.assertIn("broken.jsonl:1: not JSON", p.stderr)

    def test_a_missing_help_center_file_exits_2_and_leaves_no_store_behind(self):
        run_tmp = os.path.join(self.tmp, "run")
        os.mkdir(run_tmp)
        p = run_tool("--answers", FIXTURE, "--articles", os.path.join(self.tmp, "absent.jsonl"), tmp=run_tmp)
        self.assertEqual(p.returncode, 2)
        self.assertIn("absent.jsonl: no such file", p.stderr)
        self.assertEqual(os.listdir(run_tmp), [])

    def test_a_server_that_is_not_there_exits_2(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now
        p = run_tool("--answers", FIXTURE, "--server", "127.0.0.1:%d" % port, "--token", "x", "--no-import",
                     tmp=self.tmp)
        self.assertEqual(p.returncode, 2)
        self.assertIn("UNAVAILABLE", p.stderr)

    def test_out_of_range_limits_are_usage_errors(self):
        p = run_tool("--answers", FIXTURE, "--min-recall", "1.5", tmp=self.tmp)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--min-recall must be within [0, 1]", p.stderr)


if __name__ == "__main__":
    hwtest.main()
