/* pipeline.c: messages built on one thread and taken apart on another, as a log or RPC
 * pipeline passes them. Each thread builds batches of 512 messages (a header, an array of 1 to
 * 6 parts, and each part's bytes, 16 to 215 of them, written whole as a string's constructor
 * writes them) and hands each batch to the next thread, which reads each header and the middle
 * byte of each part (the field it looks at), and frees every block. Every free is another
 * thread's, and most of a freed block was never read by the thread that frees it. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define PER_BATCH    512
#define MAX_PARTS    6
#define FULL_BATCHES 8000
#define MAX_WAITING  8

typedef struct part {
  char *bytes;
  uint32_t length;
} part;

typedef struct message {
  uint64_t id;
  uint32_t count;
  part *parts;
} message;

typedef struct batch {
  bench_batch_link link;
  message *m[PER_BATCH];
} batch;

static bench_handoff *handoffs; /* thread i hands its batches to thread i + 1 on handoffs[i] */
static int nthreads;

static char byte_of(uint64_t id, uint32_t k) { return (char)('a' + (id * 7 + k) % 26); }

static message *message_new(bench_rng *rng, uint64_t id) {
  message *m = bench_malloc(sizeof *m);
  m->id = id;
  m->count = 1 + (uint32_t)(bench_rand(rng) % MAX_PARTS);
  m->parts = bench_malloc(m->count * sizeof *m->parts);
  for (uint32_t k = 0; k < m->count; k++) {
    uint32_t length = 16 + (uint32_t)(bench_rand(rng) % 200);
    m->parts[k].bytes = bench_malloc(length);
    memset(m->parts[k].bytes, byte_of(id, k), length);
    m->parts[k].length = length;
  }
  return m;
}

static void message_free(message *m) {
  for (uint32_t k = 0; k < m->count; k++) {
    const part *p = &m->parts[k];
    char want = byte_of(m->id, k);
    if (p->bytes[p->length / 2] != want)
      bench_fail("pipeline: part %u of message %llu was damaged", k, (unsigned long long)m->id);
    bench_free(p->bytes);
  }
  bench_free(m->parts);
  bench_free(m);
}

static void *run(void *arg) {
  int me = (int)(intptr_t)arg;
  bench_handoff *out = &handoffs[me], *in = &handoffs[(me + nthreads - 1) % nthreads];
  bench_rng rng = {17 + (uint64_t)me};
  uint64_t id = (uint64_t)me << 40;
  for (;;) {
    /* one batch made, one taken: neither queue can fill while the other waits */
    int made = bench_handoff_claim(out);
    if (made) {
      batch *b = bench_malloc(sizeof *b);
      for (size_t i = 0; i < PER_BATCH; i++) b->m[i] = message_new(&rng, id++);
      bench_handoff_push(out, &b->link);
    }
    batch *b = (batch *)bench_handoff_pop(in);
    if (b == NULL) {
      if (!made) break;
      continue;
    }
    for (size_t i = 0; i < PER_BATCH; i++) message_free(b->m[i]);
    bench_free(b);
  }
  return NULL;
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  nthreads = args.threads < 2 ? 2 : args.threads;
  handoffs = calloc((size_t)nthreads, sizeof *handoffs);
  if (handoffs == NULL) bench_fail("no memory for the hand-offs");
  size_t batches = bench_scaled(&args, FULL_BATCHES / (double)nthreads, 2);
  for (int i = 0; i < nthreads; i++) bench_handoff_init(&handoffs[i], batches, MAX_WAITING);
  double start = bench_now();
  bench_spawn(nthreads, run, NULL, 0); /* the argument is the thread's index */
  double seconds = bench_now() - start;
  free(handoffs);
  bench_result("pipeline", seconds, NULL);
  return 0;
}
