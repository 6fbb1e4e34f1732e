"""Allocation-heavy Python for scripts/bench: records as dicts of strings and lists, a JSON round
trip, grouping, sorting and string building, in rounds that drop what the last round built.
Usage: python_alloc.py SCALE. Prints a digest that must not depend on the allocator."""
import hashlib
import json
import sys


class Node:
    def __init__(self, key, value, left=None, right=None):
        self.key = key
        self.value = value
        self.left = left
        self.right = right


def insert(root, key, value):
    # An unbalanced search tree of objects: many small objects with pointers between them.
    if root is None:
        return Node(key, value)
    node = root
    while True:
        if key < node.key:
            if node.left is None:
                node.left = Node(key, value)
                return root
            node = node.left
        else:
            if node.right is None:
                node.right = Node(key, value)
                return root
            node = node.right


def walk(root):
    total, stack = 0, [root]
    while stack:
        node = stack.pop()
        if node is None:
            continue
        total = (total * 31 + node.value) % 1000000007
        stack.append(node.left)
        stack.append(node.right)
    return total


def one_round(r, n, digest):
    seed = r * 7919 + 1
    records = []
    for i in range(n):
        seed = (seed * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        words = [f"w{(seed >> s) & 1023:x}" for s in range(0, 40, 5)]
        records.append({
            "id": i,
            "name": "-".join(words[:3]),
            "tags": words[3:],
            "score": (seed >> 20) % 100000,
            "meta": {"round": r, "even": i % 2 == 0, "text": " ".join(words) * 2},
        })
    text = json.dumps(records, sort_keys=True)
    back = json.loads(text)
    digest.update(hashlib.sha256(text.encode()).digest())

    groups = {}
    for rec in back:
        for tag in rec["tags"]:
            groups.setdefault(tag, []).append(rec["score"])
    summary = sorted((sum(v), len(v), k) for k, v in groups.items())
    digest.update(repr(summary[:50]).encode())

    root = None
    for rec in back:
        root = insert(root, rec["name"], rec["score"])
    digest.update(str(walk(root)).encode())

    parts = []
    for rec in back:
        parts.append(rec["name"].upper().replace("-", "_") + ":" + ",".join(sorted(rec["tags"])))
    joined = "\n".join(parts)
    counts = {}
    for word in joined.split(","):
        counts[word] = counts.get(word, 0) + 1
    digest.update(repr(sorted(counts.items())[:100]).encode())
    return len(text), len(groups), len(counts)


def main():
    scale = float(sys.argv[1])
    rounds = max(2, int(20 * scale))
    n = max(200, int(6000 * min(scale, 1.0)))
    digest = hashlib.sha256()
    total = [0, 0, 0]
    for r in range(rounds):
        for k, v in enumerate(one_round(r, n, digest)):
            total[k] += v
    print("rounds", rounds, "records", n, "json_bytes", total[0], "groups", total[1],
          "words", total[2])
    print("digest", digest.hexdigest())


main()
