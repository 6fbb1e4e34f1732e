#!/usr/bin/env bash
# A build-script-like shell workload for scripts/bench: what configure scripts, make recipes
# and CI steps do. Many short processes, most of them forked from a shell that holds a little
# memory (command substitutions, pipelines of sed, awk, sort, grep, tr, cut, wc), and small
# files written and read again. Most of the time goes to fork, exec and process start-up, so
# it measures what an allocator costs every process it loads into.
# Usage: bash shell_build.sh SCALE. Prints a digest that must not depend on the allocator.
set -euo pipefail
export LC_ALL=C
scale=${1:-1}
steps=$(awk -v s="$scale" 'BEGIN { n = int(120 * s); print (n < 10 ? 10 : n) }')
work=$(mktemp -d "${TMPDIR:-/tmp}/shell_build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# A fixed table of "sources", as a configure script keeps its list of checks.
declare -A seen
for ((i = 0; i < 64; i++)); do seen["unit_$i"]=$(( (i * 7919) % 1000 )); done

digest=0
for ((step = 0; step < steps; step++)); do
  name="unit_$((step % 64))"
  src="$work/$name.c"
  # write a small "source" file, then "configure" it: substitutions and checks
  {
    printf '/* %s step %d */\n' "$name" "$step"
    for ((k = 0; k < 12; k++)); do
      printf 'int %s_f%d(int x) { return x * %d + %d; }\n' "$name" "$k" "$((k + step))" "${seen[$name]}"
    done
  } >"$src"
  defines=$(grep -c '^int' "$src")
  upper=$(printf '%s' "$name" | tr 'a-z' 'A-Z')
  sed -e "s/$name/${upper}_OBJ/g" -e 's/return/yield/' "$src" >"$work/$name.i"
  sum=$(awk '{ for (i = 1; i <= NF; i++) n += length($i) } END { print n + 0 }' "$work/$name.i")
  first=$(sort -t_ -k3 "$work/$name.i" | head -n 3 | cut -c1-20 | tr -d ' \n' | wc -c)
  words=$(cat "$src" "$work/$name.i" | tr -s ' (){};,' '\n' | sort -u | wc -l)
  if [ "$((step % 8))" = 0 ]; then
    ls "$work" | sort | tail -n 2 >/dev/null
    rm -f "$work"/*.i
  fi
  digest=$(( (digest * 31 + defines + sum + first + words) % 1000000007 ))
done
echo "steps $steps digest $digest"
