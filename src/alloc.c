/* alloc.c: the malloc family. The fast path (internal.h) takes the block the calling thread
 * freed last in the size's class (bin.c), or pops the thread's current page for the size:
 * about fifteen instructions, no lock, no atomic. Everything else tail-calls the one slow path
 * below, na_alloc_generic. Large blocks are spans from the node's arena; huge ones get a segment
 * each. */
#include "internal.h"

#include <errno.h>
#include <string.h>

#define NA_SIZE_MAX ((size_t)PTRDIFF_MAX)

void *numalloc_malloc(size_t size) { return na_malloc_fast(size); }

static void *alloc_system(size_t size, size_t alignment, bool zero) {
  if (na_system.malloc == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  if (alignment <= NA_MIN_ALIGN) return zero ? na_system.calloc(1, size) : na_system.malloc(size);
  void *p = NULL;
  int rc = na_system.posix_memalign(&p, alignment, size);
  if (rc != 0) {
    errno = rc;
    return NULL;
  }
  if (zero) memset(p, 0, size);
  return p;
}

static void *account_large(void *p, int arena_index, int actual, size_t size) {
  na_tld_t *tld = na_tld_peek();
  if (p == NULL || tld == NULL) return p;
  na_node_stats_t *stats = na_tld_stats(tld, actual);
  stats->alloc_count++;
  stats->alloc_bytes += (int64_t)size;
  if (actual >= NA_MAX_NODES) /* spread over nodes, or placed by first touch: neither */
    ;
  else if (actual == na_policy_current_node())
    stats->local_count++;
  else
    stats->remote_count++;
  if (actual != arena_index) na_tld_stats(tld, arena_index)->fallback_count++;
  return p;
}

/* calloc of a big block over memory handed out before. Pages the last user never touched (a
 * buffer written in part, a calloc'd one never written: node's and Python's zero-filled
 * buffers) have no frame and read as zero, and clearing them would fault them all in: a
 * program making such buffers in phases, writing an eighth of each, held 113 MiB where 12
 * were ever written (glibc 39, jemalloc 17, which gives every such block back to the kernel
 * and faults in again what is written). So a block of CLEAR_ASK_MIN or more may ask the kernel
 * which of its pages are untouched (the page map: 6 us on this machine, as much as clearing six
 * pages in memory), and clears only the others. An ask is wasted where every page was touched
 * (blocks reused whole, the usual case), so a thread keeps the share of pages its asks found
 * untouched (a moving average, in 256ths) and asks where that share of the block is CLEAR_ASK_PAYS
 * pages or more, where the block is so big that an ask costs nothing beside its memset, and after
 * CLEAR_ASK_EVERY_PAGES pages cleared without asking, to follow a program whose pattern
 * changes. */
#define CLEAR_ASK_MIN         (64 * NA_KiB)
#define CLEAR_ASK_PAYS        4
#define CLEAR_ASK_ALWAYS      (4 * NA_MiB)
#define CLEAR_ASK_EVERY_PAGES 2048
#define CLEAR_ASK_PAGES       1024 /* pages asked about at once: a kilobyte of stack */

/* Clears the pages of the page-aligned [start, end) that were touched; how many were not. */
static size_t clear_touched(char *start, char *end) {
  unsigned char untouched[CLEAR_ASK_PAGES];
  size_t skipped = 0;
  for (char *chunk = start; chunk < end; chunk += CLEAR_ASK_PAGES * NA_PAGE_SIZE) {
    size_t pages = (size_t)(end - chunk) / NA_PAGE_SIZE;
    if (pages > CLEAR_ASK_PAGES) pages = CLEAR_ASK_PAGES;
    if (!na_os_pages_untouched(chunk, pages, untouched)) {
      memset(chunk, 0, pages * NA_PAGE_SIZE);
      continue;
    }
    for (size_t run = 0, i = 1; i <= pages; i++) {
      if (i < pages && untouched[i] == untouched[run]) continue;
      if (untouched[run])
        skipped += i - run;
      else
        memset(chunk + run * NA_PAGE_SIZE, 0, (i - run) * NA_PAGE_SIZE);
      run = i;
    }
  }
  return skipped;
}

static void clear_block(na_tld_t *tld, char *p, size_t size) {
  char *start = (char *)na_align_up((uintptr_t)p, NA_PAGE_SIZE);
  char *end = (char *)((uintptr_t)(p + size) & ~(uintptr_t)(NA_PAGE_SIZE - 1));
  size_t pages = end > start ? (size_t)(end - start) / NA_PAGE_SIZE : 0;
  if (size < CLEAR_ASK_MIN || pages == 0 ||
      ((pages * tld->clear_untouched_share >> 8) < CLEAR_ASK_PAYS && size < CLEAR_ASK_ALWAYS &&
       (tld->clear_pages_unasked += pages) < CLEAR_ASK_EVERY_PAGES)) {
    memset(p, 0, size);
    return;
  }
  tld->clear_pages_unasked = 0;
  memset(p, 0, (size_t)(start - p));
  memset(end, 0, (size_t)(p + size - end));
  size_t share = clear_touched(start, end) * 255 / pages;
  tld->clear_untouched_share = (uint8_t)((tld->clear_untouched_share * 3 + share) / 4);
}

/* The span holds at least `capacity` bytes from the block's start (room to grow into). */
static void *alloc_large(na_tld_t *tld, int arena_index, size_t size, size_t alignment, bool zero,
                         size_t capacity) {
  if (size > NA_SIZE_MAX || alignment > NA_ALIGNMENT_MAX || size + alignment > NA_SIZE_MAX) {
    errno = ENOMEM;
    return NULL;
  }
  size_t extra = alignment > NA_SLICE_SIZE ? alignment : 0;
  if (size + extra > NA_LARGE_MAX) {
    bool is_zero = false;
    bool weighted = arena_index == NA_INTERLEAVE_ARENA && na_policy_is_weighted();
    int node = arena_index == NA_TOUCH_ARENA ? na_policy_current_node() : arena_index;
    void *p = na_arena_alloc_huge(arena_index, size, alignment, zero, &is_zero,
                                  weighted ? na_policy_spread_next_shared : NULL, node);
    if (p == NULL)
      errno = ENOMEM;
    else if (zero && !is_zero)
      memset(p, 0, size);
    return p;
  }
  size_t span_bytes = size + extra;
  if (capacity > size && capacity + extra <= NA_LARGE_MAX) span_bytes = capacity + extra;
  size_t slices = na_align_up(span_bytes, NA_SLICE_SIZE) >> NA_SLICE_SHIFT;
  if (arena_index == NA_INTERLEAVE_ARENA && na_policy_is_weighted())
    arena_index = na_policy_spread_next_shared(); /* weighted: whole spans by the schedule */
  int actual = arena_index;
  na_heap_release_spares_for_large(na_tls_heap);
  na_page_t *span = na_arena_alloc_span(arena_index, slices, &actual);
  if (span == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  if (actual == NA_TOUCH_ARENA) na_arena_place_by_use(span, na_policy_current_node());
  char *start = na_page_start(span);
  char *p =
      (char *)na_align_up((uintptr_t)start, alignment > NA_MIN_ALIGN ? alignment : NA_MIN_ALIGN);
  na_relaxed_store(&span->kind, NA_SPAN_LARGE);
  na_relaxed_store(&span->owner, 0);
  span->flags.value = 0;
  span->flags.bits.grown = capacity > 0;
  span->block_size = (uint32_t)(p - start); /* where the block starts: frees must match */
  span->large_size = (uint32_t)na_align_up(size, NA_MIN_ALIGN);
  if (zero && !span->is_zero) clear_block(tld, p, size);
  span->is_zero = false;
  return account_large(p, arena_index, actual, size);
}

/* The smallest class that fits `size` and whose blocks all fall on `alignment` (pages
 * start on a slice boundary, so a class that is a multiple of the alignment is aligned). The
 * alignment is a power of two: a mask, not a division per class tried. */
static int aligned_class(size_t size, size_t alignment) {
  size_t need = size > alignment ? size : alignment;
  if (need > NA_SMALL_MAX || alignment > NA_SLICE_SIZE) return -1;
  for (int c = na_size_class(need); c < NA_CLASS_COUNT; c++)
    if ((na_class_size(c) & (alignment - 1)) == 0) return c;
  return -1;
}

/* A small block from the thread's heap for `arena_index`. calloc clears only a block handed
 * out before: a fresh one reads as zero, and clearing it would make all of it resident (a
 * program that callocs buffers and writes a part of each, as node's zero-filled Buffers, held
 * its whole size). */
static void *alloc_small(na_tld_t *tld, int arena_index, int size_class, size_t size, bool zero,
                         bool may_borrow) {
  na_heap_t *heap = na_tld_heap_for_arena(tld, arena_index);
  if (heap == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  bool fresh = false;
  void *p = na_heap_alloc_small(heap, size_class, may_borrow, &fresh);
  if (p != NULL && zero && !fresh) clear_block(tld, p, size);
  return p;
}

static void *alloc_bootstrap(size_t size, size_t alignment, bool zero) {
  void *p = na_bootstrap_alloc(size, alignment);
  if (p != NULL && zero) memset(p, 0, size);
  return p;
}

/* The policy's arena for this request: the thread's heap for small blocks (which also
 * becomes the heap its fast path uses), NUMALLOC_LARGE_POLICY's from the large threshold
 * up. -1 when the policy hands everything to the system allocator. */
static int arena_by_policy(na_tld_t *tld, size_t size) {
  na_heap_t *heap = na_tld_pick_heap(tld);
  if (heap == NULL) return -1;
  return na_policy_large_arena(tld, size, heap->arena_index);
}

/* The one slow path. Every allocation that misses the fast path comes here: a thread's
 * first call, a page out of blocks, a policy other than local, a size above the small
 * classes, zeroing, alignment, an explicit node. The arena is decided once (policy, large
 * policy, explicit node), then the size picks a small page, a span or a segment.
 * `may_borrow` lets a big class take a freed block of a slightly bigger one (heap.c). */
static void *alloc_generic(size_t size, size_t alignment, bool zero, int arena_index,
                           size_t capacity, bool may_borrow) {
  if (na_unlikely(!na_ensure_init())) return alloc_bootstrap(size, alignment, zero);
  na_tld_t *tld = na_tld_get();
  if (tld == NULL) {
    errno = ENOMEM; /* no memory even for the thread's record */
    return NULL;
  }
  if (arena_index == NA_ARENA_BY_POLICY) arena_index = arena_by_policy(tld, size);
  if (arena_index < 0) return alloc_system(size, alignment, zero);
  int size_class = alignment <= NA_MIN_ALIGN ? (size <= NA_SMALL_MAX ? na_size_class(size) : -1)
                                             : aligned_class(size, alignment);
  if (size_class < 0) return alloc_large(tld, arena_index, size, alignment, zero, capacity);
  return alloc_small(tld, arena_index, size_class, size, zero, may_borrow);
}

void *na_alloc_generic(size_t size, size_t alignment, bool zero, int arena_index) {
  return alloc_generic(size, alignment, zero, arena_index, 0, alignment <= NA_MIN_ALIGN);
}

/* A small block the fast path finds is cleared here: the slow path's way, which skips the
 * clearing of fresh memory, costs more than clearing a few hundred bytes. */
#define CALLOC_QUICK_MAX 1024

void *numalloc_calloc(size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  if (total <= CALLOC_QUICK_MAX) {
    void *p = na_malloc_quick(total);
    if (na_likely(p != NULL)) return memset(p, 0, total);
  }
  return na_alloc_generic(total, NA_MIN_ALIGN, true, NA_ARENA_BY_POLICY);
}

/* Every block of a class whose size is a multiple of the alignment is aligned (pages start
 * on a slice boundary), so an aligned small block comes from that class's fast path. */
static void *alloc_aligned(size_t size, size_t alignment) {
  if (alignment <= NA_MIN_ALIGN) return numalloc_malloc(size);
  int size_class = aligned_class(size, alignment);
  if (size_class >= 0) {
    void *p = na_class_quick(na_tls_heap, size_class);
    if (na_likely(p != NULL)) return p;
  }
  return na_alloc_generic(size, alignment, false, NA_ARENA_BY_POLICY);
}

int numalloc_posix_memalign(void **out, size_t alignment, size_t size) {
  if (alignment < sizeof(void *) || !na_is_power_of_two(alignment)) return EINVAL;
  int saved = errno;
  void *p = alloc_aligned(size, alignment);
  if (p == NULL) {
    int rc = errno;
    errno = saved;
    return rc == 0 ? ENOMEM : rc;
  }
  *out = p;
  return 0;
}

void *numalloc_aligned_alloc(size_t alignment, size_t size) {
  if (!na_is_power_of_two(alignment)) {
    errno = EINVAL;
    return NULL;
  }
  return alloc_aligned(size, alignment);
}

/* Like glibc: a non-power-of-two alignment is rounded up rather than refused, and only one
 * that no power of two can reach is invalid (a reachable one too big to serve is ENOMEM). */
void *numalloc_memalign(size_t alignment, size_t size) {
  if (alignment > SIZE_MAX / 2 + 1) {
    errno = EINVAL;
    return NULL;
  }
  size_t a = 1;
  while (a < alignment) a <<= 1;
  return alloc_aligned(size, a);
}

void *numalloc_valloc(size_t size) { return alloc_aligned(size, NA_PAGE_SIZE); }

void *numalloc_pvalloc(size_t size) {
  if (size > NA_SIZE_MAX) {
    errno = ENOMEM;
    return NULL;
  }
  size_t rounded = na_align_up(size == 0 ? 1 : size, NA_PAGE_SIZE);
  return alloc_aligned(rounded, NA_PAGE_SIZE);
}

/* ---- realloc ------------------------------------------------------------------------ */

/* The block a buffer grew out of. A big one goes to its page, not to the thread's bin: the
 * buffer does not come back to its class, and in a bin the block would keep its page, most of
 * it free, from going back (buffers growing by 256 bytes peaked 24% higher). */
static void free_moved_out_of(na_segment_t *segment, na_page_t *page, void *p) {
  if (page != NULL && page->kind == NA_SPAN_SMALL && page->block_size > NA_BIG_BLOCK)
    na_free_generic(segment, page, p);
  else
    numalloc_free(p);
}

/* A nonzero `capacity` asks for a large span of at least that many bytes, marked grown. The
 * new block is of the size's own class, never one borrowed from a bigger class (heap.c):
 * buffers growing side by side by realloc copied more often and peaked 7-8% higher with
 * borrowed blocks, their room measured by the growth rules below instead. */
/* `segment` and `page` hold p, or are NULL for a block of the bootstrap buffer. */
static void *realloc_copy(na_segment_t *segment, na_page_t *page, void *p, size_t old_usable,
                          size_t size, size_t capacity) {
  void *q = capacity > 0 ? NULL : na_malloc_quick(size);
  if (q == NULL) q = alloc_generic(size, NA_MIN_ALIGN, false, NA_ARENA_BY_POLICY, capacity, false);
  if (q == NULL) return NULL; /* the old block stays as it was */
  memcpy(q, p, old_usable < size ? old_usable : size);
  free_moved_out_of(segment, page, p);
  return q;
}

static void *realloc_unowned(void *p, size_t size) {
  if (na_bootstrap_owns(p)) return realloc_copy(NULL, NULL, p, na_bootstrap_usable(p), size, 0);
  if (na_options.policy == NUMALLOC_POLICY_SYSTEM && na_system.realloc != NULL)
    return na_system.realloc(p, size);
  na_fatal("realloc of %p, which numalloc did not allocate (invalid pointer)", p);
}

/* A block that grows by small steps (a string or vector growing by a fixed amount) would be
 * copied at every size class it crosses, four per doubling: when it moves by less than an
 * eighth, it gets a quarter more room, so the next steps fit where it is. Growth by a factor
 * (vectors that double or grow by half), and small blocks, take the size asked for. */
#define REALLOC_ROOM_MIN ((size_t)4096)

static size_t grown_size(size_t usable, size_t size) {
  if (size < REALLOC_ROOM_MIN || size - usable >= usable / 8 || size > NA_SIZE_MAX / 2) return size;
  return size + size / 4;
}

/* Buffers and vectors that grow by realloc would move at every step, copying all they hold.
 * A block that grows past the small classes becomes a large span marked as grown; when one
 * of those has to move again, its new span reaches the next power of two, so the next steps
 * grow in place and copy nothing, and such blocks share a few span sizes, so the span one
 * leaves fits the next exactly (still warm in the cache). The room costs address space only:
 * the block's usable size stays what was asked for, so nothing touches the room until the
 * block grows into it. Blocks that grow once keep spans of their size: the room would hold
 * memory that other blocks could use. */
static size_t growth_capacity(const na_page_t *page, size_t usable, size_t size) {
  if (size <= NA_SMALL_MAX || size <= usable || size > NA_LARGE_MAX / 2) return 0;
  if (page->kind != NA_SPAN_LARGE || !page->flags.bits.grown) return size;
  size_t capacity = NA_SLICE_SIZE;
  while (capacity < size) capacity <<= 1;
  return capacity;
}

/* A large block grows into its span's room or the free slices after it; one that shrinks
 * gives back the slices it no longer covers. */
static bool resize_large(na_page_t *span, void *p, size_t size) {
  size_t offset = (size_t)((char *)p - (char *)na_page_start(span));
  if (offset + size > NA_LARGE_MAX) return false;
  size_t slices = na_align_up(offset + size, NA_SLICE_SIZE) >> NA_SLICE_SHIFT;
  if (slices > span->slice_count && !na_arena_grow_span(span, slices)) return false;
  if (size < span->large_size && slices < span->slice_count) na_arena_shrink_span(span, slices);
  span->large_size = (uint32_t)na_align_up(size, NA_MIN_ALIGN);
  return true;
}

/* realloc(p, 0) frees p and returns NULL, as glibc's, jemalloc's and tcmalloc's do: programs
 * written against them use it as free, and a block kept for them would leak at every call. */
void *numalloc_realloc(void *p, size_t size) {
  if (p == NULL) return numalloc_malloc(size);
  if (size == 0) {
    numalloc_free(p);
    return NULL;
  }
  if (size > NA_SIZE_MAX) {
    errno = ENOMEM;
    return NULL;
  }
  size_t usable;
  na_page_t *page = na_small_page_of(p, &usable);
  na_segment_t *segment;
  if (page != NULL) {
    segment = na_segment_of_aligned(page);
  } else {
    segment = na_segment_lookup(p);
    if (segment == NULL) return realloc_unowned(p, size);
    page = na_page_of(segment, p);
    usable = na_usable_in(segment, page, p);
    if (page->kind == NA_SPAN_HUGE && size > NA_LARGE_MAX) {
      void *q = na_arena_realloc_huge(segment, p, size);
      if (q != NULL) return q;
    }
    if (page->kind == NA_SPAN_LARGE) {
      if ((char *)p != (char *)na_page_start(page) + page->block_size)
        na_fatal("realloc of %p, which is inside a large block, not its start", p);
      /* resized to more than a slice, it stays in its span */
      if (size > NA_SLICE_SIZE && resize_large(page, p, size)) return p;
    }
  }
  /* Keep the block when the new size fits and would not waste more than half of it. */
  if (size <= usable && size >= usable / 2 && page->kind != NA_SPAN_HUGE) return p;
  if (size <= usable && page->kind == NA_SPAN_HUGE && size > NA_LARGE_MAX) return p;
  size_t capacity = growth_capacity(page, usable, size);
  size_t asked = capacity == 0 && size > usable ? grown_size(usable, size) : size;
  return realloc_copy(segment, page, p, usable, asked, capacity);
}

void *numalloc_reallocarray(void *p, size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return numalloc_realloc(p, total);
}

/* ---- explicit placement ------------------------------------------------------------- */

static bool node_usable(int node) {
  if (!na_ensure_init()) return false;
  return node >= 0 && node < NA_MAX_NODES && na_node_bit(na_topology.usable, node);
}

void *numalloc_aligned_alloc_onnode(size_t alignment, size_t size, int node) {
  if (!node_usable(node) || !na_is_power_of_two(alignment)) {
    errno = EINVAL;
    return NULL;
  }
  return na_alloc_generic(size, alignment, false, node);
}

void *numalloc_malloc_onnode(size_t size, int node) {
  return numalloc_aligned_alloc_onnode(NA_MIN_ALIGN, size, node);
}

void *numalloc_calloc_onnode(size_t count, size_t size, int node) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  if (!node_usable(node)) {
    errno = EINVAL;
    return NULL;
  }
  return na_alloc_generic(total, NA_MIN_ALIGN, true, node);
}
