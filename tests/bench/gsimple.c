/* gsimple.c: the pattern of glibc's bench-malloc-simple. For block sizes 16, 32 and 64 bytes and
 * batches of 25, 100, 400 and 1,600 blocks, it allocates a batch, writes every word of each
 * block, frees the batch in allocation order and repeats; each size runs first in the main
 * thread alone, then in a second thread, then in the main thread again once a thread has
 * existed (where some allocators leave a single-threaded fast mode). */
#include <stdlib.h>

#include "bench.h"

#define FULL_CALLS 1.5e6 /* blocks per (size, batch, phase) */

static const size_t batches[] = {25, 100, 400, 1600};
static size_t calls;
static size_t block_size;

static void batch_loop(size_t n) {
  bench_block *arr = bench_malloc(n * sizeof *arr);
  for (size_t it = 0; it < calls / n; it++) {
    for (size_t i = 0; i < n; i++)
      bench_block_new(&arr[i], block_size, (uint64_t)(it * n + i) | 1, 8);
    for (size_t i = 0; i < n; i++) bench_block_free(&arr[i], 8);
  }
  bench_free(arr);
}

static void *all_batches(void *arg) {
  (void)arg;
  for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) batch_loop(batches[b]);
  return NULL;
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  calls = bench_scaled(&args, FULL_CALLS, 1600);
  double start = bench_now();
  for (block_size = 16; block_size <= 64; block_size *= 2) {
    all_batches(NULL);
    bench_spawn(1, all_batches, NULL, 0);
    all_batches(NULL);
  }
  double seconds = bench_now() - start;
  bench_result("gsimple", seconds, NULL);
  return 0;
}
