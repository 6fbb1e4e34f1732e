/* check_segment.c: segments and the segment map (segment.c, the inline lookups in
 * internal.h). A segment is aligned, tagged in the map with its arena, and found from any
 * address inside it, huge ones included; pointers the library does not own give NULL and
 * node -1; destroying or shrinking clears the map; a corrupted header stops the program;
 * huge pages are asked for only where the arena says. */
#include "unit.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>

static int static_object;

START_TEST(foreign_pointers_are_not_ours) {
  int local = 0;
  void *glibc = malloc(100);
  void *boot = na_bootstrap_alloc(32, 16);
  void *mapped =
      mmap(NULL, NA_SEGMENT_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  const void *foreign[] = {&local,
                           &static_object,
                           glibc,
                           boot,
                           mapped,
                           (char *)mapped + NA_SEGMENT_SIZE - 1,
                           (void *)(uintptr_t)&malloc,
                           (void *)1,
                           (void *)((uintptr_t)1 << 47),
                           (void *)UINTPTR_MAX};
  for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++) {
    ck_assert_msg(na_segment_lookup(foreign[i]) == NULL, "%p looked up as ours", foreign[i]);
    ck_assert_msg(numalloc_node_of(foreign[i]) == -1, "%p has a node", foreign[i]);
  }
  ck_assert_int_eq(numalloc_node_of(NULL), -1);
  ck_assert_ptr_null(na_segment_lookup(NULL));
  munmap(mapped, NA_SEGMENT_SIZE);
  free(glibc);
}
END_TEST

START_TEST(create_tags_and_destroy_clears) {
  int node = unit_home_node();
  bool zero = false;
  na_segment_t *seg = na_segment_create(node, NA_SEGMENT_SIZE, false, &zero);
  ck_assert_ptr_nonnull(seg);
  ck_assert(zero);
  ck_assert_uint_eq((uintptr_t)seg & NA_SEGMENT_MASK, 0);
  ck_assert_uint_eq(seg->cookie, (uintptr_t)seg ^ na_secret);
  ck_assert_uint_eq(seg->size, NA_SEGMENT_SIZE);
  ck_assert_int_eq(seg->arena_index, node);
  ck_assert_int_eq(seg->slices[0].kind, NA_SPAN_META);
  ck_assert_uint_eq(seg->slices[0].slice_count, NA_META_SLICES);
  ck_assert_uint_eq(na_segmap_tag(seg), (uint8_t)(node + 1));
  const size_t offsets[] = {0, 64, NA_SLICE_SIZE, NA_SEGMENT_SIZE / 2, NA_SEGMENT_SIZE - 1};
  for (size_t i = 0; i < 5; i++) {
    ck_assert_ptr_eq(na_segment_lookup((char *)seg + offsets[i]), seg);
    ck_assert_int_eq(numalloc_node_of((char *)seg + offsets[i]), node);
  }
  if (na_segmap_tag((char *)seg + NA_SEGMENT_SIZE) == 0)
    ck_assert_ptr_null(na_segment_lookup((char *)seg + NA_SEGMENT_SIZE));
  /* the header was written after binding: it lives on the arena's node */
  void *pages[1] = {seg};
  int nodes[1] = {-100};
  if (na_os_page_nodes(pages, nodes, 1)) ck_assert_int_eq(nodes[0], node);
  na_segment_destroy(seg);
  ck_assert_uint_eq(na_segmap_tag(seg), 0);
  ck_assert_ptr_null(na_segment_lookup((char *)seg + 100));
  ck_assert_int_eq(numalloc_node_of((char *)seg + 100), -1);
  ck_assert(!unit_is_mapped(seg, NA_PAGE_SIZE));
}
END_TEST

/* A segment asked for huge pages is advised for them, header included; one that is not
 * never is. */
START_TEST(huge_pages_only_where_asked) {
  bool zero;
  na_segment_t *huge = na_segment_create(unit_home_node(), NA_SEGMENT_SIZE, true, &zero);
  na_segment_t *small = na_segment_create(unit_home_node(), NA_SEGMENT_SIZE, false, &zero);
  ck_assert_ptr_nonnull(huge);
  ck_assert_ptr_nonnull(small);
  ck_assert(huge->huge_pages);
  ck_assert(!small->huge_pages);
  ck_assert(unit_vma_has_flag(huge, "hg"));
  ck_assert(unit_vma_has_flag((char *)huge + NA_SEGMENT_SIZE - 1, "hg"));
  ck_assert(!unit_vma_has_flag(small, "hg"));
  ck_assert(!unit_vma_has_flag((char *)small + NA_SEGMENT_SIZE - 1, "hg"));
  na_segment_destroy(huge);
  na_segment_destroy(small);
}
END_TEST

START_TEST(spans_are_found_from_any_slice) {
  bool zero;
  na_segment_t *seg = na_segment_create(unit_home_node(), NA_SEGMENT_SIZE, false, &zero);
  ck_assert_ptr_nonnull(seg);
  na_segment_set_span(seg, NA_META_SLICES, NA_SLICES_PER_SEGMENT - NA_META_SLICES, NA_SPAN_FREE);
  na_segment_set_span(seg, 5, 10, NA_SPAN_LARGE);
  na_segment_set_span(seg, 15, 1, NA_SPAN_SMALL);
  na_segment_set_span(seg, 500, 12, NA_SPAN_LARGE); /* runs to the last slice */
  for (size_t i = 5; i < 15; i++) {
    char *inside = (char *)seg + (i << NA_SLICE_SHIFT) + 12345;
    ck_assert_ptr_eq(na_page_of(seg, inside), &seg->slices[5]);
  }
  ck_assert_ptr_eq(na_page_of(seg, (char *)seg + (15 << NA_SLICE_SHIFT)), &seg->slices[15]);
  ck_assert_ptr_eq(na_page_of(seg, (char *)seg + NA_SEGMENT_SIZE - 1), &seg->slices[500]);
  ck_assert_ptr_eq(na_page_start(&seg->slices[5]), (char *)seg + (5 << NA_SLICE_SHIFT));
  ck_assert_ptr_eq(na_page_start(&seg->slices[500]), (char *)seg + (500ul << NA_SLICE_SHIFT));
  ck_assert_uint_eq(seg->slices[5].slice_count, 10);
  ck_assert_int_eq(seg->slices[5].kind, NA_SPAN_LARGE);
  ck_assert_uint_eq(seg->slices[6].slice_count, 0);
  ck_assert_uint_eq(seg->slices[14].slice_offset, 9 * sizeof(na_page_t));
  na_segment_destroy(seg);
}
END_TEST

/* Small, large and huge blocks: every byte of them maps back to their segment and node. */
START_TEST(blocks_of_every_kind_know_their_node) {
  const size_t sizes[] = {1, 100, 1000, 40000, 300000, 5 * NA_MiB, 20 * NA_MiB, 100 * NA_MiB};
  int node = unit_home_node();
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    char *p = numalloc_malloc(sizes[i]);
    ck_assert_ptr_nonnull(p);
    na_segment_t *seg = na_segment_lookup(p);
    ck_assert_ptr_nonnull(seg);
    if (sizes[i] <= NA_LARGE_MAX) ck_assert_ptr_eq(seg, na_segment_of_aligned(p));
    ck_assert_ptr_eq(na_segment_lookup(p + sizes[i] - 1), seg);
    ck_assert_ptr_eq(na_segment_lookup(p + sizes[i] / 2), seg);
    ck_assert_int_eq(numalloc_node_of(p), node);
    ck_assert_int_eq(numalloc_node_of(p + sizes[i] - 1), node);
    numalloc_free(p);
  }
}
END_TEST

/* A 100 MiB block spans four map entries: the first names the arena, the rest continue it. */
START_TEST(huge_segments_cover_their_map_entries) {
  int node = unit_home_node();
  char *p = numalloc_malloc(100 * NA_MiB);
  ck_assert_ptr_nonnull(p);
  na_segment_t *seg = na_segment_lookup(p);
  ck_assert_ptr_eq(seg, (char *)p - NA_META_SLICES * NA_SLICE_SIZE);
  ck_assert_uint_eq(seg->size, 128 * NA_MiB);
  ck_assert_uint_eq(na_segmap_tag(seg), (uint8_t)(node + 1));
  for (int i = 1; i < 4; i++)
    ck_assert_uint_eq(na_segmap_tag((char *)seg + i * NA_SEGMENT_SIZE), NA_SEGMAP_CONT);
  ck_assert_ptr_eq(na_segment_lookup(p + 99 * NA_MiB), seg);
  ck_assert_ptr_eq(na_segment_lookup((char *)seg + seg->size - 1), seg);
  ck_assert_int_eq(numalloc_node_of(p + 99 * NA_MiB), node);
  ck_assert_uint_eq(numalloc_usable_size(p), 128 * NA_MiB - NA_META_SLICES * NA_SLICE_SIZE);
  ck_assert_ptr_eq(na_page_of(seg, p + 99 * NA_MiB), &seg->slices[NA_META_SLICES]);
  /* The descriptors in between are never written: of the 16 pages that hold them, the
   * head's, the last one's and the one just read are resident (a huge page holds them all). */
  ck_assert_ptr_eq(na_page_of(seg, p + 5 * NA_MiB), &seg->slices[NA_META_SLICES + 80]);
  ck_assert_int_eq(seg->slices[NA_META_SLICES + 80].kind, NA_SPAN_FREE);
  if (!seg->huge_pages) ck_assert_int_le(unit_resident_pages(seg->slices, sizeof seg->slices), 3);

  /* shrinking in place clears the entries it gave back */
  char *q = numalloc_realloc(p, 40 * NA_MiB);
  ck_assert_ptr_eq(q, p);
  ck_assert_uint_eq(seg->size, 64 * NA_MiB);
  ck_assert_uint_eq(na_segmap_tag((char *)seg + 2 * NA_SEGMENT_SIZE), 0);
  ck_assert_uint_eq(na_segmap_tag((char *)seg + 3 * NA_SEGMENT_SIZE), 0);
  ck_assert_ptr_null(na_segment_lookup(p + 90 * NA_MiB));
  ck_assert_int_eq(numalloc_node_of(p + 90 * NA_MiB), -1);
  ck_assert_ptr_eq(na_segment_lookup(p + 40 * NA_MiB - 1), seg);

  numalloc_free(q);
  numalloc_collect(); /* a freed huge block's segment waits for the next one until then */
  for (int i = 0; i < 4; i++)
    ck_assert_uint_eq(na_segmap_tag((char *)seg + i * NA_SEGMENT_SIZE), 0);
  ck_assert_int_eq(numalloc_node_of(p), -1);
  ck_assert_int_eq(numalloc_node_of(p + 50 * NA_MiB), -1);
}
END_TEST

/* A header whose cookie does not match is reported and the program stops (SIGABRT). */
START_TEST(corrupted_header_aborts) {
  bool zero;
  na_segment_t *seg = na_segment_create(unit_home_node(), NA_SEGMENT_SIZE, false, &zero);
  ck_assert_ptr_nonnull(seg);
  seg->cookie ^= 0x10;
  unit_silence_stderr();
  na_segment_lookup((char *)seg + NA_SLICE_SIZE);
}
END_TEST

int main(int argc, char **argv) {
  (void)argc;
  Suite *s = suite_create("segment");
  TCase *tc = unit_tcase(s, "map", 10);
  tcase_add_test(tc, foreign_pointers_are_not_ours);
  tcase_add_test(tc, create_tags_and_destroy_clears);
  tcase_add_test(tc, spans_are_found_from_any_slice);
  tcase_add_test(tc, huge_pages_only_where_asked);
  tcase_add_test(tc, blocks_of_every_kind_know_their_node);
  tcase_add_test(tc, huge_segments_cover_their_map_entries);
  tcase_add_test_raise_signal(tc, corrupted_header_aborts, SIGABRT);
  return unit_run(s, argv);
}
