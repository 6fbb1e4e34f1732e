/* semantics.c: the malloc family's C and POSIX contract under the preload, one function per
 * entry point or rule: sizes and alignment, usable size, zeroing, impossible sizes, overflow,
 * bad alignments, realloc across size boundaries and failed reallocs, free(NULL), errno. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include "preload_test.h"

/* A failed realloc leaves the old block valid: the checks read it on purpose. Clang has no
 * such warning (and would warn about the unknown name). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuse-after-free"
#endif

#define KiB  ((size_t)1 << 10)
#define MiB  ((size_t)1 << 20)
#define NONE ((size_t)-1)

/* Volatile copies keep the compiler from reasoning about the impossible sizes we pass. */
static volatile size_t v_size_max = SIZE_MAX;
static volatile size_t v_ptrdiff_max = PTRDIFF_MAX;
static size_t page;

static int aligned_to(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

/* Minimum alignment the project promises for a request of `size` bytes. */
static size_t min_align(size_t size) { return size >= 16 ? 16 : 8; }

/* Allocates `size` bytes, checks alignment and usable size, and fills the usable bytes. */
static void *checked_malloc(size_t size, uint64_t tag) {
  void *p = malloc(size);
  CHECK(p != NULL, "malloc(%zu) returned NULL", size);
  if (!p) return NULL;
  CHECK(aligned_to(p, min_align(size)), "malloc(%zu)=%p not %zu-aligned", size, p, min_align(size));
  size_t usable = malloc_usable_size(p);
  CHECK(usable >= size, "malloc_usable_size=%zu < requested %zu", usable, size);
  tu_fill(p, usable, tag);
  return p;
}

static void verify_block(void *p, size_t n, uint64_t tag, const char *what) {
  size_t bad = tu_mismatch(p, n, tag);
  CHECK(bad == NONE, "%s: block %p of %zu bytes corrupted at offset %zu", what, p, n, bad);
}

static void test_malloc_zero(void) {
  enum { N = 64 };
  void *p[N];
  for (int i = 0; i < N; i++) {
    p[i] = malloc(0);
    CHECK(p[i] != NULL, "malloc(0) returned NULL (call %d)", i);
    for (int j = 0; j < i; j++) CHECK(p[i] != p[j] || !p[i], "malloc(0) returned %p twice", p[i]);
  }
  for (int i = 0; i < N; i++) free(p[i]);
}

/* Every size 1..8 KiB alive at once, so overlapping blocks would corrupt each other. */
static void test_small_sizes(void) {
  enum { N = 8192 };
  static void *p[N + 1];
  static size_t usable[N + 1];
  for (size_t s = 1; s <= N; s++) {
    p[s] = checked_malloc(s, s);
    usable[s] = p[s] ? malloc_usable_size(p[s]) : 0;
  }
  for (size_t s = 1; s <= N; s++)
    if (p[s]) verify_block(p[s], usable[s], s, "small sizes");
  for (size_t s = 1; s <= N; s += 2) free(p[s]);
  for (size_t s = 2; s <= N; s += 2) verify_block(p[s], usable[s], s, "after freeing odd sizes");
  for (size_t s = 2; s <= N; s += 2) free(p[s]);
}

/* Sizes from 8 KiB up to 64 MiB, geometric with odd neighbours, in live groups. */
static void test_large_sizes(void) {
  size_t sizes[512];
  int n = 0;
  for (size_t s = 8 * KiB; s <= 40 * MiB && n + 3 <= 512; s = s + s / 2 + 1) {
    sizes[n++] = s;
    sizes[n++] = s - 1;
    sizes[n++] = (s | 4095) + 1;
  }
  for (int start = 0; start < n; start += 8) {
    void *p[8];
    size_t usable[8];
    int end = start + 8 < n ? start + 8 : n;
    for (int i = start; i < end; i++) {
      p[i - start] = checked_malloc(sizes[i], 1000 + i);
      usable[i - start] = p[i - start] ? malloc_usable_size(p[i - start]) : 0;
    }
    for (int i = start; i < end; i++)
      if (p[i - start]) verify_block(p[i - start], usable[i - start], 1000 + i, "large sizes");
    for (int i = start; i < end; i++) free(p[i - start]);
  }
}

/* Many blocks of random sizes, freed in random order and reallocated: a quick heap churn. */
static void test_random_churn(void) {
  enum { SLOTS = 20000, ROUNDS = 5 };
  static void *p[SLOTS];
  static size_t size[SLOTS];
  static uint64_t tag[SLOTS];
  uint64_t rng = 0x1234567;
  for (int round = 0; round < ROUNDS; round++) {
    for (int i = 0; i < SLOTS; i++) {
      uint64_t r = tu_rand(&rng);
      int slot = (int)(r % SLOTS);
      if (p[slot]) {
        verify_block(p[slot], size[slot], tag[slot], "random churn");
        free(p[slot]);
      }
      size_t s = (r >> 20) % 100 < 99 ? (r >> 32) % 1024 + 1 : (r >> 32) % (256 * KiB) + 1;
      p[slot] = malloc(s);
      CHECK(p[slot] != NULL, "malloc(%zu) returned NULL", s);
      size[slot] = p[slot] ? s : 0;
      tag[slot] = r;
      if (p[slot]) tu_fill(p[slot], s, r);
    }
  }
  for (int i = 0; i < SLOTS; i++) {
    if (!p[i]) continue;
    verify_block(p[i], size[i], tag[i], "random churn end");
    free(p[i]);
    p[i] = NULL;
  }
}

static void check_zero(void *p, size_t n, const char *what) {
  size_t bad = tu_nonzero(p, n);
  CHECK(bad == NONE, "%s: %zu bytes not zero at offset %zu", what, n, bad);
}

static void test_calloc_fresh(void) {
  static const size_t sizes[] = {1,     2,      7,       8,           15,       16,
                                 17,    24,     100,     1000,        4096,     5000,
                                 65536, 100000, 1 * MiB, 3 * MiB + 5, 16 * MiB, 100 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    char *p = calloc(1, sizes[i]);
    CHECK(p != NULL, "calloc(1, %zu) returned NULL", sizes[i]);
    if (!p) continue;
    check_zero(p, sizes[i], "fresh calloc");
    free(p);
    p = calloc(sizes[i], 1);
    CHECK(p != NULL, "calloc(%zu, 1) returned NULL", sizes[i]);
    if (p) check_zero(p, sizes[i], "fresh calloc (count form)");
    free(p);
  }
  int *q = calloc(1000, 24);
  CHECK(q != NULL, "calloc(1000, 24) returned NULL");
  if (q) check_zero(q, 24000, "calloc(1000, 24)");
  free(q);
}

/* Memory dirtied and freed must come back zeroed from calloc, whatever cache it sat in. */
static void test_calloc_reuse(void) {
  static const size_t sizes[] = {8,    16,   24,    48,    64,     100,    128,     256,    1000,
                                 1024, 4096, 10000, 32768, 100000, 300000, 1 * MiB, 5 * MiB};
  enum { N = 200 };
  void *p[N];
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t s = sizes[i];
    int count = s >= MiB ? 4 : N;
    for (int round = 0; round < 3; round++) {
      for (int j = 0; j < count; j++) {
        p[j] = malloc(s);
        CHECK(p[j] != NULL, "malloc(%zu) returned NULL", s);
        if (p[j]) memset(p[j], 0xA5, malloc_usable_size(p[j]));
      }
      for (int j = 0; j < count; j++) free(p[j]);
      for (int j = 0; j < count; j++) {
        p[j] = calloc(1, s);
        CHECK(p[j] != NULL, "calloc(1, %zu) returned NULL", s);
        if (p[j]) check_zero(p[j], s, "calloc of reused memory");
        if (p[j]) memset(p[j], 0x5A, s);
      }
      for (int j = 0; j < count; j++) free(p[j]);
    }
  }
}

static void expect_enomem(void *p, const char *what, size_t a, size_t b) {
  int e = errno;
  CHECK(p == NULL, "%s(%#zx, %#zx) returned %p, want NULL", what, a, b, p);
  CHECK(e == ENOMEM, "%s(%#zx, %#zx): errno %d, want ENOMEM", what, a, b, e);
  free(p);
}

static void test_impossible_sizes(void) {
  size_t max = v_size_max, pmax = v_ptrdiff_max;
  const size_t sizes[] = {
      max,  max - 1,     max - 15,        max - 4095,      max - 2 * MiB,  pmax + 1,
      pmax, pmax - 4095, (size_t)1 << 62, (size_t)1 << 60, (size_t)1 << 56};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t s = sizes[i];
    errno = 0;
    expect_enomem(malloc(s), "malloc", s, 0);
    errno = 0;
    expect_enomem(calloc(1, s), "calloc", 1, s);
    errno = 0;
    expect_enomem(realloc(NULL, s), "realloc(NULL)", 0, s);
    errno = 0;
    expect_enomem(aligned_alloc(4096, s), "aligned_alloc", 4096, s);
    errno = 0;
    expect_enomem(memalign(MiB, s), "memalign", MiB, s);
    errno = 0;
    expect_enomem(valloc(s), "valloc", 0, s);
    if (pt_interposed(PT_PVALLOC)) {
      errno = 0;
      expect_enomem(pvalloc(s), "pvalloc", 0, s);
    }
    void *out = (void *)0x1234;
    int rc = posix_memalign(&out, 64, s);
    CHECK(rc == ENOMEM, "posix_memalign(64, %#zx) returned %d, want ENOMEM", s, rc);
    CHECK(out == (void *)0x1234, "posix_memalign(64, %#zx) changed *out to %p", s, out);
  }
  void *out = (void *)0x1234;
  int rc = posix_memalign(&out, (size_t)1 << 62, 64);
  CHECK(rc != 0, "posix_memalign(1<<62, 64) succeeded");
  CHECK(out == (void *)0x1234, "failed posix_memalign(1<<62) changed *out to %p", out);
}

static void test_calloc_overflow(void) {
  size_t max = v_size_max;
  const size_t pairs[][2] = {
      {max / 2 + 1, 2}, {2, max / 2 + 1},     {max, max}, {(size_t)1 << 32, (size_t)1 << 32},
      {max / 3 + 1, 3}, {65537, max / 65536}, {max, 2},   {(size_t)1 << 40, (size_t)1 << 30}};
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
    errno = 0;
    expect_enomem(calloc(pairs[i][0], pairs[i][1]), "calloc", pairs[i][0], pairs[i][1]);
    if (!pt_interposed(PT_REALLOCARRAY)) continue;
    errno = 0;
    expect_enomem(reallocarray(NULL, pairs[i][0], pairs[i][1]), "reallocarray(NULL)", pairs[i][0],
                  pairs[i][1]);
  }
}

static void test_reallocarray(void) {
  if (!pt_interposed(PT_REALLOCARRAY)) return;
  char *p = reallocarray(NULL, 10, 10);
  CHECK(p != NULL, "reallocarray(NULL, 10, 10) returned NULL");
  if (!p) return;
  tu_fill(p, 100, 77);
  errno = 0;
  char *q = reallocarray(p, v_size_max >> 31, v_size_max >> 31);
  int e = errno;
  CHECK(q == NULL && e == ENOMEM, "reallocarray(p, 2^33-1, 2^33-1) = %p errno %d", q, e);
  verify_block(p, 100, 77, "block after failed reallocarray");
  q = reallocarray(p, 1000, 100);
  CHECK(q != NULL, "reallocarray(p, 1000, 100) returned NULL");
  if (!q) return free(p);
  verify_block(q, 100, 77, "reallocarray growth");
  CHECK(malloc_usable_size(q) >= 100000, "reallocarray usable size %zu", malloc_usable_size(q));
  free(q);
}

static void test_bad_alignment(void) {
  const size_t bad[] = {0,  1,  2,  3,  4,   5,    6,       7,       12,       20,
                        24, 40, 48, 96, 100, 4097, MiB + 8, 3 * MiB, SIZE_MAX, SIZE_MAX / 2};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    void *out = (void *)0x5678;
    int rc = posix_memalign(&out, bad[i], 64);
    CHECK(rc == EINVAL, "posix_memalign(&p, %zu, 64) returned %d, want EINVAL", bad[i], rc);
    CHECK(out == (void *)0x5678, "posix_memalign(&p, %zu, 64) changed *out to %p", bad[i], out);
    if (rc == 0) free(out);
  }
}

typedef void *(*align_fn)(size_t alignment, size_t size);

static void *via_posix_memalign(size_t a, size_t s) {
  void *p = NULL;
  int rc = posix_memalign(&p, a, s);
  CHECK(rc == 0, "posix_memalign(%zu, %zu) returned %d", a, s, rc);
  return rc == 0 ? p : NULL;
}
static void *via_aligned_alloc(size_t a, size_t s) { return aligned_alloc(a, s); }
static void *via_memalign(size_t a, size_t s) { return memalign(a, s); }

/* For each alignment, several sizes alive at once; beyond 4 MiB a NULL is allowed. */
static void test_alignments(const char *name, align_fn fn, size_t min_alignment) {
  for (size_t a = min_alignment; a <= 32 * MiB; a *= 2) {
    const size_t sizes[] = {
        1, 8, 24, a / 2 + 1, a > 1 ? a - 1 : 2, a, a + 1, a <= MiB ? 3 * a + 7 : a + 4096, 100};
    enum { N = sizeof sizes / sizeof sizes[0] };
    void *p[N];
    for (int i = 0; i < N; i++) {
      p[i] = fn(a, sizes[i]);
      if (!p[i]) {
        CHECK(a > 4 * MiB, "%s(%zu, %zu) returned NULL", name, a, sizes[i]);
        continue;
      }
      CHECK(aligned_to(p[i], a), "%s(%zu, %zu) = %p is misaligned", name, a, sizes[i], p[i]);
      size_t usable = malloc_usable_size(p[i]);
      CHECK(usable >= sizes[i], "%s(%zu, %zu): usable size %zu", name, a, sizes[i], usable);
      tu_fill(p[i], sizes[i], a * 31 + i);
    }
    for (int i = 0; i < N; i++)
      if (p[i]) verify_block(p[i], sizes[i], a * 31 + i, name);
    for (int i = 0; i < N; i++) free(p[i]);
  }
}

static void test_posix_memalign_alignments(void) {
  test_alignments("posix_memalign", via_posix_memalign, sizeof(void *));
}
static void test_aligned_alloc_alignments(void) {
  test_alignments("aligned_alloc", via_aligned_alloc, 1);
}
static void test_memalign_alignments(void) { test_alignments("memalign", via_memalign, 1); }

/* Alignments no allocator can honour: NULL (or an aligned block), never a crash. */
static void test_huge_alignments(void) {
  const size_t aligns[] = {(size_t)1 << 40, (size_t)1 << 47, (size_t)1 << 62, (size_t)1 << 63};
  for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
    size_t a = aligns[i];
    void *out = (void *)0x1234;
    int rc = posix_memalign(&out, a, 1);
    CHECK(rc != 0 || aligned_to(out, a), "posix_memalign(%#zx, 1) = %p", a, out);
    CHECK(rc == 0 || out == (void *)0x1234, "failed posix_memalign(%#zx) changed *out", a);
    if (rc == 0) free(out);
    errno = 0;
    void *p = aligned_alloc(a, 1);
    CHECK(p == NULL || aligned_to(p, a), "aligned_alloc(%#zx, 1) = %p", a, p);
    CHECK(p != NULL || errno == ENOMEM || errno == EINVAL, "aligned_alloc(%#zx): errno %d", a,
          errno);
    free(p);
    errno = 0;
    p = memalign(a, 100);
    CHECK(p == NULL || aligned_to(p, a), "memalign(%#zx, 100) = %p", a, p);
    CHECK(p != NULL || errno == ENOMEM || errno == EINVAL, "memalign(%#zx): errno %d", a, errno);
    free(p);
  }
}

/* realloc of aligned blocks keeps the contents (the alignment need not survive). */
static void test_realloc_aligned(void) {
  const size_t aligns[] = {32, 64, 4096, 65536, 2 * MiB};
  const size_t sizes[] = {10, 5000, 300000, 3 * MiB};
  for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
    for (size_t j = 0; j < sizeof sizes / sizeof sizes[0]; j++) {
      void *p = memalign(aligns[i], sizes[j]);
      CHECK(p != NULL && aligned_to(p, aligns[i]), "memalign(%zu, %zu) = %p", aligns[i], sizes[j],
            p);
      if (!p) continue;
      tu_fill(p, sizes[j], i * 10 + j);
      for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t keep = sizes[j] < sizes[k] ? sizes[j] : sizes[k];
        void *q = realloc(p, sizes[k]);
        CHECK(q != NULL, "realloc of a %zu-aligned block to %zu returned NULL", aligns[i],
              sizes[k]);
        if (!q) break;
        size_t bad = tu_mismatch(q, keep, i * 10 + j);
        CHECK(bad == NONE, "realloc of a %zu-aligned %zu-byte block to %zu: damaged at %zu",
              aligns[i], sizes[j], sizes[k], bad);
        CHECK(malloc_usable_size(q) >= sizes[k], "usable %zu < %zu", malloc_usable_size(q),
              sizes[k]);
        q = realloc(q, sizes[j]); /* back to the original size, refilled */
        CHECK(q != NULL, "realloc back to %zu returned NULL", sizes[j]);
        if (!q) break;
        tu_fill(q, sizes[j], i * 10 + j);
        p = q;
      }
      free(p);
    }
  }
}

static void test_valloc_pvalloc(void) {
  const size_t sizes[] = {1, 100, 4095, 4096, 4097, 65539, MiB + 1, 8 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t s = sizes[i];
    void *p = valloc(s);
    CHECK(p != NULL && aligned_to(p, page), "valloc(%zu) = %p not page-aligned", s, p);
    if (p) {
      CHECK(malloc_usable_size(p) >= s, "valloc(%zu) usable %zu", s, malloc_usable_size(p));
      tu_fill(p, s, s);
      verify_block(p, s, s, "valloc");
    }
    free(p);
    if (!pt_interposed(PT_PVALLOC)) continue;
    size_t rounded = (s + page - 1) & ~(page - 1);
    p = pvalloc(s);
    CHECK(p != NULL && aligned_to(p, page), "pvalloc(%zu) = %p not page-aligned", s, p);
    if (!p) continue;
    CHECK(malloc_usable_size(p) >= rounded, "pvalloc(%zu): usable %zu < page-rounded %zu", s,
          malloc_usable_size(p), rounded);
    tu_fill(p, rounded, s + 1);
    verify_block(p, rounded, s + 1, "pvalloc");
    free(p);
  }
  void *p = valloc(0);
  CHECK(p == NULL || aligned_to(p, page), "valloc(0) = %p", p);
  free(p);
  if (pt_interposed(PT_PVALLOC)) {
    p = pvalloc(0);
    CHECK(p != NULL && aligned_to(p, page), "pvalloc(0) = %p", p);
    free(p);
  }
}

static void test_realloc_null(void) {
  const size_t sizes[] = {1, 16, 100, 5000, 300000, 3 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    void *p = realloc(NULL, sizes[i]);
    CHECK(p != NULL, "realloc(NULL, %zu) returned NULL", sizes[i]);
    if (!p) continue;
    CHECK(malloc_usable_size(p) >= sizes[i], "realloc(NULL, %zu) usable %zu", sizes[i],
          malloc_usable_size(p));
    CHECK(aligned_to(p, min_align(sizes[i])), "realloc(NULL, %zu) = %p misaligned", sizes[i], p);
    tu_fill(p, sizes[i], i);
    verify_block(p, sizes[i], i, "realloc(NULL, n)");
    free(p);
  }
}

/* One block walked up and down through small, large and huge sizes; contents kept. */
static void test_realloc_ladder(void) {
  const size_t ladder[] = {1,    8,       16,       17,       24,       100,      1000,
                           4096, 4097,    8192,     32768,    65536,    100000,   262144,
                           MiB,  MiB + 1, 4 * MiB,  16 * MiB, 40 * MiB, 16 * MiB, 4 * MiB - 1,
                           MiB,  262144,  65537,    8193,     4000,     512,      64,
                           16,   3,       48 * MiB, 24,       2 * MiB,  7};
  enum { N = sizeof ladder / sizeof ladder[0] };
  for (int chains = 1; chains <= 3; chains++) {
    void *p[3] = {NULL, NULL, NULL};
    size_t have[3] = {0, 0, 0};
    for (int step = 0; step < N; step++) {
      for (int c = 0; c < chains; c++) {
        size_t want = ladder[(step + c * 5) % N];
        void *q = realloc(p[c], want);
        CHECK(q != NULL, "realloc(%p, %zu) returned NULL", p[c], want);
        if (!q) continue;
        CHECK(aligned_to(q, min_align(want)), "realloc to %zu gave %p misaligned", want, q);
        CHECK(malloc_usable_size(q) >= want, "realloc to %zu: usable %zu", want,
              malloc_usable_size(q));
        size_t kept = have[c] < want ? have[c] : want;
        size_t bad = tu_mismatch(q, kept, 500 + c);
        CHECK(bad == NONE, "realloc %zu -> %zu lost contents at offset %zu", have[c], want, bad);
        tu_fill(q, want, 500 + c);
        p[c] = q;
        have[c] = want;
      }
    }
    for (int c = 0; c < chains; c++) free(p[c]);
  }
}

static void test_realloc_random(void) {
  enum { SLOTS = 16, STEPS = 3000 };
  void *p[SLOTS] = {0};
  size_t have[SLOTS] = {0};
  uint64_t rng = 99;
  for (int step = 0; step < STEPS; step++) {
    uint64_t r = tu_rand(&rng);
    int slot = (int)(r % SLOTS);
    size_t want = ((r >> 8) % 4 == 0) ? (size_t)1 << ((r >> 16) % 24) : (r >> 32) % 4096 + 1;
    want += (r >> 40) % 64;
    void *q = realloc(p[slot], want);
    CHECK(q != NULL, "realloc(%zu -> %zu) returned NULL", have[slot], want);
    if (!q) continue;
    size_t kept = have[slot] < want ? have[slot] : want;
    size_t bad = tu_mismatch(q, kept, slot * 7919 + 1);
    CHECK(bad == NONE, "random realloc %zu -> %zu lost contents at %zu", have[slot], want, bad);
    tu_fill(q, want, slot * 7919 + 1);
    p[slot] = q;
    have[slot] = want;
  }
  for (int i = 0; i < SLOTS; i++) free(p[i]);
}

/* A realloc that cannot be satisfied returns NULL, sets ENOMEM and leaves the block intact. */
static void test_realloc_failure(void) {
  size_t max = v_size_max, pmax = v_ptrdiff_max;
  const size_t starts[] = {24, 100, 5000, 100000, 8 * MiB};
  const size_t huge[] = {max, max - 15, max - 4095, pmax + 1, pmax, (size_t)1 << 56};
  for (size_t i = 0; i < sizeof starts / sizeof starts[0]; i++) {
    char *p = malloc(starts[i]);
    CHECK(p != NULL, "malloc(%zu) returned NULL", starts[i]);
    if (!p) continue;
    size_t usable = malloc_usable_size(p);
    tu_fill(p, starts[i], i + 4242);
    for (size_t j = 0; j < sizeof huge / sizeof huge[0]; j++) {
      errno = 0;
      void *q = realloc(p, huge[j]);
      int e = errno;
      CHECK(q == NULL, "realloc(%zu-byte block, %#zx) returned %p", starts[i], huge[j], q);
      CHECK(e == ENOMEM, "realloc(%zu-byte block, %#zx): errno %d", starts[i], huge[j], e);
      if (q) {
        p = q;
        continue;
      }
      verify_block(p, starts[i], i + 4242, "block after failed realloc");
      CHECK(malloc_usable_size(p) == usable, "failed realloc changed usable size %zu -> %zu",
            usable, malloc_usable_size(p));
    }
    p = realloc(p, starts[i] * 2);
    CHECK(p != NULL, "realloc after a failed realloc returned NULL");
    if (p) verify_block(p, starts[i], i + 4242, "realloc after failed realloc");
    free(p);
  }
}

/* Why the running section checked nothing, or NULL when it checked what it names. */
static const char *section_skipped;

/* Sizes that memory and swap together could not hold, yet well inside the address space. The
 * C library's malloc maps them and the kernel refuses the mapping (vm.overcommit_memory 0,
 * the default, refuses one that big; 2 charges it against a limit below it), so malloc
 * returns NULL with ENOMEM and the program can fall back to less; a drop-in must not hand out
 * memory the kernel would kill the program for touching. Mode 1 grants any size, to every
 * allocator. */
static void test_beyond_memory(void) {
  char mode = '0';
  FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
  if (f != NULL) {
    if (fscanf(f, " %c", &mode) != 1) mode = '0';
    fclose(f);
  }
  if (mode == '1') {
    section_skipped = "vm.overcommit_memory=1 grants any size";
    return;
  }
  struct sysinfo si;
  CHECK(sysinfo(&si) == 0, "sysinfo failed");
  size_t total = (size_t)(si.totalram + si.totalswap) * si.mem_unit;
  if (total > ((size_t)1 << 44)) { /* twice that would near the 47 address bits */
    section_skipped = "more than 16 TiB of memory and swap";
    return;
  }
  const size_t sizes[] = {total + total / 4, 2 * total, 4 * total};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t s = sizes[i];
    errno = 0;
    expect_enomem(malloc(s), "malloc", s, 0);
    errno = 0;
    expect_enomem(calloc(s / MiB, MiB), "calloc", s / MiB, MiB);
    errno = 0;
    expect_enomem(aligned_alloc(2 * MiB, s), "aligned_alloc", 2 * MiB, s);
    void *out = (void *)0x1234;
    int rc = posix_memalign(&out, 4096, s);
    CHECK(rc == ENOMEM, "posix_memalign(4096, %#zx) returned %d, want ENOMEM", s, rc);
    if (rc == 0) free(out);
    const size_t starts[] = {100, 64 * MiB};
    for (size_t j = 0; j < sizeof starts / sizeof starts[0]; j++) {
      char *p = malloc(starts[j]);
      CHECK(p != NULL, "malloc(%zu) returned NULL", starts[j]);
      if (p == NULL) continue;
      tu_fill(p, starts[j], j + 77);
      errno = 0;
      void *q = realloc(p, s);
      int e = errno;
      CHECK(q == NULL && e == ENOMEM, "realloc(%zu-byte block, %#zx) = %p, errno %d", starts[j], s,
            q, e);
      if (q == NULL) verify_block(p, starts[j], j + 77, "block after realloc beyond memory");
      free(q != NULL ? q : p);
    }
  }
}

static void test_free_null_and_cfree(void) {
  free(NULL);
  CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) = %zu", malloc_usable_size(NULL));
  if (!pt_interposed(PT_CFREE)) return;
  void (*cfree_fn)(void *) = (void (*)(void *))pt_symbol("cfree");
  cfree_fn(NULL);
  for (size_t s = 1; s < 10 * MiB; s = s * 5 + 3) {
    void *p = malloc(s);
    CHECK(p != NULL, "malloc(%zu) returned NULL", s);
    cfree_fn(p);
  }
}

/* POSIX.1-2024: free() does not change errno (glibc guarantees it since 2.33). */
static void test_free_keeps_errno(void) {
  const size_t sizes[] = {16, 1000, 100000, 4 * MiB, 64 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    void *p = malloc(sizes[i]);
    CHECK(p != NULL, "malloc(%zu) returned NULL", sizes[i]);
    memset(p, 1, sizes[i]);
    errno = 4242;
    free(p);
    CHECK(errno == 4242, "free() of a %zu-byte block changed errno to %d", sizes[i], errno);
  }
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Sections named on the command line (substrings), or all when none is named. */
static int n_only;
static char **only;

static void run(const char *name, void (*fn)(void)) {
  int wanted = n_only == 0;
  for (int i = 0; i < n_only; i++) wanted |= strstr(name, only[i]) != NULL;
  if (!wanted) return;
  long before = pt_failure_count();
  double start = now();
  section_skipped = NULL;
  fn();
  const char *outcome = pt_failure_count() != before ? "FAILED"
                        : section_skipped != NULL    ? "SKIPPED"
                                                     : "ok";
  printf("%-24s %-6s %6.2fs%s%s\n", name, outcome, now() - start,
         section_skipped != NULL ? ": " : "", section_skipped != NULL ? section_skipped : "");
}

int main(int argc, char **argv) {
  pt_start("semantics");
  n_only = argc - 1;
  only = argv + 1;
  page = (size_t)sysconf(_SC_PAGESIZE);
  run("malloc(0)", test_malloc_zero);
  run("small sizes", test_small_sizes);
  run("large sizes", test_large_sizes);
  run("random churn", test_random_churn);
  run("calloc fresh", test_calloc_fresh);
  run("calloc reuse", test_calloc_reuse);
  run("impossible sizes", test_impossible_sizes);
  run("calloc overflow", test_calloc_overflow);
  run("reallocarray", test_reallocarray);
  run("posix_memalign EINVAL", test_bad_alignment);
  run("posix_memalign aligned", test_posix_memalign_alignments);
  run("aligned_alloc aligned", test_aligned_alloc_alignments);
  run("memalign aligned", test_memalign_alignments);
  run("huge alignments", test_huge_alignments);
  run("realloc aligned", test_realloc_aligned);
  run("valloc/pvalloc", test_valloc_pvalloc);
  run("realloc(NULL, n)", test_realloc_null);
  run("realloc ladder", test_realloc_ladder);
  run("realloc random", test_realloc_random);
  run("failed realloc", test_realloc_failure);
  run("beyond memory", test_beyond_memory);
  run("free(NULL), cfree", test_free_null_and_cfree);
  run("free keeps errno", test_free_keeps_errno);
  return pt_finish();
}
