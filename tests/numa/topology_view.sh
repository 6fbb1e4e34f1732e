#!/usr/bin/env bash
# topology_view.sh NUMALLOC_SCRIPT TOPOLOGY_TOOL LAYOUT: `numalloc topology` checked against a
# layout of scripts/numa-vm whose answer is known, run inside that VM. LAYOUT 4nodes: nodes 0
# and 1 with a CPU each, 2 and 3 memory only, distances 0-1=21 0>2=31 2>0=41 0-3=41 1-2=41
# 1-3=31 2-3=21 (tests/numa/CMakeLists.txt). LAYOUT host: whatever machine runs it, only the
# shape and the settings are checked.
set -uo pipefail
numalloc=$1
export NUMALLOC_TOPOLOGY_TOOL=$2
layout=$3
failed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# view ENV...: runs numalloc topology with ENV, shows its output.
view() {
  echo "\$ ${*:-(default environment)} numalloc topology"
  env "$@" "$numalloc" topology >"$out" 2>&1
  local rc=$?
  cat "$out"
  [ $rc -eq 0 ] || { echo "FAIL: exit $rc"; failed=1; }
}
# expect REGEX...: each must match a line of the last output.
expect() {
  local re
  for re in "$@"; do
    grep -Eq -- "$re" "$out" || { echo "FAIL: no line matches: $re"; failed=1; }
  done
}
# node N KIND CPUS USE ORDER: the line of node N.
node() {
  expect "^ +$1  $2 +$3 +[0-9]+ +[0-9]+ +$4 +$5\$"
}

case $layout in
4nodes)
  view
  expect "^numalloc's view: 4 node\\(s\\), 4 usable, 2 CPU\\(s\\) this process may run on; policy local\$"
  node 0 'cpus\+memory' 0 allocates '0 1 2 3'
  node 1 'cpus\+memory' 1 allocates '1 0 3 2'
  node 2 'memory only' - allocates '2 3 0 1'
  node 3 'memory only' - allocates '3 2 1 0'
  expect '^ +0 +10 +21 +31 +41$' '^ +1 +21 +10 +41 +31$' '^ +2 +41 +41 +10 +21$' \
    '^ +3 +41 +31 +21 +10$' '^  NUMALLOC_FALLBACK=nearest ' '^  NUMALLOC_NODES=all '
  # Restricted to nodes 0 and 2: node 1's CPU allocates on node 0, node 3 is left out.
  view NUMALLOC_NODES=0,2 NUMALLOC_POLICY=weighted:0=3,2=1 NUMALLOC_FALLBACK=none
  expect "^numalloc's view: 4 node\\(s\\), 2 usable, 2 CPU\\(s\\) .*; policy weighted\$" \
    '^  NUMALLOC_POLICY=weighted:0=3,2=1 ' '^  NUMALLOC_FALLBACK=none ' '^  NUMALLOC_NODES=0,2 '
  node 0 'cpus\+memory' 0 allocates '0 2'
  node 1 'cpus\+memory' 1 'uses node 0' '0 2'
  node 2 'memory only' - allocates '2 0'
  node 3 'memory only' - 'not used' '2 0'
  ;;
host)
  view
  expect "^numalloc's view: [0-9]+ node\\(s\\), [0-9]+ usable, [0-9]+ CPU\\(s\\) this process may run on; policy local\$" \
    '^ +0  cpus\+memory +[0-9,-]+ +[0-9]+ +[0-9]+ +allocates +0' '^distances:$' \
    '^  NUMALLOC_POLICY=local ' '^  NUMALLOC_LARGE_THRESHOLD=1M '
  ;;
*)
  echo "usage: topology_view.sh NUMALLOC_SCRIPT TOPOLOGY_TOOL 4nodes|host"
  exit 2
  ;;
esac
# Any layout: a bad value gives exactly one warning line, and the view still comes.
view NUMALLOC_POLICY=sideways
[ "$(grep -c '^numalloc: warning:' "$out")" -eq 1 ] || { echo "FAIL: want one warning line"; failed=1; }
expect 'NUMALLOC_POLICY="sideways"' "^numalloc's view: .*policy local\$" '^  NUMALLOC_POLICY=local '
view NUMALLOC_POLICY=system
expect "policy system\$" '^\(policy system: every allocation goes to the C library'"'"'s allocator\)$'

[ $failed -eq 0 ] && echo "topology view: ok"
exit $failed
