/* gthread.c: the pattern of glibc's bench-malloc-thread. Each thread keeps a working set of
 * 1,024 slots and, at slots taken from a fixed random sequence, frees the block there and
 * allocates one of a size drawn with an inverse-square distribution from 8 to 32,768 bytes
 * (most blocks small, a few large), then writes all of it. */
#include <math.h>
#include <stdlib.h>

#include "bench.h"

#define WORKING_SET 1024
#define MIN_SIZE    8 /* published: 4; our blocks carry an 8-byte tag */
#define MAX_SIZE    32768
#define NSIZES      8000
#define NOFFSETS    (WORKING_SET * 4)
#define FULL_ITERS  30e6 /* per thread */

static unsigned sizes[NSIZES], offsets[NOFFSETS];
static size_t iters;

/* Inverse transform of a density proportional to size^-2 on [MIN_SIZE, MAX_SIZE]. */
static unsigned inverse_square(double u) {
  double lo = 1.0 / MIN_SIZE, hi = 1.0 / MAX_SIZE;
  return (unsigned)(1.0 / (lo - u * (lo - hi)));
}

static void *run(void *arg) {
  (void)arg;
  bench_block *set = calloc(WORKING_SET, sizeof *set);
  if (set == NULL) bench_fail("no memory for the working set");
  size_t s = 0, o = 0;
  for (size_t i = 0; i < iters; i++) {
    bench_block *b = &set[offsets[o]];
    o = o + 1 == NOFFSETS ? 0 : o + 1;
    s = s + 1 == NSIZES ? 0 : s + 1;
    bench_block_free(b, 8);
    bench_block_new(b, sizes[s], i | 1, 8);
  }
  for (size_t i = 0; i < WORKING_SET; i++) bench_block_free(&set[i], 8);
  free(set);
  return NULL;
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  iters = bench_scaled(&args, FULL_ITERS, 10000);
  bench_rng rng = {88};
  for (size_t i = 0; i < NSIZES; i++)
    sizes[i] = inverse_square((double)(bench_rand(&rng) >> 11) / 9007199254740992.0);
  for (size_t i = 0; i < NOFFSETS; i++) offsets[i] = (unsigned)(bench_rand(&rng) % WORKING_SET);
  double start = bench_now();
  bench_spawn(args.threads, run, NULL, 0);
  double seconds = bench_now() - start;
  bench_result("gthread", seconds, NULL);
  return 0;
}
