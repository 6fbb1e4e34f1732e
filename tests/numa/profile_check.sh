#!/usr/bin/env bash
# profile_check.sh: runs one command in a VM under the profiler (scripts/numa-vm --profile) and
# checks the JSON report for one vCPU, or for every vCPU with at least 1% of the misses (CPU
# "all"): the share of its LLC misses served by other nodes, or by one given node, against a
# bound; the scope the report claims; that the calibration confirmed the layout; and that at
# least MIN accesses were counted (a profiler that counts nothing fails).
# Usage: profile_check.sh NUMA_VM CPU|all CHECK MIN SCOPE [VM OPTIONS] -- COMMAND [ARG...]
#   CHECK: remote>=P, remote<=P or nodeN>=P (percent of the vCPU's misses)
#   SCOPE: markers or command
set -uo pipefail
numa_vm=$1 cpu=$2 check=$3 min=$4 scope=$5
shift 5
json=$(mktemp)
trap 'rm -f "$json"' EXIT
"$numa_vm" --profile --profile-json "$json" "$@"
rc=$?
if [ "$rc" -ne 0 ]; then
  echo "profile_check: the profiled run failed (status $rc)"
  exit 1
fi
python3 - "$json" "$cpu" "$check" "$min" "$scope" <<'PY'
import json, re, sys
path, which, check, least, scope = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
report = json.load(open(path))
total = sum(c["misses"] for c in report["cpus"])
if which == "all":
    rows = [c for c in report["cpus"] if c["misses"] >= max(1000, total / 100)]
else:
    rows = [c for c in report["cpus"] if c["cpu"] == int(which)]
failures = []
if report["layout"]["error"] is not None:
    failures.append("layout not verified: %s" % report["layout"]["error"])
if report["scope"] != scope:
    failures.append("scope %s, want %s" % (report["scope"], scope))
if sum(c["accesses"] for c in rows) < least:
    failures.append("cpu %s made %d accesses, want at least %d" % (which, sum(c["accesses"] for c in rows), least))
m = re.fullmatch(r"(remote|node(\d+))(>=|<=)(\d+(?:\.\d+)?)", check)
what, node, op, bound = m.group(1), m.group(2), m.group(3), float(m.group(4))
for row in rows:
    cpu = row["cpu"]
    value = row["remote_pct"] if node is None else row["served_pct"][int(node)]
    if value is None:
        failures.append("cpu %d had no misses" % cpu)
    elif not (value >= bound if op == ">=" else value <= bound):
        failures.append("cpu %d: %s %.2f%%, want %s %g%%" % (cpu, what, value, op, bound))
    print("profile_check: cpu %d: %d accesses, %d misses, remote %s%%, served by node %s%%" % (
        cpu, row["accesses"], row["misses"], row["remote_pct"], row["served_pct"]))
for f in failures:
    print("profile_check: FAIL: " + f)
sys.exit(1 if failures else 0)
PY
