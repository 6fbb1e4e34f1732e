/* node_pool.c: per node, the small pages no thread owns: pages of threads that exited (empty
 * ones too) and pages a thread left on a node it no longer runs on. A heap of the node adopts
 * one of them before it takes a fresh span, so the partly used pages of a node fill up again
 * before new memory is touched, whichever of its threads made them, and threads that replace
 * exited ones take their pages as they were cut; a pool page whose blocks were all freed goes
 * back to the arena once it waited a whole collect. A page changes hands by the abandon and adopt
 * protocol of heap.c: its delay state is NA_DELAY_NEVER while it is here, so other threads' frees
 * only push onto its thread_free list. One lock per pool, never held with an arena's lock nor
 * across a system call.
 *
 * A pool page belongs to no thread, so no heap's pass gives back the OS pages its free
 * blocks leave empty, and a class the program has left is never adopted again: after a
 * phase that made and dropped many small blocks, their sparse pages stayed resident for
 * good. So each collect (at most one per purge delay, or the node's purging thread under
 * NUMALLOC_BACKGROUND=1) takes out pages that have been here since the collect before the
 * last and are at most a quarter used, a sixteenth of the pool at a time, purges them
 * unlocked, and puts them back; once per stay. A page costs about 4 us (its free list walked,
 * a few madvise calls): a collect with a backlog stalls its slow path for a few ms at most,
 * once per delay, which a program that cannot afford it moves to the purging threads. */
#include "internal.h"

#include <limits.h>

typedef struct na_pool_s { /* guarded by the pool's lock, but for what is read without it */
  na_page_t *pages[NA_CLASS_COUNT]; /* singly linked; the head is read without the lock */
  uint32_t count;                   /* pages here, and their bytes (statistics) */
  uint64_t bytes;
  uint32_t last_collect_ms;
  uint32_t collects; /* a page's sparse_pass is this count when it arrived */
} na_pool_t;

#define POOL_PURGED 3 /* sparse_marked of a page purged in this stay (heap.c's are 1, 2 and 4) */

static na_pool_t pools[NA_ARENA_COUNT] NA_TABLE;

/* Side by side, apart from the pools, and taken by fork for the arenas in use only (see
 * arena.c's locks). */
static na_lock_slot_t pool_locks[NA_ARENA_COUNT] NA_PAGE_ALIGNED NA_TABLE = {
    [0 ... NA_ARENA_COUNT - 1] = {PTHREAD_MUTEX_INITIALIZER},
};

static pthread_mutex_t *lock_of(int arena_index) {
  return &pool_locks[na_lock_order(arena_index)].mutex;
}

static void pool_lock(na_pool_t *pool) {
  int arena_index = (int)(pool - pools);
  na_arena_note_use(arena_index);
  pthread_mutex_lock(lock_of(arena_index));
}

static void pool_unlock(na_pool_t *pool) { pthread_mutex_unlock(lock_of((int)(pool - pools))); }

static int arena_of(const na_page_t *page) { return na_segment_of_aligned(page)->arena_index; }

static uint64_t page_bytes(const na_page_t *page) {
  return (uint64_t)page->slice_count << NA_SLICE_SHIFT;
}

static void link_locked(na_pool_t *pool, na_page_t *page) {
  page->prev = NULL;
  page->next = pool->pages[page->size_class];
  na_relaxed_store(&pool->pages[page->size_class], page);
  na_relaxed_store(&pool->count, pool->count + 1); /* read without the lock */
  pool->bytes += page_bytes(page);
}

/* A page arriving from a heap: no one's, and not purged in this stay. */
static void push_locked(na_pool_t *pool, na_page_t *page) {
  page->sparse_pass = pool->collects;
  page->sparse_marked = 0;
  na_relaxed_store(&page->owner, 0);
  page->heap = NULL;
  link_locked(pool, page);
}

/* Pages of one heap in one call: most share a node, so the lock is taken about once. The
 * caller set their delay to NA_DELAY_NEVER and took their own and remote frees in. */
void na_pool_abandon(na_page_t *pages) {
  na_pool_t *locked = NULL;
  while (pages != NULL) {
    na_page_t *page = pages;
    pages = page->next;
    na_pool_t *pool = &pools[arena_of(page)];
    if (pool != locked) {
      if (locked != NULL) pool_unlock(locked);
      pool_lock(pool);
      locked = pool;
    }
    push_locked(pool, page);
  }
  if (locked != NULL) pool_unlock(locked);
}

na_page_t *na_pool_adopt(int arena_index, int size_class) {
  na_pool_t *pool = &pools[arena_index];
  if (na_relaxed_load(&pool->pages[size_class]) == NULL) return NULL;
  pool_lock(pool);
  na_page_t *page = pool->pages[size_class];
  if (page != NULL) {
    na_relaxed_store(&pool->pages[size_class], page->next);
    page->next = NULL;
    page->sparse_marked = 0;
    na_relaxed_store(&pool->count, pool->count - 1);
    pool->bytes -= page_bytes(page);
  }
  pool_unlock(pool);
  return page;
}

/* Takes out, under the lock, up to `budget` pages that `wanted` picks (after their remote
 * frees were taken in), as one list. */
static na_page_t *take_locked(na_pool_t *pool,
                              bool (*wanted)(const na_pool_t *, const na_page_t *, bool),
                              bool force, int budget) {
  na_page_t *taken = NULL;
  for (int c = 0; c < NA_CLASS_COUNT && budget > 0; c++) {
    na_page_t **link = &pool->pages[c];
    while (*link != NULL && budget > 0) {
      na_page_t *page = *link;
      na_page_collect_remote(page);
      if (!wanted(pool, page, force)) {
        link = &page->next;
        continue;
      }
      na_relaxed_store(link, page->next);
      na_relaxed_store(&pool->count, pool->count - 1);
      pool->bytes -= page_bytes(page);
      page->next = taken;
      taken = page;
      budget--;
    }
  }
  return taken;
}

/* Pages whose blocks were all freed, that stayed a whole collect (any when forced): an
 * exited thread's empty pages wait that long for the threads that replace it. */
static bool is_empty(const na_pool_t *pool, const na_page_t *page, bool force) {
  return page->used == 0 && (force || pool->collects - page->sparse_pass >= 2);
}

/* Sparse pages that stayed a whole collect (any when forced) and were not purged in this
 * stay. */
static bool is_sparse(const na_pool_t *pool, const na_page_t *page, bool force) {
  return page->sparse_marked != POOL_PURGED && page->used * 4 <= page->reserved &&
         (force || pool->collects - page->sparse_pass >= 2);
}

/* True when it gave some back. */
static bool purge_sparse(na_pool_t *pool, bool force) {
  if (!na_options.purge_sparse) return false;
  pool_lock(pool);
  int budget = force ? INT_MAX : na_sparse_purge_budget(pool->count);
  na_page_t *sparse = take_locked(pool, is_sparse, force, budget);
  pool_unlock(pool);
  if (sparse == NULL) return false;
  na_os_purge_batch_t batch;
  na_os_purge_start(&batch);
  for (na_page_t *page = sparse; page != NULL; page = page->next) na_page_purge_free(page, &batch);
  na_os_purge_flush(&batch);
  pool_lock(pool);
  while (sparse != NULL) {
    na_page_t *page = sparse;
    sparse = page->next;
    page->sparse_marked = POOL_PURGED;
    link_locked(pool, page);
  }
  pool_unlock(pool);
  return true;
}

bool na_pool_purge_sparse(int arena_index) {
  na_pool_t *pool = &pools[arena_index];
  return na_relaxed_load(&pool->count) != 0 && purge_sparse(pool, false);
}

static void collect(na_pool_t *pool, uint32_t now, bool force) {
  pool_lock(pool);
  na_relaxed_store(&pool->last_collect_ms, now);
  pool->collects++;
  na_page_t *empty = take_locked(pool, is_empty, force, INT_MAX);
  pool_unlock(pool);
  while (empty != NULL) {
    na_page_t *page = empty;
    empty = page->next;
    na_page_check_empty(page);
    page->flags.value = 0;
    na_arena_free_span(page);
  }
  if (force || !na_options.background) purge_sparse(pool, force); /* else the node's thread */
}

void na_pool_collect(int arena_index, bool force) {
  na_pool_t *pool = &pools[arena_index];
  if (na_relaxed_load(&pool->count) == 0) return;
  uint32_t now = na_os_clock_ms();
  if (!force && (uint32_t)(now - na_relaxed_load(&pool->last_collect_ms)) <
                    (uint32_t)na_options.purge_delay_ms)
    return;
  collect(pool, now, force);
}

void na_pool_collect_all(void) {
  for (int i = 0; i < NA_ARENA_COUNT; i++) na_pool_collect(i, true);
}

void na_pool_census(int arena_index, na_census_t *out) {
  na_pool_t *pool = &pools[arena_index];
  *out = (na_census_t){0};
  if (na_relaxed_load(&pool->count) == 0) return;
  pool_lock(pool);
  out->pages = pool->count;
  out->bytes = pool->bytes;
  for (int c = 0; c < NA_CLASS_COUNT; c++)
    for (const na_page_t *page = pool->pages[c]; page != NULL; page = page->next) {
      out->used_bytes += na_page_live_bytes(page);
      out->touched_bytes += na_page_touched_bytes(page);
    }
  pool_unlock(pool);
}

void na_pool_lock_all(void) {
  for (int i = 0; i < NA_ARENA_COUNT; i++)
    if (na_arena_in_use(i)) pthread_mutex_lock(lock_of(i));
}

void na_pool_unlock_all(void) {
  for (int i = NA_ARENA_COUNT - 1; i >= 0; i--)
    if (na_arena_in_use(i)) pthread_mutex_unlock(lock_of(i));
}
