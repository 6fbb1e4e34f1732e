#!/usr/bin/env python3
"""numa-patterns-report.py: turns the profiler's JSON reports of scripts/numa-patterns into
DIR/results.md (the tables, the recommended policy per pattern, the targets) and the chart data
DIR/chart-LAYOUT.dat. Called by scripts/numa-patterns; reads DIR/runs.tsv and DIR/json/."""
import argparse
import json
import os

PEERS = ["glibc", "jemalloc", "tcmalloc", "mimalloc"]
POLICIES = ["numalloc", "numalloc-local", "numalloc-interleave", "numalloc-rr", "numalloc-weighted"]
LAYOUT_TEXT = {
    "2": "two nodes, one CPU and 512 MiB each, distance 21",
    "4": "four nodes, one CPU and 384 MiB each, distance 21 within the pairs 0-1 and 2-3, 31 between them",
}
PATTERNS = {
    "reuse": ("memory freed on one node, reused on another",
              "the main thread on CPU 0 allocates, writes and frees 100,000 x 1 KiB; then a thread "
              "on CPU 1 builds a 40,000-block list of 1 KiB blocks and walks it 5 times"),
    "firsttouch": ("parallel first-touch initialisation",
                   "the main thread on CPU 0 allocates one 32 MiB array per CPU; worker i on CPU i "
                   "initialises its own and reads it 5 times"),
    "timesteps": ("parallel first touch, step after step",
                  "4 times, the main thread on CPU 0 allocates one 24 MiB array per CPU, worker i "
                  "on CPU i initialises its own and reads it twice, and the main thread frees "
                  "them all (in reverse order every other step)"),
    "private": ("per-thread private working sets",
                "one thread per CPU allocates 20,000 objects of 16-512 bytes and 5 times reads "
                "them all, replacing a fifth with new ones"),
    "shared": ("a shared read-mostly table",
               "the main thread on CPU 0 fills a 32 MiB table; one thread per CPU reads 400,000 "
               "random lines, writing one in a hundred"),
    "prodcons": ("producer to consumer across nodes",
                 "a producer on CPU 0 allocates and writes 100,000 messages of 256 B-2 KiB; a "
                 "consumer on the last CPU reads and frees them"),
    "migrate": ("a thread that moves to another node",
                "a thread builds, reads 3 times and frees 20,000 x 1 KiB on CPU 0, then moves to "
                "the last CPU and does the same with 5 reads"),
    "dicts": ("Python (the program scripts/demo runs)",
              "two threads, pinned to CPUs 0 and 1, build dictionaries of 300,000 entries with "
              "PYTHONMALLOC=malloc; counted for the whole interpreter run"),
}
# Another numalloc setting is recommended over the default only when it is at least this much
# faster: repeated runs of allocators that act on timers differ by a few percent (see the page).
MARGIN = 0.05
# Where placement alone decides: every thread can have all its misses local.
PRIVATE_PATTERNS = ["reuse", "firsttouch", "timesteps", "private", "migrate"]


def load(out):
    """Every combination's runs, reduced to the median run by memory time (the lower of the
    two middle ones), which also keeps the list of all its runs' figures."""
    every = {}
    with open(os.path.join(out, "runs.tsv")) as f:
        for line in f:
            layout, pattern, alloc, status, _, n = line.rstrip("\n").split("\t")
            run = {"status": status}
            if status == "ok":
                with open(os.path.join(out, "json", "%s.%s.%s.%s.json" % (layout, pattern, alloc, n))) as j:
                    run["report"] = json.load(j)
                run.update(summarize(run["report"]))
            every.setdefault((layout, pattern, alloc), []).append(run)
    runs = {}
    for key, all_runs in every.items():
        good = sorted([r for r in all_runs if r["status"] == "ok" and r["time"] is not None],
                      key=lambda r: r["time"])
        if not good:
            runs[key] = all_runs[0]
            continue
        chosen = dict(good[(len(good) - 1) // 2])
        chosen["times"] = [r["time"] for r in good]
        chosen["remotes"] = [r["worst_remote"] or 0 for r in good]
        chosen["failed"] = len(all_runs) - len(good)
        runs[key] = chosen
    return runs


def summarize(report):
    """The threads that count (those with at least 1% of the misses), the worst one's remote
    share, the slowest one's memory time, and the spread of misses over the nodes."""
    cpus = report["cpus"]
    total = sum(c["misses"] for c in cpus)
    busy = [c for c in cpus if c["misses"] >= max(1000, total / 100)]
    worst = max(busy, key=lambda c: c["remote_pct"] or 0) if busy else None
    slowest = max(busy, key=lambda c: c["memory_ms"]) if busy else None
    return {
        "busy": busy,
        "worst_remote": worst["remote_pct"] if worst else None,
        "worst_cpu": worst["cpu"] if worst else None,
        "overall_remote": report["total"]["remote_pct"],
        "time": slowest["memory_ms"] if slowest else None,
        "slowest_cpu": slowest["cpu"] if slowest else None,
    }


def ok(runs, key):
    return key in runs and runs[key]["status"] == "ok" and runs[key]["time"] is not None


def best_peer_time(runs, layout, pattern):
    times = [runs[layout, pattern, p]["time"] for p in PEERS if ok(runs, (layout, pattern, p))]
    return min(times) if times else None


def recommend(runs, layout, pattern, allocators):
    """The numalloc policy with the lowest slowest-thread memory time; the default unless that
    one is faster by MARGIN."""
    cands = [a for a in POLICIES if a in allocators and ok(runs, (layout, pattern, a))]
    if not cands:
        return None
    best = min(cands, key=lambda a: runs[layout, pattern, a]["time"])
    if "numalloc" in cands and runs[layout, pattern, "numalloc"]["time"] * (1 - MARGIN) <= runs[layout, pattern, best]["time"]:
        return "numalloc"
    return best


def policy_name(alloc):
    return "default" if alloc == "numalloc" else alloc.replace("numalloc-", "")


def tables(runs, layout, patterns, allocators, lines, dat):
    header = "| pattern | " + " | ".join(allocators) + " |"
    rule = "| --- |" + " ---: |" * len(allocators)
    lines += ["### Remote share of the worst thread's misses (all threads' in brackets)", "", header, rule]
    for p in patterns:
        cells = []
        for a in allocators:
            r = runs.get((layout, p, a))
            if not r:
                cells.append("-")
            elif r["status"] != "ok":
                cells.append("FAILED (%s)" % r["status"])
            else:
                cells.append("%.1f%% (%.1f%%)" % (r["worst_remote"] or 0, r["overall_remote"]))
        lines.append("| %s | %s |" % (p, " | ".join(cells)))
    lines += ["", "### Estimated memory time of the slowest thread, ms (ratio to the best peer)", "",
              header, rule]
    for p in patterns:
        best = best_peer_time(runs, layout, p)
        cells = []
        for a in allocators:
            r = runs.get((layout, p, a))
            if not r:
                cells.append("-")
            elif r["status"] != "ok":
                cells.append("FAILED (%s)" % r["status"])
            else:
                cells.append("%.1f (%.2fx)" % (r["time"], r["time"] / best) if best else "%.1f" % r["time"])
        lines.append("| %s | %s |" % (p, " | ".join(cells)))
    lines.append("")
    with open(dat, "w") as f:
        f.write("pattern %s %s\n" % (" ".join(allocators), " ".join(allocators)))
        for p in patterns:
            best = best_peer_time(runs, layout, p)
            rem = ["%.2f" % runs[layout, p, a]["worst_remote"] if ok(runs, (layout, p, a)) else "?" for a in allocators]
            tim = ["%.3f" % (runs[layout, p, a]["time"] / best) if ok(runs, (layout, p, a)) and best else "?"
                   for a in allocators]
            f.write("%s %s %s\n" % (p, " ".join(rem), " ".join(tim)))


def ratio_text(ratio):
    """A ratio that rounds to 1.000x also says by how much it is over or under: the verdict is
    strict, and repeated runs of one program differ in their counts by that order."""
    if round(ratio, 3) == 1.0 and ratio != 1.0:
        return "1.000x (%+.3f%%)" % (100 * (ratio - 1))
    return "%.3fx" % ratio


def verdict(value, bound):
    return "met" if value <= bound else "MISSED"


def targets(runs, layouts, patterns, allocators, lines):
    lines += ["## Targets", "", "| target | layout | result |", "| --- | --- | --- |"]

    def row(target, layout, verdict):
        lines.append("| %s | %d nodes | %s |" % (target, int(layout), verdict))

    for layout in layouts:
        for p in [p for p in PRIVATE_PATTERNS if p in patterns]:
            key = (layout, p, "numalloc")
            if not ok(runs, key):
                continue
            worst = runs[key]["worst_remote"] or 0
            row("numalloc default: every thread <= 2%% remote on %s" % p, layout,
                "%.1f%% (CPU %s): %s" % (worst, runs[key]["worst_cpu"], "met" if worst <= 2 else "MISSED"))
        key = (layout, "shared", "numalloc-interleave")
        if ok(runs, key):
            n = len(runs[key]["report"]["nodes"])
            off = max(abs(s - 100.0 / n) for c in runs[key]["busy"] for s in c["served_pct"])
            row("interleave: shared table's misses within 5 points of an even split", layout,
                "%.1f points at most: %s" % (off, "met" if off <= 5 else "MISSED"))
            local = (layout, "shared", "numalloc-local")
            if ok(runs, local):
                a, b = runs[key]["time"], runs[local]["time"]
                row("interleave: shared table's memory time <= local's", layout,
                    "%.1f ms against %.1f: %s" % (a, b, verdict(a, b)))
        for p in patterns:
            key = (layout, p, "numalloc")
            best = best_peer_time(runs, layout, p)
            if ok(runs, key) and best:
                ratio = runs[key]["time"] / best
                row("numalloc default: memory time <= every peer's on %s" % p, layout,
                    "%s the best peer: %s" % (ratio_text(ratio), verdict(ratio, 1.0)))
        for p in patterns:
            rec = recommend(runs, layout, p, allocators)
            best = best_peer_time(runs, layout, p)
            if rec and best:
                ratio = runs[layout, p, rec]["time"] / best
                row("recommended policy: memory time < every peer's on %s" % p, layout,
                    "%s, %s the best peer: %s" % (policy_name(rec), ratio_text(ratio), "met" if ratio < 1 else "MISSED"))
    lines.append("")


def variation(runs, lines):
    """The spread of the combinations run more than once."""
    repeated = sorted(k for k, r in runs.items() if len(r.get("times", [])) > 1)
    lines += ["## Run-to-run variation", "",
              "The emulation runs at a fraction of real speed and its vCPUs share two host cores with",
              "other work, so what depends on wall-clock time changes from run to run: jemalloc's decay,",
              "mimalloc's and numalloc's purge delays, Python's switching between threads every 5 ms,",
              "and which thread reaches a shared line first. Allocators whose placement depends on none",
              "of these give the same counts every time."]
    if not repeated:
        lines += ["", "No combination was run more than once for this page.", ""]
        return
    lines += ["", "| layout | pattern | allocator | runs | memory time, ms (min-max) | spread | worst thread remote (min-max) |",
              "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for layout, pattern, alloc in repeated:
        r = runs[layout, pattern, alloc]
        t, m = r["times"], r["remotes"]
        lines.append("| %s nodes | %s | %s | %d%s | %.1f-%.1f | %.1f%% | %.1f%%-%.1f%% |" % (
            layout, pattern, alloc, len(t), " (+%d failed)" % r["failed"] if r["failed"] else "",
            min(t), max(t), 100 * (max(t) - min(t)) / min(t), min(m), max(m)))
    lines.append("")


def main():
    ap = argparse.ArgumentParser()
    for opt in ["out", "layouts", "patterns", "allocators", "machine", "versions", "date"]:
        ap.add_argument("--" + opt, required=True)
    ap.add_argument("--notes", help="Markdown written by hand about a run, put after the targets")
    args = ap.parse_args()
    layouts = args.layouts.split(",")
    patterns = args.patterns.split(",")
    allocators = args.allocators.split(",")
    runs = load(args.out)
    some = next((r["report"] for r in runs.values() if r["status"] == "ok"), None)
    llc = "%d KiB %d-way" % (some["llc"]["bytes"] >> 10, some["llc"]["ways"]) if some else "?"
    latency = some["latency_ns_at_distance_10"] if some else 90
    lines = ["# NUMA access patterns: where each thread's misses are served", "",
             "%s. Machine: %s. Allocators: %s." % (args.date, args.machine, args.versions), "",
             "Every pattern runs in its own emulated NUMA machine (`scripts/numa-vm --profile`, QEMU",
             "TCG) with each thread pinned to its own CPU, one CPU per node. The profiler counts every",
             "user-space load and store of the program between its markers (the whole command for",
             "Python), simulates a %s last-level cache per node with 64-byte lines, and" % llc,
             "charges each miss to the node whose memory served it; a miss costs %g ns x distance / 10." % latency,
             "*Remote* is the share of a thread's misses served by another node; the tables show the",
             "worst thread of each pattern, and in brackets the share over all threads. *Memory time* is",
             "the slowest thread's estimated memory time (the threads run side by side), with its ratio",
             "to the best of the peers (%s). Threads with under 1%% of the misses are left out."
             % ", ".join(PEERS),
             "numalloc runs with its default settings and with `NUMALLOC_POLICY` set to each policy",
             "(`weighted` with equal weights: numalloc's own spreading against the kernel's pages).",
             "FAILED means the run did not finish, lost its preload, or the profiler could not confirm",
             "the memory layout. Timings of the emulation itself mean nothing; these figures are counts.",
             "", "## Patterns", ""]
    for p in patterns:
        title, what = PATTERNS[p]
        lines.append("- **%s**, %s: %s." % (p, title, what))
    lines.append("")
    for layout in layouts:
        lines += ["## %s nodes: %s" % (layout, LAYOUT_TEXT.get(layout, "")), ""]
        tables(runs, layout, patterns, allocators, lines, os.path.join(args.out, "chart-%s.dat" % layout))
        lines += ["![%s-node chart](numa-%snodes.png)" % (layout, layout), ""]
    lines += ["## Recommended policy per pattern", "",
              "The numalloc setting with the lowest memory time of the slowest thread (the default unless",
              "another is at least %d%% lower), with that time against the best peer's." % (100 * MARGIN), "",
              "| pattern | " + " | ".join("%s nodes" % l for l in layouts) + " |",
              "| --- |" + " --- |" * len(layouts)]
    for p in patterns:
        cells = []
        for layout in layouts:
            rec = recommend(runs, layout, p, allocators)
            best = best_peer_time(runs, layout, p)
            if rec is None:
                cells.append("-")
            else:
                t = runs[layout, p, rec]["time"]
                cells.append("%s (%.2fx the best peer)" % (policy_name(rec), t / best) if best else policy_name(rec))
        lines.append("| %s | %s |" % (p, " | ".join(cells)))
    lines.append("")
    targets(runs, layouts, patterns, allocators, lines)
    if args.notes and os.path.exists(args.notes):
        with open(args.notes) as f:
            lines += [f.read().rstrip("\n"), ""]
    variation(runs, lines)
    lines += ["## Reproducing", "",
              "`scripts/numa-patterns --docs` runs the whole matrix, one VM at a time (about 45 minutes",
              "on two host cores under TCG), and rewrites this page and its charts; `--layouts`,",
              "`--patterns` and `--allocators` take subsets, `--runs N` repeats each combination,",
              "`--add` adds runs to those already in `build-numa/results` (the table above shows which",
              "were run more than once), and `--report` rebuilds the page from them. The JSON report of",
              "every run is kept in `build-numa/results/json/`. The reading of the figures comes from",
              "`tests/numa/patterns/findings.md`, written by hand for a run: read it again when the",
              "figures change. One pattern by hand, in the 2-node layout:", "",
              "```",
              "scripts/numa-vm --node-cpus 1,1 --node-mem 512,512 --dist 0-1=21 --profile \\",
              "  -- env LD_PRELOAD=$PWD/build/libnumapreload.so build-numa/patterns/pattern_reuse",
              "```", ""]
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
