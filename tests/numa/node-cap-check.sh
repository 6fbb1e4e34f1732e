#!/bin/bash
# node-cap-check.sh NODE_CAP: inside a VM of scripts/numa-vm with node ids past 63, runs
# node_cap (numalloc's promises there) and checks what it said on stderr: exactly one line, the
# warning naming the nodes past the cap, however often the topology is read.
set -u
prog=${1:?usage: node-cap-check.sh NODE_CAP}
err=$(mktemp)
trap 'rm -f "$err"' EXIT
"$prog" 2>"$err"
rc=$?
highest=$(($(ls -d /sys/devices/system/node/node* | sed 's/.*node//' | sort -n | tail -1)))
want="numalloc: warning: NUMA nodes 64 to $highest are above the 64 numalloc can use"
if [ "$(wc -l <"$err")" -ne 1 ] || ! grep -qF "$want" "$err"; then
  echo "FAIL: stderr is not the one warning ($want ...):"
  cat "$err"
  rc=1
else
  echo "ok: one line on stderr: $(cat "$err")"
fi
exit $rc
