#!/usr/bin/env bash
# crashloop_test: bench/crashloop.sh for a few rounds against the real
# helpwired (so the script does not rot): nothing acknowledged is lost,
# the report counts acknowledged / found / lost; and the check can fail:
# acknowledgements of writes never made (--inject-lost) are counted lost and
# the exit status is 1.
set -uo pipefail
HELPWIRED=$1 PROTOSET=$2
TMP=${TEST_TMPDIR:-$(mktemp -d)}
export HELPWIRED PROTOSET WORK_DIR=$TMP
fail() { echo "FAIL: $*" >&2; exit 1; }

bash bench/crashloop.sh --rounds 3 --kill-min 0.2 --kill-max 0.8 --seed 7 >"$TMP/ok.md" 2>"$TMP/ok.err"
rc=$?
cat "$TMP/ok.md"
[ "$rc" = 0 ] || fail "crashloop.sh exited $rc: $(tail -20 "$TMP/ok.err")"
grep -q '^\*\*PASS\*\*$' "$TMP/ok.md" || fail "no PASS"
row=$(grep '^| after the next restart |' "$TMP/ok.md") || fail "no counts row"
acked=$(echo "$row" | awk -F'|' '{gsub(/ /, "", $3); print $3}')
found=$(echo "$row" | awk -F'|' '{gsub(/ /, "", $4); print $4}')
lost=$(echo "$row" | awk -F'|' '{gsub(/ /, "", $5); print $5}')
[ "$acked" -gt 20 ] || fail "only $acked writes acknowledged"
[ "$found" = "$acked" ] && [ "$lost" = 0 ] || fail "acknowledged $acked, found $found, lost $lost"
grep -q '^| all again after the last restart | '"$acked"' | '"$acked"' | 0 |$' "$TMP/ok.md" || fail "final check row"
for kind in AddMessage CloseTicket CreateTicket Route; do
  grep -q "Acknowledged by kind:.*$kind [1-9]" "$TMP/ok.md" || fail "no acknowledged $kind"
done
[ "$(grep -c 'round [0-9]*: killed after' "$TMP/ok.err")" = 3 ] || fail "not 3 kills"
grep -q 'exit status 0' "$TMP/ok.md" || fail "no clean stop"

bash bench/crashloop.sh --rounds 1 --kill-min 0.2 --kill-max 0.3 --inject-lost 3 >"$TMP/lost.md" 2>"$TMP/lost.err"
rc=$?
[ "$rc" = 1 ] || fail "3 lost writes: exit $rc, want 1: $(cat "$TMP/lost.md")"
grep -q '^\*\*FAIL\*\*$' "$TMP/lost.md" || fail "no FAIL"
grep -Eq '^\| after the next restart \| [0-9]+ \| [0-9]+ \| 3 \|$' "$TMP/lost.md" || fail "lost is not 3: $(cat "$TMP/lost.md")"
grep -q 'lost: round 1 Route cl-phantom-0 (tk-phantom-0): ticket not found' "$TMP/lost.md" || fail "no lost example"
echo PASS
