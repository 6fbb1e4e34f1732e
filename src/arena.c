/* arena.c: one arena per NUMA node (and one for page-interleaved memory). An arena owns the
 * segments bound to its node, hands out spans of slices to heaps and large blocks, takes
 * them back and coalesces them, keeps the pages of exited threads until another thread
 * adopts them, and gives idle memory back to the OS after the purge delay. The arena lock is
 * never held across a system call: mapping, purging and unmapping happen unlocked. */
#include "internal.h"

#include <errno.h>
#include <string.h>

#define BIN_COUNT   32
#define PURGE_BATCH 64

typedef struct na_arena_s {
  pthread_mutex_t lock;
  na_segment_t *segments;
  na_page_queue_t bins[BIN_COUNT]; /* free spans by size */
  na_page_t *abandoned[NA_CLASS_COUNT];
  size_t abandoned_count;
  size_t segment_count;
  size_t empty_segments;
  _Atomic size_t mapped_bytes;
  _Atomic size_t peak_mapped_bytes;
  _Atomic int64_t huge_bytes;
  uint32_t last_purge_ms;
  bool bind_warned;
} na_arena_t;

static na_arena_t arenas[NA_ARENA_COUNT];
static pthread_once_t arenas_once = PTHREAD_ONCE_INIT;

static void arenas_init(void) {
  for (int i = 0; i < NA_ARENA_COUNT; i++) pthread_mutex_init(&arenas[i].lock, NULL);
}

static na_arena_t *arena_at(int index) {
  pthread_once(&arenas_once, arenas_init);
  return &arenas[index];
}

int na_arena_for_node(int node) {
  if (node < 0 || node >= NA_MAX_NODES) return na_topology.usable_list[0];
  return node;
}

size_t na_arena_mapped_bytes(int arena_index) {
  return atomic_load_explicit(&arena_at(arena_index)->mapped_bytes, memory_order_relaxed);
}

size_t na_arena_peak_mapped_bytes(int arena_index) {
  return atomic_load_explicit(&arena_at(arena_index)->peak_mapped_bytes, memory_order_relaxed);
}

static void add_mapped(na_arena_t *arena, int64_t bytes) {
  size_t now =
      atomic_fetch_add_explicit(&arena->mapped_bytes, (size_t)bytes, memory_order_relaxed) +
      (size_t)bytes;
  size_t peak = atomic_load_explicit(&arena->peak_mapped_bytes, memory_order_relaxed);
  while (bytes > 0 && now > peak &&
         !atomic_compare_exchange_weak(&arena->peak_mapped_bytes, &peak, now)) {
  }
}

void na_arena_account_huge(int arena_index, int64_t bytes) {
  atomic_fetch_add_explicit(&arena_at(arena_index)->huge_bytes, bytes, memory_order_relaxed);
}

/* Blocks of a page in use: those handed out, less those other threads freed that its owner
 * has not collected yet (their count rides in thread_free). */
static uint32_t small_live_blocks(const na_page_t *page) {
  uint32_t used = na_relaxed_load(&page->used);
  uint32_t pending = na_tf_count(atomic_load_explicit(&page->thread_free, memory_order_relaxed));
  return pending < used ? used - pending : 0;
}

static size_t segment_live_bytes(const na_segment_t *segment) {
  size_t live = 0;
  for (size_t i = NA_META_SLICES; i < NA_SLICES_PER_SEGMENT;) {
    const na_page_t *span = &segment->slices[i];
    if (span->slice_count == 0) break;
    if (span->kind == NA_SPAN_SMALL)
      live += (size_t)small_live_blocks(span) * span->block_size;
    else if (span->kind == NA_SPAN_LARGE)
      live += (size_t)span->slice_count << NA_SLICE_SHIFT;
    i += span->slice_count;
  }
  return live;
}

size_t na_arena_live_bytes(int arena_index) {
  na_arena_t *arena = arena_at(arena_index);
  pthread_mutex_lock(&arena->lock);
  size_t live = 0;
  for (na_segment_t *s = arena->segments; s != NULL; s = s->next) live += segment_live_bytes(s);
  pthread_mutex_unlock(&arena->lock);
  int64_t huge = atomic_load_explicit(&arena->huge_bytes, memory_order_relaxed);
  return live + (huge > 0 ? (size_t)huge : 0);
}

/* ---- binding ---------------------------------------------------------------------------- */

bool na_arena_bind(int arena_index, void *addr, size_t size) {
  uint64_t mask[1];
  na_bind_mode_t mode;
  if (arena_index == NA_TOUCH_ARENA) return true; /* the kernel places it at first touch */
  if (arena_index == NA_INTERLEAVE_ARENA) {
    mask[0] = na_topology.usable[0];
    mode = NA_BIND_INTERLEAVE;
  } else {
    mask[0] = (uint64_t)1 << arena_index;
    mode = NA_BIND_PREFERRED; /* strict placement is checked instead: see commit_on_node */
  }
  if (na_os_bind(addr, size, mode, mask, NA_MAX_NODES - 1)) return true;
  na_arena_t *arena = arena_at(arena_index);
  if (!arena->bind_warned) {
    arena->bind_warned = true;
    if (na_topology.node_count > 1)
      na_warning("mbind to node %d refused; its memory follows the kernel's default policy",
                 arena_index);
  }
  return true;
}

/* ---- free spans ------------------------------------------------------------------------- */

static int bin_of(size_t slices) { return na_size_class(slices * 16); }

static bool is_free_head(const na_page_t *slice) {
  return na_relaxed_load(&slice->kind) == NA_SPAN_FREE && slice->slice_count > 0 &&
         slice->slice_offset == 0;
}

static void bin_remove(na_arena_t *arena, na_page_t *span) {
  na_queue_remove(&arena->bins[bin_of(span->slice_count)], span);
}

/* ---- free spans' descriptors ----
 * Inside a free span every slice but the last describes itself: offset 0, free, no owner,
 * no count. The head carries the span; the last slice leads back to the head, for the merge
 * with a span freed to its right. So a free span splits or merges with a few writes, not a
 * pass over up to a whole segment of descriptors, and a stale pointer into free memory still
 * finds a free descriptor and is named as invalid. Spans handed out get every slice written
 * (na_segment_set_span); freeing one turns its slices back into free ones. */
static void set_free_slice(na_page_t *slice) {
  slice->slice_offset = 0;
  slice->slice_count = 0;
  na_relaxed_store(&slice->kind, NA_SPAN_FREE);
  na_relaxed_store(&slice->owner, 0);
}

static void set_free_ends(na_segment_t *segment, size_t first, size_t count) {
  na_page_t *head = &segment->slices[first];
  set_free_slice(head);
  head->slice_count = (uint32_t)count;
  if (count > 1)
    segment->slices[first + count - 1].slice_offset = (uint32_t)((count - 1) * sizeof(na_page_t));
}

/* What a free span knows about its memory; merging two spans merges their states. */
typedef struct span_state_s {
  bool dirty;      /* some page may be resident */
  bool zero;       /* every page reads as zero */
  uint32_t stamp;  /* when it was freed, for the purge delay */
  int8_t used_on;  /* first-touch spans: the node whose thread last used it, -1 unknown */
} span_state_t;

static span_state_t state_of(const na_page_t *span) {
  return (span_state_t){span->is_dirty, span->is_zero, span->free_stamp, span->used_on};
}

static void state_merge(span_state_t *into, const na_page_t *span) {
  into->dirty |= span->is_dirty;
  into->zero &= span->is_zero;
  if (span->is_dirty && span->used_on != into->used_on) into->used_on = -1;
}

/* Inserts a free span whose slices are free ones, merging it with free neighbours. */
static void span_insert(na_arena_t *arena, na_segment_t *segment, size_t first, size_t count,
                        span_state_t state) {
  size_t end = first + count;
  if (end < NA_SLICES_PER_SEGMENT && is_free_head(&segment->slices[end])) {
    na_page_t *right = &segment->slices[end];
    bin_remove(arena, right);
    state_merge(&state, right);
    count += right->slice_count;
    right->slice_count = 0; /* interior now, as is this span's last slice */
    segment->slices[end - 1].slice_offset = 0;
  }
  if (first > NA_META_SLICES) {
    na_page_t *before = &segment->slices[first - 1];
    na_page_t *left = (na_page_t *)((char *)before - before->slice_offset);
    if (is_free_head(left)) {
      bin_remove(arena, left);
      state_merge(&state, left);
      size_t left_first = (size_t)(left - segment->slices);
      before->slice_offset = 0; /* the left span's last slice is interior now */
      segment->slices[first].slice_count = 0;
      count += first - left_first;
      first = left_first;
    }
  }
  set_free_ends(segment, first, count);
  na_page_t *span = &segment->slices[first];
  span->is_dirty = state.dirty;
  span->is_zero = state.zero;
  span->free_stamp = state.stamp;
  span->used_on = state.used_on;
  span->owner = 0;
  span->heap = NULL;
  na_queue_push_front(&arena->bins[bin_of(count)], span);
}

static na_page_t *span_find(na_arena_t *arena, size_t slices) {
  for (int bin = bin_of(slices); bin < BIN_COUNT; bin++) {
    for (na_page_t *span = arena->bins[bin].first; span != NULL; span = span->next)
      if (span->slice_count >= slices) return span;
  }
  return NULL;
}

/* Takes `slices` from a free span, returning the rest to the bins. */
static na_page_t *span_take(na_arena_t *arena, na_page_t *span, size_t slices) {
  na_segment_t *segment = na_segment_of_aligned(span);
  size_t first = (size_t)(span - segment->slices);
  size_t total = span->slice_count;
  span_state_t state = state_of(span);
  bin_remove(arena, span);
  na_segment_set_span(segment, first, slices, NA_SPAN_LARGE); /* before the rest merges */
  if (total > slices) /* the rest's slices are free ones already; its head is new */
    span_insert(arena, segment, first + slices, total - slices, state);
  span->is_zero = state.zero;
  span->is_dirty = state.dirty; /* for na_arena_place_by_use */
  span->used_on = state.used_on;
  segment->free_slices -= (uint32_t)slices;
  return span;
}

static bool segment_is_empty(const na_segment_t *segment) {
  return segment->free_slices == NA_SLICES_PER_SEGMENT - NA_META_SLICES;
}

static void segment_link(na_arena_t *arena, na_segment_t *segment) {
  segment->prev = NULL;
  segment->next = arena->segments;
  if (arena->segments) arena->segments->prev = segment;
  arena->segments = segment;
  arena->segment_count++;
}

static void segment_unlink(na_arena_t *arena, na_segment_t *segment) {
  if (segment->prev)
    segment->prev->next = segment->next;
  else
    arena->segments = segment->next;
  if (segment->next) segment->next->prev = segment->prev;
  arena->segment_count--;
}

/* Maps a new segment for the arena (unlocked: the caller holds no lock). */
static na_segment_t *segment_grow(int arena_index) {
  bool zero;
  na_segment_t *segment = na_segment_create(arena_index, NA_SEGMENT_SIZE, &zero);
  if (segment == NULL) return NULL;
  na_arena_t *arena = arena_at(arena_index);
  add_mapped(arena, (int64_t)NA_SEGMENT_SIZE);
  pthread_mutex_lock(&arena->lock);
  segment->free_slices = NA_SLICES_PER_SEGMENT - NA_META_SLICES;
  segment_link(arena, segment);
  na_relaxed_store(&arena->empty_segments, arena->empty_segments + 1);
  span_insert(arena, segment, NA_META_SLICES, NA_SLICES_PER_SEGMENT - NA_META_SLICES,
              (span_state_t){.zero = zero, .used_on = -1});
  pthread_mutex_unlock(&arena->lock);
  return segment;
}

static na_page_t *alloc_span_on(int arena_index, size_t slices) {
  na_arena_t *arena = arena_at(arena_index);
  for (int attempt = 0; attempt < 4; attempt++) {
    pthread_mutex_lock(&arena->lock);
    na_page_t *span = span_find(arena, slices);
    if (span != NULL) {
      na_segment_t *segment = na_segment_of_aligned(span);
      if (segment_is_empty(segment))
        na_relaxed_store(&arena->empty_segments, arena->empty_segments - 1);
      span = span_take(arena, span, slices);
      pthread_mutex_unlock(&arena->lock);
      return span;
    }
    pthread_mutex_unlock(&arena->lock);
    if (segment_grow(arena_index) == NULL) return NULL;
  }
  return NULL;
}

/* Under a strict binding a full node must fail here, not kill the process at first touch. */
/* NUMALLOC_FALLBACK=none without the OOM killer: a strict binding would have the kernel kill
 * the process when the node is full. So memory is bound "preferred" in every mode, and in
 * strict mode faulted in now and checked page by page: a page the kernel had to put on
 * another node means this node is full, and the allocation fails with ENOMEM instead. */
static bool commit_on_node(void *addr, size_t size, int node) {
  enum { BATCH = 256 };
  void *pages[BATCH];
  int nodes[BATCH];
  if (!na_os_populate(addr, size)) return false;
  for (size_t at = 0; at < size;) {
    size_t n = 0;
    for (; n < BATCH && at < size; n++, at += NA_PAGE_SIZE) pages[n] = (char *)addr + at;
    if (!na_os_page_nodes(pages, nodes, n)) return false;
    for (size_t i = 0; i < n; i++)
      if (nodes[i] != node) return false;
  }
  return true;
}

bool na_arena_is_strict(int arena_index) {
  return na_options.fallback == NA_FALLBACK_NONE && arena_index < NA_MAX_NODES;
}

static bool span_commit(int arena_index, na_page_t *span) {
  if (!na_arena_is_strict(arena_index)) return true;
  void *start = na_page_start(span);
  size_t size = span->slice_count * NA_SLICE_SIZE;
  if (commit_on_node(start, size, arena_index)) return true;
  na_os_purge(start, size); /* the misplaced pages go back at once */
  return false;
}

na_page_t *na_arena_alloc_span(int arena_index, size_t slices, int *actual_arena) {
  na_arena_purge_expired(arena_index);
  na_page_t *span = alloc_span_on(arena_index, slices);
  if (span != NULL && !span_commit(arena_index, span)) {
    na_arena_free_span(span);
    span = NULL;
  }
  if (span != NULL || arena_index >= NA_MAX_NODES || na_options.fallback == NA_FALLBACK_NONE) {
    *actual_arena = arena_index;
    return span;
  }
  const int8_t *order = na_topology.fallback_order[arena_index];
  for (int i = 0; i < NA_MAX_NODES && order[i] >= 0; i++) {
    if (order[i] == arena_index) continue;
    span = alloc_span_on(order[i], slices);
    if (span != NULL) {
      *actual_arena = order[i];
      return span;
    }
  }
  return NULL;
}

/* ---- purging ---------------------------------------------------------------------------- */

typedef struct purge_batch_s {
  na_page_t *spans[PURGE_BATCH];
  size_t count;
  na_segment_t *unmap[PURGE_BATCH];
  size_t unmap_count;
} purge_batch_t;

static void collect_abandoned_locked(na_arena_t *arena, purge_batch_t *batch);

/* Picks, under the lock, what to give back: free spans idle longer than the delay, and
 * empty segments beyond the cache. */
static void purge_select(na_arena_t *arena, bool force, uint32_t now, purge_batch_t *batch) {
  for (na_segment_t *s = arena->segments, *next; s != NULL; s = next) {
    next = s->next;
    /* empty, and in one piece: no part of it is being purged by another thread */
    if (!segment_is_empty(s) || !is_free_head(&s->slices[NA_META_SLICES]) ||
        s->slices[NA_META_SLICES].slice_count != NA_SLICES_PER_SEGMENT - NA_META_SLICES ||
        batch->unmap_count == PURGE_BATCH)
      continue;
    if (!force && arena->empty_segments <= (size_t)na_options.segment_cache) break;
    if (!force && (uint32_t)(now - s->slices[NA_META_SLICES].free_stamp) <
                      (uint32_t)na_options.purge_delay_ms)
      continue; /* emptied less than a delay ago: it may well be filled again */
    bin_remove(arena, &s->slices[NA_META_SLICES]);
    segment_unlink(arena, s);
    na_relaxed_store(&arena->empty_segments, arena->empty_segments - 1);
    batch->unmap[batch->unmap_count++] = s;
  }
  for (int bin = 0; bin < BIN_COUNT; bin++) {
    for (na_page_t *span = arena->bins[bin].first, *next; span != NULL; span = next) {
      next = span->next;
      if (!span->is_dirty || batch->count == PURGE_BATCH) continue;
      if (!force && (uint32_t)(now - span->free_stamp) < (uint32_t)na_options.purge_delay_ms)
        continue;
      bin_remove(arena, span);
      span->kind = NA_SPAN_PURGING;
      batch->spans[batch->count++] = span;
    }
  }
}

static void purge_arena(int arena_index, bool force) {
  na_arena_t *arena = arena_at(arena_index);
  purge_batch_t batch;
  do {
    batch.count = batch.unmap_count = 0;
    uint32_t now = na_os_clock_ms();
    pthread_mutex_lock(&arena->lock);
    na_relaxed_store(&arena->last_purge_ms, now);
    collect_abandoned_locked(arena, &batch);
    purge_select(arena, force, now, &batch);
    pthread_mutex_unlock(&arena->lock);
    for (size_t i = 0; i < batch.count; i++) {
      size_t bytes = batch.spans[i]->slice_count * NA_SLICE_SIZE;
      na_os_purge(na_page_start(batch.spans[i]), bytes);
      na_stats_count_purge(arena_index, bytes);
    }
    for (size_t i = 0; i < batch.unmap_count; i++) {
      size_t bytes = batch.unmap[i]->size;
      atomic_fetch_sub_explicit(&arena->mapped_bytes, bytes, memory_order_relaxed);
      na_segment_destroy(batch.unmap[i]);
      na_stats_count_purge(arena_index, bytes);
    }
    pthread_mutex_lock(&arena->lock);
    for (size_t i = 0; i < batch.count; i++) {
      na_page_t *span = batch.spans[i];
      na_segment_t *segment = na_segment_of_aligned(span);
      span->kind = NA_SPAN_FREE;
      span_insert(arena, segment, (size_t)(span - segment->slices), span->slice_count,
                  (span_state_t){.zero = true, .stamp = now, .used_on = -1});
    }
    pthread_mutex_unlock(&arena->lock);
  } while (batch.count == PURGE_BATCH || batch.unmap_count == PURGE_BATCH);
}

void na_arena_purge_expired(int arena_index) {
  na_arena_t *arena = arena_at(arena_index);
  uint32_t now = na_os_clock_ms();
  uint32_t last = na_relaxed_load(&arena->last_purge_ms);
  if ((uint32_t)(now - last) >= (uint32_t)na_options.purge_delay_ms)
    purge_arena(arena_index, false);
}

void na_arena_collect(bool force) {
  for (int i = 0; i < NA_ARENA_COUNT; i++)
    if (arena_at(i)->segments != NULL || arena_at(i)->abandoned_count != 0) purge_arena(i, force);
}

/* ---- giving spans back ------------------------------------------------------------------ */

static void free_span_locked(na_arena_t *arena, na_page_t *span, uint32_t now) {
  na_segment_t *segment = na_segment_of_aligned(span);
  size_t first = (size_t)(span - segment->slices);
  size_t count = span->slice_count;
  segment->free_slices += (uint32_t)count;
  for (size_t i = first; i < first + count; i++) set_free_slice(&segment->slices[i]);
  span_insert(arena, segment, first, count,
              (span_state_t){.dirty = true, .stamp = now, .used_on = span->used_on});
  if (segment_is_empty(segment))
    na_relaxed_store(&arena->empty_segments, arena->empty_segments + 1);
}

void na_arena_free_span(na_page_t *span) {
  int arena_index = na_segment_of_aligned(span)->arena_index;
  na_arena_t *arena = arena_at(arena_index);
  pthread_mutex_lock(&arena->lock);
  free_span_locked(arena, span, na_os_clock_ms());
  pthread_mutex_unlock(&arena->lock);
}

/* ---- first touch -------------------------------------------------------------------------
 * Spans of the first-touch arena are not bound: the kernel puts each page on the node of the
 * thread that touches it first. A span that comes back resident keeps its pages where its
 * last user touched them, so a thread of another node gets it given back first, to be
 * placed anew by its own first touch: the correction costs a refault only when a span
 * changes node. */
void na_arena_place_by_use(na_page_t *span, int node) {
  if (span->is_dirty && span->used_on != node) {
    size_t bytes = (size_t)span->slice_count << NA_SLICE_SHIFT;
    na_os_purge(na_page_start(span), bytes);
    na_stats_count_purge(NA_TOUCH_ARENA, bytes);
    span->is_zero = true;
  }
  span->is_dirty = false;
  span->used_on = (int8_t)node;
}

/* ---- large blocks resized in place ----------------------------------------------------- */

/* Grows a large span into the free slices right after it; false when they are not free. */
bool na_arena_grow_span(na_page_t *span, size_t slices) {
  na_segment_t *segment = na_segment_of_aligned(span);
  na_arena_t *arena = arena_at(segment->arena_index);
  size_t first = (size_t)(span - segment->slices), end = first + span->slice_count;
  size_t need = slices - span->slice_count;
  bool grown = false;
  pthread_mutex_lock(&arena->lock);
  na_page_t *right = end < NA_SLICES_PER_SEGMENT ? &segment->slices[end] : NULL;
  if (right != NULL && is_free_head(right) && right->slice_count >= need) {
    size_t right_count = right->slice_count;
    span_state_t state = state_of(right);
    bin_remove(arena, right);
    na_segment_set_span(segment, first, slices, NA_SPAN_LARGE);
    if (right_count > need)
      span_insert(arena, segment, first + slices, right_count - need, state);
    segment->free_slices -= (uint32_t)need;
    grown = true;
  }
  pthread_mutex_unlock(&arena->lock);
  return grown;
}

/* Gives the slices of a large span beyond `slices` back to the arena. */
void na_arena_shrink_span(na_page_t *span, size_t slices) {
  na_segment_t *segment = na_segment_of_aligned(span);
  na_arena_t *arena = arena_at(segment->arena_index);
  size_t first = (size_t)(span - segment->slices), count = span->slice_count;
  pthread_mutex_lock(&arena->lock);
  na_segment_set_span(segment, first, slices, NA_SPAN_LARGE);
  na_segment_set_span(segment, first + slices, count - slices, NA_SPAN_LARGE);
  free_span_locked(arena, &segment->slices[first + slices], na_os_clock_ms());
  pthread_mutex_unlock(&arena->lock);
}

/* ---- abandoned pages ---------------------------------------------------------------------- */

void na_arena_abandon_page(na_page_t *page) {
  na_arena_t *arena = arena_at(na_segment_of_aligned(page)->arena_index);
  pthread_mutex_lock(&arena->lock);
  na_relaxed_store(&page->owner, 0);
  page->heap = NULL;
  page->prev = NULL;
  page->next = arena->abandoned[page->size_class];
  na_relaxed_store(&arena->abandoned[page->size_class], page);
  arena->abandoned_count++;
  pthread_mutex_unlock(&arena->lock);
}

na_page_t *na_arena_adopt_page(int arena_index, int size_class) {
  na_arena_t *arena = arena_at(arena_index);
  if (na_relaxed_load(&arena->abandoned[size_class]) == NULL) return NULL;
  pthread_mutex_lock(&arena->lock);
  na_page_t *page = arena->abandoned[size_class];
  if (page != NULL) {
    na_relaxed_store(&arena->abandoned[size_class], page->next);
    arena->abandoned_count--;
    page->next = NULL;
  }
  pthread_mutex_unlock(&arena->lock);
  return page;
}

/* Abandoned pages whose blocks were all freed by other threads go back as free spans. */
static void collect_abandoned_locked(na_arena_t *arena, purge_batch_t *batch) {
  (void)batch;
  uint32_t now = na_os_clock_ms();
  for (int c = 0; c < NA_CLASS_COUNT; c++) {
    na_page_t **link = &arena->abandoned[c];
    while (*link != NULL) {
      na_page_t *page = *link;
      na_page_collect_remote(page);
      if (page->used == 0) {
        na_relaxed_store(link, page->next); /* adopt_page peeks at the list head */
        arena->abandoned_count--;
        page->kind = NA_SPAN_LARGE;
        free_span_locked(arena, page, now);
      } else {
        link = &page->next;
      }
    }
  }
}

/* ---- huge blocks: a segment each -------------------------------------------------------- */

static size_t huge_offset(size_t alignment) {
  size_t header = NA_META_SLICES * NA_SLICE_SIZE;
  return alignment > header ? alignment : header;
}

/* Weighted placement of one huge block, done by the allocator so that it works on kernels
 * without weighted interleave: 2 MiB stripes bound to the nodes of the schedule, before
 * anything touches them. */
static void stripe_weighted(na_segment_t *segment, size_t offset, size_t total) {
  const size_t stripe = 2 * NA_MiB;
  for (size_t at = na_align_up(offset, stripe); at < total; at += stripe) {
    uint64_t mask[1] = {(uint64_t)1 << na_policy_spread_next_shared()};
    na_os_bind((char *)segment + at, stripe, NA_BIND_PREFERRED, mask, NA_MAX_NODES - 1);
  }
}

void *na_arena_alloc_huge(int arena_index, size_t size, size_t alignment, bool *is_zero) {
  size_t offset = huge_offset(alignment);
  if (size > ((size_t)1 << 46) - offset) return NULL;
  size_t total = na_align_up(offset + size, NA_SEGMENT_SIZE);
  na_segment_t *segment = na_segment_create_aligned(arena_index, total, alignment, is_zero);
  if (segment == NULL) return NULL;
  na_page_t *page = &segment->slices[NA_META_SLICES];
  na_segment_set_span(segment, NA_META_SLICES, NA_SLICES_PER_SEGMENT - NA_META_SLICES,
                      NA_SPAN_HUGE);
  page->block_size = (uint32_t)(offset >> NA_SLICE_SHIFT);
  if (arena_index == NA_INTERLEAVE_ARENA && na_policy_is_weighted())
    stripe_weighted(segment, offset, total);
  if (na_arena_is_strict(arena_index) &&
      !commit_on_node((char *)segment + offset, na_align_up(size, NA_PAGE_SIZE), arena_index)) {
    na_segment_destroy(segment);
    return NULL;
  }
  add_mapped(arena_at(arena_index), (int64_t)total);
  na_arena_account_huge(arena_index, (int64_t)(total - offset));
  return (char *)segment + offset;
}

void na_arena_free_huge(na_segment_t *segment) {
  na_arena_t *arena = arena_at(segment->arena_index);
  atomic_fetch_sub_explicit(&arena->mapped_bytes, segment->size, memory_order_relaxed);
  na_arena_account_huge(
      segment->arena_index,
      -(int64_t)(segment->size -
                 (size_t)segment->slices[NA_META_SLICES].block_size * NA_SLICE_SIZE));
  na_segment_destroy(segment);
}

size_t na_huge_usable(const na_segment_t *segment, const void *p) {
  return segment->size - (size_t)((const char *)p - (const char *)segment);
}

/* Grows or shrinks without copying: in place when the address space after it is free,
 * else by moving the pages to a new aligned range (the binding moves with them). */
void *na_arena_realloc_huge(na_segment_t *segment, void *p, size_t new_size) {
  size_t offset = (size_t)((char *)p - (char *)segment);
  if (new_size > ((size_t)1 << 46) - offset) return NULL;
  size_t old_total = segment->size;
  size_t total = na_align_up(offset + new_size, NA_SEGMENT_SIZE);
  if (total == old_total) return p;
  na_segment_t *moved = NULL;
  if (total < old_total) {
    na_os_unmap((char *)segment + total, old_total - total);
    moved = segment;
  } else if (na_os_remap(segment, old_total, total, NULL) != NULL) {
    moved = segment;
  } else {
    size_t align = offset & (~offset + 1); /* the block's own alignment survives the move */
    void *target = na_os_map_aligned(total, align > NA_SEGMENT_SIZE ? align : NA_SEGMENT_SIZE);
    if (target == NULL) return NULL;
    moved = na_os_remap(segment, old_total, total, target);
    if (moved == NULL) {
      na_os_unmap(target, total);
      return NULL;
    }
  }
  moved->size = total;
  na_segment_remapped(segment, old_total, moved);
  na_arena_t *arena = arena_at(moved->arena_index);
  add_mapped(arena, (int64_t)total - (int64_t)old_total);
  na_arena_account_huge(moved->arena_index, (int64_t)total - (int64_t)old_total);
  return (char *)moved + offset;
}

/* ---- fork ------------------------------------------------------------------------------- */

void na_arena_lock_all(void) {
  for (int i = 0; i < NA_ARENA_COUNT; i++) pthread_mutex_lock(&arena_at(i)->lock);
}

void na_arena_unlock_all(void) {
  for (int i = NA_ARENA_COUNT - 1; i >= 0; i--) pthread_mutex_unlock(&arena_at(i)->lock);
}
