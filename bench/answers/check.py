#!/usr/bin/python3
"""check: the answer-evaluation data in this folder is consistent.

Reads helpcenter_faqs.jsonl, helpcenter_articles.jsonl and questions.jsonl,
takes the demo help center's ids from server/ops/demo.c, checks fields,
ids, labels and the server's size limits, and prints the counts. Exits 1
on any problem (each one is printed), 0 otherwise. Standard library only.

    /usr/bin/python3 bench/answers/check.py [--quiet]
"""
import collections
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO_C = os.path.join(HERE, "..", "..", "server", "ops", "demo.c")

ID_RE = re.compile(r"^hc-[a-z0-9]+(-[a-z0-9]+)*$")
CJK_RE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
LATIN_RE = re.compile(r"[A-Za-z]")

# Limits from proto/helpwire/v1/knowledge.proto, common.proto and router.proto.
MAX_ID = 64
MAX_FAQ_QUESTION = 1024
MAX_FAQ_ANSWER = 16 * 1024
MAX_ALTERNATES = 16
MAX_ALTERNATE = 1024
MAX_TITLE = 512
MAX_BODY = 256 * 1024
MAX_TAGS = 32
MAX_TAG = 64
MAX_ROUTE_TEXT = 16384

LOCALES = ("zh", "en")
SETS = ("demo", "large")
SPLITS = ("dev", "test")
LANGS = ("zh", "en", "mixed")
CLASSES = ("none", "smalltalk", "human")
FAQ_FIELDS = ("id", "question", "answer", "locale", "alternate_questions")
ARTICLE_FIELDS = ("id", "title", "body", "locale", "tags")
QUESTION_FIELDS = ("q", "set", "expect", "kind", "split", "note")


class Problems:
    def __init__(self):
        self.items = []

    def add(self, where, what):
        self.items.append("%s: %s" % (where, what))


def nbytes(s):
    return len(s.encode("utf-8"))


def read_jsonl(path, problems):
    """Returns [(line number, object)] for the lines that parse."""
    rows = []
    name = os.path.basename(path)
    try:
        fp = open(path, encoding="utf-8")
    except OSError as e:
        problems.add(name, "cannot open: %s" % e)
        return rows
    with fp:
        for n, line in enumerate(fp, 1):
            if not line.strip():
                problems.add("%s:%d" % (name, n), "empty line")
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                problems.add("%s:%d" % (name, n), "not JSON: %s" % e)
                continue
            if not isinstance(obj, dict):
                problems.add("%s:%d" % (name, n), "not a JSON object")
                continue
            rows.append((n, obj))
    return rows


def demo_ids(problems):
    """{id: "faq" | "article"} for the demo help center in demo.c."""
    try:
        src = open(DEMO_C, encoding="utf-8").read()
    except OSError as e:
        problems.add("demo.c", "cannot open: %s" % e)
        return {}
    ids = {}
    for kind, var in (("faq", "faqs"), ("article", "articles")):
        m = re.search(r"\b%s\[\]\s*=\s*\{(.*?)\n\};" % var, src, re.S)
        if not m:
            problems.add("demo.c", "no %s[] table found" % var)
            continue
        found = re.findall(r'\{\s*"([a-z0-9-]+)"\s*,', m.group(1))
        if not found:
            problems.add("demo.c", "no ids in %s[]" % var)
        for i in found:
            ids[i] = kind
    return ids


def check_text(where, field, value, limit, problems, required=True):
    if not isinstance(value, str):
        problems.add(where, "%s is not a string" % field)
        return
    if required and not value.strip():
        problems.add(where, "%s is empty" % field)
    if nbytes(value) > limit:
        problems.add(where, "%s is %d bytes (limit %d)" % (field, nbytes(value), limit))


def check_list(where, field, value, max_n, max_each, problems):
    if not isinstance(value, list):
        problems.add(where, "%s is not a list" % field)
        return
    if len(value) > max_n:
        problems.add(where, "%s has %d entries (limit %d)" % (field, len(value), max_n))
    for v in value:
        check_text(where, field + " entry", v, max_each, problems)
    if len(set(value)) != len(value):
        problems.add(where, "%s has duplicates" % field)


def check_id(where, i, seen, problems):
    if not isinstance(i, str) or not ID_RE.match(i):
        problems.add(where, "id %r is not hc- followed by [a-z0-9-]" % (i,))
        return
    if nbytes(i) > MAX_ID:
        problems.add(where, "id %s is longer than %d bytes" % (i, MAX_ID))
    if i in seen:
        problems.add(where, "id %s used again (first at %s)" % (i, seen[i]))
    else:
        seen[i] = where


def check_locale(where, locale, text, problems):
    if locale not in LOCALES:
        problems.add(where, "locale %r is not one of %s" % (locale, "/".join(LOCALES)))
    elif locale == "zh" and not CJK_RE.search(text):
        problems.add(where, "locale zh but no Chinese text")
    elif locale == "en" and len(CJK_RE.findall(text)) > len(text) // 20:
        problems.add(where, "locale en but mostly Chinese text")


def check_docs(problems):
    """Returns ({id: kind}, {id: locale}, stats) for the large help center."""
    seen, kinds, locales = {}, {}, {}
    stats = collections.Counter()
    for n, f in read_jsonl(os.path.join(HERE, "helpcenter_faqs.jsonl"), problems):
        where = "helpcenter_faqs.jsonl:%d" % n
        missing = [k for k in FAQ_FIELDS if k not in f]
        if missing:
            problems.add(where, "missing " + ", ".join(missing))
            continue
        check_id(where, f["id"], seen, problems)
        check_text(where, "question", f["question"], MAX_FAQ_QUESTION, problems)
        check_text(where, "answer", f["answer"], MAX_FAQ_ANSWER, problems)
        check_list(where, "alternate_questions", f["alternate_questions"], MAX_ALTERNATES, MAX_ALTERNATE, problems)
        check_locale(where, f["locale"], f["question"] + f["answer"], problems)
        kinds[f["id"]] = "faq"
        locales[f["id"]] = f["locale"]
        stats[("faq", f["locale"])] += 1
        if f["alternate_questions"]:
            stats[("faq-with-alternates", f["locale"])] += 1
    for n, a in read_jsonl(os.path.join(HERE, "helpcenter_articles.jsonl"), problems):
        where = "helpcenter_articles.jsonl:%d" % n
        missing = [k for k in ARTICLE_FIELDS if k not in a]
        if missing:
            problems.add(where, "missing " + ", ".join(missing))
            continue
        check_id(where, a["id"], seen, problems)
        check_text(where, "title", a["title"], MAX_TITLE, problems)
        check_text(where, "body", a["body"], MAX_BODY, problems)
        check_list(where, "tags", a["tags"], MAX_TAGS, MAX_TAG, problems)
        if "alternate_questions" in a:
            check_list(where, "alternate_questions", a["alternate_questions"], MAX_ALTERNATES, MAX_ALTERNATE,
                       problems)
        check_locale(where, a["locale"], a["title"] + a["body"], problems)
        sentences = len([s for s in re.split(r"[.!?。！？]+(?:\s|$)|[。！？]", a["body"]) if s.strip()])
        if not 2 <= sentences <= 6:
            problems.add(where, "body has %d sentences (2 to 6 wanted)" % sentences)
        kinds[a["id"]] = "article"
        locales[a["id"]] = a["locale"]
        stats[("article", a["locale"])] += 1
    return kinds, locales, stats


def question_lang(text):
    """zh, en, mixed, or None for text with no letters (digits, punctuation)."""
    cjk, latin = bool(CJK_RE.search(text)), bool(LATIN_RE.search(text))
    if not cjk and not latin:
        return None
    return "mixed" if cjk and latin else "zh" if cjk else "en"


def check_questions(demo, large, problems):
    rows = []
    seen = {}
    for n, q in read_jsonl(os.path.join(HERE, "questions.jsonl"), problems):
        where = "questions.jsonl:%d" % n
        missing = [k for k in QUESTION_FIELDS if k not in q]
        if missing:
            problems.add(where, "missing " + ", ".join(missing))
            continue
        text, st, exp, kind = q["q"], q["set"], q["expect"], q["kind"]
        check_text(where, "q", text, MAX_ROUTE_TEXT, problems)
        if not isinstance(text, str):
            continue
        if st not in SETS:
            problems.add(where, "set %r is not demo or large" % (st,))
            continue
        if q["split"] not in SPLITS:
            problems.add(where, "split %r is not dev or test" % (q["split"],))
        if not isinstance(q["note"], str) or not q["note"]:
            problems.add(where, "note is empty")
        key = (st, text.strip().lower())
        if key in seen:
            problems.add(where, "same question as %s in set %s" % (seen[key], st))
        seen[key] = where
        docs = demo if st == "demo" else large
        if exp in CLASSES:
            if kind != "":
                problems.add(where, "kind must be empty when expect is %s" % exp)
        elif exp in docs:
            if kind != docs[exp]:
                problems.add(where, "kind %r but %s is a %s" % (kind, exp, docs[exp]))
        else:
            other = large if st == "demo" else demo
            hint = " (it belongs to the other set)" if exp in other else ""
            problems.add(where, "expect %r is not a %s document%s" % (exp, st, hint))
        found = question_lang(text)
        lang = q.get("lang", found or "en")
        if lang not in LANGS:
            problems.add(where, "lang %r is not zh, en or mixed" % (lang,))
        elif found is None:
            pass  # digits or punctuation only: any language label fits
        elif lang != "mixed" and found == ("en" if lang == "zh" else "zh"):
            problems.add(where, "lang %s does not match the text" % lang)
        elif lang == "mixed" and found != "mixed":
            problems.add(where, "lang mixed but the text is not")
        rows.append(dict(q, lang=lang))
    return rows


def table(title, rows, cols, counter):
    """Prints a small table: rows x cols with totals."""
    head = [title] + list(cols) + ["total"]
    lines = []
    for r in rows:
        vals = [counter[(r, c)] for c in cols]
        lines.append([str(r)] + [str(v) for v in vals] + [str(sum(vals))])
    tot = [sum(counter[(r, c)] for r in rows) for c in cols]
    lines.append(["total"] + [str(v) for v in tot] + [str(sum(tot))])
    w = [max(len(head[i]), *(len(l[i]) for l in lines)) for i in range(len(head))]
    print("| " + " | ".join(h.ljust(w[i]) for i, h in enumerate(head)) + " |")
    print("|" + "|".join("-" * (x + 2) for x in w) + "|")
    for l in lines:
        print("| " + " | ".join(v.ljust(w[i]) for i, v in enumerate(l)) + " |")
    print()


def label_class(q):
    return q["expect"] if q["expect"] in CLASSES else q["kind"]


def main():
    quiet = "--quiet" in sys.argv[1:]
    problems = Problems()
    demo = demo_ids(problems)
    large, _, doc_stats = check_docs(problems)
    rows = check_questions(demo, large, problems)

    # Every category should be split about evenly between dev and test.
    by_cat = collections.Counter((q["set"], q["note"], q["split"]) for q in rows)
    for st, note in sorted({(q["set"], q["note"]) for q in rows}):
        d, t = by_cat[(st, note, "dev")], by_cat[(st, note, "test")]
        if abs(d - t) > max(1, (d + t) // 5):
            problems.add("questions.jsonl", "set %s note %s: %d dev vs %d test" % (st, note, d, t))

    if not quiet:
        print("Help center (large):")
        table("kind", ["faq", "article"], LOCALES, doc_stats)
        print("FAQs with alternate questions: %s\n" % ", ".join(
            "%s %d of %d" % (l, doc_stats[("faq-with-alternates", l)], doc_stats[("faq", l)]) for l in LOCALES))
        print("Demo help center (server/ops/demo.c): %d FAQs, %d articles\n"
              % (sum(1 for k in demo.values() if k == "faq"), sum(1 for k in demo.values() if k == "article")))
        c = collections.Counter()
        for q in rows:
            c[(q["set"], q["lang"])] += 1
        print("Questions by set and language:")
        table("set", SETS, LANGS, c)
        c = collections.Counter()
        for q in rows:
            c[(q["set"], label_class(q))] += 1
        print("Questions by set and label:")
        table("set", SETS, ["faq", "article", "none", "smalltalk", "human"], c)
        c = collections.Counter()
        for q in rows:
            c[(q["note"], q["split"])] += 1
        print("Questions by category and split:")
        notes = sorted({q["note"] for q in rows}, key=lambda n: (-sum(c[(n, s)] for s in SPLITS), n))
        table("note", notes, SPLITS, c)
        used = {q["expect"] for q in rows if q["set"] == "large"}
        print("Large help center documents named by at least one question: %d of %d\n" % (len(used & set(large)),
                                                                                          len(large)))
    for p in problems.items:
        print("PROBLEM " + p)
    if problems.items:
        print("%d problem(s)" % len(problems.items))
        return 1
    print("OK: %d documents, %d questions" % (len(large), len(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
