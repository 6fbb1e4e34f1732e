#!/bin/bash
# topology-check.sh NUMA_DENY CONTAINER_VM PRELOAD_LIB: inside a VM of scripts/numa-vm, the
# topology numalloc reads from sysfs (nodes, memory, distances, allowed nodes, each CPU's node)
# matches libnuma's, and is the same with the NUMA system calls refused (stdout compared; a
# refused mbind is warned about on stderr).
set -u
deny=$1 prog=$2 lib=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
LD_PRELOAD=$lib "$prog" topology >"$tmp/plain" 2>&1
plain=$?
"$deny" -- env LD_PRELOAD="$lib" "$prog" topology >"$tmp/denied" 2>"$tmp/denied.err"
denied=$?
cat "$tmp/plain"
failed=0
[ $plain -eq 0 ] || { echo "FAIL: exit $plain"; failed=1; }
grep -q '^PASS: ' "$tmp/plain" || { echo "FAIL: no comparison with libnuma"; failed=1; }
[ $denied -eq 0 ] || { echo "FAIL: exit $denied with the calls refused"; failed=1; }
if grep -v '^PASS: ' "$tmp/plain" | cmp -s - "$tmp/denied"; then
  echo "ok: the same topology with the NUMA system calls refused"
else
  echo "FAIL: with the NUMA system calls refused:"
  diff <(grep -v '^PASS: ' "$tmp/plain") "$tmp/denied" 2>/dev/null || cat "$tmp/denied"
  failed=1
fi
exit $failed
