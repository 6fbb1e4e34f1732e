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
  struct batch *next;
  bench_block b[PER_BATCH];
} batch;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER, not_full = PTHREAD_COND_INITIALIZER;
static batch *stack;
static size_t waiting, to_produce, to_consume;

static void *producer(void *arg) {
  bench_rng rng = {31 + (uint64_t)(intptr_t)arg};
  for (;;) {
    pthread_mutex_lock(&lock);
    if (to_produce == 0) {
      pthread_mutex_unlock(&lock);
      return NULL;
    }
    to_produce--;
    pthread_mutex_unlock(&lock);
    batch *bt = bench_malloc(sizeof *bt);
    for (size_t i = 0; i < PER_BATCH; i++) {
      size_t size = sizes[bench_rand(&rng) % NSIZES];
      bench_block_new(&bt->b[i], size, bench_rand(&rng) | 1, size > 128 ? 64 : 8);
    }
    pthread_mutex_lock(&lock);
    while (waiting >= MAX_WAITING) pthread_cond_wait(&not_full, &lock);
    bt->next = stack;
    stack = bt;
    waiting++;
    pthread_cond_signal(&not_empty);
    pthread_mutex_unlock(&lock);
  }
}

static void *consumer(void *arg) {
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&lock);
    while (stack == NULL && to_consume > 0) pthread_cond_wait(&not_empty, &lock);
    if (to_consume == 0) {
      pthread_mutex_unlock(&lock);
      return NULL;
    }
    batch *bt = stack;
    stack = bt->next;
    waiting--;
    to_consume--;
    if (to_consume == 0) pthread_cond_broadcast(&not_empty);
    pthread_cond_signal(&not_full);
    pthread_mutex_unlock(&lock);
    for (size_t i = 0; i < PER_BATCH; i++)
      bench_block_free(&bt->b[i], bt->b[i].size > 128 ? 64 : 8);
    bench_free(bt);
  }
}

static void *role(void *arg) {
  intptr_t i = (intptr_t)arg;
  return i % 2 == 0 ? producer(arg) : consumer(arg);
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  int n = args.threads < 2 ? 2 : args.threads;
  to_produce = to_consume = bench_scaled(&args, FULL_BATCHES, 4);
  double start = bench_now();
  bench_spawn(n, role, NULL, 0); /* the argument is the thread's index */
  double seconds = bench_now() - start;
  bench_result("xmalloc", seconds, NULL);
  return 0;
}
