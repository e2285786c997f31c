"""layers_test: no dependency of the server points upward.

server/ is layered (docs/architecture.md): base at the bottom; store and
search on base; net on base; repl (replication) on store and base; domain
on all of those; ops beside domain on
base, store and search; web (the gRPC-Web gateway, a client of the server
over gRPC) on base; the wiring (//server: main.c, methods.c) on top.
The clients use base only. Bazel's visibility already refuses most upward
edges at build time; this test checks the rule itself, so that widening a
visibility list cannot quietly let one through, in two ways:

- the build graph: `bazel query deps(...)` of every target of a layer may
  reach only the layers it may use;
- the sources: every `#include "server/<layer>/..."` of a file in a layer
  names a layer it may use (a header reached through a transitive
  dependency would pass the build).

Run by tests/run.sh from the source tree (bazel query cannot run inside
bazel test). Prints the summary lines tests/run.sh counts.
"""
import os
import re
import subprocess
import sys
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import hwtest  # noqa: E402

# Each layer and the layers it may use (itself included).
ALLOWED = {
    "base": {"base"},
    "store": {"base", "store"},
    "search": {"base", "search"},
    "net": {"base", "net"},
    "repl": {"base", "store", "repl"},
    "domain": {"base", "store", "search", "net", "repl", "domain"},
    "ops": {"base", "store", "search", "ops"},
    "web": {"base", "web"},  # the gRPC-Web gateway: a gRPC client of the server
    "": {"base", "store", "search", "net", "repl", "domain", "ops", "web", ""},  # the wiring
    "clients": {"base"},
}
LAYERS = [l for l in ALLOWED if l not in ("", "clients")]


def layer_of_label(label):
    """'//server/net:health' -> 'net'; '//server:methods' -> ''; None when
    the label is not server code."""
    m = re.match(r"^//server(?:/([a-z_]+))?[:/]", label)
    if not m:
        return None
    return m.group(1) or ""


def layer_of_path(path):
    """'server/domain/rpc.c' -> 'domain'; 'server/main.c' -> ''; None outside."""
    parts = path.split("/")
    if parts[0] == "clients":
        return "clients"
    if parts[0] != "server":
        return None
    return parts[1] if len(parts) > 2 else ""


def upward(edges):
    """The (from layer, to label) pairs that break ALLOWED."""
    bad = []
    for frm, to in edges:
        to_layer = layer_of_label(to)
        if to_layer is not None and to_layer not in ALLOWED[frm]:
            bad.append((frm, to))
    return bad


def bazel_deps(pattern):
    out = subprocess.run(["bazel", "query", "--noshow_progress", "deps(%s)" % pattern],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise AssertionError("bazel query %s failed:\n%s" % (pattern, out.stderr[-2000:]))
    return [l.strip() for l in out.stdout.splitlines() if l.startswith("//")]


class Layers(unittest.TestCase):
    def test_the_rule_catches_an_upward_edge(self):
        # The checker itself: a store target reaching the domain, net
        # reaching the wiring, a client reaching net are all refused.
        self.assertEqual(upward([("store", "//server/domain:rpc"), ("net", "//server:methods"),
                                 ("clients", "//server/net:net"), ("domain", "//server/base:log"),
                                 ("", "//server/domain:rpc"), ("base", "//proto:helpwire_c"),
                                 ("domain", "//server/repl:repl"), ("repl", "//server/net:net"),
                                 ("store", "//server/repl:repl")]),
                         [("store", "//server/domain:rpc"), ("net", "//server:methods"),
                          ("clients", "//server/net:net"), ("repl", "//server/net:net"),
                          ("store", "//server/repl:repl")])

    def test_build_graph_points_down_only(self):
        bad = []
        for layer in LAYERS:
            for dep in bazel_deps("//server/%s:all" % layer):
                bad += upward([(layer, dep)])
        for dep in bazel_deps("//clients/...:all"):
            bad += upward([("clients", dep)])
        self.assertEqual(bad, [], "\n".join("%s -> %s" % b for b in bad))

    def test_includes_point_down_only(self):
        bad = []
        inc = re.compile(r'^\s*#\s*include\s+"(server/[^"]+)"')
        for top in ("server", "clients"):
            for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
                for name in files:
                    if not name.endswith((".c", ".h")):
                        continue
                    path = os.path.relpath(os.path.join(dirpath, name), ROOT)
                    frm = layer_of_path(path)
                    with open(os.path.join(ROOT, path), encoding="utf-8", errors="replace") as f:
                        for n, line in enumerate(f, 1):
                            m = inc.match(line)
                            if m and layer_of_path(m.group(1)) not in ALLOWED[frm]:
                                bad.append("%s:%d: %s" % (path, n, m.group(1)))
        self.assertEqual(bad, [], "\n".join(bad))

    def test_every_server_folder_is_a_known_layer(self):
        folders = sorted(d for d in os.listdir(os.path.join(ROOT, "server"))
                         if os.path.isdir(os.path.join(ROOT, "server", d)))
        self.assertEqual(sorted(set(folders) - set(LAYERS)), [])


if __name__ == "__main__":
    hwtest.main()
