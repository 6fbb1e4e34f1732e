#!/usr/bin/env bash
# stress_memory.sh: the peak resident memory of the stress program (tests/stress/stress), the
# process itself as the program's own summary line reports it ("stress: RSS start ... peak N
# MiB"), under numalloc's policies and under glibc. Run inside a multi-node VM (scripts/numa-vm)
# whose scheduler moves the threads between nodes, as a real kernel does with unpinned threads.
#
#   stress_memory.sh STRESS PRELOAD check GLIBC_MIB|glibc POLICY=RATIO...
#       runs STRESS under PRELOAD with each policy, and fails when a peak exceeds RATIO times
#       glibc's peak in two runs in a row; `glibc` measures that peak first in this VM (a run's
#       peak grows with how far the program gets in its time, so a figure measured on another
#       day or load is no base), GLIBC_MIB gives it
#   stress_memory.sh STRESS PRELOAD measure [RUNS]
#       RUNS rounds (default 3) of glibc, then numalloc local, interleave and rr; prints every
#       peak, then each one's median and its ratio to glibc's median
#
# The stress program runs 16 threads for STRESS_MEMORY_SECONDS (default 20) without its fork
# loop: forks under emulation take most of the run (a few hundred operations in a minute
# instead of tens of thousands), so the shared slots would never fill and the peak would
# measure how far the run got rather than the memory its steady state needs.
#
# With STRESS_MEMORY_MOVE_MS set, every thread of the program is moved to the CPUs of a node
# drawn at random that often (sched_setaffinity): a scheduler that moves threads a lot, in
# a short run. Without it, the guest's scheduler moves a thread to another node every few
# seconds, and a run must last a minute or more before heaps left behind add up.
set -uo pipefail

usage() {
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

(($# >= 3)) || usage
stress=$1 preload=$2 mode=$3
shift 3
seconds=${STRESS_MEMORY_SECONDS:-20}
[[ -x $stress && -r $preload ]] || {
  echo "stress_memory: no program $stress or library $preload" >&2
  exit 2
}

# mover PID MS: moves every thread of PID to a random node's CPUs every MS ms while it runs.
mover() {
  python3 - "$@" <<'PY'
import glob, os, random, sys, time
pid, period = int(sys.argv[1]), float(sys.argv[2]) / 1000
def cpus(path):
    out = set()
    for part in open(path).read().strip().split(","):
        if part:
            lo, _, hi = part.partition("-")
            out.update(range(int(lo), int(hi or lo) + 1))
    return out
nodes = [c for c in (cpus(p) for p in sorted(glob.glob("/sys/devices/system/node/node[0-9]*/cpulist"))) if c]
rng = random.Random(pid)
while os.path.exists("/proc/%d/task" % pid):
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        break
    for tid in tasks:
        try:
            os.sched_setaffinity(int(tid), rng.choice(nodes))
        except OSError:
            pass  # the thread exited meanwhile
    time.sleep(period)
PY
}

# run LABEL [ENV...]: prints the peak in MiB; fails when the run fails or prints no peak.
run() {
  local label=$1 out peak log pid move=${STRESS_MEMORY_MOVE_MS:-}
  shift
  log=$(mktemp)
  env "$@" "$stress" --seconds "$seconds" --threads 16 --fork-ms 0 --no-rss-check >"$log" 2>&1 &
  pid=$!
  [[ -z $move ]] || mover "$pid" "$move" &
  wait "$pid"
  local rc=$?
  wait
  out=$(<"$log")
  rm -f "$log"
  peak=$(sed -n 's/^stress: RSS start [0-9]* MiB, peak \([0-9]*\) MiB.*/\1/p' <<<"$out")
  if ((rc != 0)) || [[ -z $peak ]]; then
    echo "stress_memory: $label: the stress program failed (status $rc):" >&2
    tail -n 5 <<<"$out" >&2
    return 1
  fi
  echo "$peak"
}

run_numalloc() { run "$1" LD_PRELOAD="$preload" STRESS_EXPECT_NUMALLOC=1 NUMALLOC_POLICY="$1"; }

check() {
  local glibc=$1 spec policy ratio peak limit failed=0
  if [[ $glibc == glibc ]]; then
    glibc=$(run glibc LD_PRELOAD=) || return 1
    echo "stress_memory: glibc: peak $glibc MiB"
  fi
  [[ $glibc =~ ^[1-9][0-9]*$ ]] || usage
  shift
  (($#)) || usage
  for spec in "$@"; do
    policy=${spec%%=*} ratio=${spec#*=}
    [[ $ratio =~ ^[0-9]+(\.[0-9]+)?$ ]] || usage
    peak=$(run_numalloc "$policy") || return 1
    limit=$(awk -v r="$ratio" -v g="$glibc" 'BEGIN { printf "%d", r * g }')
    if ((peak > limit)); then
      # where the scheduler moved the threads decides much of a run's peak, and on a loaded
      # host the guest's threads stall and move more: a policy fails when a second run is
      # above the limit too
      echo "stress_memory: $policy: peak $peak MiB above the limit $limit MiB: once more"
      peak=$(run_numalloc "$policy") || return 1
    fi
    if ((peak > limit)); then
      echo "stress_memory: FAIL: $policy: peak $peak MiB, above $ratio x glibc's $glibc MiB = $limit MiB"
      failed=1
    else
      echo "stress_memory: $policy: peak $peak MiB ($(awk -v p="$peak" -v g="$glibc" \
        'BEGIN { printf "%.2f", p / g }') x glibc's $glibc MiB), limit $limit MiB: ok"
    fi
  done
  return "$failed"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

measure() {
  local runs=${1:-3} round variant peak
  local -A peaks=()
  local variants=(glibc local interleave rr)
  [[ $runs =~ ^[1-9][0-9]*$ ]] || usage
  for ((round = 1; round <= runs; round++)); do
    for variant in "${variants[@]}"; do
      if [[ $variant == glibc ]]; then
        peak=$(run glibc LD_PRELOAD=) || return 1
      else
        peak=$(run_numalloc "$variant") || return 1
      fi
      echo "stress_memory: round $round: $variant: peak $peak MiB"
      peaks[$variant]+="$peak "
    done
  done
  local base
  base=$(tr ' ' '\n' <<<"${peaks[glibc]}" | grep . | median)
  for variant in "${variants[@]}"; do
    peak=$(tr ' ' '\n' <<<"${peaks[$variant]}" | grep . | median)
    echo "stress_memory: median of $runs: $variant: $peak MiB ($(awk -v p="$peak" -v g="$base" \
      'BEGIN { printf "%.2f", p / g }') x glibc) from ${peaks[$variant]% }"
  done
}

case $mode in
check) check "$@" ;;
measure) measure "$@" ;;
*) usage ;;
esac
