/* firsttouch.c: parallel first-touch initialisation, the OpenMP practice. The main thread on
 * CPU 0 allocates one 32 MiB array per CPU; worker i, pinned to CPU i, initialises array i and
 * then reads it 5 times. The kernel's first touch puts each array on its worker's node; an
 * allocator that binds a large block to the node of the thread that allocated it puts every
 * array on node 0. */
#include "pattern.h"

#include <stdlib.h>

enum { READS = 5 };
#define ARRAY ((size_t)32 << 20)

static char *arrays[64];
static uint64_t sums[64];

static void work(int cpu, void *arg) {
  pattern_write(arrays[cpu], ARRAY, (uint64_t)cpu);
  uint64_t sum = 0;
  for (int r = 0; r < READS; r++) sum += pattern_read(arrays[cpu], 0, ARRAY, (uint64_t)cpu);
  sums[cpu] = sum;
}

int main(int argc, char **argv) {
  int cpus = pattern_init(argc, argv, "firsttouch");
  if (cpus > 64) cpus = 64;
  NUMALLOC_PROFILE_START();
  for (int i = 0; i < cpus; i++) arrays[i] = pattern_malloc(ARRAY);
  pthread_t t[64];
  for (int i = 0; i < cpus; i++) t[i] = pattern_spawn(i, work, NULL);
  uint64_t checksum = 0;
  for (int i = 0; i < cpus; i++) pattern_join(t[i]), checksum += sums[i];
  for (int i = 0; i < cpus; i++) free(arrays[i]);
  NUMALLOC_PROFILE_STOP();
  pattern_result("firsttouch", cpus, checksum);
  return 0;
}
