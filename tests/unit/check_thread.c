/* check_thread.c: thread records (thread.c). A thread gets its record on first allocation,
 * keeps it, is listed while it lives, and at exit the record goes back to a pool the next
 * thread reuses (records are never freed, so a late remote free can still reach a heap);
 * a child forked while other threads allocate, or exit, can allocate and read statistics. */
#include "unit.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct seen_s {
  na_tld_t *tld;
  na_heap_t *heap;
  bool same_on_second_call;
} seen_t;

static void *record_tld(void *arg) {
  seen_t *seen = arg;
  void *p = numalloc_malloc(32);
  seen->tld = na_tld_peek();
  seen->heap = na_tls_heap;
  seen->same_on_second_call = na_tld_get() == seen->tld;
  numalloc_free(p);
  return NULL;
}

START_TEST(record_made_on_first_use_and_reused_after_exit) {
  ck_assert_ptr_null(na_tld_peek());
  seen_t first = {0}, second = {0};
  unit_run_threads(1, record_tld, &first, 0);
  ck_assert_ptr_nonnull(first.tld);
  ck_assert(first.same_on_second_call);
  ck_assert_ptr_eq(first.heap->tld, first.tld);
  unit_run_threads(1, record_tld, &second, 0);
  ck_assert_ptr_eq(second.tld, first.tld); /* from the pool */
  ck_assert_ptr_eq(second.heap, first.heap);
  ck_assert_ptr_null(na_tld_peek()); /* the main thread never allocated */
}
END_TEST

static void count_live(na_tld_t *tld, void *arg) {
  (void)tld;
  (*(int *)arg)++;
}

static pthread_barrier_t barrier;

static void *live_until_released(void *arg) {
  (void)arg;
  numalloc_free(numalloc_malloc(64));
  pthread_barrier_wait(&barrier); /* all threads have records */
  pthread_barrier_wait(&barrier); /* the main thread has counted */
  return NULL;
}

START_TEST(live_threads_are_listed) {
  enum { THREADS = 5 };
  pthread_t threads[THREADS];
  pthread_barrier_init(&barrier, NULL, THREADS + 1);
  for (int i = 0; i < THREADS; i++)
    ck_assert_int_eq(pthread_create(&threads[i], NULL, live_until_released, NULL), 0);
  pthread_barrier_wait(&barrier);
  int live = 0;
  na_thread_foreach(count_live, &live);
  ck_assert_int_eq(live, THREADS);
  pthread_barrier_wait(&barrier);
  for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
  live = 0;
  na_thread_foreach(count_live, &live);
  ck_assert_int_eq(live, 0);
  pthread_barrier_destroy(&barrier);
}
END_TEST

/* Many short threads: records come from the pool, so metadata does not grow with them. */
static void *short_life(void *arg) {
  (void)arg;
  void *p[4];
  for (int i = 0; i < 4; i++) p[i] = numalloc_malloc(16 << (i * 3));
  for (int i = 0; i < 4; i++) numalloc_free(p[i]);
  return NULL;
}

START_TEST(short_threads_reuse_records) {
  na_tld_t *records[64];
  int distinct = 0;
  for (int round = 0; round < 200; round++) {
    seen_t seen = {0};
    unit_run_threads(2, short_life, NULL, 0);
    unit_run_threads(1, record_tld, &seen, 0);
    bool known = false;
    for (int i = 0; i < distinct; i++) known |= records[i] == seen.tld;
    if (!known) {
      ck_assert_int_lt(distinct, 64);
      records[distinct++] = seen.tld;
    }
  }
  ck_assert_int_le(distinct, 3); /* at most as many as ever lived at once */
  numalloc_collect();
  ck_assert_uint_eq(na_arena_mapped_bytes(unit_home_node()), 0);
}
END_TEST

/* ---- fork ----------------------------------------------------------------------------- */

static _Atomic bool stop;

static void *churn(void *arg) {
  (void)arg;
  uint64_t rng = 77;
  void *slots[32] = {0};
  while (!atomic_load(&stop)) {
    int i = (int)(tu_rand(&rng) % 32);
    numalloc_free(slots[i]);
    slots[i] = numalloc_malloc(tu_rand(&rng) % 3000 + (tu_rand(&rng) % 50 == 0 ? NA_MiB : 0));
  }
  for (int i = 0; i < 32; i++) numalloc_free(slots[i]);
  return NULL;
}

/* The forked child `pid` of round `round` ended with status 0. */
static void expect_child_exits_0(pid_t pid, int round) {
  int status = 0;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d: status %d", round,
                status);
}

START_TEST(fork_while_threads_allocate) {
  pthread_t threads[3];
  for (int i = 0; i < 3; i++) ck_assert_int_eq(pthread_create(&threads[i], NULL, churn, NULL), 0);
  for (int round = 0; round < 20; round++) {
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
      int ok = 1;
      for (int i = 0; i < 2000 && ok; i++) {
        size_t size = (size_t)(i * 37 % 5000) + (i % 100 == 0 ? 3 * NA_MiB : 0);
        char *p = numalloc_malloc(size);
        ok = p != NULL;
        if (ok) {
          memset(p, 1, size);
          numalloc_free(p);
        }
      }
      _exit(ok ? 0 : 1);
    }
    expect_child_exits_0(pid, round);
  }
  atomic_store(&stop, true);
  for (int i = 0; i < 3; i++) pthread_join(threads[i], NULL);
}
END_TEST

/* Threads that come and go: each exit merges the thread's statistics into the totals under
 * their lock. A fork can land while one holds it; the child must still be able to merge its
 * own, as its threads' exits and its statistics reads do. (The child starts no thread and
 * calls no C-library malloc: the sanitizers' runtimes do not support either after a fork of
 * a threaded process.) */
static void *short_lived(void *arg) {
  (void)arg;
  numalloc_free(numalloc_malloc(64));
  return NULL;
}

static void *come_and_go(void *arg) {
  (void)arg;
  while (!atomic_load(&stop)) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, short_lived, NULL) == 0) pthread_join(thread, NULL);
  }
  return NULL;
}

START_TEST(fork_while_threads_exit) {
  atomic_store(&stop, false);
  pthread_t threads[2];
  for (int i = 0; i < 2; i++)
    ck_assert_int_eq(pthread_create(&threads[i], NULL, come_and_go, NULL), 0);
  for (int round = 0; round < 300; round++) {
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
      signal(SIGALRM, SIG_DFL); /* not the test runner's handler */
      alarm(5);                 /* a lock held forever ends the child with SIGALRM */
      na_tld_t *tld = na_tld_get();
      if (tld == NULL) _exit(1);
      na_stats_merge_thread(tld);
      _exit(0);
    }
    expect_child_exits_0(pid, round);
  }
  atomic_store(&stop, true);
  for (int i = 0; i < 2; i++) pthread_join(threads[i], NULL);
}
END_TEST

/* A thread the scheduler moved to another node: the heap it left keeps its pages for a
 * short while, so that a thread that comes back finds them, then hands them to the left
 * node's pool. The move is played with the thread's record: the last pick chose the heap of
 * another node (on a one-node machine, an arena no CPU uses). */
static na_page_t *page_of(void *p) { return na_page_of(na_segment_lookup(p), p); }

static int other_node(void) { return unit_home_node() == 0 ? 1 : 0; }

START_TEST(a_heap_left_for_a_while_goes_to_its_pool) {
  unit_quiet_purge();
  int home = unit_home_node(), other = other_node();
  void *p = na_alloc_generic(48, 16, false, other);
  na_tld_t *tld = na_tld_peek();
  na_heap_t *left = tld->heaps[other];
  na_page_t *page = page_of(p);
  ck_assert_ptr_eq(page->heap, left);
  tld->heap = left; /* it ran on the other node until now */
  ck_assert_ptr_eq(na_tld_pick_heap(tld), tld->heaps[home]);
  ck_assert_ptr_eq(page->heap, left); /* kept for a while */
  ck_assert_uint_eq(left->held.pages, 1);
  left->left_ms -= 1000; /* a while later */
  na_tld_pick_heap(tld);
  ck_assert_ptr_null(page->heap);
  ck_assert_uint_eq(page->owner, 0);
  ck_assert_uint_eq(left->held.pages, 0);
  ck_assert_ptr_eq(left->current[page->size_class], &na_page_empty);
  ck_assert_int_eq(tld->stats[other].heaps_left, 1);
  ck_assert_int_eq(tld->stats[other].pool_out_pages, 1);
  na_census_t pool;
  na_pool_census(other, &pool);
  ck_assert_uint_eq(pool.pages, 1);
  ck_assert_uint_eq(pool.used_bytes, page->block_size);
  numalloc_free(p); /* a remote free now: the page has no owner, so it goes at once */
  ck_assert_uint_eq(tld->remote_count, 0);
  ck_assert_uint_eq(na_tf_count(atomic_load(&page->thread_free)), 1);
  na_pool_collect(other, true);
  ck_assert_int_ne(page->kind, NA_SPAN_SMALL);
}
END_TEST

START_TEST(a_thread_that_comes_back_keeps_its_pages) {
  unit_quiet_purge();
  int other = other_node();
  void *p = na_alloc_generic(48, 16, false, other);
  na_tld_t *tld = na_tld_peek();
  na_heap_t *left = tld->heaps[other];
  tld->heap = left;
  na_tld_pick_heap(tld); /* moved home */
  left->left_ms -= 50;
  tld->policy = NUMALLOC_POLICY_BIND; /* and back on the other node before the delay */
  tld->bound_node = other;
  ck_assert_ptr_eq(na_tld_pick_heap(tld), left);
  left->left_ms -= 1000;
  na_tld_pick_heap(tld);
  ck_assert_ptr_eq(page_of(p)->heap, left);
  ck_assert_int_eq(tld->stats[other].heaps_left, 0);
  numalloc_free(p);
}
END_TEST

/* rr changes heaps at every allocation on purpose: none of them is left. */
START_TEST(rr_leaves_no_heap) {
  ck_assert_int_eq(numalloc_thread_set_policy(NUMALLOC_POLICY_RR), 0);
  for (int i = 0; i < 100; i++) numalloc_free(numalloc_malloc(48));
  na_tld_t *tld = na_tld_peek();
  ck_assert_uint_eq(tld->left[0] | tld->left[1], 0);
}
END_TEST

int main(int argc, char **argv) {
  (void)argc;
  Suite *s = suite_create("thread");
  TCase *tc = unit_tcase(s, "thread", 20);
  tcase_add_test(tc, record_made_on_first_use_and_reused_after_exit);
  tcase_add_test(tc, live_threads_are_listed);
  tcase_add_test(tc, short_threads_reuse_records);
  tcase_add_test(tc, fork_while_threads_allocate);
  tcase_add_test(tc, fork_while_threads_exit);
  tcase_add_test(tc, a_heap_left_for_a_while_goes_to_its_pool);
  tcase_add_test(tc, a_thread_that_comes_back_keeps_its_pages);
  tcase_add_test(tc, rr_leaves_no_heap);
  return unit_run(s, argv);
}
