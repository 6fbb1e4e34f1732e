/* check_bin.c: the heap's bins (bin.c). The block a thread freed last is the next one its
 * class hands out, whichever page it is on; a full bin leaves frees to the pages; a bin takes
 * only blocks of its heap's own arena, and of other threads' pages only big ones; a pass, a
 * collection and the thread's exit send the blocks back to their pages; every allocation
 * from a bin is counted; a bin empties newest first and then leaves malloc to the pages; the
 * invariant check reads the bins; a second free of a block waiting in a bin is named,
 * whoever makes it: at once when it is the bin's newest block or the free reads the block,
 * otherwise when the bin reaches the block again or is emptied, before any second hand-out. */
#include "unit.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { SIZE = 48 };

static void setup(void) { unit_quiet_purge(); }

static na_page_t *page_of(void *p) {
  na_segment_t *segment = na_segment_lookup(p);
  UNIT_REQUIRE(segment != NULL, "%p not owned", p);
  return na_page_of(segment, p);
}

static int arena_of(void *p) { return na_segment_lookup(p)->arena_index; }

START_TEST(the_block_freed_last_is_handed_out_next) {
  void *a = numalloc_malloc(SIZE), *b = numalloc_malloc(SIZE), *c = numalloc_malloc(SIZE);
  numalloc_free(b);
  ck_assert_ptr_eq(numalloc_malloc(SIZE), b);
  numalloc_free(a);
  numalloc_free(c);
  ck_assert_ptr_eq(numalloc_malloc(SIZE - 8), c); /* another size of the same class */
  ck_assert_ptr_eq(numalloc_malloc(SIZE), a);
  numalloc_free(a);
  numalloc_free(b);
  numalloc_free(c);
}
END_TEST

/* Blocks of two pages, freed in turn: each comes back newest first, across the pages. */
START_TEST(a_bin_spans_the_pages_of_its_class) {
  static void *blocks[8192];
  size_t n = 0;
  blocks[n++] = numalloc_malloc(SIZE);
  na_page_t *first = page_of(blocks[0]);
  while (page_of(blocks[n - 1]) == first) {
    UNIT_REQUIRE(n < 8192, "page of %u blocks", first->reserved);
    blocks[n++] = numalloc_malloc(SIZE);
  }
  void *other_page = blocks[n - 1], *this_page = blocks[n / 2];
  numalloc_free(blocks[0]); /* the first page was full: this brings it back to its queue */
  blocks[0] = NULL;
  numalloc_free(this_page);
  numalloc_free(other_page);
  ck_assert_ptr_eq(numalloc_malloc(SIZE), other_page);
  ck_assert_ptr_eq(numalloc_malloc(SIZE), this_page);
  for (size_t i = 0; i < n; i++) numalloc_free(blocks[i]);
}
END_TEST

START_TEST(a_full_bin_leaves_frees_to_the_page) {
  static void *blocks[NA_BIN_SLOTS + 1];
  for (int i = 0; i <= NA_BIN_SLOTS; i++) blocks[i] = numalloc_malloc(SIZE);
  na_page_t *page = page_of(blocks[0]);
  uint32_t used = page->used;
  na_bin_t *bin = &na_tls_heap->bins[na_size_class(SIZE)];
  ck_assert_uint_eq(bin->count, 0);
  for (int i = 0; i < NA_BIN_SLOTS; i++) numalloc_free(blocks[i]);
  ck_assert_uint_eq(bin->count, NA_BIN_SLOTS);
  ck_assert_uint_eq(page->used, used); /* still counted in use by the page */
  numalloc_free(blocks[NA_BIN_SLOTS]);
  ck_assert_uint_eq(bin->count, NA_BIN_SLOTS);
  ck_assert_uint_eq(page->used, used - 1);
  ck_assert_ptr_eq(page->local_free, blocks[NA_BIN_SLOTS]);
  /* emptied newest first, down to an empty bin that leaves malloc to the pages */
  for (int i = NA_BIN_SLOTS - 1; i >= 0; i--) {
    ck_assert_ptr_eq(bin->top, blocks[i]);
    ck_assert_ptr_eq(numalloc_malloc(SIZE), blocks[i]);
  }
  ck_assert_uint_eq(bin->count, 0);
  ck_assert_ptr_null(bin->top);
  ck_assert_ptr_null(na_check_heap(na_tls_heap));
  void *from_page = numalloc_malloc(SIZE);
  ck_assert_uint_eq(bin->count, 0);
  for (int i = 0; i < NA_BIN_SLOTS; i++) ck_assert_ptr_ne(from_page, blocks[i]);
  numalloc_free(from_page);
  for (int i = 0; i < NA_BIN_SLOTS; i++) numalloc_free(blocks[i]);
}
END_TEST

/* Bins of bigger classes hold about NA_BIN_BYTES; classes above NA_BIN_MAX have none. */
START_TEST(bins_of_big_classes_hold_a_few_blocks) {
  ck_assert_int_eq(na_size_class(NA_BIN_MAX), NA_BIN_CLASSES - 1);
  enum { BIG = NA_BIN_MAX, MADE = 2 * (NA_BIN_BYTES / BIG) + 2 };
  _Static_assert(NA_BIN_BYTES / BIG < NA_BIN_SLOTS, "the bin is bounded by its bytes");
  void *blocks[MADE];
  for (int i = 0; i < MADE; i++) blocks[i] = numalloc_malloc(BIG);
  na_bin_t *bin = &na_tls_heap->bins[na_size_class(BIG)];
  ck_assert_uint_eq(bin->capacity, NA_BIN_BYTES / BIG);
  for (int i = 0; i < MADE; i++) numalloc_free(blocks[i]);
  ck_assert_uint_eq(bin->count, bin->capacity);
  /* the last freed that found room (a free that takes a page off the full list goes to
   * the page, and those after the bin filled went there too) */
  void *newest = bin->slots[bin->count - 1];
  bool freed_here = false;
  for (int i = 0; i < MADE; i++) freed_here |= blocks[i] == newest;
  ck_assert(freed_here);
  ck_assert_ptr_eq(numalloc_malloc(BIG), newest);
  void *huge_class = numalloc_malloc(2 * NA_BIN_MAX);
  na_page_t *page = page_of(huge_class);
  numalloc_free(huge_class);
  ck_assert_ptr_eq(page->local_free, huge_class);
  ck_assert_uint_eq(na_tls_heap->bins[page->size_class].count, 0);
}
END_TEST

/* The block a buffer grew out of is freed: a small one into the bin, a big one to its page,
 * where it does not keep the page from going back while the buffer lives elsewhere. */
START_TEST(a_big_block_realloc_moved_out_of_goes_to_its_page) {
  enum { SMALL = 16 * 1024, BIG = 40 * 1024 };
  _Static_assert(SMALL <= NA_BIG_BLOCK && BIG > NA_BIG_BLOCK && BIG <= NA_BIN_MAX, "classes");
  void *small = numalloc_malloc(SMALL);
  na_bin_t *small_bin = &na_tls_heap->bins[na_size_class(SMALL)];
  uint32_t small_count = small_bin->count;
  void *grown = numalloc_realloc(small, SMALL + SMALL / 2);
  ck_assert_ptr_ne(grown, small);
  ck_assert_uint_eq(small_bin->count, small_count + 1);
  ck_assert_ptr_eq(small_bin->slots[small_bin->count - 1], small);

  void *big = numalloc_malloc(BIG);
  na_page_t *page = page_of(big);
  na_bin_t *big_bin = &na_tls_heap->bins[page->size_class];
  ck_assert_uint_gt(big_bin->capacity, 0);
  uint32_t big_count = big_bin->count;
  void *moved = numalloc_realloc(big, BIG + BIG / 2);
  ck_assert_ptr_ne(moved, big);
  ck_assert_uint_eq(big_bin->count, big_count);
  ck_assert_ptr_eq(page->local_free, big);
  numalloc_free(grown);
  numalloc_free(moved);
}
END_TEST

/* A block of another arena of the same thread (here the interleaved one's heap) goes to its
 * page when freed: the node's bin never hands out memory of another arena. */
START_TEST(a_bin_takes_only_blocks_of_its_heaps_arena) {
  int node = unit_home_node();
  void *local = numalloc_malloc(SIZE);
  ck_assert_int_eq(arena_of(local), node);
  void *spread = na_alloc_generic(SIZE, NA_MIN_ALIGN, false, NA_INTERLEAVE_ARENA);
  ck_assert_int_eq(arena_of(spread), NA_INTERLEAVE_ARENA);
  ck_assert_uint_eq(na_page_owner(page_of(spread)),
                    na_page_owner(page_of(local))); /* the same thread's */
  numalloc_free(local);
  numalloc_free(spread);
  void *again = numalloc_malloc(SIZE), *next = numalloc_malloc(SIZE);
  ck_assert_ptr_eq(again, local);
  ck_assert_ptr_ne(next, spread);
  ck_assert_int_eq(arena_of(next), node);
  numalloc_free(again);
  numalloc_free(next);
}
END_TEST

START_TEST(a_pass_and_a_collection_empty_the_bins) {
  void *p = numalloc_malloc(SIZE);
  na_heap_t *heap = na_tls_heap;
  na_page_t *page = page_of(p);
  uint32_t used = page->used;
  numalloc_free(p);
  ck_assert_uint_eq(na_bins_own_bytes(heap), na_class_size(na_size_class(SIZE)));
  na_options.purge_delay_ms = 0;
  na_heap_pass(heap);
  ck_assert_uint_eq(na_bins_own_bytes(heap), 0);
  ck_assert_uint_eq(page->used, used - 1);
  p = numalloc_malloc(SIZE);
  numalloc_free(p);
  numalloc_collect();
  ck_assert_uint_eq(na_bins_own_bytes(heap), 0);
}
END_TEST

/* A thread that exits leaves nothing in its bins: its page goes to the node's pool empty,
 * owned by no thread, and to the arena at a collect. */
static void *free_and_exit(void *arg) {
  void **out = arg;
  void *p = numalloc_malloc(SIZE);
  *out = page_of(p);
  numalloc_free(p);
  ck_assert_uint_eq(na_bins_own_bytes(na_tls_heap), na_class_size(na_size_class(SIZE)));
  return NULL;
}

START_TEST(a_thread_exit_empties_its_bins) {
  void *page = NULL;
  unit_run_threads(1, free_and_exit, &page, 0);
  ck_assert_ptr_nonnull(page);
  ck_assert_int_eq(((na_page_t *)page)->kind, NA_SPAN_SMALL);
  ck_assert_uint_eq(((na_page_t *)page)->used, 0);
  ck_assert_uint_eq(((na_page_t *)page)->owner, 0);
  numalloc_collect(); /* back in the arena, or its segment unmapped with it */
  ck_assert(na_segment_lookup(page) == NULL || ((na_page_t *)page)->kind != NA_SPAN_SMALL);
}
END_TEST

START_TEST(allocations_from_a_bin_are_counted) {
  void *warm = numalloc_malloc(SIZE);
  na_heap_t *heap = na_tls_heap;
  int node = unit_home_node();
  na_heap_account(heap);
  int64_t before = heap->tld->stats[node].alloc_count;
  for (int i = 0; i < 1000; i++) numalloc_free(numalloc_malloc(SIZE));
  na_heap_account(heap);
  ck_assert_int_eq(heap->tld->stats[node].alloc_count, before + 1000);
  numalloc_free(warm);
}
END_TEST

/* The invariant check sees a bin's contents: a block held twice, one handed out, or a top
 * that is not the newest block; and a class whose lookup leads to another bin. */
START_TEST(the_invariant_check_reads_the_bins) {
  void *a = numalloc_malloc(SIZE), *b = numalloc_malloc(SIZE);
  numalloc_free(a);
  na_heap_t *heap = na_tls_heap;
  na_bin_t *bin = &heap->bins[na_size_class(SIZE)];
  ck_assert_ptr_null(na_check_heap(heap));
  ck_assert_ptr_eq(bin->top, a);
  bin->top = b;
  ck_assert_ptr_nonnull(strstr(na_check_bins(heap), "on top"));
  bin->slots[bin->count++] = a;
  bin->top = a;
  ck_assert_ptr_nonnull(strstr(na_check_bins(heap), "twice"));
  bin->slots[bin->count - 1] = b;
  bin->top = b;
  ck_assert_ptr_nonnull(strstr(na_check_bins(heap), "in use"));
  bin->top = bin->slots[--bin->count - 1];
  ck_assert_ptr_null(na_check_heap(heap));
  heap->class_bin[na_size_class(SIZE)] = bin + 1;
  ck_assert_ptr_nonnull(strstr(na_check_bins(heap), "looked up elsewhere"));
  heap->class_bin[na_size_class(SIZE)] = bin;
  ck_assert_ptr_null(na_check_heap(heap));
  numalloc_free(b);
}
END_TEST

/* ---- blocks of other threads' pages ------------------------------------------------- */

enum { BIG = 4096 }; /* at least NA_BIN_FOREIGN_MIN */
_Static_assert(BIG >= NA_BIN_FOREIGN_MIN && SIZE < NA_BIN_FOREIGN_MIN, "one size each side");

typedef struct foreign_job_s {
  void *block;     /* the main thread's */
  size_t size;     /* its size */
  void *next;      /* what the thread's next allocation of that size got */
  uint32_t sent;   /* blocks waiting to go home after the free */
  uint64_t own;    /* bytes of the thread's own pages in its bins after the free */
  bool collect;    /* collect after the free, then allocate */
  bool free_twice; /* free the block a second time */
} foreign_job_t;

static void *free_foreign(void *arg) {
  foreign_job_t *job = arg;
  numalloc_free(numalloc_malloc(job->size)); /* the thread's heap, its bins */
  void *warm = numalloc_malloc(job->size);   /* so the bin is not where `next` comes from */
  numalloc_free(job->block);
  if (job->free_twice) {
    unit_silence_stderr();
    numalloc_free(job->block);
  }
  job->sent = na_tld_peek()->remote_count;
  job->own = na_bins_own_bytes(na_tls_heap);
  if (job->collect) numalloc_collect();
  job->next = numalloc_malloc(job->size);
  numalloc_free(job->next);
  numalloc_free(warm);
  return NULL;
}

/* A big block of another thread's page, freed by a thread of its node, is the next one that
 * thread's allocations of its class get, and stays counted in use in its page; the thread
 * frees it again and exits with it in its bin, and it goes home. */
START_TEST(another_threads_big_block_serves_the_freeing_thread) {
  void *p = numalloc_malloc(BIG);
  na_page_t *page = page_of(p);
  uint32_t used = page->used;
  foreign_job_t job = {.block = p, .size = BIG};
  unit_run_threads(1, free_foreign, &job, 0);
  ck_assert_ptr_eq(job.next, p);
  ck_assert_uint_eq(job.sent, 0);
  ck_assert_uint_eq(job.own, 0); /* the thread's census does not take it off its own pages */
  ck_assert_uint_eq(page->used, used);
  na_page_collect_remote(page);
  ck_assert_uint_eq(page->used, used - 1);
}
END_TEST

/* A small one goes home: it shares its cache lines with blocks its owner uses. */
START_TEST(another_threads_small_block_goes_home) {
  void *p = numalloc_malloc(SIZE);
  foreign_job_t job = {.block = p, .size = SIZE};
  unit_run_threads(1, free_foreign, &job, 0);
  ck_assert_ptr_ne(job.next, p);
  ck_assert_uint_eq(job.sent, 1);
}
END_TEST

/* A collection empties the bins: another thread's block goes back to its page, where its
 * owner finds it again. */
START_TEST(a_collection_sends_another_threads_block_home) {
  void *p = numalloc_malloc(BIG);
  na_page_t *page = page_of(p);
  uint32_t used = page->used;
  foreign_job_t job = {.block = p, .size = BIG, .collect = true};
  unit_run_threads(1, free_foreign, &job, 0);
  ck_assert_ptr_ne(job.next, p);
  na_page_collect_remote(page);
  ck_assert_uint_eq(page->used, used - 1);
  ck_assert_ptr_null(na_check_page(page));
}
END_TEST

START_TEST(a_second_free_of_another_threads_block_in_a_bin_aborts) {
  foreign_job_t job = {.block = numalloc_malloc(BIG), .size = BIG, .free_twice = true};
  unit_run_threads(1, free_foreign, &job, 0);
}
END_TEST

static _Atomic int foreign_kept, owner_took_it;

static void *keep_foreign(void *arg) {
  numalloc_free(numalloc_malloc(BIG));
  numalloc_free(arg);
  atomic_store(&foreign_kept, 1);
  while (!atomic_load(&owner_took_it)) sched_yield();
  unit_silence_stderr();
  void *again = numalloc_malloc(BIG); /* this thread's bin's top: the block the owner holds */
  ck_assert_ptr_null(again);          /* not reached */
  return NULL;
}

/* The owner frees its block again while it waits in another thread's bin, and allocates it
 * back: that thread's bin names it before it would hand it out a second time. */
START_TEST(a_block_freed_by_its_owner_while_in_another_bin_is_named) {
  void *p = numalloc_malloc(BIG);
  pthread_t thread;
  ck_assert_int_eq(pthread_create(&thread, NULL, keep_foreign, p), 0);
  while (!atomic_load(&foreign_kept)) sched_yield();
  ck_assert(na_block_looks_free(page_of(p), p));
  numalloc_free(p); /* the double free: into the owner's bin, unread */
  ck_assert_ptr_eq(numalloc_malloc(BIG), p);
  atomic_store(&owner_took_it, 1);
  pthread_join(thread, NULL);
}
END_TEST

/* A bin takes a block without reading it, so a block freed again after other frees waits
 * twice; the bin names it when it reaches the second copy, before handing it out again. */
START_TEST(a_block_in_a_bin_twice_is_named_when_reached_again) {
  unit_bin_unread_run(SIZE);
  void *a = numalloc_malloc(SIZE), *b = numalloc_malloc(SIZE);
  numalloc_free(a);
  numalloc_free(b);
  numalloc_free(a);                           /* a is no longer the newest */
  ck_assert_ptr_eq(numalloc_malloc(SIZE), a); /* the copy the bin took last, unread */
  ck_assert_uint_gt(na_tls_heap->class_bin[na_size_class(SIZE)]->last_kept_run, NA_BIN_UNREAD_RUN);
  ck_assert_ptr_eq(numalloc_malloc(SIZE), b);
  unit_silence_stderr();
  ck_assert_ptr_null(numalloc_malloc(SIZE)); /* not reached: it aborts */
}
END_TEST

/* The blocks above the copy a second free left behind taken by aligned allocations (the
 * class's checked pop), that copy is still read, and named, when malloc reaches it. */
START_TEST(a_block_in_a_bin_twice_is_named_after_aligned_allocations_took_the_newest) {
  unit_bin_unread_run(64);
  void *a = numalloc_malloc(64), *b = numalloc_malloc(64);
  numalloc_free(a);
  numalloc_free(b);
  numalloc_free(a);
  ck_assert_ptr_eq(numalloc_aligned_alloc(32, 64), a);
  ck_assert_ptr_eq(numalloc_aligned_alloc(32, 64), b);
  unit_silence_stderr();
  ck_assert_ptr_null(numalloc_malloc(64)); /* not reached: it aborts */
}
END_TEST

START_TEST(a_bin_emptied_with_a_block_in_it_twice_names_it) {
  void *a = numalloc_malloc(SIZE), *b = numalloc_malloc(SIZE);
  numalloc_free(a);
  numalloc_free(b);
  numalloc_free(a);
  unit_silence_stderr();
  numalloc_collect();
}
END_TEST

/* The newest block of a bin, freed again at once, is named at that free. */
START_TEST(the_newest_block_of_a_bin_freed_again_is_named_at_once) {
  void *a = numalloc_malloc(SIZE);
  numalloc_free(a);
  unit_silence_stderr();
  numalloc_free(a);
}
END_TEST

/* An entry whose mark was overwritten (a write after its free) is named when the bin empties,
 * before its block goes back to its page. */
START_TEST(a_bin_emptied_with_an_entry_written_after_its_free_names_it) {
  na_block_t *a = numalloc_malloc(SIZE);
  numalloc_free(a);
  ck_assert(na_bins_hold(na_tls_heap, a));
  a->bin_mark = 12345;
  unit_silence_stderr();
  numalloc_collect();
  ck_abort_msg("a bin's entry without its mark went unnamed");
}
END_TEST

/* Frees a block onto its page's list (its bin full), then again into the bin once the bin has
 * room; the bin hands it out unread, clearing the link it held, and returns it. */
static void *block_on_the_list_and_handed_out_by_the_bin(void **other) {
  static void *blocks[NA_BIN_SLOTS + 2];
  void *warm = unit_bin_unread_run(SIZE);
  na_bin_t *bin = na_tls_heap->class_bin[na_size_class(SIZE)];
  blocks[0] = numalloc_malloc(SIZE);
  ck_assert_uint_gt(bin->capacity, 0);
  ck_assert_uint_eq(bin->count, 0);
  size_t n = bin->capacity + 1u;
  for (size_t i = 1; i < n; i++) blocks[i] = numalloc_malloc(SIZE);
  for (size_t i = 0; i < n; i++) numalloc_free(blocks[i]);
  void *listed = blocks[n - 1];
  ck_assert(!na_bins_hold(na_tls_heap, listed)); /* the bin was full: onto the page's list */
  ck_assert_ptr_eq(numalloc_malloc(SIZE), blocks[n - 2]);
  numalloc_free(listed);
  ck_assert(na_bins_hold(na_tls_heap, listed));
  ck_assert_ptr_eq(numalloc_malloc(SIZE), listed);
  ck_assert_uint_gt(bin->last_kept_run, NA_BIN_UNREAD_RUN); /* handed out unread */
  numalloc_free(warm);
  *other = blocks[n - 2];
  return listed;
}

/* The page's pop reaches the block the bin handed out and names it, before handing it out a
 * second time. */
START_TEST(a_block_on_its_pages_list_freed_into_a_bin_is_named_when_the_list_reaches_it) {
  void *other;
  void *listed = block_on_the_list_and_handed_out_by_the_bin(&other);
  unit_silence_stderr();
  for (size_t i = 0; i < 2 * NA_SLICE_SIZE / SIZE; i++) {
    void *p = numalloc_malloc(SIZE);
    ck_assert_ptr_ne(p, listed);
  }
  ck_abort_msg("the page's list never reached the block the bin handed out");
}
END_TEST

/* The page empties while the block the bin handed out is still in use (the page counted it
 * free): the page names it before its lists go. */
START_TEST(a_page_emptied_while_a_block_of_its_list_is_in_use_is_named) {
  void *other;
  void *listed = block_on_the_list_and_handed_out_by_the_bin(&other);
  na_page_t *page = page_of(listed);
  na_page_check_empty(page); /* blocks in use: nothing to check yet */
  numalloc_free(other);
  na_bins_flush(na_tls_heap); /* the bin's blocks back on the page */
  ck_assert_uint_eq(page->used, 0);
  unit_silence_stderr();
  na_page_check_empty(page); /* as the page leaves its class or its heap */
  ck_abort_msg("a block in use on an empty page's list went unnamed");
}
END_TEST

/* A page about to lose its lists (an empty page to the arena, or made a page of another class)
 * must have no block in its heap's bin: one there was freed twice, once onto those lists. */
START_TEST(a_page_leaving_its_class_with_a_block_in_the_bin_is_named) {
  void *a = numalloc_malloc(SIZE);
  na_bins_check_page(na_tls_heap, page_of(a)); /* none of its blocks in the bin: passes */
  numalloc_free(a);
  unit_silence_stderr();
  na_bins_check_page(na_tls_heap, page_of(a));
}
END_TEST

int main(int argc, char **argv) {
  (void)argc;
  Suite *s = suite_create("bin");
  TCase *tc = unit_tcase(s, "bin", 10);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, the_block_freed_last_is_handed_out_next);
  tcase_add_test(tc, a_bin_spans_the_pages_of_its_class);
  tcase_add_test(tc, a_full_bin_leaves_frees_to_the_page);
  tcase_add_test(tc, bins_of_big_classes_hold_a_few_blocks);
  tcase_add_test(tc, a_big_block_realloc_moved_out_of_goes_to_its_page);
  tcase_add_test(tc, a_bin_takes_only_blocks_of_its_heaps_arena);
  tcase_add_test(tc, a_pass_and_a_collection_empty_the_bins);
  tcase_add_test(tc, a_thread_exit_empties_its_bins);
  tcase_add_test(tc, allocations_from_a_bin_are_counted);
  tcase_add_test(tc, the_invariant_check_reads_the_bins);
  tcase_add_test_raise_signal(tc, a_block_in_a_bin_twice_is_named_when_reached_again, SIGABRT);
  tcase_add_test_raise_signal(
      tc, a_block_in_a_bin_twice_is_named_after_aligned_allocations_took_the_newest, SIGABRT);
  tcase_add_test_raise_signal(tc, a_bin_emptied_with_a_block_in_it_twice_names_it, SIGABRT);
  tcase_add_test_raise_signal(tc, a_bin_emptied_with_an_entry_written_after_its_free_names_it,
                              SIGABRT);
  tcase_add_test_raise_signal(tc, the_newest_block_of_a_bin_freed_again_is_named_at_once, SIGABRT);
  tcase_add_test_raise_signal(
      tc, a_block_on_its_pages_list_freed_into_a_bin_is_named_when_the_list_reaches_it, SIGABRT);
  tcase_add_test_raise_signal(tc, a_page_emptied_while_a_block_of_its_list_is_in_use_is_named,
                              SIGABRT);
  tcase_add_test_raise_signal(tc, a_page_leaving_its_class_with_a_block_in_the_bin_is_named,
                              SIGABRT);
  tcase_add_test(tc, another_threads_big_block_serves_the_freeing_thread);
  tcase_add_test(tc, another_threads_small_block_goes_home);
  tcase_add_test(tc, a_collection_sends_another_threads_block_home);
  tcase_add_test_raise_signal(tc, a_second_free_of_another_threads_block_in_a_bin_aborts, SIGABRT);
  tcase_add_test_raise_signal(tc, a_block_freed_by_its_owner_while_in_another_bin_is_named,
                              SIGABRT);
  return unit_run(s, argv);
}
