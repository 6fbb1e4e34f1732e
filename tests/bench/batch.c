/* batch.c: batches allocated whole and freed whole, the pattern of Hoard's threadtest and of
 * programs that build a structure, use it and drop it at every request, frame or pass. Each
 * thread, round after round, allocates a batch of blocks of one size, writes a word in each,
 * then checks and frees them all, in the order they came on even rounds and in reverse on odd
 * ones. The batch's size takes turns over phases, from 8-byte blocks by the ten thousand to
 * a hundred of 4 KiB, each batch filling several pages of its class. An allocator that hands
 * a page it emptied back to a shared arena takes it back from there at the next round, under
 * the arena's lock, with every other thread of the node doing the same. */
#include <stdlib.h>

#include "bench.h"

#define FULL_BLOCKS 40e6 /* per thread, over all phases */

typedef struct phase {
  size_t size, count;
} phase;

static const phase phases[] = {
    {8, 20000}, {64, 4000}, {256, 1000}, {1024, 300}, {4096, 100}, {96, 2500},
};
#define PHASES (sizeof phases / sizeof phases[0])

static size_t blocks_per_phase;

static void *run(void *arg) {
  uint64_t seed = (uintptr_t)arg * 7919 + 1;
  for (size_t f = 0; f < PHASES; f++) {
    size_t size = phases[f].size, count = phases[f].count;
    uint64_t **batch = malloc(count * sizeof *batch);
    if (batch == NULL) bench_fail("no memory for the batch");
    for (size_t round = 0; round * count < blocks_per_phase; round++) {
      uint64_t tag = seed ^ (round << 20);
      for (size_t i = 0; i < count; i++) {
        batch[i] = bench_malloc(size);
        *batch[i] = tag + i;
      }
      for (size_t k = 0; k < count; k++) {
        size_t i = round % 2 ? count - 1 - k : k;
        if (*batch[i] != tag + i)
          bench_fail("block %p of a batch was overwritten", (void *)batch[i]);
        bench_free(batch[i]);
      }
    }
    free(batch);
  }
  return NULL;
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  blocks_per_phase = bench_scaled(&args, FULL_BLOCKS / PHASES, 1000);
  double start = bench_now();
  bench_spawn(args.threads, run, NULL, 0);
  double seconds = bench_now() - start;
  bench_result("batch", seconds, NULL);
  return 0;
}
