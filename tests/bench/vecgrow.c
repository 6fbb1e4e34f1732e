/* vecgrow.c: vectors growing side by side, the way containers grow in real programs. Each
 * thread grows 256 buffers with realloc and visits them round-robin, so a buffer's neighbours
 * are in the way of growing in place: even buffers grow by x1.5+16 up to 1 MiB, odd ones by 256
 * bytes up to 64 KiB. A buffer at its cap is verified, freed and restarts at 16 bytes. Every
 * growth checks that the old contents moved along (first and last word) and writes the new
 * part. */
#include <stdlib.h>

#include "bench.h"

#define BUFFERS     256
#define EVEN_CAP    (1u << 20)
#define ODD_CAP     (64u << 10)
#define START       16
#define FULL_ROUNDS 800 /* visits of all buffers, per thread */

static size_t rounds;

static size_t next_size(size_t i, size_t size) {
  if (i % 2 == 0) {
    size_t next = size + size / 2 + 16;
    return next > EVEN_CAP ? EVEN_CAP : next;
  }
  return size + 256 > ODD_CAP ? ODD_CAP : size + 256;
}

static void visit(bench_block *b, size_t i, bench_rng *rng) {
  size_t cap = i % 2 == 0 ? EVEN_CAP : ODD_CAP;
  if (b->size >= cap) {
    bench_block_free(b, BENCH_LINE);
    bench_block_new(b, START, bench_rand(rng) | 1, BENCH_LINE);
    return;
  }
  size_t next = next_size(i, b->size);
  void *q = bench_realloc(b->p, next);
  bench_check(q, b->size, b->tag, b->size); /* stride = size: the first and last words */
  bench_write(q, b->size, next, b->tag, BENCH_LINE);
  b->p = q;
  b->size = next;
}

static void *run(void *arg) {
  bench_rng rng = {(uint64_t)(intptr_t)arg * 7919 + 3};
  bench_block *bufs = calloc(BUFFERS, sizeof *bufs);
  if (bufs == NULL) bench_fail("no memory for the buffers");
  for (size_t i = 0; i < BUFFERS; i++)
    bench_block_new(&bufs[i], START, bench_rand(&rng) | 1, BENCH_LINE);
  for (size_t r = 0; r < rounds; r++)
    for (size_t i = 0; i < BUFFERS; i++) visit(&bufs[i], i, &rng);
  for (size_t i = 0; i < BUFFERS; i++) bench_block_free(&bufs[i], BENCH_LINE);
  bench_free(bufs);
  return NULL;
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  rounds = bench_scaled(&args, FULL_ROUNDS, 10);
  double start = bench_now();
  bench_spawn(args.threads, run, NULL, 0); /* the argument is the thread's index */
  double seconds = bench_now() - start;
  bench_result("vecgrow", seconds, NULL);
  return 0;
}
