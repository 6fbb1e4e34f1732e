/* falseshare.c: passive and active false sharing. The main thread allocates one small object
 * per thread back to back and hands them out; each thread frees the object it was given and
 * then, over and over, allocates an object of the same size, writes to it many times, checks
 * and frees it. An allocator that gives two threads objects in one cache line makes their
 * writes fight over it, which shows as time. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

#define OBJECT_SIZE 8
#define WRITES      1000
#define FULL_ROUNDS 500000

static size_t rounds;
static pthread_barrier_t start_line; /* the threads write at the same time */

static void hammer(void *p) {
  volatile uint64_t *v = p;
  *v = 0;
  for (int i = 0; i < WRITES; i++) *v = *v + 1;
  if (*v != WRITES)
    bench_fail("object %p holds %llu after %d increments", p, (unsigned long long)*v, WRITES);
}

static _Atomic int next_id;

/* Every object a thread works on is published with bench_hold, so two threads given one object
 * fail at once, not only when their increments happen to collide. */
static void *worker(void *handed) {
  int self = atomic_fetch_add(&next_id, 1);
  pthread_barrier_wait(&start_line);
  bench_hold(self, handed, OBJECT_SIZE);
  hammer(handed);
  bench_unhold(self);
  bench_free(handed);
  for (size_t r = 0; r < rounds; r++) {
    void *p = bench_malloc(OBJECT_SIZE);
    bench_hold(self, p, OBJECT_SIZE);
    hammer(p);
    bench_unhold(self);
    bench_free(p);
  }
  return NULL;
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  rounds = bench_scaled(&args, FULL_ROUNDS, 10);
  pthread_t *tids = calloc((size_t)args.threads, sizeof *tids);
  void **objects = calloc((size_t)args.threads, sizeof *objects);
  if (tids == NULL || objects == NULL) bench_fail("no memory for the thread table");

  pthread_barrier_init(&start_line, NULL, (unsigned)args.threads);
  double start = bench_now();
  for (int i = 0; i < args.threads; i++) objects[i] = bench_malloc(OBJECT_SIZE);
  for (int i = 0; i < args.threads; i++) bench_thread_create(&tids[i], worker, objects[i]);
  for (int i = 0; i < args.threads; i++) pthread_join(tids[i], NULL);
  double seconds = bench_now() - start;
  pthread_barrier_destroy(&start_line);

  /* How many handed-out objects shared a line with another: 0 is what a good allocator gives. */
  int shared = 0;
  for (int i = 0; i < args.threads; i++)
    for (int j = 0; j < args.threads; j++)
      if (i != j && (uintptr_t)objects[i] / 64 == (uintptr_t)objects[j] / 64) {
        shared++;
        break;
      }
  char extra[64];
  snprintf(extra, sizeof extra, "handed_sharing_a_line=%d", shared);
  bench_free(objects);
  bench_free(tids);
  bench_result("falseshare", seconds, extra);
  return 0;
}
