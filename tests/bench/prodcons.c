/* prodcons.c: producer/consumer. Threads pair up; a producer allocates and writes blocks of 8
 * to 512 bytes and passes them through a bounded single-producer single-consumer ring to its
 * consumer, which verifies and frees them: every free is remote. With one thread the same
 * thread does both (a baseline with no remote frees). */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "bench.h"

#define RING_SIZE   4096 /* a power of two */
#define BATCH       64   /* blocks a side moves before it looks at the other side's index */
#define FULL_BLOCKS 10e6

typedef struct item {
  void *p;
  uint32_t size;
  uint64_t tag;
} item;

typedef struct ring {
  _Alignas(64) _Atomic size_t head; /* next slot the producer writes */
  _Alignas(64) _Atomic size_t tail; /* next slot the consumer reads */
  _Alignas(64) item items[RING_SIZE];
  uint64_t seed;
} ring;

static size_t blocks_per_pair;

static void *producer(void *arg) {
  ring *r = arg;
  bench_rng rng = {r->seed};
  size_t head = 0;
  while (head < blocks_per_pair) {
    while (head - atomic_load_explicit(&r->tail, memory_order_acquire) > RING_SIZE - BATCH)
      sched_yield();
    for (size_t end = head + BATCH; head < end && head < blocks_per_pair; head++) {
      item *it = &r->items[head % RING_SIZE];
      it->size = (uint32_t)bench_range(&rng, 8, 512);
      it->tag = bench_rand(&rng) | 1;
      it->p = bench_malloc(it->size);
      bench_write(it->p, 0, it->size, it->tag, BENCH_LINE);
    }
    atomic_store_explicit(&r->head, head, memory_order_release);
  }
  return NULL;
}

static void *consumer(void *arg) {
  ring *r = arg;
  size_t tail = 0;
  while (tail < blocks_per_pair) {
    size_t head;
    while ((head = atomic_load_explicit(&r->head, memory_order_acquire)) == tail) sched_yield();
    for (; tail < head; tail++) {
      item *it = &r->items[tail % RING_SIZE];
      bench_check(it->p, it->size, it->tag, BENCH_LINE);
      bench_free(it->p);
    }
    atomic_store_explicit(&r->tail, tail, memory_order_release);
  }
  return NULL;
}

/* One thread alone: produce a batch, consume it. */
static void *alone(void *arg) {
  ring *r = arg;
  bench_rng rng = {r->seed};
  for (size_t done = 0; done < blocks_per_pair; done += BATCH) {
    for (size_t i = 0; i < BATCH; i++) {
      item *it = &r->items[i];
      it->size = (uint32_t)bench_range(&rng, 8, 512);
      it->tag = bench_rand(&rng) | 1;
      it->p = bench_malloc(it->size);
      bench_write(it->p, 0, it->size, it->tag, BENCH_LINE);
    }
    for (size_t i = 0; i < BATCH; i++) {
      bench_check(r->items[i].p, r->items[i].size, r->items[i].tag, BENCH_LINE);
      bench_free(r->items[i].p);
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  int pairs = args.threads / 2 > 0 ? args.threads / 2 : 1;
  blocks_per_pair = bench_scaled(&args, FULL_BLOCKS, BATCH) / (size_t)pairs;
  ring *rings = aligned_alloc(64, sizeof(ring) * (size_t)pairs);
  pthread_t *tids = calloc((size_t)pairs * 2, sizeof *tids);
  if (rings == NULL || tids == NULL) bench_fail("no memory for the rings");

  double start = bench_now();
  for (int i = 0; i < pairs; i++) {
    atomic_init(&rings[i].head, 0);
    atomic_init(&rings[i].tail, 0);
    rings[i].seed = 77 + (uint64_t)i;
    if (args.threads == 1) {
      alone(&rings[i]);
      continue;
    }
    bench_thread_create(&tids[2 * i], producer, &rings[i]);
    bench_thread_create(&tids[2 * i + 1], consumer, &rings[i]);
  }
  for (int i = 0; args.threads > 1 && i < pairs * 2; i++) pthread_join(tids[i], NULL);
  double seconds = bench_now() - start;

  bench_free(tids);
  bench_free(rings);
  bench_result("prodcons", seconds, NULL);
  return 0;
}
