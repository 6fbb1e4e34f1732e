/* numa_alloc_demo.c: numalloc's demonstration program. Runs a fixed, seeded workload through the
 * public API (threads pinned round-robin over the nodes' CPUs, a documented mix of sizes, every
 * page touched), then proves where each page went with move_pages(2) and prints, per node, the
 * memory found there and how much of it is local to the thread that allocated it.
 *
 * Workload: --scale MiB in all, split evenly between the threads. Each thread spends its share
 * by bytes as 10% tiny (16-64 B), 20% small (65 B-4 KiB), 30% medium (4 KiB-256 KiB) and 40%
 * large (256 KiB-8 MiB) blocks; the class of the next block is drawn by count weights 70:20:8:2
 * among classes with budget left, its size uniformly within the class (capped by that budget).
 * The PRNG is splitmix64 seeded by --seed and the thread index, so a run is reproducible.
 *
 * Verification (move_pages in query mode, every page of every block; where a container refuses
 * move_pages, get_mempolicy page by page; where it refuses both, exit 3 naming them): local
 * and bind expect every page on one node (the thread's node, the bound node) and any other is
 * a failure (exit 3). For every policy a block that numalloc_node_of places on a node must have
 * all its pages there. interleave also expects the pages of the run spread over the usable
 * nodes within 5% of even; rr expects the allocations spread within 5% of even (rr alternates
 * per allocation, so bytes follow the random sizes). "Local" is a page on the node of the CPU
 * of the thread that allocated it; MB and GB here are 2^20 and 2^30 bytes. */
#include "numalloc.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
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

enum { EXIT_ARGS = 1, EXIT_ALLOC = 2, EXIT_PLACEMENT = 3 };
enum { MAX_NODES = 64, MAX_THREADS = 1024, MAX_CPUS = 4096, MAX_REPORTED = 10 };
#define NODE_ANY (-1) /* no single expected node: the kernel spreads the pages */
#define MiB      ((size_t)1 << 20)

typedef struct size_class_s {
  const char *name;
  size_t min, max;
  int weight;   /* share of the allocations drawn */
  int byte_pct; /* share of a thread's bytes */
} size_class_t;

static const size_class_t classes[] = {
    {"tiny", 16, 64, 70, 10},
    {"small", 65, 4096, 20, 20},
    {"medium", 4097, 256 * 1024, 8, 30},
    {"large", 256 * 1024 + 1, 8 * MiB, 2, 40},
};
enum { CLASS_COUNT = sizeof classes / sizeof classes[0] };

typedef struct options_s {
  int threads;
  numalloc_policy_t policy;
  int node;
  uint64_t seed;
  long scale_mb;
  bool json, policy_given, node_given;
} options_t;

typedef struct block_s {
  void *ptr;
  size_t size;
} block_t;

typedef struct worker_s {
  int index, cpu, node; /* node: the node of its CPU */
  int expected;         /* node its pages must be on, or NODE_ANY */
  uint64_t rng;
  size_t remaining[CLASS_COUNT];
  block_t *blocks;
  size_t count, capacity;
  size_t failed_size;
  int status; /* 0, or the exit code of the failure it met */
  int error;  /* errno of that failure */
} worker_t;

typedef struct page_s {
  uintptr_t addr;
  int worker, expected;
} page_t;

typedef struct tally_s {
  long pages[MAX_NODES], local[MAX_NODES], allocs[MAX_NODES];
  long total, remote, misplaced;
} tally_t;

static options_t opt = {8, NUMALLOC_POLICY_LOCAL, 0, 42, 64, false, false, false};
static worker_t *workers;
static pthread_barrier_t start_line;
static long page_size;

/* ---- arguments ---------------------------------------------------------------------------- */

static void usage(FILE *out) {
  fprintf(out, "Usage: numa_alloc_demo [--threads=N] [--policy=local|interleave|rr|bind] "
               "[--node=N] [--seed=S] [--scale=MB] [--json]\n"
               "  --threads=N   worker threads pinned round-robin over the nodes' CPUs (8)\n"
               "  --policy=P    placement policy (local; bind when only --node is given)\n"
               "  --node=N      the node for --policy=bind (0)\n"
               "  --seed=S      seed of the workload's PRNG (42)\n"
               "  --scale=MB    MiB allocated in all, every page touched (64)\n"
               "  --json        numalloc's statistics JSON with the demo's page counts\n"
               "Exit: 0 placement verified, 1 invalid node or arguments, 2 allocation failure,\n"
               "      3 placement verification failure.\n");
}

static bool parse_long(const char *text, long min, long max, long *out) {
  char *end;
  errno = 0;
  long value = strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value < min || value > max) return false;
  *out = value;
  return true;
}

static bool parse_policy(const char *text, numalloc_policy_t *out) {
  static const numalloc_policy_t choices[] = {NUMALLOC_POLICY_LOCAL, NUMALLOC_POLICY_INTERLEAVE,
                                              NUMALLOC_POLICY_RR, NUMALLOC_POLICY_BIND};
  for (size_t i = 0; i < sizeof choices / sizeof choices[0]; i++)
    if (strcmp(text, numalloc_policy_name(choices[i])) == 0) {
      *out = choices[i];
      return true;
    }
  return false;
}

static int bad_value(const char *name, const char *text) {
  fprintf(stderr, "ERROR: invalid %s value '%s'\n", name, text);
  usage(stderr);
  return EXIT_ARGS;
}

/* Applies one option; 0, or the exit code for a bad value. */
static int apply_option(int key, const char *arg) {
  long value;
  switch (key) {
  case 't':
    if (!parse_long(arg, 1, MAX_THREADS, &value)) return bad_value("--threads", arg);
    opt.threads = (int)value;
    return 0;
  case 'p':
    if (!parse_policy(arg, &opt.policy)) return bad_value("--policy", arg);
    opt.policy_given = true;
    return 0;
  case 'n':
    if (!parse_long(arg, -1000000, 1000000, &value)) return bad_value("--node", arg);
    opt.node = (int)value;
    opt.node_given = true;
    return 0;
  case 's':
    if (!parse_long(arg, 0, LONG_MAX, &value)) return bad_value("--seed", arg);
    opt.seed = (uint64_t)value;
    return 0;
  case 'm':
    if (!parse_long(arg, 1, 1L << 20, &value)) return bad_value("--scale", arg);
    opt.scale_mb = value;
    return 0;
  case 'j': opt.json = true; return 0;
  }
  fprintf(stderr, "ERROR: unknown option '%s'\n", arg);
  usage(stderr);
  return EXIT_ARGS;
}

/* 0 to run, -1 after --help, or an exit code. */
static int parse_args(int argc, char **argv) {
  static const struct option longopts[] = {
      {"threads", required_argument, NULL, 't'}, {"policy", required_argument, NULL, 'p'},
      {"node", required_argument, NULL, 'n'},    {"seed", required_argument, NULL, 's'},
      {"scale", required_argument, NULL, 'm'},   {"json", no_argument, NULL, 'j'},
      {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
  opterr = 0;
  for (int key; (key = getopt_long(argc, argv, "", longopts, NULL)) != -1;) {
    if (key == 'h') return usage(stdout), -1;
    int rc = apply_option(key, key == '?' ? argv[optind - 1] : optarg);
    if (rc != 0) return rc;
  }
  if (optind == argc) return 0;
  fprintf(stderr, "ERROR: unexpected argument '%s'\n", argv[optind]);
  usage(stderr);
  return EXIT_ARGS;
}

static bool node_available(int node) {
  return node >= 0 && node < numalloc_node_count() && node < MAX_NODES &&
         numalloc_node_allowed(node) && numalloc_node_has_memory(node);
}

/* --node=N must name a node the demo can place memory on: one that does not exist, that this
 * process may not use or that has no memory is "not available", said in one line on stderr. */
static int check_node(void) {
  if (opt.node_given && !opt.policy_given) opt.policy = NUMALLOC_POLICY_BIND;
  if ((opt.node_given || opt.policy == NUMALLOC_POLICY_BIND) && !node_available(opt.node)) {
    fprintf(stderr, "ERROR: node %d not available\n", opt.node);
    return EXIT_ARGS;
  }
  if (opt.node_given && opt.policy != NUMALLOC_POLICY_BIND) {
    fprintf(stderr, "ERROR: --node applies only to --policy=bind\n");
    return EXIT_ARGS;
  }
  return 0;
}

/* ---- topology ----------------------------------------------------------------------------- */

static int available_count(void) {
  int count = 0;
  for (int n = 0; n < numalloc_node_count() && n < MAX_NODES; n++) count += node_available(n);
  return count;
}

/* The CPUs this process may run on, taking the allowed nodes in turn (a CPU of node 0, one of
 * node 1, ..., the next of node 0), so consecutive threads land on different nodes. Nodes that
 * are not allowed are skipped unless no allowed node has a CPU. */
static int cpus_by_node(int *cpus, bool only_allowed) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
  int count = 0;
  for (int round = 0, added = 1; added; round++) {
    added = 0;
    for (int n = 0; n < numalloc_node_count() && n < MAX_NODES; n++) {
      if (only_allowed && !numalloc_node_allowed(n)) continue;
      for (int cpu = 0, seen = 0; cpu < CPU_SETSIZE && count < MAX_CPUS; cpu++) {
        if (!CPU_ISSET(cpu, &set) || numa_node_of_cpu(cpu) != n) continue;
        if (seen++ == round) {
          cpus[count++] = cpu;
          added = 1;
          break;
        }
      }
    }
  }
  return count;
}

/* The node local allocation uses for a thread on `node`: itself, or the nearest node with
 * memory this process may use. */
static int nearest_available(int node) {
  int best = -1;
  for (int n = 0; n < numalloc_node_count() && n < MAX_NODES; n++) {
    if (!node_available(n)) continue;
    if (best < 0 || numalloc_node_distance(node, n) < numalloc_node_distance(node, best)) best = n;
  }
  return node_available(node) ? node : best;
}

static int expected_node(const worker_t *w) {
  switch (opt.policy) {
  case NUMALLOC_POLICY_LOCAL: return nearest_available(w->node);
  case NUMALLOC_POLICY_BIND: return opt.node;
  default: return NODE_ANY;
  }
}

/* ---- the workload ------------------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

static size_t rng_range(uint64_t *state, size_t lo, size_t hi) {
  return lo + (size_t)(rng_next(state) % (uint64_t)(hi - lo + 1));
}

static bool class_open(const worker_t *w, int c) { return w->remaining[c] >= classes[c].min; }

/* The class of the next block, by count weights among classes with budget left; -1 when done. */
static int pick_class(worker_t *w) {
  int total = 0;
  for (int c = 0; c < CLASS_COUNT; c++) total += class_open(w, c) ? classes[c].weight : 0;
  if (total == 0) return -1;
  int r = (int)(rng_next(&w->rng) % (uint64_t)total);
  for (int c = 0; c < CLASS_COUNT; c++) {
    if (!class_open(w, c)) continue;
    if (r < classes[c].weight) return c;
    r -= classes[c].weight;
  }
  return -1;
}

static size_t next_size(worker_t *w) {
  int c = pick_class(w);
  if (c < 0) return 0;
  size_t hi = classes[c].max < w->remaining[c] ? classes[c].max : w->remaining[c];
  size_t size = rng_range(&w->rng, classes[c].min, hi);
  w->remaining[c] -= size;
  return size;
}

static bool record(worker_t *w, void *ptr, size_t size) {
  if (w->count == w->capacity) {
    size_t capacity = w->capacity ? 2 * w->capacity : 1024;
    block_t *grown = realloc(w->blocks, capacity * sizeof *grown);
    if (grown == NULL) return false;
    w->blocks = grown;
    w->capacity = capacity;
  }
  w->blocks[w->count++] = (block_t){ptr, size};
  return true;
}

static void worker_init(worker_t *w, int index, int cpu) {
  size_t share = (size_t)opt.scale_mb * MiB / (size_t)opt.threads;
  *w = (worker_t){.index = index, .cpu = cpu, .node = numa_node_of_cpu(cpu)};
  w->rng = opt.seed ^ ((uint64_t)(index + 1) * 0x9e3779b97f4a7c15u);
  for (int c = 0; c < CLASS_COUNT; c++) w->remaining[c] = share / 100 * (size_t)classes[c].byte_pct;
  w->expected = expected_node(w);
}

static int apply_policy(void) {
  if (opt.policy == NUMALLOC_POLICY_BIND) return numalloc_thread_bind(opt.node);
  return numalloc_thread_set_policy(opt.policy);
}

/* Pins the thread, sets its policy, then allocates and touches its share. */
static void *worker_main(void *arg) {
  worker_t *w = arg;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(w->cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0 || apply_policy() != 0) {
    w->status = EXIT_ARGS;
    w->error = errno;
  }
  pthread_barrier_wait(&start_line);
  for (size_t size; w->status == 0 && (size = next_size(w)) != 0;) {
    void *p = numalloc_malloc(size);
    if (p == NULL || !record(w, p, size)) {
      w->error = errno;
      w->failed_size = size;
      w->status = EXIT_ALLOC;
      numalloc_free(p);
      break;
    }
    memset(p, (int)(w->count & 0xff) | 1, size);
  }
  return NULL;
}

/* Runs every worker to the end; 0, or the exit code of the first failure. */
static int run_workers(void) {
  int cpus[MAX_CPUS];
  int ncpus = cpus_by_node(cpus, true);
  if (ncpus == 0) ncpus = cpus_by_node(cpus, false);
  if (ncpus == 0) return fprintf(stderr, "ERROR: no CPU to run on\n"), EXIT_ARGS;
  pthread_t tids[MAX_THREADS];
  pthread_barrier_init(&start_line, NULL, (unsigned)opt.threads);
  for (int t = 0; t < opt.threads; t++) worker_init(&workers[t], t, cpus[t % ncpus]);
  for (int t = 0; t < opt.threads; t++)
    if (pthread_create(&tids[t], NULL, worker_main, &workers[t]) != 0)
      return fprintf(stderr, "ERROR: cannot start thread %d\n", t), EXIT_ALLOC;
  for (int t = 0; t < opt.threads; t++) pthread_join(tids[t], NULL);
  pthread_barrier_destroy(&start_line);
  return 0;
}

static int worker_failure(void) {
  for (int t = 0; t < opt.threads; t++) {
    const worker_t *w = &workers[t];
    if (w->status == EXIT_ARGS)
      fprintf(stderr, "ERROR: thread %d: cannot pin to cpu %d or set policy %s: %s\n", t, w->cpu,
              numalloc_policy_name(opt.policy), strerror(w->error));
    if (w->status == EXIT_ALLOC)
      fprintf(stderr, "ERROR: thread %d (cpu %d, node %d): allocation of %zu bytes failed: %s\n", t,
              w->cpu, w->node, w->failed_size, strerror(w->error));
    if (w->status != 0) return w->status;
  }
  return 0;
}

static void free_blocks(void) {
  for (int t = 0; t < opt.threads; t++) {
    for (size_t i = 0; i < workers[t].count; i++) numalloc_free(workers[t].blocks[i].ptr);
    free(workers[t].blocks);
  }
}

/* ---- verification ------------------------------------------------------------------------- */

static void report_misplaced(const char *what, const void *addr, const worker_t *w, int found,
                             int expected, long *reported) {
  if ((*reported)++ >= MAX_REPORTED) return;
  fprintf(stderr, "misplaced: %s %p of thread %d (cpu %d, node %d) on node %d, expected node %d\n",
          what, addr, w->index, w->cpu, w->node, found, expected);
}

/* The node numalloc_node_of must report for a block: the thread's expected node for local and
 * bind; for interleave and rr any node (a span or a block placed whole, whose pages must then
 * be on it), and for interleave also NUMALLOC_NODE_INTERLEAVED (pages spread by the kernel). */
static bool home_ok(const worker_t *w, int home) {
  if (w->expected != NODE_ANY) return home == w->expected;
  if (opt.policy == NUMALLOC_POLICY_INTERLEAVE && home == NUMALLOC_NODE_INTERLEAVED) return true;
  return home >= 0 && home < MAX_NODES;
}

/* Checks a block's home node as numalloc reports it; returns the node its pages must be on. */
static int check_home(const worker_t *w, const block_t *b, tally_t *tally, long *reported) {
  int home = numalloc_node_of(b->ptr);
  if (!home_ok(w, home)) {
    tally->misplaced++;
    report_misplaced("block (numalloc_node_of)", b->ptr, w, home, w->expected, reported);
    return w->expected;
  }
  if (home >= 0) tally->allocs[home]++;
  return home >= 0 ? home : NODE_ANY;
}

static bool add_page(page_t **pages, size_t *count, size_t *cap, page_t page) {
  if (*count == *cap) {
    *cap = *cap ? 2 * *cap : 4096;
    page_t *grown = realloc(*pages, *cap * sizeof *grown);
    if (grown == NULL) return false;
    *pages = grown;
  }
  (*pages)[(*count)++] = page;
  return true;
}

static int by_addr(const void *a, const void *b) {
  uintptr_t x = ((const page_t *)a)->addr, y = ((const page_t *)b)->addr;
  return x < y ? -1 : x > y;
}

/* Every page of every block, sorted by address, with the node it must be on. */
static page_t *collect_pages(size_t *count, tally_t *tally, long *reported) {
  page_t *pages = NULL;
  size_t cap = 0;
  *count = 0;
  for (int t = 0; t < opt.threads; t++)
    for (size_t i = 0; i < workers[t].count; i++) {
      const block_t *b = &workers[t].blocks[i];
      int expected = check_home(&workers[t], b, tally, reported);
      uintptr_t first = (uintptr_t)b->ptr & ~(uintptr_t)(page_size - 1);
      for (uintptr_t a = first; a < (uintptr_t)b->ptr + b->size; a += (uintptr_t)page_size)
        if (!add_page(&pages, count, &cap, (page_t){a, t, expected})) return free(pages), NULL;
    }
  qsort(pages, *count, sizeof *pages, by_addr);
  return pages;
}

/* EPERM: a container's seccomp profile; ENOSYS: a kernel without NUMA. */
static bool refused(int error) { return error == EPERM || error == EACCES || error == ENOSYS; }

static const char *check_method = "move_pages";

/* get_mempolicy(MPOL_F_NODE | MPOL_F_ADDR), one page a call: permitted in a container with
 * CAP_SYS_NICE, which still refuses move_pages. Every page was touched, so asking does not
 * fault one in. */
static bool nodes_by_policy(void **addrs, int *status, size_t count) {
  for (size_t i = 0; i < count; i++) {
    int node = -1;
    if (get_mempolicy(&node, NULL, 0, addrs[i], MPOL_F_NODE | MPOL_F_ADDR) != 0) {
      if (refused(errno)) return false;
      node = -errno;
    }
    status[i] = node;
  }
  return true;
}

/* The node each distinct page is on now, from move_pages(2) without moving anything, or from
 * get_mempolicy where move_pages is refused. NULL, having said why, when neither may be used. */
static int *query_nodes(const page_t *pages, size_t count, void ***addrs_out) {
  void **addrs = malloc((count + 1) * sizeof *addrs);
  int *status = malloc((count + 1) * sizeof *status);
  if (addrs == NULL || status == NULL) return free(addrs), free(status), NULL;
  for (size_t i = 0; i < count; i++) addrs[i] = (void *)pages[i].addr;
  if (count > 0 && move_pages(0, (unsigned long)count, addrs, NULL, status, 0) != 0) {
    int move_error = errno;
    if (!refused(move_error)) {
      fprintf(stderr, "ERROR: move_pages: %s\n", strerror(move_error));
      return free(addrs), free(status), NULL;
    }
    if (!nodes_by_policy(addrs, status, count)) {
      fprintf(stderr,
              "ERROR: cannot verify placement: move_pages refused (%s) and get_mempolicy refused "
              "(%s); in a container, --cap-add SYS_NICE permits get_mempolicy\n",
              strerror(move_error), strerror(errno));
      return free(addrs), free(status), NULL;
    }
    check_method = "get_mempolicy";
    fprintf(stderr, "note: move_pages refused (%s): every page checked with get_mempolicy\n",
            strerror(move_error));
  }
  *addrs_out = addrs;
  return status;
}

/* Checks one entry of a page against the node it is on; the page is counted once, at its first
 * entry, and a later entry (another block in the same page) only when it expects another node. */
static void tally_page(tally_t *tally, const page_t *page, const page_t *prev, int node,
                       long *reported) {
  const worker_t *w = &workers[page->worker];
  bool first = prev == NULL || prev->addr != page->addr;
  if (!first && prev->expected == page->expected) return;
  if (node < 0 || node >= MAX_NODES) {
    tally->misplaced++;
    report_misplaced("page (not present)", (void *)page->addr, w, node, page->expected, reported);
    return;
  }
  if (page->expected != NODE_ANY && node != page->expected) {
    tally->misplaced++;
    report_misplaced("page", (void *)page->addr, w, node, page->expected, reported);
  }
  if (!first) return;
  tally->total++;
  tally->pages[node]++;
  if (node == w->node)
    tally->local[node]++;
  else
    tally->remote++;
}

/* Counts pages per node and checks each against its expected node; false on an error. */
static bool verify_pages(tally_t *tally, long *reported) {
  size_t count;
  page_t *pages = collect_pages(&count, tally, reported);
  if (pages == NULL && count > 0) return fprintf(stderr, "ERROR: out of memory\n"), false;
  void **addrs = NULL;
  int *status = query_nodes(pages, count, &addrs);
  if (status == NULL) return free(pages), false;
  for (size_t i = 0; i < count; i++)
    tally_page(tally, &pages[i], i > 0 ? &pages[i - 1] : NULL, status[i], reported);
  free(addrs), free(status), free(pages);
  return true;
}

/* interleave: pages, rr: allocations, each node within 5% of an even share. */
static bool spread_even(const long *per_node, const char *what) {
  long total = 0;
  int nodes = available_count();
  for (int n = 0; n < MAX_NODES; n++) total += per_node[n];
  double even = (double)total / (nodes > 0 ? nodes : 1);
  bool ok = true;
  for (int n = 0; n < numalloc_node_count() && n < MAX_NODES; n++) {
    if (!node_available(n) || (per_node[n] >= 0.95 * even && per_node[n] <= 1.05 * even)) continue;
    fprintf(stderr, "ERROR: node %d has %ld of %ld %s, expected %.0f within 5%%\n", n, per_node[n],
            total, what, even);
    ok = false;
  }
  return ok;
}

static bool spread_ok(const tally_t *tally) {
  if (opt.policy == NUMALLOC_POLICY_INTERLEAVE) return spread_even(tally->pages, "pages");
  if (opt.policy == NUMALLOC_POLICY_RR) return spread_even(tally->allocs, "allocations");
  return true;
}

/* ---- output ------------------------------------------------------------------------------- */

static double pct(long part, long whole) { return whole > 0 ? 100.0 * part / whole : 0.0; }

static void print_size(FILE *out, double bytes) {
  if (bytes >= (double)(1u << 30))
    fprintf(out, "%.1f GB", bytes / (double)(1u << 30));
  else
    fprintf(out, "%.1f MB", bytes / (double)MiB);
}

static bool node_shown(const tally_t *tally, int n) {
  return node_available(n) || tally->pages[n] > 0;
}

static void print_text(const tally_t *tally) {
  for (int n = 0; n < numalloc_node_count() && n < MAX_NODES; n++) {
    if (!node_shown(tally, n)) continue;
    printf("Node %d: ", n);
    print_size(stdout, (double)tally->pages[n] * (double)page_size);
    printf(" allocated, %.1f%% local\n", pct(tally->local[n], tally->pages[n]));
  }
  printf("Remote allocations: %.1f%%\n", pct(tally->remote, tally->total));
}

static void print_demo_json(FILE *out, const tally_t *tally, bool verified) {
  size_t blocks = 0;
  for (int t = 0; t < opt.threads; t++) blocks += workers[t].count;
  fprintf(out,
          "  \"demo\": {\"policy\": \"%s\", \"threads\": %d, \"seed\": %" PRIu64
          ", \"scale_mb\": %ld, \"page_size\": %ld, \"blocks\": %zu, \"pages\": %ld",
          numalloc_policy_name(opt.policy), opt.threads, opt.seed, opt.scale_mb, page_size, blocks,
          tally->total);
  if (opt.policy == NUMALLOC_POLICY_BIND) fprintf(out, ", \"bind_node\": %d", opt.node);
  for (int n = 0; n < numalloc_node_count() && n < MAX_NODES; n++) {
    if (!node_shown(tally, n)) continue;
    fprintf(out, ",\n    \"node%d\": {\"pages\": %ld, \"allocated_mb\": %.1f, \"local_pct\": %.1f}",
            n, tally->pages[n], (double)tally->pages[n] * (double)page_size / (double)MiB,
            pct(tally->local[n], tally->pages[n]));
  }
  fprintf(out,
          ",\n    \"remote_pct\": %.1f, \"misplaced_pages\": %ld, \"check\": \"%s\", "
          "\"verified\": %s}\n",
          pct(tally->remote, tally->total), tally->misplaced, check_method,
          verified ? "true" : "false");
}

/* numalloc's statistics object with the demo's own counts added as its last member. */
static int print_json(const tally_t *tally, bool verified) {
  char *text = NULL;
  size_t length = 0;
  FILE *mem = open_memstream(&text, &length);
  if (mem == NULL || numalloc_stats_print(mem, "json") != 0 || fclose(mem) != 0) return -1;
  char *end = strrchr(text, '}');
  if (end == NULL) return free(text), -1;
  while (end > text && (end[-1] == '\n' || end[-1] == ' ')) end--;
  fwrite(text, 1, (size_t)(end - text), stdout);
  printf(",\n");
  print_demo_json(stdout, tally, verified);
  printf("}\n");
  free(text);
  return 0;
}

/* numalloc's statistics say whether it could bind memory at all. */
static bool binding_refused(void) {
  char *text = NULL;
  size_t length = 0;
  FILE *mem = open_memstream(&text, &length);
  if (mem == NULL) return false;
  bool ok = numalloc_stats_print(mem, "json") == 0;
  fclose(mem);
  bool refused_bind =
      ok && text != NULL && strstr(text, "\"bind\": \"not enforced: mbind refused") != NULL;
  free(text);
  return refused_bind;
}

/* ---- main --------------------------------------------------------------------------------- */

static int verify_and_print(void) {
  static tally_t tally;
  long reported = 0;
  if (!verify_pages(&tally, &reported)) return EXIT_PLACEMENT;
  bool spread = spread_ok(&tally);
  if (tally.misplaced > 0)
    fprintf(stderr, "ERROR: placement verification failed: %ld pages or blocks misplaced%s\n",
            tally.misplaced, binding_refused() ? " (numalloc could not bind: mbind refused)" : "");
  bool verified = spread && tally.misplaced == 0;
  if (!opt.json)
    print_text(&tally);
  else if (print_json(&tally, verified) != 0)
    return fprintf(stderr, "ERROR: cannot write the statistics\n"), EXIT_PLACEMENT;
  return verified ? 0 : EXIT_PLACEMENT;
}

int main(int argc, char **argv) {
  int rc = parse_args(argc, argv);
  if (rc != 0) return rc < 0 ? 0 : rc;
  if ((rc = check_node()) != 0) return rc;
  page_size = sysconf(_SC_PAGESIZE);
  workers = calloc((size_t)opt.threads, sizeof *workers);
  if (workers == NULL) return fprintf(stderr, "ERROR: out of memory\n"), EXIT_ALLOC;
  rc = run_workers();
  if (rc == 0) rc = worker_failure();
  if (rc == 0) rc = verify_and_print();
  free_blocks();
  free(workers);
  return rc;
}
