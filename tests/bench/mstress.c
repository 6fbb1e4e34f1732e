/* mstress.c: the pattern of mimalloc's stress test. In each of several rounds, threads start,
 * allocate blocks of 1 to 32 words (sizes spread evenly over the powers of two, 1% of them 100
 * times larger, a tenth of those 1,000 times and a hundredth 10,000 times), free random earlier
 * ones, keep a retained set until they exit, and swap blocks with a shared transfer array, so
 * blocks are freed by other threads, some of them after the allocating thread has exited; half
 * of the transfer array survives into the next round. Every word of a block is written and
 * checked before it is freed. Thread i does (i % 8 + 1) times the base work, as published. */
#include <stdatomic.h>
#include <stdlib.h>

#include "bench.h"

#define TRANSFERS   1000
#define BASE_ALLOCS 20000
#define FULL_ROUNDS 100
#define COOKIE      0xbf58476d1ce4e5b9ull

typedef uintptr_t handle; /* see items_new */
static _Atomic(handle) transfer[TRANSFERS];

static int chance(unsigned percent, bench_rng *rng) { return bench_rand(rng) % 100 < percent; }

/* Blocks travel as handles: the address with a random 16-bit salt in the top bits, which user
 * addresses on x86-64 leave free. Word i of a block holds (items - i) ^ COOKIE ^ salt << 48, so
 * word 0 gives the length, as in the published test, and a block that was handed out twice
 * (another salt, or another length) fails the check. */
#define SALT_SHIFT 48

static uint64_t *address_of(handle h) {
  return (uint64_t *)(h & (((uintptr_t)1 << SALT_SHIFT) - 1));
}

static uint64_t salt_of(handle h) { return (uint64_t)(h >> SALT_SHIFT) << SALT_SHIFT; }

static handle items_new(size_t items, bench_rng *rng) {
  if (chance(1, rng)) {
    if (chance(1, rng))
      items *= 10000;
    else if (chance(10, rng))
      items *= 1000;
    else
      items *= 100;
  }
  uint64_t *p = bench_malloc(items * sizeof *p);
  if ((uintptr_t)p >> SALT_SHIFT)
    bench_fail("mstress: malloc returned %p, above the addresses handles can carry", (void *)p);
  uint64_t salt = (bench_rand(rng) | 1) << SALT_SHIFT;
  for (size_t i = 0; i < items; i++) p[i] = (items - i) ^ COOKIE ^ salt;
  return (handle)p | salt;
}

static void items_free(handle h) {
  if (h == 0) return;
  uint64_t *p = address_of(h), salt = salt_of(h);
  size_t items = p[0] ^ COOKIE ^ salt;
  if (items == 0 || items > 64 * 10000) /* retained blocks reach 64 words before scaling */
    bench_fail("mstress: block %p has a damaged length word", (void *)p);
  for (size_t i = 0; i < items; i++)
    if ((p[i] ^ COOKIE ^ salt) != items - i)
      bench_fail("mstress: block %p is damaged at word %zu", (void *)p, i);
  bench_free(p);
}

static void *stress(void *arg) {
  intptr_t id = (intptr_t)arg;
  bench_rng rng = {(uint64_t)id * 43 + 1};
  size_t allocs = BASE_ALLOCS * (size_t)(id % 8 + 1), retain = allocs / 2;
  handle *data = NULL, *retained = bench_malloc(retain * sizeof *retained);
  size_t data_size = 0, data_top = 0, retain_top = 0;
  while (allocs > 0 || retain > 0) {
    if (retain == 0 || (chance(50, &rng) && allocs > 0)) {
      allocs--;
      if (data_top >= data_size) {
        data_size += 10000;
        data = bench_realloc(data, data_size * sizeof *data);
      }
      data[data_top++] = items_new((size_t)1 << (bench_rand(&rng) % 5), &rng);
    } else {
      retained[retain_top++] = items_new((size_t)1 << (bench_rand(&rng) % 7), &rng);
      retain--;
    }
    if (chance(66, &rng) && data_top > 0) {
      size_t i = bench_rand(&rng) % data_top;
      items_free(data[i]);
      data[i] = 0;
    }
    if (chance(25, &rng) && data_top > 0) {
      size_t i = bench_rand(&rng) % data_top, t = bench_rand(&rng) % TRANSFERS;
      data[i] = atomic_exchange(&transfer[t], data[i]);
    }
  }
  for (size_t i = 0; i < retain_top; i++) items_free(retained[i]);
  for (size_t i = 0; i < data_top; i++) items_free(data[i]);
  bench_free(retained);
  bench_free(data);
  return NULL;
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  size_t rounds = bench_scaled(&args, FULL_ROUNDS, 2);
  bench_rng rng = {0x7feb352d};
  double start = bench_now();
  for (size_t r = 0; r < rounds; r++) {
    bench_spawn(args.threads, stress, NULL, 0); /* the argument is the thread's index */
    for (size_t i = 0; i < TRANSFERS; i++)
      if (chance(50, &rng) || r + 1 == rounds) items_free(atomic_exchange(&transfer[i], 0));
  }
  double seconds = bench_now() - start;
  bench_result("mstress", seconds, NULL);
  return 0;
}
