/* exchange.c: a server-like exchange. Each thread keeps 1,000 live blocks of 16 to 1,024 bytes
 * and replaces random ones; every 256 steps it hands 16 of its blocks to the next thread (and
 * puts new ones in their slots). The receiver keeps what it got until its own next hand-off
 * point and frees it then, so blocks die on another thread some time after they arrived: the
 * pattern of a request handed from an acceptor to a worker. */
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "bench.h"

#define LIVE       1000
#define HAND_EVERY 256
#define HAND_COUNT 16
#define FULL_STEPS 20e6 /* per thread */

typedef struct worker {
  int id;
  bench_mailbox inbox;
  bench_block held[BENCH_MAILBOX_SIZE]; /* received at the last hand-off point, freed at the next */
  size_t nheld;
  _Atomic int done;
} worker;

static worker *workers;
static int nthreads;
static size_t steps;

static void put(bench_block *b, bench_rng *rng) {
  bench_block_new(b, bench_range(rng, 16, 1024), bench_rand(rng) | 1, BENCH_LINE);
}

/* Frees what was received last time, then keeps what has arrived since. */
static void collect(worker *w) {
  for (size_t i = 0; i < w->nheld; i++) bench_block_free(&w->held[i], BENCH_LINE);
  w->nheld = 0;
  while (w->nheld < BENCH_MAILBOX_SIZE && bench_mailbox_take(&w->inbox, &w->held[w->nheld]))
    w->nheld++;
}

static void *run(void *arg) {
  worker *w = arg;
  worker *next = &workers[(w->id + 1) % nthreads];
  bench_rng rng = {500 + (uint64_t)w->id};
  bench_block *live = calloc(LIVE, sizeof *live);
  if (live == NULL) bench_fail("no memory for the live set");
  for (size_t i = 0; i < LIVE; i++) put(&live[i], &rng);
  for (size_t step = 1; step <= steps; step++) {
    bench_block *b = &live[bench_rand(&rng) % LIVE];
    bench_block_free(b, BENCH_LINE);
    put(b, &rng);
    if (step % HAND_EVERY == 0) {
      for (int i = 0; i < HAND_COUNT; i++) {
        bench_block *h = &live[bench_rand(&rng) % LIVE];
        bench_mailbox_put(&next->inbox, h);
        put(h, &rng);
      }
      collect(w);
    }
  }
  atomic_store(&w->done, 1);
  /* Keep receiving until the sender is done too, so that it never waits on a full inbox. */
  worker *prev = &workers[(w->id + nthreads - 1) % nthreads];
  while (!atomic_load(&prev->done) || atomic_load(&w->inbox.head) != atomic_load(&w->inbox.tail)) {
    collect(w);
    sched_yield();
  }
  collect(w);
  collect(w);
  for (size_t i = 0; i < LIVE; i++) bench_block_free(&live[i], BENCH_LINE);
  bench_free(live);
  return NULL;
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  nthreads = args.threads;
  steps = bench_scaled(&args, FULL_STEPS, HAND_EVERY);
  workers = aligned_alloc(64, sizeof(worker) * (size_t)nthreads);
  if (workers == NULL) bench_fail("no memory for the workers");
  for (int i = 0; i < nthreads; i++) {
    workers[i].id = i;
    atomic_init(&workers[i].inbox.head, 0);
    atomic_init(&workers[i].inbox.tail, 0);
    workers[i].nheld = 0;
    atomic_init(&workers[i].done, 0);
  }
  double start = bench_now();
  bench_spawn(nthreads, run, workers, sizeof *workers);
  double seconds = bench_now() - start;
  free(workers);
  bench_result("exchange", seconds, NULL);
  return 0;
}
