/* latency.c: the time of each malloc and free call, not their sum. Each thread keeps 2,000
 * live blocks and replaces random ones: 90% of the sizes are 16-512 bytes, 9% up to 16 KiB,
 * 1% up to 256 KiB. Every 16th block it would free goes to the other thread instead, which
 * frees it (a remote free). Every call is timed with the time-stamp counter (rdtscp on both
 * sides) into a histogram per thread; the run reports p50, p99, p99.9 and the maximum of each
 * call in nanoseconds, plus what an empty timed section costs (included in every figure).
 * Every block is checked before its free, which brings it into the freeing CPU's cache; with
 * -m unread only one in UNREAD_CHECK is, as a program frees what it no longer looks at (a
 * consumer freeing a message it passed on, a destructor freeing a buffer it never read). */
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <x86intrin.h>

#include "bench.h"

#define LIVE         2000
#define REMOTE_EVERY 16
#define DRAIN_AT     32
#define FULL_STEPS   4e6 /* per thread */
#define UNREAD_CHECK 64

/* Log-linear histogram of cycle counts: exact below 256, then 32 steps per power of two. */
#define EXACT   256
#define SUBS    32
#define BUCKETS (EXACT + (64 - 8) * SUBS)

typedef struct histogram {
  uint64_t n[BUCKETS];
  uint64_t max;
} histogram;

typedef struct worker {
  int id;
  bench_mailbox inbox;
  histogram malloc_h, free_h;
  _Atomic int done;
} worker;

static worker *workers;
static int nthreads;
static size_t steps;
static bool unread; /* -m unread */

static size_t bucket_of(uint64_t v) {
  if (v < EXACT) return (size_t)v;
  int e = 63 - __builtin_clzll(v);
  return EXACT + (size_t)(e - 8) * SUBS + (size_t)((v >> (e - 5)) & (SUBS - 1));
}

/* The smallest value of a bucket. */
static uint64_t bucket_floor(size_t b) {
  if (b < EXACT) return b;
  size_t e = (b - EXACT) / SUBS + 8, sub = (b - EXACT) % SUBS;
  return (1ull << e) + ((uint64_t)sub << (e - 5));
}

static void record(histogram *h, uint64_t cycles) {
  h->n[bucket_of(cycles)]++;
  if (cycles > h->max) h->max = cycles;
}

static size_t pick_size(bench_rng *rng) {
  uint64_t r = bench_rand(rng) % 100;
  if (r < 90) return bench_log_range(rng, 16, 512);
  if (r < 99) return bench_log_range(rng, 513, 16 << 10);
  return bench_log_range(rng, (16 << 10) + 1, 256 << 10);
}

static inline uint64_t stamp(void) {
  unsigned aux;
  return __rdtscp(&aux);
}

static void timed_free(worker *w, bench_block *b) {
  if (!unread || (b->tag >> 1) % UNREAD_CHECK == 0) bench_check(b->p, b->size, b->tag, BENCH_LINE);
  uint64_t t0 = stamp();
  bench_free(b->p);
  uint64_t t1 = stamp();
  record(&w->free_h, t1 - t0);
  b->p = NULL;
}

static void timed_new(worker *w, bench_block *b, bench_rng *rng) {
  size_t size = pick_size(rng);
  uint64_t t0 = stamp();
  void *p = malloc(size);
  uint64_t t1 = stamp();
  record(&w->malloc_h, t1 - t0);
  if (p == NULL) bench_fail("malloc(%zu) returned NULL", size);
  b->p = p;
  b->size = size;
  b->tag = bench_rand(rng) | 1;
  bench_write(p, 0, size, b->tag, BENCH_LINE);
}

static void drain(worker *w) {
  bench_block b;
  while (bench_mailbox_take(&w->inbox, &b)) timed_free(w, &b);
}

static void *run(void *arg) {
  worker *w = arg;
  worker *next = &workers[(w->id + 1) % nthreads];
  bench_rng rng = {900 + (uint64_t)w->id};
  bench_block *live = calloc(LIVE, sizeof *live);
  if (live == NULL) bench_fail("no memory for the live set");
  for (size_t i = 0; i < LIVE; i++) timed_new(w, &live[i], &rng);
  for (size_t step = 1; step <= steps; step++) {
    bench_block *b = &live[bench_rand(&rng) % LIVE];
    if (step % REMOTE_EVERY == 0 && nthreads > 1)
      bench_mailbox_put(&next->inbox, b);
    else
      timed_free(w, b);
    timed_new(w, b, &rng);
    if (atomic_load_explicit(&w->inbox.head, memory_order_relaxed) -
            atomic_load_explicit(&w->inbox.tail, memory_order_relaxed) >=
        DRAIN_AT)
      drain(w);
  }
  atomic_store(&w->done, 1);
  worker *prev = &workers[(w->id + nthreads - 1) % nthreads];
  while (!atomic_load(&prev->done)) {
    drain(w);
    sched_yield();
  }
  drain(w);
  for (size_t i = 0; i < LIVE; i++) timed_free(w, &live[i]);
  bench_free(live);
  return NULL;
}

static double percentile(const histogram *h, double q) {
  uint64_t total = 0;
  for (size_t i = 0; i < BUCKETS; i++) total += h->n[i];
  uint64_t want = (uint64_t)((double)total * q), seen = 0;
  for (size_t i = 0; i < BUCKETS; i++) {
    seen += h->n[i];
    if (seen > want) return (double)bucket_floor(i);
  }
  return (double)h->max;
}

/* What a timed section with nothing in it costs, in cycles (the median of many). */
static uint64_t empty_section(void) {
  histogram *h = calloc(1, sizeof *h);
  if (h == NULL) bench_fail("no memory for a histogram");
  for (int i = 0; i < 100000; i++) {
    uint64_t t0 = stamp();
    uint64_t t1 = stamp();
    record(h, t1 - t0);
  }
  uint64_t v = (uint64_t)percentile(h, 0.5);
  free(h);
  return v;
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  nthreads = args.threads;
  unread = args.mode != NULL && strcmp(args.mode, "unread") == 0;
  if (args.mode != NULL && !unread) bench_fail("unknown mode %s (unread)", args.mode);
  steps = bench_scaled(&args, FULL_STEPS, 1000);
  workers = aligned_alloc(64, sizeof(worker) * (size_t)nthreads);
  if (workers == NULL) bench_fail("no memory for the workers");
  memset(workers, 0, sizeof(worker) * (size_t)nthreads);
  for (int i = 0; i < nthreads; i++) workers[i].id = i;
  uint64_t empty = empty_section();

  uint64_t tsc0 = stamp();
  double start = bench_now();
  bench_spawn(nthreads, run, workers, sizeof *workers);
  double seconds = bench_now() - start;
  double ns_per_cycle = seconds * 1e9 / (double)(stamp() - tsc0);

  histogram *all = calloc(2, sizeof *all);
  if (all == NULL) bench_fail("no memory for a histogram");
  for (int i = 0; i < nthreads; i++)
    for (int k = 0; k < 2; k++) {
      const histogram *h = k == 0 ? &workers[i].malloc_h : &workers[i].free_h;
      for (size_t j = 0; j < BUCKETS; j++) all[k].n[j] += h->n[j];
      if (h->max > all[k].max) all[k].max = h->max;
    }
  char extra[512];
  int len = snprintf(extra, sizeof extra, "timer_ns=%.1f", (double)empty * ns_per_cycle);
  const char *names[2] = {"malloc", "free"};
  for (int k = 0; k < 2; k++)
    len += snprintf(extra + len, sizeof extra - (size_t)len,
                    " %s_p50_ns=%.1f %s_p99_ns=%.1f %s_p999_ns=%.1f %s_max_ns=%.1f", names[k],
                    percentile(&all[k], 0.5) * ns_per_cycle, names[k],
                    percentile(&all[k], 0.99) * ns_per_cycle, names[k],
                    percentile(&all[k], 0.999) * ns_per_cycle, names[k],
                    (double)all[k].max * ns_per_cycle);
  free(all);
  free(workers);
  bench_result(unread ? "latency_unread" : "latency", seconds, extra);
  return 0;
}
