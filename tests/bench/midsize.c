/* midsize.c: buffers of 16-256 KiB, the sizes of I/O buffers, compression windows and
 * per-request scratch space. Each thread keeps 200 of them live, uniform in size, and replaces
 * random ones, writing one word per OS page and verifying it before the free. An allocator
 * that keeps few of these blocks per span takes a span from its shared pool at nearly every
 * allocation and gives one back at nearly every free. */
#include <stdlib.h>

#include "bench.h"

#define LIVE_SLOTS 200
#define MIN_SIZE   (16u << 10)
#define MAX_SIZE   (256u << 10)
#define FULL_STEPS 1e6 /* per thread */

static size_t steps;

static void *run(void *arg) {
  int id = (int)(intptr_t)arg;
  bench_rng rng = {7000 + (uint64_t)id};
  bench_block slots[LIVE_SLOTS] = {0};
  for (size_t i = 0; i < steps; i++) {
    bench_block *b = &slots[bench_rand(&rng) % LIVE_SLOTS];
    bench_block_free(b, BENCH_PAGE);
    bench_block_new(b, bench_range(&rng, MIN_SIZE, MAX_SIZE), bench_tag(i, (uint64_t)id),
                    BENCH_PAGE);
  }
  for (size_t i = 0; i < LIVE_SLOTS; i++) bench_block_free(&slots[i], BENCH_PAGE);
  return NULL;
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  steps = bench_scaled(&args, FULL_STEPS, 1000);
  double start = bench_now();
  bench_spawn(args.threads, run, NULL, 0);
  bench_result("midsize", bench_now() - start, NULL);
  return 0;
}
