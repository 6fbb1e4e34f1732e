/* check_size_class.c: the size classes (size_class.c and the inline arithmetic in
 * internal.h). Every request fits the smallest class that can hold it, classes grow strictly
 * and stay multiples of 16, no class wastes a quarter of a request above 64 bytes (nor an
 * eighth of a power of two and a small header from 1 to 8 KiB), the heap's direct table
 * never mixes two classes in one 16-byte bucket, a page of every class holds enough blocks,
 * and malloc really hands out blocks of the class size. */
#include "unit.h"

#include <stdlib.h>

START_TEST(every_size_gets_the_smallest_class_that_fits) {
  for (size_t size = 0; size <= NA_SMALL_MAX; size++) {
    int c = na_size_class(size);
    UNIT_REQUIRE(c >= 0 && c < NA_CLASS_COUNT, "size %zu -> class %d", size, c);
    UNIT_REQUIRE(na_class_size(c) >= size, "size %zu does not fit class %d (%zu bytes)", size, c,
                 na_class_size(c));
    if (c > 0)
      UNIT_REQUIRE(na_class_size(c - 1) < size, "size %zu fits class %d, below its class %d", size,
                   c - 1, c);
  }
}
END_TEST

START_TEST(classes_grow_strictly_in_steps_of_16) {
  for (int c = 0; c < NA_CLASS_COUNT; c++) {
    size_t size = na_class_size(c);
    ck_assert_uint_eq(size % 16, 0);
    ck_assert_int_eq(na_size_class(size), c); /* a class's own size maps back to it */
    if (c > 0) ck_assert_uint_gt(size, na_class_size(c - 1));
  }
  ck_assert_uint_eq(na_class_size(0), 16);
  ck_assert_uint_eq(na_class_size(NA_CLASS_COUNT - 1), NA_SMALL_MAX);
  ck_assert_int_eq(na_size_class(NA_SMALL_MAX), NA_CLASS_COUNT - 1);
  ck_assert_int_eq(na_size_class(0), 0);
  ck_assert_int_eq(na_size_class(1), 0);
  ck_assert_int_eq(na_size_class(17), 1);
  ck_assert_uint_eq(na_class_size(NA_BIN_CLASSES - 1), NA_BIN_MAX);
}
END_TEST

START_TEST(waste_is_below_a_quarter_above_64_bytes) {
  for (size_t size = 1; size <= NA_SMALL_MAX; size++) {
    size_t waste = na_class_size(na_size_class(size)) - size;
    if (size > 64)
      UNIT_REQUIRE(waste * 4 < size, "size %zu wastes %zu bytes", size, waste);
    else
      UNIT_REQUIRE(waste < 16, "size %zu wastes %zu bytes", size, waste);
  }
}
END_TEST

/* A power of two from 1 KiB to 4 KiB plus a header of up to an eighth of it (a page and its
 * cache entry's header) wastes less than an eighth of its block; above 8 KiB the classes are
 * four a doubling again. */
START_TEST(a_power_of_two_and_a_header_wastes_little_from_1_to_8_KiB) {
  for (size_t power = 1024; power <= 4096; power *= 2)
    for (size_t header = 1; header <= power / 8; header++) {
      size_t size = power + header, block = na_class_size(na_size_class(size));
      UNIT_REQUIRE((block - size) * 8 < block, "%zu bytes take a block of %zu", size, block);
    }
  ck_assert_uint_eq(na_class_size(na_size_class(1032)), 1152);
  ck_assert_uint_eq(na_class_size(na_size_class(4104)), 4608);
  ck_assert_uint_eq(na_class_size(na_size_class(8200)), 10240);
}
END_TEST

/* The fast path indexes direct[(size + 15) / 16]: every size in a bucket must share a class. */
START_TEST(direct_buckets_hold_one_class) {
  ck_assert_int_lt((NA_DIRECT_MAX + 15) >> 4, NA_DIRECT_COUNT);
  for (size_t size = 1; size <= NA_DIRECT_MAX; size++) {
    size_t top = ((size + 15) >> 4) << 4;
    UNIT_REQUIRE(na_size_class(size) == na_size_class(top), "sizes %zu and %zu share bucket %zu",
                 size, top, (size + 15) >> 4);
  }
}
END_TEST

START_TEST(pages_hold_enough_blocks) {
  for (int c = 0; c < NA_CLASS_COUNT; c++) {
    size_t slices = na_class_page_slices(c);
    size_t size = na_class_size(c);
    size_t blocks = (slices << NA_SLICE_SHIFT) / size;
    ck_assert_uint_ge(slices, 1);
    ck_assert_uint_le(slices << NA_SLICE_SHIFT, 512 * NA_KiB); /* capped at 512 KiB */
    ck_assert_uint_ge(blocks, 2);
    size_t wanted = size * 8 <= 512 * NA_KiB ? 8 : 512 * NA_KiB / size;
    ck_assert_uint_ge(blocks, wanted);
    /* the page is no bigger than it must be */
    if (slices > 1) ck_assert_uint_lt((slices - 1) << NA_SLICE_SHIFT, size * wanted);
  }
}
END_TEST

/* malloc's blocks are the class size, aligned to 16, and sit in a page of that class. */
START_TEST(malloc_blocks_have_their_class_size) {
  static void *blocks[4096 + 64];
  size_t n = 0;
  for (size_t size = 0; size <= 4096; size++) blocks[n++] = numalloc_malloc(size);
  for (size_t size = 8192; size <= NA_SMALL_MAX; size += size / 4)
    blocks[n++] = numalloc_malloc(size);
  n = 0;
  for (size_t size = 0; size <= 4096; size++) {
    void *p = blocks[n++];
    UNIT_REQUIRE(p != NULL, "malloc(%zu)", size);
    UNIT_REQUIRE((uintptr_t)p % 16 == 0, "malloc(%zu) = %p", size, p);
    size_t expect = na_class_size(na_size_class(size));
    UNIT_REQUIRE(numalloc_usable_size(p) == expect, "usable(malloc(%zu)) = %zu, class %zu", size,
                 numalloc_usable_size(p), expect);
    na_segment_t *segment = na_segment_lookup(p);
    UNIT_REQUIRE(segment != NULL, "malloc(%zu) not owned", size);
    na_page_t *page = na_page_of(segment, p);
    UNIT_REQUIRE(page->kind == NA_SPAN_SMALL && page->block_size == expect,
                 "malloc(%zu): page kind %d block %u", size, page->kind, page->block_size);
  }
  for (size_t size = 8192; size <= NA_SMALL_MAX; size += size / 4) {
    void *p = blocks[n++];
    UNIT_REQUIRE(p != NULL && numalloc_usable_size(p) == na_class_size(na_size_class(size)),
                 "malloc(%zu)", size);
  }
  while (n > 0) numalloc_free(blocks[--n]);
}
END_TEST

int main(int argc, char **argv) {
  (void)argc;
  Suite *s = suite_create("size_class");
  TCase *tc = unit_tcase(s, "classes", 10);
  tcase_add_test(tc, every_size_gets_the_smallest_class_that_fits);
  tcase_add_test(tc, classes_grow_strictly_in_steps_of_16);
  tcase_add_test(tc, waste_is_below_a_quarter_above_64_bytes);
  tcase_add_test(tc, a_power_of_two_and_a_header_wastes_little_from_1_to_8_KiB);
  tcase_add_test(tc, direct_buckets_hold_one_class);
  tcase_add_test(tc, pages_hold_enough_blocks);
  tcase_add_test(tc, malloc_blocks_have_their_class_size);
  return unit_run(s, argv);
}
