/* migrate.c: a thread that moves to another node mid-run. It starts on CPU 0, builds a working
 * set of 20,000 blocks of 1 KiB, reads it 3 times and frees it; then it moves to the last CPU
 * (another node), builds a new working set of the same shape and reads it 5 times. Memory
 * placed for the thread's old node, or blocks freed there and reused, make the second phase
 * remote. */
#include "pattern.h"

#include <stdlib.h>

enum { BLOCKS = 20000, BLOCK = 1024 };

static uint64_t checksum;

static void phase(int reads, uint64_t tag) {
  uint64_t sum = 0;
  void **set = pattern_malloc(BLOCKS * sizeof *set);
  for (int i = 0; i < BLOCKS; i++) {
    set[i] = pattern_malloc(BLOCK);
    pattern_write(set[i], BLOCK, tag + (uint64_t)i);
  }
  for (int r = 0; r < reads; r++)
    for (int i = 0; i < BLOCKS; i++) sum += pattern_read(set[i], 0, BLOCK, tag + (uint64_t)i);
  for (int i = 0; i < BLOCKS; i++) free(set[i]);
  free(set);
  checksum += sum;
}

static void work(int cpu, void *arg) {
  int last = *(int *)arg - 1;
  phase(3, 0);
  pattern_pin(last);
  phase(5, 1u << 20);
}

int main(int argc, char **argv) {
  int cpus = pattern_init(argc, argv, "migrate");
  NUMALLOC_PROFILE_START();
  pattern_join(pattern_spawn(0, work, &cpus));
  NUMALLOC_PROFILE_STOP();
  pattern_result("migrate", cpus, checksum);
  return 0;
}
