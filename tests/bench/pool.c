/* pool.c: pools of objects of one size kept at a constant count, as a cache replaces its
 * entries, a server its connections' buffers or a simulation its particles. Each thread
 * keeps a pool of blocks of one size and replaces a random one at every step: the block is
 * checked (a word in each cache line), freed, and a new one is made and written there.
 * The pool's size takes turns over phases, from 48 bytes to 4 KiB, each pool big enough to
 * fill many pages of its class and small enough to stay in a core's caches (a pool that
 * does not is strings' pattern). An allocator that keeps its pages full but for the block
 * freed last pays at every step for the page going back and forth. */
#include <stdlib.h>

#include "bench.h"

#define FULL_STEPS 24e6 /* per thread, over all phases */

typedef struct phase {
  size_t size, count;
} phase;

static const phase phases[] = {
    {48, 8192}, {256, 4096}, {1024, 1024}, {4096, 256}, {160, 4096}, {2048, 512},
};
#define PHASES (sizeof phases / sizeof phases[0])

static size_t steps_per_phase;

static void *run(void *arg) {
  bench_rng rng = {(uintptr_t)arg * 7919 + 1};
  for (size_t f = 0; f < PHASES; f++) {
    size_t size = phases[f].size, count = phases[f].count;
    bench_block *pool = calloc(count, sizeof *pool);
    if (pool == NULL) bench_fail("no memory for the pool");
    for (size_t i = 0; i < count; i++)
      bench_block_new(&pool[i], size, bench_rand(&rng) | 1, BENCH_LINE);
    for (size_t i = 0; i < steps_per_phase; i++) {
      bench_block *b = &pool[bench_rand(&rng) % count];
      bench_block_free(b, BENCH_LINE);
      bench_block_new(b, size, i | 1, BENCH_LINE);
    }
    for (size_t i = 0; i < count; i++) bench_block_free(&pool[i], BENCH_LINE);
    free(pool);
  }
  return NULL;
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  steps_per_phase = bench_scaled(&args, FULL_STEPS / PHASES, 1000);
  double start = bench_now();
  bench_spawn(args.threads, run, NULL, 0);
  double seconds = bench_now() - start;
  bench_result("pool", seconds, NULL);
  return 0;
}
