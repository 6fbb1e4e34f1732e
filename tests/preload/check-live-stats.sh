#!/usr/bin/env bash
# `numalloc stats PID` and `numalloc top PID` on processes under the preload with
# NUMALLOC_STATS_INTERVAL (scripts/numalloc, src/stats_live.c): a live python3 publishes, its
# JSON parses and its counters grow, top prints its refreshes, and nothing is left once it
# exits (normally, from a thread, from a main thread that called pthread_exit, in a forked
# child); a reader racing the exit gets a whole report or one clear line; a dead pid, a
# process without the option or not under numalloc, a file left by a killed process, by a
# program replaced with exec or by an earlier process with the same pid, and another user's
# process or file each get a clear message and exit status 2.
# Usage: check-live-stats.sh NUMALLOC_SCRIPT LIBNUMAPRELOAD LIVE_STATS_TARGET
set -uo pipefail
numalloc=$1 lib=$2 target=$3
failures=0 pids=()
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  rm -rf "$work"
}
work=$(mktemp -d) || exit 1
trap cleanup EXIT
live() { echo "/dev/shm/numalloc-stats.$1"; }

# wait_file PATH present|absent SECONDS
wait_file() {
  local i
  for ((i = 0; i < $3 * 20; i++)); do
    if [ "$2" = present ]; then [ -e "$1" ] && return 0; else [ -e "$1" ] || return 0; fi
    sleep 0.05
  done
  return 1
}

# expect_refusal NAME PATTERN COMMAND...: exit status 2 (1 with expected_rc=1: bad
# arguments), nothing on stdout, one line on stderr matching PATTERN.
expect_refusal() {
  local name=$1 pattern=$2 rc
  shift 2
  "$@" >"$work/out" 2>"$work/err"
  rc=$?
  if [ "$rc" -eq "${expected_rc:-2}" ] && [ ! -s "$work/out" ] && [ "$(wc -l <"$work/err")" -eq 1 ] &&
     grep -qE "$pattern" "$work/err"; then
    pass "$name: $(cat "$work/err")"
  else
    fail "$name: exit $rc, stdout [$(head -c 300 "$work/out")], stderr [$(cat "$work/err")]"
  fi
}

# python3 allocating until $work/stop exists; its pid in $py
start_python() {
  NUMALLOC_STATS_INTERVAL=1 LD_PRELOAD=$lib python3 -c '
import os, sys, time
kept = []
while not os.path.exists(sys.argv[1]):
    kept.append([str(i) * 3 for i in range(20000)])
    kept = kept[-20:]
    time.sleep(0.1)
' "$work/stop" &
  py=$!
  pids+=("$py")
}

# ---- a live python3 ---------------------------------------------------------------------
start_python
if ! wait_file "$(live "$py")" present 10; then
  fail "python3 under the preload never published $(live "$py")"
  exit 1
fi
[ "$(stat -c '%a %u' "$(live "$py")")" = "600 $(id -u)" ] && pass "the file is mode 600, ours" ||
  fail "the file is $(stat -c '%a %u' "$(live "$py")")"
count() { # the allocations of every node in the JSON on stdin
  python3 -c 'import json, sys; d = json.load(sys.stdin); print(sum(v["alloc_count"] for k, v in d.items() if k.startswith("node")))'
}
if "$numalloc" stats --json "$py" >"$work/a.json" && python3 -m json.tool "$work/a.json" >/dev/null; then
  pass "numalloc stats --json parses"
else
  fail "numalloc stats --json: $(cat "$work/a.json")"
fi
for key in policy topology node0 threads placement remote_pct; do
  grep -q "\"$key\"" "$work/a.json" || fail "the JSON has no $key"
done
first=$(count <"$work/a.json")
sleep 2.5
"$numalloc" stats --json "$py" >"$work/b.json"
second=$(count <"$work/b.json")
[ "${second:-0}" -gt "${first:-0}" ] && pass "allocations grew: $first then $second" ||
  fail "allocations did not grow: $first then $second"
"$numalloc" stats "$py" >"$work/text" 2>&1
grep -q "^process $py (python3), statistics of [0-9]* s ago" "$work/text" &&
  grep -q '^node  allocated MiB' "$work/text" && grep -qE '^ +0 +[0-9.]+ +[0-9]+' "$work/text" &&
  pass "numalloc stats prints the text report" || fail "numalloc stats: $(cat "$work/text")"
if timeout 20 "$numalloc" top -n 2 "$py" >"$work/top" 2>&1; then
  n=$(grep -c "^numalloc top: process $py (python3) at " "$work/top")
  rows=$(grep -cE '^ +0 +[0-9.]+ +[0-9]+ +([0-9]+|-) ' "$work/top")
  [ "$n" -eq 2 ] && [ "$rows" -eq 2 ] && pass "numalloc top -n 2 prints two refreshes" ||
    fail "numalloc top -n 2: $n refreshes, $rows node rows: $(cat "$work/top")"
else
  fail "numalloc top -n 2 failed: $(cat "$work/top")"
fi
# top follows the process to its end
timeout 20 "$numalloc" top "$py" >"$work/top2" 2>&1 &
top_pid=$!
# the exit comes once top has shown a report (a fixed wait is too short on a loaded machine)
for ((i = 0; i < 200; i++)); do
  grep -q "^numalloc top: process $py (python3) at " "$work/top2" && break
  sleep 0.05
done
touch "$work/stop"
wait "$py"
wait "$top_pid"
rc=$?
[ "$rc" -eq 0 ] && grep -q "^numalloc top: process $py exited$" "$work/top2" &&
  pass "numalloc top ends when the process exits" || fail "numalloc top at exit: exit $rc, $(tail -n 3 "$work/top2")"
[ ! -e "$(live "$py")" ] && [ ! -e "$(live "$py").tmp" ] && pass "nothing left after python3 exits" ||
  fail "$(live "$py") left after exit"
expect_refusal "an exited process" "^numalloc: stats: no process $py$" "$numalloc" stats "$py"
rm -f "$work/stop"

# ---- reading while the process exits -------------------------------------------------------
# Every read is a whole report or one clear line, never anything else.
start_python
wait_file "$(live "$py")" present 10 || fail "python3 did not publish"
# The exit is asked for after the first whole report, not after a fixed time: on a loaded
# machine one read can take longer than a second.
reads=0 whole=0 told=0
for ((i = 0; i < 400 && reads < 400; i++)); do
  reads=$((reads + 1))
  if "$numalloc" stats --json "$py" >"$work/r.json" 2>"$work/r.err"; then
    python3 -m json.tool "$work/r.json" >/dev/null && [ ! -s "$work/r.err" ] && whole=$((whole + 1)) ||
      { fail "a read during exit gave: $(head -c 300 "$work/r.json") / $(cat "$work/r.err")"; break; }
    [ "$whole" -eq 1 ] && touch "$work/stop"
  else
    if [ "$(wc -l <"$work/r.err")" -eq 1 ] && [ ! -s "$work/r.json" ] &&
       grep -qE "^numalloc: stats: (no process $py|process $py exited while its statistics were being read)$" "$work/r.err"; then
      told=$((told + 1))
    else
      fail "a read during exit gave: $(head -c 300 "$work/r.json") / $(cat "$work/r.err")"
      break
    fi
    [ "$told" -ge 20 ] && break
  fi
done
wait "$py"
[ "$whole" -gt 0 ] && [ "$told" -gt 0 ] &&
  pass "reads across the exit: $whole whole reports, then $told clear messages" ||
  fail "reads across the exit: $whole whole reports, $told messages"
rm -f "$work/stop"

# ---- ways of ending -------------------------------------------------------------------------
run_target() { # MODE: runs the target, checks it ended in time and left nothing behind
  local mode=$1 start end rc pid left=""
  start=$(date +%s)
  timeout -s KILL 30 env NUMALLOC_STATS_INTERVAL=1 LD_PRELOAD="$lib" "$target" "$mode" >"$work/pids"
  rc=$?
  end=$(date +%s)
  if [ "$rc" -ne 0 ]; then fail "$mode: exit status $rc after $((end - start)) s"; return; fi
  for pid in $(sed -n 's/^pid //p' "$work/pids"); do
    [ -e "$(live "$pid")" ] && left+=" $(live "$pid")"
    [ -e "$(live "$pid").tmp" ] && left+=" $(live "$pid").tmp"
  done
  [ -s "$work/pids" ] || left=" (the target printed no pid)"
  [ -z "$left" ] && pass "$mode: ended in $((end - start)) s, nothing left ($(tr '\n' ' ' <"$work/pids"))" ||
    fail "$mode: left$left"
}
run_target thread-exit
run_target main-exits
NUMALLOC_BACKGROUND=1 run_target main-exits
run_target fork

# ---- refusals -------------------------------------------------------------------------------
true &
dead=$!
wait "$dead"
expect_refusal "a dead pid" "^numalloc: stats: no process $dead$" "$numalloc" stats "$dead"
expected_rc=1 expect_refusal "not a pid" "^numalloc: stats: '12ab' is not a process id$" "$numalloc" stats 12ab
sleep 30 &
plain=$!
pids+=("$plain")
expect_refusal "a process not under numalloc" "process $plain \(sleep\) does not run under numalloc" \
  "$numalloc" stats "$plain"
LD_PRELOAD=$lib sleep 30 &
quiet=$!
pids+=("$quiet")
# until it runs sleep with the library loaded (a fixed wait is too short on a loaded machine)
for ((i = 0; i < 200; i++)); do
  [ "$(cat "/proc/$quiet/comm" 2>/dev/null)" = sleep ] && grep -q libnumapreload "/proc/$quiet/maps" &&
    break
  sleep 0.05
done
expect_refusal "a process without the option" "process $quiet \(sleep\) runs under numalloc but does not publish" \
  "$numalloc" stats "$quiet"
expect_refusal "top on a process without the option" "^numalloc: top: process $quiet \(sleep\) runs under numalloc but does not publish" \
  "$numalloc" top -n 1 "$quiet"

# killed: the file stays; the reader says why and removes it
NUMALLOC_STATS_INTERVAL=1 LD_PRELOAD=$lib "$target" wait >/dev/null &
killed=$!
pids+=("$killed")
wait_file "$(live "$killed")" present 10 || fail "the target did not publish"
kill -9 "$killed"
wait "$killed" 2>/dev/null
[ -e "$(live "$killed")" ] && pass "SIGKILL leaves the file (no code runs)" || fail "no file after SIGKILL?"
expect_refusal "a killed process's file" "no process $killed: it ended without exiting .*removed$" \
  "$numalloc" stats "$killed"
[ ! -e "$(live "$killed")" ] && pass "the reader removed it" || fail "the stale file is still there"

# replaced by exec (a program without the preload): stale, removed
NUMALLOC_STATS_INTERVAL=1 LD_PRELOAD=$lib "$target" exec env -u LD_PRELOAD sleep 30 >/dev/null &
execd=$!
pids+=("$execd")
wait_file "$(live "$execd")" present 10 || fail "the target did not publish"
for ((i = 0; i < 100; i++)); do [ "$(readlink "/proc/$execd/exe")" = "$(readlink -f "$(command -v sleep)")" ] && break; sleep 0.05; done
expect_refusal "a file left by the program exec replaced" "process $execd now runs .*sleep, not .* \(it replaced itself with exec\); .*removed$" \
  "$numalloc" stats "$execd"
[ ! -e "$(live "$execd")" ] || fail "the file left before exec is still there"

# an earlier process with the same pid: a file for a live process of ours with another start
printf 'numalloc-live 1\npid %s\nstart 1\nexe /x\ninterval 1\nsequence 1\ntext\njson\n{\n}\n' "$plain" >"$(live "$plain")"
chmod 600 "$(live "$plain")"
expect_refusal "a file of an earlier process with the same pid" "process $plain is not the one that wrote it .*removed$" \
  "$numalloc" stats "$plain"
[ ! -e "$(live "$plain")" ] || fail "the stale file is still there"

# another user's process: as root, a process of nobody; otherwise pid 1 when it is not ours
other=""
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
  setpriv --reuid=nobody --regid=nogroup --clear-groups sleep 30 &
  other=$!
  pids+=("$other")
  sleep 0.3
elif [ "$(stat -c %u /proc/1)" != "$(id -u)" ]; then
  other=1
fi
if [ -n "$other" ]; then
  expect_refusal "another user's process" "process $other belongs to [a-z]+, not to you .*refused" \
    "$numalloc" stats "$other"
  expect_refusal "top on another user's process" "^numalloc: top: process $other belongs to" \
    "$numalloc" top -n 1 "$other"
else
  echo "not tested: another user's process (no setpriv as root, and pid 1 is ours)"
fi
# a file of our process's pid owned by someone else (as root: chowned to nobody)
if [ "$(id -u)" -eq 0 ]; then
  cp "$work/a.json" "$(live "$plain")"
  chown nobody "$(live "$plain")"
  expect_refusal "a file another user owns for our process" "belongs to nobody, not to the owner of process $plain: refused" \
    "$numalloc" stats "$plain"
  rm -f "$(live "$plain")"
else
  echo "not tested: a file of our pid owned by another user (needs root to chown)"
fi

echo "$failures failure(s)"
[ "$failures" -eq 0 ]
