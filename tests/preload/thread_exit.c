/* thread_exit.c: threads that exit while their blocks live on. Each generation of threads
 * allocates, frees some blocks locally (so its cache holds free blocks when it exits), leaves
 * the rest behind and exits; the next generation and the main thread check and free what
 * the dead threads left, and a long-lived thread frees blocks of threads that exited while
 * it waited. Resident memory must not creep up from generation to generation. */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "preload_test.h"

#define NONE ((size_t)-1)

enum { GENERATIONS = 150, PER_GEN = 4, BLOCKS = 400, LEFT = BLOCKS / 2 };

struct block {
  void *p;
  size_t size;
  uint64_t tag;
};

/* Blocks left behind by the previous generation, and the current one's. */
static struct block left[2][PER_GEN][LEFT];

static size_t pick_size(uint64_t r) {
  unsigned kind = (unsigned)(r % 100);
  if (kind < 85) return (r >> 8) % 256 + 1;
  if (kind < 98) return (r >> 8) % 16384 + 1;
  return (r >> 8) % (512 * 1024) + 1;
}

static struct block make_block(uint64_t *rng) {
  uint64_t r = tu_rand(rng);
  struct block b = {NULL, pick_size(r), r};
  b.p = malloc(b.size);
  CHECK(b.p != NULL, "malloc(%zu) returned NULL", b.size);
  if (b.p) tu_fill(b.p, b.size, b.tag);
  return b;
}

/* A damaged block is reported and never freed: it may be shared with another live block, and
 * the allocator could abort on it before every damage is reported. */
static void check_and_free(struct block *b, const char *where) {
  if (!b->p) return;
  size_t bad = tu_mismatch(b->p, b->size, b->tag);
  CHECK(bad == NONE, "%s: %zu-byte block %p damaged at offset %zu", where, b->size, b->p, bad);
  if (bad == NONE) free(b->p);
  b->p = NULL;
}

struct worker_arg {
  int gen, index;
};

static void *worker(void *argp) {
  struct worker_arg *arg = argp;
  uint64_t rng = 0x51ED27u + (uint64_t)arg->gen * 131 + arg->index;
  int prev = (arg->gen + 1) % 2, cur = arg->gen % 2;
  /* Free what a dead thread of the previous generation left (a different index each time). */
  int victim = (arg->index + arg->gen) % PER_GEN;
  for (int i = 0; i < LEFT; i++) check_and_free(&left[prev][victim][i], "left by a dead thread");
  struct block mine[BLOCKS];
  for (int i = 0; i < BLOCKS; i++) mine[i] = make_block(&rng);
  for (int i = 0; i < BLOCKS; i += 2) check_and_free(&mine[i], "own block");
  for (int i = 0; i < BLOCKS / 4; i++) {
    struct block b = make_block(&rng); /* from the cache just filled, then freed again */
    check_and_free(&b, "own reused block");
  }
  for (int i = 0; i < LEFT; i++) {
    struct block *b = &mine[2 * i + 1];
    size_t bad = b->p ? tu_mismatch(b->p, b->size, b->tag) : NONE;
    CHECK(bad == NONE, "own kept block %p damaged at offset %zu", b->p, bad);
    left[cur][arg->index][i] = *b;
    if (bad != NONE) left[cur][arg->index][i].p = NULL;
  }
  free(arg);
  return NULL;
}

/* A long-lived thread frees blocks whose allocating threads have already exited. */
static struct {
  pthread_mutex_t lock;
  pthread_cond_t ready;
  struct block blocks[PER_GEN * LEFT];
  int count, done;
} late = {.lock = PTHREAD_MUTEX_INITIALIZER, .ready = PTHREAD_COND_INITIALIZER};

static void *late_freer(void *unused) {
  (void)unused;
  pthread_mutex_lock(&late.lock);
  for (;;) {
    while (late.count == 0 && !late.done) pthread_cond_wait(&late.ready, &late.lock);
    if (late.count == 0 && late.done) break;
    for (int i = 0; i < late.count; i++) check_and_free(&late.blocks[i], "freed late");
    late.count = 0;
    pthread_cond_broadcast(&late.ready);
  }
  pthread_mutex_unlock(&late.lock);
  return NULL;
}

static long resident_kib(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(f);
  }
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

int main(void) {
  pt_start("thread_exit");
  pthread_t freer;
  pthread_create(&freer, NULL, late_freer, NULL);
  long rss_early = 0;
  for (int gen = 0; gen < GENERATIONS; gen++) {
    pthread_t t[PER_GEN];
    for (int i = 0; i < PER_GEN; i++) {
      struct worker_arg *arg = malloc(sizeof *arg);
      arg->gen = gen;
      arg->index = i;
      pthread_create(&t[i], NULL, worker, arg);
    }
    for (int i = 0; i < PER_GEN; i++) pthread_join(t[i], NULL);
    /* Every fifth generation, the freer thread takes this generation's leftovers once their
     * threads are gone; the others are freed by the next generation's threads. */
    if (gen % 5 == 4) {
      int cur = gen % 2;
      pthread_mutex_lock(&late.lock);
      while (late.count) pthread_cond_wait(&late.ready, &late.lock);
      for (int i = 0; i < PER_GEN; i++)
        for (int j = 0; j < LEFT; j++) {
          late.blocks[late.count++] = left[cur][i][j];
          left[cur][i][j].p = NULL;
        }
      pthread_cond_broadcast(&late.ready);
      pthread_mutex_unlock(&late.lock);
    }
    if (gen == GENERATIONS / 10) rss_early = resident_kib();
  }
  pthread_mutex_lock(&late.lock);
  late.done = 1;
  pthread_cond_broadcast(&late.ready);
  pthread_mutex_unlock(&late.lock);
  pthread_join(freer, NULL);
  for (int g = 0; g < 2; g++)
    for (int i = 0; i < PER_GEN; i++)
      for (int j = 0; j < LEFT; j++) check_and_free(&left[g][i][j], "left at the end");
  long rss_late = resident_kib();
  /* The memory of all those dead threads is reusable: a burst of allocations must work. */
  uint64_t rng = 7;
  static struct block burst[20000];
  for (int i = 0; i < 20000; i++) burst[i] = make_block(&rng);
  for (int i = 0; i < 20000; i++) check_and_free(&burst[i], "burst after thread churn");
  printf("thread_exit: %d generations of %d threads; resident %ld KiB at generation %d, "
         "%ld KiB at the end\n",
         GENERATIONS, PER_GEN, rss_early, GENERATIONS / 10, rss_late);
  CHECK(rss_late - rss_early < 32 * 1024,
        "resident memory grew by %ld KiB over %d generations of exiting threads",
        rss_late - rss_early, GENERATIONS - GENERATIONS / 10);
  return pt_finish();
}
