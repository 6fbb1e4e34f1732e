/* timesteps.c: parallel first-touch initialisation, time step after time step. In each of 4
 * steps the main thread on CPU 0 allocates one 24 MiB array per CPU; worker i, pinned to CPU
 * i, initialises array i and reads it twice; then the main thread frees every array, in
 * allocation order on even steps and in reverse on odd ones. The kernel's first touch puts a
 * fresh array on its worker's node every step; an allocator that hands a freed array's
 * resident pages to the next array asked for gives a worker the pages another worker touched
 * whenever the order of frees and allocations swaps them. */
#include "pattern.h"

#include <stdlib.h>

enum { STEPS = 4, READS = 2 };
#define ARRAY ((size_t)24 << 20)

static char *arrays[64];
static uint64_t sums[64];
static int step;

static void work(int cpu, void *arg) {
  uint64_t tag = (uint64_t)(step * 64 + cpu);
  pattern_write(arrays[cpu], ARRAY, tag);
  uint64_t sum = 0;
  for (int r = 0; r < READS; r++) sum += pattern_read(arrays[cpu], 0, ARRAY, tag);
  sums[cpu] = sum;
}

int main(int argc, char **argv) {
  int cpus = pattern_init(argc, argv, "timesteps");
  if (cpus > 64) cpus = 64;
  uint64_t checksum = 0;
  NUMALLOC_PROFILE_START();
  for (step = 0; step < STEPS; step++) {
    for (int i = 0; i < cpus; i++) arrays[i] = pattern_malloc(ARRAY);
    pthread_t t[64];
    for (int i = 0; i < cpus; i++) t[i] = pattern_spawn(i, work, NULL);
    for (int i = 0; i < cpus; i++) pattern_join(t[i]), checksum += sums[i];
    for (int i = 0; i < cpus; i++) free(arrays[step % 2 ? cpus - 1 - i : i]);
  }
  NUMALLOC_PROFILE_STOP();
  pattern_result("timesteps", cpus, checksum);
  return 0;
}
