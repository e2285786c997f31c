#!/usr/bin/env bash
# soak_test: bench/soak.sh for half a minute against the real helpwired
# (so the script does not rot): it passes, every part of the mix ran and
# was counted, the samples carry memory, fds, threads, map use and p99, the
# plot is drawn when gnuplot is there. Then the pass rules on their own
# (soak.py --judge): a heap growing 1 MiB a sample, fds that leak and a
# p99 that climbs each fail their rule and the exit status; flat series pass.
set -uo pipefail
HELPWIRED=$1 CLI=$2 PROTOSET=$3
PY=/usr/bin/python3
TMP=${TEST_TMPDIR:-$(mktemp -d)}
export HELPWIRED CLI PROTOSET WORK_DIR=$TMP
fail() { echo "FAIL: $*" >&2; exit 1; }
SOAK=bench/soak.sh
[ -f "$SOAK" ] || fail "no bench/soak.sh in $PWD"

# 1. a short run: passes, and the report says what ran. Half a minute
# cannot judge memory (under AddressSanitizer its quarantine alone grows
# RSS by tens of MiB): the memory floor is wide here; part 2 tests the
# memory rule itself on made-up series.
RAW=$TMP/raw.json PLOT=$TMP/soak.png OUT=$TMP/out.md bash "$SOAK" --minutes 0.5 --sample-s 3 --route-rate 10 \
  --agent-rate 10 --senders 100 --articles 20 --import-every 10 --token-every 5 --p99-ratio 10 \
  --rss-growth-mib 512 \
  >"$TMP/stdout" 2>"$TMP/stderr"
rc=$?
cat "$TMP/stdout"
[ "$rc" = 0 ] || fail "soak.sh exited $rc: $(tail -20 "$TMP/stderr")"
grep -q '^\*\*PASS\*\*$' "$TMP/out.md" || fail "no PASS line in the report"
grep -q '^Command: `bash bench/soak.sh --minutes 0.5' "$TMP/out.md" || fail "the report does not name the command"
for rule in "RssAnon growth" "open fds growth" "threads growth" "p99 stable" "errors other than designed shedding" \
  "server ran throughout and stopped cleanly" "every part of the mix ran"; do
  grep -q "^| $rule.* | pass |$" "$TMP/out.md" || fail "rule \"$rule\" not reported as passed"
done
"$PY" - "$TMP/raw.json" <<'PYEOF' || fail "raw samples check failed"
import json, sys
raw = json.load(open(sys.argv[1]))
s = raw["samples"]
assert 8 <= len(s) <= 11, len(s)
for x in s:
    assert x["rss_kib"] > x["rss_anon_kib"] > 1000, x
    assert x["fds"] > 3 and x["threads"] > 1, x
    assert x["map_used"] > 0 and x["map_size"] >= x["map_used"], x
    assert x["calls"] > 0 and x["p99_ms"] >= x["p50_ms"] > 0, x
c = raw["counts"]
for k in ("Route", "CreateTicket", "AddMessage", "CloseTicket", "SubmitSurvey", "WatchTickets streams",
          "outbox messages acked", "imports", "Backup", "CreateToken", "revoked token refused"):
    assert c.get(k, 0) > 0, (k, c)
assert c["imports"] >= 2, c["imports"]
assert c["backup bytes"] > 0
assert raw["errors"] == {}, raw["errors"]
assert raw["server"] == {"exit": 0, "died": False}, raw["server"]
print("raw ok:", len(s), "samples,", c["Route"], "Routes")
PYEOF
if command -v gnuplot >/dev/null; then
  [ "$(head -c 4 "$TMP/soak.png" | tail -c 3)" = PNG ] || fail "no PNG plot"
fi

# 2. the rules alone, on made-up samples
"$PY" - "$TMP" <<'PYEOF' || fail "writing the synthetic samples failed"
import json, os, sys
def series(rss=lambda i: 50000, fds=lambda i: 20, p99=lambda i: 5.0):
    return {"samples": [{"t_s": 10.0 * i, "rss_kib": 90000, "rss_anon_kib": rss(i), "fds": fds(i), "threads": 9,
                         "p99_ms": p99(i), "p50_ms": 1.0} for i in range(30)],
            "counts": {}, "errors": {}, "server": {"exit": 0, "died": False}, "need": []}
cases = {"flat": series(), "noisy": series(rss=lambda i: 50000 + (i % 3) * 900, p99=lambda i: 5.0 + (i % 2)),
         "heap": series(rss=lambda i: 50000 + 1024 * i), "fds": series(fds=lambda i: 20 + i // 2),
         "p99": series(p99=lambda i: 5.0 + i)}
for name, raw in cases.items():
    json.dump(raw, open(os.path.join(sys.argv[1], name + ".json"), "w"))
err = dict(cases["flat"], errors={"Route INTERNAL": 1})
json.dump(err, open(os.path.join(sys.argv[1], "errors.json"), "w"))
PYEOF
judge() { "$PY" bench/soak.py --judge "$TMP/$1.json" >"$TMP/$1.out" 2>&1; }
for ok in flat noisy; do
  judge $ok || fail "$ok samples failed the rules: $(cat "$TMP/$ok.out")"
done
check_fail() {
  judge "$1" && fail "$1: the rules passed: $(cat "$TMP/$1.out")"
  grep -q "^FAIL $2" "$TMP/$1.out" || fail "$1: no failed \"$2\" rule: $(cat "$TMP/$1.out")"
  [ "$(grep -c '^FAIL ' "$TMP/$1.out")" = 1 ] || fail "$1: more rules failed than \"$2\": $(cat "$TMP/$1.out")"
}
check_fail heap "RssAnon growth"
check_fail fds "open fds growth"
check_fail p99 "p99 stable"
check_fail errors "errors other than designed shedding"
echo PASS
