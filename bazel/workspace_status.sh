#!/bin/sh
# Bazel's workspace status for stamped builds (bazel build --config=stamped):
# the commit the work tree stands at, "-dirty" when it has changes. Prints
# nothing outside a git checkout (the build then says "unknown").
commit=$(git rev-parse HEAD 2>/dev/null) || exit 0
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  commit="$commit-dirty"
fi
echo "STABLE_HELPWIRE_COMMIT $commit"
