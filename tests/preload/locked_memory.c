/* locked_memory.c: a program that locks its memory (mlockall, as low-latency programs do
 * at start). The kernel faults in and locks every writable page it maps from then on, so an
 * allocator that maps more than it uses holds all of it: threads that each allocate a few
 * small blocks must add a few MiB each, not a mapping's worth. And it refuses to take locked
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
#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "preload_test.h"

#define MiB   ((size_t)1 << 20)
#define BURST 4

/* Threads that each keep a few small blocks, and what they may add to the resident size. */
#define THREADS             4
#define THREAD_BLOCKS       200
#define THREAD_STACK        (256 * 1024)
#define THREAD_RESIDENT_MAX (8 * MiB)

static size_t resident_bytes(void) {
  long size = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL || fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
  if (f != NULL) fclose(f);
  return (size_t)resident * 4096;
}

static pthread_barrier_t allocated, measured;

static void *keep_small_blocks(void *arg) {
  void *blocks[THREAD_BLOCKS];
  for (int i = 0; i < THREAD_BLOCKS; i++) {
    blocks[i] = malloc(16 + (size_t)i * 10);
    CHECK(blocks[i] != NULL, "malloc(%d) failed", 16 + i * 10);
    if (blocks[i] != NULL) memset(blocks[i], 0x3c, 16);
  }
  pthread_barrier_wait(&allocated);
  pthread_barrier_wait(&measured);
  for (int i = 0; i < THREAD_BLOCKS; i++) free(blocks[i]);
  return arg;
}

/* The resident size the threads add while their blocks are live, stacks set apart. */
static void threads_hold_little(void) {
  pthread_t threads[THREADS];
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, THREAD_STACK);
  pthread_barrier_init(&allocated, NULL, THREADS + 1);
  pthread_barrier_init(&measured, NULL, THREADS + 1);
  size_t before = resident_bytes();
  for (int i = 0; i < THREADS; i++)
    CHECK(pthread_create(&threads[i], &attr, keep_small_blocks, NULL) == 0, "pthread_create");
  pthread_barrier_wait(&allocated);
  size_t added = resident_bytes() - before, stacks = (size_t)THREADS * THREAD_STACK;
  CHECK(added <= stacks + THREADS * THREAD_RESIDENT_MAX,
        "%d threads of %d small blocks each added %zu KiB resident (stacks %zu KiB, allowed %zu "
        "KiB more)",
        THREADS, THREAD_BLOCKS, added >> 10, stacks >> 10, (THREADS * THREAD_RESIDENT_MAX) >> 10);
  printf("locked_memory: %d threads added %zu KiB resident, their stacks %zu KiB\n", THREADS,
         added >> 10, stacks >> 10);
  pthread_barrier_wait(&measured);
  for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
  pthread_attr_destroy(&attr);
}

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
  threads_hold_little();
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
