/* pairs.c: the fast path, for instruction counting under callgrind. Runs SCALE million pairs
 * of malloc(32) and free. scripts/bench --callgrind runs it with two counts and takes the
 * difference of the instructions executed outside this program (in malloc, free and whatever
 * they call) divided by the extra pairs, so start-up and first-use refills cancel out and the
 * loop itself is not counted. Built with -fno-plt, so no PLT stub is counted either. Not a
 * timing benchmark: its seconds would measure the loop. */
#include <stdlib.h>

#include "bench.h"

#define PAIR_SIZE 32

static void *volatile sink;

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  size_t n = bench_scaled(&args, 1e6, 1);
  double start = bench_now();
  for (size_t i = 0; i < n; i++) {
    void *p = malloc(PAIR_SIZE);
    sink = p; /* keeps the compiler from eliding the pair */
    free(p);
  }
  bench_result("pairs", bench_now() - start, NULL);
  return 0;
}
