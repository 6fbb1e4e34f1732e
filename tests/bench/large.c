/* large.c: large blocks. A small live set of blocks from 64 KiB to 4 MiB (log-uniform); each
 * step verifies and frees a random slot's block, allocates a new one and touches every page,
 * and half of the time grows it with realloc by 1.25x to 2x, verifying that the old pages
 * moved along and touching the new ones. What this measures is mostly page faults, mmap and
 * munmap: whether the allocator keeps and reuses memory or returns and refaults it. */
#include <stdlib.h>

#include "bench.h"

#define LIVE_SLOTS 16
#define MIN_SIZE   (64u << 10)
#define MAX_SIZE   (4u << 20)
#define FULL_STEPS 20000

typedef struct slot {
  void *p;
  size_t size;
  uint64_t tag;
} slot;

static void put(slot *s, bench_rng *rng) {
  s->size = bench_log_range(rng, MIN_SIZE, MAX_SIZE);
  s->tag = bench_rand(rng) | 1;
  s->p = bench_malloc(s->size);
  bench_write(s->p, 0, s->size, s->tag, BENCH_PAGE);
  if (bench_rand(rng) & 1) {
    size_t grown = s->size + s->size * bench_range(rng, 1, 4) / 4;
    void *q = bench_realloc(s->p, grown);
    if (q == NULL) bench_fail("realloc to %zu returned NULL", grown);
    bench_check(q, s->size, s->tag, BENCH_PAGE);
    bench_write(q, s->size, grown, s->tag, BENCH_PAGE);
    s->p = q;
    s->size = grown;
  }
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  size_t steps = bench_scaled(&args, FULL_STEPS, 100);
  bench_rng rng = {4242};
  slot slots[LIVE_SLOTS];

  double start = bench_now();
  for (size_t i = 0; i < LIVE_SLOTS; i++) put(&slots[i], &rng);
  for (size_t i = 0; i < steps; i++) {
    slot *s = &slots[bench_rand(&rng) % LIVE_SLOTS];
    bench_check(s->p, s->size, s->tag, BENCH_PAGE);
    bench_free(s->p);
    put(s, &rng);
  }
  for (size_t i = 0; i < LIVE_SLOTS; i++) {
    bench_check(slots[i].p, slots[i].size, slots[i].tag, BENCH_PAGE);
    bench_free(slots[i].p);
  }
  double seconds = bench_now() - start;
  bench_result("large", seconds, NULL);
  return 0;
}
