/* churn.c: small-object churn in one thread. A fixed live set of slots holds blocks of random
 * sizes from 8 to 512 bytes; each step verifies and frees a random slot's block and puts a new
 * one there. This is the allocator's fast path under a realistic size mix.
 *
 * -m unread: a live set that fits a core's caches (4,096 slots), each block freed without
 * being read and the new one written only in its first 256 bytes, as a cache of small entries
 * evicts what it no longer looks at; every block is checked at the end. The program then does
 * little besides allocating, so what the allocator's own path costs, its checks included,
 * is most of the time. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define LIVE_SLOTS   20000
#define UNREAD_SLOTS 4096
#define UNREAD_WRITE 256 /* bytes written of each new block in -m unread */
#define FULL_STEPS   20e6

typedef struct slot {
  void *p;
  size_t size;
  uint64_t tag;
} slot;

static size_t written; /* bytes of each block written and checked: all, or UNREAD_WRITE */

static size_t written_of(const slot *s) { return s->size < written ? s->size : written; }

static void refill(slot *s, bench_rng *rng, uint64_t step) {
  s->size = bench_range(rng, 8, 512);
  s->tag = bench_tag(step, s->size);
  s->p = bench_malloc(s->size);
  bench_write(s->p, 0, written_of(s), s->tag, BENCH_LINE);
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  size_t steps = bench_scaled(&args, FULL_STEPS, 1000);
  bool unread = args.mode != NULL && strcmp(args.mode, "unread") == 0;
  if (args.mode != NULL && !unread) bench_fail("unknown mode %s (unread)", args.mode);
  size_t live = unread ? UNREAD_SLOTS : LIVE_SLOTS;
  written = unread ? UNREAD_WRITE : SIZE_MAX;
  bench_rng rng = {42};
  slot *slots = calloc(live, sizeof *slots);
  if (slots == NULL) bench_fail("no memory for the slot table");

  double start = bench_now();
  for (size_t i = 0; i < live; i++) refill(&slots[i], &rng, i);
  for (size_t i = 0; i < steps; i++) {
    slot *s = &slots[bench_rand(&rng) % live];
    if (!unread) bench_check(s->p, s->size, s->tag, BENCH_LINE);
    bench_free(s->p);
    refill(s, &rng, live + i);
  }
  for (size_t i = 0; i < live; i++) {
    bench_check(slots[i].p, written_of(&slots[i]), slots[i].tag, BENCH_LINE);
    bench_free(slots[i].p);
  }
  double seconds = bench_now() - start;
  bench_free(slots);
  bench_result(unread ? "churn_unread" : "churn", seconds, NULL);
  return 0;
}
