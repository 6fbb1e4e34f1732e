/* numalloc_topology.c: the machine as numalloc sees it, for `numalloc topology`. It links the
 * core (the code a preloaded program runs, reading the same environment and cpuset) and asks
 * it through the public API only:
 *   nodes, memory, distances  numalloc_node_count, _has_memory, _allowed, _distance
 *   usable nodes              numalloc_thread_bind(node) succeeds exactly for the nodes numalloc
 *                             allocates on (allowed, with memory, in NUMALLOC_NODES)
 *   each CPU's node           numalloc_current_node() with the thread pinned to that CPU
 *   order tried               the usable nodes by distance from the node (ties by number): the
 *                             first serves the node's threads (a node without memory gets its
 *                             nearest node with memory), the next ones take over when it is full
 *                             (NUMALLOC_FALLBACK=nearest or any)
 * Memory sizes come from libnuma, as numalloc's own do. Exit status: 0, or 1 when numalloc
 * cannot start. */
#include "numalloc.h"

#include <numa.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_NODES = 64, MAX_CPUS = 8192 };

struct node_view {
  bool allowed, has_memory, usable;
  int cpus; /* CPUs of this process's affinity on the node */
  char cpu_list[256];
  long long mib, free_mib;
};

static void append_cpu(char *list, size_t size, int cpu, int *last, int *run_start) {
  /* Consecutive CPUs print as a range, "0-3,8". */
  size_t len = strlen(list);
  if (*last == cpu - 1 && *last >= 0) {
    *last = cpu;
    return;
  }
  if (*last >= 0 && *last != *run_start)
    len += (size_t)snprintf(list + len, size - len, "-%d", *last);
  snprintf(list + len, size - len, "%s%d", len > 0 ? "," : "", cpu);
  *run_start = *last = cpu;
}

static void close_range(char *list, size_t size, int last, int run_start) {
  size_t len = strlen(list);
  if (last >= 0 && last != run_start) snprintf(list + len, size - len, "-%d", last);
}

/* Pins the thread to each CPU it may run on in turn and asks numalloc for that CPU's node.
 * The CPU sets are sized for the most CPUs a kernel is built for, past glibc's 1,024. */
static int map_cpus(struct node_view *view, int nodes) {
  size_t size = CPU_ALLOC_SIZE(MAX_CPUS);
  cpu_set_t *allowed = CPU_ALLOC(MAX_CPUS), *one = CPU_ALLOC(MAX_CPUS);
  int total = -1;
  if (allowed == NULL || one == NULL || sched_getaffinity(0, size, allowed) != 0) goto out;
  int last[MAX_NODES], start[MAX_NODES];
  total = 0;
  for (int n = 0; n < nodes; n++) last[n] = start[n] = -1;
  for (int cpu = 0; cpu < MAX_CPUS; cpu++) {
    if (!CPU_ISSET_S(cpu, size, allowed)) continue;
    CPU_ZERO_S(size, one);
    CPU_SET_S(cpu, size, one);
    if (sched_setaffinity(0, size, one) != 0) continue;
    int home = numalloc_current_node();
    if (home < 0 || home >= nodes) continue;
    view[home].cpus++;
    append_cpu(view[home].cpu_list, sizeof view[home].cpu_list, cpu, &last[home], &start[home]);
    total++;
  }
  for (int n = 0; n < nodes; n++)
    close_range(view[n].cpu_list, sizeof view[n].cpu_list, last[n], start[n]);
  sched_setaffinity(0, size, allowed);
out:
  if (allowed != NULL) CPU_FREE(allowed);
  if (one != NULL) CPU_FREE(one);
  return total;
}

static const char *kind(const struct node_view *v) {
  if (v->cpus > 0 && v->has_memory) return "cpus+memory";
  if (v->has_memory) return "memory only";
  if (v->cpus > 0) return "cpus only";
  return "empty";
}

/* The usable nodes by distance from `node`, ties by number. */
static void fallback_order(const struct node_view *view, int nodes, int node, char *out,
                           size_t size) {
  bool taken[MAX_NODES] = {false};
  size_t len = 0;
  out[0] = '\0';
  for (;;) {
    int best = -1;
    for (int n = 0; n < nodes; n++) {
      if (!view[n].usable || taken[n]) continue;
      if (best < 0 || numalloc_node_distance(node, n) < numalloc_node_distance(node, best))
        best = n;
    }
    if (best < 0) break;
    taken[best] = true;
    len += (size_t)snprintf(out + len, len < size ? size - len : 0, "%s%d", len ? " " : "", best);
  }
}

int main(int argc, char **argv) {
  if (argc > 1) {
    fprintf(stderr, "usage: %s (no arguments; numalloc reads NUMALLOC_* from the environment)\n",
            argv[0]);
    return 1;
  }
  int nodes = numalloc_node_count();
  if (nodes < 1 || nodes > MAX_NODES || numa_available() < 0) {
    fprintf(stderr, "numalloc topology: no NUMA information on this system\n");
    return 1;
  }
  struct node_view view[MAX_NODES];
  memset(view, 0, sizeof view);
  int usable = 0;
  for (int n = 0; n < nodes; n++) {
    view[n].allowed = numalloc_node_allowed(n);
    view[n].has_memory = numalloc_node_has_memory(n);
    view[n].usable = numalloc_thread_bind(n) == 0;
    usable += view[n].usable;
    long long free_bytes = 0, bytes = numa_node_size64(n, &free_bytes);
    view[n].mib = bytes > 0 ? bytes >> 20 : 0;
    view[n].free_mib = free_bytes > 0 ? free_bytes >> 20 : 0;
  }
  int cpus = map_cpus(view, nodes);
  numalloc_policy_t policy = numalloc_policy();

  printf("numalloc's view: %d node(s), %d usable, %d CPU(s) this process may run on; policy %s\n",
         nodes, usable, cpus, numalloc_policy_name(policy));
  if (policy == NUMALLOC_POLICY_SYSTEM)
    printf("(policy system: every allocation goes to the C library's allocator)\n");
  printf("node  kind         CPUs          memory MiB  free MiB  numalloc      nodes tried, in "
         "order\n");
  for (int n = 0; n < nodes; n++) {
    const struct node_view *v = &view[n];
    char use[32], order[3 * MAX_NODES + 1];
    fallback_order(view, nodes, n, order, sizeof order);
    if (v->usable)
      snprintf(use, sizeof use, "allocates");
    else if (v->cpus > 0 && order[0] != '\0')
      snprintf(use, sizeof use, "uses node %d", atoi(order));
    else
      snprintf(use, sizeof use, v->allowed ? "not used" : "not allowed");
    printf("%4d  %-11s  %-12s  %10lld  %8lld  %-12s  %s\n", n, kind(v),
           v->cpus > 0 ? v->cpu_list : "-", v->mib, v->free_mib, use, order);
  }
  printf("distances:\n     ");
  for (int b = 0; b < nodes; b++) printf(" %4d", b);
  printf("\n");
  for (int a = 0; a < nodes; a++) {
    printf("%4d ", a);
    for (int b = 0; b < nodes; b++) printf(" %4d", numalloc_node_distance(a, b));
    printf("\n");
  }
  return 0;
}
