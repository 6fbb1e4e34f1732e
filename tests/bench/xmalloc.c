/* xmalloc.c: the producer/consumer test of Lever and Boreham (xmalloc-test). Half the threads
 * allocate batches of 4,096 blocks whose sizes are drawn from 8 to 2,048 bytes in steps of
 * about 1.5x, write up to 128 bytes of each and push the batch on a shared stack (at most 100
 * batches wait); the other half pop batches, check and free every block. Every free is remote
 * and the blocks arrive in bulk. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define PER_BATCH    4096
#define MAX_WAITING  100
#define FULL_BATCHES 1000

static const size_t sizes[] = {8,   12,  16,  24,  32,  48,   64,   96,  128,
                               192, 256, 384, 512, 768, 1024, 1536, 2048};
#define NSIZES (sizeof sizes / sizeof sizes[0])

typedef struct batch {
  bench_batch_link link;
  bench_block b[PER_BATCH];
} batch;

static bench_handoff handoff;

static void *producer(void *arg) {
  bench_rng rng = {31 + (uint64_t)(intptr_t)arg};
  while (bench_handoff_claim(&handoff)) {
    batch *bt = bench_malloc(sizeof *bt);
    for (size_t i = 0; i < PER_BATCH; i++) {
      size_t size = sizes[bench_rand(&rng) % NSIZES];
      bench_block_new(&bt->b[i], size, bench_rand(&rng) | 1, size > 128 ? 64 : 8);
    }
    bench_handoff_push(&handoff, &bt->link);
  }
  return NULL;
}

static void *consumer(void *arg) {
  (void)arg;
  batch *bt;
  while ((bt = (batch *)bench_handoff_pop(&handoff)) != NULL) {
    for (size_t i = 0; i < PER_BATCH; i++)
      bench_block_free(&bt->b[i], bt->b[i].size > 128 ? 64 : 8);
    bench_free(bt);
  }
  return NULL;
}

static void *role(void *arg) {
  intptr_t i = (intptr_t)arg;
  return i % 2 == 0 ? producer(arg) : consumer(arg);
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  int n = args.threads < 2 ? 2 : args.threads;
  bench_handoff_init(&handoff, bench_scaled(&args, FULL_BATCHES, 4), MAX_WAITING);
  double start = bench_now();
  bench_spawn(n, role, NULL, 0); /* the argument is the thread's index */
  double seconds = bench_now() - start;
  bench_result("xmalloc", seconds, NULL);
  return 0;
}
