/* model.c: parsing and checking the machine description the VM harness hands the plugin. */
#include "model.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return -1;
}

/* An unsigned number (decimal, or hex with 0x) filling [s, end); false if anything else. */
static bool parse_u64(const char *s, const char **end, uint64_t *out) {
  if (*s < '0' || *s > '9') return false;
  errno = 0;
  char *e;
  unsigned long long v = strtoull(s, &e, 0);
  if (errno || e == s) return false;
  *out = v;
  *end = e;
  return true;
}

/* A whole value that is one number, at most max. */
static bool parse_uint(const char *s, uint64_t max, uint64_t *out) {
  const char *end;
  return parse_u64(s, &end, out) && *end == '\0' && *out <= max;
}

/* A byte size with an optional K, M or G suffix (powers of 1024). */
static bool parse_size(const char *s, uint64_t *out) {
  const char *end;
  uint64_t v;
  if (!parse_u64(s, &end, &v)) return false;
  int shift = 0;
  switch (*end) {
  case '\0': break;
  case 'k':
  case 'K': shift = 10, end++; break;
  case 'm':
  case 'M': shift = 20, end++; break;
  case 'g':
  case 'G': shift = 30, end++; break;
  default: return false;
  }
  if (*end != '\0' || v == 0 || v > (UINT64_MAX >> shift)) return false;
  *out = v << shift;
  return true;
}

/* Splits a ':' list of numbers into out[]; returns the count, or -1 on a bad item or too many. */
static int parse_list(const char *s, uint64_t *out, int max) {
  int n = 0;
  for (;;) {
    const char *end;
    if (n == max || !parse_u64(s, &end, &out[n])) return -1;
    n++;
    if (*end == '\0') return n;
    if (*end != ':') return -1;
    s = end + 1;
  }
}

static int cmp_range(const void *a, const void *b) {
  const np_range_t *x = a, *y = b;
  return x->start < y->start ? -1 : x->start > y->start;
}

static int parse_range(np_layout_t *l, const char *key, const char *v, char *err, size_t errlen) {
  const char *p;
  uint64_t node, start, end;
  if (l->ranges == NP_MAX_RANGES)
    return fail(err, errlen, "more than %d %s= ranges", NP_MAX_RANGES, key);
  if (!parse_u64(v, &p, &node) || *p != ':' || !parse_u64(p + 1, &p, &start) || *p != '-' ||
      !parse_u64(p + 1, &p, &end) || *p != '\0' || end <= start || node >= NP_MAX_NODES)
    return fail(err, errlen, "bad %s=%s (want NODE:START-END with START < END)", key, v);
  l->range[l->ranges++] = (np_range_t){.start = start, .end = end, .node = (int)node};
  return 0;
}

static int parse_one(np_model_t *m, const char *arg, uint64_t *dist, int *ndist, char *err,
                     size_t errlen) {
  const char *eq = strchr(arg, '=');
  if (!eq) return fail(err, errlen, "argument '%s' is not KEY=VALUE", arg);
  size_t klen = (size_t)(eq - arg);
  const char *v = eq + 1;
  uint64_t x, list[NP_MAX_CPUS];
#define KEY(name) (klen == sizeof(name) - 1 && memcmp(arg, name, klen) == 0)
  if (KEY("nodes")) {
    if (!parse_uint(v, NP_MAX_NODES, &x) || x == 0)
      return fail(err, errlen, "bad nodes=%s (want 1..%d)", v, NP_MAX_NODES);
    m->nodes = (int)x;
  } else if (KEY("cpus")) {
    int n = parse_list(v, list, NP_MAX_CPUS);
    if (n < 1)
      return fail(err, errlen, "bad cpus=%s (want the node of each vCPU, ':' separated)", v);
    for (int i = 0; i < n; i++) {
      if (list[i] >= NP_MAX_NODES)
        return fail(err, errlen, "cpus=%s: node %llu", v, (unsigned long long)list[i]);
      m->cpu_node[i] = (int)list[i];
    }
    m->cpus = n;
  } else if (KEY("mem")) {
    return parse_range(&m->layout[NP_LAYOUT_PHYS], "mem", v, err, errlen);
  } else if (KEY("ramblock")) {
    return parse_range(&m->layout[NP_LAYOUT_RAMBLOCK], "ramblock", v, err, errlen);
  } else if (KEY("dist")) {
    *ndist = parse_list(v, dist, NP_MAX_NODES * NP_MAX_NODES);
    if (*ndist < 1) return fail(err, errlen, "bad dist=%s (want a ':' list of numbers)", v);
  } else if (KEY("llc")) {
    if (!parse_size(v, &m->llc_bytes))
      return fail(err, errlen, "bad llc=%s (want a size like 1M)", v);
  } else if (KEY("ways")) {
    if (!parse_uint(v, 1024, &x) || x == 0)
      return fail(err, errlen, "bad ways=%s (want 1..1024)", v);
    m->llc_ways = (unsigned)x;
  } else if (KEY("line")) {
    if (!parse_uint(v, 4096, &x) || x < 8 || (x & (x - 1)))
      return fail(err, errlen, "bad line=%s (want a power of two, 8..4096)", v);
    m->line_bytes = (unsigned)x;
  } else if (KEY("latency")) {
    char *e;
    errno = 0;
    double ns = strtod(v, &e);
    if (errno || e == v || *e || !(ns > 0 && ns < 1e6))
      return fail(err, errlen, "bad latency=%s (want nanoseconds > 0)", v);
    m->latency_ns = ns;
  } else if (KEY("json")) {
    if (!*v) return fail(err, errlen, "json= needs a path");
    m->json_path = v;
  } else {
    return fail(err, errlen,
                "unknown argument '%.*s' (known: nodes cpus mem ramblock dist llc "
                "ways line latency json)",
                (int)klen, arg);
  }
#undef KEY
  return 0;
}

static int check_layout(const np_model_t *m, np_layout_t *l, char *err, size_t errlen) {
  qsort(l->range, (size_t)l->ranges, sizeof l->range[0], cmp_range);
  bool has_mem[NP_MAX_NODES] = {false};
  for (int i = 0; i < l->ranges; i++) {
    if (l->range[i].node >= m->nodes)
      return fail(err, errlen, "%s: node %d of %d", l->name, l->range[i].node, m->nodes);
    if (i > 0 && l->range[i].start < l->range[i - 1].end)
      return fail(err, errlen, "%s: ranges at 0x%llx and 0x%llx overlap", l->name,
                  (unsigned long long)l->range[i - 1].start, (unsigned long long)l->range[i].start);
    has_mem[l->range[i].node] = true;
    l->range[i].dense = l->bytes;
    l->bytes += l->range[i].end - l->range[i].start;
  }
  for (int n = 0; n < m->nodes; n++)
    if (!has_mem[n]) return fail(err, errlen, "%s: node %d has no range", l->name, n);
  return 0;
}

/* Everything given must agree: every CPU and range on an existing node, ranges disjoint, every
 * node with some memory, a full distance table with 10 on the diagonal, a cache of whole sets. */
static int check(np_model_t *m, const uint64_t *dist, int ndist, int expect_cpus, char *err,
                 size_t errlen) {
  if (m->nodes == 0) return fail(err, errlen, "nodes= is missing");
  if (m->cpus == 0) return fail(err, errlen, "cpus= is missing");
  if (expect_cpus >= 0 && m->cpus != expect_cpus)
    return fail(err, errlen, "cpus= names %d vCPUs, the machine has %d", m->cpus, expect_cpus);
  for (int i = 0; i < m->cpus; i++)
    if (m->cpu_node[i] >= m->nodes)
      return fail(err, errlen, "cpus=: vCPU %d on node %d of %d", i, m->cpu_node[i], m->nodes);
  if (m->layout[NP_LAYOUT_PHYS].ranges == 0) return fail(err, errlen, "no mem= range");
  for (int l = 0; l < NP_LAYOUTS; l++)
    if (m->layout[l].ranges && check_layout(m, &m->layout[l], err, errlen)) return -1;
  if (ndist != m->nodes * m->nodes)
    return fail(err, errlen, "dist= has %d entries, want %d for %d nodes", ndist,
                m->nodes * m->nodes, m->nodes);
  for (int i = 0; i < m->nodes; i++)
    for (int j = 0; j < m->nodes; j++) {
      uint64_t d = dist[i * m->nodes + j];
      if (i == j ? d != 10 : d <= 10 || d > 255)
        return fail(err, errlen,
                    "dist=: distance %llu from node %d to %d (want 10 to itself, "
                    "11..255 to another)",
                    (unsigned long long)d, i, j);
      m->dist[i][j] = (unsigned)d;
    }
  uint64_t set_bytes = (uint64_t)m->llc_ways * m->line_bytes;
  if (m->llc_bytes % set_bytes)
    return fail(err, errlen, "llc=%llu is not a whole number of %u-way sets of %u-byte lines",
                (unsigned long long)m->llc_bytes, m->llc_ways, m->line_bytes);
  return 0;
}

int np_model_parse(np_model_t *m, int argc, char **argv, int expect_cpus, char *err,
                   size_t errlen) {
  static uint64_t dist[NP_MAX_NODES * NP_MAX_NODES];
  int ndist = 0;
  memset(m, 0, sizeof *m);
  m->latency_ns = 90;
  m->llc_bytes = 1 << 20;
  m->llc_ways = 16;
  m->line_bytes = 64;
  m->layout[NP_LAYOUT_PHYS].name = "guest-physical";
  m->layout[NP_LAYOUT_RAMBLOCK].name = "ram-block";
  for (int i = 0; i < argc; i++)
    if (parse_one(m, argv[i], dist, &ndist, err, errlen)) return -1;
  return check(m, dist, ndist, expect_cpus, err, errlen);
}

bool np_node_has_cpus(const np_model_t *m, int n) {
  for (int i = 0; i < m->cpus; i++)
    if (m->cpu_node[i] == n) return true;
  return false;
}
