/* arena.c: one arena per NUMA node, one for page-interleaved memory and one for large blocks
 * placed by first touch. An arena owns the segments bound to its node, hands out spans of
 * slices to heaps and large blocks, takes them back and coalesces them, and keeps the pages
 * of exited threads until another thread adopts them. Giving memory back to the OS is
 * purge.c's, blocks of a segment each huge.c's. The arena lock is never held across a
 * system call: mapping, purging and unmapping happen unlocked. */
#include "arena.h"

#include <errno.h>
#include <string.h>

/* In the order of na_lock_order, as the locks below: the arenas a process on a small machine
 * uses (its nodes', the interleaved and the first-touch one, which every heap pass looks at)
 * share the table's first pages, and a short-lived process touches one page of it, not two. */
static na_arena_t arenas[NA_ARENA_COUNT] NA_TABLE;

/* The locks live apart from the arenas, side by side, a cache line each, in the order of
 * na_lock_order after the first-use lock: fork takes and releases them, and each page they
 * are on is then copied in the parent and in the child. Fork takes the locks of the arenas
 * in use only (in a process on a small machine, all on the table's first page), and an
 * arena's first use waits for the first-use lock, which fork holds throughout, so no arena
 * comes into use between fork's look at the flags and the fork itself. The locks are
 * adaptive: a thread that finds one taken spins a little before it sleeps, as what they guard
 * is short. Two threads taking pages of 16-256 KiB blocks from one node made 17,000 futex
 * calls in 2 million frees with the default kind, 1,060 with this one. */
#define FIRST_USE_SLOT 0
static na_lock_slot_t arena_locks[1 + NA_ARENA_COUNT] NA_PAGE_ALIGNED = {
    [0 ... NA_ARENA_COUNT] = {PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP},
};
static _Atomic bool arena_used[NA_ARENA_COUNT];

na_arena_t *na_arena_at(int index) { return &arenas[na_lock_order(index)]; }

static int index_of(const na_arena_t *arena) {
  int order = (int)(arena - arenas);
  return order >= 2 ? order - 2 : order + NA_MAX_NODES;
}

bool na_arena_serves_every_node(const na_arena_t *arena) {
  return na_topology.usable_count == 1 || index_of(arena) >= NA_MAX_NODES;
}

static na_noinline void note_first_use(int index) {
  pthread_mutex_lock(&arena_locks[FIRST_USE_SLOT].mutex);
  atomic_store_explicit(&arena_used[index], true, memory_order_release);
  pthread_mutex_unlock(&arena_locks[FIRST_USE_SLOT].mutex);
}

void na_arena_note_use(int index) {
  if (!atomic_load_explicit(&arena_used[index], memory_order_acquire)) note_first_use(index);
}

bool na_arena_in_use(int index) {
  return atomic_load_explicit(&arena_used[index], memory_order_acquire);
}

static pthread_mutex_t *lock_of(int index) { return &arena_locks[1 + na_lock_order(index)].mutex; }

void na_arena_lock(na_arena_t *arena) {
  int index = index_of(arena);
  na_arena_note_use(index);
  pthread_mutex_lock(lock_of(index));
}

void na_arena_unlock(na_arena_t *arena) { pthread_mutex_unlock(lock_of(index_of(arena))); }

size_t na_arena_mapped_bytes(int arena_index) {
  return atomic_load_explicit(&na_arena_at(arena_index)->mapped_bytes, memory_order_relaxed);
}

size_t na_arena_peak_mapped_bytes(int arena_index) {
  return atomic_load_explicit(&na_arena_at(arena_index)->peak_mapped_bytes, memory_order_relaxed);
}

void na_arena_add_mapped(na_arena_t *arena, int64_t bytes) {
  size_t now =
      atomic_fetch_add_explicit(&arena->mapped_bytes, (size_t)bytes, memory_order_relaxed) +
      (size_t)bytes;
  size_t peak = atomic_load_explicit(&arena->peak_mapped_bytes, memory_order_relaxed);
  while (bytes > 0 && now > peak &&
         !atomic_compare_exchange_weak(&arena->peak_mapped_bytes, &peak, now)) {
  }
}

size_t na_arena_huge_bytes(int arena_index) {
  int64_t bytes = atomic_load_explicit(&na_arena_at(arena_index)->huge_bytes, memory_order_relaxed);
  return bytes > 0 ? (size_t)bytes : 0;
}

void na_arena_account_huge(int arena_index, int64_t bytes) {
  atomic_fetch_add_explicit(&na_arena_at(arena_index)->huge_bytes, bytes, memory_order_relaxed);
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
  na_arena_t *arena = na_arena_at(arena_index);
  size_t huge = na_arena_huge_bytes(arena_index);
  if (!na_arena_in_use(arena_index)) return huge; /* no segment yet */
  na_arena_lock(arena);
  size_t live = 0;
  for (na_segment_t *s = arena->segments; s != NULL; s = s->next) live += segment_live_bytes(s);
  na_arena_unlock(arena);
  return live + huge;
}

/* ---- free spans ------------------------------------------------------------------------- */

/* Free spans by length: a bin per length up to 8 slices, then four per doubling, so every
 * span a segment can hold (at most 512 slices) has one of the 32 bins. Apart from the size
 * classes on purpose: a change to those must not move spans out of their bins. */
static int bin_of(size_t slices) {
  if (slices <= 8) return (int)slices - 1;
  size_t w = slices - 1;
  int b = 63 - __builtin_clzl(w);
  return 8 + (b - 3) * 4 + (int)((w >> (b - 2)) & 3);
}
_Static_assert(NA_SLICES_PER_SEGMENT <= 512 && NA_BIN_COUNT == 32, "bin_of covers every span");

bool na_span_is_free_head(const na_page_t *slice) {
  return na_relaxed_load(&slice->kind) == NA_SPAN_FREE && slice->slice_count > 0 &&
         slice->slice_offset == 0;
}

void na_span_bin_remove(na_arena_t *arena, na_page_t *span) {
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

static na_span_state_t state_of(const na_page_t *span) {
  return (na_span_state_t){span->is_dirty, span->is_zero, span->free_stamp, span->used_on};
}

static void state_merge(na_span_state_t *into, const na_page_t *span) {
  into->dirty |= span->is_dirty;
  into->zero &= span->is_zero;
  if (span->is_dirty && span->used_on != into->used_on) into->used_on = -1;
}

void na_span_insert(na_arena_t *arena, na_segment_t *segment, size_t first, size_t count,
                    na_span_state_t state) {
  size_t end = first + count;
  if (end < NA_SLICES_PER_SEGMENT && na_span_is_free_head(&segment->slices[end])) {
    na_page_t *right = &segment->slices[end];
    na_span_bin_remove(arena, right);
    state_merge(&state, right);
    count += right->slice_count;
    right->slice_count = 0; /* interior now, as is this span's last slice */
    segment->slices[end - 1].slice_offset = 0;
  }
  if (first > NA_META_SLICES) {
    na_page_t *before = &segment->slices[first - 1];
    na_page_t *left = (na_page_t *)((char *)before - before->slice_offset);
    if (na_span_is_free_head(left)) {
      na_span_bin_remove(arena, left);
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
  if (span->is_dirty)
    na_queue_push_front(&arena->bins[bin_of(count)], span); /* before every clean span */
  else
    na_queue_push_back(&arena->bins[bin_of(count)], span);
}

/* Threads of a node share its arena, but each segment serves first the thread that mapped it
 * (or took it empty): a span another thread freed a moment ago is still in that thread's
 * cache, and the blocks and growing buffers of two threads side by side make their cores
 * pass the lines between them. Two threads growing buffers with realloc took 1.3 times the
 * CPU of one thread per buffer when they shared the arena's spans freely, as mimalloc's
 * per-thread segments do not. Only resident spans are looked for here, whose slices to be
 * taken were all handed out since they were last given back: a freed span merged with the
 * untouched rest of its segment is dirty as a whole, and a thread taking its own such span
 * before another thread's freed span touched fresh memory while resident memory waited
 * (mstress's peak, 28 to 38 MiB, once threads had segments of their own). The look is
 * bounded: a thread with no such span takes the best fit. */
#define AFFINITY_LOOK 32

static bool all_resident(const na_segment_t *segment, size_t first, size_t count) {
  for (size_t i = first; i < first + count; i++)
    if (!na_segment_slice_resident(segment, i)) return false;
  return true;
}

/* A slice is marked resident from the moment it is handed out until it is given back: one
 * never marked since is zero. */
static bool none_resident(const na_segment_t *segment, size_t first, size_t count) {
  for (size_t i = first; i < first + count; i++)
    if (na_segment_slice_resident(segment, i)) return false;
  return true;
}

void na_segment_note_resident(na_segment_t *segment, size_t first, size_t count, bool resident) {
  for (size_t i = first; i < first + count; i++) {
    uint64_t bit = (uint64_t)1 << (i % 64);
    segment->resident[i / 64] =
        resident ? segment->resident[i / 64] | bit : segment->resident[i / 64] & ~bit;
  }
}

static na_page_t *span_find_own(na_arena_t *arena, size_t slices) {
  uintptr_t me = na_thread_id();
  int looked = 0;
  for (int bin = bin_of(slices); bin < NA_BIN_COUNT && looked < AFFINITY_LOOK; bin++)
    for (na_page_t *span = arena->bins[bin].first; span != NULL && looked < AFFINITY_LOOK;
         span = span->next, looked++) {
      if (!span->is_dirty) break; /* the rest of the bin is clean */
      na_segment_t *segment = na_segment_of_aligned(span);
      if (span->slice_count >= slices && segment->affinity == me &&
          all_resident(segment, (size_t)(span - segment->slices), slices))
        return span;
    }
  return NULL;
}

/* Fresh memory, too, comes from the thread's own segments: two threads whose new pages were
 * cut from one segment in turn had their pages interleaved, 64 KiB each, and the cores'
 * prefetchers, running on past the end of a page, kept taking lines of the other thread's
 * page while it wrote them. Two threads each allocating and freeing batches of 300 blocks of
 * 1 KiB took 2.8 times the time of one thread alone (0.43 s against 0.15) where their pages
 * were interleaved, and as long as one where each thread's pages were together. So a thread
 * with no room in a segment of its own (or nobody's) maps one rather than cut another
 * thread's, and a thread leaving the arena gives its segments up. Resident memory is still
 * reused first wherever it is. An arena of more than 16 segments shares their room as
 * before: bursts of 64 threads, each with blocks of many classes, held 1.2 times the resident
 * memory of shared segments after six bursts when up to 64 could be their own (the same with
 * 16), and the address space of a process with many threads does not grow a segment each. */
#define OWN_SEGMENT_LOOK 16

/* Nobody's: empty, or left by the thread that had it (na_arena_release_segments). */
static bool segment_is_unclaimed(const na_segment_t *segment) {
  return segment->affinity == 0 || na_arena_segment_is_empty(segment);
}

void na_arena_release_segments(int arena_index) {
  if (!na_arena_in_use(arena_index)) return;
  na_arena_t *arena = na_arena_at(arena_index);
  uintptr_t me = na_thread_id();
  na_arena_lock(arena);
  for (na_segment_t *segment = arena->segments; segment != NULL; segment = segment->next)
    if (segment->affinity == me) segment->affinity = 0;
  na_arena_unlock(arena);
}

typedef enum na_room_e {
  ROOM_FOUND,     /* a free span in a segment of the thread's own or nobody's */
  ROOM_NONE,      /* none: a new segment is the thread's first in the arena */
  ROOM_NONE_MORE, /* none, though the thread has segments (full ones) */
  ROOM_UNKNOWN,   /* too many segments to look at */
} na_room_t;

static na_room_t room_in_own_segment(na_arena_t *arena, size_t slices, na_page_t **found) {
  uintptr_t me = na_thread_id();
  bool has_own = false;
  int looked = 0;
  for (na_segment_t *segment = arena->segments; segment != NULL; segment = segment->next) {
    if (++looked > OWN_SEGMENT_LOOK) return ROOM_UNKNOWN;
    bool own = segment->affinity == me;
    has_own |= own;
    if (segment->free_slices < slices || !(own || segment_is_unclaimed(segment))) continue;
    for (size_t i = NA_META_SLICES; i < NA_SLICES_PER_SEGMENT;) {
      na_page_t *span = &segment->slices[i];
      if (span->slice_count == 0) break;
      if (span->slice_count >= slices && na_span_is_free_head(span)) {
        *found = span;
        return ROOM_FOUND;
      }
      i += span->slice_count;
    }
  }
  return has_own ? ROOM_NONE_MORE : ROOM_NONE;
}

/* What span_find tells a caller that found nothing. */
typedef enum na_grow_e {
  GROW_FOR_ROOM,  /* the arena has no room */
  GROW_OWN_FIRST, /* room only in other threads' segments: map the thread's first one */
  GROW_OWN_AGAIN, /* the same, the thread's own segments being full */
} na_grow_t;

/* Memory that is resident already is reused first, from the smallest bin that has a dirty
 * span big enough, as jemalloc reuses dirty extents before clean ones: a fresh span would
 * add resident memory while the dirty one waits out the purge delay. Under rr a thread's
 * spans go to every node in turn, and each node's dirty spans are reused only by its own
 * allocations, so dirty memory left waiting added up on every node. First-touch spans keep
 * the first fit: a dirty span of another node's thread would be purged to be placed anew.
 * Fresh memory comes from the thread's own segments; with `share`, from any. */
static na_page_t *span_find(na_arena_t *arena, int arena_index, size_t slices, bool share,
                            na_grow_t *grow) {
  *grow = GROW_FOR_ROOM;
  bool dirty_first = arena_index != NA_TOUCH_ARENA;
  na_page_t *clean = NULL;
  for (int bin = bin_of(slices); bin < NA_BIN_COUNT; bin++) {
    for (na_page_t *span = arena->bins[bin].first; span != NULL; span = span->next) {
      if (span->slice_count < slices) continue;
      if (span->is_dirty || !dirty_first) {
        na_page_t *own = span_find_own(arena, slices);
        return own != NULL ? own : span;
      }
      clean = clean ? clean : span;
      break; /* the rest of the bin is clean */
    }
  }
  if (clean == NULL || share) return clean;
  na_segment_t *segment = na_segment_of_aligned(clean);
  if (segment->affinity == na_thread_id() || segment_is_unclaimed(segment)) return clean;
  na_page_t *own;
  switch (room_in_own_segment(arena, slices, &own)) {
  case ROOM_FOUND: return own;
  case ROOM_NONE: *grow = GROW_OWN_FIRST; return NULL;
  case ROOM_NONE_MORE: *grow = GROW_OWN_AGAIN; return NULL;
  case ROOM_UNKNOWN: break;
  }
  return clean;
}

/* Takes `slices` from a free span, returning the rest to the bins. */
static na_page_t *span_take(na_arena_t *arena, na_page_t *span, size_t slices) {
  na_segment_t *segment = na_segment_of_aligned(span);
  size_t first = (size_t)(span - segment->slices);
  size_t total = span->slice_count;
  na_span_state_t state = state_of(span);
  na_span_bin_remove(arena, span);
  na_segment_set_span(segment, first, slices, NA_SPAN_LARGE); /* before the rest merges */
  if (total > slices) /* the rest's slices are free ones already; its head is new */
    na_span_insert(arena, segment, first + slices, total - slices, state);
  /* A merge of free spans keeps one zero mark for the whole; a part given back (or never
   * touched) reads as zero all the same. */
  span->is_zero = state.zero || none_resident(segment, first, slices);
  span->is_dirty = state.dirty; /* for na_arena_place_by_use */
  span->used_on = state.used_on;
  segment->free_slices -= (uint32_t)slices;
  na_segment_note_resident(segment, first, slices, true);
  return span;
}

bool na_arena_segment_is_empty(const na_segment_t *segment) {
  return segment->free_slices == NA_SLICES_PER_SEGMENT - NA_META_SLICES;
}

static void segment_link(na_arena_t *arena, na_segment_t *segment) {
  segment->prev = NULL;
  segment->next = arena->segments;
  if (arena->segments) arena->segments->prev = segment;
  arena->segments = segment;
}

void na_arena_segment_unlink(na_arena_t *arena, na_segment_t *segment) {
  if (segment->prev)
    segment->prev->next = segment->next;
  else
    arena->segments = segment->next;
  if (segment->next) segment->next->prev = segment->prev;
}

/* Transparent huge pages spare a big heap most of its page faults and TLB misses, and cost
 * a small one memory: a touched block makes its whole 2 MiB resident. So under "auto" an
 * arena's first segment keeps small pages, and the segments it maps once it already holds
 * one take huge pages, as does a huge block's own segment. A huge page is placed whole, by
 * its first touch or by its segment's binding: interleaved spans, whose pages alternate
 * between nodes, never take them, nor do first-touch spans, whose huge pages could straddle
 * blocks used on different nodes, unless there is only one node. */
bool na_arena_huge_pages(int arena_index, bool huge_block) {
  switch (na_options.hugepages) {
  case NA_HUGEPAGES_ALL: return na_os_thp_usable();
  case NA_HUGEPAGES_HUGE_BLOCKS: return false;
  case NA_HUGEPAGES_AUTO: break;
  }
  if (arena_index == NA_INTERLEAVE_ARENA) return false;
  if (arena_index == NA_TOUCH_ARENA && na_topology.usable_count > 1) return false;
  if (!huge_block && na_arena_mapped_bytes(arena_index) < NA_SEGMENT_SIZE) return false;
  /* Where the kernel would ignore the advice, a segment keeps its sparse purges. */
  if (!na_os_thp_usable()) return false;
  /* In a virtual machine whose host takes free memory back, a huge page costs the host 512
   * faults whenever its memory was free for a while: fragmentation's workload took 4.4 s
   * with them against 0.94 without (glibc 1.43), large blocks in a loop 2.0 against 1.3. */
  return !na_os_free_memory_reported();
}

/* Maps a new segment for the arena (unlocked: the caller holds no lock). */
static na_segment_t *segment_grow(int arena_index, na_grow_t why) {
  bool zero;
  /* A thread's first segment beside others' keeps small pages, as the arena's first does: a
   * thread that makes a few blocks would otherwise hold a 2 MiB page of its own. */
  bool huge = why != GROW_OWN_FIRST && na_arena_huge_pages(arena_index, false);
  na_segment_t *segment = na_segment_create(arena_index, NA_SEGMENT_SIZE, huge, &zero);
  if (segment == NULL) return NULL;
  na_arena_t *arena = na_arena_at(arena_index);
  na_arena_add_mapped(arena, (int64_t)NA_SEGMENT_SIZE);
  na_arena_lock(arena);
  segment->free_slices = NA_SLICES_PER_SEGMENT - NA_META_SLICES;
  segment_link(arena, segment);
  na_relaxed_store(&arena->empty_segments, arena->empty_segments + 1);
  na_span_insert(arena, segment, NA_META_SLICES, NA_SLICES_PER_SEGMENT - NA_META_SLICES,
                 (na_span_state_t){.zero = zero, .used_on = -1});
  na_arena_unlock(arena);
  return segment;
}

/* A span's slices opened for writing where its segment is only reserved; when the kernel
 * has no commit left (strict overcommit), the span goes back and NULL it is. */
static na_page_t *span_writable(na_page_t *span) {
  if (span == NULL) return NULL;
  na_segment_t *segment = na_segment_of_aligned(span);
  if (na_segment_make_writable(segment, (size_t)(span - segment->slices), span->slice_count))
    return span;
  na_arena_free_span(span);
  return NULL;
}

static na_page_t *alloc_span_on(int arena_index, size_t slices) {
  na_arena_t *arena = na_arena_at(arena_index);
  bool share = false;
  for (int attempt = 0; attempt < 4; attempt++) {
    na_arena_lock(arena);
    na_grow_t why;
    na_page_t *span = span_find(arena, arena_index, slices, share || attempt >= 2, &why);
    if (span != NULL) {
      na_segment_t *segment = na_segment_of_aligned(span);
      if (na_arena_segment_is_empty(segment))
        na_relaxed_store(&arena->empty_segments, arena->empty_segments - 1);
      if (segment_is_unclaimed(segment)) segment->affinity = na_thread_id(); /* the taker's now */
      span = span_take(arena, span, slices);
      if (!span->is_dirty) na_arena_note_cold_span(arena);
      if (na_checks_enabled) na_validate(na_check_segment(segment));
      na_arena_unlock(arena);
      return span_writable(span);
    }
    na_arena_unlock(arena);
    if (segment_grow(arena_index, why) != NULL) continue;
    if (why == GROW_FOR_ROOM) return NULL;
    share = true; /* no segment of its own to be had: other threads' room will do */
  }
  return NULL;
}

static bool span_commit(int arena_index, na_page_t *span) {
  if (!na_placement_is_strict(arena_index)) return true;
  void *start = na_page_start(span);
  size_t size = span->slice_count * NA_SLICE_SIZE;
  if (na_placement_commit(start, size, arena_index)) return true;
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

/* ---- giving spans back ------------------------------------------------------------------ */

void na_span_free_locked(na_arena_t *arena, na_page_t *span, uint32_t now) {
  na_segment_t *segment = na_segment_of_aligned(span);
  size_t first = (size_t)(span - segment->slices);
  size_t count = span->slice_count;
  segment->free_slices += (uint32_t)count;
  for (size_t i = first; i < first + count; i++) set_free_slice(&segment->slices[i]);
  na_span_insert(arena, segment, first, count,
                 (na_span_state_t){.dirty = true, .stamp = now, .used_on = span->used_on});
  if (na_arena_segment_is_empty(segment))
    na_relaxed_store(&arena->empty_segments, arena->empty_segments + 1);
}

void na_arena_free_span_since(na_page_t *span, uint32_t unused_since_ms) {
  int arena_index = na_segment_of_aligned(span)->arena_index;
  na_arena_t *arena = na_arena_at(arena_index);
  na_arena_lock(arena);
  na_span_free_locked(arena, span, unused_since_ms);
  if (na_checks_enabled) na_validate(na_check_segment(na_segment_of_aligned(span)));
  na_arena_unlock(arena);
}

void na_arena_free_span(na_page_t *span) { na_arena_free_span_since(span, na_os_clock_ms()); }

void na_arena_free_spans(na_page_t *first) {
  while (first != NULL) {
    int arena_index = na_segment_of_aligned(first)->arena_index;
    na_arena_t *arena = na_arena_at(arena_index);
    na_arena_lock(arena);
    do {
      na_page_t *span = first;
      first = span->next; /* the free span reuses the link */
      na_span_free_locked(arena, span, span->free_stamp);
      if (na_checks_enabled) na_validate(na_check_segment(na_segment_of_aligned(span)));
    } while (first != NULL && na_segment_of_aligned(first)->arena_index == arena_index);
    na_arena_unlock(arena);
  }
}

/* ---- large blocks resized in place ----------------------------------------------------- */

/* Grows a large span into the free slices right after it; false when they are not free. */
bool na_arena_grow_span(na_page_t *span, size_t slices) {
  na_segment_t *segment = na_segment_of_aligned(span);
  na_arena_t *arena = na_arena_at(segment->arena_index);
  size_t first = (size_t)(span - segment->slices), end = first + span->slice_count;
  size_t need = slices - span->slice_count;
  bool grown = false;
  na_arena_lock(arena);
  na_page_t *right = end < NA_SLICES_PER_SEGMENT ? &segment->slices[end] : NULL;
  if (right != NULL && na_span_is_free_head(right) && right->slice_count >= need) {
    size_t right_count = right->slice_count;
    na_span_state_t state = state_of(right);
    na_span_bin_remove(arena, right);
    na_segment_set_span(segment, first, slices, NA_SPAN_LARGE);
    if (right_count > need)
      na_span_insert(arena, segment, first + slices, right_count - need, state);
    segment->free_slices -= (uint32_t)need;
    na_segment_note_resident(segment, end, need, true);
    if (na_checks_enabled) na_validate(na_check_segment(segment));
    grown = true;
  }
  na_arena_unlock(arena);
  if (grown && !na_segment_make_writable(segment, end, need)) {
    na_arena_shrink_span(span, slices - need);
    return false;
  }
  return grown;
}

/* Gives the slices of a large span beyond `slices` back to the arena. */
void na_arena_shrink_span(na_page_t *span, size_t slices) {
  na_segment_t *segment = na_segment_of_aligned(span);
  na_arena_t *arena = na_arena_at(segment->arena_index);
  size_t first = (size_t)(span - segment->slices), count = span->slice_count;
  na_arena_lock(arena);
  na_segment_set_span(segment, first, slices, NA_SPAN_LARGE);
  na_segment_set_span(segment, first + slices, count - slices, NA_SPAN_LARGE);
  na_span_free_locked(arena, &segment->slices[first + slices], na_os_clock_ms());
  if (na_checks_enabled) na_validate(na_check_segment(segment));
  na_arena_unlock(arena);
}

/* ---- fork ------------------------------------------------------------------------------- */

void na_arena_hold_first_use(void) { pthread_mutex_lock(&arena_locks[FIRST_USE_SLOT].mutex); }
void na_arena_release_first_use(void) { pthread_mutex_unlock(&arena_locks[FIRST_USE_SLOT].mutex); }

void na_arena_lock_all(void) {
  for (int i = 0; i < NA_ARENA_COUNT; i++)
    if (na_arena_in_use(i)) pthread_mutex_lock(lock_of(i));
}

void na_arena_unlock_all(void) {
  for (int i = NA_ARENA_COUNT - 1; i >= 0; i--)
    if (na_arena_in_use(i)) pthread_mutex_unlock(lock_of(i));
}
