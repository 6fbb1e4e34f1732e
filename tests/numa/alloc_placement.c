/* alloc_placement.c: the allocator's placement, page by page, on a multi-node machine (run
 * inside scripts/numa-vm). `alloc_placement all` runs every scenario that fits the machine,
 * each in a child process started with LD_PRELOAD=<preload> and the NUMALLOC_* settings it
 * needs; `alloc_placement SCENARIO` runs one (under the preload already). Every page of every
 * block is checked with move_pages(2); a scenario prints one PASS or FAIL line. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_NODES 8
#define PAGE      4096UL

static const size_t sizes[] = {24, 200, 3000, 40000, 300000, 3 << 20, 24 << 20};
#define SIZE_COUNT (sizeof sizes / sizeof sizes[0])

/* The numalloc API, found at run time: the program itself does not link the library. */
static void *(*api_malloc_onnode)(size_t, int);
static void *(*api_calloc_onnode)(size_t, size_t, int);
static int (*api_node_of)(const void *);
static int (*api_thread_bind)(int);
static void *(*api_aligned_alloc_onnode)(size_t, size_t, int);

static int failures;

static void fail(const char *what, const void *p, int want, int got) {
  if (failures++ < 10) printf("  wrong: %s %p: expected node %d, found %d\n", what, p, want, got);
}

/* Pages of [p, p+n) per node; returns how many pages are not on `want` (want < 0: none). */
static long tally(const void *p, size_t n, int want, long *per_node) {
  long wrong = 0;
  for (uintptr_t a = (uintptr_t)p & ~(PAGE - 1); a < (uintptr_t)p + n; a += PAGE) {
    void *page = (void *)a;
    int status = -1;
    if (move_pages(0, 1, &page, NULL, &status, 0) != 0) status = -1;
    if (status >= 0 && status < MAX_NODES && per_node) per_node[status]++;
    if (want >= 0 && status != want) {
      wrong++;
      fail("page", page, want, status);
    }
  }
  return wrong;
}

static void pin_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) perror("sched_setaffinity");
  sched_yield();
}

static int cpus_with_nodes(int *cpu_of_node) {
  int count = 0;
  for (int n = 0; n <= numa_max_node() && n < MAX_NODES; n++) {
    cpu_of_node[n] = -1;
    for (int c = 0; c < numa_num_configured_cpus(); c++)
      if (numa_node_of_cpu(c) == n) {
        cpu_of_node[n] = c;
        count++;
        break;
      }
  }
  return count;
}

/* ---- local: small blocks on the allocating thread's node, whoever touches them first;
 * large ones where they are first touched, and on this node again once it frees and reuses */

typedef struct local_thread {
  int cpu, node;
  void *blocks[SIZE_COUNT * 4];
  pthread_barrier_t *barrier;
  struct local_thread *other;
} local_thread_t;

static void local_allocate(local_thread_t *t) {
  for (size_t i = 0; i < SIZE_COUNT * 4; i++) t->blocks[i] = malloc(sizes[i % SIZE_COUNT]);
}

/* Small blocks are on the allocating thread's node; large ones (from 1 MiB) on `large_node`. */
static void local_check(local_thread_t *t, const char *what, int large_node) {
  for (size_t i = 0; i < SIZE_COUNT * 4; i++) {
    int want = sizes[i % SIZE_COUNT] >= (1 << 20) ? large_node : t->node;
    tally(t->blocks[i], sizes[i % SIZE_COUNT], want, NULL);
    int home = api_node_of(t->blocks[i]);
    if (home != want) fail(what, t->blocks[i], want, home);
  }
}

/* NUMALLOC_LARGE_POLICY=local binds large blocks to the allocating thread's node too; by
 * default they go where they are first touched. */
static int large_bound;

static void *local_main(void *arg) {
  local_thread_t *t = arg;
  pin_to_cpu(t->cpu);
  local_allocate(t);
  pthread_barrier_wait(t->barrier);
  for (size_t i = 0; i < SIZE_COUNT * 4; i++) /* first touch by a thread on another node */
    memset(t->other->blocks[i], 0x5a, sizes[i % SIZE_COUNT]);
  pthread_barrier_wait(t->barrier);
  local_check(t, "block (first touch remote)", large_bound ? t->node : t->other->node);
  pthread_barrier_wait(t->barrier);
  for (size_t i = 0; i < SIZE_COUNT * 4; i++) free(t->other->blocks[i]); /* cross-node frees */
  pthread_barrier_wait(t->barrier);
  local_allocate(t); /* reuse: must come back on this thread's own node */
  for (size_t i = 0; i < SIZE_COUNT * 4; i++) memset(t->blocks[i], 1, sizes[i % SIZE_COUNT]);
  local_check(t, "block reused after a remote free", t->node);
  for (size_t i = 0; i < SIZE_COUNT * 4; i++) free(t->blocks[i]);
  return NULL;
}

static int scenario_local(int bound) {
  large_bound = bound;
  int cpu_of_node[MAX_NODES];
  cpus_with_nodes(cpu_of_node);
  if (cpu_of_node[0] < 0 || cpu_of_node[1] < 0) return printf("  needs CPUs on nodes 0 and 1\n"), 1;
  pthread_barrier_t barrier;
  pthread_barrier_init(&barrier, NULL, 2);
  local_thread_t t[2] = {{.cpu = cpu_of_node[0], .node = 0, .barrier = &barrier},
                         {.cpu = cpu_of_node[1], .node = 1, .barrier = &barrier}};
  t[0].other = &t[1];
  t[1].other = &t[0];
  pthread_t id[2];
  for (int i = 0; i < 2; i++) pthread_create(&id[i], NULL, local_main, &t[i]);
  for (int i = 0; i < 2; i++) pthread_join(id[i], NULL);
  return failures != 0;
}

/* ---- the explicit API on every node with memory ----------------------------------------- */

static int scenario_onnode(void) {
  for (int node = 0; node <= numa_max_node(); node++) {
    if (numa_node_size64(node, NULL) <= 0) continue;
    for (size_t i = 0; i < SIZE_COUNT; i++) {
      char *p = api_malloc_onnode(sizes[i], node);
      if (p == NULL) return printf("  malloc_onnode(%zu, %d) failed\n", sizes[i], node), 1;
      memset(p, 1, sizes[i]);
      tally(p, sizes[i], node, NULL);
      if (api_node_of(p) != node) fail("node_of", p, node, api_node_of(p));
      unsigned char *z = api_calloc_onnode(1, sizes[i], node);
      for (size_t k = 0; z != NULL && k < sizes[i]; k += 997)
        if (z[k] != 0) return printf("  calloc_onnode not zeroed\n"), 1;
      memset(z, 2, sizes[i]); /* fresh zero pages are not placed until written */
      tally(z, sizes[i], node, NULL);
      free(p);
      free(z);
    }
  }
  int bad[] = {-1, numa_max_node() + 1, 63, 1000};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    errno = 0;
    if (api_malloc_onnode(64, bad[i]) != NULL || errno != EINVAL)
      return printf("  malloc_onnode(64, %d) did not fail with EINVAL\n", bad[i]), 1;
  }
  return failures != 0;
}

/* ---- pages given back by a sparse page come back on their node ------------------------ */

enum { PURGE_BLOCK = 1024, PURGE_COUNT = 640 }; /* ten 64 KiB pages of 1 KiB blocks */

static long resident_pages(void *p, size_t n) {
  uintptr_t start = (uintptr_t)p & ~(PAGE - 1);
  size_t len = (uintptr_t)p + n - start, count = (len + PAGE - 1) / PAGE;
  unsigned char vec[64];
  if (count > sizeof vec || mincore((void *)start, len, vec) != 0) return -1;
  long resident = 0;
  for (size_t i = 0; i < count; i++) resident += vec[i] & 1;
  return resident;
}

static int scenario_purge(void) {
  static char *blocks[PURGE_COUNT];
  for (int node = 0; node <= numa_max_node(); node++) {
    if (numa_node_size64(node, NULL) <= 0) continue;
    for (int i = 0; i < PURGE_COUNT; i++) {
      blocks[i] = api_malloc_onnode(PURGE_BLOCK, node);
      if (blocks[i] == NULL)
        return printf("  malloc_onnode(%d, %d) failed\n", PURGE_BLOCK, node), 1;
      memset(blocks[i], 3, PURGE_BLOCK);
    }
    /* keep one block in 64: every page but the newest ends up nearly empty and not current */
    long purged = 0;
    for (int i = PURGE_COUNT - 1; i >= 0; i--)
      if (i % 64 != 0) {
        free(blocks[i]);
        blocks[i] = NULL;
      }
    void (*collect)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "numalloc_collect");
    if (collect) collect(); /* frees never purge; the purge passes, or collect, do */
    for (int i = 64; i + 64 < PURGE_COUNT; i += 64)
      purged += resident_pages(blocks[i] + PAGE, 8 * PAGE) == 0; /* past the live block */
    if (purged == 0) return printf("  node %d: no sparse page gave memory back\n", node), 1;
    for (int i = 0; i < PURGE_COUNT; i++) {
      if (blocks[i] != NULL) continue;
      blocks[i] = api_malloc_onnode(PURGE_BLOCK, node);
      if (blocks[i] == NULL) return printf("  malloc_onnode again failed\n"), 1;
      memset(blocks[i], 4, PURGE_BLOCK); /* the purged pages are placed again here */
    }
    for (int i = 0; i < PURGE_COUNT; i++) {
      tally(blocks[i], PURGE_BLOCK, node, NULL);
      free(blocks[i]);
    }
  }
  return failures != 0;
}

/* ---- large and huge blocks freed and allocated again under first touch -------------------
 * A thread that reuses its own block gets it back resident, on its node; a block whose pages
 * another node's thread used goes back to the kernel before reuse; and once the main thread
 * has allocated a block that a worker of another node used, every reused block is placed
 * again by its new user's touch, whatever the order of frees and allocations. Each size runs
 * in a process of its own: the last rule holds for the whole process. */

static size_t reuse_block; /* huge: 40 MiB, a segment of its own; large: 24 MiB, a span */
#define HEAD_PAGES 64      /* the pages whose residency is checked */

static void reuse_check(const char *what, char *block, long want_resident) {
  long resident = resident_pages(block, HEAD_PAGES * PAGE);
  if (resident != want_resident) {
    printf("  %s %p: %ld of its first %d pages resident before the touch, expected %ld\n", what,
           (void *)block, resident, HEAD_PAGES, want_resident);
    failures++;
  }
}

typedef struct touch_job {
  char *block;
  int cpu;
} touch_job_t;

static void *touch_pinned(void *arg) {
  touch_job_t *job = arg;
  pin_to_cpu(job->cpu);
  memset(job->block, 7, reuse_block);
  return NULL;
}

static void touch_from_cpu(char *block, int cpu) {
  touch_job_t job = {block, cpu};
  pthread_t id;
  pthread_create(&id, NULL, touch_pinned, &job);
  pthread_join(id, NULL);
}

static void *own_block_loop(void *arg) {
  int cpu = *(int *)arg;
  pin_to_cpu(cpu);
  char *first = NULL;
  for (int round = 0; round < 3; round++) {
    char *block = malloc(reuse_block);
    if (round == 0)
      first = block;
    else if (block != first)
      printf("  round %d: node 1's own block was not reused\n", round), failures++;
    else
      reuse_check("node 1's own block, reused", block, HEAD_PAGES);
    memset(block, round + 1, reuse_block);
    tally(block, reuse_block, 1, NULL);
    free(block);
  }
  return NULL;
}

static int scenario_touch_reuse(size_t size) {
  reuse_block = size;
  int cpu_of_node[MAX_NODES];
  cpus_with_nodes(cpu_of_node);
  pin_to_cpu(cpu_of_node[0]);
  pthread_t id;
  pthread_create(&id, NULL, own_block_loop, &cpu_of_node[1]);
  pthread_join(id, NULL);
  char *block = malloc(reuse_block); /* node 1's kept block: given back, then placed here */
  reuse_check("node 1's block, reused on node 0", block, 0);
  memset(block, 1, reuse_block);
  tally(block, reuse_block, 0, NULL);
  free(block);
  char *again = malloc(reuse_block);
  if (again != block) printf("  node 0's own block was not reused\n"), failures++;
  reuse_check("node 0's own block, reused", again, HEAD_PAGES);
  free(again);
  for (int round = 0; round < 3; round++) { /* the main thread allocates for a worker */
    char *mine = malloc(reuse_block), *worker = malloc(reuse_block);
    touch_from_cpu(worker, cpu_of_node[1]);
    memset(mine, 2, reuse_block);
    tally(mine, reuse_block, 0, NULL);
    tally(worker, reuse_block, 1, NULL);
    if (round == 1) {
      free(worker);
      free(mine);
    } else {
      free(mine);
      free(worker);
    }
  }
  return failures != 0;
}

/* ---- interleave and rr: pages spread evenly ------------------------------------------- */

static int check_even(const long *per_node, const char *what) {
  int nodes = 0;
  long total = 0;
  for (int n = 0; n <= numa_max_node(); n++)
    if (numa_node_size64(n, NULL) > 0) nodes++, total += per_node[n];
  for (int n = 0; n <= numa_max_node(); n++) {
    if (numa_node_size64(n, NULL) <= 0) continue;
    double share = 100.0 * (double)per_node[n] / (double)total;
    printf("  %s: node %d has %ld pages, %.1f%%\n", what, n, per_node[n], share);
    if (share < 100.0 / nodes - 5.0 || share > 100.0 / nodes + 5.0) failures++;
  }
  return failures != 0;
}

static int scenario_spread(void) {
  long small[MAX_NODES] = {0}, large[MAX_NODES] = {0};
  for (int i = 0; i < 20000; i++) { /* small blocks: whole spans go to nodes in turn */
    size_t n = 64 + (size_t)(i % 16) * 200;
    char *p = malloc(n);
    memset(p, 1, n);
    if (i % 3 == 0) free(p);
  }
  static char *keep[4096];
  for (int i = 0; i < 4096; i++) keep[i] = malloc(2000), memset(keep[i], 1, 2000);
  for (int i = 0; i < 4096; i++) tally(keep[i], 1, -1, small); /* the page of its start */
  for (int i = 0; i < 16; i++) {
    size_t n = (size_t)(i + 1) << 20;
    char *p = malloc(n);
    memset(p, 1, n);
    tally(p, n, -1, large);
  }
  return check_even(small, "small blocks") | check_even(large, "large blocks");
}

/* ---- a migrating thread's memory follows it -------------------------------------------- */

static int scenario_migrate(void) {
  int cpu_of_node[MAX_NODES];
  cpus_with_nodes(cpu_of_node);
  pin_to_cpu(cpu_of_node[0]);
  for (int i = 0; i < 2000; i++) memset(malloc(1000), 1, 1000);
  /* A block of a small class above 4 KiB, so that its page has room for more: the first one
   * of its size after the move must not come from that page on node 0. */
  enum { BIG = 40000 };
  memset(malloc(BIG), 1, BIG);
  pin_to_cpu(cpu_of_node[1]);
  char *big = malloc(BIG);
  memset(big, 1, BIG);
  long big_per_node[MAX_NODES] = {0};
  tally(big, BIG, -1, big_per_node);
  printf("  %d-byte block after moving to node 1: node0 %ld pages, node1 %ld pages\n", BIG,
         big_per_node[0], big_per_node[1]);
  enum { COUNT = 20000 };
  static char *after[COUNT];
  for (int i = 0; i < COUNT; i++) after[i] = malloc(1000), memset(after[i], 1, 1000);
  long per_node[MAX_NODES] = {0};
  for (int i = COUNT / 2; i < COUNT; i++) tally(after[i], 1000, -1, per_node);
  printf("  after moving to node 1: node0 %ld pages, node1 %ld pages\n", per_node[0], per_node[1]);
  return per_node[0] != 0 || per_node[1] == 0 || big_per_node[0] != 0 || big_per_node[1] == 0;
}

/* ---- NUMALLOC_NODES=1: a thread on node 0 still gets node 1 ----------------------------- */

static int scenario_restricted(void) {
  int cpu_of_node[MAX_NODES];
  cpus_with_nodes(cpu_of_node);
  pin_to_cpu(cpu_of_node[0]);
  for (size_t i = 0; i < SIZE_COUNT; i++) {
    char *p = malloc(sizes[i]);
    memset(p, 1, sizes[i]);
    tally(p, sizes[i], 1, NULL);
  }
  errno = 0;
  if (api_malloc_onnode(64, 0) != NULL || errno != EINVAL)
    return printf("  malloc_onnode on an excluded node did not fail\n"), 1;
  return failures != 0;
}

/* ---- fork: a child allocates on its own node ---------------------------------------------- */

static int scenario_fork(void) {
  int cpu_of_node[MAX_NODES];
  cpus_with_nodes(cpu_of_node);
  pin_to_cpu(cpu_of_node[0]);
  char *parent = malloc(100000);
  memset(parent, 1, 100000);
  pid_t pid = fork();
  if (pid == 0) {
    pin_to_cpu(cpu_of_node[1]);
    for (size_t i = 0; i < SIZE_COUNT; i++) {
      char *p = malloc(sizes[i]);
      memset(p, 1, sizes[i]);
      tally(p, sizes[i], 1, NULL);
      free(p);
    }
    free(parent);
    _exit(failures != 0);
  }
  int status;
  waitpid(pid, &status, 0);
  tally(parent, 100000, 0, NULL);
  return failures != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0;
}

/* ---- a full node: strict gives ENOMEM, nearest spills, nothing is killed ---------------- */

static size_t fill_node(int node, size_t limit, long *per_node, char **blocks, int *count) {
  size_t total = 0;
  api_thread_bind(node);
  while (total < limit && *count < 4096) {
    char *p = malloc(8 << 20);
    if (p == NULL) break;
    memset(p, 1, 8 << 20);
    tally(p, 8 << 20, -1, per_node);
    blocks[(*count)++] = p;
    total += 8 << 20;
  }
  return total;
}

static int scenario_exhaust(const char *fallback, int node, size_t limit) {
  static char *blocks[4096];
  int count = 0;
  long per_node[MAX_NODES] = {0};
  errno = 0;
  size_t total = fill_node(node, limit, per_node, blocks, &count);
  int err = errno;
  printf("  %s: %zu MiB allocated for node %d (node0 %ld pages, node1 %ld pages), last errno "
         "%d\n",
         fallback, total >> 20, node, per_node[0], per_node[1], err);
  if (strcmp(fallback, "none") == 0) {
    if (total >= limit || err != ENOMEM) return printf("  expected NULL with ENOMEM\n"), 1;
    for (int n = 0; n < MAX_NODES; n++)
      if (n != node && per_node[n] != 0) return printf("  pages outside node %d\n", node), 1;
    for (int i = 0; i < 8 && count > 0; i++) free(blocks[--count]); /* 64 MiB back */
    void (*collect)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "numalloc_collect");
    if (collect) collect();
    long long free_bytes = 0;
    numa_node_size64(node, &free_bytes);
    if (malloc(4 << 20) == NULL)
      return printf("  no recovery after freeing 64 MiB (node %d: %lld MiB free)\n", node,
                    free_bytes >> 20),
             1;
    return 0;
  }
  return total < limit || per_node[node] == 0; /* nearest: all of it, spilling over */
}

/* ---- every entry point under every policy: small, large and huge blocks ------------------ */

enum { ENTRY_COUNT = 8 };
static const char *const entry_names[ENTRY_COUNT] = {"malloc",         "calloc",        "realloc",
                                                     "posix_memalign", "aligned_alloc", "memalign",
                                                     "valloc",         "pvalloc"};

static void *entry_alloc(int entry, size_t n) {
  void *p = NULL;
  switch (entry) {
  case 0: return malloc(n);
  case 1: return calloc(1, n);
  case 2: return realloc(malloc(16), n); /* a small block grown to its size */
  case 3: return posix_memalign(&p, 64, n) == 0 ? p : NULL;
  case 4: return aligned_alloc(4096, n);
  case 5: return memalign(128, n);
  case 6: return valloc(n);
  default: return pvalloc(n);
  }
}

/* Pages of a block spread over the nodes with memory: each within 5 points of an even share. */
static int spread_evenly(const long *per_node) {
  int nodes = 0;
  long total = 0;
  for (int n = 0; n <= numa_max_node() && n < MAX_NODES; n++)
    if (numa_node_size64(n, NULL) > 0) nodes++, total += per_node[n];
  for (int n = 0; n <= numa_max_node() && n < MAX_NODES; n++) {
    if (numa_node_size64(n, NULL) <= 0) continue;
    double share = 100.0 * (double)per_node[n] / (double)total;
    if (share < 100.0 / nodes - 5.0 || share > 100.0 / nodes + 5.0) return 0;
  }
  return 1;
}

/* Checks one block: `want` >= 0 is the node every page must be on, -2 asks for pages spread
 * evenly (interleaved), -1 for every page on the node numalloc reports for the block. */
static void check_entry_block(const char *entry, size_t n, void *p, int want) {
  char what[96];
  snprintf(what, sizeof what, "%s(%zu)", entry, n);
  if (p == NULL) {
    fail(what, p, want, -100);
    return;
  }
  memset(p, 7, n);
  int home = api_node_of(p);
  long per_node[MAX_NODES] = {0};
  if (want == -2) {
    tally(p, n, -1, per_node);
    if (home != -2) fail(what, p, -2, home);
    if (n >= (1 << 20) && !spread_evenly(per_node)) fail(what, p, -2, -3); /* -3: uneven */
  } else {
    int node = want >= 0 ? want : home;
    if (home != node) fail(what, p, node, home);
    tally(p, n, node, NULL);
  }
  free(p);
}

/* `small_want` and `large_want` as for check_entry_block; large means from 1 MiB up (the
 * default NUMALLOC_LARGE_THRESHOLD). */
static int scenario_entries(int small_want, int large_want) {
  static const size_t entry_sizes[] = {200, 40000, 3 << 20, 24 << 20};
  int cpu_of_node[MAX_NODES];
  cpus_with_nodes(cpu_of_node);
  pin_to_cpu(cpu_of_node[1]);
  for (int e = 0; e < ENTRY_COUNT; e++)
    for (size_t i = 0; i < sizeof entry_sizes / sizeof entry_sizes[0]; i++) {
      size_t n = entry_sizes[i];
      check_entry_block(entry_names[e], n, entry_alloc(e, n),
                        n >= (1 << 20) ? large_want : small_want);
    }
  for (int node = 0; node <= numa_max_node(); node++) {
    if (numa_node_size64(node, NULL) <= 0) continue;
    for (size_t i = 0; i < sizeof entry_sizes / sizeof entry_sizes[0]; i++) {
      size_t n = entry_sizes[i];
      check_entry_block("malloc_onnode", n, api_malloc_onnode(n, node), node);
      check_entry_block("calloc_onnode", n, api_calloc_onnode(1, n, node), node);
      check_entry_block("aligned_alloc_onnode", n, api_aligned_alloc_onnode(4096, n, node), node);
    }
  }
  return failures != 0;
}

/* ---- the driver ------------------------------------------------------------------------ */

typedef struct scenario {
  const char *name;
  const char *env; /* NAME=VALUE settings, space-separated */
  int min_cpu_nodes, min_memory_nodes;
} scenario_t;

static const scenario_t scenarios[] = {
    {"local", "NUMALLOC_POLICY=local", 2, 2},
    {"local-large-bound", "NUMALLOC_LARGE_POLICY=local", 2, 2},
    {"onnode", "", 1, 2},
    {"purge", "", 1, 2},
    {"interleave", "NUMALLOC_POLICY=interleave", 1, 2},
    {"rr", "NUMALLOC_POLICY=rr", 1, 2},
    {"migrate", "NUMALLOC_POLICY=local", 2, 2},
    {"restricted", "NUMALLOC_NODES=1", 2, 2},
    {"fork", "", 2, 2},
    {"huge-reuse", "", 2, 2},
    {"large-reuse", "", 2, 2},
    {"entries-local", "NUMALLOC_POLICY=local", 2, 2},
    {"entries-large-interleave", "NUMALLOC_POLICY=local NUMALLOC_LARGE_POLICY=interleave", 2, 2},
    {"entries-interleave", "NUMALLOC_POLICY=interleave", 2, 2},
    {"entries-rr", "NUMALLOC_POLICY=rr", 2, 2},
};

static int run_scenario(const char *name, int argc, char **argv) {
  if (strcmp(name, "local") == 0) return scenario_local(0);
  if (strcmp(name, "local-large-bound") == 0) return scenario_local(1);
  if (strcmp(name, "onnode") == 0) return scenario_onnode();
  if (strcmp(name, "purge") == 0) return scenario_purge();
  if (strcmp(name, "interleave") == 0 || strcmp(name, "rr") == 0) return scenario_spread();
  if (strcmp(name, "migrate") == 0) return scenario_migrate();
  if (strcmp(name, "restricted") == 0) return scenario_restricted();
  if (strcmp(name, "fork") == 0) return scenario_fork();
  if (strcmp(name, "huge-reuse") == 0) return scenario_touch_reuse(40UL << 20);
  if (strcmp(name, "large-reuse") == 0) return scenario_touch_reuse(24UL << 20);
  if (strcmp(name, "entries-local") == 0) return scenario_entries(1, 1);
  if (strcmp(name, "entries-large-interleave") == 0) return scenario_entries(1, -2);
  if (strcmp(name, "entries-interleave") == 0) return scenario_entries(-2, -2);
  if (strcmp(name, "entries-rr") == 0) return scenario_entries(-1, -1);
  if (strcmp(name, "exhaust") == 0 && argc >= 5)
    return scenario_exhaust(argv[2], atoi(argv[3]), (size_t)atol(argv[4]) << 20);
  printf("unknown scenario %s\n", name);
  return 2;
}

/* Runs one scenario in a child under the preload with its settings; 0 when it passed. */
static int spawn(const char *self, const char *preload, const scenario_t *s, char **extra) {
  pid_t pid = fork();
  if (pid == 0) {
    char env_copy[256];
    snprintf(env_copy, sizeof env_copy, "%s", s->env);
    for (char *kv = strtok(env_copy, " "); kv != NULL; kv = strtok(NULL, " ")) putenv(strdup(kv));
    setenv("LD_PRELOAD", preload, 1);
    char *args[8] = {(char *)self, (char *)s->name};
    for (int i = 0; extra != NULL && extra[i] != NULL && i < 5; i++) args[2 + i] = extra[i];
    execv(self, args);
    _exit(127);
  }
  int status;
  waitpid(pid, &status, 0);
  int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  printf("%s: %s %s%s\n", ok ? "PASS" : "FAIL", s->name, s->env, extra ? " (filling a node)" : "");
  fflush(stdout);
  return !ok;
}

static int run_all(const char *self, const char *preload, const char *exhaust) {
  int cpu_of_node[MAX_NODES], memory_nodes = 0, failed = 0, ran = 0;
  int cpu_nodes = cpus_with_nodes(cpu_of_node);
  for (int n = 0; n <= numa_max_node(); n++) memory_nodes += numa_node_size64(n, NULL) > 0;
  for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
    if (cpu_nodes < scenarios[i].min_cpu_nodes || memory_nodes < scenarios[i].min_memory_nodes)
      continue;
    failed += spawn(self, preload, &scenarios[i], NULL);
    ran++;
  }
  if (exhaust != NULL) { /* "NODE:MiB": fill that node under each fallback setting */
    static char node[8], mib[16];
    if (sscanf(exhaust, "%7[0-9]:%15[0-9]", node, mib) != 2) return 2;
    scenario_t strict = {"exhaust", "NUMALLOC_FALLBACK=none", 1, 1};
    scenario_t nearest = {"exhaust", "NUMALLOC_FALLBACK=nearest", 1, 1};
    char *strict_args[] = {"none", node, "4096", NULL};
    char *nearest_args[] = {"nearest", node, mib, NULL};
    failed += spawn(self, preload, &strict, strict_args);
    failed += spawn(self, preload, &nearest, nearest_args);
    ran += 2;
  }
  printf("%d passed, %d failed\n", ran - failed, failed);
  return failed != 0 || ran == 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (numa_available() < 0 || numa_max_node() < 1) {
    printf("FAIL: needs a machine with at least two NUMA nodes (run it in scripts/numa-vm)\n");
    return 1;
  }
  if (argc >= 3 && strcmp(argv[1], "all") == 0)
    return run_all(argv[0], argv[2], argc >= 4 ? argv[3] : NULL);
  api_malloc_onnode = (void *(*)(size_t, int))dlsym(RTLD_DEFAULT, "numalloc_malloc_onnode");
  api_calloc_onnode = (void *(*)(size_t, size_t, int))dlsym(RTLD_DEFAULT, "numalloc_calloc_onnode");
  api_node_of = (int (*)(const void *))dlsym(RTLD_DEFAULT, "numalloc_node_of");
  api_thread_bind = (int (*)(int))dlsym(RTLD_DEFAULT, "numalloc_thread_bind");
  api_aligned_alloc_onnode =
      (void *(*)(size_t, size_t, int))dlsym(RTLD_DEFAULT, "numalloc_aligned_alloc_onnode");
  if (argc < 2 || !api_malloc_onnode || !api_node_of || !api_thread_bind || !api_calloc_onnode ||
      !api_aligned_alloc_onnode) {
    printf("usage: alloc_placement all PRELOAD [NODE:MiB] | SCENARIO (under the preload)\n");
    return 2;
  }
  return run_scenario(argv[1], argc, argv);
}
