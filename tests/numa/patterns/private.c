/* private.c: per-thread private working sets of small objects. Thread i, pinned to CPU i,
 * allocates 20,000 objects of 16 to 512 bytes, then 5 times reads them all and replaces a
 * fifth of them with new ones of new sizes. Nothing is shared: every miss can be local. */
#include "pattern.h"

#include <stdlib.h>

enum { OBJECTS = 20000, ROUNDS = 5 };

static uint64_t sums[64];

typedef struct object {
  void *p;
  size_t size;
  uint64_t tag;
} object_t;

static void renew(object_t *o, uint64_t *rng, uint64_t tag) {
  o->size = 16 + tu_rand(rng) % (512 - 16 + 1);
  o->p = pattern_malloc(o->size);
  o->tag = tag;
  pattern_write(o->p, o->size, tag);
}

static void work(int cpu, void *arg) {
  uint64_t rng = 0x5eed0000u + (uint64_t)cpu;
  object_t *set = pattern_malloc(OBJECTS * sizeof *set);
  for (int i = 0; i < OBJECTS; i++) renew(&set[i], &rng, (uint64_t)i);
  uint64_t sum = 0;
  for (int r = 0; r < ROUNDS; r++)
    for (int i = 0; i < OBJECTS; i++) {
      sum += pattern_read(set[i].p, 0, set[i].size, set[i].tag);
      if (tu_rand(&rng) % 5 == 0) {
        free(set[i].p);
        renew(&set[i], &rng, set[i].tag + 1);
      }
    }
  for (int i = 0; i < OBJECTS; i++) free(set[i].p);
  free(set);
  sums[cpu] = sum;
}

int main(int argc, char **argv) {
  int cpus = pattern_init(argc, argv, "private");
  if (cpus > 64) cpus = 64;
  NUMALLOC_PROFILE_START();
  pthread_t t[64];
  for (int i = 0; i < cpus; i++) t[i] = pattern_spawn(i, work, NULL);
  uint64_t checksum = 0;
  for (int i = 0; i < cpus; i++) pattern_join(t[i]), checksum += sums[i];
  NUMALLOC_PROFILE_STOP();
  pattern_result("private", cpus, checksum);
  return 0;
}
