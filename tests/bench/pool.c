/* pool.c: pools of objects of one size kept at a constant count, as a cache replaces its
 * entries, a server its connections' buffers or a simulation its particles. Each thread
 * keeps a pool of blocks of one size and replaces a random one at every step: the block is
 * checked (a word in each cache line), freed, and a new one is made and written there.
 * The pool's size takes turns over phases, from 48 bytes to 4 KiB, each pool big enough to
 * fill many pages of its class and small enough to stay in a core's caches (a pool that
 * does not is strings' pattern). An allocator that keeps its pages full but for the block
 * freed last pays at every step for the page going back and forth.
 *
 * -m cold: pools far bigger than the caches (a table of 131,072 small objects), each
 * replaced without being read first, as a cache evicts entries it no longer looks at; the
 * new block gets one word, and every block is checked at the end of its phase. The block a
 * step frees is in no cache: an allocator that reads it, at the free or when it hands it out
 * again at the next malloc, waits for memory at every step. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define FULL_STEPS 24e6 /* per thread, over all phases */

typedef struct phase {
  size_t size, count;
} phase;

static const phase warm_phases[] = {
    {48, 8192}, {256, 4096}, {1024, 1024}, {4096, 256}, {160, 4096}, {2048, 512}, {0, 0},
};
static const phase cold_phases[] = {{64, 131072}, {32, 131072}, {128, 131072}, {0, 0}};

static const phase *phases = warm_phases;
static size_t steps_per_phase;

/* One phase of -m cold: a block is freed unread and its successor gets one word. */
static void run_cold(bench_rng *rng, size_t size, size_t count) {
  uint64_t **pool = calloc(count, sizeof *pool);
  if (pool == NULL) bench_fail("no memory for the pool");
  for (size_t i = 0; i < count; i++) {
    pool[i] = bench_malloc(size);
    *pool[i] = i;
  }
  for (size_t i = 0; i < steps_per_phase; i++) {
    size_t k = bench_rand(rng) % count;
    bench_free(pool[k]);
    pool[k] = bench_malloc(size);
    *pool[k] = k;
  }
  for (size_t i = 0; i < count; i++) {
    if (*pool[i] != i) bench_fail("block %p of the pool was overwritten", (void *)pool[i]);
    bench_free(pool[i]);
  }
  free(pool);
}

static void *run(void *arg) {
  bench_rng rng = {(uintptr_t)arg * 7919 + 1};
  for (const phase *f = phases; f->size != 0; f++) {
    size_t size = f->size, count = f->count;
    if (phases == cold_phases) {
      run_cold(&rng, size, count);
      continue;
    }
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
  if (args.mode != NULL && strcmp(args.mode, "cold") == 0)
    phases = cold_phases;
  else if (args.mode != NULL)
    bench_fail("unknown mode %s: cold, or none", args.mode);
  size_t count = 0;
  while (phases[count].size != 0) count++;
  steps_per_phase = bench_scaled(&args, FULL_STEPS / count, 1000);
  double start = bench_now();
  bench_spawn(args.threads, run, NULL, 0);
  double seconds = bench_now() - start;
  bench_result("pool", seconds, NULL);
  return 0;
}
