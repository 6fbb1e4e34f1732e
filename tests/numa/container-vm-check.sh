#!/bin/bash
# container-vm-check.sh NUMA_DENY PRELOAD_LIB CONTAINER_VM DEMO MAPS_CHECK NUMALLOC_SCRIPT
# Inside a VM of scripts/numa-vm with two nodes: numalloc with the NUMA system calls refused
# as a container refuses them (numa_deny: all five, as without CAP_SYS_NICE; move_pages and
# migrate_pages only, as with it). Programs keep working; with mbind refused the process says
# so in one line and nothing else, with it permitted it says nothing; the statistics, their
# JSON, the demo and `numalloc maps` say what was not enforced or could not be checked.
set -u
deny=$1 lib=$2 prog=$3 demo=$4 maps_check=$5 numalloc=$6
all=mbind,set_mempolicy,get_mempolicy,move_pages,migrate_pages
nice=move_pages,migrate_pages
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0

ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; failed=1; }

# run NAME CALLS [VAR=VALUE...] -- COMMAND...: COMMAND under the preload with CALLS refused
# ("" for none); stdout, stderr and status in $tmp/NAME.{out,err,rc}. LD_PRELOAD= among the
# settings runs it without the preload (the demo links numalloc itself).
run() {
  local name=$1 calls=$2
  shift 2
  local env=(LD_PRELOAD="$lib")
  while [ "$1" != -- ]; do env+=("$1"); shift; done
  shift
  local wrap=()
  [ -n "$calls" ] && wrap=("$deny" --deny "$calls" --)
  "${wrap[@]}" env -u NUMALLOC_VERBOSE -u NUMALLOC_STATS -u NUMALLOC_VERIFY "${env[@]}" "$@" \
    >"$tmp/$name.out" 2>"$tmp/$name.err"
  echo $? >"$tmp/$name.rc"
  echo "($name: $((SECONDS - started)) s)"
}
started=$SECONDS

show() { echo "--- $1: exit $(cat "$tmp/$1.rc"), stderr:"; cat "$tmp/$1.err"; }

expect_rc() { # NAME CODE
  [ "$(cat "$tmp/$1.rc")" = "$2" ] && ok "$1: exit $2" || fail "$1: exit $(cat "$tmp/$1.rc"), want $2"
}

expect_err() { # NAME yes|no FIXED-STRING
  local found=no
  grep -qF -- "$3" "$tmp/$1.err" && found=yes
  if [ "$found" = "$2" ]; then ok "$1: '$3' $([ "$2" = yes ] && echo said || echo "not said")"
  else fail "$1: '$3' $([ "$2" = yes ] && echo "not said" || echo said)"; fi
}

# ---- a program's stderr: one line for refused mbind, nothing else -------------------------
run plain "" -- "$prog" workload
run denied "$all" -- "$prog" workload
run nice "$nice" -- "$prog" workload
for name in plain denied nice; do show $name; expect_rc $name 0; done
for name in plain nice; do
  [ -s "$tmp/$name.err" ] && fail "$name: stderr is not empty" || ok "$name: nothing on stderr"
done
lines=$(wc -l <"$tmp/denied.err")
mbind_lines=$(grep -c 'mbind' "$tmp/denied.err")
[ "$lines" -eq 1 ] && [ "$mbind_lines" -eq 1 ] &&
  ok "denied: one line on stderr, about mbind" ||
  fail "denied: $lines lines on stderr ($mbind_lines about mbind), want one: a refused kind of call is said once per process"
expect_err denied yes "numalloc: warning: mbind refused (Operation not permitted)"
expect_err denied no "get_mempolicy: Operation not permitted"

# ---- the statistics ------------------------------------------------------------------------
run stats_denied "$all" NUMALLOC_STATS=1 NUMALLOC_VERIFY=1 -- "$prog" workload
run stats_nice "$nice" NUMALLOC_STATS=1 NUMALLOC_VERIFY=1 -- "$prog" workload
show stats_denied
show stats_nice
expect_err stats_denied yes "numalloc: placement not enforced: mbind refused (Operation not permitted); local % is where numalloc asked for memory"
expect_err stats_denied yes "numalloc: placement check unavailable: move_pages and get_mempolicy refused (Operation not permitted)"
expect_err stats_denied no "pages sampled"
expect_err stats_nice no "not enforced"
expect_err stats_nice no "warning"
line=$(grep -F "numalloc: placement check by get_mempolicy (move_pages refused: Operation not permitted): " "$tmp/stats_nice.err")
sampled=$(sed -n 's/.*): \([0-9]*\) pages sampled, \([0-9]*\) on another node/\1 \2/p' <<<"$line")
set -- $sampled
[ "${1:-0}" -gt 0 ] && [ "${2:-1}" -eq 0 ] && ok "stats_nice: $1 pages checked with get_mempolicy, none misplaced" ||
  fail "stats_nice: placement check line '$line'"

for calls in "$all" "$nice"; do
  run json "$calls" NUMALLOC_STATS=json NUMALLOC_STATS_FILE="$tmp/stats.json" NUMALLOC_VERIFY=1 -- "$prog" workload
  python3 - "$tmp/stats.json" "$calls" <<'PYEOF' && ok "json with $calls refused" || failed=1
import json, sys
p = json.load(open(sys.argv[1]))["placement"]
print("placement:", p)
if sys.argv[2].startswith("mbind"):
    want = {"enforced": False, "check_method": "none"}
    good = p["verified_pages"] == 0 and "mbind" in p["refused"]
else:
    want = {"enforced": True, "check_method": "get_mempolicy"}
    good = p["verified_pages"] > 0 and p["misplaced_pages"] == 0 and p["refused"] == ["move_pages", "migrate_pages"]
bad = {k: p[k] for k in want if p[k] != want[k]}
if bad or not good:
    print("FAIL: json placement", bad or p)
    sys.exit(1)
PYEOF
done

# ---- the demo -------------------------------------------------------------------------------
run demo_denied "$all" LD_PRELOAD= -- "$demo" --threads=2 --policy=local --scale=8
show demo_denied
expect_rc demo_denied 3
expect_err demo_denied yes "ERROR: cannot verify placement: move_pages refused (Operation not permitted) and get_mempolicy refused (Operation not permitted)"
for policy in "--policy=local" "--policy=bind --node=1"; do
  run demo_nice "$nice" LD_PRELOAD= -- "$demo" --threads=2 $policy --scale=8
  show demo_nice
  expect_rc demo_nice 0
  expect_err demo_nice yes "note: move_pages refused (Operation not permitted): every page checked with get_mempolicy"
done

# ---- numalloc maps ---------------------------------------------------------------------------
"$maps_check" "$deny" "$lib" "$numalloc" || failed=1
echo "(maps: $((SECONDS - started)) s)"

[ $failed -eq 0 ] && echo "container-vm-check: all passed" || echo "container-vm-check: FAILED"
exit $failed
