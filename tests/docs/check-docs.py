#!/usr/bin/env python3
"""check-docs.py PRELOAD_LIB SOURCE_DIR: the manual pages and the README against the library.

Every setting the library reads (the list NUMALLOC_VERBOSE=1 prints, with defaults) must have
an entry in numalloc(1)'s ENVIRONMENT and a row in the README's settings table, each naming
the same default when it is a single word; numalloc(1) must name no setting the library does
not know (NUMALLOC_LIBRARY belongs to the command). Every function numalloc.h exports must be
in numalloc(3)'s NAME and SYNOPSIS. Both pages must render with man --warnings and no warning.
"""
import os
import re
import shlex
import subprocess
import sys

lib, src = sys.argv[1], sys.argv[2]
failures = []


def fail(message):
    failures.append(message)
    print("FAIL: " + message)


def read(path):
    with open(os.path.join(src, path), encoding="utf-8") as f:
        return f.read()


def plain(roff):
    """Roff source as one line of words: font macros give their text (the alternating ones,
    .BR and the like, without spaces between their arguments), other requests nothing."""
    lines = []
    for line in roff.splitlines():
        m = re.match(r"\.([BI]|[BIR][BIR])(?:\s+(.*))?$", line)
        if m:
            words = shlex.split(m.group(2) or "", posix=True)
            lines.append((" " if len(m.group(1)) == 1 else "").join(words))
        elif not line.startswith("."):
            lines.append(line)
    text = re.sub(r"\\f[BIRP]|\\&|\\e", "", " ".join(lines)).replace("\\-", "-")
    return " ".join(text.split())


# The library's own table: "numalloc: option NUMALLOC_X=DEFAULT (description)".
run = subprocess.run(["/bin/ls", "/"], env={"LD_PRELOAD": lib, "NUMALLOC_VERBOSE": "1",
                                             "PATH": "/usr/bin:/bin"},
                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
options = dict(re.findall(r"^numalloc: option (NUMALLOC_[A-Z_]+)=(.*?) \(", run.stderr, re.M))
if len(options) < 5:
    print(run.stderr)
    sys.exit("FAIL: NUMALLOC_VERBOSE=1 listed %d settings: is %s numalloc?" % (len(options), lib))
options["NUMALLOC_VERBOSE"] = "0"  # it printed the value given, 1

page1 = read("docs/man/numalloc.1")
environment = page1.split(".SH ENVIRONMENT", 1)[1].split("\n.SH ", 1)[0]
entries = {}
for chunk in environment.split("\n.TP\n")[1:]:
    m = re.match(r"\.B (NUMALLOC_[A-Z_]+)\n", chunk)
    if m:
        entries[m.group(1)] = plain(chunk[m.end():])
readme = read("README.md")
rows = dict(re.findall(r"^\| `(NUMALLOC_[A-Z_]+)` \| (.*?) \|", readme, re.M))

for name, default in options.items():
    simple = re.fullmatch(r"[A-Za-z0-9]+", default) is not None
    if name not in entries:
        fail("numalloc(1) has no ENVIRONMENT entry for %s" % name)
    elif simple and not entries[name].startswith("(default: %s)" % default):
        fail("numalloc(1) gives %s a default other than %s: %s" % (name, default,
                                                                   entries[name][:60]))
    if name not in rows:
        fail("README's settings table has no row for %s" % name)
    elif simple and rows[name].replace("`", "") != default:
        fail("README gives %s the default %s, the library %s" % (name, rows[name], default))
for name in entries:
    if name not in options and name != "NUMALLOC_LIBRARY":
        fail("numalloc(1) documents %s, which the library does not read" % name)

header = read("include/numalloc.h")
functions = re.findall(r"NUMALLOC_EXPORT[^;(]*?\b(numalloc_[a-z_]+)\(", header)
page3 = read("docs/man/numalloc.3")
name_section = plain(page3.split(".SH NAME", 1)[1].split("\n.SH ", 1)[0])
synopsis = page3.split(".SH SYNOPSIS", 1)[1].split("\n.SH ", 1)[0]
for function in functions:
    if not re.search(r"\b%s\b" % function, name_section):
        fail("numalloc(3) NAME does not list %s" % function)
    if not re.search(r"\b%s\(" % function, synopsis):
        fail("numalloc(3) SYNOPSIS does not declare %s" % function)
for macro in re.findall(r"#define (NUMALLOC_NODE_[A-Z_]+)", header):
    if macro not in page3:
        fail("numalloc(3) does not mention %s" % macro)

for page in ("docs/man/numalloc.1", "docs/man/numalloc.3"):
    check = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z",
                            os.path.join(src, page)], env=dict(os.environ, MANROFFSEQ=""),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           check=False)
    if check.returncode != 0 or check.stderr.strip():
        fail("%s renders with warnings: %s" % (page, check.stderr.strip()))

print("%d settings, %d functions checked" % (len(options), len(functions)))
sys.exit(1 if failures else 0)
