/* huge.c: blocks above a segment's slices get a segment of their own, mapped for them; they
 * grow and shrink with mremap, so the kernel moves page tables instead of bytes. A freed one
 * is kept, resident, for the next huge block of its arena that fits it, and unmapped once it
 * has waited a purge delay unused (purge.c): a program that allocates and frees a big buffer
 * in a loop paid a map, a binding, an unmap and the page faults of a fresh mapping at every
 * turn, 3 times glibc's time for a 40 MiB buffer. */
#include "arena.h"

/* Up to this size: a bigger block's memory goes back at its free, as before. */
#define HUGE_KEPT_MAX ((size_t)128 * NA_MiB)

/* A node's arena, unless placement is strict (it checks each block's pages), and the
 * first-touch arena (na_placement_touch_reusable says when a kept block may be reused as it
 * is). Interleaved and weighted blocks are placed stripe by stripe as they are mapped. */
static bool keeps_huge(int arena_index) {
  return (arena_index < NA_MAX_NODES && !na_placement_is_strict(arena_index)) ||
         arena_index == NA_TOUCH_ARENA;
}

/* A kept segment of `total` bytes, or up to a quarter more, taken out of the arena's keep. */
static na_segment_t *take_kept(int arena_index, size_t total) {
  na_arena_t *arena = na_arena_at(arena_index);
  na_segment_t *found = NULL;
  int slot = -1;
  na_arena_lock(arena);
  for (int i = 0; i < NA_HUGE_KEPT; i++) {
    na_segment_t *s = arena->huge_kept[i];
    if (s == NULL || s->size < total || s->size > total + total / 4) continue;
    if (found == NULL || s->size < found->size) {
      found = s;
      slot = i;
    }
  }
  if (found != NULL) arena->huge_kept[slot] = NULL;
  na_arena_unlock(arena);
  return found;
}

static uint32_t kept_since(const na_segment_t *segment) {
  return segment->slices[NA_META_SLICES].free_stamp;
}

/* An empty slot, else the one kept longest. */
static int slot_to_keep(const na_arena_t *arena) {
  int oldest = 0;
  for (int i = 0; i < NA_HUGE_KEPT; i++) {
    if (arena->huge_kept[i] == NULL) return i;
    if ((int32_t)(kept_since(arena->huge_kept[i]) - kept_since(arena->huge_kept[oldest])) < 0)
      oldest = i;
  }
  return oldest;
}

size_t na_huge_take_expired(na_arena_t *arena, bool force, uint32_t now, uint32_t delay_ms,
                            na_segment_t **out) {
  size_t n = 0;
  for (int i = 0; i < NA_HUGE_KEPT; i++) {
    na_segment_t *s = arena->huge_kept[i];
    if (s == NULL) continue;
    if (!force && (uint32_t)(now - kept_since(s)) < delay_ms) continue;
    arena->huge_kept[i] = NULL;
    out[n++] = s;
  }
  return n;
}

static size_t huge_offset(size_t alignment) {
  size_t header = NA_META_SLICES * NA_SLICE_SIZE;
  return alignment > header ? alignment : header;
}

/* Weighted placement of one huge block, done by the allocator so that it works on kernels
 * without weighted interleave: 2 MiB stripes bound to the nodes of the schedule, before
 * anything touches them. */
static void stripe_weighted(na_segment_t *segment, size_t offset, size_t total,
                            int (*next_node)(void)) {
  const size_t stripe = 2 * NA_MiB;
  for (size_t at = na_align_up(offset, stripe); at < total; at += stripe)
    na_placement_bind_node((char *)segment + at, stripe, next_node());
}

void *na_arena_alloc_huge(int arena_index, size_t size, size_t alignment, bool zero, bool *is_zero,
                          int (*stripe_node)(void), int node) {
  size_t offset = huge_offset(alignment);
  if (size > NA_HUGE_MAX - offset) return NULL;
  size_t total = na_align_up(offset + size, NA_SEGMENT_SIZE);
  na_page_t *page;
  if (keeps_huge(arena_index) && stripe_node == NULL && alignment <= NA_SEGMENT_SIZE) {
    na_arena_purge_expired(arena_index); /* a program of huge blocks only has no other pass */
    na_segment_t *kept = take_kept(arena_index, total);
    if (kept != NULL) {
      page = &kept->slices[NA_META_SLICES];
      /* Given back for calloc, so that zero pages come in as it writes (not a memset of the
       * whole block, which a sparse user would never touch), and for a first-touch block whose
       * pages may not be where its new user runs, so that the user's touch places them. */
      bool give_back =
          zero || (arena_index == NA_TOUCH_ARENA &&
                   !na_placement_touch_reusable((char *)kept + offset, kept->size - offset,
                                                page->used_on, node));
      page->block_size = (uint32_t)(offset >> NA_SLICE_SHIFT);
      page->used_on = (int8_t)node;
      na_segment_set_huge_span(kept, offset >> NA_SLICE_SHIFT); /* its offset may differ */
      *is_zero = give_back && na_os_purge((char *)kept + offset, kept->size - offset);
      if (*is_zero) na_stats_count_purge(arena_index, kept->size - offset);
      na_arena_account_huge(arena_index, (int64_t)(kept->size - offset));
      return (char *)kept + offset;
    }
  }
  na_segment_t *segment = na_segment_create_aligned(
      arena_index, total, alignment, na_arena_huge_pages(arena_index, true), is_zero);
  if (segment == NULL) return NULL;
  page = &segment->slices[NA_META_SLICES];
  na_segment_set_huge_span(segment, offset >> NA_SLICE_SHIFT);
  page->block_size = (uint32_t)(offset >> NA_SLICE_SHIFT);
  page->used_on = (int8_t)node;
  if (stripe_node != NULL) stripe_weighted(segment, offset, total, stripe_node);
  if (na_placement_is_strict(arena_index) &&
      !na_placement_commit((char *)segment + offset, na_align_up(size, NA_PAGE_SIZE),
                           arena_index)) {
    na_segment_destroy(segment);
    return NULL;
  }
  na_arena_add_mapped(na_arena_at(arena_index), (int64_t)total);
  na_arena_account_huge(arena_index, (int64_t)(total - offset));
  return (char *)segment + offset;
}

/* Kept in a free slot, or in place of the one kept longest (unmapped instead); a freed
 * segment's span is no block, so a second free of it is named. */
void na_arena_free_huge(na_segment_t *segment) {
  na_arena_t *arena = na_arena_at(segment->arena_index);
  na_page_t *page = &segment->slices[NA_META_SLICES];
  na_arena_account_huge(segment->arena_index,
                        -(int64_t)(segment->size - (size_t)page->block_size * NA_SLICE_SIZE));
  if (keeps_huge(segment->arena_index) && segment->size <= HUGE_KEPT_MAX) {
    na_relaxed_store(&page->kind, NA_SPAN_FREE);
    page->free_stamp = na_os_clock_ms();
    na_arena_lock(arena);
    int slot = slot_to_keep(arena);
    na_segment_t *evicted = arena->huge_kept[slot];
    arena->huge_kept[slot] = segment;
    na_arena_unlock(arena);
    if (evicted == NULL) return;
    segment = evicted;
  }
  atomic_fetch_sub_explicit(&arena->mapped_bytes, segment->size, memory_order_relaxed);
  na_segment_destroy(segment);
}

size_t na_huge_usable(const na_segment_t *segment, const void *p) {
  return segment->size - (size_t)((const char *)p - (const char *)segment);
}

/* Grows or shrinks without copying: in place when the address space after it is free,
 * else by moving the pages to a new aligned range (the binding moves with them). */
void *na_arena_realloc_huge(na_segment_t *segment, void *p, size_t new_size) {
  size_t offset = (size_t)((char *)p - (char *)segment);
  if (new_size > NA_HUGE_MAX - offset) return NULL;
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
    void *target =
        na_os_map_aligned_charged(total, align > NA_SEGMENT_SIZE ? align : NA_SEGMENT_SIZE);
    if (target == NULL) return NULL;
    moved = na_os_remap(segment, old_total, total, target);
    if (moved == NULL) {
      na_os_unmap(target, total);
      return NULL;
    }
  }
  moved->size = total;
  na_segment_remapped(segment, old_total, moved);
  na_arena_t *arena = na_arena_at(moved->arena_index);
  na_arena_add_mapped(arena, (int64_t)total - (int64_t)old_total);
  na_arena_account_huge(moved->arena_index, (int64_t)total - (int64_t)old_total);
  return (char *)moved + offset;
}
