#!/bin/sh
# cpuset-check.sh CONTAINER_VM PRELOAD_LIB: inside a VM of scripts/numa-vm with two nodes,
# runs `container_vm cpuset` in a cgroup v2 cpuset that starts with CPU 0 and node 0 only and
# that the program widens and narrows itself (as a container runtime resizing it would).
set -u
prog=$1
lib=$2
root=/sys/fs/cgroup
[ -e $root/cgroup.controllers ] || mount -t cgroup2 none $root || { echo "FAIL: no cgroup2"; exit 2; }
grep -qw cpuset $root/cgroup.controllers || { echo "FAIL: no cpuset controller"; exit 2; }
echo +cpuset >$root/cgroup.subtree_control || exit 2
group=$root/numalloc-cpuset.$$
mkdir $group || exit 2
echo 0 >$group/cpuset.cpus && echo 0 >$group/cpuset.mems || exit 2
sh -c 'echo $$ >"$1/cgroup.procs" && exec env LD_PRELOAD="$2" "$3" cpuset "$1"' sh "$group" "$lib" "$prog"
status=$?
echo "container_vm cpuset: exit $status"
exit $status
