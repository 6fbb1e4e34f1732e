/* check_arena.c: node arenas (arena.c). Spans are carved from segments, split, reused and
 * coalesced with their free neighbours, with the slice descriptors consistent throughout;
 * large blocks are reused; idle memory goes back to the OS on numalloc_collect or after the
 * purge delay (longer in an arena that soon needed memory given back), and empty segments
 * beyond the cache are unmapped, but memory the kernel refused to take back (locked pages) is
 * never taken for zero; huge blocks grow and shrink
 * in place when they can, move when they must, and keep their contents; a freed one serves the
 * next that fits it until the purge delay has passed (first-touch ones only while their pages
 * are on the asking thread's node and no block was used away from its allocator's); an arena
 * takes huge pages once it holds a segment's worth, never for interleaved memory; a node that
 * cannot give memory falls back per NUMALLOC_FALLBACK; purging never races with freeing; a fork
 * while an arena comes into use leaves the child able to use it. */
#include "arena.h"
#include "access.h"
#include "stats_live.h"
#include "thread_names.h"
#include "unit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int node;

static void setup(void) {
  unit_quiet_purge();
  node = unit_home_node();
}

static size_t slice_index(const na_page_t *span) {
  return (size_t)(span - na_segment_of_aligned(span)->slices);
}

static na_page_t *span_alloc(size_t slices) {
  int actual = -1;
  na_page_t *span = na_arena_alloc_span(node, slices, &actual);
  ck_assert_ptr_nonnull(span);
  ck_assert_int_eq(actual, node);
  ck_assert_uint_eq(span->slice_count, slices);
  return span;
}

/* Walks a segment's descriptors: spans tile it, the slices of a span in use point back to
 * its head, those of a free span describe themselves as free but the last, which points back
 * to the head; no two free spans touch (coalescing is complete), and free_slices adds up. */
static void check_segment(const na_segment_t *seg) {
  const char *problem = na_check_segment(seg);
  UNIT_REQUIRE(problem == NULL, "%s", problem);
}

/* The permissions of the mapping holding `p`, as /proc/self/maps shows them ("rw-p"). */
static void perms_of(const void *p, char out[5]) {
  FILE *maps = fopen("/proc/self/maps", "r");
  ck_assert_ptr_nonnull(maps);
  char line[512];
  strcpy(out, "none");
  while (fgets(line, sizeof line, maps) != NULL) {
    unsigned long from, to;
    char perms[5];
    if (sscanf(line, "%lx-%lx %4s", &from, &to, perms) == 3 && (uintptr_t)p >= from &&
        (uintptr_t)p < to) {
      memcpy(out, perms, 5);
      break;
    }
  }
  fclose(maps);
}

/* A segment is reserved without access but for its header's opening, and opened as spans are
 * handed out or grown, so the kernel charges (and a program that locked its memory holds)
 * what is used: under strict overcommit a granule at a time (a huge page's two in a segment
 * advised for huge pages), elsewhere four. */
START_TEST(segments_open_granules_as_spans_are_handed_out) {
  char perms[5];
  bool zero;
  na_segment_overcommit_strict(true);
  na_segment_t *segment = na_segment_create(node, NA_SEGMENT_SIZE, false, &zero);
  ck_assert_ptr_nonnull(segment);
  ck_assert_uint_eq(atomic_load(&segment->writable), 1);
  perms_of((char *)segment + 3 * NA_WRITABLE_GRANULE, perms);
  ck_assert_str_eq(perms, "---p");
  size_t first = 3 * NA_WRITABLE_GRANULE / NA_SLICE_SIZE + 2; /* in the fourth granule */
  ck_assert(na_segment_make_writable(segment, first, 20));    /* into the fifth */
  ck_assert_uint_eq(atomic_load(&segment->writable), 1u | 1u << 3 | 1u << 4);
  memset((char *)segment + first * NA_SLICE_SIZE, 1, 20 * NA_SLICE_SIZE);
  perms_of((char *)segment + 5 * NA_WRITABLE_GRANULE, perms);
  ck_assert_str_eq(perms, "---p");
  ck_assert(na_segment_make_writable(segment, NA_SLICES_PER_SEGMENT - 1, 1)); /* the last */
  ck_assert_uint_eq(atomic_load(&segment->writable) >> 31, 1);
  na_segment_destroy(segment);

  segment = na_segment_create(node, NA_SEGMENT_SIZE, true, &zero);
  ck_assert_ptr_nonnull(segment);
  ck_assert_uint_eq(atomic_load(&segment->writable), 3);  /* the header's huge page */
  ck_assert(na_segment_make_writable(segment, first, 1)); /* the fourth granule's huge page */
  ck_assert_uint_eq(atomic_load(&segment->writable), 3u | 1u << 2 | 1u << 3);
  perms_of((char *)segment + 2 * NA_WRITABLE_GRANULE, perms);
  ck_assert_str_eq(perms, "rw-p");
  na_segment_destroy(segment);

  na_segment_overcommit_strict(false);
  segment = na_segment_create(node, NA_SEGMENT_SIZE, false, &zero);
  ck_assert_ptr_nonnull(segment);
  ck_assert_uint_eq(atomic_load(&segment->writable), 0xf);
  ck_assert(na_segment_make_writable(segment, first + NA_WRITABLE_GRANULE / NA_SLICE_SIZE, 1));
  ck_assert_uint_eq(atomic_load(&segment->writable), 0xff); /* the fifth's four */
  perms_of((char *)segment + 8 * NA_WRITABLE_GRANULE, perms);
  ck_assert_str_eq(perms, "---p");
  na_segment_destroy(segment);

  /* through the arena: a span, then the same span grown in place, written end to end */
  int actual = -1;
  size_t slices = 80; /* past the header's opening */
  na_page_t *span = na_arena_alloc_span(node, slices, &actual);
  ck_assert_ptr_nonnull(span);
  na_segment_t *reserved = na_segment_of_aligned(span);
  ck_assert_uint_ne(atomic_load(&reserved->writable), UINT32_MAX);
  memset(na_page_start(span), 2, slices * NA_SLICE_SIZE);
  size_t grown = 2 * slices;
  if (na_arena_grow_span(span, grown)) memset(na_page_start(span), 3, grown * NA_SLICE_SIZE);
  ck_assert_uint_ne(atomic_load(&reserved->writable), UINT32_MAX);
}
END_TEST

/* Every arena has its own descriptor and its own lock, and taking an arena's lock notes that
 * arena as in use, whatever the order they are laid out in. */
START_TEST(each_arena_has_its_own_descriptor_and_lock) {
  for (int i = 0; i < NA_ARENA_COUNT; i++)
    for (int j = i + 1; j < NA_ARENA_COUNT; j++) ck_assert_ptr_ne(na_arena_at(i), na_arena_at(j));
  for (int i = 0; i < NA_ARENA_COUNT; i++) {
    na_arena_lock(na_arena_at(i));
    na_arena_unlock(na_arena_at(i));
    UNIT_REQUIRE(na_arena_in_use(i), "arena %d: its lock noted another arena as in use", i);
  }
}
END_TEST

/* The validators name what is broken: a damaged count, a slice pointing elsewhere, a slice
 * handed out but not marked resident or a clean free one marked, a free list holding a
 * pointer that is no block of its page, a spare room out of its bounds. */
START_TEST(validators_name_what_is_broken) {
  na_page_t *a = span_alloc(3);
  na_segment_t *seg = na_segment_of_aligned(a);
  ck_assert_ptr_null(na_check_segment(seg));
  seg->free_slices++;
  ck_assert_ptr_nonnull(strstr(na_check_segment(seg), "free slices"));
  seg->free_slices--;
  seg->slices[slice_index(a) + 1].slice_offset = 0;
  ck_assert_ptr_nonnull(strstr(na_check_segment(seg), "points elsewhere"));
  seg->slices[slice_index(a) + 1].slice_offset = sizeof(na_page_t);
  ck_assert_ptr_null(na_check_segment(seg));
  size_t second = slice_index(a) + 1;
  seg->resident[second / 64] &= ~((uint64_t)1 << (second % 64)); /* as if never handed out */
  ck_assert_ptr_nonnull(strstr(na_check_segment(seg), "not marked resident"));
  na_segment_note_resident(seg, second, 1, true);
  size_t after = slice_index(a) + 3; /* the untouched rest of the segment, clean */
  na_segment_note_resident(seg, after, 1, true);
  ck_assert_ptr_nonnull(strstr(na_check_segment(seg), "is marked resident"));
  na_segment_note_resident(seg, after, 1, false);
  ck_assert_ptr_null(na_check_segment(seg));
  na_arena_free_span(a);

  void *block = numalloc_malloc(64);
  na_page_t *page = na_page_of(na_segment_lookup(block), block);
  ck_assert_ptr_null(na_check_page(page));
  ck_assert_ptr_null(na_check_heap(page->heap));
  na_block_t *saved = page->free;
  page->free = (na_block_t *)((char *)block + 8); /* inside a block */
  na_block_set_next(page, page->free, NULL);
  ck_assert_ptr_nonnull(strstr(na_check_page(page), "not a carved block"));
  ck_assert_ptr_nonnull(na_check_heap(page->heap));
  page->free = saved;
  na_heap_t *heap = page->heap;
  uint32_t room = heap->spare_room;
  heap->spare_room = NA_SPARE_SLICES_MAX + 1;
  ck_assert_ptr_nonnull(strstr(na_check_heap(heap), "in a room of"));
  heap->spare_room = room;
  ck_assert_ptr_null(na_check_heap(heap));
  numalloc_free(block);
}
END_TEST

START_TEST(spans_split_and_coalesce) {
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 0); /* a fresh process: nothing mapped */
  na_page_t *a = span_alloc(3), *b = span_alloc(5), *c = span_alloc(7);
  na_segment_t *seg = na_segment_of_aligned(a);
  ck_assert_uint_eq(na_arena_mapped_bytes(node), NA_SEGMENT_SIZE);
  ck_assert_ptr_eq(na_segment_of_aligned(c), seg);
  const size_t base = NA_META_SLICES; /* the first slice after the header */
  ck_assert_uint_eq(slice_index(a), base);
  ck_assert_uint_eq(slice_index(b), base + 3);
  ck_assert_uint_eq(slice_index(c), base + 8);
  ck_assert_uint_eq(seg->free_slices, NA_SLICES_PER_SEGMENT - base - 15);
  check_segment(seg);

  na_arena_free_span(b); /* between two used spans: stays alone */
  check_segment(seg);
  ck_assert_int_eq(seg->slices[base + 3].kind, NA_SPAN_FREE);
  ck_assert_uint_eq(seg->slices[base + 3].slice_count, 5);
  na_arena_free_span(a); /* merges with b on its right */
  check_segment(seg);
  ck_assert_int_eq(seg->slices[base].kind, NA_SPAN_FREE);
  ck_assert_uint_eq(seg->slices[base].slice_count, 8);
  na_arena_free_span(c); /* merges both ways: the whole segment is one free span */
  check_segment(seg);
  ck_assert_uint_eq(seg->slices[base].slice_count, NA_SLICES_PER_SEGMENT - base);
  ck_assert_uint_eq(seg->free_slices, NA_SLICES_PER_SEGMENT - base);

  na_page_t *d = span_alloc(8); /* the space comes back from the start */
  ck_assert_ptr_eq(d, a);
  na_arena_free_span(d);
  ck_assert_uint_eq(na_arena_mapped_bytes(node), NA_SEGMENT_SIZE);
}
END_TEST

/* A freed hole that fits is used before the big free remainder, and what is left of it stays
 * a free span of its own. */
START_TEST(holes_are_filled_first) {
  na_page_t *a = span_alloc(2), *b = span_alloc(4), *c = span_alloc(2);
  na_segment_t *seg = na_segment_of_aligned(a);
  na_arena_free_span(b);
  na_page_t *d = span_alloc(3);
  ck_assert_ptr_eq(d, b);
  size_t rest = slice_index(b) + 3;
  ck_assert_int_eq(seg->slices[rest].kind, NA_SPAN_FREE);
  ck_assert_uint_eq(seg->slices[rest].slice_count, 1);
  check_segment(seg);
  na_page_t *e = span_alloc(1);
  ck_assert_uint_eq(slice_index(e), rest);
  check_segment(seg);
  na_arena_free_span(a);
  na_arena_free_span(c);
  na_arena_free_span(d);
  na_arena_free_span(e);
  check_segment(seg);
  ck_assert_uint_eq(seg->free_slices, NA_SLICES_PER_SEGMENT - NA_META_SLICES);
}
END_TEST

/* Resident memory is reused first: a dirty free span is split for a request that a clean span
 * (given back to the OS) would fit exactly, and the rest of it stays dirty and free. */
START_TEST(dirty_spans_are_reused_before_clean_ones) {
  na_page_t *a = span_alloc(8), *sep1 = span_alloc(1), *c = span_alloc(2), *sep2 = span_alloc(1);
  na_segment_t *seg = na_segment_of_aligned(a);
  na_arena_free_span(c);
  na_arena_collect(true); /* c's slices go back to the OS: clean */
  ck_assert(!seg->slices[slice_index(c)].is_dirty);
  na_arena_free_span(a);
  ck_assert(seg->slices[slice_index(a)].is_dirty);
  na_page_t *d = span_alloc(2);
  ck_assert_ptr_eq(d, a);
  size_t rest = slice_index(a) + 2;
  ck_assert_int_eq(seg->slices[rest].kind, NA_SPAN_FREE);
  ck_assert_uint_eq(seg->slices[rest].slice_count, 6);
  ck_assert(seg->slices[rest].is_dirty);
  check_segment(seg);
  na_page_t *e = span_alloc(2); /* the dirty rest again, not the clean hole */
  ck_assert_uint_eq(slice_index(e), rest);
  na_arena_free_span(d);
  na_arena_free_span(e);
  na_arena_free_span(sep1);
  na_arena_free_span(sep2);
  check_segment(seg);
}
END_TEST

/* A segment serves first the thread that took it: of two free spans that fit, the one in the
 * calling thread's segment is taken even when another thread's was freed later (the span
 * freed last would otherwise go first, with its lines still in the other thread's cache). */
START_TEST(spans_of_the_threads_own_segment_come_first) {
  const size_t whole = NA_SLICES_PER_SEGMENT - NA_META_SLICES;
  na_page_t *mine = span_alloc(whole), *theirs = span_alloc(whole);
  na_segment_t *my_segment = na_segment_of_aligned(mine);
  na_segment_t *their_segment = na_segment_of_aligned(theirs);
  ck_assert_ptr_ne(my_segment, their_segment);
  ck_assert_uint_eq(my_segment->affinity, na_thread_id()); /* taken empty: the taker's */
  their_segment->affinity = na_thread_id() ^ 0x1000;       /* as another thread's */
  na_arena_free_span(mine);
  na_arena_free_span(theirs); /* freed last: first in its bin */
  ck_assert(my_segment->slices[NA_META_SLICES].is_dirty);
  ck_assert(their_segment->slices[NA_META_SLICES].is_dirty);
  na_page_t *again = span_alloc(4);
  ck_assert_ptr_eq(na_segment_of_aligned(again), my_segment);
  /* without a span of its own, a thread takes what the arena has */
  my_segment->affinity = their_segment->affinity;
  na_page_t *other = span_alloc(4);
  ck_assert_ptr_nonnull(other);
  na_arena_free_span(again);
  na_arena_free_span(other);
  check_segment(my_segment);
  check_segment(their_segment);
}
END_TEST

/* Fresh memory comes from the calling thread's own segments: with room only in another
 * thread's segment, a thread maps one of its own (small pages, being its first beside
 * others'), cuts its next spans there, and its second takes huge pages as the arena's second
 * does. Where no segment can be mapped, the other thread's room serves. */
START_TEST(fresh_spans_come_from_the_threads_own_segment) {
  na_os_free_memory_reported_set(0);
  bool thp = na_os_thp_usable();
  na_page_t *first = span_alloc(4);
  na_segment_t *theirs = na_segment_of_aligned(first);
  theirs->affinity = na_thread_id() ^ 0x1000; /* as another thread's */
  na_page_t *mine = span_alloc(4);
  na_segment_t *own = na_segment_of_aligned(mine);
  ck_assert_ptr_ne(own, theirs);
  ck_assert_uint_eq(own->affinity, na_thread_id());
  ck_assert(!own->huge_pages);
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 2 * NA_SEGMENT_SIZE);
  na_page_t *next = span_alloc(4);
  ck_assert_ptr_eq(na_segment_of_aligned(next), own);
  ck_assert_uint_eq(slice_index(next), slice_index(mine) + 4);
  /* its own segment full: a second of its own, with huge pages where they are usable */
  na_page_t *rest = span_alloc(own->free_slices);
  na_page_t *again = span_alloc(4);
  na_segment_t *second = na_segment_of_aligned(again);
  ck_assert_ptr_ne(second, own);
  ck_assert_ptr_ne(second, theirs);
  ck_assert_int_eq(second->huge_pages, thp);
  /* nothing can be mapped: the other thread's room, rather than no memory */
  na_page_t *fill = span_alloc(second->free_slices);
  na_os_inject_map_failures(4);
  na_page_t *shared = span_alloc(4);
  na_os_inject_map_failures(0);
  ck_assert_ptr_eq(na_segment_of_aligned(shared), theirs);
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 3 * NA_SEGMENT_SIZE);
  na_page_t *spans[] = {first, mine, next, rest, again, fill, shared};
  for (size_t i = 0; i < sizeof spans / sizeof *spans; i++) na_arena_free_span(spans[i]);
  check_segment(theirs);
  check_segment(own);
  check_segment(second);
  na_os_free_memory_reported_set(-1);
}
END_TEST

/* A thread's own free span comes first only where the slices it would take were handed out
 * since they were last given back: a span freed into the untouched rest of its segment is
 * dirty as a whole, and taking its untouched slices first would leave another thread's
 * resident span waiting. */
START_TEST(own_spans_first_only_where_resident) {
  const size_t whole = NA_SLICES_PER_SEGMENT - NA_META_SLICES;
  na_page_t *eight = span_alloc(8);
  na_page_t *rest = span_alloc(whole - 8);
  na_segment_t *theirs = na_segment_of_aligned(eight);
  na_page_t *four = span_alloc(4);
  na_segment_t *mine = na_segment_of_aligned(four);
  ck_assert_ptr_ne(mine, theirs);
  theirs->affinity = na_thread_id() ^ 0x1000; /* as another thread's */
  na_arena_free_span(four);                   /* merges with the untouched rest of its segment */
  na_arena_free_span(eight);
  ck_assert(four->is_dirty && four->slice_count == whole);
  na_page_t *again = span_alloc(8); /* four of my slices are resident, not eight */
  ck_assert_ptr_eq(again, eight);
  na_page_t *mine_again = span_alloc(4); /* those four are */
  ck_assert_ptr_eq(mine_again, four);
  na_page_t *spans[] = {again, rest, mine_again};
  for (size_t i = 0; i < sizeof spans / sizeof *spans; i++) na_arena_free_span(spans[i]);
  check_segment(mine);
  check_segment(theirs);
}
END_TEST

static void *take_span_and_leave(void *arg) {
  na_page_t **span = arg;
  int actual;
  *span = na_arena_alloc_span(node, 4, &actual);
  na_arena_release_segments(node); /* as a thread's exit does */
  return NULL;
}

/* A thread that leaves gives its segments up: their room is the next taker's own. */
START_TEST(segments_of_a_thread_that_left_are_the_next_takers) {
  na_page_t *theirs = NULL;
  pthread_t thread;
  ck_assert_int_eq(pthread_create(&thread, NULL, take_span_and_leave, &theirs), 0);
  pthread_join(thread, NULL);
  ck_assert_ptr_nonnull(theirs);
  na_segment_t *segment = na_segment_of_aligned(theirs);
  ck_assert_uint_eq(segment->affinity, 0);
  na_page_t *mine = span_alloc(4);
  ck_assert_ptr_eq(na_segment_of_aligned(mine), segment);
  ck_assert_uint_eq(segment->affinity, na_thread_id());
  ck_assert_uint_eq(na_arena_mapped_bytes(node), NA_SEGMENT_SIZE);
  na_arena_free_span(theirs);
  na_arena_free_span(mine);
  check_segment(segment);
}
END_TEST

/* A span that fills a segment; the next one needs a second segment. */
START_TEST(full_segment_grows_the_arena) {
  na_page_t *all = span_alloc(NA_SLICES_PER_SEGMENT - NA_META_SLICES);
  ck_assert_uint_eq(na_segment_of_aligned(all)->free_slices, 0);
  na_page_t *next = span_alloc(1);
  ck_assert_ptr_ne(na_segment_of_aligned(next), na_segment_of_aligned(all));
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 2 * NA_SEGMENT_SIZE);
  check_segment(na_segment_of_aligned(all));
  check_segment(na_segment_of_aligned(next));
  na_arena_free_span(all);
  na_arena_free_span(next);
  na_os_free_memory_reported_set(-1);
}
END_TEST

/* Under "auto" a node's arena takes huge pages once it holds a segment's worth, a huge block
 * always; interleaved memory never, first-touch memory only where there is one node, and no
 * memory in a virtual machine whose host takes free memory back; "1" and "0" mean every
 * segment and none but huge blocks' under the system's default. */
START_TEST(huge_pages_once_an_arena_holds_a_segment) {
  int spare = NA_MAX_NODES - 1; /* an arena no test uses */
  ck_assert_uint_eq(na_arena_mapped_bytes(spare), 0);
  ck_assert_int_eq(na_options.hugepages, NA_HUGEPAGES_AUTO);
  na_os_free_memory_reported_set(0);
  bool thp = na_os_thp_usable(); /* advice the kernel would ignore is never given */
  ck_assert(!na_arena_huge_pages(spare, false));
  ck_assert_int_eq(na_arena_huge_pages(spare, true), thp);
  na_arena_add_mapped(na_arena_at(spare), (int64_t)NA_SEGMENT_SIZE);
  ck_assert_int_eq(na_arena_huge_pages(spare, false), thp);
  na_arena_add_mapped(na_arena_at(NA_INTERLEAVE_ARENA), (int64_t)NA_SEGMENT_SIZE);
  ck_assert(!na_arena_huge_pages(NA_INTERLEAVE_ARENA, false));
  ck_assert(!na_arena_huge_pages(NA_INTERLEAVE_ARENA, true));
  na_arena_add_mapped(na_arena_at(NA_TOUCH_ARENA), (int64_t)NA_SEGMENT_SIZE);
  int usable = na_topology.usable_count;
  na_topology.usable_count = 1;
  ck_assert_int_eq(na_arena_huge_pages(NA_TOUCH_ARENA, false), thp);
  na_topology.usable_count = 2;
  ck_assert(!na_arena_huge_pages(NA_TOUCH_ARENA, false));
  ck_assert(!na_arena_huge_pages(NA_TOUCH_ARENA, true));
  na_topology.usable_count = usable;
  na_os_free_memory_reported_set(1);
  ck_assert(!na_arena_huge_pages(spare, false));
  ck_assert(!na_arena_huge_pages(spare, true));
  na_options.hugepages = NA_HUGEPAGES_ALL; /* asked for: given even there */
  ck_assert_int_eq(na_arena_huge_pages(spare, false), thp);
  na_os_free_memory_reported_set(-1);
  ck_assert_int_eq(na_arena_huge_pages(NA_INTERLEAVE_ARENA, false), thp);
  na_options.hugepages = NA_HUGEPAGES_HUGE_BLOCKS;
  ck_assert(!na_arena_huge_pages(spare, false));
  ck_assert(!na_arena_huge_pages(spare, true));
}
END_TEST

/* A heap that outgrows its first segment gets huge pages from the second on. */
START_TEST(the_second_segment_takes_huge_pages) {
  na_os_free_memory_reported_set(0); /* as on a machine whose free memory stays its own */
  na_page_t *all = span_alloc(NA_SLICES_PER_SEGMENT - NA_META_SLICES);
  na_page_t *next = span_alloc(1);
  bool thp = na_os_thp_usable();
  ck_assert(!na_segment_of_aligned(all)->huge_pages);
  ck_assert_int_eq(na_segment_of_aligned(next)->huge_pages, thp);
  ck_assert(!unit_vma_has_flag(na_page_start(all), "hg"));
  ck_assert_int_eq(unit_vma_has_flag(na_page_start(next), "hg"), thp);
  na_arena_free_span(all);
  na_arena_free_span(next);
}
END_TEST

/* Random spans: descriptors stay consistent and live spans never overlap. */
START_TEST(random_spans_keep_segments_consistent) {
  enum { LIVE = 48, ROUNDS = 3000 };
  na_page_t *live[LIVE] = {0};
  size_t want[LIVE] = {0};
  uint64_t rng = 42;
  for (int round = 0; round < ROUNDS; round++) {
    int slot = (int)(tu_rand(&rng) % LIVE);
    if (live[slot] != NULL) {
      UNIT_REQUIRE(live[slot]->kind == NA_SPAN_LARGE && live[slot]->slice_count == want[slot],
                   "span in slot %d changed", slot);
      na_arena_free_span(live[slot]);
      live[slot] = NULL;
    } else {
      want[slot] = 1 + tu_rand(&rng) % 40;
      int actual;
      live[slot] = na_arena_alloc_span(node, want[slot], &actual);
      UNIT_REQUIRE(live[slot] != NULL && live[slot]->slice_count == want[slot], "round %d", round);
      live[slot]->kind = NA_SPAN_LARGE;
    }
    for (int i = 0; i < LIVE; i++)
      if (live[i] != NULL && (round % 16 == 0 || i == slot))
        check_segment(na_segment_of_aligned(live[i]));
  }
  for (int i = 0; i < LIVE; i++)
    if (live[i] != NULL) na_arena_free_span(live[i]);
  numalloc_collect();
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 0);
}
END_TEST

START_TEST(large_blocks_are_reused) {
  void *p = numalloc_malloc(NA_MiB);
  ck_assert_ptr_nonnull(p);
  numalloc_free(p);
  void *q = numalloc_malloc(NA_MiB);
  ck_assert_ptr_eq(q, p);
  numalloc_free(q);
  uint64_t rng = 7;
  for (int i = 0; i < 2000; i++) {
    size_t size = NA_SMALL_MAX + 1 + tu_rand(&rng) % (8 * NA_MiB);
    void *r = numalloc_malloc(size);
    UNIT_REQUIRE(r != NULL, "malloc(%zu)", size);
    ((char *)r)[size - 1] = 1;
    numalloc_free(r);
    UNIT_REQUIRE(na_arena_mapped_bytes(node) <= NA_SEGMENT_SIZE, "round %d: %zu bytes mapped", i,
                 na_arena_mapped_bytes(node));
  }
}
END_TEST

/* realloc of a large block grows into the free slices after it and gives back its tail in
 * place; with its neighbour taken it moves, contents intact. */
START_TEST(large_realloc_in_place) {
  char *p = numalloc_malloc(NA_MiB);
  ck_assert_ptr_nonnull(p);
  na_segment_t *seg = na_segment_of_aligned(p);
  tu_fill(p, NA_MiB, 21);
  char *q = numalloc_realloc(p, 2 * NA_MiB);
  ck_assert_ptr_eq(q, p);
  ck_assert_uint_ge(numalloc_usable_size(q), 2 * NA_MiB);
  ck_assert_uint_eq(tu_mismatch(q, NA_MiB, 21), SIZE_MAX);
  memset(q + NA_MiB, 1, NA_MiB);
  check_segment(seg);
  char *r = numalloc_realloc(q, 300 * NA_KiB);
  ck_assert_ptr_eq(r, p);
  ck_assert_uint_eq(numalloc_usable_size(r), 300 * NA_KiB); /* what was asked; 320 KiB of slices */
  ck_assert_uint_eq(tu_mismatch(r, 300 * NA_KiB, 21), SIZE_MAX);
  check_segment(seg);
  na_page_t *tail = na_page_of(seg, r + 320 * NA_KiB);
  ck_assert_int_eq(tail->kind, NA_SPAN_FREE);
  char *neighbour = numalloc_malloc(NA_MiB); /* takes the slices right after it */
  ck_assert_ptr_eq(neighbour, r + 320 * NA_KiB);
  char *s = numalloc_realloc(r, 2 * NA_MiB);
  ck_assert_ptr_nonnull(s);
  ck_assert_ptr_ne(s, r);
  ck_assert_uint_eq(tu_mismatch(s, 300 * NA_KiB, 21), SIZE_MAX);
  check_segment(seg);
  numalloc_free(s);
  numalloc_free(neighbour);
  check_segment(seg);
  ck_assert_uint_eq(seg->free_slices, NA_SLICES_PER_SEGMENT - NA_META_SLICES);
}
END_TEST

/* A freed span keeps its pages until the purge: numalloc_collect gives them back at once,
 * and memory handed out after that reads as zero. */
START_TEST(collect_returns_freed_spans) {
  size_t size = 4 * NA_MiB;
  char *keep = numalloc_malloc(300 * NA_KiB); /* keeps the segment mapped */
  char *p = numalloc_malloc(size);
  ck_assert_ptr_nonnull(p);
  memset(p, 0xab, size);
  ck_assert_int_eq(unit_resident_pages(p, size), (long)(size / NA_PAGE_SIZE));
  numalloc_free(p);
  ck_assert_int_eq(unit_resident_pages(p, size), (long)(size / NA_PAGE_SIZE)); /* delay: 1 h */
  numalloc_collect();
  ck_assert_int_eq(unit_resident_pages(p, size), 0);
  ck_assert_uint_eq(na_arena_mapped_bytes(node), NA_SEGMENT_SIZE);
  char *z = numalloc_calloc(1, size);
  ck_assert_ptr_nonnull(z);
  ck_assert_uint_eq(tu_nonzero(z, size), SIZE_MAX);
  numalloc_free(z);
  numalloc_free(keep);
}
END_TEST

/* A span given back, then merged with a neighbour freed later (dirty), is one dirty span; a
 * part of it that was given back still reads as zero, and calloc does not write it (which
 * would make it all resident again), while a part the neighbour left dirty is cleared. */
START_TEST(given_back_part_of_a_merged_span_stays_zero) {
  size_t size = 512 * NA_KiB;
  char *keep = numalloc_malloc(300 * NA_KiB); /* keeps the segment mapped */
  char *a = numalloc_malloc(size), *b = numalloc_malloc(size);
  ck_assert_ptr_eq(b, a + size); /* neighbours */
  memset(a, 0x11, size);
  memset(b, 0x22, size);
  numalloc_free(a);
  numalloc_collect(); /* a's slices go back */
  numalloc_free(b);   /* dirty, merged with a's */
  ck_assert_int_eq(unit_resident_pages(a, size), 0);
  char *z = numalloc_calloc(1, size);
  ck_assert_ptr_eq(z, a);
  ck_assert_int_eq(unit_resident_pages(z, size), 0);
  ck_assert_uint_eq(tu_nonzero(z, size), SIZE_MAX);
  numalloc_free(z);
  char *both = numalloc_calloc(1, 2 * size);
  ck_assert_ptr_eq(both, a);
  ck_assert_uint_eq(tu_nonzero(both, 2 * size), SIZE_MAX);
  numalloc_free(both);
  numalloc_free(keep);
}
END_TEST

/* Pages a program locked (mlock, mlockall: low-latency programs lock everything) cannot be
 * given back: the kernel refuses, and they keep what they held. Such a span stays dirty, so
 * calloc clears it, and the purge is not counted; a kept huge block is cleared alike. */

START_TEST(locked_pages_are_never_taken_for_zero) {
  size_t size = 512 * NA_KiB, huge = 40 * NA_MiB;
  char *keep = numalloc_malloc(300 * NA_KiB); /* keeps the segment mapped */
  char *p = numalloc_malloc(size);
  memset(p, 0xab, size);
  unit_lock_pages(p + size / 2, NA_PAGE_SIZE);
  int64_t purged = unit_purged_bytes();
  numalloc_free(p);
  numalloc_collect();
  ck_assert_int_eq(unit_purged_bytes(), purged); /* refused: nothing went back */
  ck_assert_int_eq(unit_resident_pages(p + size / 2, NA_PAGE_SIZE), 1);
  char *z = numalloc_calloc(1, size);
  ck_assert_ptr_eq(z, p); /* the dirty span comes first */
  ck_assert_uint_eq(tu_nonzero(z, size), SIZE_MAX);
  unit_unlock_pages(p + size / 2, NA_PAGE_SIZE);
  numalloc_free(z);
  numalloc_free(keep);
  char *h = numalloc_malloc(huge);
  memset(h, 0xcd, huge);
  unit_lock_pages(h + huge - NA_PAGE_SIZE, NA_PAGE_SIZE);
  numalloc_free(h); /* kept, resident */
  char *hz = numalloc_calloc(1, huge);
  ck_assert_ptr_eq(hz, h);
  ck_assert_uint_eq(tu_nonzero(hz, huge), SIZE_MAX);
  unit_unlock_pages(h + huge - NA_PAGE_SIZE, NA_PAGE_SIZE);
  numalloc_free(hz);
}
END_TEST

/* A free never gives memory back by itself, even with no delay: the next allocation that
 * needs a span does, and then the pages read as zero again. */
START_TEST(frees_never_purge_the_next_span_allocation_does) {
  na_options.purge_delay_ms = 0;
  size_t size = 2 * NA_MiB;
  char *keep = numalloc_malloc(300 * NA_KiB);
  char *p = numalloc_malloc(size);
  memset(p, 1, size);
  int64_t calls = unit_purge_calls();
  numalloc_free(p);
  ck_assert_int_eq(unit_resident_pages(p, size), (int)(size / NA_PAGE_SIZE));
  ck_assert_int_eq(unit_purge_calls(), calls);
  char *q = numalloc_malloc(size);
  ck_assert_ptr_nonnull(q);
  ck_assert_int_eq(unit_resident_pages(p, size), 0);
  ck_assert_int_gt(unit_purge_calls(), calls);
  ck_assert_uint_eq(tu_nonzero(q, size), SIZE_MAX);
  numalloc_free(q);
  numalloc_free(keep);
}
END_TEST

/* A span of `size` bytes written and freed, so resident and free; *keep, a smaller block
 * allocated before it, keeps its segment from being empty (freed by the caller). */
static char *freed_resident_span(size_t size, char **keep) {
  *keep = numalloc_malloc(300 * NA_KiB);
  char *p = numalloc_malloc(size);
  memset(p, 1, size);
  numalloc_free(p);
  return p;
}

/* A free span goes back after a quarter of the purge delay: resident a moment after its
 * free, given back by the first span allocation once that quarter has passed (while sparse
 * pages and empty segments wait the whole delay). */
START_TEST(spans_go_back_after_a_quarter_of_the_delay) {
  /* A quarter of 8 s between the free and the first check: a 2 s delay left half a second,
   * which a loaded machine (tests beside a VM on two cores) can stall for. */
  na_options.purge_delay_ms = 8000;
  size_t size = 2 * NA_MiB;
  char *keep;
  char *p = freed_resident_span(size, &keep);
  char *q = numalloc_malloc(64 * NA_KiB * 5); /* another span, within the quarter */
  ck_assert_int_eq(unit_resident_pages(p, size), (int)(size / NA_PAGE_SIZE));
  numalloc_free(q);
  usleep(2100 * 1000);             /* past a quarter (2 s), well within the delay */
  q = numalloc_malloc(4 * NA_MiB); /* too big for p's span: it stays free */
  ck_assert_int_eq(unit_resident_pages(p, size), 0);
  numalloc_free(q);
  numalloc_free(keep);
}
END_TEST

/* Memory that is not resident, handed out within a purge delay of a pass that gave spans
 * back, says the give-back came too soon: the arena's spans then wait longer (16 quarters),
 * and each later give-back that no such need follows halves the wait again. Give-backs on
 * request (numalloc_collect) teach nothing. */
START_TEST(span_wait_grows_when_memory_given_back_is_needed_again) {
  na_options.purge_delay_ms = 400; /* spans: 100 ms at first */
  na_arena_t *arena = na_arena_at(node);
  ck_assert_uint_eq(arena->span_delay_shift, 0);
  size_t size = 2 * NA_MiB;
  char *keep;
  char *p = freed_resident_span(size, &keep);
  usleep(150 * 1000);
  char *q = numalloc_malloc(4 * NA_MiB); /* p's span goes back first; q's is fresh */
  ck_assert_ptr_nonnull(q);
  ck_assert_int_eq(unit_resident_pages(p, size), 0);
  unsigned grown = arena->span_delay_shift;
  ck_assert_uint_gt(grown, 0);

  memset(q, 1, 4 * NA_MiB);
  numalloc_free(q);
  usleep(150 * 1000); /* past the first wait, within the grown one */
  numalloc_free(numalloc_malloc(size));
  ck_assert_int_eq(unit_resident_pages(q, 4 * NA_MiB), (int)(4 * NA_MiB / NA_PAGE_SIZE));

  /* A give-back long past, with no need since: the next pass halves the wait. */
  arena->gave_ms = (na_os_clock_ms() - 100000) | 1;
  usleep(150 * 1000);
  na_arena_purge_expired(node);
  ck_assert_uint_eq(arena->span_delay_shift, grown - 1);

  numalloc_collect(); /* gives q's span back on request */
  ck_assert_int_eq(unit_resident_pages(q, 4 * NA_MiB), 0);
  ck_assert_uint_eq(arena->gave_ms, 0);
  numalloc_free(numalloc_malloc(4 * NA_MiB));
  ck_assert_uint_eq(arena->span_delay_shift, grown - 1);
  numalloc_free(keep);
}
END_TEST

/* On a machine of several nodes a node's arena keeps the wait at a quarter of the delay: its
 * spans serve that node alone, and waits grown on every node a thread passes through add up.
 * The first-touch arena, which the threads of every node share, grows its wait as the only
 * arena of a machine of one node does. */
START_TEST(span_wait_grows_on_several_nodes_only_where_every_node_takes_spans) {
  na_options.purge_delay_ms = 400;
  int usable = na_topology.usable_count;
  na_topology.usable_count = 2; /* blocks from 1 MiB then go to the first-touch arena */
  size_t below_large = 512 * NA_KiB;
  char *keep;
  char *p = freed_resident_span(below_large, &keep); /* the node's arena */
  usleep(150 * 1000);
  char *q = numalloc_malloc(768 * NA_KiB); /* p's span goes back first, then a cold span */
  ck_assert_ptr_nonnull(q);
  ck_assert_int_eq(unit_resident_pages(p, below_large), 0);
  ck_assert_uint_eq(na_arena_at(node)->span_delay_shift, 0);
  numalloc_free(q);

  na_arena_t *touch = na_arena_at(NA_TOUCH_ARENA);
  size_t size = 2 * NA_MiB;
  char *r = numalloc_malloc(size);
  memset(r, 1, size);
  numalloc_free(r);
  usleep(150 * 1000);
  char *big = numalloc_malloc(4 * NA_MiB);
  ck_assert_ptr_nonnull(big);
  ck_assert_int_eq(unit_resident_pages(r, size), 0);
  ck_assert_uint_gt(touch->span_delay_shift, 0);
  ck_assert_uint_eq(na_arena_at(node)->span_delay_shift, 0);
  memset(big, 1, 4 * NA_MiB);
  numalloc_free(big);
  usleep(150 * 1000); /* past the first wait, within the grown one */
  numalloc_free(numalloc_malloc(size));
  ck_assert_int_eq(unit_resident_pages(big, 4 * NA_MiB), (int)(4 * NA_MiB / NA_PAGE_SIZE));
  na_topology.usable_count = usable;
  numalloc_free(keep);
}
END_TEST

/* With a delay, spans freed less than the delay ago stay resident through an allocation. */
START_TEST(spans_younger_than_the_delay_stay) {
  na_options.purge_delay_ms = 3600000;
  size_t size = 2 * NA_MiB;
  char *keep;
  char *p = freed_resident_span(size, &keep);
  numalloc_free(numalloc_malloc(4 * NA_MiB));
  ck_assert_int_eq(unit_resident_pages(p, size), (int)(size / NA_PAGE_SIZE));
  numalloc_free(keep);
}
END_TEST

static int purge_threads(void) {
  int found = tu_threads_named("numalloc-purge");
  ck_assert_int_ge(found, 0);
  return found;
}

/* Slow paths until the node's purging thread runs (the caller set the options): at most 5 s,
 * so a process young for its first second gets one too. */
static void start_purge_thread(void) {
  for (int i = 0; i < 500 && purge_threads() == 0; i++) {
    numalloc_free(numalloc_malloc(4 * NA_MiB));
    usleep(10000);
  }
  ck_assert_int_eq(purge_threads(), 1);
}

/* NUMALLOC_BACKGROUND=1 in a process younger than half a span delay: it would only sleep, so
 * none starts (a shell's every command paid for one). */
START_TEST(background_thread_waits_for_a_process_old_enough) {
  na_options.background = true;
  na_options.purge_delay_ms = 3600000;
  for (int i = 0; i < 20; i++) {
    numalloc_free(numalloc_malloc(4 * NA_MiB));
    usleep(1000);
  }
  ck_assert_int_eq(purge_threads(), 0);
  na_options.purge_delay_ms = 20; /* now the process is old enough */
  numalloc_free(numalloc_malloc(4 * NA_MiB));
  for (int i = 0; i < 200 && purge_threads() == 0; i++) usleep(10000);
  ck_assert_int_eq(purge_threads(), 1);
  na_options.background = false;
}
END_TEST

/* A forked child's age starts at the fork: a child that lives a moment starts no purging
 * thread, however old its parent (every command of a build or a shell paid for one). With an
 * hour's delay a process is young for its first second, after which the parent's thread
 * starts; the options are set before it runs, which reads them. */
START_TEST(a_forked_child_waits_to_be_old_enough_too) {
  na_options.background = true;
  na_options.purge_delay_ms = 3600000;
  start_purge_thread();
  pid_t child = fork();
  ck_assert_int_ge(child, 0);
  if (child == 0) {
    for (int i = 0; i < 20; i++) {
      numalloc_free(numalloc_malloc(4 * NA_MiB));
      usleep(1000);
    }
    _exit(purge_threads() == 0 ? 0 : 3);
  }
  int status = 0;
  ck_assert_int_eq(waitpid(child, &status, 0), child);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "the child started a purging thread (status %#x)", status);
  na_options.background = false;
}
END_TEST

/* The purging thread's voluntary context switches (its wakes) over `ms`. */
static long purge_thread_wakes_over(int ms) {
  long before = -1, after = -1;
  for (int round = 0; round < 2; round++) {
    DIR *tasks = opendir("/proc/self/task");
    ck_assert_ptr_nonnull(tasks);
    struct dirent *entry;
    while ((entry = readdir(tasks)) != NULL) {
      char path[300], text[4096] = "";
      snprintf(path, sizeof path, "/proc/self/task/%s/comm", entry->d_name);
      FILE *f = fopen(path, "r");
      if (f == NULL) continue;
      bool purge = fgets(text, sizeof text, f) != NULL && strncmp(text, "numalloc-purge", 14) == 0;
      fclose(f);
      if (!purge) continue;
      snprintf(path, sizeof path, "/proc/self/task/%s/status", entry->d_name);
      f = fopen(path, "r");
      ck_assert_ptr_nonnull(f);
      size_t n = fread(text, 1, sizeof text - 1, f);
      fclose(f);
      text[n] = 0;
      const char *v = strstr(text, "voluntary_ctxt_switches:");
      ck_assert_ptr_nonnull(v);
      (round == 0 ? &before : &after)[0] = strtol(v + 24, NULL, 10);
    }
    closedir(tasks);
    if (round == 0) usleep((useconds_t)ms * 1000);
  }
  ck_assert_int_ge(before, 0);
  ck_assert_int_ge(after, before);
  return after - before;
}

/* An idle process's purging thread sleeps longer after each pass that gave nothing back, up
 * to 8 times its sleep: with a delay of 80 ms (a 10 ms sleep) it wakes at most about 13 times
 * a second once idle, where it woke 100 times; memory freed then still goes back. */
START_TEST(an_idle_purge_thread_wakes_less_often) {
  na_options.background = true;
  na_options.purge_delay_ms = 80;
  start_purge_thread();
  usleep(500000); /* idle: the sleeps grow */
  long wakes = purge_thread_wakes_over(1000);
  ck_assert_msg(wakes <= 30, "the idle purging thread woke %ld times in a second", wakes);
  size_t size = 2 * NA_MiB;
  char *keep;
  char *p = freed_resident_span(size, &keep);
  for (int i = 0; i < 300 && unit_resident_pages(p, size) != 0; i++) usleep(10000);
  ck_assert_int_eq(unit_resident_pages(p, size), 0);
  numalloc_free(keep);
  na_options.background = false;
}
END_TEST

/* NUMALLOC_BACKGROUND=1 and malloc_trim: the program's thread tidies its heap and returns 0;
 * the purge thread gives the freed span back at once, though the purge delay is an hour. The
 * delay is set before the thread runs (it reads the options; a program never changes them),
 * so the thread starts once the process is a second old. */
START_TEST(background_trim_is_done_by_the_purge_thread) {
  na_options.background = true;
  na_options.purge_delay_ms = 3600000;
  for (int i = 0; i < 500 && purge_threads() == 0; i++) {
    numalloc_free(numalloc_malloc(4 * NA_MiB));
    usleep(10000);
  }
  ck_assert_int_eq(purge_threads(), 1);
  size_t size = 2 * NA_MiB;
  char *keep;
  char *p = freed_resident_span(size, &keep);
  int64_t calls = unit_purge_calls();
  ck_assert_int_eq(na_trim(), 0);
  ck_assert_int_eq(unit_purge_calls(), calls);
  for (int i = 0; i < 500 && unit_resident_pages(p, size) != 0; i++) usleep(10000);
  ck_assert_int_eq(unit_resident_pages(p, size), 0);
  ck_assert_int_eq(unit_purge_calls(), calls);
  numalloc_free(keep);
  na_options.background = false;
}
END_TEST

/* A signal whose handler changes the process's credentials pauses the helpers, which takes
 * the lock a helper's start holds: raised in the middle of a start (by the hook), it is
 * handled once the start let go of the lock, and the pause joins the new helper. With the
 * signal handled at once, the thread waits for itself (SIGALRM ends the test then). */
static _Atomic int paused_in_handler;
static void pause_helpers(int sig) {
  (void)sig;
  na_helpers_pause();
  na_helpers_resume();
  atomic_fetch_add(&paused_in_handler, 1);
}
static void raise_pause_signal(void) {
  raise(SIGUSR1);
  ck_assert_int_eq(atomic_load(&paused_in_handler), 0);
}
static void *helper_that_returns(void *arg) { return arg; }

START_TEST(a_signal_during_a_helper_start_is_handled_after_it) {
  struct sigaction handler = {.sa_handler = pause_helpers}, old;
  ck_assert_int_eq(sigaction(SIGUSR1, &handler, &old), 0);
  alarm(10);
  _Atomic bool running = false;
  na_helper_start_hook = raise_pause_signal;
  ck_assert(na_helper_start(&running, "numalloc-test", helper_that_returns, NULL));
  na_helper_start_hook = NULL;
  alarm(0);
  ck_assert_int_eq(atomic_load(&paused_in_handler), 1);
  ck_assert(!atomic_load(&running)); /* the pause joined it: a later slow path starts it anew */
  ck_assert_int_eq(tu_threads_named("numalloc-test"), 0);
  sigaction(SIGUSR1, &old, NULL);
}
END_TEST

/* NUMALLOC_BACKGROUND=1: the node's purging thread gives the span back; the program's
 * thread, which freed it and allocates on, makes no such call itself. */
START_TEST(background_thread_purges_for_the_program) {
  na_options.background = true;
  na_options.purge_delay_ms = 20;
  size_t size = 2 * NA_MiB;
  char *keep = numalloc_malloc(300 * NA_KiB);
  char *p = numalloc_malloc(size);
  memset(p, 1, size);
  int64_t calls = unit_purge_calls();
  numalloc_free(p);
  /* Slow paths: the node's thread starts at one once the process is 2.5 ms old. */
  for (int i = 0; i < 200 && unit_resident_pages(p, size) != 0; i++) {
    numalloc_free(numalloc_malloc(4 * NA_MiB));
    usleep(10000);
  }
  ck_assert_int_eq(unit_resident_pages(p, size), 0);
  ck_assert_int_eq(unit_purge_calls(), calls);
  numalloc_free(keep);
  na_options.background = false;
}
END_TEST

/* Empty segments beyond NUMALLOC_SEGMENT_CACHE are unmapped by the first purge pass after
 * they stayed empty for the delay, never by the frees; collect unmaps the rest. Each block
 * of NA_LARGE_MAX fills a segment of its own. */
START_TEST(segment_cache_bounds_empty_segments) {
  enum { COUNT = 6 };
  void *blocks[COUNT];
  for (int i = 0; i < COUNT; i++) {
    blocks[i] = numalloc_malloc(NA_LARGE_MAX);
    ck_assert_ptr_nonnull(blocks[i]);
    memset(blocks[i], i, NA_PAGE_SIZE);
  }
  ck_assert_uint_eq(na_arena_mapped_bytes(node), COUNT * NA_SEGMENT_SIZE);
  for (int i = 0; i < COUNT; i++) numalloc_free(blocks[i]);
  ck_assert_uint_eq(na_arena_mapped_bytes(node), COUNT * NA_SEGMENT_SIZE);
  na_arena_purge_expired(node); /* the delay has not passed */
  ck_assert_uint_eq(na_arena_mapped_bytes(node), COUNT * NA_SEGMENT_SIZE);
  na_options.purge_delay_ms = 0;
  na_arena_purge_expired(node);
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 2 * NA_SEGMENT_SIZE);
  numalloc_collect();
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 0);
  for (int i = 0; i < COUNT; i++) ck_assert_int_eq(numalloc_node_of(blocks[i]), -1);

  na_options.segment_cache = 0;
  for (int i = 0; i < COUNT; i++) blocks[i] = numalloc_malloc(NA_LARGE_MAX);
  for (int i = 0; i < COUNT; i++) numalloc_free(blocks[i]);
  na_arena_purge_expired(node);
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 0);
}
END_TEST

/* A program that frees everything ends with little resident heap. */
START_TEST(freeing_everything_returns_resident_memory) {
  enum { COUNT = 65536, SIZE = 1000 };
  void **blocks = calloc(COUNT, sizeof *blocks);
  ck_assert_ptr_nonnull(blocks);
  size_t before = unit_rss_bytes();
  for (int i = 0; i < COUNT; i++) {
    blocks[i] = numalloc_malloc(SIZE);
    UNIT_REQUIRE(blocks[i] != NULL, "block %d", i);
    memset(blocks[i], 0x5a, SIZE);
  }
  size_t peak = unit_rss_bytes();
  ck_assert_uint_ge(peak, before + COUNT * (size_t)SIZE * 9 / 10);
  for (int i = 0; i < COUNT; i++) numalloc_free(blocks[i]);
  numalloc_collect();
  size_t after = unit_rss_bytes();
  ck_assert_msg(after <= before + UNIT_RSS_SLACK + UNIT_ASAN_SHADOW_OF(peak - before),
                "RSS %zu KiB before, %zu at peak, %zu after", before / 1024, peak / 1024,
                after / 1024);
  ck_assert_uint_le(na_arena_mapped_bytes(node), NA_SEGMENT_SIZE);
  free(blocks);
}
END_TEST

START_TEST(huge_blocks_map_and_unmap) {
  char *p = numalloc_malloc(40 * NA_MiB);
  ck_assert_ptr_nonnull(p);
  ck_assert_uint_eq((uintptr_t)p % NA_SLICE_SIZE, 0);
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 64 * NA_MiB);
  ck_assert_uint_ge(numalloc_usable_size(p), 40 * NA_MiB);
  p[0] = 1;
  p[40 * NA_MiB - 1] = 2;
  char *q = numalloc_aligned_alloc(4 * NA_MiB, 36 * NA_MiB);
  ck_assert_ptr_nonnull(q);
  ck_assert_uint_eq((uintptr_t)q % (4 * NA_MiB), 0);
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 64 * NA_MiB + 64 * NA_MiB);
  numalloc_free(p);
  numalloc_free(q);
  numalloc_collect(); /* freed huge blocks wait for the next ones until a collection */
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 0);
  ck_assert(!unit_is_mapped(p, NA_PAGE_SIZE));
  ck_assert(!unit_is_mapped(q, NA_PAGE_SIZE));
}
END_TEST

/* A freed huge block's segment serves the next huge block of its node that fits it, resident
 * and without a new mapping; a second free of it is still named; one that found no taker
 * goes back to the OS once it has waited the purge delay (a quarter of it, as free spans). */
START_TEST(freed_huge_blocks_serve_the_next_then_go_back) {
  char *p = numalloc_malloc(40 * NA_MiB);
  ck_assert_ptr_nonnull(p);
  memset(p, 0x5a, 40 * NA_MiB);
  numalloc_free(p);
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 64 * NA_MiB); /* kept */
  ck_assert_uint_eq(na_arena_huge_bytes(node), 0);
  char *again = numalloc_malloc(50 * NA_MiB); /* the same 64 MiB segment fits it */
  ck_assert_ptr_eq(again, p);
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 64 * NA_MiB);
  ck_assert_uint_ge(na_arena_huge_bytes(node), 50 * NA_MiB);
  ck_assert_int_eq(unit_resident_pages(again, 40 * NA_MiB), (long)(40 * NA_MiB / NA_PAGE_SIZE));
  char *zeroed = numalloc_calloc(1, 40 * NA_MiB);
  ck_assert_ptr_nonnull(zeroed);
  memset(zeroed, 0x33, 40 * NA_MiB);
  numalloc_free(zeroed);
  char *kept_calloc = numalloc_calloc(1, 40 * NA_MiB); /* the kept one, given back, not cleared */
  ck_assert_ptr_eq(kept_calloc, zeroed);
  ck_assert_int_eq(unit_resident_pages(kept_calloc, 40 * NA_MiB), 0);
  ck_assert_uint_eq(tu_nonzero(kept_calloc, 40 * NA_MiB), SIZE_MAX);
  numalloc_free(kept_calloc);
  numalloc_free(again);
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 128 * NA_MiB);
  char *bigger = numalloc_malloc(100 * NA_MiB); /* neither fits: a mapping of its own */
  ck_assert_ptr_nonnull(bigger);
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 256 * NA_MiB);
  numalloc_free(bigger); /* replaces the one kept longest */
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 192 * NA_MiB);
  na_options.purge_delay_ms = 4;
  struct timespec pause = {0, 20 * 1000 * 1000};
  nanosleep(&pause, NULL);
  char *fresh = numalloc_malloc(300 * NA_MiB); /* above what is kept; its pass unmaps them */
  ck_assert_ptr_nonnull(fresh);
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 320 * NA_MiB); /* the kept two are gone */
  numalloc_free(fresh);                                         /* too big to keep */
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 0);
}
END_TEST

/* Freed first-touch huge blocks are kept as well. One whose pages are on the node of the
 * thread that allocates next is reused resident. Once a block turns out to have been used on
 * another node than its allocating thread's (one node here: "allocated on node 1" is written
 * into the kept segment), the process allocates for threads of other nodes, and every kept
 * block goes back to the kernel before reuse, so that its next user's touch places it. */
START_TEST(huge_first_touch_blocks_reused_where_their_pages_are) {
  ck_assert_int_ne(na_access_check(), NA_CHECK_NONE); /* the kernel tells where pages are */
  int usable = na_topology.usable_count;
  na_topology.usable_count = 2;
  size_t size = 40 * NA_MiB;
  long pages = (long)(size / NA_PAGE_SIZE);
  char *p = numalloc_malloc(size);
  ck_assert_int_eq(na_segment_lookup(p)->arena_index, NA_TOUCH_ARENA);
  memset(p, 1, size);
  numalloc_free(p);
  int64_t calls = unit_purge_calls();
  char *q = numalloc_malloc(size);
  ck_assert_ptr_eq(q, p);
  ck_assert_int_eq(unit_resident_pages(q, size), pages);
  ck_assert_int_eq(unit_purge_calls(), calls);
  ck_assert_uint_eq(tu_nonzero(q, size), 0); /* as it was: the first byte is not zero */
  numalloc_free(q);
  na_segment_lookup(p)->slices[NA_META_SLICES].used_on = 1;
  q = numalloc_malloc(size);
  ck_assert_ptr_eq(q, p);
  ck_assert_int_eq(unit_resident_pages(q, size), 0);
  ck_assert_int_eq(unit_purge_calls(), calls + 1);
  memset(q, 2, size);
  numalloc_free(q);
  q = numalloc_malloc(size); /* pages on this node, allocated here: given back all the same */
  ck_assert_ptr_eq(q, p);
  ck_assert_int_eq(unit_resident_pages(q, size), 0);
  ck_assert_int_eq(unit_purge_calls(), calls + 2);
  numalloc_free(q);
  na_topology.usable_count = usable;
}
END_TEST

/* The first-touch arena has no heap of its own: its kept blocks go back at the purge pass
 * of a thread that only allocates small blocks from then on. */
START_TEST(first_touch_kept_blocks_go_back_at_any_heap_pass) {
  int usable = na_topology.usable_count;
  na_topology.usable_count = 2;
  char *p = numalloc_malloc(40 * NA_MiB);
  ck_assert_int_eq(na_segment_lookup(p)->arena_index, NA_TOUCH_ARENA);
  memset(p, 1, 40 * NA_MiB);
  numalloc_free(p);
  ck_assert_uint_eq(na_arena_mapped_bytes(NA_TOUCH_ARENA), 64 * NA_MiB); /* kept */
  void *small = numalloc_malloc(100);
  na_heap_t *heap = na_tls_heap;
  na_options.purge_delay_ms = 4;
  struct timespec pause = {0, 20 * 1000 * 1000};
  nanosleep(&pause, NULL);
  heap->last_pass_ms = na_os_clock_ms() - (UINT32_MAX / 2); /* a pass is due */
  na_heap_pass(heap);
  ck_assert_uint_eq(na_arena_mapped_bytes(NA_TOUCH_ARENA), 0);
  numalloc_free(small);
  na_topology.usable_count = usable;
}
END_TEST

START_TEST(second_free_of_a_kept_huge_block_aborts) {
  void *p = numalloc_malloc(40 * NA_MiB);
  numalloc_free(p);
  unit_silence_stderr();
  numalloc_free(p);
}
END_TEST

/* A kept huge block serves an aligned one whose start is further in: the lookup of the new
 * start leads to the block (only the descriptors a lookup needs are written), and a pointer
 * inside the block, in the first segment's slices or past them, is named at its free. */
START_TEST(a_kept_huge_block_serves_an_aligned_one) {
  char *p = numalloc_malloc(40 * NA_MiB);
  na_segment_t *seg = na_segment_lookup(p);
  numalloc_free(p);
  char *q = numalloc_aligned_alloc(4 * NA_MiB, 36 * NA_MiB);
  ck_assert_ptr_eq(na_segment_lookup(q), seg);
  ck_assert_ptr_eq(q, (char *)seg + 4 * NA_MiB);
  ck_assert_uint_eq(numalloc_usable_size(q), 60 * NA_MiB);
  ck_assert_ptr_eq(na_page_of(seg, q), &seg->slices[NA_META_SLICES]);
  char *r = numalloc_realloc(q, 50 * NA_MiB);
  ck_assert_ptr_eq(r, q);
  numalloc_free(r);
}
END_TEST

static const size_t inside_huge[] = {NA_PAGE_SIZE, 5 * NA_MiB, 31 * NA_MiB, 33 * NA_MiB};

START_TEST(free_inside_a_huge_block_aborts) {
  char *p = numalloc_malloc(40 * NA_MiB);
  unit_silence_stderr();
  numalloc_free(p + inside_huge[_i]);
}
END_TEST

/* Shrinking gives the tail back in place; growing into the range just freed stays in place;
 * the contents survive both. */
START_TEST(huge_realloc_in_place) {
  size_t big = 100 * NA_MiB, small = 40 * NA_MiB;
  char *p = numalloc_malloc(big);
  ck_assert_ptr_nonnull(p);
  tu_fill(p, small, 11);
  p[big - 1] = 7;
  char *q = numalloc_realloc(p, small);
  ck_assert_ptr_eq(q, p);
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 64 * NA_MiB);
  ck_assert(!unit_is_mapped(p + 64 * NA_MiB, NA_PAGE_SIZE));
  char *r = numalloc_realloc(q, big);
  ck_assert_ptr_eq(r, p); /* the range after it is free: it was ours a moment ago */
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 128 * NA_MiB);
  ck_assert_uint_eq(tu_mismatch(r, small, 11), SIZE_MAX);
  ck_assert_uint_eq(tu_nonzero(r + small, big - small), SIZE_MAX); /* the new part is fresh */
  numalloc_free(r);
  numalloc_collect();
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 0);
}
END_TEST

/* With the address range after it taken, a growing huge block moves (mremap, no copy): same
 * offset in its new segment, contents intact, the old range no longer ours. */
START_TEST(huge_realloc_moves_when_blocked) {
  size_t size = 40 * NA_MiB;
  char *p = numalloc_malloc(size);
  ck_assert_ptr_nonnull(p);
  tu_fill(p, size, 12);
  na_segment_t *seg = na_segment_lookup(p);
  char *end = (char *)seg + seg->size;
  void *guard =
      mmap(end, NA_PAGE_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  ck_assert_msg(guard == end || errno == EEXIST, "cannot place the guard page");
  char *q = numalloc_realloc(p, 3 * size);
  ck_assert_ptr_nonnull(q);
  ck_assert_ptr_ne(q, p);
  na_segment_t *moved = na_segment_lookup(q);
  ck_assert_ptr_nonnull(moved);
  ck_assert_uint_eq((uintptr_t)(q - (char *)moved), (uintptr_t)(p - (char *)seg));
  ck_assert_uint_eq(moved->size, 128 * NA_MiB);
  ck_assert_uint_eq(tu_mismatch(q, size, 12), SIZE_MAX);
  q[3 * size - 1] = 1;
  ck_assert_int_eq(numalloc_node_of(p), -1);
  ck_assert_int_eq(numalloc_node_of(q + 3 * size - 1), node);
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 128 * NA_MiB);
  numalloc_free(q);
  numalloc_collect();
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 0);
  if (guard == end) munmap(guard, NA_PAGE_SIZE);
}
END_TEST

/* realloc across the large and huge boundaries, both ways, keeps the common prefix. */
START_TEST(realloc_between_large_and_huge_keeps_contents) {
  const size_t sizes[] = {1 * NA_MiB, 20 * NA_MiB, 70 * NA_MiB,
                          8 * NA_MiB, 33 * NA_MiB, 300 * NA_KiB};
  char *p = numalloc_malloc(sizes[0]);
  tu_fill(p, sizes[0], 99);
  size_t valid = sizes[0];
  for (size_t i = 1; i < sizeof sizes / sizeof sizes[0]; i++) {
    char *q = numalloc_realloc(p, sizes[i]);
    ck_assert_ptr_nonnull(q);
    size_t keep = valid < sizes[i] ? valid : sizes[i];
    ck_assert_msg(tu_mismatch(q, keep, 99) == SIZE_MAX, "step %zu: %zu -> %zu", i, sizes[i - 1],
                  sizes[i]);
    tu_fill(q, sizes[i], 99);
    valid = sizes[i];
    p = q;
  }
  numalloc_free(p);
  numalloc_collect();
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 0);
}
END_TEST

/* A second node whose memory cannot be had: NUMALLOC_FALLBACK=nearest takes the next node in
 * its fallback order, none fails. (This machine has one node; the topology is patched and
 * the failure injected, so only the arena's decision is tested.) */
START_TEST(fallback_follows_the_order) {
  if (node != 0) return;
  na_page_t *first = span_alloc(1); /* arena 0 has room now */
  na_topology.node_count = 2;
  na_topology.fallback_order[1][0] = 1;
  na_topology.fallback_order[1][1] = 0;
  na_topology.fallback_order[1][2] = -1;
  na_options.fallback = NA_FALLBACK_NEAREST;
  na_os_inject_map_failures(4); /* every attempt at a segment for arena 1 */
  int actual = -1;
  na_page_t *span = na_arena_alloc_span(1, 2, &actual);
  ck_assert_ptr_nonnull(span);
  ck_assert_int_eq(actual, 0);
  ck_assert_int_eq(na_segment_of_aligned(span)->arena_index, 0);
  na_arena_free_span(span);

  na_options.fallback = NA_FALLBACK_NONE;
  na_os_inject_map_failures(4);
  actual = -1;
  ck_assert_ptr_null(na_arena_alloc_span(1, 2, &actual));
  na_os_inject_map_failures(0);
  ck_assert_uint_eq(na_arena_mapped_bytes(1), 0);
  na_arena_free_span(first);
}
END_TEST

/* madvise, as the core sees it (the test binary's definition wins at link time): a test can
 * hold the next MADV_DONTNEED so a purge stays in flight while it frees more spans. */
static pthread_mutex_t hold_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cond = PTHREAD_COND_INITIALIZER;
static enum { HOLD_OFF, HOLD_ARMED, HOLD_HELD, HOLD_RELEASED } hold_state;

int madvise(void *addr, size_t size, int advice) {
  if (advice == MADV_DONTNEED) {
    pthread_mutex_lock(&hold_lock);
    if (hold_state == HOLD_ARMED) {
      hold_state = HOLD_HELD;
      pthread_cond_broadcast(&hold_cond);
      while (hold_state != HOLD_RELEASED) pthread_cond_wait(&hold_cond, &hold_lock);
    }
    pthread_mutex_unlock(&hold_lock);
  }
  return (int)syscall(SYS_madvise, addr, size, advice);
}

/* Waits for the hold to reach `state`; fails after 10 s (the free never reached a purge). */
static void hold_wait_for(int state) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 10;
  pthread_mutex_lock(&hold_lock);
  int rc = 0;
  while ((int)hold_state != state && rc == 0)
    rc = pthread_cond_timedwait(&hold_cond, &hold_lock, &deadline);
  pthread_mutex_unlock(&hold_lock);
  ck_assert_msg(rc == 0, "the purge never reached madvise (state %d, waiting for %d)",
                (int)hold_state, state);
}

static void hold_set(int state) {
  pthread_mutex_lock(&hold_lock);
  hold_state = state;
  pthread_cond_broadcast(&hold_cond);
  pthread_mutex_unlock(&hold_lock);
}

static void *free_in_thread(void *p) {
  numalloc_free(p);
  na_arena_purge_expired(node); /* delay 0: the span just freed goes back now */
  return NULL;
}

/* A segment must not be unmapped while another thread's purge has one of its spans out of
 * the free lists (NA_SPAN_PURGING, madvise running unlocked): that thread would write the
 * span back into an unmapped header. Found by purge_races_with_free; made deterministic by
 * holding a thread's purge inside madvise while the segment empties. */
START_TEST(segment_kept_while_a_span_is_purging) {
  na_options.purge_delay_ms = 0;
  na_options.segment_cache = 0;
  char *a = numalloc_malloc(NA_MiB);
  char *b = numalloc_malloc(NA_MiB);
  na_segment_t *seg = na_segment_lookup(a);
  ck_assert_ptr_eq(na_segment_lookup(b), seg);
  hold_set(HOLD_ARMED);
  pthread_t thread;
  ck_assert_int_eq(pthread_create(&thread, NULL, free_in_thread, b), 0);
  hold_wait_for(HOLD_HELD); /* b's span, merged with the rest, is being purged */
  numalloc_free(a);         /* the segment is now empty but for the purging span */
  ck_assert_msg(unit_is_mapped(seg, NA_PAGE_SIZE),
                "segment unmapped while one of its spans is being purged");
  hold_set(HOLD_RELEASED);
  pthread_join(thread, NULL);
  hold_set(HOLD_OFF);
  check_segment(seg);
  ck_assert_uint_eq(seg->free_slices, NA_SLICES_PER_SEGMENT - NA_META_SLICES);
  numalloc_collect();
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 0);
}
END_TEST

/* Threads free spans while others purge (delay 0, no segment cache): the same race at random,
 * and whatever else concurrent purging might break. */
static void *purge_churn(void *arg) {
  uint64_t rng = (uintptr_t)arg;
  void *live[8] = {0};
  for (int i = 0; i < 4000; i++) {
    int slot = (int)(tu_rand(&rng) % 8);
    if (live[slot] != NULL) {
      numalloc_free(live[slot]);
      live[slot] = NULL;
    } else {
      size_t size = NA_SMALL_MAX + 1 + tu_rand(&rng) % (3 * NA_MiB);
      live[slot] = numalloc_malloc(size);
      if (live[slot] != NULL) memset(live[slot], 1, 64);
    }
  }
  for (int i = 0; i < 8; i++) numalloc_free(live[i]);
  return NULL;
}

START_TEST(purge_races_with_free) {
  na_options.purge_delay_ms = 0;
  na_options.segment_cache = 0;
  uintptr_t seeds[4] = {1, 2, 3, 4};
  pthread_t threads[4];
  for (int i = 0; i < 4; i++)
    ck_assert_int_eq(pthread_create(&threads[i], NULL, purge_churn, (void *)seeds[i]), 0);
  for (int i = 0; i < 4; i++) pthread_join(threads[i], NULL);
  numalloc_collect();
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 0);
}
END_TEST

/* ---- fork ----------------------------------------------------------------------------
 * Fork takes the locks of the arenas in use only. A thread brings an arena into use and takes
 * its lock over and over while its process forks: the child can use the arena. (The window
 * where a wrong scheme would leave the lock held in the child, between fork's look at the
 * arenas and the kernel's copy, is microseconds wide: this checks the scheme's use, and
 * that being in use is each process's own, more than it can catch that race.) */
static _Atomic bool keep_using;

/* A span of the interleaved arena taken and given back; the span, or NULL when none came. */
static na_page_t *use_interleaved_arena(void) {
  int actual = -1;
  na_page_t *span = na_arena_alloc_span(NA_INTERLEAVE_ARENA, 1, &actual);
  if (span != NULL) na_arena_free_span(span);
  return span;
}

static void *use_interleaved_arena_until_told(void *arg) {
  (void)arg;
  na_page_t *span;
  do span = use_interleaved_arena();
  while (span != NULL && atomic_load(&keep_using));
  return span;
}

START_TEST(fork_while_an_arena_comes_into_use) {
  ck_assert(!na_arena_in_use(NA_INTERLEAVE_ARENA));
  for (int round = 0; round < 100; round++) {
    pid_t first = fork();
    ck_assert_int_ge(first, 0);
    if (first == 0) { /* a process where the arena is not in use yet */
      /* its first use, then the arena's lock again and again until after the fork (the
       * child forked meanwhile starts no thread: the sanitizers' runtimes require it) */
      pthread_t thread;
      atomic_store(&keep_using, true);
      if (pthread_create(&thread, NULL, use_interleaved_arena_until_told, NULL) != 0) _exit(2);
      pid_t second = fork();
      if (second == 0) {
        signal(SIGALRM, SIG_DFL); /* not the test runner's handler */
        alarm(5);                 /* a lock left held: SIGALRM */
        _exit(use_interleaved_arena() != NULL ? 0 : 3);
      }
      atomic_store(&keep_using, false);
      int status = 0;
      bool done = second > 0 && waitpid(second, &status, 0) == second;
      void *span = NULL;
      pthread_join(thread, &span);
      _exit(!done ? 4 : WIFSIGNALED(status) ? 5 : span == NULL ? 6 : WEXITSTATUS(status));
    }
    int status = 0;
    ck_assert_int_eq(waitpid(first, &status, 0), first);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "round %d: status %d (5: hung)",
                  round, status);
  }
  ck_assert(!na_arena_in_use(NA_INTERLEAVE_ARENA)); /* the children's use was theirs */
  use_interleaved_arena();
  ck_assert(na_arena_in_use(NA_INTERLEAVE_ARENA));
}
END_TEST

int main(int argc, char **argv) {
  (void)argc;
  Suite *s = suite_create("arena");
  TCase *tc = unit_tcase(s, "spans", 10);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, validators_name_what_is_broken);
  tcase_add_test(tc, each_arena_has_its_own_descriptor_and_lock);
  tcase_add_test(tc, segments_open_granules_as_spans_are_handed_out);
  tcase_add_test(tc, spans_split_and_coalesce);
  tcase_add_test(tc, holes_are_filled_first);
  tcase_add_test(tc, dirty_spans_are_reused_before_clean_ones);
  tcase_add_test(tc, spans_of_the_threads_own_segment_come_first);
  tcase_add_test(tc, own_spans_first_only_where_resident);
  tcase_add_test(tc, fresh_spans_come_from_the_threads_own_segment);
  tcase_add_test(tc, segments_of_a_thread_that_left_are_the_next_takers);
  tcase_add_test(tc, full_segment_grows_the_arena);
  tcase_add_test(tc, huge_pages_once_an_arena_holds_a_segment);
  tcase_add_test(tc, the_second_segment_takes_huge_pages);
  tcase_add_test(tc, random_spans_keep_segments_consistent);
  tcase_add_test(tc, large_blocks_are_reused);
  tcase_add_test(tc, large_realloc_in_place);
  tcase_add_test(tc, fallback_follows_the_order);
  tc = unit_tcase(s, "purge", 20);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, collect_returns_freed_spans);
  tcase_add_test(tc, given_back_part_of_a_merged_span_stays_zero);
  tcase_add_test(tc, locked_pages_are_never_taken_for_zero);
  tcase_add_test(tc, frees_never_purge_the_next_span_allocation_does);
  tcase_add_test(tc, span_wait_grows_when_memory_given_back_is_needed_again);
  tcase_add_test(tc, span_wait_grows_on_several_nodes_only_where_every_node_takes_spans);
  tcase_add_test(tc, spans_younger_than_the_delay_stay);
  tcase_add_test(tc, spans_go_back_after_a_quarter_of_the_delay);
  tcase_add_test(tc, background_thread_purges_for_the_program);
  tcase_add_test(tc, background_thread_waits_for_a_process_old_enough);
  tcase_add_test(tc, background_trim_is_done_by_the_purge_thread);
  tcase_add_test(tc, a_forked_child_waits_to_be_old_enough_too);
  tcase_add_test(tc, an_idle_purge_thread_wakes_less_often);
  tcase_add_test(tc, a_signal_during_a_helper_start_is_handled_after_it);
  tcase_add_test(tc, segment_cache_bounds_empty_segments);
  tcase_add_test(tc, freeing_everything_returns_resident_memory);
  tcase_add_test(tc, purge_races_with_free);
  tcase_add_test(tc, segment_kept_while_a_span_is_purging);
  tc = unit_tcase(s, "huge", 20);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, huge_blocks_map_and_unmap);
  tcase_add_test(tc, freed_huge_blocks_serve_the_next_then_go_back);
  tcase_add_test(tc, huge_first_touch_blocks_reused_where_their_pages_are);
  tcase_add_test(tc, first_touch_kept_blocks_go_back_at_any_heap_pass);
  tcase_add_test_raise_signal(tc, second_free_of_a_kept_huge_block_aborts, SIGABRT);
  tcase_add_test(tc, a_kept_huge_block_serves_an_aligned_one);
  tcase_add_loop_test_raise_signal(tc, free_inside_a_huge_block_aborts, SIGABRT, 0,
                                   (int)(sizeof inside_huge / sizeof inside_huge[0]));
  tcase_add_test(tc, huge_realloc_in_place);
  tcase_add_test(tc, huge_realloc_moves_when_blocked);
  tcase_add_test(tc, realloc_between_large_and_huge_keeps_contents);
  tc = unit_tcase(s, "fork", 60);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, fork_while_an_arena_comes_into_use);
  return unit_run(s, argv);
}
