/* larson.c: a larson-like server. Each thread owns a region of slots for one round and
 * replaces random slots' blocks with new ones; after every round the regions rotate, so the
 * blocks a thread allocated are freed by another thread (about a fifth of all frees are
 * remote). Sizes are random from 8 to 512 bytes. */
#include <pthread.h>
#include <stdlib.h>

#include "bench.h"

#define REGION_SLOTS    10000
#define STEPS_PER_ROUND 50000
#define FULL_ROUNDS     100

typedef struct slot {
  void *p;
  size_t size;
  uint64_t tag;
} slot;

static slot *slots; /* threads * REGION_SLOTS */
static int nthreads;
static size_t rounds;
static pthread_barrier_t barrier;

static void put(slot *s, bench_rng *rng) {
  s->size = bench_range(rng, 8, 512);
  s->tag = bench_rand(rng) | 1;
  s->p = bench_malloc(s->size);
  bench_write(s->p, 0, s->size, s->tag, BENCH_LINE);
}

static void *worker(void *arg) {
  int id = (int)(intptr_t)arg;
  bench_rng rng = {1000 + (uint64_t)id};
  slot *own = &slots[(size_t)id * REGION_SLOTS];
  for (size_t i = 0; i < REGION_SLOTS; i++) put(&own[i], &rng);
  pthread_barrier_wait(&barrier);
  for (size_t r = 1; r <= rounds; r++) {
    slot *region = &slots[((size_t)id + r) % (size_t)nthreads * REGION_SLOTS];
    for (size_t i = 0; i < STEPS_PER_ROUND; i++) {
      slot *s = &region[bench_rand(&rng) % REGION_SLOTS];
      bench_check(s->p, s->size, s->tag, BENCH_LINE);
      bench_free(s->p);
      put(s, &rng);
    }
    pthread_barrier_wait(&barrier);
  }
  return NULL;
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  nthreads = args.threads;
  rounds = bench_scaled(&args, FULL_ROUNDS, 2);
  slots = calloc((size_t)nthreads * REGION_SLOTS, sizeof *slots);
  pthread_t *tids = calloc((size_t)nthreads, sizeof *tids);
  if (slots == NULL || tids == NULL) bench_fail("no memory for the slot table");
  pthread_barrier_init(&barrier, NULL, (unsigned)nthreads);

  double start = bench_now();
  for (int i = 0; i < nthreads; i++) bench_thread_create(&tids[i], worker, (void *)(intptr_t)i);
  for (int i = 0; i < nthreads; i++) pthread_join(tids[i], NULL);
  for (size_t i = 0; i < (size_t)nthreads * REGION_SLOTS; i++) {
    bench_check(slots[i].p, slots[i].size, slots[i].tag, BENCH_LINE);
    bench_free(slots[i].p);
  }
  double seconds = bench_now() - start;

  pthread_barrier_destroy(&barrier);
  bench_free(tids);
  bench_free(slots);
  bench_result("larson", seconds, NULL);
  return 0;
}
