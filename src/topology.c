/* topology.c: the machine as the allocator sees it, read once from libnuma at start: nodes
 * with memory and with CPUs, memory per node, distances, the nodes this process may use
 * (cpusets, numactl --membind), and from those, for every node, where to allocate for it. */
#include "internal.h"

#include <numa.h>
#include <string.h>

na_topology_t na_topology;

static void set_bit(uint64_t *mask, int node) { mask[0] |= (uint64_t)1 << node; }

static void read_single_node(na_topology_t *t) {
  t->node_count = 1;
  t->cpu_count = 1;
  t->has_memory[0] = t->has_cpus[0] = t->allowed[0] = 1;
  t->distance[0][0] = 10;
  for (size_t c = 0; c < sizeof t->cpu_node / sizeof t->cpu_node[0]; c++) t->cpu_node[c] = 0;
}

static void read_node(na_topology_t *t, int node, struct bitmask *cpus) {
  long long free_bytes = 0;
  long long size = numa_node_size64(node, &free_bytes);
  if (size > 0) {
    set_bit(t->has_memory, node);
    t->memory_bytes[node] = (size_t)size;
  }
  if (numa_node_to_cpus(node, cpus) == 0) {
    for (int c = 0; c < t->cpu_count && c < (int)(sizeof t->cpu_node / sizeof t->cpu_node[0]);
         c++) {
      if (numa_bitmask_isbitset(cpus, (unsigned)c)) {
        t->cpu_node[c] = (int16_t)node;
        set_bit(t->has_cpus, node);
      }
    }
  }
}

static void read_libnuma(na_topology_t *t) {
  t->node_count = numa_max_node() + 1;
  if (t->node_count > NA_MAX_NODES) {
    na_warning("%d NUMA nodes; numalloc uses the first %d", t->node_count, NA_MAX_NODES);
    t->node_count = NA_MAX_NODES;
  }
  t->cpu_count = numa_num_configured_cpus();
  struct bitmask *cpus = numa_allocate_cpumask();
  struct bitmask *mems = numa_get_mems_allowed();
  for (int node = 0; node < t->node_count; node++) {
    read_node(t, node, cpus);
    if (mems != NULL && numa_bitmask_isbitset(mems, (unsigned)node)) set_bit(t->allowed, node);
    for (int other = 0; other < t->node_count; other++) {
      int d = numa_distance(node, other);
      t->distance[node][other] = (uint8_t)(d > 0 && d < 256 ? d : (node == other ? 10 : 20));
    }
  }
  if (mems != NULL) numa_bitmask_free(mems);
  numa_bitmask_free(cpus);
}

void na_topology_init(void) {
  na_topology_t *t = &na_topology;
  memset(t, 0, sizeof *t);
  for (size_t c = 0; c < sizeof t->cpu_node / sizeof t->cpu_node[0]; c++) t->cpu_node[c] = -1;
  if (numa_available() < 0)
    read_single_node(t);
  else
    read_libnuma(t);
  if (t->allowed[0] == 0) t->allowed[0] = t->has_memory[0];
  na_topology_derive(t);
}

/* Nodes in order of distance from `node` (ties by id), among `candidates`. */
static int order_by_distance(const na_topology_t *t, int node, uint64_t candidates, int8_t *out) {
  int count = 0;
  uint64_t left = candidates;
  while (left != 0) {
    int best = -1;
    for (int n = 0; n < t->node_count; n++) {
      if (!((left >> n) & 1)) continue;
      if (best < 0 || t->distance[node][n] < t->distance[node][best]) best = n;
    }
    if (best < 0) break;
    out[count++] = (int8_t)best;
    left &= ~((uint64_t)1 << best);
  }
  if (count < NA_MAX_NODES) out[count] = -1;
  return count;
}

void na_topology_derive(na_topology_t *t) {
  uint64_t usable = t->allowed[0] & t->has_memory[0];
  if (na_options.nodes_set) {
    uint64_t restricted = usable & na_options.nodes_mask[0];
    if (restricted == 0)
      na_warning("NUMALLOC_NODES=\"%s\" names no node this process can use; using the "
                 "default, all allowed nodes",
                 na_options.nodes_text);
    else if (restricted != na_options.nodes_mask[0])
      na_warning("NUMALLOC_NODES=\"%s\" names nodes this process cannot use; they are ignored",
                 na_options.nodes_text);
    if (restricted != 0) usable = restricted;
  }
  if (usable == 0) usable = 1; /* nothing known: node 0, as the kernel would */
  t->usable[0] = usable;
  t->usable_count = 0;
  for (int n = 0; n < NA_MAX_NODES; n++)
    if ((usable >> n) & 1) t->usable_list[t->usable_count++] = n;
  int node_span = t->node_count > 0 ? t->node_count : 1;
  for (int n = 0; n < node_span; n++) {
    int count = order_by_distance(t, n, usable, t->fallback_order[n]);
    t->nearest_usable[n] = count > 0 ? t->fallback_order[n][0] : (int8_t)t->usable_list[0];
  }
}

int na_topology_cpu_node(int cpu) {
  if (cpu < 0 || cpu >= (int)(sizeof na_topology.cpu_node / sizeof na_topology.cpu_node[0]))
    return na_topology.usable_list[0];
  int node = na_topology.cpu_node[cpu];
  return node < 0 ? na_topology.usable_list[0] : node;
}

int numalloc_node_count(void) { return na_ensure_init() ? na_topology.node_count : 1; }

int numalloc_node_allowed(int node) {
  return na_ensure_init() && na_node_bit(na_topology.allowed, node);
}

int numalloc_node_has_memory(int node) {
  return na_ensure_init() && na_node_bit(na_topology.has_memory, node);
}

int numalloc_node_distance(int a, int b) {
  if (!na_ensure_init() || a < 0 || b < 0 || a >= na_topology.node_count ||
      b >= na_topology.node_count)
    return -1;
  return na_topology.distance[a][b];
}

int numalloc_current_node(void) {
  if (!na_ensure_init()) return 0;
  return na_topology_cpu_node(na_os_current_cpu());
}
