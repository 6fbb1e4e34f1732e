/* churn.c: small-object churn in one thread. A fixed live set of slots holds blocks of random
 * sizes from 8 to 512 bytes; each step verifies and frees a random slot's block and puts a new
 * one there. This is the allocator's fast path under a realistic size mix. */
#include <stdlib.h>

#include "bench.h"

#define LIVE_SLOTS 20000
#define FULL_STEPS 20e6

typedef struct slot {
  void *p;
  size_t size;
  uint64_t tag;
} slot;

static void refill(slot *s, bench_rng *rng, uint64_t step) {
  s->size = bench_range(rng, 8, 512);
  s->tag = bench_tag(step, s->size);
  s->p = bench_malloc(s->size);
  bench_write(s->p, 0, s->size, s->tag, BENCH_LINE);
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  size_t steps = bench_scaled(&args, FULL_STEPS, 1000);
  bench_rng rng = {42};
  slot *slots = calloc(LIVE_SLOTS, sizeof *slots);
  if (slots == NULL) bench_fail("no memory for the slot table");

  double start = bench_now();
  for (size_t i = 0; i < LIVE_SLOTS; i++) refill(&slots[i], &rng, i);
  for (size_t i = 0; i < steps; i++) {
    slot *s = &slots[bench_rand(&rng) % LIVE_SLOTS];
    bench_check(s->p, s->size, s->tag, BENCH_LINE);
    bench_free(s->p);
    refill(s, &rng, LIVE_SLOTS + i);
  }
  for (size_t i = 0; i < LIVE_SLOTS; i++) {
    bench_check(slots[i].p, slots[i].size, slots[i].tag, BENCH_LINE);
    bench_free(slots[i].p);
  }
  double seconds = bench_now() - start;
  bench_free(slots);
  bench_result("churn", seconds, NULL);
  return 0;
}
