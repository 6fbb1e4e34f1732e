/* check_free.c: freeing (free.c) across threads, and what thread exit does with the pages
 * (thread.c, heap.c, arena.c). Blocks pass between many threads with their contents
 * checked; an owner gets back what others free; a thread that exits hands back its pages,
 * empty or not, another thread adopts them, and over many rounds of threads that come and
 * go the mapped memory stays bounded and ends at zero. Misuse (double, foreign and interior
 * frees) stops the program; free never changes errno. */
#include "unit.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

static int node;

static void setup(void) {
  unit_quiet_purge();
  node = unit_home_node();
}

/* ---- blocks passed between threads ---------------------------------------------------- */

enum { PASS_THREADS = 6, PASS_ROUNDS = 15000, RING = 4096 };

typedef struct passed_s {
  void *p;
  size_t size;
  uint64_t seed;
  int owner;
} passed_t;

static struct {
  pthread_mutex_t lock;
  passed_t slots[RING];
  size_t head, count;
  _Atomic long corrupt, cross_frees, done;
} ring = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool ring_put(passed_t item) {
  pthread_mutex_lock(&ring.lock);
  bool ok = ring.count < RING;
  if (ok) ring.slots[(ring.head + ring.count++) % RING] = item;
  pthread_mutex_unlock(&ring.lock);
  return ok;
}

static bool ring_take(passed_t *item) {
  pthread_mutex_lock(&ring.lock);
  bool ok = ring.count > 0;
  if (ok) {
    *item = ring.slots[ring.head];
    ring.head = (ring.head + 1) % RING;
    ring.count--;
  }
  pthread_mutex_unlock(&ring.lock);
  return ok;
}

static size_t random_size(uint64_t *rng) {
  uint64_t r = tu_rand(rng) % 1000;
  if (r < 900) return 1 + tu_rand(rng) % 1024;
  if (r < 990) return 1025 + tu_rand(rng) % (64 * NA_KiB);
  if (r < 998) return NA_SMALL_MAX + tu_rand(rng) % (2 * NA_MiB);
  return NA_LARGE_MAX + tu_rand(rng) % (4 * NA_MiB);
}

/* The whole block when small, else its first and last 8 KiB (whole large blocks would make
 * the test a memory bandwidth benchmark). */
enum { EDGE = 8192 };

static void fill_block(const passed_t *item) {
  if (item->size <= 2 * EDGE) {
    tu_fill(item->p, item->size, item->seed);
    return;
  }
  tu_fill(item->p, EDGE, item->seed);
  tu_fill((char *)item->p + item->size - EDGE, EDGE, ~item->seed);
}

static bool block_intact(const passed_t *item) {
  if (item->size <= 2 * EDGE) return tu_mismatch(item->p, item->size, item->seed) == SIZE_MAX;
  return tu_mismatch(item->p, EDGE, item->seed) == SIZE_MAX &&
         tu_mismatch((char *)item->p + item->size - EDGE, EDGE, ~item->seed) == SIZE_MAX;
}

static void check_and_free(const passed_t *item, int me) {
  if (!block_intact(item) || numalloc_usable_size(item->p) < item->size)
    atomic_fetch_add(&ring.corrupt, 1);
  if (item->owner != me) atomic_fetch_add(&ring.cross_frees, 1);
  numalloc_free(item->p);
}

static void *pass_blocks(void *arg) {
  int me = *(int *)arg;
  uint64_t rng = 1000 + (uint64_t)me;
  for (int i = 0; i < PASS_ROUNDS; i++) {
    passed_t item;
    if (tu_rand(&rng) % 2 == 0 && ring_take(&item)) {
      check_and_free(&item, me);
      continue;
    }
    item.size = random_size(&rng);
    item.seed = ((uint64_t)me << 32) | (uint64_t)i;
    item.owner = me;
    item.p = numalloc_malloc(item.size);
    if (item.p == NULL) {
      atomic_fetch_add(&ring.corrupt, 1);
      continue;
    }
    fill_block(&item);
    if (!ring_put(item)) check_and_free(&item, me);
  }
  atomic_fetch_add(&ring.done, 1);
  return NULL;
}

/* From any byte of a small block, the usable size is what remains of that block: the
 * block's index comes from a multiplication by the page's magic, which must agree with a
 * division at every offset, the last byte of a block and the first of the next included. */
START_TEST(usable_size_inside_small_blocks_is_what_remains) {
  for (int c = 0; c < NA_CLASS_COUNT; c++) {
    size_t size = na_class_size(c);
    char *p = numalloc_malloc(size);
    na_segment_t *segment = na_segment_of_aligned(p);
    na_page_t *page = na_page_of(segment, p);
    ck_assert_uint_eq(page->block_size, size);
    size_t start = (size_t)(p - (char *)na_page_start(page)), end = (size_t)page->capacity * size;
    size_t offsets[] = {0, 1, size / 3, size / 2, size - 1, size, size + 1, 2 * size - 1};
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++)
      if (start + offsets[i] < end) {
        ck_assert_uint_eq(na_usable_in(segment, page, p + offsets[i]), size - offsets[i] % size);
        ck_assert_uint_eq(numalloc_usable_size(p + offsets[i]), size - offsets[i] % size);
      }
    numalloc_free(p);
  }
  ck_assert_uint_eq(numalloc_usable_size(NULL), 0);
}
END_TEST

/* malloc_usable_size finds a block's page from the slice it is in: blocks of a page of
 * several slices, past its first one, get their own size, from their first byte and their
 * last, as do large and huge blocks, which take the general path. */
START_TEST(usable_size_of_blocks_past_the_first_slice_of_their_page) {
  for (int c = 0; c < NA_CLASS_COUNT; c++) {
    size_t size = na_class_size(c);
    if (na_class_page_slices(c) < 2) continue;
    char *blocks[8];
    int count = 0;
    bool past_first = false;
    while (count < 8 && !past_first) {
      char *p = blocks[count++] = numalloc_malloc(size);
      na_page_t *page = na_page_of(na_segment_of_aligned(p), p);
      past_first = (size_t)(p - (char *)na_page_start(page)) >= NA_SLICE_SIZE;
      ck_assert_uint_eq(numalloc_usable_size(p), size);
      ck_assert_uint_eq(numalloc_usable_size(p + size - 1), 1);
    }
    ck_assert_msg(past_first, "class %d (%zu bytes): no block past its page's first slice", c,
                  size);
    for (int i = 0; i < count; i++) numalloc_free(blocks[i]);
  }
  size_t sizes[] = {NA_SMALL_MAX + 1, 3 * NA_MiB, NA_LARGE_MAX + 1};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    char *p = numalloc_malloc(sizes[i]);
    ck_assert_uint_ge(numalloc_usable_size(p), sizes[i]);
    ck_assert_uint_eq(numalloc_usable_size(p), na_usable_size_of(p));
    numalloc_free(p);
  }
}
END_TEST

START_TEST(blocks_passed_between_threads_keep_their_contents) {
  int ids[PASS_THREADS];
  for (int i = 0; i < PASS_THREADS; i++) ids[i] = i;
  unit_run_threads(PASS_THREADS, pass_blocks, ids, sizeof ids[0]);
  passed_t item;
  while (ring_take(&item)) check_and_free(&item, -1);
  ck_assert_int_eq(atomic_load(&ring.done), PASS_THREADS);
  ck_assert_int_eq(atomic_load(&ring.corrupt), 0);
  ck_assert_int_gt(atomic_load(&ring.cross_frees), 1000); /* the test did pass blocks */
  numalloc_collect();
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 0);
}
END_TEST

/* ---- an owner and its remote frees ---------------------------------------------------- */

enum { OWNED = 4000, FREERS = 4 };
static void *owned[OWNED];

static void *free_share(void *arg) {
  void **share = arg;
  for (int i = 0; i < OWNED / FREERS; i++) numalloc_free(share[i]);
  return NULL;
}

static bool page_in(na_page_t *page, na_page_t **pages, size_t count) {
  for (size_t i = 0; i < count; i++)
    if (pages[i] == page) return true;
  return false;
}

/* Four threads free all of the main thread's blocks at once; allocating as many again needs
 * no new page: every block comes from the pages the first ones lived in. */
START_TEST(owner_reuses_what_others_free) {
  static na_page_t *pages[OWNED];
  size_t page_count = 0;
  for (int i = 0; i < OWNED; i++) {
    owned[i] = numalloc_malloc(64);
    tu_fill(owned[i], 64, (uint64_t)i);
    na_page_t *page = na_page_of(na_segment_of_aligned(owned[i]), owned[i]);
    if (!page_in(page, pages, page_count)) pages[page_count++] = page;
  }
  size_t mapped = na_arena_mapped_bytes(node);
  unit_run_threads(FREERS, free_share, owned, sizeof(void *) * (OWNED / FREERS));
  for (int i = 0; i < OWNED; i++) {
    owned[i] = numalloc_malloc(64);
    na_page_t *page = na_page_of(na_segment_of_aligned(owned[i]), owned[i]);
    UNIT_REQUIRE(page_in(page, pages, page_count), "block %d from a new page", i);
  }
  ck_assert_uint_eq(na_arena_mapped_bytes(node), mapped);
  for (int i = 0; i < OWNED; i++) numalloc_free(owned[i]);
}
END_TEST

/* ---- thread exit ---------------------------------------------------------------------- */

typedef struct exit_job_s {
  int count;
  size_t size;
  bool keep; /* leave the blocks live at exit, for the main thread to free */
  void **blocks;
  uintptr_t thread_id;
} exit_job_t;

static void *allocate_and_exit(void *arg) {
  exit_job_t *job = arg;
  job->thread_id = na_thread_id();
  for (int i = 0; i < job->count; i++) {
    job->blocks[i] = numalloc_malloc(job->size);
    tu_fill(job->blocks[i], job->size, (uint64_t)i);
  }
  if (!job->keep)
    for (int i = 0; i < job->count; i++) numalloc_free(job->blocks[i]);
  return NULL;
}

static void run_job(exit_job_t *job) { unit_run_threads(1, allocate_and_exit, job, 0); }

START_TEST(exiting_thread_returns_its_pages) {
  static void *blocks[3000];
  exit_job_t small = {3000, 64, false, blocks, 0}, medium = {300, 5000, false, blocks, 0};
  run_job(&small);
  run_job(&medium);
  numalloc_collect();
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 0);
}
END_TEST

/* A thread exits with live blocks: they stay valid, the main thread frees them later, and
 * then nothing of the thread is left. */
START_TEST(blocks_of_exited_thread_stay_valid_and_are_freed_later) {
  static void *blocks[3000];
  exit_job_t job = {3000, 64, true, blocks, 0};
  run_job(&job);
  na_page_t *page = na_page_of(na_segment_of_aligned(blocks[0]), blocks[0]);
  ck_assert_uint_eq(page->owner, 0); /* abandoned */
  ck_assert_ptr_null(page->heap);
  for (int i = 0; i < 3000; i++)
    UNIT_REQUIRE(tu_mismatch(blocks[i], 64, (uint64_t)i) == SIZE_MAX, "block %d", i);
  for (int i = 0; i < 3000; i++) numalloc_free(blocks[i]);
  numalloc_collect();
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 0);
}
END_TEST

static void *adopt_one(void *arg) {
  exit_job_t *job = arg;
  job->thread_id = na_thread_id();
  job->blocks[0] = numalloc_malloc(job->size);
  na_page_t *page = na_page_of(na_segment_of_aligned(job->blocks[0]), job->blocks[0]);
  job->blocks[1] = (void *)na_page_owner(page); /* seen while this thread still owns it */
  job->blocks[2] = page->heap;
  job->blocks[3] = na_tls_heap;
  return NULL;
}

/* The next thread that needs the class takes the abandoned page over. */
START_TEST(another_thread_adopts_abandoned_pages) {
  static void *blocks[100];
  exit_job_t first = {100, 64, true, blocks, 0};
  run_job(&first);
  na_page_t *page = na_page_of(na_segment_of_aligned(blocks[0]), blocks[0]);
  for (int i = 0; i < 50; i++) numalloc_free(blocks[i]); /* remote frees to the abandoned page */

  void *seen[4];
  exit_job_t second = {1, 64, true, seen, 0};
  unit_run_threads(1, adopt_one, &second, 0);
  ck_assert_ptr_eq(na_page_of(na_segment_of_aligned(seen[0]), seen[0]), page);
  ck_assert_uint_eq((uintptr_t)seen[1], second.thread_id);
  ck_assert_ptr_eq(seen[2], seen[3]);
  for (int i = 50; i < 100; i++) {
    ck_assert_ptr_ne(seen[0], blocks[i]); /* a live block is never handed out again */
    ck_assert_uint_eq(tu_mismatch(blocks[i], 64, (uint64_t)i), SIZE_MAX);
  }
  for (int i = 50; i < 100; i++) numalloc_free(blocks[i]);
  numalloc_free(seen[0]);
  numalloc_collect();
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 0);
}
END_TEST

/* Other threads free an owner's blocks while it exits: some hit full pages (the heap is
 * notified) just as the owner abandons them. Every block is intact when freed, and nothing
 * is left once idle memory is collected. */
enum { RACE_BLOCKS = 6000, RACE_FREERS = 3 };

static struct {
  void *blocks[RACE_BLOCKS];
  _Atomic int published;
  _Atomic long corrupt;
} race;

static void *race_owner(void *arg) {
  (void)arg;
  for (int i = 0; i < RACE_BLOCKS; i++) {
    size_t size = i % 10 == 0 ? 5000 : 64;
    race.blocks[i] = numalloc_malloc(size);
    tu_fill(race.blocks[i], 64, (uint64_t)i);
  }
  atomic_store_explicit(&race.published, 1, memory_order_release);
  return NULL; /* exits while the others free */
}

static void *race_freer(void *arg) {
  int id = *(int *)arg;
  while (!atomic_load_explicit(&race.published, memory_order_acquire)) na_os_yield();
  for (int i = id; i < RACE_BLOCKS; i += RACE_FREERS) {
    if (tu_mismatch(race.blocks[i], 64, (uint64_t)i) != SIZE_MAX)
      atomic_fetch_add(&race.corrupt, 1);
    numalloc_free(race.blocks[i]);
  }
  return NULL;
}

START_TEST(frees_race_with_the_owner_exiting) {
  for (int round = 0; round < 20; round++) {
    atomic_store(&race.published, 0);
    pthread_t owner, freers[RACE_FREERS];
    int ids[RACE_FREERS];
    for (int t = 0; t < RACE_FREERS; t++) {
      ids[t] = t;
      ck_assert_int_eq(pthread_create(&freers[t], NULL, race_freer, &ids[t]), 0);
    }
    ck_assert_int_eq(pthread_create(&owner, NULL, race_owner, NULL), 0);
    pthread_join(owner, NULL);
    for (int t = 0; t < RACE_FREERS; t++) pthread_join(freers[t], NULL);
  }
  ck_assert_int_eq(atomic_load(&race.corrupt), 0);
  numalloc_collect();
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 0);
}
END_TEST

/* Rounds of threads that allocate, free some, hand the rest to the main thread and exit:
 * pages left behind are adopted by the next round's threads, so the memory mapped after
 * each round stays at what the first rounds needed (small blocks only: their pages are what
 * could leak, and a few MiB of them keep the bound independent of thread scheduling). With
 * large blocks too, each round ends with nothing mapped once idle memory is collected. */
enum { ROUNDS = 24, ROUND_THREADS = 4, PER_THREAD = 3000 };

typedef struct round_job_s {
  uint64_t seed;
  bool large;
  void *left[PER_THREAD];
  size_t left_count;
} round_job_t;

static void *round_worker(void *arg) {
  round_job_t *job = arg;
  uint64_t rng = job->seed;
  void *mine[PER_THREAD];
  for (int i = 0; i < PER_THREAD; i++) {
    size_t size = job->large && tu_rand(&rng) % 100 < 2 ? NA_SMALL_MAX + tu_rand(&rng) % NA_MiB
                                                        : 16 + tu_rand(&rng) % 2048;
    mine[i] = numalloc_malloc(size);
    memset(mine[i], 0x33, size < 64 ? size : 64);
  }
  job->left_count = 0;
  for (int i = 0; i < PER_THREAD; i++) {
    if (tu_rand(&rng) % 2 == 0)
      numalloc_free(mine[i]);
    else
      job->left[job->left_count++] = mine[i];
  }
  return NULL;
}

static round_job_t jobs[ROUND_THREADS];

static void run_round(int round, bool large) {
  for (int t = 0; t < ROUND_THREADS; t++) {
    jobs[t].seed = (uint64_t)(round * 100 + t);
    jobs[t].large = large;
  }
  unit_run_threads(ROUND_THREADS, round_worker, jobs, sizeof jobs[0]);
  for (int t = 0; t < ROUND_THREADS; t++)
    for (size_t i = 0; i < jobs[t].left_count; i++) numalloc_free(jobs[t].left[i]);
}

START_TEST(thread_churn_does_not_leak) {
  size_t mapped[ROUNDS];
  for (int round = 0; round < ROUNDS; round++) {
    run_round(round, false);
    mapped[round] = na_arena_mapped_bytes(node);
  }
  size_t early = 0;
  for (int round = 0; round < 4; round++)
    if (mapped[round] > early) early = mapped[round];
  for (int round = 4; round < ROUNDS; round++)
    ck_assert_msg(mapped[round] <= early + NA_SEGMENT_SIZE,
                  "round %d: %zu MiB mapped, at most %zu MiB in the first rounds", round,
                  mapped[round] / NA_MiB, early / NA_MiB);
  numalloc_collect();
  ck_assert_uint_eq(na_arena_mapped_bytes(node), 0);
}
END_TEST

START_TEST(thread_churn_with_large_blocks_ends_empty) {
  for (int round = 0; round < ROUNDS / 2; round++) {
    run_round(round, true);
    numalloc_collect();
    ck_assert_msg(na_arena_mapped_bytes(node) == 0, "round %d: %zu bytes still mapped", round,
                  na_arena_mapped_bytes(node));
  }
}
END_TEST

/* ---- errno and misuse ----------------------------------------------------------------- */

START_TEST(free_keeps_errno) {
  na_options.purge_delay_ms = 0; /* frees also purge and unmap */
  na_options.segment_cache = 0;
  const size_t sizes[] = {1, 100, 5000, 300 * NA_KiB, 2 * NA_MiB, 40 * NA_MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    void *p = numalloc_malloc(sizes[i]);
    memset(p, 1, sizes[i]);
    errno = EDOM;
    numalloc_free(p);
    ck_assert_int_eq(errno, EDOM);
  }
  errno = ERANGE;
  numalloc_free(NULL);
  ck_assert_int_eq(errno, ERANGE);
  numalloc_collect();
  ck_assert_int_eq(errno, ERANGE);
}
END_TEST

START_TEST(double_free_small_aborts) {
  void *p = numalloc_malloc(32);
  numalloc_free(p);
  unit_silence_stderr();
  numalloc_free(p);
}
END_TEST

/* The block is no longer the newest in its bin when it is freed again: the bin takes it
 * unread, and names it when it reaches it again, before handing it out a second time. */
START_TEST(double_free_after_other_frees_aborts) {
  void *a = numalloc_malloc(32), *b = numalloc_malloc(32), *c = numalloc_malloc(32);
  numalloc_free(a);
  numalloc_free(b);
  numalloc_free(c);
  numalloc_free(b);
  ck_assert_ptr_eq(numalloc_malloc(32), b);
  ck_assert_ptr_eq(numalloc_malloc(32), c);
  unit_silence_stderr();
  ck_assert_ptr_null(numalloc_malloc(32)); /* not reached: it aborts */
}
END_TEST

/* ---- frees into other threads' pages wait in the freeing thread ----------------------- */

enum { WAITING = 10 };

typedef struct remote_job_s {
  void **blocks; /* of one page of the main thread's */
  na_page_t *page;
  uint32_t pushed_before, pushed_after; /* on the page's thread_free list */
  uint32_t waiting;
} remote_job_t;

static uint32_t pushed(na_page_t *page) { return na_tf_count(atomic_load(&page->thread_free)); }

static void *free_then_collect(void *arg) {
  remote_job_t *job = arg;
  numalloc_free(numalloc_malloc(16)); /* the thread's record */
  for (int i = 0; i < WAITING; i++) numalloc_free(job->blocks[i]);
  job->pushed_before = pushed(job->page);
  job->waiting = na_tld_peek()->remote_count;
  numalloc_collect();
  job->pushed_after = pushed(job->page);
  return NULL;
}

/* Frees into another thread's page wait in the freeing thread and reach the page together,
 * at the thread's numalloc_collect() here. */
START_TEST(remote_frees_wait_and_go_together) {
  void *blocks[WAITING];
  for (int i = 0; i < WAITING; i++) blocks[i] = numalloc_malloc(64);
  remote_job_t job = {blocks, na_page_of(na_segment_of_aligned(blocks[0]), blocks[0]), 0, 0, 0};
  for (int i = 1; i < WAITING; i++)
    ck_assert_ptr_eq(na_page_of(na_segment_of_aligned(blocks[i]), blocks[i]), job.page);
  uint32_t used = job.page->used;
  unit_run_threads(1, free_then_collect, &job, 0);
  ck_assert_uint_eq(job.pushed_before, 0);
  ck_assert_uint_eq(job.waiting, WAITING);
  ck_assert_uint_eq(job.pushed_after, WAITING);
  ck_assert_uint_eq(na_page_collect_remote(job.page), WAITING);
  ck_assert_uint_eq(job.page->used, used - WAITING);
}
END_TEST

static bool had_record;

static void *only_free(void *arg) {
  remote_job_t *job = arg;
  had_record = na_tld_peek() != NULL; /* it never allocated */
  for (int i = 0; i < WAITING; i++) numalloc_free(job->blocks[i]);
  job->pushed_before = pushed(job->page);
  job->waiting = na_tld_peek() != NULL ? na_tld_peek()->remote_count : 0;
  return NULL;
}

/* A thread that only frees gets its record at its first free into another thread's page,
 * so its frees wait and go together (at its exit here) instead of one atomic push each. */
START_TEST(a_thread_that_only_frees_lets_its_remote_frees_wait) {
  void *blocks[WAITING];
  for (int i = 0; i < WAITING; i++) blocks[i] = numalloc_malloc(64);
  remote_job_t job = {blocks, na_page_of(na_segment_of_aligned(blocks[0]), blocks[0]), 0, 0, 0};
  uint32_t used = job.page->used;
  unit_run_threads(1, only_free, &job, 0);
  ck_assert(!had_record);
  ck_assert_uint_eq(job.pushed_before, 0);
  ck_assert_uint_eq(job.waiting, WAITING);
  ck_assert_uint_eq(pushed(job.page), WAITING); /* at its exit */
  ck_assert_uint_eq(na_page_collect_remote(job.page), WAITING);
  ck_assert_uint_eq(job.page->used, used - WAITING);
}
END_TEST

typedef struct node_count_job_s {
  void **blocks; /* two, of arena 0 */
  uint64_t remote[3], cross[3];
} node_count_job_t;

static void *free_as_if_on_node_1(void *arg) {
  node_count_job_t *job = arg;
  numalloc_free(numalloc_malloc(16)); /* the thread's record */
  na_tld_t *tld = na_tld_peek();
  job->remote[0] = tld->stats[0].remote_free_count;
  job->cross[0] = tld->stats[0].cross_node_free_count;
  tld->node = 1; /* as after a slow path on a CPU of node 1 */
  numalloc_free(job->blocks[0]);
  job->remote[1] = tld->stats[0].remote_free_count;
  job->cross[1] = tld->stats[0].cross_node_free_count;
  tld->node = 0;
  numalloc_free(job->blocks[1]);
  job->remote[2] = tld->stats[0].remote_free_count;
  job->cross[2] = tld->stats[0].cross_node_free_count;
  return NULL;
}

/* A free into another thread's page counts as cross-node when the block's node is not the
 * node the freeing thread ran on at its last slow path, the node its allocations count
 * against too. */
START_TEST(remote_frees_count_cross_node_by_the_thread_node) {
  void *blocks[2] = {numalloc_malloc(64), numalloc_malloc(64)};
  ck_assert_int_eq(na_segment_of_aligned(blocks[0])->arena_index, 0);
  node_count_job_t job = {blocks, {0}, {0}};
  unit_run_threads(1, free_as_if_on_node_1, &job, 0);
  ck_assert_uint_eq(job.remote[1], job.remote[0] + 1);
  ck_assert_uint_eq(job.cross[1], job.cross[0] + 1);
  ck_assert_uint_eq(job.remote[2], job.remote[1] + 1);
  ck_assert_uint_eq(job.cross[2], job.cross[1]);
}
END_TEST

typedef struct spread_job_s {
  void **blocks; /* one per page */
  na_page_t **pages;
  uint32_t pushed[WAITING], pushed_after[WAITING];
  uint32_t waiting;
} spread_job_t;

static void *free_spread(void *arg) {
  spread_job_t *job = arg;
  numalloc_free(numalloc_malloc(16)); /* the thread's record */
  for (int i = 0; i < WAITING; i++) numalloc_free(job->blocks[i]);
  for (int i = 0; i < WAITING; i++) job->pushed[i] = pushed(job->pages[i]);
  job->waiting = na_tld_peek()->remote_count;
  numalloc_collect();
  for (int i = 0; i < WAITING; i++) job->pushed_after[i] = pushed(job->pages[i]);
  return NULL;
}

/* Frees over many pages wait as well, and each page gets its own block back. */
START_TEST(remote_frees_over_many_pages_wait_and_reach_each_page) {
  void *blocks[WAITING];
  na_page_t *pages[WAITING];
  for (int i = 0; i < WAITING; i++) {
    size_t size = i < 8 ? 16 * (size_t)(i + 1) : 160 + 32 * (size_t)(i - 8);
    blocks[i] = numalloc_malloc(size); /* a class, and so a page, each */
    pages[i] = na_page_of(na_segment_of_aligned(blocks[i]), blocks[i]);
    for (int j = 0; j < i; j++) ck_assert_ptr_ne(pages[j], pages[i]);
  }
  spread_job_t job = {blocks, pages, {0}, {0}, 0};
  unit_run_threads(1, free_spread, &job, 0);
  ck_assert_uint_eq(job.waiting, WAITING);
  for (int i = 0; i < WAITING; i++) {
    ck_assert_uint_eq(job.pushed[i], 0);
    ck_assert_uint_eq(job.pushed_after[i], 1);
  }
}
END_TEST

/* What a program left in a block's second word is no block to fetch ahead once the block is
 * on its page's list: the owner's frees past its bin clear it. */
START_TEST(a_program_s_data_in_a_freed_block_names_nothing_ahead) {
  enum { COUNT = NA_BIN_SLOTS * 4 };
  void *blocks[COUNT];
  int outside;
  for (int i = 0; i < COUNT; i++) {
    blocks[i] = numalloc_malloc(64);
    ((void **)blocks[i])[1] = &outside; /* a pointer, as programs keep in their objects */
  }
  na_page_t *page = na_page_of(na_segment_of_aligned(blocks[0]), blocks[0]);
  for (int i = 1; i < COUNT; i++)
    ck_assert_ptr_eq(na_page_of(na_segment_of_aligned(blocks[i]), blocks[i]), page);
  for (int i = 0; i < COUNT; i++) numalloc_free(blocks[i]);
  size_t listed = 0;
  for (na_block_t *b = page->local_free; b != NULL; b = na_block_next(page, b)) listed++;
  ck_assert_uint_ge(listed, COUNT - NA_BIN_SLOTS);
  ck_assert_ptr_null(na_check_page(page));
}
END_TEST

enum { CHAIN = NA_FETCH_AHEAD * 3 + 1 };

static void *free_chain_then_collect(void *arg) {
  void **blocks = arg;
  numalloc_free(numalloc_malloc(16)); /* the thread's record */
  for (int i = 0; i < CHAIN; i++) numalloc_free(blocks[i]);
  numalloc_collect();
  return NULL;
}

/* A chain of one page's blocks sent home names, in each block, the block NA_FETCH_AHEAD places
 * further down, and nothing in the last ones: the owner's pop fetches what it names. */
START_TEST(blocks_sent_home_name_the_blocks_further_down_their_chain) {
  void *blocks[CHAIN];
  for (int i = 0; i < CHAIN; i++) blocks[i] = numalloc_malloc(64);
  na_page_t *page = na_page_of(na_segment_of_aligned(blocks[0]), blocks[0]);
  for (int i = 1; i < CHAIN; i++)
    ck_assert_ptr_eq(na_page_of(na_segment_of_aligned(blocks[i]), blocks[i]), page);
  unit_run_threads(1, free_chain_then_collect, blocks, 0);
  ck_assert_uint_eq(pushed(page), CHAIN);
  na_block_t *chain[CHAIN];
  na_block_t *b = na_tf_blocks(atomic_load(&page->thread_free));
  for (int i = 0; i < CHAIN; i++, b = na_block_next(page, b)) chain[i] = b;
  for (int i = 0; i < CHAIN; i++)
    ck_assert_ptr_eq(chain[i]->ahead,
                     i + NA_FETCH_AHEAD < CHAIN ? chain[i + NA_FETCH_AHEAD] : NULL);
  ck_assert_uint_eq(na_page_collect_remote(page), CHAIN);
}
END_TEST

typedef struct full_job_s {
  void **blocks;
  size_t count;
  uint32_t waiting_before_last, waiting_after_last;
} full_job_t;

/* The thread allocates nothing, so it has no bins and every block it frees goes home; its
 * record comes with its first free. */
static void *free_until_full(void *arg) {
  full_job_t *job = arg;
  for (size_t i = 0; i + 1 < job->count; i++) numalloc_free(job->blocks[i]);
  job->waiting_before_last = na_tld_peek()->remote_count;
  numalloc_free(job->blocks[job->count - 1]);
  job->waiting_after_last = na_tld_peek()->remote_count;
  return NULL;
}

/* At most NA_REMOTE_WAITING blocks wait: the free that fills the list pushes them all, and
 * every page gets back what was freed into it. */
START_TEST(remote_frees_go_when_the_list_is_full) {
  enum { COUNT = NA_REMOTE_WAITING };
  void **blocks = numalloc_malloc(COUNT * sizeof *blocks);
  for (int i = 0; i < COUNT; i++) blocks[i] = numalloc_malloc(16 + 16 * (size_t)(i % 40));
  na_page_t *first = na_page_of(na_segment_of_aligned(blocks[0]), blocks[0]);
  uint32_t used = first->used;
  full_job_t job = {blocks, COUNT, 0, 0};
  unit_run_threads(1, free_until_full, &job, 0);
  ck_assert_uint_eq(job.waiting_before_last, COUNT - 1);
  ck_assert_uint_eq(job.waiting_after_last, 0);
  na_page_collect_remote(first);
  ck_assert_uint_eq(first->used, used - (COUNT + 39) / 40);
  numalloc_free(blocks);
}
END_TEST

/* Big blocks wait too, until about NA_REMOTE_BYTES wait: the free that reaches it pushes
 * them all. */
START_TEST(big_remote_frees_go_when_their_bytes_add_up) {
  void *blocks[16];
  size_t block_size = numalloc_usable_size(blocks[0] = numalloc_malloc(32 * NA_KiB));
  size_t count = (NA_REMOTE_BYTES + block_size - 1) / block_size;
  ck_assert_uint_le(count, 16);
  for (size_t i = 1; i < count; i++) blocks[i] = numalloc_malloc(32 * NA_KiB);
  full_job_t job = {blocks, count, 0, 0};
  unit_run_threads(1, free_until_full, &job, 0);
  ck_assert_uint_eq(job.waiting_before_last, count - 1);
  ck_assert_uint_eq(job.waiting_after_last, 0);
}
END_TEST

static void *free_then_exit(void *arg) {
  remote_job_t *job = arg;
  numalloc_free(numalloc_malloc(16));
  for (int i = 0; i < WAITING; i++) numalloc_free(job->blocks[i]);
  return NULL;
}

/* A thread's exit pushes what it kept waiting. */
START_TEST(remote_frees_go_at_exit) {
  void *blocks[WAITING];
  for (int i = 0; i < WAITING; i++) blocks[i] = numalloc_malloc(64);
  remote_job_t job = {blocks, na_page_of(na_segment_of_aligned(blocks[0]), blocks[0]), 0, 0, 0};
  unit_run_threads(1, free_then_exit, &job, 0);
  ck_assert_uint_eq(pushed(job.page), WAITING);
}
END_TEST

static void *free_twice(void *arg) {
  void *p = arg;
  numalloc_free(numalloc_malloc(16));
  numalloc_free(p); /* waits in this thread */
  numalloc_free(p);
  return NULL;
}

/* A second free of a block that waits in the freeing thread is named. */
START_TEST(second_remote_free_of_a_waiting_block_aborts) {
  void *p = numalloc_malloc(48);
  unit_silence_stderr();
  unit_run_threads(1, free_twice, p, 0);
}
END_TEST

static pthread_mutex_t waiter_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t waiter_cond = PTHREAD_COND_INITIALIZER;
static bool waiter_freed, owner_reallocated;

static void *free_and_wait(void *arg) {
  void **pair = arg;
  numalloc_free(numalloc_malloc(16));
  numalloc_free(pair[0]); /* both wait in this thread */
  numalloc_free(pair[1]);
  pthread_mutex_lock(&waiter_lock);
  waiter_freed = true;
  pthread_cond_broadcast(&waiter_cond);
  while (!owner_reallocated) pthread_cond_wait(&waiter_cond, &waiter_lock);
  pthread_mutex_unlock(&waiter_lock);
  numalloc_collect(); /* sends the waiting blocks home */
  return NULL;
}

static void *free_and_collect(void *p) {
  numalloc_free(numalloc_malloc(16)); /* the thread's record, so that the free waits */
  numalloc_free(p);
  numalloc_collect();
  return NULL;
}

/* Another thread frees a block its owner freed onto the page's list: the free only marks the
 * block, and the burst that sends it home names it, before the block sits on a list twice. */
START_TEST(remote_free_of_a_block_on_its_pages_list_aborts_when_sent_home) {
  void *blocks[NA_BIN_SLOTS + 1];
  for (int i = 0; i <= NA_BIN_SLOTS; i++) blocks[i] = numalloc_malloc(48);
  na_page_t *page = na_page_of(na_segment_of_aligned(blocks[0]), blocks[0]);
  for (int i = 0; i <= NA_BIN_SLOTS; i++) numalloc_free(blocks[i]); /* the bin fills first */
  void *listed = blocks[NA_BIN_SLOTS];
  ck_assert_ptr_eq(page->local_free, listed);
  unit_silence_stderr();
  unit_run_threads(1, free_and_collect, listed, 0);
}
END_TEST

/* The owner frees a block that another thread freed and still keeps waiting: on none of the
 * page's lists, it goes into the owner's bin unread, and out again; the freeing thread names
 * it when it sends it home, where it would sit on its page's list while in use. */
START_TEST(double_free_of_a_block_waiting_elsewhere_aborts) {
  void *pair[2] = {numalloc_malloc(48), numalloc_malloc(48)};
  na_page_t *page = na_page_of(na_segment_of_aligned(pair[0]), pair[0]);
  ck_assert_ptr_eq(na_page_of(na_segment_of_aligned(pair[1]), pair[1]), page);
  pthread_t thread;
  ck_assert_int_eq(pthread_create(&thread, NULL, free_and_wait, pair), 0);
  pthread_mutex_lock(&waiter_lock);
  while (!waiter_freed) pthread_cond_wait(&waiter_cond, &waiter_lock);
  pthread_mutex_unlock(&waiter_lock);
  ck_assert_uint_eq(pushed(page), 0); /* the blocks are on none of the page's lists */
  unit_bin_unread_run(48);
  numalloc_free(pair[1]); /* into the owner's bin, unread */
  ck_assert_ptr_eq(numalloc_malloc(48), pair[1]);
  unit_silence_stderr();
  pthread_mutex_lock(&waiter_lock);
  owner_reallocated = true;
  pthread_cond_broadcast(&waiter_cond);
  pthread_mutex_unlock(&waiter_lock);
  pthread_join(thread, NULL);
  ck_abort_msg("a block freed by two threads went home unnamed");
}
END_TEST

START_TEST(double_free_large_aborts) {
  void *keep = numalloc_malloc(NA_MiB);
  void *p = numalloc_malloc(NA_MiB);
  numalloc_free(p);
  unit_silence_stderr();
  numalloc_free(p);
  numalloc_free(keep);
}
END_TEST

/* A stale pointer into the slices a freed span gave back, after a page of this thread took
 * the front of them: the pointer lies past the page, inside the free rest (not at its ends,
 * which are rewritten anyway), at a multiple of the page's block size from its start, so
 * only the free slice it finds (not the page's descriptor) tells it from a block. */
START_TEST(free_into_split_free_span_aborts) {
  char *a = numalloc_malloc(2 * NA_MiB);
  char *keep = numalloc_malloc(NA_MiB); /* a's slices cannot merge into the segment's rest */
  numalloc_free(a);
  char *b = numalloc_malloc(100 * NA_KiB);
  ck_assert_ptr_eq(b, a); /* the page took the front of a's old span */
  na_page_t *page = na_page_of(na_segment_of_aligned(b), b);
  size_t beyond = ((size_t)page->slice_count + 1) << NA_SLICE_SHIFT;
  size_t past = (beyond + page->block_size - 1) / page->block_size * page->block_size;
  ck_assert_uint_lt(past, 2 * NA_MiB - NA_SLICE_SIZE); /* before the rest's last slice */
  unit_silence_stderr();
  numalloc_free(a + past);
  numalloc_free(keep);
}
END_TEST

START_TEST(double_free_huge_aborts) {
  void *p = numalloc_malloc(40 * NA_MiB);
  numalloc_free(p);
  unit_silence_stderr();
  numalloc_free(p);
}
END_TEST

START_TEST(foreign_free_aborts) {
  void *p = malloc(64); /* glibc's, and no system allocator is set: not ours to free */
  unit_silence_stderr();
  numalloc_free(p);
}
END_TEST

static void *free_interior(void *p) {
  numalloc_free((char *)p + 16);
  return NULL;
}

START_TEST(interior_free_from_another_thread_aborts) {
  void *p = numalloc_malloc(64);
  unit_silence_stderr();
  unit_run_threads(1, free_interior, p, 0);
}
END_TEST

START_TEST(interior_free_of_aligned_large_aborts) {
  char *p = numalloc_aligned_alloc(256 * NA_KiB, NA_MiB); /* may start inside its span */
  unit_silence_stderr();
  numalloc_free(p + NA_SLICE_SIZE);
}
END_TEST

START_TEST(interior_free_of_large_aborts) {
  char *p = numalloc_malloc(NA_MiB);
  unit_silence_stderr();
  numalloc_free(p + 4096);
}
END_TEST

/* Any pointer inside a huge block once freed the whole block (the check compared a page with
 * itself). */
START_TEST(interior_free_of_huge_aborts) {
  char *p = numalloc_malloc(40 * NA_MiB);
  unit_silence_stderr();
  numalloc_free(p + 4096);
}
END_TEST

/* The owner's fast path must not take p + 16 for a block (a later malloc would return it,
 * overlapping two blocks). */
START_TEST(interior_free_by_owner_aborts) {
  char *p = numalloc_malloc(64);
  unit_silence_stderr();
  numalloc_free(p + 16);
}
END_TEST

/* ---- block starts found from another thread ----------------------------------------
 * A free by a thread that does not own the page finds the block's index by multiplying by
 * the page's block_magic (free.c). One page of each class filled exactly, so its last block
 * lies at the far end of the page. */
static struct {
  void **blocks;
  size_t count;
} handed;

static size_t page_blocks(int size_class) {
  return (na_class_page_slices(size_class) << NA_SLICE_SHIFT) / na_class_size(size_class);
}

static void fill_page(int size_class) {
  handed.count = page_blocks(size_class);
  handed.blocks = malloc(handed.count * sizeof *handed.blocks);
  ck_assert_ptr_nonnull(handed.blocks);
  for (size_t i = 0; i < handed.count; i++) {
    handed.blocks[i] = numalloc_malloc(na_class_size(size_class));
    UNIT_REQUIRE(handed.blocks[i] != NULL, "class %d, block %zu", size_class, i);
  }
}

static int address_order(const void *a, const void *b) {
  uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
  return (x > y) - (x < y);
}

static void *free_handed(void *arg) {
  (void)arg;
  for (size_t i = 0; i < handed.count; i++) numalloc_free(handed.blocks[i]);
  return NULL;
}

/* Every block start of every class, to the far end of its page, is taken from another
 * thread, and the owner's next allocations of the class hand back exactly those blocks. */
START_TEST(remote_frees_take_every_block_start) {
  for (int c = 0; c < NA_CLASS_COUNT; c++) {
    fill_page(c);
    qsort(handed.blocks, handed.count, sizeof *handed.blocks, address_order);
    size_t span = (size_t)((char *)handed.blocks[handed.count - 1] - (char *)handed.blocks[0]);
    UNIT_REQUIRE(span == (handed.count - 1) * na_class_size(c), "class %d: not one page", c);
    unit_run_threads(1, free_handed, NULL, 0);
    bool *back = calloc(handed.count, sizeof *back);
    ck_assert_ptr_nonnull(back);
    for (size_t i = 0; i < handed.count; i++) {
      void *p = numalloc_malloc(na_class_size(c));
      void **hit = bsearch(&p, handed.blocks, handed.count, sizeof *handed.blocks, address_order);
      UNIT_REQUIRE(hit != NULL, "class %d: allocation %zu gave %p, not a freed block", c, i, p);
      UNIT_REQUIRE(!back[hit - handed.blocks], "class %d: %p handed out twice", c, p);
      back[hit - handed.blocks] = true;
    }
    for (size_t i = 0; i < handed.count; i++) numalloc_free(handed.blocks[i]);
    free(back);
    free(handed.blocks);
  }
}
END_TEST

static void *free_far_interior(void *arg) {
  (void)arg;
  numalloc_free((char *)handed.blocks[handed.count - 1] + 8);
  return NULL;
}

/* Looped over the classes of 16 bytes and more (8 bytes past a block's start is inside it). */
START_TEST(interior_free_at_the_end_of_a_page_from_another_thread_aborts) {
  int c = na_size_class(16) + _i;
  fill_page(c);
  qsort(handed.blocks, handed.count, sizeof *handed.blocks, address_order);
  unit_silence_stderr();
  unit_run_threads(1, free_far_interior, NULL, 0);
}
END_TEST

static void *free_one(void *p) {
  numalloc_free(p);
  return NULL;
}

/* A span keeps the key, block magic and capacity of its small past when it becomes a large
 * block: another thread's free of the large block must still free the span, not take the
 * block for a small one. The stale values are written here rather than waited for. */
START_TEST(large_block_in_a_span_that_was_small_is_freed_as_large) {
  void *small = numalloc_malloc(16);
  char *p = numalloc_malloc(NA_MiB);
  na_page_t *span = na_page_of(na_segment_of_aligned(p), p);
  ck_assert_int_eq(span->kind, NA_SPAN_LARGE);
  ck_assert_ptr_eq(p, (char *)na_page_start(span) + span->block_size);
  ck_assert_uint_lt(span->block_size, NA_SLICE_SIZE); /* where the block starts */
  span->key = na_page_of(na_segment_of_aligned(small), small)->key;
  span->block_magic = UINT64_MAX / 16 + 1; /* as a page of 16-byte blocks */
  span->capacity = NA_SLICE_SIZE / 16;
  unit_run_threads(1, free_one, p, 0);
  ck_assert_int_eq(span->kind, NA_SPAN_FREE);
  numalloc_free(small);
}
END_TEST

static void *free_uncarved(void *p) {
  numalloc_free((char *)p + 32 * NA_KiB); /* the start of a block not carved yet */
  return NULL;
}

START_TEST(free_of_an_uncarved_block_from_another_thread_aborts) {
  void *p = numalloc_malloc(NA_KiB); /* a fresh page carves a few blocks at a time */
  unit_silence_stderr();
  unit_run_threads(1, free_uncarved, p, 0);
}
END_TEST

int main(int argc, char **argv) {
  (void)argc;
  Suite *s = suite_create("free");
  TCase *tc = unit_tcase(s, "threads", 30);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, blocks_passed_between_threads_keep_their_contents);
  tcase_add_test(tc, owner_reuses_what_others_free);
  tcase_add_test(tc, usable_size_inside_small_blocks_is_what_remains);
  tcase_add_test(tc, usable_size_of_blocks_past_the_first_slice_of_their_page);
  tcase_add_test(tc, remote_frees_wait_and_go_together);
  tcase_add_test(tc, a_thread_that_only_frees_lets_its_remote_frees_wait);
  tcase_add_test(tc, remote_frees_over_many_pages_wait_and_reach_each_page);
  tcase_add_test(tc, remote_frees_go_when_the_list_is_full);
  tcase_add_test(tc, blocks_sent_home_name_the_blocks_further_down_their_chain);
  tcase_add_test(tc, a_program_s_data_in_a_freed_block_names_nothing_ahead);
  tcase_add_test(tc, remote_frees_go_at_exit);
  tcase_add_test(tc, remote_frees_count_cross_node_by_the_thread_node);
  tcase_add_test(tc, big_remote_frees_go_when_their_bytes_add_up);
  tcase_add_test(tc, exiting_thread_returns_its_pages);
  tcase_add_test(tc, blocks_of_exited_thread_stay_valid_and_are_freed_later);
  tcase_add_test(tc, another_thread_adopts_abandoned_pages);
  tcase_add_test(tc, frees_race_with_the_owner_exiting);
  tcase_add_test(tc, thread_churn_does_not_leak);
  tcase_add_test(tc, thread_churn_with_large_blocks_ends_empty);
  tcase_add_test(tc, remote_frees_take_every_block_start);
  tcase_add_test(tc, large_block_in_a_span_that_was_small_is_freed_as_large);
  tc = unit_tcase(s, "misuse", 10);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, free_keeps_errno);
  tcase_add_test_raise_signal(tc, double_free_small_aborts, SIGABRT);
  tcase_add_test_raise_signal(tc, double_free_after_other_frees_aborts, SIGABRT);
  tcase_add_test_raise_signal(tc, double_free_of_a_block_waiting_elsewhere_aborts, SIGABRT);
  tcase_add_test_raise_signal(tc, second_remote_free_of_a_waiting_block_aborts, SIGABRT);
  tcase_add_test_raise_signal(tc, remote_free_of_a_block_on_its_pages_list_aborts_when_sent_home,
                              SIGABRT);
  tcase_add_test_raise_signal(tc, double_free_large_aborts, SIGABRT);
  tcase_add_test_raise_signal(tc, double_free_huge_aborts, SIGABRT);
  tcase_add_test_raise_signal(tc, free_into_split_free_span_aborts, SIGABRT);
  tcase_add_test_raise_signal(tc, foreign_free_aborts, SIGABRT);
  tcase_add_test_raise_signal(tc, interior_free_from_another_thread_aborts, SIGABRT);
  tcase_add_test_raise_signal(tc, interior_free_of_large_aborts, SIGABRT);
  tcase_add_test_raise_signal(tc, interior_free_of_huge_aborts, SIGABRT);
  tcase_add_test_raise_signal(tc, interior_free_of_aligned_large_aborts, SIGABRT);
  tcase_add_test_raise_signal(tc, interior_free_by_owner_aborts, SIGABRT);
  tcase_add_loop_test_raise_signal(tc,
                                   interior_free_at_the_end_of_a_page_from_another_thread_aborts,
                                   SIGABRT, 0, NA_CLASS_COUNT - na_size_class(16));
  tcase_add_test_raise_signal(tc, free_of_an_uncarved_block_from_another_thread_aborts, SIGABRT);
  return unit_run(s, argv);
}
