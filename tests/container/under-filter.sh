#!/bin/bash
# under-filter.sh NUMA_DENY COMMAND [ARGS...]
# Runs COMMAND (a test script that compares runs and checks stderr itself) with the NUMA
# system calls refused. Where this process may use memory of one node, all five are refused.
# Where it may use several, refused mbind rightly costs one warning line per process, which
# such scripts would count as a difference: there mbind stays permitted and the other four
# are refused (the VM tests count the warning line).
set -u
deny=${1:?usage: under-filter.sh NUMA_DENY COMMAND [ARGS...]}
shift
expand() { # the nodes of a kernel list such as 0-1,3, one a line
  local range
  for range in ${1//,/ }; do
    if [[ $range == *-* ]]; then seq "${range%-*}" "${range#*-}"; else echo "$range"; fi
  done
}
memory=$(cat /sys/devices/system/node/has_memory 2>/dev/null)
allowed=$(sed -n 's/^Mems_allowed_list:[[:space:]]*//p' /proc/self/status)
usable=$(comm -12 <(expand "$memory" | sort) <(expand "$allowed" | sort) | wc -l)
calls=mbind,set_mempolicy,get_mempolicy,move_pages,migrate_pages
if [ "$usable" -gt 1 ]; then
  calls=set_mempolicy,get_mempolicy,move_pages,migrate_pages
fi
echo "under-filter: refused: $calls"
exec "$deny" --deny "$calls" -- "$@"
