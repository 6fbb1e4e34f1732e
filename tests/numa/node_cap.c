/* node_cap.c: numalloc on a machine with more NUMA nodes than it can use (64), inside a VM of
 * scripts/numa-vm with node ids past 63. What it promises, checked against the kernel's own
 * view (libnuma, move_pages):
 *   - it reports nodes 0-63 and refuses the others (_onnode, thread_bind: EINVAL);
 *   - every node below 64 with memory gets what is asked for it (_onnode, every page);
 *   - interleaved memory lands on nodes below 64 only, and on many of them;
 *   - a thread on any CPU allocates on its node, or for a CPU of a node past the cap, on the
 *     nearest node below 64 with memory (by the kernel's distances, ties by id), page by page.
 * The one warning line at start is checked by node-cap-check.sh, which runs this program.
 * Links the core directly (the numalloc_* API); its own malloc stays glibc's. */
#define _GNU_SOURCE
#include "numalloc.h"

#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { CAP = 64, MAX_CPUS = 8192, PAGE = 4096 };

static int failures;

#define FAIL(...)                                                                                  \
  do {                                                                                             \
    printf("FAIL: " __VA_ARGS__);                                                                  \
    printf("\n");                                                                                  \
    failures++;                                                                                    \
  } while (0)

static void pin_to_cpu(int cpu) {
  size_t size = CPU_ALLOC_SIZE(MAX_CPUS);
  cpu_set_t *set = CPU_ALLOC(MAX_CPUS);
  CPU_ZERO_S(size, set);
  CPU_SET_S(cpu, size, set);
  int rc = sched_setaffinity(0, size, set);
  CPU_FREE(set);
  if (rc != 0) {
    printf("FAIL: sched_setaffinity to cpu %d: %s\n", cpu, strerror(errno));
    exit(2);
  }
  sched_yield();
}

/* The node of each page of [p, p+n) must be `want` (or, want < 0, below CAP); the number of
 * pages that are not, or -1 when move_pages cannot say. `seen` collects the nodes found. */
static long pages_off(char *p, size_t n, int want, unsigned char *seen) {
  long off = 0;
  for (size_t at = 0; at < n; at += PAGE) {
    void *page = p + at;
    int node = -1;
    p[at] = 1;
    if (move_pages(0, 1, &page, NULL, &node, 0) != 0 || node < 0) return -1;
    if (seen != NULL && node < 1024) seen[node] = 1;
    if (want >= 0 ? node != want : node >= CAP) off++;
  }
  return off;
}

/* The node below CAP, with memory and allowed, nearest to `node` by the kernel's distances. */
static int nearest_below_cap(int node) {
  int best = -1;
  struct bitmask *allowed = numa_get_mems_allowed();
  for (int n = 0; n < CAP && n <= numa_max_node(); n++) {
    long long free_bytes;
    if (numa_node_size64(n, &free_bytes) <= 0 || !numa_bitmask_isbitset(allowed, (unsigned)n))
      continue;
    if (best < 0 || numa_distance(node, n) < numa_distance(node, best)) best = n;
  }
  numa_bitmask_free(allowed);
  return best;
}

static void check_nodes(int highest) {
  if (numalloc_node_count() != CAP)
    FAIL("numalloc_node_count() = %d, not %d", numalloc_node_count(), CAP);
  for (int n = 0; n <= highest; n++) {
    long long free_bytes;
    bool memory = numa_node_size64(n, &free_bytes) > 0;
    errno = 0;
    void *p = numalloc_malloc_onnode(1 << 20, n);
    if (n >= CAP) {
      if (p != NULL || errno != EINVAL)
        FAIL("node %d past the cap: _onnode gave %p (errno %d)", n, p, errno);
      if (numalloc_thread_bind(n) == 0) FAIL("node %d past the cap: thread_bind succeeded", n);
      if (numalloc_node_allowed(n) || numalloc_node_has_memory(n)) FAIL("node %d reported", n);
      continue;
    }
    if (!memory) continue;
    if (p == NULL) {
      FAIL("node %d: _onnode refused (errno %d)", n, errno);
      continue;
    }
    long off = pages_off(p, 1 << 20, n, NULL);
    if (off != 0) FAIL("node %d: %ld pages of a block for it elsewhere", n, off);
    numalloc_free(p);
  }
  printf("ok: nodes 0-%d served, %d-%d refused\n", CAP - 1, CAP, highest);
}

static void check_interleave(void) {
  enum { BLOCKS = 64, SIZE = 256 << 10 };
  unsigned char seen[1024] = {0};
  numalloc_thread_set_policy(NUMALLOC_POLICY_INTERLEAVE);
  long off = 0;
  for (int i = 0; i < BLOCKS; i++) {
    char *p = numalloc_malloc(SIZE);
    long o = p != NULL ? pages_off(p, SIZE, -1, seen) : -1;
    if (o < 0) {
      FAIL("interleave: block %d not checked", i);
      break;
    }
    off += o;
  }
  numalloc_thread_set_policy(NUMALLOC_POLICY_LOCAL);
  int nodes = 0;
  for (int n = 0; n < 1024; n++) nodes += seen[n];
  if (off != 0) FAIL("interleave: %ld pages on nodes past the cap", off);
  if (nodes < CAP / 2) FAIL("interleave: pages on only %d nodes", nodes);
  printf("ok: interleaved pages on %d nodes, none past %d\n", nodes, CAP - 1);
}

/* One thread per CPU, pinned before its first allocation: a thread's heap stays with the node
 * it first used until its next slow path, so a thread that moved would test that instead. */
typedef struct cpu_check_s {
  int cpu, home, want, got;
  long off;
} cpu_check_t;

static void *check_one_cpu(void *arg) {
  cpu_check_t *c = arg;
  pin_to_cpu(c->cpu);
  c->got = numalloc_current_node();
  long long free_bytes;
  c->off = 0;
  if (numa_node_size64(c->want, &free_bytes) <= 0) return NULL; /* a CPU-only node */
  char *p = numalloc_malloc(100000);
  c->off = p != NULL ? pages_off(p, 100000, c->want, NULL) : -1;
  numalloc_free(p);
  return NULL;
}

static void check_cpus(void) {
  int cpus = numa_num_configured_cpus(), above = 0;
  for (int cpu = 0; cpu < cpus; cpu++) {
    int home = numa_node_of_cpu(cpu);
    cpu_check_t c = {cpu, home, home < CAP ? home : nearest_below_cap(home), -1, 0};
    pthread_t thread;
    if (pthread_create(&thread, NULL, check_one_cpu, &c) != 0 || pthread_join(thread, NULL) != 0) {
      FAIL("cpu %d: no thread", cpu);
      continue;
    }
    if (c.got != c.want)
      FAIL("cpu %d of node %d: numalloc_current_node() = %d, not %d", cpu, home, c.got, c.want);
    if (c.off != 0)
      FAIL("cpu %d of node %d: a block not all on node %d (%ld pages off)", cpu, home, c.want,
           c.off);
    if (home >= CAP) printf("cpu %d of node %d allocates on node %d\n", cpu, home, c.want);
    above += home >= CAP;
  }
  printf("ok: %d CPUs, %d of them on nodes past the cap, each allocating on its node or the "
         "nearest below\n",
         cpus, above);
}

int main(void) {
  if (numa_available() < 0) {
    printf("FAIL: no NUMA\n");
    return 2;
  }
  int highest = numa_max_node();
  if (highest < CAP) {
    printf("FAIL: the machine's highest node is %d: nothing past the cap to check\n", highest);
    return 2;
  }
  check_nodes(highest);
  check_interleave();
  check_cpus();
  numalloc_collect(); /* reads the topology again: nothing more may be said */
  printf(failures ? "node_cap: %d failure(s)\n" : "node_cap: all checks passed\n", failures);
  return failures ? 1 : 0;
}
