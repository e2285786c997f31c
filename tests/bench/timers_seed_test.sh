#!/usr/bin/env bash
# Smoke test of bench/timers_seed (the timer benchmark's seeder): a small
# store gets the tickets, one SLA timer per ticket (two with --waiting:
# the UNASSIGNED one too), the due times the benchmark counts on, and the
# demo tokens; bad arguments are refused with a message naming them.
set -u
SEED=$1
DIR=${TEST_TMPDIR:-$(mktemp -d)}/store
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$("$SEED" "$DIR" 300 --per-second 100 --minutes 2 --t0-ms 1000000 --batch 64 --customers 7) ||
  fail "timers_seed exited with $?"
want="n=300 per_second=100 first_warn_ms=1060000 first_due_ms=1120000 last_due_ms=1122990 timers_pending=300"
[ "$out" = "$want" ] || fail "got \"$out\", want \"$want\""
grep -q ' admin ' "$DIR/demo-tokens.txt" || fail "no admin token in $DIR/demo-tokens.txt"

# Seeding the same store again adds tickets (and their timers) after the others.
out=$("$SEED" "$DIR" 10 --per-second 100 --minutes 2 --t0-ms 1000000) || fail "second seed exited with $?"
case $out in *" timers_pending=310") ;; *) fail "second seed: got \"$out\"" ;; esac

out=$("$SEED" "$DIR.w" 20 --waiting) || fail "--waiting exited with $?"
case $out in *" timers_pending=40") ;; *) fail "--waiting: got \"$out\"" ;; esac

err=$("$SEED" "$DIR" 0 2>&1) && fail "N=0 accepted"
case $err in *"N must be a positive number, got \"0\""*) ;; *) fail "N=0: \"$err\"" ;; esac
err=$("$SEED" "$DIR" 5 --per-second -3 2>&1) && fail "--per-second -3 accepted"
case $err in *"--per-second must be a number >= 1, got \"-3\""*) ;; *) fail "--per-second: \"$err\"" ;; esac
err=$("$SEED" "$DIR" 5 --speed 3 2>&1) && fail "--speed accepted"
case $err in *"unknown option --speed"*) ;; *) fail "--speed: \"$err\"" ;; esac
echo PASS
