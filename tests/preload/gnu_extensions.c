/* gnu_extensions.c: the C library's extensions that programs call to give memory back or to
 * report it. Under numalloc, malloc_trim gives idle memory back now (at most once a second)
 * and says whether any went, mallinfo and mallinfo2 count numalloc's blocks, malloc_stats
 * prints numalloc's report on standard error; under NUMALLOC_POLICY=system they are the C
 * library's own. glibc's second names for the family (__libc_malloc and the rest) serve the
 * same blocks as the first. Run with a purge delay of an hour, so that nothing goes back before
 * malloc_trim asks. */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "preload_test.h"

#define MiB    ((size_t)1 << 20)
#define BLOCKS 4000
#define BLOCK  4096
#define HUGE   (40 * MiB) /* above a segment: a mapping of its own */

static void *blocks[BLOCKS];

static size_t resident_bytes(void) {
  long size = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL || fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
  if (f != NULL) fclose(f);
  return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

static void allocate_blocks(void) {
  for (int i = 0; i < BLOCKS; i++) {
    blocks[i] = malloc(BLOCK);
    CHECK(blocks[i] != NULL, "malloc(%d) failed", BLOCK);
    if (blocks[i] != NULL) memset(blocks[i], 0x5a, BLOCK);
  }
}

static void free_blocks(void) {
  for (int i = 0; i < BLOCKS; i++) free(blocks[i]);
}

/* What fn writes on standard error, in buf. */
static void capture_stderr(void (*fn)(void), char *buf, size_t size) {
  char path[] = "/tmp/numalloc-gnu-XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0, "mkstemp failed");
  buf[0] = '\0';
  if (fd < 0) return;
  unlink(path);
  fflush(stderr);
  int saved = dup(2);
  dup2(fd, 2);
  fn();
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  ssize_t n = pread(fd, buf, size - 1, 0);
  buf[n > 0 ? n : 0] = '\0';
  close(fd);
}

static void numalloc_counts(void) {
  struct mallinfo2 before = mallinfo2();
  allocate_blocks();
  struct mallinfo2 with = mallinfo2();
  size_t grew = with.uordblks - before.uordblks;
  CHECK(with.uordblks >= before.uordblks && grew >= (size_t)BLOCKS * BLOCK &&
            grew <= (size_t)BLOCKS * BLOCK * 3 / 2,
        "in use grew by %zu bytes for %d blocks of %d", grew, BLOCKS, BLOCK);
  CHECK(with.arena >= with.uordblks && with.fordblks == with.arena - with.uordblks,
        "arena %zu, in use %zu, free %zu", with.arena, with.uordblks, with.fordblks);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations" /* still called by programs */
  struct mallinfo old = mallinfo();
#pragma GCC diagnostic pop
  CHECK((size_t)old.uordblks == with.uordblks && (size_t)old.arena == with.arena,
        "mallinfo says %d in use of %d, mallinfo2 %zu of %zu", old.uordblks, old.arena,
        with.uordblks, with.arena);

  char *huge = malloc(HUGE);
  CHECK(huge != NULL, "malloc(%zu) failed", HUGE);
  struct mallinfo2 with_huge = mallinfo2();
  CHECK(with_huge.hblkhd >= before.hblkhd + HUGE, "mapped chunks %zu bytes with a %zu-byte block",
        with_huge.hblkhd, HUGE);
  CHECK(with_huge.uordblks == with.uordblks, "a huge block changed the heap's in use: %zu, %zu",
        with_huge.uordblks, with.uordblks);
  free(huge);
  CHECK(mallinfo2().hblkhd == before.hblkhd, "mapped chunks %zu after the free, %zu before",
        mallinfo2().hblkhd, before.hblkhd);

  free_blocks();
  struct mallinfo2 after = mallinfo2();
  /* blocks kept in the thread's bins still count as in use: a few per class */
  CHECK(after.uordblks <= before.uordblks + MiB, "in use %zu after the frees, %zu before",
        after.uordblks, before.uordblks);
}

static void numalloc_trim(void) {
  allocate_blocks();
  free_blocks();
  size_t idle = resident_bytes();
  int first = malloc_trim(0);
  int second = malloc_trim(0); /* nothing allocated in between (reading statm does) */
  size_t trimmed = resident_bytes();
  CHECK(first == 1, "malloc_trim found nothing to give back after %d frees", BLOCKS);
  CHECK(second == 0, "a second malloc_trim in a row gave memory back again");
  CHECK(trimmed + (size_t)BLOCKS * BLOCK / 2 <= idle,
        "resident %zu bytes before malloc_trim, %zu after: the freed %zu did not go back", idle,
        trimmed, (size_t)BLOCKS * BLOCK);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A program that calls malloc_trim in a loop must not pay for a full trim at every call: a
 * call soon after one that gave memory back (within a second) gives nothing back and returns
 * 0, and one after that interval gives back what was freed since. The first part needs the
 * frees to fit in the interval, so a machine that stalls past it tries again. */
#define SOON_MS 500 /* half the interval: a loaded machine's stalls and the clock's ticks */
static void numalloc_trim_in_a_loop(void) {
  bool checked = false;
  for (int attempt = 0; attempt < 5 && !checked; attempt++) {
    usleep(1050 * 1000);
    allocate_blocks();
    free_blocks();
    double trimmed_at = now_ms(); /* the interval counts from the call, not its return */
    CHECK(malloc_trim(0) == 1, "malloc_trim found nothing to give back after %d frees", BLOCKS);
    allocate_blocks();
    free_blocks();
    size_t idle = resident_bytes();
    int soon = malloc_trim(0);
    if (now_ms() - trimmed_at >= SOON_MS) continue; /* too slow to tell: try again */
    checked = true;
    CHECK(soon == 0, "a malloc_trim right after another gave memory back");
    CHECK(resident_bytes() + (size_t)BLOCKS * BLOCK / 2 > idle,
          "resident %zu bytes before a malloc_trim right after another, %zu after", idle,
          resident_bytes());
  }
  CHECK(checked, "five tries could not free %d blocks within %d ms of a malloc_trim", BLOCKS,
        SOON_MS);
  usleep(1050 * 1000);
  size_t idle = resident_bytes();
  CHECK(malloc_trim(0) == 1, "malloc_trim after the interval found nothing to give back");
  size_t trimmed = resident_bytes();
  CHECK(trimmed + (size_t)BLOCKS * BLOCK / 2 <= idle,
        "resident %zu bytes before a malloc_trim after the interval, %zu after", idle, trimmed);
}

static void print_numalloc_stats(void) { malloc_stats(); }

static void numalloc_report(void) {
  static char text[16384];
  capture_stderr(print_numalloc_stats, text, sizeof text);
  CHECK(strstr(text, "numalloc: node") != NULL, "malloc_stats printed no numalloc report: %.200s",
        text);
}

/* glibc's other names for its malloc family: a block from one name may be freed or grown
 * through the other, as under glibc, where they are the same functions. */
extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

static void libc_names(void) {
  const size_t sizes[] = {24, 1000, 100000, HUGE};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i];
    char *p = __libc_malloc(n);
    CHECK(p != NULL && malloc_usable_size(p) >= n, "__libc_malloc(%zu) = %p, usable %zu", n,
          (void *)p, p ? malloc_usable_size(p) : 0);
    if (p == NULL) continue;
    memset(p, 0x3c, n);
    char *q = realloc(p, 2 * n);
    CHECK(q != NULL && q[n - 1] == 0x3c, "realloc of a block from __libc_malloc lost it");
    free(q);
    p = malloc(n);
    memset(p, 0x4d, n);
    q = __libc_realloc(p, n + 16);
    CHECK(q != NULL && q[n - 1] == 0x4d, "__libc_realloc of a block from malloc lost it");
    __libc_free(q);
    unsigned char *z = __libc_calloc(n, 1);
    bool zero = z != NULL;
    for (size_t j = 0; z != NULL && j < n; j += 4093) zero &= z[j] == 0;
    CHECK(zero && z[n - 1] == 0, "__libc_calloc(%zu, 1) is not zeroed", n);
    free(z);
  }
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  void *a = __libc_memalign(4096, 100), *v = __libc_valloc(100), *pv = __libc_pvalloc(100);
  CHECK(a != NULL && ((uintptr_t)a & 4095) == 0, "__libc_memalign(4096) = %p", a);
  CHECK(v != NULL && ((uintptr_t)v & (page - 1)) == 0, "__libc_valloc = %p", v);
  CHECK(pv != NULL && malloc_usable_size(pv) >= page, "__libc_pvalloc(100) = %p", pv);
  free(a);
  __libc_free(v);
  free(pv);
}

/* Under NUMALLOC_POLICY=system the blocks are glibc's, and so are the answers. */
static void system_counts(void) {
  struct mallinfo2 before = mallinfo2();
  allocate_blocks();
  struct mallinfo2 with = mallinfo2();
  CHECK(with.uordblks >= before.uordblks + (size_t)BLOCKS * BLOCK,
        "glibc's in use grew from %zu to %zu for %d blocks of %d", before.uordblks, with.uordblks,
        BLOCKS, BLOCK);
  free_blocks();
  static char text[4096];
  capture_stderr(print_numalloc_stats, text, sizeof text);
  CHECK(strstr(text, "in use bytes") != NULL && strstr(text, "numalloc:") == NULL,
        "malloc_stats did not print glibc's report: %.200s", text);
}

int main(void) {
  pt_start("gnu_extensions");
  CHECK(pt_is_numalloc(), "the preload is not numalloc (this test is numalloc's only)");
  if (!pt_is_numalloc()) return pt_finish();
  if (pt_is_system_policy()) {
    system_counts();
  } else {
    numalloc_counts();
    numalloc_trim();
    numalloc_trim_in_a_loop();
    numalloc_report();
  }
  libc_names(); /* last: blocks it leaves in the bins would count in the figures above */
  return pt_finish();
}
