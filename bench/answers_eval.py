#!/usr/bin/env python3
"""answers_eval: how well helpwired answers customers' questions from the
help center (the "Answers" evaluation; run it through bench/answers_eval.sh,
which builds the binaries).

Input, in one directory (--answers DIR, default bench/answers/):
  helpcenter_faqs.jsonl      {"id","question","answer","locale","alternate_questions"}
  helpcenter_articles.jsonl  {"id","title","body","locale","tags"}
  questions.jsonl            {"q","set":"demo"|"large","expect":DOC_ID|"none"|"smalltalk"|"human",
                              "kind":"faq"|"article"|"","split":"dev"|"test","note":CATEGORY}
The "demo" set asks about the documents `helpwired --demo` seeds; "large"
about the imported help center.

What it does:
  1. starts helpwired --demo on a fresh data directory (loopback, a free
     port), or uses --server/--token;
  2. imports the help center with the real CLI (`helpwire import faqs`,
     `helpwire import articles`, and `helpwire import synonyms` with
     --synonyms FILE);
  3. for every question: Router.Route on WEBCHAT from a customer of its own
     (no open ticket interferes), locale "" (the server guesses, as bridges
     without a language hint do; --with-locale sends zh/en guessed here);
     for doc and "none" questions also Knowledge.Answer with
     min_confidence 1.0 (nothing is cut: the best candidate, its confidence
     and signals) and Knowledge.Search top_k 10 (MRR@10);
  4. scores each Route reply:
       doc id:    correct = AUTO_REPLY from that document; wrong = AUTO_REPLY
                  from another; transfer = NEW_TICKET; anything else a miss;
       none:      AUTO_REPLY = wrong, anything else correct;
       smalltalk: SMALL_TALK = correct, AUTO_REPLY = wrong, else a miss;
       human:     NEW_TICKET with reason "asked-for-human" = correct,
                  AUTO_REPLY = wrong, else a miss;
  5. reports per set (demo, large, all) x split (dev, test, all), a
     reliability curve of the Answer confidence, and a threshold sweep
     computed offline from the Answer confidences and candidates (a
     question is auto-answered at threshold t when its confidence >= t, as
     the server decides), with the lowest threshold whose wrong
     auto-answers on the dev split are <= 2% of the dev questions the sweep
     covers (doc and none questions), and that threshold's test figures.

Outputs: --out-csv (a row per question), --out-md (a Markdown section),
--out-json (every figure, the full sweep included); the Markdown goes to
stdout when no --out-md is given.

Exit status: 0 done (whatever the scores); 1 with --min-recall/--max-wrong
when the slice (--set, --split) falls short; 2 on an infrastructure error
(bad input file, server did not start, an RPC failed unexpectedly).
"""
import argparse
import csv
import datetime
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402

import hwclient  # noqa: E402

SETS = ("demo", "large")
SPLITS = ("dev", "test")
LABELS = ("none", "smalltalk", "human")
SIGNALS = ("coverage", "question_similarity", "margin", "phrase", "field", "terms", "known_terms",
           "synonyms_applied", "head_coverage", "locale_match",
           "question_containment")
SWEEP = [round(0.05 + 0.01 * i, 2) for i in range(91)]  # 0.05 .. 0.95
TARGET_WRONG = 0.02
CALL_TIMEOUT = 30


class InfraError(Exception):
    """Something other than the scores went wrong: exit 2."""


def log(*a):
    print("answers_eval:", *a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- inputs

def read_jsonl(path, what):
    if not os.path.exists(path):
        raise InfraError("%s: no such file (%s)" % (path, what))
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise InfraError("%s:%d: not JSON: %s" % (path, n, e))
            if not isinstance(obj, dict):
                raise InfraError("%s:%d: not a JSON object" % (path, n))
            out.append((n, obj))
    return out


def read_questions(path):
    rows = []
    for n, obj in read_jsonl(path, "questions"):
        q = obj.get("q")
        where = "%s:%d" % (path, n)
        if not isinstance(q, str) or not q.strip():
            raise InfraError("%s: \"q\" must be a non-empty string" % where)
        if obj.get("set") not in SETS:
            raise InfraError("%s: \"set\" must be one of %s, not %r" % (where, "/".join(SETS), obj.get("set")))
        if obj.get("split") not in SPLITS:
            raise InfraError("%s: \"split\" must be one of %s, not %r" % (where, "/".join(SPLITS),
                                                                         obj.get("split")))
        expect = obj.get("expect")
        if not isinstance(expect, str) or not expect:
            raise InfraError("%s: \"expect\" must be a document id or one of %s" % (where, "/".join(LABELS)))
        kind = obj.get("kind") or ""
        if kind not in ("", "faq", "article"):
            raise InfraError("%s: \"kind\" must be faq, article or empty, not %r" % (where, kind))
        rows.append({
            "line": n, "q": q, "set": obj["set"], "split": obj["split"], "expect": expect,
            "expect_kind": kind, "note": str(obj.get("note") or ""),
            "label": expect if expect in LABELS else "doc",
        })
    if not rows:
        raise InfraError("%s: no questions" % path)
    return rows


def guess_locale(text):
    """The server's guess (server/domain/classify.c): zh when any character
    is in U+2E80..U+9FFF, else en."""
    return "zh" if any("\u2e80" <= ch <= "\u9fff" for ch in text) else "en"


# ---------------------------------------------------------------- server

class Target:
    """A helpwired to evaluate: started here (--demo, fresh store) or given."""

    def __init__(self, args):
        self.server = None
        self.tmp = None
        self.keep = args.keep
        if args.server:
            self.address, self.token = args.server, args.token or os.environ.get("HELPWIRE_TOKEN", "")
            self.note = "given: %s" % args.server
            return
        binary = args.helpwired or os.environ.get("HELPWIRED") or None
        try:
            binary = binary or hwclient.helpwired_binary()
        except FileNotFoundError:
            raise InfraError("no helpwired binary (give --helpwired or HELPWIRED)")
        if not os.access(binary, os.X_OK):
            raise InfraError("%s: not an executable" % binary)
        hwclient.helpwired_binary = lambda: binary
        self.tmp = tempfile.mkdtemp(prefix="helpwire-answers.", dir=os.environ.get("TEST_TMPDIR"))
        os.mkdir(os.path.join(self.tmp, "data"))
        try:
            # Hundreds of questions from as many new senders at once: an
            # evaluation, not a flood (per-sender limits off).
            self.server = hwclient.Server("--demo", "--sender-rate", "0", "--new-customers-rate", "0",
                                          *args.helpwired_arg, data_dir=os.path.join(self.tmp, "data"))
        except RuntimeError as e:
            self.close()
            raise InfraError(str(e).strip()[-2000:])
        if "admin" not in self.server.tokens:
            self.close()
            raise InfraError("helpwired --demo printed no admin token")
        self.address, self.token = self.server.address, self.server.tokens["admin"]
        self.note = "helpwired --demo on a fresh store%s" % (
            (" with " + " ".join(args.helpwired_arg)) if args.helpwired_arg else "")

    def close(self):
        """Stops a server started here; its exit status (0 when none)."""
        rc = 0
        if self.server is not None:
            rc = self.server.stop()
            if rc != 0:
                log("helpwired exited with status %s; its log ends:\n%s" % (rc, self.server.read_log()[-2000:]))
            self.server = None
        if self.tmp and not self.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return rc


def run_cli(cli, target, *argv):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPWIRE_")}
    env["HELPWIRE_SERVER"] = target.address
    if target.token:
        env["HELPWIRE_TOKEN"] = target.token
    try:
        return subprocess.run([cli] + list(argv), env=env, capture_output=True, text=True, timeout=3600)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise InfraError("helpwire %s: %s" % (" ".join(argv), e))


def import_docs(cli, target, kind, path, notes):
    """`helpwire import KIND PATH`; a refused line is noted, not fatal (the
    rest is evaluated); anything else that fails is."""
    if not os.path.exists(path):
        raise InfraError("%s: no such file (%s)" % (path, kind))
    p = run_cli(cli, target, "import", kind, path)
    summary = (p.stdout.strip().splitlines() or [""])[-1]
    if p.returncode == 0:
        notes.append("import %s: %s" % (kind, summary))
        return
    if p.returncode == 1 and "imported" in summary and "stopped early" not in summary:
        err = [l for l in p.stderr.splitlines() if l.strip()]
        notes.append("import %s: %s (%s)" % (kind, summary, "; ".join(err[:3])))
        log("import %s: %s" % (kind, summary))
        return
    raise InfraError("helpwire import %s %s exited with %d: %s" % (kind, path, p.returncode,
                                                                 (p.stderr or p.stdout).strip()[-1000:]))


def import_synonyms(cli, target, client, path, notes):
    """`helpwire import synonyms PATH`; when this CLI has no such command,
    the sets go through Knowledge.PutSynonymSet here."""
    if not os.path.exists(path):
        raise InfraError("%s: no such file (synonyms)" % path)
    p = run_cli(cli, target, "import", "synonyms", path)
    if p.returncode == 0:
        notes.append("import synonyms: %s" % (p.stdout.strip().splitlines() or [""])[-1])
        return
    if p.returncode != 2 or "unknown command" not in p.stderr:
        raise InfraError("helpwire import synonyms %s exited with %d: %s" % (
            path, p.returncode, (p.stderr or p.stdout).strip()[-1000:]))
    done = refused = 0
    for n, obj in read_jsonl(path, "synonyms"):
        msg = client.api.message("helpwire.v1.SynonymSet")
        try:
            json_format.ParseDict(obj, msg, ignore_unknown_fields=True)
        except json_format.ParseError as e:
            raise InfraError("%s:%d: not a synonym set: %s" % (path, n, e))
        req_cls = client.api.method("helpwire.v1.Knowledge/PutSynonymSet")[0]
        req = req_cls()
        req.set.CopyFrom(msg)
        try:
            client.call("helpwire.v1.Knowledge/PutSynonymSet", request=req, timeout=CALL_TIMEOUT)
            done += 1
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                notes.append("synonyms NOT applied: helpwired does not implement PutSynonymSet yet")
                log("synonyms not applied: PutSynonymSet is UNIMPLEMENTED")
                return
            if e.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ABORTED):
                refused += 1
                log("%s:%d: %s: %s" % (path, n, e.code().name, e.details()))
                continue
            raise InfraError("PutSynonymSet: %s: %s" % (e.code().name, e.details()))
    notes.append("import synonyms (Knowledge.PutSynonymSet; the CLI has no `import synonyms`): %d sets%s" % (
        done, ", %d refused" % refused if refused else ""))


# ---------------------------------------------------------------- calls

def enum_name(api, enum, number, prefix):
    try:
        name = api.pool.FindEnumTypeByName(enum).values_by_number[number].name
    except KeyError:
        return str(number)
    return name[len(prefix):] if name.startswith(prefix) else name


def same_doc(kind_name, doc_id, row):
    """The document (kind_name: "FAQ"/"ARTICLE"/"UNSPECIFIED", doc_id) is the
    question's expected one (the kind is compared when both are known)."""
    if not doc_id or doc_id != row["expect"]:
        return False
    want = {"faq": "FAQ", "article": "ARTICLE"}.get(row["expect_kind"])
    return not want or kind_name in ("UNSPECIFIED", want)


class Evaluator:
    def __init__(self, client, run_id, with_locale):
        self.client, self.api = client, client.api
        self.run_id, self.with_locale = run_id, with_locale

    def call(self, method, row, **fields):
        """A call whose failure is an infrastructure error, except
        INVALID_ARGUMENT (the question itself was refused): None then."""
        try:
            return self.client.call(method, timeout=CALL_TIMEOUT, **fields)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.INVALID_ARGUMENT:
                row.setdefault("errors", []).append("%s: %s" % (method.split("/")[-1], e.details()))
                return None
            raise InfraError("%s on %r: %s: %s" % (method, row["q"][:80], e.code().name, e.details()))

    def one(self, idx_row):
        i, row = idx_row
        locale = guess_locale(row["q"])
        user = "answers-eval-%s-%d" % (self.run_id, i)
        r = self.call("helpwire.v1.Router/Route", row, channel="CHANNEL_WEBCHAT", channelUserId=user,
                      displayName="answers eval", text=row["q"], messageId=user + "-m",
                      locale=locale if self.with_locale else "")
        if r is not None:
            row["action"] = enum_name(self.api, "helpwire.v1.RouteAction", r.action, "ROUTE_ACTION_")
            # (getattr: a server older than these fields answers without them)
            row["route_kind"] = enum_name(self.api, "helpwire.v1.DocKind", getattr(r, "answer_source_kind", 0),
                                          "DOC_KIND_")
            row["route_source"] = getattr(r, "answer_source_id", "")
            row["route_confidence"] = r.confidence
            row["reason"] = getattr(r, "reason", "")
        else:
            row.update(action="REFUSED", route_kind="", route_source="", route_confidence=0.0, reason="")
        row["outcome"] = outcome(row)
        if row["label"] in ("doc", "none"):
            # Route decides with the locale it was given or guessed; so does this.
            a = self.call("helpwire.v1.Knowledge/Answer", row, question=row["q"], locale=locale,
                          minConfidence=1.0)
            if a is not None:
                row["answer_kind"] = enum_name(self.api, "helpwire.v1.DocKind", a.source_kind, "DOC_KIND_")
                row["answer_source"] = a.source_id
                row["answer_confidence"] = a.confidence
                if "signals" in a.DESCRIPTOR.fields_by_name and a.HasField("signals"):
                    for s in SIGNALS:
                        row["sig_" + s] = getattr(a.signals, s)
            else:
                row.update(answer_kind="", answer_source="", answer_confidence=0.0)
            row["candidate_correct"] = row["label"] == "doc" and same_doc(row["answer_kind"],
                                                                          row["answer_source"], row)
        if row["label"] == "doc":
            s = self.call("helpwire.v1.Knowledge/Search", row, query=row["q"], topK=10)
            row["search_rank"] = None
            for rank, hit in enumerate(s.hits if s is not None else [], 1):
                if same_doc(enum_name(self.api, "helpwire.v1.DocKind", hit.kind, "DOC_KIND_"), hit.id, row):
                    row["search_rank"] = rank
                    break
        return row


def outcome(row):
    action, label = row["action"], row["label"]
    if label == "doc":
        if action == "AUTO_REPLY":
            return "correct" if same_doc(row["route_kind"], row["route_source"], row) else "wrong"
        return "transfer" if action == "NEW_TICKET" else "miss"
    if label == "none":
        return "wrong" if action == "AUTO_REPLY" else "correct"
    if label == "smalltalk":
        return "correct" if action == "SMALL_TALK" else "wrong" if action == "AUTO_REPLY" else "miss"
    # human
    if action == "NEW_TICKET" and row["reason"] == "asked-for-human":
        return "correct"
    return "wrong" if action == "AUTO_REPLY" else "miss"


# ---------------------------------------------------------------- figures

def ratio(a, b):
    return a / b if b else None


def in_slice(row, set_name, split):
    return (set_name == "all" or row["set"] == set_name) and (split == "all" or row["split"] == split)


def slice_figures(rows):
    doc = [r for r in rows if r["label"] == "doc"]
    auto = [r for r in rows if r["action"] == "AUTO_REPLY"]
    wrong = [r for r in rows if r["outcome"] == "wrong"]
    correct = [r for r in doc if r["outcome"] == "correct"]
    by = {lab: [r for r in rows if r["label"] == lab] for lab in LABELS}
    return {
        "questions": len(rows),
        "answerable": len(doc),
        "correct": len(correct),
        "recall": ratio(len(correct), len(doc)),
        "auto_answers": len(auto),
        "wrong": len(wrong),
        "wrong_of_questions": ratio(len(wrong), len(rows)),
        "wrong_of_auto": ratio(len(wrong), len(auto)),
        "transfers": sum(1 for r in doc if r["action"] == "NEW_TICKET"),
        "none": len(by["none"]),
        "none_answered": sum(1 for r in by["none"] if r["action"] == "AUTO_REPLY"),
        "smalltalk": len(by["smalltalk"]),
        "smalltalk_correct": sum(1 for r in by["smalltalk"] if r["outcome"] == "correct"),
        "human": len(by["human"]),
        "human_correct": sum(1 for r in by["human"] if r["outcome"] == "correct"),
        "mrr10": ratio(sum(1.0 / r["search_rank"] for r in doc if r.get("search_rank")), len(doc)),
    }


def reliability(rows):
    pool = [r for r in rows if r["label"] in ("doc", "none") and "answer_confidence" in r]
    bins = []
    for b in range(10):
        inside = [r for r in pool if min(int(r["answer_confidence"] * 10 + 1e-9), 9) == b]
        ok = sum(1 for r in inside if r["candidate_correct"])
        bins.append({"low": b / 10, "high": (b + 1) / 10, "n": len(inside), "candidate_correct": ok,
                     "share": ratio(ok, len(inside))})
    return bins


def sweep(rows):
    """For each threshold: the auto-answers the Answer confidences would
    give. wrong_rate is over the questions swept (doc and none)."""
    pool = [r for r in rows if r["label"] in ("doc", "none") and "answer_confidence" in r]
    answerable = sum(1 for r in pool if r["label"] == "doc")
    out = []
    for t in SWEEP:
        auto = [r for r in pool if r["answer_source"] and r["answer_confidence"] >= t - 1e-12]
        correct = sum(1 for r in auto if r["candidate_correct"])
        wrong = len(auto) - correct
        out.append({"threshold": t, "questions": len(pool), "answerable": answerable, "auto": len(auto),
                    "correct": correct, "wrong": wrong, "recall": ratio(correct, answerable),
                    "wrong_rate": ratio(wrong, len(pool)), "wrong_of_auto": ratio(wrong, len(auto))})
    return out


def choose(dev, test):
    for d, t in zip(dev, test):
        if d["questions"] and d["wrong_rate"] <= TARGET_WRONG + 1e-12:
            return {"threshold": d["threshold"], "dev": d, "test": t}
    return None


def summarize(rows):
    slices = []
    for set_name in SETS + ("all",):
        for split in SPLITS + ("all",):
            f = slice_figures([r for r in rows if in_slice(r, set_name, split)])
            f.update(set=set_name, split=split)
            slices.append(f)
    sweeps = {split: sweep([r for r in rows if in_slice(r, "all", split)]) for split in SPLITS + ("all",)}
    disagree = sum(1 for r in rows if r["label"] in ("doc", "none") and r["action"] in ("AUTO_REPLY", "NEW_TICKET")
                   and "answer_source" in r and r["route_source"] != r["answer_source"])
    return {"slices": slices, "reliability": reliability(rows), "sweep": sweeps,
            "chosen": choose(sweeps["dev"], sweeps["test"]), "route_answer_disagree": disagree}


# ---------------------------------------------------------------- output

def pct(x):
    return "–" if x is None else "%.1f%%" % (100 * x)


def num(x, fmt="%.3f"):
    return "–" if x is None else fmt % x


def md_cell(s, limit=90):
    s = " ".join(str(s).split())
    if len(s) > limit:
        s = s[:limit - 1] + "…"
    return s.replace("|", "\\|")


def got_text(r):
    s = r["action"]
    if r.get("route_source"):
        s += " " + r["route_source"]
    if r.get("reason"):
        s += " (%s)" % r["reason"]
    if r.get("answer_source"):
        s += "; best candidate %s at %.2f" % (r["answer_source"], r["answer_confidence"])
    if r.get("errors"):
        s += "; refused: " + "; ".join(r["errors"])
    return s


def machine():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    u = platform.uname()
    return "%s %s %s, %d vCPU%s" % (u.system, u.release, u.machine, os.cpu_count() or 0,
                                    " " + cpu if cpu else "")


def markdown(summary, rows, meta, max_misses):
    s = ["## Answers", ""]
    s.append("`bench/answers_eval.py`: every question of the evaluation set through Router.Route (WEBCHAT, a "
             "customer of its own, %s), scored against its label; Knowledge.Answer with min_confidence 1.0 "
             "for the best candidate, its confidence and signals; Knowledge.Search top 10 for MRR." % (
                 "locale zh/en guessed by the tool" if meta["with_locale"] else "locale \"\": the server guesses"))
    s.append("")
    s.append("**Run.** %s. **Machine.** %s. **Server.** %s." % (meta["date"], meta["machine"], meta["server"]))
    s.append("")
    s.append("**Command.** `%s`" % meta["command"])
    s.append("")
    s.append("**Data.** %d questions (%s); %s." % (
        len(rows), ", ".join("%s %d" % (k, sum(1 for r in rows if r["label"] == k))
                             for k in ("doc",) + LABELS), "; ".join(meta["notes"]) or "no import"))
    s.append("")
    s.append("### By set and split")
    s.append("")
    s.append("Recall = correct auto-answers / answerable (doc-labelled) questions. Wrong = auto-answers from "
             "the wrong document, or to a none / small-talk / human question; as a share of all the slice's "
             "questions and of its auto-answers. Transfers: answerable questions that got a ticket.")
    s.append("")
    s.append("| set | split | questions | answerable | correct | recall | auto-answers | wrong | wrong / "
             "questions | wrong / auto | transfers | none answered | small talk | human | MRR@10 |")
    s.append("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for f in summary["slices"]:
        s.append("| %s | %s | %d | %d | %d | %s | %d | %d | %s | %s | %d | %d/%d | %d/%d | %d/%d | %s |" % (
            f["set"], f["split"], f["questions"], f["answerable"], f["correct"], pct(f["recall"]),
            f["auto_answers"], f["wrong"], pct(f["wrong_of_questions"]), pct(f["wrong_of_auto"]),
            f["transfers"], f["none_answered"], f["none"], f["smalltalk_correct"], f["smalltalk"],
            f["human_correct"], f["human"], num(f["mrr10"])))
    s.append("")
    if summary["route_answer_disagree"]:
        s.append("Route's candidate and Answer's differed on %d question(s)." % summary["route_answer_disagree"])
        s.append("")
    s.append("### Confidence reliability (Knowledge.Answer, all doc and none questions)")
    s.append("")
    s.append("| confidence | n | best candidate is the expected document |")
    s.append("|---|--:|--:|")
    for b in summary["reliability"]:
        s.append("| %.1f–%.1f | %d | %s |" % (b["low"], b["high"], b["n"],
                                            "%d (%s)" % (b["candidate_correct"], pct(b["share"])) if b["n"] else "–"))
    s.append("")
    s.append("### Threshold sweep (offline, from the Answer confidences)")
    s.append("")
    s.append("Auto-answer when confidence ≥ threshold. Wrong rate = wrong auto-answers / the doc and none "
             "questions of the split. Every 0.05 shown; the full sweep (step 0.01) is in the JSON output.")
    s.append("")
    chosen = summary["chosen"]
    s.append("| threshold | dev recall | dev wrong | dev wrong / auto | test recall | test wrong | test wrong / auto |")
    s.append("|--:|--:|--:|--:|--:|--:|--:|")
    shown = {round(0.05 * k, 2) for k in range(1, 20)}
    if chosen:
        shown.add(chosen["threshold"])
    for d, t in zip(summary["sweep"]["dev"], summary["sweep"]["test"]):
        if d["threshold"] not in shown:
            continue
        mark = " ←" if chosen and d["threshold"] == chosen["threshold"] else ""
        s.append("| %.2f%s | %s | %s | %s | %s | %s | %s |" % (
            d["threshold"], mark, pct(d["recall"]), pct(d["wrong_rate"]), pct(d["wrong_of_auto"]),
            pct(t["recall"]), pct(t["wrong_rate"]), pct(t["wrong_of_auto"])))
    s.append("")
    if chosen:
        s.append("Lowest threshold with dev wrong ≤ %d%%: **%.2f** (dev recall %s, wrong %s; test recall %s, "
                 "wrong %s)." % (100 * TARGET_WRONG, chosen["threshold"], pct(chosen["dev"]["recall"]),
                                 pct(chosen["dev"]["wrong_rate"]), pct(chosen["test"]["recall"]),
                                 pct(chosen["test"]["wrong_rate"])))
    else:
        s.append("No threshold from 0.05 to 0.95 keeps dev wrong ≤ %d%%." % (100 * TARGET_WRONG))
    s.append("")
    misses = [r for r in rows if r["outcome"] == "wrong"] + \
             [r for r in rows if r["outcome"] in ("transfer", "miss")]
    s.append("### Misses (%d; wrong auto-answers first%s)" % (
        len(misses), ", the first %d shown" % max_misses if len(misses) > max_misses else ""))
    s.append("")
    if misses:
        s.append("| set/split | question | expect | got |")
        s.append("|---|---|---|---|")
        for r in misses[:max_misses]:
            s.append("| %s/%s | %s | %s | %s |" % (r["set"], r["split"], md_cell(r["q"]), md_cell(r["expect"]),
                                                  md_cell(got_text(r), 140)))
    else:
        s.append("None.")
    s.append("")
    return "\n".join(s)


CSV_FIELDS = ["line", "set", "split", "expect", "expect_kind", "note", "question", "action", "route_kind",
              "route_source", "route_confidence", "reason", "answer_kind", "answer_source", "answer_confidence"] + \
             ["sig_" + s for s in SIGNALS] + ["candidate_correct", "search_rank", "outcome"]


def write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            d = dict(r, question=r["q"])
            for k in ("route_confidence", "answer_confidence", "sig_coverage", "sig_question_similarity",
                      "sig_margin", "sig_phrase"):
                if isinstance(d.get(k), float):
                    d[k] = "%.4f" % d[k]
            if "candidate_correct" in d:
                d["candidate_correct"] = int(d["candidate_correct"])
            w.writerow(d)


# ---------------------------------------------------------------- main

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--answers", default=os.path.join(ROOT, "bench", "answers"),
                   help="directory of the input files (default bench/answers)")
    p.add_argument("--questions", help="questions file (default ANSWERS/questions.jsonl)")
    p.add_argument("--faqs", help="FAQs to import (default ANSWERS/helpcenter_faqs.jsonl)")
    p.add_argument("--articles", help="articles to import (default ANSWERS/helpcenter_articles.jsonl)")
    p.add_argument("--synonyms", help="synonym sets to import (JSON Lines of SynonymSet)")
    p.add_argument("--no-import", action="store_true", help="import nothing (with --server: already loaded)")
    p.add_argument("--server", help="use this helpwired (host:port) instead of starting one")
    p.add_argument("--token", help="bearer token for --server (default $HELPWIRE_TOKEN); admin: the import "
                   "needs it, Route needs bridge, Answer and Search agent")
    p.add_argument("--helpwired", help="server binary (default $HELPWIRED, else runfiles or bazel-bin)")
    p.add_argument("--helpwired-arg", action="append", default=[], metavar="ARG",
                   help="extra helpwired flag, e.g. --helpwired-arg=--answer-threshold=0.5 (repeatable)")
    p.add_argument("--cli", help="helpwire CLI binary (default $HELPWIRE_CLI, else runfiles or bazel-bin)")
    p.add_argument("--protoset", help="descriptor set (default $HELPWIRE_PROTOSET, else runfiles or bazel-bin)")
    p.add_argument("--with-locale", action="store_true", help="send Route the locale (zh/en) guessed here")
    p.add_argument("--parallel", type=int, default=4, help="questions in flight (default 4)")
    p.add_argument("--out-csv")
    p.add_argument("--out-md")
    p.add_argument("--out-json")
    p.add_argument("--misses", type=int, default=40, help="misses listed in the Markdown (default 40)")
    p.add_argument("--command", help="the command line to print in the report (default: this one)")
    p.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    p.add_argument("--min-recall", type=float, help="exit 1 when the slice's recall is below this (0..1)")
    p.add_argument("--max-wrong", type=float,
                   help="exit 1 when the slice's wrong auto-answers exceed this share of its questions (0..1)")
    p.add_argument("--set", dest="check_set", default="all", choices=SETS + ("all",), help="slice checked")
    p.add_argument("--split", dest="check_split", default="test", choices=SPLITS + ("all",), help="slice checked")
    a = p.parse_args(argv)
    for name in ("min_recall", "max_wrong"):
        v = getattr(a, name)
        if v is not None and not 0 <= v <= 1:
            p.error("--%s must be within [0, 1]" % name.replace("_", "-"))
    if a.parallel < 1 or a.parallel > 64:
        p.error("--parallel must be 1 to 64")
    a.questions = a.questions or os.path.join(a.answers, "questions.jsonl")
    a.faqs = a.faqs or os.path.join(a.answers, "helpcenter_faqs.jsonl")
    a.articles = a.articles or os.path.join(a.answers, "helpcenter_articles.jsonl")
    return a


def evaluate(args):
    rows = read_questions(args.questions)
    protoset = args.protoset or os.environ.get("HELPWIRE_PROTOSET") or None
    try:
        api = hwclient.Api(protoset)
    except (FileNotFoundError, OSError) as e:
        raise InfraError("no descriptor set (give --protoset): %s" % e)
    cli = None
    if not args.no_import:
        cli = args.cli or os.environ.get("HELPWIRE_CLI")
        try:
            cli = cli or hwclient.find_file("clients/cli/helpwire", "clients/cli/helpwire")
        except FileNotFoundError:
            raise InfraError("no helpwire CLI binary (give --cli or HELPWIRE_CLI)")
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(), "with_locale": args.with_locale, "notes": [],
            "command": args.command or " ".join(shlex.quote(a) for a in sys.argv)}
    # Each set is asked of its own help center, as its labels assume: the
    # demo set of the server --demo seeds, the large set of the imported
    # help center alone (the demo documents deleted first). A given
    # --server is one help center: every set is asked of it.
    phases = [("all", False)] if args.server else [("demo", False), ("large", True)]
    done = [None] * len(rows)
    for set_name, replace in phases:
        idx = [i for i, r in enumerate(rows) if set_name == "all" or r["set"] == set_name]
        if not idx:
            continue
        target = Target(args)
        meta["server"] = target.note
        client = hwclient.Client(target.address, api=api, token=target.token)
        failed = None
        try:
            if replace and not args.no_import:
                removed = delete_knowledge(client)
                meta["notes"].append("%s set: the %d demo documents deleted, then:" % (set_name, removed))
            if (replace or args.server) and not args.no_import:
                import_docs(cli, target, "faqs", args.faqs, meta["notes"])
                import_docs(cli, target, "articles", args.articles, meta["notes"])
            if args.synonyms and not args.no_import:
                import_synonyms(cli, target, client, args.synonyms, meta["notes"])
            ev = Evaluator(client, uuid.uuid4().hex[:12], args.with_locale)
            log("%d %s questions against %s" % (len(idx), set_name, target.address))
            with ThreadPoolExecutor(max_workers=args.parallel) as pool:
                got = list(pool.map(ev.one, [(i, rows[i]) for i in idx]))
            for i, r in zip(idx, got):
                done[i] = r
        except InfraError as e:
            failed = e
        finally:
            client.close()
            rc = target.close()
        if failed:
            raise failed
        if rc != 0:
            raise InfraError("helpwired exited with status %s when stopped" % rc)
    return [r for r in done if r is not None], meta


def delete_knowledge(client):
    """Deletes every article and FAQ; how many."""
    n = 0
    for kind, lst, field, dele in (("articles", "ListArticles", "articles", "DeleteArticle"),
                                   ("faqs", "ListFaqs", "faqs", "DeleteFaq")):
        while True:
            try:
                reply = client.call("helpwire.v1.Knowledge/" + lst, page_size=1000, timeout=CALL_TIMEOUT)
                docs = list(getattr(reply, field))
                for d in docs:
                    client.call("helpwire.v1.Knowledge/" + dele, id=d.id, timeout=CALL_TIMEOUT)
                    n += 1
            except grpc.RpcError as e:
                raise InfraError("deleting the demo %s: %s: %s" % (kind, e.code().name, e.details()))
            if not docs:
                break
    return n


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        rows, meta = evaluate(args)
    except InfraError as e:
        log("error:", e)
        return 2
    summary = summarize(rows)
    md = markdown(summary, rows, meta, args.misses)
    if args.out_csv:
        write_csv(args.out_csv, rows)
    if args.out_json:
        with open(args.out_json, "w", encoding="utf-8") as f:
            json.dump(dict(summary, meta=meta), f, indent=1, ensure_ascii=False)
    if args.out_md:
        with open(args.out_md, "w", encoding="utf-8") as f:
            f.write(md)
    else:
        sys.stdout.write(md)
    if args.min_recall is not None or args.max_wrong is not None:
        f = next(x for x in summary["slices"] if x["set"] == args.check_set and x["split"] == args.check_split)
        short = []
        if args.min_recall is not None and (f["recall"] or 0) < args.min_recall:
            short.append("recall %s < %s" % (pct(f["recall"]), pct(args.min_recall)))
        if args.max_wrong is not None and (f["wrong_of_questions"] or 0) > args.max_wrong:
            short.append("wrong %s > %s" % (pct(f["wrong_of_questions"]), pct(args.max_wrong)))
        if short:
            log("%s/%s falls short: %s" % (args.check_set, args.check_split, ", ".join(short)))
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
