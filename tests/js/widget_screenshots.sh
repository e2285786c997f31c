#!/usr/bin/env bash
# Makes the web chat widget's screenshots in docs/ again: desktop and
# phone, English and Chinese, outside business hours (widget-*.png). They
# are taken by the browser test (tests/integration/webchat_widget_test.py)
# against the real helpwired and webchat-bridge, into the test's undeclared
# outputs, and copied here.
# Usage: bash tests/js/widget_screenshots.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
bazel test //tests/integration:webchat_widget_test --nocache_test_results --test_output=errors
out="$(bazel info bazel-testlogs)/tests/integration/webchat_widget_test/test.outputs"
if [ -f "$out/outputs.zip" ]; then
  /usr/bin/python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
    "$out/outputs.zip" "$out"
fi
n=0
for f in "$out"/widget-*.png; do
  [ -e "$f" ] || continue
  cp "$f" docs/
  echo "docs/$(basename "$f")"
  n=$((n + 1))
done
[ "$n" -gt 0 ] || { echo "no screenshots in $out" >&2; exit 1; }
