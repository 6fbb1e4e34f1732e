#!/usr/bin/env bash
# check-deb.sh DEB: installs the Debian package system-wide, uses it as a user would, removes
# it, and checks that nothing is left. It changes the system: run it only as root in a
# throw-away root, e.g. from the project checkout:
#   ../shared/tools/fresh-check 'scripts/package && tests/package/check-deb.sh build-package/numalloc_*.deb'
set -uo pipefail
deb=$(realpath "${1:?usage: check-deb.sh DEB}")
[ "$(id -u)" -eq 0 ] || { echo "check-deb.sh: run as root, in a throw-away root"; exit 2; }
failed=0
fail() { echo "FAIL: $*"; failed=1; }
step() { echo "== $*"; }
work=$(mktemp -d /tmp/numalloc-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
export DEBIAN_FRONTEND=noninteractive

step "apt-get install $deb"
apt-get install -y -qq "$deb" >"$work/install.log" 2>&1 || { cat "$work/install.log"; fail "install"; exit 1; }
dpkg -L numalloc >"$work/files"
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
for f in "/usr/lib/$multiarch/libnumapreload.so.0" "/usr/lib/$multiarch/pkgconfig/numalloc.pc" \
  /usr/include/numalloc.h /usr/bin/numalloc /usr/share/man/man1/numalloc.1.gz \
  /usr/share/man/man3/numalloc.3.gz; do
  grep -qx "$f" "$work/files" || fail "the package does not install $f"
done
if grep -E '\.a$' "$work/files"; then fail "the package holds a static archive"; fi

step "LD_PRELOAD=libnumapreload.so python3 (the bare name)"
out=$(LD_PRELOAD=libnumapreload.so NUMALLOC_STATS=1 python3 -c '
d = {i: str(i) * 4 for i in range(200000)}
print("entries", len(d))' 2>&1)
echo "$out"
grep -qx "entries 200000" <<<"$out" || fail "python3 under the preload"
grep -q "^numalloc: node" <<<"$out" || fail "no statistics from numalloc: the preload did not load"

step "numalloc run, numalloc maps"
numalloc run --stats -- python3 -c 'import os, subprocess
subprocess.run(["numalloc", "maps", str(os.getpid())], check=True)' >"$work/run.log" 2>&1 ||
  fail "numalloc run / maps"
cat "$work/run.log"
grep -q "^numalloc memory:" "$work/run.log" || fail "numalloc maps showed no numalloc memory"

step "numalloc topology"
numalloc topology >"$work/topology" 2>&1 || fail "numalloc topology"
cat "$work/topology"
grep -q "^numalloc's view: " "$work/topology" || fail "numalloc topology printed no view"

step "pkg-config --cflags --libs numalloc, and a program built with it"
flags=$(pkg-config --cflags --libs numalloc) || fail "pkg-config numalloc"
echo "$flags"
[ "$(echo "$flags" | xargs)" = "-lnumapreload" ] ||
  fail "pkg-config should give only -lnumapreload (system folders are implied), gave: $flags"
cat >"$work/p.c" <<'C'
#include <numalloc.h>
#include <stdio.h>
#include <stdlib.h>
int main(void) {
  void *p = malloc(64);
  printf("node_of(malloc block) = %d\n", numalloc_node_of(p));
  free(p);
  return numalloc_node_of(p) == -1 ? 1 : 0;
}
C
# shellcheck disable=SC2086 # the flags are words
if ! cc -o "$work/p" "$work/p.c" $flags || ! "$work/p"; then
  fail "a program linked with the pkg-config flags"
fi

step "man numalloc, man 3 numalloc"
if ! command -v man >/dev/null; then
  apt-get install -y -qq --no-install-recommends man-db >/dev/null 2>&1 || fail "installing man-db"
fi
MANWIDTH=80 man numalloc >"$work/man1" 2>&1 || fail "man numalloc"
MANWIDTH=80 man 3 numalloc >"$work/man3" 2>&1 || fail "man 3 numalloc"
head -n 8 "$work/man1"
grep -q "NUMALLOC_POLICY" "$work/man1" || fail "numalloc(1) lacks the environment"
grep -q "numalloc_malloc_onnode" "$work/man3" || fail "numalloc(3) lacks the API"

step "apt-get remove --purge numalloc"
apt-get remove --purge -y -qq numalloc >"$work/remove.log" 2>&1 || { cat "$work/remove.log"; fail "remove"; }
while read -r f; do
  [ -d "$f" ] && continue
  [ -e "$f" ] || [ -L "$f" ] && fail "$f is still there after removal"
done <"$work/files"
case $(ldconfig -p) in *libnumapreload*) fail "ld.so.cache still names libnumapreload" ;; esac
if LD_PRELOAD=libnumapreload.so /bin/true 2>&1 | grep -q "cannot be preloaded"; then
  echo "after removal: LD_PRELOAD=libnumapreload.so is not found, as expected"
else
  fail "after removal the loader still finds libnumapreload.so"
fi

[ $failed -eq 0 ] && echo "package: installs, works and removes cleanly"
exit $failed
