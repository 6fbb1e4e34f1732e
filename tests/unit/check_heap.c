/* check_heap.c: a thread's heap (heap.c) seen through malloc and free. The first allocation
 * gives the thread a heap on its node; the direct table always agrees with the current
 * pages; an exhausted page moves to the full list and comes back when a block of it reaches
 * it, from its owner's bin or (through the heap's delayed list) from another thread; blocks
 * other threads free are handed out again; an empty page becomes a spare of the heap unless
 * it is the class's current page, and spares go to the arena past 1 MiB, at a pass, when the
 * thread exits, or (those of several slices) when a new page finds none of its length. */
#include "unit.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { SIZE = 48 }; /* one class for most tests */

static void setup(void) { unit_quiet_purge(); }

static na_page_t *page_of(void *p) {
  na_segment_t *segment = na_segment_lookup(p);
  UNIT_REQUIRE(segment != NULL, "%p not owned", p);
  return na_page_of(segment, p);
}

/* Blocks freed last wait in the heap's bins; these tests look at what frees do to pages. */
static void bins_to_pages(void) { na_bins_flush(na_tls_heap); }

/* A purge pass now, however recent the last one. */
static void pass_now(na_heap_t *heap) {
  uint64_t pass = heap->pass;
  heap->last_pass_ms = na_os_clock_ms() - (UINT32_MAX / 2);
  na_heap_pass(heap);
  ck_assert_uint_eq(heap->pass, pass + 1);
}

static bool queue_has(const na_page_queue_t *q, const na_page_t *page) {
  for (const na_page_t *p = q->first; p != NULL; p = p->next)
    if (p == page) return true;
  return false;
}

/* Allocates SIZE-byte blocks until one comes from a second page; the blocks of the first
 * page are stored in `first` (its count in *count) and the block from the second returned. */
static void *fill_first_page(void **first, size_t max, size_t *count) {
  void *p = numalloc_malloc(SIZE);
  na_page_t *page = page_of(p);
  size_t n = 0;
  while (page_of(p) == page) {
    UNIT_REQUIRE(n < max, "page of %u blocks", page->reserved);
    first[n++] = p;
    p = numalloc_malloc(SIZE);
  }
  *count = n;
  return p;
}

START_TEST(first_allocation_builds_the_heap) {
  ck_assert_ptr_eq(na_tls_heap, &na_heap_empty);
  ck_assert_ptr_null(na_tld_peek());
  void *p = numalloc_malloc(SIZE);
  ck_assert_ptr_nonnull(p);
  na_heap_t *heap = na_tls_heap;
  ck_assert_ptr_ne(heap, &na_heap_empty);
  ck_assert_ptr_eq(heap->tld, na_tld_peek());
  ck_assert_int_eq(heap->arena_index, unit_home_node());
  na_page_t *page = page_of(p);
  ck_assert_ptr_eq(page->heap, heap);
  ck_assert_uint_eq(na_page_owner(page), na_thread_id());
  ck_assert_ptr_eq(heap->current[na_size_class(SIZE)], page);
  ck_assert_ptr_eq(heap->direct[(SIZE + 15) >> 4], page);
  ck_assert(queue_has(&heap->queues[na_size_class(SIZE)], page));
  numalloc_free(p);
}
END_TEST

START_TEST(direct_table_follows_current_pages) {
  void *blocks[NA_DIRECT_COUNT];
  for (size_t s = 0; s < NA_DIRECT_COUNT; s++) blocks[s] = numalloc_malloc(s * 16);
  na_heap_t *heap = na_tls_heap;
  for (size_t s = 0; s <= NA_DIRECT_MAX; s++)
    UNIT_REQUIRE(heap->direct[(s + 15) >> 4] == heap->current[na_size_class(s)],
                 "size %zu: direct slot and current page differ", s);
  for (size_t s = 0; s < NA_DIRECT_COUNT; s++) numalloc_free(blocks[s]);
  for (size_t s = 0; s <= NA_DIRECT_MAX; s++)
    UNIT_REQUIRE(heap->direct[(s + 15) >> 4] == heap->current[na_size_class(s)],
                 "after free, size %zu", s);
}
END_TEST

/* The first page of each power of two up to 1 KiB serves the smaller classes that have no
 * page: a block of each of the 20 classes takes 7 pages; a size's freed block comes back at
 * its next malloc, and a block's class is its page's. Once the power of two's page has carved
 * 16 KiB, the classes it served get pages of their own. */
static void *shared_sizes(void *arg) {
  (void)arg;
  enum { CLASSES = 20 };
  void *blocks[CLASSES];
  na_page_t *pages[CLASSES];
  size_t distinct = 0;
  for (int c = 0; c < CLASSES; c++) {
    ck_assert_uint_le(na_class_size(c), NA_DIRECT_MAX);
    blocks[c] = numalloc_malloc(na_class_size(c));
    na_page_t *page = page_of(blocks[c]);
    ck_assert_uint_ge(page->block_size, na_class_size(c));
    ck_assert_uint_eq(numalloc_usable_size(blocks[c]), page->block_size);
    size_t i = 0;
    while (i < distinct && pages[i] != page) i++;
    if (i == distinct) pages[distinct++] = page;
  }
  ck_assert_uint_eq(distinct, 7); /* 16, 32, 64, ..., 1024 */
  na_heap_t *heap = na_tls_heap;
  ck_assert_ptr_null(na_check_heap(heap));
  int c48 = na_size_class(48);
  ck_assert_uint_eq(numalloc_usable_size(blocks[c48]), 64); /* 48 bytes, in a 64-byte block */
  numalloc_free(blocks[c48]);
  void *again = numalloc_malloc(40);
  ck_assert_ptr_eq(again, blocks[c48]); /* the bin of the page's class serves the size */
  blocks[c48] = again;
  ck_assert_ptr_null(na_check_heap(heap));

  /* 64-byte blocks past 16 KiB carved: 48 bytes get their own page, 64 keeps its page */
  static void *fill[512];
  na_page_t *first = page_of(blocks[na_size_class(64)]);
  for (int i = 0; i < 512; i++) {
    fill[i] = numalloc_malloc(64);
    ck_assert_ptr_eq(page_of(fill[i]), first);
  }
  ck_assert_ptr_null(na_check_heap(heap));
  void *own = numalloc_malloc(40);
  ck_assert_uint_eq(numalloc_usable_size(own), 48);
  ck_assert_ptr_eq(heap->direct[3], page_of(own));
  ck_assert_ptr_eq(heap->direct_bin[3], &heap->bins[c48]);
  void *shared = numalloc_malloc(100);
  ck_assert_uint_eq(numalloc_usable_size(shared), 128); /* 128 still shares */
  numalloc_free(shared);
  numalloc_free(own);
  for (int i = 0; i < 512; i++) numalloc_free(fill[i]);
  for (int c = 0; c < CLASSES; c++) numalloc_free(blocks[c]);
  ck_assert_ptr_null(na_check_heap(heap));
  return NULL;
}

/* `fn` in a thread of its own, whose heap is made with every power of two sharing. */
static void in_a_sharing_thread(void *(*fn)(void *)) {
  na_heap_shared_powers = 0x7f;
  unit_run_threads(1, fn, NULL, 0);
}

START_TEST(small_classes_share_the_first_page_of_their_power_of_two) {
  in_a_sharing_thread(shared_sizes);
}
END_TEST

/* Random sizes up to 1 KiB, freed and made again through the shared pages and past them: the
 * heap's invariants (the table names only current pages) hold at every step. */
static void *shared_churn(void *arg) {
  (void)arg;
  static __thread void *live[512];
  uint64_t seed = 12345;
  for (int i = 0; i < 40000; i++) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    int slot = (int)((seed >> 33) % 512);
    numalloc_free(live[slot]);
    live[slot] = numalloc_malloc((size_t)((seed >> 45) % 1025));
    if (i % 1000 == 0) ck_assert_ptr_null(na_check_heap(na_tls_heap));
  }
  ck_assert_uint_ne(na_tls_heap->shared_open, 0x7f); /* some powers of two took a second page */
  for (int i = 0; i < 512; i++) numalloc_free(live[i]);
  ck_assert_ptr_null(na_check_heap(na_tls_heap));
  return NULL;
}

START_TEST(shared_pages_keep_the_table_on_current_pages) { in_a_sharing_thread(shared_churn); }
END_TEST

START_TEST(exhausted_page_goes_to_full_and_comes_back) {
  static void *first[8192];
  size_t count;
  void *next = fill_first_page(first, 8192, &count);
  na_heap_t *heap = na_tls_heap;
  int c = na_size_class(SIZE);
  na_page_t *full = page_of(first[0]);
  ck_assert_uint_eq(count, full->reserved);
  ck_assert_uint_eq(full->used, full->reserved);
  ck_assert(full->flags.bits.in_full);
  ck_assert_uint_eq(full->sparse_below, na_sparse_full(full)); /* frees onto the list count */
  ck_assert_uint_eq(full->owner, na_thread_id());              /* and take the fast path there */
  ck_assert(queue_has(&heap->full, full));
  ck_assert(!queue_has(&heap->queues[c], full));
  ck_assert_ptr_eq(heap->current[c], page_of(next));
  /* The owner frees: the block waits in the bin, counted in use, and the page stays full,
   * so the malloc after it takes the block back without the page moving. */
  numalloc_free(first[count / 2]);
  ck_assert(na_bins_hold(heap, first[count / 2]));
  ck_assert(full->flags.bits.in_full);
  ck_assert(queue_has(&heap->full, full));
  ck_assert_uint_eq(full->used, full->reserved);
  ck_assert_ptr_eq(numalloc_malloc(SIZE), first[count / 2]);
  ck_assert(full->flags.bits.in_full);
  numalloc_free(first[count / 2]);
  bins_to_pages(); /* the bin gives it back: the page is back in its queue */
  ck_assert(!full->flags.bits.in_full);
  ck_assert_uint_lt(full->sparse_below, full->used);
  ck_assert(!queue_has(&heap->full, full));
  ck_assert(queue_has(&heap->queues[c], full));
  ck_assert_uint_eq(full->used, full->reserved - 1);
  for (size_t i = 0; i < count; i++)
    if (i != count / 2) numalloc_free(first[i]);
  numalloc_free(next);
}
END_TEST

/* With the class's bin full, the owner's frees into a full page go onto its list, and the
 * page comes back to its queue at the na_page_unfull_after-th of them. */
START_TEST(a_full_bin_sends_the_owners_free_to_its_full_page) {
  static void *first[8192];
  size_t count;
  void *next = fill_first_page(first, 8192, &count);
  na_heap_t *heap = na_tls_heap;
  int c = na_size_class(SIZE);
  na_page_t *full = page_of(first[0]);
  na_bin_t *bin = heap->class_bin[c];
  ck_assert(full->flags.bits.in_full);
  ck_assert_uint_gt(count, bin->capacity);
  for (size_t i = 0; i < bin->capacity; i++) numalloc_free(first[i]);
  ck_assert_uint_eq(bin->count, bin->capacity);
  ck_assert(full->flags.bits.in_full);
  size_t after = na_page_unfull_after(full);
  ck_assert_uint_gt(after, 1); /* SIZE's page has room for that many blocks */
  ck_assert_uint_gt(count, bin->capacity + after);
  for (size_t i = bin->capacity; i < bin->capacity + after - 1; i++) numalloc_free(first[i]);
  ck_assert(!na_bins_hold(heap, first[bin->capacity]));
  ck_assert(full->flags.bits.in_full); /* the blocks wait on its list */
  ck_assert(queue_has(&heap->full, full));
  ck_assert_uint_eq(full->used, full->reserved - (after - 1));
  ck_assert_ptr_null(na_check_page(full));
  numalloc_free(first[bin->capacity + after - 1]);
  ck_assert(!full->flags.bits.in_full);
  ck_assert(queue_has(&heap->queues[c], full));
  ck_assert_uint_eq(full->used, full->reserved - after);
  ck_assert_ptr_null(na_check_page(full));
  for (size_t i = bin->capacity + after; i < count; i++) numalloc_free(first[i]);
  numalloc_free(next);
}
END_TEST

static void *free_one(void *p) {
  numalloc_free(*(void **)p);
  return NULL;
}

/* Another thread frees a block of a full page: the block waits on the heap's delayed list
 * until the owner's next slow path, which brings the page back; the block is reused. */
START_TEST(remote_free_of_full_page_is_delayed) {
  static void *first[8192];
  size_t count;
  void *next = fill_first_page(first, 8192, &count);
  na_heap_t *heap = na_tls_heap;
  na_page_t *full = page_of(first[0]);
  void *victim = first[7];
  unit_run_threads(1, free_one, &victim, 0);
  ck_assert_ptr_eq(atomic_load(&heap->delayed_free), victim);
  ck_assert(full->flags.bits.in_full);
  ck_assert_uint_eq(full->used, full->reserved);

  void *other = numalloc_malloc(5000); /* a class with no page yet: the slow path */
  ck_assert_ptr_null(atomic_load(&heap->delayed_free));
  ck_assert(!full->flags.bits.in_full);
  ck_assert_uint_eq(full->used, full->reserved - 1);

  bool reused = false; /* the current page runs out, then the freed block comes back */
  static void *more[8192];
  size_t n = 0;
  while (!reused && n < 8192) {
    more[n] = numalloc_malloc(SIZE);
    reused = more[n++] == victim;
  }
  ck_assert_msg(reused, "the block freed by another thread never came back");
  for (size_t i = 0; i < n; i++) numalloc_free(more[i]);
  for (size_t i = 0; i < count; i++)
    if (first[i] != victim) numalloc_free(first[i]);
  numalloc_free(next);
  numalloc_free(other);
}
END_TEST

static _Atomic bool notifying;

static void pause_while_busy(void) {
  atomic_store(&notifying, true);
  usleep(200 * 1000);
}

/* A fork lands while another thread tells the heap about a full page (the page is BUSY
 * meanwhile): fork waits for it, so the child, where that thread does not exist, does not
 * find the page BUSY for ever (it would wait in na_page_set_delay until its alarm). */
START_TEST(fork_during_a_notification_leaves_no_page_busy) {
  static void *first[8192];
  size_t count;
  void *next = fill_first_page(first, 8192, &count);
  na_page_t *full = page_of(first[0]);
  void *victim = first[7];
  na_free_notify_hook = pause_while_busy;
  pthread_t thread;
  ck_assert_int_eq(pthread_create(&thread, NULL, free_one, &victim), 0);
  while (!atomic_load(&notifying)) usleep(100);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    signal(SIGALRM, SIG_DFL); /* not the test runner's handler */
    alarm(5);
    na_page_set_delay(full, NA_DELAY_NONE, false);
    _exit(0);
  }
  int status = 0;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
  ck_assert_int_eq(pthread_join(thread, NULL), 0);
  na_free_notify_hook = NULL;
  ck_assert_ptr_eq(atomic_load(&na_tls_heap->delayed_free), victim);
  for (size_t i = 0; i < count; i++)
    if (first[i] != victim) numalloc_free(first[i]);
  numalloc_free(next);
}
END_TEST

static void *free_batch(void *arg) {
  void **blocks = arg;
  for (int i = 0; i < 10; i++) numalloc_free(blocks[i]);
  return NULL;
}

/* Blocks another thread frees from a page that is not full are collected when the page's
 * free list runs dry, and handed out again. */
START_TEST(remote_frees_of_live_page_are_reused) {
  void *blocks[10];
  for (int i = 0; i < 10; i++) blocks[i] = numalloc_malloc(SIZE);
  na_page_t *page = page_of(blocks[0]);
  unit_run_threads(1, free_batch, blocks, 0);
  ck_assert_uint_eq(page->used, 10); /* not seen yet */
  static void *more[8192];
  int found = 0;
  size_t n = 0;
  while (found < 10 && n < page->reserved + 1) {
    more[n] = numalloc_malloc(SIZE);
    for (int i = 0; i < 10; i++) found += more[n] == blocks[i];
    n++;
  }
  ck_assert_int_eq(found, 10);
  for (size_t i = 0; i < n; i++) numalloc_free(more[i]);
}
END_TEST

/* Freeing every block of a page makes it a spare of the heap, except the current page; the
 * next new page of any class with as many slices is that spare. */
START_TEST(empty_pages_become_spares_but_current_stays) {
  static void *first[8192];
  size_t count;
  void *next = fill_first_page(first, 8192, &count);
  na_heap_t *heap = na_tls_heap;
  int c = na_size_class(SIZE);
  na_page_t *old = page_of(first[0]), *current = page_of(next);
  for (size_t i = 0; i < count; i++) numalloc_free(first[i]);
  bins_to_pages();
  ck_assert(!queue_has(&heap->queues[c], old));
  ck_assert(!queue_has(&heap->full, old));
  ck_assert(queue_has(&heap->spare, old));
  ck_assert_uint_eq(heap->spare_slices, old->slice_count);
  ck_assert_int_eq(old->kind, NA_SPAN_SMALL);
  ck_assert_uint_eq(old->used, 0);
  ck_assert_ptr_null(na_check_heap(heap));
  numalloc_free(next);
  bins_to_pages();
  ck_assert_int_eq(current->kind, NA_SPAN_SMALL);
  ck_assert_uint_eq(current->used, 0);
  ck_assert_ptr_eq(heap->current[c], current);
  ck_assert(!queue_has(&heap->spare, current));
  void *again = numalloc_malloc(SIZE); /* straight from the kept page */
  ck_assert_ptr_eq(page_of(again), current);
  numalloc_free(again);
  enum { OTHER = 400 }; /* a class this thread never used, its pages of one slice too */
  ck_assert_ptr_eq(heap->current[na_size_class(OTHER)], &na_page_empty);
  ck_assert_uint_eq(na_class_page_slices(na_size_class(OTHER)), old->slice_count);
  void *other = numalloc_malloc(OTHER);
  ck_assert_ptr_eq(page_of(other), old);
  ck_assert_int_eq(old->size_class, na_size_class(OTHER));
  ck_assert_ptr_null(heap->spare.first);
  ck_assert_uint_eq(heap->spare_slices, 0);
  ck_assert_ptr_null(na_check_heap(heap));
  numalloc_free(other);
}
END_TEST

/* A class whose current page is empty, its blocks all back on the page's lists, gives the page
 * to the next class of the same page length that needs one, rather than a span being taken;
 * one whose block waits in its bin keeps it. */
START_TEST(an_empty_current_page_serves_another_class_before_a_span_is_taken) {
  enum { OTHER = 400, THIRD = 300 }; /* classes this thread never used, pages of one slice */
  int c = na_size_class(SIZE), other = na_size_class(OTHER), third = na_size_class(THIRD);
  ck_assert_uint_eq(na_class_page_slices(other), na_class_page_slices(c));
  ck_assert_uint_eq(na_class_page_slices(third), na_class_page_slices(c));
  void *p = numalloc_malloc(SIZE);
  na_heap_t *heap = na_tls_heap;
  na_page_t *page = page_of(p);
  UNIT_REQUIRE(page->used == 1 && heap->spare.first == NULL, "a page of its own, no spares");
  numalloc_free(p);
  void *q = numalloc_malloc(OTHER); /* the block waits in SIZE's bin: its page is in use */
  na_page_t *fresh = page_of(q);
  ck_assert_ptr_ne(fresh, page);
  ck_assert_ptr_eq(heap->current[c], page);
  bins_to_pages(); /* SIZE's block back on its page: the page is empty */
  ck_assert_uint_eq(page->used, 0);
  ck_assert_ptr_eq(heap->current[c], page);
  uint64_t pages = heap->held.pages;
  void *r = numalloc_malloc(THIRD);
  ck_assert_ptr_eq(page_of(r), page);
  ck_assert_int_eq(page->size_class, third);
  ck_assert_ptr_eq(heap->current[c], &na_page_empty);
  ck_assert_ptr_eq(heap->direct[(SIZE + 15) >> 4], &na_page_empty);
  ck_assert_ptr_eq(heap->current[other], fresh); /* in use: kept */
  ck_assert_uint_eq(heap->held.pages, pages);
  ck_assert_ptr_null(heap->spare.first);
  ck_assert_ptr_null(na_check_heap(heap));
  void *s = numalloc_malloc(SIZE); /* the class comes back: a page of its own again */
  ck_assert_ptr_ne(page_of(s), page);
  ck_assert_ptr_null(na_check_heap(heap));
  numalloc_free(s);
  numalloc_free(r);
  numalloc_free(q);
}
END_TEST

/* A new page of the class is the class's spare as it was left: its blocks are on its lists
 * already, so none is carved again. */
START_TEST(a_new_page_of_the_class_is_its_spare_as_it_was_left) {
  static void *first[8192], *again[8192];
  size_t count;
  void *next = fill_first_page(first, 8192, &count);
  na_heap_t *heap = na_tls_heap;
  na_page_t *old = page_of(first[0]), *current = page_of(next);
  ck_assert_uint_eq(old->capacity, old->reserved);
  for (size_t i = 0; i < count; i++) numalloc_free(first[i]);
  bins_to_pages();
  ck_assert(queue_has(&heap->spare, old));
  size_t n = 0;
  do { /* the current page's blocks, then one more */
    UNIT_REQUIRE(n < 8192, "%zu blocks from the current page", n);
    again[n] = numalloc_malloc(SIZE);
  } while (page_of(again[n++]) == current);
  ck_assert_ptr_eq(page_of(again[n - 1]), old);
  ck_assert_uint_eq(old->capacity, old->reserved); /* not carved anew */
  ck_assert_int_eq(old->size_class, na_size_class(SIZE));
  ck_assert_ptr_null(heap->spare.first);
  ck_assert_ptr_null(na_check_heap(heap));
  for (size_t i = 0; i < n; i++) numalloc_free(again[i]);
  numalloc_free(next);
}
END_TEST

/* Allocates SIZE-byte blocks into `blocks` until `count` pages are carved whole and one block
 * of the next is out; the pages in `pages`, the index of each one's first block in
 * `first_of`. Returns how many blocks. */
static size_t carve_pages(void **blocks, size_t max, int count, na_page_t **pages,
                          size_t *first_of) {
  size_t n = 0;
  int seen = 0;
  while (seen <= count) {
    UNIT_REQUIRE(n < max, "%d pages in %zu blocks", seen, n);
    blocks[n] = numalloc_malloc(SIZE);
    if (seen == 0 || page_of(blocks[n]) != pages[seen - 1]) {
      first_of[seen] = n;
      pages[seen++] = page_of(blocks[n]);
    }
    n++;
  }
  return n;
}

/* The spare list keeps the pages emptied last, up to its room: past that, the oldest go to
 * the arena until three quarters of it are left, and all of them at the next pass. */
START_TEST(spares_past_their_room_and_at_a_pass_go_to_the_arena) {
  enum { PAGES = NA_SPARE_SLICES + NA_SPARE_SLICES / 2, MAX_BLOCKS = 65536 };
  static void *blocks[MAX_BLOCKS];
  na_page_t *pages[PAGES + 1];
  size_t first_of[PAGES + 1];
  size_t n = carve_pages(blocks, MAX_BLOCKS, PAGES, pages, first_of);
  void *first_block[PAGES + 1];
  for (int i = 0; i <= PAGES; i++) first_block[i] = blocks[first_of[i]];
  na_heap_t *heap = na_tls_heap;
  ck_assert_uint_eq(pages[0]->slice_count, 1);
  int emptied = 0;
  for (size_t i = 0; i < n; i++) { /* page by page, the bin flushed at each page's end */
    numalloc_free(blocks[i]);
    if (i + 1 == n || blocks[i + 1] == first_block[emptied + 1]) {
      bins_to_pages();
      emptied++;
    }
  }
  uint32_t kept = 0;
  for (int i = 0; i < PAGES; i++)
    if (++kept > NA_SPARE_SLICES) kept = NA_SPARE_SLICES - NA_SPARE_SLICES / 4;
  ck_assert_uint_lt(kept, PAGES); /* some went */
  ck_assert_uint_eq(heap->spare_slices, kept);
  ck_assert_ptr_null(na_check_heap(heap));
  for (int i = 0; i < PAGES; i++) {
    na_segment_t *segment = na_segment_of_aligned(first_block[i]);
    bool spare = i >= PAGES - (int)kept;
    ck_assert_msg(queue_has(&heap->spare, pages[i]) == spare, "page %d of %d", i, PAGES);
    ck_assert_msg((na_page_of(segment, first_block[i])->kind == NA_SPAN_SMALL) == spare,
                  "page %d of %d", i, PAGES);
  }
  ck_assert_ptr_eq(heap->spare.first, pages[PAGES - 1]); /* the most recent first */
  pass_now(heap);
  ck_assert_ptr_null(heap->spare.first);
  ck_assert_uint_eq(heap->spare_slices, 0);
  na_segment_t *segment = na_segment_of_aligned(first_block[PAGES - 1]);
  ck_assert_int_ne(na_page_of(segment, first_block[PAGES - 1])->kind, NA_SPAN_SMALL);
  ck_assert_int_eq(pages[PAGES]->kind, NA_SPAN_SMALL); /* the current page stays */
}
END_TEST

/* A page that becomes a spare while the list is past its room, to go to the arena soon, has
 * its blocks checked at once, while they are still in the caches: a block of its list that
 * was overwritten after its free is named by the free that empties the page, not when the
 * page leaves. */
START_TEST(a_page_emptied_past_the_spare_room_is_checked_as_it_becomes_a_spare) {
  enum { PAGES = NA_SPARE_SLICES + 2, MAX_BLOCKS = 65536 };
  static void *blocks[MAX_BLOCKS];
  size_t first_of[PAGES + 1];
  na_page_t *pages[PAGES + 1];
  carve_pages(blocks, MAX_BLOCKS, PAGES, pages, first_of);
  na_heap_t *heap = na_tls_heap;
  ck_assert_uint_eq(pages[0]->slice_count, 1);
  for (int page = 0; page < PAGES - 1; page++) { /* past the room: the oldest went */
    for (size_t i = first_of[page]; i < first_of[page + 1]; i++) numalloc_free(blocks[i]);
    bins_to_pages();
  }
  ck_assert(!queue_has(&heap->spare, pages[0]));
  ck_assert_ptr_null(na_check_heap(heap));
  size_t first = first_of[PAGES - 1], last = first_of[PAGES] - 1;
  for (size_t i = first; i < last; i++) numalloc_free(blocks[i]);
  bins_to_pages(); /* all on the page's lists but the last block */
  ((na_block_t *)blocks[first + 1])->next_encoded ^= 0x5a5a5a5a; /* a write after its free */
  unit_silence_stderr();
  numalloc_free(blocks[last]);
  bins_to_pages(); /* the page empties */
  ck_abort_msg("a block overwritten on a page that became a spare past the room went unnamed");
}
END_TEST

/* Allocates `size`-byte blocks into `blocks` until one comes from a second page; returns
 * how many (the last is the second page's). */
static int fill_page_and_one(void **blocks, int max, size_t size) {
  int n = 0;
  do {
    UNIT_REQUIRE(n < max, "%d blocks of %zu", n, size);
    blocks[n] = numalloc_malloc(size);
  } while (page_of(blocks[n++]) == page_of(blocks[0]));
  return n;
}

/* Pages of several slices are spares too, for a new page of as many slices; a new page of
 * another length sends them to the arena, where they merge, and leaves the one-slice ones. */
START_TEST(spares_of_several_slices_serve_their_length_only) {
  enum { BIG = 16 * 1024, OTHER = 32 * 1024, MAX = 64 };
  ck_assert_uint_eq(na_class_page_slices(na_size_class(BIG)), 2);
  ck_assert_uint_eq(na_class_page_slices(na_size_class(OTHER)), 4);
  static void *small[8192];
  size_t small_count;
  void *small_next = fill_first_page(small, 8192, &small_count);
  na_heap_t *heap = na_tls_heap;
  na_page_t *small_page = page_of(small[0]);
  void *big[MAX];
  int n = fill_page_and_one(big, MAX, BIG);
  na_page_t *big_page = page_of(big[0]);
  for (int i = 0; i < n - 1; i++) numalloc_free(big[i]);
  bins_to_pages();
  ck_assert(queue_has(&heap->spare, big_page));
  ck_assert_uint_eq(heap->spare_slices, 2);
  for (size_t i = 0; i < small_count; i++) numalloc_free(small[i]);
  bins_to_pages();
  ck_assert(queue_has(&heap->spare, small_page));
  ck_assert_uint_eq(heap->spare_slices, 3);
  ck_assert_ptr_null(na_check_heap(heap));
  int m = 0;
  do { /* the rest of the current page, then the spare of its length */
    UNIT_REQUIRE(m < n - 1, "%d more blocks of %d", m, BIG);
    big[m] = numalloc_malloc(BIG);
  } while (page_of(big[m++]) != big_page);
  ck_assert(!queue_has(&heap->spare, big_page));
  ck_assert_uint_eq(heap->spare_slices, 1);
  na_page_t *second = page_of(big[n - 1]); /* full now; big_page is the current page */
  for (int i = 0; i < m - 1; i++) numalloc_free(big[i]);
  numalloc_free(big[n - 1]);
  bins_to_pages();
  ck_assert(queue_has(&heap->spare, second));
  ck_assert_uint_eq(heap->spare_slices, 3);
  void *other = numalloc_malloc(OTHER); /* no spare of four slices */
  ck_assert(!queue_has(&heap->spare, second));
  ck_assert(queue_has(&heap->spare, small_page));
  ck_assert_uint_eq(heap->spare_slices, 1);
  ck_assert_ptr_null(na_check_heap(heap));
  numalloc_free(other);
  numalloc_free(big[m - 1]);
  numalloc_free(small_next);
}
END_TEST

/* A large block taken sends the spares of several slices to the arena first, where they
 * merge and may be its span; one-slice spares stay. */
START_TEST(a_large_block_sends_spares_of_several_slices_back) {
  enum { BIG = 16 * 1024, LARGE = 512 * 1024, MAX = 64 };
  ck_assert_uint_gt(LARGE, NA_SMALL_MAX);
  static void *small[8192];
  size_t small_count;
  void *small_next = fill_first_page(small, 8192, &small_count);
  na_heap_t *heap = na_tls_heap;
  for (size_t i = 0; i < small_count; i++) numalloc_free(small[i]);
  void *big[MAX];
  int n = fill_page_and_one(big, MAX, BIG);
  for (int i = 0; i < n - 1; i++) numalloc_free(big[i]); /* a spare of two slices */
  bins_to_pages();
  ck_assert_uint_eq(heap->spare_slices, 3);
  ck_assert_uint_eq(heap->spare_several, 2);
  void *large = numalloc_malloc(LARGE);
  ck_assert_ptr_nonnull(large);
  ck_assert_uint_eq(heap->spare_several, 0);
  ck_assert_uint_eq(heap->spare_slices, 1);
  ck_assert_ptr_null(na_check_heap(heap));
  numalloc_free(large);
  numalloc_free(big[n - 1]);
  numalloc_free(small_next);
}
END_TEST

/* Batches of blocks of two-slice pages, more pages than the largest spare room holds; and
 * of blocks of one-slice pages, more than their largest room holds. */
enum {
  BATCH_SIZE = 16 * 1024,
  BATCH_COUNT = 8 * (NA_SPARE_SLICES_MAX / 2 + 8),
  ONE_SLICE_SIZE = 1024,
  ONE_SLICE_COUNT = 64 * (NA_SPARE_ONE_SLICE_MAX + 8),
};

/* Allocates a batch of `count` blocks of `size` and frees it whole, `rounds` times; returns
 * the heap's room after. */
static uint32_t batch_rounds_of(size_t size, size_t count, int rounds) {
  static _Thread_local void *blocks[BATCH_COUNT > ONE_SLICE_COUNT ? BATCH_COUNT : ONE_SLICE_COUNT];
  for (int r = 0; r < rounds; r++) {
    for (size_t i = 0; i < count; i++) blocks[i] = numalloc_malloc(size);
    for (size_t i = 0; i < count; i++) numalloc_free(blocks[i]);
    bins_to_pages();
  }
  ck_assert_ptr_null(na_check_heap(na_tls_heap));
  return na_tls_heap->spare_room;
}

static uint32_t batch_rounds(int rounds) {
  return batch_rounds_of(BATCH_SIZE, BATCH_COUNT, rounds);
}

/* A thread that takes back pages of a length that went past its spare room, the list out of
 * spares, doubles the room, up to NA_SPARE_SLICES_MAX; a pass halves it and releases the
 * spares as before. */
START_TEST(the_spare_room_grows_for_batches_past_it) {
  ck_assert_uint_eq(na_class_page_slices(na_size_class(BATCH_SIZE)), 2);
  ck_assert_uint_eq(batch_rounds(1), NA_SPARE_SLICES); /* the first round only went past it */
  na_heap_t *heap = na_tls_heap;
  ck_assert_uint_eq(heap->spare_overflowed, 1u << 2);
  uint32_t room = NA_SPARE_SLICES;
  for (int round = 0; round < 6; round++) {
    room = room * 2 < NA_SPARE_SLICES_MAX ? room * 2 : NA_SPARE_SLICES_MAX;
    ck_assert_uint_eq(batch_rounds(1), room);
    ck_assert_uint_le(heap->spare_slices, room);
    ck_assert_uint_ge(heap->spare_slices, room - room / 4);
  }
  ck_assert_uint_eq(room, NA_SPARE_SLICES_MAX);
  pass_now(heap);
  ck_assert_uint_eq(heap->spare_room, NA_SPARE_SLICES_MAX / 2);
  ck_assert_uint_eq(heap->spare_slices, 0);
  ck_assert_uint_eq(heap->spare_overflowed, 0);
}
END_TEST

/* Pages of one slice grow the room to NA_SPARE_ONE_SLICE_MAX only; pages of several slices
 * grow it on from there. */
START_TEST(the_spare_room_of_one_slice_pages_grows_less) {
  _Static_assert(NA_SPARE_ONE_SLICE_MAX < NA_SPARE_SLICES_MAX, "a smaller room");
  ck_assert_uint_eq(na_class_page_slices(na_size_class(ONE_SLICE_SIZE)), 1);
  ck_assert_uint_eq(NA_SLICE_SIZE / ONE_SLICE_SIZE, 64);
  ck_assert_uint_eq(batch_rounds_of(ONE_SLICE_SIZE, ONE_SLICE_COUNT, 10), NA_SPARE_ONE_SLICE_MAX);
  na_heap_t *heap = na_tls_heap;
  ck_assert_uint_le(heap->spare_slices, NA_SPARE_ONE_SLICE_MAX);
  ck_assert_uint_eq(batch_rounds(10), NA_SPARE_SLICES_MAX);
}
END_TEST

/* A length missing while spares of other lengths wait shows a heap going through lengths,
 * not one cycling more pages than its room: the others go to the arena, the room stays. */
START_TEST(a_length_missing_beside_spares_of_others_keeps_the_room) {
  enum { OTHER = 32 * 1024 };
  ck_assert_uint_eq(na_class_page_slices(na_size_class(OTHER)), 4);
  void *other[17]; /* two pages of four slices, and one block of a third */
  for (int i = 0; i < 17; i++) other[i] = numalloc_malloc(OTHER);
  ck_assert_uint_eq(batch_rounds(1), NA_SPARE_SLICES);
  na_heap_t *heap = na_tls_heap;
  ck_assert_uint_eq(heap->spare_overflowed, 1u << 2);
  for (int i = 0; i < 16; i++) numalloc_free(other[i]); /* two spares of four slices */
  bins_to_pages();
  ck_assert(queue_has(&heap->spare, page_of(other[0])));
  ck_assert_uint_eq(batch_rounds(1), NA_SPARE_SLICES);     /* its miss found them */
  ck_assert_uint_eq(batch_rounds(1), 2 * NA_SPARE_SLICES); /* the next found none */
  numalloc_free(other[16]);
}
END_TEST

static pthread_barrier_t grown_barrier;

static void *grow_and_wait(void *arg) {
  *(uint32_t *)arg = batch_rounds(8);
  pthread_barrier_wait(&grown_barrier); /* grown */
  pthread_barrier_wait(&grown_barrier); /* the others have looked */
  return NULL;
}

static void *grow_and_exit(void *arg) {
  numalloc_free(numalloc_malloc(SIZE));
  /* a heap an exited thread left, if this thread took it over, starts at the usual room */
  UNIT_REQUIRE(na_tls_heap->spare_room == NA_SPARE_SLICES, "a room of %u", na_tls_heap->spare_room);
  *(uint32_t *)arg = batch_rounds(8);
  return NULL;
}

/* The rooms grown are bounded for the process, as idle threads keep their spares: two rooms
 * at their largest leave a third thread little growth; exiting threads give theirs back. */
START_TEST(the_rooms_grown_are_bounded_for_the_process) {
  enum { FIRST_GROWTH = NA_SPARE_ONE_SLICE_MAX - NA_SPARE_SLICES };
  enum { LATER_GROWTH = NA_SPARE_SLICES_MAX - NA_SPARE_ONE_SLICE_MAX };
  _Static_assert(2 * FIRST_GROWTH < NA_SPARE_GROWN_MAX, "two rooms grow whole");
  _Static_assert(2 * LATER_GROWTH <= NA_SPARE_GROWN_MAX, "two rooms grow whole");
  _Static_assert(3 * FIRST_GROWTH > NA_SPARE_GROWN_MAX, "a third does not");
  ck_assert_uint_eq(batch_rounds(8), NA_SPARE_SLICES_MAX);
  uint32_t waiting_room = 0, third_room = 0, later_room = 0;
  pthread_t waiting, third;
  pthread_barrier_init(&grown_barrier, NULL, 2);
  ck_assert_int_eq(pthread_create(&waiting, NULL, grow_and_wait, &waiting_room), 0);
  pthread_barrier_wait(&grown_barrier);
  ck_assert_uint_eq(waiting_room, NA_SPARE_SLICES_MAX);
  ck_assert_int_eq(pthread_create(&third, NULL, grow_and_exit, &third_room), 0);
  ck_assert_int_eq(pthread_join(third, NULL), 0);
  uint32_t left = NA_SPARE_GROWN_MAX - 2 * FIRST_GROWTH;
  ck_assert_uint_ge(third_room, NA_SPARE_SLICES);
  ck_assert_uint_le(third_room - NA_SPARE_SLICES, left);
  ck_assert_uint_gt(2 * third_room - NA_SPARE_SLICES, left); /* its next doubling did not fit */
  pthread_barrier_wait(&grown_barrier);
  ck_assert_int_eq(pthread_join(waiting, NULL), 0);
  pthread_barrier_destroy(&grown_barrier);
  ck_assert_int_eq(pthread_create(&third, NULL, grow_and_exit, &later_room), 0);
  ck_assert_int_eq(pthread_join(third, NULL), 0);
  ck_assert_uint_eq(later_room, NA_SPARE_SLICES_MAX); /* the exited threads' growth came back */
}
END_TEST

static void *empty_three_pages_and_exit(void *arg) {
  void **first_block = arg;
  static void *blocks[8192];
  size_t n = 0;
  na_page_t *page = NULL;
  for (int seen = 0; seen < 4; n++) {
    UNIT_REQUIRE(n < 8192, "%d pages in %zu blocks", seen, n);
    blocks[n] = numalloc_malloc(SIZE);
    if (page_of(blocks[n]) != page) first_block[seen++] = blocks[n], page = page_of(blocks[n]);
  }
  for (size_t i = 0; i < n; i++) numalloc_free(blocks[i]);
  bins_to_pages();
  UNIT_REQUIRE(na_tls_heap->spare_slices == 3, "%u spare slices", na_tls_heap->spare_slices);
  return NULL;
}

/* A thread that exits leaves its spare pages to the arena. */
START_TEST(spares_of_an_exiting_thread_go_to_the_arena) {
  void *first_block[4];
  unit_run_threads(1, empty_three_pages_and_exit, first_block, 0);
  for (int i = 0; i < 3; i++) {
    na_segment_t *segment = na_segment_of_aligned(first_block[i]);
    ck_assert_int_ne(na_page_of(segment, first_block[i])->kind, NA_SPAN_SMALL);
  }
}
END_TEST

/* Empty current pages of several slices stay while they add up to at most 2 MiB (an
 * alloc/free loop on one or two classes keeps its pages); past that, all go back to the arena
 * when the heap needs a span for another class, as buffers growing through the classes do. */
static na_page_t *idle_page_of(size_t size) {
  void *p = numalloc_malloc(size);
  na_page_t *page = page_of(p);
  ck_assert_uint_gt(page->slice_count, 1);
  numalloc_free(p);
  ck_assert_ptr_eq(na_tls_heap->current[page->size_class], page);
  return page;
}

static bool still_current(const na_page_t *page, int size_class) {
  return na_tls_heap->current[size_class] == page && page->kind == NA_SPAN_SMALL &&
         page->size_class == size_class;
}

START_TEST(idle_multi_slice_pages_go_back_past_2_mib) {
  static const size_t sizes[] = {100 * NA_KiB, 130 * NA_KiB, 170 * NA_KiB, 200 * NA_KiB,
                                 250 * NA_KiB};
  enum { COUNT = sizeof sizes / sizeof sizes[0] };
  const size_t allowance = (2 * NA_MiB) >> NA_SLICE_SHIFT;
  na_page_t *pages[COUNT];
  int classes[COUNT];
  size_t idle = 0;
  int n = 0;
  while (idle <= allowance) { /* each new page leaves the idle ones alone */
    ck_assert_int_lt(n, COUNT);
    pages[n] = idle_page_of(sizes[n]);
    classes[n] = pages[n]->size_class;
    idle += pages[n]->slice_count;
    n++;
    for (int i = 0; i < n; i++) ck_assert(still_current(pages[i], classes[i]));
  }
  for (int i = 0; i < 100; i++) { /* an alloc/free loop reuses its kept page */
    void *again = numalloc_malloc(sizes[0]);
    ck_assert_ptr_eq(page_of(again), pages[0]);
    numalloc_free(again);
  }
  void *other = numalloc_malloc(40 * NA_KiB); /* a class with no page yet: past 2 MiB, all go */
  for (int i = 0; i < n; i++) ck_assert(!still_current(pages[i], classes[i]));
  numalloc_free(other);
}
END_TEST

/* Ten pages' worth of blocks freed in random order: one page of the class is left. */
START_TEST(random_frees_leave_one_page) {
  enum { COUNT = 14000 };
  static void *blocks[COUNT];
  for (int i = 0; i < COUNT; i++) blocks[i] = numalloc_malloc(SIZE);
  uint64_t rng = 5;
  for (int i = COUNT - 1; i > 0; i--) {
    int j = (int)(tu_rand(&rng) % (uint64_t)(i + 1));
    void *t = blocks[i];
    blocks[i] = blocks[j];
    blocks[j] = t;
  }
  for (int i = 0; i < COUNT; i++) numalloc_free(blocks[i]);
  bins_to_pages();
  na_heap_t *heap = na_tls_heap;
  int c = na_size_class(SIZE);
  size_t pages = 0;
  for (na_page_t *p = heap->queues[c].first; p != NULL; p = p->next) pages++;
  ck_assert_uint_eq(pages, 1);
  ck_assert_ptr_null(heap->full.first);
  ck_assert_uint_eq(heap->current[c]->used, 0);
}
END_TEST

/* A page that is no longer the current one and drops to a quarter full gives the OS pages
 * its freed blocks left empty back to the system, in the heap's purge pass a delay later;
 * its blocks come back into use, each once, when the page is allocated from again. */
START_TEST(sparse_page_gives_pages_back) {
  static void *first[8192];
  size_t count;
  void *next = fill_first_page(first, 8192, &count);
  na_heap_t *heap = na_tls_heap;
  int c = na_size_class(SIZE);
  heap->purge_skip[c] = 0;
  na_page_t *old = page_of(first[0]);
  char *start = na_page_start(old);
  ck_assert_int_eq(unit_resident_pages(start + NA_SLICE_SIZE - NA_PAGE_SIZE, NA_PAGE_SIZE), 1);
  int64_t calls = unit_purge_calls();
  for (size_t i = count - 1; i > 0; i--) numalloc_free(first[i]); /* first[0] stays */
  bins_to_pages();
  ck_assert_ptr_ne(heap->current[c], old);
  /* the frees made no system call; the heap's passes purge a delay later, not sooner */
  ck_assert_int_eq(unit_purge_calls(), calls);
  ck_assert_uint_eq(old->purged, 0);
  ck_assert(old->sparse_marked);
  na_options.purge_delay_ms = 0;
  na_heap_pass(heap);
  ck_assert_uint_eq(old->purged, 0);    /* marked within the last pass */
  numalloc_free(numalloc_malloc(SIZE)); /* the class stays in use */
  na_heap_pass(heap);
  ck_assert_int_gt(unit_purge_calls(), calls);
  ck_assert_uint_ne(old->purged, 0);
  ck_assert(old->flags.bits.has_purged);
  ck_assert_int_eq(unit_resident_pages(start + NA_SLICE_SIZE - NA_PAGE_SIZE, NA_PAGE_SIZE), 0);
  /* the purged blocks are free: a double free of one is named */
  ck_assert(na_page_block_is_free(old, first[count - 1]));
  /* allocate the class until the old page serves again, and past its purged blocks */
  numalloc_free(next);
  static void *again[3 * 8192];
  size_t n = 0, from_old = 0;
  while (n < 3 * 8192 && from_old < count - 1) {
    again[n] = numalloc_malloc(SIZE);
    if (page_of(again[n]) == old) from_old++;
    memset(again[n], 0x5a, SIZE);
    n++;
  }
  ck_assert_uint_eq(from_old, count - 1);
  ck_assert_uint_eq(old->used, count);
  ck_assert_uint_eq(old->purged, 0);
  for (size_t i = 0; i < n; i++)
    for (size_t j = i + 1; j < n && j < i + 64; j++) ck_assert_ptr_ne(again[i], again[j]);
  for (size_t i = 0; i < n; i++) numalloc_free(again[i]);
  numalloc_free(first[0]);
}
END_TEST

/* Blocks other threads freed reach the owner at its passes: a page they emptied goes back
 * to the arena at the second pass that finds it empty, even as its class's current page,
 * unless the owner allocated from it again in between. */
static void *free_all(void *arg) {
  void **blocks = arg;
  for (int i = 0; i < 100; i++) numalloc_free(blocks[i]);
  return NULL;
}

START_TEST(pages_emptied_by_other_threads_go_back) {
  static void *blocks[100];
  na_heap_t *heap = NULL;
  int c = na_size_class(SIZE);
  for (int i = 0; i < 100; i++) blocks[i] = numalloc_malloc(SIZE);
  heap = na_tls_heap;
  na_page_t *page = page_of(blocks[0]);
  ck_assert_ptr_eq(heap->current[c], page);
  unit_run_threads(1, free_all, blocks, 0);
  ck_assert_uint_eq(page->used, 100); /* not seen yet */
  na_options.purge_delay_ms = 0;
  na_heap_pass(heap);
  ck_assert_uint_eq(page->used, 0); /* taken in */
  ck_assert_int_eq(page->kind, NA_SPAN_SMALL);
  ck_assert_ptr_eq(heap->current[c], page);
  na_heap_pass(heap);
  ck_assert_int_ne(page->kind, NA_SPAN_SMALL);
  ck_assert_ptr_eq(heap->current[c], &na_page_empty);
  ck_assert_ptr_eq(heap->direct[(SIZE + 15) >> 4], &na_page_empty);
  ck_assert_uint_eq(heap->held.pages, 0);
}
END_TEST

/* Before the heap takes a fresh span, pages whose blocks all came back from other threads
 * go back to the arena, whatever their class, at most once per sixteenth of the purge delay;
 * a page with a block still out stays. */
START_TEST(pages_other_threads_emptied_go_back_before_a_fresh_span) {
  static void *blocks[100];
  for (int i = 0; i < 100; i++) blocks[i] = numalloc_malloc(SIZE);
  na_heap_t *heap = na_tls_heap;
  na_page_t *emptied = page_of(blocks[0]);
  int c = na_size_class(SIZE);
  void *kept = numalloc_malloc(1000);
  na_page_t *kept_page = page_of(kept);
  static void *others[100];
  for (int i = 0; i < 100; i++) others[i] = numalloc_malloc(1000);
  unit_run_threads(1, free_all, blocks, 0);
  unit_run_threads(1, free_all, others, 0); /* `kept` is still out */
  ck_assert_uint_eq(emptied->used, 100);

  uint32_t interval = (uint32_t)na_options.purge_delay_ms / 16;
  heap->last_sweep_ms = na_os_clock_ms(); /* swept a moment ago: not yet */
  void *a = numalloc_malloc(3000);        /* a class with no page yet */
  ck_assert_int_eq(emptied->kind, NA_SPAN_SMALL);
  ck_assert_uint_eq(emptied->used, 100);

  heap->last_sweep_ms = na_os_clock_ms() - interval;
  void *b = numalloc_malloc(6000); /* another */
  ck_assert_int_ne(emptied->kind, NA_SPAN_SMALL);
  ck_assert_ptr_eq(heap->current[c], &na_page_empty);
  ck_assert_ptr_eq(heap->direct[(SIZE + 15) >> 4], &na_page_empty);
  ck_assert_int_eq(kept_page->kind, NA_SPAN_SMALL);
  ck_assert_ptr_eq(kept_page->heap, heap);
  numalloc_free(kept);
  numalloc_free(a);
  numalloc_free(b);
}
END_TEST

/* A class of big blocks whose pages have no freed block takes a block freed in the page of a
 * class up to twice its size before it carves new memory; a block growing by realloc, an
 * aligned request, and a class more than twice smaller, take pages of their own. */
START_TEST(a_big_class_borrows_a_freed_block_up_to_twice_its_size) {
  enum { BIG = 80 * 1024, BIGGER = 112 * 1024, REQUEST = 48 * 1024 };
  _Static_assert(REQUEST > NA_BIG_BLOCK && BIG > NA_BIN_MAX, "big blocks; BIG's have no bin");
  int request_class = na_size_class(REQUEST);
  void *freed = numalloc_malloc(BIG), *live = numalloc_malloc(BIG);
  na_heap_t *heap = na_tls_heap;
  na_page_t *big_page = page_of(freed);
  ck_assert_ptr_eq(page_of(live), big_page);
  void *own = numalloc_malloc(REQUEST); /* nothing freed anywhere: a page of its own */
  na_page_t *own_page = page_of(own);
  ck_assert_uint_eq(own_page->size_class, request_class);
  ck_assert_uint_lt(own_page->capacity, own_page->reserved); /* it could carve more */

  numalloc_free(freed);
  uint32_t carved = own_page->capacity;
  void *borrowed = numalloc_malloc(REQUEST);
  ck_assert_ptr_eq(borrowed, freed);
  ck_assert_uint_eq(numalloc_usable_size(borrowed), BIG);
  ck_assert_uint_eq(own_page->capacity, carved);
  ck_assert_ptr_eq(heap->current[request_class], own_page);
  ck_assert_uint_eq(big_page->used, 2);
  numalloc_free(borrowed);
  ck_assert_uint_eq(big_page->used, 1);

  void *grown = numalloc_realloc(numalloc_malloc(1000), REQUEST); /* realloc takes its class */
  ck_assert_ptr_eq(page_of(grown), own_page);

  void *aligned =
      numalloc_aligned_alloc(8192, REQUEST); /* 80 KiB blocks fall on it: never borrowed */
  ck_assert_ptr_eq(page_of(aligned), own_page);
  ck_assert_uint_eq((uintptr_t)aligned % 8192, 0);

  void *again = numalloc_malloc(BIG); /* the 80 KiB class takes its freed block back */
  ck_assert_ptr_eq(again, freed);
  void *far = numalloc_malloc(BIGGER), *far_live = numalloc_malloc(BIGGER);
  numalloc_free(far);
  void *more = numalloc_malloc(REQUEST); /* 112 KiB is more than twice 48: carved */
  ck_assert_ptr_eq(page_of(more), own_page);
  ck_assert_uint_eq(own_page->capacity, carved + 3);

  void *list[] = {own, grown, aligned, more, again, live, far_live};
  for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) numalloc_free(list[i]);
}
END_TEST

START_TEST(a_page_used_between_passes_stays) {
  static void *blocks[100];
  for (int i = 0; i < 100; i++) blocks[i] = numalloc_malloc(SIZE);
  na_heap_t *heap = na_tls_heap;
  na_page_t *page = page_of(blocks[0]);
  unit_run_threads(1, free_all, blocks, 0);
  na_options.purge_delay_ms = 0;
  na_heap_pass(heap);
  /* the owner runs through the page's free list: its refill takes the page back into use */
  size_t listed = 0;
  for (na_block_t *b = page->free; b != NULL; b = na_block_next(page, b)) listed++;
  static void *again[8192];
  for (size_t i = 0; i <= listed; i++) {
    again[i] = numalloc_malloc(SIZE);
    ck_assert_ptr_eq(page_of(again[i]), page);
  }
  for (size_t i = 0; i <= listed; i++) numalloc_free(again[i]);
  bins_to_pages();
  ck_assert_uint_eq(page->used, 0);
  na_heap_pass(heap);
  ck_assert_int_eq(page->kind, NA_SPAN_SMALL);
  ck_assert_ptr_eq(page->heap, heap);
}
END_TEST

/* A class the thread did not allocate from since the last pass hands its pages to the node's
 * pool; the next allocation of the class adopts one back. Full pages stay. */
static void *free_three(void *arg) {
  void **blocks = arg;
  for (int i = 0; i < 3; i++) numalloc_free(blocks[i]);
  return NULL;
}

START_TEST(a_class_left_alone_for_a_pass_goes_to_the_pool) {
  static void *blocks[10];
  int c = na_size_class(SIZE);
  for (int i = 0; i < 10; i++) blocks[i] = numalloc_malloc(SIZE);
  void *other = numalloc_malloc(1000); /* another class, kept busy */
  na_heap_t *heap = na_tls_heap;
  na_page_t *page = page_of(blocks[0]);
  uint64_t pages = heap->held.pages;
  na_options.purge_delay_ms = 0;
  unit_run_threads(1, free_three, blocks, 0); /* other threads' frees are no use of the class */
  na_heap_pass(heap);                         /* (this pass takes them in) */
  ck_assert_ptr_eq(page->heap, heap);
  numalloc_free(other);
  other = numalloc_malloc(1000);
  unit_run_threads(1, free_three, blocks + 3, 0);
  na_heap_pass(heap);
  ck_assert_ptr_null(page->heap);
  ck_assert_uint_eq(page->owner, 0);
  ck_assert_ptr_eq(heap->current[c], &na_page_empty);
  ck_assert_ptr_eq(heap->direct[(SIZE + 15) >> 4], &na_page_empty);
  ck_assert_ptr_eq(page_of(other)->heap, heap); /* the busy class kept its page */
  ck_assert_uint_eq(heap->held.pages, pages - 1);
  ck_assert_int_eq(heap->tld->stats[unit_home_node()].pool_out_pages, 1);
  void *again = numalloc_malloc(SIZE);
  ck_assert_ptr_eq(page_of(again), page);
  ck_assert_ptr_eq(page->heap, heap);
  for (int i = 6; i < 10; i++) ck_assert_ptr_ne(again, blocks[i]);
  numalloc_free(again);
  for (int i = 6; i < 10; i++) numalloc_free(blocks[i]);
  numalloc_free(other);
}
END_TEST

/* A pass walks every page the heap holds, so however short the purge delay, a heap of many
 * pages passes at most once per millisecond per NA_PASS_PAGES_PER_MS pages: under a zero
 * delay every slow path made one, and a large heap spent its time walking itself. */
START_TEST(passes_of_a_large_heap_are_spaced_even_with_no_delay) {
  enum { BLOCK = 1024, PAGES = 8 * NA_PASS_PAGES_PER_MS };
  size_t count = (size_t)PAGES * (NA_SLICE_SIZE / BLOCK);
  void **blocks = numalloc_malloc(count * sizeof *blocks);
  ck_assert_ptr_nonnull(blocks);
  for (size_t i = 0; i < count; i++) {
    blocks[i] = numalloc_malloc(BLOCK);
    ck_assert_ptr_nonnull(blocks[i]);
  }
  na_heap_t *heap = na_tls_heap;
  ck_assert_uint_ge(heap->held.pages, PAGES);
  uint32_t interval = (uint32_t)(heap->held.pages / NA_PASS_PAGES_PER_MS);
  na_options.purge_delay_ms = 0;
  uint64_t first = heap->pass;
  uint32_t start = na_os_clock_ms();
  uint32_t elapsed = 0;
  size_t calls = 0;
  while (elapsed < 5 * interval) {
    na_heap_pass(heap);
    calls++;
    elapsed = na_os_clock_ms() - start;
  }
  uint64_t passes = heap->pass - first;
  ck_assert_uint_ge(passes, 1);
  ck_assert_msg(passes <= elapsed / interval + 1, "%llu passes in %u ms, %zu calls (interval %u)",
                (unsigned long long)passes, elapsed, calls, interval);
  for (size_t i = 0; i < count; i++) numalloc_free(blocks[i]);
  numalloc_free(blocks);
}
END_TEST

/* A pass purges a sixteenth of the heap's pages when that many are sparse (32 at least,
 * 1,024 at most): with a fixed 32, a heap whose class a phase of the program left 90% free
 * gave its memory back at 2 MiB of pages a second. */
START_TEST(a_pass_purges_a_share_of_a_large_heaps_sparse_pages) {
  enum {
    BLOCK = 1024,
    PAGES = 1024,
    PER_PAGE = NA_SLICE_SIZE / BLOCK,
    KEEP = NA_PAGE_SIZE / BLOCK
  };
  size_t count = (size_t)PAGES * PER_PAGE;
  void **blocks = numalloc_malloc(count * sizeof *blocks);
  ck_assert_ptr_nonnull(blocks);
  for (size_t i = 0; i < count; i++) blocks[i] = numalloc_malloc(BLOCK);
  na_heap_t *heap = na_tls_heap;
  ck_assert_uint_ge(heap->held.pages, PAGES);
  /* all but the first OS page of every page: each is sparse, with 15 OS pages free */
  for (size_t i = 0; i < count; i++)
    if ((uintptr_t)blocks[i] % NA_SLICE_SIZE >= NA_PAGE_SIZE) {
      numalloc_free(blocks[i]);
      blocks[i] = NULL;
    }
  bins_to_pages();
  /* The two passes are made due by hand: with a short delay, a slow path between them could
   * pass as well (this heap's walk takes longer than its spacing on a loaded machine), and a
   * pass that finds the class as the last one left it hands its pages to the pool. */
  na_options.purge_delay_ms = 3600000;
  pass_now(heap); /* marked within this pass */
  numalloc_free(numalloc_malloc(BLOCK));
  pass_now(heap);
  int c = na_size_class(BLOCK), purged = 0;
  for (na_page_t *page = heap->queues[c].first; page != NULL; page = page->next)
    purged += page->purged != 0;
  ck_assert_int_gt(purged, 32);
  ck_assert_int_le(purged, (int)(heap->held.pages / 16) + 1);
  for (size_t i = 0; i < count; i++) numalloc_free(blocks[i]);
  numalloc_free(blocks);
}
END_TEST

/* Allocates `pages` pages of `block`-byte blocks (blocks[] gets them in order), then frees,
 * in the first `sparse` pages' worth of them, every block past its page's first OS page:
 * those pages are sparse, with all OS pages but their first free. */
static void **pages_left_sparse(size_t block, size_t pages, size_t sparse, size_t *count) {
  void *first = numalloc_malloc(block);
  size_t per_page = page_of(first)->reserved;
  *count = pages * per_page;
  void **blocks = numalloc_malloc(*count * sizeof *blocks);
  ck_assert_ptr_nonnull(blocks);
  blocks[0] = first;
  for (size_t i = 1; i < *count; i++) blocks[i] = numalloc_malloc(block);
  ck_assert_uint_ge(na_tls_heap->held.pages, pages);
  for (size_t i = 0; i < sparse * per_page; i++)
    if ((uintptr_t)blocks[i] % NA_SLICE_SIZE >= NA_PAGE_SIZE) {
      numalloc_free(blocks[i]);
      blocks[i] = NULL;
    }
  bins_to_pages();
  return blocks;
}

static int purged_pages_of(const na_heap_t *heap, size_t block) {
  int purged = 0;
  for (na_page_t *page = heap->queues[na_size_class(block)].first; page != NULL; page = page->next)
    purged += page->purged != 0;
  return purged;
}

static void free_all_of(void **blocks, size_t count) {
  for (size_t i = 0; i < count; i++) numalloc_free(blocks[i]);
  numalloc_free(blocks);
}

/* A heap that takes a new span while half its bytes lie free in its sparse pages purges them
 * first, whatever the delay: a program that freed most of its small objects and allocates
 * other sizes now does not hold both phases at once. */
START_TEST(a_heap_growing_over_its_sparse_pages_purges_them_first) {
  enum { BLOCK = 1024, PAGES = 256 };
  size_t count;
  void **blocks = pages_left_sparse(BLOCK, PAGES, PAGES, &count);
  na_heap_t *heap = na_tls_heap;
  ck_assert_uint_ge(heap->sparse_unseen, PAGES - 2);
  void *victim = NULL; /* a freed block of a page not current: its OS page goes back */
  for (size_t i = 0; i < count && victim == NULL; i++)
    if (blocks[i] == NULL && page_of(blocks[i - 1]) != heap->current[na_size_class(BLOCK)])
      victim = (char *)blocks[i - 1] + BLOCK;
  ck_assert_int_eq(unit_resident_pages(victim, NA_PAGE_SIZE), 1);
  uint32_t pass = heap->pass;
  ck_assert_int_eq(purged_pages_of(heap, BLOCK), 0);
  void *other = numalloc_malloc(3000); /* a class with no page yet: a new span */
  ck_assert_uint_eq(heap->pass, pass); /* not a pass: the delay is an hour */
  ck_assert_int_ge(purged_pages_of(heap, BLOCK), PAGES - 2);
  ck_assert_int_eq(unit_resident_pages(victim, NA_PAGE_SIZE), 0);
  ck_assert_uint_eq(heap->sparse_unseen, 0);
  numalloc_free(other);
  free_all_of(blocks, count);
}
END_TEST

/* Pages that went sparse while most of the heap's bytes are in use stay as they are when
 * the heap grows: a program replacing its blocks at random leaves some pages sparse at any
 * time and takes their blocks back soon. */
START_TEST(a_heap_growing_while_mostly_used_keeps_its_pages) {
  enum { BLOCK = 1024, PAGES = 256 };
  size_t count;
  void **blocks = pages_left_sparse(BLOCK, PAGES, PAGES * 3 / 8, &count);
  na_heap_t *heap = na_tls_heap;
  ck_assert_uint_ge(heap->sparse_unseen, 64);
  void *other = numalloc_malloc(3000);
  ck_assert_int_eq(purged_pages_of(heap, BLOCK), 0);
  ck_assert_uint_eq(heap->sparse_unseen, 0); /* counted, found wanting */
  numalloc_free(other);
  free_all_of(blocks, count);
}
END_TEST

/* Pages of big blocks, however empty, are left to their idle purge when the heap grows:
 * buffers of 16-256 KiB replaced at random left many half empty at every moment, and a purge
 * at each new span had every reuse fault them in again (20 times the time). */
START_TEST(a_heap_growing_over_sparse_pages_of_big_blocks_keeps_them) {
  enum { BIG = 20000, PAGES = 80 };
  size_t count;
  void **blocks = pages_left_sparse(BIG, PAGES, PAGES, &count);
  na_heap_t *heap = na_tls_heap;
  ck_assert_ptr_null(heap->spare.first); /* every page keeps its first block */
  ck_assert_uint_ge(heap->sparse_unseen, 64);
  void *other = numalloc_malloc(3000);
  ck_assert_int_eq(purged_pages_of(heap, BIG), 0);
  numalloc_free(other);
  free_all_of(blocks, count);
}
END_TEST

/* A purge keeps its batch of ranges (2 KiB) and a page's bitmap of free blocks (1 KiB) on
 * the stack of the thread that allocates: allocations that purge, on the way through a
 * growth, a pass and a collect, must fit half the smallest stack a thread may have (the
 * whole of it in a sanitizer's build). The
 * stack below this frame is painted first; what the calls left unpainted is what they used. */
enum { STACK_PAINTED = 64 << 10, STACK_PAINT = 0xa5 };
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PURGE_STACK_BOUND PTHREAD_STACK_MIN /* redzones around every stack array */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define PURGE_STACK_BOUND PTHREAD_STACK_MIN
#endif
#endif
#ifndef PURGE_STACK_BOUND
#define PURGE_STACK_BOUND (PTHREAD_STACK_MIN / 2)
#endif

static int purges_through_every_path(void) {
  size_t count;
  void **blocks = pages_left_sparse(1024, 128, 128, &count); /* a purge when the heap grows */
  void *other = numalloc_malloc(3000);
  int purged = purged_pages_of(na_tls_heap, 1024);
  na_options.purge_delay_ms = 0;
  pass_now(na_tls_heap);
  numalloc_collect();
  numalloc_free(other);
  free_all_of(blocks, count);
  return purged;
}

static na_noinline void paint_below(char *top) {
  volatile char *p = top - STACK_PAINTED;
  while (p < (volatile char *)top) *p++ = (char)STACK_PAINT;
}

START_TEST(purges_fit_half_the_smallest_thread_stack) {
  char frame[1024]; /* the painted region starts below this, past paint_below's frame */
  char *top = (char *)((uintptr_t)frame - 512);
  paint_below(top);
  int purged = purges_through_every_path();
  volatile char *p = top - STACK_PAINTED;
  while (p < (volatile char *)top && *p == (char)STACK_PAINT) p++;
  size_t used = (size_t)((char *)top - (char *)p) + 512 + sizeof frame;
  ck_assert_int_ge(purged, 120);
  ck_assert_msg(used < (size_t)PURGE_STACK_BOUND, "a purge used %zu bytes of stack", used);
  ck_assert_uint_gt(used, 2048); /* the batch itself: the measure sees it */
}
END_TEST

/* A class that takes its third span since the last pass is being filled: its new page of
 * one slice is faulted in whole at once, where the first two are touched as they are carved.
 * A pass starts the count again. Pages that did not come fresh from the arena (a span another
 * test left resident) are not counted. */
static void fill_pages_checking_residence(void **blocks, size_t max, size_t *count) {
  enum { SIZE_FILLED = 1200 };
  int c = na_size_class(SIZE_FILLED), touched = 0, faulted = 0;
  numalloc_free(numalloc_malloc(SIZE_FILLED)); /* the thread's heap exists from here */
  na_heap_t *heap = na_tls_heap;
  na_page_t *last = NULL;
  size_t n = 0;
  while (faulted < 2) {
    UNIT_REQUIRE(n < max, "%zu blocks", n);
    uint8_t taken = heap->fresh_spans[c];
    blocks[n] = numalloc_malloc(SIZE_FILLED);
    na_page_t *page = page_of(blocks[n++]);
    if (page == last) continue;
    last = page;
    if (heap->fresh_spans[c] == taken) continue; /* not a span taken now */
    long resident = unit_resident_pages(na_page_start(page), NA_SLICE_SIZE);
    if (heap->fresh_spans[c] <= 2) {
      ck_assert_int_lt(resident, NA_SLICE_SIZE / NA_PAGE_SIZE); /* touched as carved */
      touched++;
    } else {
      ck_assert_int_eq(resident, NA_SLICE_SIZE / NA_PAGE_SIZE); /* faulted in whole */
      faulted++;
    }
  }
  ck_assert_int_ge(touched, 1); /* the first of them may come with the first block */
  *count = n;
}

START_TEST(a_class_being_filled_has_its_new_pages_faulted_in_at_once) {
  enum { MAX = 1024 };
  static void *first[MAX], *second[MAX];
  size_t count1, count2;
  fill_pages_checking_residence(first, MAX, &count1);
  na_options.purge_delay_ms = 0;
  pass_now(na_tls_heap);
  na_options.purge_delay_ms = 3600000;
  fill_pages_checking_residence(second, MAX, &count2);
  for (size_t i = 0; i < count1; i++) numalloc_free(first[i]);
  for (size_t i = 0; i < count2; i++) numalloc_free(second[i]);
}
END_TEST

/* Blocks of 10 KiB and more live in pages of several slices; a free block of the class's
 * current page that stayed free for a whole pass gives back its OS pages but the first (its
 * link), and is handed out again whole. */
/* The statistics' count: pages as they join and leave, blocks in use and bytes touched as
 * of the last count. */
START_TEST(census_counts_pages_and_blocks_in_use) {
  enum { COUNT = 3000 };
  static void *blocks[COUNT];
  for (int i = 0; i < COUNT; i++) blocks[i] = numalloc_malloc(SIZE);
  void *big = numalloc_malloc(20000);
  na_heap_t *heap = na_tls_heap;
  uint64_t pages = 0, bytes = 0;
  for (int c = 0; c < NA_CLASS_COUNT; c++)
    for (na_page_t *p = heap->queues[c].first; p != NULL; p = p->next, pages++)
      bytes += (uint64_t)p->slice_count << NA_SLICE_SHIFT;
  for (na_page_t *p = heap->full.first; p != NULL; p = p->next, pages++)
    bytes += (uint64_t)p->slice_count << NA_SLICE_SHIFT;
  ck_assert_uint_ge(pages, 3);
  ck_assert_uint_eq(heap->held.pages, pages);
  ck_assert_uint_eq(heap->held.bytes, bytes);
  na_heap_census(heap);
  uint64_t used =
      (uint64_t)COUNT * na_class_size(na_size_class(SIZE)) + na_class_size(na_size_class(20000));
  ck_assert_uint_eq(heap->held.used_bytes, used);
  ck_assert_uint_ge(heap->held.touched_bytes, used);
  ck_assert_uint_le(heap->held.touched_bytes, bytes);
  for (int i = 0; i < COUNT; i++) numalloc_free(blocks[i]);
  numalloc_free(big);
  na_heap_census(heap);
  ck_assert_uint_eq(heap->held.used_bytes, 0);
}
END_TEST

int main(int argc, char **argv) {
  (void)argc;
  Suite *s = suite_create("heap");
  TCase *tc = unit_tcase(s, "heap", 10);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, first_allocation_builds_the_heap);
  tcase_add_test(tc, direct_table_follows_current_pages);
  tcase_add_test(tc, small_classes_share_the_first_page_of_their_power_of_two);
  tcase_add_test(tc, shared_pages_keep_the_table_on_current_pages);
  tcase_add_test(tc, exhausted_page_goes_to_full_and_comes_back);
  tcase_add_test(tc, a_full_bin_sends_the_owners_free_to_its_full_page);
  tcase_add_test(tc, remote_free_of_full_page_is_delayed);
  tcase_add_test(tc, fork_during_a_notification_leaves_no_page_busy);
  tcase_add_test(tc, remote_frees_of_live_page_are_reused);
  tcase_add_test(tc, empty_pages_become_spares_but_current_stays);
  tcase_add_test(tc, an_empty_current_page_serves_another_class_before_a_span_is_taken);
  tcase_add_test(tc, a_new_page_of_the_class_is_its_spare_as_it_was_left);
  tcase_add_test(tc, spares_past_their_room_and_at_a_pass_go_to_the_arena);
  tcase_add_test_raise_signal(
      tc, a_page_emptied_past_the_spare_room_is_checked_as_it_becomes_a_spare, SIGABRT);
  tcase_add_test(tc, spares_of_several_slices_serve_their_length_only);
  tcase_add_test(tc, a_large_block_sends_spares_of_several_slices_back);
  tcase_add_test(tc, the_spare_room_grows_for_batches_past_it);
  tcase_add_test(tc, the_spare_room_of_one_slice_pages_grows_less);
  tcase_add_test(tc, a_length_missing_beside_spares_of_others_keeps_the_room);
  tcase_add_test(tc, the_rooms_grown_are_bounded_for_the_process);
  tcase_add_test(tc, spares_of_an_exiting_thread_go_to_the_arena);
  tcase_add_test(tc, random_frees_leave_one_page);
  tcase_add_test(tc, idle_multi_slice_pages_go_back_past_2_mib);
  tcase_add_test(tc, sparse_page_gives_pages_back);
  tcase_add_test(tc, pages_emptied_by_other_threads_go_back);
  tcase_add_test(tc, pages_other_threads_emptied_go_back_before_a_fresh_span);
  tcase_add_test(tc, a_big_class_borrows_a_freed_block_up_to_twice_its_size);
  tcase_add_test(tc, a_page_used_between_passes_stays);
  tcase_add_test(tc, a_class_left_alone_for_a_pass_goes_to_the_pool);
  tcase_add_test(tc, census_counts_pages_and_blocks_in_use);
  tcase_add_test(tc, passes_of_a_large_heap_are_spaced_even_with_no_delay);
  tcase_add_test(tc, a_pass_purges_a_share_of_a_large_heaps_sparse_pages);
  tcase_add_test(tc, a_heap_growing_over_its_sparse_pages_purges_them_first);
  tcase_add_test(tc, a_heap_growing_while_mostly_used_keeps_its_pages);
  tcase_add_test(tc, a_heap_growing_over_sparse_pages_of_big_blocks_keeps_them);
  tcase_add_test(tc, purges_fit_half_the_smallest_thread_stack);
  tcase_add_test(tc, a_class_being_filled_has_its_new_pages_faulted_in_at_once);
  return unit_run(s, argv);
}
