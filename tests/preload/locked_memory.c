/* locked_memory.c: a program that locks its memory (mlockall, as low-latency programs do
 * at start) gets zeroed memory from calloc all the same. The kernel refuses to take locked
 * pages back, so memory an allocator gave back keeps what it held: calloc must clear it.
 * Blocks of every kind (small, large, a segment's worth, above a segment) are written, freed,
 * given back on request, and allocated again with calloc. Needs the right to lock a few hundred
 * MiB (root, or a raised RLIMIT_MEMLOCK): exits 77 without it. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "preload_test.h"

#define MiB   ((size_t)1 << 20)
#define BURST 4

static void give_back(void) {
  void (*collect)(void) = (void (*)(void))pt_symbol("numalloc_collect");
  if (collect != NULL)
    collect(); /* malloc_trim is answered at most once a second */
  else
    malloc_trim(0);
}

int main(void) {
  pt_start("locked_memory");
  struct rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY};
  setrlimit(RLIMIT_MEMLOCK, &unlimited); /* refused without the right: the lock says so */
  if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0) {
    printf("locked_memory: skipped: mlockall refused (%s)\n", strerror(errno));
    return 77;
  }
  void *keep = malloc(100); /* keeps a segment mapped under every allocator */
  const size_t sizes[] = {3000, 40000, 200000, MiB, 5 * MiB, 40 * MiB};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    size_t size = sizes[k];
    unsigned char *blocks[BURST];
    for (int round = 0; round < 3; round++) {
      for (int i = 0; i < BURST; i++) {
        blocks[i] = malloc(size);
        CHECK(blocks[i] != NULL, "malloc(%zu) failed", size);
        if (blocks[i] != NULL) memset(blocks[i], 0xa5, size);
      }
      for (int i = 0; i < BURST; i++) free(blocks[i]);
      give_back();
      for (int i = 0; i < BURST; i++) {
        blocks[i] = calloc(1, size);
        CHECK(blocks[i] != NULL, "calloc(1, %zu) failed", size);
        if (blocks[i] == NULL) continue;
        size_t at = tu_nonzero(blocks[i], size);
        CHECK(at == SIZE_MAX, "calloc(1, %zu): byte %zu of %zu is %#x after a give-back", size, at,
              size, blocks[i][at]);
      }
      for (int i = 0; i < BURST; i++) free(blocks[i]);
    }
  }
  free(keep);
  munlockall();
  return pt_finish();
}
