#!/bin/bash
# maps-check.sh NUMA_DENY PRELOAD_LIB NUMALLOC_SCRIPT
# `numalloc maps PID` of a process whose mbind was refused must say that placement is not
# enforced (its memory carries no policy and is counted as other memory); of the same process
# with mbind permitted it must show numalloc's memory and no such line.
set -u
deny=${1:?usage: maps-check.sh NUMA_DENY PRELOAD_LIB NUMALLOC_SCRIPT}
lib=${2:?usage: maps-check.sh NUMA_DENY PRELOAD_LIB NUMALLOC_SCRIPT}
numalloc=${3:?usage: maps-check.sh NUMA_DENY PRELOAD_LIB NUMALLOC_SCRIPT}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0

# maps_of NAME CALLS: `numalloc maps` of a Python process holding 30 MiB under the preload,
# with CALLS refused; output in $tmp/NAME.
maps_of() {
  local name=$1 calls=$2
  "$deny" --deny "$calls" -- env LD_PRELOAD="$lib" /usr/bin/python3 -c '
import os, sys, time
blocks = [bytearray(100000) for _ in range(300)]
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write("%d\n" % os.getpid())
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(120)' "$tmp/$name.pid" &
  local runner=$! waited=0
  while [ ! -s "$tmp/$name.pid" ] && [ $waited -lt 300 ]; do sleep 0.1; waited=$((waited + 1)); done
  "$numalloc" maps "$(cat "$tmp/$name.pid" 2>/dev/null)" >"$tmp/$name" 2>&1
  kill "$runner" 2>/dev/null
  wait "$runner" 2>/dev/null
  echo "--- numalloc maps, $calls refused:"
  cat "$tmp/$name"
}

expect() { # expect NAME yes|no PATTERN
  local found=no
  grep -qE -- "$3" "$tmp/$1" && found=yes
  if [ "$found" = "$2" ]; then echo "ok: '$3' $([ "$2" = yes ] || echo "not ")shown"
  else echo "FAIL: '$3' $([ "$2" = yes ] && echo "missing" || echo "shown")"; failed=1; fi
}

maps_of refused mbind,set_mempolicy,get_mempolicy,move_pages,migrate_pages
expect refused yes '^numalloc placement: not enforced: .*mbind refused.*seccomp filter'
expect refused yes '^numalloc memory: 0\.0 MiB'
maps_of permitted move_pages,migrate_pages
expect permitted no 'not enforced'
expect permitted no '^numalloc memory: 0\.0 MiB'
exit $failed
