/* check_bootstrap.c: the start-up buffer (bootstrap.c). It hands out aligned, disjoint
 * blocks from a static buffer, even to threads racing for it, refuses what it cannot hold
 * with ENOMEM, and its blocks are never reused: free ignores them, usable size reports
 * their size, realloc copies them out into ordinary blocks. */
#include "unit.h"

#include <pthread.h>
#include <stdlib.h>

START_TEST(allocator_is_started) {
  ck_assert(na_ensure_init());
  ck_assert_int_eq(atomic_load(&na_init_state), NA_INIT_DONE);
}
END_TEST

START_TEST(blocks_are_aligned_and_sized) {
  const size_t aligns[] = {1, 8, 16, 32, 64, 256, 4096};
  for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
    void *p = na_bootstrap_alloc(100, aligns[i]);
    ck_assert_ptr_nonnull(p);
    size_t want = aligns[i] < 16 ? 16 : aligns[i];
    ck_assert_uint_eq((uintptr_t)p % want, 0);
    ck_assert(na_bootstrap_owns(p));
    ck_assert(na_bootstrap_owns((char *)p + 99));
    ck_assert_uint_eq(na_bootstrap_usable(p), 100);
    ck_assert_uint_eq(numalloc_usable_size(p), 100);
    ck_assert_int_eq(numalloc_node_of(p), -1);
    ck_assert_ptr_null(na_segment_lookup(p));
  }
  int local;
  void *glibc = malloc(16);
  ck_assert(!na_bootstrap_owns(&local));
  ck_assert(!na_bootstrap_owns(glibc));
  ck_assert(!na_bootstrap_owns(NULL));
  free(glibc);
}
END_TEST

START_TEST(impossible_requests_fail_with_enomem) {
  errno = 0;
  ck_assert_ptr_null(na_bootstrap_alloc(2 * NA_MiB, 16));
  ck_assert_int_eq(errno, ENOMEM);
  errno = 0;
  ck_assert_ptr_null(na_bootstrap_alloc(SIZE_MAX, 16));
  ck_assert_int_eq(errno, ENOMEM);
  errno = 0;
  ck_assert_ptr_null(na_bootstrap_alloc(16, 8192));
  ck_assert_int_eq(errno, ENOMEM);
}
END_TEST

/* Filling the buffer: blocks stay disjoint and inside it, then requests fail cleanly. */
START_TEST(running_out_is_clean) {
  enum { MAX = 64 };
  void *blocks[MAX];
  int n = 0;
  errno = 0;
  while (n < MAX && (blocks[n] = na_bootstrap_alloc(64 * NA_KiB, 64)) != NULL) {
    tu_fill(blocks[n], 64 * NA_KiB, (uint64_t)n);
    n++;
  }
  ck_assert_int_lt(n, MAX);
  ck_assert_int_ge(n, 8); /* most of 1 MiB was left for us */
  ck_assert_int_eq(errno, ENOMEM);
  for (int i = 0; i < n; i++) {
    ck_assert(na_bootstrap_owns(blocks[i]) && na_bootstrap_owns((char *)blocks[i] + 65535));
    ck_assert_uint_eq(tu_mismatch(blocks[i], 64 * NA_KiB, (uint64_t)i), SIZE_MAX);
  }
  ck_assert_ptr_null(na_bootstrap_alloc(64 * NA_KiB, 64));
}
END_TEST

START_TEST(free_ignores_and_realloc_copies_out) {
  char *p = na_bootstrap_alloc(300, 16);
  ck_assert_ptr_nonnull(p);
  tu_fill(p, 300, 9);
  numalloc_free(p); /* ignored: never reused */
  char *q = na_bootstrap_alloc(300, 16);
  ck_assert_ptr_ne(q, p);
  ck_assert_uint_eq(tu_mismatch(p, 300, 9), SIZE_MAX);
  char *r = numalloc_realloc(p, 5000);
  ck_assert_ptr_nonnull(r);
  ck_assert(!na_bootstrap_owns(r));
  ck_assert_ptr_nonnull(na_segment_lookup(r));
  ck_assert_uint_eq(tu_mismatch(r, 300, 9), SIZE_MAX);
  char *s = numalloc_realloc(q, 10); /* shrinking copies too */
  ck_assert(!na_bootstrap_owns(s));
  numalloc_free(r);
  numalloc_free(s);
}
END_TEST

/* Threads racing for the buffer get disjoint blocks. */
enum { RACERS = 4, EACH = 200 };
static char *raced[RACERS][EACH];

static void *race(void *arg) {
  char **mine = arg;
  int id = (int)(((uintptr_t)arg - (uintptr_t)raced) / sizeof raced[0]);
  for (int i = 0; i < EACH; i++) {
    mine[i] = na_bootstrap_alloc(48, 16);
    if (mine[i] != NULL) tu_fill(mine[i], 48, (uint64_t)(id * EACH + i));
  }
  return NULL;
}

START_TEST(racing_threads_get_disjoint_blocks) {
  unit_run_threads(RACERS, race, raced, sizeof raced[0]);
  for (int t = 0; t < RACERS; t++)
    for (int i = 0; i < EACH; i++) {
      ck_assert_ptr_nonnull(raced[t][i]);
      UNIT_REQUIRE(tu_mismatch(raced[t][i], 48, (uint64_t)(t * EACH + i)) == SIZE_MAX,
                   "block %d of thread %d overwritten", i, t);
    }
}
END_TEST

int main(int argc, char **argv) {
  (void)argc;
  Suite *s = suite_create("bootstrap");
  TCase *tc = unit_tcase(s, "bootstrap", 10);
  tcase_add_test(tc, allocator_is_started);
  tcase_add_test(tc, blocks_are_aligned_and_sized);
  tcase_add_test(tc, impossible_requests_fail_with_enomem);
  tcase_add_test(tc, running_out_is_clean);
  tcase_add_test(tc, free_ignores_and_realloc_copies_out);
  tcase_add_test(tc, racing_threads_get_disjoint_blocks);
  return unit_run(s, argv);
}
