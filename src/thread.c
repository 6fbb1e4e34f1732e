/* thread.c: each thread's record (its heaps, policy and statistics): made on the thread's
 * first allocation, and at thread exit its pages are handed back (or left for adoption) and
 * its statistics merged, and the record is kept for the next thread. Records and heaps come
 * from a small internal pool and are never freed, so a remote free can always reach a heap
 * it read a moment ago. */
#include "internal.h"

#include <errno.h>
#include <string.h>

#define META_CHUNK (1 * NA_MiB)

__thread struct na_tld_s *na_tls_tld __attribute__((tls_model("initial-exec")));
/* The thread's exit ran (key destructors that run after it may still allocate and free). */
static __thread bool tls_exited __attribute__((tls_model("initial-exec")));
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static na_tld_t *free_tlds;
static na_tld_t *live_tlds;
static char *meta_cursor[NA_ARENA_COUNT], *meta_end[NA_ARENA_COUNT];
static pthread_key_t exit_key;

/* A block freed twice into a bin is named when the bin reaches it again or empties (bin.c),
 * and a thread's exit empties its bins; the process's exit checks those of the thread that
 * ends it, so that a program that exits soon after such a free still hears of it. */
__attribute__((destructor)) static void check_bins_at_exit(void) {
  na_tld_t *tld = na_tld_peek();
  if (tld == NULL) return;
  for (int i = 0; i < NA_ARENA_COUNT; i++)
    if (tld->heaps[i] != NULL) na_bins_verify(tld->heaps[i]);
}

/* Internal metadata, bump-allocated from page-aligned chunks bound to the node whose memory
 * it describes (a heap for node 1 lives on node 1); never returned, so it comes zeroed. */
static void *meta_alloc(size_t size, int arena_index) {
  size = na_align_up(size, 64);
  pthread_mutex_lock(&registry_lock);
  if (meta_cursor[arena_index] == NULL ||
      (size_t)(meta_end[arena_index] - meta_cursor[arena_index]) < size) {
    pthread_mutex_unlock(&registry_lock);
    size_t chunk = size > META_CHUNK ? na_align_up(size, NA_PAGE_SIZE) : META_CHUNK;
    char *fresh = na_os_map_aligned(chunk, NA_PAGE_SIZE);
    if (fresh == NULL) return NULL;
    na_placement_bind(arena_index, fresh, chunk);
    pthread_mutex_lock(&registry_lock);
    meta_cursor[arena_index] = fresh; /* the rest of an old chunk is dropped: a few KiB */
    meta_end[arena_index] = fresh + chunk;
  }
  void *p = meta_cursor[arena_index];
  meta_cursor[arena_index] += size;
  pthread_mutex_unlock(&registry_lock);
  return p;
}

static void live_link(na_tld_t *tld) {
  tld->prev_live = NULL;
  tld->next_live = live_tlds;
  if (live_tlds) live_tlds->prev_live = tld;
  live_tlds = tld;
}

static void live_unlink(na_tld_t *tld) {
  if (tld->prev_live)
    tld->prev_live->next_live = tld->next_live;
  else
    live_tlds = tld->next_live;
  if (tld->next_live) tld->next_live->prev_live = tld->prev_live;
}

static na_tld_t *tld_new(void) {
  pthread_mutex_lock(&registry_lock);
  na_tld_t *tld = free_tlds;
  if (tld != NULL) free_tlds = tld->next_free;
  pthread_mutex_unlock(&registry_lock);
  /* A used record's counters were cleared by its last thread's merge. */
  if (tld == NULL) {
    tld = meta_alloc(sizeof *tld, na_policy_current_node());
    if (tld == NULL) return NULL; /* else all zero, and its pages untouched until used */
  }
  tld->exiting = tls_exited;
  tld->policy = na_options.policy;
  tld->bound_node = na_topology.usable_list[0];
  tld->node = na_policy_current_node();
  tld->heap = NULL;
  tld->left[0] = tld->left[1] = 0;
  pthread_mutex_lock(&registry_lock);
  live_link(tld);
  pthread_mutex_unlock(&registry_lock);
  return tld;
}

struct na_tld_s *na_tld_get(void) {
  na_tld_t *tld = na_tls_tld;
  if (na_likely(tld != NULL)) return tld;
  tld = tld_new();
  if (tld == NULL) return NULL;
  na_tls_tld = tld;
  pthread_setspecific(exit_key, tld);
  return tld;
}

struct na_tld_s *na_tld_get_unless_exited(void) {
  return na_tls_tld != NULL || !tls_exited ? na_tld_get() : NULL;
}

na_heap_t *na_tld_heap_for_arena(struct na_tld_s *tld, int arena_index) {
  na_heap_t *heap = tld->heaps[arena_index];
  if (na_likely(heap != NULL)) return heap;
  heap = meta_alloc(sizeof *heap, arena_index);
  if (heap == NULL) return NULL;
  na_heap_init(heap, tld, arena_index);
  tld->heaps[arena_index] = heap;
  return heap;
}

/* ---- heaps a thread moved away from ---------------------------------------------------
 * A thread that the scheduler moves to another node allocates from that node's heap, and
 * the heap of the node it left would keep its partly used pages of every class for as long
 * as the thread stays away: with threads that visit every node, a set of half used pages
 * per thread and node (a 4-node VM running 16 threads on 8 CPUs held twice glibc's resident
 * memory so). So a heap left for LEAVE_DELAY_MS (or the purge delay, when shorter) hands its
 * pages to its node's pool, where the node's other heaps adopt them before they take fresh
 * spans, as they do with an exited thread's pages. A thread that comes back sooner finds its
 * pages in place, so one that bounces between two nodes does not hand them over each time.
 * Checked on the allocation slow path, which also notices the move. */
#define LEAVE_DELAY_MS 100

static uint32_t leave_delay(void) {
  long purge = na_options.purge_delay_ms;
  return (uint32_t)(purge < LEAVE_DELAY_MS ? purge : LEAVE_DELAY_MS);
}

static void set_left_bit(na_tld_t *tld, int arena_index, bool on) {
  uint64_t bit = (uint64_t)1 << (arena_index % 64);
  tld->left[arena_index / 64] =
      on ? tld->left[arena_index / 64] | bit : tld->left[arena_index / 64] & ~bit;
}

static bool is_left(const na_tld_t *tld, int arena_index) {
  return (tld->left[arena_index / 64] >> (arena_index % 64)) & 1;
}

static void note_move(na_tld_t *tld, na_heap_t *to) {
  na_heap_t *from = tld->heap;
  tld->heap = to;
  set_left_bit(tld, to->arena_index, false); /* back before its pages went */
  if (from == NULL) return;
  from->left_ms = na_os_clock_ms();
  set_left_bit(tld, from->arena_index, true);
}

/* Heaps left long enough give their pages to their nodes' pools. */
static void release_left(na_tld_t *tld) {
  uint32_t now = na_os_clock_ms();
  for (int w = 0; w < 2; w++)
    for (uint64_t bits = tld->left[w]; bits != 0; bits &= bits - 1) {
      int arena_index = w * 64 + __builtin_ctzll(bits);
      na_heap_t *heap = tld->heaps[arena_index];
      if ((uint32_t)(now - heap->left_ms) < leave_delay()) continue;
      set_left_bit(tld, arena_index, false);
      na_tld_stats(tld, arena_index)->heaps_left++;
      na_heap_abandon(heap, arena_index); /* its blocks were handed out on its node */
    }
}

na_heap_t *na_tld_pick_heap(struct na_tld_s *tld) {
  tld->node = na_policy_current_node();
  int arena_index = na_policy_arena(tld);
  if (arena_index < 0) return NULL;
  na_heap_t *heap = na_tld_heap_for_arena(tld, arena_index);
  /* rr moves from heap to heap on purpose, at every allocation */
  if (heap != NULL && heap != tld->heap && tld->policy != NUMALLOC_POLICY_RR) note_move(tld, heap);
  if (na_unlikely((tld->left[0] | tld->left[1]) != 0)) release_left(tld);
  /* rr must see every allocation, so its threads keep the empty heap on the fast path */
  na_tls_heap = (heap == NULL || tld->policy == NUMALLOC_POLICY_RR) ? &na_heap_empty : heap;
  return heap;
}

void (*na_thread_on_main_exit)(void);

static void thread_exit(void *arg) {
  na_tld_t *tld = arg;
  void (*on_main_exit)(void) = na_thread_on_main_exit;
  if (on_main_exit != NULL && na_os_kernel_thread_id() == na_os_getpid()) on_main_exit();
  na_free_remote_flush(tld);
  tls_exited = true;
  na_tls_heap = &na_heap_empty;
  na_tls_tld = NULL;
  for (int i = 0; i < NA_ARENA_COUNT; i++)
    if (tld->heaps[i] != NULL) na_heap_abandon(tld->heaps[i], is_left(tld, i) ? i : -1);
  pthread_mutex_lock(&registry_lock);
  live_unlink(tld);
  pthread_mutex_unlock(&registry_lock);
  na_stats_merge_thread(tld);
  pthread_mutex_lock(&registry_lock);
  tld->next_free = free_tlds;
  free_tlds = tld;
  pthread_mutex_unlock(&registry_lock);
}

void na_thread_init(void) { pthread_key_create(&exit_key, thread_exit); }

void na_thread_foreach(void (*visit)(struct na_tld_s *, void *), void *arg) {
  pthread_mutex_lock(&registry_lock);
  for (na_tld_t *tld = live_tlds; tld != NULL; tld = tld->next_live) visit(tld, arg);
  pthread_mutex_unlock(&registry_lock);
}

void na_thread_lock_all(void) { pthread_mutex_lock(&registry_lock); }
void na_thread_unlock_all(void) { pthread_mutex_unlock(&registry_lock); }

/* In a forked child only the forking thread lives: the others' records are dropped from
 * the live list (their pages stay owned by no one that can free into them, as with any
 * allocator after fork). */
void na_thread_after_fork_child(void) {
  pthread_mutex_unlock(&registry_lock);
  na_tld_t *self = na_tls_tld;
  for (na_tld_t *tld = live_tlds; tld != NULL; tld = tld->next_live)
    if (tld != self) na_free_remote_flush(tld); /* their frees still reach the pages */
  live_tlds = NULL;
  if (self != NULL) live_link(self);
  na_heap_after_fork_child(self);
}

/* ---- the per-thread policy API ------------------------------------------------------- */

/* A new policy takes effect at the thread's next allocation: the heap it allocates from is
 * chosen again. */
static int thread_set(int policy, int node) {
  if (!na_ensure_init()) return -1;
  struct na_tld_s *tld = na_tld_get();
  if (tld == NULL) return -1;
  tld->policy = policy;
  tld->bound_node = node;
  na_tld_pick_heap(tld);
  return 0;
}

int numalloc_thread_set_policy(numalloc_policy_t policy) {
  if ((int)policy < NUMALLOC_POLICY_LOCAL || policy >= NUMALLOC_POLICY_SYSTEM ||
      policy == NUMALLOC_POLICY_BIND || na_options.policy == NUMALLOC_POLICY_SYSTEM) {
    errno = EINVAL;
    return -1;
  }
  return thread_set(policy, na_topology.usable_list[0]);
}

int numalloc_thread_bind(int node) {
  if (!na_ensure_init() || !na_node_bit(na_topology.usable, node) ||
      na_options.policy == NUMALLOC_POLICY_SYSTEM) {
    errno = EINVAL;
    return -1;
  }
  return thread_set(NUMALLOC_POLICY_BIND, node);
}
