/* container_vm.c: numalloc as a container sees it, on a two-node machine (run inside
 * scripts/numa-vm, under LD_PRELOAD, by container-vm-check.sh and cpuset-check.sh).
 *
 *   container_vm workload         two threads, one pinned to a CPU of each node, allocate,
 *                                 touch and free blocks of every size class range; exit 0
 *   container_vm topology         the machine as numalloc's API describes it, one line a node,
 *                                 checked against libnuma unless get_mempolicy is refused (the
 *                                 script compares that output with the one under the filter)
 *   container_vm cpuset GROUP     run inside cgroup GROUP (cpuset.cpus 0, cpuset.mems 0): the
 *                                 cpuset is widened and narrowed while the program runs, and
 *                                 every block is checked page by page with move_pages
 *
 * The cpuset scenario: a thread moved to a CPU of node 1 while node 1's memory is not allowed
 * gets memory on node 0 and never a crash; node 1, allowed later, is used after
 * numalloc_collect(); narrowed again, it is left after numalloc_collect(). Prints one PASS
 * or FAIL line per step; exit 1 when any failed. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAGE 4096UL

/* The numalloc API, found at run time: the program does not link the library. */
static void *(*api_malloc_onnode)(size_t, int);
static int (*api_node_of)(const void *);
static int (*api_node_allowed)(int);
static void (*api_collect)(void);

static int failures;

static void *api(const char *name) {
  void *f = dlsym(RTLD_DEFAULT, name);
  if (f == NULL) {
    printf("FAIL: %s not found: is the preload loaded?\n", name);
    exit(2);
  }
  return f;
}

static void pin_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) {
    printf("FAIL: sched_setaffinity to cpu %d: %s\n", cpu, strerror(errno));
    exit(2);
  }
  sched_yield();
}

/* Pages of [p, p+n) not on `want`, counted with move_pages; -1 when it cannot ask. */
static long pages_off(const void *p, size_t n, int want) {
  long off = 0;
  for (uintptr_t a = (uintptr_t)p & ~(PAGE - 1); a < (uintptr_t)p + n; a += PAGE) {
    void *page = (void *)a;
    int status = -1;
    if (move_pages(0, 1, &page, NULL, &status, 0) != 0) return -1;
    if (status != want) off++;
  }
  return off;
}

static void step(bool ok, const char *what) {
  printf("%s: %s\n", ok ? "PASS" : "FAIL", what);
  fflush(stdout);
  if (!ok) failures++;
}

/* ---- workload ----------------------------------------------------------------------------- */

static void *churn(void *arg) {
  pin_to_cpu((int)(intptr_t)arg);
  static const size_t sizes[] = {24, 200, 3000, 40000, 300000, 3 << 20};
  void *kept[600];
  int n = 0;
  for (int round = 0; round < 40; round++)
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
      size_t size = sizes[s] >= 300000 && round % 10 != 0 ? 64 : sizes[s];
      char *p = malloc(size);
      if (p == NULL) {
        printf("FAIL: malloc(%zu) failed\n", size);
        exit(1);
      }
      memset(p, round, size);
      if (round % 2 == 0 && n < 600)
        kept[n++] = p;
      else
        free(p);
    }
  for (int i = 0; i < n; i++) free(kept[i]);
  return NULL;
}

static int workload(void) {
  pthread_t threads[2];
  for (int i = 0; i < 2; i++) pthread_create(&threads[i], NULL, churn, (void *)(intptr_t)i);
  for (int i = 0; i < 2; i++) pthread_join(threads[i], NULL);
  printf("workload: done\n");
  return 0;
}

/* ---- topology ----------------------------------------------------------------------------- */

static int (*api_node_count)(void);
static int (*api_node_has_memory)(int);
static int (*api_node_distance)(int, int);
static int (*api_current_node)(void);

static int topology(void) {
  api_node_count = (int (*)(void))api("numalloc_node_count");
  api_node_has_memory = (int (*)(int))api("numalloc_node_has_memory");
  api_node_distance = (int (*)(int, int))api("numalloc_node_distance");
  api_current_node = (int (*)(void))api("numalloc_current_node");
  int nodes = api_node_count();
  printf("nodes: %d\n", nodes);
  for (int n = 0; n < nodes; n++) {
    printf("node %d: memory %d, allowed %d, distances", n, api_node_has_memory(n),
           api_node_allowed(n));
    for (int m = 0; m < nodes; m++) printf(" %d", api_node_distance(n, m));
    printf("\n");
  }
  for (int cpu = 0; cpu < numa_num_configured_cpus(); cpu++) {
    pin_to_cpu(cpu);
    printf("cpu %d: node %d\n", cpu, api_current_node());
  }
  if (get_mempolicy(NULL, NULL, 0, NULL, 0) != 0) return 0; /* libnuma would fail and print */
  bool same = nodes == numa_max_node() + 1;
  struct bitmask *allowed = numa_get_mems_allowed();
  for (int n = 0; n < nodes; n++) {
    long long free_bytes;
    same &= api_node_has_memory(n) == (numa_node_size64(n, &free_bytes) > 0);
    same &= api_node_allowed(n) == (int)numa_bitmask_isbitset(allowed, (unsigned)n);
    for (int m = 0; m < nodes; m++) same &= api_node_distance(n, m) == numa_distance(n, m);
  }
  for (int cpu = 0; cpu < numa_num_configured_cpus(); cpu++) {
    pin_to_cpu(cpu);
    same &= api_current_node() == numa_node_of_cpu(cpu);
  }
  step(same, "numalloc's topology is libnuma's");
  return failures ? 1 : 0;
}

/* ---- cpuset ------------------------------------------------------------------------------- */

static char group[512];

static void set_cpuset(const char *file, const char *value) {
  char path[600];
  snprintf(path, sizeof path, "%s/%s", group, file);
  FILE *f = fopen(path, "w");
  if (f == NULL || fputs(value, f) < 0 || fclose(f) != 0) {
    printf("FAIL: cannot write %s to %s: %s\n", value, path, strerror(errno));
    exit(2);
  }
}

/* Blocks small (from a thread's page), large (a span) and huge (a segment) allocated on this
 * CPU: all on `want` by numalloc_node_of and page by page. Small blocks come from the page the
 * thread already had, so enough are taken to need a new page. */
static bool blocks_on(int want, const char *when) {
  static const size_t sizes[] = {3000, 300000, 3 << 20};
  bool ok = true;
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    int count = sizes[s] == 3000 ? 200 : 2;
    void *blocks[200];
    for (int i = 0; i < count; i++) {
      blocks[i] = malloc(sizes[s]);
      if (blocks[i] == NULL) {
        printf("  %s: malloc(%zu) failed\n", when, sizes[s]);
        return false;
      }
      memset(blocks[i], 7, sizes[s]);
    }
    void *last = blocks[count - 1];
    int home = api_node_of(last);
    long off = pages_off(last, sizes[s], want);
    if (home != want || off != 0) {
      printf("  %s: a block of %zu bytes: numalloc_node_of %d, %ld pages off node %d\n", when,
             sizes[s], home, off, want);
      ok = false;
    }
    for (int i = 0; i < count; i++) free(blocks[i]);
  }
  return ok;
}

static int cpuset_scenario(const char *path) {
  snprintf(group, sizeof group, "%s", path);
  pin_to_cpu(0);
  step(blocks_on(0, "start, cpu 0"), "at start (cpus 0, mems 0) memory is on node 0");
  step(!api_node_allowed(1), "node 1 is not allowed at start");
  errno = 0;
  void *p = api_malloc_onnode(4096, 1);
  step(p == NULL && errno == EINVAL, "numalloc_malloc_onnode(1) fails with EINVAL at start");

  set_cpuset("cpuset.cpus", "0-1");
  pin_to_cpu(1); /* a CPU of node 1, outside the CPUs the process started with */
  step(blocks_on(0, "cpu 1, node 1 not allowed"),
       "a thread moved to node 1's CPU, node 1 not allowed: memory on node 0");

  set_cpuset("cpuset.mems", "0-1");
  api_collect();
  step(api_node_allowed(1) == 1, "after numalloc_collect, node 1 is allowed");
  p = api_malloc_onnode(100000, 1);
  step(p != NULL && (memset(p, 1, 100000), pages_off(p, 100000, 1) == 0),
       "numalloc_malloc_onnode(1) places on node 1");
  free(p);
  step(blocks_on(1, "cpu 1, node 1 allowed"), "on node 1's CPU, memory is now on node 1");
  pin_to_cpu(0);
  step(blocks_on(0, "cpu 0, node 1 allowed"), "on node 0's CPU, memory stays on node 0");

  char *kept = malloc(300000);
  pin_to_cpu(1);
  char *kept1 = malloc(300000);
  memset(kept1, 3, 300000);
  set_cpuset("cpuset.mems", "0");
  api_collect();
  step(!api_node_allowed(1), "node 1 narrowed away: not allowed after numalloc_collect");
  step(blocks_on(0, "cpu 1, narrowed"), "on node 1's CPU again, memory is on node 0");
  memset(kept1, 4, 300000); /* memory placed on node 1 before stays usable */
  memset(kept, 5, 300000);
  free(kept1);
  free(kept);
  return failures ? 1 : 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  api_malloc_onnode = (void *(*)(size_t, int))api("numalloc_malloc_onnode");
  api_node_of = (int (*)(const void *))api("numalloc_node_of");
  api_node_allowed = (int (*)(int))api("numalloc_node_allowed");
  api_collect = (void (*)(void))api("numalloc_collect");
  if (argc == 2 && strcmp(argv[1], "workload") == 0) return workload();
  if (argc == 2 && strcmp(argv[1], "topology") == 0) return topology();
  if (argc == 3 && strcmp(argv[1], "cpuset") == 0) return cpuset_scenario(argv[2]);
  fprintf(stderr, "usage: container_vm workload | topology | cpuset CGROUP_DIR\n");
  return 2;
}
