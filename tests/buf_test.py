#!/usr/bin/python3
"""buf_test: the API's conventions and compatibility, with buf (the
@bufbuild/buf npm package pinned in tests/js/package.json, installed into
tests/js/node_modules by bazel/setup.sh):

  lint      `buf lint` is clean under buf.yaml (STANDARD, with the listed
            exceptions the released API cannot drop);
  breaking  `buf breaking --against proto/api-released.binpb`: nothing
            released was renumbered, renamed, retyped or removed (adding
            fields, values and RPCs is fine);
  control   the same check on a copy with one field renumbered fails and
            names the field, so the check above can fail;
  options   every proto under proto/helpwire sets go_package (its import
            path ends with the package's path) and the java_* options.

Runs from the source tree with Debian's Python, outside Bazel (it reads the
source tree's proto/ and node_modules): /usr/bin/python3 tests/buf_test.py.
tests/run.sh runs it and counts its cases."""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import hwtest  # noqa: E402

BUF = os.path.join(ROOT, "tests", "js", "node_modules", ".bin", "buf")
RELEASED = os.path.join(ROOT, "proto", "api-released.binpb")
SETUP_HINT = "run `bash bazel/setup.sh --no-build` (npm ci --prefix tests/js installs @bufbuild/buf)"


def buf(*args, cwd=ROOT):
    if not os.path.exists(BUF):
        raise AssertionError("%s is missing: %s" % (BUF, SETUP_HINT))
    return subprocess.run([BUF] + list(args), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=120)


class Buf(unittest.TestCase):
    def test_lint(self):
        r = buf("lint")
        self.assertEqual(r.returncode, 0, "buf lint:\n" + r.stdout + r.stderr)

    def test_breaking_against_released(self):
        self.assertTrue(os.path.exists(RELEASED), "proto/api-released.binpb is missing (bash proto/release_api.sh)")
        r = buf("breaking", "--against", RELEASED)
        self.assertEqual(r.returncode, 0, "buf breaking against the released API:\n" + r.stdout + r.stderr)

    def test_breaking_catches_a_renumbered_field(self):
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy(os.path.join(ROOT, "buf.yaml"), tmp)
            shutil.copytree(os.path.join(ROOT, "proto"), os.path.join(tmp, "proto"),
                            ignore=shutil.ignore_patterns("*.binpb", "BUILD", "*.sh"))
            path = os.path.join(tmp, "proto", "helpwire", "v1", "router.proto")
            with open(path) as f:
                src = f.read()
            changed = src.replace("string channel_user_id = 2;", "string channel_user_id = 20;")
            self.assertNotEqual(changed, src, "RouteRequest.channel_user_id = 2 not found in router.proto")
            with open(path, "w") as f:
                f.write(changed)
            r = buf("breaking", "--against", RELEASED, cwd=tmp)
        self.assertNotEqual(r.returncode, 0, "buf breaking passed a renumbered field:\n" + r.stdout)
        self.assertIn('"channel_user_id" on message "RouteRequest"', r.stdout + r.stderr)

    def test_language_options(self):
        files = sorted(glob.glob(os.path.join(ROOT, "proto", "helpwire", "**", "*.proto"), recursive=True))
        self.assertTrue(files)
        bad = []
        for path in files:
            with open(path) as f:
                src = f.read()
            rel = os.path.relpath(path, ROOT)
            package = re.search(r"^package ([\w.]+);", src, re.M).group(1)
            go = re.search(r'^option go_package = "([^";]+);(\w+)";', src, re.M)
            if not go or not go.group(1).endswith("/" + package.replace(".", "/")):
                bad.append("%s: go_package should end with /%s" % (rel, package.replace(".", "/")))
            for opt in ("java_multiple_files = true", 'java_package = "', 'java_outer_classname = "'):
                if "\noption " + opt not in src:
                    bad.append("%s: no option %s" % (rel, opt.rstrip(' "')))
        self.assertEqual(bad, [])


if __name__ == "__main__":
    hwtest.main()
