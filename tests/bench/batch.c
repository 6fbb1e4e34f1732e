/* batch.c: batches allocated whole and freed whole, the pattern of Hoard's threadtest and of
 * programs that build a structure, use it and drop it at every request, frame or pass. Each
 * thread, round after round, allocates a batch of blocks of one size, writes a word in each,
 * then checks and frees them all, in the order they came on even rounds and in reverse on odd
 * ones. The batch's size takes turns over phases, from 8-byte blocks by the ten thousand to
 * a hundred of 4 KiB, each batch filling several pages of its class; `-m big` runs batches
 * of blocks from 12 KiB to 128 KiB instead, from 1.2 MiB to 25 MiB a batch (threadtest's
 * object size is a parameter). An allocator that hands a page it emptied back to a shared
 * arena takes it back from there at the next round, under the arena's lock, with every other
 * thread of the node doing the same. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define FULL_BLOCKS     40e6 /* per thread, over all phases */
#define FULL_BIG_BLOCKS 16e6

typedef struct phase {
  size_t size, count;
} phase;

static const phase small_phases[] = {
    {8, 20000}, {64, 4000}, {256, 1000}, {1024, 300}, {4096, 100}, {96, 2500}, {0, 0},
};
static const phase big_phases[] = {
    {12 << 10, 100}, {16 << 10, 1000}, {64 << 10, 100}, {128 << 10, 200}, {0, 0},
};
static const phase *phases = small_phases;

static size_t blocks_per_phase;

static void *run(void *arg) {
  uint64_t seed = (uintptr_t)arg * 7919 + 1;
  for (size_t f = 0; phases[f].size != 0; f++) {
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
  double full = FULL_BLOCKS;
  if (args.mode != NULL && strcmp(args.mode, "big") == 0) {
    phases = big_phases;
    full = FULL_BIG_BLOCKS;
  } else if (args.mode != NULL) {
    bench_fail("unknown mode %s (big)", args.mode);
  }
  size_t count = 0;
  while (phases[count].size != 0) count++;
  blocks_per_phase = bench_scaled(&args, full / (double)count, 1000);
  double start = bench_now();
  bench_spawn(args.threads, run, NULL, 0);
  double seconds = bench_now() - start;
  bench_result(phases == big_phases ? "batch_big" : "batch", seconds, NULL);
  return 0;
}
