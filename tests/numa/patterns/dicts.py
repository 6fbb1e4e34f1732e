# dicts.py: the program scripts/demo runs (two threads building dictionaries of 300,000
# entries, every object from malloc when run with PYTHONMALLOC=malloc), with each thread pinned
# to its own CPU (thread i on CPU i) so the profiler's per-CPU figures are per thread. With
# PATTERN_EXPECT_LIB set, the library must be mapped into the process (the preload took).
import os, sys, threading

want = os.environ.get("PATTERN_EXPECT_LIB")
if want:
    with open("/proc/self/maps") as maps:
        if want not in maps.read():
            sys.exit("pattern: %s is not mapped: the preload did not take effect" % want)
if os.environ.get("PYTHONMALLOC") != "malloc":
    sys.exit("pattern: run with PYTHONMALLOC=malloc, or the allocator under test serves nothing")
os.sched_setaffinity(0, {0})
tables = []

def fill(seed):
    os.sched_setaffinity(0, {seed})
    tables.append({(seed, i): str(i) * 8 for i in range(300000)})

threads = [threading.Thread(target=fill, args=(s,)) for s in range(2)]
for t in threads: t.start()
for t in threads: t.join()
print("RESULT pattern=dicts cpus=%d entries=%d" % (os.cpu_count(), sum(map(len, tables))))
