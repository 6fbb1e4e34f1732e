/* model.h: the machine the profiler models, as the VM harness describes it in the plugin's
 * arguments: which node owns each range of memory, which node each vCPU sits on, the distance
 * table, the latency model and the last-level cache's shape. Nothing here is guessed: a
 * missing or inconsistent argument is an error that names it.
 *
 * Memory comes in two candidate layouts because QEMU's qemu_plugin_hwaddr_phys_addr does not
 * mean the same thing in every version: QEMU 7.2 returns, for RAM behind a NUMA node's memory
 * backend, the RAM block's offset plus the backend's place in the machine's RAM container plus
 * the offset in the block (the "ram-block" layout: each node one range), where later versions
 * return the guest-physical address (the "guest-physical" layout: the nodes in order, RAM
 * beyond the low-memory limit moved above 4 GiB). The harness passes both; pages placed on
 * every node by the launcher before the command starts show which one this QEMU reports. */
#ifndef NUMAPROF_MODEL_H
#define NUMAPROF_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { NP_MAX_NODES = 64, NP_MAX_CPUS = 64, NP_MAX_RANGES = 256 };

typedef struct np_range {
  uint64_t start, end; /* end excluded */
  uint64_t dense;      /* bytes of the layout's ranges below this one */
  int node;
} np_range_t;

typedef struct np_layout {
  const char *name;
  int ranges;                      /* 0: not given */
  np_range_t range[NP_MAX_RANGES]; /* sorted by start, never overlapping */
  uint64_t bytes;                  /* in all ranges */
} np_layout_t;

enum { NP_LAYOUT_PHYS, NP_LAYOUT_RAMBLOCK, NP_LAYOUTS };

typedef struct np_model {
  int nodes;
  int cpus;
  int cpu_node[NP_MAX_CPUS];
  np_layout_t layout[NP_LAYOUTS];
  unsigned dist[NP_MAX_NODES][NP_MAX_NODES];
  double latency_ns;  /* a miss served at distance 10 costs this; distance d costs d/10 times it */
  uint64_t llc_bytes; /* one cache per node with CPUs, shared by them */
  unsigned llc_ways;
  unsigned line_bytes;
  const char *json_path; /* NULL: no JSON report */
  /* Found while running: the layout QEMU turned out to report, the launcher's pages that
   * showed it, and why no layout fitted them (empty when one did). */
  int layout_used;
  uint64_t verified_pages;
  char layout_error[160];
} np_model_t;

/* Where the launcher places its calibration pages: node N's at NP_CAL_BASE + N * NP_CAL_STRIDE. */
#define NP_CAL_BASE   UINT64_C(0x3f0000000000)
#define NP_CAL_STRIDE (UINT64_C(1) << 20)
#define NP_CAL_PAGES  16

/* Parses the plugin's key=value arguments:
 *   nodes=N                 number of nodes
 *   cpus=A:B:...            node of vCPU 0, 1, ... (one entry per vCPU)
 *   mem=NODE:START-END      a guest-physical range of NODE (hex or decimal, END excluded);
 *                           repeat for every range
 *   ramblock=NODE:START-END the same memory in the ram-block layout (optional)
 *   dist=D00:D01:...        the NODESxNODES distance table, row by row
 *   llc=SIZE                cache per node, with K or M suffix (default 1M)
 *   ways=N                  associativity (default 16)
 *   line=N                  line size in bytes, a power of two (default 64)
 *   latency=NS              nanoseconds of a miss at distance 10 (default 90)
 *   json=PATH               also write the report as JSON there
 * Returns 0, or -1 with a one-line reason in err. expect_cpus < 0 skips the vCPU count check. */
int np_model_parse(np_model_t *m, int argc, char **argv, int expect_cpus, char *err, size_t errlen);

/* The node owning address pa in layout l, or -1 outside every range (devices, holes); with
 * *dense set to pa's offset in the layout's RAM as if its ranges were one after the other. */
static inline int np_locate(const np_layout_t *l, uint64_t pa, uint64_t *dense) {
  for (int i = 0; i < l->ranges; i++)
    if (pa < l->range[i].end) {
      if (pa < l->range[i].start) return -1;
      *dense = l->range[i].dense + (pa - l->range[i].start);
      return l->range[i].node;
    }
  return -1;
}

static inline int np_node_of(const np_layout_t *l, uint64_t pa) {
  uint64_t dense;
  return np_locate(l, pa, &dense);
}

/* Nanoseconds of one miss from a CPU of node `from` served by node `to`. */
static inline double np_latency(const np_model_t *m, int from, int to) {
  return m->latency_ns * m->dist[from][to] / 10.0;
}

/* True when some vCPU sits on node n (only those nodes have a cache). */
bool np_node_has_cpus(const np_model_t *m, int n);

#endif
