/* frag.c: fragmentation. Fills 1 GiB with blocks of mixed sizes (16 B to 1 KiB, log-uniform),
 * frees 90% of them at random, then allocates other sizes (1 KiB to 8 KiB) amounting to half
 * of what was freed. The surviving 10% pin scattered pages: an allocator that can reuse that
 * space for the new sizes keeps its peak near the first fill; one that cannot grows by the
 * refill. Reports the peak (VmHWM), the final resident size with the refill still live, the
 * live bytes at that point, and the resident size after everything is freed. */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

#define FULL_BYTES (1024.0 * 1024 * 1024)

typedef struct blocks {
  void **p;
  uint16_t *size;
  size_t count, cap;
} blocks;

static uint64_t tag_of(size_t i, size_t size) { return bench_tag(i, size); }

static void add(blocks *b, size_t size) {
  if (b->count == b->cap) {
    b->cap = b->cap ? b->cap * 2 : 1 << 16;
    b->p = bench_realloc(b->p, b->cap * sizeof *b->p);
    b->size = bench_realloc(b->size, b->cap * sizeof *b->size);
    if (b->p == NULL || b->size == NULL) bench_fail("no memory for the block table");
  }
  size_t i = b->count++;
  b->size[i] = (uint16_t)size;
  b->p[i] = bench_malloc(size);
  bench_write(b->p[i], 0, size, tag_of(i, size), BENCH_LINE);
}

static void drop(blocks *b, size_t i) {
  bench_check(b->p[i], b->size[i], tag_of(i, b->size[i]), BENCH_LINE);
  bench_free(b->p[i]);
  b->p[i] = NULL;
}

static size_t fill(blocks *b, bench_rng *rng, size_t bytes, size_t lo, size_t hi) {
  size_t done = 0;
  while (done < bytes) {
    size_t size = bench_log_range(rng, lo, hi);
    add(b, size);
    done += size;
  }
  return done;
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  size_t target = bench_scaled(&args, FULL_BYTES, 1 << 20);
  bench_rng rng = {1234};
  blocks b = {0};

  double start = bench_now();
  size_t live = fill(&b, &rng, target, 16, 1024);
  size_t freed = 0;
  for (size_t i = 0; i < b.count; i++)
    if (bench_rand(&rng) % 10 != 0) {
      freed += b.size[i];
      drop(&b, i);
    }
  live -= freed;
  live += fill(&b, &rng, freed / 2, 1025, 8192);
  double seconds = bench_now() - start;
  long final_kb = bench_status_kb("VmRSS");

  for (size_t i = 0; i < b.count; i++)
    if (b.p[i] != NULL) drop(&b, i);
  bench_free(b.p);
  bench_free(b.size);
  char extra[96];
  snprintf(extra, sizeof extra, "live_kb=%zu after_free_rss_kb=%ld", live >> 10,
           bench_status_kb("VmRSS"));
  bench_result_rss("frag", seconds, final_kb, extra);
  return 0;
}
