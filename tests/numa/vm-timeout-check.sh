#!/bin/bash
# vm-timeout-check.sh NUMA_VM: how scripts/numa-vm ends a run that does not finish. A command
# that hangs is stopped at the timeout, exit 124, with no second boot; a guest that does not
# reach its command by the boot limit (here a kernel left hanging: panic=0 and no init to run)
# is booted once more, and when that stalls too the run ends with exit 124. An emulator that
# crashes before the command starts is run once more too; crashing twice ends with exit 125.
set -u
vm=${1:?usage: vm-timeout-check.sh NUMA_VM}
err=$(mktemp)
fake=$(mktemp -d)
trap 'rm -rf "$err" "$fake"' EXIT
fails=0
retries() { grep -c "booting it once more" "$err"; }

NUMA_VM_BOOT_LIMIT=15 "$vm" --node-cpus 1 --node-mem 256 --timeout 25 -- sleep 600 \
  >/dev/null 2>"$err"
rc=$?
if [ $rc -ne 124 ] || [ "$(retries)" -ne 0 ]; then
  echo "FAIL: a hanging command: exit $rc, $(retries) second boot(s), want 124 and none"
  cat "$err"
  fails=1
else
  echo "ok: a hanging command stops at the timeout, exit 124, booted once"
fi

start=$SECONDS
NUMA_VM_APPEND="panic=0 rdinit=/nonexistent" NUMA_VM_BOOT_LIMIT=5 "$vm" --node-cpus 1 \
  --node-mem 256 --timeout 100 -- true >/dev/null 2>"$err"
rc=$?
took=$((SECONDS - start))
if [ $rc -ne 124 ] || [ "$(retries)" -ne 1 ] || [ $took -ge 60 ]; then
  echo "FAIL: a stalled boot: exit $rc, $(retries) second boot(s) in $took s, want 124, one,"
  echo "and two boot limits of 5 s, not the 100 s timeout"
  cat "$err"
  fails=1
else
  echo "ok: a stalled boot is booted once more after the boot limit, then ends, exit 124 ($took s)"
fi
# A qemu-system-x86_64 first on PATH that dies of SIGSEGV in its first CRASHES runs.
real_qemu=$(command -v qemu-system-x86_64)
cat >"$fake/qemu-system-x86_64" <<EOF
#!/bin/bash
n=\$(cat "$fake/runs" 2>/dev/null || echo 0)
echo \$((n + 1)) >"$fake/runs"
((n < CRASHES)) && kill -SEGV \$\$
exec "$real_qemu" "\$@"
EOF
chmod +x "$fake/qemu-system-x86_64"
for crashes in 1 2; do
  want=$((crashes == 1 ? 0 : 125))
  rm -f "$fake/runs"
  CRASHES=$crashes PATH="$fake:$PATH" "$vm" --node-cpus 1 --node-mem 256 --timeout 100 -- true \
    >/dev/null 2>"$err"
  rc=$?
  runs=$(cat "$fake/runs")
  if [ $rc -ne $want ] || [ "$(retries)" -ne 1 ] || [ "$runs" -ne 2 ]; then
    echo "FAIL: QEMU crashing $crashes time(s): exit $rc, $(retries) second boot(s), $runs QEMU"
    echo "run(s), want exit $want, one second boot, two runs"
    cat "$err"
    fails=1
  else
    echo "ok: QEMU crashing $crashes time(s) while booting: booted once more, exit $rc"
  fi
done
exit $fails
