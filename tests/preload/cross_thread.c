/* cross_thread.c: blocks allocated by one thread and freed (or reallocated) by another, with
 * every block's contents checked, so a remote free that corrupts a free list or hands a live
 * block out twice shows up as a damaged pattern. Two shapes: producers feeding consumers
 * through a queue, and rounds in which every thread sends blocks to every other thread. */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "preload_test.h"

#define NONE ((size_t)-1)

struct msg {
  void *p;
  size_t size;
  uint64_t tag;
};

/* A bounded queue; its ring is a static array so the queue itself never allocates. */
enum { QCAP = 4096 };
static struct {
  pthread_mutex_t lock;
  pthread_cond_t not_empty, not_full;
  struct msg ring[QCAP];
  size_t head, tail;
  int producers_left;
} q = {.lock = PTHREAD_MUTEX_INITIALIZER,
       .not_empty = PTHREAD_COND_INITIALIZER,
       .not_full = PTHREAD_COND_INITIALIZER};

static void q_push(struct msg m) {
  pthread_mutex_lock(&q.lock);
  while (q.tail - q.head == QCAP) pthread_cond_wait(&q.not_full, &q.lock);
  q.ring[q.tail++ % QCAP] = m;
  pthread_cond_signal(&q.not_empty);
  pthread_mutex_unlock(&q.lock);
}

/* Returns 0 when every producer is done and the queue is empty. */
static int q_pop(struct msg *m) {
  pthread_mutex_lock(&q.lock);
  while (q.tail == q.head && q.producers_left > 0) pthread_cond_wait(&q.not_empty, &q.lock);
  int got = q.tail != q.head;
  if (got) *m = q.ring[q.head++ % QCAP];
  pthread_cond_signal(&q.not_full);
  pthread_mutex_unlock(&q.lock);
  return got;
}

/* Mostly small, some medium, a few large blocks. */
static size_t pick_size(uint64_t r) {
  unsigned kind = (unsigned)(r % 100);
  if (kind < 90) return (r >> 8) % 512 + 1;
  if (kind < 99) return (r >> 8) % 32768 + 1;
  return (r >> 8) % (256 * 1024) + 1;
}

static struct msg make_block(uint64_t *rng) {
  uint64_t r = tu_rand(rng);
  struct msg m = {NULL, pick_size(r), r};
  m.p = malloc(m.size);
  CHECK(m.p != NULL, "malloc(%zu) returned NULL", m.size);
  if (m.p) tu_fill(m.p, m.size, m.tag);
  return m;
}

/* A damaged block is reported and then never passed to realloc or free: it may be shared with
 * another live block, and the allocator could abort on it before every damage is reported. */
static bool check_block(const struct msg *m, const char *where) {
  size_t bad = tu_mismatch(m->p, m->size, m->tag);
  CHECK(bad == NONE, "%s: %zu-byte block %p damaged at offset %zu", where, m->size, m->p, bad);
  CHECK(malloc_usable_size(m->p) >= m->size, "%s: usable size %zu < %zu", where,
        malloc_usable_size(m->p), m->size);
  return bad == NONE;
}

enum { PRODUCERS = 4, CONSUMERS = 4, PER_PRODUCER = 60000 };

static void *producer(void *arg) {
  uint64_t rng = 0x9E3779B9u + (uintptr_t)arg;
  for (int i = 0; i < PER_PRODUCER; i++) {
    struct msg m = make_block(&rng);
    if (m.p) q_push(m);
  }
  pthread_mutex_lock(&q.lock);
  q.producers_left--;
  pthread_cond_broadcast(&q.not_empty);
  pthread_mutex_unlock(&q.lock);
  return NULL;
}

/* Holds up to 64 blocks before freeing, and reallocates one in eight before freeing it. */
static void *consumer(void *arg) {
  uint64_t rng = 0xC0FFEEu + (uintptr_t)arg;
  struct msg held[64];
  int n = 0;
  struct msg m;
  while (q_pop(&m)) {
    if (!check_block(&m, "consumer received")) continue;
    uint64_t r = tu_rand(&rng);
    if (r % 8 == 0) {
      size_t want = pick_size(r >> 3);
      void *p = realloc(m.p, want);
      CHECK(p != NULL, "realloc of a foreign block to %zu returned NULL", want);
      if (p) {
        size_t kept = want < m.size ? want : m.size;
        size_t bad = tu_mismatch(p, kept, m.tag);
        CHECK(bad == NONE, "realloc of a foreign block lost contents at %zu", bad);
        m.p = p;
        m.size = want;
        tu_fill(p, want, m.tag);
      }
    }
    if (n == 64) {
      int victim = (int)(r >> 40) % 64;
      if (check_block(&held[victim], "consumer held")) free(held[victim].p);
      held[victim] = m;
    } else {
      held[n++] = m;
    }
  }
  for (int i = 0; i < n; i++) {
    if (check_block(&held[i], "consumer held at end")) free(held[i].p);
  }
  return NULL;
}

static void producer_consumer(void) {
  pthread_t t[PRODUCERS + CONSUMERS];
  q.producers_left = PRODUCERS;
  for (uintptr_t i = 0; i < PRODUCERS; i++) pthread_create(&t[i], NULL, producer, (void *)i);
  for (uintptr_t i = 0; i < CONSUMERS; i++)
    pthread_create(&t[PRODUCERS + i], NULL, consumer, (void *)i);
  for (int i = 0; i < PRODUCERS + CONSUMERS; i++) pthread_join(t[i], NULL);
  printf("producer/consumer: %d blocks passed between threads\n", PRODUCERS * PER_PRODUCER);
}

/* All-to-all: in each round every thread sends PER_ROUND blocks spread over all the others,
 * then frees what it received. Each thread also keeps blocks of its own alive across rounds
 * and checks them, so a remotely freed block handed out over a live one is caught. */
enum { THREADS = 8, ROUNDS = 25, PER_ROUND = 1500, KEEP = 300 };
static struct msg box[THREADS][THREADS][PER_ROUND];
static int box_count[THREADS][THREADS];
static pthread_barrier_t barrier;

static void *all_to_all(void *arg) {
  int self = (int)(uintptr_t)arg;
  uint64_t rng = 0xABCDEFu * (self + 1);
  struct msg keep[KEEP];
  for (int i = 0; i < KEEP; i++) keep[i] = make_block(&rng);
  for (int round = 0; round < ROUNDS; round++) {
    for (int i = 0; i < PER_ROUND; i++) {
      int dest = (self + 1 + i % (THREADS - 1)) % THREADS;
      struct msg m = make_block(&rng);
      if (m.p) box[self][dest][box_count[self][dest]++] = m;
    }
    pthread_barrier_wait(&barrier);
    for (int from = 0; from < THREADS; from++) {
      for (int i = 0; i < box_count[from][self]; i++) {
        check_block(&box[from][self][i], "all-to-all received");
        free(box[from][self][i].p);
      }
    }
    for (int i = 0; i < KEEP; i++) {
      if (keep[i].p) check_block(&keep[i], "all-to-all kept");
      if (i % 10 == round % 10) {
        free(keep[i].p);
        keep[i] = make_block(&rng);
      }
    }
    pthread_barrier_wait(&barrier);
    for (int from = 0; from < THREADS; from++) box_count[from][self] = 0;
    pthread_barrier_wait(&barrier);
  }
  for (int i = 0; i < KEEP; i++) free(keep[i].p);
  return NULL;
}

static void all_to_all_rounds(void) {
  pthread_t t[THREADS];
  pthread_barrier_init(&barrier, NULL, THREADS);
  for (uintptr_t i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, all_to_all, (void *)i);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  pthread_barrier_destroy(&barrier);
  printf("all-to-all: %d threads x %d rounds x %d blocks\n", THREADS, ROUNDS, PER_ROUND);
}

int main(void) {
  pt_start("cross_thread");
  producer_consumer();
  all_to_all_rounds();
  return pt_finish();
}
