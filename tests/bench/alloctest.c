/* alloctest.c: the pattern of OLogN's alloc-test, which tries to look like real programs: each
 * thread keeps up to 16,384 live blocks and, at random slots, frees the block there or
 * allocates a new one, with sizes whose probability falls as 1/size from 8 bytes to 32 KiB
 * (so as many blocks between 8 and 16 bytes as between 16 and 32 KiB), filling the live set
 * to about half and keeping it there. Every cache line of a block is written and checked. */
#include <stdlib.h>

#include "bench.h"

#define SLOTS      16384
#define FULL_STEPS 5e6 /* per thread */

static size_t steps;

static void *run(void *arg) {
  bench_rng rng = {5 + (uint64_t)(intptr_t)arg};
  bench_block *slots = calloc(SLOTS, sizeof *slots);
  if (slots == NULL) bench_fail("no memory for the slots");
  for (size_t i = 0; i < steps; i++) {
    bench_block *b = &slots[bench_rand(&rng) % SLOTS];
    if (b->p != NULL)
      bench_block_free(b, BENCH_LINE);
    else
      bench_block_new(b, bench_log_range(&rng, 8, 32 << 10), bench_rand(&rng) | 1, BENCH_LINE);
  }
  for (size_t i = 0; i < SLOTS; i++) bench_block_free(&slots[i], BENCH_LINE);
  free(slots);
  return NULL;
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  steps = bench_scaled(&args, FULL_STEPS, 10000);
  double start = bench_now();
  bench_spawn(args.threads, run, NULL, 0); /* the argument is the thread's index */
  double seconds = bench_now() - start;
  bench_result("alloctest", seconds, NULL);
  return 0;
}
