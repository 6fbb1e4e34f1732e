/* topology_check.c: the NUMA topology seen inside the VM is the one QEMU was told to build, as
 * libnuma reports it and as sysfs does: node count, CPUs per node (0 for a memory-only node),
 * memory per node within what the kernel keeps for itself, the distance matrix, and that
 * automatic NUMA balancing is off. Runs inside scripts/numa-vm.
 * Usage: topology_check --expect-nodes N [--expect-cpus 1,1,0,0] [--expect-mem 256,256,128,128]
 *                       [--expect-dist 0-1=21,0>2=31,...]
 * CPU and memory lists default to 1 CPU and 256 MiB per node; --expect-dist takes scripts/numa-vm's
 * --dist syntax (A-B=V both ways, A>B=V one way, unnamed pairs 20). */
#define _GNU_SOURCE
#include <numa.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_NODES 64

typedef struct topology {
  int nodes;
  int cpus[MAX_NODES];     /* CPUs per node */
  long mem_mib[MAX_NODES]; /* memory per node */
  int dist[MAX_NODES][MAX_NODES];
} topology_t;

static int failures;

static void mismatch(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("topology_check: MISMATCH: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  failures++;
}

static void usage_error(const char *what) {
  fprintf(stderr, "topology_check: %s\n", what);
  exit(2);
}

/* ---- the expectation, from the command line ------------------------------------------------ */

static int parse_list(const char *s, long *out, int max) {
  int n = 0;
  for (;;) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || v < 0 || n == max) usage_error("bad number list");
    out[n++] = v;
    if (*end == '\0') return n;
    if (*end != ',') usage_error("bad number list");
    s = end + 1;
  }
}

static void parse_distances(const char *spec, topology_t *t) {
  const char *p = spec;
  while (*p != '\0') {
    int a, b, v, used;
    char sep;
    if (sscanf(p, "%d%c%d=%d%n", &a, &sep, &b, &v, &used) != 4 || (sep != '-' && sep != '>') ||
        a < 0 || b < 0 || a >= t->nodes || b >= t->nodes)
      usage_error("bad --expect-dist entry");
    t->dist[a][b] = v;
    if (sep == '-') t->dist[b][a] = v;
    p += used;
    if (*p == ',') p++;
  }
}

static void parse_expectation(int argc, char **argv, topology_t *t) {
  const char *cpus = NULL, *mem = NULL, *dist = NULL;
  long values[MAX_NODES];
  t->nodes = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--expect-nodes") == 0)
      t->nodes = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--expect-cpus") == 0)
      cpus = argv[i + 1];
    else if (strcmp(argv[i], "--expect-mem") == 0)
      mem = argv[i + 1];
    else if (strcmp(argv[i], "--expect-dist") == 0)
      dist = argv[i + 1];
    else
      usage_error("unknown option (see the usage at the top of topology_check.c)");
  }
  if (argc % 2 == 0 || t->nodes < 1 || t->nodes > MAX_NODES) usage_error("need --expect-nodes N");
  for (int i = 0; i < t->nodes; i++) {
    t->cpus[i] = 1;
    t->mem_mib[i] = 256;
    for (int j = 0; j < t->nodes; j++) t->dist[i][j] = i == j ? 10 : 20;
  }
  if (cpus != NULL && parse_list(cpus, values, MAX_NODES) != t->nodes) usage_error("cpus count");
  for (int i = 0; cpus != NULL && i < t->nodes; i++) t->cpus[i] = (int)values[i];
  if (mem != NULL && parse_list(mem, values, MAX_NODES) != t->nodes) usage_error("mem count");
  for (int i = 0; mem != NULL && i < t->nodes; i++) t->mem_mib[i] = values[i];
  if (dist != NULL) parse_distances(dist, t);
}

/* ---- sysfs -------------------------------------------------------------------------------- */

static int read_file(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  size_t n = fread(buf, 1, cap - 1, f);
  fclose(f);
  buf[n] = '\0';
  return 0;
}

/* A kernel list such as "0-3,5" as a bit set; -1 when malformed or beyond 64. */
static int parse_kernel_list(const char *s, uint64_t *set) {
  *set = 0;
  while (*s != '\0' && *s != '\n') {
    char *end;
    long lo = strtol(s, &end, 10), hi = lo;
    if (end == s) return -1;
    if (*end == '-') hi = strtol(end + 1, &end, 10);
    if (lo < 0 || hi < lo || hi >= 64) return -1;
    for (long i = lo; i <= hi; i++) *set |= (uint64_t)1 << i;
    s = *end == ',' ? end + 1 : end;
  }
  return 0;
}

static uint64_t sysfs_set(const char *path) {
  char buf[512];
  uint64_t set;
  if (read_file(path, buf, sizeof buf) != 0 || parse_kernel_list(buf, &set) != 0) {
    mismatch("cannot read the list in %s", path);
    return 0;
  }
  return set;
}

static long sysfs_mem_mib(int node) {
  char path[128], buf[4096];
  snprintf(path, sizeof path, "/sys/devices/system/node/node%d/meminfo", node);
  if (read_file(path, buf, sizeof buf) != 0) return -1;
  const char *p = strstr(buf, "MemTotal:");
  return p == NULL ? -1 : strtol(p + 9, NULL, 10) / 1024;
}

static void read_sysfs(topology_t *t) {
  char path[128], buf[1024];
  uint64_t online = sysfs_set("/sys/devices/system/node/online");
  t->nodes = __builtin_popcountll(online);
  for (int i = 0; i < t->nodes; i++) {
    snprintf(path, sizeof path, "/sys/devices/system/node/node%d/cpulist", i);
    t->cpus[i] = __builtin_popcountll(sysfs_set(path));
    t->mem_mib[i] = sysfs_mem_mib(i);
    snprintf(path, sizeof path, "/sys/devices/system/node/node%d/distance", i);
    char *p = buf;
    if (read_file(path, buf, sizeof buf) != 0) mismatch("cannot read %s", path);
    for (int j = 0; j < t->nodes; j++) t->dist[i][j] = (int)strtol(p, &p, 10);
  }
}

/* ---- libnuma ------------------------------------------------------------------------------ */

static void read_libnuma(topology_t *t) {
  struct bitmask *cpus = numa_allocate_cpumask();
  t->nodes = numa_max_node() + 1;
  if (t->nodes > MAX_NODES) t->nodes = MAX_NODES;
  for (int i = 0; i < t->nodes; i++) {
    t->cpus[i] = numa_node_to_cpus(i, cpus) == 0 ? (int)numa_bitmask_weight(cpus) : -1;
    long long size = numa_node_size64(i, NULL);
    t->mem_mib[i] = size < 0 ? -1 : (long)(size >> 20);
    for (int j = 0; j < t->nodes; j++) t->dist[i][j] = numa_distance(i, j);
  }
  numa_bitmask_free(cpus);
}

/* ---- comparison --------------------------------------------------------------------------- */

/* The kernel keeps its image, page tables and struct pages (1/64 of memory) off MemTotal. */
static int mem_plausible(long seen, long asked) {
  return seen <= asked && seen >= asked - 64 - asked / 32;
}

static void compare(const char *source, const topology_t *seen, const topology_t *want) {
  if (seen->nodes != want->nodes) {
    mismatch("%s: %d nodes, asked for %d", source, seen->nodes, want->nodes);
    return;
  }
  for (int i = 0; i < want->nodes; i++) {
    if (seen->cpus[i] != want->cpus[i])
      mismatch("%s: node %d has %d CPUs, asked for %d", source, i, seen->cpus[i], want->cpus[i]);
    if (!mem_plausible(seen->mem_mib[i], want->mem_mib[i]))
      mismatch("%s: node %d has %ld MiB, asked for %ld", source, i, seen->mem_mib[i],
               want->mem_mib[i]);
    for (int j = 0; j < want->nodes; j++)
      if (seen->dist[i][j] != want->dist[i][j])
        mismatch("%s: distance %d->%d is %d, asked for %d", source, i, j, seen->dist[i][j],
                 want->dist[i][j]);
  }
}

/* Memory-only nodes are in has_memory but not has_cpu; the CPU count is everyone's. */
static void check_node_states(const topology_t *want) {
  uint64_t with_cpus = 0, with_memory = 0;
  int total_cpus = 0;
  for (int i = 0; i < want->nodes; i++) {
    if (want->cpus[i] > 0) with_cpus |= (uint64_t)1 << i;
    if (want->mem_mib[i] > 0) with_memory |= (uint64_t)1 << i;
    total_cpus += want->cpus[i];
  }
  if (sysfs_set("/sys/devices/system/node/has_cpu") != with_cpus)
    mismatch("sysfs: has_cpu is not the nodes asked to have CPUs");
  if (sysfs_set("/sys/devices/system/node/has_memory") != with_memory)
    mismatch("sysfs: has_memory is not the nodes asked to have memory");
  if (numa_num_configured_nodes() != want->nodes)
    mismatch("libnuma: %d nodes with memory, asked for %d", numa_num_configured_nodes(),
             want->nodes);
  if (numa_num_configured_cpus() != total_cpus || sysconf(_SC_NPROCESSORS_ONLN) != total_cpus)
    mismatch("%d CPUs configured and %ld online, asked for %d", numa_num_configured_cpus(),
             sysconf(_SC_NPROCESSORS_ONLN), total_cpus);
}

static void check_numa_balancing_off(void) {
  char buf[16];
  if (read_file("/proc/sys/kernel/numa_balancing", buf, sizeof buf) == 0 && buf[0] != '0')
    mismatch("automatic NUMA balancing is on (%c)", buf[0]);
}

static void print_topology(const topology_t *t) {
  printf("node  cpus    MiB  distances\n");
  for (int i = 0; i < t->nodes; i++) {
    printf("%4d  %4d  %5ld ", i, t->cpus[i], t->mem_mib[i]);
    for (int j = 0; j < t->nodes; j++) printf(" %3d", t->dist[i][j]);
    printf("%s\n", t->cpus[i] == 0 ? "  (memory only)" : "");
  }
}

int main(int argc, char **argv) {
  static topology_t want, from_sysfs, from_libnuma;
  parse_expectation(argc, argv, &want);
  if (numa_available() < 0) {
    fprintf(stderr, "topology_check: libnuma says NUMA is not available\n");
    return 1;
  }
  read_sysfs(&from_sysfs);
  read_libnuma(&from_libnuma);
  printf("seen by libnuma:\n");
  print_topology(&from_libnuma);
  compare("sysfs", &from_sysfs, &want);
  compare("libnuma", &from_libnuma, &want);
  check_node_states(&want);
  check_numa_balancing_off();
  printf("topology_check: %s\n", failures ? "FAILED" : "the topology is as asked");
  return failures != 0;
}
