/* mbind_placement.c: the kernel places what it is told to, as the VM presents it. For each node
 * named on the command line: map an anonymous range, bind it to that node with mbind(2) before
 * touching it, touch every page, then check every page twice, with move_pages(2) in query mode
 * and through /proc/self/numa_maps. Needs no allocator; runs inside scripts/numa-vm.
 * Usage: mbind_placement [--pages N] NODE... */
#define _GNU_SOURCE
#include "numa_maps.h"

#include <errno.h>
#include <numaif.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_PAGES 65536

static int failures;

static void fail(const char *what, int node) {
  failures++;
  fprintf(stderr, "mbind_placement: node %d: %s\n", node, what);
}

static int bind_to(void *p, size_t len, int node) {
  enum { BITS = 8 * sizeof(unsigned long) };
  unsigned long mask[NUMA_MAPS_MAX_NODES / BITS] = {0};
  mask[node / BITS] |= 1UL << (node % BITS);
  /* maxnode counts one more than the bits the kernel reads. */
  return (int)mbind(p, len, MPOL_BIND, mask, NUMA_MAPS_MAX_NODES + 1, MPOL_MF_STRICT);
}

/* move_pages with no target nodes reports each page's node, or -errno: a page never touched is
 * -ENOENT, or -EFAULT where nothing maps it yet (a hole in the page tables). */
static int count_pages_on(char *p, size_t pages, size_t page, int node, int *absent) {
  static void *addrs[MAX_PAGES];
  static int status[MAX_PAGES];
  for (size_t i = 0; i < pages; i++) addrs[i] = p + i * page;
  if (move_pages(0, pages, addrs, NULL, status, 0) != 0) return -1;
  int on_node = 0, misplaced = 0;
  *absent = 0;
  for (size_t i = 0; i < pages; i++) {
    if (status[i] == node) {
      on_node++;
    } else if (status[i] == -ENOENT || status[i] == -EFAULT) {
      ++*absent;
    } else if (misplaced++ == 0) {
      fprintf(stderr, "mbind_placement: page %zu: status %d, not node %d\n", i, status[i], node);
    }
  }
  return on_node;
}

static void check_numa_maps(char *p, size_t len, int node) {
  numa_maps_sum_t sum;
  char bound[32];
  snprintf(bound, sizeof bound, "bind:%d", node);
  if (numa_maps_range((uintptr_t)p, (uintptr_t)p + len, &sum) != 0) {
    fail("cannot read /proc/self/numa_maps", node);
    return;
  }
  printf("  numa_maps: %d VMA(s), policy %s, N%d=%lu KiB of %lu KiB\n", sum.vmas, sum.policy, node,
         sum.kib[node], sum.total_kib);
  if (!sum.exact) fail("numa_maps: the range is not whole VMAs", node);
  if (strcmp(sum.policy, bound) != 0) fail("numa_maps: policy is not bind to this node", node);
  if (sum.kib[node] != len / 1024 || sum.total_kib != len / 1024)
    fail("numa_maps: not every page is on the node", node);
}

static void check_node(int node, size_t pages) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE), len = pages * page;
  int absent;
  printf("node %d: %zu pages\n", node, pages);
  char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    fail("mmap failed", node);
    return;
  }
  if (bind_to(p, len, node) != 0) {
    fail(strerror(errno), node);
    munmap(p, len);
    return;
  }
  if (count_pages_on(p, pages, page, node, &absent) != 0 || absent != (int)pages)
    fail("pages were present before the first touch", node);
  for (size_t i = 0; i < pages; i++) p[i * page] = (char)i;
  int on_node = count_pages_on(p, pages, page, node, &absent);
  printf("  move_pages: %d of %zu pages on node %d\n", on_node, pages, node);
  if (on_node != (int)pages) fail("move_pages: not every page is on the node", node);
  check_numa_maps(p, len, node);
  munmap(p, len);
}

int main(int argc, char **argv) {
  size_t pages = 512;
  int first = 1;
  if (argc > 2 && strcmp(argv[1], "--pages") == 0) {
    pages = strtoul(argv[2], NULL, 0);
    first = 3;
  }
  if (first >= argc || pages == 0 || pages > MAX_PAGES) {
    fprintf(stderr, "usage: mbind_placement [--pages 1..%d] NODE...\n", MAX_PAGES);
    return 2;
  }
  for (int i = first; i < argc; i++) {
    int node = atoi(argv[i]);
    if (node < 0 || node >= NUMA_MAPS_MAX_NODES) {
      fprintf(stderr, "mbind_placement: no node %s\n", argv[i]);
      return 2;
    }
    check_node(node, pages);
  }
  printf("mbind_placement: %s\n", failures ? "FAILED" : "every page where it was bound");
  return failures != 0;
}
