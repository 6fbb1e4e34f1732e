/* rptest.c: the pattern of rpmalloc's benchmark as mimalloc-bench runs it. Each thread keeps
 * 1,000 slots; every loop it frees 100 blocks scattered over the slots and allocates 100 new
 * ones scattered likewise (freeing what a slot held), with sizes from 8 to 16,000 bytes whose
 * frequency falls linearly with size; every second loop it also allocates 100 blocks and hands
 * them to the next thread, which frees them. */
#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define SLOTS       1000
#define OPS         100
#define CROSS_EVERY 2
#define MIN_SIZE    8
#define MAX_SIZE    16000
#define FULL_LOOPS  8000

typedef struct parcel {
  struct parcel *next;
  bench_block b[OPS];
} parcel;

typedef struct worker {
  int id;
  _Alignas(64) _Atomic(parcel *) inbox;
  _Atomic int done;
} worker;

static worker *workers;
static int nthreads;
static size_t loops;

/* Density falling linearly from MIN_SIZE to zero at MAX_SIZE. */
static size_t pick_size(bench_rng *rng) {
  double u = (double)(bench_rand(rng) >> 11) / 9007199254740992.0;
  return MIN_SIZE + (size_t)((MAX_SIZE - MIN_SIZE) * (1 - sqrt(1 - u)));
}

static void put(bench_block *b, bench_rng *rng) {
  bench_block_new(b, pick_size(rng), bench_rand(rng) | 1, BENCH_LINE);
}

static void receive(worker *w) {
  parcel *p = atomic_exchange(&w->inbox, NULL);
  while (p != NULL) {
    parcel *next = p->next;
    for (size_t i = 0; i < OPS; i++) bench_block_free(&p->b[i], BENCH_LINE);
    bench_free(p);
    p = next;
  }
}

static void *run(void *arg) {
  worker *w = arg;
  worker *next = &workers[(w->id + 1) % nthreads];
  bench_rng rng = {77 + (uint64_t)w->id};
  bench_block *slots = calloc(SLOTS, sizeof *slots);
  if (slots == NULL) bench_fail("no memory for the slots");
  for (size_t l = 0; l < loops; l++) {
    size_t stride = 1 + bench_rand(&rng) % 97, at = bench_rand(&rng) % SLOTS;
    for (size_t i = 0; i < OPS; i++, at = (at + stride) % SLOTS)
      bench_block_free(&slots[at], BENCH_LINE);
    at = bench_rand(&rng) % SLOTS;
    for (size_t i = 0; i < OPS; i++, at = (at + stride) % SLOTS) {
      bench_block_free(&slots[at], BENCH_LINE);
      put(&slots[at], &rng);
    }
    if (l % CROSS_EVERY == 0) {
      parcel *p = bench_malloc(sizeof *p);
      for (size_t i = 0; i < OPS; i++) put(&p->b[i], &rng);
      parcel *head = atomic_load(&next->inbox);
      do p->next = head;
      while (!atomic_compare_exchange_weak(&next->inbox, &head, p));
    }
    receive(w);
  }
  for (size_t i = 0; i < SLOTS; i++) bench_block_free(&slots[i], BENCH_LINE);
  free(slots);
  atomic_store(&w->done, 1);
  worker *prev = &workers[(w->id + nthreads - 1) % nthreads];
  while (!atomic_load(&prev->done)) {
    receive(w);
    sched_yield();
  }
  receive(w);
  return NULL;
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  nthreads = args.threads;
  loops = bench_scaled(&args, FULL_LOOPS, 10);
  workers = aligned_alloc(64, sizeof(worker) * (size_t)nthreads);
  if (workers == NULL) bench_fail("no memory for the workers");
  for (int i = 0; i < nthreads; i++) {
    workers[i].id = i;
    atomic_init(&workers[i].inbox, NULL);
    atomic_init(&workers[i].done, 0);
  }
  double start = bench_now();
  bench_spawn(nthreads, run, workers, sizeof *workers);
  double seconds = bench_now() - start;
  free(workers);
  bench_result("rptest", seconds, NULL);
  return 0;
}
