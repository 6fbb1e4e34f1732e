#!/usr/bin/env bash
# demo_vm_check.sh: numa_alloc_demo's contract, checked inside a VM of scripts/numa-vm (one VM per
# layout runs every case): exit codes, the "ERROR: node N not available" message, valid JSON
# whose local percentages agree with the demo's move_pages counts.
# Usage: demo_vm_check.sh DEMO 2nodes|4nodes
set -uo pipefail
demo=$1
layout=$2
failed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# expect CODE ARGS...: runs the demo, shows its output, checks its exit code.
expect() {
  local want=$1
  shift
  echo "\$ numa_alloc_demo $*"
  "$demo" "$@" >"$out" 2>&1
  local rc=$?
  cat "$out"
  if [ "$rc" -eq "$want" ]; then echo "ok: exit $rc"; else echo "FAIL: exit $rc, want $want"; failed=1; fi
}

# expect_text TEXT: the last run printed TEXT.
expect_text() {
  if grep -qF -- "$1" "$out"; then echo "ok: '$1'"; else echo "FAIL: no '$1'"; failed=1; fi
}

# expect_json ARGS...: the JSON parses, placement is verified, and for every node numalloc's own
# local_pct is within 2 points of the demo's page count (local and bind place whole spans).
expect_json() {
  echo "\$ numa_alloc_demo $* --json"
  "$demo" "$@" --json >"$out" || { echo "FAIL: exit $?"; failed=1; return; }
  python3 - "$out" <<'EOF' || failed=1
import json, sys
d = json.load(open(sys.argv[1]))
demo = d["demo"]
bad = [k for k, v in demo.items() if k.startswith("node") and d[k]["allocated_mb"] > 1
       and abs(d[k]["local_pct"] - v["local_pct"]) > 2]
print("ok: json" if demo["verified"] and not bad else "FAIL: json %s" % bad)
sys.exit(1 if bad or not demo["verified"] else 0)
EOF
}

case $layout in
2nodes)
  expect 0 --threads=8 --policy=local --seed=42
  expect_text "Remote allocations: 0.0%"
  expect 0 --threads=8 --policy=bind --node=1 --seed=42
  expect_text "Node 0: 0.0 MB allocated"
  expect 0 --threads=8 --policy=interleave --seed=42
  expect 0 --threads=8 --policy=rr --seed=42
  expect 1 --node=9
  expect_text "ERROR: node 9 not available"
  expect 1 --policy=sideways
  expect 1 --frobnicate
  expect_json --threads=8 --policy=local --seed=42
  expect_json --threads=8 --policy=bind --node=1 --seed=42
  ;;
4nodes)
  # Nodes 2 and 3 have memory and no CPU. 32 MiB: with transparent huge pages on, 64 MiB of
  # touched pages take over 100 MiB of huge pages, and a 128 MiB node spills to its neighbour.
  expect 0 --threads=8 --policy=local --seed=42
  expect 0 --threads=8 --policy=bind --node=2 --seed=42 --scale=32
  expect 0 --threads=8 --policy=bind --node=3 --seed=42 --scale=32
  expect 0 --threads=8 --policy=rr --seed=42
  expect 1 --node=4
  expect_text "ERROR: node 4 not available"
  ;;
*)
  echo "usage: demo_vm_check.sh DEMO 2nodes|4nodes" >&2
  exit 2
  ;;
esac
exit $failed
