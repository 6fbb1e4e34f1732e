#!/bin/bash
# vm-timeout-check.sh NUMA_VM: how scripts/numa-vm ends a run that does not finish. A command
# that hangs is stopped at the timeout, exit 124, with no second boot; a guest that never
# reaches its command (here a kernel left hanging: panic=0 and no init to run) is booted once
# more, then the run ends at the timeout with exit 124 too.
set -u
vm=${1:?usage: vm-timeout-check.sh NUMA_VM}
err=$(mktemp)
trap 'rm -f "$err"' EXIT
fails=0
retries() { grep -c "booting it once more" "$err"; }

"$vm" --node-cpus 1 --node-mem 256 --timeout 20 -- sleep 600 >/dev/null 2>"$err"
rc=$?
if [ $rc -ne 124 ] || [ "$(retries)" -ne 0 ]; then
  echo "FAIL: a hanging command: exit $rc, $(retries) second boot(s), want 124 and none"
  cat "$err"
  fails=1
else
  echo "ok: a hanging command stops at the timeout, exit 124, booted once"
fi

NUMA_VM_APPEND="panic=0 rdinit=/nonexistent" "$vm" --node-cpus 1 --node-mem 256 --timeout 8 \
  -- true >/dev/null 2>"$err"
rc=$?
if [ $rc -ne 124 ] || [ "$(retries)" -ne 1 ]; then
  echo "FAIL: a stalled boot: exit $rc, $(retries) second boot(s), want 124 and one"
  cat "$err"
  fails=1
else
  echo "ok: a stalled boot is booted once more, then ends at the timeout, exit 124"
fi
exit $fails
