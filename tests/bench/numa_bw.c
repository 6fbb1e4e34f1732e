/* numa_bw.c: memory placement on a real multi-socket machine. Runs on node 0's CPUs and
 * measures the bandwidth of a STREAM-like triad (a = b + q * c) and the latency of a dependent
 * pointer chase over memory placed on the local node, on a remote node, interleaved over all
 * nodes (all three placed with libnuma), and from plain malloc (wherever the allocator under
 * test puts it). On a single-node machine "remote" is reported as NA. The numbers only mean
 * something on real hardware; on an emulated VM they are not judged. */
#include <numa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define FULL_BYTES (256.0 * 1024 * 1024) /* per placement: three triad arrays and a chase */
#define TRIAD_REPS 5
#define CHASE_LINE 64

/* A node number, or one of these. */
#define INTERLEAVED -1
#define FROM_MALLOC -2
#define NO_NODE     -3 /* no remote node on this machine */

typedef struct placement {
  const char *name;
  int node;
} placement;

typedef struct measure {
  double bandwidth_mbs, latency_ns;
} measure;

static void *get(const placement *pl, size_t bytes) {
  void *p = pl->node == FROM_MALLOC   ? bench_malloc(bytes)
            : pl->node == INTERLEAVED ? numa_alloc_interleaved(bytes)
                                      : numa_alloc_onnode(bytes, pl->node);
  if (p == NULL) bench_fail("no memory for %s placement", pl->name);
  return p;
}

static void put(const placement *pl, void *p, size_t bytes) {
  if (pl->node == FROM_MALLOC)
    free(p);
  else
    numa_free(p, bytes);
}

/* Best triad bandwidth of a few repetitions, in MB/s; verifies the result. */
static double triad(const placement *pl, size_t bytes) {
  size_t n = bytes / 3 / sizeof(double);
  double *a = get(pl, n * sizeof(double));
  double *b = get(pl, n * sizeof(double));
  double *c = get(pl, n * sizeof(double));
  for (size_t i = 0; i < n; i++) {
    a[i] = 0;
    b[i] = (double)(i % 1000);
    c[i] = 2.0;
  }
  double best = 1e30, q = 3.0;
  for (int r = 0; r < TRIAD_REPS; r++) {
    double t = bench_now();
    for (size_t i = 0; i < n; i++) a[i] = b[i] + q * c[i];
    t = bench_now() - t;
    best = t < best ? t : best;
  }
  for (size_t i = 0; i < n; i += 4099)
    if (a[i] != (double)(i % 1000) + 6.0) bench_fail("triad result wrong at %zu", i);
  put(pl, a, n * sizeof(double));
  put(pl, b, n * sizeof(double));
  put(pl, c, n * sizeof(double));
  return 3.0 * (double)(n * sizeof(double)) / best / 1e6;
}

/* Nanoseconds per step of a chase through a random single cycle over all lines. */
static double chase(const placement *pl, size_t bytes, bench_rng *rng) {
  size_t lines = bytes / CHASE_LINE;
  char *mem = get(pl, lines * CHASE_LINE);
  size_t *order = bench_malloc(lines * sizeof *order);
  for (size_t i = 0; i < lines; i++) order[i] = i;
  for (size_t i = lines - 1; i > 0; i--) { /* Sattolo: one cycle through every line */
    size_t j = bench_rand(rng) % i;
    size_t t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  for (size_t i = 0; i < lines; i++) *(void **)(mem + i * CHASE_LINE) = mem + order[i] * CHASE_LINE;
  free(order);

  void **p = (void **)mem;
  double t = bench_now();
  for (size_t i = 0; i < lines; i++) p = *p;
  t = bench_now() - t;
  if ((char *)p != mem) bench_fail("pointer chase did not close its cycle");
  put(pl, mem, lines * CHASE_LINE);
  return t / (double)lines * 1e9;
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  size_t bytes = bench_scaled(&args, FULL_BYTES, 1 << 20);
  if (numa_available() < 0) {
    bench_result("numa", 0, "numa=unavailable");
    return 0;
  }
  int remote = NO_NODE;
  for (int n = 1; n <= numa_max_node() && remote == NO_NODE; n++)
    if (numa_bitmask_isbitset(numa_all_nodes_ptr, (unsigned)n)) remote = n;
  numa_run_on_node(0);
  placement pls[] = {
      {"local", 0}, {"remote", remote}, {"interleave", INTERLEAVED}, {"malloc", FROM_MALLOC}};
  bench_rng rng = {31};
  char extra[512] = "";
  size_t len = 0;

  double start = bench_now();
  for (size_t i = 0; i < sizeof pls / sizeof pls[0]; i++) {
    if (pls[i].node == NO_NODE) {
      len += (size_t)snprintf(extra + len, sizeof extra - len, "%sbw_%s_mbs=NA lat_%s_ns=NA",
                              len ? " " : "", pls[i].name, pls[i].name);
      continue;
    }
    measure m = {triad(&pls[i], bytes), chase(&pls[i], bytes / 4, &rng)};
    len +=
        (size_t)snprintf(extra + len, sizeof extra - len, "%sbw_%s_mbs=%.0f lat_%s_ns=%.1f",
                         len ? " " : "", pls[i].name, m.bandwidth_mbs, pls[i].name, m.latency_ns);
  }
  double seconds = bench_now() - start;
  len += (size_t)snprintf(extra + len, sizeof extra - len, " nodes=%d", numa_max_node() + 1);
  bench_result("numa", seconds, extra);
  return 0;
}
