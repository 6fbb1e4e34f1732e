/* exhaust_node.c: what the kernel does when a small node runs out, which the allocator's
 * exhaustion tests build on. A range preferred on the node but larger than it spills to other
 * nodes once the node is full, and every page still gets memory; a range bound to the node
 * (in a child) never spills: the child is killed by the OOM killer instead. Runs inside
 * scripts/numa-vm with one small node.
 * Usage: exhaust_node NODE */
#define _GNU_SOURCE
#include "numa_maps.h"

#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXTRA_MIB 64 /* beyond the node's size */

static int failures;

static void fail(const char *what) {
  failures++;
  fprintf(stderr, "exhaust_node: %s\n", what);
}

static int set_policy(void *p, size_t len, int mode, int node) {
  unsigned long mask = 1UL << node;
  return (int)mbind(p, len, mode, &mask, sizeof mask * 8 + 1, 0);
}

static char *map_with_policy(size_t len, int mode, int node) {
  char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
  if (set_policy(p, len, mode, node) != 0) {
    munmap(p, len);
    return NULL;
  }
  return p;
}

/* Pages per node by move_pages(2) in query mode, in chunks; returns the pages with no node. */
static size_t count_by_node(char *p, size_t pages, size_t page, size_t *per_node) {
  enum { CHUNK = 4096 };
  void *addrs[CHUNK];
  int status[CHUNK];
  size_t absent = 0;
  for (size_t done = 0; done < pages; done += CHUNK) {
    size_t n = pages - done < CHUNK ? pages - done : CHUNK;
    for (size_t i = 0; i < n; i++) addrs[i] = p + (done + i) * page;
    if (move_pages(0, n, addrs, NULL, status, 0) != 0) return pages;
    for (size_t i = 0; i < n; i++) {
      if (status[i] >= 0 && status[i] < NUMA_MAPS_MAX_NODES)
        per_node[status[i]]++;
      else
        absent++;
    }
  }
  return absent;
}

static void check_preferred_spills(int node, long node_mib) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE), len = (size_t)(node_mib + EXTRA_MIB) << 20;
  size_t pages = len / page, per_node[NUMA_MAPS_MAX_NODES] = {0};
  printf("preferred on node %d: touching %zu MiB\n", node, len >> 20);
  char *p = map_with_policy(len, MPOL_PREFERRED, node);
  if (p == NULL) {
    fail("cannot map and prefer the range");
    return;
  }
  for (size_t i = 0; i < pages; i++) p[i * page] = 1;
  size_t absent = count_by_node(p, pages, page, per_node), elsewhere = pages - per_node[node];
  printf("  %zu MiB on node %d, %zu MiB elsewhere, %zu pages absent\n", per_node[node] * page >> 20,
         node, elsewhere * page >> 20, absent);
  if (absent != 0) fail("preferred: some touched pages have no node");
  if (per_node[node] * page < (size_t)node_mib << 19) fail("preferred: under half on the node");
  if (elsewhere == 0) fail("preferred: nothing spilled though the range exceeds the node");
  numa_maps_sum_t sum;
  if (numa_maps_range((uintptr_t)p, (uintptr_t)p + len, &sum) != 0 ||
      sum.kib[node] != per_node[node] * page / 1024 || sum.total_kib != len / 1024)
    fail("preferred: numa_maps disagrees with move_pages");
  munmap(p, len);
}

/* In a child, since the OOM killer ends it: a bound range larger than its node must not spill. */
static void check_bind_does_not_spill(int node, long node_mib) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE), len = (size_t)(node_mib + EXTRA_MIB) << 20;
  printf("bound to node %d: touching %zu MiB in a child\n", node, len >> 20);
  fflush(stdout);
  pid_t child = fork();
  if (child == 0) {
    char *p = map_with_policy(len, MPOL_BIND, node);
    if (p == NULL) _exit(3);
    for (size_t i = 0; i < len / page; i++) p[i * page] = 1;
    _exit(0); /* every page fitted: the bind spilled */
  }
  int status;
  if (child < 0 || waitpid(child, &status, 0) != child) {
    fail("fork or wait failed");
    return;
  }
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
    printf("  the child was killed (out of memory on node %d), as it should be\n", node);
  else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    fail("bind: the child touched more than the node holds");
  else
    fail("bind: the child ended some other way");
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: exhaust_node NODE\n");
    return 2;
  }
  int node = atoi(argv[1]);
  if (numa_available() < 0 || node < 0 || node > numa_max_node()) {
    fprintf(stderr, "exhaust_node: no node %s\n", argv[1]);
    return 2;
  }
  long node_mib = (long)(numa_node_size64(node, NULL) >> 20);
  check_preferred_spills(node, node_mib);
  check_bind_does_not_spill(node, node_mib);
  printf("exhaust_node: %s\n", failures ? "FAILED" : "spills only when preferred");
  return failures != 0;
}
