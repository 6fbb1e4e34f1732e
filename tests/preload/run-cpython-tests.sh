#!/bin/bash
# run-cpython-tests.sh PRELOAD_LIB [TEST_MODULE...]
# Runs a curated subset of CPython's own regression tests (Debian's libpython3.11-testsuite)
# with /usr/bin/python3, once without and once with LD_PRELOAD=PRELOAD_LIB, and compares the
# results test case by test case: every case that passes without the preload must pass with
# it, and the counts must match. A missing test suite is a failure, never a skip.
set -u
lib=${1:?usage: run-cpython-tests.sh PRELOAD_LIB [TEST_MODULE...]}
shift
[ -f "$lib" ] || { echo "FAIL: preload library $lib does not exist"; exit 2; }
lib=$(realpath "$lib")
python=/usr/bin/python3
jobs=${NUMALLOC_CPYTHON_JOBS:-2}

# Dicts, lists, sets, strings, json, re, threads, collections, pickle and the other
# allocation-heavy modules that run in about a minute on two cores.
modules=("$@")
[ ${#modules[@]} -gt 0 ] || modules=(
  test_dict test_list test_set test_unicode test_string test_json test_re test_threading
  test_collections test_pickle test_bytes test_tuple test_deque test_heapq test_sort test_long
  test_float test_itertools test_functools test_array test_struct test_gc test_weakref
  test_descr test_decimal test_fractions test_statistics test_zlib test_hashlib test_queue
  test_thread test_threading_local test_csv test_difflib test_enum test_dataclasses test_ast
  test_exceptions test_memoryview test_copy test_marshal test_unicodedata test_codecs
  test_xml_etree test_tracemalloc test_mmap test_userdict test_userlist test_userstring
  test_bisect test_random test_math test_int test_complex test_format test_textwrap test_pprint
  test_contextlib test_generators test_genexps test_iter test_dictviews test_ordered_dict
  test_defaultdict test_raise test_scope test_class test_super test_structseq test_slice
  test_bool test_builtin test_email test_zipfile test_lzma test_typing test_compile)

testdir=$($python -c 'import os, test; print(os.path.dirname(test.__file__))' 2>/dev/null)
if [ ! -e "$testdir/test_dict.py" ]; then
  echo "FAIL: CPython's test suite is not installed (apt-get install libpython3.11-testsuite)"
  exit 1
fi

work=$(mktemp -d /tmp/numalloc-cpython.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The preload must really be mapped into the interpreter, or the comparison proves nothing.
if ! LD_PRELOAD=$lib $python -c '
import os, sys
lib = os.path.basename(os.environ["LD_PRELOAD"])
sys.exit(0 if lib in open("/proc/self/maps").read() else 1)' 2>"$work/probe.err"; then
  echo "FAIL: $lib is not mapped into $python under LD_PRELOAD"
  cat "$work/probe.err"
  exit 1
fi

run_suite() { # run_suite MODE: writes $work/MODE.xml, .log and .rc
  local mode=$1 start=$SECONDS
  (
    cd "$work" || exit 1
    if [ "$mode" = preload ]; then export LD_PRELOAD=$lib; else unset LD_PRELOAD; fi
    exec timeout 900 $python -m test -j"$jobs" --junit-xml "$work/$mode.xml" "${modules[@]}"
  ) >"$work/$mode.log" 2>&1
  echo $? >"$work/$mode.rc"
  echo "$mode: regrtest exit $(cat "$work/$mode.rc") in $((SECONDS - start)) s:" \
    "$(grep -E '^(All [0-9]+ tests OK|[0-9]+ tests? (OK|failed))' "$work/$mode.log" | tr '\n' ' ')"
}

run_suite plain
run_suite preload

$python - "$work" "${modules[@]}" <<'EOF'
import re
import sys
import xml.etree.ElementTree as ET

work, modules = sys.argv[1], sys.argv[2:]


def results(mode):
    """{case name: passed|skipped|failed|error} from regrtest's JUnit XML."""
    out = {}
    try:
        root = ET.parse("%s/%s.xml" % (work, mode)).getroot()
    except (OSError, ET.ParseError) as e:
        print("FAIL: no readable results from the %s run: %s" % (mode, e))
        return out
    for case in root.iter("testcase"):
        tags = {child.tag for child in case}
        status = ("error" if "error" in tags else "failed" if "failure" in tags
                  else "skipped" if "skipped" in tags else "passed")
        out[case.get("name")] = status
    return out


def counts(res):
    c = {"passed": 0, "skipped": 0, "failed": 0, "error": 0}
    for status in res.values():
        c[status] += 1
    return c


plain, pre = results("plain"), results("preload")
rc = {m: int(open("%s/%s.rc" % (work, m)).read()) for m in ("plain", "preload")}
cp, cq = counts(plain), counts(pre)
fmt = "%-8s %6d cases: %6d passed, %4d skipped, %3d failed, %3d errors"
print(fmt % ("plain", len(plain), cp["passed"], cp["skipped"], cp["failed"], cp["error"]))
print(fmt % ("preload", len(pre), cq["passed"], cq["skipped"], cq["failed"], cq["error"]))

problems = []
if rc["preload"] != 0 and rc["plain"] == 0:
    problems.append("regrtest exited %d under the preload, 0 without%s" % (
        rc["preload"], " (killed by signal %d)" % (rc["preload"] - 128) if rc["preload"] > 128 else ""))
if rc["plain"] != 0:
    problems.append("regrtest failed even without the preload (exit %d)" % rc["plain"])
if not plain or cp["passed"] == 0:
    problems.append("the run without the preload passed nothing")
# A module regrtest could not run, skipped whole or that ran nothing tests nothing here.
plain_log = open("%s/plain.log" % work, errors="replace").read()
silent = sorted(set(re.findall(r"(test_\w+) (?:skipped|run no tests|crashed)", plain_log) +
                    re.findall(r"test (test_\w+) crashed", plain_log)))
if silent:
    problems.append("modules that did not run even without the preload: %s" % " ".join(silent))
if cq["passed"] != cp["passed"]:
    problems.append("passed cases differ: %d without, %d with" % (cp["passed"], cq["passed"]))
lost = sorted(n for n, s in plain.items() if s == "passed" and pre.get(n) != "passed")
for name in lost[:30]:
    problems.append("%s: passed without the preload, %s with it" % (name, pre.get(name, "missing")))
if len(lost) > 30:
    problems.append("... and %d more cases" % (len(lost) - 30))
for p in problems:
    print("FAIL: " + p)
bad_modules = sorted({n.split(".")[1] if n.startswith("test.") else n.split(".")[0] for n in lost})
print("CPython test modules under the preload: %d of %d as without it%s" %
      (len(modules) - len(bad_modules), len(modules),
       (" (differing: %s)" % " ".join(bad_modules)) if bad_modules else ""))
sys.exit(1 if problems else 0)
EOF
status=$?
if [ $status -ne 0 ]; then
  echo "--- regrtest log under the preload (failures and crashes):"
  grep -E -A12 'FAIL|ERROR|crashed|Traceback|Fatal|signal|killed' "$work/preload.log" | head -150
fi
exit $status
