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
  struct generation *next;
  bench_block b[PER_GENERATION];
} generation;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER, not_full = PTHREAD_COND_INITIALIZER;
static generation *stack;
static size_t waiting, max_waiting, to_produce, to_collect;

static void *mutator(void *arg) {
  bench_rng rng = {901 + (uint64_t)(intptr_t)arg};
  bench_block ring[SHORT_LIVED] = {0};
  for (uint64_t n = 0;; n++) {
    pthread_mutex_lock(&lock);
    if (to_produce == 0) {
      pthread_mutex_unlock(&lock);
      break;
    }
    to_produce--;
    pthread_mutex_unlock(&lock);
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
    pthread_mutex_lock(&lock);
    while (waiting >= max_waiting) pthread_cond_wait(&not_full, &lock);
    g->next = stack;
    stack = g;
    waiting++;
    pthread_cond_signal(&not_empty);
    pthread_mutex_unlock(&lock);
  }
  for (size_t i = 0; i < SHORT_LIVED; i++) bench_block_free(&ring[i], 8);
  return NULL;
}

static void *collector(void *arg) {
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&lock);
    while (stack == NULL && to_collect > 0) pthread_cond_wait(&not_empty, &lock);
    if (to_collect == 0) {
      pthread_mutex_unlock(&lock);
      return NULL;
    }
    generation *g = stack;
    stack = g->next;
    waiting--;
    to_collect--;
    if (to_collect == 0) pthread_cond_broadcast(&not_empty);
    pthread_cond_signal(&not_full);
    pthread_mutex_unlock(&lock);
    for (size_t i = 0; i < PER_GENERATION; i++) bench_block_free(&g->b[i], BENCH_PAGE);
    bench_free(g);
  }
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
  max_waiting = WAITING_PER_PAIR * mutators;
  to_produce = to_collect = mutators * bench_scaled(&args, FULL_GENERATIONS, 4);
  double start = bench_now();
  bench_spawn(n, role, NULL, 0); /* the argument is the thread's index */
  bench_result("collector", bench_now() - start, NULL);
  return 0;
}
