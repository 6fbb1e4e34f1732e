/* cachethrash.c: Hoard's cache-thrash test for active false sharing. Each thread repeatedly
 * allocates a small object, writes each of its bytes many times and frees it. An allocator
 * that hands objects in one cache line to different threads makes those writes fight over the
 * line; one that keeps each thread's objects apart runs them at full speed.
 *
 * Each thread also publishes the object it holds, and a new object that overlaps one another
 * thread holds is a failure at once (an object is unpublished before it is freed, and the
 * allocator orders that free before any reuse of its memory). */
#include <stdlib.h>

#include "bench.h"

#define OBJECT      8
#define ITERATIONS  1000
#define FULL_WRITES 400000 /* writes of every byte per object */

static size_t writes;

static void *run(void *arg) {
  int self = (int)(intptr_t)arg;
  uint8_t seed = (uint8_t)self;
  for (size_t it = 0; it < ITERATIONS; it++) {
    volatile uint8_t *p = bench_malloc(OBJECT);
    bench_hold(self, (const void *)p, OBJECT);
    for (size_t w = 0; w < writes; w++)
      for (size_t k = 0; k < OBJECT; k++) p[k] = (uint8_t)(seed + w + k);
    for (size_t k = 0; k < OBJECT; k++)
      if (p[k] != (uint8_t)(seed + writes - 1 + k))
        bench_fail("cache-thrash: byte %zu of an object was overwritten", k);
    bench_unhold(self);
    bench_free((void *)p);
  }
  return NULL;
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  writes = bench_scaled(&args, FULL_WRITES, 100);
  double start = bench_now();
  bench_spawn(args.threads, run, NULL, 0); /* the argument is the thread's index */
  double seconds = bench_now() - start;
  bench_result("cachethrash", seconds, NULL);
  return 0;
}
