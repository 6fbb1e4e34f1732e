/* threadchurn.c: many short-lived threads whose blocks outlive them. Each generation starts
 * one thread per worker; thread i verifies and frees the blocks that thread i of the previous
 * generation left behind (their owner has exited), then allocates and writes its own and exits.
 * An allocator that strands a dead thread's cache or heap shows it here in time and memory. */
#include <pthread.h>
#include <stdlib.h>

#include "bench.h"

#define BLOCKS_PER_THREAD 1000
#define FULL_GENERATIONS  3000

typedef struct legacy {
  void *p[BLOCKS_PER_THREAD];
  uint32_t size[BLOCKS_PER_THREAD];
  uint64_t tag;
  uint64_t generation;
} legacy;

static void release(legacy *l) {
  for (size_t i = 0; i < BLOCKS_PER_THREAD; i++) {
    if (l->p[i] == NULL) continue;
    bench_check(l->p[i], l->size[i], l->tag ^ i, BENCH_LINE);
    bench_free(l->p[i]);
    l->p[i] = NULL;
  }
}

static void *worker(void *arg) {
  legacy *l = arg;
  release(l);
  bench_rng rng = {l->generation};
  l->tag = bench_rand(&rng) | 1;
  for (size_t i = 0; i < BLOCKS_PER_THREAD; i++) {
    l->size[i] = (uint32_t)bench_range(&rng, 8, 1024);
    l->p[i] = bench_malloc(l->size[i]);
    bench_write(l->p[i], 0, l->size[i], l->tag ^ i, BENCH_LINE);
  }
  return NULL;
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  size_t generations = bench_scaled(&args, FULL_GENERATIONS, 2);
  int n = args.threads;
  legacy *legacies = calloc((size_t)n, sizeof *legacies);
  pthread_t *tids = calloc((size_t)n, sizeof *tids);
  if (legacies == NULL || tids == NULL) bench_fail("no memory for the thread table");

  double start = bench_now();
  for (size_t g = 0; g < generations; g++) {
    for (int i = 0; i < n; i++) {
      legacies[i].generation = g * (size_t)n + (size_t)i + 1;
      bench_thread_create(&tids[i], worker, &legacies[i]);
    }
    for (int i = 0; i < n; i++) pthread_join(tids[i], NULL);
  }
  for (int i = 0; i < n; i++) release(&legacies[i]);
  double seconds = bench_now() - start;

  bench_free(tids);
  bench_free(legacies);
  bench_result("threadchurn", seconds, NULL);
  return 0;
}
