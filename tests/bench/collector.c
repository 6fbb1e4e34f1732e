/* collector.c: the native buffers of a garbage-collected runtime (a JavaScript engine's
 * ArrayBuffers, a JVM's direct buffers). Half the threads are mutators: each allocates
 * buffers of 1-65 KiB, writing one word per OS page, between short-lived objects of 16-512
 * bytes that it frees itself; every 256 buffers it hands the whole generation to the
 * collectors, which check and free every buffer of it in one sweep (at most two generations
 * per mutator wait). Every buffer is freed by a thread that never allocates its size, in
 * bursts, and the next generation is allocated while the last one is being freed. */
#include <pthread.h>
#include <stdlib.h>

#include "bench.h"

#define PER_GENERATION   256
#define WAITING_PER_PAIR 2
#define MIN_BUFFER       (1u << 10)
#define MAX_BUFFER       (65u << 10)
#define SHORT_LIVED      64 /* a mutator's ring of small objects */
#define SMALL_PER_BUFFER 8
#define FULL_GENERATIONS 800 /* per mutator */

typedef struct generation {
  bench_batch_link link;
  bench_block b[PER_GENERATION];
} generation;

static bench_handoff handoff;

static void *mutator(void *arg) {
  bench_rng rng = {901 + (uint64_t)(intptr_t)arg};
  bench_block ring[SHORT_LIVED] = {0};
  for (uint64_t n = 0; bench_handoff_claim(&handoff); n++) {
    generation *g = bench_malloc(sizeof *g);
    for (size_t i = 0; i < PER_GENERATION; i++) {
      for (size_t k = 0; k < SMALL_PER_BUFFER; k++) {
        bench_block *s = &ring[bench_rand(&rng) % SHORT_LIVED];
        bench_block_free(s, 8);
        bench_block_new(s, bench_range(&rng, 16, 512), bench_rand(&rng) | 1, 8);
      }
      bench_block_new(&g->b[i], bench_range(&rng, MIN_BUFFER, MAX_BUFFER),
                      bench_tag(n * PER_GENERATION + i, (uint64_t)(intptr_t)arg), BENCH_PAGE);
    }
    bench_handoff_push(&handoff, &g->link);
  }
  for (size_t i = 0; i < SHORT_LIVED; i++) bench_block_free(&ring[i], 8);
  return NULL;
}

static void *collector(void *arg) {
  (void)arg;
  generation *g;
  while ((g = (generation *)bench_handoff_pop(&handoff)) != NULL) {
    for (size_t i = 0; i < PER_GENERATION; i++) bench_block_free(&g->b[i], BENCH_PAGE);
    bench_free(g);
  }
  return NULL;
}

static void *role(void *arg) {
  intptr_t i = (intptr_t)arg;
  return i % 2 == 0 ? mutator(arg) : collector(arg);
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  int n = args.threads < 2 ? 2 : args.threads;
  size_t mutators = (size_t)(n + 1) / 2;
  bench_handoff_init(&handoff, mutators * bench_scaled(&args, FULL_GENERATIONS, 4),
                     WAITING_PER_PAIR * mutators);
  double start = bench_now();
  bench_spawn(n, role, NULL, 0); /* the argument is the thread's index */
  bench_result("collector", bench_now() - start, NULL);
  return 0;
}
