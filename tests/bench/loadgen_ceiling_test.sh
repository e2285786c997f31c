#!/usr/bin/env bash
# loadgen_ceiling_test: helpwire-bench against the echo ceiling on loopback
# counts exactly the requests asked for, sees no errors, reports ordered
# percentiles in its JSON, and the ceiling exits cleanly on SIGTERM. Also:
# an unreachable target exits with status 3, and a dumped gRPC-framed
# request can be sent back with --request-file.
set -uo pipefail

CEILING=$1
BENCH=$2
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
TMP=${TEST_TMPDIR:-$(mktemp -d)}
CEILING_PID=""
fail() { echo "FAIL: $*" >&2; exit 1; }
cleanup() { [ -n "$CEILING_PID" ] && kill -KILL "$CEILING_PID" 2>/dev/null; }
trap cleanup EXIT

"$CEILING" --listen 127.0.0.1:0 --threads 2 >"$TMP/ceiling.out" 2>"$TMP/ceiling.err" &
CEILING_PID=$!
PORT=""
for _ in $(seq 100); do
  PORT=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$TMP/ceiling.out")
  [ -n "$PORT" ] && break
  sleep 0.05
done
[ -n "$PORT" ] || fail "ceiling printed no port: $(cat "$TMP/ceiling.out" "$TMP/ceiling.err")"
echo "ceiling on port $PORT"

# 1. a bounded run of a mix over several connections
"$BENCH" --target "127.0.0.1:$PORT" --requests 2000 --warmup 0 --connections 3 --concurrency 8 \
  --mix "Route=70,GetTicket=20,CreateTicket=10,Search=5" --no-seed --json "$TMP/run.json" \
  >"$TMP/run.txt" 2>&1 || fail "helpwire-bench exited $?: $(cat "$TMP/run.txt")"
cat "$TMP/run.txt"
"$PY" - "$TMP/run.json" <<'PYEOF' || fail "JSON check failed"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["requests"] == 2000, d["requests"]
assert d["ok"] == 2000 and d["errors"] == 0, (d["ok"], d["errors"])
assert d["errors_by_status"] == {}, d["errors_by_status"]
lat = d["latency_us"]
order = [lat["min"], lat["p50"], lat["p90"], lat["p99"], lat["p999"], lat["max"]]
assert all(a <= b for a, b in zip(order, order[1:])), order
assert lat["min"] > 0, lat
assert d["throughput_rps"] > 0 and d["elapsed_s"] > 0
assert sum(r["requests"] for r in d["rpcs"].values()) == 2000, d["rpcs"]
assert set(d["rpcs"]) <= {"Route", "Search", "CreateTicket", "GetTicket"}, d["rpcs"].keys()
assert d["rpcs"]["Route"]["requests"] > d["rpcs"]["CreateTicket"]["requests"]
assert d["connections"] == 3 and d["concurrency"] == 8 and d["mode"] == "closed"
print("json ok:", d["requests"], "requests,", round(d["throughput_rps"]), "req/s")
PYEOF

# 2. open loop at a fixed rate with a warm-up, request-count bounded
"$BENCH" --target "127.0.0.1:$PORT" --requests 300 --warmup 0.2 --rate 2000 --connections 2 \
  --concurrency 4 --mix Search --no-seed --json "$TMP/open.json" >"$TMP/open.txt" 2>&1 ||
  fail "open loop run exited $?: $(cat "$TMP/open.txt")"
"$PY" - "$TMP/open.json" <<'PYEOF' || fail "open-loop JSON check failed"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["mode"] == "open" and d["requests"] == 300 and d["errors"] == 0, d
assert d["warmup_requests"] > 0, d["warmup_requests"]
# 300 calls at 2000/s take about 0.15 s: the schedule, not the server, sets the pace
assert 0.1 < d["elapsed_s"] < 1.0, d["elapsed_s"]
print("open loop ok:", round(d["throughput_rps"]), "req/s")
PYEOF

# 3. a dumped request, sent back as every call
"$BENCH" --dump-request "$TMP/route.bin" --mix Route --run-id test || fail "dump-request failed"
[ "$(head -c 1 "$TMP/route.bin" | od -An -tu1 | tr -d ' ')" = 0 ] || fail "request file not gRPC-framed"
"$BENCH" --target "127.0.0.1:$PORT" --requests 100 --warmup 0 --connections 1 --concurrency 2 \
  --request-file "$TMP/route.bin" --json "$TMP/fixed.json" >/dev/null 2>&1 || fail "request-file run failed"
"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["ok"] == 100, d' "$TMP/fixed.json" ||
  fail "request-file run did not answer OK"

# 4. nothing listening: exit status 3, quickly
"$BENCH" --target 127.0.0.1:1 --requests 10 --connect-timeout-ms 300 >/dev/null 2>"$TMP/unreach.err"
rc=$?
[ "$rc" = 3 ] || fail "unreachable target: exit $rc, want 3 ($(cat "$TMP/unreach.err"))"

# 5. the ceiling exits 0 on SIGTERM
kill -TERM "$CEILING_PID"
wait "$CEILING_PID"
rc=$?
CEILING_PID=""
[ "$rc" = 0 ] || fail "ceiling exited $rc on SIGTERM"
echo "[  PASSED  ] 5 tests."
