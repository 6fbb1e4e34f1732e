/* page.c: a page is a span of equal blocks owned by one heap. Blocks are carved lazily (so
 * untouched memory stays untouched) and kept on three lists: `free` to allocate from,
 * `local_free` for the owner's frees, and the atomic `thread_free` for other threads'. A
 * mostly free page can give back the OS pages that hold only free blocks (the purge below). */
#include "internal.h"

#include <string.h>

/* The page every empty heap slot points at: it never has a free block, so the fast path
 * falls through to the slow path without a separate check. */
na_page_t na_page_empty;

#define EXTEND_BYTES (4 * NA_KiB) /* carve about a page at a time */

void na_page_init(na_page_t *page, na_heap_t *heap, int size_class, bool is_zero) {
  size_t bytes = (size_t)page->slice_count << NA_SLICE_SHIFT;
  na_relaxed_store(&page->kind, NA_SPAN_SMALL); /* a neighbour's free reads it */
  page->size_class = (uint8_t)size_class;
  page->block_size = (uint32_t)na_class_size(size_class);
  page->block_magic = UINT64_MAX / page->block_size + 1;
  page->reserved = (uint32_t)(bytes / page->block_size);
  na_relaxed_store(&page->capacity, 0);
  page->used = 0;
  page->installed = 0;
  page->list_mark = 0;
  page->free = page->local_free = NULL;
  /* Keys differ per page below a segment's bits only, so a bin tells a link from the secret
   * alone (na_block_linked_quick). */
  page->key = (na_secret ^ (((uintptr_t)page * NA_GOLDEN_GAMMA) >> (64 - NA_SEGMENT_SHIFT))) | 1;
  page->is_zero = is_zero;
  page->flags.value = 0;
  page->sparse_below = 1; /* retire when empty */
  na_relaxed_store(&page->purged, 0);
  page->idle = 0;
  na_page_set_owner(page, heap->tld ? na_thread_id() : 0);
  page->heap = heap;
  page->next = page->prev = NULL;
  atomic_store_explicit(&page->thread_free, NA_DELAY_NONE, memory_order_relaxed);
}

/* Blocks carved ahead sit on the free list, and the fast path hands them out without asking
 * where the thread runs now: a thread that moved to another node would get its old node's
 * memory for as long as they last. So a carve takes about EXTEND_BYTES and at least four
 * blocks, but never more than AHEAD_BYTES unless one block is larger: such blocks come one at
 * a time, each through the slow path, which looks at the node again. */
#define AHEAD_BYTES (16 * NA_KiB)
static void page_extend(na_page_t *page) {
  size_t count = EXTEND_BYTES / page->block_size;
  if (count < 4) {
    size_t fit = AHEAD_BYTES / page->block_size;
    count = fit < 1 ? 1 : fit > 4 ? 4 : fit;
  }
  if (count > page->reserved - page->capacity) count = page->reserved - page->capacity;
  char *start = (char *)na_page_start(page) + (size_t)page->capacity * page->block_size;
  na_block_t *first = (na_block_t *)start;
  na_block_t *block = first;
  for (size_t i = 1; i < count; i++) {
    na_block_t *next = (na_block_t *)(start + i * page->block_size);
    na_block_link(page, block, next); /* the hardware's prefetcher follows addresses in order */
    block = next;
  }
  na_block_link(page, block, page->free);
  page->free = first;
  na_relaxed_store(&page->capacity, page->capacity + (uint32_t)count); /* read by remote frees */
}

/* The count in thread_free has 16 bits; a page holds at most a slice of 8-byte blocks. */
_Static_assert(NA_SLICE_SIZE / 8 < ((size_t)1 << (64 - NA_TF_COUNT_SHIFT)), "count fits");

void na_page_link_corrupt(const na_page_t *page, const na_block_t *block) {
  na_fatal("heap corruption: the free block %p (page of %u-byte blocks at %p) was overwritten, "
           "by a write past the end of the block before it, a write after its free, or a "
           "double free that handed it out from a bin while it was on this list",
           (const void *)block, page->block_size, na_page_start(page));
}

void na_page_check_empty(const na_page_t *page) {
  if (page->kind != NA_SPAN_SMALL || page->used != 0) return;
  const char *start = na_page_start(page);
  for (uint32_t i = 0; i < page->capacity; i++) {
    const na_block_t *block = (const na_block_t *)(start + (size_t)i * page->block_size);
    if (na_page_block_is_unlinked(page, block)) continue;
    if (!na_block_link_is_sound(block, na_block_next(page, block))) {
      if (block->next_encoded == 0)
        na_fatal("double free of %p (size class %u, freed onto its page's list and into a bin, "
                 "then handed out by the bin)",
                 (const void *)block, page->block_size);
      na_page_link_corrupt(page, block);
    }
  }
}

na_block_t *na_block_next_checked(const na_page_t *page, const na_block_t *block) {
  na_block_t *next = na_block_next(page, block);
  if (na_unlikely(!na_block_link_is_sound(block, next))) na_page_link_corrupt(page, block);
  return next;
}

size_t na_page_collect_remote(na_page_t *page) {
  uintptr_t tf = atomic_load_explicit(&page->thread_free, memory_order_relaxed);
  if (na_tf_blocks(tf) == NULL) return 0;
  while (!atomic_compare_exchange_weak_explicit(&page->thread_free, &tf, tf & NA_TF_DELAY_MASK,
                                                memory_order_acq_rel, memory_order_relaxed)) {
  }
  na_block_t *head = na_tf_blocks(tf);
  uint32_t count = na_tf_count(tf);
  if (na_unlikely(count == 0 || count > page->used))
    na_fatal("corrupted remote free list in page of %u-byte blocks at %p", page->block_size,
             na_page_start(page));
  if (page->local_free != NULL) { /* rare (adoption, collection): append local_free */
    na_block_t *tail = head;
    for (uint32_t n = 1; n < count; n++) tail = na_block_next_checked(page, tail);
    na_block_set_next(page, tail, page->local_free);
  }
  page->local_free = head;
  page->used -= count;
  return count;
}

/* Statistics without a cost on the fast path: when a page's free list runs dry, every block
 * the last refill put there has been handed out. */
static void account_handed(na_page_t *page, uint32_t handed, int ran_on) {
  na_tld_t *tld = page->heap != NULL ? page->heap->tld : NULL;
  if (tld == NULL || handed == 0) return;
  na_stats_count_handed(tld, na_segment_of_aligned(page)->arena_index, handed, page->block_size,
                        ran_on);
}

static uint32_t list_length(const na_page_t *page, const na_block_t *list) {
  uint32_t n = 0;
  for (const na_block_t *b = list; b != NULL && n <= page->reserved;
       b = na_block_next_checked(page, b))
    n++;
  return n;
}

/* A refill puts `installed` blocks on `free` and leaves local_free empty. From then on a block
 * leaves `free` only by an allocation, which counts it in `used`, and a free puts it on
 * local_free (or on thread_free, and local_free when taken in) as it uncounts it: so `free`
 * holds list_mark - used - (blocks on local_free), and counting it walks whichever of the
 * two lists is shorter, side by side. An exiting thread counts every page it leaves, and a
 * page adopted from the pool brings all its free blocks on `free`: walking those took 17% of
 * a workload of short-lived threads. */
static void mark_installed(na_page_t *page, uint32_t installed) {
  page->installed = installed;
  page->list_mark = installed + page->used;
}

static uint32_t free_list_length(const na_page_t *page) {
  const na_block_t *free = page->free, *local = page->local_free;
  uint32_t n = 0;
  for (; free != NULL && local != NULL && n <= page->reserved; n++) {
    free = na_block_next_checked(page, free);
    local = na_block_next_checked(page, local);
  }
  uint32_t left = free == NULL ? n : page->list_mark - page->used - n;
  if (na_unlikely(left > page->installed || na_checks_enabled)) {
    uint32_t walked = list_length(page, page->free);
    if (na_checks_enabled && walked != left)
      na_validate("page: its free list's length differs from what its counts say");
    left = walked;
  }
  return left;
}

/* Counts what was handed out of `free` so far (a page leaving its heap, or a report). */
void na_page_account_partial_on(na_page_t *page, int ran_on) {
  uint32_t left = free_list_length(page);
  account_handed(page, page->installed > left ? page->installed - left : 0, ran_on);
  page->installed = left; /* list_mark holds: the blocks on `free` are those counted */
}

void na_page_account_partial(na_page_t *page) { na_page_account_partial_on(page, -1); }

uint64_t na_page_live_bytes(const na_page_t *page) {
  uint32_t used = na_relaxed_load(&page->used);
  uint32_t pending = na_tf_count(atomic_load_explicit(&page->thread_free, memory_order_relaxed));
  return used > pending ? (uint64_t)(used - pending) * page->block_size : 0;
}

uint64_t na_page_touched_bytes(const na_page_t *page) {
  uint64_t carved = (uint64_t)na_relaxed_load(&page->capacity) * page->block_size;
  uint64_t purged = na_page_purged_bytes(page);
  return carved > purged ? carved - purged : 0;
}

/* ---- purging the free blocks of a sparse page --------------------------------------
 * A mostly free page gives back the OS pages that hold only free blocks. Their blocks stay
 * free but leave the lists (a link would touch the page again); `purged` remembers them, and
 * the page links them back when it has nothing else to hand out. In a one-slice page a bit
 * of `purged` is an OS page, and every block starting in it is unlinked; a page of several
 * slices has at most 16 blocks of more than 8 KiB, and a bit is a block, whose OS pages that
 * no other block shares are given back. */
#define OS_PAGES (NA_SLICE_SIZE / NA_PAGE_SIZE) /* in a one-slice page */
_Static_assert(OS_PAGES <= 16, "page.purged has a bit per OS page of a slice");

static bool purges_by_block(const na_page_t *page) { return page->slice_count > 1; }

/* Carved blocks that bit k of `purged` unlinks: [*first, *end). */
static void blocks_of_bit(const na_page_t *page, size_t k, uint32_t *first, uint32_t *end) {
  size_t lo, hi;
  if (purges_by_block(page)) {
    lo = k, hi = k + 1;
  } else {
    size_t size = page->block_size;
    lo = (k * NA_PAGE_SIZE + size - 1) / size, hi = ((k + 1) * NA_PAGE_SIZE + size - 1) / size;
  }
  *first = (uint32_t)(lo < page->capacity ? lo : page->capacity);
  *end = (uint32_t)(hi < page->capacity ? hi : page->capacity);
}

/* The whole OS pages inside blocks [first, end): [*lo, *hi) from the page's start. */
static void inner_os_pages(const na_page_t *page, size_t first, size_t end, size_t *lo,
                           size_t *hi) {
  *lo = na_align_up(first * page->block_size, NA_PAGE_SIZE);
  *hi = end * page->block_size / NA_PAGE_SIZE * NA_PAGE_SIZE;
  if (*hi < *lo) *hi = *lo;
}

size_t na_page_purged_bytes(const na_page_t *page) {
  unsigned purged = na_relaxed_load(&page->purged);
  if (!purges_by_block(page)) return (size_t)__builtin_popcount(purged) * NA_PAGE_SIZE;
  size_t bytes = 0, lo, hi;
  for (unsigned mask = purged; mask != 0; mask &= mask - 1) {
    size_t k = (size_t)__builtin_ctz(mask);
    inner_os_pages(page, k, k + 1, &lo, &hi);
    bytes += hi - lo;
  }
  return bytes;
}

static uint32_t unlinked_count(const na_page_t *page) {
  uint32_t count = 0, first, end;
  for (unsigned mask = page->purged; mask != 0; mask &= mask - 1) {
    blocks_of_bit(page, (size_t)__builtin_ctz(mask), &first, &end);
    count += end - first;
  }
  return count;
}

/* True when the purge that unlinked them was less than a purge delay ago: the page gave
 * back memory it needed again. */
static bool reclaim_unlinked(na_page_t *page) {
  bool regret =
      (uint32_t)(na_os_clock_ms() - page->free_stamp) < (uint32_t)na_options.purge_delay_ms;
  na_block_t *list = NULL;
  uint32_t count = 0, first, end;
  char *start = na_page_start(page);
  for (unsigned mask = page->purged; mask != 0; mask &= mask - 1) {
    blocks_of_bit(page, (size_t)__builtin_ctz(mask), &first, &end);
    for (uint32_t i = end; i-- > first; count++) {
      na_block_t *block = (na_block_t *)(start + (size_t)i * page->block_size);
      na_block_link(page, block, list);
      list = block;
    }
  }
  na_relaxed_store(&page->purged, 0);
  page->flags.bits.has_purged = 0;
  na_page_flags_changed(page);
  page->free = list;
  mark_installed(page, count);
  return regret;
}

typedef struct block_bits_s {
  uint64_t word[NA_SLICE_SIZE / 8 / 64]; /* a bit per block of a one-slice page */
} block_bits_t;

static void mark_list(const na_page_t *page, const na_block_t *list, block_bits_t *bits) {
  const char *start = na_page_start(page);
  for (uint32_t n = 0; list != NULL; list = na_block_next(page, list), n++) {
    size_t index = (size_t)((const char *)list - start) / page->block_size;
    if (n >= page->capacity || index >= page->capacity ||
        (bits->word[index / 64] >> (index % 64) & 1))
      na_fatal("corrupted free list in page of %u-byte blocks at %p", page->block_size,
               (void *)start);
    bits->word[index / 64] |= (uint64_t)1 << (index % 64);
  }
}

static bool block_bit(const block_bits_t *bits, size_t index) {
  return bits->word[index / 64] >> (index % 64) & 1;
}

/* Bits, not set yet, whose blocks are all free and hold a whole OS page: in a one-slice
 * page the OS pages that every block overlapping them leaves free, in a bigger one the free
 * blocks. */
static unsigned purgeable(const na_page_t *page, const block_bits_t *bits) {
  unsigned mask = 0;
  size_t size = page->block_size;
  if (purges_by_block(page)) {
    for (size_t i = 0; i < page->capacity; i++) {
      size_t lo, hi;
      inner_os_pages(page, i, i + 1, &lo, &hi);
      if (!(page->purged & (1u << i)) && block_bit(bits, i) && hi > lo) mask |= 1u << i;
    }
    return mask;
  }
  for (size_t k = 0; k < OS_PAGES; k++) {
    size_t first = k * NA_PAGE_SIZE / size, last = ((k + 1) * NA_PAGE_SIZE - 1) / size;
    if (last >= page->reserved) last = page->reserved - 1; /* the tail holds no block */
    if ((page->purged & (1u << k)) || first > last || last >= page->capacity) continue;
    bool all_free = true;
    for (size_t i = first; i <= last && all_free; i++) all_free = block_bit(bits, i);
    if (all_free) mask |= 1u << k;
  }
  return mask;
}

/* One madvise per run of adjacent bits: OS pages, or the OS pages inside a run of blocks. */
static void purge_bits(na_page_t *page, unsigned mask, na_os_purge_batch_t *batch) {
  char *start = na_page_start(page);
  int arena_index = na_segment_of_aligned(page)->arena_index;
  while (mask != 0) {
    unsigned first = (unsigned)__builtin_ctz(mask);
    unsigned run = (unsigned)__builtin_ctz(~(mask >> first)); /* adjacent bits from first */
    size_t lo = (size_t)first * NA_PAGE_SIZE, hi = (size_t)(first + run) * NA_PAGE_SIZE;
    if (purges_by_block(page)) inner_os_pages(page, first, first + run, &lo, &hi);
    na_os_purge_add(batch, start + lo, hi - lo);
    na_stats_count_purge(arena_index, hi - lo);
    mask &= ~(((1u << run) - 1) << first);
  }
}

/* One list, in address order, of the free blocks outside the purged OS pages. */
static void relink_free(na_page_t *page, const block_bits_t *bits) {
  na_block_t *list = NULL;
  uint32_t count = 0;
  char *start = na_page_start(page);
  for (size_t i = page->capacity; i-- > 0;) {
    na_block_t *block = (na_block_t *)(start + i * page->block_size);
    if (!block_bit(bits, i) || na_page_block_is_unlinked(page, block)) continue;
    na_block_link(page, block, list); /* the list's order changed */
    list = block;
    count++;
  }
  page->free = list;
  page->local_free = NULL;
  mark_installed(page, count);
  page->is_zero = false;
}

static void mark_free(na_page_t *page, block_bits_t *bits) {
  na_page_collect_remote(page);
  na_page_account_partial(page);
  memset(bits->word, 0, ((size_t)page->capacity + 63) / 64 * sizeof bits->word[0]);
  mark_list(page, page->free, bits);
  mark_list(page, page->local_free, bits);
}

/* Purges the bits of `mask` (see purgeable), the free blocks marked in `bits`. */
static size_t purge_free_bits(na_page_t *page, const block_bits_t *bits, unsigned mask,
                              na_os_purge_batch_t *batch) {
  size_t before = na_page_purged_bytes(page);
  purge_bits(page, mask, batch);
  page->free_stamp = na_os_clock_ms(); /* when, to tell a purge that came too early */
  na_relaxed_store(&page->purged, (uint16_t)(page->purged | mask));
  relink_free(page, bits);
  page->flags.bits.has_purged = 1;
  na_page_flags_changed(page);
  return na_page_purged_bytes(page) - before;
}

/* Strict placement keeps what it checked. In a segment of huge pages a purge of a few OS
 * pages breaks a huge page for the rest of its life, frees memory only when the kernel
 * splits it under pressure, and khugepaged may fill the hole again: not worth a TLB
 * shootdown. */
static bool gives_back_os_pages(const na_page_t *page) {
  const na_segment_t *segment = na_segment_of_aligned(page);
  return !segment->huge_pages && !na_placement_is_strict(segment->arena_index);
}

size_t na_page_purge_free(na_page_t *page, na_os_purge_batch_t *batch) {
  if (!gives_back_os_pages(page)) return 0;
  block_bits_t bits;
  mark_free(page, &bits);
  unsigned mask = purgeable(page, &bits);
  return mask == 0 ? 0 : purge_free_bits(page, &bits, mask, batch);
}

/* A page of a few big blocks hands out the block freed last first, so blocks that stay free
 * from one check to the next (a heap pass, a purge delay apart) are the ones it does not
 * need: they go back, wherever the page is, its class's current page included. */
size_t na_page_purge_idle(na_page_t *page, na_os_purge_batch_t *batch) {
  if (!purges_by_block(page) || !gives_back_os_pages(page)) return 0;
  block_bits_t bits;
  mark_free(page, &bits);
  unsigned free_now = purgeable(page, &bits);
  unsigned mask = free_now & page->idle;
  page->idle = (uint16_t)(free_now & ~mask);
  return mask == 0 ? 0 : purge_free_bits(page, &bits, mask, batch);
}

/* Arms the sparse check (at a refill, and when a full page comes back): every page calls its heap
 * when it empties, and also when it drops to a quarter full, or half full for the few big blocks of
 * a page of several slices (and again at each halving after that, see heap.c). */
void na_page_arm_sparse(na_page_t *page) {
  uint32_t below = purges_by_block(page) ? page->reserved / 2 + 1 : page->reserved / 4 + 1;
  page->sparse_below = (uint16_t)(na_options.purge_sparse && gives_back_os_pages(page) ? below : 1);
}

/* Run again when it found nothing (by na_page_refill after it), it does nothing twice: the
 * blocks handed out are counted once, and a second look for remote frees is one load. */
bool na_page_refill_freed(na_page_t *page) {
  if (page->free != NULL) return true;
  if (na_unlikely(na_options.verify) && page->installed != 0)
    na_stats_verify(na_segment_of_aligned(page)->arena_index, na_page_start(page),
                    (size_t)page->capacity * page->block_size);
  account_handed(page, page->installed, -1);
  if (page->local_free == NULL) na_page_collect_remote(page);
  na_page_arm_sparse(page);
  page->sparse_marked = 0; /* in use again: not a purge candidate */
  if (page->local_free == NULL) {
    mark_installed(page, 0);
    return false;
  }
  /* with `free` empty and remote frees collected, every free block is on local_free, or
   * unlinked in a purged OS page */
  mark_installed(page, page->capacity - page->used - unlinked_count(page));
  page->free = page->local_free;
  page->local_free = NULL;
  page->is_zero = false;
  return true;
}

na_refill_t na_page_refill(na_page_t *page) {
  if (na_page_refill_freed(page)) return NA_REFILL_DONE;
  if (page->purged != 0) return reclaim_unlinked(page) ? NA_REFILL_REGRET : NA_REFILL_DONE;
  if (page->capacity < page->reserved) {
    uint32_t before = page->capacity;
    page_extend(page);
    mark_installed(page, page->capacity - before);
  }
  return NA_REFILL_DONE;
}

/* Sets the page's delay state; with only_if_empty, only while no remote free is pending
 * (so a block pushed just before cannot be stranded on a page that leaves its queue). */
bool na_page_set_delay(na_page_t *page, na_delay_t delay, bool only_if_empty) {
  uintptr_t tf = atomic_load_explicit(&page->thread_free, memory_order_relaxed);
  for (;;) {
    if (na_tf_delay(tf) == NA_DELAY_BUSY) {
      na_os_yield(); /* a remote free is talking to the heap: let it finish */
      tf = atomic_load_explicit(&page->thread_free, memory_order_relaxed);
      continue;
    }
    if (only_if_empty && na_tf_blocks(tf) != NULL) return false;
    uintptr_t desired = (tf & ~NA_TF_DELAY_MASK) | (uintptr_t)delay;
    if (atomic_compare_exchange_weak_explicit(&page->thread_free, &tf, desired,
                                              memory_order_acq_rel, memory_order_relaxed))
      return true;
  }
}

void *na_page_block_start(const na_page_t *page, const void *p) {
  char *start = na_page_start(page);
  size_t offset = (size_t)((const char *)p - start);
  return start + offset - offset % page->block_size;
}

static bool list_contains(const na_page_t *page, const na_block_t *list, const na_block_t *block) {
  for (size_t n = 0; list != NULL && n <= page->reserved; list = na_block_next(page, list), n++)
    if (list == block) return true;
  return false;
}

bool na_page_block_is_free(const na_page_t *page, const na_block_t *block) {
  const na_block_t *remote = na_tf_blocks(atomic_load(&page->thread_free));
  return na_page_block_is_unlinked(page, block) || list_contains(page, page->free, block) ||
         list_contains(page, page->local_free, block) || list_contains(page, remote, block);
}
