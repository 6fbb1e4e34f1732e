#!/bin/bash
# run-denied.sh NUMA_DENY PRELOAD_LIB PROGRAM [ARGS...]
# PROGRAM under the preload twice: as usual, then under numa_deny (the five NUMA system calls
# refused with EPERM, as in a container without CAP_SYS_NICE). The refusal may change nothing
# the program shows: same exit status, and not one stderr line the usual run did not print;
# where the process may use memory of several nodes, but numalloc's one line saying that mbind
# is refused (for each process PROGRAM starts).
# NUMA_DENY_CALLS, when set, is passed as --deny (e.g. move_pages,migrate_pages: the calls a
# container with CAP_SYS_NICE still refuses).
set -u
deny=${1:?usage: run-denied.sh NUMA_DENY PRELOAD_LIB PROGRAM [ARGS...]}
lib=${2:?usage: run-denied.sh NUMA_DENY PRELOAD_LIB PROGRAM [ARGS...]}
shift 2
[ $# -gt 0 ] || { echo "FAIL: no program given"; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
deny_args=()
[ -n "${NUMA_DENY_CALLS:-}" ] && deny_args=(--deny "$NUMA_DENY_CALLS")

nodes_in_use() { # nodes with memory this process may use
  local range
  expand() { for range in ${1//,/ }; do
    if [[ $range == *-* ]]; then seq "${range%-*}" "${range#*-}"; else echo "$range"; fi; done; }
  comm -12 <(expand "$(cat /sys/devices/system/node/has_memory 2>/dev/null)" | sort) \
    <(expand "$(sed -n 's/^Mems_allowed_list:[[:space:]]*//p' /proc/self/status)" | sort) | wc -l
}

run() { # run NAME [WRAPPER...] -- : the program under the preload, output in $tmp/NAME.*
  local name=$1
  shift
  env LD_PRELOAD="$lib" NUMALLOC_TEST_PRELOAD="$lib" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
  echo $? >"$tmp/$name.rc"
}

run usual "$@"
run denied "$deny" "${deny_args[@]}" -- "$@"
usual_rc=$(cat "$tmp/usual.rc") denied_rc=$(cat "$tmp/denied.rc")
echo "exit status: $usual_rc as usual, $denied_rc with ${NUMA_DENY_CALLS:-all five calls} refused"
failed=0
if [ "$usual_rc" != "$denied_rc" ]; then
  echo "FAIL: the exit status changed"
  failed=1
fi
# Lines of the denied run's stderr that the usual run did not print (as many times).
extra=$(diff <(sort "$tmp/usual.err") <(sort "$tmp/denied.err") | sed -n 's/^> //p')
if [ "$(nodes_in_use)" -gt 1 ]; then
  extra=$(printf '%s\n' "$extra" | grep -v '^numalloc: warning: mbind refused (' || true)
fi
if [ -n "$extra" ]; then
  echo "FAIL: stderr lines only with the calls refused:"
  printf '%s\n' "$extra" | head -20
  failed=1
fi
if [ $failed -ne 0 ]; then
  echo "--- stdout with the calls refused (tail):"
  tail -20 "$tmp/denied.out"
fi
[ $failed -eq 0 ] && echo "ok: $(basename "$1"): nothing changed"
exit $failed
