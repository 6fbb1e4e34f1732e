/* foreign_free.c: free() of blocks the preload does not own. Blocks made by glibc's own
 * malloc (reached through libc.so.6's handle, as a library bound before the preload would)
 * are handed to the interposed free(), which must pass them on to glibc: glibc's own count
 * of bytes in use drops, nothing crashes, and the preload keeps working. numalloc only. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "preload_test.h"

#define NONE ((size_t)-1)

int main(void) {
  pt_start("foreign_free");
  void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  CHECK(libc != NULL, "dlopen(libc.so.6, RTLD_NOLOAD) failed");
  if (!libc) return pt_finish();
  void *(*glibc_malloc)(size_t) = (void *(*)(size_t))dlsym(libc, "malloc");
  struct mallinfo2 (*glibc_mallinfo2)(void) = (struct mallinfo2(*)(void))dlsym(libc, "mallinfo2");
  CHECK(glibc_malloc && glibc_mallinfo2, "glibc's malloc or mallinfo2 not found");
  if (!glibc_malloc || !glibc_mallinfo2) return pt_finish();
  CHECK(glibc_malloc != (void *(*)(size_t))malloc, "libc's handle returned the preload's malloc");

  enum { N = 200 };
  static void *foreign[N];
  static const size_t sizes[] = {8, 24, 100, 1000, 5000, 70000, 300000};
  size_t before = glibc_mallinfo2().uordblks;
  for (int i = 0; i < N; i++) {
    size_t s = sizes[i % 7];
    foreign[i] = glibc_malloc(s);
    CHECK(foreign[i] != NULL, "glibc malloc(%zu) failed", s);
    if (foreign[i]) memset(foreign[i], 0x33, s);
    CHECK(!pt_is_numalloc() || pt_node_of(foreign[i]) == -1, "numalloc claims glibc's block %p (node %d)",
          foreign[i], pt_node_of(foreign[i]));
  }
  size_t held = glibc_mallinfo2().uordblks;
  for (int i = 0; i < N; i++) free(foreign[i]);
  size_t after = glibc_mallinfo2().uordblks;
  printf("glibc bytes in use: %zu before, %zu holding %d foreign blocks, %zu after free()\n",
         before, held, N, after);
  CHECK(after < held && after <= before + 4096,
        "free() did not return glibc's blocks to glibc (in use %zu -> %zu)", held, after);

  /* The preload's own heap is intact. */
  static void *own[2000];
  for (int i = 0; i < 2000; i++) {
    own[i] = malloc(1 + i * 13 % 3000);
    CHECK(own[i] != NULL, "malloc failed after foreign frees");
    if (own[i]) pt_fill(own[i], 1 + i * 13 % 3000, i);
  }
  for (int i = 0; i < 2000; i++) {
    if (!own[i]) continue;
    CHECK(pt_verify(own[i], 1 + i * 13 % 3000, i) == NONE, "block %d damaged", i);
    free(own[i]);
  }
  return pt_finish();
}
