/* mlarge.c: large blocks reused at random. Up to 20 blocks of 5 to 25 MiB are live; each step
 * frees a random slot's block and allocates a new one there, which is zero-filled (every page
 * touched, as a program that calloc's or memset's its buffers does) and tagged once per page.
 * An allocator that gives such blocks back to the kernel at every free pays a page fault per
 * page at every reuse. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define SLOTS      20
#define MIB        (1u << 20)
#define FULL_STEPS 600

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  size_t steps = bench_scaled(&args, FULL_STEPS, 40);
  bench_rng rng = {2525};
  bench_block slots[SLOTS] = {0};

  double start = bench_now();
  for (size_t i = 0; i < steps; i++) {
    bench_block *b = &slots[bench_rand(&rng) % SLOTS];
    bench_block_free(b, BENCH_PAGE);
    b->size = bench_range(&rng, 5 * MIB, 25 * MIB);
    b->tag = bench_rand(&rng) | 1;
    b->p = bench_malloc(b->size);
    memset(b->p, 0, b->size);
    bench_write(b->p, 0, b->size, b->tag, BENCH_PAGE);
  }
  for (size_t i = 0; i < SLOTS; i++) bench_block_free(&slots[i], BENCH_PAGE);
  double seconds = bench_now() - start;
  bench_result("mlarge", seconds, NULL);
  return 0;
}
