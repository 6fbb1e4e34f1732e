/* trim.c: a program that calls malloc_trim(0) in a loop, as programs written for glibc do to
 * keep their memory down (a service after every request, a stress tool every few hundred
 * allocations). Each thread has 4,096 slots; each step picks a random one and frees its block
 * (verified first) when it holds one, or else allocates a block of 16 bytes to 64 KiB (uniform)
 * and writes one word per OS page of it. Every TRIM_EVERY steps the thread calls malloc_trim.
 * An allocator that gives memory back at every call faults it in again at the next steps. */
#include <malloc.h>
#include <stdlib.h>

#include "bench.h"

#define SLOTS      4096
#define MAX_SIZE   (64u << 10)
#define TRIM_EVERY 2048
#define FULL_STEPS 8e6 /* per thread */

static size_t steps;

static void *run(void *arg) {
  int id = (int)(intptr_t)arg;
  bench_rng rng = {9100 + (uint64_t)id};
  bench_block *slots = calloc(SLOTS, sizeof *slots);
  if (slots == NULL) bench_fail("no memory for the slots");
  for (size_t i = 1; i <= steps; i++) {
    bench_block *b = &slots[bench_rand(&rng) % SLOTS];
    if (b->p != NULL)
      bench_block_free(b, BENCH_PAGE);
    else
      bench_block_new(b, bench_range(&rng, 16, MAX_SIZE), bench_tag(i, (uint64_t)id), BENCH_PAGE);
    if (i % TRIM_EVERY == 0) malloc_trim(0);
  }
  for (size_t i = 0; i < SLOTS; i++) bench_block_free(&slots[i], BENCH_PAGE);
  free(slots);
  return NULL;
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  steps = bench_scaled(&args, FULL_STEPS, 1000);
  double start = bench_now();
  bench_spawn(args.threads, run, NULL, 0);
  bench_result("trim", bench_now() - start, NULL);
  return 0;
}
