#!/bin/bash
# check-bad-option.sh PRELOAD_LIB PROGRAM NAME=VALUE...
# For each bad NUMALLOC_* setting: PROGRAM (bad_option) runs under the preload with it, and
# must exit 0, print exactly one line on stderr naming the variable and the value, and end
# up with the same policy as a run without the setting (the default is kept); with
# NUMALLOC_VERBOSE=1 too, the printed configuration must not show the rejected value.
set -u
lib=${1:?usage: check-bad-option.sh PRELOAD_LIB PROGRAM NAME=VALUE...}
prog=${2:?usage: check-bad-option.sh PRELOAD_LIB PROGRAM NAME=VALUE...}
shift 2
[ $# -gt 0 ] || { echo "FAIL: no NAME=VALUE given"; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0

run() { # run OUT ERR [NAME=VALUE...]: the program under the preload, only those settings added
  local out=$1 err=$2
  shift 2
  env -u NUMALLOC_POLICY -u NUMALLOC_VERBOSE LD_PRELOAD="$lib" NUMALLOC_TEST_PRELOAD="$lib" \
    "$@" "$prog" >"$out" 2>"$err"
}

run "$tmp/ref.out" "$tmp/ref.err"
rc=$?
if [ $rc -ne 0 ] || [ -s "$tmp/ref.err" ]; then
  echo "FAIL: reference run without a bad setting: exit $rc, stderr:"
  cat "$tmp/ref.err"
  exit 1
fi
want_policy=$(grep '^policy in effect:' "$tmp/ref.out")

for setting in "$@"; do
  var=${setting%%=*}
  value=${setting#*=}
  run "$tmp/out" "$tmp/err" "$setting"
  rc=$?
  lines=$(wc -l <"$tmp/err")
  got_policy=$(grep '^policy in effect:' "$tmp/out")
  problems=()
  [ $rc -eq 0 ] || problems+=("exit status $rc")
  [ "$lines" -eq 1 ] || problems+=("$lines lines on stderr, want exactly 1")
  grep -q -- "$var" "$tmp/err" || problems+=("stderr does not name $var")
  grep -qF -- "$value" "$tmp/err" || problems+=("stderr does not show the value '$value'")
  if [ "$var" = NUMALLOC_POLICY ] && [ "$got_policy" != "$want_policy" ]; then
    problems+=("'$got_policy' instead of the default '$want_policy'")
  fi
  if [ "$var" != NUMALLOC_VERBOSE ]; then
    run "$tmp/vout" "$tmp/verr" "$setting" NUMALLOC_VERBOSE=1
    grep -qF -- "$var=$value (" "$tmp/verr" &&
      problems+=("NUMALLOC_VERBOSE=1 shows the rejected value as the configuration:" \
        "$(grep -F -- "$var=" "$tmp/verr" | grep -v warning | head -1)")
  fi
  if [ ${#problems[@]} -eq 0 ]; then
    echo "ok: $setting -> $(cat "$tmp/err")"
  else
    failed=1
    echo "FAIL: $setting: ${problems[*]}"
    echo "--- stderr:"; cat "$tmp/err"; echo "--- stdout:"; cat "$tmp/out"
  fi
done
exit $failed
