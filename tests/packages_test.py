#!/usr/bin/python3
"""packages_test: every system file that helpwire's build, tests and scripts
use comes from a Debian package that bazel/setup.sh installs.

A fresh Debian machine once failed `bash bazel/setup.sh --run` because the
build reads google/protobuf/descriptor.proto from the system's include
directory and setup.sh did not install libprotobuf-dev: the developers' machines had it for another
reason. This test makes that class of bug visible on any machine: it finds
the system files the project uses and asks dpkg which package owns each
one; the owner must be a package `bash bazel/setup.sh --list-packages`
names, or one of Priority required or important (always installed).

One test case per way a system file gets used, each listing every offender
with the file and line that names it and the owning package:

  paths      absolute paths (/usr/..., /etc/..., ...) written in the
             project's build files, scripts, sources and JSON;
  headers    every #include of the C sources, resolved as gcc resolves it,
             with all the system headers it pulls in (gcc -M);
  libraries  every -lNAME (and -fsanitize=... runtime) in BUILD files and
             .bazelrc, resolved with gcc -print-file-name;
  tools      the commands that shell scripts, Bazel genrules and Python
             files run (a small shell lexer finds words in command
             position), resolved over /usr/bin:/bin:/usr/sbin:/sbin;
  modules    the non-standard Python modules the Python files import, as
             Debian's /usr/bin/python3 finds them;
  apt        every package setup.sh names exists in apt (catches typos).

It runs from the source tree with Debian's Python, outside Bazel (Bazel's
sandbox would hide the system): /usr/bin/python3 tests/packages_test.py.
tests/run.sh runs it first and counts its cases.
"""
import ast
import bisect
import concurrent.futures
import glob
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import hwtest  # noqa: E402

# Where a command is looked up (not the caller's PATH: a locally built or
# pyenv-shimmed tool must not hide a missing package).
TOOL_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"

# Owners of these priorities are on every Debian system.
BASE_PRIORITIES = {"required", "important"}

# Flags the build compiles C with (.bazelrc), so headers resolve the same way.
GCC_FLAGS = ["-std=gnu11", "-D_GNU_SOURCE"]

# Words the tools heuristic takes for commands but that are not (keep tiny,
# one reason each). Empty for now: add an entry only with its reason.
NOT_TOOLS = {
    # "word": "why it is not a command",
    "bench_opt_build": "a shell function of bench/lib.sh, which the benchmark scripts source",
}

# Commands that run their arguments as a command (after options and numbers).
WRAPPERS = {"exec", "command", "env", "nice", "nohup", "timeout", "taskset", "sudo",
            "xargs", "stdbuf", "setsid", "chrt", "ionice", "time"}

SKIP_DIRS = {".git", "node_modules", "__pycache__"}
SOURCE_EXTS = (".bzl", ".sh", ".py", ".c", ".h", ".js", ".json")
BUILD_NAMES = {"BUILD", "BUILD.bazel", "WORKSPACE", "WORKSPACE.bazel"}


# ---------------------------------------------------------------- project files

def _shebang(path):
    try:
        with open(path, "rb") as f:
            first = f.readline(200)
    except OSError:
        return ""
    return first.decode("utf-8", "replace").strip() if first.startswith(b"#!") else ""


def project_files():
    """Relative paths of the project's files: build files, scripts, sources,
    JSON (not package-lock.json); no .git, node_modules or bazel-* output."""
    out = []
    for top, dirs, files in os.walk(ROOT):
        rel_top = os.path.relpath(top, ROOT)
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and
                         not (rel_top == "." and d.startswith("bazel-")) and
                         not os.path.islink(os.path.join(top, d)))
        for name in sorted(files):
            rel = os.path.normpath(os.path.join(rel_top, name))
            if name == "package-lock.json":
                continue
            if (name in BUILD_NAMES or name == ".bazelrc" or name.endswith(SOURCE_EXTS) or
                    re.search(r"\b(ba|da)?sh\b|python", _shebang(os.path.join(ROOT, rel)))):
                out.append(rel)
    return out


def read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8", errors="replace") as f:
        return f.read()


def is_shell(rel):
    return rel.endswith(".sh") or bool(re.search(r"\b(ba|da)?sh\b", _shebang(os.path.join(ROOT, rel))))


def is_python(rel):
    return rel.endswith(".py") or "python" in _shebang(os.path.join(ROOT, rel))


def is_starlark(rel):
    return os.path.basename(rel) in BUILD_NAMES or rel.endswith(".bzl")


class LineIndex:
    """Line numbers of offsets in a text."""

    def __init__(self, text, first=1):
        self.starts = [m.start() for m in re.finditer("\n", text)]
        self.first = first

    def line(self, pos):
        return self.first + bisect.bisect_left(self.starts, pos)


def starlark_tree(rel):
    """The AST of a BUILD/.bzl/WORKSPACE file (Starlark parses as Python).
    A file that does not parse fails the test, naming it, rather than
    escaping the check."""
    try:
        return ast.parse(read(rel), rel)
    except SyntaxError as e:
        raise AssertionError("%s does not parse as Starlark: %s" % (rel, e))


def string_pieces(node):
    """The string constants of an expression, in source order (for a genrule's
    cmd = "a" + "b".format(...))."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    pieces = []
    for child in ast.iter_child_nodes(node):
        pieces.extend(string_pieces(child))
    return pieces


# ---------------------------------------------------------------- dpkg

class Dpkg:
    """dpkg -S and dpkg-query -W, batched and cached for the whole run."""

    def __init__(self):
        self.owner_cache = {}      # path -> frozenset of package names
        self.priority_cache = {}   # package -> priority ("" if not installed)
        self._listed = None

    @staticmethod
    def _aliases(path):
        """The path as written, its /usr-merged twin (/bin/x <-> /usr/bin/x; dpkg
        knows only one of them), its real path and that one's twin."""
        out = []
        for p in (os.path.normpath(path), os.path.realpath(path)):
            for q in (p, re.sub(r"^/usr/(bin|sbin|lib\w*)/", r"/\1/", p) if p.startswith("/usr/")
                      else re.sub(r"^/(bin|sbin|lib\w*)/", r"/usr/\1/", p)):
                if q not in out:
                    out.append(q)
        return out

    def _search(self, paths):
        todo = sorted({p for p in paths if p not in self.owner_cache})
        for i in range(0, len(todo), 500):
            chunk = todo[i:i + 500]
            # dpkg -S takes glob patterns; escape the few glob characters.
            pats = [re.sub(r"([*?\[\\])", r"\\\1", p) for p in chunk]
            r = subprocess.run(["dpkg", "-S"] + pats, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
            found = {}
            for line in r.stdout.splitlines():
                if line.startswith("diversion by") or ": " not in line:
                    continue
                pkgs, path = line.split(": ", 1)
                found.setdefault(path, set()).update(p.strip().split(":")[0] for p in pkgs.split(","))
            for p in chunk:
                self.owner_cache[p] = frozenset(found.get(p, ()))

    def owners(self, paths):
        """{path: (packages, the alias dpkg knew)} for existing system paths;
        packages is empty when no package owns any alias."""
        aliases = {p: self._aliases(p) for p in paths}
        self._search([a for al in aliases.values() for a in al])
        self.priorities({pkg for al in aliases.values() for a in al for pkg in self.owner_cache[a]})
        out = {}
        for p, al in aliases.items():
            out[p] = (frozenset(), p)
            for a in al:
                if self.owner_cache[a]:
                    out[p] = (self.owner_cache[a], a)
                    break
        return out

    def priorities(self, pkgs):
        todo = sorted(p for p in set(pkgs) if p not in self.priority_cache)
        if todo:
            r = subprocess.run(["dpkg-query", "-W", "-f=${Package}\t${Priority}\n"] + todo,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            for line in r.stdout.splitlines():
                name, _, prio = line.partition("\t")
                self.priority_cache[name.split(":")[0]] = prio.strip()
            for p in todo:
                self.priority_cache.setdefault(p, "")
        return {p: self.priority_cache[p] for p in pkgs}

    def listed(self):
        """The packages `bash bazel/setup.sh --list-packages` names."""
        if self._listed is None:
            r = subprocess.run(["bash", os.path.join(ROOT, "bazel", "setup.sh"), "--list-packages"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
            if r.returncode != 0:
                raise AssertionError("bash bazel/setup.sh --list-packages failed: " + r.stderr.strip())
            self._listed = [w for w in r.stdout.split() if w]
        return self._listed

    def acceptable(self, pkgs):
        """True when one of the owners is named by setup.sh or always installed."""
        listed = set(self.listed())
        prios = self.priorities(pkgs)
        return any(p in listed or prios[p] in BASE_PRIORITIES for p in pkgs)


DPKG = Dpkg()


class Offenders:
    """Collects (what, system file, owners) with the sites that name them and
    formats the failure message."""

    def __init__(self):
        self.sites = {}   # (what, path, owners) -> [site, ...]

    def add(self, what, path, owners, site):
        self.sites.setdefault((what, path, tuple(sorted(owners))), []).append(site)

    def message(self, title):
        lines = [title]
        missing = set()
        for (what, path, owners), sites in sorted(self.sites.items(), key=lambda kv: kv[1][0]):
            shown = ", ".join(sites[:4]) + (" (+%d more)" % (len(sites) - 4) if len(sites) > 4 else "")
            owner = ", ".join(owners) if owners else "no Debian package"
            target = path if what == path else "%s -> %s" % (what, path)
            lines.append("  %s: %s (%s)" % (shown, target, owner))
            missing.update(owners)
        lines.append("add to bazel/setup.sh (PACKAGES, or BENCH_PACKAGES if only bench/ needs it): " +
                     (" ".join(sorted(missing)) or "(a package that provides the unowned files)"))
        return "\n".join(lines)

    def __bool__(self):
        return bool(self.sites)


def check(what_path_sites):
    """what_path_sites: [(what, system path, site)]. Returns the Offenders:
    paths whose owners are neither named by setup.sh nor always installed."""
    owners = DPKG.owners({p for _, p, _ in what_path_sites})
    bad = Offenders()
    for what, path, site in what_path_sites:
        pkgs, _ = owners[path]
        if not pkgs or not DPKG.acceptable(pkgs):
            bad.add(what, path, pkgs, site)
    return bad


# ---------------------------------------------------------------- shell lexer

_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=")
_SPECIAL_PARAMS = set("@*#?$!-0123456789")


def _skip_dq(src, i):
    """src[i] == '"': the index after the closing quote (nested $(...) aware)."""
    i += 1
    while i < len(src) and src[i] != '"':
        if src[i] == "\\":
            i += 2
        elif src.startswith("$(", i):
            i = _match_paren(src, i + 1) + 1
        elif src[i] == "`":
            j = src.find("`", i + 1)
            i = len(src) if j < 0 else j + 1
        else:
            i += 1
    return i + 1


def _match_paren(src, i):
    """src[i] == '(': the index of its ')' (quotes, comments, ${...} aware)."""
    depth = 0
    n = len(src)
    while i < n:
        c = src[i]
        if c == "\\":
            i += 2
            continue
        if c == "'":
            j = src.find("'", i + 1)
            i = n if j < 0 else j + 1
            continue
        if c == '"':
            i = _skip_dq(src, i)
            continue
        if c == "#" and (i == 0 or src[i - 1] in " \t\n("):
            j = src.find("\n", i)
            i = n if j < 0 else j
            continue
        if src.startswith("${", i):
            j = src.find("}", i)
            i = n if j < 0 else j + 1
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return n


class _Word:
    __slots__ = ("text", "raw", "line", "plain")

    def __init__(self, line):
        self.text, self.raw, self.line, self.plain = "", "", line, True


def lex_shell(src, first_line=1):
    """Splits shell source into token lists: the top-level one first, then
    one per command substitution ($(...), `...`, <(...)), recursively.
    Tokens are ("w", _Word), ("op", text, line) and ("redir", text, line);
    comments and here-document bodies are dropped. A word is plain when it
    has no expansion ($..., `...`); its text has the quotes removed."""
    lines = LineIndex(src, first_line)
    tokens, subs = [], []
    heredocs = []
    word = None
    i, n = 0, len(src)

    def flush():
        nonlocal word
        if word is not None:
            tokens.append(("w", word))
            word = None

    def cur(pos):
        nonlocal word
        if word is None:
            word = _Word(lines.line(pos))
        return word

    def substitute(start, end):
        """Lex src[start:end] (the inside of a substitution) on its own."""
        subs.extend(lex_shell(src[start:end], lines.line(start)))

    while i < n:
        c = src[i]
        if c == "\n":
            flush()
            tokens.append(("op", "\n", lines.line(i)))
            i += 1
            for delim, strip_tabs in heredocs:   # skip here-document bodies
                while i < n:
                    j = src.find("\n", i)
                    j = n if j < 0 else j
                    body_line = src[i:j]
                    i = j + 1
                    if (body_line.lstrip("\t") if strip_tabs else body_line) == delim:
                        break
            heredocs = []
        elif c in " \t":
            flush()
            i += 1
        elif c == "\\":
            if src.startswith("\\\n", i):
                i += 2
            else:
                w = cur(i)
                w.text += src[i + 1:i + 2]
                w.raw += src[i:i + 2]
                i += 2
        elif c == "#" and word is None:
            j = src.find("\n", i)
            i = n if j < 0 else j
        elif c == "'":
            j = src.find("'", i + 1)
            j = n if j < 0 else j
            w = cur(i)
            w.text += src[i + 1:j]
            w.raw += src[i:j + 1]
            i = j + 1
        elif c == '"':
            w = cur(i)
            j = _skip_dq(src, i)
            k = i + 1
            while k < j - 1:               # substitutions inside the quotes
                if src[k] == "\\":
                    k += 2
                elif src.startswith("$((", k):
                    k = _match_paren(src, k + 1) + 1
                    w.plain = False
                elif src.startswith("$(", k):
                    e = _match_paren(src, k + 1)
                    substitute(k + 2, e)
                    k = e + 1
                    w.plain = False
                elif src[k] in "$`":
                    w.plain = False
                    k += 1
                else:
                    k += 1
            w.text += src[i + 1:j - 1]
            w.raw += src[i:j]
            i = j
        elif c == "$":
            w = cur(i)
            w.plain = False
            if src.startswith("$((", i):
                e = _match_paren(src, i + 1)
            elif src.startswith("$(", i):
                e = _match_paren(src, i + 1)
                substitute(i + 2, e)
            elif src.startswith("${", i):
                e = i + 2                     # ${X:-$(cmd)}: lex the $(cmd)
                while e < n and src[e] != "}":
                    if src.startswith("$(", e) and not src.startswith("$((", e):
                        close = _match_paren(src, e + 1)
                        substitute(e + 2, close)
                        e = close + 1
                    elif src[e] in "'\"":
                        close = src.find(src[e], e + 1)
                        e = n if close < 0 else close + 1
                    else:
                        e += 1
                e = min(e, n - 1)
            elif i + 1 < n and src[i + 1] in _SPECIAL_PARAMS:
                e = i + 1
            else:
                e = i
            w.text += src[i:e + 1]
            w.raw += src[i:e + 1]
            i = e + 1
        elif c == "`":
            j = src.find("`", i + 1)
            j = n if j < 0 else j
            substitute(i + 1, j)
            w = cur(i)
            w.plain = False
            w.raw += src[i:j + 1]
            i = j + 1
        elif c in "<>" and src.startswith("(", i + 1) and word is None:
            e = _match_paren(src, i + 1)      # process substitution
            substitute(i + 2, e)
            w = cur(i)
            w.plain = False
            w.raw += src[i:e + 1]
            i = e + 1
        elif c == "(" and word is not None and _ASSIGN.match(word.raw) and word.raw.endswith("="):
            e = _match_paren(src, i)          # NAME=( array literal )
            word.raw += src[i:e + 1]
            word.text += src[i:e + 1]
            i = e + 1
        elif c in "<>":
            if word is not None and word.raw.isdigit():
                word = None                   # a file descriptor number (2>...)
            flush()
            m = re.match(r"<<<|<<-?|<>|<&|>&|>>|>\||<|>", src[i:])
            op = m.group(0)
            i += len(op)
            if op in ("<<", "<<-"):           # here-document: read its delimiter
                m = re.match(r"[ \t]*(['\"]?)([^\s'\";|&<>()]+)\1", src[i:])
                if m:
                    heredocs.append((m.group(2), op == "<<-"))
                    i += len(m.group(0))
            else:
                tokens.append(("redir", op, lines.line(i)))
        elif c in "|&;()":
            flush()
            m = re.match(r"\|\||\|&|\||&&|&>>|&>|&|;;&|;;|;&|;|\(|\)", src[i:])
            op = m.group(0)
            i += len(op)
            if op in ("&>", "&>>"):
                tokens.append(("redir", op, lines.line(i)))
            else:
                tokens.append(("op", ";;" if op.startswith(";;") or op == ";&" else op, lines.line(i)))
        else:
            w = cur(i)
            w.text += c
            w.raw += c
            i += 1
    flush()
    return [tokens] + subs


_BASH = None


def bash_builtins():
    """Bash's builtins and reserved words (compgen -b -k)."""
    global _BASH
    if _BASH is None:
        r = subprocess.run(["bash", "-c", "compgen -b -k"], stdout=subprocess.PIPE, text=True)
        _BASH = set(r.stdout.split())
    return _BASH


_OPENERS = {"if", "then", "else", "elif", "do", "while", "until", "!", "{", "time"}
_CLOSERS = {"fi", "done", "esac", "}"}


def _shell_pass(tokens, wrappers, wrapper_vars):
    """One walk over a token list: yields ("run"|"probe"|"func"|"wrapfunc"|"assign", ...)."""
    cmdpos = True
    mode = "normal"            # normal, case_subject, case_pattern, for_words, dbracket
    case_depth = 0
    funcs = []                 # [(name, brace depth at definition)]
    depth = 0
    i = 0
    while i < len(tokens):
        kind = tokens[i][0]
        if kind == "op":
            op = tokens[i][1]
            if mode == "case_pattern":
                if op == ")":
                    mode, cmdpos = "normal", True
            elif mode == "for_words":
                if op in (";", "\n"):
                    mode, cmdpos = "normal", True
            elif mode == "normal":
                if op == ";;" and case_depth:
                    mode = "case_pattern"
                cmdpos = True
            i += 1
            continue
        if kind == "redir":
            i += 2                 # the redirection and its target
            continue
        w = tokens[i][1]
        i += 1
        if mode == "case_subject":
            if w.text == "in":
                mode = "case_pattern"
            continue
        if mode == "case_pattern":
            if w.text == "esac" and w.plain:
                case_depth -= 1
                mode, cmdpos = "normal", False
            continue
        if mode == "for_words":
            continue
        if mode == "dbracket":
            if w.text == "]]":
                mode, cmdpos = "normal", False
            continue
        if not cmdpos:
            continue
        if _ASSIGN.match(w.raw):                      # NAME=value cmd ...
            name = w.raw.split("=", 1)[0].rstrip("+")
            yield ("assign", name, w.text.split("=", 1)[1] if w.plain else None)
            continue
        if w.plain:
            t = w.text
            if t == "case":
                mode, case_depth = "case_subject", case_depth + 1
                continue
            if t == "esac" and case_depth:
                case_depth -= 1
                cmdpos = False
                continue
            if t in ("for", "select"):
                mode = "for_words"
                continue
            if t == "[[":
                mode = "dbracket"
                continue
            if t == "function" and i < len(tokens) and tokens[i][0] == "w":
                funcs.append((tokens[i][1].text, depth))
                yield ("func", tokens[i][1].text)
                i += 1
                continue
            if t == "{":
                depth += 1
            if t == "}":
                depth -= 1
                while funcs and funcs[-1][1] >= depth:
                    funcs.pop()
            if t in _OPENERS:
                continue
            if t in _CLOSERS:
                cmdpos = False
                continue
            # NAME() { ... }: a function definition
            if (i + 1 < len(tokens) and tokens[i][:2] == ("op", "(") and tokens[i + 1][:2] == ("op", ")")):
                funcs.append((t, depth))
                yield ("func", t)
                i += 2
                continue
        cmdpos = False
        if w.raw in ('"$@"', "$@"):
            for f, _ in funcs:
                yield ("wrapfunc", f)
            continue
        var = re.fullmatch(r'"?\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?"?', w.raw)
        is_wrapper = (w.plain and w.text in wrappers) or (var and var.group(1) in wrapper_vars)
        if w.plain:
            yield ("run", w.text, w.line)
        if not is_wrapper:
            continue
        # A wrapper runs its first word that is not an option, a number, an
        # assignment or an array of words ("${pin[@]}"); `command -v X` probes X.
        probe = w.plain and w.text == "command" and i < len(tokens) and \
            tokens[i][0] == "w" and tokens[i][1].text in ("-v", "-V")
        while i < len(tokens) and tokens[i][0] != "op":
            if tokens[i][0] == "redir":
                i += 2
                continue
            a = tokens[i][1]
            if a.plain and (a.text.startswith("-") or re.fullmatch(r"[\d.]+[smhd]?", a.text) or
                            _ASSIGN.match(a.raw)):
                i += 1
                continue
            if re.fullmatch(r'"?\$(\{[A-Za-z_][A-Za-z0-9_]*\[@\]\}|@)"?', a.raw):
                i += 1
                continue
            if a.plain:
                yield ("probe" if probe else "run", a.text, a.line)
                if a.text in wrappers and not probe:
                    i += 1
                    continue
            break


def shell_commands(src, first_line=1):
    """[(line, name, kind)]: the commands a shell script runs ("run") or
    looks up with `command -v` ("probe"), without builtins, reserved words
    and the script's own functions."""
    seqs = lex_shell(src, first_line)
    funcs, wrapfuncs, assigns = set(), set(), {}
    for seq in seqs:                         # pass 1: functions and variables
        for ev in _shell_pass(seq, WRAPPERS, set()):
            if ev[0] == "func":
                funcs.add(ev[1])
            elif ev[0] == "wrapfunc":
                wrapfuncs.add(ev[1])
            elif ev[0] == "assign":
                assigns.setdefault(ev[1], set()).add(ev[2])
    # A variable only ever set to a wrapper or nothing ($SUDO) is a wrapper.
    wrapper_vars = {v for v, vals in assigns.items()
                    if vals <= WRAPPERS | {""} and vals & WRAPPERS}
    out = []
    builtins = bash_builtins()
    for seq in seqs:                         # pass 2: the commands
        for ev in _shell_pass(seq, WRAPPERS | wrapfuncs, wrapper_vars):
            if ev[0] in ("run", "probe"):
                name = ev[1]
                if name in builtins or name in funcs or "/" in name or not re.fullmatch(r"[\w.+-]+", name):
                    continue
                out.append((ev[2], name, ev[0]))
    return out


def genrule_shell(src):
    """A genrule cmd as plain shell: Make variables ($(SRCS), $@, $(location x))
    become expansions, $$ becomes $."""
    src = src.replace("$$", "\0")
    src = re.sub(r"\$\((?:location|locations|execpath|execpaths|rootpath|rootpaths)\s[^)]*\)|"
                 r"\$\([A-Z_]+\)|\$[@<]", "$MAKEVAR", src)
    return src.replace("\0", "$")


def python_commands(tree):
    """[(line, name, kind)]: the first element of a literal argument list
    given to subprocess.* / os.exec*p ("run"), and shutil.which("X") ("probe")."""
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        mod = node.func.value.id if isinstance(node.func.value, ast.Name) else ""
        attr = node.func.attr
        if not node.args:
            continue
        arg = node.args[0]
        if mod == "shutil" and attr == "which":
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                out.append((node.lineno, arg.value, "probe"))
            continue
        if not ((mod == "subprocess" and attr in ("run", "Popen", "call", "check_call", "check_output")) or
                (mod == "os" and attr.startswith(("execv", "execl", "spawn")))):
            continue
        if mod == "os" and attr.startswith("spawn") and len(node.args) > 1:
            arg = node.args[1]
        while isinstance(arg, ast.BinOp):         # ["openssl"] + list(args)
            arg = arg.left
        if isinstance(arg, (ast.List, ast.Tuple)) and arg.elts:
            arg = arg.elts[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and "/" not in arg.value:
            out.append((node.lineno, arg.value, "run"))
    return out


# ---------------------------------------------------------------- the checks

class PackagesTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.files = project_files()

    def report(self, bad, title, problems=(), problems_title=""):
        """Fails with the offenders and the other problems found, if any."""
        msg = []
        if bad:
            msg.append(bad.message(title))
        if problems:
            msg.append(problems_title + "\n" + "\n".join(sorted(problems)))
        if msg:
            self.fail("\n" + "\n".join(msg))

    # -- absolute paths
    PATH_RE = re.compile(r"(?:^|(?<=[\s\"'`=(:,\[{!])|(?<=-I)|(?<=-L))"
                         r"(/(?:usr|bin|sbin|lib|lib32|lib64|libx32|etc|opt|var)"
                         r"(?:/[^\s\"'`;:,()<>|&$*?{}\[\]\\]*)?)")

    def test_paths(self):
        """Absolute system paths named in the project's files."""
        found = []
        for rel in self.files:
            text = read(rel)
            lines = LineIndex(text)
            for m in self.PATH_RE.finditer(text):
                path = m.group(1).rstrip(".")
                if len(path) > 1 and os.path.lexists(path):
                    found.append((path, path, "%s:%d" % (rel, lines.line(m.start(1)))))
        self.assertTrue(found, "no system path found at all: the scan is broken")
        self.report(check(found), "system paths from packages bazel/setup.sh does not install:")

    # -- headers
    def _generated_headers(self):
        """What Bazel generates: protoc-c's .pb-c.h for every .proto (relative to
        its package, which is an include root) and every genrule out."""
        gen = set()
        for rel in self.files:
            if is_starlark(rel):
                tree = starlark_tree(rel)
                pkg = os.path.dirname(rel)
                for node in ast.walk(tree) if tree else ():
                    if isinstance(node, ast.keyword) and node.arg in ("out", "outs"):
                        for s in string_pieces(node.value):
                            gen.update({s, os.path.join(pkg, s)})
        for top, dirs, files in os.walk(ROOT):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith("bazel-")]
            for name in files:
                if name.endswith(".proto"):
                    rel = os.path.relpath(os.path.join(top, name), ROOT)
                    pkg = os.path.dirname(rel)
                    while pkg and not os.path.exists(os.path.join(ROOT, pkg, "BUILD")):
                        pkg = os.path.dirname(pkg)
                    inpkg = os.path.relpath(rel, pkg or ".")[:-len(".proto")] + ".pb-c.h"
                    gen.update({inpkg, os.path.join(pkg, inpkg)})
        return gen

    @staticmethod
    def _gcc_search_dirs():
        r = subprocess.run(["gcc"] + GCC_FLAGS + ["-xc", "-E", "-v", "-"], input="", text=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        out = r.stderr.split("#include <...> search starts here:")[1].split("End of search list.")[0]
        return [d.strip() for d in out.splitlines() if d.strip()]

    @staticmethod
    def _gcc_deps(name):
        """Every file gcc reads for `#include <name>` (gcc -M; -MG keeps going
        past headers it cannot find)."""
        r = subprocess.run(["gcc"] + GCC_FLAGS + ["-M", "-MG", "-xc", "-"], input="#include <%s>\n" % name,
                           text=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        deps = r.stdout.replace("\\\n", " ").split(":", 1)[-1].split()
        deps = [os.path.normpath(d) for d in deps if d.startswith("/")]
        # stdc-predef.h (read before every file) last: the header itself first
        return sorted(deps, key=lambda d: d.endswith("/stdc-predef.h"))

    def test_headers(self):
        """Every #include of the C sources, and the system headers it pulls in."""
        inc_re = re.compile(r'^[ \t]*#[ \t]*include[ \t]*([<"])([^>"]+)[>"]', re.M)
        sites = []                 # (kind, name, includer, line)
        for rel in self.files:
            if rel.endswith((".c", ".h")) or is_starlark(rel):
                text = read(rel)
                if is_starlark(rel):  # C written by genrules: echo '#include <stddef.h>'
                    text = re.sub(r"(?<=['\"])\s*(?=#include)", "\n", text)
                lines = LineIndex(text)
                for m in inc_re.finditer(text):
                    sites.append((m.group(1), m.group(2), rel, lines.line(m.start(2))))
        self.assertTrue(sites, "no #include found at all: the scan is broken")
        generated = self._generated_headers()
        project = set(self.files)
        dirs = self._gcc_search_dirs()

        def system(name):
            for d in dirs:
                if os.path.isfile(os.path.join(d, name)):
                    return os.path.normpath(os.path.join(d, name))
            return None

        def ours(kind, name, includer):
            if kind == '"' and os.path.isfile(os.path.join(ROOT, os.path.dirname(includer), name)):
                return True
            return (name in project or name in generated or
                    any(f.endswith("/" + name) for f in project | generated))

        unresolved = []
        todo = {}                  # header name -> [site]
        for kind, name, includer, line in sites:
            site = "%s:%d" % (includer, line)
            if kind == '"' and ours(kind, name, includer):
                continue           # "..." finds the project's files first
            if system(name):
                todo.setdefault(name, []).append(site)
            elif not ours(kind, name, includer):
                unresolved.append("  %s: #include %s%s%s: not found by gcc, not a project file, not generated by Bazel"
                                  % (site, kind, name, ">" if kind == "<" else '"'))
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            deps = dict(zip(todo, pool.map(self._gcc_deps, todo)))
        all_files = {d for ds in deps.values() for d in ds if not d.startswith(ROOT + "/")}
        owners = DPKG.owners(all_files)
        bad = Offenders()
        for name, sites_of in todo.items():
            per_pkg = {}           # the first offending file of each bad owner set
            for d in deps[name]:
                if d.startswith(ROOT + "/"):
                    continue
                pkgs, _ = owners[d]
                if not pkgs or not DPKG.acceptable(pkgs):
                    per_pkg.setdefault(pkgs, []).append(d)
            for pkgs, files in per_pkg.items():
                what = "#include <%s>" % name
                path = files[0] + (" (+%d more files)" % (len(files) - 1) if len(files) > 1 else "")
                for site in sites_of:
                    bad.add(what, path, pkgs, site)
        self.report(bad, "headers from packages bazel/setup.sh does not install:",
                    unresolved, "headers nobody provides:")

    # -- libraries
    SANITIZER_LIBS = {"address": "asan", "undefined": "ubsan", "thread": "tsan", "leak": "lsan"}

    def test_libraries(self):
        """Every -lNAME (and sanitizer runtime) the build links, by its file."""
        names = []                 # (library name, site)
        for rel in self.files:
            if is_starlark(rel):
                # string constants that are a whole flag: "-lgrpc", "-fsanitize=thread"
                tree = starlark_tree(rel)
                flags = [(n.value, n.lineno) for n in (ast.walk(tree) if tree else ())
                         if isinstance(n, ast.Constant) and isinstance(n.value, str)]
            elif os.path.basename(rel) == ".bazelrc":
                flags = [(m.group(1), k + 1) for k, l in enumerate(read(rel).splitlines())
                         for m in re.finditer(r"--linkopt[= ](\S+)", l.split("#")[0])]
            else:
                continue
            for flag, line in flags:
                site = "%s:%d" % (rel, line)
                m = re.fullmatch(r"-l([\w+.-]+)", flag)
                if m:
                    names.append((m.group(1), site))
                m = re.fullmatch(r"-fsanitize=([\w,]+)", flag)
                for san in m.group(1).split(",") if m else ():
                    if san in self.SANITIZER_LIBS:
                        names.append((self.SANITIZER_LIBS[san], site))
        self.assertTrue(names, "no -l flag found at all: the scan is broken")
        found, unresolved = [], []
        for lib in sorted({n for n, _ in names}):
            path = None
            for ext in (".so", ".a"):
                p = subprocess.run(["gcc", "-print-file-name=lib%s%s" % (lib, ext)],
                                   stdout=subprocess.PIPE, text=True).stdout.strip()
                if os.path.isabs(p):
                    path = os.path.normpath(p)
                    break
            for n, site in names:
                if n != lib:
                    continue
                if path:
                    found.append(("-l" + lib, path, site))
                else:
                    unresolved.append("  %s: -l%s: gcc finds neither lib%s.so nor lib%s.a" % (site, lib, lib, lib))
        self.report(check(found), "libraries from packages bazel/setup.sh does not install:",
                    unresolved, "libraries nobody provides:")

    # -- tools
    def _commands(self):
        """[(name, kind, site)] over shell scripts, genrule cmds, Python files
        and #!/usr/bin/env NAME lines."""
        out = []
        for rel in self.files:
            full = os.path.join(ROOT, rel)
            m = re.match(r"#!\s*/usr/bin/env\s+(?:-S\s+)?([\w.+-]+)", _shebang(full))
            if m:
                out.append((m.group(1), "run", "%s:1" % rel))
            if is_shell(rel):
                for line, name, kind in shell_commands(read(rel)):
                    out.append((name, kind, "%s:%d" % (rel, line)))
            elif is_starlark(rel):
                tree = starlark_tree(rel)
                for node in ast.walk(tree) if tree else ():
                    if isinstance(node, ast.keyword) and node.arg == "cmd":
                        cmd = genrule_shell("".join(string_pieces(node.value)))
                        for _, name, kind in shell_commands(cmd):
                            out.append((name, kind, "%s:%d" % (rel, node.value.lineno)))
            elif is_python(rel):
                try:
                    tree = ast.parse(read(rel), rel)
                except SyntaxError as e:
                    self.fail("%s does not parse: %s" % (rel, e))
                for line, name, kind in python_commands(tree):
                    out.append((name, kind, "%s:%d" % (rel, line)))
        return out

    def test_tools(self):
        """The commands the scripts, genrules and Python files run."""
        commands = [c for c in self._commands() if c[0] not in NOT_TOOLS]
        self.assertTrue(commands, "no command found at all: the scan is broken")
        # A tool looked up before use (command -v X, shutil.which("X")) anywhere
        # in the project is optional: its absence is noted, not an error.
        optional = {name for name, kind, _ in commands if kind == "probe"}
        found, missing, notes = [], [], set()
        for name, kind, site in commands:
            path = shutil.which(name, path=TOOL_PATH)
            if path:
                found.append((name, path, site))
            elif name in optional:
                notes.add(name)
            else:
                missing.append("  %s: %s: not found in %s (its package is not installed)" % (site, name, TOOL_PATH))
        if notes:
            print("note: optional tools not installed here, not checked: " + " ".join(sorted(notes)))
        self.report(check(found), "tools from packages bazel/setup.sh does not install:",
                    missing, "tools not installed (add their packages to bazel/setup.sh, or, if they are "
                    "not commands, to NOT_TOOLS in tests/packages_test.py with the reason):")

    # -- Python modules
    def test_python_modules(self):
        """Python modules outside the standard library, as /usr/bin/python3 finds them."""
        if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3"):
            self.skipTest("run with /usr/bin/python3 (the interpreter the tests use)")
        ours = set()
        for rel in self.files:
            if rel.endswith(".py"):
                ours.add(os.path.basename(rel)[:-3])
            ours.add(os.path.basename(os.path.dirname(rel)))
        # code protoc generates from proto/helpwire/v1/*.proto imports as
        # helpwire.v1.* (the example clients)
        for path in glob.glob(os.path.join(ROOT, "proto", "*", "**", "*.proto"), recursive=True):
            ours.add(os.path.relpath(path, ROOT).split(os.sep)[1])
        imports = []               # (module, site)
        for rel in self.files:
            if not is_python(rel):
                continue
            for node in ast.walk(ast.parse(read(rel), rel)):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in ours:
                        imports.append((name, "%s:%d" % (rel, node.lineno)))
        found, missing = [], []
        for name, site in imports:
            parts = name.split(".")
            spec = importlib.util.find_spec(parts[0])
            # a namespace package (google) says nothing: look one level down
            if spec and spec.origin in (None, "namespace") and len(parts) > 1:
                spec = importlib.util.find_spec(".".join(parts[:2]))
            if spec is None or not spec.origin or not os.path.isabs(spec.origin):
                missing.append("  %s: import %s" % (site, name))
            else:
                found.append(("import " + name, spec.origin, site))
        self.report(check(found), "Python modules from packages bazel/setup.sh does not install:",
                    missing, "Python modules /usr/bin/python3 does not find:")

    # -- the list itself
    def test_packages_exist(self):
        """Every package setup.sh names exists in apt (a typo fails here)."""
        if not glob.glob("/var/lib/apt/lists/*_Packages*"):
            self.skipTest("apt has no package lists (apt-get update)")
        names = DPKG.listed()
        self.assertTrue(names, "bash bazel/setup.sh --list-packages printed nothing")
        r = subprocess.run(["apt-cache", "show", "--no-all-versions"] + names,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        known = set(re.findall(r"^Package: (\S+)", r.stdout, re.M))
        unknown = [n for n in names if n not in known]
        dups = sorted({n for n in names if names.count(n) > 1})
        self.assertEqual(unknown, [], "bazel/setup.sh names packages apt does not know: " + " ".join(unknown))
        self.assertEqual(dups, [], "bazel/setup.sh names packages twice: " + " ".join(dups))


if __name__ == "__main__":
    hwtest.main()
