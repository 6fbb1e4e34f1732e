# workload.py: a CPython workload for run-real-programs.sh: dicts, sets, json, re, threads,
# big integers, sorting and cyclic garbage. Its output is deterministic, so the runs with and
# without the preload must print the same thing.
import collections
import gc
import hashlib
import json
import os
import re
import sys
import threading


def check_preload():
    """Under LD_PRELOAD the library must really be mapped, or the comparison proves nothing."""
    lib = os.environ.get("LD_PRELOAD")
    if not lib:
        return
    with open("/proc/self/maps") as maps:
        mapped = maps.read()
    if os.path.basename(os.path.realpath(lib)) not in mapped:
        sys.stderr.write("workload.py: %s is not mapped into the process\n" % lib)
        sys.exit(3)


def digest(obj):
    return hashlib.sha256(repr(obj).encode()).hexdigest()[:16]


def dicts():
    d = {}
    for i in range(300000):
        d["key%d" % (i * 7919 % 1000003)] = [i, str(i), i * 0.5]
    for i in range(0, 300000, 3):
        d.pop("key%d" % (i * 7919 % 1000003), None)
    counts = collections.Counter(len(k) for k in d)
    od = collections.OrderedDict(sorted(d.items())[:1000])
    dd = collections.defaultdict(list)
    for k, v in d.items():
        dd[v[0] % 17].append(k)
    return len(d), sorted(counts.items()), digest(list(od)), sorted((k, len(v)) for k, v in dd.items())


def sets():
    a = {i * i % 100003 for i in range(200000)}
    b = frozenset(range(0, 100003, 7))
    return len(a), len(a & b), len(a | b), len(a ^ b)


def json_roundtrip():
    doc = {
        "users": [
            {"id": i, "name": "user%d" % i, "tags": ["t%d" % (i % 10)] * (i % 5),
             "score": i / 7, "nested": {"a": [1, 2, {"b": None}], "ok": i % 2 == 0}}
            for i in range(20000)
        ]
    }
    text = json.dumps(doc, sort_keys=True)
    back = json.loads(text)
    pretty = json.dumps(back["users"][:50], indent=2, sort_keys=True)
    return len(text), back == doc, hashlib.sha256(text.encode()).hexdigest()[:16], len(pretty)


def regexes():
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    text = " ".join("%s%d@host%d.example" % (words[i % 8], i, i % 13) for i in range(50000))
    emails = re.findall(r"([a-z]+)(\d+)@host(\d+)\.example", text)
    replaced = re.sub(r"(\w+?)(\d+)@", lambda m: m.group(2) + "#", text)
    split = re.split(r"\s+", text)
    return len(emails), digest(emails[:100]), len(replaced), len(split)


def big_ints():
    f = 1
    for i in range(2, 3000):
        f *= i
    p = pow(3, 100003, 10 ** 400 + 7)
    s = str(2 ** 20000)
    return len(str(f)), f % 1000000007, p % 999983, len(s), sum(map(int, s)) % 1000


def threads():
    results = [None] * 8
    lock = threading.Lock()
    shared = []

    def work(n):
        local = {}
        for i in range(40000):
            local[(n, i)] = "x" * (i % 50)
        total = sum(len(v) for v in local.values())
        blob = json.dumps(sorted(local.items())[:500])
        with lock:
            shared.append(len(blob))
        results[n] = total

    ts = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return results, sorted(shared)


def garbage():
    class Node:
        def __init__(self, n):
            self.n = n
            self.peer = None
            self.data = [n] * 10

    made = 0
    for round_ in range(20):
        nodes = [Node(i) for i in range(10000)]
        for a, b in zip(nodes, nodes[1:] + nodes[:1]):
            a.peer = b
        made += len(nodes)
        del nodes
        gc.collect()
    return made


def sorting():
    data = [((i * 2654435761) % 4294967291, "s%d" % (i % 1000)) for i in range(200000)]
    data.sort()
    strs = sorted(str(x) for x, _ in data[:50000])
    return digest(data[:50]), digest(strs[-50:])


def main():
    check_preload()
    sys.set_int_max_str_digits(0)  # big_ints prints numbers of ~9000 digits
    for name, fn in [("dicts", dicts), ("sets", sets), ("json", json_roundtrip),
                     ("re", regexes), ("bigint", big_ints), ("threads", threads),
                     ("gc", garbage), ("sort", sorting)]:
        print(name, fn())


if __name__ == "__main__":
    main()
