/* strings.c: a program that keeps many small strings and replaces them without reading the
 * old ones, as a cache evicts entries or a symbol table drops names: each thread holds 65,536
 * strings of 1-300 bytes, copies of random suffixes of one text, and at every step frees a
 * random one unread and puts a new copy in its place. The table is about 10 MiB a thread, so
 * the block a free gets is in no cache: what the allocator reads of a freed block, it waits
 * for. One string in 64 is compared with its source before its free, and every string at the
 * end, so that overlapping blocks are caught. */
#include <string.h>

#include "bench.h"

#define LIVE        65536 /* a power of two */
#define TEXT_BYTES  300
#define CHECK_EVERY 64
#define FULL_STEPS  12e6 /* per thread */

static char text[TEXT_BYTES + 1];
static size_t steps;

typedef struct entry {
  char *s;
  uint16_t from; /* the copy is text + from */
} entry;

static void fill(entry *e, bench_rng *rng) {
  e->from = (uint16_t)bench_range(rng, 0, TEXT_BYTES - 1);
  size_t bytes = TEXT_BYTES - e->from + 1;
  e->s = bench_malloc(bytes);
  memcpy(e->s, text + e->from, bytes);
}

static void check(const entry *e) {
  if (strcmp(e->s, text + e->from) != 0)
    bench_fail("string at %p (from %u) was overwritten", (void *)e->s, (unsigned)e->from);
}

static void *run(void *arg) {
  bench_rng rng = {(uint64_t)(intptr_t)arg * 7919 + 1};
  entry *table = bench_malloc(LIVE * sizeof *table);
  for (size_t i = 0; i < LIVE; i++) fill(&table[i], &rng);
  for (size_t i = 0; i < steps; i++) {
    entry *e = &table[bench_rand(&rng) & (LIVE - 1)];
    if (i % CHECK_EVERY == 0) check(e);
    bench_free(e->s);
    fill(e, &rng);
  }
  for (size_t i = 0; i < LIVE; i++) {
    check(&table[i]);
    bench_free(table[i].s);
  }
  bench_free(table);
  return NULL;
}

int main(int argc, char **argv) {
  bench_args args;
  bench_init(argc, argv, &args);
  steps = bench_scaled(&args, FULL_STEPS, 1000);
  for (size_t i = 0; i < TEXT_BYTES; i++) text[i] = (char)('a' + i % 26);
  double start = bench_now();
  bench_spawn(args.threads, run, NULL, 0);
  double seconds = bench_now() - start;
  bench_result("strings", seconds, NULL);
  return 0;
}
