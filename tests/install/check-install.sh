#!/usr/bin/env bash
# check-install.sh BUILD_DIR: installs the build into a scratch folder (cmake --install
# --prefix) and checks what a user gets: the shared library and its links, the header, the
# command, its manual pages and numalloc.pc, and no static archive. A program built with the flags
# `pkg-config numalloc` gives, against the installed copy only, must run with numalloc as its
# allocator, and the command must find the installed library.
set -uo pipefail
build=${1:?usage: check-install.sh BUILD_DIR}
work=$(mktemp -d /tmp/numalloc-install.XXXXXX)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
failed=0
fail() { echo "FAIL: $*"; failed=1; }

cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 || {
  cat "$work/install.log"
  echo "FAIL: cmake --install"
  exit 1
}
(cd "$prefix" && find . -type f -o -type l | sort) >"$work/files"
echo "installed:"
sed 's/^/  /' "$work/files"

pcdir=$(dirname "$(grep -m1 '/pkgconfig/numalloc.pc$' "$work/files")")
[ "$pcdir" != . ] || fail "numalloc.pc was not installed"
libdir=$prefix/${pcdir#./}/..
libdir=$(cd "$libdir" && pwd)
for f in "$libdir/libnumapreload.so" "$libdir/libnumapreload.so.0" "$prefix/include/numalloc.h" \
  "$prefix/bin/numalloc" "$prefix/share/man/man1/numalloc.1.gz" "$prefix/share/man/man3/numalloc.3.gz"; do
  [ -e "$f" ] || fail "${f#"$prefix"/} was not installed"
done
[ -L "$libdir/libnumapreload.so" ] || fail "libnumapreload.so is not a link to the versioned file"
if grep -E '\.a$' "$work/files"; then fail "a static archive was installed (internal only)"; fi

export PKG_CONFIG_PATH=$libdir/pkgconfig
flags=$(pkg-config --cflags --libs numalloc) || fail "pkg-config numalloc failed"
echo "pkg-config --cflags --libs numalloc: $flags"
case $flags in *"-I$prefix/include"*) ;; *) fail "Cflags do not name $prefix/include" ;; esac
case $flags in *"-L$libdir "*) ;; *) fail "Libs do not name $libdir" ;; esac

# numalloc_node_of says whether a plain malloc() block is numalloc's: linking the library must
# make it the allocator, as the manual says.
cat >"$work/linked.c" <<'C'
#include <numalloc.h>
#include <stdio.h>
#include <stdlib.h>
int main(void) {
  void *plain = malloc(100);
  void *placed = numalloc_malloc_onnode(1 << 20, 0);
  int a = numalloc_node_of(plain), b = numalloc_node_of(placed);
  printf("malloc block on node %d, numalloc_malloc_onnode block on node %d\n", a, b);
  free(placed);
  free(plain);
  return a == 0 && b == 0 ? 0 : 1;
}
C
# shellcheck disable=SC2086 # the flags are words
if cc -o "$work/linked" "$work/linked.c" $flags 2>"$work/cc.log"; then
  LD_LIBRARY_PATH=$libdir "$work/linked" || fail "the linked program did not get numalloc's blocks"
  # ldd's whole output first: grep -q in a pipe exits at its match, and under pipefail the
  # SIGPIPE ldd may then get would read as a failure.
  deps=$(LD_LIBRARY_PATH=$libdir ldd "$work/linked")
  case $deps in *"$libdir/libnumapreload.so.0"*) ;;
    *) fail "the program is not linked against the installed library: $deps" ;; esac
else
  cat "$work/cc.log"
  fail "cc with the pkg-config flags"
fi

# The installed command finds the installed library (no build tree beside it).
out=$("$prefix/bin/numalloc" run -- printenv LD_PRELOAD 2>&1) || fail "numalloc run: $out"
case $out in "$libdir/libnumapreload.so"*) echo "numalloc run preloads $out" ;;
  *) fail "numalloc run preloaded '$out', not the installed library" ;; esac

out=$("$prefix/bin/numalloc" topology 2>&1) || fail "numalloc topology: $out"
case $out in "numalloc's view: "*) echo "${out%%$'\n'*}" ;; *) fail "numalloc topology: $out" ;; esac

[ $failed -eq 0 ] && echo "install: ok"
exit $failed
