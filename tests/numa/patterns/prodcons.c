/* prodcons.c: producer to consumer across nodes. A producer on CPU 0 allocates 100,000
 * messages of 256 bytes to 2 KiB and writes them; a consumer on the last CPU (another node)
 * reads each message and frees it. The producer writes what the consumer reads, so one of the
 * two works on remote memory whatever the placement; what differs is where the freed blocks
 * go and which side pays.
 *
 * The ring is the producer's: it writes every page of it before the consumer exists. Left to
 * the threads, the consumer waiting on the lock could fault the ring's page on its own node
 * first, and each run, under each allocator, would measure a different ring. */
#include "pattern.h"

#include <stdlib.h>

enum { MESSAGES = 100000, RING = 1024 };

typedef struct message {
  size_t size;
  uint64_t tag;
} message_t; /* at the start of a block; pattern_write starts at the next line */

static struct {
  _Alignas(4096) pthread_mutex_t lock; /* its own pages: no other data decides their node */
  pthread_cond_t not_empty, not_full;
  message_t *slot[RING];
  size_t head, tail; /* head: next to take; tail: next to fill */
} ring = {.lock = PTHREAD_MUTEX_INITIALIZER,
          .not_empty = PTHREAD_COND_INITIALIZER,
          .not_full = PTHREAD_COND_INITIALIZER};

/* Writes one word of every OS page of the ring without changing its contents. */
static void own_ring(void) {
  volatile char *p = (volatile char *)&ring;
  for (size_t off = 0; off < sizeof ring; off += 4096) p[off] = p[off];
  p[sizeof ring - 1] = p[sizeof ring - 1];
}

static uint64_t checksum;

static void put(message_t *m) {
  pthread_mutex_lock(&ring.lock);
  while (ring.tail - ring.head == RING) pthread_cond_wait(&ring.not_full, &ring.lock);
  ring.slot[ring.tail++ % RING] = m;
  pthread_cond_signal(&ring.not_empty);
  pthread_mutex_unlock(&ring.lock);
}

static message_t *take(void) {
  pthread_mutex_lock(&ring.lock);
  while (ring.tail == ring.head) pthread_cond_wait(&ring.not_empty, &ring.lock);
  message_t *m = ring.slot[ring.head++ % RING];
  pthread_cond_signal(&ring.not_full);
  pthread_mutex_unlock(&ring.lock);
  return m;
}

static void consume(int cpu, void *arg) {
  uint64_t sum = 0;
  for (int i = 0; i < MESSAGES; i++) {
    message_t *m = take();
    if (m->tag != (uint64_t)i)
      pattern_fail("message %d arrived as %llu", i, (unsigned long long)m->tag);
    sum += pattern_read(m, PATTERN_LINE, m->size, m->tag);
    free(m);
  }
  checksum = sum;
}

int main(int argc, char **argv) {
  int cpus = pattern_init(argc, argv, "prodcons");
  uint64_t rng = 0x9c0d;
  own_ring();
  NUMALLOC_PROFILE_START();
  pthread_t consumer = pattern_spawn(cpus - 1, consume, NULL);
  for (int i = 0; i < MESSAGES; i++) {
    size_t size = 256 + tu_rand(&rng) % (2048 - 256 + 1);
    message_t *m = pattern_malloc(size);
    pattern_write(m, size, (uint64_t)i);
    m->size = size, m->tag = (uint64_t)i;
    put(m);
  }
  pattern_join(consumer);
  NUMALLOC_PROFILE_STOP();
  pattern_result("prodcons", cpus, checksum);
  return 0;
}
