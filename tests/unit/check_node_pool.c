/* check_node_pool.c: the pools of pages no thread owns (node_pool.c). An exiting thread's
 * pages land in their node's pool, counted with their blocks in use, empty ones too; a heap
 * adopts them one class at a time, before it takes a fresh span; a pool page whose blocks
 * were all freed goes back to the arena when the pool is collected, once it waited a whole
 * collect; threads that come and go in bursts keep resident memory flat. */
#include "unit.h"

#include <pthread.h>
#include <string.h>

enum { SMALL = 64, BIG = 3000, COUNT = 16 }; /* one page of each class */

static int node;
static void *smalls[COUNT], *bigs[COUNT];

static void setup(void) {
  unit_quiet_purge();
  node = unit_home_node();
}

static na_page_t *page_of(void *p) { return na_page_of(na_segment_lookup(p), p); }

static void *allocate_and_exit(void *arg) {
  (void)arg;
  for (int i = 0; i < COUNT; i++) {
    smalls[i] = numalloc_malloc(SMALL);
    bigs[i] = numalloc_malloc(BIG);
  }
  return NULL;
}

static na_census_t census(void) {
  na_census_t c;
  na_pool_census(node, &c);
  return c;
}

START_TEST(exited_thread_pages_wait_in_the_pool) {
  ck_assert_uint_eq(census().pages, 0);
  unit_run_threads(1, allocate_and_exit, NULL, 0);
  na_page_t *small = page_of(smalls[0]), *big = page_of(bigs[0]);
  na_census_t c = census();
  ck_assert_uint_eq(c.pages, 2);
  ck_assert_uint_eq(c.bytes, ((uint64_t)small->slice_count + big->slice_count) << NA_SLICE_SHIFT);
  ck_assert_uint_eq(c.used_bytes, (uint64_t)COUNT * (small->block_size + big->block_size));
  ck_assert_uint_ge(c.touched_bytes, c.used_bytes);
  for (int i = 0; i < COUNT / 2; i++) numalloc_free(smalls[i]); /* pending on the page */
  ck_assert_uint_eq(census().used_bytes,
                    (uint64_t)COUNT * big->block_size + (uint64_t)(COUNT / 2) * small->block_size);
  ck_assert_uint_eq(small->owner, 0);
  ck_assert_ptr_null(small->heap);
}
END_TEST

START_TEST(adoption_goes_by_class) {
  unit_run_threads(1, allocate_and_exit, NULL, 0);
  na_page_t *small = page_of(smalls[0]), *big = page_of(bigs[0]);
  ck_assert_ptr_null(na_pool_adopt(node, na_size_class(100))); /* no page of that class */
  ck_assert_ptr_eq(na_pool_adopt(node, small->size_class), small);
  ck_assert_ptr_null(na_pool_adopt(node, small->size_class));
  ck_assert_uint_eq(census().pages, 1);
  ck_assert_ptr_eq(na_pool_adopt(node, big->size_class), big);
  ck_assert_uint_eq(census().pages, 0);
  small->next = big; /* back, as a heap hands its pages over: a list */
  big->next = NULL;
  na_pool_abandon(small);
  ck_assert_uint_eq(census().pages, 2);
  for (int i = 0; i < COUNT; i++) numalloc_free(smalls[i]);
  for (int i = 0; i < COUNT; i++) numalloc_free(bigs[i]);
}
END_TEST

/* A heap that needs the class takes the pool's page before a fresh span. */
START_TEST(a_heap_adopts_before_taking_a_fresh_span) {
  unit_run_threads(1, allocate_and_exit, NULL, 0);
  na_page_t *small = page_of(smalls[0]);
  void *p = numalloc_malloc(SMALL);
  ck_assert_ptr_eq(page_of(p), small);
  ck_assert_ptr_eq(small->heap, na_tls_heap);
  ck_assert_uint_eq(na_page_owner(small), na_thread_id());
  ck_assert_uint_eq(census().pages, 1);
  ck_assert_int_eq(na_tld_peek()->stats[node].pool_in_pages, 1);
  for (int i = 0; i < COUNT; i++) ck_assert_ptr_ne(p, smalls[i]); /* live blocks stay live */
  numalloc_free(p);
  for (int i = 0; i < COUNT; i++) numalloc_free(smalls[i]);
  for (int i = 0; i < COUNT; i++) numalloc_free(bigs[i]);
}
END_TEST

/* Pages whose blocks were all freed go back to the arena when the pool is collected; the
 * others stay. */
START_TEST(collect_returns_emptied_pages) {
  unit_run_threads(1, allocate_and_exit, NULL, 0);
  na_page_t *small = page_of(smalls[0]), *big = page_of(bigs[0]);
  for (int i = 0; i < COUNT; i++) numalloc_free(smalls[i]);
  na_pool_collect(node, true);
  ck_assert_int_ne(small->kind, NA_SPAN_SMALL);
  ck_assert_int_eq(big->kind, NA_SPAN_SMALL);
  ck_assert_uint_eq(census().pages, 1);
  for (int i = 0; i < COUNT; i++) numalloc_free(bigs[i]);
  numalloc_collect(); /* collects the pools too; the segment is unmapped */
  ck_assert_uint_eq(census().pages, 0);
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 0);
}
END_TEST

static void *allocate_free_and_exit(void *arg) {
  (void)arg;
  allocate_and_exit(NULL);
  for (int i = 0; i < COUNT; i++) {
    numalloc_free(smalls[i]);
    numalloc_free(bigs[i]);
  }
  return NULL;
}

/* An exiting thread's empty pages wait in the pool too, cut anew: the next thread that needs
 * their class carves them again from their start, over memory still resident, rather than
 * following lists its predecessor's frees left in their own order. */
START_TEST(an_exited_threads_empty_pages_serve_the_next_thread) {
  unit_run_threads(1, allocate_free_and_exit, NULL, 0);
  na_page_t *small = page_of(smalls[0]), *big = page_of(bigs[0]);
  ck_assert_uint_eq(census().pages, 2);
  ck_assert_uint_eq(census().used_bytes, 0);
  ck_assert_uint_eq(small->used, 0);
  ck_assert_uint_eq(small->capacity, 0);
  ck_assert_ptr_null(small->free);
  ck_assert_ptr_null(small->local_free);
  ck_assert_int_eq(unit_resident_pages(na_page_start(small), NA_PAGE_SIZE), 1);
  void *p = numalloc_malloc(SMALL);
  ck_assert_ptr_eq(p, na_page_start(small));
  ck_assert_uint_gt(small->capacity, 0);
  void *q = numalloc_malloc(BIG);
  ck_assert_ptr_eq(q, na_page_start(big));
  ck_assert_uint_eq(census().pages, 0);
  numalloc_free(p);
  numalloc_free(q);
}
END_TEST

/* A collect gives the pool's empty pages to the arena once they waited a whole collect: the
 * first after their thread's exit leaves them for the threads that replace it. */
START_TEST(empty_pages_go_to_the_arena_after_waiting_a_collect) {
  unit_run_threads(1, allocate_free_and_exit, NULL, 0);
  na_page_t *small = page_of(smalls[0]);
  na_options.purge_delay_ms = 0;
  na_pool_collect(node, false);
  ck_assert_int_eq(small->kind, NA_SPAN_SMALL);
  ck_assert_uint_eq(census().pages, 2);
  na_pool_collect(node, false);
  ck_assert_int_ne(small->kind, NA_SPAN_SMALL);
  ck_assert_uint_eq(census().pages, 0);
}
END_TEST

/* Threads that come and go in bursts, each with blocks of many classes: resident memory
 * stays about what the first burst took. When exited threads' empty pages went back to the
 * arena, the next burst cut the merged spans into pages of other classes, whose blocks
 * reached memory the first had never touched: 2.6 times the first burst's memory after six
 * bursts of 64 threads. */
enum { BURST = 64, BURST_BLOCKS = 200, BURSTS = 6 };
static pthread_barrier_t burst_barrier; /* the threads of a burst live at the same time */

static void *burst_thread(void *arg) {
  intptr_t id = (intptr_t)arg;
  static __thread void *mine[BURST_BLOCKS];
  for (int i = 0; i < BURST_BLOCKS; i++) {
    mine[i] = numalloc_malloc(16 + (size_t)(i * 37 + id) % 4000);
    UNIT_REQUIRE(mine[i] != NULL, "block %d", i);
    memset(mine[i], 1, 16);
  }
  pthread_barrier_wait(&burst_barrier);
  for (int i = 0; i < BURST_BLOCKS; i++) numalloc_free(mine[i]);
  return NULL;
}

START_TEST(bursts_of_threads_keep_resident_memory_flat) {
  size_t before = unit_rss_bytes(), first = 0;
  pthread_barrier_init(&burst_barrier, NULL, BURST);
  for (int b = 0; b < BURSTS; b++) {
    pthread_t threads[BURST];
    for (intptr_t t = 0; t < BURST; t++)
      ck_assert_int_eq(pthread_create(&threads[t], NULL, burst_thread, (void *)t), 0);
    for (int t = 0; t < BURST; t++) pthread_join(threads[t], NULL);
    if (b == 0) first = unit_rss_bytes() - before;
  }
  size_t last = unit_rss_bytes() - before;
  pthread_barrier_destroy(&burst_barrier);
  ck_assert_msg(last <= first + first / 2, "%zu KiB after the first burst, %zu after %d",
                first / 1024, last / 1024, BURSTS);
}
END_TEST

/* A pool page left mostly free gives back the OS pages its free blocks leave empty, once it
 * has waited a whole collect, and once per stay; a heap adopting it hands the blocks out
 * again. Without this, pages of a class the program no longer uses stayed resident. */
enum { PAGE_BLOCKS = NA_SLICE_SIZE / SMALL, KEPT = NA_PAGE_SIZE / SMALL };
static void *page_blocks[PAGE_BLOCKS];

static void *fill_a_page_and_exit(void *arg) {
  (void)arg;
  for (int i = 0; i < PAGE_BLOCKS; i++) page_blocks[i] = numalloc_malloc(SMALL);
  return NULL;
}

/* A pool page with live blocks in its first OS page only (an exited thread's). */
static na_page_t *sparse_pool_page(void) {
  unit_run_threads(1, fill_a_page_and_exit, NULL, 0);
  na_page_t *page = page_of(page_blocks[0]);
  for (int i = KEPT; i < PAGE_BLOCKS; i++) numalloc_free(page_blocks[i]);
  return page;
}

START_TEST(sparse_pool_pages_give_back_their_free_os_pages) {
  na_page_t *page = sparse_pool_page();
  char *start = na_page_start(page);
  ck_assert_ptr_eq((void *)page_blocks[0], (void *)start);
  ck_assert_ptr_eq(page_of(page_blocks[PAGE_BLOCKS - 1]), page);
  ck_assert_uint_eq(page->owner, 0); /* in the pool */
  ck_assert_int_eq(unit_resident_pages(start + NA_PAGE_SIZE, NA_SLICE_SIZE - NA_PAGE_SIZE),
                   NA_SLICE_SIZE / NA_PAGE_SIZE - 1);
  na_options.purge_delay_ms = 0;
  int64_t calls = unit_purge_calls();
  na_pool_collect(node, false); /* it arrived since the last collect: it stays whole */
  ck_assert_uint_eq(page->purged, 0);
  ck_assert_int_eq(unit_purge_calls(), calls);
  na_pool_collect(node, false);
  ck_assert_uint_ne(page->purged, 0);
  ck_assert_int_gt(unit_purge_calls(), calls);
  ck_assert_int_eq(unit_resident_pages(start + NA_PAGE_SIZE, NA_SLICE_SIZE - NA_PAGE_SIZE), 0);
  ck_assert_int_eq(unit_resident_pages(start, NA_PAGE_SIZE), 1); /* its live blocks */
  ck_assert_uint_eq(census().pages, 1);
  calls = unit_purge_calls();
  na_pool_collect(node, false); /* once per stay */
  ck_assert_int_eq(unit_purge_calls(), calls);
  /* a double free of a purged block is still named */
  ck_assert(na_page_block_is_free(page, page_blocks[PAGE_BLOCKS - 1]));
  /* adopted, the page hands every free block out again, purged ones included */
  static void *again[PAGE_BLOCKS];
  int from_page = 0, n = 0;
  while (from_page < PAGE_BLOCKS - KEPT && n < PAGE_BLOCKS) {
    again[n] = numalloc_malloc(SMALL);
    ck_assert_ptr_nonnull(again[n]);
    memset(again[n], 0x5a, SMALL);
    if (page_of(again[n]) == page) from_page++;
    n++;
  }
  ck_assert_int_eq(from_page, PAGE_BLOCKS - KEPT);
  ck_assert_uint_eq(page->used, PAGE_BLOCKS);
  for (int i = 0; i < n; i++) numalloc_free(again[i]);
  for (int i = 0; i < KEPT; i++) numalloc_free(page_blocks[i]);
}
END_TEST

/* Under NUMALLOC_BACKGROUND=1 a collect on an allocation's slow path makes no system call:
 * the node's purging thread gives the pool's sparse pages back. */
START_TEST(with_a_purging_thread_collects_leave_the_purge_to_it) {
  na_page_t *page = sparse_pool_page();
  na_options.purge_delay_ms = 0;
  na_options.background = true;
  int64_t calls = unit_purge_calls();
  for (int i = 0; i < 3; i++) na_pool_collect(node, false);
  ck_assert_int_eq(unit_purge_calls(), calls);
  ck_assert_uint_eq(page->purged, 0);
  na_pool_purge_sparse(node); /* what the node's thread does at each wake */
  ck_assert_uint_ne(page->purged, 0);
  ck_assert_int_gt(unit_purge_calls(), calls);
  na_options.background = false;
  for (int i = 0; i < KEPT; i++) numalloc_free(page_blocks[i]);
}
END_TEST

int main(int argc, char **argv) {
  (void)argc;
  Suite *s = suite_create("node_pool");
  TCase *tc = unit_tcase(s, "node_pool", 10);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, exited_thread_pages_wait_in_the_pool);
  tcase_add_test(tc, adoption_goes_by_class);
  tcase_add_test(tc, a_heap_adopts_before_taking_a_fresh_span);
  tcase_add_test(tc, collect_returns_emptied_pages);
  tcase_add_test(tc, an_exited_threads_empty_pages_serve_the_next_thread);
  tcase_add_test(tc, empty_pages_go_to_the_arena_after_waiting_a_collect);
  tcase_add_test(tc, bursts_of_threads_keep_resident_memory_flat);
  tcase_add_test(tc, sparse_pool_pages_give_back_their_free_os_pages);
  tcase_add_test(tc, with_a_purging_thread_collects_leave_the_purge_to_it);
  return unit_run(s, argv);
}
