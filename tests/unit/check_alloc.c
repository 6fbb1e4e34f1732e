/* check_alloc.c: the malloc family (alloc.c) as a program calls it. Sizes and usable sizes,
 * blocks that never overlap, alignments up to 4 MiB and beyond, calloc zeroing (fresh and
 * reused memory, without touching memory the kernel zeroed), overflow and impossible sizes
 * (NULL and ENOMEM), bad alignments (EINVAL), realloc keeping contents across small, large
 * and huge and leaving the block alone when it fails, and explicit node placement. */
#include "unit.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>

static int node;

static void setup(void) {
  unit_quiet_purge();
  node = unit_home_node();
}

/* ---- sizes ---------------------------------------------------------------------------- */

/* Every block of sizes 0..5000 and some larger ones, all live at once and each filled to its
 * usable size: no block overlaps another, each is aligned to 16. */
START_TEST(blocks_fit_and_never_overlap) {
  enum { SMALL = 5001, MORE = 12 };
  static const size_t more[MORE] = {
      8191,   8192,   65536,      100000,       NA_SMALL_MAX,     NA_SMALL_MAX + 1,
      300000, NA_MiB, 5 * NA_MiB, NA_LARGE_MAX, NA_LARGE_MAX + 1, 33 * NA_MiB};
  static void *blocks[SMALL + MORE];
  static size_t sizes[SMALL + MORE];
  for (size_t i = 0; i < SMALL + MORE; i++) {
    sizes[i] = i < SMALL ? i : more[i - SMALL];
    blocks[i] = numalloc_malloc(sizes[i]);
    UNIT_REQUIRE(blocks[i] != NULL, "malloc(%zu)", sizes[i]);
    UNIT_REQUIRE((uintptr_t)blocks[i] % 16 == 0, "malloc(%zu) = %p", sizes[i], blocks[i]);
    size_t usable = numalloc_usable_size(blocks[i]);
    UNIT_REQUIRE(usable >= sizes[i], "malloc(%zu): usable %zu", sizes[i], usable);
    UNIT_REQUIRE(sizes[i] > NA_SMALL_MAX || usable == na_class_size(na_size_class(sizes[i])),
                 "malloc(%zu): usable %zu", sizes[i], usable);
    tu_fill(blocks[i], usable < 65536 ? usable : 65536, i);
    if (usable > 65536) tu_fill((char *)blocks[i] + usable - 4096, 4096, ~(uint64_t)i);
  }
  for (size_t i = 0; i < SMALL + MORE; i++) {
    size_t usable = numalloc_usable_size(blocks[i]);
    UNIT_REQUIRE(tu_mismatch(blocks[i], usable < 65536 ? usable : 65536, i) == SIZE_MAX,
                 "block %zu (%zu bytes) was overwritten", i, sizes[i]);
    if (usable > 65536)
      UNIT_REQUIRE(tu_mismatch((char *)blocks[i] + usable - 4096, 4096, ~(uint64_t)i) == SIZE_MAX,
                   "tail of block %zu overwritten", i);
    numalloc_free(blocks[i]);
  }
}
END_TEST

START_TEST(success_leaves_errno_alone) {
  const size_t sizes[] = {0, 8, 1000, 20000, 300000, 20 * NA_MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    errno = EDOM;
    void *p = numalloc_malloc(sizes[i]);
    void *q = numalloc_calloc(1, sizes[i]);
    void *r = numalloc_aligned_alloc(4096, sizes[i]);
    p = numalloc_realloc(p, sizes[i] * 2 + 1);
    ck_assert(p && q && r);
    ck_assert_int_eq(errno, EDOM);
    numalloc_free(p);
    numalloc_free(q);
    numalloc_free(r);
  }
  ck_assert_uint_eq(numalloc_usable_size(NULL), 0);
  numalloc_free(NULL);
}
END_TEST

/* ---- alignment ------------------------------------------------------------------------ */

static const size_t align_sizes[] = {1,     24,     100,    1000,       4096,       5000,
                                     65536, 100000, 300000, 3 * NA_MiB, 20 * NA_MiB};
enum { ALIGN_SIZES = sizeof align_sizes / sizeof align_sizes[0] };

static void check_aligned(void *p, size_t alignment, size_t size, const char *how) {
  UNIT_REQUIRE(p != NULL, "%s(%zu, %zu)", how, alignment, size);
  UNIT_REQUIRE((uintptr_t)p % alignment == 0, "%s(%zu, %zu) = %p", how, alignment, size, p);
  UNIT_REQUIRE(numalloc_usable_size(p) >= size, "%s(%zu, %zu): usable %zu", how, alignment, size,
               numalloc_usable_size(p));
  UNIT_REQUIRE(numalloc_node_of(p) == node, "%s(%zu, %zu): node %d", how, alignment, size,
               numalloc_node_of(p));
}

/* Every power of two from 1 to 4 MiB with sizes from 1 byte to 20 MiB, through each entry
 * point, all blocks live at once: aligned, big enough, never overlapping. */
START_TEST(alignments_up_to_4mib) {
  enum { ALIGNS = 23, COUNT = ALIGNS * ALIGN_SIZES * 3 };
  static void *blocks[COUNT];
  size_t n = 0;
  for (size_t a = 1; a <= 4 * NA_MiB; a <<= 1)
    for (size_t i = 0; i < ALIGN_SIZES; i++) {
      size_t size = align_sizes[i];
      void *p = NULL;
      if (a >= sizeof(void *)) {
        ck_assert_int_eq(numalloc_posix_memalign(&p, a, size), 0);
        check_aligned(p, a, size, "posix_memalign");
      } else {
        p = numalloc_malloc(size);
      }
      blocks[n++] = p;
      blocks[n++] = numalloc_aligned_alloc(a, size);
      check_aligned(blocks[n - 1], a, size, "aligned_alloc");
      blocks[n++] = numalloc_memalign(a, size);
      check_aligned(blocks[n - 1], a, size, "memalign");
    }
  ck_assert_uint_eq(n, COUNT);
  for (size_t i = 0; i < n; i++) {
    size_t size = align_sizes[(i / 3) % ALIGN_SIZES];
    tu_fill(blocks[i], size < 256 ? size : 256, i);
    if (size > 256) ((char *)blocks[i])[size - 1] = (char)i;
  }
  for (size_t i = 0; i < n; i++) {
    size_t size = align_sizes[(i / 3) % ALIGN_SIZES];
    UNIT_REQUIRE(tu_mismatch(blocks[i], size < 256 ? size : 256, i) == SIZE_MAX &&
                     (size <= 256 || ((char *)blocks[i])[size - 1] == (char)i),
                 "block %zu overwritten", i);
    numalloc_free(blocks[i]);
  }
}
END_TEST

START_TEST(page_aligned_entry_points) {
  const size_t sizes[] = {0, 1, 4095, 4096, 4097, 100000, 20 * NA_MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    void *v = numalloc_valloc(sizes[i]);
    check_aligned(v, NA_PAGE_SIZE, sizes[i], "valloc");
    void *p = numalloc_pvalloc(sizes[i]);
    size_t rounded = na_align_up(sizes[i] == 0 ? 1 : sizes[i], NA_PAGE_SIZE);
    check_aligned(p, NA_PAGE_SIZE, rounded, "pvalloc");
    memset(p, 1, rounded);
    numalloc_free(v);
    numalloc_free(p);
  }
}
END_TEST

/* memalign, like glibc, rounds an alignment that is not a power of two up to one. */
START_TEST(memalign_rounds_alignment_up) {
  void *p = numalloc_memalign(24, 10);
  check_aligned(p, 32, 10, "memalign");
  void *q = numalloc_memalign(3000, 10);
  check_aligned(q, 4096, 10, "memalign");
  void *r = numalloc_memalign(0, 10);
  ck_assert_ptr_nonnull(r);
  numalloc_free(p);
  numalloc_free(q);
  numalloc_free(r);
}
END_TEST

START_TEST(bad_alignments_are_refused) {
  const size_t bad[] = {0, 1, 2, 4, 3, 12, 24, 48, 4097, ((size_t)1 << 20) + 1};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    void *p = (void *)0x1234;
    errno = EDOM;
    ck_assert_int_eq(numalloc_posix_memalign(&p, bad[i], 100), EINVAL);
    ck_assert_ptr_eq(p, (void *)0x1234);
    ck_assert_int_eq(errno, EDOM); /* posix_memalign returns the error, errno stays */
  }
  const size_t not_power[] = {0, 3, 24, 4097};
  for (size_t i = 0; i < sizeof not_power / sizeof not_power[0]; i++) {
    errno = 0;
    ck_assert_ptr_null(numalloc_aligned_alloc(not_power[i], 100));
    ck_assert_int_eq(errno, EINVAL);
  }
  errno = 0;
  ck_assert_ptr_null(numalloc_memalign(SIZE_MAX, 10));
  ck_assert_int_eq(errno, EINVAL);
}
END_TEST

/* Alignments so large that no block can have them fail cleanly: NULL and ENOMEM. */
START_TEST(impossible_alignments_fail_cleanly) {
  const size_t sizes[] = {1, 4096, (size_t)1 << 40, (size_t)1 << 62};
  for (int shift = 47; shift <= 63; shift += 8)
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      size_t a = (size_t)1 << shift;
      errno = 0;
      ck_assert_ptr_null(numalloc_aligned_alloc(a, sizes[i]));
      ck_assert_int_eq(errno, ENOMEM);
      void *p = NULL;
      ck_assert_int_eq(numalloc_posix_memalign(&p, a, sizes[i]), ENOMEM);
      errno = 0;
      ck_assert_ptr_null(numalloc_memalign(a, sizes[i]));
      ck_assert_int_eq(errno, ENOMEM); /* a power of two, so not a bad alignment: too big */
    }
}
END_TEST

/* aligned_alloc(2^63, 2^63 - 1) once overflowed the huge segment's size to 0 and wrote a
 * header into unmapped memory. */
START_TEST(alignment_2_63_fails_cleanly) {
  size_t a = (size_t)1 << 63;
  errno = 0;
  ck_assert_ptr_null(numalloc_aligned_alloc(a, a - 1));
  ck_assert_int_eq(errno, ENOMEM);
  void *p = NULL;
  ck_assert_int_eq(numalloc_posix_memalign(&p, a, a - 1), ENOMEM);
}
END_TEST

/* Alignments above the 32 MiB of a segment (huge blocks once got only 32 MiB), kept when
 * realloc has to move the block. */
START_TEST(alignments_above_32mib) {
  const size_t aligns[] = {64 * NA_MiB, 128 * NA_MiB, 256 * NA_MiB};
  void *blocks[3][4];
  for (int a = 0; a < 3; a++)
    for (int i = 0; i < 4; i++) {
      blocks[a][i] = numalloc_aligned_alloc(aligns[a], 100);
      ck_assert_ptr_nonnull(blocks[a][i]);
    }
  for (int a = 0; a < 3; a++)
    for (int i = 0; i < 4; i++)
      ck_assert_msg((uintptr_t)blocks[a][i] % aligns[a] == 0,
                    "aligned_alloc(%zu MiB, 100) = %p, aligned to %zu MiB only", aligns[a] / NA_MiB,
                    blocks[a][i], ((uintptr_t)blocks[a][i] & -(uintptr_t)blocks[a][i]) / NA_MiB);
  for (int a = 0; a < 3; a++) {
    char *p = blocks[a][0];
    na_segment_t *seg = na_segment_lookup(p);
    char *end = (char *)seg + seg->size;
    void *guard = mmap(end, NA_PAGE_SIZE, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    tu_fill(p, 100, 6);
    char *q = numalloc_realloc(p, 100 * NA_MiB);
    ck_assert_ptr_nonnull(q);
    ck_assert_uint_eq((uintptr_t)q % aligns[a], 0);
    ck_assert_uint_eq(tu_mismatch(q, 100, 6), SIZE_MAX);
    blocks[a][0] = q;
    if (guard == end) munmap(guard, NA_PAGE_SIZE);
  }
  for (int a = 0; a < 3; a++)
    for (int i = 0; i < 4; i++) numalloc_free(blocks[a][i]);
}
END_TEST

/* ---- calloc --------------------------------------------------------------------------- */

/* calloc's memory reads as zero whether it is fresh, a reused small block, a reused large
 * span or a span purged and handed out again. */
START_TEST(calloc_zeroes_fresh_and_reused_memory) {
  const size_t sizes[] = {1,     16,           24,     100,        1000,       4000,
                          70000, NA_SMALL_MAX, 300000, 3 * NA_MiB, 20 * NA_MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t size = sizes[i];
    enum { N = 64 };
    void *dirty[N];
    size_t n = size < 100000 ? N : 2;
    for (size_t k = 0; k < n; k++) {
      dirty[k] = numalloc_malloc(size);
      memset(dirty[k], 0xa5, numalloc_usable_size(dirty[k]));
    }
    for (size_t k = 0; k < n; k++) numalloc_free(dirty[k]);
    for (size_t k = 0; k < n; k++) {
      dirty[k] = numalloc_calloc(1, size);
      UNIT_REQUIRE(dirty[k] != NULL, "calloc(1, %zu)", size);
      UNIT_REQUIRE(tu_nonzero(dirty[k], size) == SIZE_MAX, "calloc(1, %zu) #%zu: byte %zu set",
                   size, k, tu_nonzero(dirty[k], size));
      memset(dirty[k], 0x5a, size);
    }
    for (size_t k = 0; k < n; k++) numalloc_free(dirty[k]);
  }
  numalloc_collect(); /* purged spans come back zero without a memset */
  void *z = numalloc_calloc(3, NA_MiB);
  ck_assert_uint_eq(tu_nonzero(z, 3 * NA_MiB), SIZE_MAX);
  numalloc_free(z);
  void *e = numalloc_calloc(0, 0);
  ck_assert_ptr_nonnull(e);
  numalloc_free(e);
}
END_TEST

/* Blocks freed in a page that still carves fresh blocks: calloc must clear the reused ones. */
START_TEST(calloc_in_a_page_with_reused_blocks) {
  enum { N = 2000 };
  static char *blocks[N];
  for (int i = 0; i < N; i++) {
    blocks[i] = numalloc_malloc(48);
    memset(blocks[i], 0xff, 48);
  }
  for (int i = 0; i < N; i += 2) numalloc_free(blocks[i]);
  for (int i = 0; i < N; i += 2) {
    blocks[i] = numalloc_calloc(1, 48);
    UNIT_REQUIRE(tu_nonzero(blocks[i], 48) == SIZE_MAX, "calloc #%d", i);
  }
  for (int i = 0; i < 4 * N; i++) { /* and the fresh ones after them */
    char *p = numalloc_calloc(6, 8);
    UNIT_REQUIRE(tu_nonzero(p, 48) == SIZE_MAX, "calloc #%d", i);
    memset(p, 0xff, 48);
  }
}
END_TEST

/* calloc takes the block freed last, as malloc would, and clears it: up to 1 KiB on the fast
 * path, above it on the slow path, which takes the bin's block before its page's. */
START_TEST(calloc_clears_the_block_freed_last) {
  static const size_t sizes[] = {1, 48, 1000, 1024, 1025, 4000, 20000, 60000};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    char *dirty = numalloc_malloc(sizes[i]);
    memset(dirty, 0xa5, sizes[i]);
    numalloc_free(dirty);
    char *p = numalloc_calloc(1, sizes[i]);
    ck_assert_ptr_eq(p, dirty);
    ck_assert_uint_eq(tu_nonzero(p, sizes[i]), SIZE_MAX);
    numalloc_free(p);
  }
}
END_TEST

/* calloc writes nothing of a small class's fresh blocks (memory the kernel zeroed): of a
 * 100,000-byte block only the OS page its free list's link went to is resident. Those blocks
 * freed dirty and taken again come back cleared. */
START_TEST(calloc_leaves_fresh_small_blocks_untouched) {
  enum { N = 24, SIZE = 100000 };
  na_options.hugepages = NA_HUGEPAGES_HUGE_BLOCKS; /* small OS pages, so residency is exact */
  char *blocks[N];
  for (int i = 0; i < N; i++) {
    blocks[i] = numalloc_calloc(1, SIZE);
    ck_assert_ptr_nonnull(blocks[i]);
  }
  for (int i = 0; i < N; i++) {
    ck_assert(!na_segment_of_aligned(blocks[i])->huge_pages);
    UNIT_REQUIRE(unit_resident_pages(blocks[i], SIZE) <= 1, "block %d: %ld pages resident", i,
                 unit_resident_pages(blocks[i], SIZE));
  }
  for (int i = 0; i < N; i++) {
    UNIT_REQUIRE(tu_nonzero(blocks[i], SIZE) == SIZE_MAX, "fresh block %d", i);
    memset(blocks[i], 0xa5, SIZE);
  }
  for (int i = 0; i < N; i++) numalloc_free(blocks[i]);
  for (int i = 0; i < N; i++) {
    blocks[i] = numalloc_calloc(1, SIZE);
    UNIT_REQUIRE(tu_nonzero(blocks[i], SIZE) == SIZE_MAX, "reused block %d: byte %zu set", i,
                 tu_nonzero(blocks[i], SIZE));
  }
  for (int i = 0; i < N; i++) numalloc_free(blocks[i]);
}
END_TEST

/* A block calloc takes again, freed dirty by a user that touched only its first and last
 * OS pages: the pages never touched read as zero as they are and stay out of memory, the
 * touched ones are cleared. A block of 4 MiB asks the kernel at once; blocks of 1 MiB once a
 * thread's clears have found such pages (within a few MiB of clears), and from then on. */
static long calloc_again_after_a_sparse_user(size_t size) {
  char *p = numalloc_malloc(size);
  ck_assert(!na_segment_of_aligned(p)->huge_pages);
  memset(p, 0x5a, NA_PAGE_SIZE);
  memset(p + size - NA_PAGE_SIZE, 0x5a, NA_PAGE_SIZE);
  numalloc_free(p);
  char *q = numalloc_calloc(1, size);
  ck_assert_ptr_eq(q, p);                       /* the dirty span, first */
  long resident = unit_resident_pages(q, size); /* before reading maps the zero page */
  UNIT_REQUIRE(tu_nonzero(q, size) == SIZE_MAX, "byte %zu set", tu_nonzero(q, size));
  numalloc_free(q);
  numalloc_collect(); /* given back: the next user starts from untouched pages */
  return resident;
}

START_TEST(calloc_leaves_pages_the_last_user_never_touched) {
  na_options.hugepages = NA_HUGEPAGES_HUGE_BLOCKS; /* small OS pages, so residency is exact */
  char *keep = numalloc_malloc(300 * NA_KiB);      /* keeps the segment mapped */
  ck_assert_int_eq(calloc_again_after_a_sparse_user(4 * NA_MiB), 2);
  int first_lazy = -1;
  for (int i = 0; i < 24; i++) {
    long resident = calloc_again_after_a_sparse_user(NA_MiB);
    if (first_lazy < 0 && resident == 2) first_lazy = i;
    if (first_lazy >= 0) UNIT_REQUIRE(resident == 2, "round %d: %ld pages resident", i, resident);
  }
  UNIT_REQUIRE(first_lazy >= 0 && first_lazy < 12, "first round with 2 pages resident: %d",
               first_lazy);
  numalloc_free(keep);
}
END_TEST

/* An aligned small request takes the fast path's block of a class whose blocks are all
 * aligned: the block freed last, aligned. */
START_TEST(aligned_requests_take_the_block_freed_last) {
  static const size_t alignments[] = {32, 64, 256, 4096};
  for (size_t i = 0; i < sizeof alignments / sizeof alignments[0]; i++) {
    size_t a = alignments[i];
    void *p = NULL, *q = NULL;
    ck_assert_int_eq(numalloc_posix_memalign(&p, a, a / 2 + 1), 0);
    numalloc_free(p);
    ck_assert_int_eq(numalloc_posix_memalign(&q, a, a / 2 + 1), 0);
    ck_assert_ptr_eq(q, p);
    ck_assert_uint_eq((uintptr_t)q % a, 0);
    numalloc_free(q);
  }
}
END_TEST

/* Resident pages of a block past the first 2 MiB of its segment (the header's page may come
 * in as a transparent huge page where THP is "always"). */
static long resident_after_header(char *p, size_t size) {
  char *from = (char *)na_segment_lookup(p) + 2 * NA_MiB;
  if (from < p) from = p;
  return unit_resident_pages(from, size - (size_t)(from - p));
}

/* Memory the kernel has just zeroed is not written again: a 64 MiB calloc does not become
 * resident. */
START_TEST(calloc_does_not_touch_fresh_memory) {
  size_t before = unit_rss_bytes();
  char *huge = numalloc_calloc(64, NA_MiB);
  char *large = numalloc_calloc(8, NA_MiB);
  ck_assert_ptr_nonnull(huge);
  ck_assert_ptr_nonnull(large);
  ck_assert_int_le(resident_after_header(huge, 64 * NA_MiB), 16);
  ck_assert_int_le(resident_after_header(large, 8 * NA_MiB), 16);
  ck_assert_uint_lt(unit_rss_bytes(), before + 8 * NA_MiB);
  numalloc_free(huge);
  numalloc_free(large);
}
END_TEST

/* ---- impossible sizes ----------------------------------------------------------------- */

static void expect_enomem(void *p, const char *what) {
  ck_assert_msg(p == NULL, "%s did not fail", what);
  ck_assert_msg(errno == ENOMEM, "%s: errno %d", what, errno);
}

START_TEST(impossible_sizes_give_enomem) {
  const size_t huge[] = {SIZE_MAX,    SIZE_MAX - 4096, (size_t)PTRDIFF_MAX + 1,
                         PTRDIFF_MAX, (size_t)1 << 46, ((size_t)1 << 47) + 12345};
  for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
    errno = 0;
    expect_enomem(numalloc_malloc(huge[i]), "malloc");
    errno = 0;
    expect_enomem(numalloc_calloc(1, huge[i]), "calloc");
    errno = 0;
    expect_enomem(numalloc_aligned_alloc(4096, huge[i]), "aligned_alloc");
    errno = 0;
    expect_enomem(numalloc_valloc(huge[i]), "valloc");
    errno = 0;
    expect_enomem(numalloc_pvalloc(huge[i]), "pvalloc");
    errno = 0;
    expect_enomem(numalloc_memalign(64, huge[i]), "memalign");
    void *p = (void *)0x1234;
    errno = EDOM;
    ck_assert_int_eq(numalloc_posix_memalign(&p, 64, huge[i]), ENOMEM);
    ck_assert_ptr_eq(p, (void *)0x1234);
    ck_assert_int_eq(errno, EDOM);
  }
}
END_TEST

START_TEST(multiplication_overflow_gives_enomem) {
  const size_t pairs[][2] = {{SIZE_MAX, 2},
                             {2, SIZE_MAX},
                             {(size_t)1 << 32, (size_t)1 << 32},
                             {SIZE_MAX / 3 + 1, 3},
                             {SIZE_MAX, SIZE_MAX}};
  char *keep = numalloc_malloc(100);
  tu_fill(keep, 100, 3);
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
    errno = 0;
    expect_enomem(numalloc_calloc(pairs[i][0], pairs[i][1]), "calloc");
    errno = 0;
    expect_enomem(numalloc_reallocarray(keep, pairs[i][0], pairs[i][1]), "reallocarray");
    ck_assert_uint_eq(tu_mismatch(keep, 100, 3), SIZE_MAX);
    if (node >= 0) {
      errno = 0;
      expect_enomem(numalloc_calloc_onnode(pairs[i][0], pairs[i][1], node), "calloc_onnode");
    }
  }
  char *grown = numalloc_reallocarray(keep, 50, 4);
  ck_assert_ptr_nonnull(grown);
  ck_assert_uint_eq(tu_mismatch(grown, 100, 3), SIZE_MAX);
  numalloc_free(grown);
}
END_TEST

/* ---- realloc -------------------------------------------------------------------------- */

START_TEST(realloc_keeps_contents_across_kinds) {
  const size_t sizes[] = {
      1,      10,         100,         1000,         4000,       70000, NA_SMALL_MAX,
      300000, 5 * NA_MiB, 40 * NA_MiB, 100 * NA_MiB, 2 * NA_MiB, 60000, 500,
      17,     0,          33};
  char *p = numalloc_realloc(NULL, sizes[0]);
  ck_assert_ptr_nonnull(p);
  tu_fill(p, sizes[0], 1);
  size_t valid = sizes[0];
  for (size_t i = 1; i < sizeof sizes / sizeof sizes[0]; i++) {
    char *q = numalloc_realloc(p, sizes[i]);
    if (sizes[i] == 0 && q == NULL) { /* allowed: the block was freed */
      p = numalloc_malloc(1);
      valid = 0;
      continue;
    }
    ck_assert_msg(q != NULL, "realloc %zu -> %zu", sizes[i - 1], sizes[i]);
    size_t keep = valid < sizes[i] ? valid : sizes[i];
    ck_assert_msg(tu_mismatch(q, keep, 1) == SIZE_MAX, "realloc %zu -> %zu lost byte %zu",
                  sizes[i - 1], sizes[i], tu_mismatch(q, keep, 1));
    ck_assert_uint_ge(numalloc_usable_size(q), sizes[i]);
    tu_fill(q, sizes[i], 1);
    valid = sizes[i];
    p = q;
  }
  numalloc_free(p);
  numalloc_collect();
  ck_assert_uint_le(na_arena_mapped_bytes(node), NA_SEGMENT_SIZE);
}
END_TEST

/* A small block stays where it is while the new size fits and uses at least half of it. */
START_TEST(realloc_within_the_block_stays) {
  char *p = numalloc_malloc(100); /* 112 usable */
  ck_assert_ptr_eq(numalloc_realloc(p, 112), p);
  ck_assert_ptr_eq(numalloc_realloc(p, 60), p);
  char *q = numalloc_realloc(p, 20);
  ck_assert_ptr_ne(q, p);
  ck_assert_uint_lt(numalloc_usable_size(q), 112);
  numalloc_free(q);
}
END_TEST

/* Growth by small steps: a move leaves a quarter more room, so the next steps stay; growth by
 * a factor gets the size class of what it asked for, no more. */
START_TEST(realloc_by_small_steps_leaves_room) {
  char *p = numalloc_malloc(8192);
  ck_assert_uint_eq(numalloc_usable_size(p), 8192);
  tu_fill(p, 8192, 3);
  size_t size = 8192 + 256;
  char *q = numalloc_realloc(p, size);
  ck_assert_ptr_ne(q, p);
  ck_assert_uint_eq(tu_mismatch(q, 8192, 3), SIZE_MAX);
  ck_assert_uint_ge(numalloc_usable_size(q), size + size / 4);
  int moves = 0;
  for (; size + 256 <= 8448 + 8448 / 4; size += 256) {
    char *r = numalloc_realloc(q, size + 256);
    moves += r != q;
    q = r;
  }
  ck_assert_int_eq(moves, 0);
  size_t usable = numalloc_usable_size(q);
  char *doubled = numalloc_realloc(q, 2 * usable);
  ck_assert_uint_lt(numalloc_usable_size(doubled), 2 * usable + 2 * usable / 4);
  numalloc_free(doubled);
}
END_TEST

/* The slices right after a large block's span taken, so that growing past the span has to
 * move: large blocks of the free span's size until one lands there (the caller frees them). */
#define BLOCKERS_MAX 256
typedef struct blockers {
  void *p[BLOCKERS_MAX];
  int count;
} blockers;

static void block_the_slices_after(void *p, blockers *b) {
  na_segment_t *seg = na_segment_lookup(p);
  na_page_t *span = na_page_of(seg, p);
  size_t next = (size_t)(span - seg->slices) + span->slice_count;
  while (next < NA_SLICES_PER_SEGMENT && seg->slices[next].kind == NA_SPAN_FREE) {
    ck_assert_int_lt(b->count, BLOCKERS_MAX);
    b->p[b->count] = numalloc_malloc((size_t)seg->slices[next].slice_count << NA_SLICE_SHIFT);
    ck_assert_ptr_nonnull(b->p[b->count++]);
  }
}

static void free_blockers(blockers *b) {
  while (b->count > 0) numalloc_free(b->p[--b->count]);
}

static size_t span_bytes(void *p) {
  return (size_t)na_page_of(na_segment_lookup(p), p)->slice_count << NA_SLICE_SHIFT;
}

/* A large block's usable size is what was asked for. One that moves to grow a second time
 * gets a span reaching the next power of two, so the next steps stay in place; the room is
 * not part of the block (nothing touches it), and shrinking gives the slices back. */
START_TEST(realloc_growth_keeps_room_to_grow_in_place) {
  char *p = numalloc_malloc(300000);
  ck_assert_uint_eq(numalloc_usable_size(p), 300000);
  tu_fill(p, 300000, 7);
  static blockers taken;
  block_the_slices_after(p, &taken);
  char *q = numalloc_realloc(p, 400000); /* the first growth: the size asked for */
  ck_assert_ptr_ne(q, p);
  ck_assert_uint_eq(numalloc_usable_size(q), 400000);
  ck_assert_uint_eq(span_bytes(q), na_align_up(400000, NA_SLICE_SIZE));
  ck_assert_uint_eq(tu_mismatch(q, 300000, 7), SIZE_MAX);
  tu_fill(q, 400000, 8);
  block_the_slices_after(q, &taken);
  char *r = numalloc_realloc(q, 600000); /* grown before: room up to 1 MiB */
  ck_assert_ptr_ne(r, q);
  ck_assert_uint_eq(span_bytes(r), NA_MiB);
  ck_assert_uint_eq(numalloc_usable_size(r), 600000);
  ck_assert_uint_eq(tu_mismatch(r, 400000, 8), SIZE_MAX);
  ck_assert_ptr_eq(numalloc_realloc(r, 900000), r);
  ck_assert_ptr_eq(numalloc_realloc(r, NA_MiB), r);
  ck_assert_uint_eq(numalloc_usable_size(r), NA_MiB);
  ck_assert_ptr_eq(numalloc_realloc(r, 200000), r); /* shrinks in place to four slices */
  ck_assert_uint_eq(span_bytes(r), 4 * NA_SLICE_SIZE);
  ck_assert_uint_eq(numalloc_usable_size(r), 200000);
  ck_assert_uint_eq(tu_mismatch(r, 200000, 8), SIZE_MAX);
  numalloc_free(r);
  free_blockers(&taken);
}
END_TEST

/* realloc of a pointer inside a large block (as free of one) is named, never a resize that
 * would let the block overlap what follows it. */
START_TEST(realloc_inside_a_large_block_aborts) {
  char *p = numalloc_malloc(NA_MiB);
  unit_silence_stderr();
  numalloc_realloc(p + 4096, 2 * NA_MiB);
}
END_TEST

/* As under glibc, jemalloc and tcmalloc: a block resized to nothing is freed, and NULL says
 * so; errno is left alone, since nothing failed. */
START_TEST(realloc_to_zero_frees_the_block) {
  const size_t sizes[] = {16, 5000, 300000, 40 * NA_MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    char *p = numalloc_malloc(sizes[i]);
    tu_fill(p, sizes[i], 9);
    errno = EDOM;
    ck_assert_ptr_null(numalloc_realloc(p, 0));
    ck_assert_int_eq(errno, EDOM);
    char *q = numalloc_malloc(sizes[i]);
    ck_assert_ptr_nonnull(q);
    if (i == 0) ck_assert_ptr_eq(q, p); /* the small block freed last is handed out first */
    errno = EDOM;
    ck_assert_ptr_null(numalloc_reallocarray(q, 0, 8));
    ck_assert_int_eq(errno, EDOM);
  }
}
END_TEST

/* The proof that it was freed, for every kind of block: freeing it again is a double free. */
static const size_t zero_realloc_sizes[] = {100, 5000, 300000, 40 * NA_MiB};

START_TEST(free_after_realloc_to_zero_aborts) {
  char *p = numalloc_malloc(zero_realloc_sizes[_i]);
  ck_assert_ptr_null(numalloc_realloc(p, 0));
  numalloc_free(p);
}
END_TEST

START_TEST(failed_realloc_leaves_the_block) {
  const size_t sizes[] = {100, 5000, 300000, 40 * NA_MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    char *p = numalloc_malloc(sizes[i]);
    tu_fill(p, sizes[i], 5);
    errno = 0;
    expect_enomem(numalloc_realloc(p, SIZE_MAX), "realloc(SIZE_MAX)");
    errno = 0;
    expect_enomem(numalloc_realloc(p, PTRDIFF_MAX), "realloc(PTRDIFF_MAX)");
    ck_assert_uint_eq(tu_mismatch(p, sizes[i], 5), SIZE_MAX);
    ck_assert_uint_ge(numalloc_usable_size(p), sizes[i]);

    if (sizes[i] > NA_LARGE_MAX) { /* a huge block: no room to grow in place either */
      na_segment_t *seg = na_segment_lookup(p);
      char *end = (char *)seg + seg->size;
      mmap(end, NA_PAGE_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    }
    na_os_inject_map_failures(1000); /* and when the kernel has no memory to give */
    errno = 0;
    expect_enomem(numalloc_realloc(p, 200 * NA_MiB), "realloc with mmap failing");
    na_os_inject_map_failures(0);
    ck_assert_uint_eq(tu_mismatch(p, sizes[i], 5), SIZE_MAX);
    char *q = numalloc_realloc(p, 200 * NA_MiB);
    ck_assert_ptr_nonnull(q);
    ck_assert_uint_eq(tu_mismatch(q, sizes[i], 5), SIZE_MAX);
    numalloc_free(q);
  }
}
END_TEST

/* ---- explicit placement --------------------------------------------------------------- */

START_TEST(onnode_places_on_the_node) {
  if (!numalloc_node_has_memory(0)) return; /* node 0 without memory: nothing to place */
  const size_t sizes[] = {0, 10, 1000, 70000, 300000, 5 * NA_MiB, 40 * NA_MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    char *p = numalloc_malloc_onnode(sizes[i], 0);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(numalloc_node_of(p), 0);
    ck_assert_uint_ge(numalloc_usable_size(p), sizes[i]);
    memset(p, 0xee, sizes[i]);
    char *z = numalloc_calloc_onnode(1, sizes[i], 0);
    ck_assert_ptr_nonnull(z);
    ck_assert_int_eq(numalloc_node_of(z), 0);
    ck_assert_uint_eq(tu_nonzero(z, sizes[i]), SIZE_MAX);
    char *a = numalloc_aligned_alloc_onnode(4096, sizes[i], 0);
    check_aligned(a, 4096, sizes[i], "aligned_alloc_onnode");
    ck_assert_int_eq(numalloc_node_of(a), 0);
    numalloc_free(p);
    memset(z, 0xee, sizes[i]);
    numalloc_free(z);
    numalloc_free(a);
  }
}
END_TEST

START_TEST(onnode_refuses_unknown_nodes) {
  int bad[] = {-1, -2, 9, NA_MAX_NODES, NA_MAX_NODES + 1, 1000, numalloc_node_count()};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (numalloc_node_allowed(bad[i]) && numalloc_node_has_memory(bad[i])) continue;
    errno = 0;
    ck_assert_ptr_null(numalloc_malloc_onnode(100, bad[i]));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(numalloc_calloc_onnode(1, 100, bad[i]));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(numalloc_aligned_alloc_onnode(64, 100, bad[i]));
    ck_assert_int_eq(errno, EINVAL);
  }
  errno = 0;
  ck_assert_ptr_null(numalloc_aligned_alloc_onnode(24, 100, node));
  ck_assert_int_eq(errno, EINVAL);
  errno = 0;
  ck_assert_ptr_null(numalloc_malloc_onnode(SIZE_MAX, node));
  ck_assert_int_eq(errno, ENOMEM);
}
END_TEST

int main(int argc, char **argv) {
  (void)argc;
  Suite *s = suite_create("alloc");
  TCase *tc = unit_tcase(s, "sizes", 20);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, blocks_fit_and_never_overlap);
  tcase_add_test(tc, success_leaves_errno_alone);
  tcase_add_test(tc, impossible_sizes_give_enomem);
  tcase_add_test(tc, multiplication_overflow_gives_enomem);
  tc = unit_tcase(s, "alignment", 20);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, alignments_up_to_4mib);
  tcase_add_test(tc, page_aligned_entry_points);
  tcase_add_test(tc, memalign_rounds_alignment_up);
  tcase_add_test(tc, bad_alignments_are_refused);
  tcase_add_test(tc, impossible_alignments_fail_cleanly);
  tcase_add_test(tc, alignment_2_63_fails_cleanly);
  tcase_add_test(tc, alignments_above_32mib);
  tc = unit_tcase(s, "calloc", 20);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, calloc_zeroes_fresh_and_reused_memory);
  tcase_add_test(tc, calloc_in_a_page_with_reused_blocks);
  tcase_add_test(tc, calloc_clears_the_block_freed_last);
  tcase_add_test(tc, calloc_leaves_fresh_small_blocks_untouched);
  tcase_add_test(tc, calloc_leaves_pages_the_last_user_never_touched);
  tcase_add_test(tc, aligned_requests_take_the_block_freed_last);
  tcase_add_test(tc, calloc_does_not_touch_fresh_memory);
  tc = unit_tcase(s, "realloc", 20);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, realloc_keeps_contents_across_kinds);
  tcase_add_test(tc, realloc_within_the_block_stays);
  tcase_add_test(tc, realloc_by_small_steps_leaves_room);
  tcase_add_test(tc, realloc_growth_keeps_room_to_grow_in_place);
  tcase_add_test(tc, failed_realloc_leaves_the_block);
  tcase_add_test(tc, realloc_to_zero_frees_the_block);
  tcase_add_loop_test_raise_signal(tc, free_after_realloc_to_zero_aborts, SIGABRT, 0,
                                   sizeof zero_realloc_sizes / sizeof zero_realloc_sizes[0]);
  tcase_add_test_raise_signal(tc, realloc_inside_a_large_block_aborts, SIGABRT);
  tc = unit_tcase(s, "onnode", 20);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, onnode_places_on_the_node);
  tcase_add_test(tc, onnode_refuses_unknown_nodes);
  return unit_run(s, argv);
}
