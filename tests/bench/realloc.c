/* realloc.c: realloc growth, the way vectors and string builders grow. Sixteen buffers grow
 * side by side (so no buffer always has free space after it): with -m geometric each doubles
 * from 16 bytes to 2 MiB; with -m linear each grows by 256 bytes at a time to 256 KiB. Every
 * growth writes the new part and checks that the ends of the old part moved along; each buffer
 * is verified in full before it is freed. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define BUFFERS 16

typedef struct growth {
  const char *name;
  size_t start, limit, step; /* step 0: double */
  double full_rounds;
} growth;

static const growth geometric = {"realloc_geo", 16, 2u << 20, 0, 100};
static const growth linear = {"realloc_lin", 256, 256u << 10, 256, 300};

typedef struct buffer {
  char *p;
  size_t size;
  uint64_t tag;
} buffer;

static void grow(buffer *b, const growth *g) {
  size_t next = g->step ? b->size + g->step : b->size * 2;
  char *q = bench_realloc(b->p, next);
  if (q == NULL) bench_fail("realloc to %zu returned NULL", next);
  bench_check(q, b->size, b->tag, b->size); /* stride = size: the first and last words */
  bench_write(q, b->size, next, b->tag, BENCH_LINE);
  b->p = q;
  b->size = next;
}

static void round_of_growth(const growth *g, bench_rng *rng) {
  buffer bufs[BUFFERS];
  for (int i = 0; i < BUFFERS; i++) {
    bufs[i].size = g->start;
    bufs[i].tag = bench_rand(rng) | 1;
    bufs[i].p = bench_malloc(g->start);
    bench_write(bufs[i].p, 0, g->start, bufs[i].tag, BENCH_LINE);
  }
  while (bufs[0].size < g->limit)
    for (int i = 0; i < BUFFERS; i++) grow(&bufs[i], g);
  for (int i = 0; i < BUFFERS; i++) {
    bench_check(bufs[i].p, bufs[i].size, bufs[i].tag, BENCH_LINE);
    bench_free(bufs[i].p);
  }
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  const growth *g = args.mode && strcmp(args.mode, "linear") == 0 ? &linear : &geometric;
  if (args.mode && g == &geometric && strcmp(args.mode, "geometric") != 0)
    bench_fail("unknown mode %s: geometric or linear", args.mode);
  size_t rounds = bench_scaled(&args, g->full_rounds, 1);
  bench_rng rng = {9};

  double start = bench_now();
  for (size_t r = 0; r < rounds; r++) round_of_growth(g, &rng);
  double seconds = bench_now() - start;
  bench_result(g->name, seconds, NULL);
  return 0;
}
