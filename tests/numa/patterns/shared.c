/* shared.c: a shared read-mostly table. The main thread on CPU 0 allocates and fills a 32 MiB
 * table; then one thread per CPU reads 400,000 random lines of it, writing one in a hundred.
 * Only the reading counts (the markers): the table is built once and read for long. Wherever
 * the table lives, every node but its own reads it remotely; spread evenly over the nodes,
 * every thread pays the average distance instead of the farthest paying the worst. */
#include "pattern.h"

#include <stdlib.h>

enum { READS = 400000, WRITE_EVERY = 100 };
#define TABLE ((size_t)32 << 20)
#define LINES (TABLE / PATTERN_LINE)

static uint64_t *table; /* one word per line is used: line i holds i, or i + 1 once written */
static uint64_t sums[64];

static void work(int cpu, void *arg) {
  uint64_t rng = 0x7ab1e000u + (uint64_t)cpu, sum = 0;
  for (int r = 0; r < READS; r++) {
    size_t line = tu_rand(&rng) % LINES;
    volatile uint64_t *w = &table[line * (PATTERN_LINE / 8)];
    uint64_t v = *w;
    if (v != line && v != line + 1)
      pattern_fail("table line %zu holds %llu", line, (unsigned long long)v);
    sum += v;
    if (r % WRITE_EVERY == 0) *w = line + 1;
  }
  sums[cpu] = sum;
}

int main(int argc, char **argv) {
  int cpus = pattern_init(argc, argv, "shared");
  if (cpus > 64) cpus = 64;
  table = pattern_malloc(TABLE);
  for (size_t line = 0; line < LINES; line++) table[line * (PATTERN_LINE / 8)] = line;
  NUMALLOC_PROFILE_START();
  pthread_t t[64];
  for (int i = 0; i < cpus; i++) t[i] = pattern_spawn(i, work, NULL);
  uint64_t checksum = 0;
  for (int i = 0; i < cpus; i++) pattern_join(t[i]), checksum += sums[i];
  NUMALLOC_PROFILE_STOP();
  free(table);
  pattern_result("shared", cpus, checksum);
  return 0;
}
