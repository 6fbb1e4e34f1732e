/* larson_pub.c: Larson and Krishnan's server benchmark as it is usually run. The main thread
 * allocates every thread's array of 5,000 blocks of 8 to 999 bytes, shuffles them across the
 * arrays and churns them once; then each thread replaces random blocks of its array 500,000
 * times and hands the array on to a new thread it starts before it exits, so blocks are freed
 * by threads that did not allocate them, some of which have exited. Sizes are uniform; every
 * block carries a tag in its first and last words. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define BLOCKS           5000
#define MIN_SIZE         8
#define MAX_SIZE         1000
#define OPS_PER_THREAD   500000 /* rounds of 100 x BLOCKS, as published */
#define FULL_GENERATIONS 60

typedef struct lane {
  _Alignas(64) bench_block *blocks;
  bench_rng rng;
  size_t generation;
  size_t ops_left;
  pthread_t *tids; /* one per generation; each thread writes its successor's */
} lane;

static size_t generations;

static size_t block_size(bench_rng *rng) {
  return MIN_SIZE + bench_rand(rng) % (MAX_SIZE - MIN_SIZE);
}

static void put(bench_block *b, bench_rng *rng) {
  size_t size = block_size(rng);
  bench_block_new(b, size, bench_rand(rng) | 1, size);
}

static void *work(void *arg) {
  lane *l = arg;
  size_t ops = l->ops_left < OPS_PER_THREAD ? l->ops_left : OPS_PER_THREAD;
  for (size_t i = 0; i < ops; i++) {
    bench_block *b = &l->blocks[bench_rand(&l->rng) % BLOCKS];
    bench_block_free(b, b->size);
    put(b, &l->rng);
  }
  l->ops_left -= ops;
  if (++l->generation < generations) bench_thread_create(&l->tids[l->generation], work, l);
  return NULL;
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  int n = args.threads;
  /* The published run hands each array on every 500,000 operations; a scaled-down run keeps
   * that and does fewer generations (or one shorter one). */
  size_t ops = bench_scaled(&args, (double)FULL_GENERATIONS * OPS_PER_THREAD, 1000);
  generations = (ops + OPS_PER_THREAD - 1) / OPS_PER_THREAD;
  size_t total = (size_t)n * BLOCKS;
  bench_block *all = calloc(total, sizeof *all);
  lane *lanes = aligned_alloc(64, (size_t)n * sizeof *lanes); /* a line each: no false sharing */
  if (lanes != NULL) memset(lanes, 0, (size_t)n * sizeof *lanes);
  if (all == NULL || lanes == NULL) bench_fail("no memory for the arrays");
  bench_rng rng = {4141};

  double start = bench_now();
  for (size_t i = 0; i < total; i++) put(&all[i], &rng);
  for (size_t i = total; i > 1; i--) { /* shuffle: blocks land in other threads' arrays */
    size_t j = bench_rand(&rng) % i;
    bench_block t = all[j];
    all[j] = all[i - 1];
    all[i - 1] = t;
  }
  for (size_t i = 0; i < 4 * total; i++) {
    bench_block *b = &all[bench_rand(&rng) % total];
    bench_block_free(b, b->size);
    put(b, &rng);
  }
  for (int i = 0; i < n; i++) {
    lanes[i].blocks = &all[(size_t)i * BLOCKS];
    lanes[i].rng.state = bench_rand(&rng);
    lanes[i].ops_left = ops;
    lanes[i].tids = calloc(generations, sizeof(pthread_t));
    if (lanes[i].tids == NULL) bench_fail("no memory for thread ids");
    bench_thread_create(&lanes[i].tids[0], work, &lanes[i]);
  }
  /* Each thread of a lane writes its successor's id before it returns, so joining it makes
   * the successor's id visible. */
  for (int i = 0; i < n; i++) {
    for (size_t g = 0; g < generations; g++) pthread_join(lanes[i].tids[g], NULL);
    free(lanes[i].tids);
  }
  for (size_t i = 0; i < total; i++) bench_block_free(&all[i], all[i].size);
  double seconds = bench_now() - start;
  free(lanes);
  free(all);
  bench_result("larson_pub", seconds, NULL);
  return 0;
}
